#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Read-only means read-only: every route we know from a read-only view's fd
to write access must be closed. Each test takes the place of an attacker who
holds VM b's read-only fd of a region that VM a has read-write, tries one
route, and checks both that the route failed and that a's data is unchanged.

The non-root re-open test has a control: the same route on a memfd that is
not locked down (mode 0777) succeeds, so the test can tell "closed" from
"never tried".
"""
import errno
import fcntl
import os

import gmemtest
from gmemtest import (MiB, PAGE, GmemTestCase, mmap_raw, munmap, mprotect, madvise,
                      peek, poke, fallocate, linkat, run_as, access_mode, libc,
                      PROT_READ, PROT_WRITE, MAP_SHARED, MAP_PRIVATE, MADV_REMOVE,
                      FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, AT_FDCWD,
                      AT_SYMLINK_FOLLOW, AT_EMPTY_PATH, F_ADD_SEALS, F_GET_SEALS,
                      F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_WRITE)

NOBODY = 65534
SOURCE = os.environ.get("GMEM_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
SIZE = 1 * MiB
PATTERN = b"gmemd-ro-canary!" * (PAGE // 16)


class ReadOnlyRoutes(GmemTestCase):

    def setUp(self):
        super().setUp()
        self.region = self.create_region(SIZE)
        self.vm_a = self.register_vm()
        self.vm_b = self.register_vm()
        self.rw = self.attach(self.vm_a, self.region, "rw")
        self.ro = self.attach(self.vm_b, self.region, "ro")
        for off in range(0, SIZE, PAGE):
            os.pwrite(self.rw, PATTERN, off)

    def assertIntact(self, what):
        for off in (0, SIZE // 2, SIZE - PAGE):
            self.assertEqual(os.pread(self.rw, PAGE, off), PATTERN,
                             f"after {what}, page at {off:#x} of the region changed")
            self.assertEqual(os.pread(self.ro, PAGE, off), PATTERN,
                             f"after {what}, the read-only view no longer reads the data at {off:#x}")

    def assertFailsWith(self, errnos, func, *args, what):
        with self.assertRaises(OSError, msg=f"{what} succeeded on a read-only view") as cm:
            func(*args)
        if errnos:
            self.assertIn(cm.exception.errno, errnos,
                          f"{what} failed, but with {errno.errorcode.get(cm.exception.errno)} "
                          f"instead of one of {[errno.errorcode[e] for e in errnos]}")
        return cm.exception

    def test_view_is_o_rdonly_and_rw_is_o_rdwr(self):
        self.assertEqual(access_mode(self.ro), os.O_RDONLY, "the ro view's fd is not O_RDONLY")
        self.assertEqual(access_mode(self.rw), os.O_RDWR, "the rw view's fd is not O_RDWR")

    def test_inode_mode_and_seals_locked_down(self):
        st = os.fstat(self.ro)
        self.assertEqual(st.st_mode & 0o7777, 0o600,
                         f"inode mode is {st.st_mode & 0o7777:o}, the contract says 0600")
        self.assertEqual(st.st_uid, os.stat(f"/proc/{self.world.gmemd_pid()}").st_uid,
                         "the inode is not owned by the daemon's uid")
        seals = fcntl.fcntl(self.ro, F_GET_SEALS)
        want = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL
        self.assertEqual(seals & want, want,
                         f"seals are {seals:#x}; SHRINK|GROW|SEAL ({want:#x}) are required")

    def test_mmap_shared_writable_fails(self):
        self.assertFailsWith([errno.EACCES], mmap_raw, self.ro, SIZE, PROT_READ | PROT_WRITE,
                             MAP_SHARED, what="mmap(PROT_WRITE, MAP_SHARED)")
        self.assertIntact("mmap(PROT_WRITE, MAP_SHARED)")

    def test_mmap_shared_readonly_works(self):
        addr = mmap_raw(self.ro, SIZE, PROT_READ, MAP_SHARED)
        try:
            self.assertEqual(peek(addr, PAGE), PATTERN, "a read-only mapping does not show the data")
            os.pwrite(self.rw, b"LIVE", 0)
            self.assertEqual(peek(addr, 4), b"LIVE",
                             "a write through the rw view is not seen in the ro mapping")
            os.pwrite(self.rw, PATTERN[:4], 0)
        finally:
            munmap(addr, SIZE)

    def test_mprotect_to_write_fails(self):
        addr = mmap_raw(self.ro, SIZE, PROT_READ, MAP_SHARED)
        try:
            self.assertFailsWith([errno.EACCES], mprotect, addr, SIZE, PROT_READ | PROT_WRITE,
                                 what="mprotect(PROT_WRITE) of a shared read-only mapping")
        finally:
            munmap(addr, SIZE)
        self.assertIntact("mprotect")

    def test_madvise_remove_fails(self):
        addr = mmap_raw(self.ro, SIZE, PROT_READ, MAP_SHARED)
        try:
            self.assertFailsWith([errno.EACCES], madvise, addr, SIZE, MADV_REMOVE,
                                 what="madvise(MADV_REMOVE) (punching through a mapping)")
        finally:
            munmap(addr, SIZE)
        self.assertIntact("madvise(MADV_REMOVE)")

    def test_write_fails(self):
        self.assertFailsWith([errno.EBADF], os.pwrite, self.ro, b"X" * 16, 0, what="pwrite()")
        self.assertFailsWith([errno.EBADF], os.write, self.ro, b"X" * 16, what="write()")
        self.assertIntact("write()")

    def test_setfl_cannot_upgrade(self):
        fcntl.fcntl(self.ro, fcntl.F_SETFL, os.O_RDWR)
        self.assertEqual(access_mode(self.ro), os.O_RDONLY, "F_SETFL changed the access mode")
        self.assertFailsWith([errno.EBADF], os.pwrite, self.ro, b"X", 0,
                             what="pwrite() after F_SETFL(O_RDWR)")
        self.assertIntact("F_SETFL")

    def test_ftruncate_fails(self):
        self.assertFailsWith([errno.EINVAL, errno.EBADF, errno.EPERM], os.ftruncate,
                             self.ro, 0, what="ftruncate(0)")
        self.assertFailsWith([errno.EINVAL, errno.EBADF, errno.EPERM], os.ftruncate,
                             self.ro, 2 * SIZE, what="ftruncate(2*size)")
        self.assertEqual(os.fstat(self.rw).st_size, SIZE, "the region's size changed")
        self.assertIntact("ftruncate")

    def test_fallocate_punch_fails(self):
        self.assertFailsWith([errno.EBADF], fallocate, self.ro,
                             FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, SIZE,
                             what="fallocate(PUNCH_HOLE)")
        self.assertFailsWith([errno.EBADF], fallocate, self.ro, 0, 0, SIZE,
                             what="fallocate(0)")
        self.assertIntact("fallocate")

    def test_add_seals_fails(self):
        self.assertFailsWith([errno.EPERM], fcntl.fcntl, self.ro, F_ADD_SEALS, F_SEAL_WRITE,
                             what="F_ADD_SEALS(F_SEAL_WRITE) from the ro view")
        self.assertFailsWith([errno.EPERM], fcntl.fcntl, self.rw, F_ADD_SEALS, F_SEAL_WRITE,
                             what="F_ADD_SEALS(F_SEAL_WRITE) from the rw view (F_SEAL_SEAL)")
        # The region stays writable for a: nobody could freeze it.
        os.pwrite(self.rw, PATTERN[:8], 0)
        self.assertIntact("F_ADD_SEALS")

    def _reopen_rdwr_as_nobody(self, fd):
        def child():
            wfd = os.open(f"/proc/self/fd/{fd}", os.O_RDWR)
            os.pwrite(wfd, b"PWNED", 0)
            os.close(wfd)
            return "reopened"
        return run_as(NOBODY, NOBODY, child)

    def test_reopen_rdwr_as_other_uid_fails(self):
        res = self._reopen_rdwr_as_nobody(self.ro)
        self.assertFalse(res["ok"], "uid 65534 re-opened the ro view O_RDWR via /proc/self/fd "
                                    "and wrote to it")
        self.assertEqual(res["errno"], errno.EACCES,
                         f"re-open failed with {res.get('text')}, expected EACCES "
                         "(the inode's mode must refuse it)")
        self.assertIntact("re-open O_RDWR as uid 65534")

    def test_reopen_control_unlocked_memfd_is_writable(self):
        # Control: without the daemon's lock-down (mode 0777, as memfd_create
        # leaves it) the same route works, so the test above is meaningful.
        mfd = os.memfd_create("gmemtest-control", os.MFD_CLOEXEC)
        try:
            os.ftruncate(mfd, PAGE)
            rfd = os.open(f"/proc/self/fd/{mfd}", os.O_RDONLY)
            try:
                res = self._reopen_rdwr_as_nobody(rfd)
                self.assertTrue(res["ok"], "control: an unlocked memfd could not be re-opened "
                                           f"O_RDWR as uid 65534 ({res.get('text')}); "
                                           "the re-open test proves nothing on this kernel")
                self.assertEqual(os.pread(mfd, 5, 0), b"PWNED")
            finally:
                os.close(rfd)
        finally:
            os.close(mfd)

    def test_fchmod_fchown_as_other_uid_fail(self):
        fd = self.ro

        def child():
            try:
                os.fchmod(fd, 0o666)
                return "fchmod worked"
            except OSError as e:
                if e.errno != errno.EPERM:
                    raise
            os.fchown(fd, NOBODY, NOBODY)
            return "fchown worked"
        res = run_as(NOBODY, NOBODY, child)
        self.assertFalse(res["ok"], f"uid 65534 changed the inode: {res.get('value')}")
        self.assertEqual(res["errno"], errno.EPERM, res.get("text"))
        self.assertEqual(os.fstat(self.ro).st_mode & 0o777, 0o600, "the inode's mode changed")

    def test_linkat_fails(self):
        target_dir = self.world.tmp
        for i, (old, flags, fd) in enumerate([
                (f"/proc/self/fd/{self.ro}", AT_SYMLINK_FOLLOW, AT_FDCWD),
                ("", AT_EMPTY_PATH, self.ro)]):
            target = os.path.join(target_dir, f"linked-{self._testMethodName}-{i}")
            self.assertFailsWith(None, linkat, fd, old, AT_FDCWD, target, flags,
                                 what=f"linkat({'/proc/self/fd/N' if old else 'AT_EMPTY_PATH'})")
            self.assertFalse(os.path.exists(target), "linkat left a name behind")
        shm = "/dev/shm"
        if os.path.isdir(shm):
            target = os.path.join(shm, f"gmemtest-linked-{os.getpid()}")
            self.assertFailsWith(None, linkat, AT_FDCWD, f"/proc/self/fd/{self.ro}",
                                 AT_FDCWD, target, AT_SYMLINK_FOLLOW,
                                 what="linkat into /dev/shm")

    def test_map_private_writes_stay_private(self):
        addr = mmap_raw(self.ro, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE)
        try:
            poke(addr, b"PRIVATE-COPY")
            self.assertEqual(peek(addr, 12), b"PRIVATE-COPY", "MAP_PRIVATE write did not land")
            shared = mmap_raw(self.rw, SIZE, PROT_READ, MAP_SHARED)
            try:
                self.assertEqual(peek(shared, PAGE), PATTERN,
                                 "a MAP_PRIVATE write on the ro view reached a's shared mapping")
            finally:
                munmap(shared, SIZE)
        finally:
            munmap(addr, SIZE)
        self.assertIntact("MAP_PRIVATE write")

    def test_proc_self_mem_write_fails(self):
        addr = mmap_raw(self.ro, SIZE, PROT_READ, MAP_SHARED)
        try:
            mem = os.open("/proc/self/mem", os.O_RDWR)
            try:
                self.assertFailsWith(None, os.pwrite, mem, b"FORCED", addr,
                                     what="write to /proc/self/mem over a shared ro mapping")
            finally:
                os.close(mem)
            self.assertEqual(peek(addr, PAGE), PATTERN, "the ro mapping changed")
        finally:
            munmap(addr, SIZE)
        self.assertIntact("/proc/self/mem write")

    def test_process_vm_writev_fails(self):
        import ctypes
        addr = mmap_raw(self.ro, SIZE, PROT_READ, MAP_SHARED)
        try:
            class iovec(ctypes.Structure):
                _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
            buf = ctypes.create_string_buffer(b"FORCED", 6)
            local = iovec(ctypes.addressof(buf), 6)
            remote = iovec(addr, 6)
            r = libc.syscall(gmemtest.SYS_process_vm_writev, os.getpid(), ctypes.byref(local),
                             1, ctypes.byref(remote), 1, 0)
            self.assertLess(r, 1, "process_vm_writev wrote into the shared ro mapping")
            self.assertEqual(peek(addr, PAGE), PATTERN, "the ro mapping changed")
        finally:
            munmap(addr, SIZE)
        self.assertIntact("process_vm_writev")

    def test_splice_and_copy_into_ro_view_fail(self):
        src = os.memfd_create("gmemtest-src")
        try:
            os.write(src, b"Y" * PAGE)
            os.lseek(src, 0, os.SEEK_SET)
            self.assertFailsWith([errno.EBADF, errno.EINVAL], os.copy_file_range, src, self.ro,
                                 PAGE, 0, 0, what="copy_file_range into the ro view")
            self.assertFailsWith([errno.EBADF, errno.EINVAL], os.sendfile, self.ro, src, 0, PAGE,
                                 what="sendfile into the ro view")
            r, w = os.pipe()
            try:
                os.write(w, b"Z" * 64)
                self.assertFailsWith([errno.EBADF, errno.EINVAL],
                                     lambda: os.splice(r, self.ro, 64, offset_dst=0),
                                     what="splice into the ro view")
            finally:
                os.close(r)
                os.close(w)
        finally:
            os.close(src)
        self.assertIntact("copy_file_range/sendfile/splice")

    def test_rw_view_cannot_resize_region(self):
        self.assertFailsWith([errno.EPERM], os.ftruncate, self.rw, 2 * SIZE,
                             what="ftruncate(grow) of the rw view")
        self.assertFailsWith([errno.EPERM], os.ftruncate, self.rw, SIZE // 2,
                             what="ftruncate(shrink) of the rw view")
        self.assertFailsWith([errno.EPERM], os.ftruncate, self.rw, 0,
                             what="ftruncate(0) of the rw view")
        self.assertFailsWith([errno.EPERM], fallocate, self.rw, 0, SIZE, PAGE,
                             what="fallocate past the end of the rw view")
        self.assertFailsWith([errno.EPERM], os.pwrite, self.rw, b"X", SIZE,
                             what="pwrite past the end of the rw view")
        self.assertEqual(os.fstat(self.rw).st_size, SIZE, "the region's size changed")
        self.assertIntact("resizing attempts")


class HypervisorUids(GmemTestCase):
    """VMs registered with the uid of their hypervisor: that uid may re-open
    its own view through /proc/self/fd/N (QEMU's mem-path does exactly that)
    with the view's access and no more, and loses that when the view goes."""

    UID_A, UID_B, UID_C = 4242, NOBODY, 4343

    def setUp(self):
        super().setUp()
        self.region = self.create_region(SIZE)
        self.vm_a = self.register_vm(uid=self.UID_A)
        self.vm_b = self.register_vm(uid=self.UID_B)
        self.vm_c = self.register_vm(uid=self.UID_C)
        self.rw = self.attach(self.vm_a, self.region, "rw")
        self.ro = self.attach(self.vm_b, self.region, "ro")
        os.pwrite(self.rw, PATTERN, 0)

    def reopen_as(self, uid, fd, flags):
        def child():
            wfd = os.open(f"/proc/self/fd/{fd}", flags)
            if flags & os.O_ACCMODE == os.O_RDWR:
                os.pwrite(wfd, b"PWNED", 0)
            os.close(wfd)
            return "opened"
        return run_as(uid, uid, child)

    def assertReopen(self, uid, fd, flags, allowed, what):
        res = self.reopen_as(uid, fd, flags)
        if allowed:
            self.assertTrue(res["ok"], f"{what}: refused ({res.get('text')})")
        else:
            self.assertFalse(res["ok"], f"{what}: allowed")
            self.assertEqual(res["errno"], errno.EACCES, f"{what}: {res.get('text')}")
        if not allowed or flags & os.O_ACCMODE != os.O_RDWR:
            self.assertEqual(os.pread(self.rw, 5, 0), PATTERN[:5], f"{what}: the data changed")
        else:
            os.pwrite(self.rw, PATTERN[:5], 0)

    def test_permissions_grant_exactly_the_views(self):
        import struct
        st = os.fstat(self.ro)
        self.assertEqual(st.st_mode & 0o007, 0, f"inode mode {st.st_mode & 0o7777:o} lets others in")
        try:
            acl = os.getxattr(self.ro, "system.posix_acl_access")
        except OSError as e:
            self.fail(f"no access list on the inode ({e}), yet hypervisor uids can re-open views")
        version, = struct.unpack_from("<I", acl)
        self.assertEqual(version, 2)
        entries = [struct.unpack_from("<HHI", acl, 4 + 8 * i) for i in range((len(acl) - 4) // 8)]
        named = {uid: perm for tag, perm, uid in entries if tag == 0x02}
        by_tag = {tag: perm for tag, perm, uid in entries if tag != 0x02}
        self.assertEqual(named, {self.UID_A: 6, self.UID_B: 4},
                         "named-user entries should be a:rw and b:r, nothing for c")
        self.assertEqual(by_tag.get(0x04, 0), 0, "the owning group has access")
        self.assertEqual(by_tag.get(0x20, 0), 0, "others have access")
        self.assertEqual(by_tag.get(0x01), 6, "the owner (the daemon) should have rw")

    def test_mode_shows_the_access_list_mask(self):
        # With an access list, the mode's group bits are its mask: the highest
        # right granted to a uid. The owning group's own entry stays empty.
        def mode():
            return os.fstat(self.ro).st_mode & 0o7777
        self.assertEqual(mode(), 0o660, "a:rw and b:r granted: the mask, and so the group bits, are rw")
        self.mgr("Detach", "ss", self.vm_a, self.region)
        self.assertEqual(mode(), 0o640, "only b:r granted: the mask is r")
        self.mgr("Detach", "ss", self.vm_b, self.region)
        self.assertEqual(mode(), 0o600, "nothing granted: no access list, mode 0600")
        with open(os.path.join(SOURCE, "man", "gmemd.8.scd")) as f:
            page = " ".join(f.read().split())
        for m in ("0600", "0640", "0660"):
            self.assertTrue(m in page, f"gmemd(8) names the mode {m} that fstat(2) shows")

    def test_ro_vm_uid_reopens_readonly_only(self):
        self.assertReopen(self.UID_B, self.ro, os.O_RDONLY, True,
                          "b's hypervisor uid re-opening its ro view O_RDONLY")
        self.assertReopen(self.UID_B, self.ro, os.O_RDWR, False,
                          "b's hypervisor uid re-opening its ro view O_RDWR")
        self.assertReopen(self.UID_B, self.ro, os.O_WRONLY, False,
                          "b's hypervisor uid re-opening its ro view O_WRONLY")

    def test_rw_vm_uid_reopens_readwrite(self):
        self.assertReopen(self.UID_A, self.rw, os.O_RDWR, True,
                          "a's hypervisor uid re-opening its rw view O_RDWR")

    def test_uid_without_view_cannot_reopen(self):
        self.assertReopen(self.UID_C, self.ro, os.O_RDONLY, False,
                          "the uid of VM c, which has no view, re-opening b's fd")

    def test_ro_uid_cannot_change_permissions(self):
        fd = self.ro

        def child():
            for attempt, func in [
                    ("fchmod", lambda: os.fchmod(fd, 0o666)),
                    ("setxattr(system.posix_acl_access)",
                     lambda: os.setxattr(fd, "system.posix_acl_access",
                                         bytes.fromhex("02000000" "01000600ffffffff"
                                                       "04000600ffffffff" "20000600ffffffff"))),
                    ("removexattr(system.posix_acl_access)",
                     lambda: os.removexattr(fd, "system.posix_acl_access")),
                    ("fchown", lambda: os.fchown(fd, NOBODY, NOBODY))]:
                try:
                    func()
                    return f"{attempt} worked"
                except OSError as e:
                    if e.errno not in (errno.EPERM, errno.ENODATA):
                        raise
            return None
        res = run_as(self.UID_B, self.UID_B, child)
        self.assertTrue(res["ok"], res.get("text"))
        self.assertIsNone(res["value"], f"uid {self.UID_B} changed the inode: {res['value']}")
        self.assertReopen(self.UID_B, self.ro, os.O_RDWR, False,
                          "O_RDWR re-open after the attempts to change permissions")

    def test_detach_takes_the_grant_away(self):
        self.mgr("Detach", "ss", self.vm_b, self.region)
        self.assertReopen(self.UID_B, self.ro, os.O_RDONLY, False,
                          "b's uid re-opening after b's view was detached")

    def test_migration_moves_the_grant(self):
        path, fds = self.begin_migration(self.vm_a, self.vm_c)
        self.mgr("CommitMigration", "o", gmemtest.dbus.ObjectPath(path))
        self.assertReopen(self.UID_A, self.rw, os.O_RDWR, False,
                          "a's uid re-opening O_RDWR after a's view was revoked by migration")
        self.assertReopen(self.UID_A, self.rw, os.O_RDONLY, False,
                          "a's uid re-opening O_RDONLY after a's view was revoked by migration")
        self.assertReopen(self.UID_C, fds[self.region], os.O_RDWR, True,
                          "c's uid re-opening its migrated rw view O_RDWR")


if __name__ == "__main__":
    gmemtest.main()
