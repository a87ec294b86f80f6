/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bus-direct.c — see bus-direct.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/sockios.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <systemd/sd-id128.h>
#include <unistd.h>

#include "bus-direct.h"
#include "bus-util.h"
#include "list.h"
#include "log.h"
#include "manager-dbus.h"

/* After accept() failed for want of fds or memory: how long the socket is left alone. */
#define ACCEPT_PAUSE_USEC (1000 * 1000ULL)
/* Connections taken per wake-up, so that a flood of connects cannot starve the calls of others. */
#define ACCEPT_BATCH 16

typedef struct DirectConn DirectConn;

struct DirectConn {
        DirectServer *server;
        sd_bus *bus;
        uid_t uid;
        unsigned unread_fds;        /* sent since the send queue was last seen empty */
        bool authenticating;        /* not yet seen ready (on_post) */
        bool draining;              /* ready, with what sd-bus read still to process (on_post) */
        uint64_t accepted_usec;     /* CLOCK_MONOTONIC */
        bool closed;                /* disconnected; freed by the reaper */
        DirectConn *conns_prev, *conns_next;   /* in DirectServer.conns (list.h) */
};

struct DirectServer {
        BusContext ctx;             /* what bus_context_of() gives for a direct connection */
        Manager *manager;
        sd_event *event;
        sd_id128_t id;
        int listen_fd;
        sd_event_source *accept_source;
        sd_event_source *accept_pause;
        sd_event_source *reaper;
        sd_event_source *post;      /* on while connections authenticate */
        sd_event_source *drain;     /* on while ready connections have read messages to process */
        sd_event_source *auth_timer;        /* ends authentications that take too long */
        DirectConn *conns;
        unsigned n_conns;
        unsigned n_authenticating;
        unsigned n_draining;
        DirectConn *current;        /* whose message is being dispatched */
};

static DirectConn *conn_free(DirectConn *c) {
        DirectServer *s;

        if (!c)
                return NULL;
        s = c->server;
        LIST_REMOVE(conns, s->conns, c);
        if (s->current == c)
                s->current = NULL;
        if (c->authenticating)
                s->n_authenticating--;
        if (c->draining)
                s->n_draining--;
        s->n_conns--;
        sd_bus_close_unref(c->bus);       /* no flush: a peer that does not read would hold gmemd up */
        free(c);
        return NULL;
}

static int on_reap(sd_event_source *src, void *userdata) {
        DirectServer *s = userdata;
        DirectConn *c, *next;

        for (c = s->conns; c; c = next) {
                next = c->conns_next;
                if (c->closed)
                        conn_free(c);
        }
        return 0;
}

static void conn_closed(DirectConn *c) {
        c->closed = true;
        if (sd_event_source_set_enabled(c->server->reaper, SD_EVENT_ONESHOT) < 0)
                log_warning("Cannot schedule freeing a closed direct connection; it is freed at exit");
}

/* Every message of c passes here first: it is the current connection while its handler runs. */
static int on_conn_message(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        DirectConn *c = userdata;
        uint64_t queued = 0;

        c->server->current = c;
        if (sd_bus_message_is_signal(msg, "org.freedesktop.DBus.Local", "Disconnected")) {
                /* Freed from the event loop, not from inside the connection's own dispatch. */
                conn_closed(c);
                return 1;
        }
        if (!c->closed && sd_bus_get_n_queued_write(c->bus, &queued) >= 0 && queued > DIRECT_QUEUED_MAX) {
                /* It sends calls and reads no replies: gmemd would hold them all. */
                log_debug("Closing the direct connection of uid %u: %" PRIu64 " replies wait for it to read "
                          "(at most %u)", (unsigned) c->uid, queued, DIRECT_QUEUED_MAX);
                conn_closed(c);
        }
        return c->closed;       /* a closed connection's calls are not answered */
}


/*
 * sd-bus reads the client's first message together with the end of the
 * authentication (the client sends "BEGIN" and its first call at once) and
 * then waits for the socket to become readable again before it looks at
 * what it already has: a client that waits for that answer would wait
 * forever. So once a connection is ready, it is processed, at most
 * DRAIN_BATCH messages per event-loop iteration (a client that keeps
 * sending is not to hold the loop), until sd-bus has nothing left of what
 * it read; from then on the socket's readiness drives it, one message at a
 * time.
 */
#define DRAIN_BATCH 16

/* Processes what sd-bus of each ready connection has read, DRAIN_BATCH messages per connection per iteration. */
static int on_drain(sd_event_source *src, void *userdata) {
        DirectServer *s = userdata;

        for (DirectConn *c = s->conns; c && s->n_draining > 0; c = c->conns_next) {
                int r = 0;

                if (!c->draining)
                        continue;
                for (unsigned i = 0; i < DRAIN_BATCH && !c->closed; i++) {
                        r = sd_bus_process(c->bus, NULL);
                        if (r <= 0)
                                break;
                }
                if (r < 0 && !c->closed) {
                        log_debug_errno(r, "Direct connection of uid %u failed", (unsigned) c->uid);
                        conn_closed(c);
                }
                if (r <= 0 || c->closed) {
                        c->draining = false;
                        s->n_draining--;
                }
        }
        if (s->n_draining == 0)
                (void) sd_event_source_set_enabled(src, SD_EVENT_OFF);
        return 0;
}

/* After any event: connections that have finished authenticating start draining. */
static int on_post(sd_event_source *src, void *userdata) {
        DirectServer *s = userdata;

        for (DirectConn *c = s->conns; c && s->n_authenticating > 0; c = c->conns_next) {
                if (!c->authenticating || c->closed || sd_bus_is_ready(c->bus) <= 0)
                        continue;
                c->authenticating = false;
                s->n_authenticating--;
                c->draining = true;
                s->n_draining++;
                (void) sd_event_source_set_enabled(s->drain, SD_EVENT_ON);
        }
        if (s->n_authenticating == 0) {
                (void) sd_event_source_set_enabled(s->post, SD_EVENT_OFF);
                (void) sd_event_source_set_enabled(s->auth_timer, SD_EVENT_OFF);
        }
        return 0;
}

/*
 * sd-bus gives a peer 90 s to authenticate; a uid could keep its share of
 * connections busy with silent ones that long. gmemd gives it
 * DIRECT_AUTH_TIMEOUT_USEC, checked every half of that while any
 * connection authenticates.
 */
static int on_auth_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        DirectServer *s = userdata;
        uint64_t now = 0;

        (void) sd_event_now(s->event, CLOCK_MONOTONIC, &now);
        for (DirectConn *c = s->conns; c; c = c->conns_next)
                if (c->authenticating && !c->closed && sd_bus_is_ready(c->bus) <= 0 &&
                    now - c->accepted_usec >= DIRECT_AUTH_TIMEOUT_USEC) {
                        log_debug("Closing a direct connection of uid %u: no authentication within %u s",
                                  (unsigned) c->uid, (unsigned) (DIRECT_AUTH_TIMEOUT_USEC / 1000000));
                        conn_closed(c);
                }
        if (s->n_authenticating > 0)
                (void) sd_event_source_set_time_relative(src, DIRECT_AUTH_TIMEOUT_USEC / 2);
        return 0;
}

static void auth_timer_arm(DirectServer *s) {
        int enabled = SD_EVENT_OFF;

        if (sd_event_source_get_enabled(s->auth_timer, &enabled) >= 0 && enabled != SD_EVENT_OFF)
                return;
        if (sd_event_source_set_time_relative(s->auth_timer, DIRECT_AUTH_TIMEOUT_USEC / 2) < 0 ||
            sd_event_source_set_enabled(s->auth_timer, SD_EVENT_ON) < 0)
                log_warning("Cannot time direct connections' authentication; sd-bus's own timeout applies");
}

static unsigned conns_of_uid(const DirectServer *s, uid_t uid) {
        unsigned n = 0;

        for (const DirectConn *c = s->conns; c; c = c->conns_next)
                if (!c->closed && c->uid == uid)
                        n++;
        return n;
}

int direct_server_adopt(DirectServer *s, int fd) {
        _cleanup_(sd_bus_close_unrefp) sd_bus *bus = NULL;
        _cleanup_close_ int owned = fd;
        struct ucred uc = {};
        socklen_t l = sizeof(uc);
        DirectConn *c;
        unsigned n_uid;
        int r;

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &l) < 0)
                return log_debug_errno(errno, "Direct connection without peer credentials, closed");
        if (s->n_conns >= DIRECT_CONNECTIONS_MAX) {
                log_debug("Direct connection of uid %u closed: %u connections are open (at most %u)",
                          (unsigned) uc.uid, s->n_conns, DIRECT_CONNECTIONS_MAX);
                return -EUSERS;
        }
        n_uid = conns_of_uid(s, uc.uid);
        if (n_uid >= DIRECT_PER_UID_MAX) {
                log_debug("Direct connection of uid %u closed: it has %u open (at most %u per uid)",
                          (unsigned) uc.uid, n_uid, DIRECT_PER_UID_MAX);
                return -EUSERS;
        }

        r = sd_bus_new(&bus);
        if (r < 0)
                return r;
        r = sd_bus_set_fd(bus, fd, fd);
        if (r < 0)
                return r;
        TAKE_FD(owned);         /* the connection's now */
        (void) sd_bus_set_description(bus, "gmemd-direct");
        r = sd_bus_set_server(bus, true, s->id);
        if (r >= 0)
                r = sd_bus_negotiate_fds(bus, true);
        if (r < 0)
                return r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (DirectConn) { .server = s, .uid = uc.uid };
        LIST_PREPEND(conns, s->conns, c);
        s->n_conns++;

        r = sd_bus_add_filter(bus, NULL, on_conn_message, c);
        if (r >= 0)
                r = manager_bus_add_objects(s->manager, bus);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r >= 0)
                r = sd_bus_attach_event(bus, s->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0) {
                conn_free(c);   /* c->bus is still NULL: the cleanup closes the bus */
                return log_debug_errno(r, "Cannot serve a direct connection of uid %u", (unsigned) uc.uid);
        }
        c->bus = TAKE_PTR(bus);
        c->authenticating = true;
        (void) sd_event_now(s->event, CLOCK_MONOTONIC, &c->accepted_usec);
        s->n_authenticating++;
        auth_timer_arm(s);
        (void) sd_event_source_set_enabled(s->post, SD_EVENT_ON);
        log_debug("Direct connection of uid %u (%u open)", (unsigned) uc.uid, s->n_conns);
        return 0;
}

static int on_accept_pause_end(sd_event_source *src, uint64_t usec, void *userdata) {
        DirectServer *s = userdata;

        (void) sd_event_source_set_enabled(s->accept_source, SD_EVENT_ON);
        return 0;
}

/* Out of fds or memory: leave the socket alone for a while instead of waking for it at once again. */
static void accept_pause(DirectServer *s, int err) {
        int r;

        log_warning("Cannot accept direct connections for now: %s", strerror(err));
        r = sd_event_source_set_enabled(s->accept_source, SD_EVENT_OFF);
        if (r < 0)
                return;
        if (s->accept_pause)
                r = sd_event_source_set_time_relative(s->accept_pause, ACCEPT_PAUSE_USEC);
        else
                r = sd_event_add_time_relative(s->event, &s->accept_pause, CLOCK_MONOTONIC, ACCEPT_PAUSE_USEC, 0,
                                               on_accept_pause_end, s);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->accept_pause, SD_EVENT_ONESHOT);
        if (r < 0)
                (void) sd_event_source_set_enabled(s->accept_source, SD_EVENT_ON);
}

static int on_accept(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        DirectServer *s = userdata;

        for (unsigned i = 0; i < ACCEPT_BATCH; i++) {
                int cfd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

                if (cfd >= 0) {
                        (void) direct_server_adopt(s, cfd);
                        continue;
                }
                switch (errno) {
                case EAGAIN:
                        return 0;
                case EINTR:
                case ECONNABORTED:
                case EPROTO:
                case EPERM:
                        continue;       /* that connection's problem, not the socket's */
                case EMFILE:
                case ENFILE:
                case ENOBUFS:
                case ENOMEM:
                        accept_pause(s, errno);
                        return 0;
                default:
                        log_error("Cannot accept direct connections: %s", strerror(errno));
                        accept_pause(s, errno);
                        return 0;
                }
        }
        return 0;
}

int direct_server_listen(DirectServer *s, int listen_fd) {
        int r;

        if (s->listen_fd >= 0) {
                safe_close(listen_fd);
                return -EBUSY;
        }
        s->listen_fd = listen_fd;
        r = sd_event_add_io(s->event, &s->accept_source, listen_fd, EPOLLIN, on_accept, s);
        if (r < 0)
                return r;
        /* Calls in progress first, new connections after them. */
        return sd_event_source_set_priority(s->accept_source, SD_EVENT_PRIORITY_NORMAL + 1);
}

unsigned direct_server_connections(const DirectServer *s) {
        return s ? s->n_conns : 0;
}

static DirectConn *conn_of(DirectServer *s, sd_bus *bus) {
        if (s->current && s->current->bus == bus)
                return s->current;
        for (DirectConn *c = s->conns; c; c = c->conns_next)
                if (c->bus == bus)
                        return c;
        return NULL;
}

/* Whether the peer has read everything sent to it: nothing queued in sd-bus, nothing unread in the socket. */
static bool conn_drained(DirectConn *c) {
        uint64_t queued = 0;
        int outq = 0;

        if (sd_bus_get_n_queued_write(c->bus, &queued) < 0 || queued > 0)
                return false;
        return ioctl(sd_bus_get_fd(c->bus), SIOCOUTQ, &outq) >= 0 && outq == 0;
}

int direct_server_admit_fds(DirectServer *s, sd_bus_message *msg, unsigned n, FdFlowRefusal *ret_refusal) {
        DirectConn *c = conn_of(s, sd_bus_message_get_bus(msg));

        if (!c)
                return 0;       /* a connection the server did not accept (a test harness's): nothing to count */
        if (c->unread_fds + n > DIRECT_UNREAD_FDS_MAX) {
                if (!conn_drained(c)) {
                        *ret_refusal = (FdFlowRefusal) { .unread = c->unread_fds, .max = DIRECT_UNREAD_FDS_MAX };
                        return -EBUSY;
                }
                c->unread_fds = 0;
        }
        c->unread_fds += n;
        return 0;
}

int direct_server_new(Manager *m, sd_event *event, DirectServer **ret) {
        DirectServer *s;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->manager = m;
        s->event = sd_event_ref(event);
        s->listen_fd = -EBADF;
        s->ctx.direct = s;
        r = sd_id128_randomize(&s->id);
        if (r >= 0)
                r = bus_creds_cache_new(NULL, &s->ctx.creds);
        if (r >= 0)
                r = sd_event_add_defer(event, &s->reaper, on_reap, s);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->reaper, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_post(event, &s->post, on_post, s);
        if (r >= 0)
                r = sd_event_add_defer(event, &s->drain, on_drain, s);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->drain, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time_relative(event, &s->auth_timer, CLOCK_MONOTONIC, DIRECT_AUTH_TIMEOUT_USEC, 0,
                                               on_auth_timer, s);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->auth_timer, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->post, SD_EVENT_OFF);
        if (r < 0) {
                direct_server_free(s);
                return r;
        }
        m->direct_userdata = &s->ctx;
        *ret = s;
        return 0;
}

DirectServer *direct_server_free(DirectServer *s) {
        if (!s)
                return NULL;
        while (s->conns)
                conn_free(s->conns);
        if (s->manager && s->manager->direct_userdata == &s->ctx)
                s->manager->direct_userdata = NULL;
        s->accept_source = sd_event_source_disable_unref(s->accept_source);
        s->accept_pause = sd_event_source_disable_unref(s->accept_pause);
        s->reaper = sd_event_source_disable_unref(s->reaper);
        s->post = sd_event_source_disable_unref(s->post);
        s->drain = sd_event_source_disable_unref(s->drain);
        s->auth_timer = sd_event_source_disable_unref(s->auth_timer);
        safe_close(s->listen_fd);
        bus_creds_cache_free(s->ctx.creds);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}
