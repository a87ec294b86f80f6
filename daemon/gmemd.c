/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * gmemd.c — the daemon's main program: arguments, the bus connection, the
 * model, the event loop, readiness and shutdown. Everything else lives in
 * the core library, which the tests link.
 */
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <unistd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/un.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "config.h"

#include "backend.h"
#include "backend-kmod.h"
#include "backend-util.h"
#include "bus-direct.h"
#include "bus-link.h"
#include "fdlimit.h"
#include "listen.h"
#include "log.h"
#include "manager.h"
#include "owner-helper.h"
#include "parse.h"
#include "policy.h"
#include "sandbox.h"
#include "store.h"

static const char *arg_bus_address = NULL;
static const char *arg_bus_name = GMEMD_BUS_NAME;
static const char *arg_policy = NULL;
static const char *arg_direct_socket = NULL;
static const char *arg_user = NULL;
static const char *arg_gmem_device = BACKEND_KMOD_DEVICE;
static BackendType arg_default_backend = BACKEND_MEMFD;
static bool arg_sandbox = true;
static bool arg_sandbox_kill = false;
static bool arg_sandbox_self_test = false;
static unsigned arg_fd_store_max = 0;          /* 0: $FDSTORE, else STORE_MAX_DEFAULT */

static void help(void) {
        printf("Usage: gmemd [OPTIONS]\n\n"
               "Guest-memory broker: owns guest-memory regions and hands each VM\n"
               "its own file descriptor over D-Bus (org.gmemd.Broker1).\n\n"
               "  -h --help              Show this help\n"
               "     --version           Show the version\n"
               "     --bus-address=ADDR  Connect to this bus instead of the system bus\n"
               "     --bus-name=NAME     Own NAME instead of %s\n"
               "     --direct-socket=PATH  Also serve direct (peer-to-peer) connections on a\n"
               "                         socket made at PATH (under systemd: gmemd.socket's)\n"
               "     --policy=PATH       Policy file (default " POLICY_DEFAULT_PATH ",\n"
               "                         or the built-in policy if it does not exist)\n"
               "     --user=USER         Run as USER, a name or uid (needs root); its groups\n"
               "                         give device access\n"
               "     --no-sandbox        Do not install the system call filter (debugging)\n"
               "     --sandbox-kill      Kill the daemon on a forbidden system call instead of EPERM\n"
               "     --sandbox-self-test Try forbidden calls once the filter is in and log the result\n"
               "     --default-backend=NAME  Backend of regions created without one: memfd\n"
               "                         (default), hugetlb, secret or kmod\n"
               "     --gmem-device=PATH  gmem.ko's device for the kmod backend (default " BACKEND_KMOD_DEVICE ")\n"
               "     --fd-store-max=N    Entries the service manager keeps for gmemd (default:\n"
               "                         $FDSTORE, set by systemd 254 and later, else %u)\n"
               "     --log-level=LEVEL   err, warning, notice, info (default) or debug\n\n"
               "The system bus can also be chosen with $DBUS_SYSTEM_BUS_ADDRESS.\n"
               "See gmemd(8).\n", GMEMD_BUS_NAME, STORE_MAX_DEFAULT);
}

/* A number of fd store entries: at least 2, one object and the one kept free for replacing an entry. */
static int parse_store_max(const char *s, unsigned *ret) {
        uint64_t v;

        if (!s || *s < '0' || *s > '9' || gmem_parse_size(s, &v) < 0 || v < 2 || v > UINT_MAX)
                return -EINVAL;
        for (const char *p = s; *p; p++)
                if (*p < '0' || *p > '9')
                        return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

/* How many entries the service manager keeps for gmemd: the option, what systemd says, or the unit's default. */
static unsigned store_max(void) {
        const char *env = getenv("FDSTORE");
        unsigned v;

        if (arg_fd_store_max > 0)
                return arg_fd_store_max;
        if (env && parse_store_max(env, &v) >= 0)
                return v;
        if (env)
                log_warning("Ignoring $FDSTORE=%s: not a number of entries; assuming %u", env, STORE_MAX_DEFAULT);
        return STORE_MAX_DEFAULT;
}

static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_BUS_ADDRESS,
                ARG_BUS_NAME,
                ARG_LOG_LEVEL,
                ARG_POLICY,
                ARG_USER,
                ARG_NO_SANDBOX,
                ARG_SANDBOX_KILL,
                ARG_SANDBOX_SELF_TEST,
                ARG_FD_STORE_MAX,
                ARG_DEFAULT_BACKEND,
                ARG_GMEM_DEVICE,
                ARG_DIRECT_SOCKET,
        };
        static const struct option options[] = {
                { "help",        no_argument,       NULL, 'h'             },
                { "version",     no_argument,       NULL, ARG_VERSION     },
                { "bus-address", required_argument, NULL, ARG_BUS_ADDRESS },
                { "bus-name",    required_argument, NULL, ARG_BUS_NAME    },
                { "log-level",   required_argument, NULL, ARG_LOG_LEVEL   },
                { "policy",      required_argument, NULL, ARG_POLICY      },
                { "user",              required_argument, NULL, ARG_USER              },
                { "no-sandbox",        no_argument,       NULL, ARG_NO_SANDBOX        },
                { "sandbox-kill",      no_argument,       NULL, ARG_SANDBOX_KILL      },
                { "sandbox-self-test", no_argument,       NULL, ARG_SANDBOX_SELF_TEST },
                { "fd-store-max",      required_argument, NULL, ARG_FD_STORE_MAX      },
                { "default-backend",   required_argument, NULL, ARG_DEFAULT_BACKEND   },
                { "gmem-device",       required_argument, NULL, ARG_GMEM_DEVICE       },
                { "direct-socket",     required_argument, NULL, ARG_DIRECT_SOCKET     },
                {}
        };
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("gmemd %s\n", GMEMD_VERSION);
                        return 0;
                case ARG_BUS_ADDRESS:
                        arg_bus_address = optarg;
                        break;
                case ARG_BUS_NAME:
                        if (sd_bus_service_name_is_valid(optarg) <= 0) {
                                log_error("Invalid bus name '%s'", optarg);
                                return -EINVAL;
                        }
                        arg_bus_name = optarg;
                        break;
                case ARG_LOG_LEVEL:
                        r = log_parse_level(optarg);
                        if (r < 0) {
                                log_error("Invalid log level '%s'", optarg);
                                return -EINVAL;
                        }
                        log_set_max_level(r);
                        break;
                case ARG_POLICY:
                        arg_policy = optarg;
                        break;
                case ARG_USER:
                        arg_user = optarg;
                        break;
                case ARG_NO_SANDBOX:
                        arg_sandbox = false;
                        break;
                case ARG_SANDBOX_KILL:
                        arg_sandbox_kill = true;
                        break;
                case ARG_SANDBOX_SELF_TEST:
                        arg_sandbox_self_test = true;
                        break;
                case ARG_DEFAULT_BACKEND:
                        arg_default_backend = backend_type_from_string(optarg);
                        if (arg_default_backend < 0) {
                                log_error("Invalid --default-backend=%s: memfd, hugetlb, secret or kmod", optarg);
                                return -EINVAL;
                        }
                        if (!backend_get(arg_default_backend)->create) {
                                log_error("Invalid --default-backend=%s: %s", optarg,
                                          backend_get(arg_default_backend)->why.create ?: "it creates no regions");
                                return -EINVAL;
                        }
                        break;
                case ARG_GMEM_DEVICE:
                        if (optarg[0] != '/') {
                                log_error("Invalid --gmem-device=%s: an absolute path", optarg);
                                return -EINVAL;
                        }
                        arg_gmem_device = optarg;
                        break;
                case ARG_DIRECT_SOCKET:
                        if (optarg[0] != '/') {
                                log_error("Invalid --direct-socket=%s: an absolute path", optarg);
                                return -EINVAL;
                        }
                        arg_direct_socket = optarg;
                        break;
                case ARG_FD_STORE_MAX:
                        r = parse_store_max(optarg, &arg_fd_store_max);
                        if (r < 0) {
                                log_error("Invalid --fd-store-max=%s: a number of entries from 2 to %u", optarg,
                                          UINT_MAX);
                                return r;
                        }
                        break;
                case '?':
                        return -EINVAL;
                default:
                        return -EINVAL;
                }

        if (optind < argc) {
                log_error("Unexpected argument '%s'; gmemd takes options only", argv[optind]);
                return -EINVAL;
        }
        return 1;
}

/* Every policy put in force, at start and on each reload (SIGHUP or the Reload method), is logged. */
static void log_policy(Manager *m, bool reloaded) {
        for (size_t i = 0; i < m->policy->n_warnings; i++)
                log_warning("%s", m->policy->warnings[i]);
        log_info("Policy %s%s: %zu class%s", reloaded ? "reloaded from " : "", m->policy->origin,
                 m->policy->n_classes, m->policy->n_classes == 1 ? "" : "es");
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;
        GmemError e = GMEM_ERROR_INIT;

        (void) sd_notify(false, "RELOADING=1\nSTATUS=Reloading the policy");
        if (manager_load_policy(m, &e) < 0)
                log_error("Policy not reloaded, the old one stays in force: %s", e.message);
        (void) sd_notify(false, "READY=1\nSTATUS=Serving");
        return 0;
}

/* The owner helper's end of the socket pair, for the hugetlb backend's grants. */
static int owner_channel = -EBADF;

static int give_inode(int fd, uint32_t uid, unsigned mode) {
        return owner_helper_give(owner_channel, fd, uid, mode);
}

/* Before the privileges go: the one process that keeps CAP_CHOWN, if gmemd has it to give. */
static void start_owner_helper(void) {
        int r;

        r = owner_helper_start(arg_user, arg_sandbox, &owner_channel);
        if (r < 0) {
                log_info("Hypervisor uids cannot re-open hugetlb views, only use the fds handed out: %s",
                         r == -EPERM ? "gmemd was started without CAP_CHOWN for its owner helper" : strerror(-r));
                return;
        }
        backend_set_owner_hook(give_inode);
        log_debug("Owner helper started: hugetlb inodes are given to the one hypervisor uid with read-write views");
}

static int drop_privileges(void) {
        int r;

        if (arg_user) {
                if (geteuid() != 0) {
                        log_error("--user=%s needs root", arg_user);
                        return -EPERM;
                }
                r = sandbox_drop_user(arg_user);
                if (r == -ESRCH) {
                        log_error("No user '%s'", arg_user);
                        return r;
                }
                if (r < 0)
                        return log_error_errno(r, "Cannot switch to user '%s'", arg_user);
                if (r > 0)
                        log_notice("No passwd entry for uid %s: running as gid %s with no supplementary groups "
                                   "(dbus-daemon refuses connections from such a uid; dbus-broker does not)", arg_user, arg_user);
        }
        r = sandbox_drop_privileges();
        if (r < 0)
                return log_error_errno(r, "Refusing to run: cannot give up every capability and set no-new-privileges");
        log_debug("Running as uid %u, gid %u with no capabilities", (unsigned) geteuid(), (unsigned) getegid());
        return 0;
}

static int install_sandbox(void) {
        char buf[256];
        int r;

        if (!arg_sandbox || GMEMD_SANITIZED) {
                log_notice("System call filter not installed (%s)",
                           arg_sandbox ? "sanitizer build" : "--no-sandbox");
                if (arg_sandbox_self_test)
                        log_notice("Sandbox self-test skipped: no filter");
                return 0;
        }
        r = sandbox_install_seccomp(arg_sandbox_kill);
        if (r < 0)
                return log_error_errno(r, "Cannot install the system call filter");
        if (arg_sandbox_self_test) {
                sandbox_self_test(buf, sizeof(buf));
                log_notice("Sandbox self-test: %s", buf);
        }
        return 0;
}

static void log_backends(void) {
        for (BackendType t = 0; t < _BACKEND_MAX; t++) {
                GmemError e = GMEM_ERROR_INIT;
                if (backend_get(t)->probe(&e) < 0)
                        log_info("%s", e.message);
                else
                        log_debug("Backend '%s' is usable", backend_type_to_string(t));
        }
}

/*
 * The socket of direct connections: the service manager's (socket
 * activation), else one made at --direct-socket=, else none. 1 with *ret_fd
 * set if there is one, 0 if not, negative (said) if it cannot be had.
 */
static int direct_socket_open(int *ret_fd, bool *ret_made) {
        int r;

        r = listen_fd_by_name(DIRECT_SOCKET_FDNAME, ret_fd);
        if (r < 0)
                return log_error_errno(r, "The fd the service manager passed as '%s' is no listening socket",
                                       DIRECT_SOCKET_FDNAME);
        if (r > 0) {
                *ret_made = false;
                return 1;
        }
        if (!arg_direct_socket)
                return 0;
        r = listen_unix_socket(arg_direct_socket, ret_fd);
        if (r == -EEXIST)
                return log_error_errno(r, "Cannot make the direct socket %s: something that is not a socket is "
                                       "there", arg_direct_socket);
        if (r == -ENAMETOOLONG)
                return log_error_errno(r, "Cannot make the direct socket %s: a socket path has at most %zu bytes",
                                       arg_direct_socket, sizeof(((struct sockaddr_un *) NULL)->sun_path) - 1);
        if (r < 0)
                return log_error_errno(r, "Cannot make the direct socket %s", arg_direct_socket);
        *ret_made = true;
        return 1;
}

static int run(int argc, char *argv[]) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_(store_freep) Store *store = NULL;     /* freed before the manager */
        _cleanup_(direct_server_freep) DirectServer *direct = NULL;     /* freed before the manager */
        _cleanup_close_ int direct_fd = -EBADF;
        bool direct_made = false;
        _cleanup_(bus_link_freep) BusLink *link = NULL; /* freed first */
        struct rlimit rl;
        sigset_t mask;
        int r;

        r = parse_argv(argc, argv);
        if (r < 0)
                log_error("Try 'gmemd --help' for the options");
        if (r <= 0)
                return r;

        /* Signals are handled by the event loop; block them first. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(errno, "Cannot block signals");
        (void) signal(SIGPIPE, SIG_IGN);

        /* Every region and view costs an fd: start from the hard limit, not select()'s 1024. */
        r = fdlimit_raise(&rl);
        if (r < 0)
                log_warning("Cannot raise the file descriptor limit: %s", strerror(-r));
        else
                log_debug("File descriptor limit: %llu", (unsigned long long) rl.rlim_cur);

        /* A loop of its own, not the thread's default: sd-event checks a default loop's thread with a gettid()
         * system call in every iteration, one per message. */
        r = sd_event_new(&event);
        if (r < 0)
                return log_error_errno(r, "Cannot allocate event loop");
        r = sd_event_add_signal(event, NULL, SIGTERM, NULL, NULL);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGINT, NULL, NULL);
        if (r < 0)
                return log_error_errno(r, "Cannot watch signals");
        (void) sd_event_set_watchdog(event, true);

        r = manager_new(event, &m);
        if (r < 0)
                return log_error_errno(r, "Cannot allocate the manager");

        if (arg_policy) {
                m->policy_path = strdup(arg_policy);
                if (!m->policy_path)
                        return log_error_errno(ENOMEM, "Cannot allocate");
        }
        m->policy_loaded = log_policy;
        GmemError e = GMEM_ERROR_INIT;
        r = manager_load_policy(m, &e);
        if (r < 0) {
                log_error("Bad policy, not starting: %s", e.message);
                return r;
        }

        /* Made before privileges go: a socket in a directory only root may write to. */
        r = direct_socket_open(&direct_fd, &direct_made);
        if (r < 0)
                return r;

        start_owner_helper();
        r = drop_privileges();
        if (r < 0)
                return r;
        /* gmemd's own fd table, for re-opening view files: after the helper has closed its fds. */
        r = backend_reopen_init();
        if (r < 0)
                log_warning("Cannot open /proc/self/fd on procfs (%s): view files are re-opened by path and "
                            "checked one by one", strerror(-r));
        /* As gmemd's own user: the device's group, not root, decides. Without it the kmod backend is unavailable. */
        if (backend_kmod_open(arg_gmem_device) < 0)
                log_debug("Backend 'kmod': %s", backend_kmod_why());
        m->default_backend = arg_default_backend;
        if (backend_get(arg_default_backend)->probe(&e) < 0)
                log_warning("The default backend cannot be used: %s", e.message);
        e = (GmemError) GMEM_ERROR_INIT;

        r = sd_event_add_signal(event, NULL, SIGHUP, on_sighup, m);
        if (r < 0)
                return log_error_errno(r, "Cannot watch SIGHUP");

        r = store_new(m, store_max(), &store);
        if (r < 0)
                return log_error_errno(r, "Cannot allocate the fd store");
        if (!store_enabled(store))
                log_warning("No service manager keeps gmemd's file descriptors ($NOTIFY_SOCKET is unset): "
                            "if gmemd crashes or restarts, it forgets every %s. Memory a VM still maps stays with "
                            "that VM, but outside every quota, and no detach, revocation or migration reaches it "
                            "again; regions nothing holds open are freed",
                            store_has_ledger(store) ?
                            "memfd, hugetlb and secret region and the views and migrations on them "
                            "(gmem.ko keeps kmod regions, their views, VMs and migrations)" :
                            "region, VM, view and migration");
        if (store_enabled(store) || store_has_ledger(store)) {
                unsigned removed = 0;

                (void) sd_notify(false, "STATUS=Restoring");
                r = store_restore(store, DIRECT_SOCKET_FDNAME, &removed);
                if (r < 0)
                        return log_error_errno(r, "Cannot restore what the fd store or gmem.ko kept");
                if (r > 0 || removed > 0)
                        log_info("Restored %d entries from %s (%zu regions, %zu VMs), removed %u", r,
                                 store_restored_from_ledger(store) ? "gmem.ko" : "the fd store",
                                 hashmap_size(m->regions), hashmap_size(m->vms), removed);
        }
        store_attach(store);

        r = bus_link_new(m, event, arg_bus_address, arg_bus_name, &link);
        if (r < 0)
                return log_error_errno(r, "Cannot allocate");
        r = bus_link_start(link);
        if (r < 0)
                return r;

        if (direct_fd >= 0) {
                r = direct_server_new(m, event, &direct);
                if (r >= 0)
                        r = direct_server_listen(direct, TAKE_FD(direct_fd));
                if (r < 0)
                        return log_error_errno(r, "Cannot serve direct connections");
                log_info("Serving direct connections on %s", direct_made ? arg_direct_socket :
                         "the socket the service manager passed");
        }

        r = install_sandbox();
        if (r < 0)
                return r;

        log_backends();
        log_info("gmemd %s serving %s", GMEMD_VERSION, arg_bus_name);
        (void) sd_notifyf(false, "READY=1\nSTATUS=Serving %s", arg_bus_name);

        r = sd_event_loop(event);
        if (r < 0)
                return log_error_errno(r, "Event loop failed");
        if (r > 0)
                return -ENOTCONN;       /* the bus could not be reached again; said so already */

        (void) sd_notify(false, "STOPPING=1\nSTATUS=Shutting down");
        /* A socket made at --direct-socket= stays: the filter forbids unlink(), clients that find it get
         * ECONNREFUSED (libgmem then uses the bus), and the next start replaces it. */
        /* Nothing is removed from the store on the way out: whether a stop keeps it is the service manager's
         * (FileDescriptorStorePreserve=), and gmem.ko keeps kmod regions either way. */
        log_info("Shutting down: %u regions, %u VMs %s", (unsigned) hashmap_size(m->regions),
                 (unsigned) hashmap_size(m->vms),
                 store_enabled(store) ? "left in the fd store, for the service manager to keep or empty" :
                 store_has_ledger(store) ? "released (gmem.ko keeps the kmod ones)" : "released");
        return 0;
}

int main(int argc, char *argv[]) {
        int r = run(argc, argv);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
