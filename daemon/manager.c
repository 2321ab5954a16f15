/* SPDX-License-Identifier: MIT */

#include "manager.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "backup-manager.h"
#include "bus.h"
#include "export-manager.h"
#include "fire-caller.h"
#include "kasa-dbus.h"
#include "kasa-time.h"
#include "log.h"
#include "manager-access.h"
#include "manager-alert.h"
#include "manager-backfill.h"
#include "manager-internal.h"
#include "manager-tariff.h"
#include "readings.h"

#define FLUSH_INTERVAL_USEC (1 * USEC_PER_SEC)


int64_t manager_now_ms(Manager *m) {
        return (int64_t) (realtime_usec() / USEC_PER_MSEC);
}

Device *manager_find(Manager *m, const char *id) {
        return g_hash_table_lookup(m->devices, id);
}

Device *manager_find_path(Manager *m, const char *path) {
        const char *prefix = KASA_DEVICE_PREFIX "/";

        if (strncmp(path, prefix, strlen(prefix)) != 0)
                return NULL;
        return manager_find(m, path + strlen(prefix));
}

int64_t manager_total_power(Manager *m) {
        GHashTableIter it;
        gpointer v;
        int64_t sum = 0;

        g_hash_table_iter_init(&it, m->devices);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
                Device *d = v;
                MeterReading r;

                /* Plugs and outlets: a strip's power is its outlets'. */
                if (d->metered && meter_reading(d, &r))
                        sum += r.power_mw;
        }
        return sum;
}


/* What the registry keeps of a device, besides last_seen. */
#define REGISTRY_CHANGES (DEVICE_CHANGED_ALIAS | DEVICE_CHANGED_MODEL | DEVICE_CHANGED_ADDRESS | DEVICE_CHANGED_VERSIONS)

/* A new plug or strip: its backfill once it answered a poll, so that its
 * dialect and meters are known. */
static bool read_once(const Device *d) {
        if (d->metered)
                return d->have_reading;
        for (size_t i = 0; i < d->n_outlets; i++)
                if (d->outlets[i] && d->outlets[i]->metered && d->outlets[i]->have_reading)
                        return true;
        return false;
}

void manager_device_changed(Manager *m, Device *d) {
        if (d->backfill_due && read_once(d)) {
                d->backfill_due = false;
                manager_backfill_first_sight(m, d);
        }
        /* A strip's meter is the sum of its outlets': it changes with them
         * (devices report outlets before their strip). */
        if (d->parent)
                d->parent->changes |= d->changes & (DEVICE_CHANGED_READING | DEVICE_CHANGED_ENERGY);
        /* last_seen is saved when a device goes offline and at shutdown,
         * not with every poll. */
        if ((d->changes & REGISTRY_CHANGES) || ((d->changes & DEVICE_CHANGED_ONLINE) && !d->online))
                manager_mark_dirty(m, d);
        bus_device_emit_changed(m, d);
}

/* ---- readings to the store ---- */

/* Samples go to the store as devices answer, each with its energy
 * account's state in the same log record, so that after a crash the
 * counters belong to the very samples stored and restore_energy()
 * continues from them. Once per poll interval the round is ended, which
 * costs one fdatasync of the store's log. */

void manager_record(Manager *m, Device *d, const StoreSample *s) {
        StoreCounter c;
        bool with = d->metered && d->energy.have_baseline && d->energy.ts_ms == s->ts_ms;
        int r;

        if (with)
                c = (StoreCounter) {
                        .device = d->number,
                        .ts_ms = d->energy.ts_ms,
                        .cumulative_mwh = d->energy.cumulative_mwh,
                        .counter_mwh = d->energy.counter_mwh,
                        .lo_mwh = d->energy.lo_mwh,
                        .hi_mwh = d->energy.hi_mwh,
                        .power_mw = d->energy.power_mw,
                };
        r = store_add(m->store, s, 1, with ? &c : NULL, with);
        if (r > 0 && !m->bad_sample_logged) {
                /* Devices only record increasing times and energy: a bug. */
                log_warning("The store dropped a bad sample of device %" PRIu32 " at %" PRId64 ", ignoring",
                            s->device, s->ts_ms);
                m->bad_sample_logged = true;
        }
        if (r < 0)
                m->dropped++;
}

static void check_store(Manager *m) {
        int r = store_state(m->store);

        if (r == m->store_error)
                return;
        if (r < 0)
                log_error_errno(r, "Failed to write the readings, keeping them in memory for now: %m");
        else
                log_notice("Writing readings again; %" PRIu64 " samples were lost meanwhile", m->dropped);
        if (r == 0)
                m->dropped = 0;
        m->store_error = r;
        if (m->bus)
                (void) sd_bus_emit_properties_changed(m->bus, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "StorageError",
                                                      NULL);
}

int manager_flush(Manager *m) {
        int r;

        r = store_commit_round(m->store);
        check_store(m);
        return r;
}

static int on_round_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        (void) manager_flush(m);
        manager_tariffs_round(m);
        manager_alerts_round(m);
        (void) sd_event_source_set_time(s, usec + m->config.poll_interval_usec);
        return sd_event_source_set_enabled(s, SD_EVENT_ON);
}

static void update_status(Manager *m) {
        GHashTableIter it;
        gpointer v;
        unsigned online = 0;

        char status[sizeof(m->status)];

        g_hash_table_iter_init(&it, m->devices);
        while (g_hash_table_iter_next(&it, NULL, &v))
                online += ((Device *) v)->online;
        snprintf(status, sizeof(status), "STATUS=%u devices, %u online, %.1f W", g_hash_table_size(m->devices),
                 online, (double) m->total_power_mw / 1000.0);
        if (strcmp(status, m->status) == 0)
                return;
        snprintf(m->status, sizeof(m->status), "%s", status);
        (void) sd_notify(false, status);
}

static int on_flush_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        int64_t total;

        total = manager_total_power(m);
        if (total != m->total_power_mw) {
                m->total_power_mw = total;
                bus_manager_emit_total(m);
        }
        update_status(m);
        (void) sd_event_source_set_time(s, usec + FLUSH_INTERVAL_USEC);
        return sd_event_source_set_enabled(s, SD_EVENT_ON);
}

static int on_watchdog_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        (void) sd_notify(false, "WATCHDOG=1");
        (void) sd_event_source_set_time(s, usec + m->watchdog_usec / 2);
        return sd_event_source_set_enabled(s, SD_EVENT_ON);
}

static int64_t day_start_cb(int64_t ts_ms, void *userdata) {
        return calendar_day_start(userdata, ts_ms);
}

/* Every reading asks which local day it belongs to; nearly always today. */
int64_t manager_day_start(Manager *m, int64_t ts_ms) {
        if (ts_ms >= m->day_start_ms && ts_ms < m->day_end_ms)
                return m->day_start_ms;
        int64_t start = calendar_day_start(m->calendar, ts_ms);
        m->day_start_ms = start;
        m->day_end_ms = calendar_next_day(m->calendar, start);
        return start;
}

/* EnergyToday goes back to 0 at local midnight. A device that is polled
 * says so with its next reading; an offline one would go on showing
 * yesterday's: at midnight, announce it for every device whose day ended
 * with energy counted. */
static int on_midnight_timer(sd_event_source *s, uint64_t usec, void *userdata);

static int arm_midnight_timer(Manager *m) {
        uint64_t next = (uint64_t) calendar_next_day(m->calendar, manager_now_ms(m)) * 1000;
        int r;

        if (!m->midnight_timer)
                return sd_event_add_time(m->event, &m->midnight_timer, CLOCK_REALTIME, next, USEC_PER_SEC,
                                         on_midnight_timer, m);
        r = sd_event_source_set_time(m->midnight_timer, next);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(m->midnight_timer, SD_EVENT_ONESHOT);
}

static void midnight_reset(Manager *m, Device *d, int64_t today) {
        if (!d || !d->metered || d->day_start_ms == today || d->energy.cumulative_mwh == d->energy_today_base)
                return;
        d->changes |= DEVICE_CHANGED_ENERGY;
        manager_device_changed(m, d);
}

static int on_midnight_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        int64_t today = manager_day_start(m, manager_now_ms(m));
        int r;

        for (guint i = 0; i < m->roots->len; i++) {
                Device *d = m->roots->pdata[i];
                for (size_t k = 0; k < d->n_outlets; k++)
                        midnight_reset(m, d->outlets[k], today);
                midnight_reset(m, d, today);
                if (d->changes & DEVICE_CHANGED_ENERGY)
                        manager_device_changed(m, d); /* a strip, of its outlets */
        }
        r = arm_midnight_timer(m);
        if (r < 0)
                log_error_errno(r, "Failed to set the midnight timer, EnergyToday of offline devices stays "
                                "unannounced, ignoring: %m");
        return 0;
}

/* ---- setup and teardown ---- */

int manager_new(Config *config, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = calloc(1, sizeof(Manager));
        int r;

        if (!m)
                return log_oom();
        m->config = *config;
        *config = (Config) {};
        m->version = PROJECT_VERSION;
        m->devices = g_hash_table_new(g_str_hash, g_str_equal);
        m->roots = g_ptr_array_new();
        m->unstarted = g_ptr_array_new();
        m->registry_dirty = g_hash_table_new(g_str_hash, g_str_equal);
        m->polkit = polkit_queries_new();
        m->fire_callers = fire_callers_new(&bus_fire_caller_ops, m);
        if (!m->polkit || !m->fire_callers)
                return log_oom();

        r = sd_event_default(&m->event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate the event loop: %m");
        m->device_host = (DeviceHost) {
                .ops = &manager_device_host_ops,
                .userdata = m,
                .event = m->event,
                .net = &net_ops_real,
                .config = &m->config,
        };
        r = rsa_keys_new(m->event, RSA_KEYS_LIFETIME_USEC, &m->rsa_keys);
        if (r < 0)
                return log_oom();
        m->calendar = calendar_new(m->config.time_zone);
        if (!m->calendar)
                return log_error_errno(EINVAL, "Failed to load time zone '%s'.", m->config.time_zone);
        {
                _cleanup_free_ char *error = NULL;

                /* KLAP devices bound to an account fail with a message of
                 * their own (AuthState); the others work without. */
                r = credentials_load(getenv("CREDENTIALS_DIRECTORY"), m->config.credentials_file, &m->credentials,
                                     &error);
                if (r < 0)
                        log_error("Failed to load the TP-Link credentials, using none: %s",
                                  error ?: strerror(-r));
        }
        *ret = TAKE_PTR(m);
        return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        log_info("Received %s, shutting down", strsignal((int) si->ssi_signo));
        (void) sd_notify(false, "STOPPING=1");
        return sd_event_exit(m->event, 0);
}

static int open_storage(Manager *m) {
        _cleanup_free_ char *db = NULL, *readings = NULL;
        char *error = NULL;
        int r;

        m->state_dir = config_state_directory(&m->config);
        if (!m->state_dir)
                return log_oom();
        if (mkdir(m->state_dir, 0750) < 0 && errno != EEXIST)
                return log_error_errno(errno, "Failed to create state directory %s: %m", m->state_dir);
        r = backup_apply_staged(m->state_dir);
        if (r < 0)
                return r;
        if (asprintf(&db, "%s/devices.sqlite", m->state_dir) < 0 ||
            asprintf(&readings, "%s/readings", m->state_dir) < 0)
                return log_oom();
        r = registry_open(db, &m->registry, &error);
        if (r < 0) {
                log_error_errno(r, "Failed to open %s: %s", db, error ?: strerror(-r));
                free(error);
                return r;
        }
        StoreOptions o = {
                .day_start = day_start_cb,
                .userdata = m->calendar,
                .gap_ms = ENERGY_GAP_MS_DEFAULT,
                .checkpoint_interval_ms = (int64_t) (m->config.compact_after_usec / 1000),
                .raw_retention_ms = (int64_t) (m->config.raw_retention_usec / 1000),
                .map_max_bytes = (uint64_t) m->config.max_size_mib << 20,
        };
        r = store_open_with(readings, &o, &m->store);
        if (r == -EPROTONOSUPPORT)
                return log_error_errno(r, "Failed to open the readings store %s: its format is not one this "
                                       "kasamond reads (a newer kasamond's, or not a kasamond store).", readings);
        if (r < 0)
                return log_error_errno(r, "Failed to open the readings store %s: %m", readings);
        return 0;
}

static int add_timer(Manager *m, sd_event_source **s, uint64_t delay, sd_event_time_handler_t cb) {
        return sd_event_add_time_relative(m->event, s, CLOCK_MONOTONIC, delay, 0, cb, m);
}

int manager_startup(Manager *m) {
        int r;

        r = sd_event_add_signal(m->event, NULL, SIGTERM, on_signal, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGINT, on_signal, m);
        /* A hangup (the terminal of a kasamond run by hand) stops as
         * cleanly as SIGTERM: its default action would lose the round. */
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGHUP, on_signal, m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch signals: %m");

        r = open_storage(m);
        if (r < 0)
                return r;
        r = manager_access_open(m);
        if (r < 0)
                return r;
        r = manager_load_devices(m);
        if (r < 0)
                return r;
        r = manager_tariffs_open(m);
        if (r < 0)
                return r;
        manager_tariffs_round(m);
        r = manager_alerts_open(m);
        if (r < 0)
                return r;

        r = sd_bus_open_system(&m->bus);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the system bus: %m");
        r = bus_register(m);
        if (r < 0)
                return r;
        r = sd_bus_attach_event(m->bus, m->event, 0);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the bus to the event loop: %m");
        r = sd_bus_request_name(m->bus, KASA_BUS_NAME, 0);
        if (r < 0)
                return log_error_errno(r, "Failed to acquire the bus name %s: %m", KASA_BUS_NAME);
        r = manager_start_schedules(m);
        if (r < 0)
                return r;

        r = add_timer(m, &m->flush_timer, FLUSH_INTERVAL_USEC, on_flush_timer);
        if (r >= 0)
                r = add_timer(m, &m->round_timer, m->config.poll_interval_usec, on_round_timer);
        if (r >= 0)
                r = add_timer(m, &m->rediscover_timer, 0, manager_on_rediscover);
        if (r >= 0 && sd_watchdog_enabled(false, &m->watchdog_usec) > 0)
                r = add_timer(m, &m->watchdog_timer, m->watchdog_usec / 2, on_watchdog_timer);
        if (r >= 0)
                r = arm_midnight_timer(m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up timers: %m");

        for (char **t = m->config.discovery_targets; t && *t; t++)
                if (strncmp(*t, "auto", 4) == 0 && (*t)[4] != '.' && !m->address_watch) {
                        r = address_watch_new(m->event, manager_on_address_change, m, &m->address_watch);
                        if (r < 0)
                                log_warning_errno(r, "Failed to watch network addresses, not discovering again on changes, ignoring: %m");
                }

        /* Known devices: spread their first polls over one interval. */
        for (guint i = 0; i < m->roots->len; i++) {
                Device *d = m->roots->pdata[i];
                r = device_start(d, false);
                if (r < 0)
                        return log_error_errno(r, "Failed to start polling %s: %m", d->id);
        }

        (void) sd_notify(false, "READY=1");
        update_status(m);
        log_info("kasamond %s running, %u devices known", m->version, g_hash_table_size(m->devices));
        return 0;
}

int manager_run(Manager *m) {
        int r = sd_event_loop(m->event);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        /* The open round first: a Backup starting now waits in its thread
         * for the checkpoint that follows it. */
        if (m->store)
                (void) manager_flush(m);
        manager_backup_free(m);
        if (m->registry) {
                GHashTableIter it;
                gpointer v;

                /* Whatever is pending, and every last_seen, in one commit. */
                manager_batch_end(m);
                manager_batch_begin(m);
                manager_save_dirty(m);
                g_hash_table_iter_init(&it, m->devices);
                while (g_hash_table_iter_next(&it, NULL, &v)) {
                        Device *d = v;
                        (void) registry_touch(m->registry, d->id, (int64_t) (d->last_seen_usec / 1000));
                }
                manager_batch_end(m);
        }
        manager_ops_cancel(m);
        /* Cost queries and exports read the store on their threads,
         * backfills write it; what they end with may look devices up. */
        manager_cost_stop(m);
        manager_export_stop(m);
        manager_backfill_stop(m);
        while (m->roots && m->roots->len > 0)
                manager_free_root(m, m->roots->pdata[m->roots->len - 1]);
        /* After every transport that may wait for a key. */
        m->rsa_keys = rsa_keys_free(m->rsa_keys);
        if (m->roots)
                g_ptr_array_unref(m->roots);
        if (m->devices)
                g_hash_table_unref(m->devices);
        if (m->registry_dirty)
                g_hash_table_unref(m->registry_dirty);
        if (m->unstarted)
                g_ptr_array_unref(m->unstarted);
        address_watch_free(m->address_watch);
        manager_access_close(m);
        polkit_queries_free(m->polkit);
        fire_callers_free(m->fire_callers);
        scheduler_free(m->scheduler);
        sd_event_source_disable_unref(m->flush_timer);
        sd_event_source_disable_unref(m->round_timer);
        sd_event_source_disable_unref(m->rediscover_timer);
        sd_event_source_disable_unref(m->watchdog_timer);
        sd_event_source_disable_unref(m->midnight_timer);
        sd_event_source_disable_unref(m->registry_save);
        sd_bus_flush_close_unref(m->bus);
        store_free(m->store);
        registry_free(m->registry);
        manager_tariffs_free(m);
        manager_alerts_free(m);
        calendar_free(m->calendar);
        credentials_done(&m->credentials);
        config_done(&m->config);
        free(m->state_dir);
        sd_event_unref(m->event);
        free(m);
        return NULL;
}
