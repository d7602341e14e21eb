/* The sim device: a simulated GPU made of host memory behind a hard capacity.
 *
 * An arena larger than the capacity left fails with STRATA_ERR_NOMEM and allocates nothing,
 * the way cudaMalloc returns cudaErrorMemoryAllocation; so does an injected failure
 * (backend_sim_fail_alloc, or env STRATA_SIM_FAIL_ALLOC=N for the Nth sim arena allocation
 * of the process, which lets end-to-end tests reach the failure path through the binary).
 * The arena is ordinary host memory, so the CPU kernels run on it. See backend/device.h. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/device.h"

typedef struct {
    int fail_countdown; /* > 0: the allocation that brings it to 0 fails */
} sim_state;

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
    void *p = backend_host_arena_alloc(bytes);
    if (!p)
        return strata_fail(STRATA_ERR_NOMEM, "device %s: no host memory behind a simulated arena of %zu bytes",
                           dev->label, bytes);
    *out = p;
    return STRATA_OK;
}

static const backend_device_ops sim_ops = {
    .query_free = sim_query_free,
    .measure_gbps = sim_measure_gbps,
    .alloc = sim_alloc,
    .release = backend_host_release,
    .copy_in = backend_host_copy,
    .copy_out = backend_host_copy,
    .destroy = backend_host_destroy,
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
