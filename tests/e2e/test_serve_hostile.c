/* `strata serve` against hostile or unlucky clients (issue 19), end to end over real HTTP on
 * 127.0.0.1: each test is the reproduction of one defect and fails on the code before its
 * fix. Waits are bounded (a hang becomes a failure); nothing asserts on speed. */
#include <sys/stat.h>

#include "hostile_util.h"
#include "store/sha256.h"
#include "store/store.h"

/* 1. /api/pull with a name that is not a URL: the error quotes the name (it was read from the
 * freed body: heap-use-after-free under ASan, freed bytes in release). */
static void test_pull_error_after_free(void **state) {
    (void)state;
    test_server s;
    server_start(&s, NULL);
    for (int i = 0; i < 3; i++) {
        char *out = NULL;
        assert_int_equal(post(&s, "/api/pull", &out, "{\"model\":\"llama3-%d-a-longer-name-to-fill-the-chunk\"}", i), 400);
        char want[64];
        snprintf(want, sizeof want, "'llama3-%d-a-longer-name-to-fill-the-chunk'", i);
        if (!strstr(out, want)) fail_msg("pull error does not quote the name: %s", out);
        free(out);
    }
    server_stop(&s);
}

/* 2. A pull in progress keeps its temporary file through other requests (which open the
 * store), and a blob uploaded for a create still to come survives a delete. */
static void test_store_keeps_inflight_files(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    test_server s;
    server_start(&s, NULL);
    create_model(&s, "stories", STORIES);
    create_model(&s, "victim", STORIES);
    /* A pull from an origin that sends a little, then waits. */
    static char part[4096] = "GGUF";
    origin o;
    origin_start(&o, part, sizeof part, 10u << 20, true);
    char body[256];
    snprintf(body, sizeof body, "{\"model\":\"slow\",\"url\":\"http://127.0.0.1:%d/slow.gguf\"}", o.port);
    bg_req pull;
    bg_start(&pull, &s, "/api/pull", body);
    int temps = 0;
    for (int i = 0; i < 1000 && !(atomic_load(&o.served) && (temps = blob_files(&s, ".tmp-")) > 0); i++) sleep_ms(10);
    assert_true(temps > 0);
    /* Other requests: each opens the store; a delete collects garbage. */
    assert_int_equal(http_json(&s, "GET", "/api/tags", NULL, NULL), 200);
    assert_int_equal(http_json(&s, "DELETE", "/api/delete", "{\"model\":\"victim\"}", NULL), 200);
    assert_int_equal(http_json(&s, "GET", "/api/tags", NULL, NULL), 200);
    assert_int_equal(blob_files(&s, ".tmp-"), temps);
    origin_stop(&o);
    bg_join(&pull);

    /* Upload a blob, delete an unrelated model, the blob is still there. */
    const char *bytes = "a blob uploaded for a create still to come";
    char digest[STRATA_DIGEST_SIZE], path[128];
    assert_int_equal(strata_sha256_digest(bytes, strlen(bytes), digest), STRATA_OK);
    snprintf(path, sizeof path, "/api/blobs/%s", digest);
    assert_int_equal(http_req(&s, "POST", path, bytes, strlen(bytes), NULL, 0), 201);
    create_model(&s, "other", STORIES);
    assert_int_equal(http_json(&s, "DELETE", "/api/delete", "{\"model\":\"other\"}", NULL), 200);
    assert_int_equal(http_json(&s, "HEAD", path, NULL, NULL), 200);
    server_stop(&s);
}

/* 3. A non-streamed request whose client leaves is cancelled (the next request is served), and
 * `strata stop` unloads a model that is generating. */
static void test_disconnect_and_stop(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    test_server s;
    server_start(&s, NULL);
    create_model(&s, "stories", STORIES);
    const char *endless = "{\"model\":\"stories\",\"prompt\":\"Once upon a time\",\"stream\":false,"
                          "\"options\":{\"num_predict\":2000000000,\"num_ctx\":64,\"temperature\":0}}";
    assert_int_equal(http_req_ex(&s, "POST", "/api/generate", endless, NULL, 1500, NULL), 0); /* client gives up */
    assert_true(log_wait(&s, "generation cancelled for stories:latest", 60));
    assert_true(log_wait(&s, "(client disconnected)", 1));
    char *out = NULL;
    assert_int_equal(post(&s, "/api/generate", &out,
                          "{\"model\":\"stories\",\"prompt\":\"Once\",\"stream\":false,\"options\":{\"num_predict\":4,"
                          "\"num_ctx\":64}}"),
                     200);
    free(out);

    /* stop while a client waits for a long generation: the model is gone when stop returns. */
    bg_req gen;
    bg_start(&gen, &s, "/api/generate", endless);
    for (int i = 0; i < 3000 && ps_count(&s, NULL, 0) == 0; i++) sleep_ms(10);
    sleep_ms(200);
    char host[64];
    snprintf(host, sizeof host, "127.0.0.1:%d", s.port);
    setenv("STRATA_HOST", host, 1);
    char *argv[] = {STRATA_BINARY, "stop", "stories", NULL};
    proc_result r;
    assert_int_equal(proc_run(argv, &r), 0);
    if (r.exit_code != 0) fail_msg("stop: %s", r.err);
    proc_result_free(&r);
    assert_int_equal(ps_count(&s, NULL, 0), 0);
    bg_join(&gen);
    assert_int_not_equal(gen.status, 200); /* its generation was cancelled */
    server_stop(&s);
}

/* 4. num_predict absent, -1 or -2 with a model that never ends its text (stories260K at
 * temperature 0 in a 64-token context loops forever): bounded, done_reason "length". */
static void test_num_predict_bounded(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    test_server s;
    server_start(&s, NULL);
    create_model(&s, "stories", STORIES);
    const char *variants[] = {"", ",\"num_predict\":-1", ",\"num_predict\":-7"};
    for (size_t i = 0; i < 3; i++) {
        char body[512], *out = NULL;
        snprintf(body, sizeof body,
                 "{\"model\":\"stories\",\"prompt\":\"Once upon a time\",\"stream\":false,\"options\":{\"num_ctx\":64,"
                 "\"temperature\":0%s}}",
                 variants[i]);
        assert_int_equal(http_req_ex(&s, "POST", "/api/generate", body, NULL, 120000, &out), 200);
        cJSON *j = json_or_fail(out);
        assert_string_equal(jstr(j, "done_reason"), "length");
        assert_int_equal((int)jnum(j, "eval_count"), 640); /* 10 x num_ctx */
        cJSON_Delete(j);
        free(out);
    }
    char *out = NULL;
    assert_int_equal(http_req_ex(&s, "POST", "/api/generate",
                                 "{\"model\":\"stories\",\"prompt\":\"Once upon a time\",\"stream\":false,"
                                 "\"options\":{\"num_ctx\":64,\"temperature\":0,\"num_predict\":-2}}",
                                 NULL, 120000, &out),
                     200);
    cJSON *j = json_or_fail(out);
    assert_string_equal(jstr(j, "done_reason"), "length");
    assert_int_equal((int)jnum(j, "eval_count"), 64 - (int)jnum(j, "prompt_eval_count")); /* fills the context */
    cJSON_Delete(j);
    free(out);
    /* The OpenAI client's default call (no max_tokens). */
    assert_int_equal(http_req_ex(&s, "POST", "/v1/chat/completions",
                                 "{\"model\":\"stories\",\"messages\":[{\"role\":\"user\",\"content\":\"Once\"}],"
                                 "\"temperature\":0}",
                                 NULL, 120000, &out),
                     200);
    j = json_or_fail(out);
    const cJSON *choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "choices"), 0);
    const char *finish = jstr(choice, "finish_reason");
    assert_non_null(finish);
    if (strcmp(finish, "length") == 0) {
        const cJSON *usage = cJSON_GetObjectItemCaseSensitive(j, "usage");
        assert_true(jnum(usage, "completion_tokens") <= 10.0 * 4096);
    }
    cJSON_Delete(j);
    free(out);
    server_stop(&s);
}

/* 6. FROM a FIFO, a folder or a device: 400 at once, and the store is not held (a delete
 * goes through). */
static void test_from_special_files(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    test_server s;
    server_start(&s, NULL);
    create_model(&s, "stories", STORIES);
    char *fifo = tmpdir_path(s.dir, "fifo.gguf");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    const char *froms[] = {fifo, s.dir, "/dev/zero"};
    const char *kinds[] = {"FIFO", "directory", "device"};
    for (int i = 0; i < 3; i++) {
        for (int stream = 0; stream < 2; stream++) {
            char body[1024], *out = NULL;
            snprintf(body, sizeof body, "{\"model\":\"x\",\"from\":\"%s\",\"stream\":%s}", froms[i], stream ? "true" : "false");
            long st = http_req_ex(&s, "POST", "/api/create", body, NULL, 20000, &out);
            if (st != 400 || !strstr(out, kinds[i])) fail_msg("FROM %s: %ld %s", froms[i], st, out);
            free(out);
        }
    }
    assert_int_equal(http_req_ex(&s, "DELETE", "/api/delete", "{\"model\":\"stories\"}", NULL, 20000, NULL), 200);
    free(fifo);
    server_stop(&s);
}

/* 7. keep_alive beyond what an int64 of nanoseconds holds: forever (not an overflow that
 * unloads at once or aborts under UBSan). */
static void test_keep_alive_overflow(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    test_server s;
    server_start(&s, NULL);
    create_model(&s, "stories", STORIES);
    const char *values[] = {"1e10", "1e300", "\"1000000000h\"", "\"9999999999\""};
    for (int i = 0; i < 4; i++) {
        char *out = NULL;
        assert_int_equal(post(&s, "/api/generate", &out,
                              "{\"model\":\"stories\",\"prompt\":\"Once\",\"stream\":false,\"keep_alive\":%s,"
                              "\"options\":{\"num_predict\":2}}",
                              values[i]),
                         200);
        free(out);
        char *ps = NULL;
        assert_int_equal(http_json(&s, "GET", "/api/ps", NULL, &ps), 200);
        cJSON *j = json_or_fail(ps);
        const cJSON *m = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "models"), 0);
        if (!m) fail_msg("keep_alive %s: the model was unloaded at once", values[i]);
        assert_true(atoi(jstr(m, "expires_at")) >= 2100); /* "forever" prints a century ahead */
        cJSON_Delete(j);
        free(ps);
    }
    server_stop(&s);
}

/* 9. A random model at temperature 1 emits tokens that split UTF-8 characters: every NDJSON
 * line and SSE event, and the non-streamed text, are well-formed UTF-8. */
static bool utf8_ok(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t k = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        if (!k || i + k > n) return false;
        for (size_t m = 1; m < k; m++)
            if ((s[i + m] & 0xC0) != 0x80) return false;
        if (k == 3 && ((c == 0xE0 && s[i + 1] < 0xA0) || (c == 0xED && s[i + 1] > 0x9F))) return false;
        if (k == 4 && ((c == 0xF0 && s[i + 1] < 0x90) || (c == 0xF4 && s[i + 1] > 0x8F))) return false;
        i += k;
    }
    return true;
}

static void test_replies_are_utf8(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    test_server s;
    server_start(&s, NULL);
    create_model(&s, "rnd", "models/micro-llama-F32.gguf");
    const char *paths[] = {"/api/generate", "/api/generate", "/v1/completions"};
    const char *streams[] = {"true", "false", "true"};
    for (int i = 0; i < 3; i++) {
        for (int seed = 1; seed <= 3; seed++) {
            char body[512], *out = NULL;
            snprintf(body, sizeof body,
                     "{\"model\":\"rnd\",\"prompt\":\"Once\",\"stream\":%s,\"seed\":%d,\"temperature\":1,\"max_tokens\":120,"
                     "\"options\":{\"temperature\":1,\"seed\":%d,\"num_predict\":120}}",
                     streams[i], seed, seed);
            assert_int_equal(http_req_ex(&s, "POST", paths[i], body, NULL, 60000, &out), 200);
            if (!utf8_ok((const unsigned char *)out, strlen(out))) fail_msg("%s seed %d: not UTF-8: %s", paths[i], seed, out);
            free(out);
        }
    }
    server_stop(&s);
}

/* 10. Errors say what is wrong without the file's bytes or the server's paths. */
static void test_errors_do_not_leak(void **state) {
    (void)state;
    test_server s;
    server_start(&s, NULL);
    char *secret = tmpdir_path(s.dir, "secret.gguf");
    assert_int_equal(tmpdir_write(secret, "ROOT:x:0:0:TOPSECRET\n", 21), 0);
    char *out = NULL;
    long st = post(&s, "/api/create", &out, "{\"model\":\"x\",\"from\":\"%s\",\"stream\":false}", secret);
    assert_int_equal(st, 400);
    if (strstr(out, "ROOT") || strstr(out, "52 4f") || strstr(out, "TOPSECRET")) fail_msg("leaks the file: %s", out);
    assert_non_null(strstr(out, "not a GGUF file"));
    free(out);
    /* A pull of something that is not a GGUF: no store path, no temporary file name. */
    static const char junk[] = "this is not a model at all, just some text served by an origin";
    origin o;
    origin_start(&o, junk, sizeof junk - 1, sizeof junk - 1, false);
    st = post(&s, "/api/pull", &out, "{\"model\":\"junk\",\"url\":\"http://127.0.0.1:%d/junk.gguf\",\"stream\":false}", o.port);
    origin_stop(&o);
    assert_int_equal(st, 400);
    if (strstr(out, s.models) || strstr(out, s.dir) || strstr(out, ".tmp-") || strstr(out, "blobs/"))
        fail_msg("leaks a server path: %s", out);
    free(out);
    free(secret);
    server_stop(&s);
}

/* 12. Wrong types are 400 (not ignored), num_ctx 2^40 is "too large", a NUL in a name is refused. */
static void test_wrong_types(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    test_server s;
    server_start(&s, NULL);
    create_model(&s, "stories", STORIES);
    create_model(&s, "keep", STORIES);
    struct {
        const char *path, *body, *needle;
    } cases[] = {
        {"/api/generate", "{\"model\":\"stories\",\"prompt\":\"hi\",\"system\":123}", "system"},
        {"/api/generate", "{\"model\":\"stories\",\"prompt\":\"hi\",\"raw\":\"str\"}", "raw"},
        {"/api/generate", "{\"model\":\"stories\",\"prompt\":\"hi\",\"images\":123}", "images"},
        {"/api/generate", "{\"model\":\"stories\",\"prompt\":\"hi\",\"template\":[1]}", "template"},
        {"/api/chat", "{\"model\":\"stories\",\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"images\":1}]}", "images"},
        {"/api/embed", "{\"model\":\"stories\",\"input\":\"hi\",\"truncate\":\"str\"}", "truncate"},
        {"/v1/chat/completions", "{\"model\":\"stories\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":\"str\"}",
         "max_tokens"},
        {"/v1/completions", "{\"model\":\"stories\",\"prompt\":\"x\",\"temperature\":\"hot\"}", "temperature"},
        {"/api/generate", "{\"model\":\"stories\",\"prompt\":\"hi\",\"options\":{\"num_ctx\":1099511627776}}", "too large"},
        {"/api/generate", "{\"model\":\"stories\\u0000evil\",\"prompt\":\"hi\"}", "NUL"},
        {"/api/show", "{\"model\":\"keep\\u0000x\"}", "NUL"},
        {"/api/create", "{\"model\":\"x\",\"from\":\"stories\",\"system\":5}", "system"},
        {"/api/pull", "{\"model\":5}", "model"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = NULL;
        /* Bounded: before the fix some of these were accepted and generated without end. */
        long st = http_req_ex(&s, "POST", cases[i].path, cases[i].body, NULL, 20000, &out);
        if (st != 400 || !strstr(out, cases[i].needle)) fail_msg("case %zu %s: %ld %s", i, cases[i].body, st, out);
        free(out);
    }
    /* A delete of "keep\0x" must not delete "keep". */
    char *out = NULL;
    assert_int_equal(http_req_ex(&s, "DELETE", "/api/delete", "{\"model\":\"keep\\u0000x\"}", NULL, 20000, &out), 400);
    free(out);
    assert_int_equal(http_json(&s, "POST", "/api/show", "{\"model\":\"keep\"}", NULL), 200);
    server_stop(&s);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_pull_error_after_free, server_teardown),
        cmocka_unit_test_teardown(test_store_keeps_inflight_files, server_teardown),
        cmocka_unit_test_teardown(test_disconnect_and_stop, server_teardown),
        cmocka_unit_test_teardown(test_num_predict_bounded, server_teardown),
        cmocka_unit_test_teardown(test_from_special_files, server_teardown),
        cmocka_unit_test_teardown(test_keep_alive_overflow, server_teardown),
        cmocka_unit_test_teardown(test_replies_are_utf8, server_teardown),
        cmocka_unit_test_teardown(test_errors_do_not_leak, server_teardown),
        cmocka_unit_test_teardown(test_wrong_types, server_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
