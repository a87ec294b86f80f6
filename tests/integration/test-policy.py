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
QUOTA = "org.gmemd.Broker1.Error.QuotaExceeded"

POLICY = {
    "version": 1,
    "classes": [
        {"name": "admin", "match": {"uids": [0]}, "verbs": ["all"], "backends": ["all"]},
        {"name": "orchestrator", "match": {"uids": [ORCH_UID]},
         "verbs": ["list", "create-region", "destroy-region", "register-vm", "unregister-vm",
                   "attach", "detach", "get-fd", "migrate", "discard", "reload"],
         "backends": ["memfd"], "max_region_size": "8M",
         "quota": {"bytes": "12M", "regions": 2, "vms": 2, "views": 3}},
        {"name": "monitor", "match": {"groups": ["users"]}, "verbs": ["list"]},
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
        self.assertDenied(self.call_as(HYPERVISOR_UID, "GetFd", "ss", other, r), "may not get-fd", f"VM '{other}'")
        self.assertDenied(self.call_as(HYPERVISOR_UID, "Detach", "ss", own, r), "may not detach")
        self.assertDenied(self.call_as(HYPERVISOR_UID, "Attach", "sssa{sv}", own, r, "ro", {}), "may not attach")
        self.assertDenied(self.call_as(HYPERVISOR_UID, "UnregisterVm", "s", own), "may not unregister-vm")

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
