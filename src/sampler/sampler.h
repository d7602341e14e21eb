/* The sampling chain: from a row of logits to one token id.
 *
 * Order (as llama.cpp and Ollama apply it): penalties (repeat, presence, frequency, over the
 * last repeat_last_n accepted tokens) -> top_k -> typical_p -> top_p -> min_p ->
 * temperature -> a draw from the remaining distribution with a seeded generator.
 * temperature <= 0 means greedy: the highest logit, lowest id on ties, with no penalty
 * applied (Ollama's engine behaves the same way; it makes temperature 0 plain greedy
 * decoding). top_k = 1 is greedy over the penalised logits.
 *
 * Owns: its candidate arrays, token history and random state, all allocated by
 * strata_sampler_init, so sampling never allocates (decode-loop rule). Stop sequences,
 * num_predict and end-of-generation tokens belong to the generation loop, not here.
 * One sampler per sequence; not thread-safe. */
#ifndef STRATA_SAMPLER_SAMPLER_H
#define STRATA_SAMPLER_SAMPLER_H

#include <stdint.h>

#include "core/status.h"

typedef struct {
    float temperature;       /* 0 = greedy (default 0.8) */
    int32_t top_k;           /* <= 0 disables (default 40) */
    float top_p;             /* >= 1 disables (default 0.9) */
    float min_p;             /* <= 0 disables (default 0) */
    float typical_p;         /* >= 1 disables (default 1) */
    float repeat_penalty;    /* 1 disables (default 1.1) */
    int32_t repeat_last_n;   /* window of the penalties; 0 disables, -1 = whole history cap (default 64) */
    float presence_penalty;  /* subtracted once from every token in the window (default 0) */
    float frequency_penalty; /* subtracted per occurrence in the window (default 0) */
    int64_t seed;            /* < 0: seeded from the clock (default -1) */
} strata_sampler_params;

/* Ollama's defaults. */
strata_sampler_params strata_sampler_default_params(void);

typedef struct strata_sampler strata_sampler;

/* n_vocab: length of every logits row; history_cap: the window used when repeat_last_n is -1
 * (pass num_ctx). Refuses out-of-range parameters with a message naming them. */
strata_status strata_sampler_init(const strata_sampler_params *p, int32_t n_vocab, int32_t history_cap,
                                  strata_sampler **out);
void strata_sampler_free(strata_sampler *s);

/* Forgets the history and re-seeds (same seed: the same draws again). */
void strata_sampler_reset(strata_sampler *s);

/* Records a token in the penalty window (prompt tokens and generated ones alike). */
void strata_sampler_accept(strata_sampler *s, int32_t token);

/* Picks a token from `logits` (n_vocab floats, not modified). Does not accept it. */
int32_t strata_sampler_sample(strata_sampler *s, const float *logits);

/* The candidates the chain would draw from for `logits`, into ids[n_vocab]; returns their
 * count. The first is the best; the rest are best first too whenever a filter cut (tests and
 * diagnostics). */
int32_t strata_sampler_kept(strata_sampler *s, const float *logits, int32_t *ids);

/* The logits after the penalties only, into out[n_vocab] (for tests and diagnostics). */
void strata_sampler_penalize(strata_sampler *s, const float *logits, float *out);

#endif
