#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
qemu-migrate.py — a real QEMU on a kmod view, migrated to a new QEMU process
with x-ignore-shared and the commit at pause-before-switchover, in a guest set
up as a real host (GMEM_E2E_QEMU=1 GMEM_E2E_KVM=1 tests/vm/run-e2e SERIES
tests/e2e/qemu-migrate.py, with tests/qemu/qemuvm.py in GMEM_E2E_FILES).

The QEMU is the one that boots this guest (bookworm's 7.2), run as the
unprivileged users qemu (source) and qemu2 (target) through
`gmemctl attach|migrate --exec` on memory-backend-file,share=on,
mem-path=/proc/self/fd/$GMEM_FD, with the guest's own KVM (-accel kvm), or
TCG where there is none. Its guest is no operating system but 42 bytes of
16-bit code given as the BIOS (-bios, no other firmware; a far jump at the
reset vector enters it): it marks its RAM "GMEM", counts its boots in RAM,
and then forever increments a counter kept in EAX and stored at 0x1000, and
copies the word at 0x2000 to 0x1008 (checked against `as --32` and objdump). An
observer (root, VM obs) maps a third view of the region.

  1. the source runs: the observer sees the mark, one boot, the counter
     going up;
  2. `gmemctl migrate src dst --no-commit --exec` starts the target QEMU
     (-incoming defer) on its pending view;
  3. QMP: x-ignore-shared on both, pause-before-switchover on the source,
     migrate over a UNIX socket through a relay that counts the stream;
     at pre-switchover the counter stands still, `gmemctl commit-migration`
     revokes the source's view and activates the target's, then
     migrate-continue;
  4. the target runs: the counter goes on from where it stood (the CPU
     state came over the stream, the memory stayed), still one boot, and a
     word the observer writes at 0x2000 comes back at 0x1008; the guest's
     RAM was not in the stream (query-migrate's ram total is less than it);
  5. the source's view is revoked (GetFd refused), and its QEMU, told to
     `cont`, cannot run its guest on it: what it does is printed; the
     counter the target's guest keeps does not go back.

TAP on stdout. Skips (77) where gmemd's backend is not kmod or there is no
QEMU in the guest; with GMEM_TEST_REQUIRE_DEPS=1 a missing QEMU or KVM is a
failure. The argument --accel=tcg (run-e2e passes it on after the script)
forces TCG inside the guest's TCG, --accel=kvm KVM.
"""
import mmap
import os
import random
import struct
import subprocess
import sys
import time

import dbus

sys.path.insert(0, os.environ.get("GMEM_E2E_DIR", "/e2e"))
import qemuvm  # noqa: E402 (tests/qemu/qemuvm.py, beside this script)

BUS = "org.gmemd.Broker1"
PATH = "/org/gmemd/Broker1"
MiB = 1 << 20
REGION = "qmig"
SIZE = 16 * MiB
QEMU = "/usr/bin/qemu-system-x86_64"
WAIT = 180              # seconds for QEMU to come up, migrate, answer: TCG inside TCG

COUNTER, BOOTS, COPY, MARK, INPUT = 0x1000, 0x1004, 0x1008, 0x100C, 0x2000
MARK_WORD = 0x4D454D47  # "GMEM"

# The guest, 16-bit real mode, entered at F000:0000 through the reset vector.
BIOS_CODE = bytes([
    0xFA,                                       # cli
    0x31, 0xC0,                                 # xor   ax, ax
    0x8E, 0xD8,                                 # mov   ds, ax
    0x66, 0xC7, 0x06, 0x0C, 0x10,               # mov   dword [0x100c], "GMEM"
    0x47, 0x4D, 0x45, 0x4D,
    0x66, 0xFF, 0x06, 0x04, 0x10,               # inc   dword [0x1004]     ; boots
    0x66, 0x31, 0xC0,                           # xor   eax, eax
    0x66, 0x40,                                 # 1: inc eax               ; the counter
    0x66, 0xA3, 0x00, 0x10,                     # mov   [0x1000], eax
    0x66, 0x8B, 0x1E, 0x00, 0x20,               # mov   ebx, [0x2000]
    0x66, 0x89, 0x1E, 0x08, 0x10,               # mov   [0x1008], ebx
    0xF3, 0x90,                                 # pause
    0xEB, 0xEC,                                 # jmp   1b
])
RESET_VECTOR = bytes([0xEA, 0x00, 0x00, 0x00, 0xF0])    # at 0xfff0: jmp far F000:0000

N = 0
FAILED = 0


def say(text):
    for line in str(text).splitlines():
        print(f"# {line}", flush=True)


def result(ok, desc, detail=None):
    global N, FAILED
    N += 1
    print(f"{'ok' if ok else 'not ok'} {N} - {desc}", flush=True)
    if detail:
        say(detail)
    if not ok:
        FAILED += 1
    return ok


def give_up(reason):
    """A failure the rest cannot go on from."""
    result(False, reason)
    print(f"1..{N}")
    sys.exit(1)


def skip_all(reason, dependency):
    if dependency and os.environ.get("GMEM_TEST_REQUIRE_DEPS") == "1":
        print(f"qemu-migrate: cannot run: {reason}")
        print("qemu-migrate: a failure, not a skip: GMEM_TEST_REQUIRE_DEPS=1 says it should have been there")
        sys.exit(1)
    print(f"GMEM-SKIP qemu-migrate: {reason}")
    sys.exit(77)


def gmemctl(*args):
    p = subprocess.run(["gmemctl", *args], capture_output=True, text=True)
    return p.returncode, (p.stdout + p.stderr).strip()


def write_bios(path):
    image = bytearray(64 * 1024)          # QEMU wants a multiple of 64 KiB
    image[:len(BIOS_CODE)] = BIOS_CODE
    image[0xFFF0:0xFFF0 + len(RESET_VECTOR)] = RESET_VECTOR
    with open(path, "wb") as f:
        f.write(image)
    os.chmod(path, 0o644)


class Observer:
    """Root's view of the region, as an orchestrator's tool would map it."""

    def __init__(self, mgr):
        self.fd = mgr.Attach("obs", REGION, "rw", dbus.Dictionary({}, signature="sv")).take()
        self.map = mmap.mmap(self.fd, SIZE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)

    def word(self, off):
        return struct.unpack_from("<I", self.map, off)[0]

    def put(self, off, value):
        struct.pack_into("<I", self.map, off, value)

    def counter_moves(self, seconds=1.0):
        a = self.word(COUNTER)
        time.sleep(seconds)
        return a, self.word(COUNTER)

    def wait_counter_above(self, value, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.word(COUNTER) > value:
                return True
            time.sleep(0.1)
        return False


def qemu_command(user, name, work, bios, accel, incoming=None):
    argv = ["as-user", user, QEMU, "-accel", accel, "-machine", "pc,memory-backend=ram", "-m", "16M",
            "-object", "memory-backend-file,id=ram,size=16M,mem-path=/proc/self/fd/$GMEM_FD,share=on",
            "-bios", bios, "-L", os.path.join(work, "no-firmware"), "-nodefaults", "-display", "none",
            "-vga", "none", "-serial", "none", "-monitor", "none", "-no-reboot",
            "-qmp", f"unix:{os.path.join(work, name + '.qmp')},server=on,wait=off"]
    if incoming:
        argv += ["-incoming", incoming]
    return qemuvm.through_shell(argv)


def wait_status(guest, want, timeout=WAIT):
    deadline = time.monotonic() + timeout
    st = None
    while time.monotonic() < deadline:
        st = guest.qmp.execute("query-status").get("status")
        if st in want:
            return st
        time.sleep(0.1)
    return st


def main():
    if os.environ.get("GMEM_E2E_BACKEND") != "kmod":
        print(f"GMEM-SKIP qemu-migrate: gmemd's default backend is {os.environ.get('GMEM_E2E_BACKEND')}, not kmod")
        sys.exit(77)
    if os.environ.get("GMEM_E2E_QEMU") != "1" or not os.access(QEMU, os.X_OK):
        skip_all("no QEMU in this guest (run-e2e without GMEM_E2E_QEMU=1)", True)
    accel = None
    for arg in sys.argv[1:]:
        if arg in ("--accel=kvm", "--accel=tcg"):
            accel = arg.split("=", 1)[1]
        else:
            print(f"qemu-migrate: unknown argument {arg!r} (--accel=kvm|tcg)")
            sys.exit(1)
    if not accel:
        if os.environ.get("GMEM_E2E_KVM") == "1":
            accel = "kvm"
        elif os.environ.get("GMEM_E2E_KVM_ERROR") and os.environ.get("GMEM_TEST_REQUIRE_DEPS") == "1":
            skip_all(os.environ["GMEM_E2E_KVM_ERROR"], True)
        else:
            accel = "tcg"
    print(f"qemu-migrate: kernel {os.uname().release}, {subprocess.run([QEMU, '--version'], capture_output=True, text=True).stdout.splitlines()[0]}, accel {accel}", flush=True)

    work = os.path.join(os.environ.get("GMEM_E2E_TMP", "/tmp"), "qemu")
    os.makedirs(os.path.join(work, "no-firmware"))
    os.chmod(work, 0o777)
    bios = os.path.join(work, "bios.bin")
    write_bios(bios)
    mgr = dbus.Interface(dbus.SystemBus().get_object(BUS, PATH), "org.gmemd.Broker1.Manager")

    rc, out = gmemctl("--backend=kmod", "create-region", REGION, "16M")
    result(rc == 0, "create a 16 MiB kmod region", out)
    ok = all(gmemctl("register-vm", *a)[0] == 0 for a in (("src", "--uid=qemu"), ("dst", "--uid=qemu2"), ("obs",)))
    result(ok, "register VMs src (uid qemu), dst (qemu2) and obs")
    obs = Observer(mgr)

    # 1. The source.
    src = qemuvm.Guest("src", ["gmemctl", "attach", "src", REGION, "--exec", "--",
                               *qemu_command("qemu", "src", work, bios, accel)], work)
    t0 = time.monotonic()
    try:
        src.connect(WAIT)
        st = wait_status(src, ("running",))
    except Exception as e:
        give_up(f"the source QEMU comes up: {e}")
    result(st == "running", f"the source QEMU runs ({accel}, as qemu, RAM on its view; QMP after "
                            f"{time.monotonic() - t0:.1f} s)", None if st == "running" else src.diagnose())
    deadline = time.monotonic() + WAIT
    while obs.word(MARK) != MARK_WORD and time.monotonic() < deadline:
        time.sleep(0.1)
    a, b = obs.counter_moves()
    result(obs.word(MARK) == MARK_WORD and obs.word(BOOTS) == 1 and b > a,
           "the source's guest runs on the region: mark, one boot, the counter goes up",
           f"mark 0x{obs.word(MARK):08x}, boots {obs.word(BOOTS)}, counter {a} -> {b} in 1 s")

    # 2. The target, on its pending view.
    dst = qemuvm.Guest("dst", ["gmemctl", "migrate", "src", "dst", "--no-commit", "--exec", "--",
                               *qemu_command("qemu2", "dst", work, bios, accel, incoming="defer")], work)
    try:
        dst.connect(WAIT)
        st = wait_status(dst, ("inmigrate",))
    except Exception as e:
        give_up(f"the target QEMU comes up: {e}")
    result(st == "inmigrate", "the target QEMU waits for the migration (as qemu2, RAM on its pending view)",
           None if st == "inmigrate" else dst.diagnose())
    rc, out = gmemctl("--no-legend", "list-migrations")
    ids = [l.split()[0] for l in out.splitlines() if l.split()[1:4] == ["src", "dst", "prepared"]]
    result(len(ids) == 1, "the migration src -> dst is prepared", out)
    mid = ids[0] if ids else "0"

    # 3. Migrate, pausing before the switchover.
    qemuvm.set_capabilities(dst.qmp, x_ignore_shared=True)
    qemuvm.set_capabilities(src.qmp, x_ignore_shared=True, pause_before_switchover=True)
    incoming = os.path.join(work, "incoming")
    dst.qmp.execute("migrate-incoming", uri=f"unix:{incoming}")
    if not qemuvm.wait_path(incoming, dst.proc, WAIT):
        give_up(f"the target listens on {incoming}: {dst.diagnose()}")
    relay_path = os.path.join(work, "relay")
    relay = qemuvm.Relay(relay_path, incoming)
    os.chmod(relay_path, 0o666)         # the source runs as qemu
    t0 = time.monotonic()
    src.qmp.execute("migrate", uri=f"unix:{relay_path}")
    deadline = time.monotonic() + WAIT
    info = {}
    while time.monotonic() < deadline:
        info = src.qmp.execute("query-migrate")
        if info.get("status") in ("pre-switchover", "completed", "failed", "cancelled"):
            break
        time.sleep(0.05)
    if not result(info.get("status") == "pre-switchover", "the source reaches pre-switchover",
                  f"status {info.get('status')} after {time.monotonic() - t0:.1f} s"):
        give_up(f"cannot go on: {info}\n{src.diagnose()}\n{dst.diagnose()}")
    a, b = obs.counter_moves(1.0)
    frozen = b
    result(a == b, "at pre-switchover the source's guest is stopped: the counter stands still",
           f"counter {a} -> {b} in 1 s; source status {src.qmp.execute('query-status').get('status')}")

    rc, out = gmemctl("commit-migration", mid)
    result(rc == 0, f"gmemctl commit-migration {mid} while the source waits at pre-switchover", out)
    src.qmp.execute("migrate-continue", state="pre-switchover")
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        info = src.qmp.execute("query-migrate")
        if info.get("status") in ("completed", "failed", "cancelled"):
            break
        time.sleep(0.05)
    relay.close()
    result(info.get("status") == "completed", "migrate-continue: the migration completes",
           f"status {info.get('status')}, total {info.get('total-time')} ms, downtime {info.get('downtime')} ms, "
           f"stream {relay.to_target} bytes, ram {info.get('ram')}")
    st = wait_status(dst, ("running",))
    result(st == "running", "the target QEMU runs", None if st == "running" else dst.diagnose())

    # 4. The target's guest goes on, on the same memory.
    moved = obs.wait_counter_above(frozen)
    first = obs.word(COUNTER)
    a, b = obs.counter_moves(1.0)
    result(moved and first > frozen and b > a and obs.word(BOOTS) == 1,
           "the target's guest goes on from where the source's stopped: no restart, the counter continues",
           f"stood at {frozen}, then {first}, {a} -> {b} in 1 s; boots {obs.word(BOOTS)}")
    token = random.randrange(1, 1 << 32)
    obs.put(INPUT, token)
    deadline = time.monotonic() + WAIT
    while obs.word(COPY) != token and time.monotonic() < deadline:
        time.sleep(0.05)
    result(obs.word(COPY) == token, "the target's guest reads and writes the region: a word written at "
           "0x2000 by the observer comes back at 0x1008", f"wrote 0x{token:08x}, read back 0x{obs.word(COPY):08x}")
    ram_total = (info.get("ram") or {}).get("total", -1)
    result(0 <= ram_total < SIZE, "x-ignore-shared: the guest's 16 MiB were not in the stream",
           f"query-migrate ram total {ram_total} bytes (the ROMs), transferred "
           f"{(info.get('ram') or {}).get('transferred')} bytes; the relay counted {relay.to_target} bytes")

    # 5. The source has lost its memory.
    rc, out = gmemctl("get-fd", "src", REGION)
    result(rc != 0 and "revoked" in out, "the source's view is revoked: GetFd refused", out)
    before = obs.word(COUNTER)
    st_before = src.qmp.execute("query-status").get("status")
    try:
        src.qmp.execute("cont")
        cont = "accepted"
    except qemuvm.QmpError as e:
        cont = f"refused: {e}"
    except OSError as e:
        cont = f"not answered ({e})"
    time.sleep(3)
    stopped = False
    if src.proc.poll() is not None:
        # gmemctl's pid is QEMU's (exec all the way): a signal's number is QEMU's.
        rc = src.proc.returncode
        st = f"QEMU exited with {rc}" + (f" (killed by signal {-rc})" if rc < 0 else "")
        stopped = rc == -7                      # SIGBUS: TCG touched the revoked mapping
    else:
        try:
            st = "status " + src.qmp.execute("query-status").get("status")
            stopped = st == "status internal-error"     # KVM_RUN failed
        except Exception as e:
            st = f"QMP: {e}"
    log = [l for l in src.log_text().splitlines() if l.strip()][:6]
    after = obs.word(COUNTER)
    # stopped: internal-error or SIGBUS, which only trying to run the guest gives
    # (a cont QEMU refused would leave it in postmigrate); under TCG QEMU dies
    # before it answers the cont.
    result(stopped and after >= before,
           "the source QEMU, told to cont, cannot run its guest on the revoked view (KVM_RUN fails, "
           "or SIGBUS under TCG), and the counter the target's guest keeps does not go back",
           f"source {st_before}, 'cont' {cont}; 3 s later: {st}; counter {before} -> {after}\n"
           "source QEMU's output:\n" + "\n".join(log))

    dst.stop()
    src.stop()
    ok = gmemctl("unregister-vm", "src", "dst", "obs")[0] == 0
    obs.map.close()
    os.close(obs.fd)
    rc, out = gmemctl("destroy-region", REGION)
    result(ok and rc == 0, "unregister the VMs, destroy the region", out)
    print(f"1..{N}")
    print(f"qemu-migrate: {N - FAILED} of {N} passed")
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
