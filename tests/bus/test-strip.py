#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A metered strip is a meter too: its power, current, energy, history and
energy buckets are the sums of its outlets' (voltage: the mains voltage),
on the bus and in Describe(), which lists its outlets. A strip command
that fails for one outlet says which outlets switched and which did not,
and the bus shows the state the outlets are really in."""

import json
import sys
import time

import kasatest as kt

DEVICES = ["hs300@127.0.0.2", "hs110@127.0.0.3"]
LOADS = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]


def close(a, b, eps=1e-6):
    return abs(a - b) <= eps * max(1.0, abs(a), abs(b))


def by_time(points):
    return {p[0]: p for p in points}


def check_sums(t, env, strip, outlets, method, args, name, fields):
    """The strip's answer is, entry by entry, the sum of its outlets'."""
    got = env.call(strip, kt.METER_IFACE, method, "tts", args)[0]
    parts = [by_time(env.call(o, kt.METER_IFACE, method, "tts", args)[0]) for o in outlets]
    times = sorted(set().union(*parts))
    t.ok(got and [p[0] for p in got] == times, f"{name}: the strip has an entry wherever an outlet has one",
         f"strip {[p[0] for p in got]}\noutlets {times}")
    bad = [(p, [q.get(p[0]) for q in parts]) for p in got
           if not all(close(p[k], sum(q[p[0]][k] for q in parts if p[0] in q)) for k in fields)]
    t.ok(not bad, f"{name}: each entry is the sum of the outlets' entries of the same time", bad[:3])


def main():
    t = kt.Tap()
    with kt.Env(DEVICES, sim_args=("--noise=0",)) as env:
        sims = env.sim_devices()
        sid = kt.mac_id(sims[0]["mac"])
        strip = env.device_path(sid)
        ids = [kt.mac_id(sims[0]["mac"], k) for k in range(6)]
        outlets = [env.device_path(i) for i in ids]
        for k, w in enumerate(LOADS):
            env.sim(cmd="set", device=0, outlet=k, load_w=w)
        env.discover(1.0)

        objs = env.objects()
        t.ok(kt.METER_IFACE in objs.get(strip, {}), "the metered strip carries EnergyMeter")
        kt.eventually(t, env, lambda: close(env.get(strip, kt.METER_IFACE, "Power"), sum(LOADS)), 20,
                      f"the strip's Power is the sum of its outlets' loads, {sum(LOADS)} W")

        # One GetManagedObjects is one moment of the daemon: sums are exact.
        env.wait_polled(strip, polls=3)
        objs = env.objects()
        m = objs[strip][kt.METER_IFACE]
        om = [objs[o][kt.METER_IFACE] for o in outlets]
        for prop in ("Power", "Current", "EnergyTotal", "EnergyToday"):
            t.ok(close(m[prop], sum(x[prop] for x in om)), f"strip {prop} is the sum of the outlets'",
                 f"{m[prop]} vs {[x[prop] for x in om]}")
        t.ok(close(m["Voltage"], 120.0, 1e-3), "strip Voltage is the mains voltage", m["Voltage"])

        d = json.loads(env.call(strip, kt.DEVICE_IFACE, "Describe")[0])
        t.eq(d.get("outlets"), ids, "Describe() of the strip lists its outlets")
        t.ok(d.get("metered") is True and d.get("meter") and close(d["meter"]["power"], m["Power"]),
             "Describe() of the strip has its summed meter", d)
        all_devs = json.loads(env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "Describe")[0])["devices"]
        order = [x["id"] for x in all_devs]
        mine = next(x for x in all_devs if x["id"] == sid)
        t.eq(mine.get("outlets"), ids, "Manager.Describe(): the strip lists its outlets")
        t.eq(order[order.index(sid) + 1:order.index(sid) + 7], ids, "Manager.Describe(): outlets follow their strip")
        plug = next(x for x in all_devs if x["id"] == kt.mac_id(sims[1]["mac"]))
        t.ok("outlets" not in plug or plug["outlets"] == [], "a plug lists no outlets", plug)
        total = json.loads(env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "Describe")[0])["total_power"]
        t.ok(total < sum(LOADS) * 2, "the strip is not counted twice in total_power", total)

        now = int(time.time() * 1e6)
        check_sums(t, env, strip, outlets, "GetHistory", (now - 120 * 1000000, 0, "raw"), "raw history",
                   (1, 2, 3, 4))
        check_sums(t, env, strip, outlets, "GetHistory", (now - 3600 * 1000000, 0, "minute"), "minute history",
                   (1, 2, 3, 4))
        check_sums(t, env, strip, outlets, "GetEnergy", (now - 3 * 86400 * 1000000, 0, "day"), "daily energy",
                   (1,))

        # Half a strip command: outlet 2 refuses, the others switch off.
        env.sim(cmd="fault", device=0, refuse_relay=[2])
        err = env.call_error(strip, kt.DEVICE_IFACE, "SetOn", "b", (False,))
        relays = [o["relay"] for o in env.truth(0)[0]["outlets"]]
        t.eq(relays, [False, False, True, False, False, False], "the simulator switched all but outlet 2")
        t.ok(err is not None and err[0] == "org.kasamond.Kasa1.Error.DeviceError",
             "SetOn(false) of the strip fails as a whole", err)
        msg = err[1] if err else ""
        switched = [i for i in ids if i != ids[2]]
        t.ok(ids[2] in msg and all(i in msg for i in switched) and msg.index(ids[2]) > msg.index(switched[-1]),
             "the error names the outlets that switched, then the one that did not", msg)
        t.eq([env.get(o, kt.DEVICE_IFACE, "On") for o in outlets], relays,
             "On of each outlet is its real state at once")
        t.eq(env.get(strip, kt.DEVICE_IFACE, "On"), True, "the strip is still on: one outlet is")
        env.wait_polled(strip)
        t.eq([env.get(o, kt.DEVICE_IFACE, "On") for o in outlets], relays, "and stays so after a poll")

        # Toggle of a partly switched strip: everything the same way.
        env.sim(cmd="clear", device=0)
        on = env.call(strip, kt.DEVICE_IFACE, "Toggle")[0]
        t.eq((on, [o["relay"] for o in env.truth(0)[0]["outlets"]]), (False, [False] * 6),
             "Toggle of a partly-on strip switches all its outlets off")
        env.call(strip, kt.DEVICE_IFACE, "SetOn", "b", (True,))
        t.eq([env.get(o, kt.DEVICE_IFACE, "On") for o in outlets + [strip]], [True] * 7, "SetOn(true) again")
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
