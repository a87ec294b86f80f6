/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * tiny-vmm.c — the smallest hypervisor that runs a guest on gmemd memory.
 *
 * It does what a real VMM does with a view, and nothing more: it gets the
 * view's file descriptor from gmemd through libgmem (Attach, or GetFd for a
 * view that exists), maps it MAP_SHARED (PROT_READ|PROT_WRITE for "rw",
 * PROT_READ for "ro") and hands the mapping to KVM as guest RAM with
 * KVM_SET_USER_MEMORY_REGION, with KVM_MEM_READONLY for a read-only view
 * when KVM has KVM_CAP_READONLY_MEM. One vCPU in real mode runs a few
 * instructions from a separate memory slot of its own anonymous memory, so
 * the view holds data only:
 *
 *   GPA 0x00000  slot 0  CODE_SIZE bytes, anonymous: the guest program
 *   GPA 0x10000  slot 1  the view, all of it; the guest reaches its first
 *                        960 KiB (real mode addresses the first 1 MiB)
 *
 * Modes (the guest programs are below, as bytes with their assembly):
 *
 *   write          the guest writes the pattern of --seed over the first
 *                  --length bytes of the view and reports done on an I/O
 *                  port; the VMM then reads its mapping and checks that the
 *                  view holds the pattern.
 *   read           the guest reads the words and reports each on an I/O
 *                  port (out dx, eax), then a checksum it computed itself;
 *                  the VMM checks both against its own mapping of the view
 *                  (and against the pattern with --expect-pattern).
 *   write-attempt  the guest stores one word (the complement of what is
 *                  there) at the start of the view. With KVM_MEM_READONLY
 *                  KVM exits with KVM_EXIT_MMIO (is_write) and the VMM drops
 *                  the write, as a ROM would; without it (--no-readonly-mem,
 *                  or no KVM_CAP_READONLY_MEM) KVM cannot get a writable page
 *                  for the read-only mapping and KVM_RUN fails. What happened
 *                  is printed; then the VMM checks that the memory did not
 *                  change, through its own mapping and, with --check-vm,
 *                  through another VM's read-write view.
 *   check          no KVM: the view's content against the pattern.
 *   probe          no gmemd: runs a guest that only reports done; exit 0 if
 *                  KVM works, 77 with the reason if it is missing or unusable.
 *   vm-fd-handoff  no gmemd: shows that a KVM VM fd (and a vCPU fd) is of
 *                  use only to the process that created the VM. A child
 *                  after fork(), and a process that received the fds over a
 *                  UNIX socket, get EIO from every VM and vCPU ioctl
 *                  (virt/kvm/kvm_main.c: kvm->mm != current->mm), and so
 *                  does KVM_CREATE_GUEST_MEMFD, a VM ioctl.
 *   probe-gmem     no gmemd: what KVM offers for guest_memfd. Prints
 *                  KVM_CHECK_EXTENSION of KVM_CAP_GUEST_MEMFD,
 *                  KVM_CAP_GUEST_MEMFD_FLAGS, KVM_CAP_VM_TYPES,
 *                  KVM_CAP_MEMORY_ATTRIBUTES and KVM_CAP_USER_MEMORY2 on
 *                  /dev/kvm and on a default VM, then tries
 *                  KVM_CREATE_GUEST_MEMFD (2 MiB, flags 0) on a VM of every
 *                  type KVM_CAP_VM_TYPES lists (the default type only, without
 *                  it). Exit 0 if a guest_memfd was made, 77 with the reason if
 *                  none could be (or there is no KVM), 1 on anything else.
 *
 * The pattern: word i (32 bits, little endian) is x_i, where x_0 is the
 * seed and x_(i+1) = x_i * 1664525 + 1013904223 mod 2^32. The checksum:
 * c = 0, then c = rol(c, 5) ^ word for every word.
 *
 * Output: "key: value" lines on stdout (what happened), errors on stderr as
 * "tiny-vmm: <message>"; a failing ioctl is named with its errno. Exit
 * status: 0 the mode's checks held, 1 they did not or something failed,
 * 2 bad usage, 77 KVM missing or unusable (/dev/kvm absent or refusing), or
 * for probe-gmem KVM makes no guest_memfd.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "libgmem.h"
#include "macro.h"
#include "parse.h"

#define EXIT_USAGE 2
#define EXIT_SKIP 77

#define KVM_DEVICE "/dev/kvm"

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

#define DEFAULT_LENGTH (UINT64_C(16) * 1024)
#define DEFAULT_SEED UINT32_C(0x5eed)
#define DEFAULT_TIMEOUT 30

/* Not in older <linux/kvm.h> (6.8 added it); the number is ABI. */
#ifndef KVM_EXIT_MEMORY_FAULT
#define KVM_EXIT_MEMORY_FAULT 39
#endif

/*
 * guest_memfd, for probe-gmem. The <linux/kvm.h> of Linux 6.1 has none of
 * it. The numbers are those of include/uapi/linux/kvm.h and
 * arch/x86/include/uapi/asm/kvm.h of Linux 6.12 (as installed by
 * linux-headers-6.12.95+deb12-common), except KVM_CAP_GUEST_MEMFD_FLAGS and
 * its flags, which came later: they are those of Linux 6.18's
 * include/uapi/linux/kvm.h (commit d2042d8f96dd "KVM: Rework
 * KVM_CAP_GUEST_MEMFD_MMAP into KVM_CAP_GUEST_MEMFD_FLAGS"), and
 * KVM_X86_TDX_VM (Linux 6.16). All are ABI; where a header has them, they
 * must agree (checked below).
 */
#define GMEM_CAP_USER_MEMORY2 231
#define GMEM_CAP_MEMORY_ATTRIBUTES 233
#define GMEM_CAP_GUEST_MEMFD 234
#define GMEM_CAP_VM_TYPES 235
#define GMEM_CAP_GUEST_MEMFD_FLAGS 244

#define GMEM_X86_DEFAULT_VM 0
#define GMEM_X86_SW_PROTECTED_VM 1

#ifdef KVM_CAP_USER_MEMORY2
_Static_assert(KVM_CAP_USER_MEMORY2 == GMEM_CAP_USER_MEMORY2, "KVM_CAP_USER_MEMORY2");
#endif
#ifdef KVM_CAP_MEMORY_ATTRIBUTES
_Static_assert(KVM_CAP_MEMORY_ATTRIBUTES == GMEM_CAP_MEMORY_ATTRIBUTES, "KVM_CAP_MEMORY_ATTRIBUTES");
#endif
#ifdef KVM_CAP_GUEST_MEMFD
_Static_assert(KVM_CAP_GUEST_MEMFD == GMEM_CAP_GUEST_MEMFD, "KVM_CAP_GUEST_MEMFD");
#endif
#ifdef KVM_CAP_VM_TYPES
_Static_assert(KVM_CAP_VM_TYPES == GMEM_CAP_VM_TYPES, "KVM_CAP_VM_TYPES");
#endif
#ifdef KVM_CAP_GUEST_MEMFD_FLAGS
_Static_assert(KVM_CAP_GUEST_MEMFD_FLAGS == GMEM_CAP_GUEST_MEMFD_FLAGS, "KVM_CAP_GUEST_MEMFD_FLAGS");
#endif
#ifdef KVM_X86_SW_PROTECTED_VM
_Static_assert(KVM_X86_SW_PROTECTED_VM == GMEM_X86_SW_PROTECTED_VM, "KVM_X86_SW_PROTECTED_VM");
#endif

/* struct kvm_create_guest_memfd, the argument of KVM_CREATE_GUEST_MEMFD (a VM ioctl). */
typedef struct GmemCreate {
        uint64_t size;
        uint64_t flags;
        uint64_t reserved[6];
} GmemCreate;
_Static_assert(sizeof(GmemCreate) == 64, "struct kvm_create_guest_memfd is 64 bytes");

#define GMEM_KVM_CREATE_GUEST_MEMFD _IOWR(KVMIO, 0xd4, GmemCreate)
#ifdef KVM_CREATE_GUEST_MEMFD
_Static_assert(KVM_CREATE_GUEST_MEMFD == GMEM_KVM_CREATE_GUEST_MEMFD, "KVM_CREATE_GUEST_MEMFD");
#endif

/*
 * The guest programs, 16-bit real mode, loaded at CS:IP = 0000:0000. On
 * entry the VMM has set ES = DATA_SEGMENT, DI = 0, ESI = 0, EAX and ECX as
 * each program says. ES moves on by 64 KiB whenever DI wraps, so a program
 * reaches all of DATA_REACH. Checked with `as --32` (.code16) and objdump.
 */

/* EAX = seed, ECX = number of words (> 0). */
static const uint8_t guest_write[] = {
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

/* ECX = number of words (> 0); ESI = 0 (the checksum). */
static const uint8_t guest_read[] = {
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

/* EAX = the word to store at the start of the view. */
static const uint8_t guest_write_attempt[] = {
        0x26, 0x66, 0x89, 0x05,                         /*    mov   [es:di], eax           */
        0xba, 0x12, 0x00,                               /*    mov   dx, PORT_DONE          */
        0xb8, 0x0d, 0x60,                               /*    mov   ax, DONE_MAGIC         */
        0xef,                                           /*    out   dx, ax                 */
        0xf4,                                           /*    hlt                          */
};

/* Nothing but done. */
static const uint8_t guest_probe[] = {
        0xba, 0x12, 0x00,                               /*    mov   dx, PORT_DONE          */
        0xb8, 0x0d, 0x60,                               /*    mov   ax, DONE_MAGIC         */
        0xef,                                           /*    out   dx, ax                 */
        0xf4,                                           /*    hlt                          */
};

typedef enum Mode {
        MODE_WRITE,
        MODE_READ,
        MODE_WRITE_ATTEMPT,
        MODE_CHECK,
        MODE_PROBE,
        MODE_VM_FD_HANDOFF,
        MODE_PROBE_GMEM,
        _MODE_MAX,
} Mode;

static const char *const mode_names[_MODE_MAX] = {
        [MODE_WRITE] = "write",
        [MODE_READ] = "read",
        [MODE_WRITE_ATTEMPT] = "write-attempt",
        [MODE_CHECK] = "check",
        [MODE_PROBE] = "probe",
        [MODE_VM_FD_HANDOFF] = "vm-fd-handoff",
        [MODE_PROBE_GMEM] = "probe-gmem",
};

static const char *arg_bus_address = NULL;
static int arg_access = -1;                     /* GmemAccess; -1: the mode's default */
static bool arg_get_fd = false;
static uint64_t arg_length = DEFAULT_LENGTH;
static uint32_t arg_seed = DEFAULT_SEED;
static bool arg_expect_pattern = false;
static bool arg_print_words = false;
static bool arg_no_readonly_mem = false;
static const char *arg_check_vm = NULL;
static unsigned arg_timeout = DEFAULT_TIMEOUT;

static volatile sig_atomic_t timed_out = 0;
static struct kvm_run *volatile alarm_run = NULL;      /* the vCPU the alarm stops */

_printf_(2, 3) static int log_error(int r, const char *fmt, ...) {
        va_list ap;

        fflush(stdout);
        fputs("tiny-vmm: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return r;
}

/* "EFAULT (Bad address)" for an errno > 0. */
static const char *errno_text(int e, char *buf, size_t n) {
        const char *name = strerrorname_np(e);

        snprintf(buf, n, "%s (%s)", name ?: "E?", strerror(e));
        return buf;
}
#define ERRNO_TEXT(e) errno_text((e), (char[96]) {}, 96)

/* log_error() with ": <errno text>" appended; returns the negative errno. */
#define log_errno(fmt, ...)                                                             \
        ({                                                                              \
                int _e_ = errno > 0 ? errno : EIO;                                      \
                log_error(-_e_, fmt ": %s", ##__VA_ARGS__, ERRNO_TEXT(_e_));            \
        })

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

static const char *exit_reason_name(uint32_t reason) {
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

static uint32_t pattern_next(uint32_t x) {
        return x * PATTERN_MUL + PATTERN_ADD;
}

static uint32_t checksum_add(uint32_t c, uint32_t word) {
        return ((c << 5) | (c >> 27)) ^ word;
}

static uint32_t load_le32(const uint8_t *p) {
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

/* ---- the view ------------------------------------------------------------- */

static void gmem_client_unrefp(GmemClient **c) {
        gmem_client_unref(*c);
}

typedef struct View {
        int fd;
        uint8_t *map;
        size_t size;
        bool writable;
        ino_t inode;
} View;

#define VIEW_NULL { .fd = -EBADF, .map = MAP_FAILED }

static void view_done(View *v) {
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

/*
 * Gets vm's view of region (Attach with access, or GetFd) and maps all of
 * it shared: writable only for "rw". The fd's own access mode must allow it.
 */
static int view_open(GmemClient *c, const char *vm, const char *region, GmemAccess access,
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

/* ---- KVM ------------------------------------------------------------------ */

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

static void vmm_done(Vmm *v) {
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

/*
 * Opens /dev/kvm and creates a VM. Any failure means KVM is missing or
 * unusable here: the reason is printed and a negative errno returned (the
 * caller exits 77).
 */
static int vmm_open(Vmm *v) {
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

/*
 * Puts the program in slot 0, the view (if any) in slot 1, and creates the
 * vCPU in real mode at 0000:0000 with ES = DATA_SEGMENT and the registers
 * the program reads.
 */
static int vmm_setup(Vmm *v, const uint8_t *program, size_t program_size, const View *view,
                     bool readonly_slot, uint32_t eax, uint32_t ecx) {
        struct kvm_sregs sregs;
        struct kvm_regs regs;
        int r, mmap_size;

        if (program_size > CODE_SIZE)
                return log_error(-E2BIG, "guest program of %zu bytes does not fit %d", program_size, CODE_SIZE);
        v->code = mmap(NULL, CODE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (v->code == MAP_FAILED)
                return log_errno("mmap() of the code slot failed");
        memcpy(v->code, program, program_size);
        r = vmm_set_slot(v, SLOT_CODE, 0, CODE_GPA, CODE_SIZE, v->code);
        if (r < 0)
                return r;

        if (view) {
                uint32_t flags = 0;

                if (readonly_slot) {
                        if (!v->readonly_mem)
                                return log_error(-EOPNOTSUPP,
                                                 "KVM_MEM_READONLY wanted but KVM lacks KVM_CAP_READONLY_MEM");
                        flags |= KVM_MEM_READONLY;
                }
                r = vmm_set_slot(v, SLOT_DATA, flags, DATA_GPA, view->size, view->map);
                if (r < 0)
                        return r;
                printf("slot: view at GPA 0x%" PRIx64 ", %zu bytes, flags=%s\n", DATA_GPA, view->size,
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

static void guest_run_done(GuestRun *g) {
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

/*
 * Runs the vCPU until the guest halts. allow_write_faults: a write that
 * KVM turns into KVM_EXIT_MMIO is recorded and dropped, and a failing
 * KVM_RUN is recorded and ends the run, instead of both being errors.
 */
static int vmm_run(Vmm *v, GuestRun *g, bool allow_write_faults) {
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

static int check_pattern(const View *view, const char *through) {
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

static int mode_write(Vmm *v, const View *view) {
        _cleanup_(guest_run_done) GuestRun g = {};
        int r;

        r = vmm_setup(v, guest_write, sizeof guest_write, view, readonly_slot(v, view), arg_seed,
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

static int mode_read(Vmm *v, const View *view) {
        _cleanup_(guest_run_done) GuestRun g = { .max_words = arg_length / 4 };
        uint32_t sum_words = 0, sum_view = 0, x = arg_seed;
        int r;

        g.words = calloc(g.max_words, sizeof(uint32_t));
        if (!g.words)
                return log_error(-ENOMEM, "out of memory for %zu words", g.max_words);

        r = vmm_setup(v, guest_read, sizeof guest_read, view, readonly_slot(v, view), 0, (uint32_t) g.max_words);
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

static int mode_write_attempt(Vmm *v, GmemClient *c, const char *region, const View *view) {
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

        r = vmm_setup(v, guest_write_attempt, sizeof guest_write_attempt, view, readonly, value, 0);
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

static int mode_probe(Vmm *v) {
        _cleanup_(guest_run_done) GuestRun g = {};
        int r;

        r = vmm_setup(v, guest_probe, sizeof guest_probe, NULL, false, 0, 0);
        if (r < 0)
                return r;
        r = vmm_run(v, &g, false);
        if (r < 0)
                return r;
        printf("probe: a real-mode guest ran and reported done (%lu exits)\n", v->exits);
        return 0;
}

/* ---- probe-gmem -------------------------------------------------------------- */

#define GMEM_PROBE_SIZE (UINT64_C(2) * 1024 * 1024)

typedef struct GmemCap {
        long cap;
        const char *name;
        const char *const *bits;        /* names of the bits of a bitmask answer, or NULL */
        size_t n_bits;
} GmemCap;

/* The x86 VM types (arch/x86/include/uapi/asm/kvm.h), the bits of KVM_CAP_VM_TYPES. */
static const char *const gmem_vm_type_names[] = {
        [GMEM_X86_DEFAULT_VM] = "KVM_X86_DEFAULT_VM",
        [GMEM_X86_SW_PROTECTED_VM] = "KVM_X86_SW_PROTECTED_VM",
        [2] = "KVM_X86_SEV_VM",
        [3] = "KVM_X86_SEV_ES_VM",
        [4] = "KVM_X86_SNP_VM",
        [5] = "KVM_X86_TDX_VM",
};

/* The bits of KVM_CAP_MEMORY_ATTRIBUTES (include/uapi/linux/kvm.h of 6.12). */
static const char *const gmem_attribute_names[] = {
        [3] = "KVM_MEMORY_ATTRIBUTE_PRIVATE",
};

/* The bits of KVM_CAP_GUEST_MEMFD_FLAGS (include/uapi/linux/kvm.h of 6.18). */
static const char *const gmem_flag_names[] = {
        [0] = "GUEST_MEMFD_FLAG_MMAP",
        [1] = "GUEST_MEMFD_FLAG_INIT_SHARED",
};

static const GmemCap gmem_caps[] = {
        { GMEM_CAP_GUEST_MEMFD, "KVM_CAP_GUEST_MEMFD", NULL, 0 },
        { GMEM_CAP_GUEST_MEMFD_FLAGS, "KVM_CAP_GUEST_MEMFD_FLAGS", gmem_flag_names, ELEMENTSOF(gmem_flag_names) },
        { GMEM_CAP_VM_TYPES, "KVM_CAP_VM_TYPES", gmem_vm_type_names, ELEMENTSOF(gmem_vm_type_names) },
        { GMEM_CAP_MEMORY_ATTRIBUTES, "KVM_CAP_MEMORY_ATTRIBUTES", gmem_attribute_names,
          ELEMENTSOF(gmem_attribute_names) },
        { GMEM_CAP_USER_MEMORY2, "KVM_CAP_USER_MEMORY2", NULL, 0 },
};

static const char *gmem_vm_type_name(unsigned type) {
        if (type < ELEMENTSOF(gmem_vm_type_names) && gmem_vm_type_names[type])
                return gmem_vm_type_names[type];
        return "KVM_X86_?";
}

/* "0x9 (A|B|bit 5)" for a bitmask, "0" for none. */
static const char *gmem_bits_text(long value, const char *const *names, size_t n_names, char *buf, size_t n) {
        size_t k;

        if (value <= 0) {
                snprintf(buf, n, "%ld", value);
                return buf;
        }
        k = (size_t) snprintf(buf, n, "%#lx (", value);
        for (unsigned bit = 0; bit < 8 * sizeof value && k < n; bit++) {
                if (!((unsigned long) value & (1UL << bit)))
                        continue;
                if (bit < n_names && names[bit])
                        k += (size_t) snprintf(buf + k, n - k, "%s%s", buf[k - 1] == '(' ? "" : "|", names[bit]);
                else
                        k += (size_t) snprintf(buf + k, n - k, "%sbit %u", buf[k - 1] == '(' ? "" : "|", bit);
        }
        if (k < n)
                snprintf(buf + k, n - k, ")");
        return buf;
}

/* KVM_CHECK_EXTENSION on fd; the answer, or a negative errno (printed). */
static long gmem_check(int fd, const GmemCap *c, const char *on) {
        int r = ioctl(fd, KVM_CHECK_EXTENSION, c->cap);

        if (r < 0)
                return log_errno("ioctl KVM_CHECK_EXTENSION(%s) on %s failed", c->name, on);
        return r;
}

static const char *gmem_cap_text(const GmemCap *c, long value, char *buf, size_t n) {
        if (c->bits)
                return gmem_bits_text(value, c->bits, c->n_bits, buf, n);
        snprintf(buf, n, "%ld", value);
        return buf;
}

/* Errors with which KVM says it cannot make a guest_memfd (any other is unexpected). */
static bool gmem_errno_means_unsupported(int e) {
        return e == ENOTTY || e == EINVAL || e == EOPNOTSUPP;
}

/*
 * KVM_CREATE_GUEST_MEMFD on vm_fd (a VM of type): prints what it gave.
 * Returns 1 if a guest_memfd was made, 0 if KVM refused as it does where
 * guest_memfd is unsupported (*ret_errno says how), <0 on anything else.
 */
static int gmem_try_create(int vm_fd, unsigned type, int *ret_errno) {
        GmemCreate args = { .size = GMEM_PROBE_SIZE, .flags = 0 };
        char what[160], link[64], target[128];
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        ssize_t n;
        int r;

        snprintf(what, sizeof what, "KVM_CREATE_GUEST_MEMFD on a %s (type %u) VM, size %" PRIu64 " (2 MiB), flags 0",
                 gmem_vm_type_name(type), type, args.size);
        r = ioctl(vm_fd, GMEM_KVM_CREATE_GUEST_MEMFD, &args);
        if (r < 0) {
                int e = errno;

                printf("probe-gmem: %s: -1 %s\n", what, ERRNO_TEXT(e));
                *ret_errno = e;
                if (!gmem_errno_means_unsupported(e))
                        return log_error(-e, "KVM_CREATE_GUEST_MEMFD failed unexpectedly: %s", ERRNO_TEXT(e));
                return 0;
        }
        fd = r;
        if (fstat(fd, &st) < 0)
                return log_errno("fstat() of the guest_memfd failed");
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        n = readlink(link, target, sizeof target - 1);
        target[n < 0 ? 0 : n] = '\0';
        printf("probe-gmem: %s: fd %d, %s, st_size %jd\n", what, fd, n > 0 ? target : "(no /proc)",
               (intmax_t) st.st_size);
        return 1;
}

/*
 * What this KVM offers for guest_memfd: the capabilities on /dev/kvm and on
 * a default VM, then KVM_CREATE_GUEST_MEMFD on a VM of every type
 * KVM_CAP_VM_TYPES lists. Returns the exit status: 0 a guest_memfd was
 * created, 77 none could be (or no KVM), 1 something unexpected failed.
 */
static int mode_probe_gmem(Vmm *v) {
        char buf[256], reasons[512] = "";
        long types = 0, cap_gmem = 0;
        bool created = false;
        struct utsname u;
        int r;

        if (uname(&u) >= 0)
                printf("probe-gmem: kernel %s\n", u.release);
        if (vmm_open(v) < 0)
                return EXIT_SKIP;

        for (size_t i = 0; i < ELEMENTSOF(gmem_caps); i++) {
                const GmemCap *c = &gmem_caps[i];
                long sys, vm;

                sys = gmem_check(v->kvm_fd, c, KVM_DEVICE);
                if (sys < 0)
                        return EXIT_FAILURE;
                vm = gmem_check(v->vm_fd, c, "a default VM");
                if (vm < 0)
                        return EXIT_FAILURE;
                printf("probe-gmem: %s (%ld): " KVM_DEVICE " %s", c->name, c->cap,
                       gmem_cap_text(c, sys, buf, sizeof buf));
                printf(", default VM %s\n", gmem_cap_text(c, vm, buf, sizeof buf));
                if (c->cap == GMEM_CAP_VM_TYPES)
                        types = sys;
                if (c->cap == GMEM_CAP_GUEST_MEMFD)
                        cap_gmem = sys;
        }

        /* Without KVM_CAP_VM_TYPES (Linux 6.1 has none) there is the default VM type only. */
        if (types <= 0)
                types = 1L << GMEM_X86_DEFAULT_VM;

        for (unsigned type = 0; type < 32; type++) {
                _cleanup_close_ int typed_vm = -EBADF;
                size_t k = strlen(reasons);
                int vm_fd = v->vm_fd, e = 0;

                if (!(types & (1L << type)))
                        continue;
                if (type != GMEM_X86_DEFAULT_VM) {
                        typed_vm = ioctl(v->kvm_fd, KVM_CREATE_VM, (unsigned long) type);
                        if (typed_vm < 0) {
                                e = errno;
                                printf("probe-gmem: KVM_CREATE_VM of a %s (type %u) VM: -1 %s\n",
                                       gmem_vm_type_name(type), type, ERRNO_TEXT(e));
                                snprintf(reasons + k, sizeof reasons - k, "%s%s: KVM_CREATE_VM %s", k ? "; " : "",
                                         gmem_vm_type_name(type), strerrorname_np(e) ?: "E?");
                                continue;
                        }
                        vm_fd = typed_vm;
                }
                r = gmem_try_create(vm_fd, type, &e);
                if (r < 0)
                        return EXIT_FAILURE;
                if (r > 0)
                        created = true;
                else
                        snprintf(reasons + k, sizeof reasons - k, "%s%s: %s", k ? "; " : "", gmem_vm_type_name(type),
                                 strerrorname_np(e) ?: "E?");
        }

        /* The type made for trying guest_memfd without confidential computing. */
        if (!(types & (1L << GMEM_X86_SW_PROTECTED_VM)))
                printf("probe-gmem: KVM_CREATE_GUEST_MEMFD on a KVM_X86_SW_PROTECTED_VM (type %d) VM: not tried, "
                       "KVM_CAP_VM_TYPES does not list the type\n", GMEM_X86_SW_PROTECTED_VM);

        if (created) {
                printf("probe-gmem: result: KVM made a guest_memfd\n");
                return EXIT_SUCCESS;
        }
        printf("probe-gmem: result: no guest_memfd on any VM type this KVM offers\n");
        log_error(-EOPNOTSUPP, "guest_memfd is not available: KVM_CAP_GUEST_MEMFD is %ld, KVM_CREATE_GUEST_MEMFD "
                  "failed on every VM type KVM offers (%s)", cap_gmem, reasons);
        return EXIT_SKIP;
}

/* ---- vm-fd-handoff ---------------------------------------------------------- */

/* One ioctl by a process that did not create the VM; prints what it got. */
static bool try_foreign_ioctl(const char *who, int fd, unsigned long request, const char *name, unsigned long arg) {
        int r = ioctl(fd, request, arg);
        int e = errno;

        if (r >= 0) {
                printf("vm-fd-handoff: %s (pid %d): %s = %d: it worked\n", who, (int) getpid(), name, r);
                return false;
        }
        printf("vm-fd-handoff: %s (pid %d): %s = -1 %s\n", who, (int) getpid(), name, ERRNO_TEXT(e));
        return e == EIO;
}

/* What a process that is not the VM's creator gets from its fds: true if all are EIO. */
static bool try_foreign_fds(const char *who, int vm_fd, int vcpu_fd) {
        static uint8_t page[4096] __attribute__((aligned(4096)));
        struct kvm_userspace_memory_region region = {
                .slot = 5,
                .guest_phys_addr = 0x100000,
                .memory_size = sizeof page,
                .userspace_addr = (uintptr_t) page,
        };
        GmemCreate gmem = { .size = GMEM_PROBE_SIZE };
        bool all_eio = true;

        all_eio &= try_foreign_ioctl(who, vm_fd, KVM_CREATE_VCPU, "KVM_CREATE_VCPU(vm fd)", 1);
        all_eio &= try_foreign_ioctl(who, vm_fd, KVM_SET_USER_MEMORY_REGION, "KVM_SET_USER_MEMORY_REGION(vm fd)",
                                     (unsigned long) &region);
        /* Refused before KVM looks at the ioctl number, so also where KVM has no guest_memfd. */
        all_eio &= try_foreign_ioctl(who, vm_fd, GMEM_KVM_CREATE_GUEST_MEMFD, "KVM_CREATE_GUEST_MEMFD(vm fd)",
                                     (unsigned long) &gmem);
        all_eio &= try_foreign_ioctl(who, vcpu_fd, KVM_RUN, "KVM_RUN(vcpu fd)", 0);
        fflush(stdout);
        return all_eio;
}

static int send_fds(int sock, int fd1, int fd2) {
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(2 * sizeof(int))];
        } control = {};
        char byte = 'F';
        struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
        struct msghdr msg = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = control.buf,
                .msg_controllen = sizeof control.buf,
        };
        struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
        int fds[2] = { fd1, fd2 };
        ssize_t n;

        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof fds);
        memcpy(CMSG_DATA(cmsg), fds, sizeof fds);
        n = sendmsg(sock, &msg, MSG_NOSIGNAL);
        if (n < 0)
                return log_errno("sendmsg(SCM_RIGHTS) failed");
        if (n != 1)
                return log_error(-EIO, "sendmsg(SCM_RIGHTS) sent %zd bytes, not 1", n);
        return 0;
}

static int recv_fds(int sock, int *ret_fd1, int *ret_fd2) {
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(2 * sizeof(int))];
        } control = {};
        char byte;
        struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
        struct msghdr msg = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = control.buf,
                .msg_controllen = sizeof control.buf,
        };
        struct cmsghdr *cmsg;
        int fds[2];
        ssize_t n;

        n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
        if (n < 0)
                return log_errno("recvmsg() failed");
        if (n == 0)
                return -ECONNRESET;     /* the creator gave up (no KVM) and said so */
        cmsg = CMSG_FIRSTHDR(&msg);
        if (n != 1 || !cmsg || cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS ||
            cmsg->cmsg_len != CMSG_LEN(sizeof fds) || (msg.msg_flags & MSG_CTRUNC))
                return log_error(-EBADMSG, "expected one byte with two fds over the socket");
        memcpy(fds, CMSG_DATA(cmsg), sizeof fds);
        *ret_fd1 = fds[0];
        *ret_fd2 = fds[1];
        return 0;
}

/* The other process: forked before the VM existed, it gets the fds only over the socket. */
static int handoff_receiver(int sock) {
        _cleanup_close_ int vm_fd = -EBADF, vcpu_fd = -EBADF;
        bool all_eio;
        int r;

        r = recv_fds(sock, &vm_fd, &vcpu_fd);
        if (r < 0)
                return EXIT_FAILURE;
        all_eio = try_foreign_fds("a process that received the fds over a UNIX socket", vm_fd, vcpu_fd);
        return all_eio ? EXIT_SUCCESS : EXIT_FAILURE;
}

static int wait_child(pid_t pid, const char *who) {
        int status;

        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return log_errno("waitpid() for %s failed", who);
        if (!WIFEXITED(status))
                return log_error(-EPROTO, "%s was killed by signal %d", who, WTERMSIG(status));
        return WEXITSTATUS(status);
}

static int mode_vm_fd_handoff(Vmm *v, bool *ret_unusable) {
        _cleanup_close_ int sock_parent = -EBADF, sock_child = -EBADF;
        _cleanup_(guest_run_done) GuestRun g = {};
        int pair[2], r, child_status, receiver_status;
        pid_t receiver, child;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
                return log_errno("socketpair() failed");
        sock_parent = pair[0];
        sock_child = pair[1];

        /* Forked before the VM exists: it never inherits the VM or shares its mm. */
        fflush(stdout);
        receiver = fork();
        if (receiver < 0)
                return log_errno("fork() failed");
        if (receiver == 0) {
                sock_parent = safe_close(sock_parent);
                _exit(handoff_receiver(sock_child));
        }
        sock_child = safe_close(sock_child);

        r = vmm_open(v);
        if (r < 0) {
                *ret_unusable = true;
                sock_parent = safe_close(sock_parent);          /* the receiver's recvmsg() ends */
                (void) wait_child(receiver, "the receiving process");
                return r;
        }
        r = vmm_setup(v, guest_probe, sizeof guest_probe, NULL, false, 0, 0);
        if (r < 0)
                return r;
        printf("vm-fd-handoff: creator (pid %d): KVM_CREATE_VM = fd %d, KVM_CREATE_VCPU = fd %d\n", (int) getpid(),
               v->vm_fd, v->vcpu_fd);

        fflush(stdout);
        child = fork();
        if (child < 0)
                return log_errno("fork() failed");
        if (child == 0)
                _exit(try_foreign_fds("a child after fork(), fds inherited", v->vm_fd, v->vcpu_fd) ? EXIT_SUCCESS
                                                                                                       : EXIT_FAILURE);
        child_status = wait_child(child, "the forked child");
        if (child_status < 0)
                return child_status;

        r = send_fds(sock_parent, v->vm_fd, v->vcpu_fd);
        if (r < 0)
                return r;
        receiver_status = wait_child(receiver, "the receiving process");
        if (receiver_status < 0)
                return receiver_status;

        /* The creator still can: the fds were never broken, only foreign. */
        r = vmm_run(v, &g, false);
        if (r < 0)
                return r;
        printf("vm-fd-handoff: creator (pid %d): KVM_RUN on its vCPU ran the guest to done\n", (int) getpid());

        if (child_status != 0 || receiver_status != 0)
                return log_error(-EPROTO, "a process that did not create the VM got something other than EIO (above)");
        printf("vm-fd-handoff: result: the VM and vCPU fds work only in the process that created the VM; "
               "every other process gets EIO\n");
        return 0;
}

/* ---- command line ----------------------------------------------------------- */

static int help(void) {
        printf("Usage: tiny-vmm [OPTIONS] write|read|write-attempt|check VM REGION\n"
               "       tiny-vmm [OPTIONS] probe|vm-fd-handoff|probe-gmem\n"
               "\n"
               "A minimal KVM hypervisor on a gmemd view: the view is guest RAM at GPA 0x%" PRIx64 ",\n"
               "a real-mode guest program in a slot of its own works on its first bytes.\n"
               "\n"
               "  write          the guest writes the pattern of --seed; the VMM checks the view\n"
               "  read           the guest reports every word and a checksum over I/O ports\n"
               "  write-attempt  the guest writes to a read-only view: what KVM does, and the\n"
               "                 memory must not change\n"
               "  check          no KVM: does the view hold the pattern of --seed?\n"
               "  probe          no gmemd: exit 0 if KVM runs a guest, 77 if it is missing\n"
               "  vm-fd-handoff  no gmemd: a VM fd in another process (fork, SCM_RIGHTS) gets EIO\n"
               "  probe-gmem     no gmemd: KVM's guest_memfd capabilities; exit 0 if KVM makes a\n"
               "                 guest_memfd, 77 if it cannot (or there is no KVM)\n"
               "\n"
               "Options:\n"
               "  -h --help             Show this help\n"
               "     --bus-address=ADDR Connect to gmemd on this bus (default: the system bus,\n"
               "                        or $DBUS_SYSTEM_BUS_ADDRESS)\n"
               "     --access=ro|rw     Access of the view (default: rw for write, ro otherwise)\n"
               "     --get-fd           Take the VM's existing view with GetFd instead of Attach\n"
               "     --length=BYTES     Bytes the guest works on, a multiple of 4, at most 960K\n"
               "                        and the view's size (default 16K)\n"
               "     --seed=N           Seed of the pattern (default 0x%" PRIx32 ")\n"
               "     --expect-pattern   read: the guest must report the pattern of --seed\n"
               "     --print-words      read: print every word the guest reported\n"
               "     --no-readonly-mem  Map a read-only view without KVM_MEM_READONLY\n"
               "     --check-vm=VM      write-attempt: also compare through VM's read-write view\n"
               "     --timeout=SECONDS  Stop a guest that runs longer (default %d)\n"
               "\n"
               "Exit status: 0 the checks held, 1 they did not or something failed,\n"
               "2 bad usage, 77 KVM is missing or unusable (probe-gmem: or makes no guest_memfd).\n",
               DATA_GPA, DEFAULT_SEED, DEFAULT_TIMEOUT);
        return 0;
}

static int usage_error(const char *fmt, ...) _printf_(1, 2);
static int usage_error(const char *fmt, ...) {
        va_list ap;

        fputs("tiny-vmm: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputs(" (see --help)\n", stderr);
        return -EINVAL;
}

static int parse_u32(const char *s, uint32_t *ret) {
        unsigned long long v;
        char *end;

        if (isempty(s) || s[0] == '-')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 0);
        if (errno != 0 || *end != '\0' || v > UINT32_MAX)
                return -EINVAL;
        *ret = (uint32_t) v;
        return 0;
}

static int parse_argv(int argc, char **argv, Mode *ret_mode, const char **ret_vm, const char **ret_region) {
        enum {
                ARG_BUS_ADDRESS = 0x100,
                ARG_ACCESS,
                ARG_GET_FD,
                ARG_LENGTH,
                ARG_SEED,
                ARG_EXPECT_PATTERN,
                ARG_PRINT_WORDS,
                ARG_NO_READONLY_MEM,
                ARG_CHECK_VM,
                ARG_TIMEOUT,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "bus-address", required_argument, NULL, ARG_BUS_ADDRESS },
                { "access", required_argument, NULL, ARG_ACCESS },
                { "get-fd", no_argument, NULL, ARG_GET_FD },
                { "length", required_argument, NULL, ARG_LENGTH },
                { "seed", required_argument, NULL, ARG_SEED },
                { "expect-pattern", no_argument, NULL, ARG_EXPECT_PATTERN },
                { "print-words", no_argument, NULL, ARG_PRINT_WORDS },
                { "no-readonly-mem", no_argument, NULL, ARG_NO_READONLY_MEM },
                { "check-vm", required_argument, NULL, ARG_CHECK_VM },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                {}
        };
        bool needs_view;
        uint32_t u;
        Mode mode = _MODE_MAX;
        int c, r;

        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_BUS_ADDRESS:
                        if (isempty(optarg))
                                return usage_error("--bus-address= needs an address");
                        arg_bus_address = optarg;
                        break;
                case ARG_ACCESS:
                        r = gmem_access_from_string(optarg);
                        if (r < 0)
                                return usage_error("--access= takes ro or rw, not '%s'", optarg);
                        arg_access = r;
                        break;
                case ARG_GET_FD:
                        arg_get_fd = true;
                        break;
                case ARG_LENGTH:
                        r = gmem_parse_size(optarg, &arg_length);
                        if (r < 0)
                                return usage_error("--length= takes a byte count such as 16K, not '%s'", optarg);
                        if (arg_length == 0 || arg_length % 4 != 0 || arg_length > DATA_REACH)
                                return usage_error("--length=%s: must be a multiple of 4 from 4 to %" PRIu64 " (960K)",
                                                   optarg, DATA_REACH);
                        break;
                case ARG_SEED:
                        if (parse_u32(optarg, &arg_seed) < 0)
                                return usage_error("--seed= takes a 32-bit number (0x… for hex), not '%s'", optarg);
                        break;
                case ARG_EXPECT_PATTERN:
                        arg_expect_pattern = true;
                        break;
                case ARG_PRINT_WORDS:
                        arg_print_words = true;
                        break;
                case ARG_NO_READONLY_MEM:
                        arg_no_readonly_mem = true;
                        break;
                case ARG_CHECK_VM:
                        if (!gmem_name_is_valid(optarg))
                                return usage_error("--check-vm= takes a VM name (1-64 of A-Z a-z 0-9 _ . -), not '%s'",
                                                   optarg);
                        arg_check_vm = optarg;
                        break;
                case ARG_TIMEOUT:
                        if (parse_u32(optarg, &u) < 0 || u == 0 || u > 3600)
                                return usage_error("--timeout= takes seconds from 1 to 3600, not '%s'", optarg);
                        arg_timeout = u;
                        break;
                case ':':
                        return usage_error("option '%s' needs an argument", argv[optind - 1]);
                case '?':
                        if (optopt)
                                return usage_error("unknown option '-%c'", optopt);
                        return usage_error("unknown option '%s'", argv[optind - 1]);
                default:
                        return usage_error("unexpected option parser result %d", c);
                }

        if (optind >= argc)
                return usage_error("no mode given");
        for (mode = 0; mode < _MODE_MAX; mode++)
                if (streq(argv[optind], mode_names[mode]))
                        break;
        if (mode == _MODE_MAX)
                return usage_error("unknown mode '%s'", argv[optind]);
        optind++;

        needs_view = mode != MODE_PROBE && mode != MODE_VM_FD_HANDOFF && mode != MODE_PROBE_GMEM;
        if (needs_view) {
                if (argc - optind != 2)
                        return usage_error("%s takes a VM and a region", mode_names[mode]);
                if (!gmem_name_is_valid(argv[optind]) || !gmem_name_is_valid(argv[optind + 1]))
                        return usage_error("invalid VM or region name: '%s' '%s' (1-64 of A-Z a-z 0-9 _ . -)",
                                           argv[optind], argv[optind + 1]);
                *ret_vm = argv[optind];
                *ret_region = argv[optind + 1];
        } else if (argc - optind != 0)
                return usage_error("%s takes no arguments", mode_names[mode]);

        if (arg_access < 0)
                arg_access = mode == MODE_WRITE ? GMEM_ACCESS_RW : GMEM_ACCESS_RO;
        if (mode == MODE_WRITE_ATTEMPT && arg_access != GMEM_ACCESS_RO)
                return usage_error("write-attempt needs a read-only view (--access=ro)");
        if (arg_check_vm && mode != MODE_WRITE_ATTEMPT)
                return usage_error("--check-vm= is for write-attempt");
        if ((arg_expect_pattern || arg_print_words) && mode != MODE_READ)
                return usage_error("--expect-pattern and --print-words are for read");

        *ret_mode = mode;
        return 1;
}

int main(int argc, char **argv) {
        _cleanup_(gmem_client_unrefp) GmemClient *client = NULL;
        _cleanup_(view_done) View view = VIEW_NULL;
        _cleanup_(vmm_done) Vmm vmm = VMM_NULL;
        const char *vm = NULL, *region = NULL;
        bool unusable = false;
        Mode mode = _MODE_MAX;
        int r;

        r = parse_argv(argc, argv, &mode, &vm, &region);
        if (r <= 0)
                return r < 0 ? EXIT_USAGE : EXIT_SUCCESS;

        /* A child's output must not repeat what the parent buffered. */
        setvbuf(stdout, NULL, _IOLBF, 0);

        if (mode == MODE_VM_FD_HANDOFF) {
                r = mode_vm_fd_handoff(&vmm, &unusable);
                return r < 0 ? (unusable ? EXIT_SKIP : EXIT_FAILURE) : EXIT_SUCCESS;
        }
        if (mode == MODE_PROBE_GMEM)
                return mode_probe_gmem(&vmm);

        /* KVM first: without it there is nothing to ask gmemd for. */
        if (mode != MODE_CHECK && vmm_open(&vmm) < 0)
                return EXIT_SKIP;
        if (mode == MODE_PROBE)
                return mode_probe(&vmm) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;

        r = arg_bus_address ? gmem_connect_address(arg_bus_address, &client) : gmem_connect(&client);
        if (r < 0) {
                log_error(r, "cannot connect to %s: %s", arg_bus_address ?: "the system bus", ERRNO_TEXT(-r));
                return EXIT_FAILURE;
        }
        r = view_open(client, vm, region, (GmemAccess) arg_access, arg_get_fd, &view);
        if (r < 0)
                return EXIT_FAILURE;
        if (arg_length > view.size) {
                log_error(-ERANGE, "--length=%" PRIu64 " is more than the view's %zu bytes", arg_length, view.size);
                return EXIT_USAGE;
        }

        switch (mode) {
        case MODE_WRITE:
                r = mode_write(&vmm, &view);
                break;
        case MODE_READ:
                r = mode_read(&vmm, &view);
                break;
        case MODE_WRITE_ATTEMPT:
                r = mode_write_attempt(&vmm, client, region, &view);
                break;
        case MODE_CHECK:
                r = check_pattern(&view, "the view");
                break;
        default:
                r = log_error(-EINVAL, "mode %d not handled", mode);
        }
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
