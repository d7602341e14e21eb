/* Streaming-read bandwidth of host memory: the bound on token generation, which reads every
 * weight once per token. The one probe behind the cpu device's speed (device_cpu.c), the
 * bandwidth fraction `strata bench` reports, and bench/bandwidth and bench/bench_matmul. */
#ifndef STRATA_BACKEND_CPU_BANDWIDTH_H
#define STRATA_BACKEND_CPU_BANDWIDTH_H

#include <stddef.h>

/* Allocates `bytes` (far beyond the last-level cache for a memory figure), writes it once
 * (faulting the pages in, on the threads that then read them), then times `passes` reads of
 * it on n_threads threads of the cpu thread pool, each summing contiguous slices with
 * independent vector accumulators. Returns the best pass in GB/s (1e9 bytes/s), or 0 if the
 * buffer cannot be allocated. The buffer is freed before returning. */
double cpu_read_bandwidth_gbps(size_t bytes, int n_threads, int passes);

#endif
