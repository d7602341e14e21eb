/* The client commands end to end: the real binary against a real `strata serve` on a free
 * loopback port, with its own model store (client_fixture.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <cJSON.h>
#include <math.h>

#include "client/client.h"
#include "client_fixture.h"

static test_server srv;

static int setup(void **state) {
    (void)state;
    if (!testdata_dir()) return 0; /* each test skips (or fails under CI) through TESTDATA_REQUIRE */
    server_start(&srv, NULL);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    server_stop(&srv);
    return 0;
}

/* The line of `text` that starts with `prefix`, copied into buf; NULL when there is none. */
static const char *line_starting(const char *text, const char *prefix, char *buf, size_t cap) {
    for (const char *p = text; p && *p;) {
        const char *end = strchr(p, '\n');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (strncmp(p, prefix, strlen(prefix)) == 0) {
            snprintf(buf, cap, "%.*s", (int)n, p);
            return buf;
        }
        p = end ? end + 1 : NULL;
    }
    return NULL;
}

static void test_create_list_show(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    create_model(&srv, "stories", "stories260K-f32", "PARAMETER temperature 0\nPARAMETER stop \"<|end|>\"\nSYSTEM \"\"\"You tell stories.\"\"\"\n");
    proc_result r = strata("list", NULL);
    assert_int_equal(r.exit_code, 0);
    char line[512];
    /* Ollama's columns: NAME ID SIZE MODIFIED, padded to the widest cell plus four spaces. */
    assert_non_null(line_starting(r.out, "NAME              ID              SIZE      MODIFIED", line, sizeof line));
    if (!line_starting(r.out, "stories:latest    ", line, sizeof line)) fail_msg("list: [%s]", r.out);
    assert_non_null(strstr(line, " MB    ")); /* 1.2 MB of F32 weights */
    assert_non_null(strstr(line, "ago"));
    proc_result_free(&r);

    r = strata("show", "stories", NULL);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "  Model\n"));
    assert_non_null(line_starting(r.out, "    architecture        llama", line, sizeof line));
    assert_non_null(line_starting(r.out, "    context length      ", line, sizeof line));
    assert_non_null(strstr(r.out, "  Parameters\n"));
    assert_non_null(strstr(r.out, "    temperature    0\n"));
    assert_non_null(strstr(r.out, "  System\n    You tell stories.\n"));
    proc_result_free(&r);

    r = strata("show", "stories", "--modelfile", NULL);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "\nFROM "));
    assert_non_null(strstr(r.out, "PARAMETER temperature 0"));
    proc_result_free(&r);
    r = strata("show", "stories", "--system", NULL);
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.out, "You tell stories.");
    proc_result_free(&r);
    r = strata("show", "stories", "--parameters", NULL);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "temperature"));
    assert_non_null(strstr(r.out, "<|end|>"));
    proc_result_free(&r);
    r = strata("show", "stories", "--template", NULL);
    assert_int_equal(r.exit_code, 0);
    proc_result_free(&r);
    r = strata("show", "stories", "--system", "--template", NULL);
    assert_int_equal(r.exit_code, 1);
    assert_non_null(strstr(r.err, "only one of"));
    proc_result_free(&r);

    /* FROM an existing model inherits it; a relative FROM path is taken from the Modelfile's
     * folder (here a copy of the weights next to it). */
    char *mf = tmpdir_path(srv.dir, "Derived");
    assert_int_equal(tmpdir_write(mf, "FROM stories\nPARAMETER num_ctx 64\n", 34), 0);
    STRATA_OK_RUN("create", "derived", "-f", mf);
    r = strata("show", "derived", "--parameters", NULL);
    assert_non_null(strstr(r.out, "num_ctx"));
    assert_non_null(strstr(r.out, "temperature"));
    proc_result_free(&r);
    free(mf);
    char *src = testdata_path("models/stories260K-Q8_0.gguf"), *dst = tmpdir_path(srv.dir, "local.gguf");
    size_t size = 0;
    void *bytes = testdata_read_file(src, &size);
    assert_non_null(bytes);
    assert_int_equal(tmpdir_write(dst, bytes, size), 0);
    free(bytes);
    mf = tmpdir_path(srv.dir, "Relative");
    assert_int_equal(tmpdir_write(mf, "FROM ./local.gguf\n", 18), 0);
    STRATA_OK_RUN("create", "relative", "-f", mf);
    r = strata("show", "relative", NULL);
    assert_non_null(strstr(r.out, "quantization        Q8_0"));
    proc_result_free(&r);
    free(mf);
    free(src);
    free(dst);

    /* A .gguf file is still shown from its header, without the server. */
    char *file = testdata_path("models/stories260K-f32.gguf");
    r = strata("show", file, NULL);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "llama"));
    proc_result_free(&r);
    free(file);
}

static void test_run_reproduces_reference(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    create_model(&srv, "stories", "stories260K-f32", NULL);
    /* One-shot through /api/generate: only the generated text on stdout. */
    proc_result r = strata("run", "stories", "Once upon a time", "--temperature", "0", "--num-predict", "64", NULL);
    if (r.exit_code != 0 || strcmp(r.out, client_greedy_ref) != 0)
        fail_msg("rc %d, stdout [%s], stderr [%s]", r.exit_code, r.out, r.err);
    proc_result_free(&r);

    /* Piped standard input is the prompt; --verbose adds Ollama's statistics on stderr. */
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "printf 'Once upon a time' | '%s' run stories --temperature 0 --num_predict 64 --verbose 2>'%s/err.txt'",
             STRATA_BINARY, srv.dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char out[4096];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    assert_int_equal(pclose(p), 0);
    assert_string_equal(out, client_greedy_ref);
    char *errpath = tmpdir_path(srv.dir, "err.txt");
    size_t elen = 0;
    char *err = testdata_read_file(errpath, &elen);
    assert_non_null(err);
    char line[256];
    static const char *const stats[] = {"total duration:       ", "load duration:        ", "prompt eval count:    ",
                                        "prompt eval duration: ", "prompt eval rate:     ", "eval count:           ",
                                        "eval duration:        ", "eval rate:            "};
    for (size_t i = 0; i < sizeof stats / sizeof stats[0]; i++)
        if (!line_starting(err, stats[i], line, sizeof line)) fail_msg("no '%s' in stderr [%s]", stats[i], err);
    /* 64 tokens were asked for and the reference text is that long. */
    assert_non_null(line_starting(err, "eval count:           64 token(s)", line, sizeof line));
    free(err);
    free(errpath);
}

static void test_ps_stop(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    create_model(&srv, "stories", "stories260K-f32", NULL);
    proc_result r = strata("ps", NULL);
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.out, "NAME    ID    SIZE    PROCESSOR    CONTEXT    UNTIL\n");
    proc_result_free(&r);

    STRATA_OK_RUN("run", "stories", "Once", "--num_predict", "2", "--num_ctx", "96");
    r = strata("ps", NULL);
    assert_int_equal(r.exit_code, 0);
    char line[512];
    assert_non_null(line_starting(r.out, "NAME              ID              SIZE      PROCESSOR    CONTEXT    UNTIL", line,
                                  sizeof line));
    if (!line_starting(r.out, "stories:latest    ", line, sizeof line)) fail_msg("ps: [%s]", r.out);
    /* The CPU holds everything; the context is the one asked for; five minutes by default. */
    assert_non_null(strstr(line, "    100% CPU     96         "));
    assert_non_null(strstr(line, "minutes from now"));
    proc_result_free(&r);

    /* --verbose: a row per device with its layers, allocated and planned bytes. */
    r = strata("ps", "--verbose", NULL);
    assert_int_equal(r.exit_code, 0);
    if (!line_starting(r.out, "  cpu (layers 0-", line, sizeof line)) fail_msg("ps --verbose: [%s]", r.out);
    assert_non_null(strstr(line, "CPU"));
    assert_non_null(strstr(line, "planned "));
    proc_result_free(&r);

    /* stop unloads (keep_alive 0); stopping what is not loaded is an error. */
    STRATA_OK_RUN("stop", "stories");
    r = strata("ps", NULL);
    assert_string_equal(r.out, "NAME    ID    SIZE    PROCESSOR    CONTEXT    UNTIL\n");
    proc_result_free(&r);
    r = strata("stop", "stories", NULL);
    assert_int_equal(r.exit_code, 1);
    assert_string_equal(r.err, "strata: couldn't find model \"stories\" to stop\n");
    proc_result_free(&r);
}

/* On a simulated GPU beside the CPU: the per-device rows of `ps --verbose` are the server's plan
 * (layers and planned bytes of /api/ps "devices"), and PROCESSOR is Ollama's rule applied to the
 * bytes each device holds (allocated, plus the mapped weights for the CPU). */
static void test_ps_devices(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    server_stop(&srv);
    server_start(&srv, "STRATA_DEVICES=sim:1GiB:100:gpu0,cpu");
    create_model(&srv, "stories", "stories260K-f32", NULL);
    STRATA_OK_RUN("run", "stories", "Once", "--num_predict", "2", "--num_gpu", "3");

    strata_client *c = NULL;
    assert_int_equal(strata_client_open(srv.host, &c), STRATA_OK);
    cJSON *ps = NULL;
    assert_int_equal(strata_client_call(c, "GET", "/api/ps", NULL, &ps), STRATA_OK);
    strata_client_free(c);
    const cJSON *m = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(ps, "models"), 0);
    const cJSON *devs = cJSON_GetObjectItemCaseSensitive(m, "devices");
    assert_int_equal(cJSON_GetArraySize(devs), 2);
    double total = 0, gpu = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, devs) {
        bool cpu = strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "kind")), "cpu") == 0;
        double b = cJSON_GetObjectItemCaseSensitive(d, "allocated_bytes")->valuedouble;
        if (cpu) b += cJSON_GetObjectItemCaseSensitive(d, "weights_bytes")->valuedouble;
        total += b;
        if (!cpu) gpu += b;
    }
    char expect[64];
    if (gpu == 0)
        snprintf(expect, sizeof expect, "    100%% CPU ");
    else if (gpu == total)
        snprintf(expect, sizeof expect, "    100%% GPU ");
    else
        snprintf(expect, sizeof expect, "    %d%%/%d%% CPU/GPU ", (int)round((total - gpu) / total * 100),
                 100 - (int)round((total - gpu) / total * 100));

    proc_result r = strata("ps", "--verbose", NULL);
    assert_int_equal(r.exit_code, 0);
    char line[512];
    if (!line_starting(r.out, "stories:latest    ", line, sizeof line)) fail_msg("ps: [%s]", r.out);
    if (!strstr(line, expect)) fail_msg("ps: [%s] lacks [%s]", line, expect);
    cJSON_ArrayForEach(d, devs) {
        char row[128], planned[64];
        snprintf(row, sizeof row, "  %s (layers %d-%d)", cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "name")),
                 (int)cJSON_GetObjectItemCaseSensitive(d, "layer_start")->valuedouble,
                 (int)cJSON_GetObjectItemCaseSensitive(d, "layer_end")->valuedouble - 1);
        if (!line_starting(r.out, row, line, sizeof line)) fail_msg("no row [%s] in [%s]", row, r.out);
        snprintf(planned, sizeof planned, "planned ");
        assert_non_null(strstr(line, planned));
    }
    /* num_gpu 3 of 6: the simulated GPU holds the last three. */
    assert_non_null(line_starting(r.out, "  gpu0 (layers 3-5)", line, sizeof line));
    assert_non_null(strstr(line, "GPU"));
    proc_result_free(&r);
    cJSON_Delete(ps);
}

static void test_cp_rm_and_server_errors(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    create_model(&srv, "stories", "stories260K-Q8_0", NULL);
    proc_result r = strata("cp", "stories", "copy:v1", NULL);
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.out, "copied 'stories' to 'copy:v1'\n");
    proc_result_free(&r);
    r = strata("list", "copy", NULL);
    char line[512];
    assert_non_null(line_starting(r.out, "copy:v1    ", line, sizeof line));
    assert_null(strstr(r.out, "stories"));
    proc_result_free(&r);
    r = strata("rm", "copy:v1", NULL);
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.out, "deleted 'copy:v1'\n");
    proc_result_free(&r);
    r = strata("list", NULL);
    assert_null(strstr(r.out, "copy:v1"));
    proc_result_free(&r);

    /* Errors the server sends come out as one line, its message verbatim. */
    r = strata("rm", "nosuch", NULL);
    assert_int_equal(r.exit_code, 1);
    assert_non_null(strstr(r.err, "strata: "));
    assert_non_null(strstr(r.err, "nosuch"));
    assert_int_equal(proc_count_lines(r.err), 1);
    proc_result_free(&r);
    r = strata("run", "nosuch", "hello", NULL);
    assert_int_equal(r.exit_code, 1);
    assert_non_null(strstr(r.err, "nosuch"));
    assert_string_equal(r.out, "");
    proc_result_free(&r);
    r = strata("show", "nosuch", NULL);
    assert_int_equal(r.exit_code, 1);
    assert_non_null(strstr(r.err, "nosuch"));
    proc_result_free(&r);

    /* A Modelfile error is found before anything is sent, with its line number. */
    char *mf = tmpdir_path(srv.dir, "Bad");
    assert_int_equal(tmpdir_write(mf, "FROM x.gguf\nPARAMETER nonsense 1\n", 33), 0);
    r = strata("create", "bad", "-f", mf, NULL);
    assert_int_equal(r.exit_code, 1);
    assert_non_null(strstr(r.err, "line 2"));
    proc_result_free(&r);
    free(mf);
}

/* A one-file HTTP server on a free loopback port, in a child process: GET /model.gguf answers
 * the file, anything else 404. Returns its pid; *port is where it listens. */
static pid_t serve_file(const char *path, unsigned *port) {
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(ls >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = 0};
    assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(ls, 8), 0);
    socklen_t alen = sizeof a;
    assert_int_equal(getsockname(ls, (struct sockaddr *)&a, &alen), 0);
    *port = ntohs(a.sin_port);
    size_t size = 0;
    char *data = testdata_read_file(path, &size);
    assert_non_null(data);
    pid_t parent = getpid();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid > 0) {
        close(ls);
        free(data);
        return pid;
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(0);
    for (;;) {
        int c = accept(ls, NULL, NULL);
        if (c < 0) continue;
        char req[4096];
        size_t n = 0;
        while (n < sizeof req - 1 && !memmem(req, n, "\r\n\r\n", 4)) {
            ssize_t r = read(c, req + n, sizeof req - 1 - n);
            if (r <= 0) break;
            n += (size_t)r;
        }
        req[n] = 0;
        char head[256];
        if (strncmp(req, "GET /model.gguf ", 16) == 0) {
            int h = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", size);
            if (write(c, head, (size_t)h) == h) {
                for (size_t off = 0; off < size;) {
                    ssize_t w = write(c, data + off, size - off);
                    if (w <= 0) break;
                    off += (size_t)w;
                }
            }
        } else {
            int h = snprintf(head, sizeof head, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            if (write(c, head, (size_t)h) != h) { /* the client went away */ }
        }
        close(c);
    }
}

static void test_pull(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    char *file = testdata_path("models/stories260K-Q8_0.gguf");
    unsigned port = 0;
    pid_t web = serve_file(file, &port);
    char url[128], missing[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/model.gguf", port);
    snprintf(missing, sizeof missing, "http://127.0.0.1:%u/nothing.gguf", port);
    proc_result r = strata("pull", url, NULL);
    proc_result r404 = strata("pull", missing, NULL);
    proc_result gen = strata("run", "model", "Once upon a time", "--temperature", "0", "--num_predict", "64", NULL);
    kill(web, SIGKILL);
    waitpid(web, NULL, 0);
    /* Not a terminal: one plain line per status on stderr, nothing on stdout. */
    if (r.exit_code != 0) fail_msg("pull: rc %d, stderr [%s]", r.exit_code, r.err);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(r.err, "success\n"));
    assert_null(strstr(r.err, "\r"));
    proc_result_free(&r);
    assert_int_equal(r404.exit_code, 1);
    assert_non_null(strstr(r404.err, "404"));
    proc_result_free(&r404);
    /* The pulled model is named after the file and generates the reference text. */
    if (gen.exit_code != 0 || strcmp(gen.out, client_greedy_ref) != 0)
        fail_msg("run model: rc %d, stdout [%s], stderr [%s]", gen.exit_code, gen.out, gen.err);
    proc_result_free(&gen);
    r = strata("list", "model", NULL);
    char line[256];
    assert_non_null(line_starting(r.out, "model:latest    ", line, sizeof line));
    proc_result_free(&r);
    free(file);
}

static void test_no_server(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    /* Nothing listens on the port of a stopped server. */
    char host[64];
    snprintf(host, sizeof host, "%s", srv.host);
    server_stop(&srv);
    setenv("STRATA_HOST", host, 1);
    static const char *const cmds[][3] = {{"list", NULL, NULL}, {"ps", NULL, NULL}, {"run", "stories", "hi"},
                                          {"show", "stories", NULL}, {"stop", "stories", NULL}};
    char expect[256];
    snprintf(expect, sizeof expect, "strata: could not connect to the strata server at %s (is `strata serve` running?)\n",
             host);
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        proc_result r = strata(cmds[i][0], cmds[i][1], cmds[i][2], NULL);
        assert_int_equal(r.exit_code, 1);
        assert_string_equal(r.err, expect);
        proc_result_free(&r);
    }
    /* A .gguf path with no server runs in-process. */
    char *file = testdata_path("models/stories260K-f32.gguf");
    proc_result r = strata("run", file, "Once upon a time", "--temperature", "0", "--num_predict", "64", NULL);
    if (r.exit_code != 0 || strcmp(r.out, client_greedy_ref) != 0)
        fail_msg("rc %d, stdout [%s], stderr [%s]", r.exit_code, r.out, r.err);
    proc_result_free(&r);
    free(file);
}

/* What the in-process engine continues a raw prompt (standard input) with, greedily. */
static char *continuation(const char *prompt) {
    char *model = testdata_path("models/stories260K-f32.gguf");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "printf '%s' | '%s' run '%s' --temperature 0 --num-predict 16 2>/dev/null", prompt,
             STRATA_BINARY, model);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char *out = calloc(4096, 1);
    size_t n = fread(out, 1, 4095, p);
    out[n] = 0;
    assert_int_equal(pclose(p), 0);
    free(model);
    return out;
}

/* run --think: the reasoning printed between Ollama's "Thinking..." and "...done thinking.",
 * equal to what the model continues the template's prompt (which opens <think>) with;
 * --think=false gives the answer of the prompt without it; --hidethinking hides the
 * reasoning; a model without thinking refuses --think with Ollama's wording. */
static void test_run_think(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    create_model(&srv, "thinker", "stories260K-f32",
                 "TEMPLATE \"\"\"{{- range .Messages }}{{ if eq .Role \"user\" }}USER: {{ .Content }}\n"
                 "{{ else if eq .Role \"assistant\" }}ASSISTANT: {{ if .Thinking }}<think>{{ .Thinking }}</think>{{ end }}"
                 "{{ .Content }}\n{{ end }}{{ end }}ASSISTANT:{{ if .Think }} <think>{{ end }}\"\"\"\n");
    create_model(&srv, "stories", "stories260K-f32", NULL);
    char *thought = continuation("USER: Once upon a time\\nASSISTANT: <think>");
    char *plain = continuation("USER: Once upon a time\\nASSISTANT:");
    char want[8192];
    snprintf(want, sizeof want, "Thinking...\n%s\n...done thinking.\n\n", thought + strspn(thought, " \n"));
    proc_result r = strata("run", "thinker", "Once upon a time", "--think", "--temperature", "0", "--num-predict", "16", NULL);
    if (r.exit_code != 0 || strcmp(r.out, want) != 0) fail_msg("rc %d, stdout [%s], want [%s], stderr [%s]", r.exit_code, r.out, want, r.err);
    proc_result_free(&r);
    r = strata("run", "thinker", "Once upon a time", "--think=false", "--temperature", "0", "--num-predict", "16", NULL);
    if (r.exit_code != 0 || strcmp(r.out, plain) != 0) fail_msg("rc %d, stdout [%s], want [%s]", r.exit_code, r.out, plain);
    proc_result_free(&r);
    r = strata("run", "thinker", "Once upon a time", "--think=high", "--hidethinking", "--temperature", "0", "--num-predict", "16", NULL);
    if (r.exit_code != 0 || strcmp(r.out, "") != 0) fail_msg("rc %d, stdout [%s]", r.exit_code, r.out);
    proc_result_free(&r);
    r = strata("run", "stories", "Once upon a time", "--think", NULL);
    if (r.exit_code == 0 || !strstr(r.err, "\"stories\" does not support thinking")) fail_msg("rc %d, stderr [%s]", r.exit_code, r.err);
    proc_result_free(&r);
    r = strata("run", "thinker", "x", "--think=much", NULL);
    assert_int_not_equal(r.exit_code, 0);
    assert_non_null(strstr(r.err, "--think"));
    proc_result_free(&r);
    free(thought);
    free(plain);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_list_show, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_reproduces_reference, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_think, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ps_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ps_devices, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cp_rm_and_server_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pull, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_server, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
