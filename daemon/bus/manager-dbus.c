/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * manager-dbus.c — org.gmemd.Broker1.Manager at /org/gmemd/Broker1: the
 * by-name entry points to every operation, the lists, the manager's
 * properties, and the registration of all object trees (the signals that
 * announce model changes are bus-signals.c's). Methods
 * that name a region or VM resolve it and hand over to the per-object
 * handlers in region-dbus.c, vm-dbus.c and migration-dbus.c, so each
 * operation is implemented once.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#include "bus-signals.h"
#include "bus-util.h"
#include "manager-dbus.h"
#include "migration-dbus.h"
#include "migration.h"
#include "policy.h"
#include "region-dbus.h"
#include "region.h"
#include "usage.h"
#include "view.h"
#include "vm-dbus.h"
#include "vm.h"

static int reply_path(sd_bus_message *msg, int (*path_of)(const void *, char **), const void *o) {
        _cleanup_free_ char *path = NULL;
        int r;

        r = path_of(o, &path);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, "o", path);
}

static int region_path_of(const void *o, char **ret) {
        return region_bus_path(o, ret);
}

static int vm_path_of(const void *o, char **ret) {
        return vm_bus_path(o, ret);
}

/* "memfd, hugetlb, secret": the known backends, from the table, for a message that lists them. */
static void known_backends(char *buf, size_t size) {
        size_t n = 0;

        buf[0] = 0;
        for (BackendType t = 0; t < _BACKEND_MAX && n < size; t++)
                n += (size_t) snprintf(buf + n, size - n, "%s%s", t > 0 ? ", " : "", backend_type_to_string(t));
}

static int method_create_region(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(usage_charge_release) UsageCharge charge = {};
        Manager *m = userdata;
        GmemError e = GMEM_ERROR_INIT;
        RegionParams p = { .backend = m->default_backend };
        const char *backend = NULL;
        Region *reg;
        Actor caller;
        int r;

        r = sd_bus_message_read(msg, "st", &p.name, &p.size);
        if (r < 0)
                return r;
        const BusOption options[] = {
                { "backend",       BUS_OPTION_STRING,  &backend,         NULL },
                { "hugepage_size", BUS_OPTION_UINT64,  &p.hugepage_size, NULL },
                { "populate",      BUS_OPTION_BOOLEAN, &p.populate,      NULL },
                { "owner",         BUS_OPTION_STRING,  &p.owner,         NULL },
        };
        r = bus_read_options(msg, options, ELEMENTSOF(options), &e);
        if (r < 0)
                return bus_set_gmem_error(error, &e, r);
        if (backend) {
                p.backend = backend_type_from_string(backend);
                if (p.backend < 0) {
                        char known[64];

                        known_backends(known, sizeof(known));
                        r = gmem_error_set(&e, GMEM_ERROR_INVALID_ARGUMENT, "Unknown backend '%.64s'; known backends: "
                                           "%s", backend, known);
                        return bus_set_gmem_error(error, &e, r);
                }
        }

        r = bus_authorize(msg, m, POLICY_VERB_CREATE_REGION, NULL, &caller, error);
        if (r <= 0)
                return BUS_AUTH_RETURN(r);
        /* The class's backends, largest region and quotas: checked by the model in the same step as it charges. */
        r = region_reserve(m, &p, &caller, &charge, &e);
        if (r < 0)
                return bus_set_gmem_error(error, &e, r);
        r = bus_check_fds(msg, m, 1, 0, error, "Cannot create region '%s'", p.name);
        if (r < 0)
                return r;

        r = region_create(m, &p, &charge, &reg, &e);
        if (r < 0)
                return bus_set_gmem_error(error, &e, r);
        return reply_path(msg, region_path_of, reg);
}

/*
 * AdoptRegion: custody of a file a hypervisor made (a guest_memfd). The fd
 * belongs to the message and is closed with it; gmemd keeps a duplicate
 * only once the region exists.
 */
static int method_adopt_region(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        GmemError e = GMEM_ERROR_INIT;
        RegionParams p = { .backend = BACKEND_GUEST_MEMFD };
        const char *backend = NULL;
        Region *reg;
        Actor caller;
        int r, fd;

        r = sd_bus_message_read(msg, "sh", &p.name, &fd);
        if (r < 0)
                return r;
        const BusOption options[] = {
                { "backend", BUS_OPTION_STRING, &backend, NULL },
                { "owner",   BUS_OPTION_STRING, &p.owner, NULL },
        };
        r = bus_read_options(msg, options, ELEMENTSOF(options), &e);
        if (r < 0)
                return bus_set_gmem_error(error, &e, r);
        if (backend) {
                p.backend = backend_type_from_string(backend);
                if (p.backend < 0 || !backend_get(p.backend)->custody) {
                        r = gmem_error_set(&e, GMEM_ERROR_INVALID_ARGUMENT, "Backend '%.64s' does not adopt files; "
                                           "AdoptRegion takes backend guest_memfd", backend);
                        return bus_set_gmem_error(error, &e, r);
                }
        }

        r = bus_authorize(msg, m, POLICY_VERB_CREATE_REGION, NULL, &caller, error);
        if (r <= 0)
                return BUS_AUTH_RETURN(r);
        r = bus_check_fds(msg, m, 1, 0, error, "Cannot adopt region '%s'", p.name);
        if (r < 0)
                return r;
        /* What the file is, its size against the class's rules and quotas, and the charge: one step in the model. */
        r = region_take(m, &p, &caller, fd, &reg, &e);
        if (r < 0)
                return bus_set_gmem_error(error, &e, r);
        return reply_path(msg, region_path_of, reg);
}

/* Reads the leading region name and hands over to a per-region handler. */
static int with_region(sd_bus_message *msg, Manager *m, int (*handler)(sd_bus_message *, Region *, sd_bus_error *),
                       sd_bus_error *error) {
        const char *name;
        Region *reg;
        int r;

        r = bus_read_string(msg, &name);
        if (r < 0)
                return r;
        r = bus_get_region(m, msg, name, &reg, error);
        if (r < 0)
                return r;
        return handler(msg, reg, error);
}

static int with_vm(sd_bus_message *msg, Manager *m, int (*handler)(sd_bus_message *, Vm *, sd_bus_error *),
                   sd_bus_error *error) {
        const char *name;
        Vm *vm;
        int r;

        r = bus_read_string(msg, &name);
        if (r < 0)
                return r;
        r = bus_get_vm(m, msg, name, &vm, error);
        if (r < 0)
                return r;
        return handler(msg, vm, error);
}

static int with_migration(sd_bus_message *msg, Manager *m,
                          int (*handler)(sd_bus_message *, Migration *, sd_bus_error *), sd_bus_error *error) {
        const char *path;
        Migration *mig;
        int r;

        r = sd_bus_message_read(msg, "o", &path);
        if (r < 0)
                return r;
        r = bus_get_migration(m, msg, path, &mig, error);
        if (r < 0)
                return r;
        return handler(msg, mig, error);
}

static int method_destroy_region(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return with_region(msg, userdata, bus_region_method_destroy, error);
}

static int method_discard(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return with_region(msg, userdata, bus_region_method_discard, error);
}

static int method_allocate(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return with_region(msg, userdata, bus_region_method_allocate, error);
}

static int method_get_attributes(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return with_region(msg, userdata, bus_region_method_get_attributes, error);
}

static int method_set_attributes(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return with_region(msg, userdata, bus_region_method_set_attributes, error);
}

static int method_unregister_vm(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return with_vm(msg, userdata, bus_vm_method_unregister, error);
}

static int method_attach(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return with_vm(msg, userdata, bus_vm_method_attach, error);
}

static int method_detach(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return with_vm(msg, userdata, bus_vm_method_detach, error);
}

static int method_get_fd(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return with_vm(msg, userdata, bus_vm_method_get_fd, error);
}

static int method_commit_migration(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return with_migration(msg, userdata, bus_migration_method_commit, error);
}

static int method_abort_migration(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return with_migration(msg, userdata, bus_migration_method_abort, error);
}

static int method_get_region(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Actor caller;
        const char *name;
        Region *reg;
        int r;

        r = bus_read_string(msg, &name);
        if (r < 0)
                return r;
        r = bus_get_region(userdata, msg, name, &reg, error);
        if (r < 0)
                return r;
        r = bus_authorize(msg, userdata, POLICY_VERB_LIST, BUS_TARGET(.region = reg), &caller, error);
        if (r <= 0)
                return BUS_AUTH_RETURN(r);
        return reply_path(msg, region_path_of, reg);
}

static int method_get_vm(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Actor caller;
        const char *name;
        Vm *vm;
        int r;

        r = bus_read_string(msg, &name);
        if (r < 0)
                return r;
        r = bus_get_vm(userdata, msg, name, &vm, error);
        if (r < 0)
                return r;
        r = bus_authorize(msg, userdata, POLICY_VERB_LIST, BUS_TARGET(.vm = vm), &caller, error);
        if (r <= 0)
                return BUS_AUTH_RETURN(r);
        return reply_path(msg, vm_path_of, vm);
}

static int method_list_regions(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Actor caller;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        Region *reg;
        int r;

        r = bus_authorize(msg, m, POLICY_VERB_LIST, NULL, &caller, error);
        if (r <= 0)
                return BUS_AUTH_RETURN(r);
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(stsso)");
        if (r < 0)
                return r;
        HASHMAP_FOREACH(reg, m->regions, i) {
                _cleanup_free_ char *path = NULL;

                if (!policy_class_reaches(caller.class, caller.uid, reg->creator))
                        continue;
                r = region_bus_path(reg, &path);
                if (r < 0)
                        return r;
                r = sd_bus_message_append(reply, "(stsso)", reg->name, reg->br.size,
                                          backend_type_to_string(reg->backend), reg->owner ?: "", path);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/*
 * ListRegionsFull: what ListRegions says and what each region's properties
 * add (id, allocation, views), in one reply, so that a listing is one round
 * trip. The same regions as ListRegions; a region's views only of VMs the
 * caller may see, as its Views property.
 */
static int method_list_regions_full(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        Actor caller;
        Region *reg;
        int r;

        r = bus_authorize(msg, m, POLICY_VERB_LIST, NULL, &caller, error);
        if (r <= 0)
                return BUS_AUTH_RETURN(r);
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', REGION_BUS_ROW);
        if (r < 0)
                return r;
        HASHMAP_FOREACH(reg, m->regions, i) {
                if (!policy_class_reaches(caller.class, caller.uid, reg->creator))
                        continue;
                r = region_bus_append_row(reply, reg, &caller);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_register_vm(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(usage_charge_release) UsageCharge charge = {};
        Actor caller;
        Manager *m = userdata;
        GmemError e = GMEM_ERROR_INIT;
        VmParams p = { .leader_fd = -EBADF };
        Vm *vm;
        int r;

        r = bus_read_string(msg, &p.name);
        if (r < 0)
                return r;
        const BusOption options[] = {
                { "leader",     BUS_OPTION_FD,     &p.leader_fd,  &p.has_leader_fd },
                { "leader_pid", BUS_OPTION_UINT32, &p.leader_pid, &p.has_leader_pid },
                { "uid",        BUS_OPTION_UINT32, &p.uid,        &p.has_uid },
        };
        r = bus_read_options(msg, options, ELEMENTSOF(options), &e);
        if (r < 0)
                return bus_set_gmem_error(error, &e, r);
        if (p.has_uid && p.uid == UINT32_MAX) {
                r = gmem_error_set(&e, GMEM_ERROR_INVALID_ARGUMENT, "Invalid uid %u: (uid_t) -1 is not a user", p.uid);
                return bus_set_gmem_error(error, &e, r);
        }

        r = bus_authorize(msg, m, POLICY_VERB_REGISTER_VM, NULL, &caller, error);
        if (r <= 0)
                return BUS_AUTH_RETURN(r);
        r = vm_reserve(m, &caller, &charge, &e);
        if (r < 0)
                return bus_set_gmem_error(error, &e, r);
        if (p.has_leader_pid || p.has_leader_fd) {
                r = bus_check_fds(msg, m, 1, 0, error, "Cannot watch the leader of VM '%s'", p.name);
                if (r < 0)
                        return r;
        }

        r = vm_register(m, &p, &charge, &vm, &e);
        if (r < 0)
                return bus_set_gmem_error(error, &e, r);
        return reply_path(msg, vm_path_of, vm);
}

static int method_list_vms(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Actor caller;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        Vm *vm;
        int r;

        r = bus_authorize(msg, m, POLICY_VERB_LIST, NULL, &caller, error);
        if (r <= 0)
                return BUS_AUTH_RETURN(r);
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(suo)");
        if (r < 0)
                return r;
        HASHMAP_FOREACH(vm, m->vms, i) {
                _cleanup_free_ char *path = NULL;

                if (!policy_class_reaches(caller.class, caller.uid, vm->creator))
                        continue;
                r = vm_bus_path(vm, &path);
                if (r < 0)
                        return r;
                r = sd_bus_message_append(reply, "(suo)", vm->name, (uint32_t) vm->leader_pid, path);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* ListVmsFull: ListVms with each VM's uid and views (its properties), in one reply; the same VMs as ListVms. */
static int method_list_vms_full(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        Actor caller;
        Vm *vm;
        int r;

        r = bus_authorize(msg, m, POLICY_VERB_LIST, NULL, &caller, error);
        if (r <= 0)
                return BUS_AUTH_RETURN(r);
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', VM_BUS_ROW);
        if (r < 0)
                return r;
        HASHMAP_FOREACH(vm, m->vms, i) {
                if (!policy_class_reaches(caller.class, caller.uid, vm->creator))
                        continue;
                r = vm_bus_append_row(reply, vm);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* BeginMigration's reply: the migration's path and the target's view of each region. */
static int append_migration(sd_bus_message *reply, const Migration *mig) {
        _cleanup_free_ char *path = NULL;
        int r;

        r = migration_bus_path(mig, &path);
        if (r < 0)
                return r;
        r = sd_bus_message_append(reply, "o", path);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(sh)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < mig->n_views; i++) {
                r = sd_bus_message_append(reply, "(sh)", mig->regions[i], mig->target_views[i]->fd);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

static int method_begin_migration(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(usage_charge_release) UsageCharge charge = {};
        Actor caller;
        unsigned n_views;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        GmemError e = GMEM_ERROR_INIT;
        const char *source_name, *target_name;
        Vm *source, *target;
        Migration *mig;
        int r;

        r = sd_bus_message_read(msg, "ss", &source_name, &target_name);
        if (r < 0)
                return r;
        r = bus_read_options(msg, NULL, 0, &e);
        if (r < 0)
                return bus_set_gmem_error(error, &e, r);
        r = bus_get_vm(m, msg, source_name, &source, error);
        if (r < 0)
                return r;
        r = bus_get_vm(m, msg, target_name, &target, error);
        if (r < 0)
                return r;
        r = bus_authorize(msg, m, POLICY_VERB_MIGRATE, BUS_TARGET(.vm = source, .target = target), &caller, error);
        if (r <= 0)
                return BUS_AUTH_RETURN(r);
        r = migration_reserve(source, &caller, &charge, &e);
        if (r < 0)
                return bus_set_gmem_error(error, &e, r);

        /* A file per view and the reply's duplicate of each. */
        n_views = hashmap_size(source->views) > 32 ? 32U : (unsigned) hashmap_size(source->views);
        r = bus_check_fds(msg, m, n_views, n_views, error,
                          "Cannot begin migrating VM '%s' to VM '%s'", source->name, target->name);
        if (r < 0)
                return r;
        /* Build the reply before changing anything, so that running out of memory changes nothing. */
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;

        r = migration_begin(source, target, &charge, &mig, &e);
        if (r < 0)
                return bus_set_gmem_error(error, &e, r);

        r = append_migration(reply, mig);
        if (r < 0) {
                migration_discard(mig);
                return sd_bus_error_set_errnof(error, r, "Cannot begin migrating VM '%s' to VM '%s': %s",
                                               source_name, target_name, strerror(-r));
        }
        return sd_bus_send(NULL, reply, NULL);
}

/* Whether the caller's class reaches both VMs of a migration (a VM gone: only scope all does). */
static bool migration_reached(Manager *m, const Actor *caller, const Migration *mig) {
        const char *names[] = { mig->source_name, mig->target_name };

        if (caller->class && caller->class->scope == POLICY_SCOPE_ALL)
                return true;
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                const Vm *vm = manager_get_vm(m, names[i]);

                if (!vm || !policy_class_reaches(caller->class, caller->uid, vm->creator))
                        return false;
        }
        return true;
}

static int method_list_migrations(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Actor caller;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        Migration *mig;
        int r;

        r = bus_authorize(msg, m, POLICY_VERB_LIST, NULL, &caller, error);
        if (r <= 0)
                return BUS_AUTH_RETURN(r);
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(ssso)");
        if (r < 0)
                return r;
        HASHMAP_FOREACH(mig, m->migrations, i) {
                _cleanup_free_ char *path = NULL;

                if (!migration_reached(m, &caller, mig))
                        continue;
                r = migration_bus_path(mig, &path);
                if (r < 0)
                        return r;
                r = sd_bus_message_append(reply, "(ssso)", mig->source_name, mig->target_name,
                                          migration_state_to_string(mig->state), path);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_reload(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        GmemError e = GMEM_ERROR_INIT;
        Actor caller;
        int r;

        r = bus_authorize(msg, m, POLICY_VERB_RELOAD, NULL, &caller, error);
        if (r <= 0)
                return BUS_AUTH_RETURN(r);
        r = manager_load_policy(m, &e);
        if (r < 0)
                return bus_set_gmem_error(error, &e, r);
        return sd_bus_reply_method_return(msg, NULL);
}

/*
 * The manager's properties describe the host; a caller in no class of the
 * policy may not read them (a VM's hypervisor uid needs none of them to
 * fetch its views). While gmemd emits PropertiesChanged they are read for
 * every listener.
 */
static int manager_may_read(Manager *m, sd_bus *bus, sd_bus_error *error) {
        Actor a;

        if (bus_emitting(m))
                return 0;
        if (bus_caller_peek(m, bus, NULL, &a) && a.class)
                return 0;
        return sd_bus_error_set(error, SD_BUS_ERROR_ACCESS_DENIED,
                                "Access denied: callers in no class of the policy may not read the manager's properties");
}

static int property_get_total(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        int r;

        r = manager_may_read(m, bus, error);
        if (r < 0)
                return r;
        return sd_bus_message_append(reply, "t", m->total_bytes);
}

static int property_get_policy(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        int r;

        r = manager_may_read(m, bus, error);
        if (r < 0)
                return r;
        return sd_bus_message_append(reply, "s", m->policy ? m->policy->origin : "");
}

static int property_get_backends(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        int r;

        r = manager_may_read(userdata, bus, error);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "s");
        if (r < 0)
                return r;
        for (BackendType t = 0; t < _BACKEND_MAX; t++) {
                if (backend_get(t)->probe(NULL) < 0)
                        continue;
                r = sd_bus_message_append(reply, "s", backend_type_to_string(t));
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

static int property_get_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        int r;

        r = manager_may_read(userdata, bus, error);
        if (r < 0)
                return r;
        return sd_bus_message_append(reply, "s", GMEMD_VERSION);
}

static int property_get_default_backend(sd_bus *bus, const char *path, const char *interface, const char *property,
                                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        int r;

        r = manager_may_read(m, bus, error);
        if (r < 0)
                return r;
        return sd_bus_message_append(reply, "s", backend_type_to_string(m->default_backend));
}

static int property_get_persistence(sd_bus *bus, const char *path, const char *interface, const char *property,
                                    sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        int r;

        r = manager_may_read(m, bus, error);
        if (r < 0)
                return r;
        return sd_bus_message_append(reply, "s", persistence_state_to_string(m->persistence));
}

static int property_get_allocated(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        uint64_t a = 0;
        int r;

        r = manager_may_read(userdata, bus, error);
        if (r < 0)
                return r;
        (void) manager_allocated_bytes(userdata, &a);
        return sd_bus_message_append(reply, "t", a);
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Backends", "as", property_get_backends, 0, 0),
        SD_BUS_PROPERTY("DefaultBackend", "s", property_get_default_backend, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("TotalBytes", "t", property_get_total, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("AllocatedBytes", "t", property_get_allocated, 0, 0),
        SD_BUS_PROPERTY("Policy", "s", property_get_policy, 0, 0),
        SD_BUS_PROPERTY("Persistence", "s", property_get_persistence, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),

        SD_BUS_METHOD_WITH_NAMES("CreateRegion", "sta{sv}", SD_BUS_PARAM(name) SD_BUS_PARAM(size) SD_BUS_PARAM(options),
                                 "o", SD_BUS_PARAM(region), method_create_region, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("AdoptRegion", "sha{sv}", SD_BUS_PARAM(name) SD_BUS_PARAM(fd) SD_BUS_PARAM(options),
                                 "o", SD_BUS_PARAM(region), method_adopt_region, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("DestroyRegion", "s", SD_BUS_PARAM(name), NULL,, method_destroy_region,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("GetRegion", "s", SD_BUS_PARAM(name), "o", SD_BUS_PARAM(region), method_get_region,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListRegions", NULL,, "a(stsso)", SD_BUS_PARAM(regions), method_list_regions,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListRegionsFull", NULL,, "a" REGION_BUS_ROW, SD_BUS_PARAM(regions),
                                 method_list_regions_full, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("RegisterVm", "sa{sv}", SD_BUS_PARAM(name) SD_BUS_PARAM(options), "o",
                                 SD_BUS_PARAM(vm), method_register_vm, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("UnregisterVm", "s", SD_BUS_PARAM(name), NULL,, method_unregister_vm,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("GetVm", "s", SD_BUS_PARAM(name), "o", SD_BUS_PARAM(vm), method_get_vm,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListVms", NULL,, "a(suo)", SD_BUS_PARAM(vms), method_list_vms,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListVmsFull", NULL,, "a" VM_BUS_ROW, SD_BUS_PARAM(vms), method_list_vms_full,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Attach", "sssa{sv}",
                                 SD_BUS_PARAM(vm) SD_BUS_PARAM(region) SD_BUS_PARAM(access) SD_BUS_PARAM(options),
                                 "h", SD_BUS_PARAM(fd), method_attach, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Detach", "ss", SD_BUS_PARAM(vm) SD_BUS_PARAM(region), NULL,, method_detach,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("GetFd", "ss", SD_BUS_PARAM(vm) SD_BUS_PARAM(region), "h", SD_BUS_PARAM(fd),
                                 method_get_fd, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("BeginMigration", "ssa{sv}",
                                 SD_BUS_PARAM(source_vm) SD_BUS_PARAM(target_vm) SD_BUS_PARAM(options),
                                 "oa(sh)", SD_BUS_PARAM(migration) SD_BUS_PARAM(fds), method_begin_migration,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("CommitMigration", "o", SD_BUS_PARAM(migration), NULL,, method_commit_migration,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("AbortMigration", "o", SD_BUS_PARAM(migration), NULL,, method_abort_migration,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListMigrations", NULL,, "a(ssso)", SD_BUS_PARAM(migrations), method_list_migrations,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Discard", "stt", SD_BUS_PARAM(region) SD_BUS_PARAM(offset) SD_BUS_PARAM(length),
                                 NULL,, method_discard, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Allocate", "stt", SD_BUS_PARAM(region) SD_BUS_PARAM(offset) SD_BUS_PARAM(length),
                                 NULL,, method_allocate, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("GetMemoryAttributes", "stt",
                                 SD_BUS_PARAM(region) SD_BUS_PARAM(offset) SD_BUS_PARAM(length),
                                 "a(tts)", SD_BUS_PARAM(runs), method_get_attributes, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("SetMemoryAttributes", "stts",
                                 SD_BUS_PARAM(region) SD_BUS_PARAM(offset) SD_BUS_PARAM(length) SD_BUS_PARAM(attribute),
                                 NULL,, method_set_attributes, SD_BUS_VTABLE_UNPRIVILEGED),

        SD_BUS_METHOD("Reload", NULL, NULL, method_reload, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Subscribe", NULL, NULL, bus_method_subscribe, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Unsubscribe", NULL, NULL, bus_method_unsubscribe, SD_BUS_VTABLE_UNPRIVILEGED),

        SD_BUS_SIGNAL_WITH_NAMES("RegionNew", "so", SD_BUS_PARAM(name) SD_BUS_PARAM(path), 0),
        SD_BUS_SIGNAL_WITH_NAMES("RegionRemoved", "so", SD_BUS_PARAM(name) SD_BUS_PARAM(path), 0),
        SD_BUS_SIGNAL_WITH_NAMES("VmNew", "so", SD_BUS_PARAM(name) SD_BUS_PARAM(path), 0),
        SD_BUS_SIGNAL_WITH_NAMES("VmRemoved", "so", SD_BUS_PARAM(name) SD_BUS_PARAM(path), 0),
        SD_BUS_SIGNAL_WITH_NAMES("ViewRevoked", "ss", SD_BUS_PARAM(vm) SD_BUS_PARAM(region), 0),
        SD_BUS_SIGNAL_WITH_NAMES("MigrationChanged", "os", SD_BUS_PARAM(migration) SD_BUS_PARAM(state), 0),
        SD_BUS_VTABLE_END,
};

void manager_bus_unregister(Manager *m) {
        bus_signals_detach(m);
}

int manager_bus_register(Manager *m, sd_bus *bus) {
        BusContext *ctx;
        int r;

        if (!m->policy) {
                GmemError e = GMEM_ERROR_INIT;
                r = policy_load_builtin(&m->policy, &e);
                if (r < 0)
                        return r;
        }

        ctx = calloc(1, sizeof(*ctx));
        if (!ctx)
                return -ENOMEM;
        ctx->bus = bus;
        r = bus_creds_cache_new(bus, &ctx->creds);
        if (r >= 0)
                r = fdflow_new(bus, &ctx->fdflow);
        if (r < 0) {
                bus_context_free(ctx);
                return r;
        }
        bus_signals_attach(m, ctx);
        return manager_bus_add_objects(m, bus);
}

int manager_bus_add_objects(Manager *m, sd_bus *bus) {
        int r;

        r = sd_bus_add_object_manager(bus, NULL, BUS_PATH);
        if (r < 0)
                return r;
        r = sd_bus_add_object_vtable(bus, NULL, BUS_PATH, BUS_IFACE_MANAGER, manager_vtable, m);
        if (r < 0)
                return r;
        r = sd_bus_add_fallback_vtable(bus, NULL, BUS_REGION_PREFIX, BUS_IFACE_REGION, region_vtable,
                                       region_object_find, m);
        if (r < 0)
                return r;
        r = sd_bus_add_node_enumerator(bus, NULL, BUS_REGION_PREFIX, region_node_enumerator, m);
        if (r < 0)
                return r;
        r = sd_bus_add_fallback_vtable(bus, NULL, BUS_VM_PREFIX, BUS_IFACE_VM, vm_vtable, vm_object_find, m);
        if (r < 0)
                return r;
        r = sd_bus_add_node_enumerator(bus, NULL, BUS_VM_PREFIX, vm_node_enumerator, m);
        if (r < 0)
                return r;
        r = sd_bus_add_fallback_vtable(bus, NULL, BUS_MIGRATION_PREFIX, BUS_IFACE_MIGRATION, migration_vtable,
                                       migration_object_find, m);
        if (r < 0)
                return r;
        r = sd_bus_add_node_enumerator(bus, NULL, BUS_MIGRATION_PREFIX, migration_node_enumerator, m);
        if (r < 0)
                return r;
        return 0;
}
