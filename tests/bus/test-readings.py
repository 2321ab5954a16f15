#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Power, Voltage, Current and EnergyTotal on the bus are what the devices
report, for both unit styles: HS110 floats (W, V, A, kWh), KP115 integer
milli-units, HS300 outlets (milli-units, one meter per outlet). kasa-sim
runs with --noise=0, so every reading is known exactly."""

import datetime
import math
import sys
import time

import kasatest as kt

DEVICES = ["hs110@127.0.0.2", "kp115@127.0.0.3", "hs300@127.0.0.4"]
# Loads in W for every step; meter j gets load * (1 + j / 7) rounded to mW,
# so no two meters show the same value.
STEPS = [1234.567, 3600.0, 7.5, 0.4, 0.0]


def llround(x):
    """C's llround for the values here (ties away from zero)."""
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def c_json_real(x):
    """A double as kasa-sim prints it (JSON_REAL_PRECISION(12)) and the
    daemon parses it back."""
    return float(f"{x:.12g}")


def expected(profile, load_mw, relay=True):
    """What the device reports, in the daemon's milli-units (mW, mV, mA),
    computed the way the device computes and rounds it."""
    mains_mv = 230000 if profile == "hs110" else 120000
    p_mw = float(load_mw) if relay else 0.0
    v_mv = float(mains_mv)
    if profile == "hs110":
        # W, V and A as floats with 6 decimals; the daemon scales by 1000.
        power_w = c_json_real(llround(p_mw / 1000.0 * 1e6) / 1e6)
        volt_v = c_json_real(llround(v_mv / 1000.0 * 1e6) / 1e6)
        amp_a = c_json_real(llround(p_mw / v_mv * 1e6) / 1e6)
        return llround(power_w * 1000), llround(volt_v * 1000), llround(amp_a * 1000)
    return llround(p_mw), llround(v_mv), llround(p_mw * 1000.0 / v_mv)


def main():
    t = kt.Tap()
    with kt.Env(DEVICES, sim_args=["--noise=0"]) as env:
        sims = env.sim_devices()
        env.discover(1.5)

        # (path, sim device index, outlet, profile)
        meters = []
        for s in sims:
            if s["profile"] == "hs300":
                meters += [(env.device_path(kt.mac_id(s["mac"], i)), s["index"], i, "hs300")
                           for i in range(len(s["children"]))]
            else:
                meters.append((env.device_path(kt.mac_id(s["mac"])), s["index"], 0, s["profile"]))
        roots = [env.device_path(kt.mac_id(s["mac"])) for s in sims]
        t.eq(len(meters), 8, "8 meters: HS110, KP115 and 6 HS300 outlets")

        def load_of(step, j):
            return llround(step * 1000 * (1 + j / 7))

        def check_readings(what, loads, relays):
            for j, (path, _, outlet, profile) in enumerate(meters):
                m = env.get_all(path, kt.METER_IFACE)
                p, v, c = expected(profile, loads[j], relays[j])
                name = f"{what}: {profile}[{outlet}]"
                t.eq(m["Power"], p / 1000, f"{name} Power is the device's {p / 1000} W")
                t.eq(m["Voltage"], v / 1000, f"{name} Voltage is the nominal {v / 1000} V")
                t.eq(m["Current"], c / 1000, f"{name} Current is the device's {c / 1000} A")

        def wait_all_polled(polls=1):
            after = time.time()
            for r in roots:
                env.wait_polled(r, polls, after)

        for step in STEPS:
            loads = [load_of(step, j) for j in range(len(meters))]
            for j, (_, dev, outlet, _) in enumerate(meters):
                env.sim(cmd="set", device=dev, outlet=outlet, load_w=loads[j] / 1000, relay=True)
            wait_all_polled()
            check_readings(f"load {step} W", loads, [True] * len(meters))

        # Relay off: 0 W and 0 A whatever the load, voltage still there.
        loads = [load_of(100.0, j) for j in range(len(meters))]
        relays = [j % 2 == 0 for j in range(len(meters))]
        for j, (_, dev, outlet, _) in enumerate(meters):
            env.sim(cmd="set", device=dev, outlet=outlet, load_w=loads[j] / 1000, relay=relays[j])
        wait_all_polled()
        check_readings("half of the relays off", loads, relays)
        for j, (path, _, outlet, profile) in enumerate(meters):
            t.eq(env.get(path, kt.DEVICE_IFACE, "On"), relays[j], f"{profile}[{outlet}] On follows the relay")

        # The newest raw sample in the history is the reading shown.
        for j, (path, _, outlet, profile) in enumerate(meters):
            hist = env.call(path, kt.METER_IFACE, "GetHistory", "tts", (int((time.time() - 30) * 1e6), 0, "raw"))[0]
            p = env.get(path, kt.METER_IFACE, "Power")
            t.ok(len(hist) > 0 and hist[-1][1] == p, f"{profile}[{outlet}] last raw sample has the Power shown",
                 f"last sample {hist[-1] if hist else None}, Power {p}")

        # Energy: a window that starts and ends with the load at 0, so both
        # ends are counter values the device shows for good. EnergyTotal is
        # kasamond's estimate of the energy, between the counter and one
        # quantum (1 Wh) above it: it grows by the counter delta within
        # 1 Wh, and by the true energy within 1 Wh.
        for j, (_, dev, outlet, _) in enumerate(meters):
            env.sim(cmd="set", device=dev, outlet=outlet, load_w=0, relay=True)
        wait_all_polled(2)

        def counters():
            truth = env.truth()
            return [truth[dev]["outlets"][outlet]["counter_mwh"] // 1000 for _, dev, outlet, _ in meters]

        def energy(prop):
            return [env.get(path, kt.METER_IFACE, prop) for path, _, _, _ in meters]

        day0 = datetime.date.today()
        c0, e0, today0 = counters(), energy("EnergyTotal"), energy("EnergyToday")
        truth0 = env.truth()
        # HS110 3.6 kW, KP115 1.8 kW, outlets 0.9-1.6 kW: several Wh each.
        high = [3600.0, 1800.0] + [900.0 + 140.0 * i for i in range(6)]
        for j, (_, dev, outlet, _) in enumerate(meters):
            env.sim(cmd="set", device=dev, outlet=outlet, load_w=high[j])
        time.sleep(12)
        for j, (_, dev, outlet, _) in enumerate(meters):
            env.sim(cmd="set", device=dev, outlet=outlet, load_w=0)
        wait_all_polled(2)
        c1, e1, today1 = counters(), energy("EnergyTotal"), energy("EnergyToday")
        truth1 = env.truth()
        same_day = datetime.date.today() == day0

        for j, (_, dev, outlet, profile) in enumerate(meters):
            name = f"{profile}[{outlet}]"
            got = round((e1[j] - e0[j]) * 1000)
            want = (c1[j] - c0[j]) * 1000
            t.ok(want >= 3000, f"{name}: the device counted {want / 1000} Wh (enough to mean something)")
            true = truth1[dev]["outlets"][outlet]["energy_mwh_exact"] - truth0[dev]["outlets"][outlet]["energy_mwh_exact"]
            t.ok(abs(got - want) < 1000, f"{name}: EnergyTotal grew by the device's counter delta within 1 Wh",
                 f"EnergyTotal +{got} mWh, counter +{want} mWh")
            t.ok(abs(got - true) < 1000, f"{name}: EnergyTotal grew by the true energy within 1 Wh",
                 f"EnergyTotal +{got} mWh, truth +{true:.1f} mWh")
            t.ok(not same_day or round((today1[j] - today0[j]) * 1000) == got,
                 f"{name}: EnergyToday grew by the same", f"EnergyToday {today0[j]} -> {today1[j]}")
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
