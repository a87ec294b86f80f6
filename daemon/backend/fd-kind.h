/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fd-kind.h — what kind of file an fd a client passes is, told from what
 * the kernel says of it: the magic number of its filesystem (fstatfs), its
 * file type (fstat) and the name /proc/self/fd shows for it (readlink).
 * gmemd takes custody of a guest_memfd only after this says it is one, and
 * names what it got otherwise.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"

/* include/uapi/linux/magic.h */
#define FD_KIND_ANON_INODE_FS_MAGIC UINT64_C(0x09041934)
#define FD_KIND_GUEST_MEMFD_MAGIC   UINT64_C(0x474d454d)       /* "GMEM", Linux 6.19 and later */
#define FD_KIND_SECRETMEM_MAGIC     UINT64_C(0x5345434d)       /* "SECM" */
#define FD_KIND_PIDFS_MAGIC         UINT64_C(0x50494446)       /* "PIDF", Linux 6.9 and later */

/* The name /proc/self/fd shows for a pidfd, on pidfs too (pidfs_dname keeps the anon inode's). */
#define FD_KIND_PIDFD_LINK "anon_inode:[pidfd]"

/* The name of a guest_memfd's file: its anon inode's up to Linux 6.18, its dentry's from 6.19 on. */
#define FD_KIND_GUEST_MEMFD_NAME "[kvm-gmem]"

typedef enum FdKind {
        FD_KIND_GUEST_MEMFD,
        FD_KIND_MEMFD,
        FD_KIND_SECRETMEM,
        FD_KIND_PIDFD,
        FD_KIND_ANON_INODE,     /* of something else: eventfd, a KVM VM, ... */
        FD_KIND_PIPE,
        FD_KIND_SOCKET,
        FD_KIND_DIRECTORY,
        FD_KIND_CHAR_DEVICE,
        FD_KIND_BLOCK_DEVICE,
        FD_KIND_REGULAR,
        FD_KIND_OTHER,
        _FD_KIND_MAX,
        _FD_KIND_INVALID = -EINVAL,
} FdKind;

/*
 * Classifies a file from its filesystem's magic, its st_mode and its
 * /proc/self/fd link. A guest_memfd is either a file of KVM's own pseudo
 * filesystem (GUEST_MEMFD_MAGIC, Linux 6.19 and later) or, on 6.8 to 6.18,
 * an anon inode named "[kvm-gmem]"; nothing else is one. A pidfd is a file
 * of pidfs (PIDFS_MAGIC, Linux 6.9 and later) or, before, an anon inode
 * named "[pidfd]".
 */
FdKind fd_kind_classify(uint64_t fs_magic, mode_t mode, const char *link) _pure_;

/* "a memfd", "a pipe", "a guest_memfd", ... */
const char *fd_kind_to_string(FdKind k) _pure_;

/*
 * Describes the file for an error message: its kind and what the link
 * names, e.g. "a memfd ('memfd:x')", "a regular file ('/tmp/f')". The
 * " (deleted)" the kernel appends to unlinked and pseudo files, and the "/"
 * before a pseudo file's name, are left out. Always NUL-terminates buf.
 */
void fd_kind_describe(FdKind k, const char *link, char *buf, size_t size);
