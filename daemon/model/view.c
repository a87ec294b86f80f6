/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * view.c — making, handing out, revoking and dropping views. A view is
 * linked from both sides, vm->views (by region name) and r->views (by VM
 * name), so "the views of a VM" and "the views of a region" are both O(1) to
 * look up and cheap to list.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "migration.h"
#include "parse.h"
#include "region.h"
#include "usage.h"
#include "view.h"
#include "backend-util.h"
#include "vm.h"

View *view_lookup(Vm *vm, Region *r) {
        return hashmap_get(vm->views, r->name);
}

View *view_free(View *v) {
        Region *r;

        if (!v)
                return NULL;
        r = v->region;
        if (v->vm && hashmap_get(v->vm->views, r->name) == v)
                hashmap_remove(v->vm->views, r->name);
        if (r && hashmap_get(r->views, v->vm->name) == v)
                hashmap_remove(r->views, v->vm->name);
        if (v->charged)
                usage_charge(v->vm->manager, v->creator, QUOTA_VIEWS, -1);
        if (v->fd >= 0)
                v->vm->manager->n_view_fds--;
        safe_close(v->fd);
        free(v);
        /* Take the uid's right to re-open the inode back, unless another view still needs it. */
        if (r)
                (void) region_update_grants(r, NULL);
        return NULL;
}

/* Creates the view file and links the view on both sides. */
static int view_new(Vm *vm, Region *r, ViewAccess access, uint64_t offset, uint64_t length, bool may_allocate,
                    ViewState state, uid_t creator, View **ret, GmemError *e) {
        _cleanup_close_ int fd = -EBADF;
        View *v;
        int rr;

        rr = r->ops->open_view(&r->br, access, &fd, e);
        if (rr < 0)
                return rr;

        v = calloc(1, sizeof(*v));
        if (!v)
                return gmem_error_set_errno(e, ENOMEM, "Cannot allocate view");
        *v = (View) {
                .id = vm->manager->next_view_id++,
                .access = access,
                .offset = offset,
                .length = length,
                .may_allocate = may_allocate,
                .state = state,
                .fd = -EBADF,
                .creator = creator,
        };

        rr = hashmap_put(vm->views, r->name, v);
        if (rr < 0) {
                free(v);
                return gmem_error_set_errno(e, rr, "Cannot index view");
        }
        v->vm = vm;
        rr = hashmap_put(r->views, vm->name, v);
        if (rr < 0) {
                v->region = r;   /* view_free() unlinks from vm by region name */
                view_free(v);
                return gmem_error_set_errno(e, rr, "Cannot index view");
        }
        v->region = r;
        v->fd = TAKE_FD(fd);
        vm->manager->n_view_fds++;

        v->charged = true;
        usage_charge(vm->manager, creator, QUOTA_VIEWS, 1);

        rr = region_update_grants(r, e);
        if (rr < 0) {
                view_free(v);
                return rr;
        }

        manager_notify_views_changed(vm->manager, vm, r);
        *ret = v;
        return 0;
}

int view_attach(Vm *vm, Region *r, const ViewParams *p, View **ret, bool *ret_existing, GmemError *e) {
        uint64_t offset = p->has_offset ? p->offset : 0;
        uint64_t length = p->has_length ? p->length : r->br.size - offset;
        char what[GMEM_NAME_MAX + 16];
        bool may_allocate;
        View *v;
        int rr;

        if (p->access < 0 || p->access >= _VIEW_ACCESS_MAX)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Invalid access: expected 'ro' or 'rw'");
        if (p->access == VIEW_ACCESS_RO && !r->ops->read_only_views)
                return gmem_error_set(e, GMEM_ERROR_NOT_SUPPORTED, "Backend '%s' of region '%s' cannot give read-only "
                                      "views", backend_type_to_string(r->backend), r->name);
        if (p->allocate && p->access != VIEW_ACCESS_RW)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Option allocate needs a read-write view");
        if (offset > r->br.size)
                return gmem_error_set(e, GMEM_ERROR_INVALID_RANGE, "Invalid window of region '%s': offset %" PRIu64
                                      " is past its size %" PRIu64, r->name, offset, r->br.size);
        (void) snprintf(what, sizeof(what), "region '%s'", r->name);
        rr = gmem_validate_range(what, offset, length, r->br.size, r->br.page_size, e);
        if (rr < 0)
                return rr;
        if (vm->migration)
                return gmem_error_set(e, GMEM_ERROR_MIGRATION_IN_PROGRESS, "VM '%s' is in migration %" PRIu64
                                      "; attach after it is committed or aborted", vm->name, migration_id(vm->migration));

        /* The region's owner VM may allocate through any read-write view of it. */
        may_allocate = p->allocate || (p->access == VIEW_ACCESS_RW && r->owner && streq(r->owner, vm->name));

        v = view_lookup(vm, r);
        if (v && v->state != VIEW_STATE_REVOKED) {
                if (v->access != p->access || v->offset != offset || v->length != length ||
                    v->may_allocate != may_allocate)
                        return gmem_error_set(e, GMEM_ERROR_BUSY, "VM '%s' has a %s view of region '%s' already "
                                              "(window %" PRIu64 "+%" PRIu64 "); detach it first to change it",
                                              vm->name, view_access_to_string(v->access), r->name, v->offset, v->length);
                *ret = v;
                if (ret_existing)
                        *ret_existing = true;
                return 0;
        }
        if (v)
                view_free(v);  /* a revoked view of the pair makes way for the new one */

        rr = view_new(vm, r, p->access, offset, length, may_allocate, VIEW_STATE_ACTIVE, p->creator, ret, e);
        if (rr < 0)
                return rr;
        if (ret_existing)
                *ret_existing = false;
        return 0;
}

int view_new_pending(Vm *vm, const View *source, uid_t creator, View **ret, GmemError *e) {
        View *old = view_lookup(vm, source->region);

        if (old && old->state != VIEW_STATE_REVOKED)
                return gmem_error_set(e, GMEM_ERROR_BUSY, "VM '%s' has a view of region '%s' already",
                                      vm->name, source->region->name);
        if (old)
                view_free(old);
        return view_new(vm, source->region, source->access, source->offset, source->length, source->may_allocate,
                        VIEW_STATE_PENDING, creator, ret, e);
}

int view_adopt(Vm *vm, Region *r, const ViewAdopt *a, View **ret, GmemError *e) {
        _cleanup_close_ int fd = a->fd;
        Manager *m = vm->manager;
        View *v;
        int rr;

        if (a->id == 0 || view_lookup(vm, r) || a->access < 0 || a->access >= _VIEW_ACCESS_MAX ||
            a->state < 0 || a->state >= _VIEW_STATE_MAX || (a->state == VIEW_STATE_REVOKED) != (fd < 0))
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Stored view %" PRIu64 " of region '%s' for VM "
                                      "'%s' is not valid here", a->id, r->name, vm->name);
        if (fd >= 0) {
                rr = backend_check_same_inode(r->br.fd, fd);
                if (rr >= 0 && (fcntl(fd, F_GETFL) & O_ACCMODE) != (a->access == VIEW_ACCESS_RW ? O_RDWR : O_RDONLY))
                        rr = -EACCES;
                if (rr < 0)
                        return gmem_error_set_errno(e, rr, "Stored view %" PRIu64 " is not a %s file of region '%s'",
                                                    a->id, view_access_to_string(a->access), r->name);
        }

        v = calloc(1, sizeof(*v));
        if (!v)
                return gmem_error_set_errno(e, ENOMEM, "Cannot allocate view");
        *v = (View) {
                .id = a->id,
                .access = a->access,
                .offset = a->offset,
                .length = a->length,
                .may_allocate = a->may_allocate,
                .state = a->state,
                .fd = -EBADF,
                .creator = a->creator,
        };
        rr = hashmap_put(vm->views, r->name, v);
        if (rr < 0) {
                free(v);
                return gmem_error_set_errno(e, rr, "Cannot index view");
        }
        v->vm = vm;
        v->region = r;
        rr = hashmap_put(r->views, vm->name, v);
        if (rr < 0) {
                view_free(v);
                return gmem_error_set_errno(e, rr, "Cannot index view");
        }
        v->fd = TAKE_FD(fd);
        if (v->fd >= 0)
                m->n_view_fds++;
        v->charged = true;
        usage_charge(m, v->creator, QUOTA_VIEWS, 1);
        if (a->id >= m->next_view_id)
                m->next_view_id = a->id + 1;
        (void) region_update_grants(r, NULL);
        manager_notify_views_changed(m, vm, r);
        if (ret)
                *ret = v;
        return 0;
}

int view_detach(View *v, GmemError *e) {
        Vm *vm = v->vm;
        Region *r = v->region;

        if (v->migration)
                return gmem_error_set(e, GMEM_ERROR_MIGRATION_IN_PROGRESS, "View of region '%s' for VM '%s' is part "
                                      "of migration %" PRIu64, r->name, vm->name, migration_id(v->migration));
        view_free(v);
        manager_notify_views_changed(vm->manager, vm, r);
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
        v->state = VIEW_STATE_ACTIVE;
        manager_notify_views_changed(v->vm->manager, v->vm, v->region);
}

void view_revoke(View *v) {
        if (v->state == VIEW_STATE_REVOKED)
                return;
        v->state = VIEW_STATE_REVOKED;
        if (v->fd >= 0)
                v->vm->manager->n_view_fds--;
        v->fd = safe_close(v->fd);
        (void) region_update_grants(v->region, NULL);
        manager_notify_view_revoked(v->vm->manager, v);
        manager_notify_views_changed(v->vm->manager, v->vm, v->region);
}
