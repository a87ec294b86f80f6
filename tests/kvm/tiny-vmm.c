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
 * Modes (the guest programs are in guest-code.c, as bytes with their assembly):
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
 *   loop           the guest (after writing the pattern, with
 *                  --write-pattern) sums the first --length bytes of the view
 *                  over and over and reports each sum on an I/O port; the VMM
 *                  runs a round every --interval ms until SIGTERM or
 *                  --timeout, checks every sum, and when KVM_RUN fails (the
 *                  view revoked, a page made private) says how (errno,
 *                  kvm_run.exit_reason, rip) and tries again, so it also sees
 *                  access come back (loop-mode.c).
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
 *   custody-put    a hypervisor that ends: a VM and a guest_memfd (MMAP |
 *                  INIT_SHARED) bound to the data slot, guest code writes the
 *                  pattern, the guest_memfd goes to gmemd with AdoptRegion
 *                  as REGION, and the process exits (custody-modes.c).
 *   custody-get    the next hypervisor: the same file from gmemd, the
 *                  pattern through its mapping and through guest code of a
 *                  new VM (an ordinary slot on the mapping), KVM's answer to
 *                  binding the file to the new VM ("bind-outcome: EINVAL"),
 *                  and Discard through gmemd zeroing it.
 *   probe-custody  exit 0 if KVM makes guest_memfds with MMAP|INIT_SHARED and
 *                  has KVM_SET_USER_MEMORY_REGION2, 77 with the reason if not.
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
 *
 * This file is the command line: the options, --help, and the dispatch to
 * the modes. The rest is in files of one concept each: guest-code.c the
 * guest programs and what they share with the VMM (the memory layout, the
 * ports, the pattern), kvm-vm.c the VM (/dev/kvm, memory slots, the vCPU,
 * the run loop and its exits), view-modes.c the modes on a gmemd view,
 * kvm-probes.c the modes that need no gmemd, tiny-vmm.h what they share.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "custody-modes.h"
#include "guest-code.h"
#include "kvm-probes.h"
#include "kvm-vm.h"
#include "libgmem.h"
#include "loop-mode.h"
#include "macro.h"
#include "parse.h"
#include "tiny-vmm.h"
#include "view-modes.h"

#define DEFAULT_LENGTH (UINT64_C(16) * 1024)
#define DEFAULT_SEED UINT32_C(0x5eed)
#define DEFAULT_TIMEOUT 30
#define DEFAULT_INTERVAL 200

typedef enum Mode {
        MODE_WRITE,
        MODE_READ,
        MODE_WRITE_ATTEMPT,
        MODE_CHECK,
        MODE_PROBE,
        MODE_VM_FD_HANDOFF,
        MODE_PROBE_GMEM,
        MODE_LOOP,
        MODE_CUSTODY_PUT,
        MODE_CUSTODY_GET,
        MODE_PROBE_CUSTODY,
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
        [MODE_LOOP] = "loop",
        [MODE_CUSTODY_PUT] = "custody-put",
        [MODE_CUSTODY_GET] = "custody-get",
        [MODE_PROBE_CUSTODY] = "probe-custody",
};

static const char *arg_bus_address = NULL;
static int arg_access = -1;                     /* GmemAccess; -1: the mode's default */
static bool arg_get_fd = false;
uint64_t arg_length = DEFAULT_LENGTH;
uint32_t arg_seed = DEFAULT_SEED;
bool arg_expect_pattern = false;
bool arg_print_words = false;
bool arg_no_readonly_mem = false;
const char *arg_check_vm = NULL;
unsigned arg_timeout = DEFAULT_TIMEOUT;
unsigned arg_interval = DEFAULT_INTERVAL;
bool arg_write_pattern = false;
static int arg_fd = -1;

int log_error(int r, const char *fmt, ...) {
        va_list ap;

        fflush(stdout);
        fputs("tiny-vmm: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return r;
}

const char *errno_text(int e, char *buf, size_t n) {
        const char *name = strerrorname_np(e);

        snprintf(buf, n, "%s (%s)", name ?: "E?", strerror(e));
        return buf;
}

static void gmem_client_unrefp(GmemClient **c) {
        gmem_client_unref(*c);
}

/* ---- command line ----------------------------------------------------------- */

static int help(void) {
        printf("Usage: tiny-vmm [OPTIONS] write|read|write-attempt|loop|check|custody-get VM REGION\n"
               "       tiny-vmm [OPTIONS] custody-put REGION\n"
               "       tiny-vmm [OPTIONS] probe|vm-fd-handoff|probe-gmem|probe-custody\n"
               "\n"
               "A minimal KVM hypervisor on a gmemd view: the view is guest RAM at GPA 0x%" PRIx64 ",\n"
               "a real-mode guest program in a slot of its own works on its first bytes.\n"
               "\n"
               "  write          the guest writes the pattern of --seed; the VMM checks the view\n"
               "  read           the guest reports every word and a checksum over I/O ports\n"
               "  write-attempt  the guest writes to a read-only view: what KVM does, and the\n"
               "                 memory must not change\n"
               "  loop           the guest sums the view over and over (after writing the pattern,\n"
               "                 with --write-pattern); the VMM says when and how KVM_RUN fails and\n"
               "                 when it works again, until SIGTERM or --timeout\n"
               "  check          no KVM: does the view hold the pattern of --seed?\n"
               "  probe          no gmemd: exit 0 if KVM runs a guest, 77 if it is missing\n"
               "  vm-fd-handoff  no gmemd: a VM fd in another process (fork, SCM_RIGHTS) gets EIO\n"
               "  probe-gmem     no gmemd: KVM's guest_memfd capabilities; exit 0 if KVM makes a\n"
               "                 guest_memfd, 77 if it cannot (or there is no KVM)\n"
               "  custody-put    a VM writes the pattern into a guest_memfd (MMAP|INIT_SHARED), which\n"
               "                 goes to gmemd with AdoptRegion as REGION; then the VMM exits\n"
               "  custody-get    the same guest_memfd back from gmemd: the pattern through a mapping\n"
               "                 and through a new VM's ordinary slot, KVM's answer to binding it\n"
               "                 to the new VM (bind-outcome:), Discard zeroes it\n"
               "  probe-custody  exit 0 if KVM makes guest_memfds with MMAP|INIT_SHARED, 77 if not\n"
               "\n"
               "Options:\n"
               "  -h --help             Show this help\n"
               "     --bus-address=ADDR Connect to gmemd on this bus (default: the system bus,\n"
               "                        or $DBUS_SYSTEM_BUS_ADDRESS)\n"
               "     --access=ro|rw     Access of the view (default: rw for write and for loop\n"
               "                        --write-pattern, ro otherwise)\n"
               "     --get-fd           Take the VM's existing view with GetFd instead of Attach\n"
               "     --fd=N             The view is this inherited fd (gmemctl --exec: $GMEM_FD);\n"
               "                        read-write if it is open for writing\n"
               "     --length=BYTES     Bytes the guest works on, a multiple of 4, at most 960K\n"
               "                        and the view's size (default 16K)\n"
               "     --seed=N           Seed of the pattern (default 0x%" PRIx32 ")\n"
               "     --expect-pattern   read, loop: the guest must report the pattern of --seed\n"
               "     --write-pattern    loop: the guest writes the pattern of --seed first\n"
               "     --interval=MS      loop: a round, or a new try after a fault, every MS ms\n"
               "                        (default %d)\n"
               "     --print-words      read: print every word the guest reported\n"
               "     --no-readonly-mem  Map a read-only view without KVM_MEM_READONLY\n"
               "     --check-vm=VM      write-attempt: also compare through VM's read-write view\n"
               "     --timeout=SECONDS  Stop a guest that runs longer (default %d)\n"
               "\n"
               "Exit status: 0 the checks held, 1 they did not or something failed,\n"
               "2 bad usage, 77 KVM is missing or unusable (probe-gmem: or makes no guest_memfd).\n",
               DATA_GPA, DEFAULT_SEED, DEFAULT_INTERVAL, DEFAULT_TIMEOUT);
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
                ARG_FD,
                ARG_WRITE_PATTERN,
                ARG_INTERVAL,
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
                { "fd", required_argument, NULL, ARG_FD },
                { "write-pattern", no_argument, NULL, ARG_WRITE_PATTERN },
                { "interval", required_argument, NULL, ARG_INTERVAL },
                {}
        };
        bool needs_view, interval_set = false;
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
                case ARG_FD:
                        if (parse_u32(optarg, &u) < 0 || u > INT32_MAX)
                                return usage_error("--fd= takes a file descriptor number, not '%s'", optarg);
                        arg_fd = (int) u;
                        break;
                case ARG_WRITE_PATTERN:
                        arg_write_pattern = true;
                        break;
                case ARG_INTERVAL:
                        if (parse_u32(optarg, &u) < 0 || u == 0 || u > 60000)
                                return usage_error("--interval= takes milliseconds from 1 to 60000, not '%s'", optarg);
                        arg_interval = u;
                        interval_set = true;
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

        needs_view = mode != MODE_PROBE && mode != MODE_VM_FD_HANDOFF && mode != MODE_PROBE_GMEM &&
                     mode != MODE_CUSTODY_PUT && mode != MODE_PROBE_CUSTODY;
        if (mode == MODE_CUSTODY_PUT) {
                if (argc - optind != 1)
                        return usage_error("custody-put takes a region");
                if (!gmem_name_is_valid(argv[optind]))
                        return usage_error("invalid region name: '%s' (1-64 of A-Z a-z 0-9 _ . -)", argv[optind]);
                *ret_region = argv[optind];
        } else if (needs_view) {
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
                arg_access = mode == MODE_WRITE || (mode == MODE_LOOP && arg_write_pattern) ? GMEM_ACCESS_RW :
                                                                                          GMEM_ACCESS_RO;
        if (mode == MODE_WRITE_ATTEMPT && arg_access != GMEM_ACCESS_RO)
                return usage_error("write-attempt needs a read-only view (--access=ro)");
        if (arg_check_vm && mode != MODE_WRITE_ATTEMPT)
                return usage_error("--check-vm= is for write-attempt");
        if (arg_print_words && mode != MODE_READ)
                return usage_error("--print-words is for read");
        if (arg_expect_pattern && mode != MODE_READ && mode != MODE_LOOP)
                return usage_error("--expect-pattern is for read and loop");
        if ((arg_write_pattern || interval_set) && mode != MODE_LOOP)
                return usage_error("--write-pattern and --interval= are for loop");
        if (arg_fd >= 0 && (!needs_view || mode == MODE_WRITE_ATTEMPT || mode == MODE_CUSTODY_GET || arg_get_fd))
                return usage_error("--fd= is for write, read, loop and check, without --get-fd");
        if (arg_get_fd && mode != MODE_WRITE && mode != MODE_READ && mode != MODE_WRITE_ATTEMPT &&
            mode != MODE_LOOP && mode != MODE_CHECK && mode != MODE_CUSTODY_GET)
                return usage_error("--get-fd is for the modes on a view");

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
        if (mode == MODE_PROBE_CUSTODY)
                return mode_probe_custody(&vmm);

        /* KVM first: without it there is nothing to ask gmemd for. */
        if (mode != MODE_CHECK && vmm_open(&vmm) < 0)
                return EXIT_SKIP;
        if (mode == MODE_PROBE)
                return mode_probe(&vmm) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;

        if (mode == MODE_CUSTODY_PUT || mode == MODE_CUSTODY_GET) {
                r = arg_bus_address ? gmem_connect_address(arg_bus_address, &client) : gmem_connect(&client);
                if (r < 0) {
                        log_error(r, "cannot connect to %s: %s", arg_bus_address ?: "the system bus",
                                  ERRNO_TEXT(-r));
                        return EXIT_FAILURE;
                }
                if (mode == MODE_CUSTODY_PUT)
                        return mode_custody_put(&vmm, client, region);
                return mode_custody_get(&vmm, client, vm, region, arg_get_fd) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        }

        if (arg_fd >= 0) {
                /* The view came with the process: no gmemd to ask. */
                r = view_from_fd(arg_fd, vm, region, &view);
                if (r < 0)
                        return EXIT_FAILURE;
        } else {
                r = arg_bus_address ? gmem_connect_address(arg_bus_address, &client) : gmem_connect(&client);
                if (r < 0) {
                        log_error(r, "cannot connect to %s: %s", arg_bus_address ?: "the system bus",
                                  ERRNO_TEXT(-r));
                        return EXIT_FAILURE;
                }
                r = view_open(client, vm, region, (GmemAccess) arg_access, arg_get_fd, &view);
                if (r < 0)
                        return EXIT_FAILURE;
        }
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
        case MODE_LOOP:
                r = mode_loop(&vmm, &view);
                break;
        case MODE_CHECK:
                r = check_pattern(&view, "the view");
                break;
        default:
                r = log_error(-EINVAL, "mode %d not handled", mode);
        }
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
