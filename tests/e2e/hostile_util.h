/* Helpers for the hostile-client tests (test_serve_hostile.c, test_serve_limits.c): raw
 * sockets to the server on 127.0.0.1, a tiny HTTP origin for /api/pull on 127.0.0.1, bounded
 * waits for the server's log, and requests with extra headers or a client timeout. */
#ifndef STRATA_TESTS_HOSTILE_UTIL_H
#define STRATA_TESTS_HOSTILE_UTIL_H

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "serve_util.h"

#define STORIES "models/stories260K-f32.gguf"

/* Waits (at most `seconds`) for `needle` in the server's log. */
static inline bool log_wait(const test_server *s, const char *needle, int seconds) {
    for (int i = 0; i < seconds * 50; i++) {
        char *log = server_log(s);
        bool seen = strstr(log, needle) != NULL;
        free(log);
        if (seen) return true;
        sleep_ms(20);
    }
    return false;
}

static inline int log_count(const test_server *s, const char *needle) {
    char *log = server_log(s);
    int n = 0;
    for (const char *p = strstr(log, needle); p; p = strstr(p + 1, needle)) n++;
    free(log);
    return n;
}

/* A request with extra headers (NULL-terminated list), a client timeout in ms (0 = 120 s),
 * returning the status (0 when the transfer failed) and the body. */
static inline long http_req_ex(const test_server *s, const char *method, const char *path, const char *body,
                               const char *const *headers, long timeout_ms, char **out) {
    CURL *c = curl_easy_init();
    assert_non_null(c);
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", s->port, path);
    http_buf b = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0) curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    }
    struct curl_slist *h = NULL;
    for (const char *const *p = headers; p && *p; p++) h = curl_slist_append(h, *p);
    if (h) curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms ? timeout_ms : 120000L);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (out) *out = b.data ? b.data : strdup("");
    else free(b.data);
    return status;
}

/* The header block of a reply (for CORS headers): status, and headers in *hdrs. */
static size_t hdr_collect(char *p, size_t size, size_t n, void *user) {
    http_buf *b = user;
    size_t k = size * n;
    char *nb = realloc(b->data, b->len + k + 1);
    if (!nb) return 0;
    b->data = nb;
    memcpy(b->data + b->len, p, k);
    b->len += k;
    b->data[b->len] = 0;
    return k;
}

static inline long http_headers(const test_server *s, const char *method, const char *path, const char *body,
                                const char *const *headers, char **hdrs) {
    CURL *c = curl_easy_init();
    assert_non_null(c);
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", s->port, path);
    http_buf b = {0}, hb = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    struct curl_slist *h = NULL;
    for (const char *const *p = headers; p && *p; p++) h = curl_slist_append(h, *p);
    if (h) curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, hdr_collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &hb);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(b.data);
    *hdrs = hb.data ? hb.data : strdup("");
    return status;
}

/* A TCP connection to the server (127.0.0.1:port). */
static inline int raw_connect(int port, int rcvbuf) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    if (rcvbuf) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static inline void raw_send(int fd, const char *text) {
    size_t n = strlen(text);
    while (n) {
        ssize_t w = send(fd, text, n, MSG_NOSIGNAL);
        assert_true(w > 0);
        text += w;
        n -= (size_t)w;
    }
}

/* Whether the server closes the connection within `seconds` (reading and dropping whatever
 * it sends meanwhile). */
static inline bool raw_closed_within(int fd, int seconds) {
    char buf[4096];
    for (int i = 0; i < seconds * 10; i++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) > 0) {
            ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) return true;
        }
    }
    return false;
}

/* ---- A tiny HTTP origin on 127.0.0.1 for /api/pull -------------------------------------- */

typedef struct {
    int listen_fd;
    int port;
    pthread_t th;
    /* What it answers: these headers and body bytes; then, when stall, it sends nothing more
     * until `release` (or the client closes). */
    const char *body;
    size_t body_len;
    size_t content_length; /* announced */
    bool stall;
    atomic_bool release;
    atomic_bool served;
} origin;

static void *origin_main(void *arg) {
    origin *o = arg;
    int fd = accept(o->listen_fd, NULL, NULL);
    if (fd < 0) return NULL;
    char req[4096];
    ssize_t got = 0;
    while (got < (ssize_t)sizeof req - 1) { /* read the request head */
        ssize_t r = recv(fd, req + got, sizeof req - 1 - (size_t)got, 0);
        if (r <= 0) break;
        got += r;
        req[got] = 0;
        if (strstr(req, "\r\n\r\n")) break;
    }
    char head[256];
    snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %zu\r\n\r\n",
             o->content_length);
    send(fd, head, strlen(head), MSG_NOSIGNAL);
    send(fd, o->body, o->body_len, MSG_NOSIGNAL);
    atomic_store(&o->served, true);
    if (o->stall) {
        for (int i = 0; i < 6000 && !atomic_load(&o->release); i++) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            char b;
            if (poll(&p, 1, 10) > 0 && recv(fd, &b, 1, MSG_DONTWAIT) == 0) break; /* client gone */
        }
    }
    close(fd);
    return NULL;
}

static inline void origin_start(origin *o, const char *body, size_t body_len, size_t content_length, bool stall) {
    memset(o, 0, sizeof *o);
    o->body = body;
    o->body_len = body_len;
    o->content_length = content_length;
    o->stall = stall;
    o->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(o->listen_fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(o->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(o->listen_fd, 4), 0);
    socklen_t len = sizeof a;
    getsockname(o->listen_fd, (struct sockaddr *)&a, &len);
    o->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&o->th, NULL, origin_main, o), 0);
}

static inline void origin_stop(origin *o) {
    atomic_store(&o->release, true);
    shutdown(o->listen_fd, SHUT_RDWR);
    close(o->listen_fd);
    pthread_join(o->th, NULL);
}

/* Files in the store's blob folder whose names start with prefix. */
static inline int blob_files(const test_server *s, const char *prefix) {
    char *dir = tmpdir_path(s->models, "blobs");
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d)) != NULL;)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) n++;
    if (d) closedir(d);
    free(dir);
    return n;
}

/* A non-streamed request running on its own thread (to have work in flight). */
typedef struct {
    const test_server *s;
    const char *path;
    char body[1024];
    long status;
    char *out;
    pthread_t th;
} bg_req;

static void *bg_main(void *arg) {
    bg_req *b = arg;
    b->status = http_req_ex(b->s, "POST", b->path, b->body, NULL, 120000, &b->out);
    return NULL;
}

static inline void bg_start(bg_req *b, const test_server *s, const char *path, const char *body) {
    memset(b, 0, sizeof *b);
    b->s = s;
    b->path = path;
    snprintf(b->body, sizeof b->body, "%s", body);
    assert_int_equal(pthread_create(&b->th, NULL, bg_main, b), 0);
}

static inline void bg_join(bg_req *b) {
    pthread_join(b->th, NULL);
    free(b->out);
    b->out = NULL;
}

#endif
