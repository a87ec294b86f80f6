#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Nothing lost on a crash. This file plays the service manager's part of the
documented fd-store protocol itself: it receives sd_notify datagrams with
their fds on $NOTIFY_SOCKET (FDSTORE=1/FDNAME=, FDSTOREREMOVE=1, READY=1),
keeps the fds, and restarts gmemd after kill -9 with them passed as
LISTEN_FDS/LISTEN_FDNAMES/LISTEN_PID. Then: every region is back with the
same inode and content, every VM and view as before (the very same open
file for each view), revoked views stay revoked, a prepared migration is
still prepared, unknown or forged entries are removed, and kills at random
points never lose what a client was told.
"""
import array
import hashlib
import mmap
import os
import random
import signal
import subprocess
import sys
import threading
import time

import gmemtest     # before dbus: without python3-dbus it skips the file with the reason

import dbus
from fdstore import FdStore, StoreDaemon
from gmemtest import MiB, PAGE, GmemTestCase, SLOW, WRAPPER

ITERATIONS = int(os.environ.get("GMEMTEST_KILL_ITERATIONS", "150"))


# What a call gets when gmemd is killed with it in flight (NoReply: gmemd left
# the bus without answering) or before it arrived (ServiceUnknown: nobody owned
# the name). Its fate is unknown; any other error is a refusal.
CUT_SHORT = ("org.freedesktop.DBus.Error.NoReply", "org.freedesktop.DBus.Error.ServiceUnknown")


class Told:
    """The state gmemd's answers promised: regions (name -> size), VMs (name
    -> {region: (access, state)}) and prepared migrations (path -> (source,
    target)). after() is the state an operation leads to."""

    def __init__(self, regions=(), vms=(), migrations=()):
        self.regions = dict(regions)
        self.vms = {vm: dict(views) for vm, views in dict(vms).items()}
        self.migrations = dict(migrations)

    def key(self):
        return (sorted(self.regions.items()),
                sorted((vm, sorted(views.items())) for vm, views in self.vms.items()),
                sorted(self.migrations.items()))

    def __eq__(self, other):
        return isinstance(other, Told) and self.key() == other.key()

    def __repr__(self):
        regions, vms, migrations = self.key()
        return f"regions {regions}, VMs {vms}, prepared migrations {migrations}"

    def with_state(self, vm, state):
        return {r: a for r, (a, st) in self.vms[vm].items() if st == state}

    def migrating(self):
        return {vm for pair in self.migrations.values() for vm in pair}

    def after(self, op, path=None):
        t = Told(self.regions, self.vms, self.migrations)
        kind, args = op[0], op[1:]
        if kind == "create":
            t.regions[args[0]] = args[1]
        elif kind == "destroy":
            del t.regions[args[0]]
            for views in t.vms.values():
                views.pop(args[0], None)
        elif kind == "register":
            t.vms[args[0]] = {}
        elif kind == "unregister":
            del t.vms[args[0]]
        elif kind == "attach":
            t.vms[args[0]][args[1]] = (args[2], "active")
        elif kind == "detach":
            del t.vms[args[0]][args[1]]
        elif kind == "begin":
            for r, a in self.with_state(args[0], "active").items():
                t.vms[args[1]][r] = (a, "pending")
            t.migrations[path] = (args[0], args[1])
        elif kind in ("commit", "abort"):
            source, target = t.migrations.pop(args[0])
            for r, a in self.with_state(target, "pending").items():
                if kind == "commit":
                    t.vms[target][r] = (a, "active")
                    t.vms[source][r] = (t.vms[source][r][0], "revoked")
                else:
                    del t.vms[target][r]
        return t

    def partly_done(self, op, seen):
        """Whether seen is what op, a removal cut short, may leave besides the
        state before and after it: UnregisterVm removes the VM's views, then
        the VM; DestroyRegion the (revoked) views of the region, then the
        region. Any other state in between is not allowed: an interrupted
        commit is finished and an interrupted abort forgotten (gmemd(8))."""
        kind, name = op[0], op[1]
        t = Told(self.regions, self.vms, self.migrations)
        if kind == "unregister" and name in seen.vms and seen.vms[name].items() <= self.vms[name].items():
            t.vms[name] = seen.vms[name]
        elif kind == "destroy" and name in seen.regions:
            for vm, views in t.vms.items():
                if name in views and name not in seen.vms.get(vm, {}):
                    del views[name]
        else:
            return False
        return seen == t

    def choose(self, rnd, i):
        """An operation gmemd must accept in this state, picked at random."""
        busy = self.migrating()
        free = [vm for vm in sorted(self.vms) if vm not in busy]
        ops = []
        if len(self.regions) < 6:
            ops += [("create", f"k{i}", PAGE * rnd.randint(1, 64))] * 3
        pairs = [(vm, r) for vm in free for r in sorted(self.regions) if r not in self.vms[vm]]
        if pairs:
            ops += [("attach", *rnd.choice(pairs), rnd.choice(["ro", "rw"]))] * 4
        active = [(vm, r) for vm in free for r in sorted(self.with_state(vm, "active"))]
        if active:
            ops += [("detach", *rnd.choice(active))]
        # The target has no view of the regions the source has active views of.
        pairs = [(s, t) for s in free for t in free
                 if s != t and self.with_state(s, "active") and not set(self.with_state(s, "active")) & set(self.vms[t])]
        if pairs:
            ops += [("begin", *rnd.choice(pairs))] * 4
        if self.migrations:
            ops += [("commit", rnd.choice(sorted(self.migrations)))] * 3
            ops += [("abort", rnd.choice(sorted(self.migrations)))] * 3
        # gmemd destroys no region with live views: detach them first.
        loose = [r for r in sorted(self.regions)
                 if not any(views.get(r, ("", "revoked"))[1] != "revoked" for views in self.vms.values())]
        if loose and len(self.regions) > 2:
            ops += [("destroy", rnd.choice(loose))] * 2
        if len(self.vms) < 6:
            ops += [("register", f"v{i}")] * 2
        if len(free) > 2:
            ops += [("unregister", rnd.choice(free))] * 2
        return rnd.choice(ops)


class Recovery(StoreDaemon, GmemTestCase):

    @classmethod
    def setUpClass(cls):
        cls.store = FdStore(os.path.join(gmemtest.WORLD.tmp, "fdstore"))
        cls.proc = None
        cls.start_daemon()

    @classmethod
    def tearDownClass(cls):
        cls.stop_daemon(signal.SIGTERM)
        cls.store.close()

    def crash_and_restart(self):
        self.stop_daemon(signal.SIGKILL)
        self.start_daemon()

    def setUp(self):
        self._fds = []
        if self.proc is None or self.proc.poll() is not None:
            self.start_daemon()

    def tearDown(self):
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass

    def snapshot(self):
        """What clients can see: regions, VMs with their views, migrations."""
        regions = sorted((str(n), int(s), str(b), str(o)) for n, s, b, o, _p in self.mgr("ListRegions"))
        vms = {}
        for n, _pid, p in self.mgr("ListVms"):
            vms[str(n)] = sorted(tuple(map(str, v)) for v in self.get_prop(p, gmemtest.VM_IFACE, "Views"))
        migrations = sorted((str(s), str(t), str(st)) for s, t, st, _p in self.mgr("ListMigrations")
                            if st == "prepared")
        return regions, vms, migrations

    # --- the tests ---

    def held_inodes(self):
        """Inode numbers of memfds this process holds as fds (but for the fd
        store's own entries) or maps."""
        with self.store.lock:
            stored = {fd for _n, fd in self.store.entries}
        held = set()
        for name in os.listdir("/proc/self/fd"):
            try:
                if int(name) not in stored and os.readlink(f"/proc/self/fd/{name}").startswith("/memfd:"):
                    held.add(os.stat(f"/proc/self/fd/{name}").st_ino)
            except OSError:
                pass        # the fd listing /proc/self/fd itself
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 6 and parts[5].startswith("/memfd:"):
                    held.add(int(parts[4]))
        return held

    def test_kill9_while_writing(self):
        """The store alone brings each region back: the test closes every fd
        and mapping of its own before gmemd is started again, and compares
        what a fresh GetFd gives with what it recorded before the kill:
        the region's inode (st_dev, st_ino), the content (a hash through the
        new fd; page 0 names the region), and the view's very open file (its
        file position, which only that open file description keeps, and its
        access mode). A daemon that restored an empty new memfd, another
        region's, or a new open file of the right one fails here."""
        size = 4 * MiB
        regions = [self.create_region(size, cleanup=False) for _ in range(2)]
        vms = [self.register_vm(cleanup=False, uid=dbus.UInt32(65534)) for _ in range(3)]
        views = {(vms[0], regions[0]): "rw", (vms[1], regions[0]): "ro", (vms[2], regions[1]): "rw"}
        fds = {k: self.attach(k[0], k[1], access) for k, access in views.items()}
        identity = {}
        for (_vm, r), fd in fds.items():
            st = os.fstat(fd)
            identity.setdefault(r, (st.st_dev, st.st_ino))
            self.assertEqual((st.st_dev, st.st_ino), identity[r], f"the views of {r} are on one inode")
        self.assertNotEqual(identity[regions[0]], identity[regions[1]], "two regions, two inodes")
        # The file position belongs to the open file description, which gmemd's stored copy shares.
        marks = {k: (3 + 5 * i) * PAGE + 17 * (i + 1) for i, k in enumerate(sorted(fds))}
        for k, fd in fds.items():
            os.lseek(fd, marks[k], os.SEEK_SET)
        writable = {r: fds[(vm, r)] for (vm, r), access in views.items() if access == "rw"}
        for r, fd in writable.items():
            os.pwrite(fd, f"region {r}\n".encode().ljust(PAGE, b"."), 0)
        before = self.snapshot()

        # A writer keeps writing (past page 0) through both read-write views while the daemon is killed.
        stop = threading.Event()
        maps = {r: mmap.mmap(fd, size) for r, fd in writable.items()}

        def writer():
            rnd = random.Random(7)
            while not stop.is_set():
                m = maps[regions[rnd.randrange(2)]]
                off = rnd.randrange(PAGE, size - PAGE)
                m[off:off + PAGE] = rnd.randbytes(PAGE)

        t = threading.Thread(target=writer)
        t.start()
        time.sleep(0.2)
        self.stop_daemon(signal.SIGKILL)
        time.sleep(0.1)
        stop.set()
        t.join()
        sums = {r: hashlib.sha256(m[:]).hexdigest() for r, m in maps.items()}
        for m in maps.values():
            m.close()
        for fd in fds.values():
            self.close_fd(fd)
        self.assertEqual(self.held_inodes() & {ino for _dev, ino in identity.values()}, set(),
                         "before the restart only the fd store holds the regions")

        self.start_daemon()
        self.assertEqual(self.snapshot(), before, "every region, VM and view is listed as before the crash")
        for (vm, r), access in views.items():
            fd = self.get_fd(vm, r)
            st = os.fstat(fd)
            self.assertEqual((st.st_dev, st.st_ino), identity[r],
                             f"GetFd({vm}, {r}) gives region {r}'s inode as it was before the crash")
            self.assertEqual(gmemtest.fdinfo_pos(fd), marks[(vm, r)],
                             f"GetFd({vm}, {r}) gives the very open file of the view (its file position)")
            self.assertEqual(gmemtest.access_mode(fd), os.O_RDWR if access == "rw" else os.O_RDONLY,
                             f"the view of {vm} on {r} keeps its access")
            data = os.pread(fd, size, 0)
            self.assertEqual(len(data), size, f"region {r} keeps its size")
            self.assertEqual(data[:PAGE].rstrip(b"."), f"region {r}\n".encode(), f"page 0 of {r} names it")
            self.assertEqual(hashlib.sha256(data).hexdigest(), sums[r], f"region {r} content is intact")
            self.close_fd(fd)
        self.assertRegex(self.world.gmemd_log_text(), r"Restored \d+ entries from the fd store \(2 regions, 3 VMs\)")
        for vm in vms:
            self.mgr("UnregisterVm", "s", vm)
        for r in regions:
            self.mgr("DestroyRegion", "s", r)
        self.store.drain(0.2)
        self.assertEqual(self.store.names(), [], "destroying everything empties the store")

    def test_revoked_and_prepared_survive(self):
        r1, r2 = self.create_region(MiB, cleanup=False), self.create_region(MiB, cleanup=False)
        a, b, c, d = (self.register_vm(cleanup=False) for _ in range(4))
        self.attach(a, r1, "rw")
        mig, fds = self.begin_migration(a, b)
        self.mgr("CommitMigration", "o", dbus.ObjectPath(mig))
        self.attach(c, r2, "ro")
        prepared, _fds = self.begin_migration(c, d)
        before = self.snapshot()
        self.crash_and_restart()
        self.assertEqual(self.snapshot(), before, "revoked views, and the prepared migration, are as before")
        self.assertGmemError("NoSuchView", self.mgr, "GetFd", "ss", a, r1, contains="revoked")
        migs = [p for s, t, st, p in self.mgr("ListMigrations") if (s, t, st) == (c, d, "prepared")]
        self.assertEqual(len(migs), 1, "the prepared migration is back")
        self.mgr("CommitMigration", "o", migs[0])
        self.assertEqual(sorted(map(tuple, self.get_prop(gmemtest.vm_path(d), gmemtest.VM_IFACE, "Views"))),
                         [(r2, "ro", "active")], "and commits after the restart")
        for vm in (a, b, c, d):
            self.mgr("UnregisterVm", "s", vm)
        for r in (r1, r2):
            self.mgr("DestroyRegion", "s", r)

    def test_prepared_back_to_the_vm_it_came_from(self):
        """A second migration from VM a to VM b, after a first one was
        committed: b holds an active view of r1 and a a revoked one (from
        the first), and b gets a pending view of r2. After a crash the second
        migration is still prepared, not finished as if a commit of it had
        been under way: a's view of r2 stays active until a commit is asked for."""
        r1, r2 = self.create_region(MiB), self.create_region(MiB)
        a, b = self.register_vm(), self.register_vm()
        self.attach(a, r1, "rw")
        first, _fds = self.begin_migration(a, b)
        self.mgr("CommitMigration", "o", dbus.ObjectPath(first))
        self.attach(a, r2, "rw")
        second, _fds = self.begin_migration(a, b)
        before = self.snapshot()
        self.assertEqual(before[1][b], [(r1, "rw", "active"), (r2, "rw", "pending")])
        self.crash_and_restart()
        after = self.snapshot()
        if after != before:
            self.fail(f"after the restart {a} has {after[1][a]}, {b} {after[1][b]}, prepared migrations "
                      f"{after[2]}; before it {before[1][a]}, {before[1][b]}, {before[2]}")
        self.mgr("AbortMigration", "o", dbus.ObjectPath(second))
        self.assertEqual(self.views_of_vm(a), [(r1, "rw", "revoked"), (r2, "rw", "active")],
                         "and aborts after the restart, leaving a's view of r2")

    def store_reset(self, saved, without=()):
        """Makes the store hold what it held when saved was taken (names and
        the test's duplicates of the fds) but the entries named in without,
        as a service manager that got only those removals would. gmemd must
        not be running."""
        with self.store.lock:
            for _name, fd in self.store.entries:
                os.close(fd)
            self.store.entries = [[name, os.dup(fd)] for name, fd in saved if name not in without]

    def test_interrupted_abort(self):
        """An abort cut short by a crash at any point. AbortMigration tells the
        store to remove the target's pending views (each one's file and
        pending record) and the migration's record, one message each. For
        every point between two of them, the store as the service manager
        holds it then (what it held before the abort, less the first k
        removals) is given to a fresh gmemd: it must show the migration as
        before the abort, or forgotten (gmemd(8): "forgetting a migration
        whose abort it interrupted"), never prepared with part of its views."""
        r1, r2 = self.create_region(MiB), self.create_region(MiB)
        a, b = self.register_vm(), self.register_vm()
        self.attach(a, r1, "rw")
        self.attach(a, r2, "ro")
        path, _fds = self.begin_migration(a, b)
        before = self.snapshot()
        self.store.drain(0.1)
        with self.store.lock:
            saved = [(name, os.dup(fd)) for name, fd in self.store.entries]
        self.addCleanup(lambda: [os.close(fd) for _name, fd in saved])
        mark, names = len(self.store.removed), set(self.store.names())
        self.mgr("AbortMigration", "o", dbus.ObjectPath(path))
        after = self.snapshot()
        self.store.drain(0.2)
        steps = self.store.removed[mark:]
        self.assertEqual(set(self.store.names()), names - set(steps), "the abort only removes entries")
        self.assertGreaterEqual(len(steps), 5, f"the abort removes 2 views, their pending records and the "
                                f"migration's record: {steps}")
        third = {}
        for k in range(1, len(steps)):
            self.stop_daemon(signal.SIGKILL)
            self.store_reset(saved, steps[:k])
            self.start_daemon()
            got = self.snapshot()
            if got not in (before, after):
                third[k] = got
        self.stop_daemon(signal.SIGKILL)
        self.store_reset(saved, steps)
        self.start_daemon()
        self.assertEqual(self.snapshot(), after, "the store as the abort left it gives the state after the abort")
        if third:
            k, got = min(third.items())
            self.fail(f"{len(third)} of the {len(steps) - 1} points inside the abort leave neither the state "
                      f"before it nor after it, e.g. after {k} removals ({', '.join(steps[:k])}): "
                      f"{got[1][b]} for {b}, prepared migrations {got[2]}")

    def test_committed_target_view_survives(self):
        """A view whose state changes (pending, then active) keeps its one store entry and its open file."""
        r = self.create_region(MiB)
        a, b = self.register_vm(), self.register_vm()
        self.attach(a, r, "rw")
        mig, fds = self.begin_migration(a, b)
        target_fd = fds[r]
        self.mgr("CommitMigration", "o", dbus.ObjectPath(mig))
        before = self.snapshot()
        self.store.drain(0.1)
        self.assertEqual(self.store.ignored, [], "gmemd never stores an open file twice")
        self.crash_and_restart()
        self.assertEqual(self.snapshot(), before, "the committed target's view is back")
        self.assertTrue(gmemtest.same_open_file(self.get_fd(b, r), target_fd),
                        "the target keeps the very same view file after the restart")

    def test_secret_view_survives(self):
        """A secret region's view is the region's own file, stored as a
        record: after a crash the view is back and GetFd gives the region's
        inode with what was written into it, the test holding nothing of it."""
        backends = [str(x) for x in self.mgr_prop("Backends")]
        if "secret" not in backends:
            self.skip_or_fail(f"gmemd offers no secret backend here (it has {', '.join(backends)}): no "
                              f"memfd_secret under {WRAPPER[0] if WRAPPER else 'this kernel'} (Linux 6.1 needs "
                              f"secretmem.enable=1)", dependency=False)
        s = self.create_region(4 * PAGE, backend="secret")
        c = self.register_vm()
        fd = self.attach(c, s, "rw")
        ino = os.fstat(fd).st_ino
        with mmap.mmap(fd, 4 * PAGE) as m:
            m[PAGE:2 * PAGE] = b"s" * PAGE
        self.close_fd(fd)
        before = self.snapshot()
        self.crash_and_restart()
        self.assertEqual(self.snapshot(), before, "the secret region and its view are back")
        fd = self.get_fd(c, s)
        self.assertEqual(os.fstat(fd).st_ino, ino, "GetFd gives the secret region's inode")
        with mmap.mmap(fd, 4 * PAGE) as m:
            self.assertEqual(m[PAGE:2 * PAGE], b"s" * PAGE, "and what was written into it")

    def stored_leader(self, vm):
        """The fd store's entry of VM vm: its name's leader field (L, L.PID.START
        or N) and, for a leader, the pid of its stored pidfd."""
        self.store.drain(0.1)
        with self.store.lock:
            found = [(n, fd) for n, fd in self.store.entries if n.startswith("vm/") and n.split("/")[5] == vm]
            self.assertEqual(len(found), 1, f"VM '{vm}' has one store entry: {self.store.names()}")
            name, fd = found[0]
            pid = None
            if os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[pidfd]":
                with open(f"/proc/self/fdinfo/{fd}") as f:
                    pid = next(int(l.split()[1]) for l in f if l.startswith("Pid:"))
        return name.split("/")[4], pid

    def test_leader_pidfd_survives(self):
        """A leader passed as a pidfd (leader) is stored as one opened from a
        pid (leader_pid) is: the entry L.PID.START holding gmemd's pidfd. After
        a crash it is watched again, and its exit releases the views."""
        by_fd, by_pid = self.spawn_leader(), self.spawn_leader()
        b = self.register_leader_vm(by_pid.pid, cleanup=False)      # first: it skips where gmemd has no pidfd_open
        pidfd = os.pidfd_open(by_fd.pid)
        try:
            a = self.register_vm(cleanup=False, leader=dbus.types.UnixFd(pidfd))
        finally:
            os.close(pidfd)
        r = self.create_region(MiB, cleanup=False)
        self.attach(a, r, "rw")
        self.attach(b, r, "ro")
        for vm, p in ((a, by_fd), (b, by_pid)):
            field, pid = self.stored_leader(vm)
            self.assertTrue(field.startswith(f"L.{p.pid}."), f"VM '{vm}' is stored with its leader: {field}")
            self.assertEqual(pid, p.pid, f"VM '{vm}' is stored with a pidfd of its leader")

        before = self.snapshot()
        self.crash_and_restart()
        self.assertEqual(self.snapshot(), before, "both VMs and their views are back")
        for vm, p in ((a, by_fd), (b, by_pid)):
            self.assertEqual(int(self.vm_prop(vm, "LeaderPID")), p.pid, f"VM '{vm}' is back with its leader")
        by_fd.kill()
        by_fd.wait()
        self.wait_until(lambda: self.views_of_vm(a) == [] or all(v[2] != "active" for v in self.views_of_vm(a)),
                        f"the views of VM '{a}' to be released after its leader exited")
        self.assertEqual(self.views_of_vm(b), [(r, "ro", "active")], "the other VM keeps its view")
        self.assertEqual(self.stored_leader(a), ("N", None), "an exited leader's VM is stored as a record")
        for vm in (a, b):
            self.mgr("UnregisterVm", "s", vm)
        self.mgr("DestroyRegion", "s", r)

    def test_hugetlb_region_survives(self):
        """A hugetlb region comes back from the fd store after kill -9 with
        its inode, its views (read-write and read-only) and what was written
        into its huge page, the test holding no file of it meanwhile. Its
        inode, given to the hypervisor uid of its views, is taken back as
        such and stays that uid's."""
        self.reserve_hugepages(1)
        hp = gmemtest.hugepage_meminfo("Hugepagesize")
        r = self.create_region(hp, backend="hugetlb", populate=True)
        a, b = self.register_vm(uid=65534), self.register_vm()
        fd = self.attach(a, r, "rw")
        self.close_fd(self.attach(b, r, "ro"))
        ino = os.fstat(fd).st_ino
        with mmap.mmap(fd, hp) as m:
            m[hp - PAGE:] = b"h" * PAGE
        self.close_fd(fd)
        before = self.snapshot()
        self.crash_and_restart()
        self.assertEqual(self.snapshot(), before, "the hugetlb region and its views are back")
        self.assertEqual(str(self.region_prop(r, "Backend")), "hugetlb")
        fd = self.get_fd(a, r)
        self.assertEqual(os.fstat(fd).st_ino, ino, "GetFd gives the hugetlb region's inode")
        self.assertEqual(gmemtest.access_mode(fd), os.O_RDWR)
        self.assertEqual(gmemtest.access_mode(self.get_fd(b, r)), os.O_RDONLY, "the ro view stays read-only")
        with mmap.mmap(fd, hp) as m:
            self.assertEqual(m[hp - PAGE:], b"h" * PAGE, "and what was written into it")
        self.assertEqual(os.fstat(fd).st_uid, 65534, "the inode is still the hypervisor's")
        self.mgr("Detach", "ss", a, r)
        self.assertEqual(os.fstat(fd).st_uid, os.geteuid(), "and gmemd's again once its view goes")

    def test_unknown_and_forged_entries_removed(self):
        r = self.create_region(MiB, cleanup=False)
        self.store.drain(0.1)
        bogus = os.memfd_create("whatever")
        forged = os.memfd_create("gmem:" + r)     # the right label, but not the daemon's sealed inode
        os.ftruncate(forged, MiB)
        self.store.entries.append(["bogus/1", bogus])
        self.store.entries.append([f"region/999/memfd/4096/0/0/forged-{r}/", forged])
        self.crash_and_restart()
        self.assertIn("bogus/1", self.store.removed, "an entry with an unknown name is removed from the store")
        self.assertIn(f"region/999/memfd/4096/0/0/forged-{r}/", self.store.removed,
                      "a region entry whose fd is not that region's inode is removed")
        self.assertEqual([n for n, *_ in self.mgr("ListRegions")], [r], "only the real region is back")
        self.mgr("DestroyRegion", "s", r)

    def observe(self):
        """What gmemd shows, as a Told."""
        vms = {}
        for n, _pid, p in self.mgr("ListVms"):
            vms[str(n)] = {str(r): (str(a), str(st)) for r, a, st in self.get_prop(p, gmemtest.VM_IFACE, "Views")}
        return Told({str(n): int(size) for n, size, *_ in self.mgr("ListRegions")}, vms,
                    {str(p): (str(s), str(t)) for s, t, st, p in self.mgr("ListMigrations") if st == "prepared"})

    def kill_call(self, op, identity):
        """Makes op's call; returns the migration path BeginMigration answered.
        The fds that come back are checked against the regions' inodes and closed."""
        kind, args, none = op[0], op[1:], gmemtest.dbus_options({})
        if kind == "create":
            self.mgr("CreateRegion", "sta{sv}", args[0], dbus.UInt64(args[1]), none)
        elif kind == "destroy":
            self.mgr("DestroyRegion", "s", args[0])
        elif kind == "register":
            self.mgr("RegisterVm", "sa{sv}", args[0], none)
        elif kind == "unregister":
            self.mgr("UnregisterVm", "s", args[0])
        elif kind == "attach":
            fd = self.mgr("Attach", "sssa{sv}", *args, none).take()
            st = os.fstat(fd)
            os.close(fd)
            self.assertEqual(identity.setdefault(args[1], (st.st_dev, st.st_ino)), (st.st_dev, st.st_ino),
                             f"Attach{args} gives region {args[1]}'s inode")
        elif kind == "detach":
            self.mgr("Detach", "ss", *args)
        elif kind == "begin":
            path, fds = self.mgr("BeginMigration", "ssa{sv}", *args, none)
            for r, fd in fds:
                os.close(fd.take())
            return str(path)
        elif kind == "commit":
            self.mgr("CommitMigration", "o", dbus.ObjectPath(args[0]))
        elif kind == "abort":
            self.mgr("AbortMigration", "o", dbus.ObjectPath(args[0]))
        return None

    def region_digest(self, fd, size):
        return hashlib.sha256(os.pread(fd, size, 0)).hexdigest()

    def check_told(self, i, told, kept, identity, content, counts):
        """After a restart: every prepared migration in kept (prepared before the
        kill) is prepared with its pending views and regions; every view gives
        its region's inode with its access and the content last written, or
        NoSuchView if revoked. Counts what it verified."""
        counts["regions"] += len(told.regions)
        counts["VMs"] += len(told.vms)
        for mig in sorted(kept):
            source, target = told.migrations[mig]
            props = self.get_all(mig, gmemtest.MIGRATION_IFACE)
            pending = told.with_state(target, "pending")
            self.assertTrue(pending, f"iteration {i}: migration {mig} has pending views")
            self.assertEqual((str(props["Source"]), str(props["Target"]), str(props["State"]),
                              sorted(map(str, props["Regions"]))),
                             (source, target, "prepared", sorted(pending)),
                             f"iteration {i}: migration {mig}, prepared before the kill, is prepared after it")
            counts["prepared migrations"] += 1
        for r in set(identity) - set(told.regions):
            identity.pop(r)
            content.pop(r, None)
        for vm in sorted(told.vms):
            for r, (access, state) in sorted(told.vms[vm].items()):
                counts["views"] += 1
                if state == "revoked":
                    self.assertGmemError("NoSuchView", self.mgr, "GetFd", "ss", vm, r)
                    counts["revoked views"] += 1
                    continue
                fd = self.mgr("GetFd", "ss", vm, r).take()
                try:
                    st = os.fstat(fd)
                    self.assertEqual(identity.setdefault(r, (st.st_dev, st.st_ino)), (st.st_dev, st.st_ino),
                                     f"iteration {i}: GetFd({vm}, {r}) gives region {r}'s inode")
                    self.assertEqual(st.st_size, told.regions[r], f"iteration {i}: region {r} keeps its size")
                    self.assertEqual(gmemtest.access_mode(fd), os.O_RDWR if access == "rw" else os.O_RDONLY,
                                     f"iteration {i}: the view of {vm} on {r} keeps its access")
                    if r in content:
                        self.assertEqual(self.region_digest(fd, told.regions[r]), content[r],
                                         f"iteration {i}: region {r} holds what was written before the kill")
                        counts["content"] += 1
                finally:
                    os.close(fd)

    def test_random_kills(self):
        """kill -9 at a random point of a random call (create, destroy,
        register, unregister, attach, detach, begin, commit or abort a
        migration), then a restart from the store. gmemd refuses none of the
        calls, each chosen to be valid. One that was answered holds after the
        restart. One cut short by the kill (NoReply, or ServiceUnknown when
        it came after) left the state as before it or as after it, or, for
        UnregisterVm and DestroyRegion, with part of the views it removes
        gone. After every restart the regions, VMs, views (access and state)
        and prepared migrations are exactly what the answers said; a
        migration prepared before the kill is still prepared with the same
        pending views and regions, and is later committed or aborted like
        any other; revoked views give NoSuchView; each region's inode and
        content (written through its views between kills) are as recorded.
        What was verified is counted, and every count must be above 0."""
        if WRAPPER:
            self.skip_or_fail(f"{ITERATIONS} restarts are too slow under {WRAPPER[0]}", dependency=False)
        rnd = random.Random(int(os.environ.get("GMEMTEST_SEED", "1")))
        told = Told()
        for vm in ("v-a", "v-b", "v-c"):
            self.mgr("RegisterVm", "sa{sv}", vm, gmemtest.dbus_options({}))
            told = told.after(("register", vm))
        identity, content = {}, {}           # region -> (st_dev, st_ino); region -> sha256 of its content
        calls = dict.fromkeys(["answered", "cut short", "partly done"], 0)
        counts = dict.fromkeys(["regions", "VMs", "views", "revoked views", "content", "prepared migrations",
                                "commits", "aborts"], 0)     # commits and aborts: their outcome after a kill
        # At least ITERATIONS; on until every kind was verified once (a slow host cuts more calls short, and
        # fewer migrations get as far as a commit), at most three times as many.
        done = 0
        for i in range(3 * ITERATIONS):
            if i >= ITERATIONS and all(counts.values()):
                break
            done = i + 1
            op = told.choose(rnd, i)
            killed_at = []

            def kill(p=self.proc):
                killed_at.append(time.monotonic())
                p.send_signal(signal.SIGKILL)
            killer = threading.Timer(rnd.uniform(0, 0.004), kill)
            killer.start()
            path = cut_short = None
            try:
                path = self.kill_call(op, identity)
            except dbus.exceptions.DBusException as e:
                cut_short = (e, time.monotonic())
            killer.join()
            if cut_short:
                e, at = cut_short
                self.assertTrue(e.get_dbus_name() in CUT_SHORT and killed_at and killed_at[0] <= at,
                                f"iteration {i}: {op} failed with {e.get_dbus_name()}: {e.get_dbus_message()} "
                                f"({'after' if killed_at and killed_at[0] <= at else 'before'} gmemd was "
                                f"killed), in a state where gmemd must accept it: {told}")
            calls["cut short" if cut_short else "answered"] += 1
            self.stop_daemon(signal.SIGKILL)
            self.start_daemon()

            seen = self.observe()
            if op[0] == "begin" and not path:
                new = sorted(set(seen.migrations) - set(told.migrations))
                path = new[0] if new else "(not begun)"
            after = told.after(op, path)
            if not cut_short:
                self.assertEqual(seen, after, f"iteration {i}: {op} was answered before the kill; after the "
                                 f"restart gmemd shows\n  {seen}\ninstead of\n  {after}")
            else:
                self.assertTrue(seen in (told, after) or told.partly_done(op, seen),
                                f"iteration {i}: {op} was cut short by the kill; after the restart gmemd "
                                f"shows\n  {seen}\nnot the state before it\n  {told}\nnor after it\n  {after}")
                calls["partly done"] += seen not in (told, after)
            if op[0] in ("commit", "abort") and seen == after:
                counts[op[0] + "s"] += 1        # its outcome, as the restart shows it
            kept = {mig for mig in told.migrations if mig in seen.migrations}
            if op[0] == "begin" and not cut_short:
                kept.add(path)
            told = seen
            self.check_told(i, told, kept, identity, content, counts)

            # Something new to find after the next kill: a page of one region, through a read-write view.
            writable = [(vm, r) for vm in sorted(told.vms) for r, a in sorted(told.with_state(vm, "active").items())
                        if a == "rw"]
            if writable:
                vm, r = rnd.choice(writable)
                fd = self.mgr("GetFd", "ss", vm, r).take()
                try:
                    os.pwrite(fd, rnd.randbytes(PAGE), PAGE * rnd.randrange(told.regions[r] // PAGE))
                    content[r] = self.region_digest(fd, told.regions[r])
                finally:
                    os.close(fd)

        summary = (", ".join(f"{k} {v}" for k, v in calls.items()) + "; verified after the restarts: " +
                   ", ".join(f"{k} {v}" for k, v in counts.items()))
        print(f"{done} kill -9 iterations: calls {summary}", file=sys.stderr)
        # Leave nothing behind for the tests that follow, whatever the verdict.
        for mig in told.migrations:
            self.mgr("AbortMigration", "o", dbus.ObjectPath(mig))
        for vm in told.vms:
            self.mgr("UnregisterVm", "s", vm)
        for r in told.regions:
            self.mgr("DestroyRegion", "s", r)
        for kind, n in counts.items():
            self.assertGreater(n, 0, f"no {kind} verified across a kill in {done} iterations: {summary}")


if __name__ == "__main__":
    gmemtest.main(start_daemon=False)
