#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The daemon's live introspection equals the documented interfaces in
dbus/org.kasamond.Kasa1.*.xml: methods with their ordered arguments,
properties with type, access and EmitsChangedSignal, signals, annotations.
And every member and argument in the XML is documented."""

import glob
import os
import re
import sys
import xml.etree.ElementTree as ET

import kasatest as kt

DEVICES = ["hs110@127.0.0.2", "hs300@127.0.0.3", "hs100@127.0.0.4"]
IGNORED_ANNOTATIONS = "org.freedesktop.systemd1."
TARIFF_IFACE = "org.kasamond.Kasa1.Tariff"
FLAT_TARIFF = '{"format": "kasamond-tariff/1", "name": "flat", "currency": "EUR", "periods": [{"name": "all", "rate": 0.3}]}'


def annotations(el):
    return sorted((a.get("name"), a.get("value")) for a in el.findall("annotation")
                  if not a.get("name").startswith(IGNORED_ANNOTATIONS))


def describe(iface):
    """A comparable summary of one <interface> element."""
    methods, props, signals = {}, {}, {}
    for m in iface.findall("method"):
        args = [(a.get("name"), a.get("type"), a.get("direction") or "in") for a in m.findall("arg")]
        methods[m.get("name")] = (args, annotations(m))
    for p in iface.findall("property"):
        props[p.get("name")] = (p.get("type"), p.get("access"), annotations(p))
    for s in iface.findall("signal"):
        args = [(a.get("name"), a.get("type")) for a in s.findall("arg")]
        signals[s.get("name")] = (args, annotations(s))
    return {"methods": methods, "properties": props, "signals": signals, "annotations": annotations(iface)}


def parse_with_comments(text):
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True))
    return ET.fromstring(text, parser=parser)


def undocumented(iface):
    """Members whose preceding comment does not name them, and arguments
    their member's comment does not name as @arg."""
    missing = []
    comment = None
    for el in iface:
        if el.tag is ET.Comment:
            comment = el.text or ""
            continue
        name = el.get("name")
        if el.tag in ("method", "property", "signal"):
            if comment is None or not re.search(r"(^|\s)" + re.escape(name) + r":", comment):
                missing.append(f"{el.tag} {name}")
            for a in el.findall("arg"):
                if comment is None or not re.search(r"@" + re.escape(a.get("name")) + r":", comment):
                    missing.append(f"arg {name}.{a.get('name')}")
        comment = None
    return missing


def live_interfaces(env, path):
    xml = env.call(path, "org.freedesktop.DBus.Introspectable", "Introspect")[0]
    root = ET.fromstring(xml)
    return {i.get("name"): i for i in root.findall("interface")
            if not i.get("name").startswith("org.freedesktop.DBus.")}


def compare(t, what, live, doc):
    lv, dv = describe(live), describe(doc)
    for kind, one in (("methods", "method"), ("properties", "property"), ("signals", "signal")):
        t.eq(sorted(lv[kind]), sorted(dv[kind]), f"{what}: same {kind}")
        for name in sorted(set(lv[kind]) & set(dv[kind])):
            t.eq(lv[kind][name], dv[kind][name], f"{what}: {one} {name} matches")
    t.eq(lv["annotations"], dv["annotations"], f"{what}: interface annotations match")


def main():
    t = kt.Tap()
    files = sorted(glob.glob(os.path.join(kt.source_dir(), "dbus", "org.kasamond.Kasa1.*.xml")))
    docs = {}
    for f in files:
        with open(f) as fh:
            root = parse_with_comments(fh.read())
        for i in root.findall("interface"):
            docs[i.get("name")] = (os.path.basename(f), i)
    # Schedule objects need systemd's timers: tests/system compares them.
    t.eq(sorted(docs), ["org.kasamond.Kasa1.Alert", kt.DEVICE_IFACE, kt.METER_IFACE, kt.MANAGER_IFACE, "org.kasamond.Kasa1.Schedule", TARIFF_IFACE],
         "dbus/ documents Alert, Manager, Device, EnergyMeter, Schedule and Tariff")
    for name, (fname, _) in sorted(docs.items()):
        t.eq(fname, name + ".xml", f"{name} is in the file named after it")

    for name, (_, iface) in sorted(docs.items()):
        missing = undocumented(iface)
        t.ok(not missing, f"{name}: every method, property and argument has a comment", "\n".join(missing))

    with kt.Env(DEVICES) as env:
        sims = env.sim_devices()
        env.discover(1.0)
        plug = env.device_path(kt.mac_id(sims[0]["mac"]))
        strip = env.device_path(kt.mac_id(sims[1]["mac"]))
        outlet = env.device_path(kt.mac_id(sims[1]["mac"], 0))
        bare = env.device_path(kt.mac_id(sims[2]["mac"]))
        tariff = env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "AddTariff", "s", (FLAT_TARIFF,))[0]
        expected = {
            kt.MANAGER_PATH: [kt.MANAGER_IFACE],
            plug: [kt.DEVICE_IFACE, kt.METER_IFACE],
            outlet: [kt.DEVICE_IFACE, kt.METER_IFACE],
            strip: [kt.DEVICE_IFACE, kt.METER_IFACE],  # the sum of its metered outlets
            bare: [kt.DEVICE_IFACE],
            tariff: [TARIFF_IFACE],
        }
        for path, ifaces in expected.items():
            live = live_interfaces(env, path)
            t.eq(sorted(live), sorted(ifaces), f"{path}: exactly the documented kasamond interfaces")
            for name in ifaces:
                if name in live and name in docs:
                    compare(t, f"{path} {name}", live[name], docs[name][1])
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
