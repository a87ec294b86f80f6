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
#include <sys/statfs.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "backend-kmod.h"
#include "fd-kind.h"
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
        bool ledger;            /* a record of the ledger: no fd came with it, the kernel has what it names */
        bool foreign;           /* not the store's: Restore.foreign */
} Entry;

/* --- checking the fds --- */

static int fd_link(int fd, char *buf, size_t n) {
        char path[64];
        ssize_t l;

        (void) snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        /* readlinkat: the seccomp filter allows the *at calls only (sandbox.c). */
        l = readlinkat(AT_FDCWD, path, buf, n - 1);
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

/* As a leader a client passes is told (vm.c): pidfs' magic, or the anon inode [pidfd] before Linux 6.9. */
static bool is_pidfd(int fd) {
        char link[256] = "";
        struct statfs sfs;
        struct stat st;

        if (fstat(fd, &st) < 0 || fstatfs(fd, &sfs) < 0)
                return false;
        (void) fd_link(fd, link, sizeof(link));
        return fd_kind_classify((uint64_t) sfs.f_type, st.st_mode, link) == FD_KIND_PIDFD;
}

/* --- an entry's fate --- */

static void used(Store *s, Entry *e, const char *key) {
        store_remember(s, key, e->name);
        e->used = true;
}

/* A record, as its source keeps them: a record memfd from the fd store; the name alone from the ledger. */
static bool entry_is_record(const Entry *e) {
        return e->ledger ? e->fd < 0 : is_record(e->fd);
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
        Hashmap *leaders_gone;  /* id -> IdEntry(Vm) whose leader exited while gmemd was down */
        const char *foreign;    /* the name of an fd passed in that is not the store's (a socket), or NULL */
        unsigned removed;
} Restore;

static void drop(Restore *rs, Entry *e, const char *why) {
        const char *name = e->name ?: "";

        log_warning("Removing %s '%s': %s", e->ledger ? "ledger record" : "fd store entry", name, why);
        if (e->ledger)
                ledger_remove(rs->store->ledger, name);
        else
                store_remove_name(name);
        e->fd = safe_close(e->fd);
        e->used = true;
        rs->removed++;
}

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

        if (!h)
                return;
        while ((e = hashmap_first(h))) {
                hashmap_remove(h, e->key);
                free(e);
        }
        hashmap_free(h);
}

/* The kernel view of a kmod region that gmemd labelled with view id tag: a new file of it, or -errno. */
typedef struct KeptViewFind {
        uint64_t tag;
        uint64_t id;
        unsigned n;             /* views labelled with tag */
} KeptViewFind;

static int kept_view_match(uint64_t id, bool pending, bool revoked, const char *label, void *userdata) {
        KeptViewFind *f = userdata;
        uint64_t tag;

        (void) pending, (void) revoked;
        if (backend_kmod_view_tag(label, &tag) < 0 || tag != f->tag)
                return 0;
        f->id = id;
        f->n++;
        return 0;
}

/*
 * Only one kernel view may carry a view's label: two are a leftover of a
 * crash and a later view that got the same id, and which is which cannot be
 * told. Then neither is restored (and pruning revokes both).
 */
static int kmod_open_kept_view(Region *reg, uint64_t tag) {
        KeptViewFind f = { .tag = tag };
        int r;

        if (reg->backend != BACKEND_KMOD)
                return -EOPNOTSUPP;
        r = backend_kmod_for_each_kept_view(reg->br.fd, false, kept_view_match, &f);
        if (r < 0)
                return r;
        if (f.n == 0)
                return -ENOENT;
        if (f.n > 1)
                return -ENOTUNIQ;
        return backend_kmod_open_view_id(reg->br.fd, f.id);
}

/* --- one entry of each kind; its name parsed already --- */

static void restore_region(Restore *rs, Entry *e) {
        const StoreName *n = &e->parsed;
        Store *s = rs->store;
        GmemError err = GMEM_ERROR_INIT;

        Region *reg;
        char key[STORE_KEY_MAX];

        if (e->ledger) {
                /* The kernel's region of that name, if it is one gmemd made. */
                if (n->region.backend != BACKEND_KMOD)
                        return drop(rs, e, "only kmod regions outlive gmemd in the kernel");
                e->fd = backend_kmod_open_region(n->region.name);
                if (e->fd < 0) {
                        (void) snprintf(err.message, sizeof(err.message), "its kernel region is gone: %s",
                                        strerror(-e->fd));
                        return drop(rs, e, err.message);
                }
        }
        if (region_adopt(s->manager, &(RegionParams) {
                                 .name = n->region.name,
                                 .backend = n->region.backend,
                                 .owner = n->region.owner,
                         }, &ACTOR_UNLIMITED(n->region.creator), n->region.id, n->region.page_size, TAKE_FD(e->fd),
                         &reg, &err) < 0)
                return drop(rs, e, err.message);
        store_region_key(reg->id, key, sizeof(key));
        id_index_put(rs->regions, n->region.id, reg);
        used(s, e, key);
}

static void restore_vm(Restore *rs, Entry *e) {
        const StoreName *n = &e->parsed;
        Store *s = rs->store;
        GmemError err = GMEM_ERROR_INIT;

        if (id_index_get(rs->vms, n->vm.id))
                return drop(rs, e, "malformed VM entry");
        /* From the ledger a leader comes back by pid and start time, the kernel keeping no pidfd. */
        bool by_pid = e->ledger && n->vm.leader && n->vm.leader_pid != 0;
        if (e->ledger && n->vm.leader && !by_pid)
                log_warning("VM '%s' had a leader process whose pid was not recorded: gmemd no longer watches "
                            "it (register the VM again to watch a leader)", n->vm.name);
        else if (!e->ledger && (n->vm.leader ? !is_pidfd(e->fd) : !entry_is_record(e)))
                return drop(rs, e, n->vm.leader ? "not a pidfd" : "not a record");

        UsageCharge charge = {};        /* vm_register() takes it, whatever happens */
        VmParams p = {
                .name = n->vm.name,
                .has_uid = n->vm.has_uid,
                .uid = (uint32_t) n->vm.uid,
                .id = n->vm.id,
                .has_leader_pidfd = n->vm.leader && !e->ledger,
                .leader_pidfd = n->vm.leader && !e->ledger ? TAKE_FD(e->fd) : -EBADF,
                .has_leader_pid = by_pid,
                .leader_pid = n->vm.leader_pid,
                .leader_start = n->vm.leader_start,
        };
        Vm *vm;
        char key[STORE_KEY_MAX];
        int r;

        r = vm_reserve(s->manager, &ACTOR_UNLIMITED(n->vm.creator), &charge, &err);
        if (r >= 0)
                r = vm_register(s->manager, &p, &charge, &vm, &err);
        if (r < 0 && by_pid) {
                /* Not that process any more: it exited while gmemd was down. */
                log_info("The leader %" PRIu32 " of VM '%s' exited while gmemd was down: %s", n->vm.leader_pid,
                         n->vm.name, err.message);
                err = (GmemError) GMEM_ERROR_INIT;
                p.has_leader_pid = false;
                r = vm_reserve(s->manager, &ACTOR_UNLIMITED(n->vm.creator), &charge, &err);
                if (r >= 0)
                        r = vm_register(s->manager, &p, &charge, &vm, &err);
                if (r >= 0)
                        id_index_put(rs->leaders_gone, n->vm.id, vm);
        }
        if (r < 0)
                return drop(rs, e, err.message);
        e->fd = safe_close(e->fd);      /* a record's job is done: the entry stays in the store */
        store_vm_key(vm->id, key, sizeof(key));
        id_index_put(rs->vms, n->vm.id, vm);
        used(s, e, key);
}

static void restore_pending(Restore *rs, Entry *e) {
        const StoreName *n = &e->parsed;

        if (id_index_get(rs->pending, n->pending.view_id))
                return drop(rs, e, "malformed pending record");
        if (!entry_is_record(e))
                return drop(rs, e, "not a record");
        e->fd = safe_close(e->fd);
        id_index_put(rs->pending, n->pending.view_id, e);   /* used when its view is restored */
}

static void restore_view(Restore *rs, Entry *e) {
        const StoreName *n = &e->parsed;
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
                return drop(rs, e, "its region or VM is gone");
        pending = revoked ? NULL : id_index_get(rs->pending, n->view.id);
        if (!revoked)
                state = pending ? VIEW_STATE_PENDING : VIEW_STATE_ACTIVE;

        /* Revoked views, and views that are the master file itself, are stored as records. */
        record = revoked || reg->ops->views_share_master;
        if (record && !entry_is_record(e))
                return drop(rs, e, "not a record");
        if (e->ledger && !record) {
                /* The kernel's view gmemd labelled with this view's id. */
                e->fd = kmod_open_kept_view(reg, n->view.id);
                if (e->fd < 0)
                        return drop(rs, e, e->fd == -ENOTUNIQ ? "more than one kernel view carries its label" :
                                           "the kernel keeps no view of that id");
        }
        if (record)
                e->fd = safe_close(e->fd);
        if (revoked)
                fd = -EBADF;
        else if (record) {
                fd = fcntl(reg->br.fd, F_DUPFD_CLOEXEC, 3);
                if (fd < 0)
                        return drop(rs, e, "cannot duplicate the region's file");
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
                return drop(rs, e, err.message);
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
        GmemError err = GMEM_ERROR_INIT;
        Vm *source, *target;

        if (!entry_is_record(e))
                return drop(rs, e, "not a record");
        source = id_index_get(rs->vms, n->migration.source_vm_id);
        target = id_index_get(rs->vms, n->migration.target_vm_id);
        if (!source || !target)
                return drop(rs, e, "its VMs are gone");
        e->fd = safe_close(e->fd);
        if (migration_adopt(source, target, n->migration.id, NULL, &err) < 0)
                return drop(rs, e, err.message);
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
static void parse_entry(Restore *rs, Entry *e) {
        StoreNameKind k;

        if (e->name && store_name_parse(e->name, &e->parsed) >= 0)
                return;
        k = store_name_kind_of(e->name);
        for (size_t p = 0; p < ELEMENTSOF(phases); p++)
                if (phases[p].kind == k)
                        return drop(rs, e, phases[p].malformed);
        drop(rs, e, "unknown entry");
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

static void drop_superseded_views(Restore *rs, Entry *entries, size_t n) {
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
                        drop(rs, e, "superseded by a later state of the same view");
                else {
                        drop(rs, pb->entry, "superseded by a later state of the same view");
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

/* Whether the fd passed in under name belongs to someone else (ledger records never do). */
static bool is_foreign(const Restore *rs, const char *name, bool ledger) {
        return !ledger && rs->foreign && name && strcmp(name, rs->foreign) == 0;
}

/* How many of the fds passed in are the store's. */
static int count_own_names(const Restore *rs, char **names, int n) {
        int k = 0;

        for (int i = 0; i < n; i++)
                if (!is_foreign(rs, names[i], false))
                        k++;
        return k;
}

/*
 * Restores n entries named names (taken over and freed): the fds
 * SD_LISTEN_FDS_START... from the service manager, or, with ledger, records
 * of the ledger that carry no fd. The number restored, or -ENOMEM.
 */
static int restore_pass(Restore *rs, char **names, int n, bool ledger) {
        Entry *entries = calloc((size_t) n, sizeof(Entry));
        unsigned restored = 0;

        if (!entries) {
                for (int i = 0; i < n; i++) {
                        if (!is_foreign(rs, names[i], ledger))
                                safe_close(SD_LISTEN_FDS_START + i);
                        free(names[i]);
                }
                free(names);
                return -ENOMEM;
        }
        for (int i = 0; i < n; i++) {
                if (is_foreign(rs, names[i], ledger)) {
                        /* Someone else's fd: left open and alone. */
                        entries[i] = (Entry) { .fd = -EBADF, .used = true, .foreign = true };
                        free(names[i]);
                        names[i] = NULL;
                        continue;
                }
                entries[i].ledger = ledger;
                entries[i].fd = ledger ? -EBADF : SD_LISTEN_FDS_START + i;
                if (!ledger)
                        (void) fcntl(entries[i].fd, F_SETFD, FD_CLOEXEC);
                entries[i].name = names[i];
                names[i] = NULL;
                parse_entry(rs, &entries[i]);
        }
        free(names);

        drop_superseded_views(rs, entries, (size_t) n);
        for (size_t p = 0; p < ELEMENTSOF(phases); p++)
                for (int i = 0; i < n; i++) {
                        Entry *e = &entries[i];
                        if (!e->used && e->parsed.kind == phases[p].kind)
                                phases[p].restore(rs, e);
                }
        for (int i = 0; i < n; i++) {
                if (!entries[i].used)
                        drop(rs, &entries[i], "unknown entry");
                else if (!entries[i].foreign)
                        restored++;
                free(entries[i].name);
        }
        free(entries);
        return (int) restored;
}

/*
 * The ledger's records the fd store did not pass (an entry it could not
 * store: the store was degraded), so that what the kernel kept is not
 * revoked as unknown: a copy of their names, *ret_n of them.
 */
static int ledger_names_not_stored(Store *s, char ***ret, int *ret_n) {
        _cleanup_(hashmap_freep) Hashmap *stored = hashmap_new();
        char **names = NULL;
        size_t n = 0, k = 0;
        StoreEntry *se;
        int r;

        if (!stored)
                return -ENOMEM;
        HASHMAP_FOREACH(se, s->entries, i)
                (void) hashmap_put(stored, se->name, se);
        r = ledger_names(s->ledger, &names, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                if (hashmap_get(stored, names[i]))
                        free(names[i]);
                else
                        names[k++] = names[i];
        }
        *ret = names;
        *ret_n = (int) k;
        return 0;
}

int store_restore(Store *s, const char *foreign, unsigned *ret_removed) {
        Restore rs = { .store = s, .foreign = foreign };
        char **names = NULL;
        int n, restored = 0, r;

        rs.regions = hashmap_new();
        rs.vms = hashmap_new();
        rs.pending = hashmap_new();
        rs.leaders_gone = hashmap_new();
        if (!rs.regions || !rs.vms || !rs.pending || !rs.leaders_gone) {
                r = -ENOMEM;
                goto out;
        }

        n = s->enabled ? sd_listen_fds_with_names(true, &names) : 0;
        if (n > 0 && count_own_names(&rs, names, n) == 0) {
                /* Only someone else's: as if nothing had been passed. */
                for (int i = 0; i < n; i++)
                        free(names[i]);
                free(names);
                names = NULL;
                n = 0;
        }
        if (n > 0) {
                r = restore_pass(&rs, names, n, false);
                if (r < 0)
                        goto out;
                restored = r;
                /* What the ledger kept and the fd store did not: from the kernel. */
                if (s->ledger) {
                        r = ledger_names_not_stored(s, &names, &n);
                        if (r >= 0 && n > 0)
                                r = restore_pass(&rs, names, n, true);
                        else if (r >= 0)
                                free(names);
                        if (r > 0)
                                log_info("Restored %d entries from gmem.ko that the fd store did not have", r);
                        if (r > 0)
                                restored += r;
                }
        } else if (n == 0 && s->ledger && ledger_size(s->ledger) > 0) {
                /* Nothing from a service manager: what the kernel kept. */
                size_t k;

                free(names);
                r = ledger_names(s->ledger, &names, &k);
                if (r < 0)
                        goto out;
                s->from_ledger = true;
                r = restore_pass(&rs, names, (int) k, true);
                if (r < 0)
                        goto out;
                restored = r;
        } else
                free(names);
        r = 0;
out:
        id_index_free(rs.regions);
        id_index_free(rs.vms);
        id_index_free(rs.pending);
        if (r >= 0)
                drop_unclaimed_pending(s->manager);
        /* As for a leader that exits now: its VM's views go (a pidfd restored from the fd store does this by itself). */
        IdEntry *gone;
        while (rs.leaders_gone && (gone = hashmap_first(rs.leaders_gone))) {
                if (r >= 0)
                        vm_leader_exited(gone->object);
                hashmap_remove(rs.leaders_gone, gone->key);
                free(gone);
        }
        hashmap_free(rs.leaders_gone);
        if (r < 0)
                return r;
        manager_sync_grants(s->manager);

        if (ret_removed)
                *ret_removed = rs.removed;
        return restored;
}
