/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-dbus.c — fuzzes gmemd's D-Bus method handlers in-process. Each input
 * is a short program of method calls: the first byte picks one of a few
 * policies, then every call is decoded from the bytes that follow — which
 * method or property call on which object, and its arguments, of the right
 * types or deliberately wrong ones (names at and past the 64-character
 * limit or with bad characters, sizes and offsets at page and 2^46 and 2^64
 * boundaries, option dictionaries with known and unknown keys and
 * wrongly-typed values, object paths, fds attached). The calls go over a
 * socketpair to gmemd's objects, in one of two set-ups the first byte's
 * high bit chooses:
 *   - a direct connection: gmemd's end is adopted by its direct server
 *     (direct_server_adopt(), as a client accepted on its socket is) and
 *     run by the server's event loop; the caller is authorized from the
 *     socket's peer credentials (root here, so the policy decides), the fds
 *     it has not read are counted, and a caller leaving hangs up and
 *     connects again, or stops reading until the next event (so that
 *     answers with fds are refused once too many are unread);
 *   - gmemd as a bus client, as on a real host, its objects registered by
 *     manager_bus_register(): the harness's end plays the
 *     bus (fuzz-dbus-bus.c), calls come from four callers with different
 *     uids, and gmemd asks for their credentials, parking their calls until
 *     the answer, which the input makes prompt, late, an error or garbage.
 * Events that do not come from a caller are in the program too: a VM's
 * leader process exiting (what the daemon's pidfd watch calls), the policy
 * file changing before a Reload, the bus answering a question it left open,
 * and a caller disconnecting (in direct mode: hanging up, and a new
 * connection in its place).
 *
 * After every call the connection must be up and the call answered — in
 * bus mode, every call of a caller whose credentials gmemd has, in the
 * order sent; calls of callers it could not learn may be dropped; a deaf
 * direct caller's once it reads again.
 * fuzz-dbus-check.c then checks the reply against the call and the model
 * against itself. After every input all of it is torn down and the
 * process must hold the same fds as before.
 *
 * Each input starts from a new manager and a new connection, so a run is
 * deterministic. Memory a call would really allocate (populate, Allocate)
 * is capped per call and per input; sizes that validation refuses are sent
 * as they are.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "bus-direct.h"
#include "bus-util.h"
#include "fuzz-dbus.h"
#include "fuzz.h"
#include "manager-dbus.h"
#include "manager.h"
#include "migration.h"
#include "policy.h"
#include "region.h"
#include "usage.h"
#include "view.h"
#include "vm.h"

#define CALLS_MAX 256         /* enough to finish more migrations than are kept */
#define MIB (UINT64_C(1) << 20)
#define POPULATE_MAX (16 * MIB)     /* per call that really allocates */
#define INPUT_BUDGET (64 * MIB)     /* per input */
#define LONG_STRING_MAX 16384

/* --- policies: the first byte of an input picks one --- */

static const char *const policies[] = {
        /* The built-in one: root may do everything. */
        "{\"version\":1,\"classes\":[{\"name\":\"admin\",\"match\":{\"uids\":[0],\"groups\":[\"gmem-admin\"]},"
        "\"verbs\":[\"all\"],\"scope\":\"all\",\"backends\":[\"all\"]}]}",
        /* Quotas and a size limit. */
        "{\"version\":1,\"classes\":[{\"name\":\"tight\",\"match\":{\"uids\":[0]},\"verbs\":[\"all\"],\"scope\":\"all\","
        "\"backends\":[\"memfd\",\"secret\"],\"max_region_size\":\"16M\","
        "\"quota\":{\"bytes\":\"24M\",\"regions\":3,\"vms\":2,\"views\":3}}]}",
        /* Some verbs only. */
        "{\"version\":1,\"classes\":[{\"name\":\"some\",\"match\":{\"gids\":[4242],\"uids\":[0]},"
        "\"verbs\":[\"list\",\"create-region\",\"register-vm\",\"attach\",\"discard\"],\"scope\":\"all\",\"backends\":[\"memfd\"]}]}",
        /* Root is in no class: everything is denied, except GetFd by a VM's own uid. Scope own: uid 4242
         * alone creates, so its lists still list everything. */
        "{\"version\":1,\"classes\":[{\"name\":\"other\",\"match\":{\"uids\":[4242]},\"verbs\":[\"all\"]}]}",
        /* An operator without get-fd and migrate: GetFd works for VMs registered with uid 0. */
        "{\"version\":1,\"classes\":[{\"name\":\"operator\",\"match\":{\"uids\":[0]},\"verbs\":[\"list\","
        "\"create-region\",\"destroy-region\",\"register-vm\",\"unregister-vm\",\"attach\",\"detach\","
        "\"discard\",\"set-attributes\",\"reload\"],\"scope\":\"all\",\"backends\":[\"all\"],\"quota\":{\"views\":4}}]}",
};

/* --- the method table --- */

#define MGR BUS_IFACE_MANAGER
#define PROPS "org.freedesktop.DBus.Properties"
#define A(...) { __VA_ARGS__ }, (sizeof((ArgKind[]) { __VA_ARGS__ }) / sizeof(ArgKind))
#define NOARGS { 0 }, 0

static const Method methods[] = {
        { "CreateRegion",        PATH_MANAGER,   MGR, A(ARG_NAME, ARG_SIZE, ARG_CREATE_OPTS), REPLY_REGION_PATH, -1, 0 },
        { "DestroyRegion",       PATH_MANAGER,   MGR, A(ARG_NAME), REPLY_NONE, -1, 0 },
        { "GetRegion",           PATH_MANAGER,   MGR, A(ARG_NAME), REPLY_REGION_PATH, -1, 0 },
        { "ListRegions",         PATH_MANAGER,   MGR, NOARGS, REPLY_LIST_REGIONS, -1, -1 },
        { "RegisterVm",          PATH_MANAGER,   MGR, A(ARG_NAME, ARG_VM_OPTS), REPLY_VM_PATH, 0, -1 },
        { "UnregisterVm",        PATH_MANAGER,   MGR, A(ARG_NAME), REPLY_NONE, 0, -1 },
        { "GetVm",               PATH_MANAGER,   MGR, A(ARG_NAME), REPLY_VM_PATH, 0, -1 },
        { "ListVms",             PATH_MANAGER,   MGR, NOARGS, REPLY_LIST_VMS, -1, -1 },
        { "Attach",              PATH_MANAGER,   MGR, A(ARG_NAME, ARG_NAME, ARG_ACCESS, ARG_ATTACH_OPTS), REPLY_VIEW_FD, 0, 1 },
        { "Detach",              PATH_MANAGER,   MGR, A(ARG_NAME, ARG_NAME), REPLY_NONE, 0, 1 },
        { "GetFd",               PATH_MANAGER,   MGR, A(ARG_NAME, ARG_NAME), REPLY_VIEW_FD, 0, 1 },
        { "BeginMigration",      PATH_MANAGER,   MGR, A(ARG_NAME, ARG_NAME, ARG_NO_OPTS), REPLY_MIGRATION, -1, -1 },
        { "CommitMigration",     PATH_MANAGER,   MGR, A(ARG_MIGRATION), REPLY_NONE, -1, -1 },
        { "AbortMigration",      PATH_MANAGER,   MGR, A(ARG_MIGRATION), REPLY_NONE, -1, -1 },
        { "ListMigrations",      PATH_MANAGER,   MGR, NOARGS, REPLY_LIST_MIGRATIONS, -1, -1 },
        { "Discard",             PATH_MANAGER,   MGR, A(ARG_NAME, ARG_OFFSET, ARG_LENGTH), REPLY_NONE, -1, 0 },
        { "Allocate",            PATH_MANAGER,   MGR, A(ARG_NAME, ARG_OFFSET, ARG_ALLOC_LENGTH), REPLY_NONE, -1, 0 },
        { "SetMemoryAttributes", PATH_MANAGER,   MGR, A(ARG_NAME, ARG_OFFSET, ARG_LENGTH, ARG_ATTRIBUTE), REPLY_NONE, -1, 0 },
        { "Reload",              PATH_MANAGER,   MGR, NOARGS, REPLY_NONE, -1, -1 },
        { "Destroy",             PATH_REGION,    BUS_IFACE_REGION, NOARGS, REPLY_NONE, -1, -1 },
        { "Discard",             PATH_REGION,    BUS_IFACE_REGION, A(ARG_OFFSET, ARG_LENGTH), REPLY_NONE, -1, -1 },
        { "Allocate",            PATH_REGION,    BUS_IFACE_REGION, A(ARG_OFFSET, ARG_ALLOC_LENGTH), REPLY_NONE, -1, -1 },
        { "SetMemoryAttributes", PATH_REGION,    BUS_IFACE_REGION, A(ARG_OFFSET, ARG_LENGTH, ARG_ATTRIBUTE), REPLY_NONE, -1, -1 },
        { "Unregister",          PATH_VM,        BUS_IFACE_VM, NOARGS, REPLY_NONE, -1, -1 },
        { "Attach",              PATH_VM,        BUS_IFACE_VM, A(ARG_NAME, ARG_ACCESS, ARG_ATTACH_OPTS), REPLY_VIEW_FD, -1, 0 },
        { "Detach",              PATH_VM,        BUS_IFACE_VM, A(ARG_NAME), REPLY_NONE, -1, 0 },
        { "GetFd",               PATH_VM,        BUS_IFACE_VM, A(ARG_NAME), REPLY_VIEW_FD, -1, 0 },
        { "Commit",              PATH_MIGRATION, BUS_IFACE_MIGRATION, NOARGS, REPLY_NONE, -1, -1 },
        { "Abort",               PATH_MIGRATION, BUS_IFACE_MIGRATION, NOARGS, REPLY_NONE, -1, -1 },
        { "Get",                 PATH_ANY,       PROPS, A(ARG_INTERFACE, ARG_PROPERTY), REPLY_NONE, -1, -1 },
        { "GetAll",              PATH_ANY,       PROPS, A(ARG_INTERFACE), REPLY_NONE, -1, -1 },
        { "Set",                 PATH_ANY,       PROPS, A(ARG_INTERFACE, ARG_PROPERTY, ARG_VALUE), REPLY_NONE, -1, -1 },
        { "Introspect",          PATH_ANY,       "org.freedesktop.DBus.Introspectable", NOARGS, REPLY_NONE, -1, -1 },
        { "GetManagedObjects",   PATH_ANY,       "org.freedesktop.DBus.ObjectManager", NOARGS, REPLY_NONE, -1, -1 },
        { "Ping",                PATH_ANY,       "org.freedesktop.DBus.Peer", NOARGS, REPLY_NONE, -1, -1 },
        /* Last, so that the committed corpus still picks the methods it did. */
        { "AdoptRegion",         PATH_MANAGER,   MGR, A(ARG_NAME, ARG_FD, ARG_ADOPT_OPTS), REPLY_REGION_PATH, -1, 0 },
};

/* --- value tables --- */

static const char *const names_common[] = { "a", "b", "c", "vm-0", "r.1" };
static const char *const names_special[] = {
        "", "-", ".", "..", "_", "0", "A_b-9.z", "a/b", "a b", "a\tb", "\xc3\xa4", "a\xe2\x80\x8b", "a\x7f",
        "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn",        /* 63 */
        "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn",       /* 64 */
        "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn",      /* 65 */
        "%s%n%s", "a%", "\\", "'", "\"",
};
static const char *const accesses[] = { "ro", "rw", "RW", "r", "w", "rwx", "", "ro\n" };
static const char *const attributes[] = { "private", "shared", "Private", "", "secret", "shared " };
static const char *const backends[] = { "memfd", "hugetlb", "secret", "MEMFD", "", "memfd ", "kmod" };
static const char *const interfaces[] = {
        BUS_IFACE_MANAGER, BUS_IFACE_REGION, BUS_IFACE_VM, BUS_IFACE_MIGRATION, "", PROPS,
        "org.gmemd.Broker1.Nope", "org.freedesktop.DBus.ObjectManager",
};
static const char *const properties[] = {
        "Version", "Backends", "DefaultBackend", "TotalBytes", "AllocatedBytes", "Policy", "Name", "Id", "Size",
        "Backend", "Owner", "Views", "LeaderPID", "Uid", "Source", "Target", "State", "Regions",
        "Nope", "",
};
static const char *const paths_special[] = {
        "/", "/org", "/org/gmemd", BUS_REGION_PREFIX, BUS_VM_PREFIX, BUS_MIGRATION_PREFIX,
        BUS_MIGRATION_PREFIX "/0", BUS_MIGRATION_PREFIX "/01", BUS_MIGRATION_PREFIX "/1/2",
        BUS_MIGRATION_PREFIX "/18446744073709551615", BUS_MIGRATION_PREFIX "/18446744073709551616",
        BUS_MIGRATION_PREFIX "/99999999999999999999999", BUS_REGION_PREFIX "/_", BUS_REGION_PREFIX "/_2d",
        BUS_REGION_PREFIX "/_zz", BUS_VM_PREFIX "/a/b", BUS_PATH "/migration_",
};
static const uint64_t u64_boundaries[] = {
        0, 1, 4095, 4096, 4097, 8192, 2 * MIB, 2 * MIB + 4096, 16 * MIB, 16 * MIB + 4096,
        (UINT64_C(1) << 46) - 4096, UINT64_C(1) << 46, (UINT64_C(1) << 46) + 4096, UINT64_C(1) << 32,
        (UINT64_C(1) << 32) - 4096, UINT64_C(1) << 63, (UINT64_C(1) << 63) - 4096, UINT64_MAX - 4095,
        UINT64_MAX - 4096 + 1 - 4096, UINT64_MAX, UINT64_MAX - 1, INT64_MAX,
};

/* Option keys of every method: a key of one method is an unknown key to the others. */
typedef struct OptionKey {
        const char *key;
        char type;
} OptionKey;

static const OptionKey create_keys[] = {
        { "backend", 's' }, { "hugepage_size", 't' }, { "populate", 'b' }, { "owner", 's' },
};
static const OptionKey adopt_keys[] = { { "backend", 's' }, { "owner", 's' } };
static const OptionKey vm_keys[] = { { "leader_pid", 'u' }, { "uid", 'u' } };
static const OptionKey attach_keys[] = { { "offset", 't' }, { "length", 't' }, { "allocate", 'b' } };
static const OptionKey other_keys[] = {
        { "", 's' }, { "x", 'b' }, { "Backend", 's' }, { "populate\x01", 'b' }, { "offset ", 't' },
};

/* Types a wrong value may have. */
static const char *const wrong_types[] = { "s", "t", "u", "b", "o", "h", "a{sv}", "as", "v", "y", "i", "d", "g",
                                           "(st)", "ay", "n", "x", "q" };

/* --- the harness --- */

typedef struct Harness Harness;

/* A call sent expecting a reply. */
typedef struct Ticket {
        Harness *h;
        unsigned caller;
        unsigned answered;          /* 0, or the how-manieth reply it got */
        bool dropped;               /* gmemd could not learn its caller's credentials: no reply is due */
} Ticket;

struct Harness {
        FuzzInput in;
        sd_bus *daemon;             /* gmemd's end, in bus mode */
        sd_event *event;            /* in direct mode: gmemd's loop, which runs its end */
        DirectServer *direct;       /* in direct mode: gmemd's direct server, which owns its end */
        sd_bus *peer;               /* the callers' end (and in bus mode, the bus) */
        bool bus_mode;
        bool deaf;                  /* direct mode: the peer sends but reads nothing until the next event */
        FakeBus fb;
        Manager *m;
        Ticket tickets[CALLS_MAX];
        size_t n_tickets;
        unsigned n_answers;
        Ticket *current;            /* the call being made; its reply is kept in reply */
        sd_bus_message *reply;
        uint64_t budget;            /* bytes calls may still really allocate */
        int spare_fd;               /* attached to calls as an unexpected fd */
        bool debug;
};

/*
 * The policy files: one per policy, then one that does not parse and one
 * that does not exist. They are memfds, named by /proc/self/fd paths, so a
 * run leaves nothing behind, even when it stops at a failed check.
 */
#define POLICY_FILES (ELEMENTSOF(policies) + 2)
static char policy_paths[POLICY_FILES][64];
static int spare_fd = -EBADF;
static bool debug;
static bool check_order = true;

/* The fds open now; with list, also what they are (for the message of a failed check). */
static int count_fds(bool list) {
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;
        int n = 0;

        FUZZ_CHECK(d, "/proc/self/fd can be listed");
        while ((de = readdir(d))) {
                char path[sizeof("/proc/self/fd/") + sizeof(de->d_name)], target[256] = "";

                if (de->d_name[0] == '.' || atoi(de->d_name) == dirfd(d))
                        continue;
                n++;
                if (!list)
                        continue;
                (void) snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
                (void) !readlink(path, target, sizeof(target) - 1);
                fprintf(stderr, "  fd %s: %s\n", de->d_name, target);
        }
        closedir(d);
        return n;
}

static void trace(Harness *h, const char *fmt, ...) _printf_(2, 3);
static void trace(Harness *h, const char *fmt, ...) {
        va_list ap;

        if (!h->debug)
                return;
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
}

/* --- generators: bytes to values --- */

static const char *pick(Harness *h, const char *const *table, size_t n) {
        return table[fuzz_u8(&h->in) % n];
}

/* A string the caller frees. */
static char *gen_name(Harness *h) {
        uint8_t sel = fuzz_u8(&h->in);
        char *s;

        if (sel < 0xb0)
                return strdup(names_common[sel % ELEMENTSOF(names_common)]);
        if (sel < 0xf0)
                return strdup(names_special[sel % ELEMENTSOF(names_special)]);
        if (sel < 0xf8) {
                /* Long: a repeated character, up to LONG_STRING_MAX. */
                size_t n = fuzz_u16(&h->in) % LONG_STRING_MAX;
                s = malloc(n + 1);
                FUZZ_CHECK(s, "malloc()");
                memset(s, 'a' + sel % 8, n);
                s[n] = 0;
                return s;
        }
        /* Raw ASCII from the input, control characters included. */
        size_t n;
        const uint8_t *p = fuzz_bytes(&h->in, fuzz_u8(&h->in) % 80, &n);
        s = malloc(n + 1);
        FUZZ_CHECK(s, "malloc()");
        for (size_t i = 0; i < n; i++)
                s[i] = (char) ((p[i] & 0x7f) ?: 'a');
        s[n] = 0;
        return s;
}

static char *gen_string(Harness *h, ArgKind kind) {
        const char *const *table;
        size_t n;

        switch (kind) {
        case ARG_ACCESS:    table = accesses;   n = ELEMENTSOF(accesses);   break;
        case ARG_ATTRIBUTE: table = attributes; n = ELEMENTSOF(attributes); break;
        case ARG_INTERFACE: table = interfaces; n = ELEMENTSOF(interfaces); break;
        case ARG_PROPERTY:  table = properties; n = ELEMENTSOF(properties); break;
        default:
                return gen_name(h);
        }
        if (fuzz_u8(&h->in) < 0xe0)
                return strdup(pick(h, table, n));
        return gen_name(h);
}

static char *gen_backend(Harness *h) {
        if (fuzz_u8(&h->in) < 0xe0)
                return strdup(pick(h, backends, ELEMENTSOF(backends)));
        return gen_name(h);
}

static uint64_t gen_u64(Harness *h) {
        uint8_t sel = fuzz_u8(&h->in);

        switch (sel % 8) {
        case 0: case 1: case 2:
                return (uint64_t) fuzz_u8(&h->in) * 4096;          /* up to ~1 MiB, pages */
        case 3:
                return (uint64_t) fuzz_u16(&h->in) * 4096;         /* up to 256 MiB, pages */
        case 4:
                return u64_boundaries[fuzz_u8(&h->in) % ELEMENTSOF(u64_boundaries)];
        case 5:
                return fuzz_u64(&h->in);
        case 6:
                return fuzz_u8(&h->in);
        default:
                return (uint64_t) fuzz_u8(&h->in) * 2 * MIB;
        }
}

static uint32_t gen_u32(Harness *h, const char *key) {
        uint8_t sel = fuzz_u8(&h->in);

        if (streq(key, "leader_pid")) {
                /* Processes that exist whenever the harness runs, and ids no process has. */
                const uint32_t pids[] = { 0, 1, (uint32_t) getpid(), INT32_MAX, (uint32_t) INT32_MAX + 1,
                                          UINT32_MAX, 4194305, 1 };
                return pids[sel % ELEMENTSOF(pids)];
        }
        const uint32_t uids[] = { 0, 1, 1000, 65534, UINT32_MAX, UINT32_MAX - 1, 4242 };
        if (sel < 0xf0)
                return uids[sel % ELEMENTSOF(uids)];
        return fuzz_u32(&h->in);
}

static char *gen_path(Harness *h, PathKind kind) {
        _cleanup_free_ char *name = NULL;
        char *p = NULL;
        uint8_t sel;

        if (kind == PATH_ANY)
                kind = (PathKind) (fuzz_u8(&h->in) % 6);   /* 4, 5: special */
        switch (kind) {
        case PATH_MANAGER:
                return strdup(BUS_PATH);
        case PATH_REGION:
        case PATH_VM:
                name = gen_name(h);
                FUZZ_CHECK(sd_bus_path_encode(kind == PATH_REGION ? BUS_REGION_PREFIX : BUS_VM_PREFIX, name, &p) >= 0,
                           "any name encodes into an object path");
                return p;
        case PATH_MIGRATION:
                /* The first few ids, one of the latest four, or a special path. */
                sel = fuzz_u8(&h->in);
                if (sel < 0xc0) {
                        uint64_t id = sel < 0x60 ? sel % 5 : h->m->next_migration_id - 1 - sel % 4;
                        FUZZ_CHECK(asprintf(&p, BUS_MIGRATION_PREFIX "/%" PRIu64, id) >= 0, "asprintf()");
                        return p;
                }
                return strdup(pick(h, paths_special, ELEMENTSOF(paths_special)));
        default:
                return strdup(pick(h, paths_special, ELEMENTSOF(paths_special)));
        }
}

/* --- appending values --- */

/* One value of a basic or simple container type, made up from the input. */
static int append_typed(Harness *h, sd_bus_message *msg, const char *type) {
        _cleanup_free_ char *s = NULL;
        uint64_t v;
        int r;

        switch (type[0]) {
        case 's':
                s = gen_name(h);
                return sd_bus_message_append(msg, "s", s);
        case 'o':
                s = gen_path(h, PATH_ANY);
                return sd_bus_message_append(msg, "o", s);
        case 'g':
                return sd_bus_message_append(msg, "g", fuzz_u8(&h->in) & 1 ? "a{sv}" : "");
        case 't':
                /* A random t may land in a length that allocates: it comes out of the budget. */
                v = gen_u64(h) % POPULATE_MAX;
                if (v > h->budget)
                        v = h->budget;
                h->budget -= v;
                return sd_bus_message_append(msg, "t", v);
        case 'x':
                return sd_bus_message_append(msg, "x", (int64_t) gen_u64(h));
        case 'u':
                return sd_bus_message_append(msg, "u", gen_u32(h, "uid"));
        case 'i':
                return sd_bus_message_append(msg, "i", (int32_t) gen_u32(h, "leader_pid"));
        case 'b':
                return sd_bus_message_append(msg, "b", (int) (fuzz_u8(&h->in) & 1));
        case 'y':
                return sd_bus_message_append(msg, "y", fuzz_u8(&h->in));
        case 'n':
                return sd_bus_message_append(msg, "n", (int16_t) fuzz_u16(&h->in));
        case 'q':
                return sd_bus_message_append(msg, "q", fuzz_u16(&h->in));
        case 'd':
                return sd_bus_message_append(msg, "d", (double) fuzz_u64(&h->in));
        case 'h':
                return sd_bus_message_append(msg, "h", h->spare_fd);
        case 'v': {
                /* A variant of a known option type, or a variant in a variant. */
                const char *inner = fuzz_u8(&h->in) & 1 ? "v" : pick(h, wrong_types, 5);
                if (inner[0] == 'v')
                        return sd_bus_message_append(msg, "v", "v", "s", "memfd");
                r = sd_bus_message_open_container(msg, 'v', inner);
                if (r < 0)
                        return r;
                r = append_typed(h, msg, inner);
                if (r < 0)
                        return r;
                return sd_bus_message_close_container(msg);
        }
        case '(':
                s = gen_name(h);
                return sd_bus_message_append(msg, "(st)", s, gen_u64(h));
        case 'a':
                if (streq(type, "as")) {
                        s = gen_name(h);
                        return sd_bus_message_append(msg, "as", 2, s, "memfd");
                }
                if (streq(type, "ay"))
                        return sd_bus_message_append_array(msg, 'y', "gmem", 4);
                return sd_bus_message_append(msg, "a{sv}", 1, "backend", "s", "memfd");
        }
        return -EINVAL;
}

static void call_state_done(CallState *c) {
        for (size_t i = 0; i < ELEMENTSOF(c->strings); i++)
                free(c->strings[i]);
        free(c->path);
}

/* Appends an a{sv} of option keys, known and unknown, right and wrong types. */
static int append_options(Harness *h, sd_bus_message *msg, ArgKind kind, CallState *c) {
        const OptionKey *own = NULL;
        size_t n_own = 0, n;
        int r;

        switch (kind) {
        case ARG_CREATE_OPTS: own = create_keys; n_own = ELEMENTSOF(create_keys); break;
        case ARG_ADOPT_OPTS:  own = adopt_keys;  n_own = ELEMENTSOF(adopt_keys);  break;
        case ARG_VM_OPTS:     own = vm_keys;     n_own = ELEMENTSOF(vm_keys);     break;
        case ARG_ATTACH_OPTS: own = attach_keys; n_own = ELEMENTSOF(attach_keys); break;
        default: break;
        }

        r = sd_bus_message_open_container(msg, 'a', "{sv}");
        if (r < 0)
                return r;
        n = fuzz_u8(&h->in) % 6;
        for (size_t i = 0; i < n; i++) {
                uint8_t sel = fuzz_u8(&h->in), how = fuzz_u8(&h->in);
                const OptionKey *k;

                if (n_own > 0 && sel < 0xc0)
                        k = &own[sel % n_own];
                else {
                        /* Another method's key, or one nobody knows. */
                        static const OptionKey *const all[] = { create_keys, vm_keys, attach_keys, other_keys };
                        static const size_t n_all[] = { ELEMENTSOF(create_keys), ELEMENTSOF(vm_keys),
                                                        ELEMENTSOF(attach_keys), ELEMENTSOF(other_keys) };
                        size_t t = sel % 4;
                        k = &all[t][(sel >> 2) % n_all[t]];
                }

                r = sd_bus_message_open_container(msg, 'e', "sv");
                if (r < 0)
                        return r;
                r = sd_bus_message_append(msg, "s", k->key);
                if (r < 0)
                        return r;

                if (how >= 0xc8) {
                        const char *t = pick(h, wrong_types, ELEMENTSOF(wrong_types));
                        r = sd_bus_message_open_container(msg, 'v', t);
                        if (r >= 0)
                                r = append_typed(h, msg, t);
                        if (r >= 0)
                                r = sd_bus_message_close_container(msg);
                } else if (k->type == 's') {
                        _cleanup_free_ char *s = streq(k->key, "backend") ? gen_backend(h) : gen_name(h);
                        r = sd_bus_message_append(msg, "v", "s", s);
                } else if (k->type == 'b') {
                        bool b = how & 1;
                        if (streq(k->key, "populate") && b && kind == ARG_CREATE_OPTS) {
                                /* Populating really allocates: within the budget only, and small. */
                                if (c->size > POPULATE_MAX && c->size <= REGION_SIZE_MAX)
                                        b = false;
                                else if (c->size <= REGION_SIZE_MAX && c->size > h->budget)
                                        b = false;
                                else if (c->size <= REGION_SIZE_MAX)
                                        h->budget -= c->size;
                        }
                        r = sd_bus_message_append(msg, "v", "b", (int) b);
                } else if (k->type == 'u')
                        r = sd_bus_message_append(msg, "v", "u", gen_u32(h, k->key));
                else
                        r = sd_bus_message_append(msg, "v", "t", gen_u64(h));
                if (r < 0)
                        return r;
                r = sd_bus_message_close_container(msg);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(msg);
}

static int append_arg(Harness *h, sd_bus_message *msg, ArgKind kind, size_t pos, CallState *c) {
        uint64_t v;

        switch (kind) {
        case ARG_NAME: case ARG_ACCESS: case ARG_ATTRIBUTE: case ARG_INTERFACE: case ARG_PROPERTY:
                free(c->strings[pos]);
                c->strings[pos] = gen_string(h, kind);
                return sd_bus_message_append(msg, "s", c->strings[pos]);
        case ARG_SIZE:
                c->size = gen_u64(h);
                return sd_bus_message_append(msg, "t", c->size);
        case ARG_OFFSET:
        case ARG_LENGTH:
                return sd_bus_message_append(msg, "t", gen_u64(h));
        case ARG_ALLOC_LENGTH:
                /* Only lengths validation refuses (over 2^46) may be large; the rest come out of the budget. */
                v = gen_u64(h);
                if (v <= REGION_SIZE_MAX) {
                        if (v > POPULATE_MAX)
                                v = POPULATE_MAX;
                        if (v > h->budget)
                                v = UINT64_MAX;
                        else
                                h->budget -= v;
                }
                return sd_bus_message_append(msg, "t", v);
        case ARG_MIGRATION: {
                _cleanup_free_ char *p = gen_path(h, PATH_MIGRATION);
                return sd_bus_message_append(msg, "o", p);
        }
        case ARG_CREATE_OPTS: case ARG_VM_OPTS: case ARG_ATTACH_OPTS: case ARG_NO_OPTS: case ARG_ADOPT_OPTS:
                return append_options(h, msg, kind, c);
        case ARG_FD:
                /* A memfd: AdoptRegion must refuse it and keep nothing, which the fd count after each input checks. */
                return sd_bus_message_append(msg, "h", h->spare_fd);
        case ARG_VALUE:
                return append_typed(h, msg, "v");
        default:
                return -EINVAL;
        }
}

/* --- the connection --- */

static int on_reply(sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Ticket *t = userdata;
        Harness *h = t->h;

        /*
         * Calls of one caller are answered in the order they were sent.
         * GMEM_FUZZ_NO_ORDER_CHECK=1 turns this off, to look past a known
         * overtaking bug for others.
         */
        for (Ticket *later = t + 1; check_order && later < h->tickets + h->n_tickets; later++)
                FUZZ_CHECK(later->caller != t->caller || !later->answered,
                           "call %zu of caller %u is answered after its call %zu: a later call overtook it",
                           (size_t) (t - h->tickets), t->caller, (size_t) (later - h->tickets));
        FUZZ_CHECK(!t->answered, "a call is answered once");
        t->answered = ++h->n_answers;
        if (t == h->current) {
                h->reply = sd_bus_message_unref(h->reply);
                h->reply = sd_bus_message_ref(reply);
        } else
                trace(h, "  (call %zu answered late: %s)\n", (size_t) (t - h->tickets),
                      sd_bus_message_is_method_error(reply, NULL) ? sd_bus_message_get_error(reply)->name : "ok");
        return 0;
}

/* After the ends settled: a call is due an answer unless gmemd could not learn its caller. */
static void check_tickets(Harness *h) {
        for (Ticket *t = h->tickets; t < h->tickets + h->n_tickets; t++) {
                /* A deaf direct caller has its answers waiting in the socket, unread. */
                CallerState st = h->bus_mode ? h->fb.state[t->caller] : h->deaf ? CALLER_PENDING : CALLER_KNOWN;

                if (t->answered || t->dropped)
                        continue;
                if (st == CALLER_REFUSED || st == CALLER_UNKNOWN)
                        t->dropped = true;      /* its parked calls were let go */
                else
                        FUZZ_CHECK(st == CALLER_PENDING, "every call of a caller gmemd knows is answered (call %zu "
                                   "of %s)", (size_t) (t - h->tickets), fake_bus_callers[t->caller]);
        }
}

/* One step of gmemd's end: in direct mode, one iteration of its event loop. */
static int daemon_step(Harness *h) {
        return h->bus_mode ? sd_bus_process(h->daemon, NULL) : sd_event_run(h->event, 0);
}

/* Runs both ends (gmemd's alone once the peer has hung up) until neither has anything left to do. */
static void pump(Harness *h) {
        for (unsigned i = 0; i < 1000000; i++) {
                int a = daemon_step(h);
                int b = h->peer && !h->deaf ? sd_bus_process(h->peer, NULL) : 0;

                if (a < 0 || b < 0)
                        return;     /* a connection went away; the caller finds out */
                if (a == 0 && b == 0)
                        return;
        }
        FUZZ_CHECK(false, "the connection settles");
}

/* Both ends are up: in direct mode, gmemd's server holds exactly the one connection. */
static bool connection_up(Harness *h) {
        if (!h->peer || sd_bus_is_open(h->peer) <= 0)
                return false;
        if (h->bus_mode)
                return sd_bus_is_open(h->daemon) > 0;
        return direct_server_connections(h->direct) == 1;
}

static void connect_pair(Harness *h) {
        static const sd_id128_t id = SD_ID128_MAKE(67,6d,65,6d,64,2d,66,75,7a,7a,2d,64,62,75,73,31);
        int fds[2];

        FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) >= 0, "socketpair()");
        FUZZ_CHECK(sd_bus_new(&h->peer) >= 0 && sd_bus_set_fd(h->peer, fds[1], fds[1]) >= 0, "the peer end is made");
        if (h->bus_mode) {
                /* The peer is the bus: it authenticates gmemd, which says Hello. */
                FUZZ_CHECK(sd_bus_new(&h->daemon) >= 0 && sd_bus_set_fd(h->daemon, fds[0], fds[0]) >= 0,
                           "gmemd's end is made");
                FUZZ_CHECK(sd_bus_set_bus_client(h->daemon, 1) >= 0 && sd_bus_set_server(h->peer, 1, id) >= 0 &&
                           fake_bus_attach(&h->fb, h->peer, &h->in, h->debug) >= 0, "the peer plays the bus");
                FUZZ_CHECK(sd_bus_start(h->daemon) >= 0, "gmemd's end starts");
        } else
                /* As a client accepted on the direct socket is: the server makes gmemd's end of it. */
                FUZZ_CHECK(direct_server_adopt(h->direct, fds[0]) >= 0, "gmemd adopts its end as a direct connection");
        FUZZ_CHECK(sd_bus_start(h->peer) >= 0, "the peer's end starts");
        for (unsigned i = 0; i < 10000 && (sd_bus_is_ready(h->peer) <= 0 ||
                                           (h->bus_mode && sd_bus_is_ready(h->daemon) <= 0)); i++) {
                FUZZ_CHECK(daemon_step(h) >= 0, "gmemd's end authenticates");
                FUZZ_CHECK(sd_bus_process(h->peer, NULL) >= 0, "the peer authenticates");
        }
        FUZZ_CHECK(sd_bus_is_ready(h->peer) > 0 && (!h->bus_mode || sd_bus_is_ready(h->daemon) > 0),
                   "both ends are running");
        FUZZ_CHECK(connection_up(h), "gmemd serves the connection");
        FUZZ_CHECK(sd_bus_can_send(h->peer, SD_BUS_TYPE_UNIX_FD) > 0, "fds can be passed");
}

static void setup(Harness *h, unsigned policy) {
        GmemError e = GMEM_ERROR_INIT;

        FUZZ_CHECK(manager_new(NULL, &h->m) >= 0, "manager_new()");
        FUZZ_CHECK(policy_parse(policies[policy], strlen(policies[policy]), policy_paths[policy], &h->m->policy,
                                &e) >= 0, "policy %u parses: %s", policy, e.message);
        h->m->policy_path = strdup(policy_paths[policy]);   /* Reload reads the same policy */
        FUZZ_CHECK(h->m->policy_path, "strdup()");
        if (!h->bus_mode) {
                FUZZ_CHECK(sd_event_new(&h->event) >= 0, "sd_event_new()");
                FUZZ_CHECK(direct_server_new(h->m, h->event, &h->direct) >= 0, "direct_server_new()");
        }
        connect_pair(h);
        if (h->bus_mode) {
                FUZZ_CHECK(manager_bus_register(h->m, h->daemon) >= 0, "manager_bus_register()");
                /* fd flow control asks the bus a blocking question (GetConnectionStats) that the peer, run by
                 * this same thread, could never answer; it is tested against a real dbus-daemon in tests/load.
                 * A direct connection's asks the socket, and stays. */
                BusContext *ctx = h->m->hooks_userdata;
                ctx->fdflow = fdflow_free(ctx->fdflow);
        }
        pump(h);    /* AddMatch, in bus mode */
}

/* In direct mode, a caller leaving: the peer hangs up, gmemd frees the connection, a new one comes. */
static void direct_reconnect(Harness *h) {
        /* Whatever the old connection was still owed goes with it. */
        for (Ticket *t = h->tickets; t < h->tickets + h->n_tickets; t++)
                if (!t->answered)
                        t->dropped = true;
        h->peer = sd_bus_close_unref(h->peer);
        pump(h);
        FUZZ_CHECK(direct_server_connections(h->direct) == 0, "gmemd frees a direct connection that hung up");
        connect_pair(h);
}

static void teardown(Harness *h) {
        h->reply = sd_bus_message_unref(h->reply);
        fake_bus_done(&h->fb);
        /* The direct server, then the model: the model's bus context must go before the bus. */
        h->direct = direct_server_free(h->direct);
        h->m = manager_free(h->m);
        h->daemon = sd_bus_close_unref(h->daemon);
        h->peer = sd_bus_close_unref(h->peer);
        h->event = sd_event_unref(h->event);
}

/* --- one call --- */

/* Events from outside the bus, numbered after the methods. */
enum {
        EVENT_LEADER_EXIT,      /* a VM's leader process exits */
        EVENT_POLICY_FILE,      /* the policy file now holds another policy (for the next Reload) */
        EVENT_BUS_ANSWERS,      /* the bus answers a credentials question it left open */
        EVENT_CALLER_LEAVES,    /* a caller disconnects; in direct mode, or stops reading for a while */
        _EVENT_MAX,
};

static void run_event(Harness *h, unsigned event) {
        _cleanup_free_ char *name = NULL;
        unsigned p;
        Vm *vm;

        if (h->deaf) {
                /* Any event ends a deaf spell: the peer reads what waited for it. */
                trace(h, "the caller reads again\n");
                h->deaf = false;
                pump(h);
        }
        switch (event) {
        case EVENT_LEADER_EXIT:
                name = gen_name(h);
                vm = manager_get_vm(h->m, name);
                trace(h, "leader of VM '%s' exits%s\n", name, vm && vm->pidfd >= 0 ? "" : " (none)");
                if (!vm || vm->pidfd < 0)
                        return;     /* only a watched leader can exit */
                vm_leader_exited(vm);
                FUZZ_CHECK(vm->pidfd < 0 && vm->leader_pid == 0 && hashmap_size(vm->views) == 0 && !vm->migration,
                           "VM '%s' has no leader, no views and no migration after its leader exited", name);
                break;
        case EVENT_POLICY_FILE:
                p = fuzz_u8(&h->in) % POLICY_FILES;
                trace(h, "policy file is now policy %u\n", p);
                free(h->m->policy_path);
                h->m->policy_path = strdup(policy_paths[p]);
                FUZZ_CHECK(h->m->policy_path, "strdup()");
                break;
        case EVENT_BUS_ANSWERS:
                trace(h, "the bus answers\n");
                if (h->bus_mode)
                        fake_bus_answer_pending(&h->fb);
                break;
        case EVENT_CALLER_LEAVES:
                p = fuzz_u8(&h->in);
                if (h->bus_mode) {
                        trace(h, "caller %u leaves\n", p % FAKE_BUS_CALLERS);
                        fake_bus_caller_leaves(&h->fb, p);
                } else if (p & 0x80) {
                        /* Its calls still go out; the fds in gmemd's answers pile up unread, up to the limit. */
                        trace(h, "the caller stops reading\n");
                        h->deaf = true;
                } else {
                        trace(h, "the caller hangs up and connects again\n");
                        direct_reconnect(h);
                }
                break;
        }
        pump(h);    /* what the event caused: signals, parked calls dispatched */
        FUZZ_CHECK(connection_up(h), "the connection stays up");
        check_tickets(h);
        fuzz_check_model(h->m);
}

/* Returns false when the input should stop (the connection is gone). */
static bool run_call(Harness *h) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL;
        _cleanup_(call_state_done) CallState c = {};
        uint8_t op = fuzz_u8(&h->in), mode = fuzz_u8(&h->in);
        /* Mostly well-typed calls: shapes 0-4 right, 5-6 one argument wrong, 7 all random. */
        unsigned shape = mode & 7, flags = (mode >> 3) & 7;
        bool extra_fd = flags == 7, no_reply = flags == 6, drop_last = flags == 5;
        size_t wrong = fuzz_u8(&h->in);
        unsigned caller = h->bus_mode ? fuzz_u8(&h->in) % FAKE_BUS_CALLERS : 0;
        Ticket *t = NULL;
        int r;

        if (op % (ELEMENTSOF(methods) + _EVENT_MAX) >= ELEMENTSOF(methods)) {
                run_event(h, op % (ELEMENTSOF(methods) + _EVENT_MAX) - ELEMENTSOF(methods));
                return true;
        }
        c.method = &methods[op % (ELEMENTSOF(methods) + _EVENT_MAX)];
        c.path = gen_path(h, c.method->path);
        r = sd_bus_message_new_method_call(h->peer, &msg, NULL, c.path, c.method->interface, c.method->member);
        FUZZ_CHECK(r >= 0, "a method call to %s can be made: %s", c.path, strerror(-r));
        if (h->bus_mode)
                FUZZ_CHECK(sd_bus_message_set_sender(msg, fake_bus_callers[caller]) >= 0 &&
                           sd_bus_message_set_destination(msg, FAKE_BUS_DAEMON_NAME) >= 0, "the bus names the caller");
        trace(h, "%s%s%s.%s on %s (shape %u%s%s%s)\n", h->bus_mode ? fake_bus_callers[caller] : "",
              h->bus_mode ? " " : "", c.method->interface, c.method->member, c.path, shape,
              extra_fd ? ", extra fd" : "", no_reply ? ", no reply" : "", drop_last ? ", short" : "");

        if (shape == 7) {
                size_t n = fuzz_u8(&h->in) % 5;
                for (size_t i = 0; i < n && r >= 0; i++)
                        r = append_typed(h, msg, pick(h, wrong_types, ELEMENTSOF(wrong_types)));
        } else {
                size_t n = c.method->n_args - (drop_last && c.method->n_args > 0);
                c.typed = shape <= 4 && n == c.method->n_args;
                for (size_t i = 0; i < n && r >= 0; i++) {
                        if ((shape == 5 || shape == 6) && i == wrong % c.method->n_args)
                                r = append_typed(h, msg, pick(h, wrong_types, ELEMENTSOF(wrong_types)));
                        else
                                r = append_arg(h, msg, c.method->args[i], i, &c);
                }
        }
        if (r >= 0 && extra_fd)
                r = sd_bus_message_append(msg, "h", h->spare_fd);
        if (r < 0) {
                trace(h, "  (not sent: %s)\n", strerror(-r));
                return true;
        }

        h->reply = sd_bus_message_unref(h->reply);
        if (no_reply) {
                FUZZ_CHECK(sd_bus_message_set_expect_reply(msg, 0) >= 0, "set_expect_reply()");
                FUZZ_CHECK(sd_bus_send(h->peer, msg, NULL) >= 0, "the call is sent");
        } else {
                t = &h->tickets[h->n_tickets++];
                *t = (Ticket) { .h = h, .caller = caller };
                h->current = t;
                FUZZ_CHECK(sd_bus_call_async(h->peer, NULL, msg, on_reply, t, 0) >= 0, "the call is sent");
        }
        pump(h);
        h->current = NULL;

        FUZZ_CHECK(connection_up(h), "%s does not end the connection", c.method->member);
        check_tickets(h);
        if (h->reply)
                fuzz_check_reply(h->m, &c, h->reply, h->debug);
        else if (t)
                trace(h, "  (no answer: %s)\n", t->dropped ? "credentials refused" : "parked");
        fuzz_check_model(h->m);
        return true;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        check_order = !getenv("GMEM_FUZZ_NO_ORDER_CHECK");

        for (size_t i = 0; i < POLICY_FILES; i++) {
                const char *text = i < ELEMENTSOF(policies) ? policies[i] : "{\"version\":1,\"classes\":[";
                int fd;

                if (i == POLICY_FILES - 1) {
                        (void) snprintf(policy_paths[i], sizeof(policy_paths[i]), "/nonexistent/gmem-fuzz/policy.json");
                        continue;
                }
                fd = memfd_create("gmem-fuzz-policy", MFD_CLOEXEC);
                FUZZ_CHECK(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t) strlen(text), "policy %zu is written", i);
                (void) snprintf(policy_paths[i], sizeof(policy_paths[i]), "/proc/self/fd/%d", fd);
        }
        spare_fd = memfd_create("gmem-fuzz-spare", MFD_CLOEXEC);
        FUZZ_CHECK(spare_fd >= 0, "memfd_create()");

        /* A first run opens what stays open (NSS, caches); count fds after it. */
        static const uint8_t warmup[] = {
                0,                                      /* the built-in policy */
                0, 0, 0, 0, 0, 1, 0,                    /* CreateRegion a 4096 {} */
                4, 0, 0, 3, 0,                          /* RegisterVm vm-0 {} */
                8, 0, 0, 3, 0, 0, 1, 0,                 /* Attach vm-0 a rw {} */
                33, 0, 0, 0,                            /* GetManagedObjects */
        };
        (void) LLVMFuzzerTestOneInput(warmup, sizeof(warmup));
        debug = getenv("GMEM_FUZZ_DEBUG");
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Harness h = {
                .in = { .data = data, .size = size },
                .budget = INPUT_BUDGET,
                .spare_fd = spare_fd,
                .debug = debug,
        };

        int fds = count_fds(false);
        uint8_t first = fuzz_u8(&h.in);

        h.bus_mode = first & 0x80;
        setup(&h, (first & 0x7f) % ELEMENTSOF(policies));
        for (unsigned n = 0; n < CALLS_MAX && fuzz_left(&h.in) > 0; n++)
                if (!run_call(&h))
                        break;
        teardown(&h);

        if (count_fds(false) != fds)
                FUZZ_CHECK(count_fds(true) == fds, "every fd is closed after an input (%d were open before)", fds);
        return 0;
}
