# SPDX-License-Identifier: MIT
"""The bridge on the bus-level harness: kasamond, kasa-sim and a private bus
from tests/bus/kasatest.py, and kasamond-bridge from the build tree running
as a throw-away user that kasamond knows as the bridge ([Bridge] User=),
listening on 127.0.0.1 inside the test's network namespace. An HTTP client
and a WebSocket client written here from RFC 6455, Python's standard
library only."""

import base64
import contextlib
import hashlib
import http.client
import json
import os
import pwd
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bus"))
import kasatest as kt  # noqa: E402

PORT = 8337


def bridge_binary():
    return os.path.join(kt.build_dir(), "bridge", "kasamond-bridge")


class Bridge:
    def __init__(self, env, user, args=(), port=PORT):
        self.env = env
        self.port = port
        self.user = user
        pw = pwd.getpwnam(user)
        self.log_path = os.path.join(env.tmp, "bridge.log")
        log = open(self.log_path, "a")
        src = kt.source_dir()
        cmd = [bridge_binary(), f"--listen=127.0.0.1:{port}",
               f"--openapi={os.path.join(src, 'bridge', 'openapi.json')}",
               f"--dashboard={os.path.join(src, 'bridge', 'dashboard')}", *args]
        self.proc = subprocess.Popen(cmd, env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=env.address),
                                     user=pw.pw_uid, group=pw.pw_gid, extra_groups=[],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        env.procs["kasamond-bridge"] = self.proc
        env.wait_for(lambda: self.proc.poll() is not None or self._listening(), 20, "the bridge listens")
        if self.proc.poll() is not None:
            raise RuntimeError(f"kasamond-bridge exited with {self.proc.returncode}: {self.log()}")

    def _listening(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), 1).close()
            return True
        except OSError:
            return False

    def log(self):
        with open(self.log_path) as f:
            return f.read()[-4000:]

    def stop(self):
        p = self.env.procs.pop("kasamond-bridge", None)
        if p is None:
            return None
        p.terminate()
        return p.wait(30)

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return None

    def request(self, method, path, token=None, body=None, headers=None, raw=None, chunked=False, source=None):
        """(status, headers, parsed JSON or text); chunked: the raw body
        goes in 4 kB chunks without a Content-Length; source: the client's
        address (127.0.0.0/8), for limits per client."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60,
                                       source_address=(source, 0) if source else None)
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        try:
            if chunked:
                c.request(method, path, body=(data[i:i + 4096] for i in range(0, len(data), 4096)), headers=h,
                          encode_chunked=True)
            else:
                c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            text = r.read().decode("utf-8", "replace")
            hdrs = {k.lower(): v for k, v in r.getheaders()}
        finally:
            c.close()
        if hdrs.get("content-type", "").startswith("application/json") and text:
            try:
                return r.status, hdrs, json.loads(text)
            except ValueError:
                pass
        return r.status, hdrs, text

    def get(self, path, token=None, **kw):
        return self.request("GET", path, token, **kw)

    def post(self, path, token=None, body=None, **kw):
        return self.request("POST", path, token, body, **kw)


def create_token(env, name, role, expires=0):
    """(id, secret), made over the bus as root."""
    return env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "CreateToken", "sst", (name, role, expires))


@contextlib.contextmanager
def bridge_env(devices, poll_interval=1.0, bridge_args=(), config="", targets=None):
    """Env + the bridge's user + the bridge; yields (env, bridge)."""
    user = f"kbr{os.getpid() % 100000}"
    with kt.system_user(user):
        with kt.Env(devices, poll_interval=poll_interval, targets=targets,
                    config=f"[Bridge]\nUser={user}\n{config}") as env:
            # The bridge's user must reach the bus socket in the test's directory.
            os.chmod(env.tmp, 0o755)
            br = Bridge(env, user, bridge_args)
            try:
                yield env, br
            except BaseException:
                sys.stderr.write(f"kasamond-bridge log:\n{br.log()}\n")
                raise


def is_error(got, status, error=None):
    """A JSON error {error, message} with this status."""
    st, _, body = got
    return (st == status and isinstance(body, dict) and isinstance(body.get("error"), str)
            and isinstance(body.get("message"), str) and (error is None or body["error"] == error))


class WsClient:
    """A WebSocket client from RFC 6455: masked frames out, frames in."""

    def __init__(self, port, path, headers=None, read=True, rcvbuf=None):
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(30)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        self.head = head.decode("latin-1")
        self.status = int(self.head.split()[1]) if self.head else 0
        want = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        self.accept_ok = any(line.lower().startswith("sec-websocket-accept:") and line.split(":", 1)[1].strip() ==
                             want.decode() for line in self.head.split("\r\n"))

    def send(self, payload, opcode=1):
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload)
        if isinstance(payload, str):
            payload = payload.encode()
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk

    def frame(self, timeout=30):
        """(opcode, payload bytes); server frames are never masked."""
        self.sock.settimeout(timeout)
        self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        if b1 & 0x80:
            raise ValueError("the server masked a frame")
        n, off = b1 & 0x7f, 2
        if n == 126:
            self._need(4)
            n, off = struct.unpack(">H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, off = struct.unpack(">Q", self.buf[2:10])[0], 10
        self._need(off + n)
        payload, self.buf = self.buf[off:off + n], self.buf[off + n:]
        return b0 & 0x0f, payload

    def message(self, timeout=30):
        """The next text message as JSON (control frames are skipped)."""
        while True:
            op, payload = self.frame(timeout)
            if op == 1:
                return json.loads(payload)
            if op == 8:
                raise ConnectionError(f"closed by the server: {payload!r}")

    def close_code(self, timeout):
        """The status code of the server's close frame, skipping what comes
        before it; None if the connection ends or times out without one."""
        end = time.monotonic() + timeout
        try:
            while time.monotonic() < end:
                op, payload = self.frame(max(0.1, end - time.monotonic()))
                if op == 8:
                    return int.from_bytes(payload[:2], "big")
        except (ConnectionError, socket.timeout):
            pass
        return None

    def wait_for(self, predicate, timeout):
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError("no such message")
            m = self.message(left)
            if predicate(m):
                return m

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
