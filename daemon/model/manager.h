/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * manager.h — the broker's object model root: every region, VM and
 * migration, indexed by name (or id) in hash tables, plus the hooks through
 * which the model tells its D-Bus face what changed. The model itself never
 * speaks D-Bus; manager-dbus.c installs the hooks.
 */
#pragma once

#include <stdint.h>
#include <systemd/sd-event.h>

#include "gmem-errors.h"
#include "hashmap.h"
#include "macro.h"
#include "wire.h"

typedef struct Manager Manager;
typedef struct Region Region;
typedef struct Vm Vm;
typedef struct View View;
typedef struct Migration Migration;

typedef struct ManagerHooks {
        void (*detach)(Manager *m);                              /* first thing manager_free() does */
        void (*region_new)(Manager *m, Region *reg);
        void (*region_removed)(Manager *m, Region *reg);          /* before it is freed */
        void (*vm_new)(Manager *m, Vm *vm);
        void (*vm_changed)(Manager *m, Vm *vm);                  /* LeaderPID and the like */
        void (*vm_removed)(Manager *m, Vm *vm);                  /* before it is freed */
        void (*views_changed)(Manager *m, Vm *vm, Region *reg);    /* Views of both */
        void (*view_revoked)(Manager *m, View *v);
        void (*migration_new)(Manager *m, Migration *mig);
        void (*migration_changed)(Manager *m, Migration *mig);
        void (*migration_removed)(Manager *m, Migration *mig);   /* before it is freed */
        void (*totals_changed)(Manager *m);
        void (*persistence_changed)(Manager *m);
        /*
         * The store's: 0 if it can keep n more entries (the objects a call is
         * about to make), else -errno with the reason in e. NULL: no limit.
         */
        int (*admit)(Manager *m, unsigned n, GmemError *e);
} ManagerHooks;

/* Finished migrations kept for inspection before the oldest is dropped. */
#define MANAGER_FINISHED_MIGRATIONS_MAX 64

struct Manager {
        sd_event *event;

        Hashmap *regions;           /* name -> Region */
        Hashmap *vms;               /* name -> Vm */
        Hashmap *migrations;        /* decimal id -> Migration */
        Hashmap *usage;             /* decimal uid -> usage counters */

        struct Policy *policy;      /* in force; owned */
        char *policy_path;          /* NULL: the default path, or built-in if it does not exist */

        uint64_t next_region_id;
        uint64_t next_migration_id;
        uint64_t next_vm_id;
        uint64_t next_view_id;
        uint64_t total_bytes;       /* sum of region sizes */
        size_t n_view_fds;          /* open view files, for fdlimit_check() */
        PersistenceState persistence;       /* set by the store */
        BackendType default_backend;        /* for CreateRegion without a backend option */
        Region *grants_queue;       /* regions whose grants are stale (region.h) */
        Region *spare_queue;        /* regions to open a spare view file for (region-spare.h) */
        sd_event_source *spare_source;
        bool spare_source_on;
        unsigned answering;         /* answers in progress (manager_answer_begin()) */
        size_t n_spare_fds;
        int *close_later;           /* view files to close when idle (region-spare.h) */
        size_t n_close_later, allocated_close_later;

        const ManagerHooks *hooks;          /* the D-Bus face */
        void *hooks_userdata;
        void *direct_userdata;              /* the D-Bus face of direct connections, without hooks */
        const ManagerHooks *store_hooks;    /* persistence: called before the bus hooks */
        void *store_userdata;
        /* The main program's: a policy was put in force (reloaded is false at start). */
        void (*policy_loaded)(Manager *m, bool reloaded);
};

int manager_new(sd_event *event, Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/*
 * Loads the policy from m->policy_path (or the default path, falling back to
 * the built-in policy if that file does not exist) and puts it in force. On
 * failure the policy in force stays and e says why.
 */
int manager_load_policy(Manager *m, GmemError *e);

Region *manager_get_region(Manager *m, const char *name);
Vm *manager_get_vm(Manager *m, const char *name);
Migration *manager_get_migration(Manager *m, uint64_t id);
int manager_allocated_bytes(Manager *m, uint64_t *ret);

/*
 * Recomputes the grants of every region queued as stale (region.h). Every
 * model operation that links or unlinks views calls it before it returns,
 * so grants are computed once per operation and never from a destructor.
 * A failure leaves the old grants in place (they can only be wider than the
 * views now need when a view went away, which the next change fixes).
 */
void manager_sync_grants(Manager *m);

/* The fds the model holds: one per region, view file and VM (its leader pidfd), at most. */
size_t manager_fds_held(const Manager *m);

/* Called by the model; each does nothing if no hook is installed. */
void manager_notify_region_new(Manager *m, Region *reg);
void manager_notify_region_removed(Manager *m, Region *reg);
void manager_notify_vm_new(Manager *m, Vm *vm);
void manager_notify_vm_changed(Manager *m, Vm *vm);
void manager_notify_vm_removed(Manager *m, Vm *vm);
void manager_notify_views_changed(Manager *m, Vm *vm, Region *reg);
void manager_notify_view_revoked(Manager *m, View *v);
void manager_notify_migration_new(Manager *m, Migration *mig);
void manager_notify_migration_changed(Manager *m, Migration *mig);
void manager_notify_migration_removed(Manager *m, Migration *mig);
void manager_notify_totals_changed(Manager *m);

/* The store says how durable the model is; announced when it changes. */
void manager_set_persistence(Manager *m, PersistenceState state);
/*
 * Before a call makes objects that the store will keep as n entries: 0 if it
 * can keep them, otherwise QuotaExceeded naming the store's limit. The
 * reservations (region_reserve() and the like) call it, so nothing is made
 * that cannot be made durable.
 */
int manager_admit(Manager *m, unsigned n, GmemError *e);
