/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * store-internal.h — what recording (store.c) and restoring (restore.c)
 * share, and nothing outside daemon/store/ includes: the Store itself, its
 * bookkeeping of which name each object's entry has now, and the record
 * memfd's label.
 *
 * The store tracks entries by key, an object's identity that does not change
 * with its state: "region/ID", "vm/ID", "view/VM_ID/REGION_ID",
 * "pending/VM_ID/REGION_ID" (the pending record of that view) and
 * "migration/ID". Keys are the store's own index; only names (store-name.h)
 * reach the service manager.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hashmap.h"
#include "ledger.h"
#include "manager.h"
#include "store.h"

/* memfd_create()'s name of a record: an empty sealed memfd that only carries an entry's name. */
#define STORE_RECORD_LABEL "gmem-record"

/* Bytes for any key, with its NUL. */
#define STORE_KEY_MAX 64

typedef struct StoreEntry {
        char *key;      /* "region/ID", "vm/ID", "view/VM_ID/REGION_ID", "migration/ID" (store-internal.h) */
        char *name;     /* the FDNAME stored now */
        bool seen;      /* touched by the last sync */
} StoreEntry;

struct Store {
        Manager *manager;
        bool enabled;
        unsigned max;           /* entries the service manager keeps for gmemd at most */
        Hashmap *entries;       /* key -> StoreEntry */
        bool degraded;          /* an entry could not be stored: a crash may lose its object */
        Ledger *ledger;         /* records in gmem.ko (ledger.h), or NULL */
        bool from_ledger;       /* what store_restore() restored came from the ledger */
};

/* Something could not be stored: says so once, and the model's persistence becomes "degraded". */
void store_degrade(Store *s, int error, const char *what);

void store_region_key(uint64_t id, char *buf, size_t size);
void store_vm_key(uint64_t id, char *buf, size_t size);
void store_view_key(uint64_t vm_id, uint64_t region_id, char *buf, size_t size);
void store_pending_key(uint64_t vm_id, uint64_t region_id, char *buf, size_t size);
void store_migration_key(uint64_t id, char *buf, size_t size);

/* Notes that key's entry in the service manager's store is called name (nothing is sent). */
void store_remember(Store *s, const char *key, const char *name);

/* Asks the service manager to drop the entry called name (FDSTOREREMOVE). */
void store_remove_name(const char *name);
/* Removes the entry of this name from the fd store and the ledger, wherever it is. */
void store_forget_name(Store *s, const char *name);
