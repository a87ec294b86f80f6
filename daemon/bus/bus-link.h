/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bus-link.h — gmemd's connection to its bus, kept up. It connects,
 * publishes the model's objects and owns the bus name; when the connection
 * is lost (dbus-daemon restarted, or sd-bus gave the connection up, as it
 * does on a message whose fds could not be received), it says so and
 * reconnects with a growing delay. The model and every region stay as they
 * are meanwhile; calls made while gmemd is away get no answer from it.
 */
#pragma once

#include <systemd/sd-event.h>

#include "macro.h"
#include "manager.h"

typedef struct BusLink BusLink;

/* address NULL: the system bus ($DBUS_SYSTEM_BUS_ADDRESS or the default). */
int bus_link_new(Manager *m, sd_event *event, const char *address, const char *name, BusLink **ret);

/* The first connection; its failure is the caller's to report (gmemd does not start). */
int bus_link_start(BusLink *l);

/* Gives the name up and closes the connection. */
BusLink *bus_link_free(BusLink *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(BusLink *, bus_link_free);
