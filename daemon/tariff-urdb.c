/* SPDX-License-Identifier: MIT */
#include "macro.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "tariff-json.h"
#include "tariff.h"

/* OpenEI's Utility Rate Database, as the API publishes it. Fields that
 * only describe a rate (label, uri, sector, description, comments, ...)
 * are informational; a field that changes the price and that the cost
 * engine does not model is refused by name, so an import never quietly
 * prices a different plan than the utility bills. */

typedef struct Item {
        TariffJson j;
        const char *prefix; /* "items[3]" or "" */
        json_t *o;
        Tariff *t;
        int daily; /* -1 until a tier's unit says */
} Item;

static const char *field(const Item *it, char buf[static TARIFF_PATH_MAX], const char *name) {
        if (it->prefix[0])
                return tj_path(buf, it->prefix, ".%s", name);
        return tj_path(buf, NULL, "%s", name);
}

static bool is_zero_or_empty(json_t *v) {
        if (!v || json_is_null(v) || json_is_false(v))
                return true;
        if (json_is_number(v))
                return json_number_value(v) == 0;
        if (json_is_string(v))
                return json_string_length(v) == 0;
        if (json_is_array(v)) {
                size_t i;
                json_t *e;
                json_array_foreach(v, i, e) if (!is_zero_or_empty(e)) return false;
                return true;
        }
        return json_is_object(v) && json_object_size(v) == 0;
}

static int refuse_unsupported(Item *it) {
        static const char *const unsupported[] = {
                "usenetmetering",           /* net metering: export credits */
                "coincidentratestructure",  /* demand coincident with the system peak */
                "coincidentrateschedule",
                "demandratchetpercentage",  /* ratchets look at past cycles */
                "lookbackpercent",
                "lookbackrange",
                "lookbackmonths",
                "fueladjustmentsmonthly",
                "demandreactivepowercharge",
                "annualmincharge",
                "fixedchargeeaaddl",        /* charges for additional meters */
        };
        char q[TARIFF_PATH_MAX];
        for (size_t i = 0; i < ELEMENTSOF(unsupported); i++)
                if (!is_zero_or_empty(json_object_get(it->o, unsupported[i])))
                        return tj_refuse(&it->j, field(it, q, unsupported[i]), "not supported by kasamond's cost engine");
        return 0;
}

static int parse_tiers(Item *it, const char *path, json_t *v, bool demand, TariffPeriod *period) {
        static const char *const energy_units[] = { "kWh", "kWh daily" };
        char q[TARIFF_PATH_MAX], tp[TARIFF_PATH_MAX];
        int r;

        int n = tj_array_new(&it->j, path, v, 1, TARIFF_TIERS_MAX, sizeof(TariffTier), (void **) &period->tiers);
        if (n < 0)
                return n;
        period->n_tiers = (size_t) n;
        for (size_t i = 0; i < (size_t) n; i++) {
                json_t *tier = json_array_get(v, i), *max, *adj, *unit, *sell;
                TariffTier *tr = &period->tiers[i];
                bool last = i + 1 == (size_t) n;

                tj_path(tp, path, "[%zu]", i);
                if (!json_is_object(tier))
                        return tj_refuse(&it->j, tp, "expected an object");
                if ((r = tj_nano(&it->j, tj_path(q, tp, ".rate"), json_object_get(tier, "rate"),
                                 TARIFF_RATE_MAX / TARIFF_NANO, &tr->rate)) < 0)
                        return r;
                if ((adj = json_object_get(tier, "adj")) &&
                    (r = tj_nano(&it->j, tj_path(q, tp, ".adj"), adj, TARIFF_RATE_MAX / TARIFF_NANO, &tr->adj)) < 0)
                        return r;
                if (demand) { /* demand adjustments are charged like the rate */
                        tr->rate += tr->adj;
                        tr->adj = 0;
                }
                if ((sell = json_object_get(tier, "sell")) && !is_zero_or_empty(sell))
                        return tj_refuse(&it->j, tj_path(q, tp, ".sell"), "not supported (energy sold back to the utility)");
                {
                        unit = json_object_get(tier, "unit");
                        const char *s = unit ? json_string_value(unit) : demand ? "kW" : "kWh";
                        bool daily = s && strcmp(s, energy_units[1]) == 0;
                        if (demand ? !s || strcmp(s, "kW") != 0 : !s || (strcmp(s, energy_units[0]) != 0 && !daily))
                                return tj_refuse(&it->j, tj_path(q, tp, ".unit"), "expected %s, got %s%s%s",
                                                 demand ? "kW" : "kWh or kWh daily (others are not supported)",
                                                 s ? "\"" : "", s ? s : "no string", s ? "\"" : "");
                        /* Tiers reset daily or by cycle for the whole tariff. */
                        if (!demand && it->daily >= 0 && it->daily != daily)
                                return tj_refuse(&it->j, tj_path(q, tp, ".unit"),
                                                 "expected the same unit as the other energy tiers");
                        if (!demand)
                                it->daily = daily;
                        it->t->daily_tiers = it->daily == 1;
                }
                tr->max = TARIFF_UNLIMITED;
                if ((max = json_object_get(tier, "max"))) {
                        if (last)
                                return tj_refuse(&it->j, tj_path(q, tp, ".max"), "expected no max on the last tier");
                        if ((r = tj_milli(&it->j, tj_path(q, tp, ".max"), max, &tr->max)) < 0)
                                return r;
                        if (i > 0 && tr->max <= period->tiers[i - 1].max)
                                return tj_refuse(&it->j, tj_path(q, tp, ".max"), "expected a max above the previous tier's");
                } else if (!last)
                        return tj_refuse(&it->j, tj_path(q, tp, ".max"), "expected a max on every tier but the last");
        }
        return 0;
}

static int parse_structure(Item *it, const char *name, bool demand, TariffPeriod **ret, size_t *ret_n) {
        char q[TARIFF_PATH_MAX], e[TARIFF_PATH_MAX];
        const char *path = field(it, q, name);
        json_t *v = json_object_get(it->o, name);
        int r;

        int n = tj_array_new(&it->j, path, v, 1, TARIFF_PERIODS_MAX, sizeof(TariffPeriod), (void **) ret);
        if (n < 0)
                return n;
        for (size_t i = 0; i < (size_t) n; i++) {
                *ret_n = i + 1;
                if (asprintf(&(*ret)[i].name, "%s %zu", demand ? "demand period" : "period", i) < 0) {
                        (*ret)[i].name = NULL;
                        return -ENOMEM;
                }
                if ((r = parse_tiers(it, tj_path(e, path, "[%zu]", i), json_array_get(v, i), demand, &(*ret)[i])) < 0)
                        return r;
        }
        return 0;
}

/* 12 x 24 zero-based period indices by local month and hour; weekday for
 * Monday to Friday, weekend for Saturday, Sunday and holidays. */
static int parse_schedules(Item *it, const char *weekday, const char *weekend, size_t n_periods, TariffMap *map) {
        char q[TARIFF_PATH_MAX], e[TARIFF_PATH_MAX], h[TARIFF_PATH_MAX];
        _cleanup_free_ TariffGrid *grid = malloc(sizeof(TariffGrid));
        int r;

        if (!grid)
                return -ENOMEM;
        for (unsigned w = 0; w < 2; w++) {
                const char *name = w ? weekend : weekday;
                const char *path = field(it, q, name);
                json_t *v = json_object_get(it->o, name);
                if ((r = tj_array(&it->j, path, v, 12, 12)) < 0)
                        return r;
                for (unsigned m = 0; m < 12; m++) {
                        json_t *row = json_array_get(v, m);
                        if ((r = tj_array(&it->j, tj_path(e, path, "[%u]", m), row, 24, 24)) < 0)
                                return r;
                        for (unsigned hr = 0; hr < 24; hr++) {
                                int64_t p;
                                if ((r = tj_int(&it->j, tj_path(h, e, "[%u]", hr), json_array_get(row, hr), 0,
                                                (int64_t) n_periods - 1, &p)) < 0)
                                        return r;
                                for (unsigned d = w ? 5 : 0; d < (w ? TARIFF_DAY_TYPES : 5); d++)
                                        memset(&(*grid)[m][d][hr * 60], (int) p, 60);
                        }
                }
        }
        return tariff_map_compile(map, *grid);
}

static int parse_charge(Item *it, const char *amount, const char *alias, const char *units, TariffCharge *c) {
        char q[TARIFF_PATH_MAX];
        json_t *v = json_object_get(it->o, amount);
        int r;

        if (!v && alias && (v = json_object_get(it->o, alias)))
                amount = alias;
        if (!v || json_is_null(v))
                return 0;
        if ((r = tj_nano(&it->j, field(it, q, amount), v, TARIFF_RATE_MAX / TARIFF_NANO, &c->amount)) < 0)
                return r;
        c->per = TARIFF_PER_MONTH;
        json_t *u = json_object_get(it->o, units);
        if (!u)
                return 0;
        const char *s = json_string_value(u);
        if (s && strcmp(s, "$/day") == 0)
                c->per = TARIFF_PER_DAY;
        else if (s && strcmp(s, "$/year") == 0)
                c->per = TARIFF_PER_YEAR;
        else if (!s || strcmp(s, "$/month") != 0)
                return tj_refuse(&it->j, field(it, q, units), "expected $/month, $/day or $/year");
        return 0;
}

static int parse_item(Item *it) {
        char q[TARIFF_PATH_MAX];
        Tariff *t = it->t;
        json_t *v;
        int r;

        if (!json_is_object(it->o))
                return tj_refuse(&it->j, it->prefix[0] ? it->prefix : NULL, "expected a URDB item object");
        if ((r = refuse_unsupported(it)) < 0 ||
            (r = tj_string(&it->j, field(it, q, "name"), json_object_get(it->o, "name"), &t->name)) < 0)
                return r;
        if ((v = json_object_get(it->o, "utility")) && (r = tj_string(&it->j, field(it, q, "utility"), v, &t->utility)) < 0)
                return r;
        if ((v = json_object_get(it->o, "description")) && !json_is_null(v) &&
            (r = tj_string(&it->j, field(it, q, "description"), v, &t->notes)) < 0)
                return r;
        memcpy(t->currency, "USD", 4); /* URDB prices are in US dollars */
        t->currency_digits = 2;

        int64_t sec;
        if ((v = json_object_get(it->o, "startdate")) && !json_is_null(v)) {
                if ((r = tj_int(&it->j, field(it, q, "startdate"), v, 0, INT64_C(1) << 40, &sec)) < 0)
                        return r;
                t->valid_from_ms = sec * 1000;
        }
        if ((v = json_object_get(it->o, "enddate")) && !json_is_null(v)) {
                if ((r = tj_int(&it->j, field(it, q, "enddate"), v, 0, INT64_C(1) << 40, &sec)) < 0)
                        return r;
                t->valid_until_ms = sec * 1000;
                if (t->valid_until_ms <= t->valid_from_ms)
                        return tj_refuse(&it->j, field(it, q, "enddate"), "expected a time after startdate");
        }

        if ((r = parse_structure(it, "energyratestructure", false, &t->periods, &t->n_periods)) < 0 ||
            (r = parse_schedules(it, "energyweekdayschedule", "energyweekendschedule", t->n_periods, &t->energy_map)) < 0)
                return r;

        if ((r = parse_charge(it, "fixedchargefirstmeter", "fixedmonthlycharge", "fixedchargeunits", &t->minimum)) < 0)
                return r;
        if (t->minimum.amount != 0) { /* parsed into minimum's slot only to reuse parse_charge */
                t->fixed = calloc(1, sizeof(TariffCharge));
                if (!t->fixed || !(t->fixed[0].name = strdup("fixed charge")))
                        return -ENOMEM;
                t->fixed[0].amount = t->minimum.amount;
                t->fixed[0].per = t->minimum.per;
                t->n_fixed = 1;
        }
        t->minimum = (TariffCharge) {};
        if ((r = parse_charge(it, "mincharge", "minmonthlycharge", "minchargeunits", &t->minimum)) < 0)
                return r;

        if ((v = json_object_get(it->o, "demandwindow")) && !json_is_null(v)) {
                int64_t w;
                if ((r = tj_int(&it->j, field(it, q, "demandwindow"), v, 1, TARIFF_MINUTES_PER_DAY, &w)) < 0)
                        return r;
                t->demand_window_min = (unsigned) w;
        }
        if ((v = json_object_get(it->o, "demandunits")) && (!json_is_string(v) || strcmp(json_string_value(v), "kW") != 0))
                return tj_refuse(&it->j, field(it, q, "demandunits"), "expected kW (others are not supported)");
        if ((v = json_object_get(it->o, "flatdemandunit")) && (!json_is_string(v) || strcmp(json_string_value(v), "kW") != 0))
                return tj_refuse(&it->j, field(it, q, "flatdemandunit"), "expected kW (others are not supported)");
        if (!is_zero_or_empty(json_object_get(it->o, "demandratestructure")) &&
            ((r = parse_structure(it, "demandratestructure", true, &t->demand_periods, &t->n_demand_periods)) < 0 ||
             (r = parse_schedules(it, "demandweekdayschedule", "demandweekendschedule", t->n_demand_periods,
                                  &t->demand_map)) < 0))
                return r;
        if (!is_zero_or_empty(json_object_get(it->o, "flatdemandstructure"))) {
                if ((r = parse_structure(it, "flatdemandstructure", true, &t->flat_demand, &t->n_flat_demand)) < 0)
                        return r;
                const char *path = field(it, q, "flatdemandmonths");
                char e[TARIFF_PATH_MAX];
                v = json_object_get(it->o, "flatdemandmonths");
                if ((r = tj_array(&it->j, path, v, 12, 12)) < 0)
                        return r;
                for (unsigned m = 0; m < 12; m++) {
                        int64_t p;
                        if ((r = tj_int(&it->j, tj_path(e, path, "[%u]", m), json_array_get(v, m), 0,
                                        (int64_t) t->n_flat_demand - 1, &p)) < 0)
                                return r;
                        t->flat_demand_month[m] = (uint8_t) p;
                }
        }

        _cleanup_free_ char *why = NULL;
        if (tariff_check(t, &why) < 0)
                return tj_refuse(&it->j, it->prefix[0] ? it->prefix : NULL, "%s", why ? why : "invalid");
        return 0;
}

int tariff_urdb_parse(const char *data, size_t size, const char *file, Tariff ***ret, size_t *ret_n,
                      char **ret_error) {
        TariffJson j = { .file = file ? file : "urdb", .ret_error = ret_error };
        json_t *root = NULL, *items;
        Tariff **list = NULL;
        size_t n = 0;
        int r;

        if (ret_error)
                *ret_error = NULL;
        if ((r = tj_load(&j, data, size, TARIFF_URDB_MAX, &root)) < 0)
                return r;
        bool many = json_is_object(root) && (items = json_object_get(root, "items"));
        if (many) {
                r = tj_array(&j, "items", items, 1, TARIFF_URDB_ITEMS_MAX);
                n = r < 0 ? 0 : (size_t) r;
        } else {
                items = root;
                n = 1;
        }
        if (r >= 0 && !(list = calloc(n, sizeof(Tariff *))))
                r = -ENOMEM;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                char prefix[TARIFF_PATH_MAX] = "";
                if (many)
                        tj_path(prefix, NULL, "items[%zu]", i);
                Item it = { .j = j, .prefix = prefix, .o = many ? json_array_get(items, i) : items, .t = tariff_new(), .daily = -1 };
                if (!it.t) {
                        r = -ENOMEM;
                        break;
                }
                list[i] = it.t;
                r = parse_item(&it);
        }
        json_decref(root);
        if (r < 0) {
                tariff_list_free(list, n);
                return r;
        }
        *ret = list;
        *ret_n = n;
        return 0;
}

int tariff_urdb_load(const char *path, Tariff ***ret, size_t *ret_n, char **ret_error) {
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r = tj_read_file(path, TARIFF_URDB_MAX, &data, &size, ret_error);
        if (r < 0)
                return r;
        return tariff_urdb_parse(data, size, path, ret, ret_n, ret_error);
}
