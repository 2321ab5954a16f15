#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""kasamond tells systemd its STATUS= when it changes, not every second:
with a plug without meter polled every second nothing changes, so after
the first few messages none follow; a device going offline is said."""

import os
import shutil
import socket
import sys
import tempfile
import time

import kasatest as kt

DEVICES = ["hs100@127.0.0.2"]


def statuses(sock):
    out = []
    while True:
        try:
            msg = sock.recv(4096).decode()
        except BlockingIOError:
            return out
        out += [line for line in msg.split("\n") if line.startswith("STATUS=")]


def main():
    t = kt.Tap()
    tmp = tempfile.mkdtemp(prefix="kasa-notify-")
    path = os.path.join(tmp, "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    os.environ["NOTIFY_SOCKET"] = path
    try:
        with kt.Env(DEVICES) as env:
            plug = env.device_path(kt.mac_id(env.sim_devices()[0]["mac"]))
            env.discover(1.0)
            env.wait_polled(plug, polls=2)
            first = statuses(sock)
            t.ok(first and first[-1] == "STATUS=1 devices, 1 online, 0.0 W", "STATUS= says what is there", first)
            # Five polls, five flush ticks: the same state all along.
            env.wait_polled(plug, polls=5)
            again = statuses(sock)
            t.eq(again, [], "an unchanged state is not sent again")
            env.sim(cmd="fault", device=0, hang=True)
            env.wait_for(lambda: not env.get(plug, kt.DEVICE_IFACE, "Online"), 30, "offline")
            env.iterate(1.5)
            t.eq(statuses(sock), ["STATUS=1 devices, 0 online, 0.0 W"], "a change is sent once")
    finally:
        del os.environ["NOTIFY_SOCKET"]
        sock.close()
        shutil.rmtree(tmp)
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
