/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * gmemctl-table.c — gmemctl's one way of printing lists.
 *
 * Each cell is kept twice: as the text shown in the table and as the JSON
 * value --json prints, so a size reads "1G" to a person and 1073741824 to a
 * program. The table has a header and a footer ("2 regions listed.") unless
 * --no-legend is given; an empty table says so ("No regions.") and prints
 * nothing with --no-legend; with --json it is an array of objects whose keys
 * are the columns' JSON names. A table keeps only the form it will print
 * (the mode is known when it is made), so a list of 20,000 regions does not
 * build 120,000 JSON values for a table, nor copy as many strings for JSON.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "array.h"
#include "gmemctl.h"
#include "parse.h"

typedef struct Cell {
        char *text;
        struct json_object *json;
        bool right_align;
} Cell;

struct Table {
        size_t n_columns;
        const char *const *headers;
        const char *const *json_keys;
        Cell *cells;
        size_t n_cells;
        size_t allocated;
        bool json;              /* --json: cells keep their JSON value, else their text */
};

Table *table_new(size_t n_columns, const char *const *headers, const char *const *json_keys) {
        Table *t;

        if (n_columns == 0 || !headers || !json_keys)
                return NULL;
        t = calloc(1, sizeof(*t));
        if (!t)
                return NULL;
        t->n_columns = n_columns;
        t->headers = headers;
        t->json_keys = json_keys;
        t->json = arg_json != JSON_OFF;
        return t;
}

bool table_wants_json(const Table *t) {
        return t->json;
}

int table_reserve(Table *t, size_t rows) {
        size_t need;

        if (MUL_OVERFLOW(rows, t->n_columns, &need))
                return -ENOMEM;
        return GROW_ARRAY(t->cells, t->allocated, need);
}

Table *table_free(Table *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_cells; i++) {
                free(t->cells[i].text);
                json_object_put(t->cells[i].json);
        }
        free(t->cells);
        free(t);
        return NULL;
}

size_t table_rows(const Table *t) {
        return t->n_cells / t->n_columns;
}

int table_add_cell(Table *t, const char *text, struct json_object *j, bool right_align) {
        char *copy = NULL;
        int r;

        if (!t->json) {
                json_object_put(j);
                j = NULL;
        }
        r = GROW_ARRAY(t->cells, t->allocated, t->n_cells + 1);
        if (r < 0) {
                json_object_put(j);
                return r;
        }
        if (!t->json) {
                copy = strdup(text ? text : "-");
                if (!copy)
                        return -ENOMEM;
        }
        t->cells[t->n_cells++] = (Cell) { .text = copy, .json = j, .right_align = right_align };
        return 0;
}

int table_add_string(Table *t, const char *s) {
        if (isempty(s))
                return table_add_cell(t, "-", NULL, false);
        return table_add_cell(t, s, t->json ? json_object_new_string(s) : NULL, false);
}

int table_add_uint64(Table *t, uint64_t v) {
        char buf[32];

        (void) snprintf(buf, sizeof(buf), "%" PRIu64, v);
        return table_add_cell(t, buf, t->json ? json_object_new_uint64(v) : NULL, true);
}

int table_add_size(Table *t, uint64_t bytes) {
        char buf[GMEM_FORMAT_SIZE_MAX];

        if (t->json)
                return table_add_cell(t, NULL, json_object_new_uint64(bytes), true);
        return table_add_cell(t, gmem_format_size(buf, sizeof(buf), bytes), NULL, true);
}

int table_add_id(Table *t, uint32_t v) {
        char buf[16];

        if (v == 0 || v == UINT32_MAX)
                return table_add_cell(t, "-", NULL, true);
        (void) snprintf(buf, sizeof(buf), "%" PRIu32, v);
        return table_add_cell(t, buf, t->json ? json_object_new_uint64(v) : NULL, true);
}

int table_add_bool(Table *t, bool b) {
        return table_add_cell(t, b ? "yes" : "no", t->json ? json_object_new_boolean(b) : NULL, false);
}

int print_json(struct json_object *j) {
        int flags = JSON_C_TO_STRING_NOSLASHESCAPE;
        const char *s;

        flags |= arg_json == JSON_PRETTY ? (JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED)
                                         : JSON_C_TO_STRING_PLAIN;
        s = json_object_to_json_string_ext(j, flags);
        if (s)
                puts(s);
        json_object_put(j);
        return s ? 0 : -ENOMEM;
}

/*
 * --json=short, written row by row: the same bytes json-c prints for the
 * array of objects (no blanks: [{"k":v,...},...]), without building an
 * object with its hash table per row and the whole text in one buffer.
 */
static int table_print_json_short(Table *t) {
        fputc('[', stdout);
        for (size_t row = 0; row < table_rows(t); row++) {
                fputs(row > 0 ? ",{" : "{", stdout);
                for (size_t col = 0; col < t->n_columns; col++) {
                        Cell *cell = &t->cells[row * t->n_columns + col];
                        const char *v = "null";

                        if (cell->json) {
                                v = json_object_to_json_string_ext(cell->json, JSON_C_TO_STRING_PLAIN |
                                                                               JSON_C_TO_STRING_NOSLASHESCAPE);
                                if (!v)
                                        return -ENOMEM;
                        }
                        /* The keys are the verbs' constant identifiers: nothing in them to escape. */
                        fputs(col > 0 ? ",\"" : "\"", stdout);
                        fputs(t->json_keys[col], stdout);
                        fputs("\":", stdout);
                        fputs(v, stdout);
                }
                fputc('}', stdout);
        }
        fputs("]\n", stdout);
        return 0;
}

static int table_print_json(Table *t) {
        struct json_object *array;

        if (arg_json == JSON_SHORT)
                return table_print_json_short(t);

        array = json_object_new_array();

        if (!array)
                return -ENOMEM;
        for (size_t row = 0; row < table_rows(t); row++) {
                struct json_object *o = json_object_new_object();

                if (!o) {
                        json_object_put(array);
                        return -ENOMEM;
                }
                for (size_t col = 0; col < t->n_columns; col++) {
                        Cell *cell = &t->cells[row * t->n_columns + col];

                        /* The object takes the reference; the table keeps none. */
                        json_object_object_add(o, t->json_keys[col], TAKE_PTR(cell->json));
                }
                json_object_array_add(array, o);
        }
        return print_json(array);
}

/* n blanks; without printf's "%*s", which costs as much as the rest of a row. */
static void print_blanks(size_t n) {
        static const char blanks[] = "                                                                ";

        for (; n >= sizeof(blanks) - 1; n -= sizeof(blanks) - 1)
                fwrite(blanks, 1, sizeof(blanks) - 1, stdout);
        fwrite(blanks, 1, n, stdout);
}

static void print_cell(const char *text, size_t width, bool right_align, bool last) {
        size_t l = strlen(text);

        if (right_align && l < width)
                print_blanks(width - l);
        fwrite(text, 1, l, stdout);
        if (!right_align && !last && l < width)
                print_blanks(width - l);   /* the last column gets no trailing blanks */
        fputc(last ? '\n' : ' ', stdout);
}

int table_print(Table *t, const char *empty_message, const char *singular, const char *plural,
                const char *done) {
        size_t rows = table_rows(t);
        _cleanup_free_ size_t *width = NULL;

        if (t->json)
                return table_print_json(t);

        if (rows == 0) {
                if (arg_legend)
                        puts(empty_message);
                return 0;
        }

        width = calloc(t->n_columns, sizeof(*width));
        if (!width)
                return -ENOMEM;
        for (size_t col = 0; col < t->n_columns; col++) {
                if (arg_legend)
                        width[col] = strlen(t->headers[col]);
                for (size_t row = 0; row < rows; row++) {
                        size_t l = strlen(t->cells[row * t->n_columns + col].text);
                        if (l > width[col])
                                width[col] = l;
                }
        }

        if (arg_legend)
                for (size_t col = 0; col < t->n_columns; col++)
                        /* A column's header is aligned like its cells. */
                        print_cell(t->headers[col], width[col], t->cells[col].right_align,
                                   col + 1 == t->n_columns);

        for (size_t row = 0; row < rows; row++)
                for (size_t col = 0; col < t->n_columns; col++) {
                        Cell *cell = &t->cells[row * t->n_columns + col];

                        print_cell(cell->text, width[col], cell->right_align, col + 1 == t->n_columns);
                }

        if (arg_legend)
                printf("\n%zu %s %s.\n", rows, rows == 1 ? singular : plural, done);
        return 0;
}
