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
