#include "testdata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef STRATA_TESTDATA_DIR
#define STRATA_TESTDATA_DIR "../shared/testdata"
#endif

const char *testdata_dir(void) {
    const char *env = getenv("STRATA_TESTDATA");
    const char *dir = (env && *env) ? env : STRATA_TESTDATA_DIR;
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return NULL;
    return dir;
}

char *testdata_path(const char *relative) {
    const char *dir = testdata_dir();
    if (!dir) return NULL;
    size_t n = strlen(dir) + strlen(relative) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, relative);
    return p;
}

int testdata_has(const char *relative) {
    char *path = testdata_path(relative);
    struct stat st;
    int found = path && stat(path, &st) == 0;
    free(path);
    return found;
}

int testdata_in_ci(void) {
    const char *ci = getenv("CI");
    return ci && strcmp(ci, "true") == 0;
}

void *testdata_read_file(const char *path, size_t *size) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, fp) != (size_t)n) { free(buf); buf = NULL; }
    fclose(fp);
    if (buf) { buf[n] = 0; if (size) *size = (size_t)n; }
    return buf;
}
