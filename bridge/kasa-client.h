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
