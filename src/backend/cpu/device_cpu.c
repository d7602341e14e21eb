/* The cpu device: host memory, free = MemAvailable, speed configured or measured once.
 * See backend/device.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/cpu/bandwidth.h"
#include "backend/cpu/cpu_count.h"
#include "backend/device_impl.h"
#include "backend/ops.h"

/* Reads "Key:   12345 kB" from /proc/meminfo; false when absent (not Linux, sandboxed). */
static bool meminfo_bytes(const char *key, uint64_t *out) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return false;
    char line[256];
    size_t klen = strlen(key);
    bool found = false;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            unsigned long long kb = 0;
            if (sscanf(line + klen + 1, "%llu", &kb) == 1) {
                *out = (uint64_t)kb * 1024u;
                found = true;
            }
            break;
        }
    }
    fclose(f);
    return found;
}

static uint64_t sysconf_bytes(int name) {
    long pages = sysconf(name), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return 0;
    return (uint64_t)pages * (uint64_t)page;
}

/* impl: the configured host memory (the spec's MEMORY), or NULL to read /proc/meminfo. */
static strata_status cpu_query_free(backend_device *dev, uint64_t *free_bytes) {
    uint64_t v = 0;
    if (dev->impl) {
        uint64_t mem = *(const uint64_t *)dev->impl;
        v = mem > dev->arena_bytes ? mem - dev->arena_bytes : 0;
    } else if (!meminfo_bytes("MemAvailable", &v)) {
        v = sysconf_bytes(_SC_AVPHYS_PAGES);
    }
    *free_bytes = v;
    return STRATA_OK;
}

/* Read bandwidth: a 64 MiB buffer (beyond the cache of the CPUs this runs on) read by one
 * thread per CPU this process may use (cpu_count.h), best of three passes. Decoding streams each weight once per token,
 * so a streaming read is the figure the cost model wants. About 10-40 ms, once. */
static double cpu_measure_gbps(backend_device *dev) {
    (void)dev;
    double gbps = cpu_read_bandwidth_gbps((size_t)64 << 20, cpu_count_usable(), 3);
    return gbps > 0 ? gbps : BACKEND_CPU_DEFAULT_GBPS;
}

static strata_status cpu_alloc(backend_device *dev, size_t bytes, void **out) {
    if (dev->impl && bytes + dev->arena_bytes > *(const uint64_t *)dev->impl)
        return strata_fail(STRATA_ERR_NOMEM, "device %s: an arena of %zu bytes exceeds its configured memory of %llu bytes",
                           dev->label, bytes, (unsigned long long)*(const uint64_t *)dev->impl);
    void *p = backend_host_arena_alloc(bytes);
    if (!p)
        return strata_fail(STRATA_ERR_NOMEM, "device %s: cannot allocate an arena of %zu bytes of host memory",
                           dev->label, bytes);
    *out = p;
    return STRATA_OK;
}

static const backend_device_ops cpu_ops = {
    .query_free = cpu_query_free,
    .measure_gbps = cpu_measure_gbps,
    .alloc = cpu_alloc,
    .release = backend_host_release,
    .copy_in = backend_host_copy,
    .copy_out = backend_host_copy,
    .destroy = backend_host_destroy,
    .compute = &backend_cpu_ops,
};

backend_device *backend_cpu_device_new(const char *name, uint64_t mem_cap, double gbps) {
    backend_device *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->ops = &cpu_ops;
    d->kind = BACKEND_DEVICE_CPU;
    snprintf(d->name, sizeof d->name, "%s", name ? name : "cpu");
    snprintf(d->label, sizeof d->label, "%s", d->name);
    uint64_t total = 0;
    if (!meminfo_bytes("MemTotal", &total)) total = sysconf_bytes(_SC_PHYS_PAGES);
    if (mem_cap) {
        uint64_t *mem = malloc(sizeof *mem);
        if (!mem) {
            free(d);
            return NULL;
        }
        *mem = mem_cap;
        d->impl = mem;
        total = mem_cap;
    }
    d->total_bytes = total;
    d->gbps = gbps > 0 ? gbps : 0;
    d->gbps_configured = gbps > 0;
    d->plannable = true;
    return d;
}

int backend_cpu_default_threads(void) { return cpu_count_physical_cores(); }
