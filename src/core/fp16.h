/* IEEE half and bfloat16 conversions, bit-exact with the GGUF format's definitions
 * (round-to-nearest-even on the way down, exact on the way up). Header-only so that
 * kernels inline them. */
#ifndef STRATA_CORE_FP16_H
#define STRATA_CORE_FP16_H

#include <stdint.h>
#include <string.h>

static inline float strata_bits_to_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t strata_f32_to_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

static inline float strata_fp16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    if (exp == 0x1f) return strata_bits_to_f32(sign | 0x7f800000u | (mant << 13));
    if (exp == 0) {
        if (mant == 0) return strata_bits_to_f32(sign);
        /* subnormal: value = mant * 2^-24 */
        float v = (float)mant * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    return strata_bits_to_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

static inline uint16_t strata_f32_to_fp16(float f) {
    uint32_t x = strata_f32_to_bits(f);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t abs = x & 0x7fffffffu;
    if (abs > 0x7f800000u) return (uint16_t)(sign | 0x7e00); /* NaN */
    if (abs >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* overflow -> inf */
    if (abs < 0x38800000u) {
        /* result is subnormal or zero: round abs * 2^24 to nearest even integer */
        if (abs < 0x33000000u) return (uint16_t)sign; /* < 2^-25 rounds to 0 */
        uint32_t e = abs >> 23;
        uint32_t m = (abs & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e; /* value = m * 2^(e-150); want m * 2^(e-150+24) */
        uint32_t q = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return (uint16_t)(sign | q);
    }
    uint32_t r = abs + 0x0fff + ((abs >> 13) & 1); /* round to nearest even at bit 13 */
    return (uint16_t)(sign | ((r - 0x38000000u) >> 13));
}

static inline float strata_bf16_to_f32(uint16_t h) { return strata_bits_to_f32((uint32_t)h << 16); }

static inline uint16_t strata_f32_to_bf16(float f) {
    uint32_t x = strata_f32_to_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 64); /* quiet NaN */
    return (uint16_t)((x + (0x7fff + ((x >> 16) & 1))) >> 16);
}

#endif
