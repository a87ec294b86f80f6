#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Views: each VM's view is its own open file description on the region's one
inode; the same VM asking again gets the same view; the broker keeps the
view in custody so GetFd hands it out again; Discard punches a hole every
view sees; Allocate pre-faults; the object properties follow.
"""
import fcntl
import os

import gmemtest     # before dbus: without python3-dbus it skips the file with the reason

import dbus
from gmemtest import (MiB, PAGE, GmemTestCase, same_open_file, kcmp_same_file,
                      mmap_raw, munmap, peek, poke, PROT_READ, PROT_WRITE, MAP_SHARED,
                      access_mode, region_path, vm_path, REGION_IFACE, VM_IFACE)

SIZE = 2 * MiB


class Views(GmemTestCase):

    def test_each_vm_gets_its_own_open_file_on_one_inode(self):
        r = self.create_region(SIZE)
        a, b, c = self.register_vm(), self.register_vm(), self.register_vm()
        fa = self.attach(a, r, "rw")
        fb = self.attach(b, r, "ro")
        fc = self.attach(c, r, "ro")
        ino = {os.fstat(fd).st_ino for fd in (fa, fb, fc)}
        dev = {os.fstat(fd).st_dev for fd in (fa, fb, fc)}
        self.assertEqual(len(ino), 1, "the views are not on one inode")
        self.assertEqual(len(dev), 1, "the views are not on one device")
        for x, y, what in [(fa, fb, "a/b"), (fb, fc, "b/c"), (fa, fc, "a/c")]:
            self.assertFalse(same_open_file(x, y),
                             f"views of VMs {what} share one open file description")
        if kcmp_same_file(fa, fa) is None:
            print("note: kcmp unavailable; compared file positions only")

    def test_view_files_reopened_through_gmemds_own_fd_table(self):
        """gmemd holds its own /proc/self/fd open (procfs, checked once) and
        re-opens view files relative to it; it never fell back to re-opening
        by path, which it would have said in its log. The view files are
        files of the region's inode with the access asked, each its own."""
        pid = self.world.gmemd_pid()
        links = []
        for name in os.listdir(f"/proc/{pid}/fd"):
            try:
                links.append(os.readlink(f"/proc/{pid}/fd/{name}"))
            except OSError:
                pass
        self.assertIn(f"/proc/{pid}/fd", links, f"gmemd holds its own fd table open: {sorted(links)}")
        self.assertNotIn("Cannot open /proc/self/fd on procfs", self.world.gmemd_log_text())
        r = self.create_region(SIZE)
        a, b = self.register_vm(), self.register_vm()
        fa, fb = self.attach(a, r, "rw"), self.attach(b, r, "ro")
        self.assertEqual(os.fstat(fa).st_ino, os.fstat(fb).st_ino, "both views are files of the region's inode")
        self.assertEqual(fcntl.fcntl(fa, fcntl.F_GETFL) & os.O_ACCMODE, os.O_RDWR, "the rw view is O_RDWR")
        self.assertEqual(fcntl.fcntl(fb, fcntl.F_GETFL) & os.O_ACCMODE, os.O_RDONLY, "the ro view is O_RDONLY")
        self.assertFalse(same_open_file(fa, fb), "each view is an open file of its own")

    def test_allocated_bytes_without_and_with_views(self):
        """ALLOCATED of a region no file of which has left gmemd follows
        gmemd's own Allocate and Discard (it is kept, not asked for each
        time); once a view exists, a write through it shows at once, and
        still after the view is detached (the VM may keep its file)."""
        r = self.create_region(4 * MiB)
        listed = lambda: {row[0]: int(row[5]) for row in self.mgr("ListRegionsFull", "")}[r]
        self.assertEqual(int(self.region_prop(r, "AllocatedBytes")), 0, "a new region has nothing allocated")
        self.mgr("Allocate", "stt", r, dbus.UInt64(0), dbus.UInt64(MiB))
        self.assertEqual(int(self.region_prop(r, "AllocatedBytes")), MiB, "Allocate shows")
        self.assertEqual(listed(), MiB, "ListRegionsFull agrees")
        self.mgr("Discard", "stt", r, dbus.UInt64(0), dbus.UInt64(MiB))
        self.assertEqual(listed(), 0, "Discard shows")
        vm = self.register_vm()
        fd = self.attach(vm, r, "rw")
        try:
            os.pwrite(fd, b"x" * PAGE, 2 * MiB)
            self.assertEqual(listed(), PAGE, "a write through a view shows")
            self.mgr("Detach", "ss", vm, r)
            os.pwrite(fd, b"x" * PAGE, 3 * MiB)
            self.assertEqual(listed(), 2 * PAGE, "a write through a detached view's file shows too")
        finally:
            os.close(fd)

    def test_same_vm_again_gets_same_view(self):
        r = self.create_region(SIZE)
        a = self.register_vm()
        f1 = self.attach(a, r, "rw")
        f2 = self.attach(a, r, "rw")
        f3 = self.get_fd(a, r)
        self.assertNotEqual(f1, f2, "the same fd number twice in one process?")
        self.assertTrue(same_open_file(f1, f2), "Attach again did not return the same view")
        self.assertTrue(same_open_file(f1, f3), "GetFd did not return the same view")
        self.assertEqual(self.views_of_vm(a), [(r, "rw", "active")],
                         "attaching twice made two views")

    def test_vm_object_methods(self):
        r = self.create_region(SIZE)
        a = self.register_vm()
        fd = self.take_fd(self.call(vm_path(a), VM_IFACE, "Attach", "ssa{sv}", r, "ro",
                                    gmemtest.dbus_options({})))
        self.assertEqual(access_mode(fd), os.O_RDONLY)
        fd2 = self.take_fd(self.call(vm_path(a), VM_IFACE, "GetFd", "s", r))
        self.assertTrue(same_open_file(fd, fd2), "Vm.GetFd returned another view")
        self.call(vm_path(a), VM_IFACE, "Detach", "s", r)
        self.assertEqual(self.views_of_vm(a), [])
        self.call(vm_path(a), VM_IFACE, "Unregister")
        self.assertNotIn(a, self.vm_names())

    def test_custody_survives_client_closing_fds(self):
        r = self.create_region(SIZE)
        a = self.register_vm()
        fd = self.attach(a, r, "rw")
        os.pwrite(fd, b"kept by the broker", 0)
        self.close_fd(fd)
        fd2 = self.get_fd(a, r)
        self.assertEqual(os.pread(fd2, 18, 0), b"kept by the broker",
                         "the data is gone after the hypervisor closed its fd")

    def test_discard_visible_in_every_view(self):
        r = self.create_region(SIZE)
        a, b = self.register_vm(), self.register_vm()
        fa = self.attach(a, r, "rw")
        fb = self.attach(b, r, "ro")
        ma = mmap_raw(fa, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED)
        mb = mmap_raw(fb, SIZE, PROT_READ, MAP_SHARED)
        try:
            poke(ma, b"\xab" * SIZE)
            self.assertEqual(peek(mb, SIZE), b"\xab" * SIZE, "b does not see a's writes")
            self.mgr("Discard", "stt", r, dbus.UInt64(MiB), dbus.UInt64(4 * PAGE))
            zeros = b"\0" * (4 * PAGE)
            self.assertEqual(peek(ma + MiB, 4 * PAGE), zeros, "a's mapping still shows discarded data")
            self.assertEqual(peek(mb + MiB, 4 * PAGE), zeros, "b's mapping still shows discarded data")
            self.assertEqual(os.pread(fb, 4 * PAGE, MiB), zeros, "pread on b shows discarded data")
            self.assertEqual(peek(ma + MiB - PAGE, PAGE), b"\xab" * PAGE,
                             "the page before the hole was discarded too")
            self.assertEqual(peek(mb + MiB + 4 * PAGE, PAGE), b"\xab" * PAGE,
                             "the page after the hole was discarded too")
            # The Region object's Discard does the same.
            self.call(region_path(r), REGION_IFACE, "Discard", "tt", dbus.UInt64(0),
                      dbus.UInt64(PAGE))
            self.assertEqual(peek(mb, PAGE), b"\0" * PAGE, "Region.Discard not visible in b")
        finally:
            munmap(ma, SIZE)
            munmap(mb, SIZE)

    def test_allocate_and_discard_change_allocation(self):
        r = self.create_region(SIZE)
        a = self.register_vm()
        fa = self.attach(a, r, "ro")
        self.assertEqual(os.fstat(fa).st_blocks, 0, "a new region already has blocks")
        self.mgr("Allocate", "stt", r, dbus.UInt64(0), dbus.UInt64(MiB))
        self.assertGreaterEqual(os.fstat(fa).st_blocks * 512, MiB,
                                "Allocate did not allocate the range")
        self.assertGreaterEqual(int(self.region_prop(r, "AllocatedBytes")), MiB,
                                "Region.AllocatedBytes does not count the allocation")
        self.call(region_path(r), REGION_IFACE, "Allocate", "tt", dbus.UInt64(MiB),
                  dbus.UInt64(MiB))
        self.assertGreaterEqual(os.fstat(fa).st_blocks * 512, SIZE)
        self.mgr("Discard", "stt", r, dbus.UInt64(0), dbus.UInt64(SIZE))
        self.assertEqual(os.fstat(fa).st_blocks, 0, "Discard of the whole region left blocks")
        self.assertEqual(int(self.region_prop(r, "AllocatedBytes")), 0,
                         "AllocatedBytes after discarding everything")

    def test_populate_option(self):
        r = self.create_region(SIZE, populate=True)
        a = self.register_vm()
        fa = self.attach(a, r, "ro")
        self.assertGreaterEqual(os.fstat(fa).st_blocks * 512, SIZE,
                                "populate=true did not allocate the region")

    def test_window_options_recorded(self):
        r = self.create_region(SIZE)
        a = self.register_vm()
        fa = self.attach(a, r, "rw", offset=MiB, length=PAGE)
        self.assertEqual(access_mode(fa), os.O_RDWR)
        self.assertEqual(os.fstat(fa).st_size, SIZE,
                         "on memfd a window is bookkeeping; the fd is the whole inode")
        again = self.attach(a, r, "rw", offset=MiB, length=PAGE)
        self.assertTrue(same_open_file(fa, again), "the same window again is not the same view")

    def test_detach_drops_view_but_not_fd_or_data(self):
        r = self.create_region(SIZE)
        a, b = self.register_vm(), self.register_vm()
        fa = self.attach(a, r, "rw")
        fb = self.attach(b, r, "ro")
        os.pwrite(fa, b"still here", 0)
        self.mgr("Detach", "ss", b, r)
        self.assertEqual(self.views_of_vm(b), [])
        self.assertEqual(self.views_of_region(r), [(a, "rw", "active")])
        self.assertMgrError("NoSuchView", "GetFd", "ss", b, r)
        self.assertEqual(os.pread(fa, 10, 0), b"still here")
        # On memfd a detached fd cannot be taken back: documented, advisory.
        self.assertEqual(os.pread(fb, 10, 0), b"still here")

    def test_unregister_vm_drops_views_region_stays(self):
        r = self.create_region(SIZE)
        a = self.register_vm(cleanup=False)
        fa = self.attach(a, r, "rw")
        os.pwrite(fa, b"outlives the vm", 0)
        self.mgr("UnregisterVm", "s", a)
        self.assertNotIn(a, self.vm_names())
        self.assertEqual(self.views_of_region(r), [])
        b = self.register_vm()
        fb = self.attach(b, r, "ro")
        self.assertEqual(os.pread(fb, 15, 0), b"outlives the vm", "memory did not outlive the VM")

    def test_properties(self):
        owner = self.register_vm()
        r = self.create_region(SIZE, owner=owner)
        a, b = self.register_vm(uid=4242), self.register_vm()
        self.attach(a, r, "rw")
        self.attach(b, r, "ro")
        props = self.get_all(region_path(r), REGION_IFACE)
        self.assertEqual(str(props["Name"]), r)
        self.assertEqual(int(props["Size"]), SIZE)
        self.assertEqual(str(props["Backend"]), "memfd")
        self.assertEqual(str(props["Owner"]), owner)
        self.assertNotIn("Persistent", props, "the flag that never had an effect is gone")
        self.assertGreater(int(props["Id"]), 0, "region Id should be non-zero")
        self.assertEqual(sorted(tuple(map(str, v)) for v in props["Views"]),
                         sorted([(a, "rw", "active"), (b, "ro", "active")]))
        vprops = self.get_all(vm_path(a), VM_IFACE)
        self.assertEqual(str(vprops["Name"]), a)
        self.assertEqual(int(vprops["LeaderPID"]), 0)
        self.assertEqual(int(vprops["Uid"]), 4242)
        self.assertEqual([tuple(map(str, v)) for v in vprops["Views"]], [(r, "rw", "active")])
        # Ids are distinct.
        r2 = self.create_region(PAGE)
        self.assertNotEqual(int(self.region_prop(r2, "Id")), int(props["Id"]),
                            "two regions share an Id")

    def test_list_regions_and_vms(self):
        owner = self.register_vm()
        r = self.create_region(SIZE, owner=owner)
        rows = {str(x[0]): x for x in self.mgr("ListRegions")}
        self.assertIn(r, rows)
        name, size, backend, own, path = rows[r]
        self.assertEqual((int(size), str(backend), str(own), str(path)),
                         (SIZE, "memfd", owner, region_path(r)))
        self.assertEqual(str(self.mgr("GetRegion", "s", r)), region_path(r))
        vms = {str(x[0]): x for x in self.mgr("ListVms")}
        self.assertIn(owner, vms)
        self.assertEqual((int(vms[owner][1]), str(vms[owner][2])), (0, vm_path(owner)))

    def test_manager_properties_and_totals(self):
        props = self.get_all(gmemtest.ROOT_PATH, gmemtest.MANAGER_IFACE)
        version = os.environ.get("GMEM_VERSION")
        if version:
            self.assertEqual(str(props["Version"]), version)
        self.assertIn("memfd", [str(b) for b in props["Backends"]])
        self.assertEqual(str(props["DefaultBackend"]), "memfd")
        total0 = int(props["TotalBytes"])
        alloc0 = int(props["AllocatedBytes"])
        r = self.create_region(SIZE)
        self.assertEqual(int(self.mgr_prop("TotalBytes")), total0 + SIZE,
                         "TotalBytes does not grow by the new region's size")
        self.mgr("Allocate", "stt", r, dbus.UInt64(0), dbus.UInt64(SIZE))
        self.assertGreaterEqual(int(self.mgr_prop("AllocatedBytes")), alloc0 + SIZE)
        self.mgr("DestroyRegion", "s", r)
        self.assertEqual(int(self.mgr_prop("TotalBytes")), total0)

    def test_path_encoding(self):
        for name in ["vm-1.ram_x", "0start", "UPPER.lower-9"]:
            with self.subTest(name=name):
                r = self.create_region(PAGE, name=name)
                self.assertEqual(str(self.mgr("GetRegion", "s", r)), region_path(r))
                self.assertEqual(str(self.region_prop(r, "Name")), name)
                v = self.register_vm(name=name)
                self.assertEqual(str(self.vm_prop(v, "Name")), name)


if __name__ == "__main__":
    gmemtest.main()
