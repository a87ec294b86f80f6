/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-errors.c — the error registry: every code has a name that maps back
 * to it, an errno, and a D-Bus name; the first message set wins.
 */
#include "gmem-errors.h"
#include "tests.h"

static void test_round_trip(void) {
        for (GmemErrorCode c = GMEM_ERROR_NO_SUCH_REGION; c < _GMEM_ERROR_MAX; c++) {
                if (c == GMEM_ERROR_SYSTEM)
                        continue;
                const char *s = gmem_error_code_to_string(c), *d = gmem_error_code_to_dbus_name(c);
                EXPECT(s && d, "code %d has a short and a D-Bus name", c);
                EXPECT(gmem_error_code_from_string(s) == c, "short name %s maps back to its code", s);
                EXPECT(gmem_error_code_from_dbus_name(d) == c, "D-Bus name %s maps back to its code", d);
                EXPECT(gmem_errno_from_dbus_name(d) > 0, "D-Bus name %s maps to an errno", d);
                if (c != GMEM_ERROR_ACCESS_DENIED)
                        EXPECT(strncmp(d, GMEM_ERROR_PREFIX, strlen(GMEM_ERROR_PREFIX)) == 0, "%s has our prefix", d);
        }
        EXPECT(gmem_error_code_from_string("Nope") == _GMEM_ERROR_INVALID, "unknown names are invalid");
        EXPECT(gmem_error_code_to_string(_GMEM_ERROR_MAX) == NULL, "out-of-range codes have no name");
        EXPECT(gmem_error_code_to_string(-1) == NULL, "negative codes have no name");
        EXPECT(gmem_errno_from_dbus_name("org.freedesktop.DBus.Error.AccessDenied") == EACCES, "AccessDenied is EACCES");
        EXPECT(gmem_errno_from_dbus_name(GMEM_ERROR_PREFIX "QuotaExceeded") == EDQUOT, "QuotaExceeded is EDQUOT");
        EXPECT(gmem_errno_from_dbus_name("x.y.Z") == 0, "unknown D-Bus names give 0");
}

static void test_set(void) {
        GmemError e = GMEM_ERROR_INIT;
        int r;

        r = gmem_error_set(&e, GMEM_ERROR_NO_SUCH_VM, "No VM '%s' known", "vm1");
        EXPECT(r == -ENOENT, "NoSuchVm returns -ENOENT");
        EXPECT(streq(e.message, "No VM 'vm1' known"), "the message is formatted");
        r = gmem_error_set(&e, GMEM_ERROR_BUSY, "later");
        EXPECT(r == -EBUSY && e.code == GMEM_ERROR_NO_SUCH_VM, "the first error set is kept");
        EXPECT(gmem_error_set(NULL, GMEM_ERROR_BUSY, "x") == -EBUSY, "a NULL error still returns the errno");

        GmemError s = GMEM_ERROR_INIT;
        r = gmem_error_set_errno(&s, -EMFILE, "Cannot open view");
        EXPECT(r == -EMFILE && s.code == GMEM_ERROR_SYSTEM && strstr(s.message, "Cannot open view: "),
               "system errors keep the errno and append its text: %s", s.message);
}

int main(void) {
        RUN(test_round_trip);
        RUN(test_set);
        return 0;
}
