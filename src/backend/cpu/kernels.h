/* The CPU kernel table (internal to backend/cpu): one entry per weight type and ISA.
 *
 * A kernel computes a tile of dot products between `nr` consecutive weight rows and `nt`
 * consecutive quantized activation rows:
 *     y[t * ystride + r] = dot(W row r, X row t),  r < nr <= mr, t < nt <= nt_max.
 * Activation rows are in the entry's act format (act_row_bytes() each), produced by
 * cpu_quantize_act(). Tiles let SIMD kernels reuse each unpacked weight block for several
 * tokens and each activation block for several rows (prompt batches); the matmul driver
 * (matmul.c) walks the tiles and splits rows across threads.
 *
 * Activation formats (bit-compatible with what the reference quantizes activations to,
 * with derived values stored alongside so kernels need no conversions):
 *   CPU_ACT_F32    float, as given                     (F32 weights)
 *   CPU_ACT_F16    float, rounded to IEEE half (nearest even) and back (F16 weights)
 *   CPU_ACT_BF16   float, rounded to bfloat16 (nearest even) and back   (BF16 weights)
 * (the half-precision values kept as float, so that kernels do not convert an activation
 * again for every weight row it meets)
 *   CPU_ACT_Q8     act_q8 blocks of 32: Q8_0 values     (Q4_0, Q5_0, Q8_0, IQ4_NL)
 *   CPU_ACT_Q8S    act_q8 blocks, with s rounded to fp16 as Q8_1 stores it (Q4_1, Q5_1)
 *   CPU_ACT_Q8K    block_q8_K                           (K-quants, IQ4_XS) */
#ifndef STRATA_BACKEND_CPU_KERNELS_H
#define STRATA_BACKEND_CPU_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "backend/cpu/matmul.h"
#include "tensor/blocks.h"
#include "tensor/type.h"

typedef enum { CPU_ACT_NONE = 0, CPU_ACT_F32, CPU_ACT_F16, CPU_ACT_BF16, CPU_ACT_Q8, CPU_ACT_Q8S, CPU_ACT_Q8K } cpu_act;

/* A Q8 activation row (CPU_ACT_Q8/Q8S) of nb = cols/32 blocks, stored as arrays so that
 * SIMD kernels load 8 block scales at once:
 *     float d[nb]   the block scales, already rounded to fp16 as Q8_0/Q8_1 store them
 *     float s[nb]   d * sum(qs) of each block (for Q8S the fp16-rounded value Q8_1 stores)
 *     int8 qs[32 * nb]
 * The s values let kernels for formats with an offset (Q4_0's -8, Q4_1's min) apply it
 * once per block instead of once per element. */
static inline const float *act_q8_d(const uint8_t *row, int64_t nb) { (void)nb; return (const float *)row; }
static inline const float *act_q8_s(const uint8_t *row, int64_t nb) { return (const float *)row + nb; }
static inline const int8_t *act_q8_qs(const uint8_t *row, int64_t nb) { return (const int8_t *)(row + 8 * nb); }

typedef void (*cpu_tile_fn)(int64_t cols, const uint8_t *w, size_t wstride, int nr, const uint8_t *x, size_t xstride,
                            int nt, float *y, size_t ystride);

typedef struct {
    cpu_act act;
    cpu_tile_fn tile;
    int mr;     /* most rows per tile */
    int nt_max; /* most tokens per tile */
    /* Weights repacked in groups of 8 rows (backend/cpu/repack.h), or NULL where the type has
     * no such layout: called at the start of a group with whole groups (nr a multiple of 8,
     * and mr is then one too). */
    cpu_tile_fn tile_x8;
} cpu_kernel;

size_t cpu_act_row_bytes(cpu_act act, int64_t cols);

/* Quantizes one activation row (scalar reference, and the AVX2 version that must give the
 * same bytes). */
void cpu_quantize_act_scalar(cpu_act act, const float *x, void *dst, int64_t cols);
void cpu_quantize_act_avx2(cpu_act act, const float *x, void *dst, int64_t cols);
void cpu_quantize_act_avx512(cpu_act act, const float *x, void *dst, int64_t cols);

/* Fill `table` (indexed by weight type) for an ISA; entries left zero are unsupported
 * there (the driver then uses the scalar entry). */
void cpu_kernels_scalar(cpu_kernel table[STRATA_TYPE_COUNT]);
void cpu_kernels_avx2(cpu_kernel table[STRATA_TYPE_COUNT]);
void cpu_kernels_avx512(cpu_kernel table[STRATA_TYPE_COUNT]);

/* Round to nearest, ties to even (what the SIMD activation quantizers do). */
static inline int cpu_round_even(float v) {
    float t = v + 12582912.0f;
    int32_t i;
    __builtin_memcpy(&i, &t, 4);
    return (i & 0x007fffff) - 0x00400000;
}

#endif
