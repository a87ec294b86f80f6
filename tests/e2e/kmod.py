#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
kmod.py — what only gmem.ko gives, through gmemd, in a guest (tests/vm/run-e2e).

Each check drives gmemd over the system bus as an orchestrator would and
watches from outside, as the hypervisor would see it: a child process maps
its view (the fd gmemd handed out, as QEMU's mem-path does) and touches it
when told; the kernel, not gmemd's bookkeeping, must decide what happens.

  revoke      a process still mapping a view gets SIGBUS on its next access
              after Detach, UnregisterVm, its leader's exit, DestroyRegion
              and, for the source, CommitMigration; read() fails with EIO
  pending     the target of a prepared migration faults until the commit,
              then sees the source's data; after an abort it stays revoked
  readonly    a read-only view cannot be re-opened for writing through
              /proc, even by root, and writes through it fail
  private     private pages fault in every view and read() fails; shared
              again gives the same bytes back; Busy while a page is pinned
  allocate    a view without the allocate right cannot punch or allocate

Run inside the guest: `tests/vm/run-e2e 6.1 tests/e2e/kmod.py`. Exits 77
where gmemd has no kmod backend.
"""
import errno
import mmap
import os
import signal
import subprocess
import sys
import time
import unittest

import dbus

BUS = "org.gmemd.Broker1"
PATH = "/org/gmemd/Broker1"
MANAGER = "org.gmemd.Broker1.Manager"
PAGE = mmap.PAGESIZE
MiB = 1 << 20
E = "org.gmemd.Broker1.Error."


def manager():
    return dbus.Interface(dbus.SystemBus().get_object(BUS, PATH), MANAGER)


MGR = None
COUNTER = 0


def uniq(kind):
    global COUNTER
    COUNTER += 1
    return f"{kind}{COUNTER}"


def opts(**kw):
    return dbus.Dictionary({k: v for k, v in kw.items()}, signature="sv")


class Toucher:
    """A child process that maps fd (its own copy) and reads or writes a byte
    when asked: its death by SIGBUS is what a hypervisor would see."""

    def __init__(self, fd, size, writable=True):
        self.cmd_r, self.cmd_w = os.pipe()
        self.ans_r, self.ans_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(self.cmd_w)
            os.close(self.ans_r)
            prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
            m = mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=prot)
            while True:
                line = b""
                while not line.endswith(b"\n"):
                    c = os.read(self.cmd_r, 1)
                    if not c:
                        os._exit(0)
                    line += c
                op, off, val = line.decode().split()
                off = int(off)
                if op == "w":
                    m[off] = int(val)
                    os.write(self.ans_w, b"ok\n")
                else:
                    os.write(self.ans_w, f"{m[off]}\n".encode())
        os.close(self.cmd_r)
        os.close(self.ans_w)

    def _ask(self, line):
        try:
            os.write(self.cmd_w, line.encode())
        except BrokenPipeError:
            return None
        ans = b""
        while not ans.endswith(b"\n"):
            c = os.read(self.ans_r, 1)
            if not c:
                return None
            ans += c
        return ans.decode().strip()

    def write(self, off, val):
        return self._ask(f"w {off} {val}\n")

    def read(self, off):
        a = self._ask(f"r {off} 0\n")
        return None if a is None else int(a)

    def death(self):
        """The signal that ended the child, after it was asked for something it could not answer."""
        _pid, status = os.waitpid(self.pid, 0)
        return os.WTERMSIG(status) if os.WIFSIGNALED(status) else None

    def close(self):
        for fd in (self.cmd_w, self.ans_r):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


class Kmod(unittest.TestCase):

    def setUp(self):
        self.cleanups_fds = []

    def tearDown(self):
        for fd in self.cleanups_fds:
            try:
                os.close(fd)
            except OSError:
                pass

    def region(self, size=4 * MiB):
        name = uniq("r")
        MGR.CreateRegion(name, dbus.UInt64(size), opts(backend="kmod"))
        self.addCleanup(self.quietly, "DestroyRegion", name)
        return name

    def vm(self, **o):
        name = uniq("vm")
        MGR.RegisterVm(name, opts(**o))
        self.addCleanup(self.quietly, "UnregisterVm", name)
        return name

    def quietly(self, method, *args):
        try:
            getattr(MGR, method)(*args)
        except dbus.exceptions.DBusException:
            pass

    def attach(self, vm, region, access="rw", **o):
        fd = MGR.Attach(vm, region, access, opts(**o)).take()
        self.cleanups_fds.append(fd)
        return fd

    def toucher(self, fd, size=4 * MiB, writable=True):
        t = Toucher(fd, size, writable)
        self.addCleanup(t.close)
        return t

    def assert_sigbus(self, t, what):
        self.assertIsNone(t.read(0), f"{what}: the mapping still reads")
        self.assertEqual(t.death(), signal.SIGBUS, f"{what}: the next access is SIGBUS")

    def assert_eio(self, fd, what):
        with self.assertRaises(OSError, msg=f"{what}: read() still works") as cm:
            os.pread(fd, 1, 0)
        self.assertEqual(cm.exception.errno, errno.EIO, f"{what}: read() fails with EIO")

    # --- revoke ---

    def test_detach_revokes(self):
        r, a = self.region(), self.vm()
        fd = self.attach(a, r)
        t = self.toucher(fd)
        self.assertEqual(t.write(0, 7), "ok")
        MGR.Detach(a, r)
        self.assert_sigbus(t, "after Detach")
        self.assert_eio(fd, "after Detach")

    def test_unregister_revokes(self):
        r, a = self.region(), self.vm()
        t = self.toucher(self.attach(a, r))
        self.assertEqual(t.read(0), 0)
        MGR.UnregisterVm(a)
        self.assert_sigbus(t, "after UnregisterVm")

    def test_leader_exit_revokes(self):
        r = self.region()
        leader = subprocess.Popen(["sleep", "600"])
        a = self.vm(leader_pid=dbus.UInt32(leader.pid))
        t = self.toucher(self.attach(a, r))
        self.assertEqual(t.write(PAGE, 3), "ok")
        leader.kill()
        leader.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            views = dbus.SystemBus().get_object(BUS, f"{PATH}/vm/{a}").Get(
                "org.gmemd.Broker1.Vm", "Views", dbus_interface="org.freedesktop.DBus.Properties")
            if not views:
                break
            time.sleep(0.05)
        self.assert_sigbus(t, "after the leader's exit")

    def test_destroy_revokes(self):
        r, a = self.region(), self.vm()
        fd = self.attach(a, r)
        t = self.toucher(fd)
        self.assertEqual(t.write(0, 9), "ok")
        MGR.Detach(a, r)
        self.assert_sigbus(t, "after Detach")
        b = self.vm()
        t2 = self.toucher(self.attach(b, r, "ro"), writable=False)
        self.assertEqual(t2.read(0), 9, "another view sees the data")
        MGR.Detach(b, r)
        MGR.DestroyRegion(r)
        self.assert_sigbus(t2, "after DestroyRegion")

    # --- pending ---

    def test_pending_until_commit(self):
        r, a, b = self.region(), self.vm(), self.vm()
        ta = self.toucher(self.attach(a, r))
        self.assertEqual(ta.write(5, 42), "ok")
        path, fds = MGR.BeginMigration(a, b, opts())
        tfd = fds[0][1].take()
        self.cleanups_fds.append(tfd)
        early = self.toucher(tfd)
        self.assertIsNone(early.read(5), "a pending view cannot be read")
        self.assertEqual(early.death(), signal.SIGBUS, "the target faults before the commit")
        self.assert_eio_or_again(tfd)
        MGR.CommitMigration(path)
        tb = self.toucher(tfd)
        self.assertEqual(tb.read(5), 42, "after the commit the target sees the source's data")
        self.assert_sigbus(ta, "the source after the commit")

    def assert_eio_or_again(self, fd):
        with self.assertRaises(OSError) as cm:
            os.pread(fd, 1, 0)
        self.assertEqual(cm.exception.errno, errno.EAGAIN, "read() on a pending view is EAGAIN")

    def test_abort_leaves_target_revoked(self):
        r, a, b = self.region(), self.vm(), self.vm()
        ta = self.toucher(self.attach(a, r))
        self.assertEqual(ta.write(0, 1), "ok")
        path, fds = MGR.BeginMigration(a, b, opts())
        tfd = fds[0][1].take()
        self.cleanups_fds.append(tfd)
        MGR.AbortMigration(path)
        self.assert_eio(tfd, "the target after the abort")
        self.assertEqual(ta.write(0, 2), "ok", "the source runs on")

    # --- readonly ---

    def test_readonly_stays_readonly(self):
        r, a = self.region(), self.vm()
        fd = self.attach(a, r, "ro")
        for flags in (os.O_RDWR, os.O_WRONLY):
            with self.assertRaises(OSError, msg="a read-only view re-opened for writing by root"):
                os.close(os.open(f"/proc/self/fd/{fd}", flags))
        with self.assertRaises(OSError):
            os.pwrite(fd, b"x", 0)
        with self.assertRaises((OSError, ValueError, PermissionError)):
            mmap.mmap(fd, PAGE, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)

    # --- private ---

    def test_private_pages(self):
        r, a, b = self.region(), self.vm(), self.vm()
        fa = self.attach(a, r)
        fb = self.attach(b, r, "ro")
        os.pwrite(fa, b"secret!" * 100, MiB)
        MGR.SetMemoryAttributes(r, dbus.UInt64(MiB), dbus.UInt64(64 * 1024), "private")
        self.assertEqual(dbus.SystemBus().get_object(BUS, f"{PATH}/region/{r}").Get(
            "org.gmemd.Broker1.Region", "PrivateBytes", dbus_interface="org.freedesktop.DBus.Properties"),
            64 * 1024)
        for fd, who in ((fa, "the read-write view"), (fb, "the read-only view")):
            with self.assertRaises(OSError, msg=f"read() of private pages through {who}") as cm:
                os.pread(fd, 7, MiB)
            self.assertIn(cm.exception.errno, (errno.EACCES, errno.EIO), f"{who}: {cm.exception}")
            t = self.toucher(fd, writable=(fd == fa))
            self.assertIsNone(t.read(MiB), f"a private page maps through {who}")
            self.assertEqual(t.death(), signal.SIGBUS, f"{who} faults on a private page")
        self.assertEqual(os.pread(fa, 4, 0), b"\0\0\0\0", "shared pages around stay readable")
        MGR.SetMemoryAttributes(r, dbus.UInt64(MiB), dbus.UInt64(64 * 1024), "shared")
        self.assertEqual(os.pread(fb, 7, MiB), b"secret!", "shared again, the bytes are back")

    def test_busy_while_pinned(self):
        """A page in a pipe (vmsplice takes a reference on it) cannot turn private until it leaves."""
        import ctypes
        r, a = self.region(), self.vm()
        fd = self.attach(a, r)
        m = mmap.mmap(fd, 4 * MiB, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        m[2 * MiB] = 5

        class IoVec(ctypes.Structure):
            _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
        libc = ctypes.CDLL(None, use_errno=True)
        buf = (ctypes.c_char * PAGE).from_buffer(m, 2 * MiB)
        iov = IoVec(ctypes.addressof(buf), PAGE)
        pr, pw = os.pipe()
        self.assertEqual(libc.vmsplice(pw, ctypes.byref(iov), 1, 0), PAGE, "vmsplice put the page in the pipe")
        del buf
        with self.assertRaises(dbus.exceptions.DBusException) as cm:
            MGR.SetMemoryAttributes(r, dbus.UInt64(2 * MiB), dbus.UInt64(PAGE), "private")
        self.assertEqual(cm.exception.get_dbus_name(), E + "Busy", str(cm.exception))
        self.assertIn("pinned", cm.exception.get_dbus_message())
        self.assertEqual(os.read(pr, PAGE)[0], 5, "the pipe held the page")
        os.close(pr)
        os.close(pw)
        m.close()
        MGR.SetMemoryAttributes(r, dbus.UInt64(2 * MiB), dbus.UInt64(PAGE), "private")
        MGR.SetMemoryAttributes(r, dbus.UInt64(2 * MiB), dbus.UInt64(PAGE), "shared")
        self.assertEqual(os.pread(fd, 1, 2 * MiB), b"\x05", "once the pin is gone it converts, content kept")

    # --- allocate ---

    def test_allocate_right(self):
        r, a, b = self.region(), self.vm(), self.vm()
        plain = self.attach(a, r)
        allowed = self.attach(b, r, allocate=True)
        FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE = 1, 2
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]

        def fallocate(fd, mode, off, length):
            if libc.fallocate(fd, mode, off, length) != 0:
                return ctypes.get_errno()
            return 0
        for mode, what in ((FALLOC_FL_KEEP_SIZE, "allocate"), (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, "punch")):
            self.assertNotEqual(fallocate(plain, mode, 0, PAGE), 0, f"a view without the right cannot {what}")
            self.assertEqual(fallocate(allowed, mode, 0, PAGE), 0, f"a view with the right can {what}")


def main():
    global MGR
    MGR = manager()
    backends = [str(b) for b in dbus.SystemBus().get_object(BUS, PATH).Get(
        MANAGER, "Backends", dbus_interface="org.freedesktop.DBus.Properties")]
    if "kmod" not in backends:
        print(f"GMEM-SKIP kmod: gmemd offers no kmod backend here (Backends: {backends})", file=sys.stderr)
        sys.exit(77)
    prog = unittest.main(argv=[sys.argv[0]] + sys.argv[1:], exit=False, verbosity=2)
    sys.exit(0 if prog.result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
