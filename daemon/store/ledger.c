/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ledger.c — gmemd's records in gmem.ko (ledger.h). The kernel is the
 * ledger; this keeps the index from a record's name to its kernel view id,
 * read from the kernel at open and kept in step with every add and remove.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "backend-kmod.h"
#include "hashmap.h"
#include "ledger.h"
#include "log.h"
#include "macro.h"
#include "store-name.h"

typedef struct Record {
        char *name;
        uint64_t id;            /* the kernel's id of its view */
} Record;

struct Ledger {
        int fd;                 /* handle of the ledger region */
        Hashmap *records;       /* name -> Record */
};

static void record_free(Record *rec) {
        if (!rec)
                return;
        free(rec->name);
        free(rec);
}

static int remember(Ledger *l, const char *name, uint64_t id) {
        Record *rec = calloc(1, sizeof(*rec));

        if (!rec || !(rec->name = strdup(name))) {
                record_free(rec);
                return -ENOMEM;
        }
        rec->id = id;
        if (hashmap_put(l->records, rec->name, rec) < 0) {
                record_free(rec);
                return -ENOMEM;
        }
        return 0;
}

/* One kept view of the ledger region: a record, unless its label is not a name gmemd writes or a second copy. */
static int load_one(uint64_t id, bool pending, bool revoked, const char *label, void *userdata) {
        Ledger *l = userdata;
        int r;

        (void) revoked;
        if (!pending || store_name_kind_of(label) < 0 || strlen(label) >= STORE_NAME_MAX ||
            hashmap_get(l->records, label)) {
                log_warning("Removing ledger record %" PRIu64 " '%s': not a record gmemd keeps", id, label);
                (void) backend_kmod_revoke_view_id(l->fd, id);
                return 0;
        }
        r = remember(l, label, id);
        return r < 0 ? r : 0;
}

int ledger_open(Ledger **ret) {
        Ledger *l;
        int r;

        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->records = hashmap_new();
        if (!l->records) {
                free(l);
                return -ENOMEM;
        }
        l->fd = backend_kmod_ledger_open();
        if (l->fd < 0) {
                r = l->fd;
                ledger_free(l);
                return r;
        }
        r = backend_kmod_for_each_kept_view(l->fd, false, load_one, l);
        if (r < 0) {
                ledger_free(l);
                return r;
        }
        *ret = l;
        return 0;
}

Ledger *ledger_free(Ledger *l) {
        Record *rec;

        if (!l)
                return NULL;
        while ((rec = hashmap_first(l->records))) {
                hashmap_remove(l->records, rec->name);
                record_free(rec);
        }
        hashmap_free(l->records);
        safe_close(l->fd);
        free(l);
        return NULL;
}

int ledger_add(Ledger *l, const char *name) {
        uint64_t id;
        int r;

        if (hashmap_get(l->records, name))
                return 0;
        r = backend_kmod_ledger_add(l->fd, name, &id);
        if (r < 0)
                return r;
        r = remember(l, name, id);
        if (r < 0)
                (void) backend_kmod_revoke_view_id(l->fd, id);
        return r;
}

void ledger_remove(Ledger *l, const char *name) {
        Record *rec = hashmap_get(l->records, name);
        int r;

        if (!rec)
                return;
        r = backend_kmod_revoke_view_id(l->fd, rec->id);
        if (r < 0 && r != -ENOENT)
                log_warning_errno(r, "Cannot remove ledger record '%s'", name);
        hashmap_remove(l->records, rec->name);
        record_free(rec);
}

bool ledger_has(const Ledger *l, const char *name) {
        return hashmap_get(l->records, name) != NULL;
}

size_t ledger_size(const Ledger *l) {
        return hashmap_size(l->records);
}

int ledger_names(const Ledger *l, char ***ret, size_t *ret_n) {
        size_t n = 0, size = hashmap_size(l->records);
        char **names = calloc(size + 1, sizeof(char *));
        Record *rec;

        if (!names)
                return -ENOMEM;
        HASHMAP_FOREACH(rec, l->records, i) {
                names[n] = strdup(rec->name);
                if (!names[n]) {
                        while (n > 0)
                                free(names[--n]);
                        free(names);
                        return -ENOMEM;
                }
                n++;
        }
        *ret = names;
        *ret_n = n;
        return 0;
}
