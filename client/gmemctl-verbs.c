/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * gmemctl-verbs.c — gmemctl's verbs for the broker, its regions and its VMs.
 *
 * Each verb reads its arguments, calls libgmem, and prints either nothing
 * (a change that succeeded), a table, a status block, or a stream of events
 * (monitor). A verb acting on several names tries every one and fails if
 * any failed, printing each failure as it happens.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "gmemctl.h"
#include "parse.h"

/* What each Persistence value means for a crash or restart of gmemd, as gmemd(8) says it. */
static const char *persistence_meaning(const char *p) {
        if (streq_ptr(p, "fd-store"))
                return " (the service manager keeps every region, VM, view and migration across a restart)";
        if (streq_ptr(p, "kernel"))
                return " (gmem.ko keeps kmod regions with their VMs, views and migrations; a restart forgets the rest)";
        if (streq_ptr(p, "degraded"))
                return " (something could not be stored: a restart may forget objects)";
        if (streq_ptr(p, "none"))
                return " (a restart forgets every region, VM, view and migration)";
        return "";
}

int verb_status(GmemClient *c, int argc, char **argv) {
        GmemManagerProperties *p = NULL;
        GmemRegionInfo *regions = NULL;
        GmemVmInfo *vms = NULL;
        GmemMigrationInfo *migrations = NULL;
        size_t n_regions = 0, n_vms = 0, n_migrations = 0;
        char total[GMEM_FORMAT_SIZE_MAX], allocated[GMEM_FORMAT_SIZE_MAX];
        int r;

        r = gmem_get_manager_properties(c, &p);
        if (r < 0)
                return log_client_error(c, r, "Failed to read the broker's properties");
        r = gmem_list_regions(c, &regions, &n_regions);
        if (r < 0) {
                log_client_error(c, r, "Failed to list regions");
                goto finish;
        }
        r = gmem_list_vms(c, &vms, &n_vms);
        if (r < 0) {
                log_client_error(c, r, "Failed to list VMs");
                goto finish;
        }
        r = gmem_list_migrations(c, &migrations, &n_migrations);
        if (r < 0) {
                log_client_error(c, r, "Failed to list migrations");
                goto finish;
        }

        if (arg_json != JSON_OFF) {
                struct json_object *o = json_object_new_object(), *b = json_object_new_array();

                for (char **s = p->backends; *s; s++)
                        json_object_array_add(b, json_object_new_string(*s));
                json_object_object_add(o, "version", json_object_new_string(strempty(p->version)));
                json_object_object_add(o, "backends", b);
                json_object_object_add(o, "default_backend", json_object_new_string(strempty(p->default_backend)));
                json_object_object_add(o, "total_bytes", json_object_new_uint64(p->total_bytes));
                json_object_object_add(o, "allocated_bytes", json_object_new_uint64(p->allocated_bytes));
                json_object_object_add(o, "persistence", p->persistence ? json_object_new_string(p->persistence) : NULL);
                json_object_object_add(o, "regions", json_object_new_uint64(n_regions));
                json_object_object_add(o, "vms", json_object_new_uint64(n_vms));
                json_object_object_add(o, "migrations", json_object_new_uint64(n_migrations));
                r = print_json(o);
                goto finish;
        }

        printf("       Version: %s\n", strempty(p->version));
        printf("      Backends:");
        for (char **s = p->backends; *s; s++)
                printf(" %s", *s);
        printf("\nDefaultBackend: %s\n", strempty(p->default_backend));
        printf("    TotalBytes: %s (%" PRIu64 ")\n",
               gmem_format_size(total, sizeof(total), p->total_bytes), p->total_bytes);
        printf("AllocatedBytes: %s (%" PRIu64 ")\n",
               gmem_format_size(allocated, sizeof(allocated), p->allocated_bytes), p->allocated_bytes);
        printf("   Persistence: %s%s\n", p->persistence ?: "-", persistence_meaning(p->persistence));
        printf("       Regions: %zu\n", n_regions);
        printf("           VMs: %zu\n", n_vms);
        printf("    Migrations: %zu\n", n_migrations);
        r = 0;

finish:
        gmem_manager_properties_free(p);
        gmem_region_info_array_free(regions, n_regions);
        gmem_vm_info_array_free(vms, n_vms);
        gmem_migration_info_array_free(migrations, n_migrations);
        return r;
}

/* "vm:rw,vm2:ro:pending" for the table; the other side of each view is named. */
static char *format_views(const GmemViewInfo *views, size_t n, bool name_vm) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f;

        if (n == 0)
                return NULL;
        f = open_memstream(&buf, &size);
        if (!f)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                fprintf(f, "%s%s:%s", i > 0 ? "," : "", name_vm ? views[i].vm : views[i].region,
                        views[i].access);
                if (!streq(views[i].state, view_state_to_string(VIEW_STATE_ACTIVE)))
                        fprintf(f, ":%s", views[i].state);
        }
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

static struct json_object *json_views(const GmemViewInfo *views, size_t n, bool name_vm) {
        struct json_object *a = json_object_new_array_ext(n > 0 && n < INT_MAX ? (int) n : 1);

        for (size_t i = 0; i < n; i++) {
                struct json_object *o = json_object_new_object();

                json_object_object_add(o, name_vm ? "vm" : "region",
                                       json_object_new_string(name_vm ? views[i].vm : views[i].region));
                json_object_object_add(o, "access", json_object_new_string(views[i].access));
                json_object_object_add(o, "state", json_object_new_string(views[i].state));
                json_object_array_add(a, o);
        }
        return a;
}

int verb_list_regions(GmemClient *c, int argc, char **argv) {
        static const char *const headers[] = { "NAME", "SIZE", "ALLOCATED", "BACKEND", "OWNER", "VIEWS" };
        static const char *const keys[] = { "name", "size", "allocated_bytes", "backend", "owner", "views" };
        _cleanup_table_ Table *t = NULL;
        GmemRegionProperties *regions = NULL;
        size_t n = 0;
        int r;

        /* One call for every column, however many regions there are. */
        r = gmem_list_regions_full(c, &regions, &n);
        if (r < 0)
                return log_client_error(c, r, "Failed to list regions");

        t = table_new(ELEMENTSOF(headers), headers, keys);
        if (!t || table_reserve(t, n) < 0) {
                r = log_error_errno(-ENOMEM, "Out of memory");
                goto finish;
        }

        for (size_t i = 0; i < n; i++) {
                const GmemRegionProperties *p = &regions[i];
                _cleanup_free_ char *views = table_wants_json(t) ? NULL : format_views(p->views, p->n_views, true);

                r = table_add_string(t, p->name);
                if (r >= 0)
                        r = table_add_size(t, p->size);
                if (r >= 0)
                        r = table_add_size(t, p->allocated_bytes);
                if (r >= 0)
                        r = table_add_string(t, p->backend);
                if (r >= 0)
                        r = table_add_string(t, p->owner);
                if (r >= 0)
                        r = table_add_cell(t, views ? views : "-",
                                           table_wants_json(t) ? json_views(p->views, p->n_views, true) : NULL, false);
                if (r < 0) {
                        log_error_errno(r, "Out of memory");
                        goto finish;
                }
        }

        r = table_print(t, "No regions.", "region", "regions", "listed");

finish:
        gmem_region_properties_array_free(regions, n);
        return r;
}

int verb_create_region(GmemClient *c, int argc, char **argv) {
        GmemRegionOptions options = {
                .backend = arg_backend,
                .hugepage_size = arg_hugepage_size,
                .owner = arg_owner,
                .populate = arg_populate,
        };
        uint64_t size;
        int r;

        r = parse_size_arg("size", argv[2], &size);
        if (r < 0)
                return r;

        r = gmem_create_region(c, argv[1], size, &options, NULL);
        if (r < 0)
                return log_client_error(c, r, "Failed to create region '%s'", argv[1]);
        return 0;
}

int verb_adopt_region(GmemClient *c, int argc, char **argv) {
        GmemRegionOptions options = {
                .backend = arg_backend,
                .owner = arg_owner,
        };
        const char *message;
        int r;

        if (arg_fd < 0)
                return log_usage("adopt-region needs --fd=N, the guest_memfd gmemctl inherited as fd N");
        if (arg_hugepage_size > 0 || arg_populate)
                return log_usage("--hugepage-size and --populate do not apply to adopt-region");
        if (fcntl(arg_fd, F_GETFD) < 0)
                return log_error_errno(-errno, "fd %d is not open in gmemctl: %s", arg_fd, strerror(errno));

        r = gmem_adopt_region(c, argv[1], arg_fd, &options, NULL);
        if (r < 0) {
                message = gmem_client_last_error_message(c);
                if (isempty(message))
                        return log_client_error(c, r, "Failed to adopt fd %d as region '%s'", arg_fd, argv[1]);
                return log_error_errno(r, "Cannot adopt fd %d as region '%s': %s", arg_fd, argv[1], message);
        }
        return 0;
}

int verb_destroy_region(GmemClient *c, int argc, char **argv) {
        int ret = 0, r;

        for (int i = 1; i < argc; i++) {
                r = gmem_destroy_region(c, argv[i]);
                if (r < 0) {
                        log_client_error(c, r, "Failed to destroy region '%s'", argv[i]);
                        if (ret == 0)
                                ret = r;
                }
        }
        return ret;
}

int verb_list_vms(GmemClient *c, int argc, char **argv) {
        static const char *const headers[] = { "NAME", "LEADER", "UID", "VIEWS" };
        static const char *const keys[] = { "name", "leader_pid", "uid", "views" };
        _cleanup_table_ Table *t = NULL;
        GmemVmProperties *vms = NULL;
        size_t n = 0;
        int r;

        /* One call for every column, however many VMs there are. */
        r = gmem_list_vms_full(c, &vms, &n);
        if (r < 0)
                return log_client_error(c, r, "Failed to list VMs");

        t = table_new(ELEMENTSOF(headers), headers, keys);
        if (!t || table_reserve(t, n) < 0) {
                r = log_error_errno(-ENOMEM, "Out of memory");
                goto finish;
        }

        for (size_t i = 0; i < n; i++) {
                const GmemVmProperties *p = &vms[i];
                _cleanup_free_ char *views = table_wants_json(t) ? NULL : format_views(p->views, p->n_views, false);

                r = table_add_string(t, p->name);
                if (r >= 0)
                        r = table_add_id(t, (uint32_t) p->leader_pid);
                if (r >= 0 && p->uid != GMEM_UID_INVALID) {
                        /* UID 0 is a real user, unlike PID 0. */
                        char buf[16];

                        (void) snprintf(buf, sizeof(buf), "%" PRIu32, (uint32_t) p->uid);
                        r = table_add_cell(t, buf, table_wants_json(t) ? json_object_new_uint64(p->uid) : NULL, true);
                } else if (r >= 0)
                        r = table_add_cell(t, "-", NULL, true);
                if (r >= 0)
                        r = table_add_cell(t, views ? views : "-",
                                           table_wants_json(t) ? json_views(p->views, p->n_views, false) : NULL, false);
                if (r < 0) {
                        log_error_errno(r, "Out of memory");
                        goto finish;
                }
        }

        r = table_print(t, "No VMs.", "VM", "VMs", "listed");

finish:
        gmem_vm_properties_array_free(vms, n);
        return r;
}

/*
 * --leader-pid: the broker gets a pidfd opened here, so the pid cannot come to name another process on the
 * way; a broker that does not know the leader option, or a system without pidfd_open, gets the pid.
 */
int verb_register_vm(GmemClient *c, int argc, char **argv) {
        _cleanup_close_ int pidfd = -EBADF;
        int r;

        if (arg_leader_pid > 0) {
                pidfd = (int) syscall(__NR_pidfd_open, arg_leader_pid, 0);
                if (pidfd < 0 && errno == ESRCH)
                        return log_error_errno(-ESRCH, "Failed to register VM '%s': no process %d", argv[1],
                                               (int) arg_leader_pid);
                /* A thread's id: EINVAL before Linux 6.9, ENOENT since (pidfd_open(2)). */
                if (pidfd < 0 && (errno == EINVAL || errno == ENOENT))
                        return log_error_errno(-EINVAL, "Failed to register VM '%s': %d is not a process "
                                               "(thread-group leader) id", argv[1], (int) arg_leader_pid);
                if (pidfd < 0 && errno != ENOSYS) {
                        r = -errno;
                        return log_error_errno(r, "Failed to open a pidfd of process %d: %s", (int) arg_leader_pid,
                                               strerror(-r));
                }
        }
        if (pidfd >= 0) {
                r = gmem_register_vm_with_leader_fd(c, argv[1], pidfd, arg_uid, NULL);
                if (r != -EOPNOTSUPP)
                        goto finish;
        }
        r = gmem_register_vm(c, argv[1], arg_leader_pid, arg_uid, NULL);
finish:
        if (r < 0)
                return log_client_error(c, r, "Failed to register VM '%s'", argv[1]);
        return 0;
}

int verb_unregister_vm(GmemClient *c, int argc, char **argv) {
        int ret = 0, r;

        for (int i = 1; i < argc; i++) {
                r = gmem_unregister_vm(c, argv[i]);
                if (r < 0) {
                        log_client_error(c, r, "Failed to unregister VM '%s'", argv[i]);
                        if (ret == 0)
                                ret = r;
                }
        }
        return ret;
}

int verb_discard(GmemClient *c, int argc, char **argv) {
        bool discard = streq(argv[0], "discard");
        uint64_t offset, length;
        int r;

        r = parse_size_arg("offset", argv[2], &offset);
        if (r < 0)
                return r;
        r = parse_size_arg("length", argv[3], &length);
        if (r < 0)
                return r;

        r = discard ? gmem_discard(c, argv[1], offset, length) : gmem_allocate(c, argv[1], offset, length);
        if (r < 0)
                return log_client_error(c, r, "Failed to %s a range of region '%s'",
                                        discard ? "discard" : "allocate", argv[1]);
        return 0;
}

int verb_set_attributes(GmemClient *c, int argc, char **argv) {
        uint64_t offset, length;
        int r, a;

        r = parse_size_arg("offset", argv[2], &offset);
        if (r < 0)
                return r;
        r = parse_size_arg("length", argv[3], &length);
        if (r < 0)
                return r;
        a = gmem_memory_attribute_from_string(argv[4]);
        if (a < 0)
                return log_usage("Invalid memory attribute '%s': expected private or shared", argv[4]);
        r = gmem_set_memory_attributes(c, argv[1], offset, length, (GmemMemoryAttribute) a);
        if (r < 0)
                return log_client_error(c, r, "Failed to make a range of region '%s' %s", argv[1], argv[4]);
        return 0;
}

/* attributes REGION [OFFSET LENGTH]: the runs of pages that share a memory attribute. */
int verb_attributes(GmemClient *c, int argc, char **argv) {
        static const char *const headers[] = { "OFFSET", "LENGTH", "ATTRIBUTE" };
        static const char *const keys[] = { "offset", "length", "attribute" };
        _cleanup_table_ Table *t = NULL;
        _cleanup_free_ GmemAttributeRun *runs = NULL;
        uint64_t offset = 0, length = 0;
        size_t n = 0;
        int r;

        if (argc != 2 && argc != 4)
                return log_usage("attributes takes a region, or a region, an offset and a length");
        if (argc == 4) {
                r = parse_size_arg("offset", argv[2], &offset);
                if (r < 0)
                        return r;
                r = parse_size_arg("length", argv[3], &length);
                if (r < 0)
                        return r;
        } else {
                GmemRegionProperties *p = NULL;

                r = gmem_get_region_properties(c, argv[1], &p);
                if (r < 0)
                        return log_client_error(c, r, "Failed to read region '%s'", argv[1]);
                length = p->size;
                gmem_region_properties_free(p);
        }
        r = gmem_get_memory_attributes(c, argv[1], offset, length, &runs, &n);
        if (r < 0)
                return log_client_error(c, r, "Failed to read the memory attributes of region '%s'", argv[1]);

        t = table_new(ELEMENTSOF(headers), headers, keys);
        if (!t)
                return log_error_errno(-ENOMEM, "Out of memory");
        for (size_t i = 0; i < n; i++) {
                r = table_add_size(t, runs[i].offset);
                if (r >= 0)
                        r = table_add_size(t, runs[i].length);
                if (r >= 0)
                        r = table_add_string(t, gmem_memory_attribute_to_string(runs[i].attribute));
                if (r < 0)
                        return log_error_errno(r, "Out of memory");
        }
        return table_print(t, "No pages.", "run", "runs", "listed");
}

int verb_reload(GmemClient *c, int argc, char **argv) {
        int r = gmem_reload(c);
        if (r < 0)
                return log_client_error(c, r, "Failed to reload the policy");
        return 0;
}

static void json_add(struct json_object *o, const char *key, const char *value) {
        if (value)
                json_object_object_add(o, key, json_object_new_string(value));
}

/* One line per signal: "RegionNew name=ram path=/org/gmemd/Broker1/region/ram". */
static int on_event(GmemClient *c, const GmemEvent *e, void *userdata) {
        /* The ObjectManager's InterfacesAdded/Removed repeat RegionNew, VmNew and their kin. */
        if (e->type == GMEM_EVENT_OTHER && streq_ptr(e->interface, "org.freedesktop.DBus.ObjectManager"))
                return 0;

        if (arg_json != JSON_OFF) {
                struct json_object *o = json_object_new_object();
                JsonMode saved = arg_json;
                int r;

                json_add(o, "signal", e->member);
                json_add(o, "path", e->path);
                json_add(o, "name", e->name);
                json_add(o, "object", e->object);
                json_add(o, "vm", e->vm);
                json_add(o, "region", e->region);
                json_add(o, "state", e->state);
                json_add(o, "interface", e->interface);
                json_add(o, e->type == GMEM_EVENT_PROPERTIES_CHANGED ? "properties" : "arguments",
                         e->properties);
                arg_json = JSON_SHORT;   /* one object per line */
                r = print_json(o);
                arg_json = saved;
                fflush(stdout);
                return r;
        }

        switch (e->type) {
        case GMEM_EVENT_REGION_NEW:
        case GMEM_EVENT_REGION_REMOVED:
        case GMEM_EVENT_VM_NEW:
        case GMEM_EVENT_VM_REMOVED:
                printf("%s name=%s path=%s\n", e->member, e->name, e->object);
                break;
        case GMEM_EVENT_VIEW_REVOKED:
                printf("%s vm=%s region=%s\n", e->member, e->vm, e->region);
                break;
        case GMEM_EVENT_MIGRATION_CHANGED:
                printf("%s migration=%s state=%s\n", e->member, e->object, e->state);
                break;
        case GMEM_EVENT_PROPERTIES_CHANGED:
                printf("%s path=%s interface=%s %s\n", e->member, e->path, strempty(e->interface),
                       strempty(e->properties));
                break;
        default:
                printf("%s path=%s interface=%s %s\n", e->member, e->path, strempty(e->interface),
                       strempty(e->properties));
        }
        fflush(stdout);
        return 0;
}

int verb_monitor(GmemClient *c, int argc, char **argv) {
        _cleanup_close_ int sfd = -EBADF;
        sigset_t mask;
        int r;

        /* SIGINT and SIGTERM end the loop cleanly, through a signalfd polled with the bus. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(-errno, "Failed to block signals: %s", strerror(errno));
        sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (sfd < 0)
                return log_error_errno(-errno, "Failed to create a signalfd: %s", strerror(errno));

        r = gmem_subscribe(c, on_event, NULL);
        if (r < 0)
                return log_client_error(c, r, "Failed to subscribe to the broker's signals");

        for (;;) {
                struct pollfd p[2];

                do {
                        r = gmem_client_process(c);
                        if (r < 0)
                                return log_error_errno(r, "Lost the bus connection: %s", strerror(-r));
                } while (r > 0);

                r = gmem_client_get_events(c);
                if (r < 0)
                        return log_error_errno(r, "Lost the bus connection: %s", strerror(-r));
                p[0] = (struct pollfd) { .fd = gmem_client_get_fd(c), .events = (short) r };
                p[1] = (struct pollfd) { .fd = sfd, .events = POLLIN };

                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return log_error_errno(-errno, "Failed to wait for signals: %s", strerror(errno));
                }
                if (p[1].revents)
                        return 0;
        }
}

/* Whether a "Name=value" line is one --property= asked for (all of them without the option). */
static bool property_wanted(const char *line) {
        size_t len = strcspn(line, "=");

        if (!arg_property)
                return true;
        for (char **p = arg_property; *p; p++)
                if (strlen(*p) == len && strncmp(*p, line, len) == 0)
                        return true;
        return false;
}

static int show_object(GmemClient *c, const char *path, bool *first) {
        char **lines = NULL;
        int r;

        r = gmem_get_properties_text(c, path, &lines);
        if (r < 0)
                return log_client_error(c, r, "Failed to read the properties of %s", path);
        if (!*first)
                putchar('\n');
        *first = false;
        for (char **l = lines; *l; l++)
                if (property_wanted(*l))
                        puts(*l);
        gmem_properties_text_free(lines);
        return 0;
}

/*
 * show [NAME...]: the broker's properties, or those of every region, VM and
 * migration (by id or path) each NAME names; a blank line between objects.
 */
int verb_show(GmemClient *c, int argc, char **argv) {
        bool first = true;
        int ret = 0, r;

        if (argc <= 1)
                return show_object(c, GMEM_MANAGER_PATH, &first);

        for (int i = 1; i < argc; i++) {
                char *path = NULL;
                bool found = false;

                if (gmem_get_region_path(c, argv[i], &path) >= 0) {
                        found = true;
                        r = show_object(c, path, &first);
                        free(path);
                        if (r < 0)
                                ret = r;
                }
                if (gmem_get_vm_path(c, argv[i], &path) >= 0) {
                        found = true;
                        r = show_object(c, path, &first);
                        free(path);
                        if (r < 0)
                                ret = r;
                }
                if (gmem_migration_path(argv[i], &path) >= 0) {
                        char **lines = NULL;

                        /* A migration is known if its object answers. */
                        if (gmem_get_properties_text(c, path, &lines) >= 0) {
                                gmem_properties_text_free(lines);
                                found = true;
                                r = show_object(c, path, &first);
                                if (r < 0)
                                        ret = r;
                        }
                        free(path);
                }
                if (!found)
                        ret = log_error_errno(-ENOENT, "No region, VM or migration '%s' known", argv[i]);
        }
        return ret;
}
