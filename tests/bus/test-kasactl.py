#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""kasactl against kasamond on a private bus: every verb in human and JSON
form (golden files for layouts, with the readings that move masked), no
escape codes unless on a terminal, each error path with its exit status,
the man page and the bash completion. --json prints the daemon's
Describe() objects, so the tests compare with those.

KASA_UPDATE_GOLDEN=1 rewrites the golden files instead of comparing."""

import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import kasatest as kt

DEVICES = ["hs100@127.0.0.2", "hs110@127.0.0.3", "kp115@127.0.0.4", "hs300@127.0.0.5", "kp303@127.0.0.6"]
GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")
KASACTL = os.path.join(kt.build_dir(), "client", "kasactl")
MAN_PAGE = os.path.join(kt.build_dir(), "man", "kasactl.1")
# What moves between two reads of Describe(): every poll.
MOVING = ("last_seen", "rssi", "meter")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")


class Ctl:
    def __init__(self, env):
        self.env = env

    def environ(self, **extra):
        e = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.env.address, TZ="UTC", LC_ALL="C", TERM="xterm")
        e.pop("NO_COLOR", None)
        e.update(extra)
        return e

    def run(self, *args, user=None, **extra):
        cmd = [KASACTL, *args]
        if user:
            cmd = ["runuser", "-u", user, "--", *cmd]
        p = subprocess.run(cmd, env=self.environ(**extra), capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout, p.stderr

    def json(self, *args):
        rc, out, err = self.run("--json=short", *args)
        try:
            return rc, json.loads(out)
        except ValueError:
            return rc, {"unparsed": out, "stderr": err}

    def run_pty(self, *args, **extra):
        """Runs with stdout on a terminal; returns (rc, output)."""
        master, slave = pty.openpty()
        p = subprocess.Popen([KASACTL, *args], env=self.environ(**extra), stdin=subprocess.DEVNULL,
                             stdout=slave, stderr=subprocess.PIPE)
        os.close(slave)
        out = read_until(master, lambda b: False, 60, p)
        os.close(master)
        rc = p.wait(30)
        p.stderr.close()
        return rc, out.decode(errors="replace")


def read_until(fd, done, timeout, proc=None):
    """Reads fd until done(data) or EOF; the timeout only guards a hang."""
    data = b""
    end = time.monotonic() + timeout
    while not done(data) and time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if not r:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the terminal's other end is closed
            break
        if not chunk:
            break
        data += chunk
    return data


def mask(text):
    text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "<TIME>", text)
    text = re.sub(r"(Energy (today|total): ).*", r"\1<ENERGY>", text)
    return text


def golden(t, name, text):
    path = os.path.join(GOLDEN, name)
    if os.environ.get("KASA_UPDATE_GOLDEN"):
        with open(path, "w") as f:
            f.write(text)
    with open(path) as f:
        want = f.read()
    t.ok(text == want, f"golden {name}", "--- got ---\n" + text + "--- want ---\n" + want)


def test_usage(t, ctl):
    rc, verbs, _ = ctl.run("--list-verbs")
    verbs = verbs.splitlines()
    t.eq(verbs, ["status", "list", "show", "on", "off", "toggle", "rename", "discover", "add", "remove",
                 "history", "energy", "backfill", "watch", "token", "countdown", "schedule", "sun", "costs",
                 "tariff list", "tariff show", "tariff add", "tariff import", "tariff remove", "tariff activate", "tariff price",
                 "export", "backup", "restore", "alert list", "alert show", "alert add", "alert remove",
                 "alert ack", "alert rules", "help"], "--list-verbs lists the verb table")
    rc, out, _ = ctl.run("--help")
    t.ok(rc == 0 and all(re.search(rf"^  {v}\b", out, re.M) for v in verbs), "--help shows every verb")
    t.ok("__complete" not in out, "--help hides the completion helper")
    for args, what in ((["frob"], "unknown verb"), (["show"], "too few arguments"),
                       (["show", "a", "b"], "too many arguments"), (["--json=yaml"], "bad --json"),
                       (["--frob"], "unknown option"), (["discover", "--timeout=100"], "bad --timeout"),
                       (["history", "x", "--resolution=second"], "bad --resolution"),
                       (["energy", "--by=year"], "bad --by"),
                       (["history", "x", "--since=soon"], "bad --since"),
                       (["history", "x", "--since=now", "--until=-1h"], "--since after --until")):
        rc, out, err = ctl.run(*args)
        t.ok(rc == 2 and err.strip(), f"usage error exits 2: {what}", f"rc={rc} err={err!r}")

    rc, out, err = ctl.run("show", "--help")
    t.ok(rc == 0 and out.startswith("kasactl [OPTIONS...] show DEV\n") and "--json" in out and
         "--since" not in out and "ADDRESS:PORT" in out, "VERB --help prints that verb's help", out + err)
    rc2, out2, _ = ctl.run("help", "show")
    t.ok(rc2 == 0 and out2 == out, "help VERB prints the same", out2)
    rc, out, _ = ctl.run("help")
    rc2, out2, _ = ctl.run("--help")
    t.ok(rc == 0 and out == out2 and "Commands:" in out, "help without a verb is --help", out)
    rc, out, err = ctl.run("help", "frob")
    t.ok(rc == 2 and "frob" in err, "help of an unknown verb exits 2", err)
    rc, out, err = ctl.run("history", "--help")
    t.ok(rc == 0 and "--since=TIME" in out and "--resolution" in out and "--by" not in out and
         "--timeout" not in out, "history --help lists only its options", out)
    for args, opt in ((["list", "--since=today"], "--since"), (["show", "x", "--by=day"], "--by"),
                      (["on", "x", "--no-legend"], "--no-legend"), (["status", "--timeout=1"], "--timeout")):
        rc, out, err = ctl.run(*args)
        t.ok(rc == 2 and opt in err and "does not apply" in err and f"{args[0]} --help" in err,
             f"an option that does not apply is an error: {' '.join(args)}", f"rc={rc} err={err!r}")
    rc, out, err = ctl.run("status", "--json")
    t.ok(rc == 2 and "pretty, short or off" in err, "--json without a value lists the values", err)
    rc, out, err = ctl.run("--frob")
    t.ok(rc == 2 and "--frob" in err and "--help" in err, "an unknown option points to --help", err)
    rc, out, err = ctl.run("show", "a", "bee")
    t.ok(rc == 2 and "'bee'" in err, "too many arguments names the extra one", err)


    # A group of verbs: "tariff list", "tariff show", ...
    rc, out, err = ctl.run("tariff")
    t.ok(rc == 2 and "'kasactl tariff' needs a command: list, show, add, import, remove, activate, price." in err,
         "a group without its verb lists the group's verbs (2)", err)
    rc, out, err = ctl.run("tariff", "frob")
    t.ok(rc == 2 and "'kasactl tariff' needs a command" in err, "an unknown verb of a group (2)", err)
    rc, out, _ = ctl.run("help", "tariff")
    rc2, out2, _ = ctl.run("tariff", "--help")
    t.ok(rc == 0 and out == out2 and out.startswith("kasactl [OPTIONS...] tariff COMMAND ...") and
         "tariff price FILE" in out and "  show DEV" not in out, "help GROUP and GROUP --help list the group", out)
    rc, out, _ = ctl.run("tariff", "price", "--help")
    rc2, out2, _ = ctl.run("help", "tariff", "price")
    t.ok(rc == 0 and out == out2 and out.startswith("kasactl [OPTIONS...] tariff price FILE\n") and
         "--energy=CSV" in out and "--since" not in out, "a group's verb has its own help", out)
    for args, opt in ((["tariff", "list", "--since=today"], "--since"), (["costs", "--energy=x.csv"], "--energy"),
                      (["tariff", "show", "1", "--tariff=x"], "--tariff")):
        rc, out, err = ctl.run(*args)
        t.ok(rc == 2 and opt in err and "does not apply" in err and f"{' '.join(args[:2 if args[0] == 'tariff' else 1])} --help" in err,
             f"an option that does not apply is an error: {' '.join(args)}", f"rc={rc} err={err!r}")
    rc, out, err = ctl.run("costs", "--by=year")
    t.ok(rc == 2 and "day or month" in err, "costs --by=year is a usage error", err)
    rc, out, err = ctl.run("tariff", "show")
    t.ok(rc == 2 and "kasactl tariff show ID" in err, "too few arguments of a group's verb", err)


def test_layouts(t, ctl):
    rc, out, err = ctl.run("list")
    t.eq(rc, 0, "list exits 0")
    golden(t, "kasactl-list.txt", mask(out))
    rc, out, _ = ctl.run("status")
    golden(t, "kasactl-status.txt", mask(out))
    rc2, out2, _ = ctl.run()
    t.ok(rc2 == 0 and mask(out2) == mask(out), "no verb runs status")
    rc, out, _ = ctl.run("list", "--no-legend")
    t.ok(rc == 0 and "ID" not in out and "listed" not in out and len(out.splitlines()) == 14,
         "--no-legend drops header and footer", out)
    rc, out, _ = ctl.run("show", "sim hs100")
    golden(t, "kasactl-show-plug.txt", mask(out))
    rc, out, _ = ctl.run("show", "127.0.0.3")
    golden(t, "kasactl-show-meter.txt", mask(out))
    rc, out, _ = ctl.run("show", "SIM HS3")
    golden(t, "kasactl-show-strip.txt", mask(out))
    rc, by_addr, _ = ctl.run("show", "127.0.0.4")
    for name in ("127.0.0.4:9999", "127.0.0.4:09999"):
        rc, out, err = ctl.run("show", name)
        t.ok(rc == 0 and mask(out) == mask(by_addr) and "Sim kp115 2" in out, f"show {name}: ADDRESS:PORT",
             out + err)
    rc, out, err = ctl.run("show", "127.0.0.4:9998")
    t.eq(rc, 3, "show ADDRESS:PORT with another port finds nothing (3)")
    rc, out, err = ctl.run("history", "127.0.0.4:9999", "--resolution=raw", "--since=-10min")
    t.ok(rc == 0 and "samples" in out, "history takes ADDRESS:PORT too", out + err)


def stable(o):
    """A Describe() object without what moves with every poll."""
    if isinstance(o, list):
        return [stable(x) for x in o]
    if isinstance(o, dict):
        return {k: stable(v) for k, v in o.items() if k not in MOVING}
    return o


def describe(env, path=None):
    if path is None:
        return json.loads(env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "Describe")[0])
    return json.loads(env.call(path, kt.DEVICE_IFACE, "Describe")[0])


def test_json(t, ctl, env, ids, all_ids):
    rc, devs = ctl.json("list")
    t.ok(rc == 0 and isinstance(devs, list) and sorted(d["id"] for d in devs) == sorted(all_ids),
         "list --json: every device", devs)
    t.eq(stable(devs), stable(describe(env)["devices"]), "list --json: the devices of Manager.Describe()")
    t.ok(all(set(d) == set(describe(env, d["path"])) for d in devs),
         "list --json: each device has the fields of its Device.Describe()")

    rc, st = ctl.json("status")
    t.eq(stable(st), stable(describe(env)), "status --json: Manager.Describe()")
    t.eq(st.get("total_power"), 310.0, "status --json: total power of the simulated loads")
    rc, out, _ = ctl.run("--json=pretty", "status")
    t.ok(rc == 0 and len(out.splitlines()) > 10 and json.loads(out) is not None, "--json=pretty is indented")
    rc, out, _ = ctl.run("--json=short", "status")
    t.eq(len(out.splitlines()), 1, "--json=short is one line")
    rc, out, _ = ctl.run("--json=off", "status")
    t.ok(out.startswith(" Total power:"), "--json=off prints the table")

    path = env.device_path(ids["hs110"])
    rc, d = ctl.json("show", "sim hs110")
    t.eq(stable(d), stable(describe(env, path)), "show --json: Device.Describe()")
    rc, out, _ = ctl.run("--json=short", "show", "sim hs110")
    t.ok(rc == 0 and "HS110(EU)" in out and not re.search(r"\d\.\d{13,}", out),
         "show --json: readings without binary noise", out)


def test_offline(t, ctl, env, ids):
    path = env.device_path(ids["hs110"])
    env.sim(cmd="fault", device="127.0.0.3", hang=True)
    try:
        env.wait_for(lambda: env.get(path, kt.DEVICE_IFACE, "Online") is False, 30, "hs110 goes offline")
        rc, out, err = ctl.run("show", "sim hs110")
        t.ok(rc == 0 and re.search(r"^ +Power: -$", out, re.M) and re.search(r"^ +Voltage: -$", out, re.M) and
             re.search(r"^ +Current: -$", out, re.M) and "Online: no" in out,
             "show: an offline device has no power, voltage or current", out + err)
        rc, out, err = ctl.run("list")
        row = next((line for line in out.splitlines() if line.startswith(ids["hs110"])), "")
        t.ok(rc == 0 and row.split()[-2:] == ["no", "-"], "list: an offline device's power is -", out)
        rc, out, err = ctl.run("status")
        row = next((line for line in out.splitlines() if line.startswith("Sim hs110")), "")
        t.ok(rc == 0 and row.split()[-2:] == ["no", "-"], "status: an offline device's power is -", out)
        rc, d = ctl.json("show", "sim hs110")
        t.ok(rc == 0 and d == describe(env, path) and d["online"] is False,
             "show --json of an offline device: Device.Describe() as it is", d)
    finally:
        env.sim(cmd="clear", device="127.0.0.3")
    env.wait_for(lambda: env.get(path, kt.DEVICE_IFACE, "Online") is True, 30, "hs110 is back")


def test_colors(t, ctl):
    verbs = [["status"], ["list"], ["show", "sim hs110"], ["energy"], ["history", "sim kp", "--resolution=raw"]]
    for v in verbs:
        rc, out, err = ctl.run(*v)
        t.ok("\x1b" not in out + err, f"no escape codes when piped: {' '.join(v)}")
    rc, out = ctl.run_pty("list")
    t.ok(rc == 0 and "\x1b[" in out, "colour on a terminal", out)
    rc, out = ctl.run_pty("list", NO_COLOR="1")
    t.ok(rc == 0 and "\x1b" not in out, "no colour with NO_COLOR", out)
    rc, out = ctl.run_pty("list", TERM="dumb")
    t.ok(rc == 0 and "\x1b" not in out, "no colour with TERM=dumb", out)
    rc, out = ctl.run_pty("--json=pretty", "list")
    t.ok(rc == 0 and "\x1b" not in out, "no colour with --json", out)


def test_switch(t, ctl, env, ids):
    plug = env.device_path(ids["hs110"])
    rc, out, err = ctl.run("off", "sim hs110")
    t.ok(rc == 0 and out == "" and env.get(plug, kt.DEVICE_IFACE, "On") is False, "off switches off, quietly",
         err)
    rc, out, err = ctl.run("on", "SIM HS110 1", "127.0.0.4")
    t.ok(rc == 0 and env.get(plug, kt.DEVICE_IFACE, "On") is True, "on takes several devices", err)
    rc, out, err = ctl.run("toggle", ids["hs110"])
    t.ok(rc == 0 and out == "Sim hs110 1 is now off.\n" and env.get(plug, kt.DEVICE_IFACE, "On") is False,
         "toggle says the new state", out + err)
    rc, res = ctl.json("toggle", ids["hs110"], ids["hs300"] + "_02")
    t.eq(res, [{"id": ids["hs110"], "alias": "Sim hs110 1", "on": True},
               {"id": ids["hs300"] + "_02", "alias": "Outlet 3", "on": False}], "toggle --json")
    rc, res = ctl.json("on", ids["hs300"] + "_02")
    t.eq(res, [{"id": ids["hs300"] + "_02", "alias": "Outlet 3", "on": True}], "on --json")
    rc, out, err = ctl.run("off", "sim hs110", "nosuch")
    t.ok(rc == 3 and env.get(plug, kt.DEVICE_IFACE, "On") is True, "a bad name among several switches nothing")

    rc, out, err = ctl.run("rename", "127.0.0.2", "Desk lamp")
    t.ok(rc == 0 and env.get(env.device_path(ids["hs100"]), kt.DEVICE_IFACE, "Alias") == "Desk lamp",
         "rename stores the name", err)
    rc, out, _ = ctl.run("show", "desk")
    t.ok(rc == 0 and "Name: Desk lamp" in out, "the new name finds the device by prefix")
    rc, res = ctl.json("rename", "desk", "Sim hs100 0")
    t.eq(res, {"id": ids["hs100"], "alias": "Sim hs100 0"}, "rename --json")
    rc, out, err = ctl.run("rename", "127.0.0.2", "x" * 40)
    t.ok(rc == 2 and "Failed to rename" in err, "rename refuses a name too long (2)", err)


def test_devices(t, ctl, env, ids):
    rc, out, err = ctl.run("discover", "--timeout=0.5")
    t.ok(rc == 0 and out.rstrip().endswith("14 devices answered, 0 new.") and ids["kp303"] in out,
         "discover lists what answered, none new", out + err)
    lines = out.splitlines()
    t.ok(lines[0].split()[-1] == "NEW" and re.search(r"^\S+_00 +[|`]-Outlet 1 ", out, re.M) and
         all(line.split()[-1] == "no" for line in lines[1:15]), "discover: outlets below their strip", out)
    rc, res = ctl.json("discover", "--timeout=0.5")
    t.ok(rc == 0 and len(res) == 14 and all(stable(d) == stable(describe(env, d["path"])) for d in res),
         "discover --json: the Describe() object of each", res)

    rc, out, err = ctl.run("remove", "outlet 2")
    t.eq(rc, 2, "remove of an ambiguous name exits 2")
    rc, out, err = ctl.run("remove", ids["hs300"] + "_01")
    t.ok(rc == 2 and ids["hs300"] in err, "remove of an outlet names its strip instead", err)
    rc, res = ctl.json("remove", "sim hs100")
    t.ok(rc == 0 and res == {"id": ids["hs100"], "alias": "Sim hs100 0"} and
         env.get(kt.MANAGER_PATH, kt.MANAGER_IFACE, "DeviceCount") == 13, "remove forgets the plug", res)
    rc, out, err = ctl.run("show", ids["hs100"])
    t.eq(rc, 3, "a removed device is not found (3)")
    rc, out, err = ctl.run("add", "127.0.0.2")
    t.ok(rc == 0 and ids["hs100"] in out and "1 device added." in out, "add brings it back", out + err)
    rc, out, err = ctl.run("add", "127.0.0.3")
    t.ok(rc == 0 and "added" not in out and out == f"Sim hs110 1 ({ids['hs110']}) was already known, at 127.0.0.3.\n",
         "add of a known device says so", out + err)
    rc, out, err = ctl.run("add", "127.0.0.5:9999")
    t.ok(rc == 0 and "added" not in out and "Sim hs300 3" in out and "already known" in out,
         "add of a known strip says so", out + err)
    env.sim(cmd="fault", device="127.0.0.2", move="127.0.0.12")
    try:
        rc, out, err = ctl.run("add", "127.0.0.12")
        t.ok(rc == 0 and "added" not in out and
             out == f"Sim hs100 0 ({ids['hs100']}) was already known, at 127.0.0.2; its address is now 127.0.0.12.\n",
             "add of a known device at a new address says that its address changed", out + err)
    finally:
        env.sim(cmd="fault", device="127.0.0.12", move="127.0.0.2")
    rc, out, err = ctl.run("add", "127.0.0.2")
    t.ok(rc == 0 and "its address is now 127.0.0.2." in out, "and back", out + err)
    rc, out, err = ctl.run("remove", "sim hs100")
    rc, res = ctl.json("add", "127.0.0.2")
    t.ok(rc == 0 and res["id"] == ids["hs100"] and stable(res) == stable(describe(env, res["path"])),
         "add --json: the Describe() object", res)
    rc, out, err = ctl.run("add", "not-an-address")
    t.eq(rc, 2, "add of a malformed address exits 2")
    rc, out, err = ctl.run("add", "127.0.0.99")
    t.ok(rc == 5 and "nothing answered" in err, "add of a silent address exits 5", err)


def test_history_energy(t, ctl, env, ids):
    kp = env.device_path(ids["kp115"])
    env.wait_polled(kp, polls=3)
    rc, out, err = ctl.run("history", "sim kp115", "--resolution=raw", "--since=-10min")
    lines = out.splitlines()
    t.ok(rc == 0 and lines[0].split() == ["TIME", "AVERAGE", "MIN", "MAX", "ENERGY"] and
         re.search(r"^\d+ samples, [\d.]+ Wh\.$", lines[-1]) and "100.0 W" in out, "history table", out + err)
    rc, out, err = ctl.run("history", "sim kp115", "--resolution=day", "--since=today")
    t.ok(rc == 0 and re.search(r"^1 sample, [\d.]+ Wh\.$", out.splitlines()[-1]), "history: 1 sample, not 1 samples",
         out + err)
    t.ok("┤" not in out, "no chart when piped")
    rc, h = ctl.json("history", "sim kp115", "--resolution=raw", "--since=-10min")
    t.ok(rc == 0 and set(h) == {"id", "alias", "resolution", "since", "until", "samples", "energy"} and
         len(h["samples"]) >= 3 and
         all(set(s) == {"time", "power_avg", "power_min", "power_max", "energy", "imported"} and ISO.match(s["time"])
             for s in h["samples"]), "history --json: documented fields", h)
    rc, out = ctl.run_pty("history", "sim kp115", "--resolution=raw", "--since=-10min")
    t.ok(rc == 0 and "┤" in out and "█" in out and "└" in out, "history draws a chart on a terminal", out)
    rc, h = ctl.json("history", "sim kp115", "--resolution=minute", "--since=today")
    t.ok(rc == 0 and h["resolution"] == "minute" and len(h["samples"]) >= 1, "history per minute")

    now = time.time()
    today = time.strftime("%Y-%m-%d", time.gmtime(now))
    yesterday = time.strftime("%Y-%m-%d", time.gmtime(now - 86400))
    for since, want in (("2025-01-02", "2025-01-02T00:00:00+00:00"),
                        ("2025-01-02T03:04:05+01:00", "2025-01-02T02:04:05+00:00"),
                        ("2025-01-02 03:04", "2025-01-02T03:04:00+00:00"),
                        ("2025-01-02T03:04:05Z", "2025-01-02T03:04:05+00:00"),
                        ("2025-01-02T03:04:05.5-0500", "2025-01-02T08:04:05+00:00"),
                        ("@1700000000", "2023-11-14T22:13:20+00:00"),
                        ("today", today + "T00:00:00+00:00"),
                        ("yesterday", yesterday + "T00:00:00+00:00")):
        rc, h = ctl.json("history", "sim kp115", f"--since={since}", "--resolution=day")
        t.eq(rc == 0 and h["since"], want, f"--since={since}")
    rc, h = ctl.json("history", "sim kp115", "--since=-1d2h", "--until=-2h")
    got = time.mktime(time.strptime(h["until"][:19], "%Y-%m-%dT%H:%M:%S")) - \
        time.mktime(time.strptime(h["since"][:19], "%Y-%m-%dT%H:%M:%S"))
    t.eq(got, 86400.0, "relative times: -1d2h to -2h is one day")
    rc, out, err = ctl.run("history", "sim hs100")
    t.ok(rc == 1 and "no energy meter" in err, "history of a plug without meter says so (1)", err)

    metered = sum(1 for ifaces in env.objects().values() if kt.METER_IFACE in ifaces)
    rc, out, err = ctl.run("energy")
    lines = out.splitlines()
    t.ok(rc == 0 and lines[1].split()[0] == "DAY" and lines[1].split()[-1] == "TOTAL" and
         lines[-1].startswith("Total") and len(lines) == 1 + 1 + 7 + 1, "energy: 7 days of every meter, totals",
         out + err)
    head = lines[1]
    strip_at = lines[0].find("Sim hs300 3")
    t.ok(lines[0].split() == ["Sim", "hs300", "3"] and head.find("Sim kp115 2") + len("Sim kp115 2") < strip_at and
         strip_at <= head.find("Outlet 1") and head.find("Outlet 6") < head.find("TOTAL"),
         "energy: the strip is named above its outlets", out)
    rc, e = ctl.json("energy")
    t.ok(rc == 0 and set(e) == {"by", "since", "until", "devices", "total"} and len(e["devices"]) == metered and
         all(set(d) == {"id", "alias", "energy", "total"} and len(d["energy"]) == 7 and
             all(set(b) == {"start", "energy"} for b in d["energy"]) for d in e["devices"]),
         "energy --json: every metered device, documented fields", e)
    rc, out, err = ctl.run("energy", "sim kp115", "--by=month", "--no-legend")
    t.ok(rc == 0 and len(out.splitlines()) == 12 and "Total" not in out, "energy --by=month: 12 months", out)
    rc, e = ctl.json("energy", "sim hs110", "--since=today")
    t.ok(rc == 0 and len(e["devices"]) == 1 and e["devices"][0]["energy"][0]["start"] == today +
         "T00:00:00+00:00", "energy DEV --since=today", e)
    rc, out, err = ctl.run("energy", "sim kp303")
    t.eq(rc, 1, "energy of a strip without meter exits 1")


def test_discover_new(t, ctl, env, ids):
    """A device kasamond has never seen is marked new. kasamond starts
    afresh while the plug at 127.0.0.2 reboots, so that its start-up
    discovery misses the plug."""
    env.stop_daemon()
    shutil.rmtree(env.state)
    os.mkdir(env.state)
    env.sim(cmd="fault", device="127.0.0.2", reboot=6)
    env.start_daemon()
    env.wait_for(lambda: env.get(kt.MANAGER_PATH, kt.MANAGER_IFACE, "DeviceCount") == 13, 20,
                 "start-up discovery finds all but the rebooting plug")
    env.wait_for(lambda: env.truth("127.0.0.2")[0]["online"], 20, "the plug is back")
    rc, out, err = ctl.run("discover", "--timeout=1")
    new = [line.split()[0] for line in out.splitlines()[1:] if line.split() and line.split()[-1] == "yes"]
    t.ok(rc == 0 and out.rstrip().endswith("14 devices answered, 1 new.") and new == [ids["hs100"]],
         "discover marks the device it did not know as new", out + err)


def tracee(pid):
    """The process strace started."""
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return int(f.read().split()[0])


def test_watch_reads(t, ctl, env, ids):
    """watch reads every object once, when it starts; a device that comes
    is read from its InterfacesAdded signal alone. Seen in what kasactl
    sends, under strace."""
    log = os.path.join(env.tmp, "watch.strace")
    p = subprocess.Popen(["strace", "-f", "-qq", "-s", "65536", "-e", "trace=sendmsg,sendto,writev,write", "-o",
                          log, KASACTL, "watch"], env=ctl.environ(), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def sent():
        try:
            with open(log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    try:
        env.wait_for(lambda: "GetManagedObjects" in sent(), 30, "watch reads the objects")
        strip = env.device_path(ids["hs300"])
        env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "RemoveDevice", "o", (strip,))
        env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "AddDevice", "s", ("127.0.0.5",))
        # Signals are handled in order: once the outlet's change is printed,
        # the objects added before it have been read.
        outlet = ids["hs300"] + "_03"
        data = b""
        for _ in range(3):
            env.call(env.device_path(outlet), kt.DEVICE_IFACE, "Toggle")
            data += read_until(p.stdout.fileno(), lambda b: f"{outlet} On".encode() in b, 5)
            if f"{outlet} On".encode() in data:
                break
        t.ok(f"{outlet} On".encode() in data, "watch follows a strip added while it runs", data)
    finally:
        os.kill(tracee(p.pid), signal.SIGINT)
        p.communicate(timeout=30)
    text = sent()
    t.eq(text.count("GetManagedObjects"), 1, "watch reads all objects once, not again for each added one")
    t.ok("NameOwnerChanged" in text and "arg0='org.kasamond.Kasa1'" in text,
         "watch's NameOwnerChanged match is for kasamond's name only",
         "\n".join(line for line in text.splitlines() if "AddMatch" in line)[-3000:])


def start_watch(ctl, *args, tty=False):
    if tty:
        master, slave = pty.openpty()
        p = subprocess.Popen([KASACTL, "watch", *args], env=ctl.environ(), stdin=subprocess.DEVNULL,
                             stdout=slave, stderr=subprocess.PIPE)
        os.close(slave)
        return p, master
    p = subprocess.Popen([KASACTL, "watch", *args], env=ctl.environ(), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p, p.stdout.fileno()


def stop_watch(p, fd, sig, tty):
    p.send_signal(sig)
    rest = read_until(fd, lambda b: False, 20, p)
    rc = p.wait(20)
    if tty:
        os.close(fd)
    else:
        p.stdout.close()
    err = p.stderr.read().decode()
    p.stderr.close()
    return rc, rest, err


def test_watch(t, ctl, env, ids):
    plug = env.device_path(ids["hs110"])
    # kasactl subscribes before it reads the state; wait for a first line of
    # its own (a poll changes nothing with --noise=0, so switch until seen).
    p, fd = start_watch(ctl)
    data = b""
    for _ in range(3):
        env.call(plug, kt.DEVICE_IFACE, "Toggle")
        data += read_until(fd, lambda b: b" On " in b, 5)
        if b" On " in data:
            break
    rc, rest, err = stop_watch(p, fd, signal.SIGINT, False)
    data = (data + rest).decode()
    t.ok(re.search(rf"^<TIME> {ids['hs110']} On (on|off)$", mask(data), re.M), "watch: one line per change",
         data)
    t.ok("\x1b" not in data, "watch: no escape codes when piped")
    t.ok(rc == 0 and err == "", "watch exits 0 on SIGINT", f"rc={rc} err={err}")

    p, fd = start_watch(ctl, "--json=short", "sim kp115")
    data = b""
    for _ in range(3):
        env.call(env.device_path(ids["kp115"]), kt.DEVICE_IFACE, "Toggle")
        env.call(plug, kt.DEVICE_IFACE, "Toggle")
        data += read_until(fd, lambda b: b'"On"' in b, 5)
        if b'"On"' in data:
            break
    rc, rest, err = stop_watch(p, fd, signal.SIGTERM, False)
    objs = [json.loads(line) for line in (data + rest).decode().splitlines()]
    t.ok(objs and all(set(o) == {"time", "id", "alias", "property", "value"} for o in objs) and
         any(o["property"] == "On" for o in objs), "watch --json: one object per change", objs)
    t.ok(all(o["id"] == ids["kp115"] for o in objs), "watch DEV: only that device")
    t.ok(rc == 0, "watch exits 0 on SIGTERM", err)

    p, fd = start_watch(ctl, tty=True)
    data = read_until(fd, lambda b: b"Total power" in b, 10)
    for _ in range(3):
        env.call(plug, kt.DEVICE_IFACE, "Toggle")
        data += read_until(fd, lambda b: re.search(rb"\x1b\[\d+A", b) is not None, 5)
        if re.search(rb"\x1b\[\d+A", data):
            break
    rc, rest, err = stop_watch(p, fd, signal.SIGINT, True)
    t.ok(b"Total power" in data and re.search(rb"\x1b\[\d+A\r\x1b\[J", data), "watch redraws in place on a tty",
         data[-2000:])
    t.eq(rc, 0, "watch on a tty exits 0 on SIGINT")


def test_errors(t, ctl, env, ids):
    rc, out, err = ctl.run("show", "nosuch")
    t.ok(rc == 3 and "No device is called 'nosuch'" in err, "unknown device exits 3", err)
    rc, out, err = ctl.run("on", "Outlet 1")
    t.ok(rc == 2 and "ambiguous" in err and ids["hs300"] + "_00" in err and ids["kp303"] + "_00" in err,
         "ambiguous name exits 2 and lists the candidates", err)
    rc, out, err = ctl.run("show", "sim")
    t.ok(rc == 2 and err.count("Sim ") == 5, "a prefix of five names lists all five", err)

    # Offline: the plug stops answering; the message says since when.
    env.sim(cmd="fault", device="127.0.0.3", hang=True)
    try:
        rc, out, err = ctl.run("off", "sim hs110")
        t.ok(rc == 5 and re.search(r"offline; last seen \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(local time\)", err),
             "offline device exits 5 and says since when", err)
    finally:
        env.sim(cmd="clear", device="127.0.0.3")

    # Access denied: with no polkitd on this bus only root may change
    # anything; everyone may read.
    os.chmod(env.tmp, 0o755)
    rc, out, err = ctl.run("list", user="nobody")
    t.ok(rc == 0 and ids["hs110"] in out, "an unprivileged user may list", err)
    rc, out, err = ctl.run("on", "sim hs110", user="nobody")
    t.ok(rc == 4 and "org.kasamond.kasa1.switch" in err and "switch Sim hs110 1 on" in err,
         "switching denied exits 4 and names the switch action", err)
    rc, out, err = ctl.run("--no-ask-password", "rename", "sim hs110", "x", user="nobody")
    t.ok(rc == 4 and "org.kasamond.kasa1.manage-devices" in err, "rename denied names manage-devices", err)
    rc, out, err = ctl.run("discover", user="nobody")
    t.ok(rc == 4 and "org.kasamond.kasa1.manage-devices" in err, "discover denied names manage-devices", err)

    rc, out, err = ctl.run("list", DBUS_SYSTEM_BUS_ADDRESS="unix:path=" + os.path.join(env.tmp, "none.sock"))
    t.ok(rc == 1 and "Failed to connect to the system bus" in err, "no bus: says so, exits 1", err)
    env.stop_daemon()
    try:
        rc, out, err = ctl.run("status")
        t.ok(rc == 1 and "kasamond is not running" in err and "systemctl start kasamond" in err,
             "daemon not running: says so and how to start it (1)", err)
        rc, out, err = ctl.run("on", "x")
        t.eq(rc, 1, "daemon not running: mutating verb exits 1 too")
    finally:
        env.start_daemon()


def test_man(t, ctl):
    p = subprocess.run(["man", "-l", "--warnings", MAN_PAGE], env=dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8",
                                                                          MANPAGER="cat", PAGER="cat"),
                       capture_output=True, text=True, timeout=60)
    t.ok(p.returncode == 0 and p.stderr == "" and "kasactl" in p.stdout, "man -l --warnings: no warnings",
         p.stderr)
    text = re.sub(r".\x08", "", p.stdout)
    m = re.search(r"^COMMANDS\n(.*?)^\S", text, re.M | re.S)
    # A verb of a group is two words, "tariff list".
    documented = set(re.findall(r"^       (\S+(?: [a-z]+)?)", m.group(1), re.M)) if m else set()
    documented |= {d.split()[0] for d in documented}
    rc, verbs, _ = ctl.run("--list-verbs")
    t.ok(rc == 0 and len(verbs.splitlines()) >= 13, "--list-verbs lists the verb table", verbs)
    missing = [v for v in verbs.splitlines() if v not in documented]
    t.eq(missing, [], "the man page documents every verb of the verb table")
    rc, help_text, _ = ctl.run("--help")
    opts = set(re.findall(r"(--[a-z-]+)", help_text))
    t.ok(rc == 0 and len(opts) >= 5, "--help lists the options", help_text)
    t.eq(sorted(o for o in opts if o not in text), [], "the man page documents every option in --help")
    for code in range(6):
        t.ok(re.search(rf"^       {code}\n", text, re.M), f"the man page documents exit status {code}")


def test_completion(t, ctl):
    script = os.path.join(kt.source_dir(), "shell-completion", "bash", "kasactl")

    def complete(*words):
        words = [KASACTL, *words]
        arr = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
        code = (f"source '{script}'; COMP_WORDS=({arr}); COMP_CWORD={len(words) - 1}; _kasactl; "
                "printf '%s\\n' \"${COMPREPLY[@]}\"")
        p = subprocess.run(["bash", "-c", code], env=ctl.environ(), capture_output=True, text=True, timeout=60)
        return [line for line in p.stdout.splitlines() if line]

    t.eq(complete("tog"), ["toggle"], "bash: completes verbs")
    got = complete("on", "Sim")
    t.ok("Sim\\ hs110\\ 1" in got and "Sim\\ kp303\\ 4" in got, "bash: device names, escaped", got)
    t.ok(any(re.fullmatch(r"[0-9a-f]{12}", g) for g in complete("show", "")), "bash: device ids")
    t.eq(complete("--js"), ["--json="], "bash: completes options")
    got = complete("show", "x", "--")
    t.ok("--json=" in got and "--since=" not in got and "--no-legend" not in got,
         "bash: only the options of the verb", got)
    got = complete("history", "x", "--")
    t.ok("--since=" in got and "--resolution=" in got and "--by=" not in got, "bash: history's options", got)
    t.eq(complete("help", "sh"), ["show"], "bash: help completes verbs")
    t.eq(complete("history", "x", "--resolution", "=", ""), ["raw", "minute", "hour", "day"],
         "bash: completes option values")
    t.eq(complete("tar"), ["tariff"], "bash: a group of verbs is one word")
    t.eq(complete("tariff", "a"), ["add", "activate"], "bash: completes the verbs of a group")
    got = complete("tariff", "price", "x", "--")
    t.ok("--energy=" in got and "--time-zone=" in got and "--since=" not in got, "bash: tariff price's options",
         got)
    got = complete("costs", "Sim")
    t.ok("Sim\\ hs110\\ 1" in got and "Sim\\ kp115\\ 2" in got, "bash: costs takes device names", got)
    got = complete("costs", "x", "--")
    t.ok("--tariff=" in got and "--by=" in got and "--energy=" not in got, "bash: costs' options", got)


def test_energy_kwh(t):
    """A column of the energy table is in kWh once its largest value
    reaches 1 kWh, every cell of it: 60 plugs of 10 kW each make that a
    matter of seconds."""
    conf_dir = tempfile.mkdtemp(prefix="kasactl-kwh-")
    try:
        conf = os.path.join(conf_dir, "sim.json")
        with open(conf, "w") as f:
            json.dump({"devices": [{"profile": "kp115", "address": "127.0.1.1", "count": 60, "load_w": 10000}]}, f)
        targets = " ".join(f"127.0.1.{i}" for i in range(1, 61))
        with kt.Env([], sim_args=(f"--config={conf}", "--noise=0"), targets=targets) as env:
            ctl = Ctl(env)
            env.wait_for(lambda: env.get(kt.MANAGER_PATH, kt.MANAGER_IFACE, "TotalPower") > 599_000, 60,
                         "every plug is polled at 10 kW")
            env.wait_for(lambda: (lambda r: r[0] == 0 and r[1]["total"] >= 1000)(ctl.json("energy", "--since=today")),
                         60, "1 kWh recorded in all")
            rc, out, err = ctl.run("energy")
            lines = out.splitlines()
            cells = [line.rsplit(None, 2)[-2:] for line in lines[1:]]
            t.ok(rc == 0 and lines[0].split()[-1] == "TOTAL" and len(cells) == 8 and
                 all(c[1] == "kWh" for c in cells) and
                 all(line.split()[2] == "Wh" for line in lines[1:]),
                 "energy: the TOTAL column is in kWh in every row, a plug's column in Wh", out + err)
    finally:
        shutil.rmtree(conf_dir, ignore_errors=True)


def main():
    t = kt.Tap()
    with kt.Env(DEVICES, sim_args=("--seed=1", "--noise=0")) as env:
        ctl = Ctl(env)
        ids = {}
        for s in env.sim_devices():
            ids[s["profile"]] = kt.mac_id(s["mac"])
        test_discover_new(t, ctl, env, ids)
        env.discover(1.5)
        env.wait_for(lambda: env.get(kt.MANAGER_PATH, kt.MANAGER_IFACE, "TotalPower") > 309.9, 20,
                     "every simulated load is polled")
        test_usage(t, ctl)
        test_layouts(t, ctl)
        all_ids = (list(ids.values()) + [f"{ids['hs300']}_{i:02d}" for i in range(6)] +
                   [f"{ids['kp303']}_{i:02d}" for i in range(3)])
        test_json(t, ctl, env, ids, all_ids)
        test_offline(t, ctl, env, ids)
        test_colors(t, ctl)
        test_switch(t, ctl, env, ids)
        test_devices(t, ctl, env, ids)
        test_history_energy(t, ctl, env, ids)
        test_watch(t, ctl, env, ids)
        test_watch_reads(t, ctl, env, ids)
        test_man(t, ctl)
        test_completion(t, ctl)
        test_errors(t, ctl, env, ids)
    test_energy_kwh(t)
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
