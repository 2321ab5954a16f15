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
#include "log.h"

#define USEC_PER_SEC 1000000ULL
#define FLUSH_INTERVAL_USEC (1 * USEC_PER_SEC)

typedef struct PendingOp PendingOp;
struct PendingOp {
        Manager *manager;
        PendingOp *next;
        /* AddDevice */
        Conn *conn;
        char address[32];
        struct sockaddr_in sa;
        ManagerAddFn add_cb;
        /* Discover */
        DiscoveryRun *run;
        GPtrArray *found;
        ManagerDiscoverFn discover_cb;
        bool explicit;
        void *userdata;
        sd_event_source *cleanup;  /* frees the op outside its own callbacks */
};

int64_t manager_now_ms(Manager *m) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int parse_address(const char *s, struct sockaddr_in *ret) {
        char host[INET_ADDRSTRLEN];
        const char *colon = strchr(s, ':');
        size_t n = colon ? (size_t) (colon - s) : strlen(s);
        unsigned long port = KASA_PORT;
        struct in_addr a;

        if (n == 0 || n >= sizeof(host))
                return -EINVAL;
        memcpy(host, s, n);
        host[n] = 0;
        if (inet_pton(AF_INET, host, &a) != 1)
                return -EINVAL;
        if (colon) {
                char *end;
                errno = 0;
                port = strtoul(colon + 1, &end, 10);
                if (errno || *end || end == colon + 1 || port == 0 || port > 65535)
                        return -EINVAL;
        }
        *ret = (struct sockaddr_in) {
                .sin_family = AF_INET,
                .sin_port = htons((uint16_t) port),
                .sin_addr = a,
        };
        return 0;
}

void format_address(const struct sockaddr_in *sa, char *buf, size_t size) {
        char host[INET_ADDRSTRLEN];

        inet_ntop(AF_INET, &sa->sin_addr, host, sizeof(host));
        if (ntohs(sa->sin_port) == KASA_PORT)
                snprintf(buf, size, "%s", host);
        else
                snprintf(buf, size, "%s:%u", host, ntohs(sa->sin_port));
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
                if (d->metered && d->online)
                        sum += d->power_mw;
        }
        return sum;
}

void manager_device_changed(Manager *m, Device *d) {
        bus_device_emit_changed(m, d);
}

/* ---- readings to the store ---- */

/* Samples go to the store as devices answer, each with its energy
 * account's state in the same log record, so that after a crash the
 * counters belong to the very samples stored and restore_energy()
 * continues from them. Once per poll interval the round is ended, which
 * costs one fdatasync of the store's log. */

/* The device a sample is for: samples carry the store number only. */
static Device *device_by_number(Manager *m, uint32_t number) {
        GHashTableIter it;
        gpointer v;
        Device *d = g_hash_table_lookup(m->by_number, GUINT_TO_POINTER(number));

        if (d)
                return d;
        g_hash_table_iter_init(&it, m->devices);
        while (g_hash_table_iter_next(&it, NULL, &v))
                if (((Device *) v)->number == number) {
                        g_hash_table_insert(m->by_number, GUINT_TO_POINTER(number), v);
                        return v;
                }
        return NULL;
}

void manager_record(Manager *m, const StoreSample *s) {
        Device *d = device_by_number(m, s->device);
        StoreCounter c;
        bool with = d && d->metered && d->energy.have_baseline && d->energy.ts_ms == s->ts_ms;
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

        g_hash_table_iter_init(&it, m->devices);
        while (g_hash_table_iter_next(&it, NULL, &v))
                online += ((Device *) v)->online;
        (void) sd_notifyf(false, "STATUS=%u devices, %u online, %.1f W", g_hash_table_size(m->devices), online,
                          (double) m->total_power_mw / 1000.0);
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

static int save_device(Manager *m, Device *d) {
        RegistryDevice rd;
        int r;

        fill_registry(d, &rd);
        r = registry_upsert(m->registry, &rd);
        if (r < 0)
                return log_error_errno(r, "Failed to save device %s: %s", d->id, registry_last_error(m->registry));
        d->number = rd.number;
        return 0;
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
        g_hash_table_remove_all(m->by_number);
        /* The connection first: its cancelled requests are answered while
         * every outlet they name is still alive. */
        d->conn = conn_free(d->conn);
        for (size_t i = 0; i < d->n_outlets; i++)
                if (d->outlets[i]) {
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
        bool created = false;
        int r;

        r = registry_make_id(si->mac, -1, id);
        if (r < 0)
                return r;
        d = manager_find(m, id);
        if (!d) {
                size_t needed = 1 + si->n_children;
                if (g_hash_table_size(m->devices) + needed > m->config.max_devices)
                        return -ENOSPC;
                r = device_new(m, id, NULL, &d);
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
                        char oid[REGISTRY_ID_MAX];
                        r = registry_make_id(si->mac, (int) i, oid);
                        if (r >= 0)
                                r = device_new(m, oid, d, &o);
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

        r = save_device(m, d);
        for (size_t i = 0; r >= 0 && i < d->n_outlets; i++)
                if (d->outlets[i])
                        r = save_device(m, d->outlets[i]);
        if (r < 0)
                goto fail;

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
        /* New or just re-found: poll at once, not at the next interval. */
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

        log_info("Removed %s (%s)", d->id, d->alias);
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
                        if (device_new(m, rd->id, parent, &d) < 0) {
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
        conn_free(op->conn);
        discovery_run_free(op->run);
        if (op->found)
                g_ptr_array_unref(op->found);
        sd_event_source_disable_unref(op->cleanup);
        free(op);
        return NULL;
}

static int on_op_cleanup(sd_event_source *s, void *userdata) {
        PendingOp *op = userdata;

        op_unlink(op->manager, op);
        op_free(op);
        return 0;
}

/* Callbacks of op->conn run inside it: free the op from the loop later. */
static void op_finish_later(PendingOp *op) {
        if (sd_event_add_defer(op->manager->event, &op->cleanup, on_op_cleanup, op) < 0)
                log_oom(); /* leaks one op until exit, harmless */
}

static void on_add_reply(Conn *c, int error, const char *json, size_t len, void *userdata) {
        PendingOp *op = userdata;
        Manager *m = op->manager;
        static KasaResponse resp;
        char msg[256];
        KasaError err;
        Device *d = NULL;
        int r = error;

        if (error == -ECANCELED)
                return; /* manager shutting down: op_free answers */
        if (r < 0)
                snprintf(msg, sizeof(msg), "No Kasa device answered at %s: %s.", op->address, strerror(-r));
        else if (kasa_response_parse(json, len, &resp, &err) < 0) {
                r = -EBADMSG;
                if (snprintf(msg, sizeof(msg), "The device at %s sent a malformed reply: %s", op->address,
                             err.message) >= (int) sizeof(msg))
                        msg[sizeof(msg) - 1] = 0;
        } else if (resp.sysinfo_err != 0) {
                r = -EBADMSG;
                snprintf(msg, sizeof(msg), "The device at %s refused get_sysinfo: err_code %d (%s).", op->address,
                         resp.sysinfo_err, kasa_err_to_string(resp.sysinfo_err));
        } else {
                r = manager_register(m, &op->sa, &resp.sysinfo, &d);
                if (r == -ENOSPC)
                        snprintf(msg, sizeof(msg), "MaxDevices=%u devices are known already.", m->config.max_devices);
                else if (r < 0)
                        snprintf(msg, sizeof(msg), "Failed to register the device at %s: %s.", op->address,
                                 strerror(-r));
                else
                        (void) registry_set_monitored(m->registry, d->id, true);
        }
        op->add_cb(m, r, msg, d, op->userdata);
        op->add_cb = NULL;
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
        r = conn_new(m->event, &op->sa, m->config.poll_timeout_usec, m->config.max_frame_size, &op->conn);
        if (r < 0)
                goto fail;
        q = kasa_request_query(KASA_QUERY_SYSINFO, NULL);
        if (!q) {
                r = -ENOMEM;
                goto fail;
        }
        r = conn_request(op->conn, q, on_add_reply, op);
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
        if (!op->explicit && !manager_find(m, id)) {
                /* Periodic discovery does not bring back what was removed. */
                RegistryDevice rd = {};
                bool removed = registry_get(m->registry, id, &rd) >= 0 && !rd.monitored;
                registry_device_done(&rd);
                if (removed)
                        return;
        }
        r = manager_register(m, from, si, &d);
        if (r == -ENOSPC) {
                log_warning("Not adding %s: MaxDevices=%u reached", id, m->config.max_devices);
                return;
        }
        if (r < 0) {
                log_warning_errno(r, "Failed to register %s: %m", id);
                return;
        }
        if (op->explicit)
                (void) registry_set_monitored(m->registry, d->id, true);
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
        if (op->discover_cb)
                op->discover_cb(op->manager, error, (Device **) (op->found ? op->found->pdata : NULL),
                                op->found ? op->found->len : 0, op->userdata);
        op->discover_cb = NULL;
        op_finish_later(op);
}

static int start_discovery(Manager *m, uint64_t duration, bool explicit, ManagerDiscoverFn cb, void *userdata) {
        PendingOp *op;
        int r;

        op = op_new(m, userdata);
        if (!op)
                return -ENOMEM;
        op->explicit = explicit;
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
        op->next = m->ops;
        m->ops = op;
        return 0;
}

int manager_discover(Manager *m, uint64_t timeout_usec, ManagerDiscoverFn cb, void *userdata) {
        return start_discovery(m, timeout_usec, true, cb, userdata);
}

static int on_rediscover_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        int r;

        r = start_discovery(m, m->config.discovery_timeout_usec, false, NULL, NULL);
        if (r < 0)
                log_warning_errno(r, "Failed to start discovery, ignoring: %m");
        if (m->config.discovery_interval_usec == 0)
                return 0;
        (void) sd_event_source_set_time(s, usec + m->config.discovery_interval_usec);
        return sd_event_source_set_enabled(s, SD_EVENT_ON);
}

static void on_address_change(void *userdata) {
        Manager *m = userdata;

        log_info("Network addresses changed, discovering again");
        if (start_discovery(m, m->config.discovery_timeout_usec, false, NULL, NULL) < 0)
                log_warning("Failed to start discovery, ignoring");
}

/* ---- Describe ---- */

static json_t *device_json(Device *d) {
        json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:b,s:b,s:I,s:o,s:i,s:b}",
                              "id", d->id, "path", d->path, "alias", d->alias, "model", d->model,
                              "address", d->address, "mac", d->mac, "hardware_version", d->hw_ver,
                              "firmware_version", d->sw_ver, "on", d->on, "online", d->online,
                              "last_seen", (json_int_t) d->last_seen_usec,
                              "parent", d->parent ? json_string(d->parent->id) : json_null(),
                              "rssi", d->rssi, "metered", d->metered);
        if (o && d->metered) {
                int64_t now = manager_now_ms(d->manager);
                json_t *e = json_pack("{s:f,s:f,s:f,s:f,s:f}", "power", d->power_mw / 1000.0, "voltage",
                                      d->voltage_mv / 1000.0, "current", d->current_ma / 1000.0, "energy_total",
                                      d->energy.cumulative_mwh / 1000.0, "energy_today",
                                      device_energy_today(d, now) / 1000.0);
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
        m->by_number = g_hash_table_new(g_direct_hash, g_direct_equal);
        m->roots = g_ptr_array_new();
        m->polkit = polkit_queries_new();
        if (!m->polkit)
                return log_oom();

        r = sd_event_default(&m->event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate the event loop: %m");
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
        if (r < 0)
                return log_error_errno(r, "Failed to set up timers: %m");

        for (char **t = m->config.discovery_targets; t && *t; t++)
                if (strncmp(*t, "auto", 4) == 0 && (*t)[4] != '.' && !m->address_watch) {
                        r = address_watch_new(m->event, on_address_change, m, &m->address_watch);
                        if (r < 0)
                                log_warning_errno(r, "Not watching address changes: %m");
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
                for (guint i = 0; i < m->roots->len; i++) {
                        Device *d = m->roots->pdata[i];
                        (void) registry_touch(m->registry, d->id, (int64_t) (d->last_seen_usec / 1000));
                }
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
        if (m->by_number)
                g_hash_table_unref(m->by_number);
        address_watch_free(m->address_watch);
        polkit_queries_free(m->polkit);
        sd_event_source_disable_unref(m->flush_timer);
        sd_event_source_disable_unref(m->round_timer);
        sd_event_source_disable_unref(m->rediscover_timer);
        sd_event_source_disable_unref(m->watchdog_timer);
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
