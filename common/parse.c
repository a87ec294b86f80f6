/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * parse.c — names, sizes and ranges: parsing and validation shared by the
 * daemon and its clients. Every function here is pure input checking, has no
 * side effects besides its outputs, and is covered table-driven by
 * tests/unit/test-parse.c and fuzzed later.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "parse.h"

bool gmem_name_is_valid(const char *s) {
        size_t n = 0;

        if (!s)
                return false;
        for (; s[n]; n++) {
                char c = s[n];
                if (n >= GMEM_NAME_MAX)
                        return false;
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '.' || c == '-'))
                        return false;
        }
        return n > 0;
}

int gmem_validate_name(const char *kind, const char *s, GmemError *e) {
        if (gmem_name_is_valid(s))
                return 0;
        if (!s || !s[0])
                return gmem_error_set(e, GMEM_ERROR_INVALID_NAME, "Invalid %s name: the name is empty; "
                                      "names are 1 to %d characters of [A-Za-z0-9_.-]", kind, GMEM_NAME_MAX);
        if (strlen(s) > GMEM_NAME_MAX)
                return gmem_error_set(e, GMEM_ERROR_INVALID_NAME, "Invalid %s name: %zu characters, "
                                      "the limit is %d", kind, strlen(s), GMEM_NAME_MAX);
        return gmem_error_set(e, GMEM_ERROR_INVALID_NAME, "Invalid %s name '%.64s': names are 1 to %d characters "
                              "of [A-Za-z0-9_.-]", kind, s, GMEM_NAME_MAX);
}

static const struct {
        const char *suffix;
        unsigned shift;
} size_suffixes[] = {
        { "E", 60 }, { "P", 50 }, { "T", 40 }, { "G", 30 }, { "M", 20 }, { "K", 10 }, { "k", 10 },
};

int gmem_parse_size(const char *s, uint64_t *ret) {
        uint64_t v = 0;
        const char *p = s;
        unsigned shift = 0;

        if (!s || !ret)
                return -EINVAL;
        if (*p < '0' || *p > '9')
                return -EINVAL;  /* no sign, no space, no empty string */

        for (; *p >= '0' && *p <= '9'; p++) {
                if (MUL_OVERFLOW(v, (uint64_t) 10, &v) || ADD_OVERFLOW(v, (uint64_t) (*p - '0'), &v))
                        return -ERANGE;
        }

        if (*p) {
                size_t i;

                for (i = 0; i < ELEMENTSOF(size_suffixes); i++)
                        if (*p == size_suffixes[i].suffix[0])
                                break;
                if (i < ELEMENTSOF(size_suffixes)) {
                        shift = size_suffixes[i].shift;
                        p++;
                        if (p[0] == 'i' && p[1] == 'B')
                                p += 2;
                        else if (p[0] == 'B')
                                p++;
                } else if (p[0] == 'B')
                        p++;
                if (*p)
                        return -EINVAL;
        }

        if (shift > 0 && v > (UINT64_MAX >> shift))
                return -ERANGE;

        *ret = v << shift;
        return 0;
}

const char *gmem_format_size(char *buf, size_t n, uint64_t bytes) {
        static const char units[] = "KMGTPE";
        unsigned i;

        if (bytes < 1024) {
                snprintf(buf, n, "%" PRIu64 "B", bytes);
                return buf;
        }
        for (i = 0; i + 1 < sizeof(units) - 1 && bytes >= (UINT64_C(1024) << (10 * (i + 1))); i++)
                ;
        uint64_t unit = UINT64_C(1) << (10 * (i + 1));
        if (bytes % unit == 0)
                snprintf(buf, n, "%" PRIu64 "%c", bytes / unit, units[i]);
        else
                snprintf(buf, n, "%.1f%c", (double) bytes / (double) unit, units[i]);
        return buf;
}

int gmem_validate_size(uint64_t size, uint64_t align, uint64_t max, GmemError *e) {
        if (size == 0)
                return gmem_error_set(e, GMEM_ERROR_INVALID_SIZE, "Invalid size 0: a region needs at least %" PRIu64 " bytes", align);
        if (align && (size & (align - 1)))
                return gmem_error_set(e, GMEM_ERROR_INVALID_SIZE, "Invalid size %" PRIu64 ": not a multiple of %" PRIu64 " bytes",
                                      size, align);
        if (max && size > max)
                return gmem_error_set(e, GMEM_ERROR_INVALID_SIZE, "Invalid size %" PRIu64 ": the limit is %" PRIu64 " bytes",
                                      size, max);
        return 0;
}

int gmem_validate_range(const char *what, uint64_t offset, uint64_t length, uint64_t size, uint64_t align,
                        GmemError *e) {
        char buf[GMEM_FORMAT_SIZE_MAX];
        uint64_t end;

        if (length == 0)
                return gmem_error_set(e, GMEM_ERROR_INVALID_RANGE, "Invalid range of %s: length is 0", what);
        if (align && (offset & (align - 1)))
                return gmem_error_set(e, GMEM_ERROR_INVALID_RANGE, "Invalid range of %s: offset %" PRIu64
                                      " is not a multiple of its page size, %" PRIu64 " bytes (%s)", what, offset,
                                      align, gmem_format_size(buf, sizeof(buf), align));
        if (align && (length & (align - 1)))
                return gmem_error_set(e, GMEM_ERROR_INVALID_RANGE, "Invalid range of %s: length %" PRIu64
                                      " is not a multiple of its page size, %" PRIu64 " bytes (%s)", what, length,
                                      align, gmem_format_size(buf, sizeof(buf), align));
        if (ADD_OVERFLOW(offset, length, &end))
                return gmem_error_set(e, GMEM_ERROR_INVALID_RANGE, "Invalid range of %s: offset %" PRIu64
                                      " + length %" PRIu64 " overflows 64 bits", what, offset, length);
        if (end > size)
                return gmem_error_set(e, GMEM_ERROR_INVALID_RANGE, "Invalid range of %s: offset %" PRIu64
                                      " + length %" PRIu64 " = %" PRIu64 " is past its size %" PRIu64,
                                      what, offset, length, end, size);
        return 0;
}

char *gmem_format_uint(char *buf, const char *prefix, uint64_t v) {
        char digits[GMEM_FORMAT_UINT_MAX];
        size_t n = 0, k = strlen(prefix);

        do {
                digits[n++] = (char) ('0' + v % 10);
                v /= 10;
        } while (v > 0);
        memcpy(buf, prefix, k);
        while (n > 0)
                buf[k++] = digits[--n];
        buf[k] = 0;
        return buf;
}
