/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * store.c — keeping the model in the service manager's fd store as it
 * changes (the names are written by store-name.c; restoring is restore.c).
 *
 * Recording rides on the model's notifications: the store's hooks run before
 * the bus's, inside the method that made the change, so an entry is handed to
 * the service manager before the caller gets its answer. The store remembers
 * the name it last stored for each object, to replace or remove it.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <systemd/sd-daemon.h>

#include "backend-kmod.h"
#include "log.h"
#include "migration.h"
#include "region.h"
#include "store-internal.h"
#include "store-name.h"
#include "store.h"
#include "view.h"
#include "vm.h"


static void entry_free(StoreEntry *e) {
        if (!e)
                return;
        free(e->key);
        free(e->name);
        free(e);
}

int store_new(Manager *m, unsigned max, Store **ret) {
        Store *s = calloc(1, sizeof(*s));

        if (!s)
                return -ENOMEM;
        s->manager = m;
        s->enabled = !isempty(getenv("NOTIFY_SOCKET"));
        s->max = max;
        s->entries = hashmap_new();
        if (!s->entries) {
                free(s);
                return -ENOMEM;
        }
        if (backend_kmod_keeps_views()) {
                int r = ledger_open(&s->ledger);
                if (r < 0)
                        log_warning_errno(r, "gmem.ko cannot keep gmemd's records (the ledger region '%s'): %s",
                                          BACKEND_KMOD_LEDGER, r == -EPERM ? "another user made a region of "
                                          "that name" : "the kernel refused");
        }
        backend_kmod_set_keep(s->ledger != NULL);
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
        ledger_free(s->ledger);
        free(s);
        return NULL;
}

bool store_enabled(const Store *s) {
        return s && s->enabled;
}

bool store_has_ledger(const Store *s) {
        return s && s->ledger;
}

bool store_restored_from_ledger(const Store *s) {
        return s && s->from_ledger;
}

void store_degrade(Store *s, int error, const char *what) {
        if (!s->degraded)
                log_error_errno(error, "The fd store is degraded: %s; a crash of gmemd may lose what is not stored",
                                what);
        s->degraded = true;
        manager_set_persistence(s->manager, PERSISTENCE_DEGRADED);
}

/* The one entry spared for a replacement, and n more: do they fit what the service manager keeps? */
static int hook_admit(Manager *m, unsigned n, GmemError *e) {
        Store *s = m->store_userdata;
        size_t held = hashmap_size(s->entries);

        if (!s->enabled || (held < s->max && n < s->max - held))
                return 0;
        return gmem_error_set(e, GMEM_ERROR_QUOTA_EXCEEDED, "Cannot keep %u more entries in gmemd's fd store: it "
                              "holds %zu of the %u the service manager keeps (FileDescriptorStoreMax=), one of them "
                              "kept free for replacing an entry", n, held, s->max);
}

/* --- keys --- */

void store_region_key(uint64_t id, char *buf, size_t size) {
        (void) snprintf(buf, size, "region/%" PRIu64, id);
}

void store_vm_key(uint64_t id, char *buf, size_t size) {
        (void) snprintf(buf, size, "vm/%" PRIu64, id);
}

void store_view_key(uint64_t vm_id, uint64_t region_id, char *buf, size_t size) {
        (void) snprintf(buf, size, "view/%" PRIu64 "/%" PRIu64, vm_id, region_id);
}

void store_pending_key(uint64_t vm_id, uint64_t region_id, char *buf, size_t size) {
        (void) snprintf(buf, size, "pending/%" PRIu64 "/%" PRIu64, vm_id, region_id);
}

void store_migration_key(uint64_t id, char *buf, size_t size) {
        (void) snprintf(buf, size, "migration/%" PRIu64, id);
}

/* --- talking to the service manager --- */

static int record_memfd(void) {
        int fd = memfd_create(STORE_RECORD_LABEL, MFD_CLOEXEC | MFD_ALLOW_SEALING);

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
        char msg[sizeof("FDSTORE=1\nFDNAME=") + STORE_NAME_MAX];
        int r;

        (void) snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", name);
        r = sd_pid_notify_with_fds(0, false, msg, &fd, 1);
        if (r < 0)
                return log_warning_errno(r, "Cannot put %s in the fd store", name);
        if (r == 0)
                return -ENOTCONN;       /* $NOTIFY_SOCKET went away: nothing was sent */
        return 0;
}

void store_remove_name(const char *name) {
        int r = sd_notifyf(false, "FDSTOREREMOVE=1\nFDNAME=%s", name);
        if (r < 0)
                log_warning_errno(r, "Cannot remove %s from the fd store", name);
}

void store_forget_name(Store *s, const char *name) {
        if (s->enabled)
                store_remove_name(name);
        if (s->ledger)
                ledger_remove(s->ledger, name);
}

/* The ledger holds name (kernel: of an object that outlives gmemd there, or refers to one). */
static void ledger_put(Store *s, const char *name) {
        int r;

        if (!s->ledger)
                return;
        r = ledger_add(s->ledger, name);
        if (r < 0) {
                log_warning_errno(r, "Cannot keep record '%s' in gmem.ko", name);
                store_degrade(s, r, "gmem.ko refused a record");
        }
}

void store_remember(Store *s, const char *key, const char *name) {
        StoreEntry *e = calloc(1, sizeof(*e));

        if (!e || !(e->key = strdup(key)) || !(e->name = strdup(name)) || hashmap_put(s->entries, e->key, e) < 0) {
                entry_free(e);
                store_degrade(s, ENOMEM, "out of memory tracking an entry");
                return;
        }
        e->seen = true;
}

/*
 * Makes key's entry name, holding fd (or a new record memfd if fd < 0). The
 * new entry goes in before the old one goes out. name NULL removes key.
 * kernel: the ledger keeps it too.
 */
static void store_set(Store *s, const char *key, const char *name, int fd, bool kernel) {
        StoreEntry *e = hashmap_get(s->entries, key);
        _cleanup_close_ int record = -EBADF;

        if (!s->enabled && !s->ledger)
                return;
        if (e)
                e->seen = true;
        if (name && kernel)
                ledger_put(s, name);
        if (e && name && streq(e->name, name))
                return;
        if (name && s->enabled) {
                int r;

                if (fd < 0) {
                        record = record_memfd();
                        if (record < 0) {
                                store_degrade(s, record, "cannot make a record");
                                return;
                        }
                        fd = record;
                }
                r = send_fd(name, fd);
                if (r < 0) {
                        store_degrade(s, r, "cannot send an entry to the service manager");
                        return;
                }
        }
        if (e) {
                store_forget_name(s, e->name);
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
        store_remember(s, key, name);
}

/*
 * Stores key's entry under the name n describes. A description the scheme
 * cannot hold (the model never makes one) leaves the entry as it is: storing
 * it would lose the object on the next start, removing it would lose it now.
 */
static void store_set_name(Store *s, const char *key, const StoreName *n, int fd, bool kernel) {
        char name[STORE_NAME_MAX];
        StoreEntry *e;
        int r;

        r = store_name_format(n, name, sizeof(name));
        if (r >= 0)
                return store_set(s, key, name, fd, kernel);
        e = hashmap_get(s->entries, key);
        if (e)
                e->seen = true;
        log_warning_errno(r, "Cannot name the fd store entry %s", key);
        store_degrade(s, r, "an object has no name the store can hold");
}

/* --- descriptions of the model's objects --- */

/*
 * Copies one of the model's names into a description. They are valid names,
 * so they fit; one that did not would become "/", which no name holds, so
 * that store_name_format() refuses it instead of storing it cut short.
 */
static void store_copy_string(char *buf, size_t size, const char *s) {
        if (snprintf(buf, size, "%s", s ?: "") >= (int) size)
                (void) snprintf(buf, size, "/");
}

static void store_describe_region(const Region *reg, StoreName *ret) {
        *ret = (StoreName) {
                .kind = STORE_NAME_REGION,
                .region.id = reg->id,
                .region.backend = reg->backend,
                .region.page_size = reg->br.page_size,
                .region.creator = reg->creator,
        };
        store_copy_string(ret->region.name, sizeof(ret->region.name), reg->name);
        store_copy_string(ret->region.owner, sizeof(ret->region.owner), reg->owner);
}

static void store_describe_vm(const Vm *vm, StoreName *ret) {
        *ret = (StoreName) {
                .kind = STORE_NAME_VM,
                .vm.id = vm->id,
                .vm.has_uid = vm->has_uid,
                .vm.uid = vm->has_uid ? vm->uid : 0,
                .vm.creator = vm->creator,
                .vm.leader = vm->pidfd >= 0,
                .vm.leader_pid = vm->pidfd >= 0 && vm->leader_pid > 0 ? (uint32_t) vm->leader_pid : 0,
                .vm.leader_start = vm->pidfd >= 0 && vm->leader_pid > 0 ? vm->leader_start : 0,
        };
        if (!ret->vm.leader_pid || !ret->vm.leader_start)
                ret->vm.leader_pid = 0, ret->vm.leader_start = 0;
        store_copy_string(ret->vm.name, sizeof(ret->vm.name), vm->name);
}

static void store_describe_view(const View *v, StoreName *ret) {
        *ret = (StoreName) {
                .kind = v->state == VIEW_STATE_REVOKED ? STORE_NAME_REVOKED : STORE_NAME_VIEW,
                .view.id = v->id,
                .view.region_id = v->region->id,
                .view.vm_id = v->vm->id,
                .view.access = v->access,
                .view.offset = v->offset,
                .view.length = v->length,
                .view.allocate = v->may_allocate,
                .view.creator = v->creator,
        };
}

/* --- recording: the model's hooks --- */

static Store *store_of(Manager *m) {
        return m->store_userdata;
}

static void hook_region_new(Manager *m, Region *reg) {
        char key[STORE_KEY_MAX];
        StoreName n;

        store_region_key(reg->id, key, sizeof(key));
        store_describe_region(reg, &n);
        store_set_name(store_of(m), key, &n, reg->br.fd, reg->backend == BACKEND_KMOD);
}

static void hook_region_removed(Manager *m, Region *reg) {
        char key[STORE_KEY_MAX];

        store_region_key(reg->id, key, sizeof(key));
        store_set(store_of(m), key, NULL, -EBADF, false);
}

static void hook_vm_new(Manager *m, Vm *vm) {
        char key[STORE_KEY_MAX];
        StoreName n;

        store_vm_key(vm->id, key, sizeof(key));
        store_describe_vm(vm, &n);
        store_set_name(store_of(m), key, &n, vm->pidfd, true);
}

static void hook_vm_removed(Manager *m, Vm *vm) {
        char key[STORE_KEY_MAX];

        store_vm_key(vm->id, key, sizeof(key));
        store_set(store_of(m), key, NULL, -EBADF, false);
}

static void hook_views_changed(Manager *m, Vm *vm, Region *reg) {
        char key[STORE_KEY_MAX], pkey[STORE_KEY_MAX];
        Store *s = store_of(m);
        StoreName n;
        View *v;
        bool kernel;

        if (!vm || !reg)
                return;
        kernel = reg->backend == BACKEND_KMOD;
        store_view_key(vm->id, reg->id, key, sizeof(key));
        store_pending_key(vm->id, reg->id, pkey, sizeof(pkey));
        v = view_lookup(vm, reg);
        if (!v) {
                store_set(s, key, NULL, -EBADF, false);
                store_set(s, pkey, NULL, -EBADF, false);
                return;
        }
        /* The pending record goes in before the view, and out after it is active. */
        if (v->state == VIEW_STATE_PENDING)
                store_set_name(s, pkey, &(StoreName) { .kind = STORE_NAME_PENDING, .pending.view_id = v->id },
                               -EBADF, kernel);
        store_describe_view(v, &n);
        store_set_name(s, key, &n, v->state == VIEW_STATE_REVOKED || reg->ops->views_share_master ? -EBADF : v->fd,
                       kernel);
        if (v->state != VIEW_STATE_PENDING)
                store_set(s, pkey, NULL, -EBADF, false);
}

static void migration_entry(Manager *m, Migration *mig, bool keep) {
        char key[STORE_KEY_MAX];

        store_migration_key(mig->id, key, sizeof(key));
        if (keep && mig->state == MIGRATION_PREPARED && mig->source && mig->target)
                store_set_name(store_of(m), key, &(StoreName) {
                                       .kind = STORE_NAME_MIGRATION,
                                       .migration.id = mig->id,
                                       .migration.source_vm_id = mig->source->id,
                                       .migration.target_vm_id = mig->target->id,
                               }, -EBADF, true);
        else
                store_set(store_of(m), key, NULL, -EBADF, false);
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
        .admit = hook_admit,
};

/*
 * A kernel view gmemd kept that is not the kernel view of a view of the
 * model (a crash between making the two, a view dropped on restore, or a
 * leftover whose label a later view reuses) is revoked; so is a kept view
 * whose revoke could not copy every pinned page, to finish that.
 */
static int prune_view(uint64_t id, bool pending, bool revoked, const char *label, void *userdata) {
        Hashmap *ids = ((void **) userdata)[0];
        Region *reg = ((void **) userdata)[1];
        char key[24];
        uint64_t tag;
        View *v;
        int r;

        (void) pending;
        if (revoked) {
                r = backend_kmod_revoke_view_id(reg->br.fd, id);
                if (r < 0)
                        log_warning_errno(r, "Kernel view %" PRIu64 " of region '%s' is revoked, but not all of it "
                                          "yet", id, reg->name);
                return 0;
        }
        if (backend_kmod_view_tag(label, &tag) < 0)
                return 0;       /* not gmemd's */
        (void) snprintf(key, sizeof(key), "%" PRIu64, tag);
        v = hashmap_get(ids, key);
        if (v && v->region == reg && v->backend_id == id)
                return 0;
        log_info("Revoking kernel view %" PRIu64 " of region '%s': it is not gmemd's view %" PRIu64, id, reg->name,
                 tag);
        (void) backend_kmod_revoke_view_id(reg->br.fd, id);
        return 0;
}

/* A kernel region gmemd made that the model does not have: said, never taken or destroyed blindly. */
static int orphan_region(const char *name, uint64_t size, void *userdata) {
        Manager *m = userdata;
        Region *reg = manager_get_region(m, name);

        if (!reg || reg->backend != BACKEND_KMOD)
                log_warning("gmem.ko holds region '%s%s' of %" PRIu64 " bytes that gmemd made but has no record of "
                            "(a crash between making it and recording it): its memory stays in the kernel and the name "
                            "'%s' is taken there until it is destroyed", BACKEND_KMOD_PREFIX, name, size, name);
        return 0;
}

/*
 * Ledger records of nothing the model has, and kernel views of kmod regions
 * that no view of the model is, go; kernel regions of gmemd's that the model
 * does not have are reported.
 */
static void ledger_prune(Store *s) {
        _cleanup_(hashmap_freep) Hashmap *names = hashmap_new(), *ids = hashmap_new();
        char **records = NULL;
        size_t n = 0;
        StoreEntry *e;
        Region *reg;
        Vm *vm;
        View *v;

        if (!names || !ids || ledger_names(s->ledger, &records, &n) < 0)
                return;
        HASHMAP_FOREACH(e, s->entries, i)
                (void) hashmap_put(names, e->name, e);
        for (size_t i = 0; i < n; i++) {
                if (!hashmap_get(names, records[i]))
                        ledger_remove(s->ledger, records[i]);
                free(records[i]);
        }
        free(records);

        /* Keys of the view ids, kept alive in one buffer while the map is used. */
        size_t nv = 0, k = 0;
        HASHMAP_FOREACH(vm, s->manager->vms, i)
                nv += hashmap_size(vm->views);
        char (*keys)[24] = calloc(nv + 1, sizeof(*keys));
        if (!keys)
                return;
        HASHMAP_FOREACH(vm, s->manager->vms, i)
                HASHMAP_FOREACH(v, vm->views, j) {
                        if (k == nv)
                                break;
                        (void) snprintf(keys[k], sizeof(keys[k]), "%" PRIu64, v->id);
                        (void) hashmap_put(ids, keys[k], v);
                        k++;
                }
        (void) backend_kmod_for_each_own_region(orphan_region, s->manager);
        HASHMAP_FOREACH(reg, s->manager->regions, i)
                if (reg->backend == BACKEND_KMOD)
                        (void) backend_kmod_for_each_kept_view(reg->br.fd, true, prune_view,
                                                               (void *[]) { ids, reg });
        free(keys);
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
        Region *reg;
        View *v;
        Vm *vm;

        HASHMAP_FOREACH(e, s->entries, i)
                e->seen = false;
        HASHMAP_FOREACH(reg, m->regions, i)
                hook_region_new(m, reg);
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
                        store_forget_name(s, e->name);
                        hashmap_remove(s->entries, e->key);
                        entry_free(e);
                }
        if (s->ledger)
                ledger_prune(s);
}

void store_attach(Store *s) {
        if (!s->enabled && !s->ledger) {
                manager_set_persistence(s->manager, PERSISTENCE_NONE);
                return;
        }
        manager_set_persistence(s->manager, s->degraded ? PERSISTENCE_DEGRADED :
                                            s->enabled ? PERSISTENCE_FD_STORE : PERSISTENCE_KERNEL);
        s->manager->store_hooks = &store_hooks;
        s->manager->store_userdata = s;
        store_sync(s);
        if (hashmap_size(s->entries) >= s->max)
                log_warning("The fd store holds %u entries, the most the service manager keeps for gmemd is %u: "
                            "nothing new can be made until objects go", (unsigned) hashmap_size(s->entries), s->max);
}
