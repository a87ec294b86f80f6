#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Introspection is complete: every method (with its argument names and
types), property and signal of doc/api-contract.md appears on every object,
as busctl introspect and gdbus introspect --xml show it; and busctl and
gdbus can drive the API by hand.
"""
import xml.etree.ElementTree as ET

import gmemtest
from gmemtest import (MiB, GmemTestCase, ROOT_PATH, MANAGER_IFACE, REGION_IFACE, VM_IFACE,
                      MIGRATION_IFACE, BUS_NAME, region_path, vm_path)

# name -> (in args, out args); an arg is (name or None, type).
MANAGER_METHODS = {
    "CreateRegion": ([("name", "s"), ("size", "t"), ("options", "a{sv}")], [("region", "o")]),
    "AdoptRegion": ([("name", "s"), ("fd", "h"), ("options", "a{sv}")], [("region", "o")]),
    "DestroyRegion": ([("name", "s")], []),
    "GetRegion": ([("name", "s")], [("region", "o")]),
    "ListRegions": ([], [("regions", "a(stsso)")]),
    "ListRegionsFull": ([], [("regions", "a(sttssta(sss)o)")]),
    "RegisterVm": ([("name", "s"), ("options", "a{sv}")], [("vm", "o")]),
    "UnregisterVm": ([("name", "s")], []),
    "GetVm": ([("name", "s")], [("vm", "o")]),
    "ListVms": ([], [("vms", "a(suo)")]),
    "ListVmsFull": ([], [("vms", "a(suua(sss)o)")]),
    "Attach": ([("vm", "s"), ("region", "s"), ("access", "s"), ("options", "a{sv}")],
               [("fd", "h")]),
    "Detach": ([("vm", "s"), ("region", "s")], []),
    "GetFd": ([("vm", "s"), ("region", "s")], [("fd", "h")]),
    "BeginMigration": ([("source_vm", "s"), ("target_vm", "s"), ("options", "a{sv}")],
                       [("migration", "o"), ("fds", "a(sh)")]),
    "CommitMigration": ([("migration", "o")], []),
    "AbortMigration": ([("migration", "o")], []),
    "ListMigrations": ([], [("migrations", "a(ssso)")]),
    "Discard": ([("region", "s"), ("offset", "t"), ("length", "t")], []),
    "Allocate": ([("region", "s"), ("offset", "t"), ("length", "t")], []),
    "SetMemoryAttributes": ([("region", "s"), ("offset", "t"), ("length", "t"),
                             ("attribute", "s")], []),
    "Reload": ([], []),
}
MANAGER_SIGNALS = {
    "RegionNew": [("name", "s"), ("path", "o")],
    "RegionRemoved": [("name", "s"), ("path", "o")],
    "VmNew": [("name", "s"), ("path", "o")],
    "VmRemoved": [("name", "s"), ("path", "o")],
    "ViewRevoked": [("vm", "s"), ("region", "s")],
    "MigrationChanged": [("migration", "o"), ("state", "s")],
}
MANAGER_PROPS = {"Version": "s", "Backends": "as", "DefaultBackend": "s",
                 "TotalBytes": "t", "AllocatedBytes": "t", "Policy": "s", "Persistence": "s"}

REGION_METHODS = {
    "Destroy": ([], []),
    "Discard": ([("offset", "t"), ("length", "t")], []),
    "Allocate": ([("offset", "t"), ("length", "t")], []),
    "SetMemoryAttributes": ([("offset", "t"), ("length", "t"), ("attribute", "s")], []),
}
REGION_PROPS = {"Name": "s", "Id": "t", "Size": "t", "Backend": "s", "Owner": "s",
                "AllocatedBytes": "t", "Views": "a(sss)"}

VM_METHODS = {
    "Unregister": ([], []),
    "Attach": ([("region", "s"), ("access", "s"), ("options", "a{sv}")], [(None, "h")]),
    "Detach": ([("region", "s")], []),
    "GetFd": ([("region", "s")], [(None, "h")]),
}
VM_PROPS = {"Name": "s", "LeaderPID": "u", "Uid": "u", "Views": "a(sss)"}

MIGRATION_METHODS = {"Commit": ([], []), "Abort": ([], [])}
MIGRATION_PROPS = {"Id": "t", "Source": "s", "Target": "s", "State": "s", "Regions": "as"}


class Introspection(GmemTestCase):

    def xml_of(self, path):
        res = self.gdbus("introspect", "--system", "--dest", BUS_NAME, "--object-path", path,
                         "--xml")
        return ET.fromstring(res.out)

    def check_interface(self, path, iface, methods, props, signals):
        root = self.xml_of(path)
        node = [i for i in root.findall("interface") if i.get("name") == iface]
        self.assertEqual(len(node), 1, f"{path} does not have interface {iface}")
        node = node[0]
        got_methods = {m.get("name"): m for m in node.findall("method")}
        for name, (ins, outs) in methods.items():
            with self.subTest(interface=iface, method=name):
                self.assertIn(name, got_methods, f"{iface}.{name} is missing")
                args = got_methods[name].findall("arg")
                got_in = [(a.get("name"), a.get("type")) for a in args if a.get("direction", "in") == "in"]
                got_out = [(a.get("name"), a.get("type")) for a in args if a.get("direction") == "out"]
                self.assertEqual([t for _, t in got_in], [t for _, t in ins],
                                 f"{iface}.{name} input types")
                self.assertEqual([t for _, t in got_out], [t for _, t in outs],
                                 f"{iface}.{name} output types")
                for (want, _), (got, _) in zip(ins + outs, got_in + got_out):
                    if want is not None:
                        self.assertEqual(got, want, f"{iface}.{name}: argument name")
                    else:
                        self.assertTrue(got, f"{iface}.{name}: an argument has no name")
        got_props = {p.get("name"): p for p in node.findall("property")}
        for name, typ in props.items():
            with self.subTest(interface=iface, property=name):
                self.assertIn(name, got_props, f"property {iface}.{name} is missing")
                self.assertEqual(got_props[name].get("type"), typ, f"type of {iface}.{name}")
                self.assertEqual(got_props[name].get("access"), "read",
                                 f"{iface}.{name} should be read-only")
        got_signals = {s.get("name"): s for s in node.findall("signal")}
        for name, args in (signals or {}).items():
            with self.subTest(interface=iface, signal=name):
                self.assertIn(name, got_signals, f"signal {iface}.{name} is missing")
                got = [(a.get("name"), a.get("type")) for a in got_signals[name].findall("arg")]
                self.assertEqual([t for _, t in got], [t for _, t in args], f"{iface}.{name} types")
                for (want, _), (g, _) in zip(args, got):
                    self.assertEqual(g, want, f"{iface}.{name}: argument name")
        return node

    def test_manager(self):
        self.check_interface(ROOT_PATH, MANAGER_IFACE, MANAGER_METHODS, MANAGER_PROPS,
                             MANAGER_SIGNALS)

    def test_region_vm_migration_objects(self):
        r = self.create_region(MiB)
        src, dst = self.register_vm(), self.register_vm()
        self.attach(src, r, "rw")
        self.check_interface(region_path(r), REGION_IFACE, REGION_METHODS, REGION_PROPS, None)
        self.check_interface(vm_path(src), VM_IFACE, VM_METHODS, VM_PROPS, None)
        path, _ = self.begin_migration(src, dst)
        self.check_interface(path, MIGRATION_IFACE, MIGRATION_METHODS, MIGRATION_PROPS, None)

    def test_object_tree(self):
        r = self.create_region(MiB)
        vm = self.register_vm()
        res = self.busctl("tree", "--list", BUS_NAME)
        paths = res.out.split()
        for p in [ROOT_PATH, region_path(r), vm_path(vm)]:
            self.assertIn(p, paths, f"busctl tree does not list {p}")

    def test_busctl_introspect_lists_everything(self):
        r = self.create_region(MiB)
        vm = self.register_vm()
        for path, iface, methods, props, signals in [
                (ROOT_PATH, MANAGER_IFACE, MANAGER_METHODS, MANAGER_PROPS, MANAGER_SIGNALS),
                (region_path(r), REGION_IFACE, REGION_METHODS, REGION_PROPS, {}),
                (vm_path(vm), VM_IFACE, VM_METHODS, VM_PROPS, {})]:
            res = self.busctl("introspect", "--no-legend", BUS_NAME, path, iface)
            rows = {}
            for line in res.out.splitlines():
                cols = line.split()
                if len(cols) >= 3:
                    rows[cols[0]] = (cols[1], cols[2])
            for name, (ins, outs) in methods.items():
                with self.subTest(path=path, method=name):
                    self.assertIn("." + name, rows, f"busctl introspect lacks {iface}.{name}")
                    self.assertEqual(rows["." + name],
                                     ("method", "".join(t for _, t in ins) or "-"))
            for name, typ in props.items():
                with self.subTest(path=path, property=name):
                    self.assertIn("." + name, rows)
                    self.assertEqual(rows["." + name], ("property", typ))
            for name, args in signals.items():
                with self.subTest(path=path, signal=name):
                    self.assertIn("." + name, rows)
                    self.assertEqual(rows["." + name], ("signal", "".join(t for _, t in args)))

    def test_busctl_drives_the_api(self):
        name = self.uniq("r")
        res = self.busctl("call", BUS_NAME, ROOT_PATH, MANAGER_IFACE, "CreateRegion",
                          "sta{sv}", name, str(MiB), "1", "backend", "s", "memfd")
        self.addCleanup(self._quietly, "DestroyRegion", "s", name)
        self.assertEqual(res.out.strip(), f'o "{region_path(name)}"')
        res = self.busctl("get-property", BUS_NAME, region_path(name), REGION_IFACE, "Size")
        self.assertEqual(res.out.strip(), f"t {MiB}")
        vm = self.uniq("vm")
        self.busctl("call", BUS_NAME, ROOT_PATH, MANAGER_IFACE, "RegisterVm", "sa{sv}", vm,
                    "1", "uid", "u", "0")
        self.addCleanup(self._quietly, "UnregisterVm", "s", vm)
        res = self.busctl("call", BUS_NAME, ROOT_PATH, MANAGER_IFACE, "Attach", "sssa{sv}",
                          vm, name, "ro", "0")
        self.assertTrue(res.out.startswith("h "), f"Attach via busctl: {res.out!r}")
        res = self.busctl("--json=short", "call", BUS_NAME, ROOT_PATH, MANAGER_IFACE,
                          "ListRegions")
        self.assertIn(name, res.out)
        res = self.busctl("get-property", BUS_NAME, vm_path(vm), VM_IFACE, "Views")
        self.assertIn(f'"{name}" "ro" "active"', res.out)
        res = self.busctl("call", BUS_NAME, ROOT_PATH, MANAGER_IFACE, "DestroyRegion", "s",
                          name, expect=1)
        self.assertTrue(res.err.strip(), "busctl printed no error for a Busy DestroyRegion")
        self.busctl("call", BUS_NAME, ROOT_PATH, MANAGER_IFACE, "Detach", "ss", vm, name)
        self.busctl("call", BUS_NAME, region_path(name), REGION_IFACE, "Destroy")
        self.assertNotIn(name, self.region_names())

    def test_gdbus_shows_error_names(self):
        res = self.gdbus_call(ROOT_PATH, MANAGER_IFACE + ".GetRegion", "no-such-region",
                              expect=1)
        self.assertIn("org.gmemd.Broker1.Error.NoSuchRegion", res.err)
        self.assertIn("no-such-region", res.err)
        res = self.gdbus_call(ROOT_PATH, MANAGER_IFACE + ".CreateRegion", "bad/name",
                              "4096", "@a{sv} {}", expect=1)
        self.assertIn("org.gmemd.Broker1.Error.InvalidName", res.err)
        res = self.gdbus_call(ROOT_PATH, MANAGER_IFACE + ".CreateRegion", self.uniq("r"),
                              "4095", "@a{sv} {}", expect=1)
        self.assertIn("org.gmemd.Broker1.Error.InvalidSize", res.err)
        name = self.uniq("r")
        res = self.gdbus_call(ROOT_PATH, MANAGER_IFACE + ".CreateRegion", name, str(MiB),
                              "{'populate': <true>}")
        self.addCleanup(self._quietly, "DestroyRegion", "s", name)
        self.assertIn(region_path(name), res.out)
        res = self.gdbus_call(ROOT_PATH, "org.freedesktop.DBus.Properties.Get",
                              MANAGER_IFACE, "DefaultBackend")
        self.assertIn("'memfd'", res.out)


if __name__ == "__main__":
    gmemtest.main()
