/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * gmemctl.c — the command line of gmemctl, gmemd's client.
 *
 * gmemctl [OPTIONS...] VERB [ARGS...] [-- CMD ARGS...]. Options may appear
 * anywhere before a "--" and land in arg_* globals; a verb table names each
 * verb with its argument counts and handler. What follows "--" is the
 * command --exec starts (without --exec, "--" only ends the options, so a
 * name beginning with '-' can be given). The exit status is 0 on success,
 * 1 when the broker or the bus reports a failure, 2 for bad usage; every
 * error is printed once, as "gmemctl: <message>", where it is found.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "gmemctl.h"
#include "parse.h"

const char *arg_bus_address = NULL;
ConnectMode arg_connect = CONNECT_ANY;
const char *arg_direct_path = NULL;
bool arg_legend = true;
JsonMode arg_json = JSON_OFF;
const char *arg_backend = NULL;
uint64_t arg_hugepage_size = 0;
bool arg_populate = false;
const char *arg_owner = NULL;
int arg_fd = -EBADF;
pid_t arg_leader_pid = 0;
uid_t arg_uid = GMEM_UID_INVALID;
GmemAccess arg_access = GMEM_ACCESS_RW;
uint64_t arg_offset = 0;
uint64_t arg_length = 0;
bool arg_allocate = false;
bool arg_exec = false;
char **arg_exec_argv = NULL;
bool arg_no_commit = false;
char **arg_property = NULL;
const char *arg_qmp = NULL;
const char *arg_id = NULL;
uint64_t arg_timeout_usec = 30 * 1000000ULL;
static size_t n_arg_property = 0;

/* --property=A,B and -p A -p B add up. */
static int add_properties(const char *list) {
        for (const char *p = list; *p;) {
                size_t len = strcspn(p, ",");
                char **grown;

                if (len > 0) {
                        grown = realloc(arg_property, (n_arg_property + 2) * sizeof(char *));
                        if (!grown)
                                return log_error_errno(-ENOMEM, "Out of memory");
                        arg_property = grown;
                        arg_property[n_arg_property] = strndup(p, len);
                        if (!arg_property[n_arg_property])
                                return log_error_errno(-ENOMEM, "Out of memory");
                        arg_property[++n_arg_property] = NULL;
                }
                p += len;
                if (*p == ',')
                        p++;
        }
        return 0;
}

_printf_(1, 0) static void log_message(const char *fmt, va_list ap) {
        fflush(stdout);
        fputs("gmemctl: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
}

int log_error_errno(int r, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        log_message(fmt, ap);
        va_end(ap);
        return r;
}

int log_usage(const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        log_message(fmt, ap);
        va_end(ap);
        return -EUSAGE;
}

/*
 * Whether the bus itself refused the call under its policy, rather than gmemd
 * under its own (both answer AccessDenied): dbus-daemon and dbus-broker say so
 * in words of their own.
 */
static bool bus_refused(const char *name, const char *message) {
        return streq_ptr(name, "org.freedesktop.DBus.Error.AccessDenied") && message &&
               (strncmp(message, "Rejected send message", 21) == 0 ||                    /* dbus-daemon */
                strncmp(message, "Sender is not authorized to send message", 40) == 0);  /* dbus-broker */
}

int log_client_error(GmemClient *c, int r, const char *fallback, ...) {
        const char *message = gmem_client_last_error_message(c);
        va_list ap;

        if (!isempty(message)) {
                const char *name = gmem_client_last_error_name(c);

                if (streq_ptr(name, "org.freedesktop.DBus.Error.ServiceUnknown") ||
                    streq_ptr(name, "org.freedesktop.DBus.Error.NameHasNoOwner"))
                        return log_error_errno(r, "gmemd is not running on this bus: %s", message);
                if (bus_refused(name, message))
                        return log_error_errno(r, "%s (the bus lets only root and members of group gmem or "
                                               "gmem-admin call gmemd: org.gmemd.Broker1.conf)", message);
                return log_error_errno(r, "%s", message);
        }

        fflush(stdout);
        fputs("gmemctl: ", stderr);
        va_start(ap, fallback);
        vfprintf(stderr, fallback, ap);
        va_end(ap);
        fprintf(stderr, ": %s\n", strerror(r < 0 ? -r : r));
        return r;
}

int parse_size_arg(const char *what, const char *s, uint64_t *ret) {
        int r = gmem_parse_size(s, ret);

        if (r == -ERANGE)
                return log_usage("Invalid %s '%s': larger than 2^64 bytes", what, s);
        if (r < 0)
                return log_usage("Invalid %s '%s': expected a number of bytes with an optional "
                                 "K, M, G or T suffix", what, s);
        return 0;
}

static int help(void) {
        printf("%s [OPTIONS...] COMMAND ...\n\n"
               "Control gmemd, the guest-memory broker.\n\n"
               "Broker:\n"
               "  status                      Show the broker's version, backends and totals\n"
               "  show [NAME...]              Show the properties of the broker, or of regions,\n"
               "                              VMs and migrations (by id) as Name=value lines\n"
               "  monitor                     Print the broker's signals as they come\n"
               "  reload                      Make gmemd re-read its policy file\n"
               "  help                        Show this help\n\n"
               "Regions:\n"
               "  list-regions                List regions\n"
               "  create-region NAME SIZE     Create a region\n"
               "  adopt-region NAME --fd=N    Hand gmemd a guest_memfd to keep as a region\n"
               "  destroy-region NAME...      Destroy regions\n"
               "  discard REGION OFFSET LENGTH\n"
               "                              Punch a hole: every view reads zeros there\n"
               "  allocate REGION OFFSET LENGTH\n"
               "                              Pre-fault a range\n"
               "  set-attributes REGION OFFSET LENGTH private|shared\n"
               "                              Convert a range in place (kmod backend)\n"
               "  attributes REGION [OFFSET LENGTH]\n"
               "                              List the runs of private and shared pages\n\n"
               "VMs and views:\n"
               "  list-vms                    List VMs\n"
               "  register-vm NAME            Register a VM\n"
               "  unregister-vm NAME...       Unregister VMs, dropping their views\n"
               "  attach VM REGION...         Give a VM a view of regions\n"
               "  detach VM REGION...         Drop a VM's views of regions\n"
               "  get-fd VM REGION...         Hand out a VM's views again\n"
               "  hotplug VM REGION --qmp=SOCKET\n"
               "                              Plug the VM's view of a region into a running\n"
               "                              QEMU as a DIMM\n"
               "  unplug VM REGION --qmp=SOCKET\n"
               "                              Take the DIMM out again and detach the view\n\n"
               "Migrations:\n"
               "  migrate SRC DST             Move SRC's views to DST, without copying\n"
               "  list-migrations             List migrations\n"
               "  commit-migration ID         Activate DST's views, revoke SRC's\n"
               "  abort-migration ID          Drop DST's pending views\n\n"
               "Options:\n"
               "  -h --help                   Show this help\n"
               "     --version                Show the package version\n"
               "     --direct[=PATH]          Talk to the broker on its direct socket only\n"
               "                              (default: $GMEM_DIRECT_SOCKET, else\n"
               "                              " GMEM_DIRECT_SOCKET_DEFAULT ")\n"
               "     --bus                    Talk to the broker on the system bus only\n"
               "     --bus-address=ADDRESS    Talk to the broker on this D-Bus address\n"
               "     --no-legend              Print no table header and footer\n"
               "     --json=MODE              Print JSON: pretty, short or off\n"
               "     --no-pager               Accepted for compatibility; gmemctl never pages\n"
               "     --backend=NAME           create-region: memfd, hugetlb, secret or kmod\n"
               "     --hugepage-size=SIZE     create-region: huge page size of hugetlb\n"
               "     --populate               create-region: pre-fault the whole region\n"
               "     --owner=VM               create-region, adopt-region: the VM that may allocate\n"
               "     --fd=N                   adopt-region: the guest_memfd, an fd gmemctl inherited\n"
               "     --leader-pid=PID         register-vm: release the views when PID exits\n"
               "     --uid=UID                register-vm: the hypervisor's user\n"
               "     --ro                     attach: read-only views (default: read-write)\n"
               "     --offset=SIZE            attach: the window's start\n"
               "     --length=SIZE            attach: the window's length\n"
               "     --allocate               attach: the view may punch holes and allocate\n"
               "     --exec                   attach, get-fd, migrate: run the command after\n"
               "                              \"--\" with the views' fds in $GMEM_FD, $GMEM_FDS\n"
               "     --no-commit              migrate: prepare only, print the migration\n"
               "     --qmp=SOCKET             hotplug, unplug: the QEMU's QMP socket\n"
               "     --id=ID                  hotplug, unplug: name the DIMM dimm-ID and its\n"
               "                              backend mem-ID (default: VM.REGION)\n"
               "     --timeout=SECONDS        hotplug, unplug: wait this long for QEMU and for\n"
               "                              the guest to release a DIMM (default: 30)\n"
               "  -p --property=NAME[,NAME...]\n"
               "                              show: only these properties\n\n"
               "Sizes take K, M, G and T suffixes (powers of 1024).\n"
               "See the gmemctl(1) man page for details.\n",
               program_invocation_short_name);
        return 0;
}

static int parse_uid_arg(const char *s, uid_t *ret) {
        uint64_t v;
        char *end;

        if (s[0] >= '0' && s[0] <= '9') {
                errno = 0;
                v = strtoull(s, &end, 10);
                if (errno != 0 || *end || v >= UINT32_MAX)
                        return log_usage("Invalid UID '%s'", s);
                *ret = (uid_t) v;
                return 0;
        } else {
                struct passwd *pw = getpwnam(s);

                if (!pw)
                        return log_usage("Unknown user '%s'", s);
                *ret = pw->pw_uid;
                return 0;
        }
}

static int parse_argv(int argc, char *argv[], int *ret_argc) {
        enum {
                ARG_VERSION = 0x100,
                ARG_BUS_ADDRESS,
                ARG_DIRECT,
                ARG_BUS,
                ARG_NO_LEGEND,
                ARG_JSON,
                ARG_NO_PAGER,
                ARG_BACKEND,
                ARG_HUGEPAGE_SIZE,
                ARG_POPULATE,
                ARG_OWNER,
                ARG_LEADER_PID,
                ARG_UID,
                ARG_RO,
                ARG_OFFSET,
                ARG_LENGTH,
                ARG_ALLOCATE,
                ARG_EXEC,
                ARG_NO_COMMIT,
                ARG_FD,
                ARG_QMP,
                ARG_ID,
                ARG_TIMEOUT,
        };
        static const struct option options[] = {
                { "help",          no_argument,       NULL, 'h'               },
                { "version",       no_argument,       NULL, ARG_VERSION       },
                { "bus-address",   required_argument, NULL, ARG_BUS_ADDRESS   },
                { "direct",        optional_argument, NULL, ARG_DIRECT        },
                { "bus",           no_argument,       NULL, ARG_BUS           },
                { "no-legend",     no_argument,       NULL, ARG_NO_LEGEND     },
                { "json",          optional_argument, NULL, ARG_JSON          },
                { "no-pager",      no_argument,       NULL, ARG_NO_PAGER      },
                { "backend",       required_argument, NULL, ARG_BACKEND       },
                { "hugepage-size", required_argument, NULL, ARG_HUGEPAGE_SIZE },
                { "populate",      no_argument,       NULL, ARG_POPULATE      },
                { "owner",         required_argument, NULL, ARG_OWNER         },
                { "leader-pid",    required_argument, NULL, ARG_LEADER_PID    },
                { "uid",           required_argument, NULL, ARG_UID           },
                { "ro",            no_argument,       NULL, ARG_RO            },
                { "offset",        required_argument, NULL, ARG_OFFSET        },
                { "length",        required_argument, NULL, ARG_LENGTH        },
                { "allocate",      no_argument,       NULL, ARG_ALLOCATE      },
                { "exec",          no_argument,       NULL, ARG_EXEC          },
                { "no-commit",     no_argument,       NULL, ARG_NO_COMMIT     },
                { "fd",            required_argument, NULL, ARG_FD            },
                { "qmp",           required_argument, NULL, ARG_QMP           },
                { "id",            required_argument, NULL, ARG_ID            },
                { "timeout",       required_argument, NULL, ARG_TIMEOUT       },
                { "property",      required_argument, NULL, 'p'               },
                {}
        };
        int dashdash = argc, c, r;

        /*
         * getopt moves "--" in front of the arguments it permutes, so find
         * it first: the options and the verb's arguments come before it.
         */
        for (int i = 1; i < argc; i++)
                if (streq(argv[i], "--")) {
                        dashdash = i;
                        break;
                }

        opterr = 0;
        while ((c = getopt_long(dashdash, argv, ":hp:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        return help();
                case ARG_VERSION:
                        printf("gmemctl %s\n", GMEMD_VERSION);
                        return 0;
                case ARG_BUS_ADDRESS:
                        if (isempty(optarg))
                                return log_usage("--bus-address= needs an address");
                        arg_bus_address = optarg;
                        break;
                case ARG_DIRECT:
                        if (optarg && isempty(optarg))
                                return log_usage("--direct= needs the path of a socket (or no '=' for the default)");
                        if (arg_connect == CONNECT_BUS)
                                return log_usage("--direct and --bus exclude each other");
                        arg_connect = CONNECT_DIRECT;
                        arg_direct_path = optarg;
                        break;
                case ARG_BUS:
                        if (arg_connect == CONNECT_DIRECT)
                                return log_usage("--direct and --bus exclude each other");
                        arg_connect = CONNECT_BUS;
                        break;
                case ARG_NO_LEGEND:
                        arg_legend = false;
                        break;
                case ARG_JSON:
                        if (!optarg)
                                arg_json = isatty(STDOUT_FILENO) ? JSON_PRETTY : JSON_SHORT;
                        else if (streq(optarg, "pretty"))
                                arg_json = JSON_PRETTY;
                        else if (streq(optarg, "short"))
                                arg_json = JSON_SHORT;
                        else if (streq(optarg, "off"))
                                arg_json = JSON_OFF;
                        else
                                return log_usage("Unknown --json= mode '%s': use pretty, short or off", optarg);
                        break;
                case ARG_NO_PAGER:
                        break;
                case ARG_BACKEND:
                        arg_backend = optarg;
                        break;
                case ARG_HUGEPAGE_SIZE:
                        r = parse_size_arg("huge page size", optarg, &arg_hugepage_size);
                        if (r < 0)
                                return r;
                        break;
                case ARG_POPULATE:
                        arg_populate = true;
                        break;
                case ARG_OWNER:
                        arg_owner = optarg;
                        break;
                case ARG_LEADER_PID: {
                        char *end;
                        long v;

                        errno = 0;
                        v = strtol(optarg, &end, 10);
                        if (errno != 0 || *end || end == optarg || v <= 0 || v > INT32_MAX)
                                return log_usage("Invalid leader PID '%s'", optarg);
                        arg_leader_pid = (pid_t) v;
                        break;
                }
                case ARG_FD: {
                        char *end;
                        long v;

                        errno = 0;
                        v = strtol(optarg, &end, 10);
                        if (errno != 0 || *end || end == optarg || v < 0 || v > INT32_MAX)
                                return log_usage("Invalid --fd='%s': expected a file descriptor number", optarg);
                        arg_fd = (int) v;
                        break;
                }
                case ARG_QMP:
                        if (isempty(optarg))
                                return log_usage("--qmp= needs the path of a QMP socket");
                        arg_qmp = optarg;
                        break;
                case ARG_ID:
                        arg_id = optarg;
                        break;
                case ARG_TIMEOUT: {
                        char *end;
                        unsigned long v;

                        errno = 0;
                        v = strtoul(optarg, &end, 10);
                        if (errno != 0 || *end || end == optarg || optarg[0] == '-' || v == 0 || v > 3600)
                                return log_usage("Invalid --timeout='%s': expected 1 to 3600 seconds", optarg);
                        arg_timeout_usec = (uint64_t) v * 1000000U;
                        break;
                }
                case ARG_UID:
                        r = parse_uid_arg(optarg, &arg_uid);
                        if (r < 0)
                                return r;
                        break;
                case ARG_RO:
                        arg_access = GMEM_ACCESS_RO;
                        break;
                case ARG_OFFSET:
                        r = parse_size_arg("offset", optarg, &arg_offset);
                        if (r < 0)
                                return r;
                        break;
                case ARG_LENGTH:
                        r = parse_size_arg("length", optarg, &arg_length);
                        if (r < 0)
                                return r;
                        if (arg_length == 0)
                                return log_usage("Invalid length '%s': a window needs at least one page", optarg);
                        break;
                case ARG_ALLOCATE:
                        arg_allocate = true;
                        break;
                case ARG_EXEC:
                        arg_exec = true;
                        break;
                case ARG_NO_COMMIT:
                        arg_no_commit = true;
                        break;
                case 'p':
                        r = add_properties(optarg);
                        if (r < 0)
                                return r;
                        break;
                case ':':
                        return log_usage("Option '%s' needs an argument", argv[optind - 1]);
                case '?':
                        if (optopt != 0)
                                return log_usage("Unknown option '-%c'", optopt);
                        return log_usage("Unknown option '%s'", argv[optind - 1]);
                default:
                        return log_usage("Unexpected option");
                }

        if (arg_connect == CONNECT_DIRECT && arg_bus_address)
                return log_usage("--direct and --bus-address= exclude each other: the direct socket is no bus");

        if (arg_exec) {
                if (dashdash + 1 >= argc)
                        return log_usage("--exec needs a command after \"--\"");
                arg_exec_argv = argv + dashdash + 1;
                *ret_argc = dashdash;
        } else if (dashdash < argc) {
                /* Without --exec, "--" only ends the options; what follows are arguments. */
                memmove(argv + dashdash, argv + dashdash + 1, (size_t) (argc - dashdash) * sizeof(char *));
                *ret_argc = argc - 1;
        } else
                *ret_argc = argc;

        return 1;
}

typedef struct Verb {
        const char *name;
        int min_args, max_args;   /* counting the verb; -1: no limit */
        bool exec;                /* takes --exec */
        int (*dispatch)(GmemClient *c, int argc, char **argv);
} Verb;

static const Verb verbs[] = {
        { "status",           1,  1, false, verb_status           },
        { "show",             1, -1, false, verb_show             },
        { "list-regions",     1,  1, false, verb_list_regions     },
        { "create-region",    3,  3, false, verb_create_region    },
        { "adopt-region",     2,  2, false, verb_adopt_region     },
        { "destroy-region",   2, -1, false, verb_destroy_region   },
        { "list-vms",         1,  1, false, verb_list_vms         },
        { "register-vm",      2,  2, false, verb_register_vm      },
        { "unregister-vm",    2, -1, false, verb_unregister_vm    },
        { "attach",           3, -1, true,  verb_attach           },
        { "detach",           3, -1, false, verb_detach           },
        { "get-fd",           3, -1, true,  verb_get_fd           },
        { "hotplug",          3,  3, false, verb_hotplug          },
        { "unplug",           3,  3, false, verb_unplug           },
        { "migrate",          3,  3, true,  verb_migrate          },
        { "list-migrations",  1,  1, false, verb_list_migrations  },
        { "commit-migration", 2,  2, false, verb_commit_migration },
        { "abort-migration",  2,  2, false, verb_commit_migration },
        { "discard",          4,  4, false, verb_discard          },
        { "allocate",         4,  4, false, verb_discard          },
        { "set-attributes",   5,  5, false, verb_set_attributes   },
        { "attributes",       2,  4, false, verb_attributes       },
        { "monitor",          1,  1, false, verb_monitor          },
        { "reload",           1,  1, false, verb_reload           },
};

/* sd_bus_open_system()'s choice: $DBUS_SYSTEM_BUS_ADDRESS, else the well-known socket. */
static const char *system_bus_address(void) {
        const char *address = getenv("DBUS_SYSTEM_BUS_ADDRESS");

        return isempty(address) ? GMEM_SYSTEM_BUS_ADDRESS_DEFAULT : address;
}

/* "No such file or directory (ENOENT)". */
static const char *error_text(int r, char *buf, size_t size) {
        const char *name = strerrorname_np(-r);

        (void) snprintf(buf, size, "%s%s%s%s", strerror(-r), name ? " (" : "", strempty(name), name ? ")" : "");
        return buf;
}

/*
 * --direct: the direct socket or nothing; --bus-address=: that bus; --bus:
 * the system bus; neither: gmem_connect()'s choice, the direct socket when
 * it lets us in, else the system bus.
 */
static int connect_broker(GmemClient **ret) {
        char buf[256];
        int r;

        if (arg_connect == CONNECT_DIRECT) {
                const char *path = arg_direct_path;

                if (!path) {
                        path = secure_getenv("GMEM_DIRECT_SOCKET");
                        if (isempty(path))
                                path = GMEM_DIRECT_SOCKET_DEFAULT;
                }
                r = gmem_connect_direct(path, ret);
                if (r < 0)
                        return log_error_errno(r, "Failed to connect to gmemd's direct socket %s: %s", path,
                                               error_text(r, buf, sizeof(buf)));
                return 0;
        }

        if (arg_bus_address) {
                r = gmem_connect_address(arg_bus_address, ret);
                if (r < 0)
                        return log_error_errno(r, "Failed to connect to the bus at %s: %s", arg_bus_address,
                                               error_text(r, buf, sizeof(buf)));
                return 0;
        }

        if (arg_connect == CONNECT_BUS)
                r = gmem_connect_address(system_bus_address(), ret);
        else
                r = gmem_connect(ret);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the system bus at %s: %s", system_bus_address(),
                                       error_text(r, buf, sizeof(buf)));
        return 0;
}

static int dispatch_verb(int argc, char **argv) {
        _cleanup_(gmem_client_unrefp) GmemClient *c = NULL;
        static char *default_verb[] = { (char *) "status", NULL };
        const Verb *verb = NULL;
        int n, r;

        if (argc <= 0) {
                argv = default_verb;
                argc = 1;
        }

        /* "help" is --help: no bus needed. */
        if (streq(argv[0], "help")) {
                if (argc > 1)
                        return log_usage("help: too many arguments; see --help");
                return help();
        }

        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verbs[i].name, argv[0])) {
                        verb = &verbs[i];
                        break;
                }
        if (!verb)
                return log_usage("Unknown command '%s'; see --help", argv[0]);

        n = argc;
        if (n < verb->min_args)
                return log_usage("%s: too few arguments; see --help", verb->name);
        if (verb->max_args >= 0 && n > verb->max_args)
                return log_usage("%s: too many arguments; see --help", verb->name);
        if (arg_exec && !verb->exec)
                return log_usage("%s does not take --exec", verb->name);

        r = connect_broker(&c);
        if (r < 0)
                return r;

        return verb->dispatch(c, argc, argv);
}

int main(int argc, char *argv[]) {
        int n_args = 0, r;

        r = parse_argv(argc, argv, &n_args);
        if (r <= 0)
                goto finish;

        r = dispatch_verb(n_args - optind, argv + optind);

finish:
        for (size_t i = 0; i < n_arg_property; i++)
                free(arg_property[i]);
        free(arg_property);
        if (fflush(stdout) != 0 && r >= 0)
                r = log_error_errno(-EIO, "Failed to write to standard output");
        if (r == -EUSAGE)
                return 2;
        return r < 0 ? 1 : 0;
}
