#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Independent client for kasa-sim, written from the protocol facts alone
(tests/pylib/kasalib.py's own XOR cipher and framing, nothing from common/),
so a bug shared by the codec and the simulator cannot hide.

Usage: sim-client.py PATH-TO-KASA-SIM   (run inside tests/netns-run)
Prints TAP.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "pylib"))
from kasalib import DeviceConn as Device, SimControl as Control, Tap, decrypt, encrypt, frame  # noqa: E402

PORT = 9999
DEVICES = {
    "hs100": "127.0.0.2",
    "hs110": "127.0.0.3",
    "kp115": "127.0.0.4",
    "hs300": "127.0.0.5",
    "kp303": "127.0.0.6",
}


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def check_sysinfo(tap, profile, si):
    common = {"alias": str, "deviceId": str, "hwId": str, "oemId": str, "mac": str,
              "model": str, "hw_ver": str, "sw_ver": str, "feature": str}
    bad = [k for k, t in common.items() if not isinstance(si.get(k), t)]
    tap.ok(not bad and si.get("err_code") == 0, "%s: sysinfo has the common fields" % profile, bad)
    did = si.get("deviceId", "")
    tap.ok(len(did) == 40 and all(c in "0123456789ABCDEF" for c in did),
           "%s: deviceId is 40 hex digits" % profile, did)
    mac = si.get("mac", "")
    tap.ok(len(mac) == 17 and all(len(p) == 2 for p in mac.split(":")) and mac != "00:00:00:00:00:00",
           "%s: mac is a real-looking MAC" % profile, mac)
    tap.ok(is_int(si.get("rssi")) and -100 < si["rssi"] < 0, "%s: rssi in range" % profile, si.get("rssi"))
    type_key = "type" if profile in ("hs100", "hs110") else "mic_type"
    tap.ok(si.get(type_key) == "IOT.SMARTPLUGSWITCH", "%s: %s field" % (profile, type_key))
    metered = profile in ("hs110", "kp115", "hs300")
    tap.ok(("ENE" in si["feature"]) == metered, "%s: feature says meter=%s" % (profile, metered), si["feature"])
    if profile in ("hs300", "kp303"):
        n = 6 if profile == "hs300" else 3
        kids = si.get("children", [])
        ids_ok = [c.get("id") == did + "%02d" % i for i, c in enumerate(kids)]
        tap.ok(len(kids) == n and si.get("child_num") == n and all(ids_ok),
               "%s: %d children with ids deviceId+NN" % (profile, n), kids)
        tap.ok("relay_state" not in si, "%s: no top-level relay_state on a strip" % profile)
    else:
        tap.ok(si.get("relay_state") in (0, 1) and is_int(si.get("on_time")),
               "%s: relay_state and on_time" % profile)


def main():
    tap = Tap()
    sim = sys.argv[1]
    # Fixed, so time.get_timezone has one right answer; kasa-sim and this
    # test read local days in the same zone.
    os.environ["TZ"] = "CET-1CEST,M3.5.0,M10.5.0/3"
    time.tzset()

    vector = frame(b'{"system":{"get_sysinfo":{}}}').hex()
    tap.ok(vector == "0000001dd0f281f88bff9af7d5ef94b6d1b4c09fec95e68fe187e8caf08bf68bf6",
           "own XOR framing matches the published test vector", vector)
    tap.ok(decrypt(encrypt(b"round trip")) == b"round trip", "own XOR decrypt inverts encrypt")

    tmp = tempfile.mkdtemp(prefix="sim-client-")
    ctl_path = os.path.join(tmp, "control")

    # bad arguments and config: exit 2 with a message naming the problem
    bad_config = os.path.join(tmp, "bad.json")
    with open(bad_config, "w") as f:
        json.dump({"devices": [{"profile": "hs110", "address": "127.0.0.2", "lod_w": 5}]}, f)
    for bad_args, word in ((["hs999@127.0.0.2"], "hs999"), (["hs110@127.0.0.300"], "127.0.0.300"),
                           (["--seed=x", "hs110@127.0.0.2"], "--seed"), ([], "no devices"),
                           (["hs110@127.0.0.2", "hs100@127.0.0.2"], "127.0.0.2"),
                           (["--config=" + bad_config], "lod_w")):
        r = subprocess.run([sim] + bad_args, capture_output=True, text=True, timeout=10)
        tap.ok(r.returncode == 2 and word in r.stderr and r.stdout == "",
               "refused with exit 2, naming %r: %s" % (word, " ".join(bad_args)), (r.returncode, r.stderr))
    os.unlink(bad_config)
    r = subprocess.run([sim, "--help"], capture_output=True, text=True, timeout=10)
    tap.ok(r.returncode == 0 and "PROFILE@ADDRESS" in r.stdout and '"truth"' in r.stdout, "--help documents usage")
    args = [sim, "--seed=7", "--control=" + ctl_path] + ["%s@%s" % (p, a) for p, a in DEVICES.items()]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    conns = []
    try:
        line = proc.stdout.readline()
        if not tap.ok(line == "READY\n", "simulator says READY", repr(line)):
            return tap.close()
        ctl = Control(ctl_path)
        dev = {p: Device(a) for p, a in DEVICES.items()}
        conns = list(dev.values())

        # sysinfo from each, on its own address
        info = {}
        for p in DEVICES:
            r = dev[p].call({"system": {"get_sysinfo": {}}})
            info[p] = r["system"]["get_sysinfo"]
            check_sysinfo(tap, p, info[p])
        ids = {si["deviceId"] for si in info.values()}
        macs = {si["mac"] for si in info.values()}
        tap.ok(len(ids) == len(DEVICES) and len(macs) == len(DEVICES), "every device has its own id and MAC")
        listed = ctl(cmd="list")
        tap.ok(listed["ok"] and [d["deviceId"] for d in listed["devices"]] ==
               [info[p]["deviceId"] for p in DEVICES], "control list matches the devices' own ids")

        # a plug: off, read back, on again; several modules in one request
        r = dev["hs110"].call({"system": {"set_relay_state": {"state": 0}}})
        tap.ok(r["system"]["set_relay_state"]["err_code"] == 0, "hs110: set_relay_state off answers 0")
        r = dev["hs110"].call({"system": {"get_sysinfo": {}}, "emeter": {"get_realtime": {}}})
        tap.ok(r["system"]["get_sysinfo"]["relay_state"] == 0 and r["system"]["get_sysinfo"]["on_time"] == 0,
               "hs110: relay reads back off, on_time 0")
        tap.ok(r["emeter"]["get_realtime"]["power"] == 0, "hs110: relay off means 0 W", r["emeter"])
        tap.ok(ctl.truth(1)[0]["relay"] is False, "truth: hs110 relay off")
        dev["hs110"].call({"system": {"set_relay_state": {"state": 1}}})

        # a strip outlet via context
        sid = info["hs300"]["deviceId"]
        ctx = {"child_ids": [sid + "02"]}
        r = dev["hs300"].call({"context": ctx, "system": {"set_relay_state": {"state": 0}}})
        tap.ok(r["system"]["set_relay_state"]["err_code"] == 0, "hs300: set_relay_state with context answers 0")
        kids = dev["hs300"].call({"system": {"get_sysinfo": {}}})["system"]["get_sysinfo"]["children"]
        tap.ok([c["state"] for c in kids] == [1, 1, 0, 1, 1, 1], "hs300: only outlet 2 is off",
               [c["state"] for c in kids])
        rt = dev["hs300"].call({"context": ctx, "emeter": {"get_realtime": {}}})["emeter"]["get_realtime"]
        tap.ok(rt["power_mw"] == 0 and rt.get("slot_id") == 2, "hs300: outlet 2 reads 0 mW", rt)
        t = ctl.truth(3)[0]
        tap.ok([o["relay"] for o in t["outlets"]] == [True, True, False, True, True, True],
               "truth: hs300 outlet relays")
        r = dev["hs300"].call({"context": {"child_ids": ["nonsense"]}, "system": {"set_relay_state": {"state": 0}}})
        tap.ok(r["system"].get("err_code") == -3, "hs300: unknown child id is refused", r)
        r = dev["kp303"].call({"context": {"child_ids": [info["kp303"]["deviceId"] + "00"]},
                               "system": {"set_relay_state": {"state": 0}}})
        kids = dev["kp303"].call({"system": {"get_sysinfo": {}}})["system"]["get_sysinfo"]["children"]
        tap.ok([c["state"] for c in kids] == [0, 1, 1], "kp303: outlet 0 off via context")

        # realtime, float units (HS110 hw1) and milli units (KP115, HS300)
        rt = dev["hs110"].call({"emeter": {"get_realtime": {}}})["emeter"]["get_realtime"]
        floats = all(isinstance(rt.get(k), float) for k in ("power", "voltage", "current", "total"))
        tap.ok(floats and "power_mw" not in rt, "hs110: float units power/voltage/current/total", rt)
        tap.ok(215 < rt["voltage"] < 245, "hs110: voltage near 230 V", rt["voltage"])
        tap.ok(50 < rt["power"] < 70, "hs110: power near the 60 W default", rt["power"])
        tap.ok(abs(rt["current"] - rt["power"] / rt["voltage"]) < 0.001, "hs110: current = P/V", rt)
        rt = dev["kp115"].call({"emeter": {"get_realtime": {}}})["emeter"]["get_realtime"]
        ints = all(is_int(rt.get(k)) for k in ("power_mw", "voltage_mv", "current_ma", "total_wh"))
        tap.ok(ints and "power" not in rt, "kp115: integer milli units", rt)
        tap.ok(110000 < rt["voltage_mv"] < 130000, "kp115: voltage near 120 V", rt["voltage_mv"])
        tap.ok(abs(rt["current_ma"] - rt["power_mw"] * 1000 / rt["voltage_mv"]) <= 1, "kp115: current = P/V", rt)
        r = dev["kp303"].call({"emeter": {"get_realtime": {}}})
        tap.ok(r["emeter"]["get_realtime"]["err_code"] == -1, "kp303: emeter answers -1 module not support", r)
        r = dev["hs100"].call({"nosuch": {"x": {}}, "system": {"nosuch": {}}})
        tap.ok(r["nosuch"]["err_code"] == -1 and r["system"]["nosuch"]["err_code"] == -2,
               "unknown module -1, unknown method -2", r)

        # energy grows with power: 3600 W is 1 Wh per second
        for i in (1, 2):
            tap.ok(ctl(cmd="set", device=i, load_w=3600, relay=True)["ok"], "control: set load 3600 W on %d" % i)
        before = {}
        for p in ("hs110", "kp115"):
            rt = dev[p].call({"emeter": {"get_realtime": {}}})["emeter"]["get_realtime"]
            before[p] = (time.monotonic(), rt["total"] * 1000 if "total" in rt else rt["total_wh"])
        time.sleep(2.5)
        for i, p in ((1, "hs110"), (2, "kp115")):
            rt = dev[p].call({"emeter": {"get_realtime": {}}})["emeter"]["get_realtime"]
            now = time.monotonic()
            wh = rt["total"] * 1000 if "total" in rt else rt["total_wh"]
            elapsed = now - before[p][0]
            grew = wh - before[p][1]
            # whole-Wh resolution: the reading may lag the truth by < 1 Wh at each end
            tap.ok(elapsed - 1.5 <= grew <= elapsed + 1.5, "%s: energy grew %.3f Wh in %.2f s at 3600 W" %
                   (p, grew, elapsed))
            t = ctl.truth(i)[0]
            tap.ok(0 <= t["outlets"][0]["counter_mwh"] / 1000 - wh < 1.5,
                   "%s: reported total matches the truth counter" % p, (wh, t))
        rt = dev["hs110"].call({"emeter": {"get_realtime": {}}})["emeter"]["get_realtime"]
        tap.ok(abs(round(rt["total"], 3) - rt["total"]) < 1e-9, "hs110: total in kWh with 3 decimals",
               rt["total"])

        # day and month statistics
        lt = time.localtime()
        for p, key in (("hs110", "energy"), ("kp115", "energy_wh"), ("hs300", "energy_wh")):
            r = dev[p].call({"emeter": {"get_daystat": {"year": lt.tm_year, "month": lt.tm_mon},
                                        "get_monthstat": {"year": lt.tm_year}}})
            days = r["emeter"]["get_daystat"].get("day_list", [])
            months = r["emeter"]["get_monthstat"].get("month_list", [])
            tap.ok(len(days) >= 1 and days[-1]["day"] == lt.tm_mday and key in days[-1],
                   "%s: daystat has today with %s" % (p, key), r)
            tap.ok(len(months) >= 1 and months[-1]["month"] == lt.tm_mon and key in months[-1],
                   "%s: monthstat has this month with %s" % (p, key), r)
        r = dev["kp115"].call({"emeter": {"get_daystat": {"year": lt.tm_year, "month": lt.tm_mon}}})
        tap.ok(r["emeter"]["get_daystat"]["day_list"][-1]["energy_wh"] >= 2, "kp115: today's energy counted")
        r = dev["hs110"].call({"emeter": {"get_daystat": {}}})
        tap.ok(r["emeter"]["get_daystat"]["err_code"] == -3, "daystat without year/month is refused")

        # erase resets the device counter but not the truth
        r = dev["kp115"].call({"emeter": {"erase_emeter_stat": {}}})
        tap.ok(r["emeter"]["erase_emeter_stat"]["err_code"] == 0, "kp115: erase_emeter_stat answers 0")
        t = ctl.truth(2)[0]
        tap.ok(t["counter_resets"] == 1 and t["energy_mwh"] >= 2000 and t["outlets"][0]["counter_mwh"] < 1000,
               "truth: erase counted, energy kept", t)

        # time
        r = dev["hs100"].call({"time": {"get_time": {}}})["time"]["get_time"]
        tap.ok(r["err_code"] == 0 and r["year"] == lt.tm_year and 1 <= r["mday"] <= 31, "time.get_time", r)

        # the modules real plugs have besides system and emeter
        r = dev["kp115"].call({"schedule": {"get_next_action": {}, "get_rules": {}}, "count_down": {"get_rules": {}},
                               "anti_theft": {"get_rules": {}}, "cnCloud": {"get_info": {}},
                               "time": {"get_timezone": {}}, "netif": {"get_stainfo": {}}})
        tap.ok(r["schedule"]["get_next_action"] == {"type": -1, "err_code": 0}, "schedule.get_next_action: none",
               r["schedule"])
        tap.ok(r["schedule"]["get_rules"] == {"rule_list": [], "version": 2, "enable": 0, "err_code": 0},
               "schedule.get_rules: no rules", r["schedule"])
        tap.ok(r["count_down"]["get_rules"] == {"rule_list": [], "err_code": 0}, "count_down.get_rules: none",
               r["count_down"])
        tap.ok(r["anti_theft"]["get_rules"] == {"rule_list": [], "version": 2, "enable": 0, "err_code": 0},
               "anti_theft.get_rules: none", r["anti_theft"])
        cloud = r["cnCloud"]["get_info"]
        tap.ok(cloud.get("err_code") == 0 and cloud.get("binded") == 0 and cloud.get("username") == "",
               "cnCloud.get_info: not bound", cloud)
        tap.ok(r["time"]["get_timezone"] == {"index": 41, "err_code": 0}, "time.get_timezone: CET is index 41",
               r["time"])
        tap.ok(r["netif"]["get_stainfo"].get("rssi") == info["kp115"]["rssi"] and
               r["netif"]["get_stainfo"].get("err_code") == 0, "netif.get_stainfo: the sysinfo's rssi", r["netif"])
        r = dev["hs100"].call({"time": {"get_time": {}}})["time"]["get_time"]
        dev_t = time.mktime((r["year"], r["month"], r["mday"], r["hour"], r["min"], r["sec"], 0, 0, -1))
        tap.ok(abs(dev_t - time.time()) < 5, "time.get_time is local time in TZ", (r, time.localtime()))

        rule = {"stime_opt": 0, "wday": [1, 0, 0, 1, 1, 0, 0], "smin": 1014, "enable": 1, "repeat": 1,
                "etime_opt": -1, "name": "lights on", "eact": -1, "month": 0, "sact": 1, "year": 0,
                "longitude": 0, "day": 0, "force": 0, "latitude": 0, "emin": 0}
        r = dev["kp115"].call({"schedule": {"add_rule": rule}})["schedule"]["add_rule"]
        rid = r.get("id", "")
        tap.ok(r.get("err_code") == 0 and len(rid) == 32, "schedule.add_rule answers a new id", r)
        got = dev["kp115"].call({"schedule": {"get_rules": {}}})["schedule"]["get_rules"]["rule_list"]
        tap.ok(got == [dict(rule, id=rid)], "schedule.get_rules lists the rule as added", got)
        r = dev["kp115"].call({"schedule": {"edit_rule": dict(rule, id=rid, smin=600),
                                            "set_overall_enable": {"enable": 1}}})["schedule"]
        got = dev["kp115"].call({"schedule": {"get_rules": {}}})["schedule"]["get_rules"]
        tap.ok(r["edit_rule"]["err_code"] == 0 and got["rule_list"][0]["smin"] == 600 and got["enable"] == 1,
               "schedule.edit_rule and set_overall_enable stick", (r, got))
        r = dev["kp115"].call({"schedule": {"edit_rule": dict(rule, id="0" * 32)}})["schedule"]["edit_rule"]
        tap.ok(r == {"err_code": -14, "err_msg": "entry not exist"}, "edit_rule of an unknown id: -14", r)
        bad = dict(rule)
        del bad["smin"]
        r = dev["kp115"].call({"schedule": {"add_rule": bad}})["schedule"]["add_rule"]
        tap.ok(r.get("err_code") == -3, "add_rule without smin: -3", r)
        r = dev["kp115"].call({"schedule": {"delete_rule": {"id": rid}}})["schedule"]["delete_rule"]
        again = dev["kp115"].call({"schedule": {"delete_rule": {"id": rid}}})["schedule"]["delete_rule"]
        got = dev["kp115"].call({"schedule": {"get_rules": {}}})["schedule"]["get_rules"]["rule_list"]
        tap.ok(r["err_code"] == 0 and again["err_code"] == -14 and got == [],
               "schedule.delete_rule removes it, a second time -14", (r, again, got))
        cd = {"enable": 1, "delay": 1800, "act": 1, "name": "turn on"}
        r1 = dev["kp115"].call({"count_down": {"add_rule": cd}})["count_down"]["add_rule"]
        r2 = dev["kp115"].call({"count_down": {"add_rule": cd}})["count_down"]["add_rule"]
        tap.ok(r1.get("err_code") == 0 and r2 == {"err_code": -10, "err_msg": "table is full"},
               "count_down holds one rule: a second is -10 table is full", (r1, r2))
        r = dev["kp115"].call({"count_down": {"delete_all_rules": {}, "get_rules": {}}})["count_down"]
        tap.ok(r["get_rules"]["rule_list"] == [], "count_down.delete_all_rules", r)
        at = {"frequency": 5, "name": "away", "duration": 2, "stime_opt": 0, "smin": 987, "etime_opt": 0,
              "emin": 1047, "repeat": 1, "wday": [0, 0, 1, 0, 0, 0, 1], "enable": 1, "day": 0, "month": 0,
              "year": 0, "latitude": 0, "longitude": 0, "force": 0}
        r = dev["kp115"].call({"anti_theft": {"add_rule": at}})["anti_theft"]["add_rule"]
        got = dev["kp115"].call({"anti_theft": {"get_rules": {}}})["anti_theft"]["get_rules"]["rule_list"]
        tap.ok(r.get("err_code") == 0 and got == [dict(at, id=r.get("id"))], "anti_theft.add_rule stored", got)

        # a strip outlet's rules are its own (context); the strip's without
        kid = {"child_ids": [sid + "01"]}
        r = dev["hs300"].call({"context": kid, "schedule": {"add_rule": rule}})["schedule"]["add_rule"]
        with_ctx = dev["hs300"].call({"context": kid, "schedule": {"get_rules": {}}})
        other = dev["hs300"].call({"context": {"child_ids": [sid + "00"]}, "schedule": {"get_rules": {}}})
        strip = dev["hs300"].call({"schedule": {"get_rules": {}}})
        tap.ok(r.get("err_code") == 0 and len(with_ctx["schedule"]["get_rules"]["rule_list"]) == 1 and
               other["schedule"]["get_rules"]["rule_list"] == [] and strip["schedule"]["get_rules"]["rule_list"] == [],
               "hs300: a rule added with context belongs to that outlet only", (with_ctx, other, strip))
        r = dev["hs300"].call({"context": kid, "system": {"get_sysinfo": {}}, "cnCloud": {"get_info": {}},
                               "schedule": {"get_next_action": {}}})
        tap.ok(r["system"]["get_sysinfo"].get("child_num") == 6 and r["cnCloud"]["get_info"]["err_code"] == 0 and
               r["schedule"]["get_next_action"]["err_code"] == 0,
               "hs300: with context, sysinfo and cloud answer for the strip", r)

        # relay-on time per day (schedule.get_daystat), in minutes
        r = dev["kp115"].call({"schedule": {"get_daystat": {"year": lt.tm_year, "month": lt.tm_mon},
                                            "get_monthstat": {"year": lt.tm_year}}})["schedule"]
        days = r["get_daystat"].get("day_list", [])
        tap.ok(len(days) == 1 and days[0]["day"] == lt.tm_mday and is_int(days[0].get("time")) and
               r["get_monthstat"]["month_list"][0]["month"] == lt.tm_mon,
               "schedule.get_daystat/get_monthstat: today's relay-on minutes", r)
        r = dev["kp303"].call({"schedule": {"get_realtime": {}}})["schedule"]["get_realtime"]
        tap.ok(r == {"err_code": -2, "err_msg": "member not support"}, "schedule.get_realtime: -2 member not support",
               r)

        # alias and LED
        dev["hs100"].call({"system": {"set_dev_alias": {"alias": "Kettle"}, "set_led_off": {"off": 1}}})
        si = dev["hs100"].call({"system": {"get_sysinfo": {}}})["system"]["get_sysinfo"]
        tap.ok(si["alias"] == "Kettle" and si["led_off"] == 1, "hs100: alias and led_off stick")

        # UDP discovery by unicast to each address
        probe = encrypt(b'{"system":{"get_sysinfo":{}}}')
        for p, a in DEVICES.items():
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.settimeout(1)
            got = None
            for _ in range(5):
                u.sendto(probe, (a, PORT))
                try:
                    data, src = u.recvfrom(65535)
                    got = (json.loads(decrypt(data)), src)
                    break
                except socket.timeout:
                    continue
            u.close()
            tap.ok(got is not None and got[1][0] == a and
                   got[0]["system"]["get_sysinfo"]["deviceId"] == info[p]["deviceId"],
                   "%s: discovery answer from %s" % (p, a))

        t = ctl(cmd="truth")
        tap.ok(t["ok"] and len(t["devices"]) == len(DEVICES), "control truth lists every device")
        tap.ok(ctl(cmd="bogus")["ok"] is False, "control refuses an unknown command")
    except Exception as e:  # a crash is a failure, with the reason in the log
        tap.ok(False, "client ran without exceptions", repr(e))
    finally:
        for c in conns:
            c.close()
        proc.terminate()
        try:
            rc = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        tap.ok(rc == 0, "simulator exits cleanly on SIGTERM", rc)
        tap.ok(not os.path.exists(ctl_path), "control socket removed on exit")
        shutil.rmtree(tmp, ignore_errors=True)
    return tap.close()


if __name__ == "__main__":
    sys.exit(main())
