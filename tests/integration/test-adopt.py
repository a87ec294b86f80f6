#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
AdoptRegion: custody of a guest_memfd a hypervisor made. This host has no
/dev/kvm, so no guest_memfd: every file a client can pass instead is tried,
and each must be refused with InvalidArgument naming what the file is (a
memfd, a pipe, a regular file, ...), leave no region behind, charge
nothing and leave gmemd holding no more fds than before (its
/proc/PID/fd). So are a bad name, an existing name, a backend that does
not adopt, an unknown option, a class that may not use guest_memfd, and a
memfd over the caller's quota (what the file is is decided first).
CreateRegion with backend guest_memfd is NotSupported saying why, and the
Backends property lists guest_memfd. gmemctl adopt-region says the same.
What a real guest_memfd does is checked in a nested KVM guest on Linux 7.3
(tests/kvm/guest-test, custody-put and custody-get).
"""
import fcntl
import json
import os
import pwd
import socket
import subprocess
import sys
import time

import dbus

import gmemtest
from gmemtest import MiB, SLOW, GmemTestCase, dbus_options, memfd_secret_works

NOT_A_GMEMFD = "not a guest_memfd"
ORCH_UID = pwd.getpwnam("daemon").pw_uid     # class "memfd-only": may create regions, not of guest_memfd

POLICY = {
    "version": 1,
    "classes": [
        {"name": "admin", "match": {"uids": [0]}, "verbs": ["all"], "scope": "all", "backends": ["all"],
         "max_region_size": "8M", "quota": {"bytes": "16M"}},
        {"name": "memfd-only", "match": {"uids": [ORCH_UID]}, "verbs": ["list", "create-region"],
         "backends": ["memfd"]},
    ],
}

CLIENT = r"""
import dbus, dbus.bus, json, os, sys
addr, name = sys.argv[1:3]
conn = dbus.bus.BusConnection(addr)
fd = os.memfd_create("x")
os.ftruncate(fd, 1 << 20)
try:
    conn.call_blocking("org.gmemd.Broker1", "/org/gmemd/Broker1", "org.gmemd.Broker1.Manager", "AdoptRegion",
                       "sha{sv}", [name, dbus.types.UnixFd(fd), dbus.Dictionary({}, signature="sv")])
    print(json.dumps({"ok": True}))
except dbus.exceptions.DBusException as e:
    print(json.dumps({"error": e.get_dbus_name(), "message": e.get_dbus_message()}))
"""


class Adopt(GmemTestCase):

    @classmethod
    def setUpClass(cls):
        cls.policy_path = gmemtest.WORLD.start_gmemd_with_policy(POLICY)

    def gmemd_fds(self):
        return len(os.listdir(f"/proc/{self.world.gmemd_pid()}/fd"))

    def assertFdsBack(self, before, msg="gmemd keeps no fd of the refused call"):
        """gmemd's fd count returns to before. The fd a call carried is
        closed with the call's message, which sd-bus may free just after the
        reply is on its way: wait a little for it, but no longer."""
        deadline = time.monotonic() + 5 * SLOW
        while self.gmemd_fds() != before and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(self.gmemd_fds(), before, msg)

    def adopt(self, name, fd, **opts):
        return self.mgr("AdoptRegion", "sha{sv}", name, dbus.types.UnixFd(fd), dbus_options(opts))

    def assertRefused(self, error, fd, *words, name=None, **opts):
        """AdoptRegion of fd fails with error, the message names every word,
        and nothing is left: no region, no fd kept, no bytes counted."""
        name = self.uniq("g") if name is None else name
        before_regions = self.region_names()
        before_bytes = int(self.mgr_prop("TotalBytes"))
        before_fds = self.gmemd_fds()
        msg = self.assertMgrError(error, "AdoptRegion", "sha{sv}", name, dbus.types.UnixFd(fd),
                                  dbus_options(opts), contains=list(words))
        self.assertEqual(self.region_names(), before_regions, "a refused adoption leaves no region")
        self.assertEqual(int(self.mgr_prop("TotalBytes")), before_bytes, "a refused adoption counts no bytes")
        self.assertFdsBack(before_fds, f"gmemd holds fds it did not hold before refusing: {msg}")
        return msg

    def memfd(self, size=MiB, name="x"):
        fd = self.keep_fd(os.memfd_create(name))
        os.ftruncate(fd, size)
        return fd

    # --- what is offered ---

    def test_backends_lists_guest_memfd(self):
        self.assertIn("guest_memfd", [str(b) for b in self.mgr_prop("Backends")],
                      "adoption needs only a file: guest_memfd is listed wherever gmemd runs")

    def test_create_region_is_not_supported(self):
        name = self.uniq("g")
        self.assertMgrError("NotSupported", "CreateRegion", "sta{sv}", name, dbus.UInt64(MiB),
                            dbus_options({"backend": "guest_memfd"}),
                            contains=["AdoptRegion", "cannot create one for a VM it does not run"])
        self.assertNotIn(name, self.region_names())

    def test_default_backend_cannot_be_guest_memfd(self):
        res = self.run_cmd([self.world.gmemd, "--default-backend=guest_memfd"], expect=1)
        self.assertIn("Invalid --default-backend=guest_memfd: guest_memfd regions are adopted with AdoptRegion",
                      res.err)

    # --- files that are not a guest_memfd ---

    def test_memfd(self):
        msg = self.assertRefused("InvalidArgument", self.memfd(name="x"), "a memfd ('memfd:x')", NOT_A_GMEMFD)
        self.assertIn("passed for region", msg)

    def test_memfd_read_only(self):
        fd = self.memfd(name="ro")
        ro = self.keep_fd(os.open(f"/proc/self/fd/{fd}", os.O_RDONLY))
        self.assertRefused("InvalidArgument", ro, "a memfd ('memfd:ro')", NOT_A_GMEMFD)

    def test_pipe(self):
        r, w = os.pipe()
        self.keep_fd(r)
        self.keep_fd(w)
        self.assertRefused("InvalidArgument", r, "a pipe ('pipe:[", NOT_A_GMEMFD)

    def test_socket(self):
        a, b = socket.socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        self.assertRefused("InvalidArgument", a.fileno(), "a socket ('socket:[", NOT_A_GMEMFD)

    def test_regular_file(self):
        path = os.path.join(self.world.tmp, self.uniq("file"))
        fd = self.keep_fd(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        os.ftruncate(fd, MiB)
        self.assertRefused("InvalidArgument", fd, f"a regular file ('{path}')", NOT_A_GMEMFD)

    def test_regular_file_read_only(self):
        fd = self.keep_fd(os.open("/etc/hostname" if os.path.exists("/etc/hostname") else "/etc/passwd",
                                  os.O_RDONLY))
        self.assertRefused("InvalidArgument", fd, "a regular file ('/etc/", NOT_A_GMEMFD)

    def test_eventfd(self):
        fd = self.keep_fd(os.eventfd(0))
        self.assertRefused("InvalidArgument", fd, "an anonymous inode ('anon_inode:[eventfd]')", NOT_A_GMEMFD)

    def test_character_device(self):
        fd = self.keep_fd(os.open("/dev/null", os.O_RDWR))
        self.assertRefused("InvalidArgument", fd, "a character device ('/dev/null')", NOT_A_GMEMFD)

    def test_directory(self):
        fd = self.keep_fd(os.open("/", os.O_RDONLY | os.O_DIRECTORY))
        self.assertRefused("InvalidArgument", fd, "a directory ('/')", NOT_A_GMEMFD)

    def test_secret_memory(self):
        if not memfd_secret_works():
            self.skip_or_fail("memfd_secret does not work in this process", dependency=False)
        fd = self.keep_fd(gmemtest.libc.syscall(447, 0))
        os.ftruncate(fd, MiB)
        self.assertRefused("InvalidArgument", fd, "secret memory", NOT_A_GMEMFD)

    def test_a_region_of_gmemd_itself(self):
        """A view gmemd handed out is a memfd too: adopting it is refused like any other."""
        r = self.create_region(MiB)
        vm = self.register_vm()
        fd = self.attach(vm, r, "rw")
        self.assertRefused("InvalidArgument", fd, f"a memfd ('memfd:", NOT_A_GMEMFD)

    # --- what is checked before the file ---

    def test_bad_names(self):
        fd = self.memfd()
        for name in ["", "a/b", "x" * 65, "sp ace", "-"[:0] + "ü"]:
            with self.subTest(name=name):
                self.assertRefused("InvalidName", fd, name=name)

    def test_existing_name(self):
        r = self.create_region(MiB)
        self.assertRefused("RegionExists", self.memfd(), f"Region '{r}' exists already", name=r)

    def test_unknown_owner(self):
        self.assertRefused("NoSuchVm", self.memfd(), "No VM 'nobody-here' known", owner="nobody-here")

    def test_backend_that_does_not_adopt(self):
        for backend in ["memfd", "secret", "kmod", "hugetlb", "nope", ""]:
            with self.subTest(backend=backend):
                self.assertRefused("InvalidArgument", self.memfd(), f"Backend '{backend}' does not adopt files",
                                   backend=backend)

    def test_explicit_backend_still_checks_the_file(self):
        self.assertRefused("InvalidArgument", self.memfd(name="y"), "a memfd ('memfd:y')", NOT_A_GMEMFD,
                           backend="guest_memfd")

    def test_unknown_option(self):
        fd = self.memfd()
        before = self.gmemd_fds()
        self.assertGmemError("InvalidArgument", self.mgr, "AdoptRegion", "sha{sv}", self.uniq("g"),
                             dbus.types.UnixFd(fd), dbus.Dictionary({"size": dbus.UInt64(MiB)}, signature="sv"),
                             contains=["size"])
        self.assertFdsBack(before)

    def test_over_quota_memfd_is_refused_for_what_it_is(self):
        """64 MiB is over the class's largest region (8M) and its byte quota
        (16M), but the file is looked at first: what it is, not its size, is
        the answer, and nothing is charged."""
        self.assertRefused("InvalidArgument", self.memfd(64 * MiB, name="big"), "a memfd ('memfd:big')",
                           NOT_A_GMEMFD)

    def test_class_without_guest_memfd(self):
        before = self.gmemd_fds()
        p = subprocess.run([sys.executable, "-c", CLIENT, self.world.address, self.uniq("g")],
                           user=ORCH_UID, group=pwd.getpwuid(ORCH_UID).pw_gid, extra_groups=[],
                           env=self.world.env, capture_output=True, text=True, timeout=30 * SLOW,
                           stdin=subprocess.DEVNULL, cwd="/")
        self.assertEqual(p.returncode, 0, p.stderr)
        res = json.loads(p.stdout)
        self.assertEqual(res.get("error"), "org.freedesktop.DBus.Error.AccessDenied", res)
        self.assertIn("may not use backend 'guest_memfd'", res["message"])
        self.assertFdsBack(before)

    def test_many_refusals_keep_no_fd(self):
        fd = self.memfd()
        before = self.gmemd_fds()
        for i in range(50):
            self.assertGmemError("InvalidArgument", self.adopt, self.uniq("g"), fd)
        self.assertFdsBack(before, "fifty refused adoptions keep no fd")

    # --- gmemctl ---

    def test_gmemctl_adopt_region(self):
        fd = self.memfd(name="cli")
        name = self.uniq("g")
        res = self.run_cmd([self.world.gmemctl, "adopt-region", name, f"--fd={fd}"], expect=1, pass_fds=(fd,))
        self.assertIn(f"fd {fd}", res.err)
        self.assertIn("a memfd ('memfd:cli'), not a guest_memfd", res.err)
        self.assertNotIn(name, self.region_names())

    def test_gmemctl_adopt_region_bad_fd(self):
        # A usage error exits 2; an fd that is not open, 1.
        for arg, want, status in [("--fd=nope", "--fd", 2), ("--fd=-1", "--fd", 2), ("--fd=987", "fd 987 is not open", 1)]:
            with self.subTest(arg=arg):
                res = self.run_cmd([self.world.gmemctl, "adopt-region", self.uniq("g"), arg], expect=status)
                self.assertIn(want, res.err)
        res = self.run_cmd([self.world.gmemctl, "adopt-region", self.uniq("g")], expect=2)
        self.assertIn("--fd", res.err)


if __name__ == "__main__":
    gmemtest.main(start_daemon=False)
