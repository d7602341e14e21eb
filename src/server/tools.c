/* Tool calls: the format a template writes them in, and the model's output parsed back.
 *
 * The format is read from the template itself, as Ollama does: it is rendered twice for a
 * conversation ending with an assistant message, with and without a probe tool call, and the
 * text the call adds before its JSON is the prefix the model writes ("<tool_call>" for Qwen
 * and Hermes, "[TOOL_CALLS]" for Mistral, nothing for Llama 3.1's bare JSON).
 *
 * Output that begins (after white space) with that prefix -- or, when it is empty, with a JSON
 * object or array -- is held back while it may still be a call, then parsed: every JSON object
 * after the prefix (several, in an array, or each behind its own prefix and closing tag) with
 * a "name" (or "function": {"name"}) among the request's tools and "arguments" or
 * "parameters" (an object, or a string holding one) is a call. Output that is not is content. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/internal.h"

#define PROBE_NAME "strata_probe_tool_7f3a"

bool srv_tools_prefix(const char *template_src, char *prefix, size_t cap) {
    prefix[0] = 0;
    strata_template *t = NULL;
    if (!template_src || strata_template_parse(template_src, strlen(template_src), &t) != STRATA_OK) return false;
    cJSON *calls = cJSON_Parse("[{\"function\":{\"index\":0,\"name\":\"" PROBE_NAME "\",\"arguments\":{\"a\":1}}}]");
    strata_chat_message with[2] = {{.role = "user", .content = "x"}, {.role = "assistant", .content = "", .tool_calls = calls}};
    strata_chat_message without[2] = {{.role = "user", .content = "x"}, {.role = "assistant", .content = ""}};
    strata_template_input in = {.messages = with, .n_messages = 2, .add_generation_prompt = false};
    char *a = NULL, *b = NULL;
    bool ok = strata_template_render(t, &in, &a, NULL) == STRATA_OK;
    in.messages = without;
    ok = ok && strata_template_render(t, &in, &b, NULL) == STRATA_OK;
    const char *name = ok ? strstr(a, PROBE_NAME) : NULL;
    if (name) {
        size_t d = 0; /* where the renders part */
        while (a[d] && a[d] == b[d]) d++;
        const char *json = name;
        while (json > a + d && *json != '{') json--;
        if (*json == '{' && json > a + d) { /* an array around the objects belongs to the JSON */
            const char *p = json - 1;
            while (p > a + d && (*p == ' ' || *p == '\n')) p--;
            if (*p == '[') json = p;
        }
        const char *s = a + d;
        while (s < json && (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')) s++;
        const char *e = json;
        while (e > s && (e[-1] == ' ' || e[-1] == '\n' || e[-1] == '\t' || e[-1] == '\r')) e--;
        if (json >= a + d && (size_t)(e - s) < cap) {
            memcpy(prefix, s, (size_t)(e - s));
            prefix[e - s] = 0;
        } else {
            name = NULL;
        }
    }
    free(a);
    free(b);
    cJSON_Delete(calls);
    strata_template_free(t);
    return name != NULL;
}

static const char *skip_ws(const char *s, const char *end) {
    while (s < end && (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')) s++;
    return s;
}

bool srv_tools_maybe(const char *text, size_t n, const char *prefix) {
    const char *s = skip_ws(text, text + n);
    size_t rest = (size_t)(text + n - s), pl = strlen(prefix);
    if (!rest) return true;
    if (!pl) return *s == '{' || *s == '[';
    return memcmp(s, prefix, rest < pl ? rest : pl) == 0;
}

static bool known_tool(const cJSON *tools, const char *name) {
    const cJSON *t;
    cJSON_ArrayForEach(t, tools) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(t, "function"), "name");
        if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0) return true;
    }
    return false;
}

/* Appends the call an object describes to calls; false when it is not a call. */
static bool add_call(cJSON *calls, const cJSON *o, const cJSON *tools) {
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(o, "function");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
    if (!cJSON_IsString(name) && cJSON_IsObject(fn)) name = cJSON_GetObjectItemCaseSensitive(fn, "name");
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(o, "arguments");
    if (!args) args = cJSON_GetObjectItemCaseSensitive(o, "parameters");
    if (!args && cJSON_IsObject(fn)) args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
    if (!cJSON_IsString(name) || !known_tool(tools, name->valuestring)) return false;
    cJSON *a = NULL;
    if (cJSON_IsObject(args)) a = cJSON_Duplicate(args, true);
    else if (cJSON_IsString(args)) a = cJSON_Parse(args->valuestring);
    else if (!args) a = cJSON_CreateObject();
    if (!cJSON_IsObject(a)) {
        cJSON_Delete(a);
        return false;
    }
    cJSON *call = cJSON_CreateObject();
    cJSON *f = cJSON_AddObjectToObject(call, "function");
    cJSON_AddNumberToObject(f, "index", cJSON_GetArraySize(calls));
    cJSON_AddStringToObject(f, "name", name->valuestring);
    cJSON_AddItemToObject(f, "arguments", a);
    cJSON_AddItemToArray(calls, call);
    return true;
}

cJSON *srv_tools_parse(const char *text, size_t n, const char *prefix, const cJSON *tools) {
    const char *end = text + n, *s = skip_ws(text, end);
    const size_t pl = strlen(prefix);
    if (pl && ((size_t)(end - s) < pl || memcmp(s, prefix, pl) != 0)) return NULL;
    cJSON *calls = cJSON_CreateArray();
    while (calls) {
        s = skip_ws(s, end);
        if (s == end) break;
        if (pl && (size_t)(end - s) >= pl && memcmp(s, prefix, pl) == 0) {
            s += pl;
            continue;
        }
        if (*s == '{' || *s == '[') {
            const char *after = NULL;
            cJSON *j = cJSON_ParseWithLengthOpts(s, (size_t)(end - s), &after, false);
            if (!j) break;
            bool ok = true;
            if (cJSON_IsArray(j)) {
                const cJSON *o;
                cJSON_ArrayForEach(o, j) ok = ok && add_call(calls, o, tools);
            } else {
                ok = add_call(calls, j, tools);
            }
            cJSON_Delete(j);
            if (!ok) break;
            s = after;
            continue;
        }
        if (end - s >= 2 && s[0] == '<' && s[1] == '/') { /* a closing tag: </tool_call> */
            const char *gt = memchr(s, '>', (size_t)(end - s));
            if (!gt) break;
            s = gt + 1;
            continue;
        }
        break; /* anything else ends the calls */
    }
    if (cJSON_GetArraySize(calls) == 0) {
        cJSON_Delete(calls);
        return NULL;
    }
    return calls;
}
