/* Environment variables: Strata's STRATA_* names, with Ollama's names as a fallback, so that a
 * machine set up for Ollama (OLLAMA_HOST, OLLAMA_MODELS, ...) serves the same way. */
#ifndef STRATA_CORE_ENV_H
#define STRATA_CORE_ENV_H

/* The value of `name` (a STRATA_* variable) when it is set and not empty, else that of the
 * Ollama variable that means the same (STRATA_HOST: OLLAMA_HOST, STRATA_MODELS: OLLAMA_MODELS,
 * STRATA_KEEP_ALIVE, STRATA_MAX_LOADED_MODELS, STRATA_CONTEXT_LENGTH: the OLLAMA_ ones of the
 * same name, STRATA_GPU_RESERVE: OLLAMA_GPU_OVERHEAD, a byte count returned with a "B";
 * STRATA_KV_CACHE_TYPE, STRATA_NUM_PARALLEL, STRATA_SCHED_SPREAD: the OLLAMA_ ones of the
 * same name), else NULL. */
const char *strata_getenv(const char *name);

#endif
