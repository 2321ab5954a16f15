#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Device.StartCountdown fires once, on time (measured against the clock,
with a tolerance), switching the simulated relay; Countdown shows it and is
announced; CancelCountdown stops it; a new countdown replaces the running
one; bad arguments are refused; kasactl countdown starts, shows and cancels;
Describe() carries the countdown; with a real polkitd, a plain user may
neither start nor cancel one (switch is not theirs), and may read it."""

import json
import os
import subprocess
import time

import kasatest as kt

DEVICES = ["hs110@127.0.0.2"]
INVALID_ARGS = "org.freedesktop.DBus.Error.InvalidArgs"
KASACTL = os.path.join(kt.build_dir(), "client", "kasactl")
# The timer is exact to the loop's wake-up; the relay is read back through
# the simulator's control socket every 20 ms. Early is never allowed.
LATE_TOLERANCE = 1.0


def kasactl(env, *args):
    p = subprocess.run([KASACTL, *args], env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=env.address, TZ="UTC"),
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def relay(env):
    return env.truth(0)[0]["outlets"][0]["relay"]


def wait_relay(env, want, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if relay(env) == want:
            return time.monotonic()
        time.sleep(0.02)
    return None


def main():
    t = kt.Tap()
    with kt.Env(DEVICES) as env:
        path = env.device_path(kt.mac_id(env.sim_devices()[0]["mac"]))
        env.wait_for(lambda: path in env.objects() and env.get(path, kt.DEVICE_IFACE, "Online"), 20,
                     "the plug online")
        env.call(path, kt.DEVICE_IFACE, "SetOn", "b", (True,))
        t.eq(tuple(env.get(path, kt.DEVICE_IFACE, "Countdown")), ("", 0), "Countdown is empty at first")

        log = env.watch_properties()
        wall = time.time()
        start = time.monotonic()
        env.call(path, kt.DEVICE_IFACE, "StartCountdown", "su", ("off", 3))
        action, at = env.get(path, kt.DEVICE_IFACE, "Countdown")
        t.ok(action == "off" and abs(at / 1e6 - (wall + 3)) < 1.0, "Countdown shows the action and when it fires",
             f"got ({action!r}, {at}), expected about {int((wall + 3) * 1e6)}")
        described = json.loads(env.call(path, kt.DEVICE_IFACE, "Describe")[0])
        t.eq(described.get("countdown"), {"action": "off", "at": at}, "Describe() carries it, as Countdown says")
        t.eq(relay(env), True, "nothing happens at once")
        fired = wait_relay(env, False, 3 + LATE_TOLERANCE + 5)
        elapsed = fired - start if fired else None
        t.ok(fired is not None and 3.0 <= elapsed <= 3.0 + LATE_TOLERANCE,
             f"the countdown switched the plug off after 3 s (within +{LATE_TOLERANCE} s)", f"elapsed {elapsed}")
        kt.eventually(t, env, lambda: tuple(env.get(path, kt.DEVICE_IFACE, "Countdown")) == ("", 0), 5,
                      "Countdown is empty once it fired")
        described = json.loads(env.call(path, kt.DEVICE_IFACE, "Describe")[0])
        t.ok("countdown" in described and described["countdown"] is None, "and Describe() says null",
             described.get("countdown", "no key"))
        env.iterate(0.5)
        seen = [c["Countdown"] for _, p, i, c in log.of(path) if i == kt.DEVICE_IFACE and "Countdown" in c]
        t.ok(len(seen) >= 2 and seen[0][0] == "off" and tuple(seen[-1]) == ("", 0),
             "PropertiesChanged announces the countdown and its end", f"{seen}")

        # Cancelled: nothing happens.
        env.call(path, kt.DEVICE_IFACE, "StartCountdown", "su", ("on", 2))
        env.call(path, kt.DEVICE_IFACE, "CancelCountdown")
        t.eq(tuple(env.get(path, kt.DEVICE_IFACE, "Countdown")), ("", 0), "CancelCountdown clears Countdown")
        t.eq(wait_relay(env, True, 3.5), None, "a cancelled countdown does not fire")
        err = env.call_error(path, kt.DEVICE_IFACE, "CancelCountdown")
        t.eq(err and err[0], "org.kasamond.Kasa1.Error.NotFound", "CancelCountdown without one: NotFound")

        # Replaced: the second one counts.
        env.call(path, kt.DEVICE_IFACE, "StartCountdown", "su", ("toggle", 600))
        start = time.monotonic()
        env.call(path, kt.DEVICE_IFACE, "StartCountdown", "su", ("on", 2))
        t.eq(env.get(path, kt.DEVICE_IFACE, "Countdown")[0], "on", "a new countdown replaces the running one")
        fired = wait_relay(env, True, 2 + LATE_TOLERANCE + 5)
        elapsed = fired - start if fired else None
        t.ok(fired is not None and 2.0 <= elapsed <= 2.0 + LATE_TOLERANCE, "the replacing countdown fires on time",
             f"elapsed {elapsed}")

        for args, why in ((("dim", 5), "an unknown action"), (("on", 0), "0 seconds"),
                          (("on", 604801), "more than a week")):
            err = env.call_error(path, kt.DEVICE_IFACE, "StartCountdown", "su", args)
            t.eq(err and err[0], INVALID_ARGS, f"StartCountdown with {why}: InvalidArgs")
        t.eq(tuple(env.get(path, kt.DEVICE_IFACE, "Countdown")), ("", 0), "a refused countdown leaves none")

        # kasactl.
        rc, out, err = kasactl(env, "countdown", "127.0.0.2", "30min", "off")
        t.ok(rc == 0 and "off at " in out and "(in 30min 00s)" in out, "kasactl countdown DEV 30min off",
             out + err)
        t.eq(env.get(path, kt.DEVICE_IFACE, "Countdown")[0], "off", "kasactl started it")
        rc, out, err = kasactl(env, "countdown", "127.0.0.2")
        t.ok(rc == 0 and "off at " in out, "kasactl countdown DEV shows it", out + err)
        rc, out, err = kasactl(env, "countdown", "127.0.0.2", "--cancel")
        t.ok(rc == 0 and tuple(env.get(path, kt.DEVICE_IFACE, "Countdown")) == ("", 0),
             "kasactl countdown DEV --cancel", f"{rc} {out}{err}")
        rc, out, err = kasactl(env, "countdown", "127.0.0.2")
        t.ok(rc == 0 and out.startswith("No countdown runs on"), "kasactl shows that none runs", out + err)
        rc, out, err = kasactl(env, "countdown", "127.0.0.2", "soon", "off")
        t.ok(rc == 2 and "Invalid SPAN" in err, "kasactl refuses a bad span (exit 2)", f"{rc} {err}")
        rc, out, err = kasactl(env, "countdown", "127.0.0.2", "5min", "dim")
        t.ok(rc == 2 and "Invalid ACTION" in err, "kasactl refuses a bad action (exit 2)", f"{rc} {err}")
    check_polkit(t)
    return t.close()


# Runs as the caller: one method call, without interactive authorization,
# the outcome as JSON.
CALL_SNIPPET = r'''
import json, sys
from gi.repository import Gio, GLib
addr, path, method, sig, args = sys.argv[1:]
bus = Gio.DBusConnection.new_for_address_sync(
    addr, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
    None, None)
params = GLib.Variant("(" + sig + ")", tuple(json.loads(args))) if sig else None
try:
    r = bus.call_sync("org.kasamond.Kasa1", path, "org.kasamond.Kasa1.Device", method, params, None,
                      Gio.DBusCallFlags.NONE, 60000, None)
    print(json.dumps({"reply": r.unpack()}))
except GLib.Error as e:
    print(json.dumps({"error": Gio.DBusError.get_remote_error(e)}))
'''


def call_as(env, user, path, method, sig="", args=()):
    p = subprocess.run(["runuser", "-u", user, "--", "env", f"DBUS_SYSTEM_BUS_ADDRESS={env.address}",
                        "PYTHONDONTWRITEBYTECODE=1", "/usr/bin/python3", "-c", CALL_SNIPPET, env.address, path,
                        method, sig, json.dumps(list(args))],
                       capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)
    try:
        return json.loads(p.stdout)
    except ValueError:
        return {"error": f"no output: exit {p.returncode} {p.stderr}"}


def check_polkit(t):
    """A plain user asks polkit about org.kasamond.kasa1.switch, which the
    project's actions give to the active session and admins: no session
    here, so it is denied, interactively or not."""
    denied = ("org.freedesktop.DBus.Error.InteractiveAuthorizationRequired", "org.freedesktop.DBus.Error.AccessDenied")
    with kt.system_user(f"kasacd{os.getpid()}") as user, kt.Env(DEVICES, polkit=True) as env:
        path = env.device_path(kt.mac_id(env.sim_devices()[0]["mac"]))
        env.wait_for(lambda: path in env.objects() and env.get(path, kt.DEVICE_IFACE, "Online"), 20,
                     "the plug online")
        r = call_as(env, user, path, "StartCountdown", "su", ("off", 30))
        t.ok(r.get("error") in denied, "a plain user is denied StartCountdown", r)
        t.eq(tuple(env.get(path, kt.DEVICE_IFACE, "Countdown")), ("", 0), "and no countdown runs")
        env.call(path, kt.DEVICE_IFACE, "StartCountdown", "su", ("off", 600))
        r = call_as(env, user, path, "CancelCountdown")
        t.ok(r.get("error") in denied, "a plain user is denied CancelCountdown", r)
        t.eq(env.get(path, kt.DEVICE_IFACE, "Countdown")[0], "off", "and root's countdown still runs")
        r = call_as(env, user, path, "Describe")
        t.ok("reply" in r and json.loads(r["reply"][0]).get("countdown", {}).get("action") == "off",
             "a plain user may read it", r)
        env.call(path, kt.DEVICE_IFACE, "CancelCountdown")


if __name__ == "__main__":
    raise SystemExit(main())
