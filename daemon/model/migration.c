/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * migration.c — prepare, commit and abort of intra-host migrations, and the
 * bounded history of finished ones. While prepared, the migration pins its
 * views: neither VM can attach, detach or unregister, so the view pointers it
 * holds stay valid until it finishes.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migration.h"
#include "region.h"
#include "view.h"
#include "vm.h"

/* While prepared, the migration pins its views and both VMs. */
static void migration_pin(Migration *mig, Vm *source, Vm *target) {
        for (size_t i = 0; i < mig->n_views; i++) {
                mig->source_views[i]->migration = mig;
                mig->target_views[i]->migration = mig;
        }
        mig->source = source;
        mig->target = target;
        source->migration = mig;
        target->migration = mig;
}

static void migration_unpin(Migration *mig) {
        for (size_t i = 0; i < mig->n_views; i++) {
                if (mig->source_views && mig->source_views[i])
                        mig->source_views[i]->migration = NULL;
                if (mig->target_views && mig->target_views[i])
                        mig->target_views[i]->migration = NULL;
        }
        free(mig->source_views);
        free(mig->target_views);
        mig->source_views = mig->target_views = NULL;
        if (mig->source && mig->source->migration == mig)
                mig->source->migration = NULL;
        if (mig->target && mig->target->migration == mig)
                mig->target->migration = NULL;
        mig->source = mig->target = NULL;
}

Migration *migration_free(Migration *mig) {
        if (!mig)
                return NULL;
        migration_unpin(mig);
        if (mig->manager)
                (void) hashmap_remove_value(mig->manager->migrations, mig->key, mig);
        if (mig->regions)
                for (size_t i = 0; i < mig->n_views; i++)
                        free(mig->regions[i]);
        free(mig->regions);
        free(mig->source_name);
        free(mig->target_name);
        free(mig);
        return NULL;
}

/* Keeps at most MANAGER_FINISHED_MIGRATIONS_MAX finished migrations; the oldest go first. */
static void migration_prune(Manager *m) {
        size_t finished = 0;
        Migration *mig;

        HASHMAP_FOREACH(mig, m->migrations, i)
                if (mig->state != MIGRATION_PREPARED)
                        finished++;

        HASHMAP_FOREACH(mig, m->migrations, i) {
                if (finished <= MANAGER_FINISHED_MIGRATIONS_MAX)
                        break;
                if (mig->state == MIGRATION_PREPARED)
                        continue;
                manager_notify_migration_removed(m, mig);
                migration_free(mig);
                finished--;
        }
}

/* The source's active views: what a migration gives the target. */
static size_t migration_count_views(Vm *source) {
        size_t n = 0;
        View *v;

        HASHMAP_FOREACH(v, source->views, i)
                if (v->state == VIEW_STATE_ACTIVE)
                        n++;
        return n;
}

static int migration_check_begin(Vm *source, Vm *target, size_t n, GmemError *e) {
        View *v;

        if (source == target)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Cannot migrate VM '%s' to itself", source->name);
        if (source->migration)
                return gmem_error_set(e, GMEM_ERROR_MIGRATION_IN_PROGRESS, "VM '%s' is in migration %" PRIu64 " already",
                                      source->name, source->migration->id);
        if (target->migration)
                return gmem_error_set(e, GMEM_ERROR_MIGRATION_IN_PROGRESS, "VM '%s' is in migration %" PRIu64 " already",
                                      target->name, target->migration->id);
        HASHMAP_FOREACH(v, source->views, i) {
                View *t;

                if (v->state != VIEW_STATE_ACTIVE)
                        continue;
                t = view_lookup(target, v->region);
                if (t && t->state != VIEW_STATE_REVOKED)
                        return gmem_error_set(e, GMEM_ERROR_BUSY, "Target VM '%s' has a view of region '%s' already",
                                              target->name, v->region->name);
        }
        if (n == 0)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "VM '%s' has no active views to migrate",
                                      source->name);
        return 0;
}

int migration_reserve(Vm *source, const Actor *a, UsageCharge *ret, GmemError *e) {
        size_t n = migration_count_views(source);
        Usage want = { .amount = { [QUOTA_VIEWS] = n } };

        /* Store entries: each pending view's file and its pending record, and the migration's record. */
        return usage_reserve_objects(source->manager, a, &want, n > (UINT_MAX - 1) / 2 ? UINT_MAX : (unsigned) (2 * n + 1),
                                     ret, e);
}

int migration_begin(Vm *source, Vm *target, UsageCharge *reserved, Migration **ret, GmemError *e) {
        _cleanup_(usage_charge_release) UsageCharge charge = usage_charge_take(reserved);
        Manager *m = source->manager;
        size_t n = migration_count_views(source), k = 0;
        Migration *mig;
        View *v;
        int r;

        if (charge.manager != m || charge.amount[QUOTA_VIEWS] != n)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Migration of VM '%s' was not reserved",
                                      source->name);
        r = migration_check_begin(source, target, n, e);
        if (r < 0)
                return r;

        mig = calloc(1, sizeof(*mig));
        if (!mig)
                return gmem_error_set_errno(e, ENOMEM, "Cannot allocate migration");
        mig->manager = m;
        mig->state = MIGRATION_PREPARED;
        mig->source_name = strdup(source->name);
        mig->target_name = strdup(target->name);
        mig->source_views = calloc(n, sizeof(View *));
        mig->target_views = calloc(n, sizeof(View *));
        mig->regions = calloc(n, sizeof(char *));
        if (!mig->source_name || !mig->target_name || !mig->source_views || !mig->target_views || !mig->regions) {
                migration_free(mig);
                return gmem_error_set_errno(e, ENOMEM, "Cannot allocate migration");
        }
        mig->n_views = n;

        HASHMAP_FOREACH(v, source->views, i) {
                if (v->state != VIEW_STATE_ACTIVE)
                        continue;
                mig->regions[k] = strdup(v->region->name);
                if (!mig->regions[k]) {
                        r = gmem_error_set_errno(e, ENOMEM, "Cannot allocate migration");
                        goto undo_views;
                }
                r = view_new_pending(target, v, &charge, &mig->target_views[k], e);
                if (r < 0)
                        goto undo_views;
                mig->source_views[k] = v;
                k++;
        }

        mig->id = m->next_migration_id;
        (void) snprintf(mig->key, sizeof(mig->key), "%" PRIu64, mig->id);
        r = hashmap_put(m->migrations, mig->key, mig);
        if (r < 0) {
                r = gmem_error_set_errno(e, r, "Cannot index migration");
                goto undo_views;
        }
        m->next_migration_id++;

        migration_pin(mig, source, target);
        manager_notify_migration_new(m, mig);
        *ret = mig;
        return 0;

undo_views:
        for (size_t i = 0; i < n; i++)
                view_remove(TAKE_PTR(mig->target_views[i]));
        migration_free(mig);
        return r;
}

/*
 * The source's view a restored pending view of the target was made from: the
 * target's pending views belong to its one prepared migration, and the
 * source's view of the same region is active, or revoked when a commit was
 * under way (a commit revokes the source's views before it activates the
 * target's, so a revoked source view can only be this migration's doing).
 */
static View *migration_adopt_source(Vm *source, View *t) {
        View *s;

        if (t->state != VIEW_STATE_PENDING)
                return NULL;
        s = view_lookup(source, t->region);
        return s && s->state != VIEW_STATE_PENDING ? s : NULL;
}

int migration_adopt(Vm *source, Vm *target, uint64_t id, Migration **ret, GmemError *e) {
        Manager *m = source->manager;
        Migration *mig;
        bool committing = false;
        size_t n = 0, k = 0;
        View *t;
        int r;

        if (id == 0 || source == target || source->migration || target->migration || manager_get_migration(m, id))
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Stored migration %" PRIu64 " is not valid here", id);

        HASHMAP_FOREACH(t, target->views, i) {
                View *s = migration_adopt_source(source, t);
                if (!s)
                        continue;
                if (s->state == VIEW_STATE_REVOKED)
                        committing = true;
                n++;
        }
        /*
         * No pending view of the target left: an abort was under way (it drops the migration's record
         * first, so that is the one point it leaves one), or a commit had ended but for the record.
         * Nothing to finish either way.
         */
        if (n == 0)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Stored migration %" PRIu64 " of VM '%s' to '%s' "
                                      "has no pending views left", id, source->name, target->name);

        mig = calloc(1, sizeof(*mig));
        if (!mig)
                return gmem_error_set_errno(e, ENOMEM, "Cannot allocate migration");
        mig->manager = m;
        mig->id = id;
        mig->state = MIGRATION_PREPARED;
        (void) snprintf(mig->key, sizeof(mig->key), "%" PRIu64, id);
        mig->source_name = strdup(source->name);
        mig->target_name = strdup(target->name);
        mig->source_views = calloc(n + 1, sizeof(View *));
        mig->target_views = calloc(n + 1, sizeof(View *));
        mig->regions = calloc(n + 1, sizeof(char *));
        if (!mig->source_name || !mig->target_name || !mig->source_views || !mig->target_views || !mig->regions) {
                migration_free(mig);
                return gmem_error_set_errno(e, ENOMEM, "Cannot allocate migration");
        }
        HASHMAP_FOREACH(t, target->views, i) {
                View *s = migration_adopt_source(source, t);
                if (!s)
                        continue;
                mig->regions[k] = strdup(t->region->name);
                if (!mig->regions[k]) {
                        mig->n_views = k;
                        migration_free(mig);
                        return gmem_error_set_errno(e, ENOMEM, "Cannot allocate migration");
                }
                mig->source_views[k] = s;
                mig->target_views[k] = t;
                k++;
        }
        mig->n_views = n;
        r = hashmap_put(m->migrations, mig->key, mig);
        if (r < 0) {
                migration_free(mig);
                return gmem_error_set_errno(e, r, "Cannot index migration");
        }
        if (id >= m->next_migration_id)
                m->next_migration_id = id + 1;
        migration_pin(mig, source, target);
        manager_notify_migration_new(m, mig);

        /* A crash in the middle of a commit: clients may have been told nothing yet, but finishing is safe. */
        if (committing)
                (void) migration_commit(mig, NULL);
        if (ret)
                *ret = mig;
        return 0;
}

static int migration_check_prepared(Migration *mig, GmemError *e) {
        if (mig->state != MIGRATION_PREPARED)
                return gmem_error_set(e, GMEM_ERROR_BUSY, "Migration %" PRIu64 " of VM '%s' to '%s' is %s already",
                                      mig->id, mig->source_name, mig->target_name,
                                      migration_state_to_string(mig->state));
        return 0;
}

/* A prepared migration ends: it lets its VMs and views go, says so (once), and joins the bounded history. */
static void migration_finish(Migration *mig, MigrationState state) {
        Manager *m = mig->manager;
        bool announced = mig->state == state;

        mig->state = state;
        migration_unpin(mig);
        if (!announced)
                manager_notify_migration_changed(m, mig);
        migration_prune(m);
}

int migration_commit(Migration *mig, GmemError *e) {
        int r;

        r = migration_check_prepared(mig, e);
        if (r < 0)
                return r;

        /*
         * The source's views are revoked before the target's are activated: a crash in between leaves a
         * revoked source view beside a pending target view, which only a commit under way makes, and the
         * restore finishes it (migration_adopt()).
         */
        for (size_t i = 0; i < mig->n_views; i++)
                view_revoke(mig->source_views[i]);
        for (size_t i = 0; i < mig->n_views; i++)
                view_activate(mig->target_views[i]);
        migration_finish(mig, MIGRATION_COMMITTED);
        return 0;
}

int migration_abort(Migration *mig, GmemError *e) {
        int r;

        r = migration_check_prepared(mig, e);
        if (r < 0)
                return r;

        /*
         * The migration is aborted, and said so, before its views go: the fd store drops the migration's
         * record first, so that a crash in the middle leaves pending views of no migration, which the
         * restore drops, never a migration with part of its views.
         */
        mig->state = MIGRATION_ABORTED;
        manager_notify_migration_changed(mig->manager, mig);
        for (size_t i = 0; i < mig->n_views; i++)
                view_remove(TAKE_PTR(mig->target_views[i]));
        migration_finish(mig, MIGRATION_ABORTED);
        return 0;
}

void migration_discard(Migration *mig) {
        Manager *m = mig->manager;

        (void) migration_abort(mig, NULL);
        manager_notify_migration_removed(m, mig);
        migration_free(mig);
}
