#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""API tokens and the HTTP bridge's uid, with a real polkitd: root makes
tokens (kasactl token), a plain user may not manage them; a process of
the bridge's user ([Bridge] User=, a user made here) is denied every
mutating method without a token (the bridge's uid is no backdoor), may
switch with an operator token but not with a viewer's, loses its role the
moment the token is revoked or expires; failed BindToken calls are rate
limited per uid, the bridge's with a budget for many HTTP clients; and a secret is never in ListTokens, kasamond's log or
its database files, which hold its SHA-256.

The users are created here and deleted at the end."""

import hashlib
import json
import os
import subprocess
import sys
import time

import kasatest as kt

DEVICES = ["hs110@127.0.0.2"]
ACCESS_DENIED = "org.freedesktop.DBus.Error.AccessDenied"
INTERACTIVE_REQUIRED = "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"
RATE_LIMITED = "org.kasamond.Kasa1.Error.RateLimited"
NO_TOKEN = "no API token bound to this connection"
BAD_TOKEN = "invalid or expired API token"
MANAGE_ACCESS = "org.kasamond.kasa1.manage-access"

# Runs as the caller: one bus connection, kept for every call read from
# stdin (a JSON list: path, interface, method, signature, arguments);
# prints its unique name first, then one JSON outcome per call.
CLIENT = r'''
import json, sys
from gi.repository import Gio, GLib
bus = Gio.DBusConnection.new_for_address_sync(
    sys.argv[1], Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
    None, None)
print(json.dumps({"name": bus.get_unique_name()}), flush=True)
for line in sys.stdin:
    path, iface, method, sig, args = json.loads(line)
    params = GLib.Variant("(" + sig + ")", tuple(args)) if sig else None
    try:
        r = bus.call_sync("org.kasamond.Kasa1", path, iface, method, params, None, Gio.DBusCallFlags.NONE,
                          60000, None)
        out = {"reply": r.unpack()}
    except GLib.Error as e:
        out = {"error": Gio.DBusError.get_remote_error(e), "message": e.message}
    print(json.dumps(out), flush=True)
'''


class Connection:
    """One bus connection of a user, for many calls."""

    def __init__(self, env, user):
        self.p = subprocess.Popen(["runuser", "-u", user, "--", "env", f"DBUS_SYSTEM_BUS_ADDRESS={env.address}",
                                   "PYTHONDONTWRITEBYTECODE=1", sys.executable, "-c", CLIENT, env.address],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.name = json.loads(self.p.stdout.readline())["name"]

    def call(self, path, iface, method, sig="", args=()):
        """("reply", values) or ("error", name, message)."""
        self.p.stdin.write(json.dumps([path, iface, method, sig, list(args)]) + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            return ("error", "no-output", f"the client exited with {self.p.wait()}")
        out = json.loads(line)
        return ("reply", out["reply"]) if "reply" in out else ("error", out["error"], out["message"])

    def manager(self, method, sig="", args=()):
        return self.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, method, sig, args)

    def bind(self, secret):
        return self.manager("BindToken", "s", (secret,))

    def close(self):
        if self.p.poll() is None:
            self.p.stdin.close()
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def kasactl(env, *args, user=None):
    cmd = (["runuser", "-u", user, "--"] if user else []) + [
        "env", f"DBUS_SYSTEM_BUS_ADDRESS={env.address}", os.path.join(kt.build_dir(), "client", "kasactl"), *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def denied(r, error=ACCESS_DENIED, text=None):
    return r[0] == "error" and r[1] == error and (text is None or text in r[2])


class Plug:
    def __init__(self, env):
        self.env = env
        self.path = env.device_path(kt.mac_id(env.sim_devices()[0]["mac"]))
        env.wait_for(lambda: self.path in env.objects(), 20, "the plug is known")
        env.wait_polled(self.path)

    def relay(self):
        return self.env.truth(0)[0]["relay"]

    def state(self):
        """What a mutating call could change."""
        return (self.relay(), self.env.sim_devices()[0]["alias"], sorted(self.env.objects()),
                self.env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "ListTokens")[0])


def mutating_calls(plug):
    """Every method a plain user needs polkit for: (name, call on a
    Connection)."""
    return [
        ("SetOn", lambda c: c.call(plug.path, kt.DEVICE_IFACE, "SetOn", "b", (not plug.relay(),))),
        ("Toggle", lambda c: c.call(plug.path, kt.DEVICE_IFACE, "Toggle")),
        ("Rename", lambda c: c.call(plug.path, kt.DEVICE_IFACE, "Rename", "s", ("bridge was here",))),
        ("Discover", lambda c: c.manager("Discover", "d", (0.5,))),
        ("AddDevice", lambda c: c.manager("AddDevice", "s", ("127.0.0.3",))),
        ("RemoveDevice", lambda c: c.manager("RemoveDevice", "o", (plug.path,))),
        ("CreateToken", lambda c: c.manager("CreateToken", "sst", ("sneaky", "admin", 0))),
        ("ListTokens", lambda c: c.manager("ListTokens")),
        ("RevokeToken", lambda c: c.manager("RevokeToken", "s", ("operator",))),
    ]


def create(t, env, name, role, *extra):
    rc, out, err = kasactl(env, "token", "create", f"--name={name}", f"--role={role}", *extra)
    secret = out.strip()
    t.ok(rc == 0 and secret.startswith("kasa_") and len(secret) == 48 and "\n" not in secret,
         f"root: kasactl token create --role={role} prints the secret alone", f"exit {rc}: {out}{err}")
    t.ok("will not be shown again" in err, f"{name}: ...and says it will not be shown again", err)
    return secret


def check_plain_user(t, env, plain):
    for method, sig, args in (("CreateToken", "sst", ("mine", "admin", 0)), ("ListTokens", "", ()),
                              ("RevokeToken", "s", ("operator",))):
        r = plain.manager(method, sig, args)
        t.ok(denied(r, INTERACTIVE_REQUIRED, MANAGE_ACCESS), f"plain user: {method} is denied by polkit", r)
    for args in (["token", "list"], ["token", "create", "--name=mine", "--role=admin"], ["token", "revoke", "op"]):
        rc, out, err = kasactl(env, "--no-ask-password", *args, user=plain.user)
        t.ok(rc == 4 and MANAGE_ACCESS in err, f"plain user: kasactl {' '.join(args[:2])} exits 4 naming the action",
             f"exit {rc}: {out}{err}")


def check_no_token(t, plug, bridge):
    """No backdoor: without a token the bridge's uid gets nothing polkit
    would be asked about, and nothing changes."""
    for name, call in mutating_calls(plug):
        before = plug.state()
        r = call(bridge)
        t.ok(denied(r, ACCESS_DENIED, NO_TOKEN), f"bridge without a token: {name} is denied", r)
        t.eq(plug.state(), before, f"bridge without a token: {name} changed nothing")
    r = bridge.call(plug.path, kt.DEVICE_IFACE, "Describe")
    t.ok(r[0] == "reply", "bridge without a token: reading is open", r)


def check_late_bridge(t, env, plug, connect, viewer_secret, late_name):
    """A bridge user that appears after kasamond started (a bridge with
    DynamicUser=) is found by its first successful bind; tokens outlive a
    restart of kasamond."""
    with open(env.config_path) as f:
        conf = f.read()
    with open(env.config_path, "w") as f:
        f.write(conf.rsplit("[Bridge]", 1)[0] + f"[Bridge]\nUser={late_name}\n")
    t.eq(env.stop_daemon(), 0, "kasamond restarted with a bridge user that does not exist yet")
    env.start_daemon()
    with kt.system_user(late_name) as late:
        mine = []

        def late_connection():
            mine.append(connect(late))
            return mine[-1]
        try:
            r = late_connection().call(plug.path, kt.DEVICE_IFACE, "Toggle")
            t.ok(denied(r, INTERACTIVE_REQUIRED), "late bridge user before any bind: polkit decides (no)", r)
            r = late_connection().bind(viewer_secret)
            t.ok(r[0] == "reply" and r[1][1] == "viewer", "late bridge user: a token of before the restart binds", r)
            before = plug.relay()
            r = late_connection().call(plug.path, kt.DEVICE_IFACE, "Toggle")
            t.ok(denied(r, ACCESS_DENIED, NO_TOKEN) and plug.relay() == before,
                 "late bridge user, found by that bind: without a token denied by kasamond", r)
        finally:
            # Before the user is deleted: userdel refuses a user with processes.
            for c in mine:
                c.close()


def main():
    t = kt.Tap()
    tag = os.getpid()
    # Debug messages too: no secret may be in any of them.
    os.environ["KASA_LOG_LEVEL"] = "debug"
    with kt.system_user(f"kasaac{tag}b") as bridge_user, kt.system_user(f"kasaac{tag}u") as plain_user, \
            kt.Env(DEVICES, polkit=True, poll_timeout=10.0, config=f"[Bridge]\nUser={bridge_user}\n") as env:
        plug = Plug(env)
        conns = []

        def connect(user):
            c = Connection(env, user)
            c.user = user
            conns.append(c)
            return c

        try:
            secrets = {
                "viewer": create(t, env, "viewer", "viewer"),
                "operator": create(t, env, "operator", "operator"),
                "admin": create(t, env, "admin", "admin", "--expires=30d"),
            }
            rc, out, err = kasactl(env, "token", "list")
            t.ok(rc == 0 and all(n in out for n in secrets), "root: kasactl token list shows the tokens",
                 f"exit {rc}: {out}{err}")
            rc, out, err = kasactl(env, "token", "list", "--json=short")
            listed = json.loads(out) if rc == 0 else []
            t.eq(sorted((x["name"], x["role"], x["expires"] is None) for x in listed),
                 [("admin", "admin", False), ("operator", "operator", True), ("viewer", "viewer", True)],
                 "token list --json: names, roles, expiries")

            plain = connect(plain_user)
            check_plain_user(t, env, plain)

            bridge = connect(bridge_user)
            check_no_token(t, plug, bridge)

            # A viewer reads only.
            viewer = connect(bridge_user)
            r = viewer.bind(secrets["viewer"])
            t.ok(r[0] == "reply" and r[1][1] == "viewer", "bridge: BindToken with the viewer's secret", r)
            before = plug.relay()
            r = viewer.call(plug.path, kt.DEVICE_IFACE, "SetOn", "b", (not before,))
            t.ok(denied(r, ACCESS_DENIED, "role viewer"), "bridge as viewer: switching is denied", r)
            t.eq(plug.relay(), before, "bridge as viewer: the plug did not switch")
            t.ok(viewer.call(plug.path, kt.DEVICE_IFACE, "Describe")[0] == "reply", "bridge as viewer: reading works")

            # An operator switches, but does not manage access.
            op = connect(bridge_user)
            r = op.bind(secrets["operator"])
            t.ok(r[0] == "reply" and r[1][1] == "operator", "bridge: BindToken with the operator's secret", r)
            r = op.call(plug.path, kt.DEVICE_IFACE, "SetOn", "b", (not before,))
            t.ok(r[0] == "reply" and plug.relay() == (not before), "bridge as operator: switching is allowed", r)
            r = op.manager("ListTokens")
            t.ok(denied(r, ACCESS_DENIED, "role operator"), "bridge as operator: ListTokens is denied", r)
            t.ok(denied(bridge.call(plug.path, kt.DEVICE_IFACE, "Toggle"), ACCESS_DENIED, NO_TOKEN),
                 "bridge: another connection of the same uid still has no token")

            # Revoked: at once, on the connection already bound.
            rc, out, err = kasactl(env, "token", "revoke", "operator")
            t.ok(rc == 0, "root: kasactl token revoke operator", f"exit {rc}: {out}{err}")
            now = plug.relay()
            r = op.call(plug.path, kt.DEVICE_IFACE, "SetOn", "b", (not now,))
            t.ok(denied(r, ACCESS_DENIED, NO_TOKEN), "bridge after revoke: switching is denied", r)
            t.eq(plug.relay(), now, "bridge after revoke: the plug did not switch")
            r_revoked = connect(bridge_user).bind(secrets["operator"])
            t.ok(denied(r_revoked, ACCESS_DENIED, BAD_TOKEN), "bridge: a revoked secret does not bind", r_revoked)
            r = env.call_error(kt.MANAGER_PATH, kt.MANAGER_IFACE, "RevokeToken", "s", ("operator",))
            t.ok(r and r[0] == "org.kasamond.Kasa1.Error.NotFound", "root: revoking it again: NotFound", r)

            # An admin may manage access.
            adm = connect(bridge_user)
            t.ok(adm.bind(secrets["admin"])[0] == "reply", "bridge: BindToken with the admin's secret")
            r = adm.manager("ListTokens")
            t.ok(r[0] == "reply", "bridge as admin: ListTokens is allowed", r)
            r = adm.manager("CreateToken", "sst", ("made-by-admin", "viewer", 0))
            t.ok(r[0] == "reply" and r[1][1].startswith("kasa_"), "bridge as admin: CreateToken is allowed", r)
            made = r[1][1] if r[0] == "reply" else None

            # Expiry ends the binding when it comes.
            expires = int((time.time() + 3) * 1e6)
            soon_id, soon = env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "CreateToken", "sst",
                                     ("soon", "operator", expires))
            exp = connect(bridge_user)
            t.ok(exp.bind(soon)[0] == "reply", "bridge: BindToken with a token expiring in 3 s")
            now = plug.relay()
            r = exp.call(plug.path, kt.DEVICE_IFACE, "SetOn", "b", (not now,))
            t.ok(r[0] == "reply", "bridge: switching before the expiry is allowed", r)
            while time.time() * 1e6 < expires + 200_000:
                time.sleep(0.2)
            now = plug.relay()
            r = exp.call(plug.path, kt.DEVICE_IFACE, "SetOn", "b", (not now,))
            t.ok(denied(r, ACCESS_DENIED, NO_TOKEN) and plug.relay() == now, "bridge: after the expiry, denied", r)
            r_expired = connect(bridge_user).bind(soon)
            t.ok(denied(r_expired, ACCESS_DENIED, BAD_TOKEN), "bridge: an expired secret does not bind", r_expired)

            # Failures are limited per uid, never saying what was wrong.
            wrong = secrets["viewer"][:-4] + ("AAAA" if not secrets["viewer"].endswith("AAAA") else "BBBB")
            results = [plain.bind(wrong) for _ in range(3)] + [plain.bind(soon), plain.bind(secrets["operator"])]
            t.ok(all(denied(r, ACCESS_DENIED, BAD_TOKEN) for r in results),
                 "plain user: five failed binds (wrong, expired, revoked), each the same AccessDenied", results)
            t.eq({r[2] for r in results} | {r_revoked[2], r_expired[2]}, {results[0][2]},
                 "wrong, expired and revoked secrets fail with the same message")
            r = plain.bind(wrong)
            t.ok(denied(r, RATE_LIMITED, "try again in"), "plain user: the sixth is rate limited, with a delay", r)
            r = plain.bind(secrets["viewer"])
            t.ok(denied(r, RATE_LIMITED), "plain user: ...even with a right secret, which is not checked", r)
            r = connect(plain_user).bind(secrets["viewer"])
            t.ok(denied(r, RATE_LIMITED), "plain user: ...on a new connection too", r)
            r = connect(bridge_user).bind(secrets["viewer"])
            t.ok(r[0] == "reply", "the bridge's uid is not limited by another uid's failures", r)
            # Every HTTP user is the bridge's uid, each token tried on a
            # connection of its own: one client's bad tokens must not lock
            # out the others (the bridge limits each client address).
            fails = [connect(bridge_user).bind(wrong) for _ in range(6)]
            t.ok(all(denied(r, ACCESS_DENIED, BAD_TOKEN) for r in fails),
                 "bridge: six failed binds on six connections, each AccessDenied", fails)
            r = connect(bridge_user).bind(secrets["viewer"])
            t.ok(r[0] == "reply", "bridge: ...and a right secret still binds: its uid has a larger budget", r)

            # A binding ends with its connection.
            viewer.close()
            kt.eventually(t, env, lambda: f"binding of {viewer.name}: the connection closed" in
                          open(os.path.join(env.tmp, "kasamond.log")).read(), 20,
                          "a closed connection's binding is dropped (NameOwnerChanged)")

            # Secrets are nowhere in clear.
            all_secrets = [s for s in list(secrets.values()) + [soon, made] if s]
            r = env.call(kt.MANAGER_PATH, kt.MANAGER_IFACE, "ListTokens")[0]
            hashes = [hashlib.sha256(s.encode()).hexdigest() for s in all_secrets]
            t.ok(not any(s in r or s[5:] in r for s in all_secrets) and not any(h in r for h in hashes),
                 "ListTokens holds no secret and no hash", r)
            with open(os.path.join(env.tmp, "kasamond.log")) as f:
                log = f.read()
            t.ok("Bound API token" in log and "Created API token" in log, "the debug log tells of tokens")
            t.ok(not any(s[5:] in log for s in all_secrets), "no secret in kasamond's log")
            files = [os.path.join(env.state, f) for f in os.listdir(env.state) if f.startswith("access.sqlite")]
            data = b"".join(open(f, "rb").read() for f in files)
            t.ok(data and not any(s[5:].encode() in data for s in all_secrets), f"no secret in {files}")
            t.ok(hashlib.sha256(secrets["viewer"].encode()).digest() in data, "...which hold the SHA-256")
            t.eq(oct(os.stat(os.path.join(env.state, "access.sqlite")).st_mode & 0o777), "0o600",
                 "access.sqlite is for kasamond's eyes only")
            check_late_bridge(t, env, plug, connect, secrets["viewer"], f"kasaac{tag}l")
        finally:
            for c in conns:
                c.close()
        t.ok(env.daemon_alive(), "kasamond survived all of it", env.log())
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
