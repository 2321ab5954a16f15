#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A restart (SIGTERM, start again on the same state directory) keeps
everything: the same objects without a Discover, the raw history recorded
before, EnergyTotal and EnergyToday continuing from where they were, and
the energy the devices counted while kasamond was down."""

import datetime
import signal
import sys
import time

import kasatest as kt

DEVICES = ["hs110@127.0.0.2", "kp115@127.0.0.3", "hs300@127.0.0.4"]
LOADS = {"hs110": 3000.0, "kp115": 1500.0, "hs300": 600.0}


def main():
    t = kt.Tap()
    with kt.Env(DEVICES) as env:
        sims = env.sim_devices()
        env.discover(1.5)
        roots = [env.device_path(kt.mac_id(s["mac"])) for s in sims]
        meters = []  # (path, sim index, outlet)
        for s in sims:
            if s.get("children"):
                meters += [(env.device_path(kt.mac_id(s["mac"], i)), s["index"], i)
                           for i in range(len(s["children"]))]
            else:
                meters.append((env.device_path(kt.mac_id(s["mac"])), s["index"], 0))

        def wait_all_polled(polls=1):
            after = time.time()
            for r in roots:
                env.wait_polled(r, polls, after)

        def set_loads(on):
            for s in sims:
                env.sim(cmd="set", device=s["index"], load_w=LOADS[s["profile"]] if on else 0)

        def counters():
            truth = env.truth()
            return [truth[dev]["outlets"][o]["counter_mwh"] // 1000 for _, dev, o in meters]

        def meter_props(prop):
            return [env.get(p, kt.METER_IFACE, prop) for p, _, _ in meters]

        def history(path, start):
            return env.call(path, kt.METER_IFACE, "GetHistory", "tts", (start, 0, "raw"))[0]

        def exact():
            truth = env.truth()
            return [truth[dev]["outlets"][o]["energy_mwh_exact"] for _, dev, o in meters]

        # Start from load 0 with every counter seen to reset from at least
        # 1 Wh, so that kasamond knows their positions exactly.
        set_loads(True)
        env.wait_for(lambda: min(counters()) >= 1, 30, "every counter at 1 Wh")
        set_loads(False)
        wait_all_polled(2)
        for s in sims:
            env.sim(cmd="fault", device=s["index"], counter_reset=True)
        wait_all_polled(2)
        truth0 = exact()
        day0 = datetime.date.today()
        start_us = int(time.time() * 1e6)
        e0 = meter_props("EnergyTotal")

        set_loads(True)
        time.sleep(5)
        objs_before = env.objects()
        ids_before = {p: o[kt.DEVICE_IFACE]["Id"] for p, o in objs_before.items()}
        hist_before = {p: history(p, start_us) for p, _, _ in meters}
        total_before, today_before = meter_props("EnergyTotal"), meter_props("EnergyToday")

        t.eq(env.stop_daemon(signal.SIGTERM), 0, "kasamond exits 0 on SIGTERM")
        # The devices keep using energy while kasamond is down.
        time.sleep(3)
        env.start_daemon()

        # Right away, before any poll: no Discover, same objects.
        objs_after = env.objects()
        t.eq({p: o[kt.DEVICE_IFACE]["Id"] for p, o in objs_after.items()}, ids_before,
             "the same objects and ids come back from the registry, without Discover")
        t.eq(env.get(kt.MANAGER_PATH, kt.MANAGER_IFACE, "DeviceCount"), len(ids_before), "DeviceCount is the same")
        for p, o in sorted(objs_before.items()):
            for prop in ("Mac", "Model", "Address", "Parent"):
                t.eq(objs_after[p][kt.DEVICE_IFACE][prop], o[kt.DEVICE_IFACE][prop], f"{p}: {prop} kept")
        for (p, _, _), tb, db in zip(meters, total_before, today_before):
            t.ok(kt.METER_IFACE in objs_after[p], f"{p}: still an EnergyMeter")
            total = env.get(p, kt.METER_IFACE, "EnergyTotal")
            t.ok(total >= tb, f"{p}: EnergyTotal continues ({tb} Wh before stop, {total} Wh after start)")
            today = env.get(p, kt.METER_IFACE, "EnergyToday")
            t.ok(today >= db or datetime.date.today() != day0,
                 f"{p}: EnergyToday continues ({db} Wh before stop, {today} Wh after start)")

        for p, _, _ in meters:
            before = hist_before[p]
            after = history(p, start_us)
            t.ok(len(before) >= 3, f"{p}: {len(before)} raw samples were recorded before the restart")
            n = len(before)
            # The energy of a raw sample is relative to the one before; the
            # first may differ (the sample before it is now in range).
            t.eq([s[:4] for s in after[:n]], [s[:4] for s in before],
                 f"{p}: GetHistory(raw) still returns every earlier sample")
            t.eq([s[4] for s in after[1:n]], [s[4] for s in before[1:]], f"{p}: with the same energy")

        # Polling resumes on its own; energy keeps counting.
        wait_all_polled(3)
        set_loads(False)
        wait_all_polled(2)
        truth1, e1 = exact(), meter_props("EnergyTotal")
        today1 = meter_props("EnergyToday")
        for j, (p, _, _) in enumerate(meters):
            t.ok(e1[j] > total_before[j], f"{p}: EnergyTotal grows after the restart ({total_before[j]} -> {e1[j]} Wh)")
            t.ok(today1[j] > today_before[j] or datetime.date.today() != day0,
                 f"{p}: EnergyToday grows after the restart ({today_before[j]} -> {today1[j]} Wh)")
            # The energy used while kasamond was down is in the counter
            # too: EnergyTotal grew by the true energy, within what kasamond
            # cannot know of the counter's position when the load stopped
            # (kt.energy_end_bound_wh), less than the downtime's energy.
            _, dev, o = meters[j]
            got, true = e1[j] - e0[j], (truth1[j] - truth0[j]) / 1000
            bound = kt.energy_end_bound_wh(LOADS[sims[dev]["profile"]], 1.0)
            print(f"# {p}: truth {true:.4f} Wh, EnergyTotal {got:.4f} Wh, error {got - true:+.4f} Wh", flush=True)
            t.ok(abs(got - true) <= bound,
                 f"{p}: EnergyTotal over the run is the true energy within {bound:.3f} Wh, downtime included",
                 f"error {got - true:+.4f} Wh")
            t.eq(history(p, start_us)[-1][0] > hist_before[p][-1][0], True, f"{p}: new samples after the restart")
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
