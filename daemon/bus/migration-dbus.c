/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * migration-dbus.c — org.gmemd.Broker1.Migration objects: the state of one
 * intra-host migration and its Commit/Abort methods.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "bus-util.h"
#include "migration-dbus.h"
#include "migration.h"
#include "vm.h"

static int migration_from_path(Manager *m, const char *path, Migration **ret) {
        const char *prefix = BUS_MIGRATION_PREFIX "/";
        uint64_t id = 0;
        const char *p;

        if (!path || strncmp(path, prefix, strlen(prefix)) != 0)
                return -ENOENT;
        p = path + strlen(prefix);
        if (*p < '1' || *p > '9')
                return -ENOENT;
        for (; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -ENOENT;
                if (MUL_OVERFLOW(id, (uint64_t) 10, &id) || ADD_OVERFLOW(id, (uint64_t) (*p - '0'), &id))
                        return -ENOENT;
        }
        *ret = manager_get_migration(m, id);
        return *ret ? 0 : -ENOENT;
}

int bus_get_migration(Manager *m, sd_bus_message *msg, const char *path, Migration **ret, sd_bus_error *error) {
        GmemError e = GMEM_ERROR_INIT;
        Actor a;
        int r;

        r = migration_from_path(m, path, ret);
        if (r >= 0 && !(bus_caller_peek(m, NULL, msg, &a) && bus_actor_sees_migration(&a, m, *ret)))
                r = -ENOENT;
        if (r < 0) {
                r = gmem_error_set(&e, GMEM_ERROR_NO_SUCH_MIGRATION, "No migration '%.200s' known", path);
                return bus_set_gmem_error(error, &e, r);
        }
        return 0;
}

/* The VM a migration names, or a stand-in created by no uid if it is gone. */
static const Vm *migration_vm(const Migration *mig, const char *name) {
        static const Vm gone = { .name = (char *) "(unregistered)", .creator = (uid_t) -1 };
        const Vm *vm = manager_get_vm(mig->manager, name);

        return vm ?: &gone;
}

typedef int (*MigrationOp)(Migration *mig, GmemError *e);

static int migration_method(sd_bus_message *msg, Migration *mig, MigrationOp op, sd_bus_error *error) {
        Actor caller;
        GmemError e = GMEM_ERROR_INIT;
        int r;

        /* The right to migrate on both VMs; one gone, only a class that reaches every VM may finish it. */
        r = bus_authorize(msg, mig->manager, POLICY_VERB_MIGRATE,
                          BUS_TARGET(.vm = migration_vm(mig, mig->source_name), .target = migration_vm(mig, mig->target_name)),
                          &caller, error);
        if (r <= 0)
                return BUS_AUTH_RETURN(r);
        r = op(mig, &e);
        if (r < 0)
                return bus_set_gmem_error(error, &e, r);
        return sd_bus_reply_method_return(msg, NULL);
}

int bus_migration_method_commit(sd_bus_message *msg, Migration *mig, sd_bus_error *error) {
        return migration_method(msg, mig, migration_commit, error);
}

int bus_migration_method_abort(sd_bus_message *msg, Migration *mig, sd_bus_error *error) {
        return migration_method(msg, mig, migration_abort, error);
}

static int method_commit(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return bus_migration_method_commit(msg, userdata, error);
}

static int method_abort(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return bus_migration_method_abort(msg, userdata, error);
}

static int property_get_state(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Migration *mig = userdata;
        return sd_bus_message_append(reply, "s", migration_state_to_string(mig->state));
}

static int property_get_regions(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Migration *mig = userdata;
        int r;

        r = sd_bus_message_open_container(reply, 'a', "s");
        if (r < 0)
                return r;
        for (size_t i = 0; i < mig->n_views; i++) {
                r = sd_bus_message_append(reply, "s", mig->regions[i]);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

const sd_bus_vtable migration_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Id", "t", NULL, offsetof(Migration, id), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Source", "s", NULL, offsetof(Migration, source_name), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Target", "s", NULL, offsetof(Migration, target_name), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("State", "s", property_get_state, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Regions", "as", property_get_regions, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_METHOD("Commit", NULL, NULL, method_commit, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Abort", NULL, NULL, method_abort, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int migration_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                          sd_bus_error *error) {
        Migration *mig;
        Actor a;

        if (migration_from_path(userdata, path, &mig) < 0)
                return 0;
        if (!bus_emitting(userdata) &&
            !(bus_caller_peek(userdata, bus, NULL, &a) && bus_actor_sees_migration(&a, userdata, mig)))
                return 0;
        *found = mig;
        return 1;
}

static int migration_path_of(const void *o, char **ret) {
        return migration_bus_path(o, ret);
}

static bool migration_seen(const void *o, const Actor *a, Manager *m) {
        return bus_actor_sees_migration(a, m, o);
}

int migration_node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error) {
        Manager *m = userdata;
        return bus_node_list(m, bus, m->migrations, migration_path_of, migration_seen, nodes);
}
