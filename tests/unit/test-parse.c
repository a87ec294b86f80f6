/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-parse.c — names, sizes and ranges, table-driven, including every
 * way an offset + length can wrap 2^64.
 */
#include <stdint.h>

#include "parse.h"
#include "tests.h"

static void test_names(void) {
        static const struct {
                const char *name;
                int valid;
        } cases[] = {
                { "vm1", 1 },
                { "a", 1 },
                { "A-Z_a.z-09", 1 },
                { "0123456789012345678901234567890123456789012345678901234567890123", 1 },   /* 64 */
                { "01234567890123456789012345678901234567890123456789012345678901234", 0 },  /* 65 */
                { "", 0 },
                { "a/b", 0 },
                { "a b", 0 },
                { "ä", 0 },
                { "a\n", 0 },
                { "a:b", 0 },
                { "*", 0 },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                GmemError e = GMEM_ERROR_INIT;
                int r = gmem_validate_name("region", cases[i].name, &e);
                EXPECT(gmem_name_is_valid(cases[i].name) == cases[i].valid, "name '%s' validity is %d",
                       cases[i].name, cases[i].valid);
                EXPECT((r == 0) == cases[i].valid, "validate_name agrees with name_is_valid for '%s'", cases[i].name);
                if (!cases[i].valid)
                        EXPECT(e.code == GMEM_ERROR_INVALID_NAME && strstr(e.message, "region"),
                               "an invalid name gives InvalidName naming the kind: %s", e.message);
        }
        EXPECT(!gmem_name_is_valid(NULL), "NULL is not a name");
}

static void test_sizes(void) {
        static const struct {
                const char *s;
                int r;
                uint64_t v;
        } cases[] = {
                { "0", 0, 0 },
                { "4096", 0, 4096 },
                { "1K", 0, 1024 },
                { "1k", 0, 1024 },
                { "2M", 0, 2 << 20 },
                { "2MiB", 0, 2 << 20 },
                { "2MB", 0, 2 << 20 },
                { "3G", 0, UINT64_C(3) << 30 },
                { "1T", 0, UINT64_C(1) << 40 },
                { "1P", 0, UINT64_C(1) << 50 },
                { "15E", 0, UINT64_C(15) << 60 },
                { "16E", -ERANGE, 0 },
                { "18446744073709551615", 0, UINT64_MAX },
                { "18446744073709551616", -ERANGE, 0 },
                { "99999999999999999999999", -ERANGE, 0 },
                { "17179869184G", -ERANGE, 0 },
                { "", -EINVAL, 0 },
                { "-1", -EINVAL, 0 },
                { " 1", -EINVAL, 0 },
                { "1 ", -EINVAL, 0 },
                { "1X", -EINVAL, 0 },
                { "1GG", -EINVAL, 0 },
                { "1.5G", -EINVAL, 0 },
                { "G", -EINVAL, 0 },
                { "0x10", -EINVAL, 0 },
                { "1B", 0, 1 },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                uint64_t v = 12345;
                int r = gmem_parse_size(cases[i].s, &v);
                EXPECT(r == cases[i].r, "parse_size('%s') returns %d, got %d", cases[i].s, cases[i].r, r);
                if (r == 0)
                        EXPECT(v == cases[i].v, "parse_size('%s') is %llu", cases[i].s, (unsigned long long) cases[i].v);
                else
                        EXPECT(v == 12345, "parse_size('%s') leaves its output untouched on failure", cases[i].s);
        }
        EXPECT(gmem_parse_size(NULL, &(uint64_t){0}) == -EINVAL, "NULL is not a size");
}

static void test_format_size(void) {
        char buf[GMEM_FORMAT_SIZE_MAX];
        EXPECT(streq(gmem_format_size(buf, sizeof(buf), 0), "0B"), "0 renders as 0B");
        EXPECT(streq(gmem_format_size(buf, sizeof(buf), 4096), "4K"), "4096 renders as 4K");
        EXPECT(streq(gmem_format_size(buf, sizeof(buf), UINT64_C(1) << 30), "1G"), "2^30 renders as 1G");
        EXPECT(streq(gmem_format_size(buf, sizeof(buf), UINT64_C(3) << 29), "1.5G"), "1.5 GiB renders as 1.5G");
        EXPECT(gmem_format_size(buf, sizeof(buf), UINT64_MAX)[0] != 0, "UINT64_MAX renders");
}

static void test_format_uint(void) {
        char buf[32];

        EXPECT(streq(gmem_format_uint(buf, "", 0), "0"), "0 is '0'");
        EXPECT(streq(gmem_format_uint(buf, "", 4294967295U), "4294967295"), "a uid's largest value");
        EXPECT(streq(gmem_format_uint(buf, "/proc/self/fd/", 17), "/proc/self/fd/17"), "a prefix comes first");
        EXPECT(streq(gmem_format_uint(buf, "", UINT64_MAX), "18446744073709551615"), "2^64-1 fits");
        EXPECT(strlen(gmem_format_uint(buf, "", UINT64_MAX)) + 1 == GMEM_FORMAT_UINT_MAX,
               "GMEM_FORMAT_UINT_MAX is tight");
}

static void test_validate_size(void) {
        static const struct {
                uint64_t size, align, max;
                int ok;
        } cases[] = {
                { 4096, 4096, 0, 1 },
                { 0, 4096, 0, 0 },
                { 1, 4096, 0, 0 },
                { 4095, 4096, 0, 0 },
                { 4097, 4096, 0, 0 },
                { 2 << 20, 2 << 20, 0, 1 },
                { 4096, 2 << 20, 0, 0 },
                { UINT64_MAX - 4095, 4096, 0, 1 },
                { UINT64_MAX - 4095, 4096, UINT64_C(1) << 46, 0 },
                { UINT64_C(1) << 46, 4096, UINT64_C(1) << 46, 1 },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                GmemError e = GMEM_ERROR_INIT;
                int r = gmem_validate_size(cases[i].size, cases[i].align, cases[i].max, &e);
                EXPECT((r == 0) == cases[i].ok, "size %llu with granule %llu valid=%d",
                       (unsigned long long) cases[i].size, (unsigned long long) cases[i].align, cases[i].ok);
                if (!cases[i].ok)
                        EXPECT(e.code == GMEM_ERROR_INVALID_SIZE && strstr(e.message, "size"),
                               "a bad size gives InvalidSize naming it: %s", e.message);
        }
}

static void test_validate_range(void) {
        const uint64_t size = 1 << 20, ps = 4096;
        static const struct {
                uint64_t offset, length;
                int ok;
        } cases[] = {
                { 0, 4096, 1 },
                { 0, 1 << 20, 1 },
                { (1 << 20) - 4096, 4096, 1 },
                { 0, 0, 0 },                                            /* empty */
                { 1, 4096, 0 },                                         /* unaligned offset */
                { 0, 4095, 0 },                                         /* unaligned length */
                { 0, (1 << 20) + 4096, 0 },                             /* past the end */
                { 1 << 20, 4096, 0 },                                   /* starts at the end */
                { UINT64_MAX - 4095, 4096, 0 },                         /* ends exactly at 2^64 */
                { UINT64_MAX - 4095, 8192, 0 },                         /* wraps */
                { 4096, UINT64_MAX - 4095, 0 },                         /* wraps to 0 */
                { UINT64_C(1) << 63, UINT64_C(1) << 63, 0 },            /* wraps to exactly 0 */
                { (UINT64_C(1) << 63) + 4096, UINT64_C(1) << 63, 0 },   /* wraps into range */
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                GmemError e = GMEM_ERROR_INIT;
                int r = gmem_validate_range("region 'x'", cases[i].offset, cases[i].length, size, ps, &e);
                EXPECT((r == 0) == cases[i].ok, "range %llu+%llu valid=%d (%s)", (unsigned long long) cases[i].offset,
                       (unsigned long long) cases[i].length, cases[i].ok, e.message);
                if (!cases[i].ok)
                        EXPECT(e.code == GMEM_ERROR_INVALID_RANGE && strstr(e.message, "region 'x'"),
                               "a bad range gives InvalidRange naming the region: %s", e.message);
        }
}

int main(void) {
        RUN(test_names);
        RUN(test_sizes);
        RUN(test_format_size);
        RUN(test_format_uint);
        RUN(test_validate_size);
        RUN(test_validate_range);
        return 0;
}
