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

#include "core/status.h"
#include "gguf/gguf.h"
#include "model/device.h"
#include "model/model.h"
#include "sampler/sampler.h"
#include "tokenizer/tokenizer.h"

typedef struct {
    gguf_file *file;
    model_desc desc;
    strata_vocab *vocab;
    strata_device cpu;
    model_context *ctx;
    int64_t load_ns; /* time spent in strata_engine_load */
} strata_engine;

/* Opens the GGUF at `path`, binds the model, loads the vocabulary and reserves the arena for
 * the options in `mp` (resolved: read them back from model_context_params(e->ctx)). */
strata_status strata_engine_load(const char *path, const model_params *mp, strata_engine **out);
void strata_engine_free(strata_engine *e);

#define STRATA_MAX_STOP 16

typedef struct {
    strata_sampler_params sampler;
    int32_t num_predict;  /* tokens to generate at most; < 0 = no limit (default -1) */
    int32_t num_keep;     /* tokens pinned at the start of the context on truncation/shift (default 4, at least the BOS) */
    const char *stop[STRATA_MAX_STOP]; /* stop sequences (not printed) */
    int n_stop;
    bool add_special;     /* add BOS as the vocabulary asks (default true) */
} strata_gen_params;

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
