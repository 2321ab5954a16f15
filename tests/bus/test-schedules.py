#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Schedules without systemd as the service manager (a private bus, as
tools/demo runs kasamond): AddSchedule fails with NoServiceManager and says
why, nothing is stored, devices keep working. GetSunTimes, the daemon's sun
calculation, works anyway, for [Location] or a place given; kasactl sun
shows it."""

import datetime
import os
import subprocess

import kasatest as kt

DEVICES = ["hs110@127.0.0.2"]
CONFIG = "[Location]\nLatitude=51.4769\nLongitude=-0.0005\n"
KASACTL = os.path.join(kt.build_dir(), "client", "kasactl")
INVALID_ARGS = "org.freedesktop.DBus.Error.InvalidArgs"


def utc(s):
    return int(datetime.datetime.fromisoformat(s).replace(tzinfo=datetime.timezone.utc).timestamp() * 1e6)


def main():
    t = kt.Tap()
    with kt.Env(DEVICES, config=CONFIG) as env:
        path = env.device_path(kt.mac_id(env.sim_devices()[0]["mac"]))
        env.wait_for(lambda: path in env.objects(), 20, "the plug")
        dev_id = path.rsplit("/", 1)[1]

        err = env.call_error(kt.MANAGER_PATH, kt.MANAGER_IFACE, "AddSchedule", "asssa{sv}",
                             ([dev_id], "off", "Mon..Fri 07:00", {}))
        t.ok(err and err[0] == "org.kasamond.Kasa1.Error.NoServiceManager" and "systemd" in err[1],
             "AddSchedule without systemd fails with NoServiceManager, saying why", f"{err}")
        t.eq([p for p in env.objects() if "/schedule/" in p], [], "no schedule object appears")
        env.call(path, kt.DEVICE_IFACE, "SetOn", "b", (False,))
        t.eq(env.truth(0)[0]["outlets"][0]["relay"], False, "switching works all the same")

        p = subprocess.run([KASACTL, "--no-ask-password", "schedule", "add", "on", "127.0.0.2", "--at=daily"],
                           env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=env.address), capture_output=True, text=True)
        t.ok(p.returncode == 1 and "systemd" in p.stderr, "kasactl schedule add says why it cannot", p.stderr)
        p = subprocess.run([KASACTL, "schedule", "list"], env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=env.address),
                           capture_output=True, text=True)
        t.ok(p.returncode == 0 and "0 schedules." in p.stdout, "kasactl schedule list works", p.stdout + p.stderr)

        events = env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "GetSunTimes", "sad", ("2024-06-21", []))[0]
        got = {name: (at, remark) for name, at, remark in events}
        t.eq(sorted(got), ["civil-dawn", "civil-dusk", "sunrise", "sunset"], "GetSunTimes gives the four events")
        # tests/daemon/test-sun.c: Greenwich on the solstice.
        for name, want in (("sunrise", "2024-06-21T03:42:51"), ("sunset", "2024-06-21T20:20:57")):
            t.ok(abs(got[name][0] - utc(want)) <= 120e6 and got[name][1] == "",
                 f"{name} at Greenwich on 2024-06-21 within 2 minutes of {want} UTC", f"{got[name]}")
        events = env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "GetSunTimes", "sad", ("2024-12-21", [69.6492, 18.9553]))[0]
        got = {name: (at, remark) for name, at, remark in events}
        t.eq(got["sunrise"], (0, "polar night: the sun does not rise"), "a place given: Tromso's polar night")
        t.ok(got["civil-dawn"][0] > 0, "which has a civil dawn", f"{got}")
        for args, why in ((("2024-02-30", []), "a date that does not exist"), (("21.12.2024", []), "a bad date"),
                          (("", [95.0, 0.0]), "a latitude out of range"), (("", [1.0]), "one coordinate")):
            err = env.call_error(kt.MANAGER_PATH, kt.MANAGER_IFACE, "GetSunTimes", "sad", args)
            t.eq(err and err[0], INVALID_ARGS, f"GetSunTimes with {why}: InvalidArgs")

        p = subprocess.run([KASACTL, "sun", "--date=2024-06-21"],
                           env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=env.address, TZ="Europe/London"),
                           capture_output=True, text=True)
        t.ok(p.returncode == 0 and "sunrise 2024-06-21 03:42:5" in p.stdout and "2024-06-21 04:42:5" in p.stdout,
             "kasactl sun shows UTC and local time", p.stdout + p.stderr)
        p = subprocess.run([KASACTL, "sun", "--location=91,0"], env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=env.address),
                           capture_output=True, text=True)
        t.ok(p.returncode == 2 and "--location" in p.stderr, "kasactl sun refuses a bad --location", p.stderr)
    with kt.Env(DEVICES) as env:
        err = env.call_error(kt.MANAGER_PATH, kt.MANAGER_IFACE, "GetSunTimes", "sad", ("", []))
        t.eq(err and err[0], "org.kasamond.Kasa1.Error.NoLocation", "without [Location]: NoLocation")
    return t.close()


if __name__ == "__main__":
    raise SystemExit(main())
