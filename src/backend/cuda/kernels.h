/* The CUDA kernels behind the cuda kind's op table (ops_cuda.c), as plain C launchers: every
 * pointer is device memory of the current device, every launch goes on `stream` (a
 * cudaStream_t) and returns at once. Types are strata_type values; the formats are GGUF's
 * block layouts (tensor/blocks.h), decoded element by element on the device exactly as
 * tensor/dequant.c defines them.
 *
 * Each launcher returns 0, or a cudaError_t value when the launch failed. Compiled from
 * kernels.cu by nvcc only when CMake found the CUDA toolkit (STRATA_HAVE_CUDA). */
#ifndef STRATA_BACKEND_CUDA_KERNELS_H
#define STRATA_BACKEND_CUDA_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Whether the kernels decode this type (the 15 weight types). */
int scuda_type_supported(int type);

/* y[i][r] = sum_c W[r][c] x[i][c] (+ bias[r]) for i < n (n <= SCUDA_MATVEC_MAX_N): one warp
 * per row, weights decoded as they are read, float activations. */
#define SCUDA_MATVEC_MAX_N 4
int scuda_matvec(int type, const void *w, int64_t rows, int64_t cols, const float *x, int n, const float *bias,
                 float *y, void *stream);

/* out[r][c] = W[r][c] as F16 (F32 for wide = 1) for rows [r0, r0 + nr). */
int scuda_dequant_rows(int type, const void *w, int64_t r0, int64_t nr, int64_t cols, void *out, int wide,
                       void *stream);
/* x (n x cols floats) to F16. */
int scuda_f32_to_f16(const float *x, int64_t count, void *out, void *stream);
/* y[i][r] += bias[r]. */
int scuda_add_bias(float *y, const float *bias, int64_t n, int64_t rows, void *stream);

/* x += add (add may be NULL); out = x / rms(x) * w (out may be NULL), per row of dim. */
int scuda_add_rms_norm(float *x, const float *add, float *out, const float *w, int n, int64_t dim, float eps,
                       void *stream);
int scuda_head_rms_norm(float *x, int64_t n_rows, int head_dim, const float *w, float eps, void *stream);

int scuda_rope_table(float *table, int n, int pos, int rope_dim, float freq_base, float freq_scale,
                     const float *factors, void *stream);
int scuda_rope_apply(float *x, int n, int n_heads, int head_dim, int rope_dim, int neox, const float *table,
                     void *stream);

/* KV rows of n tokens (n x n_head_kv x head_dim floats) into the caches at pos.. */
int scuda_kv_store(int kv_type, void *k_cache, void *v_cache, const float *k, const float *v, int n, int pos,
                   int n_head_kv, int head_dim, int n_ctx, int ring, void *stream);

/* Causal grouped-query attention; for a single token (n == 1) over more than
 * SCUDA_ATT_CHUNK positions, the positions are split into chunks whose partial results
 * are combined (work: scuda_attention_work_bytes). */
#define SCUDA_ATT_CHUNK 256
size_t scuda_attention_work_bytes(int n_head, int head_dim, int n_ctx);
int scuda_attention(int kv_type, const void *k_cache, const void *v_cache, const float *q, int n, int pos,
                    int n_head, int n_head_kv, int head_dim, int n_ctx, float scale, float softcap, int window,
                    int ring, float *out, void *work, void *stream);

int scuda_silu_mul(float *g, const float *u, int64_t count, void *stream);
int scuda_gelu_mul(float *g, const float *u, int64_t count, void *stream);
int scuda_scale(float *x, int64_t count, float s, void *stream);
int scuda_softcap(float *x, int64_t count, float cap, void *stream);

/* Mixtures of experts (backend/ops.h: moe_route, matmul_id, moe_combine), routing in device
 * memory; matmul_id multiplies only the routed rows, one warp per expert row. */
int scuda_moe_route(const float *logits, int n, int n_expert, int n_used, int norm, int32_t *ids, float *weights,
                    void *stream);
int scuda_matmul_id(int type, const void *w, int64_t rows, int64_t cols, const float *x, int x_per_slot,
                    const int32_t *ids, int n, int n_used, float *y, void *stream);
int scuda_moe_combine(const float *y, const float *weights, int n, int n_used, int64_t dim, float *out, void *stream);

/* Rows tokens[i] (host memory, any count) of table, decoded to F32. */
int scuda_embed_rows(int type, const void *table, int64_t dim, const int32_t *tokens, int n, float *out,
                     void *stream);

#ifdef __cplusplus
}
#endif

#endif
