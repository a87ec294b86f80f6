/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bus-wall/systemd/sd-bus-protocol.h — stands in for the real header in every layer below
 * daemon/bus/. The model, the backends, the store and the host helpers never
 * speak D-Bus: their libraries are built with this folder first on the
 * include path, so an include of sd-bus there stops the build here.
 */
#error "sd-bus is for daemon/bus/ and daemon/gmemd.c only: this layer is below the bus (see doc/ARCHITECTURE.md)"
