# SPDX-License-Identifier: MIT
"""System-level test: kasamond under a real systemd.

systemd runs as PID 1 of new pid+mount+uts+ipc+net namespaces with a
minimal unit set (so no host unit can start inside), its own dbus-daemon
and polkitd, and the project installed into that namespace's view by
`meson install --destdir`: the staged tree is merged read-only over /usr,
while /etc and /var are overlays whose writes (the sysusers user, the
state directory) land in the test's temp dir. Every mount lives in the
private mount namespace; the temp dir and the cgroups created here are
removed at the end, so nothing is left on the host. The network namespace
has a veth "LAN" with a private and a public (documentation) address, where
the unit's IPAddressAllow= is checked.

Python 3 standard library only; needs root."""

import ctypes
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import termios
import threading
import time
import tty

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from kasalib import SimControl, Tap  # noqa: E402

BUS_NAME = "org.kasamond.Kasa1"
MANAGER_PATH = "/org/kasamond/Kasa1"
UNIT = "kasamond.service"
PLAIN_USER = "kasa-plain"
MEMBER_USER = "kasa-member"  # in the group kasa, which polkit rules let switch
SIM_DEVICES = {"127.0.0.2": "hs110", "127.0.0.3": "kp115"}
# Plugs on the namespace's LAN interface, not discovered: one at a private
# address the unit's IPAddressAllow= admits, one at a public one it does
# not (a documentation address stands in for the internet).
LAN_PLUG = "10.73.0.2"
PUBLIC_PLUG = "192.0.2.2"
FILTER_SIMS = {LAN_PLUG: "hs100", PUBLIC_PLUG: "hs100"}
# Where a probe goes, and whether the unit's address lists let it out.
PROBES = {"127.0.0.1": True, "10.73.0.255": True, "255.255.255.255": True, "169.254.7.7": True,
          "172.31.0.1": True, "192.168.200.1": True, "192.0.2.255": False, "198.51.100.1": False,
          "172.32.0.1": False, "11.0.0.1": False}
PROBE_SNIPPET = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
for dest in sys.argv[1:]:
    try:
        s.sendto(b"{}", (dest, 9999))
        print(dest, "sent")
    except OSError as e:
        print(dest, e.errno)
"""
SIM_SOCKET = "/run/kasa-sim/control.sock"
WATCHDOG_SEC = 6
TMP_PREFIX = "kasa-systest-"

# Host units the boot needs: every target and slice (inert without their
# .wants directories, which are not copied) and these services.
HOST_UNITS = ("dbus.socket", "dbus.service", "systemd-exit.service", "systemd-halt.service",
              "systemd-poweroff.service", "systemd-reboot.service")
GENERATOR_DIRS = ("/usr/lib/systemd/system-generators", "/usr/local/lib/systemd/system-generators",
                  "/etc/systemd/system-generators", "/usr/lib/systemd/system-environment-generators",
                  "/etc/systemd/system-environment-generators")

TEST_TARGET = """[Unit]
Description=kasamond system test boot target
Requires=multi-user.target
After=multi-user.target
Wants=dbus.socket kasa-sim.service
AllowIsolate=yes
"""

POLKIT_SERVICE = """[Unit]
Description=Authorization Manager

[Service]
Type=dbus
BusName=org.freedesktop.PolicyKit1
ExecStart=/usr/lib/polkit-1/polkitd --no-debug
"""

# The simulated plugs exist before kasamond starts, as real ones would; the
# control socket is bound last, so its presence means every plug listens.
SIM_SERVICE = """[Unit]
Description=Simulated Kasa plugs for the system test
Before=kasamond.service

[Service]
Type=exec
RuntimeDirectory=kasa-sim
ExecStart={sim} --noise=0 --control={sock} {devices}
ExecStartPost=/bin/sh -c 'while [ ! -S {sock} ]; do sleep 0.1; done'
"""

# What an administrator would add; the watchdog is shortened so a hung
# daemon is caught quickly, the log goes to a file as there is no journald.
# LeakSanitizer (in -Db_sanitize builds) needs ptrace, which the unit's
# seccomp filter forbids; leaks are checked by the bus-level tests.
UNIT_DROPIN = f"""[Service]
WatchdogSec={WATCHDOG_SEC}s
Environment=ASAN_OPTIONS=detect_leaks=0
StandardOutput=append:/run/kasa-test/kasamond.log
StandardError=inherit
"""

DAEMON_CONFIG = """[Polling]
Interval=1
Timeout=1
[Discovery]
Targets={targets}
Timeout=1
"""

# Runs as PID 1 of the new namespaces until it execs systemd.
BOOT_SCRIPT = r"""
set -e
T=$KASA_T
# systemd mounts the controllers it misses into /sys/fs/cgroup, then
# remounts that tmpfs read-only: the host's, unless the namespace has a
# tmpfs of its own there, holding the host's hierarchies.
if [ "$(stat -f -c %T /sys/fs/cgroup)" = tmpfs ]; then
    mkdir $T/cgroup
    mount -t tmpfs -o mode=755 tmpfs $T/cgroup
    for h in /sys/fs/cgroup/*; do
        if [ -L $h ]; then
            cp -P $h $T/cgroup/
        elif mountpoint -q $h; then
            mkdir $T/cgroup/${h##*/}
            mount --bind $h $T/cgroup/${h##*/}
        fi
    done
    mount --move $T/cgroup /sys/fs/cgroup
fi
for d in $(cat $T/overlay-ro); do
    mount -t overlay overlay -o lowerdir=$T/merged$d:$d $d
done
for d in /etc /var; do
    mkdir -p $T/merged$d $T/upper$d $T/work$d
    mount -t overlay overlay -o lowerdir=$T/merged$d:$d,upperdir=$T/upper$d,workdir=$T/work$d $d
done
mount -t tmpfs tmpfs /run
mkdir /run/kasa-test
mount -t tmpfs tmpfs /etc/systemd/system
cp -a $T/etc-systemd/. /etc/systemd/system/
mount --bind $T/units /usr/lib/systemd/system
# The host's generators hidden, the project's own (installed) kept.
while read g src; do mount --bind $T/$src $g; done < $T/generator-dirs
hostname kasa-system-test
ip link set lo up
# The LAN: a veth whose peer has no address, so nothing comes back; the
# default route sends every other address there too.
ip link add kasa-lan type veth peer name kasa-lanp
ip link set kasa-lan up
ip link set kasa-lanp up
ip addr add 10.73.0.1/24 dev kasa-lan
ip addr add 10.73.0.2/24 dev kasa-lan
ip addr add 192.0.2.2/24 dev kasa-lan
ip route add default dev kasa-lan
systemd-sysusers $(cat $T/sysusers)
systemd-tmpfiles --create $(cat $T/tmpfiles)
useradd --no-create-home --shell /usr/sbin/nologin $KASA_PLAIN_USER
useradd --no-create-home --shell /usr/sbin/nologin --groups kasa $KASA_MEMBER_USER
# systemd as PID 1 logs to /dev/console: the test's pty, not the host's.
mount --bind $KASA_CONSOLE /dev/console
systemctl enable kasamond.service
mount -t tmpfs tmpfs /tmp
exec env -i container=other PATH=/usr/sbin:/usr/bin:/sbin:/bin /lib/systemd/systemd \
    --unit=kasa-test.target --log-target=console --log-level=info --show-status=no
"""


def wait_for(predicate, timeout, what):
    """Guards against hangs only; nothing here asserts how fast."""
    end = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > end:
            raise TimeoutError(f"timed out waiting for: {what}")
        time.sleep(0.2)


def mounts_of_type(fstype):
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, post = line.split(" - ", 1)
            if post.split()[0] == fstype:
                yield pre.split()[4], post.split()[2]


class Cgroup:
    """The namespace's systemd gets a cgroup of its own. Under a host systemd
    that is a delegated scope (removed by the host's systemd); otherwise one
    directory in every mounted hierarchy, unified and named v1 'systemd'
    alike, next to this process's own, removed in close()."""

    PREFIX = "kasa-system-test-"

    def __init__(self):
        self.dirs = []
        self.command = []
        name = f"{self.PREFIX}{os.getpid()}"
        if os.path.isdir("/run/systemd/system"):
            self.command = ["systemd-run", "--quiet", "--scope", "-p", "Delegate=yes", f"--unit={name}", "--"]
            return
        for parent in self.parents():
            # Left by a run that was SIGKILLed (its namespace died with it).
            for stale in os.listdir(parent):
                if stale.startswith(self.PREFIX) and not pid_alive(stale[len(self.PREFIX):]):
                    remove_cgroup(os.path.join(parent, stale))
            self.dirs.append(os.path.join(parent, name))
        for d in self.dirs:
            os.mkdir(d)
            # v1 cpuset refuses tasks until the new group has CPUs and nodes.
            for knob in ("cpuset.cpus", "cpuset.mems"):
                if os.path.exists(os.path.join(d, knob)):
                    with open(os.path.join(os.path.dirname(d), knob)) as src, \
                         open(os.path.join(d, knob), "w") as dst:
                        dst.write(src.read())

    def enter(self):
        """preexec_fn: moves the forked child, never this process. If this
        test dies, the child (unshare --kill-child) and with it the whole
        namespace die too."""
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        for d in self.dirs:
            with open(os.path.join(d, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))

    @staticmethod
    def parents():
        own = {}
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                own[controllers] = path
        found = [mnt + own[""] for mnt, _opts in mounts_of_type("cgroup2")]
        for mnt, opts in mounts_of_type("cgroup"):
            for key, path in own.items():
                if key and set(key.split(",")) <= set(opts.split(",")):
                    found.append(mnt + path)
        return found

    def close(self):
        for top in self.dirs:
            for _ in range(50):
                if remove_cgroup(top):
                    break
                time.sleep(0.1)


def pid_alive(pid):
    return pid.isdigit() and os.path.exists(f"/proc/{pid}")


def remove_cgroup(top):
    """Removes a cgroup and its children; False while some still hold tasks."""
    for root, subdirs, _files in os.walk(top, topdown=False):
        for sub in subdirs:
            try:
                os.rmdir(os.path.join(root, sub))
            except OSError:
                pass
    try:
        os.rmdir(top)
    except FileNotFoundError:
        pass
    except OSError:
        return False
    return True


class System:
    def __init__(self):
        # Not below /etc, /var or /usr, which get overlays with layers in here.
        self.tmp = tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-", dir="/tmp")
        self.cgroup = None
        self.boot = None
        self.pid1 = None
        self.console = None
        self.pty = None
        self.reader = None
        try:
            self._stage()
            self._boot()
        except BaseException:
            self.close()
            raise

    # --- the installed tree ------------------------------------------

    def _stage(self):
        build = os.environ["KASA_BUILD_ROOT"]
        stage = os.path.join(self.tmp, "stage")
        r = subprocess.run([os.environ.get("KASA_MESON", "meson"), "install", "-C", build, "--no-rebuild",
                            "--quiet", "--destdir", stage], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"meson install --destdir failed:\n{r.stdout}{r.stderr}")
        merged = os.path.join(self.tmp, "merged")
        units = os.path.join(self.tmp, "units")
        unitdir = os.path.realpath("/usr/lib/systemd/system")
        generator_dirs = {os.path.realpath(g): g for g in GENERATOR_DIRS if os.path.isdir(g)}
        os.makedirs(units)
        self.installed = {}
        # Files land where the host would resolve them (/lib is /usr/lib
        # on merged-/usr systems); unit files join the minimal unit set.
        for root, _dirs, files in os.walk(stage):
            for name in files:
                src = os.path.join(root, name)
                where = os.path.realpath(os.path.relpath(root, stage).join(["/", ""]))
                self.installed[name] = os.path.join(where, name)
                dst = (units if where == unitdir else
                       os.path.join(self.tmp, "generators", where.strip("/").replace("/", "-"))
                       if where in generator_dirs else merged + where)
                os.makedirs(dst, exist_ok=True)
                shutil.copy2(src, os.path.join(dst, name), follow_symlinks=False)
        for name in os.listdir(unitdir):
            path = os.path.join(unitdir, name)
            if name.endswith((".target", ".slice")) and not os.path.isdir(path) or name in HOST_UNITS:
                shutil.copy2(path, os.path.join(units, name), follow_symlinks=False)
        sim = self.installed["kasa-sim"]
        with open(os.path.join(units, "kasa-test.target"), "w") as f:
            f.write(TEST_TARGET)
        with open(os.path.join(units, "polkit.service"), "w") as f:
            f.write(POLKIT_SERVICE)
        with open(os.path.join(units, "kasa-sim.service"), "w") as f:
            f.write(SIM_SERVICE.format(sim=sim, sock=SIM_SOCKET,
                                       devices=" ".join(f"{p}@{a}" for a, p in {**SIM_DEVICES, **FILTER_SIMS}.items())))
        dropin = os.path.join(self.tmp, "etc-systemd", f"{UNIT}.d")
        os.makedirs(dropin)
        with open(os.path.join(dropin, "50-test.conf"), "w") as f:
            f.write(UNIT_DROPIN)

        # The configuration goes where the installed unit tells the daemon to look.
        with open(os.path.join(units, UNIT)) as f:
            exec_start = next(line for line in f if line.startswith("ExecStart="))
        config = next(a for a in exec_start.split() if a.startswith("--config=")).split("=", 1)[1]
        os.makedirs(merged + os.path.dirname(config), exist_ok=True)
        with open(merged + config, "w") as f:
            f.write(DAEMON_CONFIG.format(targets=" ".join(SIM_DEVICES)))

        # The optional rules for the group kasa, in the admin's place unless installed.
        if "50-kasamond.rules" not in self.installed:
            rules = merged + "/etc/polkit-1/rules.d"
            os.makedirs(rules, exist_ok=True)
            shutil.copy(os.path.join(os.environ["KASA_SOURCE_ROOT"], "polkit", "org.kasamond.kasa1.rules"),
                        os.path.join(rules, "50-kasamond.rules"))
            os.chmod(os.path.join(rules, "50-kasamond.rules"), 0o644)

        # A policy installed below /usr/local is not read by the system bus
        # (system.conf includes only /usr/share and /etc): an administrator
        # installing there adds the directory, and so does the test.
        policy = os.path.dirname(self.installed["org.kasamond.Kasa1.conf"])
        if policy not in ("/usr/share/dbus-1/system.d", "/etc/dbus-1/system.d"):
            os.makedirs(merged + "/etc/dbus-1", exist_ok=True)
            with open(merged + "/etc/dbus-1/system-local.conf", "w") as f:
                f.write('<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"\n'
                        ' "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">\n'
                        f"<busconfig><includedir>{policy}</includedir></busconfig>\n")

        ro = sorted("/" + d for d in os.listdir(merged) if d not in ("etc", "var"))
        for name, lines in (("overlay-ro", ro),
                            ("generator-dirs", [self._generator_source(g) for g in generator_dirs]),
                            ("sysusers", self._by_dir("sysusers.d")),
                            ("tmpfiles", self._by_dir("tmpfiles.d"))):
            with open(os.path.join(self.tmp, name), "w") as f:
                f.write("\n".join(lines) + "\n")
        os.mkdir(os.path.join(self.tmp, "empty"))

    def _generator_source(self, g):
        """A generator directory and what hides it: the project's own
        generators installed there, or nothing."""
        own = os.path.join("generators", g.strip("/").replace("/", "-"))
        return f"{g} {own if os.path.isdir(os.path.join(self.tmp, own)) else 'empty'}"

    def _by_dir(self, dirname):
        stage = os.path.join(self.tmp, "stage")
        found = []
        for root, _dirs, files in os.walk(stage):
            if os.path.basename(root) == dirname:
                where = os.path.realpath(os.path.relpath(root, stage).join(["/", ""]))
                found += [os.path.join(where, n) for n in files]
        if not found:
            raise RuntimeError(f"meson install put nothing in a {dirname} directory")
        return found

    # --- the namespace -----------------------------------------------

    def _boot(self):
        self.cgroup = Cgroup()
        self.console_path = os.path.join(self.tmp, "console.log")
        self.console = open(self.console_path, "wb")
        # A pty stands in for the console, as systemd-nspawn does: PID 1
        # reopens /dev/console, which a plain file would not survive.
        self.pty = os.openpty()
        tty.setraw(self.pty[1], termios.TCSANOW)
        self.stop_reading = threading.Event()
        self.reader = threading.Thread(target=self._read_console, daemon=True)
        self.reader.start()
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "KASA_T": self.tmp, "KASA_PLAIN_USER": PLAIN_USER,
               "KASA_MEMBER_USER": MEMBER_USER, "KASA_CONSOLE": os.ttyname(self.pty[1])}
        self.boot = subprocess.Popen(
            self.cgroup.command + ["unshare", "--fork", "--kill-child", "--pid", "--mount", "--uts", "--ipc", "--net",
                                   "--mount-proc", "--propagation", "private", "sh", "-c", BOOT_SCRIPT],
            env=env, stdin=subprocess.DEVNULL, stdout=self.pty[1], stderr=self.pty[1],
            preexec_fn=self.cgroup.enter)
        self.pid1 = wait_for(self._find_pid1, 30, "the namespace's PID 1")
        wait_for(lambda: self.run(["systemctl", "is-system-running"]).stdout.strip() in
                 ("running", "degraded"), 60, "systemd to finish booting")

    def _read_console(self):
        while not self.stop_reading.is_set():
            if select.select([self.pty[0]], [], [], 0.2)[0]:
                try:
                    data = os.read(self.pty[0], 65536)
                except OSError:
                    return
                self.console.write(data)
                self.console.flush()

    def _find_pid1(self):
        if self.boot.poll() is not None:
            raise RuntimeError(f"the namespace exited early:\n{self.console_tail()}")
        # unshare --fork: PID 1 of the namespace is unshare's only child.
        try:
            with open(f"/proc/{self.boot.pid}/task/{self.boot.pid}/children") as f:
                children = f.read().split()
        except FileNotFoundError:
            return None
        if not children:
            return None
        pid = int(children[0])
        try:
            # Only once systemd runs can systemctl talk to it.
            return pid if os.readlink(f"/proc/{pid}/exe").endswith("/systemd") else None
        except OSError:
            return None

    def run(self, argv, user=None, timeout=60):
        if user:
            argv = ["runuser", "-u", user, "--"] + argv
        return subprocess.run(["nsenter", "-t", str(self.pid1), "-m", "-p", "-u", "-i", "-n"] + argv,
                              env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"},
                              capture_output=True, text=True, timeout=timeout)

    def path(self, path):
        """A path as the namespace sees it, reachable from the host."""
        return f"/proc/{self.pid1}/root{path}"

    def console_tail(self, n=4000):
        try:
            with open(self.console_path, errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def daemon_log(self, n=3000):
        try:
            with open(self.path("/run/kasa-test/kasamond.log"), errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def close(self):
        if self.pid1:
            try:
                self.run(["systemctl", "exit", "0"], timeout=30)
            except subprocess.TimeoutExpired:
                pass
        if self.boot:
            try:
                self.boot.wait(30)
            except subprocess.TimeoutExpired:
                # Killing PID 1 takes every process of the namespace with it.
                if self.pid1:
                    try:
                        os.kill(self.pid1, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                self.boot.kill()
                self.boot.wait()
        if self.reader:
            self.stop_reading.set()
            self.reader.join()
        if self.pty:
            os.close(self.pty[0])
            os.close(self.pty[1])
        if self.console:
            self.console.close()
        if self.cgroup:
            self.cgroup.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # --- systemd and D-Bus helpers -------------------------------------

    def show(self, prop, unit=UNIT):
        return self.run(["systemctl", "show", "--value", "-p", prop, unit]).stdout.strip()

    def busctl(self, *args, user=None):
        """(reply data or None, error text)."""
        r = self.run(["busctl", "--json=short", "call", BUS_NAME, *args], user=user)
        if r.returncode != 0:
            return None, r.stderr.strip()
        # A method without a reply body prints nothing.
        return (json.loads(r.stdout)["data"] if r.stdout.strip() else []), ""

    def send(self, path, method, *args, user=None):
        """dbus-send's error line, "" on success."""
        r = self.run(["dbus-send", "--system", "--print-reply", f"--dest={BUS_NAME}", path, method, *args],
                     user=user)
        return r.stderr.strip() if r.returncode != 0 else ""

    def devices(self):
        data, _ = self.busctl(MANAGER_PATH, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects")
        if not data:
            return {}
        return {path: ifaces for path, ifaces in data[0].items() if "/device/" in path}

    def device_by_address(self, address):
        for path, ifaces in self.devices().items():
            dev = ifaces.get("org.kasamond.Kasa1.Device", {})
            if dev.get("Address", {}).get("data") == address:
                return path, dev
        return None, None

    def history(self, path):
        data, err = self.busctl(path, "org.kasamond.Kasa1.EnergyMeter", "GetHistory", "tts", "0", "0", "raw")
        return [tuple(s) for s in data[0]] if data else []

    def sim_truth(self):
        with SimControl(self.path(SIM_SOCKET)) as c:
            return {d["address"].split(":")[0]: d for d in c.truth()}


def main():
    if os.geteuid() != 0:
        print("1..1\nnot ok 1 - the system test needs root (namespaces, mounts, cgroups)")
        return 1
    # Left by a run that was SIGKILLed: nothing is mounted there any more,
    # as the namespace died with that run.
    for stale in os.listdir("/tmp"):
        if stale.startswith(TMP_PREFIX) and not pid_alive(stale[len(TMP_PREFIX):].split("-")[0]):
            shutil.rmtree(os.path.join("/tmp", stale), ignore_errors=True)
    # meson's timeout sends SIGTERM: clean up on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    t = Tap()
    try:
        sysm = System()
    except Exception as e:  # noqa: BLE001 - any set-up failure is the test's failure
        t.ok(False, "systemd boots in the namespaces with kasamond installed", e)
        return t.close()
    try:
        run_checks(t, sysm)
    finally:
        if t.failed:
            sys.stdout.write("# --- systemd console ---\n# " + sysm.console_tail().replace("\n", "\n# ") + "\n")
            sys.stdout.write("# --- kasamond log ---\n# " + sysm.daemon_log().replace("\n", "\n# ") + "\n")
        sysm.close()
    return t.close()


def run_checks(t, s):
    """Each step waits for what it expects; a timeout or error fails it."""

    def step(name, fn):
        try:
            result = fn()
        except (TimeoutError, RuntimeError, subprocess.SubprocessError, OSError, ValueError, KeyError) as e:
            return t.ok(False, name, e)
        cond, diag = result if isinstance(result, tuple) else (result, None)
        return t.ok(bool(cond), name, diag)

    def is_(got, want):
        return got == want, f"got {got!r}, want {want!r}"

    def restarted(old_pid, old_restarts, timeout, what):
        wait_for(lambda: int(s.show("NRestarts")) > old_restarts and s.show("ActiveState") == "active",
                 timeout, what)
        return s.show("MainPID") not in (old_pid, "0")

    def relay():
        return s.sim_truth()["127.0.0.2"]["relay"]

    t.ok(True, "systemd boots in the namespaces with kasamond installed")
    step("kasamond.service is enabled", lambda: is_(s.run(["systemctl", "is-enabled", UNIT]).stdout.strip(),
                                                     "enabled"))
    # Type=notify: active only once the daemon sent READY=1.
    step("kasamond started at boot and sent READY=1",
         lambda: is_(wait_for(lambda: (lambda a: a if a in ("active", "failed") else None)(s.show("ActiveState")),
                              30, "kasamond to start"), "active"))
    step("StatusText shows the daemon's STATUS=",
         lambda: wait_for(lambda: re.search(r"\b\d+ devices\b", s.show("StatusText")), 30, "STATUS="))
    step("the unit runs as the sysusers user kasamond",
         lambda: is_(s.run(["ps", "-o", "user=", "-p", s.show("MainPID")]).stdout.strip(), "kasamond"))

    # Discovery of the loopback plugs named in Targets=, then recording.
    paths = {}

    def discovered():
        for address in SIM_DEVICES:
            paths[address] = wait_for(lambda a=address: s.device_by_address(a)[0], 30, f"a device at {address}")
        return True
    step("kasa-sim plugs on 127.0.0.x are discovered", discovered)
    online = f"{len(SIM_DEVICES)} devices, {len(SIM_DEVICES)} online"
    step("StatusText counts the discovered plugs online",
         lambda: wait_for(lambda: s.show("StatusText").startswith(online), 30, f"STATUS={online}"))
    meter = paths.get("127.0.0.2")
    step("readings are recorded (GetHistory non-empty)",
         lambda: wait_for(lambda: len(s.history(meter)) >= 3, 30, "three recorded samples"))

    # kasactl as root and as a plain user; reading is open to everyone.
    kasactl = s.installed["kasactl"]
    step("kasactl list as root",
         lambda: is_(sorted(d["address"].split(":")[0] for d in json.loads(s.run([kasactl, "--json=short",
                                                                                "list"]).stdout)),
                     sorted(SIM_DEVICES)))
    step("kasactl list as a plain user",
         lambda: (lambda r: (r.returncode == 0, r.stderr))(s.run([kasactl, "--json=short", "list"], user=PLAIN_USER)))
    step("kasactl off as root", lambda: (lambda r: (r.returncode == 0, r.stderr))(s.run([kasactl, "off",
                                                                                         "127.0.0.2"])))
    step("the plug is off", lambda: is_(relay(), False))
    step("kasactl on as a plain user is refused, naming the polkit action",
         lambda: (lambda r: (r.returncode != 0 and "org.kasamond.kasa1.switch" in r.stderr, r.stdout + r.stderr))(
             s.run([kasactl, "--no-ask-password", "on", "127.0.0.2"], user=PLAIN_USER)))
    # polkit itself must say no (the daemon also refuses when it cannot ask).
    # dbus-send, unlike busctl, prints the error's own message and does not
    # allow interactive authorization, so auth_admin_keep is a challenge.
    step("SetOn as a plain user is refused by polkit (auth_admin_keep, not interactive)",
         lambda: is_(s.send(meter, "org.kasamond.Kasa1.Device.SetOn", "boolean:true", user=PLAIN_USER),
                     "Error org.freedesktop.DBus.Error.InteractiveAuthorizationRequired: "
                     "Interactive authentication is required for org.kasamond.kasa1.switch."))
    step("a refused call changes nothing", lambda: is_(relay(), False))
    # polkit can also say yes to someone other than root: kasamond is not
    # root, so polkitd answers it only as the actions' owner.
    step("SetOn by a member of the group kasa is allowed by the polkit rules",
         lambda: is_(s.send(meter, "org.kasamond.Kasa1.Device.SetOn", "boolean:true", user=MEMBER_USER), ""))
    step("the allowed call switched the plug", lambda: is_(relay(), True))

    # IPAddressAllow=: the LAN yes, the internet no. systemd applies it with
    # cgroup BPF; the probes run with the unit's own two lists.
    step("IPAddressDeny=any in the unit", lambda: is_(sorted(s.show("IPAddressDeny").split()), ["0.0.0.0/0", "::/0"]))
    allow = s.show("IPAddressAllow")

    def probes():
        r = s.run(["systemd-run", "--wait", "--pipe", "--quiet", "-p", "IPAddressDeny=any",
                   "-p", f"IPAddressAllow={allow}", "/usr/bin/python3", "-c", PROBE_SNIPPET, *PROBES])
        got = dict(line.split() for line in r.stdout.splitlines())
        want = {dest: "sent" if allowed else "1" for dest, allowed in PROBES.items()}  # EPERM
        return got == want, f"allow list {allow!r}: got {got}, want {want}; {r.stderr}"
    step("with the unit's address lists, the LAN, loopback, link-local and limited broadcast are reachable, "
         "public addresses are refused (EPERM)", probes)
    step(f"AddDevice of a plug at a private address ({LAN_PLUG}) works",
         lambda: (lambda r: (r[0] is not None, r[1]))(s.busctl(MANAGER_PATH, "org.kasamond.Kasa1.Manager",
                                                                "AddDevice", "s", LAN_PLUG)))
    step(f"AddDevice of a plug at a public address ({PUBLIC_PLUG}) fails: the daemon cannot reach it",
         lambda: (lambda r: (r[0] is None and s.device_by_address(PUBLIC_PLUG)[0] is None, r))(
             s.busctl(MANAGER_PATH, "org.kasamond.Kasa1.Manager", "AddDevice", "s", PUBLIC_PLUG)))

    # D-Bus activation: stopped, then started by a call, via SystemdService=.
    s.run(["systemctl", "stop", UNIT])
    step("kasamond stopped", lambda: is_(s.show("ActiveState"), "inactive"))

    # An error is logged once, where it is handled: without netlink,
    # Targets=auto can neither list nor watch addresses, and the daemon
    # goes on without either, saying so once each.
    def netlink_refused():
        with open(s.path("/run/kasa-test/netlink.conf"), "w") as f:
            f.write("[Discovery]\nTargets=auto\nInterval=0\n")
        r = s.run(["systemd-run", "--wait", "--pipe", "--quiet", "-p", "RuntimeMaxSec=4",
                   "-p", "RestrictAddressFamilies=AF_UNIX AF_INET", "-p", "StateDirectory=kasamond-netlink",
                   s.installed["kasamond"], "--config=/run/kasa-test/netlink.conf"])
        lines = [line for line in (r.stdout + r.stderr).splitlines() if "address" in line or
                 "discovery" in line.lower()]
        watch = [line for line in lines if "watch" in line.lower()]
        listing = [line for line in lines if "watch" not in line.lower()]
        good = (len(watch) == 1 and len(listing) == 1 and
                all(line.endswith(", ignoring: Address family not supported by protocol") for line in lines))
        return good, "\n".join(lines) or r.stdout + r.stderr
    step("without netlink, each failure is logged once, saying ', ignoring' and why", netlink_refused)
    step("a call to org.kasamond.Kasa1 is answered after the stop",
         lambda: (lambda r: (r[0] is not None, r[1]))(s.busctl(MANAGER_PATH, "org.freedesktop.DBus.Peer", "Ping")))
    # The name may be owned, and the call answered, just before READY=1.
    step("the call started kasamond.service (D-Bus activation)",
         lambda: wait_for(lambda: s.show("ActiveState") == "active", 30, "kasamond.service active"))

    # Watchdog: a stopped (hung) daemon sends no WATCHDOG=1 and is restarted.
    def hung():
        old_pid, old_restarts = s.show("MainPID"), int(s.show("NRestarts"))
        s.run(["kill", "-STOP", old_pid])
        return restarted(old_pid, old_restarts, 4 * WATCHDOG_SEC + 60, "the watchdog restart")
    step("the watchdog restarts a hung daemon (NRestarts up, new MainPID)", hung)
    step("systemd logged the watchdog timeout",
         lambda: f"{UNIT}: Watchdog timeout" in s.console_tail(1 << 20))

    # SIGKILL: restarted, and what was recorded before the kill is kept.
    before = []

    def killed():
        before.extend(wait_for(lambda: (lambda h: h if len(h) >= 3 else None)(s.history(meter)), 30,
                               "samples since the last restart"))
        old_pid, old_restarts = s.show("MainPID"), int(s.show("NRestarts"))
        s.run(["kill", "-KILL", old_pid])
        return restarted(old_pid, old_restarts, 60, "the restart after SIGKILL")
    step("a SIGKILLed daemon is restarted (NRestarts up, new MainPID)", killed)
    after = []

    def kept():
        after.extend(wait_for(lambda: s.history(meter), 30, "GetHistory after the restart"))
        missing = {x[0] for x in before} - {x[0] for x in after}
        return bool(before) and not missing, f"{len(before)} samples before, missing: {sorted(missing)[:10]}"
    step("no sample recorded before the kill is lost", kept)
    step("recording goes on after the restart",
         lambda: wait_for(lambda: len(s.history(meter)) > len(after), 30, "a new sample"))


if __name__ == "__main__":
    sys.exit(main())
