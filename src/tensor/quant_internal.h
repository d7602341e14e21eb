/* Helpers shared by the (de)quantizers of tensor/ and the CPU kernels (not a public API). */
#ifndef STRATA_TENSOR_QUANT_INTERNAL_H
#define STRATA_TENSOR_QUANT_INTERNAL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/status.h"
#include "tensor/blocks.h"

/* 6-bit scale (0..63, to be used as ls - 32) of group g (0..7) of an IQ4_XS block. */
static inline int iq4xs_scale(const block_iq4_xs *b, int g) {
    return ((b->scales_l[g / 2] >> (4 * (g % 2))) & 0x0f) | (((b->scales_h >> (2 * g)) & 3) << 4);
}

/* Round to nearest, ties to even, for |v| < 2^22: adding 1.5 * 2^23 leaves the rounded
 * integer in the low mantissa bits. This is how the reference quantizers round, and it
 * differs from roundf() on ties, so the K-quant quantizers use it to produce the same
 * bytes. */
static inline int quant_nearest_int(float v) {
    float t = v + 12582912.0f;
    int32_t i;
    memcpy(&i, &t, 4);
    return (i & 0x007fffff) - 0x00400000;
}

#endif
