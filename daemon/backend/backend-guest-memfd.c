/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * backend-guest-memfd.c — custody of a guest_memfd a hypervisor made.
 *
 * KVM makes a guest_memfd only for a VM, and a VM's fd works only in the
 * process that created it (kvm_vm_ioctl() fails with EIO when the calling
 * mm is not the VM's), so gmemd cannot make one: the hypervisor makes it
 * (KVM_CREATE_GUEST_MEMFD with GUEST_MEMFD_FLAG_MMAP | INIT_SHARED, Linux
 * 6.18 and later) and hands it over with AdoptRegion. gmemd keeps the file,
 * and with it the memory: it outlives the hypervisor process and its VM.
 *
 * Inode and file: KVM's inode is the storage, its file is one VM's view and
 * pins that VM (struct kvm). gmemd keeps that very file; it cannot make
 * another: a guest_memfd cannot be reopened (/proc/self/fd gives ENXIO) and
 * stock KVM has no call that links a second file to the inode. So a region
 * has one view, the master file itself, for one VM, read-write; no
 * read-only view and no migration target (which would need a second file).
 * Punching a hole (Discard) zaps KVM's own mappings of the range as well as
 * every process's; Allocate is fallocate with KEEP_SIZE, the only mode KVM
 * takes. Memory attributes live in KVM, per VM: gmemd holds none.
 *
 * A file is trusted only when fd-kind.c says it is a guest_memfd, it is open
 * read-write, and a shared mapping of its first page can be read: without
 * GUEST_MEMFD_FLAG_MMAP mmap fails (ENODEV), without INIT_SHARED the page
 * is private and MADV_POPULATE_READ fails (EFAULT, where a read would be
 * SIGBUS). The check faults in the first page, zeroed if it was not there;
 * the region's size counts it already.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "backend.h"
#include "backend-util.h"
#include "fd-kind.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

/* Adoption needs only a file: gmemd never opens /dev/kvm, and the backend is there wherever a client has one. */
static int gmem_probe(GmemError *e) {
        return 0;
}

static int gmem_page_size(uint64_t requested, uint64_t *ret, GmemError *e) {
        return backend_page_size_system("guest_memfd", requested, ret, e);
}

/* What the file is, from fstatfs, fstat and its /proc/self/fd link; a description of it for messages. */
static int gmem_identify(int fd, struct stat *ret_st, FdKind *ret_kind, char *desc, size_t desc_size) {
        char link[256] = "";
        struct statfs sfs;

        if (fstat(fd, ret_st) < 0 || fstatfs(fd, &sfs) < 0)
                return negative_errno();
        (void) backend_fd_link(fd, link, sizeof(link));
        *ret_kind = fd_kind_classify((uint64_t) sfs.f_type, ret_st->st_mode, link);
        fd_kind_describe(*ret_kind, link, desc, desc_size);
        return 0;
}

/* A shared mapping of the first page can be made and read: MMAP and INIT_SHARED. */
static int gmem_check_mappable(const char *name, int fd, uint64_t page_size, GmemError *e) {
        void *m;
        int r = 0;

        m = mmap(NULL, page_size, PROT_READ, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "The guest_memfd passed for region '%s' cannot be "
                                      "mapped (%s): it was made without GUEST_MEMFD_FLAG_MMAP; gmemd keeps only "
                                      "guest_memfds made with GUEST_MEMFD_FLAG_MMAP|GUEST_MEMFD_FLAG_INIT_SHARED "
                                      "(Linux 6.18 and later)", name, strerror(errno));
        if (madvise(m, page_size, MADV_POPULATE_READ) < 0 && errno != EINVAL)
                r = -errno;
        (void) munmap(m, page_size);
        if (r == -EFAULT)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "The guest_memfd passed for region '%s' was made "
                                      "without GUEST_MEMFD_FLAG_INIT_SHARED: its pages are private to the VM and "
                                      "cannot be read through a mapping", name);
        if (r < 0)
                return gmem_error_set_errno(e, -r, "Cannot read the first page of the guest_memfd passed for region "
                                            "'%s'", name);
        return 0;
}

static int gmem_adopt_region(const char *name, int fd, uint64_t page_size, BackendRegion *ret, GmemError *e) {
        char desc[300];
        struct stat st;
        FdKind kind;
        int flags, r;

        r = gmem_identify(fd, &st, &kind, desc, sizeof(desc));
        if (r < 0)
                return gmem_error_set_errno(e, -r, "Cannot inspect the file passed for region '%s'", name);
        if (kind != FD_KIND_GUEST_MEMFD)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "The file passed for region '%s' is %s, not a "
                                      "guest_memfd", name, desc);
        flags = fcntl(fd, F_GETFL);
        if (flags < 0)
                return gmem_error_set_errno(e, errno, "Cannot read the flags of the guest_memfd passed for region "
                                            "'%s'", name);
        if ((flags & O_ACCMODE) != O_RDWR)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "The guest_memfd passed for region '%s' is not "
                                      "open read-write (O_ACCMODE %d); a guest_memfd cannot be reopened, so gmemd "
                                      "keeps only the read-write file KVM made", name, flags & O_ACCMODE);
        if (st.st_size <= 0 || page_size == 0 || (uint64_t) st.st_size % page_size != 0)
                return gmem_error_set(e, GMEM_ERROR_INVALID_SIZE, "The guest_memfd passed for region '%s' has size "
                                      "%jd, not a positive multiple of the page size %" PRIu64, name,
                                      (intmax_t) st.st_size, page_size);
        r = gmem_check_mappable(name, fd, page_size, e);
        if (r < 0)
                return r;

        *ret = (BackendRegion) { .fd = -EBADF, .size = (uint64_t) st.st_size, .page_size = page_size };
        return 0;
}

/* The one view there can be: the master file itself. */
static int gmem_open_view(const BackendRegion *br, const BackendViewSpec *spec, BackendView *ret, GmemError *e) {
        int fd;

        if (spec->access != VIEW_ACCESS_RW)
                return gmem_error_set(e, GMEM_ERROR_NOT_SUPPORTED, "%s", backend_guest_memfd_ops.why.read_only);
        fd = fcntl(br->fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return gmem_error_set_errno(e, errno, "Cannot duplicate the guest_memfd");
        *ret = (BackendView) { .fd = fd };
        return 0;
}

/* KVM zaps its own mappings of the range (kvm_gmem_punch_hole) as well as the processes'. */
static int gmem_discard(const BackendRegion *br, uint64_t offset, uint64_t length, GmemError *e) {
        if (fallocate(br->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t) offset, (off_t) length) < 0)
                return gmem_error_set_errno(e, errno, "Cannot punch a hole of %" PRIu64 " bytes at %" PRIu64
                                            " in the guest_memfd", length, offset);
        return 0;
}

static int gmem_free_memory(const BackendRegion *br, GmemError *e) {
        if (br->fd < 0 || br->size == 0)
                return 0;
        return gmem_discard(br, 0, br->size, e);
}

static int gmem_allocate(const BackendRegion *br, uint64_t offset, uint64_t length, GmemError *e) {
        if (fallocate(br->fd, FALLOC_FL_KEEP_SIZE, (off_t) offset, (off_t) length) < 0) {
                if (errno == ENOSPC || errno == ENOMEM)
                        return gmem_error_set(e, GMEM_ERROR_QUOTA_EXCEEDED, "Cannot allocate %" PRIu64 " bytes at %"
                                              PRIu64 " in the guest_memfd: %s", length, offset, strerror(errno));
                return gmem_error_set_errno(e, errno, "Cannot allocate %" PRIu64 " bytes at %" PRIu64
                                            " in the guest_memfd", length, offset);
        }
        return 0;
}

/* KVM's inodes keep no block count: the pages in the page cache, read through mappings (MMAP is checked). */
static int gmem_info(const BackendRegion *br, BackendRegionInfo *ret) {
        struct stat st;

        if (fstat(br->fd, &st) < 0)
                return negative_errno();
        if (st.st_blocks > 0) {
                *ret = (BackendRegionInfo) { .allocated = (uint64_t) st.st_blocks * 512 };
                return 0;
        }
        return backend_info_from_mincore(br, ret);
}

const BackendOps backend_guest_memfd_ops = {
        .type = BACKEND_GUEST_MEMFD,
        .probe = gmem_probe,
        .page_size = gmem_page_size,
        .create = NULL,
        .free_memory = gmem_free_memory,
        .adopt_region = gmem_adopt_region,
        .adopt_view = backend_adopt_view_same_inode,
        .open_view = gmem_open_view,
        .discard = gmem_discard,
        .allocate = gmem_allocate,
        .set_attributes = NULL,
        .get_attributes = NULL,
        .info = gmem_info,
        .read_only_views = false,
        .views_share_master = true,
        .one_view = true,
        .custody = true,
        .why = {
                .create = "guest_memfd regions are adopted with AdoptRegion: gmemd cannot create one for a VM it "
                          "does not run",
                .read_only = "a guest_memfd has one open file, which cannot be reopened: there is no read-only file "
                             "to give",
                .second_view = "a guest_memfd has one open file, which cannot be reopened, and KVM makes no second "
                               "file on its inode: one VM only, and no migration to another",
                .attributes = "KVM keeps guest_memfd attributes per VM; gmemd holds none",
        },
        /* gmemd holds the file KVM made; a process that has it can do anything the file can. */
        .guarantees = 0,
};
