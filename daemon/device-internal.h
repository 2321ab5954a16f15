/* SPDX-License-Identifier: MIT */
#pragma once

/* What device.c shares with device-command.c: not for the manager. */

#include <stddef.h>

#include "device.h"
#include "kasa-proto.h"

/* Tells the host that d's change mask is worth announcing. */
void device_notify(Device *d);
/* The parsed reply, or NULL for one that cannot be trusted (logged once
 * per outage). Points to static storage: valid until the next call. */
KasaResponse *device_parse_reply(Device *d, const char *json, size_t len);
/* Sets a fixed-size string field, marking change if it differs. */
void device_set_string(Device *d, char *field, size_t size, const char *value, unsigned change);
/* The root device's transport, made on first use. */
int device_ensure_transport(Device *d);
