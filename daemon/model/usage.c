/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * usage.c — per-uid usage counters, in a hash table keyed by the decimal uid
 * (an entry exists only while its uid holds something), and the charges that
 * objects hold against them. Only usage_reserve() adds to a counter; only
 * releasing a charge takes from one.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "parse.h"
#include "usage.h"

const PolicyClass usage_unlimited = {
        .name = (char *) "unlimited",
        .verbs = UINT32_MAX,
        .scope = POLICY_SCOPE_ALL,
        .backends = UINT32_MAX,
        .max_region_size = POLICY_UNLIMITED,
        .quota = {
                [QUOTA_BYTES]   = POLICY_UNLIMITED,
                [QUOTA_REGIONS] = POLICY_UNLIMITED,
                [QUOTA_VMS]     = POLICY_UNLIMITED,
                [QUOTA_VIEWS]   = POLICY_UNLIMITED,
        },
};

typedef struct UsageEntry {
        char key[GMEM_FORMAT_UINT_MAX];
        Usage usage;
} UsageEntry;

static UsageEntry *usage_entry(Manager *m, uid_t uid) {
        char key[GMEM_FORMAT_UINT_MAX];

        return hashmap_get(m->usage, gmem_format_uint(key, "", uid));
}

static int usage_entry_new(Manager *m, uid_t uid, UsageEntry **ret) {
        UsageEntry *u;
        int r;

        u = calloc(1, sizeof(*u));
        if (!u)
                return -ENOMEM;
        gmem_format_uint(u->key, "", uid);
        r = hashmap_put(m->usage, u->key, u);
        if (r < 0) {
                free(u);
                return r;
        }
        *ret = u;
        return 0;
}

static bool usage_is_empty(const Usage *u) {
        for (QuotaKind k = 0; k < _QUOTA_KIND_MAX; k++)
                if (u->amount[k])
                        return false;
        return true;
}

Usage usage_get(Manager *m, uid_t uid) {
        UsageEntry *u = m->usage ? usage_entry(m, uid) : NULL;
        return u ? u->usage : (Usage) {};
}

/* Counts first, then bytes: a call over both is told about the count, as it always was. */
static const QuotaKind check_order[_QUOTA_KIND_MAX] = { QUOTA_REGIONS, QUOTA_VMS, QUOTA_VIEWS, QUOTA_BYTES };

/* 0 if used plus want fits every limited quota of the actor's class; a sum past 2^64 never fits one. */
static int usage_check(const Actor *a, const Usage *used, const Usage *want, GmemError *e) {
        for (size_t i = 0; i < ELEMENTSOF(check_order); i++) {
                QuotaKind k = check_order[i];
                uint64_t limit = a->class->quota[k], total;

                if (want->amount[k] == 0 || limit == POLICY_UNLIMITED)
                        continue;
                if (!ADD_OVERFLOW(used->amount[k], want->amount[k], &total) && total <= limit)
                        continue;
                return gmem_error_set(e, GMEM_ERROR_QUOTA_EXCEEDED, "Quota '%s' of class '%s' for uid %u: limit %"
                                      PRIu64 ", in use %" PRIu64 ", asked for %" PRIu64, quota_kind_to_string(k),
                                      a->class->name, (unsigned) a->uid, limit, used->amount[k], want->amount[k]);
        }
        return 0;
}

int usage_reserve(Manager *m, const Actor *a, const Usage *want, UsageCharge *ret, GmemError *e) {
        UsageEntry *u;
        Usage used;
        int r;

        *ret = (UsageCharge) {};
        if (!a->class)
                return gmem_error_set(e, GMEM_ERROR_ACCESS_DENIED, "Access denied: uid %u is in no class of the "
                                      "policy and may not make anything", (unsigned) a->uid);
        u = usage_entry(m, a->uid);
        used = u ? u->usage : (Usage) {};
        r = usage_check(a, &used, want, e);
        if (r < 0)
                return r;
        if (usage_is_empty(want)) {
                *ret = (UsageCharge) { .manager = m, .uid = a->uid };
                return 0;
        }
        if (!u) {
                r = usage_entry_new(m, a->uid, &u);
                if (r < 0)
                        return gmem_error_set_errno(e, r, "Cannot count what uid %u holds", (unsigned) a->uid);
        }
        /*
         * A limited quota refused any sum past 2^64 above. An unlimited one is not checked at all (a request
         * that large fails its own validation, as it always did): its counter stops at 2^64 - 1, and the
         * charge records what was added, so that releasing it gives back exactly that.
         */
        *ret = (UsageCharge) { .manager = m, .uid = a->uid };
        for (QuotaKind k = 0; k < _QUOTA_KIND_MAX; k++) {
                uint64_t add = want->amount[k];

                if (add > UINT64_MAX - u->usage.amount[k])
                        add = UINT64_MAX - u->usage.amount[k];
                u->usage.amount[k] += add;
                ret->amount[k] = add;
        }
        return 0;
}

int usage_reserve_objects(Manager *m, const Actor *a, const Usage *want, unsigned n_entries, UsageCharge *ret,
                          GmemError *e) {
        int r;

        r = usage_reserve(m, a, want, ret, e);
        if (r < 0)
                return r;
        r = manager_admit(m, n_entries, e);
        if (r < 0)
                usage_charge_release(ret);
        return r;
}

void usage_charge_split(UsageCharge *c, QuotaKind kind, uint64_t n, UsageCharge *ret) {
        if (n > c->amount[kind])
                n = c->amount[kind];
        *ret = (UsageCharge) { .manager = c->manager, .uid = c->uid };
        ret->amount[kind] = n;
        c->amount[kind] -= n;
}

UsageCharge usage_charge_take(UsageCharge *c) {
        UsageCharge t = *c;

        *c = (UsageCharge) {};
        return t;
}

void usage_charge_release(UsageCharge *c) {
        UsageEntry *u;

        if (!c || !c->manager)
                return;
        u = c->manager->usage ? usage_entry(c->manager, c->uid) : NULL;
        if (u) {
                for (QuotaKind k = 0; k < _QUOTA_KIND_MAX; k++)
                        u->usage.amount[k] -= c->amount[k] > u->usage.amount[k] ? u->usage.amount[k] : c->amount[k];
                if (usage_is_empty(&u->usage)) {
                        hashmap_remove(c->manager->usage, u->key);
                        free(u);
                }
        }
        *c = (UsageCharge) {};
}

void usage_free_all(Manager *m) {
        UsageEntry *u;

        while ((u = hashmap_first(m->usage))) {
                hashmap_remove(m->usage, u->key);
                free(u);
        }
}
