/* Placement against an independent brute force: on hundreds of seeded random small cases,
 * every assignment of layers to devices is enumerated (each device one contiguous range, the
 * CPU's range a prefix), checked against the budgets from scratch, costed, and the best is
 * chosen by the rule of plan.h. The planner must reach the same cost, the same number of
 * GPUs and the same number of offloaded layers; num_gpu must be honoured exactly or refused
 * with the largest value the brute force finds feasible. Every plan is also re-checked on
 * its own: ranges cover the layers once, no device exceeds free - reserve, the reported
 * bytes and cost add up. */
#include "testdata.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "planner/plan.h"

#define MAXL 8
#define MAXG 4

typedef struct {
    int32_t n;
    uint64_t gw[MAXL], cw[MAXL], rd[MAXL], kv[MAXL], comp[MAXL];
    uint64_t host, cpu_base, gpu_base, logits;
} rcase;

/* KV: sum over the blocks of the range; compute: a base, the largest layer scratch, and the
 * logits when the range ends with the output layer. Grows with the range, as required. */
static void rc_segment(const void *ctx, backend_device_kind kind, int32_t s, int32_t e, uint64_t *kv, uint64_t *comp) {
    const rcase *r = ctx;
    const bool cpu = kind == BACKEND_DEVICE_CPU;
    *kv = 0;
    uint64_t mx = 0;
    for (int32_t l = s; l < e; l++) {
        if (l < r->n - 1) *kv += r->kv[l];
        if (r->comp[l] > mx) mx = r->comp[l];
    }
    *comp = (cpu ? r->cpu_base : r->gpu_base) + mx + (e == r->n ? r->logits : 0);
}

static uint64_t rng_state;
static uint64_t rnd(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return rng_state >> 33;
}
static uint64_t rnd_in(uint64_t lo, uint64_t hi) { return lo + rnd() % (hi - lo + 1); }

/* ---- the brute force -------------------------------------------------------------- */

typedef struct {
    bool ok;
    int64_t cost;
    int32_t gpus, p;
} bf_best;

static int64_t t_ps(uint64_t bytes, double gbps) { return (int64_t)llround((double)bytes * 1000.0 / gbps); }

/* label[l]: 0 = cpu, 1 + k = GPU k. Returns false if not a valid chain or over a budget. */
static bool bf_eval(const rcase *r, const plan_device *devs, int32_t m, const int *label, int32_t main_gpu,
                    int64_t *cost, int32_t *gpus, int32_t *p) {
    int32_t n = r->n;
    int32_t s[MAXG + 1], e[MAXG + 1];
    for (int d = 0; d <= m; d++) s[d] = -1, e[d] = -1;
    for (int32_t l = 0; l < n; l++) {
        int d = label[l];
        if (s[d] < 0) s[d] = l;
        else if (e[d] != l) return false; /* not contiguous */
        e[d] = l + 1;
    }
    if (s[0] > 0) return false; /* the CPU's layers must be a prefix */
    if (main_gpu >= 0 && label[n - 1] != 0 && label[n - 1] != 1 + main_gpu) return false;
    *p = s[0] < 0 ? 0 : e[0];
    *cost = 0;
    *gpus = 0;
    /* cpu: devs[m] */
    {
        uint64_t need = r->host, kv, comp;
        for (int32_t l = 0; l < *p; l++) need += r->cw[l];
        rc_segment(r, BACKEND_DEVICE_CPU, 0, *p, &kv, &comp);
        need += kv + comp;
        uint64_t budget = devs[m].free_bytes > devs[m].reserve_bytes ? devs[m].free_bytes - devs[m].reserve_bytes : 0;
        if (need > budget) return false;
        for (int32_t l = 0; l < *p; l++) *cost += t_ps(r->rd[l], devs[m].gbps);
    }
    for (int k = 0; k < m; k++) {
        if (s[1 + k] < 0) continue;
        (*gpus)++;
        uint64_t need = 0, kv, comp;
        for (int32_t l = s[1 + k]; l < e[1 + k]; l++) need += r->gw[l];
        rc_segment(r, BACKEND_DEVICE_SIM, s[1 + k], e[1 + k], &kv, &comp);
        need += kv + comp;
        uint64_t budget = devs[k].free_bytes > devs[k].reserve_bytes ? devs[k].free_bytes - devs[k].reserve_bytes : 0;
        if (need > budget) return false;
        for (int32_t l = s[1 + k]; l < e[1 + k]; l++) *cost += t_ps(r->rd[l], devs[k].gbps);
    }
    return true;
}

/* want_p: -1 any; fewest: the plan.h rule. Also reports the smallest feasible p. */
static bf_best brute(const rcase *r, const plan_device *devs, int32_t m, int32_t main_gpu, int32_t want_p,
                     bool fewest, int32_t *min_p) {
    int label[MAXL] = {0};
    int32_t n = r->n;
    bf_best all = {0}, all0 = {0};
    *min_p = -1;
    for (;;) {
        int64_t c;
        int32_t g, p;
        if (bf_eval(r, devs, m, label, main_gpu, &c, &g, &p)) {
            if (*min_p < 0 || p < *min_p) *min_p = p;
            if (want_p < 0 || p == want_p) {
                /* (cost, gpus, p) lexicographic */
                if (!all.ok || c < all.cost || (c == all.cost && (g < all.gpus || (g == all.gpus && p < all.p))))
                    all = (bf_best){true, c, g, p};
                if (p == 0 && (!all0.ok || g < all0.gpus || (g == all0.gpus && c < all0.cost)))
                    all0 = (bf_best){true, c, g, p};
            }
        }
        int32_t i = 0;
        while (i < n && ++label[i] > m) label[i++] = 0;
        if (i == n) break;
    }
    if (fewest && all0.ok) return all0;
    return all;
}

/* ---- independent checks of a plan ------------------------------------------------- */

static void check_plan(const rcase *r, const plan_device *devs, int32_t nd, const plan_result *res) {
    int32_t covered[MAXL] = {0};
    int64_t cost = 0;
    for (int32_t i = 0; i < nd; i++) {
        const plan_device_use *u = &res->dev[i];
        bool cpu = devs[i].kind == BACKEND_DEVICE_CPU;
        uint64_t w = cpu ? r->host : 0, kv = 0, comp = 0;
        for (int32_t l = u->layer_start; l < u->layer_end; l++) {
            covered[l]++;
            w += cpu ? r->cw[l] : r->gw[l];
            cost += t_ps(r->rd[l], devs[i].gbps);
        }
        if (cpu || u->layer_end > u->layer_start) rc_segment(r, devs[i].kind, u->layer_start, u->layer_end, &kv, &comp);
        assert_true(u->weights_bytes == w);
        assert_true(u->kv_bytes == kv);
        assert_true(u->compute_bytes == comp);
        assert_true(u->total_bytes == w + kv + comp);
        assert_true(u->arena_bytes == (cpu ? kv + comp : w + kv + comp));
        uint64_t budget = devs[i].free_bytes > devs[i].reserve_bytes ? devs[i].free_bytes - devs[i].reserve_bytes : 0;
        assert_true(u->total_bytes <= budget);
        assert_true(u->headroom_bytes == budget - u->total_bytes);
        if (cpu) assert_int_equal(u->layer_start, 0);
    }
    for (int32_t l = 0; l < r->n; l++) assert_int_equal(covered[l], 1);
    assert_true(cost == res->cost_ps);
    assert_true(strlen(res->explanation) > 10);
}

static void random_case(rcase *r, plan_device *devs, int32_t *m) {
    memset(r, 0, sizeof *r);
    r->n = (int32_t)rnd_in(1, 7);
    uint64_t total = 0;
    for (int32_t l = 0; l < r->n; l++) {
        r->gw[l] = rnd_in(1, 100) * 64;
        r->cw[l] = r->gw[l] - rnd_in(0, 63);
        r->kv[l] = rnd_in(0, 20) * 64;
        r->comp[l] = rnd_in(0, 30) * 64;
        r->rd[l] = r->cw[l] + r->kv[l] * rnd_in(0, 4);
        total += r->gw[l] + r->kv[l];
    }
    if (rnd() % 3 == 0) r->gw[r->n - 1] *= 3; /* a big output layer, as real models have */
    r->host = rnd_in(0, 50) * 64;
    r->cpu_base = rnd_in(0, 10) * 64;
    r->gpu_base = rnd_in(0, 10) * 64;
    r->logits = rnd_in(0, 40) * 64;
    *m = (int32_t)rnd_in(0, 3);
    static const double speeds[] = {100, 200, 300, 360};
    for (int32_t k = 0; k < *m; k++) {
        devs[k].label = k == 0 ? "g0" : k == 1 ? "g1" : "g2";
        devs[k].kind = BACKEND_DEVICE_SIM;
        devs[k].free_bytes = rnd_in(0, total);
        devs[k].reserve_bytes = rnd() % 2 ? rnd_in(0, total / 4) : 0;
        devs[k].gbps = speeds[rnd() % 4];
    }
    devs[*m].label = "cpu";
    devs[*m].kind = BACKEND_DEVICE_CPU;
    devs[*m].free_bytes = rnd() % 6 ? rnd_in(total + total / 2, 4 * total) : rnd_in(0, total);
    devs[*m].reserve_bytes = rnd() % 2 ? rnd_in(0, total / 8) : 0;
    devs[*m].gbps = rnd() % 5 ? 20 : 400; /* sometimes a CPU faster than the GPUs */
}

static plan_profile profile_of(const rcase *r) {
    plan_profile p = {.n_layers = r->n,
                      .gpu_weight_bytes = r->gw,
                      .cpu_weight_bytes = r->cw,
                      .read_bytes = r->rd,
                      .host_bytes = r->host,
                      .segment_bytes = rc_segment,
                      .ctx = r};
    return p;
}

static void test_auto_matches_brute_force(void **state) {
    (void)state;
    rng_state = 12345;
    int compared = 0, nofit = 0, partial = 0;
    for (int it = 0; it < 600; it++) {
        rcase r;
        plan_device devs[MAXG + 1];
        int32_t m;
        random_case(&r, devs, &m);
        plan_profile prof = profile_of(&r);
        plan_options o = plan_default_options();
        if (m > 0 && rnd() % 4 == 0) o.main_gpu = (int32_t)(rnd() % (uint64_t)m);
        plan_result res;
        strata_status st = plan_compute(&prof, devs, m + 1, &o, &res);
        int32_t min_p;
        bf_best b = brute(&r, devs, m, o.main_gpu, -1, true, &min_p);
        if (!b.ok) {
            if (st != STRATA_ERR_NO_FIT) fail_msg("case %d: brute force finds no plan, planner says %d", it, st);
            assert_non_null(strstr(strata_last_error(), "short"));
            nofit++;
            continue;
        }
        if (st != STRATA_OK) fail_msg("case %d: planner failed: %s", it, strata_last_error());
        check_plan(&r, devs, m + 1, &res);
        if (res.cost_ps != b.cost || res.gpus_used != b.gpus || res.layers_total - res.layers_offloaded != b.p)
            fail_msg("case %d (n=%d, m=%d): planner cost %" PRId64 " gpus %d cpu-prefix %d; brute force %" PRId64
                     " gpus %d cpu-prefix %d",
                     it, r.n, m, res.cost_ps, res.gpus_used, res.layers_total - res.layers_offloaded, b.cost, b.gpus,
                     b.p);
        assert_true(res.exact);
        if (b.p > 0 && m > 0) partial++;
        compared++;
    }
    print_message("compared %d plans with the brute force (%d partly on the CPU), %d cases that fit nowhere\n",
                  compared, partial, nofit);
    assert_true(compared > 300);
    assert_true(partial > 30);
    assert_true(nofit > 5);
}

static void test_num_gpu_honoured_or_refused(void **state) {
    (void)state;
    rng_state = 777;
    int honoured = 0, refused = 0;
    for (int it = 0; it < 600; it++) {
        rcase r;
        plan_device devs[MAXG + 1];
        int32_t m;
        random_case(&r, devs, &m);
        plan_profile prof = profile_of(&r);
        plan_options o = plan_default_options();
        o.num_gpu = (int32_t)rnd_in(0, (uint64_t)r.n);
        plan_result res;
        strata_status st = plan_compute(&prof, devs, m + 1, &o, &res);
        int32_t min_p;
        bf_best b = brute(&r, devs, m, -1, r.n - o.num_gpu, r.n - o.num_gpu == 0, &min_p);
        if (b.ok) {
            if (st != STRATA_OK) fail_msg("case %d: num_gpu %d feasible but refused: %s", it, o.num_gpu, strata_last_error());
            assert_int_equal(res.layers_offloaded, o.num_gpu);
            assert_true(res.cost_ps == b.cost);
            assert_int_equal(res.gpus_used, b.gpus);
            check_plan(&r, devs, m + 1, &res);
            honoured++;
        } else {
            assert_int_equal(st, STRATA_ERR_NO_FIT);
            if (min_p >= 0) {
                char want[64];
                snprintf(want, sizeof want, "the largest that does is num_gpu %d", r.n - min_p);
                if (!strstr(strata_last_error(), want))
                    fail_msg("case %d: '%s' lacks '%s'", it, strata_last_error(), want);
                /* and that value is indeed honoured */
                o.num_gpu = r.n - min_p;
                assert_int_equal(plan_compute(&prof, devs, m + 1, &o, &res), STRATA_OK);
                assert_int_equal(res.layers_offloaded, r.n - min_p);
            }
            refused++;
        }
    }
    print_message("num_gpu honoured %d times, refused %d times\n", honoured, refused);
    assert_true(honoured > 100 && refused > 50);
}

/* Spread and tensor_split: not optimal by design, but always valid, and a zero share keeps
 * a GPU out. */
static void test_spread_and_split_valid(void **state) {
    (void)state;
    rng_state = 4242;
    int ok = 0;
    for (int it = 0; it < 400; it++) {
        rcase r;
        plan_device devs[MAXG + 1];
        int32_t m;
        random_case(&r, devs, &m);
        plan_profile prof = profile_of(&r);
        plan_options o = plan_default_options();
        o.mode = PLAN_SPREAD;
        if (m > 0 && rnd() % 2) {
            o.n_split = m;
            for (int32_t k = 0; k < m; k++) o.tensor_split[k] = (double)rnd_in(0, 3);
        }
        plan_result res;
        if (plan_compute(&prof, devs, m + 1, &o, &res) != STRATA_OK) continue;
        check_plan(&r, devs, m + 1, &res);
        for (int32_t k = 0; k < o.n_split; k++)
            if (o.tensor_split[k] == 0) assert_int_equal(res.dev[k].layer_end - res.dev[k].layer_start, 0);
        ok++;
    }
    assert_true(ok > 100);
}

/* A hand-made case where filling the tail greedily is wrong: the fast GPU fits either the
 * big output layer or two blocks; the optimum gives it the two blocks. */
static void test_order_matters(void **state) {
    (void)state;
    rcase r;
    memset(&r, 0, sizeof r);
    r.n = 4;
    uint64_t w[4] = {500, 500, 500, 600};
    for (int i = 0; i < 4; i++) r.gw[i] = r.cw[i] = r.rd[i] = w[i];
    plan_device devs[3] = {
        {.label = "fast", .kind = BACKEND_DEVICE_SIM, .free_bytes = 1000, .gbps = 400},
        {.label = "slow", .kind = BACKEND_DEVICE_SIM, .free_bytes = 700, .gbps = 100},
        {.label = "cpu", .kind = BACKEND_DEVICE_CPU, .free_bytes = 100000, .gbps = 10},
    };
    plan_profile prof = profile_of(&r);
    plan_options o = plan_default_options();
    plan_result res;
    assert_int_equal(plan_compute(&prof, devs, 3, &o, &res), STRATA_OK);
    assert_int_equal(res.dev[0].layer_start, 1);
    assert_int_equal(res.dev[0].layer_end, 3);
    assert_int_equal(res.dev[1].layer_start, 3);
    assert_int_equal(res.dev[1].layer_end, 4);
    assert_int_equal(res.dev[2].layer_end, 1);
    print_message("%s\n", res.explanation);
    assert_non_null(strstr(res.explanation, "layer 0 needs"));
}

/* The explanation must respect contiguity: a GPU further up the chain with room for the
 * CPU's last layer's weights cannot take it alone (it would have to take the layers between
 * too, and start running blocks, which needs a block-sized compute buffer). Here A holds only
 * the output layer with 350 B spare, B the last block with 50 B spare: the binding constraint
 * is B, the device adjacent to the CPU's range. */
static void test_explanation_respects_contiguity(void **state) {
    (void)state;
    rcase r;
    memset(&r, 0, sizeof r);
    r.n = 4;
    uint64_t w[4] = {300, 300, 300, 100}, comp[4] = {400, 400, 400, 0};
    for (int i = 0; i < 4; i++) r.gw[i] = r.cw[i] = r.rd[i] = w[i], r.comp[i] = comp[i];
    plan_device devs[3] = {
        {.label = "A", .kind = BACKEND_DEVICE_SIM, .free_bytes = 450, .gbps = 400},
        {.label = "B", .kind = BACKEND_DEVICE_SIM, .free_bytes = 750, .gbps = 300},
        {.label = "cpu", .kind = BACKEND_DEVICE_CPU, .free_bytes = 100000, .gbps = 10},
    };
    plan_profile prof = profile_of(&r);
    plan_options o = plan_default_options();
    plan_result res;
    assert_int_equal(plan_compute(&prof, devs, 3, &o, &res), STRATA_OK);
    assert_int_equal(res.dev[2].layer_end, 2);
    assert_int_equal(res.dev[1].layer_start, 2);
    assert_int_equal(res.dev[1].layer_end, 3);
    assert_int_equal(res.dev[0].layer_start, 3);
    print_message("%s\n", res.explanation);
    assert_non_null(strstr(res.explanation, "layer 1 needs 300 B; B has 50 B left"));
    assert_null(strstr(res.explanation, "would fit"));
}

/* More GPUs than the exact search takes: one fixed chain order (fastest GPU last, with the
 * output), still a valid plan that uses what fits. */
static void test_many_gpus_heuristic(void **state) {
    (void)state;
    rcase r;
    memset(&r, 0, sizeof r);
    r.n = 7;
    for (int i = 0; i < 7; i++) r.gw[i] = r.cw[i] = r.rd[i] = 100;
    static const char *const names[] = {"g0", "g1", "g2", "g3", "g4", "g5", "g6", "g7", "g8", "g9"};
    plan_device devs[11];
    for (int k = 0; k < 10; k++)
        devs[k] = (plan_device){.label = names[k], .kind = BACKEND_DEVICE_SIM, .free_bytes = 150,
                                .gbps = 100 + 10 * k};
    devs[10] = (plan_device){.label = "cpu", .kind = BACKEND_DEVICE_CPU, .free_bytes = 100000, .gbps = 10};
    plan_profile prof = profile_of(&r);
    plan_options o = plan_default_options();
    plan_result res;
    assert_int_equal(plan_compute(&prof, devs, 11, &o, &res), STRATA_OK);
    assert_false(res.exact);
    check_plan(&r, devs, 11, &res);
    assert_int_equal(res.layers_offloaded, 7);
    assert_int_equal(res.gpus_used, 7);
    assert_int_equal(res.dev[9].layer_end, 7); /* the fastest holds the output layer */
    o.num_gpu = 3;
    assert_int_equal(plan_compute(&prof, devs, 11, &o, &res), STRATA_OK);
    assert_int_equal(res.layers_offloaded, 3);
    check_plan(&r, devs, 11, &res);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auto_matches_brute_force),
        cmocka_unit_test(test_num_gpu_honoured_or_refused),
        cmocka_unit_test(test_spread_and_split_valid),
        cmocka_unit_test(test_order_matters),
        cmocka_unit_test(test_explanation_respects_contiguity),
        cmocka_unit_test(test_many_gpus_heuristic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
