/* Declarations shared by the server's files (not part of the public interface). */
#ifndef STRATA_SERVER_INTERNAL_H
#define STRATA_SERVER_INTERNAL_H

#include <cJSON.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/json_util.h"
#include "runtime/generate.h"
#include "server/scheduler.h"
#include "server/server.h"
#include "store/store.h"
#include "template/template.h"

#define SRV_MAX_ORIGINS 64

struct strata_server {
    struct MHD_Daemon *daemon;
    sched *sched;
    char *models_dir;  /* NULL = the store's default */
    char store_root[4096]; /* kept out of error messages */
    size_t max_body;
    uint64_t max_upload;    /* bytes of one blob upload */
    unsigned http_timeout_s; /* idle or half-sent connections; a client that stops reading */
    unsigned pull_stall_s;   /* a pull with no bytes for this long fails */
    size_t stream_buffer;    /* bytes a stream may buffer for a slow reader */
    uint16_t port;
    atomic_bool stopping;
    atomic_int active_streams;
    /* access.c */
    bool bound_loopback;
    char bound_host[256];
    char *origins[SRV_MAX_ORIGINS];
    int n_origins;
    char *api_key;
};


typedef struct {
    strata_server *srv;
    struct MHD_Connection *conn;
    const char *method, *url;
    const char *body;     /* NUL-terminated */
    size_t body_len;
} srv_request;

/* What a handler answers: a status and a response (MHD takes it over). */
typedef struct {
    unsigned status;
    struct MHD_Response *resp;
    bool stream; /* srv_reply_stream: the body is written while it is sent */
} srv_reply;

srv_reply srv_reply_json(unsigned status, cJSON *obj); /* deletes obj */
srv_reply srv_reply_text(unsigned status, const char *content_type, const char *text);
srv_reply srv_reply_error(unsigned status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* OpenAI's error shape: {"error":{"message","type","param","code"}}. */
srv_reply srv_reply_openai_error(unsigned status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* ---- Access (access.c) -------------------------------------------------------------------- */

void srv_access_init(strata_server *srv, const char *bound_host);
void srv_access_free(strata_server *srv);
/* Host, Origin and API-key checks of a request; false with *deny set (403, 401, or the 204
 * answer of a CORS preflight) when it must not reach a handler. */
bool srv_access_check(const strata_server *srv, struct MHD_Connection *conn, const char *method, srv_reply *deny);
bool srv_origin_allowed(const strata_server *srv, const char *origin);
/* Adds the CORS headers a reply to an allowed Origin carries. */
void srv_access_headers(const strata_server *srv, struct MHD_Connection *conn, struct MHD_Response *resp);

/* The HTTP status for a strata_status (NOT_FOUND 404, INVALID/FORMAT/UNSUPPORTED/NO_FIT 400, else 500). */
unsigned srv_status_http(strata_status st);

/* ---- Streams: a producer thread writes, the connection's content reader sends ---------- */

typedef struct srv_stream srv_stream;
typedef void (*srv_stream_job)(void *job, srv_stream *st);

/* Starts `run(job, stream)` on a new thread and returns a reply whose body is what it writes
 * (chunked). When the client goes away, srv_stream_write returns false and the cancel flag
 * (srv_stream_cancel_flag) is set; `job_free` is called once both sides are done. */
srv_reply srv_reply_stream(strata_server *srv, struct MHD_Connection *conn, const char *content_type,
                           srv_stream_job run, void *job, void (*job_free)(void *job));
bool srv_stream_write(srv_stream *st, const char *data, size_t len);
/* Writes one JSON value and a newline (NDJSON); deletes obj. */
bool srv_stream_json_line(srv_stream *st, cJSON *obj);
/* Writes "data: <json>\n\n" (SSE); deletes obj. */
bool srv_stream_sse(srv_stream *st, cJSON *obj);
atomic_bool *srv_stream_cancel_flag(srv_stream *st);

/* Opens the store (caller closes). */
strata_status srv_store_open(strata_server *srv, strata_store **out);

/* Parses the body as a JSON object; on failure fills *err with a 400 reply. */
cJSON *srv_parse_body(const srv_request *rq, srv_reply *err, bool openai);

/* ---- UTF-8 (utf8.c) ------------------------------------------------------------------------ */

/* Whether text[0..n) is well-formed UTF-8. */
bool srv_utf8_valid(const char *text, size_t n);
/* A malloc'd copy with every malformed sequence replaced by U+FFFD (NUL-terminated; the
 * length in *out_len). NULL when out of memory. */
char *srv_utf8_sanitize(const char *text, size_t n, size_t *out_len);
/* How many bytes at the end of text[0..n) start a character that is not complete yet (0-3). */
size_t srv_utf8_incomplete_tail(const char *text, size_t n);

/* Whether the client of a connection has gone away (closed or reset its socket); for
 * requests answered on the connection's own thread (non-streamed generations). */
bool srv_conn_gone(struct MHD_Connection *conn);

/* Field types a request may give (null is always allowed: the field is absent). */
enum { SRV_T_STRING = 1, SRV_T_BOOL = 2, SRV_T_NUMBER = 4, SRV_T_ARRAY = 8, SRV_T_OBJECT = 16 };
typedef struct {
    const char *key;
    int types; /* SRV_T_* */
} srv_field_type;
/* Checks the top-level fields of body against their allowed types; on a mismatch writes
 * "FIELD must be ..." into msg and returns false (the request is a 400, as Ollama's typed
 * decoding refuses it). */
bool srv_check_types(const cJSON *body, const srv_field_type *fields, size_t n, char *msg, size_t cap);

/* Routes a complete request to its handler (what the HTTP layer does once a body is read;
 * the fuzzer calls it directly). */
srv_reply srv_dispatch(const srv_request *rq);
/* When set (tests, the fuzzer), called with every buffered reply's status and body. */
extern void (*srv_reply_observer)(unsigned status, const char *body, size_t len);

/* ---- Handlers ---------------------------------------------------------------------------- */

srv_reply api_generate(const srv_request *rq);
srv_reply api_chat(const srv_request *rq);
srv_reply api_embed(const srv_request *rq);
srv_reply api_embeddings(const srv_request *rq);
srv_reply api_openai_embeddings(const srv_request *rq);
/* GET /v1/models/{id} (id: what follows the prefix). */
srv_reply api_openai_model(const srv_request *rq, const char *id);
srv_reply api_openai_chat(const srv_request *rq);
srv_reply api_openai_completions(const srv_request *rq);

srv_reply api_tags(const srv_request *rq);
srv_reply api_show(const srv_request *rq);
srv_reply api_ps(const srv_request *rq);
srv_reply api_create(const srv_request *rq);
srv_reply api_copy(const srv_request *rq);
srv_reply api_delete(const srv_request *rq);
srv_reply api_pull(const srv_request *rq);
srv_reply api_version(const srv_request *rq);
srv_reply api_openai_models(const srv_request *rq);
srv_reply api_blob_head(const srv_request *rq, const char *digest);
/* The body of POST /api/blobs/:digest, already written to the file at `path`. */
srv_reply api_blob_upload(const srv_request *rq, const char *digest, const char *path);

/* ---- Capabilities (caps.c) --------------------------------------------------------------- */

typedef struct {
    strata_chat_family family; /* from tokenizer.chat_template */
    bool embedding_only;       /* {arch}.pooling_type is set: an embedding model */
} srv_gguf_traits;

/* What a model file's header says (read once per path, then remembered). */
srv_gguf_traits srv_model_traits(const char *path);
/* The template generation uses: the Modelfile's TEMPLATE, else the built-in one of the
 * detected family (*fam, when not NULL, gets it; UNKNOWN for a TEMPLATE). Static or owned by info. */
const char *srv_model_template(const strata_model_info *info, strata_chat_family *fam);

typedef struct {
    bool completion, embedding, tools, insert, thinking;
    char think_open[64], think_close[64]; /* the reasoning's tags, when thinking */
} srv_caps;

/* The capabilities of a model with the given template (NULL: srv_model_template's). */
void srv_model_caps(const strata_model_info *info, const char *template_src, srv_caps *caps);
/* Appends the capability names to a JSON array, in Ollama's order. */
void srv_caps_json(const srv_caps *caps, cJSON *arr);

/* ---- Thinking (think.c) ------------------------------------------------------------------- */

/* Receives a piece of reasoning (thinking true) or of the answer. false stops. */
typedef bool (*srv_think_out)(void *user, bool thinking, const char *text, size_t len);
typedef struct {
    char open[64], close[64];
    int state;
    bool eat_space;
    char held[64];
    size_t n_held;
} srv_think;
/* started: the prompt ended with the opening tag, so the output begins inside the reasoning. */
void srv_think_init(srv_think *t, const char *open, const char *close, bool started);
/* Feeds generated text; end: no more will come (what was held back is decided). */
bool srv_think_feed(srv_think *t, const char *s, size_t n, bool end, srv_think_out out, void *user);

/* ---- Tool calls (tools.c) ------------------------------------------------------------------ */

/* The text a template writes before a tool call's JSON ("<tool_call>", "[TOOL_CALLS]", "");
 * false when the template writes no tool calls. */
bool srv_tools_prefix(const char *template_src, char *prefix, size_t cap);
/* Whether output so far may still become a tool call. */
bool srv_tools_maybe(const char *text, size_t n, const char *prefix);
/* The calls in output: a new array of {"function": {"index", "name", "arguments": {...}}} of
 * tools named in `tools`, or NULL when the output is not tool calls. */
cJSON *srv_tools_parse(const char *text, size_t n, const char *prefix, const cJSON *tools);

/* ---- Options (options.c) ------------------------------------------------------------------ */

typedef struct {
    sched_load_opts load;
    strata_gen_params gen;
    char *stops[STRATA_MAX_STOP]; /* owned copies behind gen.stop */
} srv_options;

void srv_options_init(srv_options *o);
void srv_options_free(srv_options *o);
/* Applies a Modelfile's parameters (may be NULL). */
strata_status srv_options_apply_modelfile(srv_options *o, const strata_modelfile *mf);
/* Applies a request's "options" object (may be NULL); errors name the option. */
strata_status srv_options_apply_json(srv_options *o, const cJSON *options);
/* Adds one stop string (ignored beyond STRATA_MAX_STOP). */
strata_status srv_options_add_stop(srv_options *o, const char *stop);
void srv_options_clear_stops(srv_options *o);

#endif
