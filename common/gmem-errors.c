/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * gmem-errors.c — the error registry: one row per named error with its
 * D-Bus name and errno, lookups both ways, and GmemError setters. The daemon
 * sets the names (daemon/bus/), libgmem maps them back to errnos.
 */
#include <stdio.h>
#include <string.h>

#include "gmem-errors.h"

typedef struct ErrorRow {
        const char *name;       /* short name */
        const char *dbus_name;  /* the name on the bus */
        int errnum;
} ErrorRow;

/* One row per named error: its short name is written once, its D-Bus name is made from it. */
#define ERROR_ROW(code, name, errnum) [code] = { name, GMEM_ERROR_PREFIX name, errnum }

static const ErrorRow error_table[_GMEM_ERROR_MAX] = {
        [GMEM_ERROR_NONE] = { NULL, NULL, 0 },
        ERROR_ROW(GMEM_ERROR_NO_SUCH_REGION,        "NoSuchRegion",        ENOENT),
        ERROR_ROW(GMEM_ERROR_NO_SUCH_VM,            "NoSuchVm",            ENOENT),
        ERROR_ROW(GMEM_ERROR_NO_SUCH_VIEW,          "NoSuchView",          ENOENT),
        ERROR_ROW(GMEM_ERROR_NO_SUCH_MIGRATION,     "NoSuchMigration",     ENOENT),
        ERROR_ROW(GMEM_ERROR_REGION_EXISTS,         "RegionExists",        EEXIST),
        ERROR_ROW(GMEM_ERROR_VM_EXISTS,             "VmExists",            EEXIST),
        ERROR_ROW(GMEM_ERROR_INVALID_NAME,          "InvalidName",         EINVAL),
        ERROR_ROW(GMEM_ERROR_INVALID_SIZE,          "InvalidSize",         EINVAL),
        ERROR_ROW(GMEM_ERROR_INVALID_RANGE,         "InvalidRange",        ERANGE),
        ERROR_ROW(GMEM_ERROR_INVALID_ARGUMENT,      "InvalidArgument",     EINVAL),
        ERROR_ROW(GMEM_ERROR_BUSY,                  "Busy",                EBUSY),
        ERROR_ROW(GMEM_ERROR_NOT_SUPPORTED,         "NotSupported",        EOPNOTSUPP),
        ERROR_ROW(GMEM_ERROR_QUOTA_EXCEEDED,        "QuotaExceeded",       EDQUOT),
        ERROR_ROW(GMEM_ERROR_MIGRATION_IN_PROGRESS, "MigrationInProgress", EALREADY),
        ERROR_ROW(GMEM_ERROR_BACKEND_UNAVAILABLE,   "BackendUnavailable",  ENODEV),
        /* Authorization failures use the bus's own name, as every D-Bus service does. */
        [GMEM_ERROR_ACCESS_DENIED] = { "AccessDenied", "org.freedesktop.DBus.Error.AccessDenied", EACCES },
        /* A plain errno from the kernel, no name of ours. */
        [GMEM_ERROR_SYSTEM] = { NULL, NULL, EIO },
};

const char *gmem_error_code_to_dbus_name(GmemErrorCode code) {
        if (code < 0 || code >= _GMEM_ERROR_MAX)
                return NULL;
        return error_table[code].dbus_name;
}

const char *gmem_error_code_to_string(GmemErrorCode code) {
        if (code < 0 || code >= _GMEM_ERROR_MAX)
                return NULL;
        return error_table[code].name;
}

GmemErrorCode gmem_error_code_from_string(const char *s) {
        if (!s)
                return _GMEM_ERROR_INVALID;
        for (GmemErrorCode c = 0; c < _GMEM_ERROR_MAX; c++)
                if (error_table[c].name && streq(error_table[c].name, s))
                        return c;
        return _GMEM_ERROR_INVALID;
}

GmemErrorCode gmem_error_code_from_dbus_name(const char *name) {
        if (!name)
                return _GMEM_ERROR_INVALID;
        for (GmemErrorCode c = 0; c < _GMEM_ERROR_MAX; c++)
                if (error_table[c].dbus_name && streq(error_table[c].dbus_name, name))
                        return c;
        return _GMEM_ERROR_INVALID;
}

int gmem_error_code_to_errno(GmemErrorCode code) {
        if (code < 0 || code >= _GMEM_ERROR_MAX)
                return EINVAL;
        return error_table[code].errnum;
}

/* The org.freedesktop.DBus.Error names a client of ours is likely to meet. */
static const struct {
        const char *name;
        int errnum;
} freedesktop_errors[] = {
        { "org.freedesktop.DBus.Error.AccessDenied",          EACCES       },
        { "org.freedesktop.DBus.Error.ServiceUnknown",        EHOSTUNREACH },
        { "org.freedesktop.DBus.Error.NameHasNoOwner",        ENXIO        },
        { "org.freedesktop.DBus.Error.NoReply",               ETIMEDOUT    },
        { "org.freedesktop.DBus.Error.Timeout",               ETIMEDOUT    },
        { "org.freedesktop.DBus.Error.TimedOut",              ETIMEDOUT    },
        { "org.freedesktop.DBus.Error.NoMemory",              ENOMEM       },
        { "org.freedesktop.DBus.Error.InvalidArgs",           EINVAL       },
        { "org.freedesktop.DBus.Error.InvalidSignature",      EINVAL       },
        { "org.freedesktop.DBus.Error.UnknownMethod",         EBADR        },
        { "org.freedesktop.DBus.Error.UnknownObject",         EBADR        },
        { "org.freedesktop.DBus.Error.UnknownInterface",      EBADR        },
        { "org.freedesktop.DBus.Error.UnknownProperty",       EBADR        },
        { "org.freedesktop.DBus.Error.PropertyReadOnly",      EROFS        },
        { "org.freedesktop.DBus.Error.NotSupported",          EOPNOTSUPP   },
        { "org.freedesktop.DBus.Error.Disconnected",          ECONNRESET   },
        { "org.freedesktop.DBus.Error.LimitsExceeded",        ENOBUFS      },
        { "org.freedesktop.DBus.Error.FileNotFound",          ENOENT       },
        { "org.freedesktop.DBus.Error.FileExists",            EEXIST       },
        { "org.freedesktop.DBus.Error.InconsistentMessage",   EBADMSG      },
};

int gmem_errno_from_dbus_name(const char *name) {
        GmemErrorCode c = gmem_error_code_from_dbus_name(name);
        if (c >= 0)
                return gmem_error_code_to_errno(c);
        if (!name)
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(freedesktop_errors); i++)
                if (streq(freedesktop_errors[i].name, name))
                        return freedesktop_errors[i].errnum;
        /* sd-bus encodes plain errnos as System.Error.<ENAME>; the caller resolves those. */
        return 0;
}

int gmem_error_setv(GmemError *e, GmemErrorCode code, const char *fmt, va_list ap) {
        int errnum = gmem_error_code_to_errno(code);

        if (e && e->code == GMEM_ERROR_NONE) {
                e->code = code;
                e->errnum = errnum;
                (void) vsnprintf(e->message, sizeof(e->message), fmt, ap);
        }
        return -errnum;
}

int gmem_error_set(GmemError *e, GmemErrorCode code, const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = gmem_error_setv(e, code, fmt, ap);
        va_end(ap);
        return r;
}

int gmem_error_set_errno(GmemError *e, int errnum, const char *fmt, ...) {
        va_list ap;

        if (errnum < 0)
                errnum = -errnum;
        if (errnum == 0)
                errnum = EIO;

        if (e && e->code == GMEM_ERROR_NONE) {
                size_t n;

                e->code = GMEM_ERROR_SYSTEM;
                e->errnum = errnum;
                va_start(ap, fmt);
                (void) vsnprintf(e->message, sizeof(e->message), fmt, ap);
                va_end(ap);
                n = strlen(e->message);
                if (n < sizeof(e->message))
                        (void) snprintf(e->message + n, sizeof(e->message) - n, ": %s", strerror(errnum));
        }
        return -errnum;
}
