# SPDX-License-Identifier: LGPL-2.1-or-later
"""fdstore.py — the service manager's side of the fd-store protocol, for the
tests that crash and restart gmemd (test-recovery.py, test-fdstore.py).

FdStore receives sd_notify datagrams with their fds on $NOTIFY_SOCKET
(FDSTORE=1/FDNAME=, FDSTOREREMOVE=1, READY=1) and keeps the fds as systemd
does: an fd that is an open file it holds already is ignored, and past its
capacity (FileDescriptorStoreMax=) an fd is closed and forgotten, which is
what systemd does ("Hit fd store limit"): the test sees it in `refused`.

StoreDaemon starts gmemd as the service manager would, with the stored fds
as LISTEN_FDS/LISTEN_FDNAMES/LISTEN_PID and $FDSTORE set to the capacity as
systemd 254 and later do, and stops it with a signal.
"""
import os
import select
import socket
import subprocess
import threading
import time

import gmemtest
from gmemtest import SLOW, WRAPPER


class FdStore:
    """The service manager's fd store and readiness, as sd_notify(3) documents them."""

    def __init__(self, path, capacity=16384):
        self.path = path
        self.capacity = capacity
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setblocking(False)
        self.lock = threading.RLock()
        self.entries = []          # [name, fd] in the order stored
        self.removed = []          # names removed by gmemd
        self.ignored = []          # names stored with an fd the store held already
        self.refused = []          # names stored past the capacity: closed, as systemd does
        self.ready = False
        self.running = True
        # Like the real service manager, read all the time: a full datagram queue blocks the sender.
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self):
        while self.running:
            select.select([self.sock], [], [], 0.05)
            self.drain()

    def drain(self, timeout=0.0):
        if timeout:
            time.sleep(timeout)
        with self.lock:
            self._drain()

    def _store(self, name, fd):
        # As systemd does: an fd that is an open file the store holds already is ignored ...
        if any(gmemtest.kcmp_same_file(fd, old) for _n, old in self.entries):
            self.ignored.append(name)
            os.close(fd)
            return
        # ... and one past the capacity is closed and forgotten.
        if len(self.entries) >= self.capacity:
            self.refused.append(name)
            os.close(fd)
            return
        self.entries.append([name, fd])

    def _drain(self):
        while True:
            try:
                msg, fds, _flags, _addr = socket.recv_fds(self.sock, 4096, 16)
            except (BlockingIOError, OSError):
                return
            fields = dict(line.split("=", 1) for line in msg.decode().splitlines() if "=" in line)
            if fields.get("READY") == "1":
                self.ready = True
            if fields.get("FDSTORE") == "1":
                for fd in fds:
                    self._store(fields.get("FDNAME", "stored"), fd)
                fds = []
            if fields.get("FDSTOREREMOVE") == "1":
                name = fields.get("FDNAME")
                self.removed.append(name)
                for e in [e for e in self.entries if e[0] == name]:
                    os.close(e[1])
                    self.entries.remove(e)
            for fd in fds:
                os.close(fd)

    def names(self):
        return sorted(e[0] for e in self.entries)

    def close(self):
        self.running = False
        self.thread.join()
        for _name, fd in self.entries:
            os.close(fd)
        self.entries = []
        self.sock.close()


class StoreDaemon:
    """gmemd under a stand-in service manager: cls.store is its FdStore."""

    store = None
    proc = None

    @classmethod
    def start_daemon(cls, extra_env=None):
        """Starts gmemd as the service manager would, passing the stored fds."""
        world = gmemtest.WORLD
        cls.store.drain()
        with cls.store.lock:
            entries = list(cls.store.entries)
        env = dict(world.env, NOTIFY_SOCKET=cls.store.path, FDSTORE=str(cls.store.capacity))
        env.update(extra_env or {})
        if entries:
            env["LISTEN_FDS"] = str(len(entries))
            env["LISTEN_FDNAMES"] = ":".join(name for name, _fd in entries)

        def place_fds():
            # fds 3, 4, ... in store order, by way of high numbers so none is overwritten early.
            high = [os.dup2(fd, 1000 + i) for i, (_n, fd) in enumerate(entries)]
            for i, fd in enumerate(high):
                os.dup2(fd, 3 + i)
                os.close(fd)

        if getattr(world, "gmemd_log", None):
            world.gmemd_log.close()
        log = open(os.path.join(world.tmp, "gmemd.log"), "a")
        cmd = ["/bin/sh", "-c", 'LISTEN_PID=$$ exec "$0" "$@"'] + WRAPPER + [world.gmemd] + \
              (["--no-sandbox"] if WRAPPER else [])
        cls.store.ready = False
        cls.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    close_fds=False, preexec_fn=place_fds)
        world.gmemd_proc = cls.proc
        world.gmemd_log_path = log.name
        world.gmemd_log = log
        deadline = time.monotonic() + 30 * SLOW
        while time.monotonic() < deadline:
            cls.store.drain(0.02)
            if cls.store.ready and world.conn.name_has_owner(gmemtest.BUS_NAME):
                return
            if cls.proc.poll() is not None:
                raise RuntimeError(f"gmemd exited with {cls.proc.returncode}:\n{world.gmemd_log_text()}")
        raise RuntimeError(f"gmemd did not become ready:\n{world.gmemd_log_text()}")

    @classmethod
    def stop_daemon(cls, sig):
        if cls.proc and cls.proc.poll() is None:
            cls.proc.send_signal(sig)
            cls.proc.wait(timeout=30 * SLOW)
        cls.store.drain()
        gmemtest.WORLD.gmemd_proc = None
        # The bus notices the old connection is gone before the next daemon asks for the name.
        while gmemtest.WORLD.conn.name_has_owner(gmemtest.BUS_NAME):
            time.sleep(0.01)
