/* Scalar elementwise helpers and the dispatch to the AVX2 ones (see vec.h). */
#include "backend/cpu/vec.h"

#include <math.h>

#include "backend/cpu/matmul.h"
#include "core/fp16.h"

static int use_avx2(void) {
#if defined(__x86_64__)
    return cpu_isa_detect() >= CPU_ISA_AVX2;
#else
    return 0;
#endif
}

void cpu_vec_exp_scalar(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = expf(x[i]);
}

void cpu_vec_silu_mul_scalar(float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void cpu_vec_f16_to_f32(const uint16_t *src, float *dst, int64_t n) {
#if defined(__x86_64__)
    if (use_avx2()) {
        cpu_vec_f16_to_f32_avx2(src, dst, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) dst[i] = strata_fp16_to_f32(src[i]);
}

void cpu_vec_f32_to_f16(const float *src, uint16_t *dst, int64_t n) {
#if defined(__x86_64__)
    if (use_avx2()) {
        cpu_vec_f32_to_f16_avx2(src, dst, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) dst[i] = strata_f32_to_fp16(src[i]);
}

void cpu_vec_exp(float *x, int64_t n) {
#if defined(__x86_64__)
    if (use_avx2()) {
        cpu_vec_exp_avx2(x, n);
        return;
    }
#endif
    cpu_vec_exp_scalar(x, n);
}

void cpu_vec_silu_mul(float *g, const float *u, int64_t n) {
#if defined(__x86_64__)
    if (use_avx2()) {
        cpu_vec_silu_mul_avx2(g, u, n);
        return;
    }
#endif
    cpu_vec_silu_mul_scalar(g, u, n);
}

void cpu_vec_weighted_rows_scalar(const float *w, const float *rows, int64_t n, int64_t dim, float *out) {
    for (int64_t j = 0; j < dim; j++) out[j] = 0.0f;
    for (int64_t t = 0; t < n; t++)
        for (int64_t j = 0; j < dim; j++) out[j] = fmaf(w[t], rows[t * dim + j], out[j]);
}

void cpu_vec_weighted_rows(const float *w, const float *rows, int64_t n, int64_t dim, float *out) {
#if defined(__x86_64__)
    if (use_avx2()) {
        cpu_vec_weighted_rows_avx2(w, rows, n, dim, out);
        return;
    }
#endif
    cpu_vec_weighted_rows_scalar(w, rows, n, dim, out);
}
