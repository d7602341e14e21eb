/* Model name parsing: defaults, display forms, and a table of names that must be refused
 * (path traversal above all). */
#include "testdata.h"

#include <string.h>

#include "store/store.h"

static void test_defaults_and_display(void **state) {
    (void)state;
    static const struct {
        const char *in, *host, *ns, *model, *tag, *display;
    } cases[] = {
        {"llama3", "registry.ollama.ai", "library", "llama3", "latest", "llama3:latest"},
        {"llama3:8b", "registry.ollama.ai", "library", "llama3", "8b", "llama3:8b"},
        {"Llama3:8B-Instruct", "registry.ollama.ai", "library", "llama3", "8b-instruct", "llama3:8b-instruct"},
        {"me/tiny", "registry.ollama.ai", "me", "tiny", "latest", "me/tiny:latest"},
        {"hf.co/some_user/Model.v2-GGUF:Q4_K_M", "hf.co", "some_user", "model.v2-gguf", "q4_k_m",
         "hf.co/some_user/model.v2-gguf:q4_k_m"},
        {"localhost:5000/ns/m:_t", "localhost:5000", "ns", "m", "_t", "localhost:5000/ns/m:_t"},
        {"registry.ollama.ai/library/qwen2.5:0.5b", "registry.ollama.ai", "library", "qwen2.5", "0.5b", "qwen2.5:0.5b"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        strata_model_name n;
        if (strata_model_name_parse(cases[i].in, &n) != STRATA_OK) fail_msg("%s: %s", cases[i].in, strata_last_error());
        assert_string_equal(n.host, cases[i].host);
        assert_string_equal(n.ns, cases[i].ns);
        assert_string_equal(n.model, cases[i].model);
        assert_string_equal(n.tag, cases[i].tag);
        char buf[600];
        strata_model_name_display(&n, buf, sizeof buf);
        assert_string_equal(buf, cases[i].display);
        /* The display form parses back to the same name. */
        strata_model_name back;
        assert_int_equal(strata_model_name_parse(buf, &back), STRATA_OK);
        assert_memory_equal(&back, &n, sizeof n);
    }
    strata_model_name n;
    assert_int_equal(strata_model_name_parse("x", &n), STRATA_OK);
    char full[600];
    strata_model_name_full(&n, full, sizeof full);
    assert_string_equal(full, "registry.ollama.ai/library/x:latest");
}

static void test_rejected(void **state) {
    (void)state;
    static const struct {
        const char *in, *why;
    } bad[] = {
        {"", "empty"},
        {"..", "model must start with a letter or digit"},
        {".", "model must start"},
        {"../../etc/passwd", "host"},
        {"../x", "namespace must start"},
        {"a/../b", "namespace must start"},
        {"x:..", "tag must start"},
        {"x:../../y", "host has a bad port"},
        {"/etc/passwd", "host is empty"},
        {"a/b/c/d", "more than host/namespace/model"},
        {"x/", "model is empty"},
        {"x:", "tag is empty"},
        {":tag", "model is empty"},
        {"a//b", "namespace is empty"},
        {"a\\b", "only letters, digits"},
        {"a b", "only letters, digits"},
        {"a\tb", "only letters, digits"},
        {"caf\xc3\xa9", "only letters, digits"},
        {"-x", "model must start"},
        {"x:-y", "tag must start"},
        {"x:y:z", "model has a character outside"},
        {"m@sha256-abc", "model has a character outside"},
        {"my.ns/m", "namespace has a character outside"},
        {"a..b/n/m", "host has '..'"},
        {"host:99999999/n/m", "host has a bad port"},
        {"host:/n/m", "host has a bad port"},
        {"x:" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "tag is too long"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        strata_model_name n;
        strata_status st = strata_model_name_parse(bad[i].in, &n);
        if (st != STRATA_ERR_INVALID || !strstr(strata_last_error(), bad[i].why))
            fail_msg("'%s': expected '%s', got %d '%s'", bad[i].in, bad[i].why, st, strata_last_error());
    }
    strata_model_name n;
    assert_int_equal(strata_model_name_parse(NULL, &n), STRATA_ERR_INVALID);
}

static void test_digest_valid(void **state) {
    (void)state;
    assert_true(strata_digest_valid("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
    assert_false(strata_digest_valid("sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"));
    assert_false(strata_digest_valid("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde"));
    assert_false(strata_digest_valid("sha256-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
    assert_false(strata_digest_valid("sha256:../../../../../etc/passwd0123456789abcdef0123456789abcdef01234"));
    assert_false(strata_digest_valid(NULL));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_display),
        cmocka_unit_test(test_rejected),
        cmocka_unit_test(test_digest_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
