/* Quantizers.
 *
 * 1. Against files written by llama.cpp: the micro-llama models in every type were made
 *    from the same F32 weights without an importance matrix, so quantizing the F32 file's
 *    blk.0.ffn_up.weight with the reference algorithm must give the quantized file's bytes.
 *    Types with a reference algorithm (Q4_0 ... Q8_0, Q2_K ... Q6_K) must match exactly;
 *    IQ4_NL/IQ4_XS use our own search and are only held to the error bound below.
 * 2. Round trip on random data (Gaussian, the shape of trained weights): the RMS error of
 *    quantize -> dequantize, relative to the data's RMS, within what each format's bits
 *    allow (bounds a little above the values these algorithms reach; a broken scale or
 *    bit layout gives errors of order 1).
 * 3. Edge cases: all-zero rows decode to zeros; a constant row and huge/tiny magnitudes
 *    stay finite. */
#include "testdata.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "tensor/quant.h"

static const char *const variants[] = {"Q8_0", "Q4_0", "Q4_1",   "Q5_0",   "Q5_1", "Q2_K",
                                       "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K", "IQ4_NL", "IQ4_XS"};

static void test_matches_reference_files(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    char *src_path = testdata_path("models/micro-llama-F32.gguf");
    gguf_file *src;
    if (gguf_open(src_path, GGUF_OPEN_DEFAULT, &src) != STRATA_OK) {
        free(src_path);
        print_message("[  SKIP    ] micro-llama-F32.gguf absent\n");
        skip();
    }
    free(src_path);
    const gguf_tensor *ts = gguf_find_tensor(src, "blk.0.ffn_up.weight");
    assert_non_null(ts);
    assert_int_equal(ts->type, STRATA_TYPE_F32);
    const int64_t cols = ts->ne[0], rows = gguf_tensor_elements(ts) / cols;
    int exact_failures = 0, checked = 0;
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
        char rel[256];
        snprintf(rel, sizeof rel, "models/micro-llama-%s.gguf", variants[v]);
        char *path = testdata_path(rel);
        gguf_file *f;
        if (gguf_open(path, GGUF_OPEN_DEFAULT, &f) != STRATA_OK) {
            free(path);
            continue;
        }
        free(path);
        const gguf_tensor *t = gguf_find_tensor(f, "blk.0.ffn_up.weight");
        assert_non_null(t);
        assert_true(strata_type_can_quantize(t->type));
        const size_t row_bytes = strata_type_row_bytes(t->type, cols);
        uint8_t *buf = malloc(row_bytes * (size_t)rows);
        assert_non_null(buf);
        for (int64_t r = 0; r < rows; r++)
            assert_int_equal(strata_quantize_row(t->type, (const float *)ts->data + r * cols, buf + r * row_bytes, cols),
                             row_bytes);
        size_t same_rows = 0;
        for (int64_t r = 0; r < rows; r++)
            same_rows += memcmp(buf + r * row_bytes, (const uint8_t *)t->data + r * row_bytes, row_bytes) == 0;
        const int reference_alg = t->type != STRATA_TYPE_IQ4_NL && t->type != STRATA_TYPE_IQ4_XS;
        print_message("[          ] %-7s (%s): %zu/%lld rows byte-identical to the file%s\n", variants[v],
                      strata_type_name(t->type), same_rows, (long long)rows, reference_alg ? "" : " (own algorithm)");
        if (reference_alg && same_rows != (size_t)rows) exact_failures++;
        checked++;
        free(buf);
        gguf_close(f);
    }
    gguf_close(src);
    assert_true(checked > 0);
    assert_int_equal(exact_failures, 0);
}

/* Deterministic Gaussian numbers (xorshift + Box-Muller). */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double uniform01(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return ((rng_state >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}
static float gauss(void) { return (float)(sqrt(-2.0 * log(uniform01())) * cos(6.283185307179586 * uniform01())); }

static const struct {
    strata_type type;
    double max_rel_rms;
} bounds[] = {
    {STRATA_TYPE_F32, 0.0},     {STRATA_TYPE_F16, 0.0005},  {STRATA_TYPE_BF16, 0.004},  {STRATA_TYPE_Q8_0, 0.006},
    {STRATA_TYPE_Q8_1, 0.006},  {STRATA_TYPE_Q8_K, 0.0085},  {STRATA_TYPE_Q6_K, 0.021},  {STRATA_TYPE_Q5_0, 0.05},
    {STRATA_TYPE_Q5_1, 0.05},   {STRATA_TYPE_Q5_K, 0.043},  {STRATA_TYPE_Q4_0, 0.11},   {STRATA_TYPE_Q4_1, 0.10},
    {STRATA_TYPE_Q4_K, 0.085},  {STRATA_TYPE_IQ4_NL, 0.09}, {STRATA_TYPE_IQ4_XS, 0.09}, {STRATA_TYPE_Q3_K, 0.18},
    {STRATA_TYPE_Q2_K, 0.36},
};

static void test_round_trip_error(void **state) {
    (void)state;
    const int64_t n = 4096;
    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
    uint8_t *q = malloc(n * 4);
    for (int64_t i = 0; i < n; i++) x[i] = 0.02f * gauss();
    for (size_t b = 0; b < sizeof bounds / sizeof bounds[0]; b++) {
        const strata_type t = bounds[b].type;
        assert_true(strata_type_can_quantize(t));
        memset(q, 0xAA, n * 4);
        assert_int_equal(strata_quantize_row(t, x, q, n), strata_type_row_bytes(t, n));
        strata_dequantize_row(t, q, y, n);
        double se = 0, sx = 0;
        for (int64_t i = 0; i < n; i++) {
            se += (double)(y[i] - x[i]) * (y[i] - x[i]);
            sx += (double)x[i] * x[i];
        }
        const double rel = sqrt(se / sx);
        print_message("[          ] %-6s relative RMS error %.5f (bound %.4f)\n", strata_type_name(t), rel,
                      bounds[b].max_rel_rms);
        assert_true(rel <= bounds[b].max_rel_rms);
    }
    free(x);
    free(y);
    free(q);
}

static void test_edge_rows(void **state) {
    (void)state;
    const int64_t n = 512;
    float x[512], y[512];
    uint8_t q[512 * 4];
    for (size_t b = 0; b < sizeof bounds / sizeof bounds[0]; b++) {
        const strata_type t = bounds[b].type;
        memset(x, 0, sizeof x);
        strata_quantize_row(t, x, q, n);
        strata_dequantize_row(t, q, y, n);
        for (int i = 0; i < n; i++) assert_true(y[i] == 0.0f);
        for (int i = 0; i < n; i++) x[i] = 0.5f; /* constant row */
        strata_quantize_row(t, x, q, n);
        strata_dequantize_row(t, q, y, n);
        for (int i = 0; i < n; i++) assert_true(fabsf(y[i] - 0.5f) <= 0.5f * 0.3f);
        for (int i = 0; i < n; i++) x[i] = (i % 7 == 0 ? 1e4f : 1e-6f) * (i % 2 ? -1.0f : 1.0f);
        strata_quantize_row(t, x, q, n);
        strata_dequantize_row(t, q, y, n);
        for (int i = 0; i < n; i++) assert_true(isfinite(y[i]));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_reference_files),
        cmocka_unit_test(test_round_trip_error),
        cmocka_unit_test(test_edge_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
