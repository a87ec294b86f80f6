/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-util.c — the clock, the order statistics and the facts about the
 * machine and the daemon that the benchmark programs print next to their
 * figures. Percentiles use the nearest rank of the sorted samples of one
 * run; a table shows the median of such figures across repeated runs, so
 * one disturbed run cannot move it.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench-util.h"

uint64_t now_ns(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * NSEC_PER_SEC + (uint64_t) ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

void sort_u64(uint64_t *v, size_t n) {
        qsort(v, n, sizeof(*v), cmp_u64);
}

uint64_t quantile_u64(const uint64_t *sorted, size_t n, double p) {
        size_t i;

        if (n == 0)
                return 0;
        if (p <= 0)
                return sorted[0];
        i = (size_t) (p * (double) n + 0.999999);   /* nearest rank: ceil(p * n) */
        if (i < 1)
                i = 1;
        if (i > n)
                i = n;
        return sorted[i - 1];
}

double median_double(double *v, size_t n) {
        if (n == 0)
                return 0;
        qsort(v, n, sizeof(*v), cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int bench_bus_open(sd_bus **ret) {
        return sd_bus_open_system(ret);
}

int bench_wait_for_name(sd_bus *bus, const char *name, uint64_t timeout_usec) {
        uint64_t deadline = now_ns() + timeout_usec * NSEC_PER_USEC;

        for (;;) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                int has = 0, r;

                r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                       "NameHasOwner", NULL, &reply, "s", name);
                if (r < 0)
                        return r;
                r = sd_bus_message_read(reply, "b", &has);
                if (r < 0)
                        return r;
                if (has)
                        return 0;
                if (now_ns() > deadline)
                        return -ETIMEDOUT;
                (void) usleep(20000);
        }
}

int bench_name_pid(sd_bus *bus, const char *name, pid_t *ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        uint32_t pid;
        int r;

        r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                               "GetConnectionUnixProcessID", NULL, &reply, "s", name);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "u", &pid);
        if (r < 0)
                return r;
        *ret = (pid_t) pid;
        return 0;
}

const char *bench_direct_socket(void) {
        const char *p = getenv("GMEM_DIRECT_SOCKET");

        return p && *p ? p : NULL;
}

int bench_direct_open(sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL;
        _cleanup_free_ char *address = NULL;
        const char *path = bench_direct_socket();
        int r;

        if (!path)
                return -ENXIO;
        if (asprintf(&address, "unix:path=%s", path) < 0)
                return -ENOMEM;
        r = sd_bus_new(&b);
        if (r < 0)
                return r;
        r = sd_bus_set_address(b, address);
        if (r >= 0)
                r = sd_bus_set_bus_client(b, 0);
        if (r >= 0)
                r = sd_bus_negotiate_fds(b, 1);
        if (r >= 0)
                r = sd_bus_start(b);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(b);
        return 0;
}

int bench_wait_for_direct(uint64_t timeout_usec) {
        uint64_t deadline = now_ns() + timeout_usec * NSEC_PER_USEC;

        for (;;) {
                _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL;
                int r;

                r = bench_direct_open(&b);
                if (r == -ENXIO)
                        return r;
                if (r >= 0)
                        r = sd_bus_call_method(b, NULL, GMEMD_PATH, "org.freedesktop.DBus.Peer", "Ping", NULL, NULL,
                                               NULL);
                if (r >= 0)
                        return 0;
                if (now_ns() > deadline)
                        return -ETIMEDOUT;
                (void) usleep(20000);
        }
}

static int read_kib_line(const char *path, const char *key, uint64_t *ret) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        size_t len = strlen(key);
        char line[256];

        if (!f)
                return negative_errno();
        while (fgets(line, sizeof(line), f)) {
                uint64_t v;

                if (strncmp(line, key, len) != 0 || line[len] != ':')
                        continue;
                if (sscanf(line + len + 1, "%" SCNu64, &v) != 1)
                        return -EIO;
                *ret = v;
                return 0;
        }
        return -ENOENT;
}

int bench_vmrss_kib(pid_t pid, uint64_t *ret) {
        char path[64];

        (void) snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
        return read_kib_line(path, "VmRSS", ret);
}

int bench_task_cpu_ns(pid_t pid, uint64_t *ret) {
        _cleanup_fclose_ FILE *f = NULL;
        char path[64];
        uint64_t v;

        if (pid == 0)
                (void) snprintf(path, sizeof(path), "/proc/thread-self/schedstat");
        else
                (void) snprintf(path, sizeof(path), "/proc/%d/schedstat", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return negative_errno();
        if (fscanf(f, "%" SCNu64, &v) != 1)
                return -EIO;
        *ret = v;
        return 0;
}

int bench_meminfo_kib(const char *key, uint64_t *ret) {
        return read_kib_line("/proc/meminfo", key, ret);
}

int bench_parse_list(const char *s, unsigned *ret, size_t max, size_t *ret_n) {
        size_t n = 0;

        while (*s) {
                char *end;
                unsigned long v;

                if (n >= max)
                        return -E2BIG;
                errno = 0;
                v = strtoul(s, &end, 10);
                if (errno || end == s || v == 0 || v > UINT32_MAX || (*end && *end != ','))
                        return -EINVAL;
                ret[n++] = (unsigned) v;
                s = *end ? end + 1 : end;
        }
        if (n == 0)
                return -EINVAL;
        *ret_n = n;
        return 0;
}

static void cpu_model(char *buf, size_t size) {
        _cleanup_fclose_ FILE *f = fopen("/proc/cpuinfo", "re");
        char line[512];

        (void) snprintf(buf, size, "unknown CPU");
        if (!f)
                return;
        while (fgets(line, sizeof(line), f)) {
                char *p;

                if (strncmp(line, "model name", 10) != 0 || !(p = strchr(line, ':')))
                        continue;
                p++;
                while (isspace((unsigned char) *p))
                        p++;
                p[strcspn(p, "\n")] = 0;
                (void) snprintf(buf, size, "%s", p);
                return;
        }
}

void bench_print_machine(void) {
        struct utsname u = {};
        uint64_t mem_kib = 0;
        char model[256];

        (void) uname(&u);
        (void) bench_meminfo_kib("MemTotal", &mem_kib);
        cpu_model(model, sizeof(model));
        printf("machine: %ld CPUs (%s), %.1f GiB RAM, Linux %s %s\n", sysconf(_SC_NPROCESSORS_ONLN), model,
               (double) mem_kib / (1024.0 * 1024.0), u.release, u.machine);
}

void bench_print_load(const char *when) {
        _cleanup_fclose_ FILE *f = fopen("/proc/loadavg", "re");
        double a = 0, b = 0, c = 0;

        if (f && fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3)
                printf("load average %s: %.2f %.2f %.2f\n", when, a, b, c);
}

void bench_print_command(int argc, char **argv) {
        printf("command:");
        for (int i = 0; i < argc; i++) {
                const char *a = argv[i];
                bool plain = *a != 0;

                for (const char *p = a; *p; p++)
                        if (!isalnum((unsigned char) *p) && !strchr("-_./=,:+@%", *p))
                                plain = false;
                printf(plain ? " %s" : " '%s'", a);
        }
        printf("\n");
}

int bench_find_gmemd(const char *prog, bool *direct, sd_bus **ret_bus, pid_t *ret_gmemd, pid_t *ret_bus_pid) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        if (!getenv("DBUS_SYSTEM_BUS_ADDRESS")) {
                fprintf(stderr, "SKIP: DBUS_SYSTEM_BUS_ADDRESS is not set; run under bench-env\n");
                return EXIT_SKIP;
        }
        r = bench_bus_open(&bus);
        if (r >= 0)
                r = bench_wait_for_name(bus, GMEMD_BUS_NAME, 20 * USEC_PER_SEC);
        if (r < 0) {
                fprintf(stderr, "%s: gmemd is not on the bus: %s\n", prog, strerror(-r));
                return EXIT_FAILURE;
        }
        if (direct && *direct && !bench_direct_socket()) {
                fprintf(stderr, "%s: no gmemd-direct path: $GMEM_DIRECT_SOCKET is not set (a gmemd without "
                        "--direct-socket, or not under bench-env)\n", prog);
                *direct = false;
        }
        if (direct && *direct) {
                r = bench_wait_for_direct(20 * USEC_PER_SEC);
                if (r < 0) {
                        fprintf(stderr, "%s: gmemd does not answer on %s: %s\n", prog, bench_direct_socket(),
                                strerror(-r));
                        return EXIT_FAILURE;
                }
        }
        r = bench_name_pid(bus, GMEMD_BUS_NAME, ret_gmemd);
        if (r >= 0 && ret_bus_pid)
                r = bench_name_pid(bus, "org.freedesktop.DBus", ret_bus_pid);
        if (r < 0) {
                fprintf(stderr, "%s: cannot find the daemons' pids: %s\n", prog, strerror(-r));
                return EXIT_FAILURE;
        }
        *ret_bus = TAKE_PTR(bus);
        return 0;
}
