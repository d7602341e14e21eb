/* Scalar reference kernels: the dot product of one weight row with one activation row for
 * every supported weight type, in integer arithmetic per block the way the formats intend
 * (weights times 8-bit activations summed exactly, then one float multiply per block or
 * super-block). Every SIMD kernel is tested against these. */
#include <math.h>
#include <string.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/repack.h"
#include "core/fp16.h"
#include "core/status.h"
#include "tensor/quant.h"
#include "tensor/quant_internal.h"

/* ---- activation quantization ---------------------------------------------------------- */

size_t cpu_act_row_bytes(cpu_act act, int64_t cols) {
    switch (act) {
    case CPU_ACT_F32: return (size_t)cols * 4;
    case CPU_ACT_F16:
    case CPU_ACT_BF16: return (size_t)cols * 4;
    case CPU_ACT_Q8:
    case CPU_ACT_Q8S: return (size_t)(cols / 32) * 40;
    case CPU_ACT_Q8K: return (size_t)(cols / QK_K) * sizeof(block_q8_K);
    default: return 0;
    }
}

/* Q8_0 as the reference's SIMD quantizer computes it: d = amax / 127 stored as fp16,
 * q = round-half-even(x * (127 / amax)). */
static void act_q8_block(const float *x, float *d_out, float *s_out, int8_t *qs, int fp16_sum) {
    float amax = 0.0f;
    for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
    const float d = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f;
    int sum = 0;
    for (int j = 0; j < 32; j++) {
        qs[j] = (int8_t)cpu_round_even(x[j] * id);
        sum += qs[j];
    }
    *d_out = strata_fp16_to_f32(strata_f32_to_fp16(d));
    /* Q8_1 stores fp16(d * sum) with the unrounded d */
    *s_out = fp16_sum ? strata_fp16_to_f32(strata_f32_to_fp16(d * (float)sum)) : *d_out * (float)sum;
}

void cpu_quantize_act_scalar(cpu_act act, const float *x, void *dst, int64_t cols) {
    switch (act) {
    case CPU_ACT_F32: memcpy(dst, x, (size_t)cols * 4); break;
    case CPU_ACT_F16:
        for (int64_t i = 0; i < cols; i++) ((float *)dst)[i] = strata_fp16_to_f32(strata_f32_to_fp16(x[i]));
        break;
    case CPU_ACT_BF16:
        for (int64_t i = 0; i < cols; i++) ((float *)dst)[i] = strata_bf16_to_f32(strata_f32_to_bf16(x[i]));
        break;
    case CPU_ACT_Q8:
    case CPU_ACT_Q8S: {
        const int64_t nb = cols / 32;
        float *d = dst, *s = d + nb;
        int8_t *qs = (int8_t *)(s + nb);
        for (int64_t i = 0; i < nb; i++) act_q8_block(x + 32 * i, &d[i], &s[i], qs + 32 * i, act == CPU_ACT_Q8S);
        break;
    }
    case CPU_ACT_Q8K: strata_quantize_row(STRATA_TYPE_Q8_K, x, dst, cols); break;
    default: STRATA_ASSERT(0);
    }
}

/* ---- per-type dot products (one weight row . one activation row) ---------------------- */

typedef float (*dot_fn)(int64_t cols, const uint8_t *w, const uint8_t *x);

static float dot_f32(int64_t n, const uint8_t *w, const uint8_t *x) {
    float acc[8] = {0};
    for (int64_t i = 0; i < n; i += 8)
        for (int k = 0; k < 8 && i + k < n; k++) {
            float a, b;
            memcpy(&a, w + 4 * (i + k), 4);
            memcpy(&b, x + 4 * (i + k), 4);
            acc[k] += a * b;
        }
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

static float dot_f16(int64_t n, const uint8_t *w, const uint8_t *x) {
    float acc[8] = {0};
    for (int64_t i = 0; i < n; i += 8)
        for (int k = 0; k < 8 && i + k < n; k++) {
            uint16_t a;
            float b;
            memcpy(&a, w + 2 * (i + k), 2);
            memcpy(&b, x + 4 * (i + k), 4);
            acc[k] += strata_fp16_to_f32(a) * b;
        }
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

static float dot_bf16(int64_t n, const uint8_t *w, const uint8_t *x) {
    float acc[8] = {0};
    for (int64_t i = 0; i < n; i += 8)
        for (int k = 0; k < 8 && i + k < n; k++) {
            uint16_t a;
            float b;
            memcpy(&a, w + 2 * (i + k), 2);
            memcpy(&b, x + 4 * (i + k), 4);
            acc[k] += strata_bf16_to_f32(a) * b;
        }
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

static inline int dot32(const int8_t *a, const int8_t *b) {
    int s = 0;
    for (int j = 0; j < 32; j++) s += a[j] * b[j];
    return s;
}

static float dot_q8_0(int64_t n, const uint8_t *w, const uint8_t *x) {
    const block_q8_0 *bw = (const block_q8_0 *)w;
    const int64_t nb = n / 32;
    const float *xd = act_q8_d(x, nb);
    const int8_t *xq = act_q8_qs(x, nb);
    float sum = 0.0f;
    for (int64_t i = 0; i < nb; i++)
        sum += strata_fp16_to_f32(bw[i].d) * xd[i] * (float)dot32(bw[i].qs, xq + 32 * i);
    return sum;
}

/* One block's term of a Q4_0 row's dot product (shared by both layouts' tiles). */
static inline float q4_0_block_dot(const block_q4_0 *bw, const int8_t *xq, float xd) {
    int s = 0;
    for (int j = 0; j < 16; j++) s += ((bw->qs[j] & 0x0f) - 8) * xq[j] + ((bw->qs[j] >> 4) - 8) * xq[j + 16];
    return strata_fp16_to_f32(bw->d) * xd * (float)s;
}

static float dot_q4_0(int64_t n, const uint8_t *w, const uint8_t *x) {
    const block_q4_0 *bw = (const block_q4_0 *)w;
    const int64_t nb = n / 32;
    const float *xd = act_q8_d(x, nb);
    const int8_t *xq = act_q8_qs(x, nb);
    float sum = 0.0f;
    for (int64_t i = 0; i < nb; i++) sum += q4_0_block_dot(bw + i, xq + 32 * i, xd[i]);
    return sum;
}

/* Row r of the Q4_0 x8 group at w (repack.h): each block read back and taken as dot_q4_0
 * takes it, so the two layouts give the same bits. */
static float dot_q4_0_x8(int64_t n, const uint8_t *w, int r, const uint8_t *x) {
    const int64_t nb = n / 32;
    const float *xd = act_q8_d(x, nb);
    const int8_t *xq = act_q8_qs(x, nb);
    float sum = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        block_q4_0 b;
        cpu_repack_row_block(STRATA_TYPE_Q4_0, w + (size_t)i * REPACK_Q40_GROUP_BLOCK, r, &b);
        sum += q4_0_block_dot(&b, xq + 32 * i, xd[i]);
    }
    return sum;
}

static float dot_q4_1(int64_t n, const uint8_t *w, const uint8_t *x) {
    const block_q4_1 *bw = (const block_q4_1 *)w;
    const int64_t nb = n / 32;
    const float *xd = act_q8_d(x, nb), *xs = act_q8_s(x, nb);
    const int8_t *xq = act_q8_qs(x, nb);
    float sum = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        int s = 0;
        for (int j = 0; j < 16; j++) s += (bw[i].qs[j] & 0x0f) * xq[32 * i + j] + (bw[i].qs[j] >> 4) * xq[32 * i + j + 16];
        sum += strata_fp16_to_f32(bw[i].d) * xd[i] * (float)s + strata_fp16_to_f32(bw[i].m) * xs[i];
    }
    return sum;
}

static inline void unpack_q5(const uint8_t qs[16], const uint8_t qh_bytes[4], int q[32]) {
    uint32_t qh;
    memcpy(&qh, qh_bytes, 4);
    for (int j = 0; j < 16; j++) {
        q[j] = (qs[j] & 0x0f) | (int)(((qh >> j) & 1) << 4);
        q[j + 16] = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
    }
}

static float dot_q5_0(int64_t n, const uint8_t *w, const uint8_t *x) {
    const block_q5_0 *bw = (const block_q5_0 *)w;
    const int64_t nb = n / 32;
    const float *xd = act_q8_d(x, nb);
    const int8_t *xq = act_q8_qs(x, nb);
    float sum = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        int q[32], s = 0;
        unpack_q5(bw[i].qs, bw[i].qh, q);
        for (int j = 0; j < 32; j++) s += (q[j] - 16) * xq[32 * i + j];
        sum += strata_fp16_to_f32(bw[i].d) * xd[i] * (float)s;
    }
    return sum;
}

static float dot_q5_1(int64_t n, const uint8_t *w, const uint8_t *x) {
    const block_q5_1 *bw = (const block_q5_1 *)w;
    const int64_t nb = n / 32;
    const float *xd = act_q8_d(x, nb), *xs = act_q8_s(x, nb);
    const int8_t *xq = act_q8_qs(x, nb);
    float sum = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        int q[32], s = 0;
        unpack_q5(bw[i].qs, bw[i].qh, q);
        for (int j = 0; j < 32; j++) s += q[j] * xq[32 * i + j];
        sum += strata_fp16_to_f32(bw[i].d) * xd[i] * (float)s + strata_fp16_to_f32(bw[i].m) * xs[i];
    }
    return sum;
}

static float dot_iq4_nl(int64_t n, const uint8_t *w, const uint8_t *x) {
    const block_iq4_nl *bw = (const block_iq4_nl *)w;
    const int64_t nb = n / 32;
    const float *xd = act_q8_d(x, nb);
    const int8_t *xq = act_q8_qs(x, nb);
    float sum = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        int s = 0;
        for (int j = 0; j < 16; j++)
            s += strata_kvalues_iq4nl[bw[i].qs[j] & 0x0f] * xq[32 * i + j] +
                 strata_kvalues_iq4nl[bw[i].qs[j] >> 4] * xq[32 * i + j + 16];
        sum += strata_fp16_to_f32(bw[i].d) * xd[i] * (float)s;
    }
    return sum;
}

/* K-quants: integer sums per group times the group's integer scale, one float multiply per
 * super-block; the min terms use the activation's per-16 sums (bsums). */

static float dot_q2_k(int64_t n, const uint8_t *w, const uint8_t *x) {
    const block_q2_K *bw = (const block_q2_K *)w;
    const block_q8_K *bx = (const block_q8_K *)x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int isum = 0, msum = 0;
        for (int g = 0; g < 16; g++) {
            const uint8_t *q = bw[i].qs + 32 * (g / 8) + 16 * (g % 2);
            const int shift = 2 * ((g % 8) / 2);
            const int8_t *a = bx[i].qs + 16 * g;
            int s = 0;
            for (int l = 0; l < 16; l++) s += ((q[l] >> shift) & 3) * a[l];
            isum += (bw[i].scales[g] & 0x0f) * s;
            msum += (bw[i].scales[g] >> 4) * bx[i].bsums[g];
        }
        sum += bx[i].d * strata_fp16_to_f32(bw[i].d) * (float)isum - bx[i].d * strata_fp16_to_f32(bw[i].dmin) * (float)msum;
    }
    return sum;
}

static float dot_q3_k(int64_t n, const uint8_t *w, const uint8_t *x) {
    const block_q3_K *bw = (const block_q3_K *)w;
    const block_q8_K *bx = (const block_q8_K *)x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int8_t sc[16];
        q3k_unpack_scales(bw[i].scales, sc);
        int isum = 0;
        for (int g = 0; g < 16; g++) {
            const int half = g / 8, k = (g % 8) / 2, off = 16 * (g % 2);
            const uint8_t *q = bw[i].qs + 32 * half + off, *hm = bw[i].hmask + off;
            const uint8_t hbit = (uint8_t)(1u << (4 * half + k));
            const int8_t *a = bx[i].qs + 16 * g;
            int s = 0;
            for (int l = 0; l < 16; l++) s += (((q[l] >> (2 * k)) & 3) - ((hm[l] & hbit) ? 0 : 4)) * a[l];
            isum += sc[g] * s;
        }
        sum += bx[i].d * strata_fp16_to_f32(bw[i].d) * (float)isum;
    }
    return sum;
}

/* One super-block's term of a Q4_K row's dot product (shared by both layouts' tiles, so that
 * they give the same bits). */
static inline float q4_k_block_dot(const block_q4_K *bw, const block_q8_K *bx) {
    int isum = 0, msum = 0;
    for (int g = 0; g < 8; g++) {
        uint8_t sc, m;
        k_get_scale_min(g, bw->scales, &sc, &m);
        const uint8_t *q = bw->qs + 32 * (g / 2);
        const int8_t *a = bx->qs + 32 * g;
        int s = 0;
        if (g % 2 == 0)
            for (int l = 0; l < 32; l++) s += (q[l] & 0x0f) * a[l];
        else
            for (int l = 0; l < 32; l++) s += (q[l] >> 4) * a[l];
        isum += sc * s;
        msum += m * (bx->bsums[2 * g] + bx->bsums[2 * g + 1]);
    }
    return bx->d * strata_fp16_to_f32(bw->d) * (float)isum - bx->d * strata_fp16_to_f32(bw->dmin) * (float)msum;
}

static float dot_q4_k(int64_t n, const uint8_t *w, const uint8_t *x) {
    const block_q4_K *bw = (const block_q4_K *)w;
    const block_q8_K *bx = (const block_q8_K *)x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) sum += q4_k_block_dot(bw + i, bx + i);
    return sum;
}

/* Row r of the Q4_K x8 group at w, as dot_q4_0_x8. */
static float dot_q4_k_x8(int64_t n, const uint8_t *w, int r, const uint8_t *x) {
    const block_q8_K *bx = (const block_q8_K *)x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        block_q4_K b;
        cpu_repack_row_block(STRATA_TYPE_Q4_K, w + (size_t)i * REPACK_Q4K_GROUP_BLOCK, r, &b);
        sum += q4_k_block_dot(&b, bx + i);
    }
    return sum;
}

static float dot_q5_k(int64_t n, const uint8_t *w, const uint8_t *x) {
    const block_q5_K *bw = (const block_q5_K *)w;
    const block_q8_K *bx = (const block_q8_K *)x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int isum = 0, msum = 0;
        for (int g = 0; g < 8; g++) {
            uint8_t sc, m;
            k_get_scale_min(g, bw[i].scales, &sc, &m);
            const uint8_t *q = bw[i].qs + 32 * (g / 2);
            const int8_t *a = bx[i].qs + 32 * g;
            int s = 0;
            for (int l = 0; l < 32; l++) {
                const int lo = g % 2 == 0 ? (q[l] & 0x0f) : (q[l] >> 4);
                s += (lo | (((bw[i].qh[l] >> g) & 1) << 4)) * a[l];
            }
            isum += sc * s;
            msum += m * (bx[i].bsums[2 * g] + bx[i].bsums[2 * g + 1]);
        }
        sum += bx[i].d * strata_fp16_to_f32(bw[i].d) * (float)isum - bx[i].d * strata_fp16_to_f32(bw[i].dmin) * (float)msum;
    }
    return sum;
}

static float dot_q6_k(int64_t n, const uint8_t *w, const uint8_t *x) {
    const block_q6_K *bw = (const block_q6_K *)w;
    const block_q8_K *bx = (const block_q8_K *)x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int isum = 0;
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = bw[i].ql + 64 * h, *qh = bw[i].qh + 32 * h;
            const int8_t *sc = bw[i].scales + 8 * h, *a = bx[i].qs + 128 * h;
            int s[8] = {0};
            for (int l = 0; l < 32; l++) {
                const int g = l / 16;
                s[g + 0] += (((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32) * a[l];
                s[g + 2] += (((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32) * a[l + 32];
                s[g + 4] += (((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32) * a[l + 64];
                s[g + 6] += (((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32) * a[l + 96];
            }
            for (int g = 0; g < 8; g++) isum += sc[g] * s[g];
        }
        sum += bx[i].d * strata_fp16_to_f32(bw[i].d) * (float)isum;
    }
    return sum;
}

static float dot_iq4_xs(int64_t n, const uint8_t *w, const uint8_t *x) {
    const block_iq4_xs *bw = (const block_iq4_xs *)w;
    const block_q8_K *bx = (const block_q8_K *)x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int isum = 0;
        for (int g = 0; g < 8; g++) {
            const uint8_t *q = bw[i].qs + 16 * g;
            const int8_t *a = bx[i].qs + 32 * g;
            int s = 0;
            for (int j = 0; j < 16; j++)
                s += strata_kvalues_iq4nl[q[j] & 0x0f] * a[j] + strata_kvalues_iq4nl[q[j] >> 4] * a[j + 16];
            isum += (iq4xs_scale(&bw[i], g) - 32) * s;
        }
        sum += bx[i].d * strata_fp16_to_f32(bw[i].d) * (float)isum;
    }
    return sum;
}

/* ---- tiles: each (row, token) pair through the dot product ------------------------------- */

#define SCALAR_TILE(name)                                                                                  \
    static void tile_##name(int64_t cols, const uint8_t *w, size_t ws, int nr, const uint8_t *x, size_t xs, \
                            int nt, float *y, size_t ys) {                                                  \
        for (int t = 0; t < nt; t++)                                                                       \
            for (int r = 0; r < nr; r++) y[t * ys + r] = dot_##name(cols, w + r * ws, x + t * xs);         \
    }

/* The same for weights in a repacked layout (repack.h): nr is a multiple of 8, whole groups. */
#define SCALAR_TILE_X8(name)                                                                               \
    static void tile_##name##_x8(int64_t cols, const uint8_t *w, size_t ws, int nr, const uint8_t *x,      \
                                 size_t xs, int nt, float *y, size_t ys) {                                 \
        STRATA_ASSERT(nr % 8 == 0);                                                                        \
        for (int t = 0; t < nt; t++)                                                                       \
            for (int r = 0; r < nr; r++)                                                                   \
                y[t * ys + r] = dot_##name##_x8(cols, w + (size_t)(r / 8) * 8 * ws, r % 8, x + t * xs);    \
    }

SCALAR_TILE(f32)
SCALAR_TILE(f16)
SCALAR_TILE(bf16)
SCALAR_TILE(q8_0)
SCALAR_TILE(q4_0)
SCALAR_TILE(q4_1)
SCALAR_TILE(q5_0)
SCALAR_TILE(q5_1)
SCALAR_TILE(iq4_nl)
SCALAR_TILE(q2_k)
SCALAR_TILE(q3_k)
SCALAR_TILE(q4_k)
SCALAR_TILE(q5_k)
SCALAR_TILE(q6_k)
SCALAR_TILE(iq4_xs)
SCALAR_TILE_X8(q4_0)
SCALAR_TILE_X8(q4_k)

void cpu_kernels_scalar(cpu_kernel t[STRATA_TYPE_COUNT]) {
    t[STRATA_TYPE_F32] = (cpu_kernel){.act = CPU_ACT_F32, .tile = tile_f32, .mr = 1, .nt_max = 1};
    t[STRATA_TYPE_F16] = (cpu_kernel){.act = CPU_ACT_F16, .tile = tile_f16, .mr = 1, .nt_max = 1};
    t[STRATA_TYPE_BF16] = (cpu_kernel){.act = CPU_ACT_BF16, .tile = tile_bf16, .mr = 1, .nt_max = 1};
    t[STRATA_TYPE_Q8_0] = (cpu_kernel){.act = CPU_ACT_Q8, .tile = tile_q8_0, .mr = 1, .nt_max = 1};
    t[STRATA_TYPE_Q4_0] = (cpu_kernel){.act = CPU_ACT_Q8, .tile = tile_q4_0, .mr = 8, .nt_max = 1, .tile_x8 = tile_q4_0_x8};
    t[STRATA_TYPE_Q4_1] = (cpu_kernel){.act = CPU_ACT_Q8S, .tile = tile_q4_1, .mr = 1, .nt_max = 1};
    t[STRATA_TYPE_Q5_0] = (cpu_kernel){.act = CPU_ACT_Q8, .tile = tile_q5_0, .mr = 1, .nt_max = 1};
    t[STRATA_TYPE_Q5_1] = (cpu_kernel){.act = CPU_ACT_Q8S, .tile = tile_q5_1, .mr = 1, .nt_max = 1};
    t[STRATA_TYPE_IQ4_NL] = (cpu_kernel){.act = CPU_ACT_Q8, .tile = tile_iq4_nl, .mr = 1, .nt_max = 1};
    t[STRATA_TYPE_Q2_K] = (cpu_kernel){.act = CPU_ACT_Q8K, .tile = tile_q2_k, .mr = 1, .nt_max = 1};
    t[STRATA_TYPE_Q3_K] = (cpu_kernel){.act = CPU_ACT_Q8K, .tile = tile_q3_k, .mr = 1, .nt_max = 1};
    t[STRATA_TYPE_Q4_K] = (cpu_kernel){.act = CPU_ACT_Q8K, .tile = tile_q4_k, .mr = 8, .nt_max = 1, .tile_x8 = tile_q4_k_x8};
    t[STRATA_TYPE_Q5_K] = (cpu_kernel){.act = CPU_ACT_Q8K, .tile = tile_q5_k, .mr = 1, .nt_max = 1};
    t[STRATA_TYPE_Q6_K] = (cpu_kernel){.act = CPU_ACT_Q8K, .tile = tile_q6_k, .mr = 1, .nt_max = 1};
    t[STRATA_TYPE_IQ4_XS] = (cpu_kernel){.act = CPU_ACT_Q8K, .tile = tile_iq4_xs, .mr = 1, .nt_max = 1};
}
