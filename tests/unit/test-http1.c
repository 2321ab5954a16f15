/* SPDX-License-Identifier: MIT */

/*
 * The HTTP/1.1 writer and parser (common/http1.c): what KLAP devices send,
 * in every chunking, and every hostile reply we could think of.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"
#include "macro.h"
#include "tap.h"

/* Feeds s in chunks of `chunk` bytes; returns the parser's last result. */
static int feed_all(Http1Parser *p, const char *s, size_t len, size_t chunk, size_t *ret_used, KasaError *err) {
        size_t off = 0;
        int r = 0;

        *ret_used = 0;
        while (off < len) {
                size_t used, n = MIN(chunk, len - off);

                r = http1_parser_feed(p, (const uint8_t *) s + off, n, &used, err);
                off += used;
                if (r != 0)
                        break;
                if (used < n) {
                        r = -999; /* must consume everything while it needs more */
                        break;
                }
        }
        *ret_used = off;
        return r;
}

static void test_good(void) {
        static const char reply[] =
                "HTTP/1.1 200 OK\r\n"
                "Content-Type: text/html;charset=UTF-8\r\n"
                "Content-Length: 48\r\n"
                "Set-Cookie: TP_SESSIONID=9C2F7A3D1B05E4F6A8C0D2E4F6A8B0C2;TIMEOUT=86400\r\n"
                "Server: SHIP 2.0\r\n"
                "\r\n"
                "0123456789abcdef0123456789abcdef0123456789abcdef";

        for (size_t chunk = 1; chunk <= sizeof(reply); chunk = chunk < 8 ? chunk + 1 : chunk * 3) {
                Http1Parser p;
                Http1Message m;
                KasaError err = {};
                size_t used;
                int r;

                http1_parser_init(&p, HTTP1_RESPONSE, 0);
                r = feed_all(&p, reply, sizeof(reply) - 1, chunk, &used, &err);
                if (!ok(r == 1 && used == sizeof(reply) - 1, "handshake1 reply in chunks of %zu", chunk))
                        diag("r=%d used=%zu err=%s", r, used, err.message);
                http1_parser_take(&p, &m);
                ok(m.status == 200 && m.body_len == 48 && memcmp(m.body, "0123456789abcdef", 16) == 0 &&
                   strcmp(m.cookie, "TP_SESSIONID=9C2F7A3D1B05E4F6A8C0D2E4F6A8B0C2") == 0 &&
                   m.cookie_timeout == 86400 && !m.close, "status, body, cookie and timeout (chunk %zu)", chunk);
                ok(!http1_parser_busy(&p), "parser idle after take");
                http1_message_done(&m);
                http1_parser_reset(&p);
        }

        /* Stops at the end of the message: the rest belongs to the next. */
        {
                static const char two[] = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                                          "HTTP/1.1 200 OK\r\n";
                Http1Parser p;
                Http1Message m;
                KasaError err;
                size_t used;

                http1_parser_init(&p, HTTP1_RESPONSE, 0);
                is_int(http1_parser_feed(&p, (const uint8_t *) two, sizeof(two) - 1, &used, &err), 1,
                       "403 with empty body complete");
                http1_parser_take(&p, &m);
                ok(used == strlen("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n") &&
                   m.status == 403 && m.body_len == 0 && m.close && !m.cookie[0],
                   "consumes one message only, Connection: close seen");
                http1_message_done(&m);
        }
        /* No Content-Length: an empty body (the devices' bodiless errors). */
        {
                static const char s[] = "HTTP/1.0 500 Internal\r\nSet-Cookie: a=b; Max-Age=60; Path=/\r\n\r\n";
                Http1Parser p;
                Http1Message m;
                KasaError err;
                size_t used;

                http1_parser_init(&p, HTTP1_RESPONSE, 0);
                is_int(http1_parser_feed(&p, (const uint8_t *) s, sizeof(s) - 1, &used, &err), 1,
                       "HTTP/1.0 reply without Content-Length");
                http1_parser_take(&p, &m);
                ok(m.status == 500 && m.body_len == 0 && strcmp(m.cookie, "a=b") == 0 && m.cookie_timeout == 60,
                   "Max-Age taken as the cookie timeout");
                http1_message_done(&m);
        }
}

static void test_hostile(void) {
        static const struct {
                const char *name;
                const char *reply;
                int error;
                const char *says;
        } cases[] = {
                { "not HTTP at all", "\x16\x03\x01\x02\x00", -EBADMSG, "not an HTTP" },
                { "garbage status line", "HTTP/1.1 OK\r\n\r\n", -EBADMSG, "status" },
                { "status code 99", "HTTP/1.1 099 x\r\n\r\n", -EBADMSG, "status code" },
                { "status code 600", "HTTP/1.1 600 x\r\n\r\n", -EBADMSG, "status code" },
                { "status code with letters", "HTTP/1.1 2x0 x\r\n\r\n", -EBADMSG, "status code" },
                { "HTTP/2", "HTTP/2 200\r\n\r\n", -EPROTONOSUPPORT, "HTTP/2" },
                { "HTTP/1.2", "HTTP/1.2 200 OK\r\n\r\n", -EBADMSG, "status line" },
                { "100 Continue", "HTTP/1.1 100 Continue\r\n\r\n", -EPROTONOSUPPORT, "interim" },
                { "chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
                  -EPROTONOSUPPORT, "chunked" },
                { "negative length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", -EBADMSG, "Content-Length" },
                { "length with junk", "HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\n", -EBADMSG,
                  "Content-Length" },
                { "empty length", "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", -EBADMSG, "Content-Length" },
                { "overflowing length", "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                  -EBADMSG, "Content-Length" },
                { "huge length", "HTTP/1.1 200 OK\r\nContent-Length: 4294967296\r\n\r\n", -EMSGSIZE, "limit" },
                { "conflicting lengths", "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n",
                  -EBADMSG, "conflicting" },
                { "bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n\r\n\r\n", -EBADMSG, "CRLF" },
                { "stray CR", "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", -EBADMSG, "CR" },
                { "NUL in header", "HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n", -EBADMSG, "NUL" },
                { "header without colon", "HTTP/1.1 200 OK\r\nContent-Length 5\r\n\r\n", -EBADMSG, "name" },
                { "space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n", -EBADMSG, "header name" },
                { "line folding", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", -EBADMSG, "folding" },
                { "cookie without value", "HTTP/1.1 200 OK\r\nSet-Cookie: TP_SESSIONID\r\n\r\n", -EBADMSG,
                  "cookie" },
                { "bad cookie timeout", "HTTP/1.1 200 OK\r\nSet-Cookie: a=b;TIMEOUT=-5\r\n\r\n", -EBADMSG,
                  "timeout" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                size_t len = strlen(cases[i].reply);
                Http1Parser p;
                KasaError err = {};
                size_t used;
                int r;

                if (strcmp(cases[i].name, "NUL in header") == 0)
                        len = sizeof("HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n") - 1;
                http1_parser_init(&p, HTTP1_RESPONSE, 0);
                r = feed_all(&p, cases[i].reply, len, len, &used, &err);
                if (!is_int(r, cases[i].error, "refused: %s", cases[i].name))
                        continue;
                ok(strcasestr(err.message, cases[i].says) != NULL, "... saying why: %s", err.message);
                is_int(http1_parser_feed(&p, (const uint8_t *) "x", 1, &used, &err), -EBADMSG,
                       "... and refusing more until reset");
                http1_parser_reset(&p);
        }

        /* Limits. */
        {
                _cleanup_free_ char *big = malloc(HTTP1_HEADER_MAX + 64);
                Http1Parser p;
                KasaError err = {};
                size_t used, n;

                n = (size_t) snprintf(big, 32, "HTTP/1.1 200 OK\r\nX: ");
                memset(big + n, 'a', HTTP1_HEADER_MAX + 32 - n);
                http1_parser_init(&p, HTTP1_RESPONSE, 0);
                is_int(feed_all(&p, big, HTTP1_HEADER_MAX + 32, 1000, &used, &err), -EMSGSIZE,
                       "endless header block refused");
                ok(used <= HTTP1_HEADER_MAX, "... having taken at most %u bytes", HTTP1_HEADER_MAX);
                http1_parser_reset(&p);
        }
        {
                _cleanup_free_ char *many = NULL;
                size_t size = 0, used;
                FILE *f = open_memstream(&many, &size);
                Http1Parser p;
                KasaError err = {};

                fputs("HTTP/1.1 200 OK\r\n", f);
                for (unsigned i = 0; i <= HTTP1_HEADERS_MAX; i++)
                        fprintf(f, "X-%u: y\r\n", i);
                fputs("\r\n", f);
                fclose(f);
                http1_parser_init(&p, HTTP1_RESPONSE, 0);
                is_int(feed_all(&p, many, size, size, &used, &err), -EMSGSIZE, "too many headers refused");
                http1_parser_reset(&p);
        }
        {
                static const char s[] = "HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n";
                Http1Parser p;
                KasaError err = {};
                size_t used;

                http1_parser_init(&p, HTTP1_RESPONSE, 100);
                is_int(feed_all(&p, s, sizeof(s) - 1, 5, &used, &err), -EMSGSIZE, "body past max_body refused");
                http1_parser_reset(&p);
        }
        {
                char s[HTTP1_COOKIE_MAX + 64];
                Http1Parser p;
                KasaError err = {};
                size_t used;
                int n = snprintf(s, sizeof(s), "HTTP/1.1 200 OK\r\nSet-Cookie: a=");

                memset(s + n, 'b', HTTP1_COOKIE_MAX);
                memcpy(s + n + HTTP1_COOKIE_MAX, "\r\n\r\n", 5);
                http1_parser_init(&p, HTTP1_RESPONSE, 0);
                is_int(feed_all(&p, s, strlen(s), 64, &used, &err), -EMSGSIZE, "endless cookie refused");
                http1_parser_reset(&p);
        }
}

static void test_requests(void) {
        _cleanup_free_ uint8_t *req = NULL, *resp = NULL;
        size_t len, used;
        Http1Parser p;
        Http1Message m;
        KasaError err = {};

        ok(http1_request_write("/app/request?seq=-12", "127.0.0.5", "TP_SESSIONID=AB", (const uint8_t *) "xyz", 3,
                               &req, &len) == 0, "request written");
        http1_parser_init(&p, HTTP1_REQUEST, 0);
        is_int(http1_parser_feed(&p, req, len, &used, &err), 1, "request parses back");
        http1_parser_take(&p, &m);
        ok(used == len && strcmp(m.method, "POST") == 0 && strcmp(m.target, "/app/request?seq=-12") == 0 &&
           strcmp(m.cookie, "TP_SESSIONID=AB") == 0 && m.body_len == 3 && memcmp(m.body, "xyz", 3) == 0,
           "method, target, cookie and body");
        http1_message_done(&m);

        is_int(http1_request_write("/a\r\nX: y", "h", NULL, NULL, 0, &req, &len), -EINVAL,
               "header injection through the path refused");
        is_int(http1_request_write("/a", "h", "c=\n", NULL, 0, &req, &len), -EINVAL,
               "header injection through the cookie refused");

        ok(http1_response_write(200, "TP_SESSIONID=X;TIMEOUT=1200", false, (const uint8_t *) "ab", 2, &resp,
                                &len) == 0, "response written");
        http1_parser_init(&p, HTTP1_RESPONSE, 0);
        is_int(http1_parser_feed(&p, resp, len, &used, &err), 1, "response parses back");
        http1_parser_take(&p, &m);
        ok(m.status == 200 && strcmp(m.cookie, "TP_SESSIONID=X") == 0 && m.cookie_timeout == 1200 &&
           m.body_len == 2, "status, cookie, timeout, body");
        http1_message_done(&m);

        static const char *bad_requests[] = {
                "GET\r\n\r\n",
                "get / HTTP/1.1\r\n\r\n",
                "POST app HTTP/1.1\r\n\r\n",
                "POST / HTTP/2.0\r\n\r\n",
                "POST  / HTTP/1.1\r\n\r\n",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad_requests); i++) {
                http1_parser_init(&p, HTTP1_REQUEST, 0);
                ok(http1_parser_feed(&p, (const uint8_t *) bad_requests[i], strlen(bad_requests[i]), &used, &err) <
                   0, "bad request line refused: %s", err.message);
                http1_parser_reset(&p);
        }
}

int main(void) {
        test_good();
        test_hostile();
        test_requests();
        return done_testing();
}
