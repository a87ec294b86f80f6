# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# guest-lib.sh — TAP for the scripts run-systemd runs in its guests
# (guest-test, guest-dkms, guest-trixie), sourced by each. One count of test
# points for all: guest-trixie sources guest-dkms and guest-test as parts of
# its own run (GUEST_PART=1), and they go on counting where it is; only the
# outermost script ends the TAP (guest_end), with the plan and the "done"
# line run-systemd waits for.

set -u
export LC_ALL=C
N=${N:-0}
FAILED=${FAILED:-0}

ok()     { N=$((N + 1)); echo "ok $N - $*"; }
not_ok() { N=$((N + 1)); FAILED=$((FAILED + 1)); echo "not ok $N - $*"; }
diag()   { sed 's/^/# /'; }
say()    { echo "# $*"; }
now()    { date +%s.%N | cut -c1-14; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
prop()   { systemctl show -P "$1" gmemd.service; }

# check DESCRIPTION CMD...: one test point, the command's output as diagnostics on failure.
check() {
        local desc=$1 out
        shift
        if out=$("$@" 2>&1); then
                ok "$desc"
        else
                not_ok "$desc"
                printf '%s\n' "$out" | diag
        fi
}

# same DESCRIPTION EXPECTED ACTUAL: files equal, a diff otherwise.
same() {
        if cmp -s "$2" "$3"; then
                ok "$1"
        else
                not_ok "$1"
                diff -u "$2" "$3" | diag
        fi
}

# logged DESCRIPTION LOG CMD...: one test point, the command's output kept
# in LOG, its tail as diagnostics on failure.
logged() {
        local desc=$1 log=$2
        shift 2
        if "$@" >"$log" 2>&1; then
                ok "$desc"
        else
                not_ok "$desc (exit $?)"
                tail -n 40 "$log" | diag
                return 1
        fi
}

# guest_end SUMMARY: the plan and the last line, unless this script is a
# part of another's run; the exit status says whether every check passed.
guest_end() {
        [ "${GUEST_PART:-0}" = 1 ] && return 0
        echo "1..$N"
        say "gmemd-systemd-test: done, $FAILED failed, $*"
        sync
        [ "$FAILED" -eq 0 ]
        exit
}
