/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bus-fdflow.c — see bus-fdflow.h.
 */
#include <stdlib.h>
#include <string.h>

#include "bus-fdflow.h"
#include "hashmap.h"
#include "log.h"
#include "macro.h"

/* How long gmemd waits for the bus to say how many fds a client has not read. */
#define FDFLOW_STATS_TIMEOUT_USEC (2 * 1000 * 1000ULL)

typedef struct FdFlowClient {
        char *sender;
        unsigned fds;               /* sent and possibly unread */
} FdFlowClient;

struct FdFlow {
        sd_bus *bus;
        Hashmap *clients;           /* unique name -> FdFlowClient */
        unsigned total;             /* sum of every client's fds */
        sd_bus_slot *match;
        bool unverifiable;          /* the bus would not say; said so once */
};

static void client_free(FdFlow *f, FdFlowClient *c) {
        if (!c)
                return;
        if (hashmap_get(f->clients, c->sender) == c)
                hashmap_remove(f->clients, c->sender);
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
        sd_bus_slot_unref(f->match);
        free(f);
        return NULL;
}

/* How many fds the bus still holds for sender, or negative if it will not say. */
static int bus_unread_fds(FdFlow *f, const char *sender, unsigned *ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_message_new_method_call(f->bus, &call, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                           "org.freedesktop.DBus.Debug.Stats", "GetConnectionStats");
        if (r >= 0)
                r = sd_bus_message_append(call, "s", sender);
        if (r >= 0)
                r = sd_bus_call(f->bus, call, FDFLOW_STATS_TIMEOUT_USEC, &error, &reply);
        if (r < 0) {
                if (sd_bus_error_has_name(&error, SD_BUS_ERROR_NAME_HAS_NO_OWNER)) {
                        *ret = 0;       /* gone: nothing of ours waits for it */
                        sd_bus_error_free(&error);
                        return 0;
                }
                if (!f->unverifiable)
                        log_warning("Cannot ask the bus how many file descriptors clients have not read (%s); a "
                                    "client that never reads its replies can stall gmemd's bus connection",
                                    error.message ?: strerror(-r));
                f->unverifiable = true;
                sd_bus_error_free(&error);
                return r;
        }

        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r >= 0) {
                const char *key;
                uint32_t v;

                r = sd_bus_message_enter_container(reply, 'e', "sv");
                if (r <= 0)
                        break;
                r = sd_bus_message_read(reply, "s", &key);
                if (r < 0)
                        break;
                if (streq(key, "OutgoingFDs")) {
                        r = sd_bus_message_read(reply, "v", "u", &v);
                        if (r >= 0) {
                                *ret = v;
                                return 0;
                        }
                        break;
                }
                r = sd_bus_message_skip(reply, "v");
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        if (!f->unverifiable)
                log_warning("The bus's connection statistics give no OutgoingFDs; a client that never reads its "
                            "replies can stall gmemd's bus connection");
        f->unverifiable = true;
        return -EBADMSG;
}

/* Replaces the count of c with what the bus says; false if it would not say. */
static bool refresh(FdFlow *f, FdFlowClient *c) {
        unsigned unread;

        if (bus_unread_fds(f, c->sender, &unread) < 0)
                return false;
        f->total = f->total - c->fds + unread;
        c->fds = unread;
        return true;
}

int fdflow_admit(FdFlow *f, sd_bus_message *msg, unsigned n, FdFlowRefusal *ret_refusal) {
        const char *sender = sd_bus_message_get_sender(msg);
        FdFlowClient *c;
        int r;

        if (!f || !sender || n == 0)
                return 0;
        c = hashmap_get(f->clients, sender);
        if (!c) {
                c = calloc(1, sizeof(*c));
                if (!c)
                        return -ENOMEM;
                c->sender = strdup(sender);
                if (!c->sender) {
                        free(c);
                        return -ENOMEM;
                }
                r = hashmap_put(f->clients, c->sender, c);
                if (r < 0) {
                        free(c->sender);
                        free(c);
                        return r;
                }
        }

        if (!f->unverifiable && (c->fds + n > FDFLOW_CLIENT_MAX || f->total + n > FDFLOW_TOTAL_MAX)) {
                bool known = refresh(f, c);
                FdFlowClient *o;

                /* Over the total: what the others have read by now frees room too. */
                if (known && f->total + n > FDFLOW_TOTAL_MAX)
                        HASHMAP_FOREACH(o, f->clients, i)
                                if (o != c && o->fds > 0 && !refresh(f, o))
                                        break;
                if (known && c->fds + n > FDFLOW_CLIENT_MAX) {
                        *ret_refusal = (FdFlowRefusal) { .unread = c->fds, .max = FDFLOW_CLIENT_MAX };
                        return -EBUSY;
                }
                if (known && !f->unverifiable && f->total + n > FDFLOW_TOTAL_MAX) {
                        *ret_refusal = (FdFlowRefusal) { .whole_bus = true, .unread = f->total,
                                                         .max = FDFLOW_TOTAL_MAX };
                        return -EBUSY;
                }
        }
        c->fds += n;
        f->total += n;
        return 0;
}
