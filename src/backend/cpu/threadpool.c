/* Persistent per-caller thread pool (see threadpool.h).
 *
 * Job protocol. The caller writes the job (function, context, item count, thread count) into
 * one of two slots (generation g uses slot g & 1), then publishes it by storing
 * next = g << 32 (the generation and the next unclaimed item) and gen = g (the futex word the
 * workers sleep on). A thread claims item i by a compare-and-swap of next from (g, i) to
 * (g, i + 1), having read the slot after loading (g, i); a successful swap proves that job g
 * was still current in between, so the slot it read was g's (the caller writes slot g & 1
 * again only for job g + 2, after publishing g + 1). Stragglers that wake up late see
 * another generation in next and claim nothing. Each finished item increments `done`; the
 * caller returns when done reaches the item count, and resets it only after that, so no
 * item of an older job can still be counting. */
#include "backend/cpu/threadpool.h"

#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS 255

typedef struct pool pool;

typedef struct {
    _Atomic(cpu_parallel_fn) fn;
    _Atomic(void *) ctx;
    _Atomic int64_t n;
    _Atomic int nth;
} job_slot;

typedef struct {
    pool *p;
    int tid;
    uint32_t seen;
    pthread_t th;
} worker;

struct pool {
    _Alignas(64) _Atomic uint64_t next; /* generation << 32 | next item */
    _Alignas(64) _Atomic uint32_t done; /* items finished in the current job */
    _Atomic int caller_sleeping;
    _Alignas(64) _Atomic uint32_t gen; /* futex word of sleeping workers */
    _Atomic int sleepers;
    _Atomic int quit;
    _Atomic int64_t contended_until; /* spin not before this time (ns) */
    job_slot slot[2];
    uint32_t cur;  /* the caller's last generation */
    uint32_t miss; /* caller: bit k set if the k-th last job ran entirely on the caller */
    int n_workers;
    worker w[MAX_WORKERS];
};

static _Thread_local pool *tls_pool;
static _Thread_local int tls_in_job;
static pthread_key_t pool_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static int64_t spin_ns = 200000;

static void futex_wait(_Atomic uint32_t *addr, uint32_t val) {
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}
static void futex_wake(_Atomic uint32_t *addr) {
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Spins until *word differs from `val` (returns 1) or the spin budget is spent (returns 0).
 * A gap of more than 50 us between two looks at the clock means the OS preempted this
 * thread while it spun: the machine is oversubscribed, and a spinning thread there only
 * takes time from the others (and, having used its share, is scheduled late itself), while
 * a sleeping one is woken promptly. So after such a gap every thread of the pool sleeps at
 * once for the next 50 ms instead of spinning. */
static int spin_wait(pool *p, _Atomic uint32_t *word, uint32_t val, int cmp_eq) {
    if (spin_ns <= 0) return 0;
    int64_t t = now_ns();
    if (t < atomic_load_explicit(&p->contended_until, memory_order_relaxed)) return 0;
    const int64_t t0 = t;
    for (unsigned k = 1;; k++) {
        cpu_relax();
        const uint32_t v = atomic_load_explicit(word, memory_order_acquire);
        if (cmp_eq ? v == val : v != val) return 1;
        if ((k & 31) == 0) {
            const int64_t t1 = now_ns();
            if (t1 - t > 50000) {
                atomic_store_explicit(&p->contended_until, t1 + 50000000, memory_order_relaxed);
                return 0;
            }
            if (t1 - t0 > spin_ns) return 0;
            t = t1;
        }
    }
}

/* Claims and runs items of job g until none is left; returns how many it ran. */
static int64_t run_items(pool *p, uint32_t g, int tid) {
    job_slot *s = &p->slot[g & 1];
    int64_t ran = 0;
    for (;; ran++) {
        uint64_t v = atomic_load_explicit(&p->next, memory_order_acquire);
        for (;;) {
            if ((uint32_t)(v >> 32) != g) return ran;
            const cpu_parallel_fn fn = atomic_load_explicit(&s->fn, memory_order_relaxed);
            void *ctx = atomic_load_explicit(&s->ctx, memory_order_relaxed);
            const int64_t n = atomic_load_explicit(&s->n, memory_order_relaxed);
            const uint32_t i = (uint32_t)v;
            if ((int64_t)i >= n) return ran;
            if (atomic_compare_exchange_weak_explicit(&p->next, &v, v + 1, memory_order_acq_rel,
                                                      memory_order_acquire)) {
                fn(ctx, (int64_t)i, tid);
                const uint32_t d = atomic_fetch_add_explicit(&p->done, 1, memory_order_seq_cst) + 1;
                if ((int64_t)d == n && atomic_load_explicit(&p->caller_sleeping, memory_order_seq_cst))
                    futex_wake(&p->done);
                break;
            }
        }
    }
}

static void *worker_main(void *arg) {
    worker *w = arg;
    pool *p = w->p;
    tls_in_job = 1; /* calls made by job items run serially */
    uint32_t seen = w->seen;
    for (;;) {
        /* spin a while for the next job, then sleep */
        uint32_t g = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (g == seen && !atomic_load_explicit(&p->quit, memory_order_relaxed)) {
            if (spin_wait(p, &p->gen, seen, 0)) g = atomic_load_explicit(&p->gen, memory_order_acquire);
            if (g == seen) {
                atomic_fetch_add_explicit(&p->sleepers, 1, memory_order_seq_cst);
                while ((g = atomic_load_explicit(&p->gen, memory_order_seq_cst)) == seen &&
                       !atomic_load_explicit(&p->quit, memory_order_seq_cst))
                    futex_wait(&p->gen, seen);
                atomic_fetch_sub_explicit(&p->sleepers, 1, memory_order_seq_cst);
            }
        }
        if (atomic_load_explicit(&p->quit, memory_order_acquire)) return NULL;
        seen = g;
        if (w->tid < atomic_load_explicit(&p->slot[g & 1].nth, memory_order_relaxed)) run_items(p, g, w->tid);
    }
}

static void pool_destroy(void *arg) {
    pool *p = arg;
    if (!p) return;
    atomic_store(&p->quit, 1);
    atomic_fetch_add(&p->gen, 1);
    futex_wake(&p->gen);
    for (int i = 0; i < p->n_workers; i++) pthread_join(p->w[i].th, NULL);
    free(p);
}

static void key_init(void) {
    pthread_key_create(&pool_key, pool_destroy);
    const char *e = getenv("STRATA_CPU_SPIN_US");
    if (e && *e) {
        char *end;
        long v = strtol(e, &end, 10);
        if (*end == 0 && v >= 0 && v <= 1000000) spin_ns = (int64_t)v * 1000;
    }
}

static pool *get_pool(void) {
    if (tls_pool) return tls_pool;
    pthread_once(&key_once, key_init);
    pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    if (pthread_setspecific(pool_key, p) != 0) {
        free(p);
        return NULL;
    }
    tls_pool = p;
    return p;
}

int cpu_parallel_in_job(void) { return tls_in_job; }

void cpu_parallel_for(int n_threads, int64_t n, cpu_parallel_fn fn, void *ctx) {
    if (n <= 0) return;
    int nth = n_threads;
    if (nth > MAX_WORKERS + 1) nth = MAX_WORKERS + 1;
    if ((int64_t)nth > n) nth = (int)n;
    pool *p = nth > 1 && !tls_in_job && n < ((int64_t)1 << 31) ? get_pool() : NULL;
    if (p) {
        while (p->n_workers < nth - 1) {
            worker *w = &p->w[p->n_workers];
            w->p = p;
            w->tid = p->n_workers + 1;
            w->seen = p->cur;
            if (pthread_create(&w->th, NULL, worker_main, w) != 0) break;
            p->n_workers++;
        }
        if (nth > p->n_workers + 1) nth = p->n_workers + 1;
    }
    if (!p || nth <= 1) {
        const int saved = tls_in_job;
        tls_in_job = 1;
        for (int64_t i = 0; i < n; i++) fn(ctx, i, 0);
        tls_in_job = saved;
        return;
    }

    const uint32_t g = ++p->cur;
    job_slot *s = &p->slot[g & 1];
    atomic_store_explicit(&s->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&s->ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&s->n, n, memory_order_relaxed);
    atomic_store_explicit(&s->nth, nth, memory_order_relaxed);
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    atomic_store_explicit(&p->next, (uint64_t)g << 32, memory_order_seq_cst);
    atomic_store_explicit(&p->gen, g, memory_order_seq_cst);
    if (atomic_load_explicit(&p->sleepers, memory_order_seq_cst) > 0) futex_wake(&p->gen);

    tls_in_job = 1;
    const int64_t t_start = now_ns();
    const int64_t ran = run_items(p, g, 0);
    tls_in_job = 0;

    /* A spinning worker claims an item within a microsecond or so. If the caller ran every
     * item of a job that lasted longer than that twice within 16 jobs, the workers are not
     * getting the CPU when they spin (the machine is oversubscribed; a single miss is just a
     * worker waking from sleep): have everyone sleep at once for a while (see spin_wait). */
    p->miss <<= 1;
    if (ran == n && n > 1) {
        const int64_t t_end = now_ns();
        if (t_end - t_start > 5000) {
            p->miss |= 1;
            if (__builtin_popcount(p->miss & 0xffff) >= 2)
                atomic_store_explicit(&p->contended_until, t_end + 50000000, memory_order_relaxed);
        }
    }

    /* wait for the items other threads are still running */
    uint32_t d = atomic_load_explicit(&p->done, memory_order_acquire);
    if ((int64_t)d == n) return;
    if (spin_wait(p, &p->done, (uint32_t)n, 1)) return;
    atomic_store_explicit(&p->caller_sleeping, 1, memory_order_seq_cst);
    while ((int64_t)(d = atomic_load_explicit(&p->done, memory_order_seq_cst)) != n) futex_wait(&p->done, d);
    atomic_store_explicit(&p->caller_sleeping, 0, memory_order_relaxed);
}
