/* SPDX-License-Identifier: MIT */

#include "sun.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "kasa-time.h"
#include "macro.h"

/* Zenith angles of the events: sunrise and sunset are the upper limb at
 * the horizon, with 34' of standard refraction and 16' of solar radius
 * (0.833 degrees below it); civil twilight ends at 6 degrees below. */
static const double zenith_deg[_SUN_EVENT_MAX] = {
        [SUN_SUNRISE] = 90.833,
        [SUN_SUNSET] = 90.833,
        [SUN_CIVIL_DAWN] = 96.0,
        [SUN_CIVIL_DUSK] = 96.0,
};

static const char *const event_names[_SUN_EVENT_MAX] = {
        [SUN_SUNRISE] = "sunrise",
        [SUN_SUNSET] = "sunset",
        [SUN_CIVIL_DAWN] = "civil-dawn",
        [SUN_CIVIL_DUSK] = "civil-dusk",
};

const char *sun_event_to_string(SunEvent e) {
        return e >= 0 && e < _SUN_EVENT_MAX ? event_names[e] : NULL;
}

SunEvent sun_event_from_string(const char *s) {
        for (SunEvent e = 0; s && e < _SUN_EVENT_MAX; e++)
                if (strcmp(s, event_names[e]) == 0)
                        return e;
        return _SUN_EVENT_INVALID;
}

const char *sun_result_to_string(SunEvent e, SunResult r) {
        bool twilight = e == SUN_CIVIL_DAWN || e == SUN_CIVIL_DUSK;

        switch (r) {
        case SUN_ALWAYS_ABOVE:
                return twilight ? "no civil twilight: the sun stays above -6 degrees all day"
                                : "polar day: the sun does not set";
        case SUN_ALWAYS_BELOW:
                return twilight ? "no civil twilight: the sun stays below -6 degrees all day"
                                : "polar night: the sun does not rise";
        default:
                return NULL;
        }
}

static double rad(double d) {
        return d * M_PI / 180.0;
}

static double deg(double r) {
        return r * 180.0 / M_PI;
}

int sun_check_location(double lat, double lon) {
        if (!isfinite(lat) || !isfinite(lon) || lat < -90 || lat > 90 || lon < -180 || lon > 180)
                return -EINVAL;
        return 0;
}

/* Declination (degrees) and equation of time (minutes) at Julian century
 * jc, as in NOAA's spreadsheet. */
static void solar_position(double jc, double *ret_decl, double *ret_eqtime) {
        double l0 = fmod(280.46646 + jc * (36000.76983 + jc * 0.0003032), 360.0);
        double m = 357.52911 + jc * (35999.05029 - 0.0001537 * jc);
        double e = 0.016708634 - jc * (0.000042037 + 0.0000001267 * jc);
        double c = sin(rad(m)) * (1.914602 - jc * (0.004817 + 0.000014 * jc)) +
                   sin(rad(2 * m)) * (0.019993 - 0.000101 * jc) + sin(rad(3 * m)) * 0.000289;
        double omega = 125.04 - 1934.136 * jc;
        double lambda = l0 + c - 0.00569 - 0.00478 * sin(rad(omega));
        double eps0 = 23.0 + (26.0 + (21.448 - jc * (46.815 + jc * (0.00059 - jc * 0.001813))) / 60.0) / 60.0;
        double eps = eps0 + 0.00256 * cos(rad(omega));
        double y = tan(rad(eps / 2)) * tan(rad(eps / 2));

        *ret_decl = deg(asin(sin(rad(eps)) * sin(rad(lambda))));
        *ret_eqtime = 4.0 * deg(y * sin(rad(2 * l0)) - 2 * e * sin(rad(m)) +
                                4 * e * y * sin(rad(m)) * cos(rad(2 * l0)) - 0.5 * y * y * sin(rad(4 * l0)) -
                                1.25 * e * e * sin(rad(2 * m)));
}

/* Minutes after 00:00 UTC of the date (days since the epoch) at which the
 * event happens, evaluating the sun's position at minute t. */
static SunResult event_at(double lat, double lon, int64_t days, SunEvent e, double t, double *ret_minutes) {
        double jd = 2440587.5 + (double) days + t / 1440.0;
        double decl, eqtime;

        solar_position((jd - 2451545.0) / 36525.0, &decl, &eqtime);
        double cos_ha = cos(rad(zenith_deg[e])) / (cos(rad(lat)) * cos(rad(decl))) - tan(rad(lat)) * tan(rad(decl));
        if (cos_ha > 1)
                return SUN_ALWAYS_BELOW;
        if (cos_ha < -1)
                return SUN_ALWAYS_ABOVE;
        double ha = deg(acos(cos_ha));
        double noon = 720.0 - 4.0 * lon - eqtime;
        *ret_minutes = (e == SUN_SUNRISE || e == SUN_CIVIL_DAWN) ? noon - 4.0 * ha : noon + 4.0 * ha;
        return SUN_OK;
}

int sun_event_time(double lat, double lon, int64_t noon_usec, SunEvent e, int64_t *ret_usec) {
        double t;
        SunResult r;

        if (e < 0 || e >= _SUN_EVENT_MAX || sun_check_location(lat, lon) < 0)
                return -EINVAL;
        /* At the poles themselves tan(lat) is infinite: a hair away from
         * them the answer is the same. */
        lat = MAX(-89.9999, MIN(lat, 89.9999));
        /* The UTC day whose mean solar noon (720 - 4 lon minutes after its
         * 00:00 UTC) is nearest the civil noon; times below are minutes
         * from that day's 00:00 UTC, and may fall outside it. */
        double mean_noon = 720.0 - 4.0 * lon;
        int64_t days = (int64_t) floor(((double) noon_usec / 60e6 - mean_noon) / 1440.0 + 0.5);

        /* First guess with the sun of local solar noon, then the sun at
         * the guessed time, as NOAA's calculator does: declination moves
         * enough in half a day to shift high-latitude events by minutes. */
        r = event_at(lat, lon, days, e, mean_noon, &t);
        if (r != SUN_OK)
                return r;
        for (unsigned i = 0; i < 4; i++) {
                double next;

                /* Near the edge of a polar day or night the event can
                 * vanish at the refined time: keep the last one found. */
                if (event_at(lat, lon, days, e, t, &next) != SUN_OK)
                        break;
                bool converged = fabs(next - t) < 0.01;
                t = next;
                if (converged)
                        break;
        }
        *ret_usec = days * (int64_t) USEC_PER_DAY + (int64_t) llround(t * 60.0 * 1e6);
        return SUN_OK;
}
