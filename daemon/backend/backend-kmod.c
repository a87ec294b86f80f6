/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * backend-kmod.c — regions of gmem.ko (/dev/gmem, kmod/include/uapi/linux/gmem.h).
 *
 * The module does in the kernel what the memfd family can only keep as the
 * broker's bookkeeping: each view is a file of its own with its rights
 * (read, write, allocate), its window, and a state. A revoked view faults
 * (SIGBUS) and fails (EIO) in every process that holds it, a pending view
 * faults until it is activated, and private pages are faultable and readable
 * by no view at all, converted in place. Regions live in the kernel until
 * they are destroyed, whether gmemd runs or not.
 *
 * gmemd opens /dev/gmem once, at start, as its own user (the device is
 * root:gmem 0660; gmemd is in group gmem and has no capabilities), and keeps
 * that fd: a region's handle comes from it. The backend is usable only if
 * the device opened for writing and speaks an API version this code knows;
 * otherwise every use says why (BackendUnavailable). A region's name in the
 * kernel is gmemd's prefix and the region's name, so that gmemd never takes
 * or clobbers a region someone else made on the device.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <linux/gmem.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "backend-kmod.h"
#include "parse.h"

/* What the device said when gmemd opened it: usable (fd >= 0), or why not. */
static struct {
        int fd;
        int error;                      /* -errno of the open or the check */
        char why[160];
        struct gmem_features features;
} kmod = { .fd = -EBADF, .error = -ENODEV, .why = "gmemd did not open " BACKEND_KMOD_DEVICE };

int backend_kmod_open(const char *path) {
        _cleanup_close_ int fd = -EBADF;
        struct gmem_features f = {};

        kmod.fd = safe_close(kmod.fd);
        fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                kmod.error = negative_errno();
                (void) snprintf(kmod.why, sizeof(kmod.why), "%s: %s", path,
                                errno == ENOENT ? "no such device (gmem.ko is not loaded)" :
                                errno == EACCES ? "permission denied (gmemd's user is not in group gmem)" :
                                strerror(errno));
                return kmod.error;
        }
        if (ioctl(fd, GMEM_GET_FEATURES, &f) < 0) {
                kmod.error = negative_errno();
                (void) snprintf(kmod.why, sizeof(kmod.why), "%s does not answer GMEM_GET_FEATURES: %s", path,
                                strerror(errno));
                return kmod.error;
        }
        if (f.api_version < GMEM_API_VERSION || !(f.view_flags & GMEM_VIEW_PENDING) || f.page_size == 0 ||
            (f.page_size & (f.page_size - 1))) {
                kmod.error = -EPROTO;
                (void) snprintf(kmod.why, sizeof(kmod.why), "%s speaks API version %" PRIu64 ", gmemd needs %d "
                                "with pending views", path, (uint64_t) f.api_version, GMEM_API_VERSION);
                return kmod.error;
        }
        kmod.features = f;
        kmod.fd = TAKE_FD(fd);
        kmod.error = 0;
        kmod.why[0] = 0;
        return 0;
}

const char *backend_kmod_why(void) {
        return kmod.why;
}

void backend_kmod_close(void) {
        kmod.fd = safe_close(kmod.fd);
        kmod.error = -ENODEV;
        (void) snprintf(kmod.why, sizeof(kmod.why), "gmemd closed " BACKEND_KMOD_DEVICE);
}

int backend_kmod_kernel_name(const char *name, char *buf, size_t size) {
        if (!gmem_name_is_valid(name) || strlen(BACKEND_KMOD_PREFIX) + strlen(name) > GMEM_NAME_MAX)
                return -ENAMETOOLONG;
        if ((size_t) snprintf(buf, size, BACKEND_KMOD_PREFIX "%s", name) >= size)
                return -ENAMETOOLONG;
        return 0;
}

static int kmod_probe(GmemError *e) {
        if (kmod.fd >= 0)
                return 0;
        return gmem_error_set(e, GMEM_ERROR_BACKEND_UNAVAILABLE, "Backend 'kmod' unavailable: %s", kmod.why);
}

static int kmod_page_size(uint64_t requested, uint64_t *ret, GmemError *e) {
        int r = kmod_probe(e);

        if (r < 0)
                return r;
        if (requested != 0 && requested != kmod.features.page_size)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Option hugepage_size=%" PRIu64 " is not "
                                      "offered by the kmod backend (its pages are %" PRIu64 " bytes)", requested,
                                      (uint64_t) kmod.features.page_size);
        *ret = kmod.features.page_size;
        return 0;
}

static int kmod_create(const BackendCreateParams *p, BackendRegion *ret, GmemError *e) {
        struct gmem_create_region c = { .size = p->size };
        int fd, r;

        r = kmod_probe(e);
        if (r < 0)
                return r;
        if (kmod.features.max_size && p->size > kmod.features.max_size)
                return gmem_error_set(e, GMEM_ERROR_INVALID_SIZE, "Invalid size %" PRIu64 ": the kmod backend's "
                                      "limit is %" PRIu64 " bytes", p->size, (uint64_t) kmod.features.max_size);
        r = backend_kmod_kernel_name(p->name, c.name, sizeof(c.name));
        if (r < 0)
                return gmem_error_set(e, GMEM_ERROR_INVALID_NAME, "Invalid region name '%.64s' for the kmod backend: "
                                      "at most %zu characters, as the kernel's name carries the prefix '%s'",
                                      p->name, (size_t) GMEM_NAME_MAX - strlen(BACKEND_KMOD_PREFIX),
                                      BACKEND_KMOD_PREFIX);
        fd = ioctl(kmod.fd, GMEM_CREATE_REGION, &c);
        if (fd < 0) {
                if (errno == EEXIST)
                        return gmem_error_set(e, GMEM_ERROR_REGION_EXISTS, "Region '%s' exists already in the kernel "
                                              "(%s)", p->name, c.name);
                if (errno == ENOMEM || errno == ENOSPC)
                        return gmem_error_set(e, GMEM_ERROR_QUOTA_EXCEEDED, "Cannot create region '%s' of %" PRIu64
                                              " bytes in the kernel: %s", p->name, p->size, strerror(errno));
                return gmem_error_set_errno(e, errno, "Cannot create region '%s' in the kernel", p->name);
        }
        *ret = (BackendRegion) { .fd = fd, .size = p->size, .page_size = kmod.features.page_size };
        if (p->populate && fallocate(fd, 0, 0, (off_t) p->size) < 0) {
                int err = errno;
                struct gmem_destroy d = {};

                (void) ioctl(fd, GMEM_REGION_DESTROY, &d);
                ret->fd = safe_close(ret->fd);
                if (err == ENOMEM || err == ENOSPC)
                        return gmem_error_set(e, GMEM_ERROR_QUOTA_EXCEEDED, "Cannot populate region '%s' of %" PRIu64
                                              " bytes: %s", p->name, p->size, strerror(err));
                return gmem_error_set_errno(e, err, "Cannot populate region '%s'", p->name);
        }
        return 0;
}

static int kmod_destroy(const BackendRegion *br, GmemError *e) {
        struct gmem_destroy d = {};

        if (ioctl(br->fd, GMEM_REGION_DESTROY, &d) < 0)
                return gmem_error_set_errno(e, errno, "Cannot destroy the region in the kernel");
        return 0;
}

static int kmod_open_view(const BackendRegion *br, const BackendViewSpec *spec, BackendView *ret, GmemError *e) {
        struct gmem_new_view v = {
                .flags = GMEM_VIEW_READ | (spec->access == VIEW_ACCESS_RW ? GMEM_VIEW_WRITE : 0) |
                         (spec->allocate ? GMEM_VIEW_ALLOCATE : 0) | (spec->pending ? GMEM_VIEW_PENDING : 0),
                .offset = spec->offset,
                .length = spec->length,
        };
        int fd;

        fd = ioctl(br->fd, GMEM_REGION_NEW_VIEW, &v);
        if (fd < 0)
                return gmem_error_set_errno(e, errno, "Cannot make a %s view of %" PRIu64 "+%" PRIu64 " in the kernel",
                                            view_access_to_string(spec->access), spec->offset, spec->length);
        *ret = (BackendView) { .fd = fd, .id = v.id };
        return 0;
}

static int kmod_view_op(const BackendRegion *br, unsigned long cmd, const char *what, const BackendView *bv,
                        GmemError *e) {
        struct gmem_view_op op = bv->id ? (struct gmem_view_op) { .view = bv->id }
                                        : (struct gmem_view_op) { .flags = GMEM_VIEW_OP_FD, .view = (uint64_t) bv->fd };

        if (ioctl(br->fd, cmd, &op) < 0)
                return gmem_error_set_errno(e, errno, "Cannot %s view %" PRIu64 " in the kernel", what, bv->id);
        return 0;
}

static int kmod_activate_view(const BackendRegion *br, const BackendView *bv, GmemError *e) {
        return kmod_view_op(br, GMEM_REGION_ACTIVATE_VIEW, "activate", bv, e);
}

static int kmod_revoke_view(const BackendRegion *br, const BackendView *bv, GmemError *e) {
        return kmod_view_op(br, GMEM_REGION_REVOKE_VIEW, "revoke", bv, e);
}

static int kmod_discard(const BackendRegion *br, uint64_t offset, uint64_t length, GmemError *e) {
        if (fallocate(br->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t) offset, (off_t) length) < 0)
                return gmem_error_set_errno(e, errno, "Cannot punch a hole of %" PRIu64 " bytes at %" PRIu64,
                                            length, offset);
        return 0;
}

static int kmod_allocate(const BackendRegion *br, uint64_t offset, uint64_t length, GmemError *e) {
        if (fallocate(br->fd, FALLOC_FL_KEEP_SIZE, (off_t) offset, (off_t) length) < 0) {
                if (errno == ENOSPC || errno == ENOMEM)
                        return gmem_error_set(e, GMEM_ERROR_QUOTA_EXCEEDED, "Cannot allocate %" PRIu64
                                              " bytes at %" PRIu64 ": %s", length, offset, strerror(errno));
                return gmem_error_set_errno(e, errno, "Cannot allocate %" PRIu64 " bytes at %" PRIu64, length, offset);
        }
        return 0;
}

/* A pinned page is usually pinned for a moment (a read or write in flight): so many tries, so far apart. */
#define KMOD_BUSY_TRIES 5
#define KMOD_BUSY_WAIT_NS (2 * 1000 * 1000)

static int kmod_set_attributes(const BackendRegion *br, uint64_t offset, uint64_t length, MemoryAttribute attr,
                               GmemError *e) {
        struct gmem_attributes a = {
                .offset = offset,
                .length = length,
                .attributes = attr == MEMORY_ATTRIBUTE_PRIVATE ? GMEM_ATTR_PRIVATE : 0,
        };

        for (unsigned i = 0; i < KMOD_BUSY_TRIES; i++) {
                if (ioctl(br->fd, GMEM_REGION_SET_ATTRIBUTES, &a) == 0)
                        return 0;
                if (errno != EBUSY)
                        return gmem_error_set_errno(e, errno, "Cannot make %" PRIu64 "+%" PRIu64 " %s", offset,
                                                    length, memory_attribute_to_string(attr));
                (void) nanosleep(&(struct timespec) { .tv_nsec = KMOD_BUSY_WAIT_NS }, NULL);
        }
        return gmem_error_set(e, GMEM_ERROR_BUSY, "Cannot make %" PRIu64 "+%" PRIu64 " %s: a page of the range is "
                              "pinned (in a read, a write or a device's DMA); nothing was changed", offset, length,
                              memory_attribute_to_string(attr));
}

static int kmod_get_attributes(const BackendRegion *br, uint64_t offset, uint64_t length, MemoryAttribute *ret,
                               uint64_t *ret_length, GmemError *e) {
        struct gmem_attributes a = { .offset = offset, .length = length };

        if (ioctl(br->fd, GMEM_REGION_GET_ATTRIBUTES, &a) < 0)
                return gmem_error_set_errno(e, errno, "Cannot read the attributes of %" PRIu64 "+%" PRIu64, offset,
                                            length);
        if (a.length == 0 || a.length > length)
                return gmem_error_set_errno(e, EPROTO, "The kernel answered a run of %" PRIu64 " bytes for %" PRIu64,
                                            (uint64_t) a.length, length);
        *ret = (a.attributes & GMEM_ATTR_PRIVATE) ? MEMORY_ATTRIBUTE_PRIVATE : MEMORY_ATTRIBUTE_SHARED;
        *ret_length = a.length;
        return 0;
}

static int kmod_info(const BackendRegion *br, BackendRegionInfo *ret) {
        struct gmem_region_info info = {};
        uint64_t private_bytes = 0;

        if (ioctl(br->fd, GMEM_REGION_INFO, &info) < 0)
                return negative_errno();
        /* The private bytes, run by run. */
        for (uint64_t o = 0; o < br->size;) {
                MemoryAttribute attr;
                uint64_t run;
                int r;

                r = kmod_get_attributes(br, o, br->size - o, &attr, &run, NULL);
                if (r < 0)
                        return r;
                if (attr == MEMORY_ATTRIBUTE_PRIVATE)
                        private_bytes += run;
                o += run;
        }
        *ret = (BackendRegionInfo) { .allocated = info.allocated, .private_bytes = private_bytes };
        return 0;
}

static int kmod_region_info(int fd, struct gmem_region_info *ret) {
        *ret = (struct gmem_region_info) {};
        return ioctl(fd, GMEM_REGION_INFO, ret) < 0 ? negative_errno() : 0;
}

/* A live region of the device that gmemd named so: a handle gmemd made, or got back. */
static int kmod_adopt_region(const char *name, int fd, uint64_t page_size, BackendRegion *ret, GmemError *e) {
        struct gmem_region_info info;
        char want[GMEM_NAME_SIZE];
        int r;

        r = kmod_probe(e);
        if (r < 0)
                return r;
        if (backend_kmod_kernel_name(name, want, sizeof(want)) < 0 || kmod_region_info(fd, &info) < 0 ||
            info.state != GMEM_REGION_STATE_LIVE || strncmp(info.name, want, sizeof(info.name)) != 0 ||
            page_size != kmod.features.page_size)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Not a live kernel region called '%s%s'",
                                      BACKEND_KMOD_PREFIX, name);
        *ret = (BackendRegion) { .fd = -EBADF, .size = info.size, .page_size = page_size };
        return 0;
}

/* A view of this region with the rights, window and state spec says, active or pending: not revoked. */
static int kmod_adopt_view(const BackendRegion *br, int fd, const BackendViewSpec *spec, BackendView *ret,
                           GmemError *e) {
        uint64_t want = GMEM_VIEW_READ | (spec->access == VIEW_ACCESS_RW ? GMEM_VIEW_WRITE : 0) |
                        (spec->allocate ? GMEM_VIEW_ALLOCATE : 0);
        struct gmem_region_info region;
        struct gmem_view_info v = {};

        if (kmod_region_info(br->fd, &region) < 0 || ioctl(fd, GMEM_VIEW_INFO, &v) < 0 || v.region_id != region.id ||
            v.flags != want || v.offset != spec->offset || v.length != spec->length ||
            v.state != (spec->pending ? GMEM_VIEW_STATE_PENDING : GMEM_VIEW_STATE_ACTIVE))
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "Not a %s%s view of %" PRIu64 "+%" PRIu64
                                      " of the region", spec->pending ? "pending " : "",
                                      view_access_to_string(spec->access), spec->offset, spec->length);
        *ret = (BackendView) { .fd = fd, .id = v.id };
        return 0;
}

const BackendOps backend_kmod_ops = {
        .type = BACKEND_KMOD,
        .probe = kmod_probe,
        .page_size = kmod_page_size,
        .create = kmod_create,
        .destroy = kmod_destroy,
        .adopt_region = kmod_adopt_region,
        .adopt_view = kmod_adopt_view,
        .open_view = kmod_open_view,
        .activate_view = kmod_activate_view,
        .revoke_view = kmod_revoke_view,
        .discard = kmod_discard,
        .allocate = kmod_allocate,
        .set_attributes = kmod_set_attributes,
        .get_attributes = kmod_get_attributes,
        .info = kmod_info,
        .read_only_views = true,
        .guarantees = BACKEND_ENFORCES_ACCESS | BACKEND_ENFORCES_WINDOW | BACKEND_ENFORCES_ALLOCATE |
                      BACKEND_ENFORCES_REVOKE | BACKEND_ENFORCES_PENDING | BACKEND_PRIVATE_MEMORY,
};
