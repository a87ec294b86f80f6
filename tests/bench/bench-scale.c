/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-scale.c — benchmark 4, scale: what gmemd costs as it holds more
 * objects. One daemon goes through four states:
 *   small   10 regions and 5 VMs, each VM with a read-write view of two;
 *   scale   10,000 VMs and 20,000 regions, each VM with views of two regions
 *           (20,000 views, so the daemon holds 40,000 fds);
 *   large   regions grown to 100,000 (VMs and views as in scale), to check
 *           the RSS target directly instead of extrapolating;
 *   after   everything but the small state torn down again.
 * Every state also has a probe VM and a probe region (with no views). In
 * each state the daemon's VmRSS (/proc/PID/status) and the kernel's Slab
 * (/proc/meminfo, where the memfd inodes, dentries and files live) are
 * read, and these latencies measured from a warm connection (steady state:
 * the first call of a connection pays a credential lookup, done before):
 *   Attach   Attach(probe VM, probe region, "rw") -> h, timed alone; each is
 *            followed by an (also timed) Detach;
 *   GetFd    of an existing view of a filler VM;
 *   List     ListRegions, reply parsed entry by entry.
 * Each latency is measured in several runs; the table shows the median
 * across runs of each run's p50 and p99. The Attach ratio is scale over
 * small (target <= 1.2); RSS per region is the growth from small to a state
 * over the regions added (VMs and views charged to the regions), and the
 * large state shows whether 100,000 regions fit in 200 MiB.
 *
 *   bench-env --nofile=262144 GMEMD -- bench-scale [--vms=10000]
 *             [--regions=20000] [--large-regions=100000] [--samples=2000] [--runs=5]
 */
#include <dirent.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench-util.h"

#define RUNS_MAX 64
#define SMALL_VMS 5
#define SMALL_REGIONS 10
#define REGION_SIZE UINT64_C(4096)
#define CALL_TIMEOUT_USEC (120 * USEC_PER_SEC)
#define FD_MARGIN 32

static unsigned arg_vms = 10000;
static unsigned arg_regions = 20000;
static unsigned arg_large_regions = 100000;
static unsigned arg_samples = 2000;
static unsigned arg_runs = 5;

typedef enum State {
        STATE_SMALL,
        STATE_SCALE,
        STATE_LARGE,
        STATE_AFTER,
        _STATE_MAX,
} State;

typedef struct Figures {
        bool measured;
        unsigned vms, regions, views;
        uint64_t rss_kib, slab_kib;
        double attach_p50, attach_p99, detach_p50, getfd_p50, getfd_p99, list_p50, list_p99;   /* µs */
} Figures;

static const char *const state_name[_STATE_MAX] = {
        [STATE_SMALL] = "small",
        [STATE_SCALE] = "scale",
        [STATE_LARGE] = "large",
        [STATE_AFTER] = "small again",
};

static sd_bus *bus;
static pid_t gmemd_pid;
static unsigned fd_limit;

static int callv(sd_bus_message **ret_reply, const char *method, const char *types, va_list ap) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, GMEMD_BUS_NAME, GMEMD_PATH, GMEMD_MANAGER_IFACE, method);
        if (r < 0)
                return r;
        r = sd_bus_message_appendv(m, types, ap);
        if (r < 0)
                return r;
        r = sd_bus_call(bus, m, CALL_TIMEOUT_USEC, &error, ret_reply);
        if (r < 0)
                fprintf(stderr, "bench-scale: %s: %s\n", method, error.message ?: strerror(-r));
        sd_bus_error_free(&error);
        return r;
}

/* A call whose reply is dropped (a returned fd is closed with it). */
static int call(const char *method, const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        va_list ap;
        int r;

        va_start(ap, types);
        r = callv(&reply, method, types, ap);
        va_end(ap);
        return r;
}

static void name_of(char *buf, size_t size, const char *kind, unsigned i) {
        (void) snprintf(buf, size, "s-%s-%06u", kind, i);
}

static int create_regions(unsigned from, unsigned to) {
        uint64_t t0 = now_ns();
        int r;

        for (unsigned i = from; i < to; i++) {
                char name[32];

                name_of(name, sizeof(name), "r", i);
                r = call("CreateRegion", "sta{sv}", name, REGION_SIZE, 0);
                if (r < 0)
                        return r;
        }
        if (to > from)
                fprintf(stderr, "created %u regions in %.2f s (%.0f/s)\n", to - from,
                        (double) (now_ns() - t0) / 1e9, (double) (to - from) * 1e9 / (double) (now_ns() - t0));
        return 0;
}

static int register_vms(unsigned from, unsigned to) {
        uint64_t t0 = now_ns();
        int r;

        for (unsigned i = from; i < to; i++) {
                char vm[32];

                name_of(vm, sizeof(vm), "vm", i);
                r = call("RegisterVm", "sa{sv}", vm, 0);
                if (r < 0)
                        return r;
        }
        if (to > from)
                fprintf(stderr, "registered %u VMs in %.2f s (%.0f/s)\n", to - from,
                        (double) (now_ns() - t0) / 1e9, (double) (to - from) * 1e9 / (double) (now_ns() - t0));
        return 0;
}

/* VM i gets views of regions 2i and 2i+1 where they exist, at most max views in all. */
static int attach_views(unsigned vm_from, unsigned vm_to, unsigned regions, unsigned max, unsigned *ret_n) {
        uint64_t t0 = now_ns();
        unsigned n = 0;
        int r;

        for (unsigned i = vm_from; i < vm_to; i++)
                for (unsigned k = 2 * i; k < 2 * i + 2 && k < regions && n < max; k++) {
                        char vm[32], region[32];

                        name_of(vm, sizeof(vm), "vm", i);
                        name_of(region, sizeof(region), "r", k);
                        r = call("Attach", "sssa{sv}", vm, region, "rw", 0);
                        if (r < 0)
                                return r;
                        n++;
                }
        if (n > 0)
                fprintf(stderr, "attached %u views in %.2f s (%.0f/s)\n", n, (double) (now_ns() - t0) / 1e9,
                        (double) n * 1e9 / (double) (now_ns() - t0));
        *ret_n = n;
        return 0;
}

static int destroy_regions(unsigned from, unsigned to) {
        for (unsigned i = from; i < to; i++) {
                char name[32];
                int r;

                name_of(name, sizeof(name), "r", i);
                r = call("DestroyRegion", "s", name);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int unregister_vms(unsigned from, unsigned to) {
        for (unsigned i = from; i < to; i++) {
                char vm[32];
                int r;

                name_of(vm, sizeof(vm), "vm", i);
                r = call("UnregisterVm", "s", vm);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* How many more fds gmemd may open: its RLIMIT_NOFILE less those open, less a margin for sd-bus and views in passing. */
static int fd_budget(unsigned *ret) {
        _cleanup_fclose_ FILE *f = NULL;
        char path[64], line[256];
        unsigned long soft = 0;
        unsigned open_fds = 0;
        DIR *d;
        struct dirent *de;

        (void) snprintf(path, sizeof(path), "/proc/%d/limits", (int) gmemd_pid);
        f = fopen(path, "re");
        if (!f)
                return negative_errno();
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, "Max open files", 14) == 0 && sscanf(line + 14, "%lu", &soft) == 1)
                        break;
        if (soft == 0)
                return -EIO;
        fd_limit = (unsigned) soft;

        (void) snprintf(path, sizeof(path), "/proc/%d/fd", (int) gmemd_pid);
        d = opendir(path);
        if (!d)
                return negative_errno();
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        open_fds++;
        closedir(d);
        *ret = soft > open_fds + FD_MARGIN ? (unsigned) soft - open_fds - FD_MARGIN : 0;
        return 0;
}

static int list_regions(unsigned *ret_n) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        unsigned n = 0;
        int r;

        r = sd_bus_call_method(bus, GMEMD_BUS_NAME, GMEMD_PATH, GMEMD_MANAGER_IFACE, "ListRegions", NULL, &reply,
                               NULL);
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

static int measure(State st, unsigned vms, unsigned regions, unsigned views, Figures *f) {
        double a50[RUNS_MAX], a99[RUNS_MAX], d50[RUNS_MAX], g50[RUNS_MAX], g99[RUNS_MAX], l50[RUNS_MAX], l99[RUNS_MAX];
        unsigned list_samples = regions > 50000 ? 10 : regions > 1000 ? 20 : 200;
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

        for (unsigned run = 0; run < arg_runs; run++) {
                for (unsigned i = 0; i < arg_samples; i++) {
                        uint64_t t0 = now_ns(), t1, t2, t3;

                        r = call("Attach", "sssa{sv}", "probe-vm", "probe-r", "rw", 0);
                        t1 = now_ns();
                        if (r >= 0)
                                r = call("Detach", "ss", "probe-vm", "probe-r");
                        t2 = now_ns();
                        if (r >= 0)
                                r = call("GetFd", "ss", filler_vm, filler_r);
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

                        r = list_regions(&n);
                        if (r < 0)
                                return r;
                        lst[i] = now_ns() - t0;
                        if (n != regions + 1) {
                                fprintf(stderr, "bench-scale: ListRegions returned %u regions, expected %u\n", n,
                                        regions + 1);
                                return -EBADMSG;
                        }
                }
                sort_u64(att, arg_samples);
                sort_u64(det, arg_samples);
                sort_u64(get, arg_samples);
                sort_u64(lst, list_samples);
                a50[run] = us(quantile_u64(att, arg_samples, 0.5));
                a99[run] = us(quantile_u64(att, arg_samples, 0.99));
                d50[run] = us(quantile_u64(det, arg_samples, 0.5));
                g50[run] = us(quantile_u64(get, arg_samples, 0.5));
                g99[run] = us(quantile_u64(get, arg_samples, 0.99));
                l50[run] = us(quantile_u64(lst, list_samples, 0.5));
                l99[run] = us(quantile_u64(lst, list_samples, 0.99));
                fprintf(stderr, "%s, run %u: Attach p50 %.1f µs p99 %.1f µs, GetFd p50 %.1f µs, "
                        "ListRegions p50 %.0f µs\n", state_name[st], run + 1, a50[run], a99[run], g50[run], l50[run]);
        }

        *f = (Figures) {
                .measured = true,
                .vms = vms,
                .regions = regions,
                .views = views,
                .attach_p50 = median_double(a50, arg_runs),
                .attach_p99 = median_double(a99, arg_runs),
                .detach_p50 = median_double(d50, arg_runs),
                .getfd_p50 = median_double(g50, arg_runs),
                .getfd_p99 = median_double(g99, arg_runs),
                .list_p50 = median_double(l50, arg_runs),
                .list_p99 = median_double(l99, arg_runs),
        };
        /* Memory last, after the latency loops have settled the heap. */
        r = bench_vmrss_kib(gmemd_pid, &f->rss_kib);
        if (r < 0)
                return r;
        (void) bench_meminfo_kib("Slab", &f->slab_kib);
        return 0;
}

static void print_report(const Figures *f) {
        const Figures *small = &f[STATE_SMALL];

        printf("\n| state | VMs | regions | views | gmemd VmRSS | RSS growth per region | kernel Slab growth "
               "| Attach p50 / p99 µs | Attach p50 vs small | Detach p50 µs | GetFd p50 / p99 µs "
               "| ListRegions p50 / p99 ms | ListRegions per region |\n");
        printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (State s = 0; s < _STATE_MAX; s++) {
                const Figures *x = &f[s];
                char per_region[32] = "—", slab[32] = "—";

                if (!x->measured)
                        continue;
                if (s != STATE_SMALL && s != STATE_AFTER && x->regions > small->regions) {
                        unsigned added = x->regions - small->regions;
                        (void) snprintf(per_region, sizeof(per_region), "%.0f B",
                                        ((double) x->rss_kib - (double) small->rss_kib) * 1024.0 / added);
                        (void) snprintf(slab, sizeof(slab), "%.0f B/region",
                                        ((double) x->slab_kib - (double) small->slab_kib) * 1024.0 / added);
                }
                printf("| %s | %u | %u | %u | %.1f MiB | %s | %s | %.1f / %.1f | %.2f× | %.1f | %.1f / %.1f "
                       "| %.2f / %.2f | %.0f ns |\n",
                       state_name[s], x->vms + 1, x->regions + 1, x->views, (double) x->rss_kib / 1024.0, per_region,
                       slab, x->attach_p50, x->attach_p99, x->attach_p50 / small->attach_p50, x->detach_p50,
                       x->getfd_p50, x->getfd_p99, x->list_p50 / 1e3, x->list_p99 / 1e3,
                       x->list_p50 * 1e3 / (x->regions + 1));
        }
        printf("\n(VM and region counts include the probe VM and region.)\n");

        if (f[STATE_SCALE].measured) {
                double ratio = f[STATE_SCALE].attach_p50 / small->attach_p50;
                printf("\nTarget: Attach latency at scale / small <= 1.2: %.2f (p99 %.2f): %s\n", ratio,
                       f[STATE_SCALE].attach_p99 / small->attach_p99, ratio <= 1.2 ? "met" : "missed");
        }
        if (f[STATE_LARGE].measured) {
                double mib = (double) f[STATE_LARGE].rss_kib / 1024.0;
                printf("Target: 100,000 regions in 200 MiB of RSS: %u regions measured at %.1f MiB: %s\n",
                       f[STATE_LARGE].regions + 1, mib,
                       f[STATE_LARGE].regions + 1 >= 100000 ? (mib <= 200 ? "met" : "missed") : "not measured at 100,000");
        } else if (f[STATE_SCALE].measured) {
                double per = ((double) f[STATE_SCALE].rss_kib - (double) small->rss_kib) * 1024.0 /
                             (f[STATE_SCALE].regions - small->regions);
                double mib = ((double) small->rss_kib * 1024.0 + per * 100000) / (double) MIB;
                printf("Target: 100,000 regions in 200 MiB of RSS: extrapolated %.1f MiB: %s\n", mib,
                       mib <= 200 ? "met" : "missed");
        }
}

static void help(void) {
        printf("Usage: bench-scale [OPTIONS]\n\n"
               "Benchmark 4 (scale): gmemd's RSS and its Attach, GetFd and ListRegions latency\n"
               "with 10 regions and with many. Run it under bench-env --nofile=262144.\n\n"
               "  --vms=N            VMs at scale (default 10000; each has views of two regions)\n"
               "  --regions=N        regions at scale (default 20000, at least 2 x VMs)\n"
               "  --large-regions=N  regions of the large state (default 100000; 0 skips it)\n"
               "  --samples=N        Attach/Detach/GetFd calls per run (default 2000)\n"
               "  --runs=N           repeated runs per state; tables show medians (default 5)\n");
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
        if (optind < argc || arg_runs < 1 || arg_runs > RUNS_MAX || arg_samples < 1 || arg_vms < SMALL_VMS ||
            arg_regions < 2 * arg_vms || (arg_large_regions && arg_large_regions < arg_regions))
                return -EINVAL;
        return 0;
}

int main(int argc, char **argv) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL;
        Figures f[_STATE_MAX] = {};
        unsigned small_views = 0, views = 0, regions = 0, budget = 0;
        int r;

        if (parse_argv(argc, argv) < 0) {
                fprintf(stderr, "bench-scale: bad arguments (--help)\n");
                return 2;
        }
        if (!getenv("DBUS_SYSTEM_BUS_ADDRESS")) {
                fprintf(stderr, "SKIP: DBUS_SYSTEM_BUS_ADDRESS is not set; run under bench-env\n");
                return EXIT_SKIP;
        }
        r = bench_bus_open(&b);
        if (r >= 0)
                r = bench_wait_for_name(b, GMEMD_BUS_NAME, 20 * USEC_PER_SEC);
        if (r >= 0)
                r = bench_name_pid(b, GMEMD_BUS_NAME, &gmemd_pid);
        if (r < 0) {
                fprintf(stderr, "bench-scale: gmemd is not on the bus: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        bus = b;

        printf("# Benchmark 4: scale\n");
        bench_print_machine();
        bench_print_command(argc, argv);
        printf("gmemd pid %d; runs: %u per state of %u Attach+Detach+GetFd calls and 10 to 200 ListRegions calls, "
               "on a warm connection (steady state)\n", (int) gmemd_pid, arg_runs, arg_samples);
        fflush(stdout);

        r = call("CreateRegion", "sta{sv}", "probe-r", REGION_SIZE, 0);
        if (r >= 0)
                r = call("RegisterVm", "sa{sv}", "probe-vm", 0);
        if (r >= 0)
                r = create_regions(0, SMALL_REGIONS);
        if (r >= 0)
                r = register_vms(0, SMALL_VMS);
        if (r >= 0)
                r = attach_views(0, SMALL_VMS, SMALL_REGIONS, UINT_MAX, &small_views);
        if (r >= 0)
                r = measure(STATE_SMALL, SMALL_VMS, SMALL_REGIONS, small_views, &f[STATE_SMALL]);

        /* Every memfd region and every view is an fd in gmemd: stay within its RLIMIT_NOFILE. */
        if (r >= 0)
                r = fd_budget(&budget);
        if (r >= 0) {
                regions = arg_regions - SMALL_REGIONS <= budget ? arg_regions : SMALL_REGIONS + budget;
                budget -= regions - SMALL_REGIONS;
                if (regions < arg_regions || budget < 2 * (arg_vms - SMALL_VMS))
                        printf("note: gmemd may hold %u fds (RLIMIT_NOFILE; raising the hard limit needs "
                               "CAP_SYS_RESOURCE): the scale state has %u regions and %u views instead of %u and %u\n",
                               fd_limit, regions, small_views + (budget < 2 * (arg_vms - SMALL_VMS) ? budget :
                                                                  2 * (arg_vms - SMALL_VMS)),
                               arg_regions, 2 * arg_vms);
                r = create_regions(SMALL_REGIONS, regions);
        }
        if (r >= 0)
                r = register_vms(SMALL_VMS, arg_vms);
        if (r >= 0)
                r = attach_views(SMALL_VMS, arg_vms, regions, budget, &views);
        if (r >= 0)
                r = measure(STATE_SCALE, arg_vms, regions, small_views + views, &f[STATE_SCALE]);

        if (r >= 0 && arg_large_regions > regions) {
                r = fd_budget(&budget);
                if (r >= 0 && arg_large_regions - regions > budget)
                        printf("note: the large state (%u regions) is skipped: gmemd may open %u more fds, it would "
                               "need %u; the RSS of %u regions is extrapolated from the scale state\n",
                               arg_large_regions, budget, arg_large_regions - regions, arg_large_regions);
                else if (r >= 0) {
                        r = create_regions(regions, arg_large_regions);
                        if (r >= 0)
                                r = measure(STATE_LARGE, arg_vms, arg_large_regions, small_views + views,
                                            &f[STATE_LARGE]);
                        if (r >= 0)
                                r = destroy_regions(regions, arg_large_regions);
                }
        }
        fflush(stdout);
        if (r >= 0)
                r = unregister_vms(SMALL_VMS, arg_vms);
        if (r >= 0)
                r = destroy_regions(SMALL_REGIONS, regions);
        if (r >= 0)
                r = measure(STATE_AFTER, SMALL_VMS, SMALL_REGIONS, small_views, &f[STATE_AFTER]);
        if (r < 0) {
                fprintf(stderr, "bench-scale: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }

        print_report(f);
        return EXIT_SUCCESS;
}
