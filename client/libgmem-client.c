/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libgmem-client.c — the client object and the path every call takes.
 *
 * A GmemClient owns one sd-bus connection (to the bus or to the broker's
 * direct socket: libgmem-connect.c), the system bus connection a direct
 * client opens for signals, and the error of the last failed call. Each
 * public function checks its arguments first (no bus traffic for a NULL
 * pointer or an invalid name), then builds a message, calls the broker
 * synchronously and turns a D-Bus error back into an errno through the error
 * registry (common/gmem-errors.c), falling back to sd-bus' own map for the
 * org.freedesktop.DBus.Error.* and System.Error.* names. The error name and
 * message stay readable until the next call. This file also holds the helpers
 * the other files share: a{sv} options, GetAll, the Views arrays, and the
 * broker's Manager properties.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "array.h"
#include "gmem-errors.h"
#include "libgmem-internal.h"
#include "parse.h"

GmemClient *gmem_client_ref(GmemClient *c) {
        if (!c)
                return NULL;
        c->n_ref++;
        return c;
}

GmemClient *gmem_client_unref(GmemClient *c) {
        if (!c)
                return NULL;
        if (--c->n_ref > 0)
                return NULL;

        sd_bus_slot_unref(c->event_slot);
        sd_bus_slot_unref(c->owner_slot);
        sd_bus_flush_close_unref(c->event_bus);
        sd_bus_flush_close_unref(c->bus);
        free(c->error_name);
        free(c->error_message);
        free(c);
        return NULL;
}

const char *gmem_client_last_error_name(const GmemClient *c) {
        return c ? c->error_name : NULL;
}

const char *gmem_client_last_error_message(const GmemClient *c) {
        return c ? c->error_message : NULL;
}

void gmem_client_clear_error(GmemClient *c) {
        if (!c)
                return;
        free(c->error_name);
        free(c->error_message);
        c->error_name = c->error_message = NULL;
}

int gmem_client_set_error(GmemClient *c, int errnum, const char *name, const char *message) {
        if (errnum < 0)
                errnum = -errnum;
        if (errnum == 0)
                errnum = EIO;
        if (!c)
                return -errnum;

        gmem_client_clear_error(c);
        /* Out of memory here only loses the text; the errno still says what happened. */
        c->error_name = name ? strdup(name) : NULL;
        c->error_message = message ? strdup(message) : NULL;
        return -errnum;
}

int gmem_errno_from_bus_error(const sd_bus_error *error, int r) {
        int errnum = 0;

        if (sd_bus_error_is_set(error)) {
                errnum = gmem_errno_from_dbus_name(error->name);
                if (errnum == 0)
                        /* System.Error.<ENAME> and the freedesktop names sd-bus knows; EIO otherwise. */
                        errnum = sd_bus_error_get_errno(error);
        }
        if (errnum <= 0)
                errnum = r < 0 ? -r : EIO;
        return errnum;
}

int gmem_client_set_bus_error(GmemClient *c, const sd_bus_error *error, int r) {
        int errnum = gmem_errno_from_bus_error(error, r);

        if (sd_bus_error_is_set(error))
                return gmem_client_set_error(c, errnum, error->name,
                                             error->message ? error->message : error->name);
        return gmem_client_set_error(c, errnum, NULL, strerror(errnum));
}

int gmem_client_check_name(GmemClient *c, const char *kind, const char *name) {
        GmemError e = GMEM_ERROR_INIT;

        if (gmem_validate_name(kind, name, &e) >= 0)
                return 0;
        return gmem_client_set_error(c, EINVAL, gmem_error_code_to_dbus_name(e.code), e.message);
}

int gmem_client_invalid_argument(GmemClient *c, const char *message) {
        return gmem_client_set_error(c, EINVAL, gmem_error_code_to_dbus_name(GMEM_ERROR_INVALID_ARGUMENT),
                                     message);
}

int gmem_new_manager_call(GmemClient *c, const char *method, sd_bus_message **ret) {
        int r;

        r = sd_bus_message_new_method_call(c->bus, ret, GMEM_BUS_NAME, GMEM_MANAGER_PATH,
                                           GMEM_MANAGER_INTERFACE, method);
        if (r < 0)
                return gmem_client_set_error(c, r, NULL, "Failed to build a D-Bus message");
        return 0;
}

int gmem_call(GmemClient *c, sd_bus_message *m, sd_bus_message **ret_reply) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_call(c->bus, m, 0, &error, &reply);
        if (r < 0) {
                if (!sd_bus_error_is_set(&error)) {
                        char buf[256];
                        const char *member = sd_bus_message_get_member(m);

                        /* No reply at all: the connection failed; say which call and why. */
                        (void) snprintf(buf, sizeof(buf), "Failed to call %s: %s",
                                        member ? member : "the broker", strerror(-r));
                        return gmem_client_set_error(c, r, NULL, buf);
                }
                return gmem_client_set_bus_error(c, &error, r);
        }

        if (ret_reply)
                *ret_reply = TAKE_PTR(reply);
        return 0;
}

int gmem_call_manager(GmemClient *c, const char *method, sd_bus_message **ret_reply,
                      const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        va_list ap;
        int r;

        r = gmem_new_manager_call(c, method, &m);
        if (r < 0)
                return r;

        if (!isempty(types)) {
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
                if (r < 0)
                        return gmem_client_set_error(c, r, NULL, "Failed to build a D-Bus message");
        }

        return gmem_call(c, m, ret_reply);
}

int gmem_get_all_properties(GmemClient *c, const char *path, const char *interface,
                            sd_bus_message **ret_reply) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(c->bus, &m, GMEM_BUS_NAME, path,
                                           "org.freedesktop.DBus.Properties", "GetAll");
        if (r < 0)
                return gmem_client_set_error(c, r, NULL, "Failed to build a D-Bus message");
        r = sd_bus_message_append(m, "s", interface);
        if (r < 0)
                return gmem_client_set_error(c, r, NULL, "Failed to build a D-Bus message");

        return gmem_call(c, m, ret_reply);
}

int gmem_append_option(sd_bus_message *m, const char *key, const char *type, ...) {
        va_list ap;
        int r;

        r = sd_bus_message_open_container(m, 'e', "sv");
        if (r < 0)
                return r;
        r = sd_bus_message_append_basic(m, 's', key);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'v', type);
        if (r < 0)
                return r;
        va_start(ap, type);
        r = sd_bus_message_appendv(m, type, ap);
        va_end(ap);
        if (r < 0)
                return r;
        r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(m);
}

void gmem_view_info_array_free(GmemViewInfo *views, size_t n) {
        if (!views)
                return;
        for (size_t i = 0; i < n; i++) {
                free(views[i].vm);
                free(views[i].region);
                free(views[i].access);
                free(views[i].state);
        }
        free(views);
}

int gmem_read_views(sd_bus_message *m, const char *self, bool self_is_vm,
                    GmemViewInfo **ret_views, size_t *ret_n) {
        GmemViewInfo *views = NULL;
        size_t n = 0, allocated = 0;
        const char *other, *access, *state;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "(sss)");
        if (r < 0)
                return r;

        while ((r = sd_bus_message_read(m, "(sss)", &other, &access, &state)) > 0) {
                GmemViewInfo *v;

                r = GROW_ARRAY(views, allocated, n + 1);
                if (r < 0)
                        goto fail;
                v = &views[n];
                *v = (GmemViewInfo) {
                        .vm = strdup(self_is_vm ? self : other),
                        .region = strdup(self_is_vm ? other : self),
                        .access = strdup(access),
                        .state = strdup(state),
                };
                n++;
                if (!v->vm || !v->region || !v->access || !v->state) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        if (r < 0)
                goto fail;

        r = sd_bus_message_exit_container(m);
        if (r < 0)
                goto fail;

        *ret_views = views;
        *ret_n = n;
        return 0;

fail:
        gmem_view_info_array_free(views, n);
        return r;
}

void gmem_strv_free(char **strv) {
        if (!strv)
                return;
        for (char **s = strv; *s; s++)
                free(*s);
        free(strv);
}

GmemManagerProperties *gmem_manager_properties_free(GmemManagerProperties *p) {
        if (!p)
                return NULL;
        free(p->version);
        gmem_strv_free(p->backends);
        free(p->default_backend);
        free(p->persistence);
        free(p);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(GmemManagerProperties *, gmem_manager_properties_free);

int gmem_read_properties(sd_bus_message *m, const GmemProperty *table, void *data,
                         int (*other)(sd_bus_message *m, const char *key, void *data)) {
        const char *key;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;

        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const GmemProperty *p;

                r = sd_bus_message_read_basic(m, 's', &key);
                if (r < 0)
                        return r;

                for (p = table; p->name; p++)
                        if (streq(p->name, key))
                                break;

                if (p->name) {
                        void *field = (uint8_t *) data + p->offset;
                        char contents[2] = { p->type, 0 };
                        const char *s;
                        int b;

                        r = sd_bus_message_enter_container(m, 'v', contents);
                        if (r < 0)
                                return r;
                        switch (p->type) {
                        case 's':
                                r = sd_bus_message_read_basic(m, 's', &s);
                                if (r < 0)
                                        return r;
                                free(*(char **) field);
                                *(char **) field = strdup(s);
                                if (!*(char **) field)
                                        return -ENOMEM;
                                break;
                        case 'b':
                                r = sd_bus_message_read_basic(m, 'b', &b);
                                if (r < 0)
                                        return r;
                                *(bool *) field = b;
                                break;
                        case 't':
                        case 'u':
                                r = sd_bus_message_read_basic(m, p->type, field);
                                if (r < 0)
                                        return r;
                                break;
                        default:
                                return -EINVAL;
                        }
                        r = sd_bus_message_exit_container(m);
                } else if (other)
                        r = other(m, key, data);
                else
                        r = sd_bus_message_skip(m, "v");
                if (r < 0)
                        return r;

                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;

        return sd_bus_message_exit_container(m);
}

static int read_manager_backends(sd_bus_message *m, const char *key, void *data) {
        GmemManagerProperties *p = data;
        char **strv = NULL;
        int r;

        if (!streq(key, "Backends"))
                /* A property added after this library was built. */
                return sd_bus_message_skip(m, "v");

        r = sd_bus_message_enter_container(m, 'v', "as");
        if (r < 0)
                return r;
        r = sd_bus_message_read_strv(m, &strv);
        if (r < 0)
                return r;
        gmem_strv_free(p->backends);
        p->backends = strv;
        return sd_bus_message_exit_container(m);
}

static const GmemProperty manager_properties[] = {
        { "Version",        's', offsetof(GmemManagerProperties, version)         },
        { "DefaultBackend", 's', offsetof(GmemManagerProperties, default_backend) },
        { "TotalBytes",     't', offsetof(GmemManagerProperties, total_bytes)     },
        { "AllocatedBytes", 't', offsetof(GmemManagerProperties, allocated_bytes) },
        { "Persistence",    's', offsetof(GmemManagerProperties, persistence)     },
        {}
};

int gmem_get_manager_properties(GmemClient *c, GmemManagerProperties **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(gmem_manager_properties_freep) GmemManagerProperties *p = NULL;
        int r;

        if (!c || !ret)
                return -EINVAL;
        gmem_client_clear_error(c);

        r = gmem_get_all_properties(c, GMEM_MANAGER_PATH, GMEM_MANAGER_INTERFACE, &reply);
        if (r < 0)
                return r;

        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;

        r = gmem_read_properties(reply, manager_properties, p, read_manager_backends);
        if (r < 0)
                return gmem_client_set_error(c, r, NULL, "Failed to parse the broker's properties");

        if (!p->backends) {
                p->backends = calloc(1, sizeof(char *));
                if (!p->backends)
                        return -ENOMEM;
        }

        *ret = TAKE_PTR(p);
        return 0;
}

int gmem_read_views_property(sd_bus_message *m, const char *key, bool self_is_vm, GmemViewInfo **views,
                             size_t *n_views) {
        int r;

        if (!streq(key, "Views"))
                return sd_bus_message_skip(m, "v");

        r = sd_bus_message_enter_container(m, 'v', "a(sss)");
        if (r < 0)
                return r;
        gmem_view_info_array_free(*views, *n_views);
        *views = NULL;
        *n_views = 0;
        r = gmem_read_views(m, "", self_is_vm, views, n_views);
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}
