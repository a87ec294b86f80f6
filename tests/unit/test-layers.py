#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""test-layers.py — the daemon's layers hold: every #include in daemon/ names
a header of its own layer or of a layer below it, and sd-bus is included only
by daemon/bus/ and daemon/gmemd.c.

The build already refuses most of this (each layer's library sees only the
include directories below it, and daemon/bus-wall/ stops sd-bus below the
bus); this test also catches what the build cannot see, such as a relative
include ("../bus/bus-util.h") or a header that is included but never
compiled into a layer's library. The layers and their order are the ones
doc/ARCHITECTURE.md draws.
"""
import os
import re
import sys
import unittest

ROOT = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else \
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DAEMON = os.path.join(ROOT, "daemon")

# Which layers each layer may include from (itself always).
ALLOWED = {
    "common": set(),
    "backend": {"common"},
    "host": {"common"},
    "model": {"common", "backend", "host"},
    "store": {"common", "backend", "host", "model"},
    "bus": {"common", "backend", "host", "model"},
    "main": {"common", "backend", "host", "model", "store", "bus"},
}
SD_BUS_LAYERS = {"bus", "main"}
LAYER_DIRS = ["backend", "host", "model", "store", "bus"]
# Headers made by the build or by meson's configuration, not by a layer.
GENERATED = {"config.h": "common", "policy-builtin.h": "host"}

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def sources():
    """(layer, path) of every C source and header of the daemon."""
    yield "main", os.path.join(DAEMON, "gmemd.c")
    for layer in LAYER_DIRS:
        d = os.path.join(DAEMON, layer)
        for name in sorted(os.listdir(d)):
            if name.endswith((".c", ".h")):
                yield layer, os.path.join(d, name)
    d = os.path.join(ROOT, "common")
    for name in sorted(os.listdir(d)):
        if name.endswith((".c", ".h")):
            yield "common", os.path.join(d, name)


def header_layers():
    """Header name -> layer, from where each header lives."""
    owner = dict(GENERATED)
    for layer, path in sources():
        if path.endswith(".h"):
            name = os.path.basename(path)
            if name in owner and owner[name] != layer:
                raise AssertionError(f"header {name} exists in two layers: {owner[name]} and {layer}")
            owner[name] = layer
    return owner


class Layers(unittest.TestCase):
    def test_layer_folders_exist(self):
        for layer in LAYER_DIRS:
            self.assertTrue(os.path.isdir(os.path.join(DAEMON, layer)), f"daemon/{layer}/ is a layer folder")
        flat = [n for n in os.listdir(DAEMON) if n.endswith((".c", ".h")) and n != "gmemd.c"]
        self.assertEqual(flat, [], "daemon/ holds only gmemd.c; every other file lives in its layer's folder")

    def test_includes_go_down(self):
        owner = header_layers()
        bad = []
        for layer, path in sources():
            text = read(path)
            for kind, name in INCLUDE.findall(text):
                if kind == "<":
                    if "sd-bus" in name and layer not in SD_BUS_LAYERS:
                        bad.append(f"{os.path.relpath(path, ROOT)}: includes <{name}>, "
                                   f"but only daemon/bus/ and daemon/gmemd.c may speak D-Bus")
                    elif os.path.basename(name) in owner:
                        bad.append(f"{os.path.relpath(path, ROOT)}: includes the project's header <{name}>; "
                                   f"include it as \"{os.path.basename(name)}\" so this test can check its layer")
                    continue
                if "/" in name:
                    bad.append(f"{os.path.relpath(path, ROOT)}: includes \"{name}\" by a path; "
                               f"include headers by name so the build's include directories decide")
                    continue
                target = owner.get(name)
                if target is None:
                    bad.append(f"{os.path.relpath(path, ROOT)}: includes \"{name}\", which no layer has")
                elif target != layer and target not in ALLOWED[layer]:
                    bad.append(f"{os.path.relpath(path, ROOT)}: layer '{layer}' includes \"{name}\" "
                               f"of layer '{target}', which is not below it")
        self.assertEqual(bad, [], "every include names a header of the same layer or one below:\n  " +
                         "\n  ".join(bad))

    def test_bus_wall_stands_in_for_every_sd_bus_header(self):
        wall = os.path.join(DAEMON, "bus-wall", "systemd")
        for h in ("sd-bus.h", "sd-bus-protocol.h", "sd-bus-vtable.h"):
            text = read(os.path.join(wall, h))
            self.assertIn("#error", text, f"bus-wall/systemd/{h} stops the build")


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + [a for a in sys.argv[1:] if a.startswith("-")], verbosity=2)
