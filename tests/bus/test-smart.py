#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Tapo P110s (smart dialect over KLAP v2) beside an XOR plug and a KLAP
IOT plug: found by 20002 discovery (device type SMART.TAPOPLUG) or by
AddDevice (asked in IOT first, then in the smart dialect), polled, on the
bus exactly like the others: Protocol klap2/smart, the nickname as
Alias, power, energy counted from the device's Wh counter, switching."""

import signal
import sys
import time

import kasatest as kt

USER, PASSWORD = "owner@example.com", "Tapo-pa55"
KLAP = [
    # index, profile, address, load W
    (0, "p110", "127.0.0.3", 3600),
    (1, "kp125m", "127.0.0.4", 50),
    (2, "p110", "127.0.0.5", 1800),   # not a discovery target: AddDevice
]
XOR = "hs110@127.0.0.2"
XOR_INDEX = 3


def main():
    devices = [{"profile": p, "address": a, "port": 80, "load_w": w,
                "alias": f"Tapo {i}" if p == "p110" else f"Kasa {i}",
                "klap": {"version": 2, "user": USER, "password": PASSWORD}}
               for i, p, a, w in KLAP]
    return kt.run_with_account(kt.Tap(), devices, USER, PASSWORD, [XOR], "127.0.0.2 127.0.0.3 127.0.0.4", run)


def run(t, env):
    sims = env.sim_devices()
    path = {s["index"]: env.device_path(kt.mac_id(s["mac"])) for s in sims}
    found = [path[0], path[1], path[XOR_INDEX]]
    env.wait_for(lambda: all(p in env.objects() for p in found), 30,
                 "the discovery at start finds the P110, the KP125M and the XOR plug")
    t.ok(True, "P110 (20002, SMART.TAPOPLUG) discovered beside KLAP IOT and XOR devices")

    added = env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "AddDevice", "s", ("127.0.0.5",))[0]
    t.eq(added, path[2], "AddDevice 127.0.0.5 finds the P110 (IOT asked first, then smart)")
    for p in path.values():
        env.wait_polled(p)

    want = {0: "klap2/smart", 1: "klap2/iot", 2: "klap2/smart", XOR_INDEX: "xor/iot"}
    for i, proto in want.items():
        p = path[i]
        name = f"{sims[i]['profile']}@{sims[i]['address']}"
        t.eq(env.get(p, kt.DEVICE_IFACE, "Protocol"), proto, f"{name}: Protocol {proto}")
        t.eq(env.get(p, kt.DEVICE_IFACE, "Online"), True, f"{name}: online")
    for i in (0, 2):
        p = path[i]
        t.eq(env.get(p, kt.DEVICE_IFACE, "Model"), "P110", f"P110 {i}: Model")
        t.eq(env.get(p, kt.DEVICE_IFACE, "Alias"), f"Tapo {i}", f"P110 {i}: the base64 nickname is the Alias")
        t.eq(env.get(p, kt.DEVICE_IFACE, "AuthState"), "ok", f"P110 {i}: AuthState ok")

    for i in (0, 1, 2, XOR_INDEX):
        p = path[i]
        env.wait_polled(p)
        power = env.get(p, kt.METER_IFACE, "Power")
        load = env.truth(i)[0]["outlets"][0]["load_mw"] / 1000
        t.ok(abs(power - load) < 0.01, f"{sims[i]['profile']} ({want[i]}): Power {power} W is the simulated load",
             f"want {load}")

    # 3600 W: the P110's month_energy counts a whole Wh each second.
    start = env.get(path[0], kt.METER_IFACE, "EnergyTotal")
    time.sleep(4)
    env.wait_polled(path[0])
    end = env.get(path[0], kt.METER_IFACE, "EnergyTotal")
    truth = env.truth(0)[0]["energy_mwh"] / 1000
    t.ok(end - start >= 2, f"P110: EnergyTotal grows with the device's counter ({start} -> {end} Wh)")
    t.ok(end <= truth + 1, f"P110: EnergyTotal {end} Wh is not above the delivered {truth:.1f} Wh (+1 Wh)")

    for i in (0, 2):
        p = path[i]
        env.call(p, kt.DEVICE_IFACE, "SetOn", "b", (False,))
        t.eq(env.truth(i)[0]["outlets"][0]["relay"], False, f"P110 {i}: SetOn(false) switches the relay off")
        env.wait_polled(p)
        t.eq(env.get(p, kt.DEVICE_IFACE, "On"), False, f"P110 {i}: On false")
        t.eq(env.get(p, kt.METER_IFACE, "Power"), 0.0, f"P110 {i}: Power 0 W when off")
        env.call(p, kt.DEVICE_IFACE, "SetOn", "b", (True,))
        t.eq(env.truth(i)[0]["outlets"][0]["relay"], True, f"P110 {i}: SetOn(true) switches it on again")

    env.call(path[0], kt.DEVICE_IFACE, "Rename", "s", ("Küche",))
    env.wait_polled(path[0])
    t.eq(env.get(path[0], kt.DEVICE_IFACE, "Alias"), "Küche", "P110: Rename sends a base64 nickname")

    # After a restart the registry has the devices but not their dialect:
    # the first poll asks in IOT, the P110 answers with a bare error_code,
    # and the same round asks again in the smart dialect.
    t.eq(env.stop_daemon(signal.SIGTERM), 0, "kasamond exits 0 on SIGTERM")
    env.start_daemon()
    for i in (0, 2):
        p = path[i]
        kt.eventually(t, env, lambda: p in env.objects() and env.get(p, kt.DEVICE_IFACE, "Online"), 20,
                      f"after a restart: P110 {i} polled and online")
        t.eq(env.get(p, kt.DEVICE_IFACE, "Protocol"), "klap2/smart", f"after a restart: P110 {i} Protocol klap2/smart")
        load = env.truth(i)[0]["outlets"][0]["load_mw"] / 1000
        t.eq(env.get(p, kt.METER_IFACE, "Power"), load, f"after a restart: P110 {i} Power is the load")
    t.ok("speaks the smart dialect" in env.log(), "after a restart: the log says the dialect was found")
    # A KLAP device loaded from the registry is spoken to with KLAP (its
    # port is 80), not XOR.
    kt.eventually(t, env, lambda: env.get(path[1], kt.DEVICE_IFACE, "Online"), 20,
                  "after a restart: the KP125M (KLAP, IOT) polled and online")
    t.eq(env.get(path[1], kt.DEVICE_IFACE, "Protocol"), "klap2/iot", "after a restart: KP125M Protocol klap2/iot")


if __name__ == "__main__":
    sys.exit(main())
