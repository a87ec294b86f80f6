/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * view-modes.c — the modes on a gmemd view (view-modes.h). The view's fd
 * comes from gmemd through libgmem (Attach, or GetFd for a view that
 * exists) and is mapped MAP_SHARED, writable only for "rw"; the mapping is
 * the guest's RAM in slot 1 (kvm-vm.h), in a KVM_MEM_READONLY slot when the
 * view is read-only and KVM has it. After the guest's run the VMM checks
 * through its own mapping what the guest did or did not do to the memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "guest-code.h"
#include "kvm-vm.h"
#include "libgmem.h"
#include "macro.h"
#include "tiny-vmm.h"
#include "view-modes.h"

void view_done(View *v) {
        if (v->map != MAP_FAILED)
                (void) munmap(v->map, v->size);
        v->map = MAP_FAILED;
        v->fd = safe_close(v->fd);
}

static int log_gmem_error(GmemClient *c, int r, const char *what) {
        const char *message = c ? gmem_client_last_error_message(c) : NULL;
        const char *name = c ? gmem_client_last_error_name(c) : NULL;

        if (!isempty(message))
                return log_error(r, "%s: %s%s%s%s", what, message, name ? " (" : "", name ?: "",
                                 name ? ")" : "");
        return log_error(r, "%s: %s", what, ERRNO_TEXT(-r));
}

int view_open(GmemClient *c, const char *vm, const char *region, GmemAccess access,
              bool get_fd, View *ret) {
        _cleanup_close_ int fd = -EBADF;
        char what[256];
        struct stat st;
        int r, flags;
        void *p;

        if (get_fd) {
                snprintf(what, sizeof what, "GetFd('%s', '%s')", vm, region);
                r = gmem_get_fd(c, vm, region, &fd);
        } else {
                snprintf(what, sizeof what, "Attach('%s', '%s', '%s')", vm, region,
                         gmem_access_to_string(access));
                r = gmem_attach(c, vm, region, access, 0, 0, false, &fd);
        }
        if (r < 0)
                return log_gmem_error(c, r, what);

        if (fstat(fd, &st) < 0)
                return log_errno("fstat() of the view of '%s' failed", region);
        if (st.st_size <= 0 || (uint64_t) st.st_size > SIZE_MAX || st.st_size % 4096 != 0)
                return log_error(-EINVAL, "the view of '%s' has an unusable size: %jd bytes", region,
                                 (intmax_t) st.st_size);
        flags = fcntl(fd, F_GETFL);
        if (flags < 0)
                return log_errno("fcntl(F_GETFL) of the view failed");
        if (access == GMEM_ACCESS_RW && (flags & O_ACCMODE) != O_RDWR)
                return log_error(-EACCES, "%s gave a read-only file; this mode needs a read-write view",
                                 what);

        p = mmap(NULL, (size_t) st.st_size, access == GMEM_ACCESS_RW ? PROT_READ | PROT_WRITE : PROT_READ,
                 MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
                return log_errno("mmap() of the view of '%s' (%jd bytes, %s) failed", region,
                                 (intmax_t) st.st_size, gmem_access_to_string(access));

        *ret = (View) {
                .fd = TAKE_FD(fd),
                .map = p,
                .size = (size_t) st.st_size,
                .writable = access == GMEM_ACCESS_RW,
                .inode = st.st_ino,
        };
        printf("view: vm=%s region=%s access=%s size=%zu inode=%ju call=%s\n", vm, region,
               gmem_access_to_string(access), ret->size, (uintmax_t) st.st_ino,
               get_fd ? "GetFd" : "Attach");
        return 0;
}

int view_from_fd(int fd, const char *vm, const char *region, View *ret) {
        struct stat st;
        bool writable;
        int flags;
        void *p;

        if (fstat(fd, &st) < 0)
                return log_errno("fstat() of fd %d (--fd) failed", fd);
        if (!S_ISREG(st.st_mode) || st.st_size <= 0 || (uint64_t) st.st_size > SIZE_MAX || st.st_size % 4096 != 0)
                return log_error(-EINVAL, "fd %d is not a view: mode 0%o, %jd bytes", fd, (unsigned) st.st_mode,
                                 (intmax_t) st.st_size);
        flags = fcntl(fd, F_GETFL);
        if (flags < 0)
                return log_errno("fcntl(F_GETFL) of fd %d failed", fd);
        writable = (flags & O_ACCMODE) == O_RDWR;

        p = mmap(NULL, (size_t) st.st_size, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
                return log_errno("mmap() of fd %d (%jd bytes) failed", fd, (intmax_t) st.st_size);
        (void) fcntl(fd, F_SETFD, FD_CLOEXEC);

        *ret = (View) {
                .fd = fd,
                .map = p,
                .size = (size_t) st.st_size,
                .writable = writable,
                .inode = st.st_ino,
        };
        printf("view: vm=%s region=%s access=%s size=%zu inode=%ju call=inherited fd %d\n", vm, region,
               writable ? "rw" : "ro", ret->size, (uintmax_t) st.st_ino, fd);
        return 0;
}

/* ---- the modes -------------------------------------------------------------- */

/* A read-only view goes into a KVM_MEM_READONLY slot when KVM has it, unless --no-readonly-mem. */
static bool readonly_slot(const Vmm *v, const View *view) {
        return !view->writable && v->readonly_mem && !arg_no_readonly_mem;
}

/* Index of the first word of [map, map + length) that is not the pattern of seed, or -1. */
static ssize_t pattern_mismatch(const uint8_t *map, uint64_t length, uint32_t seed, uint32_t *ret_got,
                                uint32_t *ret_want) {
        uint32_t x = seed;

        for (uint64_t i = 0; i < length / 4; i++, x = pattern_next(x)) {
                uint32_t w = load_le32(map + 4 * i);

                if (w != x) {
                        *ret_got = w;
                        *ret_want = x;
                        return (ssize_t) i;
                }
        }
        return -1;
}

int check_pattern(const View *view, const char *through) {
        uint32_t got, want;
        ssize_t i;

        i = pattern_mismatch(view->map, arg_length, arg_seed, &got, &want);
        if (i >= 0)
                return log_error(-EBADMSG, "%s: word %zd (byte %zd) is 0x%08" PRIx32 ", the pattern of seed 0x%" PRIx32
                                 " has 0x%08" PRIx32 " there", through, i, 4 * i, got, arg_seed, want);
        printf("host-check: %s holds the pattern of seed 0x%" PRIx32 " over %" PRIu64 " bytes\n", through, arg_seed,
               arg_length);
        return 0;
}

int mode_write(Vmm *v, const View *view) {
        _cleanup_(guest_run_done) GuestRun g = {};
        int r;

        r = vmm_setup(v, &guest_write, view->map, view->size, readonly_slot(v, view), arg_seed,
                      (uint32_t) (arg_length / 4));
        if (r < 0)
                return r;
        r = vmm_run(v, &g, false);
        if (r < 0)
                return r;
        printf("guest: wrote %" PRIu64 " words of the pattern of seed 0x%" PRIx32 " (%lu exits)\n", arg_length / 4,
               arg_seed, v->exits);
        return check_pattern(view, "the VMM's mapping of the view");
}

int mode_read(Vmm *v, const View *view) {
        _cleanup_(guest_run_done) GuestRun g = { .max_words = arg_length / 4 };
        uint32_t sum_words = 0, sum_view = 0, x = arg_seed;
        int r;

        g.words = calloc(g.max_words, sizeof(uint32_t));
        if (!g.words)
                return log_error(-ENOMEM, "out of memory for %zu words", g.max_words);

        r = vmm_setup(v, &guest_read, view->map, view->size, readonly_slot(v, view), 0,
                      (uint32_t) g.max_words);
        if (r < 0)
                return r;
        r = vmm_run(v, &g, false);
        if (r < 0)
                return r;
        if (g.n_words != g.max_words || !g.have_sum)
                return log_error(-EPROTO, "the guest reported %zu of %zu words%s", g.n_words, g.max_words,
                                 g.have_sum ? "" : " and no checksum");

        for (size_t i = 0; i < g.n_words; i++) {
                if (arg_print_words)
                        printf("word %zu 0x%08" PRIx32 "\n", i, g.words[i]);
                sum_words = checksum_add(sum_words, g.words[i]);
                sum_view = checksum_add(sum_view, load_le32(view->map + 4 * i));
        }
        printf("guest: read %zu words (%lu exits)\n", g.n_words, v->exits);
        printf("checksum: guest=0x%08" PRIx32 " words=0x%08" PRIx32 " view=0x%08" PRIx32 "\n", g.sum, sum_words,
               sum_view);
        if (g.sum != sum_words)
                return log_error(-EBADMSG,
                                 "the guest's checksum 0x%08" PRIx32 " is not that of the words it reported (0x%08"
                                 PRIx32 ")",
                                 g.sum, sum_words);

        for (size_t i = 0; i < g.n_words; i++) {
                uint32_t w = load_le32(view->map + 4 * i);

                if (g.words[i] != w)
                        return log_error(-EBADMSG,
                                         "the guest read 0x%08" PRIx32 " at word %zu, the VMM's mapping holds 0x%08" PRIx32,
                                         g.words[i], i, w);
        }
        printf("host-check: the guest read what the VMM's mapping holds (%zu words)\n", g.n_words);

        if (arg_expect_pattern) {
                for (size_t i = 0; i < g.n_words; i++, x = pattern_next(x))
                        if (g.words[i] != x)
                                return log_error(-EBADMSG,
                                                 "the guest read 0x%08" PRIx32 " at word %zu, the pattern of seed 0x%"
                                                 PRIx32 " has 0x%08" PRIx32, g.words[i], i, arg_seed, x);
                printf("pattern: the guest read the pattern of seed 0x%" PRIx32 " (%zu words)\n", arg_seed, g.n_words);
        }
        return 0;
}

static int compare_snapshot(const uint8_t *snapshot, const uint8_t *now, uint64_t length, const char *through) {
        for (uint64_t i = 0; i < length; i++)
                if (snapshot[i] != now[i])
                        return log_error(-EBADMSG, "memory changed: byte %" PRIu64 " is 0x%02x through %s, was 0x%02x",
                                         i, now[i], through, snapshot[i]);
        printf("host-check: unchanged through %s (%" PRIu64 " bytes)\n", through, length);
        return 0;
}

int mode_write_attempt(Vmm *v, GmemClient *c, const char *region, const View *view) {
        _cleanup_(guest_run_done) GuestRun g = {};
        _cleanup_free_ uint8_t *snapshot = NULL;
        bool readonly = readonly_slot(v, view);
        uint32_t value;
        int r;

        if (view->writable)
                return log_error(-EINVAL, "write-attempt wants a read-only view (--access=ro)");

        snapshot = malloc(arg_length);
        if (!snapshot)
                return log_error(-ENOMEM, "out of memory for a %" PRIu64 "-byte snapshot", arg_length);
        memcpy(snapshot, view->map, arg_length);
        value = ~load_le32(snapshot);

        r = vmm_setup(v, &guest_write_attempt, view->map, view->size, readonly, value, 0);
        if (r < 0)
                return r;
        r = vmm_run(v, &g, true);
        if (r < 0)
                return r;

        printf("write-attempt: the guest stored 0x%08" PRIx32 " at GPA 0x%" PRIx64 " (the view holds 0x%08" PRIx32
               " there), slot flags %s\n",
               value, DATA_GPA, load_le32(snapshot), readonly ? "KVM_MEM_READONLY" : "0");
        if (g.mmio_writes > 0) {
                printf("write-attempt: KVM exited with KVM_EXIT_MMIO is_write=1 gpa=0x%" PRIx64 " len=%" PRIu32
                       " data=0x%08" PRIx32 " (%u such exits); the VMM dropped the write and the guest went on to %s\n",
                       g.mmio_gpa, g.mmio_len, load_le32(g.mmio_data), g.mmio_writes,
                       g.done ? "report done and halt" : "halt without reporting done");
                printf("write-attempt-outcome: mmio\n");
        } else if (g.run_error < 0) {
                printf("write-attempt: ioctl KVM_RUN failed with %s; kvm_run exit_reason %u (%s), rip 0x%" PRIx64,
                       ERRNO_TEXT(-g.run_error), g.error_exit_reason, exit_reason_name(g.error_exit_reason),
                       g.error_rip);
                if (g.error_exit_reason == KVM_EXIT_MEMORY_FAULT) {
                        /* struct kvm_run's memory_fault (flags, gpa, size), not in older headers. */
                        const uint64_t *mf = (const uint64_t *) (const void *) &v->run->mmio;

                        printf(", memory_fault flags=0x%" PRIx64 " gpa=0x%" PRIx64 " size=0x%" PRIx64, mf[0], mf[1],
                               mf[2]);
                }
                printf("; the guest cannot go on\n");
                printf("write-attempt-outcome: %s\n", g.run_error == -EFAULT ? "efault" : "run-error");
        } else {
                printf("write-attempt: KVM let the write through without an exit\n");
                printf("write-attempt-outcome: no-exit\n");
        }

        r = compare_snapshot(snapshot, view->map, arg_length, "the VMM's read-only mapping of the view");
        if (r < 0)
                return r;

        if (arg_check_vm) {
                _cleanup_(view_done) View other = VIEW_NULL;

                r = view_open(c, arg_check_vm, region, GMEM_ACCESS_RW, false, &other);
                if (r < 0)
                        return r;
                if (other.inode != view->inode)
                        return log_error(-EBADMSG,
                                         "VM '%s''s view is inode %ju, this VM's is inode %ju: not the same memory",
                                         arg_check_vm, (uintmax_t) other.inode, (uintmax_t) view->inode);
                r = compare_snapshot(snapshot, other.map, arg_length, "another VM's read-write view of the same inode");
                if (r < 0)
                        return r;
        }
        return 0;
}
