#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""make-dbus-seeds.py — writes the seed corpus of fuzz-dbus: call programs
in the harness's input encoding (see fuzz-dbus.c) for the flows a client
uses — create, register, attach, get-fd, migrate and commit or abort,
discard and allocate, properties and introspection — and for the limits
around them (names of 64 and 65 characters, sizes at 2^46, quotas). The
fuzzer finds its way from these to everything else much faster than from
random bytes.

Usage: make-dbus-seeds.py DIRECTORY   (writes seed-*.bin files there)

The encoding mirrors the harness: when its method table or its value tables
change, update the indices below and run this again."""

import os
import sys

# Indices into fuzz-dbus.c's methods[].
M = {name: i for i, name in enumerate([
    "CreateRegion", "DestroyRegion", "GetRegion", "ListRegions", "RegisterVm", "UnregisterVm", "GetVm", "ListVms",
    "Attach", "Detach", "GetFd", "BeginMigration", "CommitMigration", "AbortMigration", "ListMigrations",
    "Discard", "Allocate", "SetMemoryAttributes", "Reload",
    "Region.Destroy", "Region.Discard", "Region.Allocate", "Region.SetMemoryAttributes",
    "Vm.Unregister", "Vm.Attach", "Vm.Detach", "Vm.GetFd",
    "Migration.Commit", "Migration.Abort",
    "Get", "GetAll", "Set", "Introspect", "GetManagedObjects", "Ping", "AdoptRegion",
    # events, after the methods
    "LeaderExit", "PolicyFile", "BusAnswers", "CallerLeaves"])}

# names_common[]: a b c vm-0 r.1; names_special[] starts at 0xb0 (index = byte % 21).
NAMES = {"a": 0, "b": 1, "c": 2, "vm-0": 3, "r.1": 4}
SPECIAL = {"": 0, "-": 1, "..": 3, "a/b": 7, "n63": 13, "n64": 14, "n65": 15}
POLICY = {"builtin": 0, "quota": 1, "some-verbs": 2, "nobody": 3, "operator": 4}
BOUNDARY = {"0": 0, "1": 1, "4095": 2, "4096": 3, "2M": 6, "16M": 8, "2^46-4096": 10, "2^46": 11,
            "2^46+4096": 12, "2^63": 15, "2^64-4096": 17, "2^64-1": 19}


def name(n):
    if n in NAMES:
        return bytes([NAMES[n]])
    # 0xb0 + i with (0xb0 + i) % 21 == index
    for b in range(0xb0, 0xf0):
        if b % 21 == SPECIAL[n]:
            return bytes([b])
    raise KeyError(n)


def pages(k):
    return bytes([0, k])                  # gen_u64 case 0: k * 4096


def boundary(v):
    return bytes([4, BOUNDARY[v]])        # gen_u64 case 4


def table(i):
    return bytes([0, i])                  # gen_string: from the kind's table


def call(method, *args, shape=0, flags=0, caller=None, answer=None):
    """A call; in bus mode (caller given) from that caller, and if gmemd asks
    the bus for the caller's credentials during it, the bus's answer."""
    head = bytes([M[method], shape | flags << 3, 0]) + (bytes([caller]) if caller is not None else b"")
    return head + b"".join(args) + (bytes([answer]) if answer is not None else b"")


# Bus mode: the first byte's high bit. Callers :1.100 (uid 0), :1.101 (uid 1000),
# :1.102 (uid 4242), :1.103 (uid 0); the bus's answers to GetConnectionCredentials.
BUS = 0x80
CREDS, CREDS_EXTRA, LATER, ERROR, NO_UID, UID_STRING, TOO_MANY_GIDS = 0, 9, 10, 12, 13, 14, 15


def opts(*entries):
    return bytes([len(entries)]) + b"".join(entries)


def opt(key_index, value=b"", how=0):
    return bytes([key_index, how]) + value


# Option key indices per method (own keys) and value helpers.
def backend(i):
    return opt(0, bytes([0, i]))          # backend: memfd hugetlb secret MEMFD ...


def populate(on=True):
    return opt(2, how=1 if on else 0)


def owner(n):
    return opt(4, name(n))


def leader_pid(sel):
    return opt(0, bytes([sel]))           # 0, 1, self, INT32_MAX, ...


def uid(sel):
    return opt(1, bytes([sel]))           # 0, 1, 1000, 65534, UINT32_MAX, ...


def window(offset_pages, length_pages):
    return opt(0, pages(offset_pages)), opt(1, pages(length_pages))


def allocate(on=True):
    return opt(2, how=1 if on else 0)


RO, RW = table(0), table(1)


def create(n, k=255, *o):
    return call("CreateRegion", name(n), pages(k), opts(*o))


def register(n, *o):
    return call("RegisterVm", name(n), opts(*o))


def attach(vm, region, access=RW, *o):
    return call("Attach", name(vm), name(region), access, opts(*o))


def mig(i):
    return bytes([i])                     # /org/gmemd/Broker1/migration/<i % 5>


LATEST_MIGRATION = bytes([0x60])          # the one begun last


def any_path(kind, rest=b""):
    return bytes([kind]) + rest           # 0 manager, 1 region, 2 vm, 3 migration, 4-5 special


SEEDS = {
    "flow": [POLICY["builtin"],
             create("a"), register("vm-0"), attach("vm-0", "a"), call("GetFd", name("vm-0"), name("a")),
             call("ListRegions"), call("ListVms"), call("Detach", name("vm-0"), name("a")),
             call("DestroyRegion", name("a")), call("UnregisterVm", name("vm-0"))],
    "migrate-commit": [POLICY["builtin"],
                       create("a"), create("b", 16), register("vm-0"), register("c"),
                       attach("vm-0", "a"), attach("vm-0", "b", RO),
                       call("BeginMigration", name("vm-0"), name("c"), opts()), call("ListMigrations"),
                       call("CommitMigration", mig(1)), call("GetFd", name("vm-0"), name("a")),
                       call("GetFd", name("c"), name("b")), call("DestroyRegion", name("a")),
                       call("UnregisterVm", name("vm-0")), call("ListMigrations")],
    "migrate-abort": [POLICY["builtin"],
                      create("a"), register("vm-0"), register("c"), attach("vm-0", "a"),
                      call("BeginMigration", name("vm-0"), name("c"), opts()),
                      call("Attach", name("c"), name("a"), RW, opts()),
                      call("Detach", name("vm-0"), name("a")), call("UnregisterVm", name("c")),
                      call("Migration.Abort", mig(1)), call("Migration.Commit", mig(1)),
                      call("BeginMigration", name("vm-0"), name("c"), opts()), call("Migration.Commit", mig(2))],
    "region-object": [POLICY["builtin"],
                      create("r.1", 64), call("Region.Discard", name("r.1"), pages(0), pages(16)),
                      call("Region.Allocate", name("r.1"), pages(16), pages(16)),
                      call("Region.SetMemoryAttributes", name("r.1"), pages(0), pages(1), table(0)),
                      call("Allocate", name("r.1"), pages(0), pages(64)),
                      call("Discard", name("r.1"), pages(8), boundary("2^64-4096")),
                      call("SetMemoryAttributes", name("r.1"), pages(0), pages(1), table(1)),
                      call("Region.Destroy", name("r.1"))],
    "vm-object": [POLICY["builtin"],
                  create("a"), register("b", uid(0), leader_pid(2)),
                  call("Vm.Attach", name("b"), name("a"), RO, opts(*window(16, 32))),
                  call("Vm.GetFd", name("b"), name("a")),
                  call("Vm.Attach", name("b"), name("a"), RW, opts()),
                  call("Vm.Detach", name("b"), name("a")), call("Vm.Unregister", name("b"))],
    "properties": [POLICY["builtin"],
                   create("a"), register("vm-0"), attach("vm-0", "a"), register("c"),
                   call("BeginMigration", name("vm-0"), name("c"), opts()),
                   call("GetAll", any_path(0), table(0)), call("GetAll", any_path(1, name("a")), table(1)),
                   call("GetAll", any_path(2, name("vm-0")), table(2)), call("GetAll", any_path(3, mig(1)), table(3)),
                   call("Get", any_path(1, name("a")), table(1), table(12)),
                   call("Set", any_path(0), table(0), table(3), b"\x00\x01\x00\x05"),
                   call("Introspect", any_path(0)), call("Introspect", any_path(4, b"\x00")),
                   call("Introspect", any_path(4, b"\x03")),
                   call("GetManagedObjects", any_path(0)), call("Ping", any_path(0))],
    "limits": [POLICY["builtin"],
               call("CreateRegion", name("n64"), boundary("2^46"), opts()),
               call("CreateRegion", name("n65"), pages(1), opts()),
               call("CreateRegion", name("b"), boundary("2^46+4096"), opts()),
               call("CreateRegion", name("c"), boundary("4095"), opts()),
               call("CreateRegion", name(""), boundary("2^64-1"), opts(populate())),
               call("CreateRegion", name("a/b"), boundary("0"), opts()),
               call("CreateRegion", name("a"), pages(4), opts(populate(), backend(2))),
               call("CreateRegion", name("vm-0"), boundary("2M"), opts(backend(1))),
               call("CreateRegion", name("r.1"), pages(4), opts(backend(5), opt(0x10, boundary("2M")))),
               call("GetRegion", name("n64")), call("ListRegions"),
               call("Allocate", name("n64"), boundary("2^46-4096"), boundary("4096")),
               call("Discard", name("n64"), boundary("2^63"), boundary("2^63"))],
    "owner": [POLICY["builtin"],
              register("vm-0", leader_pid(1), uid(2)), create("a", 32, owner("vm-0")),
              create("b", 32, owner("c")), attach("vm-0", "a", RW), attach("vm-0", "a", RO),
              attach("vm-0", "a", RW, allocate()), attach("c", "a", RO, allocate()),
              call("GetVm", name("vm-0")), call("UnregisterVm", name("vm-0")), call("ListRegions")],
    "quota": [POLICY["quota"],
              create("a", 255), create("b", 255), create("c", 255), create("vm-0", 255),
              call("CreateRegion", name("r.1"), boundary("16M"), opts()),
              register("a"), register("b"), register("c"),
              attach("a", "a"), attach("a", "b"), attach("b", "c"), attach("b", "a"),
              call("BeginMigration", name("a"), name("b"), opts())],
    "operator": [POLICY["operator"],
                 create("a"), register("vm-0", uid(0)), register("c", uid(2)), attach("vm-0", "a"), attach("c", "a"),
                 call("GetFd", name("vm-0"), name("a")), call("GetFd", name("c"), name("a")),
                 call("Reload"), call("BeginMigration", name("vm-0"), name("c"), opts())],
    "nobody": [POLICY["nobody"],
               create("a"), call("ListRegions"), register("vm-0"), call("GetFd", name("vm-0"), name("a")),
               call("Reload")],
    "some-verbs": [POLICY["some-verbs"],
                   create("a"), create("b", 1, backend(2)), register("vm-0"), attach("vm-0", "a"),
                   call("GetFd", name("vm-0"), name("a")), call("Discard", name("a"), pages(0), pages(1)),
                   call("DestroyRegion", name("a"))],
    "events": [POLICY["builtin"],
               create("a"), create("b"), register("vm-0", leader_pid(2)), register("c", leader_pid(1)),
               attach("vm-0", "a"), attach("vm-0", "b", RO), call("LeaderExit", name("c")),
               call("BeginMigration", name("vm-0"), name("c"), opts()), call("LeaderExit", name("vm-0")),
               call("ListMigrations"), call("GetFd", name("c"), name("a")), attach("vm-0", "a"),
               call("LeaderExit", name("vm-0")), call("GetVm", name("vm-0")),
               call("PolicyFile", bytes([1])), call("Reload"), create("c", 255), create("r.1", 255),
               call("PolicyFile", bytes([3])), call("Reload"), call("ListRegions")],
    "migrate-back": [POLICY["builtin"],
                     create("a"), create("b"), register("vm-0"), register("c"), attach("vm-0", "a"),
                     attach("vm-0", "b", RO, *window(8, 8)),
                     call("BeginMigration", name("vm-0"), name("c"), opts()), call("CommitMigration", mig(1)),
                     call("BeginMigration", name("c"), name("vm-0"), opts()), call("Migration.Commit", mig(2)),
                     call("BeginMigration", name("vm-0"), name("c"), opts()), call("Migration.Commit", mig(3)),
                     attach("vm-0", "a"), call("GetFd", name("vm-0"), name("a")),
                     call("Detach", name("vm-0"), name("b")), call("DestroyRegion", name("b")),
                     call("Vm.Unregister", name("c")), call("DestroyRegion", name("a"))],
    "migrate-busy": [POLICY["builtin"],
                     create("a"), create("b"), register("vm-0"), register("c"), register("b"),
                     attach("vm-0", "a"), attach("c", "a"), attach("b", "b"),
                     call("BeginMigration", name("vm-0"), name("c"), opts()),
                     call("BeginMigration", name("b"), name("vm-0"), opts()),
                     call("Detach", name("c"), name("a")),
                     call("BeginMigration", name("vm-0"), name("c"), opts()),
                     call("BeginMigration", name("b"), name("c"), opts()),
                     call("BeginMigration", name("vm-0"), name("b"), opts()),
                     call("LeaderExit", name("c")), call("AbortMigration", mig(1)), call("Attach", name("c"), name("b"),
                                                                                          RO, opts())],
    "grants": [POLICY["builtin"],
               create("a"), register("vm-0", uid(2)), register("c", uid(2)), register("b", uid(3)),
               attach("vm-0", "a", RO), attach("c", "a", RW), attach("b", "a", RO),
               call("Detach", name("c"), name("a")), call("BeginMigration", name("vm-0"), name("c"), opts()),
               call("CommitMigration", mig(1)), call("DestroyRegion", name("a")), call("Detach", name("c"), name("a")),
               call("Detach", name("b"), name("a")), call("DestroyRegion", name("a")), call("ListRegions")],
    "reload": [POLICY["builtin"],
               create("a"), register("vm-0"), attach("vm-0", "a"),
               call("PolicyFile", bytes([5])), call("Reload"), call("PolicyFile", bytes([6])), call("Reload"),
               call("PolicyFile", bytes([1])), call("Reload"), create("b", 255), attach("vm-0", "b"),
               call("PolicyFile", bytes([3])), call("Reload"), call("GetRegion", name("a")),
               call("GetVm", name("vm-0")), call("GetFd", name("vm-0"), name("a")), call("Reload")],
    # More migrations finish than the manager keeps (64): the oldest are dropped.
    "prune": [POLICY["builtin"], create("a"), register("vm-0"), register("c"), attach("vm-0", "a")] +
             [call("BeginMigration", name("vm-0"), name("c"), opts()) + call("AbortMigration", LATEST_MIGRATION)
              for i in range(1, 72)] + [call("ListMigrations")],
    "bus-flow": [BUS | POLICY["builtin"],
                 call("CreateRegion", name("a"), pages(16), opts(), caller=0, answer=CREDS),
                 call("RegisterVm", name("vm-0"), opts(uid(2)), caller=0),
                 call("Attach", name("vm-0"), name("a"), RW, opts(), caller=0),
                 call("GetFd", name("vm-0"), name("a"), caller=1, answer=CREDS),
                 call("CreateRegion", name("b"), pages(1), opts(), caller=1),
                 call("ListRegions", caller=2, answer=CREDS_EXTRA),
                 call("GetFd", name("vm-0"), name("a"), caller=2),
                 call("Detach", name("vm-0"), name("a"), caller=3, answer=CREDS),
                 call("DestroyRegion", name("a"), caller=0)],
    # While gmemd waits for a caller's credentials, that caller's calls wait too, and run in order.
    # A direct connection hangs up (a caller leaving, in direct mode) with views handed out, and a new one
    # carries on: the model is the same, and the new connection's fds are counted afresh.
    "direct-hangup": [POLICY["builtin"],
                      create("a"), register("vm-0"), attach("vm-0", "a"),
                      call("GetFd", name("vm-0"), name("a")), call("GetFd", name("vm-0"), name("a"), flags=6),
                      call("CallerLeaves") + b"\x00",
                      call("GetFd", name("vm-0"), name("a")), call("ListRegions"),
                      call("Detach", name("vm-0"), name("a")), call("CallerLeaves") + b"\x00",
                      call("ListVms"), call("GetManagedObjects", any_path(0))],
    # A direct caller stops reading (CallerLeaves with the high bit, in direct mode): fds pile up in its
    # socket until gmemd refuses more with LimitsExceeded; the next event lets it read them all.
    "direct-deaf": [POLICY["builtin"],
                    create("a"), register("vm-0"), attach("vm-0", "a"), call("CallerLeaves") + b"\x80"]
                   + [call("GetFd", name("vm-0"), name("a"))] * 24
                   + [call("PolicyFile") + b"\x00", call("GetFd", name("vm-0"), name("a"))],
    "bus-parking": [BUS | POLICY["builtin"],
                    call("CreateRegion", name("a"), pages(16), opts(), caller=0, answer=LATER),
                    call("RegisterVm", name("vm-0"), opts(), caller=0),
                    call("ListRegions", caller=0),
                    call("ListRegions", caller=3, answer=LATER),
                    call("BusAnswers", caller=0) + b"\x00",
                    call("Attach", name("vm-0"), name("a"), RW, opts(), caller=0),
                    call("GetFd", name("vm-0"), name("a"), caller=0),
                    call("BusAnswers", caller=0) + b"\xff",
                    call("ListVms", caller=3, answer=CREDS),
                    call("ListVms", caller=1, answer=LATER),
                    call("CallerLeaves", caller=0) + b"\x01",
                    call("ListVms", caller=1, answer=CREDS),
                    call("CallerLeaves", caller=0) + b"\x00",
                    call("ListRegions", caller=0, answer=CREDS)],
    "bus-refusals": [BUS | POLICY["some-verbs"],
                     call("ListRegions", caller=0, answer=NO_UID),
                     call("ListRegions", caller=0, answer=UID_STRING),
                     call("ListRegions", caller=0, answer=TOO_MANY_GIDS),
                     call("ListRegions", caller=0, answer=ERROR),
                     call("CreateRegion", name("a"), pages(1), opts(), caller=2, answer=CREDS),
                     call("RegisterVm", name("c"), opts(), caller=2),
                     call("Attach", name("c"), name("a"), RO, opts(), caller=2),
                     call("CreateRegion", name("b"), pages(1), opts(), caller=0, answer=CREDS),
                     call("DestroyRegion", name("a"), caller=2)],
    "bus-quota": [BUS | POLICY["quota"],
                  create("a", 255) [:3] + b"\x00" + create("a", 255)[3:] + bytes([CREDS]),
                  call("CreateRegion", name("b"), pages(255), opts(), caller=3, answer=CREDS),
                  call("CreateRegion", name("c"), pages(255), opts(), caller=3),
                  call("CreateRegion", name("r.1"), pages(255), opts(), caller=0),
                  call("RegisterVm", name("vm-0"), opts(), caller=1, answer=CREDS),
                  call("ListRegions", caller=1)],
    "bad-options": [POLICY["builtin"],
                    call("CreateRegion", name("a"), pages(1), opts(opt(0xc0), opt(0x01, b"\x00\x00", how=0xd0))),
                    call("CreateRegion", name("a"), pages(1), opts(populate(), populate())),
                    call("RegisterVm", name("vm-0"), opts(uid(4), leader_pid(5))),
                    call("RegisterVm", name("vm-0"), opts(leader_pid(0))),
                    call("RegisterVm", name("vm-0"), opts(opt(0x00, b"\x00\x00", how=0xff))),
                    call("BeginMigration", name("vm-0"), name("vm-0"), opts(opt(0x03, b"\x00"))),
                    call("Attach", name("vm-0"), name("a"), table(5), opts()),
                    call("CreateRegion", b"\x01\x00\x05", pages(1), opts(), shape=5),
                    call("ListVms", shape=0, flags=7), call("GetRegion", name("a"), flags=6),
                    call("Attach", name("vm-0"), name("a"), RW, flags=5), call("Ping", b"\x00", shape=7)],
}


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    os.makedirs(sys.argv[1], exist_ok=True)
    for seed, program in SEEDS.items():
        data = bytes([program[0]]) + b"".join(program[1:])
        with open(os.path.join(sys.argv[1], f"seed-{seed}.bin"), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
