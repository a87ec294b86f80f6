# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# buildroot.sh — the Debian 13 (trixie) build root in which gmem.ko is built
# for kernels whose headers bookworm cannot use: from 7.x (trixie-backports)
# their linux-kbuild programs link trixie's libc and want trixie's gcc-14, so
# the module is built in a debootstrapped trixie tree, never on the host.
# tests/vm/install-deps makes the root and installs headers into it; the
# runners (vm-lib.sh) build in it. Sourced by both. Functions:
#
#   buildroot_dir           the root: $GMEM_VM_CACHE/trixie-root
#   buildroot_ready         true if the root is complete (made to the end)
#   buildroot_run CMD...    runs CMD in the root as root, with /proc mounted
#                           in a mount namespace of its own (objtool reads
#                           /proc; nothing stays mounted on the host) and a
#                           clean environment
#   buildroot_run_bound HOSTDIR:DIR... -- CMD...
#                           buildroot_run, with each HOSTDIR of the host
#                           bind-mounted at DIR in the root, in the same
#                           mount namespace (so nothing stays mounted; DIR
#                           is made in the root if it is missing)
#   buildroot_kdir REL      the host path of REL's headers in the root
#
# The root's apt lists trixie and trixie-backports; the host's apt is not
# touched.

BUILDROOT_SUITES="trixie trixie-backports"

buildroot_dir() {
        echo "${GMEM_VM_CACHE:-/var/cache/gmemd-vm}/trixie-root"
}

buildroot_ready() {
        [ -f "$(buildroot_dir)/.gmemd-buildroot" ] && [ -x "$(buildroot_dir)/usr/bin/apt-get" ]
}

buildroot_run() {
        local root
        root=$(buildroot_dir)
        unshare --mount --fork /bin/sh -c 'mount -t proc proc "$0/proc" && exec chroot "$0" "$@"' "$root" \
                /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
                DEBIAN_FRONTEND=noninteractive "$@"
}

buildroot_run_bound() {
        local root binds=()
        root=$(buildroot_dir)
        while [ $# -gt 0 ] && [ "$1" != -- ]; do
                binds+=("$1")
                shift
        done
        [ $# -gt 0 ] && shift
        unshare --mount --fork /bin/sh -c '
                root=$0 n=$1
                shift
                while [ "$n" -gt 0 ]; do
                        mkdir -p "$root${1#*:}" && mount --bind "${1%%:*}" "$root${1#*:}" || exit 1
                        shift
                        n=$((n - 1))
                done
                mount -t proc proc "$root/proc" && exec chroot "$root" "$@"' "$root" "${#binds[@]}" "${binds[@]}" \
                /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
                DEBIAN_FRONTEND=noninteractive "$@"
}

buildroot_kdir() {
        echo "$(buildroot_dir)/usr/src/linux-headers-$1"
}
