/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * backend-util.c — small facts about the host that backends need, read from
 * sysfs and procfs, and the identity check applied to every fd a backend
 * obtains before it is trusted.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "backend-util.h"
#include "macro.h"
#include "parse.h"

uint64_t backend_system_page_size(void) {
        long ps = sysconf(_SC_PAGESIZE);
        return ps > 0 ? (uint64_t) ps : 4096;
}

int backend_page_size_system(const char *backend, uint64_t requested, uint64_t *ret, GmemError *e) {
        uint64_t ps = backend_system_page_size();

        /* Even the system page size: a page size asked of a backend that has no choice is a mistake. */
        if (requested != 0)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Option hugepage_size=%" PRIu64
                                      " applies to the hugetlb backend only, not to '%s'", requested, backend);
        *ret = ps;
        return 0;
}

int backend_hugepage_default_size(uint64_t *ret) {
        _cleanup_fclose_ FILE *f = fopen("/proc/meminfo", "re");
        char line[256];

        if (!f)
                return negative_errno();
        while (fgets(line, sizeof(line), f)) {
                uint64_t kb;
                if (sscanf(line, "Hugepagesize: %" SCNu64 " kB", &kb) == 1 && kb > 0) {
                        *ret = kb * 1024;
                        return 0;
                }
        }
        return -ENOENT;
}

static int read_u64_file(const char *path, uint64_t *ret) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        uint64_t v;

        if (!f)
                return negative_errno();
        if (fscanf(f, "%" SCNu64, &v) != 1)
                return -EIO;
        *ret = v;
        return 0;
}

int backend_hugepage_counts(uint64_t page_size, uint64_t *ret_total, uint64_t *ret_free) {
        char path[128];
        uint64_t total, free_pages, resv = 0;
        int r;

        (void) snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%" PRIu64 "kB/nr_hugepages",
                        page_size / 1024);
        r = read_u64_file(path, &total);
        if (r < 0)
                return r;
        (void) snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%" PRIu64 "kB/free_hugepages",
                        page_size / 1024);
        r = read_u64_file(path, &free_pages);
        if (r < 0)
                return r;
        (void) snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%" PRIu64 "kB/resv_hugepages",
                        page_size / 1024);
        (void) read_u64_file(path, &resv);

        *ret_total = total;
        *ret_free = free_pages > resv ? free_pages - resv : 0;
        return 0;
}

int backend_fd_link(int fd, char *buf, size_t size) {
        char path[64];
        ssize_t l;

        gmem_format_uint(path, "/proc/self/fd/", (uint64_t) fd);
        /* readlinkat: the seccomp filter allows the *at calls only (sandbox.c). */
        l = readlinkat(AT_FDCWD, path, buf, size - 1);
        if (l < 0)
                return negative_errno();
        buf[l] = 0;
        return 0;
}

/*
 * gmemd's own fd table in procfs, opened once: re-opening a file relative to
 * it is one lookup, not a walk of /proc/self/fd/N, and the file is the fd's
 * own inode by construction. procfs's magic is checked when it is opened:
 * "self" of a procfs is always the caller, so no other process's file and
 * no file some other filesystem mounted on /proc names can come of it. Not
 * inherited: only gmemd's process uses it (the owner helper closes every fd).
 */
static int proc_fd_dir = -EBADF;

int backend_reopen_init(void) {
        struct statfs sfs;
        int fd;

        if (proc_fd_dir >= 0)
                return 0;
        fd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        if (fstatfs(fd, &sfs) < 0 || sfs.f_type != PROC_SUPER_MAGIC) {
                (void) close(fd);
                return -ENOMEDIUM;
        }
        proc_fd_dir = fd;
        return 0;
}

void backend_reopen_done(void) {
        proc_fd_dir = safe_close(proc_fd_dir);
}

int backend_reopen(int fd, int flags, bool *ret_checked) {
        char name[32], path[64];
        int r;

        if (proc_fd_dir >= 0) {
                gmem_format_uint(name, "", (uint64_t) fd);
                r = openat(proc_fd_dir, name, flags | O_CLOEXEC | O_NOCTTY);
                *ret_checked = true;
        } else {
                /* Without the directory, /proc is whatever is mounted there now: the caller checks. */
                gmem_format_uint(path, "/proc/self/fd/", (uint64_t) fd);
                r = open(path, flags | O_CLOEXEC | O_NOCTTY);
                *ret_checked = false;
        }
        return r < 0 ? negative_errno() : r;
}

int backend_adopt_view_same_inode(const BackendRegion *br, int fd, const BackendViewSpec *spec, BackendView *ret,
                                  GmemError *e) {
        int r;

        r = backend_check_view_inode(br, fd);
        if (r >= 0 && (fcntl(fd, F_GETFL) & O_ACCMODE) != (spec->access == VIEW_ACCESS_RW ? O_RDWR : O_RDONLY))
                r = -EACCES;
        if (r < 0)
                return gmem_error_set_errno(e, r, "Not a %s file of the region", view_access_to_string(spec->access));
        *ret = (BackendView) { .fd = fd };
        return 0;
}

void backend_region_note_inode(BackendRegion *br) {
        struct stat st;

        if (fstat(br->fd, &st) >= 0 && st.st_ino != 0) {
                br->dev = st.st_dev;
                br->ino = st.st_ino;
        }
}

int backend_check_view_inode(const BackendRegion *br, int fd) {
        struct stat st;

        if (br->ino == 0)
                return backend_check_same_inode(br->fd, fd);
        if (fstat(fd, &st) < 0)
                return negative_errno();
        return st.st_dev == br->dev && st.st_ino == br->ino ? 0 : -EXDEV;
}

int backend_check_same_inode(int a, int b) {
        struct stat sa, sb;

        if (fstat(a, &sa) < 0 || fstat(b, &sb) < 0)
                return negative_errno();
        if (sa.st_dev != sb.st_dev || sa.st_ino != sb.st_ino)
                return -EXDEV;
        return 0;
}

int backend_info_from_blocks(const BackendRegion *br, BackendRegionInfo *ret) {
        struct stat st;

        if (fstat(br->fd, &st) < 0)
                return negative_errno();
        *ret = (BackendRegionInfo) { .allocated = (uint64_t) st.st_blocks * 512 };
        return 0;
}

/*
 * The pages are counted in the file's page cache with mincore(2) on
 * temporary mappings, a window at a time: a secretmem mapping counts against
 * RLIMIT_MEMLOCK, and mapping faults nothing in.
 */
#define MINCORE_WINDOW (16ULL << 20)

int backend_info_from_mincore(const BackendRegion *br, BackendRegionInfo *ret) {
        uint64_t window = MINCORE_WINDOW, pages = 0;
        _cleanup_free_ unsigned char *vec = NULL;

        if (br->page_size == 0 || window % br->page_size != 0)
                return -EINVAL;
        vec = malloc(window / br->page_size);
        if (!vec)
                return -ENOMEM;
        for (uint64_t off = 0; off < br->size; off += window) {
                uint64_t len = br->size - off < window ? br->size - off : window;
                void *m;
                int r = 0;

                m = mmap(NULL, len, PROT_READ, MAP_SHARED, br->fd, (off_t) off);
                if (m == MAP_FAILED)
                        return negative_errno();
                if (mincore(m, len, vec) < 0)
                        r = negative_errno();
                (void) munmap(m, len);
                if (r < 0)
                        return r;
                for (uint64_t i = 0; i < len / br->page_size; i++)
                        pages += vec[i] & 1;
        }
        *ret = (BackendRegionInfo) { .allocated = pages * br->page_size };
        return 0;
}

int backend_get_attributes_shared(const BackendRegion *br, uint64_t offset, uint64_t length, MemoryAttribute *ret,
                                  uint64_t *ret_length, GmemError *e) {
        *ret = MEMORY_ATTRIBUTE_SHARED;
        *ret_length = length;
        return 0;
}
