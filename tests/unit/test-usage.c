/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-usage.c — quotas are checked by the same call that charges them.
 *
 * Every path that makes something (CreateRegion, RegisterVm, Attach,
 * BeginMigration, and the restore of each from the fd store) is driven to
 * each limit of a class: exactly at the limit it succeeds, one past it fails
 * with QuotaExceeded naming the quota and leaves nothing made and nothing
 * charged. A caller in no class makes nothing. The class rules CreateRegion
 * had in its D-Bus handler (backends, largest region) hold in the model.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "manager.h"
#include "migration.h"
#include "region.h"
#include "model-util.h"
#include "tests.h"
#include "usage.h"
#include "view.h"
#include "vm.h"

#define MiB (UINT64_C(1) << 20)
#define UID 1000

/* 2 regions, 3 MiB, 2 VMs, 3 views, regions of at most 2 MiB, memfd only. */
static PolicyClass tight = {
        .name = (char *) "tight",
        .verbs = UINT32_MAX,
        .backends = UINT32_C(1) << BACKEND_MEMFD,
        .max_region_size = 2 * MiB,
        .quota = {
                [QUOTA_BYTES]   = 3 * MiB,
                [QUOTA_REGIONS] = 2,
                [QUOTA_VMS]     = 2,
                [QUOTA_VIEWS]   = 3,
        },
};

static const Actor caller = { .uid = UID, .class = &tight };
static const Actor root = { .uid = 0, .class = &usage_unlimited };

static Usage used(Manager *m) {
        return usage_get(m, UID);
}

static bool same_usage(Usage a, Usage b) {
        return memcmp(&a, &b, sizeof(a)) == 0;
}

/* A refusal: QuotaExceeded (or the code given) naming the words, nothing charged, nothing made. */
static void expect_refused(Manager *m, int r, const GmemError *e, GmemErrorCode code, const char *word,
                           Usage before, const char *what) {
        EXPECT(r < 0 && e->code == code, "%s is refused with %s (got %s: %s)", what, gmem_error_code_to_string(code),
               gmem_error_code_to_string(e->code), e->message);
        EXPECT(!word || strstr(e->message, word), "the refusal of %s names %s: %s", what, word, e->message);
        EXPECT(same_usage(used(m), before), "the refusal of %s charges nothing", what);
}

static void test_create_region_limits(void) {
        Manager *m = NULL;
        GmemError e = GMEM_ERROR_INIT;
        Region *a = NULL, *b = NULL, *x = NULL;
        Usage before;
        int r;

        EXPECT(manager_new(NULL, &m) == 0, "a manager can be made");

        /* The class's rules, which the D-Bus handler used to check. */
        before = used(m);
        r = create_region(m, &(RegionParams) { .name = "big", .size = 2 * MiB + 4096 }, &caller, &x, &e);
        expect_refused(m, r, &e, GMEM_ERROR_QUOTA_EXCEEDED, "largest region class 'tight' may create", before,
                       "a region one page over max_region_size");
        e = (GmemError) GMEM_ERROR_INIT;
        r = create_region(m, &(RegionParams) { .name = "sec", .size = MiB, .backend = BACKEND_SECRET }, &caller, &x, &e);
        expect_refused(m, r, &e, GMEM_ERROR_ACCESS_DENIED, "may not use backend 'secret'", before,
                       "a region on a backend the class may not use");
        EXPECT(x == NULL && hashmap_size(m->regions) == 0, "refused regions are not made");

        /* Bytes: 2 MiB (at max_region_size) + 1 MiB is exactly 3 MiB. */
        e = (GmemError) GMEM_ERROR_INIT;
        EXPECT(create_region(m, &(RegionParams) { .name = "a", .size = 2 * MiB }, &caller, &a, &e) == 0,
               "a region at max_region_size is made: %s", e.message);
        before = used(m);
        r = create_region(m, &(RegionParams) { .name = "b", .size = MiB + 4096 }, &caller, &x, &e);
        expect_refused(m, r, &e, GMEM_ERROR_QUOTA_EXCEEDED, "'bytes'", before, "a region one page past the bytes quota");
        EXPECT(strstr(e.message, "limit 3145728") && strstr(e.message, "in use 2097152") &&
               strstr(e.message, "asked for 1052672") && strstr(e.message, "uid 1000"),
               "the message gives the limit, the use, the request and the uid: %s", e.message);
        e = (GmemError) GMEM_ERROR_INIT;
        EXPECT(create_region(m, &(RegionParams) { .name = "b", .size = MiB }, &caller, &b, &e) == 0,
               "a region that fills the bytes quota exactly is made: %s", e.message);

        /* Regions: two made, the third is over whatever its size. */
        before = used(m);
        e = (GmemError) GMEM_ERROR_INIT;
        r = create_region(m, &(RegionParams) { .name = "c", .size = 4096 }, &caller, &x, &e);
        expect_refused(m, r, &e, GMEM_ERROR_QUOTA_EXCEEDED, "'regions'", before, "a third region");
        EXPECT(before.amount[QUOTA_REGIONS] == 2 && before.amount[QUOTA_BYTES] == 3 * MiB,
               "uid %u holds 2 regions and 3 MiB", UID);

        /* A refused create that fails after the reservation (bad name) gives the reservation back. */
        EXPECT(region_destroy(b, NULL) == 0, "a region can be destroyed");
        before = used(m);
        e = (GmemError) GMEM_ERROR_INIT;
        r = create_region(m, &(RegionParams) { .name = "no/pe", .size = 4096 }, &caller, &x, &e);
        expect_refused(m, r, &e, GMEM_ERROR_INVALID_NAME, NULL, before, "a region with a bad name");
        e = (GmemError) GMEM_ERROR_INIT;
        r = create_region(m, &(RegionParams) { .name = "a", .size = 4096 }, &caller, &x, &e);
        expect_refused(m, r, &e, GMEM_ERROR_REGION_EXISTS, NULL, before, "a region whose name is taken");

        /* Another uid counts apart; a caller in no class makes nothing. */
        e = (GmemError) GMEM_ERROR_INIT;
        EXPECT(create_region(m, &(RegionParams) { .name = "other", .size = 2 * MiB },
                             &(const Actor) { .uid = UID + 1, .class = &tight }, &x, &e) == 0,
               "another uid has its own quotas: %s", e.message);
        e = (GmemError) GMEM_ERROR_INIT;
        r = create_region(m, &(RegionParams) { .name = "nobody", .size = 4096 }, &(const Actor) { .uid = 4242 }, &x, &e);
        EXPECT(r < 0 && e.code == GMEM_ERROR_ACCESS_DENIED && !manager_get_region(m, "nobody") &&
               usage_get(m, 4242).amount[QUOTA_REGIONS] == 0, "a caller in no class may not create regions: %s",
               e.message);

        EXPECT(region_destroy(a, NULL) == 0 && region_destroy(x, NULL) == 0, "the regions can be destroyed");
        EXPECT(hashmap_size(m->usage) == 0, "destroying every region releases every charge");
        manager_free(m);
}

static void test_register_vm_limits(void) {
        Manager *m = NULL;
        GmemError e = GMEM_ERROR_INIT;
        Vm *a = NULL, *b = NULL, *x = NULL;
        Usage before;
        int r;

        EXPECT(manager_new(NULL, &m) == 0, "a manager can be made");
        EXPECT(register_vm(m, &(VmParams) { .name = "a" }, &caller, &a, &e) == 0, "a first VM registers");
        EXPECT(register_vm(m, &(VmParams) { .name = "b" }, &caller, &b, &e) == 0, "a second VM fills the quota");
        before = used(m);
        r = register_vm(m, &(VmParams) { .name = "c" }, &caller, &x, &e);
        expect_refused(m, r, &e, GMEM_ERROR_QUOTA_EXCEEDED, "'vms'", before, "a third VM");
        EXPECT(!manager_get_vm(m, "c"), "the refused VM is not registered");

        EXPECT(vm_unregister(b, NULL) == 0, "a VM can be unregistered");
        before = used(m);
        e = (GmemError) GMEM_ERROR_INIT;
        r = register_vm(m, &(VmParams) { .name = "x", .has_leader_pid = true, .leader_pid = 0 }, &caller, &x, &e);
        expect_refused(m, r, &e, GMEM_ERROR_INVALID_ARGUMENT, "leader_pid", before, "a VM with a bad leader");
        e = (GmemError) GMEM_ERROR_INIT;
        r = register_vm(m, &(VmParams) { .name = "a" }, &caller, &x, &e);
        expect_refused(m, r, &e, GMEM_ERROR_VM_EXISTS, NULL, before, "a VM whose name is taken");
        e = (GmemError) GMEM_ERROR_INIT;
        r = register_vm(m, &(VmParams) { .name = "n" }, &(const Actor) { .uid = UID }, &x, &e);
        expect_refused(m, r, &e, GMEM_ERROR_ACCESS_DENIED, "no class", before, "a VM from a caller in no class");

        EXPECT(vm_unregister(a, NULL) == 0 && hashmap_size(m->usage) == 0, "unregistering releases every charge");
        manager_free(m);
}

static void test_attach_limits(void) {
        Manager *m = NULL;
        GmemError e = GMEM_ERROR_INIT;
        Region *r1 = NULL, *r2 = NULL;
        Vm *a = NULL, *b = NULL;
        View *v = NULL, *x = NULL;
        bool existing = false;
        Usage before;
        int r;

        EXPECT(manager_new(NULL, &m) == 0, "a manager can be made");
        EXPECT(create_region(m, &(RegionParams) { .name = "r1", .size = MiB }, &root, &r1, &e) == 0 &&
               create_region(m, &(RegionParams) { .name = "r2", .size = MiB }, &root, &r2, &e) == 0 &&
               register_vm(m, &(VmParams) { .name = "a" }, &root, &a, &e) == 0 &&
               register_vm(m, &(VmParams) { .name = "b" }, &root, &b, &e) == 0, "root makes the objects: %s", e.message);

        EXPECT(attach_view(a, r1, &(ViewParams) { .access = VIEW_ACCESS_RW }, &caller, &v, NULL, &e) == 0 &&
               attach_view(a, r2, &(ViewParams) { .access = VIEW_ACCESS_RO }, &caller, &x, NULL, &e) == 0 &&
               attach_view(b, r1, &(ViewParams) { .access = VIEW_ACCESS_RO }, &caller, &x, NULL, &e) == 0,
               "three views fill the quota: %s", e.message);
        before = used(m);
        EXPECT(attach_view(a, r1, &(ViewParams) { .access = VIEW_ACCESS_RW }, &caller, &x, &existing, &e) == 0 &&
               x == v && existing && same_usage(used(m), before),
               "asking again for the same view at the limit returns it and costs nothing");
        r = attach_view(b, r2, &(ViewParams) { .access = VIEW_ACCESS_RO }, &caller, &x, NULL, &e);
        expect_refused(m, r, &e, GMEM_ERROR_QUOTA_EXCEEDED, "'views'", before, "a fourth view");
        EXPECT(!view_lookup(b, r2), "the refused view is not made");

        /* A refusal after the reservation gives it back. */
        EXPECT(view_detach(x = view_lookup(b, r1), NULL) == 0, "a view can be detached");
        before = used(m);
        e = (GmemError) GMEM_ERROR_INIT;
        r = attach_view(b, r2, &(ViewParams) { .access = VIEW_ACCESS_RO, .has_offset = true, .offset = 1 }, &caller,
                        &x, NULL, &e);
        expect_refused(m, r, &e, GMEM_ERROR_INVALID_RANGE, NULL, before, "a view with a bad window");
        e = (GmemError) GMEM_ERROR_INIT;
        r = attach_view(b, r2, &(ViewParams) { .access = VIEW_ACCESS_RO }, &(const Actor) { .uid = UID }, &x, NULL, &e);
        expect_refused(m, r, &e, GMEM_ERROR_ACCESS_DENIED, "no class", before, "a view for a caller in no class");

        manager_free(m);
}

static void test_begin_migration_limits(void) {
        Manager *m = NULL;
        GmemError e = GMEM_ERROR_INIT;
        Region *r1 = NULL, *r2 = NULL;
        Vm *a = NULL, *b = NULL, *c = NULL;
        Migration *mig = NULL;
        View *x = NULL;
        Usage before;
        int r;

        EXPECT(manager_new(NULL, &m) == 0, "a manager can be made");
        EXPECT(create_region(m, &(RegionParams) { .name = "r1", .size = MiB }, &root, &r1, &e) == 0 &&
               create_region(m, &(RegionParams) { .name = "r2", .size = MiB }, &root, &r2, &e) == 0 &&
               register_vm(m, &(VmParams) { .name = "a" }, &root, &a, &e) == 0 &&
               register_vm(m, &(VmParams) { .name = "b" }, &root, &b, &e) == 0 &&
               register_vm(m, &(VmParams) { .name = "c" }, &root, &c, &e) == 0, "root makes the objects: %s", e.message);
        EXPECT(attach_view(a, r1, &(ViewParams) { .access = VIEW_ACCESS_RW }, &root, &x, NULL, &e) == 0 &&
               attach_view(a, r2, &(ViewParams) { .access = VIEW_ACCESS_RW }, &root, &x, NULL, &e) == 0,
               "root gives a two views");
        /* The caller holds 2 of its 3 views: a migration needing 2 more is over by one. */
        EXPECT(attach_view(c, r1, &(ViewParams) { .access = VIEW_ACCESS_RO }, &caller, &x, NULL, &e) == 0 &&
               attach_view(c, r2, &(ViewParams) { .access = VIEW_ACCESS_RO }, &caller, &x, NULL, &e) == 0,
               "the caller holds two views");
        before = used(m);
        r = begin_migration(a, b, &caller, &mig, &e);
        expect_refused(m, r, &e, GMEM_ERROR_QUOTA_EXCEEDED, "asked for 2", before,
                       "a migration needing 2 views with 1 left");
        EXPECT(hashmap_size(b->views) == 0 && hashmap_size(m->migrations) == 0 && !a->migration,
               "the refused migration leaves no view and no migration");

        EXPECT(view_detach(view_lookup(c, r2), NULL) == 0, "the caller frees one view");
        e = (GmemError) GMEM_ERROR_INIT;
        EXPECT(begin_migration(a, b, &caller, &mig, &e) == 0 && used(m).amount[QUOTA_VIEWS] == 3,
               "a migration that fills the views quota exactly begins and charges both views: %s", e.message);
        EXPECT(migration_abort(mig, &e) == 0 && used(m).amount[QUOTA_VIEWS] == 1, "aborting gives both back");
        before = used(m);
        e = (GmemError) GMEM_ERROR_INIT;
        r = begin_migration(a, a, &caller, &mig, &e);
        expect_refused(m, r, &e, GMEM_ERROR_INVALID_ARGUMENT, NULL, before, "a migration to itself");
        e = (GmemError) GMEM_ERROR_INIT;
        r = begin_migration(a, b, &(const Actor) { .uid = UID }, &mig, &e);
        expect_refused(m, r, &e, GMEM_ERROR_ACCESS_DENIED, "no class", before, "a migration by a caller in no class");
        manager_free(m);
}

/* Restoring goes through the same reservation, under no limits: what existed is counted, never refused. */
static void test_restore_is_charged(void) {
        Manager *m = NULL;
        GmemError e = GMEM_ERROR_INIT;
        Region *reg = NULL;
        Vm *vm = NULL;
        View *v = NULL;
        int fd;

        EXPECT(manager_new(NULL, &m) == 0, "a manager can be made");
        fd = stored_memfd("old", 8 * MiB);
        EXPECT(fd >= 0, "a memfd stands in for a stored region");
        EXPECT(region_adopt(m, &(RegionParams) { .name = "old", .backend = BACKEND_MEMFD },
                            &ACTOR_UNLIMITED(UID), 7, 4096, fd, &reg, &e) == 0,
               "a region larger than any quota of uid %u is restored: %s", UID, e.message);
        EXPECT(register_vm(m, &(VmParams) { .name = "v", .id = 3 }, &ACTOR_UNLIMITED(UID), &vm, &e) == 0,
               "its VM is restored");
        fd = fcntl(reg->br.fd, F_DUPFD_CLOEXEC, 3);
        EXPECT(view_adopt(vm, reg, &(ViewAdopt) { .id = 9, .access = VIEW_ACCESS_RW, .length = 8 * MiB,
                                                  .state = VIEW_STATE_ACTIVE, .fd = fd },
                          &ACTOR_UNLIMITED(UID), &v, &e) == 0, "its view is restored: %s", e.message);
        Usage u = used(m);
        EXPECT(u.amount[QUOTA_BYTES] == 8 * MiB && u.amount[QUOTA_REGIONS] == 1 && u.amount[QUOTA_VMS] == 1 &&
               u.amount[QUOTA_VIEWS] == 1, "what was restored is charged to its creator");
        EXPECT(reg->creator == UID && vm->creator == UID && v->creator == UID, "and remembers its creator");

        /* Now the tight class counts it: uid 1000 is over its bytes quota and may make no more regions. */
        Region *x = NULL;
        e = (GmemError) GMEM_ERROR_INIT;
        int r = create_region(m, &(RegionParams) { .name = "more", .size = 4096 }, &caller, &x, &e);
        expect_refused(m, r, &e, GMEM_ERROR_QUOTA_EXCEEDED, "'bytes'", u, "a new region over restored bytes");
        manager_free(m);
}

static void test_charge_pieces(void) {
        Manager *m = NULL;
        GmemError e = GMEM_ERROR_INIT;
        UsageCharge c = {}, piece = {};

        EXPECT(manager_new(NULL, &m) == 0, "a manager can be made");
        EXPECT(usage_reserve(m, &caller, &(Usage) { .amount = { [QUOTA_VIEWS] = 3 } }, &c, &e) == 0,
               "three views can be reserved at once");
        EXPECT(used(m).amount[QUOTA_VIEWS] == 3, "the reservation is charged at once");
        usage_charge_split(&c, QUOTA_VIEWS, 1, &piece);
        EXPECT(piece.amount[QUOTA_VIEWS] == 1 && c.amount[QUOTA_VIEWS] == 2 && piece.uid == UID,
               "a piece of a reservation is split off");
        usage_charge_release(&piece);
        EXPECT(used(m).amount[QUOTA_VIEWS] == 2 && piece.manager == NULL, "releasing a piece gives back its share");
        usage_charge_release(&piece);
        EXPECT(used(m).amount[QUOTA_VIEWS] == 2, "releasing an empty charge changes nothing");
        UsageCharge t = usage_charge_take(&c);
        EXPECT(c.manager == NULL && t.amount[QUOTA_VIEWS] == 2, "taking a charge leaves the source empty");
        usage_charge_release(&t);
        EXPECT(hashmap_size(m->usage) == 0, "all given back, the uid holds nothing");

        e = (GmemError) GMEM_ERROR_INIT;
        EXPECT(usage_reserve(m, &root, &(Usage) { .amount = { [QUOTA_BYTES] = UINT64_MAX - 5 } }, &c, &e) == 0,
               "an unlimited class may reserve 2^64-6 bytes");
        e = (GmemError) GMEM_ERROR_INIT;
        UsageCharge d = {};
        EXPECT(usage_reserve(m, &root, &(Usage) { .amount = { [QUOTA_BYTES] = 10 } }, &d, &e) == 0 &&
               d.amount[QUOTA_BYTES] == 5 && usage_get(m, 0).amount[QUOTA_BYTES] == UINT64_MAX,
               "without a limit the count stops at 2^64-1 and the charge records what was added");
        usage_charge_release(&d);
        EXPECT(usage_get(m, 0).amount[QUOTA_BYTES] == UINT64_MAX - 5, "releasing it gives back exactly that");
        usage_charge_release(&c);
        EXPECT(hashmap_size(m->usage) == 0, "and the uid holds nothing again");

        PolicyClass wide = tight;
        wide.quota[QUOTA_BYTES] = UINT64_MAX - 1;
        EXPECT(usage_reserve(m, &(const Actor) { .uid = UID, .class = &wide },
                             &(Usage) { .amount = { [QUOTA_BYTES] = UINT64_MAX - 100 } }, &c, &e) == 0,
               "a limited class reserves up to its limit");
        e = (GmemError) GMEM_ERROR_INIT;
        EXPECT(usage_reserve(m, &(const Actor) { .uid = UID, .class = &wide },
                             &(Usage) { .amount = { [QUOTA_BYTES] = 200 } }, &d, &e) < 0 &&
               e.code == GMEM_ERROR_QUOTA_EXCEEDED && d.manager == NULL,
               "and a sum that would wrap 2^64 is over any limit");
        usage_charge_release(&c);
        manager_free(m);
}

/* Making something takes a reservation made for it: there is no other way to charge, and no way around it. */
static void test_no_making_without_reserving(void) {
        Manager *m = NULL;
        GmemError e = GMEM_ERROR_INIT;
        UsageCharge none = {}, wrong = {};
        Region *reg = NULL;
        Vm *vm = NULL, *b = NULL;
        View *v = NULL;
        Migration *mig = NULL;

        EXPECT(manager_new(NULL, &m) == 0, "a manager can be made");
        EXPECT(region_create(m, &(RegionParams) { .name = "r", .size = MiB }, &none, &reg, &e) < 0 &&
               e.code == GMEM_ERROR_INVALID_ARGUMENT && !manager_get_region(m, "r"),
               "a region without a reservation is refused: %s", e.message);
        e = (GmemError) GMEM_ERROR_INIT;
        EXPECT(vm_register(m, &(VmParams) { .name = "a" }, &none, &vm, &e) < 0 && !manager_get_vm(m, "a"),
               "a VM without a reservation is refused");
        EXPECT(usage_reserve(m, &caller, &(Usage) { .amount = { [QUOTA_VMS] = 1 } }, &wrong, &e) == 0,
               "a VM can be reserved");
        e = (GmemError) GMEM_ERROR_INIT;
        EXPECT(region_create(m, &(RegionParams) { .name = "r", .size = MiB }, &wrong, &reg, &e) < 0 &&
               wrong.manager == NULL && same_usage(used(m), (Usage) {}),
               "a VM's reservation does not make a region, and is given back: %s", e.message);

        EXPECT(create_region(m, &(RegionParams) { .name = "r", .size = MiB }, &root, &reg, &e) == 0 &&
               register_vm(m, &(VmParams) { .name = "a" }, &root, &vm, &e) == 0 &&
               register_vm(m, &(VmParams) { .name = "b" }, &root, &b, &e) == 0, "root makes a region and VMs");
        e = (GmemError) GMEM_ERROR_INIT;
        EXPECT(view_attach(vm, reg, &(ViewParams) { .access = VIEW_ACCESS_RW }, &none, &v, NULL, &e) < 0 &&
               !view_lookup(vm, reg), "a view without a reservation is refused: %s", e.message);
        EXPECT(attach_view(vm, reg, &(ViewParams) { .access = VIEW_ACCESS_RW }, &root, &v, NULL, &e) == 0,
               "with one it is made");
        e = (GmemError) GMEM_ERROR_INIT;
        EXPECT(migration_begin(vm, b, &none, &mig, &e) < 0 && !view_lookup(b, reg) && !vm->migration,
               "a migration without a reservation is refused: %s", e.message);
        manager_free(m);
}

/* The order of refusals is the one the D-Bus handlers always had: rules, quotas, then the request itself. */
static void test_precedence(void) {
        Manager *m = NULL;
        GmemError e = GMEM_ERROR_INIT;
        Region *x = NULL;
        int r;

        EXPECT(manager_new(NULL, &m) == 0, "a manager can be made");
        EXPECT(create_region(m, &(RegionParams) { .name = "a", .size = MiB }, &root, &x, &e) == 0,
               "root makes a region");
        e = (GmemError) GMEM_ERROR_INIT;
        r = create_region(m, &(RegionParams) { .name = "huge", .size = UINT64_MAX - 4095 }, &root, &x, &e);
        EXPECT(r < 0 && e.code == GMEM_ERROR_INVALID_SIZE && strstr(e.message, "the limit is 70368744177664"),
               "a class without a bytes quota is told a region of 2^64-4096 bytes is too large: %s", e.message);
        EXPECT(usage_get(m, 0).amount[QUOTA_BYTES] == MiB, "and nothing stays charged for it");
        e = (GmemError) GMEM_ERROR_INIT;
        r = create_region(m, &(RegionParams) { .name = "no/pe", .size = UINT64_MAX - 4095 }, &root, &x, &e);
        EXPECT(r < 0 && e.code == GMEM_ERROR_INVALID_NAME, "a bad name is told first, as it always was: %s",
               e.message);
        e = (GmemError) GMEM_ERROR_INIT;
        r = create_region(m, &(RegionParams) { .name = "no/pe", .size = 3 * MiB + 4096 }, &caller, &x, &e);
        EXPECT(r < 0 && e.code == GMEM_ERROR_QUOTA_EXCEEDED, "a limited class hears of its rules before a bad name");
        manager_free(m);
}

/* A store that keeps at most `room` more entries, as daemon/store/ answers manager_admit(). */
static unsigned room;
static unsigned asked;

static int fake_admit(Manager *m, unsigned n, GmemError *e) {
        asked = n;
        if (n <= room)
                return 0;
        return gmem_error_set(e, GMEM_ERROR_QUOTA_EXCEEDED, "the fake store has room for %u", room);
}

static const ManagerHooks fake_store = { .admit = fake_admit };

/* A reservation also asks the store for room for what the call makes, and a refusal charges nothing. */
static void test_reservations_ask_the_store(void) {
        Manager *m = NULL;
        GmemError e = GMEM_ERROR_INIT;
        UsageCharge c = {};
        Region *reg = NULL;
        Vm *a = NULL, *b = NULL;
        View *v = NULL;

        EXPECT(manager_new(NULL, &m) == 0, "a manager can be made");
        m->store_hooks = &fake_store;
        room = 0;
        EXPECT(region_reserve(m, &(RegionParams) { .name = "r", .size = MiB }, &caller, &c, &e) < 0 &&
               e.code == GMEM_ERROR_QUOTA_EXCEEDED && asked == 1 && c.manager == NULL && hashmap_size(m->usage) == 0,
               "a region needs one entry; with no room it is refused and nothing is charged: %s", e.message);
        e = (GmemError) GMEM_ERROR_INIT;
        EXPECT(vm_reserve(m, &caller, &c, &e) < 0 && asked == 1 && hashmap_size(m->usage) == 0,
               "a VM needs one entry");

        room = 100;
        EXPECT(create_region(m, &(RegionParams) { .name = "r", .size = MiB }, &root, &reg, &e) == 0 &&
               register_vm(m, &(VmParams) { .name = "a" }, &root, &a, &e) == 0 &&
               register_vm(m, &(VmParams) { .name = "b" }, &root, &b, &e) == 0, "with room, objects are made");
        EXPECT(view_reserve(a, reg, &caller, &c, &e) == 0 && asked == 1, "a new view needs one entry");
        EXPECT(view_attach(a, reg, &(ViewParams) { .access = VIEW_ACCESS_RW }, &c, &v, NULL, &e) == 0,
               "and is made");
        asked = 99;
        EXPECT(view_reserve(a, reg, &caller, &c, &e) == 0 && asked == 99, "asking again for it needs none");
        usage_charge_release(&c);
        room = 2;
        e = (GmemError) GMEM_ERROR_INIT;
        EXPECT(migration_reserve(a, &caller, &c, &e) < 0 && asked == 3 && used(m).amount[QUOTA_VIEWS] == 1,
               "a migration of one view needs three entries (its file, its pending record, the migration's "
               "record); refused, it charges nothing");
        m->store_hooks = NULL;
        manager_free(m);
}

int main(void) {
        RUN(test_create_region_limits);
        RUN(test_register_vm_limits);
        RUN(test_attach_limits);
        RUN(test_begin_migration_limits);
        RUN(test_restore_is_charged);
        RUN(test_charge_pieces);
        RUN(test_no_making_without_reserving);
        RUN(test_precedence);
        RUN(test_reservations_ask_the_store);
        return 0;
}
