#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The policy file in force: classes matched by uid and by supplementary group,
verbs allowed and denied (AccessDenied naming the verb), backends and the
largest region, per-uid quotas (QuotaExceeded naming quota, limit and use),
a VM's hypervisor uid fetching its own VM's fds and nothing else, a caller
that disconnects before its call is handled, and reloads: a bad policy is
refused (at start, by Reload, by SIGHUP) and the old one stays in force.
Clients run as real processes under other uids on the private bus.
"""
import json
import os
import pwd
import grp
import signal
import subprocess
import sys
import time

import gmemtest     # before dbus: without python3-dbus it skips the file with the reason

import dbus
from gmemtest import MiB, PAGE, GmemTestCase, ACCESS_DENIED, SLOW

ORCH_UID = pwd.getpwnam("daemon").pw_uid      # class "orchestrator" by uid
GROUP_UID = pwd.getpwnam("bin").pw_uid        # in no class by uid...
GROUP_GID = grp.getgrnam("users").gr_gid      # ...but "monitor" through this supplementary group
HYPERVISOR_UID = 65534                        # nobody: in no class at all
TENANT2_UID = pwd.getpwnam("sys").pw_uid      # another member of "orchestrator": another tenant
FLEET_UID = pwd.getpwnam("games").pw_uid      # class "fleet": scope all
QUOTA = "org.gmemd.Broker1.Error.QuotaExceeded"

POLICY = {
    "version": 1,
    "classes": [
        {"name": "admin", "match": {"uids": [0]}, "verbs": ["all"], "scope": "all", "backends": ["all"]},
        {"name": "orchestrator", "match": {"uids": [ORCH_UID, TENANT2_UID]},
         "verbs": ["list", "create-region", "destroy-region", "register-vm", "unregister-vm",
                   "attach", "detach", "get-fd", "migrate", "discard", "reload"],
         "backends": ["memfd"], "max_region_size": "8M",
         "quota": {"bytes": "12M", "regions": 2, "vms": 2, "views": 3}},
        {"name": "monitor", "match": {"groups": ["users"]}, "verbs": ["list"], "scope": "all"},
        {"name": "fleet", "match": {"uids": [FLEET_UID]}, "scope": "all",
         "verbs": ["list", "register-vm", "unregister-vm", "attach", "detach", "get-fd", "migrate",
                   "destroy-region", "discard"]},
    ],
}

CLIENT = r"""
import dbus, dbus.bus, json, os, sys, fcntl
addr, path, iface, method, sig = sys.argv[1:6]
args = json.loads(sys.argv[6])
conn = dbus.bus.BusConnection(addr)
conv = {"t": dbus.UInt64, "u": dbus.UInt32}
if sig:
    args = [conv.get(c, lambda v: v)(v) for c, v in zip(sig.replace("a{sv}", "A"), args)]
    args = [dbus.Dictionary(a, signature="sv") if isinstance(a, dict) else a for a in args]
try:
    r = conn.call_blocking("org.gmemd.Broker1", path, iface, method, sig, args)
except dbus.exceptions.DBusException as e:
    print(json.dumps({"error": e.get_dbus_name(), "message": e.get_dbus_message()}))
    sys.exit(0)
if isinstance(r, dbus.types.UnixFd):
    fd = r.take()
    print(json.dumps({"fd_accmode": fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE}))
else:
    print(json.dumps({"ok": str(r)}))
"""

HANG_UP = r"""
import dbus, dbus.bus, dbus.lowlevel, sys
conn = dbus.bus.BusConnection(sys.argv[1])
m = dbus.lowlevel.MethodCallMessage("org.gmemd.Broker1", "/org/gmemd/Broker1",
                                    "org.gmemd.Broker1.Manager", "CreateRegion")
m.append(sys.argv[2], dbus.UInt64(1 << 20), dbus.Dictionary({}, signature="sv"), signature="sta{sv}")
conn.send_message(m)
conn.flush()
conn.close()
"""


class Policy(GmemTestCase):

    @classmethod
    def setUpClass(cls):
        cls.policy_path = os.path.join(gmemtest.WORLD.tmp, "policy.json")
        cls.write_policy(POLICY)
        gmemtest.WORLD.start_gmemd(["--policy=" + cls.policy_path])

    @classmethod
    def write_policy(cls, policy):
        text = policy if isinstance(policy, str) else json.dumps(policy, indent=1)
        with open(cls.policy_path + ".tmp", "w") as f:
            f.write(text)
        os.rename(cls.policy_path + ".tmp", cls.policy_path)

    def tearDown(self):
        self.write_policy(POLICY)
        self.mgr("Reload")
        super().tearDown()

    def call_as(self, uid, method, sig="", *args, gids=(), path=gmemtest.ROOT_PATH,
                iface=gmemtest.MANAGER_IFACE):
        p = subprocess.run([sys.executable, "-c", CLIENT, self.world.address, path, iface, method, sig,
                            json.dumps(list(args))],
                           user=uid, group=pwd.getpwuid(uid).pw_gid, extra_groups=list(gids),
                           env=self.world.env, capture_output=True, text=True, timeout=30 * SLOW,
                           stdin=subprocess.DEVNULL, cwd="/")
        self.assertEqual(p.returncode, 0, f"client under uid {uid} failed:\n{p.stderr}")
        return json.loads(p.stdout)

    def assertDenied(self, res, *words):
        self.assertEqual(res.get("error"), ACCESS_DENIED, f"expected AccessDenied, got {res}")
        for w in words:
            self.assertIn(w, res["message"], f"AccessDenied should mention {w!r}")

    def assertHidden(self, uid, method, sig, args, hidden, **kw):
        """uid's call naming objects it may not see (hidden) answers exactly as with names that do not exist."""
        res = self.call_as(uid, method, sig, *args, **kw)
        ghost = self.call_as(uid, method, sig, *[("ghost-" + a if isinstance(a, str) and a in hidden else a) for a in args], **kw)
        self.assertTrue(res.get("error", "").startswith("org.gmemd.Broker1.Error.NoSuch"),
                        f"uid {uid} calling {method} on objects it may not see: {res}")
        self.assertEqual(res, {k: v.replace("ghost-", "") for k, v in ghost.items()},
                         f"{method} answers as for objects that do not exist")

    def cleanup_region(self, name):
        self.addCleanup(self._quietly, "DestroyRegion", "s", name)

    def cleanup_vm(self, name):
        self.addCleanup(self._quietly, "UnregisterVm", "s", name)

    def test_allowed_and_denied_verbs(self):
        name = self.uniq("orch")
        self.cleanup_region(name)
        res = self.call_as(ORCH_UID, "CreateRegion", "sta{sv}", name, MiB, {})
        self.assertIn("ok", res, f"the orchestrator class may create a region: {res}")
        self.assertIn(name, self.region_names())
        vm = self.uniq("vm")
        self.cleanup_vm(vm)
        self.assertIn("ok", self.call_as(ORCH_UID, "RegisterVm", "sa{sv}", vm, {}))
        res = self.call_as(ORCH_UID, "Attach", "sssa{sv}", vm, name, "ro", {})
        self.assertEqual(res.get("fd_accmode"), os.O_RDONLY, f"the orchestrator attaches read-only: {res}")

        self.assertDenied(self.call_as(ORCH_UID, "SetMemoryAttributes", "stts", name, 0, PAGE, "private"),
                          "class 'orchestrator'", "may not set-attributes")
        self.assertDenied(self.call_as(ORCH_UID, "CreateRegion", "sta{sv}", self.uniq("s"), MiB,
                                       {"backend": "secret"}), "backend 'secret'")
        self.assertDenied(self.call_as(HYPERVISOR_UID, "ListRegions"), "uid 65534", "in no class",
                          "may not list")
        self.assertDenied(self.call_as(HYPERVISOR_UID, "CreateRegion", "sta{sv}", "x", MiB, {}),
                          "may not create-region")
        self.assertNotIn("x", self.region_names(), "a denied call creates nothing")

    def test_supplementary_group(self):
        res = self.call_as(GROUP_UID, "ListRegions", gids=[GROUP_GID])
        self.assertIn("ok", res, f"a member of group 'users' may list through the monitor class: {res}")
        self.assertDenied(self.call_as(GROUP_UID, "CreateRegion", "sta{sv}", "g", MiB, {}, gids=[GROUP_GID]),
                          "class 'monitor'", "may not create-region")
        self.assertDenied(self.call_as(GROUP_UID, "ListRegions"), "in no class")

    def test_quotas(self):
        names = [self.uniq("q") for _ in range(3)]
        for n in names:
            self.cleanup_region(n)
        res = self.call_as(ORCH_UID, "CreateRegion", "sta{sv}", names[0], 16 * MiB, {})
        self.assertEqual(res.get("error"), QUOTA, f"a region over max_region_size is refused: {res}")
        self.assertIn("8388608", res["message"], "the message gives the largest allowed size")

        self.assertIn("ok", self.call_as(ORCH_UID, "CreateRegion", "sta{sv}", names[0], 8 * MiB, {}))
        res = self.call_as(ORCH_UID, "CreateRegion", "sta{sv}", names[1], 8 * MiB, {})
        self.assertEqual(res.get("error"), QUOTA, f"16 MiB in all is over the 12 MiB byte quota: {res}")
        for w in ("'bytes'", "limit 12582912", "in use 8388608", "asked for 8388608"):
            self.assertIn(w, res["message"])
        self.assertIn("ok", self.call_as(ORCH_UID, "CreateRegion", "sta{sv}", names[1], MiB, {}))
        res = self.call_as(ORCH_UID, "CreateRegion", "sta{sv}", names[2], MiB, {})
        self.assertEqual(res.get("error"), QUOTA, f"a third region is over the region quota: {res}")
        for w in ("'regions'", "class 'orchestrator'", "limit 2", "in use 2"):
            self.assertIn(w, res["message"])
        self.assertNotIn(names[2], self.region_names(), "a refused region leaves nothing")
        # Root's regions do not count against the orchestrator's quota, and vice versa.
        r = self.create_region(MiB)
        self.assertIn(r, self.region_names())
        # Destroying one frees its share.
        self.assertIn("ok", self.call_as(ORCH_UID, "DestroyRegion", "s", names[1]))
        self.assertIn("ok", self.call_as(ORCH_UID, "CreateRegion", "sta{sv}", names[2], MiB, {}))

        vms = [self.uniq("qv") for _ in range(3)]
        for v in vms:
            self.cleanup_vm(v)
        self.assertIn("ok", self.call_as(ORCH_UID, "RegisterVm", "sa{sv}", vms[0], {}))
        self.assertIn("ok", self.call_as(ORCH_UID, "RegisterVm", "sa{sv}", vms[1], {}))
        res = self.call_as(ORCH_UID, "RegisterVm", "sa{sv}", vms[2], {})
        self.assertEqual(res.get("error"), QUOTA)
        self.assertIn("'vms'", res["message"])

        for i, (v, reg) in enumerate([(vms[0], names[0]), (vms[0], names[2]), (vms[1], names[0])]):
            self.assertIn("fd_accmode", self.call_as(ORCH_UID, "Attach", "sssa{sv}", v, reg, "ro", {}),
                          f"view {i} is within the quota")
        self.assertIn("fd_accmode", self.call_as(ORCH_UID, "Attach", "sssa{sv}", vms[0], names[0], "ro", {}),
                      "asking again for the same view costs nothing")
        res = self.call_as(ORCH_UID, "Attach", "sssa{sv}", vms[1], names[2], "ro", {})
        self.assertEqual(res.get("error"), QUOTA, f"a fourth view is over the view quota: {res}")
        self.assertIn("'views'", res["message"])
        res = self.call_as(ORCH_UID, "BeginMigration", "ssa{sv}", vms[0], vms[1], {})
        self.assertEqual(res.get("error"), QUOTA, f"a migration needing 2 more views is over the quota: {res}")
        self.assertEqual(self.mgr("ListMigrations"), [], "the refused migration left nothing")

    def test_hypervisor_uid(self):
        r = self.create_region(MiB)
        own, other = self.register_vm(uid=dbus.UInt32(HYPERVISOR_UID)), self.register_vm(uid=dbus.UInt32(ORCH_UID))
        self.attach(own, r, "rw")
        self.attach(other, r, "ro")
        res = self.call_as(HYPERVISOR_UID, "GetFd", "ss", own, r)
        self.assertEqual(res.get("fd_accmode"), os.O_RDWR, f"a VM's hypervisor uid fetches its view: {res}")
        res = self.call_as(HYPERVISOR_UID, "GetFd", "s", r, path=gmemtest.vm_path(own), iface=gmemtest.VM_IFACE)
        self.assertEqual(res.get("fd_accmode"), os.O_RDWR, "also through the Vm object")
        self.assertHidden(HYPERVISOR_UID, "GetFd", "ss", (other, r), {other})
        self.assertDenied(self.call_as(HYPERVISOR_UID, "Detach", "ss", own, r), "may not detach")
        self.assertDenied(self.call_as(HYPERVISOR_UID, "Attach", "sssa{sv}", own, r, "ro", {}), "may not attach")
        self.assertDenied(self.call_as(HYPERVISOR_UID, "UnregisterVm", "s", own), "may not unregister-vm")

    def test_scope_own(self):
        """A class with scope own reaches only what its member's uid created, whatever its verbs."""
        root_r, root_vm = self.create_region(MiB), self.register_vm()
        self.attach(root_vm, root_r, "rw")
        own_r, own_vm, own_vm2 = self.uniq("own"), self.uniq("ownvm"), self.uniq("ownvm")
        self.cleanup_region(own_r)
        self.cleanup_vm(own_vm)
        self.cleanup_vm(own_vm2)
        self.assertIn("ok", self.call_as(ORCH_UID, "CreateRegion", "sta{sv}", own_r, MiB, {}))
        self.assertIn("ok", self.call_as(ORCH_UID, "RegisterVm", "sa{sv}", own_vm, {}))
        self.assertIn("ok", self.call_as(ORCH_UID, "RegisterVm", "sa{sv}", own_vm2, {}))
        self.assertIn("fd_accmode", self.call_as(ORCH_UID, "Attach", "sssa{sv}", own_vm, own_r, "rw", {}),
                      "a tenant attaches its own region to its own VM")
        rows = [
            ("GetRegion", "s", (root_r,)),
            ("GetVm", "s", (root_vm,)),
            ("GetFd", "ss", (root_vm, root_r)),
            ("Attach", "sssa{sv}", (root_vm, own_r, "ro", {})),
            ("Attach", "sssa{sv}", (own_vm, root_r, "rw", {})),
            ("Detach", "ss", (root_vm, root_r)),
            ("Discard", "stt", (root_r, 0, PAGE)),
            ("BeginMigration", "ssa{sv}", (own_vm, root_vm, {})),
            ("BeginMigration", "ssa{sv}", (root_vm, own_vm, {})),
            ("UnregisterVm", "s", (root_vm,)),
            ("DestroyRegion", "s", (root_r,)),
        ]
        # Another tenant's objects, and root's, are denied as if they did not exist.
        hidden = {ORCH_UID: {root_r, root_vm}, TENANT2_UID: {root_r, root_vm, own_r, own_vm}}
        for uid in (ORCH_UID, TENANT2_UID):
            for method, sig, args in rows:
                with self.subTest(uid=uid, method=method, args=args):
                    self.assertHidden(uid, method, sig, args, hidden[uid])
        for method, sig, args in [("GetFd", "ss", (own_vm, own_r)), ("UnregisterVm", "s", (own_vm,)),
                                  ("DestroyRegion", "s", (own_r,)), ("BeginMigration", "ssa{sv}", (own_vm, own_vm2, {}))]:
            with self.subTest(uid=TENANT2_UID, method=method):
                self.assertHidden(TENANT2_UID, method, sig, args, hidden[TENANT2_UID])
        self.assertIn(root_r, self.region_names(), "root's region survives the tenant")
        self.assertIn(root_vm, self.vm_names(), "root's VM survives the tenant")
        self.assertEqual(len(self.views_of_vm(root_vm)), 1, "root's view survives the tenant")
        self.assertEqual(self.mgr("ListMigrations"), [], "no migration was begun")

        listed = self.call_as(ORCH_UID, "ListRegions")["ok"]
        self.assertIn(f"'{own_r}'", listed, "a tenant lists its own region")
        self.assertNotIn(f"'{root_r}'", listed, "a tenant does not list root's region")
        self.assertNotIn(f"'{own_r}'", self.call_as(TENANT2_UID, "ListRegions")["ok"],
                         "a tenant does not list another tenant's region, though both are in one class")
        self.assertNotIn(f"'{root_vm}'", self.call_as(ORCH_UID, "ListVms")["ok"], "nor root's VMs")

        # Migration needs the right on both VMs: between a tenant's own VMs it is allowed.
        res = self.call_as(ORCH_UID, "BeginMigration", "ssa{sv}", own_vm, own_vm2, {})
        self.assertNotEqual(res.get("error"), ACCESS_DENIED, f"a tenant migrates between its own VMs: {res}")
        paths = [str(m[3]) for m in self.mgr("ListMigrations")]
        self.assertEqual(len(paths), 1, "root lists the tenant's migration")
        self.assertIn(paths[0], self.call_as(ORCH_UID, "ListMigrations")["ok"], "the tenant lists its migration")
        self.assertNotIn(paths[0], self.call_as(TENANT2_UID, "ListMigrations")["ok"],
                         "another tenant does not list it")
        ghost_path = gmemtest.ROOT_PATH + "/migration/999999"
        for method in ("CommitMigration", "AbortMigration"):
            res = self.call_as(TENANT2_UID, method, "o", paths[0])
            ghost = self.call_as(TENANT2_UID, method, "o", ghost_path)
            self.assertEqual(res.get("error"), "org.gmemd.Broker1.Error.NoSuchMigration",
                             f"another tenant's {method} of the migration: {res}")
            self.assertEqual(res["message"], ghost["message"].replace(ghost_path, paths[0]),
                             f"{method} answers as for a migration that does not exist")
        res = self.call_as(TENANT2_UID, "Get", "ss", gmemtest.MIGRATION_IFACE, "State", path=paths[0],
                           iface=gmemtest.PROPS_IFACE)
        self.assertEqual(res.get("error"), "org.freedesktop.DBus.Error.UnknownObject",
                         f"another tenant reads the migration's properties: {res}")
        self.assertIn("ok", self.call_as(ORCH_UID, "Get", "ss", gmemtest.MIGRATION_IFACE, "State", path=paths[0],
                                         iface=gmemtest.PROPS_IFACE), "the tenant reads them")
        for path in paths:
            self._quietly_path(path, "AbortMigration")
        # A view root gave its own VM of the tenant's region does not show the tenant root's VM.
        self.attach(root_vm, own_r, "ro")
        res = self.call_as(ORCH_UID, "Get", "ss", gmemtest.REGION_IFACE, "Views",
                           path=gmemtest.region_path(own_r), iface=gmemtest.PROPS_IFACE)
        self.assertIn(f"'{own_vm}'", res.get("ok", ""), f"the tenant sees its own VM's view: {res}")
        self.assertNotIn(f"'{root_vm}'", res["ok"], "but not root's VM in its region's Views")
        self.assertIn((root_vm, "ro", "active"), self.views_of_region(own_r), "root sees both")
        self.mgr("Detach", "ss", root_vm, own_r)
        self.assertIn("ok", self.call_as(ORCH_UID, "Detach", "ss", own_vm, own_r), "a tenant detaches its own view")
        self.assertIn("ok", self.call_as(ORCH_UID, "DestroyRegion", "s", own_r), "and destroys its own region")

    def gmemctl_as(self, uid, *args, expect=0):
        p = subprocess.run([gmemtest.WORLD.gmemctl] + list(args), user=uid, group=pwd.getpwuid(uid).pw_gid,
                           env=self.world.env, capture_output=True, text=True, timeout=30 * SLOW,
                           stdin=subprocess.DEVNULL, cwd="/")
        self.assertEqual(p.returncode, expect, f"gmemctl {' '.join(args)} under uid {uid}:\n{p.stderr}")
        return p

    def test_list_full_scope(self):
        """ListRegionsFull and ListVmsFull, and gmemctl's lists made of them, show a uid only the objects
        its class reaches, and in a region's views only VMs it may see; a uid without the verb list is
        refused, as with ListRegions."""
        root_r, root_vm = self.create_region(MiB), self.register_vm()
        own_r, own_vm = self.uniq("own"), self.uniq("ownvm")
        self.cleanup_region(own_r)
        self.cleanup_vm(own_vm)
        self.assertIn("ok", self.call_as(ORCH_UID, "CreateRegion", "sta{sv}", own_r, MiB, {}))
        self.assertIn("ok", self.call_as(ORCH_UID, "RegisterVm", "sa{sv}", own_vm, {}))
        self.assertIn("fd_accmode", self.call_as(ORCH_UID, "Attach", "sssa{sv}", own_vm, own_r, "rw", {}))
        self.attach(root_vm, own_r, "ro")
        self.addCleanup(self._quietly, "Detach", "ss", root_vm, own_r)   # else own_r stays, in the tenant's quota
        self.attach(root_vm, root_r, "rw")

        regions = {r["name"]: r for r in json.loads(self.gmemctl_as(ORCH_UID, "--json=short", "list-regions").stdout)}
        self.assertEqual(set(regions), {own_r}, "a tenant lists its own region only")
        self.assertEqual(regions[own_r]["views"], [{"vm": own_vm, "access": "rw", "state": "active"}],
                         "with its own VM's view and not root's VM's")
        vms = {v["name"]: v for v in json.loads(self.gmemctl_as(ORCH_UID, "--json=short", "list-vms").stdout)}
        self.assertEqual(set(vms), {own_vm}, "a tenant lists its own VM only")
        table = self.gmemctl_as(ORCH_UID, "--no-legend", "list-regions").stdout
        self.assertEqual([l.split()[0] for l in table.splitlines()], [own_r], f"the table too: {table}")
        listed = self.call_as(ORCH_UID, "ListRegionsFull")["ok"]
        self.assertIn(f"'{own_r}'", listed, "ListRegionsFull has the tenant's region")
        self.assertNotIn(f"'{root_r}'", listed, "but not root's")
        self.assertNotIn(f"'{root_vm}'", listed, "nor root's VM among its views")
        self.assertNotIn(f"'{root_vm}'", self.call_as(ORCH_UID, "ListVmsFull")["ok"], "ListVmsFull: not root's VM")

        self.assertEqual(json.loads(self.gmemctl_as(TENANT2_UID, "--json=short", "list-regions").stdout), [],
                         "another tenant of the class lists none of them")
        self.assertEqual(json.loads(self.gmemctl_as(TENANT2_UID, "--json=short", "list-vms").stdout), [])

        regions = {r["name"]: r for r in json.loads(self.gmemctl_as(FLEET_UID, "--json=short", "list-regions").stdout)}
        self.assertLessEqual({own_r, root_r}, set(regions), "scope all lists every uid's regions")
        self.assertEqual(sorted(v["vm"] for v in regions[own_r]["views"]), sorted([own_vm, root_vm]),
                         "with every VM's view")
        for method in ("ListRegionsFull", "ListVmsFull"):
            self.assertDenied(self.call_as(HYPERVISOR_UID, method), "list")
        res = self.gmemctl_as(HYPERVISOR_UID, "list-regions", expect=1)
        self.assertIn("list", res.stderr, f"gmemctl says what was refused: {res.stderr}")

    def test_scope_all(self):
        """A class with scope all reaches every object, whoever created it."""
        orch_r, orch_vm = self.uniq("o"), self.uniq("ovm")
        self.cleanup_region(orch_r)
        self.cleanup_vm(orch_vm)
        self.assertIn("ok", self.call_as(ORCH_UID, "CreateRegion", "sta{sv}", orch_r, MiB, {}))
        self.assertIn("ok", self.call_as(ORCH_UID, "RegisterVm", "sa{sv}", orch_vm, {}))
        self.assertIn("fd_accmode", self.call_as(ORCH_UID, "Attach", "sssa{sv}", orch_vm, orch_r, "rw", {}))
        self.assertIn(f"'{orch_r}'", self.call_as(FLEET_UID, "ListRegions")["ok"], "scope all lists another uid's region")
        self.assertIn(f"'{orch_r}'", self.call_as(GROUP_UID, "ListRegions", gids=[GROUP_GID])["ok"],
                      "the monitor class, scope all, lists every region")
        self.assertEqual(self.call_as(FLEET_UID, "GetFd", "ss", orch_vm, orch_r).get("fd_accmode"), os.O_RDWR,
                         "scope all fetches another uid's view")
        self.assertIn("ok", self.call_as(FLEET_UID, "Detach", "ss", orch_vm, orch_r))
        self.assertIn("ok", self.call_as(FLEET_UID, "UnregisterVm", "s", orch_vm))
        self.assertIn("ok", self.call_as(FLEET_UID, "DestroyRegion", "s", orch_r))
        self.assertNotIn(orch_r, self.region_names())

    def test_hypervisor_in_a_class(self):
        """A uid that is some VM's hypervisor uid reaches only its own VMs' views, whatever its class."""
        r = self.create_region(MiB)
        root_vm, hv_vm = self.register_vm(), self.register_vm(uid=dbus.UInt32(FLEET_UID))
        self.attach(root_vm, r, "rw")
        self.attach(hv_vm, r, "ro")
        self.assertEqual(self.call_as(FLEET_UID, "GetFd", "ss", hv_vm, r).get("fd_accmode"), os.O_RDONLY,
                         "the hypervisor uid fetches its own VM's view")
        self.assertDenied(self.call_as(FLEET_UID, "GetFd", "ss", root_vm, r), "hypervisor uid", f"VM '{root_vm}'")
        self.assertDenied(self.call_as(FLEET_UID, "GetFd", "s", r, path=gmemtest.vm_path(root_vm),
                                       iface=gmemtest.VM_IFACE), "hypervisor uid")
        self.assertDenied(self.call_as(FLEET_UID, "Attach", "sssa{sv}", root_vm, r, "rw", {}), "hypervisor uid")
        self.assertDenied(self.call_as(FLEET_UID, "BeginMigration", "ssa{sv}", root_vm, hv_vm, {}), "hypervisor uid")
        self.assertDenied(self.call_as(FLEET_UID, "BeginMigration", "ssa{sv}", hv_vm, root_vm, {}), "hypervisor uid")
        self.assertEqual(self.mgr("ListMigrations"), [], "no migration was begun")
        self.mgr("UnregisterVm", "s", hv_vm)
        self.assertEqual(self.call_as(FLEET_UID, "GetFd", "ss", root_vm, r).get("fd_accmode"), os.O_RDWR,
                         "once it hypervises no VM its class's scope all applies again")

    def test_disconnect_before_handled(self):
        """A caller that is gone before gmemd reads its call gets nothing and leaves nothing."""
        pid = self.world.gmemd_pid()
        names = [self.uniq("gone") for _ in range(20)]
        for n in names:
            self.cleanup_region(n)
        os.kill(pid, signal.SIGSTOP)
        try:
            for n in names:
                subprocess.run([sys.executable, "-c", HANG_UP, self.world.address, n], env=self.world.env,
                               check=True, timeout=30, stdin=subprocess.DEVNULL)
        finally:
            os.kill(pid, signal.SIGCONT)
        # A call behind them shows they have all been handled.
        self.mgr("ListRegions")
        self.check_daemon_alive()
        left = set(names) & set(self.region_names())
        self.assertEqual(left, set(), "calls from callers gone before they were handled created nothing")

    def test_reload(self):
        name = self.uniq("rl")
        self.cleanup_region(name)
        self.write_policy('{"version": 1, "classes": [{"name": "x", "match": {"uids": [0]}, "verbs": ["al"]}]}')
        with self.assertRaises(dbus.DBusException) as cm:
            self.mgr("Reload")
        self.assertEqual(cm.exception.get_dbus_name(), "org.gmemd.Broker1.Error.InvalidArgument")
        msg = cm.exception.get_dbus_message()
        self.assertIn(self.policy_path, msg, "the refusal names the file")
        self.assertIn("classes[0].verbs[0]", msg, "and the key path")
        self.assertIn('unknown verb "al"', msg, "and what was wrong")
        self.assertIn("ok", self.call_as(ORCH_UID, "CreateRegion", "sta{sv}", name, MiB, {}),
                      "the old policy stays in force after a refused reload")

        os.kill(self.world.gmemd_pid(), signal.SIGHUP)
        self.wait_until(lambda: "Policy not reloaded" in self.world.gmemd_log_text(),
                        "gmemd to log the refused SIGHUP reload")
        self.assertIn("classes[0].verbs[0]", self.world.gmemd_log_text())
        self.check_daemon_alive()

        narrow = json.loads(json.dumps(POLICY))
        narrow["classes"][1]["verbs"] = ["list", "reload"]
        self.write_policy(narrow)
        line = f"Policy reloaded from {self.policy_path}: {len(narrow['classes'])} classes"
        before = self.world.gmemd_log_text().count(line)
        self.assertIn("ok", self.call_as(ORCH_UID, "Reload"), "the orchestrator may reload")
        self.wait_until(lambda: self.world.gmemd_log_text().count(line) == before + 1,
                        "gmemd to log the policy the Reload method put in force")
        os.kill(self.world.gmemd_pid(), signal.SIGHUP)
        self.wait_until(lambda: self.world.gmemd_log_text().count(line) == before + 2,
                        "gmemd to log the policy SIGHUP put in force")
        self.assertDenied(self.call_as(ORCH_UID, "DestroyRegion", "s", name), "may not destroy-region")
        self.assertEqual(self.mgr_prop("Policy"), self.policy_path, "the Policy property names the file in force")

    def test_bad_policy_at_start(self):
        bad = os.path.join(self.world.tmp, "bad.json")
        with open(bad, "w") as f:
            f.write('{"version": 1, "classes": [{"name": "a", "match": {"uids": [0]}, "verbs": [], "quota": '
                    '{"bytes": -5}}]}')
        p = subprocess.run([self.world.gmemd, "--policy=" + bad], env=self.world.env, capture_output=True,
                           text=True, timeout=30 * SLOW, stdin=subprocess.DEVNULL)
        self.assertNotEqual(p.returncode, 0, "gmemd refuses to start with a bad policy")
        self.assertIn(bad, p.stderr)
        self.assertIn("classes[0].quota.bytes", p.stderr)
        self.assertIn("non-negative", p.stderr)
        p = subprocess.run([self.world.gmemd, "--policy=/nonexistent/policy.json"], env=self.world.env,
                           capture_output=True, text=True, timeout=30 * SLOW, stdin=subprocess.DEVNULL)
        self.assertNotEqual(p.returncode, 0, "an explicit policy file that does not exist is an error")
        self.assertIn("/nonexistent/policy.json", p.stderr)


if __name__ == "__main__":
    gmemtest.main(start_daemon=False)
