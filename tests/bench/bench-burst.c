/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-burst.c — benchmark 6, the start-up burst: what a sandbox manager
 * pays to bring up many VMs at once, end to end. For each of --vms VMs
 * (1,000 by default) it registers the VM, creates a region of --size (64 MiB,
 * memfd backend, not populated) and attaches the region to the VM read-write;
 * the fd in Attach's reply is the view's handout (no GetFd after it). Three
 * calls per VM, each waited for before the next, as a manager's start-up loop
 * makes them. The paths:
 *   gmemd          raw sd-bus calls to org.gmemd.Broker1 through dbus-daemon;
 *   gmemd-direct   the same calls peer-to-peer on gmemd's direct socket
 *                  ($GMEM_DIRECT_SOCKET from bench-env);
 *   memfd floor    the same work with bare memfds in the client:
 *                  memfd_create, ftruncate to the size, and the view a
 *                  re-open of /proc/self/fd/N read-write (a file of its own,
 *                  as gmemd's memfd views are; a dup would share the file).
 * With 1 client and with 8 parallel clients (--clients): each client is a
 * process with its own connection and takes its share of the VMs. The
 * clients connect first (the bus's Hello or the direct socket's AUTH
 * done); the clock starts when all are connected (a bus connection's first
 * call still pays gmemd's credential lookup: it is part of a start-up)
 * and stops when the last has its last fd. Every fd the
 * client receives is closed at once (it would go to the hypervisor); the
 * floor keeps its memfds, as gmemd keeps its regions, until the teardown.
 * The teardown (Detach, UnregisterVm, DestroyRegion per VM; the floor closes
 * its memfds) follows, timed separately, once every client has finished.
 *
 * Figures per run: wall time, VMs per second, the CPU time gmemd and
 * dbus-daemon spent in it (/proc/PID/schedstat), the clients' own CPU time
 * and the teardown's. The table shows medians over the runs, and the
 * medians of per-run ratios: each path's wall time over the floor's, and
 * the bus path's over the direct path's. In each run the paths take turns
 * in an order that rotates from run to run.
 *
 *   bench-env --nofile=16384 GMEMD -- bench-burst [--vms=1000] [--size=64M]
 *             [--clients=1,8] [--runs=5] [--paths=gmemd,gmemd-direct,floor]
 */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench-util.h"
#include "parse.h"

#define CLIENTS_MAX 64
#define RUNS_MAX 64
#define VMS_MAX 100000
#define CALL_TIMEOUT_USEC (60 * USEC_PER_SEC)

typedef enum Path {
        PATH_GMEMD,
        PATH_DIRECT,
        PATH_FLOOR,
        _PATH_MAX,
} Path;

static const char *const path_name[_PATH_MAX] = {
        [PATH_GMEMD] = "gmemd",
        [PATH_DIRECT] = "gmemd-direct",
        [PATH_FLOOR] = "memfd floor",
};

static const char *const path_option[_PATH_MAX] = {
        [PATH_GMEMD] = "gmemd",
        [PATH_DIRECT] = "gmemd-direct",
        [PATH_FLOOR] = "floor",
};

/* The steps of a VM's bring-up, timed each (on the floor: memfd_create, ftruncate, the re-open). */
typedef enum Step {
        STEP_REGISTER,
        STEP_CREATE,
        STEP_ATTACH,
        _STEP_MAX,
} Step;

static const char *const step_name[_STEP_MAX] = {
        [STEP_REGISTER] = "RegisterVm",
        [STEP_CREATE] = "CreateRegion",
        [STEP_ATTACH] = "Attach",
};

/* What the clients of one run write for the parent, in shared memory. */
typedef struct Shared {
        uint64_t step_ns[CLIENTS_MAX][_STEP_MAX];       /* sum over the client's VMs */
        uint64_t start_ns[CLIENTS_MAX], end_ns[CLIENTS_MAX];
        uint64_t teardown_start_ns[CLIENTS_MAX], teardown_end_ns[CLIENTS_MAX];
        uint64_t cpu_ns[CLIENTS_MAX];           /* the client's own CPU time in the burst */
} Shared;

/* One run of one path with one client count. */
typedef struct Result {
        double wall_ms;
        double vms_per_sec;
        double gmemd_cpu_ms;
        double bus_cpu_ms;
        double client_cpu_ms;
        double teardown_ms;
        double teardown_gmemd_cpu_ms;
        double step_us[_STEP_MAX];      /* mean latency of each step */
} Result;

static bool arg_paths[_PATH_MAX] = { true, true, true };
static unsigned arg_clients[8] = { 1, 8 };
static size_t arg_n_clients = 2;
static unsigned arg_vms = 1000;
static uint64_t arg_size = 64 * MIB;
static unsigned arg_runs = 5;

static pid_t gmemd_pid, bus_pid;
static bool direct_missing = false;
static Shared *shared;

static void vm_name(char *buf, size_t size, unsigned i) {
        (void) snprintf(buf, size, "burst-vm-%05u", i);
}

static void region_name(char *buf, size_t size, unsigned i) {
        (void) snprintf(buf, size, "burst-r-%05u", i);
}

/* --- the client side ----------------------------------------------------- */

typedef struct Client {
        Path path;
        unsigned id;
        unsigned first, end;    /* its share of the VMs: [first, end) */
        sd_bus *bus;
        int *memfds;            /* the floor's regions, [end - first] */
} Client;

/* One method call of the Manager; a reply's fd, if any, is checked and closed with the reply. */
static int call(Client *c, const char *method, bool want_fd, const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        va_list ap;
        int r;

        /* On the direct socket there is no one to route to: no destination. */
        r = sd_bus_message_new_method_call(c->bus, &m, c->path == PATH_DIRECT ? NULL : GMEMD_BUS_NAME, GMEMD_PATH,
                                           GMEMD_MANAGER_IFACE, method);
        if (r < 0)
                return r;
        va_start(ap, types);
        r = sd_bus_message_appendv(m, types, ap);
        va_end(ap);
        if (r < 0)
                return r;
        r = sd_bus_call(c->bus, m, CALL_TIMEOUT_USEC, &error, &reply);
        if (r >= 0 && want_fd) {
                int fd;

                r = sd_bus_message_read(reply, "h", &fd);
                if (r >= 0 && fcntl(fd, F_GETFD) < 0)
                        r = -EBADF;
        }
        if (r < 0)
                fprintf(stderr, "bench-burst: client %u, %s: %s: %s\n", c->id, path_name[c->path], method,
                        error.message ?: strerror(-r));
        sd_bus_error_free(&error);
        return r;
}

/* Adds the time since *t to the step's sum, and moves *t on. */
static void step_done(Client *c, Step step, uint64_t *t) {
        uint64_t now = now_ns();

        shared->step_ns[c->id][step] += now - *t;
        *t = now;
}

static int gmemd_bring_up(Client *c, unsigned i) {
        char vm[32], region[32];
        uint64_t t = now_ns();
        int r;

        vm_name(vm, sizeof(vm), i);
        region_name(region, sizeof(region), i);
        r = call(c, "RegisterVm", false, "sa{sv}", vm, 0);
        if (r < 0)
                return r;
        step_done(c, STEP_REGISTER, &t);
        r = call(c, "CreateRegion", false, "sta{sv}", region, arg_size, 1, "backend", "s", "memfd");
        if (r < 0)
                return r;
        step_done(c, STEP_CREATE, &t);
        r = call(c, "Attach", true, "sssa{sv}", vm, region, "rw", 0);
        if (r < 0)
                return r;
        step_done(c, STEP_ATTACH, &t);
        return 0;
}

static int gmemd_tear_down(Client *c, unsigned i) {
        char vm[32], region[32];
        int r;

        vm_name(vm, sizeof(vm), i);
        region_name(region, sizeof(region), i);
        r = call(c, "Detach", false, "ss", vm, region);
        if (r >= 0)
                r = call(c, "UnregisterVm", false, "s", vm);
        if (r >= 0)
                r = call(c, "DestroyRegion", false, "s", region);
        return r;
}

static int floor_bring_up(Client *c, unsigned i) {
        _cleanup_close_ int memfd = -EBADF, view = -EBADF;
        char region[32], proc[64];
        uint64_t t = now_ns();

        region_name(region, sizeof(region), i);
        memfd = memfd_create(region, MFD_CLOEXEC);
        if (memfd < 0)
                return negative_errno();
        step_done(c, STEP_REGISTER, &t);
        if (ftruncate(memfd, (off_t) arg_size) < 0)
                return negative_errno();
        step_done(c, STEP_CREATE, &t);
        (void) snprintf(proc, sizeof(proc), "/proc/self/fd/%d", memfd);
        view = open(proc, O_RDWR | O_CLOEXEC);
        if (view < 0)
                return negative_errno();
        view = safe_close(view);
        step_done(c, STEP_ATTACH, &t);
        c->memfds[i - c->first] = TAKE_FD(memfd);
        return 0;
}

static int floor_tear_down(Client *c, unsigned i) {
        c->memfds[i - c->first] = safe_close(c->memfds[i - c->first]);
        return 0;
}

/* So many fds as the floor keeps: the soft limit up to the hard one. */
static void raise_nofile(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) >= 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
}

/* The client's own CPU time, exact to the moment (schedstat is brought up to date only when the task stops). */
static uint64_t process_cpu_ns(void) {
        struct timespec ts;

        if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) < 0)
                return 0;
        return (uint64_t) ts.tv_sec * NSEC_PER_SEC + (uint64_t) ts.tv_nsec;
}

/* A client's word to the parent: '+' went well, '-' failed (the parent then stops the benchmark). */
static int say(int fd, int r) {
        char byte = r < 0 ? '-' : '+';

        return write(fd, &byte, 1) == 1 ? 0 : -EPIPE;
}

/*
 * A client process: connect, say ready, wait for the start, bring up its
 * VMs, say done, wait for the teardown's start, tear them down. A client
 * that fails says so on every pipe the parent still reads, so that no
 * one waits for it.
 */
static int client_main(Client *c, int ready_fd, int go_fd, int done_fd, int teardown_fd) {
        uint64_t cpu0 = 0, cpu1 = 0;
        char byte = 0;
        int r = 0;

        raise_nofile();
        if (c->path == PATH_GMEMD)
                r = bench_bus_open(&c->bus);
        else if (c->path == PATH_DIRECT)
                r = bench_direct_open(&c->bus);
        else {
                c->memfds = calloc(c->end - c->first + 1, sizeof(int));
                r = c->memfds ? 0 : -ENOMEM;
                for (unsigned i = c->first; c->memfds && i < c->end; i++)
                        c->memfds[i - c->first] = -EBADF;
        }
        if (r >= 0 && c->bus) {
                sd_id128_t id;

                /* Done connecting (the bus's Hello, the direct socket's AUTH) before the clock starts. */
                r = sd_bus_get_bus_id(c->bus, &id);
        }
        if (r < 0) {
                fprintf(stderr, "bench-burst: client %u, %s: cannot connect: %s\n", c->id, path_name[c->path],
                        strerror(-r));
                (void) say(ready_fd, r);
                (void) say(done_fd, r);
                return r;
        }

        if (say(ready_fd, 0) < 0 || read(go_fd, &byte, 1) != 0)
                return -EPIPE;
        cpu0 = process_cpu_ns();
        shared->start_ns[c->id] = now_ns();
        for (unsigned i = c->first; i < c->end && r >= 0; i++)
                r = c->path == PATH_FLOOR ? floor_bring_up(c, i) : gmemd_bring_up(c, i);
        shared->end_ns[c->id] = now_ns();
        cpu1 = process_cpu_ns();
        shared->cpu_ns[c->id] = cpu1 - cpu0;
        if (say(done_fd, r) < 0 || r < 0)
                return r < 0 ? r : -EPIPE;
        if (read(teardown_fd, &byte, 1) != 0)
                return -EPIPE;
        shared->teardown_start_ns[c->id] = now_ns();
        for (unsigned i = c->first; i < c->end && r >= 0; i++)
                r = c->path == PATH_FLOOR ? floor_tear_down(c, i) : gmemd_tear_down(c, i);
        shared->teardown_end_ns[c->id] = now_ns();

        sd_bus_flush_close_unref(c->bus);
        free(c->memfds);
        return r;
}

/* --- one run: n clients on one path ------------------------------------------ */

static void close_pair(int p[2]) {
        p[0] = safe_close(p[0]);
        p[1] = safe_close(p[1]);
}

/* Reads the word of each of n clients: -EPROTO if one failed, -EPIPE if one died without a word. */
static int read_n(int fd, unsigned n) {
        int r = 0;

        for (unsigned i = 0; i < n; i++) {
                char byte;

                if (read(fd, &byte, 1) != 1)
                        return -EPIPE;
                if (byte != '+')
                        r = -EPROTO;
        }
        return r;
}

static int run_one(Path path, unsigned n_clients, Result *ret) {
        int ready[2] = { -EBADF, -EBADF }, go[2] = { -EBADF, -EBADF };
        int done[2] = { -EBADF, -EBADF }, teardown[2] = { -EBADF, -EBADF };
        uint64_t gmemd0 = 0, gmemd1 = 0, gmemd2 = 0, bus0 = 0, bus1 = 0;
        uint64_t first = UINT64_MAX, last = 0, td_first = UINT64_MAX, td_last = 0, client_cpu = 0;
        uint64_t step_ns[_STEP_MAX] = {};
        pid_t pids[CLIENTS_MAX] = {};
        int r = 0, status;

        memset(shared, 0, sizeof(*shared));
        if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0 || pipe2(done, O_CLOEXEC) < 0 ||
            pipe2(teardown, O_CLOEXEC) < 0) {
                r = negative_errno();
                goto finish;
        }

        for (unsigned i = 0; i < n_clients; i++) {
                pids[i] = fork();
                if (pids[i] < 0) {
                        r = negative_errno();
                        goto finish;
                }
                if (pids[i] == 0) {
                        Client c = {
                                .path = path,
                                .id = i,
                                .first = (unsigned) ((uint64_t) arg_vms * i / n_clients),
                                .end = (unsigned) ((uint64_t) arg_vms * (i + 1) / n_clients),
                        };

                        safe_close(ready[0]);
                        safe_close(go[1]);
                        safe_close(done[0]);
                        safe_close(teardown[1]);
                        r = client_main(&c, ready[1], go[0], done[1], teardown[0]);
                        _exit(r < 0 ? EXIT_FAILURE : EXIT_SUCCESS);
                }
        }
        ready[1] = safe_close(ready[1]);
        go[0] = safe_close(go[0]);
        done[1] = safe_close(done[1]);
        teardown[0] = safe_close(teardown[0]);

        /* Every client is connected: start them all at once. */
        r = read_n(ready[0], n_clients);
        (void) bench_task_cpu_ns(gmemd_pid, &gmemd0);
        (void) bench_task_cpu_ns(bus_pid, &bus0);
        go[1] = safe_close(go[1]);
        if (r != -EPIPE) {
                int k = read_n(done[0], n_clients);

                r = r < 0 ? r : k;
        }
        (void) bench_task_cpu_ns(gmemd_pid, &gmemd1);
        (void) bench_task_cpu_ns(bus_pid, &bus1);
        /* Every client has its last fd: the teardown, timed on its own. */
        teardown[1] = safe_close(teardown[1]);
        for (unsigned i = 0; i < n_clients; i++)
                if (pids[i] > 0 && (waitpid(pids[i], &status, 0) < 0 || !WIFEXITED(status) ||
                                    WEXITSTATUS(status) != 0))
                        r = r < 0 ? r : -EPROTO;
        (void) bench_task_cpu_ns(gmemd_pid, &gmemd2);
        if (r < 0)
                goto finish;

        for (unsigned i = 0; i < n_clients; i++) {
                first = shared->start_ns[i] < first ? shared->start_ns[i] : first;
                last = shared->end_ns[i] > last ? shared->end_ns[i] : last;
                td_first = shared->teardown_start_ns[i] < td_first ? shared->teardown_start_ns[i] : td_first;
                td_last = shared->teardown_end_ns[i] > td_last ? shared->teardown_end_ns[i] : td_last;
                client_cpu += shared->cpu_ns[i];
                for (Step k = 0; k < _STEP_MAX; k++)
                        step_ns[k] += shared->step_ns[i][k];
        }
        *ret = (Result) {
                .wall_ms = (double) (last - first) / 1e6,
                .vms_per_sec = last > first ? (double) arg_vms * 1e9 / (double) (last - first) : 0,
                .gmemd_cpu_ms = path == PATH_FLOOR ? 0 : (double) (gmemd1 - gmemd0) / 1e6,
                .bus_cpu_ms = (double) (bus1 - bus0) / 1e6,
                .client_cpu_ms = (double) client_cpu / 1e6,
                .teardown_ms = (double) (td_last - td_first) / 1e6,
                .teardown_gmemd_cpu_ms = path == PATH_FLOOR ? 0 : (double) (gmemd2 - gmemd1) / 1e6,
        };
        for (Step k = 0; k < _STEP_MAX; k++)
                ret->step_us[k] = (double) step_ns[k] / arg_vms / 1e3;

finish:
        close_pair(ready);
        close_pair(go);
        close_pair(done);
        close_pair(teardown);
        return r;
}

/* --- the report ------------------------------------------------------------- */

typedef Result Results[_PATH_MAX][RUNS_MAX];

static double median_field(const Result *runs, size_t offset) {
        double v[RUNS_MAX];

        for (unsigned i = 0; i < arg_runs; i++)
                v[i] = *(const double *) ((const char *) &runs[i] + offset);
        return median_double(v, arg_runs);
}

#define MEDIAN(runs, field) median_field(runs, offsetof(Result, field))

/* The median over runs of x's wall time over base's in the same run. */
static double paired_ratio(const Result *x, const Result *base) {
        double v[RUNS_MAX];

        for (unsigned i = 0; i < arg_runs; i++)
                v[i] = base[i].wall_ms > 0 ? x[i].wall_ms / base[i].wall_ms : 0;
        return median_double(v, arg_runs);
}

static void format_ratio(char *buf, size_t size, bool have, double ratio) {
        if (have)
                (void) snprintf(buf, size, "%.2f×", ratio);
        else
                (void) snprintf(buf, size, "—");
}

static void print_report(Results *res) {
        printf("\n| clients | path | wall ms | VMs/s | wall vs floor | bus wall vs direct | µs per step (register / "
               "create / attach) | gmemd CPU ms | gmemd CPU µs/VM | dbus-daemon CPU ms | clients' CPU ms | teardown ms "
               "| teardown gmemd CPU ms |\n");
        printf("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (size_t c = 0; c < arg_n_clients; c++)
                for (Path p = 0; p < _PATH_MAX; p++) {
                        const Result *x = res[c][p];
                        char vs_floor[32], vs_direct[32], gmemd_cpu[32] = "—", gmemd_cpu_vm[32] = "—",
                             td_cpu[32] = "—";

                        if (!arg_paths[p])
                                continue;
                        format_ratio(vs_floor, sizeof(vs_floor), arg_paths[PATH_FLOOR],
                                     paired_ratio(x, res[c][PATH_FLOOR]));
                        format_ratio(vs_direct, sizeof(vs_direct), p == PATH_GMEMD && arg_paths[PATH_DIRECT],
                                     paired_ratio(x, res[c][PATH_DIRECT]));
                        if (p != PATH_FLOOR) {
                                (void) snprintf(gmemd_cpu, sizeof(gmemd_cpu), "%.0f", MEDIAN(x, gmemd_cpu_ms));
                                (void) snprintf(gmemd_cpu_vm, sizeof(gmemd_cpu_vm), "%.0f",
                                                MEDIAN(x, gmemd_cpu_ms) * 1e3 / arg_vms);
                                (void) snprintf(td_cpu, sizeof(td_cpu), "%.0f", MEDIAN(x, teardown_gmemd_cpu_ms));
                        }
                        printf("| %u | %s | %.1f | %.0f | %s | %s | %.1f / %.1f / %.1f | %s | %s | %.0f | %.1f | %.1f "
                               "| %s |\n",
                               arg_clients[c], path_name[p], MEDIAN(x, wall_ms), MEDIAN(x, vms_per_sec), vs_floor,
                               vs_direct, MEDIAN(x, step_us[STEP_REGISTER]), MEDIAN(x, step_us[STEP_CREATE]),
                               MEDIAN(x, step_us[STEP_ATTACH]), gmemd_cpu, gmemd_cpu_vm, MEDIAN(x, bus_cpu_ms), MEDIAN(x, client_cpu_ms),
                               MEDIAN(x, teardown_ms), td_cpu);
                }
        printf("\nMedians over %u runs; ratios are medians of the ratios within each run. A VM is three calls "
               "(RegisterVm, CreateRegion, Attach) on the gmemd paths, each step's time the mean latency of that "
               "call; on the floor the steps are memfd_create, ftruncate and the view's open+close.\n", arg_runs);
}

/* --- arguments and main ------------------------------------------------------- */

static void help(void) {
        printf("Usage: bench-burst [OPTIONS]\n\n"
               "Benchmark 6 (start-up burst): register --vms VMs, create a region of --size\n"
               "for each (memfd, not populated) and attach it read-write, end to end, through\n"
               "gmemd on the bus, on its direct socket, and with bare memfds (the floor). Run\n"
               "it under bench-env, which starts a private bus and gmemd and sets\n"
               "DBUS_SYSTEM_BUS_ADDRESS and GMEM_DIRECT_SOCKET.\n\n"
               "  --vms=N           VMs (and regions) of the burst (default 1000)\n"
               "  --size=SIZE       size of each region (default 64M)\n"
               "  --clients=LIST    parallel client processes sharing the VMs, e.g. 1,8 (default)\n"
               "  --runs=N          repeated runs; the table shows medians (default 5)\n"
               "  --paths=LIST      gmemd,gmemd-direct,floor (default all)\n");
}

/* "a,b" against a table of n names: sets exactly the named entries of ret. */
static int parse_set(const char *s, const char *const *names, int n, bool *ret) {
        _cleanup_free_ char *copy = strdup(s);
        char *save = NULL;

        if (!copy)
                return -ENOMEM;
        memset(ret, 0, sizeof(bool) * (size_t) n);
        for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
                int i;

                for (i = 0; i < n; i++)
                        if (streq(w, names[i]))
                                break;
                if (i >= n)
                        return -EINVAL;
                ret[i] = true;
        }
        return 0;
}

static int parse_argv(int argc, char **argv) {
        static const struct option options[] = {
                { "help",    no_argument,       NULL, 'h' },
                { "vms",     required_argument, NULL, 'v' },
                { "size",    required_argument, NULL, 'S' },
                { "clients", required_argument, NULL, 'c' },
                { "runs",    required_argument, NULL, 'r' },
                { "paths",   required_argument, NULL, 'p' },
                {}
        };
        unsigned long v;
        char *end;
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        exit(EXIT_SUCCESS);
                case 'v':
                        errno = 0;
                        v = strtoul(optarg, &end, 10);
                        if (errno || *end || v < 1 || v > VMS_MAX) {
                                fprintf(stderr, "bench-burst: --vms=%s: a number from 1 to %u\n", optarg, VMS_MAX);
                                return -EINVAL;
                        }
                        arg_vms = (unsigned) v;
                        break;
                case 'S':
                        if (gmem_parse_size(optarg, &arg_size) < 0 || arg_size == 0 || arg_size % 4096 != 0 ||
                            arg_size > (UINT64_C(1) << 46)) {
                                fprintf(stderr, "bench-burst: --size=%s: a multiple of 4096 up to 64T\n", optarg);
                                return -EINVAL;
                        }
                        break;
                case 'c':
                        if (bench_parse_list(optarg, arg_clients, ELEMENTSOF(arg_clients), &arg_n_clients) < 0) {
                                fprintf(stderr, "bench-burst: --clients=%s: a list such as 1,8\n", optarg);
                                return -EINVAL;
                        }
                        for (size_t i = 0; i < arg_n_clients; i++)
                                if (arg_clients[i] > CLIENTS_MAX) {
                                        fprintf(stderr, "bench-burst: --clients: at most %u\n", CLIENTS_MAX);
                                        return -EINVAL;
                                }
                        break;
                case 'r':
                        errno = 0;
                        v = strtoul(optarg, &end, 10);
                        if (errno || *end || v < 1 || v > RUNS_MAX) {
                                fprintf(stderr, "bench-burst: --runs=%s: a number from 1 to %u\n", optarg, RUNS_MAX);
                                return -EINVAL;
                        }
                        arg_runs = (unsigned) v;
                        break;
                case 'p':
                        if (parse_set(optarg, path_option, _PATH_MAX, arg_paths) < 0) {
                                fprintf(stderr, "bench-burst: --paths=%s: a list of gmemd, gmemd-direct, floor\n",
                                        optarg);
                                return -EINVAL;
                        }
                        break;
                default:
                        return -EINVAL;
                }
        if (optind < argc)
                return -EINVAL;
        for (size_t i = 0; i < arg_n_clients; i++)
                if (arg_clients[i] > arg_vms) {
                        fprintf(stderr, "bench-burst: %u clients for %u VMs\n", arg_clients[i], arg_vms);
                        return -EINVAL;
                }
        return 0;
}

int main(int argc, char **argv) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_free_ Results *res = NULL;
        char size[GMEM_FORMAT_SIZE_MAX];
        int r;

        if (parse_argv(argc, argv) < 0) {
                fprintf(stderr, "bench-burst: bad arguments (--help)\n");
                return 2;
        }
        shared = mmap(NULL, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        res = calloc(arg_n_clients, sizeof(*res));
        if (shared == MAP_FAILED || !res) {
                perror("bench-burst");
                return EXIT_FAILURE;
        }

        direct_missing = arg_paths[PATH_DIRECT];
        r = bench_find_gmemd("bench-burst", &arg_paths[PATH_DIRECT], &bus, &gmemd_pid, &bus_pid);
        if (r > 0)
                return r;
        direct_missing = direct_missing && !arg_paths[PATH_DIRECT];

        printf("# Benchmark 6: start-up burst\n");
        bench_print_machine();
        bench_print_command(argc, argv);
        bench_print_load("at the start");
        if (direct_missing)
                printf("no gmemd-direct path: $GMEM_DIRECT_SOCKET is not set (gmemd without --direct-socket?)\n");
        printf("burst: %u VMs, each RegisterVm + CreateRegion(%s, memfd, not populated) + Attach(rw) -> fd, "
               "%u runs; the paths take turns in each run, in an order rotating from run to run\n", arg_vms,
               gmem_format_size(size, sizeof(size), arg_size), arg_runs);
        fflush(stdout);

        for (unsigned run = 0; run < arg_runs && r >= 0; run++)
                for (size_t c = 0; c < arg_n_clients && r >= 0; c++)
                        for (unsigned k = 0; k < _PATH_MAX && r >= 0; k++) {
                                Path p = (Path) ((run + k) % _PATH_MAX);
                                Result *x = &res[c][p][run];

                                if (!arg_paths[p])
                                        continue;
                                r = run_one(p, arg_clients[c], x);
                                if (r < 0) {
                                        fprintf(stderr, "bench-burst: run %u, %s, %u clients: %s\n", run + 1,
                                                path_name[p], arg_clients[c], strerror(-r));
                                        break;
                                }
                                fprintf(stderr, "run %u %u clients %-12s %8.1f ms %7.0f VMs/s (%s %.1f, %s %.1f, %s "
                                        "%.1f µs) gmemd CPU %6.1f ms dbus-daemon CPU %6.1f ms clients' CPU %6.1f ms, "
                                        "teardown %7.1f ms\n", run + 1, arg_clients[c], path_name[p], x->wall_ms,
                                        x->vms_per_sec, step_name[STEP_REGISTER], x->step_us[STEP_REGISTER],
                                        step_name[STEP_CREATE], x->step_us[STEP_CREATE], step_name[STEP_ATTACH],
                                        x->step_us[STEP_ATTACH], x->gmemd_cpu_ms, x->bus_cpu_ms, x->client_cpu_ms,
                                        x->teardown_ms);
                        }
        if (r < 0)
                return EXIT_FAILURE;

        bench_print_load("at the end");
        print_report(res);
        return EXIT_SUCCESS;
}
