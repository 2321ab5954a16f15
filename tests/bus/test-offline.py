#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Offline readings are absent: once a metered plug or strip stops
answering, Power, Voltage and Current are NaN on the bus (not 0 W and a
stale voltage) and null in Describe(); energy stays, it is kasamond's own
count. Readings come back with the device."""

import json
import math
import sys

import kasatest as kt

DEVICES = ["hs110@127.0.0.2", "hs300@127.0.0.3"]
READINGS = ("Power", "Voltage", "Current")


def meter_of(describe, dev_id):
    return next(d for d in json.loads(describe)["devices"] if d["id"] == dev_id).get("meter")


def main():
    t = kt.Tap()
    with kt.Env(DEVICES) as env:
        sims = env.sim_devices()
        plug = kt.mac_id(sims[0]["mac"])
        outlet = kt.mac_id(sims[1]["mac"], 2)
        env.discover(1.0)
        paths = {i: env.device_path(i) for i in (plug, outlet)}
        for i, p in paths.items():
            kt.eventually(t, env, lambda: env.get(p, kt.METER_IFACE, "Power") > 0, 20, f"{i}: a reading arrives")
            # Energy is counted between two readings: one poll alone leaves it at 0.
            kt.eventually(t, env, lambda: env.get(p, kt.METER_IFACE, "EnergyTotal") > 0, 20, f"{i}: energy counted")

        for index, i in ((0, plug), (1, outlet)):
            p = paths[i]
            env.sim(cmd="fault", device=index, hang=True)
            kt.eventually(t, env, lambda: not env.get(p, kt.DEVICE_IFACE, "Online"), 30, f"{i}: goes offline")
            m = env.get_all(p, kt.METER_IFACE)
            t.ok(all(math.isnan(m[k]) for k in READINGS), f"{i}: Power, Voltage and Current are NaN offline",
                 {k: m[k] for k in READINGS})
            t.ok(m["EnergyTotal"] > 0 and not math.isnan(m["EnergyToday"]), f"{i}: energy is still known", m)
            d = json.loads(env.call(p, kt.DEVICE_IFACE, "Describe")[0])
            t.eq([d["meter"][k] for k in ("power", "voltage", "current")], [None, None, None],
                 f"{i}: Describe() says null for power, voltage and current")
            t.ok(d["meter"]["energy_total"] > 0, f"{i}: Describe() keeps energy_total")
            mm = meter_of(env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "Describe")[0], i)
            t.eq([mm[k] for k in ("power", "voltage", "current")], [None, None, None],
                 f"{i}: Manager.Describe() says null too")
            env.sim(cmd="clear", device=index)
            kt.eventually(t, env, lambda: env.get(p, kt.DEVICE_IFACE, "Online"), 30, f"{i}: back online")
            kt.eventually(t, env, lambda: not any(math.isnan(env.get(p, kt.METER_IFACE, k)) for k in READINGS),
                          20, f"{i}: readings are back with the device")
            d = json.loads(env.call(p, kt.DEVICE_IFACE, "Describe")[0])
            t.ok(d["meter"]["power"] > 0 and d["meter"]["voltage"] > 100, f"{i}: Describe() has numbers again",
                 d["meter"])
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
