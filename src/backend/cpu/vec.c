/* Scalar elementwise helpers and the dispatch to the AVX2 ones (see vec.h). */
#include "backend/cpu/vec.h"

#include <math.h>
#include <pthread.h>

#include "backend/cpu/matmul.h"
#include "core/fp16.h"

static void f16_to_f32_scalar(const uint16_t *src, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = strata_fp16_to_f32(src[i]);
}

static void f32_to_f16_scalar(const float *src, uint16_t *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = strata_f32_to_fp16(src[i]);
}

void cpu_vec_exp_scalar(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = expf(x[i]);
}

double cpu_vec_softmax_terms_scalar(float *x, int64_t n, float scale, float *max) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        x[i] *= scale;
        if (x[i] > mx) mx = x[i];
    }
    for (int64_t i = 0; i < n; i++) x[i] = expf(x[i] - mx);
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += x[i];
    *max = mx;
    return sum;
}

void cpu_vec_softmax_scalar(float *x, int64_t n, float scale) {
    float mx;
    const double sum = cpu_vec_softmax_terms_scalar(x, n, scale, &mx);
    const float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

void cpu_vec_rms_norm_scalar(float *y, const float *x, const float *w, int64_t n, float eps) {
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    const float scale = (float)(1.0 / sqrt(ss / (double)n + eps));
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * scale * w[i];
}

void cpu_vec_silu_mul_scalar(float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/* Value rows of floats or (f16) of halves, widened exactly as they are read. */
static void weighted_rows_scalar(const float *w, int64_t w_stride, int64_t nw, const void *rows, int f16, int64_t n,
                                 int64_t dim, float *out, int64_t out_stride) {
    for (int64_t q = 0; q < nw; q++) {
        const float *wq = w + q * w_stride;
        float *o = out + q * out_stride;
        for (int64_t j = 0; j < dim; j++) o[j] = 0.0f;
        for (int64_t t = 0; t < n; t++)
            for (int64_t j = 0; j < dim; j++) {
                const float r = f16 ? strata_fp16_to_f32(((const uint16_t *)rows)[t * dim + j])
                                    : ((const float *)rows)[t * dim + j];
                o[j] = fmaf(wq[t], r, o[j]);
            }
    }
}

void cpu_vec_weighted_rows_scalar(const float *w, int64_t w_stride, int64_t nw, const float *rows, int64_t n,
                                  int64_t dim, float *out, int64_t out_stride) {
    weighted_rows_scalar(w, w_stride, nw, rows, 0, n, dim, out, out_stride);
}

void cpu_vec_weighted_rows_f16_scalar(const float *w, int64_t w_stride, int64_t nw, const uint16_t *rows, int64_t n,
                                      int64_t dim, float *out, int64_t out_stride) {
    weighted_rows_scalar(w, w_stride, nw, rows, 1, n, dim, out, out_stride);
}

/* The versions in use, chosen once (like the matrix kernels' table). */
static struct {
    void (*f16_to_f32)(const uint16_t *, float *, int64_t);
    void (*f32_to_f16)(const float *, uint16_t *, int64_t);
    void (*softmax)(float *, int64_t, float);
    double (*softmax_terms)(float *, int64_t, float, float *);
    void (*rms_norm)(float *, const float *, const float *, int64_t, float);
    void (*silu_mul)(float *, const float *, int64_t);
    void (*weighted_rows)(const float *, int64_t, int64_t, const float *, int64_t, int64_t, float *, int64_t);
    void (*weighted_rows_f16)(const float *, int64_t, int64_t, const uint16_t *, int64_t, int64_t, float *, int64_t);
} impl;
static pthread_once_t impl_once = PTHREAD_ONCE_INIT;

static void choose(void) {
    impl.f16_to_f32 = f16_to_f32_scalar;
    impl.f32_to_f16 = f32_to_f16_scalar;
    impl.softmax = cpu_vec_softmax_scalar;
    impl.softmax_terms = cpu_vec_softmax_terms_scalar;
    impl.rms_norm = cpu_vec_rms_norm_scalar;
    impl.silu_mul = cpu_vec_silu_mul_scalar;
    impl.weighted_rows = cpu_vec_weighted_rows_scalar;
    impl.weighted_rows_f16 = cpu_vec_weighted_rows_f16_scalar;
#if defined(__x86_64__)
    if (cpu_isa_detect() >= CPU_ISA_AVX2) {
        impl.f16_to_f32 = cpu_vec_f16_to_f32_avx2;
        impl.f32_to_f16 = cpu_vec_f32_to_f16_avx2;
        impl.softmax = cpu_vec_softmax_avx2;
        impl.softmax_terms = cpu_vec_softmax_terms_avx2;
        impl.rms_norm = cpu_vec_rms_norm_avx2;
        impl.silu_mul = cpu_vec_silu_mul_avx2;
        impl.weighted_rows = cpu_vec_weighted_rows_avx2;
        impl.weighted_rows_f16 = cpu_vec_weighted_rows_f16_avx2;
    }
#endif
}

void cpu_vec_f16_to_f32(const uint16_t *src, float *dst, int64_t n) {
    pthread_once(&impl_once, choose);
    impl.f16_to_f32(src, dst, n);
}

void cpu_vec_f32_to_f16(const float *src, uint16_t *dst, int64_t n) {
    pthread_once(&impl_once, choose);
    impl.f32_to_f16(src, dst, n);
}

void cpu_vec_softmax(float *x, int64_t n, float scale) {
    pthread_once(&impl_once, choose);
    impl.softmax(x, n, scale);
}

double cpu_vec_softmax_terms(float *x, int64_t n, float scale, float *max) {
    pthread_once(&impl_once, choose);
    return impl.softmax_terms(x, n, scale, max);
}

void cpu_vec_rms_norm(float *y, const float *x, const float *w, int64_t n, float eps) {
    pthread_once(&impl_once, choose);
    impl.rms_norm(y, x, w, n, eps);
}

void cpu_vec_silu_mul(float *g, const float *u, int64_t n) {
    pthread_once(&impl_once, choose);
    impl.silu_mul(g, u, n);
}

void cpu_vec_weighted_rows(const float *w, int64_t w_stride, int64_t nw, const float *rows, int64_t n, int64_t dim,
                           float *out, int64_t out_stride) {
    pthread_once(&impl_once, choose);
    impl.weighted_rows(w, w_stride, nw, rows, n, dim, out, out_stride);
}

void cpu_vec_weighted_rows_f16(const float *w, int64_t w_stride, int64_t nw, const uint16_t *rows, int64_t n,
                               int64_t dim, float *out, int64_t out_stride) {
    pthread_once(&impl_once, choose);
    impl.weighted_rows_f16(w, w_stride, nw, rows, n, dim, out, out_stride);
}
