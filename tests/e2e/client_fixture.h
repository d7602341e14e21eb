/* A real `strata serve` for the client tests: its own STRATA_MODELS folder, a free loopback
 * port (the server binds port 0 and the test reads the port it logged), killed at teardown
 * and, should the test process die first, by the kernel (PR_SET_PDEATHSIG).
 *
 * Header-only (static functions) so that each tests/e2e/test_client_*.c stays one file. */
#ifndef STRATA_TESTS_CLIENT_FIXTURE_H
#define STRATA_TESTS_CLIENT_FIXTURE_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"
#include "testdata.h"

typedef struct {
    pid_t pid;
    char *dir;    /* scratch folder: models/, serve.log, files the test writes */
    char *models; /* dir/models */
    char *log;    /* dir/serve.log */
    char host[64];
} test_server;

/* The reference greedy continuation of "Once upon a time" for stories260K f32/F16/Q8_0
 * (../shared/testdata/README.md). */
static const char client_greedy_ref[] =
    ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw a "
    "big, red ball. She wanted to play with it, but it was too high.\nLily's mom said";

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Removes dir and everything below it. */
static void rm_tree(const char *dir) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

/* Starts the server; extra_env (may be NULL) is "NAME=VALUE" set for the server only. Sets
 * STRATA_HOST and STRATA_MODELS in this process, so that every strata the test runs uses them. */
static void server_start(test_server *s, const char *extra_env) {
    memset(s, 0, sizeof *s);
    s->dir = tmpdir_make();
    assert_non_null(s->dir);
    s->models = tmpdir_path(s->dir, "models");
    s->log = tmpdir_path(s->dir, "serve.log");
    setenv("STRATA_MODELS", s->models, 1);
    unsetenv("STRATA_HOST");
    pid_t parent = getpid();
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        int fd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int in = open("/dev/null", O_RDONLY);
        if (fd < 0 || in < 0) _exit(127);
        dup2(in, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (extra_env) putenv((char *)extra_env);
        execl(STRATA_BINARY, STRATA_BINARY, "serve", "--host", "127.0.0.1:0", (char *)NULL);
        _exit(127);
    }
    /* Wait for "listening on 127.0.0.1:PORT" in the log (no deadline: ctest's timeout is the
     * backstop; a server that exits is reported at once). */
    for (;;) {
        size_t n = 0;
        char *text = testdata_read_file(s->log, &n);
        const char *at = text ? strstr(text, "listening on ") : NULL;
        unsigned port = 0;
        char host[64];
        if (at && sscanf(at, "listening on %63[^:]:%u", host, &port) == 2 && port > 0) {
            snprintf(s->host, sizeof s->host, "127.0.0.1:%u", port);
            free(text);
            break;
        }
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->pid = 0;
            fail_msg("strata serve exited before listening: %s", text ? text : "(no log)");
        }
        free(text);
        sleep_ms(20);
    }
    setenv("STRATA_HOST", s->host, 1);
}

static void server_stop(test_server *s) {
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        int status;
        /* A server that ignores SIGTERM for 10 s is killed. */
        for (int i = 0; i < 500; i++) {
            if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
                s->pid = 0;
                break;
            }
            sleep_ms(20);
        }
        if (s->pid > 0) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &status, 0);
            s->pid = 0;
        }
    }
    if (s->dir) rm_tree(s->dir);
    free(s->dir);
    free(s->models);
    free(s->log);
    memset(s, 0, sizeof *s);
}

/* Runs strata with up to 30 arguments (NULL-terminated). */
static proc_result strata(const char *first, ...) {
    char *argv[32];
    int n = 0;
    argv[n++] = STRATA_BINARY;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && n < 31; a = va_arg(ap, const char *)) argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    proc_result r;
    assert_int_equal(proc_run(argv, &r), 0);
    return r;
}

/* Runs strata and requires exit status 0, printing its output otherwise; frees the result. */
#define STRATA_OK_RUN(...)                                                                           \
    do {                                                                                             \
        proc_result r_ = strata(__VA_ARGS__, NULL);                                                  \
        if (r_.exit_code != 0) fail_msg("rc %d, stdout [%s], stderr [%s]", r_.exit_code, r_.out, r_.err); \
        proc_result_free(&r_);                                                                       \
    } while (0)

/* Writes a Modelfile "FROM <testdata model>" plus `extra` lines into the server's scratch
 * folder and creates `name` from it. */
static void create_model(test_server *s, const char *name, const char *gguf, const char *extra) {
    char rel[128];
    snprintf(rel, sizeof rel, "models/%s.gguf", gguf);
    char *path = testdata_path(rel);
    assert_non_null(path);
    char *mf = tmpdir_path(s->dir, "Modelfile");
    char text[8192];
    snprintf(text, sizeof text, "FROM %s\n%s", path, extra ? extra : "");
    assert_int_equal(tmpdir_write(mf, text, strlen(text)), 0);
    STRATA_OK_RUN("create", name, "-f", mf);
    free(mf);
    free(path);
}

#endif
