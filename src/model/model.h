/* Transformer models from GGUF: architecture table, hyper-parameters, weight binding,
 * memory sizing and the forward pass.
 *
 * Owns: the architecture table (model/arch.c; llama, qwen2, qwen3 are entries of one table,
 * never separate forward passes), the binding of GGUF tensors to layer slots (shapes and
 * types validated), the sizing functions the planner calls (model/sizing.c), the binding
 * of a context's segments to device arenas (model/context.c), and the one forward pass
 * (model/forward.c), a recipe of calls to each device's op table (backend/ops.h): nothing
 * here reads or writes device memory itself, and nothing includes backend/cpu.
 *
 * Three stages, each usable without the next:
 *   1. model_desc_init(): reads only the GGUF header (works on a header-only or sparse file):
 *      hyper-parameters and, per layer, which tensors exist with which type and shape.
 *   2. model_*_bytes(): pure functions of (desc or hparams, options, device kind) giving
 *      what each device's arena must hold. The loader sizes its arenas with these same functions.
 *   3. model_context_init(): reserves the arena(s) and carves the KV cache and scratch out of
 *      them; model_decode() runs tokens through the layers, device by device.
 *
 * Lifetimes: a model_desc borrows the gguf_file it was made from (tensor pointers point into
 * it); a model_context borrows its model_desc and its devices. */
#ifndef STRATA_MODEL_MODEL_H
#define STRATA_MODEL_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "gguf/gguf.h"
#include "backend/ops.h"
#include "model/device.h"
#include "tensor/type.h"

typedef enum { MODEL_ROPE_NORMAL = 0, MODEL_ROPE_NEOX = 1 } model_rope_style;

/* Whether an architecture has a given optional tensor. */
typedef enum { MODEL_T_ABSENT = 0, MODEL_T_OPTIONAL = 1, MODEL_T_REQUIRED = 2 } model_tensor_need;

/* The gated FFN's activation: down(act(gate) * up). */
typedef enum { MODEL_FFN_SILU = 0, MODEL_FFN_GELU_TANH = 1 } model_ffn_act;

/* One row of the architecture table (model/arch.c). */
typedef struct {
    const char *name;           /* general.architecture value */
    model_rope_style rope;      /* pair order of rotary embeddings */
    model_tensor_need qkv_bias; /* attn_{q,k,v}.bias */
    model_tensor_need qk_norm;  /* attn_{q,k}_norm.weight (per-head RMS norm) */
    model_tensor_need rope_freqs; /* rope_freqs.weight (Llama 3.1-style frequency factors) */
    float default_rope_base;
    model_ffn_act act;
    model_tensor_need post_norms; /* post_attention_norm, post_ffw_norm (gemma2/3) */
    bool embd_scale;            /* token embeddings multiplied by sqrt(n_embd) (gemma) */
    bool fused;                 /* attn_qkv = [Q; K; V] and ffn_up = [gate; up] (phi3) */
    model_tensor_need experts;  /* mixture-of-experts FFN (REQUIRED: qwen3moe; OPTIONAL: llama
                                   with {arch}.expert_count > 0, Mixtral) */
    int32_t swa_pattern;        /* default sliding-window pattern N: layer il is local when
                                   il % N < N - 1 (0: no sliding window) */
    bool softcap;               /* attention and final logit soft-capping (gemma2) */
    bool swa_rope;              /* local layers use RoPE base 10000 without scaling (gemma3) */
} model_arch;

/* The architecture table entry named `name`, or NULL. */
const model_arch *model_arch_find(const char *name);

typedef struct {
    const model_arch *arch;
    int32_t n_vocab;
    int32_t n_embd;
    int32_t n_layer;
    int32_t n_head;
    int32_t n_head_kv;
    int32_t head_dim;   /* attention.key_length (default n_embd / n_head) */
    int32_t n_ff;
    int32_t n_ctx_train;
    int32_t rope_dim;   /* rope.dimension_count (default head_dim) */
    float rope_freq_base;
    float rope_freq_scale; /* 1 / rope.scaling.factor for linear scaling, else 1 */
    float rms_eps;
    float attn_scale;    /* scores q.k * attn_scale (1/sqrt(head_dim) unless the family says) */
    float attn_softcap;  /* 0: none */
    float final_softcap; /* 0: none */
    float embd_scale;    /* 0: none */
    int32_t n_swa;       /* sliding window of local layers (0: none) */
    int32_t swa_pattern; /* layer il is local when n_swa > 0 and il % swa_pattern < swa_pattern - 1 */
    float rope_freq_base_swa, rope_freq_scale_swa; /* RoPE of local layers */
    int32_t n_expert, n_expert_used, n_ff_exp; /* mixture of experts (n_expert 0: dense FFN) */
    bool expert_norm;    /* top-k weights renormalised to sum 1 */
} model_hparams;

/* Whether layer il attends through a sliding window. */
bool model_layer_swa(const model_hparams *hp, int32_t il);
/* Whether local layers use a RoPE of their own (another base or scaling). */
bool model_swa_rope_differs(const model_hparams *hp);

/* Weight slots of one layer; NULL where an optional tensor is absent. */
typedef struct {
    const gguf_tensor *attn_norm, *wq, *wk, *wv, *wo;
    const gguf_tensor *bq, *bk, *bv;       /* qwen2 */
    const gguf_tensor *q_norm, *k_norm;    /* qwen3 */
    const gguf_tensor *ffn_norm, *w_gate, *w_up, *w_down;
    const gguf_tensor *wqkv, *w_gate_up;                /* phi3: fused [Q; K; V], [gate; up] */
    const gguf_tensor *attn_post_norm, *ffn_post_norm;  /* gemma2/3 */
    const gguf_tensor *ffn_gate_inp;                    /* router [n_embd, n_expert] */
    const gguf_tensor *gate_exps, *up_exps, *down_exps; /* [.., .., n_expert] */
} model_layer;

typedef struct {
    model_hparams hp;
    const gguf_file *file;         /* borrowed: the file the tensors are in */
    const gguf_tensor *tok_embd;
    const gguf_tensor *output_norm;
    const gguf_tensor *output;     /* == tok_embd when the embeddings are tied */
    const gguf_tensor *rope_freqs; /* NULL unless present */
    model_layer *layers;           /* hp.n_layer entries, owned */
} model_desc;

/* Reads hyper-parameters and binds every tensor from the header of `f` (tensor data is not
 * touched, so a GGUF_OPEN_HEADER_ONLY file works). Refuses an unknown architecture, a
 * missing tensor or one of the wrong shape or of a type the CPU kernels cannot multiply,
 * naming it and the expected shape. Free with model_desc_free(). */
strata_status model_desc_init(const gguf_file *f, model_desc *out);
void model_desc_free(model_desc *d);

/* ---- Options ---------------------------------------------------------------------- */

typedef struct {
    int32_t n_ctx;        /* 0 = default: 4096, capped by the trained context length */
    int32_t n_batch;      /* tokens per model_decode call at most (default 512) */
    strata_type kv_type;  /* F16 (default), F32 or Q8_0 */
    int32_t n_threads;    /* 0 = number of physical cores */
    int32_t n_logits;     /* rows of logits a call can return (default 1: the last token) */
    bool embeddings;      /* keep the output-norm hidden state of every token of a call
                             (model_hidden); sized into the last device's compute scratch */
    bool full_swa_cache;  /* keep every position in the cache of sliding-window layers too
                             (default false: a ring of window + n_batch positions, the same
                             logits bit for bit; tests compare the two) */
    int32_t n_cpu_moe;    /* the expert tensors of blocks [0, n_cpu_moe) stay in the host's
                             mapping and their products run on the host's CPU kernels, while
                             the rest of such a block (attention, router) runs on its device
                             (llama.cpp's --n-cpu-moe); 0: none */
} model_params;

model_params model_default_params(void);

/* Fills defaults and caps (n_ctx <= n_ctx_train, n_batch <= n_ctx, n_logits <= n_batch);
 * refuses a KV type that cannot hold a head's row. */
strata_status model_params_resolve(const model_hparams *hp, model_params *p);

/* Physical cores of this machine (at least 1). */
int model_physical_cores(void);

/* ---- Sizing (pure: header and options only; the planner calls these) --------------- */

/* Bytes of K and V for one token of one layer. */
size_t model_kv_bytes_per_token(const model_hparams *hp, strata_type kv_type);
/* Positions layer il's cache holds with the resolved options p: n_ctx, or for a
 * sliding-window layer a ring of window + n_batch positions where that is fewer (unless
 * p->full_swa_cache). */
int32_t model_kv_rows(const model_hparams *hp, const model_params *p, int32_t il);
/* Arena bytes of the KV cache for layers [layer_start, layer_end) with the resolved options
 * p (n_ctx, n_batch, kv_type, full_swa_cache). */
size_t model_kv_bytes(const model_hparams *hp, const model_params *p, int32_t layer_start, int32_t layer_end);
/* Weight bytes of layer il as stored in the file. */
size_t model_layer_weight_bytes(const model_desc *d, int32_t il);
/* Weight bytes of the output layer (output norm + output matrix; 0 extra when tied). */
size_t model_output_weight_bytes(const model_desc *d);
/* Arena bytes of layer il's weights when copied onto a device: one arena allocation per
 * tensor, each rounded to STRATA_ARENA_ALIGN. */
size_t model_layer_weight_arena_bytes(const model_desc *d, int32_t il);
/* Arena bytes of the output layer copied onto a device: output norm + output matrix (the
 * token embedding table itself when tied: the device cannot read the CPU's mapping). */
size_t model_output_weight_arena_bytes(const model_desc *d);
/* Arena bytes of the weights a device holding [layer_start, layer_end) (+ the output
 * layer when has_output) copies in, when it copies them all (a device whose memory the host
 * cannot read); the rope factors are not among them (model_compute_bytes counts them). */
size_t model_weight_arena_bytes(const model_desc *d, int32_t layer_start, int32_t layer_end, bool has_output);
/* The arena bytes a device of kind `kind` whose memory is host memory (the cpu) gives layer
 * il's matrices that it keeps in a layout of its own (backend_ops.matrix_relayout; the cpu's
 * repacked Q4_0/Q4_K); the layer's other tensors stay in the mapping. */
size_t model_layer_relayout_bytes(const model_desc *d, const backend_ops *kind, int32_t il);
/* The same for the output matrix (when the device holds the output layer). */
size_t model_output_relayout_bytes(const model_desc *d, const backend_ops *kind);
/* The weight bytes in the arena of a device of kind `kind` for a segment: all its tensors
 * (model_weight_arena_bytes) where the kind's memory is not host memory, else the relaid
 * matrices only. */
size_t model_device_weight_arena_bytes(const model_desc *d, const backend_ops *kind, int32_t layer_start,
                                       int32_t layer_end, bool has_output);
/* Whether block il's experts stay on the host when the block runs on a device of kind
 * `kind` (p->n_cpu_moe; only where the kind's memory is not host memory). */
bool model_layer_host_experts(const model_desc *d, const model_params *p, const backend_ops *kind, int32_t il);
/* Arena bytes of block il's expert tensors on a device (0 for a dense block), and their bytes
 * as stored in the file. */
size_t model_layer_expert_arena_bytes(const model_desc *d, int32_t il);
size_t model_layer_expert_bytes(const model_desc *d, int32_t il);
/* Host memory (not in any arena) for running host experts' products on the CPU: a batch's
 * routed rows, their products and the kernels' work; 0 when p->n_cpu_moe is 0 or the model
 * has no experts. */
size_t model_host_moe_bytes(const model_desc *d, const model_params *p);
/* Arena bytes of compute scratch for a device of kind `kind` running layers [layer_start,
 * layer_end) with the resolved options `p` (num_batch, num_ctx, kv_type, logits rows), and
 * the output layer when produces_logits. The scratch of ops is the kind's own sizing
 * (backend_ops.matmul_work_bytes, attention_work_bytes). */
size_t model_compute_bytes(const model_desc *d, const model_params *p, const backend_ops *kind, int32_t layer_start,
                           int32_t layer_end, bool produces_logits);
/* A device's arena for a segment apart from weights: KV + compute. `p` must be resolved. */
size_t model_segment_bytes(const model_desc *d, const model_params *p, const backend_ops *kind, int32_t layer_start,
                           int32_t layer_end, bool has_output);
/* The whole arena of a device of kind `kind` for a segment: model_segment_bytes +
 * model_device_weight_arena_bytes. */
size_t model_device_arena_bytes(const model_desc *d, const model_params *p, const backend_ops *kind,
                                int32_t layer_start, int32_t layer_end, bool has_output);
/* Bytes of one layer's K (or V) block: [n_head_kv][n_ctx] rows of kv_type. */
size_t model_kv_block_bytes(const model_hparams *hp, strata_type kv_type, int32_t n_ctx);

/* ---- Context and forward pass ----------------------------------------------------- */

typedef struct model_context model_context;

/* Reserves `dev`'s arena (model_segment_bytes for all layers and the output) and carves the
 * KV cache and scratch out of it. `p` is resolved into the context (read it back with
 * model_context_params). The context borrows d and dev. */
strata_status model_context_init(const model_desc *d, const model_params *p, strata_device *dev,
                                 model_context **out);

/* One device's share of the model: layers [layer_start, layer_end) and, for the last
 * device, the output layer. Placements are given in layer order, contiguous, covering every
 * layer, one per device. */
typedef struct {
    strata_device *dev;
    int32_t layer_start, layer_end;
    bool has_output;
} model_placement;

/* Reserves each device's arena (exactly model_device_arena_bytes of its share) and carves
 * its KV cache and scratch, and, on a device whose memory is not host memory, copies its layers' weights
 * (and the output layer's) into it. model_decode then runs the layer ranges device by
 * device, handing the hidden state across. On failure (an arena refused by its device, a
 * copy failing) every arena reserved so far is given back, and nothing leaks. The context
 * borrows the devices. */
strata_status model_context_init_placed(const model_desc *d, const model_params *p,
                                        const model_placement *place, int32_t n_place, model_context **out);
void model_context_free(model_context *ctx);

const model_params *model_context_params(const model_context *ctx);

/* Runs tokens[0..n) at positions pos..pos+n-1 (1 <= n <= n_batch, pos + n <= n_ctx); the
 * cache must already hold positions [0, pos) (anything at >= pos is overwritten). A model
 * whose sliding-window layers keep a ring (model_kv_rows) holds only the latest positions,
 * so there pos must be 0 (a restart) or where the previous call ended. Keeps the logits of
 * the last min(n, n_logits) tokens. No allocation happens here. */
strata_status model_decode(model_context *ctx, const int32_t *tokens, int32_t n, int32_t pos);

/* Logits row `i` of the last model_decode (0 = the first kept row; the last token is row
 * model_logits_count()-1), n_vocab floats owned by the context. */
const float *model_logits(const model_context *ctx, int32_t i);
int32_t model_logits_count(const model_context *ctx);

/* Output-norm hidden state of token i (0..n-1) of the last model_decode call of n tokens,
 * n_embd floats owned by the context; only for a context made with params.embeddings
 * (NULL otherwise). */
const float *model_hidden(const model_context *ctx, int32_t i);
int32_t model_hidden_count(const model_context *ctx);

/* What a segment's arena holds, as carved at load (for logs: measured, not predicted). */
typedef struct {
    const strata_device *dev;
    int32_t layer_start, layer_end; /* blocks */
    bool has_output;
    size_t weights_bytes; /* copied into the arena (0 when the weights stay mapped) */
    size_t kv_bytes, compute_bytes;
    size_t arena_bytes;   /* reserved; == weights + kv + compute */
} model_segment_usage;

int32_t model_context_segments(const model_context *ctx);
void model_context_segment_usage(const model_context *ctx, int32_t i, model_segment_usage *out);

#endif
