#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""kasactl export against kasamond recording kasa-sim plugs at constant
loads (a real polkitd on the bus, so that the plain-user check means
something).

T0 is the first whole minute after both plugs were polled at their
loads; the checks run once the minute T0+2min is closed. Raw rows are
GetHistory's raw samples, time for time; the minute export of one plug,
--fields=start,energy_wh, is read back by `tariff price` and costs what
`costs` says over the same range with the same flat tariff (the round
trip of the what-if pricing). JSON has the rows of CSV; bad arguments are
refused naming what is valid; a reader that stops early does not hurt
the daemon."""

import csv
import io
import json
import math
import os
import subprocess
import sys
import time

import kasatest as kt

DEVICES = ["hs110@127.0.0.2", "kp115@127.0.0.3", "hs100@127.0.0.4"]
LOADS = {"127.0.0.2": 3000.0, "127.0.0.3": 1200.0}
POLL = 1.0
KASACTL = os.path.join(kt.build_dir(), "client", "kasactl")
TARIFF = {"format": "kasamond-tariff/1", "name": "Flat", "currency": "EUR",
          "periods": [{"name": "energy", "rate": 50.0}]}


def kasactl(env, *args, user=None):
    cmd = [KASACTL, "--no-ask-password", *args]
    if user:
        cmd = ["runuser", "-u", user, "--", *cmd]
    e = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=env.address, TZ="UTC", LC_ALL="C")
    # Bytes, decoded without newline translation: CRLF is checked.
    p = subprocess.run(cmd, env=e, capture_output=True, timeout=90, stdin=subprocess.DEVNULL, cwd=env.tmp)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def rows(text):
    return list(csv.reader(io.StringIO(text, newline="")))


def main():
    t = kt.Tap()
    os.environ["TZ"] = "UTC"
    tag = os.getpid() % 100000
    with kt.system_user(f"kasaexp{tag}") as user, \
            kt.Env(DEVICES, polkit=True, poll_interval=POLL, sim_args=("--seed=5", "--noise=0")) as env:
        ids = {s["address"].split(":")[0]: kt.mac_id(s["mac"]) for s in env.sim_devices()}
        for addr, w in LOADS.items():
            env.sim(cmd="set", device=addr, load_w=w)
        env.wait_for(lambda: env.get(kt.MANAGER_PATH, kt.MANAGER_IFACE, "TotalPower") >= sum(LOADS.values()) - 1,
                     30, "every plug is polled at its load")
        t0 = math.ceil(time.time() / 60) * 60
        t2 = t0 + 120
        env.wait_for(lambda: time.time() > t2 + 3, 200, "the minute T0+2min is closed")
        plug = ids["127.0.0.2"]
        rng = [f"--since=@{t0}", f"--until=@{t2}"]

        # Raw CSV of both plugs against GetHistory's raw samples.
        rc, out, err = kasactl(env, "export", plug, ids["127.0.0.3"], "--resolution=raw", *rng)
        r = rows(out)
        t.ok(rc == 0 and r and r[0] == ["device", "time", "power_w", "voltage_v", "current_a", "energy_total_wh"],
             "raw CSV: the header names the columns with their units", out[:300] + err)
        t.ok(out.endswith("\r\n") and out.count("\r\n") == out.count("\n"), "CSV lines end in CRLF (RFC 4180)")
        for addr in LOADS:
            dev = ids[addr]
            path = env.device_path(dev)
            hist = env.call(path, kt.METER_IFACE, "GetHistory", "tts", (t0 * 1000000, t2 * 1000000, "raw"))[0]
            mine = [x for x in r[1:] if x[0] == dev]
            t.ok(len(hist) >= 100 and len(mine) == len(hist), f"{addr}: as many raw rows as GetHistory samples",
                 f"{len(mine)} vs {len(hist)}")
            t.ok(all(row[1].endswith("+00:00") and "T" in row[1] for row in mine),
                 f"{addr}: RFC 3339 times with offset", mine[:2])
            t.ok(all(abs(float(row[2]) - LOADS[addr]) < 1.0 for row in mine), f"{addr}: power is the load",
                 mine[:2])

        # JSON has the CSV's rows.
        rc, js, err = kasactl(env, "export", plug, "--resolution=raw", "--format=json", *rng)
        try:
            a = json.loads(js)
        except ValueError:
            a = None
        t.ok(isinstance(a, list) and len(a) == len([x for x in r[1:] if x[0] == plug]) and
             all(set(o) == {"device", "time", "power_w", "voltage_v", "current_a", "energy_total_wh"} for o in a),
             "JSON export: the same rows as objects", js[:300] + err)

        # Round trip: the minute energy export is what tariff price reads.
        rc, out, err = kasactl(env, "export", plug, "--resolution=minute", "--fields=start,energy_wh", *rng)
        r = rows(out)
        t.ok(rc == 0 and r[0] == ["start", "energy_wh"] and len(r) == 3, "minute export: start,energy_wh, two rows",
             out + err)
        want = LOADS["127.0.0.2"] * 60 / 3600
        t.ok(all(abs(float(x[1]) - want) <= 2 * kt.energy_end_bound_wh(LOADS["127.0.0.2"], POLL) for x in r[1:]),
             "each minute holds the load's energy", r)
        with open(os.path.join(env.tmp, "energy.csv"), "w") as f:
            f.write(out)
        with open(os.path.join(env.tmp, "flat.json"), "w") as f:
            json.dump(TARIFF, f)
        rc, o, err = kasactl(env, "tariff", "add", "flat.json")
        rc2, ts, err2 = kasactl(env, "--json=short", "tariff", "list")
        tid = json.loads(ts)[0]["id"] if rc2 == 0 else "?"
        rc3, o3, err3 = kasactl(env, "tariff", "activate", str(tid), f"--since=@{t0 - 3600}")
        t.ok(rc == 0 and rc3 == 0, "a flat tariff prices the home", o + err + o3 + err3)
        rc, cost, err = kasactl(env, "--json=short", "costs", plug, *rng)
        rc2, priced, err2 = kasactl(env, "--json=short", "tariff", "price", "flat.json", "--energy=energy.csv")
        try:
            c, p = json.loads(cost), json.loads(priced)
        except ValueError:
            c, p = {}, {}
        t.ok(rc == 0 and rc2 == 0 and c.get("total") is not None and c.get("total") == p.get("total") and
             c.get("energy_kwh") == p.get("energy_kwh"),
             "round trip: tariff price of the export equals costs of the range",
             f"costs {cost} {err} / price {priced} {err2}")

        # Hour and day rollups cover the range's energy.
        rc, out, err = kasactl(env, "export", plug, "--resolution=day", "--since=today", "--format=json")
        try:
            days = json.loads(out)
        except ValueError:
            days = []
        t.ok(rc == 0 and len(days) == 1 and days[0]["start"].endswith("T00:00:00+00:00") and
             days[0]["samples"] >= 100, "day export: today's rollup from local midnight", out + err)

        # Refusals.
        rc, out, err = kasactl(env, "export", "--format=xml")
        t.ok(rc != 0 and "csv or json" in err, "--format=xml is refused naming the formats", err)
        rc, out, err = kasactl(env, "export", plug, "--fields=start,power_w", "--resolution=hour")
        t.ok(rc != 0 and "power_w" in err and "energy_wh" in err, "a field of another resolution is refused, "
             "naming the valid ones", err)
        rc, out, err = kasactl(env, "export", "--fields=start,energy_wh")
        t.ok(rc != 0 and "device" in err, "several devices without the device field are refused", err)
        rc, out, err = kasactl(env, "export", ids["127.0.0.4"])
        t.ok(rc != 0 and "no energy meter" in err, "a plug without a meter is refused", err)

        # Open to everyone.
        rc, out, err = kasactl(env, "export", plug, "--resolution=raw", *rng, user=user)
        t.ok(rc == 0 and len(rows(out)) == len(a) + 1, "a plain user may export", err)

        # A reader that goes away early: the daemon stays and serves.
        e = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=env.address, TZ="UTC")
        p = subprocess.run(f"'{KASACTL}' export --resolution=raw --since=@{t0 - 600} | head -c 100 >/dev/null",
                           shell=True, env=e, timeout=60)
        time.sleep(0.5)
        rc, out, err = kasactl(env, "export", plug, "--resolution=minute", *rng)
        t.ok(env.daemon_alive() and rc == 0 and len(rows(out)) == 3, "after a reader stopped early kasamond exports "
             "on", err)
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
