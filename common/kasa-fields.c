/* SPDX-License-Identifier: MIT */

#include "kasa-fields.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

int kasa_fail(KasaError *err, const char *fmt, ...) {
        if (err) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(err->message, sizeof(err->message), fmt, ap);
                va_end(ap);
        }
        return -EBADMSG;
}

static int absent(const char *where, const char *key, bool required, KasaError *err) {
        return required ? kasa_fail(err, "%s: required field \"%s\" is missing", where, key) : 0;
}

int kasa_value_string(const KjTok *v, const char *where, const char *key, bool required, char *out,
                      size_t out_size, KasaError *err) {
        if (!v)
                return absent(where, key, required, err);
        if (!kj_is_string(v))
                return kasa_fail(err, "%s: field \"%s\" must be a string", where, key);
        if (v->decoded_len >= out_size)
                return kasa_fail(err, "%s: field \"%s\" is %zu bytes long, limit %zu", where, key,
                                 (size_t) v->decoded_len, out_size - 1);
        kj_string_copy(v, out);
        out[v->decoded_len] = 0;
        return 1;
}

int kasa_field_string(const KjTok *obj, const char *where, const char *key, bool required, char *out,
                      size_t out_size, KasaError *err) {
        return kasa_value_string(kj_object_get(obj, key), where, key, required, out, out_size, err);
}

int kasa_value_int(const KjTok *v, const char *where, const char *key, bool required, int64_t min, int64_t max,
                   int64_t *out, KasaError *err) {
        if (!v)
                return absent(where, key, required, err);
        if (!kj_is_integer(v))
                return kasa_fail(err, "%s: field \"%s\" must be an integer", where, key);
        if (v->integer < min || v->integer > max)
                return kasa_fail(err, "%s: field \"%s\" is %" PRId64 ", outside %" PRId64 "..%" PRId64, where, key,
                                 v->integer, min, max);
        *out = v->integer;
        return 1;
}

int kasa_field_int(const KjTok *obj, const char *where, const char *key, bool required, int64_t min, int64_t max,
                   int64_t *out, KasaError *err) {
        return kasa_value_int(kj_object_get(obj, key), where, key, required, min, max, out, err);
}

int kasa_field_scaled(const KjTok *obj, const char *where, const char *key, bool required, double scale,
                      int64_t min, int64_t max, int64_t *out, KasaError *err) {
        const KjTok *v = kj_object_get(obj, key);

        if (!v)
                return absent(where, key, required, err);
        if (!kj_is_number(v))
                return kasa_fail(err, "%s: field \"%s\" must be a number", where, key);
        double d = kj_number_value(v) * scale;
        if (!isfinite(d) || d < (double) min || d > (double) max)
                return kasa_fail(err, "%s: field \"%s\" is %g, outside the plausible range", where, key,
                                 kj_number_value(v));
        *out = (int64_t) llround(d);
        return 1;
}

int kasa_field_bool(const KjTok *obj, const char *where, const char *key, bool *out, KasaError *err) {
        const KjTok *v = kj_object_get(obj, key);

        if (!v)
                return 0;
        if (v->type != KJ_TRUE && v->type != KJ_FALSE)
                return kasa_fail(err, "%s: field \"%s\" must be true or false", where, key);
        *out = v->type == KJ_TRUE;
        return 1;
}
