/* backend/host.h: the cpu kind's host utilities for modules outside backend/. */
#include "backend/host.h"

#include "backend/cpu/bandwidth.h"
#include "backend/cpu/cpu_count.h"
#include "backend/cpu/quantize_rows.h"

int backend_host_threads(void) { return cpu_count_usable(); }

int backend_host_convert_rows(strata_type st, const void *src, strata_type dt, void *dst, int64_t rows, int64_t cols,
                              int n_threads) {
    return cpu_convert_rows(st, src, dt, dst, rows, cols, n_threads);
}

double backend_host_read_gbps(size_t bytes, int n_threads, int passes) {
    return cpu_read_bandwidth_gbps(bytes, n_threads, passes);
}
