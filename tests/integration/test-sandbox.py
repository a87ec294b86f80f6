#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Least privilege: gmemd gives up every capability and sets no-new-privileges
whether or not it switches user; under --user= it runs as that user; its
system call filter makes forbidden calls (ptrace, mount, init_module) fail
with EPERM while it keeps serving; it is not dumpable.
"""
import os
import pwd
import re
import signal

import dbus

import gmemtest
from gmemtest import MiB, GmemTestCase, WRAPPER

DAEMON_USER = "daemon"


def proc_status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            fields[k] = v.strip()
    return fields


class Sandbox(GmemTestCase):

    def setUp(self):
        if WRAPPER:
            self.skipTest("gmemd runs under a wrapper (valgrind) with --no-sandbox")
        # Each test starts its own gmemd with its own options.
        if self.world.gmemd_proc is not None:
            self.world.stop_gmemd(signal.SIGTERM)
        self._fds = []

    def tearDown(self):
        super().tearDown()
        if self.world.gmemd_proc is not None:
            status = self.world.stop_gmemd(signal.SIGTERM)
            self.assertEqual(status, 0, f"gmemd exits 0 on SIGTERM:\n{self.world.gmemd_log_text()}")

    def start(self, *args):
        self.world.start_gmemd(list(args))
        return self.world.gmemd_pid()

    def assertNoPrivileges(self, st):
        for cap in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
            self.assertEqual(int(st[cap], 16), 0, f"{cap} is empty ({st[cap]})")
        self.assertEqual(st["NoNewPrivs"], "1", "no-new-privileges is set")

    def serve_something(self):
        r = self.create_region(MiB)
        vm = self.register_vm()
        fd = self.attach(vm, r, "rw")
        self.assertGreaterEqual(fd, 0, "the daemon still hands out views")
        self.assertIn(r, self.region_names())

    def test_root_without_user_keeps_no_capabilities(self):
        st = proc_status(self.start())
        self.assertNoPrivileges(st)
        self.assertEqual(st["Uid"].split()[1], "0", "without --user gmemd stays uid 0")
        self.serve_something()

    def test_user_switch(self):
        pw = pwd.getpwnam(DAEMON_USER)
        st = proc_status(self.start(f"--user={DAEMON_USER}"))
        self.assertEqual(st["Uid"].split(), [str(pw.pw_uid)] * 4, "real, effective, saved and fs uid are the user's")
        self.assertEqual(st["Gid"].split()[0], str(pw.pw_gid), "and the gid its group")
        self.assertNoPrivileges(st)
        self.serve_something()

    def test_unknown_user_refused(self):
        with self.assertRaises(RuntimeError) as cm:
            self.start("--user=no-such-user-gmemtest")
        self.assertIn("No user 'no-such-user-gmemtest'", str(cm.exception))
        self.world.stop_gmemd(signal.SIGTERM)   # reap the exited process
        self.world.gmemd_proc = None

    def test_seccomp_forbidden_calls(self):
        pid = self.start("--sandbox-self-test")
        log = self.world.gmemd_log_text()
        if "System call filter not installed (sanitizer build)" in log:
            self.skipTest("sanitizer build: the filter is left out")
        m = re.search(r"Sandbox self-test: (.*)", log)
        self.assertIsNotNone(m, f"gmemd logs its self-test:\n{log}")
        self.assertEqual(m.group(1), "ptrace=EPERM mount=EPERM init_module=EPERM",
                         "ptrace, mount and init_module are refused with EPERM")
        st = proc_status(pid)
        self.assertEqual(st["Seccomp"], "2", "a seccomp filter is in force")
        self.serve_something()

    def test_not_dumpable(self):
        pid = self.start()
        # A non-dumpable process's /proc entries belong to root, not to its uid.
        self.assertEqual(os.stat(f"/proc/{pid}/fd").st_uid, 0)
        self.assertEqual(self.world.stop_gmemd(signal.SIGTERM), 0)
        pid2 = self.start(f"--user={DAEMON_USER}")
        self.assertEqual(os.stat(f"/proc/{pid2}/fd").st_uid, 0,
                         "gmemd's /proc entries are not its user's: it is not dumpable")
        self.serve_something()


if __name__ == "__main__":
    gmemtest.main(start_daemon=False)
