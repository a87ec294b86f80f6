/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * region-spare.h — a read-write view file opened ahead of time. On a memfd
 * a view is a re-open of the region's inode through /proc/self/fd, two
 * system calls (open and the inode check) on the way to every Attach
 * answer. Once a region has had a read-write view, gmemd keeps one such
 * file spare, opened when its event loop has nothing else to do, and the
 * next read-write view of that region takes it. A spare is a file of the
 * inode as the master fd is: gmemd holds it, nobody else sees it, and it
 * goes with the region.
 */
#pragma once

#include <stdbool.h>

#include "backend.h"
#include "manager.h"
#include "region.h"

/* Whether a view of access on reg can be a spare file: a memfd region, read-write. */
bool region_spare_fits(const Region *reg, ViewAccess access);

/* 1 with *ret set (the file is the caller's now) if reg had a spare, 0 if not. */
int region_spare_take(Region *reg, BackendView *ret);

/* Asks for a spare for reg, opened when the event loop is idle (never without an event loop). */
void region_spare_want(Region *reg);

/* Closes reg's spare and forgets the wish; for region_free(). */
void region_spare_drop(Region *reg);

/* Frees the idle event source; manager_free() calls it after every region is gone. */
void manager_spare_done(Manager *m);
