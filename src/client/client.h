/* A small client for the Ollama-compatible HTTP API that `strata serve` speaks, over libcurl.
 *
 * Owns: where the server is (STRATA_HOST, as Ollama reads OLLAMA_HOST: "host", "host:port",
 * ":port", a port alone, "http://host:port"; default 127.0.0.1:11434), one reused connection, JSON request
 * bodies, and NDJSON response streams split into lines and parsed before they reach the caller.
 *
 * Errors: a server answer of {"error": "..."} (with any status, or as a line in the middle of a
 * stream) fails with that message verbatim; a refused connection fails with
 * "could not connect to the strata server at HOST (is `strata serve` running?)". The HTTP status
 * of an error answer picks the strata_status: 404 -> STRATA_ERR_NOT_FOUND, other 4xx ->
 * STRATA_ERR_INVALID, the rest STRATA_ERR_IO. Nothing here prints or exits.
 *
 * Thread-safety: one strata_client is used by one thread at a time. */
#ifndef STRATA_CLIENT_CLIENT_H
#define STRATA_CLIENT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/status.h"

struct cJSON;

#define STRATA_DEFAULT_PORT 11434

typedef struct strata_client strata_client;

/* Opens a client for `host` (same forms as STRATA_HOST), or $STRATA_HOST / the default when
 * host is NULL. Connects lazily: opening never fails because the server is down. */
strata_status strata_client_open(const char *host, strata_client **out);
void strata_client_free(strata_client *c);

/* "127.0.0.1:11434": the host and port requests go to (owned by c). */
const char *strata_client_host(const strata_client *c);

/* Receives each parsed NDJSON line of a stream (borrowed: valid during the call only).
 * Returning false stops the transfer; the request then fails with STRATA_ERR_CANCELLED. */
typedef bool (*strata_client_line_fn)(void *user, const struct cJSON *line);

/* Called about every 100 ms while a request waits or transfers (for spinners and Ctrl-C).
 * Returning false cancels the request (STRATA_ERR_CANCELLED). */
typedef bool (*strata_client_tick_fn)(void *user);
/* Sets (or clears, with NULL) the tick callback for later requests. */
void strata_client_set_tick(strata_client *c, strata_client_tick_fn fn, void *user);

/* method "GET", "POST", "DELETE", ...; path "/api/tags". body may be NULL (no body). On success
 * *out (if out is not NULL) is the parsed JSON answer, which the caller deletes with
 * cJSON_Delete; an empty answer gives NULL. */
strata_status strata_client_call(strata_client *c, const char *method, const char *path, const struct cJSON *body,
                                 struct cJSON **out);

/* As strata_client_call, for an answer streamed as NDJSON: fn gets each line as it arrives. A
 * line holding "error" fails the request with its message (fn does not see it). */
strata_status strata_client_stream(strata_client *c, const char *method, const char *path,
                                   const struct cJSON *body, strata_client_line_fn fn, void *user);

/* The HTTP status of the last answer (0 when none came). */
long strata_client_http_status(const strata_client *c);

/* True when a server answers GET /api/version at c's host (when false, strata_last_error() says why). */
bool strata_client_ping(strata_client *c);

#endif
