/* /api/embed and /api/embeddings, end to end over real HTTP: a vector of n_embd floats of
 * unit L2 norm per input (mean of the output-norm hidden states, normalised), the same
 * input gives the same vector (also inside one batch of inputs), different inputs differ;
 * the model loaded for embeddings on a simulated GPU split still holds exactly its plan
 * (/api/ps allocated == planned per device). */
#include <math.h>

#include "serve_util.h"

#define MODEL "models/stories260K-f32.gguf" /* n_embd 64 */

static const cJSON *vec_at(const cJSON *arr, int i) { return cJSON_GetArrayItem(arr, i); }

static double norm_of(const cJSON *v) {
    double ss = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, v) ss += x->valuedouble * x->valuedouble;
    return sqrt(ss);
}

static double max_diff(const cJSON *a, const cJSON *b) {
    double m = 0;
    int n = cJSON_GetArraySize(a);
    assert_int_equal(n, cJSON_GetArraySize(b));
    for (int i = 0; i < n; i++) {
        double d = fabs(vec_at(a, i)->valuedouble - vec_at(b, i)->valuedouble);
        if (d > m) m = d;
    }
    return m;
}

static void test_embed(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    const char *env[] = {"STRATA_DEVICES=sim:300KiB:100:gpu0,cpu", "STRATA_GPU_RESERVE=0", NULL};
    test_server s;
    server_start(&s, env);
    create_model(&s, "stories", MODEL);

    char *out = NULL;
    long st = post(&s, "/api/embed", &out,
                   "{\"model\":\"stories\",\"input\":[\"Once upon a time\",\"The cat sat on the mat\",\"Once upon a "
                   "time\"]}");
    if (st != 200) fail_msg("embed: %ld %s", st, out);
    cJSON *j = json_or_fail(out);
    const cJSON *embs = cJSON_GetObjectItemCaseSensitive(j, "embeddings");
    assert_int_equal(cJSON_GetArraySize(embs), 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cJSON_GetArraySize(vec_at(embs, i)), 64); /* n_embd */
        double nrm = norm_of(vec_at(embs, i));
        print_message("  |e%d| = %.9f\n", i, nrm);
        assert_true(fabs(nrm - 1.0) < 1e-5); /* floats printed by cJSON round-trip to ~1e-7 */
    }
    double same = max_diff(vec_at(embs, 0), vec_at(embs, 2)), differ = max_diff(vec_at(embs, 0), vec_at(embs, 1));
    print_message("  same input: max diff %g; different inputs: max diff %g\n", same, differ);
    assert_true(same == 0.0);
    assert_true(differ > 1e-3);
    assert_true(jnum(j, "prompt_eval_count") > 0);

    /* the same input again, alone: the same vector */
    char *out2 = NULL;
    st = post(&s, "/api/embed", &out2, "{\"model\":\"stories\",\"input\":\"Once upon a time\"}");
    assert_int_equal(st, 200);
    cJSON *j2 = json_or_fail(out2);
    assert_true(max_diff(vec_at(cJSON_GetObjectItemCaseSensitive(j2, "embeddings"), 0), vec_at(embs, 0)) == 0.0);

    /* legacy /api/embeddings: one "embedding" */
    char *out3 = NULL;
    st = post(&s, "/api/embeddings", &out3, "{\"model\":\"stories\",\"prompt\":\"Once upon a time\"}");
    assert_int_equal(st, 200);
    cJSON *j3 = json_or_fail(out3);
    assert_true(max_diff(cJSON_GetObjectItemCaseSensitive(j3, "embedding"), vec_at(embs, 0)) == 0.0);

    /* loaded for embeddings, split over the sim and the cpu: allocated == planned */
    char *ps = NULL;
    assert_int_equal(http_json(&s, "GET", "/api/ps", NULL, &ps), 200);
    cJSON *pj = json_or_fail(ps);
    const cJSON *m = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(pj, "models"), 0);
    const cJSON *d;
    int used = 0;
    cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(m, "devices")) {
        assert_true(jnum(d, "allocated_bytes") == jnum(d, "planned_bytes"));
        if (jnum(d, "layers") > 0) used++;
    }
    assert_true(used == 2);

    /* errors: unknown model, bad input, too long without truncation */
    char *e1 = NULL;
    assert_int_equal(post(&s, "/api/embed", &e1, "{\"model\":\"nope\",\"input\":\"x\"}"), 404);
    char *e2 = NULL;
    assert_int_equal(post(&s, "/api/embed", &e2, "{\"model\":\"stories\",\"input\":[1,2]}"), 400);
    free(e1);
    free(e2);

    cJSON_Delete(pj);
    free(ps);
    cJSON_Delete(j3);
    free(out3);
    cJSON_Delete(j2);
    free(out2);
    cJSON_Delete(j);
    free(out);
    server_stop(&s);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_embed, server_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
