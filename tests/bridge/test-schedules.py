#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""/api/schedules on the plain bus harness, where kasamond has no systemd
as its service manager: the list is empty and readable with a viewer
token; adding or enabling is refused with 409 no_service_manager and the
daemon's message, and nothing is stored; each route asks for its role;
malformed bodies get 400 before the daemon is asked, unknown schedules
404. Schedules that work, under a real systemd, are in
test-system-bridge.py."""

import sys

import bridgetest as bt
import kasatest as kt

DEVICES = ["hs110@127.0.0.2"]


def main():
    t = kt.Tap()
    with bt.bridge_env(DEVICES) as (env, br):
        env.wait_for(lambda: len(env.objects()) >= 1, 20, "the plug is known")
        plug = kt.mac_id(env.sim_devices()[0]["mac"])
        viewer = bt.create_token(env, "viewer", "viewer")[1]
        operator = bt.create_token(env, "operator", "operator")[1]
        daily = {"devices": [plug], "action": "off", "when": "Mon..Fri 07:00"}

        t.ok(bt.is_error(br.get("/api/schedules"), 401), "GET /api/schedules without a token: 401")
        st, _, body = br.get("/api/schedules", viewer)
        t.ok(st == 200 and body == [], "GET /api/schedules as viewer: none", (st, body))
        t.ok(bt.is_error(br.post("/api/schedules", viewer, daily), 403), "POST /api/schedules as viewer: 403")
        got = br.post("/api/schedules", operator, daily)
        t.ok(bt.is_error(got, 409, "no_service_manager") and "systemd" in got[2]["message"],
             "POST as operator without systemd: 409 no_service_manager with kasamond's message", got)
        err = env.call_error(kt.MANAGER_PATH, kt.MANAGER_IFACE, "AddSchedule", "asssa{sv}",
                             ([plug], "off", "Mon..Fri 07:00", {}))
        t.ok(err and err[1].endswith(": " + got[2].get("message", "-")), "the message is AddSchedule's own",
             (got, err))
        t.eq(br.get("/api/schedules", viewer)[2], [], "and nothing is stored")
        t.eq([p for p in env.objects() if "/schedule/" in p], [], "no Schedule object appears")

        bad = [
            ({}, "an empty body"),
            ({"devices": plug, "action": "on", "when": "daily"}, "devices not a list"),
            ({"devices": [], "action": "on", "when": "daily"}, "no devices"),
            ({"devices": ["bad!"], "action": "on", "when": "daily"}, "a malformed device id"),
            ({"devices": [plug], "when": "daily"}, "no action"),
            ({"devices": [plug], "action": "on"}, "no when"),
            (dict(daily, offset="soon"), "an offset that is not a number"),
            (dict(daily, offset=90000), "an offset past 12 hours"),
            (dict(daily, randomized_delay=-1), "a negative delay"),
            (dict(daily, persistent="yes"), "persistent not a boolean"),
            (dict(daily, valid_from="later"), "a malformed valid_from"),
            (dict(daily, colour="red"), "an unknown field"),
        ]
        for body, why in bad:
            t.ok(bt.is_error(br.post("/api/schedules", operator, body), 400, "bad_request"), f"POST with {why}: 400")
        t.ok(bt.is_error(br.request("POST", "/api/schedules", operator, raw=b"{nope",
                                    headers={"Content-Type": "application/json"}), 400), "a body that is not JSON: 400")

        t.ok(bt.is_error(br.get("/api/schedules/7", viewer), 404, "not_found"), "GET an unknown schedule: 404")
        t.ok(bt.is_error(br.request("PATCH", "/api/schedules/7", operator, {"enabled": True}), 404),
             "PATCH an unknown schedule: 404")
        t.ok(bt.is_error(br.request("PATCH", "/api/schedules/7", viewer, {"enabled": True}), 403),
             "PATCH as viewer: 403")
        t.ok(bt.is_error(br.request("PATCH", "/api/schedules/7", operator, {"when": "daily"}), 400),
             "PATCH anything but enabled: 400")
        t.ok(bt.is_error(br.request("PATCH", "/api/schedules/7", operator, {"enabled": "yes"}), 400),
             "PATCH enabled not a boolean: 400")
        t.ok(bt.is_error(br.request("DELETE", "/api/schedules/7", viewer), 403), "DELETE as viewer: 403")
        t.ok(bt.is_error(br.request("DELETE", "/api/schedules/7", operator), 404), "DELETE an unknown schedule: 404")
        t.ok(bt.is_error(br.get("/api/schedules/a.b", viewer), 400), "a malformed id: 400")
        t.ok(bt.is_error(br.request("PUT", "/api/schedules/7", operator, {"enabled": True}), 405), "PUT: 405")
        t.eq(br.stop(), 0, "the bridge exits with 0 on SIGTERM")
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
