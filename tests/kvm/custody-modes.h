/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * custody-modes.h — the modes that hand a guest_memfd to gmemd and take it
 * back in a new process (custody-modes.c).
 */
#pragma once

#include <stdbool.h>

#include "kvm-vm.h"
#include "libgmem.h"

/* Exit 0 if KVM makes guest_memfds with MMAP|INIT_SHARED (the custody modes can run), 77 with the reason if not. */
int mode_probe_custody(Vmm *v);

/* Returns an exit status: 0 the checks held, 1 not, 77 KVM cannot make such a guest_memfd. */
int mode_custody_put(Vmm *v, GmemClient *c, const char *region);

/* Returns 0 if every check held, a negative errno (printed) if not. */
int mode_custody_get(Vmm *v, GmemClient *c, const char *vm, const char *region, bool get_fd);
