#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The hugetlb backend through the whole flow, on huge pages this file
reserves itself (as root, through vm.nr_hugepages, put back afterwards; a
test skips with the kernel's reason when it refuses): the backend becomes
usable when pages are reserved after gmemd started, regions are created
with and without populate, read-write and read-only views share the
content and a read-only view cannot write, Discard works at huge-page
granularity and names the page size when a range is not aligned to it, and
a migration moves a hugetlb view with its content. (test-recovery.py has a
hugetlb region surviving kill -9.)
"""
import errno
import os
import pwd
import stat

import gmemtest     # before dbus: without python3-dbus it skips the file with the reason

import dbus
from gmemtest import (PAGE, WRAPPER, GmemTestCase, MAP_SHARED, PROT_READ, PROT_WRITE, access_mode,
                      dbus_options, hugepage_meminfo, hugepages_available, mmap_raw, mprotect, munmap,
                      peek, poke, run_as)


def hugepage_size():
    return hugepage_meminfo("Hugepagesize")


class Hugetlb(GmemTestCase):

    def setUp(self):
        super().setUp()
        self.hp = hugepage_size()
        if self.hp == 0:
            self.skip_or_fail("the kernel reports no huge page size (/proc/meminfo has no Hugepagesize)",
                              dependency=False)

    def backends(self):
        return [str(b) for b in self.mgr_prop("Backends")]

    def map(self, fd, length, prot):
        m = mmap_raw(fd, length, prot, MAP_SHARED)
        self.addCleanup(munmap, m, length)
        return m

    def test_pages_reserved_after_start(self):
        """gmemd looks at the huge-page pool at every call, not once at
        start: pages reserved while it runs make the backend usable at once."""
        self.lock_hugepages()
        if hugepage_meminfo("HugePages_Total") == 0:
            self.assertNotIn("hugetlb", self.backends(), "Backends lists hugetlb with no huge page reserved")
            self.assertMgrError("BackendUnavailable", "CreateRegion", "sta{sv}", self.uniq("r"),
                                dbus.UInt64(self.hp), dbus_options({"backend": "hugetlb"}),
                                contains="nr_hugepages")
        self.reserve_hugepages(1)
        self.assertIn("hugetlb", self.backends(), "pages were reserved, yet Backends leaves hugetlb out")
        r = self.create_region(self.hp, backend="hugetlb")
        self.assertEqual(str(self.region_prop(r, "Backend")), "hugetlb")

    def test_create_with_and_without_populate(self):
        self.reserve_hugepages(3)
        before = hugepage_meminfo("HugePages_Free")
        lazy = self.create_region(self.hp, backend="hugetlb")
        self.assertEqual(int(self.region_prop(lazy, "AllocatedBytes")), 0,
                         "a hugetlb region created without populate has no page yet")
        self.assertEqual(hugepage_meminfo("HugePages_Free"), before, "and takes none from the pool")
        full = self.create_region(2 * self.hp, backend="hugetlb", populate=True)
        self.assertEqual(int(self.region_prop(full, "AllocatedBytes")), 2 * self.hp,
                         "a hugetlb region created with populate has all its pages")
        self.assertEqual(hugepage_meminfo("HugePages_Free"), before - 2, "and took them from the pool")
        self.assertMgrError("InvalidSize", "CreateRegion", "sta{sv}", self.uniq("r"), dbus.UInt64(self.hp + PAGE),
                            dbus_options({"backend": "hugetlb"}), contains=str(self.hp))

    def test_populate_beyond_the_pool(self):
        """A region the pool cannot hold is refused up front, naming what is free."""
        self.reserve_hugepages(1)
        want = hugepages_available() + 1
        self.assertMgrError("BackendUnavailable", "CreateRegion", "sta{sv}", self.uniq("r"),
                            dbus.UInt64(want * self.hp), dbus_options({"backend": "hugetlb", "populate": True}),
                            contains=f"needs {want} huge pages")

    def test_rw_and_ro_views(self):
        """What a read-write view writes, a read-only view reads; the
        read-only view cannot be mapped writable, made writable or written."""
        self.reserve_hugepages(1)
        r = self.create_region(self.hp, backend="hugetlb", populate=True)
        writer, reader = self.register_vm(), self.register_vm()
        rw = self.attach(writer, r, "rw")
        ro = self.attach(reader, r, "ro")
        self.assertEqual(access_mode(rw), os.O_RDWR, "the rw view is a read-write file")
        self.assertEqual(access_mode(ro), os.O_RDONLY, "the ro view is a read-only file")
        data = os.urandom(PAGE)
        w = self.map(rw, self.hp, PROT_READ | PROT_WRITE)
        poke(w + self.hp - PAGE, data)
        m = self.map(ro, self.hp, PROT_READ)
        self.assertEqual(peek(m + self.hp - PAGE, PAGE), data, "the ro mapping reads what the rw view wrote")
        self.assertEqual(os.pread(ro, PAGE, self.hp - PAGE), data, "so does read() on the ro view")

        with self.assertRaises(OSError, msg="an ro view was mapped PROT_WRITE, MAP_SHARED") as cm:
            self.map(ro, self.hp, PROT_READ | PROT_WRITE)
        self.assertEqual(cm.exception.errno, errno.EACCES, str(cm.exception))
        with self.assertRaises(OSError, msg="an ro mapping was made writable") as cm:
            mprotect(m, self.hp, PROT_READ | PROT_WRITE)
        self.assertEqual(cm.exception.errno, errno.EACCES, str(cm.exception))
        with self.assertRaises(OSError, msg="write() on an ro view succeeded") as cm:
            os.pwrite(ro, b"x", 0)
        self.assertEqual(cm.exception.errno, errno.EBADF, str(cm.exception))
        self.assertEqual(peek(w + self.hp - PAGE, PAGE), data, "the content is unchanged")

    def test_discard_huge_pages(self):
        """Discard gives whole huge pages back to the pool and leaves the others' content."""
        self.reserve_hugepages(2)
        r = self.create_region(2 * self.hp, backend="hugetlb", populate=True)
        vm = self.register_vm()
        m = self.map(self.attach(vm, r, "rw"), 2 * self.hp, PROT_READ | PROT_WRITE)
        poke(m, b"a" * PAGE)
        poke(m + self.hp, b"b" * PAGE)
        free = hugepage_meminfo("HugePages_Free")
        self.mgr("Discard", "stt", r, dbus.UInt64(self.hp), dbus.UInt64(self.hp))
        self.assertEqual(hugepage_meminfo("HugePages_Free"), free + 1, "the discarded huge page is back in the pool")
        self.assertEqual(int(self.region_prop(r, "AllocatedBytes")), self.hp, "one huge page is left")
        self.assertEqual(peek(m + self.hp, PAGE), b"\0" * PAGE, "the discarded page reads zeros")
        self.assertEqual(peek(m, PAGE), b"a" * PAGE, "the other page keeps its content")

    def test_discard_not_aligned_to_the_huge_page(self):
        """A range aligned to 4 KiB but not to the huge page is InvalidRange
        naming the value and the region's page size; nothing is discarded."""
        self.reserve_hugepages(2)
        r = self.create_region(2 * self.hp, backend="hugetlb", populate=True)
        for offset, length, value in ((PAGE, self.hp, f"offset {PAGE}"), (0, PAGE, f"length {PAGE}"),
                                      (self.hp, self.hp + PAGE, f"length {self.hp + PAGE}")):
            with self.subTest(offset=offset, length=length):
                msg = self.assertMgrError("InvalidRange", "Discard", "stt", r, dbus.UInt64(offset),
                                          dbus.UInt64(length), contains=value)
                self.assertIn(f"page size, {self.hp} bytes", msg, "the message names the huge page size")
                self.assertIn(r, msg, "the message names the region")
        self.assertEqual(int(self.region_prop(r, "AllocatedBytes")), 2 * self.hp, "nothing was discarded")

    def test_migration_moves_the_view(self):
        """BeginMigration and CommitMigration move a hugetlb view to the
        target: same inode, same access, content kept, source revoked."""
        self.reserve_hugepages(1)
        r = self.create_region(self.hp, backend="hugetlb", populate=True)
        src, dst = self.register_vm(), self.register_vm()
        fd = self.attach(src, r, "rw")
        data = os.urandom(PAGE)
        poke(self.map(fd, self.hp, PROT_READ | PROT_WRITE) + PAGE, data)
        path, fds = self.begin_migration(src, dst)
        self.assertEqual(sorted(fds), [r])
        self.assertEqual(os.fstat(fds[r]).st_ino, os.fstat(fd).st_ino, "the target's view is the region's inode")
        self.assertEqual(access_mode(fds[r]), os.O_RDWR, "the target's view keeps read-write access")
        self.mgr("CommitMigration", "o", dbus.ObjectPath(path))
        self.assertEqual(self.views_of_vm(dst), [(r, "rw", "active")])
        self.assertEqual([v[2] for v in self.views_of_vm(src)], ["revoked"])
        moved = self.get_fd(dst, r)
        self.assertEqual(peek(self.map(moved, self.hp, PROT_READ) + PAGE, PAGE), data,
                         "the migrated view has the content")


HYPERVISOR = 65534                      # nobody
OTHER = pwd.getpwnam("daemon").pw_uid   # another unprivileged uid


def reopen(fd, flags):
    """In a child under another uid: re-open fd through /proc/self/fd, as QEMU's mem-path= does."""
    def child():
        os.close(os.open(f"/proc/self/fd/{fd}", flags))
        return True
    return child


class UnprivilegedHypervisor(GmemTestCase):
    """hugetlbfs takes no access list: gmemd gives the inode (mode 0600) to
    the one hypervisor uid with read-write views, takes it back when they
    go, and refuses read-write views of a second uid. A uid with read-only
    views only never owns it: an owner could chmod it and re-open it for
    writing."""

    def setUp(self):
        super().setUp()
        self.hp = hugepage_size()
        if self.hp == 0:
            self.skip_or_fail("the kernel reports no huge page size", dependency=False)
        if os.geteuid() != 0:
            self.skip_or_fail("gives inodes to other uids: needs root to run gmemd with CAP_CHOWN",
                              dependency=False)
        self.reserve_hugepages(1)
        self.region = self.create_region(self.hp, backend="hugetlb", populate=True)

    def can_open(self, uid, fd, flags):
        res = run_as(uid, uid, reopen(fd, flags))
        self.assertTrue(res["ok"] or res["errno"] == errno.EACCES, f"unexpected failure under uid {uid}: {res}")
        return res["ok"]

    def owner(self, fd):
        st = os.fstat(fd)
        return st.st_uid, stat.S_IMODE(st.st_mode)

    def test_today_without_a_grant(self):
        """A view of a VM without a hypervisor uid grants nothing: the inode
        stays gmemd's, mode 0600, and no other uid re-opens it."""
        fd = self.attach(self.register_vm(), self.region, "rw")
        self.assertEqual(self.owner(fd), (self.gmemd_uid(), 0o600))
        self.assertFalse(self.can_open(HYPERVISOR, fd, os.O_RDONLY), "uid 65534 re-opened an inode not given to it")

    def gmemd_uid(self):
        with open(f"/proc/{self.world.gmemd_pid()}/status") as f:
            return int(next(line for line in f if line.startswith("Uid:")).split()[2])

    def test_hypervisor_reopens_read_write(self):
        vm = self.register_vm(uid=HYPERVISOR)
        fd = self.attach(vm, self.region, "rw")
        self.assertEqual(self.owner(fd), (HYPERVISOR, 0o600), "the inode is the hypervisor's, read-write")
        self.assertTrue(self.can_open(HYPERVISOR, fd, os.O_RDWR), "the hypervisor uid cannot re-open its rw view")

        def write_through_reopen():
            g = os.open(f"/proc/self/fd/{fd}", os.O_RDWR)
            m = mmap_raw(g, self.hp, PROT_READ | PROT_WRITE, MAP_SHARED)
            poke(m, b"qemu")
            munmap(m, self.hp)
            os.close(g)
            return True
        self.assertTrue(run_as(HYPERVISOR, HYPERVISOR, write_through_reopen)["ok"])
        self.assertEqual(os.pread(fd, 4, 0), b"qemu", "what the hypervisor wrote through its re-open is there")
        for flags in (os.O_RDONLY, os.O_RDWR):
            self.assertFalse(self.can_open(OTHER, fd, flags), f"uid {OTHER} re-opened the hypervisor's inode")

        self.mgr("Detach", "ss", vm, self.region)
        self.assertEqual(self.owner(fd), (self.gmemd_uid(), 0o600), "the inode is gmemd's again once the view goes")
        self.assertFalse(self.can_open(HYPERVISOR, fd, os.O_RDONLY), "the detached hypervisor still re-opens")

    def test_read_only_hypervisor(self):
        vm = self.register_vm(uid=HYPERVISOR)
        fd = self.attach(vm, self.region, "ro")
        self.assertEqual(self.owner(fd), (self.gmemd_uid(), 0o600), "read-only views only: the inode stays gmemd's")
        for flags in (os.O_RDONLY, os.O_RDWR):
            self.assertFalse(self.can_open(HYPERVISOR, fd, flags), "an ro-only hypervisor re-opened its view")

        # As the owner it could have made the inode writable and re-opened it: it is not, so it cannot.
        def chmod_and_reopen():
            os.fchmod(fd, 0o666)
            os.close(os.open(f"/proc/self/fd/{fd}", os.O_RDWR))
            return True
        res = run_as(HYPERVISOR, HYPERVISOR, chmod_and_reopen)
        self.assertFalse(res["ok"], f"a read-only hypervisor made its view writable: {res}")
        self.assertEqual(res["errno"], errno.EPERM, f"fchmod is refused to a uid that does not own the inode: {res}")
        self.assertEqual(self.owner(fd), (self.gmemd_uid(), 0o600))

        # A read-write view of another VM of the same uid gives it the inode, and its going takes it back.
        other_vm = self.register_vm(uid=HYPERVISOR)
        self.attach(other_vm, self.region, "rw")
        self.assertEqual(self.owner(fd), (HYPERVISOR, 0o600))
        self.mgr("Detach", "ss", other_vm, self.region)
        self.assertEqual(self.owner(fd), (self.gmemd_uid(), 0o600))

    def test_second_uid_refused(self):
        vm = self.register_vm(uid=HYPERVISOR)
        fd = self.attach(vm, self.region, "rw")
        intruder = self.register_vm(uid=OTHER)
        msg = self.assertMgrError("NotSupported", "Attach", "sssa{sv}", intruder, self.region, "rw",
                                  dbus_options({}),
                                  contains=["hugetlb", str(HYPERVISOR), str(OTHER), "access list"])
        self.assertEqual(self.views_of_vm(intruder), [], f"the refused view is there: {msg}")
        self.assertEqual(self.owner(fd), (HYPERVISOR, 0o600), "the refusal leaves the inode as it was")
        self.assertTrue(self.can_open(HYPERVISOR, fd, os.O_RDWR), "the first hypervisor still re-opens")
        # A read-only view of the second uid is given (through its fd only), and VMs without a uid grant nothing.
        ro = self.attach(intruder, self.region, "ro")
        self.assertFalse(self.can_open(OTHER, ro, os.O_RDONLY), "the read-only second uid re-opened the inode")
        self.attach(self.register_vm(), self.region, "ro")
        self.assertEqual(self.owner(fd), (HYPERVISOR, 0o600))

    def test_owner_helper_keeps_only_cap_chown(self):
        """The one process that changes owners holds CAP_CHOWN and nothing
        else, no fd of gmemd's, and cannot gain privileges; gmemd holds none."""
        pid = self.world.gmemd_pid()
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            helpers = [int(c) for c in f.read().split()]
        self.assertEqual(len(helpers), 1, f"gmemd has one child, its owner helper: {helpers}")

        def status(p):
            with open(f"/proc/{p}/status") as f:
                return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
        helper, daemon = status(helpers[0]), status(pid)
        self.assertEqual(int(helper["CapEff"], 16), 1, "the helper's effective set is CAP_CHOWN alone")
        self.assertEqual(int(helper["CapPrm"], 16), 1, "so is its permitted set")
        self.assertEqual(int(helper["CapAmb"], 16), 0)
        self.assertEqual(helper["NoNewPrivs"].strip(), "1")
        self.assertEqual(int(daemon["CapEff"], 16), 0, "gmemd itself holds no capability")
        fds = sorted(int(fd) for fd in os.listdir(f"/proc/{helpers[0]}/fd"))
        if WRAPPER:
            # valgrind keeps fds of its own at the top of the range, out of the program's reach.
            fds = [fd for fd in fds if fd < 1024]
        self.assertEqual(fds, [0, 1, 2, 3], "the helper keeps stdio and its socket, nothing of gmemd's")

    def test_migration_to_another_uid_refused(self):
        """The target's pending view would be a second uid's: BeginMigration
        is refused, the source keeps its view and the inode."""
        src, dst = self.register_vm(uid=HYPERVISOR), self.register_vm(uid=OTHER)
        fd = self.attach(src, self.region, "rw")
        self.assertGmemError("NotSupported", self.mgr, "BeginMigration", "ssa{sv}", src, dst, dbus_options({}),
                             contains=[str(HYPERVISOR), str(OTHER)])
        self.assertEqual(self.views_of_vm(dst), [])
        self.assertEqual(self.views_of_vm(src), [(self.region, "rw", "active")])
        self.assertEqual(self.owner(fd), (HYPERVISOR, 0o600))
        self.assertEqual([m for m in self.mgr("ListMigrations") if str(m[0]) == src], [],
                         "no migration is left behind")

    def test_migration_within_one_uid(self):
        """A migration to a VM of the same uid keeps the inode with that uid."""
        src, dst = self.register_vm(uid=HYPERVISOR), self.register_vm(uid=HYPERVISOR)
        self.attach(src, self.region, "rw")
        path, fds = self.begin_migration(src, dst)
        self.mgr("CommitMigration", "o", dbus.ObjectPath(path))
        self.assertEqual(self.owner(fds[self.region]), (HYPERVISOR, 0o600))
        self.assertTrue(self.can_open(HYPERVISOR, fds[self.region], os.O_RDWR))


if __name__ == "__main__":
    gmemtest.main()
