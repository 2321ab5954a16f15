#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""GetCost runs off kasamond's event loop: while a big GetCost (every day
since 1970 in day buckets, with a demand charge that makes it read
minutes) is outstanding, polls go on (a plug's LastSeen advances), and
the call is answered as before. Not timed: the call is made long enough
that at least one poll (1 s apart) falls inside it, and the test says
so if it did not take a poll's time."""

import json
import sys
import time

import kasatest as kt
from gi.repository import Gio, GLib

POLL_S = 1.0
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
        env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "ActivateTariff", "oaot", (tariff, [], 1))
        env.wait_polled(plug, polls=3)

        done = []
        seen = []
        start_us = int(time.time() * 1e6)
        params = GLib.Variant("(aotts)", ([], 1, 0, "day"))
        started = time.monotonic()
        env.bus.call(kt.BUS_NAME, kt.MANAGER_PATH, kt.MANAGER_IFACE, "GetCost", params, None,
                     Gio.DBusCallFlags.NONE, 600000, None,
                     lambda bus, res: done.append((time.monotonic(), bus.call_finish(res), time.time())))
        # Another connection polls LastSeen while the call is outstanding.
        while not done and time.monotonic() - started < 300:
            other = env.get(plug, kt.DEVICE_IFACE, "LastSeen")
            if not seen or other != seen[-1]:
                seen.append(other)
            env.iterate(0.2)
        t.ok(done, "GetCost answered")
        took = done[0][0] - started if done else None
        reply = json.loads(done[0][1].unpack()[0]) if done else {}
        t.ok("total" in reply and len(reply.get("buckets", [])) > 20000,
             f"GetCost of every day since 1970 ({len(reply.get('buckets', []))} buckets)")
        t.ok(took is not None and took > 2 * POLL_S, f"the call took more than two polls ({took} s)")
        # A poll inside the call, well before its reply came.
        inside = [v for v in seen if done and start_us < v < (done[0][2] - POLL_S / 2) * 1e6]
        t.ok(inside, f"a poll completed while GetCost was outstanding ({len(inside)} of {len(seen)})", seen)
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
