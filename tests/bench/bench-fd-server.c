/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-fd-server.c — the floor of the fd handout benchmark: the least an
 * sd-bus service can do to answer a method with a file descriptor. It owns
 * org.gmemd.BenchFloor on the same bus as gmemd and offers Attach, Detach
 * and GetFd with gmemd's signatures, so the messages on the wire are the
 * same size and shape; Attach and GetFd reply with a duplicate of one memfd
 * (sd-bus duplicates an 'h' when it is appended, as it does for gmemd), and
 * Detach replies with nothing. No lookup, no authorization, no signals: what
 * gmemd takes beyond this is what the broker itself costs.
 *
 * With "signals" it also emits, after each Attach and Detach reply, the two
 * PropertiesChanged signals gmemd emits for a view change (the VM's and the
 * region's Views, each with its new value): a diagnostic that isolates what
 * those signals cost from the rest of the broker's work.
 *
 *   bench-fd-server [BUS_NAME [signals]]   (the system bus: $DBUS_SYSTEM_BUS_ADDRESS)
 *
 * It runs until it is killed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench-util.h"

#define FLOOR_BUS_NAME "org.gmemd.BenchFloor"
#define FLOOR_PATH "/org/gmemd/BenchFloor"
#define FLOOR_IFACE "org.gmemd.BenchFloor"

static int memfd = -EBADF;
static bool with_signals = false;

/* What gmemd sends on a view change: PropertiesChanged of Vm.Views and of Region.Views. */
static void emit_views_changed(sd_bus *bus, const char *vm, const char *region, bool attached) {
        if (attached) {
                (void) sd_bus_emit_signal(bus, FLOOR_PATH "/vm/x", "org.freedesktop.DBus.Properties",
                                          "PropertiesChanged", "sa{sv}as", "org.gmemd.Broker1.Vm", 1, "Views",
                                          "a(sss)", 1, region, "rw", "active", 0);
                (void) sd_bus_emit_signal(bus, FLOOR_PATH "/region/x", "org.freedesktop.DBus.Properties",
                                          "PropertiesChanged", "sa{sv}as", "org.gmemd.Broker1.Region", 1, "Views",
                                          "a(sss)", 1, vm, "rw", "active", 0);
        } else {
                (void) sd_bus_emit_signal(bus, FLOOR_PATH "/vm/x", "org.freedesktop.DBus.Properties",
                                          "PropertiesChanged", "sa{sv}as", "org.gmemd.Broker1.Vm", 1, "Views",
                                          "a(sss)", 0, 0);
                (void) sd_bus_emit_signal(bus, FLOOR_PATH "/region/x", "org.freedesktop.DBus.Properties",
                                          "PropertiesChanged", "sa{sv}as", "org.gmemd.Broker1.Region", 1, "Views",
                                          "a(sss)", 0, 0);
        }
}

static int method_attach(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *vm, *region, *access;
        int r;

        r = sd_bus_message_read(m, "sss", &vm, &region, &access);
        if (r < 0)
                return r;
        r = sd_bus_message_skip(m, "a{sv}");
        if (r < 0)
                return r;
        r = sd_bus_reply_method_return(m, "h", memfd);
        if (r >= 0 && with_signals)
                emit_views_changed(sd_bus_message_get_bus(m), vm, region, true);
        return r;
}

static int method_detach(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *vm, *region;
        int r;

        r = sd_bus_message_read(m, "ss", &vm, &region);
        if (r < 0)
                return r;
        r = sd_bus_reply_method_return(m, NULL);
        if (r >= 0 && with_signals)
                emit_views_changed(sd_bus_message_get_bus(m), vm, region, false);
        return r;
}

static int method_get_fd(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *vm, *region;
        int r;

        r = sd_bus_message_read(m, "ss", &vm, &region);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(m, "h", memfd);
}

static const sd_bus_vtable floor_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("Attach", "sssa{sv}", "h", method_attach, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Detach", "ss", NULL, method_detach, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("GetFd", "ss", "h", method_get_fd, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int main(int argc, char **argv) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const char *name = argc > 1 ? argv[1] : FLOOR_BUS_NAME;
        int r;

        with_signals = argc > 2 && streq(argv[2], "signals");
        memfd = memfd_create("bench-floor", MFD_CLOEXEC);
        if (memfd < 0 || ftruncate(memfd, 1 << 20) < 0) {
                perror("bench-fd-server: memfd");
                return EXIT_FAILURE;
        }

        r = bench_bus_open(&bus);
        if (r >= 0)
                r = sd_bus_add_object_vtable(bus, NULL, FLOOR_PATH, FLOOR_IFACE, floor_vtable, NULL);
        if (r >= 0)
                r = sd_bus_request_name(bus, name, 0);
        if (r < 0) {
                fprintf(stderr, "bench-fd-server: cannot serve %s on the bus: %s\n", name, strerror(-r));
                return EXIT_FAILURE;
        }

        for (;;) {
                r = sd_bus_process(bus, NULL);
                if (r < 0) {
                        fprintf(stderr, "bench-fd-server: %s\n", strerror(-r));
                        return EXIT_FAILURE;
                }
                if (r > 0)
                        continue;
                r = sd_bus_wait(bus, UINT64_MAX);
                if (r < 0 && r != -EINTR) {
                        fprintf(stderr, "bench-fd-server: %s\n", strerror(-r));
                        return EXIT_FAILURE;
                }
        }
}
