/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * backend-kmod.h — the device of the kmod backend (backend-kmod.c): gmemd
 * opens it once, at start, after dropping privileges, and the backend is
 * usable only if that worked.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BACKEND_KMOD_DEVICE "/dev/gmem"

/* Every region gmemd makes on the device is called this and its name: others' regions never are. */
#define BACKEND_KMOD_PREFIX "gmemd."

/*
 * Opens the device and checks its API; 0, or -errno with the reason kept for
 * every later use of the backend (BackendUnavailable naming it).
 */
int backend_kmod_open(const char *path);
void backend_kmod_close(void);
/* The reason the backend is unavailable ("" when it is usable). */
const char *backend_kmod_why(void);

/* The kernel's name of region name: -ENAMETOOLONG if prefix and name do not fit. */
int backend_kmod_kernel_name(const char *name, char *buf, size_t size);

/* The label of the kernel view of gmemd's view id tag: this and the id in decimal. */
#define BACKEND_KMOD_VIEW_LABEL "gmemd.view."
int backend_kmod_view_label(uint64_t tag, char *buf, size_t size);

/* The device fd (owned by the backend), or -errno if the backend is unusable. */
int backend_kmod_device(void);
/* The module keeps views with no file open (GMEM_VIEW_KEEP): they outlive gmemd. */
bool backend_kmod_keeps_views(void);
/*
 * Whether views gmemd makes from now on are kept by the module and labelled
 * with gmemd's view id: only while the ledger keeps gmemd's records (no
 * effect where the module cannot keep views).
 */
void backend_kmod_set_keep(bool keep);
/* A new handle of gmemd's kernel region called name (by gmemd's name), or -errno. */
int backend_kmod_open_region(const char *name);

/*
 * Calls f for each view the region keeps (GMEM_VIEW_KEEP) that is not
 * revoked (with with_revoked, the revoked ones too: a revoke that could not
 * copy every pinned page leaves its view kept): its kernel id, whether it is
 * pending or revoked, and its label ("" if it has none gmemd could have
 * made). Stops at the first non-zero return of f and returns it; 0 when all
 * were seen, -errno on failure.
 */
typedef int (*KmodViewFunc)(uint64_t id, bool pending, bool revoked, const char *label, void *userdata);
int backend_kmod_for_each_kept_view(int region_fd, bool with_revoked, KmodViewFunc f, void *userdata);
/* Revokes (and lets go) the view of kernel id id; a new file of it. */
int backend_kmod_revoke_view_id(int region_fd, uint64_t id);
int backend_kmod_open_view_id(int region_fd, uint64_t id);
/* gmemd's view id in a kernel view's label: -EINVAL if it is not one gmemd made. */
int backend_kmod_view_tag(const char *label, uint64_t *ret);

/*
 * The ledger: a one-page region of the device that only holds records, each
 * a kept pending view whose label is the record (store/ledger.c). Opened, or
 * made the first time; -EPERM if a region of that name was made by another
 * uid, -EOPNOTSUPP if the module does not keep views.
 */
/*
 * Calls f with gmemd's name and the size of each region on the device that
 * gmemd's uid made under its prefix; as backend_kmod_for_each_kept_view().
 */
typedef int (*KmodRegionFunc)(const char *name, uint64_t size, void *userdata);
int backend_kmod_for_each_own_region(KmodRegionFunc f, void *userdata);

#define BACKEND_KMOD_LEDGER "gmemd-ledger"
int backend_kmod_ledger_open(void);
/* A new record labelled label (1..GMEM_LABEL_MAX bytes); its kernel id. */
int backend_kmod_ledger_add(int ledger_fd, const char *label, uint64_t *ret_id);
