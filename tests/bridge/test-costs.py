#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""/api/rates and /api/costs on kasamond's tariffs: adding a tariff (the
project's format) and listing, reading, activating and removing it, each
with the role it needs; GetCost through GET /api/costs, what-if pricing of
the recorded energy and of a CSV series through POST /api/costs/calculate;
bad input refused with 400, unknown ids with 404, a tariff in use with
409; kasa_cost_total{currency} in /metrics and the cost in the WebSocket's
messages once a tariff prices."""

import json
import re
import sys
import time

import bridgetest as bt
import kasatest as kt

DEVICES = ["hs110@127.0.0.2", "kp115@127.0.0.3"]


def flat(name, rate):
    return {"format": "kasamond-tariff/1", "name": name, "currency": "EUR", "periods": [{"name": "all", "rate": rate}]}


def main():
    t = kt.Tap()
    with bt.bridge_env(DEVICES) as (env, br):
        env.wait_for(lambda: len(env.objects()) >= 2, 20, "the devices are known")
        for path in list(env.objects()):
            env.wait_polled(path)
        plug = kt.mac_id(env.sim_devices()[0]["mac"])
        viewer = bt.create_token(env, "viewer", "viewer")[1]
        operator = bt.create_token(env, "operator", "operator")[1]

        st, _, body = br.get("/api/rates", viewer)
        t.ok(st == 200 and body == [], "GET /api/rates: none yet", (st, body))
        t.ok(bt.is_error(br.get("/api/rates"), 401), "GET /api/rates without a token: 401")
        t.ok(bt.is_error(br.post("/api/rates", viewer, flat("A", 0.25)), 403), "POST /api/rates as viewer: 403")
        st, _, a = br.post("/api/rates", operator, flat("A", 0.25))
        aid = str(a["id"]) if isinstance(a, dict) and "id" in a else None
        t.ok(st == 201 and aid and a.get("name") == "A" and a.get("active") is False,
             "POST /api/rates as operator: 201 and the tariff's Describe()", (st, a))
        bad = flat("bad", "cheap")
        t.ok(bt.is_error(br.post("/api/rates", operator, bad), 400, "bad_request"),
             "a malformed tariff: 400 with the daemon's message")
        t.ok(bt.is_error(br.request("POST", "/api/rates", operator, raw=b"{nope", headers={"Content-Type": "application/json"}),
                         400), "a body that is not JSON: 400")
        st, _, lst = br.get("/api/rates", viewer)
        t.ok(st == 200 and [x["id"] for x in lst] == [aid] and lst[0]["currency"] == "EUR" and lst[0]["active"] is False,
             "GET /api/rates lists it", lst)
        st, _, one = br.get(f"/api/rates/{aid}", viewer)
        t.ok(st == 200 and one.get("periods") == a.get("periods"), "GET /api/rates/{id}", (st, one))
        t.ok(bt.is_error(br.get("/api/rates/9999", viewer), 404), "an unknown tariff: 404")
        t.ok(bt.is_error(br.post(f"/api/rates/{aid}/activate", viewer), 403), "activate as viewer: 403")
        t.ok(bt.is_error(br.post(f"/api/rates/{aid}/activate", operator, {"since": "soon"}), 400),
             "activate with a malformed since: 400")
        t.ok(bt.is_error(br.post(f"/api/rates/{aid}/activate", operator, {"devices": ["00aa00aa00aa"]}), 404),
             "activate for an unknown device: 404")
        since = int(time.time()) - 600
        st, _, act = br.post(f"/api/rates/{aid}/activate", operator, {"since": since})
        t.ok(st == 200 and act.get("active") is True, "activate for the home: 200, active", (st, act))

        # A range that ended a few polls ago: both bills read the same
        # written energy, so they are equal, not just alike.
        now = int(time.time()) - 3
        st, _, cost = br.get(f"/api/costs?from={since}&to={now}", viewer)
        direct = json.loads(env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "GetCost", "aotts",
                                     ([], since * 10**6, now * 10**6, ""))[0])
        t.ok(st == 200 and cost.get("currency") == "EUR" and cost == direct,
             "GET /api/costs is GetCost's bill", (st, cost, direct))
        st, _, cost = br.get(f"/api/costs?from={since}&device={plug}&by=day", viewer)
        t.ok(st == 200 and [d["id"] for d in cost.get("devices", [])] == [plug] and cost.get("buckets"),
             "GET /api/costs?device=&by=day: that device, per day", (st, cost))
        t.ok(bt.is_error(br.get("/api/costs?by=week", viewer), 400), "by=week: 400")
        t.ok(bt.is_error(br.get("/api/costs?device=bad!", viewer), 400), "a malformed device: 400")
        t.ok(bt.is_error(br.get("/api/costs?device=00aa00aa00aa", viewer), 404), "an unknown device: 404")
        t.ok(bt.is_error(br.get("/api/costs?from=tomorrow", viewer), 400), "a malformed from: 400")

        st, _, what = br.post("/api/costs/calculate", viewer, {"tariff": flat("B", 0.5), "from": since})
        t.ok(st == 200 and what.get("currency") == "EUR", "calculate with a tariff given: GetCostWith's bill",
             (st, what))
        st, _, what2 = br.post("/api/costs/calculate", viewer, {"tariff": aid, "from": since, "by": "day"})
        t.ok(st == 200 and what2.get("buckets"), "calculate with a tariff id, per day", (st, what2))
        st, _, what3 = br.post("/api/costs/calculate", viewer, {"tariff": int(aid), "from": since})
        t.ok(st == 200 and what3.get("currency") == "EUR", "calculate with the id as Describe() has it, a number",
             (st, what3))
        csv = "start,energy_wh\n2026-11-01T00:00:00Z,1000\n2026-11-01T01:00:00Z,1000\n"
        st, _, priced = br.post("/api/costs/calculate", viewer,
                                {"tariff": flat("C", 0.3), "energy_csv": csv, "time_zone": "UTC"})
        total = float(priced.get("total", "nan")) if isinstance(priced, dict) else None
        t.ok(st == 200 and total is not None and abs(total - 0.6) < 0.005,
             "calculate with energy_csv: 2 kWh at 0.30 EUR is 0.60 (PriceEnergy)", (st, priced))
        for body, name in (({}, "no tariff"), ({"tariff": True}, "true as tariff"),
                           ({"tariff": aid, "by": "week"}, "by=week"), ({"tariff": aid, "devices": "x"}, "devices not a list"),
                           ({"tariff": aid, "from": "later"}, "a malformed from"),
                           ({"tariff": flat("D", 1), "energy_csv": "garbage"}, "a malformed CSV")):
            t.ok(bt.is_error(br.post("/api/costs/calculate", viewer, body), 400), f"calculate with {name}: 400")

        st, _, b = br.post("/api/rates", operator, flat("unused", 0.1))
        t.ok(bt.is_error(br.request("DELETE", f"/api/rates/{aid}", operator), 409, "conflict"),
             "DELETE an activated tariff: 409")
        t.ok(bt.is_error(br.request("DELETE", f"/api/rates/{str(b['id'])}", viewer), 403), "DELETE as viewer: 403")
        t.eq(br.request("DELETE", f"/api/rates/{str(b['id'])}", operator)[0], 204, "DELETE a tariff never used: 204")

        def cost_metric():
            text = br.get("/metrics", viewer)[2]
            m = re.search(rf'^kasa_cost_total\{{id="{plug}",[^}}]*currency="EUR"\}} (\S+)$', text, re.M)
            return m and float(m.group(1))
        kt.eventually(t, env, lambda: cost_metric() is not None, 20,
                      "kasa_cost_total{currency=\"EUR\"} for the plug once the tariff prices")
        ws = bt.WsClient(br.port, f"/ws?token={viewer}")
        hello = ws.message()
        cost = hello.get("costs", {}).get(plug)
        t.ok(cost and cost.get("currency") == "EUR" and isinstance(cost.get("today"), float),
             "the WebSocket's hello carries the plug's cost today", hello.get("costs"))
        try:
            m = ws.wait_for(lambda m: m.get("type") == "update" and m["id"] == plug and m.get("cost"), 20)
            t.ok(m["cost"]["currency"] == "EUR", "and its updates too", m["cost"])
        except TimeoutError:
            t.ok(False, "and its updates too")
        ws.close()
        t.eq(br.stop(), 0, "the bridge exits with 0 on SIGTERM")
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
