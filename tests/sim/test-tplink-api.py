#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""kasa-sim driven by tplink-smarthome-api (the client homebridge uses),
pinned and installed by tools/npm-peer into a temporary folder: getInfo,
getSysInfo, emeter realtime and day statistics, setPowerState on plugs
and strip outlets, each checked against kasa-sim's control-socket truth.

Usage: test-tplink-api.py PATH-TO-KASA-SIM   (from meson, in the root
network namespace: the install needs the npm registry; the devices then
live on 127.0.0.x in a network namespace of the test's own, tests/netns-run)
Prints TAP. An install that fails (no npm, no registry) is a failure.
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
VERSION = "5.0.0"
DRIVER = os.path.join(HERE, "test-tplink-api.js")
# index in kasa-sim = position here
DEVICES = [("hs110", "127.0.0.2"), ("kp115", "127.0.0.3"), ("hs300", "127.0.0.4"), ("kp303", "127.0.0.5"),
           ("hs100", "127.0.0.6")]
METERED = ("hs110", "kp115", "hs300")
STRIPS = ("hs300", "kp303")
LOAD_W = 3600  # 1 Wh a second: day statistics move within the test


def outer(sim):
    tmp = tempfile.mkdtemp(prefix="tplink-api-")
    try:
        r = subprocess.run([os.path.join(TOP, "tools", "npm-peer"), os.path.join(tmp, "npm")],
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            t = kasalib.Tap()
            t.ok(False, f"tools/npm-peer installs tplink-smarthome-api {VERSION}",
                 f"exit {r.returncode}\n{r.stderr}")
            return t.close()
        return subprocess.run([os.path.join(TOP, "tests", "netns-run"), sys.executable, __file__, "--inner",
                               sim, r.stdout.strip()]).returncode
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def api(pkg, host, child, op, *args):
    """(True, result) or (False, error message)."""
    r = subprocess.run(["node", DRIVER, pkg, host, child or "-", op, *map(str, args)], capture_output=True,
                       text=True, timeout=60)
    try:
        out = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return False, f"exit {r.returncode}: {r.stdout}{r.stderr}"
    if r.returncode != 0 or "error" in out:
        return False, out.get("error", out)
    return True, out


def day_wh(entry):
    # HS110 hw 1 counts kWh in "energy", newer meters Wh in "energy_wh".
    return entry["energy_wh"] if "energy_wh" in entry else entry["energy"] * 1000


def check_device(t, pkg, ctl, index, profile, addr):
    truth = ctl.truth(index)[0]
    strip = profile in STRIPS
    metered = profile in METERED
    children = [o["id"] for o in truth["outlets"]] if strip else []

    # getInfo: the four-module request homebridge sends, for the device
    # and (with context) for a strip's first outlet
    for child in [None] + children[:1]:
        who = f"{profile}" + (f" outlet {child[-2:]}" if child else "")
        good, info = api(pkg, addr, child, "getInfo")
        if not t.ok(good, f"{who}: getInfo succeeds", info):
            continue
        si = info["sysInfo"]
        t.ok(si.get("deviceId") == truth["deviceId"] and si.get("mac") == truth["mac"],
             f"{who}: getInfo sysInfo is the device's", (si.get("deviceId"), si.get("mac"), truth))
        if strip:
            t.eq([c["state"] for c in si.get("children", [])], [int(o["relay"]) for o in truth["outlets"]],
                 f"{who}: getInfo children states are the truth's")
        else:
            t.eq(si.get("relay_state"), int(truth["relay"]), f"{who}: getInfo relay_state is the truth's")
        cloud = info["cloud"]["info"]
        t.ok(cloud.get("err_code") == 0 and cloud.get("binded") in (0, 1) and isinstance(cloud.get("server"), str),
             f"{who}: getInfo cloud info answered", cloud)
        t.ok(info["schedule"]["nextAction"].get("err_code") == 0 and info["schedule"]["nextAction"].get("type") == -1,
             f"{who}: getInfo schedule next action: none", info["schedule"])
        rt = info["emeter"]["realtime"]
        if metered:
            outlet = truth["outlets"][0]
            t.eq(rt.get("power_mw"), outlet["load_mw"] if outlet["relay"] else 0,
                 f"{who}: getInfo realtime power is the truth's load")
        else:
            t.ok("power_mw" not in rt and rt.get("err_code") == -1, f"{who}: getInfo has no meter reading", rt)

    good, si = api(pkg, addr, None, "getSysInfo")
    if t.ok(good, f"{profile}: getSysInfo succeeds", si):
        t.ok(si.get("deviceId") == truth["deviceId"] and si.get("model", "").lower().startswith(profile),
             f"{profile}: getSysInfo names the device and model", si)
        t.eq(si.get("alias"), ctl.request(cmd="list")["devices"][index]["alias"], f"{profile}: getSysInfo alias")

    if metered:
        for child in children[:2] if strip else [None]:
            who = f"{profile}" + (f" outlet {child[-2:]}" if child else "")
            k = children.index(child) if child else 0
            ctl.request(cmd="set", device=index, outlet=k, load_w=LOAD_W, relay=True)
            before = ctl.truth(index)[0]["outlets"][k]
            time.sleep(1.2)
            good, rt = api(pkg, addr, child, "realtime")
            after = ctl.truth(index)[0]["outlets"][k]
            if t.ok(good, f"{who}: emeter.getRealtime succeeds", rt):
                t.eq(rt.get("power_mw"), LOAD_W * 1000, f"{who}: realtime power is the truth's load")
                t.ok(before["counter_mwh"] // 1000 <= rt.get("total_wh", -1) <= after["counter_mwh"] // 1000 + 1,
                     f"{who}: realtime total is the truth's counter", (rt, before, after))
                t.ok(rt.get("voltage_mv", 0) > 100000 and rt.get("current_ma", 0) > 0,
                     f"{who}: realtime voltage and current", rt)
            lt = time.localtime()
            good, days = api(pkg, addr, child, "daystats", lt.tm_year, lt.tm_mon)
            after = ctl.truth(index)[0]["outlets"][k]
            if t.ok(good, f"{who}: emeter.getDayStats succeeds", days):
                today = [d for d in days.get("day_list", []) if d.get("day") == lt.tm_mday]
                # the truth counts energy since kasa-sim started: all of it today
                # unless the test straddles midnight
                t.ok(len(today) == 1 and day_wh(today[0]) <= after["energy_mwh"] / 1000 + 1 and
                     day_wh(today[0]) >= 1, f"{who}: getDayStats has today's energy", (days, after))

    for child in children or [None]:
        who = f"{profile}" + (f" outlet {child[-2:]}" if child else "")
        k = children.index(child) if child else 0
        for state in (False, True):
            before = ctl.truth(index)[0]["outlets"]
            good, r = api(pkg, addr, child, "power", "on" if state else "off")
            after = ctl.truth(index)[0]["outlets"]
            if t.ok(good and r.get("power") is state, f"{who}: setPowerState({str(state).lower()})", r):
                want = [state if i == k else o["relay"] for i, o in enumerate(before)]
                t.eq([o["relay"] for o in after], want, f"{who}: truth shows only that relay "
                     f"{'on' if state else 'off'}")


def inner(sim, pkg):
    t = kasalib.Tap()
    try:
        with open(os.path.join(pkg, "package.json")) as f:
            version = json.load(f).get("version")
    except OSError as e:
        version = e
    t.ok(version == VERSION, f"tools/npm-peer installed tplink-smarthome-api {VERSION}", version)
    tmp = tempfile.mkdtemp(prefix="tplink-api-sim-")
    control = os.path.join(tmp, "control")
    sim_log = open(os.path.join(tmp, "sim.log"), "w")
    proc = None
    try:
        proc = kasalib.start_sim([sim, "--seed=3", "--noise=0", f"--control={control}",
                                  *(f"{p}@{a}" for p, a in DEVICES)], stderr=sim_log)
        with kasalib.SimControl(control) as ctl:
            for i, (profile, addr) in enumerate(DEVICES):
                check_device(t, pkg, ctl, i, profile, addr)
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
        sys.exit("Usage: test-tplink-api.py PATH-TO-KASA-SIM")
    sys.exit(outer(sys.argv[1]))
