/* `strata serve`: the Ollama-compatible HTTP server.
 *
 * Owns: the libmicrohttpd daemon, request routing, the Ollama API (/api/...), the
 * OpenAI-compatible API (/v1/...), streaming (NDJSON and server-sent events) and, through
 * server/scheduler.h, the loaded models. See README ("strata serve and the API") for the
 * routes and what Strata adds to Ollama's shapes. */
#ifndef STRATA_SERVER_SERVER_H
#define STRATA_SERVER_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define STRATA_SERVER_DEFAULT_HOST "127.0.0.1"
#define STRATA_SERVER_DEFAULT_PORT 11434
/* What /api/version answers; kept equal to the CLI's STRATA_VERSION (cli/cli.h). */
#define STRATA_SERVER_VERSION "0.1.0"
#define STRATA_SERVER_MAX_BODY (32u << 20) /* request bodies above this get 413 */
/* A blob upload above this gets 413 ($STRATA_MAX_UPLOAD, e.g. "200G"). */
#define STRATA_SERVER_MAX_UPLOAD (1ULL << 40)
/* Seconds a connection may be idle, or take to send its request, and a client may go
 * without reading a stream, before it is dropped ($STRATA_HTTP_TIMEOUT). */
#define STRATA_SERVER_HTTP_TIMEOUT_S 60u
/* Seconds a pull may receive nothing before it fails ($STRATA_PULL_STALL_TIMEOUT). */
#define STRATA_SERVER_PULL_STALL_S 60u
/* Bytes a stream buffers for a client that reads slowly; beyond, generation waits. */
#define STRATA_SERVER_STREAM_BUFFER (256u << 10)
/* The kernel send buffer of a streaming connection. */
#define STRATA_SERVER_SOCKET_SNDBUF (64u << 10)
#define STRATA_SERVER_MAX_CONNECTIONS 1024u

typedef struct {
    char host[256];        /* IPv4/IPv6 literal or a name to resolve */
    uint16_t port;
    const char *models_dir; /* NULL = $STRATA_MODELS or ~/.strata/models */
    const char *devices;    /* device spec; NULL = $STRATA_DEVICES or discovery */
    int max_loaded;         /* 0 = $STRATA_MAX_LOADED_MODELS or 3 */
    size_t max_body;        /* 0 = STRATA_SERVER_MAX_BODY */
    uint64_t max_upload;    /* 0 = $STRATA_MAX_UPLOAD or STRATA_SERVER_MAX_UPLOAD */
    unsigned http_timeout_s; /* 0 = $STRATA_HTTP_TIMEOUT or STRATA_SERVER_HTTP_TIMEOUT_S */
    unsigned pull_stall_s;   /* 0 = $STRATA_PULL_STALL_TIMEOUT or STRATA_SERVER_PULL_STALL_S */
} strata_server_config;

/* Defaults, with host and port from $STRATA_HOST when set. */
strata_status strata_server_config_default(strata_server_config *cfg);

/* Parses an OLLAMA_HOST-style address: "host:port", "host", ":port", "port", with an
 * optional "http://" and "[v6]:port". */
strata_status strata_server_parse_host(const char *text, char *host, size_t cap, uint16_t *port);

typedef struct strata_server strata_server;

/* Binds and starts serving in background threads. */
strata_status strata_server_start(const strata_server_config *cfg, strata_server **out);
/* The port actually bound (useful with port 0). */
uint16_t strata_server_port(const strata_server *s);
/* Stops accepting, cancels running generations, waits for connections, frees. */
void strata_server_stop(strata_server *s);

#endif
