/* `strata serve` end to end: the real binary on a free loopback port, real HTTP (libcurl),
 * a private model store per test. Generation is greedy on stories260K, whose reference
 * continuation of "Once upon a time" is quoted in ../shared/testdata/README.md. */
#include "serve_util.h"

static const char greedy_ref[] =
    ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw a "
    "big, red ball. She wanted to play with it, but it was too high.\nLily's mom said";

#define GREEDY "\"options\":{\"temperature\":0,\"num_predict\":64}"

static void check_final_stats(const cJSON *j, bool with_context) {
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "done")));
    assert_non_null(jstr(j, "done_reason"));
    assert_non_null(jstr(j, "created_at"));
    assert_true(jnum(j, "total_duration") > 0);
    assert_true(jnum(j, "load_duration") >= 0);
    assert_true(jnum(j, "prompt_eval_count") == 5); /* BOS + 4 tokens */
    assert_true(jnum(j, "prompt_eval_duration") > 0);
    assert_true(jnum(j, "eval_count") == 64);
    assert_true(jnum(j, "eval_duration") > 0);
    assert_string_equal(jstr(j, "done_reason"), "length");
    const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(j, "context");
    if (with_context) assert_int_equal(cJSON_GetArraySize(ctx), 5 + 64);
    else assert_null(ctx);
}

static void test_generate_and_chat(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    test_server s;
    server_start(&s, NULL);
    create_model(&s, "stories", "models/stories260K-f32.gguf");
    char *out = NULL;
    char text[4096];

    /* /api/generate, not streamed, raw. */
    assert_int_equal(post(&s, "/api/generate", &out, "{\"model\":\"stories\",\"prompt\":\"Once upon a time\",\"raw\":true,"
                                                    "\"stream\":false," GREEDY "}"), 200);
    cJSON *j = json_or_fail(out);
    assert_string_equal(jstr(j, "response"), greedy_ref);
    assert_string_equal(jstr(j, "model"), "stories");
    check_final_stats(j, true);
    cJSON_Delete(j);
    free(out);

    /* Streamed (the default); the model has no chat template, so the prompt renders as is. */
    assert_int_equal(post(&s, "/api/generate", &out, "{\"model\":\"stories\",\"prompt\":\"Once upon a time\"," GREEDY "}"), 200);
    j = ndjson_collect(out, "response", NULL, text, sizeof text);
    assert_string_equal(text, greedy_ref);
    check_final_stats(j, true);
    assert_true(strchr(out, '\n') != strrchr(out, '\n')); /* more than one line */
    cJSON_Delete(j);
    free(out);

    /* /api/chat, streamed and not. */
    assert_int_equal(post(&s, "/api/chat", &out, "{\"model\":\"stories\",\"messages\":[{\"role\":\"user\",\"content\":"
                                                "\"Once upon a time\"}]," GREEDY "}"), 200);
    j = ndjson_collect(out, "message", "content", text, sizeof text);
    assert_string_equal(text, greedy_ref);
    check_final_stats(j, false);
    cJSON_Delete(j);
    free(out);
    assert_int_equal(post(&s, "/api/chat", &out, "{\"model\":\"stories\",\"stream\":false,\"messages\":[{\"role\":\"user\","
                                                "\"content\":\"Once upon a time\"}]," GREEDY "}"), 200);
    j = json_or_fail(out);
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(j, "message");
    assert_string_equal(jstr(msg, "role"), "assistant");
    assert_string_equal(jstr(msg, "content"), greedy_ref);
    check_final_stats(j, false);
    cJSON_Delete(j);
    free(out);

    /* "context" continues a conversation: the reference continuation of the first 32 tokens. */
    assert_int_equal(post(&s, "/api/generate", &out, "{\"model\":\"stories\",\"prompt\":\"Once upon a time\",\"stream\":false,"
                                                    "\"options\":{\"temperature\":0,\"num_predict\":10}}"), 200);
    j = json_or_fail(out);
    char *ctx = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(j, "context"));
    char first[256];
    snprintf(first, sizeof first, "%s", jstr(j, "response"));
    cJSON_Delete(j);
    free(out);
    assert_int_equal(post(&s, "/api/generate", &out, "{\"model\":\"stories\",\"prompt\":\"\",\"stream\":false,\"context\":%s,"
                                                    "\"raw\":true,\"options\":{\"temperature\":0,\"num_predict\":54}}", ctx), 200);
    free(ctx);
    j = json_or_fail(out);
    /* an empty prompt only loads the model, even with a context (as Ollama) */
    assert_string_equal(jstr(j, "done_reason"), "load");
    cJSON_Delete(j);
    free(out);

    /* OpenAI chat, not streamed and streamed (SSE ending with [DONE]). */
    assert_int_equal(post(&s, "/v1/chat/completions", &out, "{\"model\":\"stories\",\"temperature\":0,\"max_tokens\":64,"
                                                           "\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}]}"), 200);
    j = json_or_fail(out);
    assert_string_equal(jstr(j, "object"), "chat.completion");
    const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "choices"), 0);
    assert_string_equal(jstr(cJSON_GetObjectItemCaseSensitive(c0, "message"), "content"), greedy_ref);
    assert_string_equal(jstr(c0, "finish_reason"), "length");
    assert_true(jnum(cJSON_GetObjectItemCaseSensitive(j, "usage"), "completion_tokens") == 64);
    cJSON_Delete(j);
    free(out);
    assert_int_equal(post(&s, "/v1/chat/completions", &out, "{\"model\":\"stories\",\"temperature\":0,\"max_tokens\":64,\"stream\":true,"
                                                           "\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}]}"), 200);
    text[0] = 0;
    bool done = false;
    for (char *p = out; *p;) {
        assert_true(strncmp(p, "data: ", 6) == 0);
        char *end = strstr(p, "\n\n");
        assert_non_null(end);
        *end = 0;
        if (strcmp(p + 6, "[DONE]") == 0) done = true;
        else {
            cJSON *ev = json_or_fail(p + 6);
            const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(ev, "choices"), 0);
            const char *piece = jstr(cJSON_GetObjectItemCaseSensitive(ch, "delta"), "content");
            if (piece) strncat(text, piece, sizeof text - strlen(text) - 1);
            cJSON_Delete(ev);
        }
        p = end + 2;
    }
    assert_true(done);
    assert_string_equal(text, greedy_ref);
    free(out);
    assert_int_equal(post(&s, "/v1/completions", &out, "{\"model\":\"stories\",\"temperature\":0,\"max_tokens\":64,"
                                                      "\"prompt\":\"Once upon a time\"}"), 200);
    j = json_or_fail(out);
    c0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "choices"), 0);
    assert_string_equal(jstr(c0, "text"), greedy_ref);
    cJSON_Delete(j);
    free(out);

    /* Listing endpoints. */
    assert_int_equal(http_json(&s, "GET", "/api/tags", NULL, &out), 200);
    assert_non_null(strstr(out, "\"name\":\"stories:latest\""));
    free(out);
    assert_int_equal(http_json(&s, "GET", "/v1/models", NULL, &out), 200);
    assert_non_null(strstr(out, "\"id\":\"stories:latest\""));
    free(out);
    assert_int_equal(post(&s, "/api/show", &out, "{\"model\":\"stories\"}"), 200);
    j = json_or_fail(out);
    assert_non_null(jstr(j, "modelfile"));
    assert_non_null(jstr(j, "template"));
    assert_string_equal(jstr(cJSON_GetObjectItemCaseSensitive(j, "details"), "family"), "llama");
    assert_string_equal(jstr(cJSON_GetObjectItemCaseSensitive(j, "model_info"), "general.architecture"), "llama");
    cJSON_Delete(j);
    free(out);
    assert_int_equal(http_json(&s, "GET", "/api/version", NULL, &out), 200);
    assert_non_null(strstr(out, "\"version\""));
    free(out);
    assert_int_equal(http_json(&s, "GET", "/", NULL, &out), 200);
    assert_string_equal(out, "Ollama is running");
    free(out);
    assert_int_equal(http_req(&s, "HEAD", "/", NULL, 0, NULL, 0), 200);
    assert_int_equal(ps_count(&s, NULL, 0), 1);

    /* copy and delete */
    assert_int_equal(post(&s, "/api/copy", NULL, "{\"source\":\"stories\",\"destination\":\"tales:v1\"}"), 200);
    assert_int_equal(post(&s, "/api/generate", &out, "{\"model\":\"tales:v1\",\"prompt\":\"Once upon a time\",\"stream\":false," GREEDY "}"), 200);
    j = json_or_fail(out);
    assert_string_equal(jstr(j, "response"), greedy_ref);
    cJSON_Delete(j);
    free(out);
    assert_int_equal(http_json(&s, "DELETE", "/api/delete", "{\"model\":\"tales:v1\"}", NULL), 200);
    assert_int_equal(http_json(&s, "DELETE", "/api/delete", "{\"model\":\"tales:v1\"}", NULL), 404);
    assert_int_equal(post(&s, "/api/copy", NULL, "{\"source\":\"nothing\",\"destination\":\"x\"}"), 404);
    server_stop(&s);
}

/* A Modelfile's TEMPLATE, SYSTEM and PARAMETERs shape the prompt and the options. */
static void test_modelfile_template_and_params(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    test_server s;
    server_start(&s, NULL);
    char *path = testdata_path("models/stories260K-f32.gguf");
    char *out = NULL;
    /* Legacy "modelfile" string: the template puts the system text before the prompt. */
    long st = post(&s, "/api/create", &out,
                   "{\"model\":\"story-teller\",\"stream\":false,\"modelfile\":\"FROM %s\\nTEMPLATE \\\"{{ .System }} {{ .Prompt }}\\\"\\n"
                   "SYSTEM Once upon\\nPARAMETER temperature 0\\nPARAMETER num_predict 64\\n\"}", path);
    if (st != 200) fail_msg("create: %ld %s", st, out);
    free(out);
    free(path);
    /* "Once upon" + " " + "a time" = the reference prompt; greedy from the Modelfile's PARAMETERs. */
    assert_int_equal(post(&s, "/api/generate", &out, "{\"model\":\"story-teller\",\"prompt\":\"a time\",\"stream\":false}"), 200);
    cJSON *j = json_or_fail(out);
    assert_string_equal(jstr(j, "response"), greedy_ref);
    cJSON_Delete(j);
    free(out);
    /* A stop option from the request cuts the text before "Lily". */
    assert_int_equal(post(&s, "/api/generate", &out, "{\"model\":\"story-teller\",\"prompt\":\"a time\",\"stream\":false,"
                                                    "\"options\":{\"stop\":[\"Lily\"]}}"), 200);
    j = json_or_fail(out);
    assert_string_equal(jstr(j, "response"), ", there was a little girl named ");
    assert_string_equal(jstr(j, "done_reason"), "stop");
    cJSON_Delete(j);
    free(out);
    assert_int_equal(post(&s, "/api/show", &out, "{\"model\":\"story-teller\"}"), 200);
    j = json_or_fail(out);
    assert_string_equal(jstr(j, "system"), "Once upon");
    assert_string_equal(jstr(j, "template"), "{{ .System }} {{ .Prompt }}");
    assert_non_null(strstr(jstr(j, "parameters"), "temperature"));
    cJSON_Delete(j);
    free(out);
    server_stop(&s);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_generate_and_chat, server_teardown),
        cmocka_unit_test_teardown(test_modelfile_template_and_params, server_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
