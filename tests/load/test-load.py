#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Load: 32 concurrent clients (processes, each its own bus connection, see
load-client.py) create, attach, write, read back through other views,
migrate, commit or abort, detach and destroy for a bounded time and a
bounded number of requests, under a policy whose per-uid quotas are tight
enough that QuotaExceeded happens. Then:

  - no client saw an error other than QuotaExceeded;
  - every region a client left behind has its content, read back through
    a fresh GetFd after its writer exited;
  - once everything is gone, gmemd holds exactly the fds it held before
    the load, and its RSS is back near its baseline (see RSS_SLACK_KIB).

The load runs in two rounds of the same size. RSS after the second round
must not exceed RSS after the first by more than ROUND_GROWTH_KIB: memory
that grows with the amount of work done is a leak, whatever the allocator
keeps.

Environment: GMEM_LOAD_SECONDS (per round, default 10), GMEM_LOAD_REQUESTS
(per client per round, default 2500), GMEM_LOAD_CLIENTS (default 32),
GMEM_LOAD_ROUNDS (default 2). The 'load-long' benchmark runs it for longer.
"""

import importlib
import json
import os
import pwd
import subprocess
import sys
import threading
import time
import zlib

import dbuswire
import gmemtest
import loadutil
from gmemtest import GmemTestCase
from loadutil import figure, DaemonStats

CLIENTS = int(os.environ.get("GMEM_LOAD_CLIENTS", "32"))
SECONDS = float(os.environ.get("GMEM_LOAD_SECONDS", "10"))
REQUESTS = int(os.environ.get("GMEM_LOAD_REQUESTS", "2500"))
ROUNDS = int(os.environ.get("GMEM_LOAD_ROUNDS", "2"))

# Clients run under another uid, so that the quotas of their class apply to
# them and not to the checks the test makes as root.
CLIENT_UID = pwd.getpwnam("daemon").pw_uid
CLIENT_GID = pwd.getpwnam("daemon").pw_gid

# Tight on purpose: 32 clients each hold up to three regions and three views
# at a time, so these quotas are hit now and then.
POLICY = {
    "version": 1,
    "classes": [
        {"name": "load", "match": {"uids": [CLIENT_UID]},
         "verbs": ["list", "create-region", "destroy-region", "register-vm", "unregister-vm",
                   "attach", "detach", "get-fd", "migrate"],
         "backends": ["memfd"], "max_region_size": "1M",
         "quota": {"bytes": "24M", "regions": 64, "vms": 3 * CLIENTS, "views": 40}},
        {"name": "admin", "match": {"uids": [0]}, "verbs": ["all"], "scope": "all", "backends": ["all"]},
    ],
}

# RSS slack, justified: after the load, glibc's allocator keeps part of the
# peak heap (freed chunks below the top of the heap cannot be returned,
# and malloc_trim is not called), the hashmaps of regions, VMs and the
# credentials cache keep the bucket arrays of their peak size, and sd-bus
# keeps its read buffer. None of that grows with the number of requests,
# which ROUND_GROWTH_KIB checks.
RSS_SLACK_KIB = 1024
ROUND_GROWTH_KIB = 128
CLIENT_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "load-client.py")


class Load(GmemTestCase):

    @classmethod
    def setUpClass(cls):
        cls.policy_path = os.path.join(gmemtest.WORLD.tmp, "policy.json")
        loadutil.write_policy(cls.policy_path, POLICY)
        gmemtest.WORLD.start_gmemd(["--policy=" + cls.policy_path])

    def run_round(self, tag, stats):
        """Starts every client at once; samples gmemd while they run;
        returns their reports and the peak figures."""
        procs = []
        for i in range(CLIENTS):
            kw = dict(user=CLIENT_UID, group=CLIENT_GID, extra_groups=[])
            procs.append(subprocess.Popen(
                ["/usr/bin/python3", CLIENT_SCRIPT, self.world.address, tag, str(i), str(SECONDS),
                 str(REQUESTS), str(zlib.crc32(f"{tag}/{i}".encode()))],
                env=self.world.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL, cwd="/", **kw))
        peak = {"fds": 0, "rss": 0}
        done = threading.Event()

        def sample():
            while not done.is_set():
                try:
                    s = stats.snapshot()
                    peak["fds"] = max(peak["fds"], s["fds"])
                    peak["rss"] = max(peak["rss"], s["rss"])
                except OSError:
                    pass
                done.wait(0.2)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        reports, failures = [], []
        started = time.monotonic()
        cpu0 = stats.cpu_seconds()
        try:
            for i, p in enumerate(procs):
                try:
                    out, err = p.communicate(timeout=SECONDS + 180)
                except subprocess.TimeoutExpired:
                    p.kill()
                    out, err = p.communicate()
                    failures.append(f"client {i} did not finish within {SECONDS + 180:.0f}s\n{err.decode()}")
                    continue
                if p.returncode != 0:
                    failures.append(f"client {i} exited with {p.returncode}:\n{err.decode()}")
                    continue
                reports.append(json.loads(out))
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            done.set()
            sampler.join()
        elapsed = time.monotonic() - started
        cpu = stats.cpu_seconds() - cpu0
        self.check_daemon_alive()
        self.assertEqual(failures, [], "every client must run to its end")
        return reports, peak, elapsed, cpu

    def check_survivors(self, reports):
        """Each client's last region still holds its pattern, read through a
        fresh fd of the view its writer left behind; then it is removed."""
        sys.path.insert(0, os.path.dirname(CLIENT_SCRIPT))
        lc = importlib.import_module("load-client")
        regions = {str(r[0]): int(r[1]) for r in self.mgr("ListRegions")}
        checked = 0
        for rep in reports:
            s = rep["survivor"]
            self.assertIsNotNone(s, f"client {rep['client']} left no region behind")
            self.assertEqual(regions.get(s["region"]), s["size"],
                             f"region {s['region']} is not listed with its size")
            fd = self.get_fd(s["vm"], s["region"])
            bad = lc.check_pattern(fd, s["region"], s["size"])
            self.close_fd(fd)
            self.assertEqual(bad, [], f"region {s['region']}: pages {bad} lost their content")
            checked += 1
        for rep in reports:
            s = rep["survivor"]
            self.mgr("Detach", "ss", s["vm"], s["region"])
            self.mgr("DestroyRegion", "s", s["region"])
        for name in self.vm_names():
            self.mgr("UnregisterVm", "s", name)
        return checked

    def check_quota_released(self):
        """With everything gone, the clients' uid may use its whole quota
        again: no charge leaked under load. Returns what it could make."""
        quota = POLICY["classes"][0]["quota"]

        def fill():
            c = loadutil.raw()
            made = {"regions": 0, "views": 0}
            refused = {}
            vm = "quota-check"
            loadutil.mgr_call(c, "RegisterVm", "sa{sv}", [vm, {}])
            for i in range(quota["regions"] + 1):
                r = loadutil.mgr_call(c, "CreateRegion", "sta{sv}", [f"q{i}", 4096, {}])
                if r.type == dbuswire.ERROR:
                    refused["regions"] = r.error_name
                    break
                made["regions"] += 1
            for i in range(min(made["regions"], quota["views"] + 1)):
                r = loadutil.mgr_call(c, "Attach", "sssa{sv}", [vm, f"q{i}", "ro", {}])
                if r.type == dbuswire.ERROR:
                    refused["views"] = r.error_name
                    break
                made["views"] += 1
            loadutil.mgr_call(c, "UnregisterVm", "s", [vm])
            for i in range(made["regions"]):
                loadutil.mgr_call(c, "DestroyRegion", "s", [f"q{i}"])
            c.close()
            return {"made": made, "refused": refused}

        res = gmemtest.run_as(CLIENT_UID, CLIENT_GID, fill)
        self.assertTrue(res["ok"], f"the quota check failed: {res}")
        res = res["value"]
        self.assertEqual(res["made"], {"regions": quota["regions"], "views": quota["views"]},
                         f"after the load the clients' uid cannot use its whole quota: {res}")
        self.assertEqual(res["refused"], {"regions": loadutil.QUOTA_EXCEEDED,
                                          "views": loadutil.QUOTA_EXCEEDED}, f"{res}")
        return res["made"]

    def test_concurrent_clients(self):
        stats = DaemonStats(self.world.gmemd_pid())
        base = stats.snapshot()
        figure(f"load: baseline gmemd fds={base['fds']} rss={base['rss']} KiB anon={base['anon']} KiB")
        after = []
        total = {"requests": 0, "cycles": 0, "quota": 0, "pages": 0, "committed": 0, "aborted": 0}
        for rnd in range(1, ROUNDS + 1):
            reports, peak, elapsed, cpu = self.run_round(f"L{rnd}", stats)
            errors = [dict(e, client=r["client"]) for r in reports for e in r["errors"]]
            requests = sum(r["requests"] for r in reports)
            cycles = sum(r["cycles"] for r in reports)
            quota = {}
            for r in reports:
                for k, v in r["quota"].items():
                    quota[k] = quota.get(k, 0) + v
            survivors = self.check_survivors(reports) if not errors else 0
            self.assertEqual(self.region_names(), [], "regions left after the clients cleaned up")
            self.assertEqual(self.vm_names(), [], "VMs left after the clients cleaned up")
            # Replies in flight may hold a dup for a moment.
            loadutil.wait_for(lambda: stats.fds() == base["fds"], 5)
            snap = stats.snapshot()
            after.append(snap)
            figure(f"load: round {rnd}: {len(reports)} clients, {elapsed:.1f}s, {requests} requests "
                   f"({requests / elapsed:.0f}/s), {cycles} full cycles, "
                   f"{sum(r['committed'] for r in reports)} commits, "
                   f"{sum(r['aborted'] for r in reports)} aborts, "
                   f"{sum(r['pages_checked'] for r in reports)} pages verified, "
                   f"QuotaExceeded {sum(quota.values())} {quota}, other errors {len(errors)}, "
                   f"{survivors} survivors intact; gmemd cpu {cpu:.1f}s")
            figure(f"load: round {rnd}: gmemd fds {base['fds']} -> peak {peak['fds']} -> {snap['fds']}; "
                   f"rss {base['rss']} -> peak {peak['rss']} -> {snap['rss']} KiB "
                   f"(anon {snap['anon']} KiB)")
            self.assertEqual(errors[:10], [], f"{len(errors)} errors other than QuotaExceeded")
            self.assertGreater(cycles, 0, "no client completed a cycle")
            self.assertEqual(snap["fds"], base["fds"], "gmemd's open fds did not return to the baseline: "
                             f"{loadutil.DaemonStats(stats.pid).fd_targets()}")
            total["requests"] += requests
            total["cycles"] += cycles
            total["quota"] += sum(quota.values())
        self.assertGreater(total["quota"], 0, "the quotas were never hit: the policy is not tight enough "
                           "to exercise QuotaExceeded under load")
        made = self.check_quota_released()
        figure(f"load: quota released: {made['regions']} regions and {made['views']} views made "
               f"again by the clients' uid, the next refused with QuotaExceeded")
        self.assertEqual(stats.fds(), base["fds"], "fds left after the quota check")
        figure(f"load: total {total['requests']} requests, {total['cycles']} cycles, "
               f"{total['quota']} QuotaExceeded")
        if not loadutil.memory_checked():
            figure("load: RSS not checked: gmemd runs under a wrapper or in a sanitizer build")
            return
        self.assertLessEqual(after[-1]["rss"] - base["rss"], RSS_SLACK_KIB,
                             f"gmemd's RSS is {after[-1]['rss']} KiB after the load, "
                             f"{base['rss']} KiB before (slack {RSS_SLACK_KIB} KiB)")
        if len(after) > 1:
            self.assertLessEqual(after[-1]["rss"] - after[0]["rss"], ROUND_GROWTH_KIB,
                                 f"gmemd's RSS grew from {after[0]['rss']} to {after[-1]['rss']} KiB "
                                 f"between rounds of the same load: a leak")


if __name__ == "__main__":
    loadutil.need_root()
    gmemtest.main(start_daemon=False)
