#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
both-stores.py — the fd store and gmem.ko's ledger agree (tests/vm/run-e2e).

gmemd keeps its records in the service manager's fd store when there is
one, and in gmem.ko's ledger whenever the kmod backend is usable. This
stops the guest's gmemd and starts it under a stand-in service manager
(tests/integration/fdstore.py, which keeps fds as systemd does), makes kmod
regions, VMs, views and a prepared migration, kills gmemd with SIGKILL,
and starts it three times: with the stored fds (it must restore from the
fd store), with the stored fds less one view's entry (it must take that
view from gmem.ko), then with no service manager at all (it must restore
the same objects from gmem.ko). Each time the objects, their views' states and the
content must be what they were. Exits 77 where the backend is not kmod.
"""
import os
import signal
import subprocess
import sys
import tempfile
import time

import fdstore

GMEMD = os.environ.get("GMEMD", "/usr/libexec/gmemd")
E2E_GMEMD = "/usr/lib/gmem-e2e/e2e-gmemd"
LOG = os.path.join(os.environ.get("GMEM_E2E_TMP", "/tmp"), "both-stores-gmemd.log")
N = 0
FAILED = 0


def check(ok, what, detail=""):
    global N, FAILED
    N += 1
    print(f"{'ok' if ok else 'not ok'} {N} - {what}")
    if detail:
        print("".join(f"# {line}\n" for line in detail.rstrip("\n").split("\n")), end="")
    if not ok:
        FAILED += 1
    sys.stdout.flush()
    return ok


def run(*args, **kw):
    return subprocess.run(list(args), capture_output=True, text=True, **kw)


def gmemctl(*args):
    return run("gmemctl", "--no-legend", *args)


def bus_free():
    for _ in range(300):
        r = run("dbus-send", "--system", "--print-reply", "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner", "string:org.gmemd.Broker1")
        if "boolean false" in r.stdout:
            return True
        time.sleep(0.1)
    return False


def answers():
    for _ in range(600):
        if gmemctl("status").returncode == 0:
            return True
        time.sleep(0.1)
    return False


def start(store):
    """gmemd as the guest runs it (user gmemd, kmod), under store if given, its output appended to LOG."""
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    entries = []
    if store:
        store.drain()
        with store.lock:
            entries = list(store.entries)
        env.update(NOTIFY_SOCKET=store.path, FDSTORE=str(store.capacity))
        if entries:
            env["LISTEN_FDS"] = str(len(entries))
            env["LISTEN_FDNAMES"] = ":".join(name for name, _fd in entries)

    def place_fds():
        high = [os.dup2(fd, 1000 + i) for i, (_n, fd) in enumerate(entries)]
        for i, fd in enumerate(high):
            os.dup2(fd, 3 + i)
            os.close(fd)

    log = open(LOG, "a")
    log.write(f"==== gmemd ({'fd store' if store else 'no service manager'}, {len(entries)} fds)\n")
    log.flush()
    proc = subprocess.Popen(["/bin/sh", "-c", 'LISTEN_PID=$$ exec "$0" "$@"', GMEMD, "--user=gmemd",
                             "--default-backend=kmod"], env=env, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, close_fds=False, preexec_fn=place_fds)
    log.close()
    if not answers():
        raise SystemExit(f"gmemd did not answer:\n{open(LOG).read()}")
    return proc


def kill(proc):
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if not bus_free():
        raise SystemExit("org.gmemd.Broker1 is still owned after SIGKILL")


def last_start():
    text = open(LOG).read()
    return text[text.rindex("==== gmemd"):]


def state():
    """What gmemctl shows of the objects, the view states and the content."""
    regions = gmemctl("list-regions").stdout
    vms = gmemctl("list-vms").stdout
    migrations = gmemctl("list-migrations").stdout
    content = run("gmemctl", "get-fd", "a", "ram", "--exec", "--", "gmem-mmap", "read", "0", "13").stdout
    return regions + vms + migrations + content


def main():
    if os.environ.get("GMEM_E2E_BACKEND") != "kmod":
        print("GMEM-SKIP both-stores: gmemd's default backend here is not kmod", file=sys.stderr)
        return 77
    r = run(E2E_GMEMD, "stop")
    if not check(r.returncode == 0 and bus_free(), "the guest's gmemd stops", r.stdout + r.stderr):
        return 1

    tmp = tempfile.mkdtemp(prefix="stand-in.")
    os.chmod(tmp, 0o755)
    store = fdstore.FdStore(os.path.join(tmp, "notify"))
    os.chmod(store.path, 0o666)     # gmemd runs as user gmemd
    proc = start(store)
    check("Persistence: fd-store" in gmemctl("status").stdout, "under a service manager Persistence is fd-store",
          gmemctl("status").stdout)
    steps = [
        ("region ram (8 MiB, kmod)", ["create-region", "ram", "8M"]),
        ("region spare (4 MiB, kmod)", ["create-region", "spare", "4M"]),
        ("VMs a, b, c", ["register-vm", "a"]),
        ("", ["register-vm", "b"]),
        ("", ["register-vm", "c"]),
        ("a attaches ram read-write, b spare read-only", ["attach", "a", "ram"]),
        ("", ["attach", "b", "spare", "--ro"]),
    ]
    for what, args in steps:
        r = gmemctl(*args)
        if what or r.returncode:
            check(r.returncode == 0, what or " ".join(args), r.stdout + r.stderr)
    r = run("gmemctl", "get-fd", "a", "ram", "--exec", "--", "gmem-mmap", "write", "0", "kept in both!")
    check(r.returncode == 0, "a writes through its view", r.stdout + r.stderr)
    r = gmemctl("migrate", "b", "c", "--no-commit")
    check(r.returncode == 0, "a migration from b to c is prepared", r.stdout + r.stderr)
    before = state()
    check("kept in both!" in before and "spare:ro:pending" in before, "the state before the crash: content "
          "written, c's view pending", before)

    kill(proc)
    proc = start(store)
    check("from the fd store" in last_start(), "restarted with the stored fds, gmemd restores from the fd store",
          last_start())
    after_store = state()
    check(after_store == before, "the same regions, VMs, views, migration and content", after_store)

    # A degraded store: the entry of a's view is lost (as when gmemd could not store it). The kernel kept it.
    kill(proc)
    with store.lock:
        lost = [(name, fd) for name, fd in store.entries if name.startswith("view/") and "/rw/" in name]
        store.entries = [(name, fd) for name, fd in store.entries if (name, fd) not in lost]
    for _name, fd in lost:
        os.close(fd)
    check(len(lost) == 1, "the fd store loses the entry of a's view", " ".join(name for name, _fd in lost))
    proc = start(store)
    check("that the fd store did not have" in last_start(), "gmemd takes what the fd store lacks from gmem.ko",
          last_start())
    after_lost = state()
    check(after_lost == before, "nothing is lost: a's view and its content are there", after_lost)

    kill(proc)
    store.close()
    r = run(E2E_GMEMD, "start")
    check(r.returncode == 0, "gmemd starts again with no service manager (the guest's way)", r.stdout + r.stderr)
    log = open(os.environ["GMEM_E2E_GMEMD_LOG"]).read()
    log = log[log.rindex("==== gmemd"):]
    check("from gmem.ko" in log, "it restores from gmem.ko", log)
    check("Persistence: kernel" in gmemctl("status").stdout, "Persistence is kernel", gmemctl("status").stdout)
    after_kernel = state()
    check(after_kernel == before, "the same regions, VMs, views, migration and content as the fd store had",
          after_kernel)

    mig = gmemctl("list-migrations").stdout.split()
    r = gmemctl("commit-migration", mig[0]) if mig else None
    check(r is not None and r.returncode == 0, "the migration commits", (r.stdout + r.stderr) if r else "")
    r = subprocess.run("gmemctl unregister-vm a b c && gmemctl destroy-region ram spare", shell=True,
                       capture_output=True, text=True)
    check(r.returncode == 0, "clean up", r.stdout + r.stderr)
    print(f"1..{N}")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
