/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bus-direct.h — gmemd's own socket: the same objects and methods as on the
 * bus, spoken peer-to-peer with each client that connects (as systemctl
 * talks to PID 1 on /run/systemd/private), with no bus broker in between.
 *
 * A caller is who the socket says it is: the uid and groups the kernel
 * recorded when it connected (SO_PEERCRED, SO_PEERGROUPS), put through the
 * same policy as a bus caller's. There are no signals on a direct
 * connection, and no Subscribe: changes are announced on the bus only.
 *
 * What one client may hold is bounded: DIRECT_PER_UID_MAX connections per
 * uid and DIRECT_CONNECTIONS_MAX in all (a connection past them is closed
 * as soon as it is accepted), and DIRECT_UNREAD_FDS_MAX fds sent on one
 * connection while it does not read (a reply with more is refused with
 * LimitsExceeded), and DIRECT_QUEUED_MAX replies it has not read at all
 * (past them, gmemd closes the connection rather than queue more). A peer
 * that has not finished the authentication DIRECT_AUTH_TIMEOUT_USEC after
 * it connected is dropped; one that sends garbage is dropped at once. A
 * connection that goes away takes nothing of the model with it.
 */
#pragma once

#include <stdbool.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "bus-fdflow.h"
#include "macro.h"
#include "manager.h"

#define DIRECT_CONNECTIONS_MAX 1024U
#define DIRECT_PER_UID_MAX 64U
#define DIRECT_UNREAD_FDS_MAX FDFLOW_CLIENT_MAX
#define DIRECT_QUEUED_MAX 64U
#define DIRECT_AUTH_TIMEOUT_USEC (10 * 1000 * 1000ULL)

/* The name a service manager gives the socket (FileDescriptorName= of gmemd.socket). */
#define DIRECT_SOCKET_FDNAME "private"

typedef struct DirectServer DirectServer;

/* A server with no socket yet; it stays registered with m (manager->direct_userdata) until freed. */
int direct_server_new(Manager *m, sd_event *event, DirectServer **ret);

/* Starts accepting on listen_fd, a listening AF_UNIX stream socket, which the server takes over. */
int direct_server_listen(DirectServer *s, int listen_fd);

/* Serves fd, a connected socket (taken over, closed on failure), as a direct client. */
int direct_server_adopt(DirectServer *s, int fd);

/* How many direct connections are open. */
unsigned direct_server_connections(const DirectServer *s);

/*
 * Before replying to msg, a call on a direct connection, with n fds: 0 if the
 * reply may go (the fds are counted), -EBUSY with *ret_refusal filled in if
 * the client has not read DIRECT_UNREAD_FDS_MAX fds it was sent.
 */
int direct_server_admit_fds(DirectServer *s, sd_bus_message *msg, unsigned n, FdFlowRefusal *ret_refusal);

DirectServer *direct_server_free(DirectServer *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(DirectServer *, direct_server_free);
