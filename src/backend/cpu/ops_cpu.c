/* The cpu kind's op table (backend/ops.h): the CPU kernels of this folder behind the table
 * the forward pass calls. Device memory is host memory here, so weights the cpu does not
 * relayout are read where the GGUF mapping has them.
 *
 * The per-token steps between the products (norms, the SwiGLU gate) are split across the
 * threads by token when a batch has at least 8 tokens (on one thread, the norms and the
 * gate of a 128-token prompt took about 3 % of it while the others waited); each token's
 * row is computed the same way whatever the split, so results do not depend on it. */
#include <math.h>
#include <string.h>

#include "backend/cpu/attention.h"
#include "backend/cpu/matmul.h"
#include "backend/cpu/moe.h"
#include "backend/cpu/repack.h"
#include "backend/cpu/threadpool.h"
#include "backend/cpu/vec.h"
#include "backend/ops.h"
#include "tensor/quant.h"

static int per_token_threads(const backend_exec *ex, int32_t n) { return n >= 8 ? ex->n_threads : 1; }

static bool cpu_matrix_relayout(strata_type type, int64_t rows, int64_t cols) {
    return cpu_repack_applies(type, rows, cols);
}

static bool cpu_supports(strata_type type) { return cpu_matmul_supports(type) != 0; }

static strata_status cpu_memset(backend_device *dev, void *dst, int value, size_t bytes) {
    (void)dev;
    if (bytes) memset(dst, value, bytes);
    return STRATA_OK;
}

static strata_status cpu_matrix_upload(const backend_exec *ex, const backend_matrix *m, const void *src) {
    if (m->layout) cpu_repack(m->type, src, (void *)m->data, m->rows, m->cols, ex->n_threads);
    else memcpy((void *)m->data, src, strata_type_row_bytes(m->type, m->cols) * (size_t)m->rows);
    return STRATA_OK;
}

static void cpu_synchronize(backend_device *dev) { (void)dev; }

static void add_bias_rows(float *y, const float *b, int32_t n, int64_t dim) {
    if (!b) return;
    for (int32_t i = 0; i < n; i++)
        for (int64_t j = 0; j < dim; j++) y[i * dim + j] += b[j];
}

static void cpu_op_matmul(const backend_exec *ex, const backend_matrix *w, const float *bias, const float *x,
                          int32_t n, float *y, void *work) {
    if (w->layout)
        cpu_matmul_repacked(cpu_isa_detect(), w->type, w->data, w->rows, w->cols, x, n, y, work, ex->n_threads);
    else
        cpu_matmul(w->type, w->data, w->rows, w->cols, x, n, y, work, ex->n_threads);
    add_bias_rows(y, bias, n, w->rows);
}

/* Products of the same input as one pool job (cpu_matmul_parts). */
static void cpu_op_matmul_parts(const backend_exec *ex, const backend_matrix *const *ws, const float *const *biases,
                                float *const *ys, int n_parts, const float *x, int32_t n, void *work) {
    cpu_matmul_part parts[CPU_MATMUL_MAX_PARTS] = {0};
    for (int i = 0; i < n_parts && i < CPU_MATMUL_MAX_PARTS; i++)
        parts[i] = (cpu_matmul_part){ws[i]->type, ws[i]->data, ws[i]->rows, ys[i], ws[i]->layout != 0};
    cpu_matmul_parts(parts, n_parts, ws[0]->cols, x, n, work, ex->n_threads);
    for (int i = 0; i < n_parts; i++) add_bias_rows(ys[i], biases ? biases[i] : NULL, n, ws[i]->rows);
}

typedef struct {
    float *x, *out;
    const float *add, *w;
    int64_t dim;
    float eps;
} add_norm_args;

static void add_norm_item(void *p, int64_t i, int tid) {
    (void)tid;
    const add_norm_args *a = p;
    float *x = a->x + i * a->dim;
    if (a->add) {
        const float *b = a->add + i * a->dim;
        for (int64_t j = 0; j < a->dim; j++) x[j] += b[j];
    }
    if (a->out) cpu_vec_rms_norm(a->out + i * a->dim, x, a->w, a->dim, a->eps);
}

static void cpu_add_rms_norm(const backend_exec *ex, float *x, const float *add, float *out, const float *w, int32_t n,
                             int64_t dim, float eps) {
    add_norm_args a = {x, out, add, w, dim, eps};
    cpu_parallel_for(per_token_threads(ex, n), n, add_norm_item, &a);
}

static void cpu_head_rms_norm(const backend_exec *ex, float *x, int64_t n_rows, int32_t head_dim, const float *w,
                              float eps) {
    (void)ex;
    for (int64_t i = 0; i < n_rows; i++) {
        float *r = x + (size_t)i * head_dim;
        cpu_vec_rms_norm(r, r, w, head_dim, eps);
    }
}

static void cpu_rope_table(const backend_exec *ex, float *table, int32_t n, int32_t pos, const backend_rope *r) {
    (void)ex;
    const int32_t half = r->rope_dim / 2;
    for (int32_t i = 0; i < n; i++) {
        double p = (double)(pos + i) * r->freq_scale;
        for (int32_t j = 0; j < half; j++) {
            double theta = p * pow(r->freq_base, -2.0 * j / r->rope_dim);
            if (r->factors) theta /= r->factors[j];
            table[(size_t)i * r->rope_dim + 2 * j] = (float)cos(theta);
            table[(size_t)i * r->rope_dim + 2 * j + 1] = (float)sin(theta);
        }
    }
}

static void cpu_rope_apply(const backend_exec *ex, float *v, int32_t n, int32_t n_heads, const float *table,
                           const backend_rope *r) {
    (void)ex;
    const int32_t half = r->rope_dim / 2;
    for (int32_t i = 0; i < n; i++) {
        const float *cs = table + (size_t)i * r->rope_dim;
        for (int32_t h = 0; h < n_heads; h++) {
            float *x = v + ((size_t)i * n_heads + h) * r->head_dim;
            for (int32_t j = 0; j < half; j++) {
                int32_t a = r->neox ? j : 2 * j, b = r->neox ? j + half : 2 * j + 1;
                float c = cs[2 * j], s = cs[2 * j + 1];
                float x0 = x[a], x1 = x[b];
                x[a] = x0 * c - x1 * s;
                x[b] = x0 * s + x1 * c;
            }
        }
    }
}

static void cpu_op_kv_store(const backend_exec *ex, const backend_attn_shape *s, void *k_cache, void *v_cache,
                            const float *k, const float *v, int32_t n, int32_t pos) {
    (void)ex;
    cpu_kv_store(s, k_cache, v_cache, k, v, n, pos);
}

static void cpu_op_attention(const backend_exec *ex, const backend_attn_shape *s, const void *k_cache,
                             const void *v_cache, const float *q, int32_t n, int32_t pos, float *out, void *work) {
    cpu_attention(s, k_cache, v_cache, q, n, pos, out, work, ex->n_threads);
}

typedef struct {
    float *g;
    const float *u;
    int64_t dim;
} silu_args;

static void silu_item(void *p, int64_t i, int tid) {
    (void)tid;
    const silu_args *a = p;
    cpu_vec_silu_mul(a->g + i * a->dim, a->u + i * a->dim, a->dim);
}

static void cpu_silu_mul(const backend_exec *ex, float *g, const float *u, int32_t n, int64_t dim) {
    silu_args a = {g, u, dim};
    cpu_parallel_for(per_token_threads(ex, n), n, silu_item, &a);
}

typedef struct {
    float *g;
    const float *u;
    int64_t dim;
} gelu_args;

/* tanh-approximated GELU in float, as gemma defines its FFN (the reference evaluates it
 * through an F16 table; tests/model/test_logits.c explains the tolerance that follows). */
static void gelu_item(void *p, int64_t i, int tid) {
    (void)tid;
    const gelu_args *a = p;
    float *g = a->g + i * a->dim;
    const float *u = a->u + i * a->dim;
    const float c = 0.7978845608028654f; /* sqrt(2 / pi) */
    for (int64_t j = 0; j < a->dim; j++) {
        const float x = g[j];
        g[j] = 0.5f * x * (1.0f + tanhf(c * (x + 0.044715f * x * x * x))) * u[j];
    }
}

static void cpu_gelu_mul(const backend_exec *ex, float *g, const float *u, int32_t n, int64_t dim) {
    gelu_args a = {g, u, dim};
    cpu_parallel_for(per_token_threads(ex, n), n, gelu_item, &a);
}

static void cpu_scale(const backend_exec *ex, float *x, int64_t n, float s) {
    (void)ex;
    for (int64_t i = 0; i < n; i++) x[i] *= s;
}

static void cpu_softcap(const backend_exec *ex, float *x, int64_t n, float cap) {
    (void)ex;
    for (int64_t i = 0; i < n; i++) x[i] = cap * tanhf(x[i] / cap);
}

static void cpu_op_moe_route(const backend_exec *ex, const float *logits, int32_t n, int32_t n_expert, int32_t n_used,
                             bool norm, int32_t *ids, float *weights) {
    (void)ex;
    cpu_moe_route(logits, n, n_expert, n_used, norm, ids, weights);
}

static void cpu_op_matmul_id(const backend_exec *ex, const backend_matrix *w, int32_t n_expert, const float *x,
                             bool x_per_slot, const int32_t *ids, int32_t n, int32_t n_used, float *y, void *work) {
    cpu_matmul_id(w, n_expert, x, x_per_slot, ids, n, n_used, y, work, ex->n_threads);
}

static void cpu_op_moe_combine(const backend_exec *ex, const float *y, const float *weights, int32_t n,
                               int32_t n_used, int64_t dim, float *out) {
    (void)ex;
    cpu_moe_combine(y, weights, n, n_used, dim, out);
}

static void cpu_embed_rows(const backend_exec *ex, const void *table, strata_type type, int64_t dim,
                           const int32_t *tokens, int32_t n, float *out) {
    (void)ex;
    const size_t row = strata_type_row_bytes(type, dim);
    for (int32_t i = 0; i < n; i++)
        strata_dequantize_row(type, (const uint8_t *)table + (size_t)tokens[i] * row, out + (size_t)i * dim, dim);
}

const backend_ops backend_cpu_ops = {
    .name = "cpu",
    .host_memory = true,
    .matmul_work_bytes = cpu_matmul_work_bytes,
    .attention_work_bytes = cpu_attention_work_bytes,
    .matrix_relayout = cpu_matrix_relayout,
    .matmul_supports = cpu_supports,
    .matmul_id_work_bytes = cpu_matmul_id_work_bytes,
    .memset = cpu_memset,
    .copy_peer = NULL,
    .matrix_upload = cpu_matrix_upload,
    .synchronize = cpu_synchronize,
    .matmul = cpu_op_matmul,
    .matmul_parts = cpu_op_matmul_parts,
    .add_rms_norm = cpu_add_rms_norm,
    .head_rms_norm = cpu_head_rms_norm,
    .rope_table = cpu_rope_table,
    .rope_apply = cpu_rope_apply,
    .kv_store = cpu_op_kv_store,
    .attention = cpu_op_attention,
    .silu_mul = cpu_silu_mul,
    .gelu_mul = cpu_gelu_mul,
    .scale = cpu_scale,
    .softcap = cpu_softcap,
    .moe_route = cpu_op_moe_route,
    .matmul_id = cpu_op_matmul_id,
    .moe_combine = cpu_op_moe_combine,
    .embed_rows = cpu_embed_rows,
};
