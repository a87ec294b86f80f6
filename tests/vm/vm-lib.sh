# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# vm-lib.sh — what the scripts that boot a Debian cloud kernel under QEMU TCG
# with a busybox initramfs share (tests/vm/run-vm, tests/kvm/run-nested).
# Sourced; the caller sets VM_TAG (the prefix of its messages, e.g. "vm-6.1")
# first. Functions:
#
#   vm_skip REASON...       exit 77 with a "GMEM-SKIP VM_TAG: REASON" line;
#                           exit 1 instead with GMEM_TEST_REQUIRE_DEPS=1
#                           (what is missing was to be installed)
#   vm_die MESSAGE...       exit 1
#   vm_need_qemu            QEMU: $GMEM_QEMU or qemu-system-x86_64 on PATH
#   vm_need_busybox         BUSYBOX: a static /bin/busybox; cpio present
#   vm_workdir NAME         WORK: $GMEM_VM_WORKDIR or a temporary directory
#                           (removed at exit unless GMEM_VM_KEEP=1)
#   vm_busybox_root DIR APPLET...
#                           DIR with bin/busybox, the applets as links to it,
#                           and the usual mount points
#   vm_pack_initramfs DIR OUT
#   vm_boot KERNEL INITRD LOG SMP MEMORY_MB [APPEND]
#                           boots to poweroff (or $GMEM_VM_TIMEOUT seconds),
#                           the console (ttyS0) in LOG, QEMU options of the
#                           array VM_QEMU_EXTRA added (e.g. more -serial
#                           ports); sets VM_QEMU_RC and VM_SECS. A guest
#                           that shows no sign of life on the console
#                           $GMEM_VM_BOOT_GRACE seconds (default 90) after
#                           the firmware (hung before its init ran, nothing
#                           of the test started) is stopped and booted again,
#                           up to VM_BOOT_ATTEMPTS (3) boots in all within
#                           the timeout, saying so on stderr in a
#                           "GMEM-RETRY VM_TAG: ..." line, which tools/test
#                           lists (the last hung console in LOG.hung);
#                           VM_BOOT_HUNG=1 if every boot hung
#   vm_judge_console LOG    prints the TAP lines of the console, sets
#                           VM_PASSED, VM_FAILED, VM_SKIPPED and a
#                           "GMEM-SKIP VM_TAG/NAME: REASON" line for each
#                           skipped TAP test; returns 1 if the boot timed
#                           out, the kernel complained or the TAP plan does
#                           not match the results
#   vm_judge_boot LOG       the first half of that: writes LOG.txt (no CRs),
#                           returns 1 if the boot timed out or QEMU failed
#   vm_kernel_complained FILE
#                           true (and prints them) if FILE has a line of
#                           BUG:, WARNING:, Oops, a panic, a general
#                           protection fault or a Call Trace
#   vm_find_kernel SERIES   REL, KDIR, KERNEL: the newest release of SERIES
#                           with headers in /usr/src or in the trixie build
#                           root (buildroot.sh) and an image in the cache;
#                           skips when there is none
#   vm_build_module SRC KDIR DIR
#                           gmem.ko from a copy of SRC (kmod/) in DIR, built
#                           against KDIR with W=1 (in the build root when
#                           KDIR is there); a warning fails (vm_die)
#   vm_copy_libs ROOT FILE  every shared library FILE loads into
#                           ROOT/lib/x86_64-linux-gnu under the name it asks
#                           for, the dynamic loader where FILE expects it
#   vm_copy_program ROOT FILE [DIR]
#                           FILE into ROOT/DIR (default /bin), its libraries
#   vm_has_kvm_modules REL  true if the vm cache has REL's kvm modules
#                           (VM_KVM_MODULES: irqbypass, kvm, kvm-amd)
#   vm_add_kvm ROOT REL     those modules into ROOT/kvm, and ROOT/kvm/load,
#                           a script for the guest that loads them (kvm-amd
#                           with $GMEM_KVM_AMD_PARAMS, e.g. npt=0) and says
#                           why not on stderr when it cannot
#   vm_add_python ROOT      /usr/bin/python3 with its standard library and
#                           python3-dbus into ROOT; returns 1 with the reason
#                           in VM_PYTHON_MISSING when the host has not got
#                           them
#
# Environment: GMEM_VM_CACHE (kernel images, default /var/cache/gmemd-vm),
# GMEM_VM_WORKDIR, GMEM_VM_KEEP, GMEM_VM_TIMEOUT (seconds, default 600),
# GMEM_VM_BOOT_GRACE (seconds, default 90, vm_boot),
# GMEM_TEST_REQUIRE_DEPS, GMEM_VM_APPEND (more kernel command line), GMEM_QEMU
# (the QEMU binary), GMEM_VM_CPU (QEMU's -cpu, default max,-cx16),
# GMEM_KVM_AMD_PARAMS (kvm-amd.ko's parameters, vm_add_kvm).

# shellcheck disable=SC2034 # VM_CACHE and the VM_* results are the callers'
VM_CACHE=${GMEM_VM_CACHE:-/var/cache/gmemd-vm}
# shellcheck source=tests/vm/buildroot.sh
. "$(dirname "${BASH_SOURCE[0]}")/buildroot.sh"
VM_TIMEOUT=${GMEM_VM_TIMEOUT:-600}
VM_BOOT_GRACE=${GMEM_VM_BOOT_GRACE:-90}
# 7.3 under QEMU 7.2's TCG hung so about once in fifteen boots (two full
# runs of tools/test out of three had one); two hangs in a row were never seen.
VM_BOOT_ATTEMPTS=3
VM_CPU=${GMEM_VM_CPU:-max,-cx16}
VM_QEMU_EXTRA=()
# kvm-amd.ko needs kvm.ko, which needs irqbypass.ko (modinfo -F depends);
# Debian's cloud kernels build no SEV, so nothing else.
VM_KVM_MODULES=(irqbypass kvm kvm-amd)

vm_skip() {
        if [ "${GMEM_TEST_REQUIRE_DEPS:-0}" = 1 ]; then
                echo "$VM_TAG: cannot run: $*" >&2
                echo "$VM_TAG: a failure, not a skip: GMEM_TEST_REQUIRE_DEPS=1 says it should have been installed" >&2
                exit 1
        fi
        echo "GMEM-SKIP $VM_TAG: $*" >&2
        exit 77
}

vm_die() {
        echo "$VM_TAG: $*" >&2
        exit 1
}

vm_need_qemu() {
        if [ -n "${GMEM_QEMU:-}" ]; then
                QEMU=$GMEM_QEMU
                [ -x "$QEMU" ] || vm_skip "GMEM_QEMU=$QEMU is not executable"
        else
                QEMU=$(command -v qemu-system-x86_64) ||
                        vm_skip "qemu-system-x86_64 not found (package qemu-system-x86; run tests/vm/install-deps)"
        fi
}

vm_need_busybox() {
        BUSYBOX=/bin/busybox
        { [ -x "$BUSYBOX" ] && ! ldd "$BUSYBOX" >/dev/null 2>&1; } ||
                vm_skip "no static busybox at $BUSYBOX (package busybox-static; run tests/vm/install-deps)"
        command -v cpio >/dev/null || vm_skip "cpio not found (run tests/vm/install-deps)"
}

vm_workdir() {
        if [ -n "${GMEM_VM_WORKDIR:-}" ]; then
                WORK=$GMEM_VM_WORKDIR
                if ! rm -rf "$WORK" || ! mkdir -p "$WORK"; then
                        vm_die "cannot create $WORK"
                fi
        else
                WORK=$(mktemp -d "${TMPDIR:-/tmp}/gmem-$1.XXXXXX") || vm_die "mktemp failed"
                # shellcheck disable=SC2064 # WORK is fixed now
                [ "${GMEM_VM_KEEP:-0}" = 1 ] || trap "rm -rf '$WORK'" EXIT
        fi
}

vm_busybox_root() {
        local root=$1 a
        shift
        mkdir -p "$root"/{bin,dev,proc,sys,tmp,run,sys/fs/cgroup} || vm_die "cannot create $root"
        cp "$BUSYBOX" "$root/bin/busybox" || vm_die "cannot copy $BUSYBOX"
        for a in "$@"; do
                ln -sf busybox "$root/bin/$a"
        done
}

vm_pack_initramfs() {
        (cd "$1" && find . | cpio -o -H newc --quiet | gzip -1) >"$2" ||
                vm_die "cannot build the initramfs from $1"
}

# TCG: -accel kvm is not usable for full guests on these hosts.
# -cx16: QEMU 7.2's TCG emulation of cmpxchg16b corrupts guest state under
# load (6.12's SLUB uses it on every allocation): random double faults and
# NULL dereferences in kmem_cache_alloc, also with a plain memfd SIGBUS loop
# and no gmem at all. Without cx16 the kernel takes SLUB's locked path.
# -cpu max includes AMD SVM with nested paging, which tests/kvm uses.
# GMEM_VM_CPU replaces it.
# vm_alive LOG: the console has something past the firmware's lines. At
# loglevel 4 the kernel itself is silent on a good boot, so this is
# normally the init's first line.
vm_alive() {
        [ -f "$1" ] || return 1
        tr -d '\r' <"$1" | grep -avE 'SeaBIOS|Booting from|iPXE|^Machine UUID' | grep -qaE '[A-Za-z]{3}'
}

# vm_watch_boot PID LOG: 0 once QEMU (PID) has exited or the guest is alive;
# 1, with QEMU stopped, if VM_BOOT_GRACE seconds pass without either.
vm_watch_boot() {
        local pid=$1 log=$2 waited=0
        while kill -0 "$pid" 2>/dev/null; do
                vm_alive "$log" && return 0
                if [ "$waited" -ge "$VM_BOOT_GRACE" ]; then
                        kill -TERM "$pid" 2>/dev/null
                        return 1
                fi
                sleep 1
                waited=$((waited + 1))
        done
        return 0
}

vm_boot() {
        local kernel=$1 initrd=$2 log=$3 smp=$4 mem=$5 append=${6:-} start left pid attempt
        start=$(date +%s)
        VM_BOOT_HUNG=0
        for ((attempt = 1; attempt <= VM_BOOT_ATTEMPTS; attempt++)); do
                left=$(( VM_TIMEOUT - ($(date +%s) - start) ))
                timeout --foreground -k 10 "$left" "$QEMU" -accel tcg -machine q35 -cpu "$VM_CPU" \
                        -smp "$smp" -m "$mem" -nographic -no-reboot -nic none -monitor none -serial "file:$log" \
                        -kernel "$kernel" -initrd "$initrd" "${VM_QEMU_EXTRA[@]}" \
                        -append "console=ttyS0 panic=-1 oops=panic loglevel=4 quiet $append ${GMEM_VM_APPEND:-}" \
                        </dev/null >"$log.qemu" 2>&1 &
                pid=$!
                if vm_watch_boot "$pid" "$log"; then
                        wait "$pid"
                        VM_QEMU_RC=$?
                        VM_BOOT_HUNG=0
                        break
                fi
                wait "$pid" 2>/dev/null
                VM_QEMU_RC=124
                VM_BOOT_HUNG=1
                [ "$attempt" -eq "$VM_BOOT_ATTEMPTS" ] && break
                echo "GMEM-RETRY $VM_TAG: nothing on the console ${VM_BOOT_GRACE}s after the firmware: the" \
                        "guest hung before its init ran, so nothing of the test started; booting it again" \
                        "(boot $((attempt + 1)) of $VM_BOOT_ATTEMPTS; the hung console is in $log.hung)" >&2
                mv -f "$log" "$log.hung" 2>/dev/null
        done
        # shellcheck disable=SC2034
        VM_SECS=$(( $(date +%s) - start ))
}

vm_judge_boot() {
        local log=$1
        { tr -d '\r' <"$log" >"$log.txt"; } 2>/dev/null || : >"$log.txt"
        if [ "${VM_BOOT_HUNG:-0}" = 1 ]; then
                echo "$VM_TAG: the guest hung before its init ran, $VM_BOOT_ATTEMPTS times (nothing on the" \
                        "console ${VM_BOOT_GRACE}s after the firmware)" >&2
                return 1
        elif [ "$VM_QEMU_RC" -eq 124 ] || [ "$VM_QEMU_RC" -eq 137 ]; then
                echo "$VM_TAG: timed out after ${VM_TIMEOUT}s" >&2
                return 1
        elif [ "$VM_QEMU_RC" -ne 0 ]; then
                echo "$VM_TAG: QEMU exited with status $VM_QEMU_RC:" >&2
                cat "$log.qemu" >&2
                return 1
        fi
        return 0
}

vm_kernel_complained() {
        grep -anE 'BUG:|WARNING:|Oops|Kernel panic|general protection fault|Call Trace' "$1" >&2
}

vm_judge_console() {
        local log=$1 fail=0 plan
        vm_judge_boot "$log" || fail=1
        grep -aE '^(ok|not ok|1\.\.|#)' "$log.txt"
        if vm_kernel_complained "$log.txt"; then
                echo "$VM_TAG: the kernel complained (above); console in $log" >&2
                fail=1
        fi
        plan=$(sed -n 's/^1\.\.\([0-9]*\).*/\1/p' "$log.txt" | head -n1)
        VM_PASSED=$(grep -c '^ok ' "$log.txt")
        VM_FAILED=$(grep -c '^not ok ' "$log.txt")
        # shellcheck disable=SC2034
        VM_SKIPPED=$(grep -c '^ok .*# SKIP' "$log.txt")
        if [ -z "$plan" ] || [ $((VM_PASSED + VM_FAILED)) -ne "$plan" ]; then
                echo "$VM_TAG: TAP plan ${plan:-missing} but $((VM_PASSED + VM_FAILED)) results" >&2
                fail=1
        fi
        vm_tap_skips "$VM_TAG" <"$log.txt"
        return "$fail"
}

# vm_tap_skips TAG <TAP: a "GMEM-SKIP TAG/NAME: REASON" line for each
# "ok N - NAME # SKIP REASON" (tools/test lists them). A SKIP without a
# reason takes the last "# SKIP REASON" comment before it.
vm_tap_skips() {
        awk -v tag="$1" '
                /^ok [0-9]+ .*# SKIP/ {
                        name = $0
                        sub(/^ok [0-9]+ (- )?/, "", name)
                        sub(/ *# SKIP.*/, "", name)
                        gsub(/: /, " ", name)
                        why = $0
                        sub(/.*# SKIP */, "", why)
                        if (why == "") why = reason
                        if (why == "") why = "(no reason given)"
                        print "GMEM-SKIP " tag "/" name ": " why
                }
                /^(not )?ok / { reason = ""; next }
                /^# SKIP / { reason = substr($0, 8) }'
}

vm_find_kernel() {
        local series=$1 h r
        REL=
        KDIR=
        for h in $(ls -d /usr/src/linux-headers-"$series".*-cloud-amd64 \
                        "$(buildroot_dir)"/usr/src/linux-headers-"$series".*-cloud-amd64 2>/dev/null | sort -V -r); do
                r=${h##*/linux-headers-}
                if [ -f "$h/Makefile" ] && [ -f "$VM_CACHE/$r/vmlinuz" ]; then
                        REL=$r
                        KDIR=$h
                        break
                fi
        done
        [ -n "$REL" ] || vm_skip "no linux-headers-$series.*-cloud-amd64 (in /usr/src or the trixie build root) with a kernel image in $VM_CACHE (run tests/vm/install-deps)"
        KERNEL=$VM_CACHE/$REL/vmlinuz
        [ -r "$KERNEL" ] || vm_skip "cannot read $KERNEL (run as root, or make it readable)"
}

# Built out of tree in a copy, so that several series can build at once;
# headers in the trixie build root are built there, in a copy under its /tmp.
vm_build_module() {
        local src=$1 kdir=$2 dir=$3 root inroot rc
        command -v make >/dev/null || vm_skip "make not found (run tests/vm/install-deps)"
        mkdir -p "$dir" || vm_die "cannot create $dir"
        cp -r "$src"/Kbuild "$src"/Makefile "$src"/*.c "$src"/*.h "$src"/include "$dir/" ||
                vm_die "cannot copy $src"
        root=$(buildroot_dir)
        case $kdir in
        "$root"/*)
                buildroot_ready || vm_skip "the trixie build root $root is incomplete (run tests/vm/install-deps)"
                [ "$(id -u)" -eq 0 ] || vm_skip "building in the trixie build root needs root (chroot)"
                inroot=$(mktemp -d "$root/tmp/gmem-kmod.XXXXXX") || vm_die "cannot create a directory in $root/tmp"
                cp -r "$dir"/. "$inroot/" || vm_die "cannot copy the module source into $inroot"
                buildroot_run make -C "/tmp/${inroot##*/}" KDIR="${kdir#"$root"}" W=1 >"$dir/build.log" 2>&1
                rc=$?
                [ $rc -ne 0 ] || cp "$inroot/gmem.ko" "$dir/gmem.ko" || rc=1
                rm -rf "$inroot"
                if [ $rc -ne 0 ]; then
                        cat "$dir/build.log" >&2
                        vm_die "module build against ${kdir##*/linux-headers-} in the build root failed"
                fi
                ;;
        *)
                make -C "$dir" KDIR="$kdir" W=1 >"$dir/build.log" 2>&1 || rc=$?
                ;;
        esac
        if [ "${rc:-0}" -ne 0 ]; then
                cat "$dir/build.log" >&2
                vm_die "module build against ${kdir##*/linux-headers-} failed"
        fi
        if grep -E 'warning:|error:' "$dir/build.log" | grep -v 'Skipping BTF' >&2; then
                vm_die "module build against ${kdir##*/linux-headers-} has warnings (W=1)"
        fi
}

vm_copy_libs() {
        local root=$1 file=$2 out line name path
        out=$(ldd "$file" 2>&1) || { echo "$out" >&2; vm_die "ldd $file failed"; }
        case $out in
        *'not found'*)
                echo "$out" >&2
                vm_die "$file needs libraries that are not found"
                ;;
        esac
        mkdir -p "$root/lib/x86_64-linux-gnu" || vm_die "cannot create $root/lib/x86_64-linux-gnu"
        while read -r line; do
                case $line in
                *' => '/*)
                        name=${line%% =>*}
                        path=${line#* => }
                        path=${path%% (*}
                        cp -L "$path" "$root/lib/x86_64-linux-gnu/$name" || vm_die "cannot copy $path"
                        ;;
                /*)
                        path=${line%% (*}
                        mkdir -p "$root${path%/*}"
                        cp -L "$path" "$root$path" || vm_die "cannot copy $path"
                        ;;
                esac
        done <<<"$out"
}

vm_copy_program() {
        local root=$1 file=$2 dir=${3:-/bin}
        mkdir -p "$root$dir" || vm_die "cannot create $root$dir"
        cp -L "$file" "$root$dir/" || vm_die "cannot copy $file"
        vm_copy_libs "$root" "$file"
}

# The system's python3 at its own path (scripts' #!/usr/bin/python3 works),
# its standard library without tests, tkinter, the static libpython and the
# like, python3-dbus, and libgcc_s (glibc loads it at thread exit).
vm_add_python() {
        local root=$1 py=/usr/bin/python3 exe stdlib dbus_dir dbus_so so
        VM_PYTHON_MISSING=
        if [ ! -x "$py" ]; then
                VM_PYTHON_MISSING="no $py on the host (package python3)"
                return 1
        fi
        if ! read -r exe stdlib dbus_dir dbus_so < <("$py" -c 'import os, sys, sysconfig, dbus, _dbus_bindings
print(os.path.realpath(sys.executable), sysconfig.get_paths()["stdlib"], dbus.__path__[0], _dbus_bindings.__file__)' 2>/dev/null); then
                VM_PYTHON_MISSING="$py has no dbus module on the host (package python3-dbus)"
                return 1
        fi
        mkdir -p "$root${exe%/*}" "$root${stdlib%/*}" "$root${dbus_dir%/*}" || vm_die "cannot create $root/usr"
        cp -L "$exe" "$root$exe" || vm_die "cannot copy $exe"
        ln -sf "${exe##*/}" "$root${exe%/*}/python3"
        vm_copy_libs "$root" "$exe"
        tar -C "${stdlib%/*}" --exclude=__pycache__ --exclude=test --exclude=tests --exclude='config-*' \
                --exclude=idlelib --exclude=tkinter --exclude=turtledemo --exclude=ensurepip \
                --exclude=lib2to3 --exclude=distutils --exclude=pydoc_data --exclude=site-packages \
                -cf - "${stdlib##*/}" | tar -C "$root${stdlib%/*}" -xf - || vm_die "cannot copy $stdlib"
        for so in "$stdlib"/lib-dynload/*.so "$dbus_so"; do
                vm_copy_libs "$root" "$so"
        done
        cp -r "$dbus_dir" "$root${dbus_dir%/*}/" || vm_die "cannot copy $dbus_dir"
        cp "$dbus_so" "$root$dbus_so" || vm_die "cannot copy $dbus_so"
        so=$(ldconfig -p | sed -n 's/^[[:space:]]*libgcc_s\.so\.1 (libc6,x86-64) => //p' | head -n1)
        [ -n "$so" ] && cp -L "$so" "$root/lib/x86_64-linux-gnu/"
        return 0
}

# The guest's own KVM under TCG: -cpu max has AMD SVM with nested paging,
# and these modules give the guest kernel /dev/kvm (tests/kvm/README.md,
# "Nested KVM under QEMU TCG"). tests/vm/install-deps unpacks them beside
# the kernel image.
vm_has_kvm_modules() {
        local m
        for m in "${VM_KVM_MODULES[@]}"; do
                [ -f "$VM_CACHE/$1/kvm/$m.ko" ] || return 1
        done
}

vm_add_kvm() {
        local root=$1 rel=$2 m
        mkdir -p "$root/kvm" || vm_die "cannot create $root/kvm"
        for m in "${VM_KVM_MODULES[@]}"; do
                cp "$VM_CACHE/$rel/kvm/$m.ko" "$root/kvm/" || vm_die "cannot copy $m.ko"
        done
        echo "${GMEM_KVM_AMD_PARAMS:-}" >"$root/kvm/kvm-amd.params"
        cat >"$root/kvm/load" <<'EOF'
#!/bin/sh
# Loads the kvm modules in /kvm (vm-lib.sh, vm_add_kvm): exit 0 with
# /dev/kvm there, else 1 and why on stderr.
for m in irqbypass kvm; do
        insmod "/kvm/$m.ko" || { echo "insmod $m.ko failed" >&2; exit 1; }
done
# shellcheck disable=SC2046 # the parameters, one a word
insmod /kvm/kvm-amd.ko $(cat /kvm/kvm-amd.params) ||
        { echo "insmod kvm-amd.ko failed (no AMD SVM in this CPU? dmesg says)" >&2; exit 1; }
[ -c /dev/kvm ] || { echo "the kvm modules loaded but there is no /dev/kvm" >&2; exit 1; }
EOF
        chmod 0755 "$root/kvm/load"
}
