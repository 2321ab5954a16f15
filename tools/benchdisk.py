# SPDX-License-Identifier: MIT
"""Shared by the disk benchmarks (tools/bench-writes, tools/bench-slowdisk,
tools/soak-kill): a fresh ext4 on a loop device whose image lives in
/dev/shm, its written bytes counted at the block layer, a blkio cgroup
that throttles it, and one cleanup stack that undoes everything a run set
up, in reverse order, also on Ctrl-C or SIGTERM."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(HERE)
BLKIO = "/sys/fs/cgroup/blkio"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(*cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


class Cleanup:
    """LIFO of undo actions. Each runs once even if an earlier one failed,
    so a failed umount does not leave the loop device attached."""

    def __init__(self):
        self.actions = []

    def push(self, what, fn, *args):
        self.actions.append((what, fn, args))

    def run(self):
        while self.actions:
            what, fn, args = self.actions.pop()
            try:
                fn(*args)
            except Exception as e:  # noqa: BLE001 -- keep undoing the rest
                log(f"cleanup: {what} failed, ignoring: {e}")

    def __enter__(self):
        # SIGTERM and SIGHUP end the run like Ctrl-C does: through the
        # finally blocks and this stack.
        for s in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, _raise_interrupt)
        return self

    def __exit__(self, *exc):
        self.run()


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def kill_pid(pid, timeout=10):
    """SIGTERM, then SIGKILL after timeout; pid is an int or a Popen."""
    p = pid if isinstance(pid, subprocess.Popen) else None
    n = p.pid if p else pid
    try:
        os.kill(n, signal.SIGTERM)
    except ProcessLookupError:
        return
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if p is not None:
            if p.poll() is not None:
                return
        else:
            try:
                if os.waitpid(n, os.WNOHANG)[0] == n:
                    return
            except ChildProcessError:
                try:
                    os.kill(n, 0)
                except ProcessLookupError:
                    return
        time.sleep(0.05)
    try:
        os.kill(n, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if p is not None:
        p.wait()


def require_root(prog):
    if os.getuid() != 0:
        raise SystemExit(f"{prog}: needs root (loop devices, mounts, cgroups, network namespaces)")


def ensure_deps(prog, commands):
    """Installs tools/deps' bench group if a command is missing."""
    missing = [c for c in commands if shutil.which(c) is None and not os.access(c, os.X_OK)]
    if not missing:
        return
    log(f"{prog}: {', '.join(missing)} missing; running tools/deps bench")
    # Debian's influxdb starts its service on installation, listening on
    # every address with the packaged config: a policy-rc.d that refuses
    # (exit 101) keeps it from starting; one already there is left alone.
    policy = "/usr/sbin/policy-rc.d"
    made = False
    if not os.path.exists(policy):
        with open(policy, "w") as f:
            f.write("#!/bin/sh\n# kasamond tools/benchdisk.py: no services started while installing\nexit 101\n")
        os.chmod(policy, 0o755)
        made = True
    try:
        run(os.path.join(HERE, "deps"), "bench")
    finally:
        if made:
            os.unlink(policy)


def in_netns(prog, mark):
    """Re-executes the calling script inside a network namespace of its own
    (tests/netns-run) unless it already runs in one; returns only there."""
    if os.environ.get(mark) == "1":
        return
    env = dict(os.environ, **{mark: "1"})
    netns_run = os.path.join(SOURCE_ROOT, "tests", "netns-run")
    os.execvpe(netns_run, [netns_run, sys.executable, os.path.abspath(sys.argv[0]), *sys.argv[1:]], env)


class LoopFs:
    """A fresh ext4 (mounted noatime) on a loop device over a sparse image
    in /dev/shm. written_bytes() is the loop device's written sectors
    (/sys/block/loopN/stat field 7) x 512, after sync -f."""

    def __init__(self, cleanup, size="4G", label="bench"):
        self.image = tempfile.mktemp(prefix=f"kasa-{label}-", suffix=".img", dir="/dev/shm")
        with open(self.image, "wb") as f:
            f.truncate(_parse_size(size))
        cleanup.push(f"remove {self.image}", os.unlink, self.image)
        self.dev = subprocess.run(["losetup", "--find", "--show", self.image], check=True,
                                  capture_output=True, text=True).stdout.strip()
        cleanup.push(f"detach {self.dev}", run, "losetup", "--detach", self.dev)
        # No lazy initialisation: the kernel would zero the inode tables
        # and the journal in the background, during the measurement.
        run("mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", self.dev,
            stdout=subprocess.DEVNULL)
        self.mnt = tempfile.mkdtemp(prefix=f"kasa-{label}-mnt-")
        cleanup.push(f"remove {self.mnt}", os.rmdir, self.mnt)
        run("mount", "-t", "ext4", "-o", "noatime", self.dev, self.mnt)
        cleanup.push(f"unmount {self.mnt}", run, "umount", self.mnt)
        self.name = os.path.basename(self.dev)
        st = os.stat(self.dev)
        self.majmin = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"

    def sectors_written(self):
        with open(f"/sys/block/{self.name}/stat") as f:
            return int(f.read().split()[6])

    def written_bytes(self):
        run("sync", "-f", self.mnt)
        return self.sectors_written() * 512

    def path(self, *parts):
        return os.path.join(self.mnt, *parts)


class Throttle:
    """A cgroup-v1 blkio group limiting writes to a device to iops per
    second for the processes put in it; removed on cleanup (its processes
    are moved back to the root group first)."""

    def __init__(self, cleanup, majmin, write_iops, label="bench"):
        if not os.path.isdir(BLKIO):
            raise SystemExit(f"no cgroup-v1 blkio controller at {BLKIO}")
        self.dir = tempfile.mkdtemp(prefix=f"kasa-{label}-", dir=BLKIO)
        cleanup.push(f"remove cgroup {self.dir}", self._remove)
        with open(os.path.join(self.dir, "blkio.throttle.write_iops_device"), "w") as f:
            f.write(f"{majmin} {write_iops}\n")

    def add(self, pid):
        with open(os.path.join(self.dir, "cgroup.procs"), "w") as f:
            f.write(f"{pid}\n")

    def _remove(self):
        with open(os.path.join(self.dir, "cgroup.procs")) as f:
            pids = f.read().split()
        for pid in pids:
            try:
                with open(os.path.join(BLKIO, "cgroup.procs"), "w") as f:
                    f.write(f"{pid}\n")
            except OSError:
                pass        # exited meanwhile
        os.rmdir(self.dir)


def _parse_size(s):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    s = str(s).strip().upper()
    return int(s[:-1]) * units[s[-1]] if s[-1] in units else int(s)


def percentile(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    k = (len(v) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def git_commit(tree):
    """HEAD of a source tree, and the last commit that changed daemon/ if
    that is older: "abc1234 (daemon/ of 292c943)"."""
    def git(*a):
        return subprocess.run(["git", "-C", tree, *a], capture_output=True, text=True, check=True).stdout.strip()
    try:
        head = git("rev-parse", "--short", "HEAD")
        daemon = git("log", "-1", "--format=%h", "--", "daemon")
        dirty = "+dirty" if git("status", "--porcelain", "--untracked-files=no", "--", "daemon") else ""
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + dirty + ("" if daemon == head else f" (daemon/ of {daemon})")


def build_source(build_dir):
    """The source tree a meson build dir was configured from."""
    with open(os.path.join(build_dir, "meson-info", "meson-info.json")) as f:
        return json.load(f)["directories"]["source"]


def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({model}), Linux {os.uname().release}"


def sweep_block(base, n):
    """The smallest a.b.c.d/p whose hosts hold n consecutive addresses from
    base, for the daemon's unicast discovery sweep."""
    start = int.from_bytes(socket.inet_aton(base), "big")
    for prefix in range(30, 15, -1):
        size = 1 << (32 - prefix)
        net = start & ~(size - 1)
        if net < start and start + n - 1 < net + size - 1:
            return f"{socket.inet_ntoa(net.to_bytes(4, 'big'))}/{prefix}"
    raise SystemExit(f"{n} plugs do not fit one /16 from {base}")


def plug_env(kt, cleanup, state, plugs, interval, config="", base="127.0.4.1", load_w=120):
    """The bus tests' harness (tests/bus/kasatest.py: private bus, kasa-sim
    with `plugs` kp115 plugs from `base`, kasamond from $KASA_BUILD_ROOT)
    with the daemon's state directory at `state`; returns once every plug
    is discovered. Closed by the cleanup stack."""

    class StateEnv(kt.Env):
        def start_daemon(self, wait=True):
            self.state = state
            super().start_daemon(wait)

    fd, sim_conf = tempfile.mkstemp(prefix="kasa-bench-sim-", suffix=".json")
    cleanup.push(f"remove {sim_conf}", os.unlink, sim_conf)
    with os.fdopen(fd, "w") as f:
        json.dump({"seed": 1, "devices": [{"profile": "kp115", "address": base, "count": plugs,
                                           "load_w": load_w}]}, f)
    env = StateEnv([], poll_interval=interval, targets=sweep_block(base, plugs), sim_args=(f"--config={sim_conf}",),
                   config=f"[Limits]\nMaxDevices={plugs + 16}\n{config}")
    cleanup.push("stop kasamond, kasa-sim, dbus-daemon", env.close)
    # A sweep of a loaded machine can miss a few replies: sweep again
    # (Manager.Discover) rather than wait for the next periodic one.
    end = time.monotonic() + 300 + plugs * 0.1
    again = time.monotonic() + 30
    while env.get(kt.MANAGER_PATH, kt.MANAGER_IFACE, "DeviceCount") < plugs:
        if time.monotonic() > end:
            raise SystemExit(f"{plugs} plugs not all discovered\n{env.log()}")
        if time.monotonic() > again:
            env.discover(2.0)
            again = time.monotonic() + 30
        env.iterate(0.5)
    return env
