/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * region-dbus.h — the D-Bus face of regions: org.gmemd.Broker1.Region objects
 * and the handlers the Manager's by-name methods share with them.
 */
#pragma once

#include <systemd/sd-bus.h>

#include "manager.h"

extern const sd_bus_vtable region_vtable[];

int region_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                       sd_bus_error *error);
/*
 * Appends the Views property's value, a(sss), of a region (a const Region *)
 * with every view, as PropertiesChanged carries it to every listener: a
 * BusAppendFunc.
 */
int region_bus_append_all_views(sd_bus_message *m, const void *object);

/*
 * One entry of ListRegionsFull: name, id, size, backend, owner ("" if none),
 * allocated bytes, the views of VMs caller may see (vm, access, state), path.
 */
#define REGION_BUS_ROW_CONTENTS "sttssta(sss)o"
#define REGION_BUS_ROW "(" REGION_BUS_ROW_CONTENTS ")"
int region_bus_append_row(sd_bus_message *m, Region *reg, const Actor *caller);
int region_node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error);

/* Looks up a region by name, setting NoSuchRegion. */
/* The region of that name the caller of msg may see, or NoSuchRegion, the same whether it exists or not. */
int bus_get_region(Manager *m, sd_bus_message *msg, const char *name, Region **ret, sd_bus_error *error);

/* Handlers whose remaining arguments start after the region was determined. */
int bus_region_method_destroy(sd_bus_message *msg, Region *reg, sd_bus_error *error);
int bus_region_method_discard(sd_bus_message *msg, Region *reg, sd_bus_error *error);
int bus_region_method_allocate(sd_bus_message *msg, Region *reg, sd_bus_error *error);
int bus_region_method_set_attributes(sd_bus_message *msg, Region *reg, sd_bus_error *error);
int bus_region_method_get_attributes(sd_bus_message *msg, Region *reg, sd_bus_error *error);
