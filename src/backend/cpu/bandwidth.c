/* The read-bandwidth probe (see bandwidth.h). */
#include "backend/cpu/bandwidth.h"

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "backend/cpu/threadpool.h"

/* 128-bit lanes through the compiler's vector extension: plain SSE2 loads on x86-64, which
 * saturate memory as well as wider ones here, and portable elsewhere. */
typedef long long lanes2 __attribute__((vector_size(16)));

enum { SLICES = 64 }; /* work items: enough for the pool to balance them across threads */

typedef struct {
    lanes2 *buf;
    size_t n;          /* lanes2 elements in all */
    long long sums[SLICES];
} probe;

static void slice_bounds(const probe *p, int64_t i, size_t *lo, size_t *hi) {
    const size_t per = p->n / SLICES;
    *lo = per * (size_t)i;
    *hi = i == SLICES - 1 ? p->n : *lo + per;
}

static void fill_slice(void *ctx, int64_t i, int tid) {
    (void)tid;
    probe *p = ctx;
    size_t lo, hi;
    slice_bounds(p, i, &lo, &hi);
    for (size_t j = lo; j < hi; j++) p->buf[j] = (lanes2){(long long)j, 1};
}

/* Four independent accumulators, so the adds never wait on each other: only memory limits. */
static void sum_slice(void *ctx, int64_t i, int tid) {
    (void)tid;
    probe *p = ctx;
    size_t lo, hi;
    slice_bounds(p, i, &lo, &hi);
    lanes2 a0 = {0, 0}, a1 = a0, a2 = a0, a3 = a0;
    size_t j = lo;
    for (; j + 4 <= hi; j += 4) {
        a0 += p->buf[j];
        a1 += p->buf[j + 1];
        a2 += p->buf[j + 2];
        a3 += p->buf[j + 3];
    }
    for (; j < hi; j++) a0 += p->buf[j];
    const lanes2 s = a0 + a1 + a2 + a3;
    p->sums[i] = s[0] + s[1];
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double cpu_read_bandwidth_gbps(size_t bytes, int n_threads, int passes) {
    probe p = {.n = bytes / sizeof(lanes2)};
    if (p.n < SLICES || posix_memalign((void **)&p.buf, 4096, p.n * sizeof(lanes2)) != 0) return 0;
    if (n_threads < 1) n_threads = 1;
    cpu_parallel_for(n_threads, SLICES, fill_slice, &p);
    double best = 0;
    volatile long long sink = 0; /* the sums are used, so the reads cannot be dropped */
    for (int pass = 0; pass < (passes > 0 ? passes : 1); pass++) {
        const double t0 = now_seconds();
        cpu_parallel_for(n_threads, SLICES, sum_slice, &p);
        const double dt = now_seconds() - t0;
        for (int i = 0; i < SLICES; i++) sink += p.sums[i];
        if (dt > 0 && (double)(p.n * sizeof(lanes2)) / dt > best) best = (double)(p.n * sizeof(lanes2)) / dt;
    }
    (void)sink;
    free(p.buf);
    return best / 1e9;
}
