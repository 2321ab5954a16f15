# SPDX-License-Identifier: MIT
"""Bus-level test harness: a private system bus with the project's own
policy, kasa-sim devices on 127.0.0.x, kasamond from the build tree with a
temporary state directory. Everything started is ended by PID and every
file removed in close(). Tests run inside their own network namespace
(tests/netns-run), so loopback addresses never collide between tests.

Needs Debian's python3-gi (Gio) for D-Bus, including signals."""

import contextlib
import fcntl
import json
import grp
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import gi

gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
import kasalib  # noqa: E402

BUS_NAME = "org.kasamond.Kasa1"
MANAGER_PATH = "/org/kasamond/Kasa1"
MANAGER_IFACE = "org.kasamond.Kasa1.Manager"
DEVICE_IFACE = "org.kasamond.Kasa1.Device"
METER_IFACE = "org.kasamond.Kasa1.EnergyMeter"
POLKIT_NAME = "org.freedesktop.PolicyKit1"
POLKITD = "/usr/lib/polkit-1/polkitd"

BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Peer"/>
  </policy>
  <includedir>{policy_dir}</includedir>
</busconfig>
"""


def bus_policy_owning(user, name):
    """A bus policy file that lets user own name and everyone call it."""
    return f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <policy user="{user}">
    <allow own="{name}"/>
  </policy>
  <policy context="default">
    <allow send_destination="{name}"/>
  </policy>
</busconfig>
"""


# Lets polkitd (which drops to the user polkitd) serve the test bus, as
# Debian's system.d/org.freedesktop.PolicyKit1.conf does on the real one.
POLKIT_BUS_CONF = bus_policy_owning("polkitd", "org.freedesktop.PolicyKit1")

# polkitd reads actions and rules from fixed system directories only, so it
# runs in a mount namespace of its own where the test's directories are
# bound over them: nothing on the host changes.
POLKIT_NS_SCRIPT = ('mount --bind "$1" /usr/share/polkit-1/actions && '
                    'mount --bind "$2" /etc/polkit-1/rules.d && '
                    'mount --bind "$3" /usr/share/polkit-1/rules.d && '
                    'exec "$4" --no-debug')


# Filled by Env.close(): "kasamond exited with status 1", ...; Tap.close()
# reports each as a failed point.
EXIT_PROBLEMS = []
# Processes whose exit status after SIGTERM must be 0.
CHECKED_EXIT = ("kasamond", "kasa-sim")


class Tap(kasalib.Tap):
    """kasalib's TAP producer; the plan is printed at the end."""

    def close(self):
        # How the project's own processes ended is part of every test: a
        # crash, or a sanitizer's report at exit, fails it.
        for problem in EXIT_PROBLEMS:
            self.ok(False, problem)
        del EXIT_PROBLEMS[:]
        return super().close()


def source_dir():
    return os.environ.get("KASA_SOURCE_ROOT") or os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))


def build_dir():
    b = os.environ.get("KASA_BUILD_ROOT")
    if not b:
        raise SystemExit("KASA_BUILD_ROOT is not set (run through meson test)")
    return b


class Env:
    """One private bus, one kasa-sim, one kasamond."""

    def __init__(self, devices, config="", poll_interval=1.0, targets=None, sim_args=(), poll_timeout=1.0,
                 polkit=False, bus_policy=None):
        """polkit=True: callers of any user can reach the bus, and a real
        polkitd serves it with the project's actions (start_polkit).
        bus_policy: the text of one more policy file for the bus (a test
        that stands in for another service, to own its name)."""
        self.tmp = tempfile.mkdtemp(prefix="kasa-bus-")
        self.procs = {}
        self.bus = None
        self.devices = devices
        try:
            if polkit:
                # Other users must reach the bus socket inside.
                os.chmod(self.tmp, 0o755)
            self._start_bus(polkit, bus_policy)
            if polkit:
                self.start_polkit()
            self._start_sim(devices, sim_args)
            if targets is None:
                targets = " ".join(d.split("@", 1)[1] for d in devices)
            self.config_path = os.path.join(self.tmp, "kasamond.conf")
            with open(self.config_path, "w") as f:
                f.write(f"[Polling]\nInterval={poll_interval}\nTimeout={poll_timeout}\nMaxBackoff=4\n"
                        f"[Discovery]\nTargets={targets}\nTimeout=1\nInterval=0\n{config}")
            self.state = os.path.join(self.tmp, "state")
            os.mkdir(self.state)
            self.start_daemon()
        except BaseException:
            self.close()
            raise

    # --- processes ---------------------------------------------------

    def _start_bus(self, polkit=False, extra=None):
        policy = os.path.join(self.tmp, "policy")
        os.mkdir(policy)
        shutil.copy(os.path.join(source_dir(), "dbus", "org.kasamond.Kasa1.conf"), policy)
        if polkit:
            with open(os.path.join(policy, "org.freedesktop.PolicyKit1.conf"), "w") as f:
                f.write(POLKIT_BUS_CONF)
        if extra:
            with open(os.path.join(policy, "test-extra.conf"), "w") as f:
                f.write(extra)
        self.bus_socket = os.path.join(self.tmp, "bus.sock")
        conf = os.path.join(self.tmp, "bus.conf")
        with open(conf, "w") as f:
            f.write(BUS_CONF.format(socket=self.bus_socket, policy_dir=policy))
        out = subprocess.run(["dbus-daemon", f"--config-file={conf}", "--fork", "--print-pid=1",
                              "--nopidfile"], check=True, capture_output=True, text=True).stdout
        self.procs["dbus-daemon"] = int(out.split()[0])
        self.address = f"unix:path={self.bus_socket}"
        self.bus = Gio.DBusConnection.new_for_address_sync(
            self.address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT |
            Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)

    def _start_sim(self, devices, sim_args):
        self.sim_socket = os.path.join(self.tmp, "sim.sock")
        self.sim_log = open(os.path.join(self.tmp, "sim.log"), "w")
        try:
            self.procs["kasa-sim"] = kasalib.start_sim([os.path.join(build_dir(), "tools", "kasa-sim"),
                                                        f"--control={self.sim_socket}", *sim_args, *devices],
                                                       stderr=self.sim_log)
        except RuntimeError as e:
            raise RuntimeError(f"{e}: {self.log('sim')}") from None

    def start_daemon(self, wait=True):
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.address, STATE_DIRECTORY=self.state)
        self.daemon_log = open(os.path.join(self.tmp, "kasamond.log"), "a")
        self.procs["kasamond"] = subprocess.Popen(
            [os.path.join(build_dir(), "daemon", "kasamond"), f"--config={self.config_path}"],
            env=env, stdout=self.daemon_log, stderr=subprocess.STDOUT)
        if wait:
            self.wait_for(self.has_owner, 10, "kasamond owns its bus name")

    def start_polkit(self, rules=()):
        """Starts polkitd on the test bus, seeing only the project's actions
        and the given rules files (no system rules)."""
        if "polkitd" in self.procs:
            raise RuntimeError("polkitd is already running; stop_polkit() first")
        root = os.path.join(self.tmp, "polkit")
        shutil.rmtree(root, ignore_errors=True)
        dirs = [os.path.join(root, d) for d in ("actions", "rules.d", "no-rules.d")]
        for d in dirs:
            os.makedirs(d)
            os.chmod(d, 0o755)
        os.chmod(root, 0o755)
        copies = [shutil.copy(os.path.join(source_dir(), "polkit", "org.kasamond.kasa1.policy"), dirs[0])]
        copies += [shutil.copy(r, os.path.join(dirs[1], os.path.basename(r))) for r in rules]
        for c in copies:
            os.chmod(c, 0o644)
        log = open(os.path.join(self.tmp, "polkitd.log"), "a")
        p = subprocess.Popen(["unshare", "--mount", "--propagation=private", "--", "sh", "-c", POLKIT_NS_SCRIPT,
                              "polkit-ns", *dirs, POLKITD],
                             env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.address),
                             stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs["polkitd"] = p
        self.wait_for(lambda: p.poll() is not None or self.has_owner(POLKIT_NAME), 30, "polkitd owns its name")
        if p.poll() is not None:
            self.procs.pop("polkitd")
            raise RuntimeError(f"polkitd exited with {p.returncode}: {self.log('polkitd')}")

    def stop_polkit(self):
        p = self.procs.pop("polkitd", None)
        if p is None:
            return
        p.terminate()
        p.wait(30)
        self.wait_for(lambda: not self.has_owner(POLKIT_NAME), 10, "polkit's name released")

    def stop_daemon(self, sig=signal.SIGTERM):
        p = self.procs.pop("kasamond", None)
        if p is None:
            return None
        p.send_signal(sig)
        rc = p.wait(30)
        self.wait_for(lambda: not self.has_owner(), 10, "bus name released")
        return rc

    def daemon_alive(self):
        p = self.procs.get("kasamond")
        return p is not None and p.poll() is None

    def log(self, which="kasamond"):
        path = os.path.join(self.tmp, {"sim": "sim.log", "polkitd": "polkitd.log"}.get(which, "kasamond.log"))
        try:
            with open(path) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def close(self):
        if self.bus:
            try:
                self.bus.close_sync(None)
            except GLib.Error:
                pass
            self.bus = None
        for name, p in list(self.procs.items()):
            try:
                if isinstance(p, int):
                    os.kill(p, signal.SIGTERM)
                else:
                    crashed = p.poll()
                    p.terminate()
                    try:
                        p.wait(10)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait()
                        EXIT_PROBLEMS.append(f"{name} did not stop within 10 s of SIGTERM")
                        continue
                    if name in CHECKED_EXIT and p.returncode != 0:
                        when = "before the end of the test" if crashed is not None else "on SIGTERM"
                        EXIT_PROBLEMS.append(f"{name} exited with status {p.returncode} {when}\n"
                                             f"{self.log('sim' if name == 'kasa-sim' else 'kasamond')}")
            except ProcessLookupError:
                pass
        self.procs.clear()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is not None:
            sys.stderr.write(f"kasamond log:\n{self.log()}\n")
        self.close()

    # --- D-Bus -------------------------------------------------------

    def has_owner(self, name=BUS_NAME):
        r = self.bus.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                               "NameHasOwner", GLib.Variant("(s)", (name,)), None,
                               Gio.DBusCallFlags.NONE, 5000, None)
        return r.unpack()[0]

    def call(self, path, iface, method, signature=None, args=(), timeout=20):
        params = GLib.Variant(f"({signature})", tuple(args)) if signature else None
        r = self.bus.call_sync(BUS_NAME, path, iface, method, params, None, Gio.DBusCallFlags.NONE,
                               int(timeout * 1000), None)
        return r.unpack()

    def call_error(self, *a, **kw):
        """Calls and returns (dbus error name, message), or None on success."""
        try:
            self.call(*a, **kw)
            return None
        except GLib.Error as e:
            return Gio.DBusError.get_remote_error(e), e.message

    def get(self, path, iface, prop):
        return self.call(path, "org.freedesktop.DBus.Properties", "Get", "ss", (iface, prop))[0]

    def get_all(self, path, iface):
        return self.call(path, "org.freedesktop.DBus.Properties", "GetAll", "s", (iface,))[0]

    def objects(self):
        return self.call(MANAGER_PATH, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects")[0]

    def discover(self, timeout=1.0):
        return self.call(MANAGER_PATH, MANAGER_IFACE, "Discover", "d", (timeout,))[0]

    def device_path(self, dev_id):
        return f"{MANAGER_PATH}/device/{dev_id}"

    def watch_properties(self):
        """Records every PropertiesChanged below the manager, in arrival order,
        from now on: (monotonic time, path, interface, changed dict)."""
        return PropertiesLog(self.bus)

    def activate_tariff(self, text, since_us=0):
        """AddTariff of text, activated for the home since since_us (0:
        now); returns its path."""
        path = self.call(MANAGER_PATH, MANAGER_IFACE, "AddTariff", "s", (text,))[0]
        self.call(MANAGER_PATH, MANAGER_IFACE, "ActivateTariff", "oaot", (path, [], since_us))
        return path

    def wait_polled(self, path, polls=1, after=None, timeout=20):
        """Waits until the device (for an outlet: its strip) has finished
        `polls` poll rounds that started after wall time `after` (seconds,
        default now), so its properties show the simulator's state of then.
        Returns the last round's LastSeen (microseconds)."""
        # LastSeen has millisecond resolution: one more ms rules out a
        # round that started in the same millisecond, before `after`.
        t_us = int((time.time() if after is None else after) * 1e6) + 1000
        for _ in range(polls):
            t_us = self.wait_for(lambda: (lambda v: v if v > t_us else 0)(self.get(path, DEVICE_IFACE, "LastSeen")),
                                 timeout, f"a poll of {path}")
        return t_us

    def iterate(self, seconds):
        """Runs the GLib main context for a while, so signals arrive."""
        ctx = GLib.MainContext.default()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ctx.iteration(False)
            time.sleep(0.01)

    def wait_for(self, predicate, timeout, what):
        """Guards against hangs only: a test never asserts how fast."""
        end = time.monotonic() + timeout
        while True:
            v = predicate()
            if v:
                return v
            if time.monotonic() > end:
                raise TimeoutError(f"timed out waiting for: {what}\n--- kasamond log ---\n{self.log()}")
            self.iterate(0.05)

    # --- simulator control ---------------------------------------------

    def sim(self, **request):
        return kasalib.sim_request(self.sim_socket, **request)

    def sim_devices(self):
        return self.sim(cmd="list")["devices"]

    def truth(self, device=None):
        req = {"cmd": "truth"}
        if device is not None:
            req["device"] = device
        return self.sim(**req)["devices"]


class PropertiesLog:
    """PropertiesChanged signals of kasamond's objects; they arrive while the
    main context runs (Env.iterate, Env.wait_for)."""

    def __init__(self, bus):
        self.events = []
        self.bus = bus
        # No sender filter: GDBus would compare a well-known name with the
        # unique name the messages carry. Only kasamond owns these paths.
        self.id = bus.signal_subscribe(None, "org.freedesktop.DBus.Properties", "PropertiesChanged", None,
                                       None, Gio.DBusSignalFlags.NONE, self._on_signal)

    def _on_signal(self, conn, sender, path, iface, member, params):
        if path == MANAGER_PATH or path.startswith(MANAGER_PATH + "/"):
            changed_iface, changed, _ = params.unpack()
            self.events.append((time.monotonic(), path, changed_iface, changed))

    def of(self, path, iface=None):
        return [e for e in self.events if e[1] == path and (iface is None or e[2] == iface)]

    def values(self, path, iface, prop):
        """Every value prop was announced with, in order."""
        return [e[3][prop] for e in self.of(path, iface) if prop in e[3]]

    def clear(self):
        """Forgets what arrived so far, including signals kasamond sent
        before now that still wait in the queue: a round trip to it comes
        back after them (one sender's messages keep their order), and
        dispatching the main context then hands them to _on_signal. Without
        this a busy machine lets an old signal in after the clear."""
        self.bus.call_sync(BUS_NAME, MANAGER_PATH, "org.freedesktop.DBus.Peer", "Ping", None, None,
                           Gio.DBusCallFlags.NONE, 10000, None)
        ctx = GLib.MainContext.default()
        while ctx.pending():
            ctx.iteration(False)
        self.events.clear()

    def close(self):
        if self.id is not None:
            self.bus.signal_unsubscribe(self.id)
            self.id = None


@contextlib.contextmanager
def system_user(name, group=None):
    """A throw-away local user (useradd), optionally in `group`, which is
    created if missing; both are deleted on leaving, whatever happened.
    Yields the user's name.

    With a group, runs of tests of any build or checkout that use it wait
    for each other: one would delete the group under the other. The lock
    is on /etc (useradd replaces /etc/group, so a lock there would not
    hold), which nothing else locks this way."""
    made_group = False
    made_user = False
    lock = None
    try:
        if group is not None:
            lock = os.open("/etc", os.O_RDONLY | os.O_DIRECTORY)
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                grp.getgrnam(group)
            except KeyError:
                subprocess.run(["groupadd", group], check=True)
                made_group = True
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", "--user-group",
                        *(["--groups", group] if group is not None else []), name], check=True)
        made_user = True
        pwd.getpwnam(name)
        yield name
    finally:
        if made_user:
            subprocess.run(["userdel", "--remove", name], stderr=subprocess.DEVNULL)
        if made_group:
            subprocess.run(["groupdel", group])
        if lock is not None:
            os.close(lock)


def eventually(t, env, predicate, timeout, name):
    """A TAP point for something that must come true; the timeout only
    guards against hangs, the test never asserts how fast."""
    try:
        env.wait_for(predicate, timeout, name)
        return t.ok(True, name)
    except TimeoutError as e:
        return t.ok(False, name, e)


def kasactl(env, *args):
    """kasactl's stdout and stderr together, on env's bus, in the C locale."""
    p = subprocess.run([os.path.join(build_dir(), "client", "kasactl"), *args],
                       env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=env.address, LC_ALL="C"),
                       capture_output=True, text=True, timeout=60)
    return p.stdout + p.stderr


def run_with_account(t, devices, user, password, xor, targets, run):
    """Runs run(t, env) with kasa-sim's configured devices (a list of its
    config file's device objects; noise 0) and the plugs of xor, and
    kasamond given the TP-Link account (user, password) in a root-only
    [Credentials] File=, discovering targets; returns t.close()."""
    tmp = tempfile.mkdtemp(prefix="kasa-account-")
    sim_config = os.path.join(tmp, "sim.json")
    creds = os.path.join(tmp, "tplink-credentials")
    try:
        with open(sim_config, "w") as f:
            json.dump({"devices": devices}, f)
        fd = os.open(creds, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, f"{user}\n{password}\n".encode())
        os.close(fd)
        with Env(xor, config=f"[Credentials]\nFile={creds}\n", targets=targets,
                 sim_args=[f"--config={sim_config}", "--noise=0"]) as env:
            run(t, env)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return t.close()


def check_power(t, env, path, index, name):
    """After a poll, Power is the simulated load of device index."""
    env.wait_polled(path)
    power = env.get(path, METER_IFACE, "Power")
    load = env.truth(index)[0]["outlets"][0]["load_mw"] / 1000
    t.ok(abs(power - load) < 0.01, f"{name}: Power {power} W is the simulated load", f"want {load}")


def check_switch(t, env, path, index, name):
    """SetOn(false) and SetOn(true) switch device index's relay."""
    env.call(path, DEVICE_IFACE, "SetOn", "b", (False,))
    t.eq(env.truth(index)[0]["outlets"][0]["relay"], False, f"{name}: SetOn(false) switches the relay off")
    env.call(path, DEVICE_IFACE, "SetOn", "b", (True,))
    t.eq(env.truth(index)[0]["outlets"][0]["relay"], True, f"{name}: SetOn(true) switches it on again")


def check_session_expiry(t, env, path, index):
    """The simulated device forgets its KLAP or AES session: kasamond opens
    a new one for the same poll, and the device never goes offline."""
    log = env.watch_properties()
    before = env.truth(index)[0]["handshakes"]
    env.sim(cmd="fault", device=index, expire_session=True)
    env.wait_polled(path, polls=3)
    t.eq(env.truth(index)[0]["handshakes"], before + 1, "session expiry: one new handshake")
    t.ok(False not in log.values(path, DEVICE_IFACE, "Online"), "session expiry: no poll missed (never offline)")
    t.eq(env.get(path, DEVICE_IFACE, "AuthState"), "ok", "session expiry: AuthState stays ok")
    log.close()


def check_wrong_credentials(t, env, path, index, other, user, password, protocol, says):
    """The owner changed the account's password in the app: device index
    (at path) shows AuthState failed with an AuthMessage naming says,
    goes offline while the device at other goes on, and kasactl show says
    so (Protocol protocol); once the credentials (user, password) match
    again, it recovers."""
    env.sim(cmd="fault", device=index, credentials={"user": user, "password": "changed in the app"})
    eventually(t, env, lambda: env.get(path, DEVICE_IFACE, "AuthState") == "failed", 30,
               "wrong credentials: AuthState failed")
    msg = env.get(path, DEVICE_IFACE, "AuthMessage")
    t.ok("credentials" in msg and says in msg, "wrong credentials: AuthMessage says what to do", msg)
    t.eq(env.get(path, DEVICE_IFACE, "Online"), False, "wrong credentials: offline")
    t.eq(env.get(other, DEVICE_IFACE, "Online"), True, "wrong credentials: the other devices go on")
    show = kasactl(env, "show", path.rsplit("/", 1)[1])
    t.ok(f"Protocol: {protocol}" in show and "Credentials: refused: " in show and says in show,
         "wrong credentials: kasactl show says so", show)
    env.sim(cmd="fault", device=index, credentials={"user": user, "password": password})
    eventually(t, env, lambda: env.get(path, DEVICE_IFACE, "AuthState") == "ok", 30,
               "credentials match again: AuthState ok (retried with backoff)")
    eventually(t, env, lambda: env.get(path, DEVICE_IFACE, "Online"), 10, "credentials match again: online")
    t.eq(env.get(path, DEVICE_IFACE, "AuthMessage"), "", "credentials match again: AuthMessage empty")


def write_zone(tzdir, zone, offset_s):
    """A time zone named zone of a fixed offset from UTC, in seconds (-12 h
    to +12 h), compiled with zic into tzdir (for TZDIR)."""
    sign = "-" if offset_s < 0 else ""
    a = abs(offset_s)
    src = os.path.join(tzdir, "zone.txt")
    with open(src, "w") as f:
        f.write(f"Zone {zone} {sign}{a // 3600}:{a // 60 % 60:02d}:{a % 60:02d} - TST\n")
    subprocess.run(["zic", "-d", tzdir, src], check=True)


def mac_id(mac, outlet=None):
    i = mac.replace(":", "").lower()
    return i if outlet is None else f"{i}_{outlet:02d}"


def energy_end_bound_wh(load_w, poll_interval, jitter=0.1, tolerance=0.015, quantum_wh=1.0):
    """How far EnergyTotal can be from the true energy after a steady load
    of load_w stopped: kasamond's estimate lies in an interval that holds
    each counter's true position, within half of it while the power
    readings are right (daemon/energy.h; kasa-sim's readings carry 1 %
    noise, which the model in tests/daemon/test-energy.c includes). At a
    steady load, right
    after a counter step the interval is at most one poll's energy wide,
    and until the next step it widens by the power tolerance over at most
    a quantum and a poll; the poll that sees the load gone adds up to one
    more poll's energy, as the load may have stopped anywhere in between.
    Half of it."""
    e = load_w * poll_interval * (1 + jitter) / 3600
    steady = e * (1 + tolerance) + 2 * tolerance * (quantum_wh + e)
    return (steady + e * (1 + tolerance)) / 2
