/* The model profile from GGUF headers, the what-if files, and the 70B scenario.
 *
 * - KV bytes per token follow from the hyper-parameters alone (f16: 2 bytes, q8_0: 34 per
 *   32 elements), computed here by hand and compared with the profile;
 * - planned == allocated on the CPU for every shared model: the engine's own context, made
 *   with the same options, reserves exactly the arena the plan reports;
 * - a Llama-70B-shaped Q4_K_M file (80 layers, dim 8192, 64 heads, 8 KV heads, ffn 28672,
 *   vocab 128256) written sparse (ftruncate) and header-only plans identically, and on
 *   sim:12GiB:360:RTX3060,sim:12GiB:288:A2000,sim:6GiB:288:A2000 with num_ctx 4096 every
 *   GPU is filled to its budget less than one layer. */
#include "testdata.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/ops.h"
#include "model/model.h"
#include "planner/plan.h"

#define GiB (1024ull * 1024ull * 1024ull)
#define MiB (1024ull * 1024ull)

static char tmpdir[256];

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/strata-plan-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char p[512];
    snprintf(p, sizeof p, "%s/llama70b.gguf", tmpdir);
    unlink(p);
    snprintf(p, sizeof p, "%s/llama70b-header.gguf", tmpdir);
    unlink(p);
    rmdir(tmpdir);
    return 0;
}

static const plan_llama_shape llama70b = {.n_layer = 80,
                                          .n_embd = 8192,
                                          .n_head = 64,
                                          .n_head_kv = 8,
                                          .n_ff = 28672,
                                          .n_vocab = 128256,
                                          .n_ctx_train = 131072,
                                          .q4_k_m = true};

static void test_kv_per_token_by_hand(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/llama70b-header.gguf", tmpdir);
    assert_int_equal(plan_whatif_write_llama(path, &llama70b, false, NULL), STRATA_OK);
    gguf_file *f;
    assert_int_equal(gguf_open(path, GGUF_OPEN_HEADER_ONLY, &f), STRATA_OK);
    /* head_dim 128, 8 KV heads: per token per layer K and V of 1024 elements each */
    const uint64_t elems = 2ull * 8 * 128;
    struct {
        strata_type t;
        uint64_t bytes_per_token;
    } cases[] = {{STRATA_TYPE_F16, elems * 2}, {STRATA_TYPE_Q8_0, elems / 32 * 34}, {STRATA_TYPE_F32, elems * 4}};
    for (size_t i = 0; i < 3; i++) {
        plan_model_options mo = plan_default_model_options();
        mo.num_ctx = 4096;
        mo.kv_type = cases[i].t;
        plan_model *m;
        assert_int_equal(plan_model_init(f, &mo, &m), STRATA_OK);
        const plan_profile *p = plan_model_profile(m);
        assert_int_equal(p->n_layers, 81);
        uint64_t kv, comp;
        p->segment_bytes(p->ctx, BACKEND_DEVICE_SIM, 10, 11, &kv, &comp);
        assert_true(kv == cases[i].bytes_per_token * 4096);
        p->segment_bytes(p->ctx, BACKEND_DEVICE_SIM, 10, 30, &kv, &comp);
        assert_true(kv == 20 * cases[i].bytes_per_token * 4096);
        /* the output layer alone has no KV */
        p->segment_bytes(p->ctx, BACKEND_DEVICE_SIM, 80, 81, &kv, &comp);
        assert_true(kv == 0);
        /* num_parallel multiplies the cache */
        plan_model_free(m);
        mo.num_parallel = 2;
        assert_int_equal(plan_model_init(f, &mo, &m), STRATA_OK);
        p = plan_model_profile(m);
        p->segment_bytes(p->ctx, BACKEND_DEVICE_SIM, 10, 11, &kv, &comp);
        assert_true(kv == cases[i].bytes_per_token * 8192);
        plan_model_free(m);
    }
    gguf_close(f);
}

/* Every shared model: the profile's weights are the file's tensors, and the CPU arena of an
 * all-CPU plan is exactly what the engine reserves for the same options. */
static void test_planned_equals_allocated_cpu(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    char *dir = testdata_path("models");
    DIR *dh = opendir(dir);
    assert_non_null(dh);
    struct dirent *de;
    int checked = 0;
    while ((de = readdir(dh))) {
        size_t len = strlen(de->d_name);
        if (len < 5 || strcmp(de->d_name + len - 5, ".gguf") != 0) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        gguf_file *f;
        assert_int_equal(gguf_open(path, GGUF_OPEN_DEFAULT, &f), STRATA_OK);
        static const struct {
            int32_t ctx, batch, par;
            strata_type kv;
        } opts[] = {{0, 0, 1, STRATA_TYPE_F16}, {256, 64, 2, STRATA_TYPE_Q8_0}, {100, 7, 1, STRATA_TYPE_F32}};
        for (size_t o = 0; o < 3; o++) {
            plan_model_options mo = plan_default_model_options();
            mo.num_ctx = opts[o].ctx;
            mo.num_batch = opts[o].batch;
            mo.num_parallel = opts[o].par;
            mo.kv_type = opts[o].kv;
            plan_model *m;
            strata_status st = plan_model_init(f, &mo, &m);
            if (st == STRATA_ERR_UNSUPPORTED) { /* e.g. q8_0 cache with a head_dim not /32 */
                continue;
            }
            if (st != STRATA_OK) fail_msg("%s: %s", de->d_name, strata_last_error());
            const plan_profile *p = plan_model_profile(m);
            uint64_t sum = p->host_bytes;
            for (int32_t l = 0; l < p->n_layers; l++) sum += p->cpu_weight_bytes[l];
            /* every tensor counted once (tied output counted once) */
            uint64_t file = 0;
            for (int64_t t = 0; t < gguf_tensor_count(f); t++) file += gguf_tensor_at(f, t)->bytes;
            assert_true(sum == file);

            plan_device devs[1] = {{.label = "cpu", .kind = BACKEND_DEVICE_CPU, .free_bytes = 64 * GiB, .gbps = 20}};
            plan_options po = plan_default_options();
            plan_result r;
            assert_int_equal(plan_compute(p, devs, 1, &po, &r), STRATA_OK);
            assert_int_equal(r.dev[0].layer_end, p->n_layers);

            model_desc d;
            assert_int_equal(model_desc_init(f, &d), STRATA_OK);
            model_params mp = model_default_params();
            mp.n_ctx = plan_model_n_ctx(m) * opts[o].par;
            mp.n_batch = opts[o].batch;
            mp.kv_type = opts[o].kv;
            mp.n_threads = 1;
            strata_device dev;
            strata_device_init_cpu(&dev);
            model_context *ctx;
            if (model_context_init(&d, &mp, &dev, &ctx) != STRATA_OK) fail_msg("%s: %s", de->d_name, strata_last_error());
            if (dev.arena.size != r.dev[0].arena_bytes)
                fail_msg("%s: planned %llu bytes, the engine allocated %zu", de->d_name,
                         (unsigned long long)r.dev[0].arena_bytes, dev.arena.size);
            model_context_free(ctx);
            model_desc_free(&d);
            plan_model_free(m);
            checked++;
        }
        gguf_close(f);
    }
    closedir(dh);
    free(dir);
    print_message("planned == allocated on the CPU for %d model/option pairs\n", checked);
    assert_true(checked >= 20);
}

/* Bytes a device needs for layer l (its weights and its cache). */
static uint64_t layer_need(const plan_profile *p, int32_t l) {
    uint64_t kv, comp;
    p->segment_bytes(p->ctx, BACKEND_DEVICE_SIM, l, l + 1, &kv, &comp);
    return p->gpu_weight_bytes[l] + kv;
}

/* Each GPU's next layer on either side of its range, where another device has it (UINT64_MAX
 * where none): a full GPU cannot take either. */
static void adjacent_needs(const plan_profile *p, const plan_result *r, int32_t n_gpus, uint64_t *need) {
    for (int32_t i = 0; i < n_gpus; i++) {
        need[i] = UINT64_MAX;
        const int32_t below = r->dev[i].layer_start - 1, above = r->dev[i].layer_end;
        if (below >= 0) need[i] = layer_need(p, below);
        if (above < 80 && layer_need(p, above) < need[i]) need[i] = layer_need(p, above);
    }
}

static void plan_70b(const char *path, gguf_open_flags flags, plan_result *r, uint64_t *layer_min, uint64_t *adjacent) {
    gguf_file *f;
    if (gguf_open(path, flags, &f) != STRATA_OK) fail_msg("%s", strata_last_error());
    plan_model_options mo = plan_default_model_options();
    mo.num_ctx = 4096;
    plan_model *m;
    if (plan_model_init(f, &mo, &m) != STRATA_OK) fail_msg("%s", strata_last_error());
    const plan_profile *p = plan_model_profile(m);

    backend_inventory *inv;
    assert_int_equal(
        backend_inventory_from_spec("sim:12GiB:360:RTX3060,sim:12GiB:288:A2000,sim:6GiB:288:A2000,cpu::50", &inv),
        STRATA_OK);
    plan_device devs[8];
    int32_t nd;
    assert_int_equal(plan_devices_from_inventory(inv, NULL, devs, NULL, &nd), STRATA_OK);
    assert_int_equal(nd, 4);
    devs[3].free_bytes = 64 * GiB; /* what-if: the host this model would run on */
    plan_options po = plan_default_options();
    if (plan_compute(p, devs, nd, &po, r) != STRATA_OK) fail_msg("%s", strata_last_error());

    *layer_min = UINT64_MAX;
    for (int32_t l = 0; l < 80; l++)
        if (layer_need(p, l) < *layer_min) *layer_min = layer_need(p, l);
    adjacent_needs(p, r, 3, adjacent);
    print_message("70B Q4_K_M (%s): %.2f GiB of weights; one layer >= %.0f MiB\n",
                  flags == GGUF_OPEN_HEADER_ONLY ? "header-only" : "sparse",
                  (double)(gguf_file_size(f) - gguf_data_offset(f)) / (double)GiB, (double)*layer_min / (double)MiB);
    for (int32_t i = 0; i < nd; i++) {
        const plan_device_use *u = &r->dev[i];
        print_message("  %-9s layers %2d-%2d (%2d)  weights %6.0f MiB  kv %4.0f MiB  compute %4.0f MiB  total %6.0f MiB"
                      "  budget %6.0f MiB  headroom %4.0f MiB\n",
                      devs[i].label, u->layer_start, u->layer_end - 1, u->layer_end - u->layer_start,
                      (double)u->weights_bytes / MiB, (double)u->kv_bytes / MiB, (double)u->compute_bytes / MiB,
                      (double)u->total_bytes / MiB, (double)u->budget_bytes / MiB, (double)u->headroom_bytes / MiB);
    }
    print_message("  offloaded %d/%d, predicted %.2f tokens/s\n  %s\n", r->layers_offloaded, r->layers_total,
                  r->tokens_per_second, r->explanation);
    backend_inventory_free(inv);
    plan_model_free(m);
    gguf_close(f);
}

static void test_70b_scenario(void **state) {
    (void)state;
    char sparse[512], header[512];
    snprintf(sparse, sizeof sparse, "%s/llama70b.gguf", tmpdir);
    snprintf(header, sizeof header, "%s/llama70b-header.gguf", tmpdir);
    uint64_t full = 0;
    assert_int_equal(plan_whatif_write_llama(sparse, &llama70b, true, &full), STRATA_OK);
    assert_int_equal(plan_whatif_write_llama(header, &llama70b, false, NULL), STRATA_OK);
    struct stat sb;
    assert_int_equal(stat(sparse, &sb), 0);
    assert_true((uint64_t)sb.st_size == full);
    assert_true(full > 39 * GiB && full < 41 * GiB); /* 42.5 GB, as Ollama's llama3:70b-q4_K_M */
    assert_true((uint64_t)sb.st_blocks * 512 < 16 * MiB); /* sparse: the header only */

    plan_result r, r2;
    uint64_t layer_min, adjacent[3];
    plan_70b(sparse, GGUF_OPEN_DEFAULT, &r, &layer_min, adjacent);
    plan_70b(header, GGUF_OPEN_HEADER_ONLY, &r2, &layer_min, adjacent);
    assert_memory_equal(&r.dev, &r2.dev, sizeof r.dev);

    /* every GPU used, each filled until the layer next to its range would not fit (layers
     * differ: Q4_K_M gives every third one Q6_K matrices, so that can be more than the
     * smallest layer) */
    for (int32_t i = 0; i < 3; i++) {
        assert_true(r.dev[i].layer_end > r.dev[i].layer_start);
        assert_true(r.dev[i].total_bytes <= r.dev[i].budget_bytes);
        assert_true(r.dev[i].headroom_bytes < adjacent[i]);
        assert_true(adjacent[i] >= layer_min);
        assert_true(r.dev[i].reserve_bytes == PLAN_DEFAULT_GPU_RESERVE);
    }
    /* the output layer on the last GPU of the chain; the CPU holds the first layers */
    int32_t last = r.chain[r.n_chain - 1];
    assert_int_equal(r.dev[last].layer_end, 81);
    assert_int_equal(r.dev[3].layer_start, 0);
    assert_true(r.layers_offloaded > 40 && r.layers_offloaded < 81);
    assert_non_null(strstr(r.explanation, "needs"));
    assert_non_null(strstr(r.explanation, "reserve"));

    /* num_gpu: all 81 is refused with the largest that fits; that one is honoured */
    gguf_file *f;
    assert_int_equal(gguf_open(header, GGUF_OPEN_HEADER_ONLY, &f), STRATA_OK);
    plan_model_options mo = plan_default_model_options();
    mo.num_ctx = 4096;
    plan_model *m;
    assert_int_equal(plan_model_init(f, &mo, &m), STRATA_OK);
    plan_device devs[4] = {
        {.label = "RTX3060", .kind = BACKEND_DEVICE_SIM, .free_bytes = 12 * GiB, .reserve_bytes = 256 * MiB, .gbps = 360},
        {.label = "A2000 #1", .kind = BACKEND_DEVICE_SIM, .free_bytes = 12 * GiB, .reserve_bytes = 256 * MiB, .gbps = 288},
        {.label = "A2000 #2", .kind = BACKEND_DEVICE_SIM, .free_bytes = 6 * GiB, .reserve_bytes = 256 * MiB, .gbps = 288},
        {.label = "cpu", .kind = BACKEND_DEVICE_CPU, .free_bytes = 64 * GiB, .gbps = 50},
    };
    plan_options po = plan_default_options();
    po.num_gpu = 81;
    plan_result r3;
    assert_int_equal(plan_compute(plan_model_profile(m), devs, 4, &po, &r3), STRATA_ERR_NO_FIT);
    char want[64];
    snprintf(want, sizeof want, "the largest that does is num_gpu %d", r.layers_offloaded);
    assert_non_null(strstr(strata_last_error(), want));
    print_message("  num_gpu 81: %s\n", strata_last_error());
    po.num_gpu = r.layers_offloaded;
    assert_int_equal(plan_compute(plan_model_profile(m), devs, 4, &po, &r3), STRATA_OK);
    assert_int_equal(r3.layers_offloaded, r.layers_offloaded);
    /* too little host memory: refused with the shortfall */
    devs[3].free_bytes = 4 * GiB;
    po = plan_default_options();
    assert_int_equal(plan_compute(plan_model_profile(m), devs, 4, &po, &r3), STRATA_ERR_NO_FIT);
    assert_non_null(strstr(strata_last_error(), "short"));
    print_message("  4 GiB host: %s\n", strata_last_error());
    plan_model_free(m);
    gguf_close(f);
}

/* Budgets are exact to the byte: a sim of exactly the planned total plus its reserve holds
 * the plan, one byte less does not; and the planned arena can be allocated on that sim. */
static void test_tight_to_the_byte(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    static const char *const models[] = {"models/stories260K-f32.gguf", "models/micro-qwen3-Q4_K_M.gguf",
                                         "models/micro-llama-Q8_0.gguf"};
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        char *path = testdata_path(models[i]);
        gguf_file *f;
        assert_int_equal(gguf_open(path, GGUF_OPEN_HEADER_ONLY, &f), STRATA_OK);
        plan_model_options mo = plan_default_model_options();
        plan_model *m;
        assert_int_equal(plan_model_init(f, &mo, &m), STRATA_OK);
        const plan_profile *p = plan_model_profile(m);
        plan_device devs[2] = {
            {.label = "gpu", .kind = BACKEND_DEVICE_SIM, .free_bytes = 64 * GiB, .reserve_bytes = 256 * MiB, .gbps = 300},
            {.label = "cpu", .kind = BACKEND_DEVICE_CPU, .free_bytes = 64 * GiB, .gbps = 20},
        };
        plan_options po = plan_default_options();
        plan_result r;
        assert_int_equal(plan_compute(p, devs, 2, &po, &r), STRATA_OK);
        assert_int_equal(r.layers_offloaded, p->n_layers);
        uint64_t total = r.dev[0].total_bytes;
        devs[0].free_bytes = total + 256 * MiB;
        assert_int_equal(plan_compute(p, devs, 2, &po, &r), STRATA_OK);
        assert_int_equal(r.layers_offloaded, p->n_layers);
        assert_true(r.dev[0].headroom_bytes == 0);
        /* the planned arena fits a sim device of that capacity less the reserve, exactly */
        backend_device *sim = backend_sim_device_new("gpu", total, 300);
        void *arena;
        assert_int_equal(backend_device_arena_alloc(sim, r.dev[0].arena_bytes, &arena), STRATA_OK);
        backend_device_free(sim);
        devs[0].free_bytes = total + 256 * MiB - 1;
        assert_int_equal(plan_compute(p, devs, 2, &po, &r), STRATA_OK);
        assert_true(r.layers_offloaded < p->n_layers);
        assert_true(r.dev[0].total_bytes <= total - 1);
        plan_model_free(m);
        gguf_close(f);
        free(path);
    }
}

/* The sliding-window rings as the planner counts them, from the header alone: gemma3's micro
 * file (window 8; layers 0-4 local, 5 global, README) with num_ctx 256 and num_batch 16 keeps
 * 8 + 16 positions in 5 layers: 5 x (256 - 24) positions of K and V fewer, counted by hand
 * from the heads (1 KV head of 64, F16: 2 x 64 x 2 bytes per position and layer). With
 * num_batch 256 a ring would hold as much as the context: no ring. */
static void test_swa_ring_counted(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    char *path = testdata_path("arch/micro-gemma3-Q8_0.gguf");
    if (!path || access(path, R_OK) != 0) {
        free(path);
        if (testdata_in_ci()) fail_msg("arch/micro-gemma3-Q8_0.gguf missing under CI=true");
        print_message("  SKIP: arch/ not in this copy of the test data\n");
        return;
    }
    gguf_file *f = NULL;
    assert_int_equal(gguf_open(path, GGUF_OPEN_HEADER_ONLY, &f), STRATA_OK);
    free(path);
    plan_model_options mo = plan_default_model_options();
    mo.num_ctx = 256;
    mo.num_batch = 16;
    plan_model *pm = NULL;
    assert_int_equal(plan_model_init(f, &mo, &pm), STRATA_OK);
    plan_swa_cache c = plan_model_swa_cache(pm);
    assert_int_equal(c.local_layers, 5);
    assert_int_equal(c.window, 8);
    assert_true(c.kv_full_bytes - c.kv_bytes == 5ull * (256 - 24) * 2 * 64 * 2);
    /* what the device arenas are sized with is the ring's */
    uint64_t kv = 0, compute = 0;
    plan_model_profile(pm)->segment_bytes(plan_model_profile(pm)->ctx, BACKEND_DEVICE_CPU, 0, 7, &kv, &compute);
    assert_true(kv == c.kv_bytes);
    plan_model_free(pm);
    mo.num_batch = 256;
    assert_int_equal(plan_model_init(f, &mo, &pm), STRATA_OK);
    c = plan_model_swa_cache(pm);
    assert_int_equal(c.local_layers, 0);
    assert_true(c.kv_bytes == c.kv_full_bytes);
    plan_model_free(pm);
    gguf_close(f);
}

/* Qwen3-30B-A3B's shape (48 layers, 128 experts of which 8 are used, expert FFN 768, dim
 * 2048) as a header-only file, Q4_K matrices (about 17 GiB), planned on a 12 GiB GPU and
 * the CPU. Whole layers: the GPU holds some layers, the CPU reads the rest at its slower
 * speed. Experts on the CPU: a decoded token reads only 8 of 128 experts, so the
 * attention of every layer on the GPU and the experts at the CPU's speed is predicted to be
 * faster, and the planner chooses it (and says so); forcing num_cpu_moe = 48 puts every
 * layer's attention on the GPU with every expert on the CPU; the GPU's arena is what the
 * engine's sizing gives for its range with those experts left out (planned == allocated is
 * checked by loading in tests/runtime on the micro MoE file). */
static void test_experts_on_cpu(void **state) {
    (void)state;
    char path[] = "/tmp/strata-moe-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    plan_moe_shape sh = {48, 2048, 32, 4, 128, 128, 8, 768, 151936, STRATA_TYPE_Q4_K};
    uint64_t bytes = 0;
    assert_int_equal(plan_whatif_write_qwen3moe(path, &sh, false, &bytes), STRATA_OK);
    gguf_file *f = NULL;
    assert_int_equal(gguf_open(path, GGUF_OPEN_HEADER_ONLY, &f), STRATA_OK);
    plan_device devs[2] = {{"g", BACKEND_DEVICE_SIM, 12ull << 30, 256ull << 20, 360},
                           {"cpu", BACKEND_DEVICE_CPU, 64ull << 30, 0, 50}};
    plan_options po = plan_default_options();
    plan_model_options mo = plan_default_model_options();
    mo.num_ctx = 8192;
    /* whole layers */
    plan_model *pm = NULL;
    plan_result whole, chosen, forced;
    mo.num_cpu_moe = 0;
    assert_int_equal(plan_compute_moe(f, &mo, devs, 2, &po, &pm, &whole), STRATA_OK);
    assert_int_equal(plan_model_n_cpu_moe(pm), 0);
    assert_true(whole.layers_offloaded < whole.layers_total); /* 17 GiB do not fit 12 */
    plan_model_free(pm);
    /* the planner's choice */
    mo.num_cpu_moe = -1;
    assert_int_equal(plan_compute_moe(f, &mo, devs, 2, &po, &pm, &chosen), STRATA_OK);
    const int32_t n = plan_model_n_cpu_moe(pm);
    print_message("  Qwen3-30B-A3B shape (%.1f GiB): whole layers %d/%d offloaded, %.1f tok/s; experts of %d blocks "
                  "on the CPU: %d/%d, %.1f tok/s\n  %s\n",
                  (double)bytes / (1 << 30), whole.layers_offloaded, whole.layers_total, whole.tokens_per_second, n,
                  chosen.layers_offloaded, chosen.layers_total, chosen.tokens_per_second, chosen.explanation);
    assert_true(n > 0);
    assert_true(chosen.tokens_per_second > whole.tokens_per_second);
    assert_non_null(strstr(chosen.explanation, "stay on the CPU"));
    /* the GPU's arena: the engine's sizing of its range, experts of blocks < n left out */
    const plan_device_use *g = &chosen.dev[0];
    const model_params *p = plan_model_params(pm);
    model_desc d;
    assert_int_equal(model_desc_init(f, &d), STRATA_OK);
    const int32_t nl = d.hp.n_layer;
    const int32_t ge = g->layer_end < nl ? g->layer_end : nl;
    size_t want = model_device_arena_bytes(&d, p, &backend_sim_ops, g->layer_start, ge, g->layer_end == nl + 1);
    assert_true(g->arena_bytes == want);
    size_t experts = 0;
    for (int32_t il = g->layer_start; il < ge && il < n; il++) experts += model_layer_expert_arena_bytes(&d, il);
    assert_true(experts > 0);
    /* ... which is all its tensors but those experts */
    assert_true(want + experts == model_segment_bytes(&d, p, &backend_sim_ops, g->layer_start, ge, g->layer_end == nl + 1) +
                                      model_weight_arena_bytes(&d, g->layer_start, ge, g->layer_end == nl + 1));
    model_desc_free(&d);
    plan_model_free(pm);
    /* forced: every block's experts on the CPU, every block's attention on the GPU */
    mo.num_cpu_moe = 48;
    assert_int_equal(plan_compute_moe(f, &mo, devs, 2, &po, &pm, &forced), STRATA_OK);
    assert_int_equal(plan_model_n_cpu_moe(pm), 48);
    assert_int_equal(forced.layers_offloaded, forced.layers_total);
    assert_non_null(strstr(forced.explanation, "num_cpu_moe 48"));
    plan_model_free(pm);
    gguf_close(f);
    unlink(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kv_per_token_by_hand),
        cmocka_unit_test(test_planned_equals_allocated_cpu),
        cmocka_unit_test(test_70b_scenario),
        cmocka_unit_test(test_tight_to_the_byte),
        cmocka_unit_test(test_swa_ring_counted),
        cmocka_unit_test(test_experts_on_cpu),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
