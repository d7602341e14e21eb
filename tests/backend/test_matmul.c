/* cpu_matmul against an independent float reference, and every SIMD path against scalar.
 *
 * Reference: W dequantized with strata_dequantize_row (bit-exact, tested in tests/tensor),
 * activations rounded the way matmul.h says the format intends, computed here from the
 * definitions (Q8_0 style: d = fp16(amax/127), q = round-half-even(x*127/amax); Q8_K:
 * q = round-half-even(x * -127/max), d = 1/iscale; F16/BF16: round to nearest even),
 * accumulated in double. The kernels sum integers exactly per block and then multiply in
 * float, so they differ from this reference only by float rounding: we allow
 * 2e-5 * sum_i |w_i x_i| (about 200 float ulps of the magnitude involved), plus for
 * Q4_1/Q5_1 the fp16 rounding of the activation block sums that Q8_1 stores
 * (2^-11 relative on each block's min term).
 *
 * SIMD vs scalar: same activation bytes (checked exactly), same integer block sums, so the
 * results differ only by float summation order: tolerance 1e-5 * sum_i |w_i x_i|.
 * Thread counts: each output is computed by one thread with the same code, so 1 and 2
 * threads must agree bit for bit. A token alone (single-token tiles) and the same token in
 * a batch (batch tiles) sum in different orders: they agree to float rounding. */
#include "rng.h"
#include "testdata.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>

#include "backend/cpu/matmul.h"
#include "backend/cpu/repack.h"
#include "core/fp16.h"
#include "tensor/blocks.h"
#include "tensor/quant.h"

static const strata_type wtypes[] = {
    STRATA_TYPE_F32,  STRATA_TYPE_F16,  STRATA_TYPE_BF16, STRATA_TYPE_Q8_0, STRATA_TYPE_Q4_0,
    STRATA_TYPE_Q4_1, STRATA_TYPE_Q5_0, STRATA_TYPE_Q5_1, STRATA_TYPE_Q2_K, STRATA_TYPE_Q3_K,
    STRATA_TYPE_Q4_K, STRATA_TYPE_Q5_K, STRATA_TYPE_Q6_K, STRATA_TYPE_IQ4_NL, STRATA_TYPE_IQ4_XS,
};
#define N_WTYPES (sizeof wtypes / sizeof wtypes[0])

static uint64_t rng = 0x243f6a8885a308d3ull;
static double uni(void) { return test_rng_uniform(&rng); }
static float gauss(void) { return test_rng_gauss(&rng); }

static int round_even(double v) { return (int)nearbyint(v); }

/* x rounded the way the activation format for weight type t intends. */
static void round_activations(strata_type t, const float *x, double *out, int64_t n) {
    switch (t) {
    case STRATA_TYPE_F32:
        for (int64_t i = 0; i < n; i++) out[i] = x[i];
        return;
    case STRATA_TYPE_F16:
        for (int64_t i = 0; i < n; i++) out[i] = strata_fp16_to_f32(strata_f32_to_fp16(x[i]));
        return;
    case STRATA_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) out[i] = strata_bf16_to_f32(strata_f32_to_bf16(x[i]));
        return;
    case STRATA_TYPE_Q2_K: case STRATA_TYPE_Q3_K: case STRATA_TYPE_Q4_K: case STRATA_TYPE_Q5_K:
    case STRATA_TYPE_Q6_K: case STRATA_TYPE_IQ4_XS:
        for (int64_t b = 0; b < n; b += 256) {
            float max = 0, amax = 0;
            for (int j = 0; j < 256; j++)
                if (fabsf(x[b + j]) > amax) { amax = fabsf(x[b + j]); max = x[b + j]; }
            if (amax == 0) { for (int j = 0; j < 256; j++) out[b + j] = 0; continue; }
            const float iscale = -127.0f / max, d = 1.0f / iscale;
            for (int j = 0; j < 256; j++) {
                int q = round_even(iscale * x[b + j]);
                if (q > 127) q = 127;
                out[b + j] = (double)d * q;
            }
        }
        return;
    default: /* 32-element formats: Q8_0 style */
        for (int64_t b = 0; b < n; b += 32) {
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[b + j]));
            const float d = strata_fp16_to_f32(strata_f32_to_fp16(amax / 127.0f));
            const float id = amax != 0 ? 127.0f / amax : 0.0f;
            for (int j = 0; j < 32; j++) out[b + j] = (double)d * round_even(x[b + j] * id);
        }
        return;
    }
}

typedef struct {
    strata_type t;
    int64_t rows, cols, ntok;
    uint8_t *w;
    float *x, *wf;
    void *work;
} problem;

static void problem_init(problem *p, strata_type t, int64_t rows, int64_t cols, int64_t ntok) {
    p->t = t;
    p->rows = rows;
    p->cols = cols;
    p->ntok = ntok;
    const size_t rb = strata_type_row_bytes(t, cols);
    p->w = malloc(rb * rows);
    p->wf = malloc(sizeof(float) * rows * cols);
    p->x = malloc(sizeof(float) * ntok * cols);
    float *tmp = malloc(sizeof(float) * cols);
    for (int64_t r = 0; r < rows; r++) {
        /* rows of different scales and a few outliers, like trained weights */
        const float s = 0.01f * (1.0f + (float)(r % 5));
        for (int64_t c = 0; c < cols; c++) tmp[c] = s * gauss() * ((c % 97) == 3 ? 6.0f : 1.0f);
        strata_quantize_row(t, tmp, p->w + r * rb, cols);
        strata_dequantize_row(t, p->w + r * rb, p->wf + r * cols, cols);
    }
    for (int64_t i = 0; i < ntok * cols; i++) p->x[i] = gauss() + ((i % 13) == 0 ? 0.5f : 0.0f);
    size_t wb = cpu_matmul_work_bytes(t, cols, ntok);
    p->work = malloc(wb ? wb : 1);
    free(tmp);
}

static void problem_free(problem *p) {
    free(p->w);
    free(p->wf);
    free(p->x);
    free(p->work);
}

static int q8s_type(strata_type t) { return t == STRATA_TYPE_Q4_1 || t == STRATA_TYPE_Q5_1; }

static void check_against_reference(strata_type t, int64_t rows, int64_t cols, int64_t ntok, int threads) {
    problem p;
    problem_init(&p, t, rows, cols, ntok);
    float *y = malloc(sizeof(float) * rows * ntok);
    cpu_matmul(t, p.w, rows, cols, p.x, ntok, y, p.work, threads);
    double *xr = malloc(sizeof(double) * cols);
    double worst = 0;
    for (int64_t k = 0; k < ntok; k++) {
        round_activations(t, p.x + k * cols, xr, cols);
        for (int64_t r = 0; r < rows; r++) {
            double ref = 0, mag = 0, minterm = 0;
            const float *wr = p.wf + r * cols;
            for (int64_t c = 0; c < cols; c++) {
                ref += (double)wr[c] * xr[c];
                mag += fabs((double)wr[c] * xr[c]);
            }
            if (q8s_type(t)) /* |min| * |block sum| bounds each block's min term */
                for (int64_t b = 0; b < cols; b += 32) {
                    double sx = 0, mn = 0;
                    for (int j = 0; j < 32; j++) { sx += xr[b + j]; mn = fmax(mn, fabs(wr[b + j])); }
                    minterm += mn * fabs(sx);
                }
            const double tol = 2e-5 * mag + minterm * (1.0 / 2048) + 1e-30;
            const double err = fabs((double)y[k * rows + r] - ref);
            if (err / tol > worst) worst = err / tol;
            if (err > tol) {
                print_error("%s rows=%lld cols=%lld tok=%lld thr=%d: y[%lld][%lld]=%.9g ref=%.9g tol=%.3g\n",
                            strata_type_name(t), (long long)rows, (long long)cols, (long long)ntok, threads,
                            (long long)k, (long long)r, y[k * rows + r], ref, tol);
                fail();
            }
        }
    }
    free(xr);
    free(y);
    problem_free(&p);
}

static void test_matmul_vs_reference(void **state) {
    (void)state;
    for (size_t i = 0; i < N_WTYPES; i++) {
        assert_true(cpu_matmul_supports(wtypes[i]));
        check_against_reference(wtypes[i], 37, 512, 1, 1);
        check_against_reference(wtypes[i], 64, 256, 5, 2);
        check_against_reference(wtypes[i], 19, 768, 70, 2);
        check_against_reference(wtypes[i], 11, 512, 133, 2); /* two token chunks (128 + 5) */
        /* rows of 9 super-blocks (72 blocks, 2304 floats): the batch tiles' segments (4
         * super-blocks, 32 blocks, 128 floats) run whole and partial; 21 rows leave partial
         * groups of 8 and 16 */
        check_against_reference(wtypes[i], 21, 2304, 6, 2);
    }
}

/* Fails unless y and want agree to `rel` of their size (plus `rel` absolute, for sums that
 * cancel to near zero). */
static void expect_close(const char *what, const float *y, const float *want, int64_t n, float rel) {
    for (int64_t i = 0; i < n; i++)
        if (!(fabsf(y[i] - want[i]) <= rel * (fabsf(want[i]) + 1.0f))) {
            print_error("%s: output %lld: %.9g, expected %.9g\n", what, (long long)i, y[i], want[i]);
            fail();
        }
}

static void test_threads_bitwise_equal(void **state) {
    (void)state;
    for (size_t i = 0; i < N_WTYPES; i++) {
        problem p;
        problem_init(&p, wtypes[i], 150, 512, 9);
        float *y1 = malloc(sizeof(float) * 150 * 9), *y2 = malloc(sizeof(float) * 150 * 9);
        cpu_matmul(wtypes[i], p.w, 150, 512, p.x, 9, y1, p.work, 1);
        cpu_matmul(wtypes[i], p.w, 150, 512, p.x, 9, y2, p.work, 2);
        assert_memory_equal(y1, y2, sizeof(float) * 150 * 9);
        /* The first token alone takes the single-token tiles, whose sums run in another
         * order than the batch tiles': equal to float rounding (the batch sums of a row
         * are a few hundred terms of magnitude <= |y| + 1). */
        cpu_matmul(wtypes[i], p.w, 150, 512, p.x, 1, y2, p.work, 2);
        char what[64];
        snprintf(what, sizeof what, "%s, single token against the batch's first", strata_type_name(wtypes[i]));
        expect_close(what, y2, y1, 150, 1e-5f);
        free(y1);
        free(y2);
        problem_free(&p);
    }
}

/* cpu_matmul_parts gives each part exactly what cpu_matmul gives it: parts sharing an
 * activation format (Q4_K with Q6_K, as a Q4_K_M layer mixes them; three Q4_0 parts of
 * different heights) and parts that do not (Q8_0 with F16: run one after another). With
 * `repack`, the parts of a type with a repacked layout are repacked (as the CPU keeps them
 * after loading) and compared with cpu_matmul_repacked. */
static void check_parts(const strata_type *types, const int64_t *rows, int n, int64_t ntok, bool repack) {
    const int64_t cols = 512;
    problem p[CPU_MATMUL_MAX_PARTS];
    cpu_matmul_part parts[CPU_MATMUL_MAX_PARTS];
    float *want[CPU_MATMUL_MAX_PARTS];
    size_t work_bytes = 1;
    for (int i = 0; i < n; i++) {
        problem_init(&p[i], types[i], rows[i], cols, ntok);
        if (i > 0) memcpy(p[i].x, p[0].x, sizeof(float) * ntok * cols); /* one shared input */
        want[i] = malloc(sizeof(float) * rows[i] * ntok);
        const bool packed = repack && cpu_repack_applies(types[i], rows[i], cols);
        if (packed) {
            const size_t bytes = strata_type_row_bytes(types[i], cols) * rows[i];
            uint8_t *wr = malloc(bytes);
            cpu_repack(types[i], p[i].w, wr, rows[i], cols, 2);
            memcpy(p[i].w, wr, bytes);
            free(wr);
            cpu_matmul_repacked(cpu_isa_detect(), types[i], p[i].w, rows[i], cols, p[0].x, ntok, want[i], p[i].work, 2);
        } else {
            cpu_matmul(types[i], p[i].w, rows[i], cols, p[0].x, ntok, want[i], p[i].work, 2);
        }
        parts[i] = (cpu_matmul_part){types[i], p[i].w, rows[i], malloc(sizeof(float) * rows[i] * ntok), packed};
        const size_t wb = cpu_matmul_work_bytes(types[i], cols, ntok);
        if (wb > work_bytes) work_bytes = wb;
    }
    void *work = malloc(work_bytes);
    for (int threads = 1; threads <= 2; threads++) {
        cpu_matmul_parts(parts, n, cols, p[0].x, ntok, work, threads);
        for (int i = 0; i < n; i++) assert_memory_equal(parts[i].y, want[i], sizeof(float) * rows[i] * ntok);
    }
    free(work);
    for (int i = 0; i < n; i++) {
        free(parts[i].y);
        free(want[i]);
        problem_free(&p[i]);
    }
}

static void test_parts_equal_single_products(void **state) {
    (void)state;
    const strata_type kq[] = {STRATA_TYPE_Q4_K, STRATA_TYPE_Q4_K, STRATA_TYPE_Q6_K};
    const strata_type q40[] = {STRATA_TYPE_Q4_0, STRATA_TYPE_Q4_0, STRATA_TYPE_Q4_0};
    const strata_type mixed[] = {STRATA_TYPE_Q8_0, STRATA_TYPE_F16};
    const int64_t rows3[] = {96, 33, 40}, rows2[] = {70, 129};
    for (int64_t ntok = 1; ntok <= 9; ntok += 8) {
        check_parts(kq, rows3, 3, ntok, false);
        check_parts(kq, rows3, 3, ntok, true);
        check_parts(q40, rows3, 3, ntok, false);
        check_parts(q40, rows3, 3, ntok, true);
        check_parts(mixed, rows2, 2, ntok, false);
    }
}

/* Random scale and quant bytes (every 6-bit scale and min pattern of Q4_K), keeping the
 * quantizer's fp16 scales. */
static void scramble(strata_type type, uint8_t *w, int64_t rows, int64_t cols) {
    if (type == STRATA_TYPE_Q4_K) {
        block_q4_K *b = (block_q4_K *)w;
        for (int64_t i = 0; i < rows * (cols / QK_K); i++) {
            for (int k = 0; k < K_SCALE_SIZE; k++) b[i].scales[k] = (uint8_t)(uni() * 256);
            for (int k = 0; k < QK_K / 2; k++) b[i].qs[k] = (uint8_t)(uni() * 256);
        }
    } else {
        block_q4_0 *b = (block_q4_0 *)w;
        for (int64_t i = 0; i < rows * (cols / QK4_0); i++)
            for (int k = 0; k < QK4_0 / 2; k++) b[i].qs[k] = (uint8_t)(uni() * 256);
    }
}

/* Row r's block i read back from a repacked matrix equals the original block. */
static void expect_block_back(strata_type type, const uint8_t *packed, const uint8_t *plain, size_t row_bytes,
                              int64_t r, int64_t i) {
    const size_t block = type == STRATA_TYPE_Q4_K ? sizeof(block_q4_K) : sizeof(block_q4_0);
    uint8_t back[sizeof(block_q4_K)];
    cpu_repack_row_block(type, packed + (size_t)(r / 8) * 8 * row_bytes + (size_t)i * 8 * block, (int)(r % 8), back);
    assert_memory_equal(back, plain + (size_t)r * row_bytes + (size_t)i * block, block);
}

/* Weights repacked in groups of 8 rows (backend/cpu/repack.h), on quantized weights and on
 * weights whose scale and quant bytes are random:
 *   - every row's blocks read back from the layout equal the originals, and a tail of rows
 *     past the last group keeps the plain layout;
 *   - the scalar tile on the layout gives the same bits as on the plain layout (it reads each
 *     block back and sums it the same way);
 *   - the SIMD tiles give the same bits on 1 and 2 threads, and agree with the plain
 *     layout's scalar result to float rounding (the integer sums are exact; only the order
 *     in which the float terms are added differs), for single tokens and batches of up to
 *     two token chunks. */
static void check_repacked(strata_type type) {
    const int64_t shapes[][3] = {{8, 256, 1},   {37, 512, 1},  {64, 2304, 5},
                                 {21, 768, 70}, {150, 512, 9}, {24, 1024, 133},
                                 {300, 256, 3}}; /* 300 rows: groups in more than one pool item */
    const int64_t block = type == STRATA_TYPE_Q4_K ? QK_K : QK4_0;
    for (int scrambled = 0; scrambled <= 1; scrambled++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            const int64_t rows = shapes[s][0], cols = shapes[s][1], ntok = shapes[s][2];
            problem p;
            problem_init(&p, type, rows, cols, ntok);
            if (scrambled) scramble(type, p.w, rows, cols);
            assert_true(cpu_repack_applies(type, rows, cols));
            const size_t row_bytes = strata_type_row_bytes(type, cols), bytes = row_bytes * rows;
            uint8_t *wr = malloc(bytes);
            cpu_repack(type, p.w, wr, rows, cols, 1 + (int)(s % 2));
            for (int64_t r = 0; r < rows / 8 * 8; r++)
                for (int64_t i = 0; i < cols / block; i++) expect_block_back(type, wr, p.w, row_bytes, r, i);
            const size_t tail = (size_t)(rows / 8 * 8) * row_bytes;
            assert_memory_equal(wr + tail, p.w + tail, bytes - tail);

            const size_t out = sizeof(float) * rows * ntok;
            float *plain = malloc(out), *packed = malloc(out), *packed2 = malloc(out);
            cpu_matmul_isa(CPU_ISA_SCALAR, type, p.w, rows, cols, p.x, ntok, plain, p.work, 1);
            cpu_matmul_repacked(CPU_ISA_SCALAR, type, wr, rows, cols, p.x, ntok, packed, p.work, 2);
            assert_memory_equal(plain, packed, out);
            for (cpu_isa isa = CPU_ISA_AVX2; isa <= cpu_isa_detect(); isa++) {
                cpu_matmul_repacked(isa, type, wr, rows, cols, p.x, ntok, packed, p.work, 1);
                cpu_matmul_repacked(isa, type, wr, rows, cols, p.x, ntok, packed2, p.work, 2);
                assert_memory_equal(packed, packed2, out);
                char what[96];
                snprintf(what, sizeof what, "%s %s, %lld x %lld, %lld tokens%s", strata_type_name(type),
                         cpu_isa_name(isa), (long long)rows, (long long)cols, (long long)ntok,
                         scrambled ? ", random bytes" : "");
                expect_close(what, packed, plain, rows * ntok, 1e-5f);
            }
            free(wr);
            free(plain);
            free(packed);
            free(packed2);
            problem_free(&p);
        }
    assert_false(cpu_repack_applies(type, 7, 256));
}

static void test_repacked_q4_k(void **state) {
    (void)state;
    check_repacked(STRATA_TYPE_Q4_K);
    assert_false(cpu_repack_applies(STRATA_TYPE_Q6_K, 64, 256));
}

static void test_repacked_q4_0(void **state) {
    (void)state;
    check_repacked(STRATA_TYPE_Q4_0);
}

static void compare_isa(cpu_isa isa) {
    for (size_t i = 0; i < N_WTYPES; i++) {
        const strata_type t = wtypes[i];
        const int64_t shapes[][3] = {{1, 256, 1}, {7, 512, 1}, {33, 1024, 3}, {45, 512, 13}, {16, 2048, 67}, {6, 4352, 6}, {9, 512, 131}};
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            const int64_t rows = shapes[s][0], cols = shapes[s][1], ntok = shapes[s][2];
            problem p;
            problem_init(&p, t, rows, cols, ntok);
            float *ys = malloc(sizeof(float) * rows * ntok), *yv = malloc(sizeof(float) * rows * ntok);
            const size_t wb = cpu_matmul_work_bytes(t, cols, ntok);
            void *work2 = malloc(wb ? wb : 1);
            cpu_matmul_isa(CPU_ISA_SCALAR, t, p.w, rows, cols, p.x, ntok, ys, p.work, 1);
            cpu_matmul_isa(isa, t, p.w, rows, cols, p.x, ntok, yv, work2, 2);
            if (wb) assert_memory_equal(p.work, work2, wb); /* activation bytes identical */
            for (int64_t k = 0; k < ntok; k++)
                for (int64_t r = 0; r < rows; r++) {
                    double mag = 0;
                    for (int64_t c = 0; c < cols; c++) mag += fabs((double)p.wf[r * cols + c] * p.x[k * cols + c]);
                    const double err = fabs((double)ys[k * rows + r] - yv[k * rows + r]);
                    if (err > 1e-5 * mag + 1e-30) {
                        print_error("%s %s rows=%lld cols=%lld tok=%lld: y[%lld][%lld] scalar %.9g simd %.9g\n",
                                    cpu_isa_name(isa), strata_type_name(t), (long long)rows, (long long)cols,
                                    (long long)ntok, (long long)k, (long long)r, ys[k * rows + r], yv[k * rows + r]);
                        fail();
                    }
                }
            free(work2);
            free(ys);
            free(yv);
            problem_free(&p);
        }
    }
}

/* Activation rows with ties for the largest magnitude (+m and -m: the first decides the
 * sign of the Q8_K scale), exact halves, zeros and an all-zero block: every ISA must give
 * the scalar quantizer's bytes. */
static void check_act_edges(cpu_isa isa) {
    const int64_t cols = 512;
    float x[512];
    for (int64_t i = 0; i < cols; i++) x[i] = (float)((i * 37) % 23) * 0.25f - 2.75f;
    x[5] = 3.0f;
    x[9] = -3.0f;   /* tie with x[5]: the first (positive) one sets the sign */
    x[300] = -4.0f; /* second block: negative extreme first */
    x[301] = 4.0f;
    for (int64_t i = 384; i < 416; i++) x[i] = 0.0f; /* an all-zero Q8 block */
    for (size_t k = 0; k < N_WTYPES; k++) {
        const strata_type t = wtypes[k];
        const size_t wb = cpu_matmul_work_bytes(t, cols, 1);
        if (!wb) continue;
        problem p;
        problem_init(&p, t, 4, cols, 1);
        memcpy(p.x, x, sizeof x);
        uint8_t *w1 = malloc(wb), *w2 = malloc(wb);
        float y1[4], y2[4];
        cpu_matmul_isa(CPU_ISA_SCALAR, t, p.w, 4, cols, p.x, 1, y1, w1, 1);
        cpu_matmul_isa(isa, t, p.w, 4, cols, p.x, 1, y2, w2, 1);
        assert_memory_equal(w1, w2, wb);
        free(w1);
        free(w2);
        problem_free(&p);
    }
}

static void test_avx2_equals_scalar(void **state) {
    (void)state;
    if (cpu_isa_detect() < CPU_ISA_AVX2) {
        print_message("[  SKIP    ] this CPU has no AVX2: AVX2 kernels not tested here\n");
        skip();
    }
    check_act_edges(CPU_ISA_AVX2);
    compare_isa(CPU_ISA_AVX2);
}

static void test_avx512_equals_scalar(void **state) {
    (void)state;
    if (cpu_isa_detect() < CPU_ISA_AVX512) {
        print_message("[  SKIP    ] this CPU (or STRATA_CPU_ISA) has no AVX-512: AVX-512 kernels not tested here\n");
        skip();
    }
    check_act_edges(CPU_ISA_AVX512);
    compare_isa(CPU_ISA_AVX512);
}

int main(void) {
    print_message("[          ] cpu ISA: %s\n", cpu_isa_name(cpu_isa_detect()));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul_vs_reference),
        cmocka_unit_test(test_threads_bitwise_equal),
        cmocka_unit_test(test_parts_equal_single_products),
        cmocka_unit_test(test_repacked_q4_k),
        cmocka_unit_test(test_repacked_q4_0),
        cmocka_unit_test(test_avx2_equals_scalar),
        cmocka_unit_test(test_avx512_equals_scalar),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
