/* AVX-512 kernels (compiled with AVX-512 F/BW/VL/DQ/VNNI flags; used only when CPUID
 * reports them). */
#include "backend/cpu/kernels.h"

void cpu_kernels_avx512(cpu_kernel table[STRATA_TYPE_COUNT]) { (void)table; }
