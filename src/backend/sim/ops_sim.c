/* The sim kind's op table: the cpu table's kernels, each run with the sim's arenas open
 * (sim_enter/sim_leave), so that in strict mode nothing but these ops and the sim's copies
 * touches its memory. Sizing is the cpu's: a sim computes exactly what the CPU computes, bit
 * for bit, which is what lets a split over sims be checked against the CPU alone.
 *
 * Sims copy between themselves without staging (copy_peer: both are host memory), as GPUs
 * with peer access do; to or from a cpu, backend_copy_between uses copy_in/copy_out. */
#include <string.h>

#include "backend/cpu/attention.h"
#include "backend/cpu/matmul.h"
#include "backend/cpu/moe.h"
#include "backend/cpu/repack.h"
#include "backend/ops.h"
#include "backend/sim/sim.h"

#define CPU backend_cpu_ops

static bool sim_matrix_relayout(strata_type type, int64_t rows, int64_t cols) {
    return cpu_repack_applies(type, rows, cols);
}

static bool sim_supports(strata_type type) { return cpu_matmul_supports(type) != 0; }

static strata_status sim_memset(backend_device *dev, void *dst, int value, size_t bytes) {
    sim_enter(dev);
    strata_status st = CPU.memset(dev, dst, value, bytes);
    sim_leave(dev);
    return st;
}

static strata_status sim_copy_peer(backend_device *dst_dev, void *dst, backend_device *src_dev, const void *src,
                                   size_t bytes) {
    sim_enter(dst_dev);
    if (src_dev != dst_dev) sim_enter(src_dev);
    if (bytes) memmove(dst, src, bytes);
    if (src_dev != dst_dev) sim_leave(src_dev);
    sim_leave(dst_dev);
    return STRATA_OK;
}

static strata_status sim_matrix_upload(const backend_exec *ex, const backend_matrix *m, const void *src) {
    sim_enter(ex->dev);
    strata_status st = CPU.matrix_upload(ex, m, src);
    sim_leave(ex->dev);
    return st;
}

static void sim_synchronize(backend_device *dev) { (void)dev; }

static void sim_matmul(const backend_exec *ex, const backend_matrix *w, const float *bias, const float *x, int32_t n,
                       float *y, void *work) {
    sim_enter(ex->dev);
    CPU.matmul(ex, w, bias, x, n, y, work);
    sim_leave(ex->dev);
}

static void sim_matmul_parts(const backend_exec *ex, const backend_matrix *const *ws, const float *const *biases,
                             float *const *ys, int n_parts, const float *x, int32_t n, void *work) {
    sim_enter(ex->dev);
    CPU.matmul_parts(ex, ws, biases, ys, n_parts, x, n, work);
    sim_leave(ex->dev);
}

static void sim_add_rms_norm(const backend_exec *ex, float *x, const float *add, float *out, const float *w,
                             int32_t n, int64_t dim, float eps) {
    sim_enter(ex->dev);
    CPU.add_rms_norm(ex, x, add, out, w, n, dim, eps);
    sim_leave(ex->dev);
}

static void sim_head_rms_norm(const backend_exec *ex, float *x, int64_t n_rows, int32_t head_dim, const float *w,
                              float eps) {
    sim_enter(ex->dev);
    CPU.head_rms_norm(ex, x, n_rows, head_dim, w, eps);
    sim_leave(ex->dev);
}

static void sim_rope_table(const backend_exec *ex, float *table, int32_t n, int32_t pos, const backend_rope *r) {
    sim_enter(ex->dev);
    CPU.rope_table(ex, table, n, pos, r);
    sim_leave(ex->dev);
}

static void sim_rope_apply(const backend_exec *ex, float *x, int32_t n, int32_t n_heads, const float *table,
                           const backend_rope *r) {
    sim_enter(ex->dev);
    CPU.rope_apply(ex, x, n, n_heads, table, r);
    sim_leave(ex->dev);
}

static void sim_kv_store(const backend_exec *ex, const backend_attn_shape *s, void *k_cache, void *v_cache,
                         const float *k, const float *v, int32_t n, int32_t pos) {
    sim_enter(ex->dev);
    CPU.kv_store(ex, s, k_cache, v_cache, k, v, n, pos);
    sim_leave(ex->dev);
}

static void sim_attention(const backend_exec *ex, const backend_attn_shape *s, const void *k_cache,
                          const void *v_cache, const float *q, int32_t n, int32_t pos, float *out, void *work) {
    sim_enter(ex->dev);
    CPU.attention(ex, s, k_cache, v_cache, q, n, pos, out, work);
    sim_leave(ex->dev);
}

static void sim_silu_mul(const backend_exec *ex, float *g, const float *u, int32_t n, int64_t dim) {
    sim_enter(ex->dev);
    CPU.silu_mul(ex, g, u, n, dim);
    sim_leave(ex->dev);
}

static void sim_gelu_mul(const backend_exec *ex, float *g, const float *u, int32_t n, int64_t dim) {
    sim_enter(ex->dev);
    CPU.gelu_mul(ex, g, u, n, dim);
    sim_leave(ex->dev);
}

static void sim_scale(const backend_exec *ex, float *x, int64_t n, float s) {
    sim_enter(ex->dev);
    CPU.scale(ex, x, n, s);
    sim_leave(ex->dev);
}

static void sim_softcap(const backend_exec *ex, float *x, int64_t n, float cap) {
    sim_enter(ex->dev);
    CPU.softcap(ex, x, n, cap);
    sim_leave(ex->dev);
}

static void sim_moe_route(const backend_exec *ex, const float *logits, int32_t n, int32_t n_expert, int32_t n_used,
                          bool norm, int32_t *ids, float *weights) {
    sim_enter(ex->dev);
    CPU.moe_route(ex, logits, n, n_expert, n_used, norm, ids, weights);
    sim_leave(ex->dev);
}

static void sim_matmul_id(const backend_exec *ex, const backend_matrix *w, int32_t n_expert, const float *x,
                          bool x_per_slot, const int32_t *ids, int32_t n, int32_t n_used, float *y, void *work) {
    sim_enter(ex->dev);
    CPU.matmul_id(ex, w, n_expert, x, x_per_slot, ids, n, n_used, y, work);
    sim_leave(ex->dev);
}

static void sim_moe_combine(const backend_exec *ex, const float *y, const float *weights, int32_t n, int32_t n_used,
                            int64_t dim, float *out) {
    sim_enter(ex->dev);
    CPU.moe_combine(ex, y, weights, n, n_used, dim, out);
    sim_leave(ex->dev);
}

static void sim_embed_rows(const backend_exec *ex, const void *table, strata_type type, int64_t dim,
                           const int32_t *tokens, int32_t n, float *out) {
    sim_enter(ex->dev);
    CPU.embed_rows(ex, table, type, dim, tokens, n, out);
    sim_leave(ex->dev);
}

const backend_ops backend_sim_ops = {
    .name = "sim",
    .host_memory = false,
    .matmul_work_bytes = cpu_matmul_work_bytes,
    .attention_work_bytes = cpu_attention_work_bytes,
    .matrix_relayout = sim_matrix_relayout,
    .matmul_supports = sim_supports,
    .matmul_id_work_bytes = cpu_matmul_id_work_bytes,
    .memset = sim_memset,
    .copy_peer = sim_copy_peer,
    .matrix_upload = sim_matrix_upload,
    .synchronize = sim_synchronize,
    .matmul = sim_matmul,
    .matmul_parts = sim_matmul_parts,
    .add_rms_norm = sim_add_rms_norm,
    .head_rms_norm = sim_head_rms_norm,
    .rope_table = sim_rope_table,
    .rope_apply = sim_rope_apply,
    .kv_store = sim_kv_store,
    .attention = sim_attention,
    .silu_mul = sim_silu_mul,
    .gelu_mul = sim_gelu_mul,
    .scale = sim_scale,
    .softcap = sim_softcap,
    .moe_route = sim_moe_route,
    .matmul_id = sim_matmul_id,
    .moe_combine = sim_moe_combine,
    .embed_rows = sim_embed_rows,
};
