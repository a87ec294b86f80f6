/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kvm-vm.c — tiny-vmm's VM (kvm-vm.h): opening /dev/kvm and creating the
 * VM, the memory slots, the vCPU in real mode at 0000:0000, and the run
 * loop with its exits: the guest's writes to the ports of guest-code.h,
 * hlt, and, for write-attempt, the writes KVM refuses. An alarm of
 * --timeout seconds stops a guest that does not finish.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "kvm-vm.h"
#include "macro.h"
#include "tiny-vmm.h"

static volatile sig_atomic_t timed_out = 0;
static struct kvm_run *volatile alarm_run = NULL;      /* the vCPU the alarm stops */

/* An ioctl on a KVM fd; a failure is printed with the ioctl's name and errno. */
static int kvm_ioctl(int fd, unsigned long request, const char *name, unsigned long arg) {
        int r = ioctl(fd, request, arg);

        if (r < 0) {
                r = negative_errno();
                log_error(r, "ioctl %s failed: %s", name, ERRNO_TEXT(-r));
        }
        return r;
}
#define KVM_IOCTL(fd, request, arg) kvm_ioctl((fd), (request), #request, (unsigned long) (arg))

const char *exit_reason_name(uint32_t reason) {
        static const char *const names[] = {
                [KVM_EXIT_UNKNOWN] = "KVM_EXIT_UNKNOWN",
                [KVM_EXIT_EXCEPTION] = "KVM_EXIT_EXCEPTION",
                [KVM_EXIT_IO] = "KVM_EXIT_IO",
                [KVM_EXIT_HYPERCALL] = "KVM_EXIT_HYPERCALL",
                [KVM_EXIT_DEBUG] = "KVM_EXIT_DEBUG",
                [KVM_EXIT_HLT] = "KVM_EXIT_HLT",
                [KVM_EXIT_MMIO] = "KVM_EXIT_MMIO",
                [KVM_EXIT_IRQ_WINDOW_OPEN] = "KVM_EXIT_IRQ_WINDOW_OPEN",
                [KVM_EXIT_SHUTDOWN] = "KVM_EXIT_SHUTDOWN",
                [KVM_EXIT_FAIL_ENTRY] = "KVM_EXIT_FAIL_ENTRY",
                [KVM_EXIT_INTR] = "KVM_EXIT_INTR",
                [KVM_EXIT_NMI] = "KVM_EXIT_NMI",
                [KVM_EXIT_INTERNAL_ERROR] = "KVM_EXIT_INTERNAL_ERROR",
                [KVM_EXIT_SYSTEM_EVENT] = "KVM_EXIT_SYSTEM_EVENT",
                [KVM_EXIT_MEMORY_FAULT] = "KVM_EXIT_MEMORY_FAULT",
        };

        if (reason < ELEMENTSOF(names) && names[reason])
                return names[reason];
        return "KVM_EXIT_?";
}

void vmm_done(Vmm *v) {
        if (v->run != MAP_FAILED)
                (void) munmap(v->run, v->run_size);
        v->run = MAP_FAILED;
        if (v->code != MAP_FAILED)
                (void) munmap(v->code, CODE_SIZE);
        v->code = MAP_FAILED;
        v->vcpu_fd = safe_close(v->vcpu_fd);
        v->vm_fd = safe_close(v->vm_fd);
        v->kvm_fd = safe_close(v->kvm_fd);
}

int vmm_open(Vmm *v) {
        int r;

        v->kvm_fd = open(KVM_DEVICE, O_RDWR | O_CLOEXEC);
        if (v->kvm_fd < 0) {
                r = negative_errno();
                if (r == -ENOENT)
                        return log_error(r, "KVM is not available: there is no " KVM_DEVICE " (no KVM in this "
                                         "kernel, kvm modules not loaded, or not passed into this container)");
                return log_error(r, "KVM is not usable: cannot open " KVM_DEVICE ": %s", ERRNO_TEXT(-r));
        }

        r = ioctl(v->kvm_fd, KVM_GET_API_VERSION, 0);
        if (r < 0)
                return log_errno("KVM is not usable: ioctl KVM_GET_API_VERSION failed");
        if (r != KVM_API_VERSION)
                return log_error(-EPROTO, "KVM is not usable: API version %d, this program speaks %d", r,
                                 KVM_API_VERSION);

        v->vm_fd = ioctl(v->kvm_fd, KVM_CREATE_VM, 0);
        if (v->vm_fd < 0)
                return log_errno("KVM is not usable: ioctl KVM_CREATE_VM failed");

        r = ioctl(v->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM);
        v->readonly_mem = r > 0;
        printf("kvm: api=%d readonly-mem=%s\n", KVM_API_VERSION, v->readonly_mem ? "yes" : "no");
        return 0;
}

static int vmm_set_slot(Vmm *v, uint32_t slot, uint32_t flags, uint64_t gpa, uint64_t size, void *hva) {
        struct kvm_userspace_memory_region region = {
                .slot = slot,
                .flags = flags,
                .guest_phys_addr = gpa,
                .memory_size = size,
                .userspace_addr = (uintptr_t) hva,
        };
        int r;

        r = KVM_IOCTL(v->vm_fd, KVM_SET_USER_MEMORY_REGION, &region);
        if (r < 0)
                return log_error(r, "  (slot %" PRIu32 ", GPA 0x%" PRIx64 ", %" PRIu64 " bytes, flags 0x%" PRIx32 ")",
                                 slot, gpa, size, flags);
        return 0;
}

int vmm_setup(Vmm *v, const GuestProgram *program, uint8_t *view_map, size_t view_size, bool readonly_slot,
              uint32_t eax, uint32_t ecx) {
        struct kvm_sregs sregs;
        struct kvm_regs regs;
        int r, mmap_size;

        if (program->size > CODE_SIZE)
                return log_error(-E2BIG, "guest program of %zu bytes does not fit %d", program->size, CODE_SIZE);
        v->code = mmap(NULL, CODE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (v->code == MAP_FAILED)
                return log_errno("mmap() of the code slot failed");
        memcpy(v->code, program->code, program->size);
        r = vmm_set_slot(v, SLOT_CODE, 0, CODE_GPA, CODE_SIZE, v->code);
        if (r < 0)
                return r;

        if (view_map) {
                uint32_t flags = 0;

                if (readonly_slot) {
                        if (!v->readonly_mem)
                                return log_error(-EOPNOTSUPP,
                                                 "KVM_MEM_READONLY wanted but KVM lacks KVM_CAP_READONLY_MEM");
                        flags |= KVM_MEM_READONLY;
                }
                r = vmm_set_slot(v, SLOT_DATA, flags, DATA_GPA, view_size, view_map);
                if (r < 0)
                        return r;
                printf("slot: view at GPA 0x%" PRIx64 ", %zu bytes, flags=%s\n", DATA_GPA, view_size,
                       flags & KVM_MEM_READONLY ? "KVM_MEM_READONLY" : "0");
        }

        mmap_size = KVM_IOCTL(v->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
        if (mmap_size < 0)
                return mmap_size;
        if ((size_t) mmap_size < sizeof(struct kvm_run))
                return log_error(-EPROTO, "KVM_GET_VCPU_MMAP_SIZE returned %d, less than struct kvm_run", mmap_size);
        v->vcpu_fd = KVM_IOCTL(v->vm_fd, KVM_CREATE_VCPU, 0);
        if (v->vcpu_fd < 0)
                return v->vcpu_fd;
        v->run_size = (size_t) mmap_size;
        v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->vcpu_fd, 0);
        if (v->run == MAP_FAILED)
                return log_errno("mmap() of the vCPU's struct kvm_run failed");

        r = KVM_IOCTL(v->vcpu_fd, KVM_GET_SREGS, &sregs);
        if (r < 0)
                return r;
        sregs.cs.base = CODE_GPA;
        sregs.cs.selector = CODE_GPA >> 4;
        sregs.ds.base = sregs.ss.base = sregs.fs.base = sregs.gs.base = 0;
        sregs.ds.selector = sregs.ss.selector = sregs.fs.selector = sregs.gs.selector = 0;
        sregs.es.base = DATA_GPA;
        sregs.es.selector = DATA_SEGMENT;
        r = KVM_IOCTL(v->vcpu_fd, KVM_SET_SREGS, &sregs);
        if (r < 0)
                return r;

        regs = (struct kvm_regs) {
                .rip = 0,
                .rflags = 0x2,          /* bit 1 is always set; interrupts off */
                .rax = eax,
                .rcx = ecx,
                .rdi = 0,
                .rsi = 0,
        };
        return KVM_IOCTL(v->vcpu_fd, KVM_SET_REGS, &regs);
}

void guest_run_done(GuestRun *g) {
        free(g->words);
        g->words = NULL;
}

/*
 * Inside KVM_RUN the signal makes it return EINTR; outside, immediate_exit
 * makes the next KVM_RUN return EINTR at once, so the alarm is never lost.
 */
static void on_alarm(int sig) {
        struct kvm_run *run = alarm_run;

        timed_out = 1;
        if (run)
                run->immediate_exit = 1;
}

static uint64_t vcpu_rip(Vmm *v) {
        struct kvm_regs regs;

        if (ioctl(v->vcpu_fd, KVM_GET_REGS, &regs) < 0)
                return UINT64_MAX;
        return regs.rip;
}

static int handle_out(Vmm *v, GuestRun *g) {
        struct kvm_run *run = v->run;
        uint8_t size = run->io.size;
        const uint8_t *data;

        if (run->io.direction != KVM_EXIT_IO_OUT)
                return log_error(-EPROTO, "the guest read from I/O port 0x%x, which nothing serves (rip 0x%" PRIx64 ")",
                                 run->io.port, vcpu_rip(v));
        if (size != 1 && size != 2 && size != 4)
                return log_error(-EPROTO, "I/O exit with an access size of %u bytes", size);
        if (run->io.data_offset > v->run_size || (uint64_t) size * run->io.count > v->run_size - run->io.data_offset)
                return log_error(-EPROTO, "I/O exit data (offset %llu, %u x %u bytes) lies outside struct kvm_run",
                                 (unsigned long long) run->io.data_offset, run->io.count, size);
        data = (const uint8_t *) run + run->io.data_offset;

        for (uint32_t i = 0; i < run->io.count; i++, data += size) {
                uint32_t value = size == 4 ? load_le32(data) :
                                 size == 2 ? (uint32_t) (data[0] | data[1] << 8) : data[0];

                switch (run->io.port) {
                case PORT_WORD:
                        if (size != 4)
                                return log_error(-EPROTO, "the guest wrote %u bytes to the word port; words are 4",
                                                 size);
                        if (g->n_words >= g->max_words)
                                return log_error(-EPROTO, "the guest reported more than the %zu words asked for",
                                                 g->max_words);
                        g->words[g->n_words++] = value;
                        break;
                case PORT_SUM:
                        if (size != 4)
                                return log_error(-EPROTO, "the guest wrote %u bytes to the checksum port; it is 4",
                                                 size);
                        g->have_sum = true;
                        g->sum = value;
                        break;
                case PORT_DONE:
                        if (value != DONE_MAGIC)
                                return log_error(-EPROTO, "the guest reported done with 0x%x, not 0x%x", value,
                                                 DONE_MAGIC);
                        g->done = true;
                        break;
                default:
                        return log_error(-EPROTO, "the guest wrote 0x%x to I/O port 0x%x, which nothing serves",
                                         value, run->io.port);
                }
        }
        return 0;
}

int vmm_run(Vmm *v, GuestRun *g, bool allow_write_faults) {
        /* Every exit the programs make, with room; a runaway guest ends here. */
        unsigned long max_exits = g->max_words + 64;
        struct sigaction sa = { .sa_handler = on_alarm };       /* no SA_RESTART: KVM_RUN returns EINTR */
        struct kvm_run *run = v->run;
        int r = 0;

        if (sigaction(SIGALRM, &sa, NULL) < 0)
                return log_errno("sigaction(SIGALRM) failed");
        timed_out = 0;
        run->immediate_exit = 0;
        alarm_run = run;
        alarm(arg_timeout);

        for (;;) {
                if (ioctl(v->vcpu_fd, KVM_RUN, 0) < 0) {
                        int e = errno;

                        if (e == EINTR && timed_out) {
                                r = log_error(-ETIMEDOUT,
                                              "the guest did not finish within %u s (rip 0x%" PRIx64 ", %lu exits)",
                                              arg_timeout, vcpu_rip(v), v->exits);
                                break;
                        }
                        if (e == EINTR || e == EAGAIN)
                                continue;
                        if (allow_write_faults) {
                                g->run_error = -e;
                                g->error_exit_reason = run->exit_reason;
                                g->error_rip = vcpu_rip(v);
                                break;
                        }
                        r = log_error(-e, "ioctl KVM_RUN failed: %s (exit_reason %u %s, rip 0x%" PRIx64 ")",
                                      ERRNO_TEXT(e), run->exit_reason, exit_reason_name(run->exit_reason), vcpu_rip(v));
                        break;
                }
                if (++v->exits > max_exits) {
                        r = log_error(-ELOOP, "the guest made more than %lu exits; stopped (rip 0x%" PRIx64 ")",
                                      max_exits, vcpu_rip(v));
                        break;
                }

                switch (run->exit_reason) {
                case KVM_EXIT_IO:
                        r = handle_out(v, g);
                        break;
                case KVM_EXIT_HLT:
                        g->halted = true;
                        break;
                case KVM_EXIT_MMIO:
                        if (!run->mmio.is_write || !allow_write_faults) {
                                r = log_error(-EPROTO,
                                              "unexpected KVM_EXIT_MMIO: %s of %u bytes at GPA 0x%llx (rip 0x%" PRIx64 ")",
                                              run->mmio.is_write ? "write" : "read", run->mmio.len,
                                              (unsigned long long) run->mmio.phys_addr, vcpu_rip(v));
                                break;
                        }
                        /* Dropped, as a ROM drops it; the next KVM_RUN completes the instruction. */
                        if (g->mmio_writes++ == 0) {
                                g->mmio_gpa = run->mmio.phys_addr;
                                g->mmio_len = run->mmio.len;
                                memcpy(g->mmio_data, run->mmio.data, sizeof g->mmio_data);
                        }
                        break;
                case KVM_EXIT_FAIL_ENTRY:
                        r = log_error(-EIO, "KVM_EXIT_FAIL_ENTRY: hardware entry failure reason 0x%llx",
                                      (unsigned long long) run->fail_entry.hardware_entry_failure_reason);
                        break;
                case KVM_EXIT_INTERNAL_ERROR:
                        r = log_error(-EIO, "KVM_EXIT_INTERNAL_ERROR: suberror %u (rip 0x%" PRIx64 ")",
                                      run->internal.suberror, vcpu_rip(v));
                        break;
                default:
                        r = log_error(-EIO, "unexpected exit %u (%s) at rip 0x%" PRIx64, run->exit_reason,
                                      exit_reason_name(run->exit_reason), vcpu_rip(v));
                        break;
                }
                if (r < 0 || g->halted)
                        break;
        }
        alarm(0);
        alarm_run = NULL;
        if (r < 0)
                return r;
        if (g->run_error == 0 && !g->done)
                return log_error(-EPROTO, "the guest halted without reporting done (rip 0x%" PRIx64 ")", vcpu_rip(v));
        return 0;
}

int vmm_set_loop_regs(Vmm *v, uint32_t ebp, uint32_t edx) {
        struct kvm_regs regs;
        int r;

        r = KVM_IOCTL(v->vcpu_fd, KVM_GET_REGS, &regs);
        if (r < 0)
                return r;
        regs.rbp = ebp;
        regs.rdx = edx;
        return KVM_IOCTL(v->vcpu_fd, KVM_SET_REGS, &regs);
}

int vmm_run_round(Vmm *v, const volatile sig_atomic_t *stop, uint32_t *ret_sum, RunFault *ret_fault) {
        GuestRun g = {};
        struct kvm_run *run = v->run;
        int r;

        for (;;) {
                if (*stop)
                        return -EINTR;
                run->exit_reason = EXIT_REASON_UNSET;
                if (ioctl(v->vcpu_fd, KVM_RUN, 0) < 0) {
                        int e = errno;

                        if (e == EINTR || e == EAGAIN)
                                continue;
                        *ret_fault = (RunFault) {
                                .error = -e,
                                .exit_reason = run->exit_reason,
                                .rip = vcpu_rip(v),
                        };
                        if (run->exit_reason == KVM_EXIT_MEMORY_FAULT) {
                                /* struct kvm_run's memory_fault (flags, gpa, size), not in older headers. */
                                const uint64_t *mf = (const uint64_t *) (const void *) &run->mmio;

                                ret_fault->mf_flags = mf[0];
                                ret_fault->mf_gpa = mf[1];
                                ret_fault->mf_size = mf[2];
                        }
                        return 0;
                }
                v->exits++;

                switch (run->exit_reason) {
                case KVM_EXIT_IO:
                        r = handle_out(v, &g);
                        if (r < 0)
                                return r;
                        if (g.done)
                                return log_error(-EPROTO, "the loop program reported done; it never should");
                        if (g.have_sum) {
                                *ret_sum = g.sum;
                                return 1;
                        }
                        break;
                case KVM_EXIT_HLT:
                        return log_error(-EPROTO, "the loop program halted (rip 0x%" PRIx64 ")", vcpu_rip(v));
                case KVM_EXIT_MMIO:
                        return log_error(-EPROTO, "unexpected KVM_EXIT_MMIO: %s of %u bytes at GPA 0x%llx (rip 0x%" PRIx64 ")",
                                         run->mmio.is_write ? "write" : "read", run->mmio.len,
                                         (unsigned long long) run->mmio.phys_addr, vcpu_rip(v));
                default:
                        return log_error(-EIO, "unexpected exit %u (%s) at rip 0x%" PRIx64, run->exit_reason,
                                         exit_reason_name(run->exit_reason), vcpu_rip(v));
                }
        }
}
