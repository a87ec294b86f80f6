/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * region-spare.h — memfd view files opened ahead and closed behind. A memfd
 * view is a re-open of the region's inode through gmemd's /proc/self/fd (an
 * open, and an inode check where that directory could not be opened) on the
 * way to the Attach answer, and a close on the way to the Detach answer.
 * Once a region has had a read-write view, gmemd keeps one such file spare,
 * opened right after the answer that took the last one has gone, and the
 * next read-write view of that region takes it; a view file gmemd lets go
 * of is closed after the answer too. A spare is a file of the inode as the
 * master fd is: gmemd holds it, nobody else sees it, and it goes with the
 * region. (A view's own file is never reused: the VM holds the same open
 * file.)
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

/* Asks for a spare for reg, opened right after the current call is answered (never without an event loop). */
void region_spare_want(Region *reg);

/* Closes reg's spare and forgets the wish; for region_free(). */
void region_spare_drop(Region *reg);

/*
 * Closes fd, a memfd view file gmemd no longer holds for anyone, when the
 * current call is answered (at once without an event loop): the VM holding its own
 * reference sees no difference, and the Detach answer does not wait for
 * the close.
 */
void manager_close_later(Manager *m, int fd);

/*
 * A handler that sends its answer itself brackets its work with these:
 * until the end, what waits for the answer (closing, spares) waits for
 * manager_answer_endp(), which does it (after the answer, on the way out of
 * the handler; before the error answer sd-bus sends for a failed one),
 * instead of turning on the event source that would do it next, which costs
 * two changes of the source and a dispatch of the event loop per call.
 *
 *   _unused_ _cleanup_(manager_answer_endp) Manager *answering = manager_answer_begin(m);
 */
Manager *manager_answer_begin(Manager *m);
void manager_answer_endp(Manager **m);

/* Closes what waits and frees the event source; manager_free() calls it after every region is gone. */
void manager_spare_done(Manager *m);
