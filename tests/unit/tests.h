/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * tests.h — assertions that say what they expect. Each check carries a
 * sentence; a failure prints it with the location and aborts the test
 * program. TEST_SKIP exits 77, meson's code for "skipped", with a reason.
 */
#pragma once

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPECT(cond, ...)                                                           \
        do {                                                                        \
                if (!(cond)) {                                                      \
                        fprintf(stderr, "%s:%d: FAILED: ", __FILE__, __LINE__);     \
                        fprintf(stderr, __VA_ARGS__);                               \
                        fprintf(stderr, " [%s]\n", #cond);                          \
                        abort();                                                    \
                }                                                                   \
        } while (0)

#define TEST_SKIP(...)                                                              \
        do {                                                                        \
                fprintf(stderr, "GMEM-SKIP %s: ", program_invocation_short_name);   \
                fprintf(stderr, __VA_ARGS__);                                       \
                fprintf(stderr, "\n");                                              \
                exit(77);                                                           \
        } while (0)

#define RUN(test)                                                                   \
        do {                                                                        \
                fprintf(stderr, "== %s\n", #test);                                  \
                test();                                                             \
        } while (0)
