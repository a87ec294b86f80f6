/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-limits.c — the two limits gmemd checks before it charges anything:
 * memory cgroup headroom (memcg.c) read from a cgroup tree built here, v2
 * and v1, with limits at different levels; what the host has (MemAvailable);
 * and file-descriptor headroom
 * (fdlimit.c) against a real RLIMIT_NOFILE lowered in this process.
 */
#include <fcntl.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fdlimit.h"
#include "macro.h"
#include "memcg.h"
#include "tests.h"

static char root[] = "/tmp/test-limits.XXXXXX";

/*
 * A soft limit far enough above what fdlimit_check() needs (n + FDLIMIT_RESERVE
 * + fdlimit.c's FDLIMIT_SLACK, 4096) that a low claim of held fds is answered
 * from getrlimit() alone.
 */
#define FAR_LIMIT 8192

static void put(const char *rel, const char *content) {
        char path[512], dir[512];
        int fd;

        snprintf(path, sizeof(path), "%s/%s", root, rel);
        for (char *p = strchr(path + strlen(root) + 1, '/'); p; p = strchr(p + 1, '/')) {
                snprintf(dir, sizeof(dir), "%.*s", (int) (p - path), path);
                (void) mkdir(dir, 0755);
        }
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        EXPECT(fd >= 0, "create %s", path);
        EXPECT(write(fd, content, strlen(content)) == (ssize_t) strlen(content), "write %s", path);
        close(fd);
}

static void cleanup(void) {
        char cmd[600];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
        (void) system(cmd);
}

static MemcgHeadroom headroom(const char *proc) {
        char cgroup[512], procfile[512];
        MemcgHeadroom h;

        snprintf(cgroup, sizeof(cgroup), "%s/fs", root);
        snprintf(procfile, sizeof(procfile), "%s/%s", root, proc);
        EXPECT(memcg_headroom(cgroup, procfile, &h) == 0, "memcg_headroom() reads %s", proc);
        return h;
}

static void test_memcg_v2(void) {
        MemcgHeadroom h;

        put("proc-v2", "0::/a/b/c\n");
        put("fs/memory.max", "max\n");            /* the root has none in reality; a stray one is ignored */
        put("fs/a/memory.max", "1000000\n");
        put("fs/a/memory.current", "400000\n");
        put("fs/a/b/memory.max", "max\n");
        put("fs/a/b/memory.current", "300000\n");
        put("fs/a/b/c/memory.max", "900000\n");
        put("fs/a/b/c/memory.current", "100000\n");
        h = headroom("proc-v2");
        EXPECT(h.left == 600000 && h.limit == 1000000 && streq(h.path, "/a"),
               "the ancestor's smaller headroom wins: left %llu limit %llu path %s",
               (unsigned long long) h.left, (unsigned long long) h.limit, h.path);

        put("fs/a/b/c/memory.current", "899000\n");
        h = headroom("proc-v2");
        EXPECT(h.left == 1000 && streq(h.path, "/a/b/c"), "the cgroup's own headroom wins when smaller");

        put("fs/a/b/c/memory.current", "999999\n");
        h = headroom("proc-v2");
        EXPECT(h.left == 0, "usage over the limit leaves nothing, not a wrapped-around number");

        put("fs/a/b/c/memory.max", "garbage\n");
        put("fs/a/memory.max", "max\n");
        h = headroom("proc-v2");
        EXPECT(h.left == UINT64_MAX, "unreadable and unlimited levels impose nothing");
}

static void test_memcg_v1(void) {
        MemcgHeadroom h;

        put("proc-v1", "12:cpu,cpuacct:/x\n5:memory:/svc/gmemd\n0::/elsewhere\n");
        put("fs/memory/memory.limit_in_bytes", "9223372036854771712\n");
        put("fs/memory/memory.usage_in_bytes", "5000000000\n");
        put("fs/memory/svc/gmemd/memory.limit_in_bytes", "67108864\n");
        put("fs/memory/svc/gmemd/memory.usage_in_bytes", "1048576\n");
        h = headroom("proc-v1");
        EXPECT(h.left == 67108864 - 1048576 && streq(h.path, "/svc/gmemd"),
               "v1's memory line wins over the v2 line; v1's 'no limit' number is no limit");

        put("proc-v1-list", "4:blkio,memory,pids:/svc/gmemd\n");
        h = headroom("proc-v1-list");
        EXPECT(h.limit == 67108864, "memory found in a list of co-mounted controllers");

        put("proc-v1-not", "4:nomemory:/svc/gmemd\n");
        char fs[512], procfile[512];
        snprintf(fs, sizeof(fs), "%s/fs", root);
        snprintf(procfile, sizeof(procfile), "%s/proc-v1-not", root);
        EXPECT(memcg_headroom(fs, procfile, &h) == -ENOENT, "'nomemory' is not the memory controller");
}

static void test_host_memory(void) {
        char path[512];
        HostMemory h;

        snprintf(path, sizeof(path), "%s/meminfo", root);
        put("meminfo", "MemTotal:       24683744 kB\nMemFree:        20000000 kB\n"
                       "MemAvailable:   23014368 kB\nShmem:             10320 kB\n");
        EXPECT(memcg_host_memory(path, &h) == 0, "memcg_host_memory() reads %s", path);
        EXPECT(h.available == 23014368ULL * 1024 && h.total == 24683744ULL * 1024,
               "MemAvailable and MemTotal in bytes: %llu of %llu", (unsigned long long) h.available,
               (unsigned long long) h.total);

        put("meminfo", "MemTotal:       24683744 kB\nMemFree:        20000000 kB\n");
        EXPECT(memcg_host_memory(path, &h) == -ENOENT, "a kernel without MemAvailable says nothing");
        snprintf(path, sizeof(path), "%s/no-such-meminfo", root);
        EXPECT(memcg_host_memory(path, &h) == -ENOENT, "a missing file is an error, not a figure");
        EXPECT(memcg_host_memory(NULL, &h) == 0 && h.available > 0 && h.available <= h.total,
               "this host's /proc/meminfo reads: %llu of %llu available", (unsigned long long) h.available,
               (unsigned long long) h.total);
}

static void test_fdlimit(void) {
        struct rlimit saved, rl;
        int fd, n = 0;

        EXPECT(getrlimit(RLIMIT_NOFILE, &saved) == 0, "getrlimit");
        fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        EXPECT(fd >= 0, "open /dev/null");

        /*
         * Far below the limit a claim of few held fds is trusted without a probe. Shown with every
         * free fd number taken: a probe would find no room, the trusted claim still passes, and a
         * claim near the limit is probed and fails.
         */
        if (saved.rlim_max < FAR_LIMIT)
                fprintf(stderr, "GMEM-SKIP test-limits.test_fdlimit: the hard RLIMIT_NOFILE (%llu) is below %d: "
                        "the answer far below the limit is not tried\n",
                        (unsigned long long) saved.rlim_max, FAR_LIMIT);
        else {
                int *taken = calloc(FAR_LIMIT, sizeof(int)), got = 0;
                rlim_t limit = 0;

                EXPECT(taken, "memory for %d fds", FAR_LIMIT);
                rl = (struct rlimit) { .rlim_cur = FAR_LIMIT, .rlim_max = saved.rlim_max };
                EXPECT(setrlimit(RLIMIT_NOFILE, &rl) == 0, "set the soft limit to %d", FAR_LIMIT);
                fdlimit_reread();
                for (;;) {
                        int x = fcntl(fd, F_DUPFD_CLOEXEC, 3);
                        if (x < 0) {
                                EXPECT(errno == EMFILE, "dup fails only at the limit (%s)", strerror(errno));
                                break;
                        }
                        EXPECT(got < FAR_LIMIT, "no more fds than the limit");
                        taken[got++] = x;
                }
                EXPECT(fdlimit_check(fd, 2, 0, &limit) == 0,
                       "a claim of no held fds far below the limit is trusted: no probe, so it passes "
                       "though no fd number is free");
                EXPECT(limit == FAR_LIMIT, "the soft limit in force is reported (%llu)", (unsigned long long) limit);
                EXPECT(fdlimit_check(fd, 2, FAR_LIMIT - 10, NULL) == -EMFILE,
                       "a claim near the limit is checked with a probe, which finds no room");
                while (got > 0)
                        close(taken[--got]);
                free(taken);
                EXPECT(setrlimit(RLIMIT_NOFILE, &saved) == 0, "restore the soft limit");
                fdlimit_reread();
        }

        /* Allow exactly FDLIMIT_RESERVE + 2 more fds. The limit bounds fd numbers: free numbers below
         * the highest open fd count too. */
        int holes = 0;
        for (int i = 0; i < 1024; i++)
                if (fcntl(i, F_GETFD) >= 0)
                        n = i + 1;
        for (int i = 0; i < n; i++)
                if (fcntl(i, F_GETFD) < 0)
                        holes++;
        if (holes > (int) FDLIMIT_RESERVE + 2)
                TEST_SKIP("%d unused fd numbers below the highest open one", holes);
        rl = (struct rlimit) { .rlim_cur = (rlim_t) (n + (int) FDLIMIT_RESERVE + 2 - holes),
                               .rlim_max = saved.rlim_max };
        EXPECT(setrlimit(RLIMIT_NOFILE, &rl) == 0, "lower the soft limit to %d", n + (int) FDLIMIT_RESERVE + 2);
        fdlimit_reread();
        EXPECT(fdlimit_check(fd, 2, (size_t) n, NULL) == 0, "two fds and the reserve fit exactly");
        EXPECT(fdlimit_check(fd, 3, (size_t) n, NULL) == -EMFILE, "a third does not");
        EXPECT(fdlimit_check(fd, 1, 0, NULL) == 0, "a low claim of held fds is checked for real, and fits");
        int extra = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        EXPECT(extra >= 0, "dup");
        EXPECT(fdlimit_check(fd, 2, 0, NULL) == -EMFILE, "one fd fewer free: two no longer fit, whatever the claim");
        close(extra);
        EXPECT(fcntl(fd, F_DUPFD_CLOEXEC, 3) >= 0, "the probe closed every fd it opened");

        /* fdlimit_raise() takes the soft limit up to the hard one. */
        EXPECT(fdlimit_raise(&rl) == 0 && rl.rlim_cur == saved.rlim_max, "raised to the hard limit");
        EXPECT(setrlimit(RLIMIT_NOFILE, &saved) == 0, "restore");
        fdlimit_reread();
}

int main(void) {
        /* Inherited fds would leave holes in the fd numbers test_fdlimit() counts on. */
        (void) close_range(3, ~0U, 0);
        EXPECT(mkdtemp(root), "mkdtemp");
        RUN(test_memcg_v2);
        RUN(test_memcg_v1);
        RUN(test_host_memory);
        RUN(test_fdlimit);
        cleanup();
        return 0;
}
