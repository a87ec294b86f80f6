/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * qmp.c — a blocking QMP client: QEMU's JSON machine protocol on a UNIX
 * socket, one command at a time.
 *
 * QEMU sends one JSON object per line: first a greeting ({"QMP": …}), then
 * for every command a reply ({"return": …} or {"error": {"class", "desc"}})
 * carrying the command's "id", and in between, at any time, events
 * ({"event": NAME, "data": …}). Everything QEMU sends is checked before use:
 * a line longer than QMP_MESSAGE_MAX, a line that is not a JSON object, a
 * reply to another command or a reply that is neither return nor error is
 * -EPROTO or -EMSGSIZE, never guessed at. Events are kept (the newest
 * QMP_EVENTS_MAX) for qmp_wait_event(). Every wait is bounded by a deadline.
 *
 * A file descriptor goes to QEMU as SCM_RIGHTS ancillary data on the first
 * byte of a command; QEMU keeps it for that command (add-fd, getfd).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "qmp.h"

#define QMP_EVENTS_MAX 256U

struct Qmp {
        int fd;
        char *buf;                      /* what was read and not yet parsed */
        size_t len;
        uint64_t timeout_usec;
        uint64_t next_id;
        struct json_object *events;     /* array of kept events */
        char *error_class;
        char *error_desc;
};

static uint64_t now_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000U + (uint64_t) ts.tv_nsec / 1000U;
}

static uint64_t deadline_after(uint64_t usec) {
        uint64_t now = now_usec(), d;

        return ADD_OVERFLOW(now, usec, &d) ? UINT64_MAX : d;
}

Qmp *qmp_free(Qmp *q) {
        if (!q)
                return NULL;
        safe_close(q->fd);
        free(q->buf);
        json_object_put(q->events);
        free(q->error_class);
        free(q->error_desc);
        free(q);
        return NULL;
}

const char *qmp_error_class(const Qmp *q) {
        return q ? q->error_class : NULL;
}

const char *qmp_error_desc(const Qmp *q) {
        return q ? q->error_desc : NULL;
}

/* Reads until one complete line is buffered or the deadline passes. */
static int fill_line(Qmp *q, uint64_t deadline) {
        for (;;) {
                struct pollfd p = { .fd = q->fd, .events = POLLIN };
                uint64_t now, wait_ms;
                ssize_t n;
                int k;

                if (q->len > 0 && memchr(q->buf, '\n', q->len))
                        return 0;
                if (q->len >= QMP_MESSAGE_MAX)
                        return -EMSGSIZE;

                now = now_usec();
                if (now >= deadline)
                        return -ETIMEDOUT;
                wait_ms = (deadline - now + 999) / 1000;
                k = poll(&p, 1, wait_ms > INT32_MAX ? INT32_MAX : (int) wait_ms);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (k == 0)
                        return -ETIMEDOUT;

                n = recv(q->fd, q->buf + q->len, QMP_MESSAGE_MAX - q->len, MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR || errno == EAGAIN)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        return -ECONNRESET;     /* QEMU closed the connection */
                q->len += (size_t) n;
        }
}

/* The next message as a JSON object (a reference the caller puts). */
static int read_message(Qmp *q, uint64_t deadline, struct json_object **ret) {
        struct json_tokener *tok;
        struct json_object *o;
        size_t line;
        char *nl;
        int r;

        for (;;) {
                r = fill_line(q, deadline);
                if (r < 0)
                        return r;
                nl = memchr(q->buf, '\n', q->len);
                line = (size_t) (nl - q->buf);
                /* QEMU ends lines with "\r\n" on some character devices; blank lines carry nothing. */
                if (line > 0 && q->buf[line - 1] == '\r')
                        line--;
                if (line > 0)
                        break;
                q->len -= (size_t) (nl - q->buf) + 1;
                memmove(q->buf, nl + 1, q->len);
        }

        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        o = json_tokener_parse_ex(tok, q->buf, (int) line);
        r = json_tokener_get_error(tok) == json_tokener_success && tok->char_offset == (int) line ? 0 : -EPROTO;
        json_tokener_free(tok);

        q->len -= (size_t) (nl - q->buf) + 1;
        memmove(q->buf, nl + 1, q->len);

        if (r < 0 || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return -EPROTO;
        }
        *ret = o;
        return 0;
}

/* Keeps an event (taken), dropping the oldest beyond QMP_EVENTS_MAX. */
static int keep_event(Qmp *q, struct json_object *event) {
        if (json_object_array_length(q->events) >= QMP_EVENTS_MAX)
                (void) json_object_array_del_idx(q->events, 0, 1);
        if (json_object_array_add(q->events, event) < 0) {
                json_object_put(event);
                return -ENOMEM;
        }
        return 0;
}

static bool is_event(struct json_object *m) {
        struct json_object *e;

        return json_object_object_get_ex(m, "event", &e) && json_object_is_type(e, json_type_string);
}

static int send_all(Qmp *q, const char *data, size_t len, int fd) {
        union {
                struct cmsghdr cmsg;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        size_t done = 0;

        if (fd >= 0) {
                struct iovec iov = { .iov_base = (void *) data, .iov_len = len };
                struct msghdr mh = {
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = &control,
                        .msg_controllen = sizeof(control),
                };
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                ssize_t n;

                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &fd, sizeof(int));

                do
                        n = sendmsg(q->fd, &mh, MSG_NOSIGNAL);
                while (n < 0 && errno == EINTR);
                if (n < 0)
                        return negative_errno();
                done = (size_t) n;
        }

        while (done < len) {
                ssize_t n = send(q->fd, data + done, len - done, MSG_NOSIGNAL);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                done += (size_t) n;
        }
        return 0;
}

static int set_error(Qmp *q, struct json_object *error) {
        struct json_object *cls = NULL, *desc = NULL;

        if (!json_object_is_type(error, json_type_object) ||
            !json_object_object_get_ex(error, "class", &cls) || !json_object_is_type(cls, json_type_string) ||
            !json_object_object_get_ex(error, "desc", &desc) || !json_object_is_type(desc, json_type_string))
                return -EPROTO;
        q->error_class = strdup(json_object_get_string(cls));
        q->error_desc = strdup(json_object_get_string(desc));
        if (!q->error_class || !q->error_desc)
                return -ENOMEM;
        return -EREMOTEIO;
}

int qmp_execute(Qmp *q, const char *command, struct json_object *arguments, int fd,
                struct json_object **ret_return) {
        struct json_object *msg = NULL;
        uint64_t id, deadline;
        const char *text;
        int r;

        if (!q || isempty(command)) {
                json_object_put(arguments);
                return -EINVAL;
        }
        free(q->error_class);
        free(q->error_desc);
        q->error_class = q->error_desc = NULL;

        id = ++q->next_id;
        msg = json_object_new_object();
        if (!msg) {
                json_object_put(arguments);
                return -ENOMEM;
        }
        if (json_object_object_add(msg, "execute", json_object_new_string(command)) < 0 ||
            (arguments && json_object_object_add(msg, "arguments", arguments) < 0) ||
            json_object_object_add(msg, "id", json_object_new_uint64(id)) < 0) {
                json_object_put(msg);
                return -ENOMEM;
        }
        text = json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN);
        r = text ? send_all(q, text, strlen(text), fd) : -ENOMEM;
        if (r >= 0)
                r = send_all(q, "\n", 1, -EBADF);
        json_object_put(msg);
        if (r < 0)
                return r;

        deadline = deadline_after(q->timeout_usec);
        for (;;) {
                struct json_object *m = NULL, *v = NULL, *rid = NULL;

                r = read_message(q, deadline, &m);
                if (r < 0)
                        return r;
                if (is_event(m)) {
                        r = keep_event(q, m);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (!json_object_object_get_ex(m, "id", &rid) || !json_object_is_type(rid, json_type_int) ||
                    json_object_get_uint64(rid) != id) {
                        json_object_put(m);
                        return -EPROTO;         /* a reply to no command of ours */
                }
                if (json_object_object_get_ex(m, "error", &v)) {
                        r = set_error(q, v);
                        json_object_put(m);
                        return r;
                }
                if (!json_object_object_get_ex(m, "return", &v)) {
                        json_object_put(m);
                        return -EPROTO;
                }
                if (ret_return)
                        *ret_return = json_object_get(v);
                json_object_put(m);
                return 0;
        }
}

static bool event_matches(struct json_object *m, const char *event, const char *key, const char *value) {
        struct json_object *e, *data, *v;

        if (!json_object_object_get_ex(m, "event", &e) || !streq(json_object_get_string(e), event))
                return false;
        if (!key)
                return true;
        return json_object_object_get_ex(m, "data", &data) && json_object_is_type(data, json_type_object) &&
               json_object_object_get_ex(data, key, &v) && json_object_is_type(v, json_type_string) &&
               streq(json_object_get_string(v), value);
}

int qmp_wait_event(Qmp *q, const char *event, const char *key, const char *value, uint64_t timeout_usec) {
        uint64_t deadline;
        int r;

        if (!q || isempty(event) || (key && !value))
                return -EINVAL;

        for (size_t i = 0; i < json_object_array_length(q->events); i++)
                if (event_matches(json_object_array_get_idx(q->events, i), event, key, value)) {
                        (void) json_object_array_del_idx(q->events, i, 1);
                        return 0;
                }

        deadline = deadline_after(timeout_usec);
        for (;;) {
                struct json_object *m = NULL;

                r = read_message(q, deadline, &m);
                if (r < 0)
                        return r;
                if (!is_event(m)) {
                        json_object_put(m);
                        return -EPROTO;         /* no command is running */
                }
                if (event_matches(m, event, key, value)) {
                        json_object_put(m);
                        return 0;
                }
                r = keep_event(q, m);
                if (r < 0)
                        return r;
        }
}

int qmp_connect(const char *path, uint64_t timeout_usec, Qmp **ret) {
        _cleanup_(qmp_freep) Qmp *q = NULL;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct json_object *greeting = NULL, *v;
        int r;

        if (isempty(path) || !ret || timeout_usec == 0)
                return -EINVAL;
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, strlen(path) + 1);

        q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        q->fd = -EBADF;
        q->timeout_usec = timeout_usec;
        q->buf = malloc(QMP_MESSAGE_MAX);
        q->events = json_object_new_array();
        if (!q->buf || !q->events)
                return -ENOMEM;

        q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (q->fd < 0)
                return negative_errno();
        if (connect(q->fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return negative_errno();

        r = read_message(q, deadline_after(timeout_usec), &greeting);
        if (r < 0)
                return r;
        r = json_object_object_get_ex(greeting, "QMP", &v) && json_object_is_type(v, json_type_object) ? 0 : -EPROTO;
        json_object_put(greeting);
        if (r < 0)
                return r;

        r = qmp_execute(q, "qmp_capabilities", NULL, -EBADF, NULL);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(q);
        return 0;
}
