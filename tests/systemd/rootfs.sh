# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# rootfs.sh — the systemd guest's root file system, shared by install-deps
# (which builds it) and run-systemd (which boots a copy of it). Sourced;
# sets:
#
#   SYSTEMD_CACHE     $GMEM_SYSTEMD_CACHE, default /var/cache/gmemd-systemd
#   SYSTEMD_MIRROR    $GMEM_SYSTEMD_MIRROR, else the bookworm URI in
#                     /etc/apt/sources.list.d/*.sources, else
#                     http://deb.debian.org/debian
#   SYSTEMD_PACKAGES  what debootstrap --variant=minbase adds: systemd, dbus,
#                     udev, procps (/bin/kill, gmemd.service's ExecReload=),
#                     gmemd's run-time libraries and linux-image-cloud-amd64,
#                     whose kernel and initramfs boot it
#   SYSTEMD_BASE      $SYSTEMD_CACHE/rootfs-KEY, KEY a hash of the suite, the
#                     mirror, the package list and base_recipe below, so
#                     changing any of them builds a new one
#
# and defines base_recipe DIR (what every root gets on top of debootstrap)
# and systemd_rootfs_ready (true when SYSTEMD_BASE is complete).

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
SYSTEMD_PACKAGES=systemd,systemd-sysv,dbus,udev,procps,libjson-c5,libseccomp2,libcap2,linux-image-cloud-amd64

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

SYSTEMD_KEY=$( { echo "bookworm $SYSTEMD_MIRROR $SYSTEMD_PACKAGES"; declare -f base_recipe; } | sha256sum | cut -c1-16)
SYSTEMD_BASE=$SYSTEMD_CACHE/rootfs-$SYSTEMD_KEY

systemd_rootfs_ready() {
        [ -f "$SYSTEMD_BASE/.complete" ] &&
                compgen -G "$SYSTEMD_BASE/boot/vmlinuz-*" >/dev/null &&
                compgen -G "$SYSTEMD_BASE/boot/initrd.img-*" >/dev/null
}
