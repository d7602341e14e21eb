/* `strata serve` under clients that hold resources or come from where they should not
 * (issue 19): slow readers and half-sent requests, uploads and pulls without limits,
 * shutdown with work in flight, and who may talk to the server (Host, Origin, API key).
 * End to end over real HTTP on 127.0.0.1; every wait is bounded, nothing asserts on speed. */
#include <sys/stat.h>

#include "hostile_util.h"
#include "store/sha256.h"
#include "store/store.h"

/* 5. Half-sent requests and idle connections are closed after STRATA_HTTP_TIMEOUT; a stream
 * whose client stops reading does not buffer without limit: it is cancelled. */
static void test_slow_and_idle_connections(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    const char *env[] = {"STRATA_HTTP_TIMEOUT=2", NULL};
    test_server s;
    server_start(&s, env);
    create_model(&s, "stories", STORIES);
    enum { N = 16 };
    int fds[N];
    for (int i = 0; i < N; i++) {
        fds[i] = raw_connect(s.port, 0);
        if (i % 2) raw_send(fds[i], "POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{\"mo");
        else raw_send(fds[i], "GET /api/ver"); /* half a request line */
    }
    int idle = raw_connect(s.port, 0); /* says nothing at all */
    for (int i = 0; i < N; i++) {
        if (!raw_closed_within(fds[i], 30)) fail_msg("half-sent connection %d still open", i);
        close(fds[i]);
    }
    assert_true(raw_closed_within(idle, 30));
    close(idle);

    /* A streaming client that never reads. */
    int fd = raw_connect(s.port, 4096);
    raw_send(fd, "POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 120\r\n\r\n");
    char body[121];
    snprintf(body, sizeof body, "%-120s",
             "{\"model\":\"stories\",\"prompt\":\"Once\",\"options\":{\"num_predict\":2000000000,\"num_ctx\":64,\"temperature\":0}}");
    raw_send(fd, body);
    assert_true(log_wait(&s, "client stopped reading", 120));
    assert_true(log_wait(&s, "generation cancelled for stories:latest", 30));
    close(fd);
    /* Still serving. */
    char *out = NULL;
    assert_int_equal(post(&s, "/api/generate", &out,
                          "{\"model\":\"stories\",\"prompt\":\"Once\",\"stream\":false,\"options\":{\"num_predict\":3}}"),
                     200);
    free(out);
    server_stop(&s);
}

/* 8. Uploads have a size limit and a digest mismatch leaves nothing; a pull from an origin
 * that stalls fails after STRATA_PULL_STALL_TIMEOUT. */
static void test_upload_and_pull_limits(void **state) {
    (void)state;
    const char *env[] = {"STRATA_MAX_UPLOAD=4096", "STRATA_PULL_STALL_TIMEOUT=2", NULL};
    test_server s;
    server_start(&s, env);
    static char big[8192];
    memset(big, 'x', sizeof big);
    char digest[STRATA_DIGEST_SIZE], path[128], *out = NULL;
    assert_int_equal(strata_sha256_digest(big, sizeof big, digest), STRATA_OK);
    snprintf(path, sizeof path, "/api/blobs/%s", digest);
    assert_int_equal(http_req(&s, "POST", path, big, sizeof big, &out, 0), 413);
    free(out);
    /* A body that does not hash to its name. */
    const char *bytes = "these bytes are not what the digest names";
    assert_int_equal(strata_sha256_digest("something else", 14, digest), STRATA_OK);
    snprintf(path, sizeof path, "/api/blobs/%s", digest);
    assert_int_equal(http_req(&s, "POST", path, bytes, strlen(bytes), &out, 0), 400);
    assert_non_null(strstr(out, "digest mismatch"));
    free(out);
    assert_int_equal(blob_files(&s, "sha256-"), 0);
    assert_int_equal(blob_files(&s, ".tmp-"), 0);
    assert_int_equal(http_json(&s, "HEAD", path, NULL, NULL), 404);
    /* A stalled origin. */
    static char part[1024] = "GGUF";
    origin o;
    origin_start(&o, part, sizeof part, 50u << 20, true);
    long st = post(&s, "/api/pull", &out, "{\"model\":\"stall\",\"url\":\"http://127.0.0.1:%d/stall.gguf\",\"stream\":false}", o.port);
    origin_stop(&o);
    if (st < 400 || !strstr(out, "stalled")) fail_msg("pull from a stalled origin: %ld %s", st, out);
    free(out);
    assert_int_equal(blob_files(&s, ".tmp-"), 0);
    server_stop(&s);
}

/* 11. SIGTERM with work in flight (a generation that would run for hours, a client that does
 * not read its stream, a create from a FIFO): the server exits, cleanly, within the bound. */
static void test_shutdown_with_work_in_flight(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    test_server s;
    server_start(&s, NULL);
    create_model(&s, "stories", STORIES);
    create_model(&s, "other", STORIES);
    bg_req gen;
    bg_start(&gen, &s, "/api/generate",
             "{\"model\":\"stories\",\"prompt\":\"Once\",\"stream\":false,\"options\":{\"num_predict\":2000000000,"
             "\"num_ctx\":64}}");
    int fd = raw_connect(s.port, 4096);
    raw_send(fd, "POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 101\r\n\r\n");
    char body[102];
    snprintf(body, sizeof body, "%-101s", "{\"model\":\"other\",\"prompt\":\"Once\",\"options\":{\"num_predict\":2000000000,\"num_ctx\":64}}");
    raw_send(fd, body);
    char *fifo = tmpdir_path(s.dir, "fifo.gguf");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    char create[1024];
    snprintf(create, sizeof create, "{\"model\":\"x\",\"from\":\"%s\"}", fifo);
    bg_req cr;
    bg_start(&cr, &s, "/api/create", create);
    for (int i = 0; i < 3000 && ps_count(&s, NULL, 0) < 2; i++) sleep_ms(10);
    assert_int_equal(ps_count(&s, NULL, 0), 2);
    /* server_stop: SIGTERM, then at most 20 s before it counts as a hang (the bound is 10 s). */
    int status = server_stop_keep(&s);
    if (status == -1) fail_msg("the server did not exit within 20 s of SIGTERM");
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    close(fd);
    bg_join(&gen);
    bg_join(&cr);
    /* The store is consistent: a new server lists both models. */
    test_server again;
    server_start_in(&again, NULL, s.models);
    char *out = NULL;
    assert_int_equal(http_json(&again, "GET", "/api/tags", NULL, &out), 200);
    assert_non_null(strstr(out, "stories:latest"));
    assert_non_null(strstr(out, "other:latest"));
    free(out);
    server_stop(&again);
    free(fifo);
    server_cleanup(&s);
}

/* 13. Host and Origin: a page on another site (or a DNS-rebinding name) is refused with 403
 * and changes nothing; local origins and configured ones are allowed, with CORS headers and
 * preflights; STRATA_API_KEY demands a bearer token (and the CLI sends it). */
static void test_origin_host_and_key(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    const char *env[] = {"STRATA_ORIGINS=http://good.example, https://*.trusted.example", "OLLAMA_ORIGINS=http://ollama.example",
                         NULL};
    test_server s;
    server_start(&s, env);
    create_model(&s, "stories", STORIES);
    const char *evil[] = {"Origin: http://evil.example", "Content-Type: text/plain", NULL};
    char *out = NULL;
    assert_int_equal(http_req_ex(&s, "POST", "/api/copy", "{\"source\":\"stories\",\"destination\":\"stolen\"}", evil, 0, &out), 403);
    free(out);
    const char *rebind[] = {"Host: attacker.example", NULL};
    assert_int_equal(http_req_ex(&s, "POST", "/api/copy", "{\"source\":\"stories\",\"destination\":\"stolen\"}", rebind, 0, &out),
                     403);
    free(out);
    const char *rebind_port[] = {"Host: attacker.example:11434", NULL};
    assert_int_equal(http_req_ex(&s, "DELETE", "/api/delete", "{\"model\":\"stories\"}", rebind_port, 0, &out), 403);
    free(out);
    assert_int_equal(http_json(&s, "POST", "/api/show", "{\"model\":\"stolen\"}", NULL), 404);
    assert_int_equal(http_json(&s, "POST", "/api/show", "{\"model\":\"stories\"}", NULL), 200);
    /* Allowed: loopback names and local or configured origins. */
    const char *hosts[] = {"Host: localhost:11434", "Host: 127.0.0.1", "Host: [::1]:80", "Host: app.localhost", NULL};
    for (int i = 0; hosts[i]; i++) {
        const char *h[] = {hosts[i], NULL};
        if (http_req_ex(&s, "GET", "/api/version", NULL, h, 0, NULL) != 200) fail_msg("%s refused", hosts[i]);
    }
    const char *good[] = {"http://localhost:3000", "https://127.0.0.1", "app://obsidian.md", "tauri://localhost",
                          "http://good.example", "https://a.trusted.example", "http://ollama.example", NULL};
    for (int i = 0; good[i]; i++) {
        char origin_h[128], *hdrs = NULL;
        snprintf(origin_h, sizeof origin_h, "Origin: %s", good[i]);
        const char *h[] = {origin_h, NULL};
        long st = http_headers(&s, "GET", "/api/tags", NULL, h, &hdrs);
        char want[160];
        snprintf(want, sizeof want, "Access-Control-Allow-Origin: %s", good[i]);
        if (st != 200 || !strstr(hdrs, want)) fail_msg("origin %s: %ld %s", good[i], st, hdrs);
        free(hdrs);
        /* The preflight a browser sends first. */
        const char *pre[] = {origin_h, "Access-Control-Request-Method: POST", "Access-Control-Request-Headers: content-type",
                             NULL};
        st = http_headers(&s, "OPTIONS", "/api/chat", NULL, pre, &hdrs);
        if (st != 204 || !strstr(hdrs, want) || !strstr(hdrs, "Access-Control-Allow-Methods"))
            fail_msg("preflight from %s: %ld %s", good[i], st, hdrs);
        free(hdrs);
    }
    const char *bad_origins[] = {"http://evil.example", "http://localhost.evil.example", "http://localhost:80.evil.example",
                                 "https://trusted.example.evil", "null", NULL};
    for (int i = 0; bad_origins[i]; i++) {
        char origin_h[128], *hdrs = NULL;
        snprintf(origin_h, sizeof origin_h, "Origin: %s", bad_origins[i]);
        const char *pre[] = {origin_h, "Access-Control-Request-Method: POST", NULL};
        if (http_headers(&s, "OPTIONS", "/api/chat", NULL, pre, &hdrs) != 403) fail_msg("preflight from %s allowed", bad_origins[i]);
        free(hdrs);
    }
    server_stop(&s);

    /* The bearer token. */
    const char *key_env[] = {"STRATA_API_KEY=s3cret-key", NULL};
    server_start(&s, key_env);
    assert_int_equal(http_json(&s, "GET", "/api/tags", NULL, NULL), 401);
    const char *wrong[] = {"Authorization: Bearer s3cret-kez", NULL};
    assert_int_equal(http_req_ex(&s, "GET", "/api/tags", NULL, wrong, 0, NULL), 401);
    const char *right[] = {"Authorization: Bearer s3cret-key", NULL};
    assert_int_equal(http_req_ex(&s, "GET", "/api/tags", NULL, right, 0, NULL), 200);
    char host[64];
    snprintf(host, sizeof host, "127.0.0.1:%d", s.port);
    setenv("STRATA_HOST", host, 1);
    char *argv[] = {STRATA_BINARY, "list", NULL};
    proc_result r;
    setenv("STRATA_API_KEY", "s3cret-key", 1);
    assert_int_equal(proc_run(argv, &r), 0);
    unsetenv("STRATA_API_KEY");
    if (r.exit_code != 0) fail_msg("strata list with the key: %s", r.err);
    proc_result_free(&r);
    assert_int_equal(proc_run(argv, &r), 0);
    assert_int_not_equal(r.exit_code, 0);
    proc_result_free(&r);
    server_stop(&s);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_slow_and_idle_connections, server_teardown),
        cmocka_unit_test_teardown(test_upload_and_pull_limits, server_teardown),
        cmocka_unit_test_teardown(test_shutdown_with_work_in_flight, server_teardown),
        cmocka_unit_test_teardown(test_origin_host_and_key, server_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
