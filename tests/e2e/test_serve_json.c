/* `format: "json"` end to end: the real `strata serve`, real HTTP, stories260K (a model that
 * knows nothing of JSON, so whatever JSON comes out is the constraint's doing).
 *
 * /api/generate (not streamed and streamed, greedy and seeded temperature 1), /api/chat, and
 * /v1/chat/completions with response_format {"type": "json_object"}: the text is one JSON
 * object that cJSON parses when generation stopped by itself ("stop"), or a valid prefix of
 * one when num_predict cut it ("length"). A schema object whose type is not "object" allows
 * any JSON value; a format that is neither "json" nor an object is a 400. Without format the
 * same request gives text that is not JSON (the constraint is what changes it). */
#include "serve_util.h"

#include "sampler/json_constraint.h"

/* The output of one request: checks it against the constraint and the done reason. */
static void check_json(const char *text, const char *done_reason, strata_json_top top) {
    assert_non_null(text);
    assert_non_null(done_reason);
    size_t n = strlen(text);
    if (strcmp(done_reason, "stop") == 0) {
        if (strata_json_check(top, text, n) != STRATA_OK) fail_msg("%s: %s", strata_last_error(), text);
        cJSON *j = cJSON_ParseWithOpts(text, NULL, true);
        if (!j) fail_msg("cJSON refuses: %s", text);
        if (top == STRATA_JSON_TOP_OBJECT) assert_true(cJSON_IsObject(j));
        cJSON_Delete(j);
    } else {
        assert_string_equal(done_reason, "length");
        strata_json_state st;
        strata_json_init(&st, top, 0);
        if (!strata_json_feed(&st, text, n)) fail_msg("not a JSON prefix: %s", text);
        assert_true(strchr(text, '{') != NULL); /* the object has begun */
    }
}

#define PROMPT "\"Lily said {\\\"name\\\": \\\"Lily\\\", \\\"age\\\": 3}. Tom said\""

static void test_format_json(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    test_server s;
    server_start(&s, NULL);
    create_model(&s, "stories", "models/stories260K-f32.gguf");
    char *out = NULL;
    static char text[1 << 16];

    /* Without format: the greedy text is not JSON at all. */
    assert_int_equal(post(&s, "/api/generate", &out, "{\"model\":\"stories\",\"prompt\":" PROMPT ",\"stream\":false,"
                                                    "\"options\":{\"temperature\":0,\"num_predict\":40}}"), 200);
    cJSON *j = json_or_fail(out);
    assert_int_not_equal(strata_json_check(STRATA_JSON_TOP_OBJECT, jstr(j, "response"), strlen(jstr(j, "response"))),
                         STRATA_OK);
    cJSON_Delete(j);
    free(out);

    /* /api/generate, not streamed: greedy and seeded. */
    for (int seed = -1; seed < 4; seed++) {
        char opts[128];
        if (seed < 0) snprintf(opts, sizeof opts, "\"temperature\":0,\"num_predict\":200");
        else snprintf(opts, sizeof opts, "\"temperature\":1,\"seed\":%d,\"num_predict\":200", seed);
        assert_int_equal(post(&s, "/api/generate", &out, "{\"model\":\"stories\",\"prompt\":" PROMPT ",\"stream\":false,"
                                                        "\"format\":\"json\",\"options\":{%s}}", opts), 200);
        j = json_or_fail(out);
        check_json(jstr(j, "response"), jstr(j, "done_reason"), STRATA_JSON_TOP_OBJECT);
        cJSON_Delete(j);
        free(out);
    }

    /* Streamed: the pieces put together are the same JSON. */
    assert_int_equal(post(&s, "/api/generate", &out, "{\"model\":\"stories\",\"prompt\":" PROMPT ",\"format\":\"json\","
                                                    "\"options\":{\"temperature\":1,\"seed\":7,\"num_predict\":200}}"), 200);
    j = ndjson_collect(out, "response", NULL, text, sizeof text);
    check_json(text, jstr(j, "done_reason"), STRATA_JSON_TOP_OBJECT);
    cJSON_Delete(j);
    free(out);

    /* /api/chat, streamed and not. */
    assert_int_equal(post(&s, "/api/chat", &out, "{\"model\":\"stories\",\"format\":\"json\",\"messages\":[{\"role\":\"user\","
                                                "\"content\":" PROMPT "}],\"options\":{\"temperature\":0,\"num_predict\":150}}"), 200);
    j = ndjson_collect(out, "message", "content", text, sizeof text);
    check_json(text, jstr(j, "done_reason"), STRATA_JSON_TOP_OBJECT);
    cJSON_Delete(j);
    free(out);
    assert_int_equal(post(&s, "/api/chat", &out, "{\"model\":\"stories\",\"format\":\"json\",\"stream\":false,\"messages\":"
                                                "[{\"role\":\"user\",\"content\":" PROMPT "}],"
                                                "\"options\":{\"temperature\":1,\"seed\":3,\"num_predict\":150}}"), 200);
    j = json_or_fail(out);
    check_json(jstr(cJSON_GetObjectItemCaseSensitive(j, "message"), "content"), jstr(j, "done_reason"),
               STRATA_JSON_TOP_OBJECT);
    cJSON_Delete(j);
    free(out);

    /* OpenAI: response_format json_object. */
    assert_int_equal(post(&s, "/v1/chat/completions", &out, "{\"model\":\"stories\",\"temperature\":0,\"max_tokens\":150,"
                                                           "\"response_format\":{\"type\":\"json_object\"},"
                                                           "\"messages\":[{\"role\":\"user\",\"content\":" PROMPT "}]}"), 200);
    j = json_or_fail(out);
    const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "choices"), 0);
    check_json(jstr(cJSON_GetObjectItemCaseSensitive(c0, "message"), "content"), jstr(c0, "finish_reason"),
               STRATA_JSON_TOP_OBJECT);
    cJSON_Delete(j);
    free(out);

    /* A schema whose type is not "object": any JSON value (the schema itself is not enforced). */
    for (int seed = 1; seed <= 3; seed++) {
        assert_int_equal(post(&s, "/api/generate", &out, "{\"model\":\"stories\",\"prompt\":" PROMPT ",\"stream\":false,"
                                                        "\"format\":{\"type\":\"string\"},"
                                                        "\"options\":{\"temperature\":1,\"seed\":%d,\"num_predict\":200}}",
                              seed), 200);
        j = json_or_fail(out);
        const char *resp = jstr(j, "response"), *why = jstr(j, "done_reason");
        if (strcmp(why, "stop") == 0) {
            assert_int_equal(strata_json_check(STRATA_JSON_TOP_ANY, resp, strlen(resp)), STRATA_OK);
        } else {
            strata_json_state st;
            strata_json_init(&st, STRATA_JSON_TOP_ANY, 0);
            assert_true(strata_json_feed(&st, resp, strlen(resp)));
        }
        cJSON_Delete(j);
        free(out);
    }

    /* A format that is neither "json" nor a schema object. */
    assert_int_equal(post(&s, "/api/generate", &out, "{\"model\":\"stories\",\"prompt\":\"x\",\"format\":\"xml\"}"), 400);
    assert_non_null(strstr(out, "format"));
    free(out);
    server_stop(&s);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_format_json, server_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
