# SPDX-License-Identifier: MIT
"""System-level test of schedules: kasamond under a real systemd (PID 1 of
private namespaces, the project installed, as test-system.py boots it)
makes each schedule a timer, through kasamond-schedule-generator (the
list kasamond writes, a daemon-reload, StartUnit by name). A timer shows
in `systemctl list-timers` with the right next elapse; a calendar time a few seconds
ahead fires and switches a kasa-sim plug, and a sunset one a few seconds
ahead arms the next day's; RunNow switches it; restarting kasamond keeps
the timers and recreates those that are gone, and stops units left by
schedules that are gone; after a reboot (a second boot of systemd with the
first one's databases) kasamond recreates every timer; removing a
schedule removes its units; invalid expressions are refused with systemd's
message and nothing is stored; a plain user may read and is denied every
change; the user kasamond may stop its own units and no others, and may
not create a transient unit (systemd-run as kasamond, even of a name like
a schedule's, is denied), which systemd 252's polkit request cannot limit.

Python 3 standard library only; needs root."""

import datetime
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("system_boot", os.path.join(HERE, "test-system.py"))
boot = importlib.util.module_from_spec(spec)
spec.loader.exec_module(boot)

SCHEDULE_IFACE = "org.kasamond.Kasa1.Schedule"
PLUG = "127.0.0.2"
# Greenwich, so that the sun's times are those of tests/daemon/test-sun.c.
boot.DAEMON_CONFIG += "[Location]\nLatitude=51.4769\nLongitude=-0.0005\n"


STATE_DIR = "/var/lib/kasamond"
DATABASES = ("devices.sqlite", "schedules.sqlite")
UNITS_LIST = "schedule-units"
GENERATOR_DIR = "/run/systemd/generator"


def kasactl_run(s, *args, user=None):
    return s.run([s.installed["kasactl"], "--no-ask-password", *args], user=user)


def kasactl_json(s, *args, user=None):
    r = kasactl_run(s, "--json=short", *args, user=user)
    if r.returncode != 0:
        raise RuntimeError(f"kasactl {' '.join(args)}: {r.returncode} {r.stderr}")
    return json.loads(r.stdout)


def schedule_units(s):
    r = s.run(["systemctl", "list-units", "--all", "--plain", "--no-legend", "kasamond-schedule-*"])
    return sorted(line.split()[0] for line in r.stdout.splitlines() if line.strip())


def schedule_prop(s, path, name):
    r = s.run(["busctl", "--json=short", "get-property", boot.BUS_NAME, path, SCHEDULE_IFACE, name])
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    return json.loads(r.stdout)["data"]


def next_local(hour):
    now = datetime.datetime.now().astimezone()
    want = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    return want + datetime.timedelta(days=1) if want <= now else want


def make_step(t):
    def step(name, fn):
        try:
            result = fn()
        except (TimeoutError, RuntimeError, subprocess.SubprocessError, OSError, ValueError, KeyError,
                IndexError, TypeError) as e:
            return t.ok(False, name, repr(e))
        cond, diag = result if isinstance(result, tuple) else (result, None)
        return t.ok(bool(cond), name, diag)
    return step


def boot_and_check(t, checks, *args):
    try:
        s = boot.System()
    except Exception as e:  # noqa: BLE001 - any set-up failure is the test's failure
        t.ok(False, "systemd boots in the namespaces with kasamond installed", e)
        return None
    try:
        return checks(t, s, *args)
    finally:
        if t.failed:
            sys.stdout.write("# --- systemd console ---\n# " + s.console_tail(8000).replace("\n", "\n# ") + "\n")
            sys.stdout.write("# --- kasamond log ---\n# " + s.daemon_log(8000).replace("\n", "\n# ") + "\n")
        s.close()


def main():
    if os.geteuid() != 0:
        print("1..1\nnot ok 1 - the system test needs root (namespaces, mounts, cgroups)")
        return 1
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    t = boot.Tap()
    saved = boot_and_check(t, run_checks)
    # A reboot: a new systemd with no transient unit, the same state.
    if saved:
        boot_and_check(t, reboot_checks, saved)
    return t.close()


def is_(got, want):
    return got == want, f"got {got!r}, want {want!r}"


def run_checks(t, s):
    step = make_step(t)

    def ctl(*args, user=None):
        return kasactl_run(s, *args, user=user)

    def ctl_json(*args, user=None):
        return kasactl_json(s, *args, user=user)

    def relay():
        return s.sim_truth()[PLUG]["relay"]

    def units():
        return schedule_units(s)

    def prop(path, name):
        return schedule_prop(s, path, name)

    step("kasamond is active", lambda: boot.wait_for(lambda: s.show("ActiveState") == "active", 30, "kasamond"))
    step(f"the plug at {PLUG} is known",
         lambda: boot.wait_for(lambda: s.device_by_address(PLUG)[0], 30, "the plug"))

    # Refused before anything is stored, in systemd's words.
    def invalid():
        r = ctl("schedule", "add", "on", PLUG, "--at=Mon..Fri 25:00")
        good = r.returncode == 2 and "Failed to parse calendar specification" in r.stderr
        return good, f"{r.returncode} {r.stderr}"
    step("an invalid calendar expression is refused with systemd-analyze's message (exit 2)", invalid)
    step("and nothing is stored", lambda: is_(ctl_json("schedule", "list"), []))
    step("and no unit made", lambda: is_(units(), []))

    # A daily time: the timer and its next elapse.
    def add_daily():
        r = ctl("schedule", "add", "off", PLUG, "--at=*-*-* 03:00:00")
        return r.returncode == 0 and r.stdout.strip() == "Added schedule 1.", r.stdout + r.stderr
    step("kasactl schedule add off DEV --at='*-*-* 03:00:00'", add_daily)
    path1 = boot.MANAGER_PATH + "/schedule/1"
    want = next_local(3)

    def listed():
        r = s.run(["systemctl", "list-timers", "--all", "--no-pager", "kasamond-schedule-*"])
        line = next((x for x in r.stdout.splitlines() if "kasamond-schedule-1.timer" in x), "")
        return want.strftime("%Y-%m-%d 03:00:00") in line and "kasamond-schedule-1.service" in line, r.stdout
    step("systemctl list-timers shows kasamond-schedule-1.timer, next at 03:00, activating its service", listed)
    step("NextElapse is the timer's: the next 03:00 local",
         lambda: is_(prop(path1, "NextElapse"), int(want.timestamp()) * 1000000))
    step("the units are kasamond-schedule-1.timer and .service",
         lambda: is_(units(), ["kasamond-schedule-1.service", "kasamond-schedule-1.timer"]))
    step("the service runs kasactl schedule fire 1 as the user kasamond",
         lambda: (lambda e, u: ("schedule fire 1" in e and u == "kasamond", f"{e} / {u}"))(
             s.show("ExecStart", "kasamond-schedule-1.service"), s.show("User", "kasamond-schedule-1.service")))
    step("the timer's accuracy is a second",
         lambda: is_(s.show("AccuracyUSec", "kasamond-schedule-1.timer"), "1s"))
    step("the units are the generator's, in its output directory",
         lambda: is_((s.show("FragmentPath", "kasamond-schedule-1.timer"),
                      s.show("FragmentPath", "kasamond-schedule-1.service")),
                     (f"{GENERATOR_DIR}/kasamond-schedule-1.timer", f"{GENERATOR_DIR}/kasamond-schedule-1.service")))
    step("made from the list kasamond wrote in its state directory",
         lambda: (lambda text: (text.startswith("kasamond-schedule-units 1\n") and
                                "\n1 - off 0 0 *-*-* 03:00:00\n" in text, text))(
             open(s.path(f"{STATE_DIR}/{UNITS_LIST}")).read()))
    step("kasamond.service wants the timer, so a boot starts it with kasamond",
         lambda: (lambda w: ("kasamond-schedule-1.timer" in w.split(), w))(s.show("Wants")))

    # A calendar time a few seconds ahead fires and switches the plug.
    ctl("on", PLUG)
    step("the plug is on", lambda: is_(relay(), True))
    fire_at = datetime.datetime.now() + datetime.timedelta(seconds=5)
    expr = fire_at.strftime("%Y-%m-%d %H:%M:%S")

    def add_soon():
        r = ctl("schedule", "add", "off", PLUG, f"--at={expr}")
        return r.returncode == 0, r.stdout + r.stderr
    step(f"a schedule at {expr} (5 s ahead) is added", add_soon)
    path2 = boot.MANAGER_PATH + "/schedule/2"
    step("its timer fires and switches the plug off",
         lambda: boot.wait_for(lambda: relay() is False, 40, "the plug off"))
    step("the service that fired ran kasactl successfully",
         lambda: boot.wait_for(lambda: s.show("Result", "kasamond-schedule-2.service") == "success" and
                               s.show("ExecMainStatus", "kasamond-schedule-2.service") == "0", 20,
                               "the service's result"))
    step("LastResult says what the plug did",
         lambda: boot.wait_for(lambda: re.fullmatch(r"[0-9a-f]{12} off", prop(path2, "LastResult")), 10,
                               "LastResult"))
    step("LastTrigger is the timer's, not before the time set",
         lambda: (lambda v: (v >= int(fire_at.timestamp()) * 1000000, v))(prop(path2, "LastTrigger")))

    # RunNow.
    ctl("on", PLUG)
    step("kasactl schedule run 1 switches the plug off",
         lambda: (lambda r: (r.returncode == 0 and "off" in r.stdout and relay() is False, r.stdout + r.stderr))(
             ctl("schedule", "run", "1")))

    # A plain user reads and is denied every change.
    step("a plain user may list schedules",
         lambda: (lambda r: (r.returncode == 0 and len(json.loads(r.stdout)) == 2, r.stdout + r.stderr))(
             ctl("--json=short", "schedule", "list", user=boot.PLAIN_USER)))
    step("and show one", lambda: (lambda r: (r.returncode == 0 and "Schedule 1: off" in r.stdout, r.stderr))(
        ctl("schedule", "show", "1", user=boot.PLAIN_USER)))
    for args in (["schedule", "add", "on", PLUG, "--at=daily"], ["schedule", "disable", "1"],
                 ["schedule", "enable", "1"], ["schedule", "run", "1"], ["schedule", "fire", "1"],
                 ["schedule", "remove", "1"]):
        step(f"a plain user is denied kasactl {' '.join(args)} (exit 4, naming manage-schedules)",
             lambda a=args: (lambda r: (r.returncode == 4 and "org.kasamond.kasa1.manage-schedules" in r.stderr,
                                        f"{r.returncode} {r.stderr}"))(ctl(*a, user=boot.PLAIN_USER)))
    step("the denied calls changed nothing",
         lambda: is_((len(ctl_json("schedule", "list")), prop(path1, "Enabled")), (2, True)))

    # Disable and enable.
    step("disable stops the timer, and the reload takes its units away",
         lambda: (lambda r: (r.returncode == 0 and boot.wait_for(
             lambda: not any(u.startswith("kasamond-schedule-1.") for u in units()), 10, "the units gone"),
             r.stderr))(ctl("schedule", "disable", "1")))
    step("enable brings it back", lambda: (lambda r: (r.returncode == 0 and "kasamond-schedule-1.timer" in units(),
                                                      r.stderr))(ctl("schedule", "enable", "1")))

    # Restarts: kept; a missing timer (as after a reboot) recreated; a
    # stale unit of a schedule that is gone stopped.
    s.run(["systemctl", "stop", boot.UNIT])
    s.run(["systemctl", "stop", "kasamond-schedule-1.timer"])
    s.run(["systemd-run", "--quiet", "--unit=kasamond-schedule-99", "--on-calendar=daily", "/bin/true"])
    step("while kasamond is stopped, its timer is stopped and a stale one is there",
         lambda: (lambda a, u: (a == "inactive" and "kasamond-schedule-99.timer" in u, f"{a} {u}"))(
             s.show("ActiveState", "kasamond-schedule-1.timer"), units()))
    s.run(["systemctl", "start", boot.UNIT])
    step("kasamond starts again", lambda: boot.wait_for(lambda: s.show("ActiveState") == "active", 30, "kasamond"))
    step("at start it started the timer of schedule 1 again",
         lambda: boot.wait_for(lambda: s.show("ActiveState", "kasamond-schedule-1.timer") == "active", 20,
                               "the timer"))
    step("and stopped the stale units", lambda: boot.wait_for(lambda: not any("-99." in u for u in units()), 20,
                                                              "the stale units gone"))
    step("NextElapse is the same 03:00 after the restart",
         lambda: is_(prop(path1, "NextElapse"), int(want.timestamp()) * 1000000))
    old = s.show("MainPID")
    s.run(["systemctl", "restart", boot.UNIT])
    step("a restart of kasamond keeps the timers",
         lambda: boot.wait_for(lambda: s.show("ActiveState") == "active" and s.show("MainPID") != old, 30,
                               "kasamond") and "kasamond-schedule-1.timer" in units())

    # A sun schedule: one event armed, named after its day.
    def sun():
        r = ctl("schedule", "add", "on", PLUG, "--sunset=+15min", "--random=10min")
        if r.returncode != 0:
            return False, r.stderr
        d = ctl_json("schedule", "show", "3")
        timer = d.get("timer") or ""
        good = re.fullmatch(r"kasamond-schedule-3-\d{8}\.timer", timer) and timer in units()
        return good and s.show("RandomizedDelayUSec", timer) == "10min", f"{d} {units()}"
    step("a sunset schedule arms one day's sunset in a timer named after the day", sun)

    # A sun schedule that fires: the offset puts the sunset of the last
    # (or next) day a few seconds ahead, then the next day's is armed.
    def sunset_soon():
        target = int(time.time()) + 6
        day = datetime.datetime.fromtimestamp(target).date()
        for d in (day - datetime.timedelta(days=1), day, day + datetime.timedelta(days=1)):
            r = ctl("--json=short", "sun", f"--date={d.isoformat()}")
            ev = {e["event"]: e for e in json.loads(r.stdout)}["sunset"]
            sunset = int(datetime.datetime.fromisoformat(ev["time"]).timestamp())
            offset = target - sunset
            if abs(offset) < 12 * 3600:
                break
        ctl("on", PLUG)
        r = ctl("schedule", "add", "off", PLUG, f"--sunset={offset:+d}")
        if r.returncode != 0 or relay() is not True:
            return False, r.stderr
        first = ctl_json("schedule", "show", "4")["timer"]
        boot.wait_for(lambda: relay() is False, 40, "the sunset schedule to switch the plug off")
        after = boot.wait_for(lambda: (lambda tm: tm if tm and tm != first else None)(
            ctl_json("schedule", "show", "4")["timer"]), 20, "the next sunset armed")
        u = units()
        return after in u and first not in u, f"first {first}, then {after}, units {u}"
    step("a sunset schedule a few seconds ahead fires, then arms the next day's sunset and stops the elapsed timer",
         sunset_soon)

    def sun_cli():
        r = ctl("--json=short", "sun", "--date=2024-06-21")
        events = {e["event"]: e for e in json.loads(r.stdout)} if r.returncode == 0 else {}
        got = events.get("sunrise", {}).get("time") or ""
        return got.startswith("2024-06-21T03:42") or got.startswith("2024-06-21T04:42"), r.stdout + r.stderr
    step("kasactl sun shows the daemon's sunrise for the configured place", sun_cli)

    # The polkit rule: kasamond's own units yes, others no.
    s.run(["systemd-run", "--quiet", "--unit=kasa-foreign", "--property=RemainAfterExit=yes", "/bin/true"])
    step("the user kasamond may not stop a unit that is not its own",
         lambda: (lambda r: (r.returncode != 0 and s.show("ActiveState", "kasa-foreign.service") == "active",
                             r.stderr))(s.run(["systemctl", "--no-ask-password", "stop", "kasa-foreign.service"],
                                              user="kasamond")))
    step("but may stop its own", lambda: (lambda r: (r.returncode == 0 and
                                                     s.show("ActiveState", "kasamond-schedule-2.timer") == "inactive",
                                                     r.stderr))(
        s.run(["systemctl", "--no-ask-password", "stop", "kasamond-schedule-2.timer"], user="kasamond")))
    step("and start it again", lambda: (lambda r: (r.returncode == 0 and
                                                   s.show("ActiveState", "kasamond-schedule-2.timer") == "active",
                                                   r.stderr))(
        s.run(["systemctl", "--no-ask-password", "start", "kasamond-schedule-2.timer"], user="kasamond")))

    # The hole a rule cannot close on systemd 252, which names no unit when
    # asking polkit about StartTransientUnit: kasamond does not need it, and
    # its user is denied it, whatever the name or user of the unit.
    for name, args in (("a unit running as root", ["--uid=0", "--unit=kasa-as-root"]),
                       ("a unit named like a schedule's", ["--unit=kasamond-schedule-77"]),
                       ("a timer", ["--unit=kasamond-schedule-78", "--on-calendar=daily"])):
        def transient(a=args):
            r = s.run(["systemd-run", "--no-ask-password", "--quiet", *a, "/bin/true"], user="kasamond")
            units_now = s.run(["systemctl", "list-units", "--all", "--plain", "--no-legend", "kasa-as-root*",
                               "kasamond-schedule-7[78]*"]).stdout.strip()
            return (r.returncode != 0 and "Access denied" in r.stderr and not units_now,
                    f"exit {r.returncode}: {r.stderr} / units: {units_now}")
        step(f"the user kasamond may not create a transient unit: {name} (systemd-run {' '.join(args)})", transient)
    step("nor start a unit that is not its own",
         lambda: (lambda r: (r.returncode != 0 and "Access denied" in r.stderr, r.stderr))(
             s.run(["systemctl", "--no-ask-password", "start", "systemd-exit.service"], user="kasamond")))
    step("a plain user may not reload systemd: the rule is for the user kasamond alone",
         lambda: (lambda r: (r.returncode != 0, r.stderr))(
             s.run(["systemctl", "--no-ask-password", "daemon-reload"], user=boot.PLAIN_USER)))

    # The interface as documented.
    def introspect():
        r = s.run(["busctl", "introspect", "--xml-interface", boot.BUS_NAME, path1])
        live = ET.fromstring(r.stdout).find(f"interface[@name='{SCHEDULE_IFACE}']")
        doc = ET.parse(os.path.join(os.environ["KASA_SOURCE_ROOT"], "dbus", f"{SCHEDULE_IFACE}.xml")).find(
            "interface")

        def members(i):
            return sorted((m.tag, m.get("name"), m.get("type") or "",
                           tuple((a.get("type"), a.get("direction") or "in") for a in m.findall("arg")))
                          for m in i if m.tag in ("method", "property", "signal"))
        return (live is not None and members(live) == members(doc),
                f"live {members(live) if live is not None else None}\ndoc {members(doc)}")
    step("a schedule object's interface is the documented one", introspect)

    # Removing takes the units with it.
    step("kasactl schedule remove 1", lambda: (lambda r: (r.returncode == 0, r.stderr))(ctl("schedule", "remove", "1")))
    step("its units are gone",
         lambda: boot.wait_for(lambda: not any(u.startswith("kasamond-schedule-1.") for u in units()), 20,
                               "the units gone"))
    step("and the schedule", lambda: is_(sorted(d["id"] for d in ctl_json("schedule", "list")), [2, 3, 4]))
    step("kasamond logged no failure to talk to systemd",
         lambda: (lambda log: ("Failed to" not in log, log[-2000:]))(s.daemon_log(1 << 20)))

    # What survives a reboot: the databases, not the transient units.
    step("a daily schedule at 04:00 is added before the reboot",
         lambda: (lambda r: (r.returncode == 0 and "schedule 5" in r.stdout, r.stdout + r.stderr))(
             ctl("schedule", "add", "on", PLUG, "--at=*-*-* 04:00:00")))
    s.run(["systemctl", "stop", boot.UNIT])
    saved = {}
    for name in os.listdir(s.path(STATE_DIR)):
        if name.startswith(DATABASES) or name == UNITS_LIST:
            with open(os.path.join(s.path(STATE_DIR), name), "rb") as f:
                saved[name] = f.read()
    step("kasamond stopped, its databases and list of units are saved",
         lambda: (all(d in saved for d in DATABASES + (UNITS_LIST,)), sorted(saved)))
    return saved


def reboot_checks(t, s, saved):
    step = make_step(t)
    step("after the reboot kasamond is active",
         lambda: boot.wait_for(lambda: s.show("ActiveState") == "active", 30, "kasamond"))
    step("and a fresh systemd has no schedule unit", lambda: is_(schedule_units(s), []))
    s.run(["systemctl", "stop", boot.UNIT])
    state = s.path(STATE_DIR)
    for name in os.listdir(state):
        if name.startswith(DATABASES) or name == UNITS_LIST:
            os.unlink(os.path.join(state, name))
    for name, data in saved.items():
        with open(os.path.join(state, name), "wb") as f:
            f.write(data)
    s.run(["chown", "-R", "kasamond:kasamond", STATE_DIR])
    # What a boot does with the list (generators run at boot as at a
    # reload), before kasamond runs.
    s.run(["systemctl", "daemon-reload"])
    step("before kasamond starts, the generator made the units from the list",
         lambda: is_(s.show("LoadState", "kasamond-schedule-5.timer"), "loaded"))
    s.run(["systemctl", "start", boot.UNIT])
    step("kasamond's start started the timers it wants",
         lambda: boot.wait_for(lambda: s.show("ActiveState", "kasamond-schedule-5.timer") == "active", 20,
                               "the timer active"))
    step("kasamond starts with the saved databases",
         lambda: boot.wait_for(lambda: s.show("ActiveState") == "active", 30, "kasamond"))
    step("the schedules are back", lambda: is_(sorted(d["id"] for d in kasactl_json(s, "schedule", "list")),
                                               [2, 3, 4, 5]))
    want = next_local(4)

    def listed():
        r = s.run(["systemctl", "list-timers", "--all", "--no-pager", "kasamond-schedule-*"])
        line = next((x for x in r.stdout.splitlines() if "kasamond-schedule-5.timer" in x), "")
        return want.strftime("%Y-%m-%d 04:00:00") in line, r.stdout
    step("kasamond recreated the daily timer: systemctl list-timers shows it at 04:00", listed)
    step("with the same NextElapse",
         lambda: is_(schedule_prop(s, boot.MANAGER_PATH + "/schedule/5", "NextElapse"),
                     int(want.timestamp()) * 1000000))
    step("and the sun schedules' timers of their next day",
         lambda: (lambda u: (all(any(re.fullmatch(rf"kasamond-schedule-{i}-\d{{8}}\.timer", x) for x in u)
                                 for i in (3, 4)), u))(schedule_units(s)))


if __name__ == "__main__":
    sys.exit(main())
