#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Alerts end to end with kasa-sim: a load that drops to 0 (power-below), a
plug gone offline (offline), a day's energy budget crossed (energy-day), a
day's cost budget crossed (cost-day, with a flat tariff), a strip's outlets over a power threshold; their objects, signals,
Acknowledge(), RemoveAlertRule, an open alert across a restart, and the
structured journal entries of every firing and resolution.

The journal is the test's own: a systemd-journald runs in a mount namespace
of its own where a directory of the test is bound over /run (and /var/log),
and kasamond runs in that namespace too (nsenter), so its sd_journal_send()
reaches that journald, which writes the test's system.journal; the entries
are read back with `journalctl --file`. Nothing of the host's journal is
touched.

The hook: the bus has no systemd here (tests/system would have one), so
the test runs the unit's helper, kasamond-alert-hook ID, itself, as the
unit would: it must read the alert from kasamond and run the rule's program
from the hooks directory with the rule's arguments and the alert in its
environment."""

import glob
import json
import os
import stat
import subprocess
import sys
import time

from gi.repository import Gio

import kasatest as kt

DEVICES = ["hs110@127.0.0.2", "hs300@127.0.0.3"]
ALERT_IFACE = "org.kasamond.Kasa1.Alert"
FIRED = "f194f2d158c04d4f8a321750eec67136"
RESOLVED = "0ba8e0d4cc504ff0b7caceacdac5a990"
SEC = 1000000
FLAT_TARIFF = ('{"format": "kasamond-tariff/1", "name": "flat", "currency": "EUR", '
               '"periods": [{"name": "all", "rate": 30}]}')
JOURNALD = "/lib/systemd/systemd-journald"
JOURNALD_NS = ('mount --bind "$1" /run && mkdir -p /run/systemd/journal && '
               'mount --bind "$2" /var/log && exec "$3"')


class AlertEnv(kt.Env):
    """kt.Env whose kasamond logs to a journald of the test's own."""

    def start_daemon(self, wait=True):
        if "journald" not in self.procs:
            self.jroot = os.path.join(self.tmp, "jroot")
            run, varlog = os.path.join(self.jroot, "run"), os.path.join(self.jroot, "varlog")
            os.makedirs(run)
            os.makedirs(varlog)
            log = open(os.path.join(self.tmp, "journald.log"), "w")
            self.procs["journald"] = subprocess.Popen(
                ["unshare", "--mount", "--propagation=private", "--", "sh", "-c", JOURNALD_NS, "journald-ns", run,
                 varlog, JOURNALD], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
            log.close()
            self.wait_for(lambda: os.path.exists(os.path.join(run, "systemd", "journal", "socket")), 20,
                          "the test's journald listens")
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.address, STATE_DIRECTORY=self.state)
        self.daemon_log = open(os.path.join(self.tmp, "kasamond.log"), "a")
        self.procs["kasamond"] = subprocess.Popen(
            ["nsenter", f"--mount=/proc/{self.procs['journald'].pid}/ns/mnt", "--",
             os.path.join(kt.build_dir(), "daemon", "kasamond"), f"--config={self.config_path}"],
            env=env, stdout=self.daemon_log, stderr=subprocess.STDOUT)
        if wait:
            self.wait_for(self.has_owner, 10, "kasamond owns its bus name")

    def journal(self, message_id):
        files = glob.glob(os.path.join(self.jroot, "run", "log", "journal", "*", "*.journal"))
        if not files:
            return []
        out = subprocess.run(["journalctl", "--no-pager", "-o", "json", *[f"--file={f}" for f in files],
                              f"MESSAGE_ID={message_id}"], capture_output=True, text=True).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]


class Signals:
    def __init__(self, bus):
        self.events = []
        self.bus = bus
        self.ids = [bus.signal_subscribe(None, kt.MANAGER_IFACE, name, kt.MANAGER_PATH, None,
                                         Gio.DBusSignalFlags.NONE, self._on) for name in ("AlertFired", "AlertResolved")]
        self.ids.append(bus.signal_subscribe(None, "org.freedesktop.DBus.ObjectManager", None, kt.MANAGER_PATH, None,
                                             Gio.DBusSignalFlags.NONE, self._on))

    def _on(self, conn, sender, path, iface, member, params):
        self.events.append((member, params.unpack()))

    def of(self, member, alert=None):
        return [p for m, p in self.events if m == member and (alert is None or p[0] == alert)]


def add_rule(env, name, kind, device="", threshold=0.0, duration=0, cooldown=0, hook=()):
    return env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "AddAlertRule", "sssdttas",
                    (name, kind, device, float(threshold), duration, cooldown, list(hook)))[0]


def open_alerts(env):
    return json.loads(env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "ListAlerts")[0])


def alert_of(env, rule, device=None):
    return next((a for a in open_alerts(env) if a["rule"] == rule and (device is None or a["device"] == device)),
                None)


def journal_has(env, message_id, rule, device):
    return [e for e in env.journal(message_id) if e.get("RULE") == rule and e.get("DEVICE_ID") == device]


def main():
    t = kt.Tap()
    with AlertEnv(DEVICES) as env:
        sims = env.sim_devices()
        plug = kt.mac_id(sims[0]["mac"])
        strip = kt.mac_id(sims[1]["mac"])
        outlets = [kt.mac_id(sims[1]["mac"], i) for i in range(len(sims[1].get("children", [])) or 6)]
        env.discover(1.0)
        plug_path = env.device_path(plug)
        sig = Signals(env.bus)
        kt.eventually(t, env, lambda: env.get(plug_path, kt.METER_IFACE, "Power") > 0, 20, "the plug draws power")

        # ---- refused rules ----
        t.eq(env.call_error(kt.MANAGER_PATH, kt.MANAGER_IFACE, "AddAlertRule", "sssdttas",
                            ("x", "power", "", 1.0, 0, 0, []))[0],
             "org.freedesktop.DBus.Error.InvalidArgs", "an unknown rule type is refused")
        t.eq(env.call_error(kt.MANAGER_PATH, kt.MANAGER_IFACE, "AddAlertRule", "sssdttas",
                            ("x", "offline", "0011223344ff", 0.0, 0, 0, []))[0],
             "org.kasamond.Kasa1.Error.NotFound", "an unknown device is refused")
        t.eq(env.call_error(kt.MANAGER_PATH, kt.MANAGER_IFACE, "AddAlertRule", "sssdttas",
                            ("x", "power-above", "", -1.0, 0, 0, []))[0],
             "org.freedesktop.DBus.Error.InvalidArgs", "a negative threshold is refused")
        t.eq(env.call_error(kt.MANAGER_PATH, kt.MANAGER_IFACE, "AddAlertRule", "sssdttas",
                            ("x", "on", "", 0.0, 0, 0, ["/bin/sh", "-c", "id"]))[0],
             "org.freedesktop.DBus.Error.InvalidArgs", "a hook outside the hooks directory is refused")

        # ---- a load that drops to 0 ----
        freezer = add_rule(env, "freezer", "power-below", plug_path, threshold=5, duration=2 * SEC,
                           hook=["record", "one; two", "$HOME"])
        t.eq(env.call_error(kt.MANAGER_PATH, kt.MANAGER_IFACE, "AddAlertRule", "sssdttas",
                            ("freezer", "offline", "", 0.0, 0, 0, []))[0],
             "org.kasamond.Kasa1.Error.AlreadyKnown", "a rule's name is unique")
        rules = json.loads(env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "ListAlertRules")[0])
        t.eq([(r["id"], r["name"], r["kind"], r["device"], r["threshold"], r["duration_usec"], r["hook"])
              for r in rules], [(freezer, "freezer", "power-below", plug, 5.0, 2 * SEC, ["record", "one; two", "$HOME"])],
             "ListAlertRules has the rule, its device by id")
        env.iterate(3)
        t.eq(open_alerts(env), [], "no alert while the freezer draws power")
        env.sim(cmd="set", device=0, load_w=0)
        kt.eventually(t, env, lambda: alert_of(env, freezer), 30, "power-below fires once the load is 0")
        a = alert_of(env, freezer)
        path = a["path"]
        props = env.get_all(path, ALERT_IFACE)
        t.eq((props["Rule"], props["RuleName"], props["Kind"], props["Device"], props["State"]),
             (freezer, "freezer", "power-below", plug_path, "active"), "the Alert object's properties")
        t.ok(props["Value"] < 5 and props["Since"] > 0, "Value is the power that fired it, Since is set", props)
        t.ok(path in env.objects(), "the ObjectManager lists the open alert")
        kt.eventually(t, env, lambda: sig.of("AlertFired", path), 5, "AlertFired was sent")
        t.ok(sig.of("InterfacesAdded", path), "InterfacesAdded was sent for it")
        kt.eventually(t, env, lambda: journal_has(env, FIRED, "freezer", plug), 10,
                      "the firing is in the journal, found by its MESSAGE_ID")
        e = (journal_has(env, FIRED, "freezer", plug) or [{}])[0]
        t.eq((e.get("RULE_ID"), e.get("ALERT_ID"), e.get("RULE_KIND")), (str(freezer), str(props["Id"]), "power-below"),
             "the journal entry names rule, alert and kind")
        t.ok(float(e.get("VALUE", "nan")) < 5, "and the value", e.get("VALUE"))

        # The hook, as its unit runs it.
        hooks = os.path.join(env.tmp, "hooks")
        os.mkdir(hooks)
        out = os.path.join(env.tmp, "hook.out")
        with open(os.path.join(hooks, "record"), "w") as f:
            f.write(f'#!/bin/sh\n{{ printf "%s\\n" "$@"; env | grep ^KASA_ALERT_ | sort; }} > {out}\n')
        os.chmod(os.path.join(hooks, "record"), stat.S_IRWXU)
        p = subprocess.run([os.path.join(kt.build_dir(), "daemon", "kasamond-alert-hook"), f"--hooks-dir={hooks}",
                            str(props["Id"])], env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=env.address),
                           capture_output=True, text=True, timeout=30)
        t.ok(p.returncode == 0, "the hook's helper ran the hook", p.stderr)
        got = open(out).read().splitlines() if os.path.exists(out) else []
        t.eq(got[:2], ["one; two", "$HOME"], "the hook got the rule's arguments as they are, no shell")
        envs = dict(line.split("=", 1) for line in got[2:] if "=" in line)
        t.eq((envs.get("KASA_ALERT_ID"), envs.get("KASA_ALERT_RULE"), envs.get("KASA_ALERT_KIND"),
              envs.get("KASA_ALERT_DEVICE"), envs.get("KASA_ALERT_STATE"), envs.get("KASA_ALERT_PATH")),
             (str(props["Id"]), "freezer", "power-below", plug, "active", path), "and the alert in its environment")
        t.ok(float(envs.get("KASA_ALERT_VALUE", "nan")) < 5 and int(envs.get("KASA_ALERT_SINCE", "0")) == props["Since"],
             "value and since too", envs)
        p = subprocess.run([os.path.join(kt.build_dir(), "daemon", "kasamond-alert-hook"), f"--hooks-dir={hooks}",
                            "999"], env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=env.address),
                           capture_output=True, text=True, timeout=30)
        t.ok(p.returncode != 0 and "999" in p.stderr, "the helper fails for an alert that is not open", p.stderr)

        env.call(path, ALERT_IFACE, "Acknowledge")
        t.eq(env.get(path, ALERT_IFACE, "State"), "acknowledged", "Acknowledge()")
        env.call(path, ALERT_IFACE, "Acknowledge")
        t.ok(True, "Acknowledge() twice is no error")

        # An open alert survives a restart, acknowledged.
        env.stop_daemon()
        env.start_daemon()
        t.eq(env.get(path, ALERT_IFACE, "State"), "acknowledged", "after a restart the alert is still there")

        env.sim(cmd="set", device=0, load_w=60)
        kt.eventually(t, env, lambda: not alert_of(env, freezer), 30, "it resolves when the load is back")
        t.ok(path not in env.objects(), "the ObjectManager no longer lists it")
        kt.eventually(t, env, lambda: sig.of("AlertResolved", path), 5, "AlertResolved was sent")
        t.ok(sig.of("InterfacesRemoved", path), "InterfacesRemoved was sent")
        kt.eventually(t, env, lambda: journal_has(env, RESOLVED, "freezer", plug), 10, "the resolution is in the journal")

        # ---- offline ----
        gone = add_rule(env, "gone", "offline", duration=1 * SEC)
        env.sim(cmd="fault", device=0, hang=True)
        kt.eventually(t, env, lambda: alert_of(env, gone, plug), 60, "offline fires for the plug that hangs")
        t.eq([a["device"] for a in open_alerts(env) if a["rule"] == gone], [plug], "and only for it")
        t.ok(alert_of(env, gone, plug)["value"] >= 1, "Value: the seconds it has been offline", alert_of(env, gone, plug))
        env.sim(cmd="clear", device=0)
        kt.eventually(t, env, lambda: not alert_of(env, gone, plug), 60, "it resolves when the plug is back")
        kt.eventually(t, env, lambda: journal_has(env, FIRED, "gone", plug) and journal_has(env, RESOLVED, "gone", plug),
                      10, "both in the journal")

        # ---- a day's energy budget crossed ----
        today = env.get(plug_path, kt.METER_IFACE, "EnergyToday")
        budget = add_rule(env, "budget", "energy-day", plug, threshold=today + 2)
        env.iterate(2)
        t.eq(alert_of(env, budget), None, "under budget: no alert")
        env.sim(cmd="set", device=0, load_w=3600)  # 1 Wh a second
        kt.eventually(t, env, lambda: alert_of(env, budget), 60, "energy-day fires once the budget is crossed")
        t.ok(alert_of(env, budget)["value"] > today + 2, "its value is over the budget", alert_of(env, budget))
        env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "RemoveAlertRule", "u", (budget,))
        kt.eventually(t, env, lambda: not alert_of(env, budget), 5, "removing the rule resolves its alert")
        t.eq(env.call_error(kt.MANAGER_PATH, kt.MANAGER_IFACE, "RemoveAlertRule", "u", (budget,))[0],
             "org.kasamond.Kasa1.Error.NotFound", "removing it twice: NotFound")
        env.sim(cmd="set", device=0, load_w=60)

        # ---- a day's cost budget crossed ----
        flat = env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "AddTariff", "s", (FLAT_TARIFF,))[0]
        spend = add_rule(env, "spend", "cost-day", plug, threshold=1000)
        env.iterate(2)
        t.eq(alert_of(env, spend), None, "no tariff prices it yet: cost-day waits")
        env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "ActivateTariff", "oaot", (flat, [], 0))
        # Bills are in whole cents: a dear tariff and a big load make them move fast.
        env.sim(cmd="set", device=0, load_w=3600)
        kt.eventually(t, env, lambda: env.get(plug_path, kt.METER_IFACE, "CostToday") == env.get(
            plug_path, kt.METER_IFACE, "CostToday") and env.get(plug_path, kt.METER_IFACE, "CostToday") > 0, 30,
            "the plug's cost today is known")
        env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "RemoveAlertRule", "u", (spend,))
        cost = env.get(plug_path, kt.METER_IFACE, "CostToday")
        spend = add_rule(env, "spend", "cost-day", plug, threshold=cost + 0.5)
        env.iterate(2)
        t.eq(alert_of(env, spend), None, "under the cost budget (a few cents more): no alert")
        # 30 EUR/kWh at 3600 W: 3 cents a second.
        kt.eventually(t, env, lambda: alert_of(env, spend), 60, "cost-day fires once the budget is crossed")
        t.ok((alert_of(env, spend) or {}).get("value", 0) > cost + 0.5, "its value is the cost",
             alert_of(env, spend))
        env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "RemoveAlertRule", "u", (spend,))
        env.sim(cmd="set", device=0, load_w=60)

        # ---- a strip: its outlets ----
        busy = add_rule(env, "busy", "power-above", strip, threshold=0.5)
        kt.eventually(t, env, lambda: alert_of(env, busy), 30, "a strip's rule fires")
        devs = sorted(a["device"] for a in open_alerts(env) if a["rule"] == busy)
        t.ok(devs and all(d in outlets for d in devs) and strip not in devs and plug not in devs,
             "for its outlets only", devs)
        env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "RemoveAlertRule", "u", (busy,))

        # ---- kasactl ----
        def ctl(*args):
            p = subprocess.run([os.path.join(kt.build_dir(), "client", "kasactl"), *args],
                               env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=env.address), capture_output=True,
                               text=True, timeout=60)
            return p.returncode, p.stdout, p.stderr

        rc, out, err = ctl("alert", "add", "lamp-on", "on", plug, "--for=1s", "--cooldown=1h", "--json=short")
        t.ok(rc == 0 and json.loads(out)["name"] == "lamp-on", "kasactl alert add", err)
        lamp = json.loads(out)["id"] if rc == 0 else 0
        rc, out, err = ctl("alert", "add", "lamp-on", "on", "all")
        t.ok(rc != 0 and "exists already" in err, "kasactl alert add: a taken name is refused", err)
        rc, out, err = ctl("alert", "add", "x", "power", "all")
        t.ok(rc != 0 and "Unknown rule type" in err, "kasactl alert add: an unknown kind is refused", err)
        rc, out, err = ctl("alert", "rules")
        t.ok(rc == 0 and "lamp-on" in out and "1h" in out and "gone" in out, "kasactl alert rules", out + err)
        rc, out, err = ctl("alert", "rules", "--json=short")
        t.ok(rc == 0 and {r["name"] for r in json.loads(out)} == {"freezer", "gone", "lamp-on"},
             "kasactl alert rules --json", out + err)
        kt.eventually(t, env, lambda: alert_of(env, lamp, plug), 30, "the plug that is on fires lamp-on")
        lamp_alert = alert_of(env, lamp, plug) or {"id": 0}
        rc, out, err = ctl("alert", "list")
        t.ok(rc == 0 and "lamp-on" in out and "active" in out, "kasactl alert list", out + err)
        rc, out, err = ctl("alert", "show", str(lamp_alert["id"]))
        t.ok(rc == 0 and "lamp-on" in out and plug in out, "kasactl alert show", out + err)
        rc, out, err = ctl("alert", "ack", str(lamp_alert["id"]))
        t.ok(rc == 0 and env.get(lamp_alert["path"], ALERT_IFACE, "State") == "acknowledged", "kasactl alert ack", err)
        rc, out, err = ctl("alert", "list", "--json=short")
        t.ok(rc == 0 and [a["state"] for a in json.loads(out) if a["id"] == lamp_alert["id"]] == ["acknowledged"],
             "kasactl alert list --json", out + err)
        rc, out, err = ctl("alert", "show", "424242")
        t.ok(rc != 0 and "no such open alert" in err, "kasactl alert show of no alert", err)
        rc, out, err = ctl("alert", "remove", "lamp-on")
        t.ok(rc == 0 and not alert_of(env, lamp), "kasactl alert remove by name resolves its alert", err)
        rc, out, err = ctl("alert", "remove", "lamp-on")
        t.ok(rc != 0 and "No alert rule" in err, "kasactl alert remove of no rule", err)
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
