/* SPDX-License-Identifier: MIT */

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
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

/* Every polled plug or strip holds a TCP socket for its whole life, so a
 * thousand of them exceed the customary soft limit of 1024 descriptors.
 * The hard limit is what the administrator (or LimitNOFILE=) allows; sd-event
 * uses epoll, so descriptors above 1023 are safe. */
static void raise_nofile(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
                return;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                log_warning_errno(-errno, "Failed to raise the file descriptor limit, ignoring: %m");
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
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);
        raise_nofile();

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
        if (r >= 0 && m->restart) {
                /* A restore was staged: everything closed, the new
                 * process puts it in place before it opens anything. */
                m = manager_free(m);
                execv("/proc/self/exe", argv);
                log_error_errno(errno, "Failed to execute kasamond again to finish the restore: %m");
                return EXIT_FAILURE;
        }
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
