/* SPDX-License-Identifier: MIT */

/* kasa-json's duplicate-key check on objects with many keys, where it sorts
 * instead of comparing each key with every earlier one: the same texts
 * must be refused and accepted on both sides of that switch. How long it
 * takes is tools/bench-json's business, not a test's. */

#include <errno.h>
#include <stdlib.h>

#include "kasa-json.h"
#include "kasa-proto.h"
#include "macro.h"
#include "tap.h"

#define HOSTILE_SIZE (64 * 1024)

typedef struct Buf {
        char *s;
        size_t n, size;
} Buf;

static void put(Buf *b, const char *s) {
        size_t n = strlen(s);

        if (b->n + n + 1 > b->size) {
                b->size = (b->n + n + 1) * 2;
                b->s = realloc(b->s, b->size);
                if (!b->s)
                        abort();
        }
        memcpy(b->s + b->n, s, n + 1);
        b->n += n;
}

/* Distinct short keys: base 62, as many as the budget allows. */
static void key_name(unsigned i, char out[8]) {
        static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        size_t n = 0;

        do {
                out[n++] = digits[i % 62];
                i /= 62;
        } while (i > 0);
        out[n] = 0;
}

/* {"0":0,"1":0,...} up to about size bytes, with extra (a ",..." text)
 * before the closing brace; *ret_keys is the number of generated keys. */
static char *many_keys(size_t size, const char *prefix, const char *extra, unsigned *ret_keys) {
        Buf b = {};
        unsigned i = 0;
        char key[8], member[32];

        put(&b, prefix);
        put(&b, "{");
        while (b.n + strlen(extra) + 16 < size) {
                key_name(i, key);
                snprintf(member, sizeof(member), "%s\"%s\":%u", i ? "," : "", key, i % 10);
                put(&b, member);
                i++;
        }
        put(&b, extra);
        put(&b, "}");
        *ret_keys = i;
        return b.s;
}

static int parse(const char *text, KjDoc *doc, char *err, size_t errsize) {
        err[0] = 0;
        return kj_parse(doc, text, strlen(text), err, errsize);
}

/* Refused as a duplicate, the error naming the byte where the repeat is. */
static void expect_dup(const char *text, const char *repeat, const char *name) {
        KjDoc doc;
        char err[128], want[64];
        /* The error names the key's first byte, past its quote. */
        const char *at = repeat ? strstr(text, repeat) : NULL;
        if (at)
                at = strchr(at, '"') + 1;
        int r = parse(text, &doc, err, sizeof(err));

        snprintf(want, sizeof(want), "byte %zu: duplicate object key", at ? (size_t) (at - text) : (size_t) 0);
        ok(r == -EBADMSG && at && strcmp(err, want) == 0, "refuses %s: %s", name, err);
        if (r != -EBADMSG || !at || strcmp(err, want) != 0)
                diag("r=%d, wanted -EBADMSG and \"%s\"", r, want);
        kj_done(&doc);
}

static void expect_ok(const char *text, const char *name) {
        KjDoc doc;
        char err[128];
        int r = parse(text, &doc, err, sizeof(err));

        ok(r == 0, "accepts %s", name);
        if (r != 0)
                diag("r=%d: %s", r, err);
        kj_done(&doc);
}

static void test_hostile_reply(void) {
        KjDoc doc;
        char err[128], key[8], extra[64];
        unsigned n;
        int r;

        /* 64 KiB of distinct keys: about ten thousand members in one object. */
        _cleanup_free_ char *clean = many_keys(HOSTILE_SIZE, "", "", &n);
        r = parse(clean, &doc, err, sizeof(err));
        ok(r == 0, "a 64 KiB object of %u distinct keys is accepted", n);
        ok(n > 8000, "the hostile object has many keys (%u)", n);
        ok(r == 0 && doc.toks[0].count == n, "every member is kept");
        key_name(n - 1, key);
        const KjTok *v = r == 0 ? kj_object_get(&doc.toks[0], key) : NULL;
        ok(kj_is_integer(v) && v->integer == (int64_t) ((n - 1) % 10), "the last key reads its value");
        kj_done(&doc);

        /* The same with the first key repeated at the end. */
        _cleanup_free_ char *last = many_keys(HOSTILE_SIZE, "", ",\"0\":-1", &n);
        expect_dup(last, ",\"0\":-1", "the first key repeated as the last of 64 KiB of keys");

        /* Two repeats: the one earlier in the text is named. */
        snprintf(extra, sizeof(extra), ",\"zzzz\":1,\"%s\":1,\"5\":2", "9");
        _cleanup_free_ char *two = many_keys(HOSTILE_SIZE, "", extra, &n);
        expect_dup(two, ",\"9\":1", "two repeats among 64 KiB of keys (the first is named)");

        /* Spelt with an escape, still the same key. */
        _cleanup_free_ char *esc = many_keys(HOSTILE_SIZE, "", ",\"\\u0061\":7", &n);
        expect_dup(esc, ",\"\\u0061\":7", "a key repeated through a \\u escape");
        _cleanup_free_ char *esc2 = many_keys(HOSTILE_SIZE, "", ",\"\\u00e9\":7,\"\\u00E9\":8", &n);
        expect_dup(esc2, ",\"\\u00E9\":8", "a key repeated with another escape spelling");
        _cleanup_free_ char *esc3 = many_keys(HOSTILE_SIZE, "", ",\"\\u00e9\":7,\"\xc3\xa9\":8", &n);
        expect_dup(esc3, ",\"\xc3\xa9\":8", "an escaped key repeated as raw UTF-8");

        /* Inside a device reply, through the reply parser. */
        _cleanup_free_ char *reply = many_keys(HOSTILE_SIZE, "{\"system\":{\"get_sysinfo\":", ",\"1\":0}}", &n);
        KasaResponse *resp = calloc(1, sizeof(*resp));
        KasaError e = {};
        r = kasa_response_parse(reply, strlen(reply), resp, &e);
        ok(r == -EBADMSG && strstr(e.message, "duplicate object key"), "a hostile sysinfo with a repeated key is refused: %s",
           e.message);
        free(resp);
}

static void test_threshold(void) {
        /* Around the size where the check changes method: 32 members are
         * checked as they come, 33 and more when the object closes. */
        for (unsigned members = 30; members <= 35; members++) {
                char key[8], name[96];
                Buf b = {};

                put(&b, "{");
                for (unsigned i = 0; i < members - 1; i++) {
                        char m[32];
                        key_name(i + 100, key);
                        snprintf(m, sizeof(m), "\"%s\":%u,", key, i);
                        put(&b, m);
                }
                char *prefix = strdup(b.s);
                key_name(100, key);
                char last[32];
                snprintf(last, sizeof(last), "\"%s\":-1}", key);
                put(&b, last);
                snprintf(name, sizeof(name), "the first key repeated as member %u of %u", members, members);
                expect_dup(b.s, last, name);

                free(b.s);
                b = (Buf) {};
                put(&b, prefix);
                put(&b, "\"new\":-1}");
                snprintf(name, sizeof(name), "%u distinct members", members);
                expect_ok(b.s, name);
                free(b.s);
                free(prefix);
        }
}

/* The hashes the parser gave the two keys of {"a":1,"b":2}, compared. */
static bool same_hash(const char *text) {
        _cleanup_(kj_done) KjDoc doc;
        char err[128];

        return kj_parse(&doc, text, strlen(text), err, sizeof(err)) == 0 && doc.toks[0].count == 2 &&
               doc.toks[1].hash == doc.toks[3].hash;
}

static void test_lookalikes(void) {
        /* "bcyrc" and "bfu2c" have the same 32-bit key hash and length:
         * different keys all the same, in small and in big objects. */
        unsigned n;

        ok(same_hash("{\"bcyrc\":1,\"bfu2c\":2}"), "\"bcyrc\" and \"bfu2c\" have the same key hash");
        ok(same_hash("{\"\\u0062cyrc\":1,\"bfu2c\":2}"), "escaped, \"bcyrc\" has that hash too");
        ok(!same_hash("{\"bcyrc\":1,\"bcyrd\":2}"), "\"bcyrc\" and \"bcyrd\" do not");
        expect_ok("{\"bcyrc\":1,\"bfu2c\":2}", "two keys with the same hash (small object)");
        expect_ok("{\"\\u0062cyrc\":1,\"bfu2c\":2}", "an escaped key and another with the same hash");
        expect_dup("{\"bcyrc\":1,\"bfu2c\":2,\"bcyr\\u0063\":3}", ",\"bcyr\\u0063\"", "a repeat among same-hash keys");
        _cleanup_free_ char *big = many_keys(HOSTILE_SIZE, "", ",\"bcyrc\":1,\"bfu2c\":2", &n);
        expect_ok(big, "two keys with the same hash (big object)");
        _cleanup_free_ char *bigdup = many_keys(HOSTILE_SIZE, "", ",\"bcyrc\":1,\"bfu2c\":2,\"bfu2c\":3", &n);
        expect_dup(bigdup, ",\"bfu2c\":3", "a repeat among same-hash keys (big object)");
        _cleanup_free_ char *prefix = many_keys(HOSTILE_SIZE, "", ",\"q~\":1,\"q~r\":2", &n);
        expect_ok(prefix, "a key and its prefix (big object)");

        /* Hashed a word at a time: a key's last word read whole (the first
         * here) or byte by byte (the second, near the end of the text). */
        expect_dup("{\"abcdefghi\":1,\"abcdefghi\":2}", ",\"abcdefghi\"", "a repeat read to the end of the text");
        expect_dup("{\"abcdefgh\":1,\"abcdefgh\":2}", ",\"abcdefgh\"", "a repeat of a whole word");
        /* An escaped key longer than the stack buffer its hash is taken in. */
        char longkey[601], longdup[1400];
        memset(longkey, 'a', 600);
        longkey[600] = 0;
        snprintf(longdup, sizeof(longdup), "{\"%s\":1,\"%.*s\\u0061\":2}", longkey, 599, longkey);
        expect_dup(longdup, ",\"aaa", "a repeat of a long key, escaped");
}

static void test_nesting(void) {
        unsigned n;
        char extra[32];

        /* Each object has its own keys: the same big object twice in an
         * array, and under two keys, is fine; a repeat inside one is not. */
        _cleanup_free_ char *inner = many_keys(HOSTILE_SIZE / 4, "", "", &n);
        Buf b = {};
        put(&b, "{\"a\":[");
        put(&b, inner);
        put(&b, ",");
        put(&b, inner);
        put(&b, "],\"b\":");
        put(&b, inner);
        put(&b, "}");
        expect_ok(b.s, "the same big object in two places");
        free(b.s);

        snprintf(extra, sizeof(extra), ",\"%s\":0", "7");
        _cleanup_free_ char *bad = many_keys(HOSTILE_SIZE / 4, "", extra, &n);
        b = (Buf) {};
        put(&b, "{\"ok\":");
        put(&b, inner);
        put(&b, ",\"bad\":[");
        put(&b, bad);
        put(&b, "]}");
        const char *at = strstr(b.s, ",\"bad\":[");
        char *repeat = strstr(at, ",\"7\":0}");
        ok(repeat != NULL, "the nested repeat is in the text");
        KjDoc doc;
        char err[128], want[64];
        int r = parse(b.s, &doc, err, sizeof(err));
        snprintf(want, sizeof(want), "byte %zu: duplicate object key", (size_t) (repeat - b.s) + 2);
        ok(r == -EBADMSG && strcmp(err, want) == 0, "a repeat in a big object nested in an array is refused: %s", err);
        kj_done(&doc);
        free(b.s);

        /* The parent's keys are checked after its big child closed. */
        b = (Buf) {};
        put(&b, "{\"x\":");
        put(&b, inner);
        for (unsigned i = 0; i < 20; i++) {
                char m[16];
                snprintf(m, sizeof(m), ",\"p%u\":%u", i, i);
                put(&b, m);
        }
        put(&b, ",\"x\":1}");
        expect_dup(b.s, ",\"x\":1}", "a repeat in the parent of a big object");
        free(b.s);
}

/* kj_object_pick() finds what kj_object_getn() finds, key by key: escaped
 * keys, absent ones, two with the same hash, and a table's worth. */
static void test_pick(void) {
        static const char text[] = "{\"alias\":1,\"b\\u0063yrc\":2,\"bfu2c\":3,\"x\":{\"alias\":4},\"\":5,"
                                   "\"a_rather_long_key_name\":6}";
        static const char *const keys[] = { "alias", "bcyrc", "bfu2c", "x", "", "a_rather_long_key_name", "absent",
                                            "bcyr", "aliasx" };
        _cleanup_(kj_done) KjDoc doc;
        const KjTok *got[ELEMENTSOF(keys)];
        KjKeys set;
        char err[128];
        unsigned bad = 0;

        ok(kj_parse(&doc, text, strlen(text), err, sizeof(err)) == 0, "pick: the text parses");
        kj_keys_init(&set, keys, ELEMENTSOF(keys));
        kj_object_pick(&doc.toks[0], &set, got);
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (got[i] != kj_object_get(&doc.toks[0], keys[i])) {
                        diag("pick: \"%s\" gave %p, getn %p", keys[i], (void *) got[i],
                             (void *) kj_object_get(&doc.toks[0], keys[i]));
                        bad++;
                }
        ok(bad == 0 && got[0] && got[0]->integer == 1 && got[1] && got[1]->integer == 2 && !got[6],
           "pick finds what a lookup finds, key by key");

        /* KJ_PICK_MAX keys out of many members, each found. */
        Buf b = {};
        const char *many[KJ_PICK_MAX];
        char names[KJ_PICK_MAX][8];
        put(&b, "{");
        for (unsigned i = 0; i < 3 * KJ_PICK_MAX; i++) {
                char key[8], member[32];
                key_name(i, key);
                snprintf(member, sizeof(member), "%s\"%s\":%u", i ? "," : "", key, i);
                put(&b, member);
                if (i % 3 == 0) {
                        memcpy(names[i / 3], key, sizeof(key));
                        many[i / 3] = names[i / 3];
                }
        }
        put(&b, "}");
        _cleanup_(kj_done) KjDoc big;
        const KjTok *vals[KJ_PICK_MAX];
        bad = 0;
        if (kj_parse(&big, b.s, b.n, err, sizeof(err)) == 0) {
                kj_keys_init(&set, many, KJ_PICK_MAX);
                kj_object_pick(&big.toks[0], &set, vals);
                for (unsigned i = 0; i < KJ_PICK_MAX; i++)
                        bad += !vals[i] || vals[i]->integer != 3 * i;
        } else
                bad = 1;
        ok(bad == 0, "pick finds %d keys among %d members", KJ_PICK_MAX, 3 * KJ_PICK_MAX);
        free(b.s);
}

typedef struct ScanCase {
        const char *bytes, *decoded;
        bool accepted;
        const char *what;
} ScanCase;

/* c's bytes as a value (or key) string between before a's and after z's:
 * refused if c is, else read back and, for a key, found by its decoded
 * bytes. Says why not if told to. */
static bool scan_one(const ScanCase *c, bool key, size_t before, size_t after, bool tell) {
        char text[128], want[64], got[64], err[128];
        int n = snprintf(text, sizeof(text), "%s%.*s%s%.*s%s", key ? "{\"" : "[\"", (int) before,
                         "aaaaaaaaaaaaaaaaaaaa", c->bytes, (int) after, "zzzzzzzzzz", key ? "\":1}" : "\"]");
        KjDoc doc;
        int r = kj_parse(&doc, text, (size_t) n, err, sizeof(err));
        bool pass = r == -EBADMSG;

        if (c->accepted) {
                const KjTok *s = r == 0 ? &doc.toks[1] : NULL;
                size_t wn = (size_t) snprintf(want, sizeof(want), "%.*s%s%.*s", (int) before, "aaaaaaaaaaaaaaaaaaaa",
                                              c->decoded, (int) after, "zzzzzzzzzz");

                pass = kj_is_string(s) && s->decoded_len == wn;
                if (pass) {
                        kj_string_copy(s, got);
                        pass = memcmp(got, want, wn) == 0;
                }
                if (pass && key)
                        pass = kj_is_integer(kj_object_getn(&doc.toks[0], want, wn));
        }
        kj_done(&doc);
        if (!pass && tell)
                diag("%s, %s, %zu bytes before, %zu after: r=%d %s", c->what, key ? "key" : "value", before, after, r,
                     r < 0 ? err : "");
        return pass;
}

/* Strings are scanned eight bytes at a time for the bytes that end the
 * fast path (controls, quote, backslash, anything past ASCII): each of
 * them, and their neighbours that are plain, at every place in and around
 * that window, in values and in keys. */
static void test_string_scan(void) {
        static const ScanCase cases[] = {
                { "\x01", NULL, false, "control 0x01" },
                { "\x1f", NULL, false, "control 0x1f" },
                { "\t", NULL, false, "a raw tab" },
                { " ", " ", true, "a space (0x20)" },
                { "!", "!", true, "0x21" },
                { "#", "#", true, "0x23" },
                { "[", "[", true, "0x5b" },
                { "]", "]", true, "0x5d" },
                { "\x7f", "\x7f", true, "DEL (0x7f)" },
                { "\\\"", "\"", true, "an escaped quote" },
                { "\\\\", "\\", true, "an escaped backslash" },
                { "\\u00e9", "\xc3\xa9", true, "a \\u escape" },
                { "\xc3\xa9", "\xc3\xa9", true, "two-byte UTF-8" },
                { "\xe2\x82\xac", "\xe2\x82\xac", true, "three-byte UTF-8" },
                { "\xf0\x9f\x94\x8c", "\xf0\x9f\x94\x8c", true, "four-byte UTF-8" },
                { "\x80", NULL, false, "a lone continuation byte" },
                { "\xff", NULL, false, "0xff" },
                { "\xc3", NULL, false, "a cut two-byte sequence" },
        };
        unsigned bad = 0, checked = 0;

        for (size_t c = 0; c < ELEMENTSOF(cases); c++)
                for (unsigned key = 0; key <= 1; key++)
                        for (size_t before = 0; before <= 17; before++)
                                for (size_t after = 0; after <= 9; after += 9, checked++)
                                        bad += !scan_one(&cases[c], key, before, after, bad < 5);
        ok(bad == 0, "every byte class at every place of the scan window, keys and values (%u texts, %u wrong)",
           checked, bad);

        /* A string the input ends in, at every length: never read past it
         * (the text is a heap block of its exact size, for ASan). */
        bad = 0;
        for (size_t len = 0; len <= 24; len++) {
                char *text = malloc(len + 2);
                char err[128];
                KjDoc doc;

                if (!text)
                        abort();

                text[0] = '[';
                text[1] = '"';
                memset(text + 2, 'q', len);
                if (kj_parse(&doc, text, len + 2, err, sizeof(err)) != -EBADMSG || !strstr(err, "premature end"))
                        bad++;
                kj_done(&doc);
                free(text);
        }
        ok(bad == 0, "an unterminated string of 0 to 24 bytes is refused as cut short (%u wrong)", bad);
}

int main(void) {
        test_hostile_reply();
        test_threshold();
        test_lookalikes();
        test_nesting();
        test_string_scan();
        test_pick();
        return done_testing();
}
