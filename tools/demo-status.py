# SPDX-License-Identifier: MIT
"""Prints Manager.Describe() (busctl --json=short output on stdin) as a table."""
import json
import sys
import time

d = json.loads(json.loads(sys.stdin.read())["data"][0])
print(time.strftime("%H:%M:%S"), f"total {d['total_power']:.1f} W, {len(d['devices'])} devices")
print(f"  {'ID':<17} {'ALIAS':<14} {'MODEL':<10} {'ON':<4} {'ONLINE':<7} {'POWER':>9} {'TODAY':>9}")
for dev in d["devices"]:
    m = dev.get("meter")
    power = f"{m['power']:.1f} W" if m else "-"
    today = f"{m['energy_today']:.1f} Wh" if m else "-"
    print(f"  {dev['id']:<17} {dev['alias'][:14]:<14} {dev['model'][:10]:<10} {'on' if dev['on'] else 'off':<4} "
          f"{'yes' if dev['online'] else 'no':<7} {power:>9} {today:>9}")
print()
