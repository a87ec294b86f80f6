/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bus-util.h — what every *-dbus.c file needs: turning a GmemError into a
 * named D-Bus error, reading a{sv} option dictionaries against a table,
 * object paths of model objects, and the authorization check each method
 * handler calls between validating its arguments and calling the model.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "gmem-errors.h"
#include "bus-creds.h"
#include "bus-fdflow.h"
#include "bus-subscribers.h"
#include "manager.h"
#include "policy.h"
#include "usage.h"

#define BUS_PATH "/org/gmemd/Broker1"
#define BUS_REGION_PREFIX BUS_PATH "/region"
#define BUS_VM_PREFIX BUS_PATH "/vm"
#define BUS_MIGRATION_PREFIX BUS_PATH "/migration"
#define BUS_IFACE_MANAGER "org.gmemd.Broker1.Manager"
#define BUS_IFACE_REGION "org.gmemd.Broker1.Region"
#define BUS_IFACE_VM "org.gmemd.Broker1.Vm"
#define BUS_IFACE_MIGRATION "org.gmemd.Broker1.Migration"

/*
 * Sets ret_error from e (or from r if e is unset) and returns r or e's
 * negative errno, for "return bus_reply_gmem_error(error, &e, r);".
 */
int bus_set_gmem_error(sd_bus_error *ret_error, const GmemError *e, int r);

typedef enum BusOptionType {
        BUS_OPTION_STRING,
        BUS_OPTION_BOOLEAN,
        BUS_OPTION_UINT32,
        BUS_OPTION_UINT64,
        BUS_OPTION_FD,
        _BUS_OPTION_TYPE_MAX,
} BusOptionType;

typedef struct BusOption {
        const char *key;
        BusOptionType type;
        void *value;        /* const char **, bool *, uint32_t *, uint64_t *, int * (an fd the message owns) */
        bool *seen;         /* may be NULL */
} BusOption;

/*
 * The next argument, a string: sd_bus_message_read_basic() without the
 * format parsing of sd_bus_message_read(), for the methods called most.
 * -EBADMSG if the message has no more arguments.
 */
int bus_read_string(sd_bus_message *m, const char **ret);

/*
 * Reads an a{sv} against a table. Unknown keys, repeated keys and values of
 * the wrong type are InvalidArgument naming the key. Strings and fds belong
 * to the message and live as long as it does: an fd kept longer is
 * duplicated.
 */
int bus_read_options(sd_bus_message *m, const BusOption *options, size_t n, GmemError *e);

/*
 * Before a call opens fds: keep is how many it keeps (view files, memfds,
 * pidfds), send how many its reply carries. Fails with System.Error.EMFILE
 * (ENFILE) unless keep + send fds can be opened with FDLIMIT_RESERVE left
 * free for the bus, and with LimitsExceeded when the caller has not read
 * the fds of earlier replies (bus-fdflow.h). The message starts with what
 * fmt says, e.g. "Cannot give VM 'a' a view of region 'b'".
 */
int bus_check_fds(sd_bus_message *msg, const Manager *m, unsigned keep, unsigned send, sd_bus_error *error,
                  const char *fmt, ...) _printf_(6, 7);

typedef struct DirectServer DirectServer;

/*
 * What the D-Bus face keeps per bus: the model's hooks_userdata. Direct
 * connections share one (direct_userdata, with direct set and no bus, fd
 * flow or subscribers: bus-direct.h).
 */
typedef struct BusContext {
        sd_bus *bus;
        BusCredsCache *creds;
        FdFlow *fdflow;
        DirectServer *direct;
        BusSubscribers *subscribers;        /* clients that called Subscribe(): Views changes are announced to them */
        unsigned emitting;          /* > 0 while gmemd emits signals: object lookups hide nothing */
} BusContext;

static inline sd_bus *manager_bus(const Manager *m) {
        return ((BusContext *) m->hooks_userdata)->bus;
}

/*
 * The context of the connection bus: the bus's for a bus client, the direct
 * connections' otherwise. A connection registered with
 * manager_bus_register() that is no bus client (a test harness's socketpair)
 * has the bus's when there is no direct server. NULL while neither exists.
 */
static inline BusContext *bus_context_of(const Manager *m, sd_bus *bus) {
        if (sd_bus_is_bus_client(bus) > 0 || !m->direct_userdata)
                return m->hooks_userdata;
        return m->direct_userdata;
}


/*
 * The objects a call acts on, for bus_authorize(): the VM (or a migration's
 * source), a migration's target VM, the region. Unset members are not
 * involved.
 */
typedef struct BusTarget {
        const Vm *vm;
        const Vm *target;
        const Region *region;
} BusTarget;
#define BUS_TARGET(...) (&(const BusTarget) { __VA_ARGS__ })

/*
 * Decides whether the sender of msg may do verb to the objects in t (NULL:
 * none), from the credentials the bus captured and the policy in force: its
 * class must allow the verb and reach every object in t (scope own: objects
 * its uid created; all: every object). A VM's own hypervisor uid may fetch
 * that VM's views whatever its class; a uid that is some VM's hypervisor uid
 * reaches only the views of VMs registered with its uid (get-fd, attach and
 * migrate hand out views), whatever its class. Returns 1 if allowed
 * (ret_caller set: its uid and its class, NULL for a hypervisor acting on
 * its own VM); 0 if the credentials are being fetched: the handler must
 * return 1 at once and msg will be dispatched again; negative with
 * AccessDenied naming the verb if not allowed.
 */
int bus_authorize(sd_bus_message *msg, Manager *m, PolicyVerb verb, const BusTarget *t, Actor *ret_caller,
                  sd_bus_error *ret_error);

/*
 * Who may see an object: a caller sees the regions and VMs its own uid
 * created if it is in a class, every object if its class may list with
 * scope all, and a VM registered with its uid. A migration is seen with
 * both its VMs. An object a caller may not see answers as one that does not
 * exist, in name lookups, object paths, properties, GetManagedObjects and
 * the node enumerators.
 *
 * bus_caller_peek() finds the caller of msg (NULL: the message bus is
 * dispatching) from the credentials already cached, without asking the bus;
 * false if they are not known, and then the caller sees nothing.
 */
bool bus_caller_peek(Manager *m, sd_bus *bus, sd_bus_message *msg, Actor *ret);
/* Whether gmemd is emitting signals: object lookups then hide nothing (signals go to every listener). */
bool bus_emitting(const Manager *m);
bool bus_actor_sees(const Actor *a, uid_t creator);
bool bus_actor_sees_vm(const Actor *a, const Vm *vm);
bool bus_actor_sees_migration(const Actor *a, Manager *m, const Migration *mig);

/* For handlers: "r = bus_authorize(...); if (r <= 0) return BUS_AUTH_RETURN(r);" */
#define BUS_AUTH_RETURN(r) ((r) < 0 ? (r) : 1)

/* Builds a node enumerator's NULL-terminated path list from a hashmap of objects. */
typedef int (*BusPathFunc)(const void *object, char **ret);
typedef bool (*BusSeenFunc)(const void *object, const Actor *a, Manager *m);
/* Only the objects the caller of the message being dispatched may see (seen). */
int bus_node_list(Manager *m, sd_bus *bus, Hashmap *objects, BusPathFunc path, BusSeenFunc seen,
                  char ***ret_nodes);

/* Appends one value of an object to a message (a property's, for bus_emit_property_changed()). */
typedef int (*BusAppendFunc)(sd_bus_message *m, const void *object);
/*
 * Emits PropertiesChanged(interface, {property: value}, []) from path, the
 * value of the given signature appended by append from object: what
 * sd_bus_emit_properties_changed() sends for one property, without looking
 * the object up again through the object tree (most of an Attach's cost).
 */
int bus_emit_property_changed(sd_bus *bus, const char *path, const char *interface, const char *property,
                              const char *signature, BusAppendFunc append, const void *object);

int region_bus_path(const Region *reg, char **ret);
int vm_bus_path(const Vm *vm, char **ret);
int migration_bus_path(const Migration *mig, char **ret);
