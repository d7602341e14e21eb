/* End to end: the real `strata` binary (STRATA_BINARY) on real and generated files,
 * its JSON parsed and checked, its failures checked to be one line on stderr. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "proc.h"
#include "testdata.h"

#ifndef STRATA_BINARY
#error "STRATA_BINARY must be defined by the build"
#endif

/* Runs `strata` with up to 6 arguments (NULL-terminated list). */
static proc_result run_strata(const char *a1, const char *a2, const char *a3, const char *a4) {
    char *argv[] = {STRATA_BINARY, (char *)a1, (char *)a2, (char *)a3, (char *)a4, NULL};
    proc_result r;
    if (proc_run(argv, &r) != 0) fail_msg("cannot run %s", STRATA_BINARY);
    return r;
}

static cJSON *parse_json(const proc_result *r) {
    if (r->exit_code != 0) fail_msg("strata exited %d: %s", r->exit_code, r->err);
    assert_int_equal(r->err_len, 0);
    cJSON *j = cJSON_Parse(r->out);
    if (!j) fail_msg("output is not JSON: %.200s", r->out);
    return j;
}

static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v)) fail_msg("key '%s' is missing or not a number", key);
    return v->valuedouble;
}

static const char *str(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v)) fail_msg("key '%s' is missing or not a string", key);
    return v->valuestring;
}

/* A failure is exit status 1, nothing on stdout, one line on stderr starting "strata: ". */
static void assert_one_line_failure(const proc_result *r, const char *fragment) {
    assert_int_equal(r->exit_code, 1);
    assert_int_equal(r->out_len, 0);
    if (proc_count_lines(r->err) != 1) fail_msg("stderr is not one line: \"%s\"", r->err);
    assert_true(r->err_len > 0 && r->err[r->err_len - 1] == '\n');
    assert_true(strncmp(r->err, "strata: ", 8) == 0);
    if (!strstr(r->err, fragment)) fail_msg("stderr \"%s\" lacks \"%s\"", r->err, fragment);
}

/* ---- stories260K: the numbers given by the testdata README -------------------------- */

static void test_show_json_stories260k(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    char *path = testdata_path("models/stories260K-f32.gguf");
    proc_result r = run_strata("show", path, "--json", NULL);
    cJSON *j = parse_json(&r);
    assert_string_equal(str(j, "architecture"), "llama");
    assert_int_equal(num(j, "block_count"), 5);
    assert_int_equal(num(j, "embedding_length"), 64);
    assert_int_equal(num(j, "head_count"), 8);
    assert_int_equal(num(j, "head_count_kv"), 4);
    assert_int_equal(num(j, "vocab_size"), 512);
    /* Parameters from the shapes: per layer q 64x64, k and v 64x32, o 64x64, two norms of 64,
     * three FFN matrices 64x172 = 45440; x5 layers, + embedding and output 64x512 each,
     * + the output norm 64. */
    assert_int_equal(num(j, "parameter_count"), 5 * 45440 + 2 * 64 * 512 + 64);
    assert_int_equal(num(j, "total_bytes"), 4 * (5 * 45440 + 2 * 64 * 512 + 64)); /* all F32 */
    assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "context_length")));
    assert_non_null(cJSON_GetObjectItemCaseSensitive(j, "file_type"));
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "tensors")); /* only with --tensors */

    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(j, "layers");
    assert_true(cJSON_IsArray(layers));
    assert_int_equal(cJSON_GetArraySize(layers), 7);
    static const char *const names[] = {"token_embd", "blk.0", "blk.1", "blk.2", "blk.3", "blk.4", "output"};
    static const double bytes[] = {64 * 512 * 4, 45440 * 4, 45440 * 4, 45440 * 4, 45440 * 4, 45440 * 4,
                                   (64 * 512 + 64) * 4};
    for (int i = 0; i < 7; i++) {
        const cJSON *l = cJSON_GetArrayItem(layers, i);
        assert_string_equal(str(l, "name"), names[i]);
        assert_int_equal(num(l, "bytes"), bytes[i]);
    }
    cJSON_Delete(j);
    proc_result_free(&r);
    free(path);
}

static void test_show_tensors_json(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    char *path = testdata_path("models/stories260K-Q8_0.gguf");
    proc_result r = run_strata("show", "--tensors", path, "--json");
    cJSON *j = parse_json(&r);
    const cJSON *tensors = cJSON_GetObjectItemCaseSensitive(j, "tensors");
    assert_true(cJSON_IsArray(tensors));
    assert_int_equal(cJSON_GetArraySize(tensors), 48);
    double sum = 0, align = num(j, "alignment"), data_offset = num(j, "data_offset");
    int q8 = 0, f16 = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, tensors) {
        sum += num(t, "bytes");
        double off = num(t, "offset");
        assert_true(off >= data_offset);
        assert_int_equal((long long)off % (long long)align, 0);
        const char *type = str(t, "type");
        if (strcmp(type, "Q8_0") == 0) q8++;
        if (strcmp(type, "F16") == 0) f16++;
        if (strcmp(str(t, "name"), "blk.0.ffn_down.weight") == 0) {
            /* README: ffn_down stays F16 in the Q8_0 file (rows of 172 are not whole blocks) */
            assert_string_equal(type, "F16");
            const cJSON *shape = cJSON_GetObjectItemCaseSensitive(t, "shape");
            assert_int_equal(cJSON_GetArraySize(shape), 2);
            assert_int_equal(cJSON_GetArrayItem(shape, 0)->valuedouble, 172);
            assert_int_equal(cJSON_GetArrayItem(shape, 1)->valuedouble, 64);
            assert_int_equal(num(t, "bytes"), 172 * 64 * 2);
        }
    }
    assert_int_equal(f16, 5);
    assert_true(q8 > 0);
    assert_int_equal(sum, num(j, "total_bytes"));
    assert_string_equal(str(j, "file_type"), "MOSTLY_Q8_0");
    cJSON_Delete(j);
    proc_result_free(&r);
    free(path);
}

static void test_show_text(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    char *path = testdata_path("models/stories260K-f32.gguf");
    proc_result r = run_strata("show", path, NULL, NULL);
    assert_int_equal(r.exit_code, 0);
    assert_int_equal(r.err_len, 0);
    assert_non_null(strstr(r.out, "architecture       llama\n"));
    assert_non_null(strstr(r.out, "layers             5\n"));
    assert_non_null(strstr(r.out, "KV heads           4\n"));
    assert_non_null(strstr(r.out, "blk.4 "));
    assert_null(strstr(r.out, "token_embd.weight")); /* tensors only with --tensors */
    proc_result_free(&r);
    r = run_strata("show", path, "--tensors", NULL);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "token_embd.weight"));
    assert_non_null(strstr(r.out, "64 x 512"));
    proc_result_free(&r);
    free(path);
}

/* ---- a generated model: every field has a known value -------------------------------- */

static char *write_model(const char *dir, const char *name, bool with_kv_heads) {
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    gguf_writer_add_str(w, "general.architecture", "tiny");
    gguf_writer_add_str(w, "general.name", "Tiny Test");
    gguf_writer_add_u32(w, "general.file_type", 15);
    gguf_writer_add_u32(w, "tiny.block_count", 2);
    gguf_writer_add_u32(w, "tiny.context_length", 4096);
    gguf_writer_add_u64(w, "tiny.embedding_length", 32);
    gguf_writer_add_u32(w, "tiny.attention.head_count", 4);
    if (with_kv_heads) gguf_writer_add_u32(w, "tiny.attention.head_count_kv", 2);
    gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2");
    static const char *const toks[] = {"a", "b", "c"};
    gguf_writer_add_str_array(w, "tokenizer.ggml.tokens", toks, 3);
    gguf_writer_add_str(w, "tokenizer.chat_template", "{{ messages }}");
    const int64_t emb[2] = {32, 3}, sq[2] = {32, 32}, vec[1] = {32}, rope[1] = {8};
    gguf_writer_add_tensor(w, "token_embd.weight", STRATA_TYPE_F16, 2, emb, NULL);     /* 192 */
    gguf_writer_add_tensor(w, "blk.1.attn_q.weight", STRATA_TYPE_Q4_K, 2, (int64_t[]){256, 4}, NULL); /* 576 */
    gguf_writer_add_tensor(w, "blk.0.attn_q.weight", STRATA_TYPE_Q8_0, 2, sq, NULL);   /* 1088 */
    gguf_writer_add_tensor(w, "blk.0.attn_norm.weight", STRATA_TYPE_F32, 1, vec, NULL); /* 128 */
    gguf_writer_add_tensor(w, "output_norm.weight", STRATA_TYPE_F32, 1, vec, NULL);     /* 128 */
    gguf_writer_add_tensor(w, "output.weight", STRATA_TYPE_Q6_K, 2, (int64_t[]){256, 3}, NULL); /* 630 */
    gguf_writer_add_tensor(w, "rope_freqs.weight", STRATA_TYPE_F32, 1, rope, NULL);      /* 32 */
    char *path = tmpdir_path(dir, name);
    assert_int_equal(gguf_writer_write_file(w, path), STRATA_OK);
    gguf_writer_free(w);
    return path;
}

static const cJSON *layer(const cJSON *j, int i) {
    return cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "layers"), i);
}

static void test_show_generated_model(void **state) {
    (void)state;
    char *dir = tmpdir_make();
    assert_non_null(dir);
    char *path = write_model(dir, "tiny.gguf", true);
    proc_result r = run_strata("show", path, "--json", NULL);
    cJSON *j = parse_json(&r);
    assert_string_equal(str(j, "architecture"), "tiny");
    assert_string_equal(str(j, "name"), "Tiny Test");
    assert_string_equal(str(j, "file_type"), "MOSTLY_Q4_K_M");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "file_type_guessed")));
    assert_int_equal(num(j, "block_count"), 2);
    assert_int_equal(num(j, "context_length"), 4096);
    assert_int_equal(num(j, "embedding_length"), 32);
    assert_int_equal(num(j, "head_count"), 4);
    assert_int_equal(num(j, "head_count_kv"), 2);
    assert_int_equal(num(j, "vocab_size"), 3); /* no tiny.vocab_size: counted from the tokens */
    assert_string_equal(str(j, "tokenizer_model"), "gpt2");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "chat_template")));
    assert_int_equal(num(j, "parameter_count"), 96 + 1024 + 1024 + 32 + 32 + 768 + 8);
    /* Bytes from the block sizes: F16 2/elem, Q8_0 34 per 32, Q4_K 144 per 256, Q6_K 210 per 256. */
    assert_int_equal(num(j, "total_bytes"), 192 + 576 + 1088 + 128 + 128 + 630 + 32);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "layers")), 4);
    assert_string_equal(str(layer(j, 0), "name"), "token_embd");
    assert_int_equal(num(layer(j, 0), "bytes"), 192);
    assert_string_equal(str(layer(j, 1), "name"), "blk.0");
    assert_int_equal(num(layer(j, 1), "bytes"), 1088 + 128);
    assert_string_equal(str(layer(j, 2), "name"), "blk.1");
    assert_int_equal(num(layer(j, 2), "bytes"), 576);
    assert_string_equal(str(layer(j, 3), "name"), "output");
    assert_int_equal(num(layer(j, 3), "bytes"), 128 + 630 + 32); /* norm, output, rope_freqs */
    cJSON_Delete(j);
    proc_result_free(&r);
    free(path);

    /* Without head_count_kv the KV heads are the heads (no grouped-query attention). */
    path = write_model(dir, "nokv.gguf", false);
    r = run_strata("show", path, "--json", NULL);
    j = parse_json(&r);
    assert_int_equal(num(j, "head_count_kv"), 4);
    cJSON_Delete(j);
    proc_result_free(&r);
    free(path);
    tmpdir_remove(dir);
}

/* ---- failures ------------------------------------------------------------------------ */

static void test_show_broken_file(void **state) {
    (void)state;
    char *dir = tmpdir_make();
    assert_non_null(dir);
    char *path = write_model(dir, "broken.gguf", true);
    size_t size = 0;
    uint8_t *bytes = testdata_read_file(path, &size);
    assert_non_null(bytes);
    memcpy(bytes, "GGUG", 4);
    assert_int_equal(tmpdir_write(path, bytes, size), 0);
    proc_result r = run_strata("show", path, NULL, NULL);
    assert_one_line_failure(&r, "bad magic");
    assert_non_null(strstr(r.err, path));
    proc_result_free(&r);
    r = run_strata("show", path, "--json", NULL);
    assert_one_line_failure(&r, "bad magic");
    proc_result_free(&r);

    /* Cut inside the tensor data: the reader names the tensor. */
    memcpy(bytes, "GGUF", 4);
    assert_int_equal(tmpdir_write(path, bytes, size - 40), 0);
    r = run_strata("show", path, "--json", NULL);
    assert_one_line_failure(&r, "past the end of the file");
    proc_result_free(&r);

    free(bytes);
    free(path);
    tmpdir_remove(dir);
}

static void test_show_usage_errors(void **state) {
    (void)state;
    proc_result r = run_strata("show", "/nonexistent/model.gguf", NULL, NULL);
    assert_one_line_failure(&r, "/nonexistent/model.gguf");
    proc_result_free(&r);
    r = run_strata("show", NULL, NULL, NULL);
    assert_one_line_failure(&r, "missing FILE.gguf");
    proc_result_free(&r);
    r = run_strata("show", "a.gguf", "b.gguf", NULL);
    assert_one_line_failure(&r, "expected one FILE.gguf");
    proc_result_free(&r);
    r = run_strata("show", "a.gguf", "--bogus", NULL);
    assert_one_line_failure(&r, "unknown option '--bogus'");
    proc_result_free(&r);
    r = run_strata("show", "/tmp", NULL, NULL);
    assert_one_line_failure(&r, "not a regular file");
    proc_result_free(&r);
    r = run_strata("show", "--help", NULL, NULL);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "Usage: strata show"));
    proc_result_free(&r);
}

static void test_top_level(void **state) {
    (void)state;
    proc_result r = run_strata("--version", NULL, NULL, NULL);
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.out, "strata version 0.1.0\n");
    proc_result_free(&r);
    r = run_strata("--help", NULL, NULL, NULL);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "Usage: strata COMMAND"));
    assert_non_null(strstr(r.out, "\n  show "));
    proc_result_free(&r);
    r = run_strata("help", "show", NULL, NULL);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "Usage: strata show"));
    proc_result_free(&r);
    r = run_strata("frobnicate", NULL, NULL, NULL);
    assert_one_line_failure(&r, "unknown command 'frobnicate'");
    proc_result_free(&r);
    r = run_strata("help", "frobnicate", NULL, NULL);
    assert_one_line_failure(&r, "unknown command 'frobnicate'");
    proc_result_free(&r);
    r = run_strata("--frobnicate", NULL, NULL, NULL);
    assert_one_line_failure(&r, "unknown option '--frobnicate'");
    proc_result_free(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_show_json_stories260k),
        cmocka_unit_test(test_show_tensors_json),
        cmocka_unit_test(test_show_text),
        cmocka_unit_test(test_show_generated_model),
        cmocka_unit_test(test_show_broken_file),
        cmocka_unit_test(test_show_usage_errors),
        cmocka_unit_test(test_top_level),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
