/* Quantization recipes (see recipe.h): a table of file types and the per-tensor rules. */
#include "tensor/recipe.h"

#include <string.h>
#include <strings.h>

static const strata_quant_recipe recipes[] = {
    {"F32", 0, STRATA_TYPE_F32},     {"F16", 1, STRATA_TYPE_F16},       {"BF16", 32, STRATA_TYPE_BF16},
    {"Q8_0", 7, STRATA_TYPE_Q8_0},   {"Q4_0", 2, STRATA_TYPE_Q4_0},     {"Q4_1", 3, STRATA_TYPE_Q4_1},
    {"Q5_0", 8, STRATA_TYPE_Q5_0},   {"Q5_1", 9, STRATA_TYPE_Q5_1},     {"Q6_K", 18, STRATA_TYPE_Q6_K},
    {"Q5_K_M", 17, STRATA_TYPE_Q5_K}, {"Q5_K_S", 16, STRATA_TYPE_Q5_K}, {"Q4_K_M", 15, STRATA_TYPE_Q4_K},
    {"Q4_K_S", 14, STRATA_TYPE_Q4_K},
};
#define N_RECIPES (sizeof recipes / sizeof recipes[0])

const strata_quant_recipe *strata_quant_recipe_find(const char *name) {
    for (size_t i = 0; i < N_RECIPES; i++)
        if (strcasecmp(recipes[i].name, name) == 0) return &recipes[i];
    return NULL;
}

const char *strata_quant_recipe_names(void) {
    return "Q8_0, Q6_K, Q5_K_M, Q5_K_S, Q4_K_M, Q4_K_S, Q5_0, Q5_1, Q4_0, Q4_1, F16, BF16, F32";
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

void strata_quant_state_init(strata_quant_state *s) { memset(s, 0, sizeof *s); }

void strata_quant_state_count(strata_quant_state *s, const char *name) {
    if (strcmp(name, "output.weight") == 0) s->has_output = true;
    if (ends_with(name, "attn_v.weight")) s->n_attn_v++;
    if (ends_with(name, "ffn_down.weight")) s->n_ffn_down++;
}

/* The layers that get more bits in the _M recipes: the first and last eighth, and every
 * third layer in between. */
static bool more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

static bool is_k_quant(strata_type t) {
    return t == STRATA_TYPE_Q2_K || t == STRATA_TYPE_Q3_K || t == STRATA_TYPE_Q4_K || t == STRATA_TYPE_Q5_K ||
           t == STRATA_TYPE_Q6_K || t == STRATA_TYPE_IQ4_XS;
}

strata_type strata_quant_choose(const strata_quant_recipe *r, strata_quant_state *s, const char *name,
                                uint32_t n_dims, int64_t ne0, strata_type cur) {
    const bool is_attn_v = ends_with(name, "attn_v.weight"), is_ffn_down = ends_with(name, "ffn_down.weight");
    const int i_attn_v = is_attn_v ? s->i_attn_v++ : 0;
    const int i_ffn_down = is_ffn_down ? s->i_ffn_down++ : 0;

    if (n_dims < 2 || !ends_with(name, "weight")) return cur;
    if (strstr(name, "ffn_gate_inp") || strstr(name, "position_embd")) return cur;

    strata_type t = r->base;
    const strata_type_info *base_info = strata_type_info_get(r->base);
    if (base_info && base_info->quantized) {
        const bool is_output = strcmp(name, "output.weight") == 0 ||
                               (!s->has_output && strcmp(name, "token_embd.weight") == 0);
        const bool m_recipe = r->file_type == 15 || r->file_type == 17; /* Q4_K_M, Q5_K_M */
        if (is_output) {
            if (ne0 % 256 != 0) t = STRATA_TYPE_Q8_0;
            else if (t != STRATA_TYPE_Q8_0) t = STRATA_TYPE_Q6_K;
        } else if (is_attn_v) {
            if (m_recipe && more_bits(i_attn_v, s->n_attn_v)) t = STRATA_TYPE_Q6_K;
            else if (r->file_type == 14 && i_attn_v < 4) t = STRATA_TYPE_Q5_K; /* Q4_K_S */
        } else if (is_ffn_down) {
            if (m_recipe && more_bits(i_ffn_down, s->n_ffn_down)) t = STRATA_TYPE_Q6_K;
            else if (r->file_type == 14 && i_ffn_down < s->n_ffn_down / 8) t = STRATA_TYPE_Q5_K;
        }
    }

    /* Rows that are not whole blocks. */
    if (!strata_type_row_ok(t, ne0)) {
        if (is_k_quant(t)) {
            switch (t) {
            case STRATA_TYPE_Q4_K: t = STRATA_TYPE_Q5_0; break;
            case STRATA_TYPE_Q5_K: t = STRATA_TYPE_Q5_1; break;
            case STRATA_TYPE_Q6_K: t = STRATA_TYPE_Q8_0; break;
            default: t = STRATA_TYPE_IQ4_NL; break;
            }
        }
        if (!strata_type_row_ok(t, ne0)) t = STRATA_TYPE_F16;
    }
    return t;
}
