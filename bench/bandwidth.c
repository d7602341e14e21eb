/* Streaming-read memory bandwidth: the bound on token generation, which reads every weight
 * once per token.
 *
 *   bandwidth [-s MIB] [-t THREADS] [-r REPS]
 *
 * Allocates a buffer (default 1024 MiB, far beyond the last-level cache), touches it, then
 * each of THREADS OpenMP threads (default: all) sums its contiguous share with 4 independent
 * 128-bit accumulators (plain SSE2 loads; enough to saturate memory, nothing to reuse).
 * Prints the best of REPS passes (default 10) in GB/s (10^9 bytes/s). */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef long long v2 __attribute__((vector_size(16)));

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    size_t mib = 1024;
    int threads = omp_get_max_threads(), reps = 10;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "-s") == 0) mib = (size_t)atol(argv[i + 1]);
        else if (strcmp(argv[i], "-t") == 0) threads = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "-r") == 0) reps = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: bandwidth [-s MIB] [-t THREADS] [-r REPS]\n");
            return 2;
        }
    }
    if (mib == 0 || threads < 1 || reps < 1) return 2;
    size_t bytes = mib << 20, n = bytes / sizeof(v2);
    v2 *buf = NULL;
    if (posix_memalign((void **)&buf, 4096, bytes) != 0) {
        fprintf(stderr, "bandwidth: cannot allocate %zu MiB\n", mib);
        return 1;
    }
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t i = 0; i < n; i++) buf[i] = (v2){(long long)i, 1};
    double best = 0;
    long long check = 0;
    for (int r = 0; r < reps; r++) {
        long long total = 0;
        double t0 = now();
#pragma omp parallel num_threads(threads) reduction(+ : total)
        {
            int nt = omp_get_num_threads(), id = omp_get_thread_num();
            size_t per = (n / nt) & ~(size_t)3, lo = per * (size_t)id, hi = id == nt - 1 ? n : lo + per;
            v2 a0 = {0, 0}, a1 = a0, a2 = a0, a3 = a0;
            size_t i = lo;
            for (; i + 4 <= hi; i += 4) {
                a0 += buf[i];
                a1 += buf[i + 1];
                a2 += buf[i + 2];
                a3 += buf[i + 3];
            }
            for (; i < hi; i++) a0 += buf[i];
            v2 s = a0 + a1 + a2 + a3;
            total += s[0] + s[1];
        }
        double dt = now() - t0;
        check += total;
        if (bytes / dt > best) best = bytes / dt;
    }
    printf("read bandwidth: %.1f GB/s (best of %d passes over %zu MiB, %d threads; checksum %lld)\n", best / 1e9, reps,
           mib, threads, check & 0xffff);
    free(buf);
    return 0;
}
