/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kvm-vm.h — tiny-vmm's VM: /dev/kvm, one VM, its two memory slots and one
 * vCPU in real mode, run until the guest halts, its I/O port writes served
 * and every other exit refused. A failing ioctl is printed with its name
 * and errno, an exit with its name.
 */
#pragma once

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>

#include <linux/kvm.h>

#include "guest-code.h"

#define KVM_DEVICE "/dev/kvm"

/* Not in older <linux/kvm.h> (6.8 added it); the number is ABI. */
#ifndef KVM_EXIT_MEMORY_FAULT
#define KVM_EXIT_MEMORY_FAULT 39
#endif

typedef struct Vmm {
        int kvm_fd;
        int vm_fd;
        int vcpu_fd;
        struct kvm_run *run;
        size_t run_size;
        uint8_t *code;                  /* CODE_SIZE bytes, slot 0 */
        bool readonly_mem;              /* KVM_CAP_READONLY_MEM */
        unsigned long exits;
} Vmm;

#define VMM_NULL { .kvm_fd = -EBADF, .vm_fd = -EBADF, .vcpu_fd = -EBADF, .run = MAP_FAILED, .code = MAP_FAILED }

void vmm_done(Vmm *v);

/*
 * Opens /dev/kvm and creates a VM. Any failure means KVM is missing or
 * unusable here: the reason is printed and a negative errno returned (the
 * caller exits 77).
 */
int vmm_open(Vmm *v);

/*
 * Puts the program in slot 0, the view's mapping (if view_map is not NULL)
 * in slot 1, KVM_MEM_READONLY if readonly_slot, and creates the vCPU in
 * real mode at 0000:0000 with ES = DATA_SEGMENT and the registers the
 * program reads.
 */
int vmm_setup(Vmm *v, const GuestProgram *program, uint8_t *view_map, size_t view_size, bool readonly_slot,
              uint32_t eax, uint32_t ecx);

/* What the guest did in one vmm_run(). */
typedef struct GuestRun {
        uint32_t *words;                /* reported on PORT_WORD */
        size_t n_words;
        size_t max_words;
        bool have_sum;
        uint32_t sum;                   /* reported on PORT_SUM */
        bool done;                      /* DONE_MAGIC reported on PORT_DONE */
        bool halted;
        /* writes KVM turned into KVM_EXIT_MMIO (allowed in write-attempt only) */
        unsigned mmio_writes;
        uint64_t mmio_gpa;
        uint32_t mmio_len;
        uint8_t mmio_data[8];
        /* KVM_RUN failed (allowed in write-attempt only) */
        int run_error;                  /* negative errno, 0 if none */
        uint32_t error_exit_reason;
        uint64_t error_rip;
} GuestRun;

void guest_run_done(GuestRun *g);

/*
 * Runs the vCPU until the guest halts, at most --timeout seconds.
 * allow_write_faults: a write that KVM turns into KVM_EXIT_MMIO is recorded
 * and dropped, and a failing KVM_RUN is recorded and ends the run, instead
 * of both being errors.
 */
int vmm_run(Vmm *v, GuestRun *g, bool allow_write_faults);

/*
 * Sets RBP and RDX, which the loop program reads (guest-code.h); after
 * vmm_setup().
 */
int vmm_set_loop_regs(Vmm *v, uint32_t ebp, uint32_t edx);

/* Put in kvm_run.exit_reason before each KVM_RUN of a round: still there afterwards means KVM set none. */
#define EXIT_REASON_UNSET UINT32_C(0xffffffff)

/* How a failed KVM_RUN left the vCPU. */
typedef struct RunFault {
        int error;                      /* negative errno */
        uint32_t exit_reason;           /* EXIT_REASON_UNSET: KVM wrote none */
        uint64_t rip;
        uint64_t mf_flags, mf_gpa, mf_size;     /* with KVM_EXIT_MEMORY_FAULT */
} RunFault;

/*
 * One round of the loop program: runs the vCPU until the guest reports a
 * checksum on PORT_SUM (returns 1, *ret_sum set) or KVM_RUN fails with
 * anything but EINTR/EAGAIN (returns 0, *ret_fault set: KVM_RUN may be
 * tried again, the guest is where it was). Returns -EINTR as soon as
 * *stop is set (a signal handler sets it and kvm_run.immediate_exit), a
 * negative errno on any other exit or error, printed.
 */
int vmm_run_round(Vmm *v, const volatile sig_atomic_t *stop, uint32_t *ret_sum, RunFault *ret_fault);

/* "KVM_EXIT_MMIO" for KVM_EXIT_MMIO; "KVM_EXIT_?" for a reason it has no name for. */
const char *exit_reason_name(uint32_t reason);
