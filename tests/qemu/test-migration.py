#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The qemu suite: a real QEMU guest on broker memory, migrated to a new QEMU
process on the same host without copying its RAM.

The flow is the one a person would type (see README.md, "QEMU on broker
memory"): gmemctl create-region and register-vm; the source QEMU started by
`gmemctl attach VM REGION --exec`, its RAM a memory-backend-file on
/proc/self/fd/$GMEM_FD with share=on; the guest (Debian's cloud kernel and
guest-init.c as /init) fills most of its RAM with non-zero pseudo-random
data and prints heartbeats; the target QEMU started by `gmemctl migrate SRC
DST --no-commit --exec` with -incoming defer on its own view of the same
memory; QMP x-ignore-shared on both sides and a migration over a UNIX socket
through a relay that counts the stream; then `gmemctl commit-migration`.

What must hold: the guest runs on in the target (its heartbeat counter, kept
in guest RAM, goes on without a gap or a restart, its checksum and its check
of the whole buffer do not change), the stream carries less than 1% of the
guest's RAM, both QEMUs map the broker's inode, and after the commit the
source's view is revoked (GetFd: NoSuchView) while the target's is active.

The same flow runs on a hugetlb region (256 MiB, on huge pages the test
reserves through vm.nr_hugepages as root and gives back; skipped with the
reason when the kernel refuses): QEMU's memory-backend-file needs no
option for it, it finds the huge page size from the file, and both QEMUs
must map the region with 2 MiB pages; the stream stays under 1%, and the
guest reads its whole buffer back in the target without a bad word.

The same flow runs with QEMU 10's cpr-transfer mode instead of
x-ignore-shared when the QEMU under test has it (skipped with the reason
on 7.2, a failure with GMEM_QEMU_BACKPORTS=1 or GMEM_QEMU_TRIXIE_BACKPORTS=1):
the new QEMU re-opens its RAM from the mem-path it was given, so it needs
the broker's fd just the same, and QEMU's own memfds (ROMs) go over the cpr
channel by SCM_RIGHTS instead of the stream.

Skipped (77) with the reason when QEMU, the kernel image (tests/vm/install-deps),
a static libc, dbus-daemon or python3-dbus is missing; a failure instead
with GMEM_TEST_REQUIRE_DEPS=1, since tools/test installs all of them. The QEMU is the
system's unless GMEM_QEMU (a binary), GMEM_QEMU_ROOT (an unpacked tree),
GMEM_QEMU_BACKPORTS=1 (bookworm-backports' QEMU 10.0, which
tests/qemu/install-qemu-backports unpacked) or GMEM_QEMU_TRIXIE_BACKPORTS=1
(trixie-backports' QEMU 11.1, which it installed in the trixie build root)
say otherwise.
"""

import json
import os
import sys
import time

import gmemtest
from gmemtest import (GmemTestCase, MiB, PAGE, hugepage_meminfo, mmap_raw, munmap, peek, PROT_READ,
                      MAP_SHARED)

import qemuvm

GUEST_RAM = 512 * MiB
# The hugetlb guest is smaller: every byte of it is a reserved huge page.
HUGETLB_GUEST_RAM = 256 * MiB
BOOT_TIMEOUT = 120


def check_host():
    try:
        qemu = qemuvm.find_qemu()
        kernel = qemuvm.find_kernel("6.1")
        qemuvm.find_cc()
    except qemuvm.Unavailable as e:
        # All of it is what tools/test installs (packages, install-deps, install-qemu-backports).
        gmemtest.skip_file(str(e), dependency=True)
    return qemu, kernel


QEMU, KERNEL = check_host()


def mapped_inodes(pid):
    """Inode numbers of the memfd mappings of a process."""
    out = set()
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and parts[5].startswith("/memfd:"):
                out.add(int(parts[4]))
    return out


def mapped_page_sizes(pid, ino):
    """The page sizes (KernelPageSize, in bytes) of a process's mappings of inode ino."""
    out = set()
    mine = False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if parts and not parts[0].endswith(":"):
                # A mapping's first line: range, perms, offset, dev, inode[, path].
                mine = len(parts) >= 5 and parts[4] == str(ino)
            elif mine and parts[0] == "KernelPageSize:":
                out.add(int(parts[1]) * 1024)
    return out


class QemuMigration(GmemTestCase):

    @classmethod
    def setUpClass(cls):
        cls.work = os.path.join(gmemtest.WORLD.tmp, "qemu")
        os.makedirs(cls.work, exist_ok=True)
        cls.initrd = qemuvm.build_initramfs(cls.work)
        print(f"QEMU {'.'.join(map(str, QEMU[2]))} ({QEMU[0]}), kernel {KERNEL}",
              file=sys.stderr)

    def start(self, name, gmemctl_args, guest_ram=GUEST_RAM, **argv_opts):
        """QEMU started by gmemctl with the view in $GMEM_FD."""
        argv = qemuvm.qemu_argv(QEMU, KERNEL, self.initrd, guest_ram, self.work, name,
                                mem_fd_expr="$GMEM_FD", **argv_opts)
        g = qemuvm.Guest(name, [self.world.gmemctl] + gmemctl_args + ["--exec", "--"]
                         + qemuvm.through_shell(argv), self.work, env=self.world.env)
        self.addCleanup(g.stop)
        return g

    def migration_id(self, src, timeout=30):
        """The id of the migration gmemctl migrate (started in the
        background) has begun from src, once it shows in list-migrations."""
        deadline = time.monotonic() + timeout
        while True:
            rows = json.loads(self.gmemctl("--json=short", "list-migrations").out)
            ids = [r["id"] for r in rows if r["source"] == src and r["state"] == "prepared"]
            if ids or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(len(ids), 1, f"one prepared migration from {src}: {rows}")
        self.addCleanup(self._quietly_path, f"{gmemtest.ROOT_PATH}/migration/{ids[0]}",
                        "AbortMigration")
        return str(ids[0])

    def sample_nonzero(self, vm, region, guest_ram, samples=2048):
        """Fraction of pages (evenly sampled) of the region that hold non-zero
        data, read through a read-only view of an inspector VM."""
        self.gmemctl("register-vm", vm)
        self.addCleanup(self._quietly, "UnregisterVm", "s", vm)
        fd = self.attach(vm, region, "ro")
        addr = mmap_raw(fd, guest_ram, PROT_READ, MAP_SHARED)
        try:
            step = guest_ram // samples // PAGE * PAGE
            nonzero = sum(1 for i in range(samples)
                          if peek(addr + i * step, PAGE).count(0) < PAGE)
        finally:
            munmap(addr, guest_ram)
            self.close_fd(fd)
            self.gmemctl("unregister-vm", vm)
        return nonzero / samples

    def migrate_guest(self, mode, backend=None, guest_ram=GUEST_RAM, min_fill=(3, 4),
                      page_size=None, check_whole_buffer=False):
        """The whole flow with mode "x-ignore-shared" or "cpr-transfer", on a
        region of backend (the broker's default without one).
        check_whole_buffer: wait until the guest, in the target, has checked
        every word of its buffer once more. min_fill: the
        part of its RAM (a fraction, as a pair) that the guest must fill and
        the inspector must find non-zero. page_size: the page size both QEMUs
        must map the region with."""
        cpr = mode == "cpr-transfer"
        tag = f"{mode}-{backend}" if backend else mode
        region, src, dst = f"ram-{tag}", f"guest-{tag}", f"guest-{tag}-new"
        self.gmemctl(*([f"--backend={backend}"] if backend else []),
                     "create-region", region, f"{guest_ram // MiB}M")
        self.addCleanup(self._quietly, "DestroyRegion", "s", region)
        for vm in (src, dst):
            self.gmemctl("register-vm", vm)
            self.addCleanup(self._quietly, "UnregisterVm", "s", vm)

        # 1. The source QEMU on the source's view; the guest fills its RAM.
        source = self.start(f"{tag}-source", ["attach", src, region], guest_ram=guest_ram,
                            aux_ram_share=cpr)
        source.connect()
        m = source.wait_console(r"^gmem-guest: filled (\d+) MiB in (\d+) ms sum=([0-9a-f]+)",
                                BOOT_TIMEOUT)
        filled, fill_sum = int(m.group(1)) * MiB, int(m.group(3), 16)
        source.wait_beats(3, 30)
        num, den = min_fill
        self.assertGreater(filled, guest_ram * num // den,
                           f"the guest should fill more than {num}/{den} of its RAM with random data")
        allocated = int(self.region_prop(region, "AllocatedBytes"))
        self.assertGreater(allocated, filled,
                           "the region should hold at least the pages the guest filled "
                           f"(AllocatedBytes {allocated}, filled {filled})")
        nonzero = self.sample_nonzero(f"inspector-{tag}", region, guest_ram)
        self.assertGreater(nonzero, num / den,
                           f"more than {num}/{den} of the region's pages should hold non-zero data "
                           f"(sampled {nonzero:.0%})")
        region_ino = os.fstat(self.get_fd(src, region)).st_ino
        self.assertIn(region_ino, mapped_inodes(source.proc.pid),
                      "the source QEMU should map the region's inode")
        if page_size:
            self.assertEqual(mapped_page_sizes(source.proc.pid, region_ino), {page_size},
                             f"the source QEMU should map the region with {page_size // 1024} KiB pages")

        # 2. The target QEMU on a pending view of the same memory. With
        # cpr-transfer its monitor only starts once the source has sent the
        # cpr state, so it is looked at after the migration.
        main_sock = os.path.join(self.work, f"{tag}.main")
        cpr_sock = os.path.join(self.work, f"{tag}.cpr")
        target = self.start(f"{tag}-target", ["migrate", src, dst, "--no-commit"], guest_ram=guest_ram,
                            incoming=f"unix:{main_sock}" if cpr else "defer",
                            aux_ram_share=cpr, cpr_incoming=cpr_sock if cpr else None)
        mid = self.migration_id(src)
        self.assertIn(f"{region}:rw:pending",
                      self.gmemctl("--no-legend", "list-vms").out,
                      "the target's view should be pending until the commit")
        if not cpr:
            target.connect()
            self.assertEqual(target.qmp.execute("query-status")["status"], "inmigrate",
                             "the target QEMU should wait for an incoming migration")
        with open(f"/proc/{target.proc.pid}/environ", "rb") as f:
            env = dict(e.split(b"=", 1) for e in f.read().split(b"\0") if b"=" in e)
        self.assertEqual(env.get(b"GMEM_MIGRATION", b"").decode(), mid,
                         "the target QEMU should find the migration's id in $GMEM_MIGRATION")

        # 3. Migrate the device state; RAM stays where it is.
        if cpr:
            info = qemuvm.migrate_cpr_transfer(source, target, self.work, main_sock, cpr_sock,
                                               relay=True)
        else:
            info = qemuvm.migrate(source, target, self.work, ignore_shared=True, relay=True, tag=tag)
        ram = info.get("ram", {})
        print(f"{tag}: {guest_ram // MiB} MiB guest, stream {info['stream_bytes']} B (QEMU's RAM figure "
              f"{ram.get('transferred')} B), total {info.get('total-time')} ms, "
              f"downtime {info.get('downtime')} ms, target running after "
              f"{info['wall_target_running_s'] * 1000:.0f} ms", file=sys.stderr)
        self.assertLess(info["stream_bytes"], guest_ram // 100,
                        "the migration stream should carry less than 1% of the guest's RAM "
                        f"({info['stream_bytes']} bytes for {guest_ram} bytes of RAM)")
        self.assertLess(ram.get("transferred", 0), guest_ram // 100,
                        "QEMU should count less than 1% of the guest's RAM as transferred")
        self.assertEqual(source.qmp.execute("query-status")["status"], "postmigrate",
                         "the source QEMU should be stopped after the migration")
        self.assertIn(region_ino, mapped_inodes(target.proc.pid),
                      "the target QEMU should map the same inode as the source")
        if page_size:
            self.assertEqual(mapped_page_sizes(target.proc.pid, region_ino), {page_size},
                             f"the target QEMU should map the region with {page_size // 1024} KiB pages")

        # 4. The guest runs on in the target, memory intact.
        target.wait_beats(5, 30)
        text = source.console_text() + target.console_text()
        seq = [tuple(int(m.group(i), 16 if i == 2 else 10) for i in (1, 2, 3))
               for m in (qemuvm.Guest.HB.match(l.strip()) for l in text.split("\n")[:-1]) if m]
        counters = [c for c, _, _ in seq]
        self.assertEqual(counters, list(range(1, len(counters) + 1)),
                         "the heartbeat counter should go on across the migration without "
                         "a gap or a restart")
        last_source = source.heartbeats()[-1][0]
        self.assertGreater(target.heartbeats()[-1][0], last_source + 3,
                           "the target should print heartbeats beyond the source's last")
        self.assertEqual({s for _, s, _ in seq}, {fill_sum},
                         "the checksum of the guest's memory should never change")
        self.assertEqual({b for _, _, b in seq}, {0},
                         "the guest's check of its buffer should find no bad word")
        if check_whole_buffer:
            # Each heartbeat checks the next 8 MiB of the buffer: once the
            # target has checked as many MiB as the buffer holds, every word
            # the source wrote has been read back in the target.
            want = source.heartbeats()[-1][3] + filled // MiB
            deadline = time.monotonic() + 180
            while target.heartbeats()[-1][3] < want and time.monotonic() < deadline:
                time.sleep(0.5)
            last = target.heartbeats()[-1]
            self.assertGreaterEqual(last[3], want,
                                    f"the target should check the whole {filled // MiB} MiB buffer "
                                    f"within 180 s: {target.diagnose()}")
            self.assertEqual(last[2], 0,
                             "every word of the guest's buffer should read back in the target as "
                             "the source wrote it")

        # 5. Commit: the target's view is active, the source's revoked.
        self.gmemctl("commit-migration", mid)
        self.assertMgrError("NoSuchView", "GetFd", "ss", src, region, contains=[src])
        r = self.gmemctl("get-fd", src, region, expect=1)
        self.assertIn("gmemctl:", r.err, "gmemctl should report the refusal")
        self.assertEqual(os.fstat(self.get_fd(dst, region)).st_ino, region_ino,
                         "the target's view should be of the same inode")
        vms = self.gmemctl("--no-legend", "list-vms").out
        self.assertIn(f"{region}:rw", vms)
        self.assertNotIn("pending", vms, "no view should be pending after the commit")

        # 6. The source can go; the guest does not notice.
        source.stop()
        target.wait_beats(3, 30)
        self.assertEqual({b for _, _, b, _ in target.heartbeats()}, {0},
                         "the guest should find its memory intact after the source quit")

    def test_x_ignore_shared(self):
        self.migrate_guest("x-ignore-shared")

    def test_x_ignore_shared_hugetlb(self):
        """The same flow on a hugetlb region: QEMU's memory-backend-file on
        /proc/self/fd/N of a MFD_HUGETLB memfd finds the huge page size
        itself (fstatfs says hugetlbfs), and x-ignore-shared skips the
        block as for memfd. The guest reads back its whole buffer in the
        target."""
        hp = hugepage_meminfo("Hugepagesize")
        if hp == 0 or HUGETLB_GUEST_RAM % hp:
            self.skip_or_fail(f"the default huge page size ({hp} bytes) does not divide the guest's "
                              f"{HUGETLB_GUEST_RAM // MiB} MiB", dependency=False)
        # Every page of the guest may be touched (by the guest, or by the
        # inspector's read), and QEMU's shared mapping reserves them all.
        self.reserve_hugepages(HUGETLB_GUEST_RAM // hp)
        # The kernel keeps a larger part of a smaller guest: 256 MiB fill about
        # 2/3 (170 MiB), still 60 times what the stream may carry.
        self.migrate_guest("x-ignore-shared", backend="hugetlb", guest_ram=HUGETLB_GUEST_RAM,
                           min_fill=(1, 2), page_size=hp, check_whole_buffer=True)

    def test_cpr_transfer(self):
        if QEMU[2] < (10, 0, 0):
            # Not there before QEMU 10: qemu-migration-10 and -11 run it.
            # Asked for a backported QEMU, an older one is a missing dependency.
            self.skip_or_fail(f"cpr-transfer needs QEMU 10.0, this is "
                              f"{'.'.join(map(str, QEMU[2]))} (qemu-migration-10 and -11 run it with "
                              f"the QEMUs that tests/qemu/install-qemu-backports provides)",
                              dependency=any(os.environ.get(v) == "1" for v in
                                             ("GMEM_QEMU_BACKPORTS", "GMEM_QEMU_TRIXIE_BACKPORTS")))
        self.migrate_guest("cpr-transfer")


if __name__ == "__main__":
    gmemtest.main()
