/* `strata serve`: runs the Ollama-compatible HTTP server until SIGINT or SIGTERM. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/util.h"
#include "server/server.h"

/* Seconds SIGINT/SIGTERM may take to stop the server with work in flight. */
#define SHUTDOWN_BOUND_S 10

static void usage(void) {
    printf("Usage: strata serve [--host HOST:PORT] [--devices SPEC]\n\n"
           "Serves Ollama's API (/api/...) and the OpenAI-compatible API (/v1/...) over HTTP.\n\n"
           "  --host ADDR     where to listen (default 127.0.0.1:11434; env STRATA_HOST, as\n"
           "                  OLLAMA_HOST: host:port, host, :port or a port alone)\n"
           "  --devices SPEC  the device inventory to plan with (env STRATA_DEVICES)\n\n"
           "Environment: STRATA_MODELS (the model store, default ~/.strata/models),\n"
           "STRATA_MAX_LOADED_MODELS (default 3), STRATA_KEEP_ALIVE (default 5m),\n"
           "STRATA_GPU_RESERVE (memory kept free per GPU), STRATA_CONTEXT_LENGTH (default num_ctx),\n"
        "STRATA_KV_CACHE_TYPE (f16, f32, q8_0), STRATA_NUM_PARALLEL (KV for N contexts),\n"
        "STRATA_SCHED_SPREAD (spread layers over every GPU),\n"
        "each falling back to Ollama's variable (OLLAMA_HOST, OLLAMA_MODELS, OLLAMA_KEEP_ALIVE,\n"
        "  OLLAMA_MAX_LOADED_MODELS, OLLAMA_CONTEXT_LENGTH, OLLAMA_GPU_OVERHEAD, OLLAMA_KV_CACHE_TYPE,\n"
        "  OLLAMA_NUM_PARALLEL, OLLAMA_SCHED_SPREAD) when unset,\n"
           "STRATA_ORIGINS / OLLAMA_ORIGINS (more browser origins allowed, comma-separated, '*'\n"
           "  as a wildcard; localhost, 127.0.0.1, 0.0.0.0 and app://, file://, tauri:// are),\n"
           "STRATA_API_KEY (when set, requests need 'Authorization: Bearer KEY'),\n"
           "STRATA_HTTP_TIMEOUT (seconds an idle or half-sent connection, or a client that stops\n"
           "  reading a stream, is kept; default 60), STRATA_PULL_STALL_TIMEOUT (seconds a pull\n"
           "  may receive nothing; default 60), STRATA_MAX_UPLOAD (largest blob upload, default 1T).\n\n"
           "On a loopback address, requests must name this machine in Host (DNS-rebinding\n"
           "protection). SIGINT or SIGTERM cancels work in flight and exits within %d s\n"
           "(a second signal exits at once); the model store stays consistent either way.\n",
           SHUTDOWN_BOUND_S);
}

static atomic_bool stopped;

static void *stop_thread(void *arg) {
    strata_server_stop(arg);
    atomic_store(&stopped, true);
    return NULL;
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
    fflush(stderr);
    /* The stop cancels generations, creates and pulls in flight and waits for them; should
     * something still not let go (a thread blocked in the kernel), the process exits anyway
     * after SHUTDOWN_BOUND_S: every store write is atomic, so the store stays consistent. */
    pthread_t th;
    if (pthread_create(&th, NULL, stop_thread, srv) != 0) {
        strata_server_stop(srv);
        return 0;
    }
    struct timespec step = {0, 50000000};
    for (int i = 0; i < SHUTDOWN_BOUND_S * 20 && !atomic_load(&stopped); i++) {
        if (sigtimedwait(&set, NULL, &step) > 0) {
            fprintf(stderr, "strata: second signal: exiting now\n");
            fflush(stderr);
            _exit(1);
        }
    }
    if (!atomic_load(&stopped)) {
        fprintf(stderr, "strata: work in flight did not stop within %d s; exiting anyway\n", SHUTDOWN_BOUND_S);
        fflush(stderr);
        _exit(1);
    }
    pthread_join(th, NULL);
    return 0;
}
