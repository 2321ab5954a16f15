#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""One faulty device never holds up the others: with several devices
polled every second, one at a time goes through each fault of kasa-sim
(hang, drop, garbage, bad_length, a delay beyond the poll timeout, a
reboot); it goes offline while every other device keeps being polled, and
it comes back once the fault is gone. A delay within the timeout keeps the
device online. The daemon survives all of it."""

import os
import sys

import kasatest as kt

DEVICES = ["hs110@127.0.0.2", "kp115@127.0.0.3", "hs300@127.0.0.4", "hs100@127.0.0.5", "kp303@127.0.0.6"]
# Each fault goes to the next device in turn, so plugs and strips (whose
# poll is several requests) all meet one. The poll timeout is 1 s.
FAULTS = [
    ("hang", {"hang": True}),
    ("drop", {"drop": True}),
    ("garbage", {"garbage": True}),
    ("bad_length", {"bad_length": True}),
    ("delay 2500 ms", {"delay": 2500}),
    ("reboot 6 s", {"reboot": 6}),
]
CRASH_SIGNS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "Assertion", "Segmentation fault", "Aborted")


def online_events(log, paths, value, start=0):
    """Indexes in log.events where one of paths announced Online=value."""
    return [i for i, e in enumerate(log.events)
            if i >= start and e[1] in paths and e[2] == kt.DEVICE_IFACE and e[3].get("Online") is value]


def polls_between(log, path, start, end):
    return sum(1 for e in log.events[start:end]
               if e[1] == path and e[2] == kt.DEVICE_IFACE and "LastSeen" in e[3])


def main():
    t = kt.Tap()
    with kt.Env(DEVICES) as env:
        sims = env.sim_devices()
        groups = []  # per sim device: the root object, then its outlets
        for s in sims:
            groups.append([env.device_path(kt.mac_id(s["mac"]))] +
                          [env.device_path(kt.mac_id(s["mac"], k)) for k in range(len(s.get("children", [])))])
        everything = [p for g in groups for p in g]
        log = env.watch_properties()
        env.discover(1.0)
        env.wait_for(lambda: all(env.get(p, kt.DEVICE_IFACE, "Online") for p in everything), 10, "all online")

        for n, (name, fault) in enumerate(FAULTS):
            index = n % len(groups)
            victim, others = groups[index], [p for g in groups if g is not groups[index] for p in g]
            what = f"{name} on {sims[index]['profile']}"
            start = len(log.events)
            env.sim(cmd="fault", device=index, **fault)

            if not kt.eventually(t, env, lambda: online_events(log, victim[:1], False, start), 30,
                                 f"{what}: the device goes offline"):
                break
            off = online_events(log, victim[:1], False, start)[0]
            t.eq([env.get(p, kt.DEVICE_IFACE, "Online") for p in victim], [False] * len(victim),
                 f"{what}: Online=false on the device and every outlet of it")

            # The window lasts until the others were polled twice, or, for
            # a reboot, until the device is back by itself.
            def window_done():
                if online_events(log, victim[:1], True, off):
                    return True
                return all(polls_between(log, p, off, len(log.events)) >= 2 for p in others)
            env.wait_for(window_done, 30, "the other devices polled twice, or the device back")
            back = online_events(log, victim[:1], True, off)
            end = back[0] if back else len(log.events)
            if "reboot" not in fault:
                t.ok(not back, f"{what}: the device stays offline while the fault lasts")
            late = {p: polls_between(log, p, off, end) for p in others if polls_between(log, p, off, end) < 2}
            t.ok(not late, f"{what}: every other device was polled at least twice while it was offline",
                 f"polls in the window: {late}")
            t.eq(online_events(log, others, False, start), [], f"{what}: no other device went offline")

            if "reboot" not in fault:
                env.sim(cmd="clear", device=index)
            kt.eventually(t, env, lambda: online_events(log, victim[:1], True, off), 30,
                          f"{what}: the device comes back online once the fault is gone")
            before = env.get(victim[0], kt.DEVICE_IFACE, "LastSeen")
            kt.eventually(t, env, lambda: env.get(victim[0], kt.DEVICE_IFACE, "LastSeen") > before, 30,
                          f"{what}: and is polled again")
            t.eq([env.get(p, kt.DEVICE_IFACE, "Online") for p in victim], [True] * len(victim),
                 f"{what}: Online=true on the device and every outlet of it")

        # A delay within the poll timeout, on a strip whose poll is seven
        # requests in a row: slow, but online.
        index = 2
        victim = groups[index]
        start = len(log.events)
        env.sim(cmd="fault", device=index, delay=300)
        env.wait_for(lambda: polls_between(log, victim[0], start, len(log.events)) >= 3, 60,
                     "the delayed strip polled three times")
        t.eq(online_events(log, victim, False, start), [], "delay 300 ms on hs300: it stays online through three polls")
        t.eq([env.get(p, kt.DEVICE_IFACE, "Online") for p in victim], [True] * len(victim),
             "delay 300 ms on hs300: every outlet online")
        env.sim(cmd="clear", device=index)

        t.ok(env.daemon_alive(), "kasamond is still running")
        with open(os.path.join(env.tmp, "kasamond.log")) as f:
            crashes = [line for line in f if any(s in line for s in CRASH_SIGNS)]
        t.ok(not crashes, "kasamond logged no crash", "\n".join(crashes))
        log.close()
        rc = env.stop_daemon()
        t.ok(rc == 0, "kasamond exits cleanly on SIGTERM", f"status {rc}\n{env.log()}")
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
