/* SPDX-License-Identifier: MIT */

#include "kasa-json.h"
#include "macro.h"

#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct Parser {
        const char *start, *p, *end;
        KjDoc *doc;
        char *err;
        size_t err_size;
        uint32_t *keys;            /* scratch for the duplicate check of big objects */
        size_t keys_size;
        uint32_t inline_keys[256];
} Parser;

/* Objects with up to this many members check each new key against the
 * earlier ones as it is read (a sysinfo has about 27, and comparing
 * hashes is cheap); bigger ones sort their keys when they close, so a
 * hostile reply of 64 KiB of keys costs n log n comparisons, not n². */
#define KJ_LINEAR_KEYS 32

static int parse_value(Parser *ps, unsigned depth);

__attribute__((format(printf, 2, 3))) static int perr(Parser *ps, const char *fmt, ...) {
        va_list ap;
        int n;

        if (ps->err_size == 0)
                return -EBADMSG;
        n = snprintf(ps->err, ps->err_size, "byte %zu: ", (size_t) (ps->p - ps->start));
        if (n >= 0 && (size_t) n < ps->err_size) {
                va_start(ap, fmt);
                vsnprintf(ps->err + n, ps->err_size - (size_t) n, fmt, ap);
                va_end(ap);
        }
        return -EBADMSG;
}

static int grow_toks(KjDoc *d) {
        size_t size = d->size * 4;
        KjTok *t = d->toks == d->inline_toks ? malloc(size * sizeof(KjTok)) : realloc(d->toks, size * sizeof(KjTok));

        if (!t)
                return -ENOMEM;
        if (d->toks == d->inline_toks)
                memcpy(t, d->inline_toks, d->n * sizeof(KjTok));
        d->toks = t;
        d->size = size;
        return 0;
}

/* Index, not pointer: the array may move when it grows. Inline: a reply
 * is some sixty tokens, and a call each cost more than filling them. */
static inline int new_tok(Parser *ps, KjType type, size_t *ret) {
        KjDoc *d = ps->doc;

        if (_unlikely_(d->n == d->size)) {
                int r = grow_toks(d);
                if (r < 0)
                        return r;
        }
        d->toks[d->n] = (KjTok) { .text = ps->p, .type = type, .skip = 1 };
        *ret = d->n++;
        return 0;
}

/* The next byte past any whitespace (ps->p left on it), or -1 at the end.
 * Devices send no whitespace: one test for the usual case. */
static inline int peek(Parser *ps) {
        const char *p = ps->p;

        if (_likely_(p < ps->end && (unsigned char) *p > ' '))
                return (unsigned char) *p;
        while (p < ps->end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
                p++;
        ps->p = p;
        return p < ps->end ? (unsigned char) *p : -1;
}

static int hex4(const char *p, unsigned *ret) {
        unsigned v = 0;

        for (int i = 0; i < 4; i++) {
                char c = p[i];
                v <<= 4;
                if (c >= '0' && c <= '9')
                        v |= (unsigned) (c - '0');
                else if (c >= 'a' && c <= 'f')
                        v |= (unsigned) (c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                        v |= (unsigned) (c - 'A' + 10);
                else
                        return -1;
        }
        *ret = v;
        return 0;
}

static size_t utf8_put(unsigned cp, char *out) {
        if (cp < 0x80) {
                out[0] = (char) cp;
                return 1;
        }
        if (cp < 0x800) {
                out[0] = (char) (0xC0 | cp >> 6);
                out[1] = (char) (0x80 | (cp & 0x3F));
                return 2;
        }
        if (cp < 0x10000) {
                out[0] = (char) (0xE0 | cp >> 12);
                out[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
                out[2] = (char) (0x80 | (cp & 0x3F));
                return 3;
        }
        out[0] = (char) (0xF0 | cp >> 18);
        out[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char) (0x80 | (cp & 0x3F));
        return 4;
}

/* One escape after its backslash (p points past it): the code point, and
 * how many bytes it took; the escape was checked by the parser. */
static size_t unescape(const char *p, unsigned *ret_cp) {
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        unsigned cp, lo;

        if (*p != 'u') {
                *ret_cp = (unsigned char) to[strchr(from, *p) - from];
                return 1;
        }
        (void) hex4(p + 1, &cp);
        if (cp >= 0xD800 && cp <= 0xDBFF) {
                (void) hex4(p + 7, &lo);
                *ret_cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                return 11;
        }
        *ret_cp = cp;
        return 5;
}

/* A key's hash, of its decoded bytes, eight at a time (a byte at a time
 * was a tenth of a poll's parse). avail is how many bytes may be read
 * from s, at least n: the last word is read whole when it can be and
 * masked to the key's bytes. Words are taken little-endian, so the
 * masked read and the byte loop agree on any machine. */
static inline uint32_t key_hash(const char *s, size_t n, size_t avail) {
        const uint64_t k = UINT64_C(0x9E3779B97F4A7C15);
        uint64_t h = (uint64_t) n * k, w;

        for (; n >= 8; s += 8, n -= 8, avail -= 8) {
                memcpy(&w, s, 8);
                h = (h ^ le64toh(w)) * k;
                h ^= h >> 29;
        }
        if (n > 0) {
                if (avail >= 8) {
                        memcpy(&w, s, 8);
                        w = le64toh(w) & (UINT64_MAX >> (64 - 8 * n));
                } else {
                        w = 0;
                        for (size_t i = 0; i < n; i++)
                                w |= (uint64_t) (unsigned char) s[i] << (8 * i);
                }
                h = (h ^ w) * k;
                h ^= h >> 29;
        }
        h *= k;
        return (uint32_t) (h >> 32);
}

/* The bytes a string's fast path stops at: controls, quote, backslash and
 * everything past ASCII. */
static const bool string_special[256] = {
        [0x00 ... 0x1f] = true, ['"'] = true, ['\\'] = true, [0x80 ... 0xff] = true,
};

/* Which of x's 8 bytes are string_special, as their high bits (0: none).
 * Exact as a yes or no, not a filter: each term is the classic zero-byte
 * test (Bit Twiddling Hacks' hasless() and haszero()), which has no false
 * positives in bytes below 0x80, and any byte from 0x80 up answers yes by
 * itself. */
static inline uint64_t word_special(uint64_t x) {
        const uint64_t ones = UINT64_C(0x0101010101010101), highs = UINT64_C(0x8080808080808080);
        uint64_t quote = x ^ (ones * '"'), backslash = x ^ (ones * '\\');

        return (((x - ones * 0x20) | (quote - ones) | (backslash - ones)) & ~x & highs) | (x & highs);
}

/* The first string_special byte from p on, or end. Of word_special()'s
 * bits the lowest is exact (a borrow only runs towards higher bytes), and
 * on a little-endian machine it is the first byte in memory. */
static inline const char *find_special(const char *p, const char *end) {
        for (uint64_t x, m; end - p >= 8; p += 8) {
                memcpy(&x, p, 8);
                m = word_special(x);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                if (m)
                        return p + (__builtin_ctzll(m) >> 3);
#else
                if (m)
                        break;
#endif
        }
        while (p < end && !string_special[(unsigned char) *p])
                p++;
        return p;
}

/* The hash of a key that holds escapes, of its decoded bytes. */
static int escaped_key_hash(const KjTok *t, uint32_t *ret) {
        char small[256], *buf = small;
        size_t size = (size_t) t->decoded_len + 8;

        if (size > sizeof(small)) {
                buf = malloc(size);
                if (!buf)
                        return -ENOMEM;
        }
        kj_string_copy(t, buf);
        *ret = key_hash(buf, t->decoded_len, size);
        if (buf != small)
                free(buf);
        return 0;
}

/* A string with escapes or bytes past ASCII, from its opening quote;
 * parse_string() read its plain start up to special. */
static int parse_string_slow(Parser *ps, bool key, const char *special, size_t *ret) {
        size_t idx;
        uint32_t dlen;
        bool escaped = false;
        int r;

        ps->p++; /* the quote */
        r = new_tok(ps, KJ_STRING, &idx);
        if (r < 0)
                return r;
        dlen = (uint32_t) (special - ps->p);
        ps->p = special;
        for (;;) {
                /* Plain ASCII is nearly all of a reply: a tight loop for
                 * it, the checks below for everything else. */
                const char *p = find_special(ps->p, ps->end);
                dlen += (uint32_t) (p - ps->p);
                ps->p = p;
                if (ps->p >= ps->end)
                        return perr(ps, "premature end of input in a string");
                unsigned char c = (unsigned char) *ps->p;
                if (c == '"')
                        break;
                if (c < 0x20)
                        return perr(ps, "control character in a string");
                if (c == '\\') {
                        const char *e = ps->p + 1;
                        unsigned cp, lo;
                        char buf[4];

                        escaped = true;
                        if (e >= ps->end)
                                return perr(ps, "premature end of input in a string");
                        if (*e == 'u') {
                                if (ps->end - e < 5 || hex4(e + 1, &cp) < 0)
                                        return perr(ps, "invalid \\u escape");
                                if (cp >= 0xDC00 && cp <= 0xDFFF)
                                        return perr(ps, "invalid Unicode '\\u%04X' (a lone low surrogate)", cp);
                                if (cp >= 0xD800 && cp <= 0xDBFF) {
                                        if (ps->end - e < 11 || e[5] != '\\' || e[6] != 'u' || hex4(e + 7, &lo) < 0 ||
                                            lo < 0xDC00 || lo > 0xDFFF)
                                                return perr(ps, "invalid Unicode '\\u%04X' (a high surrogate without a low one)", cp);
                                }
                                if (cp == 0)
                                        return perr(ps, "\\u0000 is not allowed in a string");
                        } else if (!*e || !strchr("\"\\/bfnrt", *e))
                                return perr(ps, "invalid escape in a string");
                        ps->p = e + unescape(e, &cp);
                        dlen += (uint32_t) utf8_put(cp, buf);
                        continue;
                }
                size_t n = 1;
                if (c >= 0x80) {
                        /* Well-formed UTF-8 only: no overlong forms, no
                         * surrogates, nothing past U+10FFFF. */
                        const unsigned char *u = (const unsigned char *) ps->p;
                        size_t left = (size_t) (ps->end - ps->p);
                        unsigned char lo2 = 0x80, hi2 = 0xBF;

                        if (c >= 0xC2 && c <= 0xDF)
                                n = 2;
                        else if (c >= 0xE0 && c <= 0xEF) {
                                n = 3;
                                if (c == 0xE0)
                                        lo2 = 0xA0;
                                if (c == 0xED)
                                        hi2 = 0x9F;
                        } else if (c >= 0xF0 && c <= 0xF4) {
                                n = 4;
                                if (c == 0xF0)
                                        lo2 = 0x90;
                                if (c == 0xF4)
                                        hi2 = 0x8F;
                        } else
                                return perr(ps, "unable to decode byte 0x%02x in a string", c);
                        bool bad = left < n || u[1] < lo2 || u[1] > hi2;
                        for (size_t i = 2; !bad && i < n; i++)
                                bad = u[i] < 0x80 || u[i] > 0xBF;
                        if (bad)
                                return perr(ps, "unable to decode byte 0x%02x in a string (not UTF-8)", c);
                }
                dlen += (uint32_t) n;
                ps->p += n;
        }
        KjTok *t = &ps->doc->toks[idx];
        t->len = (uint32_t) (ps->p - t->text);
        t->decoded_len = dlen;
        t->escaped = escaped;
        t->hash = 0;
        if (key && !escaped)
                t->hash = key_hash(t->text, dlen, (size_t) (ps->end - t->text));
        else if (key && (r = escaped_key_hash(t, &t->hash)) < 0)
                return r;
        ps->p++; /* the closing quote */
        *ret = idx;
        return 0;
}

/* Scanned eight bytes at a time: strings are most of a reply's text (ids
 * of 32 and 40 hex digits). Keys are hashed too, for the duplicate check.
 * Inline, for the plain ASCII nearly every string of a reply is: a call
 * per string cost more than scanning it. */
static inline int parse_string(Parser *ps, bool key, size_t *ret) {
        const char *start = ps->p + 1, *q = find_special(start, ps->end);
        size_t idx;
        int r;

        if (_unlikely_(q >= ps->end || *q != '"'))
                return parse_string_slow(ps, key, q, ret);
        ps->p = start;
        r = new_tok(ps, KJ_STRING, &idx);
        if (r < 0)
                return r;
        KjTok *t = &ps->doc->toks[idx];
        t->len = t->decoded_len = (uint32_t) (q - start);
        t->hash = key ? key_hash(start, t->len, (size_t) (ps->end - start)) : 0;
        ps->p = q + 1;
        *ret = idx;
        return 0;
}

static bool is_digit(const Parser *ps) {
        return ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9';
}

static locale_t c_locale(void) {
        static locale_t l;

        if (!l)
                l = newlocale(LC_NUMERIC_MASK, "C", (locale_t) 0);
        return l;
}

static int parse_number(Parser *ps) {
        const char *s = ps->p;
        bool real = false;
        char small[64], *buf = small;
        size_t idx;
        int r;

        if (*ps->p == '-')
                ps->p++;
        if (ps->p < ps->end && *ps->p == '0')
                ps->p++;
        else if (is_digit(ps))
                while (is_digit(ps))
                        ps->p++;
        else
                return perr(ps, "invalid number");
        if (ps->p < ps->end && *ps->p == '.') {
                real = true;
                ps->p++;
                if (!is_digit(ps))
                        return perr(ps, "invalid number");
                while (is_digit(ps))
                        ps->p++;
        }
        if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
                real = true;
                ps->p++;
                if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
                        ps->p++;
                if (!is_digit(ps))
                        return perr(ps, "invalid number");
                while (is_digit(ps))
                        ps->p++;
        }

        size_t n = (size_t) (ps->p - s);
        if (!real && n <= 18) {
                /* Up to 18 digits cannot overflow: no copy, no strtoll(). */
                int64_t v = 0;
                for (const char *c = s + (*s == '-'); c < ps->p; c++)
                        v = v * 10 + (*c - '0');
                r = new_tok(ps, KJ_INTEGER, &idx);
                if (r < 0)
                        return r;
                ps->doc->toks[idx].text = s;
                ps->doc->toks[idx].len = (uint32_t) n;
                ps->doc->toks[idx].integer = *s == '-' ? -v : v;
                return 0;
        }
        if (n >= sizeof(small)) {
                buf = malloc(n + 1);
                if (!buf)
                        return -ENOMEM;
        }
        memcpy(buf, s, n);
        buf[n] = 0;
        r = new_tok(ps, real ? KJ_REAL : KJ_INTEGER, &idx);
        if (r >= 0) {
                KjTok *t = &ps->doc->toks[idx];
                t->text = s;
                t->len = (uint32_t) n;
                errno = 0;
                if (real) {
                        t->real = strtod_l(buf, NULL, c_locale());
                        if (errno == ERANGE && isinf(t->real))
                                r = perr(ps, "real number overflow");
                } else {
                        t->integer = strtoll(buf, NULL, 10);
                        if (errno == ERANGE)
                                r = perr(ps, "integer out of range");
                }
        }
        if (buf != small)
                free(buf);
        return r;
}

/* The decoded bytes of a string token, one at a time, without a copy. */
typedef struct Decoder {
        const char *p, *end;
        char buf[4];
        uint8_t i, n;
} Decoder;

static int decoder_next(Decoder *d) {
        if (d->i < d->n)
                return (unsigned char) d->buf[d->i++];
        if (d->p >= d->end)
                return -1;
        if (*d->p != '\\')
                return (unsigned char) *d->p++;
        unsigned cp;
        d->p += 1 + unescape(d->p + 1, &cp);
        d->n = (uint8_t) utf8_put(cp, d->buf);
        d->i = 1;
        return (unsigned char) d->buf[0];
}

/* Orders keys by hash, length, then decoded bytes: 0 means the same key
 * however it is spelt. */
static int key_cmp(const KjTok *a, const KjTok *b) {
        if (a->hash != b->hash)
                return a->hash < b->hash ? -1 : 1;
        if (a->decoded_len != b->decoded_len)
                return a->decoded_len < b->decoded_len ? -1 : 1;
        if (!a->escaped && !b->escaped)
                return memcmp(a->text, b->text, a->len);
        Decoder x = { .p = a->text, .end = a->text + a->len }, y = { .p = b->text, .end = b->text + b->len };
        for (;;) {
                int cx = decoder_next(&x), cy = decoder_next(&y);
                if (cx != cy)
                        return cx < cy ? -1 : 1;
                if (cx < 0)
                        return 0;
        }
}

static int key_index_cmp(const void *a, const void *b, void *userdata) {
        const KjTok *toks = userdata;
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
        int c = key_cmp(&toks[x], &toks[y]);

        /* Equal keys in text order, so the first repeat is easy to name. */
        return c != 0 ? c : (x > y) - (x < y);
}

static int duplicate_key(Parser *ps, size_t key) {
        ps->p = ps->doc->toks[key].text;
        return perr(ps, "duplicate object key");
}

/* The whole object idx (closed, past KJ_LINEAR_KEYS members), sorted. */
static int check_keys_sorted(Parser *ps, size_t idx) {
        KjTok *toks = ps->doc->toks;
        uint32_t n = toks[idx].count;

        if (n > ps->keys_size) {
                size_t size = MAX((size_t) n, ps->keys_size * 2);
                uint32_t *k = ps->keys == ps->inline_keys ? malloc(size * sizeof(uint32_t))
                                                           : realloc(ps->keys, size * sizeof(uint32_t));
                if (!k)
                        return -ENOMEM;
                ps->keys = k;
                ps->keys_size = size;
        }
        size_t k = idx + 1;
        for (uint32_t i = 0; i < n; i++, k += 1 + toks[k + 1].skip)
                ps->keys[i] = (uint32_t) k;
        qsort_r(ps->keys, n, sizeof(uint32_t), key_index_cmp, toks);

        /* Of all repeats, name the one that comes first in the text. */
        size_t first = SIZE_MAX;
        for (uint32_t i = 1; i < n; i++)
                if (ps->keys[i] < first && key_cmp(&toks[ps->keys[i - 1]], &toks[ps->keys[i]]) == 0)
                        first = ps->keys[i];
        return first == SIZE_MAX ? 0 : duplicate_key(ps, first);
}

static int close_container(Parser *ps, size_t idx) {
        ps->p++;
        ps->doc->toks[idx].skip = (uint32_t) (ps->doc->n - idx);
        return 0;
}

/* Past the opening character: 1 if members follow, 0 if the container was
 * empty (and is closed), or the error. */
static int open_container(Parser *ps, unsigned depth, KjType type, char close, size_t *ret_idx) {
        int r;

        if (depth >= KJ_MAX_DEPTH)
                return perr(ps, "maximum nesting depth reached");
        r = new_tok(ps, type, ret_idx);
        if (r < 0)
                return r;
        ps->p++;
        if (peek(ps) == close)
                return close_container(ps, *ret_idx);
        return 1;
}

/* After a member of container idx: 1 if a ',' announces another, 0 at the
 * close character (left for close_container), or the error. */
static int next_member(Parser *ps, size_t idx, char close) {
        int c = peek(ps);

        ps->doc->toks[idx].count++;
        if (c == ',') {
                ps->p++;
                return 1;
        }
        if (c == close)
                return 0;
        return perr(ps, "',' or '%c' expected", close);
}

static int parse_object(Parser *ps, unsigned depth) {
        size_t idx, first_key = 0;
        uint64_t filter[2] = {};
        int r;

        r = open_container(ps, depth, KJ_OBJECT, '}', &idx);
        if (r <= 0)
                return r;
        for (;;) {
                size_t key;

                if (peek(ps) != '"')
                        return perr(ps, "string expected as an object key");
                r = parse_string(ps, true, &key);
                if (r < 0)
                        return r;
                if (ps->doc->toks[idx].count == 0)
                        first_key = key;
                if (ps->doc->toks[idx].count < KJ_LINEAR_KEYS) {
                        /* A 128-bit filter of the keys' hashes: most keys
                         * are compared with none of the earlier ones. */
                        uint32_t bit = ps->doc->toks[key].hash >> 25;
                        uint64_t mask = UINT64_C(1) << (bit & 63);

                        if (filter[bit >> 6] & mask)
                                for (size_t k = first_key; k < key; k += 1 + ps->doc->toks[k + 1].skip)
                                        if (key_cmp(&ps->doc->toks[k], &ps->doc->toks[key]) == 0)
                                                return duplicate_key(ps, key);
                        filter[bit >> 6] |= mask;
                }
                if (peek(ps) != ':')
                        return perr(ps, "':' expected");
                ps->p++;
                r = parse_value(ps, depth + 1);
                if (r < 0)
                        return r;
                r = next_member(ps, idx, '}');
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
        }
        close_container(ps, idx);
        if (ps->doc->toks[idx].count <= KJ_LINEAR_KEYS)
                return 0;
        const char *after = ps->p;
        r = check_keys_sorted(ps, idx);
        ps->p = after;
        return r;
}

static int parse_array(Parser *ps, unsigned depth) {
        size_t idx;
        int r;

        r = open_container(ps, depth, KJ_ARRAY, ']', &idx);
        if (r <= 0)
                return r;
        for (;;) {
                r = parse_value(ps, depth + 1);
                if (r < 0)
                        return r;
                r = next_member(ps, idx, ']');
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
        }
        return close_container(ps, idx);
}

static int parse_literal(Parser *ps, const char *word, KjType type) {
        size_t n = strlen(word), idx;

        if ((size_t) (ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
                return perr(ps, "invalid token");
        ps->p += n;
        return new_tok(ps, type, &idx);
}

static int parse_value(Parser *ps, unsigned depth) {
        size_t idx;

        int c = peek(ps);

        if (c < 0)
                return perr(ps, "unexpected end of input");
        switch (c) {
        case '{':
                return parse_object(ps, depth);
        case '[':
                return parse_array(ps, depth);
        case '"':
                return parse_string(ps, false, &idx);
        case 't':
                return parse_literal(ps, "true", KJ_TRUE);
        case 'f':
                return parse_literal(ps, "false", KJ_FALSE);
        case 'n':
                return parse_literal(ps, "null", KJ_NULL);
        case '-':
        case '0' ... '9':
                return parse_number(ps);
        default:
                return perr(ps, "invalid token");
        }
}

int kj_parse(KjDoc *doc, const char *text, size_t len, char *errbuf, size_t errsize) {
        Parser ps = {
                .start = text,
                .p = text,
                .end = text + len,
                .doc = doc,
                .err = errbuf,
                .err_size = errsize,
        };
        ps.keys = ps.inline_keys;
        ps.keys_size = ELEMENTSOF(ps.inline_keys);
        int r;

        doc->toks = doc->inline_toks;
        doc->n = 0;
        doc->size = KJ_INLINE_TOKENS;
        if (len > UINT32_MAX)
                return perr(&ps, "text too long");
        int c = peek(&ps);
        if (c != '{' && c != '[')
                return perr(&ps, "'[' or '{' expected");
        r = parse_value(&ps, 0);
        if (ps.keys != ps.inline_keys)
                free(ps.keys);
        if (r < 0)
                return r;
        if (peek(&ps) >= 0)
                return perr(&ps, "end of input expected");
        return 0;
}

void kj_done(KjDoc *doc) {
        if (doc->toks && doc->toks != doc->inline_toks)
                free(doc->toks);
        doc->toks = NULL;
        doc->n = 0;
}

/* Whether key k spells key (n bytes, k's length already checked). */
static bool key_is(const KjTok *k, const char *key, size_t n) {
        char buf[256];

        if (!k->escaped)
                return memcmp(k->text, key, n) == 0;
        if (n >= sizeof(buf))
                return false; /* no key looked up is that long */
        kj_string_copy(k, buf);
        return memcmp(buf, key, n) == 0;
}

const KjTok *kj_object_getn(const KjTok *obj, const char *key, size_t n) {
        const KjTok *k = obj + 1;

        for (uint32_t i = 0; i < obj->count; i++, k += 1 + k[1].skip)
                if (k->decoded_len == n && key_is(k, key, n))
                        return k + 1;
        return NULL;
}

void kj_keys_init(KjKeys *keys, const char *const *names, size_t n) {
        const size_t slots = ELEMENTSOF(keys->slot);

        assert(n <= KJ_PICK_MAX);
        *keys = (KjKeys) { .names = names, .n = n };
        for (size_t i = 0; i < n; i++) {
                size_t len = strlen(names[i]);
                assert(len <= UINT8_MAX);
                keys->len[i] = (uint8_t) len;
                keys->hash[i] = key_hash(names[i], len, len);
                size_t j = keys->hash[i] % slots;
                while (keys->slot[j])
                        j = (j + 1) % slots;
                keys->slot[j] = (uint8_t) (i + 1);
        }
}

void kj_object_pick(const KjTok *obj, const KjKeys *keys, const KjTok **out) {
        const size_t slots = ELEMENTSOF(keys->slot);
        const KjTok *k = obj + 1;

        for (size_t i = 0; i < keys->n; i++)
                out[i] = NULL;
        /* Each member looked up in the keys' table: one pass over the
         * members instead of one per key. */
        for (uint32_t m = 0; m < obj->count; m++, k += 1 + k[1].skip)
                for (size_t j = k->hash % slots; keys->slot[j]; j = (j + 1) % slots) {
                        size_t i = keys->slot[j] - 1;
                        if (keys->hash[i] == k->hash && keys->len[i] == k->decoded_len &&
                            key_is(k, keys->names[i], keys->len[i])) {
                                out[i] = k + 1;
                                break;
                        }
                }
}

const KjTok *kj_array_get(const KjTok *array, size_t i) {
        const KjTok *e = array + 1;

        if (i >= array->count)
                return NULL;
        while (i-- > 0)
                e += e->skip;
        return e;
}

void kj_string_copy(const KjTok *s, char *out) {
        const char *p = s->text, *end = s->text + s->len;

        if (!s->escaped) {
                memcpy(out, p, s->len);
                return;
        }
        while (p < end) {
                if (*p != '\\') {
                        *out++ = *p++;
                        continue;
                }
                unsigned cp;
                p += 1 + unescape(p + 1, &cp);
                out += utf8_put(cp, out);
        }
}
