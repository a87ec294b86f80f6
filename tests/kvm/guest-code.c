/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * guest-code.c — the guest programs, assembled by hand: the bytes, with
 * their assembly beside them.
 *
 * 16-bit real mode, loaded at CS:IP = 0000:0000. On entry the VMM has set
 * ES = DATA_SEGMENT, DI = 0, ESI = 0, EAX and ECX as each program says. ES
 * moves on by 64 KiB whenever DI wraps, so a program reaches all of
 * DATA_REACH. The ports and DONE_MAGIC are those of guest-code.h. Checked
 * with `as --32` (.code16) and objdump.
 */
#include <stdint.h>

#include "guest-code.h"

/* EAX = seed, ECX = number of words (> 0). */
static const uint8_t guest_write_code[] = {
        0x26, 0x66, 0x89, 0x05,                         /* 1: mov   [es:di], eax           */
        0x66, 0x69, 0xc0, 0x0d, 0x66, 0x19, 0x00,       /*    imul  eax, eax, 1664525      */
        0x66, 0x05, 0x5f, 0xf3, 0x6e, 0x3c,             /*    add   eax, 1013904223        */
        0x83, 0xc7, 0x04,                               /*    add   di, 4                  */
        0x75, 0x08,                                     /*    jnz   2f                     */
        0x8c, 0xc3,                                     /*    mov   bx, es                 */
        0x81, 0xc3, 0x00, 0x10,                         /*    add   bx, 0x1000             */
        0x8e, 0xc3,                                     /*    mov   es, bx                 */
        0x66, 0x49,                                     /* 2: dec   ecx                    */
        0x75, 0xde,                                     /*    jnz   1b                     */
        0xba, 0x12, 0x00,                               /*    mov   dx, PORT_DONE          */
        0xb8, 0x0d, 0x60,                               /*    mov   ax, DONE_MAGIC         */
        0xef,                                           /*    out   dx, ax                 */
        0xf4,                                           /*    hlt                          */
};
const GuestProgram guest_write = { guest_write_code, sizeof guest_write_code };

/* ECX = number of words (> 0); ESI = 0 (the checksum). */
static const uint8_t guest_read_code[] = {
        0x26, 0x66, 0x8b, 0x05,                         /* 1: mov   eax, [es:di]           */
        0xba, 0x10, 0x00,                               /*    mov   dx, PORT_WORD          */
        0x66, 0xef,                                     /*    out   dx, eax                */
        0x66, 0xc1, 0xc6, 0x05,                         /*    rol   esi, 5                 */
        0x66, 0x31, 0xc6,                               /*    xor   esi, eax               */
        0x83, 0xc7, 0x04,                               /*    add   di, 4                  */
        0x75, 0x08,                                     /*    jnz   2f                     */
        0x8c, 0xc3,                                     /*    mov   bx, es                 */
        0x81, 0xc3, 0x00, 0x10,                         /*    add   bx, 0x1000             */
        0x8e, 0xc3,                                     /*    mov   es, bx                 */
        0x66, 0x49,                                     /* 2: dec   ecx                    */
        0x75, 0xdf,                                     /*    jnz   1b                     */
        0x66, 0x89, 0xf0,                               /*    mov   eax, esi               */
        0xba, 0x11, 0x00,                               /*    mov   dx, PORT_SUM           */
        0x66, 0xef,                                     /*    out   dx, eax                */
        0xba, 0x12, 0x00,                               /*    mov   dx, PORT_DONE          */
        0xb8, 0x0d, 0x60,                               /*    mov   ax, DONE_MAGIC         */
        0xef,                                           /*    out   dx, ax                 */
        0xf4,                                           /*    hlt                          */
};
const GuestProgram guest_read = { guest_read_code, sizeof guest_read_code };

/* EAX = the word to store at the start of the view. */
static const uint8_t guest_write_attempt_code[] = {
        0x26, 0x66, 0x89, 0x05,                         /*    mov   [es:di], eax           */
        0xba, 0x12, 0x00,                               /*    mov   dx, PORT_DONE          */
        0xb8, 0x0d, 0x60,                               /*    mov   ax, DONE_MAGIC         */
        0xef,                                           /*    out   dx, ax                 */
        0xf4,                                           /*    hlt                          */
};
const GuestProgram guest_write_attempt = { guest_write_attempt_code, sizeof guest_write_attempt_code };

/* Nothing but done. */
static const uint8_t guest_probe_code[] = {
        0xba, 0x12, 0x00,                               /*    mov   dx, PORT_DONE          */
        0xb8, 0x0d, 0x60,                               /*    mov   ax, DONE_MAGIC         */
        0xef,                                           /*    out   dx, ax                 */
        0xf4,                                           /*    hlt                          */
};
const GuestProgram guest_probe = { guest_probe_code, sizeof guest_probe_code };

/* EAX = seed, EBP = number of words (> 0), EDX = 1: write the pattern first. */
static const uint8_t guest_loop_code[] = {
        0x66, 0x85, 0xd2,                               /*    test  edx, edx               */
        0x74, 0x25,                                     /*    jz    3f                     */
        0x66, 0x89, 0xe9,                               /*    mov   ecx, ebp               */
        0x26, 0x66, 0x89, 0x05,                         /* 1: mov   [es:di], eax           */
        0x66, 0x69, 0xc0, 0x0d, 0x66, 0x19, 0x00,       /*    imul  eax, eax, 1664525      */
        0x66, 0x05, 0x5f, 0xf3, 0x6e, 0x3c,             /*    add   eax, 1013904223        */
        0x83, 0xc7, 0x04,                               /*    add   di, 4                  */
        0x75, 0x08,                                     /*    jnz   2f                     */
        0x8c, 0xc3,                                     /*    mov   bx, es                 */
        0x81, 0xc3, 0x00, 0x10,                         /*    add   bx, 0x1000             */
        0x8e, 0xc3,                                     /*    mov   es, bx                 */
        0x66, 0x49,                                     /* 2: dec   ecx                    */
        0x75, 0xde,                                     /*    jnz   1b                     */
        0xbb, 0x00, 0x10,                               /* 3: mov   bx, DATA_SEGMENT       */
        0x8e, 0xc3,                                     /*    mov   es, bx                 */
        0x31, 0xff,                                     /*    xor   di, di                 */
        0x66, 0x31, 0xf6,                               /*    xor   esi, esi               */
        0x66, 0x89, 0xe9,                               /*    mov   ecx, ebp               */
        0x26, 0x66, 0x8b, 0x05,                         /* 4: mov   eax, [es:di]           */
        0x66, 0xc1, 0xc6, 0x05,                         /*    rol   esi, 5                 */
        0x66, 0x31, 0xc6,                               /*    xor   esi, eax               */
        0x83, 0xc7, 0x04,                               /*    add   di, 4                  */
        0x75, 0x08,                                     /*    jnz   5f                     */
        0x8c, 0xc3,                                     /*    mov   bx, es                 */
        0x81, 0xc3, 0x00, 0x10,                         /*    add   bx, 0x1000             */
        0x8e, 0xc3,                                     /*    mov   es, bx                 */
        0x66, 0x49,                                     /* 5: dec   ecx                    */
        0x75, 0xe4,                                     /*    jnz   4b                     */
        0x66, 0x89, 0xf0,                               /*    mov   eax, esi               */
        0xba, 0x11, 0x00,                               /*    mov   dx, PORT_SUM           */
        0x66, 0xef,                                     /*    out   dx, eax                */
        0xeb, 0xcd,                                     /*    jmp   3b                     */
};
const GuestProgram guest_loop = { guest_loop_code, sizeof guest_loop_code };
