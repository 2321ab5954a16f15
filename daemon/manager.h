/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "address.h"
#include "calendar.h"
#include "config.h"
#include "credentials.h"
#include "device.h"
#include "discovery.h"
#include "polkit.h"
#include "registry.h"
#include "rsa-keys.h"
#include "schedule.h"
#include "store.h"

typedef struct PendingOp PendingOp;
typedef struct ManagerTariffs ManagerTariffs;
typedef struct ManagerAlerts ManagerAlerts;

typedef struct Manager {
        const char *version;
        sd_event *event;
        sd_bus *bus;
        Config config;
        DeviceHost device_host;    /* what devices see of the manager */
        char *state_dir;

        Registry *registry;
        Store *store;
        Calendar *calendar;
        AddressWatch *address_watch;
        PolkitQueries *polkit;
        struct FireCallers *fire_callers; /* Fire's caller checks (bus-schedule.c) */
        Access *access;            /* API tokens and their bindings (manager-access.c) */
        struct AccessDb *access_db;
        sd_event_source *token_expiry; /* the next expiry of a token (bus-manager-access.c) */
        int64_t tokens_expired_until;  /* expiries announced up to here */
        Scheduler *scheduler;      /* manager-schedule.c */
        Systemd1 systemd1;
        PendingOp *ops;            /* AddDevice and Discover in progress */
        unsigned discovering;      /* discovery runs in progress */
        bool registry_batch;       /* registry writes go into one transaction */
        GPtrArray *unstarted;      /* new roots, polled once the batch is committed */
        GHashTable *registry_dirty; /* id -> Device*, to be saved by registry_save */
        sd_event_source *registry_save;
        sd_event_source *midnight_timer;
        char status[128];          /* STATUS= as last sent */

        GHashTable *devices;       /* id -> Device*, owns them */
        GPtrArray *roots;          /* plugs and strips, for iteration */

        uint64_t dropped;          /* samples lost while the store failed */
        int store_error;           /* what keeps the store from writing, said once */
        bool bad_sample_logged;
        sd_event_source *flush_timer;
        sd_event_source *round_timer; /* ends a round of readings per poll interval */
        sd_event_source *rediscover_timer;
        sd_event_source *watchdog_timer;
        uint64_t watchdog_usec;

        ManagerTariffs *tariffs;   /* manager-tariff.c */
        ManagerAlerts *alerts;     /* manager-alert.c */

        int64_t total_power_mw;    /* as last emitted */
        int64_t day_start_ms, day_end_ms; /* local day of the last lookup */
        Credentials credentials;   /* TP-Link account for KLAP and AES devices; NULLs: none */
        RsaKeys *rsa_keys;         /* for AES devices' handshakes */
        struct BackupJob *backup;  /* a Backup() in progress (backup-manager.c) */
        struct Backfill *backfills; /* in progress (manager-backfill.c) */
        struct Worker *backfill_worker;
        struct ExportPipes *exports; /* Export()s streaming (export-manager.c) */
        struct BackupJob *restore; /* a Restore() reading its archive */
        bool restart;              /* a restore is staged: stop, execute again */
} Manager;

/* Takes over the contents of *config. */
int manager_new(Config *config, Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);
int manager_startup(Manager *m);
int manager_run(Manager *m);

Device *manager_find(Manager *m, const char *id);
Device *manager_find_path(Manager *m, const char *path);

/* Called by devices, through manager_device_host_ops. */
void manager_device_changed(Manager *m, Device *d);
void manager_record(Manager *m, Device *d, const StoreSample *s);
/* Ends the round of samples recorded since the last: one store record. */
int manager_flush(Manager *m);
int64_t manager_now_ms(Manager *m);
/* Start of the local day containing ts_ms (UTC ms), cached. */
int64_t manager_day_start(Manager *m, int64_t ts_ms);

/* Register (or update) a plug or strip, with its outlets, from the
 * sysinfo it sent from address sa; returns the plug or strip. */
int manager_register(Manager *m, const struct sockaddr_in *sa, const KasaSysinfo *si, Device **ret);
int manager_remove(Manager *m, Device *d);

typedef void (*ManagerAddFn)(Manager *m, int error, const char *message, Device *d, void *userdata);
int manager_add_address(Manager *m, const char *address, ManagerAddFn cb, void *userdata);

typedef void (*ManagerDiscoverFn)(Manager *m, int error, Device **found, size_t n, void *userdata);
int manager_discover(Manager *m, uint64_t timeout_usec, ManagerDiscoverFn cb, void *userdata);

extern const DeviceHostOps manager_device_host_ops;

/* manager-schedule.c: opens the schedules and brings their timers in line. */
int manager_start_schedules(Manager *m);
/* Noon of local date "YYYY-MM-DD" in kasamond's time zone, or now for "". */
int manager_local_date(Manager *m, const char *date, uint64_t *ret);

int64_t manager_total_power(Manager *m);
char *manager_describe(Manager *m);
char *device_describe(Device *d);

