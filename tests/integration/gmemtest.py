# SPDX-License-Identifier: LGPL-2.1-or-later
"""
gmemtest — the harness every integration test file shares.

Each test file runs against its own world: a private bus started from a
configuration written into a temporary directory (type "system", EXTERNAL
auth, allow rules), and the real gmemd connected to it through
DBUS_SYSTEM_BUS_ADDRESS, exactly as it would find the system bus; with
start_gmemd(direct=True) it also listens for direct connections on
TMP/private (World.direct_connection(), and GmemTestCase.calls_as() to call
as another uid over the bus or directly). The bus
is dbus-daemon, or dbus-broker with GMEM_TEST_BUS=dbus-broker (see
Bus.start_broker() for how it runs without systemd). The
clients are the real ones: gmemctl, busctl and gdbus run as subprocesses
with the same environment, and python3-dbus is used where returned file
descriptors must be examined.

Paths come from the environment (meson sets them):
  GMEMD            the gmemd binary under test
  GMEMCTL          the gmemctl binary under test
  GMEMD_WRAPPER    optional command prefix for gmemd, e.g. valgrind; the
                   daemon must still exit 0 on SIGTERM (valgrind's
                   --error-exitcode turns leaks into a non-zero status)
  GMEM_SOURCE_ROOT the source tree (for tools/gmem-mmap)
  GMEM_VERSION     the project version, for --version and Version
  GMEMTEST_KEEP    keep the temporary directory and print its path
  GMEM_TEST_BUS    dbus-daemon (the default) or dbus-broker

A file exits 77 (skipped) with the reason when the bus (dbus-daemon, or
dbus-broker-launch and unshare) or python3-dbus is missing, or when
dbus-broker is asked for and the test does not run as root; a missing gmemd or gmemctl is a failure, not a skip.

Every skip says so where the caller collects it: a skipped file, and every
skipped test method however it skipped, prints one line

  GMEM-SKIP <test id>: <reason>

(<test id> is the file's stem for a whole file, else stem.Class.method)
and tools/test lists them in its summary. A skip whose cause is a
dependency that tools/test installs (a package, a QEMU, a kernel image)
is a failure instead when GMEM_TEST_REQUIRE_DEPS=1: skip_file() and
GmemTestCase.skip_or_fail() take dependency=True for those. Skips for
missing hardware, for a wrapper (valgrind) or for what does not apply
here stay skips.
"""

import ctypes
import json
import os
import re
import shlex
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import unittest


# --- skips that show, and skips that may not happen -------------------------

# Set by tools/test once it has installed every dependency it knows of.
REQUIRE_DEPS = os.environ.get("GMEM_TEST_REQUIRE_DEPS") == "1"


def file_id():
    """The test file's stem: the test id of a whole file, and the first part
    of every method's."""
    return os.path.splitext(os.path.basename(sys.argv[0]))[0] or "python3"


def case_id(test):
    """stem.Class.method of a test case, a subtest's case, or of a class or
    module fixture (unittest reports "setUpClass (module.Class)" for those)."""
    test = getattr(test, "test_case", test)          # a subtest
    if isinstance(test, unittest.TestCase):
        return f"{file_id()}.{type(test).__name__}.{test._testMethodName}"
    m = re.match(r"^(\w+) \((?:[\w.]*\.)?(\w+)\)$", test.id())
    return f"{file_id()}.{m.group(2)}.{m.group(1)}" if m else f"{file_id()}.{test.id()}"


def report_skip(what, reason):
    reason = " ".join(str(reason).split()) or "(no reason given)"
    print(f"GMEM-SKIP {what}: {reason}", file=sys.stderr, flush=True)


def required_text(reason):
    return (f"{reason} (GMEM_TEST_REQUIRE_DEPS=1: tools/test installs this, so it must be here; "
            f"a skip would hide that the test did not run)")


def skip_or_fail(reason, *, dependency):
    """Raises what makes the running test skip with reason, or fail when the
    cause is an installable dependency (dependency=True) and
    GMEM_TEST_REQUIRE_DEPS=1 says every such dependency is present. For
    class fixtures; test methods call GmemTestCase.skip_or_fail()."""
    if dependency and REQUIRE_DEPS:
        raise AssertionError(required_text(reason))
    raise unittest.SkipTest(reason)


def skip_file(reason, dependency=False):
    """Skips the whole file (exit 77) with reason, or fails it (exit 1) when
    the cause is an installable dependency and GMEM_TEST_REQUIRE_DEPS=1."""
    if dependency and REQUIRE_DEPS:
        print(f"FAIL: {required_text(reason)}", file=sys.stderr, flush=True)
        sys.exit(1)
    report_skip(file_id(), reason)
    sys.exit(77)


class GmemTestResult(unittest.TextTestResult):
    """A verbose result that prints a GMEM-SKIP line for every skip, whether
    it came from skip_or_fail(), a bare skipTest() or a skip decorator."""

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self.stream.flush()
        report_skip(case_id(test), reason)


try:
    import dbus
    import dbus.bus
    import dbus.connection
except ImportError:
    skip_file("python3-dbus is not installed (apt-get install python3-dbus); "
              "run the tests with /usr/bin/python3", dependency=True)

BUS_NAME = "org.gmemd.Broker1"
ROOT_PATH = "/org/gmemd/Broker1"
MANAGER_IFACE = "org.gmemd.Broker1.Manager"
REGION_IFACE = "org.gmemd.Broker1.Region"
VM_IFACE = "org.gmemd.Broker1.Vm"
MIGRATION_IFACE = "org.gmemd.Broker1.Migration"
PROPS_IFACE = "org.freedesktop.DBus.Properties"
ERROR_PREFIX = "org.gmemd.Broker1.Error."
ACCESS_DENIED = "org.freedesktop.DBus.Error.AccessDenied"

PAGE = 4096
MiB = 1 << 20

# Under a wrapper (valgrind) everything is slower.
WRAPPER = shlex.split(os.environ.get("GMEMD_WRAPPER", ""))
SLOW = 8 if WRAPPER else 1
CALL_TIMEOUT = 30 * SLOW


def path_encode(name):
    """sd_bus_path_encode()'s label escaping: every byte that is not a
    letter (or a digit after the first position) becomes _xx."""
    if name == "":
        return "_"
    out = []
    for i, ch in enumerate(name.encode()):
        c = chr(ch)
        if c.isascii() and (c.isalpha() or (i > 0 and c.isdigit())):
            out.append(c)
        else:
            out.append("_%02x" % ch)
    return "".join(out)


def region_path(name):
    return f"{ROOT_PATH}/region/{path_encode(name)}"


def vm_path(name):
    return f"{ROOT_PATH}/vm/{path_encode(name)}"


# --- small libc layer ------------------------------------------------------

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                      ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
libc.linkat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                        ctypes.c_char_p, ctypes.c_int]
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong,
                       ctypes.c_ulong, ctypes.c_ulong]

MAP_FAILED = ctypes.c_void_p(-1).value
PROT_READ, PROT_WRITE = 1, 2
MAP_SHARED, MAP_PRIVATE = 1, 2
MADV_REMOVE = 9
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE = 1, 2
AT_FDCWD = -100
AT_SYMLINK_FOLLOW, AT_EMPTY_PATH = 0x400, 0x1000
PR_SET_DUMPABLE = 4
F_ADD_SEALS, F_GET_SEALS = 1033, 1034
F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_WRITE = 1, 2, 4, 8
SYS_kcmp, KCMP_FILE = 272, 0
SYS_memfd_secret = 447
SYS_process_vm_writev = 311


class OsCall(Exception):
    pass


def _check(ret, what):
    if ret == -1 or ret is None:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")
    return ret


def mmap_raw(fd, length, prot, flags, offset=0):
    """mmap(2) returning the address (an int); raises OSError."""
    addr = libc.mmap(None, length, prot, flags, fd, offset)
    if addr == MAP_FAILED or addr is None:
        e = ctypes.get_errno()
        raise OSError(e, f"mmap: {os.strerror(e)}")
    return addr


def munmap(addr, length):
    _check(libc.munmap(addr, length), "munmap")


def mprotect(addr, length, prot):
    _check(libc.mprotect(addr, length, prot), "mprotect")


def madvise(addr, length, advice):
    _check(libc.madvise(addr, length, advice), "madvise")


def peek(addr, length):
    return ctypes.string_at(addr, length)


def poke(addr, data):
    ctypes.memmove(addr, data, len(data))


def fallocate(fd, mode, offset, length):
    _check(libc.fallocate(fd, mode, offset, length), "fallocate")


def linkat(olddirfd, oldpath, newdirfd, newpath, flags):
    _check(libc.linkat(olddirfd, oldpath.encode(), newdirfd, newpath.encode(), flags),
           "linkat")


def kcmp_same_file(fd1, fd2):
    """True/False from kcmp(KCMP_FILE); None where kcmp is unavailable."""
    pid = os.getpid()
    r = libc.syscall(SYS_kcmp, pid, pid, KCMP_FILE, fd1, fd2)
    if r < 0:
        return None
    return r == 0


def fdinfo_pos(fd):
    with open(f"/proc/self/fdinfo/{fd}") as f:
        for line in f:
            if line.startswith("pos:"):
                return int(line.split()[1])
    raise AssertionError(f"no pos in /proc/self/fdinfo/{fd}")


def shares_file_position(fd1, fd2):
    """True if moving fd1's offset moves fd2's: the same open file description."""
    old = os.lseek(fd1, 0, os.SEEK_CUR)
    try:
        os.lseek(fd1, 0, os.SEEK_SET)
        os.lseek(fd2, 0, os.SEEK_SET)
        os.lseek(fd1, 3 * PAGE, os.SEEK_SET)
        return fdinfo_pos(fd2) == 3 * PAGE
    finally:
        os.lseek(fd1, old, os.SEEK_SET)


def same_open_file(fd1, fd2):
    by_pos = shares_file_position(fd1, fd2)
    by_kcmp = kcmp_same_file(fd1, fd2)
    if by_kcmp is not None and by_kcmp != by_pos:
        raise AssertionError(f"kcmp says same={by_kcmp} but the file position says {by_pos}")
    return by_pos


def memfd_secret_works():
    fd = libc.syscall(SYS_memfd_secret, 0)
    if fd < 0:
        return False
    os.close(fd)
    return True


def hugepages_reserved():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("HugePages_Total:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def hugepage_meminfo(key):
    """A HugePages_* count, or Hugepagesize in bytes, from /proc/meminfo (0 if absent)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                k, v = line.split(":", 1)
                if k == key:
                    v = v.split()
                    return int(v[0]) * (1024 if v[1:] == ["kB"] else 1)
    except OSError:
        pass
    return 0


def hugepages_available():
    """Huge pages of the default size that a new region can still take:
    free and not promised to a mapping already."""
    return hugepage_meminfo("HugePages_Free") - hugepage_meminfo("HugePages_Rsvd")


NR_HUGEPAGES = "/proc/sys/vm/nr_hugepages"
# Test files run in parallel and each puts nr_hugepages back: one at a time.
HUGEPAGES_LOCK = "/tmp/gmemtest-hugepages.lock"


def access_mode(fd):
    import fcntl
    return fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE


def run_as(uid, gid, func):
    """Runs func() in a forked child under uid/gid with no supplementary groups
    and the dumpable flag set again (so /proc/self stays the child's own and a
    failure means the inode's permissions refused it, not /proc). Returns
    (ok, value-or-errno) where func's return or OSError errno crosses a pipe."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
            try:
                v = func()
                msg = json.dumps({"ok": True, "value": v})
            except OSError as e:
                msg = json.dumps({"ok": False, "errno": e.errno, "text": str(e)})
            os.write(w, msg.encode())
        except BaseException:
            os.write(w, json.dumps({"ok": False, "errno": -1,
                                    "text": traceback.format_exc()}).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    res = json.loads(data.decode())
    if not res["ok"] and res["errno"] == -1:
        raise AssertionError("child under uid %d crashed:\n%s" % (uid, res["text"]))
    return res


# --- the private world: dbus-daemon + gmemd ---------------------------------

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"""


# Which bus the world starts: the tests pass on both; where the two differ,
# the test says what each does and asks bus_is_broker().
BUS_KIND = os.environ.get("GMEM_TEST_BUS", "dbus-daemon")
if BUS_KIND not in ("dbus-daemon", "dbus-broker"):
    print(f"FAIL: GMEM_TEST_BUS={BUS_KIND}: dbus-daemon or dbus-broker", file=sys.stderr)
    sys.exit(1)


def bus_is_broker():
    return BUS_KIND == "dbus-broker"


# How each bus words an AccessDenied of its own send policy (gmemctl tells
# these apart from gmemd's AccessDenied by the same words).
BUS_SEND_REFUSED = "Sender is not authorized to send message" if bus_is_broker() else "Rejected send message"


PR_SET_PDEATHSIG = 1


def die_with_parent():
    """preexec_fn: the daemons we start must not outlive a killed test."""
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def need_program(name, package):
    path = shutil.which(name)
    if not path:
        skip_file(f"{name} is not installed (apt-get install {package})", dependency=True)
    return path


def need_binary(var):
    path = os.environ.get(var)
    if not path:
        print(f"FAIL: ${var} is not set; run through 'meson test' or set it "
              f"(e.g. {var}=build/{'daemon/gmemd' if var == 'GMEMD' else 'client/gmemctl'})",
              file=sys.stderr)
        sys.exit(1)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        print(f"FAIL: {var}={path} does not exist or is not executable (not built yet?)",
              file=sys.stderr)
        sys.exit(1)
    return os.path.abspath(path)


class Bus:
    """One private bus of the kind GMEM_TEST_BUS names, started from conf, a
    configuration file whose <listen> is unix:path=sock, logging to
    TMP/dbus-daemon.log or TMP/dbus-broker.log."""

    @staticmethod
    def need_programs():
        """Skips the file (77) when this kind of bus cannot run here."""
        if bus_is_broker():
            need_program("dbus-broker-launch", "dbus-broker")
            need_program("unshare", "util-linux")
            if os.geteuid() != 0:
                skip_file("dbus-broker runs here in a private mount namespace (see "
                          "Bus.start_broker()), which needs root")
        else:
            need_program("dbus-daemon", "dbus-daemon")

    def __init__(self, tmp, conf, sock):
        self.proc = None
        self.journal_sock = None
        if bus_is_broker():
            self.start_broker(tmp, conf, sock)
        else:
            self.start_dbus_daemon(tmp, conf)

    def log_text(self):
        self.log.flush()
        with open(self.log.name, errors="replace") as f:
            return f.read()

    def pid(self):
        """The process that holds the bus's connections: dbus-daemon, or the
        dbus-broker that dbus-broker-launch runs as its only child."""
        pid = self.proc.pid
        if not bus_is_broker():
            return pid
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = f.read().split()
        if len(children) != 1:
            raise RuntimeError(f"dbus-broker-launch ({pid}) has children {children}, not one dbus-broker")
        return int(children[0])

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        if self.journal_sock:
            self.journal_sock.close()
            self.journal_sock = None

    def start_dbus_daemon(self, tmp, conf):
        self.log = open(os.path.join(tmp, "dbus-daemon.log"), "w")
        self.proc = subprocess.Popen(
            [shutil.which("dbus-daemon"), f"--config-file={conf}", "--nofork", "--print-address=1"],
            stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent)
        line = self.proc.stdout.readline().decode().strip()
        if not line:
            raise RuntimeError("dbus-daemon did not print its address:\n" + self.log_text())
        self.address = line

    def start_broker(self, tmp, conf, sock):
        """dbus-broker-launch without systemd. It takes its listening socket
        from socket activation (LISTEN_FDS, LISTEN_PID), so the Bus binds it
        and passes it as fd 3. It logs only to the journal, and gives up
        when /run/systemd/journal/socket cannot be connected to: it runs in
        a private mount namespace (hence root) whose /run is an empty tmpfs
        with that name pointing to a datagram socket of the Bus's, which
        copies each entry's MESSAGE to dbus-broker.log. Its connection to
        "the system bus" (DBUS_SYSTEM_BUS_ADDRESS, for activation through
        systemd) goes to the bus itself: there is no systemd, so nothing is
        activatable, as on dbus-daemon with no service files. Ready when it
        logs "Ready", after it has handed the socket to the broker."""
        self.log = open(os.path.join(tmp, "dbus-broker.log"), "w")
        journal = os.path.join(tmp, "journal")
        self.journal_sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.journal_sock.bind(journal)
        self.broker_ready = threading.Event()
        threading.Thread(target=self._journal_pump, args=(self.journal_sock,), daemon=True).start()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(sock)
        # Every uid connects, as to dbus-daemon's socket (which it makes
        # 0777) and to systemd's dbus.socket (SocketMode=0666).
        os.chmod(sock, 0o666)
        listener.listen(256)
        self.address = f"unix:path={sock}"

        def place_listener():
            os.dup2(listener.fileno(), 3)
            die_with_parent()

        script = ('mount -t tmpfs -o mode=0755 gmemtest-run /run && '
                  'mkdir -p /run/systemd/journal && ln -s "$0" /run/systemd/journal/socket && '
                  'LISTEN_PID=$$ exec "$@"')
        env = dict(os.environ, LISTEN_FDS="1", LISTEN_FDNAMES="dbus.socket",
                   DBUS_SYSTEM_BUS_ADDRESS=self.address)
        env.pop("NOTIFY_SOCKET", None)
        self.proc = subprocess.Popen(
            [shutil.which("unshare"), "--mount", "--propagation", "private", "/bin/sh", "-c", script, journal,
             shutil.which("dbus-broker-launch"), "--scope", "system", f"--config-file={conf}"],
            env=env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
            close_fds=False, preexec_fn=place_listener)
        listener.close()
        deadline = time.monotonic() + 20 * SLOW
        while not self.broker_ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                status = self.proc.poll()
                self.stop()
                raise RuntimeError(f"dbus-broker-launch did not get ready (status {status}):\n" +
                                   self.log_text())

    def _journal_pump(self, sock):
        """Copies the MESSAGE of every journal entry dbus-broker sends to the
        bus log (the native protocol: KEY=VALUE lines, or KEY, a 64-bit
        little-endian length and the value; entries too big for a datagram
        come as a memfd, which is read the same way)."""
        while True:
            try:
                data, anc, _flags, _addr = sock.recvmsg(1 << 17, socket.CMSG_SPACE(4 * 4))
            except OSError:
                return
            for level, kind, fds in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    for fd in memoryview(fds).cast("i"):
                        with os.fdopen(fd, "rb") as f:
                            f.seek(0)
                            data += f.read()
            fields = {}
            while data:
                nl = data.find(b"\n")
                if nl < 0:
                    break
                line = data[:nl]
                if b"=" in line:
                    key, value = line.split(b"=", 1)
                    data = data[nl + 1:]
                else:
                    key = line
                    size = int.from_bytes(data[nl + 1:nl + 9], "little")
                    value = data[nl + 9:nl + 9 + size]
                    data = data[nl + 10 + size:]
                fields[key.decode(errors="replace")] = value.decode(errors="replace")
            message = fields.get("MESSAGE", "")
            try:
                self.log.write(message.rstrip("\n") + "\n")
                self.log.flush()
            except ValueError:
                return
            if message.strip() == "Ready":
                self.broker_ready.set()


class World:
    """A private bus and one gmemd on it. direct_socket is where gmemd's
    direct socket is when start_gmemd(direct=True) asks for one, and what
    $GMEM_DIRECT_SOCKET names for every client started with env, so that no
    client ever finds the host's /run/gmemd/private; without direct=True
    nothing is there and gmemctl and libgmem use the bus."""

    def __init__(self):
        Bus.need_programs()
        self.gmemd = need_binary("GMEMD")
        self.gmemctl = need_binary("GMEMCTL")
        self.tmp = tempfile.mkdtemp(prefix="gmemtest.")
        os.chmod(self.tmp, 0o755)   # tests connect as other uids too
        self.direct_socket = os.path.join(self.tmp, "private")
        self.bus = None
        self.bus_proc = None
        self.gmemd_proc = None
        self.gmemd_status = None
        self.notify_sock = None
        self.notify_lock = threading.Lock()
        self.notify_messages = []
        self.conn = None

    # bus
    def start_bus(self):
        sock = os.path.join(self.tmp, "system_bus_socket")
        conf = os.path.join(self.tmp, "bus.conf")
        with open(conf, "w") as f:
            f.write(BUS_CONFIG.format(socket=sock))
        self.bus = Bus(self.tmp, conf, sock)
        self.bus_proc = self.bus.proc
        self.address = self.bus.address
        self.env = dict(os.environ)
        self.env["DBUS_SYSTEM_BUS_ADDRESS"] = self.address
        # Keep clients from wandering off to a session bus or a pager.
        self.env.pop("DBUS_SESSION_BUS_ADDRESS", None)
        self.env["SYSTEMD_PAGER"] = "cat"
        self.env["PAGER"] = "cat"
        self.env["SYSTEMD_COLORS"] = "0"
        self.env["SYSTEMD_LOG_COLOR"] = "0"
        self.env["GMEM_DIRECT_SOCKET"] = self.direct_socket
        self.conn = dbus.bus.BusConnection(self.address)

    def bus_pid(self):
        """The process that holds the bus's connections."""
        return self.bus.pid()

    # daemon
    def start_gmemd(self, extra_args=(), notify=True, direct=False):
        """Starts gmemd and waits until it owns the bus name. notify=False:
        without $NOTIFY_SOCKET, as when no service manager runs it.
        direct=True: with --direct-socket=direct_socket, and waits until
        that accepts connections too."""
        self.notify_path = os.path.join(self.tmp, "notify")
        if self.notify_sock:
            self.notify_sock.close()
        if os.path.exists(self.notify_path):
            os.unlink(self.notify_path)
        self.notify_messages = []
        self.notify_sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify_sock.bind(self.notify_path)
        self.notify_sock.setblocking(False)
        threading.Thread(target=self._notify_pump, args=(self.notify_sock,), daemon=True).start()
        env = dict(self.env)
        if notify:
            env["NOTIFY_SOCKET"] = self.notify_path
        else:
            env.pop("NOTIFY_SOCKET", None)
        self.gmemd_log_path = os.path.join(self.tmp, "gmemd.log")
        self.gmemd_log = open(self.gmemd_log_path, "w")
        # valgrind makes system calls of its own that the daemon's filter does not allow.
        cmd = WRAPPER + [self.gmemd] + (["--no-sandbox"] if WRAPPER else []) + list(extra_args)
        if direct:
            cmd.append(f"--direct-socket={self.direct_socket}")
        self.gmemd_proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL,
                                           stdout=self.gmemd_log, stderr=subprocess.STDOUT,
                                           preexec_fn=die_with_parent)
        deadline = time.monotonic() + 20 * SLOW
        while time.monotonic() < deadline:
            if self.gmemd_proc.poll() is not None:
                raise RuntimeError(f"gmemd exited with status {self.gmemd_proc.returncode} "
                                   f"before serving:\n{self.gmemd_log_text()}")
            if self.conn.name_has_owner(BUS_NAME) and (not direct or self.direct_socket_accepts()):
                self.drain_notify()
                return
            time.sleep(0.05)
        raise RuntimeError(f"gmemd did not take {BUS_NAME}"
                           + (f" and listen on {self.direct_socket}" if direct else "")
                           + f" within {20 * SLOW}s:\n{self.gmemd_log_text()}")

    def direct_socket_accepts(self):
        """Whether something listens on direct_socket (a plain connect, closed at once)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            try:
                s.connect(self.direct_socket)
                return True
            except OSError:
                return False

    def direct_connection(self):
        """A python3-dbus peer connection to gmemd's direct socket (no bus:
        call_blocking() with bus_name None). libdbus authenticates lazily and
        sends no fds before it has, so the connection is pinged once."""
        conn = dbus.connection.Connection(f"unix:path={self.direct_socket}")
        conn.call_blocking(None, ROOT_PATH, "org.freedesktop.DBus.Peer", "Ping", "", [], timeout=CALL_TIMEOUT)
        return conn

    def start_gmemd_with_policy(self, policy):
        """Writes policy (a dict) to TMP/policy.json, starts gmemd with it and
        returns the file's path (a test may rewrite it and reload)."""
        path = os.path.join(self.tmp, "policy.json")
        with open(path, "w") as f:
            json.dump(policy, f)
        self.start_gmemd(["--policy=" + path])
        return path

    def drain_notify(self):
        """Reads what gmemd told the service manager so far. Fds it hands to the
        fd store (FDSTORE=1) are closed: this world keeps no store."""
        sock = self.notify_sock
        if not sock:
            return self.notify_messages
        # Never wait long for the reader thread: a lost race only delays a message.
        if not self.notify_lock.acquire(timeout=2):
            return self.notify_messages
        try:
            while True:
                try:
                    data, fds, _flags, _addr = socket.recv_fds(sock, 65536, 64)
                except (BlockingIOError, OSError, ValueError):
                    break
                for fd in fds:
                    os.close(fd)
                self.notify_messages.extend(data.decode(errors="replace").splitlines())
        finally:
            self.notify_lock.release()
        return self.notify_messages

    def _notify_pump(self, sock):
        # A datagram queue holds a handful of messages: a service manager that
        # stops reading blocks the daemon in sd_notify(). Keep reading.
        while self.notify_sock is sock:
            try:
                select.select([sock], [], [], 0.1)
            except (OSError, ValueError):
                return
            self.drain_notify()

    def gmemd_pid(self):
        """The pid of the process that owns the bus name (gmemd itself, also
        under valgrind, which runs the program in its own process)."""
        return int(self.conn.call_blocking("org.freedesktop.DBus", "/org/freedesktop/DBus",
                                           "org.freedesktop.DBus", "GetConnectionUnixProcessID",
                                           "s", [BUS_NAME]))

    def gmemd_log_text(self):
        try:
            self.gmemd_log.flush()
            with open(self.gmemd_log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return "(no log)"

    def stop_gmemd(self, sig=signal.SIGTERM):
        """Stops gmemd with sig and returns its exit status (negative: killed)."""
        p = self.gmemd_proc
        if p is None:
            return self.gmemd_status
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout=30 * SLOW)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                self.gmemd_status = "did not exit within %ds of %s" % (30 * SLOW, sig.name)
                self.gmemd_proc = None
                return self.gmemd_status
        self.gmemd_status = p.returncode
        self.gmemd_proc = None
        self.drain_notify()
        return self.gmemd_status

    def stop(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
            self.conn = None
        if self.bus is not None:
            self.bus.stop()
            self.bus = None
            self.bus_proc = None
        if self.notify_sock:
            self.notify_sock.close()
            self.notify_sock = None

    def cleanup(self):
        if os.environ.get("GMEMTEST_KEEP"):
            print(f"kept {self.tmp}", file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


WORLD = None


# --- assertions and helpers for test cases ----------------------------------

def dbus_options(opts):
    """Python dict -> a{sv} with the contract's types for known keys."""
    types = {
        "backend": dbus.String, "owner": dbus.String,
        "hugepage_size": dbus.UInt64, "offset": dbus.UInt64, "length": dbus.UInt64,
        "populate": dbus.Boolean, "persistent": dbus.Boolean, "allocate": dbus.Boolean,
        "leader_pid": dbus.UInt32, "uid": dbus.UInt32,
    }
    out = {}
    for k, v in (opts or {}).items():
        if isinstance(v, (dbus.String, dbus.UInt64, dbus.UInt32, dbus.Int32,
                          dbus.Int64, dbus.Boolean, dbus.Byte, dbus.Double,
                          dbus.Array, dbus.Dictionary, dbus.Struct, dbus.ObjectPath)):
            out[k] = v
        elif k in types:
            out[k] = types[k](v)
        else:
            out[k] = v
    return dbus.Dictionary(out, signature="sv")


# calls_as()'s client: runs a list of calls as one connection, over the bus
# or direct, and prints one JSON result per call. Arguments come as JSON
# and take their D-Bus types from the signature; a returned fd is reported
# by its access mode.
CALLS_CLIENT = r"""
import dbus, dbus.bus, dbus.connection, fcntl, json, os, sys

address, direct = sys.argv[1], sys.argv[2] == "direct"
calls = json.loads(sys.stdin.read())
conn = dbus.connection.Connection(address) if direct else dbus.bus.BusConnection(address)
OPTS = {"hugepage_size": dbus.UInt64, "offset": dbus.UInt64, "length": dbus.UInt64, "leader_pid": dbus.UInt32,
        "uid": dbus.UInt32, "populate": dbus.Boolean, "persistent": dbus.Boolean, "allocate": dbus.Boolean}

def split(sig):
    out, i = [], 0
    while i < len(sig):
        j, depth = i, 0
        while True:
            c = sig[j]
            depth += c in "({"
            depth -= c in ")}"
            j += 1
            if depth == 0 and c != "a":
                break
        out.append(sig[i:j])
        i = j
    return out

def typed(t, v):
    conv = {"t": dbus.UInt64, "u": dbus.UInt32, "o": dbus.ObjectPath, "s": dbus.String, "b": dbus.Boolean}
    if t == "a{sv}":
        return dbus.Dictionary({k: OPTS.get(k, lambda x: x)(x) for k, x in v.items()}, signature="sv")
    return conv[t](v) if t in conv else v

def plain(v):
    if isinstance(v, dbus.types.UnixFd):
        fd = v.take()
        mode = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
        os.close(fd)
        return {"fd_accmode": mode}
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in sorted(v.items())}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, (bool, dbus.Boolean)):
        return bool(v)
    if isinstance(v, int):
        return int(v)
    return str(v)

out = []
for path, iface, method, sig, args in calls:
    args = [typed(t, a) for t, a in zip(split(sig), args)]
    try:
        r = conn.call_blocking(None if direct else "org.gmemd.Broker1", path, iface, method, sig, args,
                               timeout=60)
        out.append({"ok": plain(r)})
    except dbus.exceptions.DBusException as e:
        out.append({"error": e.get_dbus_name(), "message": e.get_dbus_message()})
print(json.dumps(out))
"""


class Result:
    def __init__(self, cmd, cp):
        self.cmd = cmd
        self.rc = cp.returncode
        self.out = cp.stdout
        self.err = cp.stderr

    def __str__(self):
        return (f"$ {' '.join(shlex.quote(c) for c in self.cmd)}\n"
                f"exit {self.rc}\n--- stdout\n{self.out}--- stderr\n{self.err}")


class Monitor:
    """Collects lines of a long-running client (busctl monitor, gmemctl monitor)."""

    def __init__(self, cmd, env):
        self.cmd = cmd
        self.lines = []
        self.lock = threading.Lock()
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, bufsize=1)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.lock:
                self.lines.append(line.rstrip("\n"))

    def snapshot(self):
        with self.lock:
            return list(self.lines)

    def wait_for(self, pred, timeout=10, poke=None):
        """Waits until pred(line) holds for some line; calls poke() between
        polls (used to provoke a signal until the monitor has started)."""
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:
            for line in self.snapshot():
                if pred(line):
                    return line
            if self.proc.poll() is not None:
                break
            if poke:
                poke()
            time.sleep(0.1)
        return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.thread.join(timeout=5)
        err = self.proc.stderr.read()
        self.proc.stderr.close()
        self.proc.stdout.close()
        return err


class GmemTestCase(unittest.TestCase):
    """Base class: one World per file, unique names per test, cleanups that
    leave the daemon empty for the next test."""

    maxDiff = None
    _counter = 0

    @property
    def world(self):
        return WORLD

    @property
    def conn(self):
        return WORLD.conn

    def setUp(self):
        self.assertIsNotNone(WORLD.gmemd_proc, "gmemd is not running (it exited earlier)")
        self.assertIsNone(WORLD.gmemd_proc.poll(),
                          f"gmemd exited with status {WORLD.gmemd_proc.returncode} "
                          f"before this test:\n{WORLD.gmemd_log_text()}")
        self._fds = []

    def tearDown(self):
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass

    def skip_or_fail(self, reason, *, dependency):
        """Skips this test with reason, or fails it when reason is a missing
        dependency that tools/test installs (dependency=True) and
        GMEM_TEST_REQUIRE_DEPS=1. Every skip site of a test says which it is."""
        if dependency and REQUIRE_DEPS:
            self.fail(required_text(reason))
        self.skipTest(reason)

    def lock_hugepages(self, exclusive=True):
        """Until the test ends, no other test file changes vm.nr_hugepages
        (exclusive=False: for a test that only reads it)."""
        import fcntl
        if getattr(self, "_hugepages_lock", None):
            fcntl.flock(self._hugepages_lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            return
        self._hugepages_lock = open(HUGEPAGES_LOCK, "a")
        fcntl.flock(self._hugepages_lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)

        def unlock():
            self._hugepages_lock.close()
            self._hugepages_lock = None
        self.addCleanup(unlock)

    def reserve_hugepages(self, n):
        """At least n huge pages of the default size free for this test. It
        holds a lock that other test files wait for, and as root raises
        vm.nr_hugepages by what is missing, putting the old value back when
        the test ends. Skips with the reason when the kernel refuses (not
        root, or not enough memory for them)."""
        self.lock_hugepages()
        have = hugepages_available()
        if have >= n:
            return
        try:
            with open(NR_HUGEPAGES) as f:
                old = int(f.read())
            with open(NR_HUGEPAGES, "w") as f:
                f.write(str(old + n - have))
        except OSError as e:
            self.skip_or_fail(f"fewer than {n} huge pages are free ({have}) and {NR_HUGEPAGES} cannot be "
                              f"raised: {e}", dependency=False)

        def put_back():
            with open(NR_HUGEPAGES, "w") as f:
                f.write(str(old))
        # Cleanups run last in, first out: the old value is back before the lock goes.
        self.addCleanup(put_back)
        if hugepages_available() < n:
            self.skip_or_fail(f"the kernel found only {hugepages_available()} of {n} free huge pages for "
                              f"{NR_HUGEPAGES}", dependency=False)

    def check_daemon_alive(self):
        p = WORLD.gmemd_proc
        self.assertTrue(p is not None and p.poll() is None,
                        f"gmemd died:\n{WORLD.gmemd_log_text()}")

    # names
    def uniq(self, kind="r"):
        GmemTestCase._counter += 1
        test = self._testMethodName.replace("test_", "")[:40]
        test = re.sub(r"[^A-Za-z0-9_.-]", "-", test)
        return f"{kind}-{test}-{GmemTestCase._counter}"

    # raw calls
    def call(self, path, iface, method, sig="", *args, timeout=None):
        return self.conn.call_blocking(BUS_NAME, path, iface, method, sig, list(args),
                                       timeout=timeout or CALL_TIMEOUT)

    def mgr(self, method, sig="", *args):
        return self.call(ROOT_PATH, MANAGER_IFACE, method, sig, *args)

    def get_prop(self, path, iface, prop):
        return self.call(path, PROPS_IFACE, "Get", "ss", iface, prop)

    def get_all(self, path, iface):
        return self.call(path, PROPS_IFACE, "GetAll", "s", iface)

    def mgr_prop(self, prop):
        return self.get_prop(ROOT_PATH, MANAGER_IFACE, prop)

    def region_prop(self, name, prop):
        return self.get_prop(region_path(name), REGION_IFACE, prop)

    def vm_prop(self, name, prop):
        return self.get_prop(vm_path(name), VM_IFACE, prop)

    def keep_fd(self, fd):
        self._fds.append(fd)
        return fd

    def take_fd(self, unixfd):
        self.assertIsInstance(unixfd, dbus.types.UnixFd,
                              f"expected a file descriptor (h), got {unixfd!r}")
        return self.keep_fd(unixfd.take())

    def close_fd(self, fd):
        if fd in self._fds:
            self._fds.remove(fd)
        os.close(fd)

    # model helpers with cleanups
    def create_region(self, size=4 * MiB, name=None, cleanup=True, **opts):
        name = name or self.uniq("r")
        path = self.mgr("CreateRegion", "sta{sv}", name, dbus.UInt64(size), dbus_options(opts))
        self.assertEqual(str(path), region_path(name),
                         f"CreateRegion('{name}') returned an unexpected object path")
        if cleanup:
            self.addCleanup(self._quietly, "DestroyRegion", "s", name)
        return name

    def register_vm(self, name=None, cleanup=True, **opts):
        name = name or self.uniq("vm")
        path = self.mgr("RegisterVm", "sa{sv}", name, dbus_options(opts))
        self.assertEqual(str(path), vm_path(name),
                         f"RegisterVm('{name}') returned an unexpected object path")
        if cleanup:
            self.addCleanup(self._quietly, "UnregisterVm", "s", name)
        return name

    def spawn_leader(self):
        """A stand-in hypervisor process (killed and reaped at cleanup). Its
        output goes nowhere, so it never holds the test runner's pipes."""
        p = subprocess.Popen(["sleep", "600"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def reap():
            if p.poll() is None:
                p.kill()
            p.wait()
        self.addCleanup(reap)
        return p

    def skip_if_no_pidfd(self, error_text):
        """valgrind 3.19 does not know pidfd_open (ENOSYS): leader tracking
        cannot work under it. Without a wrapper ENOSYS is a real failure."""
        if WRAPPER and ("ENOSYS" in error_text or "not implemented" in error_text.lower()):
            self.skip_or_fail(f"gmemd cannot watch processes under {os.path.basename(WRAPPER[0])} "
                              f"(pidfd_open: ENOSYS): {error_text.strip()}", dependency=False)

    def register_leader_vm(self, leader_pid, **opts):
        try:
            return self.register_vm(leader_pid=leader_pid, **opts)
        except dbus.exceptions.DBusException as e:
            self.skip_if_no_pidfd(f"{e.get_dbus_name()}: {e.get_dbus_message()}")
            raise

    def attach(self, vm, region, access="rw", **opts):
        return self.take_fd(self.mgr("Attach", "sssa{sv}", vm, region, access, dbus_options(opts)))

    def get_fd(self, vm, region):
        return self.take_fd(self.mgr("GetFd", "ss", vm, region))

    def begin_migration(self, src, dst, **opts):
        path, fds = self.mgr("BeginMigration", "ssa{sv}", src, dst, dbus_options(opts))
        self.addCleanup(self._quietly_path, path, "AbortMigration")
        taken = {str(r): self.take_fd(fd) for r, fd in fds}
        return str(path), taken

    def _quietly(self, method, sig, *args):
        try:
            self.mgr(method, sig, *args)
        except dbus.exceptions.DBusException:
            pass

    def _quietly_path(self, path, method):
        try:
            self.mgr(method, "o", dbus.ObjectPath(path))
        except dbus.exceptions.DBusException:
            pass

    def views_of_vm(self, vm):
        return sorted(tuple(str(x) for x in v) for v in self.vm_prop(vm, "Views"))

    def views_of_region(self, region):
        return sorted(tuple(str(x) for x in v) for v in self.region_prop(region, "Views"))

    def region_names(self):
        return sorted(str(r[0]) for r in self.mgr("ListRegions"))

    def vm_names(self):
        return sorted(str(v[0]) for v in self.mgr("ListVms"))

    # errors
    def assertGmemError(self, name, func, *args, contains=None, **kwargs):
        """func(*args) must fail with org.gmemd.Broker1.Error.<name> (or a full
        error name) and a non-empty message; contains: substrings the message
        must name."""
        full = name if "." in name else ERROR_PREFIX + name
        try:
            r = func(*args, **kwargs)
        except dbus.exceptions.DBusException as e:
            got = e.get_dbus_name()
            msg = e.get_dbus_message() or ""
            self.assertEqual(got, full, f"wrong error name (message: {msg!r})")
            self.assertTrue(msg.strip(), f"{got} came with an empty message")
            for c in ([contains] if isinstance(contains, str) else (contains or [])):
                self.assertIn(str(c), msg, f"the {name} message should name {c!r}")
            return msg
        self.fail(f"expected {full}, but the call succeeded and returned {r!r}")

    def assertMgrError(self, name, method, sig, *args, contains=None):
        return self.assertGmemError(name, self.mgr, method, sig, *args, contains=contains)

    # subprocess clients
    def run_cmd(self, cmd, expect=0, input=None, env=None, timeout=None, **kw):
        cp = subprocess.run(cmd, env=env or WORLD.env, input=input, capture_output=True,
                            text=True, timeout=timeout or 30 * SLOW,
                            stdin=None if input is not None else subprocess.DEVNULL, **kw)
        res = Result(cmd, cp)
        if expect is not None:
            self.assertEqual(res.rc, expect, f"unexpected exit status:\n{res}")
        return res

    def gmemctl(self, *args, expect=0, **kw):
        return self.run_cmd([WORLD.gmemctl] + list(args), expect=expect, **kw)

    def busctl(self, *args, expect=0, **kw):
        return self.run_cmd(["busctl", "--system", "--no-pager"] + list(args), expect=expect, **kw)

    def gdbus(self, *args, expect=0, **kw):
        return self.run_cmd(["gdbus"] + list(args), expect=expect, **kw)

    def gdbus_call(self, path, method, *args, expect=0, **kw):
        return self.gdbus("call", "--system", "--dest", BUS_NAME, "--object-path", path,
                          "--method", method, *args, expect=expect, **kw)

    def wait_until(self, pred, what, timeout=10):
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:
            if pred():
                return
            time.sleep(0.05)
        self.fail(f"timed out after {timeout * SLOW}s waiting for {what}")

    def calls_as(self, uid, calls, gids=(), direct=False):
        """Makes calls, a list of (path, interface, method, signature, args),
        in a process of its own under uid (its primary group, and gids as
        supplementary groups) over one connection: the bus, or with
        direct=True gmemd's direct socket. Returns one dict per call:
        {"ok": value} (fds as {"fd_accmode": mode}) or {"error", "message"}."""
        import pwd
        try:
            gid = pwd.getpwuid(uid).pw_gid
        except KeyError:
            gid = uid
        p = subprocess.run([sys.executable, "-c", CALLS_CLIENT,
                            f"unix:path={WORLD.direct_socket}" if direct else WORLD.address,
                            "direct" if direct else "bus"],
                           input=json.dumps([list(c) for c in calls]), user=uid, group=gid,
                           extra_groups=list(gids), env=WORLD.env, capture_output=True, text=True,
                           timeout=60 * SLOW, cwd="/")
        self.assertEqual(p.returncode, 0, f"client under uid {uid} ({'direct' if direct else 'bus'}) "
                                          f"failed:\n{p.stderr}")
        return json.loads(p.stdout)

    def gmemd_fd_count(self):
        """gmemd's open fds, after a round trip: what it does when idle
        (opening a spare view file, region-spare.h) is done by then."""
        self.mgr("ListVms")
        return len(os.listdir(f"/proc/{WORLD.gmemd_pid()}/fd"))

    def with_spare(self, vm, region):
        """An attach and detach of region for vm: from then on gmemd keeps a
        spare view file of a memfd region, and fd counts include it."""
        os.close(self.attach(vm, region, "rw"))
        self.mgr("Detach", "ss", vm, region)


def find_in_json(obj, needle):
    """True if the string needle appears as a value anywhere in obj."""
    if isinstance(obj, str):
        return obj == needle
    if isinstance(obj, dict):
        return any(find_in_json(v, needle) for v in obj.values())
    if isinstance(obj, list):
        return any(find_in_json(v, needle) for v in obj)
    return False


def main(start_daemon=True):
    """Runs the calling file's tests in a fresh World; exits with 0, 1 or 77."""
    global WORLD
    import __main__

    def on_sigterm(signum, frame):
        # meson's timeout: unwind through the cleanups below (unittest lets
        # KeyboardInterrupt through, unlike SystemExit).
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_sigterm)
    WORLD = World()
    status = 1
    ok = False
    try:
        WORLD.start_bus()
        if start_daemon:
            WORLD.start_gmemd()
        print(f"private {BUS_KIND} {WORLD.address}; gmemd {WORLD.gmemd}"
              + (f" under {' '.join(WRAPPER)}" if WRAPPER else ""), file=sys.stderr)
        runner = unittest.TextTestRunner(verbosity=2, resultclass=GmemTestResult)
        prog = unittest.main(module=__main__, argv=[sys.argv[0]] + sys.argv[1:],
                             exit=False, testRunner=runner)
        ok = prog.result.wasSuccessful()
        # Whoever started it (main or the file's own fixture), a gmemd still
        # running now must exit cleanly: that is where sanitizers and
        # valgrind report leaks.
        if WORLD.gmemd_proc is not None:
            st = WORLD.stop_gmemd(signal.SIGTERM)
            if st != 0:
                print(f"FAIL: gmemd exited with status {st} on SIGTERM "
                      f"(99 = valgrind found errors or leaks)", file=sys.stderr)
                ok = False
            else:
                print("gmemd exited 0 on SIGTERM", file=sys.stderr)
        log = WORLD.gmemd_log_text() if WORLD.gmemd_log_path else ""
        if WRAPPER:
            for line in log.splitlines():
                if "ERROR SUMMARY" in line or "definitely lost" in line or "indirectly lost" in line:
                    print(f"gmemd: {line}", file=sys.stderr)
        if not ok or os.environ.get("GMEMTEST_VERBOSE"):
            print("----- gmemd log -----\n" + log + "----- end of gmemd log -----",
                  file=sys.stderr)
        status = 0 if ok else 1
    except (Exception, KeyboardInterrupt):
        traceback.print_exc()
        status = 1
    finally:
        try:
            if WORLD.gmemd_proc is not None:
                WORLD.stop_gmemd(signal.SIGKILL)
        finally:
            WORLD.stop()
            WORLD.cleanup()
    sys.exit(status)


World.gmemd_log_path = None
