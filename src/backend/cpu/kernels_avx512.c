/* AVX-512 kernels: kernels_x86.inc compiled with AVX-512 F/BW/VL/DQ/VNNI (this file's name
 * gives it those flags), using vpdpbusd on 256-bit vectors for the 32-element formats.
 * Only called when CPUID reports AVX-512 with VNNI (matmul.c). */
#define KX(name) name##_avx512
#define KX_VNNI 1
#include "backend/cpu/kernels_x86.inc"
