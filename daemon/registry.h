/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The device registry: every plug and outlet ever seen, in SQLite.
 *
 * A device's id comes from its MAC (and outlet index), so it survives
 * address changes; its number is a small integer assigned once and never
 * reused, the time-series store's key. Functions return negative errno; the
 * SQLite message of the last failure is in registry_last_error(), for the
 * caller to log once. */

typedef struct Registry Registry;

#define REGISTRY_ID_MAX 32

typedef struct RegistryDevice {
        char *id;               /* "50c7bf0a1b2c" or, for an outlet, "50c7bf0a1b2c_01" */
        uint32_t number;        /* assigned by the registry */
        char *parent;           /* outlets: the strip's id; else NULL */
        char *mac;
        int outlet_index;       /* -1 unless an outlet */
        char *alias;
        char *model;
        char *hw_ver;
        char *sw_ver;
        char *address;          /* last known, "127.0.0.2" or "host:port" */
        char *device_id;        /* the Kasa deviceId */
        char *child_id;         /* the Kasa child id (outlets) */
        bool has_emeter;
        int64_t first_seen_ms;  /* UTC ms; kept by the registry */
        int64_t last_seen_ms;
        bool monitored;         /* 1 for a new device; changed only by registry_set_monitored() */
} RegistryDevice;

/* mac: 12 hex digits, optionally separated by ':' or '-'; outlet: -1 for
 * the device itself, else 0..99. Returns 0 or -EINVAL. */
int registry_make_id(const char *mac, int outlet, char ret[static REGISTRY_ID_MAX]);

/* Opens (creating if needed) and migrates the database. On failure a
 * message is returned in *ret_error (free()) if given. */
int registry_open(const char *path, Registry **ret, char **ret_error);
Registry *registry_free(Registry *r);
const char *registry_last_error(const Registry *r);

/* Insert, or update by id. Keeps id, number, first_seen and monitored of a
 * known device and writes them back into *dev (number, first_seen_ms,
 * monitored); strings in *dev are only read. A device whose row says all
 * *dev says already (NULL strings: keep) is not written at all. */
int registry_upsert(Registry *r, RegistryDevice *dev);

/* -ENOENT if unknown. *ret is filled with new strings: registry_device_done(). */
int registry_get(Registry *r, const char *id, RegistryDevice *ret);

/* All devices ordered by number: registry_device_array_free(). */
int registry_list(Registry *r, RegistryDevice **ret, size_t *ret_n);

/* Removes the device and its outlets. -ENOENT if unknown. */
int registry_remove(Registry *r, const char *id);
int registry_set_alias(Registry *r, const char *id, const char *alias);
int registry_set_monitored(Registry *r, const char *id, bool monitored);
int registry_touch(Registry *r, const char *id, int64_t last_seen_ms);

/* Batches: every write between registry_begin() and registry_commit()
 * goes into one transaction (a failed upsert leaves nothing of itself in
 * it). Without a batch each write is a transaction of its own. On failure
 * registry_commit() rolls the batch back. */
int registry_begin(Registry *r);
int registry_commit(Registry *r);

/* Transactions committed and rows changed since registry_open(), for the
 * debug log and the tests. */
unsigned registry_commits(const Registry *r);
int64_t registry_total_changes(const Registry *r);

/* The schema version the database is at after registry_open(). */
int registry_schema_version(Registry *r);

void registry_device_done(RegistryDevice *d);
void registry_device_array_free(RegistryDevice *a, size_t n);
