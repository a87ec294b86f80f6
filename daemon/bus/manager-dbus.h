/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * manager-dbus.h — publishes the model on a bus: the Manager object, the
 * Region/Vm/Migration object trees, the signals, and the hooks through which
 * model changes become signals and PropertiesChanged.
 */
#pragma once

#include <systemd/sd-bus.h>

#include "manager.h"

/* Installs every vtable and the model hooks; m must outlive the bus objects. */
int manager_bus_register(Manager *m, sd_bus *bus);

/* Installs every vtable on another connection (a direct one), without hooks: it gets no signals. */
int manager_bus_add_objects(Manager *m, sd_bus *bus);

/*
 * Takes the hooks back from the bus manager_bus_register() installed them
 * for, before that bus is closed (it was lost and is being replaced). The
 * model goes on without announcing changes until the next registration.
 */
void manager_bus_unregister(Manager *m);
