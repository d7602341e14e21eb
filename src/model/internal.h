/* Private to model/: a context's segments as sizing.c lays them out, context.c binds them
 * to arenas, and forward.c runs them. Not for other modules (they use model/model.h). */
#ifndef STRATA_MODEL_INTERNAL_H
#define STRATA_MODEL_INTERNAL_H

#include "backend/ops.h"
#include "model/model.h"

/* The compute scratch of a segment, in the order context.c carves it. Each entry is rounded
 * like an arena allocation, so the sum is exactly what the arena hands out. att is the
 * device kind's attention work area (backend_ops.attention_work_bytes), work its matmul
 * work area (the largest matmul_work_bytes of the segment's products), rope_factors a copy
 * of rope_freqs on a device whose memory the host cannot read. */
typedef struct {
    size_t x, xb, q, k, v, att_out, g, u, rope, rope_factors, att, work, logits, hidden;
    /* rope_swa: the local layers' table where their RoPE differs; moe_*: the router's
     * logits, the routing (ids, weights) and the routed rows' FFN outputs */
    size_t rope_swa, moe_logits, moe_ids, moe_w, moe_y;
} model_scratch_sizes;

model_scratch_sizes model_scratch_layout(const model_desc *d, const backend_ops *kind, int32_t layer_start,
                                         int32_t layer_end, const model_params *p, int32_t n_logits, bool hidden);
size_t model_scratch_total(const model_scratch_sizes *s);
/* The attention of layer il (its window, scale and soft-capping, and its cache: n_ctx rows
 * or a ring) with the resolved options p. */
backend_attn_shape model_attn_shape(const model_hparams *hp, const model_params *p, int32_t il);
/* Bytes of layer il's K (or V) block, and the offset of its K block in the KV area of a
 * segment starting at layer_start (each layer: K block then V block). */
size_t model_kv_layer_block(const model_hparams *hp, const model_params *p, int32_t il);
size_t model_kv_layer_offset(const model_hparams *hp, const model_params *p, int32_t layer_start, int32_t il);
/* Floats per token of the gated FFN's gate (and up) scratch: n_ff, or n_used x n_ff_exp
 * rows for a mixture of experts. */
int64_t model_ffn_rows(const model_hparams *hp);
/* Whether `kind` keeps tensor t (a 2-D matrix of d) in a layout of its own. A fused matrix
 * (phi3) does only where each of its parts starts at a multiple of 8 rows, so that each
 * part is a whole number of the layout's row groups and can be multiplied on its own. */
bool model_relayouts(const model_desc *d, const backend_ops *kind, const gguf_tensor *t);
/* A layer's tensors in slot order (NULL where absent): the order they are placed in. */
int model_layer_slots(model_layer *L, const gguf_tensor ***slots);

/* One layer's weights on its device: norms and biases as device pointers (NULL where
 * absent), matrices as the op table takes them. */
typedef struct {
    const float *attn_norm, *bq, *bk, *bv, *q_norm, *k_norm, *ffn_norm;
    const float *attn_post_norm, *ffn_post_norm; /* NULL where absent */
    /* wq, wk, wv (w_gate, w_up) are row ranges of one fused matrix where the file fuses them */
    backend_matrix wq, wk, wv, wo, w_gate, w_up, w_down;
    backend_matrix router, gate_exps, up_exps, down_exps; /* one expert's shape, data = expert 0 */
    bool moe;
    bool host_experts; /* the experts are the host's mapping, multiplied by the host (n_cpu_moe) */
} model_seg_layer;

typedef struct {
    strata_device *dev;
    const backend_ops *ops;
    backend_exec ex;
    int32_t layer_start, layer_end;
    bool has_output;
    uint8_t *kv; /* per layer: K block then V block */
    float *x, *xb, *q, *k, *v, *att_out, *g, *u, *rope, *rope_factors, *logits, *hidden;
    float *rope_swa, *moe_logits, *moe_w, *moe_y;
    int32_t *moe_ids;
    uint8_t *att, *work;
    model_seg_layer *layers;     /* indexed by il - layer_start, owned */
    const float *out_norm;       /* output layer (has_output only) */
    backend_matrix out_w;
    const void *tok_embd;        /* the embedding table where this device can read it, or NULL */
    size_t weights_bytes, kv_bytes, compute_bytes;
} model_segment;

struct model_context {
    const model_desc *d;
    model_params p;
    bool ring;        /* some layer's cache is a ring (model_kv_rows) */
    int32_t next_pos; /* where the last model_decode ended */
    model_segment *segs; /* in layer order; the last one holds the output layer */
    int32_t n_segs;
    int32_t n_out;
    int32_t n_hidden;
    /* Host memory the context owns: the hand-off between devices that can neither read each
     * other nor copy peer to peer, the token embeddings when the first device cannot read
     * the mapping, and the logits and hidden states read back from a device whose memory
     * the host cannot read (NULL where the last device's are host memory). */
    float *staging;
    float *host_logits, *host_hidden;
    /* the host's side of blocks whose experts stay on the host (model_host_moe_bytes), in
     * that order: xb, ids, weights, gate, up, routed outputs, work */
    void *host_moe;
    const float *logits, *hidden; /* what model_logits/model_hidden return */
};

#endif
