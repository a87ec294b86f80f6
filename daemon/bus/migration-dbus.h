/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * migration-dbus.h — the D-Bus face of migrations:
 * org.gmemd.Broker1.Migration objects at /org/gmemd/Broker1/migration/<id>.
 */
#pragma once

#include <systemd/sd-bus.h>

#include "manager.h"

extern const sd_bus_vtable migration_vtable[];

int migration_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                          sd_bus_error *error);
int migration_node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error);

/* Resolves a migration object path, setting NoSuchMigration. */
int bus_get_migration(Manager *m, sd_bus_message *msg, const char *path, Migration **ret, sd_bus_error *error);

int bus_migration_method_commit(sd_bus_message *msg, Migration *mig, sd_bus_error *error);
int bus_migration_method_abort(sd_bus_message *msg, Migration *mig, sd_bus_error *error);
