/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vm-dbus.c — org.gmemd.Broker1.Vm at /org/gmemd/Broker1/vm/<name>: the VM's
 * properties and the view methods (Attach, Detach, GetFd). A view's file is
 * handed out as an 'h': sd-bus sends a duplicate, the broker keeps custody
 * of the original.
 */
#include <stdlib.h>
#include <string.h>

#include "bus-util.h"
#include "parse.h"
#include "region-dbus.h"
#include "region.h"
#include "usage.h"
#include "view.h"
#include "region-spare.h"
#include "vm-dbus.h"
#include "vm.h"

int bus_get_vm(Manager *m, sd_bus_message *msg, const char *name, Vm **ret, sd_bus_error *error) {
        GmemError e = GMEM_ERROR_INIT;
        Vm *vm;
        Actor a;
        int r;

        r = gmem_validate_name("VM", name, &e);
        if (r < 0)
                return bus_set_gmem_error(error, &e, r);
        vm = manager_get_vm(m, name);
        if (vm && !(bus_caller_peek(m, NULL, msg, &a) && bus_actor_sees_vm(&a, vm)))
                vm = NULL;
        if (!vm) {
                r = gmem_error_set(&e, GMEM_ERROR_NO_SUCH_VM, "No VM '%s' known", name);
                return bus_set_gmem_error(error, &e, r);
        }
        *ret = vm;
        return 0;
}

/*
 * The view of (vm, region name), setting NoSuchRegion or NoSuchView. A VM's
 * views are found through the VM: who may see the VM may see which regions
 * it has views of, even where it may not see those regions otherwise.
 */
static int bus_get_view(sd_bus_message *msg, Vm *vm, const char *region, View **ret, sd_bus_error *error) {
        GmemError e = GMEM_ERROR_INIT;
        Region *reg;
        View *v;
        int r;

        v = gmem_name_is_valid(region) ? hashmap_get(vm->views, region) : NULL;
        if (v) {
                *ret = v;
                return 0;
        }
        r = bus_get_region(vm->manager, msg, region, &reg, error);
        if (r < 0)
                return r;
        v = view_lookup(vm, reg);
        if (!v) {
                r = gmem_error_set(&e, GMEM_ERROR_NO_SUCH_VIEW, "VM '%s' has no view of region '%s'", vm->name, region);
                return bus_set_gmem_error(error, &e, r);
        }
        *ret = v;
        return 0;
}

int bus_vm_method_unregister(sd_bus_message *msg, Vm *vm, sd_bus_error *error) {
        Actor caller;
        GmemError e = GMEM_ERROR_INIT;
        int r;

        r = bus_authorize(msg, vm->manager, POLICY_VERB_UNREGISTER_VM, BUS_TARGET(.vm = vm), &caller, error);
        if (r <= 0)
                return BUS_AUTH_RETURN(r);
        r = vm_unregister(vm, &e);
        if (r < 0)
                return bus_set_gmem_error(error, &e, r);
        return sd_bus_reply_method_return(msg, NULL);
}

int bus_vm_method_attach(sd_bus_message *msg, Vm *vm, sd_bus_error *error) {
        /* The spare for the next view is opened on the way out, after the answer. */
        _unused_ _cleanup_(manager_answer_endp) Manager *answering = manager_answer_begin(vm->manager);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(usage_charge_release) UsageCharge charge = {};
        Actor caller;
        bool existing = false;
        GmemError e = GMEM_ERROR_INIT;
        ViewParams p = {};
        const char *region, *access;
        bool allocate = false;
        Region *reg;
        View *v;
        int r;

        r = bus_read_string(msg, &region);
        if (r >= 0)
                r = bus_read_string(msg, &access);
        if (r < 0)
                return r;
        const BusOption options[] = {
                { "offset",   BUS_OPTION_UINT64,  &p.offset, &p.has_offset },
                { "length",   BUS_OPTION_UINT64,  &p.length, &p.has_length },
                { "allocate", BUS_OPTION_BOOLEAN, &allocate, NULL },
        };
        r = bus_read_options(msg, options, ELEMENTSOF(options), &e);
        if (r < 0)
                return bus_set_gmem_error(error, &e, r);
        p.allocate = allocate;

        p.access = view_access_from_string(access);
        if (p.access < 0) {
                r = gmem_error_set(&e, GMEM_ERROR_INVALID_ARGUMENT, "Invalid access '%.64s': expected 'ro' or 'rw'",
                                    access);
                return bus_set_gmem_error(error, &e, r);
        }
        /* A region the VM has a view of is found through the VM, as Detach and GetFd find it. */
        v = gmem_name_is_valid(region) ? hashmap_get(vm->views, region) : NULL;
        if (v)
                reg = v->region;
        else {
                r = bus_get_region(vm->manager, msg, region, &reg, error);
                if (r < 0)
                        return r;
        }
        r = bus_authorize(msg, vm->manager, POLICY_VERB_ATTACH, BUS_TARGET(.vm = vm, .region = reg), &caller, error);
        if (r <= 0)
                return BUS_AUTH_RETURN(r);
        /* The quota of a new view: checked by the model in the same step as it charges. */
        r = view_reserve(vm, reg, &caller, &charge, &e);
        if (r < 0)
                return bus_set_gmem_error(error, &e, r);
        /* The view file and the reply's duplicate of it. */
        r = bus_check_fds(msg, vm->manager, 1, 1, error, "Cannot give VM '%s' a view of region '%s'", vm->name,
                           reg->name);
        if (r < 0)
                return r;
        /* The reply exists before the view does, so that a failure to build it changes nothing. */
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;

        r = view_attach(vm, reg, &p, &charge, &v, &existing, &e);
        if (r < 0)
                return bus_set_gmem_error(error, &e, r);
        r = sd_bus_message_append(reply, "h", v->fd);
        if (r < 0) {
                if (!existing)
                        (void) view_detach(v, NULL);
                return sd_bus_error_set_errnof(error, r, "Cannot give VM '%s' a view of region '%s': %s", vm->name,
                                               reg->name, strerror(-r));
        }
        return sd_bus_send(NULL, reply, NULL);
}

int bus_vm_method_detach(sd_bus_message *msg, Vm *vm, sd_bus_error *error) {
        /* The view's file is closed on the way out, after the answer. */
        _unused_ _cleanup_(manager_answer_endp) Manager *answering = manager_answer_begin(vm->manager);
        Actor caller;
        GmemError e = GMEM_ERROR_INIT;
        const char *region;
        View *v = NULL;
        int r;

        r = bus_read_string(msg, &region);
        if (r < 0)
                return r;
        r = bus_get_view(msg, vm, region, &v, error);
        if (r < 0)
                return r;
        r = bus_authorize(msg, vm->manager, POLICY_VERB_DETACH, BUS_TARGET(.vm = vm), &caller, error);
        if (r <= 0)
                return BUS_AUTH_RETURN(r);
        r = view_detach(v, &e);
        if (r < 0)
                return bus_set_gmem_error(error, &e, r);
        return sd_bus_reply_method_return(msg, NULL);
}

int bus_vm_method_get_fd(sd_bus_message *msg, Vm *vm, sd_bus_error *error) {
        Actor caller;
        GmemError e = GMEM_ERROR_INIT;
        const char *region;
        View *v = NULL;
        int r, fd;

        r = bus_read_string(msg, &region);
        if (r < 0)
                return r;
        r = bus_get_view(msg, vm, region, &v, error);
        if (r < 0)
                return r;
        r = bus_authorize(msg, vm->manager, POLICY_VERB_GET_FD, BUS_TARGET(.vm = vm), &caller, error);
        if (r <= 0)
                return BUS_AUTH_RETURN(r);
        r = view_get_fd(v, &fd, &e);
        if (r < 0)
                return bus_set_gmem_error(error, &e, r);
        r = bus_check_fds(msg, vm->manager, 0, 1, error, "Cannot hand VM '%s' its view of region '%s'", vm->name,
                          region);
        if (r < 0)
                return r;
        r = sd_bus_reply_method_return(msg, "h", fd);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot hand VM '%s' its view of region '%s': %s", vm->name,
                                               region, strerror(-r));
        return r;
}

static int method_unregister(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return bus_vm_method_unregister(msg, userdata, error);
}

static int method_attach(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return bus_vm_method_attach(msg, userdata, error);
}

static int method_detach(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return bus_vm_method_detach(msg, userdata, error);
}

static int method_get_fd(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return bus_vm_method_get_fd(msg, userdata, error);
}

static int property_get_leader(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Vm *vm = userdata;
        return sd_bus_message_append(reply, "u", (uint32_t) vm->leader_pid);
}

static int property_get_uid(sd_bus *bus, const char *path, const char *interface, const char *property,
                            sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Vm *vm = userdata;
        return sd_bus_message_append(reply, "u", vm->has_uid ? (uint32_t) vm->uid : UINT32_MAX);
}

int vm_bus_append_views(sd_bus_message *m, const void *object) {
        const Vm *vm = object;
        View *v;
        int r;

        r = sd_bus_message_open_container(m, 'a', "(sss)");
        if (r < 0)
                return r;
        HASHMAP_FOREACH(v, vm->views, i) {
                r = sd_bus_message_append(m, "(sss)", v->region->name, view_access_to_string(v->access),
                                          view_state_to_string(v->state));
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(m);
}

static int property_get_views(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return vm_bus_append_views(reply, userdata);
}

int vm_bus_append_row(sd_bus_message *m, const Vm *vm) {
        _cleanup_free_ char *path = NULL;
        int r;

        r = vm_bus_path(vm, &path);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'r', VM_BUS_ROW_CONTENTS);
        if (r < 0)
                return r;
        /* The same values as the LeaderPID and Uid properties. */
        r = sd_bus_message_append(m, "suu", vm->name, (uint32_t) vm->leader_pid,
                                  vm->has_uid ? (uint32_t) vm->uid : UINT32_MAX);
        if (r < 0)
                return r;
        r = vm_bus_append_views(m, vm);
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "o", path);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(m);
}

const sd_bus_vtable vm_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", NULL, offsetof(Vm, name), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("LeaderPID", "u", property_get_leader, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Uid", "u", property_get_uid, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Views", "a(sss)", property_get_views, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD("Unregister", NULL, NULL, method_unregister, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Attach", "ssa{sv}", SD_BUS_PARAM(region) SD_BUS_PARAM(access) SD_BUS_PARAM(options),
                                 "h", SD_BUS_PARAM(fd), method_attach, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Detach", "s", SD_BUS_PARAM(region), NULL,, method_detach,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("GetFd", "s", SD_BUS_PARAM(region), "h", SD_BUS_PARAM(fd), method_get_fd,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int vm_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                   sd_bus_error *error) {
        _cleanup_free_ char *name = NULL;
        Manager *m = userdata;
        Vm *vm;
        Actor a;

        if (sd_bus_path_decode(path, BUS_VM_PREFIX, &name) <= 0)
                return 0;
        vm = manager_get_vm(m, name);
        if (!vm)
                return 0;
        /* Properties, methods and introspection of a VM the caller may not see: as if it did not exist. */
        if (!bus_emitting(m) && !(bus_caller_peek(m, bus, NULL, &a) && bus_actor_sees_vm(&a, vm)))
                return 0;
        *found = vm;
        return 1;
}

static int vm_path_of(const void *o, char **ret) {
        return vm_bus_path(o, ret);
}

static bool vm_seen(const void *o, const Actor *a, Manager *m) {
        return bus_actor_sees_vm(a, o);
}

int vm_node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error) {
        Manager *m = userdata;
        return bus_node_list(m, bus, m->vms, vm_path_of, vm_seen, nodes);
}
