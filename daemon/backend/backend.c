/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * backend.c — the backend registry and the string tables of the enums the
 * backends speak (backend names, view access, memory attributes).
 */
#include <string.h>

#include "backend.h"

static const char *const backend_type_table[_BACKEND_MAX] = {
        [BACKEND_MEMFD]   = "memfd",
        [BACKEND_HUGETLB] = "hugetlb",
        [BACKEND_SECRET]  = "secret",
};

static const char *const view_access_table[_VIEW_ACCESS_MAX] = {
        [VIEW_ACCESS_RO] = "ro",
        [VIEW_ACCESS_RW] = "rw",
};

static const char *const memory_attribute_table[_MEMORY_ATTRIBUTE_MAX] = {
        [MEMORY_ATTRIBUTE_SHARED]  = "shared",
        [MEMORY_ATTRIBUTE_PRIVATE] = "private",
};

static int lookup(const char *const *table, int n, const char *s) {
        if (!s)
                return -EINVAL;
        for (int i = 0; i < n; i++)
                if (table[i] && streq(table[i], s))
                        return i;
        return -EINVAL;
}

const char *backend_type_to_string(BackendType t) {
        return t >= 0 && t < _BACKEND_MAX ? backend_type_table[t] : NULL;
}

BackendType backend_type_from_string(const char *s) {
        return (BackendType) lookup(backend_type_table, _BACKEND_MAX, s);
}

const char *view_access_to_string(ViewAccess a) {
        return a >= 0 && a < _VIEW_ACCESS_MAX ? view_access_table[a] : NULL;
}

ViewAccess view_access_from_string(const char *s) {
        return (ViewAccess) lookup(view_access_table, _VIEW_ACCESS_MAX, s);
}

const char *memory_attribute_to_string(MemoryAttribute a) {
        return a >= 0 && a < _MEMORY_ATTRIBUTE_MAX ? memory_attribute_table[a] : NULL;
}

MemoryAttribute memory_attribute_from_string(const char *s) {
        return (MemoryAttribute) lookup(memory_attribute_table, _MEMORY_ATTRIBUTE_MAX, s);
}

static const BackendOps *const backends[_BACKEND_MAX] = {
        [BACKEND_MEMFD]   = &backend_memfd_ops,
        [BACKEND_HUGETLB] = &backend_hugetlb_ops,
        [BACKEND_SECRET]  = &backend_secret_ops,
};

const BackendOps *backend_get(BackendType t) {
        return t >= 0 && t < _BACKEND_MAX ? backends[t] : NULL;
}

void backend_region_release(BackendRegion *r) {
        if (!r)
                return;
        r->fd = safe_close(r->fd);
}
