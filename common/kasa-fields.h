/* SPDX-License-Identifier: MIT */
#pragma once

/* The field getters both JSON dialects (kasa-proto.c, kasa-smart.c) parse
 * device replies with. Each returns 1 when the field was read, 0 when it
 * is absent and not required, or -EBADMSG with a message naming the field
 * in err: present with the wrong type or an implausible value is always an
 * error. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kasa-json.h"
#include "kasa-proto.h"
#include "macro.h"

/* Sets err's message (if err) and returns -EBADMSG. */
_printf_(2, 3) int kasa_fail(KasaError *err, const char *fmt, ...);

int kasa_field_string(const KjTok *obj, const char *where, const char *key, bool required, char *out,
                      size_t out_size, KasaError *err);
int kasa_field_int(const KjTok *obj, const char *where, const char *key, bool required, int64_t min, int64_t max,
                   int64_t *out, KasaError *err);
/* A number in device units, scaled into internal units and rounded:
 * integer firmwares send integers, float firmwares either. */
int kasa_field_scaled(const KjTok *obj, const char *where, const char *key, bool required, double scale,
                      int64_t min, int64_t max, int64_t *out, KasaError *err);
int kasa_field_bool(const KjTok *obj, const char *where, const char *key, bool *out, KasaError *err);

/* kasa_field_string() and kasa_field_int() for a value already looked up (NULL: absent), as
 * kj_object_pick() gives them. */
int kasa_value_string(const KjTok *v, const char *where, const char *key, bool required, char *out,
                      size_t out_size, KasaError *err);
int kasa_value_int(const KjTok *v, const char *where, const char *key, bool required, int64_t min, int64_t max,
                   int64_t *out, KasaError *err);
