/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-store-name.c — the fd store's entry names (store-name.h), table-
 * driven: every kind written byte for byte as gmemd has always stored it
 * and read back to the same description, edge values included; malformed
 * names refused with -EINVAL and the output untouched; descriptions the
 * scheme cannot hold refused by the writer; numbers read the way restoring
 * always read them.
 */
#include <stdint.h>

#include "store-name.h"
#include "tests.h"

#define NAME64 "n123456789012345678901234567890123456789012345678901234567890123"
#define NAME65 NAME64 "4"

static const struct {
        StoreName n;
        const char *s;
} good[] = {
        /* region/ID/BACKEND/PAGE_SIZE/CREATOR/0/NAME/OWNER */
        { { .kind = STORE_NAME_REGION, .region = { .id = 1, .backend = BACKEND_MEMFD, .page_size = 4096,
                                                   .creator = 1000, .name = "vm1-ram" } },
          "region/1/memfd/4096/1000/0/vm1-ram/" },
        { { .kind = STORE_NAME_REGION, .region = { .id = 7, .backend = BACKEND_HUGETLB, .page_size = 2097152,
                                                   .creator = 0, .name = "A-Z_a.z-09", .owner = "vm1" } },
          "region/7/hugetlb/2097152/0/0/A-Z_a.z-09/vm1" },
        { { .kind = STORE_NAME_REGION, .region = { .id = UINT64_MAX, .backend = BACKEND_SECRET, .page_size = 1,
                                                   .creator = 4294967295u, .name = NAME64, .owner = NAME64 } },
          "region/18446744073709551615/secret/1/4294967295/0/" NAME64 "/" NAME64 },
        { { .kind = STORE_NAME_REGION, .region = { .id = 2, .backend = BACKEND_MEMFD,
                                                   .page_size = UINT64_C(1) << 63, .creator = 4294967294u,
                                                   .name = "r", .owner = "o" } },
          "region/2/memfd/9223372036854775808/4294967294/0/r/o" },
        { { .kind = STORE_NAME_REGION, .region = { .id = 9, .backend = BACKEND_GUEST_MEMFD, .page_size = 4096,
                                                   .creator = 107, .name = "vm1-gmem", .owner = "vm1" } },
          "region/9/guest_memfd/4096/107/0/vm1-gmem/vm1" },

        /* vm/ID/UID|-/CREATOR/L|N/NAME */
        { { .kind = STORE_NAME_VM, .vm = { .id = 1, .creator = 1000, .name = "vm1" } },
          "vm/1/-/1000/N/vm1" },
        { { .kind = STORE_NAME_VM, .vm = { .id = 3, .has_uid = true, .uid = 0, .creator = 0, .leader = true,
                                           .name = "x" } },
          "vm/3/0/0/L/x" },
        { { .kind = STORE_NAME_VM, .vm = { .id = UINT64_MAX, .has_uid = true, .uid = 4294967294u,
                                           .creator = 4294967295u, .name = NAME64 } },
          "vm/18446744073709551615/4294967294/4294967295/N/" NAME64 },
        { { .kind = STORE_NAME_VM, .vm = { .id = 4, .creator = 0, .leader = true, .leader_pid = 2147483647u,
                                           .leader_start = UINT64_MAX, .name = "led" } },
          "vm/4/-/0/L.2147483647.18446744073709551615/led" },
        { { .kind = STORE_NAME_VM, .vm = { .id = 5, .creator = 0, .leader = true, .leader_pid = 1,
                                           .leader_start = 1, .name = "y" } },
          "vm/5/-/0/L.1.1/y" },

        /* view|revoked/ID/REGION_ID/VM_ID/ro|rw/OFFSET/LENGTH/ALLOCATE/CREATOR */
        { { .kind = STORE_NAME_VIEW, .view = { .id = 5, .region_id = 1, .vm_id = 2, .access = VIEW_ACCESS_RW,
                                               .offset = 0, .length = 4096, .allocate = true, .creator = 1000 } },
          "view/5/1/2/rw/0/4096/1/1000" },
        { { .kind = STORE_NAME_VIEW, .view = { .id = 1, .region_id = UINT64_MAX, .vm_id = UINT64_MAX,
                                               .access = VIEW_ACCESS_RO, .offset = UINT64_MAX,
                                               .length = UINT64_MAX, .creator = 4294967295u } },
          "view/1/18446744073709551615/18446744073709551615/ro/18446744073709551615/18446744073709551615/0/"
          "4294967295" },
        { { .kind = STORE_NAME_REVOKED, .view = { .id = 9, .region_id = 4, .vm_id = 3, .access = VIEW_ACCESS_RO,
                                                  .offset = 8192, .length = 0, .creator = 0 } },
          "revoked/9/4/3/ro/8192/0/0/0" },
        { { .kind = STORE_NAME_REVOKED, .view = { .id = UINT64_MAX, .region_id = 1, .vm_id = 1,
                                                  .access = VIEW_ACCESS_RW, .offset = UINT64_MAX,
                                                  .length = UINT64_MAX, .allocate = true, .creator = 65534 } },
          "revoked/18446744073709551615/1/1/rw/18446744073709551615/18446744073709551615/1/65534" },

        /* pending/ID */
        { { .kind = STORE_NAME_PENDING, .pending = { .view_id = 12 } }, "pending/12" },
        { { .kind = STORE_NAME_PENDING, .pending = { .view_id = UINT64_MAX } }, "pending/18446744073709551615" },

        /* migration/ID/SOURCE_VM_ID/TARGET_VM_ID */
        { { .kind = STORE_NAME_MIGRATION, .migration = { .id = 1, .source_vm_id = 2, .target_vm_id = 3 } },
          "migration/1/2/3" },
        { { .kind = STORE_NAME_MIGRATION, .migration = { .id = UINT64_MAX, .source_vm_id = UINT64_MAX,
                                                         .target_vm_id = 1 } },
          "migration/18446744073709551615/18446744073709551615/1" },
};

/* Every one refused with -EINVAL. */
static const char *const malformed[] = {
        /* no kind, or one that does not exist */
        "", "/", "bogus/1", "regions/1/memfd/4096/0/0/r/", "Region/1/memfd/4096/0/0/r/", "region", "vm",
        " region/1/memfd/4096/0/0/r/",

        /* field counts */
        "region/1/memfd/4096/0/0/r", "region/1/memfd/4096/0/0/r//", "region/1/memfd/4096/0/0/r/o/x",
        "vm/1/-/0/N", "vm/1/-/0/N/x/", "vm/1/-/0/N/x/y",
        "view/1/1/1/rw/0/4096/0", "view/1/1/1/rw/0/4096/0/0/", "view/1/1/1/rw/0/4096/0/0/0",
        "revoked/1/1/1/rw/0/4096/0", "revoked/1/1/1/rw/0/4096/0/0/0",
        "pending", "pending/", "pending/1/", "pending/1/2",
        "migration/1/2", "migration/1/2/3/", "migration/1/2/3/4",
        "view/1/2/3/4/5/6/7/8/9/10/11/12/13",

        /* empty fields */
        "region//memfd/4096/0/0/r/", "region/1//4096/0/0/r/", "region/1/memfd//0/0/r/", "region/1/memfd/4096//0/r/",
        "region/1/memfd/4096/0//r/", "region/1/memfd/4096/0/0//", "vm//-/0/N/x", "vm/1//0/N/x", "vm/1/-//N/x",
        "vm/1/-/0//x", "vm/1/-/0/N/", "view//1/1/rw/0/4096/0/0", "view/1/1/1//0/4096/0/0",
        "view/1/1/1/rw//4096/0/0", "view/1/1/1/rw/0//0/0", "view/1/1/1/rw/0/4096//0", "view/1/1/1/rw/0/4096/0/",
        "migration//2/3", "migration/1//3", "migration/1/2/",

        /* numbers: plain decimal only */
        "pending/+1", "pending/-1", "pending/0x10", "pending/1k", "pending/1K", "pending/1B", "pending/1KiB",
        "pending/ 1", "pending/1 ", "pending/1.0", "pending/1e3", "pending/18446744073709551616",
        "pending/99999999999999999999", "pending/-0", "pending/\t1", "pending/１",
        "view/1/1/1/rw/+0/4096/0/0", "view/1/1/1/rw/0/-4096/0/0", "view/1/1/1/rw/0/4096/1k/0",
        "view/1/1/1/rw/0/18446744073709551616/0/0", "region/1/memfd/4K/0/0/r/", "migration/1/0x2/3",

        /* ids are never 0 */
        "region/0/memfd/4096/0/0/r/", "vm/0/-/0/N/x", "view/0/1/1/rw/0/4096/0/0", "view/1/0/1/rw/0/4096/0/0",
        "view/1/1/0/rw/0/4096/0/0", "revoked/0/1/1/ro/0/0/0/0", "pending/0", "migration/0/1/2",
        "migration/1/0/2", "migration/1/2/0",

        /* uids */
        "vm/1/4294967295/0/N/x", "vm/1/4294967296/0/N/x", "vm/1/-1/0/N/x", "vm/1/--/0/N/x", "vm/1/+5/0/N/x",
        "vm/1/-/4294967296/N/x", "region/1/memfd/4096/4294967296/0/r/", "view/1/1/1/rw/0/4096/0/4294967296",

        /* wire names, L and N */
        "region/1/tmpfs/4096/0/0/r/", "region/1/MEMFD/4096/0/0/r/", "region/1//4096/0/0/r/",
        "view/1/1/1/wr/0/4096/0/0", "view/1/1/1/RW/0/4096/0/0", "view/1/1/1/r/0/4096/0/0",
        "vm/1/-/0/l/x", "vm/1/-/0/LN/x", "vm/1/-/0/Y/x", "vm/1/-/0/0/x",
        /* a leader's pid and start time: both, positive, a pid up to 2^31 - 1 */
        "vm/1/-/0/L.0.5/x", "vm/1/-/0/L.5.0/x", "vm/1/-/0/L.5/x", "vm/1/-/0/L..5/x", "vm/1/-/0/L.5./x",
        "vm/1/-/0/L.5.5.5/x", "vm/1/-/0/L.-1.5/x", "vm/1/-/0/L.2147483648.5/x", "vm/1/-/0/N.5.5/x",
        "vm/1/-/0/L.5.18446744073709551616/x", "vm/1/-/0/L.+5.5/x", "vm/1/-/0/L./x",

        /* page sizes: a power of two, not 0 */
        "region/1/memfd/0/0/0/r/", "region/1/memfd/3000/0/0/r/", "region/1/memfd/4097/0/0/r/",
        "region/1/memfd/18446744073709551615/0/0/r/",

        /* names */
        "region/1/memfd/4096/0/0/" NAME65 "/", "region/1/memfd/4096/0/0/a b/", "region/1/memfd/4096/0/0/a:b/",
        "region/1/memfd/4096/0/0/r/" NAME65, "region/1/memfd/4096/0/0/r/a b", "region/1/memfd/4096/0/0/r/a\n",
        "region/1/memfd/4096/0/0/\xc3\xa4/", "vm/1/-/0/N/" NAME65, "vm/1/-/0/N/a*", "vm/1/-/0/N/a\\b",
};

static void test_format_writes_names_byte_for_byte(void) {
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                char buf[STORE_NAME_MAX];

                EXPECT(store_name_format(&good[i].n, buf, sizeof(buf)) == 0, "row %zu formats", i);
                EXPECT(streq(buf, good[i].s), "row %zu is written '%s' exactly, got '%s'", i, good[i].s, buf);
        }
}

static void test_parse_reads_what_format_writes(void) {
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                char again[STORE_NAME_MAX];
                StoreName n;

                EXPECT(store_name_parse(good[i].s, &n) == 0, "'%s' parses", good[i].s);
                EXPECT(store_name_equal(&n, &good[i].n), "'%s' parses to the description it was written from",
                       good[i].s);
                EXPECT(store_name_format(&n, again, sizeof(again)) == 0 && streq(again, good[i].s),
                       "'%s' formats back to itself, got '%s'", good[i].s, again);
                EXPECT(store_name_kind_of(good[i].s) == good[i].n.kind, "'%s' claims kind %s", good[i].s,
                       store_name_kind_to_string(good[i].n.kind));
        }
}

static void test_parse_refuses_malformed_names(void) {
        for (size_t i = 0; i < ELEMENTSOF(malformed); i++) {
                StoreName n, before;
                int r;

                memset(&n, 0xa5, sizeof(n));
                before = n;
                r = store_name_parse(malformed[i], &n);
                EXPECT(r == -EINVAL, "'%s' is refused with -EINVAL, got %d", malformed[i], r);
                EXPECT(memcmp(&n, &before, sizeof(n)) == 0, "refusing '%s' leaves the output untouched",
                       malformed[i]);
        }
        EXPECT(store_name_parse(NULL, &(StoreName) {}) == -EINVAL, "NULL is refused");
}

static void test_parse_refuses_overlong_names(void) {
        char s[STORE_NAME_MAX + 16];
        StoreName n;

        /* A name past STORE_NAME_MAX, valid but for its length: nothing this long is ever written. */
        memset(s, '0', sizeof(s));
        memcpy(s, "pending/", 8);
        s[sizeof(s) - 2] = '1';
        s[sizeof(s) - 1] = 0;
        EXPECT(store_name_parse(s, &n) == -EINVAL, "a %zu-character name is refused", strlen(s));
}

/* Leading zeros and flags other than 0 and 1 were always read; they are written canonically. A region's
 * sixth field (once a flag without effect) is read whatever number it holds and written 0. */
static void test_parse_reads_numbers_as_restore_always_did(void) {
        static const struct {
                const char *s;
                const char *canonical;
        } cases[] = {
                { "pending/007", "pending/7" },
                { "pending/00000000000000000000018446744073709551615", "pending/18446744073709551615" },
                { "region/01/memfd/04096/01000/2/r/", "region/1/memfd/4096/1000/0/r/" },
                { "region/1/memfd/4096/0/18446744073709551615/r/", "region/1/memfd/4096/0/0/r/" },
                { "region/7/hugetlb/2097152/0/1/A-Z_a.z-09/vm1", "region/7/hugetlb/2097152/0/0/A-Z_a.z-09/vm1" },
                { "vm/1/065534/00/L/x", "vm/1/65534/0/L/x" },
                { "vm/1/-/0/L.007.0042/x", "vm/1/-/0/L.7.42/x" },
                { "view/1/1/1/rw/00/04096/7/0", "view/1/1/1/rw/0/4096/1/0" },
                { "migration/001/002/003", "migration/1/2/3" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char buf[STORE_NAME_MAX];
                StoreName n;

                EXPECT(store_name_parse(cases[i].s, &n) == 0, "'%s' parses", cases[i].s);
                EXPECT(store_name_format(&n, buf, sizeof(buf)) == 0 && streq(buf, cases[i].canonical),
                       "'%s' is written '%s', got '%s'", cases[i].s, cases[i].canonical, buf);
        }
}

static void test_format_refuses_what_the_scheme_cannot_hold(void) {
        static const StoreName bad[] = {
                { .kind = _STORE_NAME_KIND_MAX, .pending.view_id = 1 },
                { .kind = _STORE_NAME_KIND_INVALID, .pending.view_id = 1 },
                { .kind = STORE_NAME_REGION, .region = { .id = 0, .page_size = 4096, .name = "r" } },
                { .kind = STORE_NAME_REGION, .region = { .id = 1, .page_size = 0, .name = "r" } },
                { .kind = STORE_NAME_REGION, .region = { .id = 1, .page_size = 3000, .name = "r" } },
                { .kind = STORE_NAME_REGION, .region = { .id = 1, .page_size = 4096, .name = "" } },
                { .kind = STORE_NAME_REGION, .region = { .id = 1, .page_size = 4096, .name = "a/b" } },
                { .kind = STORE_NAME_REGION, .region = { .id = 1, .page_size = 4096, .name = "r", .owner = "a/b" } },
                { .kind = STORE_NAME_REGION, .region = { .id = 1, .page_size = 4096, .name = "r", .owner = "/" } },
                { .kind = STORE_NAME_REGION, .region = { .id = 1, .backend = _BACKEND_MAX, .page_size = 4096,
                                                         .name = "r" } },
                { .kind = STORE_NAME_REGION, .region = { .id = 1, .backend = _BACKEND_INVALID, .page_size = 4096,
                                                         .name = "r" } },
                { .kind = STORE_NAME_VM, .vm = { .id = 0, .name = "x" } },
                { .kind = STORE_NAME_VM, .vm = { .id = 1, .name = "" } },
                { .kind = STORE_NAME_VM, .vm = { .id = 1, .name = "a b" } },
                { .kind = STORE_NAME_VM, .vm = { .id = 1, .has_uid = true, .uid = 4294967295u, .name = "x" } },
                { .kind = STORE_NAME_VIEW, .view = { .id = 0, .region_id = 1, .vm_id = 1 } },
                { .kind = STORE_NAME_VIEW, .view = { .id = 1, .region_id = 0, .vm_id = 1 } },
                { .kind = STORE_NAME_VIEW, .view = { .id = 1, .region_id = 1, .vm_id = 0 } },
                { .kind = STORE_NAME_VIEW, .view = { .id = 1, .region_id = 1, .vm_id = 1, .access = _VIEW_ACCESS_MAX } },
                { .kind = STORE_NAME_REVOKED, .view = { .id = 1, .region_id = 1, .vm_id = 1,
                                                        .access = _VIEW_ACCESS_INVALID } },
                { .kind = STORE_NAME_PENDING, .pending.view_id = 0 },
                { .kind = STORE_NAME_MIGRATION, .migration = { .id = 0, .source_vm_id = 1, .target_vm_id = 2 } },
                { .kind = STORE_NAME_MIGRATION, .migration = { .id = 1, .source_vm_id = 0, .target_vm_id = 2 } },
                { .kind = STORE_NAME_MIGRATION, .migration = { .id = 1, .source_vm_id = 1, .target_vm_id = 0 } },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char buf[STORE_NAME_MAX];
                int r;

                memset(buf, 'X', sizeof(buf));
                r = store_name_format(&bad[i], buf, sizeof(buf));
                EXPECT(r == -EINVAL, "description %zu is refused with -EINVAL, got %d", i, r);
                EXPECT(buf[0] == 'X' && buf[sizeof(buf) - 1] == 'X', "refusing description %zu leaves buf untouched", i);
        }
}

static void test_format_needs_room_for_the_whole_name(void) {
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                size_t len = strlen(good[i].s);
                char buf[STORE_NAME_MAX];
                int r;

                memset(buf, 'X', sizeof(buf));
                r = store_name_format(&good[i].n, buf, len);
                EXPECT(r == -ENAMETOOLONG, "'%s' does not fit %zu bytes: -ENAMETOOLONG, got %d", good[i].s, len, r);
                EXPECT(buf[0] == 'X', "a buffer too small is left untouched");
                EXPECT(store_name_format(&good[i].n, buf, len + 1) == 0 && streq(buf, good[i].s),
                       "'%s' fits %zu bytes", good[i].s, len + 1);
        }
        EXPECT(store_name_format(&good[0].n, (char[1]) { 'X' }, 0) == -ENAMETOOLONG, "a 0-byte buffer holds no name");
}

/* The longest description of all: a region with the longest numbers, backend and names. */
static void test_longest_name_fits_systemd(void) {
        StoreName n = { .kind = STORE_NAME_REGION, .region = { .id = UINT64_MAX, .backend = BACKEND_GUEST_MEMFD,
                                                                .page_size = UINT64_C(1) << 63,
                                                                .creator = 4294967295u,
                                                                .name = NAME64, .owner = NAME64 } };
        char buf[STORE_NAME_MAX];

        EXPECT(store_name_format(&n, buf, sizeof(buf)) == 0, "the longest region name formats");
        EXPECT(strlen(buf) == 202, "the longest name is 202 characters, as store-name.h says (got %zu)", strlen(buf));
        EXPECT(strlen(buf) <= 255, "systemd takes FDNAMEs of up to 255 characters");
}

static void test_equal_compares_the_kinds_fields(void) {
        StoreName a = good[0].n, b = good[0].n;

        EXPECT(store_name_equal(&a, &b), "a description equals its copy");
        b.region.name[0] = 'w';
        EXPECT(!store_name_equal(&a, &b), "descriptions with different names differ");
        b = a;
        b.kind = STORE_NAME_VM;
        EXPECT(!store_name_equal(&a, &b), "descriptions of different kinds differ");

        a = (StoreName) { .kind = STORE_NAME_VM, .vm = { .id = 1, .uid = 5, .name = "x" } };
        b = (StoreName) { .kind = STORE_NAME_VM, .vm = { .id = 1, .uid = 0, .name = "x" } };
        EXPECT(store_name_equal(&a, &b), "a VM without a uid has no uid to compare");
        a.vm.has_uid = b.vm.has_uid = true;
        EXPECT(!store_name_equal(&a, &b), "VMs with different uids differ");

        a = (StoreName) { .kind = STORE_NAME_VIEW, .view = { .id = 1, .region_id = 1, .vm_id = 1 } };
        b = a;
        b.kind = STORE_NAME_REVOKED;
        EXPECT(!store_name_equal(&a, &b), "a view and its revoked state differ");
}

static void test_kind_strings(void) {
        const char *const want[] = { "region", "vm", "view", "revoked", "pending", "migration" };

        EXPECT(ELEMENTSOF(want) == _STORE_NAME_KIND_MAX, "every kind is listed here");
        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                EXPECT(streq(store_name_kind_to_string((StoreNameKind) i), want[i]), "kind %zu is '%s'", i, want[i]);
                EXPECT(store_name_kind_from_string(want[i]) == (StoreNameKind) i, "'%s' is kind %zu", want[i], i);
        }
        EXPECT(store_name_kind_to_string(_STORE_NAME_KIND_MAX) == NULL &&
               store_name_kind_to_string(_STORE_NAME_KIND_INVALID) == NULL, "no name out of range");
        EXPECT(store_name_kind_from_string("bogus") == _STORE_NAME_KIND_INVALID &&
               store_name_kind_from_string(NULL) == _STORE_NAME_KIND_INVALID, "unknown kinds are -EINVAL");
}

static void test_kind_of_reads_the_first_field_only(void) {
        static const struct {
                const char *s;
                StoreNameKind kind;
        } cases[] = {
                { "region/garbage", STORE_NAME_REGION },
                { "vm", STORE_NAME_VM },
                { "revoked/", STORE_NAME_REVOKED },
                { "pending//", STORE_NAME_PENDING },
                { "migration/1/2/3/4/5", STORE_NAME_MIGRATION },
                { "view/1", STORE_NAME_VIEW },
                { "bogus/1", _STORE_NAME_KIND_INVALID },
                { "", _STORE_NAME_KIND_INVALID },
                { "/region", _STORE_NAME_KIND_INVALID },
                { "regionregionregionregion/1", _STORE_NAME_KIND_INVALID },
                { NULL, _STORE_NAME_KIND_INVALID },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                EXPECT(store_name_kind_of(cases[i].s) == cases[i].kind, "'%s' claims kind %d", cases[i].s ?: "(null)",
                       cases[i].kind);
}

int main(void) {
        RUN(test_format_writes_names_byte_for_byte);
        RUN(test_parse_reads_what_format_writes);
        RUN(test_parse_refuses_malformed_names);
        RUN(test_parse_refuses_overlong_names);
        RUN(test_parse_reads_numbers_as_restore_always_did);
        RUN(test_format_refuses_what_the_scheme_cannot_hold);
        RUN(test_format_needs_room_for_the_whole_name);
        RUN(test_longest_name_fits_systemd);
        RUN(test_equal_compares_the_kinds_fields);
        RUN(test_kind_strings);
        RUN(test_kind_of_reads_the_first_field_only);
        return 0;
}
