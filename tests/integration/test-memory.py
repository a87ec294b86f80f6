#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Memory follows the region, not the fds handed out: what DestroyRegion gives
back to the host while a hypervisor still holds a view, how the byte quota
follows it, and what a view file handed out on memfd can still do after it
is detached. Measured on the host (/proc/meminfo's Shmem) and on the very
file a process kept, as the issue that asked for it measured them.
"""
import json
import os
import re
import subprocess

import gmemtest     # before dbus: without python3-dbus it skips the file with the reason

import dbus
from gmemtest import (MiB, PAGE, WRAPPER, GmemTestCase, hugepages_reserved, memfd_secret_works, mmap_raw, munmap, madvise, peek, poke, fallocate,
                      PROT_READ, PROT_WRITE, MAP_SHARED, MADV_REMOVE, FALLOC_FL_KEEP_SIZE,
                      FALLOC_FL_PUNCH_HOLE)

QUOTA = "org.gmemd.Broker1.Error.QuotaExceeded"
REGION = 64 * MiB
BYTES_QUOTA = 256 * MiB
ROUNDS = 6
SLACK = 16 * MiB            # what other processes on the host may do to Shmem meanwhile

POLICY = {
    "version": 1,
    "classes": [
        {"name": "tenant", "match": {"uids": [0]}, "verbs": ["all"], "backends": ["all"],
         "quota": {"bytes": "256M"}},
    ],
}


def meminfo(key):
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            if k == key:
                return int(v.split()[0]) * 1024
    raise AssertionError(f"no {key} in /proc/meminfo")


def man_source(page):
    with open(os.path.join(os.environ["GMEM_SOURCE_ROOT"], "man", page)) as f:
        return f.read()


def guarantee(row):
    """The cells of the row of gmemd(8)'s table of guarantees whose first
    cell contains row: {backend: text}."""
    text = man_source("gmemd.8.scd")
    lines = text[text.index("[[ *guarantee*"):].splitlines()
    n = next(i for i, line in enumerate(lines) if line.startswith("|"))
    header = [re.sub(r"[\[:*| ]", "", h) for h in lines[:n]]
    cells = None
    for line in lines[n:]:
        if not line.strip():
            break
        if line.startswith("|"):
            if cells is not None and row in cells[0]:
                break
            cells = [line[1:].strip()]
        elif line.startswith(":") and cells is not None:
            cells.append(line[1:].strip())
    if cells is None or row not in cells[0]:
        raise AssertionError(f"gmemd(8) has no row of guarantees about {row!r}")
    return dict(zip(header[1:], cells[1:]))


def paragraph(page, start):
    """The paragraph of a man page source whose first line starts with start."""
    text = man_source(page)
    i = text.index("\n" + start) + 1
    j = text.find("\n\n", i)
    return " ".join(text[i:j if j >= 0 else None].split())


class Memory(GmemTestCase):

    @classmethod
    def setUpClass(cls):
        cls.policy_path = gmemtest.WORLD.start_gmemd_with_policy(POLICY)

    def without_quota(self):
        """The same policy without the byte quota, until the test ends: what
        the host has is then the only bound."""
        def write(policy):
            with open(self.policy_path + ".tmp", "w") as f:
                json.dump(policy, f)
            os.rename(self.policy_path + ".tmp", self.policy_path)
            self.mgr("Reload")
        unlimited = json.loads(json.dumps(POLICY))
        del unlimited["classes"][0]["quota"]
        write(unlimited)
        self.addCleanup(write, POLICY)

    def hold_view(self, vm, region):
        """gmemctl attach VM REGION --exec -- sleep 900: a hypervisor that
        keeps its view's fd and touches nothing. Returns the process and the
        path of the fd it holds."""
        p = subprocess.Popen([self.world.gmemctl, "attach", vm, region, "--exec", "--", "sleep", "900"],
                             env=self.world.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)

        def reap():
            if p.poll() is None:
                p.kill()
            p.wait()
            p.stderr.close()
        self.addCleanup(reap)

        def execed():
            if p.poll() is not None:
                raise AssertionError(f"gmemctl attach --exec exited {p.returncode}: {p.stderr.read()}")
            with open(f"/proc/{p.pid}/comm") as f:
                return f.read().strip() == "sleep"
        self.wait_until(execed, "the view's holder to run")
        with open(f"/proc/{p.pid}/environ", "rb") as f:
            env = dict(e.split(b"=", 1) for e in f.read().split(b"\0") if b"=" in e)
        return p, f"/proc/{p.pid}/fd/{int(env[b'GMEM_FD'])}"

    def test_destroy_frees_memory_a_holder_still_maps(self):
        """Six rounds of: create 64 MiB --populate, attach to a VM whose
        process keeps the fd, detach, destroy. The host's Shmem comes back to
        where it started, each held file has no page left, and the byte
        quota still bounds what the caller holds."""
        before = meminfo("Shmem")
        held = []
        for i in range(ROUNDS):
            r = self.uniq("r")
            vm = self.uniq("vm")
            self.gmemctl("create-region", r, "64M", "--populate")
            self.gmemctl("register-vm", vm)
            self.addCleanup(self._quietly, "UnregisterVm", "s", vm)
            p, fdpath = self.hold_view(vm, r)
            self.assertGreaterEqual(os.stat(fdpath).st_blocks * 512, REGION,
                                    f"round {i}: the populated region has all its pages")
            self.gmemctl("detach", vm, r)
            self.gmemctl("destroy-region", r)
            self.assertEqual(os.stat(fdpath).st_blocks, 0,
                             f"round {i}: the region was destroyed, yet the file its holder keeps "
                             f"still has {os.stat(fdpath).st_blocks * 512} bytes of memory")
            held.append(p)
        after = meminfo("Shmem")
        print(f"Shmem before {before // 1024} kB, after {ROUNDS} rounds {after // 1024} kB "
              f"({(after - before) // MiB:+d} MiB)")
        self.assertLess(after - before, SLACK,
                        f"{ROUNDS} destroyed {REGION // MiB} MiB regions whose holders keep their fds left "
                        f"Shmem {(after - before) // MiB} MiB above its start")
        self.assertTrue(all(p.poll() is None for p in held), "every holder still runs and holds its fd")
        self.assertEqual(int(self.mgr_prop("TotalBytes")), 0, "no region is left")

        # The quota is whole again, and it is a bound on memory: four
        # populated regions fill it, and the host has their memory in Shmem.
        start = meminfo("Shmem")
        for i in range(BYTES_QUOTA // REGION):
            q = self.uniq("q")
            self.gmemctl("create-region", q, "64M", "--populate")
            self.addCleanup(self._quietly, "DestroyRegion", "s", q)
        self.assertGreater(meminfo("Shmem") - start, BYTES_QUOTA - SLACK,
                           "four populated regions are in the host's Shmem")
        res = self.gmemctl("create-region", self.uniq("q"), "64M", "--populate", expect=1)
        self.assertIn("Quota 'bytes'", res.err, f"the create past 256 MiB is refused by the byte quota: {res}")

    def test_destroy_frees_huge_pages_a_holder_still_maps(self):
        """hugetlb like memfd: DestroyRegion punches the inode, the huge
        pages go back to the pool while a process still maps a view, and
        that mapping reads zeros."""
        self.reserve_hugepages(2)
        with open("/proc/meminfo") as f:
            hp = int(next(line for line in f if line.startswith("Hugepagesize:")).split()[1]) * 1024

        def free_huge():
            with open("/proc/meminfo") as f:
                return int(next(line for line in f if line.startswith("HugePages_Free:")).split()[1])
        before = free_huge()
        r = self.create_region(hp, backend="hugetlb", populate=True)
        vm = self.register_vm()
        fd = self.attach(vm, r, "rw")
        m = mmap_raw(fd, hp, PROT_READ | PROT_WRITE, MAP_SHARED)
        self.addCleanup(munmap, m, hp)
        poke(m, b"\xee" * PAGE)
        self.assertEqual(free_huge(), before - 1, "the populated region took a huge page")
        self.mgr("Detach", "ss", vm, r)
        self.mgr("DestroyRegion", "s", r)
        self.assertEqual(free_huge(), before, "the destroyed region's huge page is back in the pool")
        self.assertEqual(peek(m, PAGE), b"\0" * PAGE, "the mapping a holder kept reads zeros")

    def test_destroy_leaves_secret_memory_with_its_holder(self):
        """secret cannot be punched: a process that keeps a view's file (the
        region's own) keeps the contents after DestroyRegion, as gmemd(8)
        says."""
        if not memfd_secret_works():
            self.skip_or_fail("memfd_secret(2) does not work here", dependency=False)
        if WRAPPER:
            self.skip_or_fail(f"gmemd cannot make secret memory under {WRAPPER[0]}", dependency=False)
        size = MiB
        r = self.create_region(size, backend="secret")
        vm = self.register_vm()
        fd = self.attach(vm, r, "rw")
        m = mmap_raw(fd, size, PROT_READ | PROT_WRITE, MAP_SHARED)
        self.addCleanup(munmap, m, size)
        poke(m, b"kept by its holder")
        self.mgr("Detach", "ss", vm, r)
        self.mgr("DestroyRegion", "s", r)
        self.assertNotIn(r, self.region_names(), "the region is gone")
        self.assertEqual(peek(m, 18), b"kept by its holder", "on secret the holder keeps the contents")
        self.assertTrue(guarantee("revoke on *DestroyRegion*")["secret"].startswith("advisory"),
                        "gmemd(8) says DestroyRegion is advisory on secret")

    def test_populate_past_what_the_host_has_is_refused(self):
        """Without a cgroup limit in the way, a populate larger than the
        host's MemAvailable is refused up front, naming the figure; nothing
        is allocated and no region is made."""
        self.without_quota()
        avail = meminfo("MemAvailable")
        size = (avail + 512 * MiB) // MiB * MiB
        r = self.uniq("r")
        before = meminfo("Shmem")
        self.assertGmemError("QuotaExceeded", self.mgr, "CreateRegion", "sta{sv}", r, dbus.UInt64(size),
                             gmemtest.dbus_options({"populate": True}), contains="MemAvailable")
        self.assertLess(meminfo("Shmem") - before, SLACK, "the refused populate allocated nothing")
        self.assertNotIn(r, self.region_names(), "the refused populate made no region")

    def test_allocate_past_what_the_host_has_is_refused(self):
        """Allocate is held to the same figure: a region larger than the
        host (not populated, so it costs nothing) takes no Allocate of more
        than MemAvailable, and does take a small one."""
        self.without_quota()
        avail = meminfo("MemAvailable")
        size = (avail + 512 * MiB) // MiB * MiB
        r = self.create_region(size)
        self.assertGmemError("QuotaExceeded", self.mgr, "Allocate", "stt", r, dbus.UInt64(0), dbus.UInt64(size),
                             contains="MemAvailable")
        self.assertEqual(int(self.region_prop(r, "AllocatedBytes")), 0, "the refused Allocate allocated nothing")
        self.mgr("Allocate", "stt", r, dbus.UInt64(0), dbus.UInt64(MiB))
        self.assertEqual(int(self.region_prop(r, "AllocatedBytes")), MiB, "a small Allocate is let through")

    def test_allocate_right_is_advisory_on_memfd(self):
        """On memfd a read-write view without the allocate right punches
        holes and allocates all the same (fallocate, MADV_REMOVE), and so
        does a VM that is not the region's owner: the kernel gives every
        writable file of a shmem inode that right. The pages say so, and
        this test keeps them honest."""
        size = 4 * MiB
        owner = self.register_vm()
        r = self.create_region(size, owner=owner)
        a = self.register_vm()
        fa = self.attach(a, r, "rw")                  # no allocate option, not the owner
        os.pwrite(fa, b"\xab" * size, 0)

        fallocate(fa, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, MiB)
        self.assertEqual(os.pread(fa, MiB, 0), b"\0" * MiB,
                         "a read-write view without allocate punched a hole with fallocate")
        self.assertEqual(int(self.region_prop(r, "AllocatedBytes")), size - MiB,
                         "the punched pages are gone from the region")
        fallocate(fa, 0, 0, MiB)
        self.assertEqual(int(self.region_prop(r, "AllocatedBytes")), size,
                         "a read-write view without allocate allocated with fallocate")
        m = mmap_raw(fa, size, PROT_READ | PROT_WRITE, MAP_SHARED)
        try:
            madvise(m + MiB, MiB, MADV_REMOVE)
            self.assertEqual(int(self.region_prop(r, "AllocatedBytes")), size - MiB,
                             "a read-write view without allocate punched a hole with MADV_REMOVE")
            self.assertEqual(peek(m + MiB, PAGE), b"\0" * PAGE, "the hole reads zeros")
        finally:
            munmap(m, size)

        cells = guarantee("allocate")
        for backend in ("memfd", "hugetlb", "secret"):
            self.assertRegex(cells[backend], r"^(no|advisory)\b",
                             f"gmemd(8) must not claim that {backend} enforces the allocate right")
        self.assertRegex(cells["kmod"], r"^(yes|enforced)\b", "gmemd(8) says kmod enforces the allocate right")
        attach = paragraph("org.gmemd.Broker1.5.scd", "*Attach(s vm, s region")
        self.assertIn("advisory", attach, "org.gmemd.Broker1(5) Attach says the allocate right is advisory on memfd")
        create = paragraph("org.gmemd.Broker1.5.scd", "*CreateRegion(s name")
        self.assertIn("advisory", create, "org.gmemd.Broker1(5) CreateRegion says the owner's right is advisory")
        opt = paragraph("gmemctl.1.scd", "*--allocate*")
        self.assertIn("kmod backend only", opt, "gmemctl(1) --allocate says where it is enforced")
        opt = paragraph("gmemctl.1.scd", "*--owner=*")
        self.assertIn("kmod backend", opt, "gmemctl(1) --owner says where it is enforced")

    def test_ended_views_keep_working_on_memfd(self):
        """On memfd the kernel cannot take back a file a process holds: after
        Detach and after UnregisterVm the old file still maps read-write and
        still shares the region's memory with the live views; after
        DestroyRegion it still maps, but reads zeros. gmemd(8) says so."""
        size = 2 * MiB
        r = self.create_region(size)
        live = self.register_vm()
        fl = self.attach(live, r, "rw")
        ml = mmap_raw(fl, size, PROT_READ | PROT_WRITE, MAP_SHARED)
        mapped = [ml]
        self.addCleanup(lambda: [munmap(x, size) for x in mapped])

        for how in ("Detach", "UnregisterVm"):
            with self.subTest(how=how):
                vm = self.register_vm()
                fd = self.attach(vm, r, "rw")
                poke(ml, f"before {how}".encode())
                if how == "Detach":
                    self.mgr("Detach", "ss", vm, r)
                else:
                    self.mgr("UnregisterVm", "s", vm)
                self.assertNotIn(vm, [v for v, _, _ in self.views_of_region(r)], f"{how} ended the view")
                m = mmap_raw(fd, size, PROT_READ | PROT_WRITE, MAP_SHARED)
                try:
                    self.assertEqual(peek(m, len(f"before {how}")), f"before {how}".encode(),
                                     f"after {how} the old file still maps and reads the region")
                    poke(m + PAGE, f"after {how}".encode())
                    self.assertEqual(peek(ml + PAGE, len(f"after {how}")), f"after {how}".encode(),
                                     f"after {how} the old file still writes into the live view's memory")
                finally:
                    munmap(m, size)

        held = self.register_vm()
        fd = self.attach(held, r, "rw")
        m = mmap_raw(fd, size, PROT_READ | PROT_WRITE, MAP_SHARED)
        self.addCleanup(munmap, m, size)
        poke(m, b"\xcd" * size)
        self.mgr("Detach", "ss", held, r)
        munmap(mapped.pop(), size)
        self.mgr("Detach", "ss", live, r)
        self.mgr("DestroyRegion", "s", r)
        self.assertEqual(peek(m, size), b"\0" * size, "after DestroyRegion the mapping a holder kept reads zeros")
        self.assertEqual(os.pread(fd, size, 0), b"\0" * size, "after DestroyRegion the file a holder kept reads zeros")
        poke(m, b"mine")
        self.assertEqual(os.pread(fd, 4, 0), b"mine", "the holder's new page is its own, still writable")

        security = man_source("gmemd.8.scd")
        security = " ".join(security[security.index("# SECURITY"):security.index("# SIGNALS")].split())
        for what in ("*Detach*", "*UnregisterVm*", "*DestroyRegion*", "reads zeros"):
            self.assertIn(what, security, f"gmemd(8) SECURITY says what {what} leaves a holder of a view")

    def test_one_table_of_guarantees(self):
        """gmemd(8) has one table of guarantees, with every guarantee a view
        or region has for every backend, each cell enforced or advisory (or
        n/a); what the tests here and in test-views.py show on memfd is what
        it says; the README points to it, and no other page has another."""
        backends = ["memfd", "hugetlb", "secret", "kmod", "guest_memfd"]
        text = man_source("gmemd.8.scd")
        self.assertEqual(text.count("[[ *guarantee*"), 1, "gmemd(8) has one table of guarantees")
        for page in ("org.gmemd.Broker1.5.scd", "gmemctl.1.scd", "gmemd.policy.5.scd", "libgmem.3.scd"):
            self.assertNotIn("[[ *guarantee*", man_source(page), f"{page} has no table of its own")
        rows = {
            "read-only": {"memfd": "enforced", "hugetlb": "enforced", "secret": "n/a", "kmod": "enforced",
                          "guest_memfd": "n/a"},
            "window": {"memfd": "advisory", "hugetlb": "advisory", "secret": "advisory", "kmod": "enforced",
                       "guest_memfd": "advisory"},
            "allocate right": {"memfd": "advisory", "hugetlb": "advisory", "secret": "advisory", "kmod": "enforced",
                               "guest_memfd": "advisory"},
            "revoke on *Detach*": {"memfd": "advisory", "hugetlb": "advisory", "secret": "advisory",
                                   "kmod": "enforced", "guest_memfd": "advisory"},
            "revoke on *UnregisterVm*": {"memfd": "advisory", "hugetlb": "advisory", "secret": "advisory",
                                         "kmod": "enforced", "guest_memfd": "advisory"},
            "revoke on *DestroyRegion*": {"memfd": "enforced", "hugetlb": "enforced", "secret": "advisory",
                                          "kmod": "enforced", "guest_memfd": "enforced"},
            "revoke on *CommitMigration*": {"memfd": "advisory", "hugetlb": "advisory", "secret": "advisory",
                                            "kmod": "enforced", "guest_memfd": "n/a"},
            "pending": {"memfd": "advisory", "hugetlb": "advisory", "secret": "advisory", "kmod": "enforced",
                        "guest_memfd": "n/a"},
            "memory outlives the hypervisor": {"memfd": "yes", "hugetlb": "yes", "secret": "yes", "kmod": "yes",
                                               "guest_memfd": "yes"},
            "a second VM or a migration target": {"memfd": "yes", "hugetlb": "yes", "secret": "no", "kmod": "yes",
                                                  "guest_memfd": "no"},
        }
        for row, want in rows.items():
            cells = guarantee(row)
            self.assertEqual(sorted(cells), sorted(backends), f"the row {row!r} has a cell for every backend")
            for backend, word in want.items():
                self.assertTrue(cells[backend].startswith(word),
                                f"gmemd(8): {row!r} on {backend} is {word}, the table says {cells[backend]!r}")
        table = text[text.index("[[ *guarantee*"):]
        table = table[:table.index("\n\n")]
        for line in table.splitlines()[len(backends) + 1:]:
            if line.startswith(":"):
                self.assertRegex(line[1:].strip(), r"^(enforced|advisory|n/a|yes|no)\b",
                                 f"every cell says enforced, advisory or n/a: {line!r}")
        with open(os.path.join(os.environ["GMEM_SOURCE_ROOT"], "README.md")) as f:
            readme = f.read()
        self.assertIn("gmemd(8), BACKENDS", readme, "the README points to the table")


if __name__ == "__main__":
    gmemtest.main(start_daemon=False)
