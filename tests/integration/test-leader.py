#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
VM leader tracking: a VM registered with leader_pid loses its views when
that process exits (the broker watches it with a pidfd); the regions stay,
and so does their data, for the hypervisor's successor.
"""
import os
import subprocess

import gmemtest
from gmemtest import MiB, GmemTestCase, dbus_options


class Leader(GmemTestCase):

    def test_leader_exit_releases_views_region_stays(self):
        r = self.create_region(MiB)
        r2 = self.create_region(MiB)
        leader = self.spawn_leader()
        vm = self.register_leader_vm(leader.pid)
        bystander = self.register_vm()
        self.assertEqual(int(self.vm_prop(vm, "LeaderPID")), leader.pid)
        rows = {str(x[0]): int(x[1]) for x in self.mgr("ListVms")}
        self.assertEqual(rows[vm], leader.pid, "ListVms does not show the leader pid")
        fd = self.attach(vm, r, "rw")
        self.attach(vm, r2, "ro")
        fb = self.attach(bystander, r, "ro")
        os.pwrite(fd, b"survives the hypervisor", 0)

        leader.kill()
        leader.wait()
        self.wait_until(lambda: all(v[2] != "active" for v in self.views_of_vm(vm)),
                        f"the views of VM '{vm}' to be released after its leader exited")
        self.assertMgrError("NoSuchView", "GetFd", "ss", vm, r)
        self.assertMgrError("NoSuchView", "GetFd", "ss", vm, r2)
        self.assertIn(r, self.region_names(), "the region went away with the leader")
        self.assertIn(r2, self.region_names(), "the region went away with the leader")
        self.assertEqual(self.views_of_region(r), [(bystander, "ro", "active")],
                         "the other VM's view was touched, or the leader's view is still listed")
        self.assertEqual(os.pread(fb, 23, 0), b"survives the hypervisor",
                         "the data went away with the leader")
        # The region can be destroyed once the remaining view is gone.
        self.mgr("Detach", "ss", bystander, r)
        self.mgr("DestroyRegion", "s", r)

    def test_leader_alive_keeps_views(self):
        r = self.create_region(MiB)
        leader = self.spawn_leader()
        vm = self.register_leader_vm(leader.pid)
        self.attach(vm, r, "rw")
        other = self.spawn_leader()
        other.kill()
        other.wait()
        self.assertEqual(self.views_of_vm(vm), [(r, "rw", "active")],
                         "an unrelated process exit released the views")
        self.get_fd(vm, r)

    def test_leader_pid_that_does_not_exist(self):
        p = subprocess.Popen(["true"])
        p.wait()
        # The pid is gone (and, right after, not reused): registering it must
        # fail rather than watch nothing.
        try:
            self.mgr("RegisterVm", "sa{sv}", self.uniq("vm"),
                     dbus_options({"leader_pid": p.pid}))
        except gmemtest.dbus.exceptions.DBusException as e:
            self.skip_if_no_pidfd(f"{e.get_dbus_name()}: {e.get_dbus_message()}")
            self.assertTrue(e.get_dbus_name().startswith(gmemtest.ERROR_PREFIX),
                            f"a dead leader pid gave {e.get_dbus_name()}, not one of ours")
            return
        self.fail(f"RegisterVm accepted leader_pid {p.pid} of an exited process")


if __name__ == "__main__":
    gmemtest.main()
