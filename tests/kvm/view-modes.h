/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * view-modes.h — the modes on a gmemd view: write, read, write-attempt and
 * check, and the view they work on (View): its fd from gmemd, mapped shared.
 * Each mode returns 0 when its checks held, else a negative errno, printed.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/types.h>

#include "kvm-vm.h"
#include "libgmem.h"

typedef struct View {
        int fd;
        uint8_t *map;
        size_t size;
        bool writable;
        ino_t inode;
} View;

#define VIEW_NULL { .fd = -EBADF, .map = MAP_FAILED }

void view_done(View *v);

/*
 * Gets vm's view of region (Attach with access, or GetFd) and maps all of
 * it shared: writable only for "rw". The fd's own access mode must allow it.
 */
int view_open(GmemClient *c, const char *vm, const char *region, GmemAccess access, bool get_fd, View *ret);

/*
 * The view from an fd this process inherited (gmemctl attach|migrate --exec
 * names it in $GMEM_FD): checked to be a regular file, mapped shared,
 * writable when the fd is open for writing. Takes fd only on success.
 */
int view_from_fd(int fd, const char *vm, const char *region, View *ret);

/* write: the guest writes the pattern of --seed over --length bytes; the VMM's mapping must hold it. */
int mode_write(Vmm *v, const View *view);

/*
 * read: the guest reports every word and its checksum; the words must be
 * what the VMM's mapping holds (with --expect-pattern, the pattern of
 * --seed), the checksum theirs.
 */
int mode_read(Vmm *v, const View *view);

/*
 * write-attempt: the guest stores to a read-only view; prints what KVM did.
 * The memory must not change, through the VMM's mapping and, with
 * --check-vm, through that VM's read-write view of region, asked of c.
 */
int mode_write_attempt(Vmm *v, GmemClient *c, const char *region, const View *view);

/* check, no KVM: the first --length bytes of the view hold the pattern of --seed; through names the mapping. */
int check_pattern(const View *view, const char *through);
