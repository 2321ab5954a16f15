/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A small, strict JSON reader for device replies: the whole text is checked
 * (RFC 8259 grammar, UTF-8, escapes, no NUL, no duplicate keys, integers
 * that fit int64, finite reals, an object or array at the top, nothing
 * after it: what jansson's json_loadb() with JSON_REJECT_DUPLICATES
 * accepts) into a flat array of tokens that point into the text. No
 * allocation for replies of up to KJ_INLINE_TOKENS values, which is every
 * reply a real device sends; the poll loop parses one per read.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum KjType {
        KJ_OBJECT,
        KJ_ARRAY,
        KJ_STRING,
        KJ_INTEGER,
        KJ_REAL,
        KJ_TRUE,
        KJ_FALSE,
        KJ_NULL,
} KjType;

typedef struct KjTok {
        const char *text;          /* strings: the raw bytes between the quotes */
        uint32_t len;              /* of text */
        uint32_t decoded_len;      /* strings: length once unescaped */
        uint32_t skip;             /* tokens in this value, itself included */
        uint32_t count;            /* objects: members; arrays: elements */
        uint32_t hash;             /* object keys: of the decoded bytes */
        uint8_t type;              /* KjType */
        bool escaped;              /* strings: text holds backslash escapes */
        union {
                int64_t integer;
                double real;
        };
} KjTok;

#define KJ_INLINE_TOKENS 512
/* Nesting deeper than this is refused, as jansson does. */
#define KJ_MAX_DEPTH 2048

typedef struct KjDoc {
        KjTok *toks;               /* inline, or malloc'd for huge replies */
        size_t n, size;
        KjTok inline_toks[KJ_INLINE_TOKENS];
} KjDoc;

/* Returns 0 with doc->toks[0] the top-level value, -EBADMSG with a reason
 * (and the byte offset) in errbuf, or -ENOMEM. doc must be released with
 * kj_done() either way. The tokens point into text. */
int kj_parse(KjDoc *doc, const char *text, size_t len, char *errbuf, size_t errsize);
void kj_done(KjDoc *doc);

/* The member named key (n bytes, no escapes needed), or NULL. */
const KjTok *kj_object_getn(const KjTok *obj, const char *key, size_t n);
/* The same for a NUL-terminated key; inline, so a literal's length is
 * known at compile time. */
static inline const KjTok *kj_object_get(const KjTok *obj, const char *key) {
        return kj_object_getn(obj, key, __builtin_strlen(key));
}
/* Keys to look up together, hashed once (kj_keys_init()) for any number
 * of objects. */
#define KJ_PICK_MAX 24
typedef struct KjKeys {
        const char *const *names;
        size_t n;
        uint32_t hash[KJ_PICK_MAX];
        uint8_t len[KJ_PICK_MAX];
        uint8_t slot[2 * KJ_PICK_MAX + 16]; /* a table of the hashes: index + 1, or 0 */
} KjKeys;
/* n names of at most 255 bytes, at most KJ_PICK_MAX; names must outlive keys. */
void kj_keys_init(KjKeys *keys, const char *const *names, size_t n);
/* The values of those keys in obj, in one pass over its members (each
 * lookup above walks them): out[i] is names[i]'s value, or NULL. */
void kj_object_pick(const KjTok *obj, const KjKeys *keys, const KjTok **out);
const KjTok *kj_array_get(const KjTok *array, size_t i);

/* Writes decoded_len bytes (no NUL) to out. */
void kj_string_copy(const KjTok *s, char *out);

static inline bool kj_is_object(const KjTok *t) {
        return t && t->type == KJ_OBJECT;
}
static inline bool kj_is_array(const KjTok *t) {
        return t && t->type == KJ_ARRAY;
}
static inline bool kj_is_string(const KjTok *t) {
        return t && t->type == KJ_STRING;
}
static inline bool kj_is_integer(const KjTok *t) {
        return t && t->type == KJ_INTEGER;
}
static inline bool kj_is_number(const KjTok *t) {
        return t && (t->type == KJ_INTEGER || t->type == KJ_REAL);
}
static inline double kj_number_value(const KjTok *t) {
        return t->type == KJ_INTEGER ? (double) t->integer : t->real;
}
