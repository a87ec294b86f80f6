/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bus-link.c — see bus-link.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>

#include "bus-link.h"
#include "log.h"
#include "manager-dbus.h"

/* Delays between reconnection attempts: doubling from the first to the last. */
#define RETRY_FIRST_USEC (100 * 1000ULL)
#define RETRY_MAX_USEC (5 * 1000 * 1000ULL)

struct BusLink {
        Manager *manager;
        sd_event *event;
        char *address;              /* NULL: the system bus */
        char *name;
        sd_bus *bus;                /* NULL while disconnected */
        sd_event_source *retry;
        unsigned attempts;          /* failed reconnections since the loss */
};

static int link_open(BusLink *l, sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        if (!l->address) {
                r = sd_bus_open_system_with_description(&bus, "gmemd");
                if (r < 0)
                        return log_error_errno(r, "Cannot connect to the system bus");
                *ret = TAKE_PTR(bus);
                return 0;
        }
        r = sd_bus_new(&bus);
        if (r < 0)
                return log_error_errno(r, "Cannot allocate bus");
        r = sd_bus_set_address(bus, l->address);
        if (r < 0)
                return log_error_errno(r, "Invalid bus address '%s'", l->address);
        (void) sd_bus_set_description(bus, "gmemd");
        r = sd_bus_set_bus_client(bus, true);
        if (r >= 0)
                r = sd_bus_negotiate_fds(bus, true);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0)
                return log_error_errno(r, "Cannot connect to bus %s", l->address);
        *ret = TAKE_PTR(bus);
        return 0;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata);

static void link_schedule_retry(BusLink *l) {
        uint64_t delay = RETRY_FIRST_USEC;
        int r;

        for (unsigned i = 0; i < l->attempts && delay < RETRY_MAX_USEC; i++)
                delay *= 2;
        if (delay > RETRY_MAX_USEC)
                delay = RETRY_MAX_USEC;
        if (l->retry) {
                r = sd_event_source_set_time_relative(l->retry, delay);
                if (r >= 0)
                        r = sd_event_source_set_enabled(l->retry, SD_EVENT_ONESHOT);
        } else
                r = sd_event_add_time_relative(l->event, &l->retry, CLOCK_MONOTONIC, delay, 0, on_retry, l);
        if (r < 0) {
                /* Without a timer there is no way back to the bus: end, so that a service manager restarts
                 * gmemd and it restores its regions from the fd store. */
                log_error_errno(r, "Cannot schedule reconnecting to the bus; exiting");
                (void) sd_event_exit(l->event, EXIT_FAILURE);
        }
}

static int on_message(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BusLink *l = userdata;

        if (!sd_bus_message_is_signal(msg, "org.freedesktop.DBus.Local", "Disconnected"))
                return 0;
        /* The bus is torn down from the timer, not from inside its own dispatch. */
        log_error("Lost the connection to the bus; reconnecting. Every region and view is kept.");
        l->attempts = 0;
        link_schedule_retry(l);
        return 0;
}

static void link_close(BusLink *l) {
        if (!l->bus)
                return;
        manager_bus_unregister(l->manager);
        l->bus = sd_bus_flush_close_unref(l->bus);
}

static int link_up(BusLink *l) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        r = link_open(l, &bus);
        if (r < 0)
                return r;
        r = sd_bus_add_filter(bus, NULL, on_message, l);
        if (r < 0)
                return log_error_errno(r, "Cannot watch the bus connection");
        r = manager_bus_register(l->manager, bus);
        if (r < 0) {
                manager_bus_unregister(l->manager);
                return log_error_errno(r, "Cannot publish objects on the bus");
        }
        r = sd_bus_attach_event(bus, l->event, SD_EVENT_PRIORITY_NORMAL);
        if (r >= 0)
                r = sd_bus_request_name(bus, l->name, 0);
        if (r < 0) {
                manager_bus_unregister(l->manager);
                return log_error_errno(r, "Cannot own bus name %s (is another gmemd running?)", l->name);
        }
        l->bus = TAKE_PTR(bus);
        return 0;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        BusLink *l = userdata;
        int r;

        link_close(l);
        r = link_up(l);
        if (r < 0) {
                l->attempts++;
                link_schedule_retry(l);
                return 0;
        }
        log_notice("Connected to the bus again and serving %s", l->name);
        l->attempts = 0;
        return 0;
}

int bus_link_new(Manager *m, sd_event *event, const char *address, const char *name, BusLink **ret) {
        BusLink *l;

        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->manager = m;
        l->event = sd_event_ref(event);
        l->address = address ? strdup(address) : NULL;
        l->name = strdup(name);
        if ((address && !l->address) || !l->name) {
                bus_link_free(l);
                return -ENOMEM;
        }
        *ret = l;
        return 0;
}

int bus_link_start(BusLink *l) {
        return link_up(l);
}

BusLink *bus_link_free(BusLink *l) {
        if (!l)
                return NULL;
        l->retry = sd_event_source_disable_unref(l->retry);
        if (l->bus)
                (void) sd_bus_release_name(l->bus, l->name);
        link_close(l);
        sd_event_unref(l->event);
        free(l->address);
        free(l->name);
        free(l);
        return NULL;
}
