/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * migration.h — intra-host migration as a link, not a copy: the target VM
 * gets a new view on each of the source's regions (same inode, same access
 * and window), pending until commit. Commit activates the target's views and
 * revokes the source's; abort drops the target's. A VM is in at most one
 * prepared migration at a time.
 */
#pragma once

#include <stdint.h>

#include "gmem-errors.h"
#include "wire.h"
#include "manager.h"
#include "usage.h"

struct Migration {
        Manager *manager;
        uint64_t id;
        char key[24];               /* decimal id, the hash key */
        char *source_name, *target_name;
        Vm *source, *target;        /* set while prepared */
        MigrationState state;
        size_t n_views;
        View **source_views;        /* set while prepared */
        View **target_views;        /* set while prepared */
        char **regions;             /* names, n_views of them */
};

/*
 * Checks a's quota of views for the pending views a migration of source
 * makes (one per active view) and charges them in the same step: *ret is the
 * charge migration_begin() takes.
 */
int migration_reserve(Vm *source, const Actor *a, UsageCharge *ret, GmemError *e);
/*
 * Creates the target's pending views, each taking its share of *reserved
 * (the charge migration_reserve() made), which is taken over also on
 * failure: then it is released and nothing is left.
 */
int migration_begin(Vm *source, Vm *target, UsageCharge *reserved, Migration **ret, GmemError *e);
/*
 * Rebuilds a prepared migration restored from the fd store: the target's
 * pending views and the source's views of the same regions. If the commit
 * had begun (a source view is revoked already: commit revokes the source's
 * views before it activates the target's), it is finished. With no pending
 * view left (an abort or commit had ended but for the migration's record),
 * there is nothing to rebuild: InvalidArgument, and the record goes.
 */
int migration_adopt(Vm *source, Vm *target, uint64_t id, Migration **ret, GmemError *e);
int migration_commit(Migration *mig, GmemError *e);
/* e may be NULL (used when a leader exits mid-migration). */
int migration_abort(Migration *mig, GmemError *e);

/*
 * Undoes a migration that was begun but never reported to its caller (its
 * reply could not be built): aborts it and forgets it, so nothing about it
 * is listed.
 */
void migration_discard(Migration *mig);
Migration *migration_free(Migration *mig);

static inline uint64_t migration_id(const Migration *mig) {
        return mig ? mig->id : 0;
}
