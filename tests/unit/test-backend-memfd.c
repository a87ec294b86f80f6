/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-backend-memfd.c — the memfd backend on its own: the inode's lockdown
 * (seals, mode, access lists), views as distinct open files of one inode,
 * discard and allocate, a destroyed region's memory freed under a view
 * still held, and every route from a read-only view to write
 * access we know of, each tried and shown closed.
 */
#include <fcntl.h>
#include <linux/kcmp.h>
#include <sched.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

#include "backend.h"
#include "backend-util.h"
#include "tests.h"

#define SIZE (64 * 4096)
#define NOBODY 65534

/* A part of a test that cannot run here says so on a line of its own; the rest goes on. */
#define SKIP_PART(function, ...)                                                        \
        do {                                                                            \
                fprintf(stderr, "GMEM-SKIP test-backend-memfd.%s: ", function);         \
                fprintf(stderr, __VA_ARGS__);                                           \
                fputc('\n', stderr);                                                    \
        } while (0)

static BackendRegion region;

static void make_region(void) {
        GmemError e = GMEM_ERROR_INIT;
        int r = backend_memfd_ops.create(&(BackendCreateParams) { .name = "t", .size = SIZE, .page_size = 4096 },
                                         &region, &e);
        EXPECT(r == 0, "a memfd region of 256 KiB can be created: %s", e.message);
}

static int open_view(ViewAccess a) {
        GmemError e = GMEM_ERROR_INIT;
        BackendView v = { .fd = -1 };
        EXPECT(backend_memfd_ops.open_view(&region, &(BackendViewSpec) { .access = a, .length = SIZE }, &v, &e) == 0,
               "a %s view opens: %s", view_access_to_string(a), e.message);
        EXPECT(v.id == 0, "a memfd names no view in the kernel");
        return v.fd;
}

/* allocated bytes as the backend reports them */
static uint64_t allocated(const BackendOps *ops, const BackendRegion *br) {
        BackendRegionInfo info = {};
        EXPECT(ops->info(br, &info) == 0 && info.private_bytes == 0, "the backend reports what the region holds");
        return info.allocated;
}

static void test_lockdown(void) {
        struct stat st;
        int seals = fcntl(region.fd, F_GET_SEALS);

        EXPECT(seals >= 0, "the region's inode supports seals");
        EXPECT((seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)) == (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
               "the inode is sealed against shrinking, growing and further seals (seals=%#x)", seals);
        EXPECT(!(seals & F_SEAL_WRITE), "the inode is not write-sealed");
        EXPECT(fstat(region.fd, &st) == 0 && (st.st_mode & 07777) == 0600, "the inode's mode is 0600 (%o)",
               st.st_mode & 07777);
        EXPECT(st.st_size == SIZE, "the inode has the region's size");
}

/* kcmp(KCMP_FILE) of two fds of this process: 0 the same open file, 1 or 2 different (ordered), -1 an error. */
static long kcmp_files(int a, int b) {
        pid_t self = getpid();

        return syscall(SYS_kcmp, self, self, KCMP_FILE, a, b);
}

static void test_views_distinct(void) {
        int ro = open_view(VIEW_ACCESS_RO), rw = open_view(VIEW_ACCESS_RW), rw2 = open_view(VIEW_ACCESS_RW);
        struct stat a, b;
        long k;

        EXPECT((fcntl(ro, F_GETFL) & O_ACCMODE) == O_RDONLY, "a read-only view is opened O_RDONLY");
        EXPECT((fcntl(rw, F_GETFL) & O_ACCMODE) == O_RDWR, "a read-write view is opened O_RDWR");
        EXPECT(fcntl(ro, F_GETFD) & FD_CLOEXEC, "views are close-on-exec in the daemon");
        EXPECT(fstat(ro, &a) == 0 && fstat(region.fd, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev,
               "a view is a file on the region's inode");
        int same = dup(rw);
        EXPECT(same >= 0, "a view can be duplicated");
        k = kcmp_files(rw, same);
        if (k < 0 && errno == ENOSYS)
                SKIP_PART("test_views_distinct", "kcmp() is not in this kernel (CONFIG_KCMP): "
                          "views are told apart by their file positions only");
        else {
                EXPECT(k == 0, "kcmp works here: a view and its dup are the same open file (kcmp %ld, %s)",
                       k, k < 0 ? strerror(errno) : "no error");
                k = kcmp_files(rw, rw2);
                EXPECT(k == 1 || k == 2, "two views are different open files (kcmp %ld, %s)",
                       k, k < 0 ? strerror(errno) : "no error");
                k = kcmp_files(rw, region.fd);
                EXPECT(k == 1 || k == 2, "a view is not the master file (kcmp %ld, %s)",
                       k, k < 0 ? strerror(errno) : "no error");
        }
        close(same);
        EXPECT(lseek(rw, 4096, SEEK_SET) == 4096 && lseek(rw2, 0, SEEK_CUR) == 0,
               "seeking one view does not move another");
        close(ro), close(rw), close(rw2);
}

/* Runs fn in a child as uid/gid 65534 and returns its exit status. */
static int as_nobody(int (*fn)(int), int fd) {
        pid_t pid = fork();
        int status;

        EXPECT(pid >= 0, "fork works");
        if (pid == 0) {
                if (setresgid(NOBODY, NOBODY, NOBODY) < 0 || setgroups(0, NULL) < 0 ||
                    setresuid(NOBODY, NOBODY, NOBODY) < 0)
                        _exit(99);
                _exit(fn(fd));
        }
        EXPECT(waitpid(pid, &status, 0) == pid && WIFEXITED(status), "the child exits normally");
        return WEXITSTATUS(status);
}

/* The content the read-only routes must leave alone: never zero, unlike its neighbours. */
static uint8_t pattern_at(size_t i) {
        return (uint8_t) (1 + (i * 13) % 251);
}

/* The first byte of [0, SIZE) at p that is not the pattern, or SIZE. */
static size_t pattern_mismatch(const uint8_t *p) {
        size_t i = 0;

        while (i < SIZE && p[i] == pattern_at(i))
                i++;
        return i;
}

static int reopen_rw(int fd) {
        char p[64];
        snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
        int n = open(p, O_RDWR);
        return n >= 0 ? 0 : errno == EACCES ? 1 : 2;
}

static int reopen_ro(int fd) {
        char p[64];
        snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
        int n = open(p, O_RDONLY);
        return n >= 0 ? 0 : errno == EACCES ? 1 : 2;
}

static int try_fchmod(int fd) {
        return fchmod(fd, 0666) < 0 && errno == EPERM ? 1 : 0;
}

static int try_fchown(int fd) {
        return fchown(fd, NOBODY, NOBODY) < 0 && errno == EPERM ? 1 : 0;
}

static void test_read_only_routes(void) {
        int ro = open_view(VIEW_ACCESS_RO), rw = open_view(VIEW_ACCESS_RW);
        uint8_t *m, *shadow, junk[4096], *back;
        char p[64];
        int memfd, pipefd[2];
        off_t off = 0, in_off;
        size_t bad;

        /* Every attempt below writes bytes that differ from the pattern where they land. */
        for (size_t i = 0; i < sizeof(junk); i++)
                junk[i] = (uint8_t) ~pattern_at(i);
        shadow = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0);
        EXPECT(shadow != MAP_FAILED, "the read-write view maps shared and writable");
        for (size_t i = 0; i < SIZE; i++)
                shadow[i] = pattern_at(i);

        errno = 0;
        EXPECT(mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0) == MAP_FAILED && errno == EACCES,
               "a read-only view cannot be mapped shared and writable (errno %d)", errno);

        m = mmap(NULL, SIZE, PROT_READ, MAP_SHARED, ro, 0);
        EXPECT(m != MAP_FAILED, "a read-only view maps shared and readable");
        EXPECT(pattern_mismatch(m) == SIZE, "it sees what the read-write view wrote");
        errno = 0;
        EXPECT(mprotect(m, SIZE, PROT_READ | PROT_WRITE) < 0 && errno == EACCES,
               "its mapping cannot be made writable with mprotect (errno %d)", errno);

        errno = 0;
        EXPECT(write(ro, junk, sizeof(junk)) < 0 && errno == EBADF, "write() on it fails with EBADF");
        EXPECT(pwrite(ro, junk, sizeof(junk), 0) < 0 && errno == EBADF, "pwrite() on it fails with EBADF");
        errno = 0;
        EXPECT(ftruncate(ro, 0) < 0 && (errno == EINVAL || errno == EBADF), "ftruncate() on it fails (errno %d)", errno);
        errno = 0;
        EXPECT(fallocate(ro, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096) < 0 && errno == EBADF,
               "punching a hole through it fails with EBADF (errno %d)", errno);
        EXPECT(fallocate(ro, 0, 0, 4096) < 0 && errno == EBADF, "allocating through it fails with EBADF");
        errno = 0;
        EXPECT(fcntl(ro, F_ADD_SEALS, F_SEAL_WRITE) < 0 && errno == EPERM, "it cannot add a seal (errno %d)", errno);
        (void) fcntl(ro, F_SETFL, O_RDWR);
        EXPECT((fcntl(ro, F_GETFL) & O_ACCMODE) == O_RDONLY, "F_SETFL cannot change its access mode");

        EXPECT(pipe(pipefd) == 0 && write(pipefd[1], junk, sizeof(junk)) == (ssize_t) sizeof(junk),
               "a pipe with a page of other bytes in it");
        errno = 0;
        EXPECT(splice(pipefd[0], NULL, ro, &off, sizeof(junk), 0) < 0 && errno == EBADF,
               "splice into it fails (errno %d)", errno);
        /* From one page on, where the pattern differs from the pattern at 0. */
        in_off = 4096;
        EXPECT(copy_file_range(rw, &in_off, ro, &off, 4096, 0) < 0 && errno == EBADF, "copy_file_range into it fails");
        in_off = 4096;
        EXPECT(sendfile(ro, rw, &in_off, 4096) < 0 && errno == EBADF, "sendfile into it fails");
        close(pipefd[0]), close(pipefd[1]);

        /* /proc/self/mem writes with FOLL_FORCE, but not into a shared mapping that may not be written. */
        memfd = open("/proc/self/mem", O_RDWR);
        EXPECT(memfd >= 0, "/proc/self/mem opens");
        EXPECT(pwrite(memfd, junk, sizeof(junk), (off_t) (uintptr_t) m) < 0,
               "/proc/self/mem cannot write into the read-only mapping");
        close(memfd);

        /* A private mapping may be written, but only its own copy changes. */
        uint8_t *priv = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, ro, 0);
        EXPECT(priv != MAP_FAILED, "a private mapping of the read-only view is allowed");
        memcpy(priv, junk, sizeof(junk));
        EXPECT(pattern_mismatch(shadow) == SIZE && pattern_mismatch(m) == SIZE,
               "a write to a private mapping does not reach the region");
        munmap(priv, SIZE);

        snprintf(p, sizeof(p), "/proc/self/fd/%d", ro);
        unlink("/tmp/gmem-test-link");
        errno = 0;
        EXPECT(linkat(AT_FDCWD, p, AT_FDCWD, "/tmp/gmem-test-link", AT_SYMLINK_FOLLOW) < 0,
               "the inode cannot be linked into a file system through /proc (errno %d)", errno);

        if (geteuid() == 0) {
                EXPECT(as_nobody(reopen_rw, ro) == 1, "another uid cannot re-open the read-only view read-write");
                EXPECT(as_nobody(reopen_ro, ro) == 1, "another uid without a grant cannot re-open it at all");
                EXPECT(as_nobody(try_fchmod, ro) == 1, "another uid cannot fchmod the inode");
                EXPECT(as_nobody(try_fchown, ro) == 1, "another uid cannot fchown the inode");
        } else
                SKIP_PART("test_read_only_routes", "not root (euid %u): the routes through another uid "
                          "(re-open, fchmod, fchown) are not tried", (unsigned) geteuid());

        /* A read-write view cannot change the size or freeze the region for others. */
        errno = 0;
        EXPECT(ftruncate(rw, SIZE / 2) < 0 && errno == EPERM, "a read-write view cannot shrink the region (errno %d)", errno);
        EXPECT(ftruncate(rw, SIZE * 2) < 0 && errno == EPERM, "a read-write view cannot grow the region");
        EXPECT(fallocate(rw, 0, SIZE, 4096) < 0 && errno == EPERM, "a read-write view cannot grow it with fallocate");
        EXPECT(fcntl(rw, F_ADD_SEALS, F_SEAL_WRITE) < 0 && errno == EPERM, "a read-write view cannot add a write seal");

        /* Read three ways: the read-write mapping, the read-only one, and read() of a fresh view. */
        bad = pattern_mismatch(shadow);
        EXPECT(bad == SIZE, "the region's content is intact after all attempts (byte %zu is %#x, not %#x)",
               bad, bad < SIZE ? shadow[bad] : 0, pattern_at(bad));
        bad = pattern_mismatch(m);
        EXPECT(bad == SIZE, "the read-only mapping reads the pattern intact (byte %zu)", bad);
        back = malloc(SIZE);
        EXPECT(back, "memory for a buffer");
        int fresh = open_view(VIEW_ACCESS_RO);
        EXPECT(pread(fresh, back, SIZE, 0) == SIZE, "a fresh view reads the whole region");
        bad = pattern_mismatch(back);
        EXPECT(bad == SIZE, "read() of a fresh view gets the pattern intact (byte %zu)", bad);
        free(back);
        close(fresh);
        munmap(m, SIZE), munmap(shadow, SIZE);
        close(ro), close(rw);
}

static void test_grants(void) {
        GmemError e = GMEM_ERROR_INIT;
        int ro = open_view(VIEW_ACCESS_RO);

        if (geteuid() != 0) {
                close(ro);
                SKIP_PART("test_grants", "not root (euid %u): granting another uid needs a child "
                          "that switches to it", (unsigned) geteuid());
                return;
        }
        BackendGrant g = { .uid = NOBODY, .access = VIEW_ACCESS_RO };
        EXPECT(backend_memfd_ops.set_grants(&region, &g, 1, &e) == 0, "a read grant can be set: %s", e.message);
        EXPECT(as_nobody(reopen_ro, ro) == 0, "a uid granted read can re-open the view read-only");
        EXPECT(as_nobody(reopen_rw, ro) == 1, "a uid granted read cannot re-open it read-write");

        g.access = VIEW_ACCESS_RW;
        EXPECT(backend_memfd_ops.set_grants(&region, &g, 1, &e) == 0, "a read-write grant can be set");
        EXPECT(as_nobody(reopen_rw, ro) == 0, "a uid granted read-write can re-open read-write (QEMU's mem-path)");

        EXPECT(backend_memfd_ops.set_grants(&region, NULL, 0, &e) == 0, "grants can be taken back");
        EXPECT(as_nobody(reopen_ro, ro) == 1, "after that the uid cannot re-open the view");
        close(ro);
}

static void test_discard_allocate(void) {
        GmemError e = GMEM_ERROR_INIT;
        int ro = open_view(VIEW_ACCESS_RO), rw = open_view(VIEW_ACCESS_RW);
        uint64_t before, after;
        uint8_t *w = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0);
        uint8_t *r = mmap(NULL, SIZE, PROT_READ, MAP_SHARED, ro, 0);

        EXPECT(w != MAP_FAILED && r != MAP_FAILED, "both views map");
        memset(w, 0xa5, SIZE);
        before = allocated(&backend_memfd_ops, &region);
        EXPECT(before >= SIZE, "all pages are allocated");
        EXPECT(backend_memfd_ops.discard(&region, 4096, 8192, &e) == 0, "a range can be discarded: %s", e.message);
        /* Checked before reading: a read fault through a shared mapping allocates the page again. */
        after = allocated(&backend_memfd_ops, &region);
        EXPECT(after == before - 8192,
               "the discarded pages are freed (%llu -> %llu)", (unsigned long long) before, (unsigned long long) after);
        EXPECT(r[4096] == 0 && r[4096 + 8191] == 0 && w[8192] == 0, "every view reads zeros in the discarded range");
        EXPECT(r[0] == 0xa5 && r[3 * 4096] == 0xa5, "bytes around the range are kept");
        EXPECT(backend_memfd_ops.allocate(&region, 4096, 8192, &e) == 0, "the range can be allocated again");
        after = allocated(&backend_memfd_ops, &region);
        EXPECT(after == before, "the pages are back");
        EXPECT(r[4096] == 0, "allocated pages read zeros");
        munmap(w, SIZE), munmap(r, SIZE);
        close(ro), close(rw);
}

/* A region's end frees its memory while a view file is still held: the held file reads zeros. */
static void test_free_memory(void) {
        GmemError e = GMEM_ERROR_INIT;
        BackendView held = { .fd = -1 };
        BackendRegion br;
        struct stat st;
        uint8_t *w;

        EXPECT(backend_memfd_ops.create(&(BackendCreateParams) { .name = "f", .size = SIZE, .page_size = 4096,
                                                                 .populate = true }, &br, &e) == 0,
               "a populated region can be created: %s", e.message);
        EXPECT(backend_memfd_ops.open_view(&br, &(BackendViewSpec) { .access = VIEW_ACCESS_RW, .length = SIZE },
                                           &held, &e) == 0, "a view of it opens: %s", e.message);
        w = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, held.fd, 0);
        EXPECT(w != MAP_FAILED, "the view maps");
        memset(w, 0x5a, SIZE);
        EXPECT(allocated(&backend_memfd_ops, &br) >= SIZE, "every page is allocated");
        EXPECT(backend_memfd_ops.free_memory && backend_hugetlb_ops.free_memory,
               "memfd and hugetlb can free a destroyed region's memory");
        EXPECT(!backend_secret_ops.free_memory, "secret cannot, and does not pretend to");
        EXPECT(backend_memfd_ops.free_memory(&br, &e) == 0, "the region's memory is freed: %s", e.message);
        backend_region_release(&br);
        EXPECT(fstat(held.fd, &st) == 0 && st.st_blocks == 0,
               "the view file still held has no page left (%lld blocks)", (long long) st.st_blocks);
        EXPECT(w[0] == 0 && w[SIZE - 1] == 0, "the mapping still held reads zeros");
        munmap(w, SIZE);
        close(held.fd);
}

static void test_hugetlb_secret(void) {
        GmemError e = GMEM_ERROR_INIT;
        uint64_t ps;
        int r = backend_hugetlb_ops.probe(&e);

        if (r < 0)
                EXPECT(e.code == GMEM_ERROR_BACKEND_UNAVAILABLE && strstr(e.message, "huge pages"),
                       "without reserved huge pages hugetlb is BackendUnavailable naming the reservation: %s", e.message);
        else
                SKIP_PART("test_hugetlb_secret", "huge pages are reserved here: the answer without "
                          "them is not tried");
        e = (GmemError) GMEM_ERROR_INIT;
        EXPECT(backend_hugetlb_ops.page_size(12345, &ps, &e) < 0 && e.code == GMEM_ERROR_INVALID_ARGUMENT,
               "a huge page size that is not a power of two is refused");
        e = (GmemError) GMEM_ERROR_INIT;
        EXPECT(backend_memfd_ops.page_size(2 << 20, &ps, &e) < 0 && strstr(e.message, "hugetlb"),
               "memfd refuses a hugepage_size and says it is for hugetlb");

        e = (GmemError) GMEM_ERROR_INIT;
        if (backend_secret_ops.probe(&e) < 0) {
                EXPECT(e.code == GMEM_ERROR_BACKEND_UNAVAILABLE, "a missing memfd_secret is BackendUnavailable");
                SKIP_PART("test_hugetlb_secret", "no memfd_secret here (%s): secret regions are not tried",
                          e.message);
                return;
        }
        BackendRegion s;
        int fd = -1;
        EXPECT(backend_secret_ops.create(&(BackendCreateParams) { .name = "s", .size = 8 * 4096, .page_size = 4096,
                                                                  .populate = true }, &s, &e) == 0,
               "a populated secret region can be created: %s", e.message);
        BackendView sv = { .fd = -1 };
        EXPECT(backend_secret_ops.open_view(&s, &(BackendViewSpec) { .access = VIEW_ACCESS_RO, .length = 8 * 4096 },
                                            &sv, &e) < 0 && e.code == GMEM_ERROR_NOT_SUPPORTED,
               "secret regions refuse read-only views rather than pretend");
        e = (GmemError) GMEM_ERROR_INIT;
        EXPECT(backend_secret_ops.open_view(&s, &(BackendViewSpec) { .access = VIEW_ACCESS_RW, .length = 8 * 4096 },
                                            &sv, &e) == 0, "a read-write secret view opens");
        fd = sv.fd;
        uint8_t *p = mmap(NULL, 8 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        EXPECT(p != MAP_FAILED, "the secret view maps");
        p[0] = 7;
        EXPECT(backend_secret_ops.discard == NULL, "secret regions have no discard (the caller says NotSupported)");
        munmap(p, 8 * 4096);
        close(fd);
        backend_region_release(&s);
}

/* Re-opening through gmemd's fd table and through the path gives files of the same inode; only the table's
 * are the same by construction. */
static void test_reopen(void) {
        bool checked = true;
        struct stat a, b;
        int fd;

        backend_reopen_done();
        fd = backend_reopen(region.fd, O_RDONLY, &checked);
        EXPECT(fd >= 0 && !checked, "without the fd table a re-open goes by path and is left to check (%s)",
               fd < 0 ? strerror(-fd) : "opened");
        EXPECT(fstat(fd, &a) == 0 && fstat(region.fd, &b) == 0 && a.st_ino == b.st_ino, "by path: the same inode");
        close(fd);
        EXPECT(backend_reopen_init() == 0 && backend_reopen_init() == 0, "the fd table opens (once)");
        fd = backend_reopen(region.fd, O_RDWR, &checked);
        EXPECT(fd >= 0 && checked, "through the fd table a re-open needs no check (%s)",
               fd < 0 ? strerror(-fd) : "opened");
        EXPECT(fstat(fd, &a) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev, "through the table: the same inode");
        EXPECT((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR && (fcntl(fd, F_GETFD) & FD_CLOEXEC),
               "with the access asked, close-on-exec");
        close(fd);
        EXPECT(backend_reopen(12345, O_RDONLY, &checked) == -ENOENT, "an fd that is not open: ENOENT");
}

int main(void) {
        make_region();
        RUN(test_lockdown);
        RUN(test_views_distinct);
        RUN(test_reopen);
        RUN(test_views_distinct);       /* again, through the fd table */
        RUN(test_read_only_routes);
        RUN(test_grants);
        RUN(test_discard_allocate);
        RUN(test_free_memory);
        RUN(test_hugetlb_secret);
        backend_region_release(&region);
        backend_reopen_done();
        return 0;
}
