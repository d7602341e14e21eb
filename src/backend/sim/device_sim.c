/* The sim device: a simulated GPU made of host memory behind a hard capacity.
 *
 * An arena larger than the capacity left fails with STRATA_ERR_NOMEM and allocates nothing,
 * the way cudaMalloc returns cudaErrorMemoryAllocation; so does an injected failure
 * (backend_sim_fail_alloc, or env STRATA_SIM_FAIL_ALLOC=N for the Nth sim arena allocation
 * of the process, which lets end-to-end tests reach the failure path through the binary).
 *
 * Opaque memory. An arena is anonymous host memory of its own mapping (mmap), touched only
 * by the sim's own ops (backend/sim/ops_sim.c: the CPU kernels, run between sim_enter and
 * sim_leave) and its copies. In strict mode (backend_sim_set_strict, or env
 * STRATA_SIM_STRICT=1 when the device is made) the arenas are mprotect'ed PROT_NONE
 * whenever no op of the sim runs, so that any other access -- the host reading logits in
 * place, a forward pass writing a hidden state or dereferencing a norm weight -- faults at
 * once (SIGSEGV) instead of working by accident as it would not on a GPU. Ops nest and may
 * run from several threads: a count of ops in progress opens the arenas on the first and
 * closes them on the last, and an arena made while they are open starts open. See
 * backend/device.h. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend/device_impl.h"
#include "backend/ops.h"
#include "backend/sim/sim.h"

typedef struct {
    int fail_countdown; /* > 0: the allocation that brings it to 0 fails */
    bool strict;
    pthread_mutex_t mu; /* guards the fields below */
    int open;           /* ops in progress */
    void *maps[BACKEND_MAX_ARENAS];
    size_t map_len[BACKEND_MAX_ARENAS];
    int n_maps;
} sim_state;

static size_t page_round(size_t bytes) {
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    return (bytes + pg - 1) / pg * pg;
}

static void protect_all(sim_state *s, int prot) {
    for (int i = 0; i < s->n_maps; i++) STRATA_ASSERT(mprotect(s->maps[i], s->map_len[i], prot) == 0);
}

void sim_enter(backend_device *dev) {
    sim_state *s = dev->impl;
    pthread_mutex_lock(&s->mu);
    if (s->open++ == 0 && s->strict) protect_all(s, PROT_READ | PROT_WRITE);
    pthread_mutex_unlock(&s->mu);
}

void sim_leave(backend_device *dev) {
    sim_state *s = dev->impl;
    pthread_mutex_lock(&s->mu);
    STRATA_ASSERT(s->open > 0);
    if (--s->open == 0 && s->strict) protect_all(s, PROT_NONE);
    pthread_mutex_unlock(&s->mu);
}

void backend_sim_set_strict(backend_device *dev, bool strict) {
    if (!dev || dev->kind != BACKEND_DEVICE_SIM) return;
    sim_state *s = dev->impl;
    pthread_mutex_lock(&s->mu);
    s->strict = strict;
    if (s->open == 0) protect_all(s, strict ? PROT_NONE : PROT_READ | PROT_WRITE);
    pthread_mutex_unlock(&s->mu);
}

bool backend_sim_strict(const backend_device *dev) {
    return dev && dev->kind == BACKEND_DEVICE_SIM && ((const sim_state *)dev->impl)->strict;
}

static atomic_uint_fast64_t sim_attempts;

uint64_t backend_sim_alloc_attempts(void) { return (uint64_t)atomic_load(&sim_attempts); }

static strata_status sim_query_free(backend_device *dev, uint64_t *free_bytes) {
    *free_bytes = dev->total_bytes > dev->arena_bytes ? dev->total_bytes - dev->arena_bytes : 0;
    return STRATA_OK;
}

static double sim_measure_gbps(backend_device *dev) {
    (void)dev;
    return BACKEND_SIM_DEFAULT_GBPS;
}

static bool env_failure_due(uint64_t attempt) {
    const char *s = getenv("STRATA_SIM_FAIL_ALLOC");
    if (!s || !*s) return false;
    char *end = NULL;
    unsigned long long n = strtoull(s, &end, 10);
    return end && *end == 0 && n > 0 && attempt == (uint64_t)n;
}

static strata_status sim_alloc(backend_device *dev, size_t bytes, void **out) {
    sim_state *s = dev->impl;
    uint64_t attempt = (uint64_t)atomic_fetch_add(&sim_attempts, 1) + 1;
    bool injected = false;
    if (s->fail_countdown > 0 && --s->fail_countdown == 0) injected = true;
    if (env_failure_due(attempt)) injected = true;
    uint64_t left = dev->total_bytes > dev->arena_bytes ? dev->total_bytes - dev->arena_bytes : 0;
    if (injected || bytes > left)
        return strata_fail(STRATA_ERR_NOMEM,
                           "device %s: out of memory allocating %zu bytes (capacity %llu bytes, %llu free%s)",
                           dev->label, bytes, (unsigned long long)dev->total_bytes, (unsigned long long)left,
                           injected ? "; injected failure" : "");
    const size_t len = page_round(bytes);
    pthread_mutex_lock(&s->mu);
    const int prot = s->strict && s->open == 0 ? PROT_NONE : PROT_READ | PROT_WRITE;
    void *p = s->n_maps < BACKEND_MAX_ARENAS ? mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) : MAP_FAILED;
    if (p != MAP_FAILED) {
        s->maps[s->n_maps] = p;
        s->map_len[s->n_maps++] = len;
    }
    pthread_mutex_unlock(&s->mu);
    if (p == MAP_FAILED)
        return strata_fail(STRATA_ERR_NOMEM, "device %s: no host memory behind a simulated arena of %zu bytes",
                           dev->label, bytes);
    *out = p;
    return STRATA_OK;
}

static void sim_release(backend_device *dev, void *ptr, size_t bytes) {
    sim_state *s = dev->impl;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n_maps; i++) {
        if (s->maps[i] != ptr) continue;
        STRATA_ASSERT(s->map_len[i] == page_round(bytes));
        munmap(ptr, s->map_len[i]);
        s->maps[i] = s->maps[s->n_maps - 1];
        s->map_len[i] = s->map_len[s->n_maps - 1];
        s->n_maps--;
        break;
    }
    pthread_mutex_unlock(&s->mu);
}

/* Copies in and out are the sim's own accesses: its arenas are open while they run. */
static strata_status sim_copy(backend_device *dev, void *dst, const void *src, size_t bytes) {
    sim_enter(dev);
    if (bytes) memcpy(dst, src, bytes);
    sim_leave(dev);
    return STRATA_OK;
}

static void sim_destroy(backend_device *dev) {
    sim_state *s = dev->impl;
    if (!s) return;
    for (int i = 0; i < s->n_maps; i++) munmap(s->maps[i], s->map_len[i]);
    pthread_mutex_destroy(&s->mu);
    free(s);
    dev->impl = NULL;
}

static const backend_device_ops sim_ops = {
    .query_free = sim_query_free,
    .measure_gbps = sim_measure_gbps,
    .alloc = sim_alloc,
    .release = sim_release,
    .copy_in = sim_copy,
    .copy_out = sim_copy,
    .destroy = sim_destroy,
    .compute = &backend_sim_ops,
};

backend_device *backend_sim_device_new(const char *name, uint64_t capacity, double gbps) {
    if (capacity == 0) return NULL;
    backend_device *d = calloc(1, sizeof *d);
    sim_state *s = calloc(1, sizeof *s);
    if (!d || !s) {
        free(d);
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    const char *strict = getenv("STRATA_SIM_STRICT");
    s->strict = strict && strcmp(strict, "1") == 0;
    d->ops = &sim_ops;
    d->kind = BACKEND_DEVICE_SIM;
    d->impl = s;
    snprintf(d->name, sizeof d->name, "%s", name ? name : "sim");
    snprintf(d->label, sizeof d->label, "%s", d->name);
    d->total_bytes = capacity;
    d->gbps = gbps > 0 ? gbps : BACKEND_SIM_DEFAULT_GBPS;
    d->gbps_configured = gbps > 0;
    d->plannable = true;
    return d;
}

void backend_sim_fail_alloc(backend_device *dev, int nth) {
    if (!dev || dev->kind != BACKEND_DEVICE_SIM) return;
    sim_state *s = dev->impl;
    s->fail_countdown = nth > 0 ? nth : 0;
}
