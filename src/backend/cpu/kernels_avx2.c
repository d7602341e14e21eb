/* AVX2 kernels (this file is compiled with -mavx2 -mfma -mf16c -mbmi2 and only called when
 * CPUID reports them).
 *
 * Integer formats: weights unpacked to 32 bytes per 32 elements, multiplied with the 8-bit
 * activations by vpmaddubsw (unsigned x signed byte pairs -> int16) and vpmaddwd (-> int32,
 * with the group scale as the int16 multiplier for K-quants). Formats whose levels are
 * unsigned plus an offset (Q4_0: q - 8, Q6_K: q - 32, ...) multiply the unsigned levels and
 * apply the offset once per block through the activations' block sums (act s / bsums);
 * signed formats (Q8_0, IQ4_NL, IQ4_XS) use the sign trick |w| * (x * sign(w)).
 * Block sums are exact, as in the scalar kernels; only float summation order differs.
 *
 * Tiles: a kernel computes MR weight rows x NT tokens at once, loading each unpacked weight
 * chunk once for NT tokens and each activation chunk once for MR rows. The tile shapes are
 * compile-time constants (always-inline templates), instantiated for the shapes the driver
 * asks for (a full tile and the edges). */
#include <immintrin.h>
#include <string.h>

#include "backend/cpu/kernels.h"
#include "core/fp16.h"
#include "tensor/quant.h"
#include "tensor/quant_internal.h"

#define AI static inline __attribute__((always_inline))

AI float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AI float h2f(uint16_t h) { return _cvtsh_ss(h); }

/* ---- activation quantization ------------------------------------------------------------ */

/* Same bytes as act_q8_block() in kernels_scalar.c. */
static void act_q8_row(const float *x, uint8_t *dst, int64_t cols, int fp16_sum) {
    const int64_t nb = cols / 32;
    float *dd = (float *)dst, *ss = dd + nb;
    int8_t *qs = (int8_t *)(ss + nb);
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + 32 * i;
        __m256 v0 = _mm256_loadu_ps(xb), v1 = _mm256_loadu_ps(xb + 8), v2 = _mm256_loadu_ps(xb + 16),
               v3 = _mm256_loadu_ps(xb + 24);
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v0, absmask), _mm256_and_ps(v1, absmask)),
                                 _mm256_max_ps(_mm256_and_ps(v2, absmask), _mm256_and_ps(v3, absmask)));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        const float d = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f;
        const __m256 mul = _mm256_set1_ps(id);
        const int rnd = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
        __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v0, mul), rnd));
        __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v1, mul), rnd));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v2, mul), rnd));
        __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v3, mul), rnd));
        __m256i sum = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
        const int isum = _mm_cvtsi128_si32(s4);
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
        _mm256_storeu_si256((__m256i *)(qs + 32 * i), _mm256_permutevar8x32_epi32(p, perm));
        dd[i] = h2f(strata_f32_to_fp16(d));
        ss[i] = fp16_sum ? h2f(strata_f32_to_fp16(d * (float)isum)) : dd[i] * (float)isum;
    }
}

void cpu_quantize_act_avx2(cpu_act act, const float *x, void *dst, int64_t cols) {
    switch (act) {
    case CPU_ACT_Q8:
    case CPU_ACT_Q8S: act_q8_row(x, dst, cols, act == CPU_ACT_Q8S); return;
    case CPU_ACT_F16: {
        uint16_t *h = dst;
        int64_t i = 0;
        for (; i + 8 <= cols; i += 8)
            _mm_storeu_si128((__m128i *)(h + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
        for (; i < cols; i++) h[i] = strata_f32_to_fp16(x[i]);
        return;
    }
    default: cpu_quantize_act_scalar(act, x, dst, cols); return;
    }
}

/* Tile arrays have the largest shape (4 x 4) so they are not variable-length arrays:
 * with MR and NT constant after inlining, the compiler keeps them in registers. */

/* ---- float formats ---------------------------------------------------------------------- */

AI __m256 load8_f32(const uint8_t *p) { return _mm256_loadu_ps((const float *)p); }
AI __m256 load8_f16(const uint8_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
AI __m256 load8_bf16(const uint8_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}

enum { FF_F32, FF_F16, FF_BF16 };

AI __m256 load8(const int ff, const uint8_t *p, int64_t i) {
    return ff == FF_F32 ? load8_f32(p + 4 * i) : ff == FF_F16 ? load8_f16(p + 2 * i) : load8_bf16(p + 2 * i);
}
AI float load1(const int ff, const uint8_t *p, int64_t i) {
    uint16_t h;
    float f;
    if (ff == FF_F32) {
        memcpy(&f, p + 4 * i, 4);
        return f;
    }
    memcpy(&h, p + 2 * i, 2);
    return ff == FF_F16 ? strata_fp16_to_f32(h) : strata_bf16_to_f32(h);
}

AI void ftile(const int ff, const int MR, const int NT, int64_t n, const uint8_t *w, size_t ws, const uint8_t *x,
              size_t xs, float *y, size_t ys) {
    __m256 acc[4][4];
    #pragma GCC unroll 4
    for (int r = 0; r < MR; r++)
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) acc[r][t] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 wv[4];
        #pragma GCC unroll 4
        for (int r = 0; r < MR; r++) wv[r] = load8(ff, w + r * ws, i);
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            const __m256 xv = load8(ff, x + t * xs, i);
            #pragma GCC unroll 4
            for (int r = 0; r < MR; r++) acc[r][t] = _mm256_fmadd_ps(wv[r], xv, acc[r][t]);
        }
    }
    #pragma GCC unroll 4
    for (int r = 0; r < MR; r++)
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            float s = hsum_ps(acc[r][t]);
            for (int64_t j = i; j < n; j++) s += load1(ff, w + r * ws, j) * load1(ff, x + t * xs, j);
            y[t * ys + r] = s;
        }
}

/* ---- 32-element block formats ------------------------------------------------------------- */

enum { B_Q4_0, B_Q4_1, B_Q5_0, B_Q5_1, B_Q8_0, B_IQ4_NL };

AI int b_signed(const int f) { return f == B_Q8_0 || f == B_IQ4_NL; }
AI size_t b_bytes(const int f) {
    switch (f) {
    case B_Q4_0: return sizeof(block_q4_0);
    case B_Q4_1: return sizeof(block_q4_1);
    case B_Q5_0: return sizeof(block_q5_0);
    case B_Q5_1: return sizeof(block_q5_1);
    case B_Q8_0: return sizeof(block_q8_0);
    default: return sizeof(block_iq4_nl);
    }
}

/* 16 bytes of nibbles -> 32 bytes: low nibbles (elements 0..15), then high nibbles. */
AI __m256i nibbles32(const uint8_t *p) {
    const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p));
    return _mm256_and_si256(_mm256_srlv_epi64(v, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0x0f));
}

/* Bit j of the 32-bit value (j = 0..31) -> 0x10 in byte j. */
AI __m256i bits_to_0x10(const uint8_t *qh4) {
    uint32_t qh;
    memcpy(&qh, qh4, 4);
    const __m256i sel = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3,
                                         3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    __m256i v = _mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), sel), bit);
    return _mm256_and_si256(_mm256_cmpeq_epi8(v, bit), _mm256_set1_epi8(0x10));
}

/* Unpacks block b of a row: 32 levels (unsigned for offset formats, signed otherwise), the
 * scale d and the coefficient c of the activation block sum s (the offset / min term). */
AI __m256i b_unpack(const int f, const uint8_t *row, int64_t b, float *d, float *c) {
    const uint8_t *p = row + b * b_bytes(f);
    switch (f) {
    case B_Q4_0: {
        const block_q4_0 *k = (const block_q4_0 *)p;
        *d = h2f(k->d);
        *c = -8.0f * *d;
        return nibbles32(k->qs);
    }
    case B_Q4_1: {
        const block_q4_1 *k = (const block_q4_1 *)p;
        *d = h2f(k->d);
        *c = h2f(k->m);
        return nibbles32(k->qs);
    }
    case B_Q5_0: {
        const block_q5_0 *k = (const block_q5_0 *)p;
        *d = h2f(k->d);
        *c = -16.0f * *d;
        return _mm256_or_si256(nibbles32(k->qs), bits_to_0x10(k->qh));
    }
    case B_Q5_1: {
        const block_q5_1 *k = (const block_q5_1 *)p;
        *d = h2f(k->d);
        *c = h2f(k->m);
        return _mm256_or_si256(nibbles32(k->qs), bits_to_0x10(k->qh));
    }
    case B_Q8_0: {
        const block_q8_0 *k = (const block_q8_0 *)p;
        *d = h2f(k->d);
        *c = 0.0f;
        return _mm256_loadu_si256((const __m256i *)k->qs);
    }
    default: {
        const block_iq4_nl *k = (const block_iq4_nl *)p;
        *d = h2f(k->d);
        *c = 0.0f;
        const __m256i kv = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)strata_kvalues_iq4nl));
        return _mm256_shuffle_epi8(kv, nibbles32(k->qs));
    }
    }
}

/* Four weight rows x NT tokens. The four rows' int32 block sums for one token are folded
 * into one vector (lanes 0-3 and 4-7 each hold rows 0..3) before the conversion to float
 * and the scaling, so that step costs one convert, one multiply and one FMA per four
 * block products instead of four of each. Rows past nr repeat the last row (their results
 * are not stored). */
AI void btile4(const int f, const int NT, int64_t cols, const uint8_t *w, size_t ws, int nr, const uint8_t *x,
               size_t xs, float *y, size_t ys) {
    const int64_t nb = cols / 32;
    const int has_c = !(f == B_Q8_0 || f == B_IQ4_NL);
    const __m256i ones = _mm256_set1_epi16(1);
    const uint8_t *wr[4];
    for (int r = 0; r < 4; r++) wr[r] = w + (size_t)(r < nr ? r : nr - 1) * ws;
    const float *xd[4], *xsum[4];
    const int8_t *xq[4];
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) {
        xd[t] = act_q8_d(x + t * xs, nb);
        xsum[t] = act_q8_s(x + t * xs, nb);
        xq[t] = act_q8_qs(x + t * xs, nb);
    }
    __m256 acc[4];
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256i q[4], qa[4];
        float d[4], c[4];
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            q[r] = b_unpack(f, wr[r], b, &d[r], &c[r]);
            if (b_signed(f)) qa[r] = _mm256_abs_epi8(q[r]);
        }
        const __m128 d4 = _mm_setr_ps(d[0], d[1], d[2], d[3]);
        const __m256 dw = _mm256_set_m128(d4, d4);
        /* the offset term goes in lanes 0-3 only (lanes 4-7 repeat the rows) */
        const __m256 cv = _mm256_set_m128(_mm_setzero_ps(), _mm_setr_ps(c[0], c[1], c[2], c[3]));
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            const __m256i xv = _mm256_loadu_si256((const __m256i *)(xq[t] + 32 * b));
            __m256i m[4];
#pragma GCC unroll 4
            for (int r = 0; r < 4; r++) {
                const __m256i p = b_signed(f) ? _mm256_maddubs_epi16(qa[r], _mm256_sign_epi8(xv, q[r]))
                                              : _mm256_maddubs_epi16(q[r], xv);
                m[r] = _mm256_madd_epi16(p, ones);
            }
            const __m256i u01 = _mm256_add_epi32(_mm256_unpacklo_epi32(m[0], m[1]), _mm256_unpackhi_epi32(m[0], m[1]));
            const __m256i u23 = _mm256_add_epi32(_mm256_unpacklo_epi32(m[2], m[3]), _mm256_unpackhi_epi32(m[2], m[3]));
            const __m256i v = _mm256_add_epi32(_mm256_unpacklo_epi64(u01, u23), _mm256_unpackhi_epi64(u01, u23));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(v), _mm256_mul_ps(dw, _mm256_broadcast_ss(xd[t] + b)), acc[t]);
            if (has_c) acc[t] = _mm256_fmadd_ps(cv, _mm256_broadcast_ss(xsum[t] + b), acc[t]);
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) {
        float out[4];
        _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(acc[t]), _mm256_extractf128_ps(acc[t], 1)));
        for (int r = 0; r < nr; r++) y[t * ys + r] = out[r];
    }
}

/* ---- K-quants (super-blocks of 256, Q8_K activations) --------------------------------------- */

enum { K_Q2, K_Q3, K_Q4, K_Q5, K_Q6, K_IQ4XS };

AI size_t k_bytes(const int f) {
    switch (f) {
    case K_Q2: return sizeof(block_q2_K);
    case K_Q3: return sizeof(block_q3_K);
    case K_Q4: return sizeof(block_q4_K);
    case K_Q5: return sizeof(block_q5_K);
    case K_Q6: return sizeof(block_q6_K);
    default: return sizeof(block_iq4_xs);
    }
}

/* Per row and super-block: d, dmin, the 16 per-16-element scales as int16 (32-element
 * groups repeat theirs) and, for formats with mins, the 16 mins likewise. */
typedef struct {
    float d, dmin;
    __m256i sc;  /* int16 x16 */
    __m256i mn;  /* int16 x16 (Q2_K, Q4_K, Q5_K) */
    __m256i hb;  /* high bits (Q3_K hmask, Q5_K qh, Q6_K qh of both halves as needed) */
} kstate;

/* Q4_K/Q5_K: the eight 6-bit scales and mins from their 12 bytes, as 32-bit word
 * operations (scales 0-3 and mins 0-3 are the low 6 bits of bytes 0-3 and 4-7; scales and
 * mins 4-7 take their low 4 bits from the nibbles of bytes 8-11 and their top 2 bits from
 * the top of bytes 0-3 and 4-7), each repeated for the two 16-element halves of a group. */
AI void q45k_scales(const uint8_t *s12, __m256i *sc16, __m256i *mn16) {
    uint32_t a, b, c;
    memcpy(&a, s12, 4);
    memcpy(&b, s12 + 4, 4);
    memcpy(&c, s12 + 8, 4);
    const uint32_t sc_lo = a & 0x3f3f3f3fu, mn_lo = b & 0x3f3f3f3fu;
    const uint32_t sc_hi = (c & 0x0f0f0f0fu) | ((a >> 2) & 0x30303030u);
    const uint32_t mn_hi = ((c >> 4) & 0x0f0f0f0fu) | ((b >> 2) & 0x30303030u);
    const __m128i v = _mm_setr_epi32((int)sc_lo, (int)sc_hi, (int)mn_lo, (int)mn_hi);
    const __m128i dup_lo = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    const __m128i dup_hi = _mm_setr_epi8(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
    *sc16 = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(v, dup_lo));
    *mn16 = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(v, dup_hi));
}

AI void k_prepare(const int f, const uint8_t *p, kstate *s) {
    switch (f) {
    case K_Q2: {
        const block_q2_K *k = (const block_q2_K *)p;
        s->d = h2f(k->d);
        s->dmin = h2f(k->dmin);
        const __m128i raw = _mm_loadu_si128((const __m128i *)k->scales);
        const __m128i m4 = _mm_set1_epi8(0x0f);
        s->sc = _mm256_cvtepu8_epi16(_mm_and_si128(raw, m4));
        s->mn = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), m4));
        return;
    }
    case K_Q3: {
        const block_q3_K *k = (const block_q3_K *)p;
        s->d = h2f(k->d);
        /* low 4 bits: nibbles of bytes 0-7 (low: scales 0-7, high: 8-15); top 2 bits of
         * scale 4m+k: bits 2m..2m+1 of byte 8+k */
        const __m128i raw = _mm_loadl_epi64((const __m128i *)k->scales);
        const __m128i m4 = _mm_set1_epi8(0x0f);
        const __m128i lo = _mm_unpacklo_epi64(_mm_and_si128(raw, m4), _mm_and_si128(_mm_srli_epi16(raw, 4), m4));
        uint32_t hw;
        memcpy(&hw, k->scales + 8, 4);
        const __m128i hi = _mm_and_si128(_mm_srlv_epi32(_mm_set1_epi32((int)hw), _mm_setr_epi32(0, 2, 4, 6)),
                                         _mm_set1_epi8(3));
        const __m128i v = _mm_sub_epi8(_mm_or_si128(lo, _mm_slli_epi16(hi, 4)), _mm_set1_epi8(32));
        s->sc = _mm256_cvtepi8_epi16(v);
        s->hb = _mm256_loadu_si256((const __m256i *)k->hmask);
        return;
    }
    case K_Q4: {
        const block_q4_K *k = (const block_q4_K *)p;
        s->d = h2f(k->d);
        s->dmin = h2f(k->dmin);
        q45k_scales(k->scales, &s->sc, &s->mn);
        return;
    }
    case K_Q5: {
        const block_q5_K *k = (const block_q5_K *)p;
        s->d = h2f(k->d);
        s->dmin = h2f(k->dmin);
        q45k_scales(k->scales, &s->sc, &s->mn);
        s->hb = _mm256_loadu_si256((const __m256i *)k->qh);
        return;
    }
    case K_Q6: {
        const block_q6_K *k = (const block_q6_K *)p;
        s->d = h2f(k->d);
        s->sc = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)k->scales));
        return;
    }
    default: {
        const block_iq4_xs *k = (const block_iq4_xs *)p;
        s->d = h2f(k->d);
        /* group g: low 4 bits in nibble g%2 of scales_l[g/2], top 2 bits at 2g of scales_h */
        uint32_t l;
        memcpy(&l, k->scales_l, 4);
        const __m128i lv = _mm_cvtsi32_si128((int)l);
        const __m128i m4 = _mm_set1_epi8(0x0f);
        const __m128i nib = _mm_unpacklo_epi8(_mm_and_si128(lv, m4), _mm_and_si128(_mm_srli_epi16(lv, 4), m4));
        const __m128i hi = _mm_cvtsi64_si128((long long)_pdep_u64(k->scales_h, 0x0303030303030303ull));
        const __m128i ls = _mm_sub_epi8(_mm_or_si128(nib, _mm_slli_epi16(hi, 4)), _mm_set1_epi8(32));
        const __m128i dup = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
        s->sc = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(ls, dup));
        return;
    }
    }
}

/* int16 multiplier for chunk c (elements 32c..32c+31): scale 2c in lanes 0-7 (elements
 * 0..15 of the chunk after vpmaddubsw), scale 2c+1 in lanes 8-15. */
AI __m256i k_chunk_scale(__m256i sc16, int c) {
    const __m256i pair = _mm256_permutevar8x32_epi32(sc16, _mm256_set1_epi32(c));
    return _mm256_shuffle_epi8(pair, _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3,
                                                       2, 3, 2, 3, 2, 3, 2, 3, 2, 3));
}

/* Byte-wise: bit `from` of each byte moved to bit `to` (other bits cleared). */
AI __m256i bit_move(__m256i v, const int from, const int to) {
    const __m256i m = _mm256_set1_epi8((char)(1 << to));
    if (from == to) return _mm256_and_si256(v, m);
    if (from < to) return _mm256_and_si256(_mm256_slli_epi16(v, to - from), m);
    return _mm256_and_si256(_mm256_srli_epi16(v, from - to), m);
}

/* The 32 levels of chunk c (unsigned, except IQ4_XS: signed). */
AI __m256i k_levels(const int f, const uint8_t *p, const kstate *s, const int c) {
    const __m256i m4 = _mm256_set1_epi8(0x0f), m3 = _mm256_set1_epi8(3);
    switch (f) {
    case K_Q2: {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(((const block_q2_K *)p)->qs + 32 * (c / 4)));
        return _mm256_and_si256(_mm256_srli_epi16(q, 2 * (c % 4)), m3);
    }
    case K_Q3: {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(((const block_q3_K *)p)->qs + 32 * (c / 4)));
        const __m256i lo = _mm256_and_si256(_mm256_srli_epi16(q, 2 * (c % 4)), m3);
        return _mm256_or_si256(lo, bit_move(s->hb, c, 2)); /* hmask bit c (c = 4*half + plane) */
    }
    case K_Q4: {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(((const block_q4_K *)p)->qs + 32 * (c / 2)));
        return c % 2 ? _mm256_and_si256(_mm256_srli_epi16(q, 4), m4) : _mm256_and_si256(q, m4);
    }
    case K_Q5: {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(((const block_q5_K *)p)->qs + 32 * (c / 2)));
        const __m256i lo = c % 2 ? _mm256_and_si256(_mm256_srli_epi16(q, 4), m4) : _mm256_and_si256(q, m4);
        return _mm256_or_si256(lo, bit_move(s->hb, c, 4));
    }
    case K_Q6: {
        const block_q6_K *k = (const block_q6_K *)p;
        const int h = c / 4, kk = c % 4;
        const __m256i ql = _mm256_loadu_si256((const __m256i *)(k->ql + 64 * h + 32 * (kk % 2)));
        const __m256i qh = _mm256_loadu_si256((const __m256i *)(k->qh + 32 * h));
        const __m256i lo = kk / 2 ? _mm256_and_si256(_mm256_srli_epi16(ql, 4), m4) : _mm256_and_si256(ql, m4);
        const __m256i m30 = _mm256_set1_epi8(0x30);
        __m256i hi;
        if (kk == 0) hi = _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30);
        else if (kk == 1) hi = _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30);
        else if (kk == 2) hi = _mm256_and_si256(qh, m30);
        else hi = _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30);
        return _mm256_or_si256(lo, hi);
    }
    default: {
        const __m256i kv = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)strata_kvalues_iq4nl));
        return _mm256_shuffle_epi8(kv, nibbles32(((const block_iq4_xs *)p)->qs + 16 * c));
    }
    }
}

/* One weight row x NT tokens (up to 8): per 32-element chunk the row's levels and scale
 * vector are built once and used for every token; int32 sums per token are scaled into
 * float once per super-block. */
AI void ktile1(const int f, const int NT, int64_t cols, const uint8_t *w, const uint8_t *x, size_t xs, float *y,
               size_t ys) {
    const int64_t nsb = cols / QK_K;
    const int has_min = f == K_Q2 || f == K_Q4 || f == K_Q5;
    const int offset = f == K_Q3 ? 4 : f == K_Q6 ? 32 : 0; /* levels stored as value + offset */
    __m256 acc[8];
#pragma GCC unroll 8
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nsb; i++) {
        kstate st;
        const uint8_t *wb = w + i * k_bytes(f);
        k_prepare(f, wb, &st);
        const block_q8_K *xb[8];
#pragma GCC unroll 8
        for (int t = 0; t < NT; t++) xb[t] = (const block_q8_K *)(x + t * xs) + i;
        __m256i isum[8];
#pragma GCC unroll 8
        for (int t = 0; t < NT; t++) isum[t] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int c = 0; c < 8; c++) {
            const __m256i lv = k_levels(f, wb, &st, c);
            const __m256i la = f == K_IQ4XS ? _mm256_abs_epi8(lv) : lv;
            const __m256i sv = k_chunk_scale(st.sc, c);
#pragma GCC unroll 8
            for (int t = 0; t < NT; t++) {
                const __m256i xv = _mm256_loadu_si256((const __m256i *)(xb[t]->qs + 32 * c));
                const __m256i p = f == K_IQ4XS ? _mm256_maddubs_epi16(la, _mm256_sign_epi8(xv, lv))
                                               : _mm256_maddubs_epi16(lv, xv);
                isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(p, sv));
            }
        }
        const __m256 dv = _mm256_set1_ps(st.d), dmv = _mm256_set1_ps(st.dmin);
#pragma GCC unroll 8
        for (int t = 0; t < NT; t++) {
            __m256i is = isum[t];
            if (offset || has_min) {
                const __m256i bs = _mm256_loadu_si256((const __m256i *)xb[t]->bsums);
                if (offset) is = _mm256_sub_epi32(is, _mm256_slli_epi32(_mm256_madd_epi16(st.sc, bs), offset == 4 ? 2 : 5));
                const __m256 dx = _mm256_broadcast_ss(&xb[t]->d);
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is), _mm256_mul_ps(dv, dx), acc[t]);
                if (has_min)
                    acc[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(st.mn, bs)), _mm256_mul_ps(dmv, dx),
                                              acc[t]);
            } else {
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is), _mm256_mul_ps(dv, _mm256_broadcast_ss(&xb[t]->d)), acc[t]);
            }
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < NT; t++) y[t * ys] = hsum_ps(acc[t]);
}

/* ---- instantiation ------------------------------------------------------------------------ */

/* A tile entry point per format: full tiles of 2 rows x 4 tokens (and 4 x 1 for single
 * tokens), smaller shapes for the edges. */
#define TILE_ENTRY(name, body)                                                                                    \
    static void tile_##name(int64_t cols, const uint8_t *w, size_t ws, int nr, const uint8_t *x, size_t xs, int nt, \
                            float *y, size_t ys) {                                                                \
        if (nt == 1) {                                                                                            \
            int r = 0;                                                                                            \
            for (; r + 4 <= nr; r += 4) body(4, 1, cols, w + r * ws, ws, x, xs, y + r, ys);                       \
            for (; r + 2 <= nr; r += 2) body(2, 1, cols, w + r * ws, ws, x, xs, y + r, ys);                       \
            for (; r < nr; r++) body(1, 1, cols, w + r * ws, ws, x, xs, y + r, ys);                               \
            return;                                                                                               \
        }                                                                                                         \
        for (int r = 0; r < nr;) {                                                                                \
            const int mr = nr - r >= 2 ? 2 : 1;                                                                   \
            for (int t = 0; t < nt;) {                                                                            \
                const int k = nt - t >= 4 ? 4 : nt - t;                                                           \
                const uint8_t *wr = w + r * ws, *xt = x + t * xs;                                                 \
                float *yt = y + t * ys + r;                                                                       \
                if (mr == 2) {                                                                                    \
                    if (k == 4) body(2, 4, cols, wr, ws, xt, xs, yt, ys);                                         \
                    else if (k == 3) body(2, 3, cols, wr, ws, xt, xs, yt, ys);                                    \
                    else if (k == 2) body(2, 2, cols, wr, ws, xt, xs, yt, ys);                                    \
                    else body(2, 1, cols, wr, ws, xt, xs, yt, ys);                                                \
                } else {                                                                                          \
                    if (k == 4) body(1, 4, cols, wr, ws, xt, xs, yt, ys);                                         \
                    else if (k == 3) body(1, 3, cols, wr, ws, xt, xs, yt, ys);                                    \
                    else if (k == 2) body(1, 2, cols, wr, ws, xt, xs, yt, ys);                                    \
                    else body(1, 1, cols, wr, ws, xt, xs, yt, ys);                                                \
                }                                                                                                 \
                t += k;                                                                                           \
            }                                                                                                     \
            r += mr;                                                                                              \
        }                                                                                                         \
    }

#define F32_BODY(MR, NT, ...) ftile(FF_F32, MR, NT, __VA_ARGS__)
#define F16_BODY(MR, NT, ...) ftile(FF_F16, MR, NT, __VA_ARGS__)
#define BF16_BODY(MR, NT, ...) ftile(FF_BF16, MR, NT, __VA_ARGS__)

/* 32-element formats: rows in fours, tokens in tiles of up to 4. */
#define B_ENTRY(name, fmt)                                                                                        \
    static void tile_##name(int64_t cols, const uint8_t *w, size_t ws, int nr, const uint8_t *x, size_t xs, int nt, \
                            float *y, size_t ys) {                                                                \
        for (int r = 0; r < nr; r += 4) {                                                                         \
            const int n4 = nr - r < 4 ? nr - r : 4;                                                               \
            for (int t = 0; t < nt;) {                                                                            \
                const int k = nt - t >= 4 ? 4 : nt - t;                                                           \
                const uint8_t *wr = w + r * ws, *xt = x + t * xs;                                                 \
                float *yt = y + t * ys + r;                                                                       \
                if (k == 4) btile4(fmt, 4, cols, wr, ws, n4, xt, xs, yt, ys);                                     \
                else if (k == 3) btile4(fmt, 3, cols, wr, ws, n4, xt, xs, yt, ys);                                \
                else if (k == 2) btile4(fmt, 2, cols, wr, ws, n4, xt, xs, yt, ys);                                \
                else btile4(fmt, 1, cols, wr, ws, n4, xt, xs, yt, ys);                                            \
                t += k;                                                                                           \
            }                                                                                                     \
        }                                                                                                         \
    }

#ifndef K_NT8
#define K_NT8 1
#endif
/* K-quants: one row at a time, tokens in tiles of up to 8. */
#define K_ENTRY(name, fmt)                                                                                        \
    static void tile_##name(int64_t cols, const uint8_t *w, size_t ws, int nr, const uint8_t *x, size_t xs, int nt, \
                            float *y, size_t ys) {                                                                \
        for (int r = 0; r < nr; r++) {                                                                            \
            for (int t = 0; t < nt;) {                                                                            \
                const int left = nt - t;                                                                          \
                const uint8_t *wr = w + r * ws, *xt = x + t * xs;                                                 \
                float *yt = y + t * ys + r;                                                                       \
                if (left >= 8 && K_NT8) { ktile1(fmt, 8, cols, wr, xt, xs, yt, ys); t += 8; }                     \
                else if (left >= 4) { ktile1(fmt, 4, cols, wr, xt, xs, yt, ys); t += 4; }                         \
                else if (left >= 2) { ktile1(fmt, 2, cols, wr, xt, xs, yt, ys); t += 2; }                         \
                else { ktile1(fmt, 1, cols, wr, xt, xs, yt, ys); t += 1; }                                        \
            }                                                                                                     \
        }                                                                                                         \
    }

TILE_ENTRY(f32, F32_BODY)
TILE_ENTRY(f16, F16_BODY)
TILE_ENTRY(bf16, BF16_BODY)
B_ENTRY(q4_0, B_Q4_0)
B_ENTRY(q4_1, B_Q4_1)
B_ENTRY(q5_0, B_Q5_0)
B_ENTRY(q5_1, B_Q5_1)
B_ENTRY(q8_0, B_Q8_0)
B_ENTRY(iq4_nl, B_IQ4_NL)
K_ENTRY(q2_k, K_Q2)
K_ENTRY(q3_k, K_Q3)
K_ENTRY(q4_k, K_Q4)
K_ENTRY(q5_k, K_Q5)
K_ENTRY(q6_k, K_Q6)
K_ENTRY(iq4_xs, K_IQ4XS)

void cpu_kernels_avx2(cpu_kernel t[STRATA_TYPE_COUNT]) {
    t[STRATA_TYPE_F32] = (cpu_kernel){CPU_ACT_F32, tile_f32, 4, 4};
    t[STRATA_TYPE_F16] = (cpu_kernel){CPU_ACT_F16, tile_f16, 4, 4};
    t[STRATA_TYPE_BF16] = (cpu_kernel){CPU_ACT_BF16, tile_bf16, 4, 4};
    t[STRATA_TYPE_Q4_0] = (cpu_kernel){CPU_ACT_Q8, tile_q4_0, 4, 4};
    t[STRATA_TYPE_Q4_1] = (cpu_kernel){CPU_ACT_Q8S, tile_q4_1, 4, 4};
    t[STRATA_TYPE_Q5_0] = (cpu_kernel){CPU_ACT_Q8, tile_q5_0, 4, 4};
    t[STRATA_TYPE_Q5_1] = (cpu_kernel){CPU_ACT_Q8S, tile_q5_1, 4, 4};
    t[STRATA_TYPE_Q8_0] = (cpu_kernel){CPU_ACT_Q8, tile_q8_0, 4, 4};
    t[STRATA_TYPE_IQ4_NL] = (cpu_kernel){CPU_ACT_Q8, tile_iq4_nl, 4, 4};
    t[STRATA_TYPE_Q2_K] = (cpu_kernel){CPU_ACT_Q8K, tile_q2_k, 4, 8};
    t[STRATA_TYPE_Q3_K] = (cpu_kernel){CPU_ACT_Q8K, tile_q3_k, 4, 8};
    t[STRATA_TYPE_Q4_K] = (cpu_kernel){CPU_ACT_Q8K, tile_q4_k, 4, 8};
    t[STRATA_TYPE_Q5_K] = (cpu_kernel){CPU_ACT_Q8K, tile_q5_k, 4, 8};
    t[STRATA_TYPE_Q6_K] = (cpu_kernel){CPU_ACT_Q8K, tile_q6_k, 4, 8};
    t[STRATA_TYPE_IQ4_XS] = (cpu_kernel){CPU_ACT_Q8K, tile_iq4_xs, 4, 8};
}
