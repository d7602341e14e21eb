/* Reading a GGUF file and writing it back with our writer must reproduce the file byte
 * for byte: the shared files were written by llama.cpp's tools, so this checks that our
 * writer follows the same layout rules (key order, padding, data offsets) that they read. */
#include "testdata.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"

static int rewrite_matches(const char *path) {
    gguf_file *f;
    if (gguf_open(path, GGUF_OPEN_DEFAULT, &f) != STRATA_OK) {
        print_error("%s\n", strata_last_error());
        return 0;
    }
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    for (int64_t i = 0; i < gguf_kv_count(f); i++) assert_int_equal(gguf_writer_copy_kv(w, f, i), STRATA_OK);
    for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        assert_int_equal(gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data), STRATA_OK);
    }
    void *buf;
    size_t n;
    assert_int_equal(gguf_writer_write_memory(w, &buf, &n), STRATA_OK);
    size_t orig_n;
    void *orig = testdata_read_file(path, &orig_n);
    assert_non_null(orig);
    int same = n == orig_n && memcmp(buf, orig, n) == 0;
    if (!same) print_error("%s: rewrite differs (%zu vs %zu bytes)\n", path, n, orig_n);
    free(orig);
    free(buf);
    gguf_writer_free(w);
    gguf_close(f);
    return same;
}

static void rewrite_dir(const char *sub) {
    TESTDATA_REQUIRE();
    char *dir = testdata_path(sub);
    DIR *d = opendir(dir);
    assert_non_null(d);
    int files = 0, failures = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 5, ".gguf") != 0) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        files++;
        failures += !rewrite_matches(path);
    }
    closedir(d);
    free(dir);
    assert_true(files > 0);
    assert_int_equal(failures, 0);
}

static void test_rewrite_models(void **state) { (void)state; rewrite_dir("models"); }
static void test_rewrite_vocabs(void **state) { (void)state; rewrite_dir("vocab"); }

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rewrite_models),
        cmocka_unit_test(test_rewrite_vocabs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
