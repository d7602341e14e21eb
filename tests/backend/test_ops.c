/* Every op of the op table (backend/ops.h) against a scalar reference written here from the
 * ops' definitions, in double precision, on random data; and the sim table against the cpu
 * table bit for bit, on a strict sim (its arena is readable only inside its own ops, so
 * inputs go in with copy_in and results come out with copy_out, as on a GPU).
 *
 * Tolerances, relative to the magnitude involved (float rounding of float sums is about
 * 1e-7 per term; we allow a few hundred ulps):
 *   - norms, SiLU, RoPE, embedding of F32/F16 rows: 1e-5 (float arithmetic of the same
 *     formula; the tables are exactly rounded floats of double cos/sin);
 *   - matmul: the activations are rounded as each weight format intends (8-bit blocks for
 *     the quantized formats: each term within 1/254 of its magnitude), so 1e-2 of
 *     sum |w_i x_i| (test_matmul holds the kernels to 2e-5 against a reference that rounds
 *     the activations the same way; here the reference does not, on purpose);
 *   - attention: the reference reads the cache as stored (dequantized), so only the scores'
 *     activation rounding differs: none for F32 keys (1e-4), F16 queries for F16 keys
 *     (2e-3), 8-bit query blocks for Q8_0 keys (3e-2), relative to the largest |value|. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testdata.h"

#include "backend/device_impl.h"
#include "backend/ops.h"
#include "core/fp16.h"
#include "tensor/quant.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double uni(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return ((rng >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}
static float gauss(void) { return (float)(sqrt(-2.0 * log(uni())) * cos(6.283185307179586 * uni())); }
static void fill(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = gauss();
}

/* ---- the two tables side by side ---------------------------------------------------- */

/* A strict sim and a bump pointer over one arena of it: device buffers for the sim table. */
typedef struct {
    backend_device *dev;
    uint8_t *base;
    size_t used, size;
} sim_heap;

static sim_heap sim_open(size_t size) {
    sim_heap h = {backend_sim_device_new("ops", size, 100), NULL, 0, size};
    assert_non_null(h.dev);
    backend_sim_set_strict(h.dev, true);
    void *a = NULL;
    assert_int_equal(backend_device_arena_alloc(h.dev, size, &a), STRATA_OK);
    h.base = a;
    return h;
}

static void *sim_put(sim_heap *h, const void *src, size_t bytes) {
    size_t n = (bytes + 63) & ~(size_t)63;
    assert_true(h->used + n <= h->size);
    void *p = h->base + h->used;
    h->used += n;
    if (src) assert_int_equal(backend_device_copy_in(h->dev, p, src, bytes), STRATA_OK);
    else assert_int_equal(backend_sim_ops.memset(h->dev, p, 0, bytes), STRATA_OK);
    return p;
}

static void sim_get(sim_heap *h, void *dst, const void *src, size_t bytes) {
    assert_int_equal(backend_device_copy_out(h->dev, dst, src, bytes), STRATA_OK);
}

static void sim_close(sim_heap *h) { backend_device_free(h->dev); }

static void assert_bits_equal(const float *a, const float *b, size_t n) {
    assert_memory_equal(a, b, n * sizeof(float));
}

static void assert_close(const float *got, const double *want, size_t n, double tol, const char *what) {
    double scale = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(want[i]));
    double worst = 0;
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(got[i] - want[i]));
    if (worst > tol * fmax(scale, 1e-30)) fail_msg("%s: max error %g > %g x %g", what, worst, tol, scale);
}

static const backend_exec cpu_ex = {NULL, 2};

/* ---- norms, activations, embedding -------------------------------------------------- */

static void test_add_rms_norm(void **state) {
    (void)state;
    const int32_t n = 9; /* >= 8: the per-token split runs */
    const int64_t dim = 96;
    float *x = malloc(n * dim * 4), *add = malloc(n * dim * 4), *w = malloc(dim * 4), *out = malloc(n * dim * 4);
    float *x0 = malloc(n * dim * 4);
    double *want = malloc(n * dim * 8), *wantx = malloc(n * dim * 8);
    fill(x, n * dim);
    fill(add, n * dim);
    fill(w, dim);
    memcpy(x0, x, n * dim * 4);
    const float eps = 1e-5f;
    for (int32_t i = 0; i < n; i++) {
        double ss = 0;
        for (int64_t j = 0; j < dim; j++) {
            wantx[i * dim + j] = (double)(x[i * dim + j] + add[i * dim + j]);
            ss += wantx[i * dim + j] * wantx[i * dim + j];
        }
        double r = 1.0 / sqrt(ss / dim + eps);
        for (int64_t j = 0; j < dim; j++) want[i * dim + j] = wantx[i * dim + j] * r * w[j];
    }
    backend_cpu_ops.add_rms_norm(&cpu_ex, x, add, out, w, n, dim, eps);
    assert_close(x, wantx, n * dim, 1e-6, "add");
    assert_close(out, want, n * dim, 1e-5, "rms_norm");
    /* sim: the same bits */
    sim_heap h = sim_open(1 << 20);
    backend_exec ex = {h.dev, 2};
    float *dx = sim_put(&h, x0, n * dim * 4), *da = sim_put(&h, add, n * dim * 4), *dw = sim_put(&h, w, dim * 4);
    float *dout = sim_put(&h, NULL, n * dim * 4);
    backend_sim_ops.add_rms_norm(&ex, dx, da, dout, dw, n, dim, eps);
    float *got = malloc(n * dim * 4);
    sim_get(&h, got, dout, n * dim * 4);
    assert_bits_equal(got, out, n * dim);
    /* norm only (no add), add only (no out) */
    backend_sim_ops.add_rms_norm(&ex, dx, NULL, dout, dw, n, dim, eps);
    sim_get(&h, got, dout, n * dim * 4);
    assert_bits_equal(got, out, n * dim);
    backend_sim_ops.add_rms_norm(&ex, dx, da, NULL, NULL, n, dim, 0);
    sim_get(&h, got, dx, n * dim * 4);
    for (int64_t i = 0; i < n * dim; i++) wantx[i] += add[i];
    assert_close(got, wantx, n * dim, 1e-6, "add only");
    /* per-head norm: rows of head_dim with one weight row */
    const int32_t hd = 16;
    const int64_t rows = n * dim / hd;
    memcpy(x, x0, n * dim * 4);
    for (int64_t r = 0; r < rows; r++) {
        double ss = 0;
        for (int32_t j = 0; j < hd; j++) ss += (double)x[r * hd + j] * x[r * hd + j];
        for (int32_t j = 0; j < hd; j++) want[r * hd + j] = x[r * hd + j] / sqrt(ss / hd + eps) * w[j];
    }
    backend_cpu_ops.head_rms_norm(&cpu_ex, x, rows, hd, w, eps);
    assert_close(x, want, n * dim, 1e-5, "head_rms_norm");
    float *dh = sim_put(&h, x0, n * dim * 4);
    backend_sim_ops.head_rms_norm(&ex, dh, rows, hd, dw, eps);
    sim_get(&h, got, dh, n * dim * 4);
    assert_bits_equal(got, x, n * dim);
    sim_close(&h);
    free(x), free(add), free(w), free(out), free(x0), free(want), free(wantx), free(got);
}

static void test_silu_mul(void **state) {
    (void)state;
    const int32_t n = 10;
    const int64_t dim = 50;
    float g[500], u[500], g0[500], got[500];
    double want[500];
    fill(g, 500);
    fill(u, 500);
    memcpy(g0, g, sizeof g);
    for (int i = 0; i < 500; i++) want[i] = (double)g[i] / (1.0 + exp(-(double)g[i])) * u[i];
    backend_cpu_ops.silu_mul(&cpu_ex, g, u, n, dim);
    assert_close(g, want, 500, 1e-5, "silu_mul");
    sim_heap h = sim_open(1 << 16);
    backend_exec ex = {h.dev, 2};
    float *dg = sim_put(&h, g0, sizeof g0), *du = sim_put(&h, u, sizeof u);
    backend_sim_ops.silu_mul(&ex, dg, du, n, dim);
    sim_get(&h, got, dg, sizeof got);
    assert_bits_equal(got, g, 500);
    sim_close(&h);
}

static void test_embed_rows(void **state) {
    (void)state;
    const int64_t dim = 64;
    const int32_t vocab = 20, n = 5;
    const int32_t tokens[5] = {3, 0, 19, 3, 7};
    const strata_type types[] = {STRATA_TYPE_F32, STRATA_TYPE_F16, STRATA_TYPE_Q8_0, STRATA_TYPE_Q4_0};
    float *src = malloc(vocab * dim * 4), out[5 * 64], got[5 * 64];
    double want[5 * 64];
    fill(src, vocab * dim);
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        const size_t row = strata_type_row_bytes(types[t], dim);
        uint8_t *table = malloc(row * vocab);
        for (int32_t v = 0; v < vocab; v++) strata_quantize_row(types[t], src + v * dim, table + v * row, dim);
        /* reference: the stored row, dequantized one element block at a time from its
         * definition is tests/tensor's business; here, the row as strata_dequantize_row
         * reads it, which tests/tensor holds to the reference vectors */
        float tmp[64];
        for (int32_t i = 0; i < n; i++) {
            strata_dequantize_row(types[t], table + tokens[i] * row, tmp, dim);
            for (int64_t j = 0; j < dim; j++) want[i * dim + j] = tmp[j];
        }
        backend_cpu_ops.embed_rows(&cpu_ex, table, types[t], dim, tokens, n, out);
        assert_close(out, want, n * dim, 0, strata_type_name(types[t]));
        sim_heap h = sim_open(1 << 16);
        backend_exec ex = {h.dev, 1};
        void *dt = sim_put(&h, table, row * vocab);
        float *dout = sim_put(&h, NULL, sizeof out);
        backend_sim_ops.embed_rows(&ex, dt, types[t], dim, tokens, n, dout);
        sim_get(&h, got, dout, sizeof got);
        assert_bits_equal(got, out, n * dim);
        sim_close(&h);
        free(table);
    }
    free(src);
}

/* ---- RoPE --------------------------------------------------------------------------- */

static void test_rope(void **state) {
    (void)state;
    const int32_t n = 6, pos = 1000, n_heads = 3, head_dim = 20;
    for (int variant = 0; variant < 4; variant++) {
        const bool neox = variant & 1, factors = variant & 2;
        float ff[8];
        for (int j = 0; j < 8; j++) ff[j] = 1.0f + 0.5f * j;
        backend_rope r = {16, head_dim, 500000.0f, variant == 3 ? 0.25f : 1.0f, neox, factors ? ff : NULL};
        float table[6 * 16], x[6 * 3 * 20], x0[6 * 3 * 20], got[6 * 3 * 20];
        double want[6 * 3 * 20];
        fill(x, sizeof x / 4);
        memcpy(x0, x, sizeof x);
        for (int32_t i = 0; i < n; i++)
            for (int32_t h = 0; h < n_heads; h++) {
                const float *v = x + ((size_t)i * n_heads + h) * head_dim;
                double *w = want + ((size_t)i * n_heads + h) * head_dim;
                for (int32_t d = 0; d < head_dim; d++) w[d] = v[d]; /* past rope_dim: unchanged */
                for (int32_t j = 0; j < 8; j++) {
                    double th = (pos + i) * (double)r.freq_scale * pow(r.freq_base, -2.0 * j / 16) / (factors ? ff[j] : 1);
                    int32_t a = neox ? j : 2 * j, b = neox ? j + 8 : 2 * j + 1;
                    w[a] = v[a] * cos(th) - v[b] * sin(th);
                    w[b] = v[a] * sin(th) + v[b] * cos(th);
                }
            }
        backend_cpu_ops.rope_table(&cpu_ex, table, n, pos, &r);
        backend_cpu_ops.rope_apply(&cpu_ex, x, n, n_heads, table, &r);
        assert_close(x, want, sizeof x / 4, 1e-5, "rope");
        sim_heap h = sim_open(1 << 16);
        backend_exec ex = {h.dev, 1};
        backend_rope rd = r;
        rd.factors = factors ? sim_put(&h, ff, sizeof ff) : NULL;
        float *dt = sim_put(&h, NULL, sizeof table), *dx = sim_put(&h, x0, sizeof x0);
        backend_sim_ops.rope_table(&ex, dt, n, pos, &rd);
        backend_sim_ops.rope_apply(&ex, dx, n, n_heads, dt, &rd);
        sim_get(&h, got, dx, sizeof got);
        assert_bits_equal(got, x, sizeof x / 4);
        sim_close(&h);
    }
}

/* ---- matmul ------------------------------------------------------------------------- */

static void test_matmul(void **state) {
    (void)state;
    const strata_type types[] = {STRATA_TYPE_F32,  STRATA_TYPE_F16,  STRATA_TYPE_BF16, STRATA_TYPE_Q8_0,
                                 STRATA_TYPE_Q4_0, STRATA_TYPE_Q4_1, STRATA_TYPE_Q5_0, STRATA_TYPE_Q5_1,
                                 STRATA_TYPE_Q2_K, STRATA_TYPE_Q3_K, STRATA_TYPE_Q4_K, STRATA_TYPE_Q5_K,
                                 STRATA_TYPE_Q6_K, STRATA_TYPE_IQ4_NL, STRATA_TYPE_IQ4_XS};
    const int64_t rows = 24, cols = 256;
    const int32_t ns[] = {1, 5};
    float *wf = malloc(rows * cols * 4), *x = malloc(5 * cols * 4), bias[24], *deq = malloc(rows * cols * 4);
    fill(wf, rows * cols);
    fill(x, 5 * cols);
    fill(bias, 24);
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        const strata_type ty = types[t];
        const size_t row = strata_type_row_bytes(ty, cols), bytes = row * rows;
        uint8_t *w = malloc(bytes);
        for (int64_t r = 0; r < rows; r++) strata_quantize_row(ty, wf + r * cols, w + r * row, cols);
        for (int64_t r = 0; r < rows; r++) strata_dequantize_row(ty, w + r * row, deq + r * cols, cols);
        for (size_t k = 0; k < 2; k++) {
            const int32_t n = ns[k];
            size_t work_bytes = backend_cpu_ops.matmul_work_bytes(ty, cols, n);
            assert_int_equal(work_bytes, backend_sim_ops.matmul_work_bytes(ty, cols, n));
            void *work = malloc(work_bytes ? work_bytes : 1);
            float y[5 * 24], y2[5 * 24], y3[5 * 24], yk[5 * 24], got[5 * 24];
            double want[5 * 24], mag[5 * 24];
            for (int32_t i = 0; i < n; i++)
                for (int64_t r = 0; r < rows; r++) {
                    double s = bias[r], m = fabs(bias[r]);
                    for (int64_t c = 0; c < cols; c++) {
                        s += (double)deq[r * cols + c] * x[i * cols + c];
                        m += fabs((double)deq[r * cols + c] * x[i * cols + c]);
                    }
                    want[i * rows + r] = s;
                    mag[i * rows + r] = m;
                }
            backend_matrix m = {ty, rows, cols, w, 0};
            backend_cpu_ops.matmul(&cpu_ex, &m, bias, x, n, y, work);
            for (int64_t i = 0; i < n * rows; i++)
                if (fabs(y[i] - want[i]) > 1e-2 * mag[i])
                    fail_msg("%s n=%d: %g vs %g (|w.x| %g)", strata_type_name(ty), n, y[i], want[i], mag[i]);
            /* parts: the same rows split as Q and K would be, each as matmul gives it */
            backend_matrix a = {ty, 16, cols, w, 0}, b = {ty, 8, cols, w + 16 * row, 0};
            const backend_matrix *ws[2] = {&a, &b};
            const float *bs[2] = {bias, bias + 16};
            float *ys[2] = {y2, y3};
            backend_cpu_ops.matmul_parts(&cpu_ex, ws, bs, ys, 2, x, n, work);
            for (int32_t i = 0; i < n; i++) {
                assert_bits_equal(y2 + i * 16, y + i * rows, 16);
                assert_bits_equal(y3 + i * 8, y + i * rows + 16, 8);
            }
            /* a kind's own layout (the cpu's repacked rows), written by matrix_upload */
            if (backend_cpu_ops.matrix_relayout(ty, rows, cols)) {
                uint8_t *rw = malloc(bytes);
                backend_matrix mr = {ty, rows, cols, rw, 1};
                assert_int_equal(backend_cpu_ops.matrix_upload(&cpu_ex, &mr, w), STRATA_OK);
                backend_cpu_ops.matmul(&cpu_ex, &mr, bias, x, n, yk, work);
                for (int64_t i = 0; i < n * rows; i++)
                    if (fabs(yk[i] - want[i]) > 1e-2 * mag[i]) fail_msg("%s relaid out", strata_type_name(ty));
                free(rw);
            }
            /* the sim: uploaded (relaid out where the kind does), the cpu's bits */
            sim_heap h = sim_open(1 << 20);
            backend_exec ex = {h.dev, 2};
            const bool relaid = backend_sim_ops.matrix_relayout(ty, rows, cols);
            backend_matrix dm = {ty, rows, cols, sim_put(&h, NULL, bytes), relaid};
            assert_int_equal(backend_sim_ops.matrix_upload(&ex, &dm, w), STRATA_OK);
            float *dx = sim_put(&h, x, n * cols * 4), *db = sim_put(&h, bias, sizeof bias);
            float *dy = sim_put(&h, NULL, sizeof y);
            void *dw = sim_put(&h, NULL, work_bytes ? work_bytes : 1);
            backend_sim_ops.matmul(&ex, &dm, db, dx, n, dy, dw);
            sim_get(&h, got, dy, n * rows * 4);
            assert_bits_equal(got, relaid ? yk : y, n * rows);
            sim_close(&h);
            free(work);
        }
        free(w);
    }
    free(wf), free(x), free(deq);
}

/* ---- gemma's elementwise ops ----------------------------------------------------------- */

static void test_gelu_scale_softcap(void **state) {
    (void)state;
    const int32_t n = 10;
    const int64_t dim = 50;
    float g[500], u[500], g0[500], got[500], x[500], x0[500];
    double want[500];
    fill(g, 500);
    fill(u, 500);
    for (int i = 0; i < 500; i++) g[i] *= 3.0f; /* both tails of the GELU */
    memcpy(g0, g, sizeof g);
    for (int i = 0; i < 500; i++) {
        const double a = g[i];
        want[i] = 0.5 * a * (1.0 + tanh(sqrt(2.0 / M_PI) * (a + 0.044715 * a * a * a))) * u[i];
    }
    backend_cpu_ops.gelu_mul(&cpu_ex, g, u, n, dim);
    assert_close(g, want, 500, 1e-5, "gelu_mul");
    fill(x, 500);
    for (int i = 0; i < 500; i++) x[i] *= 20.0f;
    memcpy(x0, x, sizeof x);
    sim_heap h = sim_open(1 << 16);
    backend_exec ex = {h.dev, 2};
    float *dg = sim_put(&h, g0, sizeof g0), *du = sim_put(&h, u, sizeof u), *dx = sim_put(&h, x0, sizeof x0);
    backend_sim_ops.gelu_mul(&ex, dg, du, n, dim);
    sim_get(&h, got, dg, sizeof got);
    assert_bits_equal(got, g, 500);
    /* scale then soft-cap: x -> 30 tanh(16 x / 30) */
    for (int i = 0; i < 500; i++) want[i] = 30.0 * tanh(16.0 * x[i] / 30.0);
    backend_cpu_ops.scale(&cpu_ex, x, 500, 16.0f);
    backend_cpu_ops.softcap(&cpu_ex, x, 500, 30.0f);
    assert_close(x, want, 500, 1e-6, "scale + softcap");
    for (int i = 0; i < 500; i++) assert_true(fabsf(x[i]) <= 30.0f);
    backend_sim_ops.scale(&ex, dx, 500, 16.0f);
    backend_sim_ops.softcap(&ex, dx, 500, 30.0f);
    sim_get(&h, got, dx, sizeof got);
    assert_bits_equal(got, x, 500);
    sim_close(&h);
}

/* ---- mixture of experts ---------------------------------------------------------------- */

/* Routing from the definition: softmax over the experts in double, the n_used largest
 * (lower id first among equals) by sorting, renormalised when norm. */
static void ref_route(const float *l, int32_t n_expert, int32_t n_used, bool norm, int32_t *ids, double *w) {
    double mx = -INFINITY, sum = 0, p[256];
    for (int32_t e = 0; e < n_expert; e++) mx = fmax(mx, l[e]);
    for (int32_t e = 0; e < n_expert; e++) sum += (p[e] = exp((double)l[e] - mx));
    int32_t order[256];
    for (int32_t e = 0; e < n_expert; e++) order[e] = e;
    for (int32_t a = 1; a < n_expert; a++) /* insertion sort: stable, so equal logits keep id order */
        for (int32_t b = a; b > 0 && l[order[b]] > l[order[b - 1]]; b--) {
            int32_t t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
    double tot = 0;
    for (int32_t s = 0; s < n_used; s++) tot += p[order[s]] / sum;
    for (int32_t s = 0; s < n_used; s++) {
        ids[s] = order[s];
        w[s] = p[order[s]] / sum / (norm ? tot : 1.0);
    }
}

static void test_moe_route(void **state) {
    (void)state;
    const int32_t n = 7, E = 128, K = 8;
    float *l = malloc((size_t)n * E * 4);
    fill(l, (size_t)n * E);
    for (int32_t e = 0; e < E; e += 5) l[3 * E + e] = 1.25f; /* ties: the lower id first */
    int32_t ids[7 * 8], got_ids[7 * 8], rid[8];
    float w[7 * 8], got_w[7 * 8];
    double rw[8];
    for (int norm = 0; norm < 2; norm++) {
        backend_cpu_ops.moe_route(&cpu_ex, l, n, E, K, norm, ids, w);
        for (int32_t t = 0; t < n; t++) {
            ref_route(l + (size_t)t * E, E, K, norm, rid, rw);
            double wsum = 0;
            for (int32_t s = 0; s < K; s++) {
                assert_int_equal(ids[t * K + s], rid[s]);
                assert_true(fabs(w[t * K + s] - rw[s]) <= 1e-6 * rw[s] + 1e-9);
                wsum += w[t * K + s];
            }
            if (norm) assert_true(fabs(wsum - 1.0) < 1e-6);
        }
        sim_heap h = sim_open(1 << 20);
        backend_exec ex = {h.dev, 2};
        float *dl = sim_put(&h, l, (size_t)n * E * 4), *dw = sim_put(&h, NULL, sizeof w);
        int32_t *di = sim_put(&h, NULL, sizeof ids);
        backend_sim_ops.moe_route(&ex, dl, n, E, K, norm, di, dw);
        sim_get(&h, got_ids, di, sizeof ids);
        sim_get(&h, got_w, dw, sizeof w);
        assert_memory_equal(got_ids, ids, sizeof ids);
        assert_bits_equal(got_w, w, (size_t)n * K);
        sim_close(&h);
    }
    free(l);
}

/* matmul_id of every expert type against the definition (each routed row against its
 * expert's dequantized rows, in double; the same activation-rounding tolerance as matmul),
 * bit for bit against plain matmuls of the routed rows one expert at a time, and the sim
 * against the cpu; then moe_combine against its definition. */
static void test_matmul_id(void **state) {
    (void)state;
    const strata_type types[] = {STRATA_TYPE_F32, STRATA_TYPE_F16, STRATA_TYPE_Q8_0, STRATA_TYPE_Q4_K,
                                 STRATA_TYPE_Q5_0, STRATA_TYPE_Q6_K};
    const int32_t E = 6, K = 2, cols = 256, rows = 40;
    const int32_t ns[] = {1, 9};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const strata_type ty = types[ti];
        const size_t row = strata_type_row_bytes(ty, cols), ebytes = row * rows;
        float *wf = malloc((size_t)E * rows * cols * 4), *deq = malloc((size_t)E * rows * cols * 4);
        uint8_t *w = malloc(ebytes * E);
        fill(wf, (size_t)E * rows * cols);
        for (int64_t r = 0; r < (int64_t)E * rows; r++) {
            strata_quantize_row(ty, wf + r * cols, w + r * row, cols);
            strata_dequantize_row(ty, w + r * row, deq + r * cols, cols);
        }
        for (size_t ni = 0; ni < 2; ni++) {
            const int32_t n = ns[ni], R = n * K;
            for (int per_slot = 0; per_slot < 2; per_slot++) {
                const int32_t nx = per_slot ? R : n;
                float *x = malloc((size_t)nx * cols * 4), *y = malloc((size_t)R * rows * 4);
                float *y1 = malloc((size_t)R * rows * 4), *got = malloc((size_t)R * rows * 4);
                fill(x, (size_t)nx * cols);
                int32_t ids[18];
                /* distinct experts per token; expert 5 never routed (its rows are never read) */
                for (int32_t t = 0; t < n; t++) {
                    ids[t * K] = (t * 3) % 5;
                    ids[t * K + 1] = (t * 3 + 1 + t % 4) % 5;
                    if (ids[t * K + 1] == ids[t * K]) ids[t * K + 1] = (ids[t * K] + 1) % 5;
                }
                const size_t wb = backend_cpu_ops.matmul_id_work_bytes(ty, rows, cols, R);
                assert_int_equal(wb, backend_sim_ops.matmul_id_work_bytes(ty, rows, cols, R));
                void *work = malloc(wb);
                backend_matrix m = {ty, rows, cols, w, 0};
                backend_cpu_ops.matmul_id(&cpu_ex, &m, E, x, per_slot, ids, n, K, y, work);
                for (int32_t r = 0; r < R; r++) {
                    const float *xr = x + (size_t)(per_slot ? r : r / K) * cols;
                    const float *we = deq + (size_t)ids[r] * rows * cols;
                    for (int32_t o = 0; o < rows; o++) {
                        double sum = 0, mag = 0;
                        for (int32_t c = 0; c < cols; c++) {
                            sum += (double)we[(size_t)o * cols + c] * xr[c];
                            mag += fabs((double)we[(size_t)o * cols + c] * xr[c]);
                        }
                        if (fabs(y[(size_t)r * rows + o] - sum) > 1e-2 * mag)
                            fail_msg("matmul_id %s n=%d: row %d out %d: %g vs %g", strata_type_name(ty), n, r, o,
                                     y[(size_t)r * rows + o], sum);
                    }
                }
                /* grouped by expert: each expert's routed rows as one plain product */
                void *mw = malloc(backend_cpu_ops.matmul_work_bytes(ty, cols, R) + 1);
                float *xg = malloc((size_t)R * cols * 4), *yg = malloc((size_t)R * rows * 4);
                for (int32_t e = 0; e < E; e++) {
                    int32_t list[18], cnt = 0;
                    for (int32_t r = 0; r < R; r++)
                        if (ids[r] == e) list[cnt++] = r;
                    if (!cnt) continue;
                    for (int32_t i = 0; i < cnt; i++)
                        memcpy(xg + (size_t)i * cols, x + (size_t)(per_slot ? list[i] : list[i] / K) * cols, cols * 4);
                    backend_matrix me = {ty, rows, cols, w + (size_t)e * ebytes, 0};
                    backend_cpu_ops.matmul(&cpu_ex, &me, NULL, xg, cnt, yg, mw);
                    for (int32_t i = 0; i < cnt; i++)
                        memcpy(y1 + (size_t)list[i] * rows, yg + (size_t)i * rows, rows * 4);
                }
                assert_bits_equal(y, y1, (size_t)R * rows);
                /* the sim */
                sim_heap h = sim_open(ebytes * E + wb + (size_t)(nx * cols + 2 * R * rows) * 4 + 65536);
                backend_exec ex = {h.dev, 1};
                backend_matrix dm = {ty, rows, cols, sim_put(&h, w, ebytes * E), 0};
                float *dx = sim_put(&h, x, (size_t)nx * cols * 4), *dy = sim_put(&h, NULL, (size_t)R * rows * 4);
                int32_t *di = sim_put(&h, ids, (size_t)R * 4);
                void *dw = sim_put(&h, NULL, wb);
                backend_sim_ops.matmul_id(&ex, &dm, E, dx, per_slot, di, n, K, dy, dw);
                sim_get(&h, got, dy, (size_t)R * rows * 4);
                assert_bits_equal(got, y, (size_t)R * rows);
                /* combine: out[t] = sum_s w(t, s) y(t, s) */
                float wts[18], out[9 * 40], gout[9 * 40];
                double want[9 * 40];
                fill(wts, (size_t)R);
                backend_cpu_ops.moe_combine(&cpu_ex, y, wts, n, K, rows, out);
                for (int32_t t = 0; t < n; t++)
                    for (int32_t o = 0; o < rows; o++) {
                        double acc = 0;
                        for (int32_t k = 0; k < K; k++) acc += (double)wts[t * K + k] * y[((size_t)t * K + k) * rows + o];
                        want[t * rows + o] = acc;
                    }
                assert_close(out, want, (size_t)n * rows, 1e-5, "moe_combine");
                float *dwt = sim_put(&h, wts, (size_t)R * 4), *dout = sim_put(&h, NULL, (size_t)n * rows * 4);
                backend_sim_ops.moe_combine(&ex, dy, dwt, n, K, rows, dout);
                sim_get(&h, gout, dout, (size_t)n * rows * 4);
                assert_bits_equal(gout, out, (size_t)n * rows);
                sim_close(&h);
                free(x), free(y), free(y1), free(got), free(work), free(mw), free(xg), free(yg);
            }
        }
        free(wf), free(deq), free(w);
    }
}

/* ---- KV store and attention ---------------------------------------------------------- */

/* The cache as stored, read back: row t of KV head h of K (or V), as doubles. */
static double cached(const backend_attn_shape *s, const uint8_t *cache, int32_t h, int32_t t, int32_t d) {
    const size_t row = strata_type_row_bytes(s->kv_type, s->head_dim);
    float tmp[256];
    strata_dequantize_row(s->kv_type, cache + ((size_t)h * s->n_ctx + t) * row, tmp, s->head_dim);
    return tmp[d];
}

/* Causal grouped-query attention from the definition, over the cache as stored: scores
 * q.k * scale (1/sqrt(head_dim) when 0), soft-capped to cap * tanh(s / cap) when softcap,
 * over positions p - window + 1 .. p when window (else 0 .. p). */
static void ref_attention(const backend_attn_shape *s, const uint8_t *kc, const uint8_t *vc, const float *q,
                          int32_t n, int32_t pos, double *out) {
    const int32_t hd = s->head_dim, group = s->n_head / s->n_head_kv;
    const double scale = s->scale > 0 ? s->scale : 1.0 / sqrt((double)hd);
    double *sc = malloc((size_t)(pos + n) * sizeof(double));
    for (int32_t i = 0; i < n; i++)
        for (int32_t qh = 0; qh < s->n_head; qh++) {
            const int32_t h = qh / group, nk = pos + i + 1;
            const int32_t first = s->window > 0 && nk - s->window > 0 ? nk - s->window : 0;
            const float *qv = q + ((size_t)i * s->n_head + qh) * hd;
            double mx = -INFINITY, sum = 0;
            for (int32_t t = first; t < nk; t++) {
                double d = 0;
                for (int32_t e = 0; e < hd; e++) d += qv[e] * cached(s, kc, h, t, e);
                sc[t] = d * scale;
                if (s->softcap > 0) sc[t] = s->softcap * tanh(sc[t] / s->softcap);
                mx = fmax(mx, sc[t]);
            }
            for (int32_t t = first; t < nk; t++) sum += (sc[t] = exp(sc[t] - mx));
            double *o = out + ((size_t)i * s->n_head + qh) * hd;
            for (int32_t e = 0; e < hd; e++) {
                double v = 0;
                for (int32_t t = first; t < nk; t++) v += sc[t] / sum * cached(s, vc, h, t, e);
                o[e] = v;
            }
        }
    free(sc);
}

/* Fills positions [0, pos + n) of a cache through kv_store in batches, then attends with the
 * last n tokens' queries; cpu against the reference, sim against the cpu's bits. */
static void check_attention_ext(strata_type kv_type, int32_t n_head, int32_t n_head_kv, int32_t head_dim,
                                int32_t n_ctx, int32_t pos, int32_t n, double tol, float scale, float softcap,
                                int32_t window) {
    backend_attn_shape s = {n_head, n_head_kv, head_dim, n_ctx, kv_type, scale, softcap, window, false};
    const size_t block = (size_t)n_head_kv * n_ctx * strata_type_row_bytes(kv_type, head_dim);
    const int32_t total = pos + n, kvd = n_head_kv * head_dim, qd = n_head * head_dim;
    uint8_t *kc = calloc(1, block), *vc = calloc(1, block);
    float *k = malloc((size_t)total * kvd * 4), *v = malloc((size_t)total * kvd * 4);
    float *q = malloc((size_t)n * qd * 4), *out = malloc((size_t)n * qd * 4), *got = malloc((size_t)n * qd * 4);
    double *want = malloc((size_t)n * qd * 8);
    fill(k, (size_t)total * kvd);
    fill(v, (size_t)total * kvd);
    fill(q, (size_t)n * qd);
    const size_t work_bytes = backend_cpu_ops.attention_work_bytes(&s, n);
    assert_int_equal(work_bytes, backend_sim_ops.attention_work_bytes(&s, n));
    void *work = malloc(work_bytes);
    for (int32_t p0 = 0; p0 < total; p0 += 37) {
        int32_t m = total - p0 < 37 ? total - p0 : 37;
        backend_cpu_ops.kv_store(&cpu_ex, &s, kc, vc, k + (size_t)p0 * kvd, v + (size_t)p0 * kvd, m, p0);
    }
    /* kv_store wrote each row as the type stores it */
    const size_t row = strata_type_row_bytes(kv_type, head_dim);
    uint8_t *one = malloc(row);
    for (int32_t t = 0; t < total; t += 13)
        for (int32_t h = 0; h < n_head_kv; h++) {
            strata_quantize_row(kv_type, k + (size_t)t * kvd + (size_t)h * head_dim, one, head_dim);
            assert_memory_equal(one, kc + ((size_t)h * n_ctx + t) * row, row);
        }
    free(one);
    backend_cpu_ops.attention(&cpu_ex, &s, kc, vc, q, n, pos, out, work);
    ref_attention(&s, kc, vc, q, n, pos, want);
    char what[96];
    snprintf(what, sizeof what, "attention %s heads %d/%d hd %d pos %d n %d scale %g cap %g window %d",
             strata_type_name(kv_type), n_head, n_head_kv, head_dim, pos, n, scale, softcap, window);
    assert_close(out, want, (size_t)n * qd, tol, what);
    /* the sim, with 1 thread: results do not depend on the thread count */
    sim_heap h = sim_open(2 * block + work_bytes + (size_t)(2 * total * kvd + 2 * n * qd) * 4 + 4096);
    backend_exec ex = {h.dev, 1};
    uint8_t *dk = sim_put(&h, NULL, block), *dv = sim_put(&h, NULL, block);
    float *dks = sim_put(&h, k, (size_t)total * kvd * 4), *dvs = sim_put(&h, v, (size_t)total * kvd * 4);
    float *dq = sim_put(&h, q, (size_t)n * qd * 4), *dout = sim_put(&h, NULL, (size_t)n * qd * 4);
    void *dwork = sim_put(&h, NULL, work_bytes);
    backend_sim_ops.kv_store(&ex, &s, dk, dv, dks, dvs, total, 0);
    backend_sim_ops.attention(&ex, &s, dk, dv, dq, n, pos, dout, dwork);
    sim_get(&h, got, dout, (size_t)n * qd * 4);
    assert_bits_equal(got, out, (size_t)n * qd);
    sim_close(&h);
    free(kc), free(vc), free(k), free(v), free(q), free(out), free(got), free(want), free(work);
}

static void check_attention(strata_type kv_type, int32_t n_head, int32_t n_head_kv, int32_t head_dim, int32_t n_ctx,
                            int32_t pos, int32_t n, double tol) {
    check_attention_ext(kv_type, n_head, n_head_kv, head_dim, n_ctx, pos, n, tol, 0, 0, 0);
}

static void test_attention(void **state) {
    (void)state;
    const strata_type types[] = {STRATA_TYPE_F32, STRATA_TYPE_F16, STRATA_TYPE_Q8_0};
    const double tols[] = {1e-4, 2e-3, 3e-2};
    for (int t = 0; t < 3; t++) {
        /* a batch from an empty cache; a batch after a prefix; GQA, MQA and MHA */
        check_attention(types[t], 8, 2, 32, 96, 0, 40, tols[t]);
        check_attention(types[t], 6, 1, 64, 128, 50, 20, tols[t]);
        check_attention(types[t], 4, 4, 32, 64, 10, 3, tols[t]);
        /* decode steps: short, and long enough to be split into chunks of positions */
        check_attention(types[t], 8, 2, 32, 1024, 5, 1, tols[t]);
        check_attention(types[t], 8, 2, 32, 1024, 700, 1, tols[t]);
        check_attention(types[t], 14, 2, 64, 600, 599, 1, tols[t]);
        /* gemma: a sliding window (a batch crossing it, a short decode step, a decode step
         * whose window is split into chunks), soft-capped scores, another score scale */
        check_attention_ext(types[t], 8, 4, 64, 128, 20, 40, tols[t], 0, 0, 8);
        check_attention_ext(types[t], 8, 4, 64, 128, 100, 1, tols[t], 0, 0, 8);
        check_attention_ext(types[t], 8, 2, 32, 1024, 900, 1, tols[t], 0, 0, 300);
        check_attention_ext(types[t], 8, 2, 32, 1024, 40, 33, tols[t], 0, 0, 1024);
        check_attention_ext(types[t], 4, 2, 64, 96, 10, 30, tols[t], 0, 10.0f, 0);
        check_attention_ext(types[t], 4, 2, 64, 1024, 600, 1, tols[t], 0.3f, 5.0f, 512);
        check_attention_ext(types[t], 4, 1, 256, 96, 10, 30, tols[t], 1.0f / 12.0f, 0, 16);
    }
}

/* A sliding-window layer's ring of window + batch rows against a full cache with the same
 * window: positions written batch by batch (each batch then attended, as the forward pass
 * does), the ring wrapping several times, every batch's output bit for bit the full cache's,
 * on the cpu and on a strict sim. */
static void check_ring(strata_type kv_type, int32_t n_head, int32_t n_head_kv, int32_t head_dim, int32_t window,
                       int32_t n_batch, int32_t total, int32_t step, float softcap) {
    const int32_t R = window + n_batch, kvd = n_head_kv * head_dim, qd = n_head * head_dim;
    backend_attn_shape full = {n_head, n_head_kv, head_dim, total, kv_type, 0, softcap, window, false};
    backend_attn_shape ring = {n_head, n_head_kv, head_dim, R, kv_type, 0, softcap, window, true};
    const size_t row = strata_type_row_bytes(kv_type, head_dim);
    const size_t fblock = (size_t)n_head_kv * total * row, rblock = (size_t)n_head_kv * R * row;
    uint8_t *fk = calloc(1, fblock), *fv = calloc(1, fblock), *rk = calloc(1, rblock), *rv = calloc(1, rblock);
    float *k = malloc((size_t)step * kvd * 4), *v = malloc((size_t)step * kvd * 4), *q = malloc((size_t)step * qd * 4);
    float *of = malloc((size_t)step * qd * 4), *orr = malloc((size_t)step * qd * 4), *os = malloc((size_t)step * qd * 4);
    const size_t wf = backend_cpu_ops.attention_work_bytes(&full, n_batch), wr = backend_cpu_ops.attention_work_bytes(&ring, n_batch);
    assert_int_equal(wr, backend_sim_ops.attention_work_bytes(&ring, n_batch));
    void *workf = malloc(wf), *workr = malloc(wr);
    sim_heap h = sim_open(2 * rblock + wr + (size_t)(2 * step * kvd + 2 * step * qd) * 4 + 4096);
    backend_exec ex = {h.dev, 1};
    uint8_t *dk = sim_put(&h, NULL, rblock), *dv = sim_put(&h, NULL, rblock);
    float *dks = sim_put(&h, NULL, (size_t)step * kvd * 4), *dvs = sim_put(&h, NULL, (size_t)step * kvd * 4);
    float *dq = sim_put(&h, NULL, (size_t)step * qd * 4), *dout = sim_put(&h, NULL, (size_t)step * qd * 4);
    void *dwork = sim_put(&h, NULL, wr);
    int batches = 0;
    for (int32_t pos = 0; pos < total; pos += step) {
        const int32_t n = total - pos < step ? total - pos : step;
        fill(k, (size_t)n * kvd);
        fill(v, (size_t)n * kvd);
        fill(q, (size_t)n * qd);
        backend_cpu_ops.kv_store(&cpu_ex, &full, fk, fv, k, v, n, pos);
        backend_cpu_ops.kv_store(&cpu_ex, &ring, rk, rv, k, v, n, pos);
        backend_cpu_ops.attention(&cpu_ex, &full, fk, fv, q, n, pos, of, workf);
        backend_cpu_ops.attention(&cpu_ex, &ring, rk, rv, q, n, pos, orr, workr);
        assert_bits_equal(orr, of, (size_t)n * qd);
        assert_int_equal(backend_device_copy_in(h.dev, dks, k, (size_t)n * kvd * 4), STRATA_OK);
        assert_int_equal(backend_device_copy_in(h.dev, dvs, v, (size_t)n * kvd * 4), STRATA_OK);
        assert_int_equal(backend_device_copy_in(h.dev, dq, q, (size_t)n * qd * 4), STRATA_OK);
        backend_sim_ops.kv_store(&ex, &ring, dk, dv, dks, dvs, n, pos);
        backend_sim_ops.attention(&ex, &ring, dk, dv, dq, n, pos, dout, dwork);
        sim_get(&h, os, dout, (size_t)n * qd * 4);
        assert_bits_equal(os, of, (size_t)n * qd);
        batches++;
    }
    assert_true(total > 3 * R); /* the ring wrapped several times */
    sim_close(&h);
    free(fk), free(fv), free(rk), free(rv), free(k), free(v), free(q), free(of), free(orr), free(os), free(workf),
        free(workr);
}

static void test_ring(void **state) {
    (void)state;
    const strata_type types[] = {STRATA_TYPE_F32, STRATA_TYPE_F16, STRATA_TYPE_Q8_0};
    for (int t = 0; t < 3; t++) {
        /* batches of the ring's full batch size, of odd sizes, and decode steps; a window
         * long enough for split decode steps (300 > 256 positions) */
        check_ring(types[t], 8, 2, 32, 8, 16, 120, 16, 0);
        check_ring(types[t], 8, 4, 64, 8, 16, 130, 7, 10.0f);
        check_ring(types[t], 4, 1, 64, 13, 4, 90, 1, 0);
        check_ring(types[t], 4, 2, 32, 300, 32, 1100, 1, 0);
        check_ring(types[t], 4, 2, 32, 300, 32, 1100, 32, 0);
    }
}

/* ---- memory: memset, copies between devices ------------------------------------------ */

static void test_memory(void **state) {
    (void)state;
    backend_device *cpu = backend_cpu_device_new("cpu", 0, 10);
    sim_heap a = sim_open(1 << 16), b = sim_open(1 << 16);
    void *ca = NULL;
    assert_int_equal(backend_device_arena_alloc(cpu, 4096, &ca), STRATA_OK);
    float src[256], got[256], staging[256];
    fill(src, 256);
    float *pa = sim_put(&a, src, sizeof src), *pb = sim_put(&b, NULL, sizeof src);
    /* sim -> sim (peer), sim -> cpu, cpu -> sim */
    assert_int_equal(backend_copy_between(b.dev, pb, a.dev, pa, sizeof src, NULL), STRATA_OK);
    sim_get(&b, got, pb, sizeof got);
    assert_memory_equal(got, src, sizeof src);
    assert_int_equal(backend_copy_between(cpu, ca, b.dev, pb, sizeof src, NULL), STRATA_OK);
    assert_memory_equal(ca, src, sizeof src);
    assert_int_equal(backend_sim_ops.memset(a.dev, pa, 0, sizeof src), STRATA_OK);
    assert_int_equal(backend_copy_between(a.dev, pa, cpu, ca, sizeof src, NULL), STRATA_OK);
    sim_get(&a, got, pa, sizeof got);
    assert_memory_equal(got, src, sizeof src);
    /* a kind without peer copies is staged through the caller's host buffer */
    backend_ops nopeer = backend_sim_ops;
    nopeer.copy_peer = NULL;
    backend_device_ops dops = *a.dev->ops;
    dops.compute = &nopeer;
    const backend_device_ops *sa = a.dev->ops, *sb = b.dev->ops;
    a.dev->ops = &dops;
    b.dev->ops = &dops;
    assert_int_equal(backend_sim_ops.memset(b.dev, pb, 0, sizeof src), STRATA_OK);
    memset(staging, 0, sizeof staging);
    assert_int_equal(backend_copy_between(b.dev, pb, a.dev, pa, sizeof src, staging), STRATA_OK);
    assert_memory_equal(staging, src, sizeof src);
    sim_get(&b, got, pb, sizeof got);
    assert_memory_equal(got, src, sizeof src);
    a.dev->ops = sa;
    b.dev->ops = sb;
    /* memset writes what it says */
    assert_int_equal(backend_sim_ops.memset(a.dev, pa, 0, sizeof src), STRATA_OK);
    sim_get(&a, got, pa, sizeof got);
    for (int i = 0; i < 256; i++) assert_true(got[i] == 0.0f);
    sim_close(&a);
    sim_close(&b);
    backend_device_free(cpu);
    /* the tables of the kinds */
    assert_ptr_equal(backend_kind_ops(BACKEND_DEVICE_CPU), &backend_cpu_ops);
    assert_ptr_equal(backend_kind_ops(BACKEND_DEVICE_SIM), &backend_sim_ops);
    assert_true(backend_cpu_ops.host_memory && !backend_sim_ops.host_memory);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_rms_norm), cmocka_unit_test(test_silu_mul), cmocka_unit_test(test_embed_rows),
        cmocka_unit_test(test_rope),         cmocka_unit_test(test_matmul),   cmocka_unit_test(test_attention),
        cmocka_unit_test(test_memory),       cmocka_unit_test(test_gelu_scale_softcap),
        cmocka_unit_test(test_moe_route),    cmocka_unit_test(test_matmul_id),  cmocka_unit_test(test_ring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
