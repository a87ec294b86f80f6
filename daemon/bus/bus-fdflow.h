/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bus-fdflow.h — flow control for replies that carry fds. dbus-daemon
 * charges every fd gmemd sends to gmemd until its recipient has read it,
 * and stops reading gmemd's connection once max_incoming_unix_fds (64 by
 * default) are outstanding: one client that asks for fds and never reads
 * its replies would stall gmemd for everyone. dbus-broker charges them to
 * the recipient's uid instead, and disconnects a recipient whose uid has
 * no quota left for a reply it asked for: there one client that never
 * reads can use up what every connection of its uid may hold.
 *
 * gmemd counts the fds it has sent to each client. When a client would
 * pass FDFLOW_CLIENT_MAX, or all clients together FDFLOW_TOTAL_MAX, it asks
 * the bus how many are still unread, and refuses (the caller answers
 * LimitsExceeded) while a client has too many unread; a refusal the bus
 * confirmed stands for FDFLOW_REFUSAL_USEC without asking again. dbus-daemon answers
 * org.freedesktop.DBus.Debug.Stats GetConnectionStats (OutgoingFDs) for one
 * client; dbus-broker has no GetConnectionStats but lists every peer's
 * OutgoingFds in GetStats (org.bus1.DBus.Debug.Stats.PeerAccounting), so
 * once GetConnectionStats fails and GetStats has that list, every count is
 * refreshed from GetStats with one call. A bus that answers neither (built
 * without stats, or a policy that forbids it) leaves the counts
 * unverifiable: gmemd says so once and lets replies through.
 */
#pragma once

#include <stdbool.h>
#include <systemd/sd-bus.h>

#define FDFLOW_CLIENT_MAX 16U
#define FDFLOW_TOTAL_MAX 48U

typedef struct FdFlow FdFlow;

int fdflow_new(sd_bus *bus, FdFlow **ret);
FdFlow *fdflow_free(FdFlow *f);

/* Why a reply was refused: whose fds are unread, and the most that may be. */
typedef struct FdFlowRefusal {
        bool whole_bus;             /* all clients together, not this one */
        unsigned unread;
        unsigned max;
} FdFlowRefusal;

/*
 * Before replying to msg with n fds: 0 if the reply may go (and counts
 * them), -EBUSY with *ret_refusal filled in if the caller (or all callers)
 * has too many unread, -ENOMEM. Direct connections (no bus in between)
 * always pass.
 */
int fdflow_admit(FdFlow *f, sd_bus_message *msg, unsigned n, FdFlowRefusal *ret_refusal);
