/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * owner-helper.c — the one privileged verb gmemd keeps: giving one of its
 * hugetlb inodes to a hypervisor uid.
 *
 * hugetlbfs takes no POSIX access list, so the only way to let a hypervisor
 * running as another uid re-open its view through /proc/self/fd/N (as QEMU
 * does with mem-path=) is to make that uid the inode's owner, mode 0600
 * (only a uid with write access: an owner may change the mode). Changing an owner needs CAP_CHOWN, and gmemd itself holds no
 * capability: a gmemd holding CAP_CHOWN could take any file it can open.
 * So, in the manner of OpenBSD's privilege-separated daemons, gmemd forks
 * this helper before it drops its privileges. The helper becomes gmemd's
 * user too, keeps CAP_CHOWN and nothing else, closes every other fd, and
 * answers one request on a socket pair: an fd (SCM_RIGHTS), a uid and a
 * mode. It acts only on a hugetlbfs memfd that gmemd labelled
 * ("/memfd:gmem:..."), only with mode 0600: it takes the inode
 * back to its own uid, sets the mode, and gives it to the uid. A gmemd
 * that is taken over can so give its own regions to anyone, which it could
 * do anyway by handing out their fds, and nothing else.
 *
 * Without CAP_CHOWN at start (an unprivileged gmemd, a unit without the
 * capability) there is no helper, and hugetlb views are used only through
 * the fds handed out, as before.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <seccomp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "config.h"
#include "macro.h"
#include "owner-helper.h"
#include "sandbox.h"

#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif

#define OWNER_HELPER_LABEL "/memfd:gmem:"

typedef struct OwnerRequest {
        uint32_t uid;
        uint32_t mode;
} OwnerRequest;

static int has_cap_chown(void) {
        cap_flag_value_t v = CAP_CLEAR;
        cap_t caps = cap_get_proc();
        int r;

        if (!caps)
                return negative_errno();
        r = cap_get_flag(caps, CAP_CHOWN, CAP_EFFECTIVE, &v) < 0 ? negative_errno() : v == CAP_SET;
        cap_free(caps);
        return r;
}

static const int helper_syscalls[] = {
        /* the socket pair */
        SCMP_SYS(recvmsg), SCMP_SYS(sendmsg), SCMP_SYS(sendto), SCMP_SYS(close),
        /* checking the inode it is given, and changing its owner and mode */
        SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(statx), SCMP_SYS(fstatfs), SCMP_SYS(readlink),
        SCMP_SYS(readlinkat), SCMP_SYS(geteuid), SCMP_SYS(fchown), SCMP_SYS(fchmod),
        /* the end */
        SCMP_SYS(exit), SCMP_SYS(exit_group), SCMP_SYS(rt_sigreturn), SCMP_SYS(write),
};

static int helper_install_seccomp(bool filter) {
        scmp_filter_ctx ctx;
        int r = 0;

        if (!filter || GMEMD_SANITIZED)
                return 0;
        ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
        if (!ctx)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(helper_syscalls) && r >= 0; i++) {
                r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, helper_syscalls[i], 0);
                if (r == -EDOM)
                        r = 0;
        }
        if (r >= 0)
                r = seccomp_load(ctx);
        seccomp_release(ctx);
        return r;
}

/* Whether fd is a hugetlbfs memfd gmemd made (its label), as a regular file. */
static int helper_check_inode(int fd, struct stat *ret) {
        char path[64], link[256];
        struct statfs sfs;
        ssize_t n;

        if (fstatfs(fd, &sfs) < 0 || fstat(fd, ret) < 0)
                return negative_errno();
        if ((uint32_t) sfs.f_type != (uint32_t) HUGETLBFS_MAGIC || !S_ISREG(ret->st_mode))
                return -EBADF;
        (void) snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        n = readlink(path, link, sizeof(link) - 1);
        if (n < 0)
                return negative_errno();
        link[n] = 0;
        if (strncmp(link, OWNER_HELPER_LABEL, strlen(OWNER_HELPER_LABEL)) != 0)
                return -EBADF;
        return 0;
}

static int helper_give(int fd, const OwnerRequest *req) {
        uid_t self = geteuid();
        struct stat st;
        int r;

        if (req->mode != 0600)
                return -EINVAL;
        r = helper_check_inode(fd, &st);
        if (r < 0)
                return r;
        /* Back to the helper's (gmemd's) uid first: only the owner may change the mode. */
        if (st.st_uid != self && fchown(fd, self, (gid_t) -1) < 0)
                return negative_errno();
        if (fchmod(fd, (mode_t) req->mode) < 0)
                return negative_errno();
        if (req->uid != self && fchown(fd, (uid_t) req->uid, (gid_t) -1) < 0)
                return negative_errno();
        return 0;
}

/* One request: the fd it carries, or -1. 0 on end of file, 1 with a request, -errno. */
static int helper_receive(int sock, OwnerRequest *req, int *ret_fd) {
        union {
                struct cmsghdr cmsg;
                uint8_t buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        struct iovec iov = { .iov_base = req, .iov_len = sizeof(*req) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
                             .msg_controllen = sizeof(control) };
        struct cmsghdr *c;
        ssize_t n;

        *ret_fd = -1;
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        if (n < 0)
                return errno == EINTR ? 1 : negative_errno();
        if (n == 0)
                return 0;
        c = CMSG_FIRSTHDR(&mh);
        if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int)))
                memcpy(ret_fd, CMSG_DATA(c), sizeof(int));
        if ((size_t) n != sizeof(*req) || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
                return -EBADMSG;
        return 1;
}

static _Noreturn void helper_serve(int sock) {
        for (;;) {
                OwnerRequest req;
                int32_t answer;
                int fd, r;

                r = helper_receive(sock, &req, &fd);
                if (r == 0)
                        _exit(0);
                if (r > 0)
                        answer = fd < 0 ? -EBADMSG : helper_give(fd, &req);
                else
                        answer = r;
                if (fd >= 0)
                        (void) close(fd);
                if (send(sock, &answer, sizeof(answer), MSG_NOSIGNAL) != sizeof(answer))
                        _exit(1);
        }
}

static int helper_close_others(int keep) {
        /* Nothing of gmemd's (its event loop, the fd store's region fds) stays with the helper. */
        if (keep != 3) {
                if (dup2(keep, 3) < 0)
                        return negative_errno();
        }
        if (syscall(SYS_close_range, 4U, ~0U, 0) < 0)
                for (int fd = 4; fd < 65536; fd++)
                        (void) close(fd);
        return 3;
}

static _Noreturn void helper_main(int sock, const char *user, bool filter, pid_t parent) {
        int r;

        (void) prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        if (getppid() != parent)
                _exit(1);       /* gmemd died before the line above */
        /* Named apart from gmemd in ps and /proc/PID/comm (argv[0] stays gmemd's). */
        (void) prctl(PR_SET_NAME, "gmemd-owner", 0, 0, 0);
        sock = helper_close_others(sock);
        if (sock < 0)
                _exit(1);
        if (user) {
                r = sandbox_drop_user_keeping_chown(user);
                if (r < 0)
                        _exit(1);
        }
        if (sandbox_keep_only_chown() < 0 || helper_install_seccomp(filter) < 0)
                _exit(1);
        helper_serve(sock);
}

int owner_helper_start(const char *user, bool filter, int *ret_fd) {
        int pair[2], r;
        pid_t pid, parent = getpid();

        r = has_cap_chown();
        if (r < 0)
                return r;
        if (r == 0)
                return -EPERM;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
                return negative_errno();
        pid = fork();
        if (pid < 0) {
                r = negative_errno();
                (void) close(pair[0]);
                (void) close(pair[1]);
                return r;
        }
        if (pid == 0) {
                (void) close(pair[0]);
                helper_main(pair[1], user, filter, parent);
        }
        (void) close(pair[1]);
        *ret_fd = pair[0];
        return 0;
}

int owner_helper_give(int channel, int fd, uint32_t uid, unsigned mode) {
        union {
                struct cmsghdr cmsg;
                uint8_t buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        OwnerRequest req = { .uid = uid, .mode = mode };
        struct iovec iov = { .iov_base = &req, .iov_len = sizeof(req) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
                             .msg_controllen = sizeof(control) };
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        int32_t answer;
        ssize_t n;

        if (channel < 0)
                return -EOPNOTSUPP;
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
        if (sendmsg(channel, &mh, MSG_NOSIGNAL) != sizeof(req))
                return negative_errno();
        do
                n = recv(channel, &answer, sizeof(answer), 0);
        while (n < 0 && errno == EINTR);
        if (n == 0)
                return -ECONNRESET;   /* the helper is gone */
        if (n != sizeof(answer))
                return n < 0 ? negative_errno() : -EBADMSG;
        return answer > 0 ? -EBADMSG : answer;
}
