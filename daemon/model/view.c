/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * view.c — making, handing out, revoking and dropping views.
 *
 * A view is linked from both sides, vm->views (by region name) and
 * reg->views (by VM name), so "the views of a VM" and "the views of a
 * region" are both O(1) to look up and cheap to list. view_link() and
 * view_unlink() are the only places that touch those two tables; they are
 * pure graph operations that mark the region's grants stale and leave the
 * recomputing to the end of the operation (region.h). Every new view, made
 * for a caller or restored from the fd store, goes through view_insert().
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend-util.h"
#include "region-spare.h"
#include "log.h"
#include "migration.h"
#include "parse.h"
#include "region.h"
#include "view.h"
#include "vm.h"

View *view_lookup(Vm *vm, Region *reg) {
        return hashmap_get(vm->views, reg->name);
}

/* --- the graph: the only two functions that edit vm->views and reg->views --- */

static int view_link(View *v, Vm *vm, Region *reg) {
        int r;

        r = hashmap_put(vm->views, reg->name, v);
        if (r < 0)
                return r;
        r = hashmap_put(reg->views, vm->name, v);
        if (r < 0) {
                hashmap_remove(vm->views, reg->name);
                return r;
        }
        v->vm = vm;
        v->region = reg;
        if (v->fd >= 0)
                vm->manager->n_view_fds++;
        region_grants_stale(reg);
        return 0;
}

static void view_unlink(View *v) {
        Vm *vm = v->vm;
        Region *reg = v->region;

        if (!vm || !reg)
                return;
        (void) hashmap_remove_value(vm->views, reg->name, v);
        (void) hashmap_remove_value(reg->views, vm->name, v);
        if (v->fd >= 0)
                vm->manager->n_view_fds--;
        region_grants_stale(reg);
        v->vm = NULL;
        v->region = NULL;
}

/* Closes the custody file, keeping the manager's count of open view files right. */
static void view_close_file(View *v) {
        if (v->fd >= 0 && v->vm)
                v->vm->manager->n_view_fds--;
        v->fd = safe_close(v->fd);
}

/* view_close_file() of a view already unlinked from reg: a memfd view's file is closed when gmemd is idle. */
static void view_close_file_later(View *v, Region *reg) {
        if (reg && reg->backend == BACKEND_MEMFD && reg->manager)
                manager_close_later(reg->manager, TAKE_FD(v->fd));
        else
                v->fd = safe_close(v->fd);
}

View *view_free(View *v) {
        Region *reg;

        if (!v)
                return NULL;
        reg = v->region;
        view_unlink(v);
        view_close_file_later(v, reg);
        usage_charge_release(&v->charge);
        free(v);
        return NULL;
}

/* The backend's handle on a view's file. */
static BackendView view_backend(const View *v) {
        return (BackendView) { .fd = v->fd, .id = v->backend_id };
}

/*
 * Takes the view's access back in the backend, where it enforces revocation:
 * a process still mapping the view faults from now on. Closing the custody
 * file would not: other processes hold files of their own.
 */
static void view_revoke_backend(View *v) {
        const BackendOps *ops = v->region->ops;
        BackendView bv = view_backend(v);

        GmemError e = GMEM_ERROR_INIT;

        if (v->state == VIEW_STATE_REVOKED || v->fd < 0 || !ops->revoke_view)
                return;
        /* The view goes from the model whatever the kernel says; what it could not do is told. */
        if (ops->revoke_view(&v->region->br, &bv, &e) < 0)
                log_warning("View %" PRIu64 " of region '%s' for VM '%s' is revoked, but not all of it: %s", v->id,
                            v->region->name, v->vm ? v->vm->name : "-", e.message);
}

void view_remove(View *v) {
        Vm *vm;
        Region *reg;

        if (!v)
                return;
        vm = v->vm;
        reg = v->region;
        view_revoke_backend(v);
        view_free(v);
        (void) region_sync_grants(reg, NULL);
        manager_notify_views_changed(vm->manager, vm, reg);
}

/*
 * A new view like proto, linked into vm and reg. On success it has taken
 * *fd and *charge over; on failure both are left to the caller and nothing
 * is linked. The region's grants are stale afterwards either way.
 */
static int view_insert(Vm *vm, Region *reg, const View *proto, int *fd, UsageCharge *charge, View **ret,
                       GmemError *e) {
        View *v;
        int r;

        v = malloc(sizeof(*v));
        if (!v)
                return gmem_error_set_errno(e, ENOMEM, "Cannot allocate view");
        *v = *proto;
        v->vm = NULL;
        v->region = NULL;
        v->migration = NULL;
        v->charge = (UsageCharge) {};
        v->fd = *fd;

        r = view_link(v, vm, reg);
        if (r < 0) {
                free(v);
                return gmem_error_set_errno(e, r, "Cannot index view");
        }
        *fd = -EBADF;
        v->charge = usage_charge_take(charge);
        *ret = v;
        return 0;
}

/*
 * Opens a view file on the inode and inserts a view for it. The grants of
 * reg are synced before returning: a uid the kernel cannot grant access to
 * means no view, and the region's grants are back as they were.
 */
static int view_create(Vm *vm, Region *reg, const View *proto, UsageCharge *charge, View **ret, GmemError *e) {
        _cleanup_close_ int fd = -EBADF;
        BackendView bv = { .fd = -EBADF };
        View *v;
        int r;

        region_exposed(reg);
        r = region_spare_fits(reg, proto->access) ? region_spare_take(reg, &bv) : 0;
        if (r == 0)
                r = reg->ops->open_view(&reg->br, &(BackendViewSpec) {
                                                .access = proto->access,
                                                .offset = proto->offset,
                                                .length = proto->length,
                                                .allocate = proto->may_allocate,
                                                .pending = proto->state == VIEW_STATE_PENDING,
                                                .tag = proto->id,
                                        }, &bv, e);
        if (r < 0)
                return r;
        fd = bv.fd;
        r = view_insert(vm, reg, proto, &fd, charge, &v, e);
        if (r < 0) {
                /* The kernel's view goes with the file where nothing else holds it; revoke it all the same. */
                if (reg->ops->revoke_view)
                        (void) reg->ops->revoke_view(&reg->br, &bv, NULL);
                /* Opening may have changed what the inode grants (hugetlb takes it back): put that right. */
                region_grants_stale(reg);
                (void) region_sync_grants(reg, NULL);
                return r;
        }
        v->backend_id = bv.id;
        r = region_sync_grants(reg, e);
        if (r < 0) {
                view_revoke_backend(v);
                view_free(v);
                (void) region_sync_grants(reg, NULL);
                return r;
        }
        manager_notify_views_changed(vm->manager, vm, reg);
        if (region_spare_fits(reg, proto->access))
                region_spare_want(reg);         /* for the next one */
        *ret = v;
        return 0;
}

/* A backend whose regions have one view: NotSupported if another VM has a live one. */
static int view_check_one_view(Vm *vm, Region *reg, GmemError *e) {
        View *v;

        if (!reg->ops->one_view)
                return 0;
        HASHMAP_FOREACH(v, reg->views, i)
                if (v->vm != vm && v->state != VIEW_STATE_REVOKED)
                        return gmem_error_set(e, GMEM_ERROR_NOT_SUPPORTED, "Region '%s' (backend '%s') has a view for "
                                              "VM '%s' already, and can have no other: %s", reg->name,
                                              backend_type_to_string(reg->backend), v->vm->name,
                                              reg->ops->why.second_view ?: "the backend has one view per region");
        return 0;
}

/* The window and allocate right an attach asks for, checked against the region and the VM. */
static int view_check_params(Vm *vm, Region *reg, const ViewParams *p, View *ret_proto, GmemError *e) {
        uint64_t offset = p->has_offset ? p->offset : 0;
        uint64_t length = p->has_length ? p->length : reg->br.size - offset;
        char what[GMEM_NAME_MAX + 16];
        int r;

        if (p->access < 0 || p->access >= _VIEW_ACCESS_MAX)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Invalid access: expected 'ro' or 'rw'");
        if (p->access == VIEW_ACCESS_RO && !reg->ops->read_only_views && reg->ops->why.read_only)
                return gmem_error_set(e, GMEM_ERROR_NOT_SUPPORTED, "Region '%s' (backend '%s') cannot give a "
                                      "read-only view: %s", reg->name, backend_type_to_string(reg->backend),
                                      reg->ops->why.read_only);
        if (p->access == VIEW_ACCESS_RO && !reg->ops->read_only_views)
                return gmem_error_set(e, GMEM_ERROR_NOT_SUPPORTED, "Backend '%s' of region '%s' cannot give read-only "
                                      "views", backend_type_to_string(reg->backend), reg->name);
        r = view_check_one_view(vm, reg, e);
        if (r < 0)
                return r;
        if (p->allocate && p->access != VIEW_ACCESS_RW)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Option allocate needs a read-write view");
        if (offset > reg->br.size)
                return gmem_error_set(e, GMEM_ERROR_INVALID_RANGE, "Invalid window of region '%s': offset %" PRIu64
                                      " is past its size %" PRIu64, reg->name, offset, reg->br.size);
        /* No window asked for: the whole region, which is valid by construction. */
        if (p->has_offset || p->has_length) {
                (void) snprintf(what, sizeof(what), "region '%s'", reg->name);
                r = gmem_validate_range(what, offset, length, reg->br.size, reg->br.page_size, e);
                if (r < 0)
                        return r;
        }
        if (vm->migration)
                return gmem_error_set(e, GMEM_ERROR_MIGRATION_IN_PROGRESS, "VM '%s' is in migration %" PRIu64
                                      "; attach after it is committed or aborted", vm->name, migration_id(vm->migration));

        *ret_proto = (View) {
                .access = p->access,
                .offset = offset,
                .length = length,
                /* The region's owner VM may allocate through any read-write view of it. */
                .may_allocate = p->allocate || (p->access == VIEW_ACCESS_RW && reg->owner && streq(reg->owner, vm->name)),
                .state = VIEW_STATE_ACTIVE,
                .fd = -EBADF,
        };
        return 0;
}

static bool view_same_shape(const View *v, const View *proto) {
        return v->access == proto->access && v->offset == proto->offset && v->length == proto->length &&
               v->may_allocate == proto->may_allocate;
}

/* Whether vm has a live view of reg, which asking again returns at no charge. */
/* Whether v is a view the VM still has: there at all, and not revoked. */
static bool view_is_live(const View *v) {
        return v && v->state != VIEW_STATE_REVOKED;
}

int view_reserve(Vm *vm, Region *reg, const Actor *a, UsageCharge *ret, GmemError *e) {
        /* Only a new view counts against the quota; asking again for the same one is free. */
        Usage want = { .amount = { [QUOTA_VIEWS] = view_is_live(view_lookup(vm, reg)) ? 0 : 1 } };

        /* One store entry: the view's file in custody. */
        return usage_reserve_objects(vm->manager, a, &want, (unsigned) want.amount[QUOTA_VIEWS], ret, e);
}

int view_attach(Vm *vm, Region *reg, const ViewParams *p, UsageCharge *reserved, View **ret, bool *ret_existing,
                GmemError *e) {
        _cleanup_(usage_charge_release) UsageCharge charge = usage_charge_take(reserved);
        View *v = view_lookup(vm, reg), proto;
        bool again = view_is_live(v);
        int r;

        if (charge.manager != vm->manager || (!again && charge.amount[QUOTA_VIEWS] != 1))
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "View of region '%s' for VM '%s' was not "
                                      "reserved", reg->name, vm->name);
        r = view_check_params(vm, reg, p, &proto, e);
        if (r < 0)
                return r;

        if (again) {
                if (!view_same_shape(v, &proto))
                        return gmem_error_set(e, GMEM_ERROR_BUSY, "VM '%s' has a %s view of region '%s' already "
                                              "(window %" PRIu64 "+%" PRIu64 "); detach it first to change it",
                                              vm->name, view_access_to_string(v->access), reg->name, v->offset,
                                              v->length);
                *ret = v;
                if (ret_existing)
                        *ret_existing = true;
                return 0;
        }

        view_free(v);  /* a revoked view of the pair makes way for the new one */
        proto.id = vm->manager->next_view_id++;
        proto.creator = charge.uid;
        r = view_create(vm, reg, &proto, &charge, ret, e);
        if (r < 0) {
                if (v)  /* the revoked view is gone all the same: say so */
                        manager_notify_views_changed(vm->manager, vm, reg);
                return r;
        }
        if (ret_existing)
                *ret_existing = false;
        return 0;
}

int view_new_pending(Vm *vm, const View *source, UsageCharge *charge, View **ret, GmemError *e) {
        _cleanup_(usage_charge_release) UsageCharge one = {};
        View *old = view_lookup(vm, source->region);
        int r;
        View proto = {
                .id = vm->manager->next_view_id++,
                .access = source->access,
                .offset = source->offset,
                .length = source->length,
                .may_allocate = source->may_allocate,
                .state = VIEW_STATE_PENDING,
                .fd = -EBADF,
                .creator = charge->uid,
        };

        if (old && old->state != VIEW_STATE_REVOKED)
                return gmem_error_set(e, GMEM_ERROR_BUSY, "VM '%s' has a view of region '%s' already",
                                      vm->name, source->region->name);
        r = view_check_one_view(vm, source->region, e);
        if (r < 0)
                return r;
        view_free(old);
        usage_charge_split(charge, QUOTA_VIEWS, 1, &one);
        r = view_create(vm, source->region, &proto, &one, ret, e);
        if (r < 0 && old)
                manager_notify_views_changed(vm->manager, vm, source->region);
        return r;
}

/* A stored view's description is whole, and its file is one the backend recognizes as that view. */
static int view_adopt_check(Vm *vm, Region *reg, const ViewAdopt *va, uint64_t *ret_id, GmemError *e) {
        BackendView bv = { .fd = -EBADF };
        int r;

        if (va->id == 0 || view_lookup(vm, reg) || va->access < 0 || va->access >= _VIEW_ACCESS_MAX ||
            va->state < 0 || va->state >= _VIEW_STATE_MAX || (va->state == VIEW_STATE_REVOKED) != (va->fd < 0) ||
            (va->fd >= 0 && !reg->ops->adopt_view))
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Stored view %" PRIu64 " of region '%s' for VM "
                                      "'%s' is not valid here", va->id, reg->name, vm->name);
        *ret_id = 0;
        if (va->fd < 0)
                return 0;

        r = reg->ops->adopt_view(&reg->br, va->fd, &(BackendViewSpec) {
                                         .access = va->access,
                                         .offset = va->offset,
                                         .length = va->length,
                                         .allocate = va->may_allocate,
                                         .pending = va->state == VIEW_STATE_PENDING,
                                 }, &bv, e);
        if (r < 0)
                return gmem_error_set_errno(e, r, "Stored view %" PRIu64 " is not a %s file of region '%s'",
                                            va->id, view_access_to_string(va->access), reg->name);
        *ret_id = bv.id;
        return 0;
}

int view_adopt(Vm *vm, Region *reg, const ViewAdopt *va, const Actor *a, View **ret, GmemError *e) {
        _cleanup_(usage_charge_release) UsageCharge charge = {};
        _cleanup_close_ int fd = va->fd;
        Manager *m = vm->manager;
        uint64_t backend_id = 0;
        View *v;
        int r;

        r = view_adopt_check(vm, reg, va, &backend_id, e);
        if (r < 0)
                return r;
        r = usage_reserve(m, a, &(Usage) { .amount = { [QUOTA_VIEWS] = 1 } }, &charge, e);
        if (r < 0)
                return r;
        r = view_insert(vm, reg, &(View) {
                                .id = va->id,
                                .access = va->access,
                                .offset = va->offset,
                                .length = va->length,
                                .may_allocate = va->may_allocate,
                                .state = va->state,
                                .creator = a->uid,
                        }, &fd, &charge, &v, e);
        if (r < 0)
                return r;
        v->backend_id = backend_id;
        if (va->id >= m->next_view_id)
                m->next_view_id = va->id + 1;
        /* The grants stay stale: restoring syncs every region once, when all its views are back. */
        manager_notify_views_changed(m, vm, reg);
        if (ret)
                *ret = v;
        return 0;
}

int view_detach(View *v, GmemError *e) {
        Vm *vm = v->vm;
        Region *reg = v->region;

        if (v->migration)
                return gmem_error_set(e, GMEM_ERROR_MIGRATION_IN_PROGRESS, "View of region '%s' for VM '%s' is part "
                                      "of migration %" PRIu64, reg->name, vm->name, migration_id(v->migration));
        view_remove(v);
        return 0;
}

int view_get_fd(View *v, int *ret_fd, GmemError *e) {
        if (v->state == VIEW_STATE_REVOKED || v->fd < 0)
                return gmem_error_set(e, GMEM_ERROR_NO_SUCH_VIEW, "View of region '%s' for VM '%s' was revoked",
                                      v->region->name, v->vm->name);
        *ret_fd = v->fd;
        return 0;
}

void view_activate(View *v) {
        const BackendOps *ops = v->region->ops;
        BackendView bv = view_backend(v);

        if (v->state == VIEW_STATE_PENDING && v->fd >= 0 && ops->activate_view)
                (void) ops->activate_view(&v->region->br, &bv, NULL);
        /* Pending and active views grant alike: the grants do not change. */
        v->state = VIEW_STATE_ACTIVE;
        manager_notify_views_changed(v->vm->manager, v->vm, v->region);
}

void view_revoke(View *v) {
        if (v->state == VIEW_STATE_REVOKED)
                return;
        view_revoke_backend(v);
        v->state = VIEW_STATE_REVOKED;
        view_close_file(v);
        region_grants_stale(v->region);
        (void) region_sync_grants(v->region, NULL);
        manager_notify_view_revoked(v->vm->manager, v);
        manager_notify_views_changed(v->vm->manager, v->vm, v->region);
}
