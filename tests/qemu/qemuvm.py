# SPDX-License-Identifier: LGPL-2.1-or-later
"""
qemuvm — QEMU guests whose RAM gmemd holds, and their migration.

Shared by the qemu suite (test-migration.py) and the migration benchmark
(tests/bench/bench-migration). It knows how to

  * find a QEMU (the system's, or the ones install-qemu-backports provides
    from bookworm-backports and trixie-backports: see find_qemu) and
    Debian's 6.1 cloud kernel that tests/vm/install-deps unpacks into
    /var/cache/gmemd-vm;
  * build the guest: guest-init.c, linked statically, is the whole initramfs
    (written here as a newc cpio with /dev/console, so no root and no cpio
    tool are needed). It fills most of RAM with non-zero pseudo-random data,
    then prints a heartbeat with a counter and a checksum (see guest-init.c);
  * start QEMU (TCG, q35, no default devices, serial console to a file, QMP
    on a UNIX socket) with its RAM either from a file descriptor it inherits
    (memory-backend-file,share=on,mem-path=/proc/self/fd/N: a gmemd view) or
    anonymous (QEMU's default), possibly through gmemctl --exec;
  * talk QMP, migrate over a UNIX socket and read the statistics, optionally
    counting every byte of the stream through a relay.

QEMU 7.2 (bookworm) needs -cpu max,-cx16 (its TCG cmpxchg16b corrupts
guests under load, see tests/vm/run-vm); it is harmless on 10.0 and 11.1.
"""

import ctypes
import glob
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MiB = 1 << 20
GiB = 1 << 30


class Unavailable(Exception):
    """Something the guest needs is missing: the caller skips with this reason."""


# --- what the host has --------------------------------------------------------

def vm_cache():
    return os.environ.get("GMEM_VM_CACHE", "/var/cache/gmemd-vm")


def find_qemu():
    """(path, extra arguments, (major, minor, micro)) of the QEMU to use:
    the one unpacked under GMEM_QEMU_ROOT (with its own firmware), or with
    GMEM_QEMU_BACKPORTS=1 the one tests/qemu/install-qemu-backports unpacks
    from bookworm-backports into the vm cache (10.0), or with
    GMEM_QEMU_TRIXIE_BACKPORTS=1 the one it installs from trixie-backports
    in the trixie build root (11.1), run through the wrapper it writes
    (which passes the root's loader, libraries, firmware and modules), or
    GMEM_QEMU, or qemu-system-x86_64 on PATH."""
    root = os.environ.get("GMEM_QEMU_ROOT")
    if not root and os.environ.get("GMEM_QEMU_BACKPORTS") == "1":
        root = os.path.join(vm_cache(), "qemu-backports")
    extra = []
    if root:
        path = os.path.join(root, "usr/bin/qemu-system-x86_64")
        if not os.access(path, os.X_OK):
            raise Unavailable(f"no QEMU unpacked in {root} (tests/qemu/install-qemu-backports "
                              f"unpacks bookworm-backports' one)")
        # Its own firmware first; the system's /usr/share/qemu is searched after.
        for d in ("usr/share/qemu", "usr/share/seabios"):
            extra += ["-L", os.path.join(root, d)]
    elif os.environ.get("GMEM_QEMU_TRIXIE_BACKPORTS") == "1":
        path = os.path.join(vm_cache(), "qemu-trixie-backports", "qemu-system-x86_64")
        if not os.access(path, os.X_OK):
            raise Unavailable(f"no {path} (tests/qemu/install-qemu-backports installs "
                              f"trixie-backports' QEMU in the trixie build root and writes it)")
    else:
        path = os.environ.get("GMEM_QEMU") or shutil.which("qemu-system-x86_64")
        if not path or not os.access(path, os.X_OK):
            raise Unavailable("qemu-system-x86_64 not found (package qemu-system-x86; "
                              "tests/vm/install-deps installs it)")
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    m = re.search(r"version (\d+)\.(\d+)\.(\d+)", out.stdout)
    if out.returncode != 0 or not m:
        raise Unavailable(f"{path} --version failed: {out.stdout}{out.stderr}")
    return path, extra, tuple(int(x) for x in m.groups())


def find_kernel(series="6.1"):
    """The newest Debian cloud kernel image of a series in the vm suite's cache."""
    cache = vm_cache()
    found = sorted(glob.glob(os.path.join(cache, f"{series}.*-cloud-amd64", "vmlinuz")),
                   key=lambda p: [int(x) if x.isdigit() else x
                                  for x in re.split(r"(\d+)", p)])
    if not found:
        raise Unavailable(f"no {series} cloud kernel image in {cache} "
                          f"(tests/vm/install-deps unpacks it there)")
    if not os.access(found[-1], os.R_OK):
        raise Unavailable(f"cannot read {found[-1]}")
    return found[-1]


def _cpio_entry(name, mode, data=b"", rdev=(0, 0), ino=[100]):
    ino[0] += 1
    fields = (ino[0], mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0)
    b = ("070701" + "".join("%08X" % v for v in fields)).encode() + name.encode() + b"\0"
    b += b"\0" * (-len(b) % 4)
    return b + data + b"\0" * (-len(data) % 4)


def find_cc():
    """The C compiler that builds guest-init.c statically."""
    cc = os.environ.get("CC", "cc")
    if not shutil.which(cc):
        raise Unavailable(f"no C compiler ({cc})")
    if not os.path.exists("/usr/lib/x86_64-linux-gnu/libc.a"):
        raise Unavailable("no static libc (package libc6-dev)")
    return cc


def build_initramfs(workdir):
    """Compiles guest-init.c statically and packs it as /init; returns the path."""
    cc = find_cc()
    init = os.path.join(workdir, "guest-init")
    cp = subprocess.run([cc, "-static", "-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror",
                         "-pthread", "-o", init, os.path.join(HERE, "guest-init.c")],
                        capture_output=True, text=True)
    if cp.returncode != 0:
        raise RuntimeError(f"cannot build guest-init.c:\n{cp.stdout}{cp.stderr}")
    with open(init, "rb") as f:
        data = f.read()
    out = os.path.join(workdir, "initramfs.cpio")
    with open(out, "wb") as f:
        f.write(_cpio_entry("dev", 0o040755)
                + _cpio_entry("dev/console", 0o020600, rdev=(5, 1))
                + _cpio_entry("init", 0o100755, data)
                + _cpio_entry("TRAILER!!!", 0))
    return out


# --- QMP ----------------------------------------------------------------------

class QmpError(Exception):
    pass


class Qmp:
    """A blocking QMP client; events are kept in self.events."""

    def __init__(self, path, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        # No QMP command here takes long; a QEMU that stops answering is a failure.
        self.sock.settimeout(60)
        self.file = self.sock.makefile("rwb", buffering=0)
        self.events = []
        greeting = self._read()
        if "QMP" not in greeting:
            raise QmpError(f"not a QMP greeting: {greeting}")
        self.version = greeting["QMP"]["version"]["qemu"]
        self.execute("qmp_capabilities")

    def _read(self):
        line = self.file.readline()
        if not line:
            raise QmpError("QEMU closed the QMP connection")
        return json.loads(line)

    def execute(self, cmd, **args):
        msg = {"execute": cmd}
        if args:
            msg["arguments"] = args
        self.file.write(json.dumps(msg).encode() + b"\n")
        while True:
            r = self._read()
            if "event" in r:
                self.events.append(r)
                continue
            if "error" in r:
                raise QmpError(f"{cmd}: {r['error'].get('desc', r['error'])}")
            return r.get("return")

    def close(self):
        try:
            self.file.close()
            self.sock.close()
        except OSError:
            pass


# --- one QEMU -------------------------------------------------------------------

def _die_with_parent():
    """preexec_fn: a QEMU must not outlive a killed test or benchmark (the
    signal survives gmemctl's and sh's exec)."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class Guest:
    """A QEMU process: its console log, its QMP socket, its heartbeats."""

    HB = re.compile(r"^hb (\d+) sum=([0-9a-f]+) bad=(\d+) checked=(\d+) t=(\d+)$")

    def __init__(self, name, argv, workdir, env=None, pass_fds=()):
        self.name = name
        self.serial = os.path.join(workdir, f"{name}.console")
        self.qmp_path = os.path.join(workdir, f"{name}.qmp")
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.argv = argv
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(argv, env=env, pass_fds=pass_fds, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     preexec_fn=_die_with_parent)
        self.qmp = None

    def connect(self, timeout=30):
        try:
            self.qmp = Qmp(self.qmp_path, timeout)
        except Exception:
            raise RuntimeError(f"{self.name}: no QMP: {self.diagnose()}")
        return self.qmp

    def diagnose(self):
        st = self.proc.poll()
        return (f"QEMU {'exited with ' + str(st) if st is not None else 'running'}; "
                f"argv: {shlex.join(self.argv)}\n--- log\n{self.log_text()}"
                f"--- console tail\n{''.join(self.console_lines()[-15:])}")

    def log_text(self):
        self.log.flush()
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def console_text(self):
        try:
            with open(self.serial, "rb") as f:
                return f.read().decode(errors="replace").replace("\r", "")
        except OSError:
            return ""

    def console_lines(self):
        return [l + "\n" for l in self.console_text().split("\n")]

    def heartbeats(self):
        """[(counter, sum, bad, checked)] of the complete heartbeat lines."""
        out = []
        for line in self.console_text().split("\n")[:-1]:
            m = self.HB.match(line.strip())
            if m:
                out.append(tuple(int(m.group(i), 16 if i == 2 else 10) for i in range(1, 5)))
        return out

    def wait_console(self, pattern, timeout):
        """Waits for a console line matching pattern; returns the match.
        Only whole lines count: a line still being written could match with
        a number cut short (a sum of 0x6cf for 0x6cf59d5512ccaf93)."""
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.console_text()
            m = rx.search(text[:text.rfind("\n") + 1])
            if m:
                return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"{self.name}: no console line /{pattern}/ within {timeout}s: "
                           f"{self.diagnose()}")

    def wait_beats(self, n, timeout):
        """Waits until n more heartbeats than now have been printed."""
        start = len(self.heartbeats())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.heartbeats()) >= start + n:
                return self.heartbeats()
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"{self.name}: {n} heartbeats did not come within {timeout}s: "
                           f"{self.diagnose()}")

    def stop(self):
        if self.qmp:
            try:
                self.qmp.execute("quit")
            except Exception:
                pass
            self.qmp.close()
            self.qmp = None
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def rss(self):
        """Resident memory of the QEMU process in bytes (anonymous + shared)."""
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0


def qemu_argv(qemu, kernel, initrd, mem, workdir, name, mem_fd_expr=None, incoming=None,
              smp=1, seed=0x5eed, aux_ram_share=False, cpr_incoming=None, extra=(),
              maxmem=None, slots=0, append=""):
    """QEMU's command line. mem_fd_expr: the text after /proc/self/fd/ for a
    file-backed, shared RAM (a number, or "$GMEM_FD" for a shell to expand),
    else RAM is QEMU's default anonymous memory. incoming: "defer" or a URI.
    aux_ram_share: QEMU 10's -machine aux-ram-share=on (ROMs in memfds that
    cpr-transfer hands over); cpr_incoming: the UNIX socket of cpr-transfer's
    cpr channel. maxmem and slots: room for memory hot-plug (-m SIZE,slots=N,
    maxmem=MAX). append: more of the kernel command line."""
    path, qemu_extra, _ = qemu
    m = f"{mem // MiB}M"
    if maxmem:
        m += f",slots={slots},maxmem={maxmem // MiB}M"
    argv = [path] + qemu_extra + [
        "-accel", "tcg", "-cpu", "max,-cx16", "-smp", str(smp), "-m", m,
        "-nodefaults", "-display", "none", "-no-reboot",
        "-serial", f"file:{os.path.join(workdir, name + '.console')}",
        "-qmp", f"unix:{os.path.join(workdir, name + '.qmp')},server=on,wait=off",
        "-kernel", kernel, "-initrd", initrd,
        "-append", f"console=ttyS0 panic=-1 quiet gmemseed={seed:x}" + (" " + append if append else ""),
    ]
    machine = "q35"
    if mem_fd_expr is not None:
        argv += ["-object", f"memory-backend-file,id=ram,size={mem // MiB}M,"
                            f"mem-path=/proc/self/fd/{mem_fd_expr},share=on"]
        machine += ",memory-backend=ram"
    if aux_ram_share:
        machine += ",aux-ram-share=on"
    argv += ["-machine", machine]
    if incoming:
        argv += ["-incoming", incoming]
    if cpr_incoming:
        argv += ["-incoming", json.dumps({"channel-type": "cpr", "addr": {
            "transport": "socket", "type": "unix", "path": cpr_incoming}})]
    return argv + list(extra)


def through_shell(argv):
    """argv as a command for gmemctl --exec: sh expands $GMEM_FD (and only
    it) once gmemctl has set it, then execs QEMU, so QEMU's pid is the pid
    gmemctl was started with."""
    script = "exec " + " ".join(shlex.quote(a) for a in argv)
    # shlex.quote puts a word containing $GMEM_FD in single quotes: close
    # them around the variable so that the shell expands it.
    script = script.replace("$GMEM_FD", "'\"$GMEM_FD\"'")
    return ["sh", "-c", script]


# --- the migration stream -------------------------------------------------------

class Relay:
    """Listens on a UNIX socket, connects each client to another, and counts
    the bytes going each way: the size of the migration stream as QEMU wrote
    it, not as QEMU reports it."""

    def __init__(self, listen_path, target_path):
        self.listen_path = listen_path
        self.target_path = target_path
        self.to_target = 0
        self.to_source = 0
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(listen_path)
        self.srv.listen(1)
        self.threads = []
        self.done = threading.Event()
        self.error = None
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self.threads.append(t)

    def _accept(self):
        try:
            a, _ = self.srv.accept()
            deadline = time.monotonic() + 30
            while True:
                b = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    b.connect(self.target_path)
                    break
                except (FileNotFoundError, ConnectionRefusedError):
                    b.close()
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.005)
        except OSError as e:
            self.error = e
            self.done.set()
            return
        t1 = threading.Thread(target=self._pump, args=(a, b, "to_target"), daemon=True)
        t2 = threading.Thread(target=self._pump, args=(b, a, "to_source"), daemon=True)
        t1.start()
        t2.start()
        t1.join()
        t2.join()
        a.close()
        b.close()
        self.done.set()

    def _pump(self, src, dst, counter):
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        try:
            while True:
                n = src.recv_into(buf)
                if n == 0:
                    break
                dst.sendall(view[:n])
                setattr(self, counter, getattr(self, counter) + n)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self, timeout=10):
        self.done.wait(timeout)
        self.srv.close()


def set_capabilities(qmp, **caps):
    qmp.execute("migrate-set-capabilities",
                capabilities=[{"capability": k.replace("_", "-"), "state": v}
                              for k, v in caps.items()])


def migrate(src, dst, workdir, ignore_shared, relay=False, max_bandwidth=None, timeout=600,
            tag="m"):
    """Migrates src (running) to dst (started with -incoming defer) over a
    UNIX socket. Returns the source's final query-migrate plus wall-clock
    figures and, with relay, the bytes the stream carried."""
    for g in (src, dst):
        set_capabilities(g.qmp, x_ignore_shared=ignore_shared)
    if max_bandwidth is not None:
        src.qmp.execute("migrate-set-parameters", **{"max-bandwidth": max_bandwidth})
    dst_sock = os.path.join(workdir, f"{tag}.incoming")
    dst.qmp.execute("migrate-incoming", uri=f"unix:{dst_sock}")
    uri_path = dst_sock
    r = None
    if relay:
        uri_path = os.path.join(workdir, f"{tag}.relay")
        r = Relay(uri_path, dst_sock)
    t0 = time.monotonic()
    src.qmp.execute("migrate", uri=f"unix:{uri_path}")
    deadline = t0 + timeout
    info = {}
    while time.monotonic() < deadline:
        info = src.qmp.execute("query-migrate")
        if info.get("status") in ("completed", "failed", "cancelled"):
            break
        time.sleep(0.01)
    t_src = time.monotonic() - t0
    if info.get("status") != "completed":
        raise RuntimeError(f"migration {info.get('status', 'timed out')}: {info}\n"
                           f"source: {src.diagnose()}\ntarget: {dst.diagnose()}")
    # The target runs once it has loaded everything.
    while time.monotonic() < deadline:
        st = dst.qmp.execute("query-status")
        if st.get("status") == "running":
            break
        time.sleep(0.01)
    t_dst = time.monotonic() - t0
    if r:
        r.close()
    info["wall_source_s"] = t_src
    info["wall_target_running_s"] = t_dst
    if r:
        info["stream_bytes"] = r.to_target
        info["return_bytes"] = r.to_source
    return info


def _unix(path):
    return {"transport": "socket", "type": "unix", "path": path}


def wait_path(path, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if proc.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def migrate_cpr_transfer(src, dst, workdir, main_path, cpr_path, relay=False, timeout=120,
                         tag="cpr"):
    """QEMU 10's cpr-transfer: dst was started with -incoming unix:main_path
    and the cpr channel on cpr_path (its monitor starts only once the source
    has sent the cpr state, so dst is connected to here, afterwards). The
    cpr channel carries QEMU's own memfds (ROMs) by SCM_RIGHTS; guest RAM of
    a memory-backend-file is re-opened by the new QEMU from its mem-path."""
    if not wait_path(cpr_path, dst.proc):
        raise RuntimeError(f"the target did not listen on {cpr_path}: {dst.diagnose()}")
    src.qmp.execute("migrate-set-parameters", mode="cpr-transfer")
    uri_path = main_path
    r = None
    if relay:
        # The new QEMU listens on its main channel only once it has read the
        # cpr state; the relay connects to it when the source connects.
        uri_path = os.path.join(workdir, f"{tag}.relay")
        r = Relay(uri_path, main_path)
    t0 = time.monotonic()
    src.qmp.execute("migrate", channels=[{"channel-type": "main", "addr": _unix(uri_path)},
                                         {"channel-type": "cpr", "addr": _unix(cpr_path)}])
    deadline = t0 + timeout
    info = {}
    while time.monotonic() < deadline:
        info = src.qmp.execute("query-migrate")
        if info.get("status") in ("completed", "failed", "cancelled"):
            break
        time.sleep(0.01)
    t_src = time.monotonic() - t0
    if info.get("status") != "completed":
        raise RuntimeError(f"cpr-transfer {info.get('status', 'timed out')}: {info}\n"
                           f"source: {src.diagnose()}\ntarget: {dst.diagnose()}")
    dst.connect()
    while time.monotonic() < deadline:
        if dst.qmp.execute("query-status").get("status") == "running":
            break
        time.sleep(0.01)
    info["wall_source_s"] = t_src
    info["wall_target_running_s"] = time.monotonic() - t0
    if r:
        r.close()
        info["stream_bytes"] = r.to_target
        info["return_bytes"] = r.to_source
    return info
