/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vm.c — VM registration and leader tracking. The leader is watched with a
 * pidfd from pidfd_open(): it becomes readable when the process exits, and
 * unlike a pid it cannot start naming another process. gmemd opens it from
 * the pid a client names, or takes a duplicate of one the client opened
 * itself: a pid can be reused between the client looking it up and gmemd
 * opening it, a pidfd the client holds cannot. When the leader exits
 * the VM's views are released (the memory stays in its regions) and the VM
 * stays registered, so a restarted hypervisor can attach again.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "backend-util.h"
#include "fd-kind.h"
#include "migration.h"
#include "parse.h"
#include "region.h"
#include "usage.h"
#include "view.h"
#include "vm.h"

#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif
#ifndef __NR_pidfd_send_signal
#define __NR_pidfd_send_signal 424
#endif
/* A pidfd of a thread rather than a process (pidfd_open(2), Linux 6.9 and later). */
#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif

static int on_leader_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        vm_leader_exited(userdata);
        return 0;
}

/*
 * The "Pid:" line of a pidfd's /proc/self/fdinfo in *ret: the pid in gmemd's pid namespace, 0 if the
 * process is in none gmemd sees, -1 once it has exited and been reaped. -ENOMSG if there is no such line.
 */
static int pidfd_fdinfo_pid(int pidfd, long *ret) {
        char path[64], line[128];
        _cleanup_fclose_ FILE *f = NULL;
        long pid;

        (void) snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
        f = fopen(path, "re");
        if (!f)
                return negative_errno();
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "Pid: %ld", &pid) == 1) {
                        *ret = pid;
                        return 0;
                }
        return -ENOMSG;
}

/* The pid a pidfd refers to; 0 if it has exited or is not a pidfd. */
static pid_t pidfd_get_pid(int pidfd) {
        long pid = 0;

        if (pidfd_fdinfo_pid(pidfd, &pid) < 0)
                return 0;
        return pid > 0 ? (pid_t) pid : 0;
}

/* Whether a pidfd's process has exited: its pidfd is readable, or signal 0 finds no process. */
static bool pidfd_exited(int pidfd) {
        struct pollfd pfd = { .fd = pidfd, .events = POLLIN };

        if (poll(&pfd, 1, 0) > 0 && (pfd.revents & POLLIN))
                return true;
        /* EPERM: the process is there, and another user's. */
        return syscall(__NR_pidfd_send_signal, pidfd, 0, NULL, 0) < 0 && errno == ESRCH;
}

/*
 * Checks that p->leader_fd, passed by a client as the leader of VM p->name, is a pidfd of a live process in
 * gmemd's pid namespace (and of the process p->leader_pid names, if given), and returns its pid.
 */
static int vm_check_leader_fd(const VmParams *p, pid_t *ret_pid, GmemError *e) {
        char link[256] = "", desc[300];
        struct statfs sfs;
        struct stat st;
        long pid = 0;
        FdKind kind;
        int flags, r;

        if (p->leader_fd < 0)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Invalid leader of VM '%s': no file descriptor",
                                      p->name);
        if (fstat(p->leader_fd, &st) < 0 || fstatfs(p->leader_fd, &sfs) < 0)
                return gmem_error_set_errno(e, errno, "Cannot inspect the leader of VM '%s'", p->name);
        (void) backend_fd_link(p->leader_fd, link, sizeof(link));
        kind = fd_kind_classify((uint64_t) sfs.f_type, st.st_mode, link);
        if (kind != FD_KIND_PIDFD) {
                fd_kind_describe(kind, link, desc, sizeof(desc));
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Invalid leader of VM '%s': %s is not a pidfd",
                                      p->name, desc);
        }
        flags = fcntl(p->leader_fd, F_GETFL);
        if (flags < 0)
                return gmem_error_set_errno(e, errno, "Cannot inspect the leader of VM '%s'", p->name);
        if (flags & PIDFD_THREAD)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Invalid leader of VM '%s': a pidfd of a thread "
                                      "(PIDFD_THREAD), not of a process", p->name);
        r = pidfd_fdinfo_pid(p->leader_fd, &pid);
        if (r < 0)
                return gmem_error_set_errno(e, -r, "Cannot read the pid of the leader of VM '%s'", p->name);
        if (pid < 0 || pidfd_exited(p->leader_fd))
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Invalid leader of VM '%s': the pidfd's process "
                                      "has exited", p->name);
        if (pid == 0)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Invalid leader of VM '%s': the pidfd's process "
                                      "is in a pid namespace gmemd does not see", p->name);
        if (p->has_leader_pid && (long) p->leader_pid != pid)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Invalid leader_pid %" PRIu32 " of VM '%s': the "
                                      "leader pidfd is of process %ld; give the same process, or leader alone",
                                      p->leader_pid, p->name, pid);
        *ret_pid = (pid_t) pid;
        return 0;
}

/* When process pid started, in clock ticks after boot (/proc/PID/stat, field 22); 0 if it cannot be read. */
static uint64_t process_start_time(pid_t pid) {
        char path[64], buf[1024], *p;
        _cleanup_close_ int fd = -EBADF;
        unsigned long long start;
        ssize_t n;

        (void) snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return 0;
        buf[n] = 0;
        /* The command name may hold anything, ')' too: the fields start after the last one. */
        p = strrchr(buf, ')');
        if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
                         &start) != 1)
                return 0;
        return start;
}

static int vm_watch_leader(Vm *vm, pid_t pid, int given_pidfd, uint64_t expect_start, GmemError *e) {
        _cleanup_close_ int pidfd = given_pidfd;
        uint64_t start = 0;
        int r;

        if (pidfd >= 0) {
                /* 0 if the leader exited while the daemon was down: the pidfd is readable then, and
                 * the event loop releases the VM's views as for any exit. */
                if (pid <= 0)
                        pid = pidfd_get_pid(pidfd);
        } else if (pid <= 0)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Invalid leader_pid %d: must be positive", (int) pid);
        else
                pidfd = (int) syscall(__NR_pidfd_open, pid, 0);
        if (pidfd < 0) {
                if (errno == ESRCH)
                        return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Invalid leader_pid %d: no such process",
                                              (int) pid);
                /* A thread's id: EINVAL before Linux 6.9, ENOENT since. */
                if (errno == EINVAL || errno == ENOENT)
                        return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Invalid leader_pid %d: not a process "
                                              "(thread-group leader) id", (int) pid);
                return gmem_error_set_errno(e, errno, "Cannot watch leader process %d", (int) pid);
        }
        /*
         * Read once the pidfd pins the pid: a process that took a reused pid has another start time. 0 when
         * /proc does not show the process to gmemd (ProtectProc=invisible hides other uids' processes): then
         * it cannot be told and the pidfd is taken as the leader's.
         */
        if (pid > 0)
                start = process_start_time(pid);
        if (expect_start != 0 && start != 0 && start != expect_start)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Invalid leader_pid %d: no such process "
                                      "(pid %d started at %" PRIu64 ", the leader at %" PRIu64 ")", (int) pid,
                                      (int) pid, start, expect_start);

        if (vm->manager->event) {
                r = sd_event_add_io(vm->manager->event, &vm->leader_source, pidfd, EPOLLIN, on_leader_exit, vm);
                if (r < 0)
                        return gmem_error_set_errno(e, r, "Cannot watch leader process %d", (int) pid);
                (void) sd_event_source_set_description(vm->leader_source, "vm-leader");
        }

        vm->pidfd = TAKE_FD(pidfd);
        vm->leader_pid = pid;
        vm->leader_start = start;
        return 0;
}

Vm *vm_free(Vm *vm) {
        View *v;

        if (!vm)
                return NULL;
        if (vm->migration)
                migration_free(vm->migration);
        while ((v = hashmap_first(vm->views)))
                view_free(v);
        if (vm->manager)
                (void) hashmap_remove_value(vm->manager->vms, vm->name, vm);
        usage_charge_release(&vm->charge);
        sd_event_source_disable_unref(vm->leader_source);
        safe_close(vm->pidfd);
        hashmap_free(vm->views);
        free(vm->name);
        free(vm);
        return NULL;
}

static int vm_new(Manager *m, const VmParams *p, uid_t creator, Vm **ret, GmemError *e) {
        Vm *vm;

        vm = calloc(1, sizeof(*vm));
        if (!vm)
                return gmem_error_set_errno(e, ENOMEM, "Cannot allocate VM '%s'", p->name);
        vm->manager = m;
        vm->pidfd = -EBADF;
        vm->creator = creator;
        vm->has_uid = p->has_uid;
        vm->uid = p->has_uid ? (uid_t) p->uid : 0;
        vm->name = strdup(p->name);
        vm->views = hashmap_new();
        if (!vm->name || !vm->views) {
                vm_free(vm);
                return gmem_error_set_errno(e, ENOMEM, "Cannot allocate VM '%s'", p->name);
        }
        *ret = vm;
        return 0;
}

/* Watches a duplicate of the pidfd a client passed, once it is checked: the message keeps the client's. */
static int vm_watch_client_pidfd(Vm *vm, const VmParams *p, GmemError *e) {
        int fd, r;
        pid_t pid;

        r = vm_check_leader_fd(p, &pid, e);
        if (r < 0)
                return r;
        fd = fcntl(p->leader_fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return gmem_error_set_errno(e, errno, "Cannot keep the leader pidfd of VM '%s'", p->name);
        return vm_watch_leader(vm, pid, fd, 0, e);
}

/* Watches the leader the parameters name: a pidfd restored from the store or passed by a client, or a pid. */
static int vm_watch_params_leader(Vm *vm, const VmParams *p, int *given_pidfd, GmemError *e) {
        if (p->has_leader_pidfd)
                return vm_watch_leader(vm, 0, TAKE_FD(*given_pidfd), 0, e);
        if (p->has_leader_fd)
                return vm_watch_client_pidfd(vm, p, e);
        if (!p->has_leader_pid)
                return 0;
        if (p->leader_pid > INT32_MAX)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Invalid leader_pid %" PRIu32
                                      ": larger than any pid", p->leader_pid);
        return vm_watch_leader(vm, (pid_t) p->leader_pid, -EBADF, p->leader_start, e);
}

int vm_reserve(Manager *m, const Actor *a, UsageCharge *ret, GmemError *e) {
        /* One store entry: the leader's pidfd, or a record. */
        return usage_reserve_objects(m, a, &(Usage) { .amount = { [QUOTA_VMS] = 1 } }, 1, ret, e);
}

int vm_register(Manager *m, const VmParams *p, UsageCharge *reserved, Vm **ret, GmemError *e) {
        _cleanup_close_ int given_pidfd = p->has_leader_pidfd ? p->leader_pidfd : -EBADF;
        _cleanup_(usage_charge_release) UsageCharge charge = usage_charge_take(reserved);
        Vm *vm = NULL;
        int r;

        if (charge.manager != m || charge.amount[QUOTA_VMS] != 1)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "VM '%.64s' was not reserved", p->name ?: "");
        r = gmem_validate_name("VM", p->name, e);
        if (r < 0)
                return r;
        if (manager_get_vm(m, p->name))
                return gmem_error_set(e, GMEM_ERROR_VM_EXISTS, "VM '%s' is registered already", p->name);

        r = vm_new(m, p, charge.uid, &vm, e);
        if (r < 0)
                return r;
        r = vm_watch_params_leader(vm, p, &given_pidfd, e);
        if (r < 0) {
                vm_free(vm);
                return r;
        }
        r = hashmap_put(m->vms, vm->name, vm);
        if (r < 0) {
                vm_free(vm);
                return gmem_error_set_errno(e, r, "Cannot index VM '%s'", p->name);
        }
        vm->id = p->id ?: m->next_vm_id;
        if (vm->id >= m->next_vm_id)
                m->next_vm_id = vm->id + 1;
        vm->charge = usage_charge_take(&charge);

        manager_notify_vm_new(m, vm);
        if (ret)
                *ret = vm;
        return 0;
}

void vm_release_views(Vm *vm) {
        View *v;

        if (vm->migration)
                (void) migration_abort(vm->migration, NULL);

        while ((v = hashmap_first(vm->views)))
                view_remove(v);
}

int vm_unregister(Vm *vm, GmemError *e) {
        Manager *m = vm->manager;

        if (vm->migration)
                return gmem_error_set(e, GMEM_ERROR_MIGRATION_IN_PROGRESS, "VM '%s' is in migration %" PRIu64
                                      "; commit or abort it first", vm->name, migration_id(vm->migration));
        /* Finished migrations that name it stay in the history: they hold its name, not the VM. */
        vm_release_views(vm);
        manager_notify_vm_removed(m, vm);
        vm_free(vm);
        return 0;
}

void vm_leader_exited(Vm *vm) {
        vm->leader_source = sd_event_source_disable_unref(vm->leader_source);
        vm->pidfd = safe_close(vm->pidfd);
        vm->leader_pid = 0;
        vm->leader_start = 0;
        vm_release_views(vm);
        manager_notify_vm_changed(vm->manager, vm);
}
