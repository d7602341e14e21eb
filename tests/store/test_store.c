/* The model store on a real folder: create/list/show/copy/delete round trips, blob
 * sharing and garbage collection, refusal of bad names and bad sources, and atomicity:
 * writers killed at each stage leave no model that points at a missing blob, their
 * temporary files are ignored and cleaned, and gc waits for a create in progress. */
#include "testdata.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gguf/gguf.h"
#include "store/modelfile.h"
#include "store/sha256.h"
#include "store/store.h"
#include "template/template.h"

typedef struct {
    char dir[256];    /* scratch folder */
    char root[300];   /* store root inside it */
    char gguf[300];   /* a small model file */
    strata_store *s;
} fixture;

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static void write_gguf(const char *path, uint32_t file_type, float fill, const char *chat_template) {
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    assert_int_equal(gguf_writer_add_str(w, "general.architecture", "llama"), STRATA_OK);
    if (chat_template) assert_int_equal(gguf_writer_add_str(w, "tokenizer.chat_template", chat_template), STRATA_OK);
    assert_int_equal(gguf_writer_add_u32(w, "general.file_type", file_type), STRATA_OK);
    static float data[32];
    for (int i = 0; i < 32; i++) data[i] = fill + (float)i;
    int64_t ne[2] = {8, 4};
    assert_int_equal(gguf_writer_add_tensor(w, "token_embd.weight", STRATA_TYPE_F32, 2, ne, data), STRATA_OK);
    assert_int_equal(gguf_writer_write_file(w, path), STRATA_OK);
    gguf_writer_free(w);
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/strata-store-test-XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->root, sizeof f->root, "%s/models", f->dir);
    snprintf(f->gguf, sizeof f->gguf, "%s/tiny.gguf", f->dir);
    write_gguf(f->gguf, 7, 1.0f, NULL);
    if (strata_store_open(f->root, &f->s) != STRATA_OK) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    strata_store_close(f->s);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static strata_modelfile *mf_parse(const char *text) {
    strata_modelfile *mf = NULL;
    if (strata_modelfile_parse(text, strlen(text), &mf) != STRATA_OK) fail_msg("%s", strata_last_error());
    return mf;
}

static strata_status create_text(fixture *f, const char *name, const char *modelfile) {
    strata_modelfile *mf = mf_parse(modelfile);
    strata_status st = strata_store_create(f->s, name, mf, f->dir, NULL, NULL);
    strata_modelfile_free(mf);
    return st;
}

/* Counts entries of a folder: blobs ("sha256-" names) and temporary files. */
static void count_dir(const char *dir, int *blobs, int *temps) {
    *blobs = *temps = 0;
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "sha256-", 7) == 0) (*blobs)++;
        if (strncmp(e->d_name, ".tmp-", 5) == 0) (*temps)++;
    }
    closedir(d);
}

static void blob_counts(fixture *f, int *blobs, int *temps) {
    char p[400];
    snprintf(p, sizeof p, "%s/blobs", f->root);
    count_dir(p, blobs, temps);
}

/* Every listed model shows, and every blob its manifest names exists. */
static void check_consistent(fixture *f) {
    strata_model_entry *items;
    size_t n;
    assert_int_equal(strata_store_list(f->s, &items, &n), STRATA_OK);
    for (size_t i = 0; i < n; i++) {
        strata_manifest m;
        assert_int_equal(strata_store_read_manifest(f->s, items[i].name, &m), STRATA_OK);
        assert_true(strata_store_has_blob(f->s, m.config.digest));
        for (size_t j = 0; j < m.n_layers; j++) assert_true(strata_store_has_blob(f->s, m.layers[j].digest));
        strata_manifest_free(&m);
        strata_model_info *info;
        if (strata_store_show(f->s, items[i].name, &info) != STRATA_OK) fail_msg("%s", strata_last_error());
        strata_model_info_free(info);
    }
    free(items);
}

static void test_create_show_list(void **state) {
    fixture *f = *state;
    assert_int_equal(create_text(f, "tiny", "FROM ./tiny.gguf\nSYSTEM be brief\nPARAMETER num_ctx 512\n"
                                            "PARAMETER stop <|end|>\nTEMPLATE {{ .Prompt }}\nMESSAGE user hi\nLICENSE MIT\n"),
                     STRATA_OK);
    strata_model_entry *items;
    size_t n;
    assert_int_equal(strata_store_list(f->s, &items, &n), STRATA_OK);
    assert_int_equal(n, 1);
    assert_string_equal(items[0].name, "tiny:latest");
    assert_true(strata_digest_valid(items[0].digest));
    struct stat sb;
    assert_int_equal(stat(f->gguf, &sb), 0);
    assert_true(items[0].size > (uint64_t)sb.st_size);
    free(items);

    strata_model_info *info;
    assert_int_equal(strata_store_show(f->s, "TINY:latest", &info), STRATA_OK);
    assert_string_equal(info->name, "tiny:latest");
    assert_string_equal(info->format, "gguf");
    assert_string_equal(info->family, "llama");
    assert_string_equal(info->quantization, "Q8_0");
    assert_string_equal(info->parameter_size, "32");
    assert_int_equal(info->model_size, (uint64_t)sb.st_size);
    /* The blob holds the file's bytes. */
    size_t a_n, b_n;
    void *a = testdata_read_file(f->gguf, &a_n), *b = testdata_read_file(info->model_path, &b_n);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(a_n, b_n);
    assert_memory_equal(a, b, a_n);
    free(a);
    free(b);
    strata_modelfile *mf = info->modelfile;
    assert_string_equal(mf->from, info->model_path);
    assert_string_equal(mf->system, "be brief");
    assert_string_equal(mf->template_text, "{{ .Prompt }}");
    assert_int_equal(strata_modelfile_get_param(mf, "num_ctx")->i, 512);
    assert_string_equal(strata_modelfile_get_param(mf, "stop")->strs[0], "<|end|>");
    assert_int_equal(mf->n_messages, 1);
    assert_string_equal(mf->licenses[0], "MIT");
    char *text;
    assert_int_equal(strata_model_info_modelfile(info, &text), STRATA_OK);
    assert_non_null(strstr(text, "# FROM tiny:latest\n"));
    char from_line[4200];
    snprintf(from_line, sizeof from_line, "\nFROM %s\n", info->model_path);
    assert_non_null(strstr(text, from_line));
    assert_non_null(strstr(text, "PARAMETER num_ctx 512\n"));
    /* What show prints creates the same model again. */
    strata_modelfile *again = mf_parse(text);
    assert_int_equal(strata_store_create(f->s, "tiny-again", again, "/", NULL, NULL), STRATA_OK);
    strata_modelfile_free(again);
    free(text);
    strata_model_info *info2;
    assert_int_equal(strata_store_show(f->s, "tiny-again", &info2), STRATA_OK);
    assert_string_equal(info2->digest, info->digest); /* identical manifest bytes */
    strata_model_info_free(info2);
    strata_model_info_free(info);

    /* The manifest lies where Ollama puts it. */
    char p[600];
    snprintf(p, sizeof p, "%s/manifests/registry.ollama.ai/library/tiny/latest", f->root);
    assert_int_equal(stat(p, &sb), 0);
    check_consistent(f);
}

static void test_inherit_copy_delete_gc(void **state) {
    fixture *f = *state;
    assert_int_equal(create_text(f, "base:v1", "FROM tiny.gguf\nSYSTEM one\nPARAMETER num_ctx 512\nPARAMETER stop a\n"
                                               "PARAMETER stop b\n"),
                     STRATA_OK);
    int blobs0, temps;
    blob_counts(f, &blobs0, &temps);
    assert_int_equal(temps, 0);
    /* Importing the same file again adds no blob. */
    assert_int_equal(create_text(f, "base:v2", "FROM ./tiny.gguf\nSYSTEM one\nPARAMETER num_ctx 512\nPARAMETER stop a\n"
                                               "PARAMETER stop b\n"),
                     STRATA_OK);
    int blobs1;
    blob_counts(f, &blobs1, &temps);
    assert_int_equal(blobs1, blobs0);

    /* FROM a model: inherit, override SYSTEM, merge parameters (stop replaced whole). */
    assert_int_equal(create_text(f, "me/derived", "FROM base:v1\nSYSTEM two\nPARAMETER temperature 0.5\nPARAMETER stop c\n"),
                     STRATA_OK);
    strata_model_info *bi, *di;
    assert_int_equal(strata_store_show(f->s, "base:v1", &bi), STRATA_OK);
    assert_int_equal(strata_store_show(f->s, "me/derived", &di), STRATA_OK);
    assert_string_equal(di->name, "me/derived:latest");
    assert_string_equal(di->model_digest, bi->model_digest);
    assert_string_equal(di->modelfile->system, "two");
    assert_int_equal(strata_modelfile_get_param(di->modelfile, "num_ctx")->i, 512);
    assert_true(strata_modelfile_get_param(di->modelfile, "temperature")->f == 0.5);
    const strata_param *stop = strata_modelfile_get_param(di->modelfile, "stop");
    assert_int_equal(stop->n_strs, 1);
    assert_string_equal(stop->strs[0], "c");
    strata_model_info_free(bi);
    strata_model_info_free(di);

    assert_int_equal(strata_store_copy(f->s, "me/derived", "copy:x"), STRATA_OK);
    assert_int_equal(strata_store_copy(f->s, "nope", "copy:y"), STRATA_ERR_NOT_FOUND);
    assert_int_equal(strata_store_copy(f->s, "copy:x", "../bad"), STRATA_ERR_INVALID);
    strata_model_entry *items;
    size_t n;
    assert_int_equal(strata_store_list(f->s, &items, &n), STRATA_OK);
    assert_int_equal(n, 4);
    assert_string_equal(items[0].name, "base:v1");
    assert_string_equal(items[1].name, "base:v2");
    assert_string_equal(items[2].name, "copy:x");
    assert_string_equal(items[3].name, "me/derived:latest");
    assert_string_equal(items[0].digest, items[1].digest);
    assert_string_equal(items[2].digest, items[3].digest);
    free(items);

    /* Deleting keeps blobs others use; deleting the last user collects them. */
    assert_int_equal(strata_store_delete(f->s, "base:v1"), STRATA_OK);
    assert_int_equal(strata_store_delete(f->s, "base:v1"), STRATA_ERR_NOT_FOUND);
    int blobs2;
    blob_counts(f, &blobs2, &temps);
    assert_int_equal(blobs2, blobs1 + 3); /* derived: system, params, config */
    check_consistent(f);
    assert_int_equal(strata_store_delete(f->s, "base:v2"), STRATA_OK);
    assert_int_equal(strata_store_delete(f->s, "me/derived"), STRATA_OK);
    check_consistent(f);
    assert_int_equal(strata_store_delete(f->s, "copy:x"), STRATA_OK);
    blob_counts(f, &blobs2, &temps);
    assert_int_equal(blobs2, 0);
    /* Empty manifest folders are gone too. */
    char p[600];
    struct stat sb;
    snprintf(p, sizeof p, "%s/manifests/registry.ollama.ai", f->root);
    assert_int_not_equal(stat(p, &sb), 0);
    size_t removed = 99;
    assert_int_equal(strata_store_gc(f->s, &removed), STRATA_OK);
    assert_int_equal(removed, 0);
}

static void test_bad_sources_and_names(void **state) {
    fixture *f = *state;
    assert_int_equal(create_text(f, "x", "FROM ./missing.gguf\n"), STRATA_ERR_NOT_FOUND);
    assert_int_equal(create_text(f, "x", "FROM no-such-model\n"), STRATA_ERR_NOT_FOUND);
    assert_non_null(strstr(strata_last_error(), "no model of that name"));
    char junk[400];
    snprintf(junk, sizeof junk, "%s/junk.gguf", f->dir);
    FILE *fp = fopen(junk, "w");
    fputs("this is not a gguf file at all", fp);
    fclose(fp);
    assert_int_not_equal(create_text(f, "x", "FROM junk.gguf\n"), STRATA_OK);
    assert_non_null(strstr(strata_last_error(), "not a GGUF file"));
    assert_null(strstr(strata_last_error(), "74 68")); /* never the bytes it holds ("th...") */
    static const char *const bad[] = {"../evil", "../../evil", "a/../../b", "/abs", "x:../../../tmp", "..", "a/b/c/d"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(create_text(f, bad[i], "FROM ./tiny.gguf\n"), STRATA_ERR_INVALID);
        assert_int_equal(strata_store_delete(f->s, bad[i]), STRATA_ERR_INVALID);
        strata_model_info *info;
        assert_int_equal(strata_store_show(f->s, bad[i], &info), STRATA_ERR_INVALID);
    }
    /* Nothing was written: no manifest, and nothing next to the store. */
    strata_model_entry *items;
    size_t n;
    assert_int_equal(strata_store_list(f->s, &items, &n), STRATA_OK);
    assert_int_equal(n, 0);
    free(items);
    char p[400];
    struct stat sb;
    snprintf(p, sizeof p, "%s/evil", f->dir);
    assert_int_not_equal(stat(p, &sb), 0);
    strata_model_info *info;
    assert_int_equal(strata_store_show(f->s, "ghost", &info), STRATA_ERR_NOT_FOUND);
    assert_int_equal(strata_store_delete(f->s, "ghost"), STRATA_ERR_NOT_FOUND);
    /* gc collects the blobs the failed creates may have left. */
    assert_int_equal(strata_store_gc(f->s, NULL), STRATA_OK);
    int blobs, temps;
    blob_counts(f, &blobs, &temps);
    assert_int_equal(blobs + temps, 0);
}

static void test_damage_detected(void **state) {
    fixture *f = *state;
    assert_int_equal(create_text(f, "d", "FROM ./tiny.gguf\nSYSTEM s\n"), STRATA_OK);
    strata_manifest m;
    assert_int_equal(strata_store_read_manifest(f->s, "d", &m), STRATA_OK);
    char p[4200];
    /* A text blob whose bytes changed. */
    for (size_t i = 0; i < m.n_layers; i++) {
        if (strcmp(m.layers[i].media_type, STRATA_MEDIA_SYSTEM) != 0) continue;
        assert_int_equal(strata_store_blob_path(f->s, m.layers[i].digest, p, sizeof p), STRATA_OK);
        FILE *fp = fopen(p, "w");
        fputs("S", fp);
        fclose(fp);
    }
    strata_model_info *info;
    assert_int_equal(strata_store_show(f->s, "d", &info), STRATA_ERR_FORMAT);
    assert_non_null(strstr(strata_last_error(), "damaged"));
    /* The model blob missing. */
    assert_int_equal(strata_store_blob_path(f->s, m.layers[0].digest, p, sizeof p), STRATA_OK);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(strata_store_show(f->s, "d", &info), STRATA_ERR_FORMAT);
    assert_int_equal(strata_store_copy(f->s, "d", "d2"), STRATA_ERR_FORMAT);
    strata_manifest_free(&m);
    /* A manifest that is not JSON: gc refuses to guess and deletes nothing. */
    snprintf(p, sizeof p, "%s/manifests/registry.ollama.ai/library/d/latest", f->root);
    FILE *fp = fopen(p, "w");
    fputs("{not json", fp);
    fclose(fp);
    int before, after, temps;
    blob_counts(f, &before, &temps);
    assert_int_equal(strata_store_gc(f->s, NULL), STRATA_ERR_FORMAT);
    blob_counts(f, &after, &temps);
    assert_int_equal(before, after);
    strata_model_entry *items;
    size_t n;
    assert_int_equal(strata_store_list(f->s, &items, &n), STRATA_OK);
    assert_int_equal(n, 0); /* unreadable manifests are not listed */
    free(items);
}

/* A pid no process has now (a child that has exited and been reaped). */
static pid_t dead_pid(void) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(0);
    waitpid(pid, NULL, 0);
    return pid;
}

/* ---- atomicity ------------------------------------------------------------------------ */

static const char *kill_at; /* progress status at which the child kills itself */

static bool kill_progress(void *user, const char *status, uint64_t done, uint64_t total) {
    (void)user, (void)done, (void)total;
    if (strcmp(status, kill_at) == 0) raise(SIGKILL);
    return true;
}

/* Runs a create in a child process that dies (SIGKILL) when progress reports `at`. */
static void create_killed(fixture *f, const char *name, const char *at) {
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        strata_store *s;
        if (strata_store_open(f->root, &s) != STRATA_OK) _exit(2);
        strata_modelfile *mf = NULL;
        const char *text = "FROM ./tiny.gguf\nSYSTEM killed\n";
        if (strata_modelfile_parse(text, strlen(text), &mf) != STRATA_OK) _exit(3);
        kill_at = at;
        strata_store_create(s, name, mf, f->dir, kill_progress, NULL);
        _exit(4); /* not reached when the kill happens */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
}

static void test_killed_during_copy(void **state) {
    fixture *f = *state;
    create_killed(f, "victim", "copying model");
    int blobs, temps;
    blob_counts(f, &blobs, &temps);
    assert_int_equal(temps, 1); /* the partial copy, under a temporary name */
    assert_int_equal(blobs, 0);
    strata_model_entry *items;
    size_t n;
    assert_int_equal(strata_store_list(f->s, &items, &n), STRATA_OK);
    assert_int_equal(n, 0);
    free(items);
    strata_model_info *info;
    assert_int_equal(strata_store_show(f->s, "victim", &info), STRATA_ERR_NOT_FOUND);
    /* Opening the store again (no writer active) removes the leftover. */
    strata_store *again;
    assert_int_equal(strata_store_open(f->root, &again), STRATA_OK);
    strata_store_close(again);
    blob_counts(f, &blobs, &temps);
    assert_int_equal(temps, 0);
    /* And a create afterwards works. */
    assert_int_equal(create_text(f, "victim", "FROM ./tiny.gguf\n"), STRATA_OK);
    check_consistent(f);
}

static void test_killed_before_manifest(void **state) {
    fixture *f = *state;
    create_killed(f, "victim", "writing manifest");
    int blobs, temps;
    blob_counts(f, &blobs, &temps);
    assert_int_equal(temps, 0);
    assert_int_equal(blobs, 3); /* model, system, config: complete but named by no manifest */
    strata_model_entry *items;
    size_t n;
    assert_int_equal(strata_store_list(f->s, &items, &n), STRATA_OK);
    assert_int_equal(n, 0);
    free(items);
    size_t removed;
    assert_int_equal(strata_store_gc(f->s, &removed), STRATA_OK);
    assert_int_equal(removed, 3);
}

static void test_replace_keeps_old_until_new_complete(void **state) {
    fixture *f = *state;
    assert_int_equal(create_text(f, "m", "FROM ./tiny.gguf\nSYSTEM old\n"), STRATA_OK);
    create_killed(f, "m", "writing manifest");
    strata_model_info *info;
    assert_int_equal(strata_store_show(f->s, "m", &info), STRATA_OK);
    assert_string_equal(info->modelfile->system, "old");
    strata_model_info_free(info);
    check_consistent(f);
    /* Temporary files in manifest folders are ignored by readers, removed on open. */
    char p[600];
    snprintf(p, sizeof p, "%s/manifests/registry.ollama.ai/library/m/.tmp-%ld-2-3", f->root, (long)dead_pid());
    FILE *fp = fopen(p, "w");
    fputs("{", fp);
    fclose(fp);
    strata_model_entry *items;
    size_t n;
    assert_int_equal(strata_store_list(f->s, &items, &n), STRATA_OK);
    assert_int_equal(n, 1);
    free(items);
    assert_int_equal(strata_store_gc(f->s, NULL), STRATA_OK);
    struct stat sb;
    assert_int_not_equal(stat(p, &sb), 0);
}

typedef struct {
    fixture *f;
    atomic_int done;
    strata_status st;
} gc_thread_arg;

static void *gc_thread(void *p) {
    gc_thread_arg *a = p;
    strata_store *s;
    a->st = strata_store_open(a->f->root, &s);
    if (a->st == STRATA_OK) {
        a->st = strata_store_gc(s, NULL);
        strata_store_close(s);
    }
    atomic_store(&a->done, 1);
    return NULL;
}

static int pipe_go[2], pipe_ready[2];

static bool pause_progress(void *user, const char *status, uint64_t done, uint64_t total) {
    (void)user, (void)done, (void)total;
    if (strcmp(status, "writing manifest") == 0) {
        char c = 'r';
        if (write(pipe_ready[1], &c, 1) != 1) _exit(5);
        if (read(pipe_go[0], &c, 1) != 1) _exit(6);
    }
    return true;
}

static void test_gc_waits_for_create(void **state) {
    fixture *f = *state;
    assert_int_equal(pipe(pipe_go), 0);
    assert_int_equal(pipe(pipe_ready), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        strata_store *s;
        if (strata_store_open(f->root, &s) != STRATA_OK) _exit(2);
        strata_modelfile *mf = NULL;
        const char *text = "FROM ./tiny.gguf\nSYSTEM racing\n";
        if (strata_modelfile_parse(text, strlen(text), &mf) != STRATA_OK) _exit(3);
        strata_status st = strata_store_create(s, "racer", mf, f->dir, pause_progress, NULL);
        _exit(st == STRATA_OK ? 0 : 1);
    }
    char c;
    assert_int_equal(read(pipe_ready[0], &c, 1), 1); /* the child's blobs are written, its manifest not yet */
    gc_thread_arg arg = {f, 0, STRATA_OK};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, gc_thread, &arg), 0);
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
    assert_int_equal(atomic_load(&arg.done), 0); /* gc is waiting for the create's lock */
    c = 'g';
    assert_int_equal(write(pipe_go[1], &c, 1), 1);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    pthread_join(th, NULL);
    assert_int_equal(arg.st, STRATA_OK);
    strata_model_info *info;
    assert_int_equal(strata_store_show(f->s, "racer", &info), STRATA_OK);
    assert_string_equal(info->modelfile->system, "racing");
    strata_model_info_free(info);
    for (int i = 0; i < 2; i++) {
        close(pipe_go[i]);
        close(pipe_ready[i]);
    }
}

static void test_template_from_gguf(void **state) {
    fixture *f = *state;
    char p[400];
    snprintf(p, sizeof p, "%s/chat.gguf", f->dir);
    write_gguf(p, 15, 2.0f, "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>' }}{% endfor %}");
    /* No TEMPLATE: the detected format's built-in template and stop strings. */
    assert_int_equal(create_text(f, "chat", "FROM ./chat.gguf\n"), STRATA_OK);
    strata_model_info *info;
    assert_int_equal(strata_store_show(f->s, "chat", &info), STRATA_OK);
    assert_string_equal(info->quantization, "Q4_K_M");
    assert_non_null(info->modelfile->template_text);
    assert_string_equal(info->modelfile->template_text, strata_chat_family_template(STRATA_CHAT_CHATML));
    const strata_param *stop = strata_modelfile_get_param(info->modelfile, "stop");
    assert_non_null(stop);
    assert_int_equal(stop->n_strs, 2);
    assert_string_equal(stop->strs[0], "<|im_start|>");
    assert_string_equal(stop->strs[1], "<|im_end|>");
    strata_model_info_free(info);
    /* A TEMPLATE or stop given in the Modelfile wins. */
    assert_int_equal(create_text(f, "chat2", "FROM ./chat.gguf\nTEMPLATE {{ .Prompt }}\n"), STRATA_OK);
    assert_int_equal(strata_store_show(f->s, "chat2", &info), STRATA_OK);
    assert_string_equal(info->modelfile->template_text, "{{ .Prompt }}");
    assert_null(strata_modelfile_get_param(info->modelfile, "stop"));
    strata_model_info_free(info);
    assert_int_equal(create_text(f, "chat3", "FROM ./chat.gguf\nPARAMETER stop END\n"), STRATA_OK);
    assert_int_equal(strata_store_show(f->s, "chat3", &info), STRATA_OK);
    assert_int_equal(strata_modelfile_get_param(info->modelfile, "stop")->n_strs, 1);
    strata_model_info_free(info);
    /* No chat template in the file: no template layer. */
    assert_int_equal(create_text(f, "plain", "FROM ./tiny.gguf\n"), STRATA_OK);
    assert_int_equal(strata_store_show(f->s, "plain", &info), STRATA_OK);
    assert_null(info->modelfile->template_text);
    strata_model_info_free(info);
}

/* A manifest as Ollama writes it (extra layer types, parameters we do not know) reads. */
static void test_ollama_shaped_manifest(void **state) {
    fixture *f = *state;
    char model[STRATA_DIGEST_SIZE], params[STRATA_DIGEST_SIZE], proj[STRATA_DIGEST_SIZE], cfg[STRATA_DIGEST_SIZE];
    uint64_t size;
    assert_int_equal(strata_store_import_file(f->s, f->gguf, NULL, NULL, model, &size), STRATA_OK);
    const char *ptext = "{\"mirostat\":0,\"num_keep\":4,\"stop\":[\"<x>\"]}";
    const char *ctext = "{\"model_format\":\"gguf\",\"model_family\":\"llama\",\"model_type\":\"8.0B\",\"file_type\":\"Q4_0\","
                        "\"architecture\":\"amd64\",\"os\":\"linux\"}";
    assert_int_equal(strata_store_put_blob(f->s, ptext, strlen(ptext), params), STRATA_OK);
    assert_int_equal(strata_store_put_blob(f->s, "PROJ", 4, proj), STRATA_OK);
    assert_int_equal(strata_store_put_blob(f->s, ctext, strlen(ctext), cfg), STRATA_OK);
    char dir[600], path[700], text[2048];
    snprintf(dir, sizeof dir, "%s/manifests/registry.ollama.ai/library/olla", f->root);
    snprintf(path, sizeof path, "%s/latest", dir);
    snprintf(text, sizeof text,
             "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
             "\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"digest\":\"%s\",\"size\":%zu},"
             "\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"%s\",\"size\":%llu},"
             "{\"mediaType\":\"application/vnd.ollama.image.projector\",\"digest\":\"%s\",\"size\":4},"
             "{\"mediaType\":\"application/vnd.ollama.image.params\",\"digest\":\"%s\",\"size\":%zu}]}",
             cfg, strlen(ctext), model, (unsigned long long)size, proj, params, strlen(ptext));
    const char *const parts[] = {"/registry.ollama.ai", "/library", "/olla"};
    char sub[600];
    snprintf(sub, sizeof sub, "%s/manifests", f->root);
    for (int i = 0; i < 3; i++) {
        strncat(sub, parts[i], sizeof sub - strlen(sub) - 1);
        assert_true(mkdir(sub, 0755) == 0 || errno == EEXIST);
    }
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    strata_model_info *info;
    if (strata_store_show(f->s, "olla", &info) != STRATA_OK) fail_msg("%s", strata_last_error());
    assert_string_equal(info->parameter_size, "8.0B");
    assert_string_equal(info->quantization, "Q4_0");
    assert_int_equal(info->modelfile->n_params, 1);
    assert_string_equal(strata_modelfile_get_param(info->modelfile, "stop")->strs[0], "<x>");
    strata_model_info_free(info);
    /* A model derived from it keeps the layer we do not interpret. */
    assert_int_equal(create_text(f, "derived", "FROM olla\nSYSTEM s\n"), STRATA_OK);
    strata_manifest m;
    assert_int_equal(strata_store_read_manifest(f->s, "derived", &m), STRATA_OK);
    bool has_proj = false;
    for (size_t i = 0; i < m.n_layers; i++)
        if (strcmp(m.layers[i].media_type, "application/vnd.ollama.image.projector") == 0) has_proj = !strcmp(m.layers[i].digest, proj);
    assert_true(has_proj);
    strata_manifest_free(&m);
    check_consistent(f);
}

static bool cancel_progress(void *user, const char *status, uint64_t done, uint64_t total) {
    (void)user, (void)status, (void)done, (void)total;
    return false;
}

/* Temporary files have an owner (the pid in their name) and an age; uploaded blobs a hold:
 * neither a store open nor gc removes them while they are in use (issue 19). */
static void set_age(const char *path, int seconds) {
    struct timespec t[2];
    clock_gettime(CLOCK_REALTIME, &t[0]);
    t[0].tv_sec -= seconds;
    t[1] = t[0];
    assert_int_equal(utimensat(AT_FDCWD, path, t, 0), 0);
}

static void test_owned_temps_and_held_blobs(void **state) {
    fixture *f = *state;
    char mine[600], dead[600], old[600];
    int fd = strata_store_temp_open(f->s, mine, sizeof mine); /* this (live) process's */
    assert_true(fd >= 0);
    close(fd);
    snprintf(dead, sizeof dead, "%s/blobs/.tmp-%ld-1-abc", f->root, (long)dead_pid());
    snprintf(old, sizeof old, "%s/blobs/.tmp-%ld-9-abc", f->root, (long)getpid());
    FILE *fp = fopen(dead, "w");
    fclose(fp);
    fp = fopen(old, "w");
    fclose(fp);
    set_age(old, 2 * 3600);
    strata_store *again;
    assert_int_equal(strata_store_open(f->root, &again), STRATA_OK);
    strata_store_close(again);
    struct stat sb;
    assert_int_equal(stat(mine, &sb), 0);   /* its owner lives */
    assert_int_not_equal(stat(dead, &sb), 0); /* its owner is gone */
    assert_int_not_equal(stat(old, &sb), 0);  /* untouched for two hours */
    assert_int_equal(strata_store_gc(f->s, NULL), STRATA_OK);
    assert_int_equal(stat(mine, &sb), 0);

    /* A temporary file adopted as a blob: held, so gc keeps it though no manifest names it. */
    fd = open(mine, O_WRONLY);
    assert_int_equal(write(fd, "blob bytes", 10), 10);
    close(fd);
    char digest[STRATA_DIGEST_SIZE], want[STRATA_DIGEST_SIZE];
    uint64_t size = 0;
    assert_int_equal(strata_sha256_digest("blob bytes", 10, want), STRATA_OK);
    assert_int_equal(strata_store_adopt_blob(f->s, mine, want, digest, &size), STRATA_OK);
    assert_string_equal(digest, want);
    assert_int_equal(size, 10);
    assert_int_equal(strata_store_gc(f->s, NULL), STRATA_OK);
    assert_true(strata_store_has_blob(f->s, digest));
    /* An expired hold no longer protects it. */
    char hold[700];
    snprintf(hold, sizeof hold, "%s/blobs/.hold-sha256-%s", f->root, digest + 7);
    set_age(hold, 2 * 3600);
    assert_int_equal(strata_store_gc(f->s, NULL), STRATA_OK);
    assert_false(strata_store_has_blob(f->s, digest));
    assert_int_not_equal(stat(hold, &sb), 0);

    /* A mismatch leaves nothing. */
    fd = strata_store_temp_open(f->s, mine, sizeof mine);
    assert_int_equal(write(fd, "other", 5), 5);
    close(fd);
    assert_int_equal(strata_store_adopt_blob(f->s, mine, want, digest, &size), STRATA_ERR_INVALID);
    assert_int_not_equal(stat(mine, &sb), 0);
    assert_false(strata_store_has_blob(f->s, digest));

    /* FROM must be a regular GGUF file. */
    char fifo[600];
    snprintf(fifo, sizeof fifo, "%s/fifo", f->dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(strata_store_check_source(fifo, "FROM fifo"), STRATA_ERR_INVALID);
    assert_non_null(strstr(strata_last_error(), "FIFO"));
    assert_int_equal(strata_store_check_source(f->dir, "FROM dir"), STRATA_ERR_INVALID);
    assert_int_equal(strata_store_check_source("/dev/null", "FROM null"), STRATA_ERR_INVALID);
    assert_int_equal(strata_store_check_source("/no/such/file", "FROM none"), STRATA_ERR_NOT_FOUND);
    char txt[600];
    snprintf(txt, sizeof txt, "%s/secret.gguf", f->dir);
    fp = fopen(txt, "w");
    fputs("PASSWORD", fp);
    fclose(fp);
    assert_int_equal(strata_store_check_source(txt, "FROM secret"), STRATA_ERR_FORMAT);
    assert_null(strstr(strata_last_error(), "PASS"));
    assert_null(strstr(strata_last_error(), "50 41"));
}

static void test_cancel_and_default_root(void **state) {
    fixture *f = *state;
    strata_modelfile *mf = mf_parse("FROM ./tiny.gguf\n");
    assert_int_equal(strata_store_create(f->s, "c", mf, f->dir, cancel_progress, NULL), STRATA_ERR_CANCELLED);
    strata_modelfile_free(mf);
    int blobs, temps;
    blob_counts(f, &blobs, &temps);
    assert_int_equal(blobs + temps, 0);

    char buf[512];
    setenv("STRATA_MODELS", "/some/where", 1);
    strata_store_default_root(buf, sizeof buf);
    assert_string_equal(buf, "/some/where");
    unsetenv("STRATA_MODELS");
    const char *home = getenv("HOME");
    setenv("HOME", "/home/u", 1);
    strata_store_default_root(buf, sizeof buf);
    assert_string_equal(buf, "/home/u/.strata/models");
    if (home) setenv("HOME", home, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_show_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inherit_copy_delete_gc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_sources_and_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damage_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_during_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_before_manifest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace_keeps_old_until_new_complete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc_waits_for_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_template_from_gguf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ollama_shaped_manifest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owned_temps_and_held_blobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_and_default_root, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
