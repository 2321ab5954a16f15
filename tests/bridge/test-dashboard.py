#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The dashboard in Debian's headless Chromium at a phone's width, driven by
the DevTools protocol over this directory's own WebSocket client: the
token entered once in the page's form, every device shown, the live power
following a kasa-sim load change, the switch switching the simulated plug,
today's and this month's cost shown, an open alert listed until it
resolves, the token kept across a reload,
nothing fetched from anywhere but the
bridge. The screenshots stay in the build tree as
tests/bridge/dashboard.png and dashboard-alert.png (with the alert)."""

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import bridgetest as bt
import kasatest as kt

DEVICES = ["hs110@127.0.0.2", "hs300@127.0.0.3"]
CDP_PORT = 9222
LOAD_W = 432.0


class Cdp:
    def __init__(self, ws):
        self.ws = ws
        self.n = 0
        self.events = []

    def call(self, method, **params):
        self.n += 1
        self.ws.send({"id": self.n, "method": method, "params": params})
        while True:
            m = self.ws.message(60)
            if m.get("id") == self.n:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def eval(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expr}: {r['exceptionDetails']}")
        return r["result"].get("value")


def main():
    t = kt.Tap()
    with bt.bridge_env(DEVICES) as (env, br):
        env.wait_for(lambda: len(env.objects()) >= 2 + 6, 20, "the devices are known")
        for path in list(env.objects()):
            env.wait_polled(path)
        sims = env.sim_devices()
        plug = kt.mac_id(sims[0]["mac"])
        operator = bt.create_token(env, "dashboard", "operator")[1]
        tariff = {"format": "kasamond-tariff/1", "name": "flat", "currency": "EUR",
                  "periods": [{"name": "all", "rate": 0.3}]}
        st, _, rate = br.post("/api/rates", operator, tariff)
        st2, _, _ = br.post(f"/api/rates/{rate['id']}/activate", operator, {"since": int(time.time()) - 3600})
        t.ok(st == 201 and st2 == 200, "a tariff, added and activated over the API", (st, st2))
        profile = tempfile.mkdtemp(prefix="kasa-chromium-", dir=env.tmp)
        log = open(os.path.join(env.tmp, "chromium.log"), "w")
        env.procs["chromium"] = subprocess.Popen(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
             f"--user-data-dir={profile}", f"--remote-debugging-port={CDP_PORT}", "--remote-allow-origins=*",
             "--window-size=412,1000", "about:blank"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

        def targets():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{CDP_PORT}/json/list", timeout=5) as r:
                    return [x for x in json.load(r) if x.get("type") == "page"]
            except OSError:
                return None
        page = env.wait_for(targets, 60, "chromium's DevTools endpoint")[0]
        path = page["webSocketDebuggerUrl"].split(f"127.0.0.1:{CDP_PORT}", 1)[1]
        cdp = Cdp(bt.WsClient(CDP_PORT, path))
        cdp.call("Network.enable")
        cdp.call("Page.enable")
        cdp.call("Emulation.setDeviceMetricsOverride", width=412, height=1000, deviceScaleFactor=1, mobile=True)
        url = f"http://127.0.0.1:{br.port}/"
        cdp.call("Page.navigate", url=url)

        def js(expr):
            return lambda: cdp.eval(expr)
        shown = "(getComputedStyle(document.getElementById('login')).display != 'none')"
        kt.eventually(t, env, js(f"!!document.getElementById('login') && {shown}"),
                      30, "without a token the page asks for one")
        cdp.eval(f"document.getElementById('token').value = {json.dumps(operator)};"
                 "document.getElementById('login').requestSubmit(); true")
        n_devices = len([p for p in env.objects() if p.startswith(kt.MANAGER_PATH + "/device/")])
        kt.eventually(t, env, js(f"document.querySelectorAll('.device').length == {n_devices} && !{shown}"), 30,
                      f"after it, all {n_devices} devices are shown, and the form is gone")
        sel = f".device[data-id=\"{plug}\"]"

        def power():
            text = cdp.eval(f"(document.querySelector('{sel} .power') || {{}}).textContent || ''")
            try:
                return float(text.split()[0])
            except (ValueError, IndexError):
                return None
        env.sim(cmd="set", device=0, load_w=LOAD_W)
        kt.eventually(t, env, lambda: power() is not None and abs(power() - LOAD_W) < LOAD_W * 0.05, 20,
                      f"the plug's live power follows a load change to {LOAD_W} W")
        kt.eventually(t, env, js(f"/today [0-9.]+ EUR.*this month [0-9.]+ EUR/.test("
                                 f"document.querySelector('{sel} .cost').textContent)"), 20,
                      "the plug's card shows today's and this month's cost")
        total = cdp.eval("parseFloat(document.getElementById('total-power').textContent)")
        t.ok(total is not None and total >= LOAD_W * 0.95, "the total includes it", total)
        t.ok(cdp.eval("document.body.scrollWidth <= 412"), "the page fits a phone's width",
             cdp.eval("document.body.scrollWidth"))

        # An alert: listed above the devices while it is open.
        alerts_shown = "!document.getElementById('alerts').hidden"
        t.ok(not cdp.eval(alerts_shown), "no alert: no alert list")
        rule = env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "AddAlertRule", "sssdttas",
                        ("dash-hot", "power-above", plug, 100.0, 0, 0, []))[0]
        alias = env.get(env.device_path(plug), kt.DEVICE_IFACE, "Alias")
        kt.eventually(t, env, js(f"{alerts_shown} && [...document.querySelectorAll('#alert-list .alert')].some("
                                 f"e => e.textContent.startsWith({json.dumps('dash-hot: ' + alias + ' 4')}) && "
                                 f"/ W \\(since /.test(e.textContent))"), 30,
                      "an alert that fires is listed with its rule, device and power")
        shot = cdp.call("Page.captureScreenshot", format="png")
        with open(os.path.join(kt.build_dir(), "tests", "bridge", "dashboard-alert.png"), "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "RemoveAlertRule", "u", (rule,))
        kt.eventually(t, env, js(f"!{alerts_shown} && !document.querySelector('#alert-list .alert')"), 30,
                      "and leaves the list when it resolves")

        cdp.eval(f"document.querySelector('{sel} .switch').click(); true")
        kt.eventually(t, env, lambda: env.truth(0)[0]["outlets"][0]["relay"] is False, 20,
                      "the switch switches the simulated plug off")
        # The WebSocket may show the change before the POST's answer
        # enables the button again: a click on a disabled button is lost.
        kt.eventually(t, env, js(f"document.querySelector('{sel} .switch').textContent == 'Off' && "
                                 f"!document.querySelector('{sel} .switch').disabled"), 20,
                      "and shows it off")
        cdp.eval(f"document.querySelector('{sel} .switch').click(); true")
        kt.eventually(t, env, lambda: env.truth(0)[0]["outlets"][0]["relay"] is True, 20, "and on again")

        cdp.call("Page.reload")
        kt.eventually(t, env, js(f"document.querySelectorAll('.device').length == {n_devices} && "
                                 f"!{shown}"), 30,
                      "after a reload the kept token shows the devices at once")
        kt.eventually(t, env, lambda: power() is not None and abs(power() - LOAD_W) < LOAD_W * 0.05, 20,
                      "with the live power")
        shot = cdp.call("Page.captureScreenshot", format="png")
        out = os.path.join(kt.build_dir(), "tests", "bridge", "dashboard.png")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        t.ok(os.path.getsize(out) > 1000, f"a screenshot is kept: {out}")
        urls = [e["params"]["request"]["url"] for e in cdp.events if e.get("method") == "Network.requestWillBeSent"]
        foreign = [u for u in urls if not u.startswith((url, f"ws://127.0.0.1:{br.port}/"))]
        t.ok(urls and not foreign, f"all {len(urls)} requests went to the bridge", foreign)
        cdp.ws.close()
        p = env.procs.pop("chromium")
        p.terminate()
        p.wait(30)
        shutil.rmtree(profile, ignore_errors=True)
        t.eq(br.stop(), 0, "the bridge exits with 0 on SIGTERM")
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
