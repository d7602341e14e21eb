/* The one forward pass: a recipe of ops per layer, the same for every architecture of the
 * table and every device kind. It reads and writes device memory only through the op table
 * of the device a segment runs on (backend/ops.h); sizing is in sizing.c, arena binding in
 * context.c.
 *
 * Per layer:  x += pn(Wo · attn(rope(norm_qk(Wq·n(x) + bq)), rope(norm_qk(Wk·n(x) + bk)), Wv·n(x) + bv))
 *             x += pn(Wdown · (act(Wgate·n(x)) * (Wup·n(x))))      (dense)
 *             x += pn(sum over the token's top-k experts e of w_e · FFN_e(n(x)))  (experts)
 * with optional pieces (biases, per-head Q/K norms, rope frequency factors, gemma's post
 * norms pn, fused Q/K/V and gate/up matrices used as row ranges) present or not according
 * to the architecture table; act is SiLU or tanh-GELU; the attention of a layer has its
 * window, scale and soft-capping (model_attn_shape), and local layers their own RoPE where
 * the family has one. The RoPE pair order is the table's rope style. Gemma scales the
 * embeddings and gemma2 soft-caps the logits.
 *
 * Layout of the KV cache (one block per segment, from the device arena): for each layer,
 * K then V, each [n_head_kv][n_ctx] rows of kv_type (backend_attn_shape).
 *
 * Across devices: the tokens are embedded by the first device (or, where it cannot read the
 * mapped table, on the host and copied in), layer ranges run device by device with only the
 * hidden state handed across (backend_copy_between: peer, plain, or staged through the
 * context's host buffer), and the last device's logits and hidden states are read back
 * where the host cannot read them. Nothing here allocates. */
#include <string.h>

#include "model/device.h"
#include "model/internal.h"

/* The device's view of the rope: factors from its own copy, or from the mapping; the local
 * layers' base and scaling where `local`. */
static backend_rope rope_params(const model_context *ctx, const model_segment *sg, bool local) {
    const model_desc *d = ctx->d;
    const model_hparams *hp = &d->hp;
    const float *factors = sg->rope_factors ? sg->rope_factors : d->rope_freqs ? d->rope_freqs->data : NULL;
    return (backend_rope){hp->rope_dim,
                          hp->head_dim,
                          local ? hp->rope_freq_base_swa : hp->rope_freq_base,
                          local ? hp->rope_freq_scale_swa : hp->rope_freq_scale,
                          hp->arch->rope == MODEL_ROPE_NEOX,
                          factors};
}

static uint8_t *layer_cache(const model_context *ctx, const model_segment *sg, int32_t il, bool values) {
    const model_hparams *hp = &ctx->d->hp;
    return sg->kv + model_kv_layer_offset(hp, &ctx->p, sg->layer_start, il) +
           (values ? model_kv_layer_block(hp, &ctx->p, il) : 0);
}

/* The FFN of a mixture of experts on the normed state xb, into xb: router logits, routing,
 * the routed rows' gate and up products (each token's row against its experts only), the
 * activation, the routed down products, and their weighted sum per token. */
static void moe_ffn(const model_hparams *hp, const model_segment *sg, const model_seg_layer *L, int32_t n) {
    const backend_ops *o = sg->ops;
    const backend_exec *ex = &sg->ex;
    const int32_t k = hp->n_expert_used;
    o->matmul(ex, &L->router, NULL, sg->xb, n, sg->moe_logits, sg->work);
    o->moe_route(ex, sg->moe_logits, n, hp->n_expert, k, hp->expert_norm, sg->moe_ids, sg->moe_w);
    o->matmul_id(ex, &L->gate_exps, hp->n_expert, sg->xb, false, sg->moe_ids, n, k, sg->g, sg->work);
    o->matmul_id(ex, &L->up_exps, hp->n_expert, sg->xb, false, sg->moe_ids, n, k, sg->u, sg->work);
    if (hp->arch->act == MODEL_FFN_GELU_TANH) o->gelu_mul(ex, sg->g, sg->u, n * k, hp->n_ff_exp);
    else o->silu_mul(ex, sg->g, sg->u, n * k, hp->n_ff_exp);
    o->matmul_id(ex, &L->down_exps, hp->n_expert, sg->g, true, sg->moe_ids, n, k, sg->moe_y, sg->work);
    o->moe_combine(ex, sg->moe_y, sg->moe_w, n, k, hp->n_embd, sg->xb);
}

/* The same FFN where the block's experts stay on the host (n_cpu_moe): the device routes,
 * then the normed state and the routing are read back, the host's CPU kernels multiply the
 * routed rows by the experts where the file maps them and combine them, and the result goes
 * back into the device's xb. Host buffers: model_host_moe_bytes, carved in its order. */
static strata_status host_moe_ffn(const model_context *ctx, const model_segment *sg, const model_seg_layer *L,
                                  int32_t n) {
    const model_hparams *hp = &ctx->d->hp;
    const backend_ops *o = sg->ops;
    const backend_ops *h = &backend_cpu_ops;
    const backend_exec host = {NULL, ctx->p.n_threads};
    const int32_t k = hp->n_expert_used;
    const size_t nb = (size_t)ctx->p.n_batch, routed = nb * k, f = sizeof(float);
    uint8_t *b = ctx->host_moe;
    float *xb = (float *)b;
    b += strata_arena_round(nb * hp->n_embd * f);
    int32_t *ids = (int32_t *)b;
    b += strata_arena_round(routed * sizeof(int32_t));
    float *w = (float *)b;
    b += strata_arena_round(routed * f);
    float *g = (float *)b;
    b += strata_arena_round(routed * hp->n_ff_exp * f);
    float *u = (float *)b;
    b += strata_arena_round(routed * hp->n_ff_exp * f);
    float *y = (float *)b;
    b += strata_arena_round(routed * hp->n_embd * f);
    void *work = b;
    o->matmul(&sg->ex, &L->router, NULL, sg->xb, n, sg->moe_logits, sg->work);
    o->moe_route(&sg->ex, sg->moe_logits, n, hp->n_expert, k, hp->expert_norm, sg->moe_ids, sg->moe_w);
    o->synchronize(sg->dev->backend);
    backend_device *dev = sg->dev->backend;
    strata_status st = backend_device_copy_out(dev, xb, sg->xb, (size_t)n * hp->n_embd * f);
    if (st == STRATA_OK) st = backend_device_copy_out(dev, ids, sg->moe_ids, (size_t)n * k * sizeof(int32_t));
    if (st == STRATA_OK) st = backend_device_copy_out(dev, w, sg->moe_w, (size_t)n * k * f);
    if (st != STRATA_OK) return st;
    h->matmul_id(&host, &L->gate_exps, hp->n_expert, xb, false, ids, n, k, g, work);
    h->matmul_id(&host, &L->up_exps, hp->n_expert, xb, false, ids, n, k, u, work);
    if (hp->arch->act == MODEL_FFN_GELU_TANH) h->gelu_mul(&host, g, u, n * k, hp->n_ff_exp);
    else h->silu_mul(&host, g, u, n * k, hp->n_ff_exp);
    h->matmul_id(&host, &L->down_exps, hp->n_expert, g, true, ids, n, k, y, work);
    h->moe_combine(&host, y, w, n, k, hp->n_embd, xb);
    return backend_device_copy_in(dev, sg->xb, xb, (size_t)n * hp->n_embd * f);
}

/* Runs layers [sg->layer_start, sg->layer_end) over the batch hidden state sg->x. */
static strata_status run_layers(model_context *ctx, model_segment *sg, int32_t n, int32_t pos) {
    const model_hparams *hp = &ctx->d->hp;
    const backend_ops *o = sg->ops;
    const backend_exec *ex = &sg->ex;
    const int64_t E = hp->n_embd, F = hp->n_ff;
    const backend_rope rope = rope_params(ctx, sg, false), rope_local = rope_params(ctx, sg, true);
    o->rope_table(ex, sg->rope, n, pos, &rope);
    if (sg->rope_swa) o->rope_table(ex, sg->rope_swa, n, pos, &rope_local);
    for (int32_t il = sg->layer_start; il < sg->layer_end; il++) {
        const model_seg_layer *L = &sg->layers[il - sg->layer_start];
        uint8_t *kc = layer_cache(ctx, sg, il, false), *vc = layer_cache(ctx, sg, il, true);
        const backend_attn_shape as = model_attn_shape(hp, &ctx->p, il);
        const bool local = model_layer_swa(hp, il) && sg->rope_swa;
        const backend_rope *r = local ? &rope_local : &rope;
        const float *table = local ? sg->rope_swa : sg->rope;
        /* the previous layer's feed-forward output (in xb) joins the residual here */
        o->add_rms_norm(ex, sg->x, il > sg->layer_start ? sg->xb : NULL, sg->xb, L->attn_norm, n, E, hp->rms_eps);
        o->matmul_parts(ex, (const backend_matrix *const[]){&L->wq, &L->wk, &L->wv},
                        (const float *const[]){L->bq, L->bk, L->bv}, (float *const[]){sg->q, sg->k, sg->v}, 3, sg->xb,
                        n, sg->work);
        if (L->q_norm) o->head_rms_norm(ex, sg->q, (int64_t)n * hp->n_head, hp->head_dim, L->q_norm, hp->rms_eps);
        if (L->k_norm) o->head_rms_norm(ex, sg->k, (int64_t)n * hp->n_head_kv, hp->head_dim, L->k_norm, hp->rms_eps);
        o->rope_apply(ex, sg->q, n, hp->n_head, table, r);
        o->rope_apply(ex, sg->k, n, hp->n_head_kv, table, r);
        o->kv_store(ex, &as, kc, vc, sg->k, sg->v, n, pos);
        o->attention(ex, &as, kc, vc, sg->q, n, pos, sg->att_out, sg->att);
        o->matmul(ex, &L->wo, NULL, sg->att_out, n, sg->xb, sg->work);
        /* gemma: the attention output is normed before it joins the residual */
        if (L->attn_post_norm) o->add_rms_norm(ex, sg->xb, NULL, sg->xb, L->attn_post_norm, n, E, hp->rms_eps);
        o->add_rms_norm(ex, sg->x, sg->xb, sg->xb, L->ffn_norm, n, E, hp->rms_eps);
        if (L->host_experts) {
            strata_status st = host_moe_ffn(ctx, sg, L, n);
            if (st != STRATA_OK) return st;
        } else if (L->moe) {
            moe_ffn(hp, sg, L, n);
        } else {
            o->matmul_parts(ex, (const backend_matrix *const[]){&L->w_gate, &L->w_up}, NULL,
                            (float *const[]){sg->g, sg->u}, 2, sg->xb, n, sg->work);
            if (hp->arch->act == MODEL_FFN_GELU_TANH) o->gelu_mul(ex, sg->g, sg->u, n, F);
            else o->silu_mul(ex, sg->g, sg->u, n, F);
            o->matmul(ex, &L->w_down, NULL, sg->g, n, sg->xb, sg->work);
        }
        if (L->ffn_post_norm) o->add_rms_norm(ex, sg->xb, NULL, sg->xb, L->ffn_post_norm, n, E, hp->rms_eps);
    }
    /* and the last layer's joins it here */
    if (sg->layer_end > sg->layer_start) o->add_rms_norm(ex, sg->x, sg->xb, NULL, NULL, n, E, 0.0f);
    return STRATA_OK;
}

/* Copies `bytes` of device memory from src on segment a's device to dst on segment b's. */
static strata_status handoff(model_context *ctx, const model_segment *b, void *dst, const model_segment *a,
                             const void *src, size_t bytes) {
    /* a plain host device (strata_device_init_cpu: tests, tools) is host memory */
    if (!a->dev->backend && !b->dev->backend) {
        memmove(dst, src, bytes);
        return STRATA_OK;
    }
    if (!a->dev->backend) return backend_device_copy_in(b->dev->backend, dst, src, bytes);
    if (!b->dev->backend) return backend_device_copy_out(a->dev->backend, dst, src, bytes);
    return backend_copy_between(b->dev->backend, dst, a->dev->backend, src, bytes, ctx->staging);
}

/* The token embeddings into the first segment's hidden state. */
static strata_status embed(model_context *ctx, const int32_t *tokens, int32_t n) {
    const model_desc *d = ctx->d;
    const int64_t E = d->hp.n_embd;
    model_segment *sg = &ctx->segs[0];
    if (sg->tok_embd) {
        sg->ops->embed_rows(&sg->ex, sg->tok_embd, d->tok_embd->type, E, tokens, n, sg->x);
    } else {
        const backend_exec host = {NULL, ctx->p.n_threads};
        backend_cpu_ops.embed_rows(&host, d->tok_embd->data, d->tok_embd->type, E, tokens, n, ctx->staging);
        strata_status st = strata_device_copy_in(sg->dev, sg->x, ctx->staging, (size_t)n * E * sizeof(float));
        if (st != STRATA_OK) return st;
    }
    /* gemma: the embeddings are scaled by sqrt(n_embd) on the device */
    if (d->hp.embd_scale > 0) sg->ops->scale(&sg->ex, sg->x, (int64_t)n * E, d->hp.embd_scale);
    return STRATA_OK;
}

/* Reads `bytes` of the last segment's device memory at src into host buffer dst. */
static strata_status read_back(const model_segment *sg, float *dst, const float *src, size_t bytes) {
    sg->ops->synchronize(sg->dev->backend);
    return backend_device_copy_out(sg->dev->backend, dst, src, bytes);
}

strata_status model_decode(model_context *ctx, const int32_t *tokens, int32_t n, int32_t pos) {
    const model_desc *d = ctx->d;
    const model_hparams *hp = &d->hp;
    if (n < 1 || n > ctx->p.n_batch)
        return strata_fail(STRATA_ERR_INVALID, "model: %d tokens in one batch (1..%d allowed)", n, ctx->p.n_batch);
    if (pos < 0 || pos + n > ctx->p.n_ctx)
        return strata_fail(STRATA_ERR_INVALID, "model: positions %d..%d exceed the context of %d tokens", pos,
                           pos + n - 1, ctx->p.n_ctx);
    if (ctx->ring && pos != 0 && pos != ctx->next_pos)
        return strata_fail(STRATA_ERR_INVALID,
                           "model: the sliding-window cache holds the positions before %d, not before %d (continue "
                           "at %d or restart at 0)",
                           ctx->next_pos, pos, ctx->next_pos);
    for (int32_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= hp->n_vocab)
            return strata_fail(STRATA_ERR_INVALID, "model: token id %d out of range (vocabulary of %d)", tokens[i],
                               hp->n_vocab);
    const int64_t E = hp->n_embd;
    ctx->next_pos = pos + n;
    strata_status st = embed(ctx, tokens, n);
    if (st != STRATA_OK) return st;
    /* Layer ranges device by device; only the hidden state crosses a boundary. */
    model_segment *sg = &ctx->segs[0];
    for (int32_t s = 0; s < ctx->n_segs; s++) {
        sg = &ctx->segs[s];
        if (s > 0) {
            st = handoff(ctx, sg, sg->x, &ctx->segs[s - 1], ctx->segs[s - 1].x, (size_t)n * E * sizeof(float));
            if (st != STRATA_OK) return st;
        }
        if (sg->layer_end > sg->layer_start) st = run_layers(ctx, sg, n, pos);
        if (st != STRATA_OK) return st;
    }

    const backend_ops *o = sg->ops;
    /* Every token's output-norm state, when embeddings are kept. */
    if (sg->hidden) {
        o->add_rms_norm(&sg->ex, sg->x, NULL, sg->hidden, sg->out_norm, n, E, hp->rms_eps);
        ctx->n_hidden = n;
        if (ctx->host_hidden) {
            st = read_back(sg, ctx->host_hidden, sg->hidden, (size_t)n * E * sizeof(float));
            if (st != STRATA_OK) return st;
        }
    }
    /* Output layer: only the rows whose logits are kept. */
    int32_t n_out = n < ctx->p.n_logits ? n : ctx->p.n_logits;
    o->add_rms_norm(&sg->ex, sg->x + (size_t)(n - n_out) * E, NULL, sg->xb, sg->out_norm, n_out, E, hp->rms_eps);
    o->matmul(&sg->ex, &sg->out_w, NULL, sg->xb, n_out, sg->logits, sg->work);
    if (hp->final_softcap > 0) o->softcap(&sg->ex, sg->logits, (int64_t)n_out * hp->n_vocab, hp->final_softcap);
    ctx->n_out = n_out;
    if (ctx->host_logits) return read_back(sg, ctx->host_logits, sg->logits, (size_t)n_out * hp->n_vocab * sizeof(float));
    return STRATA_OK;
}
