/* CPU matrix products for the forward pass.
 *
 * y = W x for a weight matrix W of `rows` rows of `cols` elements, stored in `wtype`
 * (row r starts at w + r * strata_type_row_bytes(wtype, cols)), and `n_tokens` activation
 * vectors x (row-major, n_tokens x cols, float) giving y (n_tokens x rows, float).
 *
 * Activations are quantized first the way each weight format intends (Q8_0-style blocks for
 * the 32-element formats, Q8_1-style for Q4_1/Q5_1, Q8_K-style for K-quants and IQ4_XS;
 * F16 and BF16 weights take activations rounded to F16/BF16, as the reference does; F32
 * weights use the float activations in place) into a caller-provided work buffer of
 * cpu_matmul_work_bytes() bytes, so nothing is allocated per call (decode-loop rule).
 * That size is 0 for F32 weights (work may then be NULL). Block sums are exact integers;
 * results differ from a float64 product of the dequantized weights and rounded
 * activations only by float rounding. Rows need not be a multiple of anything; cols must
 * be whole blocks of wtype. Safe to call from several threads with separate work/y.
 * The ISA path (scalar, AVX2, AVX-512) is chosen once at run time by CPUID; every SIMD path
 * is tested against the scalar one. Rows are split across n_threads threads of a persistent
 * pool (backend/cpu/threadpool.h; the caller is one of them), whatever OMP_* says. */
#ifndef STRATA_BACKEND_CPU_MATMUL_H
#define STRATA_BACKEND_CPU_MATMUL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tensor/type.h"

typedef enum { CPU_ISA_SCALAR = 0, CPU_ISA_AVX2 = 1, CPU_ISA_AVX512 = 2 } cpu_isa;

/* Best ISA this CPU supports (and this build compiled). */
cpu_isa cpu_isa_detect(void);
const char *cpu_isa_name(cpu_isa isa);

/* True if wtype is supported as a weight type by cpu_matmul. */
int cpu_matmul_supports(strata_type wtype);

size_t cpu_matmul_work_bytes(strata_type wtype, int64_t cols, int64_t n_tokens);

void cpu_matmul(strata_type wtype, const void *w, int64_t rows, int64_t cols,
                const float *x, int64_t n_tokens, float *y, void *work, int n_threads);

/* The same with an explicit ISA (tests compare each path with CPU_ISA_SCALAR). An ISA the
 * CPU lacks falls back to the best available one. */
void cpu_matmul_isa(cpu_isa isa, strata_type wtype, const void *w, int64_t rows, int64_t cols,
                    const float *x, int64_t n_tokens, float *y, void *work, int n_threads);

/* The same for weights in the repacked layout of backend/cpu/repack.h (cpu_repack_applies). */
void cpu_matmul_repacked(cpu_isa isa, strata_type wtype, const void *w, int64_t rows, int64_t cols,
                         const float *x, int64_t n_tokens, float *y, void *work, int n_threads);

/* Several products of the same activations (a layer's Q, K and V; its gate and up): one
 * quantization of x and one pool job over all their row tiles, instead of one of each per
 * product (fewer waits for the slowest thread; the small K and V products share the
 * threads with Q). Each part's y is as cpu_matmul would give it, bit for bit. Parts whose
 * weights take different activation formats run one after another. work: the largest
 * cpu_matmul_work_bytes of the parts. */
#define CPU_MATMUL_MAX_PARTS 4
typedef struct {
    strata_type wtype;
    const void *w;
    int64_t rows; /* > 0 */
    float *y;     /* n_tokens x rows */
    bool repacked; /* w in the layout of backend/cpu/repack.h */
} cpu_matmul_part;

void cpu_matmul_parts(const cpu_matmul_part *parts, int n_parts, int64_t cols, const float *x, int64_t n_tokens,
                      void *work, int n_threads);

#endif
