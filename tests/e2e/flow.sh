#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# flow.sh — gmemd's main job end to end, in a guest set up as a real host
# (tests/vm/run-e2e): gmem.ko loaded, the system bus with the shipped
# policy, gmemd as user gmemd with its system call filter, on the backend
# gmemd uses by default there ($GMEM_E2E_BACKEND: kmod under run-e2e).
#
# The orchestrator is root with gmemctl; the hypervisors are
# tools/gmem-mmap run as the unprivileged users qemu (VMs a and c) and
# qemu2 (VM b), each with the fd gmemctl --exec hands it: a region, VM a
# writes through a read-write view, VM b reads through a read-only one and
# cannot write, a discard zeroes the range in both, a migration from a to
# c (BeginMigration, then CommitMigration) moves the view without copying,
# detach, destroy. On the way: the bus policy and gmemd's policy decide
# who may call, and a hypervisor may fetch its own VM's view. TAP on
# stdout, each command's output as "# " comments.

set -u

N=0
FAILED=0
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT

result() {
        N=$((N + 1))
        if [ "$1" -eq 0 ]; then
                echo "ok $N - $2"
        else
                echo "not ok $N - $2"
                FAILED=$((FAILED + 1))
        fi
        sed 's/^/# /' "$OUT"
}

# step DESC CMD...: CMD succeeds.
step() {
        desc=$1
        shift
        "$@" >"$OUT" 2>&1
        rc=$?
        [ "$rc" -eq 0 ] || echo "(exit $rc)" >>"$OUT"
        result "$rc" "$desc"
}

# refused DESC CMD...: CMD fails.
refused() {
        desc=$1
        shift
        if "$@" >"$OUT" 2>&1; then
                echo "(succeeded)" >>"$OUT"
                result 1 "$desc"
        else
                result 0 "$desc"
        fi
}

# says DESC TEXT CMD...: CMD succeeds and its output has the line part TEXT.
says() {
        desc=$1 text=$2
        shift 2
        "$@" >"$OUT" 2>&1
        rc=$?
        if [ "$rc" -ne 0 ]; then
                echo "(exit $rc)" >>"$OUT"
        elif ! grep -qF -- "$text" "$OUT"; then
                echo "(no \"$text\" in the output)" >>"$OUT"
                rc=1
        fi
        result "$rc" "$desc"
}

# refused_with DESC TEXT CMD...: CMD fails and says TEXT.
refused_with() {
        desc=$1 text=$2
        shift 2
        if "$@" >"$OUT" 2>&1; then
                echo "(succeeded)" >>"$OUT"
                rc=1
        elif ! grep -qF -- "$text" "$OUT"; then
                echo "(no \"$text\" in the output)" >>"$OUT"
                rc=1
        else
                rc=0
        fi
        result "$rc" "$desc"
}

BACKEND=${GMEM_E2E_BACKEND:?run me under tests/vm/run-e2e}
# gmemd itself, the bus name's owner (pidof also finds its owner helper, gmemd-owner).
PID=$(busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
        GetConnectionUnixProcessID s org.gmemd.Broker1 | cut -d' ' -f2)

# --- the daemon as a host runs it ---------------------------------------------
says "gmemd runs as user gmemd" "Uid:	990	990	990	990" grep '^Uid:' "/proc/$PID/status"
says "gmemd runs under its seccomp filter" "Seccomp:	2" grep '^Seccomp:' "/proc/$PID/status"
says "gmemd has no capabilities" "CapPrm:	0000000000000000" grep '^CapPrm:' "/proc/$PID/status"
HELPER=$(pidof gmemd-owner)
says "its owner helper gmemd-owner runs as user gmemd" "Uid:	990	990	990	990" grep '^Uid:' "/proc/$HELPER/status"
says "and holds CAP_CHOWN alone" "CapEff:	0000000000000001" grep '^CapEff:' "/proc/$HELPER/status"
says "and an empty bounding set" "CapBnd:	0000000000000000" grep '^CapBnd:' "/proc/$HELPER/status"
says "DefaultBackend is $BACKEND" "DefaultBackend: $BACKEND" gmemctl status
says "/dev/gmem is root:gmem 0660" "crw-rw----" ls -l /dev/gmem

# --- who may call (units/org.gmemd.Broker1.conf, then gmemd's policy) ---------
refused_with "the bus refuses CreateRegion from a user in none of gmem's groups" "Rejected send message" \
        as-user nobody gmemctl create-region denied 4M
refused "gmemd's built-in policy refuses CreateRegion from a member of gmem" \
        as-user orchestrator gmemctl create-region denied 4M
step "a member of gmem-admin may create and destroy a region" \
        sh -c 'as-user admin gmemctl create-region by-admin 4M && as-user admin gmemctl destroy-region by-admin'

# --- a region, three VMs ------------------------------------------------------
step "gmemctl create-region r 1G --backend=kmod works, and so does destroying it" \
        sh -c 'gmemctl create-region r 1G --backend=kmod && gmemctl --no-legend list-regions | grep -q "^r .*1G.*kmod" &&
               gmemctl destroy-region r'
step "create region ram (16 MiB)" gmemctl create-region ram 16M
says "ram is made by the default backend, $BACKEND" "$BACKEND" gmemctl --no-legend list-regions
step "register VMs a and c (uid qemu) and b (uid qemu2)" \
        sh -c 'gmemctl register-vm a --uid=qemu && gmemctl register-vm b --uid=qemu2 && gmemctl register-vm c --uid=qemu'

# --- a writes through its read-write view, b reads through a read-only one ----
says "VM a's hypervisor (uid qemu) writes through its rw view" "wrote 'hello from a'" \
        gmemctl attach a ram --exec -- as-user qemu gmem-mmap write 1M "hello from a"
step "... and more at 2 MiB" \
        gmemctl get-fd a ram --exec -- as-user qemu gmem-mmap write 2M "state of a"
says "VM b gets a read-only view" "read-only" gmemctl attach b ram --ro --exec -- as-user qemu2 gmem-mmap info
says "VM b's hypervisor (uid qemu2) reads a's bytes through its ro view" "'hello from a'" \
        gmemctl get-fd b ram --exec -- as-user qemu2 gmem-mmap read 1M 12
says "a hypervisor fetches its own VM's view itself (GetFd as uid qemu2)" "'hello from a'" \
        as-user qemu2 gmemctl get-fd b ram --exec -- gmem-mmap read 1M 12
refused_with "qemu2 may not fetch VM a's view" "gmemctl:" \
        as-user qemu2 gmemctl get-fd a ram --exec -- gmem-mmap info

# --- b cannot write ------------------------------------------------------------
# try-write exits 0 when mmap(PROT_WRITE), pwrite() and a re-open O_RDWR
# through /proc/self/fd were all refused.
step "VM b cannot write through its ro view: mmap, pwrite and re-open all refused" \
        gmemctl get-fd b ram --exec -- as-user qemu2 gmem-mmap try-write 1M "b was here"
says "a still reads its own bytes" "'hello from a'" \
        gmemctl get-fd a ram --exec -- as-user qemu gmem-mmap read 1M 12

# --- discard zeroes the range in every view -----------------------------------
step "discard ram 1M 4K" gmemctl discard ram 1M 4K
says "a reads zeros there" "<12 zero bytes>" gmemctl get-fd a ram --exec -- as-user qemu gmem-mmap read 1M 12
says "b reads zeros there" "<12 zero bytes>" gmemctl get-fd b ram --exec -- as-user qemu2 gmem-mmap read 1M 12
says "outside the range the data stays" "'state of a'" \
        gmemctl get-fd b ram --exec -- as-user qemu2 gmem-mmap read 2M 10

# --- migrate a to c: BeginMigration, then CommitMigration ----------------------
says "BeginMigration a -> c prepares the migration" "prepared" gmemctl migrate a c --no-commit
says "c's view is pending until the commit" "ram:rw:pending" gmemctl --no-legend list-vms
ID=$(gmemctl --no-legend list-migrations | awk '$2 == "a" && $3 == "c" && $4 == "prepared" { print $1 }')
step "CommitMigration ($ID)" gmemctl commit-migration "${ID:-none}"
says "the migration is committed" "committed" gmemctl --no-legend list-migrations
says "a's view is revoked" "ram:rw:revoked" gmemctl --no-legend list-vms
says "VM c (uid qemu) reads a's state through its new view: nothing was copied" "'state of a'" \
        gmemctl get-fd c ram --exec -- as-user qemu gmem-mmap read 2M 10
step "VM c writes through its view" gmemctl get-fd c ram --exec -- as-user qemu gmem-mmap write 3M "c runs"
says "b sees c's write" "'c runs'" gmemctl get-fd b ram --exec -- as-user qemu2 gmem-mmap read 3M 6
refused_with "a's view is no longer handed out" "revoked" gmemctl get-fd a ram --exec -- gmem-mmap info

# --- detach, destroy -----------------------------------------------------------
refused "a region with views is busy" gmemctl destroy-region ram
step "detach b and c" sh -c 'gmemctl detach b ram && gmemctl detach c ram'
says "of ram's views only a's revoked one is left" "a:rw:revoked" \
        sh -c "gmemctl --no-legend list-regions | awk '\$1 == \"ram\" && \$NF == \"a:rw:revoked\"'"
step "destroy ram" gmemctl destroy-region ram
says "no region is left" "No regions." gmemctl list-regions
step "unregister a, b and c" gmemctl unregister-vm a b c
says "nothing is left" "Regions: 0" gmemctl status
says "and no memory held" "AllocatedBytes: 0B (0)" gmemctl status

echo "1..$N"
[ "$FAILED" -eq 0 ]
