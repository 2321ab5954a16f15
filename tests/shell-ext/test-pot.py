#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The extension's strings are marked for gettext: xgettext, as the
kasamond-shell-pot target runs it, finds the menu's and the preferences'
strings in the sources and, unchanged, in the GNOME 43 build's converted
modules."""

import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
import kasalib  # noqa: E402

WANT = ["Plugs", "Smart Plugs", "Today: %s", "This month: %s", "offline", "No devices", "Could not switch %s: %s",
        "Open Dashboard", "Plug Settings", "%s W", "%s kW", "Unit of the total", "Show costs", "Outlet of %s"]
FILES = ["client.js", "format.js", "indicator.js", "prefsPage.js"]


def msgids(paths):
    out = subprocess.run(["xgettext", "--from-code=UTF-8", "--language=JavaScript", "--keyword=_",
                          "--keyword=ngettext:1,2", "--add-comments=Translators", "-o", "-", *paths],
                         check=True, capture_output=True, text=True).stdout
    return set(re.findall(r'^msgid "(.+)"$', out, re.M)), out


def main():
    t = kasalib.Tap()
    src = os.path.join(os.environ["KASA_SOURCE_ROOT"], "shell-ext", "src")
    legacy = os.path.join(os.environ["KASA_BUILD_ROOT"], "shell-ext", "gnome-43")
    ids, pot = msgids([os.path.join(src, f) for f in FILES])
    missing = [w for w in WANT if w not in ids]
    t.ok(not missing, "the sources mark the menu's and the preferences' strings", f"missing {missing}")
    t.ok("#. Translators: power in watts" in pot, "with comments for translators")
    legacy_ids, _ = msgids([os.path.join(legacy, f) for f in FILES])
    t.eq(sorted(legacy_ids), sorted(ids), "the GNOME 43 modules carry the same strings")
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
