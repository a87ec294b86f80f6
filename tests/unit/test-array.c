/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-array.c — grow_array() and GROW_ARRAY(): an array grows by doubling
 * from GROW_ARRAY_MIN, keeps its contents, is left alone when it has room,
 * works for any element size, and refuses a size that does not fit a
 * size_t without touching the array or its count.
 */
#include <stdint.h>

#include "array.h"
#include "tests.h"

typedef struct Wide {
        uint64_t a, b, c;
        char tag[13];
} Wide;

static void test_growth(void) {
        _cleanup_free_ int *v = NULL;
        size_t allocated = 0, n;

        EXPECT(GROW_ARRAY(v, allocated, 1) == 0, "room for one element in an empty array");
        EXPECT(v && allocated == GROW_ARRAY_MIN, "an empty array starts with room for %d, has %zu",
               GROW_ARRAY_MIN, allocated);

        for (n = 0; n < 1000; n++) {
                size_t before = allocated;

                EXPECT(GROW_ARRAY(v, allocated, n + 1) == 0, "room for element %zu", n);
                EXPECT(allocated >= n + 1, "the array has room for %zu after growing, has %zu", n + 1, allocated);
                EXPECT(allocated == before || allocated == before * 2,
                       "a full array doubles (%zu -> %zu)", before, allocated);
                v[n] = (int) n * 3;
        }
        for (n = 0; n < 1000; n++)
                EXPECT(v[n] == (int) n * 3, "element %zu survives every reallocation", n);
}

static void test_room_left(void) {
        _cleanup_free_ char *v = NULL;
        size_t allocated = 0;
        char *before;

        EXPECT(GROW_ARRAY(v, allocated, 5) == 0, "room for five bytes");
        before = v;
        EXPECT(GROW_ARRAY(v, allocated, allocated) == 0, "asking for the room already there succeeds");
        EXPECT(v == before && allocated == GROW_ARRAY_MIN, "an array with room is not reallocated");
        EXPECT(GROW_ARRAY(v, allocated, 0) == 0 && v == before, "asking for no room changes nothing");
}

static void test_jump(void) {
        _cleanup_free_ uint16_t *v = NULL;
        size_t allocated = 0;

        EXPECT(GROW_ARRAY(v, allocated, 3) == 0, "room for three");
        EXPECT(GROW_ARRAY(v, allocated, 100) == 0, "room for a hundred at once");
        EXPECT(allocated == 100, "a need beyond double the room is met exactly, got %zu", allocated);
        v[99] = 0xbeef;
        EXPECT(GROW_ARRAY(v, allocated, 101) == 0 && allocated == 200, "then it doubles again, got %zu",
               allocated);
        EXPECT(v[99] == 0xbeef, "the last element of the jump survives the doubling");
}

static void test_element_sizes(void) {
        _cleanup_free_ uint8_t *bytes = NULL;
        _cleanup_free_ uint64_t *words = NULL;
        _cleanup_free_ Wide *wide = NULL;
        size_t n_bytes = 0, n_words = 0, n_wide = 0;

        EXPECT(GROW_ARRAY(bytes, n_bytes, 33) == 0, "room for 33 bytes");
        EXPECT(GROW_ARRAY(words, n_words, 33) == 0, "room for 33 words");
        EXPECT(GROW_ARRAY(wide, n_wide, 33) == 0, "room for 33 structs of %zu bytes", sizeof(Wide));
        EXPECT(n_bytes == 33 && n_words == 33 && n_wide == 33, "the count is in elements, not bytes");

        /* Every element is writable; the sanitizers catch a short allocation. */
        for (size_t i = 0; i < 33; i++) {
                bytes[i] = (uint8_t) i;
                words[i] = UINT64_MAX - i;
                wide[i] = (Wide) { .a = i, .c = i, .tag = "twelve chars" };
        }
        EXPECT(bytes[32] == 32 && words[32] == UINT64_MAX - 32 && wide[32].c == 32,
               "the last element of each array holds what was stored");
}

static void test_overflow(void) {
        static const struct {
                size_t need;
                size_t element_size;
        } cases[] = {
                { SIZE_MAX, 2 },
                { SIZE_MAX / 2 + 1, 2 },
                { SIZE_MAX / 8 + 1, 8 },
                { SIZE_MAX / sizeof(Wide) + 1, sizeof(Wide) },
                { SIZE_MAX / 4096 + 1, 4096 },
                { 2, SIZE_MAX },
                { SIZE_MAX, SIZE_MAX },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                void *v = NULL;
                size_t allocated = 0;

                EXPECT(grow_array(&v, &allocated, cases[i].need, cases[i].element_size) == -ENOMEM,
                       "case %zu: %zu elements of %zu bytes overflow a size_t and are refused",
                       i, cases[i].need, cases[i].element_size);
                EXPECT(!v && allocated == 0, "case %zu: a refused growth leaves an empty array empty", i);
        }
}

static void test_overflow_keeps_array(void) {
        _cleanup_free_ uint64_t *v = NULL;
        size_t allocated = 0;
        uint64_t *before;

        EXPECT(GROW_ARRAY(v, allocated, 4) == 0, "room for four words");
        v[3] = 42;
        before = v;
        EXPECT(GROW_ARRAY(v, allocated, SIZE_MAX / sizeof(uint64_t) + 1) == -ENOMEM,
               "room for more words than a size_t can count is refused");
        EXPECT(v == before && allocated == GROW_ARRAY_MIN && v[3] == 42,
               "a refused growth leaves the array, its count and its contents as they were");
}

static void test_zero_element_size(void) {
        void *v = NULL;
        size_t allocated = 0;

        EXPECT(grow_array(&v, &allocated, 1, 0) == -EINVAL, "elements of no size are refused");
        EXPECT(!v && allocated == 0, "and nothing is allocated for them");
}

int main(void) {
        RUN(test_growth);
        RUN(test_room_left);
        RUN(test_jump);
        RUN(test_element_sizes);
        RUN(test_overflow);
        RUN(test_overflow_keeps_array);
        RUN(test_zero_element_size);
        return 0;
}
