/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bus-util.c — D-Bus plumbing shared by the object faces: error conversion,
 * option dictionaries, authorization from the credentials the bus captured,
 * and object paths.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus-direct.h"
#include "bus-util.h"
#include "fdlimit.h"
#include "migration.h"
#include "parse.h"
#include "region.h"
#include "vm.h"

int bus_set_gmem_error(sd_bus_error *ret_error, const GmemError *e, int r) {
        const char *name;

        if (!gmem_error_is_set(e))
                return sd_bus_error_set_errno(ret_error, r < 0 ? r : -EIO);

        name = gmem_error_code_to_dbus_name(e->code);
        if (name) {
                (void) sd_bus_error_set(ret_error, name, e->message);
                return -e->errnum;
        }
        return sd_bus_error_set_errnof(ret_error, e->errnum, "%s", e->message);
}

int bus_check_fds(sd_bus_message *msg, const Manager *m, unsigned keep, unsigned send, sd_bus_error *error,
                  const char *fmt, ...) {
        sd_bus *bus = sd_bus_message_get_bus(msg);
        BusContext *ctx = bus_context_of(m, bus);
        _cleanup_free_ char *what = NULL;
        FdFlowRefusal refusal = {};
        rlim_t limit = 0;
        va_list ap;
        int r, fr = 0;

        /* Each direct connection holds an fd too. */
        r = fdlimit_check(sd_bus_get_fd(bus), keep + send,
                          manager_fds_held(m) + direct_server_connections(m->direct_userdata ?
                                                                          ((BusContext *) m->direct_userdata)->direct :
                                                                          NULL), &limit);
        if (r >= 0 && send > 0 && ctx && ctx->direct)
                fr = direct_server_admit_fds(ctx->direct, msg, send, &refusal);
        else if (r >= 0 && send > 0 && ctx)
                fr = fdflow_admit(ctx->fdflow, msg, send, &refusal);
        if (r >= 0 && fr >= 0)
                return 0;
        if (fr < 0 && fr != -EBUSY)
                return fr;

        /* Only a refusal needs the words for what the call was about. */
        va_start(ap, fmt);
        if (vasprintf(&what, fmt, ap) < 0)
                what = NULL;
        va_end(ap);
        if (!what)
                return -ENOMEM;
        if (r == -ENFILE)
                return sd_bus_error_set_errnof(error, r, "%s: the system's file table is full", what);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "%s: Too many open files (gmemd's limit is %llu, of which "
                                               "it keeps %u free for the bus)", what, (unsigned long long) limit,
                                               FDLIMIT_RESERVE);
        if (refusal.whole_bus)
                return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED, "%s: clients have not read %u file "
                                         "descriptors gmemd sent them (at most %u may wait)", what, refusal.unread,
                                         refusal.max);
        return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED, "%s: %s%s has not read %u file "
                                 "descriptors gmemd sent it (at most %u may wait); read the replies first", what,
                                 ctx && ctx->direct ? "this direct connection" : "client ",
                                 ctx && ctx->direct ? "" : sd_bus_message_get_sender(msg), refusal.unread,
                                 refusal.max);
}

static const char bus_option_signature[_BUS_OPTION_TYPE_MAX] = {
        [BUS_OPTION_STRING]  = 's',
        [BUS_OPTION_BOOLEAN] = 'b',
        [BUS_OPTION_UINT32]  = 'u',
        [BUS_OPTION_UINT64]  = 't',
        [BUS_OPTION_FD]      = 'h',
};

/*
 * Reads the variant of an option entry into o->value, after checking that it
 * holds exactly the type o's row asks for. A variant of another type, or one
 * that cannot be read, is InvalidArgument naming the key.
 */
static int bus_read_option_value(sd_bus_message *m, const BusOption *o, GmemError *e) {
        const char *contents;
        char type, want = bus_option_signature[o->type];
        int r;

        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r < 0)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Malformed value of option '%s'", o->key);
        if (type != SD_BUS_TYPE_VARIANT || !contents || contents[0] != want || contents[1] != 0)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Option '%s' must be of type '%c', not '%s'",
                                      o->key, want, contents ? contents : "?");

        switch (o->type) {
        case BUS_OPTION_STRING:
                r = sd_bus_message_read(m, "v", "s", (const char **) o->value);
                break;
        case BUS_OPTION_BOOLEAN: {
                int b = 0;
                r = sd_bus_message_read(m, "v", "b", &b);
                if (r >= 0)
                        *(bool *) o->value = b;
                break;
        }
        case BUS_OPTION_UINT32:
                r = sd_bus_message_read(m, "v", "u", (uint32_t *) o->value);
                break;
        case BUS_OPTION_UINT64:
                r = sd_bus_message_read(m, "v", "t", (uint64_t *) o->value);
                break;
        case BUS_OPTION_FD:
                r = sd_bus_message_read(m, "v", "h", (int *) o->value);
                break;
        default:
                r = -EINVAL;
        }
        if (r < 0)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Malformed value of option '%s'", o->key);
        return 0;
}

/*
 * The row of options whose key is key, in *ret_index; -ENOENT if the table
 * has no such row.
 */
static int bus_option_find(const BusOption *options, size_t n, const char *key, size_t *ret_index) {
        for (size_t i = 0; i < n; i++) {
                if (!streq(options[i].key, key))
                        continue;
                *ret_index = i;
                return 0;
        }
        return -ENOENT;
}

/*
 * Sets InvalidArgument for a key the table does not know, listing the keys
 * it does know ("a, b, c", cut short when the buffer is full) or "none" for
 * an empty table, and returns its negative errno.
 */
static int bus_option_unknown(const BusOption *options, size_t n, const char *key, GmemError *e) {
        char known[256] = "";
        size_t len = 0;

        for (size_t j = 0; j < n && len < sizeof(known); j++)
                len += (size_t) snprintf(known + len, sizeof(known) - len, "%s%s", j ? ", " : "", options[j].key);
        return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Unknown option '%.64s'; known options: %s", key,
                              n ? known : "none");
}

/*
 * Reads the next {sv} entry of an option dictionary into its row of options,
 * marking the row in seen (one flag per row) so a key given twice is
 * refused. Returns 1 if an entry was read, 0 at the end of the dictionary,
 * negative with e set if the entry is malformed or not allowed.
 */
static int bus_read_option_entry(sd_bus_message *m, const BusOption *options, size_t n, bool *seen, GmemError *e) {
        const char *key;
        size_t i;
        int r;

        r = sd_bus_message_enter_container(m, 'e', "sv");
        if (r < 0)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Malformed options: expected a{sv}");
        if (r == 0)
                return 0;
        r = sd_bus_message_read_basic(m, 's', &key);
        if (r <= 0)     /* 0: no key where the entry's signature says there is one */
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Malformed option key");

        r = bus_option_find(options, n, key, &i);
        if (r < 0)
                return bus_option_unknown(options, n, key, e);
        if (seen[i])
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Option '%s' given twice", key);
        seen[i] = true;
        if (options[i].seen)
                *options[i].seen = true;

        r = bus_read_option_value(m, &options[i], e);
        if (r < 0)
                return r;

        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Malformed options");
        return 1;
}

int bus_read_string(sd_bus_message *m, const char **ret) {
        int r = sd_bus_message_read_basic(m, 's', ret);
        return r == 0 ? -EBADMSG : r;
}

int bus_read_options(sd_bus_message *m, const BusOption *options, size_t n, GmemError *e) {
        bool seen[16] = {};
        int r;

        if (n > ELEMENTSOF(seen))
                return gmem_error_set_errno(e, E2BIG, "Option table too large");

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Malformed options: expected a{sv}");

        /* Asking whether the array is done is cheaper than a failed enter: most calls pass no options. */
        for (;;) {
                r = sd_bus_message_at_end(m, false);
                if (r < 0)
                        return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Malformed options");
                if (r > 0)
                        break;
                r = bus_read_option_entry(m, options, n, seen, e);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
        }

        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Malformed options");
        return 0;
}

/* Whether uid is the hypervisor uid of any VM. */
static bool uid_is_hypervisor(const Manager *m, uid_t uid) {
        const Vm *vm;

        HASHMAP_FOREACH(vm, m->vms, i)
                if (vm->has_uid && vm->uid == uid)
                        return true;
        return false;
}

static bool verb_hands_out_views(PolicyVerb verb) {
        return verb == POLICY_VERB_GET_FD || verb == POLICY_VERB_ATTACH || verb == POLICY_VERB_MIGRATE;
}

static bool vm_is_hypervisor(const Vm *vm, uid_t uid) {
        return vm && vm->has_uid && vm->uid == uid;
}

/* The first object in t the class does not reach, named into buf; false if it reaches them all. */
static bool target_out_of_reach(const PolicyClass *class, uid_t uid, const BusTarget *t, char *buf, size_t size) {
        if (!t)
                return false;
        if (t->vm && !policy_class_reaches(class, uid, t->vm->creator)) {
                (void) snprintf(buf, size, "VM '%s'", t->vm->name);
                return true;
        }
        if (t->target && !policy_class_reaches(class, uid, t->target->creator)) {
                (void) snprintf(buf, size, "VM '%s'", t->target->name);
                return true;
        }
        if (t->region && !policy_class_reaches(class, uid, t->region->creator)) {
                (void) snprintf(buf, size, "region '%s'", t->region->name);
                return true;
        }
        return false;
}

/* The VM in t a hypervisor uid may not have views of handed to it, named into buf; false if none. */
static bool target_not_hypervised(uid_t uid, const BusTarget *t, char *buf, size_t size) {
        if (!t)
                return false;
        if (t->vm && !vm_is_hypervisor(t->vm, uid)) {
                (void) snprintf(buf, size, "VM '%s'", t->vm->name);
                return true;
        }
        if (t->target && !vm_is_hypervisor(t->target, uid)) {
                (void) snprintf(buf, size, "VM '%s'", t->target->name);
                return true;
        }
        return false;
}

int bus_authorize(sd_bus_message *msg, Manager *m, PolicyVerb verb, const BusTarget *t, Actor *ret_caller,
                  sd_bus_error *ret_error) {
        BusContext *ctx = bus_context_of(m, sd_bus_message_get_bus(msg));
        const PolicyClass *class;
        const BusCreds *bc;
        char what[GMEM_NAME_MAX + 16] = "";
        Caller caller;
        int r;

        r = ctx ? bus_creds_get(ctx->creds, msg, &bc) : -ENOTCONN;
        if (r == 0)
                return 0;
        if (r < 0)
                return sd_bus_error_setf(ret_error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "Access denied: cannot learn the caller's credentials for '%s': %s",
                                         policy_verb_to_string(verb), strerror(-r));

        caller = (Caller) { .uid = bc->uid, .gids = bc->gids, .n_gids = bc->n_gids };
        class = policy_match(m->policy, &caller);

        /* A VM's own hypervisor may fetch that VM's views, and nothing else unless its class says so. */
        if (verb == POLICY_VERB_GET_FD && t && vm_is_hypervisor(t->vm, bc->uid)) {
                *ret_caller = (Actor) { .uid = bc->uid, .class = class };
                return 1;
        }

        if (!class)
                return sd_bus_error_setf(ret_error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "Access denied: uid %u is in no class of the policy and may not %s%s%s%s",
                                         (unsigned) bc->uid, policy_verb_to_string(verb), t && t->vm ? " for VM '" : "",
                                         t && t->vm ? t->vm->name : "", t && t->vm ? "'" : "");
        if (!policy_class_allows(class, verb))
                return sd_bus_error_setf(ret_error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "Access denied: uid %u (class '%s') may not %s%s%s%s", (unsigned) bc->uid,
                                         class->name, policy_verb_to_string(verb), t && t->vm ? " for VM '" : "",
                                         t && t->vm ? t->vm->name : "", t && t->vm ? "'" : "");
        if (target_out_of_reach(class, bc->uid, t, what, sizeof(what)))
                return sd_bus_error_setf(ret_error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "Access denied: uid %u (class '%s', scope own) may not %s %s: another uid "
                                         "created it", (unsigned) bc->uid, class->name, policy_verb_to_string(verb),
                                         what);
        /* A hypervisor uid reaches only the views of its own VMs, whatever its class. */
        if (verb_hands_out_views(verb) && uid_is_hypervisor(m, bc->uid) &&
            target_not_hypervised(bc->uid, t, what, sizeof(what)))
                return sd_bus_error_setf(ret_error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "Access denied: uid %u is the hypervisor uid of a VM and may not %s %s, "
                                         "which is not registered with that uid", (unsigned) bc->uid,
                                         policy_verb_to_string(verb), what);

        *ret_caller = (Actor) { .uid = bc->uid, .class = class };
        return 1;
}

bool bus_emitting(const Manager *m) {
        const BusContext *ctx = m->hooks_userdata;
        return ctx && ctx->emitting > 0;
}

bool bus_caller_peek(Manager *m, sd_bus *bus, sd_bus_message *msg, Actor *ret) {
        BusContext *ctx;
        const BusCreds *bc;

        if (!msg)
                msg = bus ? sd_bus_get_current_message(bus) : NULL;
        if (!msg)
                return false;
        ctx = bus_context_of(m, sd_bus_message_get_bus(msg));
        if (!ctx || bus_creds_peek(ctx->creds, msg, &bc) <= 0)
                return false;
        *ret = (Actor) {
                .uid = bc->uid,
                .class = policy_match(m->policy, &(Caller) { .uid = bc->uid, .gids = bc->gids, .n_gids = bc->n_gids }),
        };
        return true;
}

bool bus_actor_sees(const Actor *a, uid_t creator) {
        if (!a || !a->class)
                return false;
        if (creator == a->uid)
                return true;
        return a->class->scope == POLICY_SCOPE_ALL && policy_class_allows(a->class, POLICY_VERB_LIST);
}

bool bus_actor_sees_vm(const Actor *a, const Vm *vm) {
        return a && (vm_is_hypervisor(vm, a->uid) || bus_actor_sees(a, vm->creator));
}

bool bus_actor_sees_migration(const Actor *a, Manager *m, const Migration *mig) {
        const char *names[] = { mig->source_name, mig->target_name };

        if (a && a->class && a->class->scope == POLICY_SCOPE_ALL && policy_class_allows(a->class, POLICY_VERB_LIST))
                return true;
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                const Vm *vm = manager_get_vm(m, names[i]);

                if (!vm || !bus_actor_sees_vm(a, vm))
                        return false;
        }
        return true;
}

int bus_node_list(Manager *m, sd_bus *bus, Hashmap *objects, BusPathFunc path, BusSeenFunc seen,
                  char ***ret_nodes) {
        size_t n = 0;
        bool known;
        Actor a;
        void *o;
        char **l;

        l = calloc(hashmap_size(objects) + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        known = bus_caller_peek(m, bus, NULL, &a);
        HASHMAP_FOREACH(o, objects, i) {
                int r;

                if (!bus_emitting(m) && (!known || !seen(o, &a, m)))
                        continue;
                r = path(o, &l[n]);
                if (r < 0) {
                        while (n > 0)
                                free(l[--n]);
                        free(l);
                        return r;
                }
                n++;
        }
        *ret_nodes = l;
        return 1;
}

int bus_emit_property_changed(sd_bus *bus, const char *path, const char *interface, const char *property,
                              const char *signature, BusAppendFunc append, const void *object) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *s = NULL;
        int r;

        if (!bus)
                return -ENOTCONN;
        r = sd_bus_message_new_signal(bus, &s, path, "org.freedesktop.DBus.Properties", "PropertiesChanged");
        if (r < 0)
                return r;
        r = sd_bus_message_append(s, "s", interface);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(s, 'a', "{sv}");
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(s, 'e', "sv");
        if (r < 0)
                return r;
        r = sd_bus_message_append(s, "s", property);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(s, 'v', signature);
        if (r < 0)
                return r;
        r = append(s, object);
        if (r < 0)
                return r;
        r = sd_bus_message_close_container(s);
        if (r < 0)
                return r;
        r = sd_bus_message_close_container(s);
        if (r < 0)
                return r;
        r = sd_bus_message_close_container(s);
        if (r < 0)
                return r;
        r = sd_bus_message_append(s, "as", 0);
        if (r < 0)
                return r;
        return sd_bus_send(bus, s, NULL);
}

int region_bus_path(const Region *reg, char **ret) {
        return sd_bus_path_encode(BUS_REGION_PREFIX, reg->name, ret);
}

int vm_bus_path(const Vm *vm, char **ret) {
        return sd_bus_path_encode(BUS_VM_PREFIX, vm->name, ret);
}

int migration_bus_path(const Migration *mig, char **ret) {
        char *p;

        if (asprintf(&p, BUS_MIGRATION_PREFIX "/%" PRIu64, mig->id) < 0)
                return -ENOMEM;
        *ret = p;
        return 0;
}
