/* Quantization recipes: the per-tensor rules of recipe.h on synthetic model layouts (the
 * e2e quantize test checks them against llama.cpp's files; these cover the cases those
 * files do not: tied embeddings, fallbacks for rows that are not whole blocks, _S rules). */
#include "testdata.h"

#include <stdio.h>

#include "tensor/recipe.h"

/* A llama-like model of n layers; returns the types chosen, in this order per layer:
 * attn_q, attn_v, ffn_down; then token_embd, output (if present), norm. */
static void choose_all(const char *recipe, int n_layers, int tied, int64_t dim, strata_type *out) {
    const strata_quant_recipe *r = strata_quant_recipe_find(recipe);
    assert_non_null(r);
    char names[64][48];
    int n = 0;
    for (int l = 0; l < n_layers; l++) {
        snprintf(names[n++], 48, "blk.%d.attn_q.weight", l);
        snprintf(names[n++], 48, "blk.%d.attn_v.weight", l);
        snprintf(names[n++], 48, "blk.%d.ffn_down.weight", l);
    }
    snprintf(names[n++], 48, "token_embd.weight");
    if (!tied) snprintf(names[n++], 48, "output.weight");
    snprintf(names[n++], 48, "output_norm.weight");
    strata_quant_state s;
    strata_quant_state_init(&s);
    for (int i = 0; i < n; i++) strata_quant_state_count(&s, names[i]);
    for (int i = 0; i < n; i++) {
        const int is_norm = i == n - 1;
        out[i] = strata_quant_choose(r, &s, names[i], is_norm ? 1 : 2, dim, STRATA_TYPE_F32);
    }
}

static void test_q4_k_m_layers(void **state) {
    (void)state;
    strata_type t[64];
    choose_all("q4_k_m", 16, 0, 256, t);
    /* more bits on layers 0, 1 (first eighth), 14, 15 (last eighth), and 4, 7, 10, 13 */
    const int more[16] = {1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 1, 1};
    for (int l = 0; l < 16; l++) {
        assert_int_equal(t[3 * l], STRATA_TYPE_Q4_K);
        assert_int_equal(t[3 * l + 1], more[l] ? STRATA_TYPE_Q6_K : STRATA_TYPE_Q4_K);
        assert_int_equal(t[3 * l + 2], more[l] ? STRATA_TYPE_Q6_K : STRATA_TYPE_Q4_K);
    }
    assert_int_equal(t[48], STRATA_TYPE_Q4_K); /* token_embd */
    assert_int_equal(t[49], STRATA_TYPE_Q6_K); /* output */
    assert_int_equal(t[50], STRATA_TYPE_F32);  /* 1-D norm kept */
}

static void test_tied_embeddings_get_output_type(void **state) {
    (void)state;
    strata_type t[64];
    choose_all("Q4_0", 2, 1, 256, t);
    assert_int_equal(t[6], STRATA_TYPE_Q6_K); /* token_embd doubles as output */
    choose_all("Q8_0", 2, 1, 256, t);
    assert_int_equal(t[6], STRATA_TYPE_Q8_0);
}

static void test_fallbacks(void **state) {
    (void)state;
    strata_type t[64];
    choose_all("Q4_K_M", 8, 0, 96, t); /* rows of 96: not whole 256-blocks, whole 32-blocks */
    assert_int_equal(t[0], STRATA_TYPE_Q5_0); /* Q4_K -> Q5_0 */
    assert_int_equal(t[1], STRATA_TYPE_Q8_0); /* Q6_K (layer 0 attn_v) -> Q8_0 */
    assert_int_equal(t[25], STRATA_TYPE_Q8_0); /* output: Q8_0 when rows are not 256-blocks */
    choose_all("Q5_K_M", 8, 0, 96, t);
    assert_int_equal(t[3], STRATA_TYPE_Q5_1); /* Q5_K -> Q5_1 */
    choose_all("Q4_0", 2, 0, 172, t); /* stories260K's ffn rows */
    assert_int_equal(t[0], STRATA_TYPE_F16);
    choose_all("F16", 2, 0, 172, t);
    assert_int_equal(t[0], STRATA_TYPE_F16);
    assert_int_equal(t[7], STRATA_TYPE_F16); /* no Q6_K output under a float recipe */
}

static void test_q4_k_s(void **state) {
    (void)state;
    strata_type t[64];
    choose_all("Q4_K_S", 16, 0, 256, t);
    for (int l = 0; l < 16; l++) {
        assert_int_equal(t[3 * l + 1], l < 4 ? STRATA_TYPE_Q5_K : STRATA_TYPE_Q4_K);
        assert_int_equal(t[3 * l + 2], l < 2 ? STRATA_TYPE_Q5_K : STRATA_TYPE_Q4_K);
    }
    assert_null(strata_quant_recipe_find("Q9_K"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_q4_k_m_layers),
        cmocka_unit_test(test_tied_embeddings_get_output_type),
        cmocka_unit_test(test_fallbacks),
        cmocka_unit_test(test_q4_k_s),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
