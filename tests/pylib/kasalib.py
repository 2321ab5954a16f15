# SPDX-License-Identifier: MIT
"""What every Python test of the project shares, standard library only:
TAP output, the legacy XOR protocol written from the protocol facts alone
(its own cipher and framing, nothing from common/, so a bug shared by the
C codec and kasa-sim cannot hide), a client of kasa-sim's control socket
and starting kasa-sim.

A test finds this module with
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "<up>", "pylib"))
"""

import json
import socket
import struct
import subprocess
import zlib


class Tap:
    """TAP producer; the plan is printed at the end by close(), which
    returns the exit status (1 when a point failed or none ran)."""

    def __init__(self, max_diag_lines=None):
        self.n = 0
        self.failed = 0
        self.max_diag_lines = max_diag_lines

    def ok(self, cond, name, diag=None):
        self.n += 1
        print(f"{'ok' if cond else 'not ok'} {self.n} - {name}", flush=True)
        if not cond:
            self.failed += 1
            lines = str(diag).splitlines() if diag is not None else []
            for line in lines[:self.max_diag_lines]:
                print(f"# {line}", flush=True)
        return cond

    def eq(self, got, want, name):
        return self.ok(got == want, name, f"got {got!r}, want {want!r}")

    def close(self):
        print(f"1..{self.n}", flush=True)
        return 1 if self.failed or self.n == 0 else 0


# --- discovery of newer firmware (UDP 20002) ----------------------------


def tdp_probe():
    """A 20002 probe: the 16-byte header (version 2, its CRC32 over the
    whole datagram with the CRC field holding the seed 0x5A6B7C8D) and
    JSON."""
    payload = json.dumps({"params": {"rsa_key": "test"}}).encode()
    head = struct.pack(">BBHHBBII", 2, 0, 1, len(payload), 0x11, 0, 1, 0x5A6B7C8D)
    crc = zlib.crc32(head + payload)
    return head[:12] + struct.pack(">I", crc) + payload


# --- the legacy protocol (TCP and UDP 9999) -----------------------------

KASA_PORT = 9999


def encrypt(plain):
    key = 171
    out = bytearray()
    for p in plain:
        key ^= p
        out.append(key)
    return bytes(out)


def decrypt(cipher):
    key = 171
    out = bytearray()
    for c in cipher:
        out.append(key ^ c)
        key = c
    return bytes(out)


def frame(payload):
    return struct.pack(">I", len(payload)) + encrypt(payload)


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


class DeviceConn:
    """One persistent TCP connection to a device, as the protocol allows."""

    def __init__(self, addr, port=KASA_PORT, timeout=10):
        self.sock = socket.create_connection((addr, port), timeout=timeout)

    def call(self, request):
        self.sock.sendall(frame(json.dumps(request).encode()))
        (length,) = struct.unpack(">I", recv_exact(self.sock, 4))
        if length > 64 * 1024:
            raise ValueError(f"absurd length {length}")
        return json.loads(decrypt(recv_exact(self.sock, length)))

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --- kasa-sim ----------------------------------------------------------

class SimControl:
    """A connection to kasa-sim's control socket (one JSON object per line
    each way; see kasa-sim(1))."""

    def __init__(self, path, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.settimeout(timeout)
            self.sock.connect(path)
        except BaseException:
            self.sock.close()
            raise
        self.reader = self.sock.makefile("r")

    def __call__(self, **req):
        """The reply as it is, {"ok": false, ...} included."""
        self.sock.sendall((json.dumps(req) + "\n").encode())
        line = self.reader.readline()
        if not line:
            raise ConnectionError(f"kasa-sim closed the control socket on {req}")
        return json.loads(line)

    def request(self, **req):
        """The reply; raises RuntimeError when kasa-sim refuses."""
        reply = self(**req)
        if not reply.get("ok"):
            raise RuntimeError(f"kasa-sim refused {req}: {reply.get('error')}")
        return reply

    def truth(self, device=None):
        """Ground truth: every device's, or one device's (by index)."""
        req = {"cmd": "truth"}
        if device is not None:
            req["device"] = device
        return self.request(**req)["devices"]

    def close(self):
        self.reader.close()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def sim_request(path, **req):
    """One request on a connection of its own."""
    with SimControl(path) as c:
        return c.request(**req)


def start_sim(argv, stderr=None):
    """Starts kasa-sim (argv[0] is its path) and waits for its READY line.
    Raises RuntimeError, with the process ended, when it exits first."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr, text=True)
    line = p.stdout.readline()
    if line != "READY\n":
        stop(p)
        raise RuntimeError(f"kasa-sim did not start (exit {p.returncode}, said {line!r})")
    return p


def stop(p, timeout=10):
    """SIGTERM, then SIGKILL after timeout seconds; returns the exit status
    (negative for a signal)."""
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return p.returncode
