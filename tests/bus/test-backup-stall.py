#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Backup and Restore never hold kasamond on a caller's slow fd.

Restore reads its archive in a thread: while the caller has written only
part of it, a call sent after Restore is answered; the rest written, the
restore is staged and kasamond executes itself again (same PID, the name
back, the plug known). A Backup into a pipe nobody reads (its buffer
smaller than the archive) does not keep kasamond from stopping: SIGTERM ends it, with status
0, and the Backup ends with an error (no reply). Not timed: the order of
answers and events decides, the waits only guard against a hang."""

import fcntl
import os
import signal
import struct
import sys
import termios
import time

import kasatest as kt
from gi.repository import Gio, GLib

F_SETPIPE_SZ = 1031
GUARD_S = 30


def call_fd(env, method, fd, results):
    """method(h fd), answered into results; fd stays the caller's (the
    list takes a copy)."""
    def finished(bus, res):
        try:
            bus.call_with_unix_fd_list_finish(res)
            results.append(("reply", None))
        except GLib.Error as e:
            results.append(("error", Gio.DBusError.get_remote_error(e), e.message))
    env.bus.call_with_unix_fd_list(kt.BUS_NAME, kt.MANAGER_PATH, kt.MANAGER_IFACE, method, GLib.Variant("(h)", (0,)),
                                   None, Gio.DBusCallFlags.NONE, 300000, Gio.UnixFDList.new_from_array([os.dup(fd)]), None,
                                   finished)


def get_async(env, path, results):
    env.bus.call(kt.BUS_NAME, path, "org.freedesktop.DBus.Properties", "Get",
                 GLib.Variant("(ss)", (kt.DEVICE_IFACE, "LastSeen")), None, Gio.DBusCallFlags.NONE, 300000, None,
                 lambda bus, res: results.append(bus.call_finish(res).unpack()[0]))


def name_owner(env):
    """kasamond's unique name, new in each process image; None without."""
    try:
        return env.bus.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                 "GetNameOwner", GLib.Variant("(s)", (kt.BUS_NAME,)), None, Gio.DBusCallFlags.NONE,
                                 5000, None).unpack()[0]
    except GLib.Error:
        return None


def wait_guard(env, predicate):
    """Runs the main context until predicate() or the guard; returns it."""
    end = time.monotonic() + GUARD_S
    while not predicate() and time.monotonic() < end:
        env.iterate(0.05)
    return predicate()


def main():
    t = kt.Tap()
    with kt.Env(["hs110@127.0.0.2"]) as env:
        plug = env.device_path(kt.mac_id(env.sim_devices()[0]["mac"]))
        env.wait_for(lambda: plug in env.objects(), 20, "the plug is known")
        env.wait_polled(plug, polls=2)

        # An archive to restore, written to a file.
        archive = os.path.join(env.tmp, "backup.tar")
        fd = os.open(archive, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        done = []
        call_fd(env, "Backup", fd, done)
        os.close(fd)
        env.wait_for(lambda: done, 120, "Backup answered")
        t.eq(done, [("reply", None)], "Backup into a file")
        with open(archive, "rb") as f:
            data = f.read()

        # Restore from a pipe the test writes slowly: part, then (once a
        # later call was answered) the rest.
        pid = env.procs["kasamond"].pid
        owner = name_owner(env)
        r, w = os.pipe()
        restored, got = [], []
        call_fd(env, "Restore", r, restored)
        os.close(r)
        os.write(w, data[:1024])
        get_async(env, plug, got)
        wait_guard(env, lambda: got or restored)
        t.ok(got and not restored, "a call sent after Restore is answered while its archive is incomplete",
             (got, restored))
        view = memoryview(data)[1024:]
        while view:
            view = view[os.write(w, view[:65536]):]
        os.close(w)
        env.wait_for(lambda: restored, 120, "Restore answered")
        t.eq(restored, [("reply", None)], "the rest written: Restore staged")
        env.wait_for(lambda: (lambda o: o and o != owner)(name_owner(env)), 30,
                     "kasamond executed again, back on the bus")
        t.ok(env.procs["kasamond"].pid == pid and env.daemon_alive(), "the same process, executed again")
        env.wait_for(lambda: plug in env.objects(), 20, "the plug known after the restore")
        t.ok(True, "the restored state has the plug")

        # A Backup into a pipe nobody reads, its buffer full: SIGTERM
        # still ends kasamond.
        r, w = os.pipe()
        fcntl.fcntl(r, F_SETPIPE_SZ, 4096)
        size = fcntl.fcntl(r, 1032)  # F_GETPIPE_SZ
        backed = []
        call_fd(env, "Backup", w, backed)
        os.close(w)

        def queued():
            return struct.unpack("i", fcntl.ioctl(r, termios.FIONREAD, b"\0\0\0\0"))[0]
        # The archive is larger than the pipe holds: once the backup has
        # begun writing, it waits for a reader that never comes.
        env.wait_for(lambda: queued() > 0 or backed, 60, "the backup writes into the pipe")
        t.ok(not backed and len(data) > size, f"the backup waits on the pipe ({len(data)} bytes to write, "
             f"{size} fit)", backed)
        p = env.procs["kasamond"]
        p.send_signal(signal.SIGTERM)
        stopped = wait_guard(env, lambda: p.poll() is not None)
        t.ok(stopped and p.returncode == 0, "SIGTERM ends kasamond while its backup waits", p.poll())
        if not stopped:
            p.kill()
            p.wait()
        env.procs.pop("kasamond")
        wait_guard(env, lambda: backed)
        t.ok(backed and backed[0][0] == "error", "the Backup ends with an error as kasamond goes",
             (backed, env.log()))
        os.close(r)
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
