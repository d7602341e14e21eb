/* Whole models on a CUDA GPU, against the shared references and against the CPU. Skipped,
 * saying why, where no GPU is usable (never a failure for the lack of one).
 *
 * What a GPU computes: its decode products (up to 4 tokens) decode every weight exactly and
 * multiply it with F32 activations in F32 -- the arithmetic of the dqf32 references (an F32
 * copy of the file), so decode steps are held to those references within
 * GPU_DECODE_TOL = 1e-3 + 1e-3 x the row's largest |logit| (float summation in another
 * order, over a few layers; test_logits holds the CPU's F32 path to a fifth of that). A
 * prompt's products go through F16 (weights and activations rounded to 11 bits, F32
 * accumulation in cuBLAS): GPU_PROMPT_TOL = 2e-2 + 2e-2 x the largest |logit|, about twenty
 * times the 2^-11 relative rounding that accumulates over the tiny models' 2-8 layers.
 *
 * Checks, for every shared model (references in reference/ for F32 files, dqf32/ for the
 * rest), KV cache F32 as in the reference runs:
 *   - the whole model on the GPU: prompt logits, teacher-forced decode logits along the
 *     reference's greedy ids, and our own greedy ids up to the first step whose reference
 *     top-1/top-2 margin is under twice the decode tolerance;
 *   - CPU + GPU and GPU + GPU (two logical devices of one card) splits: the CPU-only run's
 *     greedy ids up to its first step of low margin (the CPU's quantized activations and the
 *     GPU's F32 ones may part there, legitimately);
 *   - planned == allocated on every device (model_context_init_placed checks it and fails). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "backend/device.h"
#include "ref.h"

#define GPU_DECODE_TOL(mx) (1e-3f + 1e-3f * (mx))
#define GPU_PROMPT_TOL(mx) (2e-2f + 2e-2f * (mx))
#define STEPS 16

static const char *const models[] = {
    "stories260K-f32",   "stories260K-F16",   "stories260K-Q8_0",   "stories260K-Q4_0",   "llama-2-tiny-random",
    "micro-llama-F32",   "micro-llama-F16",   "micro-llama-BF16",   "micro-llama-Q8_0",   "micro-llama-Q4_0",
    "micro-llama-Q4_1",  "micro-llama-Q5_0",  "micro-llama-Q5_1",   "micro-llama-Q2_K",   "micro-llama-Q3_K_M",
    "micro-llama-Q4_K_M", "micro-llama-Q5_K_M", "micro-llama-Q6_K", "micro-llama-IQ4_NL", "micro-llama-IQ4_XS",
    "micro-qwen2-F32",   "micro-qwen2-Q8_0",  "micro-qwen2-Q4_K_M", "micro-qwen3-F32",    "micro-qwen3-Q8_0",
    "micro-qwen3-Q4_K_M",
};

static float row_max(const float *v, int n) {
    float m = 0;
    for (int i = 0; i < n; i++) m = fabsf(v[i]) > m ? fabsf(v[i]) : m;
    return m;
}

/* A context over `n_dev` placements: devs[k] runs [cuts[k], cuts[k+1]). */
static model_context *open_placed(const model_desc *d, strata_device *devs, const int32_t *cuts, int n_dev) {
    model_params p = model_default_params();
    p.n_ctx = 256;
    p.n_batch = 64;
    p.n_logits = 64;
    p.kv_type = STRATA_TYPE_F32;
    p.n_threads = 2;
    model_placement pl[4];
    for (int k = 0; k < n_dev; k++) pl[k] = (model_placement){&devs[k], cuts[k], cuts[k + 1], k == n_dev - 1};
    model_context *ctx = NULL;
    if (model_context_init_placed(d, &p, pl, n_dev, &ctx) != STRATA_OK) fail_msg("%s", strata_last_error());
    return ctx;
}

/* Greedy ids from the prompt, one token at a time after it; the last-token logits of each
 * step into lg (STEPS x n_vocab). */
static void greedy(model_context *ctx, const ref_ids *prompt, int32_t nv, int32_t *ids, float *lg) {
    assert_int_equal(model_decode(ctx, prompt->ids, prompt->n, 0), STRATA_OK);
    int32_t pos = prompt->n;
    for (int s = 0; s < STEPS; s++) {
        const float *l = model_logits(ctx, model_logits_count(ctx) - 1);
        memcpy(lg + (size_t)s * nv, l, (size_t)nv * sizeof(float));
        ids[s] = ref_argmax(l, nv);
        assert_int_equal(model_decode(ctx, &ids[s], 1, pos++), STRATA_OK);
    }
}

static void check_model(const char *name, backend_device *gpu_a, backend_device *gpu_b) {
    char rel[256];
    snprintf(rel, sizeof rel, "models/%s.gguf", name);
    if (!testdata_has(rel)) {
        if (testdata_in_ci()) fail_msg("%s missing under CI=true", rel);
        print_message("  %-22s SKIP: not in this copy of the test data\n", name);
        return;
    }
    char *path = testdata_path(rel);
    gguf_file *f = NULL;
    assert_int_equal(gguf_open(path, GGUF_OPEN_DEFAULT, &f), STRATA_OK);
    free(path);
    model_desc d;
    assert_int_equal(model_desc_init(f, &d), STRATA_OK);
    const int32_t nv = d.hp.n_vocab, nl = d.hp.n_layer;
    const bool f32 = strstr(name, "f32") || strstr(name, "F32");
    char pre[256];
    if (f32) snprintf(pre, sizeof pre, "reference/%s", name);
    else snprintf(pre, sizeof pre, "reference/dqf32/%s.dqf32", name);
    char r_prompt[300], r_logits[300], r_gids[300], r_glog[300];
    snprintf(r_prompt, sizeof r_prompt, "reference/%s.prompt_ids.txt", name);
    snprintf(r_logits, sizeof r_logits, "%s.logits.bin", pre);
    snprintf(r_gids, sizeof r_gids, "%s.greedy_ids.txt", pre);
    snprintf(r_glog, sizeof r_glog, "%s.greedy_logits.bin", pre);
    ref_ids prompt = ref_read_ids(r_prompt), gids = ref_read_ids(r_gids);
    ref_logits rl = ref_read_logits(r_logits), gl = ref_read_logits(r_glog);
    assert_non_null(prompt.ids);
    assert_non_null(gids.ids);
    assert_non_null(rl.data);
    assert_non_null(gl.data);

    /* 1. the whole model on the GPU */
    strata_device g0, cpu;
    strata_device_init_backend(&g0, gpu_a);
    int32_t all[2] = {0, nl};
    model_context *ctx = open_placed(&d, &g0, all, 1);
    assert_int_equal(model_decode(ctx, prompt.ids, prompt.n, 0), STRATA_OK);
    float worst_p = 0, worst_d = 0;
    for (int i = 0; i < prompt.n && i < (int)rl.n_tokens; i++) {
        const float *want = ref_row(&rl, (uint32_t)i), mx = row_max(want, nv);
        const float diff = max_abs_diff(model_logits(ctx, i), want, nv);
        if (diff > GPU_PROMPT_TOL(mx)) fail_msg("%s prompt row %d: |diff| %g > %g", name, i, diff, GPU_PROMPT_TOL(mx));
        worst_p = diff / (1 + mx) > worst_p ? diff / (1 + mx) : worst_p;
    }
    /* teacher forcing along the reference's greedy ids (each step's logits chose id s) */
    int32_t pos = prompt.n;
    bool agree = true;
    for (int s = 0; s < gids.n && s < (int)gl.n_tokens; s++) {
        const float *want = ref_row(&gl, (uint32_t)s), mx = row_max(want, nv);
        const float *got = model_logits(ctx, model_logits_count(ctx) - 1);
        const float diff = max_abs_diff(got, want, nv);
        /* step 0's logits are the prompt's last row, from the prompt's products */
        const float tol = s == 0 ? GPU_PROMPT_TOL(mx) : GPU_DECODE_TOL(mx);
        if (diff > tol) fail_msg("%s decode step %d: |diff| %g > %g", name, s, diff, tol);
        worst_d = s > 0 && diff / (1 + mx) > worst_d ? diff / (1 + mx) : worst_d;
        if (agree && ref_margin(want, nv) < 2 * tol) agree = false;
        if (agree) assert_int_equal(ref_argmax(got, nv), gids.ids[s]);
        assert_int_equal(model_decode(ctx, &gids.ids[s], 1, pos++), STRATA_OK);
    }
    model_context_free(ctx);

    /* 2. splits against the CPU alone: CPU + GPU, GPU + GPU */
    int32_t ids_c[STEPS], ids_s[STEPS];
    float *lc = malloc((size_t)STEPS * nv * sizeof(float)), *ls = malloc((size_t)STEPS * nv * sizeof(float));
    strata_device_init_cpu(&cpu);
    ctx = open_placed(&d, &cpu, all, 1);
    greedy(ctx, &prompt, nv, ids_c, lc);
    model_context_free(ctx);
    int splits = 0;
    if (nl >= 2) {
        for (int kind = 0; kind < 2; kind++) {
            strata_device devs[2];
            if (kind == 0) strata_device_init_cpu(&devs[0]);
            else strata_device_init_backend(&devs[0], gpu_a);
            strata_device_init_backend(&devs[1], gpu_b);
            int32_t cuts[3] = {0, nl / 2, nl};
            ctx = open_placed(&d, devs, cuts, 2);
            greedy(ctx, &prompt, nv, ids_s, ls);
            model_context_free(ctx);
            for (int s = 0; s < STEPS; s++) {
                const float mx = row_max(lc + (size_t)s * nv, nv);
                if (ref_margin(lc + (size_t)s * nv, nv) < 2 * GPU_PROMPT_TOL(mx)) break;
                if (ids_s[s] != ids_c[s])
                    fail_msg("%s %s split: step %d chose %d, the CPU %d", name, kind ? "GPU+GPU" : "CPU+GPU", s,
                             ids_s[s], ids_c[s]);
            }
            splits++;
        }
    }
    print_message("  %-22s GPU: prompt %.2g, decode %.2g (|diff| / (1 + max|logit|)); %d splits agree\n", name,
                  worst_p, worst_d, splits);
    free(lc);
    free(ls);
    free(prompt.ids);
    free(gids.ids);
    free(rl.blob);
    free(gl.blob);
    model_desc_free(&d);
    gguf_close(f);
}

static void test_models_on_gpu(void **state) {
    (void)state;
    if (backend_cuda_count() == 0) {
        print_message("  SKIP: no CUDA device: %s\n", backend_cuda_unavailable_reason());
        skip();
    }
    TESTDATA_REQUIRE();
    backend_inventory *inv = NULL;
    /* two logical devices of the first card, so that GPU + GPU runs on a one-GPU machine */
    if (backend_inventory_from_spec("cuda:0:2GiB,cuda:0:2GiB,cpu", &inv) != STRATA_OK) fail_msg("%s", strata_last_error());
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) check_model(models[i], inv->devices[0], inv->devices[1]);
    for (int i = 0; i < inv->count; i++) assert_int_equal(backend_device_held_bytes(inv->devices[i]), 0);
    backend_inventory_free(inv);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_models_on_gpu)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
