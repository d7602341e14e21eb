/* Row dequantization for every type strata_dequantize_row understands.
 *
 * Bit-exactness: each value is computed with the same float operations, in the same order,
 * as the format's reference decoder (e.g. Q4_K is (d * sc) * q - (dmin * m), Q6_K is
 * (d * sc) * q), so our output matches files' reference dequantizations byte for byte.
 * This file is compiled without -ffp-contract (C11 mode: no FMA contraction). */
#include <string.h>

#include "core/fp16.h"
#include "tensor/blocks.h"
#include "tensor/quant.h"
#include "tensor/quant_internal.h"

static void deq_f32(const void *src, float *y, int64_t n) { memcpy(y, src, (size_t)n * sizeof(float)); }

static void deq_f16(const void *src, float *y, int64_t n) {
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        y[i] = strata_fp16_to_f32(h);
    }
}

static void deq_bf16(const void *src, float *y, int64_t n) {
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        y[i] = strata_bf16_to_f32(h);
    }
}

static void deq_q4_0(const void *src, float *y, int64_t n) {
    const block_q4_0 *b = src;
    for (int64_t i = 0; i < n / QK4_0; i++, y += QK4_0) {
        const float d = strata_fp16_to_f32(b[i].d);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)((b[i].qs[j] & 0x0f) - 8) * d;
            y[j + 16] = (float)((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

static void deq_q4_1(const void *src, float *y, int64_t n) {
    const block_q4_1 *b = src;
    for (int64_t i = 0; i < n / QK4_1; i++, y += QK4_1) {
        const float d = strata_fp16_to_f32(b[i].d), m = strata_fp16_to_f32(b[i].m);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)(b[i].qs[j] & 0x0f) * d + m;
            y[j + 16] = (float)(b[i].qs[j] >> 4) * d + m;
        }
    }
}

static inline uint32_t load_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void deq_q5_0(const void *src, float *y, int64_t n) {
    const block_q5_0 *b = src;
    for (int64_t i = 0; i < n / QK5_0; i++, y += QK5_0) {
        const float d = strata_fp16_to_f32(b[i].d);
        const uint32_t qh = load_u32(b[i].qh);
        for (int j = 0; j < 16; j++) {
            int lo = (b[i].qs[j] & 0x0f) | (int)(((qh >> j) & 1) << 4);
            int hi = (b[i].qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
            y[j] = (float)(lo - 16) * d;
            y[j + 16] = (float)(hi - 16) * d;
        }
    }
}

static void deq_q5_1(const void *src, float *y, int64_t n) {
    const block_q5_1 *b = src;
    for (int64_t i = 0; i < n / QK5_1; i++, y += QK5_1) {
        const float d = strata_fp16_to_f32(b[i].d), m = strata_fp16_to_f32(b[i].m);
        const uint32_t qh = load_u32(b[i].qh);
        for (int j = 0; j < 16; j++) {
            int lo = (b[i].qs[j] & 0x0f) | (int)(((qh >> j) & 1) << 4);
            int hi = (b[i].qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
            y[j] = (float)lo * d + m;
            y[j + 16] = (float)hi * d + m;
        }
    }
}

static void deq_q8_0(const void *src, float *y, int64_t n) {
    const block_q8_0 *b = src;
    for (int64_t i = 0; i < n / QK8_0; i++, y += QK8_0) {
        const float d = strata_fp16_to_f32(b[i].d);
        for (int j = 0; j < QK8_0; j++) y[j] = (float)b[i].qs[j] * d;
    }
}

static void deq_q8_1(const void *src, float *y, int64_t n) {
    const block_q8_1 *b = src;
    for (int64_t i = 0; i < n / QK8_1; i++, y += QK8_1) {
        const float d = strata_fp16_to_f32(b[i].d);
        for (int j = 0; j < QK8_1; j++) y[j] = (float)b[i].qs[j] * d;
    }
}

static void deq_q8_k(const void *src, float *y, int64_t n) {
    const block_q8_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        for (int j = 0; j < QK_K; j++) y[j] = b[i].d * (float)b[i].qs[j];
    }
}

static void deq_q2_k(const void *src, float *y, int64_t n) {
    const block_q2_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = strata_fp16_to_f32(b[i].d), dmin = strata_fp16_to_f32(b[i].dmin);
        /* Group g (16 elements): half h = g / 8, shift 2 * ((g % 8) / 2), bytes
         * 32*h + 16*(g % 2) .. +16. */
        for (int g = 0; g < 16; g++, y += 16) {
            const uint8_t sc = b[i].scales[g];
            const float dl = d * (float)(sc & 0x0f), ml = dmin * (float)(sc >> 4);
            const uint8_t *q = b[i].qs + 32 * (g / 8) + 16 * (g % 2);
            const int shift = 2 * ((g % 8) / 2);
            for (int l = 0; l < 16; l++) y[l] = dl * (float)((q[l] >> shift) & 3) - ml;
        }
    }
}

static void deq_q3_k(const void *src, float *y, int64_t n) {
    const block_q3_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = strata_fp16_to_f32(b[i].d);
        int8_t sc[16];
        q3k_unpack_scales(b[i].scales, sc);
        for (int g = 0; g < 16; g++, y += 16) {
            const float dl = d * (float)sc[g];
            const int half = g / 8, k = (g % 8) / 2; /* 2-bit plane k of half `half` */
            const int off = 16 * (g % 2);
            const uint8_t *q = b[i].qs + 32 * half + off;
            const uint8_t *hm = b[i].hmask + off;
            const uint8_t hbit = (uint8_t)(1u << (4 * half + k));
            for (int l = 0; l < 16; l++) {
                int v = ((q[l] >> (2 * k)) & 3) - ((hm[l] & hbit) ? 0 : 4);
                y[l] = dl * (float)v;
            }
        }
    }
}

static void deq_q4_k(const void *src, float *y, int64_t n) {
    const block_q4_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = strata_fp16_to_f32(b[i].d), dmin = strata_fp16_to_f32(b[i].dmin);
        const uint8_t *q = b[i].qs;
        for (int j = 0; j < 4; j++, q += 32) {
            uint8_t sc, m;
            k_get_scale_min(2 * j, b[i].scales, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            k_get_scale_min(2 * j + 1, b[i].scales, &sc, &m);
            const float d2 = d * (float)sc, m2 = dmin * (float)m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)(q[l] & 0x0f) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

static void deq_q5_k(const void *src, float *y, int64_t n) {
    const block_q5_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = strata_fp16_to_f32(b[i].d), dmin = strata_fp16_to_f32(b[i].dmin);
        const uint8_t *ql = b[i].qs, *qh = b[i].qh;
        for (int j = 0; j < 4; j++, ql += 32) {
            uint8_t sc, m;
            k_get_scale_min(2 * j, b[i].scales, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            k_get_scale_min(2 * j + 1, b[i].scales, &sc, &m);
            const float d2 = d * (float)sc, m2 = dmin * (float)m;
            const uint8_t u1 = (uint8_t)(1u << (2 * j)), u2 = (uint8_t)(2u << (2 * j));
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)((ql[l] & 0x0f) + ((qh[l] & u1) ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (float)((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
        }
    }
}

static void deq_q6_k(const void *src, float *y, int64_t n) {
    const block_q6_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = strata_fp16_to_f32(b[i].d);
        for (int h = 0; h < 2; h++, y += 128) {
            const uint8_t *ql = b[i].ql + 64 * h, *qh = b[i].qh + 32 * h;
            const int8_t *sc = b[i].scales + 8 * h;
            for (int l = 0; l < 32; l++) {
                const int s = l / 16;
                int q1 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * (float)sc[s] * (float)q1;
                y[l + 32] = d * (float)sc[s + 2] * (float)q2;
                y[l + 64] = d * (float)sc[s + 4] * (float)q3;
                y[l + 96] = d * (float)sc[s + 6] * (float)q4;
            }
        }
    }
}

static void deq_iq4_nl(const void *src, float *y, int64_t n) {
    const block_iq4_nl *b = src;
    for (int64_t i = 0; i < n / QK4_NL; i++, y += QK4_NL) {
        const float d = strata_fp16_to_f32(b[i].d);
        for (int j = 0; j < 16; j++) {
            y[j] = d * (float)strata_kvalues_iq4nl[b[i].qs[j] & 0x0f];
            y[j + 16] = d * (float)strata_kvalues_iq4nl[b[i].qs[j] >> 4];
        }
    }
}

static void deq_iq4_xs(const void *src, float *y, int64_t n) {
    const block_iq4_xs *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = strata_fp16_to_f32(b[i].d);
        const uint8_t *qs = b[i].qs;
        for (int g = 0; g < 8; g++, y += 32, qs += 16) {
            const int ls = iq4xs_scale(&b[i], g);
            const float dl = d * (float)(ls - 32);
            for (int j = 0; j < 16; j++) {
                y[j] = dl * (float)strata_kvalues_iq4nl[qs[j] & 0x0f];
                y[j + 16] = dl * (float)strata_kvalues_iq4nl[qs[j] >> 4];
            }
        }
    }
}

typedef void (*dequant_fn)(const void *src, float *dst, int64_t n);

static const dequant_fn dequant_table[STRATA_TYPE_COUNT] = {
    [STRATA_TYPE_F32] = deq_f32,       [STRATA_TYPE_F16] = deq_f16,     [STRATA_TYPE_BF16] = deq_bf16,
    [STRATA_TYPE_Q4_0] = deq_q4_0,     [STRATA_TYPE_Q4_1] = deq_q4_1,   [STRATA_TYPE_Q5_0] = deq_q5_0,
    [STRATA_TYPE_Q5_1] = deq_q5_1,     [STRATA_TYPE_Q8_0] = deq_q8_0,   [STRATA_TYPE_Q8_1] = deq_q8_1,
    [STRATA_TYPE_Q2_K] = deq_q2_k,     [STRATA_TYPE_Q3_K] = deq_q3_k,   [STRATA_TYPE_Q4_K] = deq_q4_k,
    [STRATA_TYPE_Q5_K] = deq_q5_k,     [STRATA_TYPE_Q6_K] = deq_q6_k,   [STRATA_TYPE_Q8_K] = deq_q8_k,
    [STRATA_TYPE_IQ4_NL] = deq_iq4_nl, [STRATA_TYPE_IQ4_XS] = deq_iq4_xs,
};

bool strata_type_can_dequantize(strata_type type) {
    return (unsigned)type < STRATA_TYPE_COUNT && dequant_table[type] != NULL;
}

void strata_dequantize_row(strata_type type, const void *src, float *dst, int64_t n) {
    STRATA_ASSERT(strata_type_can_dequantize(type));
    STRATA_ASSERT(strata_type_row_ok(type, n));
    dequant_table[type](src, dst, n);
}
