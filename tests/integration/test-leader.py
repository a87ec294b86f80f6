#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
VM leader tracking: a VM registered with leader_pid loses its views when
that process exits (the broker watches it with a pidfd); the regions stay,
and so does their data, for the hypervisor's successor.

With leader the caller passes a pidfd it opened itself: it works as
leader_pid does, anything but a pidfd of a live process is refused with
nothing kept, and it closes the race leader_pid has: a pid can be reused
between the caller looking it up and gmemd opening it, a pidfd cannot.
"""
import os
import subprocess
import threading

import gmemtest
from gmemtest import MiB, GmemTestCase, dbus_options

import dbus

NS_LAST_PID = "/proc/sys/kernel/ns_last_pid"
PIDFD_THREAD = os.O_EXCL


def unix_fd(fd):
    """An fd for an a{sv} option: dbus-python sends a duplicate."""
    return dbus.types.UnixFd(fd)


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

    def test_leader_pid_of_a_thread(self):
        # pidfd_open() of a thread's id fails with EINVAL before Linux 6.9 and ENOENT since: both are named.
        done = threading.Event()
        tid = []
        t = threading.Thread(target=lambda: (tid.append(threading.get_native_id()), done.wait(30)))
        t.start()
        self.addCleanup(t.join)
        self.addCleanup(done.set)
        self.wait_until(lambda: tid, "the thread to start")
        try:
            self.mgr("RegisterVm", "sa{sv}", self.uniq("vm"), dbus_options({"leader_pid": tid[0]}))
        except dbus.exceptions.DBusException as e:
            self.skip_if_no_pidfd(f"{e.get_dbus_name()}: {e.get_dbus_message()}")
            self.assertEqual(e.get_dbus_name(), gmemtest.ERROR_PREFIX + "InvalidArgument", e.get_dbus_message())
            self.assertIn("not a process", e.get_dbus_message())
            return
        self.fail(f"RegisterVm accepted leader_pid {tid[0]}, a thread's id")


class LeaderPidfd(GmemTestCase):
    """The leader option: a pidfd the caller opened."""

    def pidfd_of(self, pid, flags=0):
        fd = os.pidfd_open(pid, flags)
        self.addCleanup(self.close_quietly, fd)
        return fd

    @staticmethod
    def close_quietly(fd):
        try:
            os.close(fd)
        except OSError:
            pass

    def fd_count(self):
        """gmemd's open fds once it is done with the calls before: a message's
        fds are closed after its reply is sent, and gmemd has done so by the
        time it answers the next call."""
        self.mgr("ListVms")
        return self.gmemd_fd_count()

    def assertRefusedWithNothingKept(self, fd, contains, **opts):
        """RegisterVm with leader fd must fail with InvalidArgument naming
        contains; no VM is left, and gmemd holds no more fds than before."""
        name = self.uniq("vm")
        before = self.fd_count()
        msg = self.assertMgrError("InvalidArgument", "RegisterVm", "sa{sv}", name,
                                  dbus_options({"leader": unix_fd(fd), **opts}), contains=contains)
        self.assertNotIn(name, self.vm_names(), f"a refused VM was registered ({msg})")
        self.assertEqual(self.fd_count(), before, f"gmemd kept an fd of a refused leader ({msg})")
        return msg

    def test_leader_pidfd_works_like_leader_pid(self):
        r = self.create_region(MiB)
        self.with_spare(self.register_vm(), r)
        leader = self.spawn_leader()
        # Not pidfd_of(): closed here, so no cleanup may close its number again (by then another fd's).
        pidfd = os.pidfd_open(leader.pid)
        try:
            before = self.fd_count()
            vm = self.register_vm(leader=unix_fd(pidfd))
            self.assertEqual(self.fd_count(), before + 1, "gmemd keeps exactly one fd, its own pidfd, per leader")
        finally:
            # gmemd keeps its own duplicate: the caller closing its pidfd changes nothing.
            os.close(pidfd)
        self.assertEqual(int(self.vm_prop(vm, "LeaderPID")), leader.pid, "LeaderPID reports the pidfd's pid")
        rows = {str(x[0]): int(x[1]) for x in self.mgr("ListVms")}
        self.assertEqual(rows[vm], leader.pid, "ListVms does not show the leader pid")
        fd = self.attach(vm, r, "rw")
        os.pwrite(fd, b"kept", 0)

        leader.kill()
        leader.wait()
        self.wait_until(lambda: all(v[2] != "active" for v in self.views_of_vm(vm)),
                        f"the views of VM '{vm}' to be released after its leader exited")
        self.assertMgrError("NoSuchView", "GetFd", "ss", vm, r)
        self.assertEqual(int(self.vm_prop(vm, "LeaderPID")), 0, "LeaderPID is 0 once the leader exited")
        self.assertEqual(self.fd_count(), before, "gmemd closed the leader's pidfd")
        self.assertIn(vm, self.vm_names(), "the VM stays registered after its leader exited")

    def test_leader_and_leader_pid_of_the_same_process(self):
        leader = self.spawn_leader()
        vm = self.register_vm(leader=unix_fd(self.pidfd_of(leader.pid)), leader_pid=leader.pid)
        self.assertEqual(int(self.vm_prop(vm, "LeaderPID")), leader.pid)

    def test_leader_and_leader_pid_of_other_processes(self):
        a, b = self.spawn_leader(), self.spawn_leader()
        self.assertRefusedWithNothingKept(self.pidfd_of(a.pid), ["leader_pid", str(b.pid), str(a.pid)],
                                          leader_pid=b.pid)

    def test_not_a_pidfd(self):
        rd, wr = os.pipe()
        mfd = os.memfd_create("not-a-leader")
        for fd in (rd, wr, mfd):
            self.addCleanup(os.close, fd)
        null = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        self.addCleanup(os.close, null)
        cases = [
            (mfd, ["a memfd", "memfd:not-a-leader", "not a pidfd"]),
            (rd, ["a pipe", "not a pidfd"]),
            (wr, ["a pipe", "not a pidfd"]),
            (null, ["a character device", "/dev/null", "not a pidfd"]),
        ]
        for fd, contains in cases:
            with self.subTest(what=contains[0]):
                self.assertRefusedWithNothingKept(fd, contains)

    def test_wrong_type(self):
        leader = self.spawn_leader()
        self.assertMgrError("InvalidArgument", "RegisterVm", "sa{sv}", self.uniq("vm"),
                            dbus_options({"leader": dbus.UInt32(leader.pid)}), contains=["leader", "'h'"])

    def test_pidfd_of_an_exited_process(self):
        # Reaped: the pidfd's fdinfo says Pid: -1.
        p = self.spawn_leader()
        pidfd = self.pidfd_of(p.pid)
        p.kill()
        p.wait()
        self.assertRefusedWithNothingKept(pidfd, "has exited")

    def test_pidfd_of_a_zombie(self):
        # Exited but not reaped: the pid is still there, the pidfd readable.
        p = self.spawn_leader()
        pidfd = self.pidfd_of(p.pid)
        os.kill(p.pid, 9)
        self.wait_until(lambda: open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z",
                        f"process {p.pid} to become a zombie")
        self.assertRefusedWithNothingKept(pidfd, "has exited")

    def test_pidfd_of_a_thread(self):
        done = threading.Event()
        tid = []
        t = threading.Thread(target=lambda: (tid.append(threading.get_native_id()), done.wait(30)))
        t.start()
        self.addCleanup(t.join)
        self.addCleanup(done.set)
        self.wait_until(lambda: tid, "the thread to start")
        try:
            pidfd = self.pidfd_of(tid[0], PIDFD_THREAD)
        except OSError as e:
            self.skipTest(f"pidfd_open(PIDFD_THREAD) needs Linux 6.9: {e}")
        self.assertRefusedWithNothingKept(pidfd, "thread")

    def reuse_pid(self, pid):
        """Starts a process with pid, which must be free: ns_last_pid set to
        pid - 1 right before each fork, tried until no other fork on the
        machine came in between. None if it cannot be done here."""
        for _ in range(50):
            try:
                with open(NS_LAST_PID, "w") as f:
                    f.write(str(pid - 1))
            except OSError as e:
                self.skipTest(f"cannot choose the next pid ({NS_LAST_PID}: {e.strerror}; needs root in "
                              f"gmemd's pid namespace)")
            p = self.spawn_leader()
            if p.pid == pid:
                return p
            p.kill()
            p.wait()
        self.fail(f"pid {pid} was not handed out again in 50 tries")

    def test_reused_pid(self):
        """The race the option closes. The orchestrator opens its pidfd of the
        hypervisor; the hypervisor exits and is reaped; another process gets
        its pid before the VM is registered. The pidfd still names the
        exited hypervisor, and is refused; leader_pid names the newcomer, and
        gmemd watches it as the VM's leader."""
        r = self.create_region(MiB)
        hypervisor = self.spawn_leader()
        pid = hypervisor.pid
        pidfd = self.pidfd_of(pid)
        hypervisor.kill()
        hypervisor.wait()
        newcomer = self.reuse_pid(pid)

        self.assertRefusedWithNothingKept(pidfd, "has exited")

        vm = self.register_leader_vm(pid)
        self.assertEqual(int(self.vm_prop(vm, "LeaderPID")), pid,
                         "leader_pid took the newcomer with the hypervisor's pid for its leader")
        self.attach(vm, r, "rw")
        self.assertEqual(self.views_of_vm(vm), [(r, "rw", "active")],
                         "with leader_pid the VM's views outlive the hypervisor that exited")
        newcomer.kill()
        newcomer.wait()
        self.wait_until(lambda: all(v[2] != "active" for v in self.views_of_vm(vm)),
                        "the views to go only when the newcomer, a process unrelated to the VM, exits")


if __name__ == "__main__":
    gmemtest.main()
