/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-populate.c — benchmark 2, population: how fast gmemd makes a region
 * whose every page is allocated (CreateRegion with populate=true) against the
 * bare kernel primitive in this process (memfd_create, ftruncate and
 * fallocate of the whole size). The gmemd time is the client's: from sending
 * CreateRegion to its reply, so it includes the D-Bus round trip and the
 * daemon's sealing and bookkeeping; a CreateRegion without populate is timed
 * too, to show that fixed part. The region is destroyed (and the bare memfd
 * closed) after each measurement, so at most one size is resident at a time,
 * and the order of the two alternates from run to run. Rates are the median
 * across runs; the ratio is gmemd's rate over the bare rate (target >= 0.95),
 * taken within each run and then the median across runs. The CPU time each
 * side spent (/proc/PID/schedstat of gmemd, of this thread for the bare
 * side) is shown too: unlike wall time it hardly moves when other work
 * competes for the CPUs.
 *
 *   bench-env GMEMD -- bench-populate [--sizes=1,4,8] [--runs=5]
 */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench-util.h"

#define SIZES_MAX 8
#define RUNS_MAX 64
#define CALL_TIMEOUT_USEC (600 * USEC_PER_SEC)

static unsigned arg_sizes_gib[SIZES_MAX] = { 1, 4, 8 };
static size_t arg_n_sizes = 3;
static unsigned arg_runs = 5;

typedef struct Sample {
        double bare_s;          /* memfd_create + ftruncate + fallocate */
        double gmemd_s;         /* CreateRegion(populate=true) round trip */
        double gmemd_empty_s;   /* CreateRegion(populate=false) round trip */
        double gmemd_destroy_s; /* DestroyRegion of the populated region */
        double bare_close_s;    /* close() of the populated memfd */
        double bare_cpu_s;      /* CPU time of this thread in memfd_create + ftruncate + fallocate */
        double gmemd_cpu_s;     /* CPU time of gmemd during CreateRegion(populate=true) */
} Sample;

static pid_t gmemd_pid;

static int gmemd_call(sd_bus *bus, const char *method, const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        va_list ap;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, GMEMD_BUS_NAME, GMEMD_PATH, GMEMD_MANAGER_IFACE, method);
        if (r < 0)
                return r;
        va_start(ap, types);
        r = sd_bus_message_appendv(m, types, ap);
        va_end(ap);
        if (r < 0)
                return r;
        r = sd_bus_call(bus, m, CALL_TIMEOUT_USEC, &error, &reply);
        if (r < 0)
                fprintf(stderr, "bench-populate: %s: %s\n", method, error.message ?: strerror(-r));
        sd_bus_error_free(&error);
        return r;
}

static int measure_gmemd(sd_bus *bus, uint64_t size, unsigned run, Sample *s) {
        char name[64];
        uint64_t t0, t1, t2, c0 = 0, c1 = 0;
        int r;

        (void) snprintf(name, sizeof(name), "bench-pop-%" PRIu64 "-%u", size >> 20, run);
        (void) bench_task_cpu_ns(gmemd_pid, &c0);
        t0 = now_ns();
        r = gmemd_call(bus, "CreateRegion", "sta{sv}", name, size, 1, "populate", "b", 1);
        t1 = now_ns();
        (void) bench_task_cpu_ns(gmemd_pid, &c1);
        if (r < 0)
                return r;
        s->gmemd_cpu_s = (double) (c1 - c0) / (double) NSEC_PER_SEC;
        r = gmemd_call(bus, "DestroyRegion", "s", name);
        t2 = now_ns();
        if (r < 0)
                return r;
        s->gmemd_s = (double) (t1 - t0) / (double) NSEC_PER_SEC;
        s->gmemd_destroy_s = (double) (t2 - t1) / (double) NSEC_PER_SEC;

        /* The same call without population: the fixed cost inside the figure above. */
        t0 = now_ns();
        r = gmemd_call(bus, "CreateRegion", "sta{sv}", name, size, 0);
        t1 = now_ns();
        if (r >= 0)
                r = gmemd_call(bus, "DestroyRegion", "s", name);
        s->gmemd_empty_s = (double) (t1 - t0) / (double) NSEC_PER_SEC;
        return r;
}

static int measure_bare(uint64_t size, Sample *s) {
        uint64_t t0, t1, t2, c0 = 0, c1 = 0;
        int fd;

        (void) bench_task_cpu_ns(0, &c0);
        t0 = now_ns();
        fd = memfd_create("bench-bare", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return negative_errno();
        if (ftruncate(fd, (off_t) size) < 0 || fallocate(fd, 0, 0, (off_t) size) < 0) {
                int r = negative_errno();
                safe_close(fd);
                return r;
        }
        t1 = now_ns();
        (void) bench_task_cpu_ns(0, &c1);
        safe_close(fd);
        t2 = now_ns();
        s->bare_s = (double) (t1 - t0) / (double) NSEC_PER_SEC;
        s->bare_close_s = (double) (t2 - t1) / (double) NSEC_PER_SEC;
        s->bare_cpu_s = (double) (c1 - c0) / (double) NSEC_PER_SEC;
        return 0;
}

static double median_field(const Sample *v, unsigned n, size_t offset) {
        double x[RUNS_MAX];

        for (unsigned i = 0; i < n; i++)
                x[i] = *(const double *) ((const char *) &v[i] + offset);
        return median_double(x, n);
}

static void help(void) {
        printf("Usage: bench-populate [OPTIONS]\n\n"
               "Benchmark 2 (population): CreateRegion with populate=true against\n"
               "memfd_create+fallocate in this process. Run it under bench-env.\n\n"
               "  --sizes=LIST   region sizes in GiB (default 1,4,8)\n"
               "  --runs=N       repeated runs; the table shows medians (default 5)\n");
}

static int parse_argv(int argc, char **argv) {
        static const struct option options[] = {
                { "help",  no_argument,       NULL, 'h' },
                { "sizes", required_argument, NULL, 's' },
                { "runs",  required_argument, NULL, 'r' },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        exit(EXIT_SUCCESS);
                case 's':
                        if (bench_parse_list(optarg, arg_sizes_gib, SIZES_MAX, &arg_n_sizes) < 0)
                                return -EINVAL;
                        break;
                case 'r':
                        arg_runs = (unsigned) strtoul(optarg, NULL, 10);
                        if (arg_runs < 1 || arg_runs > RUNS_MAX)
                                return -EINVAL;
                        break;
                default:
                        return -EINVAL;
                }
        return optind < argc ? -EINVAL : 0;
}

int main(int argc, char **argv) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        static Sample samples[SIZES_MAX][RUNS_MAX];
        uint64_t avail_kib = 0;
        int r;

        if (parse_argv(argc, argv) < 0) {
                fprintf(stderr, "bench-populate: bad arguments (--help)\n");
                return 2;
        }
        r = bench_find_gmemd("bench-populate", NULL, &bus, &gmemd_pid, NULL);
        if (r != 0)
                return r;
        for (size_t i = 0; i < arg_n_sizes; i++) {
                (void) bench_meminfo_kib("MemAvailable", &avail_kib);
                if ((uint64_t) arg_sizes_gib[i] * GIB + GIB > avail_kib * 1024) {
                        fprintf(stderr, "SKIP: %u GiB regions need %u GiB of available memory, %.1f GiB are\n",
                                arg_sizes_gib[i], arg_sizes_gib[i] + 1, (double) avail_kib / (1024.0 * 1024.0));
                        return EXIT_SKIP;
                }
        }

        printf("# Benchmark 2: population\n");
        bench_print_machine();
        bench_print_command(argc, argv);
        bench_print_load("at the start");
        printf("runs: %u per size; gmemd and the bare process alternate which goes first; the region or memfd "
               "is freed after each measurement\n", arg_runs);
        fflush(stdout);

        /* Warm the connection: the daemon looks up a connection's credentials on its first call. */
        r = gmemd_call(bus, "ListRegions", "");
        for (unsigned run = 0; run < arg_runs && r >= 0; run++)
                for (size_t i = 0; i < arg_n_sizes && r >= 0; i++) {
                        uint64_t size = (uint64_t) arg_sizes_gib[i] * GIB;
                        Sample *s = &samples[i][run];

                        if ((run + i) % 2 == 0) {
                                r = measure_bare(size, s);
                                if (r >= 0)
                                        r = measure_gmemd(bus, size, run, s);
                        } else {
                                r = measure_gmemd(bus, size, run, s);
                                if (r >= 0)
                                        r = measure_bare(size, s);
                        }
                        if (r < 0)
                                break;
                        fprintf(stderr, "run %u: %u GiB: bare %.3f s (CPU %.3f s), gmemd %.3f s (CPU %.3f s; "
                                "%.3f s without populate), ratio %.3f (CPU %.3f)\n", run + 1, arg_sizes_gib[i],
                                s->bare_s, s->bare_cpu_s, s->gmemd_s, s->gmemd_cpu_s, s->gmemd_empty_s,
                                s->bare_s / s->gmemd_s, s->bare_cpu_s / s->gmemd_cpu_s);
                }
        if (r < 0) {
                fprintf(stderr, "bench-populate: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }

        bench_print_load("at the end");
        printf("\n| size | bare memfd_create+fallocate | gmemd CreateRegion(populate) | gmemd / bare rate "
               "| CPU time bare / gmemd | CreateRegion without populate | DestroyRegion | bare close() |\n");
        printf("|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (size_t i = 0; i < arg_n_sizes; i++) {
                double gib = arg_sizes_gib[i];
                double bare = median_field(samples[i], arg_runs, offsetof(Sample, bare_s));
                double gm = median_field(samples[i], arg_runs, offsetof(Sample, gmemd_s));
                double bare_cpu = median_field(samples[i], arg_runs, offsetof(Sample, bare_cpu_s));
                double gm_cpu = median_field(samples[i], arg_runs, offsetof(Sample, gmemd_cpu_s));
                double ratios[RUNS_MAX];

                for (unsigned run = 0; run < arg_runs; run++)
                        ratios[run] = samples[i][run].bare_s / samples[i][run].gmemd_s;
                printf("| %u GiB | %.2f GiB/s (%.0f ms) | %.2f GiB/s (%.0f ms) | %.3f (ratio of the medians %.3f) "
                       "| %.0f / %.0f ms = %.3f | %.2f ms | %.0f ms | %.0f ms |\n",
                       arg_sizes_gib[i], gib / bare, bare * 1e3, gib / gm, gm * 1e3, median_double(ratios, arg_runs),
                       bare / gm, bare_cpu * 1e3, gm_cpu * 1e3, bare_cpu / gm_cpu,
                       median_field(samples[i], arg_runs, offsetof(Sample, gmemd_empty_s)) * 1e3,
                       median_field(samples[i], arg_runs, offsetof(Sample, gmemd_destroy_s)) * 1e3,
                       median_field(samples[i], arg_runs, offsetof(Sample, bare_close_s)) * 1e3);
        }
        printf("\nThe rate ratio is the median of the ratios within each run (gmemd and the bare process measured "
               "back to back).\nTarget: gmemd / bare rate >= 0.95.\n");
        for (size_t i = 0; i < arg_n_sizes; i++) {
                double ratios[RUNS_MAX], ratio;

                for (unsigned run = 0; run < arg_runs; run++)
                        ratios[run] = samples[i][run].bare_s / samples[i][run].gmemd_s;
                ratio = median_double(ratios, arg_runs);
                printf("  %u GiB: %.3f: %s\n", arg_sizes_gib[i], ratio,
                       ratio >= 0.95 ? "meets the target" : "below the target");
        }
        return EXIT_SUCCESS;
}
