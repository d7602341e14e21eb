/* The op table: what one transformer layer needs from a device, per device kind.
 *
 * The forward pass (model/forward.c) is one recipe of these ops, the same for every device
 * kind; it never reads or writes device memory itself. Every pointer an op takes is device
 * memory of the device the op runs on (an address inside one of its arenas), except where a
 * parameter says "host": token ids, and the host side of a copy. On the cpu kind device
 * memory is host memory (host_memory below), and weights a cpu does not relayout are read
 * straight from the GGUF mapping; on every other kind the host never touches device memory:
 * a sim in strict mode faults if it does (backend/sim/device_sim.c).
 *
 * Sizing. Each op that needs scratch says how much through a function of its shapes alone
 * (matmul_work_bytes, attention_work_bytes), so that the model's sizing functions, which
 * the planner calls before anything is loaded, size a device's compute bytes with that
 * device kind's own rules: the plan stays the allocation, per kind.
 *
 * Ordering. Ops on one device run in the order they are called. The cpu and sim kinds are
 * synchronous; a kind with queues (CUDA) finishes pending work in synchronize and before a
 * copy_out returns.
 *
 * Adding a device kind: a folder under backend/ with its backend_device_ops (memory) and a
 * backend_ops (this table), returned by backend_kind_ops for its kind. Adding an
 * architecture never touches this file: architectures are recipes of these ops.
 *
 * Ownership: tables are static and immutable; ops borrow every pointer for the call. */
#ifndef STRATA_BACKEND_OPS_H
#define STRATA_BACKEND_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/device.h"
#include "core/status.h"
#include "tensor/type.h"

/* Where ops run: the device, and the host threads a host-computing kind may use. */
typedef struct {
    backend_device *dev;
    int n_threads;
} backend_exec;

/* A weight matrix in device memory: `rows` rows of `cols` elements of `type`, in the GGUF
 * layout (layout 0) or in a layout of the kind's own (layout 1, written by matrix_upload;
 * the cpu's interleaved Q4_0/Q4_K rows of backend/cpu/repack.h). */
typedef struct {
    strata_type type;
    int64_t rows, cols;
    const void *data;
    int layout;
} backend_matrix;

/* Shape of the KV cache of one layer and of the attention over it. The cache of a layer is
 * K then V, each [n_head_kv][n_ctx] rows of head_dim elements of kv_type (F32, F16 or Q8_0),
 * so a KV head's keys are contiguous rows. Query heads qh use KV head qh / (n_head /
 * n_head_kv). */
typedef struct {
    int32_t n_head, n_head_kv, head_dim, n_ctx;
    strata_type kv_type;
    /* Scores are q.k * scale (0: 1/sqrt(head_dim)); with softcap > 0 they are then capped,
     * s -> softcap * tanh(s / softcap) (gemma2), before the mask and the softmax. With
     * window > 0 the query at position p sees only positions p - window + 1 .. p (sliding
     * window attention); 0: every earlier position. Zero-initialised fields keep the plain
     * causal attention of llama. */
    float scale, softcap;
    int32_t window;
    /* A ring (sliding-window layers): the cache holds n_ctx rows per KV head and position p
     * is at row p mod n_ctx (kv_store writes it there); it needs window > 0 and, for a batch
     * of n, window - 1 + n <= n_ctx, so that every position a query sees is still held. The
     * results are those of a full cache with the same window, bit for bit. */
    bool ring;
} backend_attn_shape;

/* Rotary embedding: pairs (2j, 2j+1) (normal) or (j, j + rope_dim/2) (neox) of the first
 * rope_dim dimensions of each head, by angle (pos * freq_scale) * freq_base^(-2j/rope_dim)
 * / factors[j] (factors: device memory, rope_dim/2 floats, or NULL). */
typedef struct {
    int32_t rope_dim, head_dim;
    float freq_base, freq_scale;
    bool neox;
    const float *factors;
} backend_rope;

typedef struct backend_ops {
    const char *name;
    /* Device memory is host memory the host may read and write (the cpu): weights may stay
     * in the mapping, and copies to and from it need no staging. */
    bool host_memory;

    /* ---- sizing: pure functions of shapes ---- */
    /* Scratch of matmul/matmul_parts for n_tokens rows of a cols-wide input against a
     * matrix of wtype. */
    size_t (*matmul_work_bytes)(strata_type wtype, int64_t cols, int64_t n_tokens);
    /* Scratch of attention (and kv_store) for batches of up to n_batch tokens. */
    size_t (*attention_work_bytes)(const backend_attn_shape *s, int32_t n_batch);
    /* Whether this kind keeps a matrix of this type and shape in a layout of its own
     * (matrix_upload writes it; the bytes are the same as the GGUF rows). */
    bool (*matrix_relayout)(strata_type type, int64_t rows, int64_t cols);
    /* Whether matmul can multiply this type at all. */
    bool (*matmul_supports)(strata_type type);
    /* Scratch of matmul_id for n_rows routed rows of a cols-wide input against experts of
     * `rows` rows of wtype. */
    size_t (*matmul_id_work_bytes)(strata_type wtype, int64_t rows, int64_t cols, int32_t n_rows);

    /* ---- memory ---- */
    strata_status (*memset)(backend_device *dev, void *dst, int value, size_t bytes);
    /* Copies between two devices of this kind without the host (peer); NULL: not possible,
     * the caller stages through host memory. */
    strata_status (*copy_peer)(backend_device *dst_dev, void *dst, backend_device *src_dev, const void *src,
                               size_t bytes);
    /* Writes host matrix `src` (GGUF layout) into m->data in m->layout. */
    strata_status (*matrix_upload)(const backend_exec *ex, const backend_matrix *m, const void *src);
    void (*synchronize)(backend_device *dev);

    /* ---- compute ---- */
    /* y[n][rows] = x[n][cols] . W^T (+ bias[rows] when bias is not NULL). */
    void (*matmul)(const backend_exec *ex, const backend_matrix *w, const float *bias, const float *x, int32_t n,
                   float *y, void *work);
    /* Several products of the same x (Q, K, V; gate, up), each as matmul would give it. */
    void (*matmul_parts)(const backend_exec *ex, const backend_matrix *const *ws, const float *const *biases,
                         float *const *ys, int n_parts, const float *x, int32_t n, void *work);
    /* Per row i of n rows of `dim`: x += add (when add is not NULL), then out = rms_norm(x) * w
     * (when out is not NULL). */
    void (*add_rms_norm)(const backend_exec *ex, float *x, const float *add, float *out, const float *w, int32_t n,
                         int64_t dim, float eps);
    /* In place RMS norm of n_rows rows of head_dim with weights w[head_dim] (Q/K norms). */
    void (*head_rms_norm)(const backend_exec *ex, float *x, int64_t n_rows, int32_t head_dim, const float *w,
                          float eps);
    /* cos/sin of each rotated pair for positions pos..pos+n-1: table[i][2j], table[i][2j+1]
     * (n x rope_dim floats, device memory). */
    void (*rope_table)(const backend_exec *ex, float *table, int32_t n, int32_t pos, const backend_rope *r);
    /* Rotates the n_heads heads of each of n rows of x by the table. */
    void (*rope_apply)(const backend_exec *ex, float *x, int32_t n, int32_t n_heads, const float *table,
                       const backend_rope *r);
    /* Writes the n tokens' K and V rows (n x n_head_kv x head_dim floats) at positions
     * pos.. of the layer's cache (rows (pos + i) mod n_ctx of a ring). */
    void (*kv_store)(const backend_exec *ex, const backend_attn_shape *s, void *k_cache, void *v_cache,
                     const float *k, const float *v, int32_t n, int32_t pos);
    /* Causal attention of n queries (n x n_head x head_dim) at positions pos.. over cache
     * positions [0, pos + i] for token i; out: n x n_head x head_dim. */
    void (*attention)(const backend_exec *ex, const backend_attn_shape *s, const void *k_cache, const void *v_cache,
                      const float *q, int32_t n, int32_t pos, float *out, void *work);
    /* g = silu(g) * u over n rows of `dim`. */
    void (*silu_mul)(const backend_exec *ex, float *g, const float *u, int32_t n, int64_t dim);
    /* g = gelu_tanh(g) * u over n rows of `dim`, with gelu_tanh(x) = 0.5 x (1 + tanh(sqrt(2/pi)
     * (x + 0.044715 x^3))) (gemma's gated FFN). */
    void (*gelu_mul)(const backend_exec *ex, float *g, const float *u, int32_t n, int64_t dim);
    /* x *= s over n floats (gemma's embedding scale). */
    void (*scale)(const backend_exec *ex, float *x, int64_t n, float s);
    /* x -> cap * tanh(x / cap) over n floats (gemma2's final logit soft-capping). */
    void (*softcap)(const backend_exec *ex, float *x, int64_t n, float cap);

    /* ---- mixture of experts ----
     * A token's FFN is the weighted sum of n_used of n_expert expert FFNs. The routing lives
     * in device memory: ids[n][n_used] (int32) and weights[n][n_used]; "row (t, s)" below is
     * row t * n_used + s of an [n * n_used] array. */
    /* Per token t: softmax over its n_expert router logits, the n_used largest (the lower id
     * first among equals) in decreasing order into ids, their probabilities into weights,
     * divided by their sum when norm (Mixtral, Qwen3-MoE). */
    void (*moe_route)(const backend_exec *ex, const float *logits, int32_t n, int32_t n_expert, int32_t n_used,
                      bool norm, int32_t *ids, float *weights);
    /* Routed product: y row (t, s) = W[ids(t, s)] . x row, where W[e] is expert e's matrix
     * (w describes one expert: rows x cols of w->type, layout 0; expert e's rows start
     * e * rows * row_bytes after w->data) and the x row is x[t] (x_per_slot false: the same
     * input for all a token's experts) or x row (t, s) (true). Only routed rows are
     * multiplied, grouped by expert (each expert's rows are one product). y: n * n_used rows
     * of w->rows floats. work: matmul_id_work_bytes(type, rows, cols, n * n_used). */
    void (*matmul_id)(const backend_exec *ex, const backend_matrix *w, int32_t n_expert, const float *x,
                      bool x_per_slot, const int32_t *ids, int32_t n, int32_t n_used, float *y, void *work);
    /* out[t] = sum over s (in order) of weights(t, s) * y row (t, s), rows of `dim`. */
    void (*moe_combine)(const backend_exec *ex, const float *y, const float *weights, int32_t n, int32_t n_used,
                        int64_t dim, float *out);

    /* out[i] = row tokens[i] of table (rows of `dim` elements of `type`), widened to F32.
     * tokens: host memory. */
    void (*embed_rows)(const backend_exec *ex, const void *table, strata_type type, int64_t dim,
                       const int32_t *tokens, int32_t n, float *out);
} backend_ops;

/* The table of a device, or of a kind (for sizing before any device exists); NULL where
 * the kind cannot compute in this build (cuda today). */
const backend_ops *backend_device_compute(const backend_device *dev);
const backend_ops *backend_kind_ops(backend_device_kind kind);

/* The tables of the kinds that compute on the host (backend/cpu/ops_cpu.c and
 * backend/sim/ops_sim.c). */
extern const backend_ops backend_cpu_ops;
extern const backend_ops backend_sim_ops;
/* Defined only in builds with CUDA (STRATA_HAVE_CUDA): backend/cuda/ops_cuda.c. */
extern const backend_ops backend_cuda_ops;

/* Copies `bytes` from src on src_dev to dst on dst_dev: a plain copy_in or copy_out when one
 * side is host memory, a peer copy where both are of one kind that has it, else through
 * `staging` (host memory of at least `bytes`, owned by the caller). */
strata_status backend_copy_between(backend_device *dst_dev, void *dst, backend_device *src_dev, const void *src,
                                   size_t bytes, void *staging);

#endif
