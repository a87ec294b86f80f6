/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * manager.c — creation and teardown of the model root, lookups, and the
 * notification hooks. Teardown order matters: migrations first (they point at
 * views), then VMs (which drop their views), then regions (which close their
 * inodes' master fds).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"

#include "manager.h"
#include "region-spare.h"
#include "migration.h"
#include "policy.h"
#include "region.h"
#include "usage.h"
#include "vm.h"

int manager_new(sd_event *event, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = NULL;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->regions = hashmap_new();
        m->vms = hashmap_new();
        m->migrations = hashmap_new();
        m->usage = hashmap_new();
        if (!m->regions || !m->vms || !m->migrations || !m->usage)
                return -ENOMEM;
        m->next_region_id = 1;
        m->next_migration_id = 1;
        m->next_vm_id = 1;
        m->next_view_id = 1;
        m->default_backend = BACKEND_MEMFD;
        if (event)
                m->event = sd_event_ref(event);

        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        Migration *mig;
        Vm *vm;
        Region *reg;

        if (!m)
                return NULL;

        /* The bus face lets go first; then no notifications while tearing down. */
        if (m->hooks && m->hooks->detach)
                m->hooks->detach(m);
        m->hooks = NULL;
        m->store_hooks = NULL;

        while ((mig = hashmap_first(m->migrations)))
                migration_free(mig);
        while ((vm = hashmap_first(m->vms)))
                vm_free(vm);
        while ((reg = hashmap_first(m->regions)))
                region_free(reg);
        manager_spare_done(m);

        usage_free_all(m);
        hashmap_free(m->usage);
        policy_free(m->policy);
        free(m->policy_path);
        hashmap_free(m->migrations);
        hashmap_free(m->vms);
        hashmap_free(m->regions);
        sd_event_unref(m->event);
        free(m);
        return NULL;
}

int manager_load_policy(Manager *m, GmemError *e) {
        const char *path = m->policy_path ?: POLICY_DEFAULT_PATH;
        Policy *p = NULL;
        bool reloaded;
        int r;

        r = policy_load_file(path, &p, e);
        if (r == -ENOENT && !m->policy_path) {
                *e = (GmemError) GMEM_ERROR_INIT;
                r = policy_load_builtin(&p, e);
        }
        if (r < 0)
                return r;

        reloaded = m->policy != NULL;
        policy_free(m->policy);
        m->policy = p;
        if (m->policy_loaded)
                m->policy_loaded(m, reloaded);
        return 0;
}

Region *manager_get_region(Manager *m, const char *name) {
        return hashmap_get(m->regions, name);
}

Vm *manager_get_vm(Manager *m, const char *name) {
        return hashmap_get(m->vms, name);
}

Migration *manager_get_migration(Manager *m, uint64_t id) {
        char key[24];

        (void) snprintf(key, sizeof(key), "%" PRIu64, id);
        return hashmap_get(m->migrations, key);
}

int manager_allocated_bytes(Manager *m, uint64_t *ret) {
        uint64_t sum = 0;
        Region *reg;

        HASHMAP_FOREACH(reg, m->regions, i) {
                uint64_t a = 0;
                if (region_allocated_bytes(reg, &a) >= 0)
                        sum += a;
        }
        *ret = sum;
        return 0;
}

void manager_sync_grants(Manager *m) {
        while (m->grants_queue)
                (void) region_sync_grants(m->grants_queue, NULL);
}

size_t manager_fds_held(const Manager *m) {
        return hashmap_size(m->regions) + hashmap_size(m->vms) + m->n_view_fds + m->n_spare_fds + m->n_close_later;
}

/* The store records a change before the bus announces it (and before the caller is answered). */
#define NOTIFY(m, hook, ...)                                            \
        do {                                                            \
                if ((m)->store_hooks && (m)->store_hooks->hook)         \
                        (m)->store_hooks->hook((m), ##__VA_ARGS__);     \
                if ((m)->hooks && (m)->hooks->hook)                     \
                        (m)->hooks->hook((m), ##__VA_ARGS__);           \
        } while (0)

void manager_notify_region_new(Manager *m, Region *reg) { NOTIFY(m, region_new, reg); }
void manager_notify_region_removed(Manager *m, Region *reg) { NOTIFY(m, region_removed, reg); }
void manager_notify_vm_new(Manager *m, Vm *vm) { NOTIFY(m, vm_new, vm); }
void manager_notify_vm_changed(Manager *m, Vm *vm) { NOTIFY(m, vm_changed, vm); }
void manager_notify_vm_removed(Manager *m, Vm *vm) { NOTIFY(m, vm_removed, vm); }
void manager_notify_views_changed(Manager *m, Vm *vm, Region *reg) { NOTIFY(m, views_changed, vm, reg); }
void manager_notify_view_revoked(Manager *m, View *v) { NOTIFY(m, view_revoked, v); }
void manager_notify_migration_new(Manager *m, Migration *mig) { NOTIFY(m, migration_new, mig); }
void manager_notify_migration_changed(Manager *m, Migration *mig) { NOTIFY(m, migration_changed, mig); }
void manager_notify_migration_removed(Manager *m, Migration *mig) { NOTIFY(m, migration_removed, mig); }
void manager_notify_totals_changed(Manager *m) { NOTIFY(m, totals_changed); }

void manager_set_persistence(Manager *m, PersistenceState state) {
        if (m->persistence == state)
                return;
        m->persistence = state;
        NOTIFY(m, persistence_changed);
}

int manager_admit(Manager *m, unsigned n, GmemError *e) {
        if (n == 0 || !m->store_hooks || !m->store_hooks->admit)
                return 0;
        return m->store_hooks->admit(m, n, e);
}
