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

#include "rng.h"
#include "testdata.h"

#include "backend/device_impl.h"
#include "backend/ops.h"
#include "core/fp16.h"
#include "tensor/quant.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float gauss(void) { return test_rng_gauss(&rng); }
static void fill(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = gauss();
}

/* ---- the two tables side by side ---------------------------------------------------- */

/* The devices under test besides the cpu: a strict sim always (its table must give the
 * cpu's bits), and the first CUDA GPU where there is one (its results are held to the
 * reference within the tolerances of the header). Each test runs its device part once per
 * device, through a bump pointer over one arena of it: inputs go in with copy_in, results
 * come out with copy_out, as the forward pass does. */
typedef struct {
    backend_device *dev;
    const backend_ops *o;
    bool bitwise;          /* must equal the cpu table's results bit for bit */
    uint8_t *base;
    size_t used, size;
} dev_heap;

static int n_duts(void) {
    static int announced;
    const int gpus = backend_cuda_count() > 0 ? 1 : 0;
    if (!announced++ && !gpus)
        print_message("  CUDA ops not checked here: %s\n", backend_cuda_unavailable_reason());
    return 1 + gpus;
}

static const backend_ops *dut_ops(int which) {
    return which == 0 ? &backend_sim_ops : backend_kind_ops(BACKEND_DEVICE_CUDA);
}

static dev_heap dev_open(int which, size_t size) {
    dev_heap h = {NULL, NULL, which == 0, NULL, 0, size};
    if (which == 0) {
        h.dev = backend_sim_device_new("ops", size, 100);
        assert_non_null(h.dev);
        backend_sim_set_strict(h.dev, true);
    } else {
        assert_int_equal(backend_cuda_device_new(0, NULL, 0, 0, &h.dev), STRATA_OK);
    }
    h.o = backend_device_compute(h.dev);
    assert_non_null(h.o);
    void *a = NULL;
    assert_int_equal(backend_device_arena_alloc(h.dev, size, &a), STRATA_OK);
    h.base = a;
    return h;
}

static void *dev_put(dev_heap *h, const void *src, size_t bytes) {
    size_t n = (bytes + 255) & ~(size_t)255;
    assert_true(h->used + n <= h->size);
    void *p = h->base + h->used;
    h->used += n;
    if (src) assert_int_equal(backend_device_copy_in(h->dev, p, src, bytes), STRATA_OK);
    else assert_int_equal(h->o->memset(h->dev, p, 0, bytes), STRATA_OK);
    return p;
}

static void dev_get(dev_heap *h, void *dst, const void *src, size_t bytes) {
    h->o->synchronize(h->dev);
    assert_int_equal(backend_device_copy_out(h->dev, dst, src, bytes), STRATA_OK);
}

static void dev_close(dev_heap *h) { backend_device_free(h->dev); }

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

/* A device's result: the cpu's bits (sim), or the reference within tol (a GPU). */
static void check_dev(const dev_heap *h, const float *got, const float *cpu, const double *want, size_t n, double tol,
                      const char *what) {
    if (h->bitwise) assert_bits_equal(got, cpu, n);
    else assert_close(got, want, n, tol, what);
}

/* ---- norms, activations, embedding -------------------------------------------------- */

static void test_add_rms_norm(void **state) {
    (void)state;
    const int32_t n = 9; /* >= 8: the per-token split runs */
    const int64_t dim = 96, N = n * dim;
    const float eps = 1e-5f;
    float *x = malloc(N * 4), *add = malloc(N * 4), *w = malloc(dim * 4), *out = malloc(N * 4), *x0 = malloc(N * 4);
    float *got = malloc(N * 4), *xh = malloc(N * 4);
    double *want = malloc(N * 8), *wantx = malloc(N * 8), *wantn = malloc(N * 8), *wanth = malloc(N * 8);
    fill(x, N);
    fill(add, N);
    fill(w, dim);
    memcpy(x0, x, N * 4);
    /* the reference: x + add, its norm, and the norm of x0 alone */
    for (int pass = 0; pass < 2; pass++)
        for (int32_t i = 0; i < n; i++) {
            double ss = 0, *dst = pass ? wantn : want;
            for (int64_t j = 0; j < dim; j++) {
                double v = pass ? (double)x0[i * dim + j] : (double)(x[i * dim + j] + add[i * dim + j]);
                if (!pass) wantx[i * dim + j] = v;
                ss += v * v;
            }
            double r = 1.0 / sqrt(ss / dim + eps);
            for (int64_t j = 0; j < dim; j++)
                dst[i * dim + j] = (pass ? (double)x0[i * dim + j] : wantx[i * dim + j]) * r * w[j];
        }
    /* per-head norm: rows of head_dim with one weight row */
    const int32_t hd = 16;
    const int64_t rows = N / hd;
    for (int64_t r = 0; r < rows; r++) {
        double ss = 0;
        for (int32_t j = 0; j < hd; j++) ss += (double)x0[r * hd + j] * x0[r * hd + j];
        for (int32_t j = 0; j < hd; j++) wanth[r * hd + j] = x0[r * hd + j] / sqrt(ss / hd + eps) * w[j];
    }
    backend_cpu_ops.add_rms_norm(&cpu_ex, x, add, out, w, n, dim, eps);
    assert_close(x, wantx, N, 1e-6, "add");
    assert_close(out, want, N, 1e-5, "rms_norm");
    memcpy(xh, x0, N * 4);
    backend_cpu_ops.head_rms_norm(&cpu_ex, xh, rows, hd, w, eps);
    assert_close(xh, wanth, N, 1e-5, "head_rms_norm");
    float *normed = malloc(N * 4);
    backend_cpu_ops.add_rms_norm(&cpu_ex, x0, NULL, normed, w, n, dim, eps);
    for (int k = 0; k < n_duts(); k++) {
        dev_heap h = dev_open(k, 1 << 20);
        backend_exec ex = {h.dev, 2};
        float *dx = dev_put(&h, x0, N * 4), *da = dev_put(&h, add, N * 4), *dw = dev_put(&h, w, dim * 4);
        float *dout = dev_put(&h, NULL, N * 4);
        /* norm only (no add) */
        h.o->add_rms_norm(&ex, dx, NULL, dout, dw, n, dim, eps);
        dev_get(&h, got, dout, N * 4);
        check_dev(&h, got, normed, wantn, N, 1e-5, "rms_norm alone");
        /* add and norm */
        h.o->add_rms_norm(&ex, dx, da, dout, dw, n, dim, eps);
        dev_get(&h, got, dout, N * 4);
        check_dev(&h, got, out, want, N, 1e-5, "add_rms_norm");
        /* add only (no out): x was x0 + add, now x0 + 2 add */
        h.o->add_rms_norm(&ex, dx, da, NULL, NULL, n, dim, 0);
        dev_get(&h, got, dx, N * 4);
        for (int64_t i = 0; i < N; i++) wantx[i] = (double)x[i] + add[i];
        assert_close(got, wantx, N, 1e-6, "add only");
        float *dh = dev_put(&h, x0, N * 4);
        h.o->head_rms_norm(&ex, dh, rows, hd, dw, eps);
        dev_get(&h, got, dh, N * 4);
        check_dev(&h, got, xh, wanth, N, 1e-5, "head_rms_norm");
        dev_close(&h);
    }
    free(x), free(add), free(w), free(out), free(x0), free(want), free(wantx), free(wantn), free(wanth), free(got);
    free(xh), free(normed);
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
    for (int k = 0; k < n_duts(); k++) {
        dev_heap h = dev_open(k, 1 << 16);
        backend_exec ex = {h.dev, 2};
        float *dg = dev_put(&h, g0, sizeof g0), *du = dev_put(&h, u, sizeof u);
        h.o->silu_mul(&ex, dg, du, n, dim);
        dev_get(&h, got, dg, sizeof got);
        check_dev(&h, got, g, want, 500, 1e-5, "silu_mul");
        dev_close(&h);
    }
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
        for (int k = 0; k < n_duts(); k++) {
            dev_heap h = dev_open(k, 1 << 16);
            backend_exec ex = {h.dev, 1};
            void *dt = dev_put(&h, table, row * vocab);
            float *dout = dev_put(&h, NULL, sizeof out);
            h.o->embed_rows(&ex, dt, types[t], dim, tokens, n, dout);
            dev_get(&h, got, dout, sizeof got);
            check_dev(&h, got, out, want, n * dim, 1e-6, "embed_rows");
            dev_close(&h);
        }
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
        for (int k = 0; k < n_duts(); k++) {
            dev_heap h = dev_open(k, 1 << 16);
            backend_exec ex = {h.dev, 1};
            backend_rope rd = r;
            rd.factors = factors ? dev_put(&h, ff, sizeof ff) : NULL;
            float *dt = dev_put(&h, NULL, sizeof table), *dx = dev_put(&h, x0, sizeof x0);
            h.o->rope_table(&ex, dt, n, pos, &rd);
            h.o->rope_apply(&ex, dx, n, n_heads, dt, &rd);
            dev_get(&h, got, dx, sizeof got);
            check_dev(&h, got, x, want, sizeof x / 4, 1e-5, "rope");
            dev_close(&h);
        }
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
            /* each device: uploaded (relaid out where its kind does), through its own
             * scratch size; a sim gives the cpu's bits */
            for (int k = 0; k < n_duts(); k++) {
                dev_heap h = dev_open(k, 24 << 20);
                backend_exec ex = {h.dev, 2};
                const size_t dwb = h.o->matmul_work_bytes(ty, cols, n);
                const bool relaid = h.o->matrix_relayout(ty, rows, cols);
                backend_matrix dm = {ty, rows, cols, dev_put(&h, NULL, bytes), relaid};
                assert_int_equal(h.o->matrix_upload(&ex, &dm, w), STRATA_OK);
                float *dx = dev_put(&h, x, n * cols * 4), *db = dev_put(&h, bias, sizeof bias);
                float *dy = dev_put(&h, NULL, sizeof y), *dy2 = dev_put(&h, NULL, sizeof y);
                float *dy3 = dev_put(&h, NULL, sizeof y);
                void *dw = dev_put(&h, NULL, dwb ? dwb : 1);
                h.o->matmul(&ex, &dm, db, dx, n, dy, dw);
                dev_get(&h, got, dy, n * rows * 4);
                if (h.bitwise) assert_bits_equal(got, relaid ? yk : y, n * rows);
                for (int64_t i = 0; i < n * rows; i++)
                    if (fabs(got[i] - want[i]) > 1e-2 * mag[i])
                        fail_msg("%s on %s, n=%d: %g vs %g", strata_type_name(ty), h.o->name, n, got[i], want[i]);
                /* parts give each product as matmul does */
                backend_matrix da = dm, dbm = dm;
                da.rows = 16;
                dbm.rows = 8;
                dbm.data = (const uint8_t *)dm.data + 16 * row;
                if (!relaid) {
                    const backend_matrix *dws[2] = {&da, &dbm};
                    const float *dbs[2] = {db, db + 16};
                    float *dys[2] = {dy2, dy3};
                    h.o->matmul_parts(&ex, dws, dbs, dys, 2, dx, n, dw);
                    float g2[5 * 24], g3[5 * 24];
                    dev_get(&h, g2, dy2, n * 16 * 4);
                    dev_get(&h, g3, dy3, n * 8 * 4);
                    for (int32_t i = 0; i < n; i++)
                        for (int64_t r = 0; r < rows; r++) {
                            const float v = r < 16 ? g2[i * 16 + r] : g3[i * 8 + r - 16];
                            /* a sim: matmul's bits; a GPU may pick another GEMM for fewer rows */
                            if (h.bitwise ? v != got[i * rows + r]
                                          : fabs(v - want[i * rows + r]) > 1e-2 * mag[i * rows + r])
                                fail_msg("%s parts on %s: row %d", strata_type_name(ty), h.o->name, (int)r);
                        }
                }
                dev_close(&h);
            }
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
    double wantx[500];
    for (int i = 0; i < 500; i++) wantx[i] = 30.0 * tanh(16.0 * x[i] / 30.0);
    backend_cpu_ops.scale(&cpu_ex, x, 500, 16.0f);
    backend_cpu_ops.softcap(&cpu_ex, x, 500, 30.0f);
    assert_close(x, wantx, 500, 1e-6, "scale + softcap");
    for (int i = 0; i < 500; i++) assert_true(fabsf(x[i]) <= 30.0f);
    for (int k = 0; k < n_duts(); k++) {
        dev_heap h = dev_open(k, 1 << 16);
        backend_exec ex = {h.dev, 2};
        float *dg = dev_put(&h, g0, sizeof g0), *du = dev_put(&h, u, sizeof u), *dx = dev_put(&h, x0, sizeof x0);
        h.o->gelu_mul(&ex, dg, du, n, dim);
        dev_get(&h, got, dg, sizeof got);
        check_dev(&h, got, g, want, 500, 1e-5, "gelu_mul");
        /* scale then soft-cap: x -> 30 tanh(16 x / 30) */
        h.o->scale(&ex, dx, 500, 16.0f);
        h.o->softcap(&ex, dx, 500, 30.0f);
        dev_get(&h, got, dx, sizeof got);
        check_dev(&h, got, x, wantx, 500, 1e-6, "scale + softcap");
        dev_close(&h);
    }
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
        for (int k = 0; k < n_duts(); k++) {
            dev_heap h = dev_open(k, 1 << 20);
            backend_exec ex = {h.dev, 2};
            float *dl = dev_put(&h, l, (size_t)n * E * 4), *dw = dev_put(&h, NULL, sizeof w);
            int32_t *di = dev_put(&h, NULL, sizeof ids);
            h.o->moe_route(&ex, dl, n, E, K, norm, di, dw);
            dev_get(&h, got_ids, di, sizeof ids);
            dev_get(&h, got_w, dw, sizeof w);
            assert_memory_equal(got_ids, ids, sizeof ids);
            if (h.bitwise) assert_bits_equal(got_w, w, (size_t)n * K);
            for (int32_t i = 0; i < n * K; i++) assert_true(fabsf(got_w[i] - w[i]) <= 1e-6f * w[i] + 1e-9f);
            dev_close(&h);
        }
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
                void *work = malloc(wb);
                backend_matrix m = {ty, rows, cols, w, 0};
                backend_cpu_ops.matmul_id(&cpu_ex, &m, E, x, per_slot, ids, n, K, y, work);
                /* the definition: each routed row against its expert's dequantized rows */
                double *ref = malloc((size_t)R * rows * sizeof(double)), *mag = malloc((size_t)R * rows * sizeof(double));
                for (int32_t r = 0; r < R; r++) {
                    const float *xr = x + (size_t)(per_slot ? r : r / K) * cols;
                    const float *we = deq + (size_t)ids[r] * rows * cols;
                    for (int32_t o = 0; o < rows; o++) {
                        double sum = 0, m = 0;
                        for (int32_t c = 0; c < cols; c++) {
                            sum += (double)we[(size_t)o * cols + c] * xr[c];
                            m += fabs((double)we[(size_t)o * cols + c] * xr[c]);
                        }
                        ref[(size_t)r * rows + o] = sum;
                        mag[(size_t)r * rows + o] = m;
                    }
                }
                for (size_t i = 0; i < (size_t)R * rows; i++)
                    if (fabs(y[i] - ref[i]) > 1e-2 * mag[i])
                        fail_msg("matmul_id %s n=%d: row %d out %d: %g vs %g", strata_type_name(ty), n, (int)(i / rows),
                                 (int)(i % rows), y[i], ref[i]);
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
                /* each device: a sim gives the cpu's bits; a GPU the definitions within the
                 * tolerances above (its combine of its own routed rows) */
                for (int k = 0; k < n_duts(); k++) {
                    const size_t dwb = dut_ops(k)->matmul_id_work_bytes(ty, rows, cols, R);
                    dev_heap h = dev_open(k, ebytes * E + dwb + (size_t)(nx * cols + 2 * R * rows) * 4 + 65536);
                    backend_exec ex = {h.dev, 1};
                    backend_matrix dm = {ty, rows, cols, dev_put(&h, w, ebytes * E), 0};
                    float *dx = dev_put(&h, x, (size_t)nx * cols * 4), *dy = dev_put(&h, NULL, (size_t)R * rows * 4);
                    int32_t *di = dev_put(&h, ids, (size_t)R * 4);
                    void *dw = dev_put(&h, NULL, dwb ? dwb : 1);
                    h.o->matmul_id(&ex, &dm, E, dx, per_slot, di, n, K, dy, dw);
                    dev_get(&h, got, dy, (size_t)R * rows * 4);
                    if (h.bitwise) assert_bits_equal(got, y, (size_t)R * rows);
                    for (size_t i = 0; i < (size_t)R * rows; i++)
                        if (fabs(got[i] - ref[i]) > 1e-2 * mag[i])
                            fail_msg("matmul_id %s on %s: row %d out %d", strata_type_name(ty), h.o->name,
                                     (int)(i / rows), (int)(i % rows));
                    /* combine over the device's own rows: against their definition */
                    double wantd[9 * 40];
                    for (int32_t t = 0; t < n; t++)
                        for (int32_t o = 0; o < rows; o++) {
                            double acc = 0;
                            for (int32_t q = 0; q < K; q++)
                                acc += (double)wts[t * K + q] * got[((size_t)t * K + q) * rows + o];
                            wantd[t * rows + o] = acc;
                        }
                    float *dwt = dev_put(&h, wts, (size_t)R * 4), *dout = dev_put(&h, NULL, (size_t)n * rows * 4);
                    h.o->moe_combine(&ex, dy, dwt, n, K, rows, dout);
                    dev_get(&h, gout, dout, (size_t)n * rows * 4);
                    check_dev(&h, gout, out, wantd, (size_t)n * rows, 1e-5, "moe_combine");
                    dev_close(&h);
                }
                free(x), free(y), free(y1), free(got), free(work), free(mw), free(xg), free(yg), free(ref), free(mag);
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
    /* each device (a sim with 1 thread: results do not depend on the thread count), the
     * cache filled in one batch by its own kv_store */
    for (int d = 0; d < n_duts(); d++) {
        const size_t dwb = dut_ops(d)->attention_work_bytes(&s, n);
        dev_heap h = dev_open(d, 2 * block + dwb + (size_t)(2 * total * kvd + 2 * n * qd) * 4 + 8192);
        backend_exec ex = {h.dev, 1};
        uint8_t *dk = dev_put(&h, NULL, block), *dv = dev_put(&h, NULL, block);
        float *dks = dev_put(&h, k, (size_t)total * kvd * 4), *dvs = dev_put(&h, v, (size_t)total * kvd * 4);
        float *dq = dev_put(&h, q, (size_t)n * qd * 4), *dout = dev_put(&h, NULL, (size_t)n * qd * 4);
        void *dwork = dev_put(&h, NULL, dwb ? dwb : 1);
        h.o->kv_store(&ex, &s, dk, dv, dks, dvs, total, 0);
        h.o->attention(&ex, &s, dk, dv, dq, n, pos, dout, dwork);
        dev_get(&h, got, dout, (size_t)n * qd * 4);
        /* a GPU's cache may round a Q8_0 block otherwise: its own reference */
        uint8_t *hk = malloc(block), *hv = malloc(block);
        dev_get(&h, hk, dk, block);
        dev_get(&h, hv, dv, block);
        ref_attention(&s, hk, hv, q, n, pos, want);
        check_dev(&h, got, out, want, (size_t)n * qd, tol, what);
        free(hk), free(hv);
        dev_close(&h);
    }
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
    void *workf = malloc(wf), *workr = malloc(wr);
    const uint64_t seed = rng; /* each device gets the same data */
    for (int d = 0; d < n_duts(); d++) {
        rng = seed;
        memset(fk, 0, fblock), memset(fv, 0, fblock), memset(rk, 0, rblock), memset(rv, 0, rblock);
        const size_t dwr = dut_ops(d)->attention_work_bytes(&ring, n_batch);
        dev_heap h = dev_open(d, 2 * rblock + dwr + (size_t)(2 * step * kvd + 2 * step * qd) * 4 + 8192);
        backend_exec ex = {h.dev, 1};
        uint8_t *dk = dev_put(&h, NULL, rblock), *dv = dev_put(&h, NULL, rblock);
        float *dks = dev_put(&h, NULL, (size_t)step * kvd * 4), *dvs = dev_put(&h, NULL, (size_t)step * kvd * 4);
        float *dq = dev_put(&h, NULL, (size_t)step * qd * 4), *dout = dev_put(&h, NULL, (size_t)step * qd * 4);
        void *dwork = dev_put(&h, NULL, dwr ? dwr : 1);
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
            h.o->kv_store(&ex, &ring, dk, dv, dks, dvs, n, pos);
            h.o->attention(&ex, &ring, dk, dv, dq, n, pos, dout, dwork);
            dev_get(&h, os, dout, (size_t)n * qd * 4);
            if (h.bitwise) {
                assert_bits_equal(os, of, (size_t)n * qd);
            } else { /* a GPU's ring against the cpu's full cache: the score rounding differs */
                double *want = malloc((size_t)n * qd * 8);
                for (size_t i = 0; i < (size_t)n * qd; i++) want[i] = of[i];
                assert_close(os, want, (size_t)n * qd, 3e-2, "ring on a GPU");
                free(want);
            }
        }
        dev_close(&h);
    }
    assert_true(total > 3 * R); /* the ring wrapped several times */
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
    void *ca = NULL;
    assert_int_equal(backend_device_arena_alloc(cpu, 4096, &ca), STRATA_OK);
    for (int k = 0; k < n_duts(); k++) {
        /* two devices of the kind (on a GPU: two logical devices of one card) */
        dev_heap a = dev_open(k, 1 << 16), b = dev_open(k, 1 << 16);
        float src[256], got[256], staging[256];
        fill(src, 256);
        float *pa = dev_put(&a, src, sizeof src), *pb = dev_put(&b, NULL, sizeof src);
        /* device -> device (peer), device -> cpu, cpu -> device */
        assert_int_equal(backend_copy_between(b.dev, pb, a.dev, pa, sizeof src, NULL), STRATA_OK);
        dev_get(&b, got, pb, sizeof got);
        assert_memory_equal(got, src, sizeof src);
        assert_int_equal(backend_copy_between(cpu, ca, b.dev, pb, sizeof src, NULL), STRATA_OK);
        assert_memory_equal(ca, src, sizeof src);
        assert_int_equal(a.o->memset(a.dev, pa, 0, sizeof src), STRATA_OK);
        assert_int_equal(backend_copy_between(a.dev, pa, cpu, ca, sizeof src, NULL), STRATA_OK);
        dev_get(&a, got, pa, sizeof got);
        assert_memory_equal(got, src, sizeof src);
        /* a kind without peer copies is staged through the caller's host buffer */
        backend_ops nopeer = *a.o;
        nopeer.copy_peer = NULL;
        backend_device_ops dops = *a.dev->ops;
        dops.compute = &nopeer;
        const backend_device_ops *sa = a.dev->ops, *sb = b.dev->ops;
        a.dev->ops = &dops;
        b.dev->ops = &dops;
        assert_int_equal(a.o->memset(b.dev, pb, 0, sizeof src), STRATA_OK);
        memset(staging, 0, sizeof staging);
        assert_int_equal(backend_copy_between(b.dev, pb, a.dev, pa, sizeof src, staging), STRATA_OK);
        assert_memory_equal(staging, src, sizeof src);
        dev_get(&b, got, pb, sizeof got);
        assert_memory_equal(got, src, sizeof src);
        a.dev->ops = sa;
        b.dev->ops = sb;
        /* memset writes what it says */
        assert_int_equal(a.o->memset(a.dev, pa, 0, sizeof src), STRATA_OK);
        dev_get(&a, got, pa, sizeof got);
        for (int i = 0; i < 256; i++) assert_true(got[i] == 0.0f);
        dev_close(&a);
        dev_close(&b);
    }
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
