/* The cuda kind's op table (backend/ops.h): each op queues kernels (kernels.cu) or cuBLAS
 * calls on the device's stream and returns; copy_out and synchronize wait for them and
 * report the first error an op met (ops themselves return nothing).
 *
 * Products. Up to SCUDA_MATVEC_MAX_N tokens (a decode step): one warp per weight row,
 * decoding the GGUF blocks as it reads them (every weight byte read once per step, which is
 * what bounds a decode step). More tokens (a prompt): the weights are dequantized
 * CUDA_TILE_ROWS rows at a time into F16 in the scratch (F32 for BF16, whose range F16 does
 * not hold), the activations converted to F16 once, and cublasGemmEx multiplies with F32
 * accumulation; F16 weights are used where they are, F32 ones with F32 activations. The
 * scratch that needs is matmul_work_bytes, a function of the shapes alone, so the planner's
 * compute bytes for a CUDA device are exactly what its products use; the cuBLAS workspace
 * is the scratch's last CUDA_CUBLAS_WORKSPACE bytes (cublasSetWorkspace), so cuBLAS
 * allocates nothing either.
 *
 * Not yet: int8 (dp4a) products on quantized activations, tensor-core kernels of our own;
 * these change speed, not results beyond rounding. */
#ifdef STRATA_HAVE_CUDA
#include <stdio.h>
#include <string.h>

#include "backend/cuda/cuda.h"
#include "backend/cuda/kernels.h"
#include "backend/ops.h"

static size_t round256(size_t b) { return (b + 255) & ~(size_t)255; }

void cuda_note_error(backend_device *dev, int error, const char *what) {
    cuda_state *cs = cuda_state_of(dev);
    if (error && !cs->error) {
        cs->error = error;
        snprintf(cs->what, sizeof cs->what, "%s", what);
    }
}

strata_status cuda_take_error(backend_device *dev) {
    cuda_state *cs = cuda_state_of(dev);
    if (!cs->error) return STRATA_OK;
    int e = cs->error;
    cs->error = 0;
    return strata_fail(STRATA_ERR_IO, "device %s: %s failed: %s (%d)", dev->label, cs->what,
                       e > 0 && e < 10000 ? cudaGetErrorString((cudaError_t)e) : "cuBLAS error", e);
}

/* Every op runs with its device current (two logical devices may share one GPU, and a
 * process may drive several). */
static cuda_state *enter(backend_device *dev) {
    cuda_state *cs = cuda_state_of(dev);
    cudaSetDevice(cs->ordinal);
    return cs;
}

/* ---- sizing ------------------------------------------------------------------------------ */

static bool cuda_supports(strata_type type) { return scuda_type_supported((int)type) != 0; }

/* The scratch starts where the arena's 64-byte rounding put it; cuBLAS wants its workspace
 * 256-byte aligned, so the layout starts at the next multiple of 256 (the 256 spare bytes
 * are counted). */
static uint8_t *align256(void *p) { return (uint8_t *)(((uintptr_t)p + 255) & ~(uintptr_t)255); }

static size_t cuda_matmul_work_bytes(strata_type wtype, int64_t cols, int64_t n_tokens) {
    if (n_tokens <= SCUDA_MATVEC_MAX_N) return 0;
    size_t b = 256 + CUDA_CUBLAS_WORKSPACE;
    if (wtype == STRATA_TYPE_F32) return b;
    if (wtype == STRATA_TYPE_BF16) return b + round256((size_t)CUDA_TILE_ROWS * (size_t)cols * 4);
    b += round256((size_t)n_tokens * (size_t)cols * 2); /* activations in F16 */
    if (wtype != STRATA_TYPE_F16) b += round256((size_t)CUDA_TILE_ROWS * (size_t)cols * 2);
    return b;
}

static size_t cuda_attention_work_bytes(const backend_attn_shape *s, int32_t n_batch) {
    (void)n_batch; /* only a single token's step is split */
    return scuda_attention_work_bytes(s->n_head, s->head_dim, s->n_ctx);
}

static bool cuda_matrix_relayout(strata_type type, int64_t rows, int64_t cols) {
    (void)type;
    (void)rows;
    (void)cols;
    return false; /* the kernels read GGUF's layout */
}

/* ---- memory ------------------------------------------------------------------------------- */

static strata_status cuda_memset(backend_device *dev, void *dst, int value, size_t bytes) {
    cuda_state *cs = enter(dev);
    cudaError_t e = cudaMemsetAsync(dst, value, bytes, cs->stream);
    if (e != cudaSuccess) return strata_fail(STRATA_ERR_IO, "device %s: cudaMemsetAsync: %s", dev->label, cudaGetErrorString(e));
    return STRATA_OK;
}

/* Device to device: after the source's queued work, on the destination's stream; between
 * two GPUs the driver copies peer to peer where it can and stages otherwise
 * (cudaMemcpyPeerAsync). */
static strata_status cuda_copy_peer(backend_device *dst_dev, void *dst, backend_device *src_dev, const void *src,
                                    size_t bytes) {
    cuda_state *sc = enter(src_dev);
    cudaError_t e = cudaStreamSynchronize(sc->stream);
    cuda_state *dc = enter(dst_dev);
    if (e == cudaSuccess)
        e = sc->ordinal == dc->ordinal ? cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, dc->stream)
                                       : cudaMemcpyPeerAsync(dst, dc->ordinal, src, sc->ordinal, bytes, dc->stream);
    if (e != cudaSuccess)
        return strata_fail(STRATA_ERR_IO, "copy from %s to %s: %s", src_dev->label, dst_dev->label, cudaGetErrorString(e));
    return STRATA_OK;
}

static strata_status cuda_matrix_upload(const backend_exec *ex, const backend_matrix *m, const void *src) {
    return backend_device_copy_in(ex->dev, (void *)m->data, src, strata_type_row_bytes(m->type, m->cols) * (size_t)m->rows);
}

static void cuda_synchronize(backend_device *dev) {
    cuda_state *cs = enter(dev);
    cuda_note_error(dev, (int)cudaStreamSynchronize(cs->stream), "synchronize");
}

/* ---- products ----------------------------------------------------------------------------- */

static void gemm(backend_device *dev, cuda_state *cs, const void *a, cudaDataType at, const void *b, cudaDataType bt,
                 int64_t m, int64_t n, int64_t k, float *c, int64_t ldc, void *ws) {
    const float one = 1.0f, zero = 0.0f;
    cublasStatus_t st = cublasSetWorkspace(cs->blas, ws, CUDA_CUBLAS_WORKSPACE);
    /* C (m x n, column-major, ld ldc) = A^T B with A k x m and B k x n column-major: that is
     * y[n][rows] = x[n][cols] . W[rows][cols]^T in row-major terms. */
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasGemmEx(cs->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)m, (int)n, (int)k, &one, a, at, (int)k, b, bt,
                          (int)k, &zero, c, CUDA_R_32F, (int)ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS) cuda_note_error(dev, 10000 + (int)st, "cublasGemmEx");
}

static void cuda_op_matmul(const backend_exec *ex, const backend_matrix *w, const float *bias, const float *x,
                           int32_t n, float *y, void *work) {
    cuda_state *cs = enter(ex->dev);
    const int64_t rows = w->rows, cols = w->cols;
    if (n <= SCUDA_MATVEC_MAX_N) {
        cuda_note_error(ex->dev, scuda_matvec((int)w->type, w->data, rows, cols, x, n, bias, y, cs->stream), "matvec");
        return;
    }
    uint8_t *p = align256(work);
    if (w->type == STRATA_TYPE_F32) {
        gemm(ex->dev, cs, w->data, CUDA_R_32F, x, CUDA_R_32F, rows, n, cols, y, rows, p);
    } else if (w->type == STRATA_TYPE_BF16) {
        void *ws = p + round256((size_t)CUDA_TILE_ROWS * (size_t)cols * 4);
        for (int64_t r0 = 0; r0 < rows; r0 += CUDA_TILE_ROWS) {
            const int64_t nr = rows - r0 < CUDA_TILE_ROWS ? rows - r0 : CUDA_TILE_ROWS;
            cuda_note_error(ex->dev, scuda_dequant_rows((int)w->type, w->data, r0, nr, cols, p, 1, cs->stream), "dequantize");
            gemm(ex->dev, cs, p, CUDA_R_32F, x, CUDA_R_32F, nr, n, cols, y + r0, rows, ws);
        }
    } else {
        void *x16 = p;
        p += round256((size_t)n * (size_t)cols * 2);
        cuda_note_error(ex->dev, scuda_f32_to_f16(x, (int64_t)n * cols, x16, cs->stream), "f32_to_f16");
        if (w->type == STRATA_TYPE_F16) {
            gemm(ex->dev, cs, w->data, CUDA_R_16F, x16, CUDA_R_16F, rows, n, cols, y, rows, p);
        } else {
            void *tile = p, *ws = p + round256((size_t)CUDA_TILE_ROWS * (size_t)cols * 2);
            for (int64_t r0 = 0; r0 < rows; r0 += CUDA_TILE_ROWS) {
                const int64_t nr = rows - r0 < CUDA_TILE_ROWS ? rows - r0 : CUDA_TILE_ROWS;
                cuda_note_error(ex->dev, scuda_dequant_rows((int)w->type, w->data, r0, nr, cols, tile, 0, cs->stream),
                                "dequantize");
                gemm(ex->dev, cs, tile, CUDA_R_16F, x16, CUDA_R_16F, nr, n, cols, y + r0, rows, ws);
            }
        }
    }
    if (bias) cuda_note_error(ex->dev, scuda_add_bias(y, bias, n, rows, cs->stream), "add_bias");
}

static void cuda_op_matmul_parts(const backend_exec *ex, const backend_matrix *const *ws, const float *const *biases,
                                 float *const *ys, int n_parts, const float *x, int32_t n, void *work) {
    for (int i = 0; i < n_parts; i++) cuda_op_matmul(ex, ws[i], biases ? biases[i] : NULL, x, n, ys[i], work);
}

/* ---- the rest of a layer ------------------------------------------------------------------ */

static void cuda_add_rms_norm(const backend_exec *ex, float *x, const float *add, float *out, const float *w, int32_t n,
                              int64_t dim, float eps) {
    if (!add && !out) return;
    cuda_state *cs = enter(ex->dev);
    cuda_note_error(ex->dev, scuda_add_rms_norm(x, add, out, w, n, dim, eps, cs->stream), "add_rms_norm");
}

static void cuda_head_rms_norm(const backend_exec *ex, float *x, int64_t n_rows, int32_t head_dim, const float *w,
                               float eps) {
    cuda_state *cs = enter(ex->dev);
    cuda_note_error(ex->dev, scuda_head_rms_norm(x, n_rows, head_dim, w, eps, cs->stream), "head_rms_norm");
}

static void cuda_rope_table(const backend_exec *ex, float *table, int32_t n, int32_t pos, const backend_rope *r) {
    cuda_state *cs = enter(ex->dev);
    cuda_note_error(ex->dev,
                    scuda_rope_table(table, n, pos, r->rope_dim, r->freq_base, r->freq_scale, r->factors, cs->stream),
                    "rope_table");
}

static void cuda_rope_apply(const backend_exec *ex, float *x, int32_t n, int32_t n_heads, const float *table,
                            const backend_rope *r) {
    cuda_state *cs = enter(ex->dev);
    cuda_note_error(ex->dev, scuda_rope_apply(x, n, n_heads, r->head_dim, r->rope_dim, r->neox, table, cs->stream),
                    "rope_apply");
}

static void cuda_kv_store(const backend_exec *ex, const backend_attn_shape *s, void *k_cache, void *v_cache,
                          const float *k, const float *v, int32_t n, int32_t pos) {
    cuda_state *cs = enter(ex->dev);
    cuda_note_error(ex->dev,
                    scuda_kv_store((int)s->kv_type, k_cache, v_cache, k, v, n, pos, s->n_head_kv, s->head_dim,
                                   s->n_ctx, s->ring, cs->stream),
                    "kv_store");
}

static void cuda_attention(const backend_exec *ex, const backend_attn_shape *s, const void *k_cache,
                           const void *v_cache, const float *q, int32_t n, int32_t pos, float *out, void *work) {
    cuda_state *cs = enter(ex->dev);
    cuda_note_error(ex->dev,
                    scuda_attention((int)s->kv_type, k_cache, v_cache, q, n, pos, s->n_head, s->n_head_kv, s->head_dim,
                                    s->n_ctx, s->scale, s->softcap, s->window, s->ring, out, work, cs->stream),
                    "attention");
}

static void cuda_silu_mul(const backend_exec *ex, float *g, const float *u, int32_t n, int64_t dim) {
    cuda_state *cs = enter(ex->dev);
    cuda_note_error(ex->dev, scuda_silu_mul(g, u, (int64_t)n * dim, cs->stream), "silu_mul");
}

static void cuda_gelu_mul(const backend_exec *ex, float *g, const float *u, int32_t n, int64_t dim) {
    cuda_state *cs = enter(ex->dev);
    cuda_note_error(ex->dev, scuda_gelu_mul(g, u, (int64_t)n * dim, cs->stream), "gelu_mul");
}

static void cuda_scale(const backend_exec *ex, float *x, int64_t n, float s) {
    cuda_state *cs = enter(ex->dev);
    cuda_note_error(ex->dev, scuda_scale(x, n, s, cs->stream), "scale");
}

static void cuda_softcap(const backend_exec *ex, float *x, int64_t n, float cap) {
    cuda_state *cs = enter(ex->dev);
    cuda_note_error(ex->dev, scuda_softcap(x, n, cap, cs->stream), "softcap");
}

static size_t cuda_matmul_id_work_bytes(strata_type wtype, int64_t rows, int64_t cols, int32_t n_rows) {
    (void)wtype;
    (void)rows;
    (void)cols;
    (void)n_rows;
    return 0; /* routed rows are multiplied where they are, one warp per expert row */
}

static void cuda_moe_route(const backend_exec *ex, const float *logits, int32_t n, int32_t n_expert, int32_t n_used,
                           bool norm, int32_t *ids, float *weights) {
    cuda_state *cs = enter(ex->dev);
    cuda_note_error(ex->dev, scuda_moe_route(logits, n, n_expert, n_used, norm, ids, weights, cs->stream), "moe_route");
}

static void cuda_matmul_id(const backend_exec *ex, const backend_matrix *w, int32_t n_expert, const float *x,
                           bool x_per_slot, const int32_t *ids, int32_t n, int32_t n_used, float *y, void *work) {
    (void)n_expert;
    (void)work;
    cuda_state *cs = enter(ex->dev);
    cuda_note_error(ex->dev,
                    scuda_matmul_id((int)w->type, w->data, w->rows, w->cols, x, x_per_slot, ids, n, n_used, y, cs->stream),
                    "matmul_id");
}

static void cuda_moe_combine(const backend_exec *ex, const float *y, const float *weights, int32_t n, int32_t n_used,
                             int64_t dim, float *out) {
    cuda_state *cs = enter(ex->dev);
    cuda_note_error(ex->dev, scuda_moe_combine(y, weights, n, n_used, dim, out, cs->stream), "moe_combine");
}

static void cuda_embed_rows(const backend_exec *ex, const void *table, strata_type type, int64_t dim,
                            const int32_t *tokens, int32_t n, float *out) {
    cuda_state *cs = enter(ex->dev);
    cuda_note_error(ex->dev, scuda_embed_rows((int)type, table, dim, tokens, n, out, cs->stream), "embed_rows");
}

const backend_ops backend_cuda_ops = {
    .name = "cuda",
    .host_memory = false,
    .matmul_work_bytes = cuda_matmul_work_bytes,
    .attention_work_bytes = cuda_attention_work_bytes,
    .matrix_relayout = cuda_matrix_relayout,
    .matmul_supports = cuda_supports,
    .matmul_id_work_bytes = cuda_matmul_id_work_bytes,
    .memset = cuda_memset,
    .copy_peer = cuda_copy_peer,
    .matrix_upload = cuda_matrix_upload,
    .synchronize = cuda_synchronize,
    .matmul = cuda_op_matmul,
    .matmul_parts = cuda_op_matmul_parts,
    .add_rms_norm = cuda_add_rms_norm,
    .head_rms_norm = cuda_head_rms_norm,
    .rope_table = cuda_rope_table,
    .rope_apply = cuda_rope_apply,
    .kv_store = cuda_kv_store,
    .attention = cuda_attention,
    .silu_mul = cuda_silu_mul,
    .gelu_mul = cuda_gelu_mul,
    .scale = cuda_scale,
    .softcap = cuda_softcap,
    .moe_route = cuda_moe_route,
    .matmul_id = cuda_matmul_id,
    .moe_combine = cuda_moe_combine,
    .embed_rows = cuda_embed_rows,
};
#endif
