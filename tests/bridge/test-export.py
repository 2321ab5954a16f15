#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""GET /api/export: Manager.Export streamed to the HTTP client in chunks.
Two metered kasa-sim plugs at constant loads and one without a meter;
T0 is the first whole minute after both were polled at their loads, and
the checks read [T0, T0+1min) once that minute is closed, so every
export of it reads the same rows. The bridge's body is byte for byte
what `kasactl export` writes with the same options (raw CSV of both
plugs, JSON, minute rows with costs), sent with chunked transfer
encoding; the cost of the one minute row is the plug's energy line of
GetCost over that minute. A token is needed (viewer); bad parameters are
refused with 400 and a message naming what is valid (the bridge's own
checks and the daemon's), unknown devices with 404, one without a meter
with 404 not_metered. A client that goes away in the middle leaves the
bridge and kasamond serving."""

import json
import math
import os
import socket
import subprocess
import sys
import time
from decimal import Decimal

import bridgetest as bt
import kasatest as kt

DEVICES = ["hs110@127.0.0.2", "kp115@127.0.0.3", "hs100@127.0.0.4"]
LOADS = {"127.0.0.2": 3000.0, "127.0.0.3": 1200.0}
KASACTL = os.path.join(kt.build_dir(), "client", "kasactl")
TARIFF = {"format": "kasamond-tariff/1", "name": "Flat", "currency": "EUR",
          "periods": [{"name": "energy", "rate": 12.3456789}], "adders": [{"name": "grid", "rate": 1.2345678}]}


def kasactl(env, *args):
    e = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=env.address, LC_ALL="C")
    p = subprocess.run([KASACTL, "--no-ask-password", *args], env=e, capture_output=True, timeout=90,
                       stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def main():
    t = kt.Tap()
    with bt.bridge_env(DEVICES) as (env, br):
        ids = {s["address"].split(":")[0]: kt.mac_id(s["mac"]) for s in env.sim_devices()}
        for addr, w in LOADS.items():
            env.sim(cmd="set", device=addr, load_w=w)
        env.wait_for(lambda: env.get(kt.MANAGER_PATH, kt.MANAGER_IFACE, "TotalPower") >= sum(LOADS.values()) - 1,
                     30, "every plug is polled at its load")
        viewer = bt.create_token(env, "viewer", "viewer")[1]
        env.wait_for(lambda: all(br.get(f"/api/devices/{i}", viewer)[0] == 200 for i in ids.values()), 20,
                     "the bridge knows the devices")
        t0 = math.ceil(time.time() / 60) * 60
        t1 = t0 + 60
        env.wait_for(lambda: time.time() > t1 + 3, 200, "the minute T0 is closed")
        plug, other, dumb = ids["127.0.0.2"], ids["127.0.0.3"], ids["127.0.0.4"]
        rng = f"since={t0}&until={t1}"
        krng = (f"--since=@{t0}", f"--until=@{t1}")

        t.ok(bt.is_error(br.get(f"/api/export?{rng}"), 401, "unauthorized"), "without a token: 401")

        # Raw CSV of both plugs: kasactl's bytes, chunked.
        st, hdrs, body = br.get(f"/api/export?devices={plug},{other}&resolution=raw&{rng}", viewer)
        rc, want, err = kasactl(env, "export", plug, other, "--resolution=raw", *krng)
        t.ok(st == 200 and rc == 0 and body == want and want.count("\r\n") > 100,
             "raw CSV of two plugs: what kasactl export writes, byte for byte",
             f"{st} {hdrs} {body[:300]!r} / {want[:300]!r} {err}")
        t.ok(hdrs.get("content-type", "").startswith("text/csv") and hdrs.get("transfer-encoding") == "chunked" and
             "content-length" not in hdrs and "kasa-export.csv" in hdrs.get("content-disposition", ""),
             "text/csv, sent in chunks (no Content-Length), as an attachment", hdrs)

        # Every metered device by default, in JSON.
        st, hdrs, body = br.get(f"/api/export?format=json&{rng}", viewer)
        rc, want, err = kasactl(env, "export", "--format=json", *krng)
        t.ok(st == 200 and rc == 0 and body == json.loads(want) and
             sorted({r["device"] for r in body}) == sorted([plug, other]) and
             hdrs.get("content-type") == "application/json",
             "JSON of every metered device by default: kasactl's rows", f"{st} {hdrs} {body!r:.300} {err}")

        # Costs: one minute row of the plug, its cost the bill's energy line.
        path = env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "AddTariff", "s", (json.dumps(TARIFF),))[0]
        env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "ActivateTariff", "oaot", (path, [], (t0 - 3600) * 10**6))
        st, hdrs, body = br.get(f"/api/export?devices={plug}&resolution=minute&costs=true&{rng}", viewer)
        rc, want, err = kasactl(env, "export", plug, "--resolution=minute", "--costs", *krng)
        rows = [line.split(",") for line in body.split("\r\n") if line] if isinstance(body, str) else []
        t.ok(st == 200 and rc == 0 and body == want and len(rows) == 2 and
             rows[0][-2:] == ["energy_cost_eur", "adders_cost_eur"],
             "costs=true: the cost columns, named with the currency, as kasactl --costs writes them",
             f"{st} {body!r:.400} / {want!r:.400} {err}")
        bill = json.loads(env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "GetCost", "aotts",
                                   ([env.device_path(plug)], t0 * 10**6, t1 * 10**6, ""))[0])["devices"][0]
        t.ok(len(rows) == 2 and Decimal(rows[1][-2]) == Decimal(bill["energy"]) and
             Decimal(rows[1][-1]) == Decimal(bill["adders"]) and Decimal(bill["energy"]) > 0,
             "the minute's costs are the energy and adders of GetCost over it, to the cent", (rows, bill))

        # Refusals: the bridge's own checks, then the daemon's.
        for query, status, error, says in (
                ("resolution=week", 400, "bad_request", "resolution: 'week' is not one of raw, minute, hour, day"),
                ("format=xml", 400, "bad_request", "format: 'xml' is not one of csv, json"),
                ("costs=maybe", 400, "bad_request", "costs: 'maybe' is not one of true, false, 1, 0"),
                ("since=yesterday", 400, "bad_request", "since: 'yesterday' is not an RFC 3339 time"),
                (f"since={t1}&until={t0}", 400, "bad_request", "since must be before until"),
                ("device=x", 400, "bad_request", "unknown parameter 'device': use devices, since, until"),
                ("devices=bad!", 400, "bad_request", "devices: 'bad!' is not a device id"),
                ("devices=00aa00aa00aa", 404, "not_found", "no device 00aa00aa00aa"),
                (f"devices={dumb}", 404, "not_metered", "no energy meter"),
                (f"devices={plug}&resolution=raw&costs=true", 400, "bad_request", "minute, hour or day"),
                (f"devices={plug}&resolution=hour&fields=start,power_w", 400, "bad_request",
                 "Unknown field 'power_w' at hour resolution: use device,start,end,energy_wh"),
                (f"devices={plug},{other}&fields=start,energy_wh", 400, "bad_request", "the field 'device'")):
            got = br.get(f"/api/export?{query}", viewer)
            t.ok(bt.is_error(got, status, error) and says in got[2]["message"], f"{query}: {status} {error}, saying why",
                 got)

        # A client that goes away after the headers: both sides go on.
        s = socket.create_connection(("127.0.0.1", br.port), 10)
        s.sendall(f"GET /api/export?resolution=raw&since={t0 - 600} HTTP/1.1\r\nHost: x\r\n"
                  f"Authorization: Bearer {viewer}\r\n\r\n".encode())
        head = s.recv(200)
        s.close()
        time.sleep(0.5)
        st, _, body = br.get(f"/api/export?devices={plug}&resolution=minute&{rng}", viewer)
        t.ok(head.startswith(b"HTTP/1.1 200") and st == 200 and body.count("\r\n") == 2 and env.daemon_alive() and
             br.proc.poll() is None, "after a client left in the middle, the bridge and kasamond export on",
             (head, st, body))
        t.eq(br.stop(), 0, "the bridge exits with 0 on SIGTERM")
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
