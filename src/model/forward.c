/* Sizing, KV cache and the one forward pass for every architecture of the table.
 *
 * Per layer:  x += Wo · attn(rope(norm_qk(Wq·n(x) + bq)), rope(norm_qk(Wk·n(x) + bk)), Wv·n(x) + bv)
 *             x += Wdown · (silu(Wgate·n(x)) * (Wup·n(x)))
 * with optional pieces (biases, per-head Q/K norms, rope frequency factors) present or not
 * according to the architecture table; the RoPE pair order is the table's rope style.
 *
 * Layout of the KV cache (one block per segment, from the device arena): for each layer,
 * K then V, each [n_head_kv][n_ctx][head_dim] rows of kv_type. A head's keys are thus
 * contiguous rows, so the attention scores of a query block are one cpu_matmul with the
 * cached keys as the "weights" (F32, F16 or Q8_0 rows, exactly like a weight matrix).
 *
 * Every weight product goes through cpu_matmul; the forward pass itself never allocates. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_count.h"
#include "backend/cpu/matmul.h"
#include "backend/cpu/repack.h"
#include "backend/cpu/vec.h"
#include "backend/cpu/threadpool.h"
#include "core/fp16.h"
#include "model/model.h"
#include "tensor/quant.h"

/* Query rows per attention block: bounds the score scratch to ATT_QCHUNK x n_ctx floats per
 * KV head whatever num_batch is, while keeping cpu_matmul calls wide enough to be efficient. */
#define ATT_QCHUNK 32

/* A decode step over more than ATT_KCHUNK positions splits each KV head's positions into
 * chunks of that many, one pool item each, whose softmax terms and weighted sums are combined
 * afterwards (attend_chunk, combine_chunks): otherwise the step's attention has one item per
 * KV head, and a model with fewer KV heads than threads (Qwen2.5: 2) leaves the other threads
 * idle while the longest part of a long conversation's step runs. Chunks are fixed spans of
 * positions, so the result does not depend on the number of threads. */
#define ATT_KCHUNK 256

static int32_t att_kchunks(int32_t n_keys) { return (n_keys + ATT_KCHUNK - 1) / ATT_KCHUNK; }

/* A batch's attention is one pool item per KV head and lane: a KV head's blocks of query
 * rows are dealt to its lanes in turn, each lane with scratch of its own, so that there are at
 * least ATT_MIN_ITEMS items however few KV heads the model has (one per KV head left a
 * 1-KV-head model's long prompt attention on one thread). The lanes depend on the model
 * only, so the scratch does not depend on the thread count, nor the results on either. */
#define ATT_MIN_ITEMS 8

static int32_t att_lanes(const model_hparams *hp) { return (ATT_MIN_ITEMS + hp->n_head_kv - 1) / hp->n_head_kv; }

/* ---- options ---------------------------------------------------------------------- */

int model_physical_cores(void) { return cpu_count_physical_cores(); }

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
    if (!cpu_matmul_supports(p->kv_type))
        return strata_fail(STRATA_ERR_UNSUPPORTED, "model: the CPU kernels cannot multiply a %s KV cache",
                           strata_type_name(p->kv_type));
    return STRATA_OK;
}

/* ---- sizing ----------------------------------------------------------------------- */

static size_t head_row_bytes(const model_hparams *hp, strata_type kv_type) {
    return strata_type_row_bytes(kv_type, hp->head_dim);
}

size_t model_kv_bytes_per_token(const model_hparams *hp, strata_type kv_type) {
    return 2 * (size_t)hp->n_head_kv * head_row_bytes(hp, kv_type);
}

/* Bytes of one layer's K (or V) block: [n_head_kv][n_ctx] rows. */
static size_t kv_block_bytes(const model_hparams *hp, strata_type kv_type, int32_t n_ctx) {
    return (size_t)hp->n_head_kv * (size_t)n_ctx * head_row_bytes(hp, kv_type);
}

size_t model_kv_bytes(const model_hparams *hp, strata_type kv_type, int32_t n_ctx, int32_t layer_start,
                      int32_t layer_end) {
    if (layer_end <= layer_start) return 0;
    return strata_arena_round(2 * (size_t)(layer_end - layer_start) * kv_block_bytes(hp, kv_type, n_ctx));
}

size_t model_layer_weight_bytes(const model_desc *d, int32_t il) {
    const model_layer *L = &d->layers[il];
    const gguf_tensor *ts[] = {L->attn_norm, L->wq, L->wk, L->wv, L->wo, L->bq, L->bk,
                               L->bv, L->q_norm, L->k_norm, L->ffn_norm, L->w_gate, L->w_up, L->w_down};
    size_t n = 0;
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        if (ts[i]) n += ts[i]->bytes;
    return n;
}

size_t model_output_weight_bytes(const model_desc *d) {
    size_t n = d->output_norm->bytes;
    if (d->output != d->tok_embd) n += d->output->bytes;
    return n;
}

/* A layer's tensors in slot order (NULL where absent): the order they are copied in. */
static int layer_slots(model_layer *L, const gguf_tensor ***slots) {
    const gguf_tensor **all[] = {&L->attn_norm, &L->wq, &L->wk, &L->wv, &L->wo, &L->bq, &L->bk,
                                 &L->bv, &L->q_norm, &L->k_norm, &L->ffn_norm, &L->w_gate, &L->w_up, &L->w_down};
    int n = (int)(sizeof all / sizeof all[0]);
    for (int i = 0; i < n; i++) slots[i] = all[i];
    return n;
}

/* Arena bytes of layer il's tensors: all of them, or only those a CPU repacks. */
static size_t layer_arena_bytes(const model_desc *d, int32_t il, bool repacked_only) {
    model_layer L = d->layers[il];
    const gguf_tensor **slots[16];
    int n = layer_slots(&L, slots);
    size_t b = 0;
    for (int i = 0; i < n; i++)
        if (repacked_only ? model_cpu_repacks(*slots[i]) : *slots[i] != NULL)
            b += strata_arena_round((size_t)(*slots[i])->bytes);
    return b;
}

size_t model_layer_weight_arena_bytes(const model_desc *d, int32_t il) { return layer_arena_bytes(d, il, false); }

/* On the CPU, the matrices whose type has a repacked layout (backend/cpu/repack.h: today
 * Q4_0 and Q4_K) are copied into the arena in that layout at load time (the same bytes,
 * rounded like any arena allocation), for kernels that read them with fewer operations;
 * the rest stays in the mapping. */
bool model_cpu_repacks(const gguf_tensor *t) {
    return t && cpu_repack_applies(t->type, t->ne[1], t->ne[0]) && t->ne[2] == 1 && t->ne[3] == 1;
}

size_t model_layer_cpu_repack_bytes(const model_desc *d, int32_t il) { return layer_arena_bytes(d, il, true); }

size_t model_output_cpu_repack_bytes(const model_desc *d) {
    return model_cpu_repacks(d->output) ? strata_arena_round((size_t)d->output->bytes) : 0;
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

/* The compute scratch of a segment, in the order model_context_init carves it. Each entry is
 * rounded like an arena allocation, so the sum is exactly what the arena hands out. */
typedef struct {
    size_t x, xb, q, k, v, att, g, u, rope, att_v, att_q, att_s, att_work, att_po, att_pm, att_pl, work, logits, hidden;
} scratch_sizes;

/* Per KV head: the bytes of its cpu_matmul work area (of a block of ATT_QCHUNK query rows,
 * or, in a split decode step, of att_kchunks(n_ctx) areas of one chunk's rows each), and of
 * its scores (ATT_QCHUNK rows of n_ctx, or a block per chunk). */
static size_t att_chunk_work_bytes(const model_hparams *hp, strata_type kv_type) {
    const int32_t group = hp->n_head / hp->n_head_kv;
    return strata_arena_round(cpu_matmul_work_bytes(kv_type, hp->head_dim, group < ATT_QCHUNK ? group : ATT_QCHUNK));
}

static size_t att_head_work_bytes(const model_hparams *hp, strata_type kv_type, int32_t n_ctx) {
    const size_t block = strata_arena_round(cpu_matmul_work_bytes(kv_type, hp->head_dim, ATT_QCHUNK));
    const size_t chunks = n_ctx > ATT_KCHUNK ? (size_t)att_kchunks(n_ctx) * att_chunk_work_bytes(hp, kv_type) : 0;
    return block > chunks ? block : chunks;
}

static size_t att_head_score_floats(int32_t n_ctx) {
    return (size_t)ATT_QCHUNK * (n_ctx > ATT_KCHUNK ? (size_t)att_kchunks(n_ctx) * ATT_KCHUNK : (size_t)n_ctx);
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

/* Whether attention reads the cache's value rows through an F32 copy (att_v): a quantized
 * cache's; F16 and F32 rows are read where they are. */
static bool values_widened(strata_type kv_type) { return kv_type != STRATA_TYPE_F16 && kv_type != STRATA_TYPE_F32; }

static scratch_sizes scratch_layout(const model_desc *d, int32_t layer_start, int32_t layer_end, int32_t nb,
                                    int32_t n_ctx, int32_t n_logits, bool hidden, strata_type kv_type) {
    const model_hparams *hp = &d->hp;
    size_t f = sizeof(float);
    size_t qd = (size_t)hp->n_head * hp->head_dim, kvd = (size_t)hp->n_head_kv * hp->head_dim;
    scratch_sizes s = {0};
    s.x = strata_arena_round((size_t)nb * hp->n_embd * f);
    s.xb = strata_arena_round((size_t)nb * hp->n_embd * f);
    size_t work = 0;
    if (layer_end > layer_start) {
        s.q = strata_arena_round((size_t)nb * qd * f);
        s.k = strata_arena_round((size_t)nb * kvd * f);
        s.v = strata_arena_round((size_t)nb * kvd * f);
        s.att = strata_arena_round((size_t)nb * qd * f);
        s.g = strata_arena_round((size_t)nb * hp->n_ff * f);
        s.u = strata_arena_round((size_t)nb * hp->n_ff * f);
        s.rope = strata_arena_round((size_t)nb * hp->rope_dim * f);
        /* per KV head: its values widened to F32 (a quantized cache only: F16 and F32 rows are
         * read where they are), a block of gathered queries, their scores */
        if (values_widened(kv_type))
            s.att_v = strata_arena_round((size_t)hp->n_head_kv * n_ctx * hp->head_dim * f);
        const size_t slots = (size_t)hp->n_head_kv * att_lanes(hp); /* (KV head, lane) */
        s.att_q = strata_arena_round(slots * ATT_QCHUNK * hp->head_dim * f);
        s.att_s = strata_arena_round(slots * att_head_score_floats(n_ctx) * f);
        s.att_work = strata_arena_round(slots * att_head_work_bytes(hp, kv_type, n_ctx));
        if (n_ctx > ATT_KCHUNK) {
            /* a split decode step's parts, per query head and chunk: weighted sums, maxima, sums */
            const size_t parts = (size_t)hp->n_head * att_kchunks(n_ctx);
            s.att_po = strata_arena_round(parts * hp->head_dim * f);
            s.att_pm = strata_arena_round(parts * f);
            s.att_pl = strata_arena_round(parts * sizeof(double));
        }
        for (int32_t il = layer_start; il < layer_end; il++) {
            const model_layer *L = &d->layers[il];
            const gguf_tensor *ws[] = {L->wq, L->wk, L->wv, L->wo, L->w_gate, L->w_up, L->w_down};
            for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
                work = max_sz(work, cpu_matmul_work_bytes(ws[i]->type, ws[i]->ne[0], nb));
        }
    }
    if (n_logits > 0) {
        work = max_sz(work, cpu_matmul_work_bytes(d->output->type, d->output->ne[0], n_logits));
        s.logits = strata_arena_round((size_t)n_logits * hp->n_vocab * f);
        /* every token's output-norm state, for embeddings */
        if (hidden) s.hidden = strata_arena_round((size_t)nb * hp->n_embd * f);
    }
    s.work = strata_arena_round(work);
    return s;
}

static size_t scratch_total(const scratch_sizes *s) {
    return s->x + s->xb + s->q + s->k + s->v + s->att + s->g + s->u + s->rope + s->att_v + s->att_q + s->att_s +
           s->att_work + s->att_po + s->att_pm + s->att_pl + s->work + s->logits + s->hidden;
}

size_t model_compute_bytes(const model_desc *d, const model_params *p, int32_t layer_start, int32_t layer_end,
                           bool produces_logits) {
    scratch_sizes s = scratch_layout(d, layer_start, layer_end, p->n_batch, p->n_ctx,
                                     produces_logits ? p->n_logits : 0, produces_logits && p->embeddings, p->kv_type);
    return scratch_total(&s);
}

size_t model_segment_bytes(const model_desc *d, const model_params *p, int32_t layer_start, int32_t layer_end,
                           bool has_output) {
    return model_kv_bytes(&d->hp, p->kv_type, p->n_ctx, layer_start, layer_end) +
           model_compute_bytes(d, p, layer_start, layer_end, has_output);
}

size_t model_device_arena_bytes(const model_desc *d, const model_params *p, int32_t layer_start, int32_t layer_end,
                                bool has_output, bool copy_weights) {
    size_t repacked = 0;
    if (!copy_weights) {
        for (int32_t il = layer_start; il < layer_end; il++) repacked += model_layer_cpu_repack_bytes(d, il);
        if (has_output) repacked += model_output_cpu_repack_bytes(d);
    }
    return model_segment_bytes(d, p, layer_start, layer_end, has_output) +
           (copy_weights ? model_weight_arena_bytes(d, layer_start, layer_end, has_output) : repacked);
}

/* ---- context ---------------------------------------------------------------------- */

typedef struct {
    strata_device *dev;
    int32_t layer_start, layer_end;
    bool has_output;
    uint8_t *kv; /* per layer: K block then V block */
    float *x, *xb, *q, *k, *v, *att, *g, *u, *rope, *att_v, *att_q, *att_s, *att_po, *att_pm, *logits, *hidden;
    double *att_pl;
    uint8_t *att_work, *work;
    size_t att_work_stride; /* bytes per (KV head, lane) slot */
    /* The weights this segment reads: the desc's (mapped) or, with copy_weights, copies of
     * the tensor records whose data lies in the device's arena (host heap, owned). */
    model_layer *layers;                 /* indexed by il - layer_start */
    gguf_tensor *copies;                 /* owned records when copied, else NULL */
    size_t n_copies;                     /* records in use */
    const gguf_tensor *out_norm, *out_w; /* output layer (has_output only) */
    size_t weights_bytes, kv_bytes, compute_bytes;
} model_segment;

struct model_context {
    const model_desc *d;
    model_params p;
    size_t head_row; /* bytes of one cached head row */
    size_t kv_block; /* bytes of one layer's K (or V) block */
    model_segment *segs; /* in layer order; the last one holds the output layer */
    int32_t n_segs;
    int32_t n_out;
    int32_t n_hidden;
};

const model_params *model_context_params(const model_context *ctx) { return &ctx->p; }

static strata_status carve(strata_device *dev, size_t bytes, const char *what, void **out) {
    *out = NULL;
    if (bytes == 0) return STRATA_OK;
    *out = strata_device_alloc(dev, bytes, what);
    return *out ? STRATA_OK : STRATA_ERR_NOMEM;
}

/* Whether the device's layers run on the CPU kernels, whose layouts (backend/cpu/repack.h)
 * its matrices then take: today every device (the CPU, and a sim, which computes with the
 * CPU kernels on its arena), so that a split computes what the CPU alone computes, bit for
 * bit. A device with kernels of its own (CUDA, once it has them) keeps the GGUF layout. */
static bool runs_cpu_kernels(const strata_device *dev) {
    return !dev->backend || dev->backend->kind != BACKEND_DEVICE_CUDA;
}

/* Writes matrix t in its repacked layout at dst: straight into the arena on the CPU; on a
 * device whose arena is written only through strata_device_copy_in (a sim), through a host
 * buffer of the matrix's size. */
static strata_status repack_into(model_segment *sg, void *dst, const gguf_tensor *t, int n_threads) {
    if (!sg->dev->copy_weights) {
        cpu_repack(t->type, t->data, dst, t->ne[1], t->ne[0], n_threads);
        return STRATA_OK;
    }
    void *buf = malloc((size_t)t->bytes);
    if (!buf) return strata_fail(STRATA_ERR_NOMEM, "model: out of memory repacking %s", t->name);
    cpu_repack(t->type, t->data, buf, t->ne[1], t->ne[0], n_threads);
    strata_status st = strata_device_copy_in(sg->dev, dst, buf, (size_t)t->bytes);
    free(buf);
    return st;
}

/* Puts the tensor *slot points at into the segment's arena, as record sg->copies[*k], and
 * points *slot at that record: repacked when the device runs the CPU kernels and the type
 * has a layout of theirs (model_cpu_repacks), else copied as it is. On the CPU
 * (`repack_only`) the other tensors stay where they are, in the mapping. */
static strata_status place_tensor(model_segment *sg, const model_desc *d, const gguf_tensor **slot, const char *what,
                                  bool repack_only, int n_threads, size_t *k) {
    const gguf_tensor *t = *slot;
    if (!t) return STRATA_OK;
    const bool repack = runs_cpu_kernels(sg->dev) && model_cpu_repacks(t);
    if (repack_only && !repack) return STRATA_OK;
    if (!t->data)
        return strata_fail(STRATA_ERR_INVALID, "model: tensor %s has no data to copy to %s", t->name, sg->dev->name);
    void *dst = strata_device_alloc(sg->dev, (size_t)t->bytes, what);
    if (!dst) return STRATA_ERR_NOMEM;
    strata_status st =
        repack ? repack_into(sg, dst, t, n_threads) : strata_device_copy_in(sg->dev, dst, t->data, (size_t)t->bytes);
    if (st != STRATA_OK) return st;
    /* the mapped pages are not read again (the token embeddings are, even when tied to the
     * output matrix): out of the resident set, so that the copy is not counted twice */
    if (t != d->tok_embd) gguf_release_data(d->file, t->data, t->bytes);
    sg->copies[*k] = *t;
    sg->copies[*k].data = dst;
    *slot = &sg->copies[(*k)++];
    return STRATA_OK;
}

/* Points the segment at its weights: the desc's mapped tensors, or, on a device that copies
 * them, one arena allocation per tensor filled with strata_device_copy_in (in slot order, the
 * order model_weight_arena_bytes counts them). */
static strata_status segment_weights(model_segment *sg, const model_desc *d, int n_threads) {
    int32_t nl = sg->layer_end - sg->layer_start;
    sg->layers = calloc((size_t)(nl > 0 ? nl : 1), sizeof *sg->layers);
    if (!sg->layers) return strata_fail(STRATA_ERR_NOMEM, "model: out of memory");
    for (int32_t i = 0; i < nl; i++) sg->layers[i] = d->layers[sg->layer_start + i];
    sg->out_norm = sg->has_output ? d->output_norm : NULL;
    sg->out_w = sg->has_output ? d->output : NULL;
    size_t n_copies = (size_t)nl * 16 + 2;
    sg->copies = calloc(n_copies, sizeof *sg->copies);
    if (!sg->copies) return strata_fail(STRATA_ERR_NOMEM, "model: out of memory");
    size_t used0 = sg->dev->arena.used, k = 0;
    const bool repack_only = !sg->dev->copy_weights; /* the CPU: the rest stays mapped */
    for (int32_t i = 0; i < nl; i++) {
        const gguf_tensor **slots[16];
        int ns = layer_slots(&sg->layers[i], slots);
        for (int j = 0; j < ns; j++) {
            strata_status st = place_tensor(sg, d, slots[j], "weights", repack_only, n_threads, &k);
            if (st != STRATA_OK) return st;
        }
    }
    if (sg->has_output) {
        const gguf_tensor **dsts[2] = {&sg->out_norm, &sg->out_w};
        for (int j = 0; j < 2; j++) {
            strata_status st = place_tensor(sg, d, dsts[j], "output weights", repack_only, n_threads, &k);
            if (st != STRATA_OK) return st;
        }
    }
    sg->n_copies = k;
    sg->weights_bytes = sg->dev->arena.used - used0;
    return STRATA_OK;
}

static strata_status segment_init(model_context *ctx, model_segment *sg) {
    const model_desc *d = ctx->d;
    const model_params *p = &ctx->p;
    scratch_sizes s = scratch_layout(d, sg->layer_start, sg->layer_end, p->n_batch, p->n_ctx,
                                     sg->has_output ? p->n_logits : 0, sg->has_output && p->embeddings, p->kv_type);
    strata_device *dev = sg->dev;
    strata_status st = STRATA_OK;
    size_t kvb = model_kv_bytes(&d->hp, p->kv_type, p->n_ctx, sg->layer_start, sg->layer_end);
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
    CARVE(att, s.att, "attention output");
    CARVE(g, s.g, "ffn gate");
    CARVE(u, s.u, "ffn up");
    CARVE(rope, s.rope, "rope table");
    CARVE(att_v, s.att_v, "attention values");
    CARVE(att_q, s.att_q, "attention queries");
    CARVE(att_s, s.att_s, "attention scores");
    CARVE(att_work, s.att_work, "attention work");
    CARVE(att_po, s.att_po, "attention partial sums");
    CARVE(att_pm, s.att_pm, "attention partial maxima");
    CARVE(att_pl, s.att_pl, "attention partial totals");
    CARVE(work, s.work, "matmul work");
    CARVE(logits, s.logits, "logits");
    CARVE(hidden, s.hidden, "hidden states");
#undef CARVE
    sg->kv_bytes = kvb;
    sg->compute_bytes = scratch_total(&s);
    sg->att_work_stride = att_head_work_bytes(&d->hp, ctx->p.kv_type, ctx->p.n_ctx);
    if (st == STRATA_OK) st = segment_weights(sg, d, ctx->p.n_threads);
    if (st == STRATA_OK && sg->kv) {
        /* Zero once so that no uninitialised byte is ever read; positions are written before
         * they are attended to, so this is for hygiene only. */
        memset(sg->kv, 0, kvb);
    }
    return st;
}

static void release_all(model_context *ctx) {
    for (int32_t i = 0; i < ctx->n_segs; i++) {
        model_segment *sg = &ctx->segs[i];
        if (sg->dev) strata_device_release(sg->dev);
        free(sg->layers);
        free(sg->copies);
        sg->layers = NULL;
        sg->copies = NULL;
    }
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
    ctx->head_row = head_row_bytes(&d->hp, ctx->p.kv_type);
    ctx->kv_block = kv_block_bytes(&d->hp, ctx->p.kv_type, ctx->p.n_ctx);
    for (int32_t i = 0; i < n_place && st == STRATA_OK; i++) {
        model_segment *sg = &segs[i];
        sg->layer_start = place[i].layer_start;
        sg->layer_end = place[i].layer_end;
        sg->has_output = place[i].has_output;
        size_t bytes = model_device_arena_bytes(d, &ctx->p, sg->layer_start, sg->layer_end, sg->has_output,
                                                place[i].dev->copy_weights);
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
    const model_segment *sg = &ctx->segs[ctx->n_segs - 1];
    if (!sg->hidden) return NULL;
    STRATA_ASSERT(i >= 0 && i < ctx->n_hidden);
    return sg->hidden + (size_t)i * ctx->d->hp.n_embd;
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
    return ctx->segs[ctx->n_segs - 1].logits + (size_t)i * ctx->d->hp.n_vocab;
}

int32_t model_logits_count(const model_context *ctx) { return ctx->n_out; }

/* ---- building blocks -------------------------------------------------------------- */

/* Whether w is one of the segment's repacked copies (place_tensor). */
static bool repacked(const model_segment *sg, const gguf_tensor *w) {
    return sg->copies && w >= sg->copies && w < sg->copies + sg->n_copies && runs_cpu_kernels(sg->dev) &&
           model_cpu_repacks(w);
}

static void matmul(const model_segment *sg, const gguf_tensor *w, const float *x, int32_t n, float *y, int nt) {
    if (repacked(sg, w))
        cpu_matmul_repacked(cpu_isa_detect(), w->type, w->data, w->ne[1], w->ne[0], x, n, y, sg->work, nt);
    else
        cpu_matmul(w->type, w->data, w->ne[1], w->ne[0], x, n, y, sg->work, nt);
}

/* Products of the same input as one pool job (cpu_matmul_parts): Q, K, V; gate, up. */
static void matmul_parts(const model_segment *sg, const gguf_tensor *const *ws, float *const *ys, int n_parts,
                         const float *x, int32_t n, int nt) {
    cpu_matmul_part parts[CPU_MATMUL_MAX_PARTS];
    for (int i = 0; i < n_parts; i++)
        parts[i] = (cpu_matmul_part){ws[i]->type, ws[i]->data, ws[i]->ne[1], ys[i], repacked(sg, ws[i])};
    cpu_matmul_parts(parts, n_parts, ws[0]->ne[0], x, n, sg->work, nt);
}

static void add_bias(float *y, const gguf_tensor *b, int32_t n, int64_t dim) {
    if (!b) return;
    const float *bv = b->data;
    for (int32_t i = 0; i < n; i++)
        for (int64_t j = 0; j < dim; j++) y[i * dim + j] += bv[j];
}

/* cos/sin of every rotated pair for each token of the batch: rope[i][2j], rope[i][2j+1]. */
static void rope_table(const model_context *ctx, float *rope, int32_t n, int32_t pos) {
    const model_hparams *hp = &ctx->d->hp;
    const float *ff = ctx->d->rope_freqs ? ctx->d->rope_freqs->data : NULL;
    int32_t half = hp->rope_dim / 2;
    for (int32_t i = 0; i < n; i++) {
        double p = (double)(pos + i) * hp->rope_freq_scale;
        for (int32_t j = 0; j < half; j++) {
            double theta = p * pow(hp->rope_freq_base, -2.0 * j / hp->rope_dim);
            if (ff) theta /= ff[j];
            rope[(size_t)i * hp->rope_dim + 2 * j] = (float)cos(theta);
            rope[(size_t)i * hp->rope_dim + 2 * j + 1] = (float)sin(theta);
        }
    }
}

/* Rotates each head of `v` (n tokens x n_heads x head_dim): pairs (2j, 2j+1) in normal
 * order, (j, j + rope_dim/2) in NeoX order; dimensions past rope_dim are left alone. */
static void apply_rope(const model_hparams *hp, float *v, int32_t n, int32_t n_heads, const float *rope) {
    int32_t half = hp->rope_dim / 2;
    bool neox = hp->arch->rope == MODEL_ROPE_NEOX;
    for (int32_t i = 0; i < n; i++) {
        const float *cs = rope + (size_t)i * hp->rope_dim;
        for (int32_t h = 0; h < n_heads; h++) {
            float *x = v + ((size_t)i * n_heads + h) * hp->head_dim;
            for (int32_t j = 0; j < half; j++) {
                int32_t a = neox ? j : 2 * j, b = neox ? j + half : 2 * j + 1;
                float c = cs[2 * j], s = cs[2 * j + 1];
                float x0 = x[a], x1 = x[b];
                x[a] = x0 * c - x1 * s;
                x[b] = x0 * s + x1 * c;
            }
        }
    }
}

static void head_norm(const model_hparams *hp, float *v, int32_t n, int32_t n_heads, const gguf_tensor *w) {
    if (!w) return;
    for (int32_t i = 0; i < n * n_heads; i++) {
        float *x = v + (size_t)i * hp->head_dim;
        cpu_vec_rms_norm(x, x, w->data, hp->head_dim, hp->rms_eps);
    }
}

/* Stores the n new tokens' K and V rows of layer il at positions pos.. in the cache. */
/* Row `t` of KV head h's keys (or values) of layer il in the segment's cache. */
static uint8_t *cache_row(const model_context *ctx, const model_segment *sg, int32_t il, bool values, int32_t h,
                          int32_t t) {
    return sg->kv + ((size_t)(il - sg->layer_start) * 2 + values) * ctx->kv_block +
           ((size_t)h * ctx->p.n_ctx + t) * ctx->head_row;
}

static void kv_store(const model_context *ctx, const model_segment *sg, int32_t il, int32_t n, int32_t pos) {
    const model_hparams *hp = &ctx->d->hp;
    uint8_t *kb = cache_row(ctx, sg, il, false, 0, 0), *vb = cache_row(ctx, sg, il, true, 0, 0);
    for (int32_t h = 0; h < hp->n_head_kv; h++) {
        for (int32_t i = 0; i < n; i++) {
            size_t row = ((size_t)h * ctx->p.n_ctx + pos + i) * ctx->head_row;
            const float *ks = sg->k + ((size_t)i * hp->n_head_kv + h) * hp->head_dim;
            const float *vs = sg->v + ((size_t)i * hp->n_head_kv + h) * hp->head_dim;
            switch (ctx->p.kv_type) {
            case STRATA_TYPE_F32:
                memcpy(kb + row, ks, ctx->head_row);
                memcpy(vb + row, vs, ctx->head_row);
                break;
            case STRATA_TYPE_F16: {
                cpu_vec_f32_to_f16(ks, (uint16_t *)(kb + row), hp->head_dim);
                cpu_vec_f32_to_f16(vs, (uint16_t *)(vb + row), hp->head_dim);
                break;
            }
            default:
                strata_quantize_row(ctx->p.kv_type, ks, kb + row, hp->head_dim);
                strata_quantize_row(ctx->p.kv_type, vs, vb + row, hp->head_dim);
                break;
            }
        }
    }
}

/* The value rows from row k0 of KV head h (vals: that row in the cache) as the weighted sums
 * read them: an F32 cache's where they are; NULL for an F16 cache, whose halves
 * cpu_vec_weighted_rows_f16 reads where they are (F16C widening them as it loads: TinyLlama
 * Q4_0, pp512 at a depth of 1400, 136 -> 140 tokens/s against widening every row into a
 * buffer first); a quantized cache's rows in the head's att_v rows, where dequantize_values
 * puts them. */
static const float *value_rows(const model_context *ctx, const model_segment *sg, int32_t h, const uint8_t *vals,
                               int32_t k0) {
    if (!values_widened(ctx->p.kv_type)) return ctx->p.kv_type == STRATA_TYPE_F32 ? (const float *)vals : NULL;
    return sg->att_v + ((size_t)h * ctx->p.n_ctx + k0) * ctx->d->hp.head_dim;
}

/* Dequantizes n value rows of a quantized cache from vals into their value_rows. */
static void dequantize_values(const model_context *ctx, const model_segment *sg, int32_t h, const uint8_t *vals,
                              int32_t k0, int32_t n) {
    float *buf = (float *)value_rows(ctx, sg, h, vals, k0);
    const int32_t hd = ctx->d->hp.head_dim;
    for (int32_t t = 0; t < n; t++)
        strata_dequantize_row(ctx->p.kv_type, vals + (size_t)t * ctx->head_row, buf + (size_t)t * hd, hd);
}

/* cpu_vec_weighted_rows over the value rows vf, or, where vf is NULL, over the halves at vals. */
static void weighted_values(const float *vf, const uint8_t *vals, const float *w, int64_t w_stride, int64_t nw,
                            int64_t n, int64_t hd, float *out, int64_t out_stride) {
    if (vf) cpu_vec_weighted_rows(w, w_stride, nw, vf, n, hd, out, out_stride);
    else cpu_vec_weighted_rows_f16(w, w_stride, nw, (const uint16_t *)vals, n, hd, out, out_stride);
}

/* Causal attention of the batch's queries over positions [0, pos + n) for KV head h and the
 * query heads that share it (grouped-query attention). Scores are a cpu_matmul of the cached
 * key rows with a block of gathered queries. */
static void attend_kv_head(const model_context *ctx, const model_segment *sg, int32_t il, int32_t h, int32_t lane,
                           int32_t n, int32_t pos) {
    const model_hparams *hp = &ctx->d->hp;
    const int32_t hd = hp->head_dim, n_ctx = ctx->p.n_ctx;
    const int32_t group = hp->n_head / hp->n_head_kv;
    const uint8_t *keys = cache_row(ctx, sg, il, false, h, 0), *vals = cache_row(ctx, sg, il, true, h, 0);
    const int32_t lanes = att_lanes(hp), slot = h * lanes + lane;
    float *qg = sg->att_q + (size_t)slot * ATT_QCHUNK * hd;
    float *sc = sg->att_s + (size_t)slot * att_head_score_floats(n_ctx);
    void *work = sg->att_work + (size_t)slot * sg->att_work_stride;
    const float scale = 1.0f / sqrtf((float)hd);

    /* a quantized cache's rows were dequantized into att_v by widen_values */
    const float *vf = value_rows(ctx, sg, h, vals, 0);

    /* Rows of the query block: (token i, head qh) pairs, token-major; this lane's blocks. */
    const int32_t total = n * group;
    for (int32_t r0 = lane * ATT_QCHUNK; r0 < total; r0 += lanes * ATT_QCHUNK) {
        int32_t nr = total - r0 < ATT_QCHUNK ? total - r0 : ATT_QCHUNK;
        /* Keys needed by this block: up to the last token's position. */
        int32_t last_tok = (r0 + nr - 1) / group;
        int32_t n_keys = pos + last_tok + 1;
        for (int32_t r = 0; r < nr; r++) {
            int32_t i = (r0 + r) / group, qh = h * group + (r0 + r) % group;
            memcpy(qg + (size_t)r * hd, sg->q + ((size_t)i * hp->n_head + qh) * hd, (size_t)hd * sizeof(float));
        }
        cpu_matmul(ctx->p.kv_type, keys, n_keys, hd, qg, nr, sc, work, 1);
        for (int32_t r = 0; r < nr; r++) /* causal: token i sees positions <= pos + i */
            cpu_vec_softmax(sc + (size_t)r * n_keys, pos + (r0 + r) / group + 1, scale);
        /* The block's rows of one token (consecutive query heads of this KV head) share
         * their keys and values: their weighted sums of value rows go together. */
        for (int32_t r = 0; r < nr;) {
            const int32_t i = (r0 + r) / group, ql = (r0 + r) % group, qh = h * group + ql;
            const int32_t m = group - ql < nr - r ? group - ql : nr - r; /* this token's rows here */
            weighted_values(vf, vals, sc + (size_t)r * n_keys, n_keys, m, pos + i + 1, hd,
                            sg->att + ((size_t)i * hp->n_head + qh) * hd, hd);
            r += m;
        }
    }
}

/* Attention heads run on the same thread pool as the matrix products (one pool, no OpenMP
 * threads spinning beside it); each KV head's work buffers are its own. */
typedef struct {
    const model_context *ctx;
    const model_segment *sg;
    int32_t il, n, pos;
} att_args;

/* Item h * lanes + lane. */
static void att_item(void *p, int64_t item, int tid) {
    (void)tid;
    const att_args *a = p;
    const int32_t lanes = att_lanes(&a->ctx->d->hp);
    attend_kv_head(a->ctx, a->sg, a->il, (int32_t)(item / lanes), (int32_t)(item % lanes), a->n, a->pos);
}

/* A quantized cache's value rows [0, pos + n) of KV head h, dequantized into its att_v rows
 * once for all the head's lanes. */
static void widen_values(void *p, int64_t h, int tid) {
    (void)tid;
    const att_args *a = p;
    dequantize_values(a->ctx, a->sg, (int32_t)h, cache_row(a->ctx, a->sg, a->il, true, (int32_t)h, 0), 0, a->pos + a->n);
}

/* One chunk of one KV head's positions in a split decode step (n = 1, the query at pos):
 * for each query head of the group, the chunk's softmax terms e^(s_t - m) (their maximum m
 * and total l) and the sum of value rows weighted by them, into the head's parts. Item
 * h * chunks + c. */
static void attend_chunk(void *p, int64_t item, int tid) {
    (void)tid;
    const att_args *a = p;
    const model_context *ctx = a->ctx;
    const model_segment *sg = a->sg;
    const model_hparams *hp = &ctx->d->hp;
    const int32_t n_kv = a->pos + 1, used = att_kchunks(n_kv), slots = att_kchunks(ctx->p.n_ctx);
    const int32_t h = (int32_t)(item / used), c = (int32_t)(item % used);
    const int32_t hd = hp->head_dim, n_ctx = ctx->p.n_ctx, group = hp->n_head / hp->n_head_kv;
    const int32_t k0 = c * ATT_KCHUNK, kc = n_kv - k0 < ATT_KCHUNK ? n_kv - k0 : ATT_KCHUNK;
    const uint8_t *keys = cache_row(ctx, sg, a->il, false, h, k0), *vals = cache_row(ctx, sg, a->il, true, h, k0);
    const size_t slot = (size_t)h * att_lanes(hp); /* the head's first lane's scratch */
    float *sc = sg->att_s + slot * att_head_score_floats(n_ctx) + (size_t)c * ATT_QCHUNK * ATT_KCHUNK;
    void *work = sg->att_work + slot * sg->att_work_stride + (size_t)c * att_chunk_work_bytes(hp, ctx->p.kv_type);
    const float scale = 1.0f / sqrtf((float)hd);
    const float *vf = value_rows(ctx, sg, h, vals, k0);
    if (values_widened(ctx->p.kv_type)) dequantize_values(ctx, sg, h, vals, k0, kc);
    for (int32_t r0 = 0; r0 < group; r0 += ATT_QCHUNK) {
        const int32_t nr = group - r0 < ATT_QCHUNK ? group - r0 : ATT_QCHUNK;
        const int32_t qh = h * group + r0; /* the query rows of one token are contiguous */
        cpu_matmul(ctx->p.kv_type, keys, kc, hd, sg->q + (size_t)qh * hd, nr, sc, work, 1);
        for (int32_t r = 0; r < nr; r++) {
            const size_t part = (size_t)(qh + r) * slots + c;
            sg->att_pl[part] = cpu_vec_softmax_terms(sc + (size_t)r * kc, kc, scale, &sg->att_pm[part]);
        }
        weighted_values(vf, vals, sc, kc, nr, kc, hd, sg->att_po + ((size_t)qh * slots + c) * hd, (int64_t)slots * hd);
    }
}

/* Query head qh's output from its chunks' parts: with M the largest maximum, the sum of the
 * chunks' weighted sums scaled by e^(m_c - M) / sum of l_c e^(m_c - M). */
static void combine_chunks(void *p, int64_t qh, int tid) {
    (void)tid;
    const att_args *a = p;
    const model_segment *sg = a->sg;
    const int32_t used = att_kchunks(a->pos + 1), slots = att_kchunks(a->ctx->p.n_ctx);
    const int32_t hd = a->ctx->d->hp.head_dim;
    float *m = sg->att_pm + (size_t)qh * slots; /* overwritten with the chunks' weights */
    const double *l = sg->att_pl + (size_t)qh * slots;
    float mx = m[0];
    for (int32_t c = 1; c < used; c++) mx = m[c] > mx ? m[c] : mx;
    double total = 0;
    for (int32_t c = 0; c < used; c++) {
        m[c] = expf(m[c] - mx);
        total += l[c] * m[c];
    }
    const float inv = (float)(1.0 / total);
    for (int32_t c = 0; c < used; c++) m[c] *= inv;
    cpu_vec_weighted_rows(m, used, 1, sg->att_po + (size_t)qh * slots * hd, used, hd, sg->att + (size_t)qh * hd, hd);
}

/* The per-token steps between the products, split across the threads by token (on one
 * thread, the norms and the gate of a 128-token prompt took about 3 % of it while the
 * others waited): add_norm adds a block's output into the residual stream x (when `add` is
 * given) and then RMS-normalizes it into `out` (when given); silu_gate applies the SwiGLU
 * gate. Each token's row is computed as before, so results do not change. */
typedef struct {
    float *x, *out;
    const float *add, *w;
    int64_t E;
    float eps;
} add_norm_args;

static void add_norm_item(void *p, int64_t i, int tid) {
    (void)tid;
    const add_norm_args *a = p;
    float *x = a->x + i * a->E;
    if (a->add) {
        const float *b = a->add + i * a->E;
        for (int64_t j = 0; j < a->E; j++) x[j] += b[j];
    }
    if (a->out) cpu_vec_rms_norm(a->out + i * a->E, x, a->w, a->E, a->eps);
}

static void add_norm(float *x, const float *add, float *out, const float *w, int32_t n, int64_t E, float eps, int nt) {
    add_norm_args a = {x, out, add, w, E, eps};
    cpu_parallel_for(n >= 8 ? nt : 1, n, add_norm_item, &a);
}

typedef struct {
    float *g;
    const float *u;
    int64_t F;
} silu_args;

static void silu_item(void *p, int64_t i, int tid) {
    (void)tid;
    const silu_args *a = p;
    cpu_vec_silu_mul(a->g + i * a->F, a->u + i * a->F, a->F);
}

static void silu_gate(float *g, const float *u, int32_t n, int64_t F, int nt) {
    silu_args a = {g, u, F};
    cpu_parallel_for(n >= 8 ? nt : 1, n, silu_item, &a);
}

/* Runs layers [sg->layer_start, sg->layer_end) over the batch hidden state sg->x. */
static void run_layers(model_context *ctx, model_segment *sg, int32_t n, int32_t pos) {
    const model_hparams *hp = &ctx->d->hp;
    const int nt = ctx->p.n_threads;
    const int64_t E = hp->n_embd, qd = (int64_t)hp->n_head * hp->head_dim;
    const int64_t kvd = (int64_t)hp->n_head_kv * hp->head_dim, F = hp->n_ff;
    rope_table(ctx, sg->rope, n, pos);
    for (int32_t il = sg->layer_start; il < sg->layer_end; il++) {
        const model_layer *L = &sg->layers[il - sg->layer_start];
        /* the previous layer's feed-forward output (in xb) joins the residual here */
        add_norm(sg->x, il > sg->layer_start ? sg->xb : NULL, sg->xb, L->attn_norm->data, n, E, hp->rms_eps, nt);
        matmul_parts(sg, (const gguf_tensor *const[]){L->wq, L->wk, L->wv}, (float *const[]){sg->q, sg->k, sg->v}, 3,
                     sg->xb, n, nt);
        add_bias(sg->q, L->bq, n, qd);
        add_bias(sg->k, L->bk, n, kvd);
        add_bias(sg->v, L->bv, n, kvd);
        head_norm(hp, sg->q, n, hp->n_head, L->q_norm);
        head_norm(hp, sg->k, n, hp->n_head_kv, L->k_norm);
        apply_rope(hp, sg->q, n, hp->n_head, sg->rope);
        apply_rope(hp, sg->k, n, hp->n_head_kv, sg->rope);
        kv_store(ctx, sg, il, n, pos);
        /* Short attention (a decode step early in the context) is cheaper than waking the
         * threads for it. */
        const int64_t att_work = (int64_t)n * (pos + n) * hp->n_head * hp->head_dim;
        att_args aa = {ctx, sg, il, n, pos};
        if (n == 1 && pos + 1 > ATT_KCHUNK) {
            cpu_parallel_for(nt, (int64_t)hp->n_head_kv * att_kchunks(pos + 1), attend_chunk, &aa);
            /* a few thousand multiply-adds: on this thread unless there are many */
            const int64_t combine = (int64_t)hp->n_head * att_kchunks(pos + 1) * hp->head_dim;
            cpu_parallel_for(combine > (1 << 16) ? nt : 1, hp->n_head, combine_chunks, &aa);
        } else {
            const int threads = att_work > (1 << 14) ? nt : 1;
            if (values_widened(ctx->p.kv_type))
                cpu_parallel_for(threads, hp->n_head_kv, widen_values, &aa);
            cpu_parallel_for(threads, (int64_t)hp->n_head_kv * att_lanes(hp), att_item, &aa);
        }
        matmul(sg, L->wo, sg->att, n, sg->xb, nt);
        add_norm(sg->x, sg->xb, sg->xb, L->ffn_norm->data, n, E, hp->rms_eps, nt);
        matmul_parts(sg, (const gguf_tensor *const[]){L->w_gate, L->w_up}, (float *const[]){sg->g, sg->u}, 2, sg->xb,
                     n, nt);
        silu_gate(sg->g, sg->u, n, F, nt);
        matmul(sg, L->w_down, sg->g, n, sg->xb, nt);
    }
    /* and the last layer's joins it here */
    if (sg->layer_end > sg->layer_start) add_norm(sg->x, sg->xb, NULL, NULL, n, E, 0.0f, nt);
}

strata_status model_decode(model_context *ctx, const int32_t *tokens, int32_t n, int32_t pos) {
    const model_desc *d = ctx->d;
    const model_hparams *hp = &d->hp;
    if (n < 1 || n > ctx->p.n_batch)
        return strata_fail(STRATA_ERR_INVALID, "model: %d tokens in one batch (1..%d allowed)", n, ctx->p.n_batch);
    if (pos < 0 || pos + n > ctx->p.n_ctx)
        return strata_fail(STRATA_ERR_INVALID, "model: positions %d..%d exceed the context of %d tokens", pos,
                           pos + n - 1, ctx->p.n_ctx);
    for (int32_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= hp->n_vocab)
            return strata_fail(STRATA_ERR_INVALID, "model: token id %d out of range (vocabulary of %d)", tokens[i],
                               hp->n_vocab);
    const int64_t E = hp->n_embd;
    const size_t row = strata_type_row_bytes(d->tok_embd->type, E);
    model_segment *sg = &ctx->segs[0];
    for (int32_t i = 0; i < n; i++)
        strata_dequantize_row(d->tok_embd->type, (const uint8_t *)d->tok_embd->data + (size_t)tokens[i] * row,
                              sg->x + i * E, E);
    /* Layer ranges device by device; only the hidden state crosses a boundary, copied into
     * the next device's arena (the sim's arenas are host memory, so the source is readable
     * there; a device with its own memory would stage it through the host). */
    for (int32_t s = 0; s < ctx->n_segs; s++) {
        sg = &ctx->segs[s];
        if (s > 0) {
            strata_status st = strata_device_copy_in(sg->dev, sg->x, ctx->segs[s - 1].x, (size_t)n * E * sizeof(float));
            if (st != STRATA_OK) return st;
        }
        if (sg->layer_end > sg->layer_start) run_layers(ctx, sg, n, pos);
    }

    /* Every token's output-norm state, when embeddings are kept. */
    if (sg->hidden) {
        for (int32_t i = 0; i < n; i++)
            cpu_vec_rms_norm(sg->hidden + i * E, sg->x + i * E, sg->out_norm->data, E, hp->rms_eps);
        ctx->n_hidden = n;
    }
    /* Output layer: only the rows whose logits are kept. */
    int32_t n_out = n < ctx->p.n_logits ? n : ctx->p.n_logits;
    const float *xl = sg->x + (size_t)(n - n_out) * E;
    for (int32_t i = 0; i < n_out; i++)
        cpu_vec_rms_norm(sg->xb + i * E, xl + i * E, sg->out_norm->data, E, hp->rms_eps);
    matmul(sg, sg->out_w, sg->xb, n_out, sg->logits, ctx->p.n_threads);
    ctx->n_out = n_out;
    return STRATA_OK;
}
