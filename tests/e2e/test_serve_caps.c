/* Capabilities end to end: the real `strata serve`, real HTTP.
 *
 * /api/show lists what the model and its template can do: stories260K (no chat template)
 * is "completion" only; the same weights with a template that writes .Tools, .Suffix and a
 * .Thinking between <think> tags inside the range over .Messages add "tools", "insert" and
 * "thinking"; a copy of the GGUF with llama.pooling_type is an embedding model ("embedding",
 * no "completion").
 *
 * Requests that need a missing capability get 400 with Ollama's wording, on both APIs:
 * think -> '"stories" does not support thinking'; tools -> 'stories:latest does not support
 * tools'; suffix -> '... does not support insert'; generate/chat on the embedding model ->
 * '"emb" does not support generate' / 'chat'; images (and OpenAI image_url parts) ->
 * '"stories" does not support images'. The capable model accepts the same requests. */
#include "serve_util.h"

#include "gguf/gguf.h"
#include "fixture_models.h"

#define MODEL "models/stories260K-f32.gguf"

static const char *const capable_template =
    "{{- if .Tools }}TOOLS {{ json .Tools }}\n{{ end }}"
    "{{- range $i, $m := .Messages }}"
    "{{- if eq .Role \"user\" }}USER: {{ .Content }}\n"
    "{{- else if eq .Role \"assistant\" }}ASSISTANT: {{ if .Thinking }}<think>{{ .Thinking }}</think>{{ end }}"
    "{{ .Content }}\n{{ end }}"
    "{{- end }}ASSISTANT: {{ if .Suffix }}<fim>{{ .Suffix }}{{ end }}";

static long post_obj(const test_server *s, const char *path, cJSON *body, char **out) {
    char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    long st = http_json(s, "POST", path, text, out);
    free(text);
    return st;
}

/* The capabilities /api/show lists, joined by spaces. */
static void show_caps(const test_server *s, const char *model, char *buf, size_t cap) {
    char *out = NULL;
    long st = post(s, "/api/show", &out, "{\"model\":\"%s\"}", model);
    if (st != 200) fail_msg("show %s: %ld %s", model, st, out);
    cJSON *j = json_or_fail(out);
    buf[0] = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(j, "capabilities")) {
        if (buf[0]) strncat(buf, " ", cap - strlen(buf) - 1);
        strncat(buf, c->valuestring, cap - strlen(buf) - 1);
    }
    print_message("  %s: %s\n", model, buf);
    cJSON_Delete(j);
    free(out);
}

/* Expects status and, for a 400, the error text (Ollama's "error" string, or OpenAI's
 * error.message). */
static void expect(long st, char *out, long want, const char *msg) {
    if (st != want) fail_msg("want %ld, got %ld: %s", want, st, out);
    if (msg) {
        cJSON *j = json_or_fail(out);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
        const char *text = cJSON_IsString(e) ? e->valuestring : jstr(e, "message");
        if (!text || strcmp(text, msg) != 0) fail_msg("want error '%s', got %s", msg, out);
        cJSON_Delete(j);
    }
    free(out);
}

/* A copy of the stories GGUF with llama.pooling_type: what Ollama takes for an embedding model. */
static char *write_embedding_gguf(const char *dir) {
    char *src = testdata_path(MODEL);
    gguf_file *f = NULL;
    assert_int_equal(gguf_open(src, GGUF_OPEN_DEFAULT, &f), STRATA_OK);
    gguf_writer *w = gguf_writer_new();
    for (int64_t i = 0; i < gguf_kv_count(f); i++) assert_int_equal(gguf_writer_copy_kv(w, f, i), STRATA_OK);
    assert_int_equal(gguf_writer_add_u32(w, "llama.pooling_type", 1), STRATA_OK);
    for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        assert_int_equal(gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data), STRATA_OK);
    }
    char *path = tmpdir_path(dir, "emb.gguf");
    assert_int_equal(gguf_writer_write_file(w, path), STRATA_OK);
    gguf_writer_free(w);
    gguf_close(f);
    free(src);
    return path;
}

/* call writes its body into `out`, read only once the call has returned */
#define EXPECT(call, want, msg)                                                                                       \
    do {                                                                                                             \
        long st_ = (call);                                                                                           \
        expect(st_, out, want, msg);                                                                                 \
        out = NULL;                                                                                                  \
    } while (0)

static void test_capabilities(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    test_server s;
    server_start(&s, NULL);
    create_model(&s, "stories", MODEL);

    /* the same weights with a template that can render tools, a suffix and a reasoning trace */
    char *path = testdata_path(MODEL);
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "model", "capable");
    cJSON_AddStringToObject(b, "from", path);
    cJSON_AddStringToObject(b, "template", capable_template);
    cJSON_AddBoolToObject(b, "stream", false);
    char *out = NULL;
    EXPECT(post_obj(&s, "/api/create", b, &out), 200, NULL);
    free(path);

    char *dir = tmpdir_make();
    char *emb = write_embedding_gguf(dir);
    out = NULL;
    EXPECT(post(&s, "/api/create", &out, "{\"model\":\"emb\",\"from\":\"%s\",\"stream\":false}", emb), 200, NULL);

    char caps[256];
    show_caps(&s, "stories", caps, sizeof caps);
    assert_string_equal(caps, "completion");
    show_caps(&s, "capable", caps, sizeof caps);
    assert_string_equal(caps, "completion tools insert thinking");
    show_caps(&s, "emb", caps, sizeof caps);
    assert_string_equal(caps, "embedding");

    /* thinking */
    EXPECT(post(&s, "/api/generate", &out, "{\"model\":\"stories\",\"prompt\":\"x\",\"think\":true,\"stream\":false}"), 400,
           "\"stories\" does not support thinking");
    EXPECT(post(&s, "/api/chat", &out,
                "{\"model\":\"stories\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"think\":\"high\"}"),
           400, "\"stories\" does not support thinking");
    EXPECT(post(&s, "/api/generate", &out, "{\"model\":\"stories\",\"prompt\":\"x\",\"think\":\"very\"}"), 400,
           "invalid think value: \"very\" (must be \"high\", \"medium\", \"low\", true, or false)");
    /* think: false asks nothing of the model */
    EXPECT(post(&s, "/api/generate", &out,
                "{\"model\":\"stories\",\"prompt\":\"x\",\"think\":false,\"stream\":false,\"options\":{\"num_predict\":2}}"),
           200, NULL);

    /* tools */
    static const char tools[] = "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{}}}]";
    EXPECT(post(&s, "/api/chat", &out,
                "{\"model\":\"stories\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":%s}", tools),
           400, "stories:latest does not support tools");
    EXPECT(post(&s, "/v1/chat/completions", &out,
                "{\"model\":\"stories\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":%s}", tools),
           400, "stories:latest does not support tools");
    EXPECT(post(&s, "/api/chat", &out,
                "{\"model\":\"capable\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":%s,"
                "\"stream\":false,\"options\":{\"num_predict\":2}}",
                tools),
           200, NULL);

    /* insert */
    EXPECT(post(&s, "/api/generate", &out, "{\"model\":\"stories\",\"prompt\":\"x\",\"suffix\":\"y\"}"), 400,
           "stories:latest does not support insert");

    /* completion: an embedding model neither generates nor chats */
    EXPECT(post(&s, "/api/generate", &out, "{\"model\":\"emb\",\"prompt\":\"x\"}"), 400, "\"emb\" does not support generate");
    EXPECT(post(&s, "/api/chat", &out, "{\"model\":\"emb\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"), 400,
           "\"emb\" does not support chat");
    EXPECT(post(&s, "/v1/completions", &out, "{\"model\":\"emb\",\"prompt\":\"x\"}"), 400,
           "\"emb\" does not support generate");

    /* images: refused, never dropped */
    EXPECT(post(&s, "/api/generate", &out, "{\"model\":\"stories\",\"prompt\":\"x\",\"images\":[\"aGVsbG8=\"]}"), 400,
           "\"stories\" does not support images");
    EXPECT(post(&s, "/api/chat", &out,
                "{\"model\":\"capable\",\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"images\":[\"aGVsbG8=\"]}]}"),
           400, "\"capable\" does not support images");
    EXPECT(post(&s, "/v1/chat/completions", &out,
                "{\"model\":\"stories\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"x\"},"
                "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,aGVsbG8=\"}}]}]}"),
           400, "\"stories\" does not support images");
    /* an empty images array asks for nothing */
    EXPECT(post(&s, "/api/generate", &out,
                "{\"model\":\"stories\",\"prompt\":\"x\",\"images\":[],\"stream\":false,\"options\":{\"num_predict\":2}}"),
           200, NULL);

    server_stop(&s);
    free(emb);
    tmpdir_remove(dir);
}

/* A template that opens the reasoning itself when thinking is on, as qwen3's does. */
static const char *const thinker_template =
    "{{- range .Messages }}{{ if eq .Role \"user\" }}USER: {{ .Content }}\n"
    "{{ else if eq .Role \"assistant\" }}ASSISTANT: {{ if .Thinking }}<think>{{ .Thinking }}</think>{{ end }}"
    "{{ .Content }}\n{{ end }}{{ end }}ASSISTANT:{{ if .Think }} <think>{{ end }}";

#define OPTS "\"options\":{\"temperature\":0,\"num_predict\":16}"
#define USER_MSG "[{\"role\":\"user\",\"content\":\"Once upon a time\"}]"

/* The text the model continues a raw prompt with (greedy, as the requests below). */
static char *raw_continuation(const test_server *s, const char *prompt) {
    char *out = NULL;
    long st = post(s, "/api/generate", &out, "{\"model\":\"stories\",\"raw\":true,\"prompt\":\"%s\",\"stream\":false," OPTS "}",
                   prompt);
    if (st != 200) fail_msg("raw: %ld %s", st, out);
    cJSON *j = json_or_fail(out);
    char *text = strdup(jstr(j, "response"));
    cJSON_Delete(j);
    free(out);
    return text;
}

static const char *skip_ws(const char *p) {
    while (*p == ' ' || *p == '\n') p++;
    return p;
}

/* think: the template renders .Think (opening <think> in the prompt), the reasoning comes back
 * in message.thinking / thinking / OpenAI's reasoning (streamed too), equal to what the model
 * continues the same raw prompt with; think false leaves it all in content; a model that thinks
 * thinks by default; history .Thinking reaches the template. */
static void test_thinking(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    test_server s;
    server_start(&s, NULL);
    create_model(&s, "stories", MODEL);
    char *path = testdata_path(MODEL);
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "model", "thinker");
    cJSON_AddStringToObject(b, "from", path);
    cJSON_AddStringToObject(b, "template", thinker_template);
    cJSON_AddBoolToObject(b, "stream", false);
    char *out = NULL;
    EXPECT(post_obj(&s, "/api/create", b, &out), 200, NULL);
    free(path);
    char caps[256];
    show_caps(&s, "thinker", caps, sizeof caps);
    assert_string_equal(caps, "completion thinking");

    char *thought = raw_continuation(&s, "USER: Once upon a time\\nASSISTANT: <think>");
    char *plain = raw_continuation(&s, "USER: Once upon a time\\nASSISTANT:");
    print_message("  reasoning: '%s'\n  answer without thinking: '%s'\n", thought, plain);
    assert_true(strlen(thought) > 0);

    /* chat, think true: all of it is reasoning (the model never closes the tag) */
    assert_int_equal(post(&s, "/api/chat", &out, "{\"model\":\"thinker\",\"messages\":" USER_MSG ",\"think\":true,\"stream\":false," OPTS "}"), 200);
    cJSON *j = json_or_fail(out);
    free(out);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message");
    assert_string_equal(jstr(m, "thinking"), skip_ws(thought));
    assert_string_equal(jstr(m, "content"), "");
    cJSON_Delete(j);
    /* streamed: the same reasoning in pieces */
    assert_int_equal(post(&s, "/api/chat", &out, "{\"model\":\"thinker\",\"messages\":" USER_MSG ",\"think\":\"high\"," OPTS "}"), 200);
    char text[4096], content[4096];
    cJSON_Delete(ndjson_collect(out, "message", "thinking", text, sizeof text));
    cJSON_Delete(ndjson_collect(out, "message", "content", content, sizeof content));
    free(out);
    assert_string_equal(text, skip_ws(thought));
    assert_string_equal(content, "");
    /* default (think absent): a thinking model thinks */
    assert_int_equal(post(&s, "/api/generate", &out, "{\"model\":\"thinker\",\"prompt\":\"Once upon a time\",\"stream\":false," OPTS "}"), 200);
    j = json_or_fail(out);
    free(out);
    assert_string_equal(jstr(j, "thinking"), skip_ws(thought));
    cJSON_Delete(j);
    /* think false: no <think> in the prompt, the text is the answer */
    assert_int_equal(post(&s, "/api/chat", &out, "{\"model\":\"thinker\",\"messages\":" USER_MSG ",\"think\":false,\"stream\":false," OPTS "}"), 200);
    j = json_or_fail(out);
    free(out);
    m = cJSON_GetObjectItemCaseSensitive(j, "message");
    assert_null(cJSON_GetObjectItemCaseSensitive(m, "thinking"));
    assert_string_equal(jstr(m, "content"), plain);
    cJSON_Delete(j);

    /* OpenAI: reasoning by default, none with reasoning_effort "none"; streamed deltas too */
    assert_int_equal(post(&s, "/v1/chat/completions", &out, "{\"model\":\"thinker\",\"messages\":" USER_MSG ",\"temperature\":0,\"max_tokens\":16}"), 200);
    j = json_or_fail(out);
    free(out);
    m = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "choices"), 0), "message");
    assert_string_equal(jstr(m, "reasoning"), skip_ws(thought));
    cJSON_Delete(j);
    assert_int_equal(post(&s, "/v1/chat/completions", &out, "{\"model\":\"thinker\",\"messages\":" USER_MSG ",\"temperature\":0,\"max_tokens\":16,\"reasoning_effort\":\"none\"}"), 200);
    j = json_or_fail(out);
    free(out);
    m = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "choices"), 0), "message");
    assert_null(cJSON_GetObjectItemCaseSensitive(m, "reasoning"));
    assert_string_equal(jstr(m, "content"), plain);
    cJSON_Delete(j);
    assert_int_equal(post(&s, "/v1/chat/completions", &out, "{\"model\":\"thinker\",\"messages\":" USER_MSG ",\"temperature\":0,\"max_tokens\":16,\"stream\":true}"), 200);
    text[0] = 0;
    for (const char *p = strstr(out, "data: {"); p; p = strstr(p + 1, "data: {")) {
        cJSON *c = cJSON_ParseWithOpts(p + 6, NULL, false);
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(c, "choices"), 0), "delta");
        const char *r = jstr(d, "reasoning");
        if (r) strncat(text, r, sizeof text - strlen(text) - 1);
        cJSON_Delete(c);
    }
    free(out);
    assert_string_equal(text, skip_ws(thought));
    EXPECT(post(&s, "/v1/chat/completions", &out, "{\"model\":\"thinker\",\"messages\":" USER_MSG ",\"reasoning_effort\":\"lots\"}"), 400,
           "invalid reasoning value: \"lots\" (must be \"minimal\", \"low\", \"medium\", \"high\", \"xhigh\", \"ultra\", \"max\", or \"none\")");
    EXPECT(post(&s, "/v1/chat/completions", &out, "{\"model\":\"stories\",\"messages\":" USER_MSG ",\"reasoning_effort\":\"high\"}"), 400,
           "\"stories\" does not support thinking");

    /* an assistant message's thinking is rendered: the prompt grows by its tokens */
    double n0 = 0, n1 = 0;
    for (int k = 0; k < 2; k++) {
        assert_int_equal(post(&s, "/api/chat", &out,
                              "{\"model\":\"thinker\",\"think\":false,\"stream\":false,\"options\":{\"num_predict\":1},\"messages\":["
                              "{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":\"assistant\",\"content\":\"Hello\"%s},"
                              "{\"role\":\"user\",\"content\":\"Tell a story\"}]}",
                              k ? ",\"thinking\":\"the little cat was sad\"" : ""),
                         200);
        j = json_or_fail(out);
        free(out);
        *(k ? &n1 : &n0) = jnum(j, "prompt_eval_count");
        cJSON_Delete(j);
    }
    print_message("  prompt tokens without history thinking %.0f, with %.0f\n", n0, n1);
    assert_true(n1 > n0 + 4);
    free(thought);
    free(plain);
    server_stop(&s);
}

#define TOOLS "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather in a city\"," \
              "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}]"

static double chat_prompt_tokens(const test_server *s, const char *path, const char *extra, const char *messages) {
    char *out = NULL;
    long st = post(s, path, &out, "{\"model\":\"tooler\",\"stream\":false,\"max_tokens\":1,\"options\":{\"num_predict\":1},"
                   "\"messages\":%s%s}", messages, extra);
    if (st != 200) fail_msg("%s: %ld %s", path, st, out);
    cJSON *j = json_or_fail(out);
    double n = strstr(path, "/v1/") ? jnum(cJSON_GetObjectItemCaseSensitive(j, "usage"), "prompt_tokens")
                                    : jnum(j, "prompt_eval_count");
    cJSON_Delete(j);
    free(out);
    return n;
}

/* Tools reach the template (the prompt grows by the tool list), history tool calls and tool
 * results are rendered (OpenAI's arguments string as well as Ollama's object), and a reply that
 * is not a call comes back as text, streamed or not, on both APIs. */
static void test_tools(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    test_server s;
    server_start(&s, NULL);
    char *path = testdata_path("models/llama-2-tiny-random.gguf"); /* a context of 4096: room for tools */
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "model", "tooler");
    cJSON_AddStringToObject(b, "from", path);
    cJSON_AddStringToObject(b, "template", tool_template);
    cJSON_AddBoolToObject(b, "stream", false);
    char *out = NULL;
    EXPECT(post_obj(&s, "/api/create", b, &out), 200, NULL);
    free(path);
    char caps[256];
    show_caps(&s, "tooler", caps, sizeof caps);
    assert_string_equal(caps, "completion tools");

    static const char user[] = "[{\"role\":\"user\",\"content\":\"Weather in Paris?\"}]";
    double plain = chat_prompt_tokens(&s, "/api/chat", "", user);
    double with_tools = chat_prompt_tokens(&s, "/api/chat", ",\"tools\":" TOOLS, user);
    double oai_tools = chat_prompt_tokens(&s, "/v1/chat/completions", ",\"tools\":" TOOLS, user);
    print_message("  prompt tokens: %.0f, with tools %.0f (OpenAI %.0f)\n", plain, with_tools, oai_tools);
    assert_true(with_tools > plain + 20);
    assert_true(oai_tools == with_tools);

    /* a conversation with a call and its result, in each API's form: the same prompt */
    static const char hist_ollama[] =
        "[{\"role\":\"user\",\"content\":\"Weather in Paris?\"},"
        "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"function\":{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}}}]},"
        "{\"role\":\"tool\",\"content\":\"sunny, 24 C\",\"tool_name\":\"get_weather\"}]";
    static const char hist_openai[] =
        "[{\"role\":\"user\",\"content\":\"Weather in Paris?\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\","
        "\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"sunny, 24 C\"}]";
    double h1 = chat_prompt_tokens(&s, "/api/chat", ",\"tools\":" TOOLS, hist_ollama);
    double h2 = chat_prompt_tokens(&s, "/v1/chat/completions", ",\"tools\":" TOOLS, hist_openai);
    print_message("  with a call and its result: %.0f (OpenAI form %.0f)\n", h1, h2);
    assert_true(h1 > with_tools + 20);
    assert_true(h1 == h2);
    /* malformed calls are 400s */
    EXPECT(post(&s, "/api/chat", &out,
                "{\"model\":\"tooler\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"function\":{\"arguments\":{}}}]}]}"),
           400, "messages[0].tool_calls[0]: needs function.name and function.arguments (an object)");
    EXPECT(post(&s, "/api/chat", &out, "{\"model\":\"tooler\",\"messages\":%s,\"tools\":[{\"type\":\"function\"}]}", user), 400,
           "tools[0]: needs a function with a name");

    /* the tiny model answers in text, not a call: the held-back answer is let go, streamed or not */
    assert_int_equal(post(&s, "/api/chat", &out, "{\"model\":\"tooler\",\"messages\":%s,\"tools\":" TOOLS ",\"stream\":false," OPTS "}", user), 200);
    cJSON *j = json_or_fail(out);
    free(out);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message");
    char whole[2048];
    snprintf(whole, sizeof whole, "%s", jstr(m, "content"));
    assert_null(cJSON_GetObjectItemCaseSensitive(m, "tool_calls"));
    cJSON_Delete(j);
    assert_int_equal(post(&s, "/api/chat", &out, "{\"model\":\"tooler\",\"messages\":%s,\"tools\":" TOOLS "," OPTS "}", user), 200);
    char text[2048];
    cJSON_Delete(ndjson_collect(out, "message", "content", text, sizeof text));
    free(out);
    assert_string_equal(text, whole);
    assert_int_equal(post(&s, "/v1/chat/completions", &out, "{\"model\":\"tooler\",\"messages\":%s,\"tools\":" TOOLS ",\"temperature\":0,\"max_tokens\":16}", user), 200);
    j = json_or_fail(out);
    free(out);
    const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "choices"), 0);
    assert_string_equal(jstr(cJSON_GetObjectItemCaseSensitive(c0, "message"), "content"), whole);
    assert_true(strcmp(jstr(c0, "finish_reason"), "length") == 0 || strcmp(jstr(c0, "finish_reason"), "stop") == 0);
    cJSON_Delete(j);
    server_stop(&s);
}

/* A reply in the family's call format comes back as tool_calls, on both APIs, streamed or
 * not; without tools the same reply is text. */
static void test_tool_call_reply(void **state) {
    (void)state;
    test_server s;
    server_start(&s, NULL);
    char *dir = tmpdir_make();
    char *path = write_caller_gguf(dir);
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "model", "caller");
    cJSON_AddStringToObject(b, "from", path);
    cJSON_AddStringToObject(b, "template", tool_template);
    cJSON_AddBoolToObject(b, "stream", false);
    char *out = NULL;
    EXPECT(post_obj(&s, "/api/create", b, &out), 200, NULL);
    static const char user[] = "[{\"role\":\"user\",\"content\":\"Weather in Paris?\"}]";

    /* without tools: the call is only text */
    assert_int_equal(post(&s, "/api/chat", &out, "{\"model\":\"caller\",\"messages\":%s,\"stream\":false," OPTS "}", user), 200);
    cJSON *j = json_or_fail(out);
    free(out);
    const char *text = jstr(cJSON_GetObjectItemCaseSensitive(j, "message"), "content");
    print_message("  the model writes: %s\n", text);
    assert_non_null(strstr(text, "<tool_call>{\"name\": \"get_weather\""));
    cJSON_Delete(j);

    /* Ollama, not streamed */
    assert_int_equal(post(&s, "/api/chat", &out, "{\"model\":\"caller\",\"messages\":%s,\"tools\":" TOOLS ",\"stream\":false," OPTS "}", user), 200);
    j = json_or_fail(out);
    free(out);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message");
    assert_string_equal(jstr(m, "content"), "");
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(m, "tool_calls"), 0), "function");
    assert_string_equal(jstr(f, "name"), "get_weather");
    assert_string_equal(jstr(cJSON_GetObjectItemCaseSensitive(f, "arguments"), "city"), "Paris");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(m, "tool_calls")), 1);
    cJSON_Delete(j);
    /* Ollama, streamed: one chunk carries the calls, no text */
    assert_int_equal(post(&s, "/api/chat", &out, "{\"model\":\"caller\",\"messages\":%s,\"tools\":" TOOLS "," OPTS "}", user), 200);
    char content[1024];
    cJSON_Delete(ndjson_collect(out, "message", "content", content, sizeof content));
    assert_string_equal(content, "");
    const char *line = strstr(out, "\"tool_calls\":[{");
    assert_non_null(line);
    assert_non_null(strstr(line, "\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}"));
    free(out);
    /* OpenAI, not streamed: arguments as a string, finish_reason tool_calls */
    assert_int_equal(post(&s, "/v1/chat/completions", &out, "{\"model\":\"caller\",\"messages\":%s,\"tools\":" TOOLS ",\"temperature\":0}", user), 200);
    j = json_or_fail(out);
    free(out);
    const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "choices"), 0);
    assert_string_equal(jstr(c0, "finish_reason"), "tool_calls");
    const cJSON *tc = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c0, "message"), "tool_calls"), 0);
    assert_string_equal(jstr(tc, "type"), "function");
    assert_non_null(jstr(tc, "id"));
    f = cJSON_GetObjectItemCaseSensitive(tc, "function");
    assert_string_equal(jstr(f, "name"), "get_weather");
    assert_string_equal(jstr(f, "arguments"), "{\"city\":\"Paris\"}");
    cJSON_Delete(j);
    /* OpenAI, streamed: a delta with the calls, then finish_reason tool_calls */
    assert_int_equal(post(&s, "/v1/chat/completions", &out, "{\"model\":\"caller\",\"messages\":%s,\"tools\":" TOOLS ",\"stream\":true}", user), 200);
    assert_non_null(strstr(out, "\"tool_calls\":[{\"id\":"));
    assert_non_null(strstr(out, "\"finish_reason\":\"tool_calls\""));
    assert_non_null(strstr(out, "data: [DONE]"));
    free(out);
    server_stop(&s);
    free(path);
    tmpdir_remove(dir);
}

static char *generate_text(const test_server *s, const char *model, const char *extra, const char *prompt) {
    char *out = NULL;
    long st = post(s, "/api/generate", &out, "{\"model\":\"%s\",\"prompt\":\"%s\",\"stream\":false," OPTS "%s}", model, prompt, extra);
    if (st != 200) fail_msg("generate: %ld %s", st, out);
    cJSON *j = json_or_fail(out);
    char *text = strdup(jstr(j, "response"));
    cJSON_Delete(j);
    free(out);
    return text;
}

/* Fill-in-the-middle: with a suffix the template gets .Prompt and .Suffix (code models'
 * <PRE>/<SUF>/<MID> layout): the answer is the model's continuation of exactly that text. */
static void test_insert(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    test_server s;
    server_start(&s, NULL);
    create_model(&s, "stories", MODEL);
    char *path = testdata_path(MODEL);
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "model", "filler");
    cJSON_AddStringToObject(b, "from", path);
    cJSON_AddStringToObject(b, "template", "{{- if .Suffix }}<PRE> {{ .Prompt }} <SUF>{{ .Suffix }} <MID>{{- else }}{{ .Prompt }}{{- end }}");
    cJSON_AddBoolToObject(b, "stream", false);
    char *out = NULL;
    EXPECT(post_obj(&s, "/api/create", b, &out), 200, NULL);
    free(path);
    char caps[256];
    show_caps(&s, "filler", caps, sizeof caps);
    assert_string_equal(caps, "completion insert");
    char *fim = generate_text(&s, "filler", ",\"suffix\":\" and they lived happily ever after.\"", "Once upon a time");
    char *raw = generate_text(&s, "stories", ",\"raw\":true", "<PRE> Once upon a time <SUF> and they lived happily ever after. <MID>");
    char *plain = generate_text(&s, "filler", "", "Once upon a time");
    char *raw_plain = generate_text(&s, "stories", ",\"raw\":true", "Once upon a time");
    print_message("  with the suffix: '%s'\n  without: '%s'\n", fim, plain);
    assert_string_equal(fim, raw);
    assert_string_equal(plain, raw_plain);
    assert_string_not_equal(fim, plain);
    free(fim);
    free(raw);
    free(plain);
    free(raw_plain);
    server_stop(&s);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_capabilities, server_teardown),
        cmocka_unit_test_teardown(test_thinking, server_teardown),
        cmocka_unit_test_teardown(test_tools, server_teardown),
        cmocka_unit_test_teardown(test_tool_call_reply, server_teardown),
        cmocka_unit_test_teardown(test_insert, server_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
