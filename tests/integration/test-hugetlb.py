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

import gmemtest     # before dbus: without python3-dbus it skips the file with the reason

import dbus
from gmemtest import (PAGE, GmemTestCase, MAP_SHARED, PROT_READ, PROT_WRITE, access_mode,
                      dbus_options, hugepage_meminfo, hugepages_available, mmap_raw, mprotect, munmap,
                      peek, poke)


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


if __name__ == "__main__":
    gmemtest.main()
