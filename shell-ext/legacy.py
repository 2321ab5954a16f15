#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Converts one of the extension's ES modules (src/*.js) into the legacy
module style GNOME 43 loads extensions in (imports.*), so both entry points
run one source. Only the forms the sources use are accepted; anything else
that imports or exports is an error, never passed through.

Usage: legacy.py IN.js OUT.js"""

import re
import sys

SHELL = re.compile(r"resource:///org/gnome/shell/(ui|misc)/([\w/]+)\.js")
RULES = [
    # import X from 'gi://X[?version=V]';
    (re.compile(r"^import (\w+) from 'gi://(\w+)(?:\?version=([\d.]+))?';$"),
     lambda m: (f"imports.gi.versions.{m[2]} = '{m[3]}';\n" if m[3] else "") + f"const {m[1]} = imports.gi.{m[2]};"),
    # import Gettext from 'gettext';  (gjs's own modules)
    (re.compile(r"^import (\w+) from '(gettext|system|cairo)';$"), lambda m: f"const {m[1]} = imports.{m[2]};"),
    # import * as X from / import {A, B} from a shell module or a sibling
    (re.compile(r"^import (\* as (\w+)|\{([\w, ]+)\}) from '([^']+)';$"), None),
    (re.compile(r"^export (function|async function) "), lambda m: f"{m[1]} "),
    (re.compile(r"^export class (\w+)"), lambda m: f"var {m[1]} = class {m[1]}"),
    (re.compile(r"^export (const|let) "), lambda m: "var "),
]


def source_of(spec):
    m = SHELL.fullmatch(spec)
    if m:
        return f"imports.{m[1]}.{m[2].replace('/', '.')}"
    m = re.fullmatch(r"\./(\w+)\.js", spec)
    if m:
        return f"Me.imports.{m[1]}"
    raise ValueError(f"cannot convert an import from {spec!r}")


def convert(text):
    out = []
    uses_me = False
    for n, line in enumerate(text.split("\n"), 1):
        for rx, fn in RULES:
            m = rx.match(line)
            if not m:
                continue
            if fn is None:
                src = source_of(m[4])
                uses_me |= src.startswith("Me.")
                line = f"const {m[2]} = {src};" if m[2] else f"const {{{m[3]}}} = {src};"
            else:
                line = fn(m) + line[m.end():]
            break
        else:
            if re.match(r"^\s*(import|export)\b", line) or "import.meta" in line:
                raise ValueError(f"line {n}: cannot convert: {line}")
        out.append(line)
    if uses_me:
        # After the SPDX line and the header comment.
        at = next(i for i, l in enumerate(out) if not l.startswith("//"))
        out.insert(at, "const Me = imports.misc.extensionUtils.getCurrentExtension();")
    return "\n".join(out)


def main():
    with open(sys.argv[1]) as f:
        text = f.read()
    try:
        result = convert(text)
    except ValueError as e:
        sys.exit(f"{sys.argv[1]}: {e}")
    with open(sys.argv[2], "w") as f:
        f.write(result)


if __name__ == "__main__":
    main()
