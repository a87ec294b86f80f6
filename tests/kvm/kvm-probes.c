/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kvm-probes.c — the modes that need no gmemd (kvm-probes.h): what KVM
 * itself does. probe runs a guest that only reports done; probe-gmem asks
 * KVM_CHECK_EXTENSION about guest_memfd and tries KVM_CREATE_GUEST_MEMFD on
 * every VM type KVM lists; vm-fd-handoff shows that a VM fd and a vCPU fd
 * are of use only to the process that created the VM: a child after fork(),
 * and a process that received the fds over a UNIX socket, get EIO
 * (virt/kvm/kvm_main.c: kvm->mm != current->mm). The guest_memfd ABI, which
 * older <linux/kvm.h> lacks, is in gmem-abi.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "gmem-abi.h"
#include "guest-code.h"
#include "kvm-probes.h"
#include "kvm-vm.h"
#include "macro.h"
#include "tiny-vmm.h"

int mode_probe(Vmm *v) {
        _cleanup_(guest_run_done) GuestRun g = {};
        int r;

        r = vmm_setup(v, &guest_probe, NULL, 0, false, 0, 0);
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

int mode_probe_gmem(Vmm *v) {
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

int mode_vm_fd_handoff(Vmm *v, bool *ret_unusable) {
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
        r = vmm_setup(v, &guest_probe, NULL, 0, false, 0, 0);
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
