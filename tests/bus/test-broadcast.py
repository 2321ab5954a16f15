#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Real broadcast discovery with Targets=auto, and re-discovery when an
IPv4 address appears. Runs in its own network namespace (tests/netns-run):
veth interfaces with documentation addresses are created here and vanish
with the namespace.

kasa-sim answers a probe sent to a broadcast address for every device in
that block, each from its own address; a device on 127.x is outside every
broadcast domain, so kasamond can only find these devices by broadcast."""

import json
import socket
import subprocess
import sys

import kasatest as kt

NET1 = ["192.0.2.10", "192.0.2.11", "192.0.2.12"]
NET2 = ["198.51.100.10", "198.51.100.11"]
ATTEMPTS = 2
# The last two start on loopback, out of broadcast reach, and move to NET2.
DEVICES = ["hs100@192.0.2.10", "hs110@192.0.2.11", "hs300@192.0.2.12", "kp115@127.0.0.2", "kp303@127.0.0.3"]


def ip(*args):
    subprocess.run(["ip", *args], check=True)


def add_interface(name):
    # The peer only keeps the link up; it has no address, so it never
    # delivers a second copy of a broadcast.
    ip("link", "add", name, "type", "veth", "peer", "name", name + "p")
    ip("link", "set", name, "up")
    ip("link", "set", name + "p", "up")


def xor_encrypt(data):
    key, out = 171, bytearray()
    for c in data:
        key ^= c
        out.append(key)
    return bytes(out)


def xor_decrypt(data):
    key, out = 171, bytearray()
    for c in data:
        out.append(key ^ c)
        key = c
    return bytes(out)


PROBE = json.dumps({"system": {"get_sysinfo": {}}}).encode()


def probe(dest, wait=0.5):
    """Sends one discovery probe; returns the source address of every
    reply that arrives within the window (duplicates kept)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        s.settimeout(wait)
        s.sendto(xor_encrypt(PROBE), (dest, 9999))
        got = []
        try:
            while True:
                data, addr = s.recvfrom(65536)
                if "get_sysinfo" in json.loads(xor_decrypt(data))["system"]:
                    got.append(addr[0])
        except socket.timeout:
            pass
    return sorted(got)


def ids_of(paths):
    return sorted(p.rsplit("/", 1)[1] for p in paths)


def sim_ids(sims, addresses):
    want = []
    for s in sims:
        if s["address"] in addresses:
            want.append(kt.mac_id(s["mac"]))
            want += [kt.mac_id(s["mac"], i) for i, _ in enumerate(s.get("children", []))]
    return sorted(want)


def main():
    t = kt.Tap()

    add_interface("kasa0")
    ip("addr", "add", "192.0.2.1/24", "brd", "192.0.2.255", "dev", "kasa0")
    # Secondary addresses of the same block: each reports 192.0.2.255 too.
    for a in NET1:
        ip("addr", "add", a + "/24", "brd", "192.0.2.255", "dev", "kasa0")

    # Bound to the broadcast address itself, this socket only sees datagrams
    # sent to 192.0.2.255 (SO_REUSEADDR: kasa-sim listens on 0.0.0.0 too).
    observer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    observer.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    observer.bind(("192.0.2.255", 9999))
    observer.setblocking(False)

    try:
        with kt.Env(DEVICES, targets="auto", config=f"Attempts={ATTEMPTS}\n") as env:
            sims = env.sim_devices()

            # The simulator itself: broadcast reaches its block, unicast
            # reaches one device once, an address without a device nobody.
            t.eq(probe("192.0.2.255"), NET1, "kasa-sim: each device on 192.0.2.0/24 answers a broadcast once")
            t.eq(probe("192.0.2.11"), ["192.0.2.11"], "kasa-sim: a unicast probe is answered once")
            t.eq(probe("192.0.2.1"), [], "kasa-sim: no answer for an address without a device")

            want1 = sim_ids(sims, NET1)
            found = env.discover(1.5)
            t.eq(ids_of(found), want1, "Discover() with Targets=auto finds exactly the devices on 192.0.2.0/24")
            objs = env.objects()
            for s in sims:
                path = env.device_path(kt.mac_id(s["mac"]))
                if s["address"] in NET1:
                    t.eq(objs.get(path, {}).get(kt.DEVICE_IFACE, {}).get("Address"), s["address"],
                         f"{s['profile']}: Address is the device's own, the source of its reply")
                else:
                    t.ok(path not in objs, f"{s['profile']} on {s['address']}: out of broadcast reach, not found")

            probes = []
            while True:
                try:
                    data, addr = observer.recvfrom(65536)
                except BlockingIOError:
                    break
                probes.append((addr[0], xor_decrypt(data)))
            # Both the start-up run and Discover()'s have sent all their
            # probes by now (each sends in the first half of its time); one
            # more is this test's own probe above.
            t.eq(len(probes), 2 * ATTEMPTS + 1,
                 f"kasamond probed 192.0.2.255 {ATTEMPTS} times per run, not once per address of the block")
            t.ok(all(a == "192.0.2.1" and json.loads(p) == json.loads(PROBE) for a, p in probes),
                 "each is a sysinfo probe from 192.0.2.1", probes)

            # A new network appears while kasamond runs, with no periodic
            # discovery (Interval=0) and no Discover() call.
            t.eq(env.log().count("Network addresses changed"), 0, "no address change noticed yet")
            add_interface("kasa1")
            for a in NET2:
                ip("addr", "add", a + "/32", "dev", "kasa1")
            for old, new in zip(["127.0.0.2", "127.0.0.3"], NET2):
                env.sim(cmd="fault", device=old, move=new)
            sims = env.sim_devices()
            want2 = sim_ids(sims, NET2)
            t.eq(len(want2), 1 + 1 + 3, "two devices and three outlets moved to 198.51.100.0/24")
            # Only this address has a broadcast address covering them.
            ip("addr", "add", "198.51.100.1/24", "brd", "198.51.100.255", "dev", "kasa1")

            kt.eventually(t, env, lambda: set(want2) <= set(ids_of(env.objects())), 30,
                          "kasamond finds the devices on 198.51.100.0/24 by itself, without Discover()")
            t.ok("Network addresses changed" in env.log(), "kasamond logged the address change",
                 env.log())
            objs = env.objects()
            for s in sims:
                if s["address"] in NET2:
                    path = env.device_path(kt.mac_id(s["mac"]))
                    t.eq(objs.get(path, {}).get(kt.DEVICE_IFACE, {}).get("Address"), s["address"],
                         f"{s['profile']}: Address is its new one")
            t.eq(ids_of(objs), sorted(want1 + want2), "nothing else appeared")
            t.eq(env.get(kt.MANAGER_PATH, kt.MANAGER_IFACE, "DeviceCount"), len(want1) + len(want2),
                 "DeviceCount counts both networks")
    finally:
        observer.close()
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
