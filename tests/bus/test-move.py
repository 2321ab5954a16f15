#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A device that changes address keeps its id: once found at the new
address (by Discover or AddDevice) the same object comes back online with
the new Address and its history, no new object appears, and polling goes
on, also when the change lands while a poll to the old address is still
waiting for its answer."""

import select
import socket
import sys
import time

import kasatest as kt

from gi.repository import Gio

DEVICES = ["hs110@127.0.0.2", "kp115@127.0.0.3", "hs300@127.0.0.4"]
# 127.0.0.20 is a spare address the plug moves to; discovery probes it.
TARGETS = "127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.20"


def history(env, path):
    return [s[0] for s in env.call(path, kt.METER_IFACE, "GetHistory", "tts", (0, 0, "raw"))[0]]


def main():
    t = kt.Tap()
    # A long poll timeout keeps a poll to a silent address in flight for
    # the whole of the last case; refused connections still fail at once.
    with kt.Env(DEVICES, targets=TARGETS, poll_timeout=5) as env:
        sims = env.sim_devices()
        plug, kp115, strip = (env.device_path(kt.mac_id(s["mac"])) for s in sims)
        outlets = [env.device_path(kt.mac_id(sims[2]["mac"], k)) for k in range(6)]
        added = []
        env.bus.signal_subscribe(None, "org.freedesktop.DBus.ObjectManager", "InterfacesAdded", kt.MANAGER_PATH,
                                 None, Gio.DBusSignalFlags.NONE, lambda *a: added.append(a[5].unpack()[0]))
        env.discover(1.0)
        count = env.get(kt.MANAGER_PATH, kt.MANAGER_IFACE, "DeviceCount")
        paths = sorted(env.objects())
        t.eq(count, 3 + 6, "nine objects before any move")
        env.wait_for(lambda: len(history(env, plug)) >= 3, 30, "three samples of the plug recorded")
        env.iterate(0.2)
        added.clear()

        # 1. Discover finds the plug at its new address.
        before = history(env, plug)
        env.sim(cmd="fault", device=0, move="127.0.0.20")
        kt.eventually(t, env, lambda: not env.get(plug, kt.DEVICE_IFACE, "Online"), 30,
                      "after the move the plug goes offline")
        found = env.discover(1.0)
        t.ok(plug in found, "Discover returns the same object for the moved plug", found)
        t.eq(env.get(plug, kt.DEVICE_IFACE, "Address"), "127.0.0.20", "Address is the new one")
        kt.eventually(t, env, lambda: env.get(plug, kt.DEVICE_IFACE, "Online"), 30, "the plug is online again")
        seen = env.get(plug, kt.DEVICE_IFACE, "LastSeen")
        kt.eventually(t, env, lambda: env.get(plug, kt.DEVICE_IFACE, "LastSeen") > seen, 30,
                      "the plug is polled at its new address")
        t.eq(env.get(kt.MANAGER_PATH, kt.MANAGER_IFACE, "DeviceCount"), count, "DeviceCount is unchanged")
        t.eq(sorted(env.objects()), paths, "the same objects exist, no new one")
        after = history(env, plug)
        t.ok(set(before) <= set(after), "the history still holds every sample from before the move",
             f"{len(set(before) - set(after))} of {len(before)} missing")
        kt.eventually(t, env, lambda: max(history(env, plug)) > max(before) and
                      env.get(plug, kt.METER_IFACE, "Power") > 0, 30,
                      "and new samples are added to the same history")

        # 2. AddDevice of a strip at an address discovery does not probe.
        env.sim(cmd="fault", device=2, move="127.0.0.21")
        kt.eventually(t, env, lambda: not env.get(strip, kt.DEVICE_IFACE, "Online"), 30,
                      "after the move the strip goes offline")
        before = history(env, outlets[3])
        err = env.call_error(kt.MANAGER_PATH, kt.MANAGER_IFACE, "AddDevice", "s", ("127.0.0.21",))
        t.ok(err and err[0] == "org.kasamond.Kasa1.Error.AlreadyKnown" and strip.rsplit("/", 1)[1] in err[1] and
             "127.0.0.4 to 127.0.0.21" in err[1], "AddDevice at the new address: the strip is known, its address changed",
             err)
        t.eq(env.get(kt.MANAGER_PATH, kt.MANAGER_IFACE, "DeviceCount"), 9, "no new object")
        t.eq([env.get(p, kt.DEVICE_IFACE, "Address") for p in [strip] + outlets], ["127.0.0.21"] * 7,
             "the strip and every outlet have the new Address")
        kt.eventually(t, env, lambda: all(env.get(p, kt.DEVICE_IFACE, "Online") for p in [strip] + outlets), 30,
                      "the strip and its outlets are online again")
        seen = env.get(outlets[3], kt.DEVICE_IFACE, "LastSeen")
        kt.eventually(t, env, lambda: env.get(outlets[3], kt.DEVICE_IFACE, "LastSeen") > seen, 30,
                      "the outlets are polled at the new address")
        t.ok(set(before) <= set(history(env, outlets[3])), "an outlet's history survives the move")
        env.call(outlets[3], kt.DEVICE_IFACE, "SetOn", "b", (False,))
        t.eq(env.truth(2)[0]["outlets"][3]["relay"], False, "switching an outlet reaches the strip at its new address")

        # 3. The address changes while a poll to the old one is in flight:
        # something else now listens there and never answers.
        env.sim(cmd="fault", device=1, move="127.0.0.23")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            squatter.bind(("127.0.0.3", 9999))
            squatter.listen(4)
            peers = []

            def request_arrived():
                if select.select([squatter], [], [], 0)[0]:
                    peers.append(squatter.accept()[0])
                return any(select.select([p], [], [], 0)[0] for p in peers)
            try:
                env.wait_for(request_arrived, 30, "a poll of the KP115 at its old address")
                err = env.call_error(kt.MANAGER_PATH, kt.MANAGER_IFACE, "AddDevice", "s", ("127.0.0.23",))
                t.ok(err and err[0] == "org.kasamond.Kasa1.Error.AlreadyKnown" and kp115.rsplit("/", 1)[1] in err[1],
                     "AddDevice while a poll to the old address hangs: the same device, known already", err)
                t.eq(env.get(kp115, kt.DEVICE_IFACE, "Address"), "127.0.0.23", "Address is the new one")
                seen = env.get(kp115, kt.DEVICE_IFACE, "LastSeen")
                kt.eventually(t, env, lambda: env.get(kp115, kt.DEVICE_IFACE, "LastSeen") > seen, 30,
                              "polling goes on at the new address (the hung poll does not stop it)")
                kt.eventually(t, env, lambda: env.get(kp115, kt.DEVICE_IFACE, "Online"), 30, "the KP115 is online")
            finally:
                for p in peers:
                    p.close()

        env.iterate(0.2)
        t.eq(added, [], "no object was added by any of the moves")
        t.eq(env.get(kt.MANAGER_PATH, kt.MANAGER_IFACE, "DeviceCount"), count, "DeviceCount is unchanged at the end")
        t.ok(env.daemon_alive(), "kasamond is still running")
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
