/* Devices and their arenas, as the forward pass sees them.
 *
 * Every byte the engine puts on a device (KV cache, compute scratch, weights when they are
 * copied) comes from that device's single arena, reserved once at load with exactly the size
 * that the sizing functions of model/model.h compute from the GGUF header and the options.
 * Nothing is allocated after that, in particular not inside the decode loop.
 *
 * Only the CPU device exists for now (its weights stay in the read-only GGUF mapping); the
 * planner issue adds simulated and CUDA devices behind the same struct: a device is a name,
 * a kind and one arena. */
#ifndef STRATA_MODEL_DEVICE_H
#define STRATA_MODEL_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* Every arena allocation is rounded up to this, so sizes computed ahead of time by
 * model_*_bytes() equal what the arena hands out, to the byte. */
#define STRATA_ARENA_ALIGN 64

static inline size_t strata_arena_round(size_t bytes) {
    return (bytes + (STRATA_ARENA_ALIGN - 1)) & ~(size_t)(STRATA_ARENA_ALIGN - 1);
}

typedef struct {
    uint8_t *base; /* owned; NULL until reserved */
    size_t size;   /* bytes reserved */
    size_t used;   /* bytes handed out */
} strata_arena;

typedef enum { STRATA_DEVICE_CPU = 0 } strata_device_kind;

/* Where an arena's memory comes from. NULL hooks = host memory (posix_memalign). A device
 * of the backend (src/backend/device.h: cpu, sim with its hard capacity, cuda) plugs in
 * here, so that the arena is allocated, and fails, exactly as that device does. */
typedef struct {
    strata_status (*alloc)(void *owner, size_t bytes, void **base); /* base aligned to 64 */
    void (*free)(void *owner, void *base);
    void *owner;
} strata_arena_source;

typedef struct {
    char name[32];           /* "cpu" */
    strata_device_kind kind;
    strata_arena arena;
    strata_arena_source source;
} strata_device;

/* Fills a CPU device with an empty arena (nothing reserved yet). */
void strata_device_init_cpu(strata_device *dev);

/* Reserves the device's one arena of exactly `bytes` bytes (64-byte aligned base).
 * Fails with STRATA_ERR_NOMEM (and reserves nothing) when the memory is not there, or
 * STRATA_ERR_INVALID if the arena is already reserved. */
strata_status strata_device_reserve(strata_device *dev, size_t bytes);

/* Hands out strata_arena_round(bytes) bytes from the arena, 64-byte aligned; NULL (with a
 * strata_fail message naming the device and `what`) if the arena is exhausted, which means
 * the sizing functions and the loader disagree: a bug, reported rather than crashed on. */
void *strata_device_alloc(strata_device *dev, size_t bytes, const char *what);

/* Returns the arena's memory; the device may be reserved again afterwards. */
void strata_device_release(strata_device *dev);

#endif
