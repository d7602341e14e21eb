#include "proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Reads all of fp from the start into a NUL-terminated buffer. */
static char *slurp(FILE *fp, size_t *len) {
    if (fseek(fp, 0, SEEK_END) != 0) return NULL;
    long n = ftell(fp);
    if (n < 0 || fseek(fp, 0, SEEK_SET) != 0) return NULL;
    char *buf = malloc((size_t)n + 1);
    if (!buf) return NULL;
    if (fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

int proc_run(char *const argv[], proc_result *r) {
    memset(r, 0, sizeof *r);
    /* Output goes to unlinked temporary files rather than pipes: no risk of the child blocking
     * on a full pipe while we wait for it. */
    FILE *out = tmpfile(), *err = tmpfile();
    if (!out || !err) {
        if (out) fclose(out);
        if (err) fclose(err);
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fileno(out), 1);
    posix_spawn_file_actions_adddup2(&fa, fileno(err), 2);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    int status = 0;
    if (rc == 0) {
        while (waitpid(pid, &status, 0) < 0) {
            if (errno != EINTR) return -1;
        }
    }
    if (rc == 0) {
        r->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        r->out = slurp(out, &r->out_len);
        r->err = slurp(err, &r->err_len);
    }
    fclose(out);
    fclose(err);
    if (rc != 0 || !r->out || !r->err) {
        proc_result_free(r);
        return -1;
    }
    return 0;
}

void proc_result_free(proc_result *r) {
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

size_t proc_count_lines(const char *s) {
    size_t n = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '\n' || p[1] == '\0') n++;
    }
    return n;
}

char *tmpdir_make(void) {
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    size_t n = strlen(base) + 32;
    char *dir = malloc(n);
    if (!dir) return NULL;
    snprintf(dir, n, "%s/strata-test-XXXXXX", base);
    if (!mkdtemp(dir)) {
        free(dir);
        return NULL;
    }
    return dir;
}

char *tmpdir_path(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

int tmpdir_write(const char *path, const void *data, size_t size) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    size_t w = size ? fwrite(data, 1, size, fp) : 0;
    int rc = fclose(fp);
    return (w == size && rc == 0) ? 0 : -1;
}

void tmpdir_remove(char *dir) {
    if (!dir) return;
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            char *p = tmpdir_path(dir, e->d_name);
            if (p) unlink(p);
            free(p);
        }
        closedir(d);
    }
    rmdir(dir);
    free(dir);
}

static void fault_exit(int sig) { _exit(100 + sig); }

int proc_child_read(const volatile void *p) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = fault_exit;
        sigaction(SIGSEGV, &sa, NULL);
        sigaction(SIGBUS, &sa, NULL);
        volatile uint8_t v = *(const volatile uint8_t *)p;
        (void)v;
        _exit(0);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) return -1;
    if (WIFSIGNALED(status)) return WTERMSIG(status);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return code == 100 + SIGSEGV ? SIGSEGV : code == 100 + SIGBUS ? SIGBUS : code;
}
