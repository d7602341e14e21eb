/* `strata run` end to end: the real binary on the shared stories260K models.
 * Expected continuations are the ones the reference implementation produced (quoted in
 * ../shared/testdata/README.md for prompt "Once upon a time", BOS added, greedy). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proc.h"
#include "testdata.h"

static const char greedy_ref[] =
    ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw a "
    "big, red ball. She wanted to play with it, but it was too high.\nLily's mom said";
/* The README gives the Q4_0 continuation up to "with her mom…"; we check that prefix. */
static const char greedy_ref_q4_0[] =
    ", there was a little girl named Lily. She loved to play outside in the sun. One day, she went to "
    "the park with her mom";

static char *model(const char *name) {
    char rel[128];
    snprintf(rel, sizeof rel, "models/%s.gguf", name);
    return testdata_path(rel);
}

/* Runs strata with up to 30 arguments (NULL-terminated list). */
static proc_result run(const char *first, ...) {
    char *argv[32];
    int n = 0;
    argv[n++] = STRATA_BINARY;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && n < 31; a = va_arg(ap, const char *)) argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    proc_result r;
    assert_int_equal(proc_run(argv, &r), 0);
    return r;
}

static void test_greedy_reference_text(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    const char *names[] = {"stories260K-f32", "stories260K-F16", "stories260K-Q8_0"};
    for (int i = 0; i < 3; i++) {
        char *m = model(names[i]);
        proc_result r = run("run", m, "Once upon a time", "--temperature", "0", "--num_predict", "64", NULL);
        if (r.exit_code != 0 || strcmp(r.out, greedy_ref) != 0)
            fail_msg("%s: rc %d, stdout [%s], stderr [%s]", names[i], r.exit_code, r.out, r.err);
        proc_result_free(&r);
        free(m);
    }
    char *m = model("stories260K-Q4_0");
    proc_result r = run("run", m, "Once upon a time", "--temperature", "0", "--num_predict", "64", NULL);
    assert_int_equal(r.exit_code, 0);
    if (strncmp(r.out, greedy_ref_q4_0, strlen(greedy_ref_q4_0)) != 0) fail_msg("Q4_0: stdout [%s]", r.out);
    proc_result_free(&r);
    free(m);
}

static void test_prompt_from_stdin(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    char *m = model("stories260K-f32");
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "printf 'Once upon a time' | '%s' run '%s' --temperature 0 --num-predict 64 2>/dev/null", STRATA_BINARY,
             m);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char out[4096];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    assert_int_equal(pclose(p), 0);
    assert_string_equal(out, greedy_ref);
    free(m);
}

static void test_verbose_stats_on_stderr(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    char *m = model("stories260K-f32");
    proc_result r = run("run", m, "Once upon a time", "--temperature", "0", "--num-predict", "8", "--verbose", NULL);
    assert_int_equal(r.exit_code, 0);
    /* stdout: only the generated text, no prompt echo, no statistics */
    assert_int_equal(strncmp(r.out, ", there was", 11), 0);
    assert_null(strstr(r.out, "Once upon"));
    assert_null(strstr(r.out, "eval"));
    const char *keys[] = {"load duration:", "prompt eval count:    5 token(s)", "prompt eval duration:",
                          "prompt eval rate:", "eval count:           8 token(s)", "eval duration:", "eval rate:"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!strstr(r.err, keys[i])) fail_msg("stderr lacks '%s': [%s]", keys[i], r.err);
    proc_result_free(&r);
    free(m);
}

static void test_seed_and_options(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    char *m = model("stories260K-Q8_0");
    proc_result a = run("run", m, "Once upon a time", "--temperature", "1.0", "--seed", "7", "--num_predict", "40",
                        "--top_k", "100", "--top-p", "0.95", NULL);
    proc_result b = run("run", m, "Once upon a time", "--temperature", "1.0", "--seed", "7", "--num_predict", "40",
                        "--top-k", "100", "--top_p", "0.95", NULL);
    proc_result c = run("run", m, "Once upon a time", "--temperature", "1.0", "--seed", "8", "--num_predict", "40",
                        "--top_k", "100", "--top_p", "0.95", NULL);
    assert_int_equal(a.exit_code, 0);
    assert_string_equal(a.out, b.out); /* same seed and options, same text */
    assert_string_not_equal(a.out, c.out);
    proc_result_free(&a);
    proc_result_free(&b);
    proc_result_free(&c);
    free(m);
}

static void test_stop_sequence(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    char *m = model("stories260K-f32");
    proc_result r = run("run", m, "Once upon a time", "--temperature", "0", "--stop", "park", "--stop", "zebra",
                        "--num_predict", "64", NULL);
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.out, ", there was a little girl named Lily. She loved to play outside in the ");
    proc_result_free(&r);
    free(m);
}

/* Context overflow (see runtime/generate.h and the README): generation past num_ctx shifts
 * the context and goes on; a prompt longer than num_ctx is truncated, not refused. */
static void test_context_overflow(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    char *m = model("stories260K-f32");
    proc_result r = run("run", m, "Once upon a time", "--temperature", "0", "--num_ctx", "32", "--num_predict", "100",
                        "--verbose", NULL);
    assert_int_equal(r.exit_code, 0);
    if (!strstr(r.err, "eval count:           100 token(s)")) fail_msg("stderr: %s", r.err);
    assert_non_null(strstr(r.err, "context shifted"));
    /* Before the first shift the text is the plain greedy one: 27 tokens fit after the prompt. */
    assert_int_equal(strncmp(r.out, ", there was a little girl named Lily.", 36), 0);
    proc_result_free(&r);

    char prompt[4096] = "";
    for (int i = 0; i < 40; i++) strcat(prompt, "Once upon a time there was a dog. ");
    r = run("run", m, prompt, "--temperature", "0", "--num_ctx", "64", "--num_predict", "10", "--verbose", NULL);
    assert_int_equal(r.exit_code, 0);
    if (!strstr(r.err, "prompt truncated")) fail_msg("stderr: %s", r.err);
    assert_non_null(strstr(r.err, "eval count:           10 token(s)"));
    proc_result_free(&r);
    free(m);
}

static void test_errors(void **state) {
    (void)state;
    proc_result r = run("run", "/nonexistent/model.gguf", "hi", NULL);
    assert_int_equal(r.exit_code, 1);
    assert_int_equal(r.out_len, 0);
    assert_int_equal(proc_count_lines(r.err), 1);
    proc_result_free(&r);
    r = run("run", "x.gguf", "hi", "--no_such_option", "1", NULL);
    assert_int_equal(r.exit_code, 1);
    assert_non_null(strstr(r.err, "no_such_option"));
    proc_result_free(&r);
    r = run("run", "x.gguf", "hi", "--temperature", "warm", NULL);
    assert_int_equal(r.exit_code, 1);
    assert_non_null(strstr(r.err, "temperature"));
    proc_result_free(&r);
    r = run("run", "--help", NULL);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "--num_predict"));
    proc_result_free(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy_reference_text), cmocka_unit_test(test_prompt_from_stdin),
        cmocka_unit_test(test_verbose_stats_on_stderr), cmocka_unit_test(test_seed_and_options),
        cmocka_unit_test(test_stop_sequence),          cmocka_unit_test(test_context_overflow),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
