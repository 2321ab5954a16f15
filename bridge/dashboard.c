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

void dashboard_serve(Request *r, const char *path) {
        const char *method = soup_server_message_get_method(r->msg), *name, *type = NULL;
        g_autofree char *file = NULL, *data = NULL;
        gsize size;

        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
                return request_reply_error(r, 405, "method_not_allowed", "%s is not allowed on %s", method, path);
        name = strcmp(path, "/") == 0 ? "index.html" : path + 1;
        for (size_t i = 0; i < G_N_ELEMENTS(types); i++)
                if (g_str_has_suffix(name, types[i].suffix))
                        type = types[i].type;
        if (!r->bridge->config.dashboard_dir || !plain_name(name) || !type)
                return request_reply_error(r, 404, "not_found", "no such page: %s", path);
        file = g_build_filename(r->bridge->config.dashboard_dir, name, NULL);
        if (!g_file_get_contents(file, &data, &size, NULL))
                return request_reply_error(r, 404, "not_found", "no such page: %s", path);
        soup_message_headers_replace(soup_server_message_get_response_headers(r->msg), "Cache-Control", "no-cache");
        /* Nothing of the page may come from elsewhere. */
        soup_message_headers_replace(soup_server_message_get_response_headers(r->msg), "Content-Security-Policy",
                                     "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:");
        soup_server_message_set_status(r->msg, 200, NULL);
        soup_server_message_set_response(r->msg, type, SOUP_MEMORY_TAKE, g_steal_pointer(&data), size);
        request_reply_empty(r, 200);
}
