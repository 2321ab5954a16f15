#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""kasa-sim's Tapo P110 (smart dialect over KLAP v2) driven by npm's
tp-link-tapo-connect, an independent KLAP + smart-dialect client, pinned
and installed by tools/npm-peer into a temporary folder. Its local API
(loginDeviceByIp: handshake with the owner's credentials, no cloud) logs
in, reads the device info (base64 nickname and ssid decoded by the
client) and the energy usage, and switches the plug, each checked against
kasa-sim's control-socket truth; wrong credentials are refused.

Usage: test-tapo-connect.py PATH-TO-KASA-SIM   (from meson, in the root
network namespace: the install needs the npm registry; the device then
lives on 127.0.0.2 in a network namespace of the test's own,
tests/netns-run). Prints TAP. An install that fails is a failure.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "pylib"))
import kasalib  # noqa: E402

TOP = os.path.dirname(os.path.dirname(HERE))
PACKAGE, VERSION = "tp-link-tapo-connect", "2.0.15"
DRIVER = os.path.join(HERE, "test-tapo-connect.js")
USER, PASSWORD = "owner@example.com", "Tapo-pa55"
ADDR = "127.0.0.2"
LOAD_W = 3600  # 1 Wh a second: today_energy moves within the test


def outer(sim):
    tmp = tempfile.mkdtemp(prefix="tapo-connect-")
    try:
        r = subprocess.run([os.path.join(TOP, "tools", "npm-peer"), os.path.join(tmp, "npm"), PACKAGE],
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            t = kasalib.Tap()
            t.ok(False, f"tools/npm-peer installs {PACKAGE} {VERSION}", f"exit {r.returncode}\n{r.stderr}")
            return t.close()
        return subprocess.run([os.path.join(TOP, "tests", "netns-run"), sys.executable, __file__, "--inner",
                               sim, r.stdout.strip()]).returncode
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def api(pkg, op, password=PASSWORD):
    """(True, result) or (False, error message)."""
    r = subprocess.run(["node", DRIVER, pkg, ADDR, USER, password, op], capture_output=True, text=True,
                       timeout=60)
    try:
        out = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return False, f"exit {r.returncode}: {r.stdout}{r.stderr}"
    if r.returncode != 0 or (isinstance(out, dict) and "error" in out):
        # The client warns on stderr why KLAP failed, then tries AES.
        return False, f"{out.get('error', out) if isinstance(out, dict) else out}; stderr: {r.stderr.strip()}"
    return True, out


def check(t, pkg, ctl):
    truth = ctl.truth(0)[0]
    good, info = api(pkg, "info")
    t.ok(good, f"{PACKAGE}: loginDeviceByIp + getDeviceInfo", info)
    if not good:
        return
    t.eq(info.get("model"), "P110", "getDeviceInfo: model")
    t.eq(info.get("type"), "SMART.TAPOPLUG", "getDeviceInfo: type")
    t.eq(info.get("device_id"), truth["deviceId"], "getDeviceInfo: device_id is the simulator's")
    t.eq(info.get("mac"), truth["mac"].replace(":", "-"), "getDeviceInfo: mac with dashes")
    t.eq(info.get("nickname"), "Tapo plug", "getDeviceInfo: the client decodes the base64 nickname")
    t.eq(info.get("ssid"), "kasa-sim", "getDeviceInfo: and the ssid")
    t.eq(info.get("device_on"), True, "getDeviceInfo: device_on")

    time.sleep(2.5)  # at least 2 Wh delivered
    good, energy = api(pkg, "energy")
    t.ok(good, f"{PACKAGE}: getEnergyUsage", energy)
    if good:
        t.eq(energy.get("current_power"), LOAD_W * 1000, "getEnergyUsage: current_power in mW is the load")
        wh = ctl.truth(0)[0]["energy_mwh"] / 1000
        t.ok(isinstance(energy.get("today_energy"), int) and 1 <= energy["today_energy"] <= wh,
             f"getEnergyUsage: today_energy {energy.get('today_energy')} Wh, at most the delivered {wh:.1f} Wh")
        t.ok(energy.get("month_energy", -1) >= energy.get("today_energy", 0),
             "getEnergyUsage: month_energy is at least today_energy")

    good, r = api(pkg, "off")
    t.ok(good, f"{PACKAGE}: turnOff", r)
    t.eq(ctl.truth(0)[0]["relay"], False, "turnOff: the relay is off")
    good, energy = api(pkg, "energy")
    t.ok(good and energy.get("current_power") == 0, "getEnergyUsage: 0 mW while off", energy)
    good, r = api(pkg, "on")
    t.ok(good, f"{PACKAGE}: turnOn", r)
    t.eq(ctl.truth(0)[0]["relay"], True, "turnOn: the relay is on")
    good, info = api(pkg, "info")
    t.ok(good and info.get("device_on") is True, "getDeviceInfo: device_on again", info)

    good, r = api(pkg, "info", password="not the password")
    t.ok(not good and "email or password incorrect" in str(r),
         "wrong credentials: the client refuses the device's server hash", r)


def inner(sim, pkg):
    t = kasalib.Tap()
    try:
        with open(os.path.join(pkg, "package.json")) as f:
            version = json.load(f).get("version")
    except OSError as e:
        version = e
    t.ok(version == VERSION, f"tools/npm-peer installed {PACKAGE} {VERSION}", version)
    tmp = tempfile.mkdtemp(prefix="tapo-connect-sim-")
    control = os.path.join(tmp, "control")
    config = os.path.join(tmp, "sim.json")
    with open(config, "w") as f:
        json.dump({"devices": [{"profile": "p110", "address": ADDR, "port": 80, "load_w": LOAD_W,
                                "alias": "Tapo plug",
                                "klap": {"version": 2, "user": USER, "password": PASSWORD}}]}, f)
    sim_log = open(os.path.join(tmp, "sim.log"), "w")
    proc = None
    try:
        proc = kasalib.start_sim([sim, "--seed=5", "--noise=0", f"--control={control}", f"--config={config}"],
                                 stderr=sim_log)
        with kasalib.SimControl(control) as ctl:
            check(t, pkg, ctl)
    except Exception as e:  # a crash is a failure, with the reason in the log
        t.ok(False, "test ran without exceptions", repr(e))
    finally:
        if proc is not None:
            t.eq(kasalib.stop(proc), 0, "kasa-sim exits cleanly on SIGTERM")
        sim_log.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return t.close()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--inner":
        sys.exit(inner(sys.argv[2], sys.argv[3]))
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(outer(sys.argv[1]))
