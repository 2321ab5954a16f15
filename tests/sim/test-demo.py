#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tools/demo as a user runs it, up to its live view: no warning from the
bus about a missing user, the simulator's control socket printed and
answering, kasamond seeing the plugs; a second demo while the first runs
stops with a clear message instead of driving the first one's plugs; the
first cleans up on SIGTERM.

Usage: test-demo.py PATH-TO-tools/demo   (inside tests/netns-run, with
KASA_BUILD_ROOT set: the demo uses that build tree)
Prints TAP.
"""

import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
import kasalib  # noqa: E402

BANNER_END = "Stop with Ctrl-C."


class Demo:
    def __init__(self, path, tmp, name):
        self.err_path = os.path.join(tmp, f"{name}.err")
        self.err = open(self.err_path, "w")
        env = dict(os.environ, KASA_BUILD_DIR=os.environ["KASA_BUILD_ROOT"])
        # A session of its own: what it leaves behind is found by its
        # process group, which is the demo's PID.
        self.p = subprocess.Popen(["bash", path], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=self.err, env=env, text=True, start_new_session=True)
        self.out = ""

    def read_until(self, text, timeout):
        """Reads stdout until text appears, the demo exits or timeout."""
        end = time.monotonic() + timeout
        fd = self.p.stdout.fileno()
        while text not in self.out and time.monotonic() < end:
            if not select.select([fd], [], [], 0.2)[0]:
                continue
            chunk = os.read(fd, 65536).decode(errors="replace")
            if not chunk:
                break
            self.out += chunk
        return text in self.out

    def stderr(self):
        self.err.flush()
        with open(self.err_path) as f:
            return f.read()

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(30)
        except subprocess.TimeoutExpired:
            rc = None
        # Whatever the demo started and left in its group.
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if rc is None:
            self.p.wait()
        self.read_until("\0", 1)
        self.err.close()
        return rc


def main():
    demo = sys.argv[1]
    t = kasalib.Tap()
    tmp = tempfile.mkdtemp(prefix="demo-test-")
    first = second = None
    try:
        first = Demo(demo, tmp, "first")
        up = first.read_until(BANNER_END, 120)
        if not t.ok(up, "the demo starts and prints its instructions", first.out + first.stderr()):
            return t.close()
        t.ok("Unknown username" not in first.out + first.stderr(), "no warning about a user that does not exist",
             first.stderr())
        m = re.search(r"control socket: (\S+)", first.out)
        t.ok(m is not None, "the simulator's control socket is printed", first.out)
        if m:
            try:
                with kasalib.SimControl(m.group(1)) as ctl:
                    listed = ctl.request(cmd="list")["devices"]
                t.eq([d["address"] for d in listed], [f"127.0.0.{i}" for i in range(2, 7)],
                     "the printed control socket is the demo's kasa-sim")
            except (OSError, RuntimeError) as e:
                t.ok(False, "the printed control socket is the demo's kasa-sim", repr(e))
        bus = re.search(r"DBUS_SYSTEM_BUS_ADDRESS=(\S+)", first.out)
        kasactl = os.path.join(os.environ["KASA_BUILD_ROOT"], "client", "kasactl")
        seen = ""
        for _ in range(100):
            r = subprocess.run([kasactl], env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=bus.group(1) if bus else ""),
                               capture_output=True, text=True, timeout=30)
            seen = r.stdout + r.stderr
            if all(f"Sim {p}" in seen for p in ("hs110", "kp115", "hs300", "kp303", "hs100")):
                break
            time.sleep(0.2)
        t.ok(all(f"Sim {p}" in seen for p in ("hs110", "kp115", "hs300", "kp303", "hs100")),
             "kasactl on the demo's bus shows its five devices", seen)

        # the addresses are taken: a second demo must not go on
        second = Demo(demo, tmp, "second")
        try:
            rc = second.p.wait(120)
        except subprocess.TimeoutExpired:
            rc = None
        second.read_until("\0", 1)
        t.ok(rc not in (None, 0), "a second demo exits with an error", (rc, second.out))
        t.ok("kasamond is running" not in second.out, "the second demo does not start kasamond", second.out)
        err = second.stderr()
        t.ok("127.0.0.2-6:9999 must be free" in err and "127.0.0.2" in err,
             "the second demo says kasa-sim could not bind and why", err)
        second.stop()
        second = None

        removed = re.search(r"kasamond-demo\.\w+", first.out)
        rc = first.stop()
        first = None
        t.ok(rc is not None, "the demo stops on SIGTERM", rc)
        t.ok(removed is not None and not os.path.exists(os.path.join("/tmp", removed.group(0))),
             "the demo removed its temporary directory", removed)
    except Exception as e:  # a crash is a failure, with the reason in the log
        t.ok(False, "test ran without exceptions", repr(e))
    finally:
        for d in (first, second):
            if d is not None:
                d.stop()
        subprocess.run(["rm", "-rf", tmp])
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
