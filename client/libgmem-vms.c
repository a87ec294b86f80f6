/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libgmem-vms.c — VMs and their views.
 *
 * A VM is a name the broker hands views to, optionally tied to a leader
 * process whose exit releases its views: named by its pid, or by a pidfd
 * the caller opened, which cannot come to name another process. A view is one VM's open file of one
 * region, with its own access and window; the broker keeps it in custody, so
 * gmem_get_fd() can hand the same file out again. Every fd that arrives in a
 * reply belongs to the reply message, so it is duplicated (O_CLOEXEC) before
 * it is given to the caller, who then owns it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "array.h"
#include "gmem-errors.h"
#include "libgmem-internal.h"

/*
 * Whether a failed RegisterVm was refused because the broker does not know the option key: a broker older
 * than the option answers InvalidArgument "Unknown option 'KEY'; known options: ...".
 */
static bool broker_lacks_option(const GmemClient *c, const char *key) {
        char prefix[64];

        if (!c->error_name || !c->error_message || !streq(c->error_name, GMEM_ERROR_PREFIX "InvalidArgument"))
                return false;
        (void) snprintf(prefix, sizeof(prefix), "Unknown option '%s'", key);
        return strncmp(c->error_message, prefix, strlen(prefix)) == 0;
}

/* RegisterVm with a leader pid (> 0), a leader pidfd (>= 0), or neither. */
static int register_vm(GmemClient *c, const char *name, pid_t leader_pid, int leader_pidfd, uid_t uid,
                       char **ret_path) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        const char *path;
        int r;

        r = gmem_new_manager_call(c, "RegisterVm", &m);
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "s", name);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        /* sd-bus sends a duplicate: the caller keeps leader_pidfd. */
        if (r >= 0 && leader_pidfd >= 0)
                r = gmem_append_option(m, "leader", "h", leader_pidfd);
        if (r >= 0 && leader_pid > 0)
                r = gmem_append_option(m, "leader_pid", "u", (uint32_t) leader_pid);
        if (r >= 0 && uid != GMEM_UID_INVALID)
                r = gmem_append_option(m, "uid", "u", (uint32_t) uid);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return gmem_client_set_error(c, -r, NULL, "Failed to build a D-Bus message");

        r = gmem_call(c, m, &reply);
        if (r == -EINVAL && leader_pidfd >= 0 && broker_lacks_option(c, "leader"))
                return -EOPNOTSUPP;     /* the broker's error stays */
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return gmem_client_set_error(c, -r, NULL, "Failed to parse the reply to RegisterVm");
        if (ret_path) {
                *ret_path = strdup(path);
                if (!*ret_path)
                        return -ENOMEM;
        }
        return 0;
}

int gmem_register_vm(GmemClient *c, const char *name, pid_t leader_pid, uid_t uid, char **ret_path) {
        int r;

        if (!c)
                return -EINVAL;
        gmem_client_clear_error(c);
        r = gmem_client_check_name(c, "VM", name);
        if (r < 0)
                return r;
        if (leader_pid < 0)
                return gmem_client_invalid_argument(c, "Invalid leader PID: must be positive, or 0 for none");
        return register_vm(c, name, leader_pid, -EBADF, uid, ret_path);
}

int gmem_register_vm_with_leader_fd(GmemClient *c, const char *name, int leader_pidfd, uid_t uid, char **ret_path) {
        int r;

        if (!c)
                return -EINVAL;
        gmem_client_clear_error(c);
        r = gmem_client_check_name(c, "VM", name);
        if (r < 0)
                return r;
        if (leader_pidfd < 0)
                return gmem_client_invalid_argument(c, "Invalid leader pidfd: no file descriptor");
        return register_vm(c, name, 0, leader_pidfd, uid, ret_path);
}

int gmem_unregister_vm(GmemClient *c, const char *name) {
        int r;

        if (!c)
                return -EINVAL;
        gmem_client_clear_error(c);
        r = gmem_client_check_name(c, "VM", name);
        if (r < 0)
                return r;

        return gmem_call_manager(c, "UnregisterVm", NULL, "s", name);
}

int gmem_get_vm_path(GmemClient *c, const char *name, char **ret_path) {
        return gmem_get_object_path(c, "GetVm", "VM", name, ret_path);
}

void gmem_vm_info_array_free(GmemVmInfo *vms, size_t n) {
        if (!vms)
                return;
        for (size_t i = 0; i < n; i++) {
                free(vms[i].name);
                free(vms[i].path);
        }
        free(vms);
}

int gmem_list_vms(GmemClient *c, GmemVmInfo **ret_vms, size_t *ret_n) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        GmemVmInfo *vms = NULL;
        size_t n = 0, allocated = 0;
        const char *name, *path;
        uint32_t leader;
        int r;

        if (!c)
                return -EINVAL;
        gmem_client_clear_error(c);
        if (!ret_vms || !ret_n)
                return gmem_client_invalid_argument(c, "No place to return the list");

        r = gmem_call_manager(c, "ListVms", &reply, NULL);
        if (r < 0)
                return r;

        r = sd_bus_message_enter_container(reply, 'a', "(suo)");
        if (r < 0)
                goto bad_reply;
        while ((r = sd_bus_message_read(reply, "(suo)", &name, &leader, &path)) > 0) {
                r = GROW_ARRAY(vms, allocated, n + 1);
                if (r < 0)
                        goto fail;
                vms[n] = (GmemVmInfo) {
                        .name = strdup(name),
                        .leader_pid = (pid_t) leader,
                        .path = strdup(path),
                };
                n++;
                if (!vms[n - 1].name || !vms[n - 1].path) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        if (r < 0)
                goto bad_reply;

        *ret_vms = vms;
        *ret_n = n;
        return 0;

bad_reply:
        r = gmem_client_set_error(c, r, NULL, "Failed to parse the reply to ListVms");
fail:
        gmem_vm_info_array_free(vms, n);
        return r;
}

GmemVmProperties *gmem_vm_properties_free(GmemVmProperties *p) {
        if (!p)
                return NULL;
        free(p->name);
        gmem_view_info_array_free(p->views, p->n_views);
        free(p->path);
        free(p);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(GmemVmProperties *, gmem_vm_properties_free);

_Static_assert(sizeof(pid_t) == sizeof(uint32_t) && sizeof(uid_t) == sizeof(uint32_t),
               "LeaderPID and Uid are read as 32-bit fields");

static const GmemProperty vm_properties[] = {
        { "Name",      's', offsetof(GmemVmProperties, name)       },
        { "LeaderPID", 'u', offsetof(GmemVmProperties, leader_pid) },
        { "Uid",       'u', offsetof(GmemVmProperties, uid)        },
        {}
};

static int read_vm_views(sd_bus_message *m, const char *key, void *data) {
        GmemVmProperties *p = data;
        return gmem_read_views_property(m, key, true, &p->views, &p->n_views);
}

int gmem_get_vm_properties(GmemClient *c, const char *name, GmemVmProperties **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(gmem_vm_properties_freep) GmemVmProperties *p = NULL;
        _cleanup_free_ char *path = NULL;
        int r;

        if (!c)
                return -EINVAL;
        gmem_client_clear_error(c);
        if (!ret)
                return gmem_client_invalid_argument(c, "No place to return the properties");

        r = gmem_get_vm_path(c, name, &path);
        if (r < 0)
                return r;
        r = gmem_get_all_properties(c, path, GMEM_VM_INTERFACE, &reply);
        if (r < 0)
                return r;

        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->uid = GMEM_UID_INVALID;
        r = gmem_read_properties(reply, vm_properties, p, read_vm_views);
        if (r < 0)
                return gmem_client_set_error(c, r, NULL, "Failed to parse the VM's properties");

        if (!p->name && !(p->name = strdup(name)))
                return -ENOMEM;
        for (size_t i = 0; i < p->n_views; i++) {
                free(p->views[i].vm);
                p->views[i].vm = strdup(p->name);
                if (!p->views[i].vm)
                        return -ENOMEM;
        }
        p->path = TAKE_PTR(path);

        *ret = TAKE_PTR(p);
        return 0;
}

/* The public enum is numbered as the wire's: its names are common/wire.c's. */
_Static_assert((int) GMEM_ACCESS_RO == (int) VIEW_ACCESS_RO && (int) GMEM_ACCESS_RW == (int) VIEW_ACCESS_RW &&
               (int) _GMEM_ACCESS_MAX == (int) _VIEW_ACCESS_MAX, "GmemAccess and ViewAccess agree");

const char *gmem_access_to_string(GmemAccess a) {
        return view_access_to_string((ViewAccess) a);
}

int gmem_access_from_string(const char *s) {
        return view_access_from_string(s);
}

/* Takes the fd out of a reply: the message owns the one it carries, so keep a dup. */
static int read_reply_fd(GmemClient *c, sd_bus_message *reply, const char *method, int *ret_fd) {
        int fd, r;

        r = sd_bus_message_read(reply, "h", &fd);
        if (r < 0)
                return gmem_client_set_error(c, r, NULL, method);
        fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return gmem_client_set_error(c, errno, NULL, "Failed to duplicate the view's file descriptor");
        *ret_fd = fd;
        return 0;
}

static int check_view_args(GmemClient *c, const char *vm, const char *region, int *ret_fd) {
        int r;

        if (!ret_fd)
                return gmem_client_invalid_argument(c, "No place to return the file descriptor");
        r = gmem_client_check_name(c, "VM", vm);
        if (r < 0)
                return r;
        return gmem_client_check_name(c, "region", region);
}

int gmem_attach(GmemClient *c, const char *vm, const char *region, GmemAccess access,
                uint64_t offset, uint64_t length, bool allocate, int *ret_fd) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        const char *a = gmem_access_to_string(access);
        int r;

        if (!c)
                return -EINVAL;
        gmem_client_clear_error(c);
        r = check_view_args(c, vm, region, ret_fd);
        if (r < 0)
                return r;
        if (!a)
                return gmem_client_invalid_argument(c, "Invalid access: must be ro or rw");

        r = gmem_new_manager_call(c, "Attach", &m);
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "sss", vm, region, a);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && offset > 0)
                r = gmem_append_option(m, "offset", "t", offset);
        if (r >= 0 && length > 0)
                r = gmem_append_option(m, "length", "t", length);
        if (r >= 0 && allocate)
                r = gmem_append_option(m, "allocate", "b", 1);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return gmem_client_set_error(c, r, NULL, "Failed to build a D-Bus message");

        r = gmem_call(c, m, &reply);
        if (r < 0)
                return r;
        return read_reply_fd(c, reply, "Failed to parse the reply to Attach", ret_fd);
}

int gmem_detach(GmemClient *c, const char *vm, const char *region) {
        int r;

        if (!c)
                return -EINVAL;
        gmem_client_clear_error(c);
        r = gmem_client_check_name(c, "VM", vm);
        if (r < 0)
                return r;
        r = gmem_client_check_name(c, "region", region);
        if (r < 0)
                return r;

        return gmem_call_manager(c, "Detach", NULL, "ss", vm, region);
}

int gmem_get_fd(GmemClient *c, const char *vm, const char *region, int *ret_fd) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        if (!c)
                return -EINVAL;
        gmem_client_clear_error(c);
        r = check_view_args(c, vm, region, ret_fd);
        if (r < 0)
                return r;

        r = gmem_call_manager(c, "GetFd", &reply, "ss", vm, region);
        if (r < 0)
                return r;
        return read_reply_fd(c, reply, "Failed to parse the reply to GetFd", ret_fd);
}
