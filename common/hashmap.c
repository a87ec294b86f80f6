/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * hashmap.c — chained hash table keyed by strings, with a doubly linked list
 * threading all entries in insertion order. Buckets double when the load
 * factor passes 1 and halve when it drops under 1/8.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "hashmap.h"
#include "macro.h"

struct HashmapEntry {
        const char *key;
        void *value;
        uint64_t hash;
        HashmapEntry *chain;              /* next in bucket */
        HashmapEntry *prev, *next;        /* insertion order */
};

struct Hashmap {
        HashmapEntry **buckets;
        size_t n_buckets;                 /* power of two */
        size_t n_entries;
        HashmapEntry *head, *tail;
        uint64_t k0, k1;                  /* SipHash key */
};

#define MIN_BUCKETS 16

#define ROTL(x, b) (uint64_t) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                        \
        do {                                                            \
                v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32); \
                v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                  \
                v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                  \
                v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32); \
        } while (0)

static uint64_t siphash24(const void *data, size_t len, uint64_t k0, uint64_t k1) {
        const uint8_t *p = data;
        uint64_t v0 = UINT64_C(0x736f6d6570736575) ^ k0;
        uint64_t v1 = UINT64_C(0x646f72616e646f6d) ^ k1;
        uint64_t v2 = UINT64_C(0x6c7967656e657261) ^ k0;
        uint64_t v3 = UINT64_C(0x7465646279746573) ^ k1;
        uint64_t b = (uint64_t) len << 56, m;
        size_t left = len & 7;
        const uint8_t *end = p + len - left;

        for (; p != end; p += 8) {
                memcpy(&m, p, 8);   /* little-endian hosts only matter for stability within a run */
                v3 ^= m;
                SIPROUND;
                SIPROUND;
                v0 ^= m;
        }
        for (size_t i = 0; i < left; i++)
                b |= (uint64_t) p[i] << (8 * i);
        v3 ^= b;
        SIPROUND;
        SIPROUND;
        v0 ^= b;
        v2 ^= 0xff;
        SIPROUND;
        SIPROUND;
        SIPROUND;
        SIPROUND;
        return v0 ^ v1 ^ v2 ^ v3;
}

Hashmap *hashmap_new(void) {
        Hashmap *h = calloc(1, sizeof(*h));
        uint64_t key[2] = {};

        if (!h)
                return NULL;
        h->buckets = calloc(MIN_BUCKETS, sizeof(*h->buckets));
        if (!h->buckets) {
                free(h);
                return NULL;
        }
        h->n_buckets = MIN_BUCKETS;
        /* A failing getrandom() leaves a fixed key: still correct, merely predictable. */
        if (getrandom(key, sizeof(key), GRND_NONBLOCK) != (ssize_t) sizeof(key))
                key[0] = (uint64_t) (uintptr_t) h, key[1] = UINT64_C(0x9e3779b97f4a7c15);
        h->k0 = key[0];
        h->k1 = key[1];
        return h;
}

Hashmap *hashmap_free(Hashmap *h) {
        if (!h)
                return NULL;
        for (HashmapEntry *e = h->head, *n; e; e = n) {
                n = e->next;
                free(e);
        }
        free(h->buckets);
        free(h);
        return NULL;
}

static uint64_t hash_key(const Hashmap *h, const char *key) {
        return siphash24(key, strlen(key), h->k0, h->k1);
}

static void rehash(Hashmap *h, size_t n_buckets) {
        HashmapEntry **b = calloc(n_buckets, sizeof(*b));

        if (!b)
                return;  /* keep the old table: slower, still correct */
        for (HashmapEntry *e = h->head; e; e = e->next) {
                size_t i = e->hash & (n_buckets - 1);
                e->chain = b[i];
                b[i] = e;
        }
        free(h->buckets);
        h->buckets = b;
        h->n_buckets = n_buckets;
}

static HashmapEntry *find(const Hashmap *h, const char *key, uint64_t hash) {
        for (HashmapEntry *e = h->buckets[hash & (h->n_buckets - 1)]; e; e = e->chain)
                if (e->hash == hash && streq(e->key, key))
                        return e;
        return NULL;
}

int hashmap_put(Hashmap *h, const char *key, void *value) {
        uint64_t hash;
        HashmapEntry *e;
        size_t i;

        if (!h || !key)
                return -EINVAL;
        hash = hash_key(h, key);
        if (find(h, key, hash))
                return -EEXIST;

        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->key = key;
        e->value = value;
        e->hash = hash;

        i = hash & (h->n_buckets - 1);
        e->chain = h->buckets[i];
        h->buckets[i] = e;

        e->prev = h->tail;
        if (h->tail)
                h->tail->next = e;
        else
                h->head = e;
        h->tail = e;

        if (++h->n_entries > h->n_buckets && h->n_buckets < (SIZE_MAX / sizeof(void *)) / 2)
                rehash(h, h->n_buckets * 2);
        return 0;
}

void *hashmap_get(const Hashmap *h, const char *key) {
        HashmapEntry *e;

        if (!h || !key)
                return NULL;
        e = find(h, key, hash_key(h, key));
        return e ? e->value : NULL;
}

/* Removes key's entry if it holds value (any value if match_value is false); its value, or NULL. */
static void *remove_entry(Hashmap *h, const char *key, bool match_value, const void *value) {
        uint64_t hash;
        HashmapEntry **pp, *e;
        void *v;

        if (!h || !key)
                return NULL;
        hash = hash_key(h, key);
        for (pp = &h->buckets[hash & (h->n_buckets - 1)]; (e = *pp); pp = &e->chain)
                if (e->hash == hash && streq(e->key, key))
                        break;
        if (!e || (match_value && e->value != value))
                return NULL;

        *pp = e->chain;
        if (e->prev)
                e->prev->next = e->next;
        else
                h->head = e->next;
        if (e->next)
                e->next->prev = e->prev;
        else
                h->tail = e->prev;

        v = e->value;
        free(e);
        h->n_entries--;
        if (h->n_buckets > MIN_BUCKETS && h->n_entries < h->n_buckets / 8)
                rehash(h, h->n_buckets / 2);
        return v;
}

void *hashmap_remove(Hashmap *h, const char *key) {
        return remove_entry(h, key, false, NULL);
}

bool hashmap_remove_value(Hashmap *h, const char *key, const void *value) {
        return remove_entry(h, key, true, value) != NULL;
}

size_t hashmap_size(const Hashmap *h) {
        return h ? h->n_entries : 0;
}

void *hashmap_first(const Hashmap *h) {
        return h && h->head ? h->head->value : NULL;
}

bool hashmap_iterate(const Hashmap *h, HashmapIter *i, void **ret_value, const char **ret_key) {
        HashmapEntry *e;

        if (!h)
                return false;
        if (!i->started) {
                i->started = true;
                i->next = h->head;
        }
        e = i->next;
        if (!e)
                return false;
        i->next = e->next;
        if (ret_value)
                *ret_value = e->value;
        if (ret_key)
                *ret_key = e->key;
        return true;
}
