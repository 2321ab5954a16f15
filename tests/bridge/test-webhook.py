#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The bridge's webhook (--webhook=) against an HTTP receiver of the test's
own on 127.0.0.1 in the test's network namespace: a firing alert arrives
as a POST of the expected JSON, and its resolution; a receiver that fails
twice gets it at the third attempt; a receiver that never answers is given
up on at the timeout and tried again, while the bridge's REST API and
WebSocket answer meanwhile; a chunked answer is fine; a redirect to
another host is not followed, one to the same host is; a kasamond restart
posts no open alert again; past --webhook-queue= the oldest waiting events
are dropped and that is logged once; https with --webhook-ca= (and the
URL from --webhook-file=) is delivered, and refused without it (a
certificate no CA vouches for); bad webhook options are refused at
start."""

import http.server
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time

import bridgetest as bt
import kasatest as kt

DEVICES = ["hs110@127.0.0.2"]
HOOK_PORT = 8400
OTHER_HOST = "127.0.0.9"
TIMEOUT = 5
SEC = 1000000
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


class Receiver:
    """A threaded HTTP/1.1 server that answers each request with the next
    entry of its plan ("ok" once the plan is empty): "ok", "chunked",
    an HTTP status ("500"), "hang" (no answer until the bridge closes the
    connection), "redirect:LOCATION". It records every request."""

    def __init__(self, host, port, tls=None):
        self.lock = threading.Condition()
        self.requests = []
        self.plan = []
        self.hung = []  # per "hang": None while held, then "closed"
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with outer.lock:
                    action = outer.plan.pop(0) if outer.plan else "ok"
                    outer.requests.append({"path": self.path, "headers": dict(self.headers.items()),
                                           "body": body, "action": action, "host": host})
                    outer.lock.notify_all()
                if action == "hang":
                    with outer.lock:
                        i = len(outer.hung)
                        outer.hung.append(None)
                        outer.lock.notify_all()
                    self.connection.settimeout(120)
                    try:
                        while self.connection.recv(1):
                            pass
                    except OSError:
                        pass
                    with outer.lock:
                        outer.hung[i] = "closed"
                        outer.lock.notify_all()
                    self.close_connection = True
                    return
                if action.startswith("redirect:"):
                    self.send_response(307)
                    self.send_header("Location", action.split(":", 1)[1])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif action == "chunked":
                    self.send_response(200)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.wfile.write(b"5\r\nthank\r\n3\r\nyou\r\n0\r\n\r\n")
                elif action == "ok":
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                else:
                    self.send_response(int(action))
                    self.send_header("Content-Length", "0")
                    self.end_headers()

        self.server = http.server.ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def count(self):
        with self.lock:
            return len(self.requests)

    def wait(self, n, timeout, env):
        """The first n requests, once they came (the timeout only guards
        against a hang); the bus is served meanwhile."""
        env.wait_for(lambda: self.count() >= n, timeout, f"{n} requests at the receiver")
        with self.lock:
            return list(self.requests[:n])

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def add_rule(env, name, device, threshold):
    return env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "AddAlertRule", "sssdttas",
                    (name, "power-above", device, float(threshold), 0, 0, []))[0]


def open_alerts(env):
    return json.loads(env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "ListAlerts")[0])


def metric(br, token, name, **labels):
    st, _, text = br.get("/metrics", token)
    want = "" if not labels else "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
    m = re.search(rf"^{re.escape(name + want)} (\S+)$", text if st == 200 else "", re.M)
    return float(m.group(1)) if m else None


def body(req):
    try:
        return json.loads(req["body"])
    except ValueError:
        return None


def refused(t):
    """Bad options end the bridge at once, saying why."""
    src = kt.source_dir()
    for args, why in (([f"--webhook=ftp://127.0.0.1/x"], "http:// or https://"),
                      (["--webhook=http://user:pw@127.0.0.1/x"], "user or password"),
                      (["--webhook=http://127.0.0.1/", "--webhook-timeout=0"], "--webhook-timeout="),
                      (["--webhook-ca=/nonexistent"], "needs --webhook="),
                      (["--webhook-file=/nonexistent"], "Failed to read the webhook's URL")):
        p = subprocess.run([bt.bridge_binary(), f"--openapi={os.path.join(src, 'bridge', 'openapi.json')}", *args],
                           capture_output=True, text=True, timeout=30)
        t.ok(p.returncode == 1 and why in p.stderr, f"{' '.join(args)}: refused ({why})", p.stderr)


def main():
    t = kt.Tap()
    refused(t)
    recv = Receiver("127.0.0.1", HOOK_PORT)
    other = Receiver(OTHER_HOST, HOOK_PORT)
    args = [f"--webhook=http://127.0.0.1:{HOOK_PORT}/hook/s3cret?x=1", f"--webhook-timeout={TIMEOUT}",
            "--webhook-retries=3", "--webhook-queue=2"]
    try:
        with bt.bridge_env(DEVICES, bridge_args=args) as (env, br):
            run(t, env, br, recv, other)
    finally:
        recv.close()
        other.close()
    return t.close()


def set_load(env, watts):
    env.sim(cmd="set", device=0, load_w=float(watts))


def run(t, env, br, recv, other):
    env.wait_for(lambda: env.objects(), 20, "the plug is known")
    plug = kt.mac_id(env.sim_devices()[0]["mac"])
    plug_path = env.device_path(plug)
    env.call(plug_path, kt.DEVICE_IFACE, "Rename", "s", ("Heater",))
    set_load(env, 10)
    env.wait_polled(plug_path)
    viewer = bt.create_token(env, "viewer", "viewer")[1]
    log = br.log()
    t.ok("port 8400" in log and "s3cret" not in log, "the bridge says where alerts go, without the URL's path", log)

    # ---- a firing alert, and its resolution ----
    hot = add_rule(env, "hot", plug, 100)
    set_load(env, 500)
    fired = recv.wait(1, 30, env)[0]
    alert = next((a for a in open_alerts(env) if a["rule"] == hot), None)
    t.ok(alert is not None, "the rule fired", open_alerts(env))
    t.eq((fired["path"], fired["headers"].get("Content-Type"), fired["headers"].get("X-Kasamond-Event")),
         ("/hook/s3cret?x=1", "application/json", "fired"), "a POST to the URL, JSON, X-Kasamond-Event: fired")
    b = body(fired)
    want = dict(alert or {}, alias="Heater")
    t.eq((b or {}).get("alert"), want, "its alert is the one ListAlerts has")
    t.eq(((b or {}).get("event"), RFC3339.match((b or {}).get("time", "")) is not None), ("fired", True),
         "event fired, time in RFC 3339")
    t.eq(sorted(b or {}), ["alert", "event", "time"], "and nothing else")
    t.ok(fired["headers"].get("User-Agent", "").startswith("kasamond-bridge/"), "User-Agent: kasamond-bridge",
         fired["headers"])

    set_load(env, 10)
    resolved = recv.wait(2, 30, env)[1]
    b = body(resolved) or {}
    t.eq((b.get("event"), resolved["headers"].get("X-Kasamond-Event"), b.get("alert", {}).get("id"),
          b.get("alert", {}).get("state")), ("resolved", "resolved", alert["id"], "resolved"),
         "the resolution: event resolved, the same alert, state resolved")
    t.eq(metric(br, viewer, "kasa_bridge_webhook_events_total", result="delivered"), 2.0, "2 events delivered")

    # ---- a receiver that fails twice ----
    with recv.lock:
        recv.plan = ["500", "503", "ok"]
    set_load(env, 500)
    got = recv.wait(5, 60, env)
    t.eq([r["action"] for r in got[2:]], ["500", "503", "ok"], "failed twice, then taken at the third attempt")
    t.ok(got[2]["body"] == got[3]["body"] == got[4]["body"] and (body(got[4]) or {}).get("event") == "fired",
         "the same firing each time")
    env.wait_for(lambda: metric(br, viewer, "kasa_bridge_webhook_events_total", result="delivered") == 3.0, 10,
                 "the delivery counted")
    t.eq(metric(br, viewer, "kasa_bridge_webhook_events_total", result="failed"), 0.0, "nothing failed for good")
    t.ok("HTTP 500" in br.log() and "at attempt 3" in br.log(), "the log says why and when it got through",
         br.log())

    # ---- a receiver that never answers ----
    with recv.lock:
        recv.plan = ["hang", "chunked"]
    set_load(env, 10)
    env.wait_for(lambda: recv.hung, 30, "the receiver holds the resolution's POST")
    st, _, devs = br.get("/api/devices", viewer)
    ws = bt.WsClient(br.port, f"/ws?token={viewer}")
    hello = ws.message()
    ws.close()
    with recv.lock:
        still = recv.hung[0] is None
    t.ok(st == 200 and len(devs) == 1 and hello.get("type") == "hello" and still,
         "while the receiver holds it, the REST API and the WebSocket answer", (st, still))
    env.wait_for(lambda: recv.hung[0] == "closed", 60, "the bridge gives up the attempt")
    t.ok(True, "the bridge closes the connection it got no answer on")
    got = recv.wait(7, 60, env)
    t.ok(got[6]["body"] == got[5]["body"] and got[6]["action"] == "chunked",
         "and tries again: a chunked answer is taken", [g["action"] for g in got])
    t.ok(f"no answer within {TIMEOUT} s" in br.log(), "the log says it timed out", br.log())
    env.wait_for(lambda: metric(br, viewer, "kasa_bridge_webhook_events_total", result="delivered") == 4.0, 10,
                 "delivered")

    # ---- redirects ----
    with recv.lock:
        recv.plan = [f"redirect:http://{OTHER_HOST}:{HOOK_PORT}/stolen"]
    set_load(env, 500)
    recv.wait(8, 30, env)
    env.wait_for(lambda: metric(br, viewer, "kasa_bridge_webhook_events_total", result="failed") == 1.0, 20,
                 "the event counted as failed")
    t.eq(other.count(), 0, "a redirect to another host is not followed")
    t.ok("refusing the redirect" in br.log(), "and the log says so", br.log())
    with recv.lock:
        recv.plan = ["redirect:/hook/moved"]
    set_load(env, 10)
    got = recv.wait(10, 30, env)
    t.eq((got[9]["path"], got[9]["body"] == got[8]["body"]), ("/hook/moved", True),
         "a redirect to the same host is followed with the same POST")

    # ---- kasamond restarts with an alert open ----
    set_load(env, 500)
    recv.wait(11, 30, env)
    open_before = open_alerts(env)
    env.stop_daemon()
    env.start_daemon()
    env.wait_for(lambda: br.log().count("is on the bus with") == 2, 30, "the bridge read kasamond again")
    env.wait_polled(plug_path, polls=2)
    t.eq([a["id"] for a in open_alerts(env)], [a["id"] for a in open_before], "the alert is still open")
    t.eq(recv.count(), 11, "a kasamond restart posts no open alert again")
    set_load(env, 10)
    got = recv.wait(12, 30, env)
    t.eq(((body(got[11]) or {}).get("event"), (body(got[11]) or {}).get("alert", {}).get("id")),
         ("resolved", open_before[0]["id"] if open_before else None), "its resolution after the restart is posted")

    # ---- the queue's bound ----
    extra = [add_rule(env, f"hot{i}", plug, w) for i, w in enumerate((200, 300, 400))]
    with recv.lock:
        recv.plan = ["hang"]
    set_load(env, 1000)  # 4 alerts fire: one is held, 3 wait behind it, 1 fits
    env.wait_for(lambda: len(open_alerts(env)) == 4, 30, "four alerts open")
    env.wait_for(lambda: metric(br, viewer, "kasa_bridge_webhook_events_total", result="dropped") == 2.0, 30,
                 "the queue full")
    t.ok(True, "--webhook-queue=2: the two oldest waiting events are dropped")
    got = recv.wait(14, 60, env)
    ids = [(body(g) or {}).get("alert", {}).get("id") for g in got[12:14]]
    newest = max(a["id"] for a in open_alerts(env))
    t.ok(ids[0] == ids[1] and ids[0] != newest, "the one held is tried again", ids)
    got = recv.wait(15, 60, env)
    t.eq((body(got[14]) or {}).get("alert", {}).get("id"), newest, "then the newest, which waited")
    t.eq(br.log().count("dropping the oldest waiting"), 1, "the drops are logged once")
    env.wait_for(lambda: metric(br, viewer, "kasa_bridge_webhook_queue") == 0.0, 30, "the queue empty")
    # One at a time, so that no resolution is dropped.
    for n, rule in enumerate(extra):
        env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "RemoveAlertRule", "u", (rule,))
        got = recv.wait(16 + n, 30, env)
        t.eq((body(got[-1]) or {}).get("event"), "resolved", f"removing rule {rule} resolves its alert: posted")
    set_load(env, 10)
    recv.wait(19, 30, env)
    t.eq(metric(br, viewer, "kasa_bridge_webhook_events_total", result="dropped"), 2.0, "no more dropped")

    tls(t, env, br)

    # Stopped with an event held by the receiver: the attempt is ended.
    with recv.lock:
        recv.plan = ["hang"]
        held = len(recv.hung)
    set_load(env, 10)
    env.wait_for(lambda: len(recv.hung) > held, 30, "the receiver holds the resolution")
    t.eq(br.stop(), 0, "the bridge exits with 0 on SIGTERM while a POST is held")
    t.ok("1 alert events not delivered at exit" in br.log(), "and says what it did not deliver", br.log())


def bt_up(br, token):
    st, _, _ = br.get("/api/health", token)
    return st == 200


def tls(t, env, br):
    """https: a second and a third bridge, with and without the CA."""
    key, cert = os.path.join(env.tmp, "hook.key"), os.path.join(env.tmp, "hook.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    os.chmod(cert, 0o644)
    secure = Receiver("127.0.0.1", HOOK_PORT + 1, tls=(cert, key))
    bridges = []
    try:
        url = f"https://127.0.0.1:{HOOK_PORT + 1}/tls"
        url_file = os.path.join(env.tmp, "webhook.url")
        with open(url_file, "w") as f:
            f.write(url + "\n")
        os.chmod(url_file, 0o644)
        for port, extra in ((bt.PORT + 1, [f"--webhook-file={url_file}", f"--webhook-ca={cert}"]),
                            (bt.PORT + 2, [f"--webhook={url}"])):
            main = env.procs.pop("kasamond-bridge")
            b = bt.Bridge(env, br.user, ["--webhook-retries=0", *extra], port=port)
            env.procs[f"kasamond-bridge-{port}"] = env.procs.pop("kasamond-bridge")
            env.procs["kasamond-bridge"] = main
            bridges.append(b)
        viewer = bt.create_token(env, "tls", "viewer")[1]
        env.wait_for(lambda: all(bt_up(b, viewer) for b in bridges), 30, "both bridges see kasamond")
        set_load(env, 1000)
        got = secure.wait(1, 60, env)
        t.eq((got[0]["path"], (body(got[0]) or {}).get("event")), ("/tls", "fired"),
             "https with --webhook-ca=, the URL from --webhook-file=: the firing delivered")
        env.wait_for(lambda: metric(bridges[1], viewer, "kasa_bridge_webhook_events_total", result="failed") == 1.0,
                     60, "the bridge without the CA gives up")
        t.eq(metric(bridges[1], viewer, "kasa_bridge_webhook_events_total", result="delivered"), 0.0,
             "without it, a certificate no trusted CA signed is refused: nothing delivered")
        t.eq(secure.count(), 1, "and nothing reached the receiver from it")
        t.ok(re.search(r"alert \d+'s fired event after 1 attempts: .*(certificate|TLS)", br.log(), re.I),
             "the log says why", br.log())
    finally:
        for b in bridges:
            p = env.procs.pop(f"kasamond-bridge-{b.port}", None)
            if p:
                p.terminate()
                p.wait(30)
        secure.close()


if __name__ == "__main__":
    sys.exit(main())
