#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""kasa-sim's Tapo P110s, one with the smart dialect over KLAP v2, one over
AES securePassthrough (the firmware before KLAP), driven by npm's
tp-link-tapo-connect, an independent KLAP + AES + smart-dialect client,
pinned and installed by tools/npm-peer into a temporary folder. Its local
API (loginDeviceByIp: KLAP handshake with the owner's credentials, no
cloud; on a 404 for handshake1 the AES handshake and login_device) logs
in, reads the device info (base64 nickname and ssid decoded by the
client) and the energy usage, and switches the plug, each checked against
kasa-sim's control-socket truth; wrong credentials are refused.

Node 20 refuses RSA PKCS#1 v1.5 decryption (the Marvin attack fix) unless
told --security-revert=CVE-2023-46809; the client's AES handshake needs it,
so the driver runs with it for the AES device (a key pair of its own, on
the loopback of a private namespace).

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
DEVICES = [
    # index, address, transport
    (0, "127.0.0.2", "klap"),
    (1, "127.0.0.3", "aes"),
]
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


def api(pkg, addr, transport, op, password=PASSWORD):
    """(True, result) or (False, error message)."""
    node = ["node", "--security-revert=CVE-2023-46809"] if transport == "aes" else ["node"]
    r = subprocess.run([*node, DRIVER, pkg, addr, USER, password, op], capture_output=True, text=True,
                       timeout=60)
    try:
        out = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return False, f"exit {r.returncode}: {r.stdout}{r.stderr}"
    if r.returncode != 0 or (isinstance(out, dict) and "error" in out):
        # The client warns on stderr why KLAP failed, then tries AES.
        return False, f"{out.get('error', out) if isinstance(out, dict) else out}; stderr: {r.stderr.strip()}"
    return True, out


def check(t, pkg, ctl, index, addr, transport):
    name = f"P110 over {transport.upper()}"
    truth = ctl.truth(index)[0]
    good, info = api(pkg, addr, transport, "info")
    t.ok(good, f"{name}: {PACKAGE}: loginDeviceByIp + getDeviceInfo", info)
    if not good:
        return
    t.eq(info.get("model"), "P110", f"{name}: getDeviceInfo: model")
    t.eq(info.get("type"), "SMART.TAPOPLUG", f"{name}: getDeviceInfo: type")
    t.eq(info.get("device_id"), truth["deviceId"], f"{name}: getDeviceInfo: device_id is the simulator's")
    t.eq(info.get("mac"), truth["mac"].replace(":", "-"), f"{name}: getDeviceInfo: mac with dashes")
    t.eq(info.get("nickname"), "Tapo plug", f"{name}: getDeviceInfo: the client decodes the base64 nickname")
    t.eq(info.get("ssid"), "kasa-sim", f"{name}: getDeviceInfo: and the ssid")
    t.eq(info.get("device_on"), True, f"{name}: getDeviceInfo: device_on")
    if transport == "aes":
        truth = ctl.truth(index)[0]
        t.ok(truth.get("aes") == 1 and truth.get("logins", 0) >= 1,
             f"{name}: the client logged in with login_device (AES, login version 1)", truth)

    time.sleep(2.5)  # at least 2 Wh delivered
    good, energy = api(pkg, addr, transport, "energy")
    t.ok(good, f"{name}: {PACKAGE}: getEnergyUsage", energy)
    if good:
        t.eq(energy.get("current_power"), LOAD_W * 1000, f"{name}: getEnergyUsage: current_power in mW is the load")
        wh = ctl.truth(index)[0]["energy_mwh"] / 1000
        t.ok(isinstance(energy.get("today_energy"), int) and 1 <= energy["today_energy"] <= wh,
             f"{name}: getEnergyUsage: today_energy {energy.get('today_energy')} Wh, "
             f"at most the delivered {wh:.1f} Wh")
        t.ok(energy.get("month_energy", -1) >= energy.get("today_energy", 0),
             f"{name}: getEnergyUsage: month_energy is at least today_energy")

    good, r = api(pkg, addr, transport, "off")
    t.ok(good, f"{name}: {PACKAGE}: turnOff", r)
    t.eq(ctl.truth(index)[0]["relay"], False, f"{name}: turnOff: the relay is off")
    good, energy = api(pkg, addr, transport, "energy")
    t.ok(good and energy.get("current_power") == 0, f"{name}: getEnergyUsage: 0 mW while off", energy)
    good, r = api(pkg, addr, transport, "on")
    t.ok(good, f"{name}: {PACKAGE}: turnOn", r)
    t.eq(ctl.truth(index)[0]["relay"], True, f"{name}: turnOn: the relay is on")
    good, info = api(pkg, addr, transport, "info")
    t.ok(good and info.get("device_on") is True, f"{name}: getDeviceInfo: device_on again", info)

    good, r = api(pkg, addr, transport, "info", password="not the password")
    refusal = "email or password incorrect" if transport == "klap" else "Invalid credentials"
    t.ok(not good and refusal in str(r), f"{name}: wrong credentials: the client says \"{refusal}\"", r)


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
        json.dump({"devices": [{"profile": "p110", "address": addr, "port": 80, "load_w": LOAD_W,
                                "alias": "Tapo plug",
                                transport: ({"version": 2} if transport == "klap" else {}) |
                                {"user": USER, "password": PASSWORD}}
                               for _, addr, transport in DEVICES]}, f)
    sim_log = open(os.path.join(tmp, "sim.log"), "w")
    proc = None
    try:
        proc = kasalib.start_sim([sim, "--seed=5", "--noise=0", f"--control={control}", f"--config={config}"],
                                 stderr=sim_log)
        with kasalib.SimControl(control) as ctl:
            for index, addr, transport in DEVICES:
                check(t, pkg, ctl, index, addr, transport)
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
