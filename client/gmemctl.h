/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * gmemctl.h — what gmemctl's files share: the parsed command line (arg_*),
 * the verbs, the table printer, and the two ways a verb fails (the broker
 * refused, exit 1; the command line was wrong, exit 2).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "libgmem.h"
#include "macro.h"
#include "wire.h"

typedef enum JsonMode {
        JSON_OFF,
        JSON_SHORT,
        JSON_PRETTY,
} JsonMode;

/* Where gmemctl finds the broker (--direct, --bus; --bus-address= is always a bus). */
typedef enum ConnectMode {
        CONNECT_ANY,      /* gmem_connect(): the direct socket if it lets us in, else the system bus */
        CONNECT_DIRECT,   /* the direct socket only */
        CONNECT_BUS,      /* the system bus only */
} ConnectMode;

extern const char *arg_bus_address;
extern ConnectMode arg_connect;
extern const char *arg_direct_path;  /* --direct=PATH; NULL: $GMEM_DIRECT_SOCKET or the default */
extern bool arg_legend;
extern JsonMode arg_json;
extern const char *arg_backend;
extern uint64_t arg_hugepage_size;
extern bool arg_populate;
extern const char *arg_owner;
extern int arg_fd;               /* adopt-region: -EBADF if not given */
extern pid_t arg_leader_pid;
extern uid_t arg_uid;
extern GmemAccess arg_access;
extern uint64_t arg_offset;
extern uint64_t arg_length;
extern bool arg_allocate;
extern bool arg_exec;
extern char **arg_exec_argv;   /* what follows "--" when --exec is given */
extern bool arg_no_commit;
extern const char *arg_qmp;     /* hotplug, unplug: the QMP socket's path */
extern const char *arg_id;      /* hotplug, unplug: the DIMM's id; NULL: VM.REGION */
extern uint64_t arg_timeout_usec;
extern char **arg_property;    /* show: the properties to print, NULL-terminated; NULL: all */

static inline const char *strempty(const char *s) {
        return s ? s : "";
}

static inline bool streq_ptr(const char *a, const char *b) {
        return a && b && streq(a, b);
}

/* Where sd-bus finds the system bus when $DBUS_SYSTEM_BUS_ADDRESS is not set. */
#define GMEM_SYSTEM_BUS_ADDRESS_DEFAULT "unix:path=/run/dbus/system_bus_socket"

/* A usage error: exit status 2 instead of 1. Not an errno. */
#define EUSAGE 4096

/* Prints "gmemctl: <message>" and returns r. */
int log_error_errno(int r, const char *fmt, ...) _printf_(2, 3);
/* Prints "gmemctl: <message>" and returns -EUSAGE. */
int log_usage(const char *fmt, ...) _printf_(1, 2);
/*
 * Prints the broker's message of c's last failed call as "gmemctl: <message>",
 * or, when there is none, the fallback followed by strerror(r). Returns r.
 */
int log_client_error(GmemClient *c, int r, const char *fallback, ...) _printf_(3, 4);

/* Parses a size with K/M/G/T suffixes; a usage error naming what when malformed. */
int parse_size_arg(const char *what, const char *s, uint64_t *ret);

/* Prints a JSON value in the --json mode and releases it. */
int print_json(struct json_object *j);

/* Verbs: argc/argv start with the verb itself. */
int verb_status(GmemClient *c, int argc, char **argv);
int verb_list_regions(GmemClient *c, int argc, char **argv);
int verb_create_region(GmemClient *c, int argc, char **argv);
int verb_adopt_region(GmemClient *c, int argc, char **argv);
int verb_destroy_region(GmemClient *c, int argc, char **argv);
int verb_list_vms(GmemClient *c, int argc, char **argv);
int verb_register_vm(GmemClient *c, int argc, char **argv);
int verb_unregister_vm(GmemClient *c, int argc, char **argv);
int verb_discard(GmemClient *c, int argc, char **argv);
int verb_reload(GmemClient *c, int argc, char **argv);
int verb_set_attributes(GmemClient *c, int argc, char **argv);
int verb_attributes(GmemClient *c, int argc, char **argv);
int verb_monitor(GmemClient *c, int argc, char **argv);
int verb_attach(GmemClient *c, int argc, char **argv);
int verb_detach(GmemClient *c, int argc, char **argv);
int verb_get_fd(GmemClient *c, int argc, char **argv);
int verb_migrate(GmemClient *c, int argc, char **argv);
int verb_list_migrations(GmemClient *c, int argc, char **argv);
int verb_commit_migration(GmemClient *c, int argc, char **argv);
int verb_show(GmemClient *c, int argc, char **argv);
int verb_hotplug(GmemClient *c, int argc, char **argv);
int verb_unplug(GmemClient *c, int argc, char **argv);

/*
 * Starts arg_exec_argv in place of gmemctl with fds inherited: $GMEM_FD is
 * the first, $GMEM_FDS lists "region=fd" pairs, $GMEM_MIGRATION the
 * migration's id when one is given. Returns only on failure.
 */
int exec_with_fds(char *const *regions, const int *fds, size_t n, const char *migration);

static inline void gmem_client_unrefp(GmemClient **c) {
        gmem_client_unref(*c);
}

/* Tables: a header, rows, a footer ("3 regions listed."), or JSON objects. */
typedef struct Table Table;

Table *table_new(size_t n_columns, const char *const *headers, const char *const *json_keys);
Table *table_free(Table *t);
/* Cells are added row by row, left to right. */
int table_add_string(Table *t, const char *s);         /* NULL or "": "-" in the table, null in JSON */
int table_add_uint64(Table *t, uint64_t v);
int table_add_size(Table *t, uint64_t bytes);          /* "1G" in the table, the number in JSON */
int table_add_id(Table *t, uint32_t v);                /* 0 or (uint32_t) -1: "-" / null */
int table_add_bool(Table *t, bool b);
/* text in the table, j in JSON (taken, may be NULL for null). */
int table_add_cell(Table *t, const char *text, struct json_object *j, bool right_align);
/* Whether t prints JSON (--json): a cell's JSON value need not be built otherwise. */
bool table_wants_json(const Table *t);
/* Makes room for rows rows, so that a long list is not copied as it grows. */
int table_reserve(Table *t, size_t rows);
size_t table_rows(const Table *t);
/*
 * Prints the table, or JSON when --json is given. An empty table prints
 * empty_message ("No regions.") with the legend on. The footer names the
 * rows with singular/plural and the verb ("listed").
 */
int table_print(Table *t, const char *empty_message, const char *singular, const char *plural,
                const char *done);

DEFINE_TRIVIAL_CLEANUP_FUNC(Table *, table_free);
#define _cleanup_table_ _cleanup_(table_freep)
