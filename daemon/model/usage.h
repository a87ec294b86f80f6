/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * usage.h — what each caller uid holds: bytes and number of regions, VMs and
 * views it created. Objects remember their creator and charge and release
 * it themselves, so the counts are right however an object goes away (a
 * method, a leader's exit, a migration). Quotas are checked against these
 * counts before anything is allocated.
 */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "manager.h"
#include "policy.h"

typedef struct Usage {
        uint64_t amount[_QUOTA_KIND_MAX];
} Usage;

/* Adds (or with negative delta, removes) delta of kind to uid's usage. */
void usage_charge(Manager *m, uid_t uid, QuotaKind kind, int64_t delta);
/* uid's current usage; all zero if it holds nothing. */
Usage usage_get(Manager *m, uid_t uid);
/*
 * 0 if uid may take delta more of kind under class c's quota, otherwise
 * QuotaExceeded naming the quota, the limit, the use and the request.
 */
int usage_check(Manager *m, const PolicyClass *c, uid_t uid, QuotaKind kind, uint64_t delta, GmemError *e);
/* Frees the whole table (manager teardown). */
void usage_free_all(Manager *m);
