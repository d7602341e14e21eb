/* Dequantization is bit-exact: blk.0.ffn_up.weight of every micro-llama file, decoded by
 * strata_dequantize_row, must reproduce the reference decoder's float32 bytes in
 * testdata/quant/ (written by an independent implementation). */
#include "testdata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "tensor/quant.h"

static const char *const variants[] = {"F32",  "F16",    "BF16",   "Q8_0",   "Q4_0",   "Q4_1",   "Q5_0", "Q5_1",
                                       "Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K", "IQ4_NL", "IQ4_XS"};

/* Returns 1 if the variant matched, 0 if it differs, -1 if its files are absent. */
static int check_variant(const char *variant, strata_type *type_out) {
    char rel[256];
    snprintf(rel, sizeof rel, "models/micro-llama-%s.gguf", variant);
    char *model_path = testdata_path(rel);
    snprintf(rel, sizeof rel, "quant/micro-llama-%s.blk.0.ffn_up.weight.f32", variant);
    char *ref_path = testdata_path(rel);
    size_t ref_size = 0;
    float *ref = testdata_read_file(ref_path, &ref_size);
    gguf_file *f = NULL;
    int result = -1;
    if (ref && gguf_open(model_path, GGUF_OPEN_DEFAULT, &f) == STRATA_OK) {
        const gguf_tensor *t = gguf_find_tensor(f, "blk.0.ffn_up.weight");
        assert_non_null(t);
        *type_out = t->type;
        const int64_t cols = t->ne[0], rows = gguf_tensor_elements(t) / cols;
        assert_int_equal(ref_size, (size_t)(cols * rows) * sizeof(float));
        assert_true(strata_type_can_dequantize(t->type));
        float *out = malloc(ref_size);
        assert_non_null(out);
        const size_t row_bytes = strata_type_row_bytes(t->type, cols);
        for (int64_t r = 0; r < rows; r++)
            strata_dequantize_row(t->type, (const uint8_t *)t->data + r * row_bytes, out + r * cols, cols);
        result = memcmp(out, ref, ref_size) == 0;
        if (!result) {
            for (int64_t i = 0; i < rows * cols; i++)
                if (memcmp(&out[i], &ref[i], 4) != 0) {
                    print_error("%s (%s): first difference at %lld: %.9g vs %.9g\n", variant,
                                strata_type_name(t->type), (long long)i, out[i], ref[i]);
                    break;
                }
        }
        free(out);
        gguf_close(f);
    }
    free(ref);
    free(model_path);
    free(ref_path);
    return result;
}

static void test_dequant_bit_exact(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    int checked = 0, failed = 0;
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        strata_type type = STRATA_TYPE_F32;
        int r = check_variant(variants[i], &type);
        if (r < 0) {
            print_message("[  SKIP    ] %s: files absent\n", variants[i]);
            continue;
        }
        print_message("[          ] %-7s (%s): %s\n", variants[i], strata_type_name(type), r ? "bit-exact" : "DIFFERS");
        checked++;
        failed += !r;
    }
    assert_true(checked > 0);
    assert_int_equal(failed, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_dequant_bit_exact)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
