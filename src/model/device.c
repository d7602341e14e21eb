/* The engine's use of a device: one arena, through the backend device. See device.h. */
#include "model/device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void strata_device_init_cpu(strata_device *dev) {
    memset(dev, 0, sizeof *dev);
    snprintf(dev->name, sizeof dev->name, "cpu");
}

void strata_device_init_backend(strata_device *dev, backend_device *b) {
    memset(dev, 0, sizeof *dev);
    snprintf(dev->name, sizeof dev->name, "%s", backend_device_label(b));
    dev->backend = b;
}

strata_status strata_device_reserve(strata_device *dev, size_t bytes) {
    if (dev->arena.base)
        return strata_fail(STRATA_ERR_INVALID, "device %s: arena already reserved", dev->name);
    void *p = NULL;
    if (dev->backend) {
        /* Exactly `bytes` (the planned figure: every sizing term is a multiple of 64 already),
         * so that backend_device arena_bytes reports the plan's number. */
        strata_status st = backend_device_arena_alloc(dev->backend, bytes ? bytes : STRATA_ARENA_ALIGN, &p);
        if (st != STRATA_OK) return st;
        if (((uintptr_t)p & (STRATA_ARENA_ALIGN - 1)) != 0) {
            backend_device_arena_release(dev->backend, p);
            return strata_fail(STRATA_ERR_INVALID, "device %s: arena base is not %d-byte aligned", dev->name,
                               STRATA_ARENA_ALIGN);
        }
    } else {
        size_t size = strata_arena_round(bytes ? bytes : 1);
        if (posix_memalign(&p, STRATA_ARENA_ALIGN, size) != 0 || !p)
            return strata_fail(STRATA_ERR_NOMEM, "device %s: cannot reserve %zu bytes", dev->name, size);
    }
    dev->arena.base = p;
    dev->arena.size = bytes;
    dev->arena.used = 0;
    return STRATA_OK;
}

void *strata_device_alloc(strata_device *dev, size_t bytes, const char *what) {
    size_t n = strata_arena_round(bytes);
    if (!dev->arena.base || n > dev->arena.size - dev->arena.used) {
        strata_fail(STRATA_ERR_NOMEM, "device %s: arena of %zu bytes exhausted allocating %zu bytes for %s",
                    dev->name, dev->arena.size, n, what);
        return NULL;
    }
    void *p = dev->arena.base + dev->arena.used;
    dev->arena.used += n;
    return p;
}

strata_status strata_device_copy_in(strata_device *dev, void *dst, const void *src, size_t bytes) {
    if (dev->backend) return backend_device_copy_in(dev->backend, dst, src, bytes);
    if (bytes) memcpy(dst, src, bytes);
    return STRATA_OK;
}

const backend_ops *strata_device_ops(const strata_device *dev) {
    return dev->backend ? backend_device_compute(dev->backend) : &backend_cpu_ops;
}

void strata_device_release(strata_device *dev) {
    if (dev->arena.base) {
        if (dev->backend) backend_device_arena_release(dev->backend, dev->arena.base);
        else free(dev->arena.base);
    }
    dev->arena.base = NULL;
    dev->arena.size = 0;
    dev->arena.used = 0;
}
