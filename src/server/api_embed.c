/* Embeddings: /api/embed (Ollama's current endpoint), /api/embeddings (its legacy one) and
 * OpenAI's /v1/embeddings.
 *
 * An input's embedding is the mean, over its tokens (BOS included, as the tokenizer adds
 * it), of the final hidden states after the output norm -- the rows the output matrix would
 * turn into logits -- then scaled to unit L2 norm, as Ollama returns normalised vectors.
 * Mean pooling is the choice here because the engine runs causal decoder models (llama,
 * qwen2, qwen3), which have no pooling layer or [CLS] token of their own; the mean uses
 * every position rather than only the last token's view of the text.
 *
 * The model is loaded with the embeddings flag (the context keeps every token's output-norm
 * state, sized into the plan: planned == allocated still holds); the flag is part of the
 * scheduler's key, so a model loaded for generation is reloaded for embeddings and back.
 * An input longer than the context is truncated to its first num_ctx tokens when
 * "truncate" is true (the default), else refused with 400.
 *
 * "dimensions" (/api/embed and /v1/embeddings) keeps the first N values of each normalised
 * vector and normalises them again, as Ollama does (a value at or above n_embd changes
 * nothing). /v1/embeddings answers OpenAI's list ({"object": "list", "data": [{"object":
 * "embedding", "embedding", "index"}], "model", "usage"}), the vectors as float arrays or,
 * with "encoding_format": "base64", as the base64 of their little-endian float32 bytes. */
#include <cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/internal.h"

/* Mean of the output-norm hidden states of ids[0..n), L2-normalised, into out[n_embd]. */
static strata_status embed_ids(strata_engine *e, const int32_t *ids, int32_t n, float *out) {
    strata_engine_info info;
    strata_engine_get_info(e, &info);
    const int32_t E = info.n_embd, nb = info.n_batch;
    double *sum = calloc((size_t)E, sizeof *sum);
    if (!sum) return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    strata_status st = STRATA_OK;
    for (int32_t i = 0; i < n && st == STRATA_OK; i += nb) {
        int32_t m = n - i < nb ? n - i : nb;
        st = strata_engine_decode(e, ids + i, m, i);
        for (int32_t t = 0; st == STRATA_OK && t < m; t++) {
            const float *h = strata_engine_hidden(e, t);
            if (!h) {
                st = strata_fail(STRATA_ERR_INVALID, "embed: the model was not loaded for embeddings");
                break;
            }
            for (int32_t k = 0; k < E; k++) sum[k] += h[k];
        }
    }
    if (st == STRATA_OK) {
        double ss = 0;
        for (int32_t k = 0; k < E; k++) {
            sum[k] /= n;
            ss += sum[k] * sum[k];
        }
        double inv = ss > 0 ? 1.0 / sqrt(ss) : 0;
        for (int32_t k = 0; k < E; k++) out[k] = (float)(sum[k] * inv);
    }
    free(sum);
    return st;
}

typedef struct {
    const char **texts;
    int n;
} embed_inputs;

typedef enum { EMB_OLLAMA, EMB_LEGACY, EMB_OPENAI } emb_mode;

/* base64 (RFC 4648, padded) of a float vector's little-endian bytes, as OpenAI sends them. */
static char *floats_base64(const float *v, int n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const size_t len = (size_t)n * 4;
    unsigned char *b = malloc(len ? len : 1);
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (!b || !out) {
        free(b);
        free(out);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        for (int k = 0; k < 4; k++) b[i * 4 + k] = (unsigned char)(u >> (8 * k));
    }
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t w = (uint32_t)b[i] << 16 | (i + 1 < len ? (uint32_t)b[i + 1] << 8 : 0) | (i + 2 < len ? b[i + 2] : 0);
        out[o++] = tab[w >> 18 & 63];
        out[o++] = tab[w >> 12 & 63];
        out[o++] = i + 1 < len ? tab[w >> 6 & 63] : '=';
        out[o++] = i + 2 < len ? tab[w & 63] : '=';
    }
    out[o] = 0;
    free(b);
    return out;
}

/* Keeps the first dims values of a unit vector and scales them back to unit length. */
static void truncate_dims(float *v, int32_t *n, int32_t dims) {
    if (dims <= 0 || dims >= *n) return;
    double ss = 0;
    for (int32_t k = 0; k < dims; k++) ss += (double)v[k] * v[k];
    const double inv = 1.0 / fmax(sqrt(ss), 1e-12);
    for (int32_t k = 0; k < dims; k++) v[k] = (float)(v[k] * inv);
    *n = dims;
}

#define EMB_ERR(code, ...) (mode == EMB_OPENAI ? srv_reply_openai_error(code, __VA_ARGS__) : srv_reply_error(code, __VA_ARGS__))

static srv_reply embed(const srv_request *rq, emb_mode mode) {
    srv_reply reply;
    const bool legacy = mode == EMB_LEGACY;
    int64_t t0 = strata_now_ns();
    cJSON *body = srv_parse_body(rq, &reply, mode == EMB_OPENAI);
    if (!body) return reply;
    strata_model_info *info = NULL;
    srv_options opt;
    srv_options_init(&opt);
    embed_inputs in = {0};
    cJSON *out = NULL;

    const cJSON *model = cJSON_GetObjectItemCaseSensitive(body, "model");
    if (!cJSON_IsString(model) || !*model->valuestring) {
        reply = EMB_ERR(400, "model is required");
        goto done;
    }
    /* Inputs: "input" (a string or an array of strings); legacy: "prompt". */
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(body, legacy ? "prompt" : "input");
    if (cJSON_IsString(input)) {
        in.texts = malloc(sizeof *in.texts);
        if (in.texts) in.texts[in.n++] = input->valuestring;
    } else if (!legacy && cJSON_IsArray(input)) {
        in.texts = malloc((size_t)(cJSON_GetArraySize(input) + 1) * sizeof *in.texts);
        for (const cJSON *c = input->child; in.texts && c; c = c->next) {
            if (!cJSON_IsString(c)) {
                reply = EMB_ERR(400, "input: every entry must be a string");
                goto done;
            }
            in.texts[in.n++] = c->valuestring;
        }
    } else if (input && !cJSON_IsNull(input)) {
        reply = EMB_ERR(400, legacy ? "prompt must be a string" : "input must be a string or an array of strings");
        goto done;
    }
    if (!in.texts && (cJSON_IsString(input) || cJSON_IsArray(input))) {
        reply = EMB_ERR(500, "out of memory");
        goto done;
    }
    static const srv_field_type types[] = {{"model", SRV_T_STRING},
                                           {"truncate", SRV_T_BOOL},
                                           {"options", SRV_T_OBJECT},
                                           {"keep_alive", SRV_T_STRING | SRV_T_NUMBER},
                                           {"dimensions", SRV_T_NUMBER},
                                           {"encoding_format", SRV_T_STRING}};
    char type_msg[160];
    if (!srv_check_types(body, types, sizeof types / sizeof types[0], type_msg, sizeof type_msg)) {
        reply = EMB_ERR(400, "%s", type_msg);
        goto done;
    }
    const cJSON *dim = cJSON_GetObjectItemCaseSensitive(body, "dimensions");
    int32_t dims = 0;
    if (cJSON_IsNumber(dim)) {
        if (legacy || dim->valuedouble < 0 || dim->valuedouble != floor(dim->valuedouble) || dim->valuedouble > 1e9) {
            reply = EMB_ERR(400, legacy ? "dimensions is not supported by /api/embeddings"
                                        : "dimensions must be a positive integer");
            goto done;
        }
        dims = (int32_t)dim->valuedouble;
    }
    const cJSON *enc = cJSON_GetObjectItemCaseSensitive(body, "encoding_format");
    bool base64 = false;
    if (cJSON_IsString(enc)) {
        if (mode != EMB_OPENAI || (strcasecmp(enc->valuestring, "float") != 0 && strcasecmp(enc->valuestring, "base64") != 0)) {
            reply = EMB_ERR(400, "encoding_format must be \"float\" or \"base64\"");
            goto done;
        }
        base64 = strcasecmp(enc->valuestring, "base64") == 0;
    }
    const cJSON *trunc = cJSON_GetObjectItemCaseSensitive(body, "truncate");
    bool truncate = !cJSON_IsFalse(trunc);
    int64_t keep_alive = 0;
    if (!sched_parse_keep_alive(cJSON_GetObjectItemCaseSensitive(body, "keep_alive"), &keep_alive)) {
        reply = EMB_ERR(400, "keep_alive: not a duration (e.g. \"5m\", 300, 0, -1)");
        goto done;
    }

    strata_store *store = NULL;
    strata_status st = srv_store_open(rq->srv, &store);
    if (st == STRATA_OK) st = strata_store_show(store, model->valuestring, &info);
    strata_store_close(store);
    if (st != STRATA_OK) {
        if (st == STRATA_ERR_NOT_FOUND) reply = EMB_ERR(404, "model '%s' not found", model->valuestring);
        else reply = EMB_ERR(srv_status_http(st), "%s", strata_last_error());
        goto done;
    }
    st = srv_options_apply_modelfile(&opt, info->modelfile);
    if (st == STRATA_OK) st = srv_options_apply_json(&opt, cJSON_GetObjectItemCaseSensitive(body, "options"));
    if (st != STRATA_OK) {
        reply = EMB_ERR(400, "%s", strata_last_error());
        goto done;
    }
    sched_request req = {.name = info->name, .model_path = info->model_path, .digest = info->digest,
                         .family = info->family, .parameter_size = info->parameter_size,
                         .quantization = info->quantization, .opts = opt.load};
    req.opts.embeddings = true;

    sched_runner *r = NULL;
    int64_t load_ns = 0;
    st = sched_acquire(rq->srv->sched, &req, NULL, &r, &load_ns);
    if (st != STRATA_OK) {
        reply = EMB_ERR(srv_status_http(st), "%s", strata_last_error());
        goto done;
    }
    strata_engine *e = sched_runner_engine(r);
    const int32_t E = strata_engine_n_embd(e), n_ctx = sched_runner_n_ctx(r);
    out = cJSON_CreateObject();
    if (mode == EMB_OPENAI) cJSON_AddStringToObject(out, "object", "list");
    cJSON *arr = legacy ? NULL : cJSON_AddArrayToObject(out, mode == EMB_OPENAI ? "data" : "embeddings");
    cJSON_AddStringToObject(out, "model", model->valuestring);
    float *vec = malloc((size_t)E * sizeof *vec);
    int64_t prompt_tokens = 0;
    unsigned code = 200;
    char err[512] = "";
    if (!vec) {
        code = 500;
        snprintf(err, sizeof err, "out of memory");
    }
    for (int i = 0; code == 200 && i < in.n; i++) {
        size_t len = strlen(in.texts[i]);
        int64_t n = strata_tokenize(strata_engine_vocab(e), in.texts[i], len, true, false, NULL, 0);
        int32_t *ids = n > 0 ? malloc((size_t)n * sizeof *ids) : NULL;
        if (n <= 0 || !ids) {
            code = n <= 0 ? 400 : 500;
            snprintf(err, sizeof err, n <= 0 ? "input %d has no tokens" : "out of memory", i);
            free(ids);
            break;
        }
        strata_tokenize(strata_engine_vocab(e), in.texts[i], len, true, false, ids, (size_t)n);
        if (n > n_ctx) {
            if (!truncate) {
                code = 400;
                snprintf(err, sizeof err, "input %d has %" PRId64 " tokens, more than the context of %d", i, n, n_ctx);
                free(ids);
                break;
            }
            n = n_ctx;
        }
        st = embed_ids(e, ids, (int32_t)n, vec);
        free(ids);
        if (st != STRATA_OK) {
            code = srv_status_http(st);
            snprintf(err, sizeof err, "%s", strata_last_error());
            break;
        }
        prompt_tokens += n;
        int32_t dn = E;
        truncate_dims(vec, &dn, dims);
        cJSON *v;
        if (base64) {
            char *b64 = floats_base64(vec, dn);
            v = cJSON_CreateString(b64 ? b64 : "");
            free(b64);
        } else {
            v = cJSON_CreateFloatArray(vec, dn);
        }
        if (legacy) {
            cJSON_AddItemToObject(out, "embedding", v);
        } else if (mode == EMB_OPENAI) {
            cJSON *d = cJSON_CreateObject();
            cJSON_AddStringToObject(d, "object", "embedding");
            cJSON_AddItemToObject(d, "embedding", v);
            cJSON_AddNumberToObject(d, "index", i);
            cJSON_AddItemToArray(arr, d);
        } else {
            cJSON_AddItemToArray(arr, v);
        }
    }
    free(vec);
    sched_release(rq->srv->sched, r, keep_alive);
    if (code != 200) {
        cJSON_Delete(out);
        out = NULL;
        reply = EMB_ERR(code, "%s", err);
        goto done;
    }
    if (legacy && in.n == 0) cJSON_AddItemToObject(out, "embedding", cJSON_CreateArray());
    if (mode == EMB_OPENAI) {
        cJSON *u = cJSON_AddObjectToObject(out, "usage");
        cJSON_AddNumberToObject(u, "prompt_tokens", (double)prompt_tokens);
        cJSON_AddNumberToObject(u, "total_tokens", (double)prompt_tokens);
    } else if (!legacy) {
        cJSON_AddNumberToObject(out, "total_duration", (double)(strata_now_ns() - t0));
        cJSON_AddNumberToObject(out, "load_duration", (double)load_ns);
        cJSON_AddNumberToObject(out, "prompt_eval_count", (double)prompt_tokens);
    }
    reply = srv_reply_json(200, out);
    out = NULL;
done:
    cJSON_Delete(out);
    free(in.texts);
    srv_options_free(&opt);
    strata_model_info_free(info);
    cJSON_Delete(body);
    return reply;
}

srv_reply api_embed(const srv_request *rq) { return embed(rq, EMB_OLLAMA); }
srv_reply api_embeddings(const srv_request *rq) { return embed(rq, EMB_LEGACY); }
srv_reply api_openai_embeddings(const srv_request *rq) { return embed(rq, EMB_OPENAI); }
