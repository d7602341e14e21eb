#include "core/env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *strata, *ollama;
} fallbacks[] = {
    {"STRATA_HOST", "OLLAMA_HOST"},
    {"STRATA_MODELS", "OLLAMA_MODELS"},
    {"STRATA_KEEP_ALIVE", "OLLAMA_KEEP_ALIVE"},
    {"STRATA_MAX_LOADED_MODELS", "OLLAMA_MAX_LOADED_MODELS"},
    {"STRATA_CONTEXT_LENGTH", "OLLAMA_CONTEXT_LENGTH"},
    {"STRATA_GPU_RESERVE", "OLLAMA_GPU_OVERHEAD"},
    {"STRATA_KV_CACHE_TYPE", "OLLAMA_KV_CACHE_TYPE"},
    {"STRATA_NUM_PARALLEL", "OLLAMA_NUM_PARALLEL"},
    {"STRATA_SCHED_SPREAD", "OLLAMA_SCHED_SPREAD"},
};

const char *strata_getenv(const char *name) {
    const char *v = getenv(name);
    if (v && *v) return v;
    for (size_t i = 0; i < sizeof fallbacks / sizeof fallbacks[0]; i++) {
        if (strcmp(fallbacks[i].strata, name) != 0) continue;
        v = getenv(fallbacks[i].ollama);
        if (!v || !*v) return NULL;
        /* OLLAMA_GPU_OVERHEAD is a byte count; Strata's sizes carry a unit. */
        if (strcmp(name, "STRATA_GPU_RESERVE") == 0 && strspn(v, "0123456789") == strlen(v) && strlen(v) < 24) {
            static _Thread_local char bytes[32];
            snprintf(bytes, sizeof bytes, "%sB", v);
            return bytes;
        }
        return v;
    }
    return NULL;
}
