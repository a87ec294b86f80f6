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
#include "manager.h"

#define BUS_PATH "/org/gmemd/Broker1"
#define BUS_REGION_PREFIX BUS_PATH "/region"
#define BUS_VM_PREFIX BUS_PATH "/vm"
#define BUS_MIGRATION_PREFIX BUS_PATH "/migration"
#define BUS_IFACE_MANAGER "org.gmemd.Broker1.Manager"
#define BUS_IFACE_REGION "org.gmemd.Broker1.Region"
#define BUS_IFACE_VM "org.gmemd.Broker1.Vm"
#define BUS_IFACE_MIGRATION "org.gmemd.Broker1.Migration"

/* The things a caller may be allowed to do; the policy speaks in these. */
typedef enum BusVerb {
        BUS_VERB_LIST,
        BUS_VERB_CREATE_REGION,
        BUS_VERB_DESTROY_REGION,
        BUS_VERB_REGISTER_VM,
        BUS_VERB_UNREGISTER_VM,
        BUS_VERB_ATTACH,
        BUS_VERB_DETACH,
        BUS_VERB_GET_FD,
        BUS_VERB_MIGRATE,
        BUS_VERB_DISCARD,
        BUS_VERB_SET_ATTRIBUTES,
        _BUS_VERB_MAX,
        _BUS_VERB_INVALID = -EINVAL,
} BusVerb;

const char *bus_verb_to_string(BusVerb v) _pure_;
BusVerb bus_verb_from_string(const char *s) _pure_;

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
        _BUS_OPTION_TYPE_MAX,
} BusOptionType;

typedef struct BusOption {
        const char *key;
        BusOptionType type;
        void *value;        /* const char **, bool *, uint32_t *, uint64_t * */
        bool *seen;         /* may be NULL */
} BusOption;

/*
 * Reads an a{sv} against a table. Unknown keys, repeated keys and values of
 * the wrong type are InvalidArgument naming the key. Strings point into the
 * message and live as long as it does.
 */
int bus_read_options(sd_bus_message *m, const BusOption *options, size_t n, GmemError *e);

/*
 * 0 if the sender of m may do verb (on vm, for per-VM rights), otherwise
 * sets AccessDenied naming the verb and returns -EACCES.
 */
int bus_authorize(sd_bus_message *m, BusVerb verb, const Vm *vm, sd_bus_error *ret_error);

/* Builds a node enumerator's NULL-terminated path list from a hashmap of objects. */
typedef int (*BusPathFunc)(const void *object, char **ret);
int bus_node_list(Hashmap *objects, BusPathFunc path, char ***ret_nodes);

int region_bus_path(const Region *r, char **ret);
int vm_bus_path(const Vm *vm, char **ret);
int migration_bus_path(const Migration *mig, char **ret);
