/* The official Ollama JavaScript client (npm "ollama") and the OpenAI client (npm "openai")
 * against a real `strata serve`: tests/npm/client_test.mjs drives generate, chat (streamed),
 * list, show, ps and /v1/chat/completions and checks real results.
 *
 * Setup: tests/npm/{package.json,package-lock.json,client_test.mjs} are copied next to the
 * strata binary (BUILD/npm-client) and `npm ci` installs the packages from the npm registry
 * there (node_modules is never in the repository; a second run reuses it). Without node/npm, or
 * when the registry cannot be reached, the test is skipped visibly, except under CI=true, where
 * that is a failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_fixture.h"
#include "fixture_models.h"

static test_server srv;

#define SKIP_OR_FAIL(...)                                       \
    do {                                                        \
        if (testdata_in_ci()) fail_msg(__VA_ARGS__);            \
        print_message("[  SKIP    ] " __VA_ARGS__);             \
        print_message("\n");                                    \
        skip();                                                 \
    } while (0)

/* Runs a shell command (printf-style) with its output appended to log; returns its exit status. */
static int sh(const char *log, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sh(const char *log, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *cmd = NULL, *full = NULL;
    int n = vasprintf(&cmd, fmt, ap);
    va_end(ap);
    assert_true(n >= 0);
    assert_true(asprintf(&full, "( %s ) >>'%s' 2>&1", cmd, log) >= 0);
    int rc = system(full);
    free(cmd);
    free(full);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

static char *read_text(const char *path) {
    size_t n = 0;
    char *t = testdata_read_file(path, &n);
    return t ? t : strdup("(no output)");
}

static void test_npm_clients(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    if (system("command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1") != 0)
        SKIP_OR_FAIL("node and npm are not installed");

    /* The sources sit beside this file: tests/e2e/../npm. */
    char src[4096], work[4096], tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", __FILE__);
    snprintf(src, sizeof src, "%s/../npm", dirname(tmp));
    snprintf(tmp, sizeof tmp, "%s", STRATA_BINARY);
    snprintf(work, sizeof work, "%s/npm-client", dirname(tmp));

    server_start(&srv, NULL);
    char *log = tmpdir_path(srv.dir, "npm.log");
    assert_int_equal(sh(log, "mkdir -p '%s' && cp '%s/package.json' '%s/package-lock.json' '%s/client_test.mjs' '%s/'",
                        work, src, src, src, work),
                     0);
    /* Install unless this lock file's packages are already there. */
    if (sh(log,
           "cd '%s' && { cmp -s package-lock.json node_modules/.package-lock.json.strata && "
           "test -d node_modules/ollama && test -d node_modules/openai || "
           "{ npm ci --no-audit --no-fund && cp package-lock.json node_modules/.package-lock.json.strata; }; }",
           work) != 0) {
        char *out = read_text(log);
        server_stop(&srv);
        free(log);
        SKIP_OR_FAIL("npm ci failed (is the npm registry reachable?): %s", out);
    }

    create_model(&srv, "stories", "stories260K-f32", NULL);
    /* "thinker": stories with a template that opens <think>; "caller": a fixture that answers
     * with one tool call in Qwen's format (fixture_models.h). */
    create_model(&srv, "thinker", "stories260K-f32",
                 "TEMPLATE \"\"\"{{- range .Messages }}{{ if eq .Role \"user\" }}USER: {{ .Content }}\n"
                 "{{ else if eq .Role \"assistant\" }}ASSISTANT: {{ if .Thinking }}<think>{{ .Thinking }}</think>{{ end }}"
                 "{{ .Content }}\n{{ end }}{{ end }}ASSISTANT:{{ if .Think }} <think>{{ end }}\"\"\"\n");
    char *caller = write_caller_gguf(srv.dir);
    char *mf = tmpdir_path(srv.dir, "Modelfile.caller");
    char text[8192];
    snprintf(text, sizeof text, "FROM %s\nTEMPLATE \"\"\"%s\"\"\"\n", caller, tool_template);
    assert_int_equal(tmpdir_write(mf, text, strlen(text)), 0);
    STRATA_OK_RUN("create", "caller", "-f", mf);
    free(mf);
    free(caller);
    int rc = sh(log, "cd '%s' && STRATA_URL='http://%s' STRATA_MODEL=stories node client_test.mjs", work, srv.host);
    char *out = read_text(log);
    if (rc != 0) fail_msg("node client_test.mjs: exit %d\n%s", rc, out);
    assert_non_null(strstr(out, "all 17 steps passed"));
    print_message("%s", strstr(out, "ok - ") ? strstr(out, "ok - ") : out);
    free(out);
    free(log);
}

static int teardown(void **state) {
    (void)state;
    server_stop(&srv);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_npm_clients, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
