/* SPDX-License-Identifier: MIT */

#include "manager.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "bus.h"
#include "kasa-dbus.h"
#include "kasa-time.h"
#include "log.h"
#include "readings.h"

#define FLUSH_INTERVAL_USEC (1 * USEC_PER_SEC)

typedef struct PendingOp PendingOp;
struct PendingOp {
        Manager *manager;
        PendingOp *next;
        /* AddDevice */
        Transport *transport;
        char address[32];
        struct sockaddr_in sa;
        ManagerAddFn add_cb;
        KasaSysinfo *sysinfo;      /* what the device said, registered from the loop */
        int add_error;
        char add_message[256];
        /* Discover */
        DiscoveryRun *run;
        GPtrArray *found;
        ManagerDiscoverFn discover_cb;
        void *userdata;
        sd_event_source *cleanup;  /* frees the op outside its own callbacks */
};

int64_t manager_now_ms(Manager *m) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

static void registry_mark(Manager *m, Device *d);

/* What the registry keeps of a device, besides last_seen. */
#define REGISTRY_CHANGES (DEVICE_CHANGED_ALIAS | DEVICE_CHANGED_MODEL | DEVICE_CHANGED_ADDRESS | DEVICE_CHANGED_VERSIONS)

void manager_device_changed(Manager *m, Device *d) {
        /* A strip's meter is the sum of its outlets': it changes with them
         * (devices report outlets before their strip). */
        if (d->parent)
                d->parent->changes |= d->changes & (DEVICE_CHANGED_READING | DEVICE_CHANGED_ENERGY);
        /* last_seen is saved when a device goes offline and at shutdown,
         * not with every poll. */
        if ((d->changes & REGISTRY_CHANGES) || ((d->changes & DEVICE_CHANGED_ONLINE) && !d->online))
                registry_mark(m, d);
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

/* ---- device lifecycle ---- */

static void fill_registry(Device *d, RegistryDevice *rd) {
        *rd = (RegistryDevice) {
                .id = d->id,
                .parent = d->parent ? d->parent->id : NULL,
                .mac = d->mac,
                .outlet_index = d->outlet,
                .alias = d->alias,
                .model = d->model,
                .hw_ver = d->hw_ver,
                .sw_ver = d->sw_ver,
                .address = d->address,
                .device_id = d->device_id,
                .child_id = d->outlet >= 0 ? d->child_id : NULL,
                .has_emeter = d->metered || (d->n_outlets > 0 && d->outlets[0] && d->outlets[0]->metered),
                .last_seen_ms = (int64_t) (d->last_seen_usec / 1000),
                .monitored = true,
        };
}

/* Logged by the callers, which know what the failure costs. */
static int save_device(Manager *m, Device *d) {
        RegistryDevice rd;
        int r;

        fill_registry(d, &rd);
        r = registry_upsert(m->registry, &rd);
        if (r < 0)
                return r;
        d->number = rd.number;
        return 0;
}

/* ---- registry writes ----
 *
 * SQLite is written from the loop, never from a device's or a
 * connection's callback: a change to what the registry keeps marks the
 * device, and registry_save, a deferred event, writes every marked device
 * in one transaction. Only a new device is saved at once, for its store
 * number. During a discovery run those saves go into one transaction,
 * committed when the run ends, and the new devices are polled only then:
 * no sample is stored under a number the registry has not committed (a
 * crash would hand it out again). */

static int on_registry_save(sd_event_source *s, void *userdata);

static void registry_mark(Manager *m, Device *d) {
        int r;

        g_hash_table_insert(m->registry_dirty, d->id, d);
        if (!m->registry_save) {
                r = sd_event_add_defer(m->event, &m->registry_save, on_registry_save, m);
                if (r < 0) {
                        log_warning_errno(r, "Failed to schedule saving the registry, ignoring: %m");
                        return;
                }
        }
        (void) sd_event_source_set_enabled(m->registry_save, SD_EVENT_ONESHOT);
}

static void registry_unmark(Manager *m, Device *d) {
        g_hash_table_remove(m->registry_dirty, d->id);
        if (m->unstarted)
                g_ptr_array_remove(m->unstarted, d);
}

static void registry_save_marked(Manager *m) {
        GHashTableIter it;
        gpointer v;
        bool own = !m->registry_batch;
        unsigned failed = 0;
        int r = 0, first = 0;

        if (g_hash_table_size(m->registry_dirty) == 0)
                return;
        if (own) {
                r = registry_begin(m->registry);
                if (r < 0) {
                        log_warning_errno(r, "Failed to save %u devices to the registry, retrying with the next change: %s",
                                          g_hash_table_size(m->registry_dirty), registry_last_error(m->registry));
                        return;
                }
        }
        g_hash_table_iter_init(&it, m->registry_dirty);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
                r = save_device(m, v);
                if (r < 0) {
                        first = first ?: r;
                        failed++;
                        continue;
                }
                g_hash_table_iter_remove(&it);
        }
        if (failed > 0)
                log_warning_errno(first, "Failed to save %u devices to the registry, retrying with the next change: %s",
                                  failed, registry_last_error(m->registry));
        if (own) {
                r = registry_commit(m->registry);
                if (r < 0)
                        log_warning_errno(r, "Failed to commit the registry, ignoring: %s",
                                          registry_last_error(m->registry));
        }
}

static int on_registry_save(sd_event_source *s, void *userdata) {
        registry_save_marked(userdata);
        return 0;
}

static void registry_batch_begin(Manager *m) {
        int r;

        if (m->registry_batch)
                return;
        r = registry_begin(m->registry);
        if (r < 0) {
                /* Then each new device is a transaction of its own. */
                log_warning_errno(r, "Failed to start a registry transaction, ignoring: %s",
                                  registry_last_error(m->registry));
                return;
        }
        m->registry_batch = true;
}

static void registry_batch_end(Manager *m) {
        int r;

        if (!m->registry_batch)
                return;
        registry_save_marked(m);
        m->registry_batch = false;
        r = registry_commit(m->registry);
        if (r < 0) {
                /* Rolled back: save the new devices one by one, so that
                 * their numbers are committed before they are polled. */
                log_warning_errno(r, "Failed to commit the registry, saving the new devices one by one: %s",
                                  registry_last_error(m->registry));
                for (guint i = 0; i < m->unstarted->len; i++) {
                        Device *d = m->unstarted->pdata[i];
                        registry_mark(m, d);
                        for (size_t k = 0; k < d->n_outlets; k++)
                                if (d->outlets[k])
                                        registry_mark(m, d->outlets[k]);
                }
                registry_save_marked(m);
        }
        log_debug("Registry batch committed: %u new devices, %u commits since start", m->unstarted->len,
                  registry_commits(m->registry));
        for (guint i = 0; i < m->unstarted->len; i++)
                (void) device_poll_now(m->unstarted->pdata[i]);
        g_ptr_array_set_size(m->unstarted, 0);
}

/* Resume energy counting where the store left off after a restart: the
 * counter state stored with the last sample gives the device counter
 * behind it, so the next reading continues from it. */
static void restore_energy(Manager *m, Device *d) {
        StoreCounter c;
        StoreSample last;
        int64_t now = manager_now_ms(m), today = 0;

        if (!d->metered || store_last_sample(m->store, d->number, &last) < 0)
                return;
        energy_account_restore(&d->energy, last.energy_mwh);
        if (store_counter(m->store, d->number, &c) >= 0 && c.ts_ms == last.ts_ms &&
            c.cumulative_mwh == last.energy_mwh)
                energy_account_resume(&d->energy, c.counter_mwh, c.lo_mwh, c.hi_mwh, c.ts_ms, c.power_mw);
        d->last_sample_ms = last.ts_ms;
        d->day_start_ms = manager_day_start(m, now);
        if (store_energy(m->store, d->number, d->day_start_ms, now + 1, &today) < 0)
                today = 0;
        d->energy_today_base = last.energy_mwh - today;
}

static int insert_device(Manager *m, Device *d) {
        /* Checked first: an insert would replace the device already there. */
        if (g_hash_table_contains(m->devices, d->id))
                return -EEXIST;
        g_hash_table_insert(m->devices, d->id, d);
        if (!d->parent)
                g_ptr_array_add(m->roots, d);
        return 0;
}

static void announce(Manager *m, Device *d) {
        int r;

        if (!m->bus)
                return;
        r = sd_bus_emit_object_added(m->bus, d->path);
        if (r < 0)
                log_debug_errno(r, "Failed to announce %s, ignoring: %m", d->id);
}

static void free_root(Manager *m, Device *d) {
        /* The connection first: its cancelled requests are answered while
         * every outlet they name is still alive. */
        d->transport = transport_free(d->transport);
        registry_unmark(m, d);
        for (size_t i = 0; i < d->n_outlets; i++)
                if (d->outlets[i]) {
                        registry_unmark(m, d->outlets[i]);
                        g_hash_table_remove(m->devices, d->outlets[i]->id);
                        device_free(d->outlets[i]);
                }
        g_hash_table_remove(m->devices, d->id);
        g_ptr_array_remove(m->roots, d);
        device_free(d);
}

static void emit_count(Manager *m) {
        if (m->bus)
                (void) sd_bus_emit_properties_changed(m->bus, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "DeviceCount",
                                                      NULL);
}

static void child_full_id(const KasaSysinfo *si, size_t i, char *buf, size_t size) {
        /* Some firmwares give only the two-digit index. */
        bool short_id = strlen(si->children[i].id) <= 2;

        if (snprintf(buf, size, "%s%s", short_id ? si->device_id : "", si->children[i].id) >= (int) size)
                buf[size - 1] = 0; /* cannot happen with ids the codec accepted */
}

int manager_register(Manager *m, const struct sockaddr_in *sa, const KasaSysinfo *si, Device **ret) {
        char id[REGISTRY_ID_MAX];
        Device *d;
        bool created = false, new_outlets = false;
        int r;

        r = registry_make_id(si->mac, -1, id);
        if (r < 0)
                return r;
        d = manager_find(m, id);
        if (!d) {
                size_t needed = 1 + si->n_children;
                if (g_hash_table_size(m->devices) + needed > m->config.max_devices)
                        return -ENOSPC;
                r = device_new(&m->device_host, id, NULL, &d);
                if (r < 0)
                        return r;
                d->metered = si->has_emeter && si->n_children == 0;
                d->outlets = calloc(MAX(si->n_children, 1u), sizeof(Device *));
                if (!d->outlets) {
                        device_free(d);
                        return -ENOMEM;
                }
                d->n_outlets = si->n_children;
                r = insert_device(m, d);
                if (r < 0) {
                        device_free(d);
                        return r;
                }
                created = true;
        }

        device_apply_sysinfo(d, si);
        device_set_address(d, sa);
        device_set_online(d, true);
        d->last_seen_usec = (uint64_t) manager_now_ms(m) * 1000;

        for (size_t i = 0; i < d->n_outlets && i < si->n_children; i++) {
                Device *o = d->outlets[i];
                if (!o) {
                        new_outlets = true;
                        char oid[REGISTRY_ID_MAX];
                        r = registry_make_id(si->mac, (int) i, oid);
                        if (r >= 0)
                                r = device_new(&m->device_host, oid, d, &o);
                        if (r < 0)
                                goto fail;
                        o->outlet = (int) i;
                        o->metered = si->has_emeter;
                        o->sockaddr = d->sockaddr;
                        snprintf(o->address, sizeof(o->address), "%s", d->address);
                        r = insert_device(m, o);
                        if (r < 0) {
                                device_free(o);
                                goto fail;
                        }
                        d->outlets[i] = o;
                }
                child_full_id(si, i, o->child_id, sizeof(o->child_id));
                device_forget_request(o);
                device_apply_sysinfo(o, si);
                device_set_online(o, true);
                o->last_seen_usec = d->last_seen_usec;
        }

        /* New devices need their numbers now; what changed on known ones
         * is saved through manager_device_changed(). */
        if (created || new_outlets) {
                r = save_device(m, d);
                for (size_t i = 0; r >= 0 && i < d->n_outlets; i++)
                        if (d->outlets[i])
                                r = save_device(m, d->outlets[i]);
                if (r < 0) /* logged or answered by the caller */
                        goto fail;
        }

        if (created) {
                log_info("New %s %s (%s) at %s, %zu outlets", d->model, d->id, d->alias, d->address, d->n_outlets);
                restore_energy(m, d);
                for (size_t i = 0; i < d->n_outlets; i++)
                        restore_energy(m, d->outlets[i]);
                announce(m, d);
                for (size_t i = 0; i < d->n_outlets; i++)
                        announce(m, d->outlets[i]);
                emit_count(m);
        }
        manager_device_changed(m, d);
        for (size_t i = 0; i < d->n_outlets; i++)
                if (d->outlets[i])
                        manager_device_changed(m, d->outlets[i]);
        /* New or just re-found: poll at once, not at the next interval;
         * new ones in a batch once it is committed. */
        if (created && m->registry_batch)
                g_ptr_array_add(m->unstarted, d);
        else
                (void) device_poll_now(d);
        if (ret)
                *ret = d;
        return 0;

fail:
        if (created)
                free_root(m, d);
        return r;
}

int manager_remove(Manager *m, Device *d) {
        int r;

        r = registry_set_monitored(m->registry, d->id, false);
        for (size_t i = 0; r >= 0 && i < d->n_outlets; i++)
                if (d->outlets[i])
                        r = registry_set_monitored(m->registry, d->outlets[i]->id, false);
        if (r < 0)
                return log_error_errno(r, "Failed to forget %s: %s", d->id, registry_last_error(m->registry));

        log_info("Removed %s (%s); discovery leaves it alone until it is added again", d->id, d->alias);
        /* A Discover still listening must not answer with freed devices. */
        for (PendingOp *op = m->ops; op; op = op->next)
                if (op->found) {
                        for (size_t i = 0; i < d->n_outlets; i++)
                                g_ptr_array_remove(op->found, d->outlets[i]);
                        g_ptr_array_remove(op->found, d);
                }
        if (m->bus) {
                for (size_t i = 0; i < d->n_outlets; i++)
                        if (d->outlets[i])
                                (void) sd_bus_emit_object_removed(m->bus, d->outlets[i]->path);
                (void) sd_bus_emit_object_removed(m->bus, d->path);
        }
        free_root(m, d);
        emit_count(m);
        return 0;
}

static int load_devices(Manager *m) {
        RegistryDevice *list = NULL;
        size_t n = 0;
        int r;

        r = registry_list(m->registry, &list, &n);
        if (r < 0)
                return log_error_errno(r, "Failed to read the device registry: %s", registry_last_error(m->registry));

        /* Roots first, then outlets into their roots. */
        for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < n; i++) {
                        RegistryDevice *rd = &list[i];
                        Device *d, *parent = NULL;

                        if (!rd->monitored || (pass == 0) != (rd->parent == NULL))
                                continue;
                        if (rd->parent) {
                                parent = manager_find(m, rd->parent);
                                if (!parent || rd->outlet_index < 0 || (size_t) rd->outlet_index >= parent->n_outlets)
                                        continue;
                        }
                        if (g_hash_table_size(m->devices) >= m->config.max_devices) {
                                log_warning("MaxDevices=%u reached, not loading %s", m->config.max_devices, rd->id);
                                continue;
                        }
                        if (device_new(&m->device_host, rd->id, parent, &d) < 0) {
                                registry_device_array_free(list, n);
                                return log_oom();
                        }
                        d->number = rd->number;
                        d->outlet = rd->outlet_index;
                        snprintf(d->mac, sizeof(d->mac), "%s", rd->mac ?: "");
                        snprintf(d->alias, sizeof(d->alias), "%s", rd->alias ?: "");
                        snprintf(d->model, sizeof(d->model), "%s", rd->model ?: "");
                        snprintf(d->hw_ver, sizeof(d->hw_ver), "%s", rd->hw_ver ?: "");
                        snprintf(d->sw_ver, sizeof(d->sw_ver), "%s", rd->sw_ver ?: "");
                        snprintf(d->device_id, sizeof(d->device_id), "%s", rd->device_id ?: "");
                        snprintf(d->child_id, sizeof(d->child_id), "%s", rd->child_id ?: "");
                        d->last_seen_usec = (uint64_t) rd->last_seen_ms * 1000;
                        if (parse_address(rd->address ?: "", &d->sockaddr) >= 0)
                                format_address(&d->sockaddr, d->address, sizeof(d->address));
                        if (parent) {
                                d->metered = rd->has_emeter;
                        } else {
                                /* Outlets are counted from the registry in the second pass. */
                                size_t outlets = 0;
                                for (size_t j = 0; j < n; j++)
                                        if (list[j].parent && strcmp(list[j].parent, rd->id) == 0 &&
                                            list[j].outlet_index >= 0)
                                                outlets = MAX(outlets, (size_t) list[j].outlet_index + 1);
                                d->n_outlets = outlets;
                                d->outlets = calloc(MAX(outlets, 1u), sizeof(Device *));
                                d->metered = rd->has_emeter && outlets == 0;
                        }
                        if ((!parent && !d->outlets) || insert_device(m, d) < 0) {
                                device_free(d);
                                registry_device_array_free(list, n);
                                return log_oom();
                        }
                        if (parent)
                                parent->outlets[rd->outlet_index] = d;
                        d->changes = 0;
                        restore_energy(m, d);
                }
        registry_device_array_free(list, n);
        log_info("Loaded %u known devices", g_hash_table_size(m->devices));
        return 0;
}

/* ---- AddDevice, Discover ---- */

static PendingOp *op_new(Manager *m, void *userdata) {
        PendingOp *op = calloc(1, sizeof(PendingOp));

        if (op) {
                op->manager = m;
                op->userdata = userdata;
        }
        return op;
}

static void op_unlink(Manager *m, PendingOp *op) {
        for (PendingOp **p = &m->ops; *p; p = &(*p)->next)
                if (*p == op) {
                        *p = op->next;
                        return;
                }
}

static PendingOp *op_free(PendingOp *op) {
        if (!op)
                return NULL;
        transport_free(op->transport);
        discovery_run_free(op->run);
        if (op->found)
                g_ptr_array_unref(op->found);
        sd_event_source_disable_unref(op->cleanup);
        free(op->sysinfo);
        free(op);
        return NULL;
}

static void add_finish(PendingOp *op);

static int on_op_cleanup(sd_event_source *s, void *userdata) {
        PendingOp *op = userdata;

        if (op->add_cb)
                add_finish(op);
        op_unlink(op->manager, op);
        op_free(op);
        return 0;
}

/* Callbacks of op->transport run inside it: free the op from the loop later. */
static void op_finish_later(PendingOp *op) {
        if (sd_event_add_defer(op->manager->event, &op->cleanup, on_op_cleanup, op) < 0)
                log_oom(); /* leaks one op until exit, harmless */
}

/* From the loop, not the connection's callback: registers what the
 * device said (writing the registry) and answers the caller. */
static void add_finish(PendingOp *op) {
        Manager *m = op->manager;
        char id[REGISTRY_ID_MAX], old_address[sizeof(((Device *) NULL)->address)] = "";
        Device *d = NULL, *known;
        int r = op->add_error;
        char *msg = op->add_message;
        size_t size = sizeof(op->add_message);

        if (r >= 0 && registry_make_id(op->sysinfo->mac, -1, id) < 0) {
                r = -EBADMSG;
                snprintf(msg, size, "The device at %s sent an invalid MAC address.", op->address);
        }
        if (r >= 0) {
                known = manager_find(m, id);
                if (known)
                        snprintf(old_address, sizeof(old_address), "%s", known->address);
                r = manager_register(m, &op->sa, op->sysinfo, &d);
                if (r == -ENOSPC)
                        snprintf(msg, size, "MaxDevices=%u devices are known already.", m->config.max_devices);
                else if (r < 0)
                        snprintf(msg, size, "Failed to register the device at %s: %s.", op->address, strerror(-r));
                else if (known && strcmp(old_address, d->address) == 0) {
                        r = -EEXIST;
                        snprintf(msg, size, "Device %s (%s) is known already, at %s.", d->id, d->alias, d->address);
                } else if (known) {
                        r = -EEXIST;
                        snprintf(msg, size, "Device %s (%s) is known already; its address changed from %s to %s.",
                                 d->id, d->alias, old_address, d->address);
                } else {
                        /* Added again after a removal: monitored again. */
                        r = registry_set_monitored(m->registry, d->id, true);
                        for (size_t i = 0; r >= 0 && i < d->n_outlets; i++)
                                if (d->outlets[i])
                                        r = registry_set_monitored(m->registry, d->outlets[i]->id, true);
                        if (r < 0)
                                log_warning_errno(r, "Failed to mark %s as monitored, ignoring: %s", d->id,
                                                  registry_last_error(m->registry));
                        r = 0;
                }
        }
        op->add_cb(m, r, msg, d, op->userdata);
        op->add_cb = NULL;
}

static void on_add_reply(Transport *t, int error, const char *json, size_t len, void *userdata) {
        PendingOp *op = userdata;
        static KasaResponse resp;
        char *msg = op->add_message;
        size_t size = sizeof(op->add_message);
        KasaError err;
        int r = error;

        if (error == -ECANCELED)
                return; /* manager shutting down: op_free answers */
        if (r < 0)
                snprintf(msg, size, "No Kasa device answered at %s: %s.", op->address, strerror(-r));
        else if (kasa_response_parse(json, len, &resp, &err) < 0) {
                r = -EBADMSG;
                if (snprintf(msg, size, "The device at %s sent a malformed reply: %s", op->address, err.message) >=
                    (int) size)
                        msg[size - 1] = 0;
        } else if (resp.sysinfo_err != 0) {
                r = -EBADMSG;
                snprintf(msg, size, "The device at %s refused get_sysinfo: err_code %d (%s).", op->address,
                         resp.sysinfo_err, kasa_err_to_string(resp.sysinfo_err));
        } else {
                op->sysinfo = malloc(sizeof(KasaSysinfo));
                if (op->sysinfo)
                        *op->sysinfo = resp.sysinfo;
                else {
                        r = -ENOMEM;
                        snprintf(msg, size, "Out of memory.");
                }
        }
        op->add_error = r;
        op_finish_later(op);
}

int manager_add_address(Manager *m, const char *address, ManagerAddFn cb, void *userdata) {
        _cleanup_free_ char *q = NULL;
        PendingOp *op;
        int r;

        op = op_new(m, userdata);
        if (!op)
                return -ENOMEM;
        op->add_cb = cb;
        r = parse_address(address, &op->sa);
        if (r < 0)
                goto fail;
        format_address(&op->sa, op->address, sizeof(op->address));
        r = transport_xor_new(&(TransportConfig) {
                        .event = m->event,
                        .address = op->sa,
                        .timeout_usec = m->config.poll_timeout_usec,
                        .max_reply = m->config.max_frame_size,
                }, &op->transport);
        if (r < 0)
                goto fail;
        q = kasa_request_query(KASA_QUERY_SYSINFO, NULL);
        if (!q) {
                r = -ENOMEM;
                goto fail;
        }
        r = transport_request(op->transport, q, on_add_reply, op);
        if (r < 0)
                goto fail;
        op->next = m->ops;
        m->ops = op;
        return 0;
fail:
        op->add_cb = NULL;
        op_free(op);
        return r;
}

static void on_discovered(DiscoveryRun *run, const struct sockaddr_in *from, const KasaSysinfo *si, void *userdata) {
        PendingOp *op = userdata;
        Manager *m = op->manager;
        char id[REGISTRY_ID_MAX];
        Device *d;
        int r;

        if (registry_make_id(si->mac, -1, id) < 0)
                return;
        if (!manager_find(m, id)) {
                /* No discovery brings back what was removed: only
                 * AddDevice does. */
                RegistryDevice rd = {};
                bool removed = registry_get(m->registry, id, &rd) >= 0 && !rd.monitored;
                registry_device_done(&rd);
                if (removed)
                        return;
                registry_batch_begin(m);
        }
        r = manager_register(m, from, si, &d);
        if (r == -ENOSPC) {
                log_warning("Not adding %s: MaxDevices=%u reached", id, m->config.max_devices);
                return;
        }
        if (r < 0) {
                log_warning_errno(r, "Failed to register %s, ignoring: %m", id);
                return;
        }
        if (op->found) {
                g_ptr_array_add(op->found, d);
                for (size_t i = 0; i < d->n_outlets; i++)
                        if (d->outlets[i])
                                g_ptr_array_add(op->found, d->outlets[i]);
        }
}

static void on_discovery_done(DiscoveryRun *run, int error, void *userdata) {
        PendingOp *op = userdata;

        op->run = NULL; /* freed by discovery itself after this */
        if (--op->manager->discovering == 0)
                registry_batch_end(op->manager);
        if (op->discover_cb)
                op->discover_cb(op->manager, error, (Device **) (op->found ? op->found->pdata : NULL),
                                op->found ? op->found->len : 0, op->userdata);
        op->discover_cb = NULL;
        op_finish_later(op);
}

static int start_discovery(Manager *m, uint64_t duration, ManagerDiscoverFn cb, void *userdata) {
        PendingOp *op;
        int r;

        op = op_new(m, userdata);
        if (!op)
                return -ENOMEM;
        op->discover_cb = cb;
        if (cb)
                op->found = g_ptr_array_new();
        r = discovery_run(m->event, m->config.discovery_targets, m->config.discovery_attempts, duration,
                          on_discovered, on_discovery_done, op, &op->run);
        if (r < 0) {
                op->discover_cb = NULL;
                op_free(op);
                return r;
        }
        m->discovering++;
        op->next = m->ops;
        m->ops = op;
        return 0;
}

int manager_discover(Manager *m, uint64_t timeout_usec, ManagerDiscoverFn cb, void *userdata) {
        return start_discovery(m, timeout_usec, cb, userdata);
}

static int on_rediscover_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        int r;

        r = start_discovery(m, m->config.discovery_timeout_usec, NULL, NULL);
        if (r < 0)
                log_warning_errno(r, "Failed to start discovery, ignoring: %m");
        if (m->config.discovery_interval_usec == 0)
                return 0;
        (void) sd_event_source_set_time(s, usec + m->config.discovery_interval_usec);
        return sd_event_source_set_enabled(s, SD_EVENT_ON);
}

static void on_address_change(void *userdata) {
        Manager *m = userdata;
        int r;

        log_info("Network addresses changed, discovering again");
        r = start_discovery(m, m->config.discovery_timeout_usec, NULL, NULL);
        if (r < 0)
                log_warning_errno(r, "Failed to start discovery, ignoring: %m");
}

/* ---- Describe ---- */

static json_t *device_json(Device *d) {
        json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:b,s:b,s:I,s:o,s:i,s:b}",
                              "id", d->id, "path", d->path, "alias", d->alias, "model", d->model,
                              "address", d->address, "mac", d->mac, "hardware_version", d->hw_ver,
                              "firmware_version", d->sw_ver, "on", d->on, "online", d->online,
                              "last_seen", (json_int_t) d->last_seen_usec,
                              "parent", d->parent ? json_string(d->parent->id) : json_null(),
                              "rssi", d->rssi, "metered", device_has_meter(d));
        if (o && d->n_outlets > 0) {
                json_t *ids = json_array();
                for (size_t i = 0; i < d->n_outlets; i++)
                        if (d->outlets[i])
                                json_array_append_new(ids, json_string(d->outlets[i]->id));
                json_object_set_new(o, "outlets", ids);
        }
        if (o && device_has_meter(d)) {
                int64_t now = manager_now_ms(d->manager);
                MeterReading r;
                bool known = meter_reading(d, &r);
                /* Unknown readings (offline, never read) are null, not 0. */
                json_t *e = json_pack("{s:o,s:o,s:o,s:f,s:f}",
                                      "power", known ? json_real(r.power_mw / 1000.0) : json_null(),
                                      "voltage", known ? json_real(r.voltage_mv / 1000.0) : json_null(),
                                      "current", known ? json_real(r.current_ma / 1000.0) : json_null(),
                                      "energy_total", meter_energy_total(d) / 1000.0,
                                      "energy_today", meter_energy_today(d, now) / 1000.0);
                json_object_set_new(o, "meter", e);
        }
        return o;
}

char *device_describe(Device *d) {
        json_t *o = device_json(d);
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        return s;
}

static int compare_id(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

char *manager_describe(Manager *m) {
        json_t *devs = json_array(), *o;
        guint n;
        gpointer *ids = g_hash_table_get_keys_as_array(m->devices, &n);
        char *s;

        qsort(ids, n, sizeof(gpointer), compare_id);
        for (guint i = 0; i < n; i++)
                json_array_append_new(devs, device_json(manager_find(m, ids[i])));
        g_free(ids);
        o = json_pack("{s:s,s:f,s:f,s:o}", "version", m->version, "poll_interval",
                      m->config.poll_interval_usec / 1e6, "total_power", manager_total_power(m) / 1000.0, "devices",
                      devs);
        s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        return s;
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
        if (!m->polkit)
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
        m->calendar = calendar_new(m->config.time_zone);
        if (!m->calendar)
                return log_error_errno(EINVAL, "Failed to load time zone '%s'.", m->config.time_zone);
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
        r = load_devices(m);
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

        r = add_timer(m, &m->flush_timer, FLUSH_INTERVAL_USEC, on_flush_timer);
        if (r >= 0)
                r = add_timer(m, &m->round_timer, m->config.poll_interval_usec, on_round_timer);
        if (r >= 0)
                r = add_timer(m, &m->rediscover_timer, 0, on_rediscover_timer);
        if (r >= 0 && sd_watchdog_enabled(false, &m->watchdog_usec) > 0)
                r = add_timer(m, &m->watchdog_timer, m->watchdog_usec / 2, on_watchdog_timer);
        if (r >= 0)
                r = arm_midnight_timer(m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up timers: %m");

        for (char **t = m->config.discovery_targets; t && *t; t++)
                if (strncmp(*t, "auto", 4) == 0 && (*t)[4] != '.' && !m->address_watch) {
                        r = address_watch_new(m->event, on_address_change, m, &m->address_watch);
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
        if (m->store)
                (void) manager_flush(m);
        if (m->registry) {
                GHashTableIter it;
                gpointer v;

                /* Whatever is pending, and every last_seen, in one commit. */
                registry_batch_end(m);
                registry_batch_begin(m);
                registry_save_marked(m);
                g_hash_table_iter_init(&it, m->devices);
                while (g_hash_table_iter_next(&it, NULL, &v)) {
                        Device *d = v;
                        (void) registry_touch(m->registry, d->id, (int64_t) (d->last_seen_usec / 1000));
                }
                registry_batch_end(m);
        }
        while (m->ops) {
                PendingOp *op = m->ops;
                m->ops = op->next;
                if (op->add_cb)
                        op->add_cb(m, -ECANCELED, "kasamond is shutting down.", NULL, op->userdata);
                if (op->discover_cb)
                        op->discover_cb(m, -ECANCELED, NULL, 0, op->userdata);
                op_free(op);
        }
        while (m->roots && m->roots->len > 0)
                free_root(m, m->roots->pdata[m->roots->len - 1]);
        if (m->roots)
                g_ptr_array_unref(m->roots);
        if (m->devices)
                g_hash_table_unref(m->devices);
        if (m->registry_dirty)
                g_hash_table_unref(m->registry_dirty);
        if (m->unstarted)
                g_ptr_array_unref(m->unstarted);
        address_watch_free(m->address_watch);
        polkit_queries_free(m->polkit);
        sd_event_source_disable_unref(m->flush_timer);
        sd_event_source_disable_unref(m->round_timer);
        sd_event_source_disable_unref(m->rediscover_timer);
        sd_event_source_disable_unref(m->watchdog_timer);
        sd_event_source_disable_unref(m->midnight_timer);
        sd_event_source_disable_unref(m->registry_save);
        sd_bus_flush_close_unref(m->bus);
        store_free(m->store);
        registry_free(m->registry);
        calendar_free(m->calendar);
        config_done(&m->config);
        free(m->state_dir);
        sd_event_unref(m->event);
        free(m);
        return NULL;
}
