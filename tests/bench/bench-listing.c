/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-listing.c — benchmark 4, the listing row: how long `gmemctl
 * list-regions` and `gmemctl list-vms` (table and --json) take with many
 * objects, against the raw `busctl call ... ListRegions` (and ListVms)
 * measured in the same run. gmemd (org.gmemd.Broker1, started by bench-env)
 * is grown to --regions regions and --vms VMs, VM i holding a read-write
 * view of region i while gmemd's RLIMIT_NOFILE allows it (every memfd
 * region and every view is an fd in gmemd). Then each run times, in turn,
 * every command of the table below as a fresh process with stdout on
 * /dev/null, so a gmemctl figure and its raw call share the machine's load.
 * The figure is the median over runs of each run's ratio gmemctl / busctl;
 * the target is <= 2. It is a figure, never a pass or a fail. gmemctl runs
 * with --bus: busctl has only the bus, and bench-env's $GMEM_DIRECT_SOCKET
 * would otherwise take gmemctl to the direct socket.
 *
 *   bench-env --nofile=262144 GMEMD -- bench-listing --gmemctl=GMEMCTL
 *             [--regions=20000] [--vms=10000] [--runs=7]
 */
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench-util.h"

#define RUNS_MAX 64
#define REGION_SIZE UINT64_C(4096)
#define FD_MARGIN 64
#define CALL_TIMEOUT_USEC (120 * USEC_PER_SEC)

static const char *arg_gmemctl = NULL;
static unsigned arg_regions = 20000;
static unsigned arg_vms = 10000;
static unsigned arg_runs = 7;

/* One timed command; raw is the index of the command its ratio is taken against (itself for a raw one). */
typedef struct Command {
        const char *label;
        const char *argv[12];
        size_t raw;
} Command;

#define BUSCTL(method) { "busctl", "call", GMEMD_BUS_NAME, GMEMD_PATH, GMEMD_MANAGER_IFACE, method, NULL }

static Command commands[] = {
        { "busctl call ... ListRegions",           BUSCTL("ListRegions"),                   0 },
        { "gmemctl list-regions",                  { NULL, "--bus", "list-regions", NULL },          0 },
        { "gmemctl --json=short list-regions",     { NULL, "--bus", "--json=short", "list-regions", NULL }, 0 },
        { "busctl call ... ListVms",               BUSCTL("ListVms"),                       3 },
        { "gmemctl list-vms",                      { NULL, "--bus", "list-vms", NULL },              3 },
        { "gmemctl --json=short list-vms",         { NULL, "--bus", "--json=short", "list-vms", NULL }, 3 },
        { "busctl call ... ListRegionsFull",       BUSCTL("ListRegionsFull"),               0 },
        { "busctl call ... ListVmsFull",           BUSCTL("ListVmsFull"),                   3 },
        { "busctl call ... GetManagedObjects",
          { "busctl", "call", GMEMD_BUS_NAME, GMEMD_PATH, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects",
            NULL }, 0 },
};

static sd_bus *bus;

static int call(const char *method, const char *types, ...) {
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
                fprintf(stderr, "bench-listing: %s: %s\n", method, error.message ?: strerror(-r));
        sd_bus_error_free(&error);
        return r;
}

/* How many more fds gmemd may open: its soft RLIMIT_NOFILE less those open, less a margin. */
static int fd_budget(pid_t pid, unsigned *ret) {
        _cleanup_fclose_ FILE *f = NULL;
        char path[64], line[256];
        unsigned long soft = 0;
        unsigned open_fds = 0;
        struct dirent *de;
        DIR *dir;

        (void) snprintf(path, sizeof(path), "/proc/%d/limits", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return negative_errno();
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, "Max open files", 14) == 0 && sscanf(line + 14, "%lu", &soft) == 1)
                        break;
        if (soft == 0 || soft > UINT_MAX)
                return -EIO;
        (void) snprintf(path, sizeof(path), "/proc/%d/fd", (int) pid);
        dir = opendir(path);
        if (!dir)
                return negative_errno();
        while ((de = readdir(dir)))
                if (de->d_name[0] != '.')
                        open_fds++;
        closedir(dir);
        *ret = soft > open_fds + FD_MARGIN ? (unsigned) soft - open_fds - FD_MARGIN : 0;
        return 0;
}

/* Regions first (as many as fit), then VMs (no fd), then views of region i by VM i with the fds left (two each). */
static int populate(pid_t pid, unsigned *ret_regions, unsigned *ret_views) {
        unsigned budget, regions, views;
        int r;

        r = fd_budget(pid, &budget);
        if (r < 0)
                return r;
        regions = arg_regions < budget ? arg_regions : budget;
        for (unsigned i = 0; i < regions; i++) {
                char name[32];

                (void) snprintf(name, sizeof(name), "l-r-%06u", i);
                r = call("CreateRegion", "sta{sv}", name, REGION_SIZE, 0);
                if (r < 0)
                        return r;
        }
        for (unsigned i = 0; i < arg_vms; i++) {
                char name[32];

                (void) snprintf(name, sizeof(name), "l-vm-%06u", i);
                r = call("RegisterVm", "sa{sv}", name, 0);
                if (r < 0)
                        return r;
        }
        r = fd_budget(pid, &budget);
        if (r < 0)
                return r;
        views = arg_vms < regions ? arg_vms : regions;
        /* Each view costs its file and, for the region's next view, a spare (region-spare.h). */
        if (views > budget / 2)
                views = budget / 2;
        for (unsigned i = 0; i < views; i++) {
                char vm[32], region[32];

                (void) snprintf(vm, sizeof(vm), "l-vm-%06u", i);
                (void) snprintf(region, sizeof(region), "l-r-%06u", i);
                r = call("Attach", "sssa{sv}", vm, region, "rw", 0);   /* the fd goes with the reply */
                if (r < 0)
                        return r;
        }
        *ret_regions = regions;
        *ret_views = views;
        return 0;
}

/* Runs argv with stdout on /dev/null and returns its wall time in ns; a failing command is -EIO. */
static int run_timed(const char *const *argv, uint64_t *ret_ns) {
        uint64_t t0 = now_ns();
        int status;
        pid_t pid;

        pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid == 0) {
                int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);

                if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0)
                        _exit(127);
                execvp(argv[0], (char *const *) argv);
                _exit(127);
        }
        if (waitpid(pid, &status, 0) < 0)
                return negative_errno();
        *ret_ns = now_ns() - t0;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "bench-listing: %s %s failed (status %d)\n", argv[0], argv[1], status);
                return -EIO;
        }
        return 0;
}

static double ms(uint64_t ns) {
        return (double) ns / 1e6;
}

static int parse_unsigned(const char *s, unsigned *ret) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || end == s || *end || v == 0 || v > UINT_MAX)
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

static int parse_args(int argc, char **argv) {
        static const struct option options[] = {
                { "gmemctl", required_argument, NULL, 'g' },
                { "regions", required_argument, NULL, 'r' },
                { "vms",     required_argument, NULL, 'v' },
                { "runs",    required_argument, NULL, 'n' },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                int r = 0;

                switch (c) {
                case 'g': arg_gmemctl = optarg; break;
                case 'r': r = parse_unsigned(optarg, &arg_regions); break;
                case 'v': r = parse_unsigned(optarg, &arg_vms); break;
                case 'n': r = parse_unsigned(optarg, &arg_runs); break;
                default: return -EINVAL;
                }
                if (r < 0) {
                        fprintf(stderr, "bench-listing: invalid value '%s'\n", optarg);
                        return r;
                }
        }
        if (!arg_gmemctl || optind != argc || arg_runs > RUNS_MAX) {
                fprintf(stderr, "usage: bench-listing --gmemctl=GMEMCTL [--regions=N] [--vms=N] [--runs=N<=%d]\n",
                        RUNS_MAX);
                return -EINVAL;
        }
        return 0;
}

int main(int argc, char **argv) {
        static double ratio[ELEMENTSOF(commands)][RUNS_MAX], wall[ELEMENTSOF(commands)][RUNS_MAX];
        unsigned regions = 0, views = 0;
        pid_t pid;
        int r;

        if (parse_args(argc, argv) < 0)
                return 2;
        for (size_t k = 0; k < ELEMENTSOF(commands); k++)
                if (!commands[k].argv[0])
                        commands[k].argv[0] = arg_gmemctl;

        r = bench_bus_open(&bus);
        if (r >= 0)
                r = bench_wait_for_name(bus, GMEMD_BUS_NAME, 10 * USEC_PER_SEC);
        if (r >= 0)
                r = bench_name_pid(bus, GMEMD_BUS_NAME, &pid);
        if (r < 0) {
                fprintf(stderr, "bench-listing: no gmemd on the bus: %s\n", strerror(-r));
                return 1;
        }

        bench_print_machine();
        bench_print_command(argc, argv);
        r = populate(pid, &regions, &views);
        if (r < 0) {
                fprintf(stderr, "bench-listing: populating gmemd failed: %s\n", strerror(-r));
                return 1;
        }
        if (regions < arg_regions)
                fprintf(stderr, "bench-listing: gmemd's fd limit allows %u of %u regions\n", regions, arg_regions);
        printf("state: %u regions, %u VMs, %u views\n", regions, arg_vms, views);
        bench_print_load("before");

        for (unsigned run = 0; run < arg_runs; run++) {
                uint64_t ns[ELEMENTSOF(commands)];

                for (size_t k = 0; k < ELEMENTSOF(commands); k++) {
                        r = run_timed(commands[k].argv, &ns[k]);
                        if (r < 0)
                                return 1;
                        wall[k][run] = ms(ns[k]);
                }
                for (size_t k = 0; k < ELEMENTSOF(commands); k++)
                        ratio[k][run] = (double) ns[k] / (double) ns[commands[k].raw];
                fprintf(stderr, "run %u: list-regions %.0f ms (busctl %.0f ms), list-vms %.0f ms (busctl %.0f ms)\n",
                        run + 1, wall[1][run], wall[0][run], wall[4][run], wall[3][run]);
        }
        bench_print_load("after");

        printf("\n| command | median wall ms | median ratio vs raw call in the same run |\n|---|---:|---:|\n");
        for (size_t k = 0; k < ELEMENTSOF(commands); k++)
                printf("| `%s` | %.0f | %.2f× (vs `%s`) |\n", commands[k].label, median_double(wall[k], arg_runs),
                       median_double(ratio[k], arg_runs), commands[commands[k].raw].label);
        return 0;
}
