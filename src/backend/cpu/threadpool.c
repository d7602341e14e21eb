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
 * item of an older job can still be counting.
 *
 * Ranged jobs (cpu_parallel_ranges) use the same counter to hand out seats instead of items:
 * seat s owns the contiguous items [n s / nth, n (s + 1) / nth), kept as one word
 * (back << 32 | front) in span[s]. Its owner takes items from the front, anyone who has run
 * out takes them from the back, each by a compare-and-swap of that word. Seats carry no
 * generation, so a straggler must never reach the spans of a later job: the caller, after
 * its own work, closes the seating (next = (g, ALL_SEATED)) and then waits until every
 * thread that took a seat has left (each adds 1 to `done` on leaving). By then no item is
 * unclaimed (the caller's own pass took whatever the others left, unseated spans too) and
 * none is still running. */
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
    _Atomic int ranged; /* a cpu_parallel_ranges job: next counts seats, not items */
} job_slot;

/* One seat's remaining items of a ranged job: back << 32 | front. A line of its own, so the
 * owner's claims stay in its cache until someone comes to take from the back. */
typedef struct {
    _Alignas(64) _Atomic uint64_t span;
} seat_span;

/* The low half of next once a ranged job's caller has closed the seating. */
#define ALL_SEATED 0xffffffffu

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
    seat_span seat[MAX_WORKERS + 1];
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

/* Takes one item of span *sp (from the front for its owner, else from the back) into *item;
 * returns 0 once the span is empty. */
static int take_item(_Atomic uint64_t *sp, int from_front, uint32_t *item) {
    uint64_t v = atomic_load_explicit(sp, memory_order_relaxed);
    for (;;) {
        const uint32_t front = (uint32_t)v, back = (uint32_t)(v >> 32);
        if (front >= back) return 0;
        const uint64_t to = from_front ? v + 1 : v - ((uint64_t)1 << 32);
        if (atomic_compare_exchange_weak_explicit(sp, &v, to, memory_order_acq_rel, memory_order_relaxed)) {
            *item = from_front ? front : back - 1;
            return 1;
        }
    }
}

/* Runs seat `seat`'s items of a ranged job front to back, then takes from the back of every
 * other seat's span in turn until all are empty; returns how many items it ran. */
static int64_t run_seat(pool *p, cpu_parallel_fn fn, void *ctx, int nth, int seat, int tid) {
    int64_t ran = 0;
    uint32_t i;
    for (int k = 0; k < nth; k++) {
        const int s = (seat + k) % nth;
        while (take_item(&p->seat[s].span, k == 0, &i)) {
            fn(ctx, (int64_t)i, tid);
            ran++;
        }
    }
    return ran;
}

/* Claims and runs items of job g until none is left (for a ranged job: takes a seat and runs
 * it, then leaves); returns how many items it ran. */
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
            const int nth = atomic_load_explicit(&s->nth, memory_order_relaxed);
            const int ranged = atomic_load_explicit(&s->ranged, memory_order_relaxed);
            const uint32_t i = (uint32_t)v;
            if ((int64_t)i >= (ranged ? nth : n)) return ran;
            if (atomic_compare_exchange_weak_explicit(&p->next, &v, v + 1, memory_order_acq_rel,
                                                      memory_order_acquire)) {
                if (ranged) {
                    ran = run_seat(p, fn, ctx, nth, (int)i, tid);
                    if (tid != 0) { /* the caller does not count itself: it is the one waiting */
                        atomic_fetch_add_explicit(&p->done, 1, memory_order_seq_cst);
                        if (atomic_load_explicit(&p->caller_sleeping, memory_order_seq_cst)) futex_wake(&p->done);
                    }
                    return ran;
                }
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

static void parallel_job(int n_threads, int64_t n, cpu_parallel_fn fn, void *ctx, int ranged) {
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
    atomic_store_explicit(&s->ranged, ranged, memory_order_relaxed);
    if (ranged)
        for (int k = 0; k < nth; k++) {
            const uint64_t front = (uint64_t)(n * k / nth), back = (uint64_t)(n * (k + 1) / nth);
            atomic_store_explicit(&p->seat[k].span, back << 32 | front, memory_order_relaxed);
        }
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

    /* wait for the items other threads are still running (ranged: for the threads that took
     * a seat, once no more can) */
    uint32_t until = (uint32_t)n;
    if (ranged) {
        const uint64_t v = atomic_exchange_explicit(&p->next, (uint64_t)g << 32 | ALL_SEATED, memory_order_seq_cst);
        until = (uint32_t)v - 1; /* seats taken, the caller's own excepted */
    }
    uint32_t d = atomic_load_explicit(&p->done, memory_order_acquire);
    if (d == until) return;
    if (spin_wait(p, &p->done, until, 1)) return;
    atomic_store_explicit(&p->caller_sleeping, 1, memory_order_seq_cst);
    while ((d = atomic_load_explicit(&p->done, memory_order_seq_cst)) != until) futex_wait(&p->done, d);
    atomic_store_explicit(&p->caller_sleeping, 0, memory_order_relaxed);
}

void cpu_parallel_for(int n_threads, int64_t n, cpu_parallel_fn fn, void *ctx) {
    parallel_job(n_threads, n, fn, ctx, 0);
}

void cpu_parallel_ranges(int n_threads, int64_t n, cpu_parallel_fn fn, void *ctx) {
    parallel_job(n_threads, n, fn, ctx, 1);
}
