/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libgmem-internal.h — what the files of libgmem share and the public header
 * does not show: the client object, the call helpers that keep the broker's
 * error, and the argument checks. The unit test links these directly.
 */
#pragma once

#include <stddef.h>
#include <systemd/sd-bus.h>

#include "libgmem.h"
#include "macro.h"
#include "wire.h"

#define GMEM_MANAGER_INTERFACE GMEM_BUS_NAME ".Manager"
#define GMEM_REGION_INTERFACE GMEM_BUS_NAME ".Region"
#define GMEM_VM_INTERFACE GMEM_BUS_NAME ".Vm"
#define GMEM_MIGRATION_PATH_PREFIX GMEM_MANAGER_PATH "/migration/"

struct GmemClient {
        unsigned n_ref;
        sd_bus *bus;               /* every call: the bus, or the broker's direct socket */
        bool direct;               /* bus is a peer connection to the direct socket */
        sd_bus *event_bus;         /* a direct client's system bus connection for signals */
        char *error_name;          /* of the last failed call; NULL after a success */
        char *error_message;
        sd_bus_slot *event_slot;   /* the signal match of gmem_subscribe() */
        sd_bus_slot *owner_slot;   /* NameOwnerChanged of the broker's name: subscribe again */
        GmemEventHandler event_handler;
        void *event_userdata;
        int event_error;           /* first negative return of the handler, for gmem_client_process() */
};

/* Wraps an sd_bus the caller set up (started or not); takes a reference to it. */
int gmem_client_new_from_bus(sd_bus *bus, GmemClient **ret);

/* $GMEM_DIRECT_SOCKET when set and not empty, else GMEM_DIRECT_SOCKET_DEFAULT. */
const char *gmem_direct_socket_path(void);

/*
 * The connection the broker's signals come on: c's own on the bus; for a
 * direct client a system bus connection, opened on the first call.
 */
int gmem_client_open_events_bus(GmemClient *c, sd_bus **ret);

/* The connection an event loop serves: the signals' one once it is open, else c's own. */
static inline sd_bus *gmem_client_loop_bus(GmemClient *c) {
        return c->event_bus ? c->event_bus : c->bus;
}

/* Forget the last error; every public call starts with this. */
void gmem_client_clear_error(GmemClient *c);
/* Keep name and message (either may be NULL) as the last error; returns -errnum (errnum > 0). */
int gmem_client_set_error(GmemClient *c, int errnum, const char *name, const char *message);
/* Keep a failed call's D-Bus error and return the negative errno it maps to. */
int gmem_client_set_bus_error(GmemClient *c, const sd_bus_error *error, int r);
/* The errno an sd-bus error maps to (the registry first, then sd-bus' own map); positive, never 0. */
int gmem_errno_from_bus_error(const sd_bus_error *error, int r);

/* -EINVAL with InvalidName kept in c unless name is valid. kind: "region", "VM". */
int gmem_client_check_name(GmemClient *c, const char *kind, const char *name);
/* -EINVAL with InvalidArgument and message kept in c. */
int gmem_client_invalid_argument(GmemClient *c, const char *message);

/* Calls a Manager method; on failure keeps the error and returns the mapped -errno. */
int gmem_call_manager(GmemClient *c, const char *method, sd_bus_message **ret_reply,
                      const char *types, ...);
/* Same with a message built by the caller (gmem_new_manager_call()). */
int gmem_call(GmemClient *c, sd_bus_message *m, sd_bus_message **ret_reply);
int gmem_new_manager_call(GmemClient *c, const char *method, sd_bus_message **ret);

/* Calls GetRegion/GetVm (method) for name, checked as a name of kind first. */
int gmem_get_object_path(GmemClient *c, const char *method, const char *kind, const char *name,
                         char **ret_path);

/* Reads properties of an object with org.freedesktop.DBus.Properties.GetAll. */
int gmem_get_all_properties(GmemClient *c, const char *path, const char *interface,
                            sd_bus_message **ret_reply);

/* One row of a property table: name, D-Bus type ('s', 't', 'u', 'b') and where it goes. */
typedef struct GmemProperty {
        const char *name;
        char type;
        size_t offset;
} GmemProperty;

/*
 * Reads a GetAll reply (a{sv}) into data by table; 's' fields are strdup'ed
 * char *, 'b' bool, 't' uint64_t, 'u' 32-bit. Keys not in the table go to
 * other (which must consume the variant) or are skipped when other is NULL.
 */
int gmem_read_properties(sd_bus_message *m, const GmemProperty *table, void *data,
                         int (*other)(sd_bus_message *m, const char *key, void *data));

void gmem_strv_free(char **strv);

/* Appends an a{sv} dictionary entry. */
int gmem_append_option(sd_bus_message *m, const char *key, const char *type, ...);

/* Reads an a(sss) Views property into views; self fills the field the property leaves out. */
int gmem_read_views(sd_bus_message *m, const char *self, bool self_is_vm,
                    GmemViewInfo **ret_views, size_t *ret_n);
/*
 * A property callback's body for "Views" (a(sss) in a variant): replaces
 * *views with what the message holds; any other key is skipped.
 */
int gmem_read_views_property(sd_bus_message *m, const char *key, bool self_is_vm, GmemViewInfo **views,
                             size_t *n_views);
void gmem_view_info_array_free(GmemViewInfo *views, size_t n);

/* Renders the value at the read position of m as text ("4096", "[a, b]", "(x, y)"). */
int gmem_format_variant(sd_bus_message *m, char **ret);

static inline void gmem_client_unrefp(GmemClient **c) {
        gmem_client_unref(*c);
}
#define _cleanup_client_ _cleanup_(gmem_client_unrefp)
