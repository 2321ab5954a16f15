/* SPDX-License-Identifier: MIT */

/* tariff list|show|add|import|remove|activate: the tariffs kasamond prices
 * energy with. (tariff price is in kasactl-costs.c, with the files read
 * and sent.) A couple of lines past 800: the verbs share the table
 * printers below them, and tariff price already lives elsewhere. */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <strings.h>

#include "kasa-dbus.h"
#include "kasactl.h"
#include "log.h"
#include "time-util.h"

/* ---- tariffs, as the bus shows them ---- */

typedef struct Tariff {
        char *path;
        char *id;
        char *name;
        char *utility;
        char *currency;
        uint64_t valid_from, valid_until;
        bool active;
        char **devices; /* object paths */
        size_t n_devices;
} Tariff;

typedef struct TariffList {
        Tariff *tariffs;
        size_t n;
} TariffList;

static void tariff_done(Tariff *t) {
        free(t->path);
        free(t->id);
        free(t->name);
        free(t->utility);
        free(t->currency);
        for (size_t i = 0; i < t->n_devices; i++)
                free(t->devices[i]);
        free(t->devices);
        *t = (Tariff) {};
}

static void tariff_list_done(TariffList *l) {
        for (size_t i = 0; i < l->n; i++)
                tariff_done(&l->tariffs[i]);
        free(l->tariffs);
        *l = (TariffList) {};
}

static int read_string(sd_bus_message *m, char type, char **field) {
        const char *s;
        char *copy;
        int r;

        r = sd_bus_message_read_basic(m, type, &s);
        if (r < 0)
                return r;
        copy = strdup(s);
        if (!copy)
                return -ENOMEM;
        free(*field);
        *field = copy;
        return 0;
}

static int read_paths(sd_bus_message *m, Tariff *t) {
        const char *p;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "o");
        while (r >= 0 && (r = sd_bus_message_read_basic(m, 'o', &p)) > 0) {
                char **n = reallocarray(t->devices, t->n_devices + 1, sizeof(char *));

                if (!n)
                        return -ENOMEM;
                t->devices = n;
                if (!(t->devices[t->n_devices] = strdup(p)))
                        return -ENOMEM;
                t->n_devices++;
        }
        return r < 0 ? r : sd_bus_message_exit_container(m);
}

/* One property of the Tariff interface, the message at its variant;
 * properties this client does not know (a newer daemon) are skipped. */
static int tariff_read_property(Tariff *t, const char *name, sd_bus_message *m) {
        static const struct {
                const char *name;
                const char *sig;
                size_t offset;
        } props[] = {
                { "Id", "s", offsetof(Tariff, id) },
                { "Name", "s", offsetof(Tariff, name) },
                { "Utility", "s", offsetof(Tariff, utility) },
                { "Currency", "s", offsetof(Tariff, currency) },
                { "ValidFrom", "t", offsetof(Tariff, valid_from) },
                { "ValidUntil", "t", offsetof(Tariff, valid_until) },
                { "Active", "b", offsetof(Tariff, active) },
                { "Devices", "ao", 0 },
        };
        int r;

        for (size_t i = 0; i < ELEMENTSOF(props); i++) {
                void *field = (uint8_t *) t + props[i].offset;

                if (!streq(props[i].name, name))
                        continue;
                r = sd_bus_message_enter_container(m, 'v', props[i].sig);
                if (r == -ENXIO)
                        break; /* a type we do not expect: skipped */
                if (r < 0)
                        return r;
                if (streq(props[i].sig, "s"))
                        r = read_string(m, 's', field);
                else if (streq(props[i].sig, "t"))
                        r = sd_bus_message_read_basic(m, 't', field);
                else if (streq(props[i].sig, "b")) {
                        int b;

                        r = sd_bus_message_read_basic(m, 'b', &b);
                        *(bool *) field = b;
                } else
                        r = read_paths(m, t);
                if (r < 0)
                        return r;
                return sd_bus_message_exit_container(m);
        }
        return sd_bus_message_skip(m, "v");
}

/* The tariff of one object ("a{sa{sv}}" of GetManagedObjects); 1 if the
 * object is a tariff. */
static int tariff_read_interfaces(Tariff *t, sd_bus_message *m) {
        bool is_tariff = false;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sa{sv}}");
        while (r >= 0 && (r = sd_bus_message_enter_container(m, 'e', "sa{sv}")) > 0) {
                const char *iface;

                r = sd_bus_message_read(m, "s", &iface);
                if (r >= 0 && streq(iface, KASA_TARIFF_IFACE)) {
                        is_tariff = true;
                        r = sd_bus_message_enter_container(m, 'a', "{sv}");
                        while (r >= 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                                const char *name;

                                r = sd_bus_message_read(m, "s", &name);
                                if (r >= 0)
                                        r = tariff_read_property(t, name, m);
                                if (r >= 0)
                                        r = sd_bus_message_exit_container(m);
                        }
                        if (r >= 0)
                                r = sd_bus_message_exit_container(m);
                } else if (r >= 0)
                        r = sd_bus_message_skip(m, "a{sv}");
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        return is_tariff && t->id;
}

/* Tariffs sorted by their id, a number. */
static int compare_tariffs(const void *a, const void *b) {
        const Tariff *x = a, *y = b;
        unsigned long long i = strtoull(x->id, NULL, 10), j = strtoull(y->id, NULL, 10);

        return i < j ? -1 : i > j ? 1 : strcmp(x->id, y->id);
}

static int fetch_tariffs(sd_bus *bus, TariffList *ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(tariff_list_done) TariffList l = {};
        int r;

        r = get_managed_objects(bus, "list tariffs", &reply);
        if (r < 0 && !reply)
                return r;
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "oa{sa{sv}}")) > 0) {
                _cleanup_(tariff_done) Tariff t = {};
                const char *path;

                r = sd_bus_message_read(reply, "o", &path);
                if (r >= 0)
                        r = tariff_read_interfaces(&t, reply);
                if (r > 0) {
                        Tariff *n = reallocarray(l.tariffs, l.n + 1, sizeof(Tariff));

                        if (!n || !(t.path = strdup(path)))
                                return log_oom();
                        l.tariffs = n;
                        l.tariffs[l.n++] = t;
                        t = (Tariff) {};
                }
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        if (r < 0)
                return log_error_errno(r, "Failed to parse the tariff list: %m");
        if (l.n > 0)
                qsort(l.tariffs, l.n, sizeof(Tariff), compare_tariffs);
        *ret = l;
        l = (TariffList) {};
        return 0;
}

/* ID is a tariff's id, its object path, or its name (any case). */
static int resolve_tariff(TariffList *l, const char *name, Tariff **ret) {
        Tariff *hit = NULL;
        size_t n = 0;

        for (size_t i = 0; i < l->n; i++)
                if (streq(l->tariffs[i].id, name) || streq(l->tariffs[i].path, name)) {
                        *ret = &l->tariffs[i];
                        return 0;
                }
        for (size_t i = 0; i < l->n; i++)
                if (l->tariffs[i].name && strcasecmp(l->tariffs[i].name, name) == 0) {
                        hit = &l->tariffs[i];
                        n++;
                }
        if (n == 1) {
                *ret = hit;
                return 0;
        }
        if (n > 1) {
                log_error("%zu tariffs are called '%s'; use the id (\"kasactl tariff list\" shows them).", n, name);
                return -ENOTUNIQ;
        }
        log_error("No tariff is called '%s'. \"kasactl tariff list\" shows every tariff with its id.", name);
        return -ENXIO;
}

int lookup_tariff_path(sd_bus *bus, const char *name, char **ret) {
        _cleanup_(tariff_list_done) TariffList l = {};
        Tariff *t;
        int r;

        r = fetch_tariffs(bus, &l);
        if (r >= 0)
                r = resolve_tariff(&l, name, &t);
        if (r < 0)
                return r;
        *ret = strdup(t->path);
        return *ret ? 0 : log_oom();
}

static const char *tariff_label(const Tariff *t, char *buf, size_t size) {
        snprintf(buf, size, "tariff %s (%s)", t->id, t->name && *t->name ? t->name : "no name");
        return buf;
}

/* "home", "home, Freezer", "Freezer": what the tariff prices now. */
static char *tariff_applies(const Tariff *t, DeviceList *devices) {
        char *s = strdup(t->active ? "home" : "");

        for (size_t i = 0; s && i < t->n_devices; i++) {
                Device *d = device_list_by_path(devices, t->devices[i]);
                char *n;

                if (asprintf(&n, "%s%s%s", s, *s ? ", " : "", d ? device_name(d) : t->devices[i]) < 0)
                        n = NULL;
                free(s);
                s = n;
        }
        return s;
}

static json_t *tariff_json(const Tariff *t, DeviceList *devices) {
        json_t *devs = json_array();

        for (size_t i = 0; devs && i < t->n_devices; i++) {
                Device *d = device_list_by_path(devices, t->devices[i]);

                json_array_append_new(devs, json_string(d ? d->id : t->devices[i]));
        }
        return json_pack("{s:s,s:s,s:s,s:s,s:s,s:o,s:o,s:b,s:o}", "id", t->id, "path", t->path, "name",
                         t->name ?: "", "utility", t->utility ?: "", "currency", t->currency ?: "", "valid_from",
                         json_time(t->valid_from), "valid_until", json_time(t->valid_until), "active", t->active,
                         "devices", devs);
}

int verb_tariff_list(int argc, char **argv, void *userdata) {
        static const Column cols[] = {
                { "ID", SCOLS_FL_RIGHT }, { "NAME", 0 },        { "UTILITY", 0 }, { "CURRENCY", 0 },
                { "VALID FROM", 0 },      { "VALID UNTIL", 0 }, { "PRICES", 0 },
        };
        _cleanup_(scols_unref_tablep) struct libscols_table *tb = NULL;
        _cleanup_(tariff_list_done) TariffList l = {};
        _cleanup_(device_list_done) DeviceList devices = {};
        int r;

        r = fetch_tariffs(userdata, &l);
        if (r >= 0)
                r = fetch_devices(userdata, &devices);
        if (r < 0)
                return r;
        if (arg_json != JSON_OFF) {
                _cleanup_(json_decrefp) json_t *a = json_array();

                for (size_t i = 0; a && i < l.n; i++)
                        if (json_array_append_new(a, tariff_json(&l.tariffs[i], &devices)) < 0)
                                return log_oom();
                return json_print(a);
        }
        if (l.n == 0) {
                if (arg_legend)
                        printf("No tariffs. Add one with \"kasactl tariff add FILE\" (see kasamond-tariff(5)).\n");
                return 0;
        }
        tb = table_new(cols, ELEMENTSOF(cols), stdout);
        if (!tb)
                return log_oom();
        for (size_t i = 0; i < l.n; i++) {
                const Tariff *t = &l.tariffs[i];
                struct libscols_line *ln = scols_table_new_line(tb, NULL);
                _cleanup_free_ char *applies = tariff_applies(t, &devices);
                char from[TIME_BUF_MAX], until[TIME_BUF_MAX];

                if (!ln || !applies || cell(ln, 0, NULL, "%s", t->id) < 0 || cell(ln, 1, NULL, "%s", t->name ?: "") < 0 ||
                    cell(ln, 2, NULL, "%s", t->utility && *t->utility ? t->utility : "-") < 0 ||
                    cell(ln, 3, NULL, "%s", t->currency ?: "") < 0 ||
                    cell(ln, 4, NULL, "%s", t->valid_from ? format_time(from, sizeof(from), t->valid_from, false) : "-") < 0 ||
                    cell(ln, 5, NULL, "%s", t->valid_until ? format_time(until, sizeof(until), t->valid_until, false) : "-") < 0 ||
                    cell(ln, 6, *applies ? "green" : NULL, "%s", *applies ? applies : "-") < 0)
                        return log_oom();
        }
        r = table_print(tb);
        if (r >= 0 && arg_legend)
                printf("\n%zu %s.\n", l.n, plural(l.n, "tariff", "tariffs"));
        return r;
}

/* A rate or amount of a tariff file as the daemon wrote it: a decimal
 * string as is, a number with the digits it has (at most 9 decimals). */
static const char *format_number(const json_t *v, char *buf, size_t size) {
        if (json_is_string(v))
                return json_string_value(v);
        if (json_is_integer(v)) {
                snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
                return buf;
        }
        if (json_is_real(v)) {
                char *e;

                snprintf(buf, size, "%.9f", json_real_value(v));
                e = buf + strlen(buf) - 1;
                while (*e == '0')
                        *e-- = 0;
                if (*e == '.')
                        *e = 0;
                return buf;
        }
        return "-";
}

/* A string, or a list of them joined: ["weekdays", "holidays"] ->
 * "weekdays,holidays". */
static char *join_strings(json_t *v) {
        json_t *e;
        size_t j;
        char *s;

        if (json_is_string(v))
                return strdup(json_string_value(v));
        if (!json_is_array(v))
                return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        s = strdup("");
        json_array_foreach(v, j, e) {
                char *n;

                if (!s || asprintf(&n, "%s%s%s", s, j ? "," : "", json_is_string(e) ? json_string_value(e) : "?") < 0)
                        n = NULL;
                free(s);
                s = n;
        }
        return s;
}

/* "weekdays 16:00-19:00, months 6-9": when a period or charge applies. */
static char *format_when(json_t *p) {
        static const char *const keys[] = { "season", "months", "days", "hours" };
        char *s = strdup("");

        for (size_t k = 0; s && k < ELEMENTSOF(keys); k++) {
                json_t *v = json_object_get(p, keys[k]);
                _cleanup_free_ char *text = NULL;
                char *n;

                if (!v)
                        continue;
                text = join_strings(v);
                if (!text || asprintf(&n, "%s%s%s%s%s", s, *s ? ", " : "", streq(keys[k], "months") ? "months " : "",
                                      streq(keys[k], "season") ? "season " : "", text) < 0)
                        n = NULL;
                free(s);
                s = n;
        }
        if (s && !*s) {
                free(s);
                s = strdup("always");
        }
        return s;
}

/* "0.11 up to 500, 0.14 up to 1000, 0.19 above" or "0.3215". */
static char *format_rates(json_t *p, const char *limit_key) {
        json_t *tiers = json_object_get(p, "tiers"), *tier;
        char buf[64], lim[64];
        char *s;
        size_t i;

        if (!json_is_array(tiers))
                return strdup(format_number(json_object_get(p, "rate"), buf, sizeof(buf)));
        s = strdup("");
        json_array_foreach(tiers, i, tier) {
                json_t *up = json_object_get(tier, limit_key);
                char *n;

                if (asprintf(&n, "%s%s%s%s%s", s, i > 0 ? ", " : "", format_number(json_object_get(tier, "rate"), buf, sizeof(buf)),
                             up ? " up to " : json_array_size(tiers) > 1 ? " above" : "",
                             up ? format_number(up, lim, sizeof(lim)) : "") < 0)
                        n = NULL;
                free(s);
                s = n;
                if (!s)
                        break;
        }
        return s;
}

static int add_charge_lines(struct libscols_table *tb, const char *kind, json_t *list, const char *limit_key,
                            const char *unit) {
        json_t *p;
        size_t i;

        json_array_foreach(list, i, p) {
                struct libscols_line *ln = scols_table_new_line(tb, NULL);
                json_t *name = json_object_get(p, "name");
                _cleanup_free_ char *when = format_when(p), *rates = format_rates(p, limit_key);

                if (!ln || !when || !rates || cell(ln, 0, NULL, "%s", kind) < 0 ||
                    cell(ln, 1, NULL, "%s", json_is_string(name) ? json_string_value(name) : "") < 0 ||
                    cell(ln, 2, NULL, "%s", when) < 0 || cell(ln, 3, NULL, "%s", rates) < 0 ||
                    cell(ln, 4, NULL, "%s", unit) < 0)
                        return log_oom();
        }
        return 0;
}

/* The tariff as a person reads it; --json prints Describe() whole. */
static int print_tariff(json_t *o, const Tariff *t, DeviceList *devices) {
        static const Column cols[] = {
                { "LINE", 0 }, { "NAME", 0 }, { "WHEN", 0 }, { "RATE", 0 }, { "PER", 0 },
        };
        _cleanup_(scols_unref_tablep) struct libscols_table *tb = table_new(cols, ELEMENTSOF(cols), stdout);
        _cleanup_free_ char *applies = tariff_applies(t, devices);
        json_t *v, *a;
        char from[TIME_BUF_MAX], until[TIME_BUF_MAX], buf[64];
        const char *cur = t->currency ?: "";
        size_t i;
        int r;

        if (!tb || !applies)
                return log_oom();
        printf("         Id: %s\n       Name: %s\n", t->id, t->name ?: "");
        if (t->utility && *t->utility)
                printf("    Utility: %s\n", t->utility);
        printf("   Currency: %s\n      Valid: %s to %s\n     Prices: %s\n", cur,
               t->valid_from ? format_time(from, sizeof(from), t->valid_from, false) : "always",
               t->valid_until ? format_time(until, sizeof(until), t->valid_until, false) : "no end",
               *applies ? applies : "nothing now");
        /* Whom it priced since when: { "device": id or null (the home), "since": usec }. */
        a = json_object_get(o, "assignments");
        json_array_foreach(a, i, v) {
                json_t *dev = json_object_get(v, "device");
                const char *name = "the home";
                char since[TIME_BUF_MAX];

                for (size_t k = 0; json_is_string(dev) && k < devices->n; k++)
                        if (streq(devices->devices[k].id, json_string_value(dev)))
                                name = device_name(&devices->devices[k]);
                if (json_is_string(dev) && streq(name, "the home"))
                        name = json_string_value(dev);
                printf("%s %s from %s\n", i == 0 ? "   Assigned:" : "            ", name,
                       format_time(since, sizeof(since), (uint64_t) json_integer_value(json_object_get(v, "since")),
                                   false));
        }
        v = json_object_get(o, "notes");
        if (json_is_string(v) && *json_string_value(v))
                printf("      Notes: %s\n", json_string_value(v));
        v = json_object_get(o, "billing_cycle_start_day");
        if (json_is_integer(v))
                printf("      Cycle: from day %s of each month\n", format_number(v, buf, sizeof(buf)));
        putchar('\n');

        /* Rates per kWh (demand per kW) in the currency; tier limits in kWh
         * (kW) of the cycle, or of the day with "tiers_reset": "daily". */
        r = add_charge_lines(tb, "energy", json_object_get(o, "periods"), "up_to_kwh", "kWh");
        if (r >= 0)
                r = add_charge_lines(tb, "adder", json_object_get(o, "adders"), "up_to_kwh", "kWh");
        if (r >= 0)
                r = add_charge_lines(tb, "demand", json_object_get(json_object_get(o, "demand"), "charges"),
                                     "up_to_kw", "kW");
        json_array_foreach(json_object_get(o, "fixed"), i, v) {
                struct libscols_line *ln = scols_table_new_line(tb, NULL);
                json_t *name = json_object_get(v, "name"), *per = json_object_get(v, "per");

                if (!ln || cell(ln, 0, NULL, "fixed") < 0 ||
                    cell(ln, 1, NULL, "%s", json_is_string(name) ? json_string_value(name) : "") < 0 ||
                    cell(ln, 2, NULL, "always") < 0 ||
                    cell(ln, 3, NULL, "%s", format_number(json_object_get(v, "amount"), buf, sizeof(buf))) < 0 ||
                    cell(ln, 4, NULL, "%s", json_is_string(per) ? json_string_value(per) : "") < 0)
                        return log_oom();
        }
        v = json_object_get(o, "minimum");
        if (json_is_object(v)) {
                struct libscols_line *ln = scols_table_new_line(tb, NULL);
                json_t *per = json_object_get(v, "per");

                if (!ln || cell(ln, 0, NULL, "minimum") < 0 || cell(ln, 2, NULL, "always") < 0 ||
                    cell(ln, 3, NULL, "%s", format_number(json_object_get(v, "amount"), buf, sizeof(buf))) < 0 ||
                    cell(ln, 4, NULL, "%s", json_is_string(per) ? json_string_value(per) : "") < 0)
                        return log_oom();
        }
        json_array_foreach(json_object_get(o, "taxes"), i, v) {
                struct libscols_line *ln = scols_table_new_line(tb, NULL);
                json_t *name = json_object_get(v, "name"), *on = json_object_get(v, "on");
                _cleanup_free_ char *lines = on ? join_strings(on) : strdup("all lines");

                if (!ln || !lines || cell(ln, 0, NULL, "tax") < 0 ||
                    cell(ln, 1, NULL, "%s", json_is_string(name) ? json_string_value(name) : "") < 0 ||
                    cell(ln, 2, NULL, "on %s", lines) < 0 ||
                    cell(ln, 3, NULL, "%s", format_number(json_object_get(v, "percent"), buf, sizeof(buf))) < 0 ||
                    cell(ln, 4, NULL, "percent") < 0)
                        return log_oom();
        }
        if (r < 0)
                return r;
        return table_print(tb);
}

int verb_tariff_show(int argc, char **argv, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(tariff_list_done) TariffList l = {};
        _cleanup_(device_list_done) DeviceList devices = {};
        _cleanup_(json_decrefp) json_t *o = NULL;
        json_error_t e;
        const char *s;
        Tariff *t;
        int r;

        r = fetch_tariffs(userdata, &l);
        if (r >= 0)
                r = resolve_tariff(&l, argv[1], &t);
        if (r >= 0)
                r = fetch_devices(userdata, &devices);
        if (r < 0)
                return r;
        r = sd_bus_call_method(userdata, KASA_BUS_NAME, t->path, KASA_TARIFF_IFACE, "Describe", &error, &reply, NULL);
        if (r < 0)
                return log_call_error(&error, r, "describe the tariff", NULL, NULL);
        r = sd_bus_message_read(reply, "s", &s);
        if (r < 0)
                return log_error_errno(r, "Failed to parse the reply to Describe(): %m");
        o = json_loads(s, 0, &e);
        if (!o)
                return log_error_errno(EBADMSG, "kasamond's Tariff.Describe() is not JSON: %s", e.text);
        if (arg_json != JSON_OFF)
                return json_print(o);
        return print_tariff(o, t, &devices);
}

/* For the completion scripts: ids and names. */
int verb_complete_tariffs(int argc, char **argv, void *userdata) {
        _cleanup_(tariff_list_done) TariffList l = {};
        int r;

        r = fetch_tariffs(userdata, &l);
        if (r < 0)
                return r;
        for (size_t i = 0; i < l.n; i++) {
                printf("%s\n", l.tariffs[i].id);
                if (l.tariffs[i].name && *l.tariffs[i].name)
                        printf("%s\n", l.tariffs[i].name);
        }
        return 0;
}

/* After add or import: what was added, as "tariff list" shows it. */
static int print_added(sd_bus *bus, char **paths, size_t n) {
        _cleanup_(tariff_list_done) TariffList l = {};
        _cleanup_(device_list_done) DeviceList devices = {};
        _cleanup_(json_decrefp) json_t *a = json_array();
        const Tariff *last = NULL;
        int r;

        r = fetch_tariffs(bus, &l);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                Tariff *t = NULL;

                for (size_t j = 0; j < l.n; j++)
                        if (streq(l.tariffs[j].path, paths[i]))
                                t = &l.tariffs[j];
                if (!t)
                        return log_error_errno(ENXIO, "kasamond added %s, but does not list it.", paths[i]);
                last = t;
                if (arg_json != JSON_OFF) {
                        if (!a || json_array_append_new(a, tariff_json(t, &devices)) < 0)
                                return log_oom();
                } else
                        printf("Added tariff %s (%s, %s).\n", t->id, t->name ?: "", t->currency ?: "");
        }
        if (arg_json != JSON_OFF)
                return json_print(a);
        if (n == 1)
                printf("\"kasactl tariff activate %s\" makes it price the home.\n", last->id);
        else if (n > 1)
                printf("\"kasactl tariff activate ID\" makes one of them price the home.\n");
        return 0;
}

/* add FILE (kasamond-tariff(5)) and import FILE (OpenEI URDB JSON). */
int verb_tariff_add(int argc, char **argv, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_free_ char *text = NULL, *what = NULL;
        bool urdb = streq(argv[0], "import");
        char *paths[100];
        size_t n = 0;
        const char *p;
        int r;

        r = read_text_file(argv[1], urdb ? TARIFF_TEXT_MAX : TARIFF_FILE_MAX, &text);
        if (r < 0)
                return r;
        r = new_call(userdata, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, urdb ? "ImportTariff" : "AddTariff", true, &m);
        if (r < 0)
                return log_error_errno(r, "Failed to build the call: %m");
        r = append_file_text(m, argv[1], text);
        if (r < 0)
                return r;
        if (asprintf(&what, "%s the tariff%s of %s", urdb ? "import" : "add", urdb ? "s" : "", argv[1]) < 0)
                return log_oom();
        r = call_with_file(userdata, m, KASA_ACTION_MANAGE_TARIFFS, argv[1], NULL, &reply, what);
        if (r < 0)
                return r;
        if (!urdb) {
                r = sd_bus_message_read(reply, "o", &p);
                if (r >= 0)
                        paths[n++] = (char *) p;
        } else {
                r = sd_bus_message_enter_container(reply, 'a', "o");
                while (r >= 0 && n < ELEMENTSOF(paths) && (r = sd_bus_message_read_basic(reply, 'o', &p)) > 0)
                        paths[n++] = (char *) p;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to parse the reply: %m");
        return print_added(userdata, paths, n);
}

int verb_tariff_remove(int argc, char **argv, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(tariff_list_done) TariffList l = {};
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        char label[256];
        Tariff *t;
        int r;

        r = fetch_tariffs(userdata, &l);
        if (r >= 0)
                r = resolve_tariff(&l, argv[1], &t);
        if (r < 0)
                return r;
        tariff_label(t, label, sizeof(label));
        r = new_call(userdata, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "RemoveTariff", true, &m);
        if (r >= 0)
                r = sd_bus_message_append(m, "o", t->path);
        if (r < 0)
                return log_error_errno(r, "Failed to build the call: %m");
        r = sd_bus_call(userdata, m, 0, &error, NULL);
        if (r < 0 && sd_bus_error_has_name(&error, KASA_ERROR_IN_USE)) {
                log_error("Failed to remove %s: %s\nA tariff that was assigned to the home or a device is kept, "
                          "so that past costs stay priced as they were.",
                          label, error.message ?: error.name);
                return -EBUSY;
        }
        if (r < 0) {
                _cleanup_free_ char *what = NULL;

                if (asprintf(&what, "remove %s", label) < 0)
                        return log_oom();
                return log_call_error(&error, r, what, KASA_ACTION_MANAGE_TARIFFS, NULL);
        }
        if (arg_json != JSON_OFF) {
                _cleanup_(json_decrefp) json_t *o = json_pack("{s:s,s:s}", "id", t->id, "name", t->name ?: "");
                return json_print(o);
        }
        return 0;
}

int verb_tariff_activate(int argc, char **argv, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(tariff_list_done) TariffList l = {};
        _cleanup_(device_list_done) DeviceList devices = {};
        _cleanup_free_ Device **devs = NULL;
        _cleanup_free_ char *whom = strdup("");
        uint64_t now = now_usec(), since = 0;
        bool home = streq(argv[1], "home");
        char label[256], when[TIME_BUF_MAX];
        Tariff *t = NULL;
        int r;

        if (!whom)
                return log_oom();
        if (arg_since && parse_time(arg_since, now, &since) < 0)
                return log_error_errno(EINVAL, "Invalid --since='%s': use e.g. 2026-11-27, \"2026-11-27 08:00\" or -7d.",
                                       arg_since);
        if (since == 0)
                since = now;
        /* Assignments start at a whole minute (org.kasamond.Kasa1(5)): so
         * does the time the message below names. */
        since -= since % USEC_PER_MINUTE;
        if (home && argc < 3)
                return log_error_errno(EINVAL, "\"kasactl tariff activate home DEV...\" gives devices back to the "
                                               "home's tariff: name at least one device.");
        r = fetch_tariffs(userdata, &l);
        if (r >= 0 && !home)
                r = resolve_tariff(&l, argv[1], &t);
        if (r >= 0 && argc > 2)
                r = fetch_devices(userdata, &devices);
        if (r < 0)
                return r;
        devs = calloc(argc, sizeof(Device *));
        if (!devs)
                return log_oom();
        /* Every name is resolved before anything changes. */
        for (int i = 2; i < argc; i++) {
                char *n;

                r = resolve_device(&devices, argv[i], &devs[i - 2]);
                if (r < 0)
                        return r;
                if (!devs[i - 2]->metered) {
                        log_error("%s has no energy meter, so there is nothing to price.", device_name(devs[i - 2]));
                        return -EMEDIUMTYPE;
                }
                if (asprintf(&n, "%s%s%s", whom, i > 2 ? ", " : "", device_name(devs[i - 2])) < 0)
                        return log_oom();
                free(whom);
                whom = n;
        }
        if (home)
                snprintf(label, sizeof(label), "the home's tariff");
        else
                tariff_label(t, label, sizeof(label));

        r = new_call(userdata, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "ActivateTariff", true, &m);
        if (r >= 0)
                r = sd_bus_message_append(m, "o", home ? "/" : t->path);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "o");
        for (int i = 2; r >= 0 && i < argc; i++)
                r = sd_bus_message_append(m, "o", devs[i - 2]->path);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_append(m, "t", since);
        if (r < 0)
                return log_error_errno(r, "Failed to build the call: %m");
        r = call_kasamond(userdata, m, KASA_ACTION_MANAGE_TARIFFS, NULL, NULL, "activate %s", label);
        if (r < 0)
                return r;
        format_time(when, sizeof(when), since, false);
        if (arg_json != JSON_OFF) {
                _cleanup_(json_decrefp) json_t *a = json_array(), *o = NULL;

                for (int i = 2; a && i < argc; i++)
                        json_array_append_new(a, json_string(devs[i - 2]->id));
                o = json_pack("{s:o,s:O,s:o}", "tariff", home ? json_null() : json_string(t->id), "devices", a,
                              "since", json_time(since));
                return json_print(o);
        }
        if (home)
                printf("%s %s priced with the home's tariff from %s on.\n", whom, argc > 3 ? "are" : "is", when);
        else
                printf("Tariff %s (%s) prices %s from %s on.\n", t->id, t->name ?: "", argc > 2 ? whom : "the home",
                       when);
        return 0;
}
