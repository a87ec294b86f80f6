#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
gmemctl as a command-line tool: every verb of the contract, tables with
and without a legend, --json, sizes with suffixes, $GMEM_FD and $GMEM_FDS
under --exec, --bus-address, and the exit codes (0 ok, 1 failure reported
by the daemon or the bus, 2 bad usage) with errors printed as
"gmemctl: <message>".
"""
import json
import os
import re
import socket
import signal
import sys
import threading

import gmemtest     # before dbus: without python3-dbus it skips the file with the reason

import dbus
from gmemtest import MiB, GmemTestCase, WRAPPER, find_in_json, MIGRATION_IFACE

ENV_DUMP = r"""
import fcntl, json, os, re
fds = re.findall(r"=(\d+)", os.environ.get("GMEM_FDS") or "")
if os.environ.get("GMEM_FD"):
    fds.append(os.environ["GMEM_FD"])
print(json.dumps({
    "GMEM_FD": os.environ.get("GMEM_FD"),
    "GMEM_FDS": os.environ.get("GMEM_FDS"),
    "modes": {k: fcntl.fcntl(int(k), fcntl.F_GETFL) & os.O_ACCMODE for k in fds},
    "inodes": {k: os.fstat(int(k)).st_ino for k in fds},
}))
"""


def parse_fds(s):
    """'ram=5 rom=6' (any separator) -> {'ram': 5, 'rom': 6}"""
    return {k: int(v) for k, v in re.findall(r"([A-Za-z0-9_.-]+)=(\d+)", s or "")}


class Gmemctl(GmemTestCase):

    def assertUsageError(self, *args):
        res = self.gmemctl(*args, expect=2)
        self.assertTrue(res.err.startswith("gmemctl: "), f"usage error not prefixed:\n{res}")
        return res

    def assertDaemonError(self, *args, contains=None):
        res = self.gmemctl(*args, expect=1)
        self.assertTrue(res.err.startswith("gmemctl: "), f"error not prefixed 'gmemctl: ':\n{res}")
        self.assertEqual(len(res.err.strip().splitlines()), 1, f"error printed more than once:\n{res}")
        if contains:
            self.assertIn(contains, res.err, f"error does not name {contains!r}:\n{res}")
        return res

    def test_help_and_version(self):
        res = self.gmemctl("--help")
        for verb in ["status", "list-regions", "create-region", "destroy-region", "list-vms",
                     "register-vm", "unregister-vm", "attach", "detach", "get-fd", "migrate",
                     "list-migrations", "commit-migration", "abort-migration", "discard",
                     "allocate", "monitor", "hotplug", "unplug"]:
            self.assertIn(verb, res.out, f"--help does not mention {verb}")
        res = self.gmemctl("--version")
        if os.environ.get("GMEM_VERSION"):
            self.assertIn(os.environ["GMEM_VERSION"], res.out)

    def test_usage_errors(self):
        self.assertUsageError("no-such-verb")
        self.assertUsageError("create-region")
        self.assertUsageError("create-region", "x")
        self.assertUsageError("create-region", "x", "12Q")
        self.assertUsageError("create-region", "x", "99999999999999999999999")
        self.assertUsageError("discard", "x", "0")
        self.assertUsageError("--no-such-option", "status")
        self.assertUsageError("register-vm", "x", "--leader-pid=abc")
        self.assertUsageError("attach", "x")
        self.assertIn("--qmp=SOCKET", self.assertUsageError("hotplug", "vm", "r").err)
        self.assertUsageError("unplug", "vm", "r")
        self.assertUsageError("hotplug", "vm", "r", "extra", "--qmp=/x")
        self.assertIn("Invalid --timeout='0'", self.assertUsageError("hotplug", "vm", "r", "--qmp=/x",
                                                                     "--timeout=0").err)
        self.assertUsageError("unplug", "vm", "r", "--qmp=/x", "--timeout=-5")
        self.assertIn("Invalid --id='a b'", self.assertUsageError("hotplug", "vm", "r", "--qmp=/x",
                                                                  "--id=a b").err)
        self.assertUsageError("hotplug", "vm", "r", "--qmp=/x", "--id=" + "a" * 130)
        self.assertUsageError("hotplug", "vm", "r", "--qmp=")

    def test_daemon_errors(self):
        self.assertDaemonError("destroy-region", "no-such-region", contains="no-such-region")
        self.assertDaemonError("unregister-vm", "no-such-vm", contains="no-such-vm")
        r = self.create_region(MiB)
        self.assertDaemonError("create-region", r, "1M", contains=r)
        self.assertDaemonError("create-region", self.uniq("r"), "4095")
        self.assertDaemonError("discard", r, "0", "2M")
        res = self.gmemctl("create-region", "bad/name", "1M", expect=None)
        self.assertIn(res.rc, (1, 2), f"bad name:\n{res}")
        self.assertTrue(res.err.startswith("gmemctl: "), str(res))
        self.assertNotIn("bad/name", self.region_names())

    def test_hotplug_without_qemu(self):
        """hotplug attaches, finds no QEMU, and takes the view back; the
        QEMU side is tested in the qemu suite (qemu-hotplug)."""
        r, vm = self.create_region(2 * MiB), self.register_vm()
        self.with_spare(vm, r)
        fds = self.gmemd_fd_count()
        nowhere = os.path.join(self.world.tmp, "no-such.qmp")
        res = self.gmemctl("hotplug", vm, r, f"--qmp={nowhere}", expect=1)
        self.assertIn(f"Failed to connect to QEMU's QMP socket {nowhere}", res.err)
        self.assertEqual(self.views_of_vm(vm), [], "the view hotplug attached is detached again")
        self.assertEqual(self.gmemd_fd_count(), fds, "gmemd holds no extra fd")
        # A socket that never greets: QEMU's QMP socket while another client holds it.
        path = os.path.join(self.world.tmp, "silent.qmp")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as srv:
            srv.bind(path)
            srv.listen(1)
            res = self.gmemctl("hotplug", vm, r, f"--qmp={path}", "--timeout=1", expect=1)
        self.assertIn("sent no greeting within 1 s", res.err)
        self.assertEqual(self.views_of_vm(vm), [])
        # A view the VM had stays.
        self.gmemctl("attach", vm, r)
        self.gmemctl("hotplug", vm, r, f"--qmp={nowhere}", expect=1)
        self.assertEqual(self.views_of_vm(vm), [(r, "rw", "active")], "a view the VM had before stays")
        self.assertDaemonError("hotplug", vm, "no-such-region", f"--qmp={nowhere}", contains="no-such-region")

    def show(self, *args, **kw):
        """gmemctl show's objects: a list of {Name: value} dicts."""
        out = self.gmemctl("show", *args, **kw).out
        return [dict(line.split("=", 1) for line in block.splitlines()) for block in out.strip().split("\n\n")]

    def test_show(self):
        r = self.create_region(2 * MiB)
        vm = self.register_vm()
        vm2 = self.register_vm()
        self.gmemctl("attach", vm, r)
        (region,) = self.show(r)
        props = self.get_all(gmemtest.region_path(r), gmemtest.REGION_IFACE)
        self.assertEqual(set(region), set(map(str, props)), "show prints every property of the region")
        self.assertEqual((region["Name"], region["Size"], region["Backend"]),
                         (r, str(2 * MiB), "memfd"), "as Name=value, numbers in decimal")
        self.assertEqual(region["Views"], f"{vm}:rw:active", "a structure's fields joined with ':'")
        (v,) = self.show(vm)
        self.assertEqual((v["Name"], v["Views"]), (vm, f"{r}:rw:active"))
        out = self.gmemctl("--no-commit", "migrate", vm, vm2).out
        mig = next(m for m in self.mgr("ListMigrations") if str(m[0]) == vm)
        mig_id = str(mig[3]).rsplit("/", 1)[1]
        for name in (mig_id, str(mig[3])):
            with self.subTest(migration=name):
                (m,) = self.show(name)
                self.assertEqual((m["Source"], m["Target"], m["State"]), (vm, vm2, "prepared"), out)
        (mgr,) = self.show()
        self.assertIn("Version", mgr, "without a name, the broker's own properties")
        self.assertEqual(self.show("-p", "Name,Size", r), [{"Name": r, "Size": str(2 * MiB)}])
        self.assertEqual(self.show(r, "--property=Backend", "-p", "Name"), [{"Name": r, "Backend": "memfd"}],
                         "in the broker's order, whatever the order asked")
        self.assertEqual(len(self.show(r, vm)), 2, "one block per object")
        res = self.gmemctl("show", "no-such-thing", expect=1)
        self.assertIn("No region, VM or migration 'no-such-thing' known", res.err)
        self.gmemctl("abort-migration", mig_id)

    def test_help_verb(self):
        # "gmemctl help" is --help: the same text, exit 0, and no bus needed.
        env = dict(self.world.env)
        env["DBUS_SYSTEM_BUS_ADDRESS"] = "unix:path=" + os.path.join(self.world.tmp, "nothing")
        self.assertEqual(self.gmemctl("help", env=env).out, self.gmemctl("--help").out)

    def test_no_broker(self):
        env = dict(self.world.env)
        nothing = "unix:path=" + os.path.join(self.world.tmp, "nothing")
        env["DBUS_SYSTEM_BUS_ADDRESS"] = nothing
        # Nor a direct socket, which gmemctl would take first and fall back to the bus from.
        env["GMEM_DIRECT_SOCKET"] = os.path.join(self.world.tmp, "no-direct-socket")
        res = self.gmemctl("list-regions", expect=1, env=env)
        self.assertTrue(res.err.startswith("gmemctl: "), str(res))
        self.assertIn(f"Failed to connect to the system bus at {nothing}: ", res.err,
                      "the error names the address it tried")
        res = self.gmemctl(f"--bus-address={nothing}", "list-regions", expect=1)
        self.assertIn(f"Failed to connect to the bus at {nothing}: ", res.err, "and so with --bus-address=")
        del env["DBUS_SYSTEM_BUS_ADDRESS"]
        if not os.path.exists("/run/dbus/system_bus_socket"):
            res = self.gmemctl("list-regions", expect=1, env=env)
            self.assertIn("Failed to connect to the system bus at unix:path=/run/dbus/system_bus_socket: ",
                          res.err, "and so without $DBUS_SYSTEM_BUS_ADDRESS")

    def test_bus_address_option(self):
        env = dict(self.world.env)
        env["DBUS_SYSTEM_BUS_ADDRESS"] = "unix:path=" + os.path.join(self.world.tmp, "nothing")
        r = self.create_region(MiB)
        res = self.gmemctl(f"--bus-address={self.world.address}", "list-regions", env=env)
        self.assertIn(r, res.out)

    def test_create_list_destroy_with_suffixes(self):
        sizes = {"4K": 4096, "64M": 64 * MiB, "1G": 1 << 30, "8192": 8192}
        names = {}
        for s, n in sizes.items():
            name = self.uniq("r")
            self.addCleanup(self._quietly, "DestroyRegion", "s", name)
            self.gmemctl("create-region", name, s)
            self.assertEqual(int(self.region_prop(name, "Size")), n, f"size {s}")
            names[name] = n
        full = self.gmemctl("list-regions").out.splitlines()
        bare = self.gmemctl("--no-legend", "list-regions").out.splitlines()
        self.assertGreater(len(full), len(bare), "the legend adds no header line")
        for name in names:
            self.assertTrue(any(l.split()[:1] == [name] for l in bare),
                            f"--no-legend list-regions has no row starting with {name}:\n{bare}")
        for mode in ["--json", "--json=short", "--json=pretty"]:
            with self.subTest(json=mode):
                data = json.loads(self.gmemctl(mode, "list-regions").out)
                for name in names:
                    self.assertTrue(find_in_json(data, name), f"{mode} lacks {name}: {data}")
        for name in names:
            self.gmemctl("destroy-region", name)
        self.assertFalse(set(names) & set(self.region_names()))

    def test_list_columns_are_the_properties(self):
        """list-regions and list-vms show each object's properties, as GetAll reads them one object at a
        time: ALLOCATED, VIEWS and UID in the table and in --json, for several objects with views."""
        regions = [self.create_region(2 * MiB), self.create_region(MiB), self.create_region(64 * 1024)]
        vms = [self.register_vm(uid=dbus.UInt32(4242)), self.register_vm(), self.register_vm()]
        self.mgr("Allocate", "stt", regions[0], dbus.UInt64(0), dbus.UInt64(MiB))
        for vm, region, access in [(vms[0], regions[0], "rw"), (vms[1], regions[0], "ro"),
                                   (vms[0], regions[1], "rw")]:
            self.close_fd(self.attach(vm, region, access))

        def size(n):
            for i, unit in enumerate("KMGTPE"):
                if n < 1024 << (10 * (i + 1)) or unit == "E":
                    return f"{n}B" if n < 1024 else (f"{n >> (10 * (i + 1))}{unit}" if n % (1 << (10 * (i + 1))) == 0
                                                      else f"{n / (1 << (10 * (i + 1))):.1f}{unit}")

        def views(props, other):
            return [{other: str(v[0]), "access": str(v[1]), "state": str(v[2])} for v in props["Views"]]

        def cell(vs, other):
            return ",".join(f"{v[other]}:{v['access']}" + ("" if v["state"] == "active" else f":{v['state']}")
                            for v in vs) or "-"

        want_json, want_rows = {}, {}
        for name in regions:
            p = self.get_all(gmemtest.region_path(name), gmemtest.REGION_IFACE)
            vs = views(p, "vm")
            want_json[name] = {"name": name, "size": int(p["Size"]), "allocated_bytes": int(p["AllocatedBytes"]),
                               "backend": str(p["Backend"]), "owner": str(p["Owner"]) or None, "views": vs}
            want_rows[name] = [name, size(int(p["Size"])), size(int(p["AllocatedBytes"])), str(p["Backend"]),
                               str(p["Owner"]) or "-", cell(vs, "vm")]
        self.assertGreaterEqual(want_json[regions[0]]["allocated_bytes"], MiB, "Allocate allocated")
        self.assertEqual(len(want_json[regions[0]]["views"]), 2, "two VMs have views of the first region")
        for mode in ["--json=short", "--json=pretty"]:
            got = {r["name"]: r for r in json.loads(self.gmemctl(mode, "list-regions").out)}
            for name in regions:
                self.assertEqual(got.get(name), want_json[name], f"{mode} list-regions: {name}")
        got = {l.split()[0]: l.split() for l in self.gmemctl("--no-legend", "list-regions").out.splitlines()}
        for name in regions:
            self.assertEqual(got.get(name), want_rows[name], f"list-regions row of {name}")

        want_json, want_rows = {}, {}
        for name in vms:
            p = self.get_all(gmemtest.vm_path(name), gmemtest.VM_IFACE)
            vs = views(p, "region")
            uid = None if int(p["Uid"]) == 0xffffffff else int(p["Uid"])
            want_json[name] = {"name": name, "leader_pid": int(p["LeaderPID"]) or None, "uid": uid, "views": vs}
            want_rows[name] = [name, str(int(p["LeaderPID"]) or "-"), "-" if uid is None else str(uid),
                               cell(vs, "region")]
        self.assertEqual(want_json[vms[0]]["uid"], 4242, "the first VM has a uid")
        self.assertEqual(len(want_json[vms[0]]["views"]), 2, "the first VM has two views")
        for mode in ["--json=short", "--json=pretty"]:
            got = {r["name"]: r for r in json.loads(self.gmemctl(mode, "list-vms").out)}
            for name in vms:
                self.assertEqual(got.get(name), want_json[name], f"{mode} list-vms: {name}")
        got = {l.split()[0]: l.split() for l in self.gmemctl("--no-legend", "list-vms").out.splitlines()}
        for name in vms:
            self.assertEqual(got.get(name), want_rows[name], f"list-vms row of {name}")

    def test_create_region_options(self):
        owner = self.register_vm()
        name = self.uniq("r")
        self.addCleanup(self._quietly, "DestroyRegion", "s", name)
        self.gmemctl("create-region", name, "2M", "--backend=memfd", "--populate",
                     f"--owner={owner}")
        self.assertEqual(str(self.region_prop(name, "Owner")), owner)
        self.assertEqual(str(self.region_prop(name, "Backend")), "memfd")
        self.assertGreaterEqual(int(self.region_prop(name, "AllocatedBytes")), 2 * MiB,
                                "--populate did not allocate")
        self.assertDaemonError("create-region", self.uniq("r"), "2M", "--backend=floppy",
                               contains="floppy")

    def test_vms(self):
        vm = self.uniq("vm")
        self.addCleanup(self._quietly, "UnregisterVm", "s", vm)
        res = self.gmemctl("register-vm", vm, f"--leader-pid={os.getpid()}", "--uid=4242",
                           expect=None)
        if res.rc != 0:
            self.skip_if_no_pidfd(res.err)
        self.assertEqual(res.rc, 0, str(res))
        self.assertEqual(int(self.vm_prop(vm, "LeaderPID")), os.getpid())
        self.assertEqual(int(self.vm_prop(vm, "Uid")), 4242)
        out = self.gmemctl("--no-legend", "list-vms").out
        self.assertTrue(any(l.split()[:1] == [vm] for l in out.splitlines()), out)
        data = json.loads(self.gmemctl("--json=short", "list-vms").out)
        self.assertTrue(find_in_json(data, vm), data)
        self.gmemctl("unregister-vm", vm)
        self.assertNotIn(vm, self.vm_names())

    def test_register_vm_sends_a_pidfd(self):
        """--leader-pid goes to the broker as a pidfd gmemctl opened: a zombie
        leader, whose pid still names it, is refused as exited (as leader_pid
        it would be watched, and released at once)."""
        if WRAPPER:
            self.skipTest("under a wrapper pidfd_open may be ENOSYS, and gmemctl then sends leader_pid")
        p = self.spawn_leader()
        os.kill(p.pid, signal.SIGKILL)
        self.wait_until(lambda: open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z",
                        f"process {p.pid} to become a zombie")
        vm = self.uniq("vm")
        res = self.gmemctl("register-vm", vm, f"--leader-pid={p.pid}", expect=1)
        self.assertIn("has exited", res.err, str(res))
        self.assertNotIn(vm, self.vm_names())
        p.wait()
        self.assertDaemonError("register-vm", vm, f"--leader-pid={p.pid}", contains=str(p.pid))
        # A thread's id is no process id: gmemctl says so before it calls the broker.
        done = threading.Event()
        tid = []
        t = threading.Thread(target=lambda: (tid.append(threading.get_native_id()), done.wait(30)))
        t.start()
        self.addCleanup(t.join)
        self.addCleanup(done.set)
        self.wait_until(lambda: tid, "the thread to start")
        self.assertDaemonError("register-vm", vm, f"--leader-pid={tid[0]}", contains="not a process")

    def test_attach_exec_env(self):
        r1, r2 = self.create_region(MiB), self.create_region(2 * MiB)
        vm = self.register_vm()
        res = self.gmemctl("attach", vm, r1, "--exec", "--", sys.executable, "-c", ENV_DUMP)
        d = json.loads(res.out)
        self.assertIsNotNone(d["GMEM_FD"], f"$GMEM_FD not set: {d}")
        self.assertEqual(d["modes"][d["GMEM_FD"]], os.O_RDWR, "attach without --ro is not rw")
        ro_vm = self.register_vm()
        res = self.gmemctl("attach", ro_vm, r1, r2, "--ro", "--exec", "--", sys.executable,
                           "-c", ENV_DUMP)
        d = json.loads(res.out)
        fds = parse_fds(d["GMEM_FDS"])
        self.assertEqual(sorted(fds), sorted([r1, r2]), f"$GMEM_FDS is {d['GMEM_FDS']!r}")
        for name, fd in fds.items():
            self.assertEqual(d["modes"][str(fd)], os.O_RDONLY, f"{name} is not read-only")
        self.assertNotEqual(d["inodes"][str(fds[r1])], d["inodes"][str(fds[r2])])
        self.assertEqual(self.views_of_vm(ro_vm), sorted([(r1, "ro", "active"), (r2, "ro", "active")]))
        # get-fd hands the same views out again.
        res = self.gmemctl("get-fd", ro_vm, r2, "--exec", "--", sys.executable, "-c", ENV_DUMP)
        d2 = json.loads(res.out)
        self.assertEqual(d2["inodes"][d2["GMEM_FD"]], d["inodes"][str(fds[r2])])
        # Without --exec, attach only records the view.
        vm3 = self.register_vm()
        self.gmemctl("attach", vm3, r2, "--offset=1M", "--length=4K")
        self.assertEqual(self.views_of_vm(vm3), [(r2, "rw", "active")])
        self.gmemctl("detach", vm3, r2)
        self.assertEqual(self.views_of_vm(vm3), [])
        self.assertDaemonError("detach", vm3, r2)

    def test_exec_status(self):
        r = self.create_region(MiB)
        vm = self.register_vm()
        self.gmemctl("attach", vm, r, "--exec", "--", "true")
        res = self.gmemctl("get-fd", vm, r, "--exec", "--", "sh", "-c", "exit 7", expect=None)
        self.assertNotEqual(res.rc, 0, "a failing --exec command reported success")

    def test_discard_allocate(self):
        r = self.create_region(4 * MiB)
        vm = self.register_vm()
        fd = self.attach(vm, r, "rw")
        os.pwrite(fd, b"\x55" * (2 * MiB), 0)
        self.gmemctl("discard", r, "1M", "64K")
        self.assertEqual(os.pread(fd, 64 * 1024, MiB), b"\0" * (64 * 1024))
        self.assertEqual(os.pread(fd, 16, MiB - 16), b"\x55" * 16)
        self.assertEqual(os.pread(fd, 16, MiB + 64 * 1024), b"\x55" * 16)
        self.gmemctl("allocate", r, "2M", "2M")
        self.assertGreaterEqual(os.fstat(fd).st_blocks * 512, 4 * MiB - 64 * 1024)
        self.assertDaemonError("allocate", r, "3M", "2M")

    def test_attributes(self):
        """On memfd every page is shared: one run, no private bytes; converting is NotSupported."""
        r = self.create_region(4 * MiB)
        out = self.gmemctl("--no-legend", "attributes", r).out.split()
        self.assertEqual(out, ["0B", "4M", "shared"], "the whole region is one run of shared pages")
        self.assertEqual(json.loads(self.gmemctl("--json=short", "attributes", r, "1M", "64K").out),
                         [{"offset": MiB, "length": 64 * 1024, "attribute": "shared"}])
        self.assertEqual(self.region_prop(r, "PrivateBytes"), 0)
        self.assertEqual([tuple(x) for x in self.mgr("GetMemoryAttributes", "stt", r, dbus.UInt64(0),
                                                     dbus.UInt64(4 * MiB))],
                         [(0, 4 * MiB, "shared")], "busctl's view of the same")
        self.assertDaemonError("set-attributes", r, "0", "4K", "private", contains="kmod backend")
        self.assertUsageError("set-attributes", r, "0", "4K", "purple")
        self.assertDaemonError("attributes", r, "3M", "2M", contains="is past its size")

    def test_migrate_verbs(self):
        r = self.create_region(MiB)
        a, b, c = self.register_vm(), self.register_vm(), self.register_vm()
        self.attach(a, r, "rw")
        res = self.gmemctl("migrate", a, b, "--no-commit")
        rows = [m for m in self.mgr("ListMigrations") if str(m[0]) == a and str(m[1]) == b]
        self.assertEqual(len(rows), 1, f"no prepared migration a->b: {rows}")
        path = str(rows[0][3])
        self.addCleanup(self._quietly_path, path, "AbortMigration")
        self.assertEqual(str(rows[0][2]), "prepared")
        mid = int(self.get_prop(path, MIGRATION_IFACE, "Id"))
        self.assertIn(str(mid), res.out, f"migrate --no-commit does not print the id:\n{res}")
        out = self.gmemctl("list-migrations").out
        self.assertIn("prepared", out)
        self.assertDaemonError("migrate", a, c)      # MigrationInProgress
        self.gmemctl("abort-migration", str(mid))
        self.assertEqual(str(self.get_prop(path, MIGRATION_IFACE, "State")), "aborted")
        self.gmemctl("migrate", a, b, "--no-commit")
        rows = [m for m in self.mgr("ListMigrations")
                if str(m[0]) == a and str(m[1]) == b and str(m[2]) == "prepared"]
        path2 = str(rows[0][3])
        self.addCleanup(self._quietly_path, path2, "AbortMigration")
        mid2 = int(self.get_prop(path2, MIGRATION_IFACE, "Id"))
        self.assertNotEqual(mid, mid2)
        self.gmemctl("commit-migration", str(mid2))
        self.assertEqual(str(self.get_prop(path2, MIGRATION_IFACE, "State")), "committed")
        self.assertEqual(self.views_of_vm(b), [(r, "rw", "active")])
        self.assertDaemonError("commit-migration", "999999")
        data = json.loads(self.gmemctl("--json=short", "list-migrations").out)
        self.assertTrue(find_in_json(data, "committed"), data)

    def test_status(self):
        res = self.gmemctl("status")
        self.assertIn("memfd", res.out)
        if os.environ.get("GMEM_VERSION"):
            self.assertIn(os.environ["GMEM_VERSION"], res.out)

    def test_empty_tables(self):
        # Tables of a fresh broker are valid with and without a legend.
        self.gmemctl("--no-legend", "list-migrations")
        data = json.loads(self.gmemctl("--json=short", "list-migrations").out)
        self.assertIsInstance(data, (list, dict))


if __name__ == "__main__":
    gmemtest.main()
