#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The kvm suite on this host: tiny-vmm runs real-mode guest code on gmemd
views through KVM, with gmemd on a private bus (gmemtest's World).

  * VMM 1 with a read-write view writes the pattern through guest code;
    the test reads the region through a view of its own and finds it.
  * VMM 2 with a read-only view of the same region reads the words through
    guest code, which reports each on an I/O port and a checksum: they are
    the pattern, and what the region holds.
  * VMM 2 tries to write through guest code: with KVM_MEM_READONLY KVM
    exits with KVM_EXIT_MMIO (is_write), without it KVM_RUN fails with
    EFAULT; either way the memory does not change (checked by tiny-vmm
    through its own mapping and another VM's read-write view, and here).
  * A VM fd is of use only to the process that created the VM: a forked
    child and a process that receives it over a UNIX socket get EIO, also
    for KVM_CREATE_GUEST_MEMFD.
  * probe-gmem reports what KVM offers for guest_memfd and exits 0 (it made
    one) or 77 (it cannot, with the reason).
  * loop: the guest writes the pattern and sums it round after round until
    --timeout, every sum the pattern's; a read-only VMM's loop finds it too.
  * Bad arguments exit 2; a broker refusal exits 1 with its message.

Skipped (77) with the reason when /dev/kvm is missing or unusable (tiny-vmm
probe says why), or when dbus-daemon or python3-dbus is missing.
"""

import os
import re
import struct
import subprocess
import sys

import gmemtest
from gmemtest import GmemTestCase, MiB, MAP_SHARED, PROT_READ, mmap_raw, munmap, peek


def tiny_vmm_path():
    path = os.environ.get("TINY_VMM")
    if not path or not os.access(path, os.X_OK):
        print(f"FAIL: $TINY_VMM ({path or 'unset'}) is not an executable; run through "
              f"'meson test' or set it (e.g. TINY_VMM=build/tests/kvm/tiny-vmm)", file=sys.stderr)
        sys.exit(1)
    return os.path.abspath(path)


TINY_VMM = tiny_vmm_path()


def check_kvm():
    """Skips the file unless KVM runs a guest here."""
    cp = subprocess.run([TINY_VMM, "probe"], capture_output=True, text=True, timeout=60,
                        stdin=subprocess.DEVNULL)
    if cp.returncode == 77:
        reason = cp.stderr.strip().splitlines()[-1] if cp.stderr.strip() else "no reason given"
        gmemtest.skip_file(f"KVM is not usable on this host: {reason}")
    if cp.returncode != 0:
        print(f"FAIL: tiny-vmm probe exited {cp.returncode}:\n{cp.stdout}{cp.stderr}", file=sys.stderr)
        sys.exit(1)
    return "readonly-mem=yes" in cp.stdout


READONLY_MEM = check_kvm()

SEED = 0x5eed1234
LENGTH = 64 * 1024
REGION_SIZE = 4 * MiB


def pattern(seed, n):
    """The words tiny-vmm's guest writes: x_0 = seed, x_(i+1) = x_i * 1664525 + 1013904223."""
    out = []
    x = seed
    for _ in range(n):
        out.append(x)
        x = (x * 1664525 + 1013904223) & 0xffffffff
    return out


def checksum(words):
    c = 0
    for w in words:
        c = (((c << 5) | (c >> 27)) & 0xffffffff) ^ w
    return c


class KvmOnViews(GmemTestCase):

    def setUp(self):
        super().setUp()
        self.region = self.create_region(REGION_SIZE)
        self.writer = self.register_vm(self.uniq("vmm1"))
        self.reader = self.register_vm(self.uniq("vmm2"))

    def vmm(self, *args, expect=0):
        res = self.run_cmd([TINY_VMM] + [str(a) for a in args], expect=expect, timeout=120)
        # For the log: what tiny-vmm said, but not every word it printed.
        out = [line for line in res.out.splitlines() if not line.startswith("word ")]
        if len(out) < len(res.out.splitlines()):
            out.append(f"({len(res.out.splitlines()) - len(out)} 'word' lines)")
        print("\n".join([f"$ tiny-vmm {' '.join(str(a) for a in args)}"] + out) + "\n" + res.err,
              end="", file=sys.stderr)
        return res

    def region_words(self, n):
        """The region's first n words, read through a read-only view of a VM of the test's own."""
        inspector = self.register_vm(self.uniq("inspector"))
        fd = self.attach(inspector, self.region, "ro")
        addr = mmap_raw(fd, REGION_SIZE, PROT_READ, MAP_SHARED)
        try:
            data = peek(addr, 4 * n)
        finally:
            munmap(addr, REGION_SIZE)
        return list(struct.unpack(f"<{n}I", data))

    def write_pattern(self):
        res = self.vmm("write", self.writer, self.region, f"--seed={SEED:#x}", f"--length={LENGTH}")
        self.assertIn("host-check: the VMM's mapping of the view holds the pattern", res.out)
        self.assertIn("access=rw", res.out)
        self.assertEqual(self.region_words(LENGTH // 4), pattern(SEED, LENGTH // 4),
                         "the region does not hold the pattern the guest wrote")

    def outcome(self, res):
        m = re.search(r"^write-attempt-outcome: (\S+)$", res.out, re.M)
        self.assertIsNotNone(m, f"tiny-vmm did not say what KVM did:\n{res}")
        return m.group(1)

    def test_write_read_and_write_attempt(self):
        """VMM 1 writes through a rw view, VMM 2 reads and tries to write through a ro view."""
        self.write_pattern()
        want = pattern(SEED, LENGTH // 4)

        res = self.vmm("read", self.reader, self.region, f"--length={LENGTH}", "--print-words")
        self.assertIn("access=ro", res.out)
        if READONLY_MEM:
            self.assertIn("flags=KVM_MEM_READONLY", res.out)
        words = {int(i): int(v, 16) for i, v in re.findall(r"^word (\d+) (0x[0-9a-f]+)$", res.out, re.M)}
        self.assertEqual([words.get(i) for i in range(LENGTH // 4)], want,
                         "the words the guest reported are not the pattern")
        m = re.search(r"^checksum: guest=(0x[0-9a-f]+)", res.out, re.M)
        self.assertIsNotNone(m, res.out)
        self.assertEqual(int(m.group(1), 16), checksum(want), "the guest's checksum is not the pattern's")

        res = self.vmm("write-attempt", self.reader, self.region, f"--length={LENGTH}",
                       f"--check-vm={self.writer}")
        self.assertEqual(self.outcome(res), "mmio" if READONLY_MEM else "efault", res.out)
        if READONLY_MEM:
            self.assertRegex(res.out, r"KVM_EXIT_MMIO is_write=1 gpa=0x10000 len=4 ")
        self.assertIn("host-check: unchanged through the VMM's read-only mapping", res.out)
        self.assertIn("host-check: unchanged through another VM's read-write view", res.out)
        self.assertEqual(self.region_words(LENGTH // 4), want, "the write attempt changed the region")

    def test_write_attempt_without_readonly_mem(self):
        """A read-only mapping in a slot without KVM_MEM_READONLY: KVM_RUN fails, nothing changes."""
        self.write_pattern()
        res = self.vmm("write-attempt", self.reader, self.region, f"--length={LENGTH}",
                       "--no-readonly-mem", f"--check-vm={self.writer}")
        self.assertIn("flags=0", res.out)
        self.assertEqual(self.outcome(res), "efault", res.out)
        self.assertIn("ioctl KVM_RUN failed with EFAULT", res.out)
        self.assertEqual(self.region_words(LENGTH // 4), pattern(SEED, LENGTH // 4),
                         "the write attempt changed the region")

    def test_read_with_get_fd(self):
        """A VMM that takes its existing view again with GetFd reads the same words."""
        self.write_pattern()
        self.attach(self.reader, self.region, "ro")
        res = self.vmm("read", self.reader, self.region, "--get-fd", "--expect-pattern",
                       f"--seed={SEED:#x}", f"--length={LENGTH}")
        self.assertIn("call=GetFd", res.out)
        self.assertIn("pattern: the guest read the pattern", res.out)

    def test_check_mode_sees_a_mismatch(self):
        """check (no KVM) fails on a region that does not hold the pattern, naming the word."""
        res = self.vmm("check", self.reader, self.region, f"--seed={SEED:#x}", "--length=4K", expect=1)
        self.assertIn("word 0 (byte 0) is 0x00000000", res.err)

    def test_vm_fd_handoff(self):
        """A VM fd in a forked child or received over a UNIX socket gets EIO."""
        res = self.vmm("vm-fd-handoff")
        self.assertRegex(res.out, r"a child after fork\(\), fds inherited \(pid \d+\): "
                                  r"KVM_CREATE_VCPU\(vm fd\) = -1 EIO")
        self.assertRegex(res.out, r"received the fds over a UNIX socket \(pid \d+\): "
                                  r"KVM_CREATE_VCPU\(vm fd\) = -1 EIO")
        self.assertRegex(res.out, r"received the fds over a UNIX socket \(pid \d+\): "
                                  r"KVM_CREATE_GUEST_MEMFD\(vm fd\) = -1 EIO")
        self.assertIn("KVM_RUN on its vCPU ran the guest to done", res.out)

    def test_probe_gmem(self):
        """probe-gmem names every capability and tries KVM_CREATE_GUEST_MEMFD on a default VM."""
        res = self.run_cmd([TINY_VMM, "probe-gmem"], expect=None, timeout=60)
        print(f"$ tiny-vmm probe-gmem (exit {res.rc})\n{res.out}{res.err}", end="", file=sys.stderr)
        self.assertIn(res.rc, (0, 77), f"tiny-vmm probe-gmem exited {res.rc}:\n{res.err}")
        for cap in ("KVM_CAP_GUEST_MEMFD (234)", "KVM_CAP_GUEST_MEMFD_FLAGS (244)", "KVM_CAP_VM_TYPES (235)",
                    "KVM_CAP_MEMORY_ATTRIBUTES (233)", "KVM_CAP_USER_MEMORY2 (231)"):
            self.assertRegex(res.out, rf"(?m)^probe-gmem: {re.escape(cap)}: /dev/kvm \S+.*, default VM \S+")
        self.assertRegex(res.out, r"(?m)^probe-gmem: KVM_CREATE_GUEST_MEMFD on a KVM_X86_DEFAULT_VM \(type 0\) VM")
        if res.rc == 77:
            self.assertIn("probe-gmem: result: no guest_memfd", res.out)
            self.assertIn("guest_memfd is not available", res.err)
        else:
            self.assertIn("probe-gmem: result: KVM made a guest_memfd", res.out)

    def test_loop(self):
        """loop: the guest writes the pattern and sums it round after round, every sum the pattern's,
        until --timeout; then a read-only VMM's loop finds the same sums."""
        res = self.vmm("loop", self.writer, self.region, "--write-pattern", f"--seed={SEED:#x}",
                       f"--length={LENGTH}", "--interval=50", "--timeout=3")
        want = checksum(pattern(SEED, LENGTH // 4))
        sums = [int(m, 16) for m in re.findall(r"(?m)^round: \d+ sum=0x([0-9a-f]{8}) ok$", res.out)]
        self.assertGreaterEqual(len(sums), 2, "the guest did not complete two rounds in 3 s")
        self.assertEqual(set(sums), {want}, "a round's sum is not the pattern's")
        self.assertIn("loop-state: running", res.out)
        self.assertNotIn("loop-state: faulting", res.out)
        self.assertRegex(res.out, r"(?m)^stopped: by --timeout after \d+ rounds and 0 failed KVM_RUN calls; "
                                  r"the guest was running$")
        self.assertEqual(self.region_words(LENGTH // 4), pattern(SEED, LENGTH // 4),
                         "the region does not hold the pattern the looping guest wrote")
        res = self.vmm("loop", self.reader, self.region, "--expect-pattern", f"--seed={SEED:#x}",
                       f"--length={LENGTH}", "--interval=50", "--timeout=2")
        self.assertIn("access=ro", res.out)
        self.assertRegex(res.out, rf"(?m)^round: 1 sum=0x{want:08x} ok$")

    def test_bad_usage(self):
        """Bad arguments exit 2 with a message; a broker refusal exits 1 with the broker's."""
        for args, text in [
            ([], "no mode given"),
            (["fly", "a", "b"], "unknown mode 'fly'"),
            (["read", self.reader], "read takes a VM and a region"),
            (["read", "bad/name", self.region], "invalid VM or region name"),
            (["read", "--length=3", self.reader, self.region], "multiple of 4"),
            (["read", "--length=2M", self.reader, self.region], "multiple of 4 from 4"),
            (["read", "--seed=0x100000000", self.reader, self.region], "--seed= takes a 32-bit number"),
            (["write-attempt", "--access=rw", self.reader, self.region], "needs a read-only view"),
            (["write", "--check-vm=x", self.writer, self.region], "--check-vm= is for write-attempt"),
            (["probe", "extra"], "probe takes no arguments"),
            (["probe-gmem", "extra"], "probe-gmem takes no arguments"),
            (["read", "--write-pattern", self.reader, self.region], "--write-pattern and --interval= are for loop"),
            (["read", "--interval=10", self.reader, self.region], "--write-pattern and --interval= are for loop"),
            (["loop", "--interval=0", self.reader, self.region], "--interval= takes milliseconds"),
            (["loop", "--interval=60001", self.reader, self.region], "--interval= takes milliseconds"),
            (["loop", "--print-words", self.reader, self.region], "--print-words is for read"),
            (["loop", "--fd=x", self.reader, self.region], "--fd= takes a file descriptor number"),
            (["loop", "--fd=-1", self.reader, self.region], "--fd= takes a file descriptor number"),
            (["write-attempt", "--fd=3", self.reader, self.region], "--fd= is for write, read, loop and check"),
            (["loop", "--fd=3", "--get-fd", self.reader, self.region], "--fd= is for write, read, loop and check"),
            (["probe", "--fd=3"], "--fd= is for write, read, loop and check"),
            (["--bogus", "probe"], "unknown option '--bogus'"),
        ]:
            res = self.vmm(*args, expect=2)
            self.assertIn(text, res.err, f"tiny-vmm {args}")
        res = self.vmm("read", self.reader, "no-such-region", expect=1)
        self.assertIn("org.gmemd.Broker1.Error.NoSuchRegion", res.err)
        small = self.create_region(64 * 1024)
        res = self.vmm("read", self.reader, small, "--length=128K", expect=2)
        self.assertIn("--length=131072 is more than the view's 65536 bytes", res.err)


if __name__ == "__main__":
    gmemtest.main()
