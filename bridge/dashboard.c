/* SPDX-License-Identifier: MIT */

#include "dashboard.h"

#include <string.h>

static const struct {
        const char *suffix, *type;
} types[] = {
        { ".html", "text/html; charset=utf-8" },
        { ".js", "text/javascript; charset=utf-8" },
        { ".css", "text/css; charset=utf-8" },
        { ".svg", "image/svg+xml" },
        { ".png", "image/png" },
        { ".ico", "image/x-icon" },
};

static bool plain_name(const char *s) {
        if (!*s || *s == '.' || strlen(s) > 64)
                return false;
        for (; *s; s++)
                if (!g_ascii_isalnum(*s) && *s != '.' && *s != '-' && *s != '_')
                        return false;
        return true;
}

/* The page's files, read once: they are installed with the bridge and
 * change with it, and a read per request would be disk I/O on the loop. */
static GBytes *page(Bridge *b, const char *name) {
        g_autofree char *file = NULL, *data = NULL;
        GBytes *bytes;
        gsize size;

        if (!b->pages)
                b->pages = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_bytes_unref);
        bytes = g_hash_table_lookup(b->pages, name);
        if (bytes)
                return bytes;
        file = g_build_filename(b->config.dashboard_dir, name, NULL);
        if (!g_file_get_contents(file, &data, &size, NULL))
                return NULL;
        bytes = g_bytes_new_take(g_steal_pointer(&data), size);
        g_hash_table_insert(b->pages, g_strdup(name), bytes);
        return bytes;
}

void dashboard_serve(Request *r, const char *path) {
        const char *method = soup_server_message_get_method(r->msg), *name, *type = NULL;
        GBytes *body;

        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
                return request_reply_error(r, 405, "method_not_allowed", "%s is not allowed on %s", method, path);
        name = strcmp(path, "/") == 0 ? "index.html" : path + 1;
        for (size_t i = 0; i < G_N_ELEMENTS(types); i++)
                if (g_str_has_suffix(name, types[i].suffix))
                        type = types[i].type;
        if (!r->bridge->config.dashboard_dir || !plain_name(name) || !type)
                return request_reply_error(r, 404, "not_found", "no such page: %s", path);
        body = page(r->bridge, name);
        if (!body)
                return request_reply_error(r, 404, "not_found", "no such page: %s", path);
        soup_message_headers_replace(soup_server_message_get_response_headers(r->msg), "Cache-Control", "no-cache");
        /* Nothing of the page may come from elsewhere. */
        soup_message_headers_replace(soup_server_message_get_response_headers(r->msg), "Content-Security-Policy",
                                     "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:");
        request_reply_bytes(r, type, body);
}
