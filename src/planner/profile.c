/* The model profile from a GGUF header alone, sized by the engine's own functions.
 *
 * "The plan is the allocation": every figure here comes from model/model.h, the functions
 * the runtime sizes its arenas with --
 *   KV of a device's range       model_kv_bytes(hp, params, first block, end block): a ring of
 *                                window + n_batch positions for sliding-window layers
 *   compute scratch              model_compute_bytes(desc, params, kind's op table, first, end,
 *                                has_output): each device kind's own scratch sizing
 *   options                      model_params_resolve() of {n_ctx = num_ctx x num_parallel,
 *                                n_batch, kv_type, n_logits = 1}
 * so a device's arena is exactly  weights (GPU only) + KV + compute  as reported here.
 *
 * Weights on a GPU-like device are copied into its arena one tensor per allocation, and the
 * arena rounds every allocation to STRATA_ARENA_ALIGN; so a layer's arena weight bytes are
 * the sum of its tensors' bytes each rounded: model_layer_weight_arena_bytes and
 * model_output_weight_arena_bytes, the functions the loader's arena is sized with. The output
 * layer on a GPU holds the output norm and the output matrix -- the embedding table itself
 * when the embeddings are tied, since the GPU cannot read the CPU's mapping. On the CPU the
 * weights stay in the read-only mapping and count against the CPU budget (page cache) but
 * not its arena. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "planner/plan.h"

struct plan_model {
    model_desc desc;
    model_params params;
    int32_t n_ctx_seq; /* per sequence */
    plan_profile prof;
    uint64_t *gpu_w, *cpu_w, *cpu_arena_w, *read, *host_part, *host_read;
    char arch[32];
};

plan_model_options plan_default_model_options(void) {
    plan_model_options o = {.num_ctx = 0, .num_batch = 0, .num_parallel = 1, .kv_type = STRATA_TYPE_F16};
    return o;
}

static uint64_t round_arena(uint64_t b) { return strata_arena_round((size_t)b); }

/* The tensors of a layer, in model_layer's slot order (NULL where absent). The raw sum is
 * checked against model_layer_weight_bytes so that a slot added to the engine is noticed. */
static int layer_tensors(const model_layer *L, const gguf_tensor *ts[32]) {
    const gguf_tensor *all[] = {L->attn_norm,  L->wq,        L->wk,        L->wv,           L->wo,
                                L->bq,         L->bk,        L->bv,        L->q_norm,       L->k_norm,
                                L->ffn_norm,   L->w_gate,    L->w_up,      L->w_down,       L->wqkv,
                                L->w_gate_up,  L->attn_post_norm, L->ffn_post_norm, L->ffn_gate_inp,
                                L->gate_exps,  L->up_exps,   L->down_exps};
    int n = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]) ts[n++] = all[i];
    return n;
}

static void segment_bytes(const void *ctx, backend_device_kind kind, int32_t start, int32_t end, uint64_t *kv,
                          uint64_t *compute) {
    const plan_model *m = ctx;
    const backend_ops *ops = backend_kind_ops(kind);
    STRATA_ASSERT(ops); /* only kinds that compute are plannable */
    int32_t nl = m->desc.hp.n_layer;
    int32_t bs = start < nl ? start : nl, be = end < nl ? end : nl;
    bool has_output = end == nl + 1;
    *kv = model_kv_bytes(&m->desc.hp, &m->params, bs, be);
    *compute = model_compute_bytes(&m->desc, &m->params, ops, bs, be, has_output);
}

strata_status plan_model_init(const gguf_file *f, const plan_model_options *mo, plan_model **out) {
    *out = NULL;
    plan_model *m = calloc(1, sizeof *m);
    if (!m) return strata_fail(STRATA_ERR_NOMEM, "plan: out of memory");
    strata_status st = model_desc_init(f, &m->desc);
    if (st != STRATA_OK) {
        free(m);
        return st;
    }
    const model_hparams *hp = &m->desc.hp;
    snprintf(m->arch, sizeof m->arch, "%s", hp->arch->name);
    if (mo->num_parallel < 1) {
        plan_model_free(m);
        return strata_fail(STRATA_ERR_INVALID, "plan: num_parallel must be at least 1");
    }
    /* Resolve the per-sequence context first (default and trained-length cap), then size
     * the cache for num_parallel sequences, as the runtime does. n_threads does not affect
     * sizing; 1 avoids counting cores. */
    model_params p = model_default_params();
    p.n_ctx = mo->num_ctx;
    p.n_batch = mo->num_batch;
    p.kv_type = mo->kv_type;
    p.embeddings = mo->embeddings;
    p.n_threads = 1;
    if (mo->num_cpu_moe < 0) {
        plan_model_free(m);
        return strata_fail(STRATA_ERR_INVALID, "plan: num_cpu_moe must be at least 0");
    }
    p.n_cpu_moe = hp->n_expert > 0 ? (mo->num_cpu_moe < hp->n_layer ? mo->num_cpu_moe : hp->n_layer) : 0;
    st = model_params_resolve(hp, &p);
    if (st == STRATA_OK) {
        m->n_ctx_seq = p.n_ctx;
        if ((int64_t)p.n_ctx * mo->num_parallel > INT32_MAX) {
            st = strata_fail(STRATA_ERR_INVALID, "plan: num_ctx x num_parallel is too large");
        } else {
            p.n_ctx *= mo->num_parallel;
            st = model_params_resolve(hp, &p);
        }
    }
    if (st != STRATA_OK) {
        plan_model_free(m);
        return st;
    }
    m->params = p;

    int32_t nl = hp->n_layer, n = nl + 1;
    m->gpu_w = calloc((size_t)n, sizeof *m->gpu_w);
    m->cpu_w = calloc((size_t)n, sizeof *m->cpu_w);
    m->cpu_arena_w = calloc((size_t)n, sizeof *m->cpu_arena_w);
    m->read = calloc((size_t)n, sizeof *m->read);
    m->host_part = calloc((size_t)n, sizeof *m->host_part);
    m->host_read = calloc((size_t)n, sizeof *m->host_read);
    if (!m->gpu_w || !m->cpu_w || !m->cpu_arena_w || !m->read || !m->host_part || !m->host_read) {
        plan_model_free(m);
        return strata_fail(STRATA_ERR_NOMEM, "plan: out of memory");
    }
    for (int32_t il = 0; il < nl; il++) {
        const gguf_tensor *ts[32];
        int nt = layer_tensors(&m->desc.layers[il], ts);
        uint64_t raw = 0, arena = 0;
        for (int i = 0; i < nt; i++) {
            raw += ts[i]->bytes;
            arena += round_arena(ts[i]->bytes);
        }
        if (arena != model_layer_weight_arena_bytes(&m->desc, il)) {
            plan_model_free(m);
            return strata_fail(STRATA_ERR_INVALID, "plan: layer %d's arena weights disagree with the engine", il);
        }
        if (raw != model_layer_weight_bytes(&m->desc, il)) {
            plan_model_free(m);
            return strata_fail(STRATA_ERR_INVALID,
                               "plan: layer %d weighs %llu bytes here but %zu for the engine (a tensor slot the "
                               "planner does not know)",
                               il, (unsigned long long)raw, model_layer_weight_bytes(&m->desc, il));
        }
        m->gpu_w[il] = arena;
        m->cpu_w[il] = raw;
        m->cpu_arena_w[il] = model_layer_relayout_bytes(&m->desc, &backend_cpu_ops, il);
        /* a decoded token reads n_expert_used of a block's n_expert experts */
        const uint64_t experts = model_layer_expert_bytes(&m->desc, il);
        const uint64_t active = hp->n_expert > 0 ? experts * (uint64_t)hp->n_expert_used / (uint64_t)hp->n_expert : 0;
        m->read[il] = raw - experts + active + model_kv_bytes(hp, &p, il, il + 1);
        if (il < p.n_cpu_moe && experts) {
            m->gpu_w[il] -= model_layer_expert_arena_bytes(&m->desc, il);
            m->host_part[il] = experts;
            m->host_read[il] = active;
        }
    }
    const gguf_tensor *on = m->desc.output_norm, *ow = m->desc.output;
    m->gpu_w[nl] = model_output_weight_arena_bytes(&m->desc);
    m->cpu_w[nl] = model_output_weight_bytes(&m->desc);
    m->cpu_arena_w[nl] = model_output_relayout_bytes(&m->desc, &backend_cpu_ops);
    m->read[nl] = on->bytes + ow->bytes;

    plan_profile *pr = &m->prof;
    pr->n_layers = n;
    pr->gpu_weight_bytes = m->gpu_w;
    pr->cpu_weight_bytes = m->cpu_w;
    pr->cpu_arena_weight_bytes = m->cpu_arena_w;
    pr->read_bytes = m->read;
    pr->host_bytes = m->desc.tok_embd->bytes + (m->desc.rope_freqs ? m->desc.rope_freqs->bytes : 0);
    pr->segment_bytes = segment_bytes;
    pr->ctx = m;
    if (p.n_cpu_moe > 0) {
        pr->host_part_bytes = m->host_part;
        pr->host_part_read_bytes = m->host_read;
        pr->host_part_scratch = model_host_moe_bytes(&m->desc, &p);
    }
    *out = m;
    return STRATA_OK;
}

void plan_model_free(plan_model *m) {
    if (!m) return;
    model_desc_free(&m->desc);
    free(m->gpu_w);
    free(m->cpu_w);
    free(m->cpu_arena_w);
    free(m->read);
    free(m->host_part);
    free(m->host_read);
    free(m);
}

const plan_profile *plan_model_profile(const plan_model *m) { return &m->prof; }
int32_t plan_model_n_layer(const plan_model *m) { return m->desc.hp.n_layer; }
const model_params *plan_model_params(const plan_model *m) { return &m->params; }
int32_t plan_model_n_ctx(const plan_model *m) { return m->n_ctx_seq; }
int32_t plan_model_n_batch(const plan_model *m) { return m->params.n_batch; }
const char *plan_model_arch(const plan_model *m) { return m->arch; }

plan_swa_cache plan_model_swa_cache(const plan_model *m) {
    const model_hparams *hp = &m->desc.hp;
    plan_swa_cache c = {0, hp->n_swa, 0, 0};
    model_params full = m->params;
    full.full_swa_cache = true;
    for (int32_t il = 0; il < hp->n_layer; il++)
        if (model_kv_rows(hp, &m->params, il) < m->params.n_ctx) c.local_layers++;
    c.kv_bytes = model_kv_bytes(hp, &m->params, 0, hp->n_layer);
    c.kv_full_bytes = model_kv_bytes(hp, &full, 0, hp->n_layer);
    return c;
}

int32_t plan_model_n_cpu_moe(const plan_model *m) { return m->params.n_cpu_moe; }

strata_status plan_compute_moe(const gguf_file *f, const plan_model_options *mo, const plan_device *devs,
                               int32_t n_devs, const plan_options *opt, plan_model **pm_out, plan_result *out) {
    *pm_out = NULL;
    plan_model_options o = *mo;
    const bool choose = mo->num_cpu_moe < 0;
    if (choose) o.num_cpu_moe = 0;
    plan_model *pm = NULL;
    strata_status st = plan_model_init(f, &o, &pm);
    if (st != STRATA_OK) return st;
    const int32_t nl = pm->desc.hp.n_layer;
    const bool moe = pm->desc.hp.n_expert > 0;
    plan_result best;
    strata_status st0 = plan_compute(plan_model_profile(pm), devs, n_devs, opt, &best);
    if (!choose || !moe) {
        if (st0 != STRATA_OK) {
            plan_model_free(pm);
            return st0;
        }
        if (moe && o.num_cpu_moe > 0) {
            size_t len = strlen(best.explanation);
            snprintf(best.explanation + len, sizeof best.explanation - len,
                     "; the experts of blocks 0-%d stay on the CPU (num_cpu_moe %d)", pm->params.n_cpu_moe - 1,
                     pm->params.n_cpu_moe);
        }
        *out = best;
        *pm_out = pm;
        return STRATA_OK;
    }
    /* Whole layers only (N = 0), then every N: the best predicted speed wins, the smaller N
     * among equals. */
    const double whole = st0 == STRATA_OK ? best.tokens_per_second : 0;
    int32_t best_n = st0 == STRATA_OK ? 0 : -1;
    plan_model *best_pm = st0 == STRATA_OK ? pm : NULL;
    if (!best_pm) plan_model_free(pm);
    for (int32_t n = 1; n <= nl; n++) {
        o.num_cpu_moe = n;
        plan_model *cand = NULL;
        plan_result r;
        if (plan_model_init(f, &o, &cand) != STRATA_OK) continue;
        if (plan_compute(plan_model_profile(cand), devs, n_devs, opt, &r) == STRATA_OK &&
            (best_n < 0 || r.tokens_per_second > best.tokens_per_second)) {
            plan_model_free(best_pm);
            best_pm = cand;
            best = r;
            best_n = n;
        } else {
            plan_model_free(cand);
        }
    }
    if (best_n < 0) {
        /* nothing fits in any form: the whole-layer plan's message */
        o.num_cpu_moe = 0;
        plan_model *again = NULL;
        st = plan_model_init(f, &o, &again);
        if (st == STRATA_OK) st = plan_compute(plan_model_profile(again), devs, n_devs, opt, &best);
        plan_model_free(again);
        return st != STRATA_OK ? st : strata_fail(STRATA_ERR_NO_FIT, "plan: nothing fits");
    }
    size_t len = strlen(best.explanation);
    if (best_n > 0) {
        if (st0 == STRATA_OK)
            snprintf(best.explanation + len, sizeof best.explanation - len,
                     "; the experts of blocks 0-%d stay on the CPU while their attention and router run on the GPU: "
                     "%.2f tokens/s predicted against %.2f moving whole layers",
                     best_n - 1, best.tokens_per_second, whole);
        else
            snprintf(best.explanation + len, sizeof best.explanation - len,
                     "; the experts of blocks 0-%d stay on the CPU: no plan of whole layers fits", best_n - 1);
    } else if (moe) {
        snprintf(best.explanation + len, sizeof best.explanation - len,
                 "; whole layers: keeping experts on the CPU predicts no faster decoding");
    }
    *out = best;
    *pm_out = best_pm;
    return STRATA_OK;
}
