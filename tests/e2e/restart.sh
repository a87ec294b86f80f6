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
# in gmemd, and gmem.ko keeps gmemd's records (Persistence "kernel"): after
# the restart the regions, VMs and views are back with their content, and
# the view a hypervisor held is the one gmemd hands out again. The kmod
# branches below say so; they run when kmod is gmemd's default here
# ($GMEM_E2E_BACKEND = kmod, as tests/vm/run-e2e starts it).
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

# gmemd itself, the bus name's owner (pidof also finds its owner helper, gmemd-owner).
gmemd_pid() {
        busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
                GetConnectionUnixProcessID s org.gmemd.Broker1 2>/dev/null | cut -d' ' -f2
}

BACKEND=${GMEM_E2E_BACKEND:?run me under tests/vm/run-e2e}
: "${GMEMD_RESTART:?run me under tests/vm/run-e2e}"
NOTICE="No service manager keeps gmemd's file descriptors"
# What the warning says a crash forgets: everything, or with gmem.ko all but kmod regions' state.
FORGETS='it forgets every region, VM, view and migration'
[ "$BACKEND" = kmod ] && FORGETS='gmem.ko keeps kmod regions, their views, VMs and migrations'
PERSISTENCE=none
[ "$BACKEND" = kmod ] && PERSISTENCE=kernel
mkdir -p "$HV" && chown qemu:qemu "$HV"

# --- before -------------------------------------------------------------------
says "without a service manager Persistence is $PERSISTENCE" "Persistence: $PERSISTENCE" gmemctl status
says "gmemd warned at start that it has no service manager" "$NOTICE" cat "$GMEM_E2E_GMEMD_LOG"
says "and what a crash would forget" "$FORGETS" cat "$GMEM_E2E_GMEMD_LOG"
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
step "VMs m1 and m2, m1 with a view of spare" \
        sh -c 'gmemctl register-vm m1 && gmemctl register-vm m2 && gmemctl attach m1 spare'
gmemctl migrate m1 m2 --no-commit >"$OUT" 2>&1
MIG=$(gmemctl --no-legend list-migrations | awk '$2 == "m1" { print $1 }')
echo "the migration's id: '$MIG'" >>"$OUT"
[ -n "$MIG" ]
result $? "a migration from m1 to m2 is prepared and not committed"
OLD=$(gmemd_pid)

# --- the restart --------------------------------------------------------------
step "\$GMEMD_RESTART kills gmemd with SIGKILL and starts it again" "$GMEMD_RESTART"
NEW=$(gmemd_pid)
echo "gmemd was pid $OLD, is pid ${NEW:-none}" >"$OUT"
[ -n "$NEW" ] && [ "$NEW" != "$OLD" ] && [ ! -d "/proc/$OLD" ]
result $? "a new gmemd process answers, the old one is gone"
says "the new gmemd runs as user gmemd" "Uid:	990	990	990	990" grep '^Uid:' "/proc/$NEW/status"
says "the new gmemd runs under its seccomp filter" "Seccomp:	2" grep '^Seccomp:' "/proc/$NEW/status"
says "it warned again that it has no service manager" "$NOTICE" \
        sh -c "sed -n '/^==== gmemd [0-9]* (pid $NEW)/,\$p' \"\$GMEM_E2E_GMEMD_LOG\""
says "Persistence is still $PERSISTENCE" "Persistence: $PERSISTENCE" gmemctl status

# --- after ----------------------------------------------------------------------
case $BACKEND in
kmod)
        # KMOD: the regions are gmem.ko's, and so are gmemd's records of the
        # VMs and views: all come back.
        says "kmod: gmemd says it restored from gmem.ko" "from gmem.ko (2 regions, 3 VMs)" \
                sh -c "sed -n '/^==== gmemd [0-9]* (pid $NEW)/,\$p' \"\$GMEM_E2E_GMEMD_LOG\""
        says "kmod: ram is back, 8 MiB, with VM a's read-write view" "ram   8M 4K kmod - a:rw" gmemctl --no-legend list-regions
        says "kmod: spare is back" "spare" gmemctl --no-legend list-regions
        says "kmod: VMs a, m1 and m2 are back, and the prepared migration" "VMs: 3" gmemctl status
        says "kmod: the migration from m1 to m2 is listed" "m1" gmemctl --no-legend list-migrations
        refused "kmod: m2's view is still pending: it does not read" \
                gmemctl get-fd m2 spare --exec -- gmem-mmap read 0 10
        step "kmod: the migration commits after the restart" gmemctl commit-migration "$MIG"
        says "kmod: m2's view reads spare's data now" "'spare data'" \
                gmemctl get-fd m2 spare --exec -- gmem-mmap read 0 10
        says "kmod: with its view of ram" "ram" gmemctl --no-legend list-vms
        says "kmod: VM a's view hands out the same memory" "'before the restart'" \
                gmemctl get-fd a ram --exec -- as-user qemu gmem-mmap read 0 18
        step "kmod: write through the view gmemd hands out now" \
                gmemctl get-fd a ram --exec -- as-user qemu gmem-mmap write 32 "written after the restart"
        step "kmod: register VM b" gmemctl register-vm b
        says "kmod: spare's content is there through a new view" "'spare data'" \
                gmemctl attach b spare --ro --exec -- gmem-mmap read 0 10
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

if [ "$BACKEND" = kmod ]; then
        # The hypervisor's old file and the one gmemd handed out are one view.
        says "kmod: the write made after the restart is in the view the hypervisor held" \
                "'written after the restart'" gmemctl get-fd a ram --exec -- gmem-mmap read 32 25
        step "kmod: detach takes the view back" gmemctl detach a ram
        step "kmod: clean up" sh -c 'gmemctl unregister-vm a b m1 m2 && gmemctl destroy-region ram spare'

        # Leaders come back by pid and start time: one that lives on is
        # watched again, one that exited while gmemd was down has its VM's
        # views released at start.
        sleep 600 & L1=$!
        sleep 600 & L2=$!
        step "kmod: VMs l1 and l2 with leaders $L1 and $L2, each with a view of region led" sh -c "
                gmemctl create-region led 4M && gmemctl register-vm l1 --leader-pid=$L1 &&
                gmemctl register-vm l2 --leader-pid=$L2 && gmemctl attach l1 led && gmemctl attach l2 led --ro"
        step "kmod: gmemd is killed, then leader $L2 exits while gmemd is down" \
                sh -c "kill -KILL \$(pidof gmemd) && sleep 1 && kill $L2"
        wait "$L2" 2>/dev/null
        step "kmod: gmemd starts again" "$GMEMD_RESTART"
        VMS="gmemctl --no-legend list-vms | tr -s ' '"
        says "kmod: l1 is back with its leader and its view" "l1 $L1 - led:rw" sh -c "$VMS"
        says "kmod: l2 is back without its view: its leader exited" "l2 - - -" sh -c "$VMS"
        NEW=$(gmemd_pid)
        says "kmod: gmemd said why" "The leader $L2 of VM 'l2' exited while gmemd was down" \
                sh -c "sed -n '/^==== gmemd [0-9]* (pid $NEW)/,\$p' \"\$GMEM_E2E_GMEMD_LOG\""
        kill "$L1"
        wait "$L1" 2>/dev/null
        t=50
        while [ "$t" -gt 0 ] && gmemctl --no-legend list-vms | grep -q "led:rw"; do
                sleep 0.1
                t=$((t - 1))
        done
        says "kmod: when leader $L1 exits, gmemd watching it again releases l1's view" "l1 - - -" sh -c "$VMS"
        step "kmod: clean up the leaders' VMs" sh -c 'gmemctl unregister-vm l1 l2 && gmemctl destroy-region led'

        # A region gmemd made and never recorded (a crash in between),
        # played by making it as user gmemd on the device: gmemd says so.
        step "kmod: region gmemd.orphan made on the device as user gmemd" \
                as-user gmemd python3 "$GMEM_E2E_DIR/kregion.py" create gmemd.orphan 4096
        step "kmod: gmemd starts again" "$GMEMD_RESTART"
        NEW=$(gmemd_pid)
        says "kmod: gmemd reports the region it has no record of" "holds region 'gmemd.orphan' of 4096 bytes" \
                sh -c "sed -n '/^==== gmemd [0-9]* (pid $NEW)/,\$p' \"\$GMEM_E2E_GMEMD_LOG\""
        says "kmod: and does not list it" "No regions." gmemctl list-regions
        step "kmod: destroy it" as-user gmemd python3 "$GMEM_E2E_DIR/kregion.py" destroy gmemd.orphan
fi

says "nothing is left" "Regions: 0" gmemctl status

echo "1..$N"
[ "$FAILED" -eq 0 ]
