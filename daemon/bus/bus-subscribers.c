/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bus-subscribers.c — see bus-subscribers.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bus-subscribers.h"
#include "hashmap.h"
#include "log.h"

struct BusSubscribers {
        Hashmap *names;             /* unique name -> the same string, owned */
        sd_bus_slot *match;
};

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusSubscribers *s = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0 || new_owner[0] != 0)
                return 0;
        bus_subscribers_remove(s, name);
        return 0;
}

/* Without the match, subscribers that leave are not noticed; that only costs signals nobody reads. */
static int on_match_installed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const sd_bus_error *e = sd_bus_message_get_error(m);

        if (e)
                log_warning("Cannot watch subscribers leave the bus (%s): Views changes go on being sent for them",
                            e->message ?: e->name);
        return 1;       /* handled: the connection stays */
}

int bus_subscribers_add(BusSubscribers **s, sd_bus *bus, const char *name) {
        char *copy;
        int r;

        if (!*s) {
                _cleanup_(bus_subscribers_freep) BusSubscribers *n = calloc(1, sizeof(*n));

                if (!n)
                        return -ENOMEM;
                n->names = hashmap_new();
                if (!n->names)
                        return -ENOMEM;
                r = sd_bus_match_signal_async(bus, &n->match, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                              "org.freedesktop.DBus", "NameOwnerChanged", on_name_owner_changed,
                                              on_match_installed, n);
                if (r < 0)
                        return r;
                *s = TAKE_PTR(n);
        }
        if (hashmap_get((*s)->names, name))
                return 0;
        if (hashmap_size((*s)->names) >= BUS_SUBSCRIBERS_MAX)
                return -EUSERS;
        copy = strdup(name);
        if (!copy)
                return -ENOMEM;
        r = hashmap_put((*s)->names, copy, copy);
        if (r < 0) {
                free(copy);
                return r;
        }
        return 1;
}

void bus_subscribers_remove(BusSubscribers *s, const char *name) {
        if (s)
                free(hashmap_remove(s->names, name));
}

size_t bus_subscribers_count(const BusSubscribers *s) {
        return s ? hashmap_size(s->names) : 0;
}

BusSubscribers *bus_subscribers_free(BusSubscribers *s) {
        char *name;

        if (!s)
                return NULL;
        while ((name = hashmap_first(s->names))) {
                hashmap_remove(s->names, name);
                free(name);
        }
        hashmap_free(s->names);
        sd_bus_slot_unref(s->match);
        free(s);
        return NULL;
}
