/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-model.c — the object model without a bus: regions, VMs, views and
 * migrations, each error path with its named error and no partial state,
 * the notification hooks, and leader tracking with a real pidfd on a real
 * sd-event loop.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "manager.h"
#include "migration.h"
#include "region.h"
#include "model-util.h"
#include "tests.h"
#include "usage.h"
#include "view.h"
#include "vm.h"

/* Callers whose quotas never bite: the model's rules, not the policy's, are under test here (test-usage.c has those). */
#define ROOT (&(const Actor) { .uid = 0, .class = &usage_unlimited })
#define AS(u) (&(const Actor) { .uid = (u), .class = &usage_unlimited })

static struct {
        unsigned region_new, region_removed, vm_new, vm_removed, views_changed, view_revoked, migration_changed;
} seen;

static void h_region_new(Manager *m, Region *r) { seen.region_new++; }
static void h_region_removed(Manager *m, Region *r) { seen.region_removed++; }
static void h_vm_new(Manager *m, Vm *vm) { seen.vm_new++; }
static void h_vm_removed(Manager *m, Vm *vm) { seen.vm_removed++; }
static void h_views_changed(Manager *m, Vm *vm, Region *r) { seen.views_changed++; }
static void h_view_revoked(Manager *m, View *v) { seen.view_revoked++; }
static void h_migration_changed(Manager *m, Migration *mig) { seen.migration_changed++; }

static const ManagerHooks hooks = {
        .region_new = h_region_new,
        .region_removed = h_region_removed,
        .vm_new = h_vm_new,
        .vm_removed = h_vm_removed,
        .views_changed = h_views_changed,
        .view_revoked = h_view_revoked,
        .migration_changed = h_migration_changed,
};

static Region *mkregion(Manager *m, const char *name, uint64_t size) {
        GmemError e = GMEM_ERROR_INIT;
        Region *r = NULL;
        EXPECT(create_region(m, &(RegionParams) { .name = name, .size = size, .backend = BACKEND_MEMFD }, ROOT, &r, &e) == 0,
               "region '%s' can be created: %s", name, e.message);
        return r;
}

static Vm *mkvm(Manager *m, const char *name) {
        GmemError e = GMEM_ERROR_INIT;
        Vm *vm = NULL;
        EXPECT(register_vm(m, &(VmParams) { .name = name }, ROOT, &vm, &e) == 0, "VM '%s' registers: %s", name, e.message);
        return vm;
}

static View *attach(Vm *vm, Region *r, ViewAccess a) {
        GmemError e = GMEM_ERROR_INIT;
        View *v = NULL;
        EXPECT(attach_view(vm, r, &(ViewParams) { .access = a }, ROOT, &v, NULL, &e) == 0, "VM '%s' attaches '%s': %s",
               vm->name, r->name, e.message);
        return v;
}

static void test_region_errors(void) {
        Manager *m = NULL;
        EXPECT(manager_new(NULL, &m) == 0, "a manager can be made");
        m->hooks = &hooks;

        static const struct {
                RegionParams p;
                GmemErrorCode code;
        } bad[] = {
                { { .name = "", .size = 4096 }, GMEM_ERROR_INVALID_NAME },
                { { .name = "a/b", .size = 4096 }, GMEM_ERROR_INVALID_NAME },
                { { .name = "x", .size = 0 }, GMEM_ERROR_INVALID_SIZE },
                { { .name = "x", .size = 1 }, GMEM_ERROR_INVALID_SIZE },
                { { .name = "x", .size = 4095 }, GMEM_ERROR_INVALID_SIZE },
                { { .name = "x", .size = UINT64_MAX - 4095 }, GMEM_ERROR_INVALID_SIZE },
                { { .name = "x", .size = (UINT64_C(1) << 46) + 4096 }, GMEM_ERROR_INVALID_SIZE },
                { { .name = "x", .size = 4096, .backend = (BackendType) 77 }, GMEM_ERROR_INVALID_ARGUMENT },
                { { .name = "x", .size = 4096, .hugepage_size = 2 << 20 }, GMEM_ERROR_INVALID_ARGUMENT },
                { { .name = "x", .size = 4096, .owner = "no/pe" }, GMEM_ERROR_INVALID_NAME },
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                GmemError e = GMEM_ERROR_INIT;
                Region *r = NULL;
                EXPECT(create_region(m, &bad[i].p, ROOT, &r, &e) < 0 && e.code == bad[i].code,
                       "bad region %zu is refused with %s (got %s: %s)", i, gmem_error_code_to_string(bad[i].code),
                       gmem_error_code_to_string(e.code), e.message);
                EXPECT(r == NULL, "a refused region returns nothing");
        }
        EXPECT(hashmap_size(m->regions) == 0 && m->total_bytes == 0 && seen.region_new == 0,
               "refused regions leave nothing behind");

        Region *r = mkregion(m, "r", 1 << 20);
        GmemError e = GMEM_ERROR_INIT;
        EXPECT(create_region(m, &(RegionParams) { .name = "r", .size = 4096 }, ROOT, NULL, &e) == -EEXIST &&
               e.code == GMEM_ERROR_REGION_EXISTS, "a second region 'r' is RegionExists");
        EXPECT(m->total_bytes == 1 << 20 && r->id == 1 && seen.region_new == 1, "the region is counted once");
        EXPECT(manager_get_region(m, "r") == r, "the region is found by name");

        e = (GmemError) GMEM_ERROR_INIT;
        EXPECT(region_discard(r, UINT64_MAX - 4095, 8192, &e) < 0 && e.code == GMEM_ERROR_INVALID_RANGE,
               "a discard wrapping 2^64 is InvalidRange");
        e = (GmemError) GMEM_ERROR_INIT;
        EXPECT(region_set_attributes(r, 0, 4096, "private", &e) < 0 && e.code == GMEM_ERROR_NOT_SUPPORTED,
               "memory attributes on memfd are NotSupported: %s", e.message);
        e = (GmemError) GMEM_ERROR_INIT;
        EXPECT(region_set_attributes(r, 0, 4096, "purple", &e) < 0 && e.code == GMEM_ERROR_INVALID_ARGUMENT,
               "an unknown attribute is InvalidArgument");

        EXPECT(region_destroy(r, NULL) == 0, "an unused region can be destroyed");
        EXPECT(m->total_bytes == 0 && seen.region_removed == 1, "destroying releases its bytes and says so");
        manager_free(m);
}

static void test_views(void) {
        Manager *m = NULL;
        GmemError e = GMEM_ERROR_INIT;
        View *v, *v2;
        bool existing = false;

        EXPECT(manager_new(NULL, &m) == 0, "a manager can be made");
        Region *r = mkregion(m, "ram", 1 << 20);
        Vm *a = mkvm(m, "a"), *b = mkvm(m, "b");

        e = (GmemError) GMEM_ERROR_INIT;
        EXPECT(register_vm(m, &(VmParams) { .name = "a" }, ROOT, NULL, &e) < 0 && e.code == GMEM_ERROR_VM_EXISTS,
               "a second VM 'a' is VmExists");

        v = attach(a, r, VIEW_ACCESS_RW);
        EXPECT(attach_view(a, r, &(ViewParams) { .access = VIEW_ACCESS_RW }, ROOT, &v2, &existing, &e) == 0 && v2 == v &&
               existing, "asking again for the same view returns the same view");
        e = (GmemError) GMEM_ERROR_INIT;
        EXPECT(attach_view(a, r, &(ViewParams) { .access = VIEW_ACCESS_RO }, ROOT, &v2, NULL, &e) < 0 &&
               e.code == GMEM_ERROR_BUSY, "asking for the same view with other access is Busy");

        static const struct {
                ViewParams p;
                GmemErrorCode code;
        } bad[] = {
                { { .access = (ViewAccess) 9 }, GMEM_ERROR_INVALID_ARGUMENT },
                { { .access = VIEW_ACCESS_RO, .allocate = true }, GMEM_ERROR_INVALID_ARGUMENT },
                { { .access = VIEW_ACCESS_RO, .has_offset = true, .offset = 1 }, GMEM_ERROR_INVALID_RANGE },
                { { .access = VIEW_ACCESS_RO, .has_offset = true, .offset = 2 << 20 }, GMEM_ERROR_INVALID_RANGE },
                { { .access = VIEW_ACCESS_RO, .has_length = true, .length = 0 }, GMEM_ERROR_INVALID_RANGE },
                { { .access = VIEW_ACCESS_RO, .has_offset = true, .offset = 4096, .has_length = true,
                    .length = UINT64_MAX - 4095 }, GMEM_ERROR_INVALID_RANGE },
                { { .access = VIEW_ACCESS_RO, .has_length = true, .length = 2 << 20 }, GMEM_ERROR_INVALID_RANGE },
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                e = (GmemError) GMEM_ERROR_INIT;
                v2 = NULL;
                EXPECT(attach_view(b, r, &bad[i].p, ROOT, &v2, NULL, &e) < 0 && e.code == bad[i].code && !v2,
                       "bad view %zu is refused with %s (got %s)", i, gmem_error_code_to_string(bad[i].code),
                       e.message);
        }
        EXPECT(hashmap_size(b->views) == 0 && hashmap_size(r->views) == 1, "refused views leave nothing behind");

        View *w = attach(b, r, VIEW_ACCESS_RO);
        EXPECT(w->fd >= 0 && w->fd != v->fd, "each view has its own file");

        e = (GmemError) GMEM_ERROR_INIT;
        EXPECT(region_destroy(r, &e) < 0 && e.code == GMEM_ERROR_BUSY && strstr(e.message, "2 live views"),
               "a region with views is Busy to destroy: %s", e.message);
        EXPECT(view_detach(w, NULL) == 0, "a view can be detached");
        EXPECT(view_lookup(b, r) == NULL, "a detached view is gone");
        EXPECT(vm_unregister(a, NULL) == 0, "a VM with views can be unregistered");
        EXPECT(hashmap_size(r->views) == 0, "unregistering drops the VM's views");
        EXPECT(region_destroy(r, NULL) == 0, "the region can now be destroyed");
        manager_free(m);
}

static void test_migration(void) {
        Manager *m = NULL;
        GmemError e = GMEM_ERROR_INIT;
        Migration *mig = NULL, *mig2 = NULL;
        int fd;

        EXPECT(manager_new(NULL, &m) == 0, "a manager can be made");
        m->hooks = &hooks;
        memset(&seen, 0, sizeof(seen));
        Region *r1 = mkregion(m, "r1", 1 << 20), *r2 = mkregion(m, "r2", 2 << 20);
        Vm *a = mkvm(m, "a"), *b = mkvm(m, "b"), *c = mkvm(m, "c");

        EXPECT(begin_migration(a, b, ROOT, &mig, &e) < 0 && e.code == GMEM_ERROR_INVALID_ARGUMENT,
               "a VM without views has nothing to migrate");
        View *s1 = attach(a, r1, VIEW_ACCESS_RW);
        View *s2 = attach(a, r2, VIEW_ACCESS_RO);
        e = (GmemError) GMEM_ERROR_INIT;
        EXPECT(begin_migration(a, a, ROOT, &mig, &e) < 0 && e.code == GMEM_ERROR_INVALID_ARGUMENT, "a VM cannot migrate to itself");

        EXPECT(begin_migration(a, b, ROOT, &mig, &e) == 0 && mig->n_views == 2, "a migration of two views begins");
        View *t1 = view_lookup(b, r1), *t2 = view_lookup(b, r2);
        EXPECT(t1 && t2 && t1->state == VIEW_STATE_PENDING && t2->access == VIEW_ACCESS_RO,
               "the target has pending views with the source's access");
        EXPECT(t1->fd >= 0 && t1->fd != s1->fd, "the target's view is its own file");

        e = (GmemError) GMEM_ERROR_INIT;
        EXPECT(begin_migration(a, c, ROOT, &mig2, &e) < 0 && e.code == GMEM_ERROR_MIGRATION_IN_PROGRESS,
               "a second migration of the source is MigrationInProgress");
        e = (GmemError) GMEM_ERROR_INIT;
        EXPECT(begin_migration(c, b, ROOT, &mig2, &e) < 0 && e.code == GMEM_ERROR_MIGRATION_IN_PROGRESS,
               "a second migration to the target is MigrationInProgress");
        e = (GmemError) GMEM_ERROR_INIT;
        EXPECT(view_detach(s1, &e) < 0 && e.code == GMEM_ERROR_MIGRATION_IN_PROGRESS, "a migrating view cannot be detached");
        e = (GmemError) GMEM_ERROR_INIT;
        EXPECT(vm_unregister(b, &e) < 0 && e.code == GMEM_ERROR_MIGRATION_IN_PROGRESS, "a migrating VM cannot unregister");
        e = (GmemError) GMEM_ERROR_INIT;
        EXPECT(attach_view(a, mkregion(m, "r3", 4096), &(ViewParams) { .access = VIEW_ACCESS_RW }, ROOT, &t1, NULL, &e) < 0 &&
               e.code == GMEM_ERROR_MIGRATION_IN_PROGRESS, "a migrating VM cannot attach");
        t1 = view_lookup(b, r1);

        EXPECT(migration_commit(mig, &e) == 0, "the migration commits");
        EXPECT(t1->state == VIEW_STATE_ACTIVE && s1->state == VIEW_STATE_REVOKED && s2->state == VIEW_STATE_REVOKED,
               "after commit the target's views are active and the source's revoked");
        EXPECT(seen.view_revoked == 2 && seen.migration_changed == 1, "revocations and the state change are signalled");
        e = (GmemError) GMEM_ERROR_INIT;
        EXPECT(view_get_fd(s1, &fd, &e) < 0 && e.code == GMEM_ERROR_NO_SUCH_VIEW, "a revoked view is not handed out");
        e = (GmemError) GMEM_ERROR_INIT;
        EXPECT(migration_commit(mig, &e) < 0 && e.code == GMEM_ERROR_BUSY, "a committed migration cannot commit again");
        EXPECT(region_destroy(r2, &e) < 0, "the region with b's live view is still Busy");

        /* Back to a, then abort. */
        view_detach(s1, NULL);
        view_detach(s2, NULL);
        EXPECT(begin_migration(b, a, ROOT, &mig2, &e) == 0, "a migration back begins");
        EXPECT(migration_abort(mig2, &e) == 0, "and aborts");
        EXPECT(hashmap_size(a->views) == 0 && view_lookup(b, r1)->state == VIEW_STATE_ACTIVE,
               "abort drops the target's views and keeps the source's");
        EXPECT(hashmap_size(m->migrations) == 2, "finished migrations stay listed");
        EXPECT(vm_unregister(a, NULL) == 0 && hashmap_size(m->migrations) == 2,
               "finished migrations stay listed after their VM is unregistered");
        manager_free(m);
}

static void test_migration_history_bounded(void) {
        Manager *m = NULL;
        Migration *mig;

        EXPECT(manager_new(NULL, &m) == 0, "a manager can be made");
        Region *r = mkregion(m, "r", 4096);
        Vm *a = mkvm(m, "a"), *b = mkvm(m, "b");
        attach(a, r, VIEW_ACCESS_RW);
        for (int i = 0; i < 200; i++) {
                EXPECT(begin_migration(a, b, ROOT, &mig, NULL) == 0 && migration_abort(mig, NULL) == 0,
                       "migration %d begins and aborts", i);
        }
        EXPECT(hashmap_size(m->migrations) == MANAGER_FINISHED_MIGRATIONS_MAX,
               "no more than %d finished migrations are kept (%zu)", MANAGER_FINISHED_MIGRATIONS_MAX,
               hashmap_size(m->migrations));
        manager_free(m);
}

static void test_leader_exit(void) {
        sd_event *event = NULL;
        Manager *m = NULL;
        GmemError e = GMEM_ERROR_INIT;
        Vm *vm = NULL;
        pid_t child;

        EXPECT(sd_event_new(&event) >= 0, "an event loop can be made");
        EXPECT(manager_new(event, &m) == 0, "a manager can be made");
        Region *r = mkregion(m, "ram", 1 << 20);

        e = (GmemError) GMEM_ERROR_INIT;
        EXPECT(register_vm(m, &(VmParams) { .name = "x", .has_leader_pid = true, .leader_pid = 0 }, ROOT, NULL, &e) < 0 &&
               e.code == GMEM_ERROR_INVALID_ARGUMENT, "leader_pid 0 is refused");
        e = (GmemError) GMEM_ERROR_INIT;
        EXPECT(register_vm(m, &(VmParams) { .name = "x", .has_leader_pid = true, .leader_pid = UINT32_MAX }, ROOT, NULL, &e) < 0 &&
               e.code == GMEM_ERROR_INVALID_ARGUMENT, "a leader_pid beyond any pid is refused");
        EXPECT(manager_get_vm(m, "x") == NULL, "refused VMs leave nothing behind");

        child = fork();
        EXPECT(child >= 0, "fork works");
        if (child == 0) {
                pause();
                _exit(0);
        }
        EXPECT(register_vm(m, &(VmParams) { .name = "vm", .has_leader_pid = true, .leader_pid = (uint32_t) child },
                           ROOT, &vm, &e) == 0, "a VM with a live leader registers: %s", e.message);
        attach(vm, r, VIEW_ACCESS_RW);
        EXPECT(sd_event_run(event, 0) >= 0 && hashmap_size(vm->views) == 1, "views stay while the leader lives");

        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        for (int i = 0; i < 50 && hashmap_size(vm->views) > 0; i++)
                EXPECT(sd_event_run(event, 100 * 1000) >= 0, "the loop runs");
        EXPECT(hashmap_size(vm->views) == 0, "the leader's exit releases the VM's views");
        EXPECT(vm->leader_pid == 0 && manager_get_vm(m, "vm") == vm, "the VM stays registered without a leader");
        EXPECT(manager_get_region(m, "ram") == r, "the region stays");
        manager_free(m);
        sd_event_unref(event);
}

static pid_t fork_paused(void) {
        pid_t child = fork();

        EXPECT(child >= 0, "fork works");
        if (child == 0) {
                pause();
                _exit(0);
        }
        return child;
}

/* A leader passed as a pidfd (the caller's, borrowed): checked, duplicated, watched like one opened from a pid. */
static void test_leader_fd(void) {
        sd_event *event = NULL;
        Manager *m = NULL;
        GmemError e = GMEM_ERROR_INIT;
        Vm *vm = NULL;
        pid_t child, other;
        int pidfd, memfd;

        EXPECT(sd_event_new(&event) >= 0, "an event loop can be made");
        EXPECT(manager_new(event, &m) == 0, "a manager can be made");
        Region *r = mkregion(m, "ram", 1 << 20);

        memfd = memfd_create("not-a-leader", MFD_CLOEXEC);
        EXPECT(memfd >= 0, "memfd_create works");
        EXPECT(register_vm(m, &(VmParams) { .name = "x", .has_leader_fd = true, .leader_fd = memfd }, ROOT, NULL, &e) < 0 &&
               e.code == GMEM_ERROR_INVALID_ARGUMENT && strstr(e.message, "a memfd ('memfd:not-a-leader') is not a pidfd"),
               "a memfd is refused as a leader, named: %s", e.message);
        EXPECT(manager_get_vm(m, "x") == NULL && fcntl(memfd, F_GETFD) >= 0,
               "nothing is left, and the caller's fd is the caller's");
        close(memfd);

        child = fork_paused();
        other = fork_paused();
        pidfd = (int) syscall(SYS_pidfd_open, child, 0);
        EXPECT(pidfd >= 0, "pidfd_open works");
        e = (GmemError) GMEM_ERROR_INIT;
        EXPECT(register_vm(m, &(VmParams) { .name = "x", .has_leader_fd = true, .leader_fd = pidfd,
                                             .has_leader_pid = true, .leader_pid = (uint32_t) other }, ROOT, NULL, &e) < 0 &&
               e.code == GMEM_ERROR_INVALID_ARGUMENT, "leader and leader_pid of two processes are refused");
        EXPECT(register_vm(m, &(VmParams) { .name = "vm", .has_leader_fd = true, .leader_fd = pidfd,
                                             .has_leader_pid = true, .leader_pid = (uint32_t) child }, ROOT, &vm, &e) == 0,
               "a VM with a live leader's pidfd registers: %s", e.message);
        EXPECT(vm->pidfd >= 0 && vm->pidfd != pidfd && vm->leader_pid == child, "gmemd watches its own duplicate");
        close(pidfd);
        attach(vm, r, VIEW_ACCESS_RW);
        EXPECT(sd_event_run(event, 0) >= 0 && hashmap_size(vm->views) == 1, "views stay while the leader lives");

        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        for (int i = 0; i < 50 && hashmap_size(vm->views) > 0; i++)
                EXPECT(sd_event_run(event, 100 * 1000) >= 0, "the loop runs");
        EXPECT(hashmap_size(vm->views) == 0 && vm->leader_pid == 0, "the leader's exit releases the VM's views");

        pidfd = (int) syscall(SYS_pidfd_open, other, 0);
        EXPECT(pidfd >= 0, "pidfd_open works");
        kill(other, SIGKILL);
        waitpid(other, NULL, 0);
        e = (GmemError) GMEM_ERROR_INIT;
        EXPECT(register_vm(m, &(VmParams) { .name = "y", .has_leader_fd = true, .leader_fd = pidfd }, ROOT, NULL, &e) < 0 &&
               e.code == GMEM_ERROR_INVALID_ARGUMENT && strstr(e.message, "has exited"),
               "a pidfd of an exited process is refused: %s", e.message);
        close(pidfd);
        manager_free(m);
        sd_event_unref(event);
}

static void test_usage(void) {
        Manager *m = NULL;
        GmemError e = GMEM_ERROR_INIT;
        Region *r = NULL;
        Vm *vm = NULL, *t = NULL;
        View *v = NULL;
        Migration *mig = NULL;

        EXPECT(manager_new(NULL, &m) == 0, "a manager can be made");
        EXPECT(create_region(m, &(RegionParams) { .name = "r", .size = 1 << 20 }, AS(1000), &r, &e) == 0,
               "uid 1000 creates a region");
        EXPECT(r->creator == 1000, "the region remembers its creator");
        EXPECT(register_vm(m, &(VmParams) { .name = "a" }, AS(1000), &vm, &e) == 0, "uid 1000 registers a VM");
        EXPECT(register_vm(m, &(VmParams) { .name = "b" }, AS(2000), &t, &e) == 0, "uid 2000 registers a VM");
        EXPECT(attach_view(vm, r, &(ViewParams) { .access = VIEW_ACCESS_RW }, AS(1000), &v, NULL, &e) == 0,
               "uid 1000 attaches");
        Usage u = usage_get(m, 1000);
        EXPECT(u.amount[QUOTA_BYTES] == 1 << 20 && u.amount[QUOTA_REGIONS] == 1 && u.amount[QUOTA_VMS] == 1 &&
               u.amount[QUOTA_VIEWS] == 1, "uid 1000 is charged for what it made");
        EXPECT(usage_get(m, 2000).amount[QUOTA_VMS] == 1 && usage_get(m, 2000).amount[QUOTA_VIEWS] == 0,
               "uid 2000 is charged for its VM only");

        EXPECT(begin_migration(vm, t, AS(3000), &mig, &e) == 0, "uid 3000 begins a migration");
        EXPECT(usage_get(m, 3000).amount[QUOTA_VIEWS] == 1, "the migration's pending views are charged to its caller");
        EXPECT(migration_abort(mig, &e) == 0 && usage_get(m, 3000).amount[QUOTA_VIEWS] == 0, "abort releases them");

        EXPECT(vm_unregister(vm, NULL) == 0 && region_destroy(r, NULL) == 0 && vm_unregister(t, NULL) == 0,
               "everything goes away");
        u = usage_get(m, 1000);
        EXPECT(u.amount[QUOTA_BYTES] == 0 && u.amount[QUOTA_VIEWS] == 0 && hashmap_size(m->usage) == 0,
               "and every charge is released");
        manager_free(m);
}

/*
 * Whether the inode behind fd grants uid anything through its access list
 * (system.posix_acl_access: a 4-byte version, then 8-byte entries of tag,
 * permissions and id; tag 2 is a named user). -1 if the file system keeps
 * no access lists.
 */
static int acl_grants(int fd, uid_t uid) {
        uint8_t buf[4096];
        ssize_t n = fgetxattr(fd, "system.posix_acl_access", buf, sizeof(buf));

        if (n < 0)
                return errno == ENODATA ? 0 : -1;
        for (ssize_t off = 4; off + 8 <= n; off += 8) {
                uint16_t tag;
                uint32_t id;

                memcpy(&tag, buf + off, sizeof(tag));
                memcpy(&id, buf + off + 4, sizeof(id));
                if (tag == 2 && id == uid)
                        return 1;
        }
        return 0;
}

#define HV_UID 1002

static unsigned gone_announced, gone_while_granted;

/* The fd store hears of a change first: when it hears a view is gone, the inode must not grant its uid any more. */
static void h_views_changed_check(Manager *m, Vm *vm, Region *reg) {
        View *v = view_lookup(vm, reg);

        if (v && v->state != VIEW_STATE_REVOKED)
                return;
        gone_announced++;
        if (vm->has_uid && acl_grants(reg->br.fd, vm->uid) > 0 && !view_lookup(vm, reg))
                gone_while_granted++;
        if (vm->has_uid && v && acl_grants(reg->br.fd, vm->uid) > 0) {
                /* A revoked view: only a live view of the same uid may keep the grant. */
                bool other = false;
                View *w;
                HASHMAP_FOREACH(w, reg->views, i)
                        if (w != v && w->state != VIEW_STATE_REVOKED && w->vm->has_uid && w->vm->uid == vm->uid)
                                other = true;
                if (!other)
                        gone_while_granted++;
        }
}

static const ManagerHooks order_hooks = {
        .views_changed = h_views_changed_check,
};

static void test_grants_before_announcing(void) {
        sd_event *event = NULL;
        Manager *m = NULL;
        GmemError e = GMEM_ERROR_INIT;
        Migration *mig = NULL;
        View *v = NULL;
        Vm *a, *hv = NULL, *hv2 = NULL;
        pid_t child;

        EXPECT(sd_event_new(&event) >= 0 && manager_new(event, &m) == 0, "a manager with an event loop can be made");
        Region *r = mkregion(m, "ram", 1 << 20);
        a = mkvm(m, "a");
        EXPECT(register_vm(m, &(VmParams) { .name = "hv", .has_uid = true, .uid = HV_UID }, ROOT, &hv, &e) == 0 &&
               register_vm(m, &(VmParams) { .name = "hv2", .has_uid = true, .uid = HV_UID }, ROOT, &hv2, &e) == 0,
               "VMs whose hypervisor runs as uid %d register", HV_UID);
        attach(hv, r, VIEW_ACCESS_RW);
        if (acl_grants(r->br.fd, HV_UID) < 0) {
                manager_free(m);
                sd_event_unref(event);
                printf("   skipped: this file system keeps no access lists on memfds\n");
                return;
        }
        EXPECT(acl_grants(r->br.fd, HV_UID) == 1, "a view gives its VM's uid a grant on the inode");
        m->hooks = &order_hooks;

        /* Detach. */
        v = view_lookup(hv, r);
        EXPECT(view_detach(v, &e) == 0 && gone_announced == 1 && gone_while_granted == 0,
               "a detached view is announced after its grant is gone (%u, %u)", gone_announced, gone_while_granted);

        /* Migration to a uid, aborted. */
        attach(a, r, VIEW_ACCESS_RW);
        EXPECT(begin_migration(a, hv, ROOT, &mig, &e) == 0 && acl_grants(r->br.fd, HV_UID) == 1,
               "a pending view grants its uid: %s", e.message);
        EXPECT(migration_abort(mig, &e) == 0 && gone_while_granted == 0 && acl_grants(r->br.fd, HV_UID) == 0,
               "an aborted migration's views are announced after their grants are gone");

        /* Migration from a uid, committed: the source's view is revoked. */
        EXPECT(view_detach(view_lookup(a, r), &e) == 0, "a's view goes");
        attach(hv, r, VIEW_ACCESS_RW);
        EXPECT(begin_migration(hv, a, ROOT, &mig, &e) == 0 && migration_commit(mig, &e) == 0,
               "a migration from the uid's VM commits");
        EXPECT(gone_while_granted == 0 && acl_grants(r->br.fd, HV_UID) == 0,
               "the revoked view is announced after its grant is gone");

        /* Unregistering, and the leader's exit. */
        attach(hv2, r, VIEW_ACCESS_RO);
        EXPECT(vm_unregister(hv2, &e) == 0 && gone_while_granted == 0 && acl_grants(r->br.fd, HV_UID) == 0,
               "an unregistered VM's views are announced after their grants are gone");
        child = fork();
        EXPECT(child >= 0, "fork works");
        if (child == 0) {
                pause();
                _exit(0);
        }
        Vm *led = NULL;
        EXPECT(register_vm(m, &(VmParams) { .name = "led", .has_uid = true, .uid = HV_UID, .has_leader_pid = true,
                                             .leader_pid = (uint32_t) child }, ROOT, &led, &e) == 0,
               "a VM with a leader registers: %s", e.message);
        attach(led, r, VIEW_ACCESS_RW);
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        for (int i = 0; i < 50 && hashmap_size(led->views) > 0; i++)
                EXPECT(sd_event_run(event, 100 * 1000) >= 0, "the loop runs");
        EXPECT(hashmap_size(led->views) == 0 && gone_while_granted == 0 && acl_grants(r->br.fd, HV_UID) == 0,
               "a dead leader's views are announced after their grants are gone");
        EXPECT(m->grants_queue == NULL, "no region is left with stale grants");
        manager_free(m);
        sd_event_unref(event);
}

/* What a one-owner backend (hugetlb) was last told to grant. */
static struct {
        unsigned calls;
        size_t n, n_rw;
} owner_grants;

/* Like hugetlb's: one uid with read-write views at most, refused otherwise. */
static int rec_set_owner(const BackendRegion *br, const BackendGrant *grants, size_t n, GmemError *e) {
        size_t n_rw = 0;

        for (size_t i = 0; i < n; i++)
                n_rw += grants[i].access == VIEW_ACCESS_RW;
        if (n_rw > 1)
                return gmem_error_set(e, GMEM_ERROR_NOT_SUPPORTED, "one read-write owner");
        owner_grants.calls++;
        owner_grants.n = n;
        owner_grants.n_rw = n_rw;
        return 0;
}

static BackendOps one_owner;

/* A backend that refuses what it is asked to grant: the view that asked is not made, and the grants stay. */
static void test_backend_refuses_grant(void) {
        Manager *m = NULL;
        GmemError e = GMEM_ERROR_INIT;
        Vm *hv = NULL, *hv_ro = NULL, *other = NULL, *third = NULL, *plain;
        View *v = NULL;

        EXPECT(manager_new(NULL, &m) == 0, "a manager can be made");
        Region *r = mkregion(m, "huge", 1 << 20);
        one_owner = backend_memfd_ops;
        one_owner.set_grants = rec_set_owner;
        r->ops = &one_owner;
        EXPECT(register_vm(m, &(VmParams) { .name = "hv", .has_uid = true, .uid = HV_UID }, ROOT, &hv, &e) == 0 &&
               register_vm(m, &(VmParams) { .name = "hv-ro", .has_uid = true, .uid = HV_UID }, ROOT, &hv_ro, &e) == 0 &&
               register_vm(m, &(VmParams) { .name = "other", .has_uid = true, .uid = HV_UID + 1 }, ROOT, &other,
                           &e) == 0 &&
               register_vm(m, &(VmParams) { .name = "third", .has_uid = true, .uid = HV_UID + 2 }, ROOT, &third,
                           &e) == 0, "VMs of three hypervisor uids register: %s", e.message);
        plain = mkvm(m, "plain");
        memset(&owner_grants, 0, sizeof(owner_grants));

        attach(hv_ro, r, VIEW_ACCESS_RO);
        attach(hv, r, VIEW_ACCESS_RW);
        attach(plain, r, VIEW_ACCESS_RO);
        attach(other, r, VIEW_ACCESS_RO);
        EXPECT(owner_grants.n == 2 && owner_grants.n_rw == 1, "one read-write uid and one read-only uid granted");

        unsigned calls = owner_grants.calls;
        int ret = attach_view(third, r, &(ViewParams) { .access = VIEW_ACCESS_RW }, ROOT, &v, NULL, &e);
        EXPECT(ret < 0 && e.code == GMEM_ERROR_NOT_SUPPORTED && strstr(e.message, "one read-write owner"),
               "the backend's refusal is the caller's error (%d): %s", ret, e.message);
        EXPECT(view_lookup(third, r) == NULL && owner_grants.n == 2 && owner_grants.n_rw == 1 &&
               owner_grants.calls >= calls, "the refused view is not there and the grants are as before");

        EXPECT(view_detach(view_lookup(hv, r), &e) == 0 && owner_grants.n_rw == 0,
               "when the rw view goes, nobody has read-write");
        e = (GmemError) GMEM_ERROR_INIT;
        attach(third, r, VIEW_ACCESS_RW);
        EXPECT(owner_grants.n_rw == 1, "then another uid may have it");
        manager_free(m);
}

/* A restored inode's access list is recomputed from the views restored with it, not trusted. */
static void test_restore_recomputes_grants(void) {
        Manager *m = NULL;
        GmemError e = GMEM_ERROR_INIT;
        Region *reg = NULL;
        uint8_t acl[44];
        uint32_t version = 2;
        int fd;

        EXPECT(manager_new(NULL, &m) == 0, "a manager can be made");
        fd = stored_memfd("old", 1 << 20);
        EXPECT(fd >= 0, "a memfd stands in for a stored region");
        /* user::rw-, user:1002:rw-, group::---, mask::rw-, other::--- — a grant left by a view that did not come back. */
        const struct { uint16_t tag, perm; uint32_t id; } ents[] = {
                { 0x01, 6, UINT32_MAX }, { 0x02, 6, HV_UID }, { 0x04, 0, UINT32_MAX }, { 0x10, 6, UINT32_MAX },
                { 0x20, 0, UINT32_MAX },
        };
        memcpy(acl, &version, 4);
        for (size_t i = 0; i < ELEMENTSOF(ents); i++) {
                memcpy(acl + 4 + 8 * i, &ents[i].tag, 2);
                memcpy(acl + 6 + 8 * i, &ents[i].perm, 2);
                memcpy(acl + 8 + 8 * i, &ents[i].id, 4);
        }
        if (fsetxattr(fd, "system.posix_acl_access", acl, 4 + 8 * ELEMENTSOF(ents), 0) < 0) {
                close(fd);
                manager_free(m);
                printf("   skipped: this file system keeps no access lists on memfds\n");
                return;
        }
        EXPECT(acl_grants(fd, HV_UID) == 1, "the stored inode grants uid %d", HV_UID);
        EXPECT(region_adopt(m, &(RegionParams) { .name = "old", .backend = BACKEND_MEMFD }, ROOT, 3, 4096, fd, &reg,
                            &e) == 0, "the region is restored without views: %s", e.message);
        manager_sync_grants(m);
        EXPECT(acl_grants(reg->br.fd, HV_UID) == 0, "its stale grant is gone once the restore syncs the grants");
        manager_free(m);
}

/*
 * A backend that enforces views, as gmem.ko does: memfd's operations, plus
 * activate and revoke that record what they were asked, by view id.
 */
static struct {
        unsigned opened, opened_pending, activated, revoked;
        uint64_t next_id, last_revoked, last_activated;
} calls;

static int rec_open_view(const BackendRegion *br, const BackendViewSpec *spec, BackendView *ret, GmemError *e) {
        int r = backend_memfd_ops.open_view(br, spec, ret, e);
        if (r < 0)
                return r;
        calls.opened++;
        calls.opened_pending += spec->pending;
        ret->id = ++calls.next_id;
        return 0;
}

static int rec_activate(const BackendRegion *br, const BackendView *v, GmemError *e) {
        EXPECT(v->fd >= 0 && v->id > 0, "activate names the view by its file and its id");
        calls.activated++;
        calls.last_activated = v->id;
        return 0;
}

static int rec_revoke(const BackendRegion *br, const BackendView *v, GmemError *e) {
        EXPECT(v->fd >= 0 && v->id > 0, "revoke names the view by its file and its id");
        calls.revoked++;
        calls.last_revoked = v->id;
        return 0;
}

static BackendOps enforcing;

static Region *mkregion_enforcing(Manager *m, const char *name) {
        Region *r = mkregion(m, name, 1 << 20);
        enforcing = backend_memfd_ops;
        enforcing.open_view = rec_open_view;
        enforcing.activate_view = rec_activate;
        enforcing.revoke_view = rec_revoke;
        enforcing.guarantees |= BACKEND_ENFORCES_REVOKE | BACKEND_ENFORCES_PENDING;
        r->ops = &enforcing;
        return r;
}

/* Every state change of a view reaches the backend: the kernel can only enforce what it is told. */
static void test_backend_sees_every_state_change(void) {
        sd_event *event = NULL;
        Manager *m = NULL;
        GmemError e = GMEM_ERROR_INIT;
        Migration *mig = NULL;
        pid_t child;

        EXPECT(sd_event_new(&event) >= 0 && manager_new(event, &m) == 0, "a manager with an event loop can be made");
        Region *r = mkregion_enforcing(m, "ram"), *r2 = mkregion_enforcing(m, "ram2");
        Vm *a = mkvm(m, "a"), *b = mkvm(m, "b");
        memset(&calls, 0, sizeof(calls));

        View *v = attach(a, r, VIEW_ACCESS_RW);
        EXPECT(calls.opened == 1 && calls.opened_pending == 0 && v->backend_id == 1,
               "Attach opens an active view and keeps its kernel id");
        EXPECT(view_detach(v, &e) == 0 && calls.revoked == 1 && calls.last_revoked == 1, "Detach revokes it");

        View *s = attach(a, r, VIEW_ACCESS_RW);
        EXPECT(begin_migration(a, b, ROOT, &mig, &e) == 0 && calls.opened_pending == 1,
               "BeginMigration opens the target's views pending");
        View *t = view_lookup(b, r);
        EXPECT(migration_commit(mig, &e) == 0 && calls.activated == 1 && calls.last_activated == t->backend_id &&
               calls.last_revoked == s->backend_id, "CommitMigration activates the target's and revokes the source's");
        unsigned revoked = calls.revoked;
        EXPECT(region_destroy(r, &e) < 0, "a region with a live view is busy");
        EXPECT(view_detach(t, &e) == 0 && calls.revoked == revoked + 1, "the target's view is revoked on Detach");
        EXPECT(region_destroy(r, &e) == 0 && calls.revoked == revoked + 1,
               "DestroyRegion revokes nothing more: its views were revoked already");

        attach(a, r2, VIEW_ACCESS_RO);
        EXPECT(begin_migration(a, b, ROOT, &mig, &e) == 0, "a second migration begins");
        uint64_t pending_id = view_lookup(b, r2)->backend_id;
        revoked = calls.revoked;
        EXPECT(migration_abort(mig, &e) == 0 && calls.revoked == revoked + 1 && calls.last_revoked == pending_id,
               "AbortMigration revokes the target's pending view");
        revoked = calls.revoked;
        EXPECT(vm_unregister(a, &e) == 0 && calls.revoked == revoked + 1, "UnregisterVm revokes the VM's views");

        child = fork();
        EXPECT(child >= 0, "fork works");
        if (child == 0) {
                pause();
                _exit(0);
        }
        Vm *led = NULL;
        EXPECT(register_vm(m, &(VmParams) { .name = "led", .has_leader_pid = true, .leader_pid = (uint32_t) child },
                           ROOT, &led, &e) == 0, "a VM with a leader registers: %s", e.message);
        attach(led, r2, VIEW_ACCESS_RW);
        revoked = calls.revoked;
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        for (int i = 0; i < 50 && hashmap_size(led->views) > 0; i++)
                EXPECT(sd_event_run(event, 100 * 1000) >= 0, "the loop runs");
        EXPECT(calls.revoked == revoked + 1, "the leader's exit revokes its views");
        manager_free(m);
        sd_event_unref(event);
}

int main(void) {
        RUN(test_backend_sees_every_state_change);
        RUN(test_grants_before_announcing);
        RUN(test_backend_refuses_grant);
        RUN(test_restore_recomputes_grants);
        RUN(test_usage);
        RUN(test_region_errors);
        RUN(test_views);
        RUN(test_migration);
        RUN(test_migration_history_bounded);
        RUN(test_leader_exit);
        RUN(test_leader_fd);
        return 0;
}
