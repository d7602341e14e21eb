/* Arena binding: a model context's segments, one per device, each carved out of the one
 * arena its device reserves (exactly model_device_arena_bytes), with the device's weights
 * put there through its op table. Nothing here computes; forward.c does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/device.h"
#include "model/internal.h"

const model_params *model_context_params(const model_context *ctx) { return &ctx->p; }

static strata_status carve(strata_device *dev, size_t bytes, const char *what, void **out) {
    *out = NULL;
    if (bytes == 0) return STRATA_OK;
    *out = strata_device_alloc(dev, bytes, what);
    return *out ? STRATA_OK : STRATA_ERR_NOMEM;
}

/* The mapped pages of a tensor copied to a device are not read again (the token embeddings
 * are, even when tied to the output matrix): out of the resident set, so that the copy is
 * not counted twice. */
static void release_mapped(const model_desc *d, const gguf_tensor *t) {
    if (t != d->tok_embd) gguf_release_data(d->file, t->data, t->bytes);
}

/* A norm weight or bias (1-D F32) as the segment's ops read it: in the mapping on a device
 * whose memory is host memory, else copied into the arena. */
static strata_status place_vector(model_segment *sg, const model_desc *d, const gguf_tensor *t, const char *what,
                                  const float **out) {
    *out = NULL;
    if (!t) return STRATA_OK;
    if (sg->ops->host_memory) {
        *out = t->data;
        return STRATA_OK;
    }
    if (!t->data)
        return strata_fail(STRATA_ERR_INVALID, "model: tensor %s has no data to copy to %s", t->name, sg->dev->name);
    void *dst = strata_device_alloc(sg->dev, (size_t)t->bytes, what);
    if (!dst) return STRATA_ERR_NOMEM;
    strata_status st = strata_device_copy_in(sg->dev, dst, t->data, (size_t)t->bytes);
    if (st == STRATA_OK) release_mapped(d, t);
    *out = dst;
    return st;
}

/* A weight matrix: in the mapping on a host-memory device that keeps the GGUF layout, else
 * uploaded into the arena by the device's matrix_upload (in the kind's own layout where it
 * has one: model_relayouts). */
static strata_status place_matrix(model_segment *sg, const model_desc *d, const gguf_tensor *t, const char *what,
                                  backend_matrix *m) {
    const bool relayout = model_relayouts(d, sg->ops, t);
    *m = (backend_matrix){t->type, t->ne[1] * t->ne[2], t->ne[0], t->data, relayout ? 1 : 0};
    if (sg->ops->host_memory && !relayout) return STRATA_OK;
    if (!t->data)
        return strata_fail(STRATA_ERR_INVALID, "model: tensor %s has no data to copy to %s", t->name, sg->dev->name);
    void *dst = strata_device_alloc(sg->dev, (size_t)t->bytes, what);
    if (!dst) return STRATA_ERR_NOMEM;
    m->data = dst;
    strata_status st = sg->ops->matrix_upload(&sg->ex, m, t->data);
    if (st == STRATA_OK) release_mapped(d, t);
    return st;
}

/* Rows [r0, r0 + rows) of a placed matrix as a matrix of their own (the parts of a fused
 * one): the same layout, the bytes from row r0 on (whole row groups where it is relaid out,
 * model_relayouts). */
static backend_matrix matrix_rows(const backend_matrix *m, int64_t r0, int64_t rows) {
    backend_matrix v = *m;
    v.rows = rows;
    v.data = (const uint8_t *)m->data + (size_t)r0 * strata_type_row_bytes(m->type, m->cols);
    return v;
}

/* A stack of expert matrices (ne [cols, rows, n_expert]) as matmul_id takes it: one
 * expert's shape, data at expert 0. Never relaid out (model_relayouts: 2-D only). */
static strata_status place_experts(model_segment *sg, const model_desc *d, const gguf_tensor *t, backend_matrix *m) {
    strata_status st = place_matrix(sg, d, t, "expert weights", m);
    m->rows = t->ne[1];
    return st;
}

/* Puts the segment's weights where its ops read them, in slot order (the order
 * model_layer_slots lists them, the order the sizing functions count them). */
static strata_status segment_weights(model_segment *sg, const model_desc *d, const model_params *p) {
    int32_t nl = sg->layer_end - sg->layer_start;
    sg->layers = calloc((size_t)(nl > 0 ? nl : 1), sizeof *sg->layers);
    if (!sg->layers) return strata_fail(STRATA_ERR_NOMEM, "model: out of memory");
    size_t used0 = sg->dev->arena.used;
    strata_status st = STRATA_OK;
    for (int32_t i = 0; i < nl && st == STRATA_OK; i++) {
        const model_layer *L = &d->layers[sg->layer_start + i];
        model_seg_layer *S = &sg->layers[i];
        const char *w = "weights";
        if (st == STRATA_OK) st = place_vector(sg, d, L->attn_norm, w, &S->attn_norm);
        if (st == STRATA_OK && L->wq) st = place_matrix(sg, d, L->wq, w, &S->wq);
        if (st == STRATA_OK && L->wk) st = place_matrix(sg, d, L->wk, w, &S->wk);
        if (st == STRATA_OK && L->wv) st = place_matrix(sg, d, L->wv, w, &S->wv);
        if (st == STRATA_OK) st = place_matrix(sg, d, L->wo, w, &S->wo);
        if (st == STRATA_OK) st = place_vector(sg, d, L->bq, w, &S->bq);
        if (st == STRATA_OK) st = place_vector(sg, d, L->bk, w, &S->bk);
        if (st == STRATA_OK) st = place_vector(sg, d, L->bv, w, &S->bv);
        if (st == STRATA_OK) st = place_vector(sg, d, L->q_norm, w, &S->q_norm);
        if (st == STRATA_OK) st = place_vector(sg, d, L->k_norm, w, &S->k_norm);
        if (st == STRATA_OK) st = place_vector(sg, d, L->ffn_norm, w, &S->ffn_norm);
        if (st == STRATA_OK && L->w_gate) st = place_matrix(sg, d, L->w_gate, w, &S->w_gate);
        if (st == STRATA_OK && L->w_up) st = place_matrix(sg, d, L->w_up, w, &S->w_up);
        if (st == STRATA_OK && L->w_down) st = place_matrix(sg, d, L->w_down, w, &S->w_down);
        if (st == STRATA_OK && L->wqkv) {
            const model_hparams *hp = &d->hp;
            const int64_t qd = (int64_t)hp->n_head * hp->head_dim, kvd = (int64_t)hp->n_head_kv * hp->head_dim;
            backend_matrix all;
            st = place_matrix(sg, d, L->wqkv, w, &all);
            S->wq = matrix_rows(&all, 0, qd);
            S->wk = matrix_rows(&all, qd, kvd);
            S->wv = matrix_rows(&all, qd + kvd, kvd);
        }
        if (st == STRATA_OK && L->w_gate_up) {
            backend_matrix all;
            st = place_matrix(sg, d, L->w_gate_up, w, &all);
            S->w_gate = matrix_rows(&all, 0, d->hp.n_ff);
            S->w_up = matrix_rows(&all, d->hp.n_ff, d->hp.n_ff);
        }
        if (st == STRATA_OK) st = place_vector(sg, d, L->attn_post_norm, w, &S->attn_post_norm);
        if (st == STRATA_OK) st = place_vector(sg, d, L->ffn_post_norm, w, &S->ffn_post_norm);
        S->moe = L->ffn_gate_inp != NULL;
        S->host_experts = model_layer_host_experts(d, p, sg->ops, sg->layer_start + i);
        if (st == STRATA_OK && S->moe) st = place_matrix(sg, d, L->ffn_gate_inp, w, &S->router);
        if (S->host_experts) {
            /* read by the host's kernels where the file maps them */
            const gguf_tensor *xs[3] = {L->gate_exps, L->up_exps, L->down_exps};
            backend_matrix *ms[3] = {&S->gate_exps, &S->up_exps, &S->down_exps};
            for (int k = 0; k < 3 && st == STRATA_OK; k++) {
                if (!xs[k]->data)
                    st = strata_fail(STRATA_ERR_INVALID, "model: tensor %s has no data", xs[k]->name);
                *ms[k] = (backend_matrix){xs[k]->type, xs[k]->ne[1], xs[k]->ne[0], xs[k]->data, 0};
            }
        } else {
            if (st == STRATA_OK && S->moe) st = place_experts(sg, d, L->gate_exps, &S->gate_exps);
            if (st == STRATA_OK && S->moe) st = place_experts(sg, d, L->up_exps, &S->up_exps);
            if (st == STRATA_OK && S->moe) st = place_experts(sg, d, L->down_exps, &S->down_exps);
        }
    }
    if (st == STRATA_OK && sg->has_output) {
        st = place_vector(sg, d, d->output_norm, "output weights", &sg->out_norm);
        if (st == STRATA_OK) st = place_matrix(sg, d, d->output, "output weights", &sg->out_w);
    }
    sg->weights_bytes = sg->dev->arena.used - used0;
    return st;
}

static strata_status segment_init(model_context *ctx, model_segment *sg) {
    const model_desc *d = ctx->d;
    const model_params *p = &ctx->p;
    model_scratch_sizes s = model_scratch_layout(d, sg->ops, sg->layer_start, sg->layer_end, p,
                                                 sg->has_output ? p->n_logits : 0, sg->has_output && p->embeddings);
    strata_device *dev = sg->dev;
    strata_status st = STRATA_OK;
    size_t kvb = model_kv_bytes(&d->hp, p, sg->layer_start, sg->layer_end);
    void *ptr = NULL;
#define CARVE(field, size, what)                                                     \
    do {                                                                             \
        ptr = NULL;                                                                  \
        if (st == STRATA_OK) st = carve(dev, size, what, &ptr);                      \
        sg->field = ptr;                                                             \
    } while (0)
    CARVE(kv, kvb, "KV cache");
    CARVE(x, s.x, "hidden state");
    CARVE(xb, s.xb, "normed state");
    CARVE(q, s.q, "queries");
    CARVE(k, s.k, "keys");
    CARVE(v, s.v, "values");
    CARVE(att_out, s.att_out, "attention output");
    CARVE(g, s.g, "ffn gate");
    CARVE(u, s.u, "ffn up");
    CARVE(rope, s.rope, "rope table");
    CARVE(rope_factors, s.rope_factors, "rope factors");
    CARVE(att, s.att, "attention work");
    CARVE(work, s.work, "matmul work");
    CARVE(logits, s.logits, "logits");
    CARVE(hidden, s.hidden, "hidden states");
    CARVE(rope_swa, s.rope_swa, "rope table (local layers)");
    CARVE(moe_logits, s.moe_logits, "router logits");
    CARVE(moe_ids, s.moe_ids, "expert ids");
    CARVE(moe_w, s.moe_w, "expert weights");
    CARVE(moe_y, s.moe_y, "expert outputs");
#undef CARVE
    sg->kv_bytes = kvb;
    sg->compute_bytes = model_scratch_total(&s);
    if (st == STRATA_OK && sg->rope_factors)
        st = strata_device_copy_in(dev, sg->rope_factors, d->rope_freqs->data, (size_t)d->rope_freqs->bytes);
    if (st == STRATA_OK) st = segment_weights(sg, d, p);
    if (st == STRATA_OK && sg->ops->host_memory) sg->tok_embd = d->tok_embd->data;
    /* Zero once so that no uninitialised byte is ever read; positions are written before
     * they are attended to, so this is for hygiene only. */
    if (st == STRATA_OK && sg->kv) st = sg->ops->memset(dev->backend, sg->kv, 0, kvb);
    return st;
}

static void release_all(model_context *ctx) {
    for (int32_t i = 0; i < ctx->n_segs; i++) {
        model_segment *sg = &ctx->segs[i];
        if (sg->dev) strata_device_release(sg->dev);
        free(sg->layers);
        sg->layers = NULL;
    }
    free(ctx->staging);
    free(ctx->host_logits);
    free(ctx->host_hidden);
    free(ctx->host_moe);
    ctx->host_moe = NULL;
    ctx->staging = ctx->host_logits = ctx->host_hidden = NULL;
}

/* Host buffers the context needs (internal.h): only where a device's memory is not host
 * memory. */
static strata_status host_buffers(model_context *ctx) {
    const model_hparams *hp = &ctx->d->hp;
    const model_segment *first = &ctx->segs[0], *last = &ctx->segs[ctx->n_segs - 1];
    bool staging = !first->ops->host_memory;
    for (int32_t i = 1; i < ctx->n_segs; i++) {
        const backend_ops *a = ctx->segs[i - 1].ops, *b = ctx->segs[i].ops;
        if (!a->host_memory && !b->host_memory && (a != b || !a->copy_peer)) staging = true;
    }
    if (staging) ctx->staging = malloc((size_t)ctx->p.n_batch * hp->n_embd * sizeof(float));
    if (!last->ops->host_memory) {
        ctx->host_logits = malloc((size_t)ctx->p.n_logits * hp->n_vocab * sizeof(float));
        if (ctx->p.embeddings) ctx->host_hidden = malloc((size_t)ctx->p.n_batch * hp->n_embd * sizeof(float));
    }
    if ((staging && !ctx->staging) || (!last->ops->host_memory && !ctx->host_logits) ||
        (!last->ops->host_memory && ctx->p.embeddings && !ctx->host_hidden))
        return strata_fail(STRATA_ERR_NOMEM, "model: out of host memory for the context's read-back buffers");
    bool host_moe = false;
    for (int32_t i = 0; i < ctx->n_segs; i++)
        for (int32_t il = ctx->segs[i].layer_start; il < ctx->segs[i].layer_end; il++)
            host_moe = host_moe || model_layer_host_experts(ctx->d, &ctx->p, ctx->segs[i].ops, il);
    if (host_moe) {
        ctx->host_moe = malloc(model_host_moe_bytes(ctx->d, &ctx->p));
        if (!ctx->host_moe) return strata_fail(STRATA_ERR_NOMEM, "model: out of host memory for the host's experts");
    }
    ctx->logits = ctx->host_logits ? ctx->host_logits : last->logits;
    ctx->hidden = ctx->host_hidden ? ctx->host_hidden : last->hidden;
    return STRATA_OK;
}

strata_status model_context_init_placed(const model_desc *d, const model_params *params,
                                        const model_placement *place, int32_t n_place, model_context **out) {
    *out = NULL;
    if (n_place < 1) return strata_fail(STRATA_ERR_INVALID, "model: no device to place the layers on");
    int32_t next = 0;
    for (int32_t i = 0; i < n_place; i++) {
        const model_placement *pl = &place[i];
        if (!pl->dev || pl->layer_start != next || pl->layer_end < pl->layer_start || pl->layer_end > d->hp.n_layer ||
            pl->has_output != (i == n_place - 1))
            return strata_fail(STRATA_ERR_INVALID,
                               "model: placement %d (layers %d..%d) is not the contiguous continuation of layer %d "
                               "with the output layer on the last device",
                               (int)i, pl->layer_start, pl->layer_end, next);
        for (int32_t k = 0; k < i; k++)
            if (place[k].dev == pl->dev)
                return strata_fail(STRATA_ERR_INVALID, "model: device %s placed twice (one arena per device)",
                                   pl->dev->name);
        if (!strata_device_ops(pl->dev))
            return strata_fail(STRATA_ERR_UNSUPPORTED, "model: device %s cannot run layers in this build",
                               pl->dev->name);
        next = pl->layer_end;
    }
    if (next != d->hp.n_layer)
        return strata_fail(STRATA_ERR_INVALID, "model: placement covers layers 0..%d of %d", next, d->hp.n_layer);

    model_context *ctx = calloc(1, sizeof *ctx);
    model_segment *segs = calloc((size_t)n_place, sizeof *segs);
    if (!ctx || !segs) {
        free(ctx);
        free(segs);
        return strata_fail(STRATA_ERR_NOMEM, "model: out of memory");
    }
    ctx->d = d;
    ctx->p = *params;
    ctx->segs = segs;
    strata_status st = model_params_resolve(&d->hp, &ctx->p);
    for (int32_t il = 0; st == STRATA_OK && il < d->hp.n_layer; il++)
        if (model_kv_rows(&d->hp, &ctx->p, il) < ctx->p.n_ctx) ctx->ring = true;
    for (int32_t i = 0; i < n_place && st == STRATA_OK; i++) {
        model_segment *sg = &segs[i];
        sg->layer_start = place[i].layer_start;
        sg->layer_end = place[i].layer_end;
        sg->has_output = place[i].has_output;
        sg->ops = strata_device_ops(place[i].dev);
        sg->ex = (backend_exec){place[i].dev->backend, ctx->p.n_threads};
        size_t bytes = model_device_arena_bytes(d, &ctx->p, sg->ops, sg->layer_start, sg->layer_end, sg->has_output);
        st = strata_device_reserve(place[i].dev, bytes);
        if (st != STRATA_OK) break;
        sg->dev = place[i].dev;
        ctx->n_segs = i + 1;
        st = segment_init(ctx, sg);
        /* The plan is the allocation: the arena is exactly what the sizing functions said. */
        if (st == STRATA_OK && sg->dev->arena.used != sg->dev->arena.size)
            st = strata_fail(STRATA_ERR_INVALID, "model: planned %zu bytes on %s but allocated %zu",
                             sg->dev->arena.size, sg->dev->name, sg->dev->arena.used);
    }
    if (st == STRATA_OK) st = host_buffers(ctx);
    if (st != STRATA_OK) {
        release_all(ctx);
        free(segs);
        free(ctx);
        return st;
    }
    *out = ctx;
    return STRATA_OK;
}

strata_status model_context_init(const model_desc *d, const model_params *params, strata_device *dev,
                                 model_context **out) {
    model_placement all = {dev, 0, d->hp.n_layer, true};
    return model_context_init_placed(d, params, &all, 1, out);
}

void model_context_free(model_context *ctx) {
    if (!ctx) return;
    release_all(ctx);
    free(ctx->segs);
    free(ctx);
}

const float *model_hidden(const model_context *ctx, int32_t i) {
    if (!ctx->hidden) return NULL;
    STRATA_ASSERT(i >= 0 && i < ctx->n_hidden);
    return ctx->hidden + (size_t)i * ctx->d->hp.n_embd;
}

int32_t model_hidden_count(const model_context *ctx) { return ctx->n_hidden; }

int32_t model_context_segments(const model_context *ctx) { return ctx->n_segs; }

void model_context_segment_usage(const model_context *ctx, int32_t i, model_segment_usage *out) {
    STRATA_ASSERT(i >= 0 && i < ctx->n_segs);
    const model_segment *sg = &ctx->segs[i];
    out->dev = sg->dev;
    out->layer_start = sg->layer_start;
    out->layer_end = sg->layer_end;
    out->has_output = sg->has_output;
    out->weights_bytes = sg->weights_bytes;
    out->kv_bytes = sg->kv_bytes;
    out->compute_bytes = sg->compute_bytes;
    out->arena_bytes = sg->dev->arena.size;
}

const float *model_logits(const model_context *ctx, int32_t i) {
    STRATA_ASSERT(i >= 0 && i < ctx->n_out);
    return ctx->logits + (size_t)i * ctx->d->hp.n_vocab;
}

int32_t model_logits_count(const model_context *ctx) { return ctx->n_out; }
