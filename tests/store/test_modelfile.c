/* Modelfile parsing as Ollama reads it: every instruction, quoting, comments, case,
 * parameter types, errors with line numbers, and the serializer's round trip. */
#include "testdata.h"

#include <stdlib.h>
#include <string.h>

#include "store/modelfile.h"

static strata_modelfile *parse_ok(const char *text) {
    strata_modelfile *mf = NULL;
    strata_status st = strata_modelfile_parse(text, strlen(text), &mf);
    if (st != STRATA_OK) fail_msg("parse failed: %s", strata_last_error());
    assert_non_null(mf);
    return mf;
}

/* Parses text expecting failure with `status` and a message containing `needle`. */
static void parse_err(const char *text, strata_status status, const char *needle) {
    strata_modelfile *mf = NULL;
    strata_status st = strata_modelfile_parse(text, strlen(text), &mf);
    assert_null(mf);
    if (st != status || !strstr(strata_last_error(), needle))
        fail_msg("for %s\nexpected status %d with '%s', got %d: '%s'", text, status, needle, st, strata_last_error());
}

static void test_every_instruction(void **state) {
    (void)state;
    strata_modelfile *mf = parse_ok("# a comment\n"
                                    "FROM ./model.gguf\n"
                                    "PARAMETER temperature 0.7\n"
                                    "PARAMETER num_ctx 4096\n"
                                    "PARAMETER stop <|eot_id|>\n"
                                    "PARAMETER stop \"<|end|>\"\n"
                                    "TEMPLATE {{ .Prompt }}\n"
                                    "SYSTEM You are helpful.\n"
                                    "MESSAGE user Hi there\n"
                                    "MESSAGE assistant Hello! How can I help?\n"
                                    "LICENSE MIT\n");
    assert_string_equal(mf->from, "./model.gguf");
    assert_string_equal(mf->template_text, "{{ .Prompt }}");
    assert_string_equal(mf->system, "You are helpful.");
    assert_int_equal(mf->n_licenses, 1);
    assert_string_equal(mf->licenses[0], "MIT");
    assert_int_equal(mf->n_messages, 2);
    assert_string_equal(mf->messages[0].role, "user");
    assert_string_equal(mf->messages[0].content, "Hi there");
    assert_string_equal(mf->messages[1].role, "assistant");
    assert_string_equal(mf->messages[1].content, "Hello! How can I help?");
    assert_int_equal(mf->n_params, 3);
    const strata_param *p = strata_modelfile_get_param(mf, "temperature");
    assert_non_null(p);
    assert_int_equal(p->type, STRATA_PARAM_FLOAT);
    assert_true(p->f == 0.7);
    p = strata_modelfile_get_param(mf, "num_ctx");
    assert_int_equal(p->type, STRATA_PARAM_INT);
    assert_int_equal(p->i, 4096);
    p = strata_modelfile_get_param(mf, "stop");
    assert_int_equal(p->n_strs, 2);
    assert_string_equal(p->strs[0], "<|eot_id|>");
    assert_string_equal(p->strs[1], "<|end|>");
    strata_modelfile_free(mf);
}

static void test_all_parameters(void **state) {
    (void)state;
    strata_modelfile *mf = parse_ok("FROM m\n"
                                    "PARAMETER num_gpu -1\nPARAMETER num_ctx 8192\nPARAMETER num_batch 512\n"
                                    "PARAMETER num_thread 8\nPARAMETER main_gpu 1\nPARAMETER temperature 0\n"
                                    "PARAMETER top_k 40\nPARAMETER top_p 0.9\nPARAMETER min_p 0.05\n"
                                    "PARAMETER typical_p 1.0\nPARAMETER repeat_last_n 64\nPARAMETER repeat_penalty 1.1\n"
                                    "PARAMETER presence_penalty 0.5\nPARAMETER frequency_penalty -0.5\nPARAMETER seed 42\n"
                                    "PARAMETER stop x\nPARAMETER num_predict -2\n");
    assert_int_equal(mf->n_params, strata_param_count());
    assert_int_equal(strata_modelfile_get_param(mf, "num_gpu")->i, -1);
    assert_int_equal(strata_modelfile_get_param(mf, "num_predict")->i, -2);
    assert_true(strata_modelfile_get_param(mf, "frequency_penalty")->f == -0.5);
    assert_true(strata_modelfile_get_param(mf, "min_p")->f == 0.05);
    assert_int_equal(strata_modelfile_get_param(mf, "seed")->i, 42);
    strata_modelfile_free(mf);
}

static void test_case_insensitive_and_blanks(void **state) {
    (void)state;
    strata_modelfile *mf = parse_ok("\xEF\xBB\xBF"
                                    "  from   llama3:8b  \r\n"
                                    "\tParameter\tTOP_K\t7\r\n"
                                    "system\t  spaced value with  inner  spaces   \n"
                                    "   # indented comment\n"
                                    "\n\n");
    assert_string_equal(mf->from, "llama3:8b");
    assert_int_equal(strata_modelfile_get_param(mf, "top_k")->i, 7);
    assert_string_equal(mf->system, "spaced value with  inner  spaces");
    strata_modelfile_free(mf);
}

static void test_multiline_and_quotes(void **state) {
    (void)state;
    strata_modelfile *mf = parse_ok("FROM m\n"
                                    "TEMPLATE \"\"\"{{ if .System }}<|system|>\n"
                                    "{{ .System }}<|end|>\n"
                                    "{{ end }}\"\"\"\n"
                                    "SYSTEM \"\"\"\n  indented\n\"\"\"\n"
                                    "MESSAGE user \"two\nlines\"\n"
                                    "LICENSE \"\"\"first\"\"\"\n"
                                    "LICENSE \"  padded  \"\n"
                                    "PARAMETER stop \"\"\"\n\"\"\"\n");
    assert_string_equal(mf->template_text, "{{ if .System }}<|system|>\n{{ .System }}<|end|>\n{{ end }}");
    assert_string_equal(mf->system, "\n  indented\n");
    assert_string_equal(mf->messages[0].content, "two\nlines");
    assert_int_equal(mf->n_licenses, 2);
    assert_string_equal(mf->licenses[0], "first");
    assert_string_equal(mf->licenses[1], "  padded  ");
    assert_string_equal(strata_modelfile_get_param(mf, "stop")->strs[0], "\n");
    strata_modelfile_free(mf);
}

static void test_last_wins(void **state) {
    (void)state;
    strata_modelfile *mf = parse_ok("FROM m\nSYSTEM one\nSYSTEM two\nTEMPLATE a\nTEMPLATE b\n"
                                    "PARAMETER num_ctx 1\nPARAMETER num_ctx 2\nSYSTEM\t\n");
    assert_string_equal(mf->system, "");
    assert_string_equal(mf->template_text, "b");
    assert_int_equal(mf->n_params, 1);
    assert_int_equal(strata_modelfile_get_param(mf, "num_ctx")->i, 2);
    strata_modelfile_free(mf);
}

static void test_errors(void **state) {
    (void)state;
    parse_err("", STRATA_ERR_FORMAT, "no FROM line");
    parse_err("# only a comment\nSYSTEM hi\n", STRATA_ERR_FORMAT, "no FROM line");
    parse_err("FROM m\nBOGUS thing\n", STRATA_ERR_FORMAT, "line 2: unknown instruction 'BOGUS'");
    parse_err("FROM m\n\n\nFROM2 x\n", STRATA_ERR_FORMAT, "line 4: unknown instruction 'FROM2'");
    parse_err("FROM m\nPARAMETER num_ctx lots\n", STRATA_ERR_FORMAT, "line 2: parameter num_ctx needs an integer");
    parse_err("FROM m\nPARAMETER num_ctx 1.5\n", STRATA_ERR_FORMAT, "line 2: parameter num_ctx needs an integer");
    parse_err("FROM m\nPARAMETER temperature hot\n", STRATA_ERR_FORMAT, "line 2: parameter temperature needs a number");
    parse_err("FROM m\nPARAMETER temperature nan\n", STRATA_ERR_FORMAT, "line 2: parameter temperature");
    parse_err("FROM m\nPARAMETER top_p 0x1p-3\n", STRATA_ERR_FORMAT, "line 2: parameter top_p");
    parse_err("FROM m\nPARAMETER seed 99999999999999999999999\n", STRATA_ERR_FORMAT, "line 2: parameter seed");
    parse_err("FROM m\nPARAMETER seed 9007199254740993\n", STRATA_ERR_FORMAT, "at most 2^53");
    parse_err("FROM m\n# c\nPARAMETER mirostat 1\n", STRATA_ERR_FORMAT, "line 3: unknown parameter 'mirostat'");
    parse_err("FROM m\nPARAMETER num_ctx\n", STRATA_ERR_FORMAT, "line 2: PARAMETER needs a name and a value");
    parse_err("FROM m\nMESSAGE robot hi\n", STRATA_ERR_FORMAT, "line 2: message role must be one of");
    parse_err("FROM m\nMESSAGE user\n", STRATA_ERR_FORMAT, "line 2: MESSAGE needs a role");
    parse_err("FROM m\nADAPTER ./lora.gguf\n", STRATA_ERR_UNSUPPORTED, "line 2: ADAPTER is not supported");
    parse_err("FROM m\nSYSTEM \"\"\"never\nclosed\n", STRATA_ERR_FORMAT, "line 2: unterminated quoted string");
    parse_err("FROM m\n\nTEMPLATE \"open\n", STRATA_ERR_FORMAT, "line 3: unterminated quoted string");
    parse_err("FROM a\nFROM b\n", STRATA_ERR_FORMAT, "line 2: a second FROM (the first is on line 1)");
    parse_err("FROM\n", STRATA_ERR_FORMAT, "line 1: FROM needs a value");
}

static void test_nul_byte(void **state) {
    (void)state;
    const char text[] = "FROM m\nSYSTEM a\0b\n";
    strata_modelfile *mf = NULL;
    assert_int_equal(strata_modelfile_parse(text, sizeof text - 1, &mf), STRATA_ERR_FORMAT);
    assert_non_null(strstr(strata_last_error(), "line 2: NUL byte"));
}

/* Formats mf, parses the text back, and checks every field survived. */
static void check_roundtrip(const strata_modelfile *mf) {
    char *text = NULL;
    if (strata_modelfile_format(mf, &text) != STRATA_OK) fail_msg("format: %s", strata_last_error());
    strata_modelfile *back = NULL;
    if (strata_modelfile_parse(text, strlen(text), &back) != STRATA_OK)
        fail_msg("reparse of:\n%s\nfailed: %s", text, strata_last_error());
    assert_string_equal(back->from, mf->from);
    if (mf->template_text) assert_string_equal(back->template_text, mf->template_text);
    else assert_null(back->template_text);
    if (mf->system) assert_string_equal(back->system, mf->system);
    else assert_null(back->system);
    assert_int_equal(back->n_licenses, mf->n_licenses);
    for (size_t i = 0; i < mf->n_licenses; i++) assert_string_equal(back->licenses[i], mf->licenses[i]);
    assert_int_equal(back->n_messages, mf->n_messages);
    for (size_t i = 0; i < mf->n_messages; i++) {
        assert_string_equal(back->messages[i].role, mf->messages[i].role);
        assert_string_equal(back->messages[i].content, mf->messages[i].content);
    }
    assert_int_equal(back->n_params, mf->n_params);
    for (size_t i = 0; i < mf->n_params; i++) {
        const strata_param *a = &mf->params[i], *b = strata_modelfile_get_param(back, a->name);
        assert_non_null(b);
        assert_int_equal(a->type, b->type);
        assert_int_equal(a->i, b->i);
        assert_true(a->f == b->f);
        assert_int_equal(a->n_strs, b->n_strs);
        for (size_t j = 0; j < a->n_strs; j++) assert_string_equal(a->strs[j], b->strs[j]);
    }
    strata_modelfile_free(back);
    free(text);
}

static void test_format_roundtrip(void **state) {
    (void)state;
    strata_modelfile *mf = parse_ok("FROM /models/x.gguf\n"
                                    "TEMPLATE \"\"\"{{ .System }}\n{{ .Prompt }} \"\"\"\n"
                                    "SYSTEM \"  leading and trailing  \"\n"
                                    "PARAMETER temperature 0.1\nPARAMETER top_p 0.95\nPARAMETER num_ctx 2048\n"
                                    "PARAMETER stop \"\"\"\"quoted\"\"\"\"\nPARAMETER stop <|im_end|>\n"
                                    "MESSAGE system \"\"\"multi\nline\"\"\"\nMESSAGE user plain\n"
                                    "LICENSE \"\"\"Line 1\nLine \"2\"\n\"\"\"\n");
    assert_string_equal(strata_modelfile_get_param(mf, "stop")->strs[0], "\"quoted\"");
    check_roundtrip(mf);
    /* Values that need each quoting form, built in code. */
    strata_modelfile *m2 = strata_modelfile_new();
    assert_int_equal(strata_modelfile_set_string(&m2->from, "llama3"), STRATA_OK);
    assert_int_equal(strata_modelfile_set_string(&m2->system, ""), STRATA_OK);
    assert_int_equal(strata_modelfile_set_string(&m2->template_text, "\"starts with a quote"), STRATA_OK);
    assert_int_equal(strata_modelfile_add_license(m2, "ends with a quote\""), STRATA_OK);
    assert_int_equal(strata_modelfile_add_license(m2, "\"\"\""), STRATA_OK);
    assert_int_equal(strata_modelfile_add_message(m2, "assistant", "line\"\nnext \"\"\"x"), STRATA_OK);
    assert_int_equal(strata_modelfile_set_param(m2, "repeat_penalty", "1.1"), STRATA_OK);
    assert_int_equal(strata_modelfile_set_param(m2, "stop", " "), STRATA_OK);
    check_roundtrip(m2);
    /* A value no quoting can carry is refused, not written wrong. */
    assert_int_equal(strata_modelfile_set_string(&m2->system, "a\"\"\"\nb\"\nc"), STRATA_OK);
    char *text = NULL;
    assert_int_equal(strata_modelfile_format(m2, &text), STRATA_ERR_UNSUPPORTED);
    assert_null(text);
    strata_modelfile_free(m2);
    strata_modelfile_free(mf);
}

static void test_format_exact(void **state) {
    (void)state;
    strata_modelfile *mf = parse_ok("from x\nparameter stop a\nparameter num_ctx 8\nparameter stop b\nsystem hi\n"
                                    "parameter temperature 0.7\n");
    char *text;
    assert_int_equal(strata_modelfile_format(mf, &text), STRATA_OK);
    assert_string_equal(text, "FROM x\nSYSTEM hi\nPARAMETER stop a\nPARAMETER stop b\nPARAMETER num_ctx 8\n"
                              "PARAMETER temperature 0.7\n");
    free(text);
    strata_modelfile_free(mf);
}

static void test_params_json(void **state) {
    (void)state;
    strata_modelfile *mf = parse_ok("FROM x\nPARAMETER top_k 40\nPARAMETER stop a\nPARAMETER temperature 0.7\n"
                                    "PARAMETER stop \"b\\\"c\"\nPARAMETER seed -3\n");
    char *json;
    assert_int_equal(strata_modelfile_params_to_json(mf, &json), STRATA_OK);
    assert_string_equal(json, "{\"seed\":-3,\"stop\":[\"a\",\"b\\\\\\\"c\"],\"temperature\":0.7,\"top_k\":40}");
    strata_modelfile *back = strata_modelfile_new();
    assert_int_equal(strata_modelfile_params_from_json(back, json, strlen(json)), STRATA_OK);
    char *json2;
    assert_int_equal(strata_modelfile_params_to_json(back, &json2), STRATA_OK);
    assert_string_equal(json, json2);
    free(json2);
    free(json);
    const char *bad[] = {"{\"mirostat\":1}", "{\"num_ctx\":1.5}", "{\"num_ctx\":\"8\"}", "{\"stop\":[1]}", "[1]", "{"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_not_equal(strata_modelfile_params_from_json(back, bad[i], strlen(bad[i])), STRATA_OK);
    /* Lenient reading skips unknown keys only. */
    const char *ollama = "{\"mirostat\":1,\"num_keep\":24,\"num_ctx\":64}";
    strata_modelfile *len_mf = strata_modelfile_new();
    assert_int_equal(strata_modelfile_params_from_json_lenient(len_mf, ollama, strlen(ollama)), STRATA_OK);
    assert_int_equal(len_mf->n_params, 1);
    assert_int_equal(strata_modelfile_get_param(len_mf, "num_ctx")->i, 64);
    assert_int_not_equal(strata_modelfile_params_from_json_lenient(len_mf, "{\"num_ctx\":\"x\"}", 14), STRATA_OK);
    strata_modelfile_free(len_mf);

    assert_int_equal(strata_modelfile_messages_to_json(mf, &json), STRATA_OK);
    assert_string_equal(json, "[]");
    free(json);
    assert_int_equal(strata_modelfile_add_message(back, "user", "q"), STRATA_OK);
    assert_int_equal(strata_modelfile_messages_to_json(back, &json), STRATA_OK);
    assert_string_equal(json, "[{\"role\":\"user\",\"content\":\"q\"}]");
    free(json);
    const char *badm = "[{\"role\":\"robot\",\"content\":\"x\"}]";
    assert_int_not_equal(strata_modelfile_messages_from_json(back, badm, strlen(badm)), STRATA_OK);
    strata_modelfile_free(back);
    strata_modelfile_free(mf);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_instruction),
        cmocka_unit_test(test_all_parameters),
        cmocka_unit_test(test_case_insensitive_and_blanks),
        cmocka_unit_test(test_multiline_and_quotes),
        cmocka_unit_test(test_last_wins),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_nul_byte),
        cmocka_unit_test(test_format_roundtrip),
        cmocka_unit_test(test_format_exact),
        cmocka_unit_test(test_params_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
