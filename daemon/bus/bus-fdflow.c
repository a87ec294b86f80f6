/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bus-fdflow.c — see bus-fdflow.h.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus-fdflow.h"
#include "hashmap.h"
#include "log.h"
#include "macro.h"

/* How long gmemd waits for the bus to say how many fds a client has not read. */
#define FDFLOW_STATS_TIMEOUT_USEC (2 * 1000 * 1000ULL)

/*
 * How long a refusal the bus confirmed stands without asking again. A
 * client that keeps calling without reading would otherwise cost gmemd one
 * question to the bus per call, and every other client waits behind them
 * (on dbus-broker, whose GetStats lists every peer, the slowest call of
 * another client went from under 0.1 s to 2.4 s in load-broker-hostile).
 */
#define FDFLOW_REFUSAL_USEC (100 * 1000ULL)

/* dbus-broker's GetStats entry with one row per peer. */
#define PEER_ACCOUNTING_KEY "org.bus1.DBus.Debug.Stats.PeerAccounting"

typedef struct FdFlowClient {
        char *sender;
        unsigned fds;               /* sent and possibly unread */
        unsigned asked;             /* of those, sent before the question in flight (FdFlow.asking) */
        uint64_t refused_usec;      /* CLOCK_MONOTONIC of the last confirmed refusal, or 0 */
        bool listed;                /* in the last peer accounting */
} FdFlowClient;

struct FdFlow {
        sd_bus *bus;
        Hashmap *clients;           /* unique name -> FdFlowClient */
        unsigned total;             /* sum of every client's fds */
        sd_bus_slot *match;
        bool peer_accounting;       /* the bus answers GetStats, not GetConnectionStats */
        bool no_own_count;          /* the bus would not say how many of gmemd's fds it holds */
        sd_bus_slot *asking;        /* that question, asked without waiting, in flight */
        bool own_count_tried;       /* asked once, waiting: whether the bus answers it at all */
        bool suspect;               /* its last answer: the bus holds some of gmemd's fds */
        bool unverifiable;          /* the bus would not say; said so once */
};

static void client_free(FdFlow *f, FdFlowClient *c) {
        if (!c)
                return;
        (void) hashmap_remove_value(f->clients, c->sender, c);
        f->total -= c->fds;
        free(c->sender);
        free(c);
}

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        FdFlow *f = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        if (name[0] == ':' && isempty(new_owner))
                client_free(f, hashmap_get(f->clients, name));
        return 0;
}

int fdflow_new(sd_bus *bus, FdFlow **ret) {
        FdFlow *f;
        int r;

        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        f->bus = bus;
        f->clients = hashmap_new();
        if (!f->clients) {
                fdflow_free(f);
                return -ENOMEM;
        }
        if (sd_bus_is_bus_client(bus)) {
                r = sd_bus_match_signal_async(bus, &f->match, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                              "org.freedesktop.DBus", "NameOwnerChanged", on_name_owner_changed,
                                              NULL, f);
                if (r < 0) {
                        fdflow_free(f);
                        return r;
                }
        }
        *ret = f;
        return 0;
}

FdFlow *fdflow_free(FdFlow *f) {
        FdFlowClient *c;

        if (!f)
                return NULL;
        while ((c = hashmap_first(f->clients)))
                client_free(f, c);
        hashmap_free(f->clients);
        sd_bus_slot_unref(f->asking);
        sd_bus_slot_unref(f->match);
        free(f);
        return NULL;
}

/*
 * Marks the counts as unverifiable: the bus will not say how many fds are
 * unread, so replies are let through from now on. True only the first time,
 * so that the caller says why once and not on every reply.
 */
static bool mark_unverifiable(FdFlow *f) {
        bool first = !f->unverifiable;

        f->unverifiable = true;
        return first;
}

/*
 * Asks the bus for its statistics (member of org.freedesktop.DBus.Debug.Stats:
 * GetConnectionStats of sender, or GetStats with sender NULL), waiting at
 * most FDFLOW_STATS_TIMEOUT_USEC. The bus's error, if it answers with one,
 * is left in error.
 */
static int stats_call(sd_bus *bus, const char *member, const char *sender, sd_bus_error *error,
                      sd_bus_message **ret_reply) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &call, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                           "org.freedesktop.DBus.Debug.Stats", member);
        if (r < 0)
                return r;
        if (sender) {
                r = sd_bus_message_append(call, "s", sender);
                if (r < 0)
                        return r;
        }
        return sd_bus_call(bus, call, FDFLOW_STATS_TIMEOUT_USEC, error, ret_reply);
}

/*
 * Finds key in the a{sv} of a GetConnectionStats reply and skips every
 * other entry: OutgoingFDs, the fds the bus holds for the connection, or
 * IncomingFDs, those it holds that the connection sent. -EBADMSG if the
 * dictionary has no such entry, it is not a 'u', or the reply is malformed.
 */
static int stats_fds(sd_bus_message *reply, const char *key_wanted, unsigned *ret_fds) {
        const char *key;
        uint32_t v;
        int r;

        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        if (r < 0)
                return -EBADMSG;
        for (;;) {
                r = sd_bus_message_enter_container(reply, 'e', "sv");
                if (r <= 0)
                        return -EBADMSG;
                /* read_basic and skipping a 'u' directly: the generic forms cost twice as much, per check. */
                r = sd_bus_message_read_basic(reply, 's', &key);
                if (r <= 0)
                        return -EBADMSG;
                if (streq(key, key_wanted))
                        break;
                r = sd_bus_message_enter_container(reply, 'v', NULL);
                if (r > 0) {
                        char type;
                        const char *contents;

                        r = sd_bus_message_peek_type(reply, &type, &contents);
                        if (r > 0)
                                r = type == 'u' ? sd_bus_message_read_basic(reply, 'u', &v) :
                                                  sd_bus_message_skip(reply, NULL);
                        if (r > 0)
                                r = sd_bus_message_exit_container(reply);
                }
                if (r <= 0)
                        return -EBADMSG;
                r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        return -EBADMSG;
        }

        r = sd_bus_message_enter_container(reply, 'v', "u");
        if (r > 0)
                r = sd_bus_message_read_basic(reply, 'u', &v);
        if (r <= 0)
                return -EBADMSG;
        *ret_fds = v;
        return 0;
}

/* Sets c's count to unread, keeping the total in step. */
static void client_set(FdFlow *f, FdFlowClient *c, unsigned unread) {
        f->total = f->total - c->fds + unread;
        c->fds = unread;
}

/*
 * Reads one row of dbus-broker's peer accounting, (sa{sv}a{su}): the
 * peer's unique name, its credentials (skipped) and its counters, of which
 * OutgoingFds is what the broker holds for the peer and the peer has not
 * read. 0 at the end of the array, 1 with a row read, -EBADMSG if it is
 * malformed or has no OutgoingFds.
 */
static int accounting_row(sd_bus_message *reply, const char **ret_name, unsigned *ret_fds) {
        const char *name, *key;
        bool found = false;
        uint32_t v, fds = 0;
        int r;

        r = sd_bus_message_enter_container(reply, 'r', "sa{sv}a{su}");
        if (r == 0)
                return 0;
        if (r < 0)
                return -EBADMSG;
        if (sd_bus_message_read(reply, "s", &name) < 0 ||
            sd_bus_message_skip(reply, "a{sv}") < 0 ||
            sd_bus_message_enter_container(reply, 'a', "{su}") < 0)
                return -EBADMSG;
        while ((r = sd_bus_message_read(reply, "{su}", &key, &v)) > 0)
                if (streq(key, "OutgoingFds")) {
                        fds = v;
                        found = true;
                }
        if (r < 0 || !found)
                return -EBADMSG;
        if (sd_bus_message_exit_container(reply) < 0 || sd_bus_message_exit_container(reply) < 0)
                return -EBADMSG;
        *ret_name = name;
        *ret_fds = fds;
        return 1;
}

/*
 * Moves reply, a GetStats a{sv}, to the a(sa{sv}a{su}) of its peer
 * accounting entry. -EBADMSG if there is none (dbus-daemon's GetStats has
 * only totals) or the reply is malformed.
 */
static int accounting_enter(sd_bus_message *reply) {
        const char *key;
        int r;

        if (sd_bus_message_enter_container(reply, 'a', "{sv}") < 0)
                return -EBADMSG;
        for (;;) {
                r = sd_bus_message_enter_container(reply, 'e', "sv");
                if (r <= 0)
                        return -EBADMSG;
                if (sd_bus_message_read(reply, "s", &key) < 0)
                        return -EBADMSG;
                if (streq(key, PEER_ACCOUNTING_KEY))
                        break;
                if (sd_bus_message_skip(reply, "v") < 0 || sd_bus_message_exit_container(reply) < 0)
                        return -EBADMSG;
        }
        if (sd_bus_message_enter_container(reply, 'v', "a(sa{sv}a{su})") < 0 ||
            sd_bus_message_enter_container(reply, 'a', "(sa{sv}a{su})") < 0)
                return -EBADMSG;
        return 0;
}

/*
 * Replaces every client's count with what dbus-broker's peer accounting
 * (GetStats of org.freedesktop.DBus.Debug.Stats) says: one question for
 * all clients. A client it does not list is gone and has nothing unread.
 * The bus's error, if it answers with one, is left in error; -EBADMSG if
 * the reply has no peer accounting.
 */
static int accounting_refresh(FdFlow *f, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        FdFlowClient *c;
        const char *name;
        unsigned fds;
        int r;

        r = stats_call(f->bus, "GetStats", NULL, error, &reply);
        if (r < 0)
                return r;
        r = accounting_enter(reply);
        if (r < 0)
                return r;
        HASHMAP_FOREACH(c, f->clients, i)
                c->listed = false;
        while ((r = accounting_row(reply, &name, &fds)) > 0) {
                c = hashmap_get(f->clients, name);
                if (!c)
                        continue;
                client_set(f, c, fds);
                c->listed = true;
        }
        if (r < 0)
                return r;
        HASHMAP_FOREACH(c, f->clients, i)
                if (!c->listed)
                        client_set(f, c, 0);
        return 0;
}

/*
 * How many fds the bus still holds for sender: 0 if sender is gone, as
 * nothing of ours waits for it then. Negative if the bus will not say, and
 * then the counts are unverifiable from now on (said once in the log).
 */
static int bus_unread_fds(FdFlow *f, const char *sender, unsigned *ret_unread) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = stats_call(f->bus, "GetConnectionStats", sender, &error, &reply);
        if (r < 0 && sd_bus_error_has_name(&error, SD_BUS_ERROR_NAME_HAS_NO_OWNER)) {
                *ret_unread = 0;
                return 0;
        }
        if (r < 0) {
                _cleanup_(sd_bus_error_free) sd_bus_error accounting_error = SD_BUS_ERROR_NULL;

                /* dbus-broker answers Failed ("Unimplemented functionality")
                 * and has per-peer counters in GetStats instead. */
                if (accounting_refresh(f, &accounting_error) >= 0) {
                        FdFlowClient *c = hashmap_get(f->clients, sender);

                        f->peer_accounting = true;
                        log_debug("The bus has no GetConnectionStats (%s); counting unread file descriptors "
                                  "from its peer accounting (GetStats)", error.message ?: strerror(-r));
                        *ret_unread = c ? c->fds : 0;
                        return 0;
                }
                if (mark_unverifiable(f))
                        log_warning("Cannot ask the bus how many file descriptors clients have not read (%s); a "
                                    "client that never reads its replies can stall gmemd's bus connection",
                                    error.message ?: strerror(-r));
                return r;
        }

        r = stats_fds(reply, "OutgoingFDs", ret_unread);
        if (r < 0) {
                if (mark_unverifiable(f))
                        log_warning("The bus's connection statistics give no OutgoingFDs; a client that never reads "
                                    "its replies can stall gmemd's bus connection");
                return r;
        }
        return 0;
}

/*
 * Whether the bus holds none of the fds gmemd sent (dbus-daemon's
 * IncomingFDs of gmemd's own connection: those of its replies still queued
 * for any client). Then no client has any unread, and one question settles
 * every count: with many clients that is one call where asking for each
 * would be one per client, and each costs gmemd about what an Attach does.
 */
static bool bus_holds_none(FdFlow *f) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *self = NULL;
        unsigned held;

        if (f->no_own_count)
                return false;
        if (sd_bus_get_unique_name(f->bus, &self) < 0 ||
            stats_call(f->bus, "GetConnectionStats", self, NULL, &reply) < 0 ||
            stats_fds(reply, "IncomingFDs", &held) < 0) {
                f->no_own_count = true;         /* then client by client, as before */
                return false;
        }
        return held == 0;
}

static void client_set(FdFlow *f, FdFlowClient *c, unsigned unread);

/* Every client has read everything: all counts start again from nothing. */
static void clients_reset(FdFlow *f) {
        FdFlowClient *o;

        HASHMAP_FOREACH(o, f->clients, i)
                client_set(f, o, 0);
}

/*
 * Replaces the count of c with what the bus says (and, on dbus-broker,
 * every other client's too; on dbus-daemon, when it holds none of gmemd's
 * fds, every client's); false if it would not say.
 */
static bool refresh(FdFlow *f, FdFlowClient *c) {
        unsigned unread;

        if (f->peer_accounting) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                int r;

                r = accounting_refresh(f, &error);
                if (r < 0 && mark_unverifiable(f))
                        log_warning("Cannot ask the bus how many file descriptors clients have not read (%s); "
                                    "a client that never reads its replies is left to the bus's own limits",
                                    error.message ?: strerror(-r));
                return r >= 0;
        }
        if (bus_holds_none(f)) {
                clients_reset(f);
                f->suspect = false;
                return true;
        }
        if (bus_unread_fds(f, c->sender, &unread) < 0)
                return false;
        client_set(f, c, unread);
        return true;
}

/*
 * Refreshes the count of every client but c that has fds counted, so that
 * what the others have read by now frees room under FDFLOW_TOTAL_MAX. Stops
 * at the first the bus will not say anything about.
 */
static void refresh_others(FdFlow *f, FdFlowClient *c) {
        FdFlowClient *o;

        HASHMAP_FOREACH(o, f->clients, i) {
                if (o == c || o->fds == 0)
                        continue;
                if (!refresh(f, o))
                        return;
        }
}

/*
 * A new entry for sender with no fds counted, not yet in any table. Freed
 * with client_free() if it is never added.
 */
static int client_new(const char *sender, FdFlowClient **ret_client) {
        _cleanup_free_ FdFlowClient *c = NULL;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->sender = strdup(sender);
        if (!c->sender)
                return -ENOMEM;
        *ret_client = TAKE_PTR(c);
        return 0;
}

/* The entry of sender in f->clients, added with no fds counted if it has none yet. */
static int client_get(FdFlow *f, const char *sender, FdFlowClient **ret_client) {
        FdFlowClient *c;
        int r;

        c = hashmap_get(f->clients, sender);
        if (c) {
                *ret_client = c;
                return 0;
        }
        r = client_new(sender, &c);
        if (r < 0)
                return r;
        r = hashmap_put(f->clients, c->sender, c);
        if (r < 0) {
                client_free(f, c);
                return r;
        }
        *ret_client = c;
        return 0;
}

/*
 * Whether n more fds for c stay within both limits as far as gmemd counts:
 * FDFLOW_CLIENT_MAX for c, FDFLOW_TOTAL_MAX for all clients together. Over
 * either, the bus is asked what is really unread.
 */
static bool within_limits(const FdFlow *f, const FdFlowClient *c, unsigned n) {
        return c->fds + n <= FDFLOW_CLIENT_MAX && f->total + n <= FDFLOW_TOTAL_MAX;
}

/*
 * Decides whether n more fds may go to c: 0 if they may, -EBUSY with
 * *ret_refusal filled in if c (or all clients together) has too many
 * unread by the bus's own count. Counts the bus will not confirm let the
 * reply through.
 */
static uint64_t now_usec(void) {
        struct timespec ts;

        if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
                return 0;
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

/*
 * On dbus-daemon, while the bus last said it held none of gmemd's fds:
 * after FDFLOW_ASK_TOTAL fds to all clients together, gmemd asks again
 * without waiting, and lets replies go until FDFLOW_TOTAL_MAX +
 * FDFLOW_GRACE_TOTAL are unconfirmed (56, below dbus-daemon's
 * max_incoming_unix_fds of 64). Then, or once the bus says it holds some,
 * each client's count is checked against FDFLOW_CLIENT_MAX, waiting for
 * the bus, as before. dbus-daemon holds a client's fds only once that
 * client's socket is full, so asking per client every FDFLOW_CLIENT_MAX
 * fds (one question per 16 replies, each costing gmemd what an Attach
 * does, and every caller waiting behind it) notices a client that does
 * not read no sooner than this does.
 */
#define FDFLOW_ASK_TOTAL 32U
#define FDFLOW_GRACE_TOTAL 8U

static int on_own_count(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        FdFlow *f = userdata;
        FdFlowClient *c;
        unsigned held = 1;

        f->asking = sd_bus_slot_unref(f->asking);
        if (sd_bus_message_is_method_error(reply, NULL) || stats_fds(reply, "IncomingFDs", &held) < 0)
                f->no_own_count = true;         /* then client by client, waiting for the bus */
        f->suspect = held > 0;
        HASHMAP_FOREACH(c, f->clients, i) {
                /* The bus had every fd sent before the question when it answered: those are read. */
                if (held == 0)
                        client_set(f, c, c->fds > c->asked ? c->fds - c->asked : 0);
                c->asked = 0;
        }
        return 0;
}

/*
 * Asks dbus-daemon how many of gmemd's fds it holds, without waiting for
 * the answer (on_own_count() settles the counts). True while that question
 * is in flight.
 */
static bool ask_own_count(FdFlow *f) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        const char *self = NULL;
        FdFlowClient *o;

        if (f->asking)
                return true;
        if (f->no_own_count || f->peer_accounting)
                return false;
        if (sd_bus_get_unique_name(f->bus, &self) < 0 ||
            sd_bus_message_new_method_call(f->bus, &call, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                           "org.freedesktop.DBus.Debug.Stats", "GetConnectionStats") < 0 ||
            sd_bus_message_append(call, "s", self) < 0 ||
            sd_bus_call_async(f->bus, &f->asking, call, on_own_count, f, FDFLOW_STATS_TIMEOUT_USEC) < 0)
                return false;
        HASHMAP_FOREACH(o, f->clients, i)
                o->asked = o->fds;
        return true;
}

static int check_unread(FdFlow *f, FdFlowClient *c, unsigned n, FdFlowRefusal *ret_refusal) {
        uint64_t now;

        if (f->unverifiable)
                return 0;
        if (!f->own_count_tried && (f->total + n >= FDFLOW_ASK_TOTAL || !within_limits(f, c, n))) {
                /* Once, waiting: a bus that cannot say (dbus-broker) is asked client by client from the start. */
                f->own_count_tried = true;
                if (bus_holds_none(f))
                        clients_reset(f);
                else
                        f->suspect = true;
        }
        if (f->own_count_tried && !f->no_own_count && !f->peer_accounting && !f->suspect) {
                if (f->total + n >= FDFLOW_ASK_TOTAL)
                        (void) ask_own_count(f);
                if (f->total + n <= FDFLOW_TOTAL_MAX + FDFLOW_GRACE_TOTAL)
                        return 0;
        }
        if (within_limits(f, c, n))
                return 0;
        now = now_usec();
        if (c->refused_usec != 0 && now - c->refused_usec < FDFLOW_REFUSAL_USEC) {
                *ret_refusal = (FdFlowRefusal) { .unread = c->fds, .max = FDFLOW_CLIENT_MAX };
                return -EBUSY;
        }
        c->refused_usec = 0;
        if (!refresh(f, c))
                return 0;

        if (f->total + n > FDFLOW_TOTAL_MAX && !f->peer_accounting)
                refresh_others(f, c);
        if (c->fds + n > FDFLOW_CLIENT_MAX) {
                c->refused_usec = now;
                *ret_refusal = (FdFlowRefusal) { .unread = c->fds, .max = FDFLOW_CLIENT_MAX };
                return -EBUSY;
        }
        if (!f->unverifiable && f->total + n > FDFLOW_TOTAL_MAX) {
                *ret_refusal = (FdFlowRefusal) { .whole_bus = true, .unread = f->total, .max = FDFLOW_TOTAL_MAX };
                return -EBUSY;
        }
        return 0;
}

int fdflow_admit(FdFlow *f, sd_bus_message *msg, unsigned n, FdFlowRefusal *ret_refusal) {
        const char *sender = sd_bus_message_get_sender(msg);
        FdFlowClient *c;
        int r;

        if (!f || !sender || n == 0)
                return 0;
        r = client_get(f, sender, &c);
        if (r < 0)
                return r;
        r = check_unread(f, c, n, ret_refusal);
        if (r < 0)
                return r;
        c->fds += n;
        f->total += n;
        return 0;
}
