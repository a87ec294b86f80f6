/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * region-spare.c — see region-spare.h.
 */
#include <errno.h>
#include <systemd/sd-event.h>

#include "log.h"
#include "macro.h"
#include "region-spare.h"

/* At most this many spares in all, so that they never crowd the fds views need. */
#define SPARE_FDS_MAX 1024U

bool region_spare_fits(const Region *reg, ViewAccess access) {
        /* A memfd view is a re-open with the view's access, whatever its window, rights or state (those are
         * bookkeeping there): any read-write one can be a spare. */
        return reg->backend == BACKEND_MEMFD && access == VIEW_ACCESS_RW;
}

static void spare_dequeue(Region *reg) {
        Manager *m = reg->manager;

        if (!reg->spare_wanted)
                return;
        if (reg->spare_prev)
                reg->spare_prev->spare_next = reg->spare_next;
        else if (m && m->spare_queue == reg)
                m->spare_queue = reg->spare_next;
        if (reg->spare_next)
                reg->spare_next->spare_prev = reg->spare_prev;
        reg->spare_prev = reg->spare_next = NULL;
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

/* Idle: opens a spare for every region that asked. A failure leaves that region without one. */
static int on_spare(sd_event_source *s, void *userdata) {
        Manager *m = userdata;
        Region *reg;

        while ((reg = m->spare_queue)) {
                BackendView bv = { .fd = -EBADF };
                GmemError e = GMEM_ERROR_INIT;

                spare_dequeue(reg);
                if (reg->spare_fd >= 0 || m->n_spare_fds >= SPARE_FDS_MAX)
                        continue;
                if (reg->ops->open_view(&reg->br, &(BackendViewSpec) { .access = VIEW_ACCESS_RW }, &bv, &e) < 0) {
                        log_debug("No spare view file for region '%s': %s", reg->name, e.message);
                        continue;
                }
                reg->spare_fd = bv.fd;
                m->n_spare_fds++;
        }
        return sd_event_source_set_enabled(s, SD_EVENT_OFF);
}

void region_spare_want(Region *reg) {
        Manager *m = reg->manager;

        if (!m->event || reg->spare_fd >= 0 || reg->spare_wanted || m->n_spare_fds >= SPARE_FDS_MAX)
                return;
        if (!m->spare_source) {
                if (sd_event_add_defer(m->event, &m->spare_source, on_spare, m) < 0)
                        return;
                /* After every call and event that is waiting: off the path of any answer. */
                (void) sd_event_source_set_priority(m->spare_source, SD_EVENT_PRIORITY_IDLE);
        }
        if (sd_event_source_set_enabled(m->spare_source, SD_EVENT_ON) < 0)
                return;
        reg->spare_next = m->spare_queue;
        if (m->spare_queue)
                m->spare_queue->spare_prev = reg;
        m->spare_queue = reg;
        reg->spare_wanted = true;
}

void manager_spare_done(Manager *m) {
        m->spare_source = sd_event_source_disable_unref(m->spare_source);
}
