/* SPDX-License-Identifier: MIT */
#include "log.h"
#include "macro.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "tariff.h"

Tariff *tariff_new(void) {
        Tariff *t = calloc(1, sizeof(Tariff));
        if (!t)
                return NULL;
        t->valid_from_ms = INT64_MIN;
        t->valid_until_ms = INT64_MAX;
        t->cycle_start_day = 1;
        t->demand_window_min = 15;
        memset(t->flat_demand_month, TARIFF_NO_PERIOD, sizeof(t->flat_demand_month));
        return t;
}

static void periods_free(TariffPeriod *p, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(p[i].name);
                free(p[i].tiers);
        }
        free(p);
}

static void charges_free(TariffCharge *c, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(c[i].name);
        free(c);
}

Tariff *tariff_free(Tariff *t) {
        if (!t)
                return NULL;
        free(t->name);
        free(t->utility);
        free(t->notes);
        periods_free(t->periods, t->n_periods);
        tariff_map_done(&t->energy_map);
        for (size_t i = 0; i < t->n_adders; i++)
                free(t->adders[i].name);
        free(t->adders);
        charges_free(t->fixed, t->n_fixed);
        free(t->minimum.name);
        periods_free(t->demand_periods, t->n_demand_periods);
        tariff_map_done(&t->demand_map);
        periods_free(t->flat_demand, t->n_flat_demand);
        for (size_t i = 0; i < t->n_taxes; i++)
                free(t->taxes[i].name);
        free(t->taxes);
        free(t->holidays);
        free(t);
        return NULL;
}

/* The currencies people are likely to meet on a bill; a code not here is
 * refused rather than guessed (a wrong minor unit misprices every line). */
static const struct {
        const char code[4];
        unsigned digits;
} currencies[] = {
        { "AED", 2 }, { "ARS", 2 }, { "AUD", 2 }, { "BGN", 2 }, { "BHD", 3 }, { "BRL", 2 },
        { "CAD", 2 }, { "CHF", 2 }, { "CLP", 0 }, { "CNY", 2 }, { "COP", 2 }, { "CZK", 2 },
        { "DKK", 2 }, { "EGP", 2 }, { "EUR", 2 }, { "GBP", 2 }, { "HKD", 2 }, { "HUF", 2 },
        { "IDR", 2 }, { "ILS", 2 }, { "INR", 2 }, { "ISK", 0 }, { "JOD", 3 }, { "JPY", 0 },
        { "KRW", 0 }, { "KWD", 3 }, { "MXN", 2 }, { "MYR", 2 }, { "NOK", 2 }, { "NZD", 2 },
        { "OMR", 3 }, { "PHP", 2 }, { "PLN", 2 }, { "RON", 2 }, { "RSD", 2 }, { "SAR", 2 },
        { "SEK", 2 }, { "SGD", 2 }, { "THB", 2 }, { "TND", 3 }, { "TRY", 2 }, { "TWD", 2 },
        { "UAH", 2 }, { "USD", 2 }, { "VND", 0 }, { "ZAR", 2 },
};

int tariff_currency_digits(const char *code) {
        for (size_t i = 0; i < ELEMENTSOF(currencies); i++)
                if (strcmp(currencies[i].code, code) == 0)
                        return (int) currencies[i].digits;
        return -EINVAL;
}

int tariff_map_compile(TariffMap *m, const TariffGrid grid) {
        uint8_t (*profiles)[TARIFF_MINUTES_PER_DAY] = NULL;
        size_t n = 0;

        for (unsigned mo = 0; mo < 12; mo++)
                for (unsigned d = 0; d < TARIFF_DAY_TYPES; d++) {
                        size_t k;
                        for (k = 0; k < n; k++)
                                if (memcmp(profiles[k], grid[mo][d], TARIFF_MINUTES_PER_DAY) == 0)
                                        break;
                        if (k == n) {
                                /* 96 day types at most, so the index fits a byte. */
                                void *p = realloc(profiles, (n + 1) * sizeof(*profiles));
                                if (!p) {
                                        free(profiles);
                                        return -ENOMEM;
                                }
                                profiles = p;
                                memcpy(profiles[n++], grid[mo][d], TARIFF_MINUTES_PER_DAY);
                        }
                        m->profile[mo][d] = (uint8_t) k;
                }
        tariff_map_done(m);
        m->profiles = profiles;
        m->n_profiles = n;
        return 0;
}

void tariff_map_done(TariffMap *m) {
        m->profiles = mfree(m->profiles);
        m->n_profiles = 0;
}

bool tariff_is_holiday(const Tariff *t, int year, unsigned month, unsigned day) {
        for (size_t i = 0; i < t->n_holidays; i++) {
                const TariffHoliday *h = &t->holidays[i];
                if (h->month == month && h->day == day && (h->year == 0 || h->year == year))
                        return true;
        }
        return false;
}

static const char *const line_names[_TARIFF_LINE_MAX] = {
        [TARIFF_LINE_ENERGY] = "energy", [TARIFF_LINE_ADDER] = "adders", [TARIFF_LINE_FIXED] = "fixed",
        [TARIFF_LINE_DEMAND] = "demand", [TARIFF_LINE_MINIMUM] = "minimum", [TARIFF_LINE_TAX] = "tax",
};

const char *tariff_line_to_string(TariffLine l) {
        return l < _TARIFF_LINE_MAX ? line_names[l] : NULL;
}

const char *tariff_per_to_string(TariffPer p) {
        return p == TARIFF_PER_DAY ? "day" : p == TARIFF_PER_MONTH ? "month" : "year";
}

#define refuse(ret_error, ...) error_set(ret_error, -EBADMSG, __VA_ARGS__)

static int check_periods(const char *what, const TariffPeriod *p, size_t n, char **ret_error) {
        if (n > TARIFF_PERIODS_MAX)
                return refuse(ret_error, "%s: expected at most %d periods", what, TARIFF_PERIODS_MAX);
        for (size_t i = 0; i < n; i++) {
                if (!p[i].name || p[i].n_tiers == 0 || p[i].n_tiers > TARIFF_TIERS_MAX)
                        return refuse(ret_error, "%s[%zu]: expected a name and 1 to %d tiers", what, i,
                                      TARIFF_TIERS_MAX);
                for (size_t k = 0; k < p[i].n_tiers; k++) {
                        const TariffTier *tr = &p[i].tiers[k];
                        bool last = k + 1 == p[i].n_tiers;
                        if (tr->rate < -TARIFF_RATE_MAX || tr->rate > TARIFF_RATE_MAX ||
                            tr->adj < -TARIFF_RATE_MAX || tr->adj > TARIFF_RATE_MAX)
                                return refuse(ret_error, "%s[%zu].tiers[%zu]: rate out of range", what, i, k);
                        if (last != (tr->max == TARIFF_UNLIMITED))
                                return refuse(ret_error, "%s[%zu].tiers[%zu]: expected %s", what, i, k,
                                              last ? "the last tier to be unlimited" : "a limit");
                        if (tr->max <= 0 || (k > 0 && tr->max <= p[i].tiers[k - 1].max))
                                return refuse(ret_error, "%s[%zu].tiers[%zu]: expected a limit above the previous one",
                                              what, i, k);
                }
        }
        return 0;
}

static int check_map(const char *what, const TariffMap *m, size_t n_periods, bool complete, char **ret_error) {
        static const char *const days[TARIFF_DAY_TYPES] = { "Monday", "Tuesday", "Wednesday", "Thursday",
                                                            "Friday", "Saturday", "Sunday", "holidays" };
        if (m->n_profiles == 0) {
                if (complete)
                        return refuse(ret_error, "%s: expected a period map", what);
                return 0;
        }
        if (m->n_profiles > 12 * TARIFF_DAY_TYPES)
                return refuse(ret_error, "%s: too many day profiles", what);
        for (unsigned mo = 0; mo < 12; mo++)
                for (unsigned d = 0; d < TARIFF_DAY_TYPES; d++)
                        if (m->profile[mo][d] >= m->n_profiles)
                                return refuse(ret_error, "%s: broken profile index", what);
        /* Each shared day profile once; a bad one is named by the first
         * day that uses it. */
        for (unsigned mo = 0; mo < 12; mo++)
                for (unsigned d = 0; d < TARIFF_DAY_TYPES; d++) {
                        unsigned k = m->profile[mo][d];
                        bool first = true;
                        for (unsigned x = 0; first && x < mo * TARIFF_DAY_TYPES + d; x++)
                                first = m->profile[x / TARIFF_DAY_TYPES][x % TARIFF_DAY_TYPES] != k;
                        for (unsigned min = 0; first && min < TARIFF_MINUTES_PER_DAY; min++) {
                                uint8_t p = m->profiles[k][min];
                                if (p == TARIFF_NO_PERIOD ? complete : p >= n_periods)
                                        return refuse(ret_error,
                                                      "%s: no period for %s %02u:%02u in month %u",
                                                      what, days[d], min / 60, min % 60, mo + 1);
                        }
                }
        return 0;
}

static int check_charges(const char *what, const TariffCharge *c, size_t n, char **ret_error) {
        for (size_t i = 0; i < n; i++)
                if (c[i].amount < -TARIFF_RATE_MAX || c[i].amount > TARIFF_RATE_MAX || c[i].per > TARIFF_PER_YEAR)
                        return refuse(ret_error, "%s[%zu]: amount out of range", what, i);
        return 0;
}

int tariff_check(const Tariff *t, char **ret_error) {
        int r;

        if (!t->name || !t->name[0])
                return refuse(ret_error, "name: expected a non-empty name");
        int digits = tariff_currency_digits(t->currency);
        if (digits < 0 || (unsigned) digits != t->currency_digits)
                return refuse(ret_error, "currency: expected a known ISO 4217 code");
        if (t->valid_from_ms >= t->valid_until_ms)
                return refuse(ret_error, "valid_until: expected a time after valid_from");
        if (t->cycle_start_day < 1 || t->cycle_start_day > 28)
                return refuse(ret_error, "cycle_start_day: expected 1 to 28");
        if (t->demand_window_min < 1 || t->demand_window_min > TARIFF_MINUTES_PER_DAY)
                return refuse(ret_error, "demand window: expected 1 to 1440 minutes");
        if (t->n_periods == 0)
                return refuse(ret_error, "periods: expected at least one energy period");
        if ((r = check_periods("periods", t->periods, t->n_periods, ret_error)) < 0 ||
            (r = check_periods("demand periods", t->demand_periods, t->n_demand_periods, ret_error)) < 0 ||
            (r = check_periods("flat demand", t->flat_demand, t->n_flat_demand, ret_error)) < 0 ||
            (r = check_map("energy schedule", &t->energy_map, t->n_periods, true, ret_error)) < 0 ||
            (r = check_map("demand schedule", &t->demand_map, t->n_demand_periods, false, ret_error)) < 0 ||
            (r = check_charges("fixed", t->fixed, t->n_fixed, ret_error)) < 0 ||
            (r = check_charges("minimum", &t->minimum, 1, ret_error)) < 0)
                return r;
        for (unsigned mo = 0; mo < 12; mo++)
                if (t->flat_demand_month[mo] != TARIFF_NO_PERIOD && t->flat_demand_month[mo] >= t->n_flat_demand)
                        return refuse(ret_error, "flat demand: month %u names no period", mo + 1);
        if (t->n_adders > TARIFF_LIST_MAX || t->n_fixed > TARIFF_LIST_MAX || t->n_taxes > TARIFF_LIST_MAX ||
            t->n_holidays > TARIFF_HOLIDAYS_MAX)
                return refuse(ret_error, "tariff: too many adders, charges, taxes or holidays");
        for (size_t i = 0; i < t->n_adders; i++)
                if (!t->adders[i].name || t->adders[i].rate < -TARIFF_RATE_MAX || t->adders[i].rate > TARIFF_RATE_MAX)
                        return refuse(ret_error, "adders[%zu]: expected a name and a rate in range", i);
        for (size_t i = 0; i < t->n_taxes; i++)
                if (!t->taxes[i].name || t->taxes[i].ppm < 0 || t->taxes[i].ppm > 1000000 || t->taxes[i].on == 0 ||
                    (t->taxes[i].on & ~TARIFF_TAXABLE_ALL))
                        return refuse(ret_error, "taxes[%zu]: expected 0 to 100 percent on some lines", i);
        for (size_t i = 0; i < t->n_holidays; i++) {
                const TariffHoliday *h = &t->holidays[i];
                if (h->month < 1 || h->month > 12 || h->day < 1 ||
                    h->day > g_date_get_days_in_month((GDateMonth) h->month, (GDateYear) (h->year ? h->year : 2000)))
                        return refuse(ret_error, "holidays[%zu]: expected a date", i);
        }
        return 0;
}

static bool take_digits(const char **p, unsigned n, int *ret) {
        int v = 0;
        for (unsigned i = 0; i < n; i++) {
                if (!g_ascii_isdigit((*p)[i]))
                        return false;
                v = v * 10 + ((*p)[i] - '0');
        }
        *p += n;
        *ret = v;
        return true;
}

static bool take_char(const char **p, const char *set) {
        if (**p == 0 || !strchr(set, **p))
                return false;
        (*p)++;
        return true;
}

int tariff_parse_rfc3339(const char *s, int64_t *ret_ms) {
        int y, mo, d, h, mi, sec, oh = 0, om = 0, ms = 0, sign = 1;
        const char *p = s;

        if (!take_digits(&p, 4, &y) || !take_char(&p, "-") || !take_digits(&p, 2, &mo) || !take_char(&p, "-") ||
            !take_digits(&p, 2, &d) || !take_char(&p, "Tt ") || !take_digits(&p, 2, &h) || !take_char(&p, ":") ||
            !take_digits(&p, 2, &mi) || !take_char(&p, ":") || !take_digits(&p, 2, &sec))
                return -EINVAL;
        if (*p == '.') {
                p++;
                int scale = 100, n = 0;
                for (; g_ascii_isdigit(*p); p++, n++) {
                        if (n >= 9)
                                return -EINVAL;
                        ms += (*p - '0') * scale;
                        scale /= 10;
                }
                if (n == 0)
                        return -EINVAL;
        }
        if (take_char(&p, "Zz"))
                ;
        else if (*p == '+' || *p == '-') {
                sign = *p++ == '-' ? -1 : 1;
                if (!take_digits(&p, 2, &oh) || !take_char(&p, ":") || !take_digits(&p, 2, &om) || oh > 23 || om > 59)
                        return -EINVAL;
        } else
                return -EINVAL;
        if (*p != 0 || y < 1 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59 ||
            d > g_date_get_days_in_month((GDateMonth) mo, (GDateYear) y))
                return -EINVAL;

        GTimeZone *utc = g_time_zone_new_utc();
        GDateTime *dt = g_date_time_new(utc, y, mo, d, h, mi, sec);
        g_time_zone_unref(utc);
        if (!dt)
                return -EINVAL;
        int64_t t = g_date_time_to_unix(dt);
        g_date_time_unref(dt);
        *ret_ms = (t - sign * (oh * 3600 + om * 60)) * 1000 + ms;
        return 0;
}

void tariff_list_free(Tariff **list, size_t n) {
        for (size_t i = 0; list && i < n; i++)
                tariff_free(list[i]);
        free(list);
}
