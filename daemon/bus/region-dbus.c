/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * region-dbus.c — org.gmemd.Broker1.Region at /org/gmemd/Broker1/region/<name>:
 * properties, the per-object methods, object lookup and enumeration. Each
 * handler reads its arguments, validates, authorizes, calls the model in
 * region.c and replies; only here do model errors become D-Bus errors.
 */
#include <stdlib.h>

#include "bus-util.h"
#include "parse.h"
#include "region-dbus.h"
#include "region.h"
#include "view.h"
#include "vm.h"

int bus_get_region(Manager *m, sd_bus_message *msg, const char *name, Region **ret, sd_bus_error *error) {
        GmemError e = GMEM_ERROR_INIT;
        Region *reg;
        Actor a;
        int r;

        r = gmem_validate_name("region", name, &e);
        if (r < 0)
                return bus_set_gmem_error(error, &e, r);
        reg = manager_get_region(m, name);
        if (reg && !(bus_caller_peek(m, NULL, msg, &a) && bus_actor_sees(&a, reg->creator)))
                reg = NULL;
        if (!reg) {
                r = gmem_error_set(&e, GMEM_ERROR_NO_SUCH_REGION, "No region '%s' known", name);
                return bus_set_gmem_error(error, &e, r);
        }
        *ret = reg;
        return 0;
}

int bus_region_method_destroy(sd_bus_message *msg, Region *reg, sd_bus_error *error) {
        Actor caller;
        GmemError e = GMEM_ERROR_INIT;
        int r;

        r = bus_authorize(msg, reg->manager, POLICY_VERB_DESTROY_REGION, BUS_TARGET(.region = reg), &caller, error);
        if (r <= 0)
                return BUS_AUTH_RETURN(r);
        r = region_destroy(reg, &e);
        if (r < 0)
                return bus_set_gmem_error(error, &e, r);
        return sd_bus_reply_method_return(msg, NULL);
}

typedef int (*RegionRangeOp)(Region *reg, uint64_t offset, uint64_t length, GmemError *e);

static int region_range_method(sd_bus_message *msg, Region *reg, PolicyVerb verb, RegionRangeOp op,
                               sd_bus_error *error) {
        Actor caller;
        GmemError e = GMEM_ERROR_INIT;
        uint64_t offset, length;
        int r;

        r = sd_bus_message_read(msg, "tt", &offset, &length);
        if (r < 0)
                return r;
        r = bus_authorize(msg, reg->manager, verb, BUS_TARGET(.region = reg), &caller, error);
        if (r <= 0)
                return BUS_AUTH_RETURN(r);
        r = op(reg, offset, length, &e);
        if (r < 0)
                return bus_set_gmem_error(error, &e, r);
        return sd_bus_reply_method_return(msg, NULL);
}

int bus_region_method_discard(sd_bus_message *msg, Region *reg, sd_bus_error *error) {
        return region_range_method(msg, reg, POLICY_VERB_DISCARD, region_discard, error);
}

int bus_region_method_allocate(sd_bus_message *msg, Region *reg, sd_bus_error *error) {
        return region_range_method(msg, reg, POLICY_VERB_DISCARD, region_allocate, error);
}

int bus_region_method_set_attributes(sd_bus_message *msg, Region *reg, sd_bus_error *error) {
        Actor caller;
        GmemError e = GMEM_ERROR_INIT;
        uint64_t offset, length;
        const char *attribute;
        int r;

        r = sd_bus_message_read(msg, "tts", &offset, &length, &attribute);
        if (r < 0)
                return r;
        r = bus_authorize(msg, reg->manager, POLICY_VERB_SET_ATTRIBUTES, BUS_TARGET(.region = reg), &caller, error);
        if (r <= 0)
                return BUS_AUTH_RETURN(r);
        r = region_set_attributes(reg, offset, length, attribute, &e);
        if (r < 0)
                return bus_set_gmem_error(error, &e, r);
        return sd_bus_reply_method_return(msg, NULL);
}

int bus_region_method_get_attributes(sd_bus_message *msg, Region *reg, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ RegionAttributeRun *runs = NULL;
        GmemError e = GMEM_ERROR_INIT;
        uint64_t offset, length;
        Actor caller;
        size_t n = 0;
        int r;

        r = sd_bus_message_read(msg, "tt", &offset, &length);
        if (r < 0)
                return r;
        r = bus_authorize(msg, reg->manager, POLICY_VERB_LIST, BUS_TARGET(.region = reg), &caller, error);
        if (r <= 0)
                return BUS_AUTH_RETURN(r);
        r = region_get_attributes(reg, offset, length, &runs, &n, &e);
        if (r < 0)
                return bus_set_gmem_error(error, &e, r);
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(tts)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                r = sd_bus_message_append(reply, "(tts)", runs[i].offset, runs[i].length,
                                          memory_attribute_to_string(runs[i].attribute));
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_get_attributes(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return bus_region_method_get_attributes(msg, userdata, error);
}

static int property_get_private(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        BackendRegionInfo info = {};

        (void) region_info(userdata, &info);
        return sd_bus_message_append(reply, "t", info.private_bytes);
}

static int method_destroy(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return bus_region_method_destroy(msg, userdata, error);
}

static int method_discard(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return bus_region_method_discard(msg, userdata, error);
}

static int method_allocate(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return bus_region_method_allocate(msg, userdata, error);
}

static int method_set_attributes(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return bus_region_method_set_attributes(msg, userdata, error);
}

static int property_get_backend(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Region *reg = userdata;
        return sd_bus_message_append(reply, "s", backend_type_to_string(reg->backend));
}

static int property_get_owner(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Region *reg = userdata;
        return sd_bus_message_append(reply, "s", reg->owner ?: "");
}

static int property_get_allocated(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        uint64_t a = 0;
        (void) region_allocated_bytes(userdata, &a);
        return sd_bus_message_append(reply, "t", a);
}

/* The Views value of reg: every view if all, else those of VMs a may see (none if a is NULL). */
static int append_views(sd_bus_message *m, const Region *reg, bool all, const Actor *a) {
        View *v;
        int r;

        r = sd_bus_message_open_container(m, 'a', "(sss)");
        if (r < 0)
                return r;
        HASHMAP_FOREACH(v, reg->views, i) {
                if (!all && !(a && bus_actor_sees_vm(a, v->vm)))
                        continue;
                r = sd_bus_message_append(m, "(sss)", v->vm->name, view_access_to_string(v->access),
                                          view_state_to_string(v->state));
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(m);
}

int region_bus_append_all_views(sd_bus_message *m, const void *object) {
        return append_views(m, object, true, NULL);
}

int region_bus_append_row(sd_bus_message *m, Region *reg, const Actor *caller) {
        _cleanup_free_ char *path = NULL;
        uint64_t allocated = 0;
        int r;

        r = region_bus_path(reg, &path);
        if (r < 0)
                return r;
        (void) region_allocated_bytes(reg, &allocated);   /* as the AllocatedBytes property: 0 if unknown */
        r = sd_bus_message_open_container(m, 'r', REGION_BUS_ROW_CONTENTS);
        if (r < 0)
                return r;
        /* Field by field: sd_bus_message_append() parses its format string anew for every row. */
        r = sd_bus_message_append_basic(m, 's', reg->name);
        if (r >= 0)
                r = sd_bus_message_append_basic(m, 't', &reg->id);
        if (r >= 0)
                r = sd_bus_message_append_basic(m, 't', &reg->br.size);
        if (r >= 0)
                r = sd_bus_message_append_basic(m, 's', backend_type_to_string(reg->backend));
        if (r >= 0)
                r = sd_bus_message_append_basic(m, 's', reg->owner ?: "");
        if (r >= 0)
                r = sd_bus_message_append_basic(m, 't', &allocated);
        if (r >= 0)
                r = append_views(m, reg, false, caller);
        if (r >= 0)
                r = sd_bus_message_append_basic(m, 'o', path);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(m);
}

static int property_get_views(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Region *reg = userdata;
        Actor a;

        /* Views of VMs the caller may not see are left out, except in PropertiesChanged (for every listener). */
        if (bus_emitting(reg->manager))
                return append_views(reply, reg, true, NULL);
        return append_views(reply, reg, false, bus_caller_peek(reg->manager, bus, NULL, &a) ? &a : NULL);
}

const sd_bus_vtable region_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", NULL, offsetof(Region, name), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Id", "t", NULL, offsetof(Region, id), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Size", "t", NULL, offsetof(Region, br.size), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Backend", "s", property_get_backend, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Owner", "s", property_get_owner, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("AllocatedBytes", "t", property_get_allocated, 0, 0),
        SD_BUS_PROPERTY("PrivateBytes", "t", property_get_private, 0, 0),
        SD_BUS_PROPERTY("Views", "a(sss)", property_get_views, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD("Destroy", NULL, NULL, method_destroy, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Discard", "tt", SD_BUS_PARAM(offset) SD_BUS_PARAM(length), NULL,,
                                 method_discard, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Allocate", "tt", SD_BUS_PARAM(offset) SD_BUS_PARAM(length), NULL,,
                                 method_allocate, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("GetMemoryAttributes", "tt", SD_BUS_PARAM(offset) SD_BUS_PARAM(length),
                                 "a(tts)", SD_BUS_PARAM(runs), method_get_attributes, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("SetMemoryAttributes", "tts",
                                 SD_BUS_PARAM(offset) SD_BUS_PARAM(length) SD_BUS_PARAM(attribute), NULL,,
                                 method_set_attributes, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int region_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                       sd_bus_error *error) {
        _cleanup_free_ char *name = NULL;
        Manager *m = userdata;
        Region *reg;
        Actor a;
        int r;

        r = sd_bus_path_decode(path, BUS_REGION_PREFIX, &name);
        if (r <= 0)
                return 0;
        reg = manager_get_region(m, name);
        if (!reg)
                return 0;
        /* Properties, methods and introspection of a region the caller may not see: as if it did not exist. */
        if (!bus_emitting(m) && !(bus_caller_peek(m, bus, NULL, &a) && bus_actor_sees(&a, reg->creator)))
                return 0;
        *found = reg;
        return 1;
}

static int region_path_of(const void *o, char **ret) {
        return region_bus_path(o, ret);
}

static bool region_seen(const void *o, const Actor *a, Manager *m) {
        const Region *reg = o;
        return bus_actor_sees(a, reg->creator);
}

int region_node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error) {
        Manager *m = userdata;
        return bus_node_list(m, bus, m->regions, region_path_of, region_seen, nodes);
}
