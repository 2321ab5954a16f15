/* SPDX-License-Identifier: MIT */

/* kasamond-bridge: the HTTP side of kasamond (REST, WebSocket, /metrics,
 * the dashboard), unprivileged, speaking to kasamond only over D-Bus. */

#include <errno.h>
#include <glib-unix.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "bridge.h"
#include "log.h"
#include "webhook.h"
#include "ws.h"

#define DEFAULT_LISTEN "127.0.0.1:8337"

static char *arg_listen = NULL;
static char *arg_tls_cert = NULL;
static char *arg_tls_key = NULL;
static gboolean arg_insecure = false;
static char *arg_cors_origin = NULL;
static char **arg_open = NULL;
static gint64 arg_max_body = 64 * 1024;
static gint64 arg_max_header = 16 * 1024;
static gint64 arg_ws_queue = 1024 * 1024;
static char *arg_openapi = NULL;
static char *arg_dashboard = NULL;
static char *arg_webhook = NULL;
static char *arg_webhook_file = NULL;
static gint64 arg_webhook_timeout = 10;
static gint64 arg_webhook_retries = 5;
static gint64 arg_webhook_queue = 256;
static char *arg_webhook_ca = NULL;
static gboolean arg_dump_routes = false;
static gboolean arg_version = false;

static const GOptionEntry options[] = {
        { "listen", 0, 0, G_OPTION_ARG_STRING, &arg_listen, "Listen on ADDRESS:PORT (default " DEFAULT_LISTEN ")",
          "ADDRESS:PORT" },
        { "tls-cert", 0, 0, G_OPTION_ARG_FILENAME, &arg_tls_cert, "Serve HTTPS with this PEM certificate", "FILE" },
        { "tls-key", 0, 0, G_OPTION_ARG_FILENAME, &arg_tls_key, "The certificate's PEM private key", "FILE" },
        { "insecure", 0, 0, G_OPTION_ARG_NONE, &arg_insecure, "Allow plain HTTP beyond loopback", NULL },
        { "cors-origin", 0, 0, G_OPTION_ARG_STRING, &arg_cors_origin, "Allow cross-origin requests from ORIGIN",
          "ORIGIN" },
        { "open", 0, 0, G_OPTION_ARG_STRING_ARRAY, &arg_open, "Serve metrics or health without a token",
          "metrics|health" },
        { "max-body", 0, 0, G_OPTION_ARG_INT64, &arg_max_body, "Largest request body (bytes)", "BYTES" },
        { "max-header", 0, 0, G_OPTION_ARG_INT64, &arg_max_header, "Largest request head (bytes)", "BYTES" },
        { "ws-queue", 0, 0, G_OPTION_ARG_INT64, &arg_ws_queue, "Unsent bytes a WebSocket client may fall behind",
          "BYTES" },
        { "openapi", 0, 0, G_OPTION_ARG_FILENAME, &arg_openapi, "The OpenAPI document to serve", "FILE" },
        { "dashboard", 0, 0, G_OPTION_ARG_FILENAME, &arg_dashboard, "The dashboard's directory", "DIR" },
        { "webhook", 0, 0, G_OPTION_ARG_STRING, &arg_webhook, "POST every alert fired and resolved to URL", "URL" },
        { "webhook-file", 0, 0, G_OPTION_ARG_FILENAME, &arg_webhook_file, "Read the webhook's URL from FILE",
          "FILE" },
        { "webhook-timeout", 0, 0, G_OPTION_ARG_INT64, &arg_webhook_timeout,
          "Seconds one webhook attempt may take (default 10)", "SECONDS" },
        { "webhook-retries", 0, 0, G_OPTION_ARG_INT64, &arg_webhook_retries,
          "Attempts after a failed one (default 5)", "N" },
        { "webhook-queue", 0, 0, G_OPTION_ARG_INT64, &arg_webhook_queue,
          "Alert events that may wait for the receiver (default 256)", "N" },
        { "webhook-ca", 0, 0, G_OPTION_ARG_FILENAME, &arg_webhook_ca,
          "Trust these PEM CA certificates for an https webhook", "FILE" },
        { "dump-routes", 0, 0, G_OPTION_ARG_NONE, &arg_dump_routes, "Print the REST routes and exit", NULL },
        { "version", 0, 0, G_OPTION_ARG_NONE, &arg_version, "Print the version and exit", NULL },
        {},
};

static gboolean on_signal(gpointer userdata) {
        g_main_loop_quit(userdata);
        return G_SOURCE_CONTINUE;
}

/* Plain HTTP is for loopback: tokens travel in it. */
static int check_address(GInetAddress *a, const char *what) {
        g_autofree char *s = g_inet_address_to_string(a);

        if (g_inet_address_get_is_loopback(a) || arg_tls_cert || arg_insecure)
                return 0;
        return log_error_errno(EPERM,
                               "Refusing to listen on %s (%s) without TLS: pass --tls-cert= and --tls-key=, or "
                               "--insecure to send tokens in the clear.",
                               s, what);
}

static int parse_listen(const char *s, GInetAddress **ret_addr, guint16 *ret_port) {
        g_autofree char *host = NULL;
        const char *colon;
        char *end;
        unsigned long port;

        if (s[0] == '[') {
                const char *close = strchr(s, ']');
                if (!close || close[1] != ':')
                        return -EINVAL;
                host = g_strndup(s + 1, close - s - 1);
                colon = close + 1;
        } else {
                colon = strrchr(s, ':');
                if (!colon)
                        return -EINVAL;
                host = g_strndup(s, colon - s);
        }
        errno = 0;
        port = strtoul(colon + 1, &end, 10);
        if (errno || *end || port == 0 || port > 65535 || !colon[1])
                return -EINVAL;
        *ret_addr = g_inet_address_new_from_string(host);
        if (!*ret_addr)
                return -EINVAL;
        *ret_port = (guint16) port;
        return 0;
}

static int listen_all(Bridge *b) {
        SoupServerListenOptions opts = arg_tls_cert ? SOUP_SERVER_LISTEN_HTTPS : 0;
        int n = sd_listen_fds(true), r;

        if (n < 0)
                return log_error_errno(n, "Failed to read the sockets passed by systemd: %m");
        if (n > 0 && arg_listen)
                return log_error_errno(EINVAL, "--listen= and sockets from systemd cannot be used together.");
        for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; fd++) {
                g_autoptr(GError) error = NULL;
                g_autoptr(GSocket) sock = g_socket_new_from_fd(fd, &error);
                g_autoptr(GSocketAddress) local = NULL;

                if (!sock)
                        return log_error_errno(EBADF, "Failed to take socket %d from systemd: %s", fd,
                                               error->message);
                local = g_socket_get_local_address(sock, &error);
                if (!local || !G_IS_INET_SOCKET_ADDRESS(local))
                        return log_error_errno(EAFNOSUPPORT, "Socket %d from systemd is not a TCP socket.", fd);
                r = check_address(g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(local)),
                                  "a socket from systemd");
                if (r < 0)
                        return r;
                if (!soup_server_listen_socket(b->server, sock, opts, &error))
                        return log_error_errno(EIO, "Failed to serve socket %d: %s", fd, error->message);
        }
        if (n == 0) {
                g_autoptr(GInetAddress) addr = NULL;
                g_autoptr(GSocketAddress) sa = NULL;
                g_autoptr(GError) error = NULL;
                guint16 port;

                if (parse_listen(arg_listen ?: DEFAULT_LISTEN, &addr, &port) < 0)
                        return log_error_errno(EINVAL, "Malformed --listen=%s: want IP:PORT or [IPv6]:PORT.",
                                               arg_listen);
                r = check_address(addr, "--listen=");
                if (r < 0)
                        return r;
                sa = g_inet_socket_address_new(addr, port);
                if (!soup_server_listen(b->server, sa, opts, &error))
                        return log_error_errno(EADDRNOTAVAIL, "Failed to listen on %s: %s",
                                               arg_listen ?: DEFAULT_LISTEN, error->message);
        }
        return 0;
}

static int load_config(Bridge *b) {
        g_autoptr(GError) error = NULL;
        char *data;
        gsize size;

        if (arg_max_body < 0 || arg_max_header < 1024 || arg_ws_queue < 4096)
                return log_error_errno(EINVAL, "--max-body= must be >= 0, --max-header= >= 1024, --ws-queue= >= 4096.");
        if (!arg_tls_cert != !arg_tls_key)
                return log_error_errno(EINVAL, "--tls-cert= and --tls-key= go together.");
        b->config.max_body = (size_t) arg_max_body;
        b->config.max_header = (size_t) arg_max_header;
        b->config.cors_origin = g_strdup(arg_cors_origin);
        for (char **o = arg_open; o && *o; o++) {
                if (strcmp(*o, "metrics") == 0)
                        b->config.open_metrics = true;
                else if (strcmp(*o, "health") == 0)
                        b->config.open_health = true;
                else
                        return log_error_errno(EINVAL, "--open= takes metrics or health, not '%s'.", *o);
        }
        b->config.openapi_path = g_strdup(arg_openapi ?: BRIDGE_DATADIR "/openapi.json");
        b->config.dashboard_dir = g_strdup(arg_dashboard ?: BRIDGE_DATADIR "/dashboard");
        if (!g_file_get_contents(b->config.openapi_path, &data, &size, &error))
                return log_error_errno(ENOENT, "Failed to read the OpenAPI document: %s", error->message);
        b->openapi = g_bytes_new_take(data, size);
        return 0;
}

/* The URL from --webhook= or the first line of --webhook-file=, where a
 * secret in it is not on the command line for every local user to read. */
static int load_webhook(char **ret_url) {
        g_autoptr(GError) error = NULL;
        g_autofree char *why = NULL;
        g_autoptr(GUri) uri = NULL;
        char *data;

        if (arg_webhook_timeout < 1 || arg_webhook_timeout > 600 || arg_webhook_retries < 0 ||
            arg_webhook_retries > 1000 || arg_webhook_queue < 1 || arg_webhook_queue > 1000000)
                return log_error_errno(EINVAL, "--webhook-timeout= must be 1 to 600, --webhook-retries= 0 to 1000, "
                                               "--webhook-queue= 1 to 1000000.");
        if (arg_webhook && arg_webhook_file)
                return log_error_errno(EINVAL, "--webhook= and --webhook-file= cannot be used together.");
        if (!arg_webhook && !arg_webhook_file) {
                if (arg_webhook_ca)
                        return log_error_errno(EINVAL, "--webhook-ca= needs --webhook= or --webhook-file=.");
                *ret_url = NULL;
                return 0;
        }
        if (arg_webhook_file) {
                if (!g_file_get_contents(arg_webhook_file, &data, NULL, &error))
                        return log_error_errno(ENOENT, "Failed to read the webhook's URL: %s", error->message);
                data[strcspn(data, "\r\n")] = 0;
        } else
                data = g_strdup(arg_webhook);
        /* Checked before the bus is: a typo fails at once. */
        uri = webhook_parse_url(data, &why);
        if (!uri) {
                g_free(data);
                return log_error_errno(EINVAL, "Bad webhook URL: %s.", why);
        }
        *ret_url = data;
        return 0;
}

static void counter_free(gpointer p) {
        RequestCounter *c = p;

        g_free(c->handler);
        g_free(c);
}

static int run(void) {
        Bridge b = {};
        g_autoptr(GError) error = NULL;
        g_autofree char *address = NULL, *webhook_url = NULL;
        int r;

        r = load_config(&b);
        if (r >= 0)
                r = load_webhook(&webhook_url);
        if (r < 0)
                goto finish;
        b.counters = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, counter_free);
        b.loop = g_main_loop_new(NULL, false);
        address = g_dbus_address_get_for_bus_sync(G_BUS_TYPE_SYSTEM, NULL, &error);
        if (address)
                b.bus = g_dbus_connection_new_for_address_sync(address,
                                                               G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                                       G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                               NULL, NULL, &error);
        if (!b.bus) {
                r = log_error_errno(ECONNREFUSED, "Failed to connect to the system bus: %s", error->message);
                goto finish;
        }
        g_dbus_connection_set_exit_on_close(b.bus, false);
        g_signal_connect_swapped(b.bus, "closed", G_CALLBACK(g_main_loop_quit), b.loop);
        kasa_client_new(b.bus, &b.kasa);
        kasa_client_listen(b.kasa, bridge_invalidate, &b);
        auth_new(address, &b.auth);
        ws_server_new(&b, (size_t) arg_ws_queue, &b.ws);
        bridge_watch_tokens(&b);
        if (webhook_url) {
                WebhookConfig config = {
                        .url = webhook_url,
                        .timeout_sec = (unsigned) arg_webhook_timeout,
                        .retries = (unsigned) arg_webhook_retries,
                        .queue_max = (size_t) arg_webhook_queue,
                        .ca_file = arg_webhook_ca,
                };
                r = webhook_new(b.kasa, &config, &b.webhook);
                if (r < 0)
                        goto finish;
        }

        if (arg_tls_cert) {
                g_autoptr(GTlsCertificate) cert = g_tls_certificate_new_from_files(arg_tls_cert, arg_tls_key, &error);
                if (!cert) {
                        r = log_error_errno(EINVAL, "Failed to load the TLS certificate: %s", error->message);
                        goto finish;
                }
                b.server = soup_server_new("server-header", "kasamond-bridge", "tls-certificate", cert, NULL);
        } else
                b.server = soup_server_new("server-header", "kasamond-bridge", NULL);
        bridge_server_setup(&b);
        r = listen_all(&b);
        if (r < 0)
                goto finish;

        g_unix_signal_add(SIGTERM, on_signal, b.loop);
        g_unix_signal_add(SIGINT, on_signal, b.loop);
        for (GSList *l = soup_server_get_uris(b.server); l; l = g_slist_delete_link(l, l)) {
                g_autofree char *s = g_uri_to_string(l->data);
                log_info("Listening on %s", s);
                g_uri_unref(l->data);
        }
        (void) sd_notify(false, "READY=1");
        g_main_loop_run(b.loop);
        (void) sd_notify(false, "STOPPING=1");
        r = 0;
        if (g_dbus_connection_is_closed(b.bus))
                r = log_error_errno(ECONNRESET, "The system bus went away.");

finish:
        if (b.server)
                soup_server_disconnect(b.server);
        g_clear_object(&b.server);
        webhook_free(b.webhook);
        ws_server_free(b.ws);
        if (b.sub_revoked)
                g_dbus_connection_signal_unsubscribe(b.bus, b.sub_revoked);
        auth_free(b.auth);
        kasa_client_free(b.kasa);
        g_clear_object(&b.bus);
        g_clear_pointer(&b.loop, g_main_loop_unref);
        g_clear_pointer(&b.counters, g_hash_table_destroy);
        bridge_invalidate(KASA_EVENT_DOWN, NULL, 0, &b);
        if (b.openapi)
                g_bytes_unref(b.openapi);
        if (b.pages)
                g_hash_table_destroy(b.pages);
        g_free(b.config.cors_origin);
        g_free(b.config.openapi_path);
        g_free(b.config.dashboard_dir);
        return r;
}

int main(int argc, char *argv[]) {
        g_autoptr(GOptionContext) ctx = g_option_context_new("- the HTTP bridge of kasamond");
        g_autoptr(GError) error = NULL;

        log_parse_environment();
        g_option_context_add_main_entries(ctx, options, NULL);
        if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
                fprintf(stderr, "%s\n", error->message);
                return 2;
        }
        if (argc > 1) {
                fprintf(stderr, "Unexpected argument: %s\n", argv[1]);
                return 2;
        }
        if (arg_version) {
                puts(PROJECT_VERSION);
                return 0;
        }
        if (arg_dump_routes) {
                for (int i = 0; i < _ROUTE_MAX; i++)
                        printf("%s %s %s\n", route_table[i].method, route_table[i].pattern,
                               role_to_string(route_table[i].role));
                return 0;
        }
        return run() < 0 ? 1 : 0;
}
