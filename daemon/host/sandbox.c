/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sandbox.c — dropping what gmemd does not need.
 *
 * gmemd needs no capability for the memfd family: it creates and re-opens
 * its own inodes, sets access lists on inodes it owns, and watches
 * processes through pidfd_open(), which needs no privilege. Device access
 * (/dev/kvm, /dev/gmem) comes from group membership of its user. So every
 * capability set is cleared, and the result is checked rather than assumed.
 * (Giving a hugetlb inode to a hypervisor uid takes CAP_CHOWN: the owner
 * helper, owner-helper.c, keeps that one, in a process of its own.)
 * The sets a change of user leaves alone (bounding, ambient, inheritable)
 * are emptied before the switch: after it, nothing may shrink the bounding
 * set any more.
 *
 * The seccomp filter allows exactly the calls seen when the whole
 * integration suite runs the daemon under strace, grouped below by what
 * needs them; anything else fails with EPERM (or kills, if asked).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/gmem.h>
#include <pwd.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "macro.h"
#include "sandbox.h"

/*
 * Whether the bounding set must be empty: set once gmemd was seen holding
 * CAP_SETPCAP, the capability that shrinks it. A process started without it
 * (an unprivileged user) cannot change its bounding set; no-new-privileges
 * then keeps anything from being gained through it.
 */
static bool bounding_set_droppable = false;

static int has_effective(cap_value_t c) {
        cap_flag_value_t v = CAP_CLEAR;
        cap_t caps = cap_get_proc();
        int r;

        if (!caps)
                return negative_errno();
        r = cap_get_flag(caps, c, CAP_EFFECTIVE, &v) < 0 ? negative_errno() : v == CAP_SET;
        cap_free(caps);
        return r;
}

/*
 * Whether the bounding set holds no capability. The running kernel may know
 * more capabilities than the headers gmemd was built with: they are read
 * until the kernel says EINVAL, not up to CAP_LAST_CAP.
 */
static bool bounding_set_empty(void) {
        int b;

        for (int c = 0; (b = prctl(PR_CAPBSET_READ, c, 0, 0, 0)) >= 0; c++)
                if (b > 0)
                        return false;
        return true;
}

/*
 * Empties the sets that survive a change of user: the bounding set (while
 * CAP_SETPCAP is still held), the ambient and the inheritable set. The
 * effective and permitted sets stay, so that setresuid() and setgroups()
 * still work; switching away from uid 0 clears them.
 */
static int sandbox_drop_bounds(void) {
        cap_flag_value_t v;
        bool inheritable = false;
        cap_t caps;
        int r;

        r = has_effective(CAP_SETPCAP);
        if (r < 0)
                return r;
        if (r > 0) {
                bounding_set_droppable = true;
                int b;

                for (int c = 0; (b = prctl(PR_CAPBSET_READ, c, 0, 0, 0)) >= 0; c++)
                        if (b > 0 && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0)
                                return negative_errno();
        }
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
                return negative_errno();

        /* capset() may be filtered under systemd (@privileged): only call it if there is something to clear. */
        caps = cap_get_proc();
        if (!caps)
                return negative_errno();
        for (int c = 0; c <= CAP_LAST_CAP; c++)
                if (cap_get_flag(caps, c, CAP_INHERITABLE, &v) == 0 && v == CAP_SET)
                        inheritable = true;
        r = 0;
        if (inheritable && (cap_clear_flag(caps, CAP_INHERITABLE) < 0 || cap_set_proc(caps) < 0))
                r = negative_errno();
        cap_free(caps);
        return r;
}

/*
 * The user to become: a passwd entry by name, or by uid; a number without
 * one is taken as the uid and the gid, with no supplementary groups.
 */
static int resolve_user(const char *user, char *buf, size_t size, struct passwd *pw, bool *ret_has_entry) {
        struct passwd *res = NULL;
        unsigned long id;
        bool numeric;
        char *end;

        errno = 0;
        id = strtoul(user, &end, 10);
        numeric = *user >= '0' && *user <= '9' && !*end && errno == 0 && id < UINT32_MAX;
        if (numeric)
                (void) getpwuid_r((uid_t) id, pw, buf, size, &res);
        else
                (void) getpwnam_r(user, pw, buf, size, &res);
        if (res) {
                *ret_has_entry = true;
                return 0;
        }
        if (!numeric)
                return -ESRCH;
        *pw = (struct passwd) { .pw_uid = (uid_t) id, .pw_gid = (gid_t) id };
        *ret_has_entry = false;
        return 0;
}

/* Permitted and effective sets: exactly CAP_CHOWN (the owner helper), or nothing. */
static int keep_chown_only(void) {
        cap_value_t keep[] = { CAP_CHOWN };
        cap_t caps;
        int r = 0;

        caps = cap_init();
        if (!caps)
                return negative_errno();
        if (cap_set_flag(caps, CAP_PERMITTED, 1, keep, CAP_SET) < 0 ||
            cap_set_flag(caps, CAP_EFFECTIVE, 1, keep, CAP_SET) < 0 || cap_set_proc(caps) < 0)
                r = negative_errno();
        cap_free(caps);
        return r;
}

static int drop_user(const char *user, bool keep_chown) {
        struct passwd pw;
        bool has_entry;
        char buf[16384];
        int r;

        r = resolve_user(user, buf, sizeof(buf), &pw, &has_entry);
        if (r < 0)
                return r;
        /* Before the switch, while gmemd may still shrink the bounding set. */
        r = sandbox_drop_bounds();
        if (r < 0)
                return r;
        if (pw.pw_uid == 0)
                return 0;   /* staying root: nothing to switch */

        if (has_entry ? initgroups(pw.pw_name, pw.pw_gid) < 0 : setgroups(0, NULL) < 0)
                return negative_errno();
        if (setresgid(pw.pw_gid, pw.pw_gid, pw.pw_gid) < 0)
                return negative_errno();
        if (keep_chown && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
                return negative_errno();
        if (setresuid(pw.pw_uid, pw.pw_uid, pw.pw_uid) < 0)
                return negative_errno();
        if (keep_chown && (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0 || keep_chown_only() < 0))
                return -EPERM;
        /* No way back. */
        if (setuid(0) == 0)
                return -EPERM;
        return has_entry ? 0 : 1;
}

int sandbox_drop_user(const char *user) {
        return drop_user(user, false);
}

int sandbox_keep_only_chown(void) {
        int r;

        r = keep_chown_only();
        if (r < 0)
                return r;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
                return negative_errno();
        if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
            prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
                return negative_errno();
        return 0;
}

int sandbox_drop_user_keeping_chown(const char *user) {
        return drop_user(user, true);
}

/* 1 if any of the effective, permitted or inheritable sets is not empty, 0 if all are, -errno. */
static int sandbox_has_capabilities(void) {
        cap_t caps, empty;
        int r, differ;

        caps = cap_get_proc();
        empty = cap_init();
        if (!caps || !empty) {
                r = negative_errno();
                cap_free(caps);
                cap_free(empty);
                return r;
        }
        differ = cap_compare(caps, empty);
        cap_free(caps);
        cap_free(empty);
        return differ != 0;
}

int sandbox_check_privileges(void) {
        if (sandbox_has_capabilities() != 0)
                return -EPERM;
        for (int c = 0; c <= CAP_LAST_CAP; c++)
                if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c, 0, 0) > 0)
                        return -EPERM;
        if (bounding_set_droppable && !bounding_set_empty())
                return -EPERM;
        if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
                return -EPERM;
        return 0;
}

int sandbox_drop_privileges(void) {
        cap_t empty;
        int r;

        r = sandbox_drop_bounds();
        if (r < 0)
                return r;

        /*
         * Under systemd with CapabilityBoundingSet= the sets are empty already,
         * and capset() may be filtered (@privileged): only clear what is held.
         */
        if (sandbox_has_capabilities() != 0) {
                empty = cap_init();
                if (!empty)
                        return negative_errno();
                if (cap_set_proc(empty) < 0) {
                        r = negative_errno();
                        cap_free(empty);
                        return r;
                }
                cap_free(empty);
        }

        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return negative_errno();
        /* No core dumps of guest memory, and no ptrace or /proc/PID/mem access by the same uid. */
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
                return negative_errno();

        return sandbox_check_privileges();
}

/* The calls gmemd makes, by what needs them. */
static const int allowed_syscalls[] = {
        /* the event loop (sd-event) and its timers, signals, child pidfds */
        SCMP_SYS(epoll_create1), SCMP_SYS(epoll_ctl), SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait),
        SCMP_SYS(ppoll), SCMP_SYS(poll), SCMP_SYS(timerfd_create), SCMP_SYS(timerfd_settime),
        SCMP_SYS(timerfd_gettime), SCMP_SYS(signalfd4), SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigaction),
        SCMP_SYS(rt_sigreturn), SCMP_SYS(clock_gettime), SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep),
        SCMP_SYS(pidfd_open),
        /* the bus connection (sd-bus), sd_notify, credentials of peers */
        SCMP_SYS(recvmsg), SCMP_SYS(sendmsg), SCMP_SYS(sendto), SCMP_SYS(recvfrom), SCMP_SYS(getsockopt),
        SCMP_SYS(setsockopt), SCMP_SYS(getsockname), SCMP_SYS(getpeername), SCMP_SYS(shutdown),
        SCMP_SYS(connect), SCMP_SYS(accept4),
        /* files: the policy file on reload, /proc/self/fd re-opens of region inodes, /proc and /sys facts */
        SCMP_SYS(openat), SCMP_SYS(close), SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(writev), SCMP_SYS(readv),
        SCMP_SYS(pread64), SCMP_SYS(lseek), SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(statx),
        SCMP_SYS(readlinkat), SCMP_SYS(access), SCMP_SYS(faccessat), SCMP_SYS(faccessat2), SCMP_SYS(fcntl),
        SCMP_SYS(dup), SCMP_SYS(dup3), SCMP_SYS(getdents64), SCMP_SYS(fstatfs),
        /* region inodes: create, size, seal, lock down, grant, punch and allocate */
        SCMP_SYS(memfd_create), SCMP_SYS(memfd_secret), SCMP_SYS(ftruncate), SCMP_SYS(fallocate),
        SCMP_SYS(fchmod), SCMP_SYS(fsetxattr), SCMP_SYS(fremovexattr), SCMP_SYS(fgetxattr),
        /* memory: malloc, and temporary mappings to fault in and count secret memory */
        SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mprotect), SCMP_SYS(mremap), SCMP_SYS(madvise), SCMP_SYS(mincore),
        SCMP_SYS(brk), SCMP_SYS(getrandom),
        /* identity and process bookkeeping; exit */
        SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(getuid), SCMP_SYS(geteuid), SCMP_SYS(getgid),
        SCMP_SYS(getegid), SCMP_SYS(getgroups), SCMP_SYS(prctl), SCMP_SYS(prlimit64), SCMP_SYS(futex),
        SCMP_SYS(sched_yield), SCMP_SYS(set_robust_list), SCMP_SYS(rseq), SCMP_SYS(uname),
        SCMP_SYS(exit), SCMP_SYS(exit_group), SCMP_SYS(tgkill), SCMP_SYS(restart_syscall),
};

/* gmem.ko's ioctls (linux/gmem.h), the only ones gmemd makes. */
static const unsigned long gmem_ioctls[] = {
        GMEM_GET_FEATURES, GMEM_CREATE_REGION, GMEM_OPEN_REGION, GMEM_LIST_REGIONS,
        GMEM_REGION_NEW_VIEW, GMEM_REGION_ACTIVATE_VIEW, GMEM_REGION_REVOKE_VIEW, GMEM_REGION_SET_ATTRIBUTES,
        GMEM_REGION_GET_ATTRIBUTES, GMEM_REGION_INFO, GMEM_REGION_DESTROY, GMEM_VIEW_INFO,
        /* kept views: restoring (before the filter is in, today) and pruning what no view claims */
        GMEM_REGION_OPEN_VIEW, GMEM_REGION_VIEW_LABEL,
        /* not gmem.ko's: how much a direct client has not read of its socket (bus-direct.c) */
        SIOCOUTQ,
};

int sandbox_install_seccomp(bool kill) {
        scmp_filter_ctx ctx;
        int r;

        ctx = seccomp_init(kill ? SCMP_ACT_KILL_PROCESS : SCMP_ACT_ERRNO(EPERM));
        if (!ctx)
                return -ENOMEM;

        for (size_t i = 0; i < ELEMENTSOF(allowed_syscalls); i++) {
                r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed_syscalls[i], 0);
                if (r < 0 && r != -EDOM)   /* -EDOM: not on this architecture */
                        goto finish;
        }
        /* ioctl only with gmem.ko's commands (the kmod backend) and SIOCOUTQ: no other device can be driven. */
        for (size_t i = 0; i < ELEMENTSOF(gmem_ioctls); i++) {
                r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                                     (struct scmp_arg_cmp) { .arg = 1, .op = SCMP_CMP_EQ, .datum_a = gmem_ioctls[i] });
                if (r < 0)
                        goto finish;
        }
        /* Sockets only of the local kind: sd_notify opens one per message. */
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
                             (struct scmp_arg_cmp) { .arg = 0, .op = SCMP_CMP_EQ, .datum_a = AF_UNIX, .datum_b = 0 });
        if (r < 0)
                goto finish;
        /* pidfd_send_signal with signal 0 only: whether a leader a client passes is alive; no process is signalled. */
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(pidfd_send_signal), 1,
                             (struct scmp_arg_cmp) { .arg = 1, .op = SCMP_CMP_EQ, .datum_a = 0, .datum_b = 0 });
        if (r < 0 && r != -EDOM)
                goto finish;
        /* Native architecture only: no 32-bit or x32 entry points. */
        r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1);
        if (r < 0)
                goto finish;
        r = seccomp_load(ctx);
finish:
        seccomp_release(ctx);
        return r;
}

/*
 * The self-test's probes: calls that any unprivileged process may make (so
 * without the filter each one succeeds, or fails for a reason other than
 * EPERM), that the allow-list leaves out, and that do no harm if a broken
 * filter lets them through. A probe that needs a privilege gmemd has
 * dropped (mount, init_module) would fail with EPERM filter or not, and
 * could not tell.
 */
static long probe_socket_inet(void) {
        /* Network access: only AF_UNIX sockets are allowed. */
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd >= 0)
                (void) close(fd);
        return fd;
}

static long probe_process_vm_readv(void) {
        /* Another process's memory, tried on our own (always permitted without the filter). */
        char from[8] = "gmemd", to[8];
        struct iovec local = { .iov_base = to, .iov_len = sizeof(to) };
        struct iovec remote = { .iov_base = from, .iov_len = sizeof(from) };

        return (long) process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
}

static long probe_execve(void) {
        /* Running a program; without the filter this fails with ENOENT. */
        char *const argv[] = { (char *) "/nonexistent/gmemd-sandbox-self-test", NULL };
        char *const envp[] = { NULL };

        return execve(argv[0], argv, envp);
}

static long probe_kill(void) {
        /* Signalling processes (signal 0 to ourselves only checks). */
        return kill(getpid(), 0);
}

static const struct {
        const char *name;
        long (*probe)(void);
} self_test_probes[] = {
        { "socket-inet",      probe_socket_inet      },
        { "process_vm_readv", probe_process_vm_readv },
        { "execve",           probe_execve           },
        { "kill",             probe_kill             },
};

static const char *errno_name(int err) {
        switch (err) {
        case EPERM:  return "EPERM";
        case EACCES: return "EACCES";
        case ENOENT: return "ENOENT";
        case ENOSYS: return "ENOSYS";
        case EFAULT: return "EFAULT";
        case EINVAL: return "EINVAL";
        default:     return NULL;
        }
}

void sandbox_self_test(char *buf, size_t size) {
        size_t used = 0;

        if (size == 0)
                return;
        buf[0] = 0;
        for (size_t i = 0; i < ELEMENTSOF(self_test_probes); i++) {
                const char *name;
                long r;
                int e, n;

                errno = 0;
                r = self_test_probes[i].probe();
                e = errno;
                name = r >= 0 ? "ALLOWED" : errno_name(e);
                if (name)
                        n = snprintf(buf + used, size - used, "%s%s=%s", i > 0 ? " " : "",
                                     self_test_probes[i].name, name);
                else
                        n = snprintf(buf + used, size - used, "%s%s=errno-%d", i > 0 ? " " : "",
                                     self_test_probes[i].name, e);
                if (n < 0 || (size_t) n >= size - used)
                        return;   /* truncated: what fits is there */
                used += (size_t) n;
        }
}
