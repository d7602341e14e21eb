/* `strata quantize` end to end.
 *
 * 1. The shared quantized models were written by llama.cpp's quantizer from the shared F32
 *    (or f32) models without an importance matrix. Quantizing the same F32 file with the
 *    same recipe must give the same file byte for byte: same metadata (file type and
 *    quantization version set last), same tensor order, same per-tensor types (the _M
 *    mixes, Q6_K output, the F16 fallback for rows of 172) and the same quantized bytes.
 * 2. A file we write opens with our reader, and every tensor dequantizes close to the
 *    original F32 weights (relative RMS error within the bound of its type).
 * 3. Bad arguments fail with a message and leave no output file. */
#include "testdata.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "gguf/gguf.h"
#include "tensor/quant.h"

static int run_quantize(const char *in, const char *out, const char *type) {
    char *argv[] = {"quantize", (char *)in, (char *)out, (char *)type, "--threads", "2", "--quiet", NULL};
    return cmd_quantize(7, argv);
}

static char *tmp_path(const char *name) {
    const char *dir = getenv("TMPDIR");
    char *p = malloc(4096);
    snprintf(p, 4096, "%s/strata-test-quantize-%d-%s", dir && *dir ? dir : "/tmp", (int)getpid(), name);
    return p;
}

static void test_matches_llama_cpp_files(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    static const struct {
        const char *src, *ref, *type;
    } cases[] = {
        {"micro-llama-F32", "micro-llama-Q8_0", "Q8_0"},     {"micro-llama-F32", "micro-llama-Q4_0", "Q4_0"},
        {"micro-llama-F32", "micro-llama-Q4_K_M", "Q4_K_M"}, {"micro-llama-F32", "micro-llama-Q5_K_M", "Q5_K_M"},
        {"micro-llama-F32", "micro-llama-Q6_K", "Q6_K"},     {"micro-llama-F32", "micro-llama-Q4_1", "Q4_1"},
        {"micro-llama-F32", "micro-llama-Q5_0", "Q5_0"},     {"micro-llama-F32", "micro-llama-Q5_1", "Q5_1"},
        {"micro-llama-F32", "micro-llama-F16", "F16"},       {"micro-llama-F32", "micro-llama-BF16", "BF16"},
        {"stories260K-f32", "stories260K-Q8_0", "Q8_0"},     {"stories260K-f32", "stories260K-Q4_0", "Q4_0"},
        {"micro-qwen2-F32", "micro-qwen2-Q4_K_M", "Q4_K_M"}, {"micro-qwen3-F32", "micro-qwen3-Q4_K_M", "Q4_K_M"},
        {"micro-qwen3-F32", "micro-qwen3-Q8_0", "Q8_0"},
    };
    int checked = 0, differ = 0;
    char *out = tmp_path("cmp.gguf");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char rel[256];
        snprintf(rel, sizeof rel, "models/%s.gguf", cases[i].src);
        char *src = testdata_path(rel);
        snprintf(rel, sizeof rel, "models/%s.gguf", cases[i].ref);
        char *ref = testdata_path(rel);
        size_t ref_n = 0, out_n = 0;
        void *ref_bytes = testdata_read_file(ref, &ref_n);
        if (!ref_bytes || access(src, R_OK) != 0) {
            print_message("[  SKIP    ] %s -> %s: files absent\n", cases[i].src, cases[i].ref);
        } else {
            assert_int_equal(run_quantize(src, out, cases[i].type), 0);
            void *out_bytes = testdata_read_file(out, &out_n);
            assert_non_null(out_bytes);
            const int same = out_n == ref_n && memcmp(out_bytes, ref_bytes, ref_n) == 0;
            print_message("[          ] %s %-6s: %s\n", cases[i].src, cases[i].type,
                          same ? "byte-identical to llama.cpp's file" : "DIFFERS");
            differ += !same;
            checked++;
            free(out_bytes);
            unlink(out);
        }
        free(ref_bytes);
        free(src);
        free(ref);
    }
    free(out);
    assert_true(checked > 0);
    assert_int_equal(differ, 0);
}

static double type_bound(strata_type t) {
    switch (t) {
    case STRATA_TYPE_F32: return 0.0;
    case STRATA_TYPE_F16: return 0.001;
    case STRATA_TYPE_BF16: return 0.005;
    case STRATA_TYPE_Q8_0: return 0.01;
    case STRATA_TYPE_Q6_K: return 0.03;
    case STRATA_TYPE_Q5_0: case STRATA_TYPE_Q5_1: case STRATA_TYPE_Q5_K: return 0.06;
    case STRATA_TYPE_Q4_0: case STRATA_TYPE_Q4_1: case STRATA_TYPE_Q4_K: return 0.12;
    default: return 0.5;
    }
}

static void test_output_loads_and_dequantizes_close(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    char *src = testdata_path("models/micro-llama-F32.gguf");
    if (access(src, R_OK) != 0) {
        free(src);
        skip();
    }
    static const char *const types[] = {"Q4_K_M", "Q8_0"};
    char *out = tmp_path("load.gguf");
    gguf_file *orig;
    assert_int_equal(gguf_open(src, GGUF_OPEN_DEFAULT, &orig), STRATA_OK);
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        assert_int_equal(run_quantize(src, out, types[k]), 0);
        gguf_file *q;
        assert_int_equal(gguf_open(out, GGUF_OPEN_DEFAULT, &q), STRATA_OK);
        assert_int_equal(gguf_tensor_count(q), gguf_tensor_count(orig));
        assert_int_equal(gguf_kv_count(q), gguf_kv_count(orig) + (gguf_find_key(orig, "general.file_type") < 0) +
                                                (gguf_find_key(orig, "general.quantization_version") < 0));
        double worst = 0;
        for (int64_t i = 0; i < gguf_tensor_count(orig); i++) {
            const gguf_tensor *a = gguf_tensor_at(orig, i), *b = gguf_find_tensor(q, a->name);
            assert_non_null(b);
            assert_int_equal(a->n_dims, b->n_dims);
            for (int d = 0; d < 4; d++) assert_int_equal(a->ne[d], b->ne[d]);
            if (a->n_dims == 1) assert_int_equal(b->type, STRATA_TYPE_F32); /* norms stay F32 */
            const int64_t cols = a->ne[0], rows = gguf_tensor_elements(a) / cols;
            float *row = malloc(sizeof(float) * cols);
            double se = 0, sx = 0;
            for (int64_t r = 0; r < rows; r++) {
                strata_dequantize_row(b->type, (const uint8_t *)b->data + r * strata_type_row_bytes(b->type, cols), row,
                                      cols);
                const float *x = (const float *)a->data + r * cols;
                for (int64_t c = 0; c < cols; c++) {
                    se += (double)(row[c] - x[c]) * (row[c] - x[c]);
                    sx += (double)x[c] * x[c];
                }
            }
            free(row);
            const double rel = sx > 0 ? sqrt(se / sx) : 0;
            if (rel > type_bound(b->type))
                print_error("%s %s (%s): relative RMS error %.4f > %.4f\n", types[k], a->name,
                            strata_type_name(b->type), rel, type_bound(b->type));
            assert_true(rel <= type_bound(b->type));
            if (rel > worst) worst = rel;
        }
        print_message("[          ] %-6s loads; worst tensor relative RMS error %.4f\n", types[k], worst);
        gguf_close(q);
        unlink(out);
    }
    gguf_close(orig);
    free(out);
    free(src);
}

static void test_bad_arguments(void **state) {
    (void)state;
    char *out = tmp_path("bad.gguf");
    char *missing = tmp_path("missing.gguf");
    assert_int_not_equal(run_quantize(missing, out, "Q4_0"), 0);
    assert_int_not_equal(access(out, F_OK), 0);
    char *src = testdata_path("models/micro-llama-F32.gguf");
    if (src && access(src, R_OK) == 0) {
        assert_int_not_equal(run_quantize(src, out, "Q9_9"), 0);
        assert_int_not_equal(access(out, F_OK), 0);
    }
    char *argv[] = {"quantize", "only-one-arg", NULL};
    assert_int_not_equal(cmd_quantize(2, argv), 0);
    free(src);
    free(out);
    free(missing);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_llama_cpp_files),
        cmocka_unit_test(test_output_loads_and_dequantizes_close),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
