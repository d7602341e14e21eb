/* Loading a model for inference and the generation loop.
 *
 * Owns: the loaded engine (mapped GGUF, model description, vocabulary, the CPU device and its
 * arena, the model context) and the loop that turns a prompt into streamed text: batched
 * prompt processing, sampling, detokenising, stop sequences, num_predict, end-of-generation
 * tokens, and what happens when a conversation outgrows the context:
 *
 *   - A prompt of n_ctx tokens or more is truncated before it is evaluated: the first
 *     num_keep tokens (the BOS and whatever else the caller wants pinned) are kept and the
 *     oldest tokens after them are dropped, so that the most recent ones fit, leaving room
 *     for generation (at least a quarter of the context, as long as the prompt allows).
 *   - When generation fills the context, it shifts: the first num_keep tokens stay, the
 *     older half of the rest is discarded, and the kept tokens are re-evaluated at their new
 *     positions (a "context shift", as Ollama does it). Generation then continues; each shift
 *     is counted in the statistics and logged.
 * Nothing is allocated per generated token; buffers are sized once per call. */
#ifndef STRATA_RUNTIME_GENERATE_H
#define STRATA_RUNTIME_GENERATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/status.h"
#include "gguf/gguf.h"
#include "model/device.h"
#include "model/model.h"
#include "planner/plan.h"
#include "sampler/json_constraint.h"
#include "sampler/sampler.h"
#include "tokenizer/tokenizer.h"

/* The loaded engine: opaque (runtime/engine_internal.h holds it, for runtime/ and its
 * tests); the server and CLI use the functions below. */
typedef struct strata_engine strata_engine;

/* Opens the GGUF at `path`, binds the model, loads the vocabulary and reserves the arena for
 * the options in `mp` (resolved: read them back from model_context_params(e->ctx)), all on
 * the host. */
strata_status strata_engine_load(const char *path, const model_params *mp, strata_engine **out);
void strata_engine_free(strata_engine *e);

/* ---- Loading per plan ------------------------------------------------------------------
 * "The plan is the allocation" (DESIGN §2). strata_engine_load_planned runs the planner over
 * the inventory (planner/plan.h), and, only when it succeeds, creates the model context
 * with exactly one arena per device used, of exactly the plan's arena_bytes for it:
 *   - the plan's offloadable range [s, e) of a device runs blocks [s, min(e, n_layer)) and
 *     holds the output layer iff e == n_layer + 1 (the device holding the last blocks);
 *   - the cpu always has a segment (it embeds the tokens), possibly [0, 0);
 *   - sim (GPU-like) devices get their layers' weights copied into their arena
 *     (backend_device_copy_in); the cpu keeps its weights in the mapping;
 *   - the hidden state is handed across device boundaries.
 * A num_gpu that cannot fit, or a model that does not fit at all, is refused by the planner
 * (STRATA_ERR_NO_FIT, with the largest num_gpu that fits or the shortfall) before anything
 * is allocated. A device refusing its arena (out of memory, an injected failure) is
 * reported with its message; every arena already reserved is given back. */
typedef struct {
    model_params model;       /* n_ctx PER SEQUENCE (0 = default), n_batch, kv_type, n_threads;
                                 n_logits and embeddings are taken from here too */
    int32_t num_parallel;     /* sequences; the KV cache holds n_ctx x num_parallel (default 1) */
    plan_options plan;        /* num_gpu, main_gpu, spread, tensor_split */
    const uint64_t *reserve;  /* per inventory device (UINT64_MAX = default); NULL = defaults */
    bool skip_vocab;          /* do not load the tokenizer (e->vocab stays NULL; for benchmarks) */
    int32_t num_cpu_moe;      /* experts of blocks [0, N) stay on the CPU when their block is on a
                                 GPU; -1 (default): the planner chooses (plan_compute_moe) */
} strata_load_params;

strata_load_params strata_load_default_params(void);

/* Borrows `inv` (its devices must outlive the engine; the engine's arenas are released by
 * strata_engine_free). */
strata_status strata_engine_load_planned(const char *path, const strata_load_params *lp, backend_inventory *inv,
                                         strata_engine **out);

/* Per device used, as measured after allocation (not as predicted): the figures `strata plan`
 * prints. weights: in the arena (GPU-like) or mapped (cpu: its layers + the token embedding,
 * as the plan counts them); free: the device's free bytes now, plus this engine's arena
 * (i.e. before this load, as the planner saw it); headroom = free - reserve - total. */
typedef struct {
    const char *name;
    backend_device_kind kind;
    int32_t layer_start, layer_end; /* offloadable layers, as in the plan */
    uint64_t weights_bytes, kv_bytes, compute_bytes, total_bytes;
    uint64_t arena_bytes;           /* held by the backend device for this engine */
    /* measured on a device with memory of its own (not the cpu): its physical free bytes
     * before the load minus after (context, modules and handles already existed), and
     * what of that the arena does not explain: measured - arena (0 if negative). Both 0
     * for the cpu, whose MemAvailable moves with everything else on the machine. */
    uint64_t measured_bytes, unaccounted_bytes;
    uint64_t free_bytes, reserve_bytes, headroom_bytes;
} strata_engine_device_report;

/* Fills reports for every plan device (unused ones: no layers, zero bytes); returns
 * the count (0 for an engine not loaded by plan). */
int32_t strata_engine_report(const strata_engine *e, strata_engine_device_report *out, int32_t cap);
/* Prints one line per device of strata_engine_report on `fp` ("strata: device ..."). */
void strata_engine_print_report(const strata_engine *e, FILE *fp);

/* ---- One plan for a load ----------------------------------------------------------------
 * The plan a load will allocate, made from the header alone by the one function the loader
 * and the server's scheduler share: the scheduler plans with the free bytes of its devices
 * adjusted for models loading or about to be unloaded (free_delta, bytes per inventory
 * device added to what the device reports, negative to take away; NULL: none), and then
 * loads exactly that plan; strata_engine_load_planned does both steps with no adjustment. */
typedef struct {
    plan_result plan;
    model_params params;                        /* resolved: what the plan was sized with */
    int32_t n_ctx_seq;                          /* context per sequence */
    int32_t inv_index[PLAN_MAX_DEVICES];        /* plan device i -> inventory index */
    char labels[PLAN_MAX_DEVICES][BACKEND_NAME_MAX + 16];
    backend_device_kind kinds[PLAN_MAX_DEVICES];
} strata_load_plan;

strata_status strata_load_plan_make(const char *path, const strata_load_params *lp, backend_inventory *inv,
                                    const int64_t *free_delta, strata_load_plan *out);
/* Loads `path` as `plan` says (made by strata_load_plan_make for the same path, options and
 * inventory). A device that no longer has the memory refuses its arena and the load fails
 * cleanly, as in strata_engine_load_planned. */
strata_status strata_engine_load_with_plan(const char *path, const strata_load_params *lp, backend_inventory *inv,
                                           const strata_load_plan *plan, strata_engine **out);

/* ---- What the server and CLI read of an engine ----------------------------------------- */

typedef struct {
    const char *arch;               /* general.architecture */
    int32_t n_vocab, n_embd, n_layer;
    int32_t n_ctx, n_batch, n_threads; /* resolved options */
    strata_type kv_type;
    int32_t n_devices;              /* devices holding a share of the model */
    bool cpu_only;                  /* every share is on the cpu */
    uint64_t tensor_bytes;          /* all tensors of the file */
    uint64_t decode_weight_bytes;   /* weight bytes one generated token reads (one embedding row) */
    uint64_t kv_bytes_per_position; /* KV bytes of one cached position, all layers */
    uint64_t file_bytes;            /* the GGUF file's size */
    int64_t load_ns;
} strata_engine_info;

void strata_engine_get_info(const strata_engine *e, strata_engine_info *out);
int32_t strata_engine_n_vocab(const strata_engine *e);
uint64_t strata_engine_file_bytes(const strata_engine *e);
int32_t strata_engine_n_embd(const strata_engine *e);
/* The vocabulary (NULL when loaded with skip_vocab); owned by the engine. */
const strata_vocab *strata_engine_vocab(const strata_engine *e);
/* Runs tokens[0..n) at positions pos.. (model_decode: 1 <= n <= n_batch). */
strata_status strata_engine_decode(strata_engine *e, const int32_t *tokens, int32_t n, int32_t pos);
/* Logits row i of the last decode (the last token: strata_engine_logits_count() - 1), and
 * output-norm hidden state i (engines loaded for embeddings; else NULL); owned by the engine. */
const float *strata_engine_logits(const strata_engine *e, int32_t i);
int32_t strata_engine_logits_count(const strata_engine *e);
const float *strata_engine_hidden(const strata_engine *e, int32_t i);
/* The plan a planned engine was loaded with (NULL otherwise), and per plan device its
 * label, kind and the bytes of the arena the engine holds there (0 when unused). */
const plan_result *strata_engine_plan(const strata_engine *e);
const char *strata_engine_device_label(const strata_engine *e, int32_t i);
backend_device_kind strata_engine_device_kind(const strata_engine *e, int32_t i);
uint64_t strata_engine_device_arena(const strata_engine *e, int32_t i);
/* What the load measurably took on plan device i (strata_engine_device_report.measured_bytes). */
uint64_t strata_engine_device_measured(const strata_engine *e, int32_t i);

#define STRATA_MAX_STOP 16

typedef struct {
    strata_sampler_params sampler;
    int32_t num_predict;  /* tokens to generate at most; < 0 = no limit (default -1) */
    int32_t num_keep;     /* tokens pinned at the start of the context on truncation/shift (default 4, at least the BOS) */
    const char *stop[STRATA_MAX_STOP]; /* stop sequences (not printed) */
    int n_stop;
    bool add_special;     /* add BOS as the vocabulary asks (default true) */
    strata_json_top json; /* constrain the output to JSON (default STRATA_JSON_OFF); see below */
} strata_gen_params;

/* JSON-constrained generation (gp->json = STRATA_JSON_TOP_OBJECT or STRATA_JSON_TOP_ANY):
 * every generated token keeps the output a valid prefix of a JSON text
 * (sampler/json_constraint.h, whitespace runs capped at STRATA_GEN_JSON_MAX_WS bytes).
 *   - Each token's bytes are computed once per call (the pieces the output is made of).
 *     Tokens with no bytes (control tokens) and ids beyond the vocabulary are never chosen;
 *     an end-of-generation token is chosen only once the value is complete.
 *   - The sampler draws as usual; a token that would break the JSON is masked (-inf) and the
 *     sampler draws again, up to STRATA_GEN_JSON_RETRIES times; then every token is checked,
 *     all invalid ones are masked and the sampler draws from what is left, so the draw is
 *     from the sampler's own distribution restricted to valid tokens. Should that draw still
 *     land on a masked token (floating-point rounding), the valid token of highest logit is
 *     taken. Greedy (temperature 0) therefore yields the highest-logit valid token.
 *   - Generation stops ("stop") as soon as the value is closed: nothing but whitespace could
 *     follow it. A length limit (num_predict) may still cut the value short ("length"): the
 *     output is then a valid prefix.
 *   - A vocabulary in which no token can continue the text fails the call
 *     (STRATA_ERR_UNSUPPORTED).
 * Nothing is allocated per token: the piece table, the masked-logits copy and the validity
 * flags are allocated once per call. */
#define STRATA_GEN_JSON_MAX_WS 64
#define STRATA_GEN_JSON_RETRIES 8

strata_gen_params strata_gen_default_params(void);

typedef struct {
    int32_t prompt_tokens;   /* tokens evaluated for the prompt (after any truncation) */
    int32_t prompt_truncated; /* tokens dropped from the prompt to fit the context */
    int64_t prompt_ns;
    int32_t gen_tokens;      /* tokens generated (sampled) */
    int64_t gen_ns;
    int32_t context_shifts;
    const char *done_reason; /* "stop" (EOS/EOT or a stop sequence), "length" (num_predict) */
} strata_gen_stats;

/* Receives generated text as it becomes ready (complete UTF-8 characters, stop sequences
 * withheld). Return false to cancel (the call then returns STRATA_ERR_CANCELLED). */
typedef bool (*strata_gen_emit)(void *user, const char *text, size_t len);

/* Generates from a text prompt (tokenized with the model's vocabulary, BOS added as the
 * vocabulary asks when add_special). Starts from an empty context. */
strata_status strata_generate(strata_engine *e, const char *prompt, size_t len, const strata_gen_params *gp,
                              strata_gen_emit emit, void *user, strata_gen_stats *stats);

/* The same from token ids. When out_ids is not NULL, the generated ids are also written to
 * out_ids (at most out_cap). */
strata_status strata_generate_ids(strata_engine *e, const int32_t *prompt, int32_t n_prompt,
                                  const strata_gen_params *gp, strata_gen_emit emit, void *user,
                                  strata_gen_stats *stats, int32_t *out_ids, int32_t out_cap);

/* Monotonic clock in nanoseconds. */
int64_t strata_now_ns(void);

#endif
