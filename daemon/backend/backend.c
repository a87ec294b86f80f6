/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * backend.c — the backend registry: one row of operations per BackendType.
 * The names of backends, access modes and attributes are in common/wire.c.
 */
#include <errno.h>
#include <string.h>

#include "backend.h"

static const BackendOps *const backends[_BACKEND_MAX] = {
        [BACKEND_MEMFD]       = &backend_memfd_ops,
        [BACKEND_HUGETLB]     = &backend_hugetlb_ops,
        [BACKEND_SECRET]      = &backend_secret_ops,
        [BACKEND_KMOD]        = &backend_kmod_ops,
        [BACKEND_GUEST_MEMFD] = &backend_guest_memfd_ops,
};

const BackendOps *backend_get(BackendType t) {
        return t >= 0 && t < _BACKEND_MAX ? backends[t] : NULL;
}

static BackendOwnerHook owner_hook = NULL;

void backend_set_owner_hook(BackendOwnerHook hook) {
        owner_hook = hook;
}

bool backend_can_give_inode(void) {
        return owner_hook != NULL;
}

int backend_give_inode(int fd, uint32_t uid, unsigned mode) {
        return owner_hook ? owner_hook(fd, uid, mode) : -EOPNOTSUPP;
}

void backend_region_release(BackendRegion *br) {
        if (!br)
                return;
        br->fd = safe_close(br->fd);
}
