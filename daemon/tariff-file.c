/* SPDX-License-Identifier: MIT */
#include "macro.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "tariff-json.h"
#include "tariff.h"

/* kasamond-tariff(5): JSON, because the daemon already speaks it and URDB
 * is JSON too, so both parsers share their checks and error messages. */

#define FORMAT_ID "kasamond-tariff/1"
#define SELECTORS_MAX 48

typedef struct Season {
        char *name;
        bool months[12];
} Season;

typedef struct Parser {
        TariffJson j;
        Tariff *t;
        Season *seasons;
        size_t n_seasons;
} Parser;

/* Which months, day types and minutes an entry covers. */
typedef struct Selector {
        bool months[12];
        bool days[TARIFF_DAY_TYPES];
        bool minutes[TARIFF_MINUTES_PER_DAY];
        bool timed; /* days or hours were given */
} Selector;

static int parse_month_range(Parser *p, const char *path, json_t *v, bool months[static 12]) {
        unsigned a, b;
        char tail;
        const char *s = json_string_value(v);

        if (!s)
                return tj_refuse(&p->j, path, "expected a month range like \"6-9\" or \"11-2\"");
        int n = sscanf(s, "%u-%u%c", &a, &b, &tail);
        if (n == 1 && sscanf(s, "%u%c", &a, &tail) == 1)
                b = a;
        else if (n != 2)
                return tj_refuse(&p->j, path, "expected a month range like \"6-9\" or \"11-2\"");
        if (a < 1 || a > 12 || b < 1 || b > 12)
                return tj_refuse(&p->j, path, "expected months 1 to 12");
        /* A range may wrap past December: "11-2" is Nov, Dec, Jan, Feb. */
        for (unsigned m = a;; m = m % 12 + 1) {
                months[m - 1] = true;
                if (m == b)
                        break;
        }
        return 0;
}

static int parse_months(Parser *p, const char *path, json_t *v, bool months[static 12]) {
        char q[TARIFF_PATH_MAX];
        int r;

        if (json_is_string(v))
                return parse_month_range(p, path, v, months);
        int n = tj_array(&p->j, path, v, 1, 12);
        if (n < 0)
                return n;
        for (size_t i = 0; i < (size_t) n; i++)
                if ((r = parse_month_range(p, tj_path(q, path, "[%zu]", i), json_array_get(v, i), months)) < 0)
                        return r;
        return 0;
}

static int parse_clock(const char *s, unsigned *ret) {
        unsigned h, m;
        int n = -1;
        if (sscanf(s, "%2u:%2u%n", &h, &m, &n) != 2 || n != 5 || m > 59 || h > 24 || (h == 24 && m != 0))
                return -EINVAL;
        *ret = h * 60 + m;
        return 0;
}

static int parse_hours(Parser *p, const char *path, json_t *v, bool minutes[static TARIFF_MINUTES_PER_DAY]) {
        char q[TARIFF_PATH_MAX];
        json_t *list = v;

        if (json_is_string(v)) {
                list = json_array();
                if (!list || json_array_append(list, v) < 0) {
                        json_decref(list);
                        return -ENOMEM;
                }
        } else
                json_incref(list);
        int n = tj_array(&p->j, path, list, 1, SELECTORS_MAX);
        int r = n < 0 ? n : 0;
        for (size_t i = 0; r == 0 && i < (size_t) n; i++) {
                const char *s = json_string_value(json_array_get(list, i));
                const char *at = json_is_string(v) ? path : tj_path(q, path, "[%zu]", i);
                unsigned a, b;
                if (!s || strlen(s) != 11 || s[5] != '-' || parse_clock(s, &a) < 0 || parse_clock(s + 6, &b) < 0 ||
                    a == b || a == TARIFF_MINUTES_PER_DAY) {
                        r = tj_refuse(&p->j, at, "expected a time range like \"07:00-22:30\" or \"22:00-06:00\"");
                        break;
                }
                /* Crossing midnight covers the evening and the morning of the
                 * same listed day. */
                for (unsigned m = a; m != b; m = (m + 1) % TARIFF_MINUTES_PER_DAY) {
                        minutes[m] = true;
                        if (b == TARIFF_MINUTES_PER_DAY && m == TARIFF_MINUTES_PER_DAY - 1)
                                break;
                }
        }
        json_decref(list);
        return r;
}

static int parse_days(Parser *p, const char *path, json_t *v, bool days[static TARIFF_DAY_TYPES]) {
        static const char *const names[] = { "mon", "tue", "wed", "thu", "fri", "sat", "sun", "holidays" };
        char q[TARIFF_PATH_MAX];

        int n = tj_array(&p->j, path, v, 1, 16);
        if (n < 0)
                return n;
        for (size_t i = 0; i < (size_t) n; i++) {
                const char *s = json_string_value(json_array_get(v, i));
                bool found = false;
                for (unsigned d = 0; s && d < TARIFF_DAY_TYPES; d++)
                        if (strcmp(s, names[d]) == 0)
                                days[d] = found = true;
                if (s && strcmp(s, "weekdays") == 0)
                        for (unsigned d = 0; d < 5; d++)
                                days[d] = found = true;
                if (s && strcmp(s, "weekends") == 0)
                        days[5] = days[6] = found = true;
                if (!found)
                        return tj_refuse(&p->j, tj_path(q, path, "[%zu]", i),
                                         "expected mon, tue, wed, thu, fri, sat, sun, weekdays, weekends or holidays");
        }
        return 0;
}

static int parse_selector(Parser *p, const char *path, json_t *o, Selector *sel) {
        char q[TARIFF_PATH_MAX];
        json_t *season = json_object_get(o, "season"), *months = json_object_get(o, "months");
        json_t *days = json_object_get(o, "days"), *hours = json_object_get(o, "hours");
        int r;

        *sel = (Selector) {};
        if (season && months)
                return tj_refuse(&p->j, tj_path(q, path, ".months"), "expected either season or months, not both");
        if (season) {
                const char *s = json_string_value(season);
                size_t i;
                for (i = 0; s && i < p->n_seasons; i++)
                        if (strcmp(p->seasons[i].name, s) == 0)
                                break;
                if (!s || i == p->n_seasons)
                        return tj_refuse(&p->j, tj_path(q, path, ".season"), "expected the name of a season");
                memcpy(sel->months, p->seasons[i].months, sizeof(sel->months));
        } else if (months) {
                if ((r = parse_months(p, tj_path(q, path, ".months"), months, sel->months)) < 0)
                        return r;
        } else
                memset(sel->months, true, sizeof(sel->months));

        sel->timed = days || hours;
        if (days) {
                if ((r = parse_days(p, tj_path(q, path, ".days"), days, sel->days)) < 0)
                        return r;
        } else /* every day of the week; holidays only when named */
                memset(sel->days, true, 7 * sizeof(bool));
        if (hours)
                return parse_hours(p, tj_path(q, path, ".hours"), hours, sel->minutes);
        memset(sel->minutes, true, sizeof(sel->minutes));
        return 0;
}

/* First match wins: a later entry only fills what earlier ones left. */
static void selector_fill(const Selector *sel, TariffGrid grid, uint8_t index) {
        for (unsigned m = 0; m < 12; m++)
                for (unsigned d = 0; d < TARIFF_DAY_TYPES; d++)
                        for (unsigned min = 0; min < TARIFF_MINUTES_PER_DAY; min++)
                                if (sel->months[m] && sel->days[d] && sel->minutes[min] &&
                                    grid[m][d][min] == TARIFF_NO_PERIOD)
                                        grid[m][d][min] = index;
}

/* A holiday no entry names is priced like a Sunday. */
static void holidays_like_sunday(TariffGrid grid) {
        for (unsigned m = 0; m < 12; m++)
                for (unsigned min = 0; min < TARIFF_MINUTES_PER_DAY; min++)
                        if (grid[m][TARIFF_HOLIDAY][min] == TARIFF_NO_PERIOD)
                                grid[m][TARIFF_HOLIDAY][min] = grid[m][TARIFF_SUNDAY][min];
}

static int parse_rate_or_tiers(Parser *p, const char *path, json_t *o, const char *limit_key, TariffPeriod *period) {
        char q[TARIFF_PATH_MAX];
        json_t *rate = json_object_get(o, "rate"), *tiers = json_object_get(o, "tiers");
        int r;

        if (!!rate == !!tiers)
                return tj_refuse(&p->j, tj_path(q, path, ".rate"), "expected either rate or tiers");
        if (rate) {
                period->tiers = calloc(1, sizeof(TariffTier));
                if (!period->tiers)
                        return -ENOMEM;
                period->n_tiers = 1;
                period->tiers[0].max = TARIFF_UNLIMITED;
                return tj_nano(&p->j, tj_path(q, path, ".rate"), rate, TARIFF_RATE_MAX / TARIFF_NANO,
                               &period->tiers[0].rate);
        }
        int n = tj_array_new(&p->j, tj_path(q, path, ".tiers"), tiers, 1, TARIFF_TIERS_MAX, sizeof(TariffTier),
                             (void **) &period->tiers);
        if (n < 0)
                return n;
        period->n_tiers = (size_t) n;
        for (size_t i = 0; i < (size_t) n; i++) {
                char tp[TARIFF_PATH_MAX];
                json_t *tier = json_array_get(tiers, i);
                const char *const keys[] = { limit_key, "rate", NULL };
                json_t *lim = json_object_get(tier, limit_key);
                bool last = i + 1 == (size_t) n;

                tj_path(tp, path, ".tiers[%zu]", i);
                if ((r = tj_keys(&p->j, tp, tier, keys)) < 0 ||
                    (r = tj_nano(&p->j, tj_path(q, tp, ".rate"), json_object_get(tier, "rate"),
                                 TARIFF_RATE_MAX / TARIFF_NANO, &period->tiers[i].rate)) < 0)
                        return r;
                if (last != !lim)
                        return tj_refuse(&p->j, tj_path(q, tp, ".%s", limit_key),
                                         last ? "expected no limit on the last tier" : "expected a limit");
                period->tiers[i].max = TARIFF_UNLIMITED;
                if (lim && (r = tj_milli(&p->j, tj_path(q, tp, ".%s", limit_key), lim, &period->tiers[i].max)) < 0)
                        return r;
                if (i > 0 && period->tiers[i].max <= period->tiers[i - 1].max)
                        return tj_refuse(&p->j, tj_path(q, tp, ".%s", limit_key),
                                         "expected a limit above the previous tier's");
        }
        return 0;
}

static int parse_text(Parser *p, json_t *root, const char *key, char **ret) {
        json_t *v = json_object_get(root, key);
        return v ? tj_string(&p->j, key, v, ret) : 0;
}

static int parse_time(Parser *p, json_t *root, const char *key, int64_t *ret) {
        json_t *v = json_object_get(root, key);
        if (!v)
                return 0;
        if (!json_is_string(v) || tariff_parse_rfc3339(json_string_value(v), ret) < 0)
                return tj_refuse(&p->j, key, "expected an RFC 3339 time like \"2024-01-01T00:00:00+01:00\"");
        return 0;
}

static int parse_seasons(Parser *p, json_t *v) {
        static const char *const keys[] = { "name", "months", NULL };
        char q[TARIFF_PATH_MAX], e[TARIFF_PATH_MAX];
        int r;

        if (!v)
                return 0;
        int n = tj_array(&p->j, "seasons", v, 1, TARIFF_LIST_MAX);
        if (n < 0)
                return n;
        p->seasons = calloc((size_t) n, sizeof(Season));
        if (!p->seasons)
                return -ENOMEM;
        for (size_t i = 0; i < (size_t) n; i++) {
                json_t *s = json_array_get(v, i);
                tj_path(e, NULL, "seasons[%zu]", i);
                p->n_seasons = i + 1;
                if ((r = tj_keys(&p->j, e, s, keys)) < 0 ||
                    (r = tj_string(&p->j, tj_path(q, e, ".name"), json_object_get(s, "name"), &p->seasons[i].name)) < 0 ||
                    (r = parse_months(p, tj_path(q, e, ".months"), json_object_get(s, "months"), p->seasons[i].months)) < 0)
                        return r;
        }
        return 0;
}

static int parse_holidays(Parser *p, json_t *v) {
        char q[TARIFF_PATH_MAX];
        if (!v)
                return 0;
        int n = tj_array(&p->j, "holidays", v, 0, TARIFF_HOLIDAYS_MAX);
        if (n < 0)
                return n;
        p->t->holidays = calloc((size_t) n + 1, sizeof(TariffHoliday));
        if (!p->t->holidays)
                return -ENOMEM;
        for (size_t i = 0; i < (size_t) n; i++) {
                const char *s = json_string_value(json_array_get(v, i));
                TariffHoliday *h = &p->t->holidays[i];
                int k = -1;
                if (s && strlen(s) == 10 && sscanf(s, "%4d-%2u-%2u%n", &h->year, &h->month, &h->day, &k) == 3 && k == 10)
                        ;
                else if (s && strlen(s) == 5 && sscanf(s, "%2u-%2u%n", &h->month, &h->day, &k) == 2 && k == 5)
                        h->year = 0;
                else
                        k = -1;
                if (k < 0 || h->month < 1 || h->month > 12 || h->day < 1 || (h->year != 0 && h->year < 1) ||
                    h->day > g_date_get_days_in_month((GDateMonth) h->month, (GDateYear) (h->year ? h->year : 2000)))
                        return tj_refuse(&p->j, tj_path(q, NULL, "holidays[%zu]", i),
                                         "expected a date like \"2024-12-25\" or, every year, \"12-25\"");
                p->t->n_holidays = i + 1;
        }
        return 0;
}

static int parse_per(Parser *p, const char *path, json_t *v, TariffPer *ret) {
        const char *s = json_string_value(v);
        if (s && strcmp(s, "day") == 0)
                *ret = TARIFF_PER_DAY;
        else if (s && strcmp(s, "month") == 0)
                *ret = TARIFF_PER_MONTH;
        else if (s && strcmp(s, "year") == 0)
                *ret = TARIFF_PER_YEAR;
        else
                return tj_refuse(&p->j, path, "expected day, month or year");
        return 0;
}

static int parse_charge(Parser *p, const char *path, json_t *o, bool named, TariffCharge *c) {
        static const char *const keys[] = { "name", "amount", "per", NULL };
        char q[TARIFF_PATH_MAX];
        int r;

        if ((r = tj_keys(&p->j, path, o, named ? keys : keys + 1)) < 0 ||
            (named && (r = tj_string(&p->j, tj_path(q, path, ".name"), json_object_get(o, "name"), &c->name)) < 0) ||
            (r = tj_nano(&p->j, tj_path(q, path, ".amount"), json_object_get(o, "amount"),
                         TARIFF_RATE_MAX / TARIFF_NANO, &c->amount)) < 0)
                return r;
        return parse_per(p, tj_path(q, path, ".per"), json_object_get(o, "per"), &c->per);
}

/* Energy periods and demand charges share their shape; `grid` collects the
 * timed entries, flat ones (no days or hours) go by month into `flat`. */
static int parse_periods(Parser *p, const char *key, json_t *v, const char *limit_key, TariffPeriod **ret,
                         size_t *ret_n, TariffGrid grid, uint8_t *flat) {
        static const char *const keys[] = { "name", "season", "months", "days", "hours", "rate", "tiers", NULL };
        char q[TARIFF_PATH_MAX], e[TARIFF_PATH_MAX];
        int r;

        int n = tj_array_new(&p->j, key, v, 1, TARIFF_PERIODS_MAX, sizeof(TariffPeriod), (void **) ret);
        if (n < 0)
                return n;
        for (size_t i = 0; i < (size_t) n; i++) {
                json_t *o = json_array_get(v, i);
                Selector sel;
                tj_path(e, NULL, "%s[%zu]", key, i);
                *ret_n = i + 1;
                if ((r = tj_keys(&p->j, e, o, keys)) < 0 ||
                    (r = tj_string(&p->j, tj_path(q, e, ".name"), json_object_get(o, "name"), &(*ret)[i].name)) < 0 ||
                    (r = parse_rate_or_tiers(p, e, o, limit_key, &(*ret)[i])) < 0 ||
                    (r = parse_selector(p, e, o, &sel)) < 0)
                        return r;
                if (flat && !sel.timed) {
                        for (unsigned m = 0; m < 12; m++)
                                if (sel.months[m] && flat[m] == TARIFF_NO_PERIOD)
                                        flat[m] = (uint8_t) i;
                } else
                        selector_fill(&sel, grid, (uint8_t) i);
        }
        return 0;
}

static int parse_demand(Parser *p, json_t *v, TariffGrid grid) {
        static const char *const keys[] = { "window_minutes", "charges", NULL };
        int64_t w = 15;
        int r;

        if (!v)
                return 0;
        json_t *win = json_object_get(v, "window_minutes");
        if ((r = tj_keys(&p->j, "demand", v, keys)) < 0 ||
            (win && (r = tj_int(&p->j, "demand.window_minutes", win, 1, TARIFF_MINUTES_PER_DAY, &w)) < 0))
                return r;
        p->t->demand_window_min = (unsigned) w;

        /* Timed and flat charges are numbered apart, as URDB does. */
        uint8_t flat[12];
        memset(flat, TARIFF_NO_PERIOD, sizeof(flat));
        memset(grid, TARIFF_NO_PERIOD, sizeof(TariffGrid));
        TariffPeriod *all = NULL;
        size_t n = 0;
        r = parse_periods(p, "demand.charges", json_object_get(v, "charges"), "up_to_kw", &all, &n, grid, flat);
        if (r >= 0) {
                p->t->demand_periods = calloc(n, sizeof(TariffPeriod));
                p->t->flat_demand = calloc(n, sizeof(TariffPeriod));
                if (!p->t->demand_periods || !p->t->flat_demand)
                        r = -ENOMEM;
        }
        uint8_t renumber[TARIFF_PERIODS_MAX];
        for (size_t i = 0; r >= 0 && i < n; i++) {
                bool is_flat = false;
                for (unsigned m = 0; m < 12; m++)
                        is_flat = is_flat || flat[m] == i;
                if (is_flat) {
                        renumber[i] = (uint8_t) p->t->n_flat_demand;
                        p->t->flat_demand[p->t->n_flat_demand++] = all[i];
                } else {
                        renumber[i] = (uint8_t) p->t->n_demand_periods;
                        p->t->demand_periods[p->t->n_demand_periods++] = all[i];
                }
                all[i] = (TariffPeriod) {};
        }
        for (size_t i = 0; i < n; i++) {
                free(all[i].name);
                free(all[i].tiers);
        }
        free(all);
        if (r < 0)
                return r;
        for (unsigned m = 0; m < 12; m++)
                p->t->flat_demand_month[m] = flat[m] == TARIFF_NO_PERIOD ? TARIFF_NO_PERIOD : renumber[flat[m]];
        uint8_t *g = (uint8_t *) grid;
        for (size_t i = 0; i < sizeof(TariffGrid); i++)
                if (g[i] != TARIFF_NO_PERIOD)
                        g[i] = renumber[g[i]];
        holidays_like_sunday(grid);
        return p->t->n_demand_periods > 0 ? tariff_map_compile(&p->t->demand_map, grid) : 0;
}

static int parse_list(Parser *p, const char *key, json_t *v, size_t size, void **ret, size_t *ret_n) {
        if (!v)
                return 0;
        int n = tj_array_new(&p->j, key, v, 0, TARIFF_LIST_MAX, size, ret);
        if (n < 0)
                return n;
        *ret_n = (size_t) n;
        return n;
}

static int parse_taxes(Parser *p, json_t *v) {
        static const char *const keys[] = { "name", "percent", "on", NULL };
        char q[TARIFF_PATH_MAX], e[TARIFF_PATH_MAX];
        int r;

        int n = parse_list(p, "taxes", v, sizeof(TariffTax), (void **) &p->t->taxes, &p->t->n_taxes);
        for (size_t i = 0; n > 0 && i < (size_t) n; i++) {
                json_t *o = json_array_get(v, i), *on;
                TariffTax *tax = &p->t->taxes[i];
                int64_t nano;
                tj_path(e, NULL, "taxes[%zu]", i);
                if ((r = tj_keys(&p->j, e, o, keys)) < 0 ||
                    (r = tj_string(&p->j, tj_path(q, e, ".name"), json_object_get(o, "name"), &tax->name)) < 0 ||
                    (r = tj_nano(&p->j, tj_path(q, e, ".percent"), json_object_get(o, "percent"), 100, &nano)) < 0)
                        return r;
                if (nano < 0 || nano % 100000 != 0)
                        return tj_refuse(&p->j, q, "expected 0 to 100 with at most 4 decimals");
                tax->ppm = nano / 100000;
                tax->on = TARIFF_TAXABLE_ALL;
                if (!(on = json_object_get(o, "on")))
                        continue;
                tj_path(q, e, ".on");
                int k = tj_array(&p->j, q, on, 1, _TARIFF_LINE_MAX);
                if (k < 0)
                        return k;
                tax->on = 0;
                for (size_t l = 0; l < (size_t) k; l++) {
                        const char *s = json_string_value(json_array_get(on, l));
                        unsigned kind;
                        for (kind = 0; s && kind < TARIFF_LINE_TAX; kind++)
                                if (strcmp(s, tariff_line_to_string(kind)) == 0)
                                        break;
                        if (!s || kind >= TARIFF_LINE_TAX)
                                return tj_refuse(&p->j, tj_path(q, e, ".on[%zu]", l),
                                                 "expected energy, adders, fixed, demand or minimum");
                        tax->on |= 1u << kind;
                }
        }
        return n < 0 ? n : 0;
}

static int parse_root(Parser *p, json_t *root) {
        static const char *const keys[] = { "format", "name", "utility", "notes", "currency", "valid_from",
                                            "valid_until", "billing_cycle_start_day", "tiers_reset", "holidays",
                                            "seasons", "periods", "adders", "fixed", "minimum", "demand",
                                            "taxes", NULL };
        char q[TARIFF_PATH_MAX];
        Tariff *t = p->t;
        json_t *v;
        int r;

        if ((r = tj_keys(&p->j, NULL, root, keys)) < 0)
                return r;
        v = json_object_get(root, "format");
        if (!json_is_string(v) || strcmp(json_string_value(v), FORMAT_ID) != 0)
                return tj_refuse(&p->j, "format", "expected \"" FORMAT_ID "\"");
        if ((r = tj_string(&p->j, "name", json_object_get(root, "name"), &t->name)) < 0 ||
            (r = parse_text(p, root, "utility", &t->utility)) < 0 || (r = parse_text(p, root, "notes", &t->notes)) < 0 ||
            (r = parse_time(p, root, "valid_from", &t->valid_from_ms)) < 0 ||
            (r = parse_time(p, root, "valid_until", &t->valid_until_ms)) < 0)
                return r;
        if (t->valid_from_ms >= t->valid_until_ms)
                return tj_refuse(&p->j, "valid_until", "expected a time after valid_from");

        v = json_object_get(root, "currency");
        int digits = json_is_string(v) ? tariff_currency_digits(json_string_value(v)) : -EINVAL;
        if (digits < 0)
                return tj_refuse(&p->j, "currency", "expected a known ISO 4217 code like \"EUR\" or \"USD\"");
        memcpy(t->currency, json_string_value(v), 4);
        t->currency_digits = (unsigned) digits;

        if ((v = json_object_get(root, "billing_cycle_start_day"))) {
                int64_t d;
                if ((r = tj_int(&p->j, "billing_cycle_start_day", v, 1, 28, &d)) < 0)
                        return r;
                t->cycle_start_day = (unsigned) d;
        }
        if ((v = json_object_get(root, "tiers_reset"))) {
                const char *s = json_string_value(v);
                if (!s || (strcmp(s, "cycle") != 0 && strcmp(s, "daily") != 0))
                        return tj_refuse(&p->j, "tiers_reset", "expected cycle or daily");
                t->daily_tiers = s[0] == 'd';
        }
        if ((r = parse_holidays(p, json_object_get(root, "holidays"))) < 0 ||
            (r = parse_seasons(p, json_object_get(root, "seasons"))) < 0)
                return r;

        _cleanup_free_ TariffGrid *grid = malloc(sizeof(TariffGrid));
        if (!grid)
                return -ENOMEM;
        memset(grid, TARIFF_NO_PERIOD, sizeof(TariffGrid));
        if ((r = parse_periods(p, "periods", json_object_get(root, "periods"), "up_to_kwh", &t->periods,
                               &t->n_periods, *grid, NULL)) < 0)
                return r;
        holidays_like_sunday(*grid);
        if ((r = tariff_map_compile(&t->energy_map, *grid)) < 0)
                return r;

        v = json_object_get(root, "adders");
        int n = parse_list(p, "adders", v, sizeof(TariffAdder), (void **) &t->adders, &t->n_adders);
        for (size_t i = 0; n > 0 && i < (size_t) n; i++) {
                static const char *const akeys[] = { "name", "rate", NULL };
                char e[TARIFF_PATH_MAX];
                json_t *o = json_array_get(v, i);
                tj_path(e, NULL, "adders[%zu]", i);
                if ((r = tj_keys(&p->j, e, o, akeys)) < 0 ||
                    (r = tj_string(&p->j, tj_path(q, e, ".name"), json_object_get(o, "name"), &t->adders[i].name)) < 0 ||
                    (r = tj_nano(&p->j, tj_path(q, e, ".rate"), json_object_get(o, "rate"),
                                 TARIFF_RATE_MAX / TARIFF_NANO, &t->adders[i].rate)) < 0)
                        return r;
        }
        if (n < 0)
                return n;

        v = json_object_get(root, "fixed");
        n = parse_list(p, "fixed", v, sizeof(TariffCharge), (void **) &t->fixed, &t->n_fixed);
        for (size_t i = 0; n > 0 && i < (size_t) n; i++)
                if ((r = parse_charge(p, tj_path(q, NULL, "fixed[%zu]", i), json_array_get(v, i), true, &t->fixed[i])) < 0)
                        return r;
        if (n < 0)
                return n;
        if ((v = json_object_get(root, "minimum")) && (r = parse_charge(p, "minimum", v, false, &t->minimum)) < 0)
                return r;
        if ((r = parse_demand(p, json_object_get(root, "demand"), *grid)) < 0 ||
            (r = parse_taxes(p, json_object_get(root, "taxes"))) < 0)
                return r;

        /* Coverage and the remaining invariants, named by field. */
        _cleanup_free_ char *why = NULL;
        if (tariff_check(t, &why) < 0) {
                bool energy = why && strncmp(why, "energy schedule: ", 17) == 0;
                return tj_refuse(&p->j, energy ? "periods" : NULL, "%s", why ? (energy ? why + 17 : why) : "invalid");
        }
        return 0;
}

int tariff_file_parse(const char *data, size_t size, const char *file, Tariff **ret, char **ret_error) {
        Parser p = { .j = { .file = file ? file : "tariff", .ret_error = ret_error } };
        json_t *root = NULL;
        int r;

        if (ret_error)
                *ret_error = NULL;
        if ((r = tj_load(&p.j, data, size, TARIFF_FILE_MAX, &root)) < 0)
                return r;
        p.t = tariff_new();
        r = p.t ? parse_root(&p, root) : -ENOMEM;
        json_decref(root);
        for (size_t i = 0; i < p.n_seasons; i++)
                free(p.seasons[i].name);
        free(p.seasons);
        if (r < 0) {
                tariff_free(p.t);
                return r;
        }
        *ret = p.t;
        return 0;
}

int tariff_file_load(const char *path, Tariff **ret, char **ret_error) {
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r = tj_read_file(path, TARIFF_FILE_MAX, &data, &size, ret_error);
        if (r < 0)
                return r;
        return tariff_file_parse(data, size, path, ret, ret_error);
}
