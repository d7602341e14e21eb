/* CPU device: its arena is one aligned host allocation. See device.h. */
#include "model/device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void strata_device_init_cpu(strata_device *dev) {
    memset(dev, 0, sizeof *dev);
    snprintf(dev->name, sizeof dev->name, "cpu");
    dev->kind = STRATA_DEVICE_CPU;
}

strata_status strata_device_reserve(strata_device *dev, size_t bytes) {
    if (dev->arena.base)
        return strata_fail(STRATA_ERR_INVALID, "device %s: arena already reserved", dev->name);
    size_t size = strata_arena_round(bytes ? bytes : 1);
    void *p = NULL;
    if (dev->source.alloc) {
        strata_status st = dev->source.alloc(dev->source.owner, size, &p);
        if (st != STRATA_OK) return st;
        if (!p || ((uintptr_t)p & (STRATA_ARENA_ALIGN - 1)) != 0) {
            if (p && dev->source.free) dev->source.free(dev->source.owner, p);
            return strata_fail(STRATA_ERR_INVALID, "device %s: arena base is not %d-byte aligned", dev->name,
                               STRATA_ARENA_ALIGN);
        }
    } else if (posix_memalign(&p, STRATA_ARENA_ALIGN, size) != 0 || !p) {
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

void strata_device_release(strata_device *dev) {
    if (dev->arena.base && dev->source.alloc) {
        if (dev->source.free) dev->source.free(dev->source.owner, dev->arena.base);
    } else {
        free(dev->arena.base);
    }
    dev->arena.base = NULL;
    dev->arena.size = 0;
    dev->arena.used = 0;
}
