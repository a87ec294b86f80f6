#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
gmemctl hotplug and unplug against a running QEMU (the system's, 7.2 on
bookworm) with a TCG guest.

The guest (Debian's 6.1 cloud kernel, guest-init.c in its gmemhotplug mode,
memhp_default_state=online_movable) boots with 256 MiB and room for DIMMs
(-m 256M,slots=2,maxmem=1G). `gmemctl hotplug VM REGION --qmp=SOCKET`
plugs a 128 MiB memfd region into it as a pc-dimm; the guest onlines the
new memory block, finds pages of the DIMM among anonymous memory it touches
(/proc/self/pagemap) and writes a pattern into them that names each page's
offset in the DIMM. The test reads the region through another VM's
read-only view and finds exactly the pages the guest wrote, at the offsets
it wrote them, with the words it wrote. Then the guest lets the pages go
(the test writes a line to its second serial port), `gmemctl unplug` takes
the DIMM out (device_del, DEVICE_DELETED, object-del), the guest's memory
block count is back to what it was, and nothing is left behind: no fdset
in QEMU (query-fdsets), no memory device, no backend object, no view in
gmemd and no extra fd in gmemd.

The failure path: a QEMU started without slots and maxmem refuses
device_add; gmemctl's error names device_add and QEMU's error class, and
nothing stays (no backend object, no fdset, no view). A QEMU whose guest
does not answer ACPI (firmware only) keeps the DIMM: unplug gives up after
--timeout= and leaves the DIMM, its backend and the view; there a hugetlb
region is plugged too, and QEMU maps it with huge pages. A region on a
backend whose views QEMU cannot re-open (secret) is refused before QEMU is
asked.

Skipped (77) with the reason when QEMU, the kernel image
(tests/vm/install-deps), a static libc, dbus-daemon or python3-dbus is
missing; a failure instead with GMEM_TEST_REQUIRE_DEPS=1.
"""

import json
import mmap
import os
import re
import socket
import struct
import sys
import time

import gmemtest
from gmemtest import GmemTestCase, MiB

import qemuvm

GUEST_RAM = 256 * MiB
DIMM = 128 * MiB
BOOT_TIMEOUT = 150
PAGE = 4096
MAGIC = 0x676d656d686f7470      # "gmemhotp", guest-init.c's HOTPLUG_MAGIC
SEED = 0x5eed
M64 = (1 << 64) - 1


def check_host():
    try:
        qemu = qemuvm.find_qemu()
        kernel = qemuvm.find_kernel("6.1")
        qemuvm.find_cc()
    except qemuvm.Unavailable as e:
        gmemtest.skip_file(str(e), dependency=True)
    return qemu, kernel


QEMU, KERNEL = check_host()


def mapped_page_sizes(pid, ino):
    """The page sizes (KernelPageSize, bytes) of a process's mappings of inode ino."""
    out, mine = set(), False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if parts and not parts[0].endswith(":"):
                mine = len(parts) >= 5 and parts[4] == str(ino)
            elif mine and parts[0] == "KernelPageSize:":
                out.add(int(parts[1]) * 1024)
    return out


def splitmix64(x):
    x = (x + 0x9e3779b97f4a7c15) & M64
    x = ((x ^ (x >> 30)) * 0xbf58476d1ce4e5b9) & M64
    x = ((x ^ (x >> 27)) * 0x94d049bb133111eb) & M64
    return x ^ (x >> 31)


def expected_page(off):
    """The 512 words guest-init.c writes into the page at offset off of the DIMM."""
    return [MAGIC, off, SEED] + [splitmix64(SEED ^ off ^ i) | 1 for i in range(3, PAGE // 8)]


class QemuHotplug(GmemTestCase):

    @classmethod
    def setUpClass(cls):
        cls.work = os.path.join(gmemtest.WORLD.tmp, "qemu-hotplug")
        os.makedirs(cls.work, exist_ok=True)
        cls.initrd = qemuvm.build_initramfs(cls.work)
        print(f"QEMU {'.'.join(map(str, QEMU[2]))} ({QEMU[0]}), kernel {KERNEL}", file=sys.stderr)

    def start_qemu(self, name, argv):
        """QEMU with a second QMP socket for the test: the first is gmemctl's
        (a QMP socket takes one client at a time)."""
        test_qmp = os.path.join(self.work, f"{name}.test-qmp")
        argv = argv + ["-qmp", f"unix:{test_qmp},server=on,wait=off"]
        g = qemuvm.Guest(name, argv, self.work)
        self.addCleanup(g.stop)
        try:
            g.qmp = qemuvm.Qmp(test_qmp)
        except Exception:
            raise RuntimeError(f"{name}: no QMP: {g.diagnose()}")
        return g

    def objects(self, g):
        return sorted(o["name"] for o in g.qmp.execute("qom-list", path="/objects"))

    def assert_nothing_left(self, g, vm, objects_before, fds_before):
        self.assertEqual(g.qmp.execute("query-fdsets"), [], "QEMU should hold no fdset afterwards")
        self.assertEqual(g.qmp.execute("query-memory-devices"), [], "QEMU should have no DIMM afterwards")
        self.assertEqual(self.objects(g), objects_before, "QEMU should have no backend object afterwards")
        self.assertEqual(self.views_of_vm(vm), [], "the VM should have no view afterwards")
        self.assertEqual(self.gmemd_fd_count(), fds_before, "gmemd should hold no extra fd afterwards")

    def test_hotplug_unplug(self):
        region, vm, inspector = "hp-ram", "hp-vm", "hp-inspector"
        self.gmemctl("create-region", region, f"{DIMM // MiB}M")
        self.addCleanup(self._quietly, "DestroyRegion", "s", region)
        for v in (vm, inspector):
            self.gmemctl("register-vm", v)
            self.addCleanup(self._quietly, "UnregisterVm", "s", v)
        self.with_spare(inspector, region)
        fds_before = self.gmemd_fd_count()

        ctl = os.path.join(self.work, "guest.ctl")
        argv = qemuvm.qemu_argv(QEMU, KERNEL, self.initrd, GUEST_RAM, self.work, "guest",
                                maxmem=1024 * MiB, slots=2,
                                append=f"gmemhotplug={DIMM // MiB} memhp_default_state=online_movable",
                                extra=["-serial", f"unix:{ctl},server=on,wait=off"])
        g = self.start_qemu("guest", argv)
        objects_before = self.objects(g)
        t0 = time.monotonic()
        m = g.wait_console(r"^gmem-hotplug: ready blocks=(\d+) block_size=(0x[0-9a-f]+)", BOOT_TIMEOUT)
        blocks_before, block_size = int(m.group(1)), int(m.group(2), 16)
        print(f"guest up after {time.monotonic() - t0:.1f} s: {blocks_before} memory blocks of "
              f"{block_size // MiB} MiB", file=sys.stderr)

        # 1. Plug: the VM gets a view, QEMU a DIMM on it, and no fdset stays.
        t1 = time.monotonic()
        res = self.gmemctl("--json=short", "hotplug", vm, region, f"--qmp={g.qmp_path}", timeout=120)
        print(f"gmemctl hotplug took {time.monotonic() - t1:.2f} s: {res.out.strip()}", file=sys.stderr)
        row, = json.loads(res.out)
        self.assertEqual((row["vm"], row["region"], row["device"], row["memdev"], row["size"]),
                         (vm, region, f"dimm-{vm}.{region}", f"mem-{vm}.{region}", DIMM),
                         "hotplug should report the DIMM it made")
        self.assertEqual(self.views_of_vm(vm), [(region, "rw", "active")],
                         "the VM should have an active read-write view of the region")
        self.assertEqual(g.qmp.execute("query-fdsets"), [],
                         "the fdset should be gone once the backend has re-opened the fd")
        devices = g.qmp.execute("query-memory-devices")
        self.assertEqual([(d["type"], d["data"]["id"], d["data"]["size"], d["data"]["addr"]) for d in devices],
                         [("dimm", f"dimm-{vm}.{region}", DIMM, row["address"])],
                         "QEMU should list the DIMM at the address gmemctl printed")

        # 2. The guest sees the memory and writes into it.
        m = g.wait_console(r"^gmem-hotplug: online blocks=(\d+) base=(0x[0-9a-f]+) size=(0x[0-9a-f]+)", 60)
        self.assertEqual((int(m.group(1)), int(m.group(2), 16), int(m.group(3), 16)),
                         (DIMM // block_size, row["address"], DIMM),
                         "the guest should online the DIMM's memory blocks at the DIMM's address")
        m = g.wait_console(r"^gmem-hotplug: wrote pages=(\d+) of (\d+) sum=(0x[0-9a-f]+)", 60)
        written, touched, wsum = int(m.group(1)), int(m.group(2)), int(m.group(3), 16)
        samples = [int(x, 16) for x in re.findall(r"^gmem-hotplug: page offset=(0x[0-9a-f]+)",
                                                 g.console_text(), re.M)]
        self.assertGreater(written, 0, "the guest should find pages of the DIMM among its anonymous memory")

        # 3. The host reads them through another VM's read-only view.
        fd = self.attach(inspector, region, "ro")
        with mmap.mmap(fd, DIMM, mmap.MAP_SHARED, mmap.PROT_READ) as view:
            found = [off for off in range(0, DIMM, PAGE)
                     if struct.unpack_from("<Q", view, off)[0] == MAGIC]
            headers_ok = all(struct.unpack_from("<QQ", view, off)[1] == off for off in found)
            full = samples + found[:32]
            bad = [off for off in full
                   if list(struct.unpack_from(f"<{PAGE // 8}Q", view, off)) != expected_page(off)]
        self.close_fd(fd)
        self.gmemctl("detach", inspector, region)
        print(f"guest wrote {written} of {touched} touched pages into the DIMM; the host found "
              f"{len(found)} with the pattern, {len(full)} checked word by word, {len(bad)} bad",
              file=sys.stderr)
        self.assertEqual(len(found), written, "the host should find as many pattern pages as the guest wrote")
        self.assertTrue(headers_ok, "each page should name its own offset in the DIMM")
        self.assertEqual(sum(found) & M64, wsum, "the pages should be at the offsets the guest wrote")
        self.assertEqual(bad, [], "every word of the checked pages should be what the guest wrote")

        # 4. Unplug: the guest gives the memory back, QEMU and gmemd let go.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(ctl)
            s.sendall(b"release\n")
            g.wait_console(r"^gmem-hotplug: released", 60)
        t2 = time.monotonic()
        self.gmemctl("unplug", vm, region, f"--qmp={g.qmp_path}", "--timeout=90", timeout=120)
        print(f"gmemctl unplug took {time.monotonic() - t2:.2f} s", file=sys.stderr)
        m = g.wait_console(r"^gmem-hotplug: removed blocks=(\d+)", 60)
        self.assertEqual(int(m.group(1)), blocks_before, "the guest should be back to its memory blocks")
        print("the guest said:\n  " + "\n  ".join(l for l in g.console_text().split("\n")
                                                 if l.startswith("gmem-hotplug:")), file=sys.stderr)
        self.assert_nothing_left(g, vm, objects_before, fds_before)

        # Again: QEMU has nothing to take out any more; only the detach fails.
        res = self.gmemctl("unplug", vm, region, f"--qmp={g.qmp_path}", expect=1)
        self.assertNotIn("QMP command", res.err, "a DIMM and backend that are gone are skipped")
        self.assertIn(region, res.err, "the broker's refusal to detach names the region")

    def test_no_slots(self):
        """device_add fails in a QEMU without slots and maxmem: the error
        names it, and everything made before is taken back."""
        region, vm = "ns-ram", "ns-vm"
        self.gmemctl("create-region", region, "64M")
        self.addCleanup(self._quietly, "DestroyRegion", "s", region)
        self.gmemctl("register-vm", vm)
        self.addCleanup(self._quietly, "UnregisterVm", "s", vm)
        self.with_spare(vm, region)
        fds_before = self.gmemd_fd_count()

        # Running, not -S: QEMU closes a removed fd only while the VM runs
        # (monitor_fdset_cleanup), and lists it in query-fdsets until then.
        path, extra, _ = QEMU
        qmp = os.path.join(self.work, "noslots.qmp")
        g = self.start_qemu("noslots", [path] + extra + [
            "-accel", "tcg", "-machine", "q35", "-m", "128M", "-nodefaults", "-display", "none",
            "-qmp", f"unix:{qmp},server=on,wait=off"])
        objects_before = self.objects(g)

        res = self.gmemctl("hotplug", vm, region, f"--qmp={qmp}", expect=1)
        print(f"gmemctl said: {res.err.strip()}", file=sys.stderr)
        self.assertIn("QMP command device_add", res.err, "the error should name the QMP command")
        self.assertIn("GenericError", res.err, "the error should carry QEMU's error class")
        self.assert_nothing_left(g, vm, objects_before, fds_before)

        # A view the VM had before stays; the DIMM's objects still go.
        self.gmemctl("attach", vm, region)
        res = self.gmemctl("hotplug", vm, region, f"--qmp={qmp}", "--id=x1", expect=1)
        self.assertIn("QMP command device_add", res.err)
        self.assertEqual(self.views_of_vm(vm), [(region, "rw", "active")],
                         "a view the VM had before the hotplug should stay")
        self.assertEqual(g.qmp.execute("query-fdsets"), [])
        self.assertEqual(self.objects(g), objects_before)

    def firmware_only_qemu(self, name):
        """A running QEMU with room for DIMMs but no guest OS: nothing in it
        answers ACPI, so no DIMM ever leaves."""
        path, extra, _ = QEMU
        qmp = os.path.join(self.work, f"{name}.qmp")
        g = self.start_qemu(name, [path] + extra + [
            "-accel", "tcg", "-machine", "q35", "-m", "128M,slots=2,maxmem=1G", "-nodefaults",
            "-display", "none", "-qmp", f"unix:{qmp},server=on,wait=off"])
        return g, qmp

    def test_unplug_timeout(self):
        """When the guest does not let the DIMM go, unplug says so after
        --timeout= and leaves the DIMM, its backend and the view; a hugetlb
        region is plugged as a memfd one is, and QEMU maps it with huge pages."""
        g, qmp = self.firmware_only_qemu("nofw")
        hp = gmemtest.hugepage_meminfo("Hugepagesize")
        regions = [("to-ram", "memfd", 64 * MiB)]
        if hp == 2 * MiB:
            self.reserve_hugepages(1)
            regions.append(("to-huge", "hugetlb", hp))
        else:
            print(f"the default huge page size is {hp} bytes: the hugetlb DIMM is left out", file=sys.stderr)
        vm = "to-vm"
        self.gmemctl("register-vm", vm)
        self.addCleanup(self._quietly, "UnregisterVm", "s", vm)
        for region, backend, size in regions:
            self.gmemctl(f"--backend={backend}", "create-region", region, str(size))
            self.addCleanup(self._quietly, "DestroyRegion", "s", region)
            row, = json.loads(self.gmemctl("--json=short", "hotplug", vm, region, f"--qmp={qmp}").out)
            self.assertEqual(row["size"], size, f"the {backend} DIMM is as large as the region")
            if backend == "hugetlb":
                ino = os.fstat(self.keep_fd(self.get_fd(vm, region))).st_ino
                self.assertEqual(mapped_page_sizes(g.proc.pid, ino), {hp},
                                 "QEMU should map a hugetlb DIMM with huge pages")
        self.assertEqual(len(g.qmp.execute("query-memory-devices")), len(regions))
        self.assertEqual(g.qmp.execute("query-fdsets"), [])

        t0 = time.monotonic()
        res = self.gmemctl("unplug", vm, "to-ram", f"--qmp={qmp}", "--timeout=2", expect=1)
        waited = time.monotonic() - t0
        print(f"gmemctl said after {waited:.1f} s: {res.err.strip()}", file=sys.stderr)
        self.assertIn("no DEVICE_DELETED within 2 s", res.err, "unplug should say what it waited for")
        self.assertGreaterEqual(waited, 2, "unplug should wait the whole --timeout=")
        self.assertIn("mem-to-vm.to-ram", self.objects(g), "the backend should stay")
        self.assertIn(("to-ram", "rw", "active"), self.views_of_vm(vm), "the view should stay")
        # QEMU goes before the huge page it maps is given back to the pool.
        g.stop()

    def test_refused(self):
        """What gmemctl refuses before it talks to QEMU."""
        vm = "rf-vm"
        self.gmemctl("register-vm", vm)
        self.addCleanup(self._quietly, "UnregisterVm", "s", vm)
        nowhere = os.path.join(self.work, "nothing.qmp")
        res = self.gmemctl("hotplug", vm, "rf-ram", expect=2)
        self.assertIn("--qmp=SOCKET", res.err, "hotplug should ask for the QMP socket")
        res = self.gmemctl("hotplug", vm, "rf-ram", f"--qmp={nowhere}", "--id=a/b", expect=2)
        self.assertIn("Invalid --id='a/b'", res.err)
        if gmemtest.memfd_secret_works():
            self.gmemctl("--backend=secret", "create-region", "rf-ram", "2M")
            self.addCleanup(self._quietly, "DestroyRegion", "s", "rf-ram")
            res = self.gmemctl("hotplug", vm, "rf-ram", f"--qmp={nowhere}", expect=1)
            self.assertIn("secret backend", res.err, "a secret region should be refused with the reason")
            self.assertEqual(self.views_of_vm(vm), [], "a refused hotplug should attach nothing")
        else:
            print("memfd_secret is not available here: the secret refusal is not checked", file=sys.stderr)


if __name__ == "__main__":
    gmemtest.main()
