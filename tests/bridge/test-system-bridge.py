#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""kasamond-bridge under a real systemd, installed: tests/system's
namespaces (systemd as PID 1, its own bus and polkitd, the project from
`meson install --destdir`) with kasamond-bridge.socket started; the first
connection starts the service as the user kasamond-bridge from its
sysusers.d file, with its hardening (PrivateNetwork=, AF_UNIX only) and
the socket from systemd; a token made with the installed kasactl reads
and switches through it, so kasamond takes that uid's calls by the token;
/api/schedules makes, lists, disables, enables and removes a schedule,
which is a systemd timer there."""

import importlib.util
import json
import os
import shutil
import signal
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("kasa_system", os.path.join(HERE, "..", "system", "test-system.py"))
ts = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ts)

URL = "http://127.0.0.1:8337"


def check_schedules(t, s, curl, token, plug):
    def timer_state(sid):
        return s.show("ActiveState", f"kasamond-schedule-{sid}.timer")

    code, body = curl("/api/schedules", token, "POST", {"devices": [plug], "action": "off", "when": "Mon..Fri 25:00"})
    t.ok(code == 400 and "Failed to parse calendar specification" in body,
         "POST /api/schedules with an invalid calendar: 400 with systemd's message", (code, body))
    code, body = curl("/api/schedules", token, "POST",
                      {"devices": [plug], "action": "off", "when": "*-*-* 03:00:00", "randomized_delay": 60})
    made = json.loads(body) if code == 201 else {}
    sid = made.get("id")
    t.ok(code == 201 and made.get("enabled") is True and made.get("timer") == f"kasamond-schedule-{sid}.timer"
         and made.get("random_delay_usec") == 60 * 10**6,
         "POST /api/schedules as operator: 201 and its Describe(), a timer armed", (code, body))
    t.eq(timer_state(sid), "active", "systemd has the schedule's timer")
    code, body = curl("/api/schedules", token)
    listed = json.loads(body) if code == 200 else []
    t.ok(len(listed) == 1 and listed[0]["id"] == sid and listed[0]["devices"] == [plug]
         and listed[0]["calendar"] and listed[0]["next_elapse"], "GET /api/schedules lists it", (code, body))
    code, body = curl(f"/api/schedules/{sid}", token, "PATCH", {"enabled": False})
    t.ok(code == 200 and json.loads(body).get("enabled") is False, "PATCH enabled=false: Disable", (code, body))
    t.ok(timer_state(sid) in ("inactive", ""), "and its timer is stopped", timer_state(sid))
    code, body = curl(f"/api/schedules/{sid}", token, "PATCH", {"enabled": True})
    t.ok(code == 200 and json.loads(body).get("enabled") is True, "PATCH enabled=true: Enable", (code, body))
    t.eq(timer_state(sid), "active", "and its timer runs again")
    code, body = curl(f"/api/schedules/{sid}", token, "DELETE")
    t.eq(code, 204, "DELETE /api/schedules/ID: 204")
    t.eq(curl(f"/api/schedules/{sid}", token)[0], 404, "then it is gone")
    t.ok(timer_state(sid) in ("inactive", ""), "and so is its timer", timer_state(sid))


def main():
    if os.geteuid() != 0:
        print("1..1\nnot ok 1 - the system test needs root (namespaces, mounts, cgroups)")
        return 1
    for stale in os.listdir("/tmp"):
        if stale.startswith(ts.TMP_PREFIX) and not ts.pid_alive(stale[len(ts.TMP_PREFIX):].split("-")[0]):
            shutil.rmtree(os.path.join("/tmp", stale), ignore_errors=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    t = ts.Tap()
    try:
        s = ts.System()
    except Exception as e:  # noqa: BLE001 - any set-up failure is the test's failure
        t.ok(False, "systemd boots in the namespaces with the project installed", e)
        return t.close()

    def curl(path, token, method="GET", body=None):
        data = ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)] if body is not None else []
        p = s.run(["curl", "-s", "-m", "20", "-X", method, "-w", "\n%{http_code}", "-H",
                   f"Authorization: Bearer {token}", *data, URL + path])
        body, _, code = p.stdout.rpartition("\n")
        return int(code or 0), body

    try:
        p = s.run(["systemctl", "start", "kasamond-bridge.socket", "kasamond.service"])
        t.ok(p.returncode == 0, "systemctl start kasamond-bridge.socket kasamond.service", p.stdout + p.stderr)
        t.eq(s.show("ActiveState", "kasamond-bridge.service"), "inactive", "the bridge waits for a connection")
        p = s.run([s.installed["kasactl"], "token", "create", "--name=system", "--role=operator"])
        token = p.stdout.strip()
        t.ok(p.returncode == 0 and token.startswith("kasa_"), "the installed kasactl makes a token", p.stderr)
        want = len(ts.SIM_DEVICES)
        try:
            ts.wait_for(lambda: (lambda r: r[0] == 200 and len(json.loads(r[1])) >= want)(curl("/api/devices", token)),
                        60, "the bridge lists the simulated plugs")
            t.ok(True, "GET /api/devices through the socket: the simulated plugs")
        except (TimeoutError, ValueError) as e:
            t.ok(False, "GET /api/devices through the socket: the simulated plugs", f"{e}\n{curl('/api/devices', token)}")
        t.eq(s.show("ActiveState", "kasamond-bridge.service"), "active", "the connection started the service")
        pid = s.show("MainPID", "kasamond-bridge.service")
        p = s.run(["ps", "-o", "user=", "-p", pid])
        t.eq(p.stdout.strip(), "kasamond-bridge", "it runs as the user kasamond-bridge")
        devices = json.loads(curl("/api/devices", token)[1])
        plug = next(d["id"] for d in devices if not d.get("parent") and not d.get("outlets"))
        code, body = curl(f"/api/devices/{plug}/off", token, "POST")
        t.ok(code == 200 and json.loads(body).get("on") is False,
             "POST off with the operator token: kasamond takes the bridge's call by the token", (code, body))
        code, body = curl(f"/api/devices/{plug}/on", token, "POST")
        t.eq(code, 200, "and on again")
        code, body = curl("/metrics", token)
        t.ok(code == 200 and "kasa_power_watts{" in body, "/metrics", (code, body[:300]))
        code, _ = curl("/api/devices", "kasa_wrong")
        t.eq(code, 401, "a wrong token: 401")
        check_schedules(t, s, curl, token, plug)
    finally:
        if t.failed:
            sys.stdout.write("# --- systemd console ---\n# " + s.console_tail().replace("\n", "\n# ") + "\n")
        s.close()
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
