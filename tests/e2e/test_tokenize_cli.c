/* End to end: `strata tokenize` / `strata detokenize` run as the real binary, on a vocab
 * written by our own GGUF writer (always) and on the shared Llama 3 vocab (when present). */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tokenizer/tok_fixtures.h"
#include "proc.h"
#include "testdata.h"

#ifndef STRATA_BINARY
#error "STRATA_BINARY must be defined by the build"
#endif

static proc_result run_strata(const char *a1, const char *a2, const char *a3, const char *a4, const char *a5) {
    char *argv[] = {STRATA_BINARY, (char *)a1, (char *)a2, (char *)a3, (char *)a4, (char *)a5, NULL};
    proc_result r;
    if (proc_run(argv, &r) != 0) fail_msg("cannot run %s", STRATA_BINARY);
    return r;
}

/* Runs a shell command line (for piping into standard input). */
static proc_result run_sh(const char *cmd) {
    char *argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};
    proc_result r;
    if (proc_run(argv, &r) != 0) fail_msg("cannot run /bin/sh");
    return r;
}

static void assert_ok_out(proc_result *r, const char *want) {
    if (r->exit_code != 0) fail_msg("strata exited %d: %s", r->exit_code, r->err);
    assert_int_equal(r->err_len, 0);
    if (strcmp(r->out, want) != 0) fail_msg("stdout \"%s\", want \"%s\"", r->out, want);
    proc_result_free(r);
}

static void assert_one_line_failure(proc_result *r, const char *fragment) {
    assert_int_equal(r->exit_code, 1);
    assert_int_equal(r->out_len, 0);
    if (proc_count_lines(r->err) != 1) fail_msg("stderr is not one line: \"%s\"", r->err);
    assert_true(strncmp(r->err, "strata: ", 8) == 0);
    if (!strstr(r->err, fragment)) fail_msg("stderr \"%s\" lacks \"%s\"", r->err, fragment);
    proc_result_free(r);
}

static void test_fixture_vocab(void **state) {
    (void)state;
    char *dir = tmpdir_make();
    assert_non_null(dir);
    char *spm = tmpdir_path(dir, "spm.gguf");
    size_t size;
    void *mem = tok_fixture_spm(&size);
    assert_non_null(mem);
    assert_int_equal(tmpdir_write(spm, mem, size), 0);
    free(mem);

    proc_result r = run_strata("tokenize", spm, "hello world", NULL, NULL);
    assert_ok_out(&r, "1 271 277\n");
    r = run_strata("tokenize", spm, "hello world", "--no-bos", NULL);
    assert_ok_out(&r, "271 277\n");
    r = run_strata("tokenize", spm, "", "--no-bos", NULL);
    assert_ok_out(&r, "\n");
    r = run_strata("tokenize", spm, "hello<|end|>", "--special", "--no-bos");
    assert_ok_out(&r, "271 280\n");
    r = run_strata("tokenize", "--no-bos", "--", spm, "-x");
    assert_ok_out(&r, "259 48 123\n"); /* "▁" then byte tokens for '-' and 'x' */
    r = run_strata("detokenize", spm, "1", "271", "277");
    assert_ok_out(&r, "hello world");
    r = run_strata("detokenize", spm, "1 271,277", "--special", NULL);
    assert_ok_out(&r, "<s> hello world");

    /* stdin, exactly: newlines and a trailing space survive the round trip */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "printf 'hello\\nworld \\n' | %s tokenize %s - --no-bos", STRATA_BINARY, spm);
    r = run_sh(cmd);
    assert_int_equal(r.exit_code, 0);
    char ids[256];
    snprintf(ids, sizeof ids, "%s", r.out);
    ids[strcspn(ids, "\n")] = 0;
    proc_result_free(&r);
    r = run_strata("detokenize", spm, ids, NULL, NULL);
    assert_ok_out(&r, "hello\nworld \n");

    /* JSON */
    r = run_strata("tokenize", spm, "hello", "--json", NULL);
    assert_int_equal(r.exit_code, 0);
    cJSON *j = cJSON_Parse(r.out);
    assert_non_null(j);
    const cJSON *jids = cJSON_GetObjectItemCaseSensitive(j, "ids");
    const cJSON *jp = cJSON_GetObjectItemCaseSensitive(j, "pieces");
    assert_int_equal(cJSON_GetArraySize(jids), 2);
    assert_int_equal(cJSON_GetArraySize(jp), 2);
    assert_int_equal(cJSON_GetArrayItem(jids, 1)->valueint, 271);
    assert_string_equal(cJSON_GetArrayItem(jp, 0)->valuestring, "<s>");
    assert_string_equal(cJSON_GetArrayItem(jp, 1)->valuestring, " hello");
    cJSON_Delete(j);
    proc_result_free(&r);

    /* failures: one line on stderr */
    r = run_strata("tokenize", spm, NULL, NULL, NULL);
    assert_one_line_failure(&r, "expected FILE.gguf and TEXT");
    r = run_strata("tokenize", spm, "x", "--bogus", NULL);
    assert_one_line_failure(&r, "--bogus");
    r = run_strata("detokenize", spm, "12x", NULL, NULL);
    assert_one_line_failure(&r, "not a token id");
    r = run_strata("detokenize", spm, "999999", NULL, NULL);
    assert_one_line_failure(&r, "out of range");
    char *missing = tmpdir_path(dir, "missing.gguf");
    r = run_strata("tokenize", missing, "x", NULL, NULL);
    assert_one_line_failure(&r, "missing.gguf");
    free(missing);

    free(spm);
    tmpdir_remove(dir);
}

static void test_llama3_vocab(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    char *path = testdata_path("vocab/ggml-vocab-llama-bpe.gguf");
    proc_result r = run_strata("tokenize", path, "Hello world", NULL, NULL);
    assert_ok_out(&r, "128000 9906 1917\n");
    r = run_strata("tokenize", path, "<|eot_id|>", "--special", "--no-bos");
    assert_ok_out(&r, "128009\n");
    r = run_strata("detokenize", path, "128000 9906 1917", NULL, NULL);
    assert_ok_out(&r, "Hello world");
    free(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_vocab),
        cmocka_unit_test(test_llama3_vocab),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
