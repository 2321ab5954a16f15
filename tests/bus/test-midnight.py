#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""EnergyToday of an offline device goes back to 0 at local midnight and
says so: kasamond runs in a time zone of the test's own (compiled with
zic into a private TZDIR) whose midnight is a few seconds away, with a
plug and a strip that stopped answering."""

import os
import shutil
import subprocess
import sys
import tempfile
import time

import kasatest as kt

DEVICES = ["hs110@127.0.0.2", "hs300@127.0.0.3"]
ZONE = "Test/Midnight"


def main():
    t = kt.Tap()
    tzdir = tempfile.mkdtemp(prefix="kasa-zoneinfo-")
    try:
        kt.write_zone(tzdir, ZONE, 0)
        os.environ["TZDIR"] = tzdir
        run(t, tzdir)
    finally:
        del os.environ["TZDIR"]
        shutil.rmtree(tzdir)
    return t.close()


def run(t, tzdir):
    with kt.Env(DEVICES, config=f"[Daemon]\nTimeZone={ZONE}\n") as env:
        sims = env.sim_devices()
        plug = env.device_path(kt.mac_id(sims[0]["mac"]))
        strip = env.device_path(kt.mac_id(sims[1]["mac"]))
        outlet = env.device_path(kt.mac_id(sims[1]["mac"], 0))
        env.discover(1.0)
        paths = (plug, strip, outlet)
        kt.eventually(t, env, lambda: all(env.get(p, kt.METER_IFACE, "EnergyToday") > 0 for p in paths), 30,
                      "energy is counted today")
        for i in (0, 1):
            env.sim(cmd="fault", device=i, hang=True)
        kt.eventually(t, env, lambda: not any(env.get(p, kt.DEVICE_IFACE, "Online") for p in paths), 30,
                      "both devices went offline")
        env.stop_daemon()

        # Local midnight 8 s from now (the zone is read at start).
        midnight = time.time() + 8
        offset = (86400 - int(midnight) % 86400) % 86400
        if offset >= 43200:
            offset -= 86400
        kt.write_zone(tzdir, ZONE, offset)
        env.start_daemon()
        log = env.watch_properties()
        before = {p: env.get(p, kt.METER_IFACE, "EnergyToday") for p in paths}
        t.ok(time.time() < midnight and all(v > 0 for v in before.values()) and
             not any(env.get(p, kt.DEVICE_IFACE, "Online") for p in paths),
             "before midnight: offline, with today's energy", before)
        env.wait_for(lambda: time.time() > midnight + 3, 30, "midnight")
        for p in paths:
            t.eq(env.get(p, kt.METER_IFACE, "EnergyToday"), 0.0, f"{p}: EnergyToday is 0 after midnight")
            t.ok(0.0 in log.values(p, kt.METER_IFACE, "EnergyToday"), f"{p}: and PropertiesChanged said so",
                 log.of(p))
        t.ok(all(env.get(p, kt.METER_IFACE, "EnergyTotal") > 0 for p in paths), "EnergyTotal is kept")
        log.close()


if __name__ == "__main__":
    sys.exit(main())
