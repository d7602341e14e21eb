/* Tool calls (server/tools.c): the prefix inferred from the templates Ollama ships per family,
 * and real model outputs of each family parsed back into calls; what is not a call stays text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "server/internal.h"

/* Qwen 2.5 / Hermes (Ollama's qwen2.5 template, tool parts). */
static const char qwen_tmpl[] =
    "{{- if .Tools }}<|im_start|>system\n# Tools\n<tools>\n{{- range .Tools }}\n{\"type\": \"function\", \"function\": "
    "{{ .Function }}}\n{{- end }}\n</tools><|im_end|>\n{{ end }}"
    "{{- range $i, $_ := .Messages }}{{- $last := eq (len (slice $.Messages $i)) 1 -}}"
    "{{- if eq .Role \"user\" }}<|im_start|>user\n{{ .Content }}<|im_end|>\n"
    "{{ else if eq .Role \"assistant\" }}<|im_start|>assistant\n{{ if .Content }}{{ .Content }}"
    "{{- else if .ToolCalls }}<tool_call>\n{{ range .ToolCalls }}{\"name\": \"{{ .Function.Name }}\", \"arguments\": "
    "{{ .Function.Arguments }}}\n{{ end }}</tool_call>{{- end }}{{ if not $last }}<|im_end|>\n{{ end }}"
    "{{- else if eq .Role \"tool\" }}<|im_start|>user\n<tool_response>\n{{ .Content }}\n</tool_response><|im_end|>\n{{ end }}"
    "{{- if and (ne .Role \"assistant\") $last }}<|im_start|>assistant\n{{ end }}{{- end }}";

/* Llama 3.1 (Ollama's llama3.1 template, tool parts): bare JSON with "parameters". */
static const char llama31_tmpl[] =
    "{{- range $i, $_ := .Messages }}{{- $last := eq (len (slice $.Messages $i)) 1 }}"
    "{{- if eq .Role \"user\" }}<|start_header_id|>user<|end_header_id|>\n\n{{ .Content }}<|eot_id|>"
    "{{- if $last }}<|start_header_id|>assistant<|end_header_id|>\n\n{{ end }}"
    "{{- else if eq .Role \"assistant\" }}<|start_header_id|>assistant<|end_header_id|>\n\n"
    "{{- if .ToolCalls }}{{ range .ToolCalls }}{\"name\": \"{{ .Function.Name }}\", \"parameters\": {{ .Function.Arguments }}}"
    "{{ end }}{{- else }}{{ .Content }}{{- end }}{{ if not $last }}<|eot_id|>{{ end }}"
    "{{- else if eq .Role \"tool\" }}<|start_header_id|>ipython<|end_header_id|>\n\n{{ .Content }}<|eot_id|>{{ end }}{{- end }}";

/* Mistral (Ollama's mistral template, tool parts). */
static const char mistral_tmpl[] =
    "{{- range $index, $_ := .Messages }}{{- if eq .Role \"user\" }}"
    "{{- if and $.Tools (le (len (slice $.Messages $index)) 2) }}[AVAILABLE_TOOLS] {{ json $.Tools }}[/AVAILABLE_TOOLS]{{ end }}"
    "[INST] {{ .Content }}[/INST]{{- else if eq .Role \"assistant\" }}{{- if .Content }} {{ .Content }}"
    "{{- else if .ToolCalls }}[TOOL_CALLS] [{{- range .ToolCalls }}{\"name\": \"{{ .Function.Name }}\", \"arguments\": "
    "{{ json .Function.Arguments }}}{{- end }}]{{- end }}</s>"
    "{{- else if eq .Role \"tool\" }}[TOOL_RESULTS] {\"content\": {{ .Content }}} [/TOOL_RESULTS]{{- end }}{{- end }}";

static const char tools_json[] =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather in a city\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"parameters\":{}}}]";

static void test_prefix(void **state) {
    (void)state;
    char p[64];
    assert_true(srv_tools_prefix(qwen_tmpl, p, sizeof p));
    assert_string_equal(p, "<tool_call>");
    assert_true(srv_tools_prefix(mistral_tmpl, p, sizeof p));
    assert_string_equal(p, "[TOOL_CALLS]");
    assert_true(srv_tools_prefix(llama31_tmpl, p, sizeof p));
    assert_string_equal(p, "");
    assert_false(srv_tools_prefix("{{ .Prompt }}", p, sizeof p));
}

/* The calls parsed from out, as "name(args);..." */
static void calls_of(const char *out, const char *prefix, char *buf, size_t cap) {
    cJSON *tools = cJSON_Parse(tools_json);
    cJSON *calls = srv_tools_parse(out, strlen(out), prefix, tools);
    buf[0] = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, calls) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(c, "function");
        char *args = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(f, "arguments"));
        snprintf(buf + strlen(buf), cap - strlen(buf), "%s(%s);",
                 cJSON_GetObjectItemCaseSensitive(f, "name")->valuestring, args);
        free(args);
    }
    cJSON_Delete(calls);
    cJSON_Delete(tools);
}

static void test_parse(void **state) {
    (void)state;
    char b[512];
    /* Qwen 2.5 / Qwen 3 / Hermes */
    calls_of("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>", "<tool_call>", b, sizeof b);
    assert_string_equal(b, "get_weather({\"city\":\"Paris\"});");
    calls_of("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>\n"
             "{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>",
             "<tool_call>", b, sizeof b);
    assert_string_equal(b, "get_weather({\"city\":\"Paris\"});get_time({});");
    /* Llama 3.1 / 3.2: bare JSON with "parameters" */
    calls_of("{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\"}}", "", b, sizeof b);
    assert_string_equal(b, "get_weather({\"city\":\"Oslo\"});");
    /* Mistral: [TOOL_CALLS] and an array */
    calls_of("[TOOL_CALLS] [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}, {\"name\": \"get_time\", "
             "\"arguments\": {}}]",
             "[TOOL_CALLS]", b, sizeof b);
    assert_string_equal(b, "get_weather({\"city\":\"Rome\"});get_time({});");
    /* OpenAI-style arguments as a JSON string */
    calls_of("{\"name\": \"get_weather\", \"arguments\": \"{\\\"city\\\": \\\"Lima\\\"}\"}", "", b, sizeof b);
    assert_string_equal(b, "get_weather({\"city\":\"Lima\"});");
    /* not calls: plain text, an unknown tool, broken JSON, a prefix that is not there */
    calls_of("The weather in Paris is sunny.", "", b, sizeof b);
    assert_string_equal(b, "");
    calls_of("{\"name\": \"launch_rockets\", \"arguments\": {}}", "", b, sizeof b);
    assert_string_equal(b, "");
    calls_of("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": ", "<tool_call>", b, sizeof b);
    assert_string_equal(b, "");
    calls_of("{\"name\": \"get_weather\", \"arguments\": {}}", "<tool_call>", b, sizeof b);
    assert_string_equal(b, "");
    /* what may still become a call while it streams */
    assert_true(srv_tools_maybe("  <tool_", 8, "<tool_call>"));
    assert_true(srv_tools_maybe("<tool_call>\n{\"na", 16, "<tool_call>"));
    assert_false(srv_tools_maybe("Hello", 5, "<tool_call>"));
    assert_true(srv_tools_maybe("\n{", 2, ""));
    assert_false(srv_tools_maybe("Sure", 4, ""));
}

/* History: .ToolCalls and tool results render in the family's format, arguments as JSON. */
static void test_render_history(void **state) {
    (void)state;
    strata_template *t = NULL;
    assert_int_equal(strata_template_parse(qwen_tmpl, strlen(qwen_tmpl), &t), STRATA_OK);
    cJSON *tools = cJSON_Parse(tools_json);
    cJSON *calls = cJSON_Parse("[{\"function\":{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}}}]");
    strata_chat_message m[3] = {{.role = "user", .content = "Weather in Paris?"},
                                {.role = "assistant", .content = "", .tool_calls = calls},
                                {.role = "tool", .content = "sunny", .tool_name = "get_weather"}};
    strata_template_input in = {.messages = m, .n_messages = 3, .add_generation_prompt = true, .tools = tools};
    char *out = NULL;
    assert_int_equal(strata_template_render(t, &in, &out, NULL), STRATA_OK);
    assert_non_null(strstr(out, "{\"type\": \"function\", \"function\": {\"description\":\"Weather in a city\",\"name\":\"get_weather\""));
    assert_non_null(strstr(out, "<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\":\"Paris\"}}\n</tool_call><|im_end|>\n"));
    assert_non_null(strstr(out, "<tool_response>\nsunny\n</tool_response>"));
    free(out);
    strata_template_free(t);
    cJSON_Delete(calls);
    cJSON_Delete(tools);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_prefix), cmocka_unit_test(test_parse),
                                       cmocka_unit_test(test_render_history)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
