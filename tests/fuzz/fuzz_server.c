/* libFuzzer target for the server's request handlers: body -> handler -> reply.
 *
 * Byte 0 picks a route (generate, chat, OpenAI chat and completions, embed, show, create,
 * copy, delete, pull, tags, ps, blob HEAD, or the options/keep_alive parsers alone); the rest
 * is the request body, given to the handler as the HTTP layer would (srv_dispatch) on an
 * in-process server whose store holds a tiny real model ("tiny", stories260K from the shared
 * test data when it is there; otherwise the handlers' refusals are what gets fuzzed).
 *
 * Every reply must be a status in 200..599 and, when buffered, well-formed UTF-8 JSON (or
 * empty). Bodies that parse as JSON are kept cheap before dispatch: generation and creation
 * are not streamed, num_predict <= 8, num_ctx <= 128, no quantize, pulls only from URLs that
 * fail at once (127.0.0.1 port 1); the bytes as sent are dispatched too when they do not
 * parse, so the JSON and type checks see everything. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/internal.h"
#include "server/scheduler.h"

static strata_server *g_srv;
static bool g_have_model;
static char g_model_path[4096];

static bool utf8_ok(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t k = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        if (!k || i + k > n) return false;
        for (size_t m = 1; m < k; m++)
            if ((s[i + m] & 0xC0) != 0x80) return false;
        if (k == 3 && ((c == 0xE0 && s[i + 1] < 0xA0) || (c == 0xED && s[i + 1] > 0x9F))) return false;
        if (k == 4 && ((c == 0xF0 && s[i + 1] < 0x90) || (c == 0xF4 && s[i + 1] > 0x8F))) return false;
        i += k;
    }
    return true;
}

static void observe(unsigned status, const char *body, size_t len) {
    if (status < 200 || status > 599) abort();
    if (!utf8_ok((const unsigned char *)body, len)) abort(); /* replies are UTF-8 */
}

static void ensure_model(void) {
    if (!g_have_model) return;
    strata_store *s = NULL;
    strata_model_info *info = NULL;
    if (strata_store_open(g_srv->models_dir, &s) != STRATA_OK) abort();
    if (strata_store_show(s, "tiny", &info) != STRATA_OK) {
        strata_modelfile *mf = strata_modelfile_new();
        if (!mf || strata_modelfile_set_string(&mf->from, g_model_path) != STRATA_OK ||
            strata_store_create(s, "tiny", mf, NULL, NULL, NULL) != STRATA_OK)
            abort();
        strata_modelfile_free(mf);
    }
    strata_model_info_free(info);
    strata_store_close(s);
}

static char g_dir[64];

static void remove_dir(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (g_dir[0] && system(cmd) != 0) fprintf(stderr, "fuzz_server: could not remove %s\n", g_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    char dir[] = "/tmp/strata-fuzz-server-XXXXXX";
    if (!mkdtemp(dir)) abort();
    snprintf(g_dir, sizeof g_dir, "%s", dir);
    atexit(remove_dir);
    char models[4200];
    snprintf(models, sizeof models, "%s/models", dir);
    const char *td = getenv("STRATA_TESTDATA");
    snprintf(g_model_path, sizeof g_model_path, "%s/models/stories260K-f32.gguf", td && *td ? td : "../shared/testdata");
    struct stat sb;
    g_have_model = stat(g_model_path, &sb) == 0;
    if (!g_have_model) {
        /* The build folder is one level deeper than the repository root. */
        snprintf(g_model_path, sizeof g_model_path, "../../shared/testdata/models/stories260K-f32.gguf");
        g_have_model = stat(g_model_path, &sb) == 0;
    }
    if (g_have_model && g_model_path[0] != '/') {
        char cwd[2048], abs[4096 + 2048];
        if (getcwd(cwd, sizeof cwd)) {
            snprintf(abs, sizeof abs, "%s/%s", cwd, g_model_path);
            snprintf(g_model_path, sizeof g_model_path, "%s", abs);
        }
    }
    strata_server_config cfg;
    strata_server_config_default(&cfg);
    snprintf(cfg.host, sizeof cfg.host, "127.0.0.1");
    cfg.port = 0;
    cfg.models_dir = models;
    cfg.devices = "cpu";
    cfg.pull_stall_s = 2;
    if (strata_server_start(&cfg, &g_srv) != STRATA_OK) abort();
    ensure_model();
    srv_reply_observer = observe;
    return 0;
}

typedef struct {
    const char *method, *url;
    bool gen; /* generation: clamp options */
} froute;

static const froute routes[] = {
    {"POST", "/api/generate", true},        {"POST", "/api/chat", true},   {"POST", "/v1/chat/completions", true},
    {"POST", "/v1/completions", true},      {"POST", "/api/embed", true},  {"POST", "/api/embeddings", true},
    {"POST", "/api/show", false},           {"POST", "/api/create", false}, {"POST", "/api/copy", false},
    {"DELETE", "/api/delete", false},       {"POST", "/api/pull", false},  {"GET", "/api/tags", false},
    {"GET", "/api/ps", false},              {"GET", "/v1/models", false},  {"HEAD", "/api/blobs/", false},
    {"OPTIONS-PARSE", "", false},
};
#define N_ROUTES (sizeof routes / sizeof routes[0])

/* Makes a parsed body cheap to run (see the header). */
static void clamp_body(cJSON *b, const froute *r) {
    cJSON_DeleteItemFromObjectCaseSensitive(b, "stream");
    cJSON_AddBoolToObject(b, "stream", false);
    cJSON_DeleteItemFromObjectCaseSensitive(b, "quantize");
    if (r->gen) {
        cJSON *o = cJSON_GetObjectItemCaseSensitive(b, "options");
        if (!cJSON_IsObject(o)) {
            cJSON_DeleteItemFromObjectCaseSensitive(b, "options");
            o = cJSON_AddObjectToObject(b, "options");
        }
        static const struct {
            const char *key;
            double max;
        } caps[] = {{"num_predict", 8}, {"num_ctx", 128}, {"num_batch", 64}, {"num_thread", 1}, {"num_keep", 64}};
        for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
            cJSON *v = cJSON_GetObjectItemCaseSensitive(o, caps[i].key);
            if (!v || (cJSON_IsNumber(v) && (v->valuedouble > caps[i].max || v->valuedouble < 0))) {
                cJSON_DeleteItemFromObjectCaseSensitive(o, caps[i].key);
                cJSON_AddNumberToObject(o, caps[i].key, caps[i].max);
            }
        }
        cJSON_DeleteItemFromObjectCaseSensitive(b, "max_tokens");
        cJSON_DeleteItemFromObjectCaseSensitive(b, "max_completion_tokens");
        cJSON_AddNumberToObject(b, "max_tokens", 8);
    }
    if (strcmp(r->url, "/api/pull") == 0) {
        cJSON_DeleteItemFromObjectCaseSensitive(b, "url");
        cJSON *m = cJSON_GetObjectItemCaseSensitive(b, "model");
        if (cJSON_IsString(m) && strstr(m->valuestring, "://")) cJSON_SetValuestring(m, "http://127.0.0.1:1/x.gguf");
        cJSON_DeleteItemFromObjectCaseSensitive(b, "name");
    }
    if (strcmp(r->url, "/api/create") == 0) { /* only from the tiny model or files that exist */
        cJSON_DeleteItemFromObjectCaseSensitive(b, "files");
        cJSON_DeleteItemFromObjectCaseSensitive(b, "modelfile");
        cJSON_DeleteItemFromObjectCaseSensitive(b, "path");
        cJSON *f = cJSON_GetObjectItemCaseSensitive(b, "from");
        if (f && !(cJSON_IsString(f) && strcmp(f->valuestring, "tiny") == 0)) {
            cJSON_DeleteItemFromObjectCaseSensitive(b, "from");
            cJSON_AddStringToObject(b, "from", "tiny");
        }
    }
}

static void run(const froute *r, const char *body, size_t len) {
    char url[300];
    if (strcmp(r->url, "/api/blobs/") == 0) {
        snprintf(url, sizeof url, "/api/blobs/%.*s", (int)(len < 100 ? len : 100), body);
        for (char *p = url; *p; p++)
            if (*p == 0) *p = '_';
    } else {
        snprintf(url, sizeof url, "%s", r->url);
    }
    srv_request rq = {.srv = g_srv, .conn = NULL, .method = r->method, .url = url, .body = body, .body_len = len};
    srv_reply rep = srv_dispatch(&rq);
    if (rep.resp) {
        if (rep.status < 200 || rep.status > 599) abort();
        MHD_destroy_response(rep.resp);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const froute *r = &routes[data[0] % N_ROUTES];
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    char *copy = malloc(len + 1);
    if (!copy) return 0;
    memcpy(copy, body, len);
    copy[len] = 0;
    cJSON *parsed = cJSON_ParseWithLength(copy, len);
    if (strcmp(r->method, "OPTIONS-PARSE") == 0) {
        /* The option and keep_alive parsers alone: applied or refused with a message. */
        if (parsed) {
            srv_options o;
            srv_options_init(&o);
            const cJSON *options = cJSON_GetObjectItemCaseSensitive(parsed, "options");
            if (srv_options_apply_json(&o, options ? options : parsed) != STRATA_OK && strata_last_error()[0] == 0)
                abort();
            if (o.gen.n_stop < 0 || o.gen.n_stop > STRATA_MAX_STOP) abort();
            int64_t ns;
            const cJSON *ka = cJSON_GetObjectItemCaseSensitive(parsed, "keep_alive");
            if (ka && sched_parse_keep_alive(ka, &ns) && ns < -1) abort(); /* forever is -1 */
            srv_options_free(&o);
        }
    } else if (parsed && cJSON_IsObject(parsed)) {
        clamp_body(parsed, r);
        char *text = cJSON_PrintUnformatted(parsed);
        if (text) run(r, text, strlen(text));
        free(text);
    } else {
        run(r, copy, len); /* malformed or not an object: refused before anything runs */
    }
    cJSON_Delete(parsed);
    free(copy);
    if (strcmp(r->url, "/api/delete") == 0) ensure_model(); /* it may have been the one deleted */
    return 0;
}
