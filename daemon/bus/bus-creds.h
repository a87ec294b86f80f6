/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bus-creds.h — the credentials the bus captured for each caller (uid and
 * all gids, from org.freedesktop.DBus.GetConnectionCredentials), asked for
 * once per connection, asynchronously, and cached by unique name until the
 * bus says the connection is gone. A message whose sender is not known yet
 * is parked and dispatched again when the answer arrives; if the sender has
 * disconnected meanwhile, its messages are dropped: it gets nothing and
 * nothing is done for it.
 */
#pragma once

#include <stddef.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

#define BUS_CREDS_GIDS_MAX 1024
#define BUS_CREDS_CACHE_MAX 16384
/* Per sender: dbus-daemon's max_replies_per_connection, so a client of a bus with the default limits
 * can never pipeline more calls than gmemd parks while it looks the client up. */
#define BUS_CREDS_PARKED_MAX 128

typedef struct BusCredsCache BusCredsCache;

typedef struct BusCreds {
        char *sender;
        uid_t uid;
        gid_t *gids;
        size_t n_gids;
} BusCreds;

int bus_creds_cache_new(sd_bus *bus, BusCredsCache **ret);
BusCredsCache *bus_creds_cache_free(BusCredsCache *c);

/*
 * 1 with *ret set if the sender's credentials are known; 0 if they were
 * asked for and m is parked (the handler must return without replying);
 * negative on error.
 */
int bus_creds_get(BusCredsCache *c, sd_bus_message *m, const BusCreds **ret);
/*
 * 1 with *ret set if the sender's credentials are known, 0 if not; never
 * asks the bus and never parks m. For property getters, node enumerators
 * and object lookups, which cannot wait: every method call reaches them only
 * after the credentials are known (calls are parked until then), so 0 means
 * a sender the cache has already forgotten.
 */
int bus_creds_peek(BusCredsCache *c, sd_bus_message *m, const BusCreds **ret);
