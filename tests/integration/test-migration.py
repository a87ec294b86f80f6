#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Intra-host migration is a link, not a copy: BeginMigration gives the target
a pending view of each of the source's regions on the same inode, with the
same access; Commit makes them active and revokes the source's; Abort drops
the target's. One migration per VM at a time.
"""
import os

import gmemtest     # before dbus: without python3-dbus it skips the file with the reason

import dbus
from gmemtest import (MiB, PAGE, GmemTestCase, access_mode, same_open_file,
                      MIGRATION_IFACE, dbus_options)

SIZE = 2 * MiB


class Migration(GmemTestCase):

    def two_regions(self):
        ram = self.create_region(SIZE)
        rom = self.create_region(MiB)
        src, dst = self.register_vm(), self.register_vm()
        f_ram = self.attach(src, ram, "rw")
        f_rom = self.attach(src, rom, "ro")
        data = os.urandom(PAGE)
        os.pwrite(f_ram, data, SIZE - PAGE)
        return ram, rom, src, dst, f_ram, f_rom, data

    def migration_props(self, path):
        return self.get_all(path, MIGRATION_IFACE)

    def test_commit_moves_views_without_copying(self):
        ram, rom, src, dst, f_ram, f_rom, data = self.two_regions()
        path, fds = self.begin_migration(src, dst)
        self.assertTrue(path.startswith("/org/gmemd/Broker1/migration/"), path)
        self.assertEqual(sorted(fds), sorted([ram, rom]), "BeginMigration fds name the wrong regions")
        self.assertEqual(os.fstat(fds[ram]).st_ino, os.fstat(f_ram).st_ino,
                         "the target's view is not on the source's inode")
        self.assertEqual(access_mode(fds[ram]), os.O_RDWR, "ram view lost its rw access")
        self.assertEqual(access_mode(fds[rom]), os.O_RDONLY, "rom view gained access")
        self.assertFalse(same_open_file(fds[ram], f_ram),
                         "the target's view shares the source's open file")
        self.assertEqual(os.pread(fds[ram], PAGE, SIZE - PAGE), data, "data not there before commit")
        self.assertEqual(self.views_of_vm(dst), sorted([(ram, "rw", "pending"), (rom, "ro", "pending")]))
        self.assertEqual(self.views_of_vm(src), sorted([(ram, "rw", "active"), (rom, "ro", "active")]))
        props = self.migration_props(path)
        self.assertEqual((str(props["Source"]), str(props["Target"]), str(props["State"])),
                         (src, dst, "prepared"))
        self.assertEqual(sorted(map(str, props["Regions"])), sorted([ram, rom]))
        rows = {str(m[3]): m for m in self.mgr("ListMigrations")}
        self.assertIn(path, rows)
        self.assertEqual(tuple(map(str, rows[path][:3])), (src, dst, "prepared"))

        self.mgr("CommitMigration", "o", dbus.ObjectPath(path))
        self.assertEqual(str(self.get_prop(path, MIGRATION_IFACE, "State")), "committed")
        self.assertEqual(self.views_of_vm(dst), sorted([(ram, "rw", "active"), (rom, "ro", "active")]))
        for v in self.views_of_vm(src):
            self.assertEqual(v[2], "revoked", f"source view {v} is not revoked after commit")
        self.assertMgrError("NoSuchView", "GetFd", "ss", src, ram)
        again = self.get_fd(dst, ram)
        self.assertTrue(same_open_file(again, fds[ram]), "GetFd(dst) is not the migrated view")
        self.assertEqual(os.pread(again, PAGE, SIZE - PAGE), data, "data lost in migration")

    def test_abort_drops_target_views(self):
        ram, rom, src, dst, f_ram, f_rom, data = self.two_regions()
        path, fds = self.begin_migration(src, dst)
        self.call(path, MIGRATION_IFACE, "Abort")
        self.assertEqual(str(self.get_prop(path, MIGRATION_IFACE, "State")), "aborted")
        self.assertEqual(self.views_of_vm(dst), [], "Abort left target views")
        self.assertEqual(self.views_of_vm(src), sorted([(ram, "rw", "active"), (rom, "ro", "active")]))
        self.assertEqual(os.pread(self.get_fd(src, ram), PAGE, SIZE - PAGE), data)
        # A new migration is possible after the abort.
        path2, _ = self.begin_migration(src, dst)
        self.call(path2, MIGRATION_IFACE, "Commit")
        self.assertEqual(str(self.get_prop(path2, MIGRATION_IFACE, "State")), "committed")

    def test_migration_errors(self):
        ram, rom, src, dst, f_ram, f_rom, data = self.two_regions()
        third = self.register_vm()
        empty = self.register_vm()
        self.assertMgrError("InvalidArgument", "BeginMigration", "ssa{sv}", src, src,
                            dbus_options({}))
        self.assertMgrError("InvalidArgument", "BeginMigration", "ssa{sv}", empty, dst,
                            dbus_options({}))
        # Target already has a view of one of the regions.
        self.attach(third, rom, "ro")
        self.assertMgrError("Busy", "BeginMigration", "ssa{sv}", src, third, dbus_options({}))
        self.assertEqual(self.views_of_vm(third), [(rom, "ro", "active")],
                         "a Busy BeginMigration changed the target's views")
        path, _ = self.begin_migration(src, dst)
        for a, b in [(src, empty), (third, dst), (dst, empty)]:
            with self.subTest(source=a, target=b):
                self.assertMgrError("MigrationInProgress", "BeginMigration", "ssa{sv}", a, b,
                                    dbus_options({}))
        self.assertMgrError("MigrationInProgress", "UnregisterVm", "s", src)
        self.assertMgrError("MigrationInProgress", "UnregisterVm", "s", dst)
        self.assertMgrError("Busy", "DestroyRegion", "s", ram)
        self.assertIn(src, self.vm_names())
        self.mgr("AbortMigration", "o", dbus.ObjectPath(path))

    def test_unregister_after_commit(self):
        ram, rom, src, dst, f_ram, f_rom, data = self.two_regions()
        path, fds = self.begin_migration(src, dst)
        self.mgr("CommitMigration", "o", dbus.ObjectPath(path))
        self.mgr("UnregisterVm", "s", src)
        self.assertNotIn(src, self.vm_names())
        self.assertEqual(os.pread(self.get_fd(dst, ram), PAGE, SIZE - PAGE), data)
        # The finished migration stays in the history after its VMs go, object and all.
        self.mgr("UnregisterVm", "s", dst)
        rows = {str(m[3]): tuple(map(str, m[:3])) for m in self.mgr("ListMigrations")}
        self.assertEqual(rows.get(path), (src, dst, "committed"),
                         "ListMigrations keeps a finished migration whose VMs were unregistered")
        props = self.migration_props(path)
        self.assertEqual((str(props["Source"]), str(props["Target"]), str(props["State"])),
                         (src, dst, "committed"), "and its object answers")
        out = self.gmemctl("--no-legend", "list-migrations").out
        self.assertRegex(out, rf"(?m)^\s*\d+\s+{src}\s+{dst}\s+committed\s+{path}$",
                         "gmemctl list-migrations shows it")

    def test_migrate_back_replaces_revoked_view(self):
        ram, rom, src, dst, f_ram, f_rom, data = self.two_regions()
        path, _ = self.begin_migration(src, dst)
        self.mgr("CommitMigration", "o", dbus.ObjectPath(path))
        # src holds revoked views only; moving back replaces them.
        path2, fds = self.begin_migration(dst, src)
        self.assertEqual(sorted(fds), sorted([ram, rom]))
        self.mgr("CommitMigration", "o", dbus.ObjectPath(path2))
        self.assertEqual(self.views_of_vm(src), sorted([(ram, "rw", "active"), (rom, "ro", "active")]))
        self.assertEqual(os.pread(self.get_fd(src, ram), PAGE, SIZE - PAGE), data,
                         "data lost on the way back")
        self.assertNotEqual(str(path), str(path2), "two migrations share an object path")


if __name__ == "__main__":
    gmemtest.main()
