#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Turns policy/default.json into a C header, so the built-in policy is the shipped file, byte for byte.
import json
import sys

src, dst = sys.argv[1], sys.argv[2]
text = open(src, encoding="utf-8").read()
json.loads(text)  # refuse to embed a file that is not JSON
with open(dst, "w", encoding="utf-8") as out:
    out.write("/* Generated from policy/default.json by policy/embed.py; do not edit. */\n#pragma once\n")
    out.write("static const char policy_builtin_json[] =\n")
    for line in text.splitlines(keepends=True):
        out.write('        "' + line.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"\n')
    out.write("        ;\n")
