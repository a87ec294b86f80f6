/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-util.h — what every benchmark program shares: a monotonic clock in
 * nanoseconds, order statistics (percentiles of one run, the median across
 * repeated runs), the bus connection, the direct connection to gmemd's own
 * socket, the daemon's pid, RSS and CPU time, and the
 * lines that say on which machine and with which command a table was made.
 * Benchmarks report figures; they never pass or fail on them.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

#include "macro.h"

#define NSEC_PER_USEC UINT64_C(1000)
#define NSEC_PER_SEC UINT64_C(1000000000)
#define USEC_PER_SEC UINT64_C(1000000)
#define GIB (UINT64_C(1) << 30)
#define MIB (UINT64_C(1) << 20)

#define GMEMD_BUS_NAME "org.gmemd.Broker1"
#define GMEMD_PATH "/org/gmemd/Broker1"
#define GMEMD_MANAGER_IFACE "org.gmemd.Broker1.Manager"

/* Exit status that meson reads as "skipped". */
#define EXIT_SKIP 77


uint64_t now_ns(void);

/* Sorts v ascending. */
void sort_u64(uint64_t *v, size_t n);
/* The p-quantile (0 <= p <= 1) of an ascending array, nearest rank; 0 if n == 0. */
uint64_t quantile_u64(const uint64_t *sorted, size_t n, double p);
/* The median of v (sorted in place). */
double median_double(double *v, size_t n);

/* The system bus, which $DBUS_SYSTEM_BUS_ADDRESS points at the private one. */
int bench_bus_open(sd_bus **ret);
/* Waits until name has an owner on the bus; -ETIMEDOUT after timeout_usec. */
int bench_wait_for_name(sd_bus *bus, const char *name, uint64_t timeout_usec);
/* The pid of the connection that owns name, as the bus reports it. */
int bench_name_pid(sd_bus *bus, const char *name, pid_t *ret);

/* gmemd's direct socket as bench-env exported it ($GMEM_DIRECT_SOCKET), or NULL if it did not. */
const char *bench_direct_socket(void);
/*
 * A peer-to-peer connection to gmemd's direct socket: no bus, no Hello, no
 * names; fd passing negotiated. -ENXIO if there is no direct socket.
 */
int bench_direct_open(sd_bus **ret);
/* Waits until the direct socket answers a Peer.Ping; -ETIMEDOUT after timeout_usec. */
int bench_wait_for_direct(uint64_t timeout_usec);

/*
 * What the benchmarks find first under bench-env: the bus, gmemd on it, its
 * direct socket answering if direct is not NULL and *direct (cleared, with
 * a line on stderr, when bench-env exported none), the pid of gmemd, and
 * that of the bus if ret_bus_pid is not NULL. 0, or the exit status to end
 * with (EXIT_SKIP outside bench-env, EXIT_FAILURE), having said why; prog
 * names the benchmark in messages.
 */
int bench_find_gmemd(const char *prog, bool *direct, sd_bus **ret_bus, pid_t *ret_gmemd, pid_t *ret_bus_pid);

/* VmRSS of pid in KiB, from /proc/PID/status. */
int bench_vmrss_kib(pid_t pid, uint64_t *ret);
/* CPU time a task has run, in ns (/proc/PID/schedstat; pid 0: the calling thread). */
int bench_task_cpu_ns(pid_t pid, uint64_t *ret);
/* A "Key:  N kB" line of /proc/meminfo, in KiB. */
int bench_meminfo_kib(const char *key, uint64_t *ret);

/* Parses a comma-separated list of positive integers ("1,8"); at most max entries. */
int bench_parse_list(const char *s, unsigned *ret, size_t max, size_t *ret_n);

/* "machine: 2 CPUs (model), 23.4 GiB RAM, Linux 6.1.0 x86_64" */
void bench_print_machine(void);
/* "load: 1.23 0.80 0.52 (/proc/loadavg)": other work on the machine disturbs the figures. */
void bench_print_load(const char *when);
/* "command: ..." with argv as given (shell-quoted where needed). */
void bench_print_command(int argc, char **argv);
