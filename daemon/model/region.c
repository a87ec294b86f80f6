/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * region.c — region lifecycle, the per-uid grants its views imply, and the
 * range operations that act on the inode as a whole (discard, allocate,
 * memory attributes). Every size and range is validated before the backend
 * sees it.
 *
 * A region never recomputes its grants from inside another object's
 * destructor: views only mark them stale (region_grants_stale()), which
 * queues the region on its manager, and the operation that changed the
 * views syncs them once at its end, as systemd queues units for garbage
 * collection. A region that is freed while queued just leaves the queue.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "array.h"
#include "backend-util.h"
#include "log.h"
#include "list.h"
#include "memcg.h"
#include "parse.h"
#include "region.h"
#include "region-spare.h"
#include "view.h"
#include "vm.h"

/* The actor's class may use this backend and make a region this large. */
static int region_check_rules(const RegionParams *p, const Actor *a, GmemError *e) {
        if (!backend_get(p->backend))
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Unknown backend");
        if (!a->class)
                return gmem_error_set(e, GMEM_ERROR_ACCESS_DENIED, "Access denied: uid %u is in no class of the "
                                      "policy and may not create regions", (unsigned) a->uid);
        if (!policy_class_allows_backend(a->class, p->backend))
                return gmem_error_set(e, GMEM_ERROR_ACCESS_DENIED, "Access denied: class '%s' may not use backend "
                                      "'%s'", a->class->name, backend_type_to_string(p->backend));
        if (a->class->max_region_size != POLICY_UNLIMITED && p->size > a->class->max_region_size)
                return gmem_error_set(e, GMEM_ERROR_QUOTA_EXCEEDED, "Region size %" PRIu64 " is over the largest "
                                      "region class '%s' may create, %" PRIu64 " bytes", p->size, a->class->name,
                                      a->class->max_region_size);
        return 0;
}

/* A new region's name is valid and free, and its owner VM, if any, is registered. */
static int region_validate_names(Manager *m, const RegionParams *p, GmemError *e) {
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
        return 0;
}

static int region_validate(Manager *m, const RegionParams *p, const BackendOps **ret_ops, uint64_t *ret_page_size,
                           GmemError *e) {
        const BackendOps *ops;
        uint64_t page_size;
        int r;

        r = region_validate_names(m, p, e);
        if (r < 0)
                return r;

        ops = backend_get(p->backend);
        if (!ops)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Unknown backend");
        r = ops->probe(e);
        if (r < 0)
                return r;
        if (!ops->create)
                return gmem_error_set(e, GMEM_ERROR_NOT_SUPPORTED, "Cannot create region '%s': %s", p->name,
                                      ops->why.create ?: "the backend cannot make regions");
        r = ops->page_size(p->hugepage_size, &page_size, e);
        if (r < 0)
                return r;
        r = gmem_validate_size(p->size, page_size, REGION_SIZE_MAX, e);
        if (r < 0)
                return r;

        *ret_ops = ops;
        *ret_page_size = page_size;
        return 0;
}

static int region_new(Manager *m, const RegionParams *p, const BackendOps *ops, uid_t creator, Region **ret,
                      GmemError *e) {
        Region *reg;

        reg = calloc(1, sizeof(*reg));
        if (!reg)
                return gmem_error_set_errno(e, ENOMEM, "Cannot allocate region '%s'", p->name);
        reg->br.fd = -EBADF;
        reg->spare_fd = -EBADF;
        reg->manager = m;
        reg->backend = p->backend;
        reg->ops = ops;
        reg->creator = creator;
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

/* Indexes a region whose inode is in place, takes its charge over and announces it; frees it on failure. */
static int region_publish(Manager *m, Region *reg, uint64_t id, UsageCharge *charge, Region **ret, GmemError *e) {
        int r;

        backend_region_note_inode(&reg->br);
        r = hashmap_put(m->regions, reg->name, reg);
        if (r < 0) {
                region_free(reg);
                return gmem_error_set_errno(e, r, "Cannot index region");
        }
        reg->id = id;
        if (id >= m->next_region_id)
                m->next_region_id = id + 1;
        m->total_bytes += reg->br.size;
        reg->charge = usage_charge_take(charge);

        manager_notify_region_new(m, reg);
        manager_notify_totals_changed(m);
        if (ret)
                *ret = reg;
        return 0;
}

/*
 * QuotaExceeded unless gmemd may charge bytes more: its memory cgroup (and
 * every ancestor) has room for them, and so has the host (MemAvailable, less
 * what is kept for the rest of the host). Hugetlb pages come from their own
 * pool, charged to neither, and the backend checks that pool.
 */
static int region_check_memcg(BackendType backend, const char *what, const char *name, uint64_t bytes,
                              GmemError *e) {
        MemcgHeadroom h;
        HostMemory host;

        if (backend == BACKEND_HUGETLB || bytes == 0)
                return 0;
        if (memcg_headroom(NULL, NULL, &h) >= 0 && h.left != UINT64_MAX &&
            (h.left < MEMCG_MARGIN || bytes > h.left - MEMCG_MARGIN))
                return gmem_error_set(e, GMEM_ERROR_QUOTA_EXCEEDED, "Cannot %s region '%s' by %" PRIu64 " bytes: "
                                      "gmemd's memory cgroup %s has %" PRIu64 " bytes left of its limit of %" PRIu64
                                      " (%llu kept for gmemd itself)", what, name, bytes, h.path, h.left, h.limit,
                                      MEMCG_MARGIN);
        if (memcg_host_memory(NULL, &host) >= 0 &&
            (host.available < MEMCG_HOST_RESERVE || bytes > host.available - MEMCG_HOST_RESERVE))
                return gmem_error_set(e, GMEM_ERROR_QUOTA_EXCEEDED, "Cannot %s region '%s' by %" PRIu64 " bytes: "
                                      "the host has %" PRIu64 " bytes available (MemAvailable of %" PRIu64 " total, "
                                      "%llu kept for the host); bound gmemd's memory with MemoryMax= in its unit",
                                      what, name, bytes, host.available, host.total, MEMCG_HOST_RESERVE);
        return 0;
}

static Usage region_usage(uint64_t size) {
        return (Usage) { .amount = { [QUOTA_REGIONS] = 1, [QUOTA_BYTES] = size } };
}

int region_reserve(Manager *m, const RegionParams *p, const Actor *a, UsageCharge *ret, GmemError *e) {
        Usage want = region_usage(p->size);
        int r;

        *ret = (UsageCharge) {};
        r = region_check_rules(p, a, e);
        if (r < 0)
                return r;
        /* One store entry: the region's inode. */
        return usage_reserve_objects(m, a, &want, 1, ret, e);
}

int region_create(Manager *m, const RegionParams *p, UsageCharge *reserved, Region **ret, GmemError *e) {
        _cleanup_(usage_charge_release) UsageCharge charge = usage_charge_take(reserved);
        const BackendOps *ops = NULL;
        uint64_t page_size = 0;
        Region *reg;
        int r;

        if (charge.manager != m || charge.amount[QUOTA_REGIONS] != 1)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Region '%.64s' was not reserved",
                                      p->name ?: "");
        r = region_validate(m, p, &ops, &page_size, e);
        if (r < 0)
                return r;
        if (p->populate) {
                r = region_check_memcg(p->backend, "populate", p->name, p->size, e);
                if (r < 0)
                        return r;
        }
        r = region_new(m, p, ops, charge.uid, &reg, e);
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
        reg->allocated_private = reg->allocated_stale = true;
        return region_publish(m, reg, m->next_region_id, &charge, ret, e);
}

int region_adopt(Manager *m, const RegionParams *p, const Actor *a, uint64_t id, uint64_t page_size, int fd,
                 Region **ret, GmemError *e) {
        _cleanup_(usage_charge_release) UsageCharge charge = {};
        _cleanup_close_ int owned = fd;
        const BackendOps *ops = backend_get(p->backend);
        BackendRegion br = { .fd = -EBADF };
        Usage want;
        Region *reg;
        int r;

        if (!ops || !ops->adopt_region || !gmem_name_is_valid(p->name) || id == 0 || manager_get_region(m, p->name))
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Stored region '%.64s' is not valid here",
                                      p->name ?: "");
        r = ops->adopt_region(p->name, fd, page_size, &br, e);
        if (r < 0)
                return r;
        if (gmem_validate_size(br.size, page_size, REGION_SIZE_MAX, e) < 0)
                return gmem_error_set(e, GMEM_ERROR_INVALID_SIZE, "Stored region '%s' has a bad inode", p->name);
        want = region_usage(br.size);
        r = usage_reserve(m, a, &want, &charge, e);
        if (r < 0)
                return r;
        r = region_new(m, p, ops, a->uid, &reg, e);
        if (r < 0)
                return r;
        br.fd = TAKE_FD(owned);
        reg->br = br;
        /*
         * Whatever access list the inode carries is recomputed from the views restored with it (or cleared
         * if none come back): a crash may have come between a view's end and its grant's.
         */
        reg->has_grants = true;
        region_grants_stale(reg);
        return region_publish(m, reg, id, &charge, ret, e);
}

int region_take(Manager *m, RegionParams *p, const Actor *a, int fd, Region **ret, GmemError *e) {
        _cleanup_(usage_charge_release) UsageCharge charge = {};
        _cleanup_close_ int copy = -EBADF;
        const BackendOps *ops = backend_get(p->backend);
        BackendRegion br = { .fd = -EBADF };
        uint64_t page_size = 0;
        Region *reg;
        int r;

        if (!ops)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Unknown backend");
        if (!ops->custody || !ops->adopt_region)
                return gmem_error_set(e, GMEM_ERROR_NOT_SUPPORTED, "Backend '%s' does not adopt files: its regions "
                                      "are made with CreateRegion", backend_type_to_string(p->backend));
        r = region_validate_names(m, p, e);
        if (r < 0)
                return r;
        if (fd < 0)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "No file passed for region '%s'", p->name);
        /* The class may use the backend at all: before the file is looked at (its size is checked below). */
        p->size = 0;
        r = region_check_rules(p, a, e);
        if (r < 0)
                return r;
        r = ops->probe(e);
        if (r < 0)
                return r;
        r = ops->page_size(0, &page_size, e);
        if (r < 0)
                return r;

        /* What the file is and how large, before anything is charged for it. */
        r = ops->adopt_region(p->name, fd, page_size, &br, e);
        if (r < 0)
                return r;
        r = gmem_validate_size(br.size, page_size, REGION_SIZE_MAX, e);
        if (r < 0)
                return r;
        p->size = br.size;
        r = region_reserve(m, p, a, &charge, e);
        if (r < 0)
                return r;

        /* gmemd's own open file description: the same file, whatever the caller does with its fd. */
        copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (copy < 0)
                return gmem_error_set_errno(e, errno, "Cannot keep the file passed for region '%s'", p->name);
        r = region_new(m, p, ops, charge.uid, &reg, e);
        if (r < 0)
                return r;
        br.fd = TAKE_FD(copy);
        reg->br = br;
        return region_publish(m, reg, m->next_region_id, &charge, ret, e);
}

/* --- the grants queue --- */

static void region_grants_dequeue(Region *reg) {
        Manager *m = reg->manager;

        if (!reg->grants_stale)
                return;
        if (m)
                LIST_REMOVE(grants, m->grants_queue, reg);
        reg->grants_stale = false;
}

void region_grants_stale(Region *reg) {
        Manager *m = reg->manager;

        if (reg->grants_stale || !m)
                return;
        reg->grants_stale = true;
        LIST_PREPEND(grants, m->grants_queue, reg);
}

static int grant_compare(const void *a, const void *b) {
        const BackendGrant *x = a, *y = b;
        return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* Whether v's VM gets a grant on the inode: a live view of a VM with a hypervisor uid other than root. */
static bool view_grants(const View *v) {
        return v->state != VIEW_STATE_REVOKED && v->vm->has_uid && v->vm->uid != 0;
}

/* The grants the live views imply: one entry per uid, with the highest access any of its views has. */
static int region_compute_grants(Region *reg, BackendGrant **ret, size_t *ret_n) {
        _cleanup_free_ BackendGrant *grants = NULL;
        size_t n = 0, k = 0;
        View *v;

        HASHMAP_FOREACH(v, reg->views, i)
                if (view_grants(v))
                        n++;
        /* Most VMs have no uid: no list to build (an attach or detach of one does not allocate). */
        if (n == 0) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        grants = calloc(n, sizeof(BackendGrant));
        if (!grants)
                return -ENOMEM;
        n = 0;
        HASHMAP_FOREACH(v, reg->views, i)
                if (view_grants(v))
                        grants[n++] = (BackendGrant) { .uid = (uint32_t) v->vm->uid, .access = v->access };

        qsort(grants, n, sizeof(BackendGrant), grant_compare);
        for (size_t i = 0; i < n; i++) {
                if (k > 0 && grants[k - 1].uid == grants[i].uid) {
                        if (grants[i].access == VIEW_ACCESS_RW)
                                grants[k - 1].access = VIEW_ACCESS_RW;
                        continue;
                }
                grants[k++] = grants[i];
        }
        *ret = TAKE_PTR(grants);
        *ret_n = k;
        return 0;
}

int region_sync_grants(Region *reg, GmemError *e) {
        _cleanup_free_ BackendGrant *grants = NULL;
        size_t n = 0;
        int r;

        if (!reg->grants_stale)
                return 0;
        region_grants_dequeue(reg);
        if (!reg->ops->set_grants || reg->br.fd < 0)
                return 0;

        r = region_compute_grants(reg, &grants, &n);
        if (r < 0)
                return gmem_error_set_errno(e, r, "Cannot compute grants of region '%s'", reg->name);
        /* Most VMs have no uid: nothing to grant and nothing granted, so nothing to tell the kernel. */
        if (n == 0 && !reg->has_grants)
                return 0;
        r = reg->ops->set_grants(&reg->br, grants, n, e);
        if (r < 0)
                return r;
        reg->has_grants = n > 0;
        return 0;
}

Region *region_free(Region *reg) {
        Manager *m;
        View *v;

        if (!reg)
                return NULL;
        m = reg->manager;

        while ((v = hashmap_first(reg->views)))
                view_free(v);
        region_grants_dequeue(reg);
        region_spare_drop(reg);

        if (m && reg->name && hashmap_get(m->regions, reg->name) == reg) {
                hashmap_remove(m->regions, reg->name);
                m->total_bytes -= reg->br.size;
        }
        usage_charge_release(&reg->charge);

        backend_region_release(&reg->br);
        hashmap_free(reg->views);
        free(reg->owner);
        free(reg->name);
        free(reg);
        return NULL;
}

unsigned region_live_views(Region *reg) {
        unsigned n = 0;
        View *v;

        HASHMAP_FOREACH(v, reg->views, i)
                if (v->state != VIEW_STATE_REVOKED)
                        n++;
        return n;
}

static View *region_first_live_view(Region *reg) {
        View *v;

        HASHMAP_FOREACH(v, reg->views, i)
                if (v->state != VIEW_STATE_REVOKED)
                        return v;
        return NULL;
}

int region_destroy(Region *reg, GmemError *e) {
        Manager *m = reg->manager;
        unsigned n = region_live_views(reg);
        View *v;

        if (n > 0)
                return gmem_error_set(e, GMEM_ERROR_BUSY, "Region '%s' has %u live view%s (VM '%s' first); "
                                      "detach them before destroying it", reg->name, n, n == 1 ? "" : "s",
                                      region_first_live_view(reg)->vm->name);

        /* Its memory ends first, where closing the region's fd would not end it (the kernel keeps kmod regions). */
        if (reg->ops->destroy) {
                int r = reg->ops->destroy(&reg->br, e);
                if (r < 0)
                        return r;
        }
        /* Revoked views die with the region; tell their VMs. */
        while ((v = hashmap_first(reg->views)))
                view_remove(v);

        manager_notify_region_removed(m, reg);
        /*
         * Its memory goes back to the host before its bytes go back to the quota, and only once no record
         * of the region is left: a crash in between leaves the region gone, not a region emptied.
         */
        if (reg->ops->free_memory) {
                GmemError fe = GMEM_ERROR_INIT;

                if (reg->ops->free_memory(&reg->br, &fe) < 0)
                        log_warning("Region '%s' is destroyed, but its memory stays with the processes that hold "
                                    "its views: %s", reg->name, fe.message);
        }
        region_free(reg);
        manager_notify_totals_changed(m);
        return 0;
}

static int region_check_range(Region *reg, uint64_t offset, uint64_t length, GmemError *e) {
        char what[GMEM_NAME_MAX + 16];

        (void) snprintf(what, sizeof(what), "region '%s'", reg->name);
        return gmem_validate_range(what, offset, length, reg->br.size, reg->br.page_size, e);
}

int region_discard(Region *reg, uint64_t offset, uint64_t length, GmemError *e) {
        int r;

        r = region_check_range(reg, offset, length, e);
        if (r < 0)
                return r;
        if (!reg->ops->discard)
                return gmem_error_set(e, GMEM_ERROR_NOT_SUPPORTED, "Backend '%s' of region '%s' cannot discard memory",
                                      backend_type_to_string(reg->backend), reg->name);
        reg->allocated_stale = true;
        return reg->ops->discard(&reg->br, offset, length, e);
}

int region_allocate(Region *reg, uint64_t offset, uint64_t length, GmemError *e) {
        uint64_t allocated = 0, charge = length;
        int r;

        r = region_check_range(reg, offset, length, e);
        if (r < 0)
                return r;
        if (!reg->ops->allocate)
                return gmem_error_set(e, GMEM_ERROR_NOT_SUPPORTED, "Backend '%s' of region '%s' cannot allocate memory",
                                      backend_type_to_string(reg->backend), reg->name);
        /* What is allocated already is charged already: the new charge is at most the rest. */
        if (region_allocated_bytes(reg, &allocated) >= 0 && allocated <= reg->br.size)
                charge = length < reg->br.size - allocated ? length : reg->br.size - allocated;
        r = region_check_memcg(reg->backend, "allocate in", reg->name, charge, e);
        if (r < 0)
                return r;
        reg->allocated_stale = true;
        return reg->ops->allocate(&reg->br, offset, length, e);
}

int region_set_attributes(Region *reg, uint64_t offset, uint64_t length, const char *attribute, GmemError *e) {
        MemoryAttribute a;
        int r;

        a = memory_attribute_from_string(attribute);
        if (a < 0)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Invalid memory attribute '%.64s': "
                                      "expected 'private' or 'shared'", attribute);
        r = region_check_range(reg, offset, length, e);
        if (r < 0)
                return r;
        if (!reg->ops->set_attributes && reg->ops->why.attributes)
                return gmem_error_set(e, GMEM_ERROR_NOT_SUPPORTED, "Cannot set memory attributes of region '%s': %s",
                                      reg->name, reg->ops->why.attributes);
        if (!reg->ops->set_attributes)
                return gmem_error_set(e, GMEM_ERROR_NOT_SUPPORTED, "Backend '%s' of region '%s' has no private memory; "
                                      "memory attributes need the kmod backend",
                                      backend_type_to_string(reg->backend), reg->name);
        reg->allocated_stale = true;       /* converting may free or move pages */
        return reg->ops->set_attributes(&reg->br, offset, length, a, e);
}

int region_get_attributes(Region *reg, uint64_t offset, uint64_t length, RegionAttributeRun **ret, size_t *ret_n,
                          GmemError *e) {
        _cleanup_free_ RegionAttributeRun *runs = NULL;
        size_t n = 0, allocated = 0;
        uint64_t end;
        int r;

        r = region_check_range(reg, offset, length, e);
        if (r < 0)
                return r;
        if (!reg->ops->get_attributes)
                return gmem_error_set(e, GMEM_ERROR_NOT_SUPPORTED, "Backend '%s' of region '%s' cannot say the memory "
                                      "attributes of its pages", backend_type_to_string(reg->backend), reg->name);
        end = offset + length;  /* checked: no wrap */
        for (uint64_t o = offset; o < end;) {
                MemoryAttribute a;
                uint64_t run;

                r = reg->ops->get_attributes(&reg->br, o, end - o, &a, &run, e);
                if (r < 0)
                        return r;
                if (run == 0 || run > end - o)
                        return gmem_error_set_errno(e, EPROTO, "The backend of region '%s' answered a run of %" PRIu64
                                                    " bytes at %" PRIu64, reg->name, run, o);
                if (n > 0 && runs[n - 1].attribute == a && runs[n - 1].offset + runs[n - 1].length == o) {
                        runs[n - 1].length += run;
                } else {
                        if (n == REGION_ATTRIBUTE_RUNS_MAX)
                                return gmem_error_set(e, GMEM_ERROR_INVALID_RANGE, "The range %" PRIu64 "+%" PRIu64
                                                      " of region '%s' has more than %d runs of memory attributes; "
                                                      "ask for a smaller one", offset, length, reg->name,
                                                      REGION_ATTRIBUTE_RUNS_MAX);
                        r = GROW_ARRAY(runs, allocated, n + 1);
                        if (r < 0)
                                return gmem_error_set_errno(e, r, "Cannot list the attributes of region '%s'",
                                                            reg->name);
                        runs[n++] = (RegionAttributeRun) { .offset = o, .length = run, .attribute = a };
                }
                o += run;
        }
        *ret = TAKE_PTR(runs);
        *ret_n = n;
        return 0;
}

int region_info(Region *reg, BackendRegionInfo *ret) {
        if (!reg->ops->info) {
                *ret = (BackendRegionInfo) {};
                return 0;
        }
        return reg->ops->info(&reg->br, ret);
}

int region_allocated_bytes(Region *reg, uint64_t *ret) {
        BackendRegionInfo info;
        int r;

        if (reg->allocated_private && !reg->allocated_stale) {
                *ret = reg->allocated;
                return 0;
        }
        r = region_info(reg, &info);
        if (r < 0)
                return r;
        reg->allocated = info.allocated;
        reg->allocated_stale = false;
        *ret = info.allocated;
        return 0;
}

void region_exposed(Region *reg) {
        reg->allocated_private = false;
}
