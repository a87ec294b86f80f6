#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
gmemctl on gmemd's direct socket: gmemd runs with --direct-socket= in the
test's directory, which $GMEM_DIRECT_SOCKET names for every client. The same
commands give the same output with --direct, --direct=PATH, --bus,
--bus-address= and by default; by default gmemctl takes the direct socket
(it works with no bus at all) and falls back to the bus, silently, when the
socket is missing, refuses, or may not be opened; --direct fails then,
naming the socket and the error. monitor gets the signals from the bus in
every mode, Views changes included (it subscribes).
"""
import os
import signal
import socket
import subprocess
import sys

import gmemtest     # before dbus: without python3-dbus it skips the file with the reason

import dbus
from gmemtest import MiB, PAGE, GmemTestCase, Monitor, dbus_options

NOBODY = 65534


class DirectClient(GmemTestCase):

    @classmethod
    def setUpClass(cls):
        gmemtest.WORLD.start_gmemd(direct=True)

    def env_with(self, **kw):
        env = dict(self.world.env)
        env.update(kw)
        return env

    def no_bus_env(self):
        """Only the direct socket answers: the system bus's address leads nowhere."""
        return self.env_with(DBUS_SYSTEM_BUS_ADDRESS="unix:path=" + os.path.join(self.world.tmp, "no-bus"))

    def modes(self):
        """Every way gmemctl can be told to reach the broker, by name."""
        return {
                "--direct": ["--direct"],
                "--direct=PATH": [f"--direct={self.world.direct_socket}"],
                "--bus": ["--bus"],
                "--bus-address=": [f"--bus-address={self.world.address}"],
                "default": [],
        }

    def assertSameEverywhere(self, *args, expect=0):
        results = {mode: self.gmemctl(*opts, *args, expect=expect) for mode, opts in self.modes().items()}
        first = results["--bus"]
        for mode, res in results.items():
            self.assertEqual((res.out, res.err), (first.out, first.err),
                             f"gmemctl {' '.join(args)} differs between --bus and {mode}:\n{first}\n{res}")
        return first

    def test_same_results_every_way(self):
        # status lists hugetlb only while huge pages are reserved: nobody changes that meanwhile.
        self.lock_hugepages(exclusive=False)
        r = self.create_region(2 * MiB)
        vm = self.register_vm()
        self.attach(vm, r, "rw")
        for args in (["status"], ["--json=short", "status"], ["list-regions"], ["--json=short", "list-regions"],
                     ["list-vms"], ["--json=short", "list-vms"], ["show", r, vm], ["show"],
                     ["attributes", r], ["list-migrations"]):
            with self.subTest(args=args):
                res = self.assertSameEverywhere(*args)
                if args[-1] in ("list-regions", "list-vms"):
                    self.assertIn(r if args[-1] == "list-regions" else vm, res.out)

    def test_broker_errors_same_every_way(self):
        res = self.assertSameEverywhere("destroy-region", "no-such-region", expect=1)
        self.assertIn("no-such-region", res.err, "the broker's message names the region")
        res = self.assertSameEverywhere("create-region", self.uniq("r"), "1000", expect=1)
        self.assertIn("1000", res.err, "the broker's message names the size")

    def test_default_takes_the_direct_socket(self):
        env = self.no_bus_env()
        r = self.create_region(MiB)
        res = self.gmemctl("list-regions", env=env)
        self.assertIn(r, res.out, "with no bus, the default reached gmemd through the direct socket")
        self.assertEqual(res.err, "")
        self.assertEqual(self.gmemctl("--direct", "list-regions", env=env).out, res.out)
        res = self.gmemctl("--bus", "list-regions", env=env, expect=1)
        self.assertIn("Failed to connect to the system bus at unix:path=", res.err,
                      "--bus does not use the direct socket")

    def test_changes_through_the_direct_socket(self):
        r, vm = self.uniq("r"), self.uniq("vm")
        self.addCleanup(self._quietly, "DestroyRegion", "s", r)
        self.addCleanup(self._quietly, "UnregisterVm", "s", vm)
        env = self.no_bus_env()
        self.gmemctl("--direct", "create-region", r, "1M", env=env)
        self.gmemctl("--direct", "register-vm", vm, env=env)
        self.assertIn(r, self.region_names(), "a region created over the direct socket is on the bus too")
        self.assertIn(vm, self.vm_names())
        # An fd across the direct socket, into the command --exec runs.
        res = self.gmemctl("--direct", "attach", vm, r, "--exec", "--", sys.executable, "-c",
                           "import os; fd = int(os.environ['GMEM_FD']); print(os.fstat(fd).st_size)", env=env)
        self.assertEqual(res.out.strip(), str(MiB), "the view's fd came through the direct socket")
        self.assertEqual(self.views_of_vm(vm), [(r, "rw", "active")])
        self.gmemctl("--direct", "discard", r, "0", "4K", env=env)
        self.gmemctl("--direct", "detach", vm, r, env=env)
        self.assertEqual(self.views_of_vm(vm), [])
        self.gmemctl("--direct", "unregister-vm", vm, env=env)
        self.gmemctl("--direct", "destroy-region", r, env=env)
        self.assertNotIn(r, self.region_names())

    def test_direct_to_a_missing_socket_fails_clearly(self):
        missing = os.path.join(self.world.tmp, "no-such-socket")
        res = self.gmemctl(f"--direct={missing}", "status", expect=1)
        self.assertEqual(res.out, "")
        self.assertEqual(res.err.strip(), f"gmemctl: Failed to connect to gmemd's direct socket {missing}: "
                         "No such file or directory (ENOENT)")
        res = self.gmemctl("--direct", "list-regions", env=self.env_with(GMEM_DIRECT_SOCKET=missing), expect=1)
        self.assertIn(f"direct socket {missing}: No such file or directory (ENOENT)", res.err,
                      "--direct without a path names $GMEM_DIRECT_SOCKET's")

    def test_default_falls_back_to_the_bus(self):
        r = self.create_region(MiB)
        bus = self.gmemctl("--bus", "list-regions")
        missing = os.path.join(self.world.tmp, "no-such-socket")
        res = self.gmemctl("list-regions", env=self.env_with(GMEM_DIRECT_SOCKET=missing))
        self.assertEqual((res.out, res.err), (bus.out, ""), "no direct socket: the bus, without a word")
        self.assertIn(r, res.out)

        # A socket nobody listens on refuses the connection.
        refused = os.path.join(self.world.tmp, "refused-socket")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.bind(refused)
            self.addCleanup(os.unlink, refused)
            env = self.env_with(GMEM_DIRECT_SOCKET=refused)
            res = self.gmemctl("list-regions", env=env)
            self.assertEqual((res.out, res.err), (bus.out, ""), "a refusing socket: the bus, without a word")
            res = self.gmemctl("--direct", "list-regions", env=env, expect=1)
            self.assertIn(f"direct socket {refused}: Connection refused (ECONNREFUSED)", res.err)

    def test_default_falls_back_when_the_broker_hangs_up(self):
        # Past its 64 direct connections per uid, gmemd accepts a connection and closes it at once.
        conns = []

        def close_all():
            for c in conns:
                c.close()
            conns.clear()
        self.addCleanup(close_all)
        for _ in range(64):
            conns.append(self.world.direct_connection())
        bus = self.gmemctl("--bus", "list-regions")
        res = self.gmemctl("list-regions")
        self.assertEqual((res.out, res.err), (bus.out, ""), "a broker that hangs up: the bus, without a word")
        res = self.gmemctl("--direct", "list-regions", expect=1)
        self.assertRegex(res.err, f"Failed to connect to gmemd's direct socket {self.world.direct_socket}: "
                         r".*\((EPIPE|ECONNRESET|ENOTCONN)\)")
        close_all()
        self.wait_until(lambda: self.gmemctl("--direct", "list-regions", expect=None).rc == 0,
                        "the direct socket to let gmemctl in again once the connections are closed")

    def test_default_falls_back_when_the_socket_may_not_be_opened(self):
        if os.geteuid() != 0:
            self.skip_or_fail("running gmemctl as another user needs root", dependency=False)
        # The socket behind a directory only root may enter: EACCES for nobody.
        locked = os.path.join(self.world.tmp, "locked")
        os.mkdir(locked, 0o700)
        link = os.path.join(locked, "private")
        os.symlink(self.world.direct_socket, link)
        env = self.env_with(GMEM_DIRECT_SOCKET=link)
        bus = self.run_cmd([self.world.gmemctl, "--bus", "list-regions"], env=env, expect=None,
                           user=NOBODY, group=NOBODY, extra_groups=[])
        res = self.run_cmd([self.world.gmemctl, "list-regions"], env=env, expect=None,
                           user=NOBODY, group=NOBODY, extra_groups=[])
        self.assertEqual((res.rc, res.out, res.err), (bus.rc, bus.out, bus.err),
                         f"a socket nobody may not open: the bus, as with --bus\n{bus}\n{res}")
        res = self.run_cmd([self.world.gmemctl, "--direct", "list-regions"], env=env, expect=1,
                           user=NOBODY, group=NOBODY, extra_groups=[])
        self.assertIn(f"direct socket {link}: Permission denied (EACCES)", res.err)

    def test_usage_errors(self):
        for args, text in [(["--direct", "--bus"], "exclude each other"),
                           (["--bus", "--direct"], "exclude each other"),
                           (["--direct", f"--bus-address={self.world.address}"], "exclude each other"),
                           (["--direct="], "needs the path")]:
            with self.subTest(args=args):
                res = self.gmemctl(*args, "status", expect=2)
                self.assertIn(text, res.err)
        # --bus with --bus-address= is still one bus.
        self.gmemctl("--bus", f"--bus-address={self.world.address}", "status")
        help = self.gmemctl("--help").out
        self.assertIn("--direct[=PATH]", help)
        self.assertIn("--bus ", help)

    def monitor_sees_changes(self, opts, env, mon=None):
        if mon is None:
            mon = Monitor([self.world.gmemctl] + opts + ["monitor"], env)
            self.addCleanup(mon.stop)
        probe = self.uniq("probe")

        def poke():
            self.mgr("CreateRegion", "sta{sv}", probe, dbus.UInt64(PAGE), dbus_options({}))
            self.mgr("DestroyRegion", "s", probe)
        self.assertIsNotNone(mon.wait_for(lambda l: probe in l, timeout=15, poke=poke),
                             f"gmemctl {' '.join(opts)} monitor printed nothing about a new region:\n"
                             + "\n".join(mon.snapshot()))
        r = self.create_region(MiB)
        vm = self.register_vm()
        self.attach(vm, r, "rw")
        line = mon.wait_for(lambda l: l.startswith("PropertiesChanged") and gmemtest.vm_path(vm) in l
                            and "Views=" in l, timeout=10)
        self.assertIsNotNone(line, f"gmemctl {' '.join(opts)} monitor showed no change of the VM's Views "
                             "(it subscribes):\n" + "\n".join(mon.snapshot()))
        self.assertIsNone(mon.proc.poll(), "gmemctl monitor exited")
        mon.proc.send_signal(signal.SIGINT)
        try:
            rc = mon.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.fail("gmemctl monitor did not exit on SIGINT")
        self.assertEqual(rc, 0, f"gmemctl {' '.join(opts)} monitor exited {rc} on SIGINT")

    def test_monitor_every_way(self):
        for mode in ("--direct", "--bus", "default"):
            with self.subTest(mode=mode):
                self.monitor_sees_changes(self.modes()[mode], self.world.env)

    def test_monitor_subscribes_again(self):
        # A broker that restarts has no subscribers; one that starts after the monitor has none either.
        direct = Monitor([self.world.gmemctl, "--direct", "monitor"], self.world.env)
        self.addCleanup(direct.stop)
        probe = self.uniq("probe")

        def poke():
            self.mgr("CreateRegion", "sta{sv}", probe, dbus.UInt64(PAGE), dbus_options({}))
            self.mgr("DestroyRegion", "s", probe)
        self.assertIsNotNone(direct.wait_for(lambda l: probe in l, timeout=15, poke=poke),
                             "gmemctl --direct monitor printed nothing:\n" + "\n".join(direct.snapshot()))
        self.assertEqual(self.world.stop_gmemd(), 0, "gmemd exits 0 on SIGTERM")
        early = Monitor([self.world.gmemctl, "--bus", "monitor"], self.world.env)
        self.addCleanup(early.stop)
        self.world.start_gmemd(direct=True)
        for mon, opts in [(direct, ["--direct"]), (early, ["--bus"])]:
            with self.subTest(monitor=opts[0]):
                self.monitor_sees_changes(opts, self.world.env, mon=mon)

    def test_monitor_needs_the_bus(self):
        # Signals come only over the bus: without one, a direct monitor cannot subscribe.
        res = self.gmemctl("--direct", "monitor", env=self.no_bus_env(), expect=1, timeout=30)
        self.assertIn("Failed to connect to the system bus for the broker's signals", res.err)

    def test_direct_connection_python(self):
        # The same API on the peer connection the harness offers: no bus, no destination.
        r = self.create_region(MiB)
        conn = self.world.direct_connection()
        self.addCleanup(conn.close)
        names = sorted(str(x[0]) for x in conn.call_blocking(None, gmemtest.ROOT_PATH, gmemtest.MANAGER_IFACE,
                                                             "ListRegions", "", []))
        self.assertEqual(names, self.region_names())
        self.assertIn(r, names)


if __name__ == "__main__":
    gmemtest.main(start_daemon=False)
