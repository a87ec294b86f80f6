/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * wire.c — the string tables of the enums that travel over D-Bus (wire.h).
 */
#include "string-table.h"
#include "wire.h"

static const char *const backend_type_table[_BACKEND_MAX] = {
        [BACKEND_MEMFD]       = "memfd",
        [BACKEND_HUGETLB]     = "hugetlb",
        [BACKEND_SECRET]      = "secret",
        [BACKEND_KMOD]        = "kmod",
        [BACKEND_GUEST_MEMFD] = "guest_memfd",
};
DEFINE_STRING_TABLE_LOOKUP(backend_type, BackendType);

static const char *const view_access_table[_VIEW_ACCESS_MAX] = {
        [VIEW_ACCESS_RO] = "ro",
        [VIEW_ACCESS_RW] = "rw",
};
DEFINE_STRING_TABLE_LOOKUP(view_access, ViewAccess);

static const char *const memory_attribute_table[_MEMORY_ATTRIBUTE_MAX] = {
        [MEMORY_ATTRIBUTE_SHARED]  = "shared",
        [MEMORY_ATTRIBUTE_PRIVATE] = "private",
};
DEFINE_STRING_TABLE_LOOKUP(memory_attribute, MemoryAttribute);

static const char *const view_state_table[_VIEW_STATE_MAX] = {
        [VIEW_STATE_ACTIVE]  = "active",
        [VIEW_STATE_PENDING] = "pending",
        [VIEW_STATE_REVOKED] = "revoked",
};
DEFINE_STRING_TABLE_LOOKUP(view_state, ViewState);

static const char *const migration_state_table[_MIGRATION_STATE_MAX] = {
        [MIGRATION_PREPARED]  = "prepared",
        [MIGRATION_COMMITTED] = "committed",
        [MIGRATION_ABORTED]   = "aborted",
};
DEFINE_STRING_TABLE_LOOKUP(migration_state, MigrationState);

static const char *const persistence_state_table[_PERSISTENCE_STATE_MAX] = {
        [PERSISTENCE_NONE]     = "none",
        [PERSISTENCE_FD_STORE] = "fd-store",
        [PERSISTENCE_DEGRADED] = "degraded",
        [PERSISTENCE_KERNEL]   = "kernel",
};
DEFINE_STRING_TABLE_LOOKUP(persistence_state, PersistenceState);
