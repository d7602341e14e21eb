/* Test helpers for end-to-end tests: run a real binary and capture what it printed, and
 * make scratch files that are removed afterwards. */
#ifndef STRATA_TESTS_PROC_H
#define STRATA_TESTS_PROC_H

#include <stddef.h>

typedef struct {
    int exit_code; /* the exit status, or 128 + signal number if it was killed */
    char *out;     /* everything written to stdout, NUL-terminated (malloc'd) */
    size_t out_len;
    char *err;     /* everything written to stderr, NUL-terminated (malloc'd) */
    size_t err_len;
} proc_result;

/* Runs argv[0] (a path; no shell, no PATH search) with argv, stdin from /dev/null, and waits.
 * Returns 0 and fills *r, or -1 if the process could not be started. */
int proc_run(char *const argv[], proc_result *r);
void proc_result_free(proc_result *r);

/* Number of lines in s (a final line without '\n' counts; "" has none). */
size_t proc_count_lines(const char *s);

/* Reads one byte at p in a forked child: 0 if the read worked, SIGSEGV (or SIGBUS) if it
 * faulted -- whether or not a sanitizer installed a handler of its own (the child's handler
 * exits with 100 + the signal). For tests of memory that must not be readable. */
int proc_child_read(const volatile void *p);

/* A fresh private directory under $TMPDIR (or /tmp), malloc'd; NULL on failure. */
char *tmpdir_make(void);
/* dir + "/" + name, malloc'd. */
char *tmpdir_path(const char *dir, const char *name);
/* Writes size bytes to path; returns 0 on success. */
int tmpdir_write(const char *path, const void *data, size_t size);
/* Removes the files directly inside dir, then dir itself, and frees the string. */
void tmpdir_remove(char *dir);

#endif
