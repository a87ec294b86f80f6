/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-dbus-bus.c — the harness's end of the connection playing the bus
 * daemon, for inputs that run gmemd as a bus client, as it runs on a real
 * host. It answers Hello and AddMatch, and GetConnectionCredentials as the
 * input decides: with the caller's credentials at once, later (gmemd parks
 * the caller's calls meanwhile), with an error, or with an answer gmemd must
 * refuse (no uid, a uid of the wrong type, more groups than it takes). It
 * also announces callers leaving with NameOwnerChanged. It keeps what gmemd
 * has been told about each caller, so the harness knows which calls must be
 * answered and which may be dropped.
 */
#include <inttypes.h>
#include <stdarg.h>

#include "bus-creds.h"

#include "fuzz-dbus.h"
#include "fuzz.h"

#define DBUS_NAME "org.freedesktop.DBus"
#define DBUS_PATH "/org/freedesktop/DBus"

const char *const fake_bus_callers[FAKE_BUS_CALLERS] = { ":1.100", ":1.101", ":1.102", ":1.103" };
/* Root twice (two connections), a user in no class, and one gids can match. */
const uid_t fake_bus_uids[FAKE_BUS_CALLERS] = { 0, 1000, 4242, 0 };
static const uint32_t caller_gids[FAKE_BUS_CALLERS][2] = { { 0, 0 }, { 1000, 100 }, { 4242, 4242 }, { 0, 10 } };

typedef enum Answer {
        ANSWER_CREDS,           /* uid, gids, pid */
        ANSWER_CREDS_EXTRA,     /* and keys gmemd does not read */
        ANSWER_LATER,
        ANSWER_ERROR,           /* the caller is gone */
        ANSWER_NO_UID,
        ANSWER_UID_STRING,
        ANSWER_TOO_MANY_GIDS,
} Answer;

static int caller_index(const char *name) {
        for (int i = 0; i < FAKE_BUS_CALLERS; i++)
                if (name && streq(name, fake_bus_callers[i]))
                        return i;
        return -1;
}

static int send_from_bus(FakeBus *fb, sd_bus_message *m) {
        int r = sd_bus_message_set_sender(m, DBUS_NAME);
        return r < 0 ? r : sd_bus_send(fb->bus, m, NULL);
}

static int reply(FakeBus *fb, sd_bus_message *call, const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        va_list ap;
        int r;

        r = sd_bus_message_new_method_return(call, &m);
        if (r < 0)
                return r;
        if (types) {
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
                if (r < 0)
                        return r;
        }
        return send_from_bus(fb, m);
}

static int reply_error(FakeBus *fb, sd_bus_message *call, const char *name, const char *text) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_errorf(call, &m, name, "%s", text);
        return r < 0 ? r : send_from_bus(fb, m);
}

static int append_entry_u(sd_bus_message *m, const char *key, uint32_t v) {
        return sd_bus_message_append(m, "{sv}", key, "u", v);
}

/* Answers a GetConnectionCredentials call for caller i. */
static void answer(FakeBus *fb, sd_bus_message *call, int i, Answer a) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        if (fb->verbose)
                fprintf(stderr, "  bus: credentials of %s: answer %d\n", fake_bus_callers[i], (int) a);
        if (a == ANSWER_ERROR) {
                FUZZ_CHECK(reply_error(fb, call, "org.freedesktop.DBus.Error.NameHasNoOwner", "Caller is gone") >= 0,
                           "the bus answers with an error");
                fb->state[i] = CALLER_REFUSED;
                return;
        }

        FUZZ_CHECK(sd_bus_message_new_method_return(call, &m) >= 0, "new_method_return()");
        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && a == ANSWER_UID_STRING)
                r = sd_bus_message_append(m, "{sv}", "UnixUserID", "s", "0");
        else if (r >= 0 && a != ANSWER_NO_UID)
                r = append_entry_u(m, "UnixUserID", (uint32_t) fake_bus_uids[i]);
        if (r >= 0 && a == ANSWER_TOO_MANY_GIDS) {
                uint32_t many[BUS_CREDS_GIDS_MAX + 1] = {};
                r = sd_bus_message_open_container(m, 'e', "sv");
                if (r >= 0)
                        r = sd_bus_message_append(m, "s", "UnixGroupIDs");
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'v', "au");
                if (r >= 0)
                        r = sd_bus_message_append_array(m, 'u', many, sizeof(many));
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
        } else if (r >= 0)
                r = sd_bus_message_append(m, "{sv}", "UnixGroupIDs", "au", 2, caller_gids[i][0], caller_gids[i][1]);
        if (r >= 0)
                r = append_entry_u(m, "ProcessID", 4242);
        if (r >= 0 && a == ANSWER_CREDS_EXTRA)
                r = sd_bus_message_append(m, "{sv}{sv}", "LinuxSecurityLabel", "s", "unconfined",
                                          "UnixUserID", "u", (uint32_t) fake_bus_uids[i]);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        FUZZ_CHECK(r >= 0, "the credentials can be written: %s", strerror(-r));
        FUZZ_CHECK(send_from_bus(fb, m) >= 0, "the bus answers");

        fb->state[i] = a == ANSWER_CREDS || a == ANSWER_CREDS_EXTRA ? CALLER_KNOWN : CALLER_REFUSED;
}

static void credentials_asked(FakeBus *fb, sd_bus_message *call) {
        const char *name = NULL;
        Answer a;
        int i;

        (void) sd_bus_message_read(call, "s", &name);
        i = caller_index(name);
        if (i < 0) {
                FUZZ_CHECK(reply_error(fb, call, "org.freedesktop.DBus.Error.NameHasNoOwner", "No such name") >= 0,
                           "the bus answers with an error");
                return;
        }

        /* Mostly the credentials at once. */
        static const Answer answers[16] = {
                ANSWER_CREDS, ANSWER_CREDS, ANSWER_CREDS, ANSWER_CREDS, ANSWER_CREDS, ANSWER_CREDS, ANSWER_CREDS,
                ANSWER_CREDS, ANSWER_CREDS, ANSWER_CREDS_EXTRA, ANSWER_LATER, ANSWER_LATER, ANSWER_ERROR,
                ANSWER_NO_UID, ANSWER_UID_STRING, ANSWER_TOO_MANY_GIDS,
        };
        a = answers[fuzz_u8(fb->in) % 16];
        if (a == ANSWER_LATER && fb->n_pending < FAKE_BUS_PENDING_MAX) {
                if (fb->verbose)
                        fprintf(stderr, "  bus: credentials of %s: later\n", name);
                fb->pending[fb->n_pending++] = sd_bus_message_ref(call);
                fb->state[i] = CALLER_PENDING;
                return;
        }
        answer(fb, call, i, a == ANSWER_LATER ? ANSWER_CREDS : a);
}

/* Everything gmemd sends to the bus driver lands here; the rest goes on to the harness. */
static int on_message(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        FakeBus *fb = userdata;
        const char *member;

        if (!sd_bus_message_is_method_call(m, NULL, NULL) || !sd_bus_message_get_destination(m) ||
            !streq(sd_bus_message_get_destination(m), DBUS_NAME))
                return 0;
        member = sd_bus_message_get_member(m);
        if (streq(member, "Hello"))
                FUZZ_CHECK(reply(fb, m, "s", FAKE_BUS_DAEMON_NAME) >= 0, "the bus answers Hello");
        else if (streq(member, "AddMatch") || streq(member, "RemoveMatch"))
                FUZZ_CHECK(reply(fb, m, NULL) >= 0, "the bus answers %s", member);
        else if (streq(member, "GetConnectionCredentials"))
                credentials_asked(fb, m);
        else
                FUZZ_CHECK(reply_error(fb, m, "org.freedesktop.DBus.Error.UnknownMethod", member) >= 0,
                           "the bus answers %s", member);
        return 1;
}

int fake_bus_attach(FakeBus *fb, sd_bus *bus, FuzzInput *in, bool verbose) {
        *fb = (FakeBus) { .bus = bus, .in = in, .verbose = verbose };
        return sd_bus_add_filter(bus, NULL, on_message, fb);
}

void fake_bus_answer_pending(FakeBus *fb) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        const char *name = NULL;
        uint8_t how = fuzz_u8(fb->in);
        int i;

        if (fb->n_pending == 0)
                return;
        call = fb->pending[0];
        memmove(fb->pending, fb->pending + 1, --fb->n_pending * sizeof(fb->pending[0]));
        FUZZ_CHECK(sd_bus_message_rewind(call, true) >= 0 && sd_bus_message_read(call, "s", &name) > 0,
                   "a pending credentials call names a caller");
        i = caller_index(name);
        FUZZ_CHECK(i >= 0, "a pending credentials call is for a known caller");
        answer(fb, call, i, how < 0xe0 ? ANSWER_CREDS : ANSWER_ERROR);
}

void fake_bus_caller_leaves(FakeBus *fb, unsigned i) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        const char *name = fake_bus_callers[i % FAKE_BUS_CALLERS];

        i %= FAKE_BUS_CALLERS;
        if (fb->verbose)
                fprintf(stderr, "  bus: %s leaves\n", name);
        FUZZ_CHECK(sd_bus_message_new_signal(fb->bus, &m, DBUS_PATH, DBUS_NAME, "NameOwnerChanged") >= 0 &&
                   sd_bus_message_append(m, "sss", name, name, "") >= 0 &&
                   sd_bus_message_set_destination(m, FAKE_BUS_DAEMON_NAME) >= 0 && send_from_bus(fb, m) >= 0,
                   "NameOwnerChanged is sent");

        /* A question about it still open gets the answer the bus gives for a name that is gone. */
        for (size_t k = 0; k < fb->n_pending;) {
                const char *n = NULL;

                FUZZ_CHECK(sd_bus_message_rewind(fb->pending[k], true) >= 0 &&
                           sd_bus_message_read(fb->pending[k], "s", &n) > 0, "a pending call names a caller");
                if (!streq(n, name)) {
                        k++;
                        continue;
                }
                FUZZ_CHECK(reply_error(fb, fb->pending[k], "org.freedesktop.DBus.Error.NameHasNoOwner",
                                       "Caller is gone") >= 0, "the bus answers with an error");
                sd_bus_message_unref(fb->pending[k]);
                memmove(fb->pending + k, fb->pending + k + 1, (--fb->n_pending - k) * sizeof(fb->pending[0]));
        }
        /* gmemd forgets what it knew; a name that comes back is asked about again. */
        fb->state[i] = CALLER_UNKNOWN;
}

void fake_bus_done(FakeBus *fb) {
        for (size_t k = 0; k < fb->n_pending; k++)
                sd_bus_message_unref(fb->pending[k]);
        fb->n_pending = 0;
}
