/* On-disk block layouts of the GGUF quantized types (facts of the format, as ggml defines
 * them), shared by the (de)quantizers in tensor/ and the CPU kernels in backend/cpu/.
 *
 * Every struct is byte-for-byte the file layout: only uint8/int8/uint16/int16/float
 * members in an order that needs no padding (checked by the static asserts below against
 * the sizes in tensor/type.c). Multi-byte fields are little-endian, like the host.
 * Half-precision fields are raw IEEE binary16 bits (convert with core/fp16.h). */
#ifndef STRATA_TENSOR_BLOCKS_H
#define STRATA_TENSOR_BLOCKS_H

#include <stdint.h>

#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK8_0 32
#define QK8_1 32
#define QK4_NL 32
#define QK_K 256
#define K_SCALE_SIZE 12

/* x = d * (q - 8), q in 0..15; element j in the low nibble of qs[j], j+16 in the high. */
typedef struct {
    uint16_t d;
    uint8_t qs[QK4_0 / 2];
} block_q4_0;

/* x = d * q + m, q in 0..15. */
typedef struct {
    uint16_t d, m;
    uint8_t qs[QK4_1 / 2];
} block_q4_1;

/* x = d * (q - 16), q in 0..31: low 4 bits as in Q4_0, bit 4 of element j in bit j of qh. */
typedef struct {
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[QK5_0 / 2];
} block_q5_0;

/* x = d * q + m, q in 0..31. */
typedef struct {
    uint16_t d, m;
    uint8_t qh[4];
    uint8_t qs[QK5_1 / 2];
} block_q5_1;

/* x = d * q. */
typedef struct {
    uint16_t d;
    int8_t qs[QK8_0];
} block_q8_0;

/* x = d * q; s = d * sum(q) (used by the Q4_1/Q5_1 dot products for the min term). */
typedef struct {
    uint16_t d, s;
    int8_t qs[QK8_1];
} block_q8_1;

/* 16 groups of 16: x = d * (scales & 15) * q - dmin * (scales >> 4), q in 0..3.
 * qs: for each half (128 elements) 32 bytes; element 32*k + l of the half is bits 2k..2k+1
 * of qs[l]. */
typedef struct {
    uint8_t scales[QK_K / 16];
    uint8_t qs[QK_K / 4];
    uint16_t d, dmin;
} block_q2_K;

/* 16 groups of 16: x = d * (s - 32) * (q - 4*!hbit), low 2 bits as in Q2_K, the high bit of
 * element 32*k + l (k = 0..7) in bit k of hmask[l]; 6-bit scales packed in 12 bytes. */
typedef struct {
    uint8_t hmask[QK_K / 8];
    uint8_t qs[QK_K / 4];
    uint8_t scales[12];
    uint16_t d;
} block_q3_K;

/* 8 groups of 32: x = d * sc * q - dmin * m, 6-bit sc and m packed in 12 bytes
 * (k_get_scale_min), q in 0..15: group 2k in the low nibbles of qs[32k..32k+32), 2k+1 in
 * the high nibbles. */
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qs[QK_K / 2];
} block_q4_K;

/* As Q4_K with a fifth bit: bit 2k of qh[l] for group 2k, bit 2k+1 for group 2k+1. */
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
} block_q5_K;

/* 16 groups of 16: x = d * scales[g] * (q - 32), q in 0..63 (4 low bits in ql, 2 high in qh). */
typedef struct {
    uint8_t ql[QK_K / 2];
    uint8_t qh[QK_K / 4];
    int8_t scales[QK_K / 16];
    uint16_t d;
} block_q6_K;

/* Activations for the K-quant dot products: x = d * q; bsums = sums of q in groups of 16. */
typedef struct {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16];
} block_q8_K;

/* x = d * kvalues_iq4nl[q]. */
typedef struct {
    uint16_t d;
    uint8_t qs[QK4_NL / 2];
} block_iq4_nl;

/* 8 groups of 32: x = d * (ls - 32) * kvalues_iq4nl[q], 6-bit ls: 4 low bits in scales_l,
 * 2 high bits in scales_h. */
typedef struct {
    uint16_t d;
    uint16_t scales_h;
    uint8_t scales_l[QK_K / 64];
    uint8_t qs[QK_K / 2];
} block_iq4_xs;

_Static_assert(sizeof(block_q4_0) == 18, "q4_0 layout");
_Static_assert(sizeof(block_q4_1) == 20, "q4_1 layout");
_Static_assert(sizeof(block_q5_0) == 22, "q5_0 layout");
_Static_assert(sizeof(block_q5_1) == 24, "q5_1 layout");
_Static_assert(sizeof(block_q8_0) == 34, "q8_0 layout");
_Static_assert(sizeof(block_q8_1) == 36, "q8_1 layout");
_Static_assert(sizeof(block_q2_K) == 84, "q2_K layout");
_Static_assert(sizeof(block_q3_K) == 110, "q3_K layout");
_Static_assert(sizeof(block_q4_K) == 144, "q4_K layout");
_Static_assert(sizeof(block_q5_K) == 176, "q5_K layout");
_Static_assert(sizeof(block_q6_K) == 210, "q6_K layout");
_Static_assert(sizeof(block_q8_K) == 292, "q8_K layout");
_Static_assert(sizeof(block_iq4_nl) == 18, "iq4_nl layout");
_Static_assert(sizeof(block_iq4_xs) == 136, "iq4_xs layout");

/* The 16 non-uniform levels of IQ4_NL / IQ4_XS. */
static const int8_t strata_kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                                1,    13,   25,  38,  53,  69,  89,  113};

/* 6-bit scale and min of group j (0..7) of a Q4_K/Q5_K block: groups 0-3 in the low 6 bits
 * of bytes j and j+4; groups 4-7 have their low 4 bits in byte j+4 (scale low nibble,
 * min high nibble) and their top 2 bits in the top bits of bytes j-4 (scale) and j (min). */
static inline void k_get_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* The 16 signed 6-bit scales (already minus 32) of a Q3_K block. Scale g has its low 4
 * bits in nibble (g / 8) of byte g % 8 and its top 2 bits at bits 2*(g / 4) of byte
 * 8 + g % 4. */
static inline void q3k_unpack_scales(const uint8_t *s, int8_t out[16]) {
    for (int g = 0; g < 16; g++) {
        int lo = g < 8 ? (s[g] & 0x0f) : (s[g - 8] >> 4);
        int hi = (s[8 + g % 4] >> (2 * (g / 4))) & 3;
        out[g] = (int8_t)((lo | (hi << 4)) - 32);
    }
}

#endif
