/* Helpers for the server's end-to-end tests: start the real `strata serve` on a free
 * loopback port with its own model store, talk to it over real HTTP with libcurl, stop it.
 * Included by tests/e2e/test_serve*.c (static functions: one copy per test executable). */
#ifndef STRATA_TESTS_SERVE_UTIL_H
#define STRATA_TESTS_SERVE_UTIL_H

#include <cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"
#include "testdata.h"

typedef struct {
    pid_t pid;
    int port;
    char *dir;    /* private folder: the log and the store */
    char *models; /* STRATA_MODELS */
    char *log;    /* the server's stderr */
} test_server;

/* Servers still running, so that a failed test (cmocka jumps out of it) still kills its own:
 * every test is registered with server_teardown. */
static pid_t g_server_pids[16];

static inline void track_pid(pid_t pid, bool add) {
    for (int i = 0; i < 16; i++) {
        if (add && g_server_pids[i] == 0) {
            g_server_pids[i] = pid;
            return;
        }
        if (!add && g_server_pids[i] == pid) g_server_pids[i] = 0;
    }
}

static inline int server_teardown(void **state) {
    (void)state;
    for (int i = 0; i < 16; i++) {
        if (g_server_pids[i] > 0) {
            kill(g_server_pids[i], SIGKILL);
            waitpid(g_server_pids[i], NULL, 0);
            g_server_pids[i] = 0;
        }
    }
    return 0;
}

static inline void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static inline char *read_text(const char *path) {
    size_t n = 0;
    char *t = testdata_read_file(path, &n);
    return t;
}

/* Starts the server on port 0 (the kernel picks a free one; the server logs it). env is a
 * NULL-terminated list of "NAME=VALUE" set in the child; models may be NULL (a fresh store)
 * or a store folder to reuse. */
static inline void server_start_in(test_server *s, const char *const *env, const char *models) {
    memset(s, 0, sizeof *s);
    s->dir = tmpdir_make();
    assert_non_null(s->dir);
    s->log = tmpdir_path(s->dir, "server.log");
    s->models = models ? strdup(models) : tmpdir_path(s->dir, "models");
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        int fd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int nul = open("/dev/null", O_RDWR);
        if (fd < 0 || nul < 0) _exit(127);
        dup2(nul, 0);
        dup2(nul, 1);
        dup2(fd, 2);
        setenv("STRATA_MODELS", s->models, 1);
        setenv("STRATA_HOST", "127.0.0.1:0", 1);
        unsetenv("STRATA_DEVICES");
        unsetenv("STRATA_KEEP_ALIVE");
        unsetenv("STRATA_MAX_LOADED_MODELS");
        unsetenv("STRATA_GPU_RESERVE");
        unsetenv("STRATA_CONTEXT_LENGTH");
        unsetenv("STRATA_KV_CACHE_TYPE");
        unsetenv("STRATA_NUM_PARALLEL");
        unsetenv("STRATA_SCHED_SPREAD");
        /* Ollama's variables are read as fallbacks: none leaks in from the caller's shell. */
        static const char *const ollama_env[] = {"OLLAMA_HOST", "OLLAMA_MODELS", "OLLAMA_KEEP_ALIVE",
                                                 "OLLAMA_MAX_LOADED_MODELS", "OLLAMA_CONTEXT_LENGTH",
                                                 "OLLAMA_GPU_OVERHEAD", "OLLAMA_ORIGINS", "OLLAMA_KV_CACHE_TYPE",
                                                 "OLLAMA_NUM_PARALLEL", "OLLAMA_SCHED_SPREAD"};
        for (size_t k = 0; k < sizeof ollama_env / sizeof ollama_env[0]; k++) unsetenv(ollama_env[k]);
        for (const char *const *e = env; e && *e; e++) putenv(strdup(*e));
        execl(STRATA_BINARY, STRATA_BINARY, "serve", (char *)NULL);
        _exit(127);
    }
    track_pid(s->pid, true);
    /* Wait for "listening on 127.0.0.1:PORT" (or the server's death). */
    for (;;) {
        char *t = read_text(s->log);
        const char *p = t ? strstr(t, "listening on 127.0.0.1:") : NULL;
        if (p) {
            s->port = atoi(p + strlen("listening on 127.0.0.1:"));
            free(t);
            break;
        }
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            track_pid(s->pid, false);
            s->pid = 0;
            fail_msg("server exited before listening: %s", t ? t : "(no log)");
        }
        free(t);
        sleep_ms(20);
    }
    assert_true(s->port > 0);
}

static inline void server_start(test_server *s, const char *const *env) { server_start_in(s, env, NULL); }

/* Removes a folder tree (the store) below the test's private folder. */
static inline void remove_tree(const char *path) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", path);
}

/* SIGTERM and wait (SIGKILL if it does not exit within 20 s: a hang is reported, not kept). */
static inline int server_stop_keep(test_server *s) {
    int status = 0;
    if (s->pid > 0) {
        track_pid(s->pid, false);
        kill(s->pid, SIGTERM);
        int i;
        for (i = 0; i < 2000; i++) {
            if (waitpid(s->pid, &status, WNOHANG) == s->pid) break;
            sleep_ms(10);
        }
        if (i == 2000) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &status, 0);
            status = -1;
        }
        s->pid = 0;
    }
    return status;
}

static inline void server_cleanup(test_server *s) {
    remove_tree(s->dir);
    free(s->dir);
    free(s->models);
    free(s->log);
    memset(s, 0, sizeof *s);
}

static inline void server_stop(test_server *s) {
    int status = server_stop_keep(s);
    char *log = read_text(s->log);
    bool clean = status == 0 || (WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (!clean) fprintf(stderr, "server log:\n%s\n", log ? log : "");
    free(log);
    server_cleanup(s);
    assert_true(clean);
}

static inline char *server_log(const test_server *s) {
    char *t = read_text(s->log);
    return t ? t : strdup("");
}

/* ---- HTTP ------------------------------------------------------------------------------- */

typedef struct {
    char *data;
    size_t len;
    /* stop after this many bytes (0 = never): the client then hangs up */
    size_t abort_after;
} http_buf;

static inline size_t http_write(char *p, size_t size, size_t n, void *user) {
    http_buf *b = user;
    size_t k = size * n;
    char *nb = realloc(b->data, b->len + k + 1);
    if (!nb) return 0;
    b->data = nb;
    memcpy(b->data + b->len, p, k);
    b->len += k;
    b->data[b->len] = 0;
    if (b->abort_after && b->len >= b->abort_after) return 0; /* hang up */
    return k;
}

/* One request; returns the HTTP status (0 when the transfer failed) and the body (malloc'd). */
static inline long http_req(const test_server *s, const char *method, const char *path, const char *body, size_t body_len,
                     char **out, size_t abort_after) {
    CURL *c = curl_easy_init();
    assert_non_null(c);
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", s->port, path);
    http_buf b = {.abort_after = abort_after};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0) curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    if (rc == CURLE_OK || (abort_after && rc == CURLE_WRITE_ERROR)) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (out) *out = b.data ? b.data : strdup("");
    else free(b.data);
    return status;
}

static inline long http_json(const test_server *s, const char *method, const char *path, const char *body, char **out) {
    return http_req(s, method, path, body, body ? strlen(body) : 0, out, 0);
}

/* POST with a JSON body built by printf. */
static inline long post(const test_server *s, const char *path, char **out, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline long post(const test_server *s, const char *path, char **out, const char *fmt, ...) {
    char body[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    return http_json(s, "POST", path, body, out);
}

/* Parses text as JSON or fails the test. */
static inline cJSON *json_or_fail(const char *text) {
    cJSON *j = cJSON_Parse(text);
    if (!j) fail_msg("not JSON: %s", text);
    return j;
}

static inline const char *jstr(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static inline double jnum(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v)) fail_msg("no number '%s'", key);
    return v->valuedouble;
}

/* Creates `name` from a shared test model file. */
static inline void create_model(const test_server *s, const char *name, const char *file) {
    char *path = testdata_path(file);
    assert_non_null(path);
    char *out = NULL;
    long st = post(s, "/api/create", &out, "{\"model\":\"%s\",\"from\":\"%s\",\"stream\":false}", name, path);
    if (st != 200) fail_msg("create %s: %ld %s", name, st, out);
    free(out);
    free(path);
}

/* Concatenates the given field (or field.sub) of every NDJSON line of a streamed reply into
 * text; returns the last line's object (the caller frees it). */
static inline cJSON *ndjson_collect(const char *body, const char *field, const char *sub, char *text, size_t cap) {
    text[0] = 0;
    cJSON *last = NULL;
    const char *p = body;
    while (*p) {
        const char *nl = strchr(p, '\n');
        if (!nl) fail_msg("NDJSON line without a newline: %s", p);
        char *line = strndup(p, (size_t)(nl - p));
        cJSON *j = json_or_fail(line);
        free(line);
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, field);
        if (sub) f = cJSON_GetObjectItemCaseSensitive(f, sub);
        if (cJSON_IsString(f)) strncat(text, f->valuestring, cap - strlen(text) - 1);
        cJSON_Delete(last);
        last = j;
        p = nl + 1;
    }
    if (!last) fail_msg("empty stream");
    return last;
}

/* Number of models /api/ps lists; *names (optional) gets them joined by spaces. */
static inline int ps_count(const test_server *s, char *names, size_t cap) {
    char *out = NULL;
    assert_int_equal(http_json(s, "GET", "/api/ps", NULL, &out), 200);
    cJSON *j = json_or_fail(out);
    const cJSON *models = cJSON_GetObjectItemCaseSensitive(j, "models");
    assert_true(cJSON_IsArray(models));
    int n = cJSON_GetArraySize(models);
    if (names) {
        names[0] = 0;
        for (const cJSON *m = models->child; m; m = m->next) {
            strncat(names, jstr(m, "name"), cap - strlen(names) - 2);
            strncat(names, " ", cap - strlen(names) - 1);
        }
    }
    cJSON_Delete(j);
    free(out);
    return n;
}

#endif
