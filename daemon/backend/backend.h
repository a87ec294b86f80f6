/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * backend.h — where a region's memory comes from.
 *
 * A backend is a small table of operations on a region's inode: create it,
 * open a new view file on it (with access, window, allocate right and, for a
 * migration target, pending), activate and revoke a view, punch or
 * pre-fault a range, set and read memory attributes, report what the region
 * holds. The model (region.c, view.c, migration.c) calls only this table,
 * at every place a view changes state, so adding a backend touches neither
 * the model nor the D-Bus layer.
 *
 * A backend says what it enforces (BackendOps.guarantees): what it does not
 * enforce is the broker's bookkeeping only, and gmemd(8) says so. An
 * operation a backend cannot do at all is NULL and the caller reports
 * NotSupported; an activate or revoke that is NULL is bookkeeping (the
 * memfd family: the kernel cannot take back a file a process holds). A
 * backend never pretends.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

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
        dev_t dev;              /* the master's inode, once backend_region_note_inode() read it; ino 0: not yet */
        ino_t ino;
} BackendRegion;

/* What a new view file is to be: the kernel enforces what the backend's guarantees say. */
typedef struct BackendViewSpec {
        ViewAccess access;
        uint64_t offset, length;        /* window into the region */
        bool allocate;                  /* may punch holes and allocate */
        bool pending;                   /* unusable until activated (a migration target) */
        uint64_t tag;                   /* gmemd's id of the view, which a backend that keeps views labels them with */
} BackendViewSpec;

/* A view file the backend made: the fd and, where the kernel names views, its id there. */
typedef struct BackendView {
        int fd;
        uint64_t id;                    /* 0: the backend does not name views */
} BackendView;

/* What a region holds now. */
typedef struct BackendRegionInfo {
        uint64_t allocated;             /* bytes backed by memory */
        uint64_t private_bytes;         /* bytes of private pages (0 without private memory) */
} BackendRegionInfo;

/* What a backend enforces in the kernel; anything else it offers is bookkeeping. */
typedef enum BackendGuarantee {
        BACKEND_ENFORCES_ACCESS   = 1U << 0,    /* a read-only view cannot be made to write, even re-opened */
        BACKEND_ENFORCES_WINDOW   = 1U << 1,    /* a view reaches only its window */
        BACKEND_ENFORCES_ALLOCATE = 1U << 2,    /* only views with the allocate right punch or allocate */
        BACKEND_ENFORCES_REVOKE   = 1U << 3,    /* a revoked view faults (SIGBUS) and fails (EIO) */
        BACKEND_ENFORCES_PENDING  = 1U << 4,    /* a pending view faults until it is activated */
        BACKEND_PRIVATE_MEMORY    = 1U << 5,    /* private pages no view can fault or read */
        BACKEND_OUTLIVES_DAEMON   = 1U << 6,    /* regions live on without gmemd and without an fd store */
} BackendGuarantee;

typedef struct BackendCreateParams {
        const char *name;       /* region name, for the inode's label */
        uint64_t size;
        uint64_t page_size;     /* 0: the backend's default */
        bool populate;
} BackendCreateParams;

/* Why a backend cannot do what a NULL operation or a false flag says; NULL: the generic message. */
typedef struct BackendWhy {
        const char *create;             /* create is NULL */
        const char *read_only;          /* read_only_views is false */
        const char *second_view;        /* one_view is true */
        const char *attributes;         /* set_attributes is NULL */
} BackendWhy;

typedef struct BackendOps {
        BackendType type;
        /* 0 if usable here; otherwise -errno with the reason in e (BackendUnavailable). */
        int (*probe)(GmemError *e);
        /* The granule a size must be a multiple of, given the requested page size (0: default). */
        int (*page_size)(uint64_t requested, uint64_t *ret, GmemError *e);
        /*
         * Creates the inode; on failure nothing is left behind. NULL: the
         * backend's regions are adopted from a client (custody), never made.
         */
        int (*create)(const BackendCreateParams *p, BackendRegion *ret, GmemError *e);
        /*
         * Ends the region where closing gmemd's fds would not (the kernel
         * keeps kmod regions until told), before the region is dropped from
         * the records; on failure the region stays as it was. NULL: closing
         * is enough.
         */
        int (*destroy)(const BackendRegion *br, GmemError *e);
        /*
         * Gives a destroyed region's memory back to the host even while a
         * process still holds a view file (a memfd keeps its pages until the
         * last one is closed): called once the region is dropped from the
         * records, so that a crash in between cannot leave a region that
         * still exists with its content gone. NULL: the backend cannot
         * (secret: its memory lasts as long as a process holds the file).
         */
        int (*free_memory)(const BackendRegion *br, GmemError *e);
        /*
         * Restoring (from the fd store or the kernel), or taking custody of
         * a client's file (custody): whether fd is this backend's region
         * called name; fills ret (taking no ownership of fd: the caller puts
         * it, or a duplicate, in ret->fd on success).
         */
        int (*adopt_region)(const char *name, int fd, uint64_t page_size, BackendRegion *ret, GmemError *e);
        /*
         * Whether fd is a view of br that spec describes (access, window,
         * allocate right, pending); fills ret with the view's id.
         */
        int (*adopt_view)(const BackendRegion *br, int fd, const BackendViewSpec *spec, BackendView *ret,
                          GmemError *e);
        /* Returns a new open file on the inode as spec says (O_CLOEXEC); what is not enforced is ignored. */
        int (*open_view)(const BackendRegion *br, const BackendViewSpec *spec, BackendView *ret, GmemError *e);
        /* pending -> active, and -> revoked (at once, for good). NULL: bookkeeping only. */
        int (*activate_view)(const BackendRegion *br, const BackendView *v, GmemError *e);
        int (*revoke_view)(const BackendRegion *br, const BackendView *v, GmemError *e);
        int (*discard)(const BackendRegion *br, uint64_t offset, uint64_t length, GmemError *e);
        int (*allocate)(const BackendRegion *br, uint64_t offset, uint64_t length, GmemError *e);
        int (*set_attributes)(const BackendRegion *br, uint64_t offset, uint64_t length,
                              MemoryAttribute attr, GmemError *e);
        /*
         * The attribute of the page at offset, and in *ret_length how many
         * bytes from offset (at most length) share it.
         */
        int (*get_attributes)(const BackendRegion *br, uint64_t offset, uint64_t length, MemoryAttribute *ret,
                              uint64_t *ret_length, GmemError *e);
        int (*info)(const BackendRegion *br, BackendRegionInfo *ret);
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
        /* At most one VM has a live view of a region (the view is the master file, and no other exists). */
        bool one_view;
        /* Regions come from clients' files with AdoptRegion (adopt_region checks them). */
        bool custody;
        BackendWhy why;
        /* BackendGuarantee bits. */
        unsigned guarantees;
} BackendOps;

static inline bool backend_enforces(const BackendOps *ops, BackendGuarantee g) {
        return ops && (ops->guarantees & g);
}

extern const BackendOps backend_memfd_ops;
extern const BackendOps backend_hugetlb_ops;
extern const BackendOps backend_secret_ops;
extern const BackendOps backend_kmod_ops;
extern const BackendOps backend_guest_memfd_ops;

const BackendOps *backend_get(BackendType t);
/*
 * Who gives an inode to another uid (the owner helper of gmemd, which holds
 * no CAP_CHOWN itself): returns 0 or -errno, -EOPNOTSUPP when nobody can.
 */
typedef int (*BackendOwnerHook)(int fd, uint32_t uid, unsigned mode);
void backend_set_owner_hook(BackendOwnerHook hook);
int backend_give_inode(int fd, uint32_t uid, unsigned mode);
bool backend_can_give_inode(void);
/* Closes the master fd; accepts a zeroed or already released region. */
void backend_region_release(BackendRegion *br);
