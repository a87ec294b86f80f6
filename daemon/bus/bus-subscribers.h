/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bus-subscribers.h — the bus clients that called Manager.Subscribe(), by
 * unique name, each until it unsubscribes or its connection ends. One
 * NameOwnerChanged match on the bus serves them all: a match per
 * subscriber (sd_bus_track) would let callers use up the bus's match
 * rules for gmemd's connection, and a match the bus refuses ends it.
 */
#pragma once

#include <stddef.h>
#include <systemd/sd-bus.h>

#include "macro.h"

#define BUS_SUBSCRIBERS_MAX 512U

typedef struct BusSubscribers BusSubscribers;

/* Adds name (made on first use, watching bus); 0 if it was there already; -EUSERS past BUS_SUBSCRIBERS_MAX. */
int bus_subscribers_add(BusSubscribers **s, sd_bus *bus, const char *name);
void bus_subscribers_remove(BusSubscribers *s, const char *name);
size_t bus_subscribers_count(const BusSubscribers *s);
BusSubscribers *bus_subscribers_free(BusSubscribers *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(BusSubscribers *, bus_subscribers_free);
