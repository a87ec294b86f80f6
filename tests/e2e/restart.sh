#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# restart.sh — gmemd killed with SIGKILL and started again ($GMEMD_RESTART)
# on a host without a service manager (tests/vm/run-e2e), on the backend
# gmemd uses by default there ($GMEM_E2E_BACKEND).
#
# What gmemd(8) says for that case (PERSISTENCE): with no $NOTIFY_SOCKET
# there is no fd store, gmemd says so once at start, Persistence is
# "none", and a crash loses the memfd regions no VM holds open. So after
# the restart gmemd knows no region and no VM, the names are free again,
# while a hypervisor that held its view keeps that memory and its content
# (the kernel frees it with the last fd): the new region of the same name
# is other memory.
#
# KMOD: with the kmod backend the regions live in gmem.ko's registry, not
# in gmemd, and come back after the restart: the kmod branches below say
# what is expected then (the region listed again with its size, its
# content readable through a new view). They run once kmod is gmemd's
# default here ($GMEM_E2E_BACKEND = kmod).
#
# TAP on stdout, each command's output as "# " comments.

set -u

N=0
FAILED=0
# The hypervisor's files, where uid qemu may write.
HV=${GMEM_E2E_TMP:?run me under tests/vm/run-e2e}/hv
OUT=$(mktemp)
trap 'rm -f "$OUT"; touch "$HV/go" 2>/dev/null' EXIT

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

# wait_for FILE: true once FILE exists, false after 30 s.
wait_for() {
        t=300
        while [ ! -e "$1" ]; do
                t=$((t - 1))
                [ "$t" -gt 0 ] || return 1
                sleep 0.1
        done
}

BACKEND=${GMEM_E2E_BACKEND:?run me under tests/vm/run-e2e}
: "${GMEMD_RESTART:?run me under tests/vm/run-e2e}"
NOTICE='No service manager to keep file descriptors'
mkdir -p "$HV" && chown qemu:qemu "$HV"

# --- before -------------------------------------------------------------------
says "without a service manager Persistence is none" "Persistence: none" gmemctl status
says "gmemd said at start that a crash loses memfd regions" "$NOTICE" cat "$GMEM_E2E_GMEMD_LOG"
step "region ram (8 MiB, held by a hypervisor) and region spare (4 MiB, held by nobody)" \
        sh -c 'gmemctl create-region ram 8M && gmemctl create-region spare 4M'
step "VM a (uid qemu)" gmemctl register-vm a --uid=qemu
step "spare holds data, and no fd of it is open outside gmemd" \
        sh -c 'gmemctl register-vm scribe && gmemctl attach scribe spare --exec -- gmem-mmap write 0 "spare data" && gmemctl unregister-vm scribe'
# VM a's hypervisor (uid qemu) writes, then waits with its view open until
# told to read again.
# shellcheck disable=SC2016 # the hypervisor's shell expands them
gmemctl attach a ram --exec -- as-user qemu sh -c '
        gmem-mmap write 0 "before the restart" >"$1/write.out" 2>&1 || exit 1
        touch "$1/ready"
        while [ ! -e "$1/go" ]; do sleep 0.1; done
        gmem-mmap read 0 18 >"$1/after.out" 2>&1
        touch "$1/done"' hypervisor "$HV" >"$HV/hypervisor.out" 2>&1 &
wait_for "$HV/ready"
cat "$HV/write.out" "$HV/hypervisor.out" >"$OUT" 2>&1
[ -e "$HV/ready" ]
result $? "VM a's hypervisor wrote through its view and holds it open"
OLD=$(pidof gmemd)

# --- the restart --------------------------------------------------------------
step "\$GMEMD_RESTART kills gmemd with SIGKILL and starts it again" "$GMEMD_RESTART"
NEW=$(pidof gmemd)
echo "gmemd was pid $OLD, is pid ${NEW:-none}" >"$OUT"
[ -n "$NEW" ] && [ "$NEW" != "$OLD" ] && [ ! -d "/proc/$OLD" ]
result $? "a new gmemd process answers, the old one is gone"
says "the new gmemd runs as user gmemd" "Uid:	990	990	990	990" grep '^Uid:' "/proc/$NEW/status"
says "the new gmemd runs under its seccomp filter" "Seccomp:	2" grep '^Seccomp:' "/proc/$NEW/status"
says "it said again that a crash loses memfd regions" "$NOTICE" \
        sh -c "sed -n '/^==== gmemd [0-9]* (pid $NEW)/,\$p' \"\$GMEM_E2E_GMEMD_LOG\""
says "Persistence is still none" "Persistence: none" gmemctl status

# --- after ----------------------------------------------------------------------
case $BACKEND in
kmod)
        # KMOD: the regions are gmem.ko's and come back; VMs and views were
        # gmemd's only.
        says "kmod: ram is back, 8 MiB" "ram 8M" gmemctl --no-legend list-regions
        says "kmod: spare is back" "spare" gmemctl --no-legend list-regions
        says "kmod: no VM is registered" "VMs: 0" gmemctl status
        step "kmod: register VM b" gmemctl register-vm b
        says "kmod: ram's content is there through a new view" "'before the restart'" \
                gmemctl attach b ram --ro --exec -- gmem-mmap read 0 18
        says "kmod: spare's content is there too" "'spare data'" \
                gmemctl attach b spare --ro --exec -- gmem-mmap read 0 10
        step "kmod: clean up" sh -c 'gmemctl unregister-vm b && gmemctl destroy-region ram spare'
        ;;
*)
        # gmemd(8): without a service manager the regions are lost to gmemd.
        says "no region is known any more" "Regions: 0" gmemctl status
        says "no VM is known any more" "VMs: 0" gmemctl status
        says "list-regions is empty" "No regions." gmemctl list-regions
        refused "VM a's view cannot be fetched again" gmemctl get-fd a ram --exec -- gmem-mmap info
        step "the name ram is free: a new region ram" gmemctl create-region ram 8M
        step "VM b" gmemctl register-vm b
        says "the new ram is other memory: zeros where the old one had data" "<18 zero bytes>" \
                gmemctl attach b ram --exec -- gmem-mmap read 0 18
        step "write into the new ram" gmemctl get-fd b ram --exec -- gmem-mmap write 0 "after the restart!"
        step "clean up" sh -c 'gmemctl unregister-vm b && gmemctl destroy-region ram'
        ;;
esac

# The hypervisor's view outlived gmemd: its memory is the old region's,
# whatever gmemd knows now.
touch "$HV/go"
wait_for "$HV/done"
cat "$HV/after.out" >"$OUT" 2>&1
grep -qF "'before the restart'" "$HV/after.out"
result $? "VM a's hypervisor still reads its data through the view it held"
wait

says "nothing is left" "Regions: 0" gmemctl status

echo "1..$N"
[ "$FAILED" -eq 0 ]
