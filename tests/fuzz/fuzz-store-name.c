/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-store-name.c — fuzzes the names of gmemd's fd store entries
 * (daemon/store/store-name.c), which restoring reads from whatever the
 * service manager hands back.
 *
 * The input is used twice. As a string (up to its first NUL), it is parsed:
 * a refusal is -EINVAL and leaves the output untouched; a name that parses
 * describes only what store-name.h allows (checked by a validator written
 * from that header), claims the kind it parsed as, formats back to itself
 * but for how its numbers are spelled (the one freedom the syntax has), and
 * the formatted name parses to an equal description and formats to itself
 * again. As a description decoded from its bytes, it is formatted: it is
 * written if and only if the validator allows it, into a buffer of any size
 * (exactly that size on the heap, so a write past it is caught) or refused
 * with the buffer untouched, and what is written parses back to it.
 */
#include <errno.h>
#include <inttypes.h>

#include "fuzz.h"
#include "store-name.h"

/* --- the rules of store-name.h, written again --- */

static bool ref_name_is_valid(const char *s) {
        size_t n = strlen(s);

        if (n < 1 || n > 64)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                      c == '.' || c == '-'))
                        return false;
        }
        return true;
}

static bool ref_valid(const StoreName *n) {
        switch (n->kind) {
        case STORE_NAME_REGION:
                return n->region.id != 0 && n->region.backend >= 0 && n->region.backend < _BACKEND_MAX &&
                       n->region.page_size != 0 && (n->region.page_size & (n->region.page_size - 1)) == 0 &&
                       ref_name_is_valid(n->region.name) &&
                       (n->region.owner[0] == 0 || ref_name_is_valid(n->region.owner));
        case STORE_NAME_VM:
                return n->vm.id != 0 && (!n->vm.has_uid || n->vm.uid != 4294967295u) && ref_name_is_valid(n->vm.name);
        case STORE_NAME_VIEW:
        case STORE_NAME_REVOKED:
                return n->view.id != 0 && n->view.region_id != 0 && n->view.vm_id != 0 && n->view.access >= 0 &&
                       n->view.access < _VIEW_ACCESS_MAX;
        case STORE_NAME_PENDING:
                return n->pending.view_id != 0;
        case STORE_NAME_MIGRATION:
                return n->migration.id != 0 && n->migration.source_vm_id != 0 && n->migration.target_vm_id != 0;
        default:
                return false;
        }
}

static bool all_digits(const char *s, size_t n) {
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (s[i] < '0' || s[i] > '9')
                        return false;
        return true;
}

/* a and b have the same fields but for numbers spelled differently ("007" and "7", or a flag "2" and "1").
 * Fields are split at '/' and at '.', since a VM's leader field holds two numbers ("L.PID.START"). */
static bool same_but_numbers(const char *a, const char *b) {
        for (;;) {
                size_t la = strcspn(a, "/."), lb = strcspn(b, "/.");

                if ((la != lb || memcmp(a, b, la) != 0) && !(all_digits(a, la) && all_digits(b, lb)))
                        return false;
                a += la;
                b += lb;
                if (*a != *b)
                        return false;   /* one has more fields */
                if (!*a)
                        return true;
                a++;
                b++;
        }
}

/* --- the input as a name --- */

static void check_format_into(const StoreName *n, const char *want, size_t size) {
        size_t len = strlen(want);
        char *buf = malloc(size ? size : 1);
        int r;

        FUZZ_CHECK(buf, "malloc(%zu)", size);
        memset(buf, 'X', size ? size : 1);
        r = store_name_format(n, buf, size);
        if (size > len) {
                FUZZ_CHECK(r == 0 && memcmp(buf, want, len + 1) == 0, "'%s' fits %zu bytes", want, size);
        } else {
                FUZZ_CHECK(r == -ENAMETOOLONG, "'%s' does not fit %zu bytes: -ENAMETOOLONG, got %d", want, size, r);
                for (size_t i = 0; i < size; i++)
                        FUZZ_CHECK(buf[i] == 'X', "a buffer too small for '%s' is left untouched", want);
        }
        free(buf);
}

static void check_parse(const char *s, size_t small) {
        char out[STORE_NAME_MAX], again[STORE_NAME_MAX];
        StoreName n, before, back;
        int r;

        memset(&n, 0x5a, sizeof(n));
        before = n;
        r = store_name_parse(s, &n);
        if (r < 0) {
                FUZZ_CHECK(r == -EINVAL, "'%.300s' is refused with -EINVAL, got %d", s, r);
                FUZZ_CHECK(memcmp(&n, &before, sizeof(n)) == 0, "refusing '%.300s' leaves the output untouched", s);
                return;
        }

        FUZZ_CHECK(r == 0, "store_name_parse() returns 0 or -EINVAL, got %d", r);
        FUZZ_CHECK(ref_valid(&n), "'%.300s' parses only to a description store-name.h allows", s);
        FUZZ_CHECK(store_name_kind_of(s) == n.kind, "'%s' claims the kind it parsed as", s);

        r = store_name_format(&n, out, sizeof(out));
        FUZZ_CHECK(r == 0, "what '%s' parses to formats, got %d", s, r);
        FUZZ_CHECK(strlen(out) <= 198, "'%s' is at most 198 characters", out);
        FUZZ_CHECK(streq(s, out) || same_but_numbers(s, out),
                   "'%s' formats back to itself but for the spelling of numbers, got '%s'", s, out);

        r = store_name_parse(out, &back);
        FUZZ_CHECK(r == 0 && store_name_equal(&n, &back), "'%s' parses back to an equal description", out);
        r = store_name_format(&back, again, sizeof(again));
        FUZZ_CHECK(r == 0 && streq(again, out), "'%s' is canonical: it formats to itself, got '%s'", out, again);

        check_format_into(&n, out, small);
}

/* --- the input as a description --- */

static uint64_t fuzz_number(FuzzInput *in) {
        uint8_t sel = fuzz_u8(in);

        /* Mostly the edges: 0, 1, 2^64 - 1, a power of two, a uid edge; else any. */
        switch (sel & 7) {
        case 0:
                return 0;
        case 1:
                return 1;
        case 2:
                return UINT64_MAX;
        case 3:
                return UINT64_C(1) << ((sel >> 3) & 63);
        case 4:
                return (sel & 8) ? 4294967295u : 4294967294u;
        default:
                return fuzz_u64(in);
        }
}

/* A string of 0..64 characters: mostly of the name alphabet, sometimes any byte but NUL. */
static void fuzz_string(FuzzInput *in, char *buf, size_t size) {
        static const char alphabet[] = "abcXYZ019_.-";
        uint8_t len = fuzz_u8(in) % (uint8_t) size, mode = fuzz_u8(in);

        for (size_t i = 0; i < len; i++) {
                uint8_t c = fuzz_u8(in);
                if ((mode & 3) == 0)
                        buf[i] = c ? (char) c : '/';
                else
                        buf[i] = alphabet[c % (sizeof(alphabet) - 1)];
        }
        buf[len] = 0;
}

static void fuzz_description(FuzzInput *in, StoreName *ret) {
        StoreName n = { .kind = (StoreNameKind) ((int) (fuzz_u8(in) % (_STORE_NAME_KIND_MAX + 2)) - 1) };
        uint8_t flags = fuzz_u8(in), e = fuzz_u8(in);

        switch (n.kind) {
        case STORE_NAME_REGION:
                n.region.id = fuzz_number(in);
                n.region.backend = (BackendType) ((int) (e % (_BACKEND_MAX + 2)) - 1);
                n.region.page_size = fuzz_number(in);
                n.region.creator = (uid_t) fuzz_number(in);
                fuzz_string(in, n.region.name, sizeof(n.region.name));
                fuzz_string(in, n.region.owner, sizeof(n.region.owner));
                break;
        case STORE_NAME_VM:
                n.vm.id = fuzz_number(in);
                n.vm.has_uid = flags & 1;
                n.vm.uid = (uid_t) fuzz_number(in);
                n.vm.creator = (uid_t) fuzz_number(in);
                n.vm.leader = flags & 2;
                fuzz_string(in, n.vm.name, sizeof(n.vm.name));
                break;
        case STORE_NAME_VIEW:
        case STORE_NAME_REVOKED:
                n.view.id = fuzz_number(in);
                n.view.region_id = fuzz_number(in);
                n.view.vm_id = fuzz_number(in);
                n.view.access = (ViewAccess) ((int) (e % (_VIEW_ACCESS_MAX + 2)) - 1);
                n.view.offset = fuzz_number(in);
                n.view.length = fuzz_number(in);
                n.view.allocate = flags & 1;
                n.view.creator = (uid_t) fuzz_number(in);
                break;
        case STORE_NAME_PENDING:
                n.pending.view_id = fuzz_number(in);
                break;
        case STORE_NAME_MIGRATION:
                n.migration.id = fuzz_number(in);
                n.migration.source_vm_id = fuzz_number(in);
                n.migration.target_vm_id = fuzz_number(in);
                break;
        default:
                n.pending.view_id = fuzz_number(in);
                break;
        }
        *ret = n;
}

static void check_format(const StoreName *n, size_t size) {
        char out[STORE_NAME_MAX];
        StoreName back;
        char *buf;
        int r;

        r = store_name_format(n, out, sizeof(out));
        if (!ref_valid(n)) {
                FUZZ_CHECK(r == -EINVAL, "a description of kind %d that store-name.h does not allow is refused, got %d",
                           n->kind, r);
                buf = malloc(size ? size : 1);
                FUZZ_CHECK(buf, "malloc(%zu)", size);
                memset(buf, 'X', size ? size : 1);
                FUZZ_CHECK(store_name_format(n, buf, size) == -EINVAL, "refused into any buffer");
                for (size_t i = 0; i < size; i++)
                        FUZZ_CHECK(buf[i] == 'X', "refusing a description leaves the buffer untouched");
                free(buf);
                return;
        }
        FUZZ_CHECK(r == 0, "a description of kind %s that store-name.h allows is written, got %d",
                   store_name_kind_to_string(n->kind), r);
        FUZZ_CHECK(strlen(out) <= 198, "'%s' is at most 198 characters", out);
        r = store_name_parse(out, &back);
        FUZZ_CHECK(r == 0 && store_name_equal(n, &back), "'%s' parses back to the description it was written from", out);
        check_format_into(n, out, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        FuzzInput in = { .data = data, .size = size };
        StoreName n;
        uint8_t small;
        char *s;

        /* The input as a string. */
        s = malloc(size + 1);
        FUZZ_CHECK(s, "malloc(%zu)", size + 1);
        memcpy(s, data, size);
        s[size] = 0;
        small = size ? data[size - 1] : 0;
        check_parse(s, small % STORE_NAME_MAX);
        free(s);

        /* The input as a description. */
        fuzz_description(&in, &n);
        check_format(&n, fuzz_u8(&in) % STORE_NAME_MAX);
        return 0;
}
