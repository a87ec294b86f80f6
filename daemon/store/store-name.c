/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * store-name.c — the fd store's entry names (the scheme is in store-name.h),
 * written and read in one place. It knows nothing of the model or of the
 * service manager: a StoreName in, a string out, and back.
 *
 * One row per kind holds its field count and its steps: reading the fields
 * (the syntax: numbers, wire names, '-', L or N), checking the description
 * (what the scheme can hold: ids not 0, valid names, a power of two page
 * size, uid ranges), comparing two and writing one. Parsing runs the check
 * that formatting runs first, so whatever parses can be written again, and
 * whatever is written parses.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "store-name.h"
#include "string-table.h"

/* The most fields a name has (a view's). */
#define FIELDS_MAX 9

static const char *const store_name_kind_table[_STORE_NAME_KIND_MAX] = {
        [STORE_NAME_REGION]    = "region",
        [STORE_NAME_VM]        = "vm",
        [STORE_NAME_VIEW]      = "view",
        [STORE_NAME_REVOKED]   = "revoked",
        [STORE_NAME_PENDING]   = "pending",
        [STORE_NAME_MIGRATION] = "migration",
};
DEFINE_STRING_TABLE_LOOKUP(store_name_kind, StoreNameKind);

/* --- fields --- */

/* Digits only, at least one, at most 2^64 - 1; leading zeros are read, as they always were. */
static int parse_number(const char *s, uint64_t *ret) {
        uint64_t v = 0;

        if (!*s)
                return -EINVAL;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                if (MUL_OVERFLOW(v, (uint64_t) 10, &v) || ADD_OVERFLOW(v, (uint64_t) (*p - '0'), &v))
                        return -EINVAL;
        }
        *ret = v;
        return 0;
}

static int parse_uid(const char *s, uint64_t max, uid_t *ret) {
        uint64_t v;

        if (parse_number(s, &v) < 0 || v > max)
                return -EINVAL;
        *ret = (uid_t) v;
        return 0;
}

/* A flag is a number: 0 is false, anything else true. */
static int parse_flag(const char *s, bool *ret) {
        uint64_t v;

        if (parse_number(s, &v) < 0)
                return -EINVAL;
        *ret = v != 0;
        return 0;
}

/* Copies a name field; the check decides whether it is a valid name. */
static int parse_string(const char *s, char *buf, size_t size) {
        size_t n = strlen(s);

        if (n >= size)
                return -EINVAL;
        memcpy(buf, s, n + 1);
        return 0;
}

/* --- region/ID/BACKEND/PAGE_SIZE/CREATOR/0/NAME/OWNER --- */

static int parse_region(char *const *f, StoreName *n) {
        BackendType t = backend_type_from_string(f[2]);
        bool unused;

        if (t < 0)
                return -EINVAL;
        n->region.backend = t;
        if (parse_number(f[1], &n->region.id) < 0 || parse_number(f[3], &n->region.page_size) < 0 ||
            parse_uid(f[4], UINT32_MAX, &n->region.creator) < 0 || parse_flag(f[5], &unused) < 0 ||
            parse_string(f[6], n->region.name, sizeof(n->region.name)) < 0 ||
            parse_string(f[7], n->region.owner, sizeof(n->region.owner)) < 0)
                return -EINVAL;
        return 0;
}

static int check_region(const StoreName *n) {
        uint64_t ps = n->region.page_size;

        if (n->region.id == 0 || !backend_type_to_string(n->region.backend) || ps == 0 || (ps & (ps - 1)))
                return -EINVAL;
        if (!gmem_name_is_valid(n->region.name))
                return -EINVAL;
        if (n->region.owner[0] && !gmem_name_is_valid(n->region.owner))
                return -EINVAL;
        return 0;
}

static bool equal_region(const StoreName *a, const StoreName *b) {
        return a->region.id == b->region.id && a->region.backend == b->region.backend &&
               a->region.page_size == b->region.page_size && a->region.creator == b->region.creator &&
               streq(a->region.name, b->region.name) &&
               streq(a->region.owner, b->region.owner);
}

static int format_region(const StoreName *n, char *buf, size_t size) {
        return snprintf(buf, size, "region/%" PRIu64 "/%s/%" PRIu64 "/%u/0/%s/%s", n->region.id,
                        backend_type_to_string(n->region.backend), n->region.page_size, (unsigned) n->region.creator,
                        n->region.name, n->region.owner);
}

/* --- vm/ID/UID|-/CREATOR/L|N/NAME --- */

/* L, N, or L.PID.START: a leader, none, or a leader with its pid and start time. */
static int parse_leader(const char *s, StoreName *n) {
        char buf[64], *dot;
        uint64_t pid;

        n->vm.leader_pid = 0;
        n->vm.leader_start = 0;
        if (streq(s, "L") || streq(s, "N")) {
                n->vm.leader = streq(s, "L");
                return 0;
        }
        if (strncmp(s, "L.", 2) != 0 || strlen(s) >= sizeof(buf))
                return -EINVAL;
        strcpy(buf, s + 2);
        dot = strchr(buf, '.');
        if (!dot)
                return -EINVAL;
        *dot = 0;
        if (parse_number(buf, &pid) < 0 || pid == 0 || pid > INT32_MAX ||
            parse_number(dot + 1, &n->vm.leader_start) < 0 || n->vm.leader_start == 0)
                return -EINVAL;
        n->vm.leader = true;
        n->vm.leader_pid = (uint32_t) pid;
        return 0;
}

static int parse_vm(char *const *f, StoreName *n) {
        if (parse_leader(f[4], n) < 0)
                return -EINVAL;
        n->vm.has_uid = !streq(f[2], "-");
        n->vm.uid = 0;
        /* (uid_t) -1 is no user: the highest uid is one less. */
        if (n->vm.has_uid && parse_uid(f[2], UINT32_MAX - 1, &n->vm.uid) < 0)
                return -EINVAL;
        if (parse_number(f[1], &n->vm.id) < 0 || parse_uid(f[3], UINT32_MAX, &n->vm.creator) < 0 ||
            parse_string(f[5], n->vm.name, sizeof(n->vm.name)) < 0)
                return -EINVAL;
        return 0;
}

static int check_vm(const StoreName *n) {
        if (n->vm.id == 0 || (n->vm.has_uid && n->vm.uid == (uid_t) UINT32_MAX) || !gmem_name_is_valid(n->vm.name))
                return -EINVAL;
        return 0;
}

static bool equal_vm(const StoreName *a, const StoreName *b) {
        return a->vm.id == b->vm.id && a->vm.has_uid == b->vm.has_uid && (!a->vm.has_uid || a->vm.uid == b->vm.uid) &&
               a->vm.creator == b->vm.creator && a->vm.leader == b->vm.leader &&
               a->vm.leader_pid == b->vm.leader_pid && a->vm.leader_start == b->vm.leader_start &&
               streq(a->vm.name, b->vm.name);
}

static int format_vm(const StoreName *n, char *buf, size_t size) {
        char uid[16] = "-", leader[48] = "N";

        if (n->vm.has_uid)
                (void) snprintf(uid, sizeof(uid), "%u", (unsigned) n->vm.uid);
        if (n->vm.leader && n->vm.leader_pid && n->vm.leader_start)
                (void) snprintf(leader, sizeof(leader), "L.%" PRIu32 ".%" PRIu64, n->vm.leader_pid,
                                n->vm.leader_start);
        else if (n->vm.leader)
                (void) snprintf(leader, sizeof(leader), "L");
        return snprintf(buf, size, "vm/%" PRIu64 "/%s/%u/%s/%s", n->vm.id, uid, (unsigned) n->vm.creator, leader,
                        n->vm.name);
}

/* --- view|revoked/ID/REGION_ID/VM_ID/ro|rw/OFFSET/LENGTH/ALLOCATE/CREATOR --- */

static int parse_view(char *const *f, StoreName *n) {
        ViewAccess a = view_access_from_string(f[4]);

        if (a < 0)
                return -EINVAL;
        n->view.access = a;
        if (parse_number(f[1], &n->view.id) < 0 || parse_number(f[2], &n->view.region_id) < 0 ||
            parse_number(f[3], &n->view.vm_id) < 0 || parse_number(f[5], &n->view.offset) < 0 ||
            parse_number(f[6], &n->view.length) < 0 || parse_flag(f[7], &n->view.allocate) < 0 ||
            parse_uid(f[8], UINT32_MAX, &n->view.creator) < 0)
                return -EINVAL;
        return 0;
}

static int check_view(const StoreName *n) {
        if (n->view.id == 0 || n->view.region_id == 0 || n->view.vm_id == 0 || !view_access_to_string(n->view.access))
                return -EINVAL;
        return 0;
}

static bool equal_view(const StoreName *a, const StoreName *b) {
        return a->view.id == b->view.id && a->view.region_id == b->view.region_id && a->view.vm_id == b->view.vm_id &&
               a->view.access == b->view.access && a->view.offset == b->view.offset &&
               a->view.length == b->view.length && a->view.allocate == b->view.allocate &&
               a->view.creator == b->view.creator;
}

static int format_view(const StoreName *n, char *buf, size_t size) {
        return snprintf(buf, size, "%s/%" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%s/%" PRIu64 "/%" PRIu64 "/%d/%u",
                        store_name_kind_to_string(n->kind), n->view.id, n->view.region_id, n->view.vm_id,
                        view_access_to_string(n->view.access), n->view.offset, n->view.length, n->view.allocate,
                        (unsigned) n->view.creator);
}

/* --- pending/ID --- */

static int parse_pending(char *const *f, StoreName *n) {
        return parse_number(f[1], &n->pending.view_id);
}

static int check_pending(const StoreName *n) {
        return n->pending.view_id == 0 ? -EINVAL : 0;
}

static bool equal_pending(const StoreName *a, const StoreName *b) {
        return a->pending.view_id == b->pending.view_id;
}

static int format_pending(const StoreName *n, char *buf, size_t size) {
        return snprintf(buf, size, "pending/%" PRIu64, n->pending.view_id);
}

/* --- migration/ID/SOURCE_VM_ID/TARGET_VM_ID --- */

static int parse_migration(char *const *f, StoreName *n) {
        if (parse_number(f[1], &n->migration.id) < 0 || parse_number(f[2], &n->migration.source_vm_id) < 0 ||
            parse_number(f[3], &n->migration.target_vm_id) < 0)
                return -EINVAL;
        return 0;
}

static int check_migration(const StoreName *n) {
        if (n->migration.id == 0 || n->migration.source_vm_id == 0 || n->migration.target_vm_id == 0)
                return -EINVAL;
        return 0;
}

static bool equal_migration(const StoreName *a, const StoreName *b) {
        return a->migration.id == b->migration.id && a->migration.source_vm_id == b->migration.source_vm_id &&
               a->migration.target_vm_id == b->migration.target_vm_id;
}

static int format_migration(const StoreName *n, char *buf, size_t size) {
        return snprintf(buf, size, "migration/%" PRIu64 "/%" PRIu64 "/%" PRIu64, n->migration.id,
                        n->migration.source_vm_id, n->migration.target_vm_id);
}

/* --- the kinds --- */

typedef struct KindOps {
        size_t n_fields;                                                /* with the kind itself */
        int (*parse)(char *const *field, StoreName *n);                 /* field[0] is the kind */
        int (*check)(const StoreName *n);
        bool (*equal)(const StoreName *a, const StoreName *b);          /* a and b of this kind */
        int (*format)(const StoreName *n, char *buf, size_t size);      /* snprintf()'s result */
} KindOps;

static const KindOps kind_ops[_STORE_NAME_KIND_MAX] = {
        [STORE_NAME_REGION]    = { 8, parse_region,    check_region,    equal_region,    format_region },
        [STORE_NAME_VM]        = { 6, parse_vm,        check_vm,        equal_vm,        format_vm },
        [STORE_NAME_VIEW]      = { 9, parse_view,      check_view,      equal_view,      format_view },
        [STORE_NAME_REVOKED]   = { 9, parse_view,      check_view,      equal_view,      format_view },
        [STORE_NAME_PENDING]   = { 2, parse_pending,   check_pending,   equal_pending,   format_pending },
        [STORE_NAME_MIGRATION] = { 4, parse_migration, check_migration, equal_migration, format_migration },
};

static const KindOps *kind_ops_get(StoreNameKind k) {
        if (k < 0 || k >= _STORE_NAME_KIND_MAX)
                return NULL;
        return &kind_ops[k];
}

StoreNameKind store_name_kind_of(const char *s) {
        char kind[16];
        size_t n;

        if (!s)
                return _STORE_NAME_KIND_INVALID;
        n = strcspn(s, "/");
        if (n >= sizeof(kind))
                return _STORE_NAME_KIND_INVALID;
        memcpy(kind, s, n);
        kind[n] = 0;
        return store_name_kind_from_string(kind);
}

int store_name_format(const StoreName *n, char *buf, size_t size) {
        const KindOps *ops;
        char name[STORE_NAME_MAX];
        int len;

        if (!n || !buf)
                return -EINVAL;
        ops = kind_ops_get(n->kind);
        if (!ops || ops->check(n) < 0)
                return -EINVAL;
        len = ops->format(n, name, sizeof(name));
        if (len < 0)
                return -EINVAL;
        if ((size_t) len >= sizeof(name) || (size_t) len >= size)
                return -ENAMETOOLONG;
        memcpy(buf, name, (size_t) len + 1);
        return 0;
}

int store_name_parse(const char *s, StoreName *ret) {
        char copy[STORE_NAME_MAX], *field[FIELDS_MAX], *p;
        const KindOps *ops;
        size_t len, n_fields = 0;
        StoreName n = {};

        if (!s || !ret)
                return -EINVAL;
        len = strlen(s);
        if (len >= sizeof(copy))
                return -EINVAL;
        memcpy(copy, s, len + 1);

        /* Split at every '/': "a//b/" is four fields, two of them empty. */
        for (p = copy;;) {
                if (n_fields >= FIELDS_MAX)
                        return -EINVAL;
                field[n_fields++] = p;
                p = strchr(p, '/');
                if (!p)
                        break;
                *p++ = 0;
        }

        n.kind = store_name_kind_from_string(field[0]);
        ops = kind_ops_get(n.kind);
        if (!ops || n_fields != ops->n_fields)
                return -EINVAL;
        if (ops->parse(field, &n) < 0 || ops->check(&n) < 0)
                return -EINVAL;
        *ret = n;
        return 0;
}

bool store_name_equal(const StoreName *a, const StoreName *b) {
        const KindOps *ops = kind_ops_get(a->kind);

        return ops && a->kind == b->kind && ops->equal(a, b);
}
