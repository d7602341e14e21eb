/* `strata run MODEL` on a terminal: the chat, driven through a pseudo-terminal (forkpty) against
 * a real `strata serve`. The whole session is typed ahead; the test reads until the client
 * exits (at /bye) and checks what the terminal showed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client_fixture.h"

static test_server srv;

static int teardown(void **state) {
    (void)state;
    server_stop(&srv);
    return 0;
}

/* Runs `strata run model` on a pseudo-terminal with `input` typed ahead; returns everything the
 * terminal showed (malloc'd) and the exit status. */
static char *run_on_pty(const char *model, const char *input, int *exit_code) {
    int master;
    pid_t pid = forkpty(&master, NULL, NULL, NULL);
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("TERM", "dumb", 1);
        execl(STRATA_BINARY, STRATA_BINARY, "run", model, (char *)NULL);
        _exit(127);
    }
    size_t len = strlen(input);
    for (size_t off = 0; off < len;) {
        ssize_t w = write(master, input + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        assert_true(w > 0);
        off += (size_t)w;
    }
    size_t cap = 1 << 16, n = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    for (;;) {
        if (n + 4096 > cap) {
            out = realloc(out, cap *= 2);
            assert_non_null(out);
        }
        ssize_t r = read(master, out + n, cap - n - 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break; /* EIO once the client has exited and closed the terminal */
        n += (size_t)r;
    }
    out[n] = 0;
    close(master);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return out;
}

static void test_chat_session(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    server_start(&srv, NULL);
    create_model(&srv, "stories", "stories260K-f32", "PARAMETER temperature 0\n");
    const char *input = "/set parameter num_predict 12\n"
                        "Once upon a time\n"
                        "\"\"\"\n"
                        "Once upon\n"
                        "a time\n"
                        "\"\"\"\n"
                        "/show info\n"
                        "/set parameter nonsense 3\n"
                        "/nonsense\n"
                        "/clear\n"
                        "/bye\n";
    int rc;
    char *out = run_on_pty("stories", input, &rc);
    if (rc != 0) fail_msg("exit %d, terminal: [%s]", rc, out);
    static const char *const expect[] = {
        ">>> ",
        "Set parameter 'num_predict' to '12'",
        ", there was a little girl", /* the greedy answer to the first message */
        "... ",                      /* the multi-line message's continuation prompt */
        "architecture        llama", /* /show info */
        "Couldn't set parameter",
        "Unknown command '/nonsense'. Type /? for help",
        "Cleared session context",
    };
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        if (!strstr(out, expect[i])) fail_msg("'%s' not shown; terminal: [%s]", expect[i], out);
    free(out);

    /* The chat loaded the model with the server, and /bye left it loaded. */
    proc_result r = strata("ps", NULL);
    assert_non_null(strstr(r.out, "stories:latest"));
    proc_result_free(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_chat_session, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
