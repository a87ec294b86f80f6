/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fd-kind.c — telling a guest_memfd from every other file a client could
 * pass (fd-kind.h). A pure function of what fstatfs, fstat and readlink
 * report, so the unit tests can feed it what each kernel answers.
 *
 * How KVM makes a guest_memfd (virt/kvm/guest_memfd.c): Linux 6.8 to 6.18
 * make it an anon inode of its own (anon_inode_create_getfile), which
 * /proc/self/fd shows as "anon_inode:[kvm-gmem]"; from 6.19 on its inodes
 * live in KVM's own pseudo filesystem, whose magic is GUEST_MEMFD_MAGIC
 * ("GMEM"), and the link shows the dentry "/[kvm-gmem] (deleted)". The magic
 * decides where there is one; the anon inode's name only where the
 * filesystem is the shared anon inode one. A memfd (tmpfs or hugetlbfs) is
 * recognised by its "/memfd:" name, secret memory by its filesystem. A
 * pidfd lives on pidfs from Linux 6.9 on (its magic decides) and is the anon
 * inode "[pidfd]" before; its link reads "anon_inode:[pidfd]" on both.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "fd-kind.h"

static const char *const fd_kind_table[_FD_KIND_MAX] = {
        [FD_KIND_GUEST_MEMFD]  = "a guest_memfd",
        [FD_KIND_MEMFD]        = "a memfd",
        [FD_KIND_SECRETMEM]    = "secret memory",
        [FD_KIND_PIDFD]        = "a pidfd",
        [FD_KIND_ANON_INODE]   = "an anonymous inode",
        [FD_KIND_PIPE]         = "a pipe",
        [FD_KIND_SOCKET]       = "a socket",
        [FD_KIND_DIRECTORY]    = "a directory",
        [FD_KIND_CHAR_DEVICE]  = "a character device",
        [FD_KIND_BLOCK_DEVICE] = "a block device",
        [FD_KIND_REGULAR]      = "a regular file",
        [FD_KIND_OTHER]        = "a file of an unknown kind",
};

const char *fd_kind_to_string(FdKind k) {
        return k >= 0 && k < _FD_KIND_MAX ? fd_kind_table[k] : NULL;
}

static bool has_prefix(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

FdKind fd_kind_classify(uint64_t fs_magic, mode_t mode, const char *link) {
        const char *l = link ?: "";

        if (fs_magic == FD_KIND_GUEST_MEMFD_MAGIC)
                return FD_KIND_GUEST_MEMFD;
        if (fs_magic == FD_KIND_PIDFS_MAGIC)
                return FD_KIND_PIDFD;
        if (fs_magic == FD_KIND_ANON_INODE_FS_MAGIC) {
                if (streq(l, "anon_inode:" FD_KIND_GUEST_MEMFD_NAME))
                        return FD_KIND_GUEST_MEMFD;
                return streq(l, FD_KIND_PIDFD_LINK) ? FD_KIND_PIDFD : FD_KIND_ANON_INODE;
        }
        if (fs_magic == FD_KIND_SECRETMEM_MAGIC)
                return FD_KIND_SECRETMEM;
        if (S_ISFIFO(mode))
                return FD_KIND_PIPE;
        if (S_ISSOCK(mode))
                return FD_KIND_SOCKET;
        if (S_ISDIR(mode))
                return FD_KIND_DIRECTORY;
        if (S_ISCHR(mode))
                return FD_KIND_CHAR_DEVICE;
        if (S_ISBLK(mode))
                return FD_KIND_BLOCK_DEVICE;
        if (S_ISREG(mode))
                return has_prefix(l, "/memfd:") ? FD_KIND_MEMFD : FD_KIND_REGULAR;
        /* Anon inodes made without a file type of their own (eventfd, a VM) are not on the anon fs by magic alone. */
        if (has_prefix(l, "anon_inode:"))
                return FD_KIND_ANON_INODE;
        return FD_KIND_OTHER;
}

void fd_kind_describe(FdKind k, const char *link, char *buf, size_t size) {
        static const char deleted[] = " (deleted)";
        const char *what = fd_kind_to_string(k) ?: "a file";
        const char *l = link ?: "";
        size_t n = strlen(l);

        if (size == 0)
                return;
        /* Pseudo files are named by the kernel, not by a path: "/memfd:x (deleted)" is the memfd "memfd:x". */
        if (k == FD_KIND_MEMFD || k == FD_KIND_SECRETMEM || k == FD_KIND_GUEST_MEMFD) {
                if (n >= strlen(deleted) && streq(l + n - strlen(deleted), deleted))
                        n -= strlen(deleted);
                if (n > 0 && l[0] == '/') {
                        l++;
                        n--;
                }
        }
        if (n == 0)
                (void) snprintf(buf, size, "%s", what);
        else
                (void) snprintf(buf, size, "%s ('%.*s')", what, (int) (n > 200 ? 200 : n), l);
}
