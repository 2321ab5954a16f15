# SPDX-License-Identifier: MIT
"""System-level test of alert hooks: kasamond under a real systemd (PID 1 of
private namespaces, the project installed, as test-system.py boots it)
starts the fixed template unit kasamond-alert-hook@ID.service by name when
an alert of a rule with a hook fires, which polkit allows the user
kasamond for that template only. The unit's helper reads the alert from
kasamond and runs the rule's program from the hooks directory with the
rule's arguments and the alert in its environment: the test's hook exits 0
only when it got what it should, so the unit's result says whether it did;
a hook that checks for something else fails, so the check can fail. The
user kasamond may not start other units by name.

Python 3 standard library only; needs root."""

import importlib.util
import json
import os
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("system_boot", os.path.join(HERE, "test-system.py"))
boot = importlib.util.module_from_spec(spec)
spec.loader.exec_module(boot)

PLUG = "127.0.0.2"
# Exits 0 only for the alert and arguments the rule of the test gives.
HOOK = """#!/bin/sh
echo "hook: $# args: $1 / $2; $KASA_ALERT_RULE $KASA_ALERT_KIND $KASA_ALERT_DEVICE $KASA_ALERT_STATE"
[ "$#" = 2 ] && [ "$1" = "two words" ] && [ "$2" = '$(id)' ] || exit 3
[ "$KASA_ALERT_RULE" = hooked ] || [ "$KASA_ALERT_RULE" = other ] || exit 4
[ "$KASA_ALERT_KIND" = on ] && [ -n "$KASA_ALERT_DEVICE" ] && [ "$KASA_ALERT_STATE" = active ] || exit 5
[ "$KASA_ALERT_PATH" = "/org/kasamond/Kasa1/alert/$KASA_ALERT_ID" ] && [ -n "$KASA_ALERT_SINCE" ] || exit 6
[ "$(id -u)" != 0 ] || exit 7
echo "hook: passed $KASA_ALERT_ID"
"""


class System(boot.System):
    """boot.System with the test's hook installed in the hooks directory."""

    def _stage(self):
        super()._stage()
        # The helper's hooks directory is below the build's sysconfdir, as
        # the kasamond unit's --config is.
        with open(os.path.join(self.tmp, "units", "kasamond.service")) as f:
            exec_start = next(line for line in f if line.startswith("ExecStart="))
        config = next(a for a in exec_start.split() if a.startswith("--config=")).split("=", 1)[1]
        hooks = os.path.join(os.path.dirname(config), "alert-hooks")
        os.makedirs(os.path.join(self.tmp, "merged") + hooks, exist_ok=True)
        for name, body in (("check", HOOK), ("check-other", HOOK.replace("= on ]", "= offline ]"))):
            path = os.path.join(self.tmp, "merged") + os.path.join(hooks, name)
            with open(path, "w") as f:
                f.write(body)
            os.chmod(path, 0o755)
        # No journald in the namespaces: the hook's output goes to a file.
        dropin = os.path.join(self.tmp, "etc-systemd", "kasamond-alert-hook@.service.d")
        os.makedirs(dropin)
        with open(os.path.join(dropin, "50-test.conf"), "w") as f:
            f.write("[Service]\nStandardOutput=append:/run/kasa-test/hook.log\nStandardError=inherit\n")


def ctl(s, *args, user=None):
    return s.run([s.installed["kasactl"], "--no-ask-password", *args], user=user)


def main():
    if os.geteuid() != 0:
        print("1..1\nnot ok 1 - the system test needs root (namespaces, mounts, cgroups)")
        return 1
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    t = boot.Tap()
    try:
        s = System()
    except Exception as e:  # noqa: BLE001 - any set-up failure is the test's failure
        t.ok(False, "systemd boots in the namespaces with kasamond installed", e)
        return t.close()
    try:
        checks(t, s)
    finally:
        if t.failed:
            sys.stdout.write("# --- systemd console ---\n# " + s.console_tail(8000).replace("\n", "\n# ") + "\n")
            sys.stdout.write("# --- kasamond log ---\n# " + s.daemon_log(8000).replace("\n", "\n# ") + "\n")
        s.close()
    return t.close()


def checks(t, s):
    def step(name, fn):
        try:
            cond, diag = fn()
        except (TimeoutError, RuntimeError, subprocess.SubprocessError, OSError, ValueError, KeyError,
                StopIteration) as e:
            return t.ok(False, name, repr(e))
        return t.ok(bool(cond), name, diag)

    step("kasamond is active", lambda: (boot.wait_for(lambda: s.show("ActiveState") == "active", 30, "kasamond"), ""))
    step(f"the plug at {PLUG} is known",
         lambda: (boot.wait_for(lambda: s.device_by_address(PLUG)[0], 30, "the plug"), ""))
    step("the plug is on", lambda: (ctl(s, "on", PLUG).returncode == 0, ""))

    def add(name, hook):
        r = ctl(s, "alert", "add", name, "on", PLUG, "--json=short", "--", hook, "two words", "$(id)")
        return json.loads(r.stdout)["id"] if r.returncode == 0 else None, r.stderr

    def alert_of(rule):
        r = ctl(s, "alert", "list", "--json=short")
        return next((a for a in json.loads(r.stdout) if a["rule"] == rule), None) if r.returncode == 0 else None

    def unit_done(unit):
        return s.show("ActiveState", unit) in ("inactive", "failed") and s.show("Result", unit) != ""

    def hook_log():
        try:
            with open(s.path("/run/kasa-test/hook.log"), errors="replace") as f:
                return f.read()[-3000:]
        except OSError as e:
            return repr(e)

    def by_hand(alert_id):
        r = s.run([s.installed["kasamond-alert-hook"], str(alert_id)], user="nobody")
        return f"{r.returncode} {r.stdout} {r.stderr}"

    rule, err = add("hooked", "check")
    t.ok(rule, "a rule with a hook is added", err)
    a = boot.wait_for(lambda: alert_of(rule), 30, "the rule fires")
    unit = f"kasamond-alert-hook@{a['id']}.service"
    # A oneshot that succeeded may be unloaded (garbage-collected) before
    # the test looks: the hook's own output says that it ran, and how far.
    step(f"kasamond started {unit}",
         lambda: (boot.wait_for(lambda: "hook: 2 args" in hook_log() or
                                (s.show("LoadState", unit) == "loaded" and
                                 s.show("ExecMainStartTimestampMonotonic", unit) not in ("", "0")), 30, unit),
                  s.show("LoadState", unit)))
    step("its helper ran the hook with the rule's arguments and the alert, as another user: success",
         lambda: (boot.wait_for(lambda: f"hook: passed {a['id']}" in hook_log() and unit_done(unit), 60,
                                f"{unit} to finish") and
                  s.show("Result", unit) == "success" and s.show("ExecMainStatus", unit) == "0",
                  f"{s.show('Result', unit)} {s.show('ExecMainStatus', unit)}; by hand: {by_hand(a['id'])}\n"
                  f"{hook_log()}"))
    step("the unit is the fixed template, run as the user kasamond-hook",
         lambda: (lambda e, d: ("kasamond-alert-hook " + str(a["id"]) in e and d == "kasamond-hook", f"{e} / {d}"))(
             s.show("ExecStart", unit), s.show("User", unit)))

    other, err = add("other", "check-other")
    b = boot.wait_for(lambda: alert_of(other), 30, "the second rule fires") if other else None
    unit2 = f"kasamond-alert-hook@{b['id']}.service" if b else "none"
    step("a hook that checks for another kind fails: the check can fail",
         lambda: (boot.wait_for(lambda: s.show("ActiveState", unit2) == "failed", 60, f"{unit2} to fail") and
                  s.show("ExecMainStatus", unit2) == "5", f"{s.show('Result', unit2)} {s.show('ExecMainStatus', unit2)}"))

    def denied(r):
        text = r.stdout + r.stderr
        return r.returncode != 0 and ("ccess denied" in text or "uthentication required" in text), text
    step("the user kasamond may not start another unit by name (polkit says no)",
         lambda: denied(s.run(["systemctl", "--no-ask-password", "restart", "kasa-sim.service"], user="kasamond")))
    step("nor an instance of the template that is not a number",
         lambda: denied(s.run(["systemctl", "--no-ask-password", "start", "kasamond-alert-hook@x.service"],
                              user="kasamond")))
    step("nor stop one",
         lambda: denied(s.run(["systemctl", "--no-ask-password", "stop", unit], user="kasamond")))


if __name__ == "__main__":
    sys.exit(main())
