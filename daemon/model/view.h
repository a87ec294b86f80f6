/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * view.h — a view is one VM's open file on one region's inode, with its own
 * access and window. A view is named by its (VM, region) pair: at most one
 * per pair. The broker keeps the view's file in custody, so the same view can
 * be handed out again (GetFd) after the hypervisor restarts.
 *
 * States: active (in use), pending (made for a migration target, not yet
 * committed), revoked (taken back: the custody file is closed and the view
 * is never handed out again). On the memfd family these states are the
 * broker's bookkeeping; the kernel cannot take back an fd a process holds.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "backend.h"
#include "manager.h"
#include "usage.h"

struct View {
        uint64_t id;                /* stable across restarts */
        Vm *vm;                     /* both set while linked (view.c: view_link()) */
        Region *region;
        ViewAccess access;
        uint64_t offset, length;    /* window into the region */
        bool may_allocate;
        ViewState state;
        int fd;                     /* custody copy; -EBADF once revoked */
        uint64_t backend_id;        /* the view's id in the kernel, where the backend names views (0: none) */
        Migration *migration;       /* set while part of a prepared migration */
        uid_t creator;              /* its tenant */
        UsageCharge charge;         /* one view, against the creator's quota */
};

typedef struct ViewParams {
        ViewAccess access;
        bool has_offset, has_length;
        uint64_t offset, length;    /* default: the whole region */
        bool allocate;
} ViewParams;

/*
 * Checks a's quota of views and charges one view in the same step, unless
 * vm has a live view of reg already (asking again for it is free): *ret is
 * the charge view_attach() takes.
 */
int view_reserve(Vm *vm, Region *reg, const Actor *a, UsageCharge *ret, GmemError *e);
/*
 * Gives vm a view of reg, taking *reserved over (the charge view_reserve()
 * made), also on failure. If vm has a live view of reg with the same access
 * and window, that view is returned (*ret_existing = true); with different
 * ones, Busy. Otherwise a new view holds the charge (a revoked view of the
 * pair is replaced).
 */
int view_attach(Vm *vm, Region *reg, const ViewParams *p, UsageCharge *reserved, View **ret, bool *ret_existing,
                GmemError *e);
/*
 * A pending view for a migration target, copying access and window of
 * source; it takes one view of *charge (a migration's reservation).
 */
int view_new_pending(Vm *vm, const View *source, UsageCharge *charge, View **ret, GmemError *e);
/* Drops the view of (vm, region); MigrationInProgress while in a migration. */
int view_detach(View *v, GmemError *e);
/* The custody fd (borrowed) for handing out again; NoSuchView if revoked. */
int view_get_fd(View *v, int *ret_fd, GmemError *e);
/*
 * Rebuilds a view restored from the fd store, charged to a: fd is its
 * custody file (taken over, also on failure), -EBADF for a revoked view.
 * The region's grants are left stale: the restore syncs them once, when
 * every view is back (manager_sync_grants()).
 */
typedef struct ViewAdopt {
        uint64_t id;
        ViewAccess access;
        uint64_t offset, length;
        bool may_allocate;
        ViewState state;
        int fd;
} ViewAdopt;
int view_adopt(Vm *vm, Region *reg, const ViewAdopt *va, const Actor *a, View **ret, GmemError *e);
/*
 * State changes, made in the backend (activate_view, revoke_view: the kernel
 * enforces them where the backend's guarantees say so, and they are the
 * broker's bookkeeping elsewhere), then announced. An enforcing backend
 * refuses them only for a view it revoked already or a region it destroyed,
 * where nothing is left to take back, so the bookkeeping follows either
 * way. Revoking syncs the region's grants before it announces: whoever hears
 * that a view is revoked (the fd store first) may rely on its uid's right to
 * re-open the inode being gone already.
 */
void view_activate(View *v);
void view_revoke(View *v);
/*
 * Drops a view for good: takes its access back in the backend (as revoking
 * does), frees it, syncs its region's grants, then announces the change, in
 * that order for the same reason.
 */
void view_remove(View *v);
/*
 * Unlinks the view from its VM and region, closes its file, gives back its
 * charge; announces nothing and leaves the region's grants stale (for
 * teardown, and for the paths that sync and announce themselves).
 */
View *view_free(View *v);

View *view_lookup(Vm *vm, Region *reg);
