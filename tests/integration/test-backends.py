#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Backends beyond the default: hugetlb answers BackendUnavailable, naming the
missing huge-page reservation, when none are reserved; secret works where
the kernel has memfd_secret (read-write views only) and answers
BackendUnavailable where it does not. The Backends property lists exactly
what is usable on this host: each test probes the host itself (memfd_secret
from this process, the huge-page reservation from /proc/meminfo) and
decides from that what gmemd must answer.
"""
import ctypes
import errno
import os

import dbus

import gmemtest
from gmemtest import (MiB, PAGE, WRAPPER, GmemTestCase, dbus_options, hugepages_reserved,
                      access_mode)

SYS_memfd_secret = 447  # x86_64
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def host_memfd_secret():
    """None if memfd_secret(2) works in this process, else the errno it
    failed with (ENOSYS: the kernel lacks it, or on 6.1 it was not enabled
    with secretmem.enable=1)."""
    fd = _libc.syscall(SYS_memfd_secret, os.O_CLOEXEC)
    if fd < 0:
        return ctypes.get_errno()
    os.close(fd)
    return None


class Backends(GmemTestCase):

    def backends(self):
        return [str(b) for b in self.mgr_prop("Backends")]

    def test_default_is_memfd(self):
        r = self.create_region(MiB)
        self.assertEqual(str(self.region_prop(r, "Backend")), "memfd")
        self.assertIn("memfd", self.backends())

    def test_hugetlb(self):
        self.lock_hugepages(exclusive=False)
        if hugepages_reserved() == 0:
            self.assertNotIn("hugetlb", self.backends(),
                             "Backends lists hugetlb although no huge pages are reserved")
            msg = self.assertMgrError("BackendUnavailable", "CreateRegion", "sta{sv}",
                                      self.uniq("r"), dbus.UInt64(4 * MiB),
                                      dbus_options({"backend": "hugetlb"}))
            self.assertRegex(msg.lower(), r"huge ?page|nr_hugepages|hugetlb",
                             "the message does not name the missing huge-page reservation")
            self.assertEqual([n for n in self.region_names() if "hugetlb" in n], [])
            return
        # Huge pages are reserved: sizes must be multiples of the huge page size.
        self.assertIn("hugetlb", self.backends())
        self.assertMgrError("InvalidSize", "CreateRegion", "sta{sv}", self.uniq("r"),
                            dbus.UInt64(PAGE), dbus_options({"backend": "hugetlb"}))
        r = self.create_region(2 * MiB, backend="hugetlb")
        vm = self.register_vm()
        fd = self.attach(vm, r, "rw")
        os.pwrite(fd, b"huge", 0)

    def test_secret(self):
        host_err = host_memfd_secret()
        listed = "secret" in self.backends()
        if host_err is not None:
            self.assertFalse(listed, f"Backends lists secret but memfd_secret fails here "
                                     f"({errno.errorcode.get(host_err, host_err)})")
            self.assertMgrError("BackendUnavailable", "CreateRegion", "sta{sv}", self.uniq("r"),
                                dbus.UInt64(MiB), dbus_options({"backend": "secret"}))
            return
        if not listed and WRAPPER:
            # valgrind 3.19 does not implement memfd_secret: under it gmemd
            # gets ENOSYS and rightly leaves the backend out, and says so.
            log = self.world.gmemd_log_text()
            if "the kernel lacks memfd_secret" in log:
                self.skipTest(f"memfd_secret works here but not under {os.path.basename(WRAPPER[0])}, "
                              f"which gmemd runs under (ENOSYS)")
        self.assertTrue(listed, "memfd_secret works on this host (probed by the test), so Backends "
                                "must list secret:\n" + self.world.gmemd_log_text())
        r = self.create_region(MiB, backend="secret")
        self.assertEqual(str(self.region_prop(r, "Backend")), "secret")
        vm = self.register_vm()
        fd = self.attach(vm, r, "rw")
        self.assertEqual(access_mode(fd), os.O_RDWR)
        ro_vm = self.register_vm()
        with self.assertRaises(dbus.exceptions.DBusException,
                               msg="a read-only view of a secret region was handed out") as cm:
            self.attach(ro_vm, r, "ro")
        self.assertTrue(cm.exception.get_dbus_name().startswith(gmemtest.ERROR_PREFIX),
                        cm.exception.get_dbus_name())
        self.assertEqual(self.views_of_vm(ro_vm), [])
        self.assertMgrError("NotSupported", "SetMemoryAttributes", "stts", r, dbus.UInt64(0),
                            dbus.UInt64(PAGE), "private")

    def test_secret_allocated_bytes(self):
        # Secret memory has no block count (st_blocks stays 0): AllocatedBytes counts its pages all the same.
        if host_memfd_secret() is not None or "secret" not in self.backends():
            self.skipTest("memfd_secret does not work here (test_secret says why)")
        r = self.create_region(MiB, backend="secret")
        self.assertEqual(int(self.region_prop(r, "AllocatedBytes")), 0, "a fresh secret region has no pages")
        p = self.create_region(MiB, backend="secret", populate=True)
        self.assertEqual(int(self.region_prop(p, "AllocatedBytes")), MiB,
                         "a secret region created with populate has every page allocated")
        self.mgr("Allocate", "stt", r, dbus.UInt64(PAGE), dbus.UInt64(2 * PAGE))
        self.assertEqual(int(self.region_prop(r, "AllocatedBytes")), 2 * PAGE,
                         "Allocate on a secret region counts the pages it faulted in")


if __name__ == "__main__":
    gmemtest.main()
