#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""GetCost runs off kasamond's event loop: while big GetCosts (every day
since 2000 in day buckets, with a demand charge that makes them read
minutes, eight at once) are outstanding, polls go on (a plug's LastSeen
advances), and the calls are answered as before; an answer too big for
the bus is refused (the bus would drop kasamond's connection). Not
timed: the calls are made long enough that at least one poll (1 s apart) falls inside them, and the test says
so if they did not take two polls' time."""

import json
import sys
import time

import kasatest as kt
from gi.repository import Gio, GLib

POLL_S = 1.0
UNTIL_US = 4102444800 * 10**6  # 2100-01-01
SINCE_US = 946684800 * 10**6  # 2000-01-01
CALLS = 8
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

        # As many calls as kasamond takes at once (two running, six
        # waiting), each of every day since 2000 in day buckets.
        done = []
        seen = []
        start_us = int(time.time() * 1e6)
        params = GLib.Variant("(aotts)", ([], SINCE_US, 0, "day"))

        def finished(bus, res):
            try:
                done.append((time.time(), bus.call_finish(res).unpack()[0]))
            except GLib.Error as e:
                done.append((time.time(), e))
        for _ in range(CALLS):
            env.bus.call(kt.BUS_NAME, kt.MANAGER_PATH, kt.MANAGER_IFACE, "GetCost", params, None,
                         Gio.DBusCallFlags.NONE, 600000, None, finished)
        started = time.monotonic()
        while len(done) < CALLS and time.monotonic() - started < 400:
            v = env.get(plug, kt.DEVICE_IFACE, "LastSeen")
            if not seen or v != seen[-1]:
                seen.append(v)
            env.iterate(0.2)
        answers = [d[1] for d in done if isinstance(d[1], str)]
        t.ok(len(answers) == CALLS, f"every GetCost answered ({len(answers)} of {CALLS})",
             [d[1] for d in done if not isinstance(d[1], str)])
        bills = [json.loads(a) for a in answers]
        t.ok(bills and len(bills[0]["buckets"]) > 9000 and all(b["total"] == bills[0]["total"] for b in bills),
             f"each the bill of every day since 2000 ({len(bills[0]['buckets']) if bills else 0} buckets)")
        last_us = max(d[0] for d in done) * 1e6 if done else 0
        t.ok(last_us - start_us > 2 * POLL_S * 1e6, f"the calls took more than two polls ({(last_us - start_us) / 1e6} s)")
        # A poll inside the calls, well before the last reply came.
        inside = [v for v in seen if start_us < v < last_us - POLL_S / 2 * 1e6]
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
