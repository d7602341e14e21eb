/* Real files: every .gguf under ../shared/testdata/{models,vocab} loads from a file and from
 * memory alike, its tensors lie inside the mapping at aligned offsets with the sizes the type
 * table gives, their bytes survive gguf_release_data, and stories260K's header holds the
 * values its README states. (Rewriting each
 * file byte for byte is test_rewrite.c.) */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "testdata.h"

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Checks what must hold for any valid file, then the same file read from memory. */
static void check_file(const char *path) {
    gguf_file *f = NULL;
    if (gguf_open(path, GGUF_OPEN_DEFAULT, &f) != STRATA_OK) fail_msg("%s", strata_last_error());
    assert_true(gguf_version(f) == 2 || gguf_version(f) == 3);
    gguf_str arch;
    if (!gguf_get_str(f, "general.architecture", &arch)) fail_msg("%s: no general.architecture", path);
    assert_true(arch.len > 0);
    uint64_t align = gguf_alignment(f);
    assert_int_equal(gguf_data_offset(f) % align, 0);
    const uint8_t *base = NULL;
    for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        assert_ptr_equal(gguf_find_tensor(f, t->name), t);
        assert_int_equal(t->offset % align, 0);
        assert_true(gguf_data_offset(f) + t->offset + t->bytes <= gguf_file_size(f));
        /* bytes = rows x row size, as the type table computes it */
        int64_t rows = gguf_tensor_elements(t) / t->ne[0];
        assert_int_equal(t->bytes, (uint64_t)rows * strata_type_row_bytes(t->type, t->ne[0]));
        assert_non_null(t->data);
        if (!base) base = (const uint8_t *)t->data - gguf_data_offset(f) - t->offset;
        assert_ptr_equal(t->data, base + gguf_data_offset(f) + t->offset);
    }
    for (int64_t i = 0; i < gguf_kv_count(f); i++) {
        assert_int_equal(gguf_find_key(f, gguf_kv_key(f, i)), i);
    }

    size_t size = 0;
    void *bytes = testdata_read_file(path, &size);
    assert_non_null(bytes);
    gguf_file *m = NULL;
    if (gguf_open_memory(bytes, size, GGUF_OPEN_DEFAULT, &m) != STRATA_OK) fail_msg("%s", strata_last_error());
    assert_int_equal(gguf_kv_count(m), gguf_kv_count(f));
    assert_int_equal(gguf_tensor_count(m), gguf_tensor_count(f));
    assert_int_equal(gguf_data_offset(m), gguf_data_offset(f));

    /* gguf_release_data: the mapped tensors read the same after their pages are dropped;
     * a file opened from memory, and bytes outside a mapping, are left alone (dropping heap
     * pages would zero them) */
    for (int64_t i = 0; i < gguf_tensor_count(m); i++) {
        const gguf_tensor *t = gguf_tensor_at(m, i);
        gguf_release_data(m, t->data, t->bytes);
        gguf_release_data(f, t->data, t->bytes); /* not f's bytes */
    }
    for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        gguf_release_data(f, t->data, t->bytes);
        const size_t at = (size_t)(gguf_data_offset(f) + t->offset);
        assert_memory_equal(t->data, (const uint8_t *)bytes + at, t->bytes);
        assert_memory_equal(gguf_tensor_at(m, i)->data, (const uint8_t *)bytes + at, t->bytes);
    }
    gguf_close(m);
    free(bytes);
    gguf_close(f);
}

static int check_dir(const char *sub) {
    char *dir = testdata_path(sub);
    assert_non_null(dir);
    DIR *d = opendir(dir);
    if (!d) fail_msg("cannot open %s", dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!ends_with(e->d_name, ".gguf")) continue;
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        char *path = malloc(len);
        assert_non_null(path);
        snprintf(path, len, "%s/%s", dir, e->d_name);
        check_file(path);
        free(path);
        n++;
    }
    closedir(d);
    free(dir);
    return n;
}

static void test_every_model_loads(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    /* The README lists 26 model files; fewer means files went missing, not a pass. */
    assert_true(check_dir("models") >= 26);
}

static void test_every_vocab_loads(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    assert_true(check_dir("vocab") >= 9);
}

/* Facts about stories260K given by the testdata README (dim 64, 5 layers, 8 heads, 4 KV heads,
 * vocab 512) and by the Llama tensor layout: 2 + 9 per layer + token_embd = 48 tensors. */
static void test_stories260k_header(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    char *path = testdata_path("models/stories260K-f32.gguf");
    gguf_file *f = NULL;
    if (gguf_open(path, GGUF_OPEN_DEFAULT, &f) != STRATA_OK) fail_msg("%s", strata_last_error());
    uint64_t v = 0;
    gguf_str s;
    assert_true(gguf_get_str(f, "general.architecture", &s) && gguf_str_eq(s, "llama"));
    assert_true(gguf_get_u64(f, "llama.block_count", &v) && v == 5);
    assert_true(gguf_get_u64(f, "llama.embedding_length", &v) && v == 64);
    assert_true(gguf_get_u64(f, "llama.attention.head_count", &v) && v == 8);
    assert_true(gguf_get_u64(f, "llama.attention.head_count_kv", &v) && v == 4);
    const gguf_value *tokens = gguf_get_array(f, "tokenizer.ggml.tokens");
    assert_non_null(tokens);
    assert_int_equal(tokens->arr.elem_type, GGUF_TYPE_STRING);
    assert_int_equal(tokens->arr.count, 512);
    assert_int_equal(gguf_tensor_count(f), 48);
    const gguf_tensor *emb = gguf_find_tensor(f, "token_embd.weight");
    assert_non_null(emb);
    assert_int_equal(emb->type, STRATA_TYPE_F32);
    assert_int_equal(emb->n_dims, 2);
    assert_int_equal(emb->ne[0], 64);
    assert_int_equal(emb->ne[1], 512);
    assert_int_equal(emb->bytes, 64 * 512 * 4);
    const gguf_tensor *k = gguf_find_tensor(f, "blk.4.attn_k.weight");
    assert_non_null(k);
    assert_int_equal(k->ne[0], 64);
    assert_int_equal(k->ne[1], 32); /* 4 KV heads x head size 8 */
    gguf_close(f);
    free(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_model_loads),
        cmocka_unit_test(test_every_vocab_loads),
        cmocka_unit_test(test_stories260k_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
