/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * backend-memfd.c — the memfd and hugetlb backends: shmem or hugetlbfs inodes
 * from memfd_create().
 *
 * The inode is locked down at birth so that a view can never carry more
 * rights than it was given:
 *   - seals F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL: the size is fixed and
 *     nobody, not even a read-write view, can add a seal (F_SEAL_WRITE would
 *     otherwise let one VM freeze everyone's memory);
 *   - F_SEAL_EXEC via MFD_NOEXEC_SEAL where the kernel has it;
 *   - mode 0600 owned by the daemon, so re-opening a view through
 *     /proc/self/fd/N with more access is refused by the kernel's permission
 *     check to any other uid lacking CAP_DAC_OVERRIDE;
 *   - a POSIX ACL on the inode grants each hypervisor uid exactly the access
 *     of its views (read or read-write), so QEMU can re-open its own view
 *     ("mem-path=/proc/self/fd/N") but a uid holding only read-only views
 *     cannot re-open one for writing. Rights on re-open are per uid: VMs
 *     with different rights must run under different uids.
 *   - hugetlbfs takes no access list: there the one hypervisor uid with
 *     read-write views of a region owns the inode instead (0600), given to
 *     it by gmemd's owner helper, which alone holds CAP_CHOWN; read-write
 *     views of a second uid are refused. A uid with read-only views only is
 *     never the owner: an owner may change the mode and re-open for
 *     writing. It uses the fd handed out.
 * A view is a re-open of the inode through /proc/self/fd of the master fd:
 * a new open file description with exactly the access asked for. The new
 * fd is checked to be the same inode before it is trusted.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <linux/memfd.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "backend.h"
#include "backend-util.h"
#include "parse.h"

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif
#ifndef MFD_HUGE_SHIFT
#define MFD_HUGE_SHIFT 26
#endif

#define REGION_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

static int memfd_create_sealed(const char *label, unsigned flags, int *ret_fd) {
        int fd;

        /* Ask for the exec seal; kernels before 6.3 do not know the flag. */
        fd = memfd_create(label, flags | MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL);
        if (fd < 0 && errno == EINVAL)
                fd = memfd_create(label, flags | MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return negative_errno();
        *ret_fd = fd;
        return 0;
}

static int memfd_family_create(const BackendCreateParams *p, unsigned flags, BackendRegion *ret, GmemError *e) {
        _cleanup_close_ int fd = -EBADF;
        char label[GMEM_NAME_MAX + 8];
        int r;

        (void) snprintf(label, sizeof(label), "gmem:%s", p->name);

        r = memfd_create_sealed(label, flags, &fd);
        if (r < 0)
                return gmem_error_set_errno(e, r, "Cannot create memfd for region '%s'", p->name);

        if (ftruncate(fd, (off_t) p->size) < 0)
                return gmem_error_set_errno(e, errno, "Cannot size region '%s' to %" PRIu64 " bytes",
                                            p->name, p->size);

        if (p->populate && fallocate(fd, 0, 0, (off_t) p->size) < 0) {
                if (errno == ENOSPC || errno == ENOMEM)
                        return gmem_error_set(e, GMEM_ERROR_QUOTA_EXCEEDED, "Cannot populate region '%s' "
                                              "of %" PRIu64 " bytes: %s", p->name, p->size, strerror(errno));
                return gmem_error_set_errno(e, errno, "Cannot populate region '%s'", p->name);
        }

        if (fchmod(fd, 0600) < 0)
                return gmem_error_set_errno(e, errno, "Cannot lock down the mode of region '%s'", p->name);

        if (fcntl(fd, F_ADD_SEALS, REGION_SEALS) < 0)
                return gmem_error_set_errno(e, errno, "Cannot seal region '%s'", p->name);

        *ret = (BackendRegion) {
                .fd = TAKE_FD(fd),
                .size = p->size,
                .page_size = p->page_size,
        };
        return 0;
}

/*
 * The window, the allocate right and pending are the broker's bookkeeping on
 * a memfd: a view file reaches the whole inode with its access.
 */
static int memfd_open_view(const BackendRegion *br, const BackendViewSpec *spec, BackendView *ret, GmemError *e) {
        _cleanup_close_ int fd = -EBADF;
        bool checked;
        int r;

        fd = backend_reopen(br->fd, spec->access == VIEW_ACCESS_RW ? O_RDWR : O_RDONLY, &checked);
        if (fd < 0)
                return gmem_error_set_errno(e, fd, "Cannot open a new view file of fd %d", br->fd);
        if (!checked) {
                r = backend_check_view_inode(br, fd);
                if (r < 0)
                        return gmem_error_set_errno(e, r, "Re-opened view file is not the region's inode");
        }

        *ret = (BackendView) { .fd = TAKE_FD(fd) };
        return 0;
}

static int memfd_discard(const BackendRegion *br, uint64_t offset, uint64_t length, GmemError *e) {
        if (fallocate(br->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t) offset, (off_t) length) < 0)
                return gmem_error_set_errno(e, errno, "Cannot punch a hole of %" PRIu64 " bytes at %" PRIu64,
                                            length, offset);
        return 0;
}

/*
 * A region's end: every page of the inode goes back to the host now, not
 * when the last process holding a view file closes it. A holder that still
 * maps a view reads zeros from then on; a page it faults in again is a new
 * page charged to its own memory cgroup, not the region's.
 */
static int memfd_free_memory(const BackendRegion *br, GmemError *e) {
        if (br->fd < 0 || br->size == 0)
                return 0;
        if (fallocate(br->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t) br->size) < 0)
                return gmem_error_set_errno(e, errno, "Cannot free the %" PRIu64 " bytes of the region's memory",
                                            br->size);
        return 0;
}

static int memfd_allocate(const BackendRegion *br, uint64_t offset, uint64_t length, GmemError *e) {
        if (fallocate(br->fd, FALLOC_FL_KEEP_SIZE, (off_t) offset, (off_t) length) < 0) {
                if (errno == ENOSPC || errno == ENOMEM)
                        return gmem_error_set(e, GMEM_ERROR_QUOTA_EXCEEDED, "Cannot allocate %" PRIu64
                                              " bytes at %" PRIu64 ": %s", length, offset, strerror(errno));
                return gmem_error_set_errno(e, errno, "Cannot allocate %" PRIu64 " bytes at %" PRIu64,
                                            length, offset);
        }
        return 0;
}

/* POSIX ACL xattr layout (linux/posix_acl_xattr.h), little-endian. */
#define ACL_XATTR_VERSION 0x0002
#define ACL_TAG_USER_OBJ  0x01
#define ACL_TAG_USER      0x02
#define ACL_TAG_GROUP_OBJ 0x04
#define ACL_TAG_MASK      0x10
#define ACL_TAG_OTHER     0x20
#define ACL_UNDEFINED_ID  UINT32_MAX
#define ACL_GRANTS_MAX    4096

typedef struct __attribute__((packed)) AclEntry {
        uint16_t tag;
        uint16_t perm;
        uint32_t id;
} AclEntry;

static int memfd_set_grants(const BackendRegion *br, const BackendGrant *grants, size_t n, GmemError *e) {
        _cleanup_free_ uint8_t *buf = NULL;
        uint32_t version = ACL_XATTR_VERSION;
        AclEntry *ent;
        uint16_t mask = 0;
        size_t k = 0, size;

        if (n == 0) {
                /* Back to the bare mode: nobody but the daemon may re-open the inode. */
                if (fremovexattr(br->fd, "system.posix_acl_access") < 0 && errno != ENODATA)
                        return gmem_error_set_errno(e, errno, "Cannot remove the access list of the region's inode");
                if (fchmod(br->fd, 0600) < 0)
                        return gmem_error_set_errno(e, errno, "Cannot lock down the mode of the region's inode");
                return 0;
        }
        if (n > ACL_GRANTS_MAX)
                return gmem_error_set(e, GMEM_ERROR_QUOTA_EXCEEDED, "Too many hypervisor uids on one region: %zu, "
                                      "the limit is %d", n, ACL_GRANTS_MAX);

        size = sizeof(version) + (n + 4) * sizeof(AclEntry);
        buf = calloc(1, size);
        if (!buf)
                return gmem_error_set_errno(e, ENOMEM, "Cannot build the access list");
        memcpy(buf, &version, sizeof(version));
        ent = (AclEntry *) (buf + sizeof(version));

        ent[k++] = (AclEntry) { ACL_TAG_USER_OBJ, 6, ACL_UNDEFINED_ID };
        for (size_t i = 0; i < n; i++) {
                uint16_t perm = grants[i].access == VIEW_ACCESS_RW ? 6 : 4;
                ent[k++] = (AclEntry) { ACL_TAG_USER, perm, grants[i].uid };
                mask |= perm;
        }
        ent[k++] = (AclEntry) { ACL_TAG_GROUP_OBJ, 0, ACL_UNDEFINED_ID };
        ent[k++] = (AclEntry) { ACL_TAG_MASK, mask, ACL_UNDEFINED_ID };
        ent[k++] = (AclEntry) { ACL_TAG_OTHER, 0, ACL_UNDEFINED_ID };

        if (fsetxattr(br->fd, "system.posix_acl_access", buf, size, 0) < 0) {
                if (errno == EOPNOTSUPP)
                        return gmem_error_set(e, GMEM_ERROR_NOT_SUPPORTED, "The kernel cannot put an access list on "
                                              "memfd inodes (CONFIG_TMPFS_POSIX_ACL): hypervisor uids cannot re-open views");
                return gmem_error_set_errno(e, errno, "Cannot set the access list of the region's inode");
        }
        return 0;
}

/*
 * This daemon's memfd of that name, locked down as it left it: owned by
 * gmemd or, where the inode is given to a hypervisor uid (hugetlb), by
 * anyone with any mode (the owner may have changed it; the grants restored
 * with the region give the inode its owner and mode again).
 */
static int memfd_family_adopt(const char *name, int fd, uint64_t page_size, bool given, BackendRegion *ret,
                              GmemError *e) {
        char link[256], want[GMEM_NAME_MAX + 32];
        struct stat st;

        (void) snprintf(want, sizeof(want), "/memfd:gmem:%s (deleted)", name);
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
            (st.st_uid != geteuid() && !given) ||
            backend_fd_link(fd, link, sizeof(link)) < 0 || !streq(link, want) ||
            (fcntl(fd, F_GET_SEALS) & REGION_SEALS) != REGION_SEALS || (fcntl(fd, F_GETFL) & O_ACCMODE) != O_RDWR)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Not this daemon's sealed memfd of region '%s'",
                                      name);
        *ret = (BackendRegion) { .fd = -EBADF, .size = (uint64_t) st.st_size, .page_size = page_size };
        return 0;
}

static int memfd_adopt_region(const char *name, int fd, uint64_t page_size, BackendRegion *ret, GmemError *e) {
        return memfd_family_adopt(name, fd, page_size, false, ret, e);
}

/* --- memfd --- */

static int memfd_probe(GmemError *e) {
        return 0;
}

static int memfd_create_region(const BackendCreateParams *p, BackendRegion *ret, GmemError *e) {
        return memfd_family_create(p, 0, ret, e);
}

static int memfd_page_size(uint64_t requested, uint64_t *ret, GmemError *e) {
        return backend_page_size_system("memfd", requested, ret, e);
}

const BackendOps backend_memfd_ops = {
        .type = BACKEND_MEMFD,
        .probe = memfd_probe,
        .page_size = memfd_page_size,
        .create = memfd_create_region,
        .free_memory = memfd_free_memory,
        .adopt_region = memfd_adopt_region,
        .adopt_view = backend_adopt_view_same_inode,
        .open_view = memfd_open_view,
        .discard = memfd_discard,
        .allocate = memfd_allocate,
        .get_attributes = backend_get_attributes_shared,
        .info = backend_info_from_blocks,
        .set_grants = memfd_set_grants,
        .read_only_views = true,
        /* The seals, the inode's mode and its access list keep a read-only view read-only, re-opened too. */
        .guarantees = BACKEND_ENFORCES_ACCESS,
};

/* --- hugetlb --- */

static int hugetlb_probe(GmemError *e) {
        uint64_t def, total = 0, free_pages = 0;
        int r;

        r = backend_hugepage_default_size(&def);
        if (r < 0)
                return gmem_error_set(e, GMEM_ERROR_BACKEND_UNAVAILABLE,
                                      "Backend 'hugetlb' unavailable: the kernel reports no huge page size");
        r = backend_hugepage_counts(def, &total, &free_pages);
        if (r < 0 || total == 0)
                return gmem_error_set(e, GMEM_ERROR_BACKEND_UNAVAILABLE,
                                      "Backend 'hugetlb' unavailable: no huge pages of %" PRIu64 " KiB are reserved "
                                      "(/sys/kernel/mm/hugepages/hugepages-%" PRIu64 "kB/nr_hugepages is 0)",
                                      def / 1024, def / 1024);
        return 0;
}

static int hugetlb_page_size(uint64_t requested, uint64_t *ret, GmemError *e) {
        uint64_t ps = requested;
        uint64_t total, free_pages;

        if (ps == 0 && backend_hugepage_default_size(&ps) < 0)
                return gmem_error_set(e, GMEM_ERROR_BACKEND_UNAVAILABLE,
                                      "Backend 'hugetlb' unavailable: the kernel reports no huge page size");
        if (ps < 4096 || (ps & (ps - 1)))
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Invalid hugepage_size %" PRIu64
                                      ": not a power of two of at least 4096", ps);
        if (backend_hugepage_counts(ps, &total, &free_pages) < 0)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Invalid hugepage_size %" PRIu64
                                      ": the kernel has no huge pages of %" PRIu64 " KiB", ps, ps / 1024);
        *ret = ps;
        return 0;
}

static int hugetlb_create_region(const BackendCreateParams *p, BackendRegion *ret, GmemError *e) {
        uint64_t total = 0, free_pages = 0, need = p->size / p->page_size;
        unsigned shift = (unsigned) __builtin_ctzll(p->page_size);

        if (backend_hugepage_counts(p->page_size, &total, &free_pages) < 0 || free_pages < need)
                return gmem_error_set(e, GMEM_ERROR_BACKEND_UNAVAILABLE, "Backend 'hugetlb' unavailable: region '%s' "
                                      "needs %" PRIu64 " huge pages of %" PRIu64 " KiB, %" PRIu64 " of %" PRIu64
                                      " reserved are free (/sys/kernel/mm/hugepages/hugepages-%" PRIu64 "kB/nr_hugepages)",
                                      p->name, need, p->page_size / 1024, free_pages, total, p->page_size / 1024);

        return memfd_family_create(p, MFD_HUGETLB | (shift << MFD_HUGE_SHIFT), ret, e);
}

/*
 * hugetlbfs takes no access list: the inode's owner is the one uid that may
 * re-open it, mode 0600: the hypervisor uid with read-write views, or gmemd
 * itself when there is none. A uid with read-only views only is not made
 * the owner, because an owner may chmod the inode and re-open it for
 * writing. Changing the owner takes CAP_CHOWN, which only gmemd's owner
 * helper holds; without the helper nothing is granted or refused, and views
 * are used only through the fds handed out.
 */
static int hugetlb_set_grants(const BackendRegion *br, const BackendGrant *grants, size_t n, GmemError *e) {
        const BackendGrant *rw = NULL;
        uint32_t uid;
        int r;

        if (!backend_can_give_inode())
                return 0;
        for (size_t i = 0; i < n; i++) {
                if (grants[i].access != VIEW_ACCESS_RW)
                        continue;
                if (rw)
                        return gmem_error_set(e, GMEM_ERROR_NOT_SUPPORTED,
                                              "A hugetlb region cannot have read-write views of hypervisor uids %u "
                                              "and %u: hugetlbfs takes no access list, so only the inode's owner, "
                                              "one uid, may re-open a view; run these VMs under one uid",
                                              (unsigned) rw->uid, (unsigned) grants[i].uid);
                rw = &grants[i];
        }
        uid = rw ? rw->uid : (uint32_t) geteuid();
        r = backend_give_inode(br->fd, uid, 0600);
        if (r < 0)
                return gmem_error_set_errno(e, r, "Cannot give the region's hugetlb inode to uid %u", (unsigned) uid);
        return 0;
}

/* gmemd re-opens the inode itself: first it takes it back if a hypervisor uid owns it (set_grants follows). */
static int hugetlb_open_view(const BackendRegion *br, const BackendViewSpec *spec, BackendView *ret, GmemError *e) {
        struct stat st;
        int r;

        if (fstat(br->fd, &st) < 0)
                return gmem_error_set_errno(e, errno, "Cannot inspect the region's hugetlb inode");
        if (st.st_uid != geteuid()) {
                r = backend_give_inode(br->fd, (uint32_t) geteuid(), 0600);
                if (r < 0)
                        return gmem_error_set_errno(e, r, "Cannot take the region's hugetlb inode back from "
                                                    "uid %u to open a view", (unsigned) st.st_uid);
        }
        return memfd_open_view(br, spec, ret, e);
}

static int hugetlb_adopt_region(const char *name, int fd, uint64_t page_size, BackendRegion *ret, GmemError *e) {
        return memfd_family_adopt(name, fd, page_size, true, ret, e);
}

const BackendOps backend_hugetlb_ops = {
        .type = BACKEND_HUGETLB,
        .probe = hugetlb_probe,
        .page_size = hugetlb_page_size,
        .create = hugetlb_create_region,
        .free_memory = memfd_free_memory,
        .adopt_region = hugetlb_adopt_region,
        .adopt_view = backend_adopt_view_same_inode,
        .open_view = hugetlb_open_view,
        .discard = memfd_discard,
        .allocate = memfd_allocate,
        .get_attributes = backend_get_attributes_shared,
        .info = backend_info_from_blocks,
        .set_grants = hugetlb_set_grants,
        .read_only_views = true,
        /* The seals, and no read-only uid ever owning the inode, keep ro read-only. */
        .guarantees = BACKEND_ENFORCES_ACCESS,
};
