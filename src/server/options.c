/* Model options from a Modelfile's PARAMETERs and a request's "options" object, in Ollama's
 * names. Request options override the Modelfile's, which override the engine's defaults. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "server/internal.h"

typedef enum { O_F32, O_I32, O_I64, O_STOP, O_IGNORED_NUM, O_IGNORED_BOOL } opt_kind;

typedef struct {
    const char *name;
    opt_kind kind;
    size_t offset; /* in srv_options */
} opt_def;

#define GEN(f) offsetof(srv_options, gen.f)
#define SMP(f) offsetof(srv_options, gen.sampler.f)
#define LD(f) offsetof(srv_options, load.f)

static const opt_def opts[] = {
    {"temperature", O_F32, SMP(temperature)},
    {"top_k", O_I32, SMP(top_k)},
    {"top_p", O_F32, SMP(top_p)},
    {"min_p", O_F32, SMP(min_p)},
    {"typical_p", O_F32, SMP(typical_p)},
    {"repeat_penalty", O_F32, SMP(repeat_penalty)},
    {"repeat_last_n", O_I32, SMP(repeat_last_n)},
    {"presence_penalty", O_F32, SMP(presence_penalty)},
    {"frequency_penalty", O_F32, SMP(frequency_penalty)},
    {"seed", O_I64, SMP(seed)},
    {"stop", O_STOP, 0},
    {"num_predict", O_I32, GEN(num_predict)},
    {"num_keep", O_I32, GEN(num_keep)},
    {"num_ctx", O_I32, LD(num_ctx)},
    {"num_batch", O_I32, LD(num_batch)},
    {"num_gpu", O_I32, LD(num_gpu)},
    {"main_gpu", O_I32, LD(main_gpu)},
    {"num_thread", O_I32, LD(num_thread)},
    /* Ollama options the engine has no use for: accepted and ignored, as Ollama ignores
     * options a runner does not support. */
    {"mirostat", O_IGNORED_NUM, 0},
    {"mirostat_tau", O_IGNORED_NUM, 0},
    {"mirostat_eta", O_IGNORED_NUM, 0},
    {"tfs_z", O_IGNORED_NUM, 0},
    {"penalize_newline", O_IGNORED_BOOL, 0},
    {"numa", O_IGNORED_BOOL, 0},
    {"low_vram", O_IGNORED_BOOL, 0},
    {"vocab_only", O_IGNORED_BOOL, 0},
    {"use_mmap", O_IGNORED_BOOL, 0},
    {"use_mlock", O_IGNORED_BOOL, 0},
};

void srv_options_init(srv_options *o) {
    memset(o, 0, sizeof *o);
    o->load = sched_default_load_opts();
    o->gen = strata_gen_default_params();
}

void srv_options_clear_stops(srv_options *o) {
    for (int i = 0; i < o->gen.n_stop; i++) free(o->stops[i]);
    o->gen.n_stop = 0;
}

void srv_options_free(srv_options *o) { srv_options_clear_stops(o); }

strata_status srv_options_add_stop(srv_options *o, const char *stop) {
    if (!stop || !*stop || o->gen.n_stop >= STRATA_MAX_STOP) return STRATA_OK;
    char *c = strdup(stop);
    if (!c) return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    o->stops[o->gen.n_stop] = c;
    o->gen.stop[o->gen.n_stop++] = c;
    return STRATA_OK;
}

static const opt_def *find_opt(const char *name) {
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        if (strcmp(opts[i].name, name) == 0) return &opts[i];
    return NULL;
}

static strata_status set_number(srv_options *o, const opt_def *d, double v) {
    void *field = (char *)o + d->offset;
    if (!isfinite(v)) return strata_fail(STRATA_ERR_INVALID, "option %s: not a finite number", d->name);
    switch (d->kind) {
    case O_F32: *(float *)field = (float)v; break;
    case O_I32:
        if (v != floor(v)) return strata_fail(STRATA_ERR_INVALID, "option %s: %g is not an integer", d->name, v);
        if (v > INT32_MAX)
            return strata_fail(STRATA_ERR_INVALID, "option %s: %.0f is too large (at most %d)", d->name, v, INT32_MAX);
        if (v < INT32_MIN)
            return strata_fail(STRATA_ERR_INVALID, "option %s: %.0f is too small (at least %d)", d->name, v, INT32_MIN);
        *(int32_t *)field = (int32_t)v;
        break;
    case O_I64:
        if (v != floor(v)) return strata_fail(STRATA_ERR_INVALID, "option %s: %g is not an integer", d->name, v);
        if (fabs(v) > 9.2e18) return strata_fail(STRATA_ERR_INVALID, "option %s: %g is too large", d->name, v);
        *(int64_t *)field = (int64_t)v;
        break;
    default: break;
    }
    return STRATA_OK;
}

strata_status srv_options_apply_modelfile(srv_options *o, const strata_modelfile *mf) {
    if (!mf) return STRATA_OK;
    for (size_t i = 0; i < mf->n_params; i++) {
        const strata_param *p = &mf->params[i];
        const opt_def *d = find_opt(p->name);
        if (!d) continue; /* a parameter the server does not use (kv_type, ...) */
        if (d->kind == O_STOP) {
            srv_options_clear_stops(o);
            for (size_t k = 0; k < p->n_strs; k++) {
                strata_status st = srv_options_add_stop(o, p->strs[k]);
                if (st != STRATA_OK) return st;
            }
            continue;
        }
        if (d->kind == O_IGNORED_NUM || d->kind == O_IGNORED_BOOL) continue;
        double v = p->type == STRATA_PARAM_INT ? (double)p->i : p->f;
        strata_status st = set_number(o, d, v);
        if (st != STRATA_OK) return st;
    }
    return STRATA_OK;
}

strata_status srv_options_apply_json(srv_options *o, const cJSON *options) {
    if (!options || cJSON_IsNull(options)) return STRATA_OK;
    if (!cJSON_IsObject(options)) return strata_fail(STRATA_ERR_INVALID, "\"options\" must be an object");
    for (const cJSON *it = options->child; it; it = it->next) {
        const opt_def *d = find_opt(it->string);
        if (!d) continue; /* Ollama logs and ignores unknown options */
        if (cJSON_IsNull(it)) continue;
        switch (d->kind) {
        case O_STOP:
            srv_options_clear_stops(o);
            if (cJSON_IsString(it)) {
                strata_status st = srv_options_add_stop(o, it->valuestring);
                if (st != STRATA_OK) return st;
            } else if (cJSON_IsArray(it)) {
                for (const cJSON *s = it->child; s; s = s->next) {
                    if (!cJSON_IsString(s))
                        return strata_fail(STRATA_ERR_INVALID, "option stop: every entry must be a string");
                    strata_status st = srv_options_add_stop(o, s->valuestring);
                    if (st != STRATA_OK) return st;
                }
            } else {
                return strata_fail(STRATA_ERR_INVALID, "option stop: must be a string or an array of strings");
            }
            break;
        case O_IGNORED_BOOL:
            if (!cJSON_IsBool(it)) return strata_fail(STRATA_ERR_INVALID, "option %s: must be true or false", d->name);
            break;
        case O_IGNORED_NUM:
            if (!cJSON_IsNumber(it)) return strata_fail(STRATA_ERR_INVALID, "option %s: must be a number", d->name);
            break;
        default: {
            if (!cJSON_IsNumber(it)) return strata_fail(STRATA_ERR_INVALID, "option %s: must be a number", d->name);
            strata_status st = set_number(o, d, it->valuedouble);
            if (st != STRATA_OK) return st;
        }
        }
    }
    return STRATA_OK;
}
