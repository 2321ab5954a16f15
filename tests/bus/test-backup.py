#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""kasactl backup and restore against kasamond recording kasa-sim plugs,
with a real polkitd.

A tariff and an API token are made, readings recorded; a backup is
written while polls go on (they are checked to go on). A plain user may
neither back up nor restore (the polkit actions are named). A damaged copy
and a file that is not a backup are refused with nothing changed (same
process, same state files). Then kasamond is stopped, its state removed
and a fresh kasamond started; the restore puts the archive's state in
place and kasamond executes itself again (same PID, the bus name back):
Describe's devices, GetHistory and GetCost of the range recorded before
the backup, the tariffs and the tokens are what they were."""

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import time

import kasatest as kt

DEVICES = ["hs110@127.0.0.2", "kp115@127.0.0.3", "hs100@127.0.0.4"]
LOADS = {"127.0.0.2": 2000.0, "127.0.0.3": 500.0}
KASACTL = os.path.join(kt.build_dir(), "client", "kasactl")
TARIFF = {"format": "kasamond-tariff/1", "name": "Flat", "currency": "EUR",
          "periods": [{"name": "energy", "rate": 50.0}]}


def kasactl(env, *args, user=None):
    cmd = [KASACTL, "--no-ask-password", *args]
    if user:
        cmd = ["runuser", "-u", user, "--", *cmd]
    e = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=env.address, TZ="UTC", LC_ALL="C")
    p = subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                       cwd=env.tmp)
    return p.returncode, p.stdout, p.stderr


def snapshot(env, t0, t1):
    """What must survive: the devices, history and costs of [t0, t1),
    the tariffs and the tokens."""
    desc = json.loads(env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "Describe")[0])
    devices = sorted((d.get("id"), d.get("alias"), d.get("model"), d.get("mac")) for d in
                     (desc.get("devices", desc) if isinstance(desc, dict) else desc))
    hist = {}
    for addr in LOADS:
        path = env.device_path(kt.mac_id(next(s["mac"] for s in env.sim_devices() if s["address"].startswith(addr))))
        for res in ("raw", "minute"):
            hist[addr + res] = [tuple(x) for x in env.call(path, kt.METER_IFACE, "GetHistory", "tts",
                                                           (t0 * 1000000, t1 * 1000000, res))[0]]
    cost = json.loads(env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "GetCost", "aotts",
                               ([], t0 * 1000000, t1 * 1000000, ""))[0])
    rc, tariffs, _ = kasactl(env, "--json=short", "tariff", "list")
    rc2, tokens, _ = kasactl(env, "--json=short", "token", "list")
    return {"devices": devices, "history": hist, "cost": cost, "tariffs": tariffs, "tokens": tokens}


def state_hashes(env):
    out = {}
    for root, _, files in os.walk(env.state):
        for f in files:
            if f.endswith(".sqlite"):
                with open(os.path.join(root, f), "rb") as fh:
                    out[f] = hashlib.sha256(fh.read()).hexdigest()
    return out


def main():
    t = kt.Tap()
    os.environ["TZ"] = "UTC"
    tag = os.getpid() % 100000
    with kt.system_user(f"kasabak{tag}") as user, \
            kt.Env(DEVICES, polkit=True, poll_interval=1.0, sim_args=("--seed=7", "--noise=0")) as env:
        for addr, w in LOADS.items():
            env.sim(cmd="set", device=addr, load_w=w)
        env.wait_for(lambda: env.get(kt.MANAGER_PATH, kt.MANAGER_IFACE, "TotalPower") >= sum(LOADS.values()) - 1,
                     30, "every plug is polled at its load")
        t0 = int(time.time()) - 1
        with open(os.path.join(env.tmp, "flat.json"), "w") as f:
            json.dump(TARIFF, f)
        rc, out, err = kasactl(env, "tariff", "add", "flat.json")
        rc2, out2, err2 = kasactl(env, "tariff", "activate", "1", f"--since=@{t0 - 3600}")
        rc3, out3, err3 = kasactl(env, "token", "create", "--name=ci", "--role=viewer")
        t.ok(rc == 0 and rc2 == 0 and rc3 == 0, "a tariff and a token", out + err + out2 + err2 + out3 + err3)
        # t1 on a minute's end, once that minute is closed: a minute still
        # open grows with every poll, and its rollup and the costs read
        # from it would differ between two snapshots.
        time.sleep(5)
        t1 = (int(time.time()) // 60 + 1) * 60
        env.wait_for(lambda: time.time() > t1 + 3, 70, "the minute before t1 is closed")

        # Backup while recording: the polls go on meanwhile.
        archive = os.path.join(env.tmp, "kasamond.backup")
        mon = env.watch_properties()
        rc, out, err = kasactl(env, "backup", archive)
        t.ok(rc == 0 and os.path.getsize(archive) > 0 and "Wrote the backup" in out, "kasactl backup FILE (root)",
             out + err)
        listing = subprocess.run(["tar", "tf", archive], capture_output=True, text=True).stdout.split()
        t.ok(listing[:1] == ["MANIFEST.json"] and "devices.sqlite" in listing and "tariffs.sqlite" in listing and
             "access.sqlite" in listing and "readings/data.mdb" in listing, "tar lists the manifest and the state files",
             listing)
        man = json.loads(subprocess.run(["tar", "xOf", archive, "MANIFEST.json"], capture_output=True,
                                        text=True).stdout or "{}")
        t.ok(man.get("format") == "kasamond-backup/1" and man.get("version") and man.get("created_usec", 0) > t1 * 1e6
             and all(len(f.get("sha256", "")) == 64 for f in man.get("files", [])) and
             any(f.get("name") == "devices.sqlite" and isinstance(f.get("schema"), int) for f in man.get("files", [])),
             "the manifest: format, version, time, checksums, schema versions", man)
        mon.clear()
        env.iterate(3)
        t.ok(len(mon.values(env.device_path(kt.mac_id(env.sim_devices()[0]["mac"])), kt.DEVICE_IFACE, "LastSeen"))
             >= 1, "polls went on after the backup")
        mon.close()
        rc, out, err = kasactl(env, "backup", archive)
        t.ok(rc != 0 and "exists" in err, "backup does not overwrite a file", err)

        before = snapshot(env, t0, t1)
        t.ok(len(before["devices"]) >= 3 and len(before["history"]["127.0.0.2raw"]) >= 4 and before["cost"].get("total"),
             "devices, readings and costs "
             "recorded before the backup", before)

        # Plain users may do neither.
        rc, out, err = kasactl(env, "backup", os.path.join("/tmp", f"kasabak{tag}.tar"), user=user)
        t.ok(rc != 0 and "org.kasamond.kasa1.manage-access" in err, "plain user: backup denied, naming manage-access",
             err)
        try:
            os.unlink(os.path.join("/tmp", f"kasabak{tag}.tar"))
        except FileNotFoundError:
            pass
        os.chmod(archive, 0o644)
        rc, out, err = kasactl(env, "restore", archive, user=user)
        t.ok(rc != 0 and "org.kasamond.kasa1.erase-data" in err, "plain user: restore denied, naming erase-data", err)

        # Damaged and foreign archives: refused, nothing changed.
        pid = env.procs["kasamond"].pid
        hashes = state_hashes(env)
        with open(archive, "rb") as f:
            data = bytearray(f.read())
        data[len(data) // 2] ^= 0xff
        bad = os.path.join(env.tmp, "damaged.backup")
        with open(bad, "wb") as f:
            f.write(data)
        rc, out, err = kasactl(env, "restore", bad)
        t.ok(rc != 0 and ("damaged" in err or "checksum" in err), "a damaged archive is refused, saying so", err)
        foreign = os.path.join(env.tmp, "foreign.tar")
        subprocess.run(["tar", "cf", foreign, "-C", env.tmp, "flat.json"], check=True)
        rc, out, err = kasactl(env, "restore", foreign)
        t.ok(rc != 0 and "Not a kasamond backup" in err, "a foreign tar is refused, saying so", err)
        time.sleep(1)
        t.ok(env.daemon_alive() and env.procs["kasamond"].pid == pid and env.has_owner() and
             state_hashes(env).keys() == hashes.keys() and
             not os.path.exists(os.path.join(env.state, "restore.staged")) and
             not os.path.exists(os.path.join(env.state, "restore.tmp")),
             "after the refusals: the same kasamond, the same state files, nothing staged")
        t.eq(snapshot(env, t0, t1), before, "after the refusals: history, costs, tariffs, tokens unchanged")

        # A fresh kasamond, then the restore.
        env.stop_daemon()
        shutil.rmtree(env.state)
        os.mkdir(env.state)
        env.start_daemon()
        rc, tl, err = kasactl(env, "--json=short", "tariff", "list")
        t.ok(rc == 0 and json.loads(tl or "[]") == [], "the fresh kasamond has no tariffs", tl + err)
        pid = env.procs["kasamond"].pid
        rc, out, err = kasactl(env, "restore", archive)
        t.ok(rc == 0 and "Restored" in out, "kasactl restore FILE (root)", out + err)
        env.wait_for(lambda: not os.path.exists(os.path.join(env.state, "restore.staged")) and env.has_owner(), 30,
                     "kasamond is back with the restored state")
        env.wait_for(lambda: env.get(kt.MANAGER_PATH, kt.MANAGER_IFACE, "DeviceCount") >= 3, 20, "devices are back")
        t.ok(env.daemon_alive() and env.procs["kasamond"].pid == pid, "kasamond executed itself again (same PID)")
        after = snapshot(env, t0, t1)
        for k in ("devices", "tariffs", "tokens", "cost"):
            t.eq(after[k], before[k], f"after the restore: {k} as before")
        t.eq(after["history"], before["history"], "after the restore: GetHistory raw and minute as before")
        time.sleep(3)
        rc, out, err = kasactl(env, "export", "--resolution=raw", f"--since=@{t1 + 5}", "--fields=device,time")
        t.ok(rc == 0 and len(out.splitlines()) > 2, "after the restore kasamond records on", out[-300:] + err)
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
