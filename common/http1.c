/* SPDX-License-Identifier: MIT */

#include "http1.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "macro.h"

_printf_(4, 5) static int refuse(Http1Parser *p, KasaError *err, int error, const char *fmt, ...) {
        va_list ap;

        p->failed = true;
        if (err) {
                va_start(ap, fmt);
                vsnprintf(err->message, sizeof(err->message), fmt, ap);
                va_end(ap);
        }
        return error;
}

void http1_message_done(Http1Message *m) {
        free(m->body);
        *m = (Http1Message) {};
}

void http1_parser_init(Http1Parser *p, Http1Kind kind, size_t max_body) {
        *p = (Http1Parser) { .kind = kind, .max_body = max_body ?: HTTP1_BODY_MAX_DEFAULT };
}

void http1_parser_reset(Http1Parser *p) {
        http1_message_done(&p->msg);
        p->head_have = 0;
        p->in_body = false;
        p->failed = false;
        p->body_have = 0;
}

bool http1_parser_busy(const Http1Parser *p) {
        return p->head_have > 0 && !p->failed;
}

void http1_parser_take(Http1Parser *p, Http1Message *ret) {
        *ret = p->msg;
        p->msg = (Http1Message) {};
        http1_parser_reset(p);
}

static bool is_tchar(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Digits only, no sign, no overflow. */
static int parse_u64(const char *s, size_t len, uint64_t *ret) {
        uint64_t v = 0;

        if (len == 0 || len > 19)
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                v = v * 10 + (uint64_t) (s[i] - '0');
        }
        *ret = v;
        return 0;
}

static const char *trim(const char *s, size_t *len) {
        while (*len > 0 && (*s == ' ' || *s == '\t')) {
                s++;
                (*len)--;
        }
        while (*len > 0 && (s[*len - 1] == ' ' || s[*len - 1] == '\t'))
                (*len)--;
        return s;
}

static int parse_status_line(Http1Parser *p, const char *line, size_t len, KasaError *err) {
        uint64_t status;

        if (len >= 6 && memcmp(line, "HTTP/2", 6) == 0)
                return refuse(p, err, -EPROTONOSUPPORT, "HTTP/2 is not supported");
        if (len < 12 || memcmp(line, "HTTP/1.", 7) != 0 || (line[7] != '0' && line[7] != '1') || line[8] != ' ' ||
            (len > 12 && line[12] != ' '))
                return refuse(p, err, -EBADMSG, "not an HTTP/1.x status line");
        if (parse_u64(line + 9, 3, &status) < 0 || status < 100 || status > 599)
                return refuse(p, err, -EBADMSG, "bad HTTP status code");
        if (status < 200)
                return refuse(p, err, -EPROTONOSUPPORT, "interim HTTP status %" PRIu64 " is not supported", status);
        p->msg.status = (int) status;
        return 0;
}

static int parse_request_line(Http1Parser *p, const char *line, size_t len, KasaError *err) {
        const char *sp1 = memchr(line, ' ', len), *sp2;
        size_t method_len, target_len;

        if (!sp1)
                return refuse(p, err, -EBADMSG, "not an HTTP request line");
        method_len = (size_t) (sp1 - line);
        sp2 = memchr(sp1 + 1, ' ', len - method_len - 1);
        if (!sp2)
                return refuse(p, err, -EBADMSG, "not an HTTP request line");
        target_len = (size_t) (sp2 - sp1 - 1);
        if (method_len == 0 || method_len >= sizeof(p->msg.method))
                return refuse(p, err, -EBADMSG, "bad HTTP method");
        for (size_t i = 0; i < method_len; i++)
                if (line[i] < 'A' || line[i] > 'Z')
                        return refuse(p, err, -EBADMSG, "bad HTTP method");
        if (target_len == 0 || sp1[1] != '/')
                return refuse(p, err, -EBADMSG, "bad HTTP request target");
        if (target_len >= sizeof(p->msg.target))
                return refuse(p, err, -EMSGSIZE, "HTTP request target longer than %zu bytes",
                              sizeof(p->msg.target) - 1);
        if ((size_t) (line + len - sp2 - 1) != 8 || (memcmp(sp2 + 1, "HTTP/1.1", 8) != 0 &&
                                                      memcmp(sp2 + 1, "HTTP/1.0", 8) != 0))
                return refuse(p, err, -EPROTONOSUPPORT, "only HTTP/1.0 and HTTP/1.1 are supported");
        memcpy(p->msg.method, line, method_len);
        p->msg.method[method_len] = 0;
        memcpy(p->msg.target, sp1 + 1, target_len);
        p->msg.target[target_len] = 0;
        return 0;
}

/* "name=value; attr=x; ...": keep name=value, and TIMEOUT or Max-Age. */
static int parse_cookie(Http1Parser *p, const char *v, size_t len, bool attributes, KasaError *err) {
        const char *end = v + len, *semi = memchr(v, ';', len) ?: end, *eq;
        size_t pair_len;

        pair_len = (size_t) (semi - v);
        v = trim(v, &pair_len);
        eq = memchr(v, '=', pair_len);
        if (!eq || eq == v)
                return refuse(p, err, -EBADMSG, "cookie without a name=value pair");
        if (pair_len >= sizeof(p->msg.cookie))
                return refuse(p, err, -EMSGSIZE, "cookie longer than %zu bytes", sizeof(p->msg.cookie) - 1);
        memcpy(p->msg.cookie, v, pair_len);
        p->msg.cookie[pair_len] = 0;

        while (attributes && semi < end) {
                const char *a = semi + 1;
                size_t a_len;

                semi = memchr(a, ';', (size_t) (end - a)) ?: end;
                a_len = (size_t) (semi - a);
                a = trim(a, &a_len);
                eq = memchr(a, '=', a_len);
                if (!eq)
                        continue;
                if (((size_t) (eq - a) == 7 && strncasecmp(a, "timeout", 7) == 0) ||
                    ((size_t) (eq - a) == 7 && strncasecmp(a, "max-age", 7) == 0)) {
                        uint64_t t;

                        if (parse_u64(eq + 1, (size_t) (a + a_len - eq - 1), &t) < 0)
                                return refuse(p, err, -EBADMSG, "bad cookie timeout");
                        p->msg.cookie_timeout = t;
                }
        }
        return 0;
}

static int parse_header(Http1Parser *p, const char *line, size_t len, bool *have_length, uint64_t *length,
                        bool *have_cookie, KasaError *err) {
        const char *colon = memchr(line, ':', len), *v;
        size_t name_len, v_len;

        if (line[0] == ' ' || line[0] == '\t')
                return refuse(p, err, -EBADMSG, "obsolete HTTP header line folding");
        if (!colon || colon == line)
                return refuse(p, err, -EBADMSG, "HTTP header line without a name");
        name_len = (size_t) (colon - line);
        for (size_t i = 0; i < name_len; i++)
                if (!is_tchar(line[i]))
                        return refuse(p, err, -EBADMSG, "bad character in HTTP header name");
        v_len = len - name_len - 1;
        v = trim(colon + 1, &v_len);

#define IS(n) (name_len == strlen(n) && strncasecmp(line, n, name_len) == 0)
        if (IS("content-length")) {
                uint64_t l;

                if (parse_u64(v, v_len, &l) < 0)
                        return refuse(p, err, -EBADMSG, "bad Content-Length");
                if (*have_length && l != *length)
                        return refuse(p, err, -EBADMSG, "conflicting Content-Length headers");
                if (l > p->max_body)
                        return refuse(p, err, -EMSGSIZE, "HTTP body of %" PRIu64 " bytes exceeds the limit of %zu",
                                      l, p->max_body);
                *have_length = true;
                *length = l;
        } else if (IS("transfer-encoding"))
                return refuse(p, err, -EPROTONOSUPPORT, "HTTP transfer coding '%.*s' is not supported",
                              (int) MIN(v_len, (size_t) 32), v);
        else if ((p->kind == HTTP1_RESPONSE && IS("set-cookie")) || (p->kind == HTTP1_REQUEST && IS("cookie"))) {
                if (*have_cookie)
                        return 0;
                *have_cookie = true;
                return parse_cookie(p, v, v_len, p->kind == HTTP1_RESPONSE, err);
        } else if (IS("connection")) {
                for (size_t i = 0; i + 5 <= v_len; i++)
                        if (strncasecmp(v + i, "close", 5) == 0)
                                p->msg.close = true;
        }
#undef IS
        return 0;
}

static int parse_head(Http1Parser *p, KasaError *err) {
        const char *s = p->head, *end = p->head + p->head_have - 2; /* keep the last line's CRLF */
        bool have_length = false, have_cookie = false;
        uint64_t length = 0;
        unsigned n_headers = 0;
        int r;

        if (memchr(p->head, 0, p->head_have))
                return refuse(p, err, -EBADMSG, "NUL byte in HTTP header");
        for (bool first = true; s < end; first = false) {
                const char *lf = memchr(s, '\n', (size_t) (end - s));
                size_t len;

                /* The block ends in CRLF CRLF, so every line has its LF. */
                if (!lf || lf == s || lf[-1] != '\r')
                        return refuse(p, err, -EBADMSG, "HTTP header line not terminated by CRLF");
                len = (size_t) (lf - 1 - s);
                if (memchr(s, '\r', len))
                        return refuse(p, err, -EBADMSG, "stray CR in HTTP header");
                if (first) {
                        r = p->kind == HTTP1_RESPONSE ? parse_status_line(p, s, len, err)
                                                      : parse_request_line(p, s, len, err);
                } else {
                        if (++n_headers > HTTP1_HEADERS_MAX)
                                return refuse(p, err, -EMSGSIZE, "more than %u HTTP headers", HTTP1_HEADERS_MAX);
                        r = parse_header(p, s, len, &have_length, &length, &have_cookie, err);
                }
                if (r < 0)
                        return r;
                s = lf + 1;
        }
        /* The devices always send a length; without one (a bodiless error
         * reply) the body is empty, and bytes after it put the stream out
         * of step. */
        p->msg.body = malloc(length + 1);
        if (!p->msg.body)
                return refuse(p, err, -ENOMEM, "out of memory");
        p->msg.body_len = length;
        p->msg.body[length] = 0;
        p->in_body = true;
        p->body_have = 0;
        return 0;
}

int http1_parser_feed(Http1Parser *p, const uint8_t *data, size_t len, size_t *ret_consumed, KasaError *err) {
        size_t used = 0;
        int r;

        *ret_consumed = 0;
        if (p->failed)
                return refuse(p, err, -EBADMSG, "HTTP parser used after an error");

        while (!p->in_body && used < len) {
                if (p->head_have >= HTTP1_HEADER_MAX)
                        return refuse(p, err, -EMSGSIZE, "HTTP header block longer than %u bytes",
                                      HTTP1_HEADER_MAX);
                p->head[p->head_have++] = (char) data[used++];
                if (p->head_have == 1 && p->head[0] != 'H' && p->kind == HTTP1_RESPONSE)
                        return refuse(p, err, -EBADMSG, "not an HTTP response");
                if (p->head_have >= 4 && memcmp(p->head + p->head_have - 4, "\r\n\r\n", 4) == 0) {
                        r = parse_head(p, err);
                        if (r < 0)
                                return r;
                }
        }
        *ret_consumed = used;
        if (!p->in_body)
                return 0;

        size_t n = MIN(len - used, p->msg.body_len - p->body_have);
        memcpy(p->msg.body + p->body_have, data + used, n);
        p->body_have += n;
        *ret_consumed = used + n;
        return p->body_have == p->msg.body_len;
}

static bool header_safe(const char *s) {
        return !s || !strpbrk(s, "\r\n");
}

/* buf and size are open_memstream()'s, valid after fclose(). */
static int finish(FILE *f, char **buf, size_t *size, const uint8_t *body, size_t body_len, uint8_t **ret,
                  size_t *ret_len) {
        if (body_len > 0)
                fwrite(body, 1, body_len, f);
        if (fclose(f) != 0) {
                free(*buf);
                return -ENOMEM;
        }
        *ret = (uint8_t *) *buf;
        *ret_len = *size;
        return 0;
}

int http1_request_write(const char *path, const char *host, const char *cookie, const uint8_t *body,
                        size_t body_len, uint8_t **ret, size_t *ret_len) {
        return http1_request_write_type(path, host, HTTP1_OCTET_STREAM, cookie, body, body_len, ret, ret_len);
}

int http1_request_write_type(const char *path, const char *host, const char *content_type, const char *cookie,
                             const uint8_t *body, size_t body_len, uint8_t **ret, size_t *ret_len) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f;

        if (!path || path[0] != '/' || !header_safe(path) || strchr(path, ' ') || !host || !header_safe(host) ||
            !header_safe(cookie) || !content_type || !header_safe(content_type))
                return -EINVAL;
        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        fprintf(f, "POST %s HTTP/1.1\r\nHost: %s\r\nAccept: */*\r\n"
                "Content-Type: %s\r\nContent-Length: %zu\r\n", path, host, content_type, body_len);
        if (cookie)
                fprintf(f, "Cookie: %s\r\n", cookie);
        fputs("\r\n", f);
        return finish(f, &buf, &size, body, body_len, ret, ret_len);
}

int http1_response_write(int status, const char *set_cookie, bool close, const uint8_t *body, size_t body_len,
                         uint8_t **ret, size_t *ret_len) {
        return http1_response_write_type(status, HTTP1_OCTET_STREAM, set_cookie, close, body, body_len, ret, ret_len);
}

int http1_response_write_type(int status, const char *content_type, const char *set_cookie, bool close,
                              const uint8_t *body, size_t body_len, uint8_t **ret, size_t *ret_len) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f;

        if (status < 200 || status > 599 || !header_safe(set_cookie) || !content_type || !header_safe(content_type))
                return -EINVAL;
        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        fprintf(f, "HTTP/1.1 %d %s\r\nServer: SHIP 2.0\r\nContent-Type: %s\r\n"
                "Content-Length: %zu\r\n", status,
                status == 200 ? "OK" : status == 403 ? "Forbidden" : status == 404 ? "Not Found" : "Error",
                content_type, body_len);
        if (set_cookie)
                fprintf(f, "Set-Cookie: %s\r\n", set_cookie);
        if (close)
                fputs("Connection: close\r\n", f);
        fputs("\r\n", f);
        return finish(f, &buf, &size, body, body_len, ret, ret_len);
}
