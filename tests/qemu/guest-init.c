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
 *
 * With gmemhotplug=<MiB> on the command line it does something else: it
 * waits for a DIMM of that size to be hot-plugged (the qemu-hotplug test,
 * gmemctl hotplug), onlines its memory blocks (movable, so that they can be
 * taken out again), finds pages of the DIMM among anonymous memory it
 * touches (/proc/self/pagemap gives their frame numbers), writes a pattern
 * into them that the host reads back through another view of the region,
 * and gives them back when the host writes a line to the second serial port
 * (ttyS1). Its lines:
 *
 *   gmem-hotplug: ready blocks=<n> block_size=<hex>
 *   gmem-hotplug: online blocks=<n> base=<hex> size=<hex>
 *   gmem-hotplug: page offset=<hex> pfn=<hex>        (the first few pages written)
 *   gmem-hotplug: wrote pages=<n> of <n touched> sum=<hex>
 *   gmem-hotplug: released
 *   gmem-hotplug: removed blocks=<n>
 *
 * Each page written holds, as 64-bit words: HOTPLUG_MAGIC, its offset in
 * the DIMM, the seed, then expected-style words splitmix64(seed ^ offset ^
 * i) | 1 for i = 3..511. sum is the sum of the offsets written.
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
#include <termios.h>
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

#define PAGE 4096UL
#define HOTPLUG_MAGIC 0x676d656d686f7470ULL   /* "gmemhotp" */
#define BLOCKS_MAX 4096

/* Which memory blocks exist (memoryN in sysfs); returns their number. */
static int scan_blocks(bool *present) {
        char path[64];
        int n = 0;

        for (int i = 0; i < BLOCKS_MAX; i++) {
                struct stat st;

                (void) snprintf(path, sizeof(path), "/sys/devices/system/memory/memory%d", i);
                present[i] = stat(path, &st) == 0;
                n += present[i];
        }
        return n;
}

static int read_text(const char *path, char *buf, size_t size) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n;

        if (fd < 0)
                return -1;
        n = read(fd, buf, size - 1);
        close(fd);
        if (n < 0)
                return -1;
        buf[n] = 0;
        buf[strcspn(buf, "\n")] = 0;
        return 0;
}

static void write_text(const char *path, const char *text) {
        int fd = open(path, O_WRONLY | O_CLOEXEC);

        if (fd < 0)
                return;
        (void) write(fd, text, strlen(text));
        close(fd);
}

static void sleep_ms(long ms) {
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

        nanosleep(&ts, NULL);
}

/* Waits for a line from the host on ttyS1. */
static void wait_host_line(void) {
        struct termios t;
        char c;
        int fd;

        for (;;) {
                fd = open("/dev/ttyS1", O_RDWR | O_NOCTTY | O_CLOEXEC);
                if (fd >= 0)
                        break;
                sleep_ms(200);
        }
        if (tcgetattr(fd, &t) == 0) {
                cfmakeraw(&t);
                (void) tcsetattr(fd, TCSANOW, &t);
        }
        while (read(fd, &c, 1) != 1 || c != '\n')
                ;
        close(fd);
}

static _Noreturn void hotplug_main(uint64_t dimm_bytes) {
        static bool before[BLOCKS_MAX], now[BLOCKS_MAX];
        uint64_t block_size, base = 0, sum = 0, touched, written = 0;
        int n_before, n_new, first = -1, last = -1;
        char text[64], path[96];
        uint8_t *mem;
        int pagemap;

        (void) mkdir("/sys", 0755);
        (void) mount("sysfs", "/sys", "sysfs", 0, NULL);
        if (read_text("/sys/devices/system/memory/block_size_bytes", text, sizeof(text)) < 0)
                halt("no /sys/devices/system/memory (a kernel without CONFIG_MEMORY_HOTPLUG?)");
        block_size = strtoull(text, NULL, 16);
        if (block_size == 0 || dimm_bytes % block_size)
                halt("the DIMM is not a whole number of memory blocks");
        n_before = scan_blocks(before);
        printf("gmem-hotplug: ready blocks=%d block_size=%#" PRIx64 "\n", n_before, block_size);

        /* The DIMM's blocks, all of them, each online (movable). */
        for (;;) {
                bool all_online = true;

                (void) scan_blocks(now);
                n_new = 0;
                first = last = -1;
                for (int i = 0; i < BLOCKS_MAX; i++) {
                        if (!now[i] || before[i])
                                continue;
                        n_new++;
                        if (first < 0)
                                first = i;
                        last = i;
                        (void) snprintf(path, sizeof(path), "/sys/devices/system/memory/memory%d/state", i);
                        if (read_text(path, text, sizeof(text)) < 0 || strcmp(text, "online") != 0) {
                                all_online = false;
                                write_text(path, "online_movable");
                        }
                }
                if ((uint64_t) n_new * block_size >= dimm_bytes && all_online)
                        break;
                sleep_ms(100);
        }
        base = (uint64_t) first * block_size;
        printf("gmem-hotplug: online blocks=%d base=%#" PRIx64 " size=%#" PRIx64 "\n", n_new, base,
               (uint64_t) (last - first + 1) * block_size);

        /* Anonymous pages come from the movable zone, the DIMM, first. */
        touched = dimm_bytes / 2;
        mem = mmap(NULL, touched, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED)
                halt("mmap");
        for (uint64_t o = 0; o < touched; o += PAGE)
                mem[o] = 1;
        pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
        if (pagemap < 0)
                halt("open /proc/self/pagemap");
        for (uint64_t o = 0; o < touched; o += PAGE) {
                uint64_t e, pfn, phys, off;
                uint64_t *w = (uint64_t *) (mem + o);

                if (pread(pagemap, &e, sizeof(e), (off_t) (((uintptr_t) mem + o) / PAGE * sizeof(e))) != sizeof(e))
                        halt("read /proc/self/pagemap");
                if (!(e >> 63))
                        continue;
                pfn = e & ((1ULL << 55) - 1);
                phys = pfn * PAGE;
                if (pfn == 0 || phys < base || phys >= base + dimm_bytes)
                        continue;
                off = phys - base;
                w[0] = HOTPLUG_MAGIC;
                w[1] = off;
                w[2] = seed;
                for (size_t i = 3; i < PAGE / sizeof(uint64_t); i++)
                        w[i] = splitmix64(seed ^ off ^ (uint64_t) i) | 1;
                if (written < 8)
                        printf("gmem-hotplug: page offset=%#" PRIx64 " pfn=%#" PRIx64 "\n", off, pfn);
                written++;
                sum += off;
        }
        close(pagemap);
        printf("gmem-hotplug: wrote pages=%" PRIu64 " of %" PRIu64 " sum=%#" PRIx64 "\n", written,
               touched / PAGE, sum);

        /* Keep the pages until the host has read them, then let the DIMM go. */
        wait_host_line();
        munmap(mem, touched);
        printf("gmem-hotplug: released\n");

        for (;;) {
                int n = scan_blocks(now);

                if (n <= n_before) {
                        printf("gmem-hotplug: removed blocks=%d\n", n);
                        break;
                }
                sleep_ms(200);
        }
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
        if (env_u64("gmemhotplug", 0, 10) > 0)
                hotplug_main(env_u64("gmemhotplug", 0, 10) * MiB);
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
