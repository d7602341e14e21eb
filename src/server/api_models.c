/* Model management endpoints: /api/tags, /api/show, /api/ps, /api/create, /api/copy,
 * /api/delete, /api/pull, /api/version, /api/blobs/:digest, /v1/models. */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf/gguf.h"
#include "quantize/quantize.h"
#include "tensor/type.h"
#include "server/internal.h"
#include "template/template.h"

static const char *hex_of(const char *digest) { return strncmp(digest, "sha256:", 7) == 0 ? digest + 7 : digest; }

static const char *model_field(const cJSON *body) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(body, "model");
    if (!cJSON_IsString(m) || !*m->valuestring) m = cJSON_GetObjectItemCaseSensitive(body, "name");
    return cJSON_IsString(m) && *m->valuestring ? m->valuestring : NULL;
}

/* The body of a request that must name a model (/api/show, /api/delete): the parsed body with
 * *name set, or NULL with *err set (the parse error, or 400 "model is required"). */
static cJSON *model_body(const srv_request *rq, const char **name, srv_reply *err) {
    cJSON *body = srv_parse_body(rq, err, false);
    if (!body) return NULL;
    static const srv_field_type types[] = {{"model", SRV_T_STRING}, {"name", SRV_T_STRING}, {"verbose", SRV_T_BOOL}};
    char msg[160];
    if (!srv_check_types(body, types, sizeof types / sizeof types[0], msg, sizeof msg)) {
        cJSON_Delete(body);
        *err = srv_reply_error(400, "%s", msg);
        return NULL;
    }
    *name = model_field(body);
    if (!*name) {
        cJSON_Delete(body);
        *err = srv_reply_error(400, "model is required");
        return NULL;
    }
    return body;
}

static srv_reply store_error(strata_status st, const char *name) {
    if (st == STRATA_ERR_NOT_FOUND && name) return srv_reply_error(404, "model '%s' not found", name);
    return srv_reply_error(srv_status_http(st), "%s", strata_last_error());
}

static void add_details(cJSON *o, const char *family, const char *psize, const char *quant) {
    cJSON *d = cJSON_AddObjectToObject(o, "details");
    cJSON_AddStringToObject(d, "parent_model", "");
    cJSON_AddStringToObject(d, "format", "gguf");
    cJSON_AddStringToObject(d, "family", family);
    cJSON *f = cJSON_AddArrayToObject(d, "families");
    cJSON_AddItemToArray(f, cJSON_CreateString(family));
    cJSON_AddStringToObject(d, "parameter_size", psize);
    cJSON_AddStringToObject(d, "quantization_level", quant);
}

srv_reply api_version(const srv_request *rq) {
    (void)rq;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "version", STRATA_SERVER_VERSION);
    return srv_reply_json(200, o);
}

/* ---- tags / v1 models ------------------------------------------------------------------ */

static srv_reply list_models(const srv_request *rq, bool openai) {
    strata_store *store = NULL;
    strata_model_entry *ents = NULL;
    size_t n = 0;
    strata_status st = srv_store_open(rq->srv, &store);
    if (st == STRATA_OK) st = strata_store_list(store, &ents, &n);
    if (st != STRATA_OK) {
        strata_store_close(store);
        return openai ? srv_reply_openai_error(500, "%s", strata_last_error()) : store_error(st, NULL);
    }
    cJSON *root = cJSON_CreateObject();
    cJSON *arr;
    if (openai) {
        cJSON_AddStringToObject(root, "object", "list");
        arr = cJSON_AddArrayToObject(root, "data");
    } else {
        arr = cJSON_AddArrayToObject(root, "models");
    }
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(arr, o);
        if (openai) {
            cJSON_AddStringToObject(o, "id", ents[i].name);
            cJSON_AddStringToObject(o, "object", "model");
            cJSON_AddNumberToObject(o, "created", (double)ents[i].modified);
            cJSON_AddStringToObject(o, "owned_by", "library");
            continue;
        }
        cJSON_AddStringToObject(o, "name", ents[i].name);
        cJSON_AddStringToObject(o, "model", ents[i].name);
        char t[64];
        sched_format_time(ents[i].modified * 1000000000LL, t, sizeof t);
        cJSON_AddStringToObject(o, "modified_at", t);
        strata_model_info *info = NULL;
        uint64_t size = ents[i].size;
        const char *family = "", *psize = "", *quant = "";
        if (strata_store_show(store, ents[i].name, &info) == STRATA_OK) {
            family = info->family;
            psize = info->parameter_size;
            quant = info->quantization;
        }
        strata_json_add_u64(o, "size", size);
        cJSON_AddStringToObject(o, "digest", hex_of(ents[i].digest));
        add_details(o, family, psize, quant);
        strata_model_info_free(info);
    }
    free(ents);
    strata_store_close(store);
    return srv_reply_json(200, root);
}

srv_reply api_tags(const srv_request *rq) { return list_models(rq, false); }
srv_reply api_openai_models(const srv_request *rq) { return list_models(rq, true); }

/* OpenAI's model object for one store model; 404 in OpenAI's error shape when unknown. */
srv_reply api_openai_model(const srv_request *rq, const char *id) {
    strata_store *store = NULL;
    strata_model_entry *ents = NULL;
    strata_model_info *info = NULL;
    size_t n = 0;
    strata_status st = srv_store_open(rq->srv, &store);
    if (st == STRATA_OK) st = strata_store_show(store, id, &info);
    if (st == STRATA_ERR_NOT_FOUND) {
        strata_store_close(store);
        return srv_reply_openai_error(404, "model \"%s\" not found", id);
    }
    if (st == STRATA_OK) st = strata_store_list(store, &ents, &n);
    strata_store_close(store);
    if (st != STRATA_OK) {
        strata_model_info_free(info);
        return srv_reply_openai_error(srv_status_http(st), "%s", strata_last_error());
    }
    int64_t modified = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(ents[i].name, info->name) == 0) modified = ents[i].modified;
    free(ents);
    strata_model_info_free(info);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "object", "model");
    cJSON_AddNumberToObject(o, "created", (double)modified);
    cJSON_AddStringToObject(o, "owned_by", "library");
    return srv_reply_json(200, o);
}

srv_reply api_ps(const srv_request *rq) {
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = sched_ps_json(rq->srv->sched);
    if (!root || !arr) {
        cJSON_Delete(root);
        cJSON_Delete(arr);
        return srv_reply_error(500, "out of memory");
    }
    cJSON_AddItemToObject(root, "models", arr);
    return srv_reply_json(200, root);
}

/* ---- show ------------------------------------------------------------------------------ */

/* Go's %#v of a parameter value, as Ollama's show prints "parameters". */
static void param_lines(const strata_modelfile *mf, char **out) {
    size_t cap = 256, len = 0;
    char *buf = malloc(cap);
    if (!buf) return;
    buf[0] = 0;
    for (size_t i = 0; mf && i < mf->n_params; i++) {
        const strata_param *p = &mf->params[i];
        size_t nv = p->type == STRATA_PARAM_STRINGS ? p->n_strs : 1;
        for (size_t k = 0; k < nv; k++) {
            char line[4096];
            if (p->type == STRATA_PARAM_INT) snprintf(line, sizeof line, "%-30s %" PRId64, p->name, p->i);
            else if (p->type == STRATA_PARAM_FLOAT) snprintf(line, sizeof line, "%-30s %g", p->name, p->f);
            else {
                cJSON *s = cJSON_CreateString(p->strs[k]);
                char *q = s ? cJSON_PrintUnformatted(s) : NULL;
                snprintf(line, sizeof line, "%-30s %s", p->name, q ? q : "\"\"");
                free(q);
                cJSON_Delete(s);
            }
            size_t n = strlen(line);
            if (len + n + 2 > cap) {
                while (len + n + 2 > cap) cap *= 2;
                char *nb = realloc(buf, cap);
                if (!nb) break;
                buf = nb;
            }
            if (len) buf[len++] = '\n';
            memcpy(buf + len, line, n + 1);
            len += n;
        }
    }
    *out = buf;
}

static cJSON *gguf_value_json(const gguf_value *v, bool verbose) {
    switch (v->type) {
    case GGUF_TYPE_UINT8:
    case GGUF_TYPE_UINT16:
    case GGUF_TYPE_UINT32:
    case GGUF_TYPE_UINT64: return cJSON_CreateNumber((double)v->u64);
    case GGUF_TYPE_INT8:
    case GGUF_TYPE_INT16:
    case GGUF_TYPE_INT32:
    case GGUF_TYPE_INT64: return cJSON_CreateNumber((double)v->i64);
    case GGUF_TYPE_FLOAT32:
    case GGUF_TYPE_FLOAT64: return cJSON_CreateNumber(v->f64);
    case GGUF_TYPE_BOOL: return cJSON_CreateBool(v->b);
    case GGUF_TYPE_STRING: {
        char *s = strndup(v->str.ptr, (size_t)v->str.len);
        cJSON *j = cJSON_CreateString(s ? s : "");
        free(s);
        return j;
    }
    case GGUF_TYPE_ARRAY: {
        /* Like Ollama, long arrays (the vocabulary) only with "verbose". */
        if (!verbose && v->arr.count > 64) return cJSON_CreateNull();
        cJSON *a = cJSON_CreateArray();
        for (uint64_t i = 0; i < v->arr.count; i++) {
            if (v->arr.elem_type == GGUF_TYPE_STRING) {
                gguf_str s = gguf_array_str(v, i);
                char *c = strndup(s.ptr, (size_t)s.len);
                cJSON_AddItemToArray(a, cJSON_CreateString(c ? c : ""));
                free(c);
            } else if (v->arr.elem_type == GGUF_TYPE_FLOAT32 || v->arr.elem_type == GGUF_TYPE_FLOAT64) {
                cJSON_AddItemToArray(a, cJSON_CreateNumber(gguf_array_f64(v, i)));
            } else {
                cJSON_AddItemToArray(a, cJSON_CreateNumber((double)gguf_array_i64(v, i)));
            }
        }
        return a;
    }
    default: return cJSON_CreateNull();
    }
}

srv_reply api_show(const srv_request *rq) {
    srv_reply err;
    const char *name;
    cJSON *body = model_body(rq, &name, &err);
    if (!body) return err;
    bool verbose = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "verbose"));
    strata_store *store = NULL;
    strata_model_info *info = NULL;
    strata_status st = srv_store_open(rq->srv, &store);
    if (st == STRATA_OK) st = strata_store_show(store, name, &info);
    if (st != STRATA_OK) {
        srv_reply r = store_error(st, name);
        strata_store_close(store);
        cJSON_Delete(body);
        return r;
    }
    cJSON *o = cJSON_CreateObject();
    char *mf_text = NULL;
    if (strata_model_info_modelfile(info, &mf_text) == STRATA_OK) cJSON_AddStringToObject(o, "modelfile", mf_text);
    free(mf_text);
    char *params = NULL;
    param_lines(info->modelfile, &params);
    cJSON_AddStringToObject(o, "parameters", params ? params : "");
    free(params);
    const char *tmpl = srv_model_template(info, NULL);
    gguf_file *f = NULL;
    bool have_gguf = gguf_open(info->model_path, GGUF_OPEN_HEADER_ONLY, &f) == STRATA_OK;
    cJSON_AddStringToObject(o, "template", tmpl ? tmpl : "{{ .Prompt }}");
    if (info->modelfile && info->modelfile->system) cJSON_AddStringToObject(o, "system", info->modelfile->system);
    if (info->modelfile && info->modelfile->n_licenses) {
        size_t total = 1;
        for (size_t i = 0; i < info->modelfile->n_licenses; i++) total += strlen(info->modelfile->licenses[i]) + 1;
        char *lic = calloc(total, 1);
        for (size_t i = 0; lic && i < info->modelfile->n_licenses; i++) {
            if (i) strcat(lic, "\n");
            strcat(lic, info->modelfile->licenses[i]);
        }
        cJSON_AddStringToObject(o, "license", lic ? lic : "");
        free(lic);
    }
    add_details(o, info->family, info->parameter_size, info->quantization);
    cJSON *mi = cJSON_AddObjectToObject(o, "model_info");
    if (have_gguf) {
        /* As Ollama: every key but general.name and the Jinja template (shown as "template"
         * where it is used), and general.parameter_count, the elements of every tensor. */
        for (int64_t i = 0; i < gguf_kv_count(f); i++) {
            const char *key = gguf_kv_key(f, i);
            if (strcmp(key, "general.name") == 0 || strcmp(key, "tokenizer.chat_template") == 0 ||
                strcmp(key, "general.parameter_count") == 0)
                continue;
            cJSON_AddItemToObject(mi, key, gguf_value_json(gguf_kv_value(f, i), verbose));
        }
        uint64_t params = 0;
        for (int64_t i = 0; i < gguf_tensor_count(f); i++) params += (uint64_t)gguf_tensor_elements(gguf_tensor_at(f, i));
        strata_json_add_u64(mi, "general.parameter_count", params);
        if (verbose) { /* Ollama's "tensors": name, type, shape */
            cJSON *ts = cJSON_AddArrayToObject(o, "tensors");
            for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
                const gguf_tensor *t = gguf_tensor_at(f, i);
                cJSON *tj = cJSON_CreateObject();
                cJSON_AddStringToObject(tj, "name", t->name);
                cJSON_AddStringToObject(tj, "type", strata_type_name(t->type));
                cJSON *shape = cJSON_AddArrayToObject(tj, "shape");
                for (uint32_t d = 0; d < t->n_dims; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->ne[d]));
                cJSON_AddItemToArray(ts, tj);
            }
        }
        gguf_close(f);
    }
    if (info->modelfile && info->modelfile->n_messages) {
        cJSON *msgs = cJSON_AddArrayToObject(o, "messages");
        for (size_t i = 0; i < info->modelfile->n_messages; i++) {
            cJSON *m = cJSON_CreateObject();
            cJSON_AddStringToObject(m, "role", info->modelfile->messages[i].role);
            cJSON_AddStringToObject(m, "content", info->modelfile->messages[i].content);
            cJSON_AddItemToArray(msgs, m);
        }
    }
    srv_caps caps;
    srv_model_caps(info, tmpl, &caps);
    srv_caps_json(&caps, cJSON_AddArrayToObject(o, "capabilities"));
    /* modified_at from the listing (the manifest's mtime). */
    strata_model_entry *ents = NULL;
    size_t n = 0;
    if (strata_store_list(store, &ents, &n) == STRATA_OK) {
        for (size_t i = 0; i < n; i++) {
            if (strcmp(ents[i].name, info->name) != 0) continue;
            char t[64];
            sched_format_time(ents[i].modified * 1000000000LL, t, sizeof t);
            cJSON_AddStringToObject(o, "modified_at", t);
        }
        free(ents);
    }
    strata_model_info_free(info);
    strata_store_close(store);
    cJSON_Delete(body);
    return srv_reply_json(200, o);
}

/* ---- copy / delete --------------------------------------------------------------------- */

srv_reply api_copy(const srv_request *rq) {
    srv_reply err;
    cJSON *body = srv_parse_body(rq, &err, false);
    if (!body) return err;
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(body, "source");
    const cJSON *dst = cJSON_GetObjectItemCaseSensitive(body, "destination");
    if ((src && !cJSON_IsString(src)) || (dst && !cJSON_IsString(dst))) {
        cJSON_Delete(body);
        return srv_reply_error(400, "source and destination must be strings");
    }
    if (!cJSON_IsString(src) || !cJSON_IsString(dst) || !*src->valuestring || !*dst->valuestring) {
        cJSON_Delete(body);
        return srv_reply_error(400, "source and destination are required");
    }
    strata_store *store = NULL;
    strata_status st = srv_store_open(rq->srv, &store);
    if (st == STRATA_OK) st = strata_store_copy(store, src->valuestring, dst->valuestring);
    strata_store_close(store);
    srv_reply r = st == STRATA_OK ? srv_reply_text(200, "application/json; charset=utf-8", "")
                                  : store_error(st, src->valuestring);
    cJSON_Delete(body);
    return r;
}

srv_reply api_delete(const srv_request *rq) {
    srv_reply err;
    const char *name;
    cJSON *body = model_body(rq, &name, &err);
    if (!body) return err;
    strata_store *store = NULL;
    strata_model_info *info = NULL;
    strata_status st = srv_store_open(rq->srv, &store);
    if (st == STRATA_OK && strata_store_show(store, name, &info) == STRATA_OK) sched_unload(rq->srv->sched, info->name);
    strata_model_info_free(info);
    if (st == STRATA_OK) st = strata_store_delete(store, name);
    strata_store_close(store);
    srv_reply r = st == STRATA_OK ? srv_reply_text(200, "application/json; charset=utf-8", "") : store_error(st, name);
    cJSON_Delete(body);
    return r;
}

/* ---- create ------------------------------------------------------------------------------ */

typedef struct {
    strata_server *srv;
    char *name;
    strata_modelfile *mf;
    char *base_dir;
    srv_stream *out;
    char last_status[128];
    char quantize[16];     /* recipe to quantize the model to ("" = none), canonical spelling */
    char quant_status[64]; /* "quantizing F16 model to Q4_K_M" */
} create_job;

static void create_job_free(void *p) {
    create_job *j = p;
    if (!j) return;
    free(j->name);
    strata_modelfile_free(j->mf);
    free(j->base_dir);
    free(j);
}

static bool create_progress(void *user, const char *status, uint64_t done, uint64_t total) {
    create_job *j = user;
    if (!j->out) return !atomic_load(&j->srv->stopping);
    /* One line per phase, and copy progress at most every 1% (Ollama streams statuses). */
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", status);
    if (total) {
        strata_json_add_u64(o, "total", total);
        strata_json_add_u64(o, "completed", done);
    }
    snprintf(j->last_status, sizeof j->last_status, "%s", status);
    return srv_stream_json_line(j->out, o);
}

static bool quantize_progress(void *user, const strata_quantize_progress *p) {
    create_job *j = user;
    return !atomic_load(&j->srv->stopping) && create_progress(j, j->quant_status, p->bytes_done, p->bytes_total);
}

static strata_status refuse_quantized(const char *what, const strata_quantize_source *info) {
    return strata_fail(STRATA_ERR_UNSUPPORTED,
                       "quantization is only supported for F16, BF16 and F32 models: %s is already quantized "
                       "(tensor %s is %s)",
                       what, info->first_quantized, info->file_type);
}

/* The store's rewrite step for "quantize": src is FROM's GGUF (a file or the base model's
 * blob), dst a temporary file in the blob folder that the store then hashes and adopts.
 * The source was checked before the reply started; it is checked again here because the
 * store resolves FROM anew (a model replaced in between must not be requantized). */
static strata_status quantize_rewrite(void *user, const char *src, const char *dst) {
    create_job *j = user;
    strata_quantize_source info;
    strata_status st = strata_quantize_inspect(src, &info);
    if (st != STRATA_OK) return st;
    if (info.quantized) return refuse_quantized(j->mf->from, &info);
    snprintf(j->quant_status, sizeof j->quant_status, "quantizing %s model to %s", info.file_type, j->quantize);
    fprintf(stderr, "strata: create %s: %s\n", j->name, j->quant_status);
    if (!create_progress(j, j->quant_status, 0, 0)) return strata_fail(STRATA_ERR_CANCELLED, "create cancelled");
    strata_quantize_params qp = strata_quantize_default_params();
    qp.progress = quantize_progress;
    qp.user = j;
    qp.cancel = j->out ? srv_stream_cancel_flag(j->out) : &j->srv->stopping;
    return strata_quantize_file(src, dst, j->quantize, &qp, NULL);
}

static strata_status create_run(create_job *j) {
    strata_store *store = NULL;
    strata_status st = srv_store_open(j->srv, &store);
    const strata_store_create_params cp = {
        .progress = create_progress, .user = j, .rewrite = j->quantize[0] ? quantize_rewrite : NULL, .rewrite_user = j};
    if (st == STRATA_OK) st = strata_store_create_ex(store, j->name, j->mf, j->base_dir, &cp);
    strata_store_close(store);
    if (st == STRATA_OK) fprintf(stderr, "strata: created %s\n", j->name);
    return st;
}

static void create_stream(void *p, srv_stream *st) {
    create_job *j = p;
    j->out = st;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "reading model metadata");
    srv_stream_json_line(st, o);
    strata_status s = create_run(j);
    o = cJSON_CreateObject();
    if (s == STRATA_OK) cJSON_AddStringToObject(o, "status", "success");
    else cJSON_AddStringToObject(o, "error", strata_last_error());
    srv_stream_json_line(st, o);
}

static bool looks_like_path(const char *from) {
    size_t n = strlen(from);
    return from[0] == '/' || from[0] == '~' || strncmp(from, "./", 2) == 0 || strncmp(from, "../", 3) == 0 ||
           (n > 5 && strcasecmp(from + n - 5, ".gguf") == 0);
}

static void from_path(const char *from, const char *base_dir, char *path, size_t cap) {
    if (from[0] == '/') snprintf(path, cap, "%s", from);
    else if (from[0] == '~') snprintf(path, cap, "%s%s", getenv("HOME") ? getenv("HOME") : "", from + 1);
    else snprintf(path, cap, "%s/%s", base_dir ? base_dir : ".", from);
}

/* FROM must name a readable file or a model in the store: checked before streaming so that a
 * bad Modelfile gets its 4xx. */
static srv_reply check_from(const srv_request *rq, const char *from, const char *base_dir, bool *ok) {
    *ok = false;
    char path[4096];
    from_path(from, base_dir, path, sizeof path);
    struct stat sb;
    char what[600];
    snprintf(what, sizeof what, "FROM %s", from);
    if (looks_like_path(from)) {
        /* A regular file that starts like a GGUF: a FIFO, a folder or a device is refused
         * here, before anything waits on it, and the message never quotes the file. */
        strata_status cs = strata_store_check_source(path, what);
        if (cs != STRATA_OK) return srv_reply_error(cs == STRATA_ERR_IO ? 500 : 400, "%s", strata_last_error());
        *ok = true;
        return (srv_reply){0, NULL, false};
    }
    strata_store *store = NULL;
    strata_manifest m = {0};
    strata_status st = srv_store_open(rq->srv, &store);
    if (st == STRATA_OK) st = strata_store_read_manifest(store, from, &m);
    strata_manifest_free(&m);
    strata_store_close(store);
    if (st == STRATA_OK) {
        *ok = true;
        return (srv_reply){0, NULL, false};
    }
    if (stat(path, &sb) == 0) {
        strata_status cs = strata_store_check_source(path, what);
        if (cs != STRATA_OK) return srv_reply_error(cs == STRATA_ERR_IO ? 500 : 400, "%s", strata_last_error());
        *ok = true;
        return (srv_reply){0, NULL, false};
    }
    if (st == STRATA_ERR_NOT_FOUND || st == STRATA_ERR_INVALID)
        return srv_reply_error(400, "FROM %s: no model of that name and no such file", from);
    return srv_reply_error(500, "%s", strata_last_error());
}

/* The GGUF that FROM names, resolved as the store resolves it: a model of that name (its
 * model blob) unless FROM looks like a path, else a file. */
static strata_status source_gguf(const srv_request *rq, const char *from, const char *base_dir, char *path, size_t cap) {
    if (!looks_like_path(from)) {
        strata_store *store = NULL;
        strata_manifest m = {0};
        strata_status st = srv_store_open(rq->srv, &store);
        if (st == STRATA_OK) st = strata_store_read_manifest(store, from, &m);
        const char *digest = NULL;
        for (size_t i = 0; st == STRATA_OK && i < m.n_layers; i++)
            if (strcmp(m.layers[i].media_type, STRATA_MEDIA_MODEL) == 0) digest = m.layers[i].digest;
        if (st == STRATA_OK && !digest) st = strata_fail(STRATA_ERR_FORMAT, "model %s has no model layer", from);
        if (st == STRATA_OK) st = strata_store_blob_path(store, digest, path, cap);
        strata_manifest_free(&m);
        strata_store_close(store);
        if (st != STRATA_ERR_NOT_FOUND && st != STRATA_ERR_INVALID) return st;
    }
    from_path(from, base_dir, path, cap);
    return STRATA_OK;
}

/* "quantize" as Ollama checks it before anything is written: the source must be F32, F16 or
 * BF16 (400 otherwise); quantizing to the type the source already has is nothing to do. */
static srv_reply check_quantize_source(const srv_request *rq, create_job *j, bool *ok) {
    *ok = false;
    char path[4200];
    strata_quantize_source info;
    strata_status st = source_gguf(rq, j->mf->from, j->base_dir, path, sizeof path);
    if (st != STRATA_OK) return srv_reply_error(srv_status_http(st), "%s", strata_last_error());
    if ((st = strata_quantize_inspect(path, &info)) != STRATA_OK)
        return srv_reply_error(400, "FROM %s: not a usable GGUF file: %s", j->mf->from, strata_last_error());
    if (info.quantized) {
        refuse_quantized(j->mf->from, &info);
        return srv_reply_error(400, "%s", strata_last_error());
    }
    if (strcasecmp(info.file_type, j->quantize) == 0) j->quantize[0] = 0;
    *ok = true;
    return (srv_reply){0, NULL, false};
}

srv_reply api_create(const srv_request *rq) {
    srv_reply reply;
    cJSON *body = srv_parse_body(rq, &reply, false);
    if (!body) return reply;
    create_job *j = calloc(1, sizeof *j);
    if (!j) {
        cJSON_Delete(body);
        return srv_reply_error(500, "out of memory");
    }
    j->srv = rq->srv;
    static const srv_field_type types[] = {
        {"model", SRV_T_STRING},    {"name", SRV_T_STRING},       {"from", SRV_T_STRING},
        {"files", SRV_T_OBJECT},    {"template", SRV_T_STRING},   {"system", SRV_T_STRING},
        {"parameters", SRV_T_OBJECT}, {"messages", SRV_T_ARRAY},  {"license", SRV_T_STRING | SRV_T_ARRAY},
        {"modelfile", SRV_T_STRING}, {"path", SRV_T_STRING},      {"quantize", SRV_T_STRING},
        {"stream", SRV_T_BOOL}};
    char type_msg[160];
    const char *name = model_field(body);
    strata_status st = STRATA_OK;
    strata_model_name parsed;
    if (!srv_check_types(body, types, sizeof types / sizeof types[0], type_msg, sizeof type_msg)) {
        reply = srv_reply_error(400, "%s", type_msg);
        goto out;
    }
    if (!name) {
        reply = srv_reply_error(400, "model is required");
        goto out;
    }
    if (strata_model_name_parse(name, &parsed) != STRATA_OK) {
        reply = srv_reply_error(400, "invalid model name: %s", strata_last_error());
        goto out;
    }
    j->name = strdup(name);
    const cJSON *quantize = cJSON_GetObjectItemCaseSensitive(body, "quantize");
    if (cJSON_IsString(quantize) && *quantize->valuestring &&
        !strata_quantize_type_known(quantize->valuestring, j->quantize, sizeof j->quantize)) {
        reply = srv_reply_error(400, "unsupported quantization type %s - supported types are %s", quantize->valuestring,
                                strata_quantize_type_names());
        goto out;
    }
    if (cJSON_GetObjectItemCaseSensitive(body, "adapters")) {
        reply = srv_reply_error(400, "adapters are not supported");
        goto out;
    }
    const cJSON *path = cJSON_GetObjectItemCaseSensitive(body, "path");
    if (cJSON_IsString(path) && *path->valuestring) {
        char *copy = strdup(path->valuestring);
        if (copy) j->base_dir = strdup(dirname(copy));
        free(copy);
    }
    const cJSON *modelfile = cJSON_GetObjectItemCaseSensitive(body, "modelfile");
    if (cJSON_IsString(modelfile) && *modelfile->valuestring) {
        st = strata_modelfile_parse(modelfile->valuestring, strlen(modelfile->valuestring), &j->mf);
        if (st != STRATA_OK) {
            reply = srv_reply_error(400, "%s", strata_last_error());
            goto out;
        }
    } else {
        j->mf = strata_modelfile_new();
        if (!j->mf) {
            reply = srv_reply_error(500, "out of memory");
            goto out;
        }
    }
    /* Ollama's current fields, over (or instead of) a legacy Modelfile. */
    const cJSON *from = cJSON_GetObjectItemCaseSensitive(body, "from");
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(body, "files");
    if (cJSON_IsString(from) && *from->valuestring) st = strata_modelfile_set_string(&j->mf->from, from->valuestring);
    if (st == STRATA_OK && cJSON_IsObject(files)) {
        /* {"file.gguf": "sha256:..."}: blobs uploaded with POST /api/blobs/:digest. */
        const cJSON *gguf = NULL;
        for (const cJSON *f = files->child; f; f = f->next)
            if (cJSON_IsString(f) && (!gguf || (strlen(f->string) > 5 && !strcasecmp(f->string + strlen(f->string) - 5, ".gguf"))))
                gguf = f;
        if (!gguf) {
            reply = srv_reply_error(400, "files: no GGUF file given");
            goto out;
        }
        strata_store *store = NULL;
        char blob[4200];
        st = srv_store_open(rq->srv, &store);
        if (st == STRATA_OK && (!strata_digest_valid(gguf->valuestring) || !strata_store_has_blob(store, gguf->valuestring))) {
            strata_store_close(store);
            reply = srv_reply_error(400, "files: blob %s not found (upload it with POST /api/blobs/%s)", gguf->valuestring,
                                    gguf->valuestring);
            goto out;
        }
        if (st == STRATA_OK) st = strata_store_blob_path(store, gguf->valuestring, blob, sizeof blob);
        strata_store_close(store);
        if (st == STRATA_OK) st = strata_modelfile_set_string(&j->mf->from, blob);
    }
    const cJSON *v;
    /* With a legacy Modelfile, list-valued fields sent beside it (as clients that send both
     * forms do) would be added twice: the Modelfile's own lists win. */
    bool have_mf = cJSON_IsString(modelfile) && *modelfile->valuestring;
    if (st == STRATA_OK && cJSON_IsString(v = cJSON_GetObjectItemCaseSensitive(body, "template")))
        st = strata_modelfile_set_string(&j->mf->template_text, v->valuestring);
    if (st == STRATA_OK && cJSON_IsString(v = cJSON_GetObjectItemCaseSensitive(body, "system")))
        st = strata_modelfile_set_string(&j->mf->system, v->valuestring);
    if (st == STRATA_OK && !have_mf && (v = cJSON_GetObjectItemCaseSensitive(body, "license"))) {
        if (cJSON_IsString(v)) st = strata_modelfile_add_license(j->mf, v->valuestring);
        else if (cJSON_IsArray(v))
            for (const cJSON *l = v->child; st == STRATA_OK && l; l = l->next)
                if (cJSON_IsString(l)) st = strata_modelfile_add_license(j->mf, l->valuestring);
    }
    if (st == STRATA_OK && !have_mf && cJSON_IsObject(v = cJSON_GetObjectItemCaseSensitive(body, "parameters"))) {
        char *text = cJSON_PrintUnformatted(v);
        st = text ? strata_modelfile_params_from_json(j->mf, text, strlen(text)) : strata_fail(STRATA_ERR_NOMEM, "out of memory");
        free(text);
    }
    if (st == STRATA_OK && !have_mf && cJSON_IsArray(v = cJSON_GetObjectItemCaseSensitive(body, "messages"))) {
        char *text = cJSON_PrintUnformatted(v);
        st = text ? strata_modelfile_messages_from_json(j->mf, text, strlen(text)) : strata_fail(STRATA_ERR_NOMEM, "out of memory");
        free(text);
    }
    if (st != STRATA_OK) {
        reply = srv_reply_error(srv_status_http(st), "%s", strata_last_error());
        goto out;
    }
    if (!j->mf->from) {
        reply = srv_reply_error(400, "neither 'from', 'files' nor a Modelfile FROM was given");
        goto out;
    }
    bool ok;
    reply = check_from(rq, j->mf->from, j->base_dir, &ok);
    if (!ok) goto out;
    if (j->quantize[0]) {
        reply = check_quantize_source(rq, j, &ok);
        if (!ok) goto out;
    }
    if (!cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(body, "stream"))) {
        reply = srv_reply_stream(rq->srv, rq->conn, "application/x-ndjson", create_stream, j, create_job_free);
        j = NULL;
        goto out;
    }
    st = create_run(j);
    if (st != STRATA_OK) {
        reply = srv_reply_error(srv_status_http(st), "%s", strata_last_error());
        goto out;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "success");
    reply = srv_reply_json(200, o);
out:
    create_job_free(j);
    cJSON_Delete(body);
    return reply;
}

/* ---- blobs ------------------------------------------------------------------------------- */

srv_reply api_blob_head(const srv_request *rq, const char *digest) {
    if (!strata_digest_valid(digest)) return srv_reply_error(400, "invalid digest '%s'", digest);
    strata_store *store = NULL;
    strata_status st = srv_store_open(rq->srv, &store);
    bool has = st == STRATA_OK && strata_store_has_blob(store, digest);
    /* A client that finds the blob here will create from it next: hold it until then, so
     * that a delete in between does not collect it. */
    if (has) strata_store_hold_blob(store, digest);
    strata_store_close(store);
    if (st != STRATA_OK) return srv_reply_error(500, "%s", strata_last_error());
    return has ? srv_reply_text(200, "text/plain", "") : srv_reply_error(404, "blob %s not found", digest);
}

srv_reply api_blob_upload(const srv_request *rq, const char *digest, const char *path) {
    if (!strata_digest_valid(digest)) return srv_reply_error(400, "invalid digest '%s'", digest);
    strata_store *store = NULL;
    char got[STRATA_DIGEST_SIZE];
    uint64_t size = 0;
    strata_status st = srv_store_open(rq->srv, &store);
    if (st == STRATA_OK && strata_store_has_blob(store, digest)) {
        strata_store_hold_blob(store, digest);
        strata_store_close(store);
        return srv_reply_text(200, "text/plain", "");
    }
    /* Hashed in place and renamed to its digest only when it matches the name asked for
     * (and held for the create to come); a mismatch leaves nothing in the store. */
    if (st == STRATA_OK) st = strata_store_adopt_blob(store, path, digest, got, &size);
    strata_store_close(store);
    if (st == STRATA_ERR_INVALID) return srv_reply_error(400, "%s", strata_last_error());
    if (st != STRATA_OK) return srv_reply_error(500, "%s", strata_last_error());
    return srv_reply_text(201, "text/plain", "");
}

/* ---- pull ---------------------------------------------------------------------------------- */

/* Strata has no registry: "pull" fetches a GGUF file from an http(s) URL into the store.
 * {"model": "https://host/path/name.gguf"} names the model after the file ("name:latest");
 * {"model": "name", "url": "https://..."} names it explicitly. The download goes to a
 * temporary file beside the blobs, is imported (hashed) as a blob, then a manifest is written
 * (strata_store_create): a pull that fails or is killed leaves no model and no partial blob. */
typedef struct {
    strata_server *srv;
    char *name, *url;
    srv_stream *out;
    struct MHD_Connection *conn; /* not streamed: polled, a client that leaves cancels */
    uint64_t last_sent;
    char tmp[4200];
} pull_job;

static void pull_job_free(void *p) {
    pull_job *j = p;
    if (!j) return;
    free(j->name);
    free(j->url);
    free(j);
}

static bool pull_status(pull_job *j, const char *status, uint64_t total, uint64_t completed, bool with_counts) {
    if (!j->out) return !atomic_load(&j->srv->stopping);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", status);
    if (with_counts) {
        strata_json_add_u64(o, "total", total);
        strata_json_add_u64(o, "completed", completed);
    }
    return srv_stream_json_line(j->out, o);
}

static int pull_xfer(void *p, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
    (void)ultotal;
    (void)ulnow;
    pull_job *j = p;
    if (atomic_load(&j->srv->stopping)) return 1;
    if (j->out && atomic_load(srv_stream_cancel_flag(j->out))) return 1;
    if (j->conn && srv_conn_gone(j->conn)) return 1;
    if (!j->out) return 0;
    uint64_t now = (uint64_t)dlnow;
    if (dltotal > 0 && (now - j->last_sent >= (uint64_t)dltotal / 100 || now == (uint64_t)dltotal) && now != j->last_sent) {
        j->last_sent = now;
        if (!pull_status(j, "pulling model", (uint64_t)dltotal, now, true)) return 1;
    }
    return 0;
}

static bool import_progress(void *user, const char *status, uint64_t done, uint64_t total) {
    pull_job *j = user;
    (void)done;
    (void)total;
    (void)status;
    return !j->out || !atomic_load(srv_stream_cancel_flag(j->out));
}

static strata_status pull_run(pull_job *j) {
    strata_store *store = NULL;
    strata_status st = srv_store_open(j->srv, &store);
    if (st != STRATA_OK) return st;
    /* Owned by this process: no other request's cleanup removes it while we download. */
    int fd = strata_store_temp_open(store, j->tmp, sizeof j->tmp);
    if (fd < 0) {
        strata_store_close(store);
        return strata_fail(STRATA_ERR_IO, "pull %s: cannot create a temporary file in the model store", j->name);
    }
    FILE *f = fdopen(fd, "wb");
    CURL *c = curl_easy_init();
    if (!f || !c) {
        if (f) fclose(f);
        else close(fd);
        if (c) curl_easy_cleanup(c);
        unlink(j->tmp);
        strata_store_close(store);
        return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    }
    pull_status(j, "pulling manifest", 0, 0, false);
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, j->url);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, pull_xfer);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, j);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    /* An origin that stops sending fails the pull instead of holding it forever. */
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)j->srv->pull_stall_s);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)j->srv->pull_stall_s);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_cleanup(c);
    bool write_ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    fclose(f);
    if (rc != CURLE_OK || !write_ok) {
        unlink(j->tmp);
        strata_store_close(store);
        if (rc == CURLE_OPERATION_TIMEDOUT)
            return strata_fail(STRATA_ERR_IO, "pull %s: the download stalled (no data for %u s; STRATA_PULL_STALL_TIMEOUT)",
                               j->url, j->srv->pull_stall_s);
        if (rc == CURLE_ABORTED_BY_CALLBACK) return strata_fail(STRATA_ERR_CANCELLED, "pull %s: cancelled", j->url);
        return strata_fail(STRATA_ERR_IO, "pull %s: %s", j->url,
                           rc != CURLE_OK ? (errbuf[0] ? errbuf : curl_easy_strerror(rc)) : "cannot write the download");
    }
    pull_status(j, "verifying sha256 digest", 0, 0, false);
    strata_modelfile *mf = strata_modelfile_new();
    st = mf ? strata_modelfile_set_string(&mf->from, j->tmp) : strata_fail(STRATA_ERR_NOMEM, "out of memory");
    if (st == STRATA_OK) {
        pull_status(j, "writing manifest", 0, 0, false);
        st = strata_store_create(store, j->name, mf, NULL, import_progress, j);
    }
    strata_modelfile_free(mf);
    unlink(j->tmp);
    strata_store_close(store);
    if (st == STRATA_OK) {
        fprintf(stderr, "strata: pulled %s from %s\n", j->name, j->url);
    } else {
        /* The message names the temporary file: say "the download" instead (no server paths). */
        char msg[1024], out[1200];
        snprintf(msg, sizeof msg, "%s", strata_last_error());
        size_t o = 0, tl = strlen(j->tmp);
        for (const char *p = msg; *p && o + 16 < sizeof out;) {
            if (tl && strncmp(p, j->tmp, tl) == 0) {
                o += (size_t)snprintf(out + o, sizeof out - o, "the download");
                p += tl;
            } else {
                out[o++] = *p++;
            }
        }
        out[o] = 0;
        st = strata_fail(st, "pull %s: %s", j->url, strncmp(out, "FROM ", 5) == 0 ? out + 5 : out);
    }
    return st;
}

static void pull_stream(void *p, srv_stream *st) {
    pull_job *j = p;
    j->out = st;
    strata_status s = pull_run(j);
    cJSON *o = cJSON_CreateObject();
    if (s == STRATA_OK) cJSON_AddStringToObject(o, "status", "success");
    else cJSON_AddStringToObject(o, "error", strata_last_error());
    srv_stream_json_line(st, o);
}

srv_reply api_pull(const srv_request *rq) {
    srv_reply reply;
    cJSON *body = srv_parse_body(rq, &reply, false);
    if (!body) return reply;
    static const srv_field_type types[] = {{"model", SRV_T_STRING}, {"name", SRV_T_STRING}, {"url", SRV_T_STRING},
                                           {"stream", SRV_T_BOOL},   {"insecure", SRV_T_BOOL}};
    char type_msg[160];
    if (!srv_check_types(body, types, sizeof types / sizeof types[0], type_msg, sizeof type_msg)) {
        cJSON_Delete(body);
        return srv_reply_error(400, "%s", type_msg);
    }
    const char *model = model_field(body);
    const cJSON *url = cJSON_GetObjectItemCaseSensitive(body, "url");
    pull_job *j = calloc(1, sizeof *j);
    if (!j) {
        cJSON_Delete(body);
        return srv_reply_error(500, "out of memory");
    }
    j->srv = rq->srv;
    if (cJSON_IsString(url) && *url->valuestring) {
        j->url = strdup(url->valuestring);
        if (model) j->name = strdup(model);
    } else if (model && (strncmp(model, "http://", 7) == 0 || strncmp(model, "https://", 8) == 0)) {
        j->url = strdup(model);
        /* name: the file's base name without .gguf, lowercased, other characters as '-' */
        const char *base = strrchr(model, '/');
        base = base ? base + 1 : model;
        char name[81];
        size_t n = 0;
        for (const char *p = base; *p && *p != '?' && *p != '#' && n < sizeof name - 1; p++) name[n++] = *p;
        name[n] = 0;
        if (n > 5 && strcasecmp(name + n - 5, ".gguf") == 0) name[n -= 5] = 0;
        for (size_t i = 0; i < n; i++) {
            char ch = name[i];
            bool okc = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                       ch == '_' || ch == '-';
            if (!okc) name[i] = '-';
        }
        j->name = strdup(name);
    } else {
        /* The reply is built before the body (which holds `model`) is freed. */
        reply = model ? srv_reply_error(400,
                                        "pull: '%s' is not an http(s) URL of a GGUF file (Strata has no registry; "
                                        "pass the URL as \"model\", or a name with \"url\")",
                                        model)
                      : srv_reply_error(400, "model is required");
        pull_job_free(j);
        cJSON_Delete(body);
        return reply;
    }
    strata_model_name parsed;
    if (!j->url || !j->name || strata_model_name_parse(j->name, &parsed) != STRATA_OK) {
        reply = srv_reply_error(400, "pull: cannot name a model '%s': %s", j->name ? j->name : "",
                                j->name ? strata_last_error() : "out of memory");
        pull_job_free(j);
        cJSON_Delete(body);
        return reply;
    }
    if (!cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(body, "stream"))) {
        cJSON_Delete(body);
        return srv_reply_stream(rq->srv, rq->conn, "application/x-ndjson", pull_stream, j, pull_job_free);
    }
    cJSON_Delete(body);
    j->conn = rq->conn;
    strata_status st = pull_run(j);
    pull_job_free(j);
    if (st != STRATA_OK) return srv_reply_error(srv_status_http(st) == 500 ? 500 : 400, "%s", strata_last_error());
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "success");
    return srv_reply_json(200, o);
}

/* Embeddings (/api/embed, /api/embeddings) are in api_embed.c. */
