/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-hashmap.c — the string-keyed table: put/get/remove, duplicates,
 * insertion order, removal while iterating, growth and shrinking.
 */
#include <stdio.h>

#include "hashmap.h"
#include "tests.h"

static void test_basic(void) {
        Hashmap *h = hashmap_new();
        EXPECT(h, "a table can be made");
        EXPECT(hashmap_put(h, "a", (void *) 1) == 0, "put a");
        EXPECT(hashmap_put(h, "a", (void *) 2) == -EEXIST, "a second put of a is refused");
        EXPECT(hashmap_get(h, "a") == (void *) 1, "get a returns the first value");
        EXPECT(hashmap_get(h, "b") == NULL, "get of a missing key is NULL");
        EXPECT(hashmap_remove(h, "a") == (void *) 1, "remove returns the value");
        EXPECT(hashmap_remove(h, "a") == NULL, "a second remove finds nothing");
        EXPECT(hashmap_size(h) == 0, "the table is empty");
        EXPECT(hashmap_put(h, "c", (void *) 3) == 0, "put c");
        EXPECT(!hashmap_remove_value(h, "c", (void *) 4), "remove_value of another value leaves c");
        EXPECT(hashmap_get(h, "c") == (void *) 3, "c is still there");
        EXPECT(!hashmap_remove_value(h, "d", (void *) 3), "remove_value of a missing key finds nothing");
        EXPECT(hashmap_remove_value(h, "c", (void *) 3), "remove_value of c's own value removes it");
        EXPECT(hashmap_get(h, "c") == NULL && hashmap_size(h) == 0, "c is gone");
        EXPECT(hashmap_put(NULL, "a", NULL) == -EINVAL, "put on NULL is refused");
        hashmap_free(h);
        EXPECT(hashmap_free(NULL) == NULL, "free accepts NULL");
}

static void test_many(void) {
        enum { N = 20000 };
        static char keys[N][16];
        Hashmap *h = hashmap_new();
        size_t i = 0;
        void *v;

        for (i = 0; i < N; i++) {
                snprintf(keys[i], sizeof(keys[i]), "k%zu", i);
                EXPECT(hashmap_put(h, keys[i], (void *) (i + 1)) == 0, "put %s", keys[i]);
        }
        EXPECT(hashmap_size(h) == N, "all keys are in");
        for (i = 0; i < N; i++)
                EXPECT(hashmap_get(h, keys[i]) == (void *) (i + 1), "get %s", keys[i]);

        i = 0;
        HASHMAP_FOREACH(v, h, it) {
                EXPECT(v == (void *) (i + 1), "iteration is in insertion order at %zu", i);
                if (i % 2 == 0)
                        EXPECT(hashmap_remove(h, keys[i]) == v, "removing the current entry while iterating works");
                i++;
        }
        EXPECT(i == N, "iteration saw every entry once");
        EXPECT(hashmap_size(h) == N / 2, "half are left");
        for (i = 1; i < N; i += 2)
                EXPECT(hashmap_remove(h, keys[i]) == (void *) (i + 1), "remove %s", keys[i]);
        EXPECT(hashmap_size(h) == 0 && hashmap_first(h) == NULL, "the table is empty again");
        hashmap_free(h);
}

int main(void) {
        RUN(test_basic);
        RUN(test_many);
        return 0;
}
