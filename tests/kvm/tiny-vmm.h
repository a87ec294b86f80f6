/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * tiny-vmm.h — what tiny-vmm's files share: the options the modes read
 * (arg_*, set from the command line by tiny-vmm.c), the exit statuses
 * beyond 0 and 1, and how an error is printed: "tiny-vmm: <message>" on
 * stderr, an errno by its name and text.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

#define EXIT_USAGE 2
#define EXIT_SKIP 77

extern uint64_t arg_length;
extern uint32_t arg_seed;
extern bool arg_expect_pattern;
extern bool arg_print_words;
extern bool arg_no_readonly_mem;
extern const char *arg_check_vm;
extern unsigned arg_timeout;
extern unsigned arg_interval;
extern bool arg_write_pattern;

/* Prints "tiny-vmm: <message>" on stderr, stdout flushed first; returns r. */
int log_error(int r, const char *fmt, ...) _printf_(2, 3);

/* "EFAULT (Bad address)" for an errno > 0. */
const char *errno_text(int e, char *buf, size_t n);
#define ERRNO_TEXT(e) errno_text((e), (char[96]) {}, 96)

/* log_error() with ": <errno text>" appended; returns the negative errno. */
#define log_errno(fmt, ...)                                                             \
        ({                                                                              \
                int _e_ = errno > 0 ? errno : EIO;                                      \
                log_error(-_e_, fmt ": %s", ##__VA_ARGS__, ERRNO_TEXT(_e_));            \
        })
