#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Backends beyond the default: hugetlb answers BackendUnavailable, naming the
missing huge-page reservation, when none are reserved; secret works where
the kernel has memfd_secret (read-write views only) and answers
BackendUnavailable where it does not. The Backends property lists only what
is usable on this host. Each test decides from the host what it expects.
"""
import os

import dbus

import gmemtest
from gmemtest import (MiB, PAGE, GmemTestCase, dbus_options, hugepages_reserved,
                      memfd_secret_works, access_mode)


class Backends(GmemTestCase):

    def backends(self):
        return [str(b) for b in self.mgr_prop("Backends")]

    def test_default_is_memfd(self):
        r = self.create_region(MiB)
        self.assertEqual(str(self.region_prop(r, "Backend")), "memfd")
        self.assertIn("memfd", self.backends())

    def test_hugetlb(self):
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
        # Under valgrind the syscall may be unknown to the wrapper; the daemon
        # then (rightly) reports the backend unusable. Decide from Backends
        # only where the host has it.
        host_has = memfd_secret_works()
        listed = "secret" in self.backends()
        if not host_has:
            self.assertFalse(listed, "Backends lists secret but memfd_secret fails here")
        if not listed:
            self.assertMgrError("BackendUnavailable", "CreateRegion", "sta{sv}", self.uniq("r"),
                                dbus.UInt64(MiB), dbus_options({"backend": "secret"}))
            return
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


if __name__ == "__main__":
    gmemtest.main()
