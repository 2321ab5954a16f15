/* SPDX-License-Identifier: MIT */

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "manager.h"

static void help(void) {
        printf("Usage: kasamond [OPTIONS]\n\n"
               "Monitor and control TP-Link Kasa smart plugs, on the system bus as %s.\n\n"
               "  -h --help            Show this help\n"
               "     --version         Show the version\n"
               "     --config=FILE     Read the configuration from FILE\n"
               "                       (default: none, built-in defaults)\n"
               "     --dump-config     Print the configuration in force and exit\n\n"
               "The state directory is $STATE_DIRECTORY when set, else StateDirectory=.\n"
               "Set KASA_LOG_LEVEL=debug for more detail. See kasamond(8), kasamond.conf(5).\n",
               "org.kasamond.Kasa1");
}

int main(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100, ARG_CONFIG, ARG_DUMP };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "config", required_argument, NULL, ARG_CONFIG },
                { "dump-config", no_argument, NULL, ARG_DUMP },
                {}
        };
        _cleanup_(manager_freep) Manager *m = NULL;
        const char *config_path = NULL;
        bool dump = false;
        Config config;
        char *error = NULL;
        sigset_t mask;
        int c, r;

        log_parse_environment();
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                case ARG_VERSION:
                        printf("kasamond %s\n", PROJECT_VERSION);
                        return EXIT_SUCCESS;
                case ARG_CONFIG:
                        config_path = optarg;
                        break;
                case ARG_DUMP:
                        dump = true;
                        break;
                default:
                        return 2;
                }
        if (optind < argc) {
                log_error("Unexpected argument '%s'. See kasamond --help.", argv[optind]);
                return 2;
        }

        r = config_load(config_path, &config, &error);
        if (r < 0) {
                log_error("%s", error ?: "Failed to load the configuration.");
                free(error);
                return EXIT_FAILURE;
        }
        if (dump) {
                _cleanup_free_ char *text = config_dump(&config);
                config_done(&config);
                if (!text)
                        return log_oom(), EXIT_FAILURE;
                fputs(text, stdout);
                return EXIT_SUCCESS;
        }

        /* sd-event's signal sources need the signals blocked. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        r = manager_new(&config, &m);
        config_done(&config);
        if (r < 0)
                return EXIT_FAILURE;
        r = manager_startup(m);
        if (r < 0) {
                (void) sd_notifyf(false, "STATUS=Failed to start: %s\nERRNO=%i", strerror(-r), -r);
                return EXIT_FAILURE;
        }
        r = manager_run(m);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
