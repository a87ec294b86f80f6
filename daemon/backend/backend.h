/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * backend.h — where a region's memory comes from.
 *
 * A backend is a small table of operations on a region's inode: create it,
 * open a new view file on it with some access, punch or pre-fault a range,
 * change memory attributes, report allocated bytes. The model (region.c,
 * view.c) calls only this table, so adding a backend touches neither the
 * model nor the D-Bus layer. An operation a backend cannot do is NULL and
 * the caller reports NotSupported; a backend never pretends.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "gmem-errors.h"
#include "wire.h"


/* Access a uid is granted on the inode itself, for re-opening a view through /proc/self/fd. */
typedef struct BackendGrant {
        uint32_t uid;
        ViewAccess access;
} BackendGrant;

/* The backend's handle on one region's inode. */
typedef struct BackendRegion {
        int fd;                 /* master fd, O_RDWR, owned by the region */
        uint64_t size;
        uint64_t page_size;     /* granule of sizes and ranges */
} BackendRegion;

typedef struct BackendCreateParams {
        const char *name;       /* region name, for the inode's label */
        uint64_t size;
        uint64_t page_size;     /* 0: the backend's default */
        bool populate;
} BackendCreateParams;

typedef struct BackendOps {
        BackendType type;
        /* 0 if usable here; otherwise -errno with the reason in e (BackendUnavailable). */
        int (*probe)(GmemError *e);
        /* The granule a size must be a multiple of, given the requested page size (0: default). */
        int (*page_size)(uint64_t requested, uint64_t *ret, GmemError *e);
        /* Creates the inode; on failure nothing is left behind. */
        int (*create)(const BackendCreateParams *p, BackendRegion *ret, GmemError *e);
        /* Returns a new open file on the inode with the given access (O_CLOEXEC). */
        int (*open_view)(const BackendRegion *br, ViewAccess access, int *ret_fd, GmemError *e);
        int (*discard)(const BackendRegion *br, uint64_t offset, uint64_t length, GmemError *e);
        int (*allocate)(const BackendRegion *br, uint64_t offset, uint64_t length, GmemError *e);
        int (*set_attributes)(const BackendRegion *br, uint64_t offset, uint64_t length,
                              MemoryAttribute attr, GmemError *e);
        int (*allocated_bytes)(const BackendRegion *br, uint64_t *ret);
        /*
         * Replaces the per-uid grants on the inode (grants sorted by uid, no
         * duplicates). NULL: the inode cannot carry grants; views can only be
         * used through the fd handed out, not re-opened by an unprivileged uid.
         */
        int (*set_grants)(const BackendRegion *br, const BackendGrant *grants, size_t n, GmemError *e);
        /* Whether a view may be read-only. */
        bool read_only_views;
        /* Views are the master file itself (secret): not a file of their own to keep or compare. */
        bool views_share_master;
} BackendOps;

extern const BackendOps backend_memfd_ops;
extern const BackendOps backend_hugetlb_ops;
extern const BackendOps backend_secret_ops;

const BackendOps *backend_get(BackendType t);
/* Closes the master fd; accepts a zeroed or already released region. */
void backend_region_release(BackendRegion *br);
