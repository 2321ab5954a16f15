#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A schedule's Fire asks who calls without waiting: while systemd (here
the test, standing in for org.freedesktop.systemd1 on the private bus)
holds its answer to GetUnitByPID, kasamond answers other calls; once it
answers, a caller of kasamond's user (root here, as kasamond runs) in the
schedule's own service fires it as its timer, and one in any other unit
is decided as anyone (polkit: root may) and runs it as RunNow does.

The schedule is put into schedules.sqlite by hand (AddSchedule needs a
real systemd), valid until long ago: fired as its timer it is not run
("outside the time it is valid"), fired as RunNow it switches the plug
off. Not timed: the order of answers and events decides."""

import os
import sqlite3
import sys

import kasatest as kt
from gi.repository import Gio, GLib

SYSTEMD1 = "org.freedesktop.systemd1"
SYSTEMD1_POLICY = kt.bus_policy_owning("root", SYSTEMD1)
SYSTEMD1_XML = """<node><interface name="org.freedesktop.systemd1.Manager">
  <method name="GetUnitByPID"><arg type="u" direction="in"/><arg type="o" direction="out"/></method>
</interface></node>"""
SCHEDULE_IFACE = "org.kasamond.Kasa1.Schedule"


def unit_path(unit):
    """systemd's object path of a unit: its name, bus-label escaped."""
    return "/org/freedesktop/systemd1/unit/" + "".join(
        c if c.isascii() and c.isalnum() else f"_{ord(c):02x}" for c in unit)


class FakeSystemd:
    """Holds each GetUnitByPID call until told how to answer it."""

    def __init__(self, bus):
        self.held = []
        info = Gio.DBusNodeInfo.new_for_xml(SYSTEMD1_XML).interfaces[0]
        self.reg = bus.register_object("/org/freedesktop/systemd1", info, self._on_call, None, None)
        r = bus.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "RequestName",
                          GLib.Variant("(su)", (SYSTEMD1, 4)), None, Gio.DBusCallFlags.NONE, 5000, None)
        if r.unpack()[0] != 1:
            raise RuntimeError(f"could not own {SYSTEMD1}: {r.unpack()}")

    def _on_call(self, conn, sender, path, iface, method, params, invocation):
        self.held.append((params.unpack()[0], invocation))

    def answer(self, unit):
        pid, inv = self.held.pop(0)
        inv.return_value(GLib.Variant("(o)", (unit_path(unit),)))
        return pid


def fire_async(env, path, results):
    def finished(bus, res):
        try:
            results.append(("reply", bus.call_finish(res).unpack()[0]))
        except GLib.Error as e:
            results.append(("error", e.message))
    env.bus.call(kt.BUS_NAME, path, SCHEDULE_IFACE, "Fire", None, None, Gio.DBusCallFlags.NONE, 120000, None,
                 finished)


def main():
    t = kt.Tap()
    with kt.Env(["hs110@127.0.0.2"], bus_policy=SYSTEMD1_POLICY) as env:
        plug = env.device_path(kt.mac_id(env.sim_devices()[0]["mac"]))
        env.wait_for(lambda: plug in env.objects(), 20, "the plug is known")
        dev_id = plug.rsplit("/", 1)[1]
        env.stop_daemon()
        db = sqlite3.connect(os.path.join(env.state, "schedules.sqlite"))
        db.execute("INSERT INTO schedules (id, devices, action, calendar, valid_until_usec) "
                   "VALUES (1, ?, 'off', 'daily', 1)", (dev_id,))
        db.commit()
        db.close()
        env.start_daemon()
        sched = f"{kt.MANAGER_PATH}/schedule/1"
        env.wait_for(lambda: sched in env.objects() and plug in env.objects(), 20, "the schedule and the plug")
        env.call(plug, kt.DEVICE_IFACE, "SetOn", "b", (True,))
        fake = FakeSystemd(env.bus)

        # Fire from root, kasamond's user here: kasamond asks systemd for
        # the caller's unit, and the test keeps it waiting.
        fired = []
        fire_async(env, sched, fired)
        env.wait_for(lambda: fake.held, 30, "kasamond asks systemd for the caller's unit")
        t.eq(fake.held[0][0], os.getpid(), "GetUnitByPID asks about the calling process")
        got = []
        env.bus.call(kt.BUS_NAME, plug, "org.freedesktop.DBus.Properties", "Get",
                     GLib.Variant("(ss)", (kt.DEVICE_IFACE, "On")), None, Gio.DBusCallFlags.NONE, 120000, None,
                     lambda bus, res: got.append(bus.call_finish(res).unpack()[0]))
        env.wait_for(lambda: got or fired, 90, "the Get or the Fire answered")
        # (A kasamond that asked synchronously answers it only once its
        # own call to systemd timed out, and says so.)
        t.ok(got and not fired and "unknown unit" not in env.log(),
             "a call sent while systemd has not answered is answered, Fire still waiting", (got, fired, env.log()))

        # Its own service: fired as its timer, so not run (out of date).
        fake.answer("kasamond-schedule-1.service")
        env.wait_for(lambda: fired, 30, "Fire answered")
        t.eq(fired, [("reply", "not run: outside the time it is valid")],
             "from the schedule's own service: fired as its timer")
        t.eq(env.get(plug, kt.DEVICE_IFACE, "On"), True, "and the plug was not switched")

        # Any other unit: decided as anyone (root may), run as RunNow.
        fired = []
        fire_async(env, sched, fired)
        env.wait_for(lambda: fake.held, 30, "kasamond asks systemd again")
        fake.answer("session-1.scope")
        env.wait_for(lambda: fired, 30, "Fire answered")
        t.ok(fired and fired[0][0] == "reply" and fired[0][1].endswith(" off"),
             "from another unit: run as RunNow, switching the plug off", fired)
        t.eq(env.get(plug, kt.DEVICE_IFACE, "On"), False, "the plug is off")
        env.wait_for(lambda: "fired by kasamond's user from session-1.scope, not as its timer" in env.log(), 10,
                     "the notice in the log")
        t.ok(True, "kasamond says a Fire came from kasamond's user in another unit")

        t.ok(env.daemon_alive(), "kasamond still runs")
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
