/* Devices and their arenas, as the forward pass sees them.
 *
 * Every byte the engine puts on a device (KV cache, compute scratch, weights when they are
 * copied) comes from that device's single arena, reserved once at load with exactly the size
 * that the sizing functions of model/model.h compute from the GGUF header and the options.
 * Nothing is allocated after that, in particular not inside the decode loop.
 *
 * One notion of device. The device itself -- its kind, name, capacity, speed, its memory
 * and how that memory fails -- is the backend's backend_device (src/backend/device.h: cpu,
 * sim with its hard capacity and failure injection, cuda). A strata_device is only the
 * engine's *use* of one for one model context: a pointer to that backend_device plus the
 * bump pointer over the one arena the context reserved on it. The arena is obtained with
 * backend_device_arena_alloc and given back with backend_device_arena_release, so the sim's
 * capacity and injected failures apply to the engine's arenas, and backend_device reports
 * what is held (arena_bytes). A strata_device with no backend (strata_device_init_host)
 * takes its arena from plain host memory: for tests of the engine alone and for tools that
 * need no inventory.
 *
 * Weights. On a device whose memory is host memory (the cpu, or a host device: its op
 * table's host_memory) they stay in the read-only GGUF mapping, except the matrices its
 * kernels keep in a layout of their own (backend/cpu/repack.h: Q4_0, Q4_K), which its
 * matrix_upload op writes into the arena at load. On any other device (sim, cuda) each
 * weight tensor of the device's layers is put into the arena,
 * one strata_device_alloc per tensor, by matrix_upload or a copy (a sim, computing with
 * the CPU kernels, takes the same layout as the cpu). */
#ifndef STRATA_MODEL_DEVICE_H
#define STRATA_MODEL_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/device.h"
#include "backend/ops.h"
#include "core/status.h"

/* Every arena allocation is rounded up to this, so sizes computed ahead of time by
 * model_*_bytes() equal what the arena hands out, to the byte. */
#define STRATA_ARENA_ALIGN 64

static inline size_t strata_arena_round(size_t bytes) {
    return (bytes + (STRATA_ARENA_ALIGN - 1)) & ~(size_t)(STRATA_ARENA_ALIGN - 1);
}

typedef struct {
    uint8_t *base; /* NULL until reserved; owned by the backend device, or by us when host */
    size_t size;   /* bytes reserved */
    size_t used;   /* bytes handed out */
} strata_arena;

typedef struct {
    char name[BACKEND_NAME_MAX + 16]; /* the backend device's label, or "cpu" */
    backend_device *backend;          /* borrowed; NULL = plain host memory */
    strata_arena arena;
} strata_device;

/* A host device with an empty arena (nothing reserved yet), weights left mapped. */
void strata_device_init_cpu(strata_device *dev);

/* The engine's use of backend device `b` (borrowed; it must outlive the context): the arena
 * comes from b, weights are copied when b's memory is not host memory (strata_device_ops). */
void strata_device_init_backend(strata_device *dev, backend_device *b);

/* Reserves the device's one arena of exactly `bytes` bytes (64-byte aligned base), through
 * the backend device when there is one. Fails with STRATA_ERR_NOMEM (and reserves nothing)
 * when the memory is not there (a sim's capacity, an injected failure), or
 * STRATA_ERR_INVALID if the arena is already reserved. */
strata_status strata_device_reserve(strata_device *dev, size_t bytes);

/* Hands out strata_arena_round(bytes) bytes from the arena, 64-byte aligned; NULL (with a
 * strata_fail message naming the device and `what`) if the arena is exhausted, which means
 * the sizing functions and the loader disagree: a bug, reported rather than crashed on. */
void *strata_device_alloc(strata_device *dev, size_t bytes, const char *what);

/* The op table the device's segments run with: its backend's, or the cpu's for a host
 * device; NULL for a backend that cannot compute in this build. */
const backend_ops *strata_device_ops(const strata_device *dev);

/* Copies host bytes into the arena (backend_device_copy_in when there is a backend). */
strata_status strata_device_copy_in(strata_device *dev, void *dst, const void *src, size_t bytes);

/* Returns the arena's memory; the device may be reserved again afterwards. */
void strata_device_release(strata_device *dev);

#endif
