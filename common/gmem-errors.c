/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * gmem-errors.c — the error registry: one row per named error with its
 * D-Bus name and errno, lookups both ways, and GmemError setters. The daemon
 * sets the names (daemon/bus/), libgmem maps them back to errnos.
 */
#include <stdio.h>
#include <string.h>

#include "gmem-errors.h"
#include "string-table.h"

/*
 * One row per named error, written once: code, short name, errno. The
 * tables below are made from these rows: the short names (a string table
 * like every enum's), the D-Bus names (the prefix and the short name) and
 * the errnos. AccessDenied is the bus's own name, as for every D-Bus
 * service; GMEM_ERROR_SYSTEM, a plain errno from the kernel, has no name.
 */
#define GMEM_ERROR_ROWS(ROW)                                                    \
        ROW(GMEM_ERROR_NO_SUCH_REGION,        "NoSuchRegion",        ENOENT)     \
        ROW(GMEM_ERROR_NO_SUCH_VM,            "NoSuchVm",            ENOENT)     \
        ROW(GMEM_ERROR_NO_SUCH_VIEW,          "NoSuchView",          ENOENT)     \
        ROW(GMEM_ERROR_NO_SUCH_MIGRATION,     "NoSuchMigration",     ENOENT)     \
        ROW(GMEM_ERROR_REGION_EXISTS,         "RegionExists",        EEXIST)     \
        ROW(GMEM_ERROR_VM_EXISTS,             "VmExists",            EEXIST)     \
        ROW(GMEM_ERROR_INVALID_NAME,          "InvalidName",         EINVAL)     \
        ROW(GMEM_ERROR_INVALID_SIZE,          "InvalidSize",         EINVAL)     \
        ROW(GMEM_ERROR_INVALID_RANGE,         "InvalidRange",        ERANGE)     \
        ROW(GMEM_ERROR_INVALID_ARGUMENT,      "InvalidArgument",     EINVAL)     \
        ROW(GMEM_ERROR_BUSY,                  "Busy",                EBUSY)      \
        ROW(GMEM_ERROR_NOT_SUPPORTED,         "NotSupported",        EOPNOTSUPP) \
        ROW(GMEM_ERROR_QUOTA_EXCEEDED,        "QuotaExceeded",       EDQUOT)     \
        ROW(GMEM_ERROR_MIGRATION_IN_PROGRESS, "MigrationInProgress", EALREADY)   \
        ROW(GMEM_ERROR_BACKEND_UNAVAILABLE,   "BackendUnavailable",  ENODEV)

#define ACCESS_DENIED_NAME "org.freedesktop.DBus.Error.AccessDenied"

#define NAME_OF(code, name, errnum) [code] = name,
static const char *const gmem_error_code_table[_GMEM_ERROR_MAX] = {
        GMEM_ERROR_ROWS(NAME_OF)
        [GMEM_ERROR_ACCESS_DENIED] = "AccessDenied",
};
DEFINE_STRING_TABLE_LOOKUP(gmem_error_code, GmemErrorCode);

#define DBUS_NAME_OF(code, name, errnum) [code] = GMEM_ERROR_PREFIX name,
static const char *const gmem_error_dbus_name_table[_GMEM_ERROR_MAX] = {
        GMEM_ERROR_ROWS(DBUS_NAME_OF)
        [GMEM_ERROR_ACCESS_DENIED] = ACCESS_DENIED_NAME,
};

#define ERRNO_OF(code, name, errnum) [code] = errnum,
static const int gmem_error_errno_table[_GMEM_ERROR_MAX] = {
        GMEM_ERROR_ROWS(ERRNO_OF)
        [GMEM_ERROR_ACCESS_DENIED] = EACCES,
        [GMEM_ERROR_SYSTEM] = EIO,
};

const char *gmem_error_code_to_dbus_name(GmemErrorCode code) {
        if (code < 0 || code >= _GMEM_ERROR_MAX)
                return NULL;
        return gmem_error_dbus_name_table[code];
}

GmemErrorCode gmem_error_code_from_dbus_name(const char *name) {
        return (GmemErrorCode) string_table_lookup(gmem_error_dbus_name_table, _GMEM_ERROR_MAX, name);
}

int gmem_error_code_to_errno(GmemErrorCode code) {
        if (code < 0 || code >= _GMEM_ERROR_MAX)
                return EINVAL;
        return gmem_error_errno_table[code];
}

/* The org.freedesktop.DBus.Error names a client of ours is likely to meet. */
static const struct {
        const char *name;
        int errnum;
} freedesktop_errors[] = {
        { ACCESS_DENIED_NAME,                                 EACCES       },
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
