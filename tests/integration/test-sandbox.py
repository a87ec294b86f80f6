#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Least privilege: gmemd gives up every capability and sets no-new-privileges
whether or not it switches user; under --user= it runs as that user; it is
not dumpable; its system call filter refuses calls that any unprivileged
process may make (an AF_INET socket, process_vm_readv, execve, kill) while
it keeps serving.

The filter is checked from outside the daemon as well as by its own
self-test: the test makes the same calls itself, as the daemon's user and
without a filter, to show that they are allowed there (so an EPERM can only
come from the filter); it reads the filter's presence from
/proc/PID/status; it watches the daemon's calls with strace; and with
--sandbox-kill it sees the kernel kill gmemd with SIGSYS at the first one.
"""
import ctypes
import errno
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time

import dbus

import gmemtest
from gmemtest import MiB, SLOW, GmemTestCase, WRAPPER, run_as

DAEMON_USER = "daemon"

# gmemd --sandbox-self-test's probes, in its order, and how each must end.
PROBES = ("socket-inet", "process_vm_readv", "execve", "kill")
FILTERED = " ".join(f"{p}=EPERM" for p in PROBES)
UNFILTERED = {"socket-inet": "ALLOWED", "process_vm_readv": "ALLOWED", "execve": "ENOENT",
              "kill": "ALLOWED"}
NO_SUCH_PROGRAM = "/nonexistent/gmemd-sandbox-self-test"
SANITIZER_NOTE = "System call filter not installed (sanitizer build)"


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


def own_probes():
    """The self-test's calls, made by this process: {probe: "ALLOWED" or an errno name}."""
    libc = ctypes.CDLL(None, use_errno=True)
    out = {}

    def errname(e):
        return errno.errorcode.get(e, str(e))
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
        out["socket-inet"] = "ALLOWED"
    except OSError as e:
        out["socket-inet"] = errname(e.errno)
    src, dst = ctypes.create_string_buffer(b"gmemd", 8), ctypes.create_string_buffer(8)
    local = _Iovec(ctypes.cast(dst, ctypes.c_void_p), 8)
    remote = _Iovec(ctypes.cast(src, ctypes.c_void_p), 8)
    libc.process_vm_readv.restype = ctypes.c_ssize_t
    r = libc.process_vm_readv(os.getpid(), ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    out["process_vm_readv"] = "ALLOWED" if r >= 0 else errname(ctypes.get_errno())
    try:
        os.execve(NO_SUCH_PROGRAM, [NO_SUCH_PROGRAM], {})
        out["execve"] = "ALLOWED"   # not reached: the program does not exist
    except OSError as e:
        out["execve"] = errname(e.errno)
    try:
        os.kill(os.getpid(), 0)
        out["kill"] = "ALLOWED"
    except OSError as e:
        out["kill"] = errname(e.errno)
    return out


def seccomp_filters(pid="self"):
    st = proc_status(pid)
    return int(st.get("Seccomp_filters", "0"))


def _has_passwd_entry(uid):
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        return False


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
        for cap in ("CapBnd", "CapInh", "CapPrm", "CapEff", "CapAmb"):
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

    def test_owner_helper_under_user(self):
        """Under --user= the owner helper is that user too, with CAP_CHOWN
        alone and an empty bounding set, and gives a hugetlb inode of
        gmemd's user to a hypervisor uid and back."""
        pw = pwd.getpwnam(DAEMON_USER)
        pid = self.start(f"--user={DAEMON_USER}")
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            helpers = [int(c) for c in f.read().split()]
        self.assertEqual(len(helpers), 1, f"gmemd has one child, its owner helper: {helpers}")
        st = proc_status(helpers[0])
        self.assertEqual(st["Uid"].split(), [str(pw.pw_uid)] * 4, "the helper is gmemd's user")
        self.assertEqual(int(st["CapEff"], 16), 1, "and holds CAP_CHOWN")
        self.assertEqual(int(st["CapPrm"], 16), 1, "and nothing else")
        for cap in ("CapBnd", "CapInh", "CapAmb"):
            self.assertEqual(int(st[cap], 16), 0, f"the helper's {cap} is empty ({st[cap]})")
        self.assertEqual(st["NoNewPrivs"], "1")
        self.assertNoPrivileges(proc_status(pid))

        self.reserve_hugepages(1)
        hp = gmemtest.hugepage_meminfo("Hugepagesize")
        r = self.create_region(hp, backend="hugetlb")
        vm = self.register_vm(uid=65534)
        fd = self.attach(vm, r, "rw")
        self.assertEqual(os.fstat(fd).st_uid, 65534, "the hugetlb inode is the hypervisor's")
        self.mgr("Detach", "ss", vm, r)
        self.assertEqual(os.fstat(fd).st_uid, pw.pw_uid, "and gmemd's user's again once its view goes")

    def test_no_owner_helper_without_cap_chown(self):
        """A gmemd started without CAP_CHOWN starts no helper and says what
        that means; hugetlb views of a hypervisor uid are handed out all the
        same, the inode staying gmemd's."""
        setpriv = shutil.which("setpriv")
        if not setpriv:
            self.skip_or_fail("setpriv is not installed (apt-get install util-linux)", dependency=True)
        saved = gmemtest.WRAPPER
        gmemtest.WRAPPER = [setpriv, "--bounding-set=-chown", "--"]
        try:
            pid = self.start()
        finally:
            gmemtest.WRAPPER = saved
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            self.assertEqual(f.read().split(), [], "no owner helper without CAP_CHOWN")
        self.assertIn("started without CAP_CHOWN", self.world.gmemd_log_text())
        self.reserve_hugepages(1)
        r = self.create_region(gmemtest.hugepage_meminfo("Hugepagesize"), backend="hugetlb")
        fd = self.attach(self.register_vm(uid=65534), r, "rw")
        self.assertEqual(os.fstat(fd).st_uid, 0, "the inode stays gmemd's")

    def test_user_switch_by_uid(self):
        # The same user given as a number: the same uid, gid and empty capability sets.
        pw = pwd.getpwnam(DAEMON_USER)
        st = proc_status(self.start(f"--user={pw.pw_uid}"))
        self.assertEqual(st["Uid"].split(), [str(pw.pw_uid)] * 4, "real, effective, saved and fs uid are the user's")
        self.assertEqual(st["Gid"].split(), [str(pw.pw_gid)] * 4, "and every gid its passwd group")
        self.assertNoPrivileges(st)
        self.serve_something()

    def test_user_switch_to_uid_without_passwd_entry(self):
        # A uid no passwd entry names: that uid, gid the same number, no
        # supplementary groups. gmemd switches and says so. Then the buses
        # differ: dbus-daemon refuses such a uid's connection (it cannot
        # find the uid in the user database), so gmemd fails to connect;
        # dbus-broker lets it connect and serve. (Both take a connection's
        # groups from the socket: that is not the difference.)
        uid = next(u for u in range(2000, 60000) if not _has_passwd_entry(u))
        if gmemtest.bus_is_broker():
            self.start(f"--user={uid}", "--log-level=debug")
            self.serve_something()
            log = self.world.gmemd_log_text()
        else:
            with self.assertRaises(RuntimeError) as cm:
                self.start(f"--user={uid}", "--log-level=debug")
            log = str(cm.exception)
            self.world.stop_gmemd(signal.SIGTERM)   # reap the exited process
            self.world.gmemd_proc = None
        self.assertNotIn("No user", log, "a number is a uid even without a passwd entry")
        self.assertIn(f"No passwd entry for uid {uid}: running as gid {uid} with no supplementary groups", log)
        self.assertIn(f"Running as uid {uid}, gid {uid} with no capabilities", log,
                      "gmemd switched to the uid and its gid and kept no capabilities")

    def test_unknown_user_refused(self):
        with self.assertRaises(RuntimeError) as cm:
            self.start("--user=no-such-user-gmemtest")
        self.assertIn("No user 'no-such-user-gmemtest'", str(cm.exception))
        self.world.stop_gmemd(signal.SIGTERM)   # reap the exited process
        self.world.gmemd_proc = None

    def wait_self_test(self, log_text):
        """gmemd's self-test line, or None in a sanitizer build (no filter).
        The filter goes in after the bus name is taken: wait for the line."""
        deadline = time.monotonic() + 20 * SLOW
        while True:
            log = log_text()
            if SANITIZER_NOTE in log:
                return None
            m = re.search(r"Sandbox self-test: (.*)", log)
            if m:
                return m.group(1).strip()
            if time.monotonic() > deadline:
                self.fail(f"gmemd does not log its self-test:\n{log}")
            time.sleep(0.05)

    def test_seccomp_forbidden_calls(self):
        # Without a filter, as gmemd's user, each probe's call is allowed (or
        # fails otherwise than with EPERM): else its EPERM would prove nothing.
        pw = pwd.getpwnam(DAEMON_USER)
        res = run_as(pw.pw_uid, pw.pw_gid, own_probes)
        self.assertTrue(res["ok"], res)
        self.assertEqual(res["value"], UNFILTERED,
                         "an unprivileged process without a filter may make each probe's call here")
        self.assertEqual(own_probes(), UNFILTERED, "and so may this test process")

        pid = self.start("--sandbox-self-test")
        line = self.wait_self_test(self.world.gmemd_log_text)
        if line is None:
            self.skipTest("sanitizer build: gmemd leaves the filter out")
        self.assertEqual(line, FILTERED, "each probe is refused with EPERM under the filter")
        st = proc_status(pid)
        self.assertEqual(st["Seccomp"], "2", "the kernel reports a seccomp filter in force")
        self.assertEqual(seccomp_filters(pid), seccomp_filters() + 1,
                         "gmemd installed exactly one filter of its own on top of what it inherited")
        self.serve_something()

    def test_seccomp_kills(self):
        # From outside: with --sandbox-kill the kernel kills gmemd at its first forbidden call.
        try:
            self.start("--sandbox-kill", "--sandbox-self-test")
        except RuntimeError:
            pass    # it may die before it takes the bus name
        # Until it dies, or lives to report (a filter that let the calls through).
        p = self.world.gmemd_proc
        deadline = time.monotonic() + 20 * SLOW
        while p.poll() is None and time.monotonic() < deadline:
            log = self.world.gmemd_log_text()
            if "Sandbox self-test:" in log or SANITIZER_NOTE in log:
                break
            time.sleep(0.05)
        log = self.world.gmemd_log_text()
        status = self.world.stop_gmemd(signal.SIGTERM)
        self.world.gmemd_proc = None
        if SANITIZER_NOTE in log:
            self.assertEqual(status, 0, log)
            self.skipTest("sanitizer build: gmemd leaves the filter out")
        self.assertEqual(status, -signal.SIGSYS,
                         f"the kernel killed gmemd with SIGSYS at the self-test's first call:\n{log}")
        self.assertNotIn("Sandbox self-test:", log, "gmemd did not live to report")

    def test_seccomp_lets_leader_checks_through(self):
        # A leader passed as a pidfd is probed with pidfd_send_signal(fd, 0): under the killing filter, as
        # its own user (the leader is root's: the probe answers EPERM, the process is there), gmemd lives
        # through it, takes a live leader, refuses an exited one and watches the leader's exit.
        pid = self.start("--sandbox-kill", f"--user={DAEMON_USER}")
        leader = self.spawn_leader()
        pidfd = os.pidfd_open(leader.pid)
        self.addCleanup(os.close, pidfd)
        vm = self.register_vm(leader=dbus.types.UnixFd(pidfd))
        self.assertEqual(int(self.vm_prop(vm, "LeaderPID")), leader.pid, "the leader is watched")
        leader.kill()
        leader.wait()
        self.assertMgrError("InvalidArgument", "RegisterVm", "sa{sv}", self.uniq("vm"),
                            gmemtest.dbus_options({"leader": dbus.types.UnixFd(pidfd)}), contains="has exited")
        self.wait_until(lambda: int(self.vm_prop(vm, "LeaderPID")) == 0, "gmemd to see the leader exit")
        self.assertIsNone(self.world.gmemd_proc.poll(), f"gmemd lives:\n{self.world.gmemd_log_text()}")
        self.assertEqual(self.world.gmemd_pid(), pid)

    def test_seccomp_kill_direct_socket(self):
        # Under the killing filter gmemd serves its direct socket (accept4; past 16 fds sent, the SIOCOUTQ
        # ioctl that tells whether the client read them) and exits 0 on SIGTERM, leaving the socket (the
        # filter allows no unlink) with nobody listening on it.
        self.world.start_gmemd(["--sandbox-kill"], direct=True)
        conn = self.world.direct_connection()
        try:
            r = self.create_region(MiB, cleanup=False)
            vm = self.register_vm(cleanup=False)
            self.attach(vm, r, "rw")
            for _ in range(20):
                fd = conn.call_blocking(None, gmemtest.ROOT_PATH, gmemtest.MANAGER_IFACE, "GetFd", "ss", [vm, r])
                os.close(fd.take())
        finally:
            conn.close()
        status = self.world.stop_gmemd(signal.SIGTERM)
        self.assertEqual(status, 0, f"gmemd exits 0 on SIGTERM:\n{self.world.gmemd_log_text()}")
        self.assertFalse(self.world.direct_socket_accepts(), "nobody listens on the socket left behind")

    def test_seccomp_seen_by_strace(self):
        # From outside: strace sees each probe's call come back -1 EPERM.
        strace = shutil.which("strace")
        if not strace:
            self.skip_or_fail("strace is not installed (apt-get install strace): the calls are not watched",
                              dependency=True)
        out = os.path.join(self.world.tmp, "strace.out")
        log_path = os.path.join(self.world.tmp, "gmemd-strace.log")
        with open(log_path, "w") as log:
            proc = subprocess.Popen(
                [strace, "-f", "-qq", "-e", "signal=none",
                 "-e", "trace=socket,process_vm_readv,execve,kill", "-o", out,
                 self.world.gmemd, "--sandbox-self-test"],
                env=self.world.env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, preexec_fn=gmemtest.die_with_parent)

        def log_text():
            with open(log_path, errors="replace") as f:
                return f.read()

        def traced():
            # strace's children: gmemd. It does not die with strace, so it is killed here.
            try:
                with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
                    return [int(x) for x in f.read().split()]
            except OSError:
                return []
        try:
            line = self.wait_self_test(log_text)
            if proc.poll() is not None:
                self.skipTest(f"strace could not run gmemd here:\n{log_text()}")
            if line is None:
                self.skipTest("sanitizer build: gmemd leaves the filter out")
            self.wait_until(lambda: self.conn.name_has_owner(gmemtest.BUS_NAME), "gmemd's bus name")
            os.kill(self.world.gmemd_pid(), signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=30 * SLOW), 0, f"gmemd exits 0:\n{log_text()}")
        finally:
            if proc.poll() is None:
                for pid in traced():
                    os.kill(pid, signal.SIGKILL)
                try:
                    proc.wait(timeout=10)   # strace reaps gmemd, then exits
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        with open(out) as f:
            trace = f.read()
        seen = {
            "socket-inet": re.findall(r"socket\(AF_INET, .*\)\s+= (.*)", trace),
            "process_vm_readv": re.findall(r"process_vm_readv\(.*\)\s+= (.*)", trace),
            "execve": re.findall(r'execve\("' + re.escape(NO_SUCH_PROGRAM) + r'", .*\)\s+= (.*)', trace),
            "kill": re.findall(r"kill\(\d+, 0\)\s+= (.*)", trace),
        }
        for probe, results in seen.items():
            self.assertEqual(len(results), 1, f"strace saw gmemd make the {probe} call once:\n{trace}")
            self.assertTrue(results[0].startswith("-1 EPERM"),
                            f"the kernel refused gmemd's {probe} call with EPERM: {results[0]}")

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
