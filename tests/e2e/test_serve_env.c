/* Ollama's environment as a fallback to STRATA_*, end to end: a server started with only
 * OLLAMA_HOST, OLLAMA_MODELS, OLLAMA_KEEP_ALIVE, OLLAMA_CONTEXT_LENGTH,
 * OLLAMA_MAX_LOADED_MODELS and OLLAMA_GPU_OVERHEAD (the STRATA_ ones empty) listens where
 * OLLAMA_HOST says, keeps its models in OLLAMA_MODELS, unloads after the keep-alive, loads
 * with that context and reserve; the client commands find it through OLLAMA_HOST; a STRATA_
 * variable, when set, wins. */
#include <sys/stat.h>

#include "serve_util.h"

#define MODEL "models/stories260K-f32.gguf"

static void test_ollama_env(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    char *dir = tmpdir_make();
    char *models = tmpdir_path(dir, "ollama-models");
    char env_models[4200];
    snprintf(env_models, sizeof env_models, "OLLAMA_MODELS=%s", models);
    const char *env[] = {"STRATA_HOST=",
                         "STRATA_MODELS=",
                         "OLLAMA_HOST=127.0.0.1:0",
                         env_models,
                         "OLLAMA_CONTEXT_LENGTH=64",
                         "OLLAMA_KEEP_ALIVE=2s",
                         "OLLAMA_MAX_LOADED_MODELS=1",
                         "OLLAMA_GPU_OVERHEAD=1048576",
                         "STRATA_DEVICES=sim:64MiB:100:g0",
                         NULL};
    test_server s;
    server_start(&s, env); /* waits for "listening on 127.0.0.1:PORT": OLLAMA_HOST was read */
    create_model(&s, "stories", MODEL);
    struct stat sb;
    char manifests[4300];
    snprintf(manifests, sizeof manifests, "%s/manifests", models);
    assert_int_equal(stat(manifests, &sb), 0); /* the store is OLLAMA_MODELS */

    char *out = NULL;
    assert_int_equal(post(&s, "/api/generate", &out,
                          "{\"model\":\"stories\",\"prompt\":\"Once\",\"stream\":false,\"options\":{\"num_predict\":2}}"),
                     200);
    free(out);
    assert_int_equal(http_json(&s, "GET", "/api/ps", NULL, &out), 200);
    cJSON *ps = json_or_fail(out);
    free(out);
    const cJSON *m = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(ps, "models"), 0);
    assert_non_null(m);
    assert_true(jnum(m, "context_length") == 64); /* OLLAMA_CONTEXT_LENGTH */
    cJSON_Delete(ps);
    /* OLLAMA_GPU_OVERHEAD: the sim keeps 1 MiB free, as strata devices shows with the same env */
    char host[64];
    snprintf(host, sizeof host, "OLLAMA_HOST=127.0.0.1:%d", s.port);
    proc_result r;
    char *const list_argv[] = {"/usr/bin/env", "STRATA_HOST=", host, STRATA_BINARY, "list", NULL};
    assert_int_equal(proc_run(list_argv, &r), 0);
    if (r.exit_code != 0 || !strstr(r.out, "stories:latest")) fail_msg("strata list via OLLAMA_HOST: %s %s", r.out, r.err);
    proc_result_free(&r);
    char *const dev_argv[] = {"/usr/bin/env", "STRATA_GPU_RESERVE=", "OLLAMA_GPU_OVERHEAD=1048576", STRATA_BINARY,
                              "devices", "--devices", "sim:64MiB:100:g0", NULL};
    assert_int_equal(proc_run(dev_argv, &r), 0);
    assert_int_equal(r.exit_code, 0);
    if (!strstr(r.out, "1.00 MiB")) fail_msg("reserve from OLLAMA_GPU_OVERHEAD: %s", r.out);
    proc_result_free(&r);

    /* OLLAMA_KEEP_ALIVE=2s: unloaded soon after */
    int n = 1;
    for (int i = 0; i < 100 && (n = ps_count(&s, NULL, 0)) > 0; i++) sleep_ms(100);
    assert_int_equal(n, 0);
    server_stop(&s);

    /* STRATA_ wins over OLLAMA_ */
    const char *env2[] = {"OLLAMA_HOST=127.0.0.1:1", "OLLAMA_KEEP_ALIVE=0", "STRATA_KEEP_ALIVE=1h", NULL};
    server_start_in(&s, env2, models); /* STRATA_HOST=127.0.0.1:0 is set by server_start_in */
    assert_int_equal(post(&s, "/api/generate", &out,
                          "{\"model\":\"stories\",\"prompt\":\"Once\",\"stream\":false,\"options\":{\"num_predict\":2}}"),
                     200);
    free(out);
    sleep_ms(500);
    assert_int_equal(ps_count(&s, NULL, 0), 1);
    server_stop(&s);
    free(models);
    tmpdir_remove(dir);
}

/* After one generation: the KV bytes of the loaded model over all its devices, and how many
 * GPU-like devices hold layers. */
static void loaded_kv(const test_server *s, double *kv, int *gpus) {
    char *out = NULL;
    assert_int_equal(post(s, "/api/generate", &out,
                          "{\"model\":\"stories\",\"prompt\":\"Once\",\"stream\":false,\"options\":{\"num_predict\":2}}"),
                     200);
    free(out);
    assert_int_equal(http_json(s, "GET", "/api/ps", NULL, &out), 200);
    cJSON *ps = json_or_fail(out);
    free(out);
    const cJSON *m = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(ps, "models"), 0);
    const cJSON *d;
    *kv = 0;
    *gpus = 0;
    cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(m, "devices")) {
        *kv += jnum(d, "kv_bytes");
        if (strcmp(jstr(d, "kind"), "cpu") != 0 && jnum(d, "layers") > 0) (*gpus)++;
    }
    cJSON_Delete(ps);
}

/* OLLAMA_KV_CACHE_TYPE (f32: twice f16's bytes), OLLAMA_NUM_PARALLEL (the KV holds N contexts)
 * and OLLAMA_SCHED_SPREAD (every GPU gets layers) shape every load; a bad type stops the server
 * at start with a message. */
static void test_ollama_load_env(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    /* a context of 32: two of them still fit the model's trained 128 */
    const char *base[] = {"STRATA_DEVICES=sim:64MiB:100:g0,sim:64MiB:100:g1", "STRATA_GPU_RESERVE=0",
                          "STRATA_CONTEXT_LENGTH=32", NULL};
    test_server s;
    server_start(&s, base);
    create_model(&s, "stories", MODEL);
    double kv1;
    int gpus1;
    loaded_kv(&s, &kv1, &gpus1);
    server_stop(&s);
    const char *tuned[] = {"STRATA_DEVICES=sim:64MiB:100:g0,sim:64MiB:100:g1", "STRATA_GPU_RESERVE=0", "OLLAMA_CONTEXT_LENGTH=32",
                           "OLLAMA_KV_CACHE_TYPE=f32", "OLLAMA_NUM_PARALLEL=2", "OLLAMA_SCHED_SPREAD=1", NULL};
    server_start(&s, tuned);
    create_model(&s, "stories", MODEL);
    double kv2;
    int gpus2;
    loaded_kv(&s, &kv2, &gpus2);
    server_stop(&s);
    print_message("  default: kv %.0f bytes on %d GPU(s); f32, 2 parallel, spread: kv %.0f on %d\n", kv1, gpus1, kv2, gpus2);
    assert_true(kv1 > 0);
    assert_true(kv2 == 4 * kv1);
    assert_int_equal(gpus1, 1);
    assert_int_equal(gpus2, 2);

    proc_result r;
    char *const argv[] = {"/usr/bin/env", "STRATA_HOST=127.0.0.1:0", "OLLAMA_KV_CACHE_TYPE=q3", STRATA_BINARY, "serve", NULL};
    assert_int_equal(proc_run(argv, &r), 0);
    assert_int_not_equal(r.exit_code, 0);
    if (!strstr(r.err, "OLLAMA_KV_CACHE_TYPE: 'q3' is not one of f16, f32, q8_0")) fail_msg("stderr: %s", r.err);
    proc_result_free(&r);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_ollama_env, server_teardown),
        cmocka_unit_test_teardown(test_ollama_load_env, server_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
