#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Backfill from the devices' own day statistics, against kasa-sim plugs
with a history of six days before today (history_wh): an HS110 (kWh
floats), a KP115 (integer Wh), an HS300 strip (one meter per outlet,
asked with a context) and a P110 (the smart dialect over KLAP, whose
get_energy_data gives a quarter's days at a time).

kasamond and kasa-sim run in a time zone of the test's own (zic into a
private TZDIR) whose midnight comes 45 s after the start. On first sight
each device's six days are imported, marked as such in GetHistory (NaN
minimum and maximum), kasactl history --json (imported) and the day
export (source device), with the simulator's energy for each day.
kasactl backfill then imports nothing new. Once midnight has passed, the
day kasamond began recording is in the device's statistics too: a
backfill leaves it alone (it stays kasamond's own count, not doubled),
and a plain user may not start a backfill at all."""

import csv
import io
import json
import math
import os
import shutil
import subprocess
import tempfile
import time

import kasatest as kt

ZONE = "Test/Backfill"
HISTORY_WH = [120, 250, 0, 310, 75, 400]
KASACTL = os.path.join(kt.build_dir(), "client", "kasactl")
MIDNIGHT_IN = 45


def kasactl(env, *args, user=None):
    cmd = [KASACTL, "--no-ask-password", *args]
    if user:
        cmd = ["runuser", "-u", user, "--", *cmd]
    e = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=env.address, LC_ALL="C")
    p = subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def day_history(env, path):
    return [tuple(x) for x in env.call(path, kt.METER_IFACE, "GetHistory", "tts", (0, 0, "day"))[0]]


def imported(hist):
    return [h for h in hist if math.isnan(h[2]) and math.isnan(h[3])]


def main():
    t = kt.Tap()
    tzdir = tempfile.mkdtemp(prefix="kasa-zoneinfo-")
    try:
        # Local midnight MIDNIGHT_IN seconds from now, in a fixed-offset zone.
        midnight = int(time.time()) + MIDNIGHT_IN
        offset = (86400 - midnight % 86400) % 86400
        if offset >= 43200:
            offset -= 86400
        kt.write_zone(tzdir, ZONE, offset)
        os.environ["TZDIR"] = tzdir
        os.environ["TZ"] = ZONE
        time.tzset()
        run(t, tzdir, midnight, offset)
    finally:
        os.environ.pop("TZDIR", None)
        os.environ.pop("TZ", None)
        time.tzset()
        shutil.rmtree(tzdir)
    return t.close()


def run(t, tzdir, midnight, offset):
    conf = os.path.join(tzdir, "sim.json")
    with open(conf, "w") as f:
        json.dump({"devices": [
            {"profile": "hs110", "address": "127.0.0.2", "load_w": 1800, "history_wh": HISTORY_WH},
            {"profile": "kp115", "address": "127.0.0.3", "load_w": 3600, "history_wh": HISTORY_WH},
            {"profile": "hs300", "address": "127.0.0.4", "load_w": 100, "history_wh": HISTORY_WH},
            {"profile": "p110", "address": "127.0.0.5", "port": 80, "load_w": 1000, "history_wh": HISTORY_WH,
             "klap": {"version": 2}},
        ]}, f)
    tag = os.getpid() % 100000
    targets = "127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.5"
    with kt.system_user(f"kasabf{tag}") as user, \
            kt.Env([], targets=targets, polkit=True, sim_args=(f"--config={conf}", "--noise=0"),
                   config=f"[Daemon]\nTimeZone={ZONE}\n") as env:
        sims = env.sim_devices()
        by_addr = {s["address"].split(":")[0]: s for s in sims}
        hs110 = env.device_path(kt.mac_id(by_addr["127.0.0.2"]["mac"]))
        kp115_id = kt.mac_id(by_addr["127.0.0.3"]["mac"])
        kp115 = env.device_path(kp115_id)
        strip = env.device_path(kt.mac_id(by_addr["127.0.0.4"]["mac"]))
        outlet = env.device_path(kt.mac_id(by_addr["127.0.0.4"]["mac"], 2))
        p110 = env.device_path(kt.mac_id(by_addr["127.0.0.5"]["mac"]))
        env.discover(1.0)

        # The simulator's history: the six days before today, local starts.
        truth = env.truth(1)[0]["outlets"][0]["days"]
        hist_days = truth[:len(HISTORY_WH)]
        starts = [int(time.mktime(time.strptime(d["date"], "%Y-%m-%d"))) * 1000000 for d in hist_days]
        t.eq([d["energy_mwh"] for d in hist_days], [w * 1000 for w in HISTORY_WH],
             "kasa-sim: its day statistics hold the history")

        # 1. First sight: each device's six days, imported.
        for name, path, factor in (("HS110", hs110, 1), ("KP115", kp115, 1), ("outlet 3 of the HS300", outlet, 1),
                                   ("the HS300 (its outlets' sum)", strip, 6), ("P110 (smart dialect)", p110, 1)):
            # A strip's outlets one after the other: wait for the last.
            want = [float(w * factor) for w in HISTORY_WH]
            kt.eventually(t, env, lambda p=path, w=want: [h[4] for h in imported(day_history(env, p))] == w, 60,
                          f"{name}: six days imported on first sight")
            im = imported(day_history(env, path))
            t.eq([h[4] for h in im], [float(w * factor) for w in HISTORY_WH],
                 f"{name}: each with the device's energy of that day")
            t.eq([h[0] for h in im], [int(s) for s in starts], f"{name}: at the local midnights of those days")
            t.ok(all(abs(h[1] - h[4] / 24) < 0.01 for h in im), f"{name}: average power is energy over the day",
                 im)
        t.ok("Backfill of " + kp115_id + ": 6 days imported" in env.log(), "the journal says what was imported",
             env.log()[-2000:])

        # 2. On request again: nothing new, nothing doubled.
        before = day_history(env, kp115)
        rc, out, err = kasactl(env, "backfill", kp115_id)
        t.ok(rc == 0 and out.startswith("0 days imported from the statistics of ") and out.count("\n") == 1,
             "kasactl backfill again: 0 days imported", out + err)
        rc, out, err = kasactl(env, "backfill", kp115_id, "--json=short")
        t.ok(rc == 0 and json.loads(out) == {"id": kp115_id, "days_imported": 0}, "and --json says so", out + err)
        after = day_history(env, kp115)
        # NaN is not NaN: compared without the minima and maxima.
        t.eq([(h[0], h[1], h[4]) for h in imported(after)], [(h[0], h[1], h[4]) for h in imported(before)],
             "the imported days are as they were")
        rc, out, err = kasactl(env, "backfill", kt.mac_id(by_addr["127.0.0.4"]["mac"]))
        t.ok(rc == 0 and "0 days imported" in out, "a strip's backfill asks every outlet, again nothing new",
             out + err)

        # 3. A plain user may not: manage-devices, which the user lacks.
        rc, out, err = kasactl(env, "backfill", kp115_id, user=user)
        t.ok(rc != 0 and "manage-devices" in err, "a plain user is refused (manage-devices)", out + err)

        # 4. Past midnight the first day is closed, the device has it in
        # its statistics, and kasamond recorded part of it: not imported.
        env.wait_for(lambda: time.time() > midnight + 4, MIDNIGHT_IN + 30, "midnight")
        first_day = (midnight - 86400) * 1000000
        days = env.truth(1)[0]["outlets"][0]["days"]
        dev_first = [d for d in days
                     if int(time.mktime(time.strptime(d["date"], "%Y-%m-%d"))) * 1000000 == first_day]
        t.ok(len(dev_first) == 1 and dev_first[0]["energy_mwh"] > 0,
             "the device's statistics hold the first day kasamond recorded", days)
        rc, out, err = kasactl(env, "backfill", kp115_id)
        t.ok(rc == 0 and "0 days imported" in out, "after midnight: a backfill imports nothing", out + err)
        hist = day_history(env, kp115)
        first = [h for h in hist if h[0] == first_day]
        t.ok(len(first) == 1 and not math.isnan(first[0][2]),
             "the first day is one entry, recorded by kasamond, not imported", hist)
        if first and dev_first:
            t.ok(0 < first[0][4] <= dev_first[0]["energy_mwh"] / 1000 + 1,
                 "its energy is kasamond's own count, not added to the device's",
                 f"{first[0][4]} Wh, device {dev_first[0]['energy_mwh'] / 1000} Wh")
        t.eq(len(imported(hist)), len(HISTORY_WH), "still six imported days")

        # 5. kasactl history and export mark them.
        rc, out, err = kasactl(env, "history", kp115_id, "--resolution=day", "--since=-10d", "--json=short")
        h = json.loads(out) if rc == 0 else {}
        flags = [s["imported"] for s in h.get("samples", [])]
        t.ok(rc == 0 and flags[:len(HISTORY_WH)] == [True] * len(HISTORY_WH) and not any(flags[len(HISTORY_WH):])
             and len(flags) >= len(HISTORY_WH) + 1, "history --json: imported true for the six days only", out + err)
        t.ok(all(s["power_min"] is None and s["power_max"] is None for s in h.get("samples", []) if s["imported"]),
             "with null minimum and maximum")
        rc, out, err = kasactl(env, "history", kp115_id, "--resolution=day", "--since=-10d")
        lines = out.splitlines()
        t.ok(rc == 0 and lines[0].split() == ["TIME", "AVERAGE", "MIN", "MAX", "ENERGY", "SOURCE"] and
             sum(1 for ln in lines if ln.rstrip().endswith("device")) == len(HISTORY_WH) and
             any(ln.rstrip().endswith("kasamond") for ln in lines), "history table: a SOURCE column", out + err)
        rc, out, err = kasactl(env, "export", kp115_id, "--resolution=day", "--since=-10d")
        r = list(csv.reader(io.StringIO(out, newline="")))
        src = [row[-1] for row in r[1:]]
        t.ok(rc == 0 and r and r[0][-1] == "source" and src.count("device") == len(HISTORY_WH) and
             "kasamond" in src, "day export: source device for the imported days", out + err)
        t.eq([float(row[3]) for row in r[1:] if row[-1] == "device"], [float(w) for w in HISTORY_WH],
             "and their energy")


if __name__ == "__main__":
    raise SystemExit(main())
