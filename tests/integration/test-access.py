#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Who may call and who may see, under the built-in policy: only uid 0 may
call methods; the uid a VM was registered with may call GetFd for that VM's
views, and nothing else. An object a caller may not see answers as one that
does not exist: in name lookups, on its object path, in properties,
GetManagedObjects and introspection. Callers are real processes under other
uids on the private bus; the broker must decide from the bus's credentials.
"""
import json
import os
import pwd
import subprocess
import sys

import gmemtest
from gmemtest import MiB, GmemTestCase, ACCESS_DENIED, SLOW

# Both must exist in the user database: dbus-daemon drops connections from
# uids it cannot resolve.
HYPERVISOR_UID = 65534                        # nobody
STRANGER_UID = pwd.getpwnam("daemon").pw_uid  # any other unprivileged user

CLIENT = r"""
import dbus, dbus.bus, json, os, sys
addr, path, iface, method, sig = sys.argv[1:6]
args = json.loads(sys.argv[6])
conn = dbus.bus.BusConnection(addr)
try:
    r = conn.call_blocking("org.gmemd.Broker1", path, iface, method, sig, args)
except dbus.exceptions.DBusException as e:
    print(json.dumps({"error": e.get_dbus_name(), "message": e.get_dbus_message()}))
    sys.exit(0)
if isinstance(r, dbus.types.UnixFd):
    fd = r.take()
    import fcntl
    print(json.dumps({"fd_accmode": fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE}))
else:
    print(json.dumps({"ok": str(r)}))
"""


class Access(GmemTestCase):

    def call_as(self, uid, path, iface, method, sig, args):
        p = subprocess.run([sys.executable, "-c", CLIENT, self.world.address, path, iface,
                            method, sig, json.dumps(args)],
                           user=uid, group=uid, extra_groups=[], env=self.world.env,
                           capture_output=True, text=True, timeout=30 * SLOW,
                           stdin=subprocess.DEVNULL, cwd="/")
        self.assertEqual(p.returncode, 0, f"client under uid {uid} failed:\n{p.stderr}")
        return json.loads(p.stdout)

    def mgr_as(self, uid, method, sig, *args):
        return self.call_as(uid, gmemtest.ROOT_PATH, gmemtest.MANAGER_IFACE, method, sig,
                            list(args))

    def assertHidden(self, uid, method, sig, args, hidden):
        """uid's call naming objects it may not see answers exactly as with names that do not exist."""
        res = self.mgr_as(uid, method, sig, *args)
        ghost = self.mgr_as(uid, method, sig, *[("ghost-" + a if isinstance(a, str) and a in hidden else a) for a in args])
        self.assertTrue(res.get("error", "").startswith("org.gmemd.Broker1.Error.NoSuch"),
                        f"uid {uid} calling {method} on objects it may not see: {res}")
        self.assertEqual(res, {k: v.replace("ghost-", "") for k, v in ghost.items()},
                         f"{method} answers as for objects that do not exist")

    def test_unprivileged_caller_denied(self):
        r = self.create_region(MiB)
        vm = self.register_vm()
        rows = [
            ("CreateRegion", "sta{sv}", (self.uniq("r"), MiB, {})),
            ("RegisterVm", "sa{sv}", (self.uniq("vm"), {})),
        ]
        for method, sig, args in rows:
            with self.subTest(method=method):
                res = self.mgr_as(STRANGER_UID, method, sig, *args)
                self.assertEqual(res.get("error"), ACCESS_DENIED,
                                 f"uid {STRANGER_UID} calling {method}: {res}")
        # Objects it may not see are denied as if they did not exist: no existence oracle.
        rows = [
            ("DestroyRegion", "s", (r,)),
            ("UnregisterVm", "s", (vm,)),
            ("Attach", "sssa{sv}", (vm, r, "ro", {})),
            ("Discard", "stt", (r, 0, 4096)),
            ("GetFd", "ss", (vm, r)),
            ("GetRegion", "s", (r,)),
        ]
        for method, sig, args in rows:
            with self.subTest(method=method):
                self.assertHidden(STRANGER_UID, method, sig, args, {r, vm})
        self.assertIn(r, self.region_names(), "a denied DestroyRegion removed the region")
        self.assertIn(vm, self.vm_names(), "a denied UnregisterVm removed the VM")
        self.assertEqual(self.views_of_vm(vm), [], "a denied Attach made a view")

    def test_unprivileged_may_not_read_manager_properties(self):
        for uid in (STRANGER_UID, HYPERVISOR_UID):
            for method, args in [("Get", [gmemtest.MANAGER_IFACE, "TotalBytes"]),
                                 ("Get", [gmemtest.MANAGER_IFACE, "Policy"]),
                                 ("GetAll", [gmemtest.MANAGER_IFACE])]:
                with self.subTest(uid=uid, method=method, args=args):
                    res = self.call_as(uid, gmemtest.ROOT_PATH, gmemtest.PROPS_IFACE, method,
                                       "ss" if method == "Get" else "s", args)
                    self.assertEqual(res.get("error"), ACCESS_DENIED,
                                     f"uid {uid}, in no class, read the manager's properties: {res}")
        self.assertTrue(self.mgr_prop("Version"), "root reads them")
        self.check_daemon_alive()

    def test_registered_uid_may_getfd_its_vm(self):
        r = self.create_region(MiB)
        vm = self.register_vm(uid=HYPERVISOR_UID)
        other = self.register_vm()
        self.attach(vm, r, "ro")
        self.attach(other, r, "rw")
        res = self.mgr_as(HYPERVISOR_UID, "GetFd", "ss", vm, r)
        self.assertEqual(res, {"fd_accmode": os.O_RDONLY},
                         f"the VM's uid could not GetFd its own read-only view: {res}")
        res = self.call_as(HYPERVISOR_UID, gmemtest.vm_path(vm), gmemtest.VM_IFACE, "GetFd",
                           "s", [r])
        self.assertEqual(res, {"fd_accmode": os.O_RDONLY}, f"Vm.GetFd as the VM's uid: {res}")
        self.assertHidden(HYPERVISOR_UID, "GetFd", "ss", (other, r), {other})
        self.assertHidden(STRANGER_UID, "GetFd", "ss", (vm, r), {vm, r})
        res = self.mgr_as(HYPERVISOR_UID, "Attach", "sssa{sv}", vm, r, "rw", {})
        self.assertEqual(res.get("error"), ACCESS_DENIED,
                         f"the VM's uid may fetch, not attach with new rights: {res}")

    def test_reading_is_authorized(self):
        """Properties, GetManagedObjects and introspection show a caller only what it may see."""
        r = self.create_region(MiB)
        vm = self.register_vm(uid=HYPERVISOR_UID)
        other = self.register_vm()
        self.attach(vm, r, "ro")
        props = gmemtest.PROPS_IFACE
        for uid in (STRANGER_UID, HYPERVISOR_UID):
            for path, ghost, iface in [(gmemtest.region_path(r), gmemtest.region_path("ghost-" + r),
                                        gmemtest.REGION_IFACE),
                                       (gmemtest.vm_path(other), gmemtest.vm_path("ghost-" + other),
                                        gmemtest.VM_IFACE)]:
                with self.subTest(uid=uid, path=path):
                    res = self.call_as(uid, path, props, "GetAll", "s", [iface])
                    absent = self.call_as(uid, ghost, props, "GetAll", "s", [iface])
                    self.assertIn("error", res, f"uid {uid} read the properties of {path}: {res}")
                    self.assertEqual(res["error"], absent["error"], "GetAll answers as for a path that does not exist")
                    self.assertEqual(res["message"], absent["message"].replace(ghost, path))
            res = self.call_as(uid, gmemtest.ROOT_PATH, "org.freedesktop.DBus.ObjectManager",
                               "GetManagedObjects", "", [])
            text = res.get("ok", "")
            for name in (r, other):
                self.assertNotIn(gmemtest.path_encode(name), text,
                                 f"GetManagedObjects shows uid {uid} {name}, which it may not see")
            for prefix, name in [(gmemtest.ROOT_PATH + "/region", r), (gmemtest.ROOT_PATH + "/vm", other)]:
                res = self.call_as(uid, prefix, "org.freedesktop.DBus.Introspectable", "Introspect", "", [])
                self.assertNotIn(gmemtest.path_encode(name), res.get("ok", ""),
                                 f"introspecting {prefix} shows uid {uid} {name}")
        # A VM's hypervisor uid sees that VM, and through it the regions it has views of.
        res = self.call_as(HYPERVISOR_UID, gmemtest.vm_path(vm), props, "GetAll", "s", [gmemtest.VM_IFACE])
        self.assertIn(r, res.get("ok", ""), f"the hypervisor uid reads its own VM: {res}")
        res = self.call_as(HYPERVISOR_UID, gmemtest.ROOT_PATH + "/vm", "org.freedesktop.DBus.Introspectable",
                           "Introspect", "", [])
        self.assertIn(gmemtest.path_encode(vm), res.get("ok", ""), "and finds it by introspection")
        # Root sees everything.
        res = self.call(gmemtest.ROOT_PATH, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects")
        paths = [str(p) for p in res]
        self.assertIn(gmemtest.region_path(r), paths, "root's GetManagedObjects shows every region")
        self.assertIn(gmemtest.vm_path(other), paths, "and every VM")


if __name__ == "__main__":
    gmemtest.main()
