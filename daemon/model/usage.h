/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * usage.h — what each caller uid holds (bytes, regions, VMs, views) and the
 * one way to add to it: a reservation that checks every quota of the
 * caller's class and charges them in the same step.
 *
 * An object is made with a charge in hand: region_create(), vm_register(),
 * view_attach() and migration_begin() reserve what they will make, the new
 * object takes the charge over, and freeing the object gives it back. A path
 * that fails before the object exists releases the charge, so nothing is
 * counted for nothing, and since the reservation is the only way to charge,
 * nothing can be charged without being checked (dbus-broker's user_charge()
 * is the model). Objects restored from the fd store are charged the same
 * way, under a class without limits: they existed before, and a policy made
 * stricter since must count them, not refuse them.
 */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "manager.h"
#include "policy.h"

/* Who acts: the uid charged for what the call makes, and the class whose rules and quotas apply. */
typedef struct Actor {
        uid_t uid;
        const PolicyClass *class;   /* NULL: in no class, may make nothing */
} Actor;

/* A class without limits: every verb, every backend, no quota (restoring, and tests). */
extern const PolicyClass usage_unlimited;
#define ACTOR_UNLIMITED(u) ((Actor) { .uid = (u), .class = &usage_unlimited })

typedef struct Usage {
        uint64_t amount[_QUOTA_KIND_MAX];
} Usage;

/* What one object (or one reservation not yet spent) counts against a uid. */
typedef struct UsageCharge {
        Manager *manager;           /* NULL: holds nothing */
        uid_t uid;
        uint64_t amount[_QUOTA_KIND_MAX];
} UsageCharge;

/*
 * Checks want (an amount per QuotaKind) against every quota of the actor's
 * class and, if all allow it, charges the actor's uid and fills ret. On
 * failure nothing is charged, *ret is left empty, and e names the quota, the
 * class, the uid, the limit, the use and the request (QuotaExceeded), or says
 * that a caller in no class may make nothing (AccessDenied).
 */
int usage_reserve(Manager *m, const Actor *a, const Usage *want, UsageCharge *ret, GmemError *e);
/*
 * What every reservation of an object does: usage_reserve() of want, and
 * manager_admit() of the n_entries the store will keep for what the call
 * makes; on failure of either nothing is charged.
 */
int usage_reserve_objects(Manager *m, const Actor *a, const Usage *want, unsigned n_entries, UsageCharge *ret,
                          GmemError *e);
/* Moves n of kind from c into ret (an object taking its share of a reservation); n is at most what c holds. */
void usage_charge_split(UsageCharge *c, QuotaKind kind, uint64_t n, UsageCharge *ret);
/* Hands c over and leaves it empty, for "obj->charge = usage_charge_take(&charge)". */
UsageCharge usage_charge_take(UsageCharge *c);
/* Gives back what c holds and empties it; does nothing for an empty charge. */
void usage_charge_release(UsageCharge *c);

/* uid's current usage; all zero if it holds nothing. */
Usage usage_get(Manager *m, uid_t uid);
/* Frees the whole table (manager teardown, after every object is gone). */
void usage_free_all(Manager *m);
