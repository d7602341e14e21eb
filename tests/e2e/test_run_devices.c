/* End to end: `strata run FILE --devices SPEC --verbose` loads per plan, and the per-device
 * lines it logs on stderr (measured after allocation) carry exactly the figures of
 * `strata plan FILE --devices SPEC --json` for the same options: layer range, weights, KV,
 * compute, total, free, reserve, headroom. The generated text equals the cpu-only run's
 * (greedy). num_gpu beyond what fits is one line naming the largest value that fits, and an
 * injected sim allocation failure (STRATA_SIM_FAIL_ALLOC) is one clean line too. */
#include <cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proc.h"
#include "testdata.h"

#ifndef STRATA_BINARY
#error "STRATA_BINARY must be defined by the build"
#endif

static proc_result run(char **args) {
    char *argv[32] = {STRATA_BINARY};
    int n = 1;
    for (; args[n - 1] && n < 31; n++) argv[n] = args[n - 1];
    argv[n] = NULL;
    proc_result r;
    if (proc_run(argv, &r) != 0) fail_msg("cannot run %s", STRATA_BINARY);
    return r;
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v)) fail_msg("key '%s' missing or not a number", k);
    return v->valuedouble;
}

static void check_model(const char *name, char *SPEC) {
    char rel[128];
    snprintf(rel, sizeof rel, "models/%s", name);
    char *model = testdata_path(rel);
    char *plan_args[] = {"plan", model, "--devices", SPEC, "--reserve", "0", "--num_ctx", "128", "--json", NULL};
    proc_result p = run(plan_args);
    if (p.exit_code != 0) fail_msg("plan: %s", p.err);
    cJSON *pj = cJSON_Parse(p.out);
    assert_non_null(pj);
    char *run_args[] = {"run", model, "Once upon a time", "--devices", SPEC, "--reserve", "0", "--num_ctx", "128",
                        "--temperature", "0", "--num_predict", "12", "--verbose", NULL};
    proc_result r = run(run_args);
    if (r.exit_code != 0) fail_msg("run: %s", r.err);
    const cJSON *devs = cJSON_GetObjectItemCaseSensitive(pj, "devices");
    int n_checked = 0, n_used = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, devs) {
        const char *dn = cJSON_GetObjectItemCaseSensitive(d, "name")->valuestring;
        char key[96];
        snprintf(key, sizeof key, "strata: device %s kind ", dn);
        const char *line = strstr(r.err, key);
        if (!line) fail_msg("no line for %s in: %s", dn, r.err);
        char kind[16];
        int ls, le;
        uint64_t w, kv, comp, tot, arena, fr, res, head;
        int got = sscanf(line + strlen(key) - 5,
                         "kind %15s layers [%d, %d) weights %" SCNu64 " kv %" SCNu64 " compute %" SCNu64
                         " total %" SCNu64 " arena %" SCNu64 " free %" SCNu64 " reserve %" SCNu64
                         " headroom %" SCNu64,
                         kind, &ls, &le, &w, &kv, &comp, &tot, &arena, &fr, &res, &head);
        if (got != 11) fail_msg("unparsed line (%d fields): %.200s", got, line);
        assert_string_equal(kind, cJSON_GetObjectItemCaseSensitive(d, "kind")->valuestring);
        assert_int_equal(ls, (int)num(d, "layer_start"));
        assert_int_equal(le, (int)num(d, "layer_end"));
        assert_true((double)w == num(d, "weights_bytes"));
        assert_true((double)kv == num(d, "kv_bytes"));
        assert_true((double)comp == num(d, "compute_bytes"));
        assert_true((double)tot == num(d, "total_bytes"));
        assert_true((double)arena == num(d, "arena_bytes"));
        assert_true((double)fr == num(d, "free_bytes"));
        assert_true((double)res == num(d, "reserve_bytes"));
        assert_true((double)head == num(d, "headroom_bytes"));
        if (le > ls) n_used++;
        n_checked++;
    }
    assert_int_equal(n_checked, 3);
    print_message("  %s: %d devices used, per-device lines == plan --json\n", name, n_used);
    assert_true(n_used >= 2);

    /* the same text as on the cpu alone */
    char *cpu_args[] = {"run", model, "Once upon a time", "--devices", "cpu", "--num_ctx", "128", "--temperature", "0",
                        "--num_predict", "12", NULL};
    proc_result c = run(cpu_args);
    assert_int_equal(c.exit_code, 0);
    assert_string_equal(c.out, r.out);
    proc_result_free(&c);
    proc_result_free(&r);
    proc_result_free(&p);
    cJSON_Delete(pj);
    free(model);
}

static void test_verbose_matches_plan(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    check_model("micro-llama-Q8_0.gguf", "sim:1200KiB:100:g0,sim:1200KiB:200:g1,cpu:8GiB:10");
    check_model("stories260K-Q8_0.gguf", "sim:300KiB:100:g0,sim:300KiB:200:g1,cpu:8GiB:10");
}

static void test_refusals(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    char *model = testdata_path("models/micro-llama-Q8_0.gguf");
    char *args[] = {"run", model, "hi", "--devices", "sim:1MiB:100:g0,cpu::10", "--reserve", "0", "--num_ctx", "128",
                    "--num_gpu", "4", NULL};
    proc_result r = run(args);
    assert_int_equal(r.exit_code, 1);
    assert_int_equal(r.out_len, 0);
    assert_int_equal(proc_count_lines(r.err), 1);
    if (!strstr(r.err, "num_gpu 4 does not fit; the largest that does is num_gpu 1")) fail_msg("%s", r.err);
    proc_result_free(&r);

    /* the first sim arena allocation of the process fails: one line, exit 1 */
    setenv("STRATA_SIM_FAIL_ALLOC", "1", 1);
    char *args2[] = {"run", model, "hi", "--devices", "sim:1GiB:100:g0,cpu::10", "--reserve", "0", "--num_ctx", "128",
                     NULL};
    r = run(args2);
    unsetenv("STRATA_SIM_FAIL_ALLOC");
    assert_int_equal(r.exit_code, 1);
    assert_int_equal(r.out_len, 0);
    assert_int_equal(proc_count_lines(r.err), 1);
    if (!strstr(r.err, "injected")) fail_msg("%s", r.err);
    proc_result_free(&r);
    free(model);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verbose_matches_plan),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
