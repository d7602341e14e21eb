/* The model-option table; see run_options.h. */
#include "core/env.h"
#include "cli/run_options.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/util.h"

typedef enum { OPT_FLOAT, OPT_I32, OPT_I64, OPT_KV_TYPE, OPT_STOP, OPT_FLAG, OPT_STR, OPT_SPLIT, OPT_SPREAD, OPT_FEWEST } opt_kind;

typedef struct {
    const char *name;
    opt_kind kind;
    size_t offset; /* in run_options */
} opt_def;

#define GEN(f) offsetof(run_options, gen.f)
#define SMP(f) offsetof(run_options, gen.sampler.f)
#define MDL(f) offsetof(run_options, model.f)

static const opt_def opts[] = {
    {"temperature", OPT_FLOAT, SMP(temperature)},
    {"top_k", OPT_I32, SMP(top_k)},
    {"top_p", OPT_FLOAT, SMP(top_p)},
    {"min_p", OPT_FLOAT, SMP(min_p)},
    {"typical_p", OPT_FLOAT, SMP(typical_p)},
    {"repeat_penalty", OPT_FLOAT, SMP(repeat_penalty)},
    {"repeat_last_n", OPT_I32, SMP(repeat_last_n)},
    {"presence_penalty", OPT_FLOAT, SMP(presence_penalty)},
    {"frequency_penalty", OPT_FLOAT, SMP(frequency_penalty)},
    {"seed", OPT_I64, SMP(seed)},
    {"stop", OPT_STOP, 0},
    {"num_predict", OPT_I32, GEN(num_predict)},
    {"num_keep", OPT_I32, GEN(num_keep)},
    {"num_ctx", OPT_I32, MDL(n_ctx)},
    {"num_batch", OPT_I32, MDL(n_batch)},
    {"num_thread", OPT_I32, MDL(n_threads)},
    {"kv_type", OPT_KV_TYPE, MDL(kv_type)},
    {"verbose", OPT_FLAG, offsetof(run_options, verbose)},
    {"devices", OPT_STR, offsetof(run_options, devices)},
    {"reserve", OPT_STR, offsetof(run_options, reserve)},
    {"num_gpu", OPT_I32, offsetof(run_options, plan.num_gpu)},
    {"main_gpu", OPT_I32, offsetof(run_options, plan.main_gpu)},
    {"tensor_split", OPT_SPLIT, 0},
    {"spread", OPT_SPREAD, 0},
    {"fewest", OPT_FEWEST, 0},
    {"num_parallel", OPT_I32, offsetof(run_options, num_parallel)},
    {"num_cpu_moe", OPT_I32, offsetof(run_options, num_cpu_moe)},
};

void run_options_init(run_options *o) {
    memset(o, 0, sizeof *o);
    o->model = model_default_params();
    o->gen = strata_gen_default_params();
    o->plan = plan_default_options();
    o->num_parallel = 1;
    o->num_cpu_moe = -1;
}

strata_status run_options_load(const run_options *o, const char *file, bool need_vocab, backend_inventory **inv,
                               strata_engine **e) {
    *inv = NULL;
    *e = NULL;
    const char *spec = o->devices ? o->devices : getenv("STRATA_DEVICES");
    strata_status st = backend_inventory_from_spec(spec, inv);
    if (st != STRATA_OK) return st;
    uint64_t reserve[BACKEND_MAX_DEVICES];
    st = plan_reserve_parse(*inv, strata_getenv("STRATA_GPU_RESERVE"), o->reserve, reserve);
    if (st == STRATA_OK) {
        strata_load_params lp = strata_load_default_params();
        lp.model = o->model;
        lp.num_parallel = o->num_parallel;
        lp.plan = o->plan;
        lp.reserve = reserve;
        lp.skip_vocab = !need_vocab;
        lp.num_cpu_moe = o->num_cpu_moe;
        st = strata_engine_load_planned(file, &lp, *inv, e);
    }
    if (st != STRATA_OK) {
        backend_inventory_free(*inv);
        *inv = NULL;
        return st;
    }
    if (o->verbose) strata_engine_print_report(*e, stderr);
    return STRATA_OK;
}

int run_options_parse(run_options *o, int argc, char **argv) {
    const char *a = argv[0];
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        const opt_def *d = &opts[i];
        if (!cli_opt_is(a, d->name)) continue;
        void *field = (char *)o + d->offset;
        if (d->kind == OPT_FLAG) {
            *(bool *)field = true;
            return 1;
        }
        if (d->kind == OPT_SPREAD || d->kind == OPT_FEWEST) {
            o->plan.mode = d->kind == OPT_SPREAD ? PLAN_SPREAD : PLAN_FEWEST;
            return 1;
        }
        if (argc < 2) {
            cli_error("option --%s needs a value", d->name);
            return -1;
        }
        const char *v = argv[1];
        char *end = NULL;
        errno = 0;
        switch (d->kind) {
        case OPT_FLOAT: {
            double x = strtod(v, &end);
            if (end == v || *end || errno || !isfinite(x)) goto bad;
            *(float *)field = (float)x;
            break;
        }
        case OPT_I32: {
            long x = strtol(v, &end, 10);
            if (end == v || *end || errno || x < INT32_MIN || x > INT32_MAX) goto bad;
            *(int32_t *)field = (int32_t)x;
            break;
        }
        case OPT_I64: {
            long long x = strtoll(v, &end, 10);
            if (end == v || *end || errno) goto bad;
            *(int64_t *)field = x;
            break;
        }
        case OPT_KV_TYPE: {
            strata_type t;
            if (!strata_type_from_name(v, &t) ||
                (t != STRATA_TYPE_F16 && t != STRATA_TYPE_F32 && t != STRATA_TYPE_Q8_0)) {
                cli_error("option --kv_type: '%s' is not one of f16, f32, q8_0", v);
                return -1;
            }
            *(strata_type *)field = t;
            break;
        }
        case OPT_STOP:
            if (o->gen.n_stop == STRATA_MAX_STOP) {
                cli_error("at most %d --stop sequences", STRATA_MAX_STOP);
                return -1;
            }
            if (!*v) {
                cli_error("option --stop: empty stop sequence");
                return -1;
            }
            o->gen.stop[o->gen.n_stop++] = v;
            break;
        case OPT_STR: *(const char **)field = v; break;
        case OPT_SPLIT: {
            o->plan.n_split = 0;
            const char *q = v;
            while (*q) {
                double x = strtod(q, &end);
                if (errno || end == q || !(x >= 0) || !isfinite(x) || (*end && *end != ',') ||
                    o->plan.n_split >= PLAN_MAX_DEVICES) {
                    cli_error("option --tensor_split: '%s' is not a list of proportions (e.g. 3,1)", v);
                    return -1;
                }
                o->plan.tensor_split[o->plan.n_split++] = x;
                q = *end ? end + 1 : end;
            }
            if (o->plan.n_split == 0) goto bad;
            break;
        }
        case OPT_FLAG:
        case OPT_SPREAD:
        case OPT_FEWEST: break;
        }
        return 2;
    bad:
        cli_error("option --%s: invalid value '%s'", d->name, v);
        return -1;
    }
    cli_error("unknown option '%s'", a);
    return -1;
}
