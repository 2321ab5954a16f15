#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""GetCost runs off kasamond's event loop: while a big GetCost (every day
since 1980 in day buckets, with a demand charge that makes it read
minutes) is outstanding, polls go on (a plug's LastSeen advances), and
the call is answered as before; an answer too big for
the bus is refused (the bus would drop kasamond's connection). Not
timed: the call is made again until a poll (1 s apart) fell inside one
(on a kasamond that prices on its loop none ever does)."""

import json
import sys
import time

import kasatest as kt
from gi.repository import Gio, GLib

POLL_S = 1.0
UNTIL_US = 4102444800 * 10**6  # 2100-01-01
SINCE_US = 315532800 * 10**6  # 1980-01-01: 17000 day buckets, 14 MiB of JSON
MAX_CALLS = 20
TARIFF = json.dumps({"format": "kasamond-tariff/1", "name": "demand", "currency": "EUR",
                     "periods": [{"name": "all", "rate": 0.3}],
                     "fixed": [{"name": "daily", "amount": 0.5, "per": "day"}],
                     "demand": {"charges": [{"name": "peak", "rate": 10}]}})


def main():
    t = kt.Tap()
    with kt.Env(["hs110@127.0.0.2"], poll_interval=POLL_S) as env:
        plug = env.device_path(kt.mac_id(env.sim_devices()[0]["mac"]))
        env.wait_for(lambda: plug in env.objects(), 20, "the plug is known")
        env.sim(cmd="set", device=0, load_w=1000.0)
        tariff = env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "AddTariff", "s", (TARIFF,))[0]
        env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "ActivateTariff", "oaot", (tariff, [], SINCE_US))
        env.wait_polled(plug, polls=3)

        # One call at a time, until a poll fell inside one (some margin at
        # both ends: the call reaching kasamond, its reply coming back).
        params = GLib.Variant("(aotts)", ([], SINCE_US, 0, "day"))
        calls, took, inside, bill = 0, 0.0, [], {"buckets": []}
        while not inside and calls < MAX_CALLS:
            done, seen = [], []
            start_us = int(time.time() * 1e6)

            def finished(bus, res):
                try:
                    done.append((time.time(), bus.call_finish(res).unpack()[0]))
                except GLib.Error as e:
                    done.append((time.time(), e))
            env.bus.call(kt.BUS_NAME, kt.MANAGER_PATH, kt.MANAGER_IFACE, "GetCost", params, None,
                         Gio.DBusCallFlags.NONE, 600000, None, finished)
            calls += 1
            started = time.monotonic()
            while not done and time.monotonic() - started < 300:
                v = env.get(plug, kt.DEVICE_IFACE, "LastSeen")
                if not seen or v != seen[-1]:
                    seen.append(v)
                env.iterate(0.1)
            if not done or not isinstance(done[0][1], str):
                break
            bill = json.loads(done[0][1])
            end_us = done[0][0] * 1e6
            took += (end_us - start_us) / 1e6
            inside = [v for v in seen if start_us + 50000 < v < end_us - 200000]
        t.ok(done and isinstance(done[0][1], str), "GetCost answered", done)
        t.ok(len(bill["buckets"]) > 16000 and "total" in bill,
             f"the bill of every day since 1980 ({len(bill['buckets'])} buckets)")
        t.ok(inside, f"a poll completed while GetCost was outstanding ({calls} calls, {took:.1f} s)", seen)

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
