#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Switching and renaming over the bus reach the simulated devices; state
and PropertiesChanged follow (at most one per object, interface and poll);
bad arguments, unknown objects, absent interfaces and a hung device give
the documented errors."""

import sys

import kasatest as kt

DEVICES = ["hs110@127.0.0.2", "kp115@127.0.0.3", "hs300@127.0.0.4", "kp303@127.0.0.5", "hs100@127.0.0.6"]
INVALID_ARGS = "org.freedesktop.DBus.Error.InvalidArgs"


def check_coalescing(t, env, log, paths, meters):
    """Every successful poll changes LastSeen, so each Device signal must
    carry a new LastSeen (one Device signal per poll), and between two of
    them an object gets at most one EnergyMeter signal. The signal that
    announces a new device's properties comes before its first poll's:
    wait for that one first, so that only polls are counted."""
    env.wait_for(lambda: all(log.values(p, kt.DEVICE_IFACE, "LastSeen") for p in paths), 30,
                 "every object polled once")
    log.clear()
    env.wait_for(lambda: all(len(log.values(p, kt.DEVICE_IFACE, "LastSeen")) >= 4 for p in paths), 30,
                 "every object polled four times")
    for p in paths:
        seen = []
        meter_per_poll = {}
        extra = []
        for _, path, iface, changed in log.of(p):
            if iface == kt.DEVICE_IFACE:
                if "LastSeen" not in changed:
                    extra.append(f"Device signal without a new LastSeen: {sorted(changed)}")
                    continue
                seen.append(changed["LastSeen"])
            elif iface == kt.METER_IFACE:
                key = seen[-1] if seen else None
                meter_per_poll[key] = meter_per_poll.get(key, 0) + 1
        t.ok(not extra and seen == sorted(set(seen)), f"{p}: one Device PropertiesChanged per poll",
             f"{extra}\nLastSeen sequence {seen}")
        if p in meters:
            over = {k: n for k, n in meter_per_poll.items() if n > 1}
            t.ok(not over, f"{p}: at most one EnergyMeter PropertiesChanged per poll", f"{over}")
            t.ok(meter_per_poll, f"{p}: readings are announced")


def relay(env, index, outlet=0):
    return env.truth(index)[0]["outlets"][outlet]["relay"]


def switch_plug(t, env, log, index, path, name):
    log.clear()
    env.call(path, kt.DEVICE_IFACE, "SetOn", "b", (False,))
    t.eq(relay(env, index), False, f"{name}: SetOn(false) switches the simulated relay off")
    t.eq(env.get(path, kt.DEVICE_IFACE, "On"), False, f"{name}: On is false")
    kt.eventually(t, env, lambda: False in log.values(path, kt.DEVICE_IFACE, "On"), 10,
                  f"{name}: PropertiesChanged announces On=false")
    kt.eventually(t, env, lambda: env.get(path, kt.METER_IFACE, "Power") == 0.0, 10,
                  f"{name}: Power drops to 0 W")

    log.clear()
    env.call(path, kt.DEVICE_IFACE, "SetOn", "b", (True,))
    t.eq(relay(env, index), True, f"{name}: SetOn(true) switches the simulated relay on")
    t.eq(env.get(path, kt.DEVICE_IFACE, "On"), True, f"{name}: On is true")
    kt.eventually(t, env, lambda: True in log.values(path, kt.DEVICE_IFACE, "On"), 10,
                  f"{name}: PropertiesChanged announces On=true")
    kt.eventually(t, env, lambda: env.get(path, kt.METER_IFACE, "Power") > 0.0, 10,
                  f"{name}: Power comes back")

    t.eq(env.call(path, kt.DEVICE_IFACE, "Toggle")[0], False, f"{name}: Toggle returns the new state, off")
    t.eq(relay(env, index), False, f"{name}: Toggle switched the simulated relay off")
    t.eq(env.call(path, kt.DEVICE_IFACE, "Toggle")[0], True, f"{name}: Toggle again returns on")
    t.eq(relay(env, index), True, f"{name}: and the simulated relay is on again")


def main():
    t = kt.Tap()
    with kt.Env(DEVICES) as env:
        sims = env.sim_devices()
        hs110, kp115, hs300, kp303, hs100 = (env.device_path(kt.mac_id(s["mac"])) for s in sims)
        outlets = {i: [env.device_path(kt.mac_id(sims[i]["mac"], k)) for k in range(len(sims[i]["children"]))]
                   for i in (2, 3)}
        log = env.watch_properties()
        env.discover(1.0)
        everything = [hs110, kp115, hs300, kp303, hs100] + outlets[2] + outlets[3]
        env.wait_for(lambda: all(env.get(p, kt.DEVICE_IFACE, "Online") for p in everything), 10, "all online")

        check_coalescing(t, env, log, everything, set([hs110, kp115] + outlets[2]))

        switch_plug(t, env, log, 0, hs110, "HS110")
        switch_plug(t, env, log, 1, kp115, "KP115")

        # One outlet of a strip: exactly that outlet.
        o2 = outlets[2][2]
        log.clear()
        env.call(o2, kt.DEVICE_IFACE, "SetOn", "b", (False,))
        states = [o["relay"] for o in env.truth(2)[0]["outlets"]]
        t.eq(states, [True, True, False, True, True, True], "HS300 outlet 2: SetOn(false) switches only it")
        t.eq(env.get(o2, kt.DEVICE_IFACE, "On"), False, "HS300 outlet 2: On is false")
        t.eq(env.get(hs300, kt.DEVICE_IFACE, "On"), True, "HS300: the strip stays on (other outlets are)")
        t.eq([env.get(p, kt.DEVICE_IFACE, "On") for p in outlets[2]], [True, True, False, True, True, True],
             "HS300: the other outlets' On is unchanged")
        kt.eventually(t, env, lambda: False in log.values(o2, kt.DEVICE_IFACE, "On"), 10,
                      "HS300 outlet 2: PropertiesChanged announces On=false")
        kt.eventually(t, env, lambda: env.get(o2, kt.METER_IFACE, "Power") == 0.0, 10,
                      "HS300 outlet 2: Power drops to 0 W")
        env.call(o2, kt.DEVICE_IFACE, "SetOn", "b", (True,))
        t.eq(relay(env, 2, 2), True, "HS300 outlet 2: SetOn(true) switches it back on")

        # A whole strip: every outlet.
        for index, strip, name in ((3, kp303, "KP303"), (2, hs300, "HS300")):
            log.clear()
            env.call(strip, kt.DEVICE_IFACE, "SetOn", "b", (False,))
            states = [o["relay"] for o in env.truth(index)[0]["outlets"]]
            t.eq(states, [False] * len(states), f"{name}: SetOn(false) on the strip switches every outlet off")
            t.eq(env.get(strip, kt.DEVICE_IFACE, "On"), False, f"{name}: the strip's On is false")
            t.eq([env.get(p, kt.DEVICE_IFACE, "On") for p in outlets[index]], [False] * len(states),
                 f"{name}: every outlet's On is false")
            kt.eventually(t, env, lambda: all(False in log.values(p, kt.DEVICE_IFACE, "On")
                                              for p in [strip] + outlets[index]), 10,
                          f"{name}: PropertiesChanged announces On=false for the strip and each outlet")
            env.call(strip, kt.DEVICE_IFACE, "SetOn", "b", (True,))
            states = [o["relay"] for o in env.truth(index)[0]["outlets"]]
            t.eq(states, [True] * len(states), f"{name}: SetOn(true) switches every outlet on")
            t.eq(env.get(strip, kt.DEVICE_IFACE, "On"), True, f"{name}: the strip's On is true")

        # Rename writes into the device.
        log.clear()
        env.call(hs110, kt.DEVICE_IFACE, "Rename", "s", ("Desk lamp",))
        t.eq(env.sim_devices()[0]["alias"], "Desk lamp", "Rename writes the alias into the device")
        t.eq(env.get(hs110, kt.DEVICE_IFACE, "Alias"), "Desk lamp", "Rename updates Alias")
        kt.eventually(t, env, lambda: "Desk lamp" in log.values(hs110, kt.DEVICE_IFACE, "Alias"), 10,
                      "Rename: PropertiesChanged announces Alias")
        longest = "x" * 31
        env.call(hs110, kt.DEVICE_IFACE, "Rename", "s", (longest,))
        t.eq(env.sim_devices()[0]["alias"], longest, "Rename takes 31 bytes")
        env.call(outlets[2][4], kt.DEVICE_IFACE, "Rename", "s", ("Heater",))
        t.eq(env.truth(2)[0]["outlets"][4]["alias"], "Heater", "Rename of an outlet names that outlet")
        t.eq(env.get(outlets[2][4], kt.DEVICE_IFACE, "Alias"), "Heater", "and its Alias")
        for bad, what in (("", "an empty name"), ("y" * 40, "a 40-byte name"), ("\u00e9" * 16, "32 bytes of UTF-8")):
            err = env.call_error(hs110, kt.DEVICE_IFACE, "Rename", "s", (bad,))
            t.eq(err and err[0], INVALID_ARGS, f"Rename refuses {what} with InvalidArgs")
        t.eq(env.sim_devices()[0]["alias"], longest, "a refused Rename leaves the device's alias")

        # Errors.
        err = env.call_error(hs110, kt.METER_IFACE, "GetHistory", "tts", (0, 0, "weekly"))
        t.eq(err and err[0], INVALID_ARGS, "GetHistory with resolution 'weekly' gives InvalidArgs")
        for method, arg in (("GetHistory", "raw"), ("GetEnergy", "day")):
            err = env.call_error(hs100, kt.METER_IFACE, method, "tts", (0, 0, arg))
            t.ok(err and err[0] in ("org.freedesktop.DBus.Error.UnknownInterface",
                                    "org.freedesktop.DBus.Error.UnknownMethod"),
                 f"{method} on an HS100 (no meter) fails: the interface is absent", err)
        missing = env.device_path("0123456789ab")
        err = env.call_error(missing, kt.DEVICE_IFACE, "SetOn", "b", (True,))
        t.eq(err and err[0], "org.freedesktop.DBus.Error.UnknownObject", "SetOn on an unknown path: UnknownObject")

        env.sim(cmd="fault", device=4, hang=True)
        err = env.call_error(hs100, kt.DEVICE_IFACE, "SetOn", "b", (False,))
        t.eq(err and err[0], "org.kasamond.Kasa1.Error.Offline", "SetOn on a hung device gives Offline")
        t.ok(err and kt.mac_id(sims[4]["mac"]) in err[1] and "did not answer" in err[1],
             "the Offline error says which device did not answer", err)
        # A poll the hung device swallowed before the clear still times
        # out, and takes what is queued behind it along: wait for an answer.
        env.sim(cmd="clear", device=4)
        seen = env.get(hs100, kt.DEVICE_IFACE, "LastSeen")
        kt.eventually(t, env, lambda: env.get(hs100, kt.DEVICE_IFACE, "LastSeen") > seen and
                      env.get(hs100, kt.DEVICE_IFACE, "Online"), 30,
                      "HS100 answers polls again after the fault clears")
        env.call(hs100, kt.DEVICE_IFACE, "SetOn", "b", (False,))
        t.eq(relay(env, 4), False, "after the fault clears, SetOn works again")
        t.ok(env.daemon_alive(), "kasamond is still running")
        log.close()
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
