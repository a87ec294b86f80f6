/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * memcg.h — how much memory gmemd's memory cgroup still lets it charge.
 * Region pages are charged to gmemd, usually the only task in its cgroup:
 * populating past the limit with the cgroup's OOM killer on (always on
 * cgroup v2) would kill gmemd and every region only it holds. Without a
 * limit, or below a limit larger than the host, populating past what the
 * host has would push the host into its OOM killer instead, which picks the
 * largest process: often a hypervisor, or gmemd. Populate and Allocate
 * therefore compare the request with what is left of both first.
 */
#pragma once

#include <stdint.h>

/* Kept free below the limit for gmemd itself (its heap, page tables, the bus's buffers). */
#define MEMCG_MARGIN (16ULL << 20)
/* Kept free of MemAvailable for the rest of the host (its page cache, its processes, other tenants). */
#define MEMCG_HOST_RESERVE (256ULL << 20)

typedef struct MemcgHeadroom {
        uint64_t left;          /* bytes chargeable before the nearest limit; UINT64_MAX: none */
        uint64_t limit;         /* that limit */
        char path[256];         /* the cgroup whose limit it is, as /proc/self/cgroup names it */
} MemcgHeadroom;

/*
 * Fills *ret from /proc/self/cgroup and the cgroup file system (v2
 * memory.max/memory.current, v1 memory.limit_in_bytes/usage_in_bytes),
 * taking the smallest headroom of the cgroup and its ancestors. A cgroup
 * that cannot be read counts as unlimited. root overrides the cgroup
 * file system's mount point (NULL: /sys/fs/cgroup), proc_cgroup the
 * /proc/self/cgroup file, for tests.
 */
int memcg_headroom(const char *root, const char *proc_cgroup, MemcgHeadroom *ret);

typedef struct HostMemory {
        uint64_t available;     /* MemAvailable: what the host can give without swapping */
        uint64_t total;         /* MemTotal */
} HostMemory;

/*
 * Fills *ret from /proc/meminfo (meminfo overrides the path, for tests);
 * -ENOENT if the file lacks MemAvailable (kernels before 3.14).
 */
int memcg_host_memory(const char *meminfo, HostMemory *ret);
