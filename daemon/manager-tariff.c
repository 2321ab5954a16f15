/* SPDX-License-Identifier: MIT */
#include "macro.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "kasa-dbus.h"
#include "log.h"
#include "manager-tariff-internal.h"

/* Describe adds these; taking them back makes its output a file again. */
static const char *const describe_keys[] = { "id", "source", "active", "devices", "assignments" };

static int refuse_errno(char **ret_error, int err, const char *msg) {
        if (ret_error)
                *ret_error = msg ? strdup(msg) : NULL;
        return err;
}

LoadedTariff *loaded_ref(LoadedTariff *t) {
        t->n_ref++;
        return t;
}

void loaded_unref(void *p) {
        LoadedTariff *t = p;
        if (!t || --t->n_ref > 0)
                return;
        tariff_row_done(&t->row);
        tariff_free(t->tariff);
        free(t->path);
        free(t);
}

static int64_t now_ms(Manager *m) {
        return manager_now_ms(m);
}

/* ---- parsing ---- */

/* text without the keys Describe adds, or NULL when it has none of them
 * (or is no JSON object: the parser says what is wrong then). */
static char *strip_describe_keys(const char *text) {
        json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
        bool changed = false;

        if (!json_is_object(o)) {
                json_decref(o);
                return NULL;
        }
        for (size_t i = 0; i < ELEMENTSOF(describe_keys); i++)
                if (json_object_del(o, describe_keys[i]) == 0)
                        changed = true;
        char *s = changed ? json_dumps(o, JSON_INDENT(2)) : NULL;
        json_decref(o);
        return s;
}

void parsed_free(Parsed *p, size_t n) {
        for (size_t i = 0; i < n; i++) {
                tariff_free(p[i].tariff);
                free(p[i].text);
        }
        free(p);
}

static int parse_file(const char *text, Parsed **ret, char **ret_error) {
        _cleanup_free_ char *stripped = strip_describe_keys(text);
        const char *t = stripped ?: text;
        Tariff *tariff = NULL;
        int r = tariff_file_parse(t, strlen(t), "tariff", &tariff, ret_error);
        if (r < 0)
                return r;
        Parsed *p = calloc(1, sizeof(Parsed));
        if (!p || !(p->text = strdup(t))) {
                free(p);
                tariff_free(tariff);
                return -ENOMEM;
        }
        p->tariff = tariff;
        *ret = p;
        return 1;
}

/* Keeps each URDB item's own text, so that each tariff is one item. */
static int parse_urdb(const char *text, Parsed **ret, char **ret_error) {
        Tariff **list = NULL;
        size_t n = 0;
        json_t *root = NULL;
        _cleanup_free_ char *stripped = strip_describe_keys(text);
        const char *t = stripped ?: text;
        int r;

        r = tariff_urdb_parse(t, strlen(t), "urdb", &list, &n, ret_error);
        if (r < 0)
                return r;
        root = json_loads(t, 0, NULL);
        json_t *items = json_object_get(root, "items");
        Parsed *p = calloc(MAX(n, (size_t) 1), sizeof(Parsed));
        if (!root || !p || (items && json_array_size(items) != n)) {
                json_decref(root);
                free(p);
                tariff_list_free(list, n);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                json_t *item = items ? json_array_get(items, i) : root;
                for (size_t k = 0; k < ELEMENTSOF(describe_keys); k++)
                        (void) json_object_del(item, describe_keys[k]);
                p[i].tariff = list[i];
                p[i].text = json_dumps(item, JSON_INDENT(2));
                list[i] = NULL;
        }
        json_decref(root);
        tariff_list_free(list, n);
        for (size_t i = 0; i < n; i++)
                if (!p[i].text) {
                        parsed_free(p, n);
                        return -ENOMEM;
                }
        *ret = p;
        return (int) n;
}

int parse_format(TariffFormat f, const char *text, Parsed **ret, char **ret_error) {
        size_t max = f == TARIFF_FORMAT_URDB ? TARIFF_URDB_MAX : TARIFF_FILE_MAX;
        /* Before any JSON is parsed: GetCostWith and PriceEnergy are open. */
        if (strlen(text) > max) {
                (void) tariff_refuse(ret_error, "%s: expected at most %zu bytes",
                                     f == TARIFF_FORMAT_URDB ? "urdb" : "tariff", max);
                return -EBADMSG;
        }
        return f == TARIFF_FORMAT_URDB ? parse_urdb(text, ret, ret_error) : parse_file(text, ret, ret_error);
}

TariffFormat detect_format(const char *text) {
        if (strlen(text) > TARIFF_URDB_MAX)
                return TARIFF_FORMAT_URDB; /* refused as too long */
        json_t *o = json_loads(text, 0, NULL);
        bool file = json_is_object(o) && json_object_get(o, "format");
        json_decref(o);
        return file ? TARIFF_FORMAT_FILE : TARIFF_FORMAT_URDB;
}

/* ---- the database and the list ---- */

static int reload_assignments(Manager *m, char **ret_error) {
        ManagerTariffs *mt = m->tariffs;
        TariffAssignment *a = NULL;
        size_t n = 0;
        int r = tariff_db_assignments(mt->db, &a, &n);
        if (r < 0) {
                (void) tariff_refuse(ret_error, "Failed to read the tariff assignments: %s", tariff_db_last_error(mt->db));
                return r;
        }
        tariff_assignment_array_free(mt->assignments, mt->n_assignments);
        mt->assignments = a;
        mt->n_assignments = n;
        mt->generation++;
        return 0;
}

static LoadedTariff *find_id(Manager *m, int64_t id) {
        for (guint i = 0; i < m->tariffs->list->len; i++) {
                LoadedTariff *t = m->tariffs->list->pdata[i];
                if (t->row.id == id)
                        return t;
        }
        return NULL;
}

static int loaded_new(Manager *m, const TariffRow *row, Tariff *tariff, LoadedTariff **ret) {
        LoadedTariff *t = calloc(1, sizeof(LoadedTariff));
        if (!t)
                return -ENOMEM;
        t->n_ref = 1;
        t->manager = m;
        t->row = *row;
        t->tariff = tariff;
        if (asprintf(&t->path, KASA_TARIFF_PREFIX "/%" PRId64, row->id) < 0) {
                t->path = NULL;
                t->row = (TariffRow) {};
                t->tariff = NULL;
                free(t);
                return -ENOMEM;
        }
        *ret = t;
        return 0;
}

int manager_tariffs_open(Manager *m) {
        _cleanup_free_ char *path = NULL;
        char *error = NULL;
        TariffRow *rows = NULL;
        size_t n = 0;
        int r;

        m->tariffs = calloc(1, sizeof(ManagerTariffs));
        if (!m->tariffs)
                return log_oom();
        m->tariffs->list = g_ptr_array_new_with_free_func(loaded_unref);
        m->tariffs->costs = g_hash_table_new_full(g_str_hash, g_str_equal, free, free);
        if (asprintf(&path, "%s/tariffs.sqlite", m->state_dir) < 0)
                return log_oom();
        r = tariff_db_open(path, &m->tariffs->db, &error);
        if (r < 0) {
                log_error_errno(r, "Failed to open %s: %s", path, error ?: strerror(-r));
                free(error);
                return r;
        }
        r = tariff_db_list(m->tariffs->db, &rows, &n);
        if (r < 0)
                return log_error_errno(r, "Failed to read the tariffs from %s: %s", path,
                                       tariff_db_last_error(m->tariffs->db));
        for (size_t i = 0; i < n; i++) {
                Parsed *p = NULL;
                LoadedTariff *t;
                r = parse_format(rows[i].format, rows[i].text, &p, &error);
                if (r < 0 && r != -ENOMEM) {
                        /* Written by a kasamond that took it: keep the row,
                         * price nothing with it. */
                        log_warning("Tariff %" PRId64 " (%s) no longer parses, not pricing with it, ignoring: %s",
                                    rows[i].id, rows[i].name, error ?: "?");
                        free(TAKE_PTR(error));
                } else if (r < 0) {
                        tariff_row_array_free(rows, n);
                        return log_oom();
                }
                r = loaded_new(m, &rows[i], p ? TAKE_PTR(p[0].tariff) : NULL, &t);
                parsed_free(p, p ? 1 : 0);
                if (r < 0) {
                        tariff_row_array_free(rows, n);
                        return log_oom();
                }
                rows[i] = (TariffRow) {};
                g_ptr_array_add(m->tariffs->list, t);
        }
        tariff_row_array_free(rows, n);
        r = reload_assignments(m, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to read the tariff assignments from %s: %s", path,
                                       tariff_db_last_error(m->tariffs->db));
        log_debug("%u tariffs, %zu assignments", m->tariffs->list->len, m->tariffs->n_assignments);
        return 0;
}

void manager_tariffs_free(Manager *m) {
        ManagerTariffs *mt = m->tariffs;
        if (!mt)
                return;
        manager_cost_stop(m);
        manager_cost_today_free(m);
        tariff_db_free(mt->db);
        if (mt->list)
                g_ptr_array_unref(mt->list);
        if (mt->costs)
                g_hash_table_unref(mt->costs);
        tariff_assignment_array_free(mt->assignments, mt->n_assignments);
        free(mt);
        m->tariffs = NULL;
}

size_t manager_tariff_count(Manager *m) {
        return m->tariffs ? m->tariffs->list->len : 0;
}

LoadedTariff *manager_tariff_get(Manager *m, size_t i) {
        return i < manager_tariff_count(m) ? m->tariffs->list->pdata[i] : NULL;
}

LoadedTariff *manager_tariff_find_path(Manager *m, const char *path) {
        const char *prefix = KASA_TARIFF_PREFIX "/";
        char *end;

        if (!m->tariffs || !path || strncmp(path, prefix, strlen(prefix)) != 0)
                return NULL;
        const char *id = path + strlen(prefix);
        if (*id < '1' || *id > '9')
                return NULL;
        errno = 0;
        long long v = strtoll(id, &end, 10);
        if (errno != 0 || *end)
                return NULL;
        return find_id(m, v);
}

int manager_tariff_add(Manager *m, bool urdb, const char *text, LoadedTariff ***ret, size_t *ret_n,
                       char **ret_error) {
        ManagerTariffs *mt = m->tariffs;
        TariffFormat f = urdb ? TARIFF_FORMAT_URDB : TARIFF_FORMAT_FILE;
        Parsed *p = NULL;
        int r, n;

        n = parse_format(f, text, &p, ret_error);
        if (n < 0)
                return n;
        LoadedTariff **added = calloc((size_t) n + 1, sizeof(LoadedTariff *));
        if (!added) {
                parsed_free(p, (size_t) n);
                return -ENOMEM;
        }
        for (int i = 0; i < n; i++) {
                const Tariff *T = p[i].tariff;
                TariffRow row = {
                        .format = f,
                        .text = p[i].text,
                        .name = T->name,
                        .utility = T->utility,
                        .currency = (char *) T->currency,
                        .valid_from_ms = T->valid_from_ms,
                        .valid_until_ms = T->valid_until_ms,
                        .added_ms = now_ms(m),
                };
                r = tariff_db_add(mt->db, &row, &row.id);
                if (r < 0) {
                        log_error_errno(r, "Failed to store tariff %s: %s", T->name, tariff_db_last_error(mt->db));
                        tariff_refuse(ret_error, "Failed to store tariff %s: %s", T->name, tariff_db_last_error(mt->db));
                        goto fail;
                }
                /* The row takes copies of the strings it points at. */
                row.text = strdup(p[i].text);
                row.name = strdup(T->name);
                row.utility = T->utility ? strdup(T->utility) : NULL;
                row.currency = strdup(T->currency);
                if (!row.text || !row.name || (T->utility && !row.utility) || !row.currency) {
                        tariff_row_done(&row);
                        r = -ENOMEM;
                        goto fail;
                }
                r = loaded_new(m, &row, TAKE_PTR(p[i].tariff), &added[i]);
                if (r < 0) {
                        tariff_row_done(&row);
                        goto fail;
                }
                g_ptr_array_add(mt->list, added[i]);
                log_info("Tariff %" PRId64 " added: %s (%s)", row.id, row.name, row.currency);
        }
        parsed_free(p, (size_t) n);
        for (int i = 0; m->bus && i < n; i++) {
                r = sd_bus_emit_object_added(m->bus, added[i]->path);
                if (r < 0)
                        log_debug_errno(r, "Failed to announce %s, ignoring: %m", added[i]->path);
        }
        *ret = added;
        *ret_n = (size_t) n;
        return 0;
fail:
        /* Tariffs stored before the failure stay: they are whole. */
        parsed_free(p, (size_t) n);
        free(added);
        return r;
}

int manager_tariff_remove(Manager *m, LoadedTariff *t, char **ret_error) {
        ManagerTariffs *mt = m->tariffs;
        _cleanup_free_ char *path = strdup(t->path);
        int r;

        if (!path)
                return -ENOMEM;
        r = tariff_db_remove(mt->db, t->row.id);
        if (r == -EBUSY || r == -ENOENT)
                return refuse_errno(ret_error, r, tariff_db_last_error(mt->db));
        if (r < 0) {
                log_error_errno(r, "Failed to remove tariff %" PRId64 ": %s", t->row.id, tariff_db_last_error(mt->db));
                return refuse_errno(ret_error, r, tariff_db_last_error(mt->db));
        }
        log_info("Tariff %" PRId64 " removed: %s", t->row.id, t->row.name);
        g_ptr_array_remove(mt->list, t);
        if (m->bus) {
                r = sd_bus_emit_object_removed(m->bus, path);
                if (r < 0)
                        log_debug_errno(r, "Failed to announce the removal of %s, ignoring: %m", path);
        }
        return 0;
}

int manager_tariff_activate(Manager *m, LoadedTariff *t, Device **devices, size_t n, int64_t since_ms,
                            char **ret_error) {
        ManagerTariffs *mt = m->tariffs;
        _cleanup_free_ const char **ids = calloc(MAX(n, (size_t) 1), sizeof(char *));
        int r;

        if (!ids)
                return -ENOMEM;
        if (!t && n == 0)
                return tariff_refuse(ret_error, "The home needs a tariff: \"/\" gives devices back to the home's.");
        if (t && !t->tariff)
                return tariff_refuse(ret_error, "Tariff %" PRId64 " does not parse any longer; add it again.", t->row.id);
        for (size_t i = 0; i < n; i++)
                ids[i] = devices[i]->id;
        /* Costs are computed from minute rollups: a change on their
         * boundary prices each minute with one tariff. */
        since_ms = since_ms ?: now_ms(m);
        since_ms -= since_ms % 60000;
        r = tariff_db_assign(mt->db, ids, n, t ? t->row.id : 0, since_ms);
        if (r < 0) {
                if (r != -ENOENT && r != -EINVAL)
                        log_error_errno(r, "Failed to store the tariff assignment: %s", tariff_db_last_error(mt->db));
                return refuse_errno(ret_error, r, tariff_db_last_error(mt->db));
        }
        r = reload_assignments(m, ret_error);
        if (r < 0)
                return r;
        log_info("Tariff %s from %" PRId64 " for %s", t ? t->row.name : "of the home", since_ms,
                 n == 0 ? "the home" : "devices");
        /* The round signals Active and Devices itself when the home's
         * tariff changed; once is enough. */
        int64_t home = m->tariffs->active_home;
        manager_tariffs_round(m);
        if (m->tariffs->active_home == home)
                emit_tariff_changes(m);
        return 0;
}

/* ---- who is priced by what, now ---- */

int64_t current_assignment(Manager *m, const char *device, int64_t now, bool *found) {
        ManagerTariffs *mt = m->tariffs;
        int64_t cur = 0;
        *found = false;
        for (size_t i = 0; i < mt->n_assignments && mt->assignments[i].since_ms <= now; i++) {
                const TariffAssignment *a = &mt->assignments[i];
                if (device ? a->device && strcmp(a->device, device) == 0 : !a->device) {
                        cur = a->tariff;
                        *found = true;
                }
        }
        return cur;
}

bool manager_tariff_is_active(Manager *m, const LoadedTariff *t) {
        bool found;
        return current_assignment(m, NULL, now_ms(m), &found) == t->row.id;
}

int manager_tariff_devices(Manager *m, const LoadedTariff *t, char ***ret) {
        ManagerTariffs *mt = m->tariffs;
        int64_t now = now_ms(m);
        GPtrArray *l = g_ptr_array_new();

        for (size_t i = 0; i < mt->n_assignments; i++) {
                const char *dev = mt->assignments[i].device;
                bool found, seen = false;
                if (!dev || current_assignment(m, dev, now, &found) != t->row.id)
                        continue;
                for (size_t k = 0; k < i; k++)
                        seen = seen || (mt->assignments[k].device && strcmp(mt->assignments[k].device, dev) == 0);
                if (seen)
                        continue;
                g_ptr_array_add(l, g_strdup_printf(KASA_DEVICE_PREFIX "/%s", dev));
        }
        g_ptr_array_add(l, NULL);
        *ret = (char **) g_ptr_array_free(l, false);
        return 0;
}

char *manager_tariff_describe(Manager *m, const LoadedTariff *t) {
        ManagerTariffs *mt = m->tariffs;
        json_t *o = json_loads(t->row.text, 0, NULL), *as = json_array();
        char **devs = NULL;
        char *s = NULL;

        if (!json_is_object(o)) {
                json_decref(o);
                o = json_pack("{s:s}", "text", t->row.text);
        }
        if (!o || !as || manager_tariff_devices(m, t, &devs) < 0)
                goto finish;
        json_t *dl = json_array();
        for (char **d = devs; dl && *d; d++)
                json_array_append_new(dl, json_string(*d));
        for (size_t i = 0; i < mt->n_assignments; i++) {
                const TariffAssignment *a = &mt->assignments[i];
                if (a->tariff != t->row.id)
                        continue;
                json_array_append_new(as, json_pack("{s:o,s:I}", "device",
                                                    a->device ? json_string(a->device) : json_null(), "since",
                                                    (json_int_t) a->since_ms * 1000));
        }
        json_object_set_new(o, "id", json_integer(t->row.id));
        json_object_set_new(o, "source", json_string(tariff_format_to_string(t->row.format)));
        json_object_set_new(o, "active", json_boolean(manager_tariff_is_active(m, t)));
        json_object_set_new(o, "devices", dl);
        json_object_set(o, "assignments", as);
        s = json_dumps(o, JSON_INDENT(2));
finish:
        g_strfreev(devs);
        json_decref(as);
        json_decref(o);
        return s;
}

void emit_tariff_changes(Manager *m) {
        if (!m->bus)
                return;
        for (guint i = 0; i < m->tariffs->list->len; i++) {
                LoadedTariff *t = m->tariffs->list->pdata[i];
                int r = sd_bus_emit_properties_changed(m->bus, t->path, KASA_TARIFF_IFACE, "Active", "Devices", NULL);
                if (r < 0)
                        log_debug_errno(r, "Failed to emit the changes of %s, ignoring: %m", t->path);
        }
}
