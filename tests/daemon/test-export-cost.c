/* SPDX-License-Identifier: MIT */
/* The cost columns of an export (export-cost.c through export.c) against
 * a store filled directly and GetCost's engine (cost_query_run()) on the
 * same store: a device's rows add up to its bill's energy and adder
 * lines to the cent at minute, hour and day resolution, over a billing
 * cycle's change, with marginal tiers, time of use, a tariff that starts
 * after the range does and a device's own tariff from an off-hour minute;
 * an hour costs what its minutes cost and a day what its hours cost. */

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "calendar.h"
#include "cost-query.h"
#include "export-cost.h"
#include "export.h"
#include "manager-tariff.h"
#include "store.h"
#include "tap.h"

#define MINUTE_MS INT64_C(60000)
#define HOUR_MS INT64_C(3600000)
#define DAY_MS INT64_C(86400000)
/* 2025-01-10T00:00:00+01:00; the cycles start on the 15th. */
#define T_START INT64_C(1736463600000)
#define DAYS 40
#define T_END (T_START + DAYS * DAY_MS)
/* Tariff B prices device 2 from here: day 20, 00:17. */
#define T_OWN (T_START + 20 * DAY_MS + 17 * MINUTE_MS)

static const char TARIFF_A[] =
        "{\"format\":\"kasamond-tariff/1\",\"name\":\"A\",\"currency\":\"EUR\","
        "\"valid_from\":\"2025-01-11T00:00:00+01:00\",\"billing_cycle_start_day\":15,"
        "\"periods\":[{\"name\":\"night\",\"hours\":\"22:00-06:00\",\"tiers\":[{\"up_to_kwh\":50,\"rate\":0.101234567},"
        "{\"rate\":0.151234567}]},{\"name\":\"day\",\"tiers\":[{\"up_to_kwh\":50,\"rate\":0.301234567},"
        "{\"up_to_kwh\":200,\"rate\":0.351234567},{\"rate\":0.401234567}]}],"
        "\"adders\":[{\"name\":\"grid\",\"rate\":0.071234567}],"
        "\"fixed\":[{\"name\":\"standing\",\"amount\":10,\"per\":\"month\"}],"
        "\"taxes\":[{\"name\":\"VAT\",\"percent\":19}]}";
static const char TARIFF_B[] =
        "{\"format\":\"kasamond-tariff/1\",\"name\":\"B\",\"currency\":\"EUR\","
        "\"periods\":[{\"name\":\"flat\",\"tiers\":[{\"up_to_kwh\":20,\"rate\":0.211111111},{\"rate\":0.255555555}]}]}";

static int64_t day_start(int64_t ts, void *userdata) {
        return calendar_day_start(userdata, ts);
}

/* GetCost's source: the store's rollups, as the daemon reads them. */
typedef struct Source {
        Store *st;
        const Calendar *cal;
} Source;

static uint32_t number_of(const char *device) {
        return strcmp(device, "dev1") == 0 ? 1 : 2;
}

static int source_energy(void *userdata, const char *device, bool minutes, int64_t from, int64_t to,
                         CostInterval **ret, size_t *ret_n) {
        Source *s = userdata;
        return manager_cost_store_rollups(s->st, s->cal, number_of(device), minutes ? STORE_MINUTE : STORE_HOUR, from,
                                          to, T_END + DAY_MS, ret, ret_n);
}

static int source_days(void *userdata, const char *device, int64_t from, int64_t to, CostInterval **ret,
                       size_t *ret_n) {
        Source *s = userdata;
        return manager_cost_store_rollups(s->st, s->cal, number_of(device), STORE_DAY, from, to, T_END + DAY_MS, ret,
                                          ret_n);
}

static const CostSourceOps source_ops = { .energy = source_energy, .days = source_days };

static Tariff *parse(const char *text) {
        Tariff *t = NULL;
        char *error = NULL;
        if (tariff_file_parse(text, strlen(text), "test.json", &t, &error) < 0)
                diag("tariff: %s", error);
        free(error);
        return t;
}

/* The export as text; costs from a pricer of q. */
static char *run(Store *st, const Calendar *cal, const CostQuery *q, const ExportDevice *dev, int64_t from,
                 int64_t to, ExportResolution res, ExportFormat fmt, const char *const *fields, size_t n_fields,
                 char **ret_error) {
        ExportPricer *p = NULL;
        ExportCosts costs = { .price = export_pricer_price };
        Export *e = NULL;
        char *all = NULL;
        size_t size = 0;
        const char *text;
        size_t len;
        int r;

        *ret_error = NULL;
        if (export_pricer_new(q, res == EXPORT_MINUTE, &p) < 0)
                return NULL;
        costs.userdata = p;
        r = export_pricer_currency(p, from, to, costs.currency, &costs.digits, ret_error);
        if (r >= 0)
                r = export_new(st, cal, dev, 1, from, to, res, fmt, fields, n_fields, &costs, &e, ret_error);
        if (r < 0) {
                export_pricer_free(p);
                return NULL;
        }
        FILE *f = open_memstream(&all, &size);
        while ((r = export_step(e, &text, &len)) > 0)
                fwrite(text, 1, len, f);
        fclose(f);
        if (r < 0) {
                diag("export_step: %s (%s)", strerror(-r), export_error(e) ?: "");
                free(all);
                all = NULL;
        }
        export_free(e);
        export_pricer_free(p);
        return all;
}

/* Minor units of a JSON number of cents. */
static int64_t cents(json_t *v) {
        return llround(json_number_value(v) * 100);
}

typedef struct Sums {
        int64_t energy, adders;
        size_t rows, unpriced;
        json_t *rows_json;
} Sums;

static Sums sum_rows(const char *js) {
        Sums s = {};
        json_error_t err;
        s.rows_json = js ? json_loads(js, 0, &err) : NULL;
        for (size_t i = 0; i < json_array_size(s.rows_json); i++) {
                json_t *o = json_array_get(s.rows_json, i), *ec = json_object_get(o, "energy_cost_eur"),
                       *ac = json_object_get(o, "adders_cost_eur");
                s.rows++;
                if (json_is_null(ec) && json_is_null(ac)) {
                        s.unpriced++;
                        continue;
                }
                s.energy += cents(ec);
                s.adders += cents(ac);
        }
        return s;
}

/* The device's bill as GetCost computes it: its energy and adder lines. */
static bool bill_of(const CostQuery *tmpl, size_t device, int64_t from, int64_t to, int64_t *ret_energy,
                    int64_t *ret_adders) {
        CostQuery q = *tmpl;
        CostQueryResult *res = NULL;
        char *error = NULL;
        q.devices = &tmpl->devices[device];
        q.n_devices = 1;
        q.from_ms = from;
        q.to_ms = to;
        q.bucket = COST_BUCKET_NONE;
        int r = cost_query_run(&q, &res, &error);
        if (r < 0) {
                diag("cost_query_run: %s", error ?: strerror(-r));
                free(error);
                return false;
        }
        json_t *j = cost_query_to_json(&q, res);
        json_t *d = json_array_get(json_object_get(j, "devices"), 0);
        const char *e = json_string_value(json_object_get(d, "energy")),
                   *a = json_string_value(json_object_get(d, "adders"));
        bool good = e && a;
        if (good) {
                *ret_energy = llround(strtod(e, NULL) * 100);
                *ret_adders = llround(strtod(a, NULL) * 100);
        }
        json_decref(j);
        cost_query_result_free(res);
        return good;
}

/* Sums of the rows of each longer period: minutes into hours, hours into
 * days, compared with the longer period's own row. */
static bool rows_add_up(json_t *fine, json_t *coarse, const char *what) {
        size_t k = 0;
        bool good = json_array_size(coarse) > 0;
        for (size_t i = 0; good && i < json_array_size(coarse); i++) {
                json_t *c = json_array_get(coarse, i);
                const char *end = json_string_value(json_object_get(c, "end"));
                int64_t e = 0, a = 0;
                bool any = false;
                for (; k < json_array_size(fine); k++) {
                        json_t *f = json_array_get(fine, k);
                        if (strcmp(json_string_value(json_object_get(f, "start")), end) >= 0 &&
                            strlen(json_string_value(json_object_get(f, "start"))) == strlen(end))
                                break;
                        if (!json_is_null(json_object_get(f, "energy_cost_eur"))) {
                                e += cents(json_object_get(f, "energy_cost_eur"));
                                a += cents(json_object_get(f, "adders_cost_eur"));
                                any = true;
                        }
                }
                json_t *ce = json_object_get(c, "energy_cost_eur"), *ca = json_object_get(c, "adders_cost_eur");
                if (json_is_null(ce) ? any : (cents(ce) != e || cents(ca) != a)) {
                        diag("%s: the row starting %s costs %" PRId64 "+%" PRId64 ", its parts %" PRId64 "+%" PRId64,
                             what, json_string_value(json_object_get(c, "start")), json_is_null(ce) ? -1 : cents(ce),
                             json_is_null(ca) ? -1 : cents(ca), e, a);
                        good = false;
                }
        }
        return good;
}

int main(void) {
        char dir[] = "/tmp/test-export-cost-XXXXXX";
        Calendar *cal = calendar_new("Europe/Berlin");
        Store *st = NULL;
        char *error = NULL;

        ok(cal && mkdtemp(dir), "setup");
        ok(store_open(dir, day_start, cal, &st) == 0, "open a store");

        /* A sample a minute, power changing minute by minute so that time
         * of use and tiers matter; device 1 off for an hour on day 3. */
        int64_t e1 = 0, e2 = 0;
        int failed = 0;
        for (int64_t t = T_START, i = 0; t <= T_END; t += MINUTE_MS, i++) {
                bool off = t >= T_START + 3 * DAY_MS + 5 * HOUR_MS && t < T_START + 3 * DAY_MS + 6 * HOUR_MS;
                int64_t p1 = off ? 0 : 400000 + 37000 * ((i * 7) % 11), p2 = 150000 + 9000 * (i % 13);
                StoreSample s[2] = {
                        { .device = 1, .ts_ms = t, .power_mw = p1, .voltage_mv = 230000, .energy_mwh = e1 },
                        { .device = 2, .ts_ms = t, .power_mw = p2, .voltage_mv = 230000, .energy_mwh = e2 },
                };
                failed += store_append(st, s, 2) != 0;
                e1 += p1 / 60;
                e2 += p2 / 60;
        }
        ok(failed == 0 && store_sync(st) == 0, "fill the store: %d days of minutes of two plugs", DAYS);

        Tariff *a = parse(TARIFF_A), *b = parse(TARIFF_B);
        ok(a && b, "two tariffs");
        const CostQueryTariff tariffs[] = { { 1, a }, { 2, b } };
        TariffAssignment assignments[] = { { 1, NULL, 1, 0 }, { 2, (char *) "dev2", 2, T_OWN } };
        const CostQueryDevice devices[] = { { "dev1", NULL }, { "dev2", NULL } };
        Source src = { st, cal };
        const CostQuery q = {
                .tariffs = tariffs, .n_tariffs = 2,
                .assignments = assignments, .n_assignments = 2,
                .devices = devices, .n_devices = 2,
                .ops = &source_ops, .userdata = &src,
                .time_zone = "Europe/Berlin",
        };
        const ExportDevice dev1 = { "dev1", 1 }, dev2 = { "dev2", 2 };

        /* Header: units in the names. */
        const char *f_head[] = { "start", "energy_wh", "energy_cost_eur", "adders_cost_eur" };
        char *csv = run(st, cal, &q, &dev1, T_START, T_START + 2 * DAY_MS, EXPORT_HOUR, EXPORT_CSV, NULL, 0, &error);
        const char *header = "device,start,end,energy_wh,power_min_w,power_avg_w,power_max_w,samples,source,"
                             "energy_cost_eur,adders_cost_eur\r\n";
        ok(csv && strncmp(csv, header, strlen(header)) == 0,
           "CSV header: the cost columns named with their currency");
        /* Day 1 has no tariff yet: empty cells; day 2 is priced. */
        ok(csv && strstr(csv, "\r\ndev1,2025-01-10T00:00:00+01:00,2025-01-10T01:00:00+01:00,") &&
                   strstr(csv, ",60,kasamond,,\r\n"),
           "an hour no tariff prices has empty cost cells");
        ok(csv && strstr(csv, "\r\ndev1,2025-01-11T00:00:00+01:00,") &&
                   !strstr(strstr(csv, "\r\ndev1,2025-01-11T00:00:00+01:00,"), ",,\r\n"),
           "the hours a tariff prices have costs");
        free(csv);
        csv = run(st, cal, &q, &dev1, T_START + DAY_MS, T_START + DAY_MS + 2 * HOUR_MS, EXPORT_HOUR, EXPORT_CSV,
                  f_head, 4, &error);
        const char *want_head = "start,energy_wh,energy_cost_eur,adders_cost_eur\r\n2025-01-11T00:00:00+01:00,";
        ok(csv && strncmp(csv, want_head, strlen(want_head)) == 0 && strstr(csv, ",0.06,0.04\r\n"),
           "fields pick the cost columns by their names");
        free(csv);

        /* Each resolution over the whole range, both devices: the rows add
         * up to the device's bill, energy and adders, to the cent. */
        static const char *const res_names[] = { "minute", "hour", "day" };
        json_t *rows[2][3] = {};
        for (size_t d = 0; d < 2; d++) {
                int64_t want_e = 0, want_a = 0;
                CostQuery one = q;
                one.devices = &devices[d];
                one.n_devices = 1;
                ok(bill_of(&q, d, T_START, T_END, &want_e, &want_a), "dev%zu: GetCost's bill of the range", d + 1);
                for (ExportResolution r = EXPORT_MINUTE; r <= EXPORT_DAY; r++) {
                        char *js = run(st, cal, &one, d ? &dev2 : &dev1, T_START, T_END, r, EXPORT_JSON, NULL, 0, &error);
                        Sums s = sum_rows(js);
                        ok(s.rows > 0 && s.energy == want_e && s.adders == want_a,
                           "dev%zu, %s rows: energy %" PRId64 " and adders %" PRId64 " cents, as the bill says (%" PRId64
                           ", %" PRId64 ")",
                           d + 1, res_names[r - EXPORT_MINUTE], s.energy, s.adders, want_e, want_a);
                        ok(s.unpriced > 0, "dev%zu, %s: the rows before the tariff are not priced (%zu)", d + 1,
                           res_names[r - EXPORT_MINUTE], s.unpriced);
                        rows[d][r - EXPORT_MINUTE] = s.rows_json;
                        free(js);
                }
                ok(rows_add_up(rows[d][0], rows[d][1], "minutes into hours"), "dev%zu: an hour costs its minutes", d + 1);
                ok(rows_add_up(rows[d][1], rows[d][2], "hours into days"), "dev%zu: a day costs its hours", d + 1);
                for (size_t k = 0; k < 3; k++)
                        json_decref(rows[d][k]);
        }

        /* A range from inside a cycle: its earlier energy fills the tiers,
         * as the bill counts it. */
        int64_t from = T_START + 12 * DAY_MS, to = T_START + 37 * DAY_MS;
        for (size_t d = 0; d < 2; d++) {
                int64_t want_e = 0, want_a = 0;
                CostQuery one = q;
                one.devices = &devices[d];
                one.n_devices = 1;
                char *js = run(st, cal, &one, d ? &dev2 : &dev1, from, to, EXPORT_HOUR, EXPORT_JSON, NULL, 0, &error);
                Sums s = sum_rows(js);
                bool billed = bill_of(&q, d, from, to, &want_e, &want_a);
                ok(billed && s.energy == want_e && s.adders == want_a,
                   "dev%zu from inside a cycle: %" PRId64 "+%" PRId64 " cents, the bill %" PRId64 "+%" PRId64, d + 1,
                   s.energy, s.adders, want_e, want_a);
                json_decref(s.rows_json);
                free(js);
        }

        /* Days imported from the device's statistics (before kasamond's
         * first sample) have no costs: GetCost prices what kasamond
         * recorded, so the rows still add up to its bill. */
        StoreImportedDay im[] = { { T_START - 2 * DAY_MS, 5000000 }, { T_START - DAY_MS, 6000000 } };
        size_t written = 0;
        ok(store_import_days(st, 1, im, 2, T_END, &written) == 0 && written == 2, "two days imported before the first sample");
        CostQuery one = q;
        one.n_devices = 1;
        char *days = run(st, cal, &one, &dev1, T_START - 3 * DAY_MS, T_START + 3 * DAY_MS, EXPORT_DAY, EXPORT_CSV,
                         NULL, 0, &error);
        ok(days && strstr(days, ",2025-01-08T00:00:00+01:00,2025-01-09T00:00:00+01:00,5000,,208.333,,0,device,,\r\n") &&
                   strstr(days, ",2025-01-09T00:00:00+01:00,2025-01-10T00:00:00+01:00,6000,,250,,0,device,,\r\n"),
           "imported days: source device, no costs");
        if (days && !strstr(days, ",device,,\r\n"))
                diag("%s", days);
        free(days);
        char *js2 = run(st, cal, &one, &dev1, T_START - 3 * DAY_MS, T_START + 3 * DAY_MS, EXPORT_DAY, EXPORT_JSON, NULL,
                        0, &error);
        Sums with = sum_rows(js2);
        int64_t want_e = 0, want_a = 0;
        bool billed = bill_of(&q, 0, T_START - 3 * DAY_MS, T_START + 3 * DAY_MS, &want_e, &want_a);
        ok(billed && with.energy == want_e && with.adders == want_a && with.unpriced == 3,
           "with imported days the rows still add up to the bill (%" PRId64 " = %" PRId64 "), three unpriced",
           with.energy, want_e);
        json_decref(with.rows_json);
        free(js2);

        /* An hour of no energy costs nothing. */
        char *js = run(st, cal, &q, &dev1, T_START + 3 * DAY_MS + 5 * HOUR_MS, T_START + 3 * DAY_MS + 6 * HOUR_MS,
                       EXPORT_HOUR, EXPORT_JSON, NULL, 0, &error);
        Sums s = sum_rows(js);
        ok(s.rows == 1 && s.unpriced == 0 && s.energy == 0 && s.adders == 0, "an hour without energy costs 0");
        json_decref(s.rows_json);
        free(js);

        /* Refusals. */
        Export *e = NULL;
        ExportCosts costs = { .price = export_pricer_price, .currency = "EUR", .digits = 2 };
        is_int(export_new(st, cal, &dev1, 1, T_START, T_END, EXPORT_RAW, EXPORT_CSV, NULL, 0, &costs, &e, &error),
               -EINVAL, "costs of raw samples are refused");
        ok(error && strstr(error, "minute, hour or day"), "saying which resolutions have costs: %s", error ?: "");
        free(error);
        const char *f_cost[] = { "start", "energy_cost_eur" };
        is_int(export_new(st, cal, &dev1, 1, T_START, T_END, EXPORT_HOUR, EXPORT_CSV, f_cost, 2, NULL, &e, &error),
               -EINVAL, "a cost field without costs is refused");
        ok(error && strstr(error, "cost columns come with costs"), "saying why: %s", error ?: "");
        free(error);
        CostQuery none = q;
        none.n_assignments = 0;
        ExportPricer *p = NULL;
        char cur[4];
        unsigned digits;
        is_int(export_pricer_new(&none, false, &p) == 0 ? export_pricer_currency(p, T_START, T_END, cur, &digits, &error)
                                                        : -ENOMEM,
               -ENODATA, "costs without a tariff are refused");
        ok(error && strstr(error, "no tariff"), "saying so: %s", error ?: "");
        free(error);
        export_pricer_free(p);

        tariff_free(a);
        tariff_free(b);
        store_free(st);
        calendar_free(cal);
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        ok(system(cmd) == 0, "cleanup");
        return done_testing();
}
