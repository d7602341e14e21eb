/* Block (de)quantization, scalar reference code, bit-compatible with GGUF files written by
 * llama.cpp/Ollama. One entry per type in a table (quant.c); no per-type copies elsewhere.
 *
 * Rows: n must be a multiple of the type's block size (see tensor/type.h). */
#ifndef STRATA_TENSOR_QUANT_H
#define STRATA_TENSOR_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tensor/type.h"

/* True for the types whose rows strata_dequantize_row understands: F32, F16, BF16, Q8_0,
 * Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS (and Q8_1, Q8_K). */
bool strata_type_can_dequantize(strata_type type);
/* dst[0..n) = the n values stored in src. */
void strata_dequantize_row(strata_type type, const void *src, float *dst, int64_t n);

/* True for the types strata_quantize_row can produce. */
bool strata_type_can_quantize(strata_type type);
/* Quantizes n floats into src's type; returns bytes written (strata_type_row_bytes). */
size_t strata_quantize_row(strata_type type, const float *src, void *dst, int64_t n);

#endif
