#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The daemon's life: --help and --version, READY=1 and STATUS= over
sd_notify once it serves, a clean exit 0 on SIGTERM and on SIGINT, and
the name released when it is gone. These tests start their own gmemd
instances on the private bus, one after the other.
"""
import os
import re
import signal
import subprocess
import tempfile

import gmemtest
from gmemtest import GmemTestCase, BUS_NAME, WRAPPER, SLOW

SOURCE = os.environ.get("GMEM_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))


class Daemon(GmemTestCase):

    def setUp(self):
        self._fds = []   # no shared daemon in this file

    def test_help(self):
        res = self.run_cmd([self.world.gmemd, "--help"])
        self.assertIn("gmemd", res.out)
        self.assertIn("--version", res.out)

    def test_help_names_the_pages_policy_path(self):
        # The policy file --help names is the one the installed gmemd(8) and gmemd.policy(5) name.
        res = self.run_cmd([self.world.gmemd, "--help"])
        m = re.search(r"--policy=PATH\s+Policy file \(default (\S+),", res.out)
        self.assertTrue(m, f"--help names the default policy file:\n{res.out}")
        built = os.path.join(os.environ.get("GMEM_BUILD_ROOT", ""), "man")
        if not os.path.exists(os.path.join(built, "gmemd.8")):
            self.skipTest("the manual pages were not built (no scdoc)")
        for page in ("gmemd.8", "gmemd.policy.5"):
            with open(os.path.join(built, page)) as f:
                text = f.read().replace("\\&", "").replace("\\-", "-")
            with self.subTest(page=page):
                self.assertTrue(m.group(1) in text, f"the built {page} names {m.group(1)}, the file --help names")

    def test_version(self):
        res = self.run_cmd([self.world.gmemd, "--version"])
        version = os.environ.get("GMEM_VERSION")
        if version:
            self.assertIn(version, res.out)
        else:
            self.assertRegex(res.out, r"\d+\.\d+")

    def test_bad_option(self):
        res = self.run_cmd([self.world.gmemd, "--no-such-option"], expect=None)
        self.assertNotEqual(res.rc, 0, "an unknown option was accepted")
        self.assertTrue(res.err.strip(), "no message for an unknown option")
        for args in (["--no-such-option"], ["--log-level"], ["stray-argument"], ["--log-level=loud"]):
            with self.subTest(args=args):
                res = self.run_cmd([self.world.gmemd] + args, expect=None)
                self.assertEqual(res.rc, 1, f"gmemd {args} fails")
                self.assertIn("Try 'gmemd --help'", res.err, "and points at --help")

    def test_man_page_example(self):
        # gmemd(8)'s EXAMPLE, as printed, in a directory of its own: it brings up its bus and gmemd, makes a
        # region, lists it, and stops both.
        if WRAPPER:
            self.skipTest("the example starts gmemd itself, not under the wrapper")
        with open(os.path.join(SOURCE, "man", "gmemd.8.scd")) as f:
            page = f.read()
        section = page[page.index("# EXAMPLE"):page.index("# SEE ALSO")]
        script = section.split("```")[1]
        d = tempfile.mkdtemp(prefix="gmemd-example.", dir=self.world.tmp)
        env = {k: v for k, v in self.world.env.items() if k != "DBUS_SYSTEM_BUS_ADDRESS"}
        env["PATH"] = ":".join([os.path.dirname(self.world.gmemd), os.path.dirname(self.world.gmemctl),
                                env.get("PATH", "/usr/bin:/bin")])
        p = subprocess.run(["timeout", str(60 * SLOW), "bash", "-e", "-c", script.replace("/tmp/gmemd", d)],
                           env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, f"the example runs as printed:\n{p.stdout}{p.stderr}")
        self.assertRegex(p.stdout, r"(?m)^ram\s", f"and lists the region it made:\n{p.stdout}")

    def lifecycle(self, sig):
        w = self.world
        w.start_gmemd()
        try:
            self.wait_until(lambda: "READY=1" in w.drain_notify(), "READY=1 from gmemd")
            self.assertTrue(any(m.startswith("STATUS=") for m in w.drain_notify()),
                            f"no STATUS= line in {w.drain_notify()}")
            # It serves.
            self.assertEqual(str(self.mgr("GetRegion", "s", self.create_region(4096))).count(
                "/region/"), 1)
            self.doCleanups()
        finally:
            st = w.stop_gmemd(sig)
        self.assertEqual(st, 0, f"gmemd exited with {st} on {sig.name}\n{w.gmemd_log_text()}")
        self.assertFalse(w.conn.name_has_owner(BUS_NAME), "the bus name is still owned")

    def test_sigterm_clean_exit(self):
        self.lifecycle(signal.SIGTERM)

    def test_sigint_clean_exit(self):
        self.lifecycle(signal.SIGINT)

    def test_second_instance_refused(self):
        w = self.world
        w.start_gmemd()
        try:
            env = dict(w.env)
            env.pop("NOTIFY_SOCKET", None)
            p = subprocess.run(WRAPPER + [w.gmemd], env=env, stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=30 * SLOW)
            self.assertNotEqual(p.returncode, 0,
                                "a second gmemd on the same bus did not fail")
            self.assertIsNone(w.gmemd_proc.poll(), "the first gmemd died")
        finally:
            st = w.stop_gmemd()
        self.assertEqual(st, 0)


if __name__ == "__main__":
    gmemtest.main(start_daemon=False)
