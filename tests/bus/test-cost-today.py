#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""CostToday priced on from the part of the day kept from earlier rounds
is GetCost of today to the cent: a tariff in force since 1970 (so that
the part before the last hour's split is priced and kept), with marginal
tiers a plug crosses within minutes and a tax on the rounded lines; once
the plug draws nothing and a round has run, the Manager's CostToday and
the meter's are GetCost's totals of today. (Before 01:10 local time there
is no part yet, and the whole day is priced: the same.) Not timed: it
waits for the energy to stand still."""

import json
import sys
import time

import kasatest as kt

POLL_S = 0.5
TARIFF = json.dumps({"format": "kasamond-tariff/1", "name": "tiers", "currency": "EUR",
                     "periods": [{"name": "all", "tiers": [{"up_to_kwh": 0.002, "rate": 11.11},
                                                           {"up_to_kwh": 0.005, "rate": 17.33},
                                                           {"rate": 22.91}]}],
                     "adders": [{"name": "grid", "rate": 1.37}],
                     "taxes": [{"name": "VAT", "percent": 19}]})


def cents(s):
    whole, _, frac = s.partition(".")
    sign = -1 if whole.startswith("-") else 1
    return sign * (abs(int(whole)) * 100 + int((frac + "00")[:2]))


def main():
    t = kt.Tap()
    with kt.Env(["hs110@127.0.0.2"], poll_interval=POLL_S) as env:
        plug = env.device_path(kt.mac_id(env.sim_devices()[0]["mac"]))
        env.wait_for(lambda: plug in env.objects(), 20, "the plug is known")
        env.sim(cmd="set", device=0, load_w=3000.0)
        env.activate_tariff(TARIFF, 86400 * 10**6)
        midnight = int(time.mktime(time.localtime()[:3] + (0, 0, 0, 0, 0, -1)) * 1e6)

        def today():
            return json.loads(env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "GetCost", "aotts",
                                       ([], midnight, 0, ""))[0])
        # Past the tiers (7 Wh), then nothing more.
        env.wait_for(lambda: float(today()["energy_kwh"]) > 0.008, 60, "the plug past the tiers")
        env.sim(cmd="set", device=0, load_w=0.0)
        env.wait_polled(plug, polls=2)
        before = today()
        env.wait_polled(plug, polls=2)
        bill = today()
        t.eq(bill["total"], before["total"], "the energy stands still")
        tiers = {line["tier"] for b in bill["home"]["buckets"] for line in b["lines"] if line["kind"] == "energy"}
        t.eq(tiers, {0, 1, 2}, "today's energy fills all three tiers")
        want = cents(bill["total"])
        env.wait_for(lambda: round(env.get(kt.MANAGER_PATH, kt.MANAGER_IFACE, "CostToday") * 100) == want, 20,
                     f"Manager.CostToday is {bill['total']}")
        t.ok(True, f"Manager.CostToday is GetCost's total of today ({bill['total']})")
        dev = bill["devices"][0]
        t.eq(round(env.get(plug, kt.METER_IFACE, "CostToday") * 100), cents(dev["total"]),
             f"EnergyMeter.CostToday is the plug's GetCost of today ({dev['total']})")
        t.ok(env.daemon_alive(), "kasamond still runs")
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
