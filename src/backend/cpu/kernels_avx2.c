/* AVX2 kernels (this file is compiled with -mavx2 -mfma -mf16c -mbmi2 and only called when
 * CPUID reports them). */
#include "backend/cpu/kernels.h"

void cpu_quantize_act_avx2(cpu_act act, const float *x, void *dst, int64_t cols) {
    cpu_quantize_act_scalar(act, x, dst, cols);
}

void cpu_kernels_avx2(cpu_kernel table[STRATA_TYPE_COUNT]) { (void)table; }
