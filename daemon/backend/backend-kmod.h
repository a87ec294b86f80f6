/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * backend-kmod.h — the device of the kmod backend (backend-kmod.c): gmemd
 * opens it once, at start, after dropping privileges, and the backend is
 * usable only if that worked.
 */
#pragma once

#include <stddef.h>

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
