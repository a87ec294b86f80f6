/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-fd-kind.c — the recogniser of guest_memfds (daemon/backend/fd-kind.c),
 * fed what fstatfs, fstat and /proc/self/fd report for each kind of file on
 * the kernels gmemd meets: a guest_memfd of Linux 6.19 and later (KVM's own
 * filesystem), one of 6.8 to 6.18 (an anon inode named [kvm-gmem]), and
 * every look-alike a client could pass instead; a pidfd, before and on
 * pidfs. Then real files of this host, which has no guest_memfd: none of
 * them may pass for one, and a pidfd is a pidfd.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "backend-util.h"
#include "fd-kind.h"
#include "macro.h"
#include "tests.h"

static const struct {
        uint64_t magic;
        mode_t mode;
        const char *link;
        FdKind want;
        const char *described;
} cases[] = {
        /* A guest_memfd of 6.19 and later: its filesystem decides, whatever the link says. */
        { FD_KIND_GUEST_MEMFD_MAGIC, S_IFREG | 0600, "/[kvm-gmem] (deleted)", FD_KIND_GUEST_MEMFD,
          "a guest_memfd ('[kvm-gmem]')" },
        { FD_KIND_GUEST_MEMFD_MAGIC, S_IFREG, "", FD_KIND_GUEST_MEMFD, "a guest_memfd" },
        /* 6.8 to 6.18: an anon inode of its own, named [kvm-gmem]. */
        { FD_KIND_ANON_INODE_FS_MAGIC, S_IFREG | 0600, "anon_inode:[kvm-gmem]", FD_KIND_GUEST_MEMFD,
          "a guest_memfd ('anon_inode:[kvm-gmem]')" },
        /* A pidfd: of pidfs from 6.9 on (its magic decides), an anon inode named [pidfd] before. */
        { FD_KIND_PIDFS_MAGIC, S_IFREG | 0400, "anon_inode:[pidfd]", FD_KIND_PIDFD,
          "a pidfd ('anon_inode:[pidfd]')" },
        { FD_KIND_ANON_INODE_FS_MAGIC, 0600, "anon_inode:[pidfd]", FD_KIND_PIDFD, "a pidfd ('anon_inode:[pidfd]')" },
        { TMPFS_MAGIC, S_IFREG | 0600, "anon_inode:[pidfd]", FD_KIND_REGULAR,
          "a regular file ('anon_inode:[pidfd]')" },
        /* Look-alikes. */
        { FD_KIND_ANON_INODE_FS_MAGIC, 0600, "anon_inode:kvm-vm", FD_KIND_ANON_INODE,
          "an anonymous inode ('anon_inode:kvm-vm')" },
        { FD_KIND_ANON_INODE_FS_MAGIC, 0600, "anon_inode:[kvm-gmem]x", FD_KIND_ANON_INODE,
          "an anonymous inode ('anon_inode:[kvm-gmem]x')" },
        { TMPFS_MAGIC, S_IFREG | 0600, "anon_inode:[kvm-gmem]", FD_KIND_REGULAR,
          "a regular file ('anon_inode:[kvm-gmem]')" },
        { TMPFS_MAGIC, S_IFREG | 0600, "/[kvm-gmem] (deleted)", FD_KIND_REGULAR,
          "a regular file ('/[kvm-gmem] (deleted)')" },
        { TMPFS_MAGIC, S_IFREG | 0600, "/memfd:x (deleted)", FD_KIND_MEMFD, "a memfd ('memfd:x')" },
        { HUGETLBFS_MAGIC, S_IFREG | 0600, "/memfd:gmem:r (deleted)", FD_KIND_MEMFD, "a memfd ('memfd:gmem:r')" },
        { FD_KIND_SECRETMEM_MAGIC, S_IFREG | 0600, "/secretmem (deleted)", FD_KIND_SECRETMEM,
          "secret memory ('secretmem')" },
        { PIPEFS_MAGIC, S_IFIFO | 0600, "pipe:[1234]", FD_KIND_PIPE, "a pipe ('pipe:[1234]')" },
        { SOCKFS_MAGIC, S_IFSOCK | 0777, "socket:[99]", FD_KIND_SOCKET, "a socket ('socket:[99]')" },
        { EXT4_SUPER_MAGIC, S_IFREG | 0644, "/var/lib/x", FD_KIND_REGULAR, "a regular file ('/var/lib/x')" },
        { EXT4_SUPER_MAGIC, S_IFDIR | 0755, "/var", FD_KIND_DIRECTORY, "a directory ('/var')" },
        { TMPFS_MAGIC, S_IFCHR | 0666, "/dev/kvm", FD_KIND_CHAR_DEVICE, "a character device ('/dev/kvm')" },
        { TMPFS_MAGIC, S_IFBLK | 0660, "/dev/vda", FD_KIND_BLOCK_DEVICE, "a block device ('/dev/vda')" },
        { 0x1234, 0, "", FD_KIND_OTHER, "a file of an unknown kind" },
        { 0x1234, 0, NULL, FD_KIND_OTHER, "a file of an unknown kind" },
};

static void test_classify_table(void) {
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char desc[300];
                FdKind k = fd_kind_classify(cases[i].magic, cases[i].mode, cases[i].link);

                EXPECT(k == cases[i].want, "case %zu ('%s') is %s, not %s", i, cases[i].link ?: "(null)",
                       fd_kind_to_string(cases[i].want), fd_kind_to_string(k) ?: "?");
                fd_kind_describe(k, cases[i].link, desc, sizeof(desc));
                EXPECT(streq(desc, cases[i].described), "case %zu is described as \"%s\", not \"%s\"", i,
                       cases[i].described, desc);
        }
}

static void test_every_kind_has_a_name(void) {
        for (FdKind k = 0; k < _FD_KIND_MAX; k++)
                EXPECT(fd_kind_to_string(k), "kind %d has a name", k);
        EXPECT(!fd_kind_to_string(_FD_KIND_MAX) && !fd_kind_to_string(_FD_KIND_INVALID), "no name past the table");
}

static void test_describe_truncates(void) {
        char small[8];

        fd_kind_describe(FD_KIND_MEMFD, "/memfd:a-long-name (deleted)", small, sizeof(small));
        EXPECT(strlen(small) == sizeof(small) - 1, "a description is cut to the buffer and NUL-terminated");
        fd_kind_describe(FD_KIND_MEMFD, "/memfd:x (deleted)", small, 0);
}

static FdKind classify_fd(int fd) {
        char link[256] = "";
        struct statfs sfs;
        struct stat st;

        EXPECT(fstat(fd, &st) == 0 && fstatfs(fd, &sfs) == 0, "fd %d can be inspected", fd);
        (void) backend_fd_link(fd, link, sizeof(link));
        return fd_kind_classify((uint64_t) sfs.f_type, st.st_mode, link);
}

/* Files of this host, as the kernel reports them: none is a guest_memfd. */
static void test_real_files(void) {
        int p[2], s[2], fd;

        fd = memfd_create("x", MFD_CLOEXEC);
        EXPECT(fd >= 0, "memfd_create works");
        EXPECT(classify_fd(fd) == FD_KIND_MEMFD, "a memfd is a memfd");
        close(fd);

        EXPECT(pipe2(p, O_CLOEXEC) == 0, "pipe2 works");
        EXPECT(classify_fd(p[0]) == FD_KIND_PIPE, "a pipe is a pipe");
        close(p[0]);
        close(p[1]);

        EXPECT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) == 0, "socketpair works");
        EXPECT(classify_fd(s[0]) == FD_KIND_SOCKET, "a socket is a socket");
        close(s[0]);
        close(s[1]);

        fd = eventfd(0, EFD_CLOEXEC);
        EXPECT(fd >= 0, "eventfd works");
        EXPECT(classify_fd(fd) == FD_KIND_ANON_INODE, "an eventfd is an anonymous inode, not a guest_memfd");
        close(fd);

        /* Under valgrind pidfd_open is ENOSYS: nothing to classify then. */
        fd = (int) syscall(SYS_pidfd_open, getpid(), 0);
        EXPECT(fd >= 0 || errno == ENOSYS, "pidfd_open works");
        if (fd >= 0)
                EXPECT(classify_fd(fd) == FD_KIND_PIDFD, "a pidfd is a pidfd");
        if (fd >= 0)
                close(fd);

        fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        EXPECT(fd >= 0, "the test's own executable opens");
        EXPECT(classify_fd(fd) == FD_KIND_REGULAR, "an executable is a regular file");
        close(fd);

        fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        EXPECT(fd >= 0 && classify_fd(fd) == FD_KIND_DIRECTORY, "/ is a directory");
        close(fd);

        fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        EXPECT(fd >= 0 && classify_fd(fd) == FD_KIND_CHAR_DEVICE, "/dev/null is a character device");
        close(fd);
}

int main(void) {
        RUN(test_classify_table);
        RUN(test_every_kind_has_a_name);
        RUN(test_describe_truncates);
        RUN(test_real_files);
        return 0;
}
