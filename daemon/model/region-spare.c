/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * region-spare.c — see region-spare.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <systemd/sd-event.h>

#include "array.h"
#include "fdlimit.h"
#include "list.h"
#include "log.h"
#include "macro.h"
#include "region-spare.h"

/* At most this many spares in all, so that they never crowd the fds views need. */
#define SPARE_FDS_MAX 1024U
/* At most this many files wait to be closed; more are closed at once. */
#define CLOSE_LATER_MAX 64U

bool region_spare_fits(const Region *reg, ViewAccess access) {
        /* A memfd view is a re-open with the view's access, whatever its window, rights or state (those are
         * bookkeeping there): any read-write one can be a spare. */
        return reg->backend == BACKEND_MEMFD && access == VIEW_ACCESS_RW;
}

static void spare_dequeue(Region *reg) {
        Manager *m = reg->manager;

        if (!reg->spare_wanted)
                return;
        if (m)
                LIST_REMOVE(spare, m->spare_queue, reg);
        reg->spare_wanted = false;
}

int region_spare_take(Region *reg, BackendView *ret) {
        if (reg->spare_fd < 0)
                return 0;
        *ret = (BackendView) { .fd = TAKE_FD(reg->spare_fd) };
        reg->manager->n_spare_fds--;
        return 1;
}

void region_spare_drop(Region *reg) {
        spare_dequeue(reg);
        if (reg->spare_fd >= 0) {
                reg->spare_fd = safe_close(reg->spare_fd);
                reg->manager->n_spare_fds--;
        }
}

static void close_waiting(Manager *m) {
        while (m->n_close_later > 0)
                safe_close(m->close_later[--m->n_close_later]);
}

/* Closes what waits, and opens a spare for every region that asked (a failure leaves it without one). */
static void do_after_answer(Manager *m) {
        Region *reg;

        close_waiting(m);
        while ((reg = m->spare_queue)) {
                BackendView bv = { .fd = -EBADF };
                GmemError e = GMEM_ERROR_INIT;

                spare_dequeue(reg);
                /* A spare never takes the room a view or the bus needs. */
                if (reg->spare_fd >= 0 || m->n_spare_fds >= SPARE_FDS_MAX ||
                    fdlimit_check(reg->br.fd, 1, manager_fds_held(m), NULL) < 0)
                        continue;
                if (reg->ops->open_view(&reg->br, &(BackendViewSpec) { .access = VIEW_ACCESS_RW }, &bv, &e) < 0) {
                        log_debug("No spare view file for region '%s': %s", reg->name, e.message);
                        continue;
                }
                reg->spare_fd = bv.fd;
                m->n_spare_fds++;
        }
}

static void after_answer_off(Manager *m) {
        if (m->spare_source_on && sd_event_source_set_enabled(m->spare_source, SD_EVENT_OFF) >= 0)
                m->spare_source_on = false;
}

static int on_spare(sd_event_source *s, void *userdata) {
        Manager *m = userdata;

        do_after_answer(m);
        after_answer_off(m);
        return 0;
}

Manager *manager_answer_begin(Manager *m) {
        m->answering++;
        return m;
}

void manager_answer_endp(Manager **mp) {
        Manager *m = *mp;

        if (!m || --m->answering > 0)
                return;
        if (m->spare_queue || m->n_close_later > 0)
                do_after_answer(m);
        after_answer_off(m);
}

/*
 * Makes sure what was just queued is done after the answer: by the answer in
 * progress, or by the event source, made first if need be and turned on;
 * false if there can be neither.
 */
static bool after_answer_on(Manager *m) {
        if (!m->event)
                return false;
        if (m->answering > 0)
                return true;
        if (m->spare_source_on)
                return true;
        if (!m->spare_source) {
                if (sd_event_add_defer(m->event, &m->spare_source, on_spare, m) < 0)
                        return false;
                /* At the priority of calls, so it runs next, before the next call is dispatched (sd-event
                 * takes the longest-pending first), and is never starved by a steady stream of calls; the
                 * answer that asked for it has been sent by then. */
                (void) sd_event_source_set_priority(m->spare_source, SD_EVENT_PRIORITY_NORMAL);
        }
        if (sd_event_source_set_enabled(m->spare_source, SD_EVENT_ON) < 0)
                return false;
        m->spare_source_on = true;
        return true;
}

void manager_close_later(Manager *m, int fd) {
        if (fd < 0)
                return;
        if (m->n_close_later >= CLOSE_LATER_MAX ||
            GROW_ARRAY(m->close_later, m->allocated_close_later, m->n_close_later + 1) < 0 || !after_answer_on(m)) {
                safe_close(fd);
                return;
        }
        m->close_later[m->n_close_later++] = fd;
}

void region_spare_want(Region *reg) {
        Manager *m = reg->manager;

        if (reg->spare_fd >= 0 || reg->spare_wanted || m->n_spare_fds >= SPARE_FDS_MAX || !after_answer_on(m))
                return;
        LIST_PREPEND(spare, m->spare_queue, reg);
        reg->spare_wanted = true;
}

void manager_spare_done(Manager *m) {
        close_waiting(m);
        free(m->close_later);
        m->close_later = NULL;
        m->allocated_close_later = 0;
        m->spare_source = sd_event_source_disable_unref(m->spare_source);
        m->spare_source_on = false;
}
