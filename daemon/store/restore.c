/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * restore.c — rebuilding the model from the entries the service manager
 * hands back on start (LISTEN_FDS/LISTEN_FDNAMES).
 *
 * Restoring trusts nothing it is given. A name must parse (store-name.c);
 * then the fd must be what the name says: a region fd this daemon's memfd of
 * that name with the region seals; a view a file on its region's inode with
 * its access mode; a leader a pidfd; records record memfds. Anything else is
 * removed from the store and closed.
 *
 * Entries are restored kind by kind, so that what an entry refers to is
 * there before it: regions, VMs, pending records, views, migrations. Where a
 * crash left two entries of one view, the later state wins; a pending view
 * that no restored migration claims goes.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "log.h"
#include "migration.h"
#include "region.h"
#include "store-internal.h"
#include "store-name.h"
#include "store.h"
#include "view.h"
#include "vm.h"

#define REGION_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

typedef struct Entry {
        char *name;             /* as stored, NULL if the service manager gave none */
        StoreName parsed;       /* valid once the name parsed */
        int fd;
        bool used;              /* restored, or dropped */
} Entry;

/* --- checking the fds --- */

static int fd_link(int fd, char *buf, size_t n) {
        char path[64];
        ssize_t l;

        (void) snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        l = readlink(path, buf, n - 1);
        if (l < 0)
                return negative_errno();
        buf[l] = 0;
        return 0;
}

static bool is_record(int fd) {
        char link[256];
        struct stat st;

        return fd_link(fd, link, sizeof(link)) >= 0 &&
               strncmp(link, "/memfd:" STORE_RECORD_LABEL, 7 + strlen(STORE_RECORD_LABEL)) == 0 &&
               fstat(fd, &st) >= 0 && S_ISREG(st.st_mode) && st.st_size == 0;
}

static bool is_pidfd(int fd) {
        char link[256];
        return fd_link(fd, link, sizeof(link)) >= 0 && streq(link, "anon_inode:[pidfd]");
}

/* --- an entry's fate --- */

static void used(Store *s, Entry *e, const char *key) {
        store_remember(s, key, e->name);
        e->used = true;
}

static void drop(Entry *e, unsigned *removed, const char *why) {
        const char *name = e->name ?: "";

        log_warning("Removing fd store entry '%s': %s", name, why);
        store_remove_name(name);
        e->fd = safe_close(e->fd);
        e->used = true;
        (*removed)++;
}

/* Objects restored so far by id, so that views and migrations find theirs in O(1). */
typedef struct IdEntry {
        char key[24];
        void *object;
} IdEntry;

typedef struct Restore {
        Store *store;
        Hashmap *regions;       /* id -> IdEntry(Region) */
        Hashmap *vms;           /* id -> IdEntry(Vm) */
        Hashmap *pending;       /* view id -> IdEntry(Entry "pending/ID") */
        unsigned removed;
} Restore;

static void id_index_put(Hashmap *h, uint64_t id, void *object) {
        IdEntry *e = calloc(1, sizeof(*e));

        if (!e)
                return;         /* a view of it is then dropped as "gone": not lost, refused */
        (void) snprintf(e->key, sizeof(e->key), "%" PRIu64, id);
        e->object = object;
        if (hashmap_put(h, e->key, e) < 0)
                free(e);
}

static void *id_index_get(Hashmap *h, uint64_t id) {
        char key[24];
        IdEntry *e;

        (void) snprintf(key, sizeof(key), "%" PRIu64, id);
        e = hashmap_get(h, key);
        return e ? e->object : NULL;
}

static void id_index_free(Hashmap *h) {
        IdEntry *e;

        while ((e = hashmap_first(h))) {
                hashmap_remove(h, e->key);
                free(e);
        }
        hashmap_free(h);
}

/* --- one entry of each kind; its name parsed already --- */

static void restore_region(Restore *rs, Entry *e) {
        const StoreName *n = &e->parsed;
        Store *s = rs->store;
        unsigned *removed = &rs->removed;
        GmemError err = GMEM_ERROR_INIT;

        Region *reg;
        char key[STORE_KEY_MAX];

        if (region_adopt(s->manager, &(RegionParams) {
                                 .name = n->region.name,
                                 .backend = n->region.backend,
                                 .persistent = n->region.persistent,
                                 .owner = n->region.owner,
                         }, &ACTOR_UNLIMITED(n->region.creator), n->region.id, n->region.page_size, TAKE_FD(e->fd),
                         &reg, &err) < 0)
                return drop(e, removed, err.message);
        store_region_key(reg->id, key, sizeof(key));
        id_index_put(rs->regions, n->region.id, reg);
        used(s, e, key);
}

static void restore_vm(Restore *rs, Entry *e) {
        const StoreName *n = &e->parsed;
        Store *s = rs->store;
        unsigned *removed = &rs->removed;
        GmemError err = GMEM_ERROR_INIT;

        if (id_index_get(rs->vms, n->vm.id))
                return drop(e, removed, "malformed VM entry");
        if (n->vm.leader ? !is_pidfd(e->fd) : !is_record(e->fd))
                return drop(e, removed, n->vm.leader ? "not a pidfd" : "not a record");

        UsageCharge charge = {};        /* vm_register() takes it, whatever happens */
        Vm *vm;
        char key[STORE_KEY_MAX];

        if (vm_reserve(s->manager, &ACTOR_UNLIMITED(n->vm.creator), &charge, &err) < 0 ||
            vm_register(s->manager, &(VmParams) {
                                .name = n->vm.name,
                                .has_uid = n->vm.has_uid,
                                .uid = (uint32_t) n->vm.uid,
                                .id = n->vm.id,
                                .has_leader_pidfd = n->vm.leader,
                                .leader_pidfd = n->vm.leader ? TAKE_FD(e->fd) : -EBADF,
                        }, &charge, &vm, &err) < 0)
                return drop(e, removed, err.message);
        e->fd = safe_close(e->fd);      /* a record's job is done: the entry stays in the store */
        store_vm_key(vm->id, key, sizeof(key));
        id_index_put(rs->vms, n->vm.id, vm);
        used(s, e, key);
}

static void restore_pending(Restore *rs, Entry *e) {
        const StoreName *n = &e->parsed;

        if (id_index_get(rs->pending, n->pending.view_id))
                return drop(e, &rs->removed, "malformed pending record");
        if (!is_record(e->fd))
                return drop(e, &rs->removed, "not a record");
        e->fd = safe_close(e->fd);
        id_index_put(rs->pending, n->pending.view_id, e);   /* used when its view is restored */
}

static void restore_view(Restore *rs, Entry *e) {
        const StoreName *n = &e->parsed;
        unsigned *removed = &rs->removed;
        GmemError err = GMEM_ERROR_INIT;
        bool revoked = n->kind == STORE_NAME_REVOKED, record;
        ViewState state = VIEW_STATE_REVOKED;
        Entry *pending;
        Region *reg;
        Vm *vm;
        int fd;

        reg = id_index_get(rs->regions, n->view.region_id);
        vm = id_index_get(rs->vms, n->view.vm_id);
        if (!reg || !vm)
                return drop(e, removed, "its region or VM is gone");
        pending = revoked ? NULL : id_index_get(rs->pending, n->view.id);
        if (!revoked)
                state = pending ? VIEW_STATE_PENDING : VIEW_STATE_ACTIVE;

        /* Revoked views, and views that are the master file itself, are stored as records. */
        record = revoked || reg->ops->views_share_master;
        if (record && !is_record(e->fd))
                return drop(e, removed, "not a record");
        if (record)
                e->fd = safe_close(e->fd);
        if (revoked)
                fd = -EBADF;
        else if (record) {
                fd = fcntl(reg->br.fd, F_DUPFD_CLOEXEC, 3);
                if (fd < 0)
                        return drop(e, removed, "cannot duplicate the region's file");
        } else
                fd = TAKE_FD(e->fd);

        if (view_adopt(vm, reg, &(ViewAdopt) {
                               .id = n->view.id,
                               .access = n->view.access,
                               .offset = n->view.offset,
                               .length = n->view.length,
                               .may_allocate = n->view.allocate,
                               .state = state,
                               .fd = fd,
                       }, &ACTOR_UNLIMITED(n->view.creator), NULL, &err) < 0)
                return drop(e, removed, err.message);
        char key[STORE_KEY_MAX];
        store_view_key(vm->id, reg->id, key, sizeof(key));
        used(rs->store, e, key);
        if (pending) {
                store_pending_key(vm->id, reg->id, key, sizeof(key));
                used(rs->store, pending, key);
        }
}

static void restore_migration(Restore *rs, Entry *e) {
        const StoreName *n = &e->parsed;
        Store *s = rs->store;
        unsigned *removed = &rs->removed;
        GmemError err = GMEM_ERROR_INIT;
        Vm *source, *target;

        if (!is_record(e->fd))
                return drop(e, removed, "not a record");
        source = id_index_get(rs->vms, n->migration.source_vm_id);
        target = id_index_get(rs->vms, n->migration.target_vm_id);
        if (!source || !target)
                return drop(e, removed, "its VMs are gone");
        e->fd = safe_close(e->fd);
        if (migration_adopt(source, target, n->migration.id, NULL, &err) < 0)
                return drop(e, removed, err.message);
        char key[STORE_KEY_MAX];
        store_migration_key(n->migration.id, key, sizeof(key));
        used(s, e, key);
}

/* One row per kind, in the order they are restored. */
static const struct {
        StoreNameKind kind;
        void (*restore)(Restore *rs, Entry *e);
        const char *malformed;          /* why an entry of this kind whose name does not parse goes */
} phases[] = {
        { STORE_NAME_REGION,    restore_region,    "malformed region entry" },
        { STORE_NAME_VM,        restore_vm,        "malformed VM entry" },
        { STORE_NAME_PENDING,   restore_pending,   "malformed pending record" },
        { STORE_NAME_VIEW,      restore_view,      "malformed view entry" },
        { STORE_NAME_REVOKED,   restore_view,      "malformed view entry" },
        { STORE_NAME_MIGRATION, restore_migration, "malformed migration entry" },
};

/* Parses e's name; an entry whose name does not parse goes, saying of what kind it claimed to be. */
static void parse_entry(Entry *e, unsigned *removed) {
        StoreNameKind k;

        if (e->name && store_name_parse(e->name, &e->parsed) >= 0)
                return;
        k = store_name_kind_of(e->name);
        for (size_t p = 0; p < ELEMENTSOF(phases); p++)
                if (phases[p].kind == k)
                        return drop(e, removed, phases[p].malformed);
        drop(e, removed, "unknown entry");
}

/* --- two entries of one view, and pending views nobody claims --- */

/*
 * A view stored twice (a crash between storing its new state and removing the
 * old): keep the later state, which for a view is the one further along
 * pending -> active -> revoked.
 */
static int view_rank(const Entry *e) {
        return e->parsed.kind == STORE_NAME_REVOKED ? 2 : 1;
}

typedef struct PairBest {
        char key[48];           /* "REGION_ID/VM_ID" */
        Entry *entry;
} PairBest;

static void drop_superseded_views(Entry *entries, size_t n, unsigned *removed) {
        Hashmap *best = hashmap_new();
        PairBest *pb;

        if (!best)
                return;         /* then a second entry of a view fails to adopt and is dropped there */
        for (size_t i = 0; i < n; i++) {
                Entry *e = &entries[i];
                char key[48];

                if (e->used || (e->parsed.kind != STORE_NAME_VIEW && e->parsed.kind != STORE_NAME_REVOKED))
                        continue;
                (void) snprintf(key, sizeof(key), "%" PRIu64 "/%" PRIu64, e->parsed.view.region_id,
                                e->parsed.view.vm_id);
                pb = hashmap_get(best, key);
                if (!pb) {
                        pb = calloc(1, sizeof(*pb));
                        if (!pb)
                                continue;
                        memcpy(pb->key, key, sizeof(key));
                        pb->entry = e;
                        if (hashmap_put(best, pb->key, pb) < 0)
                                free(pb);
                        continue;
                }
                if (view_rank(pb->entry) >= view_rank(e))
                        drop(e, removed, "superseded by a later state of the same view");
                else {
                        drop(pb->entry, removed, "superseded by a later state of the same view");
                        pb->entry = e;
                }
        }
        while ((pb = hashmap_first(best))) {
                hashmap_remove(best, pb->key);
                free(pb);
        }
        hashmap_free(best);
}

/*
 * A pending view outside any prepared migration: the crash came between
 * making it and answering BeginMigration. Nobody was told of it; it goes.
 */
static void drop_unclaimed_pending(Manager *m) {
        Vm *vm;
        View *v;

        HASHMAP_FOREACH(vm, m->vms, i)
                HASHMAP_FOREACH(v, vm->views, j)
                        if (v->state == VIEW_STATE_PENDING && !v->migration) {
                                log_warning("Dropping pending view %" PRIu64 " of region '%s' for VM '%s': "
                                            "its migration was never begun", v->id, v->region->name, vm->name);
                                view_free(v);
                        }
}

int store_restore(Store *s, unsigned *ret_removed) {
        Restore rs = { .store = s };
        char **names = NULL;
        Entry *entries = NULL;
        unsigned restored = 0;
        int n;

        n = sd_listen_fds_with_names(true, &names);
        if (n <= 0) {
                if (ret_removed)
                        *ret_removed = 0;
                return n < 0 ? n : 0;
        }
        entries = calloc((size_t) n, sizeof(Entry));
        rs.regions = hashmap_new();
        rs.vms = hashmap_new();
        rs.pending = hashmap_new();
        if (!entries || !rs.regions || !rs.vms || !rs.pending) {
                free(entries);
                hashmap_free(rs.regions);
                hashmap_free(rs.vms);
                hashmap_free(rs.pending);
                for (int i = 0; i < n; i++) {
                        safe_close(SD_LISTEN_FDS_START + i);
                        free(names ? names[i] : NULL);
                }
                free(names);
                return -ENOMEM;
        }
        for (int i = 0; i < n; i++) {
                entries[i].fd = SD_LISTEN_FDS_START + i;
                (void) fcntl(entries[i].fd, F_SETFD, FD_CLOEXEC);
                entries[i].name = names[i];
                names[i] = NULL;
                parse_entry(&entries[i], &rs.removed);
        }
        free(names);

        drop_superseded_views(entries, (size_t) n, &rs.removed);
        for (size_t p = 0; p < ELEMENTSOF(phases); p++)
                for (int i = 0; i < n; i++) {
                        Entry *e = &entries[i];
                        if (!e->used && e->parsed.kind == phases[p].kind)
                                phases[p].restore(&rs, e);
                }
        for (int i = 0; i < n; i++) {
                if (!entries[i].used)
                        drop(&entries[i], &rs.removed, "unknown entry");
                else
                        restored++;
                free(entries[i].name);
        }
        free(entries);
        id_index_free(rs.regions);
        id_index_free(rs.vms);
        id_index_free(rs.pending);
        drop_unclaimed_pending(s->manager);
        manager_sync_grants(s->manager);

        if (ret_removed)
                *ret_removed = rs.removed;
        return (int) restored;
}
