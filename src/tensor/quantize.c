/* Row quantization: the reference (deterministic, no importance matrix) algorithms of the
 * GGUF formats, so that a file we write decodes like one written by llama.cpp.
 *
 * 32-element formats: one scale (and min) per block from the block's extreme values.
 * K-quants: per-group scales found by weighted least squares over a small search of
 * candidate scales (fit_signed for symmetric groups, fit_asym for groups with a min, the
 * Q3_K variant refining one element at a time), then the group scales quantized to 4-8 bits
 * against one fp16 super-block scale, and the elements requantized with the final scales.
 * Float operations follow the reference's order where it decides a rounding. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "core/fp16.h"
#include "tensor/blocks.h"
#include "tensor/quant.h"
#include "tensor/quant_internal.h"

#define GROUP_EPS 1e-15f

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int iclamp(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* ---- plain types -------------------------------------------------------------------- */

static void q_f32(const float *x, void *dst, int64_t n) { memcpy(dst, x, (size_t)n * sizeof(float)); }

static void q_f16(const float *x, void *dst, int64_t n) {
    uint8_t *p = dst;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = strata_f32_to_fp16(x[i]);
        memcpy(p + 2 * i, &h, 2);
    }
}

static void q_bf16(const float *x, void *dst, int64_t n) {
    uint8_t *p = dst;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = strata_f32_to_bf16(x[i]);
        memcpy(p + 2 * i, &h, 2);
    }
}

/* ---- 32-element block types --------------------------------------------------------- */

/* The element of largest magnitude (its sign kept), first one on ties. */
static float signed_absmax(const float *x, int n, float *amax_out) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++) {
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    if (amax_out) *amax_out = amax;
    return max;
}

static void minmax(const float *x, int n, float *mn, float *mx) {
    float lo = FLT_MAX, hi = -FLT_MAX;
    for (int j = 0; j < n; j++) {
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    *mn = lo;
    *mx = hi;
}

static void q_q8_0(const float *x, void *dst, int64_t n) {
    block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        float amax = 0.0f;
        for (int j = 0; j < QK8_0; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = strata_f32_to_fp16(d);
        for (int j = 0; j < QK8_0; j++) y[i].qs[j] = (int8_t)roundf(x[j] * id);
    }
}

static void q_q8_1(const float *x, void *dst, int64_t n) {
    block_q8_1 *y = dst;
    for (int64_t i = 0; i < n / QK8_1; i++, x += QK8_1) {
        float amax = 0.0f;
        for (int j = 0; j < QK8_1; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int j = 0; j < QK8_1; j++) {
            y[i].qs[j] = (int8_t)roundf(x[j] * id);
            sum += y[i].qs[j];
        }
        y[i].d = strata_f32_to_fp16(d);
        y[i].s = strata_f32_to_fp16((float)sum * d);
    }
}

static void q_q8_k(const float *x, void *dst, int64_t n) {
    block_q8_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float amax;
        const float max = signed_absmax(x, QK_K, &amax);
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        /* -127/max maps the extreme element to -127 exactly; others stay within +-127. */
        const float iscale = -127.0f / max;
        for (int j = 0; j < QK_K; j++) y[i].qs[j] = (int8_t)imin(127, quant_nearest_int(iscale * x[j]));
        for (int g = 0; g < QK_K / 16; g++) {
            int s = 0;
            for (int l = 0; l < 16; l++) s += y[i].qs[16 * g + l];
            y[i].bsums[g] = (int16_t)s;
        }
        y[i].d = 1.0f / iscale;
    }
}

static void q_q4_0(const float *x, void *dst, int64_t n) {
    block_q4_0 *y = dst;
    for (int64_t i = 0; i < n / QK4_0; i++, x += QK4_0) {
        /* The extreme element becomes level 0 (-8 * d), using the asymmetric range fully. */
        const float d = signed_absmax(x, QK4_0, NULL) / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = strata_f32_to_fp16(d);
        for (int j = 0; j < 16; j++) {
            int lo = imin(15, (int8_t)(x[j] * id + 8.5f));
            int hi = imin(15, (int8_t)(x[j + 16] * id + 8.5f));
            y[i].qs[j] = (uint8_t)(lo | (hi << 4));
        }
    }
}

static void q_q4_1(const float *x, void *dst, int64_t n) {
    block_q4_1 *y = dst;
    for (int64_t i = 0; i < n / QK4_1; i++, x += QK4_1) {
        float mn, mx;
        minmax(x, QK4_1, &mn, &mx);
        const float d = (mx - mn) / 15.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = strata_f32_to_fp16(d);
        y[i].m = strata_f32_to_fp16(mn);
        for (int j = 0; j < 16; j++) {
            int lo = imin(15, (int8_t)((x[j] - mn) * id + 0.5f));
            int hi = imin(15, (int8_t)((x[j + 16] - mn) * id + 0.5f));
            y[i].qs[j] = (uint8_t)(lo | (hi << 4));
        }
    }
}

static void pack5(const int *q, uint8_t qs[16], uint8_t qh_out[4]) {
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        qs[j] = (uint8_t)((q[j] & 0x0f) | ((q[j + 16] & 0x0f) << 4));
        qh |= (uint32_t)((q[j] >> 4) & 1) << j;
        qh |= (uint32_t)((q[j + 16] >> 4) & 1) << (j + 16);
    }
    memcpy(qh_out, &qh, 4);
}

static void q_q5_0(const float *x, void *dst, int64_t n) {
    block_q5_0 *y = dst;
    for (int64_t i = 0; i < n / QK5_0; i++, x += QK5_0) {
        const float d = signed_absmax(x, QK5_0, NULL) / -16.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = strata_f32_to_fp16(d);
        int q[32];
        for (int j = 0; j < 32; j++) q[j] = imin(31, (int8_t)(x[j] * id + 16.5f));
        pack5(q, y[i].qs, y[i].qh);
    }
}

static void q_q5_1(const float *x, void *dst, int64_t n) {
    block_q5_1 *y = dst;
    for (int64_t i = 0; i < n / QK5_1; i++, x += QK5_1) {
        float mn, mx;
        minmax(x, QK5_1, &mn, &mx);
        const float d = (mx - mn) / 31.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = strata_f32_to_fp16(d);
        y[i].m = strata_f32_to_fp16(mn);
        int q[32];
        for (int j = 0; j < 32; j++) q[j] = (uint8_t)((x[j] - mn) * id + 0.5f);
        pack5(q, y[i].qs, y[i].qh);
    }
}

static int iq4nl_best_index(float v) {
    /* nearest of the 16 sorted levels */
    const int8_t *k = strata_kvalues_iq4nl;
    if (v <= k[0]) return 0;
    if (v >= k[15]) return 15;
    int lo = 0, hi = 15;
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (v < k[mid]) hi = mid; else lo = mid;
    }
    return (v - k[lo] < k[hi] - v) ? lo : hi;
}

/* IQ4_NL / IQ4_XS group fit: scale from the extreme element, then a small search over
 * scales with a weighted least-squares refit (weights x^2), keeping the best. Returns the
 * scale; L gets the level indices. */
static float iq4_fit(const float *x, int n, uint8_t *L) {
    float amax;
    const float max = signed_absmax(x, n, &amax);
    if (amax < GROUP_EPS) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float d = -max / 127.0f; /* extreme element at level -127 */
    float id = 1.0f / d, sumqx = 0, sumq2 = 0;
    for (int j = 0; j < n; j++) {
        const int l = iq4nl_best_index(id * x[j]);
        L[j] = (uint8_t)l;
        const float q = strata_kvalues_iq4nl[l], w = x[j] * x[j];
        sumqx += w * q * x[j];
        sumq2 += w * q * q;
    }
    d = sumq2 > 0 ? sumqx / sumq2 : d;
    float best = d * sumqx;
    for (int itry = -7; itry <= 7; itry++) {
        id = (itry + 127.0f) / -max;
        sumqx = sumq2 = 0;
        for (int j = 0; j < n; j++) {
            const float q = strata_kvalues_iq4nl[iq4nl_best_index(id * x[j])], w = x[j] * x[j];
            sumqx += w * q * x[j];
            sumq2 += w * q * q;
        }
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            d = sumqx / sumq2;
            best = d * sumqx;
            for (int j = 0; j < n; j++) L[j] = (uint8_t)iq4nl_best_index(id * x[j]);
        }
    }
    return d;
}

static void q_iq4_nl(const float *x, void *dst, int64_t n) {
    block_iq4_nl *y = dst;
    for (int64_t i = 0; i < n / QK4_NL; i++, x += QK4_NL) {
        uint8_t L[32];
        const float d = iq4_fit(x, 32, L);
        y[i].d = strata_f32_to_fp16(d);
        /* requantize against the stored (rounded) scale */
        const float dd = strata_fp16_to_f32(y[i].d);
        if (dd != 0.0f)
            for (int j = 0; j < 32; j++) L[j] = (uint8_t)iq4nl_best_index(x[j] / dd);
        for (int j = 0; j < 16; j++) y[i].qs[j] = (uint8_t)(L[j] | (L[j + 16] << 4));
    }
}

static void q_iq4_xs(const float *x, void *dst, int64_t n) {
    block_iq4_xs *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        uint8_t L[QK_K];
        float scales[8], amax = 0, max_scale = 0;
        for (int g = 0; g < 8; g++) {
            scales[g] = iq4_fit(x + 32 * g, 32, L + 32 * g);
            if (fabsf(scales[g]) > amax) {
                amax = fabsf(scales[g]);
                max_scale = scales[g];
            }
        }
        memset(&y[i], 0, sizeof y[i]);
        if (amax < GROUP_EPS) continue;
        const float d = -max_scale / 32.0f, id = 1.0f / d;
        y[i].d = strata_f32_to_fp16(d);
        const float dd = strata_fp16_to_f32(y[i].d);
        for (int g = 0; g < 8; g++) {
            const int ls = iclamp(quant_nearest_int(id * scales[g]), -32, 31) + 32;
            y[i].scales_l[g / 2] |= (uint8_t)((ls & 0x0f) << (4 * (g % 2)));
            y[i].scales_h |= (uint16_t)((ls >> 4) << (2 * g));
            const float dl = dd * (float)(ls - 32);
            if (dl != 0.0f)
                for (int j = 0; j < 32; j++) L[32 * g + j] = (uint8_t)iq4nl_best_index(x[32 * g + j] / dl);
            for (int j = 0; j < 16; j++)
                y[i].qs[16 * g + j] = (uint8_t)(L[32 * g + j] | (L[32 * g + j + 16] << 4));
        }
    }
}

/* ---- K-quant group fits ----------------------------------------------------------------- */

/* Symmetric fit of n values to levels -nmax..nmax-1 (stored as 0..2*nmax-1 in L) with
 * weights x^2: start from the scale that maps the extreme element to -nmax, then try 18
 * nearby scales and keep the one with the largest weighted-least-squares gain. */
static float fit_signed(int n, int nmax, const float *x, int8_t *L) {
    float amax;
    const float max = signed_absmax(x, n, &amax);
    if (amax < GROUP_EPS) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float best_scale = 0.0f, best = 0.0f;
    for (int step = 0; step <= 18; step++) {
        /* step 0 is the plain scale; steps 1..18 are is = -9..9 without 0 */
        int is = step == 0 ? 0 : (step <= 9 ? step - 10 : step - 9);
        const float iscale = step == 0 ? -(float)nmax / max : -((float)nmax + 0.1f * (float)is) / max;
        float sumlx = 0.0f, suml2 = 0.0f;
        for (int i = 0; i < n; i++) {
            const int l = iclamp(quant_nearest_int(iscale * x[i]), -nmax, nmax - 1);
            const float w = x[i] * x[i];
            sumlx += w * x[i] * (float)l;
            suml2 += w * (float)l * (float)l;
        }
        int take;
        if (step == 0) {
            best_scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
            best = best_scale * sumlx;
            take = 1;
        } else {
            take = suml2 > 0.0f && sumlx * sumlx > best * suml2;
            if (take) {
                best_scale = sumlx / suml2;
                best = best_scale * sumlx;
            }
        }
        if (take)
            for (int i = 0; i < n; i++)
                L[i] = (int8_t)(nmax + iclamp(quant_nearest_int(iscale * x[i]), -nmax, nmax - 1));
    }
    return best_scale;
}

/* Q3_K's group fit (levels -nmax..nmax-1, weights x^2): the plain scale, then up to five
 * passes that move single elements to the level their leave-one-out fit prefers whenever
 * that improves the weighted fit. L gets levels + nmax. */
static float fit_signed_refine(int n, int nmax, const float *x, int8_t *L) {
    float amax;
    const float max = signed_absmax(x, n, &amax);
    if (amax < GROUP_EPS) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    const float iscale = -(float)nmax / max;
    float sumlx = 0.0f, suml2 = 0.0f;
    for (int i = 0; i < n; i++) {
        const int l = iclamp(quant_nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)l;
        const float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    for (int pass = 0; pass < 5; pass++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * (float)L[i];
            if (slx <= 0.0f) continue;
            float sl2 = suml2 - w * (float)L[i] * (float)L[i];
            const int nl = iclamp(quant_nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
            if (nl == L[i]) continue;
            slx += w * x[i] * (float)nl;
            sl2 += w * (float)nl * (float)nl;
            if (sl2 > 0.0f && slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i] = (int8_t)nl;
                sumlx = slx;
                suml2 = sl2;
                changed++;
            }
        }
        if (!changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
    return sumlx / suml2;
}

/* Asymmetric fit x ~ scale * l - min with l in 0..nmax and min >= 0, minimizing the
 * weighted squared (or absolute, use_mad) error: the min/max scale first, then nstep+1
 * candidate scales (nmax + rmin + rdelta*k)/(max - min), each followed by the closed-form
 * weighted least-squares (scale, offset) for its levels. Returns scale; *neg_min = min. */
static float fit_asym(int n, int nmax, const float *x, const float *w, uint8_t *L, float *neg_min,
                      float rmin, float rdelta, int nstep, int use_mad) {
    float mn = x[0], mx = x[0], sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < mn) mn = x[i];
        if (x[i] > mx) mx = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (mn > 0) mn = 0;
    if (mx == mn) {
        memset(L, 0, (size_t)n);
        *neg_min = -mn;
        return 0.0f;
    }
    float iscale = (float)nmax / (mx - mn);
    float scale = 1.0f / iscale;
    float best_err = 0.0f;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)iclamp(quant_nearest_int(iscale * (x[i] - mn)), 0, nmax);
        float diff = scale * (float)L[i] + mn - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_err += w[i] * diff;
    }
    uint8_t Laux[32];
    for (int k = 0; k <= nstep; k++) {
        iscale = (rmin + rdelta * (float)k + (float)nmax) / (mx - mn);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            const int l = iclamp(quant_nearest_int(iscale * (x[i] - mn)), 0, nmax);
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * (float)l;
            sum_l2 += w[i] * (float)l * (float)l;
            sum_xl += w[i] * (float)l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D <= 0) continue;
        float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
        float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
        if (this_min > 0) {
            this_min = 0;
            this_scale = sum_xl / sum_l2;
        }
        float err = 0.0f;
        for (int i = 0; i < n; i++) {
            float diff = this_scale * (float)Laux[i] + this_min - x[i];
            diff = use_mad ? fabsf(diff) : diff * diff;
            err += w[i] * diff;
        }
        if (err < best_err) {
            memcpy(L, Laux, (size_t)n);
            best_err = err;
            scale = this_scale;
            mn = this_min;
        }
    }
    *neg_min = -mn;
    return scale;
}

/* ---- K-quants ------------------------------------------------------------------------- */

static void q_q2_k(const float *x, void *dst, int64_t n) {
    block_q2_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        uint8_t L[QK_K];
        float scales[16], mins[16], w[16], max_scale = 0, max_min = 0;
        for (int g = 0; g < 16; g++) {
            for (int l = 0; l < 16; l++) w[l] = fabsf(x[16 * g + l]);
            scales[g] = fit_asym(16, 3, x + 16 * g, w, L + 16 * g, &mins[g], -0.5f, 0.1f, 15, 1);
            if (scales[g] > max_scale) max_scale = scales[g];
            if (mins[g] > max_min) max_min = mins[g];
        }
        memset(y[i].scales, 0, sizeof y[i].scales);
        y[i].d = strata_f32_to_fp16(0.0f);
        y[i].dmin = strata_f32_to_fp16(0.0f);
        if (max_scale > 0) {
            const float iscale = 15.0f / max_scale;
            for (int g = 0; g < 16; g++) y[i].scales[g] = (uint8_t)quant_nearest_int(iscale * scales[g]);
            y[i].d = strata_f32_to_fp16(max_scale / 15.0f);
        }
        if (max_min > 0) {
            const float iscale = 15.0f / max_min;
            for (int g = 0; g < 16; g++) y[i].scales[g] |= (uint8_t)(quant_nearest_int(iscale * mins[g]) << 4);
            y[i].dmin = strata_f32_to_fp16(max_min / 15.0f);
        }
        const float dd = strata_fp16_to_f32(y[i].d), dm = strata_fp16_to_f32(y[i].dmin);
        for (int g = 0; g < 16; g++) {
            const float d = dd * (float)(y[i].scales[g] & 0x0f);
            if (d == 0.0f) continue;
            const float m = dm * (float)(y[i].scales[g] >> 4);
            for (int l = 0; l < 16; l++) L[16 * g + l] = (uint8_t)iclamp(quant_nearest_int((x[16 * g + l] + m) / d), 0, 3);
        }
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 32; l++) {
                const uint8_t *q = L + 128 * h + l;
                y[i].qs[32 * h + l] = (uint8_t)(q[0] | (q[32] << 2) | (q[64] << 4) | (q[96] << 6));
            }
    }
}

static void q_q3_k(const float *x, void *dst, int64_t n) {
    block_q3_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        int8_t L[QK_K];
        float scales[16], amax = 0, max_scale = 0;
        for (int g = 0; g < 16; g++) {
            scales[g] = fit_signed_refine(16, 4, x + 16 * g, L + 16 * g);
            if (fabsf(scales[g]) > amax) {
                amax = fabsf(scales[g]);
                max_scale = scales[g];
            }
        }
        memset(y[i].scales, 0, 12);
        if (max_scale != 0.0f) {
            const float iscale = -32.0f / max_scale;
            for (int g = 0; g < 16; g++) {
                const int l = iclamp((int8_t)quant_nearest_int(iscale * scales[g]), -32, 31) + 32;
                if (g < 8) y[i].scales[g] = (uint8_t)(l & 0x0f);
                else y[i].scales[g - 8] |= (uint8_t)((l & 0x0f) << 4);
                y[i].scales[8 + g % 4] |= (uint8_t)((l >> 4) << (2 * (g / 4)));
            }
            y[i].d = strata_f32_to_fp16(1.0f / iscale);
        } else {
            y[i].d = strata_f32_to_fp16(0.0f);
        }
        int8_t sc[16];
        q3k_unpack_scales(y[i].scales, sc);
        const float dd = strata_fp16_to_f32(y[i].d);
        for (int g = 0; g < 16; g++) {
            const float d = dd * (float)sc[g];
            if (d == 0.0f) continue;
            for (int l = 0; l < 16; l++) L[16 * g + l] = (int8_t)(iclamp(quant_nearest_int(x[16 * g + l] / d), -4, 3) + 4);
        }
        /* element 32*k + l (k = 0..7) keeps its high bit in bit k of hmask[l] */
        memset(y[i].hmask, 0, sizeof y[i].hmask);
        for (int j = 0; j < QK_K; j++) {
            if (L[j] > 3) {
                y[i].hmask[j % 32] |= (uint8_t)(1u << (j / 32));
                L[j] = (int8_t)(L[j] - 4);
            }
        }
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 32; l++) {
                const int8_t *q = L + 128 * h + l;
                y[i].qs[32 * h + l] = (uint8_t)(q[0] | (q[32] << 2) | (q[64] << 4) | (q[96] << 6));
            }
    }
}

/* Shared by Q4_K (nmax 15) and Q5_K (nmax 31): 8 groups of 32 with scale and min, both
 * quantized to 6 bits against fp16 super-scales. L gets the final levels. */
static void qk_scale_min_block(const float *x, int nmax, float rmin, float rdelta, int nstep, uint16_t *d_out,
                               uint16_t *dmin_out, uint8_t sc_out[12], uint8_t L[QK_K]) {
    float scales[8], mins[8], w[32], max_scale = 0, max_min = 0;
    for (int g = 0; g < 8; g++) {
        const float *xg = x + 32 * g;
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += xg[l] * xg[l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) w[l] = av_x + fabsf(xg[l]);
        scales[g] = fit_asym(32, nmax, xg, w, L + 32 * g, &mins[g], rmin, rdelta, nstep, 0);
        if (scales[g] > max_scale) max_scale = scales[g];
        if (mins[g] > max_min) max_min = mins[g];
    }
    const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
    const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
    memset(sc_out, 0, 12);
    for (int g = 0; g < 8; g++) {
        const uint8_t ls = (uint8_t)imin(63, (uint8_t)quant_nearest_int(inv_scale * scales[g]));
        const uint8_t lm = (uint8_t)imin(63, (uint8_t)quant_nearest_int(inv_min * mins[g]));
        if (g < 4) {
            sc_out[g] = ls;
            sc_out[g + 4] = lm;
        } else {
            sc_out[g + 4] = (uint8_t)((ls & 0x0f) | ((lm & 0x0f) << 4));
            sc_out[g - 4] |= (uint8_t)((ls >> 4) << 6);
            sc_out[g] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    *d_out = strata_f32_to_fp16(max_scale / 63.0f);
    *dmin_out = strata_f32_to_fp16(max_min / 63.0f);
    const float dd = strata_fp16_to_f32(*d_out), dm = strata_fp16_to_f32(*dmin_out);
    for (int g = 0; g < 8; g++) {
        uint8_t sc, m;
        k_get_scale_min(g, sc_out, &sc, &m);
        const float d = dd * (float)sc;
        if (d == 0.0f) continue;
        const float mm = dm * (float)m;
        for (int l = 0; l < 32; l++) L[32 * g + l] = (uint8_t)iclamp(quant_nearest_int((x[32 * g + l] + mm) / d), 0, nmax);
    }
}

static void q_q4_k(const float *x, void *dst, int64_t n) {
    block_q4_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        uint8_t L[QK_K];
        qk_scale_min_block(x, 15, -1.0f, 0.1f, 20, &y[i].d, &y[i].dmin, y[i].scales, L);
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 32; l++) y[i].qs[32 * j + l] = (uint8_t)(L[64 * j + l] | (L[64 * j + l + 32] << 4));
    }
}

static void q_q5_k(const float *x, void *dst, int64_t n) {
    block_q5_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        uint8_t L[QK_K];
        qk_scale_min_block(x, 31, -0.5f, 0.1f, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
        memset(y[i].qh, 0, sizeof y[i].qh);
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 32; l++) {
                const int l1 = L[64 * j + l], l2 = L[64 * j + l + 32];
                y[i].qs[32 * j + l] = (uint8_t)((l1 & 0x0f) | ((l2 & 0x0f) << 4));
                y[i].qh[l] |= (uint8_t)(((l1 >> 4) << (2 * j)) | ((l2 >> 4) << (2 * j + 1)));
            }
    }
}

static void q_q6_k(const float *x, void *dst, int64_t n) {
    block_q6_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        int8_t L[QK_K];
        float scales[16], amax = 0, max_scale = 0;
        for (int g = 0; g < 16; g++) {
            scales[g] = fit_signed(16, 32, x + 16 * g, L + 16 * g);
            if (fabsf(scales[g]) > amax) {
                amax = fabsf(scales[g]);
                max_scale = scales[g];
            }
        }
        memset(&y[i], 0, sizeof y[i]);
        if (amax < GROUP_EPS) continue;
        const float iscale = -128.0f / max_scale;
        y[i].d = strata_f32_to_fp16(1.0f / iscale);
        for (int g = 0; g < 16; g++) y[i].scales[g] = (int8_t)imin(127, quant_nearest_int(iscale * scales[g]));
        const float dd = strata_fp16_to_f32(y[i].d);
        for (int g = 0; g < 16; g++) {
            const float d = dd * (float)y[i].scales[g];
            if (d == 0.0f) continue;
            for (int l = 0; l < 16; l++) L[16 * g + l] = (int8_t)(iclamp(quant_nearest_int(x[16 * g + l] / d), -32, 31) + 32);
        }
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 32; l++) {
                const int8_t *q = L + 128 * h + l;
                y[i].ql[64 * h + l] = (uint8_t)((q[0] & 0x0f) | ((q[64] & 0x0f) << 4));
                y[i].ql[64 * h + l + 32] = (uint8_t)((q[32] & 0x0f) | ((q[96] & 0x0f) << 4));
                y[i].qh[32 * h + l] = (uint8_t)((q[0] >> 4) | ((q[32] >> 4) << 2) | ((q[64] >> 4) << 4) | ((q[96] >> 4) << 6));
            }
    }
}

typedef void (*quant_fn)(const float *src, void *dst, int64_t n);

static const quant_fn quant_table[STRATA_TYPE_COUNT] = {
    [STRATA_TYPE_F32] = q_f32,       [STRATA_TYPE_F16] = q_f16,     [STRATA_TYPE_BF16] = q_bf16,
    [STRATA_TYPE_Q4_0] = q_q4_0,     [STRATA_TYPE_Q4_1] = q_q4_1,   [STRATA_TYPE_Q5_0] = q_q5_0,
    [STRATA_TYPE_Q5_1] = q_q5_1,     [STRATA_TYPE_Q8_0] = q_q8_0,   [STRATA_TYPE_Q8_1] = q_q8_1,
    [STRATA_TYPE_Q2_K] = q_q2_k,     [STRATA_TYPE_Q3_K] = q_q3_k,   [STRATA_TYPE_Q4_K] = q_q4_k,
    [STRATA_TYPE_Q5_K] = q_q5_k,     [STRATA_TYPE_Q6_K] = q_q6_k,   [STRATA_TYPE_Q8_K] = q_q8_k,
    [STRATA_TYPE_IQ4_NL] = q_iq4_nl, [STRATA_TYPE_IQ4_XS] = q_iq4_xs,
};

bool strata_type_can_quantize(strata_type type) {
    return (unsigned)type < STRATA_TYPE_COUNT && quant_table[type] != NULL;
}

size_t strata_quantize_row(strata_type type, const float *src, void *dst, int64_t n) {
    STRATA_ASSERT(strata_type_can_quantize(type));
    STRATA_ASSERT(strata_type_row_ok(type, n));
    quant_table[type](src, dst, n);
    return strata_type_row_bytes(type, n);
}
