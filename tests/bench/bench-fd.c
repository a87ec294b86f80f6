/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-fd.c — benchmark 1, fd handout: how fast gmemd hands a view's file
 * descriptor to a client, against two floors measured in the same run.
 *
 * Operations: "attach+detach" (Attach(vm, region, "rw", {}) -> h, then
 * Detach(vm, region): one view made and dropped) and "getfd" (GetFd(vm,
 * region) -> h on a view that exists). Paths, each driven by the same client
 * code:
 *   gmemd          raw sd-bus calls to org.gmemd.Broker1 through dbus-daemon;
 *   gmemd-direct   the same raw calls peer-to-peer on gmemd's direct socket
 *                  ($GMEM_DIRECT_SOCKET from bench-env): no dbus-daemon, no
 *                  signals, credentials from SO_PEERCRED;
 *   gmemd/libgmem  the same through libgmem on the bus (gmem_connect_address():
 *                  gmem_connect() would take the direct socket; libgmem
 *                  duplicates the fd once more);
 *   sd-bus floor   the same raw calls to bench-fd-server, a trivial sd-bus
 *                  service on the same bus answering with an fd;
 *   floor+signals  (attach+detach only, a diagnostic) the same server also
 *                  emitting the two PropertiesChanged signals gmemd emits per
 *                  view change, to show what they cost;
 *   SCM_RIGHTS     a raw round trip over a socketpair to a server process
 *                  that answers with the fd in SCM_RIGHTS (attach+detach: one
 *                  round trip with an fd and one without).
 * Every client is a process of its own with its own connections. Before the
 * clock starts each one makes warm-up calls, so the daemon's first-call
 * credential lookup (GetConnectionCredentials, cached per connection) is not
 * measured: the figures are steady state. A direct connection has no such
 * lookup (its credentials come with the socket), but takes the same
 * warm-up. The clients then start together and run for a fixed time; each
 * operation's latency is recorded.
 *
 * Two kinds of run, both by default:
 *   separate     the clients use one path for the whole run. Throughput is
 *                all operations over the wall time; p50/p99 pool the
 *                latencies of all clients; the CPU time gmemd (or the floor
 *                server) and dbus-daemon spent in the run is divided by the
 *                operations. Runs of the paths follow each other.
 *   interleaved  each client takes the paths in turn, one operation each,
 *                round after round, so that every path sees the same
 *                machine at the same moment: on a machine shared with other
 *                work the ratios of these runs are the ones to trust. Time
 *                per operation is the mean latency; the equivalent
 *                throughput is clients / mean latency (Little's law).
 * Each table shows the median of each figure across runs, with the ratio of
 * gmemd's time per operation to the floors'. The report ends with the
 * targets: gmemd within 1.2x of the sd-bus floor for interleaved
 * attach+detach, within 1.5x otherwise; on the direct socket,
 * GetFd within 2x of the SCM_RIGHTS round trip and attach+detach at least 4x
 * the rate of the bus path (interleaved runs, medians of per-round ratios).
 *
 *   bench-env GMEMD -- bench-fd --server=bench-fd-server [--clients=1,8]
 *             [--seconds=2] [--runs=7] [--mode=separate|interleaved|both]
 */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench-util.h"
#include "libgmem.h"

#define FLOOR_BUS_NAME "org.gmemd.BenchFloor"
#define FLOOR_SIGNALS_BUS_NAME "org.gmemd.BenchFloorSignals"
#define FLOOR_PATH "/org/gmemd/BenchFloor"
#define FLOOR_IFACE "org.gmemd.BenchFloor"

#define CLIENTS_MAX 64
#define WARMUP_OPS 200
#define RUNS_MAX 64
#define REGION_SIZE (UINT64_C(1) << 20)
#define SCM_REQUEST_SIZE 64

typedef enum Op {
        OP_ATTACH_DETACH,
        OP_GET_FD,
        _OP_MAX,
} Op;

typedef enum Path {
        PATH_GMEMD,
        PATH_DIRECT,
        PATH_LIBGMEM,
        PATH_FLOOR,
        PATH_FLOOR_SIGNALS,
        PATH_SCM,
        _PATH_MAX,
} Path;

static const char *const op_name[_OP_MAX] = {
        [OP_ATTACH_DETACH] = "attach+detach",
        [OP_GET_FD] = "getfd",
};

static const char *const path_name[_PATH_MAX] = {
        [PATH_GMEMD] = "gmemd",
        [PATH_DIRECT] = "gmemd-direct",
        [PATH_LIBGMEM] = "gmemd/libgmem",
        [PATH_FLOOR] = "sd-bus floor",
        [PATH_FLOOR_SIGNALS] = "floor+signals",
        [PATH_SCM] = "SCM_RIGHTS",
};

typedef enum Mode {
        MODE_SEPARATE,
        MODE_INTERLEAVED,
        _MODE_MAX,
} Mode;

static const char *const mode_name[_MODE_MAX] = {
        [MODE_SEPARATE] = "separate",
        [MODE_INTERLEAVED] = "interleaved",
};

/* What the clients of one run write for the parent, in shared memory. */
typedef struct Shared {
        uint64_t start_ns[CLIENTS_MAX];
        uint64_t end_ns[CLIENTS_MAX];
        uint64_t n[CLIENTS_MAX][_PATH_MAX];
        uint64_t sum_ns[CLIENTS_MAX][_PATH_MAX];
} Shared;

typedef struct Result {
        double ops_per_sec;     /* separate: measured; interleaved: clients / mean latency */
        double mean_us;
        double p50_us;
        double p99_us;
        double server_cpu_us;   /* CPU time of the server (gmemd, the floor) per operation; separate runs */
        double bus_cpu_us;      /* CPU time of dbus-daemon per operation; separate runs */
} Result;

static bool arg_ops[_OP_MAX] = { true, true };
static bool arg_paths[_PATH_MAX] = { true, true, true, true, true, true };
static unsigned arg_clients[8] = { 1, 8 };
static size_t arg_n_clients = 2;
static unsigned arg_runs = 7;
static bool arg_modes[_MODE_MAX] = { true, true };
static double arg_seconds = 2;
static const char *arg_server = NULL;
static size_t arg_max_samples = 1 << 20;

static pid_t gmemd_pid, floor_pid, floor_signals_pid, bus_pid;
static bool direct_missing = false;     /* gmemd-direct asked for, but bench-env exported no direct socket */
static Shared *shared;
static uint64_t *samples;      /* [client][path][arg_max_samples] */

static uint64_t *samples_of(unsigned client, Path p) {
        return samples + ((size_t) client * _PATH_MAX + (size_t) p) * arg_max_samples;
}

/* --- the client side of each path ---------------------------------------- */

typedef struct Client {
        Path path;
        unsigned id;
        sd_bus *bus;
        GmemClient *gmem;
        int scm_fd;
        char vm[32], attach_region[32], getfd_region[32];
} Client;

static int sdbus_attach_detach(Client *c, const char *dest, const char *path, const char *iface) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        int fd, r;

        r = sd_bus_call_method(c->bus, dest, path, iface, "Attach", &error, &reply, "sssa{sv}", c->vm,
                               c->attach_region, "rw", 0);
        if (r >= 0)
                r = sd_bus_message_read(reply, "h", &fd);
        sd_bus_message_unref(reply);    /* closes the fd the reply carried */
        reply = NULL;
        if (r >= 0)
                r = sd_bus_call_method(c->bus, dest, path, iface, "Detach", &error, NULL, "ss", c->vm,
                                       c->attach_region);
        if (r < 0)
                fprintf(stderr, "client %u: %s: %s\n", c->id, error.name ?: "", error.message ?: strerror(-r));
        sd_bus_error_free(&error);
        return r;
}

static int sdbus_get_fd(Client *c, const char *dest, const char *path, const char *iface) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        int fd, r;

        r = sd_bus_call_method(c->bus, dest, path, iface, "GetFd", &error, &reply, "ss", c->vm, c->getfd_region);
        if (r >= 0)
                r = sd_bus_message_read(reply, "h", &fd);
        sd_bus_message_unref(reply);
        if (r < 0)
                fprintf(stderr, "client %u: %s: %s\n", c->id, error.name ?: "", error.message ?: strerror(-r));
        sd_bus_error_free(&error);
        return r;
}

static int libgmem_op(Client *c, Op op) {
        int fd, r;

        if (op == OP_GET_FD)
                r = gmem_get_fd(c->gmem, c->vm, c->getfd_region, &fd);
        else
                r = gmem_attach(c->gmem, c->vm, c->attach_region, GMEM_ACCESS_RW, 0, 0, false, &fd);
        if (r >= 0)
                safe_close(fd);
        if (r >= 0 && op == OP_ATTACH_DETACH)
                r = gmem_detach(c->gmem, c->vm, c->attach_region);
        if (r < 0)
                fprintf(stderr, "client %u: %s\n", c->id, gmem_client_last_error_message(c->gmem) ?: strerror(-r));
        return r;
}

/* One request, one reply; the reply carries an fd when want_fd. */
static int scm_round_trip(int sock, char request, bool want_fd) {
        char buf[SCM_REQUEST_SIZE] = { request };
        char cbuf[CMSG_SPACE(sizeof(int))];
        struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = cbuf,
                .msg_controllen = sizeof(cbuf),
        };
        struct cmsghdr *cm;
        ssize_t n;
        int fd = -EBADF;

        if (send(sock, buf, sizeof(buf), MSG_NOSIGNAL) != (ssize_t) sizeof(buf))
                return negative_errno();
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        if (n <= 0)
                return n < 0 ? negative_errno() : -ECONNRESET;
        for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
                if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
                        memcpy(&fd, CMSG_DATA(cm), sizeof(int));
        if (want_fd && fd < 0)
                return -EBADMSG;
        safe_close(fd);
        return 0;
}

static int scm_op(Client *c, Op op) {
        int r;

        if (op == OP_GET_FD)
                return scm_round_trip(c->scm_fd, 'G', true);
        r = scm_round_trip(c->scm_fd, 'A', true);
        if (r >= 0)
                r = scm_round_trip(c->scm_fd, 'D', false);
        return r;
}

static int client_op(Client *c, Op op) {
        switch (c->path) {
        case PATH_GMEMD:
                return op == OP_GET_FD ? sdbus_get_fd(c, GMEMD_BUS_NAME, GMEMD_PATH, GMEMD_MANAGER_IFACE)
                                       : sdbus_attach_detach(c, GMEMD_BUS_NAME, GMEMD_PATH, GMEMD_MANAGER_IFACE);
        case PATH_DIRECT:       /* a peer connection: no destination to route to */
                return op == OP_GET_FD ? sdbus_get_fd(c, NULL, GMEMD_PATH, GMEMD_MANAGER_IFACE)
                                       : sdbus_attach_detach(c, NULL, GMEMD_PATH, GMEMD_MANAGER_IFACE);
        case PATH_FLOOR:
                return op == OP_GET_FD ? sdbus_get_fd(c, FLOOR_BUS_NAME, FLOOR_PATH, FLOOR_IFACE)
                                       : sdbus_attach_detach(c, FLOOR_BUS_NAME, FLOOR_PATH, FLOOR_IFACE);
        case PATH_FLOOR_SIGNALS:
                return op == OP_GET_FD ? sdbus_get_fd(c, FLOOR_SIGNALS_BUS_NAME, FLOOR_PATH, FLOOR_IFACE)
                                       : sdbus_attach_detach(c, FLOOR_SIGNALS_BUS_NAME, FLOOR_PATH, FLOOR_IFACE);
        case PATH_LIBGMEM:
                return libgmem_op(c, op);
        case PATH_SCM:
                return scm_op(c, op);
        default:
                return -EINVAL;
        }
}

static bool uses_bus(Path p) {
        return p == PATH_GMEMD || p == PATH_FLOOR || p == PATH_FLOOR_SIGNALS;
}

/*
 * A client process: connect on each path, warm up, say ready, wait for the
 * start, then take the paths in turn, one operation each, until the deadline.
 */
static int client_main(const bool *paths, Op op, unsigned id, int scm_fd, int ready_fd, int go_fd) {
        Client c[_PATH_MAX] = {};
        uint64_t start, end, duration = (uint64_t) (arg_seconds * (double) NSEC_PER_SEC);
        uint64_t n[_PATH_MAX] = {}, sum[_PATH_MAX] = {};
        bool full = false;
        char byte = 0;
        int r = 0;

        for (Path p = 0; p < _PATH_MAX && r >= 0; p++) {
                if (!paths[p])
                        continue;
                c[p] = (Client) { .path = p, .id = id, .scm_fd = scm_fd };
                (void) snprintf(c[p].vm, sizeof(c[p].vm), "bench-vm-%u", id);
                (void) snprintf(c[p].attach_region, sizeof(c[p].attach_region), "bench-a-%u", id);
                (void) snprintf(c[p].getfd_region, sizeof(c[p].getfd_region), "bench-g-%u", id);
                if (uses_bus(p))
                        r = bench_bus_open(&c[p].bus);
                else if (p == PATH_DIRECT)
                        r = bench_direct_open(&c[p].bus);
                else if (p == PATH_LIBGMEM)     /* the bus, as its label says, not whatever gmem_connect() picks */
                        r = gmem_connect_address(getenv("DBUS_SYSTEM_BUS_ADDRESS"), &c[p].gmem);
                if (r < 0)
                        fprintf(stderr, "client %u: cannot connect: %s\n", id, strerror(-r));
        }

        for (unsigned i = 0; i < WARMUP_OPS && r >= 0; i++)
                for (Path p = 0; p < _PATH_MAX && r >= 0; p++)
                        if (paths[p])
                                r = client_op(&c[p], op);
        if (r < 0)
                return r;

        if (write(ready_fd, &byte, 1) != 1 || read(go_fd, &byte, 1) != 0)
                return -EPIPE;

        start = now_ns();
        end = start;
        while (end - start < duration && !full && r >= 0)
                for (Path p = 0; p < _PATH_MAX; p++) {
                        uint64_t t0 = end;

                        if (!paths[p])
                                continue;
                        r = client_op(&c[p], op);
                        if (r < 0)
                                break;
                        end = now_ns();
                        samples_of(id, p)[n[p]++] = end - t0;
                        sum[p] += end - t0;
                        if (n[p] >= arg_max_samples)
                                full = true;
                }
        shared->start_ns[id] = start;
        shared->end_ns[id] = end;
        for (Path p = 0; p < _PATH_MAX; p++) {
                shared->n[id][p] = n[p];
                shared->sum_ns[id][p] = sum[p];
                sd_bus_flush_close_unref(c[p].bus);
                gmem_client_unref(c[p].gmem);
        }
        return r;
}

/* --- the SCM_RIGHTS server: one process serving every client's socketpair -- */

static int scm_server_main(int *socks, unsigned n) {
        _cleanup_close_ int memfd = memfd_create("bench-scm", MFD_CLOEXEC);
        struct pollfd pfd[CLIENTS_MAX];
        unsigned open_socks = n;

        if (memfd < 0 || ftruncate(memfd, (off_t) REGION_SIZE) < 0)
                return negative_errno();
        for (unsigned i = 0; i < n; i++)
                pfd[i] = (struct pollfd) { .fd = socks[i], .events = POLLIN };

        while (open_socks > 0) {
                if (poll(pfd, n, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                for (unsigned i = 0; i < n; i++) {
                        char buf[SCM_REQUEST_SIZE], reply = 'k';
                        char cbuf[CMSG_SPACE(sizeof(int))] = {};
                        struct iovec iov = { .iov_base = &reply, .iov_len = 1 };
                        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
                        ssize_t k;

                        if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                                continue;
                        k = recv(pfd[i].fd, buf, sizeof(buf), 0);
                        if (k <= 0) {
                                pfd[i].fd = -1;
                                open_socks--;
                                continue;
                        }
                        if (buf[0] != 'D') {
                                struct cmsghdr *cm;

                                mh.msg_control = cbuf;
                                mh.msg_controllen = sizeof(cbuf);
                                cm = CMSG_FIRSTHDR(&mh);
                                cm->cmsg_level = SOL_SOCKET;
                                cm->cmsg_type = SCM_RIGHTS;
                                cm->cmsg_len = CMSG_LEN(sizeof(int));
                                memcpy(CMSG_DATA(cm), &memfd, sizeof(int));
                        }
                        if (sendmsg(pfd[i].fd, &mh, MSG_NOSIGNAL) < 0)
                                return negative_errno();
                }
        }
        return 0;
}

/* --- one run: n clients on one path, or taking all the given paths in turn -- */

static pid_t server_pid_of(Path p) {
        return p == PATH_FLOOR ? floor_pid : p == PATH_FLOOR_SIGNALS ? floor_signals_pid :
               p == PATH_SCM ? 0 : gmemd_pid;
}

static int run_one(const bool *paths, Op op, unsigned n_clients, Result *ret /* [_PATH_MAX] */) {
        pid_t pids[CLIENTS_MAX] = {}, server = 0;
        int socks[CLIENTS_MAX][2];
        int ready[2] = { -EBADF, -EBADF }, go[2] = { -EBADF, -EBADF };
        uint64_t first = UINT64_MAX, last = 0;
        uint64_t server_cpu0[_PATH_MAX] = {}, server_cpu1[_PATH_MAX] = {}, bus_cpu0 = 0, bus_cpu1 = 0;
        unsigned n_paths = 0;
        int r = 0, status;
        char byte;

        for (Path p = 0; p < _PATH_MAX; p++)
                n_paths += paths[p];
        memset(shared, 0, sizeof(*shared));
        if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0)
                return negative_errno();

        if (paths[PATH_SCM]) {
                for (unsigned i = 0; i < n_clients; i++)
                        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, socks[i]) < 0)
                                return negative_errno();
                server = fork();
                if (server < 0)
                        return negative_errno();
                if (server == 0) {
                        int s[CLIENTS_MAX];

                        /* The clients' start pipe must see EOF when the parent closes its end. */
                        safe_close(ready[0]);
                        safe_close(ready[1]);
                        safe_close(go[0]);
                        safe_close(go[1]);
                        for (unsigned i = 0; i < n_clients; i++) {
                                safe_close(socks[i][0]);
                                s[i] = socks[i][1];
                        }
                        _exit(scm_server_main(s, n_clients) < 0 ? EXIT_FAILURE : EXIT_SUCCESS);
                }
                for (unsigned i = 0; i < n_clients; i++)
                        socks[i][1] = safe_close(socks[i][1]);
        }

        for (unsigned i = 0; i < n_clients; i++) {
                pids[i] = fork();
                if (pids[i] < 0)
                        return negative_errno();
                if (pids[i] == 0) {
                        safe_close(ready[0]);
                        safe_close(go[1]);
                        if (paths[PATH_SCM])
                                for (unsigned j = 0; j < n_clients; j++)
                                        if (j != i)
                                                safe_close(socks[j][0]);
                        r = client_main(paths, op, i, paths[PATH_SCM] ? socks[i][0] : -EBADF, ready[1], go[0]);
                        _exit(r < 0 ? EXIT_FAILURE : EXIT_SUCCESS);
                }
        }
        if (paths[PATH_SCM])
                for (unsigned i = 0; i < n_clients; i++)
                        safe_close(socks[i][0]);
        ready[1] = safe_close(ready[1]);
        go[0] = safe_close(go[0]);

        /* Every client is connected and warm: start them all at once. */
        for (unsigned i = 0; i < n_clients; i++)
                if (read(ready[0], &byte, 1) != 1) {
                        r = -EPIPE;
                        break;
                }
        for (Path p = 0; p < _PATH_MAX; p++)
                if (paths[p] && server_pid_of(p) > 0)
                        (void) bench_task_cpu_ns(server_pid_of(p), &server_cpu0[p]);
        (void) bench_task_cpu_ns(bus_pid, &bus_cpu0);
        go[1] = safe_close(go[1]);
        safe_close(ready[0]);

        for (unsigned i = 0; i < n_clients; i++) {
                if (waitpid(pids[i], &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                        r = r < 0 ? r : -EPROTO;
        }
        for (Path p = 0; p < _PATH_MAX; p++)
                if (paths[p] && server_pid_of(p) > 0)
                        (void) bench_task_cpu_ns(server_pid_of(p), &server_cpu1[p]);
        (void) bench_task_cpu_ns(bus_pid, &bus_cpu1);
        if (server > 0 && (waitpid(server, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0))
                r = r < 0 ? r : -EPROTO;
        if (r < 0)
                return r;

        for (unsigned i = 0; i < n_clients; i++) {
                first = shared->start_ns[i] < first ? shared->start_ns[i] : first;
                last = shared->end_ns[i] > last ? shared->end_ns[i] : last;
        }
        for (Path p = 0; p < _PATH_MAX; p++) {
                uint64_t total = 0, sum = 0, server_ops = 0, *all;
                size_t k = 0;

                if (!paths[p])
                        continue;
                for (unsigned i = 0; i < n_clients; i++) {
                        total += shared->n[i][p];
                        sum += shared->sum_ns[i][p];
                }
                /* gmemd serves every gmemd path: its CPU time goes over the operations of all of them. */
                for (Path q = 0; q < _PATH_MAX; q++)
                        if (paths[q] && server_pid_of(q) == server_pid_of(p))
                                for (unsigned i = 0; i < n_clients; i++)
                                        server_ops += shared->n[i][q];
                all = malloc(sizeof(uint64_t) * (total ? total : 1));
                if (!all)
                        return -ENOMEM;
                for (unsigned i = 0; i < n_clients; i++) {
                        memcpy(all + k, samples_of(i, p), shared->n[i][p] * sizeof(uint64_t));
                        k += shared->n[i][p];
                }
                sort_u64(all, total);
                ret[p] = (Result) {
                        .mean_us = total ? (double) sum / (double) total / (double) NSEC_PER_USEC : 0,
                        .p50_us = (double) quantile_u64(all, total, 0.50) / (double) NSEC_PER_USEC,
                        .p99_us = (double) quantile_u64(all, total, 0.99) / (double) NSEC_PER_USEC,
                        .server_cpu_us = server_ops ? (double) (server_cpu1[p] - server_cpu0[p]) /
                                                      (double) server_ops / 1e3 : 0,
                        .bus_cpu_us = n_paths == 1 && total ? (double) (bus_cpu1 - bus_cpu0) / (double) total / 1e3 : 0,
                };
                if (n_paths == 1)
                        ret[p].ops_per_sec = last > first ? (double) total * (double) NSEC_PER_SEC /
                                                                    (double) (last - first) : 0;
                else
                        ret[p].ops_per_sec = ret[p].mean_us > 0 ? n_clients * 1e6 / ret[p].mean_us : 0;
                free(all);
        }
        return 0;
}

/* --- setup of gmemd and the floor server ----------------------------------- */

static int call_quiet(sd_bus *bus, const char *method, const char *types, ...) {
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
        r = sd_bus_call(bus, m, 0, &error, &reply);
        sd_bus_error_free(&error);
        return r;
}

static int call_checked(sd_bus *bus, const char *method, const char *types, ...) {
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
        r = sd_bus_call(bus, m, 0, &error, &reply);
        if (r < 0)
                fprintf(stderr, "bench-fd: %s: %s\n", method, error.message ?: strerror(-r));
        sd_bus_error_free(&error);
        return r;
}

static void teardown_gmemd(sd_bus *bus, unsigned n) {
        for (unsigned i = 0; i < n; i++) {
                char vm[32], a[32], g[32];

                (void) snprintf(vm, sizeof(vm), "bench-vm-%u", i);
                (void) snprintf(a, sizeof(a), "bench-a-%u", i);
                (void) snprintf(g, sizeof(g), "bench-g-%u", i);
                (void) call_quiet(bus, "UnregisterVm", "s", vm);
                (void) call_quiet(bus, "DestroyRegion", "s", a);
                (void) call_quiet(bus, "DestroyRegion", "s", g);
        }
}

/* VM bench-vm-I, region bench-a-I (attached and detached by the benchmark), bench-g-I (attached for GetFd). */
static int setup_gmemd(sd_bus *bus, unsigned n) {
        teardown_gmemd(bus, n);
        for (unsigned i = 0; i < n; i++) {
                char vm[32], a[32], g[32];
                int r;

                (void) snprintf(vm, sizeof(vm), "bench-vm-%u", i);
                (void) snprintf(a, sizeof(a), "bench-a-%u", i);
                (void) snprintf(g, sizeof(g), "bench-g-%u", i);
                r = call_checked(bus, "RegisterVm", "sa{sv}", vm, 0);
                if (r >= 0)
                        r = call_checked(bus, "CreateRegion", "sta{sv}", a, REGION_SIZE, 0);
                if (r >= 0)
                        r = call_checked(bus, "CreateRegion", "sta{sv}", g, REGION_SIZE, 0);
                if (r >= 0)
                        r = call_checked(bus, "Attach", "sssa{sv}", vm, g, "rw", 0);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int start_floor_server(sd_bus *bus, const char *name, bool signals, pid_t *ret) {
        pid_t pid = fork();
        int r;

        if (pid < 0)
                return negative_errno();
        if (pid == 0) {
                execl(arg_server, arg_server, name, signals ? "signals" : NULL, (char *) NULL);
                fprintf(stderr, "bench-fd: cannot run %s: %m\n", arg_server);
                _exit(127);
        }
        r = bench_wait_for_name(bus, name, 20 * USEC_PER_SEC);
        if (r < 0) {
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                return r;
        }
        *ret = pid;
        return 0;
}

/* --- the report ------------------------------------------------------------- */

static bool measured(Op op, Path p) {
        return arg_ops[op] && arg_paths[p] && !(p == PATH_FLOOR_SIGNALS && op == OP_GET_FD);
}

static double median_of(const Result *runs, unsigned n, size_t field_offset) {
        double v[RUNS_MAX];

        for (unsigned i = 0; i < n; i++)
                v[i] = *(const double *) ((const char *) &runs[i] + field_offset);
        return median_double(v, n);
}

static Result median_result(const Result *runs) {
        return (Result) {
                .ops_per_sec = median_of(runs, arg_runs, offsetof(Result, ops_per_sec)),
                .mean_us = median_of(runs, arg_runs, offsetof(Result, mean_us)),
                .p50_us = median_of(runs, arg_runs, offsetof(Result, p50_us)),
                .p99_us = median_of(runs, arg_runs, offsetof(Result, p99_us)),
                .server_cpu_us = median_of(runs, arg_runs, offsetof(Result, server_cpu_us)),
                .bus_cpu_us = median_of(runs, arg_runs, offsetof(Result, bus_cpu_us)),
        };
}

typedef Result Results[_MODE_MAX][_OP_MAX][_PATH_MAX][RUNS_MAX];

/*
 * The median across runs of a ratio taken within each run (paths of one
 * round ran seconds apart, or, interleaved, at the same time): steadier than
 * the ratio of two medians when other work comes and goes.
 * what: 0 time per operation (inverse throughput), 1 p50, 2 p99.
 */
static double paired_ratio(const Result *x, const Result *base, int what) {
        double v[RUNS_MAX];

        for (unsigned i = 0; i < arg_runs; i++)
                v[i] = what == 0 ? base[i].ops_per_sec / x[i].ops_per_sec :
                       what == 1 ? x[i].p50_us / base[i].p50_us : x[i].p99_us / base[i].p99_us;
        return median_double(v, arg_runs);
}

/* A paired ratio for a table cell, or "—" when its base path was not measured. */
static void format_ratio(char *buf, size_t size, bool have_base, const Result *x, const Result *base, int what) {
        if (have_base)
                (void) snprintf(buf, size, "%.2f×", paired_ratio(x, base, what));
        else
                (void) snprintf(buf, size, "—");
}

static void print_table(Results *res, Mode mode) {
        bool separate = mode == MODE_SEPARATE;

        printf("\n%s runs:\n\n", separate ? "Separate" : "Interleaved");
        printf("| operation | clients | path | %s | mean µs | p50 µs | p99 µs | time/op vs sd-bus floor "
               "| p50 vs floor | p99 vs floor | time/op vs SCM_RIGHTS%s |\n",
               separate ? "round trips/s" : "round trips/s (clients / mean)",
               separate ? " | server CPU µs/op | dbus-daemon CPU µs/op" : " | gmemd CPU µs/op");
        printf("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:%s|\n", separate ? "|---:" : "");
        for (Op op = 0; op < _OP_MAX; op++)
                for (size_t c = 0; c < arg_n_clients && arg_ops[op]; c++) {
                        Result med[_PATH_MAX] = {};
                        const Result *floor_runs = res[c][mode][op][PATH_FLOOR], *scm_runs = res[c][mode][op][PATH_SCM];

                        for (Path p = 0; p < _PATH_MAX; p++)
                                if (measured(op, p))
                                        med[p] = median_result(res[c][mode][op][p]);
                        for (Path p = 0; p < _PATH_MAX; p++) {
                                char cpu[32] = "—", bus_cpu[32] = "—", vs_floor[3][32], vs_scm[32];

                                if (!measured(op, p))
                                        continue;
                                if (p != PATH_SCM) {
                                        (void) snprintf(cpu, sizeof(cpu), "%.1f", med[p].server_cpu_us);
                                        (void) snprintf(bus_cpu, sizeof(bus_cpu), "%.1f", med[p].bus_cpu_us);
                                }
                                format_ratio(vs_floor[0], sizeof(vs_floor[0]), measured(op, PATH_FLOOR),
                                             res[c][mode][op][p], floor_runs, 0);
                                format_ratio(vs_floor[1], sizeof(vs_floor[1]), measured(op, PATH_FLOOR),
                                             res[c][mode][op][p], floor_runs, 1);
                                format_ratio(vs_floor[2], sizeof(vs_floor[2]), measured(op, PATH_FLOOR),
                                             res[c][mode][op][p], floor_runs, 2);
                                format_ratio(vs_scm, sizeof(vs_scm), measured(op, PATH_SCM), res[c][mode][op][p],
                                             scm_runs, 0);
                                printf("| %s | %u | %s | %.0f | %.1f | %.1f | %.1f | %s | %s | %s | %s | %s%s%s |\n",
                                       op_name[op], arg_clients[c], path_name[p], med[p].ops_per_sec, med[p].mean_us,
                                       med[p].p50_us, med[p].p99_us, vs_floor[0], vs_floor[1], vs_floor[2], vs_scm,
                                       cpu, separate ? " | " : "", separate ? bus_cpu : "");
                        }
                }
}

static void print_report(Results *res) {
        for (Mode m = 0; m < _MODE_MAX; m++)
                if (arg_modes[m])
                        print_table(res, m);

        printf("\nRatios are medians of the ratios within each run (round).\n");
        printf("\nTargets: gmemd within 1.2× of the sd-bus floor for interleaved attach+detach, within 1.5× "
               "otherwise (time per operation; three decimals, so that a ratio printed at the limit is not "
               "rounded into it).\n");
        for (Mode m = 0; m < _MODE_MAX; m++)
                for (Op op = 0; op < _OP_MAX; op++)
                        for (size_t c = 0; c < arg_n_clients; c++) {
                                double ratio, target = m == MODE_INTERLEAVED && op == OP_ATTACH_DETACH ? 1.2 : 1.5;

                                if (!arg_modes[m] || !measured(op, PATH_GMEMD) || !measured(op, PATH_FLOOR))
                                        continue;
                                ratio = paired_ratio(res[c][m][op][PATH_GMEMD], res[c][m][op][PATH_FLOOR], 0);
                                printf("  %-11s %-13s %u client%s: gmemd %.3f× the floor's time per operation "
                                       "(target ≤ %.1f×): %s\n", mode_name[m], op_name[op], arg_clients[c],
                                       arg_clients[c] == 1 ? " " : "s", ratio, target,
                                       ratio <= target ? "met" : "not met");
                        }
        if (!arg_modes[MODE_INTERLEAVED])
                return;

        printf("\nTargets of the direct socket (interleaved runs, median of the per-round ratios):\n");
        for (size_t c = 0; c < arg_n_clients; c++) {
                double ratio;

                if (!measured(OP_GET_FD, PATH_DIRECT) || !measured(OP_GET_FD, PATH_SCM))
                        break;
                ratio = paired_ratio(res[c][MODE_INTERLEAVED][OP_GET_FD][PATH_DIRECT],
                                     res[c][MODE_INTERLEAVED][OP_GET_FD][PATH_SCM], 0);
                printf("  getfd         %u client%s: gmemd-direct %.2f× the SCM_RIGHTS round trip's time per "
                       "operation (target ≤ 2×): %s\n", arg_clients[c], arg_clients[c] == 1 ? " " : "s", ratio,
                       ratio <= 2 ? "met" : "not met");
        }
        for (size_t c = 0; c < arg_n_clients; c++) {
                double ratio;

                if (!measured(OP_ATTACH_DETACH, PATH_DIRECT) || !measured(OP_ATTACH_DETACH, PATH_GMEMD))
                        break;
                /* The bus path's time per operation over the direct path's: the direct path's rate over the bus's. */
                ratio = paired_ratio(res[c][MODE_INTERLEAVED][OP_ATTACH_DETACH][PATH_GMEMD],
                                     res[c][MODE_INTERLEAVED][OP_ATTACH_DETACH][PATH_DIRECT], 0);
                printf("  attach+detach %u client%s: gmemd-direct %.2f× the rate of gmemd on the bus "
                       "(target ≥ 4×): %s\n", arg_clients[c], arg_clients[c] == 1 ? " " : "s", ratio,
                       ratio >= 4 ? "met" : "not met");
        }
        if (!measured(OP_GET_FD, PATH_DIRECT) && !measured(OP_ATTACH_DETACH, PATH_DIRECT))
                printf("  not measured (no gmemd-direct path in this run)\n");
}

static void help(void) {
        printf("Usage: bench-fd --server=PATH [OPTIONS]\n\n"
               "Benchmark 1 (fd handout): gmemd's Attach+Detach and GetFd against a trivial\n"
               "sd-bus server and a raw SCM_RIGHTS round trip. Run it under bench-env, which\n"
               "starts a private bus and gmemd and sets DBUS_SYSTEM_BUS_ADDRESS.\n\n"
               "  --server=PATH     the bench-fd-server binary (the sd-bus floor)\n"
               "  --clients=LIST    concurrent client processes, e.g. 1,8 (default)\n"
               "  --seconds=S       measured time of each run (default 2)\n"
               "  --runs=N          repeated runs; the tables show medians (default 7)\n"
               "  --mode=MODE       separate, interleaved or both (default)\n"
               "  --ops=LIST        attach+detach,getfd (default both)\n"
               "  --paths=LIST      gmemd,gmemd-direct,libgmem,floor,floor-signals,scm (default all;\n"
               "                    ratios need gmemd and floor; gmemd-direct needs\n"
               "                    $GMEM_DIRECT_SOCKET, which bench-env sets)\n");
}

static const char *const path_option[_PATH_MAX] = {
        [PATH_GMEMD] = "gmemd",
        [PATH_DIRECT] = "gmemd-direct",
        [PATH_LIBGMEM] = "libgmem",
        [PATH_FLOOR] = "floor",
        [PATH_FLOOR_SIGNALS] = "floor-signals",
        [PATH_SCM] = "scm",
};

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
                { "server",  required_argument, NULL, 's' },
                { "clients", required_argument, NULL, 'c' },
                { "seconds", required_argument, NULL, 't' },
                { "runs",    required_argument, NULL, 'r' },
                { "ops",     required_argument, NULL, 'o' },
                { "paths",   required_argument, NULL, 'p' },
                { "mode",    required_argument, NULL, 'm' },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        exit(EXIT_SUCCESS);
                case 's':
                        arg_server = optarg;
                        break;
                case 'c':
                        if (bench_parse_list(optarg, arg_clients, ELEMENTSOF(arg_clients), &arg_n_clients) < 0)
                                return -EINVAL;
                        for (size_t i = 0; i < arg_n_clients; i++)
                                if (arg_clients[i] > CLIENTS_MAX)
                                        return -EINVAL;
                        break;
                case 't':
                        arg_seconds = strtod(optarg, NULL);
                        if (!(arg_seconds > 0 && arg_seconds <= 600))
                                return -EINVAL;
                        break;
                case 'r':
                        arg_runs = (unsigned) strtoul(optarg, NULL, 10);
                        if (arg_runs < 1 || arg_runs > RUNS_MAX)
                                return -EINVAL;
                        break;
                case 'o':
                        if (parse_set(optarg, op_name, _OP_MAX, arg_ops) < 0)
                                return -EINVAL;
                        break;
                case 'p':
                        if (parse_set(optarg, path_option, _PATH_MAX, arg_paths) < 0)
                                return -EINVAL;
                        break;
                case 'm':
                        if (streq(optarg, "both"))
                                arg_modes[MODE_SEPARATE] = arg_modes[MODE_INTERLEAVED] = true;
                        else if (parse_set(optarg, mode_name, _MODE_MAX, arg_modes) < 0)
                                return -EINVAL;
                        break;
                default:
                        return -EINVAL;
                }
        if (!arg_server || optind < argc)
                return -EINVAL;
        return 0;
}

int main(int argc, char **argv) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        Results *res;
        unsigned max_clients = 0;
        int r;

        if (parse_argv(argc, argv) < 0) {
                fprintf(stderr, "bench-fd: bad arguments (--help)\n");
                return 2;
        }
        for (size_t i = 0; i < arg_n_clients; i++)
                max_clients = arg_clients[i] > max_clients ? arg_clients[i] : max_clients;

        /* A client may not outrun its latency array: size it for ~1 µs per operation. */
        if ((double) arg_max_samples < arg_seconds * 1e6)
                arg_max_samples = (size_t) (arg_seconds * 1e6);
        shared = mmap(NULL, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        samples = mmap(NULL, sizeof(uint64_t) * arg_max_samples * _PATH_MAX * max_clients, PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        res = calloc(arg_n_clients, sizeof(*res));
        if (shared == MAP_FAILED || samples == MAP_FAILED || !res) {
                perror("bench-fd");
                return EXIT_FAILURE;
        }

        direct_missing = arg_paths[PATH_DIRECT];
        r = bench_find_gmemd("bench-fd", &arg_paths[PATH_DIRECT], &bus, &gmemd_pid, &bus_pid);
        if (r > 0)
                return r;
        direct_missing = direct_missing && !arg_paths[PATH_DIRECT];
        r = setup_gmemd(bus, max_clients);
        if (r >= 0)
                r = start_floor_server(bus, FLOOR_BUS_NAME, false, &floor_pid);
        if (r >= 0)
                r = start_floor_server(bus, FLOOR_SIGNALS_BUS_NAME, true, &floor_signals_pid);
        if (r < 0) {
                fprintf(stderr, "bench-fd: setup failed: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }

        printf("# Benchmark 1: fd handout\n");
        bench_print_machine();
        bench_print_command(argc, argv);
        bench_print_load("at the start");
        if (direct_missing)
                printf("no gmemd-direct path: $GMEM_DIRECT_SOCKET is not set (gmemd without --direct-socket?)\n");
        printf("runs: %u of %.1f s per kind (%s%s%s), operation, client count (and path, for separate runs), one "
               "after the other in each round; %u warm-up operations per client and path before the clock starts "
               "(steady state: the per-connection credential lookup is done)\n", arg_runs, arg_seconds,
               arg_modes[MODE_SEPARATE] ? "separate" : "", arg_modes[MODE_SEPARATE] && arg_modes[MODE_INTERLEAVED] ?
               ", " : "", arg_modes[MODE_INTERLEAVED] ? "interleaved" : "", WARMUP_OPS);
        fflush(stdout);

        for (unsigned run = 0; run < arg_runs && r >= 0; run++)
                for (size_t c = 0; c < arg_n_clients && r >= 0; c++)
                        for (Op op = 0; op < _OP_MAX && r >= 0; op++)
                                for (Mode m = 0; m < _MODE_MAX && r >= 0; m++) {
                                        Result x[_PATH_MAX] = {};

                                        if (!arg_ops[op] || !arg_modes[m])
                                                continue;
                                        /* Separate: one run per path. Interleaved: one run with all of them. */
                                        for (Path p = 0; p < _PATH_MAX && r >= 0; p++) {
                                                bool paths[_PATH_MAX] = {};

                                                if (m == MODE_SEPARATE) {
                                                        if (!measured(op, p))
                                                                continue;
                                                        paths[p] = true;
                                                } else {
                                                        if (p > 0)
                                                                break;
                                                        for (Path q = 0; q < _PATH_MAX; q++)
                                                                paths[q] = measured(op, q);
                                                }
                                                r = run_one(paths, op, arg_clients[c], x);
                                                if (r < 0)
                                                        fprintf(stderr, "bench-fd: %s run, %s, %u clients: %s\n",
                                                                mode_name[m], op_name[op], arg_clients[c],
                                                                strerror(-r));
                                        }
                                        for (Path p = 0; p < _PATH_MAX && r >= 0; p++) {
                                                if (!measured(op, p))
                                                        continue;
                                                res[c][m][op][p][run] = x[p];
                                                fprintf(stderr, "run %u %-11s %-13s %u clients %-13s %9.0f/s mean "
                                                        "%7.1f µs p50 %7.1f µs p99 %7.1f µs\n", run + 1, mode_name[m],
                                                        op_name[op], arg_clients[c], path_name[p], x[p].ops_per_sec,
                                                        x[p].mean_us, x[p].p50_us, x[p].p99_us);
                                        }
                                }

        for (size_t i = 0; i < 2; i++) {
                pid_t pid = i == 0 ? floor_pid : floor_signals_pid;

                if (pid > 0) {
                        (void) kill(pid, SIGTERM);
                        (void) waitpid(pid, NULL, 0);
                }
        }
        teardown_gmemd(bus, max_clients);
        if (r < 0)
                return EXIT_FAILURE;

        bench_print_load("at the end");
        print_report(res);
        free(res);
        return EXIT_SUCCESS;
}
