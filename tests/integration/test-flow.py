#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The whole flow of tools/demo, driven with gmemctl alone, as an operator
would: create a region, register VMs a, b and c, attach the region
read-write to a and read-only to b, write through a's mapping and read
through b's, fail to write through b, discard a range and read zeros in
both, migrate a to c without copying, list everything, clean up.
The hypervisors are played by tools/gmem-mmap under `gmemctl --exec`.
"""
import json
import os
import sys

import gmemtest
from gmemtest import GmemTestCase, find_in_json

HELPER = os.path.join(os.environ.get("GMEM_SOURCE_ROOT",
                                     os.path.join(os.path.dirname(__file__), "..", "..")),
                      "tools", "gmem-mmap")


class Flow(GmemTestCase):

    def helper(self, vm, region, *args, verb="get-fd", ro=False, expect=0):
        cmd = [verb, vm, region] + (["--ro"] if ro else []) + \
              ["--exec", "--", sys.executable, HELPER] + list(args)
        return self.gmemctl(*cmd, expect=expect)

    def test_demo_flow(self):
        r = self.uniq("ram")
        a, b, c = self.uniq("a"), self.uniq("b"), self.uniq("c")
        self.addCleanup(self._quietly, "DestroyRegion", "s", r)
        for vm in (a, b, c):
            self.addCleanup(self._quietly, "UnregisterVm", "s", vm)

        self.gmemctl("create-region", r, "64M")
        for vm in (a, b, c):
            self.gmemctl("register-vm", vm)

        res = self.helper(a, r, "info", verb="attach")
        self.assertIn("read-write", res.out, f"a's view is not read-write:\n{res}")
        res = self.helper(b, r, "info", verb="attach", ro=True)
        self.assertIn("read-only", res.out, f"b's view is not read-only:\n{res}")

        self.helper(a, r, "write", "1M", "hello from a")
        res = self.helper(b, r, "read", "1M", "12")
        self.assertIn("'hello from a'", res.out, f"b does not see a's write:\n{res}")

        res = self.helper(b, r, "try-write", "1M", "b was here")
        self.assertIn("refused", res.out)
        res = self.helper(a, r, "read", "1M", "12")
        self.assertIn("'hello from a'", res.out, f"b's attempt changed the data:\n{res}")

        self.gmemctl("discard", r, "1M", "4K")
        for vm in (a, b):
            res = self.helper(vm, r, "read", "1M", "12")
            self.assertIn("<12 zero bytes>", res.out, f"{vm} still sees discarded data:\n{res}")

        self.helper(a, r, "write", "2M", "state of a")
        self.gmemctl("migrate", a, c)
        res = self.helper(c, r, "read", "2M", "10")
        self.assertIn("'state of a'", res.out, f"c does not see a's memory:\n{res}")
        res = self.helper(c, r, "info")
        self.assertIn("read-write", res.out, "c's migrated view lost a's read-write access")
        self.helper(a, r, "info", expect=1)  # a's view is revoked: GetFd refuses it

        regions = self.gmemctl("list-regions").out
        self.assertIn(r, regions)
        vms = self.gmemctl("list-vms").out
        for vm in (a, b, c):
            self.assertIn(vm, vms)
        migrations = self.gmemctl("list-migrations").out
        self.assertIn(a, migrations)
        self.assertIn("committed", migrations)
        for verb in ("list-regions", "list-vms", "list-migrations"):
            out = self.gmemctl("--json=short", verb).out
            data = json.loads(out)
            self.assertTrue(find_in_json(data, r) or find_in_json(data, a),
                            f"{verb} --json does not mention the objects:\n{out}")

        self.gmemctl("detach", b, r)
        for vm in (a, b, c):
            self.gmemctl("unregister-vm", vm)
        self.gmemctl("destroy-region", r)
        self.assertNotIn(r, self.region_names())
        self.assertEqual([v for v in self.vm_names() if v in (a, b, c)], [])


if __name__ == "__main__":
    gmemtest.main()
