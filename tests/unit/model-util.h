/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * model-util.h — the model's two-step calls (reserve, then make), as one
 * call each for tests that are not about the reservation itself: what a
 * D-Bus handler does, minus the bus.
 */
#pragma once

#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "migration.h"
#include "parse.h"
#include "region.h"
#include "usage.h"
#include "view.h"
#include "vm.h"

static inline int create_region(Manager *m, const RegionParams *p, const Actor *a, Region **ret, GmemError *e) {
        UsageCharge charge = {};
        int r = region_reserve(m, p, a, &charge, e);
        return r < 0 ? r : region_create(m, p, &charge, ret, e);
}

static inline int register_vm(Manager *m, const VmParams *p, const Actor *a, Vm **ret, GmemError *e) {
        UsageCharge charge = {};
        int r = vm_reserve(m, a, &charge, e);
        return r < 0 ? r : vm_register(m, p, &charge, ret, e);
}

static inline int attach_view(Vm *vm, Region *reg, const ViewParams *p, const Actor *a, View **ret,
                              bool *ret_existing, GmemError *e) {
        UsageCharge charge = {};
        int r = view_reserve(vm, reg, a, &charge, e);
        return r < 0 ? r : view_attach(vm, reg, p, &charge, ret, ret_existing, e);
}

static inline int begin_migration(Vm *source, Vm *target, const Actor *a, Migration **ret, GmemError *e) {
        UsageCharge charge = {};
        int r = migration_reserve(source, a, &charge, e);
        return r < 0 ? r : migration_begin(source, target, &charge, ret, e);
}

/* A memfd as the memfd backend leaves one in the fd store: named after its region, sized, sealed. */
static inline int stored_memfd(const char *name, uint64_t size) {
        char label[GMEM_NAME_MAX + 8];
        int fd;

        (void) snprintf(label, sizeof(label), "gmem:%s", name);
        fd = memfd_create(label, MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0 || ftruncate(fd, (off_t) size) < 0 ||
            fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
                return -1;
        return fd;
}
