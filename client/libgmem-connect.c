/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libgmem-connect.c — the ways a client reaches the broker, and which one
 * gmem_connect() takes.
 *
 * There are three. The system bus (sd_bus_open_system(), which honours
 * $DBUS_SYSTEM_BUS_ADDRESS); a bus at an explicit D-Bus address; and the
 * broker's own direct socket ($GMEM_DIRECT_SOCKET, else /run/gmemd/private),
 * where the same API is spoken peer to peer with no bus in between, as
 * systemctl talks to PID 1 on /run/systemd/private: no Hello, no unique
 * name, no sender. Messages still name org.gmemd.Broker1 as their
 * destination; a peer connection carries the field and nobody routes by it.
 *
 * gmem_connect() prefers the direct socket: it is used when a connection to
 * it completes the D-Bus authentication. Anything short of that — no socket
 * (ENOENT), nobody listening (ECONNREFUSED), a socket the caller may not
 * open (EACCES, EPERM), a broker that hangs up at once because the caller
 * is over its connection limits — means the system bus, silently. Only a
 * lack of memory is passed up. gmem_connect_address() is bus-only.
 *
 * The broker sends its signals on the bus only, so a direct client that
 * subscribes opens a second connection, to the system bus, for them
 * (gmem_client_open_events_bus(), called by gmem_subscribe()).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "libgmem-internal.h"

int gmem_client_new_from_bus(sd_bus *bus, GmemClient **ret) {
        GmemClient *c;

        if (!bus || !ret)
                return -EINVAL;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->n_ref = 1;
        c->bus = sd_bus_ref(bus);
        *ret = c;
        return 0;
}

static int connect_system_bus(GmemClient **ret) {
        _cleanup_(sd_bus_unrefp) sd_bus *bus = NULL;
        int r;

        /* sd_bus_open_system() follows $DBUS_SYSTEM_BUS_ADDRESS when it is set. */
        r = sd_bus_open_system(&bus);
        if (r < 0)
                return r;
        (void) sd_bus_set_description(bus, "libgmem");

        return gmem_client_new_from_bus(bus, ret);
}

/* A started connection to address with fds negotiated: to a bus (Hello) or to a peer. */
static int open_address(const char *address, bool bus_client, const char *description, sd_bus **ret) {
        _cleanup_(sd_bus_unrefp) sd_bus *bus = NULL;
        int r;

        r = sd_bus_new(&bus);
        if (r < 0)
                return r;
        (void) sd_bus_set_description(bus, description);
        r = sd_bus_set_address(bus, address);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, bus_client);
        if (r >= 0)
                r = sd_bus_negotiate_fds(bus, 1);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(bus);
        return 0;
}

int gmem_connect(GmemClient **ret) {
        int r;

        if (!ret)
                return -EINVAL;

        r = gmem_connect_direct(NULL, ret);
        if (r >= 0 || r == -ENOMEM)
                return r;

        /* No direct socket, or none that let us in: the bus. */
        return connect_system_bus(ret);
}

int gmem_connect_address(const char *address, GmemClient **ret) {
        _cleanup_(sd_bus_unrefp) sd_bus *bus = NULL;
        int r;

        if (isempty(address) || !ret)
                return -EINVAL;

        r = open_address(address, true, "libgmem", &bus);
        if (r < 0)
                return r;

        return gmem_client_new_from_bus(bus, ret);
}

const char *gmem_direct_socket_path(void) {
        /* secure_getenv: a setuid program linked with libgmem is not to be pointed at someone's socket. */
        const char *e = secure_getenv("GMEM_DIRECT_SOCKET");

        return isempty(e) ? GMEM_DIRECT_SOCKET_DEFAULT : e;
}

/*
 * "unix:path=" and path with every byte a D-Bus address value may not hold
 * as it is written %xx (the specification's optionally-escaped set is kept).
 */
static int direct_address(const char *path, char **ret) {
        static const char prefix[] = "unix:path=";
        size_t len = strlen(path);
        char *address, *p;

        if (len == 0)
                return -EINVAL;
        if (len >= sizeof(((struct sockaddr_un *) NULL)->sun_path))
                return -ENAMETOOLONG;

        address = malloc(sizeof(prefix) + 3 * len);
        if (!address)
                return -ENOMEM;
        p = stpcpy(address, prefix);
        for (const char *s = path; *s; s++) {
                unsigned char ch = (unsigned char) *s;

                if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                    strchr("-_/.\\*", ch))
                        *p++ = (char) ch;
                else
                        p += sprintf(p, "%%%02x", ch);
        }
        *p = 0;

        *ret = address;
        return 0;
}

/* Runs the connection until the AUTH exchange is done (or failed, or timed out by sd-bus). */
static int wait_until_running(sd_bus *bus) {
        int r;

        for (;;) {
                r = sd_bus_is_ready(bus);
                if (r != 0)
                        return r < 0 ? r : 0;

                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;

                /* sd-bus' own timeout covers the authentication. */
                r = sd_bus_wait(bus, UINT64_MAX);
                if (r < 0)
                        return r;
        }
}

int gmem_connect_direct(const char *path, GmemClient **ret) {
        _cleanup_(sd_bus_unrefp) sd_bus *bus = NULL;
        _cleanup_free_ char *address = NULL;
        GmemClient *c;
        int r;

        if (!ret)
                return -EINVAL;
        if (!path)
                path = gmem_direct_socket_path();

        r = direct_address(path, &address);
        if (r < 0)
                return r;

        /* A peer: no Hello, no unique name. */
        r = open_address(address, false, "libgmem-direct", &bus);
        if (r < 0)
                return r;
        r = wait_until_running(bus);
        if (r < 0)
                return r;

        r = gmem_client_new_from_bus(bus, &c);
        if (r < 0)
                return r;
        c->direct = true;
        *ret = c;
        return 0;
}

int gmem_client_is_direct(const GmemClient *c) {
        if (!c)
                return -EINVAL;
        return c->direct;
}

int gmem_client_open_events_bus(GmemClient *c, sd_bus **ret) {
        _cleanup_(sd_bus_unrefp) sd_bus *bus = NULL;
        int r;

        if (!c->direct) {
                *ret = c->bus;
                return 0;
        }

        if (!c->event_bus) {
                /* The bus gmem_connect() would have used. */
                r = sd_bus_open_system(&bus);
                if (r < 0)
                        return r;
                (void) sd_bus_set_description(bus, "libgmem-events");
                c->event_bus = TAKE_PTR(bus);
        }

        *ret = c->event_bus;
        return 0;
}
