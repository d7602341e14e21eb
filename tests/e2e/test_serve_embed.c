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

static cJSON *first_vec_of(const char *body, const char *key) {
    cJSON *j = json_or_fail(body);
    cJSON *v = cJSON_DetachItemFromArray(cJSON_GetObjectItemCaseSensitive(j, key), 0);
    cJSON_Delete(j);
    return v;
}

/* "dimensions" (first N values, normalised again), "truncate", OpenAI's /v1/embeddings
 * (float and base64) and GET /v1/models/{id}, all against the full /api/embed vector. */
static void test_embed_routes(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    test_server s;
    server_start(&s, NULL);
    create_model(&s, "stories", MODEL);
    char *out = NULL;
    assert_int_equal(post(&s, "/api/embed", &out, "{\"model\":\"stories\",\"input\":\"Once upon a time\"}"), 200);
    cJSON *full = first_vec_of(out, "embeddings");
    free(out);
    assert_int_equal(cJSON_GetArraySize(full), 64);

    /* dimensions 16: the first 16 values of the full vector, rescaled to unit length */
    assert_int_equal(post(&s, "/api/embed", &out,
                          "{\"model\":\"stories\",\"input\":\"Once upon a time\",\"dimensions\":16}"),
                     200);
    cJSON *d16 = first_vec_of(out, "embeddings");
    free(out);
    assert_int_equal(cJSON_GetArraySize(d16), 16);
    assert_true(fabs(norm_of(d16) - 1.0) < 1e-5);
    double ss = 0;
    for (int i = 0; i < 16; i++) ss += vec_at(full, i)->valuedouble * vec_at(full, i)->valuedouble;
    for (int i = 0; i < 16; i++)
        assert_true(fabs(vec_at(d16, i)->valuedouble - vec_at(full, i)->valuedouble / sqrt(ss)) < 1e-6);
    /* at or above n_embd: unchanged; negative: 400 */
    assert_int_equal(post(&s, "/api/embed", &out,
                          "{\"model\":\"stories\",\"input\":\"Once upon a time\",\"dimensions\":640}"),
                     200);
    cJSON *d640 = first_vec_of(out, "embeddings");
    free(out);
    assert_true(max_diff(d640, full) == 0.0);
    assert_int_equal(post(&s, "/api/embed", &out, "{\"model\":\"stories\",\"input\":\"x\",\"dimensions\":-1}"), 400);
    free(out);

    /* OpenAI: the same vectors, in OpenAI's list; base64 holds the same float32 bytes */
    assert_int_equal(post(&s, "/v1/embeddings", &out,
                          "{\"model\":\"stories\",\"input\":[\"Once upon a time\",\"The cat\"],\"dimensions\":16}"),
                     200);
    cJSON *oj = json_or_fail(out);
    free(out);
    assert_string_equal(jstr(oj, "object"), "list");
    assert_string_equal(jstr(oj, "model"), "stories");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(oj, "data");
    assert_int_equal(cJSON_GetArraySize(data), 2);
    assert_string_equal(jstr(vec_at(data, 0), "object"), "embedding");
    assert_true(jnum(vec_at(data, 1), "index") == 1);
    assert_true(max_diff(cJSON_GetObjectItemCaseSensitive(vec_at(data, 0), "embedding"), d16) == 0.0);
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(oj, "usage");
    assert_true(jnum(usage, "prompt_tokens") > 0 && jnum(usage, "prompt_tokens") == jnum(usage, "total_tokens"));
    cJSON_Delete(oj);
    assert_int_equal(post(&s, "/v1/embeddings", &out,
                          "{\"model\":\"stories\",\"input\":\"Once upon a time\",\"encoding_format\":\"base64\"}"),
                     200);
    oj = json_or_fail(out);
    free(out);
    const char *b64 = jstr(vec_at(cJSON_GetObjectItemCaseSensitive(oj, "data"), 0), "embedding");
    assert_non_null(b64);
    assert_int_equal(strlen(b64), (64 * 4 + 2) / 3 * 4);
    /* decode and compare with the float vector */
    unsigned char bytes[64 * 4 + 3];
    size_t nb = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (const char *c = b64; *c && *c != '='; c++) {
        const char *tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        acc = acc << 6 | (uint32_t)(strchr(tab, *c) - tab);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            bytes[nb++] = (unsigned char)(acc >> bits);
        }
    }
    assert_int_equal(nb, 64 * 4);
    for (int i = 0; i < 64; i++) {
        uint32_t u = (uint32_t)bytes[4 * i] | (uint32_t)bytes[4 * i + 1] << 8 | (uint32_t)bytes[4 * i + 2] << 16 |
                     (uint32_t)bytes[4 * i + 3] << 24;
        float f;
        memcpy(&f, &u, 4);
        assert_true(fabs(f - vec_at(full, i)->valuedouble) < 1e-6);
    }
    cJSON_Delete(oj);
    assert_int_equal(post(&s, "/v1/embeddings", &out, "{\"model\":\"nope\",\"input\":\"x\"}"), 404);
    assert_non_null(strstr(out, "\"message\""));
    free(out);

    /* truncate: a 16-token context; false refuses a longer input, the default keeps 16 tokens */
    static const char long_in[] = "Once upon a time there was a little girl who lived in a village near the forest and "
                                  "she liked to play with her friends every day";
    assert_int_equal(post(&s, "/api/embed", &out,
                          "{\"model\":\"stories\",\"input\":\"%s\",\"truncate\":false,\"options\":{\"num_ctx\":16}}",
                          long_in),
                     400);
    free(out);
    assert_int_equal(
        post(&s, "/api/embed", &out, "{\"model\":\"stories\",\"input\":\"%s\",\"options\":{\"num_ctx\":16}}", long_in),
        200);
    cJSON *tj = json_or_fail(out);
    free(out);
    assert_true(jnum(tj, "prompt_eval_count") == 16);
    cJSON_Delete(tj);

    /* GET /v1/models/{id} */
    assert_int_equal(http_json(&s, "GET", "/v1/models/stories:latest", NULL, &out), 200);
    cJSON *mj = json_or_fail(out);
    free(out);
    assert_string_equal(jstr(mj, "id"), "stories:latest");
    assert_string_equal(jstr(mj, "object"), "model");
    assert_true(jnum(mj, "created") > 1.6e9);
    assert_string_equal(jstr(mj, "owned_by"), "library");
    cJSON_Delete(mj);
    assert_int_equal(http_json(&s, "GET", "/v1/models/nope", NULL, &out), 404);
    mj = json_or_fail(out);
    assert_string_equal(jstr(cJSON_GetObjectItemCaseSensitive(mj, "error"), "type"), "not_found_error");
    cJSON_Delete(mj);
    free(out);

    /* /api/show model_info: general.parameter_count is the sum of the tensors' elements */
    assert_int_equal(post(&s, "/api/show", &out, "{\"model\":\"stories\",\"verbose\":true}"), 200);
    cJSON *sj = json_or_fail(out);
    free(out);
    const cJSON *mi = cJSON_GetObjectItemCaseSensitive(sj, "model_info");
    double sum = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(sj, "tensors")) {
        double e = 1;
        const cJSON *d;
        cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(t, "shape")) e *= d->valuedouble;
        sum += e;
    }
    print_message("  general.parameter_count %.0f, tensors %d\n", jnum(mi, "general.parameter_count"),
                  cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(sj, "tensors")));
    assert_true(sum > 200000 && jnum(mi, "general.parameter_count") == sum);
    assert_null(cJSON_GetObjectItemCaseSensitive(mi, "general.name"));
    assert_string_equal(jstr(mi, "general.architecture"), "llama");
    cJSON_Delete(sj);

    cJSON_Delete(full);
    cJSON_Delete(d16);
    cJSON_Delete(d640);
    server_stop(&s);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_embed, server_teardown),
        cmocka_unit_test_teardown(test_embed_routes, server_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
