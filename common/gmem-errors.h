/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * gmem-errors.h — the one registry of gmemd's named errors.
 *
 * Every failure a client can see has a name (org.gmemd.Broker1.Error.<Name>),
 * an errno it maps to, and a message written where the problem was found,
 * naming the value and the limit. The daemon's model fills a GmemError; only
 * the *-dbus.c files turn it into a D-Bus error; libgmem turns the D-Bus
 * error name back into the errno with gmem_errno_from_dbus_name().
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>

#include "macro.h"

#define GMEM_ERROR_PREFIX "org.gmemd.Broker1.Error."

typedef enum GmemErrorCode {
        GMEM_ERROR_NONE,
        GMEM_ERROR_NO_SUCH_REGION,
        GMEM_ERROR_NO_SUCH_VM,
        GMEM_ERROR_NO_SUCH_VIEW,
        GMEM_ERROR_NO_SUCH_MIGRATION,
        GMEM_ERROR_REGION_EXISTS,
        GMEM_ERROR_VM_EXISTS,
        GMEM_ERROR_INVALID_NAME,
        GMEM_ERROR_INVALID_SIZE,
        GMEM_ERROR_INVALID_RANGE,
        GMEM_ERROR_INVALID_ARGUMENT,
        GMEM_ERROR_BUSY,
        GMEM_ERROR_NOT_SUPPORTED,
        GMEM_ERROR_QUOTA_EXCEEDED,
        GMEM_ERROR_MIGRATION_IN_PROGRESS,
        GMEM_ERROR_BACKEND_UNAVAILABLE,
        GMEM_ERROR_ACCESS_DENIED,   /* org.freedesktop.DBus.Error.AccessDenied */
        GMEM_ERROR_SYSTEM,          /* a plain errno from the kernel, no name of ours */
        _GMEM_ERROR_MAX,
        _GMEM_ERROR_INVALID = -EINVAL,
} GmemErrorCode;

#define GMEM_ERROR_MESSAGE_MAX 512

typedef struct GmemError {
        GmemErrorCode code;
        int errnum;                               /* positive errno */
        char message[GMEM_ERROR_MESSAGE_MAX];
} GmemError;

#define GMEM_ERROR_INIT { .code = GMEM_ERROR_NONE }

/* Full D-Bus error name of a code ("org.gmemd.Broker1.Error.NoSuchRegion"), NULL for NONE/SYSTEM. */
const char *gmem_error_code_to_dbus_name(GmemErrorCode code) _pure_;
/* Short name ("NoSuchRegion"). */
const char *gmem_error_code_to_string(GmemErrorCode code) _pure_;
GmemErrorCode gmem_error_code_from_string(const char *s) _pure_;
GmemErrorCode gmem_error_code_from_dbus_name(const char *name) _pure_;
/* The positive errno a code maps to. */
int gmem_error_code_to_errno(GmemErrorCode code) _pure_;
/* Positive errno for a D-Bus error name (ours or org.freedesktop.DBus.Error.*); 0 if unknown. */
int gmem_errno_from_dbus_name(const char *name) _pure_;

/*
 * Record an error and return its negative errno, so callers can write
 * "return gmem_error_set(e, GMEM_ERROR_NO_SUCH_VM, "No VM '%s' known", name);".
 * e may be NULL. An error already set is not overwritten: the first, most
 * specific message wins.
 */
int gmem_error_set(GmemError *e, GmemErrorCode code, const char *fmt, ...) _printf_(3, 4);
int gmem_error_setv(GmemError *e, GmemErrorCode code, const char *fmt, va_list ap) _printf_(3, 0);
/* A system error: errnum is a positive or negative errno. */
int gmem_error_set_errno(GmemError *e, int errnum, const char *fmt, ...) _printf_(3, 4);

static inline bool gmem_error_is_set(const GmemError *e) {
        return e && e->code != GMEM_ERROR_NONE;
}
