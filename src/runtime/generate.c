/* Engine loading and the generation loop; see generate.h. */
#include "runtime/engine_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t strata_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

strata_status strata_engine_load(const char *path, const model_params *mp, strata_engine **out) {
    *out = NULL;
    int64_t t0 = strata_now_ns();
    strata_engine *e = calloc(1, sizeof *e);
    if (!e) return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    strata_status st = gguf_open(path, GGUF_OPEN_DEFAULT, &e->file);
    if (st == STRATA_OK) st = model_desc_init(e->file, &e->desc);
    if (st == STRATA_OK) st = strata_vocab_load(e->file, &e->vocab);
    if (st == STRATA_OK) {
        strata_device_init_cpu(&e->cpu);
        st = model_context_init(&e->desc, mp, &e->cpu, &e->ctx);
    }
    if (st != STRATA_OK) {
        strata_engine_free(e);
        return st;
    }
    e->load_ns = strata_now_ns() - t0;
    *out = e;
    return STRATA_OK;
}

void strata_engine_free(strata_engine *e) {
    if (!e) return;
    model_context_free(e->ctx); /* gives every device's arena back */
    strata_vocab_free(e->vocab);
    model_desc_free(&e->desc);
    gguf_close(e->file);
    free(e);
}

strata_gen_params strata_gen_default_params(void) {
    strata_gen_params g;
    memset(&g, 0, sizeof g);
    g.sampler = strata_sampler_default_params();
    g.num_predict = -1;
    g.num_keep = 4;
    g.add_special = true;
    return g;
}

/* Evaluates tokens[0..n) at positions pos.. in num_batch chunks; the logits of the last
 * token are left in the context. */
static strata_status eval(model_context *ctx, const int32_t *tokens, int32_t n, int32_t pos) {
    const int32_t nb = model_context_params(ctx)->n_batch;
    for (int32_t i = 0; i < n; i += nb) {
        int32_t m = n - i < nb ? n - i : nb;
        strata_status st = model_decode(ctx, tokens + i, m, pos + i);
        if (st != STRATA_OK) return st;
    }
    return STRATA_OK;
}

/* Holds back generated text that might be the start of a stop sequence. */
typedef struct {
    char *buf;
    size_t len, cap;
    const strata_gen_params *gp;
    strata_gen_emit emit;
    void *user;
    bool cancelled;
} out_text;

static void out_emit(out_text *o, const char *s, size_t n) {
    if (n == 0 || o->cancelled) return;
    if (!o->emit(o->user, s, n)) o->cancelled = true;
}

/* Appends a piece; returns true when a stop sequence was completed (the text before it is
 * emitted, the rest discarded). */
static bool out_push(out_text *o, const char *s, size_t n) {
    if (o->gp->n_stop == 0) {
        out_emit(o, s, n);
        return false;
    }
    while (o->len + n > o->cap) {
        /* cannot happen for pieces shorter than the reserve; keep it safe anyway */
        out_emit(o, o->buf, o->len);
        o->len = 0;
        if (n > o->cap) {
            out_emit(o, s, n);
            return false;
        }
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    size_t first = o->len;
    for (int i = 0; i < o->gp->n_stop; i++) {
        const char *st = o->gp->stop[i];
        size_t sl = strlen(st);
        if (sl == 0 || sl > o->len) continue;
        const char *hit = memmem(o->buf, o->len, st, sl);
        if (hit && (size_t)(hit - o->buf) < first) first = (size_t)(hit - o->buf);
    }
    if (first < o->len) {
        out_emit(o, o->buf, first);
        o->len = 0;
        return true;
    }
    size_t hold = 0;
    for (int i = 0; i < o->gp->n_stop; i++) {
        const char *st = o->gp->stop[i];
        size_t sl = strlen(st);
        for (size_t k = (sl - 1 < o->len ? sl - 1 : o->len); k > hold; k--) {
            if (memcmp(o->buf + o->len - k, st, k) == 0) {
                hold = k;
                break;
            }
        }
    }
    out_emit(o, o->buf, o->len - hold);
    memmove(o->buf, o->buf + o->len - hold, hold);
    o->len = hold;
    return false;
}

/* ---- JSON constraint ------------------------------------------------------------------ */

enum { TOK_NEVER = 0, TOK_EOG = 1, TOK_BYTES = 2 };

typedef struct {
    strata_json_state st; /* the output so far */
    int32_t n_vocab;
    uint8_t *kind;        /* per id: TOK_* */
    int64_t *off;         /* per id: its bytes are bytes[off[id], off[id + 1]) */
    char *bytes;
    float *masked;        /* a copy of the logits with invalid tokens at -inf */
    uint8_t *ok;          /* per id, during a full scan: whether it is valid */
} json_guide;

static void json_guide_free(json_guide *g) {
    free(g->kind);
    free(g->off);
    free(g->bytes);
    free(g->masked);
    free(g->ok);
}

static strata_status json_guide_init(json_guide *g, const strata_vocab *v, int32_t n_vocab, strata_json_top top) {
    memset(g, 0, sizeof *g);
    strata_json_init(&g->st, top, STRATA_GEN_JSON_MAX_WS);
    g->n_vocab = n_vocab;
    g->kind = calloc((size_t)n_vocab, 1);
    g->off = malloc(((size_t)n_vocab + 1) * sizeof *g->off);
    g->masked = malloc((size_t)n_vocab * sizeof *g->masked);
    g->ok = malloc((size_t)n_vocab);
    if (!g->kind || !g->off || !g->masked || !g->ok) goto nomem;
    int32_t n_tok = strata_vocab_n_tokens(v);
    int64_t total = 0;
    for (int32_t id = 0; id < n_vocab; id++) {
        g->off[id] = total;
        if (id >= n_tok) continue;
        if (strata_vocab_is_eog(v, id)) {
            g->kind[id] = TOK_EOG;
            continue;
        }
        char scratch;
        int32_t n = strata_token_to_piece(v, id, &scratch, 0, false);
        if (n > 0) {
            g->kind[id] = TOK_BYTES;
            total += n;
        }
    }
    g->off[n_vocab] = total;
    g->bytes = malloc((size_t)(total ? total : 1));
    if (!g->bytes) goto nomem;
    for (int32_t id = 0; id < n_vocab; id++)
        if (g->kind[id] == TOK_BYTES)
            strata_token_to_piece(v, id, g->bytes + g->off[id], (size_t)(g->off[id + 1] - g->off[id]), false);
    return STRATA_OK;
nomem:
    json_guide_free(g);
    return strata_fail(STRATA_ERR_NOMEM, "out of memory");
}

/* Whether token id may come next. */
static bool json_allows(const json_guide *g, int32_t id) {
    if (id < 0 || id >= g->n_vocab) return false;
    switch (g->kind[id]) {
    case TOK_EOG: return strata_json_complete(&g->st);
    case TOK_BYTES: {
        strata_json_state t = g->st;
        return strata_json_feed(&t, g->bytes + g->off[id], (size_t)(g->off[id + 1] - g->off[id]));
    }
    default: return false;
    }
}

/* Samples a token that keeps the output JSON (see generate.h); -1 when none can. */
static int32_t json_sample(json_guide *g, strata_sampler *smp, const float *logits) {
    int32_t tok = strata_sampler_sample(smp, logits);
    if (json_allows(g, tok)) return tok;
    const int32_t V = g->n_vocab;
    memcpy(g->masked, logits, (size_t)V * sizeof *g->masked);
    for (int r = 0; r < STRATA_GEN_JSON_RETRIES; r++) {
        g->masked[tok] = -INFINITY;
        tok = strata_sampler_sample(smp, g->masked);
        if (json_allows(g, tok)) return tok;
    }
    int32_t best = -1;
    for (int32_t i = 0; i < V; i++) {
        g->ok[i] = json_allows(g, i);
        if (!g->ok[i]) g->masked[i] = -INFINITY;
        else if (best < 0 || g->masked[i] > g->masked[best]) best = i;
    }
    if (best < 0) return -1;
    tok = strata_sampler_sample(smp, g->masked);
    return tok >= 0 && tok < V && g->ok[tok] ? tok : best;
}

strata_status strata_generate_ids(strata_engine *e, const int32_t *prompt, int32_t n_prompt,
                                  const strata_gen_params *gp, strata_gen_emit emit, void *user,
                                  strata_gen_stats *stats, int32_t *out_ids, int32_t out_cap) {
    memset(stats, 0, sizeof *stats);
    model_context *ctx = e->ctx;
    const model_params *mp = model_context_params(ctx);
    const int32_t n_ctx = mp->n_ctx, n_vocab = e->desc.hp.n_vocab;
    if (n_prompt < 1) return strata_fail(STRATA_ERR_INVALID, "empty prompt (no tokens)");
    int32_t keep = gp->num_keep < 0 ? 0 : gp->num_keep;
    if (keep > n_ctx / 2) keep = n_ctx / 2;
    if (keep > n_prompt) keep = n_prompt;

    strata_sampler *smp = NULL;
    strata_status st = strata_sampler_init(&gp->sampler, n_vocab, n_ctx, &smp);
    if (st != STRATA_OK) return st;
    int32_t *hist = malloc((size_t)n_ctx * sizeof *hist);
    size_t max_stop = 0;
    for (int i = 0; i < gp->n_stop; i++)
        if (strlen(gp->stop[i]) > max_stop) max_stop = strlen(gp->stop[i]);
    out_text o = {.cap = max_stop + 4096, .gp = gp, .emit = emit, .user = user};
    o.buf = malloc(o.cap);
    strata_detok_stream *ds = strata_detok_stream_new(e->vocab, false);
    json_guide jg = {0};
    const bool json = gp->json != STRATA_JSON_OFF;
    if (!hist || !o.buf || !ds) {
        st = strata_fail(STRATA_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (json) {
        if (gp->json != STRATA_JSON_TOP_OBJECT && gp->json != STRATA_JSON_TOP_ANY) {
            st = strata_fail(STRATA_ERR_INVALID, "json constraint: unknown top-level kind %d", (int)gp->json);
            goto done;
        }
        st = json_guide_init(&jg, e->vocab, n_vocab, gp->json);
        if (st != STRATA_OK) goto done;
    }

    /* Fit the prompt: pinned head + most recent tail, leaving a quarter of the context. */
    int32_t n_past = 0;
    if (n_prompt >= n_ctx) {
        int32_t target = n_ctx - n_ctx / 4;
        if (target <= keep) target = keep + 1;
        stats->prompt_truncated = n_prompt - target;
        memcpy(hist, prompt, (size_t)keep * sizeof *hist);
        memcpy(hist + keep, prompt + n_prompt - (target - keep), (size_t)(target - keep) * sizeof *hist);
        n_past = target;
    } else {
        memcpy(hist, prompt, (size_t)n_prompt * sizeof *hist);
        n_past = n_prompt;
    }
    for (int32_t i = 0; i < n_past; i++) strata_sampler_accept(smp, hist[i]);
    int64_t t0 = strata_now_ns();
    st = eval(ctx, hist, n_past, 0);
    if (st != STRATA_OK) goto done;
    stats->prompt_tokens = n_past;
    int64_t t1 = strata_now_ns();
    stats->prompt_ns = t1 - t0;

    stats->done_reason = "length";
    bool stop_hit = false;
    for (;;) {
        if (gp->num_predict >= 0 && stats->gen_tokens >= gp->num_predict) break;
        const float *logits = model_logits(ctx, model_logits_count(ctx) - 1);
        int32_t tok;
        if (json) {
            tok = json_sample(&jg, smp, logits);
            if (tok < 0) {
                st = strata_fail(STRATA_ERR_UNSUPPORTED, "json constraint: no token of the vocabulary can continue "
                                                         "the output");
                goto done;
            }
            if (jg.kind[tok] == TOK_BYTES)
                strata_json_feed(&jg.st, jg.bytes + jg.off[tok], (size_t)(jg.off[tok + 1] - jg.off[tok]));
        } else {
            tok = strata_sampler_sample(smp, logits);
        }
        strata_sampler_accept(smp, tok);
        if (out_ids && stats->gen_tokens < out_cap) out_ids[stats->gen_tokens] = tok;
        stats->gen_tokens++;
        if (strata_vocab_is_eog(e->vocab, tok)) {
            stats->done_reason = "stop";
            break;
        }
        if (tok < strata_vocab_n_tokens(e->vocab)) {
            size_t n = 0;
            const char *piece = strata_detok_stream_push(ds, tok, &n);
            if (piece && out_push(&o, piece, n)) {
                stats->done_reason = "stop";
                stop_hit = true;
                break;
            }
        }
        if (o.cancelled) break;
        if (json && strata_json_closed(&jg.st)) {
            stats->done_reason = "stop"; /* the value is closed: nothing may follow it */
            break;
        }
        if (gp->num_predict >= 0 && stats->gen_tokens >= gp->num_predict) break;
        if (n_past == n_ctx) {
            /* Context shift: keep the pinned head, drop the older half of the rest and
             * re-evaluate what is kept at its new positions. */
            int32_t discard = (n_past - keep) / 2;
            if (discard < 1) discard = 1;
            memmove(hist + keep, hist + keep + discard, (size_t)(n_past - keep - discard) * sizeof *hist);
            n_past -= discard;
            stats->context_shifts++;
            st = eval(ctx, hist, n_past, 0);
            if (st != STRATA_OK) goto done;
        }
        hist[n_past] = tok;
        st = model_decode(ctx, &tok, 1, n_past);
        if (st != STRATA_OK) goto done;
        n_past++;
    }
    if (!stop_hit) {
        /* Whatever was held (an incomplete character, the start of a stop sequence that
         * never completed) is output now. */
        size_t n = 0;
        const char *rest = strata_detok_stream_flush(ds, &n);
        if (rest && n) stop_hit = out_push(&o, rest, n);
        if (stop_hit) stats->done_reason = "stop";
        else out_emit(&o, o.buf, o.len);
    }
    stats->gen_ns = strata_now_ns() - t1;
    if (o.cancelled) st = strata_fail(STRATA_ERR_CANCELLED, "generation cancelled");

done:
    json_guide_free(&jg);
    strata_detok_stream_free(ds);
    free(o.buf);
    free(hist);
    strata_sampler_free(smp);
    return st;
}

strata_status strata_generate(strata_engine *e, const char *prompt, size_t len, const strata_gen_params *gp,
                              strata_gen_emit emit, void *user, strata_gen_stats *stats) {
    int64_t n = strata_tokenize(e->vocab, prompt, len, gp->add_special, false, NULL, 0);
    if (n < 0) return STRATA_ERR_NOMEM;
    if (n > INT32_MAX) return strata_fail(STRATA_ERR_INVALID, "prompt too long");
    int32_t *ids = malloc((size_t)(n ? n : 1) * sizeof *ids);
    if (!ids) return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    strata_tokenize(e->vocab, prompt, len, gp->add_special, false, ids, (size_t)n);
    strata_status st = strata_generate_ids(e, ids, (int32_t)n, gp, emit, user, stats, NULL, 0);
    free(ids);
    return st;
}
