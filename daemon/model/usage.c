/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * usage.c — per-uid usage counters, in a hash table keyed by the decimal uid.
 * An entry exists only while its uid holds something.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "usage.h"

typedef struct UsageEntry {
        char key[16];
        Usage usage;
} UsageEntry;

static UsageEntry *usage_entry(Manager *m, uid_t uid, bool create) {
        char key[16];
        UsageEntry *u;

        (void) snprintf(key, sizeof(key), "%u", (unsigned) uid);
        u = hashmap_get(m->usage, key);
        if (u || !create)
                return u;
        u = calloc(1, sizeof(*u));
        if (!u)
                return NULL;
        memcpy(u->key, key, sizeof(key));
        if (hashmap_put(m->usage, u->key, u) < 0) {
                free(u);
                return NULL;
        }
        return u;
}

void usage_charge(Manager *m, uid_t uid, QuotaKind kind, int64_t delta) {
        UsageEntry *u;
        bool empty = true;

        if (!m->usage || kind < 0 || kind >= _QUOTA_KIND_MAX || delta == 0)
                return;
        /* Without memory for a new entry the charge is lost: quotas get laxer, never stricter. */
        u = usage_entry(m, uid, delta > 0);
        if (!u)
                return;
        if (delta > 0)
                u->usage.amount[kind] += (uint64_t) delta;
        else
                u->usage.amount[kind] -= (uint64_t) -delta > u->usage.amount[kind] ? u->usage.amount[kind]
                                                                                    : (uint64_t) -delta;
        for (QuotaKind k = 0; k < _QUOTA_KIND_MAX; k++)
                if (u->usage.amount[k])
                        empty = false;
        if (empty) {
                hashmap_remove(m->usage, u->key);
                free(u);
        }
}

Usage usage_get(Manager *m, uid_t uid) {
        UsageEntry *u = m->usage ? usage_entry(m, uid, false) : NULL;
        return u ? u->usage : (Usage) {};
}

int usage_check(Manager *m, const PolicyClass *c, uid_t uid, QuotaKind kind, uint64_t delta, GmemError *e) {
        uint64_t limit = c->quota[kind], used = usage_get(m, uid).amount[kind], total;

        if (limit == POLICY_UNLIMITED)
                return 0;
        if (ADD_OVERFLOW(used, delta, &total) || total > limit)
                return gmem_error_set(e, GMEM_ERROR_QUOTA_EXCEEDED, "Quota '%s' of class '%s' for uid %u: limit %" PRIu64
                                      ", in use %" PRIu64 ", asked for %" PRIu64, quota_kind_to_string(kind), c->name,
                                      (unsigned) uid, limit, used, delta);
        return 0;
}

void usage_free_all(Manager *m) {
        UsageEntry *u;

        while ((u = hashmap_first(m->usage))) {
                hashmap_remove(m->usage, u->key);
                free(u);
        }
}
