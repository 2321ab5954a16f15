#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Energy over a two-minute run with counter resets and reboots equals the
simulator's ground truth.

The window starts where every counter's position is exactly known to
kasamond: no load, and every counter seen to reset to 0 (from at least
1 Wh, or kasamond could not tell the reset). Then HS110, KP115 and HS300
outlets at real plugs' loads (up to 3.6 kW), counter resets and reboots
(2-3 s offline) at full load, load changes. The window ends at each
device's next poll after the run, the loads still on: EnergyTotal is
kasamond's estimate at that poll's time, and the truth at that time
follows from the truth a moment later and the constant load.

Bound, per meter: 0.1 % of the truth, plus what 1 Wh counters cannot tell
(kasamond follows each counter's position within its Wh; see
daemon/energy.h):
- at a counter reset, the old counter's position at the last poll before
  it and the new counter's at the first poll after are known to within
  their intervals, and power x time over that poll interval to within its
  tolerance. Right after a step the interval is at most one poll's energy
  wide (the poll before did not see the step, this one did); until the
  next step it widens by the tolerance over at most a Wh and a poll. Half
  of each interval (kasamond takes the middle), so per reset about one
  poll interval's energy at the load then (reset_bound());
- at the window's end, half the interval, and the few ms between
  kasamond's time stamp and the simulator's reading (end_bound()).
The polls are every 0.2 s so that a poll sees at most a fifth of a Wh.
These are worst cases (a single step just seen, kasamond's estimate at the
middle of its interval); at a steady load many steps narrow the intervals
further, and kasamond's estimate follows power x time inside them, so the
errors measured are mostly within 0.1 %; they are printed.

The whole run's energy within 0.1 % is the figure of issue 1. It is not a
worst case but what the estimate gives; tests/daemon/test-energy.c runs a
model of this run 1000 times (test_bus_run_model): at the 0.5 s polls this
test had and kasamond's former estimate (the middle of its interval) about
65 runs in 1000 went beyond it, which made this test fail now and then
(with the estimate inside the interval 6 at 0.5 s, none at 0.2 s)."""

import sys
import time

import kasatest as kt

DEVICES = ["hs110@127.0.0.2", "kp115@127.0.0.3", "hs300@127.0.0.4", "kp115@127.0.0.5"]
# Real plugs' limits: HS110 (EU) 16 A at 230 V, KP115 15 A at 120 V, an
# HS300 15 A for the whole strip.
LOADS = {0: [3600.0], 1: [1800.0], 2: [300.0, 250.0, 400.0, 150.0, 350.0, 200.0], 3: [1500.0]}
# (seconds into the run, device index, action)
SCHEDULE = [
    (12, 0, {"cmd": "fault", "counter_reset": True}),
    (20, 1, {"cmd": "fault", "reboot": 2}),
    (28, 2, {"cmd": "fault", "counter_reset": True}),
    (36, 3, {"cmd": "fault", "counter_reset": True}),
    (44, 0, {"cmd": "fault", "reboot": 3}),
    (52, 2, {"cmd": "fault", "reboot": 2}),
    (60, 0, {"cmd": "set", "load_w": 2200.0}),
    (61, 2, {"cmd": "set", "load_w": 220.0}),
    (68, 3, {"cmd": "fault", "counter_reset": True}),
    (76, 1, {"cmd": "fault", "reboot": 3}),
    (84, 0, {"cmd": "fault", "counter_reset": True}),
    (92, 3, {"cmd": "fault", "reboot": 2}),
    (100, 1, {"cmd": "set", "load_w": 900.0}),
]
RUN_SECONDS = 110
PRE_LOAD_W = 1500.0
TOLERANCE = 0.001
# kasamond's settings the bound depends on: the poll interval of this test,
# the default jitter, the default power tolerance of the energy account
# (ENERGY_POWER_TOLERANCE_DEFAULT) and the devices' counter quantum.
POLL = 0.2
JITTER = 0.1
POWER_TOLERANCE = 0.015
QUANTUM_WH = 1.0
# kasamond stamps a round's samples when its sysinfo reply arrives (device.c),
# the simulator reads its counters as each request arrives (a strip's
# outlets after it): a few ms apart at most.
TIMING_S = 0.003


def poll_wh(load_w):
    """The most one poll interval sees at a load."""
    return load_w * POLL * (1 + JITTER) / 3600


def width_wh(load_w):
    """How well kasamond knows a counter's position at a steady load: right
    after a step the interval is one poll's energy wide (the sample before
    did not see the step, this one did), and until the next step it widens
    by the tolerance on both sides over at most a quantum and a poll."""
    e = poll_wh(load_w)
    return e * (1 + POWER_TOLERANCE) + 2 * POWER_TOLERANCE * (QUANTUM_WH + e)


def reset_bound(load_w):
    """A reset: half the old counter's interval at the last poll before it,
    half the new counter's at the first poll after (it saw part of one
    poll interval only), and the tolerance on power x time for that
    interval."""
    e = poll_wh(load_w)
    return width_wh(load_w) / 2 + e * (1 + POWER_TOLERANCE) / 2 + POWER_TOLERANCE * e


def end_bound(load_mw):
    """The window's end: half the interval, and the sample's timing."""
    w = load_mw / 1000
    return width_wh(w) / 2 + w * TIMING_S / 3600


def reset_loads(dev, outlet):
    """The load at each scheduled counter reset of a meter."""
    load, out = LOADS[dev][outlet], []
    for _, d, action in SCHEDULE:
        if d != dev:
            continue
        if action["cmd"] == "set":
            load = action["load_w"]
        elif action.get("counter_reset"):
            out.append(load)
    return out


def main():
    t = kt.Tap()
    with kt.Env(DEVICES, poll_interval=POLL) as env:
        sims = env.sim_devices()
        env.discover(1.5)
        roots = [env.device_path(kt.mac_id(s["mac"])) for s in sims]
        meters = []  # (path, device index, outlet)
        for s in sims:
            if s.get("children"):
                meters += [(env.device_path(kt.mac_id(s["mac"], i)), s["index"], i)
                           for i in range(len(s["children"]))]
            else:
                meters.append((env.device_path(kt.mac_id(s["mac"])), s["index"], 0))

        def wait_all_polled(polls=1):
            after = time.time()
            for r in roots:
                env.wait_polled(r, polls, after, timeout=30)

        def outlet_truth():
            truth = env.truth()
            return [truth[d]["outlets"][o] for _, d, o in meters]

        def totals():
            return [env.get(p, kt.METER_IFACE, "EnergyTotal") for p, _, _ in meters]

        # Start: load 0, counters reset to exactly 0, seen by kasamond. A
        # counter already at 0 would not be seen to reset (kasamond would
        # not know its phase), so first every counter passes 1 Wh.
        for s in sims:
            env.sim(cmd="set", device=s["index"], load_w=PRE_LOAD_W)
        env.wait_for(lambda: all(x["counter_mwh"] >= 1000 for x in outlet_truth()), 30, "every counter at 1 Wh")
        for s in sims:
            env.sim(cmd="set", device=s["index"], load_w=0)
        wait_all_polled(2)
        for s in sims:
            env.sim(cmd="fault", device=s["index"], counter_reset=True)
        wait_all_polled(2)
        truth0 = outlet_truth()
        e0 = totals()
        t.eq([x["counter_mwh"] for x in truth0], [0] * len(meters), "the window starts with every counter at 0")
        resets0 = [x["counter_resets"] for x in truth0]

        start = time.monotonic()
        for s in sims:
            for o, w in enumerate(LOADS[s["index"]]):
                env.sim(cmd="set", device=s["index"], outlet=o, load_w=w)
        for at, dev, action in SCHEDULE:
            time.sleep(max(0.0, start + at - time.monotonic()))
            env.sim(device=dev, **action)
        time.sleep(max(0.0, start + RUN_SECONDS - time.monotonic()))

        # End at each device's next poll, the loads still on: kasamond's
        # EnergyTotal is its estimate at that poll's time (LastSeen), and
        # at a constant load the truth then follows from the truth a moment
        # later.
        ends = {}  # meter index -> (EnergyTotal, true Wh, seconds the window lasted)
        for s in sims:
            mine = [j for j, (_, d, _) in enumerate(meters) if d == s["index"]]
            root = roots[s["index"]]
            for _ in range(50):
                seen = env.wait_polled(root)
                got = [env.get(meters[j][0], kt.METER_IFACE, "EnergyTotal") for j in mine]
                before = time.time()
                truth = env.truth(s["index"])[0]["outlets"]
                at = (before + time.time()) / 2
                # The next round may have updated outlets already before
                # it changes LastSeen: it starts POLL * (1 - JITTER) after.
                if env.get(root, kt.DEVICE_IFACE, "LastSeen") == seen and \
                        time.time() - seen / 1e6 < 0.8 * POLL * (1 - JITTER):
                    break
            else:
                t.ok(False, f"device {s['index']}: EnergyTotal read within one poll")
            for k, j in enumerate(mine):
                o = truth[meters[j][2]]
                true_mwh = o["energy_mwh_exact"] - o["load_mw"] * (at - seen / 1e6) / 3600
                ends[j] = (got[k], (true_mwh - truth0[j]["energy_mwh_exact"]) / 1000, o["load_mw"])
        for p, _, _ in meters:
            t.ok(env.get(p, kt.DEVICE_IFACE, "Online"), f"{p}: online at the end")

        truth1 = outlet_truth()
        errors = []
        run_got = run_true = 0.0
        for j, (p, dev, o) in enumerate(meters):
            got_wh = ends[j][0] - e0[j]
            true_wh = ends[j][1]
            resets = truth1[j]["counter_resets"] - resets0[j]
            err = got_wh - true_wh
            bound = TOLERANCE * true_wh + sum(reset_bound(w) for w in reset_loads(dev, o)) + end_bound(ends[j][2])
            name = f"{sims[dev]['profile']}@{sims[dev]['address']}[{o}]"
            print(f"# {name}: truth {true_wh:.4f} Wh, kasamond {got_wh:.4f} Wh, error {err:+.4f} Wh "
                  f"({100 * err / true_wh:+.3f} %), {resets} counter resets at load, bound {bound:.4f} Wh", flush=True)
            t.ok(true_wh > 3, f"{name}: the run delivered {true_wh:.1f} Wh")
            t.eq(resets, len(reset_loads(dev, o)), f"{name}: {resets} counter resets as scheduled")
            t.ok(abs(err) <= bound, f"{name}: EnergyTotal within {bound:.4f} Wh of the truth", f"error {err:+.4f} Wh")
            if resets:
                errors.append(err / resets)
            run_got += got_wh
            run_true += true_wh
        mean = sum(errors) / len(errors)
        print(f"# mean error per counter reset {mean:+.4f} Wh over {len(errors)} meters", flush=True)
        # The figure: the energy of the whole run, every meter with
        # its resets and reboots, against the simulator's ground truth.
        run_err = run_got - run_true
        t.ok(abs(run_err) <= TOLERANCE * run_true,
             f"the run's energy, {run_true:.2f} Wh over {len(meters)} meters, within 0.1 % of the truth",
             f"kasamond {run_got:.4f} Wh, error {run_err:+.4f} Wh ({100 * run_err / run_true:+.3f} %)")
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
