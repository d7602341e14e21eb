/* Sampling chain: reproducibility, greedy equivalences, each filter and penalty doing what
 * it should, and the draw following the softmax distribution. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sampler/sampler.h"

#define V 1000

static void random_logits(float *l, int n, uint32_t seed) {
    uint32_t x = seed * 2654435761u + 1;
    for (int i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        l[i] = (float)((x >> 8) & 0xffff) / 6553.6f - 5.0f; /* [-5, 5) */
    }
}

static int argmax(const float *l, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (l[i] > l[b]) b = i;
    return b;
}

static strata_sampler *make(strata_sampler_params p) {
    strata_sampler *s = NULL;
    assert_int_equal(strata_sampler_init(&p, V, 4096, &s), STRATA_OK);
    return s;
}

static strata_sampler_params plain(void) {
    strata_sampler_params p = strata_sampler_default_params();
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.typical_p = 1.0f;
    p.repeat_penalty = 1.0f;
    p.seed = 42;
    return p;
}

static void test_seeded_reproducible(void **state) {
    (void)state;
    float l[V];
    strata_sampler_params p = strata_sampler_default_params();
    p.seed = 1234;
    strata_sampler *a = make(p), *b = make(p);
    p.seed = 1235;
    strata_sampler *c = make(p);
    int differ = 0;
    int32_t first[50];
    for (int step = 0; step < 50; step++) {
        random_logits(l, V, (uint32_t)step);
        int32_t ta = strata_sampler_sample(a, l), tb = strata_sampler_sample(b, l), tc = strata_sampler_sample(c, l);
        assert_int_equal(ta, tb);
        differ += ta != tc;
        first[step] = ta;
        strata_sampler_accept(a, ta);
        strata_sampler_accept(b, tb);
        strata_sampler_accept(c, tc);
    }
    assert_true(differ > 0); /* another seed draws differently */
    /* reset replays the same draws */
    strata_sampler_reset(a);
    for (int step = 0; step < 50; step++) {
        random_logits(l, V, (uint32_t)step);
        int32_t ta = strata_sampler_sample(a, l);
        assert_int_equal(ta, first[step]);
        strata_sampler_accept(a, ta);
    }
    strata_sampler_free(a);
    strata_sampler_free(b);
    strata_sampler_free(c);
}

static void test_greedy(void **state) {
    (void)state;
    float l[V];
    strata_sampler_params p = plain();
    p.top_k = 1;
    strata_sampler *k1 = make(p);
    p = plain();
    p.temperature = 0;
    strata_sampler *t0 = make(p);
    for (int step = 0; step < 100; step++) {
        random_logits(l, V, 77u + (uint32_t)step);
        int best = argmax(l, V);
        assert_int_equal(strata_sampler_sample(k1, l), best); /* top_k = 1 equals greedy */
        assert_int_equal(strata_sampler_sample(t0, l), best); /* temperature 0 is greedy */
    }
    /* ties: lowest id */
    for (int i = 0; i < V; i++) l[i] = 0;
    l[7] = l[3] = 2.0f;
    assert_int_equal(strata_sampler_sample(t0, l), 3);
    assert_int_equal(strata_sampler_sample(k1, l), 3);
    strata_sampler_free(k1);
    strata_sampler_free(t0);
}

/* Draw counts follow softmax(l / T) (chi-square-free check: each of the few likely tokens
 * within 5 standard deviations of its expected count). */
static void test_distribution(void **state) {
    (void)state;
    float l[V];
    for (int i = 0; i < V; i++) l[i] = -30;
    l[10] = 1.0f;
    l[20] = 0.0f;
    l[30] = -1.0f;
    strata_sampler_params p = plain();
    p.temperature = 0.5f;
    strata_sampler *s = make(p);
    int counts[V] = {0};
    const int N = 20000;
    for (int i = 0; i < N; i++) counts[strata_sampler_sample(s, l)]++;
    double z = exp(2.0) + exp(0.0) + exp(-2.0);
    double expect[3] = {exp(2.0) / z, 1 / z, exp(-2.0) / z};
    int ids[3] = {10, 20, 30};
    for (int k = 0; k < 3; k++) {
        double mu = N * expect[k], sd = sqrt(N * expect[k] * (1 - expect[k]));
        assert_true(fabs(counts[ids[k]] - mu) < 5 * sd);
    }
    strata_sampler_free(s);
}

static void test_filters(void **state) {
    (void)state;
    float l[V];
    for (int i = 0; i < V; i++) l[i] = -10.0f - (float)i * 0.001f;
    /* probabilities (T = 1): ids 0..3 dominate with logits 3, 2, 1, 0 */
    l[0] = 3;
    l[1] = 2;
    l[2] = 1;
    l[3] = 0;
    double z = 0;
    for (int i = 0; i < V; i++) z += exp(l[i]);
    double p0 = exp(3) / z, p1 = exp(2) / z;

    /* top_k = 2: only ids 0 and 1 ever drawn, both drawn */
    strata_sampler_params p = plain();
    p.top_k = 2;
    strata_sampler *s = make(p);
    int seen[V] = {0};
    for (int i = 0; i < 5000; i++) seen[strata_sampler_sample(s, l)]++;
    assert_true(seen[0] > 0 && seen[1] > 0);
    assert_int_equal(seen[0] + seen[1], 5000);
    strata_sampler_free(s);

    /* top_p just above p0 + p1: the nucleus is {0, 1, 2}; just below p0: only {0} */
    p = plain();
    p.top_p = (float)(p0 + p1 + 0.001);
    s = make(p);
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < 5000; i++) seen[strata_sampler_sample(s, l)]++;
    assert_int_equal(seen[0] + seen[1] + seen[2], 5000);
    assert_true(seen[2] > 0);
    strata_sampler_free(s);
    p.top_p = (float)(p0 - 0.01);
    s = make(p);
    for (int i = 0; i < 200; i++) assert_int_equal(strata_sampler_sample(s, l), 0);
    strata_sampler_free(s);

    /* min_p = 0.3: keeps p >= 0.3 p_max, i.e. logits >= 3 + ln 0.3 = 1.796: ids 0 and 1 */
    p = plain();
    p.min_p = 0.3f;
    s = make(p);
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < 5000; i++) seen[strata_sampler_sample(s, l)]++;
    assert_int_equal(seen[0] + seen[1], 5000);
    assert_true(seen[1] > 0);
    strata_sampler_free(s);

    /* typical_p: with a tiny mass only the token whose surprise is nearest the entropy is
     * kept. Two equal tokens and a third: the equal ones are the typical ones. */
    for (int i = 0; i < V; i++) l[i] = -50;
    l[5] = 2;
    l[6] = 2;
    l[7] = -1;
    p = plain();
    p.typical_p = 0.2f;
    s = make(p);
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < 2000; i++) seen[strata_sampler_sample(s, l)]++;
    assert_int_equal(seen[5] + seen[6], 2000); /* id 7 (atypically surprising) never drawn */
    strata_sampler_free(s);
}

static void test_penalties(void **state) {
    (void)state;
    float l[V], out[V];
    for (int i = 0; i < V; i++) l[i] = 0.5f;
    l[1] = 2.0f;
    l[2] = -2.0f;

    /* repeat_penalty divides positive logits and multiplies negative ones, once per token */
    strata_sampler_params p = plain();
    p.repeat_penalty = 2.0f;
    p.repeat_last_n = 4;
    strata_sampler *s = make(p);
    strata_sampler_accept(s, 1);
    strata_sampler_accept(s, 1);
    strata_sampler_accept(s, 2);
    strata_sampler_penalize(s, l, out);
    assert_float_equal(out[1], 1.0f, 1e-6);
    assert_float_equal(out[2], -4.0f, 1e-6);
    assert_float_equal(out[3], 0.5f, 0);
    /* top_k = 1 now avoids the repeated token 1 once 2 / 5 < 0.5; temperature 0 (plain
     * greedy) ignores penalties */
    p.top_k = 1;
    p.repeat_penalty = 5.0f;
    strata_sampler_params p0 = p;
    p0.temperature = 0;
    strata_sampler *g0 = make(p0);
    strata_sampler_accept(g0, 1);
    assert_int_equal(strata_sampler_sample(g0, l), 1);
    strata_sampler_free(g0);
    strata_sampler *g = make(p);
    assert_int_equal(strata_sampler_sample(g, l), 1);
    strata_sampler_accept(g, 1);
    assert_int_not_equal(strata_sampler_sample(g, l), 1);
    strata_sampler_free(g);
    /* the window forgets: after 4 other tokens, 1 and 2 are no longer penalised */
    for (int i = 0; i < 4; i++) strata_sampler_accept(s, 10 + i);
    strata_sampler_penalize(s, l, out);
    assert_float_equal(out[1], 2.0f, 0);
    assert_float_equal(out[2], -2.0f, 0);
    assert_float_equal(out[10], 0.25f, 1e-6);
    strata_sampler_free(s);

    /* presence subtracts once; frequency subtracts per occurrence */
    p = plain();
    p.presence_penalty = 0.5f;
    p.frequency_penalty = 0.25f;
    p.repeat_last_n = 64;
    s = make(p);
    for (int i = 0; i < 3; i++) strata_sampler_accept(s, 1);
    strata_sampler_accept(s, 2);
    strata_sampler_penalize(s, l, out);
    assert_float_equal(out[1], 2.0f - 0.5f - 3 * 0.25f, 1e-6);
    assert_float_equal(out[2], -2.0f - 0.5f - 0.25f, 1e-6);
    assert_float_equal(out[0], 0.5f, 0);
    strata_sampler_free(s);

    /* repeat_last_n = 0 disables the penalties */
    p = plain();
    p.repeat_penalty = 2.0f;
    p.repeat_last_n = 0;
    s = make(p);
    strata_sampler_accept(s, 1);
    strata_sampler_penalize(s, l, out);
    assert_float_equal(out[1], 2.0f, 0);
    strata_sampler_free(s);
}

/* ---- the kept candidates against sorting everything ------------------------------------ */

typedef struct {
    int32_t id;
    float logit;
} scored;

static int by_logit_then_id(const void *a, const void *b) {
    const scored *x = a, *y = b;
    if (x->logit != y->logit) return x->logit > y->logit ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* The chain as its definition reads (typical_p aside): sort every candidate by penalised
 * logit, then id; keep the top_k first; of those, the shortest prefix whose softmax mass
 * reaches top_p, and the prefix within log(min_p) of the best logit; the shorter of the two.
 * The float steps are the sampler's (expf, float probabilities summed in double, a float
 * threshold), so a cut that lands exactly on top_p agrees too. Returns the count; sorted
 * holds the order. */
static int32_t brute_force_kept(const strata_sampler_params *p, const float *pen, int32_t nv, scored *sorted) {
    for (int32_t i = 0; i < nv; i++) sorted[i] = (scored){i, pen[i]};
    qsort(sorted, (size_t)nv, sizeof *sorted, by_logit_then_id);
    int32_t n = p->top_k > 0 && p->top_k < nv ? p->top_k : nv;
    int32_t keep = n;
    if (p->top_p < 1.0f && n > 1) {
        double sum = 0, cum = 0;
        for (int32_t i = 0; i < n; i++) sum += expf(sorted[i].logit - sorted[0].logit);
        for (int32_t i = 0; i < n; i++) {
            cum += (float)(expf(sorted[i].logit - sorted[0].logit) / sum);
            if (cum >= p->top_p) {
                keep = i + 1;
                break;
            }
        }
    }
    if (p->min_p > 0.0f && keep > 1) {
        const float floor_logit = sorted[0].logit + logf(p->min_p);
        int32_t m = 1;
        while (m < keep && sorted[m].logit >= floor_logit) m++;
        keep = m;
    }
    return keep;
}

/* Logits of four kinds: peaked (a few dozen tokens hold most of the mass, as a trained model
 * gives), flat over [-1, 1] (the cut needs thousands of candidates), wide over [-8, 8], and
 * steps of 0.25 (many ties, ordered by id; some on min_p's threshold). */
static void kind_logits(float *l, int32_t nv, int kind, uint32_t seed) {
    uint32_t x = seed * 2654435761u + 7;
    for (int32_t i = 0; i < nv; i++) {
        x = x * 1664525u + 1013904223u;
        const float u = (float)((x >> 8) & 0xffff) / 65536.0f; /* [0, 1) */
        switch (kind) {
        case 0: l[i] = -4 + 2 * u + ((x >> 28) == 0 && (x & 0xff) < 8 ? 10 + 4 * u : 0); break;
        case 1: l[i] = 2 * u - 1; break;
        case 2: l[i] = 16 * u - 8; break;
        default: l[i] = 0.25f * (float)(int)(12 * u); break;
        }
    }
}

/* strata_sampler_kept, which with top_k off sorts only what the cut may keep, against
 * brute_force_kept: the same candidates, the best first, for every kind of logits, with
 * and without top_k, penalties, each cut alone and both, a vocabulary of 1000 and one of
 * 152,000 (Qwen2's). */
static void test_kept_equals_brute_force(void **state) {
    (void)state;
    static const int32_t vocabs[] = {1000, 152000};
    static const int32_t top_ks[] = {0, 40, 5000};
    static const float top_ps[] = {1.0f, 0.9f, 0.5f, 0.999f};
    /* e^-0.5: with logits in steps of 0.25, candidates sit exactly on min_p's threshold */
    const float min_ps[] = {0.0f, 0.05f, 0.5f, expf(-0.5f)};
    assert_true(logf(min_ps[3]) == -0.5f);
    for (size_t vi = 0; vi < 2; vi++) {
        const int32_t nv = vocabs[vi];
        float *l = malloc((size_t)nv * sizeof *l), *pen = malloc((size_t)nv * sizeof *pen);
        scored *ref = malloc((size_t)nv * sizeof *ref), *got = malloc((size_t)nv * sizeof *got);
        int32_t *ids = malloc((size_t)nv * sizeof *ids);
        assert_true(l && pen && ref && got && ids);
        int cases = 0;
        for (int kind = 0; kind < 4; kind++)
            for (size_t ki = 0; ki < 3; ki++)
                for (size_t pi = 0; pi < 4; pi++)
                    for (size_t mi = 0; mi < 4; mi++) {
                        strata_sampler_params p = plain();
                        p.top_k = top_ks[ki];
                        p.top_p = top_ps[pi];
                        p.min_p = min_ps[mi];
                        p.repeat_penalty = 1.3f;
                        p.presence_penalty = 0.5f;
                        strata_sampler *s = NULL;
                        assert_int_equal(strata_sampler_init(&p, nv, 4096, &s), STRATA_OK);
                        kind_logits(l, nv, kind, (uint32_t)(cases + 1));
                        for (int j = 0; j < 30; j++) strata_sampler_accept(s, (int32_t)((j * 7919u + kind) % (uint32_t)nv));
                        strata_sampler_penalize(s, l, pen);
                        const int32_t want = brute_force_kept(&p, pen, nv, ref);
                        const int32_t n = strata_sampler_kept(s, l, ids);
                        if (n != want)
                            fail_msg("vocab %d, logits kind %d, top_k %d, top_p %g, min_p %g: kept %d, want %d", nv,
                                     kind, p.top_k, p.top_p, p.min_p, n, want);
                        assert_int_equal(ids[0], ref[0].id);
                        for (int32_t i = 0; i < n; i++) got[i] = (scored){ids[i], pen[ids[i]]};
                        qsort(got, (size_t)n, sizeof *got, by_logit_then_id);
                        for (int32_t i = 0; i < n; i++) assert_int_equal(got[i].id, ref[i].id);
                        strata_sampler_free(s);
                        cases++;
                    }
        free(l), free(pen), free(ref), free(got), free(ids);
    }
}

static void test_invalid(void **state) {
    (void)state;
    strata_sampler *s = NULL;
    strata_sampler_params p = plain();
    p.temperature = -1;
    assert_int_equal(strata_sampler_init(&p, V, 0, &s), STRATA_ERR_INVALID);
    p = plain();
    p.min_p = 2;
    assert_int_equal(strata_sampler_init(&p, V, 0, &s), STRATA_ERR_INVALID);
    p = plain();
    p.repeat_penalty = 0;
    assert_int_equal(strata_sampler_init(&p, V, 0, &s), STRATA_ERR_INVALID);
    assert_null(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seeded_reproducible), cmocka_unit_test(test_greedy),
        cmocka_unit_test(test_distribution),        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_penalties),           cmocka_unit_test(test_kept_equals_brute_force),
        cmocka_unit_test(test_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
