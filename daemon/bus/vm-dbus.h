/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vm-dbus.h — the D-Bus face of VMs: org.gmemd.Broker1.Vm objects and the
 * handlers the Manager's by-name methods share with them.
 */
#pragma once

#include <systemd/sd-bus.h>

#include "manager.h"

extern const sd_bus_vtable vm_vtable[];

int vm_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                   sd_bus_error *error);
/* Appends the Views property's value, a(sss), of a VM (a const Vm *): a BusAppendFunc. */
int vm_bus_append_views(sd_bus_message *m, const void *object);

/*
 * One entry of ListVmsFull: name, leader pid (0 if none), uid (UINT32_MAX if
 * none), the VM's views (region, access, state), path.
 */
#define VM_BUS_ROW_CONTENTS "suua(sss)o"
#define VM_BUS_ROW "(" VM_BUS_ROW_CONTENTS ")"
int vm_bus_append_row(sd_bus_message *m, const Vm *vm);
int vm_node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error);

/* Looks up a VM by name, setting NoSuchVm. */
/* The VM of that name the caller of msg may see, or NoSuchVm, the same whether it exists or not. */
int bus_get_vm(Manager *m, sd_bus_message *msg, const char *name, Vm **ret, sd_bus_error *error);

int bus_vm_method_unregister(sd_bus_message *msg, Vm *vm, sd_bus_error *error);
int bus_vm_method_attach(sd_bus_message *msg, Vm *vm, sd_bus_error *error);
int bus_vm_method_detach(sd_bus_message *msg, Vm *vm, sd_bus_error *error);
int bus_vm_method_get_fd(sd_bus_message *msg, Vm *vm, sd_bus_error *error);
