/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * region.h — a region is one guest-memory inode owned by the broker: the
 * storage every VM's view maps. It outlives the processes that use it and
 * goes away only when destroyed with no live view.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "backend.h"
#include "manager.h"
#include "usage.h"

/* Regions are at most 2^46 bytes (64 TiB), the x86-64 4-level physical address space. */
#define REGION_SIZE_MAX (UINT64_C(1) << 46)

struct Region {
        Manager *manager;
        char *name;
        uint64_t id;
        BackendType backend;
        const BackendOps *ops;
        BackendRegion br;           /* master fd, size, page size */
        char *owner;                /* VM name that may allocate, NULL if none */
        Hashmap *views;             /* VM name -> View */
        bool has_grants;            /* the inode carries an access list now */
        bool grants_stale;          /* its views changed: queued in manager->grants_queue */
        Region *grants_prev, *grants_next;
        uid_t creator;              /* its tenant */
        UsageCharge charge;         /* its bytes and itself, against the creator's quotas */
        /*
         * What region_allocated_bytes() last read, exact without asking the
         * kernel again while no file of the inode has left gmemd (it was made
         * here and has never had a view): then only gmemd changes what is
         * allocated, and marks it stale when it does.
         */
        bool allocated_private;
        bool allocated_stale;
        uint64_t allocated;
        int spare_fd;               /* a read-write view file opened ahead (region-spare.h), or -EBADF */
        bool spare_wanted;          /* in manager->spare_queue */
        Region *spare_prev, *spare_next;
};

typedef struct RegionParams {
        const char *name;
        uint64_t size;
        BackendType backend;
        uint64_t hugepage_size;     /* 0: backend default */
        bool populate;
        const char *owner;          /* NULL or "" for none */
} RegionParams;

/*
 * Checks the actor's rules for p (the backends and the largest region its
 * class allows) and its quotas, and charges one region and p->size bytes in
 * the same step: *ret is the charge region_create() takes. Nothing is
 * charged on failure.
 */
int region_reserve(Manager *m, const RegionParams *p, const Actor *a, UsageCharge *ret, GmemError *e);
/*
 * Validates everything, then creates the inode. Takes *reserved over (the
 * charge region_reserve() made; a region cannot be made without one), also
 * on failure: then it is released and nothing is left.
 */
int region_create(Manager *m, const RegionParams *p, UsageCharge *reserved, Region **ret, GmemError *e);
/*
 * Rebuilds a region around an existing inode (restored from the fd store):
 * p names it, a is its creator (charged as region_create() charges), fd is
 * its master file (taken over, also on failure), id its id.
 */
int region_adopt(Manager *m, const RegionParams *p, const Actor *a, uint64_t id, uint64_t page_size, int fd,
                 Region **ret, GmemError *e);
/*
 * Takes custody of a client's file as a new region (a backend with
 * custody: guest_memfd): the backend checks what fd is and says its size,
 * which is set in p->size, checked against the actor's rules and quotas and
 * charged; then the region keeps a duplicate of fd (the caller keeps fd,
 * and closes it). Nothing is kept or charged on failure.
 */
int region_take(Manager *m, RegionParams *p, const Actor *a, int fd, Region **ret, GmemError *e);
/* Busy if a view is active or pending; revoked views go with the region. */
int region_destroy(Region *reg, GmemError *e);
/* Frees unconditionally (teardown); drops the region's views. */
Region *region_free(Region *reg);

int region_discard(Region *reg, uint64_t offset, uint64_t length, GmemError *e);
int region_allocate(Region *reg, uint64_t offset, uint64_t length, GmemError *e);
int region_set_attributes(Region *reg, uint64_t offset, uint64_t length, const char *attribute, GmemError *e);

/* One run of pages with the same memory attribute. */
typedef struct RegionAttributeRun {
        uint64_t offset, length;
        MemoryAttribute attribute;
} RegionAttributeRun;

/* The most runs one answer holds: a range with more is InvalidRange, asking for a smaller one. */
#define REGION_ATTRIBUTE_RUNS_MAX 4096

/*
 * The memory attributes of a range, as runs of pages that share one, in
 * order. NotSupported where the backend cannot say.
 */
int region_get_attributes(Region *reg, uint64_t offset, uint64_t length, RegionAttributeRun **ret, size_t *ret_n,
                          GmemError *e);
/* What the backend says the region holds now (allocated and private bytes). */
int region_info(Region *reg, BackendRegionInfo *ret);
int region_allocated_bytes(Region *reg, uint64_t *ret);
/* A file of reg's inode is about to leave gmemd (a view): what is allocated can change at any time now. */
void region_exposed(Region *reg);
/*
 * The per-uid grants on the inode follow the live views: each VM uid gets
 * the highest access of its active or pending views. Linking or unlinking a
 * view only marks them stale (and queues the region on its manager); they
 * are recomputed once, at the end of the model operation, by
 * region_sync_grants() or manager_sync_grants(). e may be NULL.
 */
void region_grants_stale(Region *reg);
int region_sync_grants(Region *reg, GmemError *e);
/* Number of views in a state other than revoked. */
unsigned region_live_views(Region *reg);
