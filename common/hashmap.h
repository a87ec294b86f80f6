/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * hashmap.h — a string-keyed hash table with insertion-ordered iteration.
 *
 * Keys are not copied: the key string belongs to the value (e.g. a region's
 * name) and must live as long as the entry. Hashing is SipHash-2-4 with a
 * per-table random key, so names chosen by clients cannot force collisions.
 * Lookups, inserts and removals are O(1) on average; iteration visits entries
 * in insertion order and may remove the entry it is on.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct Hashmap Hashmap;
typedef struct HashmapEntry HashmapEntry;

typedef struct HashmapIter {
        HashmapEntry *next;
        bool started;
} HashmapIter;

#define HASHMAP_ITER_INIT { .next = NULL, .started = false }

Hashmap *hashmap_new(void);
/* Frees the table, not the values. Accepts NULL, returns NULL. */
Hashmap *hashmap_free(Hashmap *h);
/* 0 on success, -EEXIST if the key is present, -ENOMEM. */
int hashmap_put(Hashmap *h, const char *key, void *value);
void *hashmap_get(const Hashmap *h, const char *key);
/* Removes and returns the value, NULL if absent. */
void *hashmap_remove(Hashmap *h, const char *key);
/* Removes key only while it maps to value (one lookup); whether it did. value must not be NULL. */
bool hashmap_remove_value(Hashmap *h, const char *key, const void *value);
size_t hashmap_size(const Hashmap *h);
/* The oldest value, NULL if empty. */
void *hashmap_first(const Hashmap *h);
/* Next value in insertion order; false at the end. Removing the value just returned is allowed. */
bool hashmap_iterate(const Hashmap *h, HashmapIter *i, void **ret_value, const char **ret_key);

#define HASHMAP_FOREACH(v, h, i) \
        for (HashmapIter i = HASHMAP_ITER_INIT; hashmap_iterate((h), &i, (void **) &(v), NULL);)

static inline void hashmap_freep(Hashmap **h) {
        hashmap_free(*h);
}
