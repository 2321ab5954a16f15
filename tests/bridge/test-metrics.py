#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""/metrics: the exposition format passes promtool, names and labels as
documented, values as the simulator's truth; a token is needed unless
--open=metrics. Debian's prometheus scrapes the bridge (a temporary config
and data directory, 127.0.0.1 only, the token in a credentials file as the
README shows) and a PromQL query through its HTTP API returns the plug's
power."""

import json
import os
import re
import subprocess
import sys
import urllib.parse
import urllib.request

import bridgetest as bt
import kasatest as kt

DEVICES = ["hs110@127.0.0.2", "hs300@127.0.0.3", "hs100@127.0.0.4"]
PROM_PORT = 9090
LOAD_W = 777.0

SCRAPE = """global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: kasa
    authorization:
      credentials_file: {token_file}
    static_configs:
      - targets: ['127.0.0.1:{port}']
"""


def samples(text):
    """{(name, frozenset(labels)): value}"""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$', line)
        if not m:
            continue
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def find(s, name, **labels):
    for (n, ls), v in s.items():
        if n == name and all((k, val) in ls for k, val in labels.items()):
            return v, dict(ls)
    return None, None


def prom_query(q):
    url = f"http://127.0.0.1:{PROM_PORT}/api/v1/query?" + urllib.parse.urlencode({"query": q})
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def main():
    t = kt.Tap()
    with bt.bridge_env(DEVICES) as (env, br):
        env.wait_for(lambda: len(env.objects()) >= 3 + 6, 20, "the devices are known")
        for path in list(env.objects()):
            env.wait_polled(path)
        sims = env.sim_devices()
        plug, strip, plain = (kt.mac_id(s["mac"]) for s in sims)
        outlet = kt.mac_id(sims[1]["mac"], 0)
        viewer = bt.create_token(env, "prometheus", "viewer")[1]
        env.sim(cmd="set", device=0, load_w=LOAD_W)
        env.wait_polled(env.device_path(plug), polls=2)

        t.ok(bt.is_error(br.get("/metrics"), 401), "/metrics without a token: 401 (not opened)")
        st, hdrs, text = br.get("/metrics", viewer)
        t.ok(st == 200 and hdrs.get("content-type", "").startswith("text/plain; version=0.0.4"),
             "/metrics: 200, text/plain; version=0.0.4", (st, hdrs))
        p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        t.ok(p.returncode == 0, "promtool check metrics: no complaints", p.stdout + p.stderr)
        s = samples(text)
        v, labels = find(s, "kasa_power_watts", id=plug)
        truth = env.truth(0)[0]
        t.ok(v is not None and abs(v - LOAD_W) < LOAD_W * 0.05, f"kasa_power_watts of the plug is ~{LOAD_W}", v)
        t.ok(labels and labels.get("alias") == sims[0]["alias"] and labels.get("model", "").startswith("HS110") and
             labels.get("parent") == "", "labels id, alias, model, parent", labels)
        _, ol = find(s, "kasa_power_watts", id=outlet)
        t.ok(ol and ol.get("parent") == strip, "an outlet's parent label is its strip", ol)
        energy_wh = env.get(env.device_path(plug), kt.METER_IFACE, "EnergyTotal")
        v, _ = find(s, "kasa_energy_joules_total", id=plug)
        t.ok(v is not None and abs(v - energy_wh * 3600) <= 3600 * 2, "kasa_energy_joules_total is EnergyTotal in J",
             (v, energy_wh, truth))
        for name in ("kasa_voltage_volts", "kasa_current_amperes"):
            t.ok(find(s, name, id=plug)[0] is not None, f"{name} of the plug")
        t.ok(find(s, "kasa_power_watts", id=plain)[0] is None and find(s, "kasa_relay_on", id=plain)[0] == 1.0,
             "a plug without a meter: no power series, kasa_relay_on 1")
        t.eq(find(s, "kasa_device_up", id=plug)[0], 1.0, "kasa_device_up 1")
        t.eq(find(s, "kasa_up")[0], 1.0, "kasa_up 1")
        t.ok(find(s, "kasa_bridge_http_requests_total", handler="/metrics", code="401")[0] == 1.0,
             "the bridge counts its requests: one 401 on /metrics so far")
        t.ok(find(s, "kasa_cost_total")[0] is None, "no kasa_cost_total without a tariff")
        env.sim(cmd="set", device=0, relay=False)
        kt.eventually(t, env, lambda: find(samples(br.get("/metrics", viewer)[2]), "kasa_relay_on", id=plug)[0] == 0.0,
                      10, "the relay switched off in the simulator: kasa_relay_on 0")
        env.sim(cmd="set", device=0, relay=True)

        # Prometheus itself, scraping with the token.
        tmp = os.path.join(env.tmp, "prometheus")
        os.mkdir(tmp)
        token_file = os.path.join(tmp, "token")
        with open(token_file, "w") as f:
            f.write(viewer)
        conf = os.path.join(tmp, "prometheus.yml")
        with open(conf, "w") as f:
            f.write(SCRAPE.format(token_file=token_file, port=br.port))
        log = open(os.path.join(tmp, "log"), "w")
        env.procs["prometheus"] = subprocess.Popen(
            ["prometheus", f"--config.file={conf}", f"--storage.tsdb.path={os.path.join(tmp, 'data')}",
             f"--web.listen-address=127.0.0.1:{PROM_PORT}", "--storage.tsdb.retention.time=1h"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=tmp)

        def power():
            try:
                r = prom_query(f'kasa_power_watts{{id="{plug}"}}')
            except OSError:
                return None
            res = r.get("data", {}).get("result", [])
            return float(res[0]["value"][1]) if res else None
        kt.eventually(t, env, lambda: power() is not None and abs(power() - LOAD_W) < LOAD_W * 0.05, 60,
                      "PromQL kasa_power_watts{id=plug} through prometheus's HTTP API is the plug's power")
        up = prom_query('up{job="kasa"}')["data"]["result"]
        t.ok(up and up[0]["value"][1] == "1", "prometheus sees the target up", up)
        p = env.procs.pop("prometheus")
        p.terminate()
        p.wait(30)
        t.eq(br.stop(), 0, "the bridge exits with 0 on SIGTERM")

        br2 = bt.Bridge(env, br.user, ["--open=metrics"])
        # The new bridge reads kasamond's objects after it listens.
        kt.eventually(t, env, lambda: (lambda r: r[0] == 200 and "kasa_power_watts" in r[2])(br2.get("/metrics")), 20,
                      "--open=metrics: /metrics without a token")
        t.ok(bt.is_error(br2.get("/api/devices"), 401), "but /api still needs one")
        t.eq(br2.stop(), 0, "that bridge exits with 0 too")
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
