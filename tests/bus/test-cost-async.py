#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""GetCost runs off kasamond's event loop: while a big GetCost (every day
since 1980 in day buckets, with a demand charge that makes it read
minutes) is outstanding, polls go on (a plug's LastSeen advances), and
the call is answered as before; an answer too big for
the bus is refused (the bus would drop kasamond's connection). Not
timed: the call is made long enough that at least one poll (1 s apart)
falls inside it, and the test says so if it did not take two polls'
time."""

import json
import sys
import time

import kasatest as kt
from gi.repository import Gio, GLib

POLL_S = 1.0
UNTIL_US = 4102444800 * 10**6  # 2100-01-01
SINCE_US = 315532800 * 10**6  # 1980-01-01: 17000 day buckets, 14 MiB of JSON
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

        done = []
        seen = []
        start_us = int(time.time() * 1e6)
        params = GLib.Variant("(aotts)", ([], SINCE_US, 0, "day"))

        def finished(bus, res):
            try:
                done.append((time.time(), bus.call_finish(res).unpack()[0]))
            except GLib.Error as e:
                done.append((time.time(), e))
        env.bus.call(kt.BUS_NAME, kt.MANAGER_PATH, kt.MANAGER_IFACE, "GetCost", params, None,
                     Gio.DBusCallFlags.NONE, 600000, None, finished)
        started = time.monotonic()
        while not done and time.monotonic() - started < 300:
            v = env.get(plug, kt.DEVICE_IFACE, "LastSeen")
            if not seen or v != seen[-1]:
                seen.append(v)
            env.iterate(0.2)
        t.ok(done and isinstance(done[0][1], str), "GetCost answered", done)
        bill = json.loads(done[0][1]) if done and isinstance(done[0][1], str) else {"buckets": []}
        t.ok(len(bill["buckets"]) > 16000 and "total" in bill,
             f"the bill of every day since 1980 ({len(bill['buckets'])} buckets)")
        end_us = done[0][0] * 1e6 if done else 0
        t.ok(end_us - start_us > 2 * POLL_S * 1e6, f"the call took more than two polls ({(end_us - start_us) / 1e6} s)")
        # A poll inside the call, well before its reply came.
        inside = [v for v in seen if start_us < v < end_us - POLL_S / 2 * 1e6]
        t.ok(inside, f"a poll completed while GetCost was outstanding ({len(inside)} of {len(seen)})", seen)

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
