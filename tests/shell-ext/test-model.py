#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""gjs unit tests of the extension's model and bus client against kasamond
and kasa-sim plugs on a private bus (tests/bus/kasatest.py): model-test.js
as root, denial-test.js as an unprivileged user whom polkit refuses. The
gjs scripts print TAP, re-numbered here, and ask for harness actions with
"@@ <json>" lines."""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "bus"))
import kasatest as kt  # noqa: E402

DEVICES = ["hs110@127.0.0.2", "kp115@127.0.0.3", "hs300@127.0.0.4", "hs100@127.0.0.5"]
USER = "kasashellext"


def run_gjs(t, env, script, user=None):
    sims = env.sim_devices()
    ids = [kt.mac_id(s["mac"]) for s in sims]
    outlets = [kt.mac_id(sims[2]["mac"], k) for k in range(len(sims[2]["children"]))]
    cmd = ["gjs", "-m", os.path.join(HERE, script)]
    if user:
        cmd = ["runuser", "-u", user, "--"] + cmd
    environ = dict(os.environ, KASA_BUS_ADDRESS=env.address, KASA_SOURCE_ROOT=kt.source_dir())
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=environ, cwd="/")
    points = 0
    for line in p.stdout:
        line = line.rstrip("\n")
        if line.startswith("@@ "):
            req = json.loads(line[3:])
            if req["cmd"] == "devices":
                reply = {"ids": ids, "outlets": outlets, "addresses": [d.split("@")[1] for d in DEVICES]}
            elif req["cmd"] == "sim":
                reply = env.sim(**req["req"])
            elif req["cmd"] == "truth":
                reply = env.truth(req["device"])[0]
            elif req["cmd"] == "stop-daemon":
                reply = {"status": env.stop_daemon()}
            elif req["cmd"] == "start-daemon":
                env.start_daemon()
                reply = {}
            else:
                reply = {"error": f"unknown request {req}"}
            p.stdin.write(json.dumps(reply) + "\n")
            p.stdin.flush()
        elif line.startswith("ok ") or line.startswith("not ok "):
            points += 1
            good = line.startswith("ok ")
            t.ok(good, f"{script}: {line.split(' - ', 1)[1] if ' - ' in line else line}")
        elif line.startswith("#"):
            print(line, flush=True)
    p.stdin.close()
    rc = p.wait(60)
    err = p.stderr.read()
    t.ok(rc == 0 and points > 0, f"{script} ran to its end", f"exit {rc}\n{err}")
    # The extension's code must not warn where all went well.
    t.ok("WARNING" not in err and "CRITICAL" not in err and "Error" not in err,
         f"{script}: no warnings on stderr", err)


def main():
    t = kt.Tap()
    with kt.Env(DEVICES, sim_args=("--noise=0",), polkit=True) as env:
        env.discover(1.0)
        run_gjs(t, env, "model-test.js")
        with kt.system_user(USER) as user:
            run_gjs(t, env, "denial-test.js", user=user)
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
