# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# tools/lib.sh — what tools/test and tools/demo share: messages, installing
# the Debian packages that are missing (asking dpkg first, so a machine that
# has everything pays nothing), configuring and building a meson tree, and a
# private D-Bus "system" bus with gmemd on it.
#
# Source it from bash with the repository root as the working directory.

# shellcheck disable=SC2034  # the arrays and GMEM_PYTHON are for the scripts that source this
# Packages to build gmemd, gmemctl, libgmem and the man pages.
GMEM_BUILD_PACKAGES=(meson ninja-build pkg-config gcc libc6-dev libsystemd-dev libcap-dev
                     libjson-c-dev libseccomp-dev scdoc)
# Packages to run the daemon on a private bus and talk to it.
GMEM_RUN_PACKAGES=(dbus-daemon python3 python3-dbus systemd libglib2.0-bin util-linux procps)
# The second bus the integration and load suites run on (suite
# integration-broker, load-broker-*); only tools/test installs it.
GMEM_TEST_PACKAGES=(dbus-broker)

GMEM_PYTHON=/usr/bin/python3

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
        _gmem_bold=$'\e[1m' _gmem_dim=$'\e[2m' _gmem_red=$'\e[31m' _gmem_green=$'\e[32m'
        _gmem_reset=$'\e[0m'
else
        _gmem_bold='' _gmem_dim='' _gmem_red='' _gmem_green='' _gmem_reset=''
fi

gmem_say()  { printf '%s\n' "$*"; }
gmem_head() { printf '\n%s==> %s%s\n' "$_gmem_bold" "$*" "$_gmem_reset"; }
gmem_warn() { printf '%s%s: warning: %s%s\n' "$_gmem_red" "${0##*/}" "$*" "$_gmem_reset" >&2; }
gmem_die()  { printf '%s%s: %s%s\n' "$_gmem_red" "${0##*/}" "$*" "$_gmem_reset" >&2; exit 1; }
gmem_ok()   { printf '%s%s%s\n' "$_gmem_green" "$*" "$_gmem_reset"; }

# gmem_missing_packages PKG...: prints those not installed, one a line.
gmem_missing_packages() {
        local p
        for p in "$@"; do
                dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
                        grep -qx 'install ok installed' || printf '%s\n' "$p"
        done
}

# gmem_install_packages PKG...: installs the missing ones with apt-get,
# running 'apt-get update' at most once per process tree.
gmem_install_packages() {
        local missing
        command -v dpkg-query >/dev/null || gmem_die "dpkg-query not found: a Debian 12 machine is expected"
        mapfile -t missing < <(gmem_missing_packages "$@")
        [ ${#missing[@]} -eq 0 ] && return 0
        [ "$(id -u)" -eq 0 ] || gmem_die "missing packages (${missing[*]}); installing them needs root"
        gmem_say "Installing missing packages: ${missing[*]}"
        if [ -z "${GMEM_APT_UPDATED:-}" ]; then
                DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null ||
                        gmem_die "apt-get update failed"
                export GMEM_APT_UPDATED=1
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
                "${missing[@]}" </dev/null || gmem_die "apt-get install ${missing[*]} failed"
        # Debian's dbus-broker makes itself dbus.service, the system and user
        # bus from the next boot on. The tests start it only as a private bus:
        # a machine that had dbus-daemon as its bus keeps it.
        if printf '%s\n' "${missing[@]}" | grep -qx dbus-broker; then
                systemctl disable dbus-broker.service >/dev/null 2>&1
                systemctl --global disable dbus-broker.service >/dev/null 2>&1
                gmem_say "dbus-broker installed for the tests only: its dbus.service aliases removed"
        fi
}

# gmem_meson_setup DIR [MESON OPTIONS...]: configures DIR, or reconfigures it
# with these options if it is already a build tree (wiping it if meson cannot
# reconfigure it, e.g. after a meson upgrade).
gmem_meson_setup() {
        local dir=$1
        shift
        if [ -f "$dir/meson-private/coredata.dat" ]; then
                meson setup --reconfigure "$dir" "$@" >"$dir.setup.log" 2>&1 ||
                meson setup --wipe "$dir" "$@" >"$dir.setup.log" 2>&1 || {
                        cat "$dir.setup.log" >&2
                        rm -f "$dir.setup.log"
                        return 1
                }
        else
                meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || {
                        cat "$dir.setup.log" >&2
                        rm -f "$dir.setup.log"
                        return 1
                }
        fi
        rm -f "$dir.setup.log"
}

# gmem_build DIR [MESON OPTIONS...]: configure and compile.
gmem_build() {
        local dir=$1
        gmem_meson_setup "$@" && ninja -C "$dir"
}

# A private bus of type "system", as the daemon finds it on a real host,
# but listening in our own directory and open to every local user.
# gmem_start_bus DIR: starts dbus-daemon, exports DBUS_SYSTEM_BUS_ADDRESS,
# sets GMEM_BUS_PID.
gmem_start_bus() {
        local dir=$1
        cat >"$dir/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$dir/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
EOF
        dbus-daemon --config-file="$dir/bus.conf" --nofork --print-address=3 \
                3>"$dir/bus.address" </dev/null >"$dir/dbus-daemon.log" 2>&1 &
        GMEM_BUS_PID=$!
        local i
        for i in $(seq 100); do
                [ -s "$dir/bus.address" ] && break
                gmem_running "$GMEM_BUS_PID" || gmem_die "dbus-daemon failed: $(cat "$dir/dbus-daemon.log")"
                sleep 0.05
        done
        DBUS_SYSTEM_BUS_ADDRESS=$(head -n1 "$dir/bus.address")
        [ -n "$DBUS_SYSTEM_BUS_ADDRESS" ] || gmem_die "dbus-daemon printed no address"
        export DBUS_SYSTEM_BUS_ADDRESS
}

# gmem_bus_has_name NAME: true when NAME is owned on the bus.
gmem_bus_has_name() {
        busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
                NameHasOwner s "$1" 2>/dev/null | grep -qx 'b true'
}

# gmem_start_gmemd GMEMD LOG: starts gmemd on the private bus, waits until
# it owns its name, sets GMEM_GMEMD_PID.
gmem_start_gmemd() {
        local gmemd=$1 log=$2 i
        "$gmemd" </dev/null >"$log" 2>&1 &
        GMEM_GMEMD_PID=$!
        for i in $(seq 200); do
                gmem_bus_has_name org.gmemd.Broker1 && return 0
                gmem_running "$GMEM_GMEMD_PID" || gmem_die "gmemd exited: $(cat "$log")"
                sleep 0.05
        done
        gmem_die "gmemd did not appear on the bus within 10s: $(cat "$log")"
}

# gmem_running PID: true while PID runs (a zombie does not count).
gmem_running() {
        local state
        state=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) || return 1
        [ -n "$state" ] && [ "$state" != Z ]
}

# gmem_stop_pid PID: SIGTERM, wait up to 10s, then SIGKILL; returns the
# exit status (PID must be a child of this shell).
gmem_stop_pid() {
        local pid=$1 _
        [ -n "$pid" ] || return 0
        if gmem_running "$pid"; then
                kill -TERM "$pid" 2>/dev/null
                for _ in $(seq 100); do
                        gmem_running "$pid" || break
                        sleep 0.1
                done
                gmem_running "$pid" && kill -KILL "$pid" 2>/dev/null
        fi
        wait "$pid" 2>/dev/null
}
