#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A removed device stays removed until AddDevice: neither an explicit
Discover nor the periodic one (nor a restart) brings it back. AddDevice
of a device known already says so with org.kasamond.Kasa1.Error.AlreadyKnown
(and whether its address changed); AddDevice of a removed one brings it
back."""

import sys

import kasatest as kt

DEVICES = ["hs110@127.0.0.2", "hs300@127.0.0.3"]
ALREADY = "org.kasamond.Kasa1.Error.AlreadyKnown"


def main():
    t = kt.Tap()
    with kt.Env(DEVICES) as env:
        sims = env.sim_devices()
        plug = env.device_path(kt.mac_id(sims[0]["mac"]))
        strip = env.device_path(kt.mac_id(sims[1]["mac"]))
        env.discover(1.0)
        t.ok(plug in env.objects(), "discovered")

        env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "RemoveDevice", "o", (plug,))
        t.ok(plug not in env.objects(), "RemoveDevice takes the object away")
        found = env.discover(1.0)
        t.ok(plug not in found and plug not in env.objects(), "an explicit Discover does not bring it back",
             found)
        t.ok(strip in found, "Discover still reports the others")
        # At start kasamond discovers once by itself (Timeout=1 s).
        env.stop_daemon()
        env.start_daemon()
        env.iterate(2.5)
        t.ok(plug not in env.objects(), "nor a restart and its own discovery")

        err = env.call_error(kt.MANAGER_PATH, kt.MANAGER_IFACE, "AddDevice", "s", ("127.0.0.3",))
        t.ok(err is not None and err[0] == ALREADY and strip.rsplit("/", 1)[1] in err[1] and
             "127.0.0.3" in err[1], "AddDevice of a known device: AlreadyKnown, naming it and its address", err)
        path = env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "AddDevice", "s", ("127.0.0.2",))[0]
        t.eq(path, plug, "AddDevice of the removed device brings it back")
        kt.eventually(t, env, lambda: env.get(plug, kt.DEVICE_IFACE, "Online"), 20, "and it is polled")
        err = env.call_error(kt.MANAGER_PATH, kt.MANAGER_IFACE, "AddDevice", "s", ("127.0.0.2",))
        t.ok(err is not None and err[0] == ALREADY, "a second AddDevice says AlreadyKnown", err)

        env.sim(cmd="fault", device=0, move="127.0.0.12")
        err = env.call_error(kt.MANAGER_PATH, kt.MANAGER_IFACE, "AddDevice", "s", ("127.0.0.12",))
        t.ok(err is not None and err[0] == ALREADY and "127.0.0.2" in err[1] and "127.0.0.12" in err[1],
             "AddDevice at a new address: AlreadyKnown, saying the address changed", err)
        t.eq(env.get(plug, kt.DEVICE_IFACE, "Address"), "127.0.0.12", "and the device has its new address")
        env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "RemoveDevice", "o", (plug,))
        env.stop_daemon()
        env.start_daemon()
        t.ok(plug not in env.objects(), "removed again: not loaded at start")
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
