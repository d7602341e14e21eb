/* strata_quantize_file and strata_quantize_inspect on small generated GGUF files (our own
 * writer), so they run everywhere: the metadata and tensor order of the output, the stats,
 * progress and both ways of cancelling (no output file is left), unknown types, unreadable
 * input, and what inspect says of unquantized and quantized files. The byte-for-byte match
 * with llama.cpp's files is tests/e2e/test_quantize.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fp16.h"
#include "gguf/gguf.h"
#include "proc.h"
#include "quantize/quantize.h"

#define COLS 256

static char *dir;

static int setup(void **state) {
    (void)state;
    dir = tmpdir_make();
    return dir ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    tmpdir_remove(dir);
    return 0;
}

/* A llama-shaped fixture in file order blk.1, blk.0, token_embd, output_norm (so that the
 * output order differs from it): 2-D weights in `type` (F32 or F16), the norm in F32. */
static char *make_model(const char *name, strata_type type) {
    static float f32[4][COLS * 8];
    static uint16_t f16[4][COLS * 8];
    for (int t = 0; t < 4; t++)
        for (int i = 0; i < COLS * 8; i++) {
            f32[t][i] = sinf(0.37f * (float)i + (float)t) * 0.5f;
            f16[t][i] = strata_f32_to_fp16(f32[t][i]);
        }
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    assert_int_equal(gguf_writer_add_str(w, "general.architecture", "llama"), STRATA_OK);
    assert_int_equal(gguf_writer_add_u32(w, "general.file_type", type == STRATA_TYPE_F16 ? 1 : 0), STRATA_OK);
    assert_int_equal(gguf_writer_add_u32(w, "llama.block_count", 2), STRATA_OK);
    const int64_t ne2[2] = {COLS, 8}, ne1[1] = {COLS};
    const void *data[4];
    for (int t = 0; t < 4; t++) data[t] = type == STRATA_TYPE_F16 ? (const void *)f16[t] : (const void *)f32[t];
    assert_int_equal(gguf_writer_add_tensor(w, "blk.1.attn_q.weight", type, 2, ne2, data[0]), STRATA_OK);
    assert_int_equal(gguf_writer_add_tensor(w, "blk.0.attn_q.weight", type, 2, ne2, data[1]), STRATA_OK);
    assert_int_equal(gguf_writer_add_tensor(w, "token_embd.weight", type, 2, ne2, data[2]), STRATA_OK);
    assert_int_equal(gguf_writer_add_tensor(w, "output_norm.weight", STRATA_TYPE_F32, 1, ne1, f32[3]), STRATA_OK);
    char *path = tmpdir_path(dir, name);
    assert_int_equal(gguf_writer_write_file(w, path), STRATA_OK);
    gguf_writer_free(w);
    return path;
}

typedef struct {
    int calls;
    int stop_after; /* 0: never */
    uint64_t last_bytes;
    atomic_bool *set_flag_after_first;
} progress_log;

static bool on_progress(void *user, const strata_quantize_progress *p) {
    progress_log *log = user;
    log->calls++;
    assert_int_equal(p->done, log->calls);
    assert_int_equal(p->n_tensors, 4);
    assert_non_null(p->name);
    assert_true(p->bytes_done > log->last_bytes && p->bytes_done <= p->bytes_total);
    log->last_bytes = p->bytes_done;
    if (log->set_flag_after_first) atomic_store(log->set_flag_after_first, true);
    return !(log->stop_after && log->calls >= log->stop_after);
}

static void test_output_metadata_order_and_stats(void **state) {
    (void)state;
    char *in = make_model("f32.gguf", STRATA_TYPE_F32), *out = tmpdir_path(dir, "q8.gguf");
    progress_log log = {0};
    strata_quantize_params p = strata_quantize_default_params();
    p.n_threads = 2;
    p.progress = on_progress;
    p.user = &log;
    strata_quantize_stats stats;
    assert_int_equal(strata_quantize_file(in, out, "q8_0", &p, &stats), STRATA_OK);
    assert_int_equal(log.calls, 4);
    assert_string_equal(stats.file_type, "Q8_0");
    assert_int_equal(stats.n_tensors, 4);
    assert_int_equal(stats.n_converted, 3); /* the three matrices; the norm stays F32 */
    assert_int_equal(stats.n_requantized, 0);
    assert_int_equal(stats.bytes_in, 3 * COLS * 8 * 4 + COLS * 4);
    assert_int_equal(stats.bytes_out, 3 * 8 * (COLS / 32) * 34 + COLS * 4);

    gguf_file *g;
    assert_int_equal(gguf_open(out, GGUF_OPEN_DEFAULT, &g), STRATA_OK);
    /* Keys in order, the input's file type dropped and the two set by the quantizer last. */
    assert_int_equal(gguf_kv_count(g), 4);
    assert_string_equal(gguf_kv_key(g, 0), "general.architecture");
    assert_string_equal(gguf_kv_key(g, 1), "llama.block_count");
    assert_string_equal(gguf_kv_key(g, 2), "general.quantization_version");
    assert_string_equal(gguf_kv_key(g, 3), "general.file_type");
    uint32_t ft;
    assert_true(gguf_get_u32(g, "general.file_type", &ft));
    assert_int_equal(ft, 7);
    /* Outside the blocks first (by name), then block by block. */
    static const char *const order[] = {"output_norm.weight", "token_embd.weight", "blk.0.attn_q.weight",
                                        "blk.1.attn_q.weight"};
    for (int i = 0; i < 4; i++) assert_string_equal(gguf_tensor_at(g, i)->name, order[i]);
    assert_int_equal(gguf_tensor_at(g, 0)->type, STRATA_TYPE_F32);
    for (int i = 1; i < 4; i++) assert_int_equal(gguf_tensor_at(g, i)->type, STRATA_TYPE_Q8_0);
    gguf_close(g);

    /* What inspect says of either file. */
    strata_quantize_source src;
    assert_int_equal(strata_quantize_inspect(in, &src), STRATA_OK);
    assert_false(src.quantized);
    assert_string_equal(src.file_type, "F32");
    assert_string_equal(src.first_quantized, "");
    assert_int_equal(strata_quantize_inspect(out, &src), STRATA_OK);
    assert_true(src.quantized);
    assert_string_equal(src.file_type, "Q8_0");
    assert_string_equal(src.first_quantized, "token_embd.weight");

    /* Requantizing is allowed and counted. */
    char *again = tmpdir_path(dir, "q4.gguf");
    assert_int_equal(strata_quantize_file(out, again, "Q4_0", NULL, &stats), STRATA_OK);
    assert_int_equal(stats.n_requantized, 3);
    unlink(again);
    free(again);
    unlink(out);
    unlink(in);
    free(in);
    free(out);
}

static void test_f16_source(void **state) {
    (void)state;
    char *in = make_model("f16.gguf", STRATA_TYPE_F16), *out = tmpdir_path(dir, "f16-q8.gguf");
    strata_quantize_source src;
    assert_int_equal(strata_quantize_inspect(in, &src), STRATA_OK);
    assert_false(src.quantized);
    assert_string_equal(src.file_type, "F16");
    strata_quantize_stats stats;
    assert_int_equal(strata_quantize_file(in, out, "Q8_0", NULL, &stats), STRATA_OK);
    assert_int_equal(stats.n_converted, 3);
    assert_int_equal(access(out, F_OK), 0);
    unlink(out);
    unlink(in);
    free(in);
    free(out);
}

static void test_cancel_leaves_no_output(void **state) {
    (void)state;
    char *in = make_model("cancel.gguf", STRATA_TYPE_F32), *out = tmpdir_path(dir, "cancel-out.gguf");
    /* The progress callback says stop. */
    progress_log log = {.stop_after = 2};
    strata_quantize_params p = strata_quantize_default_params();
    p.progress = on_progress;
    p.user = &log;
    assert_int_equal(strata_quantize_file(in, out, "Q4_K_M", &p, NULL), STRATA_ERR_CANCELLED);
    assert_int_equal(log.calls, 2);
    assert_int_not_equal(access(out, F_OK), 0);
    /* The flag, set before the call, and set during it. */
    atomic_bool cancel = true;
    p = strata_quantize_default_params();
    p.cancel = &cancel;
    assert_int_equal(strata_quantize_file(in, out, "Q8_0", &p, NULL), STRATA_ERR_CANCELLED);
    assert_non_null(strstr(strata_last_error(), "cancelled"));
    assert_int_not_equal(access(out, F_OK), 0);
    atomic_store(&cancel, false);
    progress_log log2 = {.set_flag_after_first = &cancel};
    p.progress = on_progress;
    p.user = &log2;
    assert_int_equal(strata_quantize_file(in, out, "Q8_0", &p, NULL), STRATA_ERR_CANCELLED);
    assert_int_equal(log2.calls, 1);
    assert_int_not_equal(access(out, F_OK), 0);
    unlink(in);
    free(in);
    free(out);
}

static void test_bad_input(void **state) {
    (void)state;
    char *in = make_model("bad.gguf", STRATA_TYPE_F32), *out = tmpdir_path(dir, "bad-out.gguf");
    assert_int_equal(strata_quantize_file(in, out, "Q9_9", NULL, NULL), STRATA_ERR_INVALID);
    assert_non_null(strstr(strata_last_error(), "Q9_9"));
    assert_non_null(strstr(strata_last_error(), "Q4_K_M"));
    assert_int_not_equal(access(out, F_OK), 0);
    char canon[16];
    assert_true(strata_quantize_type_known("q4_k_m", canon, sizeof canon));
    assert_string_equal(canon, "Q4_K_M");
    assert_false(strata_quantize_type_known("Q9_9", canon, sizeof canon));
    assert_false(strata_quantize_type_known(NULL, NULL, 0));

    char *missing = tmpdir_path(dir, "missing.gguf");
    assert_int_not_equal(strata_quantize_file(missing, out, "Q8_0", NULL, NULL), STRATA_OK);
    assert_int_not_equal(access(out, F_OK), 0);
    strata_quantize_source src;
    assert_int_not_equal(strata_quantize_inspect(missing, &src), STRATA_OK);
    /* Not a GGUF file. */
    assert_int_equal(tmpdir_write(missing, "hello", 5), 0);
    assert_int_not_equal(strata_quantize_file(missing, out, "Q8_0", NULL, NULL), STRATA_OK);
    assert_int_not_equal(strata_quantize_inspect(missing, &src), STRATA_OK);
    assert_int_not_equal(access(out, F_OK), 0);
    unlink(missing);
    unlink(in);
    free(missing);
    free(in);
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_output_metadata_order_and_stats),
        cmocka_unit_test(test_f16_source),
        cmocka_unit_test(test_cancel_leaves_no_output),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
