/* The planned loader (runtime/load.c): the plan is the allocation.
 *
 *   - planned == allocated, per device, to the byte, for every model of the shared test data
 *     over several sim inventories (1, 2 and 3 sims; loose and tight): the plan's arena_bytes
 *     equals what the backend device holds after the load (backend_device.arena_bytes), and
 *     everything is given back on free;
 *   - a split run (cpu + two sims, each holding layers) equals the cpu-only run. The logits
 *     are compared for exact equality: the same kernels run on the same bytes (the sims'
 *     arenas are host memory holding byte copies of the weights) in the same order with the
 *     same thread count, and only the hidden state -- copied bit for bit -- crosses a device
 *     boundary, so any difference at all would be a bug; greedy tokens are identical too;
 *   - num_gpu is honoured exactly, or refused with the largest value that fits, and nothing
 *     is allocated on refusal (no sim arena attempted, no arena held);
 *   - an injected allocation failure on each sim in turn is reported with its message and
 *     leaves no arena held (ASan, under `make asan`, checks that nothing leaks). */
#include <dirent.h>
#include <inttypes.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "backend/device.h"
#include "planner/plan.h"
#include "runtime/engine_internal.h"
#include "proc.h"
#include "testdata.h"

static uint64_t zero_reserve[BACKEND_MAX_DEVICES];

/* The folders of shared models the whole-folder tests walk: models/, and arch/ (gemma2,
 * gemma3, phi3, qwen3moe, Mixtral). */
static const char *const model_dirs[] = {"models", "arch"};
static const char *model_dir = "models";

static char *model_path(const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "%s/%s", model_dir, name);
    return testdata_path(rel);
}

/* Opens model_dirs[i] (and makes it the folder model_path reads); NULL, said visibly, where a
 * partial copy of the data lacks it (a failure under CI=true). */
static DIR *open_model_dir(int i) {
    model_dir = model_dirs[i];
    char *dir = testdata_path(model_dir);
    DIR *dp = dir ? opendir(dir) : NULL;
    free(dir);
    if (!dp) {
        if (testdata_in_ci()) fail_msg("%s/ missing under CI=true", model_dir);
        print_message("  SKIP: %s/ not in this copy of the test data\n", model_dir);
    }
    return dp;
}

static backend_inventory *inventory(const char *spec) {
    backend_inventory *inv = NULL;
    if (backend_inventory_from_spec(spec, &inv) != STRATA_OK) fail_msg("spec %s: %s", spec, strata_last_error());
    return inv;
}

static strata_load_params small_params(void) {
    strata_load_params lp = strata_load_default_params();
    lp.model.n_ctx = 128;
    lp.model.n_batch = 32;
    lp.model.n_threads = 2;
    lp.reserve = zero_reserve;
    return lp;
}

static void assert_nothing_held(const backend_inventory *inv) {
    for (int i = 0; i < inv->count; i++) {
        assert_true(backend_device_held_bytes(inv->devices[i]) == 0);
        assert_int_equal(backend_device_arena_count(inv->devices[i]), 0);
    }
}

/* Loads and checks plan vs backend, device by device. Returns the number of devices used. */
static int32_t load_and_check(const char *path, const strata_load_params *lp, backend_inventory *inv,
                              const char *what) {
    strata_engine *e = NULL;
    if (strata_engine_load_planned(path, lp, inv, &e) != STRATA_OK)
        fail_msg("%s on %s: %s", path, what, strata_last_error());
    assert_true(e->planned);
    for (int32_t i = 0; i < e->plan.n_devices; i++) {
        const backend_device *b = inv->devices[e->plan_inv[i]];
        if (backend_device_held_bytes(b) != e->plan.dev[i].arena_bytes)
            fail_msg("%s on %s: device %s planned %" PRIu64 " allocated %zu", path, what, backend_device_label(b),
                     e->plan.dev[i].arena_bytes, backend_device_held_bytes(b));
        assert_true(backend_device_arena_count(b) == (e->plan.dev[i].arena_bytes ? 1 : 0));
    }
    /* the measured report agrees with the plan too */
    strata_engine_device_report rep[PLAN_MAX_DEVICES];
    int32_t nr = strata_engine_report(e, rep, PLAN_MAX_DEVICES);
    assert_int_equal(nr, e->plan.n_devices);
    for (int32_t i = 0; i < nr; i++) {
        const plan_device_use *u = &e->plan.dev[i];
        assert_string_equal(rep[i].name, backend_device_label(inv->devices[e->plan_inv[i]]));
        assert_int_equal(rep[i].layer_start, u->layer_start);
        assert_int_equal(rep[i].layer_end, u->layer_end);
        assert_true(rep[i].weights_bytes == u->weights_bytes);
        assert_true(rep[i].kv_bytes == u->kv_bytes);
        assert_true(rep[i].compute_bytes == u->compute_bytes);
        assert_true(rep[i].total_bytes == u->total_bytes);
        assert_true(rep[i].arena_bytes == u->arena_bytes);
        assert_true(rep[i].headroom_bytes == u->headroom_bytes);
        /* a sim's free memory is its capacity less its arenas: what the load measurably took
         * is exactly its arena, nothing unaccounted (the cpu is not measured) */
        if (rep[i].kind == BACKEND_DEVICE_SIM) {
            assert_true(rep[i].measured_bytes == u->arena_bytes);
            assert_true(rep[i].unaccounted_bytes == 0);
        } else {
            assert_true(rep[i].measured_bytes == 0);
        }
    }
    int32_t used = e->n_devs;
    strata_engine_free(e);
    assert_nothing_held(inv);
    return used;
}

/* The whole model's arena on one GPU-like device: the tight inventories are fractions of it. */
static uint64_t whole_on_sim(const char *path, const strata_load_params *lp) {
    gguf_file *f = NULL;
    assert_int_equal(gguf_open(path, GGUF_OPEN_HEADER_ONLY, &f), STRATA_OK);
    plan_model_options mo = plan_default_model_options();
    mo.num_ctx = lp->model.n_ctx;
    mo.num_batch = lp->model.n_batch;
    plan_model *pm = NULL;
    assert_int_equal(plan_model_init(f, &mo, &pm), STRATA_OK);
    plan_device devs[2] = {{"g", BACKEND_DEVICE_SIM, UINT64_MAX / 4, 0, 100}, {"cpu", BACKEND_DEVICE_CPU, UINT64_MAX / 4, 0, 10}};
    plan_options po = plan_default_options();
    plan_result r;
    assert_int_equal(plan_compute(plan_model_profile(pm), devs, 2, &po, &r), STRATA_OK);
    assert_int_equal(r.layers_offloaded, r.layers_total);
    uint64_t a = r.dev[0].arena_bytes;
    plan_model_free(pm);
    gguf_close(f);
    return a;
}

static void test_planned_equals_allocated(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    int models = 0, split_loads = 0;
    struct dirent *de;
    strata_load_params lp = small_params();
    for (int di = 0; di < 2; di++) {
    DIR *dp = open_model_dir(di);
    if (!dp) continue;
    while ((de = readdir(dp))) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 5, ".gguf") != 0) continue;
        char *path = model_path(de->d_name);
        uint64_t A = whole_on_sim(path, &lp);
        /* loose: 1, 2, 3 sims that each could hold everything; tight: fractions of it, so
         * the model is split across the sims and the cpu */
        char specs[6][512];
        snprintf(specs[0], 512, "sim:1GiB:100:g0,cpu::10");
        snprintf(specs[1], 512, "sim:1GiB:100:g0,sim:1GiB:200:g1,cpu::10");
        snprintf(specs[2], 512, "sim:%" PRIu64 "B:100:g0,cpu::10", A / 2);
        snprintf(specs[3], 512, "sim:%" PRIu64 "B:100:g0,sim:%" PRIu64 "B:200:g1,cpu::10", A * 2 / 5, A * 2 / 5);
        snprintf(specs[4], 512, "sim:%" PRIu64 "B:100:g0,sim:%" PRIu64 "B:150:g1,sim:%" PRIu64 "B:200:g2,cpu::10",
                 A / 3, A / 3, A / 3);
        snprintf(specs[5], 512, "sim:%" PRIu64 "B:100:g0,sim:%" PRIu64 "B:150:g1,sim:%" PRIu64 "B:200:g2,cpu::10",
                 A * 3 / 5, A * 3 / 5, A * 3 / 5);
        for (int s = 0; s < 6; s++) {
            backend_inventory *inv = inventory(specs[s]);
            int32_t used = load_and_check(path, &lp, inv, specs[s]);
            if (used > 2) split_loads++;
            /* other options size other arenas: two sequences, a q8_0 cache where the heads
             * allow it, embeddings kept, another batch */
            strata_load_params lp2 = lp;
            lp2.num_parallel = 2;
            lp2.model.n_batch = 16;
            lp2.model.embeddings = true;
            lp2.model.kv_type = STRATA_TYPE_Q8_0;
            gguf_file *f = NULL;
            model_desc d;
            assert_int_equal(gguf_open(path, GGUF_OPEN_HEADER_ONLY, &f), STRATA_OK);
            assert_int_equal(model_desc_init(f, &d), STRATA_OK);
            if (d.hp.head_dim % 32 != 0) lp2.model.kv_type = STRATA_TYPE_F32;
            model_desc_free(&d);
            gguf_close(f);
            load_and_check(path, &lp2, inv, specs[s]);
            backend_inventory_free(inv);
        }
        free(path);
        models++;
    }
    closedir(dp);
    }
    model_dir = "models";
    print_message("  planned == allocated: %d models x 6 inventories x 2 option sets; %d loads split over 3+ devices\n", models,
                  split_loads);
    assert_true(models > 0);
    assert_true(split_loads >= models); /* the tight inventories really split */
}

/* Runs the prompt then `steps` greedy tokens; records every step's last-token logits. */
static void run_greedy(strata_engine *e, const int32_t *prompt, int32_t n_prompt, int steps, float *logits,
                       int32_t *toks) {
    model_context *ctx = e->ctx;
    int32_t nv = e->desc.hp.n_vocab, nb = model_context_params(ctx)->n_batch;
    for (int32_t i = 0; i < n_prompt; i += nb) {
        int32_t m = n_prompt - i < nb ? n_prompt - i : nb;
        assert_int_equal(model_decode(ctx, prompt + i, m, i), STRATA_OK);
    }
    int32_t pos = n_prompt;
    for (int s = 0; s < steps; s++) {
        const float *l = model_logits(ctx, model_logits_count(ctx) - 1);
        memcpy(logits + (size_t)s * nv, l, (size_t)nv * sizeof(float));
        int32_t best = 0;
        for (int32_t v = 1; v < nv; v++)
            if (l[v] > l[best]) best = v;
        toks[s] = best;
        assert_int_equal(model_decode(ctx, &best, 1, pos++), STRATA_OK);
    }
}

/* Loads `path` over k sims (sim 0 of fraction p0 of the whole model, the others of p1
 * each) plus the cpu; the engine when every sim holds layers and the cpu runs blocks too,
 * else NULL. */
static strata_engine *try_split(const char *path, const strata_load_params *lp, uint64_t A, int k, int p0, int p1,
                                backend_inventory **inv_out) {
    char spec[512];
    size_t o = 0;
    for (int j = 0; j < k; j++)
        o += (size_t)snprintf(spec + o, sizeof spec - o, "sim:%" PRIu64 "B:%d:g%d,", A * (j ? p1 : p0) / 100,
                              100 + 50 * j, j);
    snprintf(spec + o, sizeof spec - o, "cpu::10");
    backend_inventory *inv = inventory(spec);
    for (int j = 0; j < k; j++) assert_true(backend_sim_strict(inv->devices[j]));
    strata_engine *e = NULL;
    if (strata_engine_load_planned(path, lp, inv, &e) != STRATA_OK) fail_msg("%s", strata_last_error());
    if (e->n_devs == k + 1 && e->plan.dev[e->plan.chain[0]].layer_end > 0) {
        *inv_out = inv;
        return e;
    }
    strata_engine_free(e);
    backend_inventory_free(inv);
    return NULL;
}

/* Loads `path` over k sims of fraction pct of the whole model each plus the cpu, such that
 * every sim holds layers and the cpu runs blocks too; where no equal fraction does that (a
 * model of two big expert layers and a small output layer), sims of unequal fractions; NULL
 * when none does. */
static strata_engine *load_split(const char *path, const strata_load_params *lp, uint64_t A, int k,
                                 backend_inventory **inv_out) {
    const int pct[] = {97, 93, 90, 85, 80, 70, 60, 50, 45, 40, 33, 30, 25, 20, 15, 12, 10, 8};
    const size_t np = sizeof pct / sizeof pct[0];
    for (size_t f = 0; f < np; f++) {
        strata_engine *e = try_split(path, lp, A, k, pct[f], pct[f], inv_out);
        if (e) return e;
    }
    for (size_t f = 0; k > 1 && f < np; f++)
        for (size_t g = 0; g < np; g++) {
            if (f == g) continue;
            strata_engine *e = try_split(path, lp, A, k, pct[f], pct[g], inv_out);
            if (e) return e;
        }
    return NULL;
}

/* Every shared model, split over the cpu and 1, 2 and 3 strict sims (each holding layers,
 * the cpu running blocks too), gives the cpu-only run's logits bit for bit and its greedy
 * ids: the sims run the same kernels on the same bytes in the same order, and only the
 * hidden state crosses a device boundary. Strict sims fault on any host access to their
 * arenas outside their ops, so the split cannot pass by reading device memory in place. */
static void test_split_equals_cpu(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    const int steps = 12;
    int32_t prompt[40];
    struct dirent *de;
    int models = 0, splits = 0;
    for (int di = 0; di < 2; di++) {
    DIR *dp = open_model_dir(di);
    if (!dp) continue;
    while ((de = readdir(dp))) {
        size_t len = strlen(de->d_name);
        if (len < 5 || strcmp(de->d_name + len - 5, ".gguf") != 0) continue;
        char *path = model_path(de->d_name);
        strata_load_params lp = small_params();
        uint64_t A = whole_on_sim(path, &lp);
        backend_inventory *one = inventory("cpu::10");
        strata_engine *ec = NULL;
        assert_int_equal(strata_engine_load_planned(path, &lp, one, &ec), STRATA_OK);
        const int32_t nv = ec->desc.hp.n_vocab, nl = ec->desc.hp.n_layer;
        float *lc = malloc((size_t)steps * nv * sizeof(float)), *ls = malloc((size_t)steps * nv * sizeof(float));
        assert_true(lc && ls);
        int32_t tc[16], ts[16];
        int32_t np = 40 < nv ? 40 : nv;
        for (int i = 0; i < np; i++) prompt[i] = (1 + (i * 37) % 200) % nv;
        run_greedy(ec, prompt, np, steps, lc, tc);
        for (int k = 1; k <= 3; k++) {
            backend_inventory *inv = NULL;
            strata_engine *es = load_split(path, &lp, A, k, &inv);
            if (!es) {
                /* the cpu one block and each sim at least one layer (the output counts) */
                if (nl >= k) fail_msg("%s (%d blocks): no split over %d sims found", de->d_name, nl, k);
                print_message("  %s: %d layers, no split over %d sims\n", de->d_name, nl, k);
                continue;
            }
            run_greedy(es, prompt, np, steps, ls, ts);
            float maxd = 0;
            for (size_t i = 0; i < (size_t)steps * nv; i++) {
                float dd = lc[i] > ls[i] ? lc[i] - ls[i] : ls[i] - lc[i];
                if (dd > maxd) maxd = dd;
            }
            char where[256];
            size_t o = 0;
            for (int32_t j = 0; j < es->n_devs; j++) {
                const plan_device_use *u = &es->plan.dev[es->dev_plan[j]];
                o += (size_t)snprintf(where + o, sizeof where - o, " %s [%d,%d)", es->devs[j].name, u->layer_start,
                                      u->layer_end);
            }
            print_message("  %s over%s: max |logit diff| vs cpu-only over %d steps = %g\n", de->d_name, where, steps,
                          maxd);
            assert_true(maxd == 0.0f);
            for (int s = 0; s < steps; s++) assert_int_equal(tc[s], ts[s]);
            /* the last sim holds the logits in its arena: reading them there from the host
             * faults, which is what keeps this comparison honest */
            assert_int_equal(proc_child_read(es->devs[es->n_devs - 1].arena.base), SIGSEGV);
            strata_engine_free(es);
            assert_nothing_held(inv);
            backend_inventory_free(inv);
            splits++;
        }
        free(lc);
        free(ls);
        strata_engine_free(ec);
        assert_nothing_held(one);
        backend_inventory_free(one);
        free(path);
        models++;
    }
    closedir(dp);
    }
    model_dir = "models";
    print_message("  %d models, %d split runs equal to the cpu-only run\n", models, splits);
    assert_true(models > 0);
    assert_true(splits >= 2 * models);
}

static void test_num_gpu(void **state) {
    (void)state;
    model_dir = "models";
    TESTDATA_REQUIRE();
    char *path = model_path("stories260K-Q8_0.gguf");
    strata_load_params lp = small_params();
    uint64_t A = whole_on_sim(path, &lp);
    char spec[128];
    snprintf(spec, sizeof spec, "sim:%" PRIu64 "B:100:g0,cpu::10", A * 3 / 5);
    backend_inventory *inv = inventory(spec);
    int32_t n_total = -1, largest_ok = -1, refused = 0;
    for (int32_t N = 0; N <= 8; N++) {
        lp.plan.num_gpu = N;
        uint64_t attempts = backend_sim_alloc_attempts();
        strata_engine *e = NULL;
        strata_status st = strata_engine_load_planned(path, &lp, inv, &e);
        if (st == STRATA_OK) {
            n_total = e->plan.layers_total;
            int32_t want = N < n_total ? N : n_total;
            assert_int_equal(e->plan.layers_offloaded, want); /* exactly */
            const plan_device_use *g = &e->plan.dev[0];
            assert_int_equal(g->layer_end - g->layer_start, want);
            assert_true(backend_device_held_bytes(inv->devices[0]) == g->arena_bytes);
            assert_int_equal(largest_ok, N - 1); /* feasible values are a prefix */
            largest_ok = N;
            strata_engine_free(e);
        } else {
            assert_int_equal(st, STRATA_ERR_NO_FIT);
            assert_null(e);
            char want[64];
            snprintf(want, sizeof want, "the largest that does is num_gpu %d", largest_ok);
            if (!strstr(strata_last_error(), want)) fail_msg("num_gpu %d: '%s' lacks '%s'", N, strata_last_error(), want);
            /* refused before any allocation */
            assert_true(backend_sim_alloc_attempts() == attempts);
            refused++;
        }
        assert_nothing_held(inv);
    }
    print_message("  num_gpu: 0..%d honoured, %d refused naming %d\n", largest_ok, refused, largest_ok);
    assert_true(largest_ok >= 1 && refused >= 1);
    backend_inventory_free(inv);

    /* a model that cannot fit at all: the shortfall, nothing allocated */
    inv = inventory("sim:64KiB:100:g0,cpu:64KiB:10");
    lp.plan.num_gpu = -1;
    uint64_t attempts = backend_sim_alloc_attempts();
    strata_engine *e = NULL;
    assert_int_equal(strata_engine_load_planned(path, &lp, inv, &e), STRATA_ERR_NO_FIT);
    assert_non_null(strstr(strata_last_error(), "short"));
    assert_true(backend_sim_alloc_attempts() == attempts);
    assert_nothing_held(inv);
    backend_inventory_free(inv);
    free(path);
}

static void test_injected_failure(void **state) {
    (void)state;
    model_dir = "models";
    TESTDATA_REQUIRE();
    char *path = model_path("micro-llama-Q4_0.gguf");
    strata_load_params lp = small_params();
    uint64_t A = whole_on_sim(path, &lp);
    /* two sims that both get blocks (how big they must be depends on the model's shape and
     * on how much scratch a device needs beside its blocks) */
    char spec[256];
    backend_inventory *inv = NULL;
    const int pct[] = {40, 45, 50, 35, 55, 30, 60};
    for (size_t f = 0; f < sizeof pct / sizeof pct[0] && !inv; f++) {
        snprintf(spec, sizeof spec, "sim:%" PRIu64 "B:100:g0,sim:%" PRIu64 "B:200:g1,cpu::10", A * pct[f] / 100,
                 A * pct[f] / 100);
        backend_inventory *candidate = inventory(spec);
        strata_engine *e = NULL;
        if (strata_engine_load_planned(path, &lp, candidate, &e) == STRATA_OK && e->n_devs == 3) inv = candidate;
        strata_engine_free(e);
        if (!inv) backend_inventory_free(candidate);
    }
    assert_non_null(inv);
    assert_nothing_held(inv);
    for (int d = 0; d < 2; d++) {
        backend_sim_fail_alloc(inv->devices[d], 1);
        strata_engine *e = NULL;
        assert_int_equal(strata_engine_load_planned(path, &lp, inv, &e), STRATA_ERR_NOMEM);
        assert_null(e);
        const char *msg = strata_last_error();
        print_message("  fail on %s: %s\n", backend_device_label(inv->devices[d]), msg);
        assert_non_null(strstr(msg, "injected"));
        assert_non_null(strstr(msg, backend_device_label(inv->devices[d])));
        assert_nothing_held(inv);
    }
    /* and the same inventory loads afterwards */
    assert_true(load_and_check(path, &lp, inv, spec) == 3);
    backend_inventory_free(inv);
    free(path);
}

static void test_embeddings(void **state) {
    (void)state;
    model_dir = "models";
    TESTDATA_REQUIRE();
    char *path = model_path("micro-qwen2-Q8_0.gguf");
    strata_load_params lp = small_params();
    lp.model.embeddings = true;
    uint64_t A = whole_on_sim(path, &lp);
    char spec[256];
    snprintf(spec, sizeof spec, "sim:%" PRIu64 "B:100:g0,cpu::10", A / 2);
    backend_inventory *inv = inventory(spec);
    /* planned == allocated holds with the hidden-state rows */
    assert_true(load_and_check(path, &lp, inv, spec) >= 1);
    strata_engine *e = NULL;
    assert_int_equal(strata_engine_load_planned(path, &lp, inv, &e), STRATA_OK);
    int32_t toks[5] = {1, 2, 3, 4, 5};
    assert_int_equal(model_decode(e->ctx, toks, 5, 0), STRATA_OK);
    assert_int_equal(model_hidden_count(e->ctx), 5);
    assert_non_null(model_hidden(e->ctx, 4));
    strata_engine_free(e);
    backend_inventory_free(inv);
    free(path);
}

/* Experts kept on the host (num_cpu_moe) for the shared MoE files: the whole model on one
 * strict sim with the experts of its first block (then of both) multiplied by the host's
 * kernels where the file maps them, the attention and router on the sim; planned ==
 * allocated (the loader checks it), and the logits and greedy ids of the cpu-only run bit for
 * bit (the same kernels on the same bytes). */
static void test_experts_on_host(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    static const char *const names[] = {"micro-qwen3moe-F32.gguf", "micro-qwen3moe-Q4_K_M.gguf", "micro-mixtral-Q8_0.gguf"};
    model_dir = "arch";
    const int steps = 8;
    int32_t prompt[20];
    for (size_t c = 0; c < sizeof names / sizeof names[0]; c++) {
        char rel[128];
        snprintf(rel, sizeof rel, "arch/%s", names[c]);
        if (!testdata_has(rel)) {
            if (testdata_in_ci()) fail_msg("%s missing under CI=true", rel);
            print_message("  %s SKIP: not in this copy of the test data\n", rel);
            continue;
        }
        char *path = model_path(names[c]);
        strata_load_params lp = small_params();
        backend_inventory *one = inventory("cpu::10");
        strata_engine *ec = NULL;
        assert_int_equal(strata_engine_load_planned(path, &lp, one, &ec), STRATA_OK);
        const int32_t nv = ec->desc.hp.n_vocab;
        for (int i = 0; i < 20; i++) prompt[i] = (1 + (i * 37) % 200) % nv;
        float *lc = malloc((size_t)steps * nv * sizeof(float)), *ls = malloc((size_t)steps * nv * sizeof(float));
        int32_t tc[8], ts[8];
        run_greedy(ec, prompt, 20, steps, lc, tc);
        for (int32_t ncm = 1; ncm <= 2; ncm++) {
            backend_inventory *inv = inventory("sim:1GiB:100:g0,cpu::10");
            lp.num_cpu_moe = ncm;
            strata_engine *es = NULL;
            if (strata_engine_load_planned(path, &lp, inv, &es) != STRATA_OK) fail_msg("%s", strata_last_error());
            assert_int_equal(model_context_params(es->ctx)->n_cpu_moe, ncm);
            const plan_device_use *g = &es->plan.dev[0];
            assert_int_equal(g->layer_end, es->desc.hp.n_layer + 1); /* everything on the sim */
            run_greedy(es, prompt, 20, steps, ls, ts);
            assert_memory_equal(lc, ls, (size_t)steps * nv * sizeof(float));
            for (int s = 0; s < steps; s++) assert_int_equal(tc[s], ts[s]);
            print_message("  %s: experts of %d block(s) on the host, the rest on a strict sim: cpu-only logits bit for bit\n",
                          names[c], ncm);
            strata_engine_free(es);
            assert_nothing_held(inv);
            backend_inventory_free(inv);
        }
        free(lc);
        free(ls);
        strata_engine_free(ec);
        backend_inventory_free(one);
        free(path);
    }
    model_dir = "models";
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_planned_equals_allocated),
        cmocka_unit_test(test_split_equals_cpu),
        cmocka_unit_test(test_num_gpu),
        cmocka_unit_test(test_injected_failure),
        cmocka_unit_test(test_embeddings),
        cmocka_unit_test(test_experts_on_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
