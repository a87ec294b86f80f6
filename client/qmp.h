/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * qmp.h — a small, blocking client of QEMU's machine protocol (QMP) on a
 * UNIX socket, as gmemctl's hotplug and unplug verbs need it: connect and
 * negotiate capabilities, execute one command at a time (optionally with a
 * file descriptor sent alongside by SCM_RIGHTS, for add-fd), keep the
 * asynchronous events that arrive in between, and wait for one of them with
 * a timeout.
 *
 * When QEMU answers a command with an error, qmp_execute() returns
 * -EREMOTEIO and the error's class and description are kept in the Qmp until
 * the next command (qmp_error_class(), qmp_error_desc()).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "macro.h"

typedef struct Qmp Qmp;

/* Every reply and event is one JSON object on one line of at most this many bytes. */
#define QMP_MESSAGE_MAX (1024U * 1024U)

/*
 * Connects to the QMP socket at path, reads QEMU's greeting and leaves
 * capabilities negotiation mode. timeout_usec bounds each wait for QEMU.
 */
int qmp_connect(const char *path, uint64_t timeout_usec, Qmp **ret);
Qmp *qmp_free(Qmp *q);
DEFINE_TRIVIAL_CLEANUP_FUNC(Qmp *, qmp_free);

/*
 * Runs command with arguments (taken, may be NULL). fd >= 0 is sent with
 * the command (it stays the caller's). ret_return (may be NULL) gets the
 * command's "return" value, a reference the caller puts. -EREMOTEIO: QEMU
 * refused, see qmp_error_class() / qmp_error_desc().
 */
int qmp_execute(Qmp *q, const char *command, struct json_object *arguments, int fd,
                struct json_object **ret_return);
const char *qmp_error_class(const Qmp *q);
const char *qmp_error_desc(const Qmp *q);

/*
 * Waits at most timeout_usec for the event named event whose data member
 * "key" is the string value (key NULL: any event of that name); events
 * that came before are looked at first. Returns 0 when it came (and drops
 * it from the kept events), -ETIMEDOUT when it did not.
 */
int qmp_wait_event(Qmp *q, const char *event, const char *key, const char *value, uint64_t timeout_usec);
