/* Private to backend/ (and its tests): the device struct and the function table each kind
 * fills. Everything else reads a device through backend/device.h. */
#ifndef STRATA_BACKEND_DEVICE_IMPL_H
#define STRATA_BACKEND_DEVICE_IMPL_H

#include "backend/device.h"

/* The function table each kind fills. Called only through the backend_device_* wrappers,
 * which do the bookkeeping common to all kinds (one arena, caps, messages). */
typedef struct {
    /* Bytes free on the device right now, before the spec's cap is applied. */
    strata_status (*query_free)(backend_device *dev, uint64_t *free_bytes);
    /* Speed in GB/s when not configured (measured or derived); > 0. */
    double (*measure_gbps)(backend_device *dev);
    /* Allocates `bytes` (> 0) aligned to BACKEND_ARENA_ALIGN; STRATA_ERR_NOMEM on failure. */
    strata_status (*alloc)(backend_device *dev, size_t bytes, void **out);
    void (*release)(backend_device *dev, void *ptr, size_t bytes);
    /* Host -> device (dst in the arena) and device -> host (src in the arena). */
    strata_status (*copy_in)(backend_device *dev, void *dst, const void *src, size_t bytes);
    strata_status (*copy_out)(backend_device *dev, void *dst, const void *src, size_t bytes);
    /* Releases kind-specific state (impl); may be NULL. */
    void (*destroy)(backend_device *dev);
    /* The ops a layer needs (backend/ops.h); NULL where the kind cannot compute yet. */
    const struct backend_ops *compute;
} backend_device_ops;

struct backend_device {
    const backend_device_ops *ops;
    backend_device_kind kind;
    char name[BACKEND_NAME_MAX];      /* configured or reported name ("RTX3060", "cpu") */
    char label[BACKEND_NAME_MAX + 16]; /* unique in its inventory: name, or "name #k" */
    int ordinal;                      /* cuda: device ordinal; sim: k-th sim; cpu: 0 */
    uint64_t total_bytes;             /* physical or simulated capacity */
    uint64_t cap_bytes;               /* cuda: the spec's MEMORY, a cap; 0 = no cap */
    double gbps;                      /* 0 until configured or measured */
    bool gbps_configured;             /* from the spec */
    bool plannable;                   /* offered to the planner (it has an op table) */
    double host_link_gbps;            /* cuda: measured host -> device copy speed; 0 = not measured */
    void *arena;                      /* the arena allocated last, NULL when none is held */
    size_t arena_bytes;               /* bytes held by all its arenas together */
    void *arenas[BACKEND_MAX_ARENAS]; /* the arenas held, oldest first */
    size_t arena_sizes[BACKEND_MAX_ARENAS];
    int n_arenas;
    void *impl;                       /* kind-specific state */
};

/* For kinds whose arenas are host memory (cpu, sim): the parts of backend_device_ops that do
 * not depend on the kind. backend_host_arena_alloc returns `bytes` (> 0) aligned to
 * BACKEND_ARENA_ALIGN, or NULL (the caller words the error); backend_host_release frees it;
 * backend_host_copy is copy_in and copy_out; backend_host_destroy frees dev->impl. */
void *backend_host_arena_alloc(size_t bytes);
void backend_host_release(backend_device *dev, void *ptr, size_t bytes);
strata_status backend_host_copy(backend_device *dev, void *dst, const void *src, size_t bytes);
void backend_host_destroy(backend_device *dev);

#endif
