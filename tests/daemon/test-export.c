/* SPDX-License-Identifier: MIT */
/* The exporter (export.c) against a store filled directly: CSV and JSON
 * text, windows that adapt to dense data, fields, and the round trip of
 * the hourly energy export through the what-if pricing's CSV reader
 * (energy-csv.c) against the rollups GetCost prices. */

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "calendar.h"
#include "energy-csv.h"
#include "export.h"
#include "manager-tariff.h"
#include "store.h"
#include "tap.h"

#define MINUTE_MS INT64_C(60000)
#define HOUR_MS INT64_C(3600000)
#define DAY_MS INT64_C(86400000)
/* 2025-01-01T00:00:00+01:00 */
#define T0 INT64_C(1735686000000)

static int64_t day_start(int64_t ts, void *userdata) {
        return calendar_day_start(userdata, ts);
}

/* The whole export as one string, and how many steps it took. */
static char *run(Store *st, const Calendar *cal, const ExportDevice *devs, size_t n, int64_t from, int64_t to,
                 ExportResolution res, ExportFormat fmt, const char *const *fields, size_t n_fields, size_t *steps,
                 size_t *max_step) {
        Export *e = NULL;
        char *error = NULL, *all = NULL;
        size_t size = 0;
        int r = export_new(st, cal, devs, n, from, to, res, fmt, fields, n_fields, NULL, &e, &error);
        if (r < 0) {
                diag("export_new: %s (%s)", strerror(-r), error ?: "");
                free(error);
                return NULL;
        }
        FILE *f = open_memstream(&all, &size);
        const char *text;
        size_t len;
        *steps = 0;
        *max_step = 0;
        while ((r = export_step(e, &text, &len)) > 0) {
                fwrite(text, 1, len, f);
                (*steps)++;
                if (len > *max_step)
                        *max_step = len;
        }
        fclose(f);
        export_free(e);
        if (r < 0) {
                free(all);
                return NULL;
        }
        return all;
}

/* Compares, showing the text as diagnostics on a mismatch. */
static bool same_text(const char *got, const char *want) {
        if (got && strcmp(got, want) == 0)
                return true;
        for (const char *p = got; p && *p;) {
                size_t n = strcspn(p, "\r\n");
                diag("got: %.*s", (int) n, p);
                p += n + strspn(p + n, "\r\n");
        }
        return false;
}

static size_t count_lines(const char *s) {
        size_t n = 0;
        for (; s && *s; s++)
                n += *s == '\n';
        return n;
}

int main(void) {
        char dir[] = "/tmp/test-export-XXXXXX";
        Calendar *cal = calendar_new("Europe/Berlin");
        Store *st = NULL;
        size_t steps, max_step;

        ok(cal && mkdtemp(dir), "setup");
        ok(store_open(dir, day_start, cal, &st) == 0, "open a store");

        /* Device 1: 1200 W for 3 hours, a sample each 10 s (1200 W x 10 s
         * = 3.333 Wh). Device 2: dense, a sample every 100 ms for 20
         * minutes (more per hour than a raw window holds). */
        int64_t e1 = 0;
        int failed = 0;
        for (int64_t t = T0; t <= T0 + 3 * HOUR_MS; t += 10000) {
                StoreSample s = { .device = 1, .ts_ms = t, .power_mw = 1200000, .voltage_mv = 230500,
                                  .current_ma = 5206, .energy_mwh = e1 };
                failed += store_append(st, &s, 1) != 0;
                e1 += 3333 + ((t - T0) / 10000 % 3 == 0); /* 10 Wh per 30 s */
        }
        size_t dense = 0;
        for (int64_t t = T0; t < T0 + 20 * MINUTE_MS; t += 100, dense++) {
                StoreSample s = { .device = 2, .ts_ms = t, .power_mw = 5000, .voltage_mv = 230000,
                                  .current_ma = 22, .energy_mwh = (int64_t) dense };
                failed += store_append(st, &s, 1) != 0;
        }
        ok(failed == 0 && store_sync(st) == 0, "fill the store");

        ExportDevice one[] = { { "8006A1B2C3D4", 1 } };
        ExportDevice both[] = { { "8006A1B2C3D4", 1 }, { "with,comma\"q", 2 } };

        /* Raw CSV of device 1 over the first minute. */
        char *csv = run(st, cal, one, 1, T0, T0 + MINUTE_MS, EXPORT_RAW, EXPORT_CSV, NULL, 0, &steps, &max_step);
        ok(same_text(csv,
               "device,time,power_w,voltage_v,current_a,energy_total_wh\r\n"
               "8006A1B2C3D4,2025-01-01T00:00:00+01:00,1200,230.5,5.206,0\r\n"
               "8006A1B2C3D4,2025-01-01T00:00:10+01:00,1200,230.5,5.206,3.334\r\n"
               "8006A1B2C3D4,2025-01-01T00:00:20+01:00,1200,230.5,5.206,6.667\r\n"
               "8006A1B2C3D4,2025-01-01T00:00:30+01:00,1200,230.5,5.206,10\r\n"
               "8006A1B2C3D4,2025-01-01T00:00:40+01:00,1200,230.5,5.206,13.334\r\n"
               "8006A1B2C3D4,2025-01-01T00:00:50+01:00,1200,230.5,5.206,16.667\r\n"),
               "raw CSV: header with units, RFC 3339 local times, exact decimals, CRLF");
        free(csv);

        /* Dense device: 12000 samples, more than one raw window holds. */
        csv = run(st, cal, both + 1, 1, T0, T0 + HOUR_MS, EXPORT_RAW, EXPORT_CSV, NULL, 0, &steps, &max_step);
        is_int((int64_t) count_lines(csv), (int64_t) dense + 1, "dense raw export has every sample (windows shrink)");
        const char *row1 = csv ? strchr(csv, '\n') + 1 : "";
        const char *want1 = "\"with,comma\"\"q\",2025-01-01T00:00:00+01:00,5,230,0.022,0\r\n";
        if (strncmp(row1, want1, strlen(want1)) != 0)
                diag("got: %.*s", (int) strcspn(row1, "\r\n"), row1);
        ok(strncmp(row1, want1, strlen(want1)) == 0,
           "a device id with a comma and a quote is quoted as RFC 4180 says");
        ok(steps > 1, "a large export comes in several steps (%zu)", steps);
        ok(max_step < 2 * 1024 * 1024, "no step holds more than a bounded amount of text (%zu bytes)", max_step);
        free(csv);

        /* Since the epoch: the empty decades before the data are leapt
         * over, not walked an hour (a raw window) at a time. */
        csv = run(st, cal, one, 1, 0, T0 + MINUTE_MS, EXPORT_RAW, EXPORT_CSV, NULL, 0, &steps, &max_step);
        is_int((int64_t) count_lines(csv), 7, "raw since the epoch: the header and the first minute's six samples");
        ok(steps < 20, "in a few steps (%zu), not one per 64 empty hours", steps);
        free(csv);
        csv = run(st, cal, one, 1, 0, T0 + HOUR_MS, EXPORT_MINUTE, EXPORT_CSV, NULL, 0, &steps, &max_step);
        is_int((int64_t) count_lines(csv), 61, "minutes since the epoch: the header and the first hour's 60");
        ok(steps < 20, "in a few steps (%zu), not one per 64 empty days", steps);
        free(csv);

        /* Both devices in JSON, minute rollups of the first 2 minutes. */
        char *js = run(st, cal, both, 2, T0, T0 + 2 * MINUTE_MS, EXPORT_MINUTE, EXPORT_JSON, NULL, 0, &steps,
                       &max_step);
        json_error_t jerr;
        json_t *a = js ? json_loads(js, 0, &jerr) : NULL;
        ok(a && json_is_array(a), "JSON export parses as an array");
        is_int((int64_t) json_array_size(a), 4, "two minutes of two devices");
        json_t *r0 = json_array_get(a, 0);
        is_str(json_string_value(json_object_get(r0, "device")), "8006A1B2C3D4", "JSON device");
        is_str(json_string_value(json_object_get(r0, "start")), "2025-01-01T00:00:00+01:00", "JSON start");
        is_str(json_string_value(json_object_get(r0, "end")), "2025-01-01T00:01:00+01:00", "JSON end");
        ok(json_is_number(json_object_get(r0, "energy_wh")) &&
                   json_number_value(json_object_get(r0, "energy_wh")) > 0,
           "JSON energy is a number");
        is_str(json_string_value(json_object_get(json_array_get(a, 2), "device")), "with,comma\"q",
               "JSON string escaping");
        json_decref(a);
        free(js);

        /* Empty range in JSON is an empty array. */
        js = run(st, cal, one, 1, T0 - DAY_MS, T0, EXPORT_RAW, EXPORT_JSON, NULL, 0, &steps, &max_step);
        ok(same_text(js, "[]\n"), "an empty JSON export is []");
        free(js);

        /* Fields: picked and ordered; errors. */
        const char *f_bad[] = { "start", "power_w" }, *f_twice[] = { "start", "start" },
                   *f_energy[] = { "start", "energy_wh" };
        Export *e = NULL;
        char *error = NULL;
        is_int(export_new(st, cal, one, 1, T0, T0 + 1, EXPORT_HOUR, EXPORT_CSV, f_bad, 2, NULL, &e, &error), -EINVAL,
               "a raw field at hour resolution is refused");
        is_str(error, "Unknown field 'power_w' at hour resolution: use device,start,end,energy_wh,power_min_w,"
                      "power_avg_w,power_max_w,samples,source.", "the refusal names the fields");
        free(error);
        is_int(export_new(st, cal, one, 1, T0, T0 + 1, EXPORT_HOUR, EXPORT_CSV, f_twice, 2, NULL, &e, &error), -EINVAL,
               "a field twice is refused");
        free(error);
        is_int(export_new(st, cal, both, 2, T0, T0 + 1, EXPORT_HOUR, EXPORT_CSV, f_energy, 2, NULL, &e, &error), -EINVAL,
               "two devices without the device field are refused");
        free(error);

        /* Round trip: hourly start,energy_wh is what PriceEnergy reads, and
         * it reads the intervals GetCost prices. */
        csv = run(st, cal, one, 1, T0, T0 + 3 * HOUR_MS, EXPORT_HOUR, EXPORT_CSV, f_energy, 2, &steps, &max_step);
        CostInterval *back = NULL, *src = NULL;
        size_t n_back = 0, n_src = 0;
        int r = csv ? energy_csv_parse(csv, strlen(csv), "export", &back, &n_back, &error) : -EINVAL;
        if (r < 0)
                diag("%s", error ?: "");
        ok(r == 0, "the hourly energy export parses as PriceEnergy's CSV");
        ok(manager_cost_store_rollups(st, cal, 1, STORE_HOUR, T0, T0 + 3 * HOUR_MS, T0 + DAY_MS, &src, &n_src) == 0,
           "the rollups GetCost prices");
        bool same = n_back == n_src && n_src == 3;
        int64_t sum = 0;
        for (size_t i = 0; same && i < n_src; i++) {
                same = back[i].start_ms == src[i].start_ms && back[i].end_ms == src[i].end_ms &&
                       back[i].energy_mwh == src[i].energy_mwh;
                sum += back[i].energy_mwh;
        }
        ok(same, "the same intervals, starts, ends and energy (%zu and %zu)", n_back, n_src);
        int64_t total;
        ok(store_energy(st, 1, T0, T0 + 3 * HOUR_MS, &total) == 0 && total == sum,
           "their energy is the store's (%" PRId64 " mWh)", sum);
        free(back);
        free(src);
        free(csv);

        /* Day rollups: local days, end at the next local midnight. */
        csv = run(st, cal, one, 1, T0 - DAY_MS, T0 + DAY_MS, EXPORT_DAY, EXPORT_CSV, NULL, 0, &steps, &max_step);
        ok(csv && strstr(csv, "\r\n8006A1B2C3D4,2025-01-01T00:00:00+01:00,2025-01-02T00:00:00+01:00,"),
           "a day row runs from local midnight to the next");
        ok(csv && strstr(csv, ",kasamond\r\n"), "a recorded day's source is kasamond");
        free(csv);

        /* A day imported from the device's statistics (the day before the
         * first recorded one): energy only, its source the device. */
        StoreImportedDay im[] = { { day_start(T0 - HOUR_MS, cal), 12500 } };
        size_t written = 0;
        ok(store_import_days(st, 1, im, 1, T0 + 2 * DAY_MS, &written) == 0 && written == 1, "import a day");
        csv = run(st, cal, one, 1, T0 - DAY_MS, T0 + DAY_MS, EXPORT_DAY, EXPORT_CSV, NULL, 0, &steps, &max_step);
        ok(csv && strstr(csv, "\r\n8006A1B2C3D4,2024-12-31T00:00:00+01:00,2025-01-01T00:00:00+01:00,12.5,,0.52,,0,"
                              "device\r\n8006A1B2C3D4,2025-01-01T00:00:00+01:00,"),
           "the imported day comes first, with no minimum, maximum or samples");
        free(csv);
        js = run(st, cal, one, 1, T0 - DAY_MS, T0, EXPORT_DAY, EXPORT_JSON, NULL, 0, &steps, &max_step);
        a = js ? json_loads(js, 0, &jerr) : NULL;
        r0 = json_array_get(a, 0);
        ok(json_array_size(a) == 1 && json_is_null(json_object_get(r0, "power_min_w")) &&
                   json_is_null(json_object_get(r0, "power_max_w")) &&
                   json_number_value(json_object_get(r0, "energy_wh")) == 12.5 &&
                   strcmp(json_string_value(json_object_get(r0, "source")) ?: "", "device") == 0,
           "in JSON: null minimum and maximum, source device");
        json_decref(a);
        free(js);
        csv = run(st, cal, one, 1, T0 - DAY_MS, T0 + DAY_MS, EXPORT_HOUR, EXPORT_CSV, NULL, 0, &steps, &max_step);
        ok(csv && !strstr(csv, "device\r\n"), "hours have no imported rows");
        free(csv);

        store_free(st);
        calendar_free(cal);
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        ok(system(cmd) == 0, "cleanup");
        return done_testing();
}
