/* The HTTP side: the libmicrohttpd daemon, request bodies, routing, replies and streams.
 *
 * Threading: MHD_USE_THREAD_PER_CONNECTION. A streamed generation answers through a
 * content-reader callback that blocks until the next token is ready; MHD's thread pool
 * multiplexes many connections on each pool thread, so one blocked reader would stall every
 * other connection of its thread (a /api/ps, another model's generation). Suspend/resume
 * avoids that but spreads each stream over resume calls from other threads. One thread per
 * connection lets a reader (and a non-streamed request waiting for its model's turn) simply
 * block; generations run on their own thread (one per streamed request) and hand text to
 * the reader through a small locked buffer (srv_stream). Connections are few (a local
 * runtime), so a thread each is cheap.
 *
 * Cancellation: when a client goes away, MHD fails a send, closes the connection and frees
 * the response; the response's free callback sets the stream's cancel flag, the next emit of
 * the generation returns false, and the engine stops (STRATA_ERR_CANCELLED). */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/env.h"
#include "server/internal.h"

/* ---- Replies ------------------------------------------------------------------------------ */

/* Every JSON text the server sends passes here: well-formed UTF-8 goes out as it is, anything
 * else with U+FFFD for the malformed bytes (a JSON text must be UTF-8; cJSON copies bytes).
 * Takes text (malloc'd) and returns a malloc'd text, or NULL when out of memory. */
static char *utf8_out(char *text) {
    if (!text || srv_utf8_valid(text, strlen(text))) return text;
    char *clean = srv_utf8_sanitize(text, strlen(text), NULL);
    free(text);
    return clean;
}

void (*srv_reply_observer)(unsigned status, const char *body, size_t len);

static srv_reply reply_buffer(unsigned status, const char *content_type, char *data, size_t len) {
    if (srv_reply_observer) srv_reply_observer(status, data, len);
    srv_reply r = {status, MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE), false};
    if (!r.resp) {
        free(data);
        return r;
    }
    MHD_add_response_header(r.resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    return r;
}

srv_reply srv_reply_json(unsigned status, cJSON *obj) {
    char *text = utf8_out(obj ? cJSON_PrintUnformatted(obj) : NULL);
    cJSON_Delete(obj);
    if (!text) return srv_reply_error(500, "out of memory");
    return reply_buffer(status, "application/json; charset=utf-8", text, strlen(text));
}

srv_reply srv_reply_text(unsigned status, const char *content_type, const char *text) {
    char *copy = strdup(text);
    if (!copy) return (srv_reply){500, NULL, false};
    return reply_buffer(status, content_type, copy, strlen(copy));
}

/* The store's folder as the server was started with it: error messages name it
 * "$STRATA_MODELS" instead (a client has no business knowing the server's paths). */
static char scrub_root[4096];
static pthread_mutex_t scrub_mu = PTHREAD_MUTEX_INITIALIZER;

static void scrub_paths(char *msg, size_t cap) {
    pthread_mutex_lock(&scrub_mu);
    size_t rn = strlen(scrub_root);
    for (char *p = rn ? strstr(msg, scrub_root) : NULL; p; p = strstr(p, scrub_root)) {
        static const char repl[] = "$STRATA_MODELS";
        size_t tail = strlen(p + rn);
        if ((size_t)(p - msg) + sizeof repl - 1 + tail + 1 > cap) break;
        memmove(p + sizeof repl - 1, p + rn, tail + 1);
        memcpy(p, repl, sizeof repl - 1);
        p += sizeof repl - 1;
    }
    pthread_mutex_unlock(&scrub_mu);
}

static srv_reply error_v(unsigned status, bool openai, const char *fmt, va_list ap) {
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    scrub_paths(msg, sizeof msg);
    cJSON *o = cJSON_CreateObject();
    if (openai) {
        cJSON *e = cJSON_AddObjectToObject(o, "error");
        cJSON_AddStringToObject(e, "message", msg);
        cJSON_AddStringToObject(e, "type",
                                status >= 500 ? "api_error" : status == 404 ? "not_found_error" : "invalid_request_error");
        cJSON_AddNullToObject(e, "param");
        cJSON_AddNullToObject(e, "code");
    } else {
        cJSON_AddStringToObject(o, "error", msg);
    }
    char *text = utf8_out(cJSON_PrintUnformatted(o));
    cJSON_Delete(o);
    if (!text) return (srv_reply){500, NULL, false};
    return reply_buffer(status, "application/json; charset=utf-8", text, strlen(text));
}

srv_reply srv_reply_error(unsigned status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    srv_reply r = error_v(status, false, fmt, ap);
    va_end(ap);
    return r;
}

srv_reply srv_reply_openai_error(unsigned status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    srv_reply r = error_v(status, true, fmt, ap);
    va_end(ap);
    return r;
}

unsigned srv_status_http(strata_status st) {
    switch (st) {
    case STRATA_ERR_NOT_FOUND: return 404;
    case STRATA_ERR_INVALID:
    case STRATA_ERR_FORMAT:
    case STRATA_ERR_UNSUPPORTED:
    case STRATA_ERR_NO_FIT: return 400;
    default: return 500;
    }
}

/* Whether a JSON text holds a NUL character (raw, or escaped as \u0000 outside an escaped
 * backslash): cJSON's strings end at a NUL, so such a string would be cut silently (a model
 * name "a\u0000b" would name "a"). */
static bool has_nul(const char *text, size_t n) {
    if (memchr(text, 0, n)) return true;
    for (size_t i = 0; i + 5 < n; i++) {
        if (text[i] != '\\') continue;
        if (text[i + 1] == 'u' && text[i + 2] == '0' && text[i + 3] == '0' && text[i + 4] == '0' && text[i + 5] == '0')
            return true;
        i++; /* skip the escaped character (an escaped backslash too) */
    }
    return false;
}

cJSON *srv_parse_body(const srv_request *rq, srv_reply *err, bool openai) {
    const char *end = NULL;
    if (rq->body_len && has_nul(rq->body, rq->body_len)) {
        *err = openai ? srv_reply_openai_error(400, "invalid request: strings must not contain NUL characters")
                      : srv_reply_error(400, "invalid request: strings must not contain NUL characters");
        return NULL;
    }
    cJSON *j = rq->body_len ? cJSON_ParseWithLengthOpts(rq->body, rq->body_len, &end, false) : NULL;
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        if (openai) *err = srv_reply_openai_error(400, "invalid JSON in request body");
        else *err = srv_reply_error(400, rq->body_len ? "invalid JSON in request body" : "missing request body");
        return NULL;
    }
    /* Trailing non-space text after the object is malformed too. */
    while (end && end < rq->body + rq->body_len && (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
        end++;
    if (end && end < rq->body + rq->body_len) {
        cJSON_Delete(j);
        *err = openai ? srv_reply_openai_error(400, "invalid JSON in request body: trailing data")
                      : srv_reply_error(400, "invalid JSON in request body: trailing data");
        return NULL;
    }
    return j;
}

bool srv_check_types(const cJSON *body, const srv_field_type *fields, size_t n, char *msg, size_t cap) {
    static const struct {
        int bit;
        const char *name;
    } names[] = {{SRV_T_STRING, "a string"}, {SRV_T_BOOL, "true or false"}, {SRV_T_NUMBER, "a number"},
                 {SRV_T_ARRAY, "an array"}, {SRV_T_OBJECT, "an object"}};
    for (size_t i = 0; i < n; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, fields[i].key);
        if (!v || cJSON_IsNull(v)) continue;
        int t = fields[i].types;
        if (((t & SRV_T_STRING) && cJSON_IsString(v)) || ((t & SRV_T_BOOL) && cJSON_IsBool(v)) ||
            ((t & SRV_T_NUMBER) && cJSON_IsNumber(v)) || ((t & SRV_T_ARRAY) && cJSON_IsArray(v)) ||
            ((t & SRV_T_OBJECT) && cJSON_IsObject(v)))
            continue;
        size_t w = (size_t)snprintf(msg, cap, "%s must be ", fields[i].key);
        bool first = true;
        for (size_t k = 0; k < sizeof names / sizeof names[0] && w < cap; k++) {
            if (!(t & names[k].bit)) continue;
            w += (size_t)snprintf(msg + w, cap - w, "%s%s", first ? "" : " or ", names[k].name);
            first = false;
        }
        return false;
    }
    return true;
}

strata_status srv_store_open(strata_server *srv, strata_store **out) {
    return strata_store_open(srv->models_dir, out);
}

bool srv_conn_gone(struct MHD_Connection *conn) {
    const union MHD_ConnectionInfo *ci = conn ? MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD) : NULL;
    if (!ci) return false;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLHUP | POLLERR | POLLRDHUP | POLLNVAL)) return true;
    if (p.revents & POLLIN) { /* readable: a pipelined request, or the end of the stream */
        char c;
        ssize_t r = recv(ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
    }
    return false;
}

/* ---- Streams ------------------------------------------------------------------------------ */

struct srv_stream {
    pthread_mutex_t mu;
    pthread_cond_t cond; /* data written, data read, finished or cancelled */
    char *buf;
    size_t len, off, cap;
    bool finished;
    atomic_bool cancel;
    int refs;
    int fd; /* the client's socket: shut down when the client stops reading */
    strata_server *srv;
    srv_stream_job run;
    void *job;
    void (*job_free)(void *);
};

static void stream_unref(srv_stream *st) {
    pthread_mutex_lock(&st->mu);
    int left = --st->refs;
    pthread_mutex_unlock(&st->mu);
    if (left) return;
    if (st->job_free) st->job_free(st->job);
    pthread_cond_destroy(&st->cond);
    pthread_mutex_destroy(&st->mu);
    free(st->buf);
    free(st);
}

/* Appends to the stream. The buffer is bounded (srv->stream_buffer): while a client does not
 * read, the producer waits (generation pauses); a client that reads nothing for
 * srv->http_timeout_s seconds is dropped (its socket shut down) and the request cancelled. */
bool srv_stream_write(srv_stream *st, const char *data, size_t len) {
    strata_server *srv = st->srv;
    if (atomic_load(&st->cancel) || atomic_load(&srv->stopping)) return false;
    pthread_mutex_lock(&st->mu);
    int64_t waited_since = 0;
    while (st->len - st->off + len > srv->stream_buffer && st->len > st->off) {
        if (atomic_load(&st->cancel) || atomic_load(&srv->stopping)) {
            pthread_mutex_unlock(&st->mu);
            return false;
        }
        int64_t now = strata_now_ns();
        if (!waited_since) waited_since = now;
        if (now - waited_since > (int64_t)srv->http_timeout_s * 1000000000LL) {
            atomic_store(&st->cancel, true);
            fprintf(stderr, "strata: client stopped reading for %u s with %zu bytes pending; cancelling its request\n",
                    srv->http_timeout_s, st->len - st->off);
            if (st->fd >= 0) shutdown(st->fd, SHUT_RDWR); /* wakes the connection's thread */
            pthread_mutex_unlock(&st->mu);
            return false;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&st->cond, &st->mu, &ts);
    }
    if (st->off > 0) { /* what was sent goes */
        memmove(st->buf, st->buf + st->off, st->len - st->off);
        st->len -= st->off;
        st->off = 0;
    }
    if (st->len + len > st->cap) {
        size_t cap = st->cap ? st->cap : 4096;
        while (cap < st->len + len) cap *= 2;
        char *nb = realloc(st->buf, cap);
        if (!nb) {
            pthread_mutex_unlock(&st->mu);
            return false;
        }
        st->buf = nb;
        st->cap = cap;
    }
    memcpy(st->buf + st->len, data, len);
    st->len += len;
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->mu);
    return true;
}

bool srv_stream_json_line(srv_stream *st, cJSON *obj) {
    char *text = utf8_out(obj ? cJSON_PrintUnformatted(obj) : NULL);
    cJSON_Delete(obj);
    if (!text) return false;
    size_t n = strlen(text);
    char *line = realloc(text, n + 2);
    if (!line) {
        free(text);
        return false;
    }
    line[n] = '\n';
    line[n + 1] = 0;
    bool ok = srv_stream_write(st, line, n + 1);
    free(line);
    return ok;
}

bool srv_stream_sse(srv_stream *st, cJSON *obj) {
    char *text = utf8_out(obj ? cJSON_PrintUnformatted(obj) : NULL);
    cJSON_Delete(obj);
    if (!text) return false;
    size_t n = strlen(text);
    char *ev = malloc(n + 9);
    if (!ev) {
        free(text);
        return false;
    }
    memcpy(ev, "data: ", 6);
    memcpy(ev + 6, text, n);
    memcpy(ev + 6 + n, "\n\n", 3);
    bool ok = srv_stream_write(st, ev, n + 8);
    free(ev);
    free(text);
    return ok;
}

atomic_bool *srv_stream_cancel_flag(srv_stream *st) { return &st->cancel; }

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    srv_stream *st = cls;
    pthread_mutex_lock(&st->mu);
    while (st->off == st->len && !st->finished) pthread_cond_wait(&st->cond, &st->mu);
    if (st->off < st->len) {
        size_t n = st->len - st->off;
        if (n > max) n = max;
        memcpy(buf, st->buf + st->off, n);
        st->off += n;
        pthread_cond_broadcast(&st->cond); /* room for a waiting producer */
        pthread_mutex_unlock(&st->mu);
        return (ssize_t)n;
    }
    pthread_mutex_unlock(&st->mu);
    return MHD_CONTENT_READER_END_OF_STREAM;
}

/* MHD is done with the response: sent whole, or the client went away. */
static void stream_reader_free(void *cls) {
    srv_stream *st = cls;
    pthread_mutex_lock(&st->mu);
    bool early = !st->finished;
    st->fd = -1; /* the socket is MHD's to close now */
    if (early) atomic_store(&st->cancel, true);
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->mu);
    if (early) fprintf(stderr, "strata: client disconnected; cancelling its request\n");
    stream_unref(st);
}

static void *stream_thread(void *arg) {
    srv_stream *st = arg;
    strata_server *srv = st->srv;
    st->run(st->job, st);
    pthread_mutex_lock(&st->mu);
    st->finished = true;
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->mu);
    stream_unref(st);
    atomic_fetch_sub(&srv->active_streams, 1); /* last: strata_server_stop waits for this */
    return NULL;
}

srv_reply srv_reply_stream(strata_server *srv, struct MHD_Connection *conn, const char *content_type,
                           srv_stream_job run, void *job, void (*job_free)(void *job)) {
    srv_stream *st = calloc(1, sizeof *st);
    if (!st) {
        if (job_free) job_free(job);
        return srv_reply_error(500, "out of memory");
    }
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cond, NULL);
    st->srv = srv;
    st->run = run;
    st->job = job;
    st->job_free = job_free;
    st->refs = 2; /* the producer thread and the response */
    const union MHD_ConnectionInfo *ci = conn ? MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD) : NULL;
    st->fd = ci ? ci->connect_fd : -1;
    /* What a client that stops reading can make us hold is this stream's buffer plus the
     * kernel's send buffer, which would otherwise grow to megabytes: a token stream needs
     * little of it. */
    if (st->fd >= 0) {
        int sndbuf = (int)STRATA_SERVER_SOCKET_SNDBUF;
        setsockopt(st->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    }
    atomic_init(&st->cancel, false);
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_reader, st,
                                                                  stream_reader_free);
    if (!resp) {
        st->refs = 1;
        stream_unref(st);
        return srv_reply_error(500, "out of memory");
    }
    atomic_fetch_add(&srv->active_streams, 1);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (strncmp(content_type, "text/event-stream", 17) == 0) MHD_add_response_header(resp, "Cache-Control", "no-cache");
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &attr, stream_thread, st) != 0) {
        pthread_attr_destroy(&attr);
        pthread_mutex_lock(&st->mu);
        st->finished = true;
        st->refs--; /* the thread's reference */
        pthread_mutex_unlock(&st->mu);
        atomic_fetch_sub(&srv->active_streams, 1);
        MHD_destroy_response(resp); /* frees st through the response's callback */
        return srv_reply_error(500, "cannot start a thread");
    }
    pthread_attr_destroy(&attr);
    return (srv_reply){200, resp, true};
}

/* ---- Routing ------------------------------------------------------------------------------ */

typedef srv_reply (*handler_fn)(const srv_request *rq);

typedef struct {
    const char *method;
    const char *path;
    handler_fn fn;
} route;

static srv_reply api_root(const srv_request *rq) {
    (void)rq;
    return srv_reply_text(200, "text/plain; charset=utf-8", "Ollama is running");
}

static const route routes[] = {
    {"GET", "/", api_root},
    {"GET", "/api/version", api_version},
    {"POST", "/api/generate", api_generate},
    {"POST", "/api/chat", api_chat},
    {"POST", "/api/embed", api_embed},
    {"POST", "/api/embeddings", api_embeddings},
    {"GET", "/api/tags", api_tags},
    {"POST", "/api/show", api_show},
    {"GET", "/api/ps", api_ps},
    {"POST", "/api/create", api_create},
    {"POST", "/api/copy", api_copy},
    {"DELETE", "/api/delete", api_delete},
    {"POST", "/api/pull", api_pull},
    {"POST", "/v1/chat/completions", api_openai_chat},
    {"POST", "/v1/completions", api_openai_completions},
    {"GET", "/v1/models", api_openai_models},
    {"POST", "/v1/embeddings", api_openai_embeddings},
};

srv_reply srv_dispatch(const srv_request *rq) {
    const char *method = strcmp(rq->method, "HEAD") == 0 ? "GET" : rq->method;
    bool path_known = false;
    /* /api/blobs/sha256:<hex>: HEAD (exists?) and POST (upload). */
    if (strncmp(rq->url, "/api/blobs/", 11) == 0) {
        const char *digest = rq->url + 11;
        if (strcmp(rq->method, "HEAD") == 0) return api_blob_head(rq, digest);
        return srv_reply_error(405, "method %s not allowed on %s", rq->method, rq->url);
    }
    /* /v1/models/{id}: one model (ids hold ':' and '/', so everything after the prefix). */
    if (strncmp(rq->url, "/v1/models/", 11) == 0 && rq->url[11]) {
        if (strcmp(method, "GET") == 0) return api_openai_model(rq, rq->url + 11);
        return srv_reply_openai_error(405, "method %s not allowed on %s", rq->method, rq->url);
    }
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (strcmp(routes[i].path, rq->url) != 0) continue;
        path_known = true;
        if (strcmp(routes[i].method, method) == 0) return routes[i].fn(rq);
    }
    /* Ollama also answers HEAD on /api/version and GET on the old /api/delete body-less forms. */
    if (path_known) return srv_reply_error(405, "method %s not allowed on %s", rq->method, rq->url);
    return srv_reply_error(404, "404 page not found: %s %s", rq->method, rq->url);
}

/* ---- MHD callbacks ----------------------------------------------------------------------- */

typedef struct {
    char *body;
    size_t len, cap;
    bool too_large;
    bool replied;
    /* POST /api/blobs/:digest: the body goes to a temporary file in the store's blob folder
     * (owned by this process), at most srv->max_upload bytes, then is adopted if its digest
     * matches (GGUFs exceed any body limit). */
    int upload_fd;
    char upload_path[4200];
    uint64_t upload_len;
    bool upload_failed;
} conn_state;

static enum MHD_Result queue(strata_server *srv, struct MHD_Connection *conn, srv_reply r) {
    if (!r.resp) return MHD_NO; /* out of memory: MHD closes the connection */
    srv_access_headers(srv, conn, r.resp);
    enum MHD_Result ok = MHD_queue_response(conn, r.status, r.resp);
    MHD_destroy_response(r.resp);
    return ok;
}

/* Connection timeouts: a connection idle, or sending its request, for srv->http_timeout_s
 * is closed. While a handler works (a long generation, a create) no timeout applies; a
 * streamed reply has the stream's own stall rule (srv_stream_write). */
static void conn_timeout(struct MHD_Connection *conn, unsigned seconds) {
    MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, seconds);
}

static bool write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static void upload_discard(conn_state *c) {
    if (c->upload_fd >= 0) close(c->upload_fd);
    c->upload_fd = -1;
    if (c->upload_path[0]) unlink(c->upload_path);
    c->upload_path[0] = 0;
}

static enum MHD_Result upload_start(strata_server *srv, struct MHD_Connection *conn, conn_state *c) {
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > srv->max_upload) {
        c->replied = true;
        return queue(srv, conn,
                     srv_reply_error(413, "blob too large (limit %llu bytes, STRATA_MAX_UPLOAD)",
                                     (unsigned long long)srv->max_upload));
    }
    strata_store *store = NULL;
    if (srv_store_open(srv, &store) == STRATA_OK)
        c->upload_fd = strata_store_temp_open(store, c->upload_path, sizeof c->upload_path);
    strata_store_close(store);
    if (c->upload_fd < 0) {
        c->upload_path[0] = 0;
        c->replied = true;
        return queue(srv, conn, srv_reply_error(500, "cannot create a temporary file for the upload"));
    }
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    (void)version;
    strata_server *srv = cls;
    conn_state *c = *con_cls;
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c) return MHD_NO;
        c->upload_fd = -1;
        *con_cls = c;
        srv_reply deny;
        if (!srv_access_check(srv, conn, method, &deny)) {
            c->replied = true;
            return queue(srv, conn, deny);
        }
        if (strcmp(method, "POST") == 0 && strncmp(url, "/api/blobs/", 11) == 0) return upload_start(srv, conn, c);
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > srv->max_body) {
            /* Refused before reading it; MHD closes the connection after the reply. */
            c->replied = true;
            return queue(srv, conn, srv_reply_error(413, "request body too large (limit %zu bytes)", srv->max_body));
        }
        return MHD_YES;
    }
    if (*upload_data_size && c->upload_fd >= 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        c->upload_len += n;
        if (c->upload_len > srv->max_upload) {
            /* Past the limit without a Content-Length that said so: drop the connection. */
            fprintf(stderr, "strata: blob upload over %llu bytes (STRATA_MAX_UPLOAD); closing the connection\n",
                    (unsigned long long)srv->max_upload);
            upload_discard(c);
            return MHD_NO;
        }
        if (!c->upload_failed && !write_all(c->upload_fd, upload_data, n)) c->upload_failed = true;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!c->replied && !c->too_large) {
            size_t n = *upload_data_size;
            if (c->len + n > srv->max_body) {
                c->too_large = true;
                free(c->body);
                c->body = NULL;
                c->len = c->cap = 0;
            } else {
                if (c->len + n + 1 > c->cap) {
                    size_t cap = c->cap ? c->cap : 4096;
                    while (cap < c->len + n + 1) cap *= 2;
                    char *nb = realloc(c->body, cap);
                    if (!nb) return MHD_NO;
                    c->body = nb;
                    c->cap = cap;
                }
                memcpy(c->body + c->len, upload_data, n);
                c->len += n;
                c->body[c->len] = 0;
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (c->replied) return MHD_YES;
    c->replied = true;
    if (c->too_large) return queue(srv, conn, srv_reply_error(413, "request body too large (limit %zu bytes)", srv->max_body));
    srv_request rq = {.srv = srv, .conn = conn, .method = method, .url = url, .body = c->body ? c->body : "",
                      .body_len = c->len};
    conn_timeout(conn, 0); /* the handler may work for long */
    srv_reply reply;
    if (c->upload_fd >= 0) {
        bool ok = !c->upload_failed && fsync(c->upload_fd) == 0;
        ok = close(c->upload_fd) == 0 && ok;
        c->upload_fd = -1;
        reply = ok ? api_blob_upload(&rq, url + 11, c->upload_path) : srv_reply_error(500, "cannot write the upload");
        upload_discard(c); /* adopted (renamed away) or refused */
    } else {
        reply = srv_dispatch(&rq);
    }
    /* A non-streamed reply has its timeout again (a client that does not read it is dropped);
     * a stream is watched by srv_stream_write. Setting it restarts the clock. */
    if (!reply.stream) conn_timeout(conn, srv->http_timeout_s);
    return queue(srv, conn, reply);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe) {
    strata_server *srv = cls;
    (void)toe;
    conn_state *c = *con_cls;
    /* Between requests on a kept-alive connection: idle connections time out. */
    if (conn && !atomic_load(&srv->stopping)) conn_timeout(conn, srv->http_timeout_s);
    if (!c) return;
    upload_discard(c);
    free(c->body);
    free(c);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = 0;
    fprintf(stderr, "strata: http: %s\n", msg);
}

/* ---- Configuration and lifetime ----------------------------------------------------------- */

strata_status strata_server_parse_host(const char *text, char *host, size_t cap, uint16_t *port) {
    snprintf(host, cap, "%s", STRATA_SERVER_DEFAULT_HOST);
    *port = STRATA_SERVER_DEFAULT_PORT;
    if (!text || !*text) return STRATA_OK;
    const char *s = text;
    if (strncmp(s, "http://", 7) == 0) s += 7;
    else if (strncmp(s, "https://", 8) == 0) s += 8;
    char buf[300];
    snprintf(buf, sizeof buf, "%s", s);
    size_t n = strlen(buf);
    while (n && buf[n - 1] == '/') buf[--n] = 0;
    const char *port_text = NULL;
    char *h = buf;
    if (buf[0] == '[') {
        char *close = strchr(buf, ']');
        if (!close) return strata_fail(STRATA_ERR_INVALID, "STRATA_HOST '%s': missing ']'", text);
        *close = 0;
        h = buf + 1;
        if (close[1] == ':') port_text = close + 2;
        else if (close[1]) return strata_fail(STRATA_ERR_INVALID, "STRATA_HOST '%s': junk after ']'", text);
    } else {
        char *colon = strrchr(buf, ':');
        bool all_digits = true;
        for (const char *p = buf; *p; p++)
            if (*p < '0' || *p > '9') all_digits = false;
        if (all_digits && buf[0]) { /* a port alone */
            port_text = buf;
            h = NULL;
        } else if (colon && strchr(buf, ':') == colon) {
            *colon = 0;
            port_text = colon + 1;
        }
    }
    if (h && *h) snprintf(host, cap, "%s", h);
    if (port_text) {
        char *end = NULL;
        errno = 0;
        long p = strtol(port_text, &end, 10);
        if (!*port_text || *end || errno || p < 0 || p > 65535)
            return strata_fail(STRATA_ERR_INVALID, "STRATA_HOST '%s': bad port '%s'", text, port_text);
        *port = (uint16_t)p;
    }
    return STRATA_OK;
}

strata_status strata_server_config_default(strata_server_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    return strata_server_parse_host(strata_getenv("STRATA_HOST"), cfg->host, sizeof cfg->host, &cfg->port);
}

/* A positive number from the environment (with K, M, G or T binary suffixes when `size`),
 * or def when unset or unreadable. */
static uint64_t env_u64(const char *name, uint64_t def, bool size) {
    const char *v = getenv(name);
    if (!v || !*v) return def;
    char *end = NULL;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || !(x > 0) || x > 1.8e19) goto bad;
    if (size && *end) {
        const char *u = "KMGT";
        const char *k = strchr(u, *end & ~0x20);
        if (!k) goto bad;
        for (const char *q = u; q <= k; q++) x *= 1024;
        end++;
        if (*end == 'i' || *end == 'I') end++;
        if (*end == 'B' || *end == 'b') end++;
    }
    if (*end || x > 1.8e19) goto bad;
    return (uint64_t)x;
bad:
    fprintf(stderr, "strata: ignoring %s='%s' (not a positive %s)\n", name, v, size ? "size" : "number");
    return def;
}

strata_status strata_server_start(const strata_server_config *cfg, strata_server **out) {
    *out = NULL;
    strata_server *srv = calloc(1, sizeof *srv);
    if (!srv) return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    atomic_init(&srv->stopping, false);
    atomic_init(&srv->active_streams, 0);
    srv->max_body = cfg->max_body ? cfg->max_body : STRATA_SERVER_MAX_BODY;
    if (cfg->models_dir && !(srv->models_dir = strdup(cfg->models_dir))) {
        free(srv);
        return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    }
    srv->max_upload = cfg->max_upload ? cfg->max_upload : env_u64("STRATA_MAX_UPLOAD", STRATA_SERVER_MAX_UPLOAD, true);
    srv->http_timeout_s = cfg->http_timeout_s
                              ? cfg->http_timeout_s
                              : (unsigned)env_u64("STRATA_HTTP_TIMEOUT", STRATA_SERVER_HTTP_TIMEOUT_S, false);
    srv->pull_stall_s = cfg->pull_stall_s
                            ? cfg->pull_stall_s
                            : (unsigned)env_u64("STRATA_PULL_STALL_TIMEOUT", STRATA_SERVER_PULL_STALL_S, false);
    if (!srv->http_timeout_s) srv->http_timeout_s = STRATA_SERVER_HTTP_TIMEOUT_S;
    if (!srv->pull_stall_s) srv->pull_stall_s = STRATA_SERVER_PULL_STALL_S;
    srv->stream_buffer = STRATA_SERVER_STREAM_BUFFER;
    /* The store must be usable before we accept requests. */
    strata_store *store = NULL;
    strata_status st = srv_store_open(srv, &store);
    if (st == STRATA_OK) {
        pthread_mutex_lock(&scrub_mu);
        snprintf(scrub_root, sizeof scrub_root, "%s", strata_store_root(store));
        snprintf(srv->store_root, sizeof srv->store_root, "%s", strata_store_root(store));
        pthread_mutex_unlock(&scrub_mu);
    }
    strata_store_close(store);
    backend_inventory *inv = NULL;
    if (st == STRATA_OK) {
        const char *spec = cfg->devices ? cfg->devices : getenv("STRATA_DEVICES");
        st = backend_inventory_from_spec(spec, &inv);
        const char *why = st == STRATA_OK && !(spec && *spec) ? backend_cuda_unavailable_reason() : NULL;
        if (why) fprintf(stderr, "strata: no CUDA device, models run on the CPU: %s\n", why);
    }
    int max_loaded = cfg->max_loaded;
    if (max_loaded <= 0) {
        const char *env = strata_getenv("STRATA_MAX_LOADED_MODELS");
        max_loaded = env && *env ? atoi(env) : 3;
        if (max_loaded <= 0) max_loaded = 3;
    }
    if (st == STRATA_OK) st = sched_new(inv, max_loaded, &srv->sched);
    if (st != STRATA_OK) {
        free(srv->models_dir);
        free(srv);
        return st;
    }

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%u", cfg->port);
    int gai = getaddrinfo(cfg->host, port, &hints, &ai);
    if (gai != 0 || !ai) {
        sched_free(srv->sched);
        free(srv->models_dir);
        free(srv);
        return strata_fail(STRATA_ERR_INVALID, "cannot resolve host '%s': %s", cfg->host, gai_strerror(gai));
    }
    srv_access_init(srv, cfg->host);
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    srv->daemon = MHD_start_daemon(flags, cfg->port, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
                                   NULL, MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
                                   srv, MHD_OPTION_CONNECTION_TIMEOUT, srv->http_timeout_s,
                                   MHD_OPTION_CONNECTION_LIMIT, (unsigned)STRATA_SERVER_MAX_CONNECTIONS, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!srv->daemon) {
        int e = errno;
        srv_access_free(srv);
        sched_free(srv->sched);
        free(srv->models_dir);
        free(srv);
        return strata_fail(STRATA_ERR_IO, "cannot listen on %s:%u: %s", cfg->host, cfg->port,
                           e ? strerror(e) : "libmicrohttpd refused to start");
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info && info->port ? info->port : cfg->port;
    *out = srv;
    return STRATA_OK;
}

uint16_t strata_server_port(const strata_server *s) { return s->port; }

void strata_server_stop(strata_server *s) {
    if (!s) return;
    atomic_store(&s->stopping, true);
    sched_shutdown(s->sched); /* holders are cancelled, waiters leave their queues */
    MHD_stop_daemon(s->daemon);
    /* Generations whose client left are still finishing (they see `stopping` at their next
     * token); the scheduler must outlive them. */
    while (atomic_load(&s->active_streams) > 0) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    sched_free(s->sched);
    srv_access_free(s);
    free(s->models_dir);
    free(s);
}
