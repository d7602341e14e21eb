/* Multi-threaded row conversion for the quantizer: rows of any readable type (dequantized
 * to float) written in another type, rows split across OpenMP threads. */
#ifndef STRATA_BACKEND_CPU_QUANTIZE_ROWS_H
#define STRATA_BACKEND_CPU_QUANTIZE_ROWS_H

#include <stdint.h>

#include "tensor/type.h"

/* Converts `rows` rows of `cols` elements from src (type st) to dst (type dt); both must
 * be whole blocks (strata_type_row_ok) and st dequantizable, dt quantizable.
 * Allocates one float row per thread; returns 0, or -1 if that allocation failed. */
int cpu_convert_rows(strata_type st, const void *src, strata_type dt, void *dst, int64_t rows, int64_t cols,
                     int n_threads);

#endif
