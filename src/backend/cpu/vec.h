/* Elementwise helpers of the CPU forward pass: half-precision conversion of KV-cache rows,
 * the attention's softmax and weighted sums of value rows, and the SwiGLU gate. Each has a
 * portable scalar version (the reference) and an AVX2 one (vec_avx2.c), chosen once by CPUID
 * as the matrix kernels are (cpu_isa_detect); tests/backend/test_vec.c holds them to each
 * other. */
#ifndef STRATA_BACKEND_CPU_VEC_H
#define STRATA_BACKEND_CPU_VEC_H

#include <stdint.h>

/* IEEE half <-> float, round to nearest even (bit-identical to core/fp16.h for every value
 * but NaN payloads). */
void cpu_vec_f16_to_f32(const uint16_t *src, float *dst, int64_t n);
void cpu_vec_f32_to_f16(const float *src, uint16_t *dst, int64_t n);

/* x[i] = e^(scale x[i] - m) / sum over j of e^(scale x[j] - m), m = max of scale x[j], in
 * place: the attention's weights from its scores. The sum is accumulated in double (in t
 * order in the scalar version, in 8 lanes in the SIMD one). */
void cpu_vec_softmax(float *x, int64_t n, float scale);

/* Its first steps: x[i] = e^(scale x[i] - m) with m = max of scale x[j] (into *max), and the
 * sum of the x[i] returned, accumulated as cpu_vec_softmax does (which then multiplies by its
 * inverse): the attention over a part of the positions, combined with the other parts later. */
double cpu_vec_softmax_terms(float *x, int64_t n, float scale, float *max);

/* y[i] = x[i] * s * w[i] with s = 1 / sqrt(mean of x[j]^2 + eps), as float (x[i] * s first):
 * RMS normalization. The squares are summed in double (in order in the scalar version, in
 * four lanes of four accumulators in the SIMD one, whose scale may therefore differ in the
 * last bit; each y[i] is then computed the same way). y may be x. */
void cpu_vec_rms_norm(float *y, const float *x, const float *w, int64_t n, float eps);

/* g[i] = silu(g[i]) * u[i], silu(a) = a / (1 + e^-a): the SwiGLU feed-forward gate. */
void cpu_vec_silu_mul(float *g, const float *u, int64_t n);

/* out[q * out_stride + j] = sum over t < n of w[q * w_stride + t] * rows[t * dim + j], for
 * q < nw and j < dim: the attention's weighted sums of value rows, for nw query rows that
 * share the rows (the query heads of one KV head, one token). Summed in t order per element
 * (both versions; FMA in the SIMD one), so a row's result does not depend on nw. The SIMD
 * version takes four query rows at a time, so that each value row it loads serves four
 * (one query row at a time, the loads of rows from L2 bound it at half the FMA rate). */
void cpu_vec_weighted_rows(const float *w, int64_t w_stride, int64_t nw, const float *rows, int64_t n, int64_t dim,
                           float *out, int64_t out_stride);

/* The same over rows of IEEE halves (an F16 KV cache, read where it is): the same bits as
 * widening the rows to float first (the widening is exact) and calling the above. */
void cpu_vec_weighted_rows_f16(const float *w, int64_t w_stride, int64_t nw, const uint16_t *rows, int64_t n,
                               int64_t dim, float *out, int64_t out_stride);

/* The scalar versions (the references) and the AVX2 ones, for tests and benchmarks. */
void cpu_vec_softmax_scalar(float *x, int64_t n, float scale);
void cpu_vec_softmax_avx2(float *x, int64_t n, float scale);
double cpu_vec_softmax_terms_scalar(float *x, int64_t n, float scale, float *max);
double cpu_vec_softmax_terms_avx2(float *x, int64_t n, float scale, float *max);
void cpu_vec_rms_norm_scalar(float *y, const float *x, const float *w, int64_t n, float eps);
void cpu_vec_rms_norm_avx2(float *y, const float *x, const float *w, int64_t n, float eps);
void cpu_vec_silu_mul_scalar(float *g, const float *u, int64_t n);
void cpu_vec_silu_mul_avx2(float *g, const float *u, int64_t n);
void cpu_vec_weighted_rows_scalar(const float *w, int64_t w_stride, int64_t nw, const float *rows, int64_t n,
                                  int64_t dim, float *out, int64_t out_stride);
void cpu_vec_weighted_rows_avx2(const float *w, int64_t w_stride, int64_t nw, const float *rows, int64_t n,
                                int64_t dim, float *out, int64_t out_stride);
void cpu_vec_weighted_rows_f16_scalar(const float *w, int64_t w_stride, int64_t nw, const uint16_t *rows, int64_t n,
                                      int64_t dim, float *out, int64_t out_stride);
void cpu_vec_weighted_rows_f16_avx2(const float *w, int64_t w_stride, int64_t nw, const uint16_t *rows, int64_t n,
                                    int64_t dim, float *out, int64_t out_stride);
void cpu_vec_f16_to_f32_avx2(const uint16_t *src, float *dst, int64_t n);
void cpu_vec_f32_to_f16_avx2(const float *src, uint16_t *dst, int64_t n);

/* x[i] = e^x[i] (the softmax's exponential). The SIMD version is within 2 ulp of expf for
 * arguments in [-87, 88]; below, it returns about 1e-38 where expf goes subnormal or 0
 * (negligible against the softmax's largest term, 1), above 88 it saturates at e^88. */
void cpu_vec_exp_scalar(float *x, int64_t n);
void cpu_vec_exp_avx2(float *x, int64_t n);

#endif
