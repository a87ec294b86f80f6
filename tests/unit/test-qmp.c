/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-qmp.c — gmemctl's QMP client (client/qmp.c) against a scripted fake
 * QEMU: a thread that listens on a UNIX socket and, step by step, sends
 * lines, reads a command (checking what it must contain and whether an fd
 * came with it), closes, or says nothing. The client must do the handshake, match
 * replies to commands, keep events for later, pass QEMU's error class and
 * description on, send an fd by SCM_RIGHTS, and refuse every malformed
 * thing a peer can send (a table of them) with -EPROTO, -EMSGSIZE,
 * -ECONNRESET or -ETIMEDOUT instead of guessing.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "qmp.h"
#include "tests.h"

#define GREETING "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}}, \"capabilities\": []}}\n"
#define CAPS_OK "{\"return\": {}, \"id\": 1}\n"
#define MS 1000U

typedef enum StepKind { SEND, RECV, RECV_FD, CLOSE, SEND_HUGE, SILENT } StepKind;

typedef struct Step {
        StepKind kind;
        const char *text;       /* SEND: the line(s); RECV: what the command must contain */
} Step;

typedef struct Server {
        char path[108];
        int listen_fd;
        const Step *steps;
        size_t n_steps;
        pthread_t thread;
        bool failed;            /* a RECV did not get what it expected */
        ino_t fd_ino;           /* RECV_FD: the inode of the fd that came */
} Server;

static size_t recv_line(int fd, char *buf, size_t size, int *ret_fd) {
        size_t n = 0;

        *ret_fd = -EBADF;
        while (n < size - 1) {
                union {
                        struct cmsghdr c;
                        char b[CMSG_SPACE(sizeof(int))];
                } control = {};
                struct iovec iov = { .iov_base = buf + n, .iov_len = 1 };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                                     .msg_control = &control, .msg_controllen = sizeof(control) };
                struct cmsghdr *c;

                if (recvmsg(fd, &mh, 0) != 1)
                        break;
                c = CMSG_FIRSTHDR(&mh);
                if (c && c->cmsg_type == SCM_RIGHTS)
                        memcpy(ret_fd, CMSG_DATA(c), sizeof(int));
                if (buf[n++] == '\n')
                        break;
        }
        buf[n] = 0;
        return n;
}

static void *serve(void *userdata) {
        Server *s = userdata;
        int fd = accept(s->listen_fd, NULL, NULL);

        for (size_t i = 0; fd >= 0 && i < s->n_steps; i++) {
                const Step *st = &s->steps[i];
                char line[4096];
                int got_fd;

                switch (st->kind) {
                case SEND:
                        (void) !write(fd, st->text, strlen(st->text));
                        break;
                case SEND_HUGE: {
                        size_t n = QMP_MESSAGE_MAX + 16;
                        char *big = malloc(n);

                        memset(big, ' ', n);
                        big[0] = '{';
                        (void) !send(fd, big, n, MSG_NOSIGNAL);
                        free(big);
                        break;
                }
                case RECV:
                case RECV_FD:
                        (void) recv_line(fd, line, sizeof(line), &got_fd);
                        if (!strstr(line, st->text) || (st->kind == RECV_FD) != (got_fd >= 0)) {
                                fprintf(stderr, "fake QEMU: step %zu wanted '%s'%s, got '%s' (fd %d)\n", i,
                                        st->text, st->kind == RECV_FD ? " with an fd" : "", line, got_fd);
                                s->failed = true;
                        }
                        if (got_fd >= 0) {
                                struct stat sb;

                                if (fstat(got_fd, &sb) == 0)
                                        s->fd_ino = sb.st_ino;
                                close(got_fd);
                        }
                        break;
                case SILENT:
                        break;
                case CLOSE:
                        close(fd);
                        fd = -EBADF;
                        break;
                }
        }
        /* Keep the connection open until the client is done with it. */
        if (fd >= 0) {
                char c;

                while (read(fd, &c, 1) > 0)
                        ;
                close(fd);
        }
        return NULL;
}

static void server_start(Server *s, const Step *steps, size_t n) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        static int counter;

        *s = (Server) { .steps = steps, .n_steps = n };
        (void) snprintf(s->path, sizeof(s->path), "/tmp/test-qmp.%d.%d", (int) getpid(), counter++);
        memcpy(sa.sun_path, s->path, strlen(s->path) + 1);
        (void) unlink(s->path);
        s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        EXPECT(s->listen_fd >= 0, "a UNIX socket can be made");
        EXPECT(bind(s->listen_fd, (struct sockaddr *) &sa, sizeof(sa)) == 0, "the fake QEMU can bind %s", s->path);
        EXPECT(listen(s->listen_fd, 1) == 0, "the fake QEMU listens");
        EXPECT(pthread_create(&s->thread, NULL, serve, s) == 0, "the fake QEMU's thread starts");
}

static void server_stop(Server *s) {
        pthread_join(s->thread, NULL);
        close(s->listen_fd);
        (void) unlink(s->path);
        EXPECT(!s->failed, "the fake QEMU got every command it expected");
}

static void test_commands_events_errors(void) {
        static const Step steps[] = {
                { SEND, GREETING },
                { RECV, "\"execute\":\"qmp_capabilities\"" },
                { SEND, CAPS_OK },
                { RECV, "\"execute\":\"query-memory-devices\"" },
                /* An event before the reply: kept for later. */
                { SEND, "{\"event\": \"DEVICE_DELETED\", \"data\": {\"device\": \"dimm-a\", \"path\": \"/x\"}, "
                        "\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}\r\n" },
                { SEND, "\n{\"return\": [{\"type\": \"dimm\"}], \"id\": 2}\n" },
                { RECV, "\"arguments\":{\"driver\":\"pc-dimm\"}" },
                { SEND, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"no slots where allocated\"}, \"id\": 3}\n" },
                { SEND, "{\"event\": \"RESUME\", \"data\": {}}\n" },
                { SEND, "{\"event\": \"DEVICE_DELETED\", \"data\": {\"device\": \"dimm-b\"}}\n" },
        };
        _cleanup_(qmp_freep) Qmp *q = NULL;
        struct json_object *ret = NULL, *args;
        Server s;
        int r;

        server_start(&s, steps, ELEMENTSOF(steps));
        r = qmp_connect(s.path, 5000 * MS, &q);
        EXPECT(r == 0, "the client connects and negotiates: %s", strerror(-r));

        r = qmp_execute(q, "query-memory-devices", NULL, -EBADF, &ret);
        EXPECT(r == 0, "a command gets its reply past an event: %s", strerror(-r));
        EXPECT(json_object_is_type(ret, json_type_array) && json_object_array_length(ret) == 1,
               "the reply's return value is handed back: %s", json_object_to_json_string(ret));
        json_object_put(ret);

        args = json_object_new_object();
        json_object_object_add(args, "driver", json_object_new_string("pc-dimm"));
        r = qmp_execute(q, "device_add", args, -EBADF, NULL);
        EXPECT(r == -EREMOTEIO, "QEMU's refusal is -EREMOTEIO: %d", r);
        EXPECT(streq(qmp_error_class(q), "GenericError") && streq(qmp_error_desc(q), "no slots where allocated"),
               "QEMU's error class and description are kept: %s: %s", qmp_error_class(q), qmp_error_desc(q));

        r = qmp_wait_event(q, "DEVICE_DELETED", "device", "dimm-a", 1000 * MS);
        EXPECT(r == 0, "an event that came before is found among the kept ones: %s", strerror(-r));
        r = qmp_wait_event(q, "DEVICE_DELETED", "device", "dimm-a", 200 * MS);
        EXPECT(r == -ETIMEDOUT, "a kept event is found once, then dropped: %d", r);
        r = qmp_wait_event(q, "DEVICE_DELETED", "device", "dimm-b", 1000 * MS);
        EXPECT(r == 0, "an event that comes later, after another one, is found: %s", strerror(-r));
        r = qmp_wait_event(q, "RESUME", NULL, NULL, 200 * MS);
        EXPECT(r == 0, "the other event was kept meanwhile: %s", strerror(-r));

        q = qmp_free(q);
        server_stop(&s);
}

static void test_fd_passing(void) {
        static const Step steps[] = {
                { SEND, GREETING },
                { RECV, "qmp_capabilities" },
                { SEND, CAPS_OK },
                { RECV_FD, "\"execute\":\"add-fd\"" },
                { SEND, "{\"return\": {\"fdset-id\": 0, \"fd\": 17}, \"id\": 2}\n" },
                { RECV, "\"execute\":\"remove-fd\"" },
                { SEND, "{\"return\": {}, \"id\": 3}\n" },
        };
        _cleanup_(qmp_freep) Qmp *q = NULL;
        _cleanup_close_ int mfd = -EBADF;
        struct json_object *ret = NULL, *v;
        struct stat sb;
        Server s;
        int r;

        mfd = memfd_create("test-qmp", MFD_CLOEXEC);
        EXPECT(mfd >= 0 && fstat(mfd, &sb) == 0, "a memfd can be made");
        server_start(&s, steps, ELEMENTSOF(steps));
        EXPECT(qmp_connect(s.path, 5000 * MS, &q) == 0, "the client connects");
        r = qmp_execute(q, "add-fd", NULL, mfd, &ret);
        EXPECT(r == 0, "add-fd with an fd succeeds: %s", strerror(-r));
        EXPECT(json_object_object_get_ex(ret, "fd", &v) && json_object_get_int(v) == 17,
               "add-fd's return is handed back");
        json_object_put(ret);
        r = qmp_execute(q, "remove-fd", NULL, -EBADF, NULL);
        EXPECT(r == 0, "a command without an fd sends none: %s", strerror(-r));
        q = qmp_free(q);
        server_stop(&s);
        EXPECT(s.fd_ino == sb.st_ino, "QEMU got the caller's file by SCM_RIGHTS");
}

/* What a broken or hostile peer may send, and what the client must answer. */
static void test_bad_peers(void) {
        static const Step not_json[] = { { SEND, "hello\n" } };
        static const Step not_object[] = { { SEND, "[1, 2]\n" } };
        static const Step no_qmp[] = { { SEND, "{\"greeting\": 1}\n" } };
        static const Step trailing[] = { { SEND, "{\"QMP\": {}} {\"x\": 1}\n" } };
        static const Step closes[] = { { CLOSE, NULL } };
        static const Step silent[] = { { SILENT, NULL } };
        static const Step huge[] = { { SEND_HUGE, NULL } };
        static const Step caps_refused[] = {
                { SEND, GREETING }, { RECV, "qmp_capabilities" },
                { SEND, "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"no\"}, \"id\": 1}\n" },
        };
        static const Step wrong_id[] = {
                { SEND, GREETING }, { RECV, "qmp_capabilities" }, { SEND, "{\"return\": {}, \"id\": 7}\n" },
        };
        static const Step no_id[] = {
                { SEND, GREETING }, { RECV, "qmp_capabilities" }, { SEND, "{\"return\": {}}\n" },
        };
        static const Step neither[] = {
                { SEND, GREETING }, { RECV, "qmp_capabilities" }, { SEND, "{\"id\": 1, \"result\": 0}\n" },
        };
        static const Step bad_error[] = {
                { SEND, GREETING }, { RECV, "qmp_capabilities" },
                { SEND, "{\"error\": {\"desc\": \"no class\"}, \"id\": 1}\n" },
        };
        static const struct {
                const char *what;
                const Step *steps;
                size_t n;
                int r;
        } cases[] = {
                { "a greeting that is not JSON",         not_json,     ELEMENTSOF(not_json),     -EPROTO },
                { "a greeting that is not an object",    not_object,   ELEMENTSOF(not_object),   -EPROTO },
                { "a greeting without QMP",              no_qmp,       ELEMENTSOF(no_qmp),       -EPROTO },
                { "two objects on one line",             trailing,     ELEMENTSOF(trailing),     -EPROTO },
                { "a peer that closes",                  closes,       ELEMENTSOF(closes),       -ECONNRESET },
                { "a peer that says nothing",            silent,       ELEMENTSOF(silent),       -ETIMEDOUT },
                { "a line longer than QMP_MESSAGE_MAX",  huge,         ELEMENTSOF(huge),         -EMSGSIZE },
                { "capabilities refused",                caps_refused, ELEMENTSOF(caps_refused), -EREMOTEIO },
                { "a reply to another command",          wrong_id,     ELEMENTSOF(wrong_id),     -EPROTO },
                { "a reply without an id",               no_id,        ELEMENTSOF(no_id),        -EPROTO },
                { "a reply neither return nor error",    neither,      ELEMENTSOF(neither),      -EPROTO },
                { "an error without a class",            bad_error,    ELEMENTSOF(bad_error),    -EPROTO },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Qmp *q = NULL;
                Server s;
                int r;

                server_start(&s, cases[i].steps, cases[i].n);
                r = qmp_connect(s.path, 300 * MS, &q);
                EXPECT(r == cases[i].r, "%s: the client answers %d (%s), not %d (%s)", cases[i].what, cases[i].r,
                       strerror(-cases[i].r), r, strerror(-r));
                EXPECT(!q, "%s: no client is handed out", cases[i].what);
                /* The server thread reads until the client is gone; it is, now. */
                pthread_join(s.thread, NULL);
                close(s.listen_fd);
                (void) unlink(s.path);
        }
}

static void test_arguments(void) {
        char long_path[200];
        Qmp *q = NULL;

        memset(long_path, 'a', sizeof(long_path) - 1);
        long_path[0] = '/';
        long_path[sizeof(long_path) - 1] = 0;
        EXPECT(qmp_connect(long_path, 1000 * MS, &q) == -ENAMETOOLONG, "a path beyond sun_path is -ENAMETOOLONG");
        EXPECT(qmp_connect("/nonexistent/qmp.sock", 1000 * MS, &q) == -ENOENT, "a missing socket is -ENOENT");
        EXPECT(qmp_connect("", 1000 * MS, &q) == -EINVAL, "an empty path is -EINVAL");
        EXPECT(qmp_connect("/x", 0, &q) == -EINVAL, "a zero timeout is -EINVAL");
        EXPECT(qmp_execute(NULL, "x", NULL, -EBADF, NULL) == -EINVAL, "no client is -EINVAL");
        EXPECT(qmp_wait_event(NULL, "X", NULL, NULL, 1) == -EINVAL, "no client is -EINVAL");
        EXPECT(qmp_free(NULL) == NULL, "qmp_free(NULL) is NULL");
        EXPECT(!qmp_error_class(NULL) && !qmp_error_desc(NULL), "no client has no error");
}

int main(void) {
        /* A peer that is refused may still be writing. */
        signal(SIGPIPE, SIG_IGN);
        RUN(test_arguments);
        RUN(test_commands_events_errors);
        RUN(test_fd_passing);
        RUN(test_bad_peers);
        return 0;
}
