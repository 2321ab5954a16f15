#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Scale check: one kasa-sim process with 1000 devices (from a config file
with "count"), each on its own 127.0.x.y address; every one must answer
unicast discovery, with its own deviceId and MAC. No timing assertions.

Usage: test-sim-scale.py PATH-TO-KASA-SIM   (run inside tests/netns-run)
Prints TAP.
"""

import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from kasalib import SimControl, Tap, decrypt, encrypt  # noqa: E402

GROUPS = [("hs110", "127.0.1.1", 400), ("kp115", "127.0.3.1", 300),
          ("hs300", "127.0.5.1", 200), ("kp303", "127.0.7.1", 100)]
PROBE_PLAIN = b'{"system":{"get_sysinfo":{}}}'


def addresses():
    for profile, first, count in GROUPS:
        base = int.from_bytes(socket.inet_aton(first), "big")
        for i in range(count):
            yield profile, socket.inet_ntoa((base + i).to_bytes(4, "big"))


def main():
    t = Tap(max_diag_lines=20)
    ok = t.ok

    expected = dict((a, p) for p, a in addresses())
    tmp = tempfile.mkdtemp(prefix="sim-scale-")
    config = os.path.join(tmp, "devices.json")
    control = os.path.join(tmp, "control")
    with open(config, "w") as f:
        json.dump({"seed": 11, "devices": [{"profile": p, "address": a, "count": c} for p, a, c in GROUPS]}, f)

    proc = subprocess.Popen([sys.argv[1], "--config=" + config, "--control=" + control],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        ok(line == "READY\n", "simulator with %d devices says READY" % len(expected), repr(line))

        with SimControl(control, timeout=30) as ctl:
            listed = ctl(cmd="list")["devices"]
        ok(len(listed) == len(expected) and all(d["online"] for d in listed), "control lists 1000 online devices")

        probe = encrypt(PROBE_PLAIN)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        answers = {}
        bad = []
        # Bounded rounds of small batches, re-probing whoever stayed silent:
        # UDP may drop when a thousand replies arrive at once.
        for _ in range(20):
            missing = [a for a in expected if a not in answers]
            if not missing:
                break
            for i in range(0, len(missing), 50):
                pending = set(missing[i:i + 50])
                for a in pending:
                    u.sendto(probe, (a, 9999))
                while pending and select.select([u], [], [], 0.5)[0]:
                    data, src = u.recvfrom(65535)
                    pending.discard(src[0])
                    try:
                        answers[src[0]] = json.loads(decrypt(data))["system"]["get_sysinfo"]
                    except (ValueError, KeyError) as e:
                        bad.append((src, repr(e)))
        u.close()

        missing = [a for a in expected if a not in answers]
        ok(not missing, "all %d devices answered discovery" % len(expected), missing[:20])
        ok(not bad, "every answer decrypts to a sysinfo", bad[:5])
        wrong = [a for a, si in answers.items()
                 if a in expected and not si.get("model", "").lower().startswith(expected[a])]
        ok(not wrong, "every address answers with its profile's model", wrong[:5])
        ids = {si.get("deviceId") for si in answers.values()}
        macs = {si.get("mac") for si in answers.values()}
        ok(len(ids) == len(answers), "deviceIds are unique")
        ok(len(macs) == len(answers), "MACs are unique")
    finally:
        proc.terminate()
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        ok(rc == 0, "simulator exits cleanly", rc)
        shutil.rmtree(tmp, ignore_errors=True)
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
