/* What the host's kernels offer modules that are not device code (the quantizer, `strata
 * bench`): the one public door to backend/cpu for them, so that nothing outside backend/
 * includes backend/cpu headers. Each is a thin wrapper of the cpu kind's function named
 * beside it; their contracts are there. */
#ifndef STRATA_BACKEND_HOST_H
#define STRATA_BACKEND_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "tensor/type.h"

/* CPUs this process may use: its affinity, capped by its cgroup CPU quota
 * (backend/cpu/cpu_count.h: cpu_count_usable). At least 1. */
int backend_host_threads(void);

/* Converts `rows` rows of `cols` elements from src (type st) to dst (type dt) on n_threads
 * threads (backend/cpu/quantize_rows.h: cpu_convert_rows); 0, or -1 when out of memory. */
int backend_host_convert_rows(strata_type st, const void *src, strata_type dt, void *dst, int64_t rows, int64_t cols,
                              int n_threads);

/* Streaming-read bandwidth of host memory in GB/s over a buffer of `bytes`, best of
 * `passes`, on n_threads threads (backend/cpu/bandwidth.h: cpu_read_bandwidth_gbps); 0 if
 * the buffer cannot be had. */
double backend_host_read_gbps(size_t bytes, int n_threads, int passes);

#endif
