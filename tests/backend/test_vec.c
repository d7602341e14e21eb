/* The elementwise helpers (backend/cpu/vec.h): each SIMD version against its scalar
 * reference.
 *
 * Half conversions: bit-identical to core/fp16.h on every half (all 65536) and on floats
 * around every rounding boundary, overflow and the subnormal range (NaN payloads aside).
 * exp: within 2 ulp of expf over [-87, 88] (a dense sweep), the documented clamping beyond.
 * silu * u: within 4 ulp (relative 5e-7) of the scalar formula over [-80, 80].
 * Weighted sum of rows: bit-identical (both fuse each multiply-add, in the same order). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "backend/cpu/matmul.h"
#include "backend/cpu/vec.h"
#include "core/fp16.h"

static int have_avx2(void) {
#if defined(__x86_64__)
    return cpu_isa_detect() >= CPU_ISA_AVX2;
#else
    return 0;
#endif
}

static int32_t ulp_distance(float a, float b) {
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    if (ia < 0) ia = INT32_MIN - ia;
    if (ib < 0) ib = INT32_MIN - ib;
    return ia > ib ? ia - ib : ib - ia;
}

static void test_half_conversions(void **state) {
    (void)state;
    if (!have_avx2()) skip();
    uint16_t *h = malloc(65536 * sizeof *h);
    float *f = malloc(65536 * sizeof *f);
    for (int i = 0; i < 65536; i++) h[i] = (uint16_t)i;
    cpu_vec_f16_to_f32_avx2(h, f, 65536);
    for (int i = 0; i < 65536; i++) {
        const float want = strata_fp16_to_f32(h[i]);
        if (isnan(want)) {
            assert_true(isnan(f[i]));
            continue;
        }
        assert_memory_equal(&f[i], &want, 4);
    }
    /* back: every half exactly, the midpoints between neighbours (ties to even) and a
     * little either side of them */
    float *probe = malloc(3 * 65536 * sizeof *probe);
    int m = 0;
    for (int i = 0; i < 65536; i++) {
        if (isnan(f[i]) || isinf(f[i])) continue;
        probe[m++] = f[i];
        if ((i & 0x7fff) < 0x7bff) { /* a finite neighbour of larger magnitude */
            const float next = strata_fp16_to_f32((uint16_t)(i + 1));
            const float mid = (f[i] + next) / 2;
            probe[m++] = mid;
            probe[m++] = nextafterf(mid, 0.0f);
        }
    }
    uint16_t *got = malloc((size_t)m * sizeof *got);
    cpu_vec_f32_to_f16_avx2(probe, got, m);
    for (int i = 0; i < m; i++) assert_int_equal(got[i], strata_f32_to_fp16(probe[i]));
    const float big[] = {65504.0f, 65519.0f, 65520.0f, 1e6f, -1e6f, INFINITY, -INFINITY, 1e-8f, -3e-8f, 6e-8f};
    uint16_t hb[10];
    cpu_vec_f32_to_f16_avx2(big, hb, 10);
    for (int i = 0; i < 10; i++) assert_int_equal(hb[i], strata_f32_to_fp16(big[i]));
    free(got);
    free(probe);
    free(h);
    free(f);
}

static void test_exp(void **state) {
    (void)state;
    if (!have_avx2()) skip();
    enum { N = 1 << 20 };
    float *x = malloc(N * sizeof *x), *want = malloc(N * sizeof *want);
    for (int i = 0; i < N; i++) x[i] = -87.0f + 175.0f * (float)i / (float)(N - 1);
    memcpy(want, x, N * sizeof *x);
    cpu_vec_exp_scalar(want, N);
    cpu_vec_exp_avx2(x, N - 3); /* a tail that is not a whole vector, too */
    cpu_vec_exp_avx2(x + N - 3, 3);
    int32_t worst = 0;
    for (int i = 0; i < N; i++) {
        const int32_t d = ulp_distance(x[i], want[i]);
        if (d > worst) worst = d;
    }
    print_message("exp: worst %d ulp over [-87, 88]\n", worst);
    assert_true(worst <= 2);
    float edge[] = {-1000.0f, -100.0f, 100.0f, 0.0f};
    cpu_vec_exp_avx2(edge, 4);
    assert_true(edge[0] > 0.0f && edge[0] < 1e-37f && edge[1] < 1e-37f); /* clamped, tiny */
    assert_true(isfinite(edge[2]) && edge[2] > 1e38f);                    /* saturates at e^88 */
    assert_true(edge[3] == 1.0f);
    free(x);
    free(want);
}

static void test_silu_mul(void **state) {
    (void)state;
    if (!have_avx2()) skip();
    enum { N = 100003 };
    float *g = malloc(N * sizeof *g), *u = malloc(N * sizeof *u), *want = malloc(N * sizeof *want);
    for (int i = 0; i < N; i++) {
        g[i] = -80.0f + 160.0f * (float)i / (float)(N - 1);
        u[i] = 0.5f + (float)(i % 7) * 0.25f;
    }
    memcpy(want, g, N * sizeof *g);
    cpu_vec_silu_mul_scalar(want, u, N);
    cpu_vec_silu_mul_avx2(g, u, N);
    for (int i = 0; i < N; i++) {
        const float tol = 5e-7f * fabsf(want[i]) + 1e-30f;
        if (fabsf(g[i] - want[i]) > tol) {
            print_error("silu*u at %d: %.9g, want %.9g\n", i, g[i], want[i]);
            fail();
        }
    }
    free(g);
    free(u);
    free(want);
}

/* The SIMD softmax against the scalar one: its exp is within 2 ulp of expf and it sums in
 * eight double lanes instead of in order, so each weight may differ by a few ulp; the
 * weights still sum to 1 within float rounding. Lengths with and without a tail, scores
 * from large negative to large positive. */
static void test_softmax(void **state) {
    (void)state;
    if (!have_avx2()) skip();
    const int64_t lens[] = {1, 7, 8, 9, 64, 301, 4096};
    for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
        const int64_t n = lens[l];
        float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
        for (int64_t i = 0; i < n; i++) a[i] = b[i] = (float)((i * 7919) % 2001 - 1000) * 0.05f;
        cpu_vec_softmax_scalar(a, n, 0.125f);
        cpu_vec_softmax_avx2(b, n, 0.125f);
        double sum = 0;
        for (int64_t i = 0; i < n; i++) {
            assert_true(ulp_distance(a[i], b[i]) <= 4 || fabsf(a[i] - b[i]) < 1e-30f);
            sum += b[i];
        }
        assert_true(fabs(sum - 1.0) < 1e-5);
        free(a);
        free(b);
    }
}

/* RMS norm, both versions against the formula in long double: the float steps (x * s, then
 * times w) each round once, and s itself may be 1 ulp off (its double sum, rounded to float),
 * so each result is within 3 ulp. Lengths around the SIMD version's 16- and 8-float steps
 * and model widths; magnitudes from 1e-3 to 1e3 within a row; in place (y = x) as well. */
static void test_rms_norm(void **state) {
    (void)state;
    const int64_t lens[] = {1, 7, 8, 15, 16, 17, 33, 64, 2048, 5000};
    const float eps = 1e-6f;
    for (int avx = 0; avx < 2; avx++) {
        if (avx && !have_avx2()) continue;
        for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
            const int64_t n = lens[l];
            float *x = malloc(n * sizeof *x), *w = malloc(n * sizeof *w), *y = malloc(n * sizeof *y);
            for (int64_t i = 0; i < n; i++) {
                x[i] = (float)((i * 7919) % 2001 - 1000) * powf(10.0f, (float)(i % 7) - 3.0f) * 1e-3f;
                w[i] = 0.5f + (float)((i * 104729) % 1000) * 1e-3f;
            }
            long double ss = 0;
            for (int64_t i = 0; i < n; i++) ss += (long double)x[i] * x[i];
            const long double s = 1.0L / sqrtl(ss / n + eps);
            (avx ? cpu_vec_rms_norm_avx2 : cpu_vec_rms_norm_scalar)(y, x, w, n, eps);
            for (int64_t i = 0; i < n; i++) {
                const float want = (float)((long double)x[i] * s * w[i]);
                if (ulp_distance(y[i], want) > 3)
                    fail_msg("%s, n %lld, element %lld: %.9g, want %.9g", avx ? "avx2" : "scalar", (long long)n,
                             (long long)i, y[i], want);
            }
            (avx ? cpu_vec_rms_norm_avx2 : cpu_vec_rms_norm_scalar)(x, x, w, n, eps); /* in place */
            assert_memory_equal(x, y, n * sizeof *x);
            free(x);
            free(w);
            free(y);
        }
    }
}

/* Both versions sum each element in row order with fused multiply-adds: equal bit for bit,
 * for head sizes that are whole 64-float blocks, 16- and 8-float blocks and neither, and for
 * 1 to 9 query rows (the SIMD version's groups of four and the rows left over), with strided
 * weights and outputs. */
static void test_weighted_rows(void **state) {
    (void)state;
    if (!have_avx2()) skip();
    const int64_t dims[] = {64, 128, 80, 77, 24, 5};
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++)
        for (int64_t nw = 1; nw <= 9; nw += 2) {
            const int64_t dim = dims[d], n = 301, w_stride = n + 3, out_stride = dim + 5;
            float *w = malloc(nw * w_stride * sizeof *w), *rows = malloc(n * dim * sizeof *rows);
            float *want = calloc(nw * out_stride, sizeof *want), *got = calloc(nw * out_stride, sizeof *got);
            for (int64_t i = 0; i < nw * w_stride; i++) w[i] = 1.0f / (float)(i % 509 + 3);
            for (int64_t i = 0; i < n * dim; i++) rows[i] = (float)((i * 7919) % 2001 - 1000) * 1e-3f;
            cpu_vec_weighted_rows_scalar(w, w_stride, nw, rows, n, dim, want, out_stride);
            cpu_vec_weighted_rows_avx2(w, w_stride, nw, rows, n, dim, got, out_stride);
            assert_memory_equal(got, want, nw * out_stride * sizeof *got);
            /* and a row's sums do not depend on how many rows come with it */
            cpu_vec_weighted_rows_avx2(w + (nw - 1) * w_stride, w_stride, 1, rows, n, dim, got, out_stride);
            assert_memory_equal(got, want + (nw - 1) * out_stride, dim * sizeof *got);
            /* rows of halves read in place: the same bits as widening them first, in both
             * versions (the rows here are multiples of 1e-3, most not exact halves) */
            uint16_t *half = malloc(n * dim * sizeof *half);
            for (int64_t i = 0; i < n * dim; i++) {
                half[i] = strata_f32_to_fp16(rows[i]);
                rows[i] = strata_fp16_to_f32(half[i]);
            }
            cpu_vec_weighted_rows_scalar(w, w_stride, nw, rows, n, dim, want, out_stride);
            memset(got, 0, nw * out_stride * sizeof *got);
            cpu_vec_weighted_rows_f16_scalar(w, w_stride, nw, half, n, dim, got, out_stride);
            assert_memory_equal(got, want, nw * out_stride * sizeof *got);
            memset(got, 0, nw * out_stride * sizeof *got);
            cpu_vec_weighted_rows_f16_avx2(w, w_stride, nw, half, n, dim, got, out_stride);
            assert_memory_equal(got, want, nw * out_stride * sizeof *got);
            free(half);
            free(w);
            free(rows);
            free(want);
            free(got);
        }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_half_conversions),
        cmocka_unit_test(test_exp),
        cmocka_unit_test(test_silu_mul),
        cmocka_unit_test(test_softmax),
        cmocka_unit_test(test_rms_norm),
        cmocka_unit_test(test_weighted_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
