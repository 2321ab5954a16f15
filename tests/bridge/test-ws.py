#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The WebSocket /ws: the token (header or query) and a revoked one
closing it, the hello snapshot, a
kasa-sim load change seen in the update of the first poll that sees it,
subscriptions, ping/pong (JSON and protocol frames), devices added and
removed, protocol errors closing with 1002, and a client that never reads
dropped once its queue is full, with the bridge's memory bounded; alerts
in the hello, fired, acknowledged and resolved, and in the daemon
messages of a kasamond restart."""

import json
import re
import socket
import subprocess
import sys
import time

import bridgetest as bt
import kasatest as kt

DEVICES = ["hs110@127.0.0.2", "kp115@127.0.0.3", "hs100@127.0.0.4"]
POLL = 1.0
QUEUE = 65536


def metric(br, token, name):
    st, _, text = br.get("/metrics", token)
    m = re.search(rf"^{name} (\S+)$", text if st == 200 else "", re.M)
    return float(m.group(1)) if m else None


def open_alerts(env):
    return json.loads(env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "ListAlerts")[0])


def alerts(t, env, br, ws, hello, viewer, plug2, plain):
    """Alerts on the stream: in the hello, fired, acknowledged, resolved;
    a client subscribed to another device gets none of them. Leaves one
    open."""
    t.eq(hello.get("alerts"), [], "the hello lists no alert while none is open")
    other = bt.WsClient(br.port, f"/ws?token={viewer}&devices={plain}")
    other.message()
    env.sim(cmd="set", device=1, load_w=10.0)
    env.wait_polled(env.device_path(plug2))
    env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "AddAlertRule", "sssdttas",
             ("ws-hot", "power-above", plug2, 100.0, 0, 0, []))
    env.sim(cmd="set", device=1, load_w=800.0)
    m = ws.wait_for(lambda m: m.get("type") == "alert", 30)
    listed = open_alerts(env)
    t.eq((m.get("event"), [m.get("alert")]), ("fired", listed),
         "an alert fires: an alert message, event fired, the alert as ListAlerts has it")
    late = bt.WsClient(br.port, f"/ws?token={viewer}")
    t.eq(late.message().get("alerts"), listed, "a client that connects now has it in its hello")
    late.close()
    env.call(listed[0]["path"], "org.kasamond.Kasa1.Alert", "Acknowledge")
    m = ws.wait_for(lambda m: m.get("type") == "alert", 10)
    t.eq((m.get("event"), m["alert"]["id"], m["alert"]["state"]), ("acknowledged", listed[0]["id"], "acknowledged"),
         "Acknowledge(): event acknowledged")
    env.sim(cmd="set", device=1, load_w=10.0)
    m = ws.wait_for(lambda m: m.get("type") == "alert", 30)
    t.eq((m.get("event"), m["alert"]["id"], m["alert"]["state"]), ("resolved", listed[0]["id"], "resolved"),
         "the load back under: event resolved")
    other.send({"type": "ping"})
    seen = []
    other.wait_for(lambda m: seen.append(m) or m.get("type") == "pong", 10)
    t.eq([m for m in seen if m.get("type") == "alert"], [], "a client subscribed to another device got none")
    other.close()
    env.sim(cmd="set", device=1, load_w=800.0)
    m = ws.wait_for(lambda m: m.get("type") == "alert", 30)
    t.eq(m.get("event"), "fired", "it fires again")
    t.eq(metric(br, viewer, "kasa_bridge_alerts_open"), 1.0, "kasa_bridge_alerts_open counts it")


def send_queue(port, peer):
    """Bytes the kernel holds unsent on the bridge's side of a connection."""
    out = subprocess.run(["ss", "-tnH", "state", "established", f"( sport = :{port} and dport = :{peer} )"],
                         capture_output=True, text=True).stdout.split()
    return int(out[1]) if len(out) >= 2 else None


def check_close_unread(t, env, br, viewer):
    """A client whose token is revoked while it reads nothing: the close
    frame waits behind what it did not read, and the client is dropped
    after the close timeout instead of keeping its slot."""
    tid, token = bt.create_token(env, "unread", "viewer")
    c = bt.WsClient(br.port, f"/ws?token={token}", rcvbuf=4096)
    peer = c.sock.getsockname()[1]
    # Fill the kernel's buffers first (the bridge's send queue stops
    # growing), then put a little in the bridge's own queue, far below
    # its bound.
    last, still = -1, 0
    for _ in range(400):
        c.send({"type": "subscribe", "devices": "*"})
        time.sleep(0.05)
        q = send_queue(br.port, peer)
        still = still + 1 if q and q == last else 0
        last = q
        if still >= 3:
            break
    t.ok(still >= 3 and last, "the kernel's send queue to a client that reads nothing is full", last)
    # Then two rounds of some 15 kB: the kernel takes one write while it
    # has any room (into one large buffer), so the first fills it past
    # its limit and the second stays in the bridge's queue (under its
    # 64 KiB bound).
    for _ in range(2):
        for _ in range(10):
            c.send({"type": "subscribe", "devices": "*"})
        time.sleep(0.5)
    t.eq(metric(br, viewer, "kasa_bridge_ws_clients"), 1.0, "the client is still connected")
    env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "RevokeToken", "s", (tid,))
    kt.eventually(t, env, lambda: metric(br, viewer, "kasa_bridge_ws_clients") == 0.0, 20,
                  "revoked: it is dropped once its close frame waited too long, though it never read it")
    t.eq(metric(br, viewer, "kasa_bridge_ws_dropped_total"), 1.0, "not counted as dropped for its queue")
    c.close()


def main():
    t = kt.Tap()
    # The test's own network namespace: small TCP send buffers for the
    # sockets the bridge accepts (they take the listener's), so that what
    # a client does not read stays in the bridge's queue, not megabytes of
    # the kernel's.
    with open("/proc/sys/net/ipv4/tcp_wmem", "w") as f:
        f.write("4096 4096 4096")
    with bt.bridge_env(DEVICES, poll_interval=POLL, bridge_args=[f"--ws-queue={QUEUE}"]) as (env, br):
        env.wait_for(lambda: len(env.objects()) >= 3, 20, "the devices are known")
        for path in list(env.objects()):
            env.wait_polled(path)
        sims = env.sim_devices()
        plug, plug2, plain = (kt.mac_id(s["mac"]) for s in sims)
        viewer = bt.create_token(env, "viewer", "viewer")[1]

        ws = bt.WsClient(br.port, "/ws")
        t.ok(ws.status == 401, "/ws without a token: 401", ws.head)
        ws.close()
        ws = bt.WsClient(br.port, "/ws?token=kasa_nope")
        t.ok(ws.status == 401, "/ws with a wrong token: 401", ws.head)
        ws.close()
        ws = bt.WsClient(br.port, "/ws", headers={"Authorization": f"Bearer {viewer}"})
        t.ok(ws.status == 101 and ws.accept_ok, "/ws with Authorization: 101 with the right Sec-WebSocket-Accept",
             ws.head)
        ws.close()

        ws = bt.WsClient(br.port, f"/ws?token={viewer}")
        t.ok(ws.status == 101 and ws.accept_ok, "/ws?token=: 101", ws.head)
        hello = ws.message()
        t.ok(hello.get("type") == "hello" and hello.get("up") is True and
             sorted(d["id"] for d in hello["devices"]) == sorted((plug, plug2, plain)),
             "first a hello with every device", hello)

        # A load change: the first poll that answers after it announces it.
        t_change = int(time.time() * 1e6)
        env.sim(cmd="set", device=0, load_w=1234.0)
        seen = []

        def changed(m):
            if m.get("type") == "update" and m["id"] == plug and m["device"]["last_seen"] > t_change:
                seen.append(m)
                return abs((m["device"]["meter"]["power"] or 0) - 1234.0) < 1234.0 * 0.05
            return False
        try:
            m = ws.wait_for(changed, 15)
            polls = sorted({s["device"]["last_seen"] for s in seen})
            t.ok(len(polls) <= 2 and "readings" in m["changed"],
                 "a load change comes with the update of the first poll after it", [s["device"] for s in seen])
        except TimeoutError:
            t.ok(False, "a load change comes with the update of the first poll after it", seen)

        ws.send({"type": "ping"})
        t.ok(ws.wait_for(lambda m: m.get("type") == "pong", 10) is not None, "a JSON ping gets a pong")
        ws.send(b"probe", opcode=9)
        pong = None
        end = time.monotonic() + 10
        while time.monotonic() < end:
            op, payload = ws.frame(10)
            if op == 10:
                pong = payload
                break
        t.eq(pong, b"probe", "a protocol ping gets a pong with its payload")

        ws.send({"type": "subscribe", "devices": [plug2]})
        hello = ws.wait_for(lambda m: m.get("type") == "hello", 10)
        t.ok([d["id"] for d in hello["devices"]] == [plug2], "subscribe: a hello with only that device", hello)
        ids = set()
        end = time.monotonic() + 3 * POLL
        while time.monotonic() < end:
            try:
                m = ws.message(max(0.1, end - time.monotonic()))
            except socket.timeout:
                break
            if m.get("type") == "update":
                ids.add(m["id"])
        t.ok(ids == {plug2}, "then updates of that device only", ids)
        ws.send({"type": "subscribe", "devices": ["bad id"]})
        err = ws.wait_for(lambda m: m.get("type") == "error", 10)
        t.ok("devices" in err.get("message", ""), "subscribe with a malformed id: an error message", err)
        ws.send("not json")
        t.ok(ws.wait_for(lambda m: m.get("type") == "error", 10) is not None, "a text that is not JSON: an error")
        ws.send({"type": "subscribe", "devices": "*"})
        hello = ws.wait_for(lambda m: m.get("type") == "hello", 10)

        strip_path = env.device_path(plug)
        env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "RemoveDevice", "o", (strip_path,))
        m = ws.wait_for(lambda m: m.get("type") == "removed", 10)
        t.eq(m.get("id"), plug, "RemoveDevice: a removed message")
        env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "AddDevice", "s", ("127.0.0.2",))
        m = ws.wait_for(lambda m: m.get("type") == "added", 10)
        t.ok(m.get("id") == plug and m["device"]["id"] == plug, "AddDevice: an added message with the device", m)

        # RFC 6455: clients mask their frames; an unmasked one ends it.
        ws.sock.sendall(bytes([0x81, 0x02]) + b"{}")
        t.eq(ws.close_code(10), 1002, "an unmasked frame: close 1002")
        ws.close()

        # A client that never reads: it asks for snapshots and reads none.
        t.eq(metric(br, viewer, "kasa_bridge_ws_dropped_total"), 0.0, "no client dropped yet")
        rss_before = br.rss_kib()
        lazy = bt.WsClient(br.port, f"/ws?token={viewer}", rcvbuf=4096)
        t.ok(lazy.status == 101, "a client that will not read connects", lazy.head)
        asked = 0
        try:
            for asked in range(1, 20001):
                lazy.send({"type": "subscribe", "devices": "*"})
                if asked % 500 == 0 and metric(br, viewer, "kasa_bridge_ws_dropped_total"):
                    break
        except OSError:
            pass
        kt.eventually(t, env, lambda: metric(br, viewer, "kasa_bridge_ws_dropped_total") == 1.0, 30,
                      "the client that never reads is dropped")
        t.eq(metric(br, viewer, "kasa_bridge_ws_clients"), 0.0, "and no client is left")
        grown = br.rss_kib() - rss_before
        hello_bytes = len(json.dumps(hello)) * asked
        t.ok(grown < 8 * 1024, f"the bridge's RSS grew {grown} KiB while {asked} snapshots (~{hello_bytes >> 10} KiB) "
             f"were asked for", grown)
        lazy.close()

        check_close_unread(t, env, br, viewer)

        tid, short = bt.create_token(env, "short-lived", "viewer")
        doomed = bt.WsClient(br.port, f"/ws?token={short}")
        t.ok(doomed.status == 101 and doomed.message().get("type") == "hello", "a client with a second token")
        env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "RevokeToken", "s", (tid,))
        t.eq(doomed.close_code(5), 1008, "its token revoked, its WebSocket is closed with 1008 at once (within 5 s)")
        doomed.close()
        _, brief = bt.create_token(env, "brief", "viewer", int((time.time() + 3) * 1e6))
        doomed = bt.WsClient(br.port, f"/ws?token={brief}")
        t.ok(doomed.status == 101 and doomed.message().get("type") == "hello", "a client with a token expiring in 3 s")
        t.eq(doomed.close_code(8), 1008, "its WebSocket is closed with 1008 at the expiry (within 5 s of it)")
        doomed.close()

        ws = bt.WsClient(br.port, f"/ws?token={viewer}")
        hello = ws.message()
        t.ok(ws.status == 101 and hello.get("type") == "hello", "a new client is served after that")
        alerts(t, env, br, ws, hello, viewer, plug2, plain)
        env.stop_daemon()
        m = ws.wait_for(lambda m: m.get("type") == "daemon", 10)
        t.eq((m.get("up"), m.get("alerts")), (False, []), "kasamond stopping: a daemon message, up false, no alerts")
        env.start_daemon()
        m = ws.wait_for(lambda m: m.get("type") == "daemon", 20)
        t.eq(m.get("up"), True, "and back: up true")
        t.eq([a["id"] for a in m.get("alerts", [])], [a["id"] for a in open_alerts(env)],
             "with the alert still open")
        ws.close()
        t.eq(br.stop(), 0, "the bridge exits with 0 on SIGTERM")
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
