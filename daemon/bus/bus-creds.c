/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bus-creds.c — asynchronous credential lookup and its cache. Unique names
 * are never reused on a bus, so a cached entry is right for as long as it
 * exists; entries go when NameOwnerChanged says the connection closed, and
 * the cache is bounded in size besides.
 */
#include <stdlib.h>
#include <string.h>

#include "bus-creds.h"
#include "hashmap.h"
#include "macro.h"

typedef struct Parked {
        char *sender;
        sd_bus_slot *slot;          /* the GetConnectionCredentials call */
        sd_bus_message **messages;  /* in the order they arrived */
        size_t n_messages;
        size_t next;                /* while releasing: the next one allowed through */
        bool releasing;             /* credentials known, messages queued again */
        BusCredsCache *cache;
} Parked;

struct BusCredsCache {
        sd_bus *bus;
        Hashmap *creds;             /* unique name -> BusCreds */
        Hashmap *parked;            /* unique name -> Parked */
        sd_bus_slot *match;
        sd_bus_slot *filter;
        BusCreds direct;            /* the peer of a direct connection */
        BusCreds *last;             /* the entry found last: calls come in runs from one sender */
};

static int on_message(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);

/* Frees a cache entry (its gids and sender too); accepts NULL. */
static void bus_creds_free(BusCreds *c) {
        if (!c)
                return;
        free(c->gids);
        free(c->sender);
        free(c);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(BusCreds *, bus_creds_free);

static void parked_free(Parked *p) {
        if (!p)
                return;
        if (p->cache)
                (void) hashmap_remove_value(p->cache->parked, p->sender, p);
        sd_bus_slot_unref(p->slot);
        for (size_t i = 0; i < p->n_messages; i++)
                sd_bus_message_unref(p->messages[i]);
        free(p->messages);
        free(p->sender);
        free(p);
}

static void cache_forget(BusCredsCache *c, const char *sender) {
        c->last = NULL;
        bus_creds_free(hashmap_remove(c->creds, sender));
}

/* The cached entry of sender, or NULL; the last one found is looked at first, without hashing. */
static BusCreds *cache_find(BusCredsCache *c, const char *sender) {
        BusCreds *bc;

        if (c->last && streq(c->last->sender, sender))
                return c->last;
        bc = hashmap_get(c->creds, sender);
        if (bc)
                c->last = bc;
        return bc;
}

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusCredsCache *c = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        if (name[0] == ':' && isempty(new_owner))
                cache_forget(c, name);
        return 0;
}

int bus_creds_cache_new(sd_bus *bus, BusCredsCache **ret) {
        BusCredsCache *c;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->bus = bus;
        c->creds = hashmap_new();
        c->parked = hashmap_new();
        if (!c->creds || !c->parked) {
                bus_creds_cache_free(c);
                return -ENOMEM;
        }
        if (!bus || sd_bus_is_bus_client(bus) <= 0) {
                *ret = c;
                return 0;       /* no bus daemon to ask or to watch */
        }
        r = sd_bus_add_filter(bus, &c->filter, on_message, c);
        if (r < 0) {
                bus_creds_cache_free(c);
                return r;
        }
        r = sd_bus_match_signal_async(bus, &c->match, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                      "org.freedesktop.DBus", "NameOwnerChanged", on_name_owner_changed, NULL, c);
        if (r < 0) {
                bus_creds_cache_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

BusCredsCache *bus_creds_cache_free(BusCredsCache *c) {
        BusCreds *bc;
        Parked *p;

        if (!c)
                return NULL;
        while ((p = hashmap_first(c->parked)))
                parked_free(p);
        c->last = NULL;
        while ((bc = hashmap_first(c->creds))) {
                hashmap_remove(c->creds, bc->sender);
                bus_creds_free(bc);
        }
        hashmap_free(c->parked);
        hashmap_free(c->creds);
        free(c->direct.gids);
        sd_bus_slot_unref(c->filter);
        sd_bus_slot_unref(c->match);
        free(c);
        return NULL;
}

/* Reads the value of a UnixUserID entry, a 'u', into *ret_uid. */
static int read_uid(sd_bus_message *reply, uid_t *ret_uid) {
        uint32_t uid;
        int r;

        r = sd_bus_message_read(reply, "v", "u", &uid);
        if (r < 0)
                return r;
        *ret_uid = (uid_t) uid;
        return 0;
}

/*
 * Reads the value of a UnixGroupIDs entry, an 'au', into bc's gids: at most
 * BUS_CREDS_GIDS_MAX of them, -E2BIG if there are more. An empty list leaves
 * bc's gids as they are.
 */
static int read_gids(sd_bus_message *reply, BusCreds *bc) {
        _cleanup_free_ gid_t *copy = NULL;
        const void *gids;
        size_t size;
        int r;

        r = sd_bus_message_enter_container(reply, 'v', "au");
        if (r < 0)
                return r;
        r = sd_bus_message_read_array(reply, 'u', &gids, &size);
        if (r < 0)
                return r;
        if (size / sizeof(uint32_t) > BUS_CREDS_GIDS_MAX)
                return -E2BIG;
        if (size > 0) {
                copy = malloc(size);
                if (!copy)
                        return -ENOMEM;
                memcpy(copy, gids, size);
        }
        r = sd_bus_message_exit_container(reply);
        if (r < 0)
                return r;

        if (!copy)
                return 0;
        free(bc->gids);
        bc->gids = TAKE_PTR(copy);
        bc->n_gids = size / sizeof(uint32_t);
        return 0;
}

/*
 * Reads the value of the credentials entry named key into bc, setting
 * *have_uid once a uid was read; the values of keys gmemd has no use for
 * (ProcessID, LinuxSecurityLabel, ...) are skipped.
 */
static int read_credential_value(sd_bus_message *reply, const char *key, BusCreds *bc, bool *have_uid) {
        int r;

        if (streq(key, "UnixGroupIDs"))
                return read_gids(reply, bc);
        if (!streq(key, "UnixUserID"))
                return sd_bus_message_skip(reply, "v");

        r = read_uid(reply, &bc->uid);
        if (r < 0)
                return r;
        *have_uid = true;
        return 0;
}

/*
 * Reads the next {sv} entry of a GetConnectionCredentials reply into bc.
 * Returns 1 if an entry was read, 0 at the end of the dictionary, negative
 * on the first thing that cannot be read or is over a limit.
 */
static int read_credential(sd_bus_message *reply, BusCreds *bc, bool *have_uid) {
        const char *key;
        int r;

        r = sd_bus_message_enter_container(reply, 'e', "sv");
        if (r <= 0)
                return r;
        r = sd_bus_message_read(reply, "s", &key);
        if (r < 0)
                return r;
        r = read_credential_value(reply, key, bc, have_uid);
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(reply);
        if (r < 0)
                return r;
        return 1;
}

/*
 * Builds sender's BusCreds from the a{sv} of a GetConnectionCredentials
 * reply. Fails on the first entry that cannot be read, with -E2BIG if it has
 * more than BUS_CREDS_GIDS_MAX gids, and with -ENODATA if the reply has no
 * uid at all; nothing is left allocated then.
 */
static int parse_credentials(sd_bus_message *reply, const char *sender, BusCreds **ret_creds) {
        _cleanup_(bus_creds_freep) BusCreds *bc = NULL;
        bool have_uid = false;
        int r;

        bc = calloc(1, sizeof(*bc));
        if (!bc)
                return -ENOMEM;
        bc->sender = strdup(sender);
        if (!bc->sender)
                return -ENOMEM;

        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        do {
                r = read_credential(reply, bc, &have_uid);
                if (r < 0)
                        return r;
        } while (r > 0);

        if (!have_uid)
                return -ENODATA;
        *ret_creds = TAKE_PTR(bc);
        return 0;
}

static int on_credentials(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Parked *p = userdata;
        BusCredsCache *c = p->cache;
        BusCreds *bc = NULL;
        int r;

        /* The sender is gone (or the bus refused): its parked calls get nothing and do nothing. */
        if (sd_bus_message_is_method_error(reply, NULL) || parse_credentials(reply, p->sender, &bc) < 0) {
                parked_free(p);
                return 0;
        }

        if (hashmap_size(c->creds) >= BUS_CREDS_CACHE_MAX) {
                BusCreds *old = hashmap_first(c->creds);
                cache_forget(c, old->sender);
        }
        r = hashmap_put(c->creds, bc->sender, bc);
        if (r < 0)
                bus_creds_free(bc);

        /*
         * Dispatch the parked calls again, in the order they came. The filter lets
         * exactly the next one through and parks anything newer behind them, so
         * no later call of this sender overtakes an earlier one.
         */
        if (r < 0) {
                parked_free(p);
                return 0;
        }
        p->releasing = true;
        p->next = 0;
        p->slot = sd_bus_slot_unref(p->slot);
        for (size_t i = 0; i < p->n_messages; i++)
                (void) sd_bus_enqueue_for_read(c->bus, p->messages[i]);
        if (p->n_messages == 0)
                parked_free(p);
        return 0;
}

static int park(BusCredsCache *c, sd_bus_message *m, const char *sender) {
        Parked *p = hashmap_get(c->parked, sender);
        sd_bus_message **l;
        int r;

        if (!p) {
                p = calloc(1, sizeof(*p));
                if (!p)
                        return -ENOMEM;
                p->cache = c;
                p->sender = strdup(sender);
                if (!p->sender || hashmap_put(c->parked, p->sender, p) < 0) {
                        free(p->sender);
                        free(p);
                        return -ENOMEM;
                }
                r = sd_bus_call_method_async(c->bus, &p->slot, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                             "org.freedesktop.DBus", "GetConnectionCredentials", on_credentials, p,
                                             "s", sender);
                if (r < 0) {
                        parked_free(p);
                        return r;
                }
        }
        if (p->n_messages - p->next >= BUS_CREDS_PARKED_MAX)
                return -ENOBUFS;
        l = realloc(p->messages, (p->n_messages + 1) * sizeof(*l));
        if (!l)
                return -ENOMEM;
        p->messages = l;
        p->messages[p->n_messages++] = sd_bus_message_ref(m);
        if (p->releasing)
                (void) sd_bus_enqueue_for_read(c->bus, m);
        return 0;
}

/*
 * Runs before any method handler: a call from a sender whose credentials are
 * not known yet, or who has calls parked, is parked too, so that calls are
 * handled in the order each sender sent them.
 */
static int on_message(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        BusCredsCache *c = userdata;
        const char *sender;
        Parked *p;
        int r;

        if (!sd_bus_message_is_method_call(m, NULL, NULL))
                return 0;
        sender = sd_bus_message_get_sender(m);
        if (!sender)
                return 0;
        p = hashmap_size(c->parked) > 0 ? hashmap_get(c->parked, sender) : NULL;
        if (p && p->releasing && p->next < p->n_messages && p->messages[p->next] == m) {
                p->next++;
                if (p->next >= p->n_messages)
                        parked_free(p);
                return 0;               /* its turn: on to the handler */
        }
        if (!p && cache_find(c, sender))
                return 0;
        r = park(c, m, sender);
        if (r < 0)
                /* Out of room for this sender: refuse rather than reorder. */
                (void) sd_bus_reply_method_errorf(m, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                                  "Too many calls waiting for the caller's credentials");
        return 1;
}

/*
 * A direct (peer-to-peer) connection has no bus to ask: its credentials are
 * the ones the kernel captured on the socket at connect time (SO_PEERCRED,
 * SO_PEERGROUPS), which sd-bus reports unaugmented. Kept in c->direct.
 */
static int direct_creds(BusCredsCache *c, sd_bus_message *m, const BusCreds **ret) {
        sd_bus_creds *creds = NULL;
        const gid_t *gids = NULL;
        uint64_t augmented;
        uid_t uid;
        int r, n;

        r = sd_bus_get_owner_creds(sd_bus_message_get_bus(m), SD_BUS_CREDS_EUID | SD_BUS_CREDS_SUPPLEMENTARY_GIDS,
                                   &creds);
        if (r < 0)
                return r;
        augmented = sd_bus_creds_get_augmented_mask(creds);
        r = (augmented & SD_BUS_CREDS_EUID) ? -EPERM : sd_bus_creds_get_euid(creds, &uid);
        n = (augmented & SD_BUS_CREDS_SUPPLEMENTARY_GIDS) ? 0 : sd_bus_creds_get_supplementary_gids(creds, &gids);
        if (r >= 0 && n > BUS_CREDS_GIDS_MAX)
                r = -E2BIG;
        if (r >= 0) {
                free(c->direct.gids);
                c->direct = (BusCreds) { .uid = uid };
                if (n > 0) {
                        c->direct.gids = malloc(sizeof(gid_t) * (size_t) n);
                        if (!c->direct.gids)
                                r = -ENOMEM;
                        else {
                                memcpy(c->direct.gids, gids, sizeof(gid_t) * (size_t) n);
                                c->direct.n_gids = (size_t) n;
                        }
                }
        }
        sd_bus_creds_unref(creds);
        if (r < 0)
                return r;
        *ret = &c->direct;
        return 1;
}

int bus_creds_peek(BusCredsCache *c, sd_bus_message *m, const BusCreds **ret) {
        const char *sender = sd_bus_message_get_sender(m);
        BusCreds *bc;

        if (!sender && !sd_bus_is_bus_client(sd_bus_message_get_bus(m))) {
                int r = direct_creds(c, m, ret);
                return r < 0 ? 0 : 1;
        }
        if (!sender)
                return 0;
        bc = cache_find(c, sender);
        if (!bc)
                return 0;
        *ret = bc;
        return 1;
}

int bus_creds_get(BusCredsCache *c, sd_bus_message *m, const BusCreds **ret) {
        const char *sender = sd_bus_message_get_sender(m);
        BusCreds *bc;
        int r;

        if (!sender && !sd_bus_is_bus_client(sd_bus_message_get_bus(m)))
                return direct_creds(c, m, ret);
        if (!sender)
                return -ENXIO;
        bc = cache_find(c, sender);
        if (bc) {
                *ret = bc;
                return 1;
        }
        r = park(c, m, sender);
        return r < 0 ? r : 0;
}
