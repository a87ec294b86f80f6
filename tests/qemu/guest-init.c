// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * guest-init: the /init of the guest that the qemu suite and the migration
 * benchmark migrate from one QEMU to another.
 *
 * It fills most of the guest's RAM with pseudo-random, never-zero data, so
 * that a migration which copied RAM would have to carry it all, and then
 * proves, on the serial console, that it keeps running and that its memory
 * stays intact wherever it runs. Every word of the filled buffer is a pure
 * function of its index and a seed (splitmix64), so any part of it can be
 * checked at any time without keeping a copy.
 *
 * Console protocol, one line each (the host parses these):
 *
 *   gmem-guest: start mem=<MiB total> fill=<MiB> seed=<hex> cpus=<n>
 *   gmem-guest: filled <MiB> MiB in <ms> ms sum=<hex>
 *   hb <counter> sum=<hex> bad=<words> checked=<MiB> t=<ms since boot>
 *
 * <counter> lives in guest memory and grows by one per heartbeat (about
 * every 200 ms): a guest that was restarted instead of migrated would count
 * from 1 again. sum is the checksum of the first 4 MiB of the buffer,
 * recomputed from memory every heartbeat; it never changes. Each heartbeat
 * also checks the next 8 MiB of the buffer against the generator, round
 * robin, and bad counts the words that did not match since the start (it
 * must stay 0).
 *
 * Parameters come from the kernel command line, which the kernel passes to
 * init as environment: gmemseed=<hex>, gmemreserve=<MiB of MemAvailable
 * left unfilled, default 24>. It is linked statically: the initramfs holds
 * nothing else.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#define MiB (1024UL * 1024UL)
#define SUM_BYTES (4 * MiB)
#define CHECK_BYTES (8 * MiB)
#define BEAT_NS (200 * 1000 * 1000L)

static uint64_t seed;
static uint64_t *buf;
static size_t words;

/* The counter is a plain global: it is in guest RAM and migrates with it. */
static volatile uint64_t counter;

static uint64_t splitmix64(uint64_t x) {
        x += 0x9e3779b97f4a7c15ULL;
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
        return x ^ (x >> 31);
}

/* Never zero, so no page of the buffer is a zero page. */
static uint64_t expected(size_t i) {
        return splitmix64(seed ^ (uint64_t) i) | 1;
}

static uint64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static uint64_t checksum(const uint64_t *p, size_t n) {
        uint64_t h = 0xcbf29ce484222325ULL;

        for (size_t i = 0; i < n; i++)
                h = (h ^ p[i]) * 0x100000001b3ULL;
        return h;
}

struct fill_job {
        size_t from, to;
};

static void *fill(void *arg) {
        const struct fill_job *j = arg;

        for (size_t i = j->from; i < j->to; i++)
                buf[i] = expected(i);
        return NULL;
}

/* One thread per CPU, each on its own slice; a thread that cannot be
 * started leaves its slice to this one. */
static void fill_all(size_t n) {
        pthread_t th[16];
        struct fill_job jobs[16];
        bool started[16] = { false };

        for (size_t c = 0; c < n; c++) {
                jobs[c].from = words / n * c;
                jobs[c].to = c == n - 1 ? words : words / n * (c + 1);
        }
        for (size_t c = 1; c < n; c++)
                started[c] = pthread_create(&th[c], NULL, fill, &jobs[c]) == 0;
        fill(&jobs[0]);
        for (size_t c = 1; c < n; c++) {
                if (started[c])
                        pthread_join(th[c], NULL);
                else
                        fill(&jobs[c]);
        }
}

static uint64_t env_u64(const char *name, uint64_t def, int base) {
        const char *s = getenv(name);
        char *end;
        uint64_t v;

        if (!s || !*s)
                return def;
        errno = 0;
        v = strtoull(s, &end, base);
        return errno || *end ? def : v;
}

/* MemAvailable: free memory less the watermarks the kernel keeps for itself
 * (with THP, min_free_kbytes is ~44 MiB on a 1 GiB guest: filling past it
 * leaves init, which cannot be killed, deadlocked on memory). */
static uint64_t mem_available(void) {
        char line[128];
        uint64_t kb = 0;
        FILE *f = fopen("/proc/meminfo", "re");

        if (!f)
                return 0;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "MemAvailable: %" SCNu64 " kB", &kb) == 1)
                        break;
        fclose(f);
        return kb * 1024;
}

static void console(void) {
        int fd;

        (void) mkdir("/dev", 0755);
        (void) mkdir("/proc", 0755);
        (void) mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
        (void) mount("proc", "/proc", "proc", 0, NULL);
        fd = open("/dev/console", O_WRONLY | O_NOCTTY);
        if (fd >= 0) {
                dup2(fd, STDOUT_FILENO);
                dup2(fd, STDERR_FILENO);
                if (fd > STDERR_FILENO)
                        close(fd);
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
}

static _Noreturn void halt(const char *why) {
        printf("gmem-guest: error: %s: %s\n", why, strerror(errno));
        for (;;)
                pause();
}

int main(void) {
        struct sysinfo si;
        uint64_t reserve, fill_bytes, t0, sum, bad = 0, checked = 0;
        size_t next_check = 0, per_check = CHECK_BYTES / sizeof(uint64_t);
        long cpus;

        console();
        seed = env_u64("gmemseed", 0x5eed, 16);
        reserve = env_u64("gmemreserve", 24, 10) * MiB;
        cpus = sysconf(_SC_NPROCESSORS_ONLN);
        if (cpus < 1)
                cpus = 1;
        if (cpus > 16)
                cpus = 16;

        if (sysinfo(&si) < 0)
                halt("sysinfo");
        /* What the kernel can give now, less a reserve for itself. */
        fill_bytes = mem_available();
        if (fill_bytes == 0)
                fill_bytes = (uint64_t) si.freeram * si.mem_unit;
        fill_bytes = fill_bytes > reserve + SUM_BYTES ? fill_bytes - reserve : SUM_BYTES;
        fill_bytes &= ~(MiB - 1);
        words = fill_bytes / sizeof(uint64_t);
        printf("gmem-guest: start mem=%" PRIu64 " fill=%" PRIu64 " seed=%" PRIx64 " cpus=%ld\n",
               (uint64_t) si.totalram * si.mem_unit / MiB, fill_bytes / MiB, seed, cpus);

        buf = mmap(NULL, fill_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (buf == MAP_FAILED)
                halt("mmap");

        t0 = now_ms();
        fill_all((size_t) cpus);
        sum = checksum(buf, SUM_BYTES / sizeof(uint64_t));
        printf("gmem-guest: filled %" PRIu64 " MiB in %" PRIu64 " ms sum=%016" PRIx64 "\n",
               fill_bytes / MiB, now_ms() - t0, sum);

        for (;;) {
                struct timespec ts = { 0, BEAT_NS };

                for (size_t i = 0; i < per_check; i++) {
                        size_t k = (next_check + i) % words;

                        if (buf[k] != expected(k))
                                bad++;
                }
                next_check = (next_check + per_check) % words;
                checked += CHECK_BYTES;
                sum = checksum(buf, SUM_BYTES / sizeof(uint64_t));
                counter++;
                printf("hb %" PRIu64 " sum=%016" PRIx64 " bad=%" PRIu64 " checked=%" PRIu64
                       " t=%" PRIu64 "\n", counter, sum, bad, checked / MiB, now_ms());
                nanosleep(&ts, NULL);
        }
}
