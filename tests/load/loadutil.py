# SPDX-License-Identifier: LGPL-2.1-or-later
"""
loadutil — what the load, hostile-client and exhaustion tests share on top
of gmemtest: the daemon's resource figures (open fds, RSS), raw wire-level
connections to the private bus, a bus monitor, policy files, a fresh gmemd
per test with its own limits, and the memory cgroup a test may put gmemd in.

Figures are printed to stderr as "figure: ..." lines, so that the meson test
log of every run holds them.
"""

import json
import os
import resource
import signal
import sys
import threading
import time

import gmemtest
import dbuswire as W

MANAGER = (gmemtest.BUS_NAME, gmemtest.ROOT_PATH, gmemtest.MANAGER_IFACE)
QUOTA_EXCEEDED = gmemtest.ERROR_PREFIX + "QuotaExceeded"
KiB = 1024


def need_root():
    """Exits 77 unless root: gmemd makes itself non-dumpable, so only root
    can read its /proc/PID/fd and status, which is what these tests measure."""
    if os.geteuid() != 0:
        gmemtest.skip_file("the load suite measures gmemd's open fds in /proc/PID/fd, which only "
                           "root may read (gmemd is not dumpable): run it as root")


def memory_checked():
    """False when gmemd's RSS says nothing about its heap: under a wrapper
    (valgrind) or in a sanitizer build (ASan's quarantine keeps up to 256 MiB
    of freed memory). Leaks are what those runs report themselves."""
    if gmemtest.WRAPPER:
        return False
    path = os.environ.get("GMEMD", "")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return True
    return b"__asan_init" not in data and b"__ubsan_handle" not in data


def figure(text):
    print(f"figure: {text}", file=sys.stderr, flush=True)


class DaemonStats:
    """Open fds and memory of one process, from /proc."""

    def __init__(self, pid):
        self.pid = pid

    def fds(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def fd_targets(self):
        out = {}
        for fd in os.listdir(f"/proc/{self.pid}/fd"):
            try:
                out[int(fd)] = os.readlink(f"/proc/{self.pid}/fd/{fd}")
            except OSError:
                pass
        return out

    def status(self):
        out = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if v.strip().endswith("kB"):
                    out[k] = int(v.split()[0])
        return out

    def rss_kib(self):
        return self.status()["VmRSS"]

    def anon_kib(self):
        return self.status().get("RssAnon", 0)

    def cpu_seconds(self):
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def snapshot(self):
        st = self.status()
        return {"fds": self.fds(), "rss": st["VmRSS"], "anon": st.get("RssAnon", 0)}

    def settled(self):
        """snapshot() once gmemd has finished with earlier calls: it closes
        a reply's duplicate fd after the caller may have read the reply, and
        it answers in order, so a round trip first is enough."""
        c = raw()
        try:
            mgr_call(c, "ListRegions")
        finally:
            c.close()
        return self.snapshot()


def raw(timeout=10, hello=True):
    """A wire-level connection to the private bus, authenticated."""
    return W.Connection(gmemtest.WORLD.address, timeout=timeout).connect(hello=hello)


def mgr_call(conn, method, signature="", args=()):
    """A manager call on a raw connection; returns the reply and closes any
    fds it carried."""
    reply = conn.call(*MANAGER, method, signature, list(args))
    for fd in reply.fds:
        os.close(fd)
    reply.fds = []
    return reply


class Monitor:
    """A monitoring connection (org.freedesktop.DBus.Monitoring) that
    collects what matches its rules. It reads all the time, in a thread: a
    monitor that falls behind holds up the bus (fds in the messages it is
    sent count against their sender). drain() returns what arrived."""

    def __init__(self, rules):
        self.conn = raw()
        r = self.conn.call(W.BUS, W.BUS_PATH, "org.freedesktop.DBus.Monitoring", "BecomeMonitor",
                           "asu", [rules, 0])
        if r.type == W.ERROR:
            raise RuntimeError(f"BecomeMonitor failed: {r.error_name}: {r.args}")
        self.messages = []
        self.lock = threading.Lock()
        self.last = time.monotonic()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        self.conn.sock.settimeout(None)
        try:
            while True:
                m = self.conn.recv()
                for fd in m.fds:
                    os.close(fd)
                m.fds = []
                m.body = b""
                with self.lock:
                    self.messages.append(m)
                    self.last = time.monotonic()
        except (OSError, ValueError):
            pass

    def drain(self, quiet=0.5):
        """What arrived, once nothing more came for quiet seconds."""
        while True:
            with self.lock:
                idle = time.monotonic() - self.last
            if idle >= quiet:
                break
            time.sleep(quiet - idle)
        with self.lock:
            out, self.messages = self.messages, []
        return out

    def close(self):
        try:
            self.conn.sock.shutdown(2)
        except OSError:
            pass
        self.thread.join(timeout=5)
        self.conn.close()


def write_policy(path, policy):
    with open(path + ".tmp", "w") as f:
        json.dump(policy, f, indent=1)
    os.rename(path + ".tmp", path)


def restart_gmemd(extra_args=()):
    """Stops the file's gmemd (if any) and starts a fresh one; returns its
    DaemonStats. A test that breaks the daemon on purpose calls this so the
    next test starts clean."""
    w = gmemtest.WORLD
    if w.gmemd_proc is not None:
        w.stop_gmemd(signal.SIGTERM)
    if getattr(w, "gmemd_log", None):
        w.gmemd_log.close()
    w.start_gmemd(list(extra_args))
    return DaemonStats(w.gmemd_pid())


def set_fd_limit(pid, soft):
    """Lowers gmemd's soft RLIMIT_NOFILE (its hard limit stays, so a later
    call may raise it again without CAP_SYS_RESOURCE). gmemd reads its
    limit at most once a second (fdlimit.c): wait that long."""
    _, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
    time.sleep(1.1)


def name_owner():
    """The unique name that owns org.gmemd.Broker1, or None."""
    c = raw(timeout=5)
    try:
        r = c.call(W.BUS, W.BUS_PATH, W.BUS, "GetNameOwner", "s", [gmemtest.BUS_NAME])
        return r.args[0] if r.type == W.METHOD_RETURN else None
    finally:
        c.close()


def wait_for(pred, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


# --- memory cgroup ------------------------------------------------------------

class MemoryCgroup:
    """A memory cgroup of its own for gmemd, with a limit, inside the
    cgroups whoever runs the tests is in, so their limits stay in force
    above it. Found where gmemd itself looks (daemon/host/memcg.c): the v1
    memory hierarchy at /sys/fs/cgroup/memory if this process has one, else
    the v2 one at /sys/fs/cgroup.

    On v1 it is a child of this process's own memory cgroup. On v2 a cgroup
    that holds processes (ours holds this one) cannot give its children a
    controller (the "no internal processes" rule), so it goes under the
    nearest cgroup from ours upwards that gives its children the memory
    controller already: usually our parent, which makes it a sibling of
    ours. Nothing is enabled and nothing but gmemd is moved. available()
    says why not when there is no such place."""

    def __init__(self, name):
        self.name = name
        self.path = None           # the new cgroup's directory
        self.parent = None         # the directory it is made in
        self.home = None           # this process's own cgroup: where gmemd goes back
        self.mount = None
        self.version = None
        self.moved = []

    def available(self):
        try:
            with open("/proc/self/cgroup") as f:
                lines = [line.split(":", 2) for line in f.read().splitlines()]
        except OSError as e:
            return f"cannot read /proc/self/cgroup: {e}"
        for hid, controllers, path in lines:
            if "memory" in controllers.split(","):
                self.version, self.mount = 1, "/sys/fs/cgroup/memory"
                self.home = self.mount + path.rstrip("/")
                if not os.path.exists(self.home + "/memory.limit_in_bytes"):
                    return f"{self.home} has no memory.limit_in_bytes (v1 memory hierarchy not mounted there)"
                self.parent = self.home
                break
        else:
            v2 = [path for hid, controllers, path in lines if hid == "0" and controllers == ""]
            if not v2:
                return "this process is in no memory cgroup (no v1 memory line, no v2 line in /proc/self/cgroup)"
            self.version, self.mount = 2, "/sys/fs/cgroup"
            self.home = self.mount + v2[0].rstrip("/")
            d = self.home
            while True:
                try:
                    with open(d + "/cgroup.subtree_control") as f:
                        if "memory" in f.read().split():
                            self.parent = d
                            break
                except OSError:
                    pass
                if d == self.mount:
                    return (f"no cgroup from {self.home} up to {self.mount} gives its children the "
                            f"memory controller (cgroup.subtree_control), and {self.home} holds "
                            f"processes, so it cannot")
                d = os.path.dirname(d)
        if not os.access(self.parent, os.W_OK):
            return f"cannot create a cgroup under {self.parent} (not writable)"
        return None

    def relative(self):
        """The cgroup's path as /proc/PID/cgroup and gmemd's messages say it."""
        return self.path[len(self.mount):] or "/"

    def create(self, limit):
        """Creates the cgroup with a memory limit of limit bytes. Its OOM
        killer stays on, as it must on v2. Swap may not stretch the limit."""
        self.path = os.path.join(self.parent, self.name)
        os.mkdir(self.path)
        if self.version == 1:
            self._write("memory.limit_in_bytes", str(limit))
            if os.path.exists(os.path.join(self.path, "memory.memsw.limit_in_bytes")):
                self._write("memory.memsw.limit_in_bytes", str(limit))
        else:
            self._write("memory.max", str(limit))
            if os.path.exists(os.path.join(self.path, "memory.swap.max")):
                self._write("memory.swap.max", "0")

    def _write(self, name, value):
        with open(os.path.join(self.path, name), "w") as f:
            f.write(value)

    def read(self, name):
        with open(os.path.join(self.path, name)) as f:
            return f.read()

    def usage(self):
        return int(self.read("memory.usage_in_bytes" if self.version == 1 else "memory.current"))

    def limit(self):
        text = self.read("memory.limit_in_bytes" if self.version == 1 else "memory.max").strip()
        return None if text == "max" else int(text)

    def oom_events(self):
        """{"oom": times the cgroup ran out (v2 only), "oom_kill": tasks the
        kernel killed for it}, from memory.events (v2) or memory.oom_control (v1)."""
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        out = {}
        for line in self.read(name).splitlines():
            key, _, value = line.partition(" ")
            if key in ("oom", "oom_kill", "under_oom"):
                out[key] = int(value)
        return out

    def add(self, pid):
        self._write("cgroup.procs", str(pid))
        self.moved.append(pid)

    def holds(self, pid):
        """True if pid is in this cgroup, by its /proc/PID/cgroup."""
        with open(f"/proc/{pid}/cgroup") as f:
            for hid, controllers, path in (line.split(":", 2) for line in f.read().splitlines()):
                if (self.version == 1 and "memory" in controllers.split(",")) or \
                        (self.version == 2 and hid == "0"):
                    return path == self.relative()
        return False

    def remove(self):
        """Moves what is left back home and removes the cgroup."""
        if not self.path:
            return
        for pid in self.moved:
            try:
                with open(os.path.join(self.home, "cgroup.procs"), "w") as f:
                    f.write(str(pid))
            except OSError:
                pass     # gone
        for _ in range(50):
            try:
                os.rmdir(self.path)
                break
            except OSError:
                time.sleep(0.1)
        self.path = None
