/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * region.c — region lifecycle and the range operations that act on the
 * inode as a whole (discard, allocate, memory attributes). Every size and
 * range is validated before the backend sees it.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "memcg.h"
#include "parse.h"
#include "region.h"
#include "usage.h"
#include "view.h"
#include "vm.h"

static int region_validate(Manager *m, const RegionParams *p, const BackendOps **ret_ops, uint64_t *ret_page_size,
                           GmemError *e) {
        const BackendOps *ops;
        int r;

        r = gmem_validate_name("region", p->name, e);
        if (r < 0)
                return r;
        if (manager_get_region(m, p->name))
                return gmem_error_set(e, GMEM_ERROR_REGION_EXISTS, "Region '%s' exists already", p->name);
        if (!isempty(p->owner)) {
                r = gmem_validate_name("owner VM", p->owner, e);
                if (r < 0)
                        return r;
                if (!manager_get_vm(m, p->owner))
                        return gmem_error_set(e, GMEM_ERROR_NO_SUCH_VM, "No VM '%s' known to own region '%s'",
                                              p->owner, p->name);
        }

        ops = backend_get(p->backend);
        if (!ops)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Unknown backend");
        r = ops->probe(e);
        if (r < 0)
                return r;
        r = ops->page_size(p->hugepage_size, ret_page_size, e);
        if (r < 0)
                return r;
        r = gmem_validate_size(p->size, *ret_page_size, REGION_SIZE_MAX, e);
        if (r < 0)
                return r;

        *ret_ops = ops;
        return 0;
}

static int region_new(Manager *m, const RegionParams *p, const BackendOps *ops, Region **ret, GmemError *e) {
        Region *reg;

        reg = calloc(1, sizeof(*reg));
        if (!reg)
                return gmem_error_set_errno(e, ENOMEM, "Cannot allocate region '%s'", p->name);
        reg->br.fd = -EBADF;
        reg->manager = m;
        reg->backend = p->backend;
        reg->ops = ops;
        reg->persistent = p->persistent;
        reg->creator = p->creator;
        reg->name = strdup(p->name);
        reg->owner = isempty(p->owner) ? NULL : strdup(p->owner);
        reg->views = hashmap_new();
        if (!reg->name || (!isempty(p->owner) && !reg->owner) || !reg->views) {
                region_free(reg);
                return gmem_error_set_errno(e, ENOMEM, "Cannot allocate region '%s'", p->name);
        }
        *ret = reg;
        return 0;
}

/* Indexes a region whose inode is in place, charges its creator and announces it. */
static int region_publish(Manager *m, Region *reg, uint64_t id, Region **ret, GmemError *e) {
        int r;

        r = hashmap_put(m->regions, reg->name, reg);
        if (r < 0) {
                region_free(reg);
                return gmem_error_set_errno(e, r, "Cannot index region");
        }
        reg->id = id;
        if (id >= m->next_region_id)
                m->next_region_id = id + 1;
        m->total_bytes += reg->br.size;
        usage_charge(m, reg->creator, QUOTA_BYTES, (int64_t) reg->br.size);
        usage_charge(m, reg->creator, QUOTA_REGIONS, 1);

        manager_notify_region_new(m, reg);
        manager_notify_totals_changed(m);
        if (ret)
                *ret = reg;
        return 0;
}

/* QuotaExceeded unless the memory cgroup lets gmemd charge bytes more (hugetlb pages are not charged there). */
static int region_check_memcg(BackendType backend, const char *what, const char *name, uint64_t bytes,
                              GmemError *e) {
        MemcgHeadroom h;

        if (backend == BACKEND_HUGETLB || bytes == 0)
                return 0;
        if (memcg_headroom(NULL, NULL, &h) < 0 || h.left == UINT64_MAX)
                return 0;
        if (h.left >= MEMCG_MARGIN && bytes <= h.left - MEMCG_MARGIN)
                return 0;
        return gmem_error_set(e, GMEM_ERROR_QUOTA_EXCEEDED, "Cannot %s region '%s' by %" PRIu64 " bytes: gmemd's "
                              "memory cgroup %s has %" PRIu64 " bytes left of its limit of %" PRIu64 " (%llu kept for "
                              "gmemd itself)", what, name, bytes, h.path, h.left, h.limit, MEMCG_MARGIN);
}

int region_create(Manager *m, const RegionParams *p, Region **ret, GmemError *e) {
        const BackendOps *ops = NULL;
        uint64_t page_size = 0;
        Region *reg;
        int r;

        r = region_validate(m, p, &ops, &page_size, e);
        if (r < 0)
                return r;
        if (p->populate) {
                r = region_check_memcg(p->backend, "populate", p->name, p->size, e);
                if (r < 0)
                        return r;
        }
        r = region_new(m, p, ops, &reg, e);
        if (r < 0)
                return r;

        r = ops->create(&(BackendCreateParams) {
                                .name = p->name,
                                .size = p->size,
                                .page_size = page_size,
                                .populate = p->populate,
                        }, &reg->br, e);
        if (r < 0) {
                region_free(reg);
                return r;
        }
        return region_publish(m, reg, m->next_region_id, ret, e);
}

int region_adopt(Manager *m, const RegionParams *p, uint64_t id, uint64_t page_size, int fd, Region **ret,
                 GmemError *e) {
        _cleanup_close_ int owned = fd;
        const BackendOps *ops = backend_get(p->backend);
        struct stat st;
        Region *reg;
        int r;

        if (!ops || !gmem_name_is_valid(p->name) || id == 0 || manager_get_region(m, p->name))
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Stored region '%.64s' is not valid here",
                                      p->name ?: "");
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
            gmem_validate_size((uint64_t) st.st_size, page_size, REGION_SIZE_MAX, e) < 0)
                return gmem_error_set(e, GMEM_ERROR_INVALID_SIZE, "Stored region '%s' has a bad inode", p->name);
        r = region_new(m, p, ops, &reg, e);
        if (r < 0)
                return r;
        reg->br = (BackendRegion) { .fd = TAKE_FD(owned), .size = (uint64_t) st.st_size, .page_size = page_size };
        return region_publish(m, reg, id, ret, e);
}

Region *region_free(Region *r) {
        View *v;

        if (!r)
                return NULL;

        r->dying = true;
        while ((v = hashmap_first(r->views)))
                view_free(v);

        if (r->manager && r->name && hashmap_get(r->manager->regions, r->name) == r) {
                hashmap_remove(r->manager->regions, r->name);
                r->manager->total_bytes -= r->br.size;
                usage_charge(r->manager, r->creator, QUOTA_BYTES, -(int64_t) r->br.size);
                usage_charge(r->manager, r->creator, QUOTA_REGIONS, -1);
        }

        backend_region_release(&r->br);
        hashmap_free(r->views);
        free(r->owner);
        free(r->name);
        free(r);
        return NULL;
}

static int grant_compare(const void *a, const void *b) {
        const BackendGrant *x = a, *y = b;
        return x->uid < y->uid ? -1 : x->uid > y->uid;
}

int region_update_grants(Region *r, GmemError *e) {
        _cleanup_free_ BackendGrant *grants = NULL;
        size_t n = 0, k = 0;
        View *v;
        int rr;

        if (!r->ops->set_grants || r->dying || r->br.fd < 0)
                return 0;

        grants = calloc(hashmap_size(r->views) + 1, sizeof(BackendGrant));
        if (!grants)
                return gmem_error_set_errno(e, ENOMEM, "Cannot compute grants of region '%s'", r->name);
        HASHMAP_FOREACH(v, r->views, i)
                if (v->state != VIEW_STATE_REVOKED && v->vm->has_uid && v->vm->uid != 0)
                        grants[n++] = (BackendGrant) { .uid = (uint32_t) v->vm->uid, .access = v->access };

        /* One entry per uid, with the highest access any of its views has. */
        qsort(grants, n, sizeof(BackendGrant), grant_compare);
        for (size_t i = 0; i < n; i++) {
                if (k > 0 && grants[k - 1].uid == grants[i].uid) {
                        if (grants[i].access == VIEW_ACCESS_RW)
                                grants[k - 1].access = VIEW_ACCESS_RW;
                        continue;
                }
                grants[k++] = grants[i];
        }
        /* Most VMs have no uid: nothing to grant and nothing granted, so nothing to tell the kernel. */
        if (k == 0 && !r->has_grants)
                return 0;
        rr = r->ops->set_grants(&r->br, grants, k, e);
        if (rr >= 0)
                r->has_grants = k > 0;
        return rr;
}

unsigned region_live_views(Region *r) {
        unsigned n = 0;
        View *v;

        HASHMAP_FOREACH(v, r->views, i)
                if (v->state != VIEW_STATE_REVOKED)
                        n++;
        return n;
}

int region_destroy(Region *r, GmemError *e) {
        Manager *m = r->manager;
        unsigned n = region_live_views(r);
        View *v;

        if (n > 0) {
                View *first = NULL;
                HASHMAP_FOREACH(v, r->views, i)
                        if (v->state != VIEW_STATE_REVOKED) {
                                first = v;
                                break;
                        }
                return gmem_error_set(e, GMEM_ERROR_BUSY, "Region '%s' has %u live view%s (VM '%s' first); "
                                      "detach them before destroying it", r->name, n, n == 1 ? "" : "s",
                                      first ? first->vm->name : "?");
        }

        /* Revoked views die with the region; tell their VMs. */
        while ((v = hashmap_first(r->views))) {
                Vm *vm = v->vm;
                view_free(v);
                manager_notify_views_changed(m, vm, r);
        }

        manager_notify_region_removed(m, r);
        region_free(r);
        manager_notify_totals_changed(m);
        return 0;
}

static int region_check_range(Region *r, uint64_t offset, uint64_t length, GmemError *e) {
        char what[GMEM_NAME_MAX + 16];

        (void) snprintf(what, sizeof(what), "region '%s'", r->name);
        return gmem_validate_range(what, offset, length, r->br.size, r->br.page_size, e);
}

int region_discard(Region *r, uint64_t offset, uint64_t length, GmemError *e) {
        int rr;

        rr = region_check_range(r, offset, length, e);
        if (rr < 0)
                return rr;
        if (!r->ops->discard)
                return gmem_error_set(e, GMEM_ERROR_NOT_SUPPORTED, "Backend '%s' of region '%s' cannot discard memory",
                                      backend_type_to_string(r->backend), r->name);
        return r->ops->discard(&r->br, offset, length, e);
}

int region_allocate(Region *r, uint64_t offset, uint64_t length, GmemError *e) {
        uint64_t allocated = 0, charge = length;
        int rr;

        rr = region_check_range(r, offset, length, e);
        if (rr < 0)
                return rr;
        if (!r->ops->allocate)
                return gmem_error_set(e, GMEM_ERROR_NOT_SUPPORTED, "Backend '%s' of region '%s' cannot allocate memory",
                                      backend_type_to_string(r->backend), r->name);
        /* What is allocated already is charged already: the new charge is at most the rest. */
        if (region_allocated_bytes(r, &allocated) >= 0 && allocated <= r->br.size)
                charge = length < r->br.size - allocated ? length : r->br.size - allocated;
        rr = region_check_memcg(r->backend, "allocate in", r->name, charge, e);
        if (rr < 0)
                return rr;
        return r->ops->allocate(&r->br, offset, length, e);
}

int region_set_attributes(Region *r, uint64_t offset, uint64_t length, const char *attribute, GmemError *e) {
        MemoryAttribute a;
        int rr;

        a = memory_attribute_from_string(attribute);
        if (a < 0)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Invalid memory attribute '%.64s': "
                                      "expected 'private' or 'shared'", attribute);
        rr = region_check_range(r, offset, length, e);
        if (rr < 0)
                return rr;
        if (!r->ops->set_attributes)
                return gmem_error_set(e, GMEM_ERROR_NOT_SUPPORTED, "Backend '%s' of region '%s' has no private memory; "
                                      "memory attributes need the kmod backend",
                                      backend_type_to_string(r->backend), r->name);
        return r->ops->set_attributes(&r->br, offset, length, a, e);
}

int region_allocated_bytes(Region *r, uint64_t *ret) {
        if (!r->ops->allocated_bytes) {
                *ret = 0;
                return 0;
        }
        return r->ops->allocated_bytes(&r->br, ret);
}
