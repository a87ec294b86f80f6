#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Signals and PropertiesChanged, as two kinds of client see them: busctl
monitor (JSON, exact member names and payloads) and gmemctl monitor (its
human-readable lines must name what happened).
"""
import json
import signal
import subprocess

import gmemtest     # before dbus: without python3-dbus it skips the file with the reason

import dbus
from gmemtest import (MiB, PAGE, GmemTestCase, Monitor, ROOT_PATH, MANAGER_IFACE,
                      region_path, vm_path, dbus_options)


class BusMonitor:
    """busctl monitor --json=short restricted to the daemon's objects."""

    def __init__(self, test):
        self.mon = Monitor(["busctl", "--system", "monitor", "--json=short",
                            "--match=type='signal',path_namespace='/org/gmemd/Broker1'"],
                           test.world.env)
        test.addCleanup(self.mon.stop)
        # Wait until the monitor is live: provoke RegionNew until one is seen.
        probe = test.uniq("probe")

        def poke():
            try:
                test.mgr("CreateRegion", "sta{sv}", probe, dbus.UInt64(PAGE), dbus_options({}))
            except dbus.exceptions.DBusException:
                pass
            test.mgr("DestroyRegion", "s", probe)
        seen = self.mon.wait_for(lambda l: probe in l, timeout=15, poke=poke)
        if seen is None:
            raise AssertionError("busctl monitor never showed a signal:\n" + self.mon.stop())

    def messages(self):
        out = []
        for line in self.mon.snapshot():
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def find(self, member, pred=lambda m: True, timeout=10):
        def match(line):
            try:
                m = json.loads(line)
            except ValueError:
                return False
            return m.get("member") == member and pred(m)
        line = self.mon.wait_for(match, timeout=timeout)
        return json.loads(line) if line else None


def payload(m):
    return m.get("payload", {}).get("data", [])


class Signals(GmemTestCase):

    def test_manager_signals(self):
        mon = BusMonitor(self)
        r = self.create_region(MiB)
        vm = self.register_vm()
        m = mon.find("RegionNew", lambda m: payload(m)[:1] == [r])
        self.assertIsNotNone(m, "no RegionNew for the new region")
        self.assertEqual(m["interface"], MANAGER_IFACE)
        self.assertEqual(m["path"], ROOT_PATH)
        self.assertEqual(payload(m), [r, region_path(r)])
        m = mon.find("VmNew", lambda m: payload(m)[:1] == [vm])
        self.assertIsNotNone(m, "no VmNew")
        self.assertEqual(payload(m), [vm, vm_path(vm)])
        self.mgr("UnregisterVm", "s", vm)
        m = mon.find("VmRemoved", lambda m: payload(m)[:1] == [vm])
        self.assertIsNotNone(m, "no VmRemoved")
        self.assertEqual(payload(m), [vm, vm_path(vm)])
        self.mgr("DestroyRegion", "s", r)
        m = mon.find("RegionRemoved", lambda m: payload(m)[:1] == [r])
        self.assertIsNotNone(m, "no RegionRemoved")
        self.assertEqual(payload(m), [r, region_path(r)])

    def test_migration_signals(self):
        mon = BusMonitor(self)
        r = self.create_region(MiB)
        src, dst = self.register_vm(), self.register_vm()
        self.attach(src, r, "rw")
        path, _ = self.begin_migration(src, dst)
        self.mgr("CommitMigration", "o", dbus.ObjectPath(path))
        m = mon.find("MigrationChanged", lambda m: payload(m) == [path, "committed"])
        self.assertIsNotNone(m, "no MigrationChanged(committed)")
        m = mon.find("ViewRevoked", lambda m: payload(m) == [src, r])
        self.assertIsNotNone(m, "no ViewRevoked(src, region) after commit")

    def test_abort_signal(self):
        mon = BusMonitor(self)
        r = self.create_region(MiB)
        src, dst = self.register_vm(), self.register_vm()
        self.attach(src, r, "rw")
        path, _ = self.begin_migration(src, dst)
        self.mgr("AbortMigration", "o", dbus.ObjectPath(path))
        m = mon.find("MigrationChanged", lambda m: payload(m) == [path, "aborted"])
        self.assertIsNotNone(m, "no MigrationChanged(aborted)")

    def subscribe(self):
        """Views changes are announced only while some bus client is subscribed."""
        self.mgr("Subscribe", "")
        self.addCleanup(self.mgr, "Unsubscribe", "")

    def test_leader_exit_signals_view_revoked(self):
        mon = BusMonitor(self)
        self.subscribe()
        r = self.create_region(MiB)
        leader = self.spawn_leader()
        vm = self.register_leader_vm(leader.pid)
        self.attach(vm, r, "rw")
        leader.kill()
        leader.wait()
        # Released views either go (Vm.Views changes) or are revoked (ViewRevoked).
        def released(m):
            if m.get("member") == "ViewRevoked":
                return payload(m) == [vm, r]
            p = payload(m)
            return (m.get("member") == "PropertiesChanged" and m.get("path") == vm_path(vm)
                    and len(p) >= 2 and "Views" in p[1]
                    and all(v[0] != r or v[2] != "active" for v in p[1]["Views"]["data"]))
        line = mon.mon.wait_for(lambda l: l.startswith("{") and released(json.loads(l)), timeout=15)
        self.assertIsNotNone(line, "neither ViewRevoked(vm, region) nor a PropertiesChanged "
                                   "of Vm.Views without the view after the leader exited")

    def test_views_changes_only_for_subscribers(self):
        """With nobody subscribed, a view change sends no PropertiesChanged;
        from Subscribe to Unsubscribe it does, and a subscription ends with
        the subscriber's connection."""
        mon = BusMonitor(self)
        r = self.create_region(MiB)
        vm = self.register_vm()

        def views_of(path):
            return lambda m: m.get("path") == path and "Views" in (payload(m)[1] if len(payload(m)) > 1 else {})
        self.attach(vm, r, "rw")
        self.mgr("Detach", "ss", vm, r)
        # The monitor sees signals in order: a VmNew after the attach proves it saw past it.
        fence = self.register_vm()
        self.assertIsNotNone(mon.find("VmNew", lambda m: payload(m)[0] == fence), "VmNew of the fence VM")
        self.assertIsNone(next((m for m in mon.messages() if m.get("member") == "PropertiesChanged"
                                and views_of(vm_path(vm))(m)), None),
                          "no PropertiesChanged of Views while nobody is subscribed")
        self.subscribe()
        self.attach(vm, r, "rw")
        self.assertIsNotNone(mon.find("PropertiesChanged", views_of(vm_path(vm))),
                             "PropertiesChanged of Vm.Views once subscribed")
        # A second connection subscribes and hangs up: the first one's subscription is what remains.
        other = dbus.bus.BusConnection(self.world.address)
        other.call_blocking(gmemtest.BUS_NAME, ROOT_PATH, MANAGER_IFACE, "Subscribe", "", [])
        other.close()
        self.mgr("Detach", "ss", vm, r)
        self.assertIsNotNone(mon.find("PropertiesChanged", lambda m: views_of(vm_path(vm))(m)
                                      and payload(m)[1]["Views"]["data"] == []),
                             "PropertiesChanged of Vm.Views after Detach, still subscribed")
        self.mgr("Unsubscribe", "")
        self.mgr("Unsubscribe", "")      # not subscribed: no error
        vm2 = self.register_vm()
        self.attach(vm2, r, "ro")
        fence = self.register_vm()
        self.assertIsNotNone(mon.find("VmNew", lambda m: payload(m)[0] == fence), "VmNew of the second fence")
        self.assertIsNone(next((m for m in mon.messages() if m.get("member") == "PropertiesChanged"
                                and views_of(vm_path(vm2))(m)), None),
                          "no PropertiesChanged of Views after Unsubscribe")

    def test_subscription_ends_with_its_connection(self):
        """The only subscriber hangs up: from then on a view change sends no PropertiesChanged, of the VM
        or of the region."""
        mon = BusMonitor(self)
        r = self.create_region(MiB)

        def views_changed(vm):
            return lambda m: (m.get("member") == "PropertiesChanged" and m.get("path") in (vm_path(vm), region_path(r))
                              and "Views" in (payload(m)[1] if len(payload(m)) > 1 else {}))

        def attach_new_vm():
            before = len(mon.messages())
            vm = self.register_vm()
            self.attach(vm, r, "ro")
            # The monitor sees signals in order: a VmNew after the attach proves it saw past it.
            fence = self.register_vm()
            self.assertIsNotNone(mon.find("VmNew", lambda m: payload(m)[0] == fence), "VmNew of the fence VM")
            return vm, {m["path"] for m in mon.messages()[before:] if views_changed(vm)(m)}

        other = dbus.bus.BusConnection(self.world.address)
        name = other.get_unique_name()
        other.call_blocking(gmemtest.BUS_NAME, ROOT_PATH, MANAGER_IFACE, "Subscribe", "", [])
        vm, seen = attach_new_vm()
        self.assertEqual(seen, {vm_path(vm), region_path(r)},
                         "another connection's subscription: PropertiesChanged of Vm.Views and Region.Views")
        other.close()
        # Once the bus has let the name go, it has told gmemd, before anything this connection sends next.
        self.wait_until(lambda: not self.conn.name_has_owner(name), "the bus to see the subscriber gone")
        vm, seen = attach_new_vm()
        self.assertEqual(seen, set(), "no PropertiesChanged of Views once the only subscriber is gone")

    def test_properties_changed(self):
        mon = BusMonitor(self)
        self.subscribe()
        r = self.create_region(MiB)
        vm = self.register_vm()

        def changed(path, iface, prop):
            def pred(m):
                if m.get("path") != path:
                    return False
                p = payload(m)
                return len(p) >= 2 and p[0] == iface and (prop in p[1] or prop in (p[2] if len(p) > 2 else []))
            return pred
        # Manager totals change with a new region.
        m = mon.find("PropertiesChanged", changed(ROOT_PATH, MANAGER_IFACE, "TotalBytes"))
        self.assertIsNotNone(m, "no PropertiesChanged for Manager.TotalBytes after CreateRegion")
        self.attach(vm, r, "rw")
        m = mon.find("PropertiesChanged", changed(region_path(r), gmemtest.REGION_IFACE, "Views"))
        self.assertIsNotNone(m, "no PropertiesChanged for Region.Views after Attach")
        m = mon.find("PropertiesChanged", changed(vm_path(vm), gmemtest.VM_IFACE, "Views"))
        self.assertIsNotNone(m, "no PropertiesChanged for Vm.Views after Attach")
        # AllocatedBytes changes with every page fault, so it is read, not signalled; it must say so.
        self.mgr("Allocate", "stt", r, dbus.UInt64(0), dbus.UInt64(MiB))
        xml = self.call(ROOT_PATH, "org.freedesktop.DBus.Introspectable", "Introspect")
        self.assertRegex(xml, r'name="AllocatedBytes"[^>]*>\s*<annotation name="org.freedesktop.DBus.Property.'
                              r'EmitsChangedSignal" value="false"',
                         "Manager.AllocatedBytes must be annotated as not emitting PropertiesChanged")

    def test_gmemctl_monitor(self):
        mon = Monitor([self.world.gmemctl, "monitor"], self.world.env)
        self.addCleanup(mon.stop)
        probe = self.uniq("probe")

        def poke():
            self.mgr("CreateRegion", "sta{sv}", probe, dbus.UInt64(PAGE), dbus_options({}))
            self.mgr("DestroyRegion", "s", probe)
        self.assertIsNotNone(mon.wait_for(lambda l: probe in l, timeout=15, poke=poke),
                             "gmemctl monitor printed nothing about a new region:\n"
                             + "\n".join(mon.snapshot()))
        r = self.create_region(MiB)
        vm = self.register_vm()
        self.attach(vm, r, "rw")
        other = self.register_vm()
        path, _ = self.begin_migration(vm, other)
        self.mgr("CommitMigration", "o", dbus.ObjectPath(path))
        for what, pred in [
                ("the new region", lambda l: r in l),
                ("the new VM", lambda l: vm in l),
                ("the committed migration", lambda l: "commit" in l.lower()),
                ("the revoked view", lambda l: "revoke" in l.lower() and vm in l)]:
            with self.subTest(event=what):
                self.assertIsNotNone(mon.wait_for(pred, timeout=10),
                                     f"gmemctl monitor printed nothing about {what}:\n"
                                     + "\n".join(mon.snapshot()))
        self.assertIsNone(mon.proc.poll(), "gmemctl monitor exited")
        mon.proc.send_signal(signal.SIGINT)
        try:
            rc = mon.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.fail("gmemctl monitor did not exit on SIGINT")
        self.assertIn(rc, (0, -signal.SIGINT, 130), f"gmemctl monitor exited {rc} on SIGINT")


if __name__ == "__main__":
    gmemtest.main()
