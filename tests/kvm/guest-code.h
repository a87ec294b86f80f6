/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * guest-code.h — what the guest programs and the VMM agree on: where the
 * program and the view lie in guest-physical memory and in which memory
 * slots, the I/O ports the guest reports on, and the pattern and checksum
 * it computes. The programs themselves are in guest-code.c.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define CODE_GPA UINT64_C(0)
#define CODE_SIZE 4096
#define DATA_GPA UINT64_C(0x10000)
#define DATA_SEGMENT 0x1000                     /* DATA_GPA >> 4 */
#define DATA_REACH (UINT64_C(1024) * 1024 - DATA_GPA)   /* 960 KiB below 1 MiB */
#define SLOT_CODE 0
#define SLOT_DATA 1

#define PORT_WORD 0x10
#define PORT_SUM 0x11
#define PORT_DONE 0x12
#define DONE_MAGIC 0x600d

#define PATTERN_MUL UINT32_C(1664525)
#define PATTERN_ADD UINT32_C(1013904223)

/* A guest program: its bytes, loaded at CODE_GPA and entered at 0000:0000. */
typedef struct GuestProgram {
        const uint8_t *code;
        size_t size;
} GuestProgram;

/* The programs, 16-bit real mode; the registers each reads are set by the VMM. */
extern const GuestProgram guest_write;          /* EAX = seed, ECX = number of words (> 0) */
extern const GuestProgram guest_read;           /* ECX = number of words (> 0), ESI = 0 */
extern const GuestProgram guest_write_attempt;  /* EAX = the word to store at the start of the view */
extern const GuestProgram guest_probe;          /* nothing but done */
/*
 * EAX = seed, EBP = number of words (> 0), EDX = 1 to write the pattern
 * first (0: not); then forever: the checksum of the words, reported on
 * PORT_SUM, one exit a round.
 */
extern const GuestProgram guest_loop;

/*
 * The pattern: word i (32 bits, little endian) is x_i, where x_0 is the
 * seed and x_(i+1) = x_i * 1664525 + 1013904223 mod 2^32.
 */
static inline uint32_t pattern_next(uint32_t x) {
        return x * PATTERN_MUL + PATTERN_ADD;
}

/* The checksum: c = 0, then c = rol(c, 5) ^ word for every word. */
static inline uint32_t checksum_add(uint32_t c, uint32_t word) {
        return ((c << 5) | (c >> 27)) ^ word;
}

/* A word as the guest stores it, little endian. */
static inline uint32_t load_le32(const uint8_t *p) {
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}
