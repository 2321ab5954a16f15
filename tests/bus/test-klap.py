#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""KLAP v1, KLAP v2 and XOR devices side by side: discovered (UDP 20002
beside 9999) and polled, Protocol and AuthState on the bus, energy and
switching on each, a session expiry survived without a missed poll, wrong
credentials shown on the bus (never the credentials themselves) and
recovered from once they match again; AddDevice probes XOR, then KLAP."""

import json
import sys

import kasatest as kt

USER, PASSWORD = "owner@example.com", "Pa55-w0rd-kasa"
KLAP = [
    # index, profile, address, version, metered
    (0, "hs100", "127.0.0.3", 1, False),
    (1, "kp115", "127.0.0.4", 1, True),
    (2, "kp125m", "127.0.0.5", 2, True),
    (3, "kp125m", "127.0.0.6", 2, True),   # not a discovery target: AddDevice
]
XOR = "hs110@127.0.0.2"
XOR_INDEX = 4


def main():
    devices = [{"profile": p, "address": a, "port": 80, "load_w": 50,
                "klap": {"version": v, "user": USER, "password": PASSWORD, "session_timeout": 3600}}
               for _, p, a, v, _ in KLAP]
    return kt.run_with_account(kt.Tap(), devices, USER, PASSWORD, [XOR],
                               "127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.5 127.0.0.7", run)


def run(t, env):
    sims = env.sim_devices()
    path = {s["index"]: env.device_path(kt.mac_id(s["mac"])) for s in sims}
    found = [path[i] for i, _, _, _, _ in KLAP[:3]] + [path[XOR_INDEX]]
    env.wait_for(lambda: all(p in env.objects() for p in found), 30,
                 "the discovery at start finds the XOR and the KLAP devices")
    t.ok(True, "XOR (9999) and KLAP (20002) devices discovered side by side")
    for p in found:
        env.wait_polled(p)

    want = {XOR_INDEX: ("xor/iot", "none", "127.0.0.2")}
    want.update({i: (f"klap{v}/iot", "ok", f"{a}:80") for i, _, a, v, _ in KLAP[:3]})
    for i, (proto, auth, address) in want.items():
        p = path[i]
        t.eq(env.get(p, kt.DEVICE_IFACE, "Protocol"), proto, f"{sims[i]['profile']}@{address}: Protocol {proto}")
        t.eq(env.get(p, kt.DEVICE_IFACE, "AuthState"), auth, f"{sims[i]['profile']}@{address}: AuthState {auth}")
        t.eq(env.get(p, kt.DEVICE_IFACE, "Address"), address, f"{sims[i]['profile']}: Address {address}")
        t.eq(env.get(p, kt.DEVICE_IFACE, "Online"), True, f"{sims[i]['profile']}@{address}: online")

    # AddDevice without a port: no XOR device answers there, KLAP does.
    added = env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "AddDevice", "s", ("127.0.0.6",))[0]
    t.eq(added, path[3], "AddDevice 127.0.0.6 finds the KLAP device on port 80")
    env.wait_polled(added)
    t.eq(env.get(added, kt.DEVICE_IFACE, "Protocol"), "klap2/iot", "AddDevice: Protocol klap2/iot")

    # Energy and switching on each.
    for i in (XOR_INDEX, 1, 2, 3):
        kt.check_power(t, env, path[i], i, f"{sims[i]['profile']} ({env.get(path[i], kt.DEVICE_IFACE, 'Protocol')})")
    for i in (XOR_INDEX, 0, 1, 2):
        kt.check_switch(t, env, path[i], i, f"{sims[i]['profile']} ({env.get(path[i], kt.DEVICE_IFACE, 'Protocol')})")

    # Session expiry: the device answers 403, kasamond opens a new session
    # for the same poll; the device never goes offline.
    kt.check_session_expiry(t, env, path[2], 2)

    # The owner changed the account's password: the device shows it.
    kt.check_wrong_credentials(t, env, path[0], 0, path[1], USER, PASSWORD, "klap1/iot", "server hash")

    # A KLAP device that moved (DHCP) is found at its new address by 20002.
    env.sim(cmd="fault", device=1, move="127.0.0.7")
    env.discover(2.0)
    kt.eventually(t, env, lambda: env.get(path[1], kt.DEVICE_IFACE, "Address") == "127.0.0.7:80", 10,
                  "moved: 20002 discovery gives the KLAP device its new address")
    env.wait_polled(path[1])
    t.eq(env.get(path[1], kt.DEVICE_IFACE, "Online"), True, "moved: polled there")

    # Never the credentials: not on the bus, not in the log.
    every = json.dumps([[str(v) for v in env.get_all(p, kt.DEVICE_IFACE).values()] for p in path.values()])
    t.ok(PASSWORD not in every and "changed in the app" not in every, "no password on the bus")
    log_text = env.log()
    t.ok(PASSWORD not in log_text and "changed in the app" not in log_text, "no password in the log")
    t.ok("server hash" in log_text, "the log says why the device failed")


if __name__ == "__main__":
    sys.exit(main())
