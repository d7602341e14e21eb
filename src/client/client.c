/* The HTTP client; see client.h. */
#include "core/env.h"
#include "client/client.h"

#include <cJSON.h>
#include <curl/curl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct strata_client {
    CURL *curl;
    char host[300];     /* host:port, as shown in messages */
    char base[320];     /* scheme://host:port */
    long http_status;
    strata_client_tick_fn tick;
    void *tick_user;
};

/* One request's state, shared with libcurl's callbacks. */
typedef struct {
    strata_client *c;
    char *buf; /* the answer (whole, or the unfinished line of a stream) */
    size_t len, cap;
    bool streaming;
    strata_client_line_fn fn;
    void *user;
    bool cancelled;     /* a callback said stop */
    bool failed;        /* a stream line held an error (message recorded) or did not parse */
    strata_status fail_status;
} request;

static bool curl_ready;

strata_status strata_client_open(const char *host, strata_client **out) {
    *out = NULL;
    if (!host || !*host) host = strata_getenv("STRATA_HOST");
    if (!host || !*host) host = "127.0.0.1";
    const char *scheme = "http";
    if (strncmp(host, "http://", 7) == 0) {
        host += 7;
    } else if (strncmp(host, "https://", 8) == 0) {
        host += 8;
        scheme = "https";
    }
    size_t n = strcspn(host, "/"); /* a trailing path is ignored, as Ollama does */
    if (n >= 256) return strata_fail(STRATA_ERR_INVALID, "server address '%s' is too long", host);
    char h[260];
    memcpy(h, host, n);
    h[n] = 0;
    /* Split host and port; "[::1]:port" keeps its brackets for the URL. */
    const char *port = NULL;
    char *colon = NULL;
    if (h[0] && strspn(h, "0123456789") == strlen(h)) {
        /* A port alone, as the server reads it. */
        memmove(h + 1, h, strlen(h) + 1);
        h[0] = ':';
    }
    if (h[0] == '[') {
        char *close = strchr(h, ']');
        if (!close) return strata_fail(STRATA_ERR_INVALID, "server address '%s': unclosed '['", host);
        if (close[1] == ':') colon = close + 1;
    } else {
        colon = strchr(h, ':');
        if (colon && strchr(colon + 1, ':')) colon = NULL; /* a bare IPv6 address */
    }
    if (colon) {
        *colon = 0;
        port = colon + 1;
        char *end = NULL;
        long p = strtol(port, &end, 10);
        if (!*port || *end || p <= 0 || p > 65535)
            return strata_fail(STRATA_ERR_INVALID, "server address '%s': bad port '%s'", host, port);
    }
    char portbuf[16];
    if (!port || !*port) {
        snprintf(portbuf, sizeof portbuf, "%d", STRATA_DEFAULT_PORT);
        port = portbuf;
    }
    const char *hostname = h[0] ? h : "127.0.0.1";
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return strata_fail(STRATA_ERR_IO, "cannot initialise libcurl");
        curl_ready = true;
    }
    strata_client *c = calloc(1, sizeof *c);
    if (!c) return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    c->curl = curl_easy_init();
    if (!c->curl) {
        free(c);
        return strata_fail(STRATA_ERR_NOMEM, "cannot create a libcurl handle");
    }
    snprintf(c->host, sizeof c->host, "%s:%s", hostname, port);
    snprintf(c->base, sizeof c->base, "%s://%s", scheme, c->host);
    *out = c;
    return STRATA_OK;
}

void strata_client_free(strata_client *c) {
    if (!c) return;
    curl_easy_cleanup(c->curl);
    free(c);
}

const char *strata_client_host(const strata_client *c) { return c->host; }
long strata_client_http_status(const strata_client *c) { return c->http_status; }

void strata_client_set_tick(strata_client *c, strata_client_tick_fn fn, void *user) {
    c->tick = fn;
    c->tick_user = user;
}

static bool append(request *r, const char *data, size_t n) {
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + n + 1) cap *= 2;
        char *nb = realloc(r->buf, cap);
        if (!nb) return false;
        r->buf = nb;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, data, n);
    r->len += n;
    r->buf[r->len] = 0;
    return true;
}

static strata_status status_for_http(long code) {
    if (code == 404) return STRATA_ERR_NOT_FOUND;
    if (code >= 400 && code < 500) return STRATA_ERR_INVALID;
    return STRATA_ERR_IO;
}

/* Hands one complete line of a stream to the caller. Returns false to stop the transfer. */
static bool deliver_line(request *r, const char *line, size_t n) {
    while (n && (line[n - 1] == '\r' || line[n - 1] == ' ')) n--;
    if (n == 0) return true;
    cJSON *obj = cJSON_ParseWithLength(line, n);
    if (!obj) {
        r->failed = true;
        r->fail_status = strata_fail(STRATA_ERR_FORMAT, "the server sent a line that is not JSON: %.*s",
                                     (int)(n > 200 ? 200 : n), line);
        return false;
    }
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(obj, "error");
    if (cJSON_IsString(err)) {
        r->failed = true;
        r->fail_status = strata_fail(STRATA_ERR_IO, "%s", err->valuestring);
        cJSON_Delete(obj);
        return false;
    }
    bool go = r->fn(r->user, obj);
    cJSON_Delete(obj);
    if (!go) r->cancelled = true;
    return go;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *user) {
    request *r = user;
    size_t n = size * nmemb;
    if (!append(r, data, n)) {
        r->failed = true;
        r->fail_status = strata_fail(STRATA_ERR_NOMEM, "out of memory reading the server's answer");
        return 0;
    }
    if (!r->streaming) return n;
    long code = 0;
    curl_easy_getinfo(r->c->curl, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 300) return n; /* an error answer: read it whole */
    size_t start = 0;
    for (size_t i = 0; i < r->len; i++) {
        if (r->buf[i] != '\n') continue;
        if (!deliver_line(r, r->buf + start, i - start)) return 0;
        start = i + 1;
    }
    memmove(r->buf, r->buf + start, r->len - start);
    r->len -= start;
    r->buf[r->len] = 0;
    return n;
}

static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    request *r = user;
    if (r->c->tick && !r->c->tick(r->c->tick_user)) {
        r->cancelled = true;
        return 1;
    }
    return 0;
}

/* The message of an error answer: its "error" field verbatim, else the status and body. */
static strata_status fail_from_answer(request *r, const char *method, const char *path, long code) {
    strata_status st = status_for_http(code);
    cJSON *obj = r->len ? cJSON_ParseWithLength(r->buf, r->len) : NULL;
    const cJSON *err = obj ? cJSON_GetObjectItemCaseSensitive(obj, "error") : NULL;
    if (cJSON_IsString(err)) {
        strata_fail(st, "%s", err->valuestring);
    } else {
        size_t n = r->len;
        while (n && (r->buf[n - 1] == '\n' || r->buf[n - 1] == '\r')) n--;
        strata_fail(st, "%s %s: HTTP %ld%s%.*s", method, path, code, n ? ": " : "", (int)(n > 200 ? 200 : n),
                    r->buf ? r->buf : "");
    }
    cJSON_Delete(obj);
    return st;
}

static strata_status perform(strata_client *c, const char *method, const char *path, const cJSON *body, request *r) {
    CURL *h = c->curl;
    c->http_status = 0;
    char *text = NULL;
    if (body) {
        text = cJSON_PrintUnformatted(body);
        if (!text) return strata_fail(STRATA_ERR_NOMEM, "out of memory formatting the request");
    }
    char url[1024];
    if ((size_t)snprintf(url, sizeof url, "%s%s", c->base, path) >= sizeof url) {
        free(text);
        return strata_fail(STRATA_ERR_INVALID, "request path too long: %s", path);
    }
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "localhost,127.0.0.1,::1");
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "strata-client");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, r);
    struct curl_slist *headers = NULL;
    headers = curl_slist_append(headers, "Accept: application/x-ndjson, application/json");
    /* A server started with STRATA_API_KEY wants it as a bearer token. */
    const char *key = getenv("STRATA_API_KEY");
    if (key && *key) {
        char auth[1024];
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
        headers = curl_slist_append(headers, auth);
    }
    if (text) {
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, text);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(text));
    }
    if (strcmp(method, "GET") == 0 && !text) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "POST") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    } else if (!text) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);

    CURLcode cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &c->http_status);
    curl_slist_free_all(headers);
    free(text);

    if (r->failed) return r->fail_status;
    if (r->cancelled) return strata_fail(STRATA_ERR_CANCELLED, "cancelled");
    if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST)
        return strata_fail(STRATA_ERR_IO, "could not connect to the strata server at %s (is `strata serve` running?)",
                           c->host);
    if (cc != CURLE_OK) return strata_fail(STRATA_ERR_IO, "%s %s at %s: %s", method, path, c->host, curl_easy_strerror(cc));
    if (c->http_status >= 300) return fail_from_answer(r, method, path, c->http_status);
    return STRATA_OK;
}

strata_status strata_client_call(strata_client *c, const char *method, const char *path, const cJSON *body,
                                 cJSON **out) {
    if (out) *out = NULL;
    request r = {.c = c};
    strata_status st = perform(c, method, path, body, &r);
    if (st == STRATA_OK && r.len) {
        cJSON *obj = cJSON_ParseWithLength(r.buf, r.len);
        if (!obj) {
            st = strata_fail(STRATA_ERR_FORMAT, "%s %s: the server's answer is not JSON: %.*s", method, path,
                             (int)(r.len > 200 ? 200 : r.len), r.buf);
        } else {
            const cJSON *err = cJSON_GetObjectItemCaseSensitive(obj, "error");
            if (cJSON_IsString(err)) {
                st = strata_fail(STRATA_ERR_IO, "%s", err->valuestring);
                cJSON_Delete(obj);
            } else if (out) {
                *out = obj;
            } else {
                cJSON_Delete(obj);
            }
        }
    }
    free(r.buf);
    return st;
}

strata_status strata_client_stream(strata_client *c, const char *method, const char *path, const cJSON *body,
                                   strata_client_line_fn fn, void *user) {
    request r = {.c = c, .streaming = true, .fn = fn, .user = user};
    strata_status st = perform(c, method, path, body, &r);
    /* A last line without its newline. */
    if (st == STRATA_OK && r.len && !deliver_line(&r, r.buf, r.len))
        st = r.failed ? r.fail_status : strata_fail(STRATA_ERR_CANCELLED, "cancelled");
    free(r.buf);
    return st;
}

bool strata_client_ping(strata_client *c) {
    strata_client_tick_fn tick = c->tick;
    c->tick = NULL;
    cJSON *v = NULL;
    strata_status st = strata_client_call(c, "GET", "/api/version", NULL, &v);
    c->tick = tick;
    bool ok = st == STRATA_OK && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(v, "version"));
    cJSON_Delete(v);
    return ok;
}
