/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-dbus.h — what the D-Bus handler fuzzer's two halves share: the shape
 * of a method in its call table (member, object, argument kinds, what a
 * successful reply must look like) and the record of one call as it was
 * sent, which fuzz-dbus.c makes and fuzz-dbus-check.c checks the reply and
 * the model against.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "fuzz.h"
#include "manager.h"

typedef enum ArgKind {
        ARG_NAME,           /* s: a region or VM name */
        ARG_ACCESS,         /* s */
        ARG_ATTRIBUTE,      /* s */
        ARG_SIZE,           /* t: a region size */
        ARG_OFFSET,         /* t */
        ARG_LENGTH,         /* t: a range length (Discard) */
        ARG_ALLOC_LENGTH,   /* t: a length that allocates (Allocate) */
        ARG_MIGRATION,      /* o */
        ARG_CREATE_OPTS,    /* a{sv} */
        ARG_VM_OPTS,        /* a{sv} */
        ARG_ATTACH_OPTS,    /* a{sv} */
        ARG_NO_OPTS,        /* a{sv}: BeginMigration takes none yet */
        ARG_INTERFACE,      /* s */
        ARG_PROPERTY,       /* s */
        ARG_VALUE,          /* v */
        ARG_FD,             /* h: a file that is not a guest_memfd (AdoptRegion) */
        ARG_ADOPT_OPTS,     /* a{sv} */
        _ARG_KIND_MAX,
} ArgKind;

typedef enum PathKind {
        PATH_MANAGER,
        PATH_REGION,
        PATH_VM,
        PATH_MIGRATION,
        PATH_ANY,
} PathKind;

typedef enum ReplyCheck {
        REPLY_NONE,
        REPLY_REGION_PATH,  /* o: the region just named */
        REPLY_VM_PATH,
        REPLY_VIEW_FD,      /* h: a view of (vm, region) */
        REPLY_MIGRATION,    /* oa(sh) */
        REPLY_LIST_REGIONS,
        REPLY_LIST_VMS,
        REPLY_LIST_MIGRATIONS,
} ReplyCheck;

typedef struct Method {
        const char *member;
        PathKind path;
        const char *interface;
        ArgKind args[4];
        size_t n_args;
        ReplyCheck reply;
        int vm_arg, region_arg;      /* which args name the VM and the region (-1: the object path) */
} Method;

typedef struct CallState {
        const Method *method;
        char *strings[4];           /* the string arguments as sent, by position */
        char *path;
        uint64_t size;              /* CreateRegion */
        bool typed;                 /* every argument made by append_arg(): the checks may read them */
} CallState;

/*
 * The reply to c says what gmemd promised: an error it knows, or on success
 * objects and fds that exist and match the call. Aborts if not.
 */
void fuzz_check_reply(Manager *m, const CallState *c, sd_bus_message *reply, bool verbose);
/* The model is consistent with itself and with root's usage counters. Aborts if not. */
void fuzz_check_model(Manager *m);

/* --- fuzz-dbus-bus.c: the harness's end playing the bus daemon --- */

#define FAKE_BUS_CALLERS 4
#define FAKE_BUS_PENDING_MAX 16
#define FAKE_BUS_DAEMON_NAME ":1.1"     /* gmemd's unique name */

/* What gmemd has been told about a caller's credentials. */
typedef enum CallerState {
        CALLER_UNKNOWN,         /* nothing yet, or the caller left: the next call asks */
        CALLER_PENDING,         /* asked, not answered: its calls are parked */
        CALLER_KNOWN,           /* answered: its calls are served */
        CALLER_REFUSED,         /* answered with an error or garbage: its parked calls were dropped */
} CallerState;

typedef struct FakeBus {
        sd_bus *bus;
        FuzzInput *in;          /* answers are decided by input bytes */
        bool verbose;
        CallerState state[FAKE_BUS_CALLERS];
        sd_bus_message *pending[FAKE_BUS_PENDING_MAX];   /* credentials asked for, not answered yet */
        size_t n_pending;
} FakeBus;

extern const char *const fake_bus_callers[FAKE_BUS_CALLERS];   /* unique names */
extern const uid_t fake_bus_uids[FAKE_BUS_CALLERS];

/* Installs the bus driver's side on bus (before it starts). */
int fake_bus_attach(FakeBus *fb, sd_bus *bus, FuzzInput *in, bool verbose);
/* Answers the oldest credentials question left open, mostly with the credentials. */
void fake_bus_answer_pending(FakeBus *fb);
/* Caller i disconnects: NameOwnerChanged, and its open question is answered with an error. */
void fake_bus_caller_leaves(FakeBus *fb, unsigned i);
void fake_bus_done(FakeBus *fb);
