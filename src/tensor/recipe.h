/* Quantization recipes: which type each tensor of a model gets for a file type such as
 * Q4_K_M, following the rules llama.cpp's quantizer applies (so that our files match
 * theirs tensor for tensor):
 *   - only weights of 2 or more dimensions are quantized; 1-D tensors (norms, biases) and
 *     rope frequency tables keep their type;
 *   - output.weight (or token_embd.weight when there is no output.weight, the tied case)
 *     gets Q6_K under any quantized recipe other than Q8_0, or Q8_0 when its rows are not
 *     whole 256-blocks;
 *   - _M recipes give more bits to some layers' attn_v and ffn_down: Q6_K on the first and
 *     last eighth of the layers and every third layer between (Q4_K_M, Q5_K_M); _S recipes
 *     use Q5_K on the first layers (Q4_K_S);
 *   - a row length that is not whole blocks falls back: Q4_K -> Q5_0, Q5_K -> Q5_1,
 *     Q6_K -> Q8_0, Q2_K/Q3_K/IQ4_XS -> IQ4_NL, and to F16 if still not whole blocks.
 * The general.file_type values are llama.cpp's llama_ftype numbers. */
#ifndef STRATA_TENSOR_RECIPE_H
#define STRATA_TENSOR_RECIPE_H

#include <stdbool.h>
#include <stdint.h>

#include "tensor/type.h"

typedef struct {
    const char *name;   /* "Q4_K_M" */
    uint32_t file_type; /* general.file_type */
    strata_type base;   /* type of most tensors */
} strata_quant_recipe;

/* Looks a recipe up by name, case-insensitively; NULL if unknown. */
const strata_quant_recipe *strata_quant_recipe_find(const char *name);
/* The recipe names, comma-separated, for usage messages. */
const char *strata_quant_recipe_names(void);

/* Counts a model's tensors once before choosing types (layer-dependent rules need them). */
typedef struct {
    bool has_output;   /* output.weight present */
    int n_attn_v;      /* tensors named *attn_v.weight */
    int n_ffn_down;    /* tensors named *ffn_down.weight */
    int i_attn_v;      /* running counters, advanced by strata_quant_choose */
    int i_ffn_down;
} strata_quant_state;

void strata_quant_state_init(strata_quant_state *s);
/* Feed every tensor name once, in file order, before the first strata_quant_choose. */
void strata_quant_state_count(strata_quant_state *s, const char *name);

/* The type tensor `name` (n_dims dimensions, ne[0] elements per row, currently `cur`) gets
 * under recipe r. Call once per tensor in file order. Returns `cur` for tensors that are
 * not quantized. */
strata_type strata_quant_choose(const strata_quant_recipe *r, strata_quant_state *s, const char *name,
                                uint32_t n_dims, int64_t ne0, strata_type cur);

#endif
