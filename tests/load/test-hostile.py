#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Hostile clients, spoken at the wire level (dbuswire.py) so that nothing a
library would refuse is out of reach:

  - thousands of clients that send a call and hang up at once, right after
    the call reached gmemd, or while its credentials lookup is pending
    (counted from a bus monitor: lookups answered, lookups that found the
    caller gone); also with more calls than gmemd parks per sender;
  - a client that never reads its replies, with and without fds in them;
  - fds attached to calls whose signature has none, an extra 'h', an fd in
    an option variant, fds on unknown objects and methods, fds on calls
    whose sender is gone before they are authorized;
  - names of 64 and 65 characters, object paths of 255 bytes and more,
    interface and member names of 255, strings of MiBs up to the bus's
    message limit, variants nested as deep as the bus allows.

After each: the daemon serves, everything refused was refused with a named
error, and its open fds (and, for the mass tests, RSS) are back where they
started.
"""

import os
import random
import select
import socket
import struct
import time
import unittest

import gmemtest     # before dbus: without python3-dbus it skips the file with the reason

import dbus
import dbuswire as W
import loadutil
from gmemtest import GmemTestCase, SLOW, WRAPPER
from loadutil import figure, DaemonStats, MANAGER, mgr_call

E = gmemtest.ERROR_PREFIX
ITERATIONS = int(os.environ.get("GMEM_HOSTILE_ITERATIONS", "2000")) // SLOW
BATCHES = int(os.environ.get("GMEM_HOSTILE_BATCHES", "3"))
# After thousands of hung-up callers gmemd's heap keeps its high-water mark
# (glibc does not give freed memory below the top of the heap back): up to
# 64 parked calls per sender at once and the replies to the calls that ran,
# for many senders at a time. The mark depends on the timing: +2.6 to
# +7.8 MiB measured, then flat (10 batches of 3000 in a row: +0.7, +1.0,
# +1.0, +2.9, +2.6, +2.6, ... MiB), moving by up to ~2 MiB from one batch
# to the next. A leak of a parked call set per burst caller would add
# ~10 MiB per batch, well over ROUND_GROWTH_KIB; smaller leaks are for the
# ASan and valgrind runs.
RSS_SLACK_KIB = 16384
ROUND_GROWTH_KIB = 2048
MEMORY_CHECKED = loadutil.memory_checked()
# How long a well-behaved client waits for an answer while another client
# misbehaves (generous: other suites may share the CPUs).
PROBE_TIMEOUT = 5 * SLOW


def hello_bytes():
    return W.encode_message(W.METHOD_CALL, 1, {W.F_PATH: ("o", W.BUS_PATH), W.F_MEMBER: ("s", "Hello"),
                                              W.F_DESTINATION: ("s", W.BUS), W.F_INTERFACE: ("s", W.BUS)})


def call_bytes(serial, method, signature="", args=(), path=gmemtest.ROOT_PATH, iface=gmemtest.MANAGER_IFACE,
               n_fds=None):
    return W.encode_message(W.METHOD_CALL, serial,
                            {W.F_PATH: ("o", path), W.F_MEMBER: ("s", method),
                             W.F_DESTINATION: ("s", gmemtest.BUS_NAME), W.F_INTERFACE: ("s", iface)},
                            signature, args, n_fds=n_fds)


def hang_up_after(data, how, fds=()):
    """Connects, sends auth + Hello + data in one write and closes: at once
    ('now'), once the bus answered the authentication ('auth'), or after a
    random moment of up to 2 ms ('jitter')."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(W.socket_path(gmemtest.WORLD.address))
    if fds:
        # The fds go with the messages, after the authentication lines.
        s.sendall(W.auth_bytes())
        s.sendmsg([hello_bytes() + data],
                  [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))])
    else:
        s.sendall(W.auth_bytes() + hello_bytes() + data)
    if how == "auth":
        s.settimeout(5)
        s.recv(1)
    elif how == "jitter":
        time.sleep(random.random() * 0.002)
    s.close()


class Hostile(GmemTestCase):

    def stats(self):
        return DaemonStats(self.world.gmemd_pid())

    def serving(self):
        c = loadutil.raw(timeout=5)
        try:
            r = mgr_call(c, "ListRegions")
            return r.type == W.METHOD_RETURN
        finally:
            c.close()

    def assertServing(self, what):
        self.check_daemon_alive()
        self.assertTrue(self.serving(), f"gmemd does not answer after {what}")

    # --- disconnects ----------------------------------------------------------

    def disconnect_batch(self, tag, n):
        """n clients that hang up mid-call; returns the monitor's counts."""
        me = loadutil.name_owner()
        mon = loadutil.Monitor([f"type='method_call',sender='{me}',member='GetConnectionCredentials'",
                                f"type='method_return',destination='{me}'", f"type='error',destination='{me}'"])
        modes = ["now", "auth", "jitter"]
        started = time.monotonic()
        for i in range(n):
            kind = i % 4
            how = modes[(i // 4) % 3]
            if kind == 0:
                data = call_bytes(2, "CreateRegion", "sta{sv}", [f"{tag}{i}", 4096, {}])
            elif kind == 1:
                # The reply would carry an fd to a client that is gone.
                data = call_bytes(2, "GetFd", "ss", ["hostile-vm", "hostile-r"])
            elif kind == 2:
                data = call_bytes(2, "Attach", "sssa{sv}", ["hostile-vm", "hostile-r", "rw", {}])
            else:
                # More calls than gmemd parks per sender while the lookup is pending.
                data = call_bytes(2, "CreateRegion", "sta{sv}", [f"{tag}{i}", 4096, {}]) + b"".join(
                    call_bytes(3 + k, "GetRegion", "s", ["hostile-r"]) for k in range(80))
            hang_up_after(data, how)
        elapsed = time.monotonic() - started
        msgs = mon.drain(quiet=1.0 * SLOW)
        mon.close()
        lookups = {(m.fields.get(W.F_SENDER), m.serial): m.args[0] for m in msgs
                   if m.type == W.METHOD_CALL and m.member == "GetConnectionCredentials"}
        answered = gone = 0
        for m in msgs:
            if m.type in (W.METHOD_RETURN, W.ERROR) and (m.fields.get(W.F_DESTINATION), m.reply_serial) in lookups:
                if m.type == W.ERROR:
                    gone += 1
                else:
                    answered += 1
        return {"lookups": len(lookups), "answered": answered, "gone": gone, "seconds": elapsed}

    def test_disconnect_mid_call(self):
        self.create_region(name="hostile-r", size=1 << 20)
        vm = self.register_vm(name="hostile-vm")
        self.close_fd(self.attach(vm, "hostile-r"))
        st = self.stats()
        base = st.settled()
        rss_after = []
        for batch in range(1, BATCHES + 1):
            tag = f"h{batch}-"
            res = self.disconnect_batch(tag, ITERATIONS)
            self.assertServing(f"{ITERATIONS} clients hung up mid-call")
            made = [n for n in self.region_names() if n.startswith(tag)]
            loadutil.wait_for(lambda: st.fds() == base["fds"] + len(made), 5)
            fds = st.fds()
            for n in made:
                self.mgr("DestroyRegion", "s", n)
            loadutil.wait_for(lambda: st.fds() == base["fds"], 5)
            snap = st.snapshot()
            rss_after.append(snap["rss"])
            figure(f"hostile: disconnect batch {batch}: {ITERATIONS} clients hung up mid-call in "
                   f"{res['seconds']:.1f}s; gmemd looked up {res['lookups']} callers: {res['answered']} "
                   f"answered (their calls ran: {len(made)} regions made), {res['gone']} gone before the "
                   f"answer (their parked calls dropped); the rest never reached gmemd. gmemd fds "
                   f"{base['fds']} -> {fds} with the regions -> {snap['fds']}; rss {base['rss']} -> "
                   f"{snap['rss']} KiB")
            self.assertEqual(fds, base["fds"] + len(made),
                             "gmemd holds fds other than one per region made by a hung-up client")
            self.assertEqual(snap["fds"], base["fds"], "fds left after the regions were destroyed")
            self.assertGreater(res["gone"], 0, "no caller was gone while its lookup was pending: "
                               "the test did not exercise that path")
            if not WRAPPER:     # under valgrind gmemd is too slow to find any caller still there
                self.assertGreater(res["answered"], 0, "no hung-up caller's call ran")
            self.assertEqual(self.views_of_region("hostile-r"), [(vm, "rw", "active")],
                             "the view hung-up Attach and GetFd calls asked for changed")
        if MEMORY_CHECKED:
            self.assertLessEqual(rss_after[-1] - base["rss"], RSS_SLACK_KIB,
                                 f"gmemd's RSS grew from {base['rss']} to {rss_after[-1]} KiB")
            self.assertLessEqual(rss_after[-1] - rss_after[0], ROUND_GROWTH_KIB,
                                 f"gmemd's RSS grew from batch to equal batch: {rss_after}")

    def test_fds_on_calls_of_vanished_senders(self):
        """Calls carrying fds whose sender hangs up before they are
        authorized: parked with their fds, dropped with them."""
        st = self.stats()
        base = st.fds()
        readers = []
        n = max(ITERATIONS // 10, 20)
        for i in range(n):
            r, w = os.pipe()
            readers.append(r)
            data = call_bytes(2, "CreateRegion", "sta{sv}", [f"v{i}", 4096, {}], n_fds=1)
            hang_up_after(data, "now", fds=[w])
            os.close(w)
        ok = loadutil.wait_for(lambda: all(self._eof(r) for r in readers), 10 * SLOW)
        made = [x for x in self.region_names() if x.startswith("v")]
        for x in made:
            self.mgr("DestroyRegion", "s", x)
        open_copies = sum(1 for r in readers if not self._eof(r))
        for r in readers:
            os.close(r)
        figure(f"hostile: {n} hung-up callers sent an fd with CreateRegion: {len(made)} calls ran, "
               f"{open_copies} fds still open somewhere; gmemd fds {base} -> {st.fds()}")
        self.assertTrue(ok, f"{open_copies} of the fds sent by hung-up callers are still open")
        self.assertEqual(st.fds(), base)
        self.assertServing("fds from hung-up callers")

    @staticmethod
    def _eof(fd):
        """True once every write end of the pipe is closed everywhere."""
        p = select.poll()
        p.register(fd, select.POLLIN)
        if not p.poll(0):
            return False
        return os.read(fd, 1) == b""

    def pipelined_burst(self):
        """128 calls in one write from a new connection (128: dbus-daemon's
        max_replies_per_connection; more are refused by the bus itself)."""
        c = loadutil.raw()
        serials = list(range(c.serial + 1, c.serial + 129))
        c.serial += 128
        c.send_raw(b"".join(c.encode_call(*MANAGER, "ListRegions", serial=s) for s in serials))
        replies = [c.wait_reply(s) for s in serials]
        c.close()
        errors = {}
        for r in replies:
            key = "ok" if r.type == W.METHOD_RETURN else (r.error_name, r.args[0] if r.args else "")
            errors[key] = errors.get(key, 0) + 1
        return errors

    def test_pipelined_burst_while_lookup_pending(self):
        """gmemd parks up to 128 calls per sender while it looks the sender
        up (dbus-daemon's max_replies_per_connection: more cannot be
        waiting for replies): a burst of 128 calls from a new connection is
        served whole, whether or not it outruns the lookup. Five bursts."""
        res = {}
        for _ in range(5):
            for k, n in self.pipelined_burst().items():
                res[k] = res.get(k, 0) + n
        figure("hostile: 5 x 128 calls in one write from a new connection each: "
               + "; ".join(f"{n}x {k if k == 'ok' else k[0] + ': ' + repr(k[1])}" for k, n in res.items()))
        self.assertEqual(res, {"ok": 5 * 128}, "a permitted caller's pipelined calls were refused")
        self.assertServing("a pipelined burst")

    # --- a client that never reads ---------------------------------------------

    def hog(self, method, sig, args, seconds=3.0 * SLOW):
        """A client sends calls without ever reading a reply, as fast as the
        socket takes them, for a while; meanwhile another client measures
        its own calls' latency. Then the hog hangs up; returns the figures."""
        st = self.stats()
        base = st.settled()
        bus = DaemonStats(self.world.bus_pid())
        bus_base = bus.fds()
        good = loadutil.raw(timeout=PROBE_TIMEOUT)
        hog = loadutil.raw()
        hog.sock.setblocking(False)
        sent = 0
        lat = []
        unanswered = 0
        hog_dropped = None
        started = time.monotonic()
        next_probe = started
        while time.monotonic() - started < seconds:
            try:
                while True:
                    hog.sock.send(hog.encode_call(*MANAGER, method, sig, args))
                    sent += 1
                    if sent % 64 == 0:
                        break
            except BlockingIOError:
                time.sleep(0.001)
            except OSError:
                hog_dropped = time.monotonic() - started
                break
            if time.monotonic() >= next_probe:
                next_probe += 0.25
                t = time.monotonic()
                try:
                    mgr_call(good, "ListRegions")
                    lat.append(time.monotonic() - t)
                except (TimeoutError, OSError):
                    unanswered += 1
                    good.close()
                    good = loadutil.raw(timeout=PROBE_TIMEOUT)
        peak = st.snapshot()
        bus_peak = bus.fds()
        hog.close()
        t = time.monotonic()
        recovered = loadutil.wait_for(self.serving, 30 * SLOW, step=0.1)
        recovery = time.monotonic() - t
        good.close()
        loadutil.wait_for(lambda: st.fds() == base["fds"], 5)
        after = st.snapshot()
        return {"sent": sent, "max_latency": max(lat) if lat else None, "probes": len(lat),
                "unanswered": unanswered, "hog_dropped": hog_dropped, "base": base, "peak": peak,
                "after": after, "recovered": recovered, "recovery": recovery,
                "bus_fds": (bus_base, bus_peak), "seconds": seconds}

    def report_hog(self, what, res):
        figure(f"hostile: never-reading client ({what}): sent {res['sent']} calls in {res['seconds']:.0f}s; "
               f"the bus {'dropped it after %.1fs' % res['hog_dropped'] if res['hog_dropped'] else 'kept it connected'}; "
               f"another client: {res['probes']} calls answered (slowest "
               f"{(res['max_latency'] or 0) * 1000:.0f} ms), {res['unanswered']} unanswered within {PROBE_TIMEOUT} s; "
               f"gmemd fds {res['base']['fds']} -> {res['peak']['fds']} -> {res['after']['fds']}, rss "
               f"{res['base']['rss']} -> {res['peak']['rss']} -> {res['after']['rss']} KiB; {gmemtest.BUS_KIND} fds "
               f"{res['bus_fds'][0]} -> {res['bus_fds'][1]}; serving again {res['recovery']:.1f}s after the "
               f"hog hung up")

    def test_never_reading_client(self):
        res = self.hog("ListRegions", "", [])
        self.report_hog("ListRegions, replies without fds", res)
        self.assertEqual(res["unanswered"], 0, "another client's calls went unanswered")
        self.assertLess(res["max_latency"], 3.0 * SLOW, "another client's calls were held up")
        self.assertEqual(res["after"]["fds"], res["base"]["fds"])
        if MEMORY_CHECKED:
            self.assertLess(res["peak"]["rss"] - res["base"]["rss"], 4096,
                            "gmemd grew by more than 4 MiB for one never-reading client")

    _fd_hog = None

    def fd_hog(self):
        """Runs once for the two tests below."""
        if Hostile._fd_hog is None:
            vm = self.register_vm(name="hog-vm", cleanup=False)
            self.create_region(name="hog-r", size=1 << 20, cleanup=False)
            self.close_fd(self.attach(vm, "hog-r"))
            res = self.hog("GetFd", "ss", ["hog-vm", "hog-r"])
            self.report_hog("GetFd, every reply carries an fd", res)
            self.mgr("UnregisterVm", "s", vm)
            self.mgr("DestroyRegion", "s", "hog-r")
            Hostile._fd_hog = res
        return Hostile._fd_hog

    def test_never_reading_client_fds_recovery(self):
        res = self.fd_hog()
        self.assertTrue(res["recovered"], "gmemd did not serve again after the hog hung up")
        self.assertEqual(res["after"]["fds"], res["base"]["fds"], "gmemd kept fds of the hog's replies")
        self.assertLessEqual(res["peak"]["fds"], res["base"]["fds"] + 4,
                             "gmemd's fds grew with the hog's unread replies")

    def test_never_reading_client_fds_others_unaffected(self):
        """dbus-daemon stops reading gmemd's connection while 64 fds
        (max_incoming_unix_fds) of gmemd's replies wait in the queue of
        clients that do not read them. gmemd counts what it sent each
        client, asks the bus (GetConnectionStats) how many are still unread
        once a client has 16, and answers a client with too many unread
        with LimitsExceeded instead of an fd: other clients go on being
        served."""
        res = self.fd_hog()
        self.assertEqual(res["unanswered"], 0, "another client's calls went unanswered while a client "
                         "did not read replies that carry fds")

    def test_never_reading_client_refused_on_its_own_count(self):
        """200 GetFd calls from a client that reads nothing for 2 s, then
        reads: every reply is an fd or LimitsExceeded. On dbus-broker the
        first 16 (FDFLOW_CLIENT_MAX) are fds and the rest LimitsExceeded: it
        holds them until the client reads and says so in GetStats (its peer
        accounting, which gmemd reads as it has no GetConnectionStats). On
        dbus-daemon the fds it has written into the client's socket no
        longer count as queued (OutgoingFDs), so fds and refusals alternate
        as it writes; what matters there is that gmemd's connection is not
        stalled (test_never_reading_client_fds_others_unaffected)."""
        vm = self.register_vm()
        region = self.create_region(size=1 << 20)
        self.close_fd(self.attach(vm, region))
        c = loadutil.raw()
        serials = []
        for _ in range(200):
            serial = c.next_serial()
            c.send_raw(c.encode_call(*MANAGER, "GetFd", "ss", [vm, region], serial=serial), [])
            serials.append(serial)
        time.sleep(2 * SLOW)
        kinds = []
        for serial in serials:
            r = c.wait_reply(serial)
            for fd in r.fds:
                os.close(fd)
            kinds.append("fd" if r.type == W.METHOD_RETURN and r.fds else r.error_name)
        c.close()
        fds = kinds.count("fd")
        figure(f"hostile: 200 GetFd unread for 2 s, then read: {fds} fds, "
               f"{kinds.count('org.freedesktop.DBus.Error.LimitsExceeded')} LimitsExceeded")
        self.assertLessEqual(set(kinds), {"fd", "org.freedesktop.DBus.Error.LimitsExceeded"},
                             f"every reply is an fd or LimitsExceeded: {kinds}")
        if gmemtest.bus_is_broker():
            self.assertEqual(kinds, ["fd"] * 16 + ["org.freedesktop.DBus.Error.LimitsExceeded"] * 184,
                             "on dbus-broker gmemd refuses once 16 are unread")
        self.assertServing("a client that read its fd replies late")

    # --- unexpected fds -------------------------------------------------------

    def test_unexpected_fds(self):
        """Each kind of call with pipe write ends attached, 50 times: the
        reply is the one the call gets without fds, and every copy of every
        fd is closed (the read ends see EOF)."""
        region = self.create_region(size=1 << 20)
        vm = self.register_vm()
        self.close_fd(self.attach(vm, region))
        st = self.stats()
        base = st.settled()["fds"]
        c = loadutil.raw()
        V = W.Variant
        cases = [
            # (what, path, iface, method, signature, args, n_fds, expected error or None)
            ("ListRegions, signature empty, 16 fds", None, None, "ListRegions", "", [], 16, None),
            ("CreateRegion (sta{sv}) with 3 fds", None, None, "CreateRegion", "sta{sv}",
             ["fd-{i}", 4096, {}], 3, None),
            ("CreateRegion with an extra 'h'", None, None, "CreateRegion", "sta{sv}h",
             ["fd-x{i}", 4096, {}, 0], 1, "org.freedesktop.DBus.Error.InvalidArgs"),
            ("CreateRegion with an fd as the backend option", None, None, "CreateRegion", "sta{sv}",
             ["fd-y{i}", 4096, {"backend": V("h", 0)}], 1, E + "InvalidArgument"),
            ("GetFd with 2 fds", None, None, "GetFd", "ss", [vm, region], 2, None),
            ("Attach with 16 fds", None, None, "Attach", "sssa{sv}", [vm, region, "rw", {}], 16, None),
            ("Properties.Get with an fd", gmemtest.region_path(region), gmemtest.PROPS_IFACE, "Get", "ss",
             [gmemtest.REGION_IFACE, "Size"], 1, None),
            ("an unknown method with 4 fds", None, None, "NoSuchMethod", "h", [0], 4,
             "org.freedesktop.DBus.Error.UnknownMethod"),
            ("an unknown object with 4 fds", gmemtest.ROOT_PATH + "/nothing", gmemtest.REGION_IFACE,
             "Destroy", "", [], 4, "org.freedesktop.DBus.Error.UnknownObject"),
            ("DestroyRegion of no region with an fd", None, None, "DestroyRegion", "s", ["nope"], 1,
             E + "NoSuchRegion"),
        ]
        readers = []
        rounds = max(50 // SLOW, 5)
        for what, path, iface, method, sig, args, n_fds, expect in cases:
            for i in range(rounds):
                pipes = [os.pipe() for _ in range(n_fds)]
                readers += [r for r, _ in pipes]
                a = [x.format(i=i) if isinstance(x, str) else x for x in args]
                serial = c.next_serial()
                data = c.encode_call(gmemtest.BUS_NAME, path or gmemtest.ROOT_PATH, iface or gmemtest.MANAGER_IFACE,
                                     method, sig, a, n_fds=n_fds, serial=serial)
                c.send_raw(data, [w for _, w in pipes])
                for _, w in pipes:
                    os.close(w)
                reply = c.wait_reply(serial)
                for fd in reply.fds:
                    os.close(fd)
                if expect:
                    self.assertEqual(reply.error_name, expect, f"{what}: {reply}")
                    self.assertTrue(reply.args and reply.args[0], f"{what}: {expect} without a message")
                else:
                    self.assertEqual(reply.type, W.METHOD_RETURN, f"{what}: {reply}")
        c.close()
        made = [x for x in self.region_names() if x.startswith("fd-")]
        self.assertEqual(len(made), rounds, "CreateRegion with fds attached should work as without")
        for x in made:
            self.mgr("DestroyRegion", "s", x)
        ok = loadutil.wait_for(lambda: all(self._eof(r) for r in readers), 10 * SLOW)
        still = sum(1 for r in readers if not self._eof(r))
        for r in readers:
            os.close(r)
        figure(f"hostile: {len(cases)} kinds of call x {rounds} with {len(readers)} fds attached in all: "
               f"{still} still open afterwards; gmemd fds {base} -> {st.fds()}")
        self.assertTrue(ok, f"{still} fds attached to calls were not closed")
        self.assertEqual(st.fds(), base, "gmemd's open fds changed")
        self.assertServing("unexpected fds")

    # --- sizes at the bus's limits ---------------------------------------------

    def test_names_at_the_limit(self):
        for kind, create, destroy in (("region", "CreateRegion", "DestroyRegion"),
                                      ("VM", "RegisterVm", "UnregisterVm")):
            sig = "sta{sv}" if kind == "region" else "sa{sv}"
            size = [dbus.UInt64(4096)] if kind == "region" else []
            for name in ("n" * 64, "-" * 64, "9" + "_" * 63, "a." * 32):
                path = self.mgr(create, sig, name, *size, gmemtest.dbus_options({}))
                expect = (gmemtest.region_path if kind == "region" else gmemtest.vm_path)(name)
                self.assertEqual(str(path), expect, f"object path of the {kind} '{name}'")
                iface = gmemtest.REGION_IFACE if kind == "region" else gmemtest.VM_IFACE
                self.assertEqual(str(self.get_prop(expect, iface, "Name")), name,
                                 f"the {kind} is reachable at its {len(expect)}-byte path")
                self.mgr(destroy, "s", name)
            for name in ("n" * 65, "-" * 65, "n" * 255, "n" * 4096):
                self.assertMgrError("InvalidName", create, sig, name, *size, gmemtest.dbus_options({}),
                                    contains=[f"{len(name)} characters", "the limit is 64"])
        self.assertEqual([n for n in self.region_names() if len(n) >= 64], [])

    def test_object_paths_at_the_limit(self):
        """Paths under the region and VM prefixes of 255 bytes, 64 KiB and
        just over 64 KiB. sd-bus (BUS_PATH_SIZE_MAX) drops a message whose
        path is longer than 64 KiB without a reply; gmemd cannot see it."""
        st = self.stats()
        base = st.fds()
        outcomes = []
        for prefix, iface, method in ((gmemtest.ROOT_PATH + "/region/", gmemtest.REGION_IFACE, "Destroy"),
                                      (gmemtest.ROOT_PATH + "/vm/", gmemtest.VM_IFACE, "Unregister"),
                                      (gmemtest.ROOT_PATH + "/migration/", gmemtest.MIGRATION_IFACE, "Abort")):
            for size in (255, 4096, 65536, 65537, 1 << 20) if "region" in prefix else (255, 65536):
                path = prefix + "a" * (size - len(prefix))
                c = loadutil.raw(timeout=2 * SLOW)
                try:
                    r = c.call(gmemtest.BUS_NAME, path, iface, method)
                    got = r.error_name or "a method return"
                except TimeoutError:
                    got = "no reply"
                c.close()
                outcomes.append(f"{size}:{got.rsplit('.', 1)[-1]}")
                if size <= 65536:
                    self.assertEqual(got, "org.freedesktop.DBus.Error.UnknownObject",
                                     f"a {size}-byte path under {prefix}")
                self.assertServing(f"a {size}-byte object path")
        figure(f"hostile: object paths: {', '.join(outcomes)}; gmemd fds {base} -> {st.fds()}")
        self.assertEqual(st.fds(), base)

    def test_interface_and_member_names_at_the_limit(self):
        c = loadutil.raw()
        r = c.call(gmemtest.BUS_NAME, gmemtest.ROOT_PATH, "org.gmemd." + "x" * 245, "Foo")
        self.assertEqual(r.error_name, "org.freedesktop.DBus.Error.UnknownMethod", f"{r}")
        r = c.call(gmemtest.BUS_NAME, gmemtest.ROOT_PATH, gmemtest.MANAGER_IFACE, "F" * 255)
        self.assertEqual(r.error_name, "org.freedesktop.DBus.Error.UnknownMethod", f"{r}")
        c.close()
        self.assertServing("255-character interface and member names")

    def test_long_strings(self):
        """Strings of 1 MiB in every string argument gmemd reads, and of
        8 MiB and as long as the bus lets a message be (dbus-daemon's
        max_message_size, 32 MiB by default) in two of them: each refused
        with a named error whose message does not repeat the string; then
        one over the limit, which dbus-daemon refuses before gmemd sees it
        (it hangs up) and dbus-broker passes on (its limit is the
        specification's 128 MiB): gmemd refuses the name.
        gmemd's memory may keep the high-water mark of one such message
        (glibc raises its mmap threshold after freeing a large block), but
        must not grow when they are sent again."""
        region = self.create_region()
        vm = self.register_vm()
        st = self.stats()
        base = st.snapshot()
        V = W.Variant
        limit = 32 << 20
        sizes = [1 << 20, 8 << 20, limit - 4096]
        if WRAPPER:
            sizes = sizes[:1]

        def cases(n):
            s = "x" * n
            few = [
                ("CreateRegion", "sta{sv}", [s, 4096, {}], "InvalidName", f"{n} characters"),
                ("CreateRegion", "sta{sv}", ["ok", 4096, {s: V("b", True)}], "InvalidArgument",
                 "Unknown option"),
            ]
            if n > sizes[0]:
                return few
            return few + [
                ("Attach", "sssa{sv}", [vm, region, s, {}], "InvalidArgument", "Invalid access"),
                ("RegisterVm", "sa{sv}", [s, {}], "InvalidName", f"{n} characters"),
                ("GetRegion", "s", [s], "InvalidName", f"{n} characters"),
                ("GetVm", "s", [s], "InvalidName", f"{n} characters"),
                ("Attach", "sssa{sv}", [vm, s, "rw", {}], "InvalidName", f"{n} characters"),
                ("Attach", "sssa{sv}", [s, region, "rw", {}], "InvalidName", f"{n} characters"),
                ("CreateRegion", "sta{sv}", ["ok", 4096, {"backend": V("s", s)}], "InvalidArgument",
                 "Unknown backend"),
                ("CreateRegion", "sta{sv}", ["ok", 4096, {"owner": V("s", s)}], "InvalidName",
                 f"{n} characters"),
                ("SetMemoryAttributes", "stts", [region, 0, 4096, s], None, None),
                ("DestroyRegion", "s", [s], "InvalidName", f"{n} characters"),
            ]

        def send(method, sig, args, err, contains, n):
            c = loadutil.raw(timeout=60 * SLOW)
            r = mgr_call(c, method, sig, args)
            c.close()
            self.assertEqual(r.type, W.ERROR, f"{method} with a {n}-byte string succeeded")
            msg = r.args[0] if r.args else ""
            if err:
                self.assertEqual(r.error_name, E + err, f"{method} with a {n}-byte string: {msg[:200]}")
                self.assertIn(contains, msg, f"{method}: the message should say {contains!r}")
            else:
                self.assertTrue(r.error_name.startswith(E), f"{method}: {r.error_name}: {msg[:200]}")
            self.assertLess(len(msg), 4096, f"{method}: the error message repeats the string")
            return r.error_name

        names = set()
        for n in sizes:
            for case in cases(n):
                names.add(send(*case, n).rsplit(".", 1)[-1])
        first = st.snapshot()
        for case in cases(sizes[-1]):
            send(*case, sizes[-1])
        # The last buffer may be in use or not yet given back when the
        # reply arrives; memory that is kept stays.
        loadutil.wait_for(lambda: st.rss_kib() < first["rss"] + limit // 2 // 1024, 5)
        again = st.snapshot()
        # Over the bus's limit: the bus hangs up on the sender.
        c = loadutil.raw(timeout=60 * SLOW)
        try:
            r = mgr_call(c, "CreateRegion", "sta{sv}", ["x" * (limit + 4096), 4096, {}])
            over = f"answered {r.error_name}"
        except (ConnectionError, OSError) as e:
            over = f"the bus hung up ({type(e).__name__})"
        c.close()
        self.assertNotIn("ok", self.region_names())
        self.assertServing("strings at the bus's limits")
        after = st.snapshot()
        figure(f"hostile: strings of {', '.join(str(x) for x in sizes)} bytes refused with "
               f"{', '.join(sorted(names))}; {limit + 4096} bytes: {over}; gmemd fds {base['fds']} -> "
               f"{after['fds']}, rss {base['rss']} -> {first['rss']} after the first of each -> "
               f"{again['rss']} after more of the largest -> {after['rss']} KiB")
        self.assertEqual(after["fds"], base["fds"])
        if MEMORY_CHECKED:
            # Two more messages of 32 MiB went through: keeping either would
            # show as 32 MiB.
            self.assertLess(again["rss"] - first["rss"], limit // 2 // 1024,
                            "gmemd's memory grew with the huge messages it received")

    def test_nested_variants(self):
        """An a{sv} holds 2 levels of the 64 the bus allows: variants nested
        62 deep reach gmemd and are refused by type; 63 are refused by the
        bus itself. dbus-broker counts one level more (the body's own
        struct, as its message reader sees it): there 61 reach gmemd and 62
        get the sender disconnected ("sent a message with an invalid
        body")."""
        deepest = 61 if gmemtest.bus_is_broker() else 62
        V = W.Variant
        deep_array = V("a" * 30 + "b", [])
        deep_struct = V("(" * 30 + "b" + ")" * 30, None)

        def nest_struct(depth):
            v = True
            for _ in range(depth):
                v = (v,)
            return v
        deep_struct.value = nest_struct(30)
        for depth in (2, 16, 32, deepest):
            c = loadutil.raw()
            r = mgr_call(c, "CreateRegion", "sta{sv}", ["nv", 4096, {"populate": W.nested_variant(depth, "b", True)}])
            self.assertEqual(r.error_name, E + "InvalidArgument", f"depth {depth}: {r}")
            self.assertIn("Option 'populate' must be of type 'b', not 'v'", r.args[0])
            r = mgr_call(c, "RegisterVm", "sa{sv}", ["nv", {"uid": W.nested_variant(depth, "u", 1)}])
            self.assertEqual(r.error_name, E + "InvalidArgument", f"depth {depth}: {r}")
            r = mgr_call(c, "CreateRegion", "sta{sv}", ["nv", 4096, {"zz": W.nested_variant(depth, "b", True)}])
            self.assertEqual(r.error_name, E + "InvalidArgument", f"depth {depth}: {r}")
            c.close()
        c = loadutil.raw()
        for v in (deep_array, deep_struct):
            r = mgr_call(c, "CreateRegion", "sta{sv}", ["nv", 4096, {"backend": v}])
            self.assertEqual(r.error_name, E + "InvalidArgument", f"{v.signature}: {r}")
        # Duplicate and many keys.
        r = mgr_call(c, "CreateRegion", "sta{sv}", ["nv", 4096, [("populate", V("b", False)),
                                                                  ("populate", V("b", True))]])
        self.assertEqual(r.error_name, E + "InvalidArgument")
        self.assertIn("given twice", r.args[0])
        r = mgr_call(c, "CreateRegion", "sta{sv}", ["nv", 4096, [(f"k{i}", V("b", True)) for i in range(100000)]])
        self.assertEqual(r.error_name, E + "InvalidArgument")
        c.close()
        c = loadutil.raw()
        try:
            mgr_call(c, "CreateRegion", "sta{sv}", ["nv", 4096,
                                                    {"populate": W.nested_variant(deepest + 1, "b", True)}])
            self.fail(f"the bus passed variants nested {deepest + 1} deep in an a{{sv}}")
        except (ConnectionError, OSError):
            pass
        c.close()
        self.assertNotIn("nv", self.region_names())
        self.assertServing("deeply nested variants")


if __name__ == "__main__":
    loadutil.need_root()
    gmemtest.main()
