/* SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* The bridge's view of kasamond: every device object with its properties,
 * filled from GetManagedObjects when kasamond appears on the bus and kept
 * current by InterfacesAdded/Removed and PropertiesChanged. Reads never
 * poll the daemon; only history, energy and costs are asked for. */

typedef struct KasaDevice {
        char *path;
        char *id;
        char *alias;
        char *model;
        char *address;
        char *mac;
        char *hw_ver;
        char *sw_ver;
        char *parent; /* the strip's object path, NULL for plugs and strips */
        bool on;
        bool online;
        bool metered;
        uint64_t last_seen;
        int32_t rssi;
        /* The running countdown, as Countdown says: "" and 0 when none. */
        char countdown_action[8];
        uint64_t countdown_at;
        /* NaN while unknown, as on the bus. */
        double power, voltage, current;
        double energy_total, energy_today;
        /* NaN without a tariff, or while the daemon has no such property. */
        double cost_today, cost_month;
} KasaDevice;

typedef enum KasaEvent {
        KASA_EVENT_UP,      /* kasamond appeared and its objects are read */
        KASA_EVENT_DOWN,    /* kasamond left the bus: no devices now */
        KASA_EVENT_ADDED,
        KASA_EVENT_REMOVED, /* the device is freed after the callback */
        KASA_EVENT_CHANGED,
} KasaEvent;

/* Fields that a PropertiesChanged touched, for KASA_EVENT_CHANGED. */
typedef enum KasaField {
        KASA_FIELD_READINGS = 1 << 0, /* power, voltage, current */
        KASA_FIELD_ENERGY = 1 << 1,
        KASA_FIELD_ON = 1 << 2,
        KASA_FIELD_ONLINE = 1 << 3,
        KASA_FIELD_COST = 1 << 4,
        KASA_FIELD_OTHER = 1 << 5, /* alias, address, last_seen, ... */
} KasaField;

typedef void (*KasaListener)(KasaEvent event, const KasaDevice *d, unsigned fields, void *userdata);

/* An open alert (org.kasamond.Kasa1.Alert), from its properties. */
typedef struct KasaAlert {
        char *path;
        uint32_t id;
        uint32_t rule;
        char *rule_name;
        char *kind;
        char *device; /* the device's object path */
        char *state;  /* "active" or "acknowledged" */
        uint64_t since_usec;
        double value;
} KasaAlert;

typedef enum KasaAlertEvent {
        KASA_ALERT_FIRED,
        KASA_ALERT_ACKNOWLEDGED,
        KASA_ALERT_RESOLVED, /* the alert is freed after the callback */
        _KASA_ALERT_EVENT_MAX,
} KasaAlertEvent;

/* Alerts that fire, are acknowledged or resolve while the bridge watches:
 * InterfacesAdded, PropertiesChanged of State, InterfacesRemoved; and,
 * when kasamond comes back, the difference between the alerts open before
 * it left and those it lists now. The alerts open when the bridge first
 * reads kasamond are no event (the bridge does not know when they fired). */
typedef void (*KasaAlertListener)(KasaAlertEvent event, const KasaAlert *a, void *userdata);

typedef struct KasaClient {
        GDBusConnection *bus;
        guint watch_id;
        guint sub_props, sub_added, sub_removed;
        GCancellable *cancel; /* the GetManagedObjects in flight */
        bool up;
        char *owner; /* kasamond's unique name, NULL while it is away */
        GHashTable *devices; /* path -> KasaDevice */
        char *version;
        double total_power;
        char *currency; /* "" without a tariff or without tariff support */
        double cost_today, cost_month;
        KasaListener listeners[4];
        void *listener_data[4];
        size_t n_listeners;
        GHashTable *alerts; /* path -> KasaAlert, the open ones */
        /* The alerts open when kasamond left, compared with what it lists
         * when it is back; NULL before the first read. */
        GHashTable *alerts_before;
        bool alerts_primed; /* read once: later differences are events */
        KasaAlertListener alert_listeners[2];
        void *alert_listener_data[2];
        size_t n_alert_listeners;
} KasaClient;

int kasa_client_new(GDBusConnection *bus, KasaClient **ret);
KasaClient *kasa_client_free(KasaClient *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(KasaClient, kasa_client_free)

void kasa_client_listen(KasaClient *c, KasaListener l, void *userdata);

const KasaDevice *kasa_client_find(KasaClient *c, const char *id);
/* The devices sorted by id (a strip's outlets follow it); g_ptr_array_unref. */
GPtrArray *kasa_client_sorted(KasaClient *c);

/* The daemon's Describe() object of a device (org.kasamond.Kasa1(5)), built
 * from the cache. */
json_t *kasa_device_json(KasaClient *c, const KasaDevice *d);

/* Applies one interface's properties (a{sv}); returns the KasaField mask
 * of what changed. Exposed for the unit tests. */
unsigned kasa_device_apply(KasaDevice *d, const char *iface, GVariant *props);
KasaDevice *kasa_device_new(const char *path);
void kasa_device_free(KasaDevice *d);

char *kasa_device_path(const char *id);

/* kasa-alert.c */
void kasa_client_listen_alerts(KasaClient *c, KasaAlertListener l, void *userdata);
/* The open alerts by id; g_ptr_array_unref. */
GPtrArray *kasa_client_alerts(KasaClient *c);
/* The alert as Manager.ListAlerts has it (id, path, rule, rule_name, kind,
 * device, alias, state, since_usec, value); for KASA_ALERT_RESOLVED its
 * state is "resolved". */
json_t *kasa_alert_json(KasaClient *c, const KasaAlert *a, KasaAlertEvent event);
const char *kasa_alert_event_to_string(KasaAlertEvent e);

KasaAlert *kasa_alert_new(const char *path);
void kasa_alert_free(KasaAlert *a);
/* Applies the Alert interface's properties (a{sv}); true if State changed
 * to "acknowledged". Exposed for the unit tests. */
bool kasa_alert_apply(KasaAlert *a, GVariant *props);
bool kasa_alert_path_valid(const char *path);

/* What kasa-client.c tells kasa-alert.c. */
void kasa_alerts_added(KasaClient *c, const char *path, GVariant *props);
void kasa_alerts_changed(KasaClient *c, const char *path, GVariant *props);
void kasa_alerts_removed(KasaClient *c, const char *path);
/* kasamond left after it was read: the open alerts are kept aside for
 * the comparison. */
void kasa_alerts_down(KasaClient *c);
/* GetManagedObjects answered: alerts is the new table (path -> KasaAlert),
 * taken; the differences are events once kasamond was read before. */
void kasa_alerts_replace(KasaClient *c, GHashTable *alerts);
GHashTable *kasa_alerts_table_new(void);
