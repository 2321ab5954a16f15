#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Independent reference times for tests/daemon/test-sun.c.

A different formulation from daemon/sun.c (NOAA's closed-form hour angle
with the equation of time): the sun's right ascension and declination from
the U.S. Naval Observatory's "Approximate Solar Coordinates" (Astronomical
Applications Dept., good to about 1 arcminute for 1950-2050), its hour angle
from Greenwich mean sidereal time, and the moment the apparent altitude of
the sun's centre crosses the event's altitude found by bisection on the
altitude itself. Run it to print the table test-sun.c holds:

    tests/daemon/data/sun-reference.py
"""

import math
from datetime import datetime, timedelta, timezone

ALTITUDE = {"sunrise": -0.833, "sunset": -0.833, "civil-dawn": -6.0, "civil-dusk": -6.0}
RISING = {"sunrise": True, "sunset": False, "civil-dawn": True, "civil-dusk": False}

# name, latitude, longitude, date, UTC offset of the local zone (hours)
PLACES = [
    ("Greenwich", 51.4769, -0.0005, "2024-06-21", 1),
    ("Greenwich", 51.4769, -0.0005, "2024-12-21", 0),
    ("Quito", -0.1807, -78.4678, "2024-03-20", -5),
    ("Washington DC", 38.8951, -77.0364, "2024-11-03", -5),
    ("Sydney", -33.8688, 151.2093, "2024-12-21", 11),
    ("Cape Town", -33.9249, 18.4241, "2024-06-21", 2),
    ("Ushuaia", -54.8019, -68.3030, "2024-12-21", -3),
    ("Reykjavik", 64.1466, -21.9426, "2024-12-21", 0),
    ("Reykjavik", 64.1466, -21.9426, "2024-03-20", 0),
    ("Fairbanks", 64.8378, -147.7164, "2024-09-22", -8),
    ("Suva", -18.1416, 178.4419, "2024-07-01", 12),
    ("Apia", -13.8333, -171.7500, "2024-07-01", 13),
    ("Adak", 51.8800, -176.6581, "2024-07-01", -9),
    ("Tromso", 69.6492, 18.9553, "2024-12-21", 1),
    ("Tromso", 69.6492, 18.9553, "2024-06-21", 2),
    ("McMurdo", -77.8500, 166.6667, "2024-12-21", 13),
    ("McMurdo", -77.8500, 166.6667, "2024-06-21", 12),
]


def jd_of(t):
    return t.timestamp() / 86400.0 + 2440587.5


def altitude(t, lat, lon):
    d = jd_of(t) - 2451545.0
    g = math.radians(357.529 + 0.98560028 * d)
    q = 280.459 + 0.98564736 * d
    ecl_lon = math.radians(q + 1.915 * math.sin(g) + 0.020 * math.sin(2 * g))
    eps = math.radians(23.439 - 0.00000036 * d)
    ra = math.atan2(math.cos(eps) * math.sin(ecl_lon), math.cos(ecl_lon))
    dec = math.asin(math.sin(eps) * math.sin(ecl_lon))
    gmst = (18.697374558 + 24.06570982441908 * d) % 24.0
    ha = math.radians(gmst * 15.0 + lon) - ra
    la = math.radians(lat)
    return math.degrees(math.asin(math.sin(la) * math.sin(dec) + math.cos(la) * math.cos(dec) * math.cos(ha)))


def transit(lat, lon, date, offset):
    """The highest point of the sun nearest the local zone's civil noon."""
    noon = datetime.fromisoformat(date).replace(tzinfo=timezone.utc) + timedelta(hours=12 - offset)
    best = max((noon + timedelta(minutes=m) for m in range(-14 * 60, 14 * 60)),
               key=lambda t: altitude(t, lat, lon))
    return best


def crossing(lat, lon, a, b, target):
    fa = altitude(a, lat, lon) - target
    for _ in range(60):
        mid = a + (b - a) / 2
        fm = altitude(mid, lat, lon) - target
        if (fm < 0) == (fa < 0):
            a, fa = mid, fm
        else:
            b = mid
    return a + (b - a) / 2


def event(lat, lon, date, offset, name):
    noon = transit(lat, lon, date, offset)
    target = ALTITUDE[name]
    step = timedelta(minutes=2)
    if altitude(noon, lat, lon) < target:
        return "below"
    # From transit outwards to half a day away, the first time below the altitude.
    direction = -1 if RISING[name] else 1
    t = noon
    for _ in range(12 * 30):
        nxt = t + direction * step
        if altitude(nxt, lat, lon) < target:
            a, b = sorted((t, nxt))
            return crossing(lat, lon, a, b, target)
        t = nxt
    return "above"


def main():
    for name, lat, lon, date, offset in PLACES:
        cells = []
        for ev in ("sunrise", "sunset", "civil-dawn", "civil-dusk"):
            v = event(lat, lon, date, offset, ev)
            cells.append(v if isinstance(v, str) else v.strftime("%Y-%m-%dT%H:%M:%S"))
        print(f"{name:14s} {lat:9.4f} {lon:10.4f} {date} {offset:+3d}  " + "  ".join(cells))


if __name__ == "__main__":
    main()
