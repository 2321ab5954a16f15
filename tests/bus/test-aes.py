#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""AES securePassthrough devices (Tapo P110s on the firmware before KLAP,
login versions 1 and 2) beside a KLAP v2 P110, a KLAP v1 Kasa plug and an
XOR plug: discovered (20002 says AES) and polled, Protocol aes/smart and
AuthState on the bus, energy and switching on each, a session expiry
(error_code 9999) survived without a missed poll, wrong credentials shown
on the bus (never the credentials themselves) and recovered from once they
match again; AddDevice finds an AES device by address (KLAP's handshake1
answered 404, then AES), and a restart, which forgets the transport,
finds it again the same way."""

import json
import signal
import sys
import time

import kasatest as kt

USER, PASSWORD = "owner@example.com", "Pa55-w0rd-tapo"
HTTP = [
    # index, profile, address, transport, version, load W
    (0, "p110", "127.0.0.3", "aes", 1, 3600),
    (1, "p110", "127.0.0.4", "aes", 2, 1800),
    (2, "p110", "127.0.0.5", "klap", 2, 60),
    (3, "hs100", "127.0.0.6", "klap", 1, 40),
    (4, "p110", "127.0.0.7", "aes", 1, 100),   # not a discovery target: AddDevice
]
XOR = "kp115@127.0.0.2"
XOR_INDEX = 5


def device(index, profile, address, transport, version, load):
    d = {"profile": profile, "address": address, "port": 80, "load_w": load, "alias": f"Plug {index}"}
    creds = {"user": USER, "password": PASSWORD, "session_timeout": 3600}
    d[transport] = creds | ({"version": version} if transport == "klap" else {"login_version": version})
    return d


def main():
    return kt.run_with_account(kt.Tap(), [device(*d) for d in HTTP], USER, PASSWORD, [XOR],
                               "127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.5 127.0.0.6", run)


def name(sims, i, env=None, path=None):
    proto = f" ({env.get(path, kt.DEVICE_IFACE, 'Protocol')})" if env else ""
    return f"{sims[i]['profile']}@{sims[i]['address']}{proto}"


def run(t, env):
    sims = env.sim_devices()
    path = {s["index"]: env.device_path(kt.mac_id(s["mac"])) for s in sims}
    found = [path[i] for i in (0, 1, 2, 3, XOR_INDEX)]
    env.wait_for(lambda: all(p in env.objects() for p in found), 30,
                 "the discovery at start finds the AES, KLAP and XOR devices")
    t.ok(True, "AES and KLAP (20002) and XOR (9999) devices discovered side by side")
    for p in found:
        env.wait_polled(p)

    want = {0: "aes/smart", 1: "aes/smart", 2: "klap2/smart", 3: "klap1/iot", XOR_INDEX: "xor/iot"}
    for i, proto in want.items():
        p = path[i]
        auth = "none" if i == XOR_INDEX else "ok"
        t.eq(env.get(p, kt.DEVICE_IFACE, "Protocol"), proto, f"{name(sims, i)}: Protocol {proto}")
        t.eq(env.get(p, kt.DEVICE_IFACE, "AuthState"), auth, f"{name(sims, i)}: AuthState {auth}")
        t.eq(env.get(p, kt.DEVICE_IFACE, "Online"), True, f"{name(sims, i)}: online")
    for i in (0, 1):
        t.eq(env.get(path[i], kt.DEVICE_IFACE, "Model"), "P110", f"{name(sims, i)}: Model P110")
        t.eq(env.get(path[i], kt.DEVICE_IFACE, "Alias"), f"Plug {i}", f"{name(sims, i)}: the nickname is the Alias")
    truth = env.truth(1)[0]
    t.ok(truth.get("aes") == 2 and truth.get("logins", 0) >= 1,
         "the login version 2 device was logged in with password2", truth)

    # AddDevice without a port: no XOR device there; KLAP's handshake1 is
    # answered 404, and the same request goes on over AES.
    added = env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "AddDevice", "s", ("127.0.0.7",))[0]
    t.eq(added, path[4], "AddDevice 127.0.0.7 finds the AES device on port 80")
    env.wait_polled(added)
    t.eq(env.get(added, kt.DEVICE_IFACE, "Protocol"), "aes/smart", "AddDevice: Protocol aes/smart")

    # Energy and switching on each.
    for i in (0, 1, 2, 4, XOR_INDEX):
        kt.check_power(t, env, path[i], i, name(sims, i, env, path[i]))
    # 3600 W: the P110's month_energy counts a whole Wh each second.
    start = env.get(path[0], kt.METER_IFACE, "EnergyTotal")
    time.sleep(4)
    env.wait_polled(path[0])
    end = env.get(path[0], kt.METER_IFACE, "EnergyTotal")
    delivered = env.truth(0)[0]["energy_mwh"] / 1000
    t.ok(end - start >= 2, f"AES P110: EnergyTotal grows with the device's counter ({start} -> {end} Wh)")
    t.ok(end <= delivered + 1, f"AES P110: EnergyTotal {end} Wh is not above the delivered {delivered:.1f} Wh")
    for i in (0, 1, 2, 3, XOR_INDEX):
        kt.check_switch(t, env, path[i], i, name(sims, i, env, path[i]))

    # Session expiry: the device answers error_code 9999, kasamond opens a
    # new session (handshake + login) for the same poll; never offline.
    kt.check_session_expiry(t, env, path[0], 0)

    # The owner changed the account's password: login_device refuses every
    # candidate, and the device shows it.
    kt.check_wrong_credentials(t, env, path[1], 1, path[0], USER, PASSWORD, "aes/smart", "login_device")

    # After a restart the registry has the devices but not their transport:
    # KLAP first, a 404, then AES within the same poll.
    t.eq(env.stop_daemon(signal.SIGTERM), 0, "kasamond exits 0 on SIGTERM")
    env.start_daemon()
    for i in (0, 4):
        p = path[i]
        kt.eventually(t, env, lambda: p in env.objects() and env.get(p, kt.DEVICE_IFACE, "Online"), 20,
                      f"after a restart: {name(sims, i)} polled and online")
        t.eq(env.get(p, kt.DEVICE_IFACE, "Protocol"), "aes/smart", f"after a restart: {name(sims, i)} aes/smart")
    kt.eventually(t, env, lambda: env.get(path[2], kt.DEVICE_IFACE, "Online"), 20,
                  "after a restart: the KLAP P110 polled and online")
    t.eq(env.get(path[2], kt.DEVICE_IFACE, "Protocol"), "klap2/smart", "after a restart: KLAP P110 klap2/smart")

    # Never the credentials: not on the bus, not in the log.
    every = json.dumps([[str(v) for v in env.get_all(p, kt.DEVICE_IFACE).values()] for p in path.values()])
    t.ok(PASSWORD not in every and "changed in the app" not in every, "no password on the bus")
    log_text = env.log()
    t.ok(PASSWORD not in log_text and "changed in the app" not in log_text, "no password in the log")
    t.ok("login_device refused" in log_text, "the log says why the device failed")


if __name__ == "__main__":
    sys.exit(main())
