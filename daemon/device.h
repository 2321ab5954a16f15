/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A device as kasamond knows it: a plug, a strip, or one outlet of a strip.
 * Plugs and strips own the connection and the poll timer; outlets are
 * polled by their strip over its connection. No D-Bus here: changes are
 * reported to the manager as a bitmask, which the bus glue turns into at
 * most one PropertiesChanged per object and interface per poll.
 */

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "energy.h"
#include "kasa-proto.h"
#include "net-ops.h"
#include "store.h"
#include "transport.h"

typedef struct Manager Manager;
typedef struct Device Device;

/* What a device needs from whoever holds it (the manager in the daemon, a
 * fake in unit tests), so device.c needs no manager.h. */
typedef struct DeviceHostOps {
        /* A reading of metered device d, taken into d->energy just before,
         * for the store (manager_record()). */
        void (*record)(void *userdata, Device *d, const StoreSample *sample);
        /* d->changes are ready to be signalled; the callee clears them. */
        void (*changed)(void *userdata, Device *d);
        /* Wall clock, ms since the epoch. */
        int64_t (*now_ms)(void *userdata);
        /* Start of the local day containing ts_ms (UTC ms). */
        int64_t (*day_start)(void *userdata, int64_t ts_ms);
        /* A transport to the device at d->sockaddr. */
        int (*new_transport)(void *userdata, Device *d, Transport **ret);
} DeviceHostOps;

typedef struct DeviceHost {
        const DeviceHostOps *ops;
        void *userdata;
        sd_event *event;
        const NetOps *net;         /* poll timers and the monotonic clock */
        const Config *config;      /* Poll*= settings */
} DeviceHost;

#define DEVICE_ID_MAX 32
#define DEVICE_ALIAS_MAX 64

typedef enum DeviceChange {
        DEVICE_CHANGED_ALIAS    = 1 << 0,
        DEVICE_CHANGED_MODEL    = 1 << 1,
        DEVICE_CHANGED_ADDRESS  = 1 << 2,
        DEVICE_CHANGED_VERSIONS = 1 << 3,
        DEVICE_CHANGED_ON       = 1 << 4,
        DEVICE_CHANGED_ONLINE   = 1 << 5,
        DEVICE_CHANGED_SEEN     = 1 << 6,
        DEVICE_CHANGED_RSSI     = 1 << 7,
        DEVICE_CHANGED_READING  = 1 << 8, /* Power, Voltage, Current */
        DEVICE_CHANGED_ENERGY   = 1 << 9, /* EnergyTotal, EnergyToday */
        DEVICE_CHANGED_COUNTDOWN = 1 << 10,
        DEVICE_CHANGED_PROTOCOL = 1 << 11,
        DEVICE_CHANGED_AUTH     = 1 << 12, /* AuthState, AuthMessage */
} DeviceChange;

/* What a countdown or a schedule does to a device. */
typedef enum DeviceAction {
        DEVICE_ACTION_ON,
        DEVICE_ACTION_OFF,
        DEVICE_ACTION_TOGGLE,
        _DEVICE_ACTION_MAX,
        _DEVICE_ACTION_INVALID = -1,
} DeviceAction;

/* "on", "off", "toggle". */
const char *device_action_to_string(DeviceAction a);
DeviceAction device_action_from_string(const char *s);

/* Longest countdown accepted: a week. */
#define DEVICE_COUNTDOWN_MAX_SEC (7 * 24 * 3600)

/* Whether the device and we agree on credentials (KLAP). */
typedef enum DeviceAuth {
        DEVICE_AUTH_NONE,          /* the transport has none (XOR) */
        DEVICE_AUTH_UNKNOWN,       /* no handshake finished yet */
        DEVICE_AUTH_OK,
        DEVICE_AUTH_FAILED,        /* auth_message says what to do */
} DeviceAuth;

const char *device_auth_to_string(DeviceAuth a);

/* Result of a command (switch, rename): error 0 or the first failure's
 * negative errno, or for a device-side refusal the device's err_code. A
 * strip is switched outlet by outlet: switched and failed list the
 * outlets (a plug or outlet: itself) that did and did not switch; the
 * arrays live as long as the callback runs (NULL on out of memory); on
 * is the state a switch asked for. */
typedef struct DeviceCommandResult {
        bool on;
        int error;
        int32_t device_err;
        Device **switched, **failed;
        size_t n_switched, n_failed;
} DeviceCommandResult;

typedef void (*DeviceCommandFn)(Device *d, const DeviceCommandResult *result, void *userdata);

struct Device {
        const DeviceHost *host;
        Manager *manager;          /* host->userdata, for the bus glue */
        char id[DEVICE_ID_MAX];
        char *path;                /* D-Bus object path */
        uint32_t number;           /* key in the time-series store */

        Device *parent;            /* outlets: their strip */
        Device **outlets;          /* strips: their outlets, by index */
        size_t n_outlets;
        int outlet;                /* outlet index, -1 for plugs and strips */
        char *child_id;            /* outlets: the strip's id for it (context) */

        /* identity */
        char alias[DEVICE_ALIAS_MAX];
        char model[64];
        char mac[18];
        char device_id[48];        /* 40 hex digits on real devices */
        char hw_ver[32];
        char sw_ver[64];
        char address[32];          /* "a.b.c.d" or "a.b.c.d:port" */
        struct sockaddr_in sockaddr;
        bool metered;              /* has a meter of its own (plugs, outlets); see device_has_meter() */

        /* state */
        bool on;
        bool online;
        uint64_t last_seen_usec;   /* realtime */
        int32_t rssi;
        int64_t power_mw, voltage_mv, current_ma;
        bool have_reading;         /* the three above are of the device's last poll */
        EnergyAccount energy;      /* energy.cumulative_mwh: kasamond's own count */
        int64_t last_sample_ms;    /* newest sample recorded */
        int64_t day_start_ms;      /* local day of energy_today_base */
        int64_t energy_today_base; /* energy_mwh at the start of that day */
        unsigned changes;          /* DeviceChange, pending emission */
        bool backfill_due;         /* roots new to kasamond: backfill once read (manager-backfill.h) */

        char *poll_request;        /* JSON of the poll request, built once */

        /* polling, plugs and strips only */
        bool klap;                 /* HTTP (KLAP or AES): the address's port is KLAP_HTTP_PORT */
        bool smart;                /* speaks the smart dialect (kasa-smart.h), not IOT */
        char protocol[16];         /* "xor/iot", "klap2/iot", "klap2/smart", "aes/smart"... (Protocol) */
        DeviceAuth auth;
        char *auth_message;        /* NULL: none (AuthMessage "") */
        Transport *transport;
        uint64_t poll_due_usec;    /* CLOCK_MONOTONIC */
        NetSource *poll_timer;
        bool polling;
        unsigned failures;
        size_t round_pending;      /* replies still expected this round */
        int round_error;
        int64_t round_ts_ms;

        /* countdown (device-countdown.c): in memory only */
        NetSource *countdown_timer; /* NULL when none runs */
        DeviceAction countdown_action;
        uint64_t countdown_realtime_usec; /* when it fires, for the Countdown property */
};

int device_new(const DeviceHost *host, const char *id, Device *parent, Device **ret);
Device *device_free(Device *d);

/* Update identity from a sysinfo reply; returns the DeviceChange mask. */
unsigned device_apply_sysinfo(Device *d, const KasaSysinfo *si);
int device_set_address(Device *d, const struct sockaddr_in *sa);
/* Marks the change for the next signal; offline, the readings are unknown. */
void device_set_online(Device *d, bool online);

/* Start polling: at once, or at a random point of the first interval so
 * that many devices loaded at start-up do not all poll together. */
int device_start(Device *d, bool now);
int device_poll_now(Device *d);
/* Drop the cached poll request after the identity it names changed. */
void device_forget_request(Device *d);

int device_set_on(Device *d, bool on, DeviceCommandFn cb, void *userdata);
int device_rename(Device *d, const char *alias, DeviceCommandFn cb, void *userdata);
/* Switches to the opposite of the last known state; the result's device
 * has the new state in d->on. */
int device_toggle(Device *d, DeviceCommandFn cb, void *userdata);

int device_apply_action(Device *d, DeviceAction a, DeviceCommandFn cb, void *userdata);

/* One request of the device's dialect (json, built by the caller; for an
 * outlet it names its child id) over its root's connection, queued with
 * the polls. cb gets the parsed reply (valid during the call only) or a
 * negative errno (-EBADMSG for a reply the parser refused, its reason in
 * message; -ECANCELED when the connection was reset or the device freed:
 * then d must not be touched). */
typedef void (*DeviceReplyFn)(Device *d, int error, const KasaResponse *resp, const char *message, void *userdata);
int device_query(Device *d, const char *json, DeviceReplyFn cb, void *userdata);

/* Applies action a after seconds (1..DEVICE_COUNTDOWN_MAX_SEC) on the
 * monotonic clock, replacing a countdown already running; the result is
 * logged. -EINVAL for a bad action or duration. */
int device_start_countdown(Device *d, DeviceAction a, uint64_t seconds);
/* Returns whether one was running. */
bool device_cancel_countdown(Device *d);

/* Device that owns the connection: the strip of an outlet, else itself. */
static inline Device *device_root(Device *d) {
        return d->parent ? d->parent : d;
}

int64_t device_energy_today(Device *d, int64_t now_ms);
