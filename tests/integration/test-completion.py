#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
gmemctl's bash completion (shell-completion/bash/gmemctl), driven as bash
drives it: the file is sourced into a bash without the bash-completion
package, COMP_WORDS and COMP_CWORD are set to a command line, _gmemctl runs,
and COMPREPLY is read back. Verbs, options and their fixed values come from
the file; the names of regions, VMs and migrations from the real gmemd on
the test bus, through the gmemctl under test. meson install puts the file
where bash-completion looks.
"""
import json
import os
import subprocess

import gmemtest     # before dbus: without python3-dbus it skips the file with the reason

import dbus
from gmemtest import MiB, GmemTestCase

SOURCE = os.environ.get("GMEM_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("GMEM_BUILD_ROOT", "")
COMPLETION = os.path.join(SOURCE, "shell-completion", "bash", "gmemctl")


class Completion(GmemTestCase):

    def complete(self, line, env=None):
        """The completions bash would offer for line, whose last word is the one completed."""
        words = line.split(" ")
        script = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); '
                  'COMP_LINE="${*}"; _gmemctl; printf "%s\\n" "${COMPREPLY[@]}"')
        e = dict(env or self.world.env)
        e["PATH"] = os.path.dirname(self.world.gmemctl) + ":" + e.get("PATH", "/usr/bin:/bin")
        p = subprocess.run(["bash", "--norc", "--noprofile", "-c", script, "bash", COMPLETION] + words,
                           env=e, capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, "", f"completing {line!r} printed nothing on stderr")
        return sorted(w for w in p.stdout.split("\n") if w)

    def test_verbs(self):
        self.assertEqual(self.complete("gmemctl list-"), ["list-migrations", "list-regions", "list-vms"])
        self.assertEqual(self.complete("gmemctl sh"), ["show"])
        self.assertIn("create-region", self.complete("gmemctl "))
        self.assertEqual(self.complete("gmemctl ad"), ["adopt-region"])
        self.assertEqual(self.complete("gmemctl hot"), ["hotplug"])
        self.assertEqual(self.complete("gmemctl unp"), ["unplug"])

    def test_options_and_values(self):
        self.assertEqual(self.complete("gmemctl --no-"), ["--no-commit", "--no-legend", "--no-pager"])
        self.assertEqual(self.complete("gmemctl create-region x 1G --backend="),
                         ["hugetlb", "kmod", "memfd", "secret"])
        self.assertEqual(self.complete("gmemctl adopt-region x --backend="), ["guest_memfd"],
                         "guest_memfd regions are adopted, never created")
        self.assertIn("--fd=", self.complete("gmemctl adopt-region x --f"))
        self.assertIn("0", self.complete("gmemctl adopt-region x --fd="), "--fd= offers open fds")
        self.assertEqual(self.complete("gmemctl list-regions --json "), ["off", "pretty", "short"])
        self.assertEqual(self.complete("gmemctl show -p Si"), ["Size"])
        self.assertEqual(self.complete("gmemctl set-attributes r 0 4096 p"), ["private"])
        self.assertEqual(self.complete("gmemctl hotplug vm r --q"), ["--qmp="])
        self.assertEqual(self.complete("gmemctl hotplug vm r --ti"), ["--timeout="])
        self.assertEqual(self.complete("gmemctl hotplug vm r --timeout "), [], "--timeout takes a number")
        qmp = os.path.join(self.world.tmp, "completion-vm.qmp")
        open(qmp, "w").close()
        self.assertEqual(self.complete(f"gmemctl hotplug vm r --qmp={qmp[:-4]}"), [qmp],
                         "--qmp= offers paths")

    def test_names_from_the_daemon(self):
        r1, r2 = self.create_region(MiB), self.create_region(MiB)
        vm1, vm2 = self.register_vm(), self.register_vm()
        self.attach(vm1, r1, "rw")
        path, _ = self.begin_migration(vm1, vm2)
        self.addCleanup(self._quietly_path, path, "AbortMigration")
        mig = path.rsplit("/", 1)[1]
        regions = sorted(self.region_names())
        vms = sorted(self.vm_names())
        self.assertTrue({r1, r2} <= set(regions) and {vm1, vm2} <= set(vms))
        self.assertEqual(self.complete("gmemctl destroy-region "), regions)
        self.assertEqual(self.complete(f"gmemctl discard {r1[:-1]}"),
                         sorted(r for r in regions if r.startswith(r1[:-1])))
        self.assertEqual(self.complete("gmemctl discard r 0 "), [], "discard's offset is no name")
        self.assertEqual(self.complete("gmemctl attach "), vms, "attach: a VM first")
        self.assertEqual(self.complete(f"gmemctl attach {vm1} "), regions, "then regions")
        self.assertEqual(self.complete(f"gmemctl migrate {vm1} "), vms)
        self.assertEqual(self.complete("gmemctl hotplug "), vms, "hotplug: a VM first")
        self.assertEqual(self.complete(f"gmemctl unplug {vm1} "), regions, "then a region")
        self.assertEqual(self.complete(f"gmemctl hotplug {vm1} {r1} "), [], "and nothing more")
        self.assertEqual(self.complete("gmemctl commit-migration "),
                         sorted(str(m[3]).rsplit("/", 1)[1] for m in self.mgr("ListMigrations")))
        self.assertIn(mig, self.complete("gmemctl abort-migration "))
        self.assertEqual(self.complete("gmemctl --owner="), vms)
        self.assertEqual(self.complete("gmemctl show "), sorted(set(regions + vms + [
            str(m[3]).rsplit("/", 1)[1] for m in self.mgr("ListMigrations")])))

    def test_bus_address_on_the_command_line(self):
        # With --bus-address= on the line the names come from that bus, not from $DBUS_SYSTEM_BUS_ADDRESS.
        r = self.create_region(MiB)
        env = dict(self.world.env)
        env["DBUS_SYSTEM_BUS_ADDRESS"] = "unix:path=" + os.path.join(self.world.tmp, "nothing")
        env["GMEM_DIRECT_SOCKET"] = os.path.join(self.world.tmp, "nothing-direct")
        self.assertEqual(self.complete("gmemctl destroy-region ", env=env), [], "no bus (nor direct socket), no names")
        self.assertIn(r, self.complete(f"gmemctl --bus-address={self.world.address} destroy-region ", env=env))

    def test_direct_and_bus(self):
        self.assertEqual(self.complete("gmemctl --di"), ["--direct", "--direct="])
        self.assertEqual(self.complete("gmemctl --bus"), ["--bus", "--bus-address="])
        sock = os.path.join(self.world.tmp, "completion-private")
        open(sock, "w").close()
        self.assertEqual(self.complete(f"gmemctl --direct={sock[:-4]}"), [sock], "--direct= offers paths")
        # The names come the way the line says: --bus asks the bus, --direct the direct socket (none here).
        r = self.create_region(MiB)
        self.assertIn(r, self.complete("gmemctl --bus destroy-region "))
        self.assertEqual(self.complete(f"gmemctl --direct={sock} destroy-region "), [],
                         "no broker behind that path, no names")

    def test_installed(self):
        if not BUILD:
            self.skipTest("GMEM_BUILD_ROOT is not set: not run from meson")
        p = subprocess.run(["meson", "introspect", BUILD, "--installed"], capture_output=True, text=True)
        if p.returncode != 0:
            self.skipTest(f"meson introspect failed: {p.stderr}")
        installed = json.loads(p.stdout)
        dest = [d for s, d in installed.items() if os.path.realpath(s) == os.path.realpath(COMPLETION)]
        self.assertEqual(len(dest), 1, f"meson install installs the completion: {installed}")
        self.assertTrue(dest[0].endswith("/bash-completion/completions/gmemctl"), dest[0])


if __name__ == "__main__":
    gmemtest.main()
