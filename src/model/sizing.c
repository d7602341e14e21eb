/* Sizing: the pure functions of (model header, options, device kind) that say what each
 * device's arena holds. The planner calls them before anything is loaded; context.c carves
 * the arenas with the same ones, so planned == allocated, to the byte.
 *
 * Scratch that an op needs is sized by the op table of the device kind that runs it
 * (backend_ops.matmul_work_bytes, attention_work_bytes): a kind with other kernels has other
 * compute bytes, and the plan follows. */
#include <string.h>

#include "model/device.h"
#include "model/internal.h"

/* ---- options ---------------------------------------------------------------------- */

int model_physical_cores(void) { return backend_cpu_default_threads(); }

model_params model_default_params(void) {
    model_params p = {0};
    p.n_ctx = 0;
    p.n_batch = 512;
    p.kv_type = STRATA_TYPE_F16;
    p.n_threads = 0;
    p.n_logits = 1;
    return p;
}

strata_status model_params_resolve(const model_hparams *hp, model_params *p) {
    if (p->n_ctx < 0 || p->n_batch < 0 || p->n_threads < 0 || p->n_logits < 0)
        return strata_fail(STRATA_ERR_INVALID, "model: negative num_ctx, num_batch, num_thread or logits count");
    if (p->n_ctx == 0) p->n_ctx = 4096;
    if (p->n_ctx > hp->n_ctx_train) p->n_ctx = hp->n_ctx_train;
    if (p->n_batch == 0) p->n_batch = 512;
    if (p->n_batch > p->n_ctx) p->n_batch = p->n_ctx;
    if (p->n_threads == 0) p->n_threads = model_physical_cores();
    if (p->n_logits == 0) p->n_logits = 1;
    if (p->n_logits > p->n_batch) p->n_logits = p->n_batch;
    switch (p->kv_type) {
    case STRATA_TYPE_F32:
    case STRATA_TYPE_F16: break;
    case STRATA_TYPE_Q8_0:
        if (hp->head_dim % 32 != 0)
            return strata_fail(STRATA_ERR_UNSUPPORTED,
                               "model: kv_type q8_0 needs a head dimension divisible by 32 (this model has %d)",
                               hp->head_dim);
        break;
    default:
        return strata_fail(STRATA_ERR_UNSUPPORTED, "model: kv_type %s is not supported (f16, f32, q8_0)",
                           strata_type_name(p->kv_type));
    }
    if (!backend_cpu_ops.matmul_supports(p->kv_type))
        return strata_fail(STRATA_ERR_UNSUPPORTED, "model: the CPU kernels cannot multiply a %s KV cache",
                           strata_type_name(p->kv_type));
    return STRATA_OK;
}

/* ---- KV cache --------------------------------------------------------------------- */

static size_t head_row_bytes(const model_hparams *hp, strata_type kv_type) {
    return strata_type_row_bytes(kv_type, hp->head_dim);
}

size_t model_kv_bytes_per_token(const model_hparams *hp, strata_type kv_type) {
    return 2 * (size_t)hp->n_head_kv * head_row_bytes(hp, kv_type);
}

/* Bytes of one layer's K (or V) block: [n_head_kv][n_ctx] rows. */
size_t model_kv_block_bytes(const model_hparams *hp, strata_type kv_type, int32_t n_ctx) {
    return (size_t)hp->n_head_kv * (size_t)n_ctx * head_row_bytes(hp, kv_type);
}

/* A sliding-window layer sees the last n_swa positions; with a batch of up to n_batch
 * tokens written before it attends, window - 1 + n_batch positions must be held at once:
 * a ring of n_swa + n_batch rows holds them (one to spare). */
int32_t model_kv_rows(const model_hparams *hp, const model_params *p, int32_t il) {
    if (!p->full_swa_cache && model_layer_swa(hp, il) && (int64_t)hp->n_swa + p->n_batch < p->n_ctx)
        return hp->n_swa + p->n_batch;
    return p->n_ctx;
}

size_t model_kv_layer_block(const model_hparams *hp, const model_params *p, int32_t il) {
    return model_kv_block_bytes(hp, p->kv_type, model_kv_rows(hp, p, il));
}

size_t model_kv_layer_offset(const model_hparams *hp, const model_params *p, int32_t layer_start, int32_t il) {
    size_t off = 0;
    for (int32_t l = layer_start; l < il; l++) off += 2 * model_kv_layer_block(hp, p, l);
    return off;
}

size_t model_kv_bytes(const model_hparams *hp, const model_params *p, int32_t layer_start, int32_t layer_end) {
    if (layer_end <= layer_start) return 0;
    return strata_arena_round(model_kv_layer_offset(hp, p, layer_start, layer_end));
}

backend_attn_shape model_attn_shape(const model_hparams *hp, const model_params *p, int32_t il) {
    const int32_t rows = model_kv_rows(hp, p, il);
    return (backend_attn_shape){hp->n_head,
                                hp->n_head_kv,
                                hp->head_dim,
                                rows,
                                p->kv_type,
                                hp->attn_scale,
                                hp->attn_softcap,
                                model_layer_swa(hp, il) ? hp->n_swa : 0,
                                rows < p->n_ctx};
}

int64_t model_ffn_rows(const model_hparams *hp) {
    return hp->n_expert > 0 ? (int64_t)hp->n_expert_used * hp->n_ff_exp : hp->n_ff;
}

/* ---- weights ---------------------------------------------------------------------- */

int model_layer_slots(model_layer *L, const gguf_tensor ***slots) {
    const gguf_tensor **all[] = {&L->attn_norm,      &L->wq,           &L->wk,        &L->wv,        &L->wo,
                                 &L->bq,             &L->bk,           &L->bv,        &L->q_norm,    &L->k_norm,
                                 &L->ffn_norm,       &L->w_gate,       &L->w_up,      &L->w_down,    &L->wqkv,
                                 &L->w_gate_up,      &L->attn_post_norm, &L->ffn_post_norm, &L->ffn_gate_inp,
                                 &L->gate_exps,      &L->up_exps,      &L->down_exps};
    int n = (int)(sizeof all / sizeof all[0]);
    for (int i = 0; i < n; i++) slots[i] = all[i];
    return n;
}

size_t model_layer_weight_bytes(const model_desc *d, int32_t il) {
    model_layer L = d->layers[il];
    const gguf_tensor **slots[32];
    int n = model_layer_slots(&L, slots);
    size_t b = 0;
    for (int i = 0; i < n; i++)
        if (*slots[i]) b += (*slots[i])->bytes;
    return b;
}

size_t model_output_weight_bytes(const model_desc *d) {
    size_t n = d->output_norm->bytes;
    if (d->output != d->tok_embd) n += d->output->bytes;
    return n;
}

static bool is_fused(const model_desc *d, const gguf_tensor *t) {
    for (int32_t il = 0; il < d->hp.n_layer; il++)
        if (t == d->layers[il].wqkv || t == d->layers[il].w_gate_up) return true;
    return false;
}

bool model_relayouts(const model_desc *d, const backend_ops *kind, const gguf_tensor *t) {
    if (!t || t->ne[2] != 1 || t->ne[3] != 1 || !kind->matrix_relayout(t->type, t->ne[1], t->ne[0])) return false;
    if (d->hp.arch->fused && is_fused(d, t)) {
        const model_hparams *hp = &d->hp;
        const int64_t qd = (int64_t)hp->n_head * hp->head_dim, kvd = (int64_t)hp->n_head_kv * hp->head_dim;
        if (qd % 8 || kvd % 8 || hp->n_ff % 8) return false;
    }
    return true;
}

/* Arena bytes of layer il's tensors: all of them, or only those `kind` relayouts. */
static size_t layer_arena_bytes(const model_desc *d, int32_t il, const backend_ops *relayout_only) {
    model_layer L = d->layers[il];
    const gguf_tensor **slots[32];
    int n = model_layer_slots(&L, slots);
    size_t b = 0;
    for (int i = 0; i < n; i++)
        if (relayout_only ? model_relayouts(d, relayout_only, *slots[i]) : *slots[i] != NULL)
            b += strata_arena_round((size_t)(*slots[i])->bytes);
    return b;
}

size_t model_layer_weight_arena_bytes(const model_desc *d, int32_t il) { return layer_arena_bytes(d, il, NULL); }

size_t model_layer_relayout_bytes(const model_desc *d, const backend_ops *kind, int32_t il) {
    return layer_arena_bytes(d, il, kind);
}

size_t model_output_relayout_bytes(const model_desc *d, const backend_ops *kind) {
    return model_relayouts(d, kind, d->output) ? strata_arena_round((size_t)d->output->bytes) : 0;
}

size_t model_output_weight_arena_bytes(const model_desc *d) {
    return strata_arena_round((size_t)d->output_norm->bytes) + strata_arena_round((size_t)d->output->bytes);
}

size_t model_weight_arena_bytes(const model_desc *d, int32_t layer_start, int32_t layer_end, bool has_output) {
    size_t b = 0;
    for (int32_t il = layer_start; il < layer_end; il++) b += model_layer_weight_arena_bytes(d, il);
    if (has_output) b += model_output_weight_arena_bytes(d);
    return b;
}

/* ---- compute scratch -------------------------------------------------------------- */

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

model_scratch_sizes model_scratch_layout(const model_desc *d, const backend_ops *kind, int32_t layer_start,
                                         int32_t layer_end, const model_params *p, int32_t n_logits, bool hidden) {
    const model_hparams *hp = &d->hp;
    const int32_t nb = p->n_batch;
    size_t f = sizeof(float);
    size_t qd = (size_t)hp->n_head * hp->head_dim, kvd = (size_t)hp->n_head_kv * hp->head_dim;
    model_scratch_sizes s;
    memset(&s, 0, sizeof s);
    s.x = strata_arena_round((size_t)nb * hp->n_embd * f);
    s.xb = strata_arena_round((size_t)nb * hp->n_embd * f);
    size_t work = 0;
    if (layer_end > layer_start) {
        s.q = strata_arena_round((size_t)nb * qd * f);
        s.k = strata_arena_round((size_t)nb * kvd * f);
        s.v = strata_arena_round((size_t)nb * kvd * f);
        s.att_out = strata_arena_round((size_t)nb * qd * f);
        s.g = strata_arena_round((size_t)nb * model_ffn_rows(hp) * f);
        s.u = strata_arena_round((size_t)nb * model_ffn_rows(hp) * f);
        s.rope = strata_arena_round((size_t)nb * hp->rope_dim * f);
        if (model_swa_rope_differs(hp)) s.rope_swa = s.rope;
        if (hp->n_expert > 0) {
            const size_t routed = (size_t)nb * hp->n_expert_used;
            s.moe_logits = strata_arena_round((size_t)nb * hp->n_expert * f);
            s.moe_ids = strata_arena_round(routed * sizeof(int32_t));
            s.moe_w = strata_arena_round(routed * f);
            s.moe_y = strata_arena_round(routed * hp->n_embd * f);
        }
        /* the rope factors where the device cannot read them from the mapping */
        if (d->rope_freqs && !kind->host_memory) s.rope_factors = strata_arena_round((size_t)d->rope_freqs->bytes);
        size_t att = 0;
        for (int32_t il = layer_start; il < layer_end; il++) {
            backend_attn_shape as = model_attn_shape(hp, p, il);
            att = max_sz(att, kind->attention_work_bytes(&as, nb));
        }
        s.att = strata_arena_round(att);
        for (int32_t il = layer_start; il < layer_end; il++) {
            const model_layer *L = &d->layers[il];
            const gguf_tensor *ws[] = {L->wq,     L->wk,        L->wv,          L->wqkv,  L->wo,
                                       L->w_gate, L->w_up,      L->w_gate_up,   L->w_down, L->ffn_gate_inp};
            for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
                if (ws[i]) work = max_sz(work, kind->matmul_work_bytes(ws[i]->type, ws[i]->ne[0], nb));
            const gguf_tensor *xs[] = {L->gate_exps, L->up_exps, L->down_exps};
            for (size_t i = 0; i < sizeof xs / sizeof xs[0] && !model_layer_host_experts(d, p, kind, il); i++)
                if (xs[i])
                    work = max_sz(work, kind->matmul_id_work_bytes(xs[i]->type, xs[i]->ne[1], xs[i]->ne[0],
                                                                   nb * hp->n_expert_used));
        }
    }
    if (n_logits > 0) {
        work = max_sz(work, kind->matmul_work_bytes(d->output->type, d->output->ne[0], n_logits));
        s.logits = strata_arena_round((size_t)n_logits * hp->n_vocab * f);
        /* every token's output-norm state, for embeddings */
        if (hidden) s.hidden = strata_arena_round((size_t)nb * hp->n_embd * f);
    }
    s.work = strata_arena_round(work);
    return s;
}

size_t model_scratch_total(const model_scratch_sizes *s) {
    return s->x + s->xb + s->q + s->k + s->v + s->att_out + s->g + s->u + s->rope + s->rope_factors + s->att +
           s->work + s->logits + s->hidden + s->rope_swa + s->moe_logits + s->moe_ids + s->moe_w + s->moe_y;
}

size_t model_compute_bytes(const model_desc *d, const model_params *p, const backend_ops *kind, int32_t layer_start,
                           int32_t layer_end, bool produces_logits) {
    model_scratch_sizes s = model_scratch_layout(d, kind, layer_start, layer_end, p,
                                                 produces_logits ? p->n_logits : 0, produces_logits && p->embeddings);
    return model_scratch_total(&s);
}

size_t model_segment_bytes(const model_desc *d, const model_params *p, const backend_ops *kind, int32_t layer_start,
                           int32_t layer_end, bool has_output) {
    return model_kv_bytes(&d->hp, p, layer_start, layer_end) +
           model_compute_bytes(d, p, kind, layer_start, layer_end, has_output);
}

size_t model_device_weight_arena_bytes(const model_desc *d, const backend_ops *kind, int32_t layer_start,
                                       int32_t layer_end, bool has_output) {
    if (!kind->host_memory) return model_weight_arena_bytes(d, layer_start, layer_end, has_output);
    size_t b = 0;
    for (int32_t il = layer_start; il < layer_end; il++) b += model_layer_relayout_bytes(d, kind, il);
    if (has_output) b += model_output_relayout_bytes(d, kind);
    return b;
}

bool model_layer_host_experts(const model_desc *d, const model_params *p, const backend_ops *kind, int32_t il) {
    return !kind->host_memory && il < p->n_cpu_moe && d->layers[il].gate_exps != NULL;
}

size_t model_layer_expert_arena_bytes(const model_desc *d, int32_t il) {
    const model_layer *L = &d->layers[il];
    if (!L->gate_exps) return 0;
    return strata_arena_round((size_t)L->gate_exps->bytes) + strata_arena_round((size_t)L->up_exps->bytes) +
           strata_arena_round((size_t)L->down_exps->bytes);
}

size_t model_layer_expert_bytes(const model_desc *d, int32_t il) {
    const model_layer *L = &d->layers[il];
    if (!L->gate_exps) return 0;
    return (size_t)(L->gate_exps->bytes + L->up_exps->bytes + L->down_exps->bytes);
}

size_t model_host_moe_bytes(const model_desc *d, const model_params *p) {
    const model_hparams *hp = &d->hp;
    if (p->n_cpu_moe <= 0 || hp->n_expert <= 0) return 0;
    const size_t routed = (size_t)p->n_batch * hp->n_expert_used, f = sizeof(float);
    size_t work = 0;
    for (int32_t il = 0; il < hp->n_layer && il < p->n_cpu_moe; il++) {
        const gguf_tensor *xs[] = {d->layers[il].gate_exps, d->layers[il].up_exps, d->layers[il].down_exps};
        for (int i = 0; i < 3; i++)
            if (xs[i])
                work = max_sz(work, backend_cpu_ops.matmul_id_work_bytes(xs[i]->type, xs[i]->ne[1], xs[i]->ne[0],
                                                                         (int32_t)routed));
    }
    /* xb, ids, weights, gate, up, the routed outputs, the work */
    return strata_arena_round((size_t)p->n_batch * hp->n_embd * f) + strata_arena_round(routed * sizeof(int32_t)) +
           strata_arena_round(routed * f) + 2 * strata_arena_round(routed * hp->n_ff_exp * f) +
           strata_arena_round(routed * hp->n_embd * f) + strata_arena_round(work);
}

size_t model_device_arena_bytes(const model_desc *d, const model_params *p, const backend_ops *kind,
                                int32_t layer_start, int32_t layer_end, bool has_output) {
    size_t host_experts = 0;
    for (int32_t il = layer_start; il < layer_end; il++)
        if (model_layer_host_experts(d, p, kind, il)) host_experts += model_layer_expert_arena_bytes(d, il);
    return model_segment_bytes(d, p, kind, layer_start, layer_end, has_output) +
           model_device_weight_arena_bytes(d, kind, layer_start, layer_end, has_output) - host_experts;
}
