/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libgmem-show.c — every property of one of the broker's objects as
 * "Name=value" text, as machinectl show prints a machine: what a person or a
 * script reads when no typed getter covers a property yet. Numbers in
 * decimal, booleans yes/no, arrays as space-separated items, and each
 * structure of an array as its fields joined with ':' ("vm1:rw:active").
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libgmem-internal.h"

/* Writes the text of one basic value to f. */
static int append_basic(sd_bus_message *reply, char type, FILE *f) {
        union {
                uint8_t y; int b; int16_t n; uint16_t q; int32_t i; uint32_t u;
                int64_t x; uint64_t t; double d; const char *s;
        } v;
        int r;

        r = sd_bus_message_read_basic(reply, type, &v);
        if (r < 0)
                return r;
        switch (type) {
        case 'y': fprintf(f, "%u", (unsigned) v.y); break;
        case 'b': fputs(v.b ? "yes" : "no", f); break;
        case 'n': fprintf(f, "%d", (int) v.n); break;
        case 'q': fprintf(f, "%u", (unsigned) v.q); break;
        case 'i': fprintf(f, "%" PRIi32, v.i); break;
        case 'u': fprintf(f, "%" PRIu32, v.u); break;
        case 'x': fprintf(f, "%" PRIi64, v.x); break;
        case 't': fprintf(f, "%" PRIu64, v.t); break;
        case 'd': fprintf(f, "%g", v.d); break;
        case 's': case 'o': case 'g': fputs(v.s, f); break;
        default: return -EBADMSG;
        }
        return 0;
}

/* Appends the value the message is at (basic, array of basic, array of structs of basic). */
static int append_value(sd_bus_message *reply, FILE *f) {
        const char *contents;
        char type;
        int r;

        r = sd_bus_message_peek_type(reply, &type, &contents);
        if (r <= 0)
                return r < 0 ? r : -EBADMSG;
        if (type != SD_BUS_TYPE_ARRAY && type != SD_BUS_TYPE_STRUCT)
                return append_basic(reply, type, f);

        r = sd_bus_message_enter_container(reply, type, contents);
        if (r < 0)
                return r;
        for (bool first = true;; first = false) {
                r = sd_bus_message_at_end(reply, false);
                if (r < 0)
                        return r;
                if (r > 0)
                        break;
                if (!first)
                        fputc(type == SD_BUS_TYPE_ARRAY ? ' ' : ':', f);
                r = append_value(reply, f);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_exit_container(reply);
}

static void strv_free_n(char **l, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(l[i]);
        free(l);
}

int gmem_get_properties_text(GmemClient *c, const char *path, char ***ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        char **lines = NULL;
        size_t n = 0;
        int r;

        if (!c || !path || path[0] != '/' || !ret)
                return -EINVAL;
        gmem_client_clear_error(c);

        /* The empty interface: the properties of every interface the object has. */
        r = gmem_get_all_properties(c, path, "", &reply);
        if (r < 0)
                return r;

        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                const char *name, *contents;
                char *line = NULL, **grown;
                size_t size = 0;
                FILE *f;

                r = sd_bus_message_read(reply, "s", &name);
                if (r < 0)
                        break;
                r = sd_bus_message_peek_type(reply, NULL, &contents);
                if (r < 0)
                        break;
                r = sd_bus_message_enter_container(reply, 'v', contents);
                if (r < 0)
                        break;
                f = open_memstream(&line, &size);
                if (!f) {
                        r = -ENOMEM;
                        break;
                }
                fprintf(f, "%s=", name);
                r = append_value(reply, f);
                if (fclose(f) != 0 && r >= 0)
                        r = -ENOMEM;
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                grown = r >= 0 ? realloc(lines, (n + 2) * sizeof(char *)) : NULL;
                if (!grown) {
                        free(line);
                        if (r >= 0)
                                r = -ENOMEM;
                        break;
                }
                lines = grown;
                lines[n++] = line;
                lines[n] = NULL;
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(reply);
        if (r < 0) {
                strv_free_n(lines, n);
                return gmem_client_set_error(c, -r, NULL, "Failed to parse the object's properties");
        }
        if (!lines) {
                lines = calloc(1, sizeof(char *));
                if (!lines)
                        return -ENOMEM;
        }
        *ret = lines;
        return 0;
}

char **gmem_properties_text_free(char **lines) {
        gmem_strv_free(lines);
        return NULL;
}
