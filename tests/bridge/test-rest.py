#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Every REST route of the bridge with good and bad input, on kasamond with
kasa-sim plugs: no token, a wrong one, each role, malformed JSON and
parameters, huge bodies and headers, unknown ids, a device added by
address and removed, kasamond absent; a revoked token stops at once; failed
authentication is rate limited (last: it blocks 127.0.0.1 for a minute)."""

import re
import sys
import threading
import time

import bridgetest as bt
import kasatest as kt

# The last plug is not a discovery target: it is added by address.
DEVICES = ["hs110@127.0.0.2", "hs300@127.0.0.3", "hs100@127.0.0.4", "kp115@127.0.0.5"]
TARGETS = "127.0.0.2 127.0.0.3 127.0.0.4"
VOLATILE = ("last_seen", "rssi", "meter")


def stable(d):
    return {k: v for k, v in d.items() if k not in VOLATILE}


def check_reads(t, env, br, viewer):
    st, hdrs, body = br.get("/api/devices")
    t.ok(bt.is_error((st, hdrs, body), 401, "unauthorized") and "bearer" in hdrs.get("www-authenticate", "").lower(),
         "GET /api/devices without a token: 401 JSON with WWW-Authenticate", (st, hdrs, body))
    st, _, body = br.get("/api/devices", viewer)
    daemon = __import__("json").loads(env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "Describe")[0])["devices"]
    t.ok(st == 200 and isinstance(body, list) and [d["id"] for d in body] == [d["id"] for d in daemon],
         "GET /api/devices (viewer): every device of the daemon, sorted by id", (st, body, daemon))
    t.ok(st == 200 and [stable(d) for d in body] == [stable(d) for d in daemon] and
         all(set(a) == set(b) for a, b in zip(body, daemon)) and
         all(set(a.get("meter", {})) == set(b.get("meter", {})) for a, b in zip(body, daemon)),
         "each device is the daemon's Describe() object", (body, daemon))
    ids = [d["id"] for d in daemon]
    st, _, body = br.get(f"/api/devices/{ids[0]}", viewer)
    t.ok(st == 200 and body.get("id") == ids[0], "GET /api/devices/{id}: the device", (st, body))
    t.ok(bt.is_error(br.get("/api/devices/00112233aabb", viewer), 404, "not_found"), "an unknown id: 404")
    t.ok(bt.is_error(br.get("/api/devices/bad-id!", viewer), 400, "bad_request"), "a malformed id: 400")
    t.ok(bt.is_error(br.get("/api/devices/" + "a" * 65, viewer), 400, "bad_request"), "a too long id: 400")
    t.ok(bt.is_error(br.get("/api/nothing", viewer), 404, "not_found"), "an unknown route: 404")
    t.ok(bt.is_error(br.request("PUT", "/api/devices", viewer), 405, "method_not_allowed"), "PUT /api/devices: 405")
    st, _, body = br.get("/api/health", viewer)
    t.ok(st == 200 and body.get("status") == "ok" and body.get("devices") == len(daemon),
         "GET /api/health: ok, with the device count", (st, body))
    t.ok(bt.is_error(br.get("/api/health"), 401), "GET /api/health without a token: 401 (not opened)")
    st, _, body = br.get("/api/openapi.json")
    t.ok(st == 200 and body.get("openapi", "").startswith("3."), "GET /api/openapi.json: the document, open", st)


def check_history(t, env, br, viewer, plug, unmetered):
    now = int(time.time())
    st, _, body = br.get(f"/api/devices/{plug}/stats?from={now - 3600}&to={now + 60}&resolution=raw", viewer)
    t.ok(st == 200 and body.get("resolution") == "raw" and len(body.get("samples", [])) > 0 and
         all(set(s) == {"time", "timestamp", "power_avg", "power_min", "power_max", "energy_wh"}
             for s in body["samples"]),
         "stats with epoch seconds: raw samples", (st, body))
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 3600))
    st, _, body2 = br.get(f"/api/devices/{plug}/stats?from={iso}&resolution=minute", viewer)
    t.ok(st == 200 and body2.get("resolution") == "minute", "stats with an RFC 3339 time: minutes", (st, body2))
    offset = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now - 7200 + 3600)) + "%2B01:00"
    st, _, body3 = br.get(f"/api/devices/{plug}/stats?from={offset}&to={now + 60}", viewer)
    t.ok(st == 200, "stats with an RFC 3339 offset", (st, body3))
    for q, name in (("from=yesterday", "a word as time"), ("from=2026-12-02T10:00:00", "a time without offset"),
                    ("resolution=week", "an unknown resolution"), (f"from={now}&to={now - 10}", "from after to"),
                    ("from=-5", "a negative time")):
        t.ok(bt.is_error(br.get(f"/api/devices/{plug}/stats?{q}", viewer), 400, "bad_request"), f"stats, {name}: 400")
    t.ok(bt.is_error(br.get(f"/api/devices/{unmetered}/stats", viewer), 404, "not_metered"),
         "stats of a device without a meter: 404 not_metered")
    st, _, body = br.get(f"/api/devices/{plug}/energy?from={now - 86400 * 3}&bucket=day", viewer)
    t.ok(st == 200 and body.get("bucket") == "day" and len(body.get("buckets", [])) >= 3 and
         all(set(b) == {"start", "timestamp", "energy_wh"} for b in body["buckets"]),
         "energy per day: every bucket, zeros included", (st, body))
    t.ok(bt.is_error(br.get(f"/api/devices/{plug}/energy?bucket=week", viewer), 400), "energy, bucket=week: 400")
    t.ok(bt.is_error(br.get(f"/api/devices/{plug}/stats"), 401), "stats without a token: 401")


def check_switching(t, env, br, viewer, operator, admin, plug, index):
    relay = lambda: env.truth(index)[0]["outlets"][0]["relay"]  # noqa: E731
    t.ok(bt.is_error(br.post(f"/api/devices/{plug}/off", viewer), 403, "forbidden") and relay(),
         "POST off as viewer: 403, the relay stays on")
    st, _, body = br.post(f"/api/devices/{plug}/off", operator)
    t.ok(st == 200 and body == {"id": plug, "on": False} and relay() is False, "POST off as operator switches off",
         (st, body))
    st, _, body = br.post(f"/api/devices/{plug}/toggle", admin)
    t.ok(st == 200 and body == {"id": plug, "on": True} and relay() is True, "POST toggle as admin switches on",
         (st, body))
    st, _, body = br.post(f"/api/devices/{plug}/on", operator)
    t.ok(st == 200 and body["on"] is True, "POST on", (st, body))
    t.ok(bt.is_error(br.post("/api/devices/00112233aabb/on", operator), 404), "POST on, unknown device: 404")
    t.ok(bt.is_error(br.get(f"/api/devices/{plug}/on", operator), 405), "GET on: 405")

    st, _, body = br.request("PATCH", f"/api/devices/{plug}", operator, {"alias": "Kitchen kettle"})
    t.ok(st == 200 and body.get("alias") == "Kitchen kettle" and env.sim_devices()[index]["alias"] == "Kitchen kettle",
         "PATCH alias renames the plug itself", (st, body))
    t.ok(bt.is_error(br.request("PATCH", f"/api/devices/{plug}", viewer, {"alias": "x"}), 403), "PATCH as viewer: 403")
    bad = [(b'{"alias": ', "malformed JSON"), (b'["alias"]', "an array"), (b'{"alias": 5}', "a number alias"),
           (b'{"alias": "a", "model": "b"}', "an unknown field"), (b"", "no body"),
           (b'{"alias": "a", "alias": "b"}', "a duplicate key")]
    for raw, name in bad:
        t.ok(bt.is_error(br.request("PATCH", f"/api/devices/{plug}", operator, raw=raw,
                                    headers={"Content-Type": "application/json"}), 400, "bad_request"),
             f"PATCH with {name}: 400")
    t.ok(bt.is_error(br.request("PATCH", f"/api/devices/{plug}", operator, {"alias": "x" * 40}), 400),
         "PATCH with an alias too long for the plug: 400 (the daemon's InvalidArgs)")
    st, _, body = br.request("PATCH", f"/api/devices/{plug}", operator,
                             raw=b'{"alias": "' + b"x" * 70000 + b'"}', headers={"Content-Type": "application/json"})
    t.ok(bt.is_error((st, {}, body), 413, "payload_too_large"), "a 70 kB body: 413", (st, body))
    try:
        st, _, body = br.request("PATCH", f"/api/devices/{plug}", operator, raw=b'{"alias": "' + b"x" * 70000 + b'"}',
                                 headers={"Content-Type": "application/json"}, chunked=True)
    except (ConnectionError, OSError) as e:
        st, body = None, e
    t.ok(st == 413 and body.get("error") == "payload_too_large", "a 70 kB chunked body: 413", (st, body))
    st, _, body = br.get("/api/devices", viewer, headers={"X-Filler": "y" * 20000})
    t.ok(bt.is_error((st, {}, body), 431, "header_too_large"), "20 kB of headers: 431", (st, body))
    st, _, body = br.get("/api/devices", viewer)
    t.ok(st == 200, "the bridge serves on after refusing them", st)


def check_add_remove(t, env, br, viewer, operator):
    t.ok(bt.is_error(br.post("/api/devices", viewer, {"address": "127.0.0.5"}), 403), "POST /api/devices as viewer: 403")
    t.ok(bt.is_error(br.post("/api/devices", operator, {"address": 5}), 400), "POST /api/devices, address a number: 400")
    t.ok(bt.is_error(br.post("/api/devices", operator, {"address": "plug.example"}), 400),
         "POST /api/devices, a host name: 400 (the daemon's InvalidArgs)")
    st, _, body = br.post("/api/devices", operator, {"address": "127.0.0.5"})
    new = body.get("id") if isinstance(body, dict) else None
    t.ok(st == 201 and new and body.get("address") == "127.0.0.5", "POST /api/devices adds by address: 201 + device",
         (st, body))
    t.ok(bt.is_error(br.post("/api/devices", operator, {"address": "127.0.0.5"}), 409, "conflict"),
         "adding it again: 409")
    kt.eventually(t, env, lambda: br.get(f"/api/devices/{new}", viewer)[0] == 200, 10, "the added device is served")
    t.ok(bt.is_error(br.request("DELETE", f"/api/devices/{new}", viewer), 403), "DELETE as viewer: 403")
    st, _, body = br.request("DELETE", f"/api/devices/{new}", operator)
    t.ok(st == 204, "DELETE: 204", (st, body))
    kt.eventually(t, env, lambda: br.get(f"/api/devices/{new}", viewer)[0] == 404, 10, "the removed device is gone: 404")
    t.ok(bt.is_error(br.request("DELETE", f"/api/devices/{new}", operator), 404), "DELETE again: 404")
    st, _, body = br.post("/api/devices/discover", operator, {"timeout": 0.5})
    t.ok(st == 200 and isinstance(body, list) and len(body) >= 3 and new not in [d["id"] for d in body],
         "POST discover: the devices that answered, not the removed one", (st, body))
    t.ok(bt.is_error(br.post("/api/devices/discover", operator, {"timeout": 600}), 400), "discover, timeout 600: 400")
    t.ok(bt.is_error(br.post("/api/devices/discover", viewer), 403), "discover as viewer: 403")


def check_revoked(t, env, br, plug):
    # The failures here must not count against 127.0.0.1's limit.
    ELSEWHERE = "127.0.0.30"
    tid, secret = bt.create_token(env, "short-lived", "operator")
    t.ok(br.post(f"/api/devices/{plug}/on", secret, source=ELSEWHERE)[0] == 200, "a fresh operator token switches")
    env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "RevokeToken", "s", (tid,))
    st, _, body = br.post(f"/api/devices/{plug}/on", secret, source=ELSEWHERE)
    t.ok(st in (401, 403) and isinstance(body, dict) and "error" in body, "after RevokeToken it cannot switch",
         (st, body))
    # Reads come from the bridge's cache: TokenRevoked ends them at once,
    # not at a later check of the token.
    rid, reader = bt.create_token(env, "reader", "viewer")
    t.ok(br.get("/api/devices", reader, source=ELSEWHERE)[0] == 200, "a fresh viewer token reads")
    env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "RevokeToken", "s", (rid,))
    kt.eventually(t, env, lambda: br.get("/api/devices", reader, source=ELSEWHERE)[0] == 401, 3,
                  "revoked, it cannot read any more either (TokenRevoked, within 3 s)")
    expires = time.time() + 3
    _, brief = bt.create_token(env, "brief", "viewer", int(expires * 1e6))
    t.ok(br.get("/api/devices", brief, source=ELSEWHERE)[0] == 200, "a token expiring in 3 s reads")
    while time.time() < expires:
        time.sleep(0.2)
    kt.eventually(t, env, lambda: br.get("/api/devices", brief, source=ELSEWHERE)[0] == 401, 3,
                  "expired, it cannot read (kasamond's TokenRevoked at the expiry, within 3 s)")


def bindings(br, viewer):
    st, _, text = br.get("/metrics", viewer)
    m = re.search(r"^kasa_bridge_token_bindings_total (\d+)$", text if st == 200 else "", re.M)
    return int(m.group(1)) if m else None


def check_one_binding(t, env, br, viewer):
    """Uses of a new token that arrive while it is being bound wait for
    that binding instead of each binding it again."""
    before = bindings(br, viewer)
    _, fresh = bt.create_token(env, "concurrent", "viewer")
    codes = []
    threads = [threading.Thread(target=lambda: codes.append(br.get("/api/devices", fresh)[0])) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    t.eq(codes, [200] * 8, "eight concurrent first uses of a new token: 200 each")
    after = bindings(br, viewer)
    t.ok(before is not None and after == before + 1, "and the bridge bound it once (kasa_bridge_token_bindings_total)",
         (before, after))


def check_absent(t, env, br, viewer):
    env.stop_daemon()
    kt.eventually(t, env, lambda: br.get("/api/health", viewer)[0] == 503, 10, "kasamond stopped: health is 503")
    st, _, body = br.get("/api/health", viewer)
    t.ok(st == 503 and body.get("error") == "unavailable" and body.get("status") == "down", "with a JSON body",
         (st, body))
    t.ok(bt.is_error(br.get("/api/devices", viewer), 503, "unavailable"), "GET /api/devices: 503")
    env.start_daemon()
    kt.eventually(t, env, lambda: br.get("/api/health", viewer)[0] == 200, 20, "kasamond back: health is 200")


def check_many_clients(t, env, br):
    """Every HTTP client is the bridge's uid to kasamond: bad tokens from
    six addresses, each within its own limit, do not lock out a seventh
    with a token the bridge has not bound yet."""
    fresh = bt.create_token(env, "fresh", "viewer")[1]
    codes = [br.get("/api/devices", f"kasa_other{i}", source=f"127.0.0.{10 + i}")[0] for i in range(6)]
    t.ok(codes == [401] * 6, "one wrong token from each of six addresses: 401 each", codes)
    st, _, body = br.get("/api/devices", fresh, source="127.0.0.20")
    t.ok(st == 200, "a good token from a seventh address: 200, kasamond did not block the bridge's uid",
         (st, body))


def check_rate_limit(t, br, viewer):
    codes = [br.get("/api/devices", f"kasa_wrong{i}")[0] for i in range(5)]
    t.ok(codes == [401] * 5, "five wrong tokens: 401 each", codes)
    st, hdrs, body = br.get("/api/devices", "kasa_wrong6")
    t.ok(bt.is_error((st, hdrs, body), 429, "rate_limited") and int(hdrs.get("retry-after", "0")) > 0,
         "the sixth: 429 with Retry-After", (st, hdrs, body))
    t.ok(bt.is_error(br.get("/api/devices", viewer), 429), "then even a good token waits out the window")


def main():
    t = kt.Tap()
    with bt.bridge_env(DEVICES, targets=TARGETS) as (env, br):
        env.wait_for(lambda: len(env.objects()) >= 3 + 3, 20, "the devices are known")
        for path in list(env.objects()):
            env.wait_polled(path)
        viewer = bt.create_token(env, "viewer", "viewer")[1]
        operator = bt.create_token(env, "operator", "operator")[1]
        admin = bt.create_token(env, "admin", "admin")[1]
        check_reads(t, env, br, viewer)
        sims = env.sim_devices()
        index = 0
        plug, unmetered = kt.mac_id(sims[0]["mac"]), kt.mac_id(sims[2]["mac"])
        check_history(t, env, br, viewer, plug, unmetered)
        check_switching(t, env, br, viewer, operator, admin, plug, index)
        check_add_remove(t, env, br, viewer, operator)
        check_revoked(t, env, br, plug)
        check_one_binding(t, env, br, viewer)
        check_absent(t, env, br, viewer)
        check_many_clients(t, env, br)
        check_rate_limit(t, br, viewer)
        t.eq(br.stop(), 0, "the bridge exits with 0 on SIGTERM")
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
