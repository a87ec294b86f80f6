/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bus-signals.h — model changes announced on the bus (bus-signals.c).
 */
#pragma once

#include "bus-util.h"
#include "manager.h"

/* Installs the hooks on m with ctx, which they own from now on (freed when they are detached). */
void bus_signals_attach(Manager *m, BusContext *ctx);

/* Takes the hooks back and frees their context, if they are the bus's; the model then announces nothing. */
void bus_signals_detach(Manager *m);

/* Frees a context that was never attached (or is being detached); accepts NULL. */
void bus_context_free(BusContext *ctx);

/*
 * Manager.Subscribe() and Unsubscribe(): PropertiesChanged of the Views
 * property (of regions and VMs) is emitted only while a client of the bus is
 * subscribed, as systemd announces unit changes only to subscribers. A
 * subscription ends with the client's connection. Every other signal is
 * emitted whether or not anyone subscribed. Direct connections get no
 * signals: there Subscribe fails with NotSupported.
 */
int bus_method_subscribe(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int bus_method_unsubscribe(sd_bus_message *msg, void *userdata, sd_bus_error *error);
