/* The CPU thread pool (backend/cpu/threadpool.h), both job kinds: cpu_parallel_for (items
 * from a shared counter) and cpu_parallel_ranges (a contiguous range per thread, the rest
 * taken from the back of the others').
 *
 * - Every item runs exactly once, for item counts around the thread count and far above it,
 *   and thread counts from 1 to more than the items.
 * - Thousands of short jobs back to back, the two kinds interleaved, with every result
 *   checked: a worker that sees a job late must not run items of the next one (the ranged
 *   kind's seats carry no generation: the caller's close-and-wait is what protects them).
 * - A thread stuck in one item holds up only that item: the others run all the rest while it
 *   waits for them (with no stealing, the stuck thread's range would never finish and the
 *   item would time out).
 * - A call from inside an item runs serially on that thread, and is complete on return. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <time.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "backend/cpu/threadpool.h"

typedef void (*job_kind)(int, int64_t, cpu_parallel_fn, void *);
static const job_kind kinds[2] = {cpu_parallel_for, cpu_parallel_ranges};
static const char *const kind_names[2] = {"cpu_parallel_for", "cpu_parallel_ranges"};

typedef struct {
    _Atomic int *runs; /* per item */
    _Atomic int64_t total;
} count_job;

static void count_item(void *ctx, int64_t i, int tid) {
    (void)tid;
    count_job *c = ctx;
    atomic_fetch_add(&c->runs[i], 1);
    atomic_fetch_add(&c->total, 1);
}

static void check_once(job_kind run, const char *name, int nth, int64_t n, _Atomic int *runs) {
    count_job c = {.runs = runs};
    for (int64_t i = 0; i < n; i++) atomic_store(&runs[i], 0);
    run(nth, n, count_item, &c);
    for (int64_t i = 0; i < n; i++)
        if (atomic_load(&runs[i]) != 1) fail_msg("%s, %d threads, %lld items: item %lld ran %d times", name, nth,
                                                 (long long)n, (long long)i, atomic_load(&runs[i]));
    assert_int_equal(atomic_load(&c.total), n);
}

static void test_every_item_once(void **state) {
    (void)state;
    const int64_t counts[] = {1, 2, 3, 5, 7, 8, 31, 64, 1000, 100003};
    _Atomic int *runs = calloc(100003, sizeof *runs);
    assert_non_null(runs);
    for (int k = 0; k < 2; k++)
        for (int nth = 1; nth <= 9; nth++)
            for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) check_once(kinds[k], kind_names[k], nth, counts[c], runs);
    free(runs);
}

/* Job j of a run: item i adds j * 1000 + i to the job's own cell of sums; the expected sums
 * are known, so an item run twice, skipped, or run under the wrong job shows. */
typedef struct {
    _Atomic int64_t *sum;
    int64_t job;
} sum_job;

static void sum_item(void *ctx, int64_t i, int tid) {
    (void)tid;
    sum_job *s = ctx;
    atomic_fetch_add(s->sum, s->job * 1000 + i);
}

static void test_back_to_back_jobs(void **state) {
    (void)state;
    enum { JOBS = 20000 };
    _Atomic int64_t *sums = calloc(JOBS, sizeof *sums);
    assert_non_null(sums);
    for (int j = 0; j < JOBS; j++) {
        const int64_t n = 1 + j % 13; /* 1 to 13 items, often fewer than the threads */
        sum_job s = {.sum = &sums[j], .job = j};
        kinds[(j / 3) % 2](1 + j % 4, n, sum_item, &s);
        const int64_t want = n * j * 1000 + n * (n - 1) / 2;
        if (atomic_load(&sums[j]) != want)
            fail_msg("job %d (%s, %d threads, %lld items): sum %lld, want %lld", j, kind_names[(j / 3) % 2], 1 + j % 4,
                     (long long)n, (long long)atomic_load(&sums[j]), (long long)want);
    }
    free(sums);
}

typedef struct {
    int64_t n;
    _Atomic int64_t finished;
    _Atomic int timed_out;
} stuck_job;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Item 0 waits (sleeping, so a worker gets the CPU even on one core) until every other item
 * has finished; those must run on other threads meanwhile. */
static void stuck_item(void *ctx, int64_t i, int tid) {
    (void)tid;
    stuck_job *s = ctx;
    if (i == 0) {
        const double t0 = now_s();
        while (atomic_load(&s->finished) < s->n - 1) {
            if (now_s() - t0 > 10) {
                atomic_store(&s->timed_out, 1);
                return;
            }
            struct timespec d = {0, 200000};
            nanosleep(&d, NULL);
        }
        return;
    }
    atomic_fetch_add(&s->finished, 1);
}

static void test_stuck_thread_holds_one_item(void **state) {
    (void)state;
    for (int k = 0; k < 2; k++)
        for (int nth = 2; nth <= 4; nth++) {
            stuck_job s = {.n = 64};
            kinds[k](nth, s.n, stuck_item, &s);
            if (atomic_load(&s.timed_out))
                fail_msg("%s, %d threads: the other items did not run while one thread was stuck", kind_names[k], nth);
            assert_int_equal(atomic_load(&s.finished), s.n - 1);
        }
}

typedef struct {
    _Atomic int *runs;
    _Atomic int nested_ok;
} outer_job;

static void outer_item(void *ctx, int64_t i, int tid) {
    (void)tid;
    outer_job *o = ctx;
    _Atomic int inner[16];
    count_job c = {.runs = inner};
    for (int k = 0; k < 16; k++) atomic_store(&inner[k], 0);
    kinds[i % 2](4, 16, count_item, &c);
    int ok = atomic_load(&c.total) == 16;
    for (int k = 0; k < 16; k++) ok &= atomic_load(&inner[k]) == 1;
    if (ok) atomic_fetch_add(&o->nested_ok, 1);
    atomic_fetch_add(&o->runs[i], 1);
}

static void test_nested_calls(void **state) {
    (void)state;
    for (int k = 0; k < 2; k++) {
        _Atomic int runs[24];
        for (int i = 0; i < 24; i++) atomic_store(&runs[i], 0);
        outer_job o = {.runs = runs};
        kinds[k](3, 24, outer_item, &o);
        assert_int_equal(atomic_load(&o.nested_ok), 24);
        for (int i = 0; i < 24; i++) assert_int_equal(atomic_load(&runs[i]), 1);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_item_once),
        cmocka_unit_test(test_back_to_back_jobs),
        cmocka_unit_test(test_stuck_thread_holds_one_item),
        cmocka_unit_test(test_nested_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
