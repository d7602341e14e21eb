/* loadtest: N concurrent streaming clients against a running `strata serve`, M requests in
 * all; reports latency percentiles (time to first token and to the end of the stream),
 * errors, and the server's resident memory before and after (from /proc/PID/status).
 *
 *   bench/loadtest --host 127.0.0.1:11434 --model stories --clients 32 --requests 256 \
 *       [--num-predict 32] [--num-ctx 256] [--prompt TEXT] [--pid SERVER_PID] [--path /api/generate]
 *
 * Each client runs requests one after another (streamed NDJSON, libcurl) until M have been
 * started; a request counts as an error when the transfer fails, the status is not 200, a
 * line is not JSON, or the stream does not end with "done": true. Not a timed test: figures
 * for docs/performance.md. */
#include <cJSON.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    char url[512];
    char body[2048];
    int total;
    atomic_int next;
    atomic_int errors;
    double *ttft_ms, *total_ms; /* per request */
    atomic_int done_count;
    char first_error[512];
    pthread_mutex_t mu;
} shared;

typedef struct {
    char line[65536];
    size_t len;
    bool saw_done, bad_line;
    double t0, t_first;
} req_state;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void on_line(req_state *r) {
    r->line[r->len] = 0;
    cJSON *j = cJSON_Parse(r->line);
    if (!j) {
        r->bad_line = true;
        return;
    }
    if (r->t_first == 0) r->t_first = now_ms();
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "done"))) r->saw_done = true;
    if (cJSON_GetObjectItemCaseSensitive(j, "error")) r->bad_line = true;
    cJSON_Delete(j);
}

static size_t on_data(char *p, size_t size, size_t n, void *user) {
    req_state *r = user;
    size_t k = size * n;
    for (size_t i = 0; i < k; i++) {
        if (p[i] == '\n') {
            on_line(r);
            r->len = 0;
        } else if (r->len + 1 < sizeof r->line) {
            r->line[r->len++] = p[i];
        }
    }
    return k;
}

static void *client(void *arg) {
    shared *sh = arg;
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    for (;;) {
        int i = atomic_fetch_add(&sh->next, 1);
        if (i >= sh->total) break;
        req_state *r = calloc(1, sizeof *r);
        curl_easy_reset(c);
        curl_easy_setopt(c, CURLOPT_URL, sh->url);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, sh->body);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 600L);
        r->t0 = now_ms();
        CURLcode rc = curl_easy_perform(c);
        double t1 = now_ms();
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        bool ok = rc == CURLE_OK && status == 200 && r->saw_done && !r->bad_line;
        if (!ok) {
            atomic_fetch_add(&sh->errors, 1);
            pthread_mutex_lock(&sh->mu);
            if (!sh->first_error[0])
                snprintf(sh->first_error, sizeof sh->first_error, "curl %d (%s), status %ld, done %d, bad line %d", rc,
                         curl_easy_strerror(rc), status, r->saw_done, r->bad_line);
            pthread_mutex_unlock(&sh->mu);
        }
        sh->ttft_ms[i] = ok ? r->t_first - r->t0 : -1;
        sh->total_ms[i] = ok ? t1 - r->t0 : -1;
        atomic_fetch_add(&sh->done_count, 1);
        free(r);
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return NULL;
}

static long rss_kib(long pid) {
    if (pid <= 0) return -1;
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) kib = atol(line + 6);
    fclose(f);
    return kib;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, int n, double p) {
    if (n == 0) return 0;
    int k = (int)(p / 100.0 * (n - 1) + 0.5);
    return v[k];
}

static void report(const char *what, double *all, int total) {
    double *v = malloc((size_t)(total ? total : 1) * sizeof *v);
    int n = 0;
    for (int i = 0; i < total; i++)
        if (all[i] >= 0) v[n++] = all[i];
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    printf("%-18s p50 %8.1f  p90 %8.1f  p99 %8.1f  max %8.1f ms\n", what, pct(v, n, 50), pct(v, n, 90), pct(v, n, 99),
           n ? v[n - 1] : 0);
    free(v);
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1:11434", *model = "stories", *prompt = "Once upon a time", *path = "/api/generate";
    int clients = 8, requests = 64, num_predict = 32, num_ctx = 256;
    long pid = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--host")) host = v;
        else if (!strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--prompt")) prompt = v;
        else if (!strcmp(a, "--path")) path = v;
        else if (!strcmp(a, "--clients")) clients = atoi(v);
        else if (!strcmp(a, "--requests")) requests = atoi(v);
        else if (!strcmp(a, "--num-predict")) num_predict = atoi(v);
        else if (!strcmp(a, "--num-ctx")) num_ctx = atoi(v);
        else if (!strcmp(a, "--pid")) pid = atol(v);
        else {
            fprintf(stderr, "loadtest: unknown option %s (see the comment at the top of bench/loadtest.c)\n", a);
            return 2;
        }
    }
    if (clients < 1 || requests < 1) {
        fprintf(stderr, "loadtest: --clients and --requests must be positive\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    shared sh;
    memset(&sh, 0, sizeof sh);
    pthread_mutex_init(&sh.mu, NULL);
    snprintf(sh.url, sizeof sh.url, "http://%s%s", host, path);
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "model", model);
    cJSON_AddStringToObject(b, "prompt", prompt);
    cJSON_AddBoolToObject(b, "stream", true);
    cJSON *o = cJSON_AddObjectToObject(b, "options");
    cJSON_AddNumberToObject(o, "num_predict", num_predict);
    cJSON_AddNumberToObject(o, "num_ctx", num_ctx);
    char *text = cJSON_PrintUnformatted(b);
    snprintf(sh.body, sizeof sh.body, "%s", text);
    free(text);
    cJSON_Delete(b);
    sh.total = requests;
    sh.ttft_ms = calloc((size_t)requests, sizeof *sh.ttft_ms);
    sh.total_ms = calloc((size_t)requests, sizeof *sh.total_ms);
    long rss0 = rss_kib(pid);
    pthread_t *th = calloc((size_t)clients, sizeof *th);
    double t0 = now_ms();
    for (int i = 0; i < clients; i++) pthread_create(&th[i], NULL, client, &sh);
    for (int i = 0; i < clients; i++) pthread_join(th[i], NULL);
    double wall = now_ms() - t0;
    long rss1 = rss_kib(pid);
    printf("clients %d, requests %d, num_predict %d: %.1f s, %.1f requests/s, errors %d\n", clients, requests,
           num_predict, wall / 1e3, requests / (wall / 1e3), atomic_load(&sh.errors));
    if (sh.first_error[0]) printf("first error: %s\n", sh.first_error);
    report("first token", sh.ttft_ms, requests);
    report("whole stream", sh.total_ms, requests);
    if (pid > 0) printf("server RSS before %ld KiB, after %ld KiB\n", rss0, rss1);
    free(th);
    free(sh.ttft_ms);
    free(sh.total_ms);
    curl_global_cleanup();
    return atomic_load(&sh.errors) ? 1 : 0;
}
