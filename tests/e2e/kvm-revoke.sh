#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# kvm-revoke.sh — a running KVM guest loses its memory when gmemd takes it
# away, in a guest set up as a real host with a KVM of its own
# (GMEM_E2E_KVM=1 tests/vm/run-e2e SERIES tests/e2e/kvm-revoke.sh).
#
# The hypervisors are tiny-vmm (tests/kvm) in loop mode, run as the
# unprivileged users qemu (VM a) and qemu2 (VM b) on the fd gmemctl --exec
# hands them: the guest sums its memory over and over and reports each sum
# on an I/O port; the VMM checks every sum and, when KVM_RUN fails, says
# how (errno, kvm_run.exit_reason, rip) and tries again.
#
#   1. VM a's guest writes the pattern into a kmod region and keeps running
#      on it; a third, read-only view holds the pattern.
#   2. gmemctl migrate a b --no-commit --exec starts VM b's VMM on its
#      pending view: its guest cannot run (KVM_RUN fails) while a's goes on.
#   3. gmemctl commit-migration: a's next guest access fails and keeps
#      failing, and a's VMM is not killed; b's guest resumes and its sums
#      are the pattern's, the data a's guest wrote.
#   4. set-attributes private on the first page: b's guest stops the same
#      way as a's did; shared again: it goes on, the sums still the
#      pattern's (the content survived the round trip).
#
# What KVM did is printed as "# kvm-revoke: ..." lines. TAP on stdout.
# Skips (77) where gmemd's backend is not kmod or the guest has no KVM,
# but a missing KVM fails with GMEM_TEST_REQUIRE_DEPS=1.

set -u

N=0
FAILED=0
SEED=0x5eed1234
LENGTH=16K
REGION=kvmr
INTERVAL=100
WAIT=120                # seconds for any one event: TCG inside TCG is slow
WORK=${GMEM_E2E_TMP:-$(mktemp -d)}
OUT=$WORK/out
A_LOG=$WORK/vmm-a.log
B_LOG=$WORK/vmm-b.log
A_PID=
B_PID=

cleanup() {
        for p in $A_PID $B_PID; do
                kill -KILL "$p" 2>/dev/null
        done
}
trap cleanup EXIT

skip_all() {
        if [ "${GMEM_TEST_REQUIRE_DEPS:-0}" = 1 ]; then
                echo "kvm-revoke: cannot run: $*"
                echo "kvm-revoke: a failure, not a skip: GMEM_TEST_REQUIRE_DEPS=1 says it should have been there"
                exit 1
        fi
        echo "GMEM-SKIP kvm-revoke: $*"
        exit 77
}

result() {
        N=$((N + 1))
        if [ "$1" -eq 0 ]; then
                echo "ok $N - $2"
        else
                echo "not ok $N - $2"
                FAILED=$((FAILED + 1))
        fi
        [ ! -s "$OUT" ] || sed 's/^/# /' "$OUT"
        : >"$OUT"
}

# step DESC CMD...: CMD succeeds.
step() {
        local desc=$1 rc
        shift
        "$@" >"$OUT" 2>&1
        rc=$?
        [ "$rc" -eq 0 ] || echo "(exit $rc)" >>"$OUT"
        result "$rc" "$desc"
}

# lines LOG: how many lines LOG has now (a mark for after).
lines() {
        wc -l <"$1"
}

# after LOG MARK: the lines of LOG after line MARK.
after() {
        tail -n "+$(($2 + 1))" "$1"
}

# wait_for LOG MARK REGEX: waits up to $WAIT s for a line matching REGEX
# after line MARK of LOG; prints it.
wait_for() {
        local log=$1 mark=$2 re=$3 t=$((WAIT * 10)) line
        while [ "$t" -gt 0 ]; do
                line=$(after "$log" "$mark" | grep -m1 -E -- "$re")
                if [ -n "$line" ]; then
                        echo "$line"
                        return 0
                fi
                sleep 0.1
                t=$((t - 1))
        done
        echo "(no line matching '$re' in ${log##*/} after line $mark within $WAIT s; its tail:)"
        tail -n 8 "$log"
        return 1
}

# last_round LOG: the number of the last round LOG reported (0: none).
last_round() {
        sed -n 's/^round: \([0-9]*\) .*/\1/p' "$1" | tail -n1 | grep . || echo 0
}

# vmm_alive PID LOG: the VMM runs (not killed, not exited).
vmm_alive() {
        if kill -0 "$1" 2>/dev/null; then
                echo "pid $1 is running"
                return 0
        fi
        echo "pid $1 is gone; its log:"
        tail -n 8 "$2"
        return 1
}

# stop_vmm PID LOG STATE: SIGTERM; the VMM exits 0 and says its guest was STATE.
stop_vmm() {
        local pid=$1 log=$2 state=$3 rc
        kill -TERM "$pid"
        wait "$pid"
        rc=$?
        grep -E '^(stopped|sigbus):' "$log"
        if [ "$rc" -ne 0 ]; then
                echo "(the VMM exited with status $rc)"
                return 1
        fi
        grep -q "^stopped: .*the guest was $state\$" "$log"
}

# fault_of LINE: "ERRNO exit_reason=WHAT" of a "loop-state: faulting ..." line.
fault_of() {
        echo "${1#loop-state: faulting }"
}

# ---- can it run here -----------------------------------------------------------

[ "${GMEM_E2E_BACKEND:-}" = kmod ] ||
        { echo "GMEM-SKIP kvm-revoke: gmemd's default backend is ${GMEM_E2E_BACKEND:-unknown}, not kmod: nothing is revoked in the kernel"; exit 77; }
[ "${GMEM_E2E_KVM:-}" = 1 ] ||
        skip_all "${GMEM_E2E_KVM_ERROR:-the guest has no KVM (run-e2e without GMEM_E2E_KVM=1)}"
if ! as-user qemu tiny-vmm probe >"$OUT" 2>&1; then
        why=$(sed -n 's/^tiny-vmm: //p' "$OUT" | tail -n1)
        skip_all "tiny-vmm probe as user qemu: ${why:-it failed}"
fi
: >"$OUT"

echo "kvm-revoke: kernel ${GMEM_E2E_KERNEL:-$(uname -r)}"

# ---- 1. VM a runs on the region --------------------------------------------------

step "create a kmod region" gmemctl --backend=kmod create-region "$REGION" 1M
step "register VM a (hypervisor uid qemu), VM b (qemu2) and VM c (root's)" \
        sh -c 'gmemctl register-vm a --uid=qemu && gmemctl register-vm b --uid=qemu2 && gmemctl register-vm c'

: >"$A_LOG"
# shellcheck disable=SC2016 # the inner shell expands $GMEM_FD
gmemctl attach a "$REGION" --exec -- sh -c 'exec as-user qemu tiny-vmm loop a "$0" --fd="$GMEM_FD" \
        --write-pattern --seed="$1" --length="$2" --interval="$3" --timeout=1200' \
        "$REGION" "$SEED" "$LENGTH" "$INTERVAL" >"$A_LOG" 2>&1 &
A_PID=$!
step "VM a's guest writes the pattern and runs on its view (tiny-vmm loop as qemu)" \
        wait_for "$A_LOG" 0 '^loop-state: running'
# shellcheck disable=SC2016
step "a third, read-only view holds the pattern a's guest wrote" \
        gmemctl attach c "$REGION" --ro --exec -- sh -c \
        'exec tiny-vmm check c "$0" --fd="$GMEM_FD" --seed="$1" --length="$2"' "$REGION" "$SEED" "$LENGTH"
mark=$(lines "$A_LOG")
step "VM a's guest keeps running (rounds go on)" wait_for "$A_LOG" "$mark" '^round: [0-9]+ sum=0x[0-9a-f]+ ok'

# ---- 2. the migration is prepared: b's view is pending -------------------------------

: >"$B_LOG"
# shellcheck disable=SC2016
gmemctl migrate a b --no-commit --exec -- sh -c 'exec as-user qemu2 tiny-vmm loop b "$0" --fd="$GMEM_FD" \
        --expect-pattern --seed="$1" --length="$2" --interval="$3" --timeout=1200' \
        "$REGION" "$SEED" "$LENGTH" "$INTERVAL" >"$B_LOG" 2>&1 &
B_PID=$!
step "VM b's guest cannot touch its pending view: KVM_RUN fails" wait_for "$B_LOG" 0 '^loop-state: faulting'
PENDING_FAULT=$(fault_of "$(grep -m1 '^loop-state: faulting' "$B_LOG")")
echo "# kvm-revoke: pending target: $(grep -m1 '^fault:' "$B_LOG")"
mark=$(lines "$A_LOG")
step "meanwhile VM a's guest runs on" wait_for "$A_LOG" "$mark" '^round: [0-9]+ sum=0x[0-9a-f]+ ok'
ID=$(gmemctl --no-legend list-migrations | awk '$2 == "a" && $3 == "b" && $4 == "prepared" { print $1 }')
[ -n "$ID" ] || echo "(no prepared migration from a to b in list-migrations)" >"$OUT"
result "$([ -n "$ID" ] && echo 0 || echo 1)" "the migration a -> b is prepared (id ${ID:-none})"

# ---- 3. commit: a loses its memory, b gets it ---------------------------------------

a_mark=$(lines "$A_LOG")
b_mark=$(lines "$B_LOG")
t0=$(date +%s.%N)
step "gmemctl commit-migration $ID" gmemctl commit-migration "${ID:-0}"
step "VM a's next guest access fails: KVM_RUN fails" wait_for "$A_LOG" "$a_mark" '^loop-state: faulting'
REVOKE_FAULT=$(fault_of "$(after "$A_LOG" "$a_mark" | grep -m1 '^loop-state: faulting')")
echo "# kvm-revoke: revoked source: $(after "$A_LOG" "$a_mark" | grep -m1 '^fault:')"
echo "# kvm-revoke: seen $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s after the commit began"
step "VM b's guest resumes on its view, now active" wait_for "$B_LOG" "$b_mark" '^resumed:'
b_mark2=$(lines "$B_LOG")
step "VM b's guest reads the pattern a's guest wrote (sums checked by b's VMM)" \
        wait_for "$B_LOG" "$b_mark2" '^round: [0-9]+ sum=0x[0-9a-f]+ ok'

a_round=$(last_round "$A_LOG")
a_mark=$(lines "$A_LOG")
sleep 3
{
        echo "last round before: $a_round, now: $(last_round "$A_LOG")"
        after "$A_LOG" "$a_mark"
        vmm_alive "$A_PID" "$A_LOG"
} >"$OUT" 2>&1
result "$([ "$(last_round "$A_LOG")" = "$a_round" ] && ! after "$A_LOG" "$a_mark" | grep -q '^round:' &&
        kill -0 "$A_PID" 2>/dev/null && echo 0 || echo 1)" \
        "VM a's guest stays stopped (no round in 3 s) and its VMM lives on, retrying KVM_RUN"
step "gmemctl list-vms: a's view revoked" sh -c "gmemctl list-vms | tee /dev/stderr | grep -q '^a .*$REGION:rw:revoked'"

# ---- 4. private and back: b's guest stops the same way, then goes on -----------------

b_mark=$(lines "$B_LOG")
step "set-attributes $REGION 0 4K private" gmemctl set-attributes "$REGION" 0 4K private
step "VM b's guest access to the private page fails" wait_for "$B_LOG" "$b_mark" '^loop-state: faulting'
PRIVATE_FAULT=$(fault_of "$(after "$B_LOG" "$b_mark" | grep -m1 '^loop-state: faulting')")
echo "# kvm-revoke: private page: $(after "$B_LOG" "$b_mark" | grep -m1 '^fault:')"
{
        echo "revoked source: $REVOKE_FAULT"
        echo "private page:   $PRIVATE_FAULT"
        echo "pending target: $PENDING_FAULT"
} >"$OUT"
result "$([ -n "$REVOKE_FAULT" ] && [ "$PRIVATE_FAULT" = "$REVOKE_FAULT" ] && echo 0 || echo 1)" \
        "KVM stops the guest the same way for a private page as for a revoked view"
b_mark=$(lines "$B_LOG")
step "set-attributes $REGION 0 4K shared" gmemctl set-attributes "$REGION" 0 4K shared
step "VM b's guest resumes once the page is shared again" wait_for "$B_LOG" "$b_mark" '^resumed:'
b_mark=$(lines "$B_LOG")
step "VM b's guest's sums are still the pattern's: the content survived" \
        wait_for "$B_LOG" "$b_mark" '^round: [0-9]+ sum=0x[0-9a-f]+ ok'

# ---- the end ---------------------------------------------------------------------------

step "VM b's VMM stops on SIGTERM with its guest running" stop_vmm "$B_PID" "$B_LOG" running
B_PID=
step "VM a's VMM stops on SIGTERM with its guest still faulting (no SIGBUS killed it)" \
        stop_vmm "$A_PID" "$A_LOG" faulting
A_PID=
step "unregister the VMs, destroy the region" \
        sh -c 'gmemctl unregister-vm a b c && gmemctl destroy-region "$0"' "$REGION"

echo "1..$N"
echo "kvm-revoke: $((N - FAILED)) of $N passed"
[ "$FAILED" -eq 0 ]
