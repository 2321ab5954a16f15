#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Authorization with a real polkitd serving the test bus: every mutating
method, called raw over D-Bus and through kasactl, by root, by a plain user
and by a member of the group kasa (without and with the project's rules
file), gives exactly the expected allow or deny; a denied call changes
nothing; with polkitd gone nobody but root is allowed; reading stays open.

polkitd sees only the project's actions and rules (a private mount
namespace, see kasatest.Env.start_polkit). The users, and the group kasa
when it did not exist, are created here and deleted at the end. Two runs of
this test at once would share the group kasa: run one at a time."""

import json
import os
import subprocess
import sys
import time

import kasatest as kt

# Switching and adding wait for the plug's answer up to Polling.Timeout: a
# long one, so a loaded machine never turns an allowed call into Offline.
DEVICES = ["hs110@127.0.0.2", "hs100@127.0.0.3", "kp115@127.0.0.4"]
# The third plug is not configured: AddDevice adds it.
TARGETS = "127.0.0.2 127.0.0.3"
ADD_ADDRESS = "127.0.0.4"
REMOVE_ADDRESS = "127.0.0.3"

SWITCH = "org.kasamond.kasa1.switch"
MANAGE = "org.kasamond.kasa1.manage-devices"
ACCESS_DENIED = "org.freedesktop.DBus.Error.AccessDenied"
INTERACTIVE_REQUIRED = "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"
NOT_FOUND = "org.kasamond.Kasa1.Error.NotFound"

# Runs as the caller: one method call on the test bus, the outcome as JSON.
CALL_SNIPPET = r'''
import json, sys
from gi.repository import Gio, GLib
addr, path, iface, method, sig, args, interactive = sys.argv[1:]
bus = Gio.DBusConnection.new_for_address_sync(
    addr, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
    None, None)
params = GLib.Variant("(" + sig + ")", tuple(json.loads(args))) if sig else None
flags = Gio.DBusCallFlags.ALLOW_INTERACTIVE_AUTHORIZATION if interactive == "1" else Gio.DBusCallFlags.NONE
try:
    r = bus.call_sync("org.kasamond.Kasa1", path, iface, method, params, None, flags, 60000, None)
    print(json.dumps({"reply": r.unpack()}))
except GLib.Error as e:
    print(json.dumps({"error": Gio.DBusError.get_remote_error(e), "message": e.message}))
'''


class Caller:
    def __init__(self, env, label, user=None):
        self.env = env
        self.label = label
        self.user = user

    def _wrap(self, cmd):
        env = ["env", f"DBUS_SYSTEM_BUS_ADDRESS={self.env.address}", "PYTHONDONTWRITEBYTECODE=1"]
        return (["runuser", "-u", self.user, "--"] if self.user else []) + env + cmd

    def call(self, path, iface, method, sig="", args=(), interactive=False):
        """Returns ("reply", values) or ("error", name, message)."""
        p = subprocess.run(self._wrap([sys.executable, "-c", CALL_SNIPPET, self.env.address, path, iface, method,
                                       sig, json.dumps(list(args)), "1" if interactive else "0"]),
                           capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)
        try:
            out = json.loads(p.stdout)
        except ValueError:
            return ("error", "no-output", f"exit {p.returncode}: {p.stdout}{p.stderr}")
        if "reply" in out:
            return ("reply", out["reply"])
        return ("error", out["error"], out["message"])

    def kasactl(self, *args):
        p = subprocess.run(self._wrap([os.path.join(kt.build_dir(), "client", "kasactl"), *args]),
                           capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout + p.stderr


class Plugs:
    """The three simulated plugs and what the daemon knows of them."""

    def __init__(self, env):
        self.env = env
        sims = env.sim_devices()
        self.switched, self.removable, self.addable = (env.device_path(kt.mac_id(s["mac"])) for s in sims)
        env.wait_for(lambda: self.switched in self.objects() and self.removable in self.objects(), 20,
                     "both configured plugs are known")
        self.renames = 0

    def objects(self):
        return self.env.objects()

    def relay(self):
        return self.env.truth(0)[0]["relay"]

    def alias(self):
        """(what the plug stores, what kasamond shows)"""
        return (self.env.sim_devices()[0]["alias"], self.env.get(self.switched, kt.DEVICE_IFACE, "Alias"))

    def new_alias(self):
        self.renames += 1
        return f"polkit test {self.renames}"

    def restore(self):
        """Root puts the plug set back as it was: the removable plug known,
        the addable one not."""
        objects = self.objects()
        if self.removable not in objects:
            self.env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "AddDevice", "s", (REMOVE_ADDRESS,))
        if self.addable in objects:
            self.env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "RemoveDevice", "o", (self.addable,))


def action_table(plugs):
    """(name, polkit action, raw call, kasactl arguments, state probe).
    A raw call takes (caller, interactive); the probe is read before and
    after, and differs exactly when the call took effect."""
    env = plugs.env

    def set_on(c, i):
        return c.call(plugs.switched, kt.DEVICE_IFACE, "SetOn", "b", (not plugs.relay(),), i)

    def toggle(c, i):
        return c.call(plugs.switched, kt.DEVICE_IFACE, "Toggle", interactive=i)

    def rename(c, i):
        return c.call(plugs.switched, kt.DEVICE_IFACE, "Rename", "s", (plugs.new_alias(),), i)

    def discover(c, i):
        return c.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "Discover", "d", (0.5,), i)

    def add(c, i):
        return c.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "AddDevice", "s", (ADD_ADDRESS,), i)

    def remove(c, i):
        return c.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "RemoveDevice", "o", (plugs.removable,), i)

    def objects_probe():
        return sorted(plugs.objects())

    return [
        ("SetOn", SWITCH, set_on, lambda: ["on" if not plugs.relay() else "off", "127.0.0.2"], plugs.relay),
        ("Toggle", SWITCH, toggle, lambda: ["toggle", "127.0.0.2"], plugs.relay),
        ("Rename", MANAGE, rename, lambda: ["rename", "127.0.0.2", plugs.new_alias()], plugs.alias),
        # Discover only looks (the plugs it finds are known already): it
        # may change nothing either way.
        ("Discover", MANAGE, discover, lambda: ["--timeout=0.5", "discover"], objects_probe),
        ("AddDevice", MANAGE, add, lambda: ["add", ADD_ADDRESS], objects_probe),
        ("RemoveDevice", MANAGE, remove, lambda: ["remove", REMOVE_ADDRESS], objects_probe),
    ]


def expect_changed(name, allowed):
    return allowed and name != "Discover"


def check_caller(t, plugs, caller, allowed_actions, denied_error=INTERACTIVE_REQUIRED, denied_text=None):
    """Every action, raw and through kasactl; allowed_actions is the set of
    polkit actions the caller must be granted, all others denied."""
    for name, action, raw, ctl_args, probe in action_table(plugs):
        allowed = action in allowed_actions
        verdict = "allowed" if allowed else "denied"
        what = f"{caller.label}: {name} ({action})"

        # Without the interactive flag: polkit could ask for a password, but
        # the caller said it cannot answer.
        before = probe()
        r = raw(caller, False)
        if allowed:
            t.ok(r[0] == "reply", f"{what} is allowed", r)
        else:
            t.ok(r[0] == "error" and r[1] == denied_error and (denied_text is None or denied_text in r[2]),
                 f"{what} is denied with {denied_error}", r)
        t.eq(probe() != before, expect_changed(name, allowed), f"{what}: {verdict} call took effect"
             if expect_changed(name, allowed) else f"{what}: {verdict} call changed nothing")
        plugs.restore()

        if not allowed:
            # With it, and no authentication agent anywhere: plainly denied.
            before = probe()
            r = raw(caller, True)
            t.ok(r[0] == "error" and r[1] == ACCESS_DENIED and (denied_text is None or denied_text in r[2]),
                 f"{what} with interactive authorization allowed, no agent: {ACCESS_DENIED}", r)
            t.eq(probe(), before, f"{what} (interactive): denied call changed nothing")
            plugs.restore()

        before = probe()
        rc, out = caller.kasactl("--no-ask-password", *ctl_args())
        if allowed:
            t.ok(rc == 0, f"{what}: kasactl is allowed (exit 0)", f"exit {rc}: {out}")
        else:
            t.ok(rc == 4 and action in out, f"{what}: kasactl is denied (exit 4, names the action)",
                 f"exit {rc}: {out}")
        t.eq(probe() != before, expect_changed(name, allowed),
             f"{what}: kasactl {'took effect' if expect_changed(name, allowed) else 'changed nothing'}")
        plugs.restore()


def check_reading(t, plugs, caller):
    now_us = int(time.time() * 1e6)
    reads = [
        ("Get Alias", (plugs.switched, "org.freedesktop.DBus.Properties", "Get", "ss", (kt.DEVICE_IFACE, "Alias"))),
        ("GetAll Device", (plugs.switched, "org.freedesktop.DBus.Properties", "GetAll", "s", (kt.DEVICE_IFACE,))),
        ("GetManagedObjects", (kt.MANAGER_PATH, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects")),
        ("Manager.Describe", (kt.MANAGER_PATH, kt.MANAGER_IFACE, "Describe")),
        ("Device.Describe", (plugs.switched, kt.DEVICE_IFACE, "Describe")),
        ("GetHistory", (plugs.switched, kt.METER_IFACE, "GetHistory", "tts", (now_us - 3600_000_000, now_us, "raw"))),
        ("GetEnergy", (plugs.switched, kt.METER_IFACE, "GetEnergy", "tts", (now_us - 86400_000_000, 0, "day"))),
    ]
    for name, a in reads:
        r = caller.call(*a)
        t.ok(r[0] == "reply", f"{caller.label}: reading ({name}) is allowed", r)
    for args in (["list"], ["show", "127.0.0.2"]):
        rc, out = caller.kasactl("--no-ask-password", *args)
        t.ok(rc == 0, f"{caller.label}: kasactl {args[0]} is allowed", f"exit {rc}: {out}")


def check_unknown_device(t, plugs, caller, allowed):
    """Authorization comes before the lookup: nobody learns more by being
    denied, and an allowed call still gets its answer when the device is
    not there on the re-run."""
    gone = plugs.env.device_path("000000000000")
    r = caller.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "RemoveDevice", "o", (gone,))
    want = NOT_FOUND if allowed else INTERACTIVE_REQUIRED
    t.ok(r[0] == "error" and r[1] == want, f"{caller.label}: RemoveDevice of an unknown device: {want}", r)


def check_no_blocking_call(t, env, plugs, caller):
    """Asking polkit must not stop the daemon's loop: no synchronous bus
    call (sd_bus_call() waits in ppoll() on the bus socket; the loop waits
    in epoll) while it authorizes a call. Only the loop's thread is traced."""
    log = os.path.join(env.tmp, "strace.log")
    pid = env.procs["kasamond"].pid

    def traced():
        with open(f"/proc/{pid}/status") as f:
            return any(line.split()[:1] == ["TracerPid:"] and line.split()[1] != "0" for line in f)

    tracer = subprocess.Popen(["strace", "-qq", "-e", "trace=poll,ppoll,select,pselect6", "-o", log,
                               "-p", str(pid)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        # The call must not start before strace has attached.
        deadline = time.monotonic() + 10
        while not traced() and tracer.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        attached = traced()
        r = caller.call(plugs.switched, kt.DEVICE_IFACE, "Toggle")
    finally:
        tracer.terminate()
        _, err = tracer.communicate(timeout=10)
    with open(log) as f:
        waits = [line.strip() for line in f if "poll" in line or "select" in line]
    t.ok(attached, "strace attached to kasamond", err)
    t.ok(r[0] == "error" and r[1] == INTERACTIVE_REQUIRED, f"{caller.label}: Toggle is denied (traced)", r)
    t.ok(attached and not waits, f"{caller.label}: authorizing never blocks the loop on a bus call",
         "\n".join(waits[:5]))


def main():
    t = kt.Tap()
    everything = {SWITCH, MANAGE}
    rules = os.path.join(kt.source_dir(), "polkit", "org.kasamond.kasa1.rules")
    tag = os.getpid()
    with kt.system_user(f"kasapk{tag}u") as plain_user, \
            kt.system_user(f"kasapk{tag}k", group="kasa") as kasa_user, \
            kt.Env(DEVICES, targets=TARGETS, polkit=True, poll_timeout=10.0) as env:
        plugs = Plugs(env)
        root = Caller(env, "root")
        plain = Caller(env, "plain user", plain_user)
        member = Caller(env, "kasa member", kasa_user)

        # The project's actions only: the group means nothing yet.
        check_caller(t, plugs, root, everything)
        check_caller(t, plugs, plain, set())
        member.label = "kasa member without the rules"
        check_caller(t, plugs, member, set())
        check_reading(t, plugs, plain)
        check_no_blocking_call(t, env, plugs, plain)

        env.stop_polkit()
        env.start_polkit(rules=[rules])
        member.label = "kasa member with the rules"
        check_caller(t, plugs, member, everything)
        check_unknown_device(t, plugs, member, True)
        plain.label = "plain user with the rules"
        check_caller(t, plugs, plain, set())
        check_unknown_device(t, plugs, plain, False)

        # polkit gone: never allowed by default, and the error says why.
        env.stop_polkit()
        plain.label = "plain user, no polkitd"
        check_caller(t, plugs, plain, set(), denied_error=ACCESS_DENIED, denied_text="polkit could not be asked")
        member.label = "kasa member, no polkitd"
        check_caller(t, plugs, member, set(), denied_error=ACCESS_DENIED, denied_text="polkit could not be asked")
        root.label = "root, no polkitd"
        check_caller(t, plugs, root, everything)

        # And back: the daemon asks again, nothing was remembered.
        env.start_polkit(rules=[rules])
        before = plugs.relay()
        r = member.call(plugs.switched, kt.DEVICE_IFACE, "Toggle")
        t.ok(r[0] == "reply" and plugs.relay() != before, "kasa member: allowed again once polkitd is back", r)

        t.ok(env.daemon_alive(), "kasamond survived all of it", env.log())
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
