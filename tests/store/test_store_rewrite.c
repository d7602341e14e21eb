/* strata_store_create_ex's rewrite step (what the server's quantize-on-create uses), on a real
 * folder with a stand-in rewrite that writes a different small GGUF: the rewritten file
 * becomes the model blob unchanged and the source is not imported; FROM a model rewrites its
 * blob and keeps its other layers; a failing rewrite and a writer killed while rewriting leave
 * no manifest, no blob and (after the next open) no temporary file. */
#include "testdata.h"

#include <dirent.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gguf/gguf.h"
#include "store/modelfile.h"
#include "store/store.h"

static char dir[256], root[300], src_path[300], want_path[300];
static strata_store *store;

static int remove_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

/* A one-tensor GGUF; `ft` distinguishes the "source" (0, F32) from the "rewritten" file. */
static strata_status write_model(const char *path, uint32_t ft) {
    static float data[64];
    for (int i = 0; i < 64; i++) data[i] = (float)i * (ft ? 0.5f : 1.0f);
    gguf_writer *w = gguf_writer_new();
    if (!w) return STRATA_ERR_NOMEM;
    const int64_t ne[2] = {16, 4};
    strata_status st = gguf_writer_add_str(w, "general.architecture", "llama");
    if (st == STRATA_OK) st = gguf_writer_add_u32(w, "general.file_type", ft);
    if (st == STRATA_OK) st = gguf_writer_add_tensor(w, "token_embd.weight", STRATA_TYPE_F32, 2, ne, data);
    if (st == STRATA_OK) st = gguf_writer_write_file(w, path);
    gguf_writer_free(w);
    return st;
}

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/strata-rewrite-test-XXXXXX");
    if (!mkdtemp(dir)) return -1;
    snprintf(root, sizeof root, "%s/models", dir);
    snprintf(src_path, sizeof src_path, "%s/source.gguf", dir);
    snprintf(want_path, sizeof want_path, "%s/rewritten.gguf", dir);
    if (write_model(src_path, 0) != STRATA_OK || write_model(want_path, 7) != STRATA_OK) return -1;
    return strata_store_open(root, &store) == STRATA_OK ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    strata_store_close(store);
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

typedef struct {
    char src[4096];
    char dst[4096];
    int calls;
    strata_status fail; /* STRATA_OK: write the file; else write part of it and fail */
    bool die;           /* write part of it, then SIGKILL this process */
} rewrite_log;

static strata_status rewrite(void *user, const char *src, const char *dst) {
    rewrite_log *log = user;
    log->calls++;
    snprintf(log->src, sizeof log->src, "%s", src);
    snprintf(log->dst, sizeof log->dst, "%s", dst);
    if (log->fail == STRATA_OK && !log->die) return write_model(dst, 7);
    FILE *f = fopen(dst, "wb");
    if (f) {
        fputs("GGUF partial", f);
        fclose(f);
    }
    if (log->die) raise(SIGKILL);
    return strata_fail(log->fail, "rewrite failed on purpose");
}

static strata_status create(const char *name, const char *text, rewrite_log *log) {
    strata_modelfile *mf = NULL;
    if (strata_modelfile_parse(text, strlen(text), &mf) != STRATA_OK) fail_msg("%s", strata_last_error());
    const strata_store_create_params p = {.rewrite = log ? rewrite : NULL, .rewrite_user = log};
    strata_status st = strata_store_create_ex(store, name, mf, dir, &p);
    strata_modelfile_free(mf);
    return st;
}

/* Blob folder entries as one sorted string; temporary files counted apart. */
static char *blob_listing(int *temps) {
    char blobs[400];
    snprintf(blobs, sizeof blobs, "%s/blobs", root);
    struct dirent **list;
    int n = scandir(blobs, &list, NULL, alphasort);
    assert_true(n >= 0);
    char *out = calloc(1, 8192);
    *temps = 0;
    for (int i = 0; i < n; i++) {
        if (strncmp(list[i]->d_name, ".tmp-", 5) == 0) (*temps)++;
        else if (strncmp(list[i]->d_name, "sha256-", 7) == 0) strncat(out, list[i]->d_name, 8191 - strlen(out));
        free(list[i]);
    }
    free(list);
    return out;
}

static strata_model_info *show(const char *name) {
    strata_model_info *info;
    if (strata_store_show(store, name, &info) != STRATA_OK) fail_msg("show %s: %s", name, strata_last_error());
    return info;
}

static void test_rewrite_from_file_and_model(void **state) {
    (void)state;
    rewrite_log log = {0};
    assert_int_equal(create("q", "FROM ./source.gguf\nSYSTEM short\n", &log), STRATA_OK);
    assert_int_equal(log.calls, 1);
    char real_src[4096], real_want[4096];
    assert_non_null(realpath(log.src, real_src));
    assert_non_null(realpath(src_path, real_want));
    assert_string_equal(real_src, real_want);
    char blobs[400];
    snprintf(blobs, sizeof blobs, "%s/blobs/.tmp-", root);
    assert_memory_equal(log.dst, blobs, strlen(blobs)); /* a temporary name in the blob folder */

    /* The model blob is the rewritten file, byte for byte; the source was not imported. */
    strata_model_info *info = show("q");
    size_t got_n = 0, want_n = 0, src_n = 0;
    void *got = testdata_read_file(info->model_path, &got_n), *want = testdata_read_file(want_path, &want_n);
    void *src = testdata_read_file(src_path, &src_n);
    assert_non_null(got);
    assert_non_null(want);
    assert_int_equal(got_n, want_n);
    assert_memory_equal(got, want, want_n);
    assert_int_equal(info->model_size, want_n);
    assert_string_equal(info->quantization, "Q8_0"); /* file type 7, from the rewritten file */
    assert_string_equal(info->modelfile->system, "short");
    char model_digest[STRATA_DIGEST_SIZE];
    snprintf(model_digest, sizeof model_digest, "%s", info->model_digest);
    strata_model_info_free(info);
    int temps;
    char *listing = blob_listing(&temps);
    assert_int_equal(temps, 0);
    assert_int_equal(strlen(listing), 3 * (7 + 64)); /* model, system text, config */
    free(listing);

    /* FROM a model: its blob is the input; its system prompt is kept, its model replaced. */
    assert_int_equal(create("base", "FROM ./source.gguf\nSYSTEM kept\n", NULL), STRATA_OK);
    info = show("base");
    char base_blob[4096];
    snprintf(base_blob, sizeof base_blob, "%s", info->model_path);
    assert_int_equal(info->model_size, src_n);
    strata_model_info_free(info);
    rewrite_log log2 = {0};
    assert_int_equal(create("derived", "FROM base\n", &log2), STRATA_OK);
    assert_int_equal(log2.calls, 1);
    assert_string_equal(log2.src, base_blob);
    info = show("derived");
    assert_string_equal(info->model_digest, model_digest); /* same bytes, same blob */
    assert_string_equal(info->modelfile->system, "kept");
    strata_model_info_free(info);
    free(got);
    free(want);
    free(src);
}

static void check_list_is_keep(void) {
    strata_model_entry *items;
    size_t n;
    assert_int_equal(strata_store_list(store, &items, &n), STRATA_OK);
    assert_int_equal(n, 1);
    assert_string_equal(items[0].name, "keep:latest");
    free(items);
}

static void test_failed_or_killed_rewrite_leaves_nothing(void **state) {
    (void)state;
    assert_int_equal(create("keep", "FROM ./source.gguf\n", NULL), STRATA_OK);
    int temps;
    char *before = blob_listing(&temps);
    assert_int_equal(temps, 0);

    /* A rewrite that fails: its status and message come back; nothing is left. */
    rewrite_log log = {.fail = STRATA_ERR_IO};
    assert_int_equal(create("x", "FROM ./source.gguf\nSYSTEM never\n", &log), STRATA_ERR_IO);
    assert_string_equal(strata_last_error(), "rewrite failed on purpose");
    rewrite_log log2 = {.fail = STRATA_ERR_UNSUPPORTED};
    assert_int_equal(create("keep", "FROM keep\n", &log2), STRATA_ERR_UNSUPPORTED);
    char *after = blob_listing(&temps);
    assert_int_equal(temps, 0);
    assert_string_equal(after, before);
    free(after);
    strata_manifest m;
    assert_int_equal(strata_store_read_manifest(store, "x", &m), STRATA_ERR_NOT_FOUND);
    strata_model_info *info = show("keep"); /* the model a failed replace named is untouched */
    assert_string_equal(info->quantization, "F32");
    strata_model_info_free(info);

    /* A writer killed in the middle of its rewrite. */
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        strata_store_close(store);
        if (strata_store_open(root, &store) != STRATA_OK) _exit(2);
        rewrite_log dying = {.die = true};
        create("killed", "FROM ./source.gguf\n", &dying);
        _exit(3); /* not reached */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_int_equal(strata_store_read_manifest(store, "killed", &m), STRATA_ERR_NOT_FOUND);
    after = blob_listing(&temps);
    assert_int_equal(temps, 1); /* its partial file, ignored by every reader */
    assert_string_equal(after, before);
    free(after);
    check_list_is_keep();
    /* The next open with no writer active removes what the killed writer left. */
    strata_store_close(store);
    assert_int_equal(strata_store_open(root, &store), STRATA_OK);
    after = blob_listing(&temps);
    assert_int_equal(temps, 0);
    assert_string_equal(after, before);
    check_list_is_keep();
    free(after);
    free(before);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rewrite_from_file_and_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_or_killed_rewrite_leaves_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
