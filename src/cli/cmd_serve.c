/* `strata serve`: runs the Ollama-compatible HTTP server until SIGINT or SIGTERM. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/util.h"
#include "server/server.h"

static void usage(void) {
    printf("Usage: strata serve [--host HOST:PORT] [--devices SPEC]\n\n"
           "Serves Ollama's API (/api/...) and the OpenAI-compatible API (/v1/...) over HTTP.\n\n"
           "  --host ADDR     where to listen (default 127.0.0.1:11434; env STRATA_HOST, as\n"
           "                  OLLAMA_HOST: host:port, host, :port or a port alone)\n"
           "  --devices SPEC  the device inventory to plan with (env STRATA_DEVICES)\n\n"
           "Environment: STRATA_MODELS (the model store, default ~/.strata/models),\n"
           "STRATA_MAX_LOADED_MODELS (default 3), STRATA_KEEP_ALIVE (default 5m),\n"
           "STRATA_GPU_RESERVE (memory kept free per GPU).\n");
}

int cmd_serve(int argc, char **argv) {
    strata_server_config cfg;
    if (strata_server_config_default(&cfg) != STRATA_OK) return cli_error("%s", strata_last_error());
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            usage();
            return 0;
        }
        if ((cli_opt_is(a, "host") || cli_opt_is(a, "devices")) && i + 1 < argc) {
            if (cli_opt_is(a, "devices")) cfg.devices = argv[++i];
            else if (strata_server_parse_host(argv[++i], cfg.host, sizeof cfg.host, &cfg.port) != STRATA_OK)
                return cli_error("%s", strata_last_error());
            continue;
        }
        return cli_error("serve: unknown argument '%s' (see 'strata serve --help')", a);
    }
    /* Signals are taken by sigwait below; every thread inherits the mask. A client that goes
     * away must not kill the server with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    strata_server *srv = NULL;
    if (strata_server_start(&cfg, &srv) != STRATA_OK) return cli_error("%s", strata_last_error());
    fprintf(stderr, "strata: listening on %s:%u (version %s)\n", cfg.host, strata_server_port(srv), STRATA_VERSION);
    fflush(stderr);
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "strata: %s received, shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    strata_server_stop(srv);
    return 0;
}
