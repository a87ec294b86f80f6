/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * gmemctl-hotplug.c — gmemctl hotplug and unplug: a region as a DIMM of a
 * running QEMU, through its QMP socket.
 *
 * hotplug gets the VM's view of the region from gmemd (attach, or get-fd
 * when the VM already has a read-write view), hands its fd to QEMU with
 * add-fd (SCM_RIGHTS), and builds the DIMM in QEMU on it:
 *
 *   add-fd (opaque "gmemctl:ID")   → the fd's number N inside QEMU
 *   object-add memory-backend-file id=mem-ID mem-path=/proc/self/fd/N share=on size=…
 *   remove-fd                      the backend re-opened N: its own open file
 *   device_add pc-dimm id=dimm-ID memdev=mem-ID
 *
 * QEMU's memory-backend-file takes no fd and opens /dev/fdset/ paths with
 * plain open(), so it has to re-open its own fd through /proc; only views
 * that can be re-opened (memfd, hugetlb) work, the others are refused before
 * anything is made. The fdset is removed as soon as the backend is made, so
 * query-fdsets is empty while the DIMM is plugged. A failed step undoes the
 * ones before it, in reverse order, and the error names the QMP command and
 * QEMU's error class and description.
 *
 * unplug takes it out in the order QEMU needs: device_del, then the guest
 * has to release the memory (ACPI eject) before QEMU reports DEVICE_DELETED
 * (awaited up to --timeout), then object-del, remove-fd of any fdset a
 * crashed hotplug left behind (found by its opaque tag), and the view is
 * detached. What is not there any more (the DIMM, the backend) is skipped,
 * so an unplug that was cut short can be run again.
 *
 * ID defaults to "VM.REGION" (names are [A-Za-z0-9_.-], which QOM ids allow
 * after a letter, and "mem-"/"dimm-" supply one).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "gmemctl.h"
#include "parse.h"
#include "qmp.h"

#define HOTPLUG_ID_MAX (2 * GMEM_NAME_MAX + 1)

/* The backends whose views QEMU can re-open through /proc/self/fd. */
static const char *const reopenable_backends[] = { "memfd", "hugetlb" };

typedef struct Plug {
        const char *vm, *region, *qmp_path;
        char id[HOTPLUG_ID_MAX + 1];
        char memdev[HOTPLUG_ID_MAX + 8];
        char dimm[HOTPLUG_ID_MAX + 8];
        char opaque[HOTPLUG_ID_MAX + 16];
} Plug;

/* [A-Za-z0-9_.-], 1 to HOTPLUG_ID_MAX characters: what QOM accepts after the prefixes. */
static bool hotplug_id_is_valid(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n > HOTPLUG_ID_MAX)
                return false;
        return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

static int plug_init(Plug *p, int argc, char **argv) {
        *p = (Plug) { .vm = argv[1], .region = argv[2], .qmp_path = arg_qmp };

        if (!arg_qmp)
                return log_usage("%s: --qmp=SOCKET is needed, the path of the QEMU's QMP socket", argv[0]);
        if (!gmem_name_is_valid(p->vm))
                return log_usage("Invalid VM name '%s': names are 1 to %d characters of [A-Za-z0-9_.-]",
                                 p->vm, GMEM_NAME_MAX);
        if (!gmem_name_is_valid(p->region))
                return log_usage("Invalid region name '%s': names are 1 to %d characters of [A-Za-z0-9_.-]",
                                 p->region, GMEM_NAME_MAX);
        if (arg_id) {
                if (!hotplug_id_is_valid(arg_id))
                        return log_usage("Invalid --id='%s': 1 to %d characters of [A-Za-z0-9_.-]",
                                         arg_id, HOTPLUG_ID_MAX);
                (void) snprintf(p->id, sizeof(p->id), "%s", arg_id);
        } else
                (void) snprintf(p->id, sizeof(p->id), "%s.%s", p->vm, p->region);
        (void) snprintf(p->memdev, sizeof(p->memdev), "mem-%s", p->id);
        (void) snprintf(p->dimm, sizeof(p->dimm), "dimm-%s", p->id);
        (void) snprintf(p->opaque, sizeof(p->opaque), "gmemctl:%s", p->id);
        return 0;
}

static int connect_qmp(const Plug *p, Qmp **ret) {
        int r = qmp_connect(p->qmp_path, arg_timeout_usec, ret);

        if (r == -ENAMETOOLONG)
                return log_usage("QMP socket path '%s' is too long: at most 107 bytes", p->qmp_path);
        if (r == -EPROTO)
                return log_error_errno(r, "%s does not speak QMP (no greeting, or capabilities refused)",
                                       p->qmp_path);
        if (r == -ETIMEDOUT)
                return log_error_errno(r, "QEMU's QMP socket %s sent no greeting within %" PRIu64 " s (QEMU "
                                       "serves one client at a time: does another one hold it?)",
                                       p->qmp_path, arg_timeout_usec / 1000000U);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to QEMU's QMP socket %s: %s", p->qmp_path,
                                       strerror(-r));
        return 0;
}

/* Logs a failed QMP command: QEMU's class and description when it refused. */
static int log_qmp_error(Qmp *q, int r, const char *command, const char *what) {
        if (r == -EREMOTEIO)
                return log_error_errno(r, "QMP command %s (%s) failed: %s: %s", command, what,
                                       strempty(qmp_error_class(q)), strempty(qmp_error_desc(q)));
        if (r == -ETIMEDOUT)
                return log_error_errno(r, "QMP command %s (%s): QEMU did not answer within %" PRIu64 " s",
                                       command, what, arg_timeout_usec / 1000000U);
        return log_error_errno(r, "QMP command %s (%s) failed: %s", command, what, strerror(-r));
}

static struct json_object *json_args(const char *key, struct json_object *value) {
        struct json_object *o = json_object_new_object();

        if (o && json_object_object_add(o, key, value) < 0)
                o = (json_object_put(o), NULL);
        return o;
}

static int add_fd(Qmp *q, const Plug *p, int fd, int64_t *ret_fdset, int64_t *ret_fd) {
        struct json_object *ret = NULL, *set, *qfd;
        int r;

        r = qmp_execute(q, "add-fd", json_args("opaque", json_object_new_string(p->opaque)), fd, &ret);
        if (r < 0)
                return log_qmp_error(q, r, "add-fd", "the view's fd");
        if (!json_object_object_get_ex(ret, "fdset-id", &set) || !json_object_is_type(set, json_type_int) ||
            !json_object_object_get_ex(ret, "fd", &qfd) || !json_object_is_type(qfd, json_type_int) ||
            json_object_get_int64(qfd) < 0 || json_object_get_int64(set) < 0) {
                json_object_put(ret);
                return log_error_errno(-EPROTO, "QMP command add-fd returned no fdset-id and fd: %s",
                                       json_object_to_json_string(ret));
        }
        *ret_fdset = json_object_get_int64(set);
        *ret_fd = json_object_get_int64(qfd);
        json_object_put(ret);
        return 0;
}

static int remove_fd(Qmp *q, int64_t fdset) {
        char what[48];
        int r;

        r = qmp_execute(q, "remove-fd", json_args("fdset-id", json_object_new_int64(fdset)), -EBADF, NULL);
        if (r < 0) {
                (void) snprintf(what, sizeof(what), "fdset %" PRIi64, fdset);
                return log_qmp_error(q, r, "remove-fd", what);
        }
        return 0;
}

/* Whether QEMU has an object mem-ID: 1 yes, 0 no. */
static int object_exists(Qmp *q, const Plug *p) {
        struct json_object *list = NULL;
        int r;

        r = qmp_execute(q, "qom-list", json_args("path", json_object_new_string("/objects")), -EBADF, &list);
        if (r < 0)
                return log_qmp_error(q, r, "qom-list", "/objects");
        r = 0;
        for (size_t i = 0; json_object_is_type(list, json_type_array) && i < json_object_array_length(list); i++) {
                struct json_object *name;

                if (json_object_object_get_ex(json_object_array_get_idx(list, i), "name", &name) &&
                    json_object_is_type(name, json_type_string) && streq(json_object_get_string(name), p->memdev))
                        r = 1;
        }
        json_object_put(list);
        return r;
}

static int object_del(Qmp *q, const Plug *p) {
        int r = qmp_execute(q, "object-del", json_args("id", json_object_new_string(p->memdev)), -EBADF, NULL);

        if (r < 0)
                return log_qmp_error(q, r, "object-del", p->memdev);
        return 0;
}

static int object_add(Qmp *q, const Plug *p, int64_t qemu_fd, uint64_t size) {
        struct json_object *a = json_object_new_object();
        char path[48];
        int r;

        if (!a)
                return log_error_errno(-ENOMEM, "Out of memory");
        (void) snprintf(path, sizeof(path), "/proc/self/fd/%" PRIi64, qemu_fd);
        if (json_object_object_add(a, "qom-type", json_object_new_string("memory-backend-file")) < 0 ||
            json_object_object_add(a, "id", json_object_new_string(p->memdev)) < 0 ||
            json_object_object_add(a, "mem-path", json_object_new_string(path)) < 0 ||
            json_object_object_add(a, "size", json_object_new_uint64(size)) < 0 ||
            json_object_object_add(a, "share", json_object_new_boolean(true)) < 0) {
                json_object_put(a);
                return log_error_errno(-ENOMEM, "Out of memory");
        }
        r = qmp_execute(q, "object-add", a, -EBADF, NULL);
        if (r < 0)
                return log_qmp_error(q, r, "object-add", "memory-backend-file");
        return 0;
}

static int device_add(Qmp *q, const Plug *p) {
        struct json_object *a = json_object_new_object();
        int r;

        if (!a)
                return log_error_errno(-ENOMEM, "Out of memory");
        if (json_object_object_add(a, "driver", json_object_new_string("pc-dimm")) < 0 ||
            json_object_object_add(a, "id", json_object_new_string(p->dimm)) < 0 ||
            json_object_object_add(a, "memdev", json_object_new_string(p->memdev)) < 0) {
                json_object_put(a);
                return log_error_errno(-ENOMEM, "Out of memory");
        }
        r = qmp_execute(q, "device_add", a, -EBADF, NULL);
        if (r < 0)
                return log_qmp_error(q, r, "device_add", "pc-dimm");
        return 0;
}

/* The DIMM's guest-physical address from query-memory-devices; UINT64_MAX if QEMU does not list it. */
static uint64_t dimm_address(Qmp *q, const Plug *p) {
        struct json_object *list = NULL;
        uint64_t addr = UINT64_MAX;

        if (qmp_execute(q, "query-memory-devices", NULL, -EBADF, &list) < 0)
                return UINT64_MAX;
        for (size_t i = 0; json_object_is_type(list, json_type_array) && i < json_object_array_length(list); i++) {
                struct json_object *d = json_object_array_get_idx(list, i), *data, *id, *a;

                if (json_object_object_get_ex(d, "data", &data) &&
                    json_object_object_get_ex(data, "id", &id) && json_object_is_type(id, json_type_string) &&
                    streq(json_object_get_string(id), p->dimm) &&
                    json_object_object_get_ex(data, "addr", &a) && json_object_is_type(a, json_type_int))
                        addr = json_object_get_uint64(a);
        }
        json_object_put(list);
        return addr;
}

static int print_plugged(const Plug *p, uint64_t addr, uint64_t size) {
        static const char *const headers[] = { "VM", "REGION", "DEVICE", "MEMDEV", "ADDRESS", "SIZE" };
        static const char *const keys[] = { "vm", "region", "device", "memdev", "address", "size" };
        _cleanup_table_ Table *t = NULL;
        char hex[24];
        int r;

        t = table_new(ELEMENTSOF(headers), headers, keys);
        if (!t)
                return log_error_errno(-ENOMEM, "Out of memory");
        (void) snprintf(hex, sizeof(hex), "0x%" PRIx64, addr);
        r = table_add_string(t, p->vm);
        if (r >= 0)
                r = table_add_string(t, p->region);
        if (r >= 0)
                r = table_add_string(t, p->dimm);
        if (r >= 0)
                r = table_add_string(t, p->memdev);
        if (r >= 0)
                r = addr == UINT64_MAX ? table_add_string(t, NULL)
                                       : table_add_cell(t, hex, json_object_new_uint64(addr), true);
        if (r >= 0)
                r = table_add_size(t, size);
        if (r < 0)
                return log_error_errno(r, "Out of memory");
        return table_print(t, "No DIMM.", "DIMM", "DIMMs", "plugged");
}

/*
 * The VM's read-write view of the region: the one it has (ret_attached
 * false) or a new one of the whole region (true).
 */
static int get_view(GmemClient *c, const Plug *p, const GmemRegionProperties *rp, int *ret_fd,
                    bool *ret_attached) {
        int r;

        for (size_t i = 0; i < rp->n_views; i++) {
                const GmemViewInfo *v = &rp->views[i];

                if (!streq_ptr(v->vm, p->vm))
                        continue;
                if (!streq_ptr(v->access, "rw"))
                        return log_error_errno(-EACCES, "VM '%s' has a %s view of region '%s'; a DIMM needs a "
                                               "read-write one (detach it first)", p->vm, strempty(v->access),
                                               p->region);
                if (!streq_ptr(v->state, "active"))
                        return log_error_errno(-EBUSY, "VM '%s' has a %s view of region '%s'; a DIMM needs an "
                                               "active one", p->vm, strempty(v->state), p->region);
                r = gmem_get_fd(c, p->vm, p->region, ret_fd);
                if (r < 0)
                        return log_client_error(c, r, "Failed to get the view of region '%s' for VM '%s'",
                                                p->region, p->vm);
                *ret_attached = false;
                return 0;
        }

        r = gmem_attach(c, p->vm, p->region, GMEM_ACCESS_RW, 0, 0, false, ret_fd);
        if (r < 0)
                return log_client_error(c, r, "Failed to attach region '%s' to VM '%s'", p->region, p->vm);
        *ret_attached = true;
        return 0;
}

static int view_size(const Plug *p, int fd, uint64_t *ret) {
        struct stat st;

        if (fstat(fd, &st) < 0)
                return log_error_errno(negative_errno(), "Failed to inspect the view of region '%s': %s", p->region,
                                       strerror(errno));
        if (!S_ISREG(st.st_mode) || st.st_size <= 0)
                return log_error_errno(-EBADF, "The view of region '%s' is not a regular file with a size "
                                       "(mode 0%o, size %" PRIi64 ")", p->region, (unsigned) st.st_mode,
                                       (int64_t) st.st_size);
        *ret = (uint64_t) st.st_size;
        return 0;
}

static int check_backend(const Plug *p, const GmemRegionProperties *rp) {
        for (size_t i = 0; i < ELEMENTSOF(reopenable_backends); i++)
                if (streq_ptr(rp->backend, reopenable_backends[i]))
                        return 0;
        return log_error_errno(-EOPNOTSUPP, "Region '%s' is on the %s backend: QEMU's memory-backend-file "
                               "re-opens its memory through /proc/self/fd, which only memfd and hugetlb "
                               "views allow; it cannot be hot-plugged", p->region, strempty(rp->backend));
}

int verb_hotplug(GmemClient *c, int argc, char **argv) {
        GmemRegionProperties *rp = NULL;
        _cleanup_(qmp_freep) Qmp *q = NULL;
        _cleanup_close_ int fd = -EBADF;
        int64_t fdset = -1, qemu_fd = -1;
        bool attached = false;
        uint64_t size = 0;
        Plug p;
        int r;

        r = plug_init(&p, argc, argv);
        if (r < 0)
                return r;

        r = gmem_get_region_properties(c, p.region, &rp);
        if (r < 0)
                return log_client_error(c, r, "Failed to read the properties of region '%s'", p.region);
        r = check_backend(&p, rp);
        if (r >= 0)
                r = get_view(c, &p, rp, &fd, &attached);
        gmem_region_properties_free(rp);
        if (r < 0)
                return r;

        /* The DIMM is as large as the file the view opens, whatever the broker's figure. */
        r = view_size(&p, fd, &size);
        if (r < 0)
                goto undo_view;

        r = connect_qmp(&p, &q);
        if (r < 0)
                goto undo_view;
        r = add_fd(q, &p, fd, &fdset, &qemu_fd);
        if (r < 0)
                goto undo_view;
        r = object_add(q, &p, qemu_fd, size);
        if (r < 0)
                goto undo_fd;
        /* The backend has its own open file now: QEMU needs the fdset no longer. */
        r = remove_fd(q, fdset);
        if (r < 0)
                goto undo_object;
        fdset = -1;
        r = device_add(q, &p);
        if (r < 0)
                goto undo_object;

        return print_plugged(&p, dimm_address(q, &p), size);

undo_object:
        (void) object_del(q, &p);
undo_fd:
        if (fdset >= 0)
                (void) remove_fd(q, fdset);
undo_view:
        if (attached && gmem_detach(c, p.vm, p.region) < 0)
                log_client_error(c, -EIO, "Failed to detach region '%s' from VM '%s' again", p.region, p.vm);
        return r;
}

/* remove-fd of every fdset whose fds carry this DIMM's opaque tag: what an interrupted hotplug left. */
static int remove_tagged_fdsets(Qmp *q, const Plug *p) {
        struct json_object *sets = NULL;
        int r;

        r = qmp_execute(q, "query-fdsets", NULL, -EBADF, &sets);
        if (r < 0)
                return log_qmp_error(q, r, "query-fdsets", "leftover fds");
        for (size_t i = 0; json_object_is_type(sets, json_type_array) && i < json_object_array_length(sets) && r >= 0;
             i++) {
                struct json_object *s = json_object_array_get_idx(sets, i), *id, *fds;
                bool ours = false;

                if (!json_object_object_get_ex(s, "fdset-id", &id) || !json_object_is_type(id, json_type_int) ||
                    !json_object_object_get_ex(s, "fds", &fds) || !json_object_is_type(fds, json_type_array))
                        continue;
                for (size_t j = 0; j < json_object_array_length(fds); j++) {
                        struct json_object *o;

                        if (json_object_object_get_ex(json_object_array_get_idx(fds, j), "opaque", &o) &&
                            json_object_is_type(o, json_type_string) && streq(json_object_get_string(o), p->opaque))
                                ours = true;
                }
                if (ours)
                        r = remove_fd(q, json_object_get_int64(id));
        }
        json_object_put(sets);
        return r;
}

int verb_unplug(GmemClient *c, int argc, char **argv) {
        _cleanup_(qmp_freep) Qmp *q = NULL;
        Plug p;
        int r;

        r = plug_init(&p, argc, argv);
        if (r < 0)
                return r;
        r = connect_qmp(&p, &q);
        if (r < 0)
                return r;

        r = qmp_execute(q, "device_del", json_args("id", json_object_new_string(p.dimm)), -EBADF, NULL);
        if (r == -EREMOTEIO && streq_ptr(qmp_error_class(q), "DeviceNotFound"))
                r = 0;          /* not plugged (any more): take out what is left */
        else if (r < 0)
                return log_qmp_error(q, r, "device_del", p.dimm);
        else {
                /* The guest has to give the memory up (ACPI eject) before QEMU lets the DIMM go. */
                r = qmp_wait_event(q, "DEVICE_DELETED", "device", p.dimm, arg_timeout_usec);
                if (r == -ETIMEDOUT)
                        return log_error_errno(r, "QMP command device_del (%s): no DEVICE_DELETED within %" PRIu64
                                               " s; the guest did not release the DIMM (is its memory "
                                               "offline-able, e.g. in ZONE_MOVABLE?). The DIMM, its backend "
                                               "and the view stay; run unplug again later",
                                               p.dimm, arg_timeout_usec / 1000000U);
                if (r < 0)
                        return log_error_errno(r, "QMP command device_del (%s): waiting for DEVICE_DELETED "
                                               "failed: %s", p.dimm, strerror(-r));
        }

        r = object_exists(q, &p);
        if (r > 0)
                r = object_del(q, &p);
        if (r < 0)
                return r;
        r = remove_tagged_fdsets(q, &p);
        if (r < 0)
                return r;

        r = gmem_detach(c, p.vm, p.region);
        if (r < 0)
                return log_client_error(c, r, "Failed to detach region '%s' from VM '%s'", p.region, p.vm);
        return 0;
}
