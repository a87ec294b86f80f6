# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# rootfs.sh — the systemd guests' root file systems, shared by install-deps
# (which builds them) and run-systemd (which boots a copy of one). Sourced;
# SYSTEMD_SUITE chooses the root (bookworm when unset, or trixie; also
# `systemd_rootfs SUITE` afterwards), and it sets:
#
#   SYSTEMD_SUITES    the suites there are roots for: bookworm trixie
#   SYSTEMD_CACHE     $GMEM_SYSTEMD_CACHE, default /var/cache/gmemd-systemd
#   SYSTEMD_MIRROR    $GMEM_SYSTEMD_MIRROR, else the bookworm URI in
#                     /etc/apt/sources.list.d/*.sources, else
#                     http://deb.debian.org/debian (for both suites)
#   SYSTEMD_PACKAGES  what debootstrap --variant=minbase adds: systemd, dbus,
#                     udev, procps (/bin/kill, gmemd.service's ExecReload=),
#                     gmemd's run-time libraries and linux-image-cloud-amd64,
#                     whose kernel and initramfs boot it; for trixie also kmod
#   SYSTEMD_APT       what the suite's recipe then installs with apt-get
#                     (--no-install-recommends): for trixie, for the
#                     systemd-dkms and systemd-trixie tests, dkms and
#                     linux-headers-cloud-amd64 (6.12; they bring make and
#                     gcc-14), gcc and openssl, which dkms only recommends
#                     (without openssl it signs nothing), and dbus-broker,
#                     which the recipe makes the system bus; nothing for
#                     bookworm (dbus-daemon is its system bus)
#   SYSTEMD_BASE      $SYSTEMD_CACHE/rootfs-KEY, KEY a hash of the suite, the
#                     mirror, the package lists and the recipes below, so
#                     changing any of them builds a new one (bookworm's key
#                     is the one it had before there were two suites)
#
# and defines base_recipe DIR (what every root gets on top of debootstrap),
# suite_recipe DIR (what SYSTEMD_SUITE's root gets before that) and
# systemd_rootfs_ready (true when SYSTEMD_BASE is complete).

SYSTEMD_SUITES="bookworm trixie"
SYSTEMD_CACHE=${GMEM_SYSTEMD_CACHE:-/var/cache/gmemd-systemd}

# The Debian mirror apt uses for bookworm itself (not -security).
systemd_mirror() {
        local f
        for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list.d/*.sources; do
                [ -r "$f" ] || continue
                awk 'BEGIN { RS = ""; FS = "\n" }
                     { uri = ""; ok = 0
                       for (i = 1; i <= NF; i++) {
                         if ($i ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", $i); split($i, u, /[ \t]+/); uri = u[1] }
                         if ($i ~ /^Suites:/ && $i ~ /[ \t]bookworm([ \t]|$)/) ok = 1
                       }
                       if (ok && uri != "") { print uri; exit } }' "$f"
        done | head -n1
}
SYSTEMD_MIRROR=${GMEM_SYSTEMD_MIRROR:-$(systemd_mirror)}
SYSTEMD_MIRROR=${SYSTEMD_MIRROR:-http://deb.debian.org/debian}

# base_recipe DIR: what every image gets on top of debootstrap. Part of the
# cache key: editing it builds a new root file system.
base_recipe() {
        local root=$1
        echo gmemd-test >"$root/etc/hostname"
        printf '127.0.0.1 localhost\n127.0.1.1 gmemd-test\n' >"$root/etc/hosts"
        echo '/dev/vda / ext4 rw,errors=remount-ro 0 0' >"$root/etc/fstab"
        # Nothing periodic may run during the test.
        rm -f "$root"/etc/systemd/system/timers.target.wants/*
        chroot "$root" systemctl set-default multi-user.target
        chroot "$root" apt-get clean
        rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
}

# trixie_recipe DIR: trixie's root gets DKMS and the headers of its kernel
# (the same linux-*-cloud-amd64 version as the image) from the archive, as a
# host would: apt-get, with /proc mounted for the packages' scripts. And
# dbus-broker as the system bus: its unit has Alias=dbus.service, so
# enabling it links /etc/systemd/system/dbus.service to it, which hides
# dbus-daemon's dbus.service (still installed, unused; dbus.socket stays the
# bus socket both use). trixie's dbus-broker (37-2) enables itself when it
# is installed (for the user bus as well); the recipe enables it all the
# same, and checks the link, rather than rely on that.
trixie_recipe() {
        local root=$1
        unshare --mount --fork chroot "$root" /bin/sh -ec '
                mount -t proc proc /proc
                export DEBIAN_FRONTEND=noninteractive
                apt-get update -q
                apt-get install -y -q --no-install-recommends '"$SYSTEMD_APT"'
                systemctl enable dbus-broker.service
                test "$(readlink -f /etc/systemd/system/dbus.service)" = "$(readlink -f /usr/lib/systemd/system/dbus-broker.service)"
                dpkg-query -W "linux-image-*-cloud-amd64" "linux-headers-*-cloud-amd64" dkms dbus-broker'
}

# suite_recipe DIR: SYSTEMD_SUITE's own steps, before base_recipe.
suite_recipe() {
        case $SYSTEMD_SUITE in
        trixie) trixie_recipe "$1" ;;
        esac
}

# systemd_rootfs SUITE: sets the variables above for SUITE.
systemd_rootfs() {
        SYSTEMD_SUITE=$1
        SYSTEMD_PACKAGES=systemd,systemd-sysv,dbus,udev,procps,libjson-c5,libseccomp2,libcap2,linux-image-cloud-amd64
        SYSTEMD_APT=
        case $SYSTEMD_SUITE in
        bookworm)
                SYSTEMD_KEY=$( { echo "bookworm $SYSTEMD_MIRROR $SYSTEMD_PACKAGES"; declare -f base_recipe; } |
                        sha256sum | cut -c1-16) ;;
        trixie)
                SYSTEMD_PACKAGES=$SYSTEMD_PACKAGES,kmod
                SYSTEMD_APT="dkms linux-headers-cloud-amd64 gcc openssl dbus-broker"
                SYSTEMD_KEY=$( { echo "trixie $SYSTEMD_MIRROR $SYSTEMD_PACKAGES $SYSTEMD_APT"
                                 declare -f base_recipe trixie_recipe; } | sha256sum | cut -c1-16) ;;
        *)
                echo "rootfs.sh: no root file system for suite $SYSTEMD_SUITE (one of: $SYSTEMD_SUITES)" >&2
                return 1 ;;
        esac
        SYSTEMD_BASE=$SYSTEMD_CACHE/rootfs-$SYSTEMD_KEY
}
systemd_rootfs "${SYSTEMD_SUITE:-bookworm}"

systemd_rootfs_ready() {
        [ -f "$SYSTEMD_BASE/.complete" ] &&
                compgen -G "$SYSTEMD_BASE/boot/vmlinuz-*" >/dev/null &&
                compgen -G "$SYSTEMD_BASE/boot/initrd.img-*" >/dev/null
}
