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
