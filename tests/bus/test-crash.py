#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""kill -9 at any moment corrupts nothing and loses nothing committed.

Fifteen times: let kasamond record for a random 0.3-2 s, ask for the raw
history (which commits what is buffered), SIGKILL it, start it again on the
same state directory. Each time the store must open, every sample returned
before the kill must still be returned (same times, powers and energies),
and EnergyTotal must not fall below the energy of the committed samples.
Samples taken between the last query and the kill (under a second) may be
lost: they were never committed. But the energy of the whole run must
match the truth (within what 1 Wh counters cannot tell): kasamond picks
the counters up again after every restart."""

import random
import signal
import sys
import time

import kasatest as kt

DEVICES = ["hs110@127.0.0.2", "kp115@127.0.0.3", "hs300@127.0.0.4"]
LOADS = {"hs110": 2500.0, "kp115": 1200.0, "hs300": 400.0}
ROUNDS = 15


def main():
    t = kt.Tap()
    seed = int(time.time())
    print(f"# random seed {seed}", flush=True)
    rng = random.Random(seed)
    with kt.Env(DEVICES, poll_interval=0.5) as env:
        sims = env.sim_devices()
        env.discover(1.5)
        roots = [env.device_path(kt.mac_id(s["mac"])) for s in sims]
        meters = []
        for s in sims:
            if s.get("children"):
                meters += [env.device_path(kt.mac_id(s["mac"], i)) for i in range(len(s["children"]))]
            else:
                meters.append(env.device_path(kt.mac_id(s["mac"])))

        def wait_all_polled(polls=1):
            after = time.time()
            for r in roots:
                env.wait_polled(r, polls, after)

        def counters():
            truth = env.truth()
            return [truth[s["index"]]["outlets"][o]["counter_mwh"] // 1000
                    for s in sims for o in range(len(s.get("children") or [0]))]

        def history(path, start):
            return env.call(path, kt.METER_IFACE, "GetHistory", "tts", (start, 0, "raw"))[0]

        def exact():
            truth = env.truth()
            return [truth[s["index"]]["outlets"][o]["energy_mwh_exact"]
                    for s in sims for o in range(len(s.get("children") or [0]))]

        # A quiet start: the sample just before start_us holds base[p].
        # Every counter is seen to reset from at least 1 Wh at no load, so
        # kasamond knows its position exactly.
        for s in sims:
            env.sim(cmd="set", device=s["index"], load_w=1500)
        env.wait_for(lambda: min(counters()) >= 1, 30, "every counter at 1 Wh")
        for s in sims:
            env.sim(cmd="set", device=s["index"], load_w=0)
        wait_all_polled(2)
        for s in sims:
            env.sim(cmd="fault", device=s["index"], counter_reset=True)
        wait_all_polled(2)
        base = {p: env.get(p, kt.METER_IFACE, "EnergyTotal") for p in meters}
        truth0 = exact()
        start_us = int(time.time() * 1e6)
        for s in sims:
            env.sim(cmd="set", device=s["index"], load_w=LOADS[s["profile"]])

        last_after = dict(base)
        for k in range(1, ROUNDS + 1):
            time.sleep(rng.uniform(0.3, 2.0))
            before = {p: history(p, start_us) for p in meters}
            env.stop_daemon(signal.SIGKILL)
            env.start_daemon()  # waits until it owns its name: the store opened
            t.ok(env.daemon_alive(), f"round {k}: kasamond comes back after SIGKILL")

            for p in meters:
                after = history(p, start_us)
                n = len(before[p])
                # Times, powers and per-sample energies all survive.
                kept = [s[:4] for s in after[:n]] == [s[:4] for s in before[p]] and \
                    [s[4] for s in after[:n]] == [s[4] for s in before[p]]
                t.ok(kept, f"round {k}: {p}: the {n} committed samples are all still there",
                     f"before {before[p][-3:]}, after {after[max(n - 3, 0):n + 1]}")
                times = [s[0] for s in after]
                t.ok(times == sorted(set(times)), f"round {k}: {p}: history times strictly increase")
                committed = base[p] + sum(s[4] for s in before[p])
                total = env.get(p, kt.METER_IFACE, "EnergyTotal")
                t.ok(total >= committed - 1e-9, f"round {k}: {p}: EnergyTotal {total} Wh >= committed {committed} Wh")
                t.ok(total >= last_after[p], f"round {k}: {p}: EnergyTotal never decreases ({last_after[p]} -> {total})")
                last_after[p] = total

        # Recording goes on after the last restart, and the energy counted
        # while kasamond was dead is picked up from the device counters:
        # with the load at 0 at both ends, EnergyTotal grew by the true
        # energy, within what kasamond cannot know of the counters'
        # positions when the load stopped (kt.energy_end_bound_wh); energy
        # lost at a kill would show at once (a second at the lowest load
        # is 0.11 Wh).
        wait_all_polled(2)
        for s in sims:
            env.sim(cmd="set", device=s["index"], load_w=0)
        wait_all_polled(2)
        truth1 = exact()
        loads = [LOADS[s["profile"]] for s in sims for _ in (s.get("children") or [0])]
        for j, p in enumerate(meters):
            after = history(p, start_us)
            t.ok(len(after) > 0 and after[-1][0] > start_us, f"{p}: records after the last restart")
            got = env.get(p, kt.METER_IFACE, "EnergyTotal") - base[p]
            true = (truth1[j] - truth0[j]) / 1000
            bound = kt.energy_end_bound_wh(loads[j], 0.5)
            print(f"# {p}: truth {true:.4f} Wh, EnergyTotal {got:.4f} Wh, error {got - true:+.4f} Wh", flush=True)
            t.ok(abs(got - true) <= bound, f"{p}: EnergyTotal over {ROUNDS} kills is the true energy within {bound:.3f} Wh",
                 f"error {got - true:+.4f} Wh")
        t.eq(env.stop_daemon(signal.SIGTERM), 0, "kasamond still exits cleanly on SIGTERM")
        env.start_daemon()
        t.eq(sorted(p for p in env.objects()), sorted(set(meters) | set(roots)), "every device object is still there")
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
