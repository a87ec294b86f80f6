/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libgmem-events.c — the broker's signals, turned into GmemEvents.
 *
 * gmem_subscribe() installs one match for every signal whose sender is the
 * broker's bus name (the bus resolves the name to its owner), so the caller
 * sees the Manager's signals and every object's PropertiesChanged, then
 * calls Manager.Subscribe(), without which the broker keeps the signals
 * only subscribers get (the Views properties' PropertiesChanged). A broker
 * that does not know Subscribe sends everything anyway; one that is not on
 * the bus yet, or starts again, is asked again when its name gets an owner
 * (a subscription ends with the connection it came on, and with the
 * broker). Signals come only over a bus: a direct client listens on a
 * system bus connection of its own, and the event loop functions below
 * serve that one once it is open. Each
 * signal is decoded into a GmemEvent whose strings point into the message
 * and live only as long as the handler call. Values of changed properties
 * are rendered as text by a small generic formatter, so a property added
 * later is shown without a change here.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "libgmem-internal.h"
#include "string-table.h"

static const char *const gmem_event_type_table[_GMEM_EVENT_TYPE_MAX] = {
        [GMEM_EVENT_REGION_NEW]         = "RegionNew",
        [GMEM_EVENT_REGION_REMOVED]     = "RegionRemoved",
        [GMEM_EVENT_VM_NEW]             = "VmNew",
        [GMEM_EVENT_VM_REMOVED]         = "VmRemoved",
        [GMEM_EVENT_VIEW_REVOKED]       = "ViewRevoked",
        [GMEM_EVENT_MIGRATION_CHANGED]  = "MigrationChanged",
        [GMEM_EVENT_PROPERTIES_CHANGED] = "PropertiesChanged",
        [GMEM_EVENT_OTHER]              = "Other",
};

DEFINE_STRING_TABLE_LOOKUP_TO_STRING(gmem_event_type, GmemEventType);

static int format_basic(sd_bus_message *m, char type, FILE *f) {
        union {
                uint8_t u8;
                uint16_t u16;
                int16_t s16;
                uint32_t u32;
                int32_t s32;
                uint64_t u64;
                int64_t s64;
                double d;
                int b;
                const char *s;
        } v;
        int r;

        r = sd_bus_message_read_basic(m, type, &v);
        if (r < 0)
                return r;

        switch (type) {
        case 'y': fprintf(f, "%" PRIu8, v.u8); break;
        case 'b': fputs(v.b ? "true" : "false", f); break;
        case 'n': fprintf(f, "%" PRIi16, v.s16); break;
        case 'q': fprintf(f, "%" PRIu16, v.u16); break;
        case 'i': fprintf(f, "%" PRIi32, v.s32); break;
        case 'u': fprintf(f, "%" PRIu32, v.u32); break;
        case 'x': fprintf(f, "%" PRIi64, v.s64); break;
        case 't': fprintf(f, "%" PRIu64, v.u64); break;
        case 'd': fprintf(f, "%g", v.d); break;
        case 'h': fprintf(f, "fd:%" PRIi32, v.s32); break;
        case 's':
        case 'o':
        case 'g': fputs(v.s, f); break;
        default: return -EINVAL;
        }
        return 0;
}

/* Writes the next complete value; 0 at the end of the enclosing container. */
static int format_value(sd_bus_message *m, FILE *f) {
        const char *contents;
        char type;
        int r;

        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r <= 0)
                return r;

        if (!strchr("arev", type)) {
                r = format_basic(m, type, f);
                return r < 0 ? r : 1;
        }

        r = sd_bus_message_enter_container(m, type, contents);
        if (r < 0)
                return r;

        if (type == 'a')
                fputc(contents[0] == '{' ? '{' : '[', f);
        else if (type == 'r')
                fputc('(', f);

        for (unsigned i = 0;; i++) {
                if (i > 0 && type != 'v') {
                        r = sd_bus_message_at_end(m, false);
                        if (r < 0)
                                return r;
                        if (r == 0)
                                fputs(type == 'e' ? ": " : ", ", f);
                }
                r = format_value(m, f);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
        }

        if (type == 'a')
                fputc(contents[0] == '{' ? '}' : ']', f);
        else if (type == 'r')
                fputc(')', f);

        r = sd_bus_message_exit_container(m);
        return r < 0 ? r : 1;
}

int gmem_format_variant(sd_bus_message *m, char **ret) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f;
        int r;

        if (!m || !ret)
                return -EINVAL;

        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        r = format_value(m, f);
        if (fclose(f) != 0 && r >= 0)
                r = -ENOMEM;
        if (r < 0) {
                free(buf);
                return r;
        }
        *ret = buf;
        return 0;
}

/* "Name=value Name=value Invalidated" from the a{sv}as of PropertiesChanged. */
static int format_properties(sd_bus_message *m, char **ret) {
        char *buf = NULL;
        size_t size = 0;
        const char *key;
        bool first = true;
        FILE *f;
        int r;

        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                goto finish;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                r = sd_bus_message_read_basic(m, 's', &key);
                if (r < 0)
                        goto finish;
                fprintf(f, "%s%s=", first ? "" : " ", key);
                first = false;
                r = format_value(m, f);
                if (r < 0)
                        goto finish;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        goto finish;
        }
        if (r < 0)
                goto finish;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                goto finish;

        r = sd_bus_message_enter_container(m, 'a', "s");
        if (r < 0)
                goto finish;
        while ((r = sd_bus_message_read_basic(m, 's', &key)) > 0) {
                fprintf(f, "%s%s", first ? "" : " ", key);
                first = false;
        }
        if (r < 0)
                goto finish;
        r = sd_bus_message_exit_container(m);

finish:
        if (fclose(f) != 0 && r >= 0)
                r = -ENOMEM;
        if (r < 0) {
                free(buf);
                return r;
        }
        *ret = buf;
        return 0;
}

/* Every argument of a signal we do not know, rendered space-separated. */
static int format_arguments(sd_bus_message *m, char **ret) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f;
        int r;

        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        for (unsigned i = 0;; i++) {
                r = sd_bus_message_at_end(m, true);
                if (r != 0)
                        break;
                if (i > 0)
                        fputc(' ', f);
                r = format_value(m, f);
                if (r <= 0)
                        break;
        }
        if (fclose(f) != 0 && r >= 0)
                r = -ENOMEM;
        if (r < 0) {
                free(buf);
                return r;
        }
        *ret = buf;
        return 0;
}

static int decode_event(sd_bus_message *m, GmemEvent *e, char **ret_text) {
        const char *member = sd_bus_message_get_member(m);
        int r;

        *e = (GmemEvent) {
                .type = GMEM_EVENT_OTHER,
                .member = member,
                .path = sd_bus_message_get_path(m),
        };
        *ret_text = NULL;

        if (!member)
                return -EBADMSG;

        if (sd_bus_message_is_signal(m, "org.freedesktop.DBus.Properties", "PropertiesChanged") &&
            sd_bus_message_has_signature(m, "sa{sv}as")) {
                e->type = GMEM_EVENT_PROPERTIES_CHANGED;
                r = sd_bus_message_read_basic(m, 's', &e->interface);
                if (r < 0)
                        return r;
                r = format_properties(m, ret_text);
                if (r < 0)
                        return r;
                e->properties = *ret_text;
                return 0;
        }

        if (sd_bus_message_is_signal(m, GMEM_MANAGER_INTERFACE, NULL)) {
                static const struct {
                        const char *member;
                        GmemEventType type;
                } name_signals[] = {
                        { "RegionNew",     GMEM_EVENT_REGION_NEW     },
                        { "RegionRemoved", GMEM_EVENT_REGION_REMOVED },
                        { "VmNew",         GMEM_EVENT_VM_NEW         },
                        { "VmRemoved",     GMEM_EVENT_VM_REMOVED     },
                };

                for (size_t i = 0; i < ELEMENTSOF(name_signals); i++)
                        if (streq(member, name_signals[i].member) && sd_bus_message_has_signature(m, "so")) {
                                e->type = name_signals[i].type;
                                return sd_bus_message_read(m, "so", &e->name, &e->object);
                        }

                if (streq(member, "ViewRevoked") && sd_bus_message_has_signature(m, "ss")) {
                        e->type = GMEM_EVENT_VIEW_REVOKED;
                        return sd_bus_message_read(m, "ss", &e->vm, &e->region);
                }
                if (streq(member, "MigrationChanged") && sd_bus_message_has_signature(m, "os")) {
                        e->type = GMEM_EVENT_MIGRATION_CHANGED;
                        return sd_bus_message_read(m, "os", &e->object, &e->state);
                }
        }

        /* Unknown: give the interface and the arguments as text. */
        e->interface = sd_bus_message_get_interface(m);
        r = format_arguments(m, ret_text);
        if (r < 0)
                return r;
        e->properties = *ret_text;
        return 0;
}

static int on_signal(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        GmemClient *c = userdata;
        _cleanup_free_ char *text = NULL;
        GmemEvent e;
        int r;

        if (!c->event_handler)
                return 0;

        r = decode_event(m, &e, &text);
        if (r < 0)
                /* A malformed signal is skipped, not fatal to the subscriber. */
                return 0;

        r = c->event_handler(c, &e, c->event_userdata);
        if (r < 0 && c->event_error == 0)
                c->event_error = r;
        return 0;
}

/*
 * Asks the broker for every signal; an older broker (UnknownMethod) sends them all anyway, and under an
 * older bus policy (AccessDenied) every signal but the Views changes still comes.
 */
static int call_subscribe(GmemClient *c, sd_bus *bus) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, GMEM_BUS_NAME, GMEM_MANAGER_PATH,
                                           GMEM_MANAGER_INTERFACE, "Subscribe");
        if (r < 0)
                return gmem_client_set_error(c, r, NULL, "Failed to build a D-Bus message");
        /* Subscribing starts no broker; when one appears, on_owner_changed() subscribes. */
        r = sd_bus_message_set_auto_start(m, false);
        if (r < 0)
                return gmem_client_set_error(c, r, NULL, "Failed to build a D-Bus message");

        r = sd_bus_call(bus, m, 0, &error, NULL);
        if (r >= 0 ||
            sd_bus_error_has_names(&error, SD_BUS_ERROR_UNKNOWN_METHOD, SD_BUS_ERROR_SERVICE_UNKNOWN,
                                   SD_BUS_ERROR_NAME_HAS_NO_OWNER, SD_BUS_ERROR_ACCESS_DENIED))
                return 0;
        if (!sd_bus_error_is_set(&error)) {
                char buf[128];

                (void) snprintf(buf, sizeof(buf), "Failed to call Subscribe: %s", strerror(-r));
                return gmem_client_set_error(c, r, NULL, buf);
        }
        return gmem_client_set_bus_error(c, &error, r);
}

/* The broker's name got a new owner: a broker (re)started, with no subscribers. */
static int on_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        const char *name, *old_owner, *new_owner;
        sd_bus *bus = sd_bus_message_get_bus(m);

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0 ||
            !streq(name, GMEM_BUS_NAME) || isempty(new_owner))
                return 0;

        /* No reply is awaited: whatever the broker answers (an older one: UnknownMethod) changes nothing here. */
        (void) sd_bus_call_method_async(bus, NULL, GMEM_BUS_NAME, GMEM_MANAGER_PATH, GMEM_MANAGER_INTERFACE,
                                        "Subscribe", NULL, NULL, NULL);
        return 0;
}

static int subscribe_failed(GmemClient *c, const char *what, int r) {
        char buf[160];

        (void) snprintf(buf, sizeof(buf), "Failed to %s: %s", what, strerror(-r));
        return gmem_client_set_error(c, r, NULL, buf);
}

int gmem_subscribe(GmemClient *c, GmemEventHandler handler, void *userdata) {
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL, *owner_slot = NULL;
        sd_bus *bus;
        int r;

        if (!c)
                return -EINVAL;
        gmem_client_clear_error(c);
        if (!handler)
                return gmem_client_invalid_argument(c, "No event handler given");

        if (c->event_slot) {
                c->event_handler = handler;
                c->event_userdata = userdata;
                return 0;
        }

        r = gmem_client_open_events_bus(c, &bus);
        if (r < 0)
                return subscribe_failed(c, "connect to the system bus for the broker's signals", r);

        /* Synchronous AddMatch: no event sent after this returns is missed. */
        r = sd_bus_match_signal(bus, &slot, GMEM_BUS_NAME, NULL, NULL, NULL, on_signal, c);
        if (r < 0)
                return subscribe_failed(c, "subscribe to the broker's signals", r);
        r = sd_bus_add_match(bus, &owner_slot,
                             "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                             "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='" GMEM_BUS_NAME "'",
                             on_owner_changed, NULL);
        if (r < 0)
                return subscribe_failed(c, "watch the broker's bus name", r);
        r = call_subscribe(c, bus);
        if (r < 0)
                return r;

        c->event_slot = TAKE_PTR(slot);
        c->owner_slot = TAKE_PTR(owner_slot);
        c->event_handler = handler;
        c->event_userdata = userdata;
        return 0;
}

int gmem_client_get_fd(GmemClient *c) {
        if (!c)
                return -EINVAL;
        return sd_bus_get_fd(gmem_client_loop_bus(c));
}

int gmem_client_get_events(GmemClient *c) {
        if (!c)
                return -EINVAL;
        return sd_bus_get_events(gmem_client_loop_bus(c));
}

int gmem_client_process(GmemClient *c) {
        int r;

        if (!c)
                return -EINVAL;
        r = sd_bus_process(gmem_client_loop_bus(c), NULL);
        if (c->event_error < 0) {
                /* sd-bus swallows a signal handler's error; hand it over here. */
                r = c->event_error;
                c->event_error = 0;
        }
        return r;
}

int gmem_client_wait(GmemClient *c, uint64_t timeout_usec) {
        if (!c)
                return -EINVAL;
        return sd_bus_wait(gmem_client_loop_bus(c), timeout_usec);
}
