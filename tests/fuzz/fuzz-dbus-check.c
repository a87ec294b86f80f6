/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-dbus-check.c — what must hold after every call the D-Bus fuzzer
 * makes, whatever the call was. A reply is an error from gmemd's registry
 * (with a message) or from D-Bus itself, or on success what the contract
 * (doc/api-contract.md) says: the path of the object named, a view fd on the
 * region's own inode, the view's own open file with its access, lists of exactly the
 * objects that exist. The model behind it stays consistent: views linked
 * from their VM and their region, a custody fd exactly on unrevoked views
 * (a file of its own, except on the secret backend, whose views share the
 * region's file),
 * windows inside regions, prepared migrations pinning what they name and
 * nothing else, and every uid charged for exactly what it created.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <linux/kcmp.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bus-util.h"
#include "fuzz-dbus.h"
#include "fuzz.h"
#include "migration.h"
#include "region.h"
#include "usage.h"
#include "view.h"
#include "vm.h"

static bool same_inode(int a, int b) {
        struct stat x, y;

        return fstat(a, &x) >= 0 && fstat(b, &y) >= 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

/*
 * 1 if a and b are the same open file, 0 if not, -1 if the kernel cannot
 * say (no kcmp): then the check is skipped.
 */
static int same_file(int a, int b) {
        long r = syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE, a, b);

        return r < 0 ? -1 : r == 0;
}

static const char *arg_vm(const CallState *c) {
        return c->method->vm_arg >= 0 ? c->strings[c->method->vm_arg] : NULL;
}

static const char *arg_region(const CallState *c) {
        return c->method->region_arg >= 0 ? c->strings[c->method->region_arg] : NULL;
}

/* The name an object call's path stands for. */
static char *path_name(const char *path, const char *prefix) {
        char *name = NULL;

        if (sd_bus_path_decode(path, prefix, &name) <= 0)
                return NULL;
        return name;
}

static void check_view_fd(Manager *m, const CallState *c, int fd) {
        _cleanup_free_ char *vm_name = NULL, *region_name = NULL;
        const char *vn = arg_vm(c), *rn = arg_region(c);
        Vm *vm;
        Region *r;
        View *v;
        int fl;

        if (!vn)
                vn = vm_name = path_name(c->path, BUS_VM_PREFIX);
        if (!rn)
                rn = region_name = path_name(c->path, BUS_REGION_PREFIX);
        FUZZ_CHECK(vn && rn, "a view fd is the answer to a call naming a VM and a region");
        vm = manager_get_vm(m, vn);
        r = manager_get_region(m, rn);
        FUZZ_CHECK(vm && r, "VM '%s' and region '%s' exist after handing out their view", vn, rn);
        v = view_lookup(vm, r);
        FUZZ_CHECK(v && v->state != VIEW_STATE_REVOKED && v->fd >= 0, "the view handed out is live");
        FUZZ_CHECK(same_inode(fd, r->br.fd), "the fd handed out is on region '%s''s inode", rn);
        FUZZ_CHECK(same_file(fd, v->fd) != 0, "the fd handed out is the view's own open file");
        fl = fcntl(fd, F_GETFL);
        FUZZ_CHECK(fl >= 0, "the fd handed out is open");
        FUZZ_CHECK((fl & O_ACCMODE) == (v->access == VIEW_ACCESS_RO ? O_RDONLY : O_RDWR),
                   "a %s view's fd has the matching access mode", view_access_to_string(v->access));
}

static void check_error_reply(const CallState *c, sd_bus_message *reply, bool verbose) {
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        FUZZ_CHECK(e && e->name, "an error reply has a name");
        if (verbose)
                fprintf(stderr, "  -> %s: %s\n", e->name, e->message ?: "");
        if (strncmp(e->name, GMEM_ERROR_PREFIX, strlen(GMEM_ERROR_PREFIX)) == 0) {
                FUZZ_CHECK(gmem_error_code_from_dbus_name(e->name) > 0, "error %s is in the registry", e->name);
                FUZZ_CHECK(e->message && e->message[0], "error %s comes with a message", e->name);
        } else
                FUZZ_CHECK(strncmp(e->name, "org.freedesktop.DBus.Error.", 27) == 0 ||
                           strncmp(e->name, "System.Error.", 13) == 0,
                           "error %s of %s is ours or a D-Bus one", e->name, c->method->member);
}

void fuzz_check_reply(Manager *m, const CallState *c, sd_bus_message *reply, bool verbose) {
        const char *path, *name;
        uint64_t size;
        uint32_t pid;
        size_t n = 0;
        int fd, r;

        if (sd_bus_message_is_method_error(reply, NULL)) {
                check_error_reply(c, reply, verbose);
                return;
        }
        if (verbose)
                fprintf(stderr, "  -> ok\n");
        if (!c->typed)
                return;     /* a wrong type that happened to be the right one: nothing known to check against */

        switch (c->method->reply) {
        case REPLY_REGION_PATH: {
                _cleanup_free_ char *rn = NULL;
                Region *reg;
                FUZZ_CHECK(sd_bus_message_read(reply, "o", &path) > 0, "%s answers an object path", c->method->member);
                rn = path_name(path, BUS_REGION_PREFIX);
                FUZZ_CHECK(rn && streq(rn, c->strings[0]), "%s answers the path of region '%s'", c->method->member,
                           c->strings[0]);
                reg = manager_get_region(m, rn);
                FUZZ_CHECK(reg, "region '%s' exists", rn);
                if (streq(c->method->member, "CreateRegion"))
                        FUZZ_CHECK(reg->br.size == c->size, "region '%s' has the size asked for", rn);
                break;
        }
        case REPLY_VM_PATH: {
                _cleanup_free_ char *vn = NULL;
                FUZZ_CHECK(sd_bus_message_read(reply, "o", &path) > 0, "%s answers an object path", c->method->member);
                vn = path_name(path, BUS_VM_PREFIX);
                FUZZ_CHECK(vn && streq(vn, c->strings[0]) && manager_get_vm(m, vn),
                           "%s answers the path of VM '%s'", c->method->member, c->strings[0]);
                break;
        }
        case REPLY_VIEW_FD:
                FUZZ_CHECK(sd_bus_message_read(reply, "h", &fd) > 0, "%s answers an fd", c->method->member);
                check_view_fd(m, c, fd);
                break;
        case REPLY_MIGRATION:
                FUZZ_CHECK(sd_bus_message_read(reply, "o", &path) > 0, "BeginMigration answers a path");
                FUZZ_CHECK(sd_bus_message_enter_container(reply, 'a', "(sh)") > 0, "and a list of fds");
                while ((r = sd_bus_message_read(reply, "(sh)", &name, &fd)) > 0) {
                        Region *reg = manager_get_region(m, name);
                        Vm *target = manager_get_vm(m, c->strings[1]);
                        View *v;

                        FUZZ_CHECK(reg && target, "migrated region '%s' and target VM exist", name);
                        v = view_lookup(target, reg);
                        FUZZ_CHECK(v && v->state == VIEW_STATE_PENDING, "the target's view of '%s' is pending", name);
                        FUZZ_CHECK(same_inode(fd, reg->br.fd), "the fd for '%s' is on its inode", name);
                        FUZZ_CHECK(same_file(fd, v->fd) != 0, "the fd for '%s' is the pending view's file", name);
                        n++;
                }
                FUZZ_CHECK(r == 0 && n > 0, "BeginMigration hands out at least one fd");
                break;
        case REPLY_LIST_REGIONS:
                FUZZ_CHECK(sd_bus_message_enter_container(reply, 'a', "(stsso)") > 0, "ListRegions answers a list");
                while ((r = sd_bus_message_read(reply, "(stsso)", &name, &size, NULL, NULL, &path)) > 0) {
                        Region *reg = manager_get_region(m, name);
                        FUZZ_CHECK(reg && reg->br.size == size, "listed region '%s' exists with its size", name);
                        n++;
                }
                FUZZ_CHECK(r == 0 && n == hashmap_size(m->regions), "ListRegions lists every region");
                break;
        case REPLY_LIST_VMS:
                FUZZ_CHECK(sd_bus_message_enter_container(reply, 'a', "(suo)") > 0, "ListVms answers a list");
                while ((r = sd_bus_message_read(reply, "(suo)", &name, &pid, &path)) > 0) {
                        FUZZ_CHECK(manager_get_vm(m, name), "listed VM '%s' exists", name);
                        n++;
                }
                FUZZ_CHECK(r == 0 && n == hashmap_size(m->vms), "ListVms lists every VM");
                break;
        case REPLY_LIST_MIGRATIONS:
                FUZZ_CHECK(sd_bus_message_enter_container(reply, 'a', "(ssso)") > 0, "ListMigrations answers a list");
                while ((r = sd_bus_message_read(reply, "(ssso)", NULL, NULL, &name, &path)) > 0) {
                        FUZZ_CHECK(migration_state_from_string(name) >= 0, "migration state '%s' is known", name);
                        n++;
                }
                FUZZ_CHECK(r == 0 && n == hashmap_size(m->migrations), "ListMigrations lists every migration");
                break;
        default:
                break;
        }
}

/* --- model invariants --- */

static size_t add_uid(uid_t *uids, size_t n, size_t max, uid_t uid) {
        for (size_t i = 0; i < n; i++)
                if (uids[i] == uid)
                        return n;
        FUZZ_CHECK(n < max, "at most %zu uids create things", max);
        uids[n] = uid;
        return n + 1;
}

void fuzz_check_model(Manager *m) {
        uint64_t bytes = 0;
        size_t finished = 0;
        Migration *mig;
        Region *r;
        View *v;
        Vm *vm;

        HASHMAP_FOREACH(r, m->regions, i) {
                FUZZ_CHECK(hashmap_get(m->regions, r->name) == r, "region '%s' is indexed by its name", r->name);
                FUZZ_CHECK(r->br.fd >= 0, "region '%s' holds its inode", r->name);
                FUZZ_CHECK(r->br.size > 0 && r->br.size <= REGION_SIZE_MAX && r->br.page_size > 0 &&
                           r->br.size % r->br.page_size == 0, "region '%s' has a valid size", r->name);
                bytes += r->br.size;
                HASHMAP_FOREACH(v, r->views, j) {
                        FUZZ_CHECK(v->region == r, "a view of region '%s' points back to it", r->name);
                        FUZZ_CHECK(hashmap_get(m->vms, v->vm->name) == v->vm, "the VM of a view of '%s' is registered",
                                   r->name);
                        FUZZ_CHECK(hashmap_get(v->vm->views, r->name) == v, "the view of '%s' by '%s' is linked from "
                                   "the VM too", r->name, v->vm->name);
                        if (v->fd >= 0 && v->fd != r->br.fd)
                                FUZZ_CHECK(same_file(v->fd, r->br.fd) != (r->ops->read_only_views ? 1 : 0),
                                           "the view of '%s' by '%s' is %s", r->name, v->vm->name,
                                           r->ops->read_only_views ? "a file of its own" : "the region's file");
                        FUZZ_CHECK(v->fd < 0 || same_inode(v->fd, r->br.fd), "the view of '%s' by '%s' is on its "
                                   "region's inode", r->name, v->vm->name);
                }
        }
        FUZZ_CHECK(m->total_bytes == bytes, "TotalBytes %" PRIu64 " is the sum of region sizes %" PRIu64,
                   m->total_bytes, bytes);

        HASHMAP_FOREACH(vm, m->vms, i) {
                FUZZ_CHECK(hashmap_get(m->vms, vm->name) == vm, "VM '%s' is indexed by its name", vm->name);
                HASHMAP_FOREACH(v, vm->views, j) {
                        FUZZ_CHECK(v->vm == vm, "a view of VM '%s' points back to it", vm->name);
                        FUZZ_CHECK(hashmap_get(m->regions, v->region->name) == v->region,
                                   "the region of a view of '%s' exists", vm->name);
                        FUZZ_CHECK(hashmap_get(v->region->views, vm->name) == v, "the view of '%s' by '%s' is linked "
                                   "from the region too", v->region->name, vm->name);
                        FUZZ_CHECK((v->state == VIEW_STATE_REVOKED) == (v->fd < 0),
                                   "the view of '%s' by '%s' holds a custody fd exactly when not revoked",
                                   v->region->name, vm->name);
                        FUZZ_CHECK(v->offset <= v->region->br.size && v->length <= v->region->br.size - v->offset &&
                                   v->length > 0, "the window of the view of '%s' by '%s' is inside the region",
                                   v->region->name, vm->name);
                        if (v->migration)
                                FUZZ_CHECK(v->migration->state == MIGRATION_PREPARED &&
                                           hashmap_get(m->migrations, v->migration->key) == v->migration,
                                           "a view pinned by a migration is pinned by a prepared, known one");
                        if (v->state == VIEW_STATE_PENDING)
                                FUZZ_CHECK(v->migration && v->migration->target == vm,
                                           "a pending view belongs to the target of a prepared migration");
                }
                if (vm->migration)
                        FUZZ_CHECK(vm->migration->state == MIGRATION_PREPARED &&
                                   (vm->migration->source == vm || vm->migration->target == vm),
                                   "VM '%s' is in a prepared migration as its source or target", vm->name);
        }

        HASHMAP_FOREACH(mig, m->migrations, i) {
                if (mig->state != MIGRATION_PREPARED) {
                        finished++;
                        continue;
                }
                FUZZ_CHECK(mig->source && mig->target && mig->source->migration == mig &&
                           mig->target->migration == mig, "prepared migration %" PRIu64 " pins both VMs", mig->id);
                for (size_t k = 0; k < mig->n_views; k++)
                        FUZZ_CHECK(mig->source_views[k]->migration == mig && mig->target_views[k]->migration == mig &&
                                   mig->source_views[k]->state == VIEW_STATE_ACTIVE &&
                                   mig->target_views[k]->state == VIEW_STATE_PENDING &&
                                   mig->source_views[k]->region == mig->target_views[k]->region,
                                   "prepared migration %" PRIu64 " pairs an active source view with a pending target "
                                   "view of the same region", mig->id);
        }
        FUZZ_CHECK(finished <= MANAGER_FINISHED_MIGRATIONS_MAX, "at most %d finished migrations are kept",
                   MANAGER_FINISHED_MIGRATIONS_MAX);

        /* Each uid is charged for exactly what it created, and only creators hold anything. */
        uid_t uids[16];
        size_t n_uids = 0;
        HASHMAP_FOREACH(r, m->regions, i)
                n_uids = add_uid(uids, n_uids, ELEMENTSOF(uids), r->creator);
        HASHMAP_FOREACH(vm, m->vms, i) {
                n_uids = add_uid(uids, n_uids, ELEMENTSOF(uids), vm->creator);
                HASHMAP_FOREACH(v, vm->views, j)
                        n_uids = add_uid(uids, n_uids, ELEMENTSOF(uids), v->creator);
        }
        for (size_t k = 0; k < n_uids; k++) {
                Usage want = {}, u = usage_get(m, uids[k]);

                HASHMAP_FOREACH(r, m->regions, i)
                        if (r->creator == uids[k]) {
                                want.amount[QUOTA_BYTES] += r->br.size;
                                want.amount[QUOTA_REGIONS]++;
                        }
                HASHMAP_FOREACH(vm, m->vms, i) {
                        want.amount[QUOTA_VMS] += vm->creator == uids[k];
                        HASHMAP_FOREACH(v, vm->views, j)
                                want.amount[QUOTA_VIEWS] += v->creator == uids[k];
                }
                for (QuotaKind q = 0; q < _QUOTA_KIND_MAX; q++)
                        FUZZ_CHECK(u.amount[q] == want.amount[q], "uid %u is charged %" PRIu64 " %s for %" PRIu64,
                                   (unsigned) uids[k], u.amount[q], quota_kind_to_string(q), want.amount[q]);
        }
        FUZZ_CHECK(hashmap_size(m->usage) == n_uids, "only the %zu uids that created something hold anything "
                   "(%zu do)", n_uids, hashmap_size(m->usage));
}
