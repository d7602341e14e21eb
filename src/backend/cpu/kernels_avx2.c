/* AVX2 kernels: kernels_x86.inc compiled with -mavx2 -mfma -mf16c -mbmi2 (this file's
 * name gives it those flags; see cmake/modules.cmake). */
#define KX(name) name##_avx2
#define KX_VNNI 0
#include "backend/cpu/kernels_x86.inc"
