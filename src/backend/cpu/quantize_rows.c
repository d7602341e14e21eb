/* Row conversion across threads (see quantize_rows.h). */
#include "backend/cpu/quantize_rows.h"

#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "core/status.h"
#include "tensor/quant.h"

int cpu_convert_rows(strata_type st, const void *src, strata_type dt, void *dst, int64_t rows, int64_t cols,
                     int n_threads) {
    STRATA_ASSERT(strata_type_can_dequantize(st) && strata_type_can_quantize(dt));
    STRATA_ASSERT(strata_type_row_ok(st, cols) && strata_type_row_ok(dt, cols));
    const size_t sb = strata_type_row_bytes(st, cols), db = strata_type_row_bytes(dt, cols);
    if (st == dt) {
        memcpy(dst, src, sb * (size_t)rows);
        return 0;
    }
    int failed = 0;
#pragma omp parallel num_threads(n_threads > 0 ? n_threads : 1)
    {
        float *row = malloc(sizeof(float) * (size_t)cols);
        if (!row) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 16)
        for (int64_t r = 0; r < rows; r++) {
            if (!row) continue;
            strata_dequantize_row(st, (const uint8_t *)src + (size_t)r * sb, row, cols);
            strata_quantize_row(dt, row, (uint8_t *)dst + (size_t)r * db, cols);
        }
        free(row);
    }
    return failed ? -1 : 0;
}
