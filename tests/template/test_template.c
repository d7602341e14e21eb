/* Chat templates: each built-in family rendered for a two-turn conversation with a system
 * prompt (expected text written from each format's documented layout), every Go template
 * feature we support, Ollama's legacy per-turn mode, and errors for malformed templates. */
#include "testdata.h"

#include <stdlib.h>
#include <string.h>

#include "template/template.h"

/* Renders tmpl over messages given as role, content, ..., NULL. Fails the test on error. */
static char *render_ex(const char *tmpl, const char *system, bool gen, const char *const *pairs) {
    strata_template *t = NULL;
    if (strata_template_parse(tmpl, strlen(tmpl), &t) != STRATA_OK) fail_msg("parse: %s\n%s", strata_last_error(), tmpl);
    strata_chat_message msgs[32];
    size_t n = 0;
    for (; pairs && pairs[2 * n]; n++) msgs[n] = (strata_chat_message){.role = pairs[2 * n], .content = pairs[2 * n + 1]};
    strata_template_input in = {.system = system, .messages = msgs, .n_messages = n, .add_generation_prompt = gen};
    char *out = NULL;
    size_t len = 0;
    if (strata_template_render(t, &in, &out, &len) != STRATA_OK) fail_msg("render: %s\n%s", strata_last_error(), tmpl);
    assert_int_equal(len, strlen(out));
    strata_template_free(t);
    return out;
}

static char *render(const char *tmpl, const char *const *pairs) { return render_ex(tmpl, NULL, true, pairs); }

#define EXPECT(tmpl, pairs, want)                                                                                  \
    do {                                                                                                           \
        char *_got = render((tmpl), (pairs));                                                                      \
        if (strcmp(_got, (want)) != 0) fail_msg("template %s\n got: [%s]\nwant: [%s]", (tmpl), _got, (want));      \
        free(_got);                                                                                                \
    } while (0)

static const char *const two_turns[] = {"system", "S", "user", "U1", "assistant", "A1", "user", "U2", NULL};

static void check_family(strata_chat_family f, const char *const *pairs, const char *system, const char *want) {
    char *got = render_ex(strata_chat_family_template(f), system, true, pairs);
    if (strcmp(got, want) != 0) fail_msg("%s\n got: [%s]\nwant: [%s]", strata_chat_family_name(f), got, want);
    free(got);
}

static void test_family_llama3(void **state) {
    (void)state;
    check_family(STRATA_CHAT_LLAMA3, two_turns, NULL,
                 "<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
                 "<|start_header_id|>user<|end_header_id|>\n\nU1<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\nA1<|eot_id|>"
                 "<|start_header_id|>user<|end_header_id|>\n\nU2<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\n");
    /* No system; a trailing assistant message stays open for continuation. */
    static const char *const cont[] = {"user", "Hi", "assistant", "Hel", NULL};
    check_family(STRATA_CHAT_LLAMA3, cont, NULL,
                 "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\nHel");
}

static void test_family_llama2(void **state) {
    (void)state;
    check_family(STRATA_CHAT_LLAMA2, two_turns, NULL,
                 "[INST] <<SYS>>\nS\n<</SYS>>\n\nU1 [/INST] A1 </s><s>[INST] U2 [/INST]");
    static const char *const plain[] = {"user", "Hi", NULL};
    check_family(STRATA_CHAT_LLAMA2, plain, NULL, "[INST] Hi [/INST]");
}

static void test_family_chatml(void **state) {
    (void)state;
    check_family(STRATA_CHAT_CHATML, two_turns, NULL,
                 "<|im_start|>system\nS<|im_end|>\n"
                 "<|im_start|>user\nU1<|im_end|>\n"
                 "<|im_start|>assistant\nA1<|im_end|>\n"
                 "<|im_start|>user\nU2<|im_end|>\n"
                 "<|im_start|>assistant\n");
}

static void test_family_mistral(void **state) {
    (void)state;
    check_family(STRATA_CHAT_MISTRAL, two_turns, NULL, "[INST] U1[/INST] A1</s>[INST] S\n\nU2[/INST]");
    static const char *const plain[] = {"user", "Hi", NULL};
    check_family(STRATA_CHAT_MISTRAL, plain, NULL, "[INST] Hi[/INST]");
}

static void test_family_phi3(void **state) {
    (void)state;
    check_family(STRATA_CHAT_PHI3, two_turns, NULL,
                 "<|system|>\nS<|end|>\n<|user|>\nU1<|end|>\n<|assistant|>\nA1<|end|>\n<|user|>\nU2<|end|>\n<|assistant|>\n");
}

static void test_family_gemma(void **state) {
    (void)state;
    check_family(STRATA_CHAT_GEMMA, two_turns, NULL,
                 "<start_of_turn>user\nS\n\nU1<end_of_turn>\n"
                 "<start_of_turn>model\nA1<end_of_turn>\n"
                 "<start_of_turn>user\nU2<end_of_turn>\n"
                 "<start_of_turn>model\n");
}

static void test_system_argument(void **state) {
    (void)state;
    /* The system argument stands in for a missing system message... */
    static const char *const no_sys[] = {"user", "U1", "assistant", "A1", "user", "U2", NULL};
    check_family(STRATA_CHAT_CHATML, no_sys, "S",
                 "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n"
                 "<|im_start|>user\nU2<|im_end|>\n<|im_start|>assistant\n");
    /* ...and gives way to one. */
    check_family(STRATA_CHAT_CHATML, two_turns, "ignored",
                 "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n"
                 "<|im_start|>user\nU2<|im_end|>\n<|im_start|>assistant\n");
    /* Consecutive messages of one role merge; .System joins all system messages. */
    static const char *const merged[] = {"system", "a", "system", "b", "user", "x", "user", "y", NULL};
    EXPECT("{{ .System }}|{{ range .Messages }}{{ .Role }}={{ .Content }};{{ end }}", merged,
           "a\n\nb|system=a\n\nb;user=x\n\ny;");
}

/* What a template can render (capabilities): the fields it names, and the thinking tags
 * inferred as Ollama does (the last .Thinking inside a range over .Messages). */
static void test_capability_fields(void **state) {
    (void)state;
    strata_template *t = NULL;
    const char *src = "{{ if .Tools }}{{ json $.Tools }}{{ end }}{{ range .Messages }}{{ if eq .Role \"assistant\" }}"
                      "{{ if .Thinking }}\n <think>{{ .Thinking }}</think>\n{{ end }}{{ .Content }}{{ end }}{{ end }}";
    assert_int_equal(strata_template_parse(src, strlen(src), &t), STRATA_OK);
    assert_true(strata_template_names(t, "Tools"));
    assert_true(strata_template_names(t, "tools"));
    assert_false(strata_template_names(t, "Suffix"));
    char open[32], close[32];
    assert_true(strata_template_think_tags(t, open, sizeof open, close, sizeof close));
    assert_string_equal(open, "<think>");
    assert_string_equal(close, "</think>");
    strata_template_free(t);
    /* .Thinking outside a range over .Messages, or without text around it: no tags */
    static const char *const none[] = {"<think>{{ .Thinking }}</think>{{ .Prompt }}",
                                       "{{ range .Messages }}{{ .Thinking }}{{ end }}",
                                       "{{ range .Tools }}<think>{{ .Thinking }}</think>{{ end }}",
                                       "{{ .Suffix }}{{ .Prompt }}"};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        assert_int_equal(strata_template_parse(none[i], strlen(none[i]), &t), STRATA_OK);
        assert_false(strata_template_think_tags(t, open, sizeof open, close, sizeof close));
        strata_template_free(t);
    }
    assert_int_equal(strata_template_parse(none[3], strlen(none[3]), &t), STRATA_OK);
    assert_true(strata_template_names(t, "Suffix"));
    strata_template_free(t);
}

static void test_detect(void **state) {
    (void)state;
    static const struct {
        const char *jinja;
        strata_chat_family f;
    } cases[] = {
        {"{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] }}<|eot_id|>{% endfor %}",
         STRATA_CHAT_LLAMA3},
        {"{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
         "{% endfor %}",
         STRATA_CHAT_CHATML},
        {"{{ bos_token }}{% for message in messages %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + "
         "'<end_of_turn>\n' }}{% endfor %}",
         STRATA_CHAT_GEMMA},
        {"{% for message in messages %}{% if message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + "
         "'<|end|>\n'}}{% endif %}{% endfor %}",
         STRATA_CHAT_PHI3},
        {"{% if messages[0]['role'] == 'system' %}{% set system_message = '<<SYS>>\\n' + messages[0]['content'] + "
         "'\\n<</SYS>>\\n\\n' %}{% endif %}{{ bos_token + '[INST] ' + content + ' [/INST]' }}",
         STRATA_CHAT_LLAMA2},
        {"{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + "
         "' [/INST]' }}{% else %}{{ message['content'] + eos_token}}{% endif %}{% endfor %}",
         STRATA_CHAT_MISTRAL},
        {"{% for message in messages %}### {{ message['role'] }}:\n{{ message['content'] }}{% endfor %}", STRATA_CHAT_UNKNOWN},
        {"", STRATA_CHAT_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        strata_chat_family f = strata_chat_family_detect(cases[i].jinja, strlen(cases[i].jinja));
        if (f != cases[i].f) fail_msg("case %zu: got %s want %s", i, strata_chat_family_name(f), strata_chat_family_name(cases[i].f));
    }
    assert_int_equal(strata_chat_family_detect(NULL, 0), STRATA_CHAT_UNKNOWN);
    for (int f = 0; f < STRATA_CHAT_COUNT; f++) {
        strata_chat_family back;
        assert_true(strata_chat_family_from_name(strata_chat_family_name((strata_chat_family)f), &back));
        assert_int_equal(back, f);
        assert_non_null(strata_chat_family_stops((strata_chat_family)f));
        /* Every built-in template parses. */
        strata_template *t;
        const char *src = strata_chat_family_template((strata_chat_family)f);
        assert_int_equal(strata_template_parse(src, strlen(src), &t), STRATA_OK);
        assert_string_equal(strata_template_source(t), src);
        assert_int_equal(strata_template_uses_messages(t), f != STRATA_CHAT_UNKNOWN);
        strata_template_free(t);
    }
    strata_chat_family f;
    assert_false(strata_chat_family_from_name("vicuna", &f));
    assert_string_equal(strata_chat_family_stops(STRATA_CHAT_LLAMA3)[2], "<|eot_id|>");
}

static const char *const hi[] = {"user", "hi", NULL};

static void test_text_and_trim(void **state) {
    (void)state;
    EXPECT("plain text", NULL, "plain text");
    EXPECT("", NULL, "");
    EXPECT("a  {{- \"b\" -}}  \n c", NULL, "abc");
    EXPECT("a \n{{- \"b\" }} c", NULL, "ab c");
    EXPECT("a {{ \"b\" -}}\n\t c", NULL, "a bc");
    EXPECT("{{-3}}", NULL, "-3");          /* a number, not a trim marker */
    EXPECT("x {{/* comment */}} y", NULL, "x  y");
    EXPECT("x {{- /* comment\nspanning */ -}} y", NULL, "xy");
    EXPECT("{{ \"}}\" }}", NULL, "}}");
    EXPECT("{ {{ \"{\" }} }", NULL, "{ { }");
}

static void test_fields_and_literals(void **state) {
    (void)state;
    EXPECT("{{ .Messages }}|{{ (index .Messages 0).Content }}|{{ .Nope }}|{{ .Nope.Deeper }}|{{ $.Messages | len }}", hi,
           "[map[Content:hi Role:user]]|hi|||1");
    EXPECT("{{ \"a\\tb\\n\\\"q\\\"\\x41\\u00e9\\101\" }}|{{ `raw\\n` }}|{{ 'A' }}|{{ 42 }}|{{ -7 }}|{{ 2.5 }}|{{ 1e3 }}|{{ 0x10 }}|{{ true }}|{{ false }}",
           hi, "a\tb\n\"q\"A\xc3\xa9" "A|raw\\n|65|42|-7|2.5|1000|16|true|false");
    EXPECT("{{ .Messages | len | print }}", hi, "1");
    EXPECT("{{ print nil }}", hi, "<nil>");
}

static void test_control(void **state) {
    (void)state;
    static const char *const conv[] = {"user", "a", "assistant", "b", "user", "c", NULL};
    EXPECT("{{ range .Messages }}{{ .Role }}:{{ .Content }} {{ end }}", conv, "user:a assistant:b user:c ");
    EXPECT("{{ range $i, $m := .Messages }}{{ $i }}={{ $m.Content }}{{ if eq $i 1 }}!{{ end }},{{ end }}", conv,
           "0=a,1=b!,2=c,");
    EXPECT("{{ range $m := .Messages }}{{ $m.Role }} {{ end }}", conv, "user assistant user ");
    EXPECT("{{ range .Tools }}x{{ else }}no tools{{ end }}", NULL, "no tools");
    EXPECT("{{ range 3 }}{{ . }}{{ end }}", NULL, "012");
    EXPECT("{{ range $i, $m := .Messages }}{{ if eq $i 1 }}{{ continue }}{{ end }}{{ if eq $i 2 }}{{ break }}{{ end }}{{ $m.Content }}{{ end }}",
           conv, "a");
    EXPECT("{{ if .System }}sys{{ else if eq (len .Messages) 3 }}three{{ else }}other{{ end }}", conv, "three");
    EXPECT("{{ if .System }}sys{{ else if eq (len .Messages) 2 }}two{{ else }}other{{ end }}", conv, "other");
    EXPECT("{{ if .Messages }}yes{{ end }}{{ if .Tools }}tools{{ end }}", conv, "yes");
    EXPECT("{{ with index .Messages 1 }}{{ .Content }}{{ end }}", conv, "b");
    EXPECT("{{ with .Tools }}t{{ else with .Messages }}{{ len . }}{{ end }}", conv, "3");
    EXPECT("{{ with .Tools }}t{{ else }}none{{ end }}", NULL, "none");
    static const char *const none[] = {NULL};
    EXPECT("{{ range .Messages }}x{{ end }}", none, "");
}

static void test_variables(void **state) {
    (void)state;
    static const char *const conv[] = {"user", "a", "assistant", "b", "user", "c", NULL};
    EXPECT("{{ $x := 1 }}{{ $x }}{{ $x = 2 }}{{ $x }}", NULL, "12");
    EXPECT("{{ $n := 0 }}{{ range .Messages }}{{ $n = len .Content }}{{ end }}{{ $n }}", conv, "1");
    EXPECT("{{ $last := \"\" }}{{ range .Messages }}{{ $last = .Role }}{{ end }}{{ $last }}", conv, "user");
    /* Ollama's idiom for the last message. */
    EXPECT("{{- range $i, $_ := .Messages }}{{- $last := eq (len (slice $.Messages $i)) 1 }}{{ if $last }}[{{ .Content }}]{{ end }}{{ end }}",
           conv, "[c]");
    EXPECT("{{ if $x := .Messages }}{{ len $x }}{{ end }}", conv, "3");
    EXPECT("{{ range .Messages }}{{ $.System }}{{ end }}", conv, "");
}

static void test_functions(void **state) {
    (void)state;
    static const char *const conv[] = {"user", "a", "assistant", "b", NULL};
    EXPECT("{{ and 1 0 2 }}|{{ and 1 2 }}|{{ or 0 \"\" \"x\" }}|{{ or 0 \"\" }}|{{ not 0 }}|{{ not \"x\" }}", NULL,
           "0|2|x||true|false");
    EXPECT("{{ and .Tools (index .Tools 0) }}", NULL, ""); /* short-circuit: index is never called */
    EXPECT("{{ eq 1 2 3 1 }}|{{ eq \"a\" \"b\" }}|{{ ne 1 2 }}|{{ eq .Tools nil }}|{{ eq 1 1.0 }}", NULL, "true|false|true|true|true");
    EXPECT("{{ lt 1 2 }}{{ le 2 2 }}{{ gt \"b\" \"a\" }}{{ ge 1 2 }}", NULL, "truetruetruefalse");
    EXPECT("{{ len \"héllo\" }}|{{ len .Messages }}|{{ len .Tools }}", conv, "6|2|0");
    EXPECT("{{ index .Messages 1 \"Role\" }}|{{ index \"abc\" 1 }}", conv, "assistant|98");
    EXPECT("{{ slice \"hello\" 1 3 }}|{{ slice \"hello\" 2 }}|{{ len (slice .Messages 1) }}|{{ len (slice .Messages 0 0) }}", conv,
           "el|llo|1|0");
    EXPECT("{{ print 1 2 \"a\" \"b\" 3 }}|{{ println \"x\" 1 }}|{{ print }}", NULL, "1 2ab3|x 1\n|");
    EXPECT("{{ printf \"%s=%d %v %q %t %x %c %% %g\" \"k\" 42 true \"q\" false 255 65 0.25 }}", NULL,
           "k=42 true \"q\" false ff A % 0.25");
    EXPECT("{{ printf \"%s\" }}|{{ printf \"a\" 1 }}", NULL, "%!s(MISSING)|a%!(EXTRA)");
    EXPECT("{{ json .Messages }}", conv, "[{\"Content\":\"a\",\"Role\":\"user\"},{\"Content\":\"b\",\"Role\":\"assistant\"}]");
    EXPECT("{{ json \"<a & \\\"b\\\">\\n\" }}|{{ json nil }}|{{ json 1.5 }}", NULL,
           "\"\\u003ca \\u0026 \\\"b\\\"\\u003e\\n\"|null|1.5");
    EXPECT("{{ \"x\" | printf \"%s-%s\" \"y\" }}", NULL, "y-x");
    /* Floats print as Go's %v and encoding/json write them. */
    EXPECT("{{ 1000000.0 }} {{ 123456.0 }} {{ 0.0001 }} {{ 0.00001 }} {{ 1.5e300 }} {{ -2.25 }}", NULL,
           "1e+06 123456 0.0001 1e-05 1.5e+300 -2.25");
    EXPECT("{{ json 1e-7 }} {{ json 1e21 }} {{ json 100000000.0 }} {{ json 0.1 }}", NULL, "1e-7 1e+21 100000000 0.1");
}

/* Ollama's legacy mode: one rendering per turn, the last cut after {{ .Response }}. */
static void test_legacy_mode(void **state) {
    (void)state;
    const char *tmpl = "{{ if .System }}<S>{{ .System }}</S>{{ end }}<U>{{ .Prompt }}</U><A>{{ .Response }}</A>";
    char *got = render_ex(tmpl, NULL, true, two_turns);
    assert_string_equal(got, "<S>S</S><U>U1</U><A>A1</A><U>U2</U><A>");
    free(got);
    /* Without the generation prompt the last turn is closed. */
    got = render_ex(tmpl, NULL, false, two_turns);
    assert_string_equal(got, "<S>S</S><U>U1</U><A>A1</A><U>U2</U><A></A>");
    free(got);
    /* A trailing assistant message is continued. */
    static const char *const cont[] = {"user", "q", "assistant", "par", NULL};
    got = render_ex(tmpl, "sys", true, cont);
    assert_string_equal(got, "<S>sys</S><U>q</U><A>par");
    free(got);
    /* A template that never names the response gets it appended. */
    got = render_ex("[{{ .Prompt }}]", NULL, true, two_turns);
    assert_string_equal(got, "[U1]A1[U2]");
    free(got);
    /* The cut is by position: text after the response node goes even inside an if. */
    got = render_ex("{{ .Prompt }}{{ if true }}={{ .Response }}.{{ end }}!", NULL, true, hi);
    assert_string_equal(got, "hi=");
    free(got);
}

static void parse_fails(const char *tmpl, const char *needle) {
    strata_template *t = NULL;
    strata_status st = strata_template_parse(tmpl, strlen(tmpl), &t);
    if (st != STRATA_ERR_FORMAT || t || !strstr(strata_last_error(), needle))
        fail_msg("template [%s]: expected error containing [%s], got %d [%s]", tmpl, needle, st, strata_last_error());
}

static void test_parse_errors(void **state) {
    (void)state;
    parse_fails("{{ .Prompt ", "template:1:1: unclosed action");
    parse_fails("ab\ncd {{ if .X }}", "template:2:7: unexpected EOF: {{ if }} has no {{ end }}");
    parse_fails("{{ end }}", "unexpected {{ end }}");
    parse_fails("{{ else }}", "unexpected {{ else }}");
    parse_fails("{{ if .X }}a{{ else }}b{{ else }}c{{ end }}", "more than one {{ else }}");
    parse_fails("{{ range .X }}{{ else if .Y }}{{ end }}", "unexpected \"if\" after else");
    parse_fails("{{ }}", "missing value for command");
    parse_fails("{{ if }}{{ end }}", "missing value for if");
    parse_fails("\n\n  {{ $x }}", "template:3:6: undefined variable \"$x\"");
    parse_fails("{{ $x = 1 }}", "undefined variable \"$x\"");
    parse_fails("{{ if .A }}{{ $y := 1 }}{{ else }}{{ $y }}{{ end }}", "undefined variable \"$y\"");
    parse_fails("{{ range .A }}{{ $z := 1 }}{{ end }}{{ $z }}", "undefined variable \"$z\"");
    parse_fails("{{ frobnicate 1 }}", "function \"frobnicate\" not defined");
    parse_fails("{{ html \"x\" }}", "function \"html\" is not supported");
    parse_fails("{{ template \"x\" }}", "{{ template }} is not supported");
    parse_fails("{{ define \"x\" }}{{ end }}", "{{ define }} is not supported");
    parse_fails("{{ \"abc }}", "unterminated quoted string");
    parse_fails("{{ `abc }}", "unterminated raw quoted string");
    parse_fails("{{ \"\\q\" }}", "unknown escape sequence");
    parse_fails("{{ 'ab' }}", "more than one character");
    parse_fails("{{ 12abc }}", "bad number syntax");
    parse_fails("{{ (len .X }}", "unclosed left paren");
    parse_fails("{{ len .X) }}", "unexpected right paren");
    parse_fails("{{ .X 1 }}", "can't give argument to non-function");
    parse_fails("{{ 1 | .X }}", "can't pipe into a non-function");
    parse_fails("{{ nil }}", "nil is not a command");
    parse_fails("{{ | len }}", "missing command before '|'");
    parse_fails("{{ len .X | }}", "missing command after '|'");
    parse_fails("{{ break }}", "{{ break }} outside {{ range }}");
    parse_fails("{{ range .X }}{{ break 1 }}{{ end }}", "unexpected \"1\" in break");
    parse_fails("{{ end 1 }}", "unexpected \"1\" in end");
    parse_fails("{{ \"x\".Y }}", "unexpected . after term");
    parse_fails("{{ # }}", "unexpected character '#'");
    parse_fails("{{/* unclosed", "unclosed comment");
    parse_fails("{{/* x */ }}", "comment ends before closing delimiter");
    parse_fails("{{ $ := 1 }}", "cannot assign to $");
    parse_fails("{{ $a, $b := .X }}", "too many declarations");
    parse_fails("{{ range $a, $b, $c := .X }}{{ end }}", "too many declarations");
    parse_fails("{{ .A.B\"x\" }}", "missing space before");
    /* Deep nesting is refused, not a stack overflow. */
    char deep[4096] = "";
    for (int i = 0; i < 200; i++) strcat(deep, "{{ if 1 }}");
    parse_fails(deep, "nesting too deep");
    char parens[2048] = "{{ ";
    for (int i = 0; i < 200; i++) strcat(parens, "(");
    strcat(parens, "1");
    for (int i = 0; i < 200; i++) strcat(parens, ")");
    strcat(parens, " }}");
    parse_fails(parens, "nesting too deep");
}

static void exec_fails(const char *tmpl, const char *needle) {
    strata_template *t = NULL;
    if (strata_template_parse(tmpl, strlen(tmpl), &t) != STRATA_OK) fail_msg("parse: %s", strata_last_error());
    strata_chat_message m = {.role = "user", .content = "hi"};
    strata_template_input in = {.messages = &m, .n_messages = 1, .add_generation_prompt = true};
    char *out = (char *)1;
    strata_status st = strata_template_render(t, &in, &out, NULL);
    if (st != STRATA_ERR_FORMAT || out != NULL || !strstr(strata_last_error(), needle))
        fail_msg("template [%s]: expected exec error [%s], got %d [%s]", tmpl, needle, st, strata_last_error());
    strata_template_free(t);
}

static void test_exec_errors(void **state) {
    (void)state;
    exec_fails("{{ .Messages }}{{ index .Messages 5 }}", "template:1:19: executing: error calling index: index out of range: 5");
    exec_fails("{{ .Messages }}{{ slice .Messages 2 1 }}", "index out of range");
    exec_fails("{{ .Messages }}{{ (index .Messages 0).Role.X }}", "can't evaluate field X in type string");
    exec_fails("{{ .Messages }}{{ eq 1 \"a\" }}", "incompatible types for comparison");
    exec_fails("{{ .Messages }}{{ lt true false }}", "invalid type for comparison");
    exec_fails("{{ .Messages }}{{ eq .Messages .Messages }}", "non-comparable type slice");
    exec_fails("{{ .Messages }}{{ not 1 2 }}", "wrong number of args for not: want 1 got 2");
    exec_fails("{{ .Messages }}{{ len 3 }}", "len of type int");
    exec_fails("{{ .Messages }}{{ range \"abc\" }}{{ end }}", "range can't iterate over a value of type string");
    exec_fails("{{ .Messages }}{{ range $i, $v := 3 }}{{ end }}", "two variables");
    exec_fails("{{ .Messages }}{{ printf \"%z\" 1 }}", "verb %z is not supported");
    exec_fails("{{ .Messages }}{{ index nil 1 }}", "can't index item of type nil");
    exec_fails("{{ .Messages }}{{ json }}", "wrong number of args for json");
    /* Runaway templates stop. */
    exec_fails("{{ .Messages }}{{ range 100000000 }}{{ end }}", "too expensive");
    exec_fails("{{ .Messages }}{{ $s := \"xxxxxxxxxxxxxxxx\" }}{{ range 40 }}{{ $s = print $s $s }}{{ end }}", "larger than");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_family_llama3),   cmocka_unit_test(test_family_llama2),
        cmocka_unit_test(test_family_chatml),   cmocka_unit_test(test_family_mistral),
        cmocka_unit_test(test_family_phi3),     cmocka_unit_test(test_family_gemma),
        cmocka_unit_test(test_system_argument), cmocka_unit_test(test_detect), cmocka_unit_test(test_capability_fields),
        cmocka_unit_test(test_text_and_trim),   cmocka_unit_test(test_fields_and_literals),
        cmocka_unit_test(test_control),         cmocka_unit_test(test_variables),
        cmocka_unit_test(test_functions),       cmocka_unit_test(test_legacy_mode),
        cmocka_unit_test(test_parse_errors),    cmocka_unit_test(test_exec_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
