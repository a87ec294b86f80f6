#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
load-client — one of the load test's concurrent clients, a process of its
own on its own bus connection (python3-dbus).

It registers three VMs (a: the writer, b: the migration target, r: a
reader) and repeats a cycle until its time or its request budget runs out:

  CreateRegion -> Attach(a, rw) -> write a pattern through the mapping ->
  GetFd(a) and read it back -> sometimes Attach(r, ro), read it back through
  that VM's own view, Detach(r) -> BeginMigration(a -> b), read it back
  through the target's fd -> Commit (GetFd(a) must now say NoSuchView,
  GetFd(b) reads back) or Abort (GetFd(a) reads back) -> Detach ->
  DestroyRegion, or keep the region for a while.

Every pattern is a function of the region name and the page, so any view of
any region can be checked by anyone. QuotaExceeded is expected (the policy
is tight on purpose) and counted; any other error is recorded with its
name and message. At the end the client leaves one region behind with a
view in VM b and the pattern in it (a "survivor", checked by the test after
every client has exited) and destroys everything else it made.

Usage: load-client.py ADDRESS TAG INDEX SECONDS MAX_REQUESTS SEED
Prints one JSON object with its figures on stdout.
"""

import hashlib
import json
import mmap
import os
import random
import sys
import time

import dbus
import dbus.bus

BUS_NAME = "org.gmemd.Broker1"
ROOT = "/org/gmemd/Broker1"
MANAGER = "org.gmemd.Broker1.Manager"
PROPS = "org.freedesktop.DBus.Properties"
QUOTA = "org.gmemd.Broker1.Error.QuotaExceeded"
NO_SUCH_VIEW = "org.gmemd.Broker1.Error.NoSuchView"
PAGE = 4096
SIZES = [16 * PAGE, 64 * PAGE, 128 * PAGE, 256 * PAGE]


def page_pattern(name, page):
    return hashlib.sha256(f"{name}/{page}".encode()).digest() * (PAGE // 32)


def sample_pages(size):
    n = size // PAGE
    return sorted({0, n // 2, n - 1})


def write_pattern(fd, name, size):
    with mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE) as m:
        for p in sample_pages(size):
            m[p * PAGE:(p + 1) * PAGE] = page_pattern(name, p)


def check_pattern(fd, name, size, writable=False):
    """Bad pages through this fd (empty: all good)."""
    prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
    bad = []
    with mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=prot) as m:
        for p in sample_pages(size):
            if m[p * PAGE:(p + 1) * PAGE] != page_pattern(name, p):
                bad.append(p)
    return bad


class Quota(Exception):
    pass


class Failed(Exception):
    pass


class Client:
    def __init__(self, address, tag, index, seconds, max_requests, seed):
        self.conn = dbus.bus.BusConnection(address)
        self.prefix = f"{tag}-c{index}"
        self.deadline = time.monotonic() + seconds
        self.max_requests = max_requests
        self.rng = random.Random(seed)
        self.requests = 0
        self.cycles = 0
        self.committed = 0
        self.aborted = 0
        self.pages_checked = 0
        self.quota = {}
        self.errors = []
        self.kept = []
        self.n = 0
        self.vm_a, self.vm_b, self.vm_r = (f"{self.prefix}-{x}" for x in "abr")

    # calls
    def call(self, method, sig="", *args, path=ROOT, iface=MANAGER, expect=None):
        """One request. QuotaExceeded raises Quota; an error named in expect
        is returned as its name; any other error is recorded and raises
        Failed."""
        self.requests += 1
        try:
            return self.conn.call_blocking(BUS_NAME, path, iface, method, sig, list(args), timeout=120)
        except dbus.exceptions.DBusException as e:
            name = e.get_dbus_name()
            if name == QUOTA:
                self.quota[method] = self.quota.get(method, 0) + 1
                raise Quota(method)
            if expect and name in expect:
                return name
            self.errors.append({"method": method, "args": [str(a) for a in args][:3], "error": name,
                                "message": e.get_dbus_message()})
            raise Failed(method)

    def quietly(self, method, sig, *args, path=ROOT):
        """Clean-up after a failed cycle: counted, never recorded."""
        self.requests += 1
        try:
            r = self.conn.call_blocking(BUS_NAME, path, MANAGER, method, sig, list(args), timeout=120)
            if isinstance(r, dbus.types.UnixFd):
                os.close(r.take())
        except dbus.exceptions.DBusException:
            pass

    def take(self, unixfd):
        return unixfd.take()

    def attach(self, vm, region, access):
        return self.take(self.call("Attach", "sssa{sv}", vm, region, access, dbus.Dictionary({}, signature="sv")))

    def get_fd(self, vm, region):
        return self.take(self.call("GetFd", "ss", vm, region))

    def verify(self, fd, name, size, what, writable=False):
        try:
            bad = check_pattern(fd, name, size, writable)
        finally:
            os.close(fd)
        self.pages_checked += len(sample_pages(size))
        if bad:
            self.errors.append({"method": "verify", "error": "content",
                                "message": f"region {name}: pages {bad} differ through {what}"})
            raise Failed("verify")

    def budget_left(self):
        return time.monotonic() < self.deadline and self.requests < self.max_requests

    # the cycle
    def create(self, name, size):
        self.call("CreateRegion", "sta{sv}", name, dbus.UInt64(size), dbus.Dictionary({}, signature="sv"))

    def cycle(self):
        self.n += 1
        name = f"{self.prefix}-{self.n}"
        size = self.rng.choice(SIZES)
        try:
            self.create(name, size)
        except Quota:
            if self.kept:
                self.call("DestroyRegion", "s", self.kept.pop(0))
            return
        try:
            fd = self.attach(self.vm_a, name, "rw")
            try:
                write_pattern(fd, name, size)
            finally:
                os.close(fd)
            self.verify(self.get_fd(self.vm_a, name), name, size, f"GetFd({self.vm_a})", writable=True)

            if self.rng.random() < 0.5:
                self.verify(self.attach(self.vm_r, name, "ro"), name, size, f"a read-only view of {self.vm_r}")
                self.call("Detach", "ss", self.vm_r, name)
            if self.rng.random() < 0.2:
                self.call("ListRegions")
                self.call("Get", "ss", "org.gmemd.Broker1.Vm", "Views",
                          path=f"{ROOT}/vm/{self.vm_a.replace('-', '_2d')}", iface=PROPS)

            mig, fds = self.call("BeginMigration", "ssa{sv}", self.vm_a, self.vm_b,
                                 dbus.Dictionary({}, signature="sv"))
            try:
                got = {str(r): self.take(f) for r, f in fds}
                if set(got) != {name}:
                    for f in got.values():
                        os.close(f)
                    self.errors.append({"method": "BeginMigration", "error": "fds",
                                        "message": f"expected the fd of {name}, got {sorted(got)}"})
                    raise Failed("BeginMigration")
                self.verify(got[name], name, size, f"the migration target {self.vm_b}")
            except BaseException:
                self.quietly("AbortMigration", "o", mig)
                raise
            if self.rng.random() < 0.75:
                self.call("CommitMigration", "o", mig)
                self.committed += 1
                r = self.call("GetFd", "ss", self.vm_a, name, expect=(NO_SUCH_VIEW,))
                if r != NO_SUCH_VIEW:
                    os.close(r.take())
                    self.errors.append({"method": "GetFd", "error": "revoked",
                                        "message": f"GetFd({self.vm_a}, {name}) answered after the commit"})
                    raise Failed("GetFd")
                self.call("Detach", "ss", self.vm_a, name)
                holder = self.vm_b
            else:
                self.call("AbortMigration", "o", mig)
                self.aborted += 1
                holder = self.vm_a
            self.verify(self.get_fd(holder, name), name, size, f"GetFd({holder}) after the migration")
            self.call("Detach", "ss", holder, name)
            if self.rng.random() < 0.3 and len(self.kept) < 2:
                self.kept.append(name)
            else:
                self.call("DestroyRegion", "s", name)
            self.cycles += 1
        except (Quota, Failed):
            for vm in (self.vm_a, self.vm_b, self.vm_r):
                self.quietly("Detach", "ss", vm, name)
            self.quietly("DestroyRegion", "s", name)

    def survivor(self):
        """Leaves one region with a view in VM b and the pattern in it."""
        name, size = f"{self.prefix}-keep", SIZES[1]
        deadline = time.monotonic() + 60
        while True:
            try:
                self.create(name, size)
                break
            except Quota:
                if self.kept:
                    self.call("DestroyRegion", "s", self.kept.pop(0))
                elif time.monotonic() > deadline:
                    raise
                else:
                    time.sleep(0.05)
        while True:
            try:
                fd = self.attach(self.vm_b, name, "rw")
                break
            except Quota:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        try:
            write_pattern(fd, name, size)
        finally:
            os.close(fd)
        self.verify(self.get_fd(self.vm_b, name), name, size, f"GetFd({self.vm_b})", writable=True)
        return {"region": name, "size": size, "vm": self.vm_b}

    def run(self):
        started = time.monotonic()
        for vm in (self.vm_a, self.vm_b, self.vm_r):
            self.call("RegisterVm", "sa{sv}", vm, dbus.Dictionary({}, signature="sv"))
        while self.budget_left():
            self.cycle()
        survivor = None
        try:
            survivor = self.survivor()
        except (Quota, Failed) as e:
            self.errors.append({"method": "survivor", "error": type(e).__name__, "message": str(e)})
        for name in self.kept:
            self.quietly("DestroyRegion", "s", name)
        self.quietly("UnregisterVm", "s", self.vm_a)
        self.quietly("UnregisterVm", "s", self.vm_r)
        return {
            "client": self.prefix, "seconds": round(time.monotonic() - started, 2),
            "requests": self.requests, "cycles": self.cycles, "committed": self.committed,
            "aborted": self.aborted, "pages_checked": self.pages_checked, "quota": self.quota,
            "errors": self.errors, "survivor": survivor,
        }


def main():
    address, tag, index, seconds, max_requests, seed = sys.argv[1:7]
    c = Client(address, tag, int(index), float(seconds), int(max_requests), int(seed))
    print(json.dumps(c.run()))


if __name__ == "__main__":
    main()
