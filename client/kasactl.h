/* SPDX-License-Identifier: MIT */
#pragma once

/* What the verb files of kasactl share: the parsed options, devices as the
 * bus shows them, calls to kasamond and their errors, table and JSON output.
 * Each verb group lives in a kasactl-<group>.c of its own; kasactl.c holds
 * the verb table, the options and main(). */

#include <jansson.h>
#include <libsmartcols.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-bus.h>

#include "macro.h"

typedef enum JsonMode {
        JSON_OFF,
        JSON_SHORT,
        JSON_PRETTY,
} JsonMode;

extern JsonMode arg_json;
extern bool arg_legend;
extern bool arg_ask_password;
extern bool arg_no_ask_password;
extern bool arg_colors;
extern double arg_timeout;
extern const char *arg_since;
extern const char *arg_until;
extern const char *arg_resolution;
extern const char *arg_by;
extern const char *arg_name;
extern const char *arg_role;
extern const char *arg_expires;
extern bool arg_cancel;
extern const char *arg_at;
extern const char *arg_sun_event;  /* "sunrise", "sunset", "civil-dawn", "civil-dusk" */
extern const char *arg_sun_offset; /* NULL: at the event */
extern const char *arg_random;
extern bool arg_persistent;
extern const char *arg_date;
extern const char *arg_location;
extern const char *arg_tariff;
extern const char *arg_energy;
extern const char *arg_time_zone;
extern const char *arg_format;
extern const char *arg_fields;
extern const char *arg_threshold;
extern const char *arg_for;
extern const char *arg_cooldown;
extern bool arg_costs;

DEFINE_TRIVIAL_CLEANUP_FUNC(struct libscols_table *, scols_unref_table);
DEFINE_TRIVIAL_CLEANUP_FUNC(FILE *, fclose);

static inline bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

/* "1 sample", "2 samples". */
static inline const char *plural(size_t n, const char *one, const char *many) {
        return n == 1 ? one : many;
}

/* ---- devices, as the bus shows them ---- */

typedef struct Device {
        char *path;
        char *id;
        char *alias;
        char *model;
        char *address;
        char *mac;
        char *hw_ver;
        char *fw_ver;
        char *parent; /* object path, "/" for plugs and strips */
        bool on;
        bool online;
        bool metered;
        uint64_t last_seen;
        int32_t rssi;
        char *protocol;    /* "xor/iot", "klap2/iot"... */
        char *auth_state;  /* "none", "unknown", "ok", "failed" */
        char *auth_message;
        /* NAN until the bus gave a value; an offline device has none. */
        double power;
        double voltage;
        double current;
        double energy_total;
        double energy_today;
} Device;

/* A device of which nothing is known yet. */
#define DEVICE_NULL \
        { .power = NAN, .voltage = NAN, .current = NAN, .energy_total = NAN, .energy_today = NAN }

typedef struct DeviceList {
        Device *devices;
        size_t n;
} DeviceList;

typedef struct DeviceProperty {
        const char *name;
        char type;
        size_t offset;
        const char *unit; /* for 'd' */
} DeviceProperty;

void device_done(Device *d);
void device_list_done(DeviceList *l);
const char *device_name(const Device *d);
/* Whether a reading (power, voltage, current) is known now: an offline
 * device has none, whatever the bus still holds. */
bool device_reading_known(const Device *d, double v);
int device_read_property(Device *d, const char *name, sd_bus_message *m, const DeviceProperty **ret);
/* Reads the device of one object ("oa{sa{sv}}" entered past the path, at
 * the a{sa{sv}}); returns 1 if the object is a device, 0 if not. */
int device_read_interfaces(Device *d, sd_bus_message *m);
Device *device_list_by_path(DeviceList *l, const char *path);
/* The plug or strip at "ip" or "ip:port" (the port defaults to 9999). */
Device *device_list_by_address(DeviceList *l, const char *address);
/* Adds d to the list, keeping it sorted by id; takes its fields. */
int device_list_insert(DeviceList *l, Device *d);
void device_list_remove(DeviceList *l, const char *path);
const char *parent_id(const DeviceList *l, const Device *d);
/* Whether d's energy counts in a sum over devices: metered, and not an
 * outlet of a strip whose meter already sums it. */
bool device_in_total(const DeviceList *l, const Device *d);

/* GetManagedObjects, entered at its array; a failed call is logged and
 * leaves *ret NULL (a failure to enter it does not: the caller's parse
 * error says so). */
int get_managed_objects(sd_bus *bus, const char *what, sd_bus_message **ret);
int fetch_devices(sd_bus *bus, DeviceList *ret);
int resolve_device(DeviceList *l, const char *name, Device **ret);
/* fetch_devices() and resolve_device(): the one device a verb acts on, *ret
 * pointing into *ret_list. */
int fetch_device(sd_bus *bus, const char *name, DeviceList *ret_list, Device **ret);

/* ---- talking to kasamond ---- */

int log_call_error(const sd_bus_error *e, int r, const char *what, const char *action, const Device *d);
/* Calls m; a failure goes to log_call_error(), its what formatted from
 * what_fmt only then ("rename %s": "Failed to rename Lamp: ..."). */
_printf_(6, 7) int call_kasamond(sd_bus *bus, sd_bus_message *m, const char *action, const Device *d,
                                 sd_bus_message **ret_reply, const char *what_fmt, ...);
int new_call(sd_bus *bus, const char *path, const char *iface, const char *member, bool mutating,
             sd_bus_message **ret);
int get_total_power(sd_bus *bus, double *ret);
/* The daemon's Describe() objects, the one JSON schema of a device. */
int describe_manager(sd_bus *bus, json_t **ret);
int describe_device(sd_bus *bus, const Device *d, json_t **ret);

/* ---- output ---- */

int json_print(json_t *o);
/* A member of a Describe() object: "" and 0 when absent or of another type. */
const char *json_str(const json_t *o, const char *key);
uint64_t json_u64(const json_t *o, const char *key);
json_t *json_reading(double v);
json_t *json_time(uint64_t t);
const char *format_energy(char *buf, size_t size, double wh, bool kwh);

typedef struct Column {
        const char *header;
        int flags; /* SCOLS_FL_* */
} Column;

struct libscols_table *table_new(const Column *cols, size_t n, FILE *f);
int table_print(struct libscols_table *tb);
_printf_(4, 5) int cell(struct libscols_line *ln, size_t i, const char *color, const char *fmt, ...);
/* A line for device i of the (id-sorted) list, below its strip's line. */
struct libscols_line *table_new_device_line(struct libscols_table *tb, const DeviceList *l, size_t i);
int cell_state(struct libscols_line *ln, size_t i, const Device *d);
int cell_online(struct libscols_line *ln, size_t i, const Device *d);
int cell_power(struct libscols_line *ln, size_t i, const Device *d);

/* Shared views: status (also drawn by watch) and show. */
int print_status(FILE *f, const DeviceList *l, double total_power);
void print_device(FILE *f, const DeviceList *l, const Device *d);

/* ---- tariffs and costs ---- */

/* kasamond-tariff(5): a tariff file is at most 1 MiB, a URDB answer 8 MiB
 * (the most for a text that may be either). Larger files are refused
 * here, naming the file, before anything is sent. */
#define TARIFF_FILE_MAX (1024 * 1024)
#define TARIFF_TEXT_MAX (8 * 1024 * 1024)

/* --since and --until, with the default since; errors name the option. */
int parse_range(uint64_t default_since, uint64_t now, uint64_t *ret_since, uint64_t *ret_until);
/* A whole text file of at most max bytes, without NUL bytes; errors name it. */
int read_text_file(const char *path, size_t max, char **ret);
int append_file_text(sd_bus_message *m, const char *path, const char *text);
/* Calls m; InvalidArgs about the tariff text is printed after the name of
 * file, about the energy CSV after csv (either may be NULL). */
int call_with_file(sd_bus *bus, sd_bus_message *m, const char *action, const char *file, const char *csv,
                   sd_bus_message **ret_reply, const char *what);
/* The object path of the tariff with that id or name. */
int lookup_tariff_path(sd_bus *bus, const char *name, char **ret);
/* The bill JSON of GetCost, GetCostWith or PriceEnergy, as tables or JSON;
 * l names the devices' strips. */
int print_cost_reply(sd_bus_message *reply, const DeviceList *l);

/* ---- verbs ---- */

int verb_status(int argc, char **argv, void *userdata);
int verb_list(int argc, char **argv, void *userdata);
int verb_show(int argc, char **argv, void *userdata);
int verb_switch(int argc, char **argv, void *userdata);
int verb_rename(int argc, char **argv, void *userdata);
int verb_discover(int argc, char **argv, void *userdata);
int verb_add(int argc, char **argv, void *userdata);
int verb_remove(int argc, char **argv, void *userdata);
int verb_history(int argc, char **argv, void *userdata);
int verb_energy(int argc, char **argv, void *userdata);
int verb_backfill(int argc, char **argv, void *userdata);
int verb_watch(int argc, char **argv, void *userdata);
int verb_token(int argc, char **argv, void *userdata);
int verb_countdown(int argc, char **argv, void *userdata);
int verb_schedule(int argc, char **argv, void *userdata);
int verb_sun(int argc, char **argv, void *userdata);
int verb_costs(int argc, char **argv, void *userdata);
int verb_export(int argc, char **argv, void *userdata);
int verb_backup(int argc, char **argv, void *userdata);
int verb_restore(int argc, char **argv, void *userdata);
int verb_tariff_list(int argc, char **argv, void *userdata);
int verb_tariff_show(int argc, char **argv, void *userdata);
int verb_tariff_add(int argc, char **argv, void *userdata);
int verb_tariff_remove(int argc, char **argv, void *userdata);
int verb_tariff_activate(int argc, char **argv, void *userdata);
int verb_tariff_price(int argc, char **argv, void *userdata);
int verb_alert_list(int argc, char **argv, void *userdata);
int verb_alert_show(int argc, char **argv, void *userdata);
int verb_alert_add(int argc, char **argv, void *userdata);
int verb_alert_remove(int argc, char **argv, void *userdata);
int verb_alert_ack(int argc, char **argv, void *userdata);
int verb_alert_rules(int argc, char **argv, void *userdata);
int verb_complete_devices(int argc, char **argv, void *userdata);
int verb_complete_tariffs(int argc, char **argv, void *userdata);
