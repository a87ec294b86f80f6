#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The files that integrate gmemd with the system: the installed introspection
XML matches what the live daemon says; systemd-analyze verifies the unit and
rates its exposure; the D-Bus system policy, loaded into a real dbus-daemon,
lets root call the broker, lets everyone introspect it and ask for a VM's
view (which gmemd then decides), and keeps everyone else out; every caller
a shipped policy file puts in a class can get through it, or the page says
it must join group gmem.
"""
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

import gmemtest     # before dbus: without python3-dbus it skips the file with the reason

import dbus
from gmemtest import MiB, GmemTestCase, ACCESS_DENIED, SLOW

SOURCE = os.environ.get("GMEM_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("GMEM_BUILD_ROOT", "")
UNITS = os.path.join(SOURCE, "units")
NOBODY = 65534


def canonical(iface):
    """An interface element as comparable data: members in order, with their args and annotations."""
    out = []
    for e in iface:
        item = (e.tag, e.get("name"), e.get("type"), e.get("access"),
                tuple((a.get("name"), a.get("type"), a.get("direction")) for a in e.findall("arg")),
                tuple((a.get("name"), a.get("value")) for a in e.findall("annotation")))
        out.append(item)
    return out


class Units(GmemTestCase):

    def test_introspection_files_match_live(self):
        r = self.create_region(MiB)
        vm = self.register_vm()
        self.attach(vm, r, "rw")
        vm2 = self.register_vm()
        mig, fds = self.begin_migration(vm, vm2)
        objects = {"Manager": gmemtest.ROOT_PATH, "Region": gmemtest.region_path(r), "Vm": gmemtest.vm_path(vm),
                   "Migration": mig}
        for name, path in objects.items():
            iface = "org.gmemd.Broker1." + name
            live_xml = self.call(path, "org.freedesktop.DBus.Introspectable", "Introspect")
            live = [i for i in ET.fromstring(live_xml).findall("interface") if i.get("name") == iface]
            self.assertEqual(len(live), 1, f"{path} implements {iface}")
            with open(os.path.join(UNITS, iface + ".xml")) as f:
                text = f.read()
            filed = ET.fromstring(re.sub(r"<!DOCTYPE[^>]*>", "", text)).findall("interface")
            self.assertEqual([i.get("name") for i in filed], [iface], f"units/{iface}.xml describes {iface}")
            self.assertEqual(canonical(filed[0]), canonical(live[0]),
                             f"units/{iface}.xml matches the live introspection of {path}")
        self.mgr("AbortMigration", "o", dbus.ObjectPath(mig))

    def unit_copy(self):
        if not BUILD:
            self.skip_or_fail("GMEM_BUILD_ROOT is unset (run by hand?): the built unit is not known; "
                              "meson test sets it", dependency=False)
        src = os.path.join(BUILD, "units", "gmemd.service")
        self.assertTrue(os.path.exists(src), f"the build made {src}")
        tmp = tempfile.mkdtemp(prefix="gmemunit.")
        self.addCleanup(shutil.rmtree, tmp)
        with open(src) as f:
            text = f.read()
        # verify insists that ExecStart= exists: point it at the built daemon.
        text = re.sub(r"(?m)^ExecStart=.*$", "ExecStart=" + self.world.gmemd, text)
        dst = os.path.join(tmp, "gmemd.service")
        with open(dst, "w") as f:
            f.write(text)
        shutil.copy(os.path.join(UNITS, "gmemd.socket"), tmp)
        return dst

    def test_bus_policy_lets_every_class_through(self):
        """Every caller a shipped policy file (the built-in default and the
        examples) puts in a class can reach gmemd through the shipped bus
        policy, or gmemd.policy(5) says it must also be in group gmem."""
        conf = ET.parse(os.path.join(UNITS, "org.gmemd.Broker1.conf")).getroot()
        let = {"user": set(), "group": set()}
        for pol in conf.findall("policy"):
            for allow in pol.findall("allow"):
                if allow.get("send_destination") == "org.gmemd.Broker1" and len(allow.attrib) == 1:
                    for kind in let:
                        if pol.get(kind):
                            let[kind].add(pol.get(kind))
        self.assertEqual(let, {"user": {"root", "gmemd"}, "group": {"gmem", "gmem-admin"}},
                         "the bus policy lets these call every method")
        with open(os.path.join(SOURCE, "man", "gmemd.policy.5.scd")) as f:
            page = " ".join(f.read().split())
        m = re.search(r"So (.*?) must also be members of group \*gmem\*", page)
        self.assertTrue(m, "gmemd.policy(5) says which callers of its example must join group gmem")
        told = set(re.findall(r"\*([a-z0-9-]+)\*", m.group(1)))
        files = [os.path.join(SOURCE, "policy", "default.json")] + sorted(
            os.path.join(SOURCE, "policy", "examples", n) for n in os.listdir(os.path.join(SOURCE, "policy", "examples")))
        for path in files:
            with open(path) as f:
                policy = json.load(f)
            for cls in policy["classes"]:
                match = cls.get("match", {})
                for who in ([("uid", u) for u in match.get("uids", [])] + [("user", u) for u in match.get("users", [])] +
                            [("group", g) for g in match.get("groups", [])]):
                    with self.subTest(policy=os.path.basename(path), cls=cls["name"], who=who):
                        kind, name = who
                        if (kind == "uid" and name == 0) or name in let.get(kind, ()):
                            continue
                        self.assertNotIn("default.json", path, f"the built-in policy names {kind} {name}, "
                                         "whom the shipped bus policy keeps from calling gmemd")
                        if kind == "uid":
                            self.assertIn(f"uid {name} (who must be in group *gmem*", page,
                                          f"gmemd.policy(5) tells uid {name} of {path} to join group gmem")
                        else:
                            self.assertIn(name, told, f"gmemd.policy(5) tells {kind} {name} to join group gmem")

    def test_systemd_analyze_verify(self):
        tool = shutil.which("systemd-analyze")
        if not tool:
            self.skip_or_fail("systemd-analyze is not installed (package systemd)", dependency=True)
        unit = self.unit_copy()
        socket_unit = os.path.join(os.path.dirname(unit), "gmemd.socket")
        p = subprocess.run([tool, "verify", "--man=no", unit, socket_unit], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual((p.returncode, p.stderr.strip()), (0, ""),
                         f"systemd-analyze verify accepts gmemd.service and gmemd.socket without a warning:\n"
                         f"{p.stderr}")

    def test_socket_unit_matches_the_daemon(self):
        """gmemd.socket passes the socket under the name gmemd looks for,
        at the path clients look at, open to the bus policy's group."""
        with open(os.path.join(UNITS, "gmemd.socket")) as f:
            text = f.read()
        self.assertRegex(text, r"(?m)^FileDescriptorName=private$", "gmemd takes the fd named 'private'")
        self.assertRegex(text, r"(?m)^ListenStream=/run/gmemd/private$", "clients look at /run/gmemd/private")
        self.assertRegex(text, r"(?m)^SocketGroup=gmem$", "group gmem may connect, as the bus policy lets it call")
        self.assertRegex(text, r"(?m)^SocketMode=0660$", "nobody else may connect")

    def test_systemd_analyze_security(self):
        tool = shutil.which("systemd-analyze")
        if not tool:
            self.skip_or_fail("systemd-analyze is not installed (package systemd)", dependency=True)
        unit = self.unit_copy()
        p = subprocess.run([tool, "security", "--offline=yes", unit], capture_output=True, text=True, timeout=60)
        m = re.search(r"Overall exposure level for gmemd.service: ([0-9.]+) (\w+)", p.stdout)
        self.assertIsNotNone(m, f"systemd-analyze security rates the unit:\n{p.stdout}{p.stderr}")
        print(f"systemd-analyze security: {m.group(1)} {m.group(2)}", file=sys.stderr)
        self.assertIn(m.group(2), ("SAFE", "OK"), f"exposure {m.group(1)} {m.group(2)} is OK or better")

    def start_system_bus(self, gmemd_user="gmemd"):
        """A bus of the kind under test (gmemtest.Bus) with the system
        defaults (as Debian's system.conf: the Stats interface is denied by
        default) plus units/org.gmemd.Broker1.conf, its rules for user gmemd
        given to gmemd_user; returns its address."""
        tmp = tempfile.mkdtemp(prefix="gmembus.")
        os.chmod(tmp, 0o755)
        self.addCleanup(shutil.rmtree, tmp, True)
        sock = os.path.join(tmp, "bus")
        conf = os.path.join(tmp, "system.conf")
        with open(os.path.join(UNITS, "org.gmemd.Broker1.conf")) as src, \
                open(os.path.join(tmp, "gmemd.conf"), "w") as dst:
            dst.write(src.read().replace('user="gmemd"', f'user="{gmemd_user}"'))
        with open(conf, "w") as f:
            f.write(f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={sock}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_destination="org.freedesktop.DBus"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Debug.Stats"/>
    <allow receive_type="method_call"/>
    <!-- With send_type, as Debian's system.conf: on both buses a bare
         send_requested_reply="true" allow after the denies allows every
         send, Debug.Stats too. -->
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_requested_reply="true" receive_type="method_return"/>
    <allow receive_requested_reply="true" receive_type="error"/>
  </policy>
  <include>{tmp}/gmemd.conf</include>
</busconfig>
""")
        try:
            bus = gmemtest.Bus(tmp, conf, sock)
        except RuntimeError as e:
            self.fail(f"{gmemtest.BUS_KIND} starts with the policy included: {e}")
        self.addCleanup(bus.stop)
        return bus.address

    def test_system_bus_policy(self):
        """The bus under test with the system defaults plus units/org.gmemd.Broker1.conf."""
        address = self.start_system_bus()
        env = dict(self.world.env, DBUS_SYSTEM_BUS_ADDRESS=address)
        daemon = subprocess.Popen([self.world.gmemd] + (["--no-sandbox"] if gmemtest.WRAPPER else []),
                                  env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: (daemon.terminate(), daemon.wait()))
        conn = dbus.bus.BusConnection(address)
        for _ in range(200 * SLOW):
            if conn.name_has_owner("org.gmemd.Broker1"):
                break
            time.sleep(0.05)
        self.assertTrue(conn.name_has_owner("org.gmemd.Broker1"), "root may own org.gmemd.Broker1 on the system bus")

        regions = conn.call_blocking("org.gmemd.Broker1", gmemtest.ROOT_PATH, gmemtest.MANAGER_IFACE,
                                     "ListRegions", "", [])
        self.assertEqual(list(regions), [], "root may call the manager")

        client = r"""
import dbus, dbus.bus, json, sys
conn = dbus.bus.BusConnection(sys.argv[1])
out = {}
for name, iface, method, sig, args in [
        ("introspect", "org.freedesktop.DBus.Introspectable", "Introspect", "", []),
        ("list", "org.gmemd.Broker1.Manager", "ListRegions", "", []),
        ("getfd", "org.gmemd.Broker1.Manager", "GetFd", "ss", ["vm", "ram"])]:
    try:
        conn.call_blocking("org.gmemd.Broker1", "/org/gmemd/Broker1", iface, method, sig, args)
        out[name] = ["ok", ""]
    except dbus.exceptions.DBusException as e:
        out[name] = [e.get_dbus_name(), e.get_dbus_message()]
print(json.dumps(out))
"""
        p = subprocess.run([sys.executable, "-c", client, address], user=NOBODY, group=NOBODY, extra_groups=[],
                           env=env, capture_output=True, text=True, timeout=30 * SLOW, cwd="/")
        self.assertEqual(p.returncode, 0, p.stderr)
        res = json.loads(p.stdout)
        self.assertEqual(res["introspect"][0], "ok", "everyone may introspect the broker")
        self.assertEqual(res["list"][0], ACCESS_DENIED, "others may not call the manager")
        self.assertIn(gmemtest.BUS_SEND_REFUSED, res["list"][1], "the bus itself refuses them, not gmemd")
        self.assertEqual(res["getfd"][0], "org.gmemd.Broker1.Error.NoSuchVm",
                         "GetFd reaches gmemd, which decides (here: no such VM)")

        # gmemctl says who the bus lets through when the bus refuses the call (--bus: the direct
        # socket, if gmemd listens on one, has no bus policy) ...
        hint = "the bus lets only root and members of group gmem or gmem-admin call gmemd"
        p = subprocess.run([self.world.gmemctl, "--bus", "list-regions"], user=NOBODY, group=NOBODY, extra_groups=[],
                           env=env, capture_output=True, text=True, timeout=30 * SLOW, cwd="/")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(gmemtest.BUS_SEND_REFUSED, p.stderr, "gmemctl prints the bus's refusal")
        self.assertIn(hint, p.stderr, "and says which groups the bus lets through")
        # ... and not when gmemd itself refuses (its policy, here: no such VM's uid).
        p = subprocess.run([self.world.gmemctl, "create-region", "x", "1M"], user=NOBODY, group=NOBODY,
                           extra_groups=[], env=self.world.env, capture_output=True, text=True,
                           timeout=30 * SLOW, cwd="/")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertNotIn(hint, p.stderr, f"gmemd's own refusal gets no hint about the bus: {p.stderr}")

    def test_system_bus_policy_lets_gmemd_ask_for_unread_fds(self):
        """User gmemd may ask the bus how many fds a client has not read
        (bus-fdflow.c): GetConnectionStats on dbus-daemon, GetStats on
        dbus-broker; both buses apply the system default's deny of
        Debug.Stats to everyone else."""
        gmemd_uid = pwd.getpwnam("daemon").pw_uid
        address = self.start_system_bus(gmemd_user="daemon")
        client = r"""
import dbus, dbus.bus, json, sys
conn = dbus.bus.BusConnection(sys.argv[1])
out = {}
for method, sig, args in [("GetConnectionStats", "s", [conn.get_unique_name()]), ("GetStats", "", [])]:
    try:
        conn.call_blocking("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus.Debug.Stats",
                           method, sig, args)
        out[method] = ["ok", ""]
    except dbus.exceptions.DBusException as e:
        out[method] = [e.get_dbus_name(), e.get_dbus_message()]
print(json.dumps(out))
"""
        res = {}
        for uid in (gmemd_uid, NOBODY):
            p = subprocess.run([sys.executable, "-c", client, address], user=uid, group=uid, extra_groups=[],
                               env=self.world.env, capture_output=True, text=True, timeout=30 * SLOW, cwd="/")
            self.assertEqual(p.returncode, 0, p.stderr)
            res[uid] = json.loads(p.stdout)
        if gmemtest.bus_is_broker():
            self.assertEqual(res[gmemd_uid]["GetStats"][0], "ok", f"user gmemd may ask dbus-broker: {res}")
            self.assertEqual(res[gmemd_uid]["GetConnectionStats"],
                             ["org.freedesktop.DBus.Error.Failed", "Unimplemented functionality"],
                             "dbus-broker 33 has no GetConnectionStats")
        else:
            self.assertEqual(res[gmemd_uid]["GetConnectionStats"][0], "ok", f"user gmemd may ask dbus-daemon: {res}")
        for method in ("GetStats", "GetConnectionStats"):
            self.assertEqual(res[NOBODY][method][0], ACCESS_DENIED, f"others may not ask for {method}: {res}")

    def test_system_bus_policy_hides_objects(self):
        """Under units/org.gmemd.Broker1.conf, what the bus lets through shows each uid only what it may see."""
        address = self.start_system_bus()
        env = dict(self.world.env, DBUS_SYSTEM_BUS_ADDRESS=address)
        daemon = subprocess.Popen([self.world.gmemd] + (["--no-sandbox"] if gmemtest.WRAPPER else []),
                                  env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: (daemon.terminate(), daemon.wait()))
        conn = dbus.bus.BusConnection(address)
        for _ in range(200 * SLOW):
            if conn.name_has_owner("org.gmemd.Broker1"):
                break
            time.sleep(0.05)

        def mgr(method, sig, *args):
            return conn.call_blocking("org.gmemd.Broker1", gmemtest.ROOT_PATH, gmemtest.MANAGER_IFACE, method,
                                      sig, list(args))
        mgr("CreateRegion", "sta{sv}", "ram", dbus.UInt64(MiB), dbus.Dictionary({}, signature="sv"))
        mgr("RegisterVm", "sa{sv}", "mine", dbus.Dictionary({"uid": dbus.UInt32(NOBODY)}, signature="sv"))
        mgr("RegisterVm", "sa{sv}", "theirs", dbus.Dictionary({}, signature="sv"))
        for vm in ("mine", "theirs"):
            os.close(mgr("Attach", "sssa{sv}", vm, "ram", "rw", dbus.Dictionary({}, signature="sv")).take())

        client = r"""
import dbus, dbus.bus, json, sys
conn = dbus.bus.BusConnection(sys.argv[1])
out = {}
for name, path, iface, method, sig, args in [
        ("regions", "/org/gmemd/Broker1/region", "org.freedesktop.DBus.Introspectable", "Introspect", "", []),
        ("vms", "/org/gmemd/Broker1/vm", "org.freedesktop.DBus.Introspectable", "Introspect", "", []),
        ("objects", "/org/gmemd/Broker1", "org.freedesktop.DBus.ObjectManager", "GetManagedObjects", "", []),
        ("theirs", "/org/gmemd/Broker1", "org.gmemd.Broker1.Manager", "GetFd", "ss", ["theirs", "ram"]),
        ("ghost", "/org/gmemd/Broker1", "org.gmemd.Broker1.Manager", "GetFd", "ss", ["ghost", "ram"]),
        ("mine", "/org/gmemd/Broker1", "org.gmemd.Broker1.Manager", "GetFd", "ss", ["mine", "ram"])]:
    try:
        r = conn.call_blocking("org.gmemd.Broker1", path, iface, method, sig, args)
        out[name] = ["ok", str(r) if not isinstance(r, dbus.types.UnixFd) else "fd"]
    except dbus.exceptions.DBusException as e:
        out[name] = [e.get_dbus_name(), e.get_dbus_message()]
print(json.dumps(out))
"""
        stranger = pwd.getpwnam("daemon").pw_uid
        for uid in (NOBODY, stranger):
            with self.subTest(uid=uid):
                p = subprocess.run([sys.executable, "-c", client, address], user=uid, group=uid, extra_groups=[],
                                   env=env, capture_output=True, text=True, timeout=30 * SLOW, cwd="/")
                self.assertEqual(p.returncode, 0, p.stderr)
                res = json.loads(p.stdout)
                self.assertEqual(res["regions"][0], "ok", "everyone may introspect")
                self.assertNotIn('"ram"', res["regions"][1], f"introspection shows uid {uid} root's region")
                self.assertNotIn('"theirs"', res["vms"][1], f"introspection shows uid {uid} a VM not its own")
                self.assertEqual(res["objects"][0], ACCESS_DENIED, "the bus keeps others from GetManagedObjects")
                self.assertEqual(res["theirs"][0], res["ghost"][0],
                                 "GetFd of a VM one may not see answers as for one that does not exist")
                self.assertEqual(res["theirs"][1], res["ghost"][1].replace("ghost", "theirs"))
                if uid == NOBODY:
                    self.assertIn('"mine"', res["vms"][1], "the hypervisor uid finds its own VM")
                    self.assertEqual(res["mine"], ["ok", "fd"], "and fetches its view")
                else:
                    self.assertNotIn('"mine"', res["vms"][1], "nobody else finds it")
                    self.assertEqual(res["mine"][1], res["ghost"][1].replace("ghost", "mine"))


if __name__ == "__main__":
    gmemtest.main()
