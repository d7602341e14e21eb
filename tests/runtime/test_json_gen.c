/* JSON-constrained generation (runtime/generate.h, gp.json) on a real model
 * (stories260K, which knows nothing of JSON: whatever it writes is the constraint's doing).
 *
 *   - greedy and temperature 1 with several seeds: the output parses with cJSON as an object
 *     when generation stopped by itself ("stop"), and is a valid JSON prefix when num_predict
 *     cut it ("length"); nothing follows the closed value;
 *   - greedy is exactly "the highest-logit valid token" at every step: the run is replayed
 *     token by token through the model, and at each step the chosen id is compared with the
 *     best id whose bytes keep the text valid (ties: lowest id), computed here independently;
 *   - the top-level-any mode gives valid JSON too, and a bad mode is refused. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

#include "runtime/engine_internal.h"
#include "sampler/json_constraint.h"
#include "testdata.h"

typedef struct {
    char buf[1 << 16];
    size_t len;
} sink;

static bool collect(void *user, const char *text, size_t len) {
    sink *s = user;
    if (s->len + len < sizeof s->buf) {
        memcpy(s->buf + s->len, text, len);
        s->len += len;
    }
    return true;
}

static strata_engine *load(void) {
    char *path = testdata_path("models/stories260K-f32.gguf");
    model_params mp = model_default_params();
    mp.n_ctx = 512; /* capped at the model's 128: long runs shift the context */
    mp.n_batch = 512;
    mp.n_threads = 2;
    strata_engine *e = NULL;
    if (strata_engine_load(path, &mp, &e) != STRATA_OK) fail_msg("load %s: %s", path, strata_last_error());
    free(path);
    return e;
}

static const char *prompt = "Lily said {\"name\": \"Lily\", \"age\": 3}. Tom said";

/* Generates and checks the output; returns the number of generated ids written to ids. */
static int32_t run_json(strata_engine *e, strata_json_top top, float temperature, int64_t seed, int32_t num_predict,
                        int32_t *ids, int32_t cap, bool *stopped) {
    strata_gen_params gp = strata_gen_default_params();
    gp.json = top;
    gp.num_predict = num_predict;
    gp.sampler.temperature = temperature;
    gp.sampler.seed = seed;
    sink *s = calloc(1, sizeof *s);
    strata_gen_stats stats;
    int32_t pids[256];
    int64_t np = strata_tokenize(e->vocab, prompt, strlen(prompt), true, false, pids, 256);
    assert_true(np > 0 && np < 256);
    if (strata_generate_ids(e, pids, (int32_t)np, &gp, collect, s, &stats, ids, cap) != STRATA_OK)
        fail_msg("generate: %s", strata_last_error());
    assert_true(stats.gen_tokens > 0);
    *stopped = strcmp(stats.done_reason, "stop") == 0;
    if (*stopped) {
        /* a complete value and nothing after it */
        if (strata_json_check(top, s->buf, s->len) != STRATA_OK)
            fail_msg("T=%g seed %lld: %s\n%.*s", temperature, (long long)seed, strata_last_error(), (int)s->len, s->buf);
        s->buf[s->len] = 0;
        cJSON *j = cJSON_ParseWithOpts(s->buf, NULL, true);
        if (!j) fail_msg("cJSON refuses: %s", s->buf);
        if (top == STRATA_JSON_TOP_OBJECT) assert_true(cJSON_IsObject(j));
        cJSON_Delete(j);
    } else {
        assert_string_equal(stats.done_reason, "length");
        assert_int_equal(stats.gen_tokens, num_predict);
        strata_json_state st;
        strata_json_init(&st, top, 0);
        if (!strata_json_feed(&st, s->buf, s->len)) fail_msg("not a JSON prefix: %.*s", (int)s->len, s->buf);
    }
    print_message("T=%g seed %lld (%s, %d tokens): %.*s\n", temperature, (long long)seed, stats.done_reason,
                  stats.gen_tokens, (int)(s->len > 300 ? 300 : s->len), s->buf);
    free(s);
    return stats.gen_tokens < cap ? stats.gen_tokens : cap;
}

static void test_json_sampling(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    strata_engine *e = load();
    int32_t ids[512];
    bool stopped;
    int n_stopped = 0;
    run_json(e, STRATA_JSON_TOP_OBJECT, 0.0f, 0, 400, ids, 512, &stopped);
    n_stopped += stopped;
    for (int64_t seed = 1; seed <= 6; seed++) {
        run_json(e, STRATA_JSON_TOP_OBJECT, 1.0f, seed, 400, ids, 512, &stopped);
        n_stopped += stopped;
    }
    /* a short limit cuts the value: a valid prefix, "length" */
    run_json(e, STRATA_JSON_TOP_OBJECT, 1.0f, 7, 5, ids, 512, &stopped);
    assert_false(stopped);
    for (int64_t seed = 1; seed <= 3; seed++) {
        run_json(e, STRATA_JSON_TOP_ANY, 1.0f, seed, 400, ids, 512, &stopped);
        n_stopped += stopped;
    }
    print_message("%d of 10 runs closed their value before the limit\n", n_stopped);
    strata_engine_free(e);
}

/* The best valid id for the text so far (state st), by logit, lowest id on ties; -1 if none. */
static int32_t best_valid(strata_engine *e, const strata_json_state *st, const float *logits) {
    int32_t best = -1;
    char piece[256];
    for (int32_t id = 0; id < e->desc.hp.n_vocab; id++) {
        bool ok;
        if (id >= strata_vocab_n_tokens(e->vocab)) {
            ok = false;
        } else if (strata_vocab_is_eog(e->vocab, id)) {
            ok = strata_json_complete(st);
        } else {
            int32_t n = strata_token_to_piece(e->vocab, id, piece, sizeof piece, false);
            strata_json_state t = *st;
            ok = n > 0 && n <= (int32_t)sizeof piece && strata_json_feed(&t, piece, (size_t)n);
        }
        if (ok && (best < 0 || logits[id] > logits[best])) best = id;
    }
    return best;
}

static void test_greedy_is_best_valid(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    strata_engine *e = load();
    int32_t ids[512];
    bool stopped;
    /* 60 tokens: with the prompt, within the model's 128-token context (no shift to replay) */
    int32_t n = run_json(e, STRATA_JSON_TOP_OBJECT, 0.0f, 0, 60, ids, 512, &stopped);
    /* replay: the prompt in one call, then each generated token, as the loop does */
    int32_t pids[256];
    int64_t np = strata_tokenize(e->vocab, prompt, strlen(prompt), true, false, pids, 256);
    assert_int_equal(model_decode(e->ctx, pids, (int32_t)np, 0), STRATA_OK);
    strata_json_state st;
    strata_json_init(&st, STRATA_JSON_TOP_OBJECT, STRATA_GEN_JSON_MAX_WS);
    int differs_from_argmax = 0;
    for (int32_t i = 0; i < n; i++) {
        const float *logits = model_logits(e->ctx, model_logits_count(e->ctx) - 1);
        int32_t want = best_valid(e, &st, logits);
        if (want != ids[i]) fail_msg("step %d: generated %d, best valid %d", i, ids[i], want);
        int32_t argmax = 0;
        for (int32_t k = 1; k < e->desc.hp.n_vocab; k++)
            if (logits[k] > logits[argmax]) argmax = k;
        differs_from_argmax += argmax != ids[i];
        char piece[256];
        int32_t pn = strata_token_to_piece(e->vocab, ids[i], piece, sizeof piece, false);
        if (pn > 0) assert_true(strata_json_feed(&st, piece, (size_t)pn));
        if (model_decode(e->ctx, &ids[i], 1, (int32_t)np + i) != STRATA_OK) fail_msg("decode step %d: %s", i, strata_last_error());
    }
    /* the constraint did something: the model's own choice was refused at some steps */
    assert_true(differs_from_argmax > 0);
    strata_engine_free(e);
}

static void test_bad_mode(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    strata_engine *e = load();
    strata_gen_params gp = strata_gen_default_params();
    gp.json = (strata_json_top)42;
    gp.num_predict = 3;
    sink *s = calloc(1, sizeof *s);
    strata_gen_stats stats;
    assert_int_equal(strata_generate(e, "Hi", 2, &gp, collect, s, &stats), STRATA_ERR_INVALID);
    assert_non_null(strstr(strata_last_error(), "json"));
    free(s);
    strata_engine_free(e);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_sampling),
        cmocka_unit_test(test_greedy_is_best_valid),
        cmocka_unit_test(test_bad_mode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
