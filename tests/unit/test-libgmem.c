/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-libgmem.c — libgmem's argument checks and error mapping, with no bus.
 *
 * A forked child plays the broker on one end of a socketpair, speaking D-Bus
 * peer to peer: it answers a few methods the way gmemd does (an fd for
 * Attach, a list for ListRegions, fds for BeginMigration) and every other
 * call with the error named by its first string argument ("err-Busy" gets
 * org.gmemd.Broker1.Error.Busy), or with Busy when there is none. So a call
 * that should have been refused locally shows up as -EBUSY instead of
 * -EINVAL, which proves the argument checks run before any bus traffic.
 * The same broker also listens on a socket of its own, standing in for
 * gmemd's direct socket: gmem_connect_direct() and gmem_connect()'s choice
 * between that socket and the bus are checked against it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "gmem-errors.h"
#include "libgmem-internal.h"
#include "parse.h"

static unsigned n_failed;

#define check(expr, ...)                                                        \
        do {                                                                    \
                if (!(expr)) {                                                  \
                        fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);    \
                        fprintf(stderr, __VA_ARGS__);                           \
                        fputc('\n', stderr);                                    \
                        n_failed++;                                             \
                }                                                               \
        } while (0)

/* ---- the fake broker ---- */

static int reply_memfd(sd_bus_message *m, int flags) {
        _cleanup_close_ int fd = memfd_create("test-view", MFD_CLOEXEC);
        _cleanup_close_ int view = -EBADF;
        char path[64];

        if (fd < 0 || ftruncate(fd, 65536) < 0)
                return -errno;
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        view = open(path, flags | O_CLOEXEC);
        if (view < 0)
                return -errno;
        return sd_bus_reply_method_return(m, "h", view);
}

/* Whether the a{sv} at m's read position has key; reads it to the end. */
static bool has_option(sd_bus_message *m, const char *key) {
        const char *k;
        bool found = false;

        if (sd_bus_message_enter_container(m, 'a', "{sv}") <= 0)
                return false;
        while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
                if (sd_bus_message_read(m, "s", &k) > 0 && streq(k, key))
                        found = true;
                if (sd_bus_message_skip(m, "v") < 0 || sd_bus_message_exit_container(m) < 0)
                        break;
        }
        return found;
}

/*
 * ListRegionsFull answers, call by call: two regions, one with a view; a
 * reply of the wrong type; UnknownMethod, as a broker from before it.
 */
static int reply_list_regions_full(sd_bus_message *m) {
        static unsigned calls;

        switch (calls++) {
        case 0:
                return sd_bus_reply_method_return(m, "a(sttssta(sss)o)", 2,
                                                  "ram", (uint64_t) 3, (uint64_t) 1 << 30, "memfd", "", (uint64_t) 8192,
                                                  1, "vm1", "rw", "active", "/org/gmemd/Broker1/region/ram",
                                                  "rom", (uint64_t) 4, (uint64_t) 4096, "secret", "vm1", (uint64_t) 0,
                                                  0, "/org/gmemd/Broker1/region/rom");
        case 1:
                return sd_bus_reply_method_return(m, "a(stsso)", 1, "ram", (uint64_t) 4096, "memfd", "",
                                                  "/org/gmemd/Broker1/region/ram");
        default:
                return sd_bus_reply_method_errorf(m, SD_BUS_ERROR_UNKNOWN_METHOD, "Unknown method ListRegionsFull");
        }
}

static int fake_method(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        const char *member = sd_bus_message_get_member(m), *first = NULL;
        char name[128];
        int r;

        if (!sd_bus_message_is_method_call(m, NULL, NULL))
                return 0;

        if (streq(member, "Attach")) {
                const char *vm, *region, *access;

                r = sd_bus_message_read(m, "sss", &vm, &region, &access);
                if (r < 0)
                        return r;
                if (strncmp(vm, "err-", 4) != 0)
                        return reply_memfd(m, streq(access, "ro") ? O_RDONLY : O_RDWR);
                first = vm;
        } else if (streq(member, "RegisterVm")) {
                const char *vm;

                r = sd_bus_message_read(m, "s", &vm);
                if (r < 0)
                        return r;
                /* "old-*": a broker from before the leader option, which refuses keys it does not know. */
                if (strncmp(vm, "old-", 4) == 0 && has_option(m, "leader"))
                        return sd_bus_reply_method_errorf(m, GMEM_ERROR_PREFIX "InvalidArgument",
                                                          "Unknown option 'leader'; known options: leader_pid, uid");
                if (strncmp(vm, "new-", 4) == 0)
                        return sd_bus_reply_method_return(m, "o", "/org/gmemd/Broker1/vm/_6e_65_77");
                first = vm;
        } else if (streq(member, "ListRegions"))
                return sd_bus_reply_method_return(m, "a(stsso)", 2,
                                                  "ram", (uint64_t) 1 << 30, "memfd", "", "/org/gmemd/Broker1/region/ram",
                                                  "rom", (uint64_t) 4096, "secret", "vm1", "/org/gmemd/Broker1/region/rom");
        else if (streq(member, "ListRegionsFull"))
                return reply_list_regions_full(m);
        else if (streq(member, "ListVmsFull"))
                return sd_bus_reply_method_return(m, "a(suua(sss)o)", 2,
                                                  "vm1", (uint32_t) 42, (uint32_t) 1000, 2, "ram", "rw", "active",
                                                  "rom", "ro", "pending", "/org/gmemd/Broker1/vm/vm1",
                                                  "vm2", (uint32_t) 0, UINT32_MAX, 0, "/org/gmemd/Broker1/vm/vm2");
        else if (streq(member, "BeginMigration")) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                _cleanup_close_ int fd = memfd_create("test-migration", MFD_CLOEXEC);

                if (fd < 0)
                        return -errno;
                r = sd_bus_message_new_method_return(m, &reply);
                if (r < 0)
                        return r;
                r = sd_bus_message_append(reply, "oa(sh)", "/org/gmemd/Broker1/migration/7", 2, "ram", fd, "rom", fd);
                if (r < 0)
                        return r;
                return sd_bus_send(NULL, reply, NULL);
        } else if (sd_bus_message_peek_type(m, NULL, NULL) > 0) {
                char type;

                r = sd_bus_message_peek_type(m, &type, NULL);
                if (r > 0 && (type == 's' || type == 'o'))
                        (void) sd_bus_message_read_basic(m, type, &first);
        }

        if (first && strncmp(first, "err-", 4) == 0) {
                const char *e = first + 4;

                if (strchr(e, '.'))
                        snprintf(name, sizeof(name), "%s", e);   /* a full name */
                else
                        snprintf(name, sizeof(name), GMEM_ERROR_PREFIX "%s", e);
                return sd_bus_reply_method_errorf(m, name, "message for %s", e);
        }
        return sd_bus_reply_method_errorf(m, GMEM_ERROR_PREFIX "Busy", "%s reached the broker", member);
}

static _Noreturn void run_fake_broker(int fd) {
        sd_bus *bus = NULL;
        sd_id128_t id;
        int r;

        r = sd_id128_randomize(&id);
        if (r >= 0)
                r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_fd(bus, fd, fd);
        if (r >= 0)
                r = sd_bus_set_server(bus, 1, id);
        if (r >= 0)
                r = sd_bus_negotiate_fds(bus, 1);
        if (r >= 0)
                r = sd_bus_add_filter(bus, NULL, fake_method, NULL);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0) {
                fprintf(stderr, "fake broker: %s\n", strerror(-r));
                _exit(1);
        }

        for (;;) {
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        break;   /* the client went away */
                if (r > 0)
                        continue;
                if (sd_bus_wait(bus, UINT64_MAX) < 0)
                        break;
        }
        _exit(0);
}

static GmemClient *connect_fake_broker(pid_t *ret_pid) {
        GmemClient *c = NULL;
        sd_bus *bus = NULL;
        int pair[2], r;
        pid_t pid;

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
                return NULL;
        pid = fork();
        if (pid < 0)
                return NULL;
        if (pid == 0) {
                close(pair[0]);
                run_fake_broker(pair[1]);
        }
        close(pair[1]);

        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_fd(bus, pair[0], pair[0]);
        if (r >= 0)
                r = sd_bus_negotiate_fds(bus, 1);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r >= 0)
                r = gmem_client_new_from_bus(bus, &c);
        sd_bus_unref(bus);
        if (r < 0) {
                fprintf(stderr, "connecting to the fake broker: %s\n", strerror(-r));
                return NULL;
        }
        *ret_pid = pid;
        return c;
}

/* A socket at path on which the fake broker answers n connections, each in a child of its own. */
static int listen_fake_broker(const char *path, unsigned n, pid_t *ret_pid) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;
        pid_t pid;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, strlen(path));
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, 8) < 0) {
                int r = -errno;

                close(fd);
                return r;
        }

        pid = fork();
        if (pid < 0) {
                close(fd);
                return -errno;
        }
        if (pid == 0) {
                for (unsigned i = 0; i < n; i++) {
                        int conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

                        if (conn < 0)
                                _exit(1);
                        if (fork() == 0) {
                                close(fd);
                                run_fake_broker(conn);
                        }
                        close(conn);
                }
                while (wait(NULL) > 0)
                        ;
                _exit(0);
        }
        close(fd);
        *ret_pid = pid;
        return 0;
}

static void test_broker_errors(GmemClient *c);

static void test_direct_socket(void) {
        char dir[] = "/tmp/test-libgmem.XXXXXX", path[128], missing[128], refused[128], nobus[160];
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        GmemRegionInfo *regions = NULL;
        GmemClient *c = NULL;
        size_t n = 0;
        pid_t pid = 0;
        int fd, status, r;

        if (!mkdtemp(dir)) {
                check(false, "mkdtemp: %s", strerror(errno));
                return;
        }
        snprintf(path, sizeof(path), "%s/private", dir);
        snprintf(missing, sizeof(missing), "%s/missing", dir);
        snprintf(refused, sizeof(refused), "%s/refused", dir);
        snprintf(nobus, sizeof(nobus), "unix:path=%s/no_bus_socket", dir);

        /* No bus anywhere: whatever gmem_connect() reaches is the direct socket. */
        setenv("DBUS_SYSTEM_BUS_ADDRESS", nobus, 1);

        r = listen_fake_broker(path, 2, &pid);
        check(r == 0, "the fake broker should listen on %s: %s", path, strerror(-r));
        if (r < 0)
                goto finish;

        r = gmem_connect_direct(path, &c);
        check(r == 0, "gmem_connect_direct(%s) should connect, got %s", path, strerror(-r));
        if (r == 0) {
                check(gmem_client_is_direct(c) == 1, "a gmem_connect_direct() client is direct");
                r = gmem_list_regions(c, &regions, &n);
                check(r == 0 && n == 2, "ListRegions over the direct socket gives two regions, got r=%d n=%zu", r, n);
                gmem_region_info_array_free(regions, n);
                test_broker_errors(c);
                c = gmem_client_unref(c);
        }

        setenv("GMEM_DIRECT_SOCKET", path, 1);
        r = gmem_connect(&c);
        check(r == 0, "gmem_connect() should take $GMEM_DIRECT_SOCKET, got %s", strerror(-r));
        if (r == 0) {
                check(gmem_client_is_direct(c) == 1, "gmem_connect() prefers the direct socket");
                r = gmem_list_regions(c, &regions, &n);
                check(r == 0 && n == 2, "ListRegions through gmem_connect() gives two regions, got r=%d", r);
                gmem_region_info_array_free(regions, n);
                c = gmem_client_unref(c);
        }
        if (waitpid(pid, &status, 0) == pid)
                check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the listening fake broker should exit cleanly");

        r = gmem_connect_direct(missing, &c);
        check(r == -ENOENT && !c, "no socket at the path: -ENOENT, got %s", strerror(-r));

        /* A socket nobody listens on. */
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        memcpy(sa.sun_path, refused, strlen(refused));   /* /tmp/test-libgmem.XXXXXX/refused fits */
        check(fd >= 0 && bind(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0, "bind %s: %s", refused, strerror(errno));
        r = gmem_connect_direct(refused, &c);
        check(r == -ECONNREFUSED && !c, "a socket nobody listens on: -ECONNREFUSED, got %s", strerror(-r));
        setenv("GMEM_DIRECT_SOCKET", refused, 1);
        r = gmem_connect(&c);
        check(r == -ENOENT && !c, "gmem_connect() goes on to the bus, which is missing too: -ENOENT, got %s",
              strerror(-r));
        if (fd >= 0)
                close(fd);

        setenv("GMEM_DIRECT_SOCKET", missing, 1);
        r = gmem_connect(&c);
        check(r == -ENOENT && !c, "no direct socket: gmem_connect() gives the bus's error, got %s", strerror(-r));

        r = gmem_connect_direct("", &c);
        check(r == -EINVAL && !c, "an empty path is -EINVAL, got %s", strerror(-r));
        memset(path, 'x', sizeof(path) - 1);
        path[sizeof(path) - 1] = 0;
        r = gmem_connect_direct(path, &c);
        check(r == -ENAMETOOLONG && !c, "a path longer than sun_path is -ENAMETOOLONG, got %s", strerror(-r));

finish:
        gmem_client_unref(c);
        unsetenv("GMEM_DIRECT_SOCKET");
        unsetenv("DBUS_SYSTEM_BUS_ADDRESS");
        snprintf(path, sizeof(path), "%s/private", dir);
        unlink(path);
        unlink(refused);
        rmdir(dir);
}

/* ---- the tests ---- */

static void test_error_mapping(void) {
        static const struct {
                const char *name;
                int errnum;
        } table[] = {
                { GMEM_ERROR_PREFIX "NoSuchRegion",        ENOENT       },
                { GMEM_ERROR_PREFIX "NoSuchVm",            ENOENT       },
                { GMEM_ERROR_PREFIX "NoSuchView",          ENOENT       },
                { GMEM_ERROR_PREFIX "NoSuchMigration",     ENOENT       },
                { GMEM_ERROR_PREFIX "RegionExists",        EEXIST       },
                { GMEM_ERROR_PREFIX "VmExists",            EEXIST       },
                { GMEM_ERROR_PREFIX "InvalidName",         EINVAL       },
                { GMEM_ERROR_PREFIX "InvalidSize",         EINVAL       },
                { GMEM_ERROR_PREFIX "InvalidRange",        ERANGE       },
                { GMEM_ERROR_PREFIX "InvalidArgument",     EINVAL       },
                { GMEM_ERROR_PREFIX "Busy",                EBUSY        },
                { GMEM_ERROR_PREFIX "NotSupported",        EOPNOTSUPP   },
                { GMEM_ERROR_PREFIX "QuotaExceeded",       EDQUOT       },
                { GMEM_ERROR_PREFIX "MigrationInProgress", EALREADY     },
                { GMEM_ERROR_PREFIX "BackendUnavailable",  ENODEV       },
                { "org.freedesktop.DBus.Error.AccessDenied",   EACCES       },
                { "org.freedesktop.DBus.Error.ServiceUnknown", EHOSTUNREACH },
                { "org.freedesktop.DBus.Error.UnknownMethod",  EBADR        },
                { "System.Error.ENOSPC",                   ENOSPC       },
                { "System.Error.EMFILE",                   EMFILE       },
                { "com.example.Unheard.Of",                EIO          },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                sd_bus_error e = SD_BUS_ERROR_MAKE_CONST(table[i].name, "m");
                int errnum = gmem_errno_from_bus_error(&e, -EIO);

                check(errnum == table[i].errnum, "%s should map to %s, got %s",
                      table[i].name, strerror(table[i].errnum), strerror(errnum));
        }

        check(gmem_errno_from_bus_error(&SD_BUS_ERROR_NULL, -ECONNRESET) == ECONNRESET,
              "a failure without an error name should keep the call's own errno");
        check(gmem_errno_from_bus_error(NULL, 0) == EIO, "no error and no errno should still be an error (EIO)");
}

static void test_null_client(void) {
        int fd = -1;

        /* Every public function refuses a NULL client with -EINVAL and does not crash. */
        check(gmem_connect(NULL) == -EINVAL, "gmem_connect(NULL)");
        check(gmem_connect_address(NULL, NULL) == -EINVAL, "gmem_connect_address(NULL)");
        check(gmem_connect_address("", NULL) == -EINVAL, "gmem_connect_address(\"\")");
        check(gmem_connect_direct(NULL, NULL) == -EINVAL, "gmem_connect_direct(NULL, NULL)");
        check(gmem_client_is_direct(NULL) == -EINVAL, "gmem_client_is_direct(NULL)");
        check(gmem_client_ref(NULL) == NULL, "ref(NULL)");
        check(gmem_client_unref(NULL) == NULL, "unref(NULL)");
        check(gmem_client_last_error_name(NULL) == NULL, "last_error_name(NULL)");
        check(gmem_client_last_error_message(NULL) == NULL, "last_error_message(NULL)");
        check(gmem_create_region(NULL, "r", 4096, NULL, NULL) == -EINVAL, "create_region(NULL)");
        check(gmem_adopt_region(NULL, "r", 0, NULL, NULL) == -EINVAL, "adopt_region(NULL)");
        check(gmem_destroy_region(NULL, "r") == -EINVAL, "destroy_region(NULL)");
        check(gmem_get_region_path(NULL, "r", NULL) == -EINVAL, "get_region_path(NULL)");
        check(gmem_list_regions(NULL, NULL, NULL) == -EINVAL, "list_regions(NULL)");
        check(gmem_get_region_properties(NULL, "r", NULL) == -EINVAL, "get_region_properties(NULL)");
        check(gmem_discard(NULL, "r", 0, 4096) == -EINVAL, "discard(NULL)");
        check(gmem_allocate(NULL, "r", 0, 4096) == -EINVAL, "allocate(NULL)");
        check(gmem_set_memory_attributes(NULL, "r", 0, 4096, GMEM_MEMORY_SHARED) == -EINVAL, "set_memory_attributes(NULL)");
        check(gmem_register_vm(NULL, "v", 0, GMEM_UID_INVALID, NULL) == -EINVAL, "register_vm(NULL)");
        check(gmem_register_vm_with_leader_fd(NULL, "v", 0, GMEM_UID_INVALID, NULL) == -EINVAL,
              "register_vm_with_leader_fd(NULL)");
        check(gmem_unregister_vm(NULL, "v") == -EINVAL, "unregister_vm(NULL)");
        check(gmem_get_vm_path(NULL, "v", NULL) == -EINVAL, "get_vm_path(NULL)");
        check(gmem_list_vms(NULL, NULL, NULL) == -EINVAL, "list_vms(NULL)");
        check(gmem_get_vm_properties(NULL, "v", NULL) == -EINVAL, "get_vm_properties(NULL)");
        check(gmem_attach(NULL, "v", "r", GMEM_ACCESS_RW, 0, 0, false, &fd) == -EINVAL, "attach(NULL)");
        check(gmem_detach(NULL, "v", "r") == -EINVAL, "detach(NULL)");
        check(gmem_get_fd(NULL, "v", "r", &fd) == -EINVAL, "get_fd(NULL)");
        check(gmem_begin_migration(NULL, "a", "b", NULL, NULL, NULL) == -EINVAL, "begin_migration(NULL)");
        check(gmem_commit_migration(NULL, "1") == -EINVAL, "commit_migration(NULL)");
        check(gmem_abort_migration(NULL, "1") == -EINVAL, "abort_migration(NULL)");
        check(gmem_list_migrations(NULL, NULL, NULL) == -EINVAL, "list_migrations(NULL)");
        check(gmem_get_manager_properties(NULL, NULL) == -EINVAL, "get_manager_properties(NULL)");
        check(gmem_subscribe(NULL, NULL, NULL) == -EINVAL, "subscribe(NULL)");
        check(gmem_client_get_fd(NULL) == -EINVAL, "get_fd(NULL)");
        check(gmem_client_get_events(NULL) == -EINVAL, "get_events(NULL)");
        check(gmem_client_process(NULL) == -EINVAL, "process(NULL)");
        check(gmem_client_wait(NULL, 0) == -EINVAL, "wait(NULL)");
        check(fd == -1, "no fd may be returned on failure");

        /* Freeing NULL arrays and objects is a no-op. */
        gmem_region_info_array_free(NULL, 0);
        gmem_vm_info_array_free(NULL, 0);
        gmem_migration_info_array_free(NULL, 0);
        gmem_migration_fd_array_free(NULL, 0);
        check(gmem_region_properties_free(NULL) == NULL, "region_properties_free(NULL)");
        check(gmem_vm_properties_free(NULL) == NULL, "vm_properties_free(NULL)");
        check(gmem_manager_properties_free(NULL) == NULL, "manager_properties_free(NULL)");
}

static void test_enums(void) {
        check(streq(gmem_access_to_string(GMEM_ACCESS_RO), "ro"), "GMEM_ACCESS_RO is \"ro\"");
        check(streq(gmem_access_to_string(GMEM_ACCESS_RW), "rw"), "GMEM_ACCESS_RW is \"rw\"");
        check(gmem_access_to_string(_GMEM_ACCESS_MAX) == NULL, "no name past the last access");
        check(gmem_access_to_string((GmemAccess) -1) == NULL, "no name for a negative access");
        check(gmem_access_from_string("ro") == GMEM_ACCESS_RO, "\"ro\" parses");
        check(gmem_access_from_string("rw") == GMEM_ACCESS_RW, "\"rw\" parses");
        check(gmem_access_from_string("wo") == -EINVAL, "\"wo\" is no access");
        check(gmem_access_from_string(NULL) == -EINVAL, "NULL is no access");
        for (int a = 0; a < _GMEM_MEMORY_ATTRIBUTE_MAX; a++)
                check(gmem_memory_attribute_from_string(gmem_memory_attribute_to_string(a)) == a,
                      "memory attribute %d round-trips", a);
        check(gmem_memory_attribute_from_string("secret") == -EINVAL, "\"secret\" is no memory attribute");
        for (int t = 0; t < _GMEM_EVENT_TYPE_MAX; t++)
                check(gmem_event_type_to_string(t) != NULL, "event type %d has a name", t);
        check(gmem_event_type_to_string(_GMEM_EVENT_TYPE_MAX) == NULL, "no name past the last event type");
}

static void test_migration_path(void) {
        static const struct {
                const char *in;
                const char *out;   /* NULL: -EINVAL */
        } table[] = {
                { "7",                              "/org/gmemd/Broker1/migration/7"  },
                { "007",                            "/org/gmemd/Broker1/migration/7"  },
                { "18446744073709551615",           "/org/gmemd/Broker1/migration/18446744073709551615" },
                { "18446744073709551616",           NULL },
                { "/org/gmemd/Broker1/migration/3", "/org/gmemd/Broker1/migration/3"  },
                { "/org//x",                        NULL },
                { "",                               NULL },
                { "-1",                             NULL },
                { "3a",                             NULL },
                { "migration/3",                    NULL },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                char *p = NULL;
                int r = gmem_migration_path(table[i].in, &p);

                if (table[i].out)
                        check(r == 0 && p && streq(p, table[i].out), "migration '%s' should be %s, got %s",
                              table[i].in, table[i].out, p ? p : strerror(-r));
                else
                        check(r == -EINVAL && !p, "migration '%s' should be refused", table[i].in);
                free(p);
        }
}

/* Bad arguments: each must be refused with -EINVAL before reaching the fake broker (which says Busy). */
static void test_argument_checks(GmemClient *c) {
        char long_name[GMEM_NAME_MAX + 2];
        char *path = NULL;
        GmemRegionInfo *regions = NULL;
        GmemVmInfo *vms = NULL;
        GmemMigrationInfo *migrations = NULL;
        GmemRegionProperties *rp = NULL;
        GmemVmProperties *vp = NULL;
        GmemManagerProperties *mp = NULL;
        size_t n;
        int fd = -1;

        memset(long_name, 'a', sizeof(long_name) - 1);
        long_name[sizeof(long_name) - 1] = 0;

        const struct {
                const char *what;
                int r;
        } table[] = {
                { "create_region(NULL name)",      gmem_create_region(c, NULL, 4096, NULL, NULL) },
                { "adopt_region(NULL name)",       gmem_adopt_region(c, NULL, 0, NULL, NULL) },
                { "adopt_region(\"a/b\")",         gmem_adopt_region(c, "a/b", 0, NULL, NULL) },
                { "adopt_region(fd -1)",           gmem_adopt_region(c, "r", -1, NULL, NULL) },
                { "adopt_region(bad owner)",       gmem_adopt_region(c, "r", 0,
                                                                     &(GmemRegionOptions) { .owner = "x y" }, NULL) },
                { "adopt_region(populate)",        gmem_adopt_region(c, "r", 0,
                                                                     &(GmemRegionOptions) { .populate = true }, NULL) },
                { "adopt_region(hugepage_size)",   gmem_adopt_region(c, "r", 0,
                                                                     &(GmemRegionOptions) { .hugepage_size = 4096 },
                                                                     NULL) },
                { "create_region(\"\")",           gmem_create_region(c, "", 4096, NULL, NULL) },
                { "create_region(65 chars)",       gmem_create_region(c, long_name, 4096, NULL, NULL) },
                { "create_region(\"a/b\")",        gmem_create_region(c, "a/b", 4096, NULL, NULL) },
                { "create_region(bad owner)",      gmem_create_region(c, "r", 4096,
                                                                      &(GmemRegionOptions) { .owner = "x y" }, NULL) },
                { "destroy_region(\"a b\")",       gmem_destroy_region(c, "a b") },
                { "get_region_path(NULL ret)",     gmem_get_region_path(c, "r", NULL) },
                { "get_region_path(\"ä\")",        gmem_get_region_path(c, "\xc3\xa4", &path) },
                { "list_regions(NULL ret)",        gmem_list_regions(c, NULL, &n) },
                { "list_regions(NULL n)",          gmem_list_regions(c, &regions, NULL) },
                { "get_region_properties(NULL)",   gmem_get_region_properties(c, "r", NULL) },
                { "get_region_properties(\"*\")",  gmem_get_region_properties(c, "*", &rp) },
                { "discard(\"\")",                 gmem_discard(c, "", 0, 4096) },
                { "allocate(NULL)",                gmem_allocate(c, NULL, 0, 4096) },
                { "set_memory_attributes(bad)",    gmem_set_memory_attributes(c, "r", 0, 4096, _GMEM_MEMORY_ATTRIBUTE_MAX) },
                { "set_memory_attributes(\"\")",   gmem_set_memory_attributes(c, "", 0, 4096, GMEM_MEMORY_PRIVATE) },
                { "register_vm(\"\")",             gmem_register_vm(c, "", 0, GMEM_UID_INVALID, NULL) },
                { "register_vm(pid -5)",           gmem_register_vm(c, "v", -5, GMEM_UID_INVALID, NULL) },
                { "register_vm_with_leader_fd(\"\")", gmem_register_vm_with_leader_fd(c, "", 0, GMEM_UID_INVALID, NULL) },
                { "register_vm_with_leader_fd(-1)", gmem_register_vm_with_leader_fd(c, "v", -1, GMEM_UID_INVALID, NULL) },
                { "unregister_vm(NULL)",           gmem_unregister_vm(c, NULL) },
                { "get_vm_path(\"x\\n\")",         gmem_get_vm_path(c, "x\n", &path) },
                { "list_vms(NULL)",                gmem_list_vms(c, NULL, NULL) },
                { "get_vm_properties(\"\")",       gmem_get_vm_properties(c, "", &vp) },
                { "attach(NULL fd)",               gmem_attach(c, "v", "r", GMEM_ACCESS_RW, 0, 0, false, NULL) },
                { "attach(bad vm)",                gmem_attach(c, "v v", "r", GMEM_ACCESS_RW, 0, 0, false, &fd) },
                { "attach(bad region)",            gmem_attach(c, "v", "", GMEM_ACCESS_RO, 0, 0, false, &fd) },
                { "attach(bad access)",            gmem_attach(c, "v", "r", (GmemAccess) 7, 0, 0, false, &fd) },
                { "detach(NULL vm)",               gmem_detach(c, NULL, "r") },
                { "detach(bad region)",            gmem_detach(c, "v", "r!") },
                { "get_fd(NULL fd)",               gmem_get_fd(c, "v", "r", NULL) },
                { "get_fd(bad vm)",                gmem_get_fd(c, long_name, "r", &fd) },
                { "begin_migration(bad src)",      gmem_begin_migration(c, "", "b", NULL, NULL, NULL) },
                { "begin_migration(bad dst)",      gmem_begin_migration(c, "a", NULL, NULL, NULL, NULL) },
                { "begin_migration(fds, no n)",    gmem_begin_migration(c, "a", "b", NULL, (GmemMigrationFd **) &path, NULL) },
                { "commit_migration(NULL)",        gmem_commit_migration(c, NULL) },
                { "commit_migration(\"x\")",       gmem_commit_migration(c, "x") },
                { "abort_migration(\"/a//b\")",    gmem_abort_migration(c, "/a//b") },
                { "list_migrations(NULL)",         gmem_list_migrations(c, &migrations, NULL) },
                { "get_manager_properties(NULL)",  gmem_get_manager_properties(c, NULL) },
                { "subscribe(NULL handler)",       gmem_subscribe(c, NULL, NULL) },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                check(table[i].r == -EINVAL, "%s should be -EINVAL before any bus traffic, got %s",
                      table[i].what, strerror(-table[i].r));

        check(fd == -1, "no fd may be returned by a refused call");
        check(!path && !regions && !vms && !migrations && !rp && !vp && !mp,
              "no output may be written by a refused call");

        /* A refused name keeps the registry's InvalidName and the validator's message. */
        check(gmem_destroy_region(c, "a b") == -EINVAL, "destroy_region(\"a b\") is -EINVAL");
        check(streq(gmem_client_last_error_name(c), GMEM_ERROR_PREFIX "InvalidName"),
              "an invalid name should be kept as InvalidName, got %s", gmem_client_last_error_name(c));
        check(strstr(gmem_client_last_error_message(c), "'a b'") != NULL,
              "the message should name the bad value: %s", gmem_client_last_error_message(c));
}

static void test_broker_errors(GmemClient *c) {
        static const struct {
                const char *region;
                int r;
                const char *name;
        } table[] = {
                { "err-NoSuchRegion",        -ENOENT,       GMEM_ERROR_PREFIX "NoSuchRegion"        },
                { "err-Busy",                -EBUSY,        GMEM_ERROR_PREFIX "Busy"                },
                { "err-MigrationInProgress", -EALREADY,     GMEM_ERROR_PREFIX "MigrationInProgress" },
                { "err-QuotaExceeded",       -EDQUOT,       GMEM_ERROR_PREFIX "QuotaExceeded"       },
                { "err-System.Error.ENOSPC", -ENOSPC,       "System.Error.ENOSPC"                  },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                int r = gmem_destroy_region(c, table[i].region);
                const char *name = gmem_client_last_error_name(c), *message = gmem_client_last_error_message(c);

                check(r == table[i].r, "%s: expected %s, got %s", table[i].region, strerror(-table[i].r), strerror(-r));
                check(name && streq(name, table[i].name), "%s: the error name should be kept, got %s",
                      table[i].region, name ? name : "(null)");
                check(message && strncmp(message, "message for ", 12) == 0,
                      "%s: the broker's message should be kept, got %s", table[i].region, message ? message : "(null)");
        }

        /* The error names, not the method, decide; a full freedesktop name too. */
        check(gmem_commit_migration(c, "/err/org/x") == -EBUSY, "an unknown path reaches the broker");
        check(gmem_unregister_vm(c, "err-org.freedesktop.DBus.Error.AccessDenied") == -EACCES,
              "AccessDenied maps to EACCES");
}

/* The one-call lists: every field read, a bad reply a clear error, an old broker asked object by object. */
static void test_list_full(GmemClient *c) {
        GmemRegionProperties *regions = NULL;
        GmemVmProperties *vms = NULL;
        const char *message;
        size_t n = 0;
        int r;

        check(gmem_list_regions_full(NULL, &regions, &n) == -EINVAL, "list_regions_full(NULL client) is -EINVAL");
        check(gmem_list_regions_full(c, NULL, &n) == -EINVAL, "list_regions_full(NULL) is -EINVAL");
        check(gmem_list_vms_full(c, &vms, NULL) == -EINVAL, "list_vms_full(no count) is -EINVAL");
        check(!regions && !vms, "a refused list writes no output");
        gmem_region_properties_array_free(NULL, 0);
        gmem_vm_properties_array_free(NULL, 0);

        r = gmem_list_regions_full(c, &regions, &n);
        check(r == 0 && n == 2, "ListRegionsFull should give two regions, got r=%d n=%zu", r, n);
        if (r == 0 && n == 2) {
                check(streq(regions[0].name, "ram") && regions[0].id == 3 && regions[0].size == (uint64_t) 1 << 30 &&
                      streq(regions[0].backend, "memfd") && streq(regions[0].owner, "") &&
                      regions[0].allocated_bytes == 8192 && streq(regions[0].path, "/org/gmemd/Broker1/region/ram"),
                      "the first region is read field by field");
                check(regions[0].n_views == 1 && streq(regions[0].views[0].vm, "vm1") &&
                      streq(regions[0].views[0].region, "ram") && streq(regions[0].views[0].access, "rw") &&
                      streq(regions[0].views[0].state, "active"), "its view names the VM and the region itself");
                check(streq(regions[1].name, "rom") && regions[1].id == 4 && streq(regions[1].owner, "vm1") &&
                      regions[1].n_views == 0 && regions[1].allocated_bytes == 0, "the second region has no view");
        }
        gmem_region_properties_array_free(regions, n);
        regions = NULL;

        r = gmem_list_regions_full(c, &regions, &n);
        message = gmem_client_last_error_message(c);
        check(r == -EBADMSG, "a reply of the wrong type is -EBADMSG, got %s", strerror(-r));
        check(message && streq(message, "Failed to parse the reply to ListRegionsFull"),
              "and says which reply, got %s", message ?: "(null)");
        check(!regions, "no output on a bad reply");

        /* UnknownMethod: ListRegions then GetRegion for "ram", which this broker answers with Busy. */
        r = gmem_list_regions_full(c, &regions, &n);
        message = gmem_client_last_error_message(c);
        check(r == -EBUSY && message && strstr(message, "GetRegion"),
              "a broker without ListRegionsFull is asked region by region (%s, %s)", strerror(-r), message ?: "(null)");
        check(!regions, "no output when the old way fails");

        r = gmem_list_vms_full(c, &vms, &n);
        check(r == 0 && n == 2, "ListVmsFull should give two VMs, got r=%d n=%zu", r, n);
        if (r == 0 && n == 2) {
                check(streq(vms[0].name, "vm1") && vms[0].leader_pid == 42 && vms[0].uid == 1000 &&
                      streq(vms[0].path, "/org/gmemd/Broker1/vm/vm1"), "the first VM is read field by field");
                check(vms[0].n_views == 2 && streq(vms[0].views[1].vm, "vm1") && streq(vms[0].views[1].region, "rom") &&
                      streq(vms[0].views[1].access, "ro") && streq(vms[0].views[1].state, "pending"),
                      "its views name the VM itself and each region");
                check(vms[1].leader_pid == 0 && vms[1].uid == GMEM_UID_INVALID && vms[1].n_views == 0,
                      "a VM without leader, uid or views");
        }
        gmem_vm_properties_array_free(vms, n);
}

/* A broker that does not know the leader option is told apart from one that refuses the pidfd itself. */
static void test_register_vm_with_leader_fd(GmemClient *c) {
        const char *name;
        char *path = NULL;
        int p[2], r;

        check(pipe2(p, O_CLOEXEC) == 0, "pipe2 works");
        r = gmem_register_vm_with_leader_fd(c, "old-vm", p[0], GMEM_UID_INVALID, NULL);
        name = gmem_client_last_error_name(c);
        check(r == -EOPNOTSUPP, "a broker without the leader option gives EOPNOTSUPP, not %s", strerror(-r));
        check(name && streq(name, GMEM_ERROR_PREFIX "InvalidArgument"), "and its error is kept, got %s",
              name ?: "(null)");
        r = gmem_register_vm_with_leader_fd(c, "err-InvalidArgument", p[0], GMEM_UID_INVALID, NULL);
        check(r == -EINVAL, "any other InvalidArgument (a fd that is not a pidfd) stays EINVAL, not %s", strerror(-r));
        r = gmem_register_vm(c, "old-vm", 1, GMEM_UID_INVALID, NULL);
        check(r == -EBUSY, "leader_pid is not the leader option: the old broker takes it (%s)", strerror(-r));
        r = gmem_register_vm_with_leader_fd(c, "new-vm", p[0], 7, &path);
        check(r == 0 && path && streq(path, "/org/gmemd/Broker1/vm/_6e_65_77"),
              "a broker that knows the option registers the VM (%s, %s)", strerror(-r), path ?: "(null)");
        free(path);
        close(p[0]);
        close(p[1]);
}

static void test_broker_replies(GmemClient *c) {
        GmemRegionInfo *regions = NULL;
        GmemMigrationFd *fds = NULL;
        char *migration = NULL;
        size_t n = 0;
        int fd = -1, r;

        r = gmem_list_regions(c, &regions, &n);
        check(r == 0 && n == 2, "ListRegions should give two regions, got r=%d n=%zu", r, n);
        check(gmem_client_last_error_name(c) == NULL, "a success should clear the last error");
        if (r == 0 && n == 2) {
                check(streq(regions[0].name, "ram") && regions[0].size == (uint64_t) 1 << 30 &&
                      streq(regions[0].backend, "memfd") && streq(regions[0].owner, "") &&
                      streq(regions[0].path, "/org/gmemd/Broker1/region/ram"), "the first region is read field by field");
                check(streq(regions[1].name, "rom") && regions[1].size == 4096 && streq(regions[1].owner, "vm1"),
                      "the second region is read field by field");
        }
        gmem_region_info_array_free(regions, n);

        r = gmem_attach(c, "vm1", "ram", GMEM_ACCESS_RO, 0, 0, false, &fd);
        check(r == 0 && fd >= 0, "Attach should return an fd, got %s", strerror(-r));
        if (fd >= 0) {
                check(fcntl(fd, F_GETFD) & FD_CLOEXEC, "the returned fd should be O_CLOEXEC");
                check((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDONLY, "the ro view should be O_RDONLY");
                close(fd);
        }

        r = gmem_attach(c, "err-NoSuchVm", "ram", GMEM_ACCESS_RW, 0, 0, false, &fd);
        check(r == -ENOENT, "Attach to an unknown VM should be -ENOENT, got %s", strerror(-r));

        r = gmem_begin_migration(c, "a", "b", &migration, &fds, &n);
        check(r == 0 && n == 2, "BeginMigration should give a path and two fds, got r=%d n=%zu", r, n);
        if (r == 0) {
                check(streq(migration, "/org/gmemd/Broker1/migration/7"), "the migration's path is returned");
                for (size_t i = 0; i < n; i++)
                        check(fds[i].fd >= 0 && (fcntl(fds[i].fd, F_GETFD) & FD_CLOEXEC),
                              "migration fd %zu should be an O_CLOEXEC fd of our own", i);
                check(n == 2 && fds[0].fd != fds[1].fd, "each migration fd is a separate dup");
                check(n == 2 && streq(fds[0].region, "ram") && streq(fds[1].region, "rom"),
                      "the fds are paired with their regions");
        }
        gmem_migration_fd_array_free(fds, n);
        free(migration);
}

int main(void) {
        GmemClient *c;
        pid_t pid = 0;
        int status;

        test_error_mapping();
        test_null_client();
        test_enums();
        test_migration_path();

        test_direct_socket();

        c = connect_fake_broker(&pid);
        check(c != NULL, "the fake broker should be reachable over the socketpair");
        if (c) {
                check(gmem_client_is_direct(c) == 0, "a client made from a bus connection is not direct");
                test_argument_checks(c);
                test_broker_errors(c);
                test_broker_replies(c);
                test_register_vm_with_leader_fd(c);
                test_list_full(c);

                gmem_client_unref(c);
                if (waitpid(pid, &status, 0) == pid)
                        check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the fake broker should exit cleanly");
        }

        if (n_failed > 0) {
                fprintf(stderr, "%u checks failed\n", n_failed);
                return 1;
        }
        printf("all checks passed\n");
        return 0;
}
