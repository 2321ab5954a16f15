#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Tapo P300 strips (smart dialect over KLAP v2, three outlets, no meter)
on the bus exactly like IOT strips: found by 20002 discovery or by
AddDevice, over KLAP or AES, the strip and one Device per outlet (from
get_child_device_list), each outlet switched alone through control_child,
its state read back from the strip's poll, renamed with a base64 nickname,
listed under the strip by Describe() and kasactl, and found again after a
restart."""

import json
import signal
import sys

import kasatest as kt

USER, PASSWORD = "owner@example.com", "Tapo-pa55"
KLAP = {"version": 2, "user": USER, "password": PASSWORD}
AES = {"login_version": 2, "user": USER, "password": PASSWORD}
XOR = "hs100@127.0.0.2"


def main():
    devices = [
        {"profile": "p300", "address": "127.0.0.3", "port": 80, "alias": "Desk strip", "klap": KLAP,
         "outlets": [{"alias": "Lamp"}, {"alias": "Monitor", "relay": False}, {"alias": "Charger"}]},
        # Not a discovery target: AddDevice.
        {"profile": "p300", "address": "127.0.0.4", "port": 80, "alias": "Shelf strip", "klap": KLAP},
        # The firmware before KLAP: AES securePassthrough.
        {"profile": "p300", "address": "127.0.0.5", "port": 80, "alias": "AES strip", "aes": AES},
    ]
    return kt.run_with_account(kt.Tap(), devices, USER, PASSWORD, [XOR], "127.0.0.2 127.0.0.3 127.0.0.5", run)


def relays(env, index):
    return [o["relay"] for o in env.truth(index)[0]["outlets"]]


def on_states(env, paths):
    return [env.get(p, kt.DEVICE_IFACE, "On") for p in paths]


def run(t, env):
    sims = env.sim_devices()
    sid = [kt.mac_id(sims[i]["mac"]) for i in (0, 1)]
    strip = [env.device_path(s) for s in sid]
    ids = [[kt.mac_id(sims[i]["mac"], k) for k in range(3)] for i in (0, 1)]
    outlets = [[env.device_path(o) for o in ids[i]] for i in (0, 1)]

    env.wait_for(lambda: all(p in env.objects() for p in [strip[0]] + outlets[0]), 30,
                 "the discovery at start finds the P300 and its outlets")
    t.ok(True, "P300 (20002, SMART.TAPOPLUG) discovered with one Device per outlet")
    added = env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "AddDevice", "s", ("127.0.0.4",))[0]
    t.eq(added, strip[1], "AddDevice 127.0.0.4 finds the second P300 (IOT asked first, then smart)")
    objs = env.objects()
    t.ok(all(p in objs for p in outlets[1]), "AddDevice made the second P300's outlets too")
    for p in strip:
        env.wait_polled(p)

    objs = env.objects()
    for i in (0, 1):
        name = f"P300 {i}"
        t.eq(env.get(strip[i], kt.DEVICE_IFACE, "Model"), "P300", f"{name}: Model")
        t.eq(env.get(strip[i], kt.DEVICE_IFACE, "Protocol"), "klap2/smart", f"{name}: Protocol klap2/smart")
        t.eq(env.get(strip[i], kt.DEVICE_IFACE, "AuthState"), "ok", f"{name}: AuthState ok")
        t.ok(all(kt.METER_IFACE not in objs[p] for p in [strip[i]] + outlets[i]),
             f"{name}: no EnergyMeter on a strip without meter, nor on its outlets")
        for k, p in enumerate(outlets[i]):
            t.eq(env.get(p, kt.DEVICE_IFACE, "Protocol"), "klap2/smart", f"{name} outlet {k}: Protocol")
            t.eq(env.get(p, kt.DEVICE_IFACE, "Online"), True, f"{name} outlet {k}: online")
    t.eq(env.get(strip[0], kt.DEVICE_IFACE, "Alias"), "Desk strip", "the strip's base64 nickname is its Alias")
    t.eq([env.get(p, kt.DEVICE_IFACE, "Alias") for p in outlets[0]], ["Lamp", "Monitor", "Charger"],
         "each outlet's base64 nickname is its Alias")
    t.eq(on_states(env, outlets[0]), [True, False, True], "each outlet's On is its device_on")
    t.eq(env.get(strip[0], kt.DEVICE_IFACE, "On"), True, "the strip is on: an outlet is")
    t.eq(on_states(env, outlets[1]), [True] * 3, "the second P300's outlets: On true on the bus")

    d = json.loads(env.call(strip[0], kt.DEVICE_IFACE, "Describe")[0])
    t.eq(d.get("outlets"), ids[0], "Describe() of the P300 lists its outlets")
    all_devs = json.loads(env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "Describe")[0])["devices"]
    order = [x["id"] for x in all_devs]
    t.eq(order[order.index(sid[0]) + 1:order.index(sid[0]) + 4], ids[0], "Manager.Describe(): outlets follow the P300")

    # The same over AES securePassthrough.
    aes = env.device_path(kt.mac_id(sims[2]["mac"]))
    aes_outlets = [env.device_path(kt.mac_id(sims[2]["mac"], k)) for k in range(3)]
    env.wait_for(lambda: all(p in env.objects() for p in [aes] + aes_outlets), 30,
                 "the discovery at start finds the AES P300 and its outlets")
    env.wait_polled(aes)
    t.eq(env.get(aes, kt.DEVICE_IFACE, "Protocol"), "aes/smart", "AES P300: Protocol aes/smart")
    env.call(aes_outlets[2], kt.DEVICE_IFACE, "SetOn", "b", (False,))
    t.eq(relays(env, 2), [True, True, False], "AES P300: SetOn(false) of outlet 2 switches only that outlet")
    env.wait_polled(aes)
    t.eq(on_states(env, aes_outlets), [True, True, False], "AES P300: a poll reads the states back")

    # One outlet alone, through control_child.
    env.call(outlets[0][0], kt.DEVICE_IFACE, "SetOn", "b", (False,))
    t.eq(relays(env, 0), [False, False, True], "SetOn(false) of outlet 0 switches only that outlet")
    t.eq((relays(env, 1), relays(env, 2)), ([True] * 3, [True, True, False]), "the other P300s are untouched")
    t.eq(on_states(env, outlets[0]), [False, False, True], "On of each outlet at once")
    env.call(outlets[0][1], kt.DEVICE_IFACE, "SetOn", "b", (True,))
    t.eq(relays(env, 0), [False, True, True], "SetOn(true) of outlet 1 switches only that outlet")
    env.wait_polled(strip[0])
    t.eq(on_states(env, outlets[0]), [False, True, True], "and a poll reads the same states back")

    # Switched at the device: the strip's poll (get_child_device_list) sees it.
    env.sim(cmd="set", device=0, outlet=2, relay=False)
    env.wait_polled(strip[0], polls=2)
    t.eq(on_states(env, outlets[0]), [False, True, False], "an outlet switched at the device: its On follows")

    # The strip as a whole: every outlet.
    env.call(strip[0], kt.DEVICE_IFACE, "SetOn", "b", (False,))
    t.eq(relays(env, 0), [False] * 3, "SetOn(false) of the strip switches all its outlets off")
    t.eq(env.get(strip[0], kt.DEVICE_IFACE, "On"), False, "the strip is off when every outlet is")
    env.call(strip[0], kt.DEVICE_IFACE, "SetOn", "b", (True,))
    t.eq(relays(env, 0), [True] * 3, "SetOn(true) of the strip switches them all on")
    t.eq(on_states(env, outlets[0] + [strip[0]]), [True] * 4, "and the bus says so")

    env.call(outlets[0][2], kt.DEVICE_IFACE, "Rename", "s", ("Ladegerät",))
    t.eq(env.truth(0)[0]["outlets"][2]["alias"], "Ladegerät", "Rename of an outlet renames it on the device")
    env.wait_polled(strip[0])
    t.eq(env.get(outlets[0][2], kt.DEVICE_IFACE, "Alias"), "Ladegerät", "and the poll reads the nickname back")
    t.eq(env.get(strip[0], kt.DEVICE_IFACE, "Alias"), "Desk strip", "the strip keeps its own nickname")

    out = kt.kasactl(env, "status")
    lines = out.splitlines()
    at = next((n for n, line in enumerate(lines) if line.startswith("Desk strip ")), None)
    t.ok(at is not None and lines[at + 1].startswith("|-Lamp ") and lines[at + 2].startswith("|-Monitor ") and
         lines[at + 3].startswith("`-Lade"), "kasactl status lists the outlets under the P300", out)
    out = kt.kasactl(env, "show", "Desk strip")
    t.ok(all(f"{o} (" in out for o in ids[0]) and "Model: P300" in out, "kasactl show of the P300 lists its outlets",
         out)

    # After a restart the registry has the strip and its outlets but not
    # their dialect: the first poll finds it, then asks for the children.
    t.eq(env.stop_daemon(signal.SIGTERM), 0, "kasamond exits 0 on SIGTERM")
    env.start_daemon()
    for i in (0, 1):
        kt.eventually(t, env, lambda: all(p in env.objects() and env.get(p, kt.DEVICE_IFACE, "Online")
                                          for p in [strip[i]] + outlets[i]), 20,
                      f"after a restart: P300 {i} and its outlets polled and online")
    env.wait_polled(strip[0])
    t.eq(env.get(strip[0], kt.DEVICE_IFACE, "Protocol"), "klap2/smart", "after a restart: Protocol klap2/smart")
    env.call(outlets[0][1], kt.DEVICE_IFACE, "SetOn", "b", (False,))
    t.eq(relays(env, 0), [True, False, True], "after a restart: an outlet still switches alone")
    t.eq(on_states(env, outlets[0]), [True, False, True], "after a restart: each outlet's On")


if __name__ == "__main__":
    sys.exit(main())
