/* Private to runtime/ (and its tests): what a loaded engine holds. Everything else reads an
 * engine through runtime/generate.h. */
#ifndef STRATA_RUNTIME_ENGINE_INTERNAL_H
#define STRATA_RUNTIME_ENGINE_INTERNAL_H

#include "runtime/generate.h"

struct strata_engine {
    gguf_file *file;
    model_desc desc;
    strata_vocab *vocab;
    strata_device cpu;       /* strata_engine_load: the host device */
    model_context *ctx;
    int64_t load_ns; /* time spent loading */
    /* strata_engine_load_planned / _with_plan only (planned == false otherwise): */
    bool planned;
    plan_result plan;                          /* what the planner decided */
    int32_t plan_inv[PLAN_MAX_DEVICES];        /* plan device i -> inventory index */
    backend_device *plan_dev[PLAN_MAX_DEVICES]; /* plan device i (borrowed from the inventory) */
    int32_t n_devs;                            /* devices used, in layer order (cpu first) */
    strata_device devs[PLAN_MAX_DEVICES];      /* their arenas; wrap the inventory's devices */
    int32_t dev_plan[PLAN_MAX_DEVICES];        /* devs[j] -> plan device index */
    uint64_t measured[PLAN_MAX_DEVICES];       /* plan device i: physical free before - after the load */
};

#endif
