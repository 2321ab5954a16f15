/* SPDX-License-Identifier: MIT */

/* costs and tariff price: what recorded energy cost, as kasamond's cost
 * engine bills it (GetCost, or GetCostWith for a tariff that is not
 * active), and what an energy series given as a file would cost
 * (PriceEnergy). Money is printed as the daemon's decimal strings, never
 * through a double. Files are read here and their text sent, so that
 * kasamond never opens a path a caller names. */

#include <errno.h>
#include <stdlib.h>

#include "kasa-dbus.h"
#include "kasactl.h"
#include "log.h"
#include "time-util.h"

/* energy-csv.h: an energy series is at most 64 MiB. */
#define ENERGY_FILE_MAX (64 * 1024 * 1024)

/* The names kasamond gives the texts it is sent, in front of its parsers'
 * messages ("tariff: periods[2].hours: expected ...", "csv:3: start: ..."):
 * a tariff file, a URDB one, an energy series. */
#define DAEMON_TARIFF_NAME "tariff"
#define DAEMON_URDB_NAME "urdb"
#define DAEMON_CSV_NAME "csv"

static const char *startswith(const char *s, const char *prefix) {
        size_t n = strlen(prefix);
        return strncmp(s, prefix, n) == 0 ? s + n : NULL;
}

int read_text_file(const char *path, size_t max, char **ret) {
        _cleanup_(fclosep) FILE *f = fopen(path, "re");
        _cleanup_free_ char *buf = NULL;
        size_t n = 0, size = 0;

        if (!f)
                return log_error_errno(errno, "Failed to open %s: %m", path);
        /* Grown as it fills, up to one byte past max to tell a file too
         * large, with room for the NUL. */
        while (n <= max) {
                size_t k;

                if (n + 1 >= size) {
                        size_t grow = MIN(MAX(size * 2, (size_t) 65536), max + 2);
                        char *nb = realloc(buf, grow);

                        if (!nb)
                                return log_oom();
                        buf = nb;
                        size = grow;
                }
                k = fread(buf + n, 1, size - 1 - n, f);
                n += k;
                if (k == 0 && ferror(f))
                        return log_error_errno(errno ?: EIO, "Failed to read %s: %m", path);
                if (k == 0)
                        break;
        }
        if (!buf && !(buf = malloc(1)))
                return log_oom();
        if (n > max)
                return log_error_errno(EFBIG, "%s: larger than %zu MiB, refused.", path, max / (1024 * 1024));
        if (memchr(buf, 0, n))
                return log_error_errno(EINVAL, "%s: contains a NUL byte; expected a text file.", path);
        buf[n] = 0;
        *ret = TAKE_PTR(buf);
        return 0;
}

/* The text of a file as a string argument: D-Bus strings are UTF-8, and
 * sd-bus checks it. */
int append_file_text(sd_bus_message *m, const char *path, const char *text) {
        int r = sd_bus_message_append(m, "s", text);

        if (r == -EINVAL)
                return log_error_errno(r, "%s: not UTF-8 text.", path);
        if (r < 0)
                return log_error_errno(r, "Failed to build the call: %m");
        return 0;
}

/* A call that sends the text of a tariff file and perhaps of an energy
 * CSV: kasamond's parse errors (InvalidArgs, "periods[2].hours: expected
 * ...") are printed after the name of the file they are about, as
 * kasamond-tariff(5) shows them. */
int call_with_file(sd_bus *bus, sd_bus_message *m, const char *action, const char *file, const char *csv,
                   sd_bus_message **ret_reply, const char *what) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *msg;
        int r;

        r = sd_bus_call(bus, m, 0, &error, ret_reply);
        if (r >= 0)
                return r;
        msg = error.message ?: error.name;
        if ((file || csv) && sd_bus_error_has_name(&error, SD_BUS_ERROR_INVALID_ARGS)) {
                const char *rest;

                if (csv && (rest = startswith(msg, DAEMON_CSV_NAME ":")))
                        log_error("%s:%s", csv, rest);
                else if (file && ((rest = startswith(msg, DAEMON_TARIFF_NAME ":")) ||
                                  (rest = startswith(msg, DAEMON_URDB_NAME ":"))))
                        log_error("%s:%s", file, rest);
                else
                        log_error("Failed to %s: %s", what, msg);
                return -EINVAL;
        }
        /* Costs without a tariff that prices anything: say how to get one. */
        if (sd_bus_error_has_name(&error, KASA_ERROR_NOT_FOUND)) {
                log_error("Failed to %s: %s\nAdd a tariff with \"kasactl tariff add FILE\" (see kasamond-tariff(5)) "
                          "and make it price the home with \"kasactl tariff activate ID\".",
                          what, msg);
                return -ENODATA;
        }
        return log_call_error(&error, r, what, action, NULL);
}

static const char *str(json_t *o, const char *key) {
        json_t *v = json_object_get(o, key);
        return json_is_string(v) ? json_string_value(v) : "";
}

/* A device of the bill by its name; an outlet with its strip's, since
 * every strip calls them "Outlet 1". */
static const char *device_label(const DeviceList *l, json_t *d, char *buf, size_t size) {
        const char *alias = str(d, "alias"), *name = *alias ? alias : str(d, "id");

        for (size_t i = 0; l && i < l->n; i++) {
                const Device *dev = &l->devices[i];

                if (!streq(dev->id, str(d, "id")) || streq(dev->parent, "/"))
                        continue;
                for (size_t j = 0; j < l->n; j++)
                        if (streq(l->devices[j].path, dev->parent)) {
                                snprintf(buf, size, "%s (%s)", name, device_name(&l->devices[j]));
                                return buf;
                        }
        }
        return name;
}

/* "2026-12-01" or "2026-12" from a bucket's local RFC 3339 start. */
static const char *bucket_label(json_t *bucket, char *buf, size_t size) {
        const char *s = str(bucket, "start");

        snprintf(buf, size, "%.*s", arg_by && streq(arg_by, "month") ? 7 : 10, s);
        return buf;
}

/* Whether a line of kind/name/tariff in some bucket of bill has a tier
 * past the first, so that the first is labelled as a tier too. */
static bool line_tiered(json_t *bill, json_t *line) {
        json_t *b, *l;
        size_t i, j;

        json_array_foreach(json_object_get(bill, "buckets"), i, b)
                json_array_foreach(json_object_get(b, "lines"), j, l)
                        if (json_integer_value(json_object_get(l, "tier")) > 0 &&
                            streq(str(l, "kind"), str(line, "kind")) && streq(str(l, "name"), str(line, "name")) &&
                            streq(str(l, "tariff"), str(line, "tariff")))
                                return true;
        return false;
}

static const char *unit_of(json_t *line, const char *currency, char *buf, size_t size) {
        const char *unit = str(line, "unit");

        if (streq(unit, "kWh") || streq(unit, "kW"))
                snprintf(buf, size, "%s %s/%s", str(line, "rate"), currency, unit);
        else if (streq(unit, "percent"))
                snprintf(buf, size, "%s %%", str(line, "rate"));
        else
                snprintf(buf, size, "%s %s", str(line, "rate"), currency);
        return buf;
}

/* The lines of every bucket of a bill, below parent. */
static int add_bill_lines(struct libscols_table *tb, struct libscols_line *parent, json_t *bill,
                          const char *currency) {
        json_t *b, *l;
        size_t i, j;

        json_array_foreach(json_object_get(bill, "buckets"), i, b)
                json_array_foreach(json_object_get(b, "lines"), j, l) {
                        struct libscols_line *ln = scols_table_new_line(tb, parent);
                        const char *unit = str(l, "unit"), *name = str(l, "name");
                        char item[256], rate[128];
                        json_t *tier = json_object_get(l, "tier");

                        if (json_is_integer(tier) && line_tiered(bill, l))
                                snprintf(item, sizeof(item), "%s%s%s, tier %lld", str(l, "kind"), *name ? ": " : "",
                                         name, (long long) json_integer_value(tier) + 1);
                        else
                                snprintf(item, sizeof(item), "%s%s%s", str(l, "kind"), *name ? ": " : "", name);
                        if (!ln || cell(ln, 0, NULL, "%s", item) < 0 || cell(ln, 1, NULL, "%s", str(l, "tariff")) < 0 ||
                            cell(ln, 2, NULL, "%s %s", str(l, "quantity"),
                                 streq(unit, "percent") ? currency : unit) < 0 ||
                            cell(ln, 3, NULL, "%s", unit_of(l, currency, rate, sizeof(rate))) < 0 ||
                            cell(ln, 4, NULL, "%s", str(l, "amount")) < 0)
                                return -ENOMEM;
                }
        return 0;
}

static struct libscols_line *add_sum_line(struct libscols_table *tb, const char *item, json_t *bill) {
        struct libscols_line *ln = scols_table_new_line(tb, NULL);

        if (!ln || cell(ln, 0, NULL, "%s", item) < 0 || cell(ln, 2, NULL, "%s kWh", str(bill, "energy_kwh")) < 0 ||
            cell(ln, 4, NULL, "%s", str(bill, "total")) < 0)
                return NULL;
        return ln;
}

/* A bill of the whole range: each line with its quantity, rate and amount,
 * the home's (or a bare bill's) first, then each device's. */
static int print_lines(json_t *o, const DeviceList *l) {
        static const Column cols[] = {
                { "ITEM", SCOLS_FL_TREE },       { "TARIFF", 0 },         { "QUANTITY", SCOLS_FL_RIGHT },
                { "RATE", SCOLS_FL_RIGHT },      { "AMOUNT", SCOLS_FL_RIGHT },
        };
        _cleanup_(scols_unref_tablep) struct libscols_table *tb = table_new(cols, ELEMENTSOF(cols), stdout);
        const char *currency = str(o, "currency");
        json_t *home = json_object_get(o, "home"), *devices = json_object_get(o, "devices"), *d;
        struct libscols_line *ln;
        size_t i;
        int r;

        if (!tb)
                return log_oom();
        if (!json_is_array(devices))
                r = add_bill_lines(tb, NULL, o, currency); /* a bare bill: tariff price */
        else {
                r = 0;
                if (json_is_object(home)) {
                        ln = add_sum_line(tb, "Home", home);
                        r = ln ? add_bill_lines(tb, ln, home, currency) : -ENOMEM;
                }
                json_array_foreach(devices, i, d) {
                        char label[256];

                        if (r < 0)
                                break;
                        ln = add_sum_line(tb, device_label(l, d, label, sizeof(label)), d);
                        r = ln ? add_bill_lines(tb, ln, d, currency) : -ENOMEM;
                }
        }
        if (r < 0)
                return log_oom();
        if (arg_legend) {
                ln = scols_table_new_line(tb, NULL);
                if (!ln || cell(ln, 0, NULL, "Total") < 0 || cell(ln, 2, NULL, "%s kWh", str(o, "energy_kwh")) < 0 ||
                    cell(ln, 4, NULL, "%s %s", str(o, "total"), currency) < 0)
                        return log_oom();
        }
        return table_print(tb);
}

/* A bare bill (tariff price) by day or month: one row per bucket with its
 * sums by kind of line. */
static int print_bill_buckets(json_t *o) {
        static const char *const kinds[] = { "energy", "adders", "fixed", "demand", "minimum", "tax" };
        static const char *const heads[] = { "ENERGY", "ADDERS", "FIXED", "DEMAND", "MINIMUM", "TAX" };
        _cleanup_(scols_unref_tablep) struct libscols_table *tb = table_new(NULL, 0, stdout);
        struct libscols_line *ln;
        json_t *b;
        size_t i;
        char buf[32];

        if (!tb || !scols_table_new_column(tb, streq(arg_by, "month") ? "MONTH" : "DAY", 0, 0) ||
            !scols_table_new_column(tb, "KWH", 0, SCOLS_FL_RIGHT))
                return log_oom();
        for (size_t k = 0; k < ELEMENTSOF(heads); k++)
                if (!scols_table_new_column(tb, heads[k], 0, SCOLS_FL_RIGHT))
                        return log_oom();
        if (!scols_table_new_column(tb, "TOTAL", 0, SCOLS_FL_RIGHT))
                return log_oom();
        json_array_foreach(json_object_get(o, "buckets"), i, b) {
                ln = scols_table_new_line(tb, NULL);
                if (!ln || cell(ln, 0, NULL, "%s", bucket_label(b, buf, sizeof(buf))) < 0 ||
                    cell(ln, 1, NULL, "%s", str(b, "energy_kwh")) < 0)
                        return log_oom();
                for (size_t k = 0; k < ELEMENTSOF(kinds); k++)
                        if (cell(ln, 2 + k, NULL, "%s", str(b, kinds[k])) < 0)
                                return log_oom();
                if (cell(ln, 2 + ELEMENTSOF(kinds), NULL, "%s", str(b, "total")) < 0)
                        return log_oom();
        }
        if (arg_legend) {
                ln = scols_table_new_line(tb, NULL);
                if (!ln || cell(ln, 0, NULL, "Total") < 0 || cell(ln, 1, NULL, "%s", str(o, "energy_kwh")) < 0)
                        return log_oom();
                for (size_t k = 0; k < ELEMENTSOF(kinds); k++)
                        if (cell(ln, 2 + k, NULL, "%s", str(o, kinds[k])) < 0)
                                return log_oom();
                if (cell(ln, 2 + ELEMENTSOF(kinds), NULL, "%s %s", str(o, "total"), str(o, "currency")) < 0)
                        return log_oom();
        }
        return table_print(tb);
}

/* Costs by day or month: a row per bucket with its total, and below it the
 * home's bill and each device's of that bucket. (A bucket's energy is not
 * the sum of the devices' rounded kWh, and the daemon's buckets carry
 * their totals only: the row leaves it out.) */
static int print_cost_buckets(json_t *o, const DeviceList *l) {
        static const Column cols[] = {
                { NULL, SCOLS_FL_TREE }, { "KWH", SCOLS_FL_RIGHT }, { "AMOUNT", SCOLS_FL_RIGHT },
        };
        _cleanup_(scols_unref_tablep) struct libscols_table *tb = NULL;
        json_t *devices = json_object_get(o, "devices"), *home = json_object_get(o, "home"), *b, *d;
        Column c[ELEMENTSOF(cols)];
        struct libscols_line *ln;
        size_t i, j;
        char buf[256];

        memcpy(c, cols, sizeof(c));
        c[0].header = streq(arg_by, "month") ? "MONTH" : "DAY";
        tb = table_new(c, ELEMENTSOF(c), stdout);
        if (!tb)
                return log_oom();
        json_array_foreach(json_object_get(o, "buckets"), i, b) {
                json_t *hb = json_array_get(json_object_get(home, "buckets"), i);

                ln = scols_table_new_line(tb, NULL);
                if (!ln || cell(ln, 0, NULL, "%s", bucket_label(b, buf, sizeof(buf))) < 0 ||
                    cell(ln, 2, NULL, "%s", str(b, "total")) < 0)
                        return log_oom();
                if (hb) {
                        struct libscols_line *c2 = scols_table_new_line(tb, ln);

                        if (!c2 || cell(c2, 0, NULL, "Home") < 0 || cell(c2, 1, NULL, "%s", str(hb, "energy_kwh")) < 0 ||
                            cell(c2, 2, NULL, "%s", str(hb, "total")) < 0)
                                return log_oom();
                }
                json_array_foreach(devices, j, d) {
                        json_t *db = json_array_get(json_object_get(d, "buckets"), i);
                        struct libscols_line *c2 = scols_table_new_line(tb, ln);

                        if (!c2 || cell(c2, 0, NULL, "%s", device_label(l, d, buf, sizeof(buf))) < 0 ||
                            cell(c2, 1, NULL, "%s", db ? str(db, "energy_kwh") : "-") < 0 ||
                            cell(c2, 2, NULL, "%s", db ? str(db, "total") : "-") < 0)
                                return log_oom();
                }
        }
        if (arg_legend) {
                ln = scols_table_new_line(tb, NULL);
                if (!ln || cell(ln, 0, NULL, "Total") < 0 || cell(ln, 1, NULL, "%s", str(o, "energy_kwh")) < 0 ||
                    cell(ln, 2, NULL, "%s %s", str(o, "total"), str(o, "currency")) < 0)
                        return log_oom();
        }
        return table_print(tb);
}

int print_cost_reply(sd_bus_message *reply, const DeviceList *l) {
        _cleanup_(json_decrefp) json_t *o = NULL;
        json_error_t e;
        const char *s;
        int r;

        r = sd_bus_message_read(reply, "s", &s);
        if (r < 0)
                return log_error_errno(r, "Failed to parse the reply: %m");
        o = json_loads(s, 0, &e);
        if (!json_is_object(o))
                return log_error_errno(EBADMSG, "kasamond's bill is not a JSON object: %s", e.text);
        if (arg_json != JSON_OFF)
                return json_print(o);
        if (arg_legend) {
                const char *from = str(o, "from"), *to = str(o, "to"), *tz = str(o, "time_zone");

                if (*from && *to)
                        printf("Costs from %s to %s", from, to);
                else
                        printf("Costs");
                if (*tz && !streq(tz, "local"))
                        printf(" (%s)", tz);
                printf(", in %s.\n\n", str(o, "currency"));
        }
        if (!arg_by)
                r = print_lines(o, l);
        else if (json_is_array(json_object_get(o, "devices")))
                r = print_cost_buckets(o, l);
        else
                r = print_bill_buckets(o);
        if (r >= 0 && arg_legend && json_is_array(json_object_get(o, "devices")))
                printf("\nA device on the home's tariff shows its share of the home's bill, counted once in the "
                       "total;\nfixed, demand and minimum charges are the home's.\n");
        if (r >= 0 && arg_legend && strpbrk(str(o, "unpriced_kwh"), "123456789"))
                printf("\n%s kWh were used at times no tariff prices; they are not in the total.\n",
                       str(o, "unpriced_kwh"));
        return r;
}

int verb_costs(int argc, char **argv, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(device_list_done) DeviceList l = {};
        _cleanup_free_ char *tariff = NULL;
        uint64_t now = now_usec(), since, until;
        bool is_file = false;
        int r;

        if (arg_by && !streq(arg_by, "day") && !streq(arg_by, "month"))
                return log_error_errno(EINVAL, "Invalid --by='%s': use day or month.", arg_by);
        /* By default this month so far, or the last 12 months by month. */
        r = parse_range(local_month_start(now, arg_by && streq(arg_by, "month") ? -11 : 0), now, &since, &until);
        if (r < 0)
                return r;
        r = fetch_devices(userdata, &l);
        if (r < 0)
                return r;
        /* --tariff: a tariff's id (digits) or object path, else a file. */
        if (arg_tariff) {
                is_file = arg_tariff[strspn(arg_tariff, "0123456789")] != 0 &&
                          strncmp(arg_tariff, KASA_TARIFF_PREFIX "/", strlen(KASA_TARIFF_PREFIX "/")) != 0;
                r = is_file ? read_text_file(arg_tariff, TARIFF_TEXT_MAX, &tariff)
                            : lookup_tariff_path(userdata, arg_tariff, &tariff);
                if (r < 0)
                        return r;
        }

        r = new_call(userdata, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, tariff ? "GetCostWith" : "GetCost", false, &m);
        if (r < 0)
                return log_error_errno(r, "Failed to build the call: %m");
        r = append_metered_paths(m, &l, argv + 1, argc - 1, "it has no costs");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "tts", since, until, arg_by ?: "");
        if (r < 0)
                return log_error_errno(r, "Failed to build the call: %m");
        if (tariff) {
                r = append_file_text(m, arg_tariff, tariff);
                if (r < 0)
                        return r;
        }
        r = call_with_file(userdata, m, NULL, is_file ? arg_tariff : NULL, NULL, &reply, "compute the costs");
        if (r < 0)
                return r;
        return print_cost_reply(reply, &l);
}

int verb_tariff_price(int argc, char **argv, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_free_ char *tariff = NULL, *csv = NULL, *what = NULL;
        int r;

        if (!arg_energy)
                return log_error_errno(EINVAL, "kasactl tariff price FILE needs --energy=CSV: the energy to price, "
                                               "rows of start,energy_wh.");
        if (arg_by && !streq(arg_by, "day") && !streq(arg_by, "month"))
                return log_error_errno(EINVAL, "Invalid --by='%s': use day or month.", arg_by);
        r = read_text_file(argv[1], TARIFF_TEXT_MAX, &tariff);
        if (r >= 0)
                r = read_text_file(arg_energy, ENERGY_FILE_MAX, &csv);
        if (r < 0)
                return r;
        r = new_call(userdata, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "PriceEnergy", false, &m);
        if (r < 0)
                return log_error_errno(r, "Failed to build the call: %m");
        r = append_file_text(m, argv[1], tariff);
        if (r >= 0)
                r = append_file_text(m, arg_energy, csv);
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "ss", arg_time_zone ?: "", arg_by ?: "");
        if (r < 0)
                return log_error_errno(r, "Failed to build the call: %m");
        if (asprintf(&what, "price %s with %s", arg_energy, argv[1]) < 0)
                return log_oom();
        r = call_with_file(userdata, m, NULL, argv[1], arg_energy, &reply, what);
        if (r < 0)
                return r;
        return print_cost_reply(reply, NULL);
}
