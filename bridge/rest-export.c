/* SPDX-License-Identifier: MIT */

/* GET /api/export: Manager.Export's pipe passed on to the client as it
 * comes, in chunks (chunked transfer encoding). The next chunk is read
 * from the pipe only once the one before is written to the client, so an
 * export holds one chunk in the bridge however long its range and however
 * slow its client; kasamond in turn writes the pipe as it is read. A
 * client that goes away closes the pipe, which ends kasamond's side. */

#include <gio/gunixfdlist.h>
#include <gio/gunixinputstream.h>
#include <string.h>

#include "kasa-dbus.h"
#include "log.h"
#include "rest.h"

#define CHUNK_BYTES 65536

typedef struct ExportStream {
        struct ExportStream *prev, *next; /* Bridge.exports */
        Request *request;
        GInputStream *in;
        GCancellable *cancel;
        gulong wrote_id, gone_id;
        bool reading;
} ExportStream;

static void stream_end(ExportStream *s, bool complete) {
        Request *r = s->request;
        Bridge *b = r->bridge;

        if (s->prev)
                s->prev->next = s->next;
        else
                b->exports = s->next;
        if (s->next)
                s->next->prev = s->prev;
        g_signal_handler_disconnect(r->msg, s->wrote_id);
        g_signal_handler_disconnect(r->msg, s->gone_id);
        g_clear_object(&s->in); /* closes the pipe */
        g_clear_object(&s->cancel);
        g_free(s);
        request_stream_end(r, complete);
}

static void on_read(GObject *source, GAsyncResult *res, gpointer userdata) {
        ExportStream *s = userdata;
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) chunk = g_input_stream_read_bytes_finish(G_INPUT_STREAM(source), res, &error);

        s->reading = false;
        if (!chunk) {
                if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                        log_warning("Failed to read an export from kasamond, cutting it: %s", error->message);
                return stream_end(s, false);
        }
        if (g_bytes_get_size(chunk) == 0)
                return stream_end(s, true);
        soup_message_body_append_bytes(soup_server_message_get_response_body(s->request->msg), chunk);
        request_stream_more(s->request);
}

static void read_next(ExportStream *s) {
        s->reading = true;
        g_input_stream_read_bytes_async(s->in, CHUNK_BYTES, G_PRIORITY_DEFAULT, s->cancel, on_read, s);
}

/* The chunk before is written: the next. */
static void on_wrote_chunk(SoupServerMessage *msg, gpointer userdata) {
        read_next(userdata);
}

static void cut(ExportStream *s) {
        if (s->reading)
                g_cancellable_cancel(s->cancel); /* on_read() ends it */
        else
                stream_end(s, false);
}

static void on_disconnected(SoupServerMessage *msg, gpointer userdata) {
        cut(userdata);
}

void rest_export_revoked(Bridge *b, const char *token_id) {
        for (ExportStream *s = b->exports, *next; s; s = next) {
                next = s->next;
                AuthSession *session = s->request->session;
                if (session && session->token_id && strcmp(session->token_id, token_id) == 0 &&
                    !g_cancellable_is_cancelled(s->cancel))
                        cut(s);
        }
}

static void got_export(GObject *source, GAsyncResult *res, gpointer userdata) {
        Request *r = userdata;
        g_autoptr(GError) error = NULL;
        g_autoptr(GUnixFDList) fds = NULL;
        g_autoptr(GVariant) reply =
                g_dbus_connection_call_with_unix_fd_list_finish(G_DBUS_CONNECTION(source), &fds, res, &error);
        const char *format = rest_query(r, "format");
        bool json = format && strcmp(format, "json") == 0;
        gint32 handle;
        int fd;

        if (!reply)
                return request_reply_dbus_error(r, error);
        if (r->gone)
                return request_stream_end(r, false);
        g_variant_get(reply, "(h)", &handle);
        fd = fds ? g_unix_fd_list_get(fds, handle, &error) : -1;
        if (fd < 0)
                return request_reply_error(r, 502, "bad_gateway", "kasamond sent no export: %s",
                                           error ? error->message : "no file descriptor");

        ExportStream *s = g_new0(ExportStream, 1);
        s->request = r;
        s->in = g_unix_input_stream_new(fd, true);
        s->cancel = g_cancellable_new();
        s->next = r->bridge->exports;
        if (s->next)
                s->next->prev = s;
        r->bridge->exports = s;
        s->wrote_id = g_signal_connect(r->msg, "wrote-chunk", G_CALLBACK(on_wrote_chunk), s);
        s->gone_id = g_signal_connect(r->msg, "disconnected", G_CALLBACK(on_disconnected), s);
        soup_message_headers_replace(soup_server_message_get_response_headers(r->msg), "Content-Disposition",
                                     json ? "attachment; filename=\"kasa-export.json\""
                                          : "attachment; filename=\"kasa-export.csv\"");
        request_stream_begin(r, json ? "application/json" : "text/csv; charset=utf-8; header=present");
        read_next(s);
}

void rest_export_handle(Request *r) {
        g_autofree char *error = NULL;
        GVariantBuilder fields;
        ExportQuery q;
        GVariant *paths;

        if (!rest_require_up(r))
                return;
        if (parse_export_query(r->query, (uint64_t) g_get_real_time(), &q, &error) < 0)
                return request_reply_error(r, 400, "bad_request", "%s", error);
        paths = rest_device_paths(r, (const char *const *) q.devices, q.devices ? g_strv_length(q.devices) : 0);
        if (!paths)
                return export_query_done(&q);
        g_variant_builder_init(&fields, G_VARIANT_TYPE("as"));
        for (size_t i = 0; q.fields && q.fields[i]; i++)
                g_variant_builder_add(&fields, "s", q.fields[i]);
        request_pause(r);
        g_dbus_connection_call_with_unix_fd_list(
                r->bridge->bus, KASA_BUS_NAME, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "Export",
                g_variant_new("(@aottss@asb)", paths, q.since, q.until, q.resolution, q.format,
                              g_variant_builder_end(&fields), q.costs),
                G_VARIANT_TYPE("(h)"), G_DBUS_CALL_FLAGS_NO_AUTO_START, CALL_TIMEOUT_MS, NULL, NULL, got_export, r);
        export_query_done(&q);
}
