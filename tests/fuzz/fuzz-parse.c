/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-parse.c — fuzzes the input checks every request goes through
 * (common/parse.c) against independent reference implementations written
 * from parse.h: gmem_parse_size() accepts exactly the documented grammar and
 * computes the same value or -ERANGE; gmem_validate_name() and
 * gmem_name_is_valid() agree with the character class and length limit;
 * gmem_validate_size() and gmem_validate_range() accept exactly the sizes
 * and ranges the rules allow, with no 2^64 wrap-around; errors carry the
 * right code, errno and a terminated message whatever the object's name;
 * gmem_format_size() fits its buffer, truncates like snprintf() into a
 * small one, and its output parses back to the value (exactly, or within
 * the rounding of its one decimal).
 *
 * The input is used twice: as a string (up to its first NUL) and as
 * little-endian numbers read from its start.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>

#include "fuzz.h"
#include "parse.h"

/* --- reference implementations, from the documentation in parse.h --- */

static bool ref_name_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
               c == '-';
}

static bool ref_name_is_valid(const char *s) {
        size_t n = strlen(s);

        if (n < 1 || n > GMEM_NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!ref_name_char(s[i]))
                        return false;
        return true;
}

/*
 * digits [ (K|k|M|G|T|P|E) [iB|B] | B ]. Returns -EINVAL if malformed, -ERANGE
 * if the value does not fit; *digits_overflow tells whether the digits alone
 * overflowed (then either error is a fair answer for a malformed suffix).
 */
static int ref_parse_size(const char *s, uint64_t *ret, bool *digits_overflow) {
        static const char units[] = "KMGTPE";
        unsigned __int128 v = 0;
        unsigned shift = 0;
        const char *p = s;

        *digits_overflow = false;
        if (!(*p >= '0' && *p <= '9'))
                return -EINVAL;
        for (; *p >= '0' && *p <= '9'; p++) {
                v = v * 10 + (unsigned) (*p - '0');
                if (v > UINT64_MAX) {
                        *digits_overflow = true;
                        v = (unsigned __int128) UINT64_MAX + 1;  /* saturate, keep scanning */
                }
        }
        if (*p == 'k') {
                shift = 10;
                p++;
        } else if (*p && strchr(units, *p)) {
                shift = 10 * (unsigned) (strchr(units, *p) - units + 1);
                p++;
        }
        if (shift && p[0] == 'i' && p[1] == 'B')
                p += 2;
        else if (p[0] == 'B')
                p++;
        if (*p)
                return -EINVAL;
        if (*digits_overflow)
                return -ERANGE;
        v <<= shift;
        if (v > UINT64_MAX)
                return -ERANGE;
        *ret = (uint64_t) v;
        return 0;
}

static bool ref_size_ok(uint64_t size, uint64_t align, uint64_t max) {
        return size > 0 && (align == 0 || size % align == 0) && (max == 0 || size <= max);
}

static bool ref_range_ok(uint64_t offset, uint64_t length, uint64_t size, uint64_t align) {
        unsigned __int128 end = (unsigned __int128) offset + length;

        return length > 0 && (align == 0 || (offset % align == 0 && length % align == 0)) && end <= UINT64_MAX &&
               end <= size;
}

/* --- checks --- */

static void check_error(int r, const GmemError *e, GmemErrorCode code, const char *what) {
        FUZZ_CHECK(r < 0, "%s fails with a negative errno, got %d", what, r);
        FUZZ_CHECK(e->code == code, "%s sets error %s, got %s", what, gmem_error_code_to_string(code),
                   gmem_error_code_to_string(e->code));
        FUZZ_CHECK(r == -gmem_error_code_to_errno(code), "%s returns the errno of %s", what,
                   gmem_error_code_to_string(code));
        FUZZ_CHECK(memchr(e->message, 0, sizeof(e->message)) && e->message[0], "%s has a terminated, non-empty message",
                   what);
}

static void check_size_parser(const char *s) {
        uint64_t v = 0xdeadbeef, ref = 0;
        bool digits_overflow;
        int r, rr;

        r = gmem_parse_size(s, &v);
        rr = ref_parse_size(s, &ref, &digits_overflow);
        if (rr == -EINVAL && digits_overflow)
                FUZZ_CHECK(r == -EINVAL || r == -ERANGE, "'%s': huge digits and a bad suffix are refused, got %d", s, r);
        else
                FUZZ_CHECK(r == rr, "'%s': gmem_parse_size() returns %d like the reference (got %d)", s, rr, r);
        if (r == 0)
                FUZZ_CHECK(v == ref, "'%s' parses to %" PRIu64 " like the reference (got %" PRIu64 ")", s, ref, v);
        else
                FUZZ_CHECK(v == 0xdeadbeef, "'%s': a failed parse leaves the output untouched", s);
}

static void check_name(const char *s) {
        GmemError e = GMEM_ERROR_INIT;
        bool ok = ref_name_is_valid(s);
        int r;

        FUZZ_CHECK(gmem_name_is_valid(s) == ok, "'%.80s' is %s a valid name", s, ok ? "" : "not");
        r = gmem_validate_name("fuzzed", s, &e);
        if (ok)
                FUZZ_CHECK(r == 0 && !gmem_error_is_set(&e), "valid name '%s' passes validation", s);
        else
                check_error(r, &e, GMEM_ERROR_INVALID_NAME, "validating an invalid name");
}

static void check_format(uint64_t v, size_t small) {
        static const char units[] = "KMGTPE";
        char buf[GMEM_FORMAT_SIZE_MAX], *tiny, *end;
        const char *out;
        size_t len;

        memset(buf, 'X', sizeof(buf));
        out = gmem_format_size(buf, sizeof(buf), v);
        FUZZ_CHECK(out == buf, "gmem_format_size() returns its buffer");
        len = strnlen(buf, sizeof(buf));
        FUZZ_CHECK(len > 1 && len < sizeof(buf), "%" PRIu64 " renders in 2 to %d characters", v,
                   GMEM_FORMAT_SIZE_MAX - 1);

        if (!strchr(buf, '.')) {
                uint64_t back = 0;
                FUZZ_CHECK(gmem_parse_size(buf, &back) == 0 && back == v, "'%s' parses back to %" PRIu64, buf, v);
        } else {
                const char *u;
                double d;

                d = strtod(buf, &end);
                u = strchr(units, *end);
                FUZZ_CHECK(u && *u && end[1] == 0, "'%s' is a number with one unit letter", buf);
                FUZZ_CHECK(end - strchr(buf, '.') == 2, "'%s' has one decimal", buf);
                FUZZ_CHECK(d >= 1.0 && d <= 1024.0, "'%s' is between 1 and 1024 units", buf);
                double unit = ldexp(1.0, 10 * (int) (u - units + 1));
                FUZZ_CHECK(fabs(d * unit - (double) v) <= unit * 0.05 + unit * 1e-9,
                           "'%s' is %" PRIu64 " within the rounding of one decimal", buf, v);
                FUZZ_CHECK(v % (uint64_t) unit != 0, "'%s': a fraction is shown only for an inexact value", buf);
        }

        /* Into a buffer of exactly 'small' bytes: a terminated prefix, nothing written past it. */
        tiny = malloc(small);
        FUZZ_CHECK(tiny, "malloc(%zu)", small);
        (void) gmem_format_size(tiny, small, v);
        FUZZ_CHECK(strnlen(tiny, small) < small, "a %zu-byte buffer holds a terminated string", small);
        FUZZ_CHECK(strncmp(tiny, buf, strlen(tiny)) == 0, "'%s' is a prefix of '%s'", tiny, buf);
        free(tiny);
}

static void check_size_rules(uint64_t size, uint64_t align, uint64_t max) {
        GmemError e = GMEM_ERROR_INIT;
        int r;

        r = gmem_validate_size(size, align, max, &e);
        if (ref_size_ok(size, align, max))
                FUZZ_CHECK(r == 0, "size %" PRIu64 " (align %" PRIu64 ", max %" PRIu64 ") is valid", size, align, max);
        else
                check_error(r, &e, GMEM_ERROR_INVALID_SIZE, "validating an invalid size");
}

static void check_range_rules(const char *what, uint64_t offset, uint64_t length, uint64_t size, uint64_t align) {
        GmemError e = GMEM_ERROR_INIT;
        int r;

        r = gmem_validate_range(what, offset, length, size, align, &e);
        if (ref_range_ok(offset, length, size, align))
                FUZZ_CHECK(r == 0, "range %" PRIu64 "+%" PRIu64 " of %" PRIu64 " (align %" PRIu64 ") is valid", offset,
                           length, size, align);
        else
                check_error(r, &e, GMEM_ERROR_INVALID_RANGE, "validating an invalid range");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        FuzzInput in = { .data = data, .size = size };
        uint64_t a, b, c, align;
        uint8_t sel;
        char *s;

        /* The input as a string. */
        s = malloc(size + 1);
        FUZZ_CHECK(s, "malloc(%zu)", size + 1);
        memcpy(s, data, size);
        s[size] = 0;
        check_size_parser(s);
        check_name(s);

        /* The input as numbers. */
        a = fuzz_u64(&in);
        b = fuzz_u64(&in);
        c = fuzz_u64(&in);
        sel = fuzz_u8(&in);
        /* Alignments are powers of two, or 0 for none; mostly pages. */
        align = sel & 0x80 ? (sel & 0x40 ? 0 : UINT64_C(1) << (sel & 63)) : 4096;

        check_format(a, 1 + fuzz_u8(&in) % GMEM_FORMAT_SIZE_MAX);
        check_format(b, 1 + fuzz_u8(&in) % GMEM_FORMAT_SIZE_MAX);
        check_size_rules(a, align, c);
        check_size_rules(a & ~(align - 1), align, sel & 1 ? 0 : c);
        check_range_rules(s, a, b, c, align);
        /* Aligned operands reach the overflow and past-the-end checks more often. */
        check_range_rules("region 'fuzz'", align ? a & ~(align - 1) : a, align ? b & ~(align - 1) : b, c, align);

        free(s);
        return 0;
}
