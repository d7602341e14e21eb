/* A small persistent thread pool for the CPU kernels (used by cpu_matmul instead of OpenMP
 * parallel regions, so that its behaviour does not depend on OMP_WAIT_POLICY & co.).
 *
 * cpu_parallel_for(n_threads, n, fn, ctx) calls fn(ctx, i, tid) once for every i in [0, n),
 * on up to n_threads threads: the caller is tid 0, pool workers are 1..n_threads-1. Items
 * are handed out one at a time from a shared counter, so a thread that the OS has
 * descheduled (machine oversubscribed) holds up at most the item it is working on; the
 * caller returns once every item is done, without waiting for workers that never started.
 * Which thread runs an item is not deterministic: results must not depend on it.
 *
 * Waiting: a worker spins on the job counter for a short while after its last item (so
 * back-to-back calls, as in a decode step, start at once), then sleeps on a futex; the caller
 * waits for the last items the same way. Spinning is bounded in time (STRATA_CPU_SPIN_US,
 * default 200; 0 means always sleep at once) and switched off for 50 ms whenever the pool
 * sees that the machine is oversubscribed (a spinning thread preempted, or workers that
 * spin yet miss whole jobs): there, spinning threads only take CPU time from the thread
 * that has the work, and sleeping ones are woken promptly by the scheduler.
 *
 * Each calling thread has its own workers (created on first use, joined when that thread
 * exits), so concurrent callers do not serialize. A call made from inside a job (nested)
 * runs serially on the calling thread. */
#ifndef STRATA_BACKEND_CPU_THREADPOOL_H
#define STRATA_BACKEND_CPU_THREADPOOL_H

#include <stdint.h>

typedef void (*cpu_parallel_fn)(void *ctx, int64_t i, int tid);

void cpu_parallel_for(int n_threads, int64_t n, cpu_parallel_fn fn, void *ctx);

/* The same contract as cpu_parallel_for, but [0, n) is first cut into n_threads contiguous
 * ranges, one per thread, which each runs in order; a thread that finishes its range takes
 * items from the back of the others'. A thread thus reads neighbouring items one after
 * another (one memory stream, which the hardware prefetcher keeps up with) and claims them
 * without touching a line the others use, while a descheduled thread still holds up at most
 * the item it is running. For items too short to amortize a shared counter, such as the row
 * chunks of one token's matrix-vector product. */
void cpu_parallel_ranges(int n_threads, int64_t n, cpu_parallel_fn fn, void *ctx);

/* True while the calling thread is running an item of a cpu_parallel_for job. */
int cpu_parallel_in_job(void);

#endif
