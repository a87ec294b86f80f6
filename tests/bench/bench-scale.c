/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-scale.c — benchmark 4, scale: what gmemd costs as it holds more
 * objects. Two gmemd processes of the same binary serve the same bus:
 *   small   a reference daemon, started here with --bus-name, holding 10
 *           regions and 5 VMs, each VM with a read-write view of two;
 *   scale   the daemon under test (org.gmemd.Broker1): the same, grown to
 *           10,000 VMs and 20,000 regions, VM i with views of regions 2i
 *           and 2i+1 (as far as its RLIMIT_NOFILE allows: every memfd
 *           region and every view is an fd in the daemon);
 *   large   the daemon under test grown to 100,000 regions, to check the
 *           RSS target directly (only if the fd limit allows it).
 * Both daemons also have a probe VM and a probe region (with no views). The
 * latencies of the two daemons are measured in alternating runs, so that
 * other work on the machine weighs on both alike; each run makes, on a warm
 * connection (steady state: the first call of a connection pays a
 * credential lookup, done before):
 *   Attach   Attach(probe VM, probe region, "rw") -> h, timed alone; each is
 *            followed by a Detach, timed too;
 *   GetFd    of an existing view of a filler VM;
 *   List     ListRegions, reply parsed entry by entry.
 * The table shows the median across runs of each run's p50 and p99, the
 * daemons' VmRSS (/proc/PID/status) and the growth of the kernel's Slab
 * (/proc/meminfo; memfd inodes, dentries and open files live there, not in
 * the daemon's RSS). The Attach ratio is scale over small (target <= 1.2);
 * RSS per region is the difference between the two daemons over the regions
 * added (VMs and views charged to the regions); 100,000 regions must fit in
 * 200 MiB, measured in the large state or else extrapolated linearly.
 *
 *   bench-env --nofile=262144 GMEMD -- bench-scale --gmemd=GMEMD [--vms=10000]
 *             [--regions=20000] [--large-regions=100000] [--samples=2000] [--runs=7]
 */
#include <dirent.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench-util.h"

#define RUNS_MAX 64
#define SMALL_VMS 5
#define SMALL_REGIONS 10
#define REGION_SIZE UINT64_C(4096)
#define CALL_TIMEOUT_USEC (120 * USEC_PER_SEC)
#define FD_MARGIN 32
#define REFERENCE_BUS_NAME "org.gmemd.BenchSmall"

static const char *arg_gmemd = NULL;
static unsigned arg_vms = 10000;
static unsigned arg_regions = 20000;
static unsigned arg_large_regions = 100000;
static unsigned arg_samples = 2000;
static unsigned arg_runs = 7;

typedef struct Daemon {
        const char *label;
        const char *bus_name;
        pid_t pid;
        unsigned vms, regions, views;   /* fillers, without the probe */
} Daemon;

/* One run's figures, µs. */
typedef struct Run {
        double attach_p50, attach_p99, detach_p50, getfd_p50, getfd_p99, list_p50, list_p99;
} Run;

typedef struct Figures {
        bool measured;
        unsigned vms, regions, views;
        uint64_t rss_kib, slab_kib;
        Run med;
        double attach_ratio_p50, attach_ratio_p99;   /* vs the reference daemon, median of the per-run ratios */
} Figures;

static sd_bus *bus;
static uint64_t slab_base_kib;     /* Slab before the daemon under test grew past the small state */

static int callv(const Daemon *d, const char *method, const char *types, va_list ap) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, d->bus_name, GMEMD_PATH, GMEMD_MANAGER_IFACE, method);
        if (r < 0)
                return r;
        r = sd_bus_message_appendv(m, types, ap);
        if (r < 0)
                return r;
        r = sd_bus_call(bus, m, CALL_TIMEOUT_USEC, &error, &reply);   /* a returned fd goes with the reply */
        if (r < 0)
                fprintf(stderr, "bench-scale: %s %s: %s\n", d->label, method, error.message ?: strerror(-r));
        sd_bus_error_free(&error);
        return r;
}

static int call(const Daemon *d, const char *method, const char *types, ...) {
        va_list ap;
        int r;

        va_start(ap, types);
        r = callv(d, method, types, ap);
        va_end(ap);
        return r;
}

static void name_of(char *buf, size_t size, const char *kind, unsigned i) {
        (void) snprintf(buf, size, "s-%s-%06u", kind, i);
}

static double rate(unsigned n, uint64_t t0) {
        return (double) n * 1e9 / (double) (now_ns() - t0 + 1);
}

static int create_regions(Daemon *d, unsigned to) {
        uint64_t t0 = now_ns();
        unsigned from = d->regions;

        for (unsigned i = from; i < to; i++) {
                char name[32];
                int r;

                name_of(name, sizeof(name), "r", i);
                r = call(d, "CreateRegion", "sta{sv}", name, REGION_SIZE, 0);
                if (r < 0)
                        return r;
                d->regions++;
        }
        if (to > from + SMALL_REGIONS)
                fprintf(stderr, "%s: created %u regions (%.0f/s)\n", d->label, to - from, rate(to - from, t0));
        return 0;
}

static int register_vms(Daemon *d, unsigned to) {
        uint64_t t0 = now_ns();
        unsigned from = d->vms;

        for (unsigned i = from; i < to; i++) {
                char vm[32];
                int r;

                name_of(vm, sizeof(vm), "vm", i);
                r = call(d, "RegisterVm", "sa{sv}", vm, 0);
                if (r < 0)
                        return r;
                d->vms++;
        }
        if (to > from + SMALL_VMS)
                fprintf(stderr, "%s: registered %u VMs (%.0f/s)\n", d->label, to - from, rate(to - from, t0));
        return 0;
}

/* VM i gets views of regions 2i and 2i+1 where they exist, at most max new views in all. */
static int attach_views(Daemon *d, unsigned vm_from, unsigned max) {
        uint64_t t0 = now_ns();
        unsigned n = 0;

        for (unsigned i = vm_from; i < d->vms; i++)
                for (unsigned k = 2 * i; k < 2 * i + 2 && k < d->regions && n < max; k++) {
                        char vm[32], region[32];
                        int r;

                        name_of(vm, sizeof(vm), "vm", i);
                        name_of(region, sizeof(region), "r", k);
                        r = call(d, "Attach", "sssa{sv}", vm, region, "rw", 0);
                        if (r < 0)
                                return r;
                        n++;
                        d->views++;
                }
        if (n > SMALL_REGIONS)
                fprintf(stderr, "%s: attached %u views (%.0f/s)\n", d->label, n, rate(n, t0));
        return 0;
}

/* The small population every daemon starts with: the probe, 10 regions, 5 VMs with 2 views each. */
static int populate_small(Daemon *d) {
        int r;

        r = call(d, "CreateRegion", "sta{sv}", "probe-r", REGION_SIZE, 0);
        if (r >= 0)
                r = call(d, "RegisterVm", "sa{sv}", "probe-vm", 0);
        if (r >= 0)
                r = create_regions(d, SMALL_REGIONS);
        if (r >= 0)
                r = register_vms(d, SMALL_VMS);
        if (r >= 0)
                r = attach_views(d, 0, UINT_MAX);
        return r;
}

/* How many more fds d may open: its RLIMIT_NOFILE less those open, less a margin for sd-bus and views in passing. */
static int fd_budget(const Daemon *d, unsigned *ret_budget, unsigned *ret_limit) {
        _cleanup_fclose_ FILE *f = NULL;
        char path[64], line[256];
        unsigned long soft = 0;
        unsigned open_fds = 0;
        struct dirent *de;
        DIR *dir;

        (void) snprintf(path, sizeof(path), "/proc/%d/limits", (int) d->pid);
        f = fopen(path, "re");
        if (!f)
                return negative_errno();
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, "Max open files", 14) == 0 && sscanf(line + 14, "%lu", &soft) == 1)
                        break;
        if (soft == 0 || soft > UINT_MAX)
                return -EIO;

        (void) snprintf(path, sizeof(path), "/proc/%d/fd", (int) d->pid);
        dir = opendir(path);
        if (!dir)
                return negative_errno();
        while ((de = readdir(dir)))
                if (de->d_name[0] != '.')
                        open_fds++;
        closedir(dir);
        *ret_budget = soft > open_fds + FD_MARGIN ? (unsigned) soft - open_fds - FD_MARGIN : 0;
        *ret_limit = (unsigned) soft;
        return 0;
}

static int list_regions(const Daemon *d, unsigned *ret_n) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        unsigned n = 0;
        int r;

        r = sd_bus_call_method(bus, d->bus_name, GMEMD_PATH, GMEMD_MANAGER_IFACE, "ListRegions", NULL, &reply, NULL);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(stsso)");
        while (r >= 0) {
                const char *name, *backend, *owner, *path;
                uint64_t size;

                r = sd_bus_message_read(reply, "(stsso)", &name, &size, &backend, &owner, &path);
                if (r <= 0)
                        break;
                n++;
        }
        if (r < 0)
                return r;
        *ret_n = n;
        return 0;
}

static double us(uint64_t ns) {
        return (double) ns / (double) NSEC_PER_USEC;
}

/* One run against d: arg_samples Attach/Detach/GetFd rounds, then ListRegions calls. */
static int measure_run(const Daemon *d, Run *ret) {
        unsigned list_samples = d->regions > 50000 ? 10 : d->regions > 1000 ? 20 : 200;
        _cleanup_free_ uint64_t *att = calloc(arg_samples, sizeof(uint64_t));
        _cleanup_free_ uint64_t *det = calloc(arg_samples, sizeof(uint64_t));
        _cleanup_free_ uint64_t *get = calloc(arg_samples, sizeof(uint64_t));
        _cleanup_free_ uint64_t *lst = calloc(list_samples, sizeof(uint64_t));
        char filler_vm[32], filler_r[32];
        int r;

        if (!att || !det || !get || !lst)
                return -ENOMEM;
        name_of(filler_vm, sizeof(filler_vm), "vm", 0);
        name_of(filler_r, sizeof(filler_r), "r", 0);

        for (unsigned i = 0; i < arg_samples; i++) {
                uint64_t t0 = now_ns(), t1, t2, t3;

                r = call(d, "Attach", "sssa{sv}", "probe-vm", "probe-r", "rw", 0);
                t1 = now_ns();
                if (r >= 0)
                        r = call(d, "Detach", "ss", "probe-vm", "probe-r");
                t2 = now_ns();
                if (r >= 0)
                        r = call(d, "GetFd", "ss", filler_vm, filler_r);
                t3 = now_ns();
                if (r < 0)
                        return r;
                att[i] = t1 - t0;
                det[i] = t2 - t1;
                get[i] = t3 - t2;
        }
        for (unsigned i = 0; i < list_samples; i++) {
                uint64_t t0 = now_ns();
                unsigned n;

                r = list_regions(d, &n);
                if (r < 0)
                        return r;
                lst[i] = now_ns() - t0;
                if (n != d->regions + 1) {
                        fprintf(stderr, "bench-scale: %s: ListRegions returned %u regions, expected %u\n", d->label,
                                n, d->regions + 1);
                        return -EBADMSG;
                }
        }
        sort_u64(att, arg_samples);
        sort_u64(det, arg_samples);
        sort_u64(get, arg_samples);
        sort_u64(lst, list_samples);
        *ret = (Run) {
                .attach_p50 = us(quantile_u64(att, arg_samples, 0.5)),
                .attach_p99 = us(quantile_u64(att, arg_samples, 0.99)),
                .detach_p50 = us(quantile_u64(det, arg_samples, 0.5)),
                .getfd_p50 = us(quantile_u64(get, arg_samples, 0.5)),
                .getfd_p99 = us(quantile_u64(get, arg_samples, 0.99)),
                .list_p50 = us(quantile_u64(lst, list_samples, 0.5)),
                .list_p99 = us(quantile_u64(lst, list_samples, 0.99)),
        };
        fprintf(stderr, "%s (%u regions): Attach p50 %.1f µs p99 %.1f µs, GetFd p50 %.1f µs, ListRegions p50 %.0f µs\n",
                d->label, d->regions + 1, ret->attach_p50, ret->attach_p99, ret->getfd_p50, ret->list_p50);
        return 0;
}

static double median_run(const Run *runs, unsigned n, size_t offset) {
        double v[RUNS_MAX];

        for (unsigned i = 0; i < n; i++)
                v[i] = *(const double *) ((const char *) &runs[i] + offset);
        return median_double(v, n);
}

static int snapshot(const Daemon *d, const Run *runs, Figures *f) {
        int r;

        *f = (Figures) {
                .measured = true,
                .vms = d->vms,
                .regions = d->regions,
                .views = d->views,
                .med = {
                        .attach_p50 = median_run(runs, arg_runs, offsetof(Run, attach_p50)),
                        .attach_p99 = median_run(runs, arg_runs, offsetof(Run, attach_p99)),
                        .detach_p50 = median_run(runs, arg_runs, offsetof(Run, detach_p50)),
                        .getfd_p50 = median_run(runs, arg_runs, offsetof(Run, getfd_p50)),
                        .getfd_p99 = median_run(runs, arg_runs, offsetof(Run, getfd_p99)),
                        .list_p50 = median_run(runs, arg_runs, offsetof(Run, list_p50)),
                        .list_p99 = median_run(runs, arg_runs, offsetof(Run, list_p99)),
                },
        };
        r = bench_vmrss_kib(d->pid, &f->rss_kib);
        if (r < 0)
                return r;
        (void) bench_meminfo_kib("Slab", &f->slab_kib);
        return 0;
}

/* Runs alternate between the two daemons; medians go to the two figures. */
static int measure_pair(const Daemon *small, const Daemon *big, Figures *ret_small, Figures *ret_big) {
        Run rs[RUNS_MAX], rb[RUNS_MAX];
        int r;

        for (unsigned run = 0; run < arg_runs; run++) {
                /* Which goes first alternates too. */
                const Daemon *first = run % 2 ? big : small, *second = run % 2 ? small : big;
                Run *rfirst = run % 2 ? &rb[run] : &rs[run], *rsecond = run % 2 ? &rs[run] : &rb[run];

                r = measure_run(first, rfirst);
                if (r >= 0)
                        r = measure_run(second, rsecond);
                if (r < 0)
                        return r;
        }
        r = snapshot(small, rs, ret_small);
        if (r >= 0)
                r = snapshot(big, rb, ret_big);
        if (r >= 0) {
                double v50[RUNS_MAX], v99[RUNS_MAX];

                for (unsigned run = 0; run < arg_runs; run++) {
                        v50[run] = rb[run].attach_p50 / rs[run].attach_p50;
                        v99[run] = rb[run].attach_p99 / rs[run].attach_p99;
                }
                ret_big->attach_ratio_p50 = median_double(v50, arg_runs);
                ret_big->attach_ratio_p99 = median_double(v99, arg_runs);
                ret_small->attach_ratio_p50 = ret_small->attach_ratio_p99 = 1;
        }
        return r;
}

static void print_row(const char *label, const Figures *x, const Figures *small) {
        char per_region[32] = "—", slab[32] = "—";

        if (x != small && x->regions > small->regions) {
                unsigned added = x->regions - small->regions;
                (void) snprintf(per_region, sizeof(per_region), "%.0f B",
                                ((double) x->rss_kib - (double) small->rss_kib) * 1024.0 / added);
                (void) snprintf(slab, sizeof(slab), "%.0f B",
                                ((double) x->slab_kib - (double) slab_base_kib) * 1024.0 / added);
        }
        printf("| %s | %u | %u | %u | %.1f MiB | %s | %s | %.1f / %.1f | %.2f× | %.2f× | %.1f | %.1f / %.1f "
               "| %.2f / %.2f | %.0f ns |\n",
               label, x->vms + 1, x->regions + 1, x->views, (double) x->rss_kib / 1024.0, per_region, slab,
               x->med.attach_p50, x->med.attach_p99, x->attach_ratio_p50, x->attach_ratio_p99, x->med.detach_p50, x->med.getfd_p50, x->med.getfd_p99,
               x->med.list_p50 / 1e3, x->med.list_p99 / 1e3, x->med.list_p50 * 1e3 / (x->regions + 1));
}

static void print_report(const Figures *small, const Figures *scale, const Figures *small2, const Figures *large) {
        printf("\n| state | VMs | regions | views | gmemd VmRSS | RSS growth per region | kernel Slab growth per region "
               "| Attach p50 / p99 µs | Attach p50 vs small | Attach p99 vs small | Detach p50 µs "
               "| GetFd p50 / p99 µs | ListRegions p50 / p99 ms | ListRegions per region |\n");
        printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        print_row("small (reference daemon)", small, small);
        print_row("scale", scale, small);
        if (large->measured) {
                print_row("small (reference daemon), again", small2, small2);
                print_row("large", large, small2);
        }
        printf("\n(VM and region counts include the probe VM and region; the kernel Slab is system-wide, read before the daemon grew and at the snapshot.)\n");

        printf("\nAttach ratios are medians of the ratios within each pair of runs (the two daemons back to back).\n");
        printf("Target: Attach latency at scale / small <= 1.2: p50 %.2f, p99 %.2f: %s\n", scale->attach_ratio_p50,
               scale->attach_ratio_p99, scale->attach_ratio_p50 <= 1.2 ? "met" : "missed");
        if (large->measured && large->regions + 1 >= 100000) {
                double mib = (double) large->rss_kib / 1024.0;
                printf("Target: 100,000 regions in 200 MiB of RSS: %u regions measured at %.1f MiB: %s\n",
                       large->regions + 1, mib, mib <= 200 ? "met" : "missed");
        } else {
                double per = ((double) scale->rss_kib - (double) small->rss_kib) * 1024.0 /
                             (scale->regions - small->regions);
                double mib = ((double) small->rss_kib * 1024.0 + per * (100000 - small->regions - 1)) / (double) MIB;
                printf("Target: 100,000 regions in 200 MiB of RSS: extrapolated from the scale state "
                       "(%.1f MiB + %.0f B x regions) to %.1f MiB: %s\n", (double) small->rss_kib / 1024.0, per, mib,
                       mib <= 200 ? "met" : "missed");
        }
}

static int start_reference(Daemon *d, pid_t *ret) {
        pid_t pid = fork();
        int r;

        if (pid < 0)
                return negative_errno();
        if (pid == 0) {
                execl(arg_gmemd, arg_gmemd, "--bus-name=" REFERENCE_BUS_NAME, "--log-level=warning", (char *) NULL);
                fprintf(stderr, "bench-scale: cannot run %s: %m\n", arg_gmemd);
                _exit(127);
        }
        *ret = pid;
        r = bench_wait_for_name(bus, REFERENCE_BUS_NAME, 20 * USEC_PER_SEC);
        if (r >= 0)
                r = bench_name_pid(bus, REFERENCE_BUS_NAME, &d->pid);
        return r;
}

static void help(void) {
        printf("Usage: bench-scale --gmemd=PATH [OPTIONS]\n\n"
               "Benchmark 4 (scale): gmemd's RSS and its Attach, GetFd and ListRegions latency\n"
               "with many objects against a reference gmemd with 10 regions. Run it under\n"
               "bench-env --nofile=262144, which starts the daemon under test.\n\n"
               "  --gmemd=PATH       the gmemd binary, for the reference daemon\n"
               "  --vms=N            VMs at scale (default 10000; each has views of two regions)\n"
               "  --regions=N        regions at scale (default 20000; VM i views regions 2i and 2i+1)\n"
               "  --large-regions=N  regions of the large state (default 100000; 0 skips it)\n"
               "  --samples=N        Attach/Detach/GetFd rounds per run (default 2000)\n"
               "  --runs=N           runs per daemon and state; tables show medians (default 7)\n");
}

static int parse_unsigned(const char *s, unsigned *ret) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || end == s || *end || v > UINT32_MAX)
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

static int parse_argv(int argc, char **argv) {
        static const struct option options[] = {
                { "help",          no_argument,       NULL, 'h' },
                { "gmemd",         required_argument, NULL, 'd' },
                { "vms",           required_argument, NULL, 'v' },
                { "regions",       required_argument, NULL, 'g' },
                { "large-regions", required_argument, NULL, 'l' },
                { "samples",       required_argument, NULL, 's' },
                { "runs",          required_argument, NULL, 'r' },
                {}
        };
        int c, r = 0;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        help();
                        exit(EXIT_SUCCESS);
                case 'd':
                        arg_gmemd = optarg;
                        break;
                case 'v':
                        r = parse_unsigned(optarg, &arg_vms);
                        break;
                case 'g':
                        r = parse_unsigned(optarg, &arg_regions);
                        break;
                case 'l':
                        r = parse_unsigned(optarg, &arg_large_regions);
                        break;
                case 's':
                        r = parse_unsigned(optarg, &arg_samples);
                        break;
                case 'r':
                        r = parse_unsigned(optarg, &arg_runs);
                        break;
                default:
                        return -EINVAL;
                }
                if (r < 0)
                        return r;
        }
        if (optind < argc || !arg_gmemd || arg_runs < 1 || arg_runs > RUNS_MAX || arg_samples < 1 ||
            arg_vms < SMALL_VMS || arg_regions < SMALL_REGIONS || (arg_large_regions && arg_large_regions < arg_regions))
                return -EINVAL;
        return 0;
}

int main(int argc, char **argv) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL;
        Daemon small = { .label = "small", .bus_name = REFERENCE_BUS_NAME };
        Daemon big = { .label = "scale", .bus_name = GMEMD_BUS_NAME };
        Figures f_small = {}, f_scale = {}, f_small2 = {}, f_large = {};
        unsigned budget = 0, limit = 0, want_views;
        pid_t reference = 0;
        int r;

        if (parse_argv(argc, argv) < 0) {
                fprintf(stderr, "bench-scale: bad arguments (--help)\n");
                return 2;
        }
        r = bench_find_gmemd("bench-scale", NULL, &b, &big.pid, NULL);
        if (r != 0)
                return r;
        bus = b;
        r = start_reference(&small, &reference);
        if (r < 0) {
                fprintf(stderr, "bench-scale: the reference gmemd did not start: %s\n", strerror(-r));
                goto finish;
        }

        printf("# Benchmark 4: scale\n");
        bench_print_machine();
        bench_print_command(argc, argv);
        bench_print_load("at the start");
        printf("gmemd under test pid %d, reference gmemd pid %d; %u runs per daemon and state, alternating between "
               "the daemons, each of %u Attach+Detach+GetFd rounds and 10 to 200 ListRegions calls, on a warm "
               "connection (steady state)\n", (int) big.pid, (int) small.pid, arg_runs, arg_samples);

        r = populate_small(&small);
        if (r >= 0)
                r = populate_small(&big);

        /* Every memfd region and every view is an fd in gmemd: stay within its RLIMIT_NOFILE. */
        if (r >= 0)
                r = fd_budget(&big, &budget, &limit);
        if (r >= 0) {
                unsigned regions = arg_regions - SMALL_REGIONS <= budget ? arg_regions : SMALL_REGIONS + budget;

                budget -= regions - SMALL_REGIONS;
                want_views = 2 * (arg_vms - SMALL_VMS);
                if (regions < arg_regions || budget < want_views)
                        printf("note: gmemd may hold %u fds (RLIMIT_NOFILE; raising its hard limit needs "
                               "CAP_SYS_RESOURCE): the scale state has %u regions and %u views instead of %u and %u\n",
                               limit, regions, small.views + (budget < want_views ? budget : want_views), arg_regions,
                               2 * arg_vms);
                fflush(stdout);
                (void) bench_meminfo_kib("Slab", &slab_base_kib);
                r = create_regions(&big, regions);
        }
        if (r >= 0)
                r = register_vms(&big, arg_vms);
        if (r >= 0)
                r = attach_views(&big, SMALL_VMS, budget);
        if (r >= 0)
                r = measure_pair(&small, &big, &f_small, &f_scale);

        if (r >= 0 && arg_large_regions > big.regions) {
                r = fd_budget(&big, &budget, &limit);
                if (r >= 0 && arg_large_regions - big.regions > budget)
                        printf("note: the large state (%u regions) is skipped: gmemd may open %u more fds and would "
                               "need %u; the RSS of 100,000 regions is extrapolated from the scale state\n",
                               arg_large_regions, budget, arg_large_regions - big.regions);
                else if (r >= 0) {
                        big.label = "large";
                        r = create_regions(&big, arg_large_regions);
                        if (r >= 0)
                                r = measure_pair(&small, &big, &f_small2, &f_large);
                }
        }
        if (r < 0)
                goto finish;

        bench_print_load("at the end");
        print_report(&f_small, &f_scale, &f_small2, &f_large);

finish:
        if (reference > 0) {
                (void) kill(reference, SIGTERM);
                (void) waitpid(reference, NULL, 0);
        }
        if (r < 0) {
                fprintf(stderr, "bench-scale: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}
