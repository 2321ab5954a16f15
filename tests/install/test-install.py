#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""`meson install --destdir` puts every planned file into the tree, where the
system's pkg-config (or the matching meson option) says, and nothing else;
the installed unit passes `systemd-analyze verify`, has an exposure of at
most 1.0, and agrees with the installed binary and D-Bus activation file;
the installed sysusers.d and tmpfiles.d files are accepted by systemd's own
tools inside the tree. The tree is removed at the end.

Usage: test-install.py BUILD_ROOT"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from kasalib import Tap  # noqa: E402

MAX_EXPOSURE = 1.0


def run(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def pkgconfig(package, variable):
    p = run("pkg-config", f"--variable={variable}", package)
    return p.stdout.strip() if p.returncode == 0 else ""


def expected_dirs(build):
    """Where each kind of file belongs: the meson option when set, else
    what pkg-config says (as the build files decide)."""
    options = {o["name"]: o["value"] for o in json.loads(run("meson", "introspect", "--buildoptions", build).stdout)}
    prefix = options["prefix"]

    def pick(option, package, variable, fallback):
        return options[option] or pkgconfig(package, variable) or os.path.join(prefix, fallback)

    dbus_data = pkgconfig("dbus-1", "datadir") or os.path.join(prefix, options["datadir"])
    return {
        "daemon": os.path.join(prefix, options["libexecdir"]),
        "unit": pick("systemdsystemunitdir", "systemd", "systemdsystemunitdir", "lib/systemd/system"),
        "generator": pick("systemdsystemgeneratordir", "systemd", "systemdsystemgeneratordir",
                          "lib/systemd/system-generators"),
        "sysusers": pick("sysusersdir", "systemd", "sysusersdir", "lib/sysusers.d"),
        "tmpfiles": pick("tmpfilesdir", "systemd", "tmpfilesdir", "lib/tmpfiles.d"),
        "policy": options["dbus_policy_dir"] or os.path.join(dbus_data, "dbus-1", "system.d"),
        "activation": pick("dbus_system_services_dir", "dbus-1", "system_bus_services_dir",
                           "share/dbus-1/system-services"),
        "interfaces": pick("dbus_interfaces_dir", "dbus-1", "interfaces_dir", "share/dbus-1/interfaces"),
        "actions": pick("polkit_actions_dir", "polkit-gobject-1", "actiondir", "share/polkit-1/actions"),
        "rules": options["polkit_rules_dir"] or os.path.join(pkgconfig("polkit-gobject-1", "datadir") or
                                                             os.path.join(prefix, options["datadir"]),
                                                             "polkit-1", "rules.d"),
    }


def unit_file(path):
    """A unit or D-Bus service file as {section: {key: [values]}}; keys
    may repeat. Continuation lines are not used in these files."""
    sections = {}
    current = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("[") and line.endswith("]"):
                current = sections.setdefault(line[1:-1], {})
                continue
            key, _, value = line.partition("=")
            current.setdefault(key.strip(), []).append(value.strip())
    return sections


def check_tree(t, destdir, plan, dirs, build):
    installed = set()
    for root, _, files in os.walk(destdir):
        installed.update(os.path.join(root, f)[len(destdir):] for f in files)
    for src, dst in sorted(plan.items()):
        path = destdir + dst
        ok = os.path.isfile(path)
        if ok and os.path.abspath(src).startswith(os.path.abspath(build) + os.sep):
            # Built files may change on the way (rpath): only the mode counts.
            ok = os.access(path, os.X_OK) or not os.access(src, os.X_OK)
        elif ok:
            with open(src, "rb") as a, open(path, "rb") as b:
                ok = a.read() == b.read()
        t.ok(ok, f"{dst} is installed", f"from {src}")
    extra = sorted(installed - set(plan.values()))
    t.ok(not extra, "nothing is installed that the plan does not list", "\n".join(extra))

    # The files the system looks for, each where pkg-config says.
    wanted = [
        ("daemon", "kasamond"),
        ("unit", "kasamond.service"),
        ("generator", "kasamond-schedule-generator"),
        ("sysusers", "kasamond.conf"),
        ("tmpfiles", "kasamond.conf"),
        ("policy", "org.kasamond.Kasa1.conf"),
        ("activation", "org.kasamond.Kasa1.service"),
        ("interfaces", "org.kasamond.Kasa1.Manager.xml"),
        ("interfaces", "org.kasamond.Kasa1.Device.xml"),
        ("interfaces", "org.kasamond.Kasa1.EnergyMeter.xml"),
        ("interfaces", "org.kasamond.Kasa1.Schedule.xml"),
        ("interfaces", "org.kasamond.Kasa1.Tariff.xml"),
        ("actions", "org.kasamond.kasa1.policy"),
        ("rules", "49-kasamond-units.rules"),
        ("daemon", "kasamond-alert-hook"),
        ("unit", "kasamond-alert-hook@.service"),
        ("interfaces", "org.kasamond.Kasa1.Alert.xml"),
        ("sysusers", "kasamond-alert-hook.conf"),
    ]
    for kind, name in wanted:
        path = os.path.join(dirs[kind], name)
        t.ok(path in plan.values() and os.path.isfile(destdir + path), f"{kind}: {path}",
             f"planned: {sorted(plan.values())}")


def check_unit(t, destdir, dirs):
    unit_path = destdir + os.path.join(dirs["unit"], "kasamond.service")
    unit = unit_file(unit_path)
    service = unit.get("Service", {})
    exec_start = service.get("ExecStart", [""])[0].split()
    daemon = os.path.join(dirs["daemon"], "kasamond")
    t.ok(exec_start and exec_start[0] == daemon, "ExecStart runs the installed daemon", f"{exec_start} vs {daemon}")

    activation = unit_file(destdir + os.path.join(dirs["activation"], "org.kasamond.Kasa1.service"))
    dbus = activation.get("D-BUS Service", {})
    t.ok(dbus.get("Name") == service.get("BusName") == ["org.kasamond.Kasa1"],
         "activation file and unit name the same bus name", f"{dbus} / {service.get('BusName')}")
    systemd_service = dbus.get("SystemdService", [""])[0]
    t.ok(systemd_service in unit.get("Install", {}).get("Alias", []),
         f"the unit is installed as {systemd_service}, the activation file's SystemdService", unit.get("Install"))

    # systemd-analyze verify resolves ExecStart on the host: a copy of the
    # installed unit points it at the installed binary. Man pages are looked
    # up in the host's man database, where they are not installed.
    with tempfile.TemporaryDirectory(prefix="kasa-verify-") as tmp:
        copy = os.path.join(tmp, "kasamond.service")
        with open(unit_path) as f, open(copy, "w") as out:
            out.write(re.sub(r"^(ExecStart=)/", rf"\g<1>{destdir}/", f.read(), flags=re.M))
        p = run("systemd-analyze", "verify", "--man=no", copy)
        t.ok(p.returncode == 0 and not (p.stdout + p.stderr).strip(), "systemd-analyze verify: no complaints",
             f"exit {p.returncode}\n{p.stdout}{p.stderr}")

    p = run("systemd-analyze", "security", "--offline=yes", unit_path)
    m = re.search(r"Overall exposure level for kasamond\.service: (\d+\.\d+)", p.stdout)
    exposure = float(m.group(1)) if m else None
    t.ok(exposure is not None and exposure <= MAX_EXPOSURE,
         f"systemd-analyze security: exposure {exposure} <= {MAX_EXPOSURE}", p.stdout + p.stderr)
    config = next((w.split("=", 1)[1] for w in exec_start if w.startswith("--config=")), "")
    t.ok(config.startswith("/"), "ExecStart names a config file", exec_start)
    return config


def check_sysusers_tmpfiles(t, destdir, config):
    p = run("systemd-sysusers", f"--root={destdir}", "--dry-run")
    out = p.stdout + p.stderr
    t.ok(p.returncode == 0 and "Creating user 'kasamond'" in out and "Creating group 'kasa'" in out,
         "systemd-sysusers in the tree creates the user kasamond and the group kasa", out)
    # Creates only inside the tree, which goes away.
    p = run("systemd-tmpfiles", f"--root={destdir}", "--create")
    t.ok(p.returncode == 0 and not (p.stdout + p.stderr).strip(),
         "systemd-tmpfiles in the tree accepts the installed file", f"exit {p.returncode}\n{p.stdout}{p.stderr}")
    # The unit refuses to start without the file its --config= names.
    t.ok(os.path.isfile(destdir + config), f"systemd-tmpfiles creates {config}, the unit's --config=")


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    build = sys.argv[1]
    t = Tap()
    plan = json.loads(run("meson", "introspect", "--installed", build).stdout)
    dirs = expected_dirs(build)
    destdir = tempfile.mkdtemp(prefix="kasa-install-")
    try:
        p = run("meson", "install", "-C", build, "--destdir", destdir, "--no-rebuild", "--quiet")
        if t.ok(p.returncode == 0, "meson install --destdir", p.stdout + p.stderr):
            check_tree(t, destdir, plan, dirs, build)
            config = check_unit(t, destdir, dirs)
            check_sysusers_tmpfiles(t, destdir, config)
    finally:
        shutil.rmtree(destdir, ignore_errors=True)
    return t.close()


if __name__ == "__main__":
    sys.exit(main())
