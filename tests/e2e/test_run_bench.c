/* `strata bench` end to end: the table and the exact JSON shape of issue 4. */
#include <cJSON.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proc.h"
#include "testdata.h"

static void test_bench_json(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    char *m = testdata_path("models/stories260K-Q8_0.gguf");
    char *argv[] = {STRATA_BINARY, "bench", m, "-p", "32", "-n", "16", "-r", "2", "-t", "1", "--json", NULL};
    proc_result r;
    assert_int_equal(proc_run(argv, &r), 0);
    if (r.exit_code != 0) fail_msg("rc %d: %s", r.exit_code, r.err);
    cJSON *o = cJSON_Parse(r.out);
    assert_non_null(o);
    assert_int_equal(cJSON_GetArraySize(o), 3); /* exactly model, threads, results */
    assert_string_equal(cJSON_GetObjectItem(o, "model")->valuestring, m);
    assert_int_equal(cJSON_GetObjectItem(o, "threads")->valueint, 1);
    cJSON *res = cJSON_GetObjectItem(o, "results");
    assert_int_equal(cJSON_GetArraySize(res), 2);
    const char *names[] = {"pp32", "tg16"};
    for (int i = 0; i < 2; i++) {
        cJSON *e = cJSON_GetArrayItem(res, i);
        assert_int_equal(cJSON_GetArraySize(e), 3);
        assert_string_equal(cJSON_GetObjectItem(e, "test")->valuestring, names[i]);
        assert_true(cJSON_GetObjectItem(e, "tokens_per_second")->valuedouble > 0);
        assert_true(cJSON_GetObjectItem(e, "stddev")->valuedouble >= 0);
    }
    cJSON_Delete(o);
    proc_result_free(&r);

    char *argv2[] = {STRATA_BINARY, "bench", m, "-p", "16", "-n", "0", "-r", "1", NULL};
    assert_int_equal(proc_run(argv2, &r), 0);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "| pp16 |"));
    assert_non_null(strstr(r.out, " ± "));
    assert_null(strstr(r.out, "tg"));
    proc_result_free(&r);

    /* -d: the tests start after that many tokens, and say so in their names */
    char *argv4[] = {STRATA_BINARY, "bench", m, "-p", "16", "-n", "4", "-d", "40", "-r", "1", "--json", NULL};
    assert_int_equal(proc_run(argv4, &r), 0);
    if (r.exit_code != 0) fail_msg("rc %d: %s", r.exit_code, r.err);
    o = cJSON_Parse(r.out);
    assert_non_null(o);
    res = cJSON_GetObjectItem(o, "results");
    assert_int_equal(cJSON_GetArraySize(res), 2);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(res, 0), "test")->valuestring, "pp16 @ d40");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(res, 1), "test")->valuestring, "tg4 @ d40");
    assert_non_null(strstr(r.err, "tg4 @ d40: ")); /* the bytes line counts the cache it reads */
    cJSON_Delete(o);
    proc_result_free(&r);
    /* a depth past the trained context (128) is refused, naming both lengths */
    char *argv5[] = {STRATA_BINARY, "bench", m, "-p", "16", "-n", "4", "-d", "120", "-r", "1", NULL};
    assert_int_equal(proc_run(argv5, &r), 0);
    assert_int_equal(r.exit_code, 1);
    assert_non_null(strstr(r.err, "shorter than the test (136)"));
    proc_result_free(&r);

    /* stories260K was trained on 128 tokens: pp512 cannot run and says why */
    char *argv3[] = {STRATA_BINARY, "bench", m, "-r", "1", NULL};
    assert_int_equal(proc_run(argv3, &r), 0);
    assert_int_equal(r.exit_code, 1);
    assert_non_null(strstr(r.err, "context"));
    proc_result_free(&r);
    free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_bench_json)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
