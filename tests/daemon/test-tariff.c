/* SPDX-License-Identifier: MIT */
/* The tariff parsers and the energy CSV reader: what they build, and that
 * every refusal names the file, the field and what was expected. */
#include <errno.h>
#include <glib.h>
#include <stdlib.h>

#include "energy-csv.h"
#include "macro.h"
#include "tap.h"
#include "tariff.h"

#define HEAD "{\"format\":\"kasamond-tariff/1\",\"name\":\"t\",\"currency\":\"EUR\","

static char *own_error(const char *json) {
        Tariff *t = NULL;
        char *err = NULL;
        int r = tariff_file_parse(json, strlen(json), "home.json", &t, &err);
        tariff_free(t);
        if (r >= 0) {
                free(err);
                return strdup("(accepted)");
        }
        return err ? err : strdup("(no message)");
}

static void refused(const char *json, const char *want, const char *name) {
        char *err = own_error(json);
        if (!ok(strstr(err, want) != NULL, "own format refuses %s", name))
                diag("message: %s\n#  wanted: %s", err, want);
        free(err);
}

static void test_own_format(void) {
        Tariff *t = NULL;
        char *err = NULL;
        const char *good = HEAD "\"utility\":\"Stadtwerke\",\"notes\":\"n\",\"valid_from\":\"2024-01-01T00:00:00+01:00\","
                                "\"holidays\":[\"2024-12-25\",\"01-01\"],"
                                "\"periods\":[{\"name\":\"holiday\",\"days\":[\"holidays\"],\"rate\":0.05},"
                                "{\"name\":\"morning\",\"days\":[\"weekdays\"],\"hours\":\"06:30-09:15\",\"rate\":0.4},"
                                "{\"name\":\"rest\",\"rate\":0.2}]}";
        int r = tariff_file_parse(good, strlen(good), "home.json", &t, &err);
        if (ok(r == 0, "own format: a time-of-use tariff with holidays loads")) {
                is_str(t->utility, "Stadtwerke", "own format: utility");
                is_int(t->valid_from_ms, INT64_C(1704063600000), "own format: valid_from in UTC ms");
                is_int(t->valid_until_ms, INT64_MAX, "own format: open-ended validity");
                /* month 0 = January; day 0 = Monday; minute 390 = 06:30 */
                is_int(tariff_map_at(&t->energy_map, 0, 0, 389), 2, "own format: 06:29 on a Monday is rest");
                is_int(tariff_map_at(&t->energy_map, 0, 0, 390), 1, "own format: 06:30 starts the minute-exact period");
                is_int(tariff_map_at(&t->energy_map, 0, 0, 554), 1, "own format: 09:14 still the morning");
                is_int(tariff_map_at(&t->energy_map, 0, 0, 555), 2, "own format: 09:15 ends it");
                is_int(tariff_map_at(&t->energy_map, 0, 5, 400), 2, "own format: Saturday morning is rest");
                is_int(tariff_map_at(&t->energy_map, 0, TARIFF_HOLIDAY, 400), 0, "own format: holidays named");
                ok(tariff_is_holiday(t, 2024, 12, 25) && tariff_is_holiday(t, 2031, 1, 1) &&
                           !tariff_is_holiday(t, 2025, 12, 25),
                   "own format: dated and yearly holidays");
        } else
                diag("%s", err);
        free(err);
        tariff_free(t);

        /* A holiday no period names is a Sunday, even past a catch-all. */
        const char *sunday = HEAD "\"holidays\":[\"12-25\"],\"periods\":[{\"name\":\"weekend\",\"days\":[\"weekends\"],"
                                  "\"rate\":0.1},{\"name\":\"rest\",\"rate\":0.2}]}";
        err = NULL;
        r = tariff_file_parse(sunday, strlen(sunday), "home.json", &t, &err);
        ok(r == 0 && tariff_map_at(&t->energy_map, 11, TARIFF_HOLIDAY, 600) == 0 &&
                   tariff_map_at(&t->energy_map, 11, 2, 600) == 1,
           "own format: an unnamed holiday is priced like a Sunday");
        free(err);
        tariff_free(t);

        refused(HEAD "\"periods\":[{\"name\":\"a\",\"rate\":1},{\"name\":\"b\",\"hours\":\"7-22\",\"rate\":1}]}",
                "home.json: periods[1].hours: expected a time range", "a bad hour range, by path");
        refused(HEAD "\"periods\":[{\"name\":\"a\",\"rate\":1},{\"name\":\"b\",\"hours\":[\"07:00-09:00\",\"9:00\"],\"rate\":1}]}",
                "home.json: periods[1].hours[1]: expected a time range", "a bad entry in an hour list");
        refused(HEAD "\"periods\":[{\"name\":\"a\",\"days\":[\"weekdays\"],\"rate\":1}]}",
                "home.json: periods: no period for Saturday 00:00 in month 1", "a time no period covers");
        refused("{\"format\":\"kasamond-tariff/1\",\"name\":\"t\",\"currency\":\"EUX\",\"periods\":[{\"name\":\"a\",\"rate\":1}]}",
                "home.json: currency: expected a known ISO 4217 code", "an unknown currency");
        refused(HEAD "\"periods\":[{\"name\":\"a\",\"rat\":1}]}", "home.json: periods[0].rat: unknown field",
                "a misspelt field");
        refused(HEAD "\"periods\":[{\"name\":\"a\",\"tiers\":[{\"rate\":1},{\"rate\":2}]}]}",
                "home.json: periods[0].tiers[0].up_to_kwh: expected a limit", "a tier without a limit");
        refused(HEAD "\"periods\":[{\"name\":\"a\",\"tiers\":[{\"up_to_kwh\":5,\"rate\":1},{\"up_to_kwh\":4,\"rate\":2},{\"rate\":3}]}]}",
                "periods[0].tiers[1].up_to_kwh: expected a limit above", "decreasing tier limits");
        refused(HEAD "\"periods\":[{\"name\":\"a\",\"rate\":0.1234567891}]}",
                "periods[0].rate: expected at most 9 decimals", "more precision than is kept");
        refused(HEAD "\"periods\":[{\"name\":\"a\",\"rate\":1}],\"fixed\":[{\"name\":\"f\",\"amount\":1,\"per\":\"week\"}]}",
                "home.json: fixed[0].per: expected day, month or year", "a charge per week");
        refused(HEAD "\"periods\":[{\"name\":\"a\",\"season\":\"summer\",\"rate\":1}]}",
                "home.json: periods[0].season: expected the name of a season", "an unknown season");
        refused(HEAD "\"seasons\":[{\"name\":\"s\",\"months\":\"13-2\"}],\"periods\":[{\"name\":\"a\",\"rate\":1}]}",
                "home.json: seasons[0].months: expected months 1 to 12", "month 13");
        refused(HEAD "\"periods\":[{\"name\":\"a\",\"rate\":1}],\"taxes\":[{\"name\":\"v\",\"percent\":19,\"on\":[\"tax\"]}]}",
                "home.json: taxes[0].on[0]: expected energy", "a tax on taxes");
        refused(HEAD "\"valid_from\":\"2024-01-01\",\"periods\":[{\"name\":\"a\",\"rate\":1}]}",
                "home.json: valid_from: expected an RFC 3339 time", "a date without time and offset");
        refused(HEAD "\"periods\":[{\"name\":\"a\",\"rate\":1}],\"holidays\":[\"2023-02-29\"]}",
                "home.json: holidays[0]: expected a date", "a date that does not exist");
        refused("{\"format\":\"kasamond-tariff/2\"}", "home.json: format: expected \"kasamond-tariff/1\"",
                "another format version");
        refused("{\"format\": ", "home.json: line 1, column", "broken JSON, by line and column");

        /* Every array is capped: 65 periods are too many. */
        GString *s = g_string_new(HEAD "\"periods\":[");
        for (int i = 0; i < 65; i++)
                g_string_append_printf(s, "%s{\"name\":\"p%d\",\"rate\":1}", i ? "," : "", i);
        g_string_append(s, "]}");
        refused(s->str, "home.json: periods: expected 1 to 64 entries, got 65", "too many periods");
        g_string_free(s, true);

        /* And the file: one byte past the cap is refused unread. */
        char *big = malloc(TARIFF_FILE_MAX + 2);
        memset(big, ' ', TARIFF_FILE_MAX + 1);
        big[TARIFF_FILE_MAX + 1] = 0;
        refused(big, "home.json: expected at most 1048576 bytes", "a file past the size cap");
        free(big);

        err = NULL;
        r = tariff_file_load("/nonexistent/tariff.json", &t, &err);
        ok(r == -ENOENT && err && strstr(err, "/nonexistent/tariff.json"), "own format: a missing file is named");
        free(err);
}

static char *urdb_error(const char *json) {
        Tariff **list = NULL;
        size_t n = 0;
        char *err = NULL;
        int r = tariff_urdb_parse(json, strlen(json), "urdb.json", &list, &n, &err);
        tariff_list_free(list, n);
        if (r >= 0) {
                free(err);
                return strdup("(accepted)");
        }
        return err ? err : strdup("(no message)");
}

/* A small item around one replaced field: {"items":[{... FIELDS}]}. */
static void urdb_refused(const char *fields, const char *want, const char *name) {
        GString *s = g_string_new("{\"items\":[{\"name\":\"r\"");
        if (!strstr(fields, "energyratestructure"))
                g_string_append(s, ",\"energyratestructure\":[[{\"rate\":0.1}]]");
        for (int w = 0; w < 2; w++) {
                g_string_append_printf(s, ",\"%s\":[", w ? "energyweekendschedule" : "energyweekdayschedule");
                for (int m = 0; m < 12; m++)
                        g_string_append_printf(s, "%s[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]", m ? "," : "");
                g_string_append(s, "]");
        }
        g_string_append_printf(s, "%s%s}]}", fields[0] ? "," : "", fields);
        char *err = urdb_error(s->str);
        if (!ok(strstr(err, want) != NULL, "URDB refuses %s", name))
                diag("message: %s\n#  wanted: %s", err, want);
        free(err);
        g_string_free(s, true);
}

static void test_urdb(void) {
        /* The minimal item is accepted (the baseline of the refusals). */
        urdb_refused("", "(accepted)", "nothing in a minimal item");
        urdb_refused("\"usenetmetering\":true", "urdb.json: items[0].usenetmetering: not supported",
                     "net metering, by name");
        urdb_refused("\"energyratestructure\":[[{\"rate\":0.1,\"unit\":\"kWh/kW\"}]]",
                     "urdb.json: items[0].energyratestructure[0][0].unit: expected kWh or kWh daily",
                     "kWh/kW tiers, by path");
        urdb_refused("\"energyratestructure\":[[{\"max\":100,\"rate\":0.1},{\"rate\":0.2,\"sell\":0.05}]]",
                     "items[0].energyratestructure[0][1].sell: not supported", "sell rates");
        urdb_refused("\"fixedchargefirstmeter\":5,\"fixedchargeunits\":\"$/week\"",
                     "items[0].fixedchargeunits: expected $/month, $/day or $/year", "a fixed charge per week");
        urdb_refused("\"coincidentratestructure\":[[{\"rate\":3}]]", "items[0].coincidentratestructure: not supported",
                     "coincident demand");
        urdb_refused("\"demandratchetpercentage\":[0,0,0,0,0,0,0,0.8,0,0,0,0]",
                     "items[0].demandratchetpercentage: not supported", "demand ratchets");
        urdb_refused("\"flatdemandstructure\":[[{\"rate\":2}]],\"flatdemandmonths\":[0,0,0]",
                     "items[0].flatdemandmonths: expected 12 to 12 entries, got 3", "a short month list");
        urdb_refused("\"demandunits\":\"kVA\"", "items[0].demandunits: expected kW", "demand in kVA");
        urdb_refused("\"enddate\":1000,\"startdate\":2000", "items[0].enddate: expected a time after startdate",
                     "an end before the start");
        urdb_refused("\"energyratestructure\":[[{\"max\":100,\"rate\":0.1,\"unit\":\"kWh daily\"},{\"rate\":0.2}]]",
                     "items[0].energyratestructure[0][1].unit: expected the same unit", "mixed tier units");

        char *err = urdb_error("{\"items\":[{\"name\":\"r\",\"energyratestructure\":[[{\"rate\":0.1}]],"
                               "\"energyweekdayschedule\":[[0,0,0,0,0,0,0,0,0,0,0,0,0,0,7,0,0,0,0,0,0,0,0,0]]}]}");
        ok(strstr(err, "items[0].energyweekdayschedule: expected 12 to 12 entries") != NULL,
           "URDB refuses a schedule that is not 12 x 24");
        free(err);
        GString *s = g_string_new("{\"name\":\"r\",\"energyratestructure\":[[{\"rate\":0.1}]],\"energyweekendschedule\":[");
        for (int m = 0; m < 12; m++)
                g_string_append_printf(s, "%s[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]", m ? "," : "");
        g_string_append(s, "],\"energyweekdayschedule\":[");
        for (int m = 0; m < 12; m++)
                g_string_append_printf(s, "%s[0,0,0,0,0,0,0,0,0,0,0,0,0,0,%d,0,0,0,0,0,0,0,0,0]", m ? "," : "", m == 3 ? 1 : 0);
        g_string_append(s, "]}");
        err = urdb_error(s->str);
        ok(strstr(err, "urdb.json: energyweekdayschedule[3][14]: expected an integer from 0 to 0") != NULL,
           "URDB: one item without items, a period index out of range named by path");
        if (!strstr(err, "energyweekdayschedule[3][14]"))
                diag("message: %s", err);
        free(err);
        g_string_free(s, true);
}

static void test_csv(void) {
        const char *csv = "\xef\xbb\xbfstart,energy_wh\r\n"
                          "2024-03-31T01:00:00+01:00,100\r\n"
                          "\"2024-03-31T03:00:00+02:00\", 250.5\r\n"
                          "2024-03-31T02:30:00Z,0.001\r\n\r\n";
        CostInterval *iv = NULL;
        size_t n = 0;
        char *err = NULL;
        int r = energy_csv_parse(csv, strlen(csv), "use.csv", &iv, &n, &err);
        if (ok(r == 0 && n == 3, "CSV: header, BOM, CRLF, quotes and a blank line")) {
                /* 01:00 CET = 00:00Z; 03:00 CEST = 01:00Z; 02:30Z */
                is_int(iv[0].end_ms - iv[0].start_ms, 3600000, "CSV: a row runs to the next row's start");
                is_int(iv[1].energy_mwh, 250500, "CSV: 250.5 Wh = 250500 mWh, no floating point");
                is_int(iv[2].end_ms - iv[2].start_ms, 5400000, "CSV: the last row as long as the one before");
                is_int(iv[2].energy_mwh, 1, "CSV: 0.001 Wh");
        } else
                diag("%s", err ? err : "?");
        free(iv);
        free(err);

        static const struct {
                const char *csv, *want;
        } bad[] = {
                { "2024-01-01T00:00:00Z,1\n2024-01-01T01:00:00,1\n", "use.csv:2: start: expected an RFC 3339 time" },
                { "2024-01-01T00:00:00Z,1\n2024-01-01T00:00:00Z,1\n", "use.csv:2: start: expected a time after" },
                { "2024-01-01T00:00:00Z,1\n2024-01-01T01:00:00Z,-1\n", "use.csv:2: energy_wh: expected a number" },
                { "2024-01-01T00:00:00Z,1.2345\n2024-01-01T01:00:00Z,1\n", "use.csv:1: energy_wh: expected a number of Wh >= 0 with at most 3 decimals" },
                { "2024-01-01T00:00:00Z,1\n", "use.csv:1: expected at least two rows" },
                { "start,energy_wh\n", "expected at least two rows" },
                { "2024-01-01T00:00:00Z\n", "use.csv:1: expected two fields" },
                { "2024-01-01T00:00:00Z,1,2\n", "use.csv:1: expected two fields" },
                { "2024-01-01T00:00:00Z,99999999999999\n2024-01-01T01:00:00Z,1\n", "use.csv:1: energy_wh: expected at most 1 GWh" },
                { "x,y\n", "use.csv:1: start: expected an RFC 3339 time" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                err = NULL;
                iv = NULL;
                r = energy_csv_parse(bad[i].csv, strlen(bad[i].csv), "use.csv", &iv, &n, &err);
                if (!ok(r == -EBADMSG && err && strstr(err, bad[i].want), "CSV refuses bad input %zu with its line", i))
                        diag("message: %s\n#  wanted: %s", err ? err : "(none)", bad[i].want);
                free(err);
                free(iv);
        }
}

static void test_currencies(void) {
        is_int(tariff_currency_digits("EUR"), 2, "currency: EUR has 2 digits");
        is_int(tariff_currency_digits("JPY"), 0, "currency: JPY has none");
        is_int(tariff_currency_digits("KWD"), 3, "currency: KWD has 3");
        is_int(tariff_currency_digits("eur"), -EINVAL, "currency: codes are upper case");
        is_int(tariff_currency_digits("XYZ"), -EINVAL, "currency: unknown codes refused");
}

/* Every example of kasamond-tariff(5) loads, so the page stays true. */
static void test_man_examples(const char *path) {
        gchar *text = NULL;
        unsigned n = 0;
        if (!ok(g_file_get_contents(path, &text, NULL, NULL), "man page readable"))
                return;
        for (char *p = text; (p = strstr(p, "```\n{"));) {
                p += 4;
                char *end = strstr(p, "\n```");
                if (!end)
                        break;
                Tariff *t = NULL;
                char *err = NULL;
                int r = tariff_file_parse(p, (size_t) (end - p), "example", &t, &err);
                if (!ok(r == 0, "kasamond-tariff(5) example %u loads", ++n))
                        diag("%s", err ? err : "?");
                free(err);
                tariff_free(t);
                p = end;
        }
        ok(n == 5, "kasamond-tariff(5) has its five examples (%u)", n);
        g_free(text);
}

int main(int argc, char **argv) {
        if (argc != 2) {
                fprintf(stderr, "usage: test-tariff kasamond-tariff.5.scd\n");
                return 2;
        }
        test_man_examples(argv[1]);
        test_own_format();
        test_urdb();
        test_csv();
        test_currencies();
        return done_testing();
}
