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
the daemon.

--costs: refused before any tariff; then a tiered tariff (its first tier
ending a minute and a half's energy after T0, so that the second row
crosses it) prices the home; the minute rows of [T0, T0+2min) add up,
energy and adders, to the plug's bill of `costs` over the same range to
the cent; the header names the columns with the currency; the first row
is priced at the first tier's rate, the second partly at the next one's;
raw rows have no costs."""

from decimal import Decimal

import csv
import datetime
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
        rc, o, err = kasactl(env, "export", plug, "--resolution=minute", "--costs", *rng)
        t.ok(rc != 0 and "no tariff" in err, "--costs without any tariff is refused, saying so", err)
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

        # --costs: a tiered tariff, its first tier ending a minute's energy
        # after T0 (the cycle's energy before T0 counts: kasamond started
        # this month, so it is all the energy recorded before T0).
        month = int(datetime.datetime.fromtimestamp(t0, datetime.timezone.utc)
                    .replace(day=1, hour=0, minute=0, second=0).timestamp())
        rc, out, err = kasactl(env, "export", plug, "--resolution=minute", "--fields=energy_wh",
                               f"--since=@{max(month, t0 - 3 * 3600)}", f"--until=@{t0}")
        before = sum(Decimal(x[0]) for x in rows(out)[1:]) if rc == 0 else None
        minute_wh = Decimal(LOADS["127.0.0.2"]) / 60
        tiered = {"format": "kasamond-tariff/1", "name": "Tiers", "currency": "EUR",
                  "periods": [{"name": "energy", "tiers": [
                      {"up_to_kwh": float(round(((before or 0) + minute_wh * 3 / 2) / 1000, 6)), "rate": 12.3456789},
                      {"rate": 20.9876543}]}],
                  "adders": [{"name": "grid", "rate": 1.2345678}]}
        with open(os.path.join(env.tmp, "tiers.json"), "w") as f:
            json.dump(tiered, f)
        rc, o, err = kasactl(env, "tariff", "add", "tiers.json")
        rc2, ts, err2 = kasactl(env, "--json=short", "tariff", "list")
        tiers_id = [x["id"] for x in json.loads(ts) if x["name"] == "Tiers"][0] if rc2 == 0 else "?"
        rc3, o3, err3 = kasactl(env, "tariff", "activate", str(tiers_id), f"--since=@{t0 - 3600}")
        t.ok(before is not None and rc == 0 and rc3 == 0, "a tiered tariff prices the home",
             f"{before} {err} {o3} {err3}")
        rc, out, err = kasactl(env, "export", plug, "--resolution=minute", "--costs", *rng)
        r = rows(out)
        t.ok(rc == 0 and r and r[0] == ["device", "start", "end", "energy_wh", "power_min_w", "power_avg_w",
                                        "power_max_w", "samples", "source", "energy_cost_eur",
                                        "adders_cost_eur"],
             "--costs: the header names the cost columns with the currency", out[:300] + err)
        rc2, cost, err2 = kasactl(env, "--json=short", "costs", plug, *rng)
        try:
            bill = json.loads(cost)["devices"][0]
        except (ValueError, KeyError, IndexError):
            bill = {}
        energy = sum(Decimal(x[-2]) for x in r[1:]) if rc == 0 and len(r) == 3 else None
        adders = sum(Decimal(x[-1]) for x in r[1:]) if rc == 0 and len(r) == 3 else None
        t.ok(energy is not None and bill.get("energy") is not None and energy == Decimal(bill["energy"]) and
             adders == Decimal(bill["adders"]),
             "--costs: the rows' energy and adder costs add up to the bill of costs, to the cent",
             f"rows {energy} {adders}, bill {bill.get('energy')} {bill.get('adders')}: {out} {err2}")
        # A row's cost is its energy at its rates, give or take the cent its
        # rounding may carry over from the row before.
        cent = Decimal("0.01")
        kwh = [Decimal(x[3]) / 1000 for x in r[1:]] if energy is not None else []
        t.ok(len(kwh) == 2 and abs(Decimal(r[1][-2]) - kwh[0] * Decimal("12.3456789")) <= cent and
             kwh[1] * Decimal("12.3456789") + cent < Decimal(r[2][-2]) < kwh[1] * Decimal("20.9876543") - cent,
             "--costs: the first minute at the first tier's rate, the second crossing into the next tier "
             "(rows priced in order)", r)
        rc, js, err = kasactl(env, "export", plug, "--resolution=minute", "--costs", "--format=json", *rng)
        try:
            a2 = json.loads(js)
        except ValueError:
            a2 = []
        t.ok(len(a2) == 2 and all(isinstance(o.get("energy_cost_eur"), (int, float)) for o in a2) and
             Decimal(str(sum(Decimal(str(o["energy_cost_eur"])) for o in a2))) == energy,
             "--costs in JSON: numbers, the same costs", js[:400] + err)
        rc, out, err = kasactl(env, "export", plug, "--resolution=raw", "--costs", *rng)
        t.ok(rc != 0 and "minute, hour or day" in err, "--costs of raw samples is refused, saying why", err)

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
