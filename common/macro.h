/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * macro.h — the few macros every gmemd source file leans on.
 *
 * Ownership is explicit: heap pointers and file descriptors are released by
 * cleanup attributes when they go out of scope, and handed on with
 * TAKE_PTR()/TAKE_FD(), which return the value and leave the variable empty.
 * File descriptors start at -EBADF so that "no fd" is never a valid fd.
 * Shared by the daemon, libgmem and gmemctl.
 */
#pragma once

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _pure_ __attribute__((pure))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _warn_unused_result_ __attribute__((warn_unused_result))
#define _likely_(x) __builtin_expect(!!(x), 1)
#define _unlikely_(x) __builtin_expect(!!(x), 0)

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

#define TAKE_PTR(p)                                 \
        ({                                          \
                __typeof__(p) _take_tmp_ = (p);     \
                (p) = NULL;                         \
                _take_tmp_;                         \
        })

#define TAKE_FD(fd)                                 \
        ({                                          \
                int _take_fd_ = (fd);               \
                (fd) = -EBADF;                      \
                _take_fd_;                          \
        })

/* Defines name##p(type **p) that calls func(*p) if it is non-NULL. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)     \
        static inline void func##p(type *p) {       \
                if (*p)                             \
                        func(*p);                   \
        }

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

/* Closes fd if it is valid and keeps errno intact; returns -EBADF. */
static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                (void) close(fd);
                errno = saved;
        }
        return -EBADF;
}

static inline void closep(int *fd) {
        safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

/* Returns -errno, never 0, even if a buggy libc path left errno unset. */
static inline int negative_errno(void) {
        return errno > 0 ? -errno : -EIO;
}

/* Overflow-checked arithmetic; true on overflow. */
#define ADD_OVERFLOW(a, b, ret) __builtin_add_overflow(a, b, ret)
#define MUL_OVERFLOW(a, b, ret) __builtin_mul_overflow(a, b, ret)

#define streq(a, b) (strcmp((a), (b)) == 0)
#define isempty(s) (!(s) || !(s)[0])

static inline void fclosep(FILE **f) {
        if (*f)
                (void) fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)
