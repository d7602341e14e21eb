/* End to end: `strata plan` and `strata devices`, the real binary. The 70B scenario is planned
 * from a sparse what-if file; the JSON carries the keys of issue 5 and adds up; refusals
 * (num_gpu too large, bad device spec, model too big) are one line on stderr. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "planner/plan.h"
#include "proc.h"
#include "testdata.h"

#ifndef STRATA_BINARY
#error "STRATA_BINARY must be defined by the build"
#endif

#define SPEC3 "sim:12GiB:360:RTX3060,sim:12GiB:288:A2000,sim:6GiB:288:A2000,cpu:64GiB:50"

static char *dir, *model70b;

static int setup(void **state) {
    (void)state;
    dir = tmpdir_make();
    if (!dir) return -1;
    model70b = tmpdir_path(dir, "llama70b.gguf");
    plan_llama_shape s = {.n_layer = 80, .n_embd = 8192, .n_head = 64, .n_head_kv = 8, .n_ff = 28672,
                          .n_vocab = 128256, .n_ctx_train = 131072, .q4_k_m = true};
    return plan_whatif_write_llama(model70b, &s, true, NULL) == STRATA_OK ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    free(model70b);
    tmpdir_remove(dir);
    return 0;
}

static proc_result run(char **args) {
    char *argv[16] = {STRATA_BINARY};
    int n = 1;
    for (; args[n - 1] && n < 15; n++) argv[n] = args[n - 1];
    argv[n] = NULL;
    proc_result r;
    if (proc_run(argv, &r) != 0) fail_msg("cannot run %s", STRATA_BINARY);
    return r;
}

static cJSON *json_of(const proc_result *r) {
    if (r->exit_code != 0) fail_msg("strata exited %d: %s", r->exit_code, r->err);
    cJSON *j = cJSON_Parse(r->out);
    if (!j) fail_msg("not JSON: %.200s", r->out);
    return j;
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v)) fail_msg("key '%s' missing or not a number", k);
    return v->valuedouble;
}

static void one_line_failure(const proc_result *r, const char *fragment) {
    assert_int_equal(r->exit_code, 1);
    assert_int_equal(r->out_len, 0);
    if (proc_count_lines(r->err) != 1) fail_msg("stderr is not one line: %s", r->err);
    assert_true(strncmp(r->err, "strata: ", 8) == 0);
    if (!strstr(r->err, fragment)) fail_msg("'%s' lacks '%s'", r->err, fragment);
}

static void test_plan_70b_json(void **state) {
    (void)state;
    char *args[] = {"plan", model70b, "--devices", SPEC3, "--num-ctx", "4096", "--json", NULL};
    proc_result r = run(args);
    cJSON *j = json_of(&r);
    const cJSON *devs = cJSON_GetObjectItemCaseSensitive(j, "devices");
    assert_int_equal(cJSON_GetArraySize(devs), 4);
    int layers = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, devs) {
        static const char *const keys[] = {"free_bytes", "reserve_bytes", "layer_start", "layer_end",
                                           "weights_bytes", "kv_bytes", "compute_bytes", "total_bytes"};
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) (void)num(d, keys[k]);
        assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(d, "name")));
        assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(d, "kind")));
        layers += (int)(num(d, "layer_end") - num(d, "layer_start"));
        assert_true(num(d, "total_bytes") ==
                    num(d, "weights_bytes") + num(d, "kv_bytes") + num(d, "compute_bytes"));
        assert_true(num(d, "total_bytes") <= num(d, "free_bytes") - num(d, "reserve_bytes"));
        if (strcmp(cJSON_GetObjectItemCaseSensitive(d, "kind")->valuestring, "sim") == 0) {
            assert_true(num(d, "layer_end") > num(d, "layer_start"));
            assert_true(num(d, "reserve_bytes") == 256.0 * 1024 * 1024);
        }
    }
    assert_int_equal(layers, 81);
    assert_int_equal((int)num(j, "layers_total"), 81);
    int off = (int)num(j, "layers_offloaded");
    assert_true(off > 40 && off < 81);
    assert_true(num(j, "predicted_tokens_per_second") > 0);
    assert_true(num(j, "host_bytes") > 0);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "explanation");
    assert_true(cJSON_IsString(e) && strstr(e->valuestring, "needs") && strstr(e->valuestring, "reserve"));

    /* num_gpu 81 is refused, naming the largest that fits; that one is honoured */
    char want[64], offs[16];
    snprintf(want, sizeof want, "the largest that does is num_gpu %d", off);
    char *a2[] = {"plan", model70b, "--devices", SPEC3, "--num_ctx", "4096", "--num_gpu", "81", NULL};
    proc_result r2 = run(a2);
    one_line_failure(&r2, want);
    proc_result_free(&r2);
    snprintf(offs, sizeof offs, "%d", off);
    char *a3[] = {"plan", model70b, "--devices", SPEC3, "--num_ctx", "4096", "--num-gpu", offs, "--json", NULL};
    proc_result r3 = run(a3);
    cJSON *j3 = json_of(&r3);
    assert_int_equal((int)num(j3, "layers_offloaded"), off);
    cJSON_Delete(j3);
    proc_result_free(&r3);
    cJSON_Delete(j);
    proc_result_free(&r);
}

static void test_plan_table_and_errors(void **state) {
    (void)state;
    char *args[] = {"plan", model70b, "--devices", SPEC3, "--num_ctx", "4096", NULL};
    proc_result r = run(args);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "A2000 #2"));
    assert_non_null(strstr(r.out, "layers offloaded:"));
    assert_non_null(strstr(r.out, "predicted decode:"));
    proc_result_free(&r);

    char *bad[] = {"plan", model70b, "--devices", "sim:12GiB,sim:12XB", NULL};
    r = run(bad);
    one_line_failure(&r, "field 2 (MEMORY)");
    proc_result_free(&r);

    char *small[] = {"plan", model70b, "--devices", "sim:1GiB,cpu:8GiB:20", NULL};
    r = run(small);
    one_line_failure(&r, "short");
    proc_result_free(&r);

    char *badres[] = {"plan", model70b, "--devices", SPEC3, "--reserve", "nope=1GiB", NULL};
    r = run(badres);
    one_line_failure(&r, "no device named 'nope'");
    proc_result_free(&r);

    /* a bigger reserve leaves fewer layers on the GPUs; per-device reserves by name */
    char *res[] = {"plan", model70b, "--devices", SPEC3, "--num_ctx", "4096", "--reserve", "1GiB,A2000 #2=0", "--json",
                   NULL};
    r = run(res);
    cJSON *j = json_of(&r);
    const cJSON *devs = cJSON_GetObjectItemCaseSensitive(j, "devices");
    assert_true(num(cJSON_GetArrayItem(devs, 0), "reserve_bytes") == 1024.0 * 1024 * 1024);
    assert_true(num(cJSON_GetArrayItem(devs, 2), "reserve_bytes") == 0);
    cJSON_Delete(j);
    proc_result_free(&r);
}

static void test_plan_small_model(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    char *path = testdata_path("models/stories260K-f32.gguf");
    char *args[] = {"plan", path, "--devices", "sim:12GiB:360,cpu::20", "--json", NULL};
    proc_result r = run(args);
    cJSON *j = json_of(&r);
    assert_int_equal((int)num(j, "layers_offloaded"), 6);
    assert_int_equal((int)num(j, "layers_total"), 6);
    cJSON_Delete(j);
    proc_result_free(&r);
    free(path);
}

static void test_devices(void **state) {
    (void)state;
    char *args[] = {"devices", "--devices", "sim:12GiB:360:RTX3060,sim:6GiB:288:A2000,cpu::30", "--json", NULL};
    proc_result r = run(args);
    cJSON *j = json_of(&r);
    const cJSON *devs = cJSON_GetObjectItemCaseSensitive(j, "devices");
    assert_int_equal(cJSON_GetArraySize(devs), 3);
    const cJSON *d0 = cJSON_GetArrayItem(devs, 0);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(d0, "name")->valuestring, "RTX3060");
    assert_true(num(d0, "total_bytes") == 12.0 * 1024 * 1024 * 1024);
    assert_true(num(d0, "gbps") == 360);
    assert_true(num(cJSON_GetArrayItem(devs, 2), "gbps") == 30);
    cJSON_Delete(j);
    proc_result_free(&r);

    char *plain[] = {"devices", NULL};
    r = run(plain);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "cpu"));
    proc_result_free(&r);

    char *bad[] = {"devices", "--devices", "sim:12GiB:fast", NULL};
    r = run(bad);
    one_line_failure(&r, "field 3 (GBPS)");
    proc_result_free(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_70b_json),
        cmocka_unit_test(test_plan_table_and_errors),
        cmocka_unit_test(test_plan_small_model),
        cmocka_unit_test(test_devices),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
