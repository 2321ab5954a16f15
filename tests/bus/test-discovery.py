#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Discovery finds every simulated device and outlet; the objects carry
the identity the simulator has; the object manager and Describe agree."""

import json
import sys

import kasatest as kt

DEVICES = ["hs100@127.0.0.2", "hs110@127.0.0.3", "kp115@127.0.0.4", "hs300@127.0.0.5", "kp303@127.0.0.6"]


def main():
    t = kt.Tap()
    with kt.Env(DEVICES) as env:
        sims = env.sim_devices()
        want = {}
        for s in sims:
            want[kt.mac_id(s["mac"])] = s
            for i, _ in enumerate(s.get("children", [])):
                want[kt.mac_id(s["mac"], i)] = s
        t.eq(len(want), 5 + 6 + 3, "the simulator runs 14 devices and outlets")

        found = env.discover(1.5)
        ids = sorted(p.rsplit("/", 1)[1] for p in found)
        t.eq(ids, sorted(want), "Discover() returns every device and outlet")

        objs = env.objects()
        ids = sorted(p.rsplit("/", 1)[1] for p in objs)
        t.eq(ids, sorted(want), "the object manager lists every device and outlet")
        t.eq(env.get(kt.MANAGER_PATH, kt.MANAGER_IFACE, "DeviceCount"), 14, "DeviceCount is 14")

        for dev_id, s in sorted(want.items()):
            path = env.device_path(dev_id)
            props = objs[path][kt.DEVICE_IFACE]
            outlet = "_" in dev_id
            t.eq(props["Id"], dev_id, f"{dev_id}: Id")
            t.eq(props["Mac"], s["mac"], f"{dev_id}: Mac is the simulator's")
            t.eq(props["Model"], s["model"], f"{dev_id}: Model")
            t.eq(props["Address"], s["address"], f"{dev_id}: Address")
            t.ok(props["Online"], f"{dev_id}: Online")
            parent = env.device_path(kt.mac_id(s["mac"])) if outlet else "/"
            t.eq(props["Parent"], parent, f"{dev_id}: Parent")
            # A metered strip is a meter too: the sum of its outlets.
            metered = s["profile"] in ("hs110", "kp115", "hs300")
            t.eq(kt.METER_IFACE in objs[path], metered, f"{dev_id}: EnergyMeter only where there is a meter")

        desc = json.loads(env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "Describe")[0])
        t.eq(sorted(d["id"] for d in desc["devices"]), sorted(want), "Describe() lists every device")
        one = json.loads(env.call(env.device_path(kt.mac_id(sims[1]["mac"])), kt.DEVICE_IFACE, "Describe")[0])
        t.ok(one["model"] == "HS110(EU)" and "meter" in one, "Device.Describe() has identity and meter")

        # A second discovery finds the same objects, nothing new.
        again = env.discover(1.0)
        t.eq(len(again), 14, "a second Discover() finds the same 14 objects")
        t.eq(env.get(kt.MANAGER_PATH, kt.MANAGER_IFACE, "DeviceCount"), 14, "and creates no new ones")

        # AddDevice for a plug beyond broadcast reach.
        err = env.call_error(kt.MANAGER_PATH, kt.MANAGER_IFACE, "AddDevice", "s", ("not-an-address",))
        t.eq(err and err[0], "org.freedesktop.DBus.Error.InvalidArgs", "AddDevice refuses a malformed address")
        err = env.call_error(kt.MANAGER_PATH, kt.MANAGER_IFACE, "AddDevice", "s", ("127.0.0.99",))
        t.eq(err and err[0], "org.kasamond.Kasa1.Error.Offline", "AddDevice of a silent address says Offline")
        err = env.call_error(kt.MANAGER_PATH, kt.MANAGER_IFACE, "AddDevice", "s", ("127.0.0.4",))
        t.ok(err and err[0] == "org.kasamond.Kasa1.Error.AlreadyKnown" and kt.mac_id(sims[2]["mac"]) in err[1],
             "AddDevice of a known plug says it is known, naming it", err)
        err = env.call_error(kt.MANAGER_PATH, kt.MANAGER_IFACE, "Discover", "d", (100.0,))
        t.eq(err and err[0], "org.freedesktop.DBus.Error.InvalidArgs", "Discover refuses a timeout of 100 s")
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
