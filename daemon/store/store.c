/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * store.c — keeping the model in the service manager's fd store, and
 * rebuilding it from there on start (the name scheme is in store.h).
 *
 * Recording rides on the model's notifications: the store's hooks run before
 * the bus's, inside the method that made the change, so an entry is handed to
 * the service manager before the caller gets its answer. The store remembers
 * the name it last stored for each object, to replace or remove it.
 *
 * Restoring trusts nothing it is given: a region fd must be this daemon's
 * memfd of that name with the region seals; a view must be a file on its
 * region's inode with its access mode; a leader must be a pidfd; records must
 * be record memfds. Anything else is removed from the store and closed.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "log.h"
#include "migration.h"
#include "parse.h"
#include "region.h"
#include "store.h"
#include "view.h"
#include "vm.h"

#define RECORD_LABEL "gmem-record"
#define REGION_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)
#define FIELDS_MAX 12

typedef struct StoreEntry {
        char *key;      /* "region/ID", "vm/ID", "view/VM_ID/REGION_ID", "migration/ID" */
        char *name;     /* the FDNAME stored now */
        bool seen;      /* touched by the last sync */
} StoreEntry;

struct Store {
        Manager *manager;
        bool enabled;
        Hashmap *entries;       /* key -> StoreEntry */
};

static void entry_free(StoreEntry *e) {
        if (!e)
                return;
        free(e->key);
        free(e->name);
        free(e);
}

int store_new(Manager *m, Store **ret) {
        Store *s = calloc(1, sizeof(*s));

        if (!s)
                return -ENOMEM;
        s->manager = m;
        s->enabled = !isempty(getenv("NOTIFY_SOCKET"));
        s->entries = hashmap_new();
        if (!s->entries) {
                free(s);
                return -ENOMEM;
        }
        *ret = s;
        return 0;
}

Store *store_free(Store *s) {
        StoreEntry *e;

        if (!s)
                return NULL;
        if (s->manager && s->manager->store_userdata == s) {
                s->manager->store_hooks = NULL;
                s->manager->store_userdata = NULL;
        }
        while ((e = hashmap_first(s->entries))) {
                hashmap_remove(s->entries, e->key);
                entry_free(e);
        }
        hashmap_free(s->entries);
        free(s);
        return NULL;
}

bool store_enabled(const Store *s) {
        return s && s->enabled;
}

/* --- talking to the service manager --- */

static int record_memfd(void) {
        int fd = memfd_create(RECORD_LABEL, MFD_CLOEXEC | MFD_ALLOW_SEALING);

        if (fd < 0)
                return negative_errno();
        if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
                int r = negative_errno();
                safe_close(fd);
                return r;
        }
        return fd;
}

static int send_fd(const char *name, int fd) {
        char msg[320];
        int r;

        (void) snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", name);
        r = sd_pid_notify_with_fds(0, false, msg, &fd, 1);
        if (r < 0)
                return log_warning_errno(r, "Cannot put %s in the fd store", name);
        return 0;
}

static void remove_name(const char *name) {
        int r = sd_notifyf(false, "FDSTOREREMOVE=1\nFDNAME=%s", name);
        if (r < 0)
                log_warning_errno(r, "Cannot remove %s from the fd store", name);
}

/* Notes that key's entry in the store is called name (nothing is sent). */
static void remember(Store *s, const char *key, const char *name) {
        StoreEntry *e = calloc(1, sizeof(*e));

        if (!e || !(e->key = strdup(key)) || !(e->name = strdup(name)) || hashmap_put(s->entries, e->key, e) < 0) {
                entry_free(e);
                log_warning("Out of memory tracking %s", name);
                return;
        }
        e->seen = true;
}

/*
 * Makes key's entry name, holding fd (or a new record memfd if fd < 0). The
 * new entry goes in before the old one goes out. name NULL removes key.
 */
static void store_set(Store *s, const char *key, const char *name, int fd) {
        StoreEntry *e = hashmap_get(s->entries, key);
        _cleanup_close_ int record = -EBADF;

        if (!s->enabled)
                return;
        if (e)
                e->seen = true;
        if (e && name && streq(e->name, name))
                return;
        if (name) {
                if (fd < 0) {
                        record = record_memfd();
                        if (record < 0) {
                                log_warning_errno(record, "Cannot make a record for %s", name);
                                return;
                        }
                        fd = record;
                }
                if (send_fd(name, fd) < 0)
                        return;
        }
        if (e) {
                remove_name(e->name);
                if (!name) {
                        hashmap_remove(s->entries, e->key);
                        entry_free(e);
                        return;
                }
                free(e->name);
                e->name = strdup(name);
                if (!e->name) {
                        hashmap_remove(s->entries, e->key);
                        entry_free(e);
                }
                return;
        }
        if (!name)
                return;
        remember(s, key, name);
}

/* --- names --- */

static void region_key(const Region *r, char *buf, size_t n) {
        (void) snprintf(buf, n, "region/%" PRIu64, r->id);
}

static void region_name(const Region *r, char *buf, size_t n) {
        (void) snprintf(buf, n, "region/%" PRIu64 "/%s/%" PRIu64 "/%u/%d/%s/%s", r->id,
                        backend_type_to_string(r->backend), r->br.page_size, (unsigned) r->creator, r->persistent,
                        r->name, r->owner ?: "");
}

static void vm_key(const Vm *vm, char *buf, size_t n) {
        (void) snprintf(buf, n, "vm/%" PRIu64, vm->id);
}

static void vm_name(const Vm *vm, char *buf, size_t n) {
        char uid[16] = "-";

        if (vm->has_uid)
                (void) snprintf(uid, sizeof(uid), "%u", (unsigned) vm->uid);
        (void) snprintf(buf, n, "vm/%" PRIu64 "/%s/%u/%c/%s", vm->id, uid, (unsigned) vm->creator,
                        vm->pidfd >= 0 ? 'L' : 'N', vm->name);
}

static void view_key(const Vm *vm, const Region *r, char *buf, size_t n) {
        (void) snprintf(buf, n, "view/%" PRIu64 "/%" PRIu64, vm->id, r->id);
}

static void pending_key(const Vm *vm, const Region *r, char *buf, size_t n) {
        (void) snprintf(buf, n, "pending/%" PRIu64 "/%" PRIu64, vm->id, r->id);
}

static void view_name(const View *v, char *buf, size_t n) {
        (void) snprintf(buf, n, "%s/%" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%s/%" PRIu64 "/%" PRIu64 "/%d/%u",
                        v->state == VIEW_STATE_REVOKED ? "revoked" : "view", v->id, v->region->id, v->vm->id,
                        view_access_to_string(v->access), v->offset, v->length, v->may_allocate,
                        (unsigned) v->creator);
}

/* --- recording: the model's hooks --- */

static Store *store_of(Manager *m) {
        return m->store_userdata;
}

static void hook_region_new(Manager *m, Region *r) {
        char key[64], name[256];

        region_key(r, key, sizeof(key));
        region_name(r, name, sizeof(name));
        store_set(store_of(m), key, name, r->br.fd);
}

static void hook_region_removed(Manager *m, Region *r) {
        char key[64];

        region_key(r, key, sizeof(key));
        store_set(store_of(m), key, NULL, -EBADF);
}

static void hook_vm_new(Manager *m, Vm *vm) {
        char key[64], name[256];

        vm_key(vm, key, sizeof(key));
        vm_name(vm, name, sizeof(name));
        store_set(store_of(m), key, name, vm->pidfd);
}

static void hook_vm_removed(Manager *m, Vm *vm) {
        char key[64];

        vm_key(vm, key, sizeof(key));
        store_set(store_of(m), key, NULL, -EBADF);
}

static void hook_views_changed(Manager *m, Vm *vm, Region *r) {
        char key[80], pkey[80], name[256], pname[64];
        Store *s = store_of(m);
        View *v;

        if (!vm || !r)
                return;
        view_key(vm, r, key, sizeof(key));
        pending_key(vm, r, pkey, sizeof(pkey));
        v = view_lookup(vm, r);
        if (!v) {
                store_set(s, key, NULL, -EBADF);
                store_set(s, pkey, NULL, -EBADF);
                return;
        }
        /* The pending record goes in before the view, and out after it is active. */
        if (v->state == VIEW_STATE_PENDING) {
                (void) snprintf(pname, sizeof(pname), "pending/%" PRIu64, v->id);
                store_set(s, pkey, pname, -EBADF);
        }
        view_name(v, name, sizeof(name));
        store_set(s, key, name, v->state == VIEW_STATE_REVOKED || r->ops->views_share_master ? -EBADF : v->fd);
        if (v->state != VIEW_STATE_PENDING)
                store_set(s, pkey, NULL, -EBADF);
}

static void migration_entry(Manager *m, Migration *mig, bool keep) {
        char key[64], name[128];

        (void) snprintf(key, sizeof(key), "migration/%" PRIu64, mig->id);
        if (keep && mig->state == MIGRATION_PREPARED && mig->source && mig->target) {
                (void) snprintf(name, sizeof(name), "migration/%" PRIu64 "/%" PRIu64 "/%" PRIu64, mig->id,
                                mig->source->id, mig->target->id);
                store_set(store_of(m), key, name, -EBADF);
        } else
                store_set(store_of(m), key, NULL, -EBADF);
}

static void hook_migration_new(Manager *m, Migration *mig) {
        migration_entry(m, mig, true);
}

static void hook_migration_changed(Manager *m, Migration *mig) {
        migration_entry(m, mig, true);
}

static void hook_migration_removed(Manager *m, Migration *mig) {
        migration_entry(m, mig, false);
}

static const ManagerHooks store_hooks = {
        .region_new = hook_region_new,
        .region_removed = hook_region_removed,
        .vm_new = hook_vm_new,
        .vm_changed = hook_vm_new,        /* the leader went: the entry becomes a record */
        .vm_removed = hook_vm_removed,
        .views_changed = hook_views_changed,
        .migration_new = hook_migration_new,
        .migration_changed = hook_migration_changed,
        .migration_removed = hook_migration_removed,
};

static void store_sync(Store *s);

void store_attach(Store *s) {
        if (!s->enabled)
                return;
        s->manager->store_hooks = &store_hooks;
        s->manager->store_userdata = s;
        store_sync(s);
}

/* --- restoring --- */

typedef struct Entry {
        char *name;
        char *field[FIELDS_MAX];
        size_t n_fields;
        int fd;
        bool used;
} Entry;

static int split(Entry *e) {
        char *p = e->name;

        e->n_fields = 0;
        for (;;) {
                if (e->n_fields >= FIELDS_MAX)
                        return -EINVAL;
                e->field[e->n_fields++] = p;
                p = strchr(p, '/');
                if (!p)
                        return 0;
                *p++ = 0;
        }
}

static int parse_u64(const char *s, uint64_t *ret) {
        uint64_t v;

        if (!s || *s == '-' || gmem_parse_size(s, &v) < 0)
                return -EINVAL;
        for (const char *p = s; *p; p++)
                if (*p < '0' || *p > '9')
                        return -EINVAL;   /* plain decimal only, no suffixes */
        *ret = v;
        return 0;
}

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

        return fd_link(fd, link, sizeof(link)) >= 0 && strncmp(link, "/memfd:" RECORD_LABEL, 7 + strlen(RECORD_LABEL)) == 0 &&
               fstat(fd, &st) >= 0 && S_ISREG(st.st_mode) && st.st_size == 0;
}

static bool is_pidfd(int fd) {
        char link[256];
        return fd_link(fd, link, sizeof(link)) >= 0 && streq(link, "anon_inode:[pidfd]");
}

/* The region's master fd is this daemon's inode of that name, locked down as it left it. */
static bool region_fd_ok(int fd, BackendType t, const char *name) {
        char link[256], want[128];
        struct stat st;

        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid())
                return false;
        if (fd_link(fd, link, sizeof(link)) < 0)
                return false;
        if (t == BACKEND_SECRET)
                return strncmp(link, "/secretmem", 10) == 0;
        (void) snprintf(want, sizeof(want), "/memfd:gmem:%s (deleted)", name);
        if (!streq(link, want))
                return false;
        return (fcntl(fd, F_GET_SEALS) & REGION_SEALS) == REGION_SEALS && (fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR;
}

/* The entry's full name again: it was split in place. */
static void entry_name(const Entry *e, char *buf, size_t n) {
        size_t len = 0;

        buf[0] = 0;
        for (size_t i = 0; i < e->n_fields && len < n; i++)
                len += (size_t) snprintf(buf + len, n - len, "%s%s", i ? "/" : "", e->field[i]);
}

static void used(Store *s, Entry *e, const char *key) {
        char name[256];

        entry_name(e, name, sizeof(name));
        remember(s, key, name);
        e->used = true;
}

static void drop(Entry *e, unsigned *removed, const char *why) {
        char name[256];

        entry_name(e, name, sizeof(name));
        log_warning("Removing fd store entry '%s': %s", name, why);
        remove_name(name);
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

static void restore_region(Restore *rs, Entry *e) {
        Store *s = rs->store;
        unsigned *removed = &rs->removed;
        GmemError err = GMEM_ERROR_INIT;
        uint64_t id, page_size, creator, persistent;
        BackendType t;

        if (e->n_fields != 8 || parse_u64(e->field[1], &id) < 0 || parse_u64(e->field[3], &page_size) < 0 ||
            parse_u64(e->field[4], &creator) < 0 || parse_u64(e->field[5], &persistent) < 0 ||
            (t = backend_type_from_string(e->field[2])) < 0 || !gmem_name_is_valid(e->field[6]) ||
            page_size == 0 || (page_size & (page_size - 1)) || creator > UINT32_MAX)
                return drop(e, removed, "malformed region entry");
        if (!region_fd_ok(e->fd, t, e->field[6]))
                return drop(e, removed, "not this region's inode");

        Region *r;
        char key[64];

        if (region_adopt(s->manager, &(RegionParams) {
                                 .name = e->field[6],
                                 .backend = t,
                                 .persistent = persistent != 0,
                                 .owner = e->field[7],
                         }, &ACTOR_UNLIMITED((uid_t) creator), id, page_size, TAKE_FD(e->fd), &r, &err) < 0)
                return drop(e, removed, err.message);
        region_key(r, key, sizeof(key));
        id_index_put(rs->regions, id, r);
        used(s, e, key);
}

static void restore_vm(Restore *rs, Entry *e) {
        Store *s = rs->store;
        unsigned *removed = &rs->removed;
        GmemError err = GMEM_ERROR_INIT;
        uint64_t id, uid = 0, creator;
        bool leader;

        if (e->n_fields != 6 || parse_u64(e->field[1], &id) < 0 || id == 0 ||
            (!streq(e->field[2], "-") && (parse_u64(e->field[2], &uid) < 0 || uid >= UINT32_MAX)) ||
            parse_u64(e->field[3], &creator) < 0 || creator > UINT32_MAX ||
            (!streq(e->field[4], "L") && !streq(e->field[4], "N")) || id_index_get(rs->vms, id))
                return drop(e, removed, "malformed VM entry");
        leader = streq(e->field[4], "L");
        if (leader ? !is_pidfd(e->fd) : !is_record(e->fd))
                return drop(e, removed, leader ? "not a pidfd" : "not a record");

        Vm *vm;
        char key[64];

        if (vm_register(s->manager, &(VmParams) {
                                .name = e->field[5],
                                .has_uid = !streq(e->field[2], "-"),
                                .uid = (uint32_t) uid,
                                .id = id,
                                .has_leader_pidfd = leader,
                                .leader_pidfd = leader ? TAKE_FD(e->fd) : -EBADF,
                        }, &ACTOR_UNLIMITED((uid_t) creator), &vm, &err) < 0)
                return drop(e, removed, err.message);
        e->fd = safe_close(e->fd);      /* a record's job is done: the entry stays in the store */
        vm_key(vm, key, sizeof(key));
        id_index_put(rs->vms, id, vm);
        used(s, e, key);
}

static void restore_pending(Restore *rs, Entry *e) {
        uint64_t id;

        if (e->n_fields != 2 || parse_u64(e->field[1], &id) < 0 || id_index_get(rs->pending, id))
                return drop(e, &rs->removed, "malformed pending record");
        if (!is_record(e->fd))
                return drop(e, &rs->removed, "not a record");
        e->fd = safe_close(e->fd);
        id_index_put(rs->pending, id, e);   /* used when its view is restored */
}

static void restore_view(Restore *rs, Entry *e) {
        unsigned *removed = &rs->removed;
        GmemError err = GMEM_ERROR_INIT;
        bool revoked = streq(e->field[0], "revoked"), record;
        uint64_t id, rid, vid, offset, length, alloc, creator;
        ViewState state = VIEW_STATE_REVOKED;
        ViewAccess access;
        Entry *pending;
        Region *r;
        Vm *vm;
        int fd;

        if (e->n_fields != 9 || parse_u64(e->field[1], &id) < 0 ||
            parse_u64(e->field[2], &rid) < 0 || parse_u64(e->field[3], &vid) < 0 ||
            (access = view_access_from_string(e->field[4])) < 0 || parse_u64(e->field[5], &offset) < 0 ||
            parse_u64(e->field[6], &length) < 0 || parse_u64(e->field[7], &alloc) < 0 ||
            parse_u64(e->field[8], &creator) < 0 || creator > UINT32_MAX)
                return drop(e, removed, "malformed view entry");
        r = id_index_get(rs->regions, rid);
        vm = id_index_get(rs->vms, vid);
        if (!r || !vm)
                return drop(e, removed, "its region or VM is gone");
        pending = revoked ? NULL : id_index_get(rs->pending, id);
        if (!revoked)
                state = pending ? VIEW_STATE_PENDING : VIEW_STATE_ACTIVE;

        /* Revoked views, and views that are the master file itself, are stored as records. */
        record = revoked || r->ops->views_share_master;
        if (record && !is_record(e->fd))
                return drop(e, removed, "not a record");
        if (record)
                e->fd = safe_close(e->fd);
        if (revoked)
                fd = -EBADF;
        else if (record) {
                fd = fcntl(r->br.fd, F_DUPFD_CLOEXEC, 3);
                if (fd < 0)
                        return drop(e, removed, "cannot duplicate the region's file");
        } else
                fd = TAKE_FD(e->fd);

        if (view_adopt(vm, r, &(ViewAdopt) {
                               .id = id,
                               .access = access,
                               .offset = offset,
                               .length = length,
                               .may_allocate = alloc != 0,
                               .state = state,
                               .fd = fd,
                       }, &ACTOR_UNLIMITED((uid_t) creator), NULL, &err) < 0)
                return drop(e, removed, err.message);
        char key[80];
        view_key(vm, r, key, sizeof(key));
        used(rs->store, e, key);
        if (pending) {
                pending_key(vm, r, key, sizeof(key));
                used(rs->store, pending, key);
        }
}

static void restore_migration(Restore *rs, Entry *e) {
        Store *s = rs->store;
        unsigned *removed = &rs->removed;
        GmemError err = GMEM_ERROR_INIT;
        uint64_t id, sid, tid;
        Vm *source, *target;

        if (e->n_fields != 4 || parse_u64(e->field[1], &id) < 0 || parse_u64(e->field[2], &sid) < 0 ||
            parse_u64(e->field[3], &tid) < 0)
                return drop(e, removed, "malformed migration entry");
        if (!is_record(e->fd))
                return drop(e, removed, "not a record");
        source = id_index_get(rs->vms, sid);
        target = id_index_get(rs->vms, tid);
        if (!source || !target)
                return drop(e, removed, "its VMs are gone");
        e->fd = safe_close(e->fd);
        if (migration_adopt(source, target, id, NULL, &err) < 0)
                return drop(e, removed, err.message);
        char key[64];
        (void) snprintf(key, sizeof(key), "migration/%" PRIu64, id);
        used(s, e, key);
}

/*
 * A view stored twice (a crash between storing its new state and removing the
 * old): keep the later state, which for a view is the one further along
 * pending -> active -> revoked.
 */
static int view_rank(const Entry *e) {
        return streq(e->field[0], "revoked") ? 2 : 1;
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

                if (e->used || (!streq(e->field[0], "view") && !streq(e->field[0], "revoked")) || e->n_fields < 9)
                        continue;
                (void) snprintf(key, sizeof(key), "%.20s/%.20s", e->field[2], e->field[3]);
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
        static const struct {
                const char *kind;
                void (*restore)(Restore *rs, Entry *e);
        } phases[] = {
                { "region",    restore_region },
                { "vm",        restore_vm },
                { "pending",   restore_pending },
                { "view",      restore_view },
                { "revoked",   restore_view },
                { "migration", restore_migration },
        };
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
                if (!entries[i].name || split(&entries[i]) < 0)
                        drop(&entries[i], &rs.removed, "unknown entry");
        }
        free(names);

        drop_superseded_views(entries, (size_t) n, &rs.removed);
        for (size_t p = 0; p < ELEMENTSOF(phases); p++)
                for (int i = 0; i < n; i++) {
                        Entry *e = &entries[i];
                        if (!e->used && streq(e->field[0], phases[p].kind))
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

/*
 * Brings the store in line with the model: every object's entry under the
 * name it should have (a commit finished while restoring renames views), and
 * entries of objects that are gone removed.
 */
static void store_sync(Store *s) {
        Manager *m = s->manager;
        StoreEntry *e;
        Migration *mig;
        Region *r;
        View *v;
        Vm *vm;

        HASHMAP_FOREACH(e, s->entries, i)
                e->seen = false;
        HASHMAP_FOREACH(r, m->regions, i)
                hook_region_new(m, r);
        HASHMAP_FOREACH(vm, m->vms, i) {
                hook_vm_new(m, vm);
                HASHMAP_FOREACH(v, vm->views, j)
                        hook_views_changed(m, vm, v->region);
        }
        HASHMAP_FOREACH(mig, m->migrations, i)
                if (mig->state == MIGRATION_PREPARED)
                        hook_migration_new(m, mig);
        HASHMAP_FOREACH(e, s->entries, i)
                if (!e->seen) {
                        remove_name(e->name);
                        hashmap_remove(s->entries, e->key);
                        entry_free(e);
                }
}
