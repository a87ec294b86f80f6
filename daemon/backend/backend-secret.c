/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * backend-secret.c — memfd_secret(2) regions: pages removed from the kernel's
 * direct map, reachable only through mappings of this one file.
 *
 * The kernel cannot re-open a secretmem file (a /proc/self/fd re-open fails
 * with ENXIO), so views cannot have their own open file: every view is a
 * duplicate of the master fd and is read-write. A read-only view is refused
 * rather than pretended. secretmem has no fallocate: Discard is NotSupported
 * and Allocate faults the pages in through a temporary read-only mapping
 * (secretmem refuses MADV_POPULATE_WRITE).
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "backend.h"
#include "backend-util.h"

#ifndef __NR_memfd_secret
#define __NR_memfd_secret 447
#endif

static int sys_memfd_secret(unsigned flags) {
        return (int) syscall(__NR_memfd_secret, flags);
}

static int secret_probe(GmemError *e) {
        int fd = sys_memfd_secret(O_CLOEXEC);

        if (fd < 0) {
                if (errno == ENOSYS)
                        return gmem_error_set(e, GMEM_ERROR_BACKEND_UNAVAILABLE, "Backend 'secret' unavailable: "
                                              "the kernel lacks memfd_secret (on Linux 6.1 boot with secretmem.enable=1)");
                return gmem_error_set(e, GMEM_ERROR_BACKEND_UNAVAILABLE, "Backend 'secret' unavailable: "
                                      "memfd_secret failed: %s", strerror(errno));
        }
        safe_close(fd);
        return 0;
}

static int secret_allocate(const BackendRegion *br, uint64_t offset, uint64_t length, GmemError *e) {
        volatile const uint8_t *p;
        void *m;

        m = mmap(NULL, length, PROT_READ, MAP_SHARED, br->fd, (off_t) offset);
        if (m == MAP_FAILED) {
                if (errno == ENOMEM || errno == EAGAIN)
                        return gmem_error_set(e, GMEM_ERROR_QUOTA_EXCEEDED, "Cannot map %" PRIu64 " secret bytes at %"
                                              PRIu64 ": %s", length, offset, strerror(errno));
                return gmem_error_set_errno(e, errno, "Cannot map %" PRIu64 " secret bytes at %" PRIu64, length, offset);
        }
        /*
         * secretmem refuses MADV_POPULATE_*; a read fault allocates a zeroed
         * page without changing content already there.
         */
        p = m;
        for (uint64_t o = 0; o < length; o += br->page_size)
                (void) p[o];
        (void) munmap(m, length);
        return 0;
}

static int secret_create(const BackendCreateParams *p, BackendRegion *ret, GmemError *e) {
        _cleanup_close_ int fd = -EBADF;
        BackendRegion br;
        int r;

        r = secret_probe(e);
        if (r < 0)
                return r;
        fd = sys_memfd_secret(O_CLOEXEC);
        if (fd < 0)
                return gmem_error_set_errno(e, errno, "Cannot create secret memory for region '%s'", p->name);
        if (ftruncate(fd, (off_t) p->size) < 0)
                return gmem_error_set_errno(e, errno, "Cannot size region '%s' to %" PRIu64 " bytes", p->name, p->size);

        br = (BackendRegion) { .fd = fd, .size = p->size, .page_size = p->page_size };
        if (p->populate) {
                r = secret_allocate(&br, 0, p->size, e);
                if (r < 0)
                        return r;
        }

        fd = -EBADF;
        *ret = br;
        return 0;
}

static int secret_open_view(const BackendRegion *br, const BackendViewSpec *spec, BackendView *ret, GmemError *e) {
        int fd;

        if (spec->access != VIEW_ACCESS_RW)
                return gmem_error_set(e, GMEM_ERROR_NOT_SUPPORTED, "Backend 'secret' cannot give read-only views: "
                                      "the kernel cannot re-open secret memory with fewer rights");
        fd = fcntl(br->fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return gmem_error_set_errno(e, errno, "Cannot duplicate the secret memory file");
        *ret = (BackendView) { .fd = fd };
        return 0;
}

/* A secretmem file of this daemon's, read-write: nothing else names a secret region. */
static int secret_adopt_region(const char *name, int fd, uint64_t page_size, BackendRegion *ret, GmemError *e) {
        char link[256];
        struct stat st;

        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
            backend_fd_link(fd, link, sizeof(link)) < 0 || strncmp(link, "/secretmem", 10) != 0 ||
            (fcntl(fd, F_GETFL) & O_ACCMODE) != O_RDWR)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Not this daemon's secret memory of region '%s'",
                                      name);
        *ret = (BackendRegion) { .fd = -EBADF, .size = (uint64_t) st.st_size, .page_size = page_size };
        return 0;
}

/* secretmem keeps no block count (st_blocks stays 0): its pages are counted in the page cache. */
static int secret_info(const BackendRegion *br, BackendRegionInfo *ret) {
        return backend_info_from_mincore(br, ret);
}

static int secret_page_size(uint64_t requested, uint64_t *ret, GmemError *e) {
        return backend_page_size_system("secret", requested, ret, e);
}

const BackendOps backend_secret_ops = {
        .type = BACKEND_SECRET,
        .probe = secret_probe,
        .page_size = secret_page_size,
        .create = secret_create,
        .adopt_region = secret_adopt_region,
        .adopt_view = backend_adopt_view_same_inode,
        .open_view = secret_open_view,
        .discard = NULL,
        .allocate = secret_allocate,
        .get_attributes = backend_get_attributes_shared,
        .info = secret_info,
        .read_only_views = false,
        .views_share_master = true,
        /* Out of the kernel's direct map, but a view is the region's own file: nothing per view is enforced. */
        .guarantees = 0,
};
