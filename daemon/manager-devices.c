/* SPDX-License-Identifier: MIT */

/* The manager's devices: registering what answers, loading what the
 * registry knows, removing, and writing the registry in batches. */

#include "manager.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "kasa-dbus.h"
#include "kasa-time.h"
#include "klap.h"
#include "log.h"
#include "manager-internal.h"
#include "readings.h"

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
 * number. A discovery run keeps the replies of new devices and registers
 * them when it ends, in one transaction, and they are polled only once it
 * is committed: no sample is stored under a number the registry has not
 * committed (a crash would hand it out again). */

static int on_registry_save(sd_event_source *s, void *userdata);

void manager_mark_dirty(Manager *m, Device *d) {
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

static void manager_unmark_dirty(Manager *m, Device *d) {
        g_hash_table_remove(m->registry_dirty, d->id);
        if (m->unstarted)
                g_ptr_array_remove(m->unstarted, d);
}

void manager_save_dirty(Manager *m) {
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
        manager_save_dirty(userdata);
        return 0;
}

void manager_batch_begin(Manager *m) {
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

void manager_batch_end(Manager *m) {
        int r;

        if (!m->registry_batch)
                return;
        manager_save_dirty(m);
        m->registry_batch = false;
        r = registry_commit(m->registry);
        if (r < 0) {
                /* Rolled back: save the new devices one by one, so that
                 * their numbers are committed before they are polled. */
                log_warning_errno(r, "Failed to commit the registry, saving the new devices one by one: %s",
                                  registry_last_error(m->registry));
                for (guint i = 0; i < m->unstarted->len; i++) {
                        Device *d = m->unstarted->pdata[i];
                        manager_mark_dirty(m, d);
                        for (size_t k = 0; k < d->n_outlets; k++)
                                if (d->outlets[k])
                                        manager_mark_dirty(m, d->outlets[k]);
                }
                manager_save_dirty(m);
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

void manager_free_root(Manager *m, Device *d) {
        /* The connection first: its cancelled requests are answered while
         * every outlet they name is still alive. */
        d->transport = transport_free(d->transport);
        manager_unmark_dirty(m, d);
        for (size_t i = 0; i < d->n_outlets; i++)
                if (d->outlets[i]) {
                        manager_unmark_dirty(m, d->outlets[i]);
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

/* The id a strip knows outlet i by, for the outlet's requests. */
static int set_child_id(Device *o, const KasaSysinfo *si, size_t i) {
        /* Some firmwares give only the two-digit index. */
        bool short_id = strlen(si->children[i].id) <= 2;
        char buf[2 * KASA_STRING_MAX], *id;

        snprintf(buf, sizeof(buf), "%s%s", short_id ? si->device_id : "", si->children[i].id);
        if (o->child_id && strcmp(o->child_id, buf) == 0)
                return 0;
        id = strdup(buf);
        if (!id)
                return -ENOMEM;
        free(o->child_id);
        o->child_id = id;
        device_forget_request(o);
        return 0;
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
                r = set_child_id(o, si, i);
                if (r < 0)
                        goto fail;
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
                d->backfill_due = device_has_meter(d);
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
                manager_free_root(m, d);
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
        manager_ops_forget(m, d);
        if (m->bus) {
                for (size_t i = 0; i < d->n_outlets; i++)
                        if (d->outlets[i])
                                (void) sd_bus_emit_object_removed(m->bus, d->outlets[i]->path);
                (void) sd_bus_emit_object_removed(m->bus, d->path);
        }
        manager_free_root(m, d);
        emit_count(m);
        return 0;
}

int manager_load_devices(Manager *m) {
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
                        /* An outlet's requests need it: never NULL there. */
                        if (d->outlet >= 0 && !(d->child_id = strdup(rd->child_id ?: ""))) {
                                device_free(d);
                                registry_device_array_free(list, n);
                                return log_oom();
                        }
                        d->last_seen_usec = (uint64_t) rd->last_seen_ms * 1000;
                        if (parse_address(rd->address ?: "", &d->sockaddr) >= 0)
                                format_address(&d->sockaddr, d->address, sizeof(d->address));
                        /* As device_set_address() decides: port 80 is KLAP. */
                        if (!parent && ntohs(d->sockaddr.sin_port) == KLAP_HTTP_PORT) {
                                d->klap = true;
                                d->auth = DEVICE_AUTH_UNKNOWN;
                                strcpy(d->protocol, "klap/iot");
                        }
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

