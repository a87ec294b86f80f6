/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz.h — what the fuzz harnesses share: the libFuzzer entry points (so the
 * harnesses build with warnings as errors, and link against replay-main.c
 * as well as against libFuzzer), a reader that turns the input bytes into
 * values and yields zeros once they run out, so that every input decodes
 * to something, and FUZZ_CHECK, an assertion that says what it expected
 * and aborts, which libFuzzer and the replay driver both report as a crash.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond, ...)                                                       \
        do {                                                                        \
                if (!(cond)) {                                                      \
                        fprintf(stderr, "%s:%d: FAILED: ", __FILE__, __LINE__);     \
                        fprintf(stderr, __VA_ARGS__);                               \
                        fprintf(stderr, " [%s]\n", #cond);                          \
                        abort();                                                    \
                }                                                                   \
        } while (0)

typedef struct FuzzInput {
        const uint8_t *data;
        size_t size;
        size_t pos;
} FuzzInput;

static inline size_t fuzz_left(const FuzzInput *in) {
        return in->size - in->pos;
}

static inline uint8_t fuzz_u8(FuzzInput *in) {
        return in->pos < in->size ? in->data[in->pos++] : 0;
}

static inline uint16_t fuzz_u16(FuzzInput *in) {
        uint16_t v = fuzz_u8(in);
        return (uint16_t) (v | (uint16_t) fuzz_u8(in) << 8);
}

static inline uint32_t fuzz_u32(FuzzInput *in) {
        uint32_t v = fuzz_u16(in);
        return v | (uint32_t) fuzz_u16(in) << 16;
}

static inline uint64_t fuzz_u64(FuzzInput *in) {
        uint64_t v = fuzz_u32(in);
        return v | (uint64_t) fuzz_u32(in) << 32;
}

/* Up to max bytes (fewer if the input runs out); *ret_n says how many. */
static inline const uint8_t *fuzz_bytes(FuzzInput *in, size_t max, size_t *ret_n) {
        const uint8_t *p = in->data + in->pos;
        size_t n = fuzz_left(in) < max ? fuzz_left(in) : max;

        in->pos += n;
        *ret_n = n;
        return p;
}
