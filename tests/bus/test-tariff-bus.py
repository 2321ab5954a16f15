#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Tariffs and costs over the bus, by direct method calls: kasa-sim plugs
with constant loads; a flat tariff added and activated, GetCost equal to
the recorded energy times the rate within one poll's energy; a tariff
change at T, after which a range before T is still priced with the old
tariff; CostToday on the Manager and the EnergyMeters agreeing with GetCost
for today; a URDB import announced and given back by Describe; two
currencies refused; bad tariff text refused with the JSON path of the fault; a plain
user (real polkitd) denied every tariff change, and free to read costs and
tariffs. kasactl's tariff verbs have a test of their own."""

import json
import math
import os
import sys
import time

import kasatest as kt
from gi.repository import Gio

DEVICES = ["hs110@127.0.0.2", "hs110@127.0.0.3"]
LOADS_W = [3600.0, 1800.0]  # 1 Wh and 0.5 Wh a second
POLL_S = 1.0
# A price high enough that a Wh shows in cents: 100 EUR/kWh is 0.10 EUR/Wh.
RATE_A, RATE_B = 100, 300
TARIFF_IFACE = "org.kasamond.Kasa1.Tariff"
ACCESS_DENIED = "org.freedesktop.DBus.Error.AccessDenied"
INTERACTIVE_REQUIRED = "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"
INVALID_ARGS = "org.freedesktop.DBus.Error.InvalidArgs"
NOT_FOUND = "org.kasamond.Kasa1.Error.NotFound"
IN_USE = "org.kasamond.Kasa1.Error.InUse"


def flat(name, rate):
    return json.dumps({"format": "kasamond-tariff/1", "name": name, "currency": "EUR",
                       "periods": [{"name": "all", "rate": rate}]})


# Runs as the caller: one method call on the test bus, the outcome as JSON.
CALL_SNIPPET = r'''
import json, sys
from gi.repository import Gio, GLib
addr, path, iface, method, sig, args = sys.argv[1:]
bus = Gio.DBusConnection.new_for_address_sync(
    addr, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
    None, None)
params = GLib.Variant("(" + sig + ")", tuple(json.loads(args))) if sig else None
try:
    r = bus.call_sync("org.kasamond.Kasa1", path, iface, method, params, None, Gio.DBusCallFlags.NONE, 60000, None)
    print(json.dumps({"reply": r.unpack()}))
except GLib.Error as e:
    print(json.dumps({"error": Gio.DBusError.get_remote_error(e), "message": e.message}))
'''


def call_as(env, user, path, iface, method, sig="", args=()):
    """("reply", values) or ("error", name, message), called as user."""
    import subprocess
    p = subprocess.run(["runuser", "-u", user, "--", "env", f"DBUS_SYSTEM_BUS_ADDRESS={env.address}",
                        "PYTHONDONTWRITEBYTECODE=1", sys.executable, "-c", CALL_SNIPPET, env.address, path, iface,
                        method, sig, json.dumps(list(args))],
                       capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)
    try:
        out = json.loads(p.stdout)
    except ValueError:
        return ("error", "no-output", f"exit {p.returncode}: {p.stdout}{p.stderr}")
    return ("reply", out["reply"]) if "reply" in out else ("error", out["error"], out["message"])


def manager(env, method, sig=None, args=()):
    return env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, method, sig, args)


def get_cost(env, devices, from_us, to_us, bucket="", tariff=None):
    if tariff is None:
        return json.loads(manager(env, "GetCost", "aotts", (devices, from_us, to_us, bucket))[0])
    return json.loads(manager(env, "GetCostWith", "aottss", (devices, from_us, to_us, bucket, tariff))[0])


def now_us():
    return int(time.time() * 1e6)


def energy_wh(env, paths):
    return sum(env.get(p, kt.METER_IFACE, "EnergyTotal") for p in paths)


def money(s):
    return round(float(s), 2)


def energy_lines_kwh(bill):
    """The home bill's energy to the mWh, from its lines."""
    return sum(float(line["quantity"]) for b in bill["home"]["buckets"] for line in b["lines"]
               if line["kind"] == "energy")


def check_errors(t, env, a):
    bad = json.dumps({"format": "kasamond-tariff/1", "name": "bad", "currency": "EUR",
                      "periods": [{"name": "all", "rate": "cheap"}]})
    r = env.call_error(kt.MANAGER_PATH, kt.MANAGER_IFACE, "AddTariff", "s", (bad,))
    t.ok(r and r[0] == INVALID_ARGS and "periods[0].rate" in r[1], "bad tariff text: InvalidArgs naming the field", r)
    r = env.call_error(kt.MANAGER_PATH, kt.MANAGER_IFACE, "AddTariff", "s", ("{ not json",))
    t.ok(r and r[0] == INVALID_ARGS, "malformed JSON: InvalidArgs", r)
    urdb = json.dumps({"items": [{"name": "net", "energyratestructure": [[{"rate": 0.1}]],
                                  "energyweekdayschedule": [[0] * 24] * 12, "energyweekendschedule": [[0] * 24] * 12,
                                  "usenetmetering": True}]})
    r = env.call_error(kt.MANAGER_PATH, kt.MANAGER_IFACE, "ImportTariff", "s", (urdb,))
    t.ok(r and r[0] == INVALID_ARGS and "usenetmetering" in r[1], "unsupported URDB field: named in the refusal", r)
    r = env.call_error(kt.MANAGER_PATH, kt.MANAGER_IFACE, "RemoveTariff", "o", (a,))
    t.ok(r and r[0] == IN_USE, "an assigned tariff cannot be removed: InUse", r)
    r = env.call_error(kt.MANAGER_PATH, kt.MANAGER_IFACE, "RemoveTariff", "o", ("/org/kasamond/Kasa1/tariff/999",))
    t.ok(r and r[0] == NOT_FOUND, "an unknown tariff: NotFound", r)
    r = env.call_error(kt.MANAGER_PATH, kt.MANAGER_IFACE, "GetCost", "aotts", ([], 0, 0, "week"))
    t.ok(r and r[0] == INVALID_ARGS and "week" in r[1], "an unknown bucket: InvalidArgs", r)
    r = env.call_error(kt.MANAGER_PATH, kt.MANAGER_IFACE, "GetCost", "aotts", ([], now_us(), now_us() - 10**7, ""))
    t.ok(r and r[0] == INVALID_ARGS, "an empty range: InvalidArgs", r)
    r = env.call_error(kt.MANAGER_PATH, kt.MANAGER_IFACE, "GetCost", "aotts",
                       (["/org/kasamond/Kasa1/device/000000000000"], 0, 0, ""))
    t.ok(r and r[0] == NOT_FOUND, "an unknown device: NotFound", r)

    # A tariff never assigned can go, and its object with it.
    extra = manager(env, "AddTariff", "s", (flat("extra", 1),))[0]
    t.ok(extra in env.objects(), "a new tariff is listed by the object manager")
    t.ok(env.call_error(kt.MANAGER_PATH, kt.MANAGER_IFACE, "RemoveTariff", "o", (extra,)) is None,
         "a tariff never assigned is removed")
    t.ok(extra not in env.objects(), "and its object is gone")


def check_urdb(t, env):
    with open(os.path.join(kt.source_dir(), "tests", "daemon", "data", "urdb-rd-tou.json")) as f:
        urdb = f.read()
    added = []
    sid = env.bus.signal_subscribe(None, "org.freedesktop.DBus.ObjectManager", "InterfacesAdded", kt.MANAGER_PATH,
                                   None, Gio.DBusSignalFlags.NONE,
                                   lambda c, s, p, i, m, params: added.append(params.unpack()[0]))
    paths = manager(env, "ImportTariff", "s", (urdb,))[0]
    t.eq(len(paths), 1, "ImportTariff: one tariff per item")
    env.wait_for(lambda: paths[0] in added, 10, "InterfacesAdded of the imported tariff")
    env.bus.signal_unsubscribe(sid)
    t.ok(paths[0] in added, "the object manager announces the new tariff")
    t.eq(env.get(paths[0], TARIFF_IFACE, "Currency"), "USD", "the URDB tariff prices in USD")
    t.ok(env.get(paths[0], TARIFF_IFACE, "ValidFrom") == 1672531200 * 10**6, "its startdate is ValidFrom")
    desc = json.loads(env.call(paths[0], TARIFF_IFACE, "Describe")[0])
    t.ok(desc["source"] == "urdb" and desc["energyratestructure"], "Describe gives the URDB item back", desc)
    again = manager(env, "ImportTariff", "s", (json.dumps(desc),))[0]
    t.eq(env.get(again[0], TARIFF_IFACE, "Name"), desc["name"], "ImportTariff takes Describe's output back")
    return paths[0]


def check_plain_user(t, env, user, a, plugs):
    before = sorted(p for p, i in env.objects().items() if TARIFF_IFACE in i)
    changes = [
        ("AddTariff", "s", (flat("mine", 0.01),)),
        ("ImportTariff", "s", (json.dumps({"name": "u", "energyratestructure": [[{"rate": 0.1}]],
                                           "energyweekdayschedule": [[0] * 24] * 12,
                                           "energyweekendschedule": [[0] * 24] * 12}),)),
        ("RemoveTariff", "o", (a,)),
        ("ActivateTariff", "oaot", (a, [], 0)),
        ("ActivateTariff", "oaot", ("/", [plugs[0]], 0)),
    ]
    for method, sig, args in changes:
        r = call_as(env, user, kt.MANAGER_PATH, kt.MANAGER_IFACE, method, sig, args)
        t.ok(r[0] == "error" and r[1] in (INTERACTIVE_REQUIRED, ACCESS_DENIED), f"plain user: {method} is denied", r)
    after = sorted(p for p, i in env.objects().items() if TARIFF_IFACE in i)
    t.eq(after, before, "plain user: the tariffs are as they were")

    r = call_as(env, user, kt.MANAGER_PATH, kt.MANAGER_IFACE, "GetCost", "aotts", ([], 0, 0, "day"))
    t.ok(r[0] == "reply" and "total" in json.loads(r[1][0]), "plain user: GetCost is open", r)
    r = call_as(env, user, kt.MANAGER_PATH, kt.MANAGER_IFACE, "GetCostWith", "aottss", ([], 0, 0, "", a))
    t.ok(r[0] == "reply", "plain user: GetCostWith is open", r)
    csv = "start,energy_wh\n2024-01-15T00:00:00+01:00,1000\n2024-01-15T01:00:00+01:00,1000\n"
    r = call_as(env, user, kt.MANAGER_PATH, kt.MANAGER_IFACE, "PriceEnergy", "ssss", (flat("x", 0.25), csv,
                                                                                    "Europe/Berlin", ""))
    t.ok(r[0] == "reply" and json.loads(r[1][0])["total"] == "0.50", "plain user: PriceEnergy, 2 kWh at 0.25", r)
    r = call_as(env, user, a, TARIFF_IFACE, "Describe")
    t.ok(r[0] == "reply" and json.loads(r[1][0])["name"] == "A", "plain user: Describe of a tariff is open", r)
    r = call_as(env, user, kt.MANAGER_PATH, "org.freedesktop.DBus.Properties", "Get", "ss",
                (kt.MANAGER_IFACE, "CostToday"))
    t.ok(r[0] == "reply", "plain user: reads CostToday", r)


def main():
    t = kt.Tap()
    tag = __import__("os").getpid()
    start_us = now_us() - 60 * 10**6
    with kt.system_user(f"kasatf{tag}u") as plain_user, \
            kt.Env(DEVICES, poll_interval=POLL_S, polkit=True) as env:
        sims = env.sim_devices()
        plugs = [env.device_path(kt.mac_id(s["mac"])) for s in sims]
        env.wait_for(lambda: all(p in env.objects() for p in plugs), 20, "both plugs are known")
        t.eq(env.get(kt.MANAGER_PATH, kt.MANAGER_IFACE, "Currency"), "", "no tariff: no currency")
        t.ok(math.isnan(env.get(kt.MANAGER_PATH, kt.MANAGER_IFACE, "CostToday")), "no tariff: CostToday is NaN")
        t.ok(math.isnan(env.get(plugs[0], kt.METER_IFACE, "CostToday")), "no tariff: a meter's CostToday is NaN")
        r = env.call_error(kt.MANAGER_PATH, kt.MANAGER_IFACE, "GetCost", "aotts", ([], 0, 0, ""))
        t.ok(r and r[0] == NOT_FOUND, "no tariff: GetCost says so", r)

        a = manager(env, "AddTariff", "s", (flat("A", RATE_A),))[0]
        t.eq(env.get(a, TARIFF_IFACE, "Name"), "A", "AddTariff: the object has the tariff's name")
        t.eq(env.get(a, TARIFF_IFACE, "Currency"), "EUR", "AddTariff: and its currency")
        t.eq(env.get(a, TARIFF_IFACE, "Active"), False, "not active before ActivateTariff")
        manager(env, "ActivateTariff", "oaot", (a, [], start_us))
        t.eq(env.get(a, TARIFF_IFACE, "Active"), True, "active after ActivateTariff")
        desc = json.loads(env.call(a, TARIFF_IFACE, "Describe")[0])
        t.ok(desc["active"] and desc["assignments"] == [{"device": None, "since": start_us // 60000000 * 60000000}],
             "Describe lists the home's assignment", desc)
        again = manager(env, "AddTariff", "s", (json.dumps(desc),))[0]
        t.eq(json.loads(env.call(again, TARIFF_IFACE, "Describe")[0])["periods"], desc["periods"],
             "Describe's output is taken back by AddTariff")
        manager(env, "RemoveTariff", "o", (again,))

        log = env.watch_properties()
        for i, w in enumerate(LOADS_W):
            env.sim(cmd="set", device=i, load_w=w)
        load_start = time.time()
        # The change is at a whole minute (ActivateTariff takes `since` to
        # the minute), a few seconds into the load and in the past.
        env.wait_for(lambda: (time.time() // 60 * 60) - load_start >= 4 and time.time() % 60 >= 2, 90,
                     "a minute's start a little after the load's")
        t_change_us = int(time.time() // 60 * 60 * 1e6)
        b = manager(env, "AddTariff", "s", (flat("B", RATE_B),))[0]
        manager(env, "ActivateTariff", "oaot", (b, [], t_change_us))
        t.eq((env.get(a, TARIFF_IFACE, "Active"), env.get(b, TARIFF_IFACE, "Active")), (False, True),
             "the new tariff is active, the old one not")
        env.iterate(8 * POLL_S)
        for i in range(len(LOADS_W)):
            env.sim(cmd="set", device=i, load_w=0)
        # Wait until the energy stands still: two polls without change.
        last = [None]

        def settled():
            env.wait_polled(plugs[0], polls=2)
            e = energy_wh(env, plugs)
            ok = e == last[0]
            last[0] = e
            return ok
        env.wait_for(settled, 60, "the energy stands still")
        total_wh = energy_wh(env, plugs)

        cost = get_cost(env, [], start_us, 0)
        kwh = float(cost["energy_kwh"])
        t.ok(abs(kwh * 1000 - total_wh) <= sum(LOADS_W) * POLL_S / 3600 + 1,
             f"GetCost's energy {kwh} kWh is the meters' {total_wh} Wh within a poll's", cost)
        before = get_cost(env, [], start_us, t_change_us)
        after = get_cost(env, [], t_change_us, 0)
        e_before, e_after = energy_lines_kwh(before), energy_lines_kwh(after)
        t.ok(e_before > 0.002 and e_after > 0.002, f"energy both before ({e_before}) and after ({e_after}) the change")
        t.ok(abs(money(before["total"]) - e_before * RATE_A) <= 0.005 + 1e-6 * RATE_A,
             f"before the change: {e_before} kWh x {RATE_A} = {before['total']}", before)
        t.ok(abs(money(after["total"]) - e_after * RATE_B) <= 0.005 + 1e-6 * RATE_B,
             f"after the change: {e_after} kWh x {RATE_B} = {after['total']}", after)
        t.ok(abs(money(cost["total"]) - money(before["total"]) - money(after["total"])) <= 0.015,
             f"the whole range is each part priced with its tariff ({cost['total']})", cost)
        with_a = get_cost(env, [], start_us, t_change_us, tariff=a)
        t.eq(with_a["total"], before["total"], "a range before the change costs what the old tariff says")
        with_b = get_cost(env, [], start_us, t_change_us, tariff=flat("B", RATE_B))
        t.ok(money(with_b["total"]) > money(before["total"]), "what-if with the new tariff's text costs more",
             with_b)
        t.eq(len(cost["devices"]), 2, "GetCost of every device lists both plugs")
        # Each line is rounded to the cent: the device bills and the
        # home's differ by at most half a cent per line on either side.
        lines = sum(len(b["lines"]) for d in cost["devices"] + [cost["home"]] for b in d["buckets"])
        t.ok(abs(sum(money(d["total"]) for d in cost["devices"]) - money(cost["total"])) <= 0.005 * lines + 1e-9,
             "the devices' bills add up to the total (a flat tariff)", cost)
        one = get_cost(env, [plugs[1]], start_us, 0)
        t.eq([d["id"] for d in one["devices"]], [kt.mac_id(sims[1]["mac"])], "GetCost of one device")
        t.eq(one["total"], cost["devices"][1]["total"], "that device's bill is the same either way")
        days = get_cost(env, [], start_us, 0, "day")
        t.ok(days["buckets"] and abs(sum(money(b["total"]) for b in days["buckets"]) - money(days["total"])) < 0.005,
             "by day: the buckets add up to the total", days)

        # Signalled while the energy grew: rising, at most once a round.
        signalled = log.values(kt.MANAGER_PATH, kt.MANAGER_IFACE, "CostToday")
        t.ok(len(signalled) >= 2 and signalled == sorted(signalled), "Manager.CostToday was signalled, rising",
             signalled)
        t.ok(len(log.values(plugs[0], kt.METER_IFACE, "CostToday")) >= 2, "EnergyMeter.CostToday was signalled")
        log.close()

        # CostToday agrees with GetCost of today, once a round has run
        # with the energy standing still.
        midnight = int(time.mktime(time.localtime()[:3] + (0, 0, 0, 0, 0, -1)) * 1e6)
        today = get_cost(env, [], midnight, 0)
        kt.eventually(t, env, lambda: abs(env.get(kt.MANAGER_PATH, kt.MANAGER_IFACE, "CostToday") -
                                          money(today["total"])) < 0.005, 20,
                      f"Manager.CostToday is GetCost of today ({today['total']})")
        t.eq(env.get(kt.MANAGER_PATH, kt.MANAGER_IFACE, "Currency"), "EUR", "Manager.Currency is the tariff's")
        month = env.get(kt.MANAGER_PATH, kt.MANAGER_IFACE, "CostMonth")
        t.ok(month >= env.get(kt.MANAGER_PATH, kt.MANAGER_IFACE, "CostToday") - 0.005, "CostMonth >= CostToday")
        for i, p in enumerate(plugs):
            dev = [d for d in today["devices"] if d["id"] == kt.mac_id(sims[i]["mac"])][0]
            t.ok(abs(env.get(p, kt.METER_IFACE, "CostToday") - money(dev["total"])) < 0.005,
                 f"plug {i}: EnergyMeter.CostToday is its GetCost of today ({dev['total']})")

        # A device of its own tariff from now on: signalled, and priced so.
        log = env.watch_properties()
        c = manager(env, "AddTariff", "s", (flat("C", 1),))[0]
        manager(env, "ActivateTariff", "oaot", (c, [plugs[0]], 0))
        t.eq(env.get(c, TARIFF_IFACE, "Devices"), [plugs[0]], "a device's own tariff lists it")
        t.eq(env.get(c, TARIFF_IFACE, "Active"), False, "and is not the home's")
        env.iterate(1.0)
        t.ok([e for e in log.of(c, TARIFF_IFACE) if "Devices" in e[3]], "the tariff object signals its Devices",
             log.events[-5:])
        manager(env, "ActivateTariff", "oaot", ("/", [plugs[0]], 0))
        t.eq(env.get(c, TARIFF_IFACE, "Devices"), [], "given back to the home's tariff")
        log.close()

        usd = check_urdb(t, env)
        manager(env, "ActivateTariff", "oaot", (usd, [plugs[1]], 0))
        r = env.call_error(kt.MANAGER_PATH, kt.MANAGER_IFACE, "GetCost", "aotts", ([], 0, 0, ""))
        t.ok(r and r[0] == INVALID_ARGS and "EUR" in r[1] and "USD" in r[1],
             "a device priced in USD and the home in EUR: refused, naming both", r)
        kt.eventually(t, env, lambda: math.isnan(env.get(kt.MANAGER_PATH, kt.MANAGER_IFACE, "CostToday")), 10,
                      "and CostToday is unknown meanwhile")
        manager(env, "ActivateTariff", "oaot", ("/", [plugs[1]], 0))
        check_errors(t, env, a)
        check_plain_user(t, env, plain_user, a, plugs)
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
