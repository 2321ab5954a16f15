#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""What kasamond writes to its device registry (SQLite, WAL mode), counted
as commit frames in the write-ahead log: the first discovery of many plugs
is one commit, not one per plug; discovering them again unchanged writes
nothing; a device going offline is one commit (its last_seen). New devices'
replies are registered a burst at a time, outside the run's socket
callback: no registry transaction is left open while the run waits for
more replies."""

import os
import sqlite3
import struct
import sys

from gi.repository import GLib, Gio

import kasatest as kt

N = 40
DEVICES = [f"hs100@127.0.0.{10 + i}" for i in range(N)]


def wal_commits(state):
    """Commit frames of the current WAL generation (frames whose salts
    match the header's and that carry a database size)."""
    try:
        with open(os.path.join(state, "devices.sqlite-wal"), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return 0
    if len(data) < 32:
        return 0
    page = struct.unpack(">I", data[8:12])[0]
    salts = data[16:24]
    commits = 0
    off = 32
    while off + 24 + page <= len(data):
        _, size = struct.unpack(">II", data[off:off + 8])
        if data[off + 8:off + 16] != salts:
            break
        commits += size != 0
        off += 24 + page
    return commits


def registry_writable(state):
    """Whether another writer could take the registry's write lock now,
    i.e. kasamond holds no transaction open."""
    con = sqlite3.connect(os.path.join(state, "devices.sqlite"), timeout=0, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        con.close()


def discover_async(env, seconds):
    """Starts Discover(seconds); returns a list that gets its reply."""
    out = []
    env.bus.call(kt.BUS_NAME, kt.MANAGER_PATH, kt.MANAGER_IFACE, "Discover", GLib.Variant("(d)", (seconds,)), None,
                 Gio.DBusCallFlags.NONE, int((seconds + 20) * 1000), None,
                 lambda bus, res: out.append(bus.call_finish(res).unpack()[0]))
    return out


def main():
    t = kt.Tap()
    with kt.Env(DEVICES, poll_interval=2.0) as env:
        start = wal_commits(env.state)
        reply = discover_async(env, 3.0)
        # Every plug has answered the first probes well before half the
        # run; the run keeps listening for late replies until its end.
        env.iterate(1.5)
        t.ok(not reply and registry_writable(env.state),
             "no registry transaction is held open while the discovery run listens")
        found = env.wait_for(lambda: reply, 30, "the Discover reply")[0]
        t.eq(len(found), N, f"discovery finds the {N} plugs")
        first = wal_commits(env.state)
        t.eq(first - start, 1, f"the first discovery of {N} plugs is one registry commit")
        env.wait_polled(found[0], polls=2)
        t.eq(wal_commits(env.state), first, "polls write nothing to the registry")
        env.discover(1.0)
        t.eq(wal_commits(env.state), first, "discovering them again unchanged writes nothing")

        env.sim(cmd="fault", device=0, hang=True)
        plug = env.device_path(kt.mac_id(env.sim_devices()[0]["mac"]))
        env.wait_for(lambda: not env.get(plug, kt.DEVICE_IFACE, "Online"), 30, "the plug goes offline")
        env.iterate(0.5)
        t.eq(wal_commits(env.state) - first, 1, "a device going offline is one commit (its last_seen)")
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
