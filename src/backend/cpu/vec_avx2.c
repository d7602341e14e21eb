/* AVX2 + FMA + F16C elementwise helpers (this file's name gives it those flags; see
 * cmake/modules.cmake). Called only when CPUID reports them (vec.c). */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "backend/cpu/vec.h"
#include "core/fp16.h"

/* e^x for x clamped to [-87.33, 88]: x = n ln2 + r with |r| <= ln2 / 2 (ln2 split in two
 * parts so that n ln2 is exact), e^r from a degree-6 polynomial (Cephes' expf coefficients),
 * times 2^n built in the exponent field. */
static inline __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.33654f)), _mm256_set1_ps(88.0f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

void cpu_vec_exp_avx2(float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, exp8(_mm256_loadu_ps(x + i)));
    if (i < n) { /* the tail through a padded block, so it gets the same function */
        float t[8] = {0};
        memcpy(t, x + i, sizeof(float) * (size_t)(n - i));
        _mm256_storeu_ps(t, exp8(_mm256_loadu_ps(t)));
        memcpy(x + i, t, sizeof(float) * (size_t)(n - i));
    }
}

/* The sum of four double lanes, pairwise: (l0 + l1) + (l2 + l3). */
static inline double hsum_pd(__m256d v) {
    double l[4];
    _mm256_storeu_pd(l, v);
    return (l[0] + l[1]) + (l[2] + l[3]);
}

double cpu_vec_softmax_terms_avx2(float *x, int64_t n, float scale, float *max) {
    int64_t i = 0;
    const __m256 sv = _mm256_set1_ps(scale);
    __m256 mv = _mm256_set1_ps(-INFINITY);
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), sv);
        _mm256_storeu_ps(x + i, v);
        mv = _mm256_max_ps(mv, v);
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mv), _mm256_extractf128_ps(mv, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    float mx = _mm_cvtss_f32(m4);
    for (; i < n; i++) {
        x[i] *= scale;
        if (x[i] > mx) mx = x[i];
    }
    const __m256 mxv = _mm256_set1_ps(mx);
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_sub_ps(_mm256_loadu_ps(x + i), mxv));
    for (; i < n; i++) x[i] -= mx;
    cpu_vec_exp_avx2(x, n);
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    for (i = 0; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    }
    double sum = hsum_pd(_mm256_add_pd(s0, s1));
    for (; i < n; i++) sum += x[i];
    *max = mx;
    return sum;
}

void cpu_vec_softmax_avx2(float *x, int64_t n, float scale) {
    float mx;
    const double sum = cpu_vec_softmax_terms_avx2(x, n, scale, &mx);
    int64_t i;
    const float inv = (float)(1.0 / sum);
    const __m256 iv = _mm256_set1_ps(inv);
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), iv));
    for (; i < n; i++) x[i] *= inv;
}

/* The sum of squares in sixteen double lanes: the scalar version's one chain of dependent
 * adds (4 cycles each) made the norms of a 128-token prompt batch cost about 2 % of it, on one
 * thread while the others waited. */
void cpu_vec_rms_norm_avx2(float *y, const float *x, const float *w, int64_t n, float eps) {
    __m256d s[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd()};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 4; k++) {
            const __m256d v = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4 * k));
            s[k] = _mm256_fmadd_pd(v, v, s[k]);
        }
    double ss = hsum_pd(_mm256_add_pd(_mm256_add_pd(s[0], s[1]), _mm256_add_pd(s[2], s[3])));
    for (; i < n; i++) ss += (double)x[i] * x[i];
    const float scale = (float)(1.0 / sqrt(ss / (double)n + eps));
    const __m256 sv = _mm256_set1_ps(scale);
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), sv), _mm256_loadu_ps(w + i)));
    for (; i < n; i++) y[i] = x[i] * scale * w[i];
}

static inline __m256 silu_mul8(__m256 g, __m256 u) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), g));
    return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u);
}

void cpu_vec_silu_mul_avx2(float *g, const float *u, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(g + i, silu_mul8(_mm256_loadu_ps(g + i), _mm256_loadu_ps(u + i)));
    if (i < n) {
        float tg[8] = {0}, tu[8] = {0};
        memcpy(tg, g + i, sizeof(float) * (size_t)(n - i));
        memcpy(tu, u + i, sizeof(float) * (size_t)(n - i));
        _mm256_storeu_ps(tg, silu_mul8(_mm256_loadu_ps(tg), _mm256_loadu_ps(tu)));
        memcpy(g + i, tg, sizeof(float) * (size_t)(n - i));
    }
}

void cpu_vec_f16_to_f32_avx2(const uint16_t *src, float *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++) dst[i] = strata_fp16_to_f32(src[i]);
}

void cpu_vec_f32_to_f16_avx2(const float *src, uint16_t *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) dst[i] = strata_f32_to_fp16(src[i]);
}

/* The weighted sums read value rows of floats, or of halves (an F16 KV cache read in place:
 * F16C widens each vector as it is loaded, exactly, so both give the same bits). F16 is a
 * constant in every caller, so each version compiles to its own loop. */
#define AI static inline __attribute__((always_inline))

AI __m256 row8(const void *rows, const int f16, int64_t i) {
    return f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)rows + i)))
               : _mm256_loadu_ps((const float *)rows + i);
}

AI float row1(const void *rows, const int f16, int64_t i) {
    return f16 ? strata_fp16_to_f32(((const uint16_t *)rows)[i]) : ((const float *)rows)[i];
}

/* One query row, columns [j0, dim): eight output vectors (64 floats) at a time stay in
 * registers while the rows stream past, one broadcast and eight independent FMAs per row. */
AI void weighted_row(const float *w, const void *rows, const int f16, int64_t n, int64_t dim, int64_t j0, float *out) {
    for (; j0 + 64 <= dim; j0 += 64) {
        __m256 a[8];
        for (int k = 0; k < 8; k++) a[k] = _mm256_setzero_ps();
        for (int64_t t = 0; t < n; t++) {
            const __m256 wt = _mm256_broadcast_ss(w + t);
            for (int k = 0; k < 8; k++) a[k] = _mm256_fmadd_ps(wt, row8(rows, f16, t * dim + j0 + 8 * k), a[k]);
        }
        for (int k = 0; k < 8; k++) _mm256_storeu_ps(out + j0 + 8 * k, a[k]);
    }
    for (; j0 + 8 <= dim; j0 += 8) {
        __m256 a = _mm256_setzero_ps();
        for (int64_t t = 0; t < n; t++) a = _mm256_fmadd_ps(_mm256_broadcast_ss(w + t), row8(rows, f16, t * dim + j0), a);
        _mm256_storeu_ps(out + j0, a);
    }
    for (; j0 < dim; j0++) {
        float a = 0.0f;
        for (int64_t t = 0; t < n; t++) a = fmaf(w[t], row1(rows, f16, t * dim + j0), a);
        out[j0] = a;
    }
}

AI void weighted_rows(const float *w, int64_t w_stride, int64_t nw, const void *rows, const int f16, int64_t n,
                      int64_t dim, float *out, int64_t out_stride) {
    int64_t q = 0;
    /* Four query rows x 16 columns: per value row two loads, four broadcasts and eight FMAs
     * (eight accumulators in flight). */
    for (; q + 4 <= nw; q += 4) {
        const float *w0 = w + q * w_stride, *w1 = w0 + w_stride, *w2 = w1 + w_stride, *w3 = w2 + w_stride;
        float *o = out + q * out_stride;
        int64_t j0 = 0;
        for (; j0 + 16 <= dim; j0 += 16) {
            __m256 a[4][2];
            for (int i = 0; i < 4; i++) a[i][0] = a[i][1] = _mm256_setzero_ps();
            for (int64_t t = 0; t < n; t++) {
                const __m256 r0 = row8(rows, f16, t * dim + j0), r1 = row8(rows, f16, t * dim + j0 + 8);
                const __m256 b0 = _mm256_broadcast_ss(w0 + t), b1 = _mm256_broadcast_ss(w1 + t);
                const __m256 b2 = _mm256_broadcast_ss(w2 + t), b3 = _mm256_broadcast_ss(w3 + t);
                a[0][0] = _mm256_fmadd_ps(b0, r0, a[0][0]);
                a[0][1] = _mm256_fmadd_ps(b0, r1, a[0][1]);
                a[1][0] = _mm256_fmadd_ps(b1, r0, a[1][0]);
                a[1][1] = _mm256_fmadd_ps(b1, r1, a[1][1]);
                a[2][0] = _mm256_fmadd_ps(b2, r0, a[2][0]);
                a[2][1] = _mm256_fmadd_ps(b2, r1, a[2][1]);
                a[3][0] = _mm256_fmadd_ps(b3, r0, a[3][0]);
                a[3][1] = _mm256_fmadd_ps(b3, r1, a[3][1]);
            }
            for (int i = 0; i < 4; i++) {
                _mm256_storeu_ps(o + i * out_stride + j0, a[i][0]);
                _mm256_storeu_ps(o + i * out_stride + j0 + 8, a[i][1]);
            }
        }
        for (int i = 0; i < 4; i++) weighted_row(w0 + i * w_stride, rows, f16, n, dim, j0, o + i * out_stride);
    }
    for (; q < nw; q++) weighted_row(w + q * w_stride, rows, f16, n, dim, 0, out + q * out_stride);
}

void cpu_vec_weighted_rows_avx2(const float *w, int64_t w_stride, int64_t nw, const float *rows, int64_t n,
                                int64_t dim, float *out, int64_t out_stride) {
    weighted_rows(w, w_stride, nw, rows, 0, n, dim, out, out_stride);
}

void cpu_vec_weighted_rows_f16_avx2(const float *w, int64_t w_stride, int64_t nw, const uint16_t *rows, int64_t n,
                                    int64_t dim, float *out, int64_t out_stride) {
    weighted_rows(w, w_stride, nw, rows, 1, n, dim, out, out_stride);
}
