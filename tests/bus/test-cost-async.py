#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""GetCost and PriceEnergy run off kasamond's event loop: while a big
GetCost (every day since 1980 in day buckets, with a demand charge that
makes it read minutes) is outstanding, polls go on (a plug's LastSeen
advances), and while a big PriceEnergy (a CSV of a million hours, priced
with a demand charge) is, a call sent after it is answered before it; both
are answered as before; an answer too big for the bus is refused (the bus
would drop kasamond's connection). Not timed: each call is made again
until a poll (1 s apart) fell inside one, or the later call came back
first (on a kasamond that prices on its loop neither ever happens)."""

import json
import sys
import time

import kasatest as kt
from gi.repository import Gio, GLib

POLL_S = 1.0
UNTIL_US = 4102444800 * 10**6  # 2100-01-01
SINCE_US = 315532800 * 10**6  # 1980-01-01: 17000 day buckets, 14 MiB of JSON
MAX_CALLS = 20
CSV_ROWS = 1000000
TARIFF = json.dumps({"format": "kasamond-tariff/1", "name": "demand", "currency": "EUR",
                     "periods": [{"name": "all", "rate": 0.3}],
                     "fixed": [{"name": "daily", "amount": 0.5, "per": "day"}],
                     "demand": {"charges": [{"name": "peak", "rate": 10}]}})


def csv_hours(n):
    """n hourly rows from 1970 on, 1.5 Wh each: start,energy_wh."""
    rows = ["start,energy_wh"]
    for h in range(n):
        t = time.gmtime(h * 3600)
        rows.append(f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:00:00+00:00,1.5")
    return "\n".join(rows) + "\n"


def poll_inside(env, plug, method, params):
    """Calls method once at a time until a poll of plug completed inside a
    call (some margin at both ends: the call reaching kasamond, its reply
    coming back). Returns (calls, seconds, polls inside, last answer)."""
    calls, took, inside, answer = 0, 0.0, [], None
    while not inside and calls < MAX_CALLS:
        done, seen = [], []
        start_us = int(time.time() * 1e6)

        def finished(bus, res):
            try:
                done.append((time.time(), bus.call_finish(res).unpack()[0]))
            except GLib.Error as e:
                done.append((time.time(), e))
        env.bus.call(kt.BUS_NAME, kt.MANAGER_PATH, kt.MANAGER_IFACE, method, params, None,
                     Gio.DBusCallFlags.NONE, 600000, None, finished)
        calls += 1
        started = time.monotonic()
        while not done and time.monotonic() - started < 300:
            v = env.get(plug, kt.DEVICE_IFACE, "LastSeen")
            if not seen or v != seen[-1]:
                seen.append(v)
            env.iterate(0.1)
        answer = done[0][1] if done else None
        if not isinstance(answer, str):
            break
        end_us = done[0][0] * 1e6
        took += (end_us - start_us) / 1e6
        inside = [v for v in seen if start_us + 50000 < v < end_us - 200000]
    return calls, took, inside, answer


def answered_meanwhile(env, plug, method, params):
    """Sends method, and right behind it on the same connection a Get of
    the plug's LastSeen: the bus keeps their order, so a kasamond that does
    the call's work on its loop answers the Get after the call; one that
    does it elsewhere answers the Get first. Tried again (the work could
    be done before the Get is read) up to MAX_CALLS times. Returns (calls,
    whether the Get came first, the call's last answer)."""
    calls, first, answer = 0, False, None
    while not first and calls < MAX_CALLS:
        order = []

        def finished(bus, res, what):
            try:
                order.append((what, bus.call_finish(res).unpack()[0]))
            except GLib.Error as e:
                order.append((what, e))
        env.bus.call(kt.BUS_NAME, kt.MANAGER_PATH, kt.MANAGER_IFACE, method, params, None,
                     Gio.DBusCallFlags.NONE, 600000, None, finished, "call")
        env.bus.call(kt.BUS_NAME, plug, "org.freedesktop.DBus.Properties", "Get",
                     GLib.Variant("(ss)", (kt.DEVICE_IFACE, "LastSeen")), None, Gio.DBusCallFlags.NONE, 600000,
                     None, finished, "get")
        calls += 1
        env.wait_for(lambda: len(order) == 2, 300, f"{method} and the Get answered")
        answer = dict(order)["call"]
        if not isinstance(answer, str):
            break
        first = order[0][0] == "get"
    return calls, first, answer


def main():
    t = kt.Tap()
    with kt.Env(["hs110@127.0.0.2"], poll_interval=POLL_S) as env:
        plug = env.device_path(kt.mac_id(env.sim_devices()[0]["mac"]))
        env.wait_for(lambda: plug in env.objects(), 20, "the plug is known")
        env.sim(cmd="set", device=0, load_w=1000.0)
        env.activate_tariff(TARIFF, SINCE_US)
        env.wait_polled(plug, polls=3)

        calls, took, inside, answer = poll_inside(env, plug, "GetCost",
                                                  GLib.Variant("(aotts)", ([], SINCE_US, 0, "day")))
        bill = json.loads(answer) if isinstance(answer, str) else {"buckets": []}
        t.ok(isinstance(answer, str), "GetCost answered", answer)
        t.ok(len(bill["buckets"]) > 16000 and "total" in bill,
             f"the bill of every day since 1980 ({len(bill['buckets'])} buckets)")
        t.ok(inside, f"a poll completed while GetCost was outstanding ({calls} calls, {took:.1f} s)")

        # A million hours (30 MB of CSV, under the bus's 32 MiB), priced
        # with the demand tariff: the parse and the bill take a while,
        # the bus is served meanwhile.
        params = GLib.Variant("(ssss)", (TARIFF, csv_hours(CSV_ROWS), "UTC", ""))
        calls, first, answer = answered_meanwhile(env, plug, "PriceEnergy", params)
        bill = json.loads(answer) if isinstance(answer, str) else {}
        t.ok(isinstance(answer, str), "PriceEnergy answered", answer)
        t.eq((bill.get("energy_kwh"), bill.get("time_zone")), (f"{CSV_ROWS * 1.5 / 1000:.3f}", "UTC"),
             "PriceEnergy: the bill of every hour of the CSV")
        t.ok(first, f"a call sent after PriceEnergy was answered before it ({calls} calls)")
        r = env.call_error(kt.MANAGER_PATH, kt.MANAGER_IFACE, "PriceEnergy", "ssss",
                           (TARIFF, "start,energy_wh\n2024-01-01T00:00:00Z,1\n", "", ""))
        t.ok(r and r[0] == "org.freedesktop.DBus.Error.InvalidArgs" and "csv:" in r[1],
             "PriceEnergy: a bad CSV is refused with its line, as before", r)

        # Days to 2100: an answer over the bus's message limit, which
        # would have the bus drop kasamond's connection, is refused.
        r = env.call_error(kt.MANAGER_PATH, kt.MANAGER_IFACE, "GetCost", "aotts", ([], 1, UNTIL_US, "day"),
                           timeout=300)
        t.ok(r and r[0] == "org.kasamond.Kasa1.Error.LimitReached" and "MiB" in r[1],
             "an answer too big for the bus: LimitReached", r)
        t.ok(env.has_owner(), "kasamond is still on the bus")
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
