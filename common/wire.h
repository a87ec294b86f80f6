/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * wire.h — the enums whose names travel over D-Bus: backends, view access,
 * memory attributes, view states and migration states. gmemd and its
 * clients (libgmem, gmemctl) read and write these strings; they are defined
 * here once, so the two sides cannot drift apart. org.gmemd.Broker1(5) lists
 * the same names.
 */
#pragma once

#include <errno.h>

#include "macro.h"

typedef enum BackendType {
        BACKEND_MEMFD,
        BACKEND_HUGETLB,
        BACKEND_SECRET,
        BACKEND_KMOD,
        BACKEND_GUEST_MEMFD,
        _BACKEND_MAX,
        _BACKEND_INVALID = -EINVAL,
} BackendType;

typedef enum ViewAccess {
        VIEW_ACCESS_RO,
        VIEW_ACCESS_RW,
        _VIEW_ACCESS_MAX,
        _VIEW_ACCESS_INVALID = -EINVAL,
} ViewAccess;

typedef enum MemoryAttribute {
        MEMORY_ATTRIBUTE_SHARED,
        MEMORY_ATTRIBUTE_PRIVATE,
        _MEMORY_ATTRIBUTE_MAX,
        _MEMORY_ATTRIBUTE_INVALID = -EINVAL,
} MemoryAttribute;

/*
 * active: in use; pending: made for a migration target, not yet committed;
 * revoked: taken back, never handed out again.
 */
typedef enum ViewState {
        VIEW_STATE_ACTIVE,
        VIEW_STATE_PENDING,
        VIEW_STATE_REVOKED,
        _VIEW_STATE_MAX,
        _VIEW_STATE_INVALID = -EINVAL,
} ViewState;

typedef enum MigrationState {
        MIGRATION_PREPARED,
        MIGRATION_COMMITTED,
        MIGRATION_ABORTED,
        _MIGRATION_STATE_MAX,
        _MIGRATION_STATE_INVALID = -EINVAL,
} MigrationState;

/*
 * How gmemd keeps its state across a crash: "fd-store" (every region, VM and
 * view is in the service manager's fd store before a call is answered),
 * "degraded" (something could not be stored: a crash may lose it), "none"
 * (no service manager keeps fds for gmemd).
 */
typedef enum PersistenceState {
        PERSISTENCE_NONE,
        PERSISTENCE_FD_STORE,
        PERSISTENCE_DEGRADED,
        PERSISTENCE_KERNEL,
        _PERSISTENCE_STATE_MAX,
        _PERSISTENCE_STATE_INVALID = -EINVAL,
} PersistenceState;

const char *backend_type_to_string(BackendType t) _pure_;
BackendType backend_type_from_string(const char *s) _pure_;
const char *view_access_to_string(ViewAccess a) _pure_;
ViewAccess view_access_from_string(const char *s) _pure_;
const char *memory_attribute_to_string(MemoryAttribute a) _pure_;
MemoryAttribute memory_attribute_from_string(const char *s) _pure_;
const char *view_state_to_string(ViewState s) _pure_;
ViewState view_state_from_string(const char *s) _pure_;
const char *migration_state_to_string(MigrationState s) _pure_;
MigrationState migration_state_from_string(const char *s) _pure_;
const char *persistence_state_to_string(PersistenceState s) _pure_;
PersistenceState persistence_state_from_string(const char *s) _pure_;
