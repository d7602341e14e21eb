/* The scheduler: which models are loaded, for whom, and for how long.
 *
 * Owns: the table of loaded models ("runners"), each keyed by the model's name and the
 * options that change what a load allocates (num_ctx, num_batch, num_gpu, main_gpu, embeddings; a
 * request asking for other values reloads), the plan each load was made from, the
 * keep-alive timers and the reaper thread that unloads expired models.
 *
 * Rules:
 *   - keep_alive: default 5 minutes after the last request; 0 unloads as soon as the request
 *     is done (and nobody else is queued on the model); negative keeps it loaded forever.
 *   - At most max_loaded models (STRATA_MAX_LOADED_MODELS, default 3): a load beyond that
 *     first unloads the least recently used idle model, or waits for one to become idle.
 *   - Memory: every load is planned (planner/plan.h) against the inventory, where each
 *     GPU-like device's free bytes are reduced by what the plans of the models already
 *     loaded put there. When the plan would offload fewer layers than with those models
 *     gone (or not fit at all), idle models are unloaded, least recently used first, until
 *     it does; a load that still cannot fit while other models are busy waits for them.
 *   - One generation at a time per model: holders are served in FIFO order (a ticket lock).
 *   - Loading is done by one function, sched_load_engine() in scheduler.c: the only place
 *     that turns (file, options) into an engine, with the planned loader
 *     (strata_engine_load_planned) over the server's inventory: one arena per device of
 *     exactly the planned bytes, so /api/ps reports, per device, the bytes really held.
 *   - A backend device holds one arena per model loaded on it; its free bytes lack them.
 *
 * Thread-safety: every function may be called from any thread. */
#ifndef STRATA_SERVER_SCHEDULER_H
#define STRATA_SERVER_SCHEDULER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend/device.h"
#include "core/status.h"
#include "runtime/generate.h"

struct cJSON;

/* Options that decide what a load allocates (0 / -1 = the defaults). */
typedef struct {
    int32_t num_ctx;   /* 0 = engine default */
    int32_t num_batch; /* 0 = engine default */
    int32_t num_gpu;   /* -1 = auto */
    int32_t main_gpu;  /* -1 = any */
    int32_t num_thread; /* 0 = physical cores (not part of the key: it allocates nothing) */
    bool embeddings;    /* the context keeps output-norm hidden states (/api/embed) */
} sched_load_opts;

sched_load_opts sched_default_load_opts(void);

/* What a request names: the model (display name), its file and what /api/ps reports. */
typedef struct {
    const char *name;        /* display name, e.g. "stories:latest" */
    const char *model_path;  /* the GGUF blob */
    const char *digest;      /* of the manifest ("sha256:...") */
    const char *family, *parameter_size, *quantization;
    sched_load_opts opts;
} sched_request;

typedef struct sched sched;
typedef struct sched_runner sched_runner;

/* Takes ownership of inv. max_loaded >= 1. Starts the reaper thread. */
strata_status sched_new(backend_inventory *inv, int max_loaded, sched **out);
/* Unloads everything and stops the reaper. No runner may be held. */
void sched_free(sched *s);

/* Gets exclusive use of the model, loading it if needed; waits in FIFO order behind the
 * other holders of the same model. *load_ns gets the time this call spent loading (0 when it
 * was loaded already). `cancel` (may be NULL) is checked when the turn comes: a cancelled
 * request gives its turn back and gets STRATA_ERR_CANCELLED. */
strata_status sched_acquire(sched *s, const sched_request *req, atomic_bool *cancel, sched_runner **out,
                            int64_t *load_ns);
strata_engine *sched_runner_engine(sched_runner *r);
/* The context length the engine was loaded with. */
int32_t sched_runner_n_ctx(sched_runner *r);
/* Gives the model back. keep_alive_ns: < 0 forever, 0 unload now (if nobody waits), else
 * the idle time after which the reaper unloads it. */
void sched_release(sched *s, sched_runner *r, int64_t keep_alive_ns);

/* Unloads every idle model called `name` now (keep_alive 0 with an empty prompt, `stop`);
 * busy ones are marked to unload when released. Returns how many were found. */
int sched_unload(sched *s, const char *name);

/* The flag sched_unload and sched_shutdown set on a model in use: its holder stops
 * generating (checked per token). */
atomic_bool *sched_runner_cancel_flag(sched_runner *r);
/* Waits (at most timeout_ns) until no model called `name` is loaded; true when none is. */
bool sched_wait_unloaded(sched *s, const char *name, int64_t timeout_ns);
/* Server shutdown: every holder is cancelled, every waiter returns STRATA_ERR_CANCELLED and
 * no new model is loaded. sched_free still frees (after the holders are gone). */
void sched_shutdown(sched *s);

/* Number of loaded (or loading) models. */
int sched_count(sched *s);

/* The "models" array of /api/ps. */
struct cJSON *sched_ps_json(sched *s);

/* Parses a keep_alive value: a JSON number of seconds, or a string holding a Go duration
 * ("5m", "1h30m", "-1s", "0") or a bare number of seconds. *out_ns: < 0 forever. NULL item
 * = the default (5 minutes, or $STRATA_KEEP_ALIVE). Returns false when malformed. */
bool sched_parse_keep_alive(const struct cJSON *item, int64_t *out_ns);
int64_t sched_default_keep_alive_ns(void);

/* Formats a Unix time in ns as RFC 3339 with nanoseconds and the local offset, as Go's
 * time.Time marshals ("2024-06-04T14:38:31.837530123-07:00"). */
void sched_format_time(int64_t unix_ns, char *buf, size_t cap);
int64_t sched_unix_ns(void);

#endif
