/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fdlimit.c — see fdlimit.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <time.h>
#include <unistd.h>

#include "fdlimit.h"
#include "macro.h"

/* Below the limit by this much more than the caller's count, no probe is needed: it covers the fds
 * gmemd holds without counting them (the bus, the event loop, queued replies, parked calls). */
#define FDLIMIT_SLACK 4096U

/* How long a limit read is used before it is read again: only another process (prlimit) changes it. */
#define FDLIMIT_REREAD_NSEC (1000 * 1000 * 1000LL)

static struct rlimit cached;
static struct timespec read_at;
static bool valid;

void fdlimit_reread(void) {
        valid = false;
}

/* The soft limit, read at most once per FDLIMIT_REREAD_NSEC: every call that hands out an fd asks. */
static int limit_now(struct rlimit *ret) {
        struct timespec now;

        if (clock_gettime(CLOCK_MONOTONIC, &now) < 0)
                valid = false;
        else if (valid && (now.tv_sec - read_at.tv_sec) * 1000000000LL + (now.tv_nsec - read_at.tv_nsec) <
                          FDLIMIT_REREAD_NSEC) {
                *ret = cached;
                return 0;
        }
        if (getrlimit(RLIMIT_NOFILE, &cached) < 0) {
                valid = false;
                return -errno;
        }
        read_at = now;
        valid = true;
        *ret = cached;
        return 0;
}

int fdlimit_raise(struct rlimit *ret) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return -errno;
        if (rl.rlim_cur != rl.rlim_max) {
                struct rlimit raised = { .rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max };

                if (setrlimit(RLIMIT_NOFILE, &raised) < 0)
                        return -errno;
                rl = raised;
                fdlimit_reread();
        }
        if (ret)
                *ret = rl;
        return 0;
}

int fdlimit_check(int any_fd, unsigned n, size_t held, rlim_t *ret_limit) {
        struct rlimit rl = {};
        unsigned need = n + FDLIMIT_RESERVE, got = 0;
        int fds[64 + FDLIMIT_RESERVE];
        int r;

        r = limit_now(&rl);
        if (r < 0)
                return r;
        if (ret_limit)
                *ret_limit = rl.rlim_cur;
        if (rl.rlim_cur == RLIM_INFINITY)
                return 0;
        if (held <= rl.rlim_cur && rl.rlim_cur - held >= (rlim_t) need + FDLIMIT_SLACK)
                return 0;
        if (need > ELEMENTSOF(fds) || need > rl.rlim_cur)
                return -EMFILE;

        /* Near the limit: the fds really free are the only count that holds. */
        r = 0;
        for (; got < need; got++) {
                fds[got] = fcntl(any_fd, F_DUPFD_CLOEXEC, 3);
                if (fds[got] < 0) {
                        r = errno == ENFILE ? -ENFILE : -EMFILE;
                        break;
                }
        }
        for (unsigned i = 0; i < got; i++)
                (void) close(fds[i]);
        return r;
}
