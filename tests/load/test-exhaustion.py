#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Resource exhaustion. Every test starts its own gmemd, since some of them
leave it broken on purpose.

File descriptors: gmemd's soft RLIMIT_NOFILE is lowered (prlimit(2) on the
running daemon, as 'prlimit --nofile' would at its start) to a few fds over
what it holds. Calls that need an fd (CreateRegion: the memfd; Attach and
BeginMigration: a view file; GetFd: the duplicate for the reply;
RegisterVm with a leader: the pidfd) must fail with a named error that says
what could not be made, leave nothing half-made, and succeed again once
destroying regions frees fds.

gmemd keeps RESERVE fds free beyond what a call needs, so "n fds free"
below means n beyond the reserve, unless a test is about the reserve
itself.

Memory: gmemd is moved into a memory cgroup of its own with a limit and the
OOM killer on (v1 or v2, see loadutil.MemoryCgroup); populating or
allocating more than the limit must fail with QuotaExceeded before the
kernel would OOM-kill gmemd, and leave no region and no pages behind.
Skipped with the reason when no memory cgroup can be made here.

"""

import os
import resource
import time
import unittest

import gmemtest     # before dbus: without python3-dbus it skips the file with the reason

import dbus
import dbuswire as W
import loadutil
from gmemtest import GmemTestCase, MiB, PAGE, WRAPPER
from loadutil import figure, mgr_call

E = gmemtest.ERROR_PREFIX
EMFILE = "System.Error.EMFILE"
# gmemd keeps this many fds free for the fds an incoming message may carry
# (FDLIMIT_RESERVE, daemon/host/fdlimit.h: dbus-daemon's max_message_unix_fds).
RESERVE = 16


class Exhaustion(GmemTestCase):

    def setUp(self):
        self._fds = []
        if WRAPPER:
            self.skip_or_fail("lowering RLIMIT_NOFILE under a wrapper limits the wrapper, not gmemd",
                              dependency=False)
        self.stats = loadutil.restart_gmemd()
        self.pid = self.stats.pid

    def tearDown(self):
        super().tearDown()
        # A test may leave gmemd dead or off the bus; the next one (and the
        # final clean SIGTERM that gmemtest.main checks) needs a live one.
        w = self.world
        if w.gmemd_proc is None or w.gmemd_proc.poll() is not None or loadutil.name_owner() is None:
            loadutil.restart_gmemd()

    def err(self, method, sig, *args):
        """Calls and returns (error name, message); fails if it succeeds."""
        try:
            r = self.mgr(method, sig, *args)
        except dbus.exceptions.DBusException as e:
            return e.get_dbus_name(), e.get_dbus_message() or ""
        if isinstance(r, dbus.types.UnixFd):
            os.close(r.take())
        elif isinstance(r, dbus.Struct) or isinstance(r, tuple):
            for _, fd in r[1]:
                os.close(fd.take())
        self.fail(f"{method}{args} succeeded at the fd limit")

    def limit_fds(self, free, reserve=RESERVE):
        """Sets gmemd's soft limit so that exactly free + reserve more fds
        can be opened. The limit bounds fd numbers, not their count: the kernel
        hands out the lowest free number, so count the holes below it.
        A round trip first: gmemd closes a reply's duplicate fd after the
        caller may already have read the reply."""
        free += reserve
        self.mgr("ListRegions")
        used = set(self.stats.fd_targets())
        limit, holes = 0, 0
        while True:
            if limit not in used:
                if holes == free:
                    break
                holes += 1
            limit += 1
        loadutil.set_fd_limit(self.pid, limit)
        return len(used)

    def migrations(self, state=None):
        return [tuple(str(x) for x in m) for m in self.mgr("ListMigrations")
                if state is None or str(m[2]) == state]

    # --- file descriptors --------------------------------------------------------

    def test_fd_limit_clean_failures(self):
        """With no fd free, every call that needs one fails with EMFILE
        naming what it could not make; nothing is made; once regions are
        destroyed the same calls succeed."""
        pristine = self.stats.fds()
        src = self.create_region(name="src")
        vm1 = self.register_vm(name="vm1")
        vm2 = self.register_vm(name="vm2")
        self.close_fd(self.attach(vm1, src))
        made = []
        self.limit_fds(3)
        for i in range(10):
            try:
                self.create_region(name=f"fill{i}", size=MiB)
                made.append(f"fill{i}")
            except dbus.exceptions.DBusException as e:
                create_err = (e.get_dbus_name(), e.get_dbus_message())
                break
        else:
            self.fail("CreateRegion never failed with 3 fds free")
        self.assertEqual(len(made), 3, "each region takes one fd: 3 free fds make 3 regions")
        at_limit = self.stats.fds()
        self.assertEqual(create_err[0], EMFILE, f"CreateRegion at the fd limit: {create_err}")
        self.assertIn("fill3", create_err[1], "the CreateRegion error should name the region")
        self.assertNotIn("fill3", self.region_names(), "a region whose memfd failed is listed")

        results = {"CreateRegion": create_err}
        results["Attach"] = self.err("Attach", "sssa{sv}", vm2, src, "rw", gmemtest.dbus_options({}))
        self.assertEqual(self.views_of_vm(vm2), [], "a failed Attach left a view")
        results["BeginMigration"] = self.err("BeginMigration", "ssa{sv}", vm1, vm2, gmemtest.dbus_options({}))
        self.assertEqual(self.views_of_vm(vm2), [], "a failed BeginMigration left pending views")
        self.assertEqual(self.views_of_vm(vm1), [(src, "rw", "active")], "the source view changed")
        self.assertEqual(self.migrations("prepared"), [], "a failed BeginMigration left a prepared migration")
        results["GetFd"] = self.err("GetFd", "ss", vm1, src)
        leader = self.spawn_leader()
        results["RegisterVm(leader_pid)"] = self.err("RegisterVm", "sa{sv}", "vm3",
                                                     gmemtest.dbus_options({"leader_pid": leader.pid}))
        self.assertNotIn("vm3", self.vm_names(), "a VM whose pidfd failed is registered")
        self.assertEqual(self.stats.fds(), at_limit, "failed calls changed gmemd's fd count")
        for method, (name, msg) in results.items():
            figure(f"exhaustion: {method} with no fd free: {name}: {msg!r}")
            self.assertTrue(name in (EMFILE, E + "QuotaExceeded") or name.startswith(E),
                            f"{method}: not a named error of the daemon: {name}")
            self.assertIn("Too many open files", msg, f"{method}: the message should give the cause")
        # Calls that need no fd still work.
        self.mgr("Discard", "stt", src, dbus.UInt64(0), dbus.UInt64(PAGE))
        self.assertIn(src, self.region_names())

        # Recovery: destroying regions frees fds; then everything works.
        for name in made:
            self.mgr("DestroyRegion", "s", name)
        self.close_fd(self.attach(vm2, src, access="ro"))
        self.mgr("Detach", "ss", vm2, src)
        path, fds = self.begin_migration(vm1, vm2)
        self.mgr("CommitMigration", "o", dbus.ObjectPath(path))
        self.close_fd(self.get_fd(vm2, src))
        self.create_region(name="again", size=MiB)
        self.register_vm(name="vm3", leader_pid=leader.pid)
        figure(f"exhaustion: fd limit {at_limit}: after destroying {len(made)} regions, Attach, "
               f"BeginMigration+Commit, GetFd, CreateRegion and RegisterVm(leader_pid) succeed again")
        self.doCleanups()
        self.assertEqual(self.stats.fds(), pristine, "fds left after everything was removed")

    def test_fd_limit_one_free_migration(self):
        """With exactly one fd free, BeginMigration makes the pending view
        (one fd) and cannot duplicate it for the reply: the migration must
        be undone."""
        src = self.create_region(name="src")
        vm1 = self.register_vm(name="vm1")
        vm2 = self.register_vm(name="vm2")
        self.close_fd(self.attach(vm1, src))
        n = self.limit_fds(1)
        name, msg = self.err("BeginMigration", "ssa{sv}", vm1, vm2, gmemtest.dbus_options({}))
        figure(f"exhaustion: BeginMigration with one fd free: {name}: {msg!r}; migrations listed "
               f"afterwards: {self.migrations()}")
        self.assertEqual(name, EMFILE)
        self.assertEqual(self.views_of_vm(vm2), [], "the target kept a pending view")
        self.assertEqual(self.views_of_vm(vm1), [(src, "rw", "active")])
        self.assertEqual(self.migrations("prepared"), [], "a prepared migration is left")
        self.assertEqual(self.stats.fds(), n)

    def test_fd_limit_one_free_attach(self):
        """With exactly one fd free, Attach could open the view file but
        not duplicate it for the reply: it must fail before making the
        view (gmemd checks that both fds are there first)."""
        src = self.create_region(name="src")
        vm = self.register_vm(name="vm1")
        self.limit_fds(1)
        name, msg = self.err("Attach", "sssa{sv}", vm, src, "rw", gmemtest.dbus_options({}))
        figure(f"exhaustion: Attach with one fd free: {name}: {msg!r}; views of the VM afterwards: "
               f"{self.views_of_vm(vm)}")
        self.assertEqual(self.views_of_vm(vm), [], "Attach failed, but the view was made")

    def test_fd_limit_errors_name_the_object(self):
        """The errors of calls that run out of fds say which VM and region
        they were about (org.gmemd.Broker1(5): "each message names the
        object and the limit"), with no fd free and with one free (enough
        for the view file, not for the reply's duplicate of it)."""
        src = self.create_region(name="src")
        vm1 = self.register_vm(name="vm1")
        vm2 = self.register_vm(name="vm2")
        self.close_fd(self.attach(vm1, src))
        vague = []
        for free in (0, 1):
            self.limit_fds(free)
            for method, sig, args in (("Attach", "sssa{sv}", (vm2, src, "ro", gmemtest.dbus_options({}))),
                                      ("BeginMigration", "ssa{sv}", (vm1, vm2, gmemtest.dbus_options({}))),
                                      ("GetFd", "ss", (vm1, src))):
                if free == 1 and method == "GetFd":
                    continue    # one free fd is enough for GetFd
                name, msg = self.err(method, sig, *args)
                if src not in msg and "vm" not in msg:
                    vague.append(f"{method} with {free} fd free: {msg!r}")
        self.assertEqual(vague, [], "errors that name no VM or region")

    def call_with_fds(self, n):
        """ListRegions with n pipe write ends attached, on a connection of
        its own: what came back (an error name, "a method return" or "no
        reply (...)"). Every copy of the fds is closed afterwards."""
        c = loadutil.raw(timeout=5)
        pipes = [os.pipe() for _ in range(n)]
        try:
            reply = c.call(*loadutil.MANAGER, "ListRegions", fds=[w for _, w in pipes])
            return reply.error_name or "a method return"
        except (TimeoutError, OSError) as e:
            return f"no reply ({type(e).__name__})"
        finally:
            for r, w in pipes:
                os.close(r)
                os.close(w)
            c.close()

    def test_fd_reserve_receives_fds(self):
        """With nothing free beyond the reserve (every fd-making call is
        refused by now), a message carrying as many fds as the bus lets
        one message carry still arrives whole and is answered."""
        self.create_region(name="src")
        self.limit_fds(0)
        got = self.call_with_fds(RESERVE)
        figure(f"exhaustion: a call with {RESERVE} fds attached, gmemd at its fd limit but for the reserve: {got}")
        self.assertEqual(got, "a method return")
        self.check_daemon_alive()

    def test_fd_sent_at_fd_limit(self):
        """Squeezed below its reserve from outside (prlimit on the running
        daemon), gmemd receives a message whose fd the kernel cannot
        install (MSG_CTRUNC), and sd-bus gives the connection up. gmemd
        says so, reconnects as soon as the closed connection's fd lets it,
        owns its name again and serves, with every region kept. The call
        itself gets no reply."""
        self.create_region(name="src")
        self.limit_fds(0, reserve=0)
        got = self.call_with_fds(1)
        owner, alive = None, False
        for _ in range(50):
            time.sleep(0.1)
            owner = loadutil.name_owner()
            alive = self.world.gmemd_proc.poll() is None
            if owner or not alive:
                break
        figure(f"exhaustion: a call with an fd attached at gmemd's fd limit: {got}; gmemd "
               f"{'still running' if alive else 'exited'}, bus name "
               f"{'owned by ' + owner if owner else 'not owned'}")
        self.assertTrue(alive, "gmemd exited")
        self.assertIsNotNone(owner, "gmemd did not come back to the bus")
        self.assertTrue(self.serving(), "gmemd stopped answering")
        self.assertIn("src", self.region_names(), "the region was lost with the connection")
        self.assertIn("Lost the connection to the bus", self.world.gmemd_log_text(),
                      "gmemd did not say that it lost the bus")

    def test_raises_soft_fd_limit(self):
        """Started with a soft RLIMIT_NOFILE below its hard one (1024 is
        the default outside a service manager), gmemd raises the soft
        limit to the hard one."""
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard != resource.RLIM_INFINITY and hard <= 256:
            self.skip_or_fail(f"the hard fd limit here is {hard}", dependency=False)
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        try:
            stats = loadutil.restart_gmemd()
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        got = resource.prlimit(stats.pid, resource.RLIMIT_NOFILE)
        figure(f"exhaustion: gmemd started with soft fd limit 256 (hard {hard}) runs with {got}")
        self.assertEqual(got, (hard, hard))

    def serving(self):
        c = loadutil.raw(timeout=5)
        try:
            return mgr_call(c, "ListRegions").type == W.METHOD_RETURN
        except (TimeoutError, OSError):
            return False
        finally:
            c.close()

    # --- memory ------------------------------------------------------------------

    def memory_cgroup(self, limit):
        """Moves gmemd into a new memory cgroup limited to limit bytes whose
        OOM killer is on (always so on cgroup v2; v1's default)."""
        cg = loadutil.MemoryCgroup(f"gmemtest-{os.getpid()}-{self._testMethodName}")
        why = cg.available()
        if why:
            self.skip_or_fail(f"no memory cgroup can be made for gmemd here: {why}", dependency=False)
        cg.create(limit)
        self.addCleanup(cg.remove)
        cg.add(self.pid)
        self.assertTrue(cg.holds(self.pid), f"gmemd is in {cg.relative()}")
        self.assertEqual(cg.limit(), limit, f"{cg.path} has the limit it was given")
        figure(f"exhaustion: gmemd in cgroup v{cg.version} {cg.path}, limit {limit // MiB} MiB")
        return cg

    def allocated(self, region):
        return int(self.region_prop(region, "AllocatedBytes"))

    def assert_alive(self, what):
        """gmemd survived what; the OOM killer takes a moment to act."""
        time.sleep(0.2)
        p = self.world.gmemd_proc
        self.assertIsNone(p.poll(), f"gmemd died ({what}): status {p.returncode} (-9: OOM-killed)")

    def test_populate_over_memory_limit(self):
        """gmemd alone in a memory cgroup of 64 MiB with the OOM killer on:
        charging pages past the limit would have the kernel kill gmemd,
        the only task there. So gmemd compares every populate and Allocate
        with what its cgroup (and each ancestor) has left first, and
        refuses with QuotaExceeded naming the region and the cgroup.
        Populating 256 MiB makes no region, leaves no fd and no charged
        page; allocating 128 MiB in an existing region leaves no page;
        then what fits succeeds and is charged to the cgroup; the cgroup
        never ran out."""
        limit = 64 * MiB
        cg = self.memory_cgroup(limit)
        base = self.stats.fds()
        total = int(self.mgr_prop("TotalBytes"))
        name, msg = self.err("CreateRegion", "sta{sv}", "big", dbus.UInt64(256 * MiB),
                             gmemtest.dbus_options({"populate": True}))
        figure(f"exhaustion: CreateRegion populate=true of 256 MiB in a 64 MiB memory cgroup: {name}: {msg!r}; "
               f"cgroup usage afterwards {cg.usage() // 1024} KiB")
        self.assert_alive("populating 256 MiB in a 64 MiB cgroup")
        self.assertEqual(name, E + "QuotaExceeded")
        self.assertIn("big", msg, "the message names the region")
        self.assertIn(cg.relative(), msg, "the message names gmemd's cgroup")
        self.assertNotIn("big", self.region_names(), "a region that could not be populated is listed")
        self.assertEqual(int(self.mgr_prop("TotalBytes")), total)
        self.assertEqual(self.stats.fds(), base, "the failed region's memfd is still open")
        self.assertLess(cg.usage(), 16 * MiB, "pages were charged for the refused population")

        mid = self.create_region(name="mid", size=128 * MiB)
        name, msg = self.err("Allocate", "stt", mid, dbus.UInt64(0), dbus.UInt64(128 * MiB))
        figure(f"exhaustion: Allocate of 128 MiB in a 64 MiB memory cgroup: {name}: {msg!r}; "
               f"AllocatedBytes afterwards {self.allocated(mid)}")
        self.assert_alive("allocating 128 MiB in a 64 MiB cgroup")
        self.assertEqual(name, E + "QuotaExceeded")
        self.assertIn(cg.relative(), msg, "the message names gmemd's cgroup")
        self.assertEqual(self.allocated(mid), 0, "a refused Allocate left pages allocated")

        small = self.create_region(name="small", size=16 * MiB, populate=True)
        self.assertEqual(self.allocated(small), 16 * MiB)
        self.mgr("Allocate", "stt", mid, dbus.UInt64(0), dbus.UInt64(16 * MiB))
        self.assertEqual(self.allocated(mid), 16 * MiB)
        used = cg.usage()
        figure(f"exhaustion: 32 MiB populated and allocated within the limit; cgroup usage {used // 1024} KiB, "
               f"OOM events {cg.oom_events()}")
        self.assertGreaterEqual(used, 32 * MiB, "the pages gmemd made are charged to its cgroup: "
                                "otherwise the limit tested nothing")
        self.assert_alive("populating and allocating 32 MiB in a 64 MiB cgroup")
        events = cg.oom_events()
        self.assertEqual(events.get("oom_kill"), 0, f"the cgroup OOM-killed something: {events}")
        self.assertEqual(events.get("oom", 0), 0, f"the cgroup ran out of memory: {events}")


if __name__ == "__main__":
    loadutil.need_root()
    gmemtest.main(start_daemon=False)
