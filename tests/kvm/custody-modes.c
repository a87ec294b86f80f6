/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * custody-modes.c — gmemd keeping a guest_memfd for a hypervisor
 * (custody-modes.h).
 *
 * custody-put is a hypervisor that ends: it creates a VM and a guest_memfd
 * with GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED (Linux 6.18 and
 * later), binds it to the data slot with KVM_SET_USER_MEMORY_REGION2
 * (KVM_MEM_GUEST_MEMFD, its own mapping as userspace_addr), runs guest
 * code that writes the pattern, checks the pattern through its mapping,
 * hands the guest_memfd to gmemd with AdoptRegion (gmem_adopt_region) and
 * exits: its VM goes, the memory stays with gmemd.
 *
 * custody-get is the next hypervisor process: it takes the same file from
 * gmemd (Attach, or GetFd with --get-fd), finds the pattern through a
 * shared mapping, then gives that mapping to a VM of its own as the
 * userspace_addr of an ordinary slot and runs guest code that reads the
 * pattern back. Then it tries to bind the file itself to its new VM with
 * KVM_SET_USER_MEMORY_REGION2: KVM refuses a guest_memfd made for another
 * VM (kvm_gmem_bind: EINVAL), which is printed as "bind-outcome: EINVAL".
 * Last, Discard through gmemd punches the whole file and the range reads
 * zeros through the mapping.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "custody-modes.h"
#include "gmem-abi.h"
#include "guest-code.h"
#include "macro.h"
#include "tiny-vmm.h"
#include "view-modes.h"

#define CUSTODY_SIZE (UINT64_C(2) * 1024 * 1024)
/* Where custody-get tries to bind the file: above the data slot (DATA_GPA + CUSTODY_SIZE). */
#define CUSTODY_BIND_SLOT 2
#define CUSTODY_BIND_GPA UINT64_C(0x400000)
#define CUSTODY_FLAGS (GMEM_FLAG_MMAP | GMEM_FLAG_INIT_SHARED)
#define GUEST_MEMFD_FS_MAGIC 0x474d454dUL       /* "GMEM", Linux 6.19 and later */

static int log_client_error(GmemClient *c, int r, const char *what) {
        const char *message = gmem_client_last_error_message(c);
        const char *name = gmem_client_last_error_name(c);

        if (!isempty(message))
                return log_error(r, "%s: %s (%s)", what, message, name ?: "?");
        return log_error(r, "%s: %s", what, ERRNO_TEXT(-r));
}

/* 0 if KVM makes guest_memfds with MMAP|INIT_SHARED and has KVM_SET_USER_MEMORY_REGION2; -EOPNOTSUPP (printed) if not. */
static int custody_supported(Vmm *v) {
        int flags, region2;

        flags = ioctl(v->vm_fd, KVM_CHECK_EXTENSION, GMEM_CAP_GUEST_MEMFD_FLAGS);
        region2 = ioctl(v->vm_fd, KVM_CHECK_EXTENSION, GMEM_CAP_USER_MEMORY2);
        printf("custody: KVM_CAP_GUEST_MEMFD_FLAGS=%d KVM_CAP_USER_MEMORY2=%d (default VM)\n", flags, region2);
        if (flags < 0 || ((uint64_t) flags & CUSTODY_FLAGS) != CUSTODY_FLAGS)
                return log_error(-EOPNOTSUPP, "KVM makes no guest_memfd with GUEST_MEMFD_FLAG_MMAP|"
                                 "GUEST_MEMFD_FLAG_INIT_SHARED here (KVM_CAP_GUEST_MEMFD_FLAGS is %d; Linux 6.18 "
                                 "and later have both)", flags);
        if (region2 <= 0)
                return log_error(-EOPNOTSUPP, "KVM lacks KVM_SET_USER_MEMORY_REGION2 (KVM_CAP_USER_MEMORY2 is %d)",
                                 region2);
        return 0;
}

int mode_probe_custody(Vmm *v) {
        if (vmm_open(v) < 0)
                return EXIT_SKIP;
        return custody_supported(v) < 0 ? EXIT_SKIP : EXIT_SUCCESS;
}

/* What the kernel says the file is: its filesystem's magic and its /proc/self/fd name. */
static void print_file(const char *who, int fd) {
        char path[64], link[256];
        struct statfs sfs;
        struct stat st;
        ssize_t n;

        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        n = readlink(path, link, sizeof link - 1);
        link[n < 0 ? 0 : n] = '\0';
        if (fstatfs(fd, &sfs) < 0 || fstat(fd, &st) < 0) {
                printf("%s: fd %d: fstat/fstatfs failed: %s\n", who, fd, ERRNO_TEXT(errno));
                return;
        }
        printf("%s: fd %d link='%s' f_type=%#lx%s st_size=%jd st_ino=%ju\n", who, fd, link,
               (unsigned long) sfs.f_type, (unsigned long) sfs.f_type == GUEST_MEMFD_FS_MAGIC ? " (GUEST_MEMFD_MAGIC)" : "",
               (intmax_t) st.st_size, (uintmax_t) st.st_ino);
}

static int bind_gmem(Vmm *v, uint32_t slot, uint64_t gpa, uint64_t size, void *hva, int fd) {
        GmemRegion2 region = {
                .slot = slot,
                .flags = GMEM_KVM_MEM_GUEST_MEMFD,
                .guest_phys_addr = gpa,
                .memory_size = size,
                .userspace_addr = (uintptr_t) hva,
                .guest_memfd_offset = 0,
                .guest_memfd = (uint32_t) fd,
        };

        return ioctl(v->vm_fd, GMEM_KVM_SET_USER_MEMORY_REGION2, &region) < 0 ? -errno : 0;
}

int mode_custody_put(Vmm *v, GmemClient *c, const char *region) {
        _cleanup_(guest_run_done) GuestRun g = {};
        _cleanup_(view_done) View gmem = VIEW_NULL;
        GmemCreate args = { .size = CUSTODY_SIZE, .flags = CUSTODY_FLAGS };
        _cleanup_free_ char *path = NULL;
        int r;

        if (custody_supported(v) < 0)
                return EXIT_SKIP;
        r = ioctl(v->vm_fd, GMEM_KVM_CREATE_GUEST_MEMFD, &args);
        if (r < 0)
                return log_errno("ioctl KVM_CREATE_GUEST_MEMFD (%" PRIu64 " bytes, MMAP|INIT_SHARED) failed",
                                 args.size), EXIT_FAILURE;
        gmem.fd = r;
        gmem.size = CUSTODY_SIZE;
        gmem.writable = true;
        print_file("custody-put: guest_memfd", gmem.fd);
        gmem.map = mmap(NULL, gmem.size, PROT_READ | PROT_WRITE, MAP_SHARED, gmem.fd, 0);
        if (gmem.map == MAP_FAILED)
                return log_errno("mmap() of the guest_memfd failed"), EXIT_FAILURE;

        r = vmm_setup(v, &guest_write, NULL, 0, false, arg_seed, (uint32_t) (arg_length / 4));
        if (r < 0)
                return EXIT_FAILURE;
        r = bind_gmem(v, SLOT_DATA, DATA_GPA, gmem.size, gmem.map, gmem.fd);
        if (r < 0)
                return log_error(r, "ioctl KVM_SET_USER_MEMORY_REGION2 (slot %d, KVM_MEM_GUEST_MEMFD, GPA 0x%" PRIx64
                                 ") failed: %s", SLOT_DATA, DATA_GPA, ERRNO_TEXT(-r)), EXIT_FAILURE;
        printf("slot: guest_memfd at GPA 0x%" PRIx64 ", %zu bytes, flags=KVM_MEM_GUEST_MEMFD\n", DATA_GPA, gmem.size);
        r = vmm_run(v, &g, false);
        if (r < 0)
                return EXIT_FAILURE;
        printf("guest: wrote %" PRIu64 " words of the pattern of seed 0x%" PRIx32 " (%lu exits)\n", arg_length / 4,
               arg_seed, v->exits);
        if (check_pattern(&gmem, "the VMM's mapping of the guest_memfd") < 0)
                return EXIT_FAILURE;

        r = gmem_adopt_region(c, region, gmem.fd, NULL, &path);
        if (r < 0)
                return log_client_error(c, r, "AdoptRegion"), EXIT_FAILURE;
        printf("custody-put: gmemd keeps the guest_memfd as region '%s' (%s); this VMM and its VM end now\n", region,
               path);
        return EXIT_SUCCESS;
}

/* The first length bytes of map read zero. */
static bool reads_zeros(const uint8_t *map, uint64_t length) {
        for (uint64_t i = 0; i < length; i++)
                if (map[i] != 0)
                        return false;
        return true;
}

int mode_custody_get(Vmm *v, GmemClient *c, const char *vm, const char *region, bool get_fd) {
        _cleanup_(view_done) View view = VIEW_NULL;
        int r, bind, ret = 0;

        r = view_open(c, vm, region, GMEM_ACCESS_RW, get_fd, &view);
        if (r < 0)
                return r;
        print_file("custody-get: the file gmemd handed out", view.fd);
        r = check_pattern(&view, "a new process's mapping of the guest_memfd gmemd kept");
        if (r < 0)
                return r;

        /* The mapping as an ordinary slot of a new VM: the guest reads the pattern the old VM wrote. */
        arg_expect_pattern = true;
        r = mode_read(v, &view);
        if (r < 0)
                return r;
        printf("custody-get: a new VM read the pattern through an ordinary slot on the guest_memfd's mapping\n");

        /* The file itself, bound to the new VM: a guest_memfd belongs to the VM it was made for. */
        bind = bind_gmem(v, CUSTODY_BIND_SLOT, CUSTODY_BIND_GPA, view.size, view.map, view.fd);
        printf("bind-outcome: %s\n", bind == 0 ? "bound" : strerrorname_np(-bind) ?: "E?");
        if (bind == 0)
                ret = log_error(-EBADMSG, "KVM bound a guest_memfd made for another VM to this one");
        else if (bind != -EINVAL)
                ret = log_error(bind, "KVM_SET_USER_MEMORY_REGION2 with the guest_memfd failed with %s, not EINVAL",
                                ERRNO_TEXT(-bind));
        else
                printf("custody-get: KVM refuses to bind the guest_memfd to a VM it was not made for (EINVAL)\n");

        /* Discard through gmemd punches the file: the mapping reads zeros. */
        r = gmem_discard(c, region, 0, view.size);
        if (r < 0)
                return log_client_error(c, r, "Discard");
        if (!reads_zeros(view.map, arg_length))
                return log_error(-EBADMSG, "after Discard the guest_memfd still holds data in its first %" PRIu64
                                 " bytes", arg_length);
        printf("custody-get: after Discard the first %" PRIu64 " bytes read zeros\n", arg_length);
        return ret;
}
