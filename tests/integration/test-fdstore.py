#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The fd store's limits. systemd keeps at most FileDescriptorStoreMax= fds for
a unit and closes what is stored beyond them, so a daemon that counted on
every FDSTORE=1 being kept would lose objects in a crash without anyone
seeing it. gmemd is told the limit ($FDSTORE, as systemd 254 and later set
it) and makes nothing it could not store: a call that would need more
entries than are left is refused with QuotaExceeded naming the store, with
one entry kept free for replacing an entry. The stand-in service manager
(fdstore.py) enforces the same limit as systemd, so that any entry gmemd
sent past it shows up as refused; after kill -9 everything a client was
told about is back. When an entry cannot be stored at all (the service
manager went away), the Manager's Persistence says "degraded". Without a
service manager, Persistence says "none", and the start-up warning says
what a crash forgets, which kill -9 then shows to be so.
"""
import mmap
import os
import signal

import dbus

import gmemtest
from fdstore import FdStore, StoreDaemon
from gmemtest import MiB, GmemTestCase

CAPACITY = 12
QUOTA = gmemtest.ERROR_PREFIX + "QuotaExceeded"


class FdStoreLimits(StoreDaemon, GmemTestCase):

    def setUp(self):
        self.__class__.store = FdStore(os.path.join(gmemtest.WORLD.tmp, f"fdstore-{self._testMethodName}"),
                                       capacity=CAPACITY)
        self.start_daemon()
        super().setUp()

    def tearDown(self):
        super().tearDown()
        self.stop_daemon(signal.SIGTERM)
        self.store.close()

    def refused(self, method, sig, *args):
        with self.assertRaises(dbus.exceptions.DBusException, msg=f"{method} past the store's limit") as cm:
            self.mgr(method, sig, *args)
        self.assertEqual(cm.exception.get_dbus_name(), QUOTA, f"{method}: {cm.exception}")
        msg = cm.exception.get_dbus_message()
        self.assertIn("fd store", msg, "the refusal names the fd store")
        self.assertIn(f"the {CAPACITY} the service manager keeps", msg, "and its limit")
        return msg

    def snapshot(self):
        regions = sorted(str(n) for n, _s, _b, _o, _p in self.mgr("ListRegions"))
        vms = {}
        for n, _pid, p in self.mgr("ListVms"):
            vms[str(n)] = sorted(tuple(map(str, v)) for v in self.get_prop(p, gmemtest.VM_IFACE, "Views"))
        migrations = sorted((str(s), str(t), str(st)) for s, t, st, _p in self.mgr("ListMigrations"))
        return regions, vms, migrations

    def test_nothing_is_made_past_the_store(self):
        self.assertEqual(self.mgr_prop("Persistence"), "fd-store")
        # One entry per region, one kept free: CAPACITY - 1 regions fit.
        regions = [self.create_region(MiB, cleanup=False) for _ in range(CAPACITY - 1)]
        self.refused("CreateRegion", "sta{sv}", "one-too-many", dbus.UInt64(MiB), gmemtest.dbus_options({}))
        self.refused("RegisterVm", "sa{sv}", "vm-too-many", gmemtest.dbus_options({}))
        self.assertNotIn("one-too-many", self.snapshot()[0], "the refused region was not made")

        # Room for a VM, one view of it, and a second VM: 11 - 8 + 3 = 6 entries.
        for r in regions[3:]:
            self.mgr("DestroyRegion", "s", r)
        a = self.register_vm(cleanup=False)
        b = self.register_vm(cleanup=False)
        self.attach(a, regions[0], "rw")
        self.attach(a, regions[1], "ro")
        # 3 regions + 2 VMs + 2 views = 7; a migration of 2 views needs 2 files, 2 pending records and its own
        # record: 12 with the spare one, one too many.
        msg = self.refused("BeginMigration", "ssa{sv}", a, b, gmemtest.dbus_options({}))
        self.assertIn("5 more entries", msg, "the refusal counts what the migration needed")
        self.assertEqual(self.mgr("ListMigrations"), [], "the refused migration left nothing")
        self.mgr("DestroyRegion", "s", regions[2])
        path, _fds = self.mgr("BeginMigration", "ssa{sv}", a, b, gmemtest.dbus_options({}))
        self.assertEqual(self.store.refused, [], "gmemd sent the store nothing it had to refuse")

        # Everything a client was told about survives kill -9.
        before = self.snapshot()
        self.stop_daemon(signal.SIGKILL)
        self.start_daemon()
        self.assertEqual(self.snapshot(), before, "after kill -9 every region, VM, view and migration is back")
        self.assertEqual(self.mgr_prop("Persistence"), "fd-store")
        self.mgr("CommitMigration", "o", path)
        self.assertEqual(self.store.refused, [], "committing (views replaced by revoked records) fits too")
        for vm in (a, b):
            self.mgr("UnregisterVm", "s", vm)
        for r in regions[:2]:
            self.mgr("DestroyRegion", "s", r)

    def test_degraded_when_the_store_is_gone(self):
        self.assertEqual(self.mgr_prop("Persistence"), "fd-store")
        status = self.gmemctl("status").out
        self.assertIn("Persistence: fd-store", status)
        # The service manager goes away: nothing can be stored any more.
        self.store.running = False
        self.store.thread.join()
        os.unlink(self.store.path)
        r = self.create_region(MiB)
        self.assertIn(r, self.snapshot()[0], "the call itself still succeeds")
        self.assertEqual(self.mgr_prop("Persistence"), "degraded",
                         "but the broker says a crash may now lose what it made")
        self.assertIn("Persistence: degraded", self.gmemctl("status").out)
        self.assertIn("fd store is degraded", self.world.gmemd_log_text())


class WithoutServiceManager(GmemTestCase):
    """gmemd started with no $NOTIFY_SOCKET, as by hand or by a supervisor
    that keeps no fds."""

    def setUp(self):
        gmemtest.WORLD.start_gmemd(notify=False)
        super().setUp()

    def tearDown(self):
        super().tearDown()
        gmemtest.WORLD.stop_gmemd(signal.SIGTERM)

    def test_a_crash_forgets_what_the_warning_says(self):
        persistence = self.mgr_prop("Persistence")
        if persistence == "kernel":
            self.skip_or_fail("gmem.ko keeps a ledger on this host: kmod regions would survive", dependency=False)
        self.assertEqual(persistence, "none")
        self.assertIn("Persistence: none (a restart forgets every region, VM, view and migration)",
                      self.gmemctl("status").out)
        log = self.world.gmemd_log_text()
        self.assertIn("if gmemd crashes or restarts, it forgets every region, VM, view and migration", log)
        self.assertIn("Memory a VM still maps stays with that VM, but outside every quota", log)

        # A VM that maps its region when gmemd is killed.
        r = self.create_region(MiB, cleanup=False)
        vm = self.register_vm(cleanup=False)
        fd = self.attach(vm, r, "rw")
        with mmap.mmap(fd, MiB) as m:
            m[:8] = b"kept-ram"
        self.world.stop_gmemd(signal.SIGKILL)
        self.world.start_gmemd(notify=False)
        self.assertEqual(list(self.mgr("ListRegions")), [], "every region is forgotten")
        self.assertEqual(list(self.mgr("ListVms")), [], "every VM and its views are forgotten")
        self.assertEqual(self.mgr_prop("TotalBytes"), 0, "the memory the VM keeps is outside every quota")
        self.assertEqual(os.pread(fd, 8, 0), b"kept-ram", "the memory stays with the VM that maps it")
        self.assertEqual(self.mgr_prop("Persistence"), "none")

    def test_persistent_is_gone(self):
        # It was recorded and had no effect; whether state survives is the broker's Persistence, for every region.
        with self.assertRaises(dbus.exceptions.DBusException) as cm:
            self.mgr("CreateRegion", "sta{sv}", self.uniq("r"), dbus.UInt64(MiB),
                     gmemtest.dbus_options({"persistent": True}))
        self.assertEqual(cm.exception.get_dbus_name(), gmemtest.ERROR_PREFIX + "InvalidArgument")
        self.assertIn("Unknown option 'persistent'", cm.exception.get_dbus_message())
        res = self.gmemctl("create-region", "--persistent", self.uniq("r"), "1M", expect=2)
        self.assertIn("persistent", res.err)
        self.assertEqual(list(self.mgr("ListRegions")), [], "nothing was made")


if __name__ == "__main__":
    gmemtest.main(start_daemon=False)
