/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * loop-mode.c — tiny-vmm's loop mode (loop-mode.h): a VM that keeps
 * running, to watch what KVM does when its memory is taken away under it.
 *
 * The guest (guest_loop in guest-code.c), optionally after writing the
 * pattern of --seed, sums the first --length bytes of the view and reports
 * the sum on PORT_SUM, over and over: one exit a round. The VMM lets it run
 * one round every --interval ms and checks each sum against the pattern's
 * (when the guest wrote it or --expect-pattern says it is there) or against
 * the first round's. Unlike the other modes, a failing KVM_RUN does not end
 * the run: the VMM says how it failed (errno, what KVM put in
 * kvm_run.exit_reason, which it sets to EXIT_REASON_UNSET before each call,
 * and rip) and tries again every --interval ms, so it also sees access come
 * back (a page made shared again, a pending view activated). A VMM that
 * touched a revoked mapping itself would get SIGBUS; this one does not touch
 * the view, and says so if it gets one anyway.
 *
 * Output, one line per event, for scripts:
 *
 *   round: N sum=0x... ok               each round that completed
 *   loop-state: running                 the first round, and after a fault
 *   loop-state: faulting ERRNO exit_reason=NAME|unset
 *   fault: ...                          the same in words, once per change
 *   resumed: ...                        KVM_RUN works again
 *   stopped: ...                        SIGTERM, SIGINT or --timeout
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "guest-code.h"
#include "kvm-vm.h"
#include "loop-mode.h"
#include "macro.h"
#include "tiny-vmm.h"
#include "view-modes.h"

static volatile sig_atomic_t stop_signal = 0;
static struct kvm_run *volatile stop_run = NULL;

static void on_stop(int sig) {
        struct kvm_run *run = stop_run;

        stop_signal = sig;
        if (run)
                run->immediate_exit = 1;
}

/* Async-signal-safe: a fixed text and the address in hex. */
static void on_sigbus(int sig, siginfo_t *si, void *ctx) {
        static const char msg[] = "sigbus: the VMM got SIGBUS at address 0x";
        char hex[17];
        uintptr_t a = (uintptr_t) si->si_addr;

        for (int i = 15; i >= 0; i--, a >>= 4)
                hex[i] = "0123456789abcdef"[a & 0xf];
        hex[16] = '\n';
        (void) !write(STDOUT_FILENO, msg, sizeof msg - 1);
        (void) !write(STDOUT_FILENO, hex, sizeof hex);
        _exit(1);
}

static uint64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000 };

        (void) nanosleep(&ts, NULL);    /* a stop signal cuts it short */
}

static const char *exit_reason_text(uint32_t reason, char *buf, size_t n) {
        if (reason == EXIT_REASON_UNSET)
                return "unset";
        snprintf(buf, n, "%s", exit_reason_name(reason));
        return buf;
}

static void print_fault(const RunFault *f, unsigned long round) {
        char reason[32];

        printf("fault: after round %lu KVM_RUN failed with %s; kvm_run.exit_reason %s", round, ERRNO_TEXT(-f->error),
               f->exit_reason == EXIT_REASON_UNSET ? "untouched by KVM" : exit_reason_name(f->exit_reason));
        if (f->exit_reason != EXIT_REASON_UNSET)
                printf(" (%" PRIu32 ")", f->exit_reason);
        if (f->exit_reason == KVM_EXIT_MEMORY_FAULT)
                printf(", memory_fault flags=0x%" PRIx64 " gpa=0x%" PRIx64 " size=0x%" PRIx64, f->mf_flags, f->mf_gpa,
                       f->mf_size);
        printf(", rip 0x%" PRIx64 "; trying again every %u ms\n", f->rip, arg_interval);
        printf("loop-state: faulting %s exit_reason=%s\n", strerrorname_np(-f->error) ?: "E?",
               exit_reason_text(f->exit_reason, reason, sizeof reason));
}

static uint32_t pattern_sum(uint64_t length, uint32_t seed) {
        uint32_t sum = 0, x = seed;

        for (uint64_t i = 0; i < length / 4; i++, x = pattern_next(x))
                sum = checksum_add(sum, x);
        return sum;
}

int mode_loop(Vmm *v, const View *view) {
        struct sigaction stop = { .sa_handler = on_stop };      /* no SA_RESTART: KVM_RUN returns EINTR */
        struct sigaction bus = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO };
        bool write_first = arg_write_pattern, know_sum = arg_write_pattern || arg_expect_pattern;
        uint32_t want = know_sum ? pattern_sum(arg_length, arg_seed) : 0;
        unsigned long round = 0, failed = 0, failed_now = 0;
        RunFault last = { .error = 0 };
        uint64_t fault_since = 0;
        bool running = false;
        const char *why;
        int r;

        if (write_first && !view->writable)
                return log_error(-EACCES, "--write-pattern needs a read-write view");
        r = vmm_setup(v, &guest_loop, view->map, view->size, !view->writable && v->readonly_mem, arg_seed, 0);
        if (r < 0)
                return r;
        r = vmm_set_loop_regs(v, (uint32_t) (arg_length / 4), write_first ? 1 : 0);
        if (r < 0)
                return r;

        stop_run = v->run;
        if (sigaction(SIGTERM, &stop, NULL) < 0 || sigaction(SIGINT, &stop, NULL) < 0 ||
            sigaction(SIGALRM, &stop, NULL) < 0 || sigaction(SIGBUS, &bus, NULL) < 0)
                return log_errno("sigaction() failed");
        alarm(arg_timeout);

        printf("loop: pid %ld; the guest %s sums %" PRIu64 " words of the view every round, one round every %u ms; "
               "sums are checked against %s\n",
               (long) getpid(), write_first ? "writes the pattern of --seed, then" : "", arg_length / 4, arg_interval,
               know_sum ? "the pattern's" : "the first round's");

        for (;;) {
                RunFault f = {};
                uint32_t sum = 0;

                r = vmm_run_round(v, &stop_signal, &sum, &f);
                if (r == -EINTR)
                        break;
                if (r < 0)
                        return r;
                if (r == 0) {
                        failed++;
                        running = false;
                        if (failed_now++ == 0)
                                fault_since = now_ms();
                        if (f.error != last.error || f.exit_reason != last.exit_reason)
                                print_fault(&f, round);
                        last = f;
                        sleep_ms(arg_interval);
                        continue;
                }

                round++;
                if (!know_sum) {
                        want = sum;
                        know_sum = true;
                }
                if (sum != want) {
                        printf("round: %lu sum=0x%08" PRIx32 " WRONG\n", round, sum);
                        return log_error(-EBADMSG, "round %lu: the guest's sum is 0x%08" PRIx32 ", not 0x%08" PRIx32,
                                         round, sum, want);
                }
                if (failed_now > 0) {
                        printf("resumed: round %lu completed after %lu failed KVM_RUN calls over %" PRIu64 " ms; "
                               "the guest went on from where it stopped\n",
                               round, failed_now, now_ms() - fault_since);
                        failed_now = 0;
                        last = (RunFault) { .error = 0 };
                }
                printf("round: %lu sum=0x%08" PRIx32 " ok\n", round, sum);
                if (!running) {
                        printf("loop-state: running\n");
                        running = true;
                }
                sleep_ms(arg_interval);
        }

        alarm(0);
        stop_run = NULL;
        why = stop_signal == SIGALRM ? "--timeout" : strsignal(stop_signal);
        printf("stopped: by %s after %lu rounds and %lu failed KVM_RUN calls; %s\n", why, round, failed,
               failed_now > 0 ? "the guest was faulting" : "the guest was running");
        return 0;
}
