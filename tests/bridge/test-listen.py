#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Where and how the bridge listens: loopback by default; an address beyond
it refused without TLS unless --insecure; HTTPS with a certificate; a
socket passed by systemd (systemd-socket-activate), and such a socket
beyond loopback refused too; malformed options refused; CORS off unless
--cors-origin names the origin."""

import http.client
import os
import socket
import ssl
import subprocess
import sys
import time

import bridgetest as bt
import kasatest as kt

DEVICES = ["hs110@127.0.0.2"]


def start(env, args, name, cmd=None):
    log = open(os.path.join(env.tmp, f"{name}.log"), "w")
    src = kt.source_dir()
    # systemd-socket-activate passes no environment of its own accord.
    cmd = cmd and cmd + ["-E", f"DBUS_SYSTEM_BUS_ADDRESS={env.address}"]
    argv = (cmd or []) + [bt.bridge_binary(), f"--openapi={os.path.join(src, 'bridge', 'openapi.json')}", *args]
    p = subprocess.Popen(argv, env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=env.address),
                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    env.procs[name] = p
    return p


def stop(env, name):
    p = env.procs.pop(name)
    if p.poll() is None:
        p.terminate()
    return p.wait(30)


def log_of(env, name):
    with open(os.path.join(env.tmp, f"{name}.log")) as f:
        return f.read()


def listening(port, host="127.0.0.1"):
    try:
        socket.create_connection((host, port), 1).close()
        return True
    except OSError:
        return False


def get(port, path="/api/openapi.json", headers=None, method="GET", tls=False):
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c = http.client.HTTPSConnection("127.0.0.1", port, timeout=20, context=ctx)
    else:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}
    finally:
        c.close()


def main():
    t = kt.Tap()
    with kt.Env(DEVICES) as env:
        p = start(env, ["--listen=0.0.0.0:8340"], "open")
        rc = p.wait(20)
        t.ok(rc != 0 and "without TLS" in log_of(env, "open"), "0.0.0.0 without TLS: refused", log_of(env, "open"))
        env.procs.pop("open")

        start(env, ["--listen=0.0.0.0:8340", "--insecure"], "insecure")
        env.wait_for(lambda: listening(8340), 20, "the bridge listens with --insecure")
        t.eq(get(8340)[0], 200, "0.0.0.0 with --insecure: served")
        t.eq(stop(env, "insecure"), 0, "and it exits with 0")

        p = start(env, ["--listen=127.0.0.1:8341", "--tls-cert=/nonexistent"], "halfcert")
        t.ok(p.wait(20) != 0, "--tls-cert without --tls-key: refused", log_of(env, "halfcert"))
        env.procs.pop("halfcert")
        for bad in ("127.0.0.1", "localhost:8341", "127.0.0.1:0", "127.0.0.1:99999", "[::1:8341"):
            p = start(env, [f"--listen={bad}"], "bad")
            t.ok(p.wait(20) != 0, f"--listen={bad}: refused", log_of(env, "bad"))
            env.procs.pop("bad")

        cert, key = os.path.join(env.tmp, "cert.pem"), os.path.join(env.tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "1", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
        start(env, ["--listen=0.0.0.0:8341", f"--tls-cert={cert}", f"--tls-key={key}"], "tls")
        env.wait_for(lambda: listening(8341), 20, "the bridge listens with TLS")
        t.eq(get(8341, tls=True)[0], 200, "0.0.0.0 with a certificate: HTTPS served")
        try:
            plain = get(8341)[0]
        except (OSError, http.client.HTTPException):
            plain = None
        t.ok(plain != 200, "and plain HTTP there is not", plain)
        t.eq(stop(env, "tls"), 0, "it exits with 0")

        start(env, [], "activated", cmd=["systemd-socket-activate", "-l", "127.0.0.1:8342"])
        env.wait_for(lambda: listening(8342), 20, "systemd-socket-activate listens")
        t.eq(get(8342)[0], 200, "a socket passed by systemd on loopback: served")
        t.eq(stop(env, "activated"), 0, "it exits with 0")
        p = start(env, [], "activated-open", cmd=["systemd-socket-activate", "-l", "0.0.0.0:8343"])
        env.wait_for(lambda: listening(8343), 20, "systemd-socket-activate listens")
        try:
            got = get(8343)[0]
        except (OSError, http.client.HTTPException):
            got = None
        rc = p.wait(20)
        t.ok(got is None and rc != 0 and "without TLS" in log_of(env, "activated-open"),
             "a socket passed by systemd beyond loopback, without TLS: refused", (got, rc, log_of(env, "activated-open")))
        env.procs.pop("activated-open")
        p = start(env, ["--listen=127.0.0.1:8344"], "both", cmd=["systemd-socket-activate", "-l", "127.0.0.1:8345"])
        env.wait_for(lambda: listening(8345), 20, "systemd-socket-activate listens")
        try:
            socket.create_connection(("127.0.0.1", 8345), 2).close()
        except OSError:
            pass
        t.ok(p.wait(20) != 0, "--listen= with a socket from systemd: refused", log_of(env, "both"))
        env.procs.pop("both")

        start(env, ["--listen=127.0.0.1:8346"], "nocors")
        env.wait_for(lambda: listening(8346), 20, "the bridge listens")
        st, h = get(8346, headers={"Origin": "http://evil.example"})
        t.ok(st == 200 and "access-control-allow-origin" not in h, "CORS off by default: no header", h)
        st, h = get(8346, method="OPTIONS", headers={"Origin": "http://evil.example",
                                                     "Access-Control-Request-Method": "POST"})
        t.ok("access-control-allow-origin" not in h, "nor for a preflight", (st, h))
        t.eq(stop(env, "nocors"), 0, "it exits with 0")
        start(env, ["--listen=127.0.0.1:8347", "--cors-origin=http://grafana.example"], "cors")
        env.wait_for(lambda: listening(8347), 20, "the bridge listens")
        st, h = get(8347, headers={"Origin": "http://grafana.example"})
        t.ok(st == 200 and h.get("access-control-allow-origin") == "http://grafana.example",
             "--cors-origin: the header for that origin", h)
        st, h = get(8347, headers={"Origin": "http://evil.example"})
        t.ok("access-control-allow-origin" not in h, "and not for another", h)
        st, h = get(8347, method="OPTIONS", headers={"Origin": "http://grafana.example",
                                                     "Access-Control-Request-Method": "POST"})
        t.ok(st == 204 and "POST" in h.get("access-control-allow-methods", "") and
             h.get("access-control-allow-origin") == "http://grafana.example", "a preflight: 204 with the methods",
             (st, h))
        t.eq(stop(env, "cors"), 0, "it exits with 0")
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
