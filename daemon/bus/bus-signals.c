/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bus-signals.c — the model's hooks on the bus: every change the model
 * reports (ManagerHooks) becomes a signal (RegionNew, VmRemoved,
 * ViewRevoked, MigrationChanged, ...), InterfacesAdded/Removed or
 * PropertiesChanged, emitted while the objects' lookups show everything.
 */
#include <stdlib.h>

#include "bus-creds.h"
#include "bus-fdflow.h"
#include "bus-signals.h"
#include "bus-util.h"
#include "migration-dbus.h"
#include "migration.h"
#include "region-dbus.h"
#include "region.h"
#include "view.h"
#include "vm-dbus.h"
#include "vm.h"

/*
 * sd-bus looks objects up through the same callbacks to emit their signals
 * as to answer callers; while gmemd emits, the lookups must not hide an
 * object from whoever's call happens to be dispatched.
 */
static BusContext *emitting_begin(Manager *m) {
        BusContext *ctx = m->hooks_userdata;

        ctx->emitting++;
        return ctx;
}

static void emitting_end(BusContext **ctx) {
        (*ctx)->emitting--;
}

#define EMITTING(m) _cleanup_(emitting_end) _unused_ BusContext *_emitting_ = emitting_begin(m)

/* signal (name, path) on the manager, and InterfacesAdded/Removed of path. */
static void emit_object_signal(Manager *m, const char *signal, const char *name, const char *path, bool added) {
        EMITTING(m);
        sd_bus *bus = manager_bus(m);

        if (!path)
                return;
        (void) sd_bus_emit_signal(bus, BUS_PATH, BUS_IFACE_MANAGER, signal, "so", name, path);
        if (added)
                (void) sd_bus_emit_object_added(bus, path);
        else
                (void) sd_bus_emit_object_removed(bus, path);
}

static void emit_region(Manager *m, Region *reg, const char *signal, bool added) {
        _cleanup_free_ char *path = NULL;

        (void) region_bus_path(reg, &path);
        emit_object_signal(m, signal, reg->name, path, added);
}

static void emit_vm(Manager *m, Vm *vm, const char *signal, bool added) {
        _cleanup_free_ char *path = NULL;

        (void) vm_bus_path(vm, &path);
        emit_object_signal(m, signal, vm->name, path, added);
}

static void hook_region_new(Manager *m, Region *reg) {
        emit_region(m, reg, "RegionNew", true);
}

static void hook_region_removed(Manager *m, Region *reg) {
        emit_region(m, reg, "RegionRemoved", false);
}

static void hook_vm_new(Manager *m, Vm *vm) {
        emit_vm(m, vm, "VmNew", true);
}

static void hook_vm_removed(Manager *m, Vm *vm) {
        emit_vm(m, vm, "VmRemoved", false);
}

static void hook_vm_changed(Manager *m, Vm *vm) {
        EMITTING(m);
        _cleanup_free_ char *path = NULL;

        if (vm_bus_path(vm, &path) >= 0)
                (void) sd_bus_emit_properties_changed(manager_bus(m), path, BUS_IFACE_VM, "LeaderPID", NULL);
}

static bool has_subscribers(const Manager *m) {
        const BusContext *ctx = m->hooks_userdata;

        return bus_subscribers_count(ctx->subscribers) > 0;
}

static void hook_views_changed(Manager *m, Vm *vm, Region *reg) {
        if (!has_subscribers(m))
                return;

        EMITTING(m);
        _cleanup_free_ char *vm_path = NULL, *region_path = NULL;
        sd_bus *bus = manager_bus(m);

        if (vm && vm_bus_path(vm, &vm_path) >= 0)
                (void) bus_emit_property_changed(bus, vm_path, BUS_IFACE_VM, "Views", "a(sss)", vm_bus_append_views,
                                                 vm);
        if (reg && region_bus_path(reg, &region_path) >= 0)
                (void) bus_emit_property_changed(bus, region_path, BUS_IFACE_REGION, "Views", "a(sss)",
                                                 region_bus_append_all_views, reg);
}

static void hook_view_revoked(Manager *m, View *v) {
        EMITTING(m);
        (void) sd_bus_emit_signal(manager_bus(m), BUS_PATH, BUS_IFACE_MANAGER, "ViewRevoked", "ss",
                                  v->vm->name, v->region->name);
}

static void emit_migration(Manager *m, Migration *mig, int added) {
        EMITTING(m);
        _cleanup_free_ char *path = NULL;
        sd_bus *bus = manager_bus(m);

        if (migration_bus_path(mig, &path) < 0)
                return;
        if (added > 0)
                (void) sd_bus_emit_object_added(bus, path);
        else if (added < 0) {
                (void) sd_bus_emit_object_removed(bus, path);
                return;
        } else
                (void) sd_bus_emit_properties_changed(bus, path, BUS_IFACE_MIGRATION, "State", NULL);
        (void) sd_bus_emit_signal(bus, BUS_PATH, BUS_IFACE_MANAGER, "MigrationChanged", "os", path,
                                  migration_state_to_string(mig->state));
}

static void hook_migration_new(Manager *m, Migration *mig) {
        emit_migration(m, mig, 1);
}

static void hook_migration_changed(Manager *m, Migration *mig) {
        emit_migration(m, mig, 0);
}

static void hook_migration_removed(Manager *m, Migration *mig) {
        emit_migration(m, mig, -1);
}

static void hook_totals_changed(Manager *m) {
        EMITTING(m);
        (void) sd_bus_emit_properties_changed(manager_bus(m), BUS_PATH, BUS_IFACE_MANAGER, "TotalBytes", NULL);
}

static void hook_persistence_changed(Manager *m) {
        EMITTING(m);
        (void) sd_bus_emit_properties_changed(manager_bus(m), BUS_PATH, BUS_IFACE_MANAGER, "Persistence", NULL);
}

static void hook_detach(Manager *m) {
        bus_context_free(m->hooks_userdata);
        m->hooks_userdata = NULL;
}

static const ManagerHooks bus_hooks = {
        .detach = hook_detach,
        .region_new = hook_region_new,
        .region_removed = hook_region_removed,
        .vm_new = hook_vm_new,
        .vm_changed = hook_vm_changed,
        .vm_removed = hook_vm_removed,
        .views_changed = hook_views_changed,
        .view_revoked = hook_view_revoked,
        .migration_new = hook_migration_new,
        .migration_changed = hook_migration_changed,
        .migration_removed = hook_migration_removed,
        .totals_changed = hook_totals_changed,
        .persistence_changed = hook_persistence_changed,
};

void bus_context_free(BusContext *ctx) {
        if (!ctx)
                return;
        /* Frees the slots the cache holds, which hold references to the bus. */
        bus_creds_cache_free(ctx->creds);
        fdflow_free(ctx->fdflow);
        bus_subscribers_free(ctx->subscribers);
        free(ctx);
}

static BusContext *subscription_context(sd_bus_message *msg, Manager *m, sd_bus_error *error) {
        BusContext *ctx = bus_context_of(m, sd_bus_message_get_bus(msg));

        if (!ctx || ctx->direct || !ctx->bus) {
                (void) sd_bus_error_set(error, SD_BUS_ERROR_NOT_SUPPORTED,
                                        "Signals are sent on the bus only: a direct connection cannot subscribe");
                return NULL;
        }
        return ctx;
}

int bus_method_subscribe(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BusContext *ctx = subscription_context(msg, userdata, error);
        const char *sender;
        int r;

        if (!ctx)
                return -EOPNOTSUPP;
        sender = sd_bus_message_get_sender(msg);
        if (!sender)
                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, "Cannot subscribe: the call has no sender");
        r = bus_subscribers_add(&ctx->subscribers, ctx->bus, sender);
        if (r == -EUSERS)
                return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                         "Cannot subscribe: %zu clients are subscribed (at most %u)",
                                         bus_subscribers_count(ctx->subscribers), BUS_SUBSCRIBERS_MAX);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, NULL);
}

int bus_method_unsubscribe(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BusContext *ctx = subscription_context(msg, userdata, error);
        const char *sender;

        if (!ctx)
                return -EOPNOTSUPP;
        sender = sd_bus_message_get_sender(msg);
        if (sender)
                bus_subscribers_remove(ctx->subscribers, sender);
        return sd_bus_reply_method_return(msg, NULL);
}

void bus_signals_attach(Manager *m, BusContext *ctx) {
        /* The context lives until manager_free() calls hook_detach(), which must come before the bus goes. */
        m->hooks_userdata = ctx;
        m->hooks = &bus_hooks;
}

void bus_signals_detach(Manager *m) {
        if (m->hooks != &bus_hooks)
                return;
        hook_detach(m);
        m->hooks = NULL;
}
