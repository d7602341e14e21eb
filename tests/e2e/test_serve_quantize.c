/* Quantizing on create, end to end: the real `strata serve` (free loopback port, private
 * store), /api/create with "quantize" and `strata create NAME -f Modelfile --quantize TYPE`.
 *
 * What is checked:
 * - the created model's blob is byte for byte what `strata quantize` writes from the same
 *   input (so the server runs the same quantizer, and the store adopted the file unchanged),
 *   /api/show reports the quantized file type, and greedy generation from it equals greedy
 *   generation from llama.cpp's own Q8_0 file of the same model (our Q8_0 output is
 *   byte-identical to it: tests/e2e/test_quantize.c);
 * - the stream says what it does ("quantizing F32 model to Q8_0") and ends in "success";
 * - FROM an existing (unquantized) model quantizes its blob and keeps its parameters;
 * - an unknown type and an already quantized source are refused with 400 before anything is
 *   written: the model list, the blobs and the absence of temporary files are unchanged. */
#include "serve_util.h"

#include <dirent.h>

#include "store/store.h"

static test_server srv;

static int setup(void **state) {
    (void)state;
    return 0;
}

/* Every name and digest /api/tags lists, one "name digest" line each (malloc'd). */
static char *tags_snapshot(void) {
    char *out = NULL;
    assert_int_equal(http_json(&srv, "GET", "/api/tags", NULL, &out), 200);
    cJSON *j = json_or_fail(out);
    free(out);
    size_t cap = 8192, len = 0;
    char *snap = calloc(1, cap);
    const cJSON *models = cJSON_GetObjectItemCaseSensitive(j, "models");
    assert_true(cJSON_IsArray(models));
    for (const cJSON *m = models->child; m; m = m->next) {
        const char *name = jstr(m, "name"), *digest = jstr(m, "digest");
        assert_true(name && digest);
        len += (size_t)snprintf(snap + len, cap - len, "%s %s\n", name ? name : "", digest ? digest : "");
    }
    assert_true(len < cap);
    cJSON_Delete(j);
    return snap;
}

/* The blob folder's entries, sorted, one per line (malloc'd); fails on a temporary file. */
static char *blobs_snapshot(void) {
    char *dir = tmpdir_path(srv.models, "blobs");
    struct dirent **list = NULL;
    int n = scandir(dir, &list, NULL, alphasort);
    assert_true(n >= 0);
    size_t cap = 16384, len = 0;
    char *snap = calloc(1, cap);
    for (int i = 0; i < n; i++) {
        const char *name = list[i]->d_name;
        if (strcmp(name, ".") != 0 && strcmp(name, "..") != 0) {
            if (strncmp(name, ".tmp-", 5) == 0) fail_msg("temporary file left in the blob folder: %s", name);
            len += (size_t)snprintf(snap + len, cap - len, "%s\n", name);
        }
        free(list[i]);
    }
    free(list);
    free(dir);
    assert_true(len < cap);
    return snap;
}

/* The model blob of `name` and its size (read with the store's own reader). */
static void *model_blob(const char *name, size_t *size, char *digest) {
    strata_store *store;
    strata_model_info *info;
    assert_int_equal(strata_store_open(srv.models, &store), STRATA_OK);
    if (strata_store_show(store, name, &info) != STRATA_OK) fail_msg("show %s: %s", name, strata_last_error());
    void *bytes = testdata_read_file(info->model_path, size);
    assert_non_null(bytes);
    if (digest) snprintf(digest, STRATA_DIGEST_SIZE, "%s", info->model_digest);
    strata_model_info_free(info);
    strata_store_close(store);
    return bytes;
}

static char *show_quantization(const char *name) {
    char *out = NULL;
    long st = post(&srv, "/api/show", &out, "{\"model\":\"%s\"}", name);
    if (st != 200) fail_msg("show %s: %ld %s", name, st, out);
    cJSON *j = json_or_fail(out);
    free(out);
    const char *q = jstr(cJSON_GetObjectItemCaseSensitive(j, "details"), "quantization_level");
    assert_non_null(q);
    char *r = strdup(q);
    cJSON_Delete(j);
    return r;
}

/* Greedy, not streamed: the response text (malloc'd). */
static char *generate(const char *name) {
    char *out = NULL;
    long st = post(&srv, "/api/generate", &out,
                   "{\"model\":\"%s\",\"prompt\":\"Once upon a time\",\"stream\":false,"
                   "\"options\":{\"temperature\":0,\"num_predict\":24}}",
                   name);
    if (st != 200) fail_msg("generate %s: %ld %s", name, st, out);
    cJSON *j = json_or_fail(out);
    free(out);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "done")));
    assert_true(jnum(j, "eval_count") > 0);
    char *text = strdup(jstr(j, "response"));
    cJSON_Delete(j);
    return text;
}

/* Runs the strata binary against the test's server; returns the result. */
static proc_result run_strata(char *const *args) {
    char host[64];
    snprintf(host, sizeof host, "127.0.0.1:%d", srv.port);
    setenv("STRATA_HOST", host, 1);
    setenv("STRATA_MODELS", srv.models, 1);
    char *argv[16];
    int n = 0;
    argv[n++] = STRATA_BINARY;
    for (; *args && n < 15; args++) argv[n++] = *args;
    argv[n] = NULL;
    proc_result r;
    assert_int_equal(proc_run(argv, &r), 0);
    return r;
}

static void test_create_quantized(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    server_start(&srv, NULL);
    char *f32 = testdata_path("models/micro-llama-F32.gguf");
    char *q8ref = testdata_path("models/micro-llama-Q8_0.gguf");

    /* /api/create, streamed (the default). */
    char *out = NULL;
    long st = post(&srv, "/api/create", &out, "{\"model\":\"mq\",\"from\":\"%s\",\"quantize\":\"q8_0\"}", f32);
    if (st != 200) fail_msg("create: %ld %s", st, out);
    assert_non_null(strstr(out, "{\"status\":\"quantizing F32 model to Q8_0\"}\n"));
    assert_non_null(strstr(out, "\"completed\":"));
    const char *last = strstr(out, "{\"status\":\"success\"}\n");
    assert_non_null(last);
    assert_string_equal(last, "{\"status\":\"success\"}\n");
    free(out);

    char *q = show_quantization("mq");
    assert_string_equal(q, "Q8_0");
    free(q);

    /* The blob is what `strata quantize` writes from the same file. */
    char *cli_out = tmpdir_path(srv.dir, "cli-Q8_0.gguf");
    char *qargs[] = {"quantize", f32, cli_out, "Q8_0", "--quiet", NULL};
    proc_result r = run_strata(qargs);
    if (r.exit_code != 0) fail_msg("strata quantize: %s", r.err);
    proc_result_free(&r);
    size_t want_n = 0, got_n = 0;
    void *want = testdata_read_file(cli_out, &want_n);
    assert_non_null(want);
    char digest_api[STRATA_DIGEST_SIZE], digest_cli[STRATA_DIGEST_SIZE];
    void *got = model_blob("mq", &got_n, digest_api);
    assert_int_equal(got_n, want_n);
    assert_memory_equal(got, want, want_n);
    free(got);

    /* Generation works, and (the bytes being llama.cpp's Q8_0 file's) matches a model made
     * from that file. */
    create_model(&srv, "q8ref", "models/micro-llama-Q8_0.gguf");
    char *text = generate("mq"), *ref = generate("q8ref");
    assert_true(strlen(text) > 0);
    assert_string_equal(text, ref);
    free(text);
    free(ref);

    /* `strata create NAME -f Modelfile --quantize Q8_0`. */
    char *mf = tmpdir_path(srv.dir, "Modelfile");
    char mf_text[4600];
    int mf_len = snprintf(mf_text, sizeof mf_text, "FROM %s\nPARAMETER temperature 0\n", f32);
    assert_int_equal(tmpdir_write(mf, mf_text, (size_t)mf_len), 0);
    char *cargs[] = {"create", "mq-cli", "-f", mf, "--quantize", "Q8_0", NULL};
    r = run_strata(cargs);
    if (r.exit_code != 0) fail_msg("strata create: rc %d [%s] [%s]", r.exit_code, r.out, r.err);
    proc_result_free(&r);
    q = show_quantization("mq-cli");
    assert_string_equal(q, "Q8_0");
    free(q);
    got = model_blob("mq-cli", &got_n, digest_cli);
    assert_int_equal(got_n, want_n);
    assert_memory_equal(got, want, want_n);
    assert_string_equal(digest_cli, digest_api);
    free(got);
    text = generate("mq-cli");
    assert_true(strlen(text) > 0);
    free(text);

    /* FROM an unquantized model in the store: its blob is quantized, its parameters kept. */
    st = post(&srv, "/api/create", &out,
              "{\"model\":\"base\",\"from\":\"%s\",\"parameters\":{\"num_ctx\":128},\"stream\":false}", f32);
    if (st != 200) fail_msg("create base: %ld %s", st, out);
    free(out);
    st = post(&srv, "/api/create", &out, "{\"model\":\"derived\",\"from\":\"base\",\"quantize\":\"Q8_0\",\"stream\":false}");
    if (st != 200) fail_msg("create derived: %ld %s", st, out);
    free(out);
    q = show_quantization("base");
    assert_string_equal(q, "F32");
    free(q);
    q = show_quantization("derived");
    assert_string_equal(q, "Q8_0");
    free(q);
    char digest_derived[STRATA_DIGEST_SIZE];
    free(model_blob("derived", &got_n, digest_derived));
    assert_string_equal(digest_derived, digest_api);
    st = post(&srv, "/api/show", &out, "{\"model\":\"derived\"}");
    assert_int_equal(st, 200);
    assert_non_null(strstr(out, "num_ctx"));
    free(out);

    free(want);
    free(mf);
    free(cli_out);
    free(f32);
    free(q8ref);
    server_stop(&srv);
}

static void test_refusals_leave_store_unchanged(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    server_start(&srv, NULL);
    char *f32 = testdata_path("models/micro-llama-F32.gguf");
    char *q8 = testdata_path("models/micro-llama-Q8_0.gguf");
    create_model(&srv, "plain", "models/micro-llama-F32.gguf");
    create_model(&srv, "already", "models/micro-llama-Q8_0.gguf");
    char *tags = tags_snapshot(), *blobs = blobs_snapshot();

    /* Unknown type: 400 naming the supported types. */
    char *out = NULL;
    long st = post(&srv, "/api/create", &out, "{\"model\":\"x\",\"from\":\"%s\",\"quantize\":\"Q9_9\"}", f32);
    assert_int_equal(st, 400);
    cJSON *j = json_or_fail(out);
    const char *err = jstr(j, "error");
    assert_non_null(err);
    assert_non_null(strstr(err, "Q9_9"));
    assert_non_null(strstr(err, "Q4_K_M"));
    assert_non_null(strstr(err, "Q8_0"));
    cJSON_Delete(j);
    free(out);

    /* Already quantized: a file, then a model in the store (replacing an existing name). */
    st = post(&srv, "/api/create", &out, "{\"model\":\"x\",\"from\":\"%s\",\"quantize\":\"Q4_K_M\"}", q8);
    assert_int_equal(st, 400);
    assert_non_null(strstr(out, "already quantized"));
    free(out);
    st = post(&srv, "/api/create", &out, "{\"model\":\"plain\",\"from\":\"already\",\"quantize\":\"Q4_0\"}");
    assert_int_equal(st, 400);
    assert_non_null(strstr(out, "already quantized"));
    free(out);

    /* The client reports the server's refusal and fails. */
    char *mf = tmpdir_path(srv.dir, "Modelfile");
    char mf_text[4600];
    int mf_len = snprintf(mf_text, sizeof mf_text, "FROM %s\n", q8);
    assert_int_equal(tmpdir_write(mf, mf_text, (size_t)mf_len), 0);
    char *cargs[] = {"create", "y", "-f", mf, "--quantize", "Q8_0", NULL};
    proc_result r = run_strata(cargs);
    assert_int_not_equal(r.exit_code, 0);
    assert_non_null(strstr(r.err, "already quantized"));
    proc_result_free(&r);
    char *cargs2[] = {"create", "y", "-f", mf, "--quantize", "Q3_X", NULL};
    r = run_strata(cargs2);
    assert_int_not_equal(r.exit_code, 0);
    assert_non_null(strstr(r.err, "unsupported quantization type Q3_X"));
    proc_result_free(&r);

    char *tags2 = tags_snapshot(), *blobs2 = blobs_snapshot();
    assert_string_equal(tags2, tags);
    assert_string_equal(blobs2, blobs);
    char *q = show_quantization("plain");
    assert_string_equal(q, "F32");
    free(q);

    free(tags);
    free(tags2);
    free(blobs);
    free(blobs2);
    free(mf);
    free(f32);
    free(q8);
    server_stop(&srv);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_quantized, setup, server_teardown),
        cmocka_unit_test_setup_teardown(test_refusals_leave_store_unchanged, setup, server_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
