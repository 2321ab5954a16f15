#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""kasa-sim's KLAP devices, checked by a client written from PROTOCOL.md
section 6 alone (python3-cryptography and http.client, nothing from
common/): handshakes v1 and v2, requests and their sequence numbers, the
faults (session expiry, changed credentials, a hanging handshake, a
corrupted signature) and the UDP 20002 discovery answer.

Usage: test-sim-klap.py PATH-TO-KASA-SIM   (run inside tests/netns-run)
Prints TAP.
"""

import hashlib
import http.client
import json
import os
import shutil
import socket
import struct
import sys
import tempfile

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from kasalib import SimControl, Tap, start_sim, stop, tdp_probe  # noqa: E402

PORT = 8080
USER, PASSWORD = "owner@example.com", "s3cret"


def h(name, data):
    return hashlib.new(name, data).digest()


def auth_hash(v, user, password):
    if v == 1:
        return h("md5", h("md5", user.encode()) + h("md5", password.encode()))
    return h("sha256", h("sha1", user.encode()) + h("sha1", password.encode()))


class Klap:
    def __init__(self, addr, version, user=USER, password=PASSWORD):
        self.conn = http.client.HTTPConnection(addr, PORT, timeout=3)
        self.v = version
        self.auth = auth_hash(version, user, password)

    def post(self, path, body, cookie=None):
        headers = {"Content-Type": "application/octet-stream"}
        if cookie:
            headers["Cookie"] = cookie
        self.conn.request("POST", path, body, headers)
        r = self.conn.getresponse()
        return r.status, r.read(), r.getheader("Set-Cookie")

    def handshake(self):
        local = os.urandom(16)
        status, body, cookie = self.post("/app/handshake1", local)
        if status != 200 or len(body) != 48:
            return f"handshake1: {status} {len(body)} bytes"
        remote, server = body[:16], body[16:]
        want = h("sha256", local + self.auth) if self.v == 1 else h("sha256", local + remote + self.auth)
        if server != want:
            return "server hash mismatch"
        self.cookie = cookie.split(";")[0]
        self.timeout = cookie
        client = h("sha256", remote + self.auth) if self.v == 1 else h("sha256", remote + local + self.auth)
        status, _, _ = self.post("/app/handshake2", client, self.cookie)
        if status != 200:
            return f"handshake2: {status}"
        p = local + remote + self.auth
        self.key = h("sha256", b"lsk" + p)[:16]
        f = h("sha256", b"iv" + p)
        self.iv, self.seq = f[:12], struct.unpack(">i", f[-4:])[0]
        self.sig = h("sha256", b"ldk" + p)[:28]
        return None

    def request(self, obj, corrupt=False):
        self.seq += 1
        iv = self.iv + struct.pack(">i", self.seq)
        pad = padding.PKCS7(128).padder()
        data = pad.update(json.dumps(obj).encode()) + pad.finalize()
        enc = Cipher(algorithms.AES(self.key), modes.CBC(iv)).encryptor()
        cipher = enc.update(data) + enc.finalize()
        sig = h("sha256", self.sig + struct.pack(">i", self.seq) + cipher)
        if corrupt:
            sig = bytes([sig[0] ^ 1]) + sig[1:]
        status, body, _ = self.post(f"/app/request?seq={self.seq}", sig + cipher, self.cookie)
        if status != 200:
            return status, None, None
        ok_sig = body[:32] == h("sha256", self.sig + struct.pack(">i", self.seq) + body[32:])
        dec = Cipher(algorithms.AES(self.key), modes.CBC(iv)).decryptor()
        plain = dec.update(body[32:]) + dec.finalize()
        unpad = padding.PKCS7(128).unpadder()
        return status, json.loads(unpad.update(plain) + unpad.finalize()), ok_sig


def main():
    sim = sys.argv[1]
    t = Tap()
    tmp = tempfile.mkdtemp(prefix="sim-klap-")
    control = os.path.join(tmp, "control")
    config = os.path.join(tmp, "config.json")
    with open(config, "w") as f:
        json.dump({"port": PORT, "devices": [
            {"profile": "hs100", "address": "127.0.0.2", "klap": {"version": 1, "user": USER, "password": PASSWORD}},
            {"profile": "kp125m", "address": "127.0.0.3", "klap": {"version": 2, "user": USER, "password": PASSWORD,
                                                                      "session_timeout": 1200}},
            {"profile": "kp125m", "address": "127.0.0.4", "klap": {"version": 2}},
        ]}, f)
    p = start_sim([sim, f"--config={config}", f"--control={control}", "--noise=0"])
    try:
        ctl = SimControl(control)
        for addr, v in (("127.0.0.2", 1), ("127.0.0.3", 2)):
            k = Klap(addr, v)
            t.eq(k.handshake(), None, f"KLAP v{v}: handshake with the owner's credentials")
            status, reply, ok_sig = k.request({"system": {"get_sysinfo": {}}})
            t.ok(status == 200 and reply["system"]["get_sysinfo"]["err_code"] == 0 and ok_sig,
                 f"KLAP v{v}: sysinfo through the session, reply signed", diag=str(reply))
            status, reply, ok_sig = k.request({"system": {"set_relay_state": {"state": 0}}})
            t.ok(status == 200 and reply["system"]["set_relay_state"]["err_code"] == 0,
                 f"KLAP v{v}: next seq accepted, switch off")
            t.eq(Klap(addr, 3 - v).handshake(), "server hash mismatch", f"KLAP v{v}: the other version's hash fails")
            t.eq(Klap(addr, v, "x", "y").handshake(), "server hash mismatch", f"KLAP v{v}: wrong credentials fail")
        truth = ctl.truth(1)[0]
        t.ok(truth["relay"] is False and truth["klap"] == 2 and truth["handshakes"] == 1,
             "truth: relay off, one handshake", diag=str(truth))

        k = Klap("127.0.0.3", 2)
        k.handshake()
        t.ok("TIMEOUT=1200" in k.timeout, "session_timeout in the cookie", diag=k.timeout)
        status, _, _ = k.request({"system": {"get_sysinfo": {}}}, corrupt=True)
        t.eq(status, 400, "corrupted request signature refused with 400")
        ctl.request(cmd="fault", device=1, expire_session=True)
        status, _, _ = k.request({"system": {"get_sysinfo": {}}})
        t.eq(status, 403, "expire_session: next request is 403")
        t.eq(k.handshake(), None, "and a new handshake works")
        ctl.request(cmd="fault", device=1, bad_signature=True)
        status, reply, ok_sig = k.request({"system": {"get_sysinfo": {}}})
        t.ok(status == 200 and ok_sig is False, "bad_signature: reply signature corrupted")
        ctl.request(cmd="clear", device=1)
        ctl.request(cmd="fault", device=1, credentials={"user": "new@example.com", "password": "other"})
        t.eq(Klap("127.0.0.3", 2).handshake(), "server hash mismatch", "credentials changed: old ones fail")
        t.eq(Klap("127.0.0.3", 2, "new@example.com", "other").handshake(), None, "new ones work")
        t.eq(Klap("127.0.0.4", 2, "", "").handshake(), None, "unbound device: blank credentials work")

        ctl.request(cmd="fault", device=0, handshake_hang=True)
        k = Klap("127.0.0.2", 1)
        try:
            k.handshake()
            t.ok(False, "handshake_hang: handshake1 never answered")
        except (socket.timeout, TimeoutError):
            t.ok(True, "handshake_hang: handshake1 never answered")
        ctl.request(cmd="clear", device=0, fault="handshake_hang")

        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(3)
        s.sendto(tdp_probe(), ("127.0.0.3", 20002))
        data, addr = s.recvfrom(4096)
        reply = json.loads(data[16:])
        schm = reply["result"]["mgt_encrypt_schm"]
        t.ok(addr[0] == "127.0.0.3" and struct.unpack(">H", data[4:6])[0] == len(data) - 16 and
             schm["encrypt_type"] == "KLAP" and schm["lv"] == 2 and schm["http_port"] == PORT and
             reply["result"]["device_model"] == "KP125M(US)", "20002: header and mgt_encrypt_schm", diag=str(reply))
        s.sendto(b"\x02" + bytes(20), ("127.0.0.3", 20002))
        s.settimeout(0.5)
        try:
            s.recvfrom(4096)
            t.ok(False, "20002: junk probe ignored")
        except (socket.timeout, TimeoutError):
            t.ok(True, "20002: junk probe ignored")
        s.close()
        ctl.close()
    finally:
        t.eq(stop(p), 0, "kasa-sim exits cleanly")
        shutil.rmtree(tmp, ignore_errors=True)
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
