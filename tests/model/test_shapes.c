/* The forward pass on shapes the shared reference models do not have, against a forward
 * pass written here from the architectures' definitions, in double precision.
 *
 * The shared models (../shared/testdata) all have heads of 4 to 32 elements and two query
 * heads per KV head. The models people run have heads of 64, 80 or 128 elements, five or
 * seven query heads per KV head (Qwen2.5), one KV head, a head wider than the embedding
 * divided by the heads (Qwen3), partial rotary dimensions, Llama 3's per-frequency RoPE
 * factors, vocabularies of no particular multiple. Each case below builds a random-weight F32
 * model of such a shape in memory, runs a prompt through the engine in several batches and
 * then token by token, and compares every position's logits with reference_forward():
 * with F32 weights to float rounding (test_against_reference), and with every weight type
 * to the rounding of activations those types' products intend (test_quantized).
 *
 * The reference shares no code with the engine: plain loops over the GGUF tensors (row r of
 * a weight is its output r), accumulating in double, with the KV cache in double. It follows
 * the GGUF conventions the engine is meant to: RMS norm x / sqrt(mean(x^2) + eps) * w;
 * Q/K/V biases (qwen2); per-head RMS norms of Q and K before RoPE (qwen3); RoPE of the first
 * rope_dim elements of each head, on pairs (2i, 2i+1) for llama and (i, i + rope_dim/2) for
 * the NeoX order of qwen2/qwen3, angle pos * freq_scale * base^(-2i/rope_dim) / factor_i;
 * causal softmax attention scaled by 1/sqrt(head_dim), query head h reading KV head
 * h / (heads / kv_heads); SwiGLU; output = token_embd when there is no output.weight.
 * The newer families, from their definitions (the shared data's README, llama.cpp's keys):
 * gemma2/3 (embeddings x sqrt(dim), post-attention and post-FFN norms, tanh-GELU, sliding
 * windows on local layers, gemma2's score and logit soft-caps, gemma3's Q/K norms and the
 * local layers' own RoPE base), phi3 (fused QKV and gate/up row ranges, partial rotary), and
 * mixtures of experts (softmax routing, top-k renormalised, 64 experts of which 8 are used,
 * and Mixtral's 8/2) -- their real head widths of 96, 128 and 256. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref.h"

typedef struct {
    const char *what;
    const char *arch;
    int dim, layers, heads, kv_heads;
    int head_dim;      /* 0: dim / heads (no key_length key) */
    int rope_dim;      /* 0: head_dim (no rope.dimension_count key) */
    int ffn, vocab;
    float freq_base;
    float linear_factor; /* > 0: rope.scaling.type linear with this factor */
    bool tied;           /* no output.weight */
    bool rope_freqs;     /* a rope_freqs.weight tensor of Llama 3-style factors */
    int window;          /* attention.sliding_window (gemma2/3) */
    int swa_pattern;     /* attention.sliding_window_pattern key (0: none: the family's default) */
    float attn_cap, final_cap; /* gemma2's soft-capping keys (0: no key: the defaults 50 and 30) */
    int experts, experts_used, ffn_exp; /* a mixture of experts (qwen3moe; llama = Mixtral) */
} shape;

static const shape shapes[] = {
    {"Llama 3.2-like: heads of 64, 2 per KV head, RoPE factors, tied, odd vocabulary", "llama", 256, 2, 4, 2, 0, 0,
     768, 1001, 500000.0f, 0, true, true, 0, 0, 0, 0, 0, 0, 0},
    {"Qwen2.5-like: biases, NeoX, 7 query heads on one KV head of 64", "qwen2", 448, 2, 7, 1, 0, 0, 768, 515,
     1000000.0f, 0, true, false, 0, 0, 0, 0, 0, 0, 0},
    {"Qwen3-like: heads of 128 wider than dim / heads, Q/K norms", "qwen3", 256, 2, 4, 2, 128, 0, 512, 300,
     1000000.0f, 0, false, false, 0, 0, 0, 0, 0, 0, 0},
    {"MHA with heads of 80, 32 rotary dimensions, linear RoPE scaling x4", "llama", 320, 2, 4, 4, 80, 32, 512, 257,
     10000.0f, 4.0f, false, false, 0, 0, 0, 0, 0, 0, 0},
    {"MQA: 40 query heads of 8 on one KV head (more than a block of 32 query rows per token)", "llama", 320, 2, 40, 1,
     0, 0, 256, 300, 10000.0f, 0, false, false, 0, 0, 0, 0, 0, 0, 0},
    /* the newer families (their definitions: model/arch.c and the README of the shared data) */
    {.what = "Gemma2-like: heads of 128 wider than dim / heads, window 16 on even layers, caps 3 and 4, tied",
     .arch = "gemma2", .dim = 256, .layers = 2, .heads = 4, .kv_heads = 2, .head_dim = 128, .ffn = 512,
     .vocab = 300, .freq_base = 10000.0f, .tied = true, .window = 16, .attn_cap = 3.0f, .final_cap = 4.0f},
    {.what = "Gemma2-like with the default caps (50, 30) and window 4096 (no keys)", .arch = "gemma2", .dim = 256,
     .layers = 2, .heads = 4, .kv_heads = 2, .ffn = 512, .vocab = 257, .freq_base = 10000.0f, .tied = true},
    {.what = "Gemma3-like: heads of 256 on one KV head, Q/K norms, pattern 3 (window 16), global base 1e6 x8 linear",
     .arch = "gemma3", .dim = 256, .layers = 3, .heads = 4, .kv_heads = 1, .head_dim = 256, .ffn = 512,
     .vocab = 300, .freq_base = 1000000.0f, .linear_factor = 8.0f, .tied = true, .window = 16, .swa_pattern = 3},
    {.what = "Phi3-like: heads of 96, fused QKV and gate/up, 48 of 96 dimensions rotary", .arch = "phi3",
     .dim = 384, .layers = 2, .heads = 4, .kv_heads = 4, .rope_dim = 48, .ffn = 512, .vocab = 300,
     .freq_base = 10000.0f, .tied = true},
    {.what = "Qwen3-MoE-like: 64 experts, 8 used, expert FFN 64, Q/K norms", .arch = "qwen3moe", .dim = 256,
     .layers = 2, .heads = 4, .kv_heads = 2, .head_dim = 64, .ffn = 768, .vocab = 300, .freq_base = 1000000.0f,
     .experts = 64, .experts_used = 8, .ffn_exp = 64},
    {.what = "Mixtral-like: llama with 8 experts, 2 used, normal RoPE", .arch = "llama", .dim = 256, .layers = 2,
     .heads = 8, .kv_heads = 2, .ffn = 128, .vocab = 300, .freq_base = 1000000.0f, .experts = 8,
     .experts_used = 2},
};

static bool is_arch(const shape *s, const char *a) { return strcmp(s->arch, a) == 0; }
static bool is_gemma(const shape *s) { return is_arch(s, "gemma2") || is_arch(s, "gemma3"); }
static int ffn_exp_of(const shape *s) { return s->ffn_exp ? s->ffn_exp : s->ffn; }

/* Prompts of 70 tokens in batches of 32 for the F32 checks (attention over more than one
 * block of query rows), 23 in batches of 8 for the many quantized models (other tails of the
 * batch tiles' token steps), then DECODED tokens one at a time. */
enum { LONG_PROMPT = 70, LONG_BATCH = 32, SHORT_PROMPT = 23, SHORT_BATCH = 8, DECODED = 6, N_CTX = 320 };

/* ---- a random model in memory ----------------------------------------------------------- */

static uint64_t rng;
static double urand(void) { /* uniform in [-1, 1) */
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

typedef struct {
    gguf_writer *w;
    float *bufs[256];
    int n;
} builder;

static void add3(builder *b, const char *name, int64_t n0, int64_t n1, int64_t n2, double lo, double hi) {
    assert_true(b->n < 256);
    const int64_t ne[3] = {n0, n1, n2};
    float *v = malloc((size_t)(n0 * n1 * n2) * sizeof *v);
    assert_non_null(v);
    for (int64_t i = 0; i < n0 * n1 * n2; i++) v[i] = (float)(lo + (hi - lo) * (urand() + 1) / 2);
    b->bufs[b->n++] = v;
    assert_int_equal(gguf_writer_add_tensor(b->w, name, STRATA_TYPE_F32, n2 > 1 ? 3 : n1 > 1 ? 2 : 1, ne, v),
                     STRATA_OK);
}

static void add(builder *b, const char *name, int64_t n0, int64_t n1, double lo, double hi) {
    add3(b, name, n0, n1, 1, lo, hi);
}

static int head_dim_of(const shape *s) { return s->head_dim ? s->head_dim : s->dim / s->heads; }
static int rope_dim_of(const shape *s) { return s->rope_dim ? s->rope_dim : head_dim_of(s); }

/* Weights scaled by 1/sqrt(inputs), so activations stay of order one through the layers and
 * the logits spread over a few units. */
static void *build_model(const shape *s, size_t *size) {
    builder b = {.w = gguf_writer_new()};
    assert_non_null(b.w);
    char key[128];
#define KEY(suffix) (snprintf(key, sizeof key, "%s.%s", s->arch, suffix), key)
    assert_int_equal(gguf_writer_add_str(b.w, "general.architecture", s->arch), STRATA_OK);
    assert_int_equal(gguf_writer_add_u32(b.w, KEY("embedding_length"), (uint32_t)s->dim), STRATA_OK);
    assert_int_equal(gguf_writer_add_u32(b.w, KEY("block_count"), (uint32_t)s->layers), STRATA_OK);
    assert_int_equal(gguf_writer_add_u32(b.w, KEY("feed_forward_length"), (uint32_t)s->ffn), STRATA_OK);
    assert_int_equal(gguf_writer_add_u32(b.w, KEY("attention.head_count"), (uint32_t)s->heads), STRATA_OK);
    assert_int_equal(gguf_writer_add_u32(b.w, KEY("attention.head_count_kv"), (uint32_t)s->kv_heads), STRATA_OK);
    assert_int_equal(gguf_writer_add_u32(b.w, KEY("context_length"), 4096), STRATA_OK);
    assert_int_equal(gguf_writer_add_f32(b.w, KEY("rope.freq_base"), s->freq_base), STRATA_OK);
    assert_int_equal(gguf_writer_add_f32(b.w, KEY("attention.layer_norm_rms_epsilon"), 1e-6f), STRATA_OK);
    if (s->head_dim) {
        assert_int_equal(gguf_writer_add_u32(b.w, KEY("attention.key_length"), (uint32_t)s->head_dim), STRATA_OK);
        assert_int_equal(gguf_writer_add_u32(b.w, KEY("attention.value_length"), (uint32_t)s->head_dim), STRATA_OK);
    }
    if (s->rope_dim) assert_int_equal(gguf_writer_add_u32(b.w, KEY("rope.dimension_count"), (uint32_t)s->rope_dim), STRATA_OK);
    if (s->linear_factor > 0) {
        assert_int_equal(gguf_writer_add_str(b.w, KEY("rope.scaling.type"), "linear"), STRATA_OK);
        assert_int_equal(gguf_writer_add_f32(b.w, KEY("rope.scaling.factor"), s->linear_factor), STRATA_OK);
    }
    if (s->window) assert_int_equal(gguf_writer_add_u32(b.w, KEY("attention.sliding_window"), (uint32_t)s->window), STRATA_OK);
    if (s->swa_pattern)
        assert_int_equal(gguf_writer_add_u32(b.w, KEY("attention.sliding_window_pattern"), (uint32_t)s->swa_pattern),
                         STRATA_OK);
    if (s->attn_cap > 0) assert_int_equal(gguf_writer_add_f32(b.w, KEY("attn_logit_softcapping"), s->attn_cap), STRATA_OK);
    if (s->final_cap > 0) assert_int_equal(gguf_writer_add_f32(b.w, KEY("final_logit_softcapping"), s->final_cap), STRATA_OK);
    if (s->experts) {
        assert_int_equal(gguf_writer_add_u32(b.w, KEY("expert_count"), (uint32_t)s->experts), STRATA_OK);
        assert_int_equal(gguf_writer_add_u32(b.w, KEY("expert_used_count"), (uint32_t)s->experts_used), STRATA_OK);
        if (s->ffn_exp)
            assert_int_equal(gguf_writer_add_u32(b.w, KEY("expert_feed_forward_length"), (uint32_t)s->ffn_exp), STRATA_OK);
    }
#undef KEY
    const int hd = head_dim_of(s), qd = s->heads * hd, kvd = s->kv_heads * hd;
    const double ae = 1 / sqrt(s->dim), aq = 1 / sqrt(qd), af = 1 / sqrt(s->ffn);
    add(&b, "token_embd.weight", s->dim, s->vocab, -1, 1);
    if (s->experts) {
        /* Decisive routing (see ROUTE_MARGIN): token v's embedding leans on direction v mod 8
         * (dims [32 j, 32 j + 32): spread, so that no single activation is an outlier that
         * blocks of 8-bit activations would round everything else against), and the router
         * maps direction j to experts S_j = {(j K + i) mod E, i < K} (so every expert is used
         * and a prompt's tokens share experts), with the order inside S_j, and so the
         * weights, left to the random rest. */
        float *e = b.bufs[b.n - 1];
        for (int v = 0; v < s->vocab; v++)
            for (int i = 0; i < s->dim / 8; i++) e[(size_t)v * s->dim + (v % 8) * (s->dim / 8) + i] += 3.0f;
    }
    add(&b, "output_norm.weight", s->dim, 1, 0.5, 1.5);
    if (!s->tied) add(&b, "output.weight", s->dim, s->vocab, -ae, ae);
    if (s->rope_freqs) add(&b, "rope_freqs.weight", rope_dim_of(s) / 2, 1, 1, 8);
    const bool qwen2 = is_arch(s, "qwen2"), qwen3 = is_arch(s, "qwen3") || is_arch(s, "qwen3moe");
    const bool gemma = is_gemma(s), phi3 = is_arch(s, "phi3");
    for (int l = 0; l < s->layers; l++) {
        char n[96];
#define T(suffix) (snprintf(n, sizeof n, "blk.%d.%s", l, suffix), n)
        add(&b, T("attn_norm.weight"), s->dim, 1, 0.5, 1.5);
        if (phi3) {
            /* [Q; K; V] rows of one matrix, V's rows half as large, as in the separate case */
            add(&b, T("attn_qkv.weight"), s->dim, qd + 2 * kvd, -2 * ae, 2 * ae);
        } else {
            add(&b, T("attn_q.weight"), s->dim, qd, -2 * ae, 2 * ae);
            add(&b, T("attn_k.weight"), s->dim, kvd, -2 * ae, 2 * ae);
            add(&b, T("attn_v.weight"), s->dim, kvd, -ae, ae);
        }
        add(&b, T("attn_output.weight"), qd, s->dim, -aq, aq);
        if (gemma) {
            add(&b, T("post_attention_norm.weight"), s->dim, 1, 0.5, 1.5);
            add(&b, T("post_ffw_norm.weight"), s->dim, 1, 0.5, 1.5);
        }
        if (qwen2) {
            add(&b, T("attn_q.bias"), qd, 1, -0.5, 0.5);
            add(&b, T("attn_k.bias"), kvd, 1, -0.5, 0.5);
            add(&b, T("attn_v.bias"), kvd, 1, -0.5, 0.5);
        }
        if (qwen3 || is_arch(s, "gemma3")) {
            add(&b, T("attn_q_norm.weight"), hd, 1, 0.5, 1.5);
            add(&b, T("attn_k_norm.weight"), hd, 1, 0.5, 1.5);
        }
        add(&b, T("ffn_norm.weight"), s->dim, 1, 0.5, 1.5);
        if (s->experts) {
            const int fe = ffn_exp_of(s);
            const double ax = 1 / sqrt(fe);
            add(&b, T("ffn_gate_inp.weight"), s->dim, s->experts, -4 * ae, 4 * ae);
            float *r = b.bufs[b.n - 1];
            for (int j = 0; j < 8; j++)
                for (int i = 0; i < s->experts_used; i++)
                    for (int c = 0; c < s->dim / 8; c++)
                        r[(size_t)((j * s->experts_used + i) % s->experts) * s->dim + j * (s->dim / 8) + c] += 0.5f;
            add3(&b, T("ffn_gate_exps.weight"), s->dim, fe, s->experts, -2 * ae, 2 * ae);
            add3(&b, T("ffn_up_exps.weight"), s->dim, fe, s->experts, -2 * ae, 2 * ae);
            add3(&b, T("ffn_down_exps.weight"), fe, s->dim, s->experts, -2 * ax, 2 * ax);
        } else if (phi3) {
            add(&b, T("ffn_up.weight"), s->dim, 2 * s->ffn, -2 * ae, 2 * ae); /* [gate; up] */
            add(&b, T("ffn_down.weight"), s->ffn, s->dim, -af, af);
        } else {
            add(&b, T("ffn_gate.weight"), s->dim, s->ffn, -2 * ae, 2 * ae);
            add(&b, T("ffn_up.weight"), s->dim, s->ffn, -2 * ae, 2 * ae);
            add(&b, T("ffn_down.weight"), s->ffn, s->dim, -af, af);
        }
#undef T
    }
    void *mem = NULL;
    assert_int_equal(gguf_writer_write_memory(b.w, &mem, size), STRATA_OK);
    for (int i = 0; i < b.n; i++) free(b.bufs[i]);
    gguf_writer_free(b.w);
    return mem;
}

/* ---- the reference forward pass ----------------------------------------------------------- */

static const float *tensor(const gguf_file *f, const char *name) {
    const gguf_tensor *t = gguf_find_tensor(f, name);
    assert_non_null(t);
    assert_int_equal(t->type, STRATA_TYPE_F32);
    return t->data;
}

static const float *layer_tensor(const gguf_file *f, int l, const char *suffix) {
    char n[96];
    snprintf(n, sizeof n, "blk.%d.%s", l, suffix);
    return gguf_find_tensor(f, n) ? tensor(f, n) : NULL;
}

/* y[rows] = W x, W rows of `cols` floats. */
static void matvec(const float *w, int rows, int cols, const double *x, double *y) {
    for (int r = 0; r < rows; r++) {
        double s = 0;
        for (int c = 0; c < cols; c++) s += (double)w[(size_t)r * cols + c] * x[c];
        y[r] = s;
    }
}

static void rms_norm(const double *x, const float *w, int n, double eps, double *y) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    const double k = 1 / sqrt(ss / n + eps);
    for (int i = 0; i < n; i++) y[i] = x[i] * k * w[i];
}

/* Whether layer l attends through the sliding window: gemma2's even layers, gemma3's layers
 * l mod N < N - 1 (N = the pattern key, else 6). */
static bool local_layer(const shape *s, int l) {
    if (!is_gemma(s)) return false;
    const int pat = s->swa_pattern ? s->swa_pattern : is_arch(s, "gemma2") ? 2 : 6;
    return l % pat < pat - 1;
}

/* The window of a local layer: the key, else gemma2's 4096. */
static int window_of(const shape *s) { return s->window ? s->window : 4096; }

/* RoPE; gemma3's local layers use base 10000 without scaling. */
static void rope(double *h, int pos, const shape *s, const float *factors, bool local) {
    const int rd = rope_dim_of(s);
    const bool neox = strcmp(s->arch, "llama") != 0;
    const bool own = local && is_arch(s, "gemma3");
    const double scale = s->linear_factor > 0 && !own ? 1.0 / s->linear_factor : 1.0;
    const double base = own ? 10000.0 : s->freq_base;
    for (int i = 0; i < rd / 2; i++) {
        double theta = pos * scale * pow(base, -2.0 * i / rd);
        if (factors) theta /= factors[i];
        const int a = neox ? i : 2 * i, b = neox ? i + rd / 2 : 2 * i + 1;
        const double x0 = h[a], x1 = h[b];
        h[a] = x0 * cos(theta) - x1 * sin(theta);
        h[b] = x0 * sin(theta) + x1 * cos(theta);
    }
}

/* The smallest routing margin of each position the reference ran (over layers): the gap
 * between the k-th and (k+1)-th largest router logit, relative to the largest |logit|. A
 * quantized engine (or cache) perturbs the router's logits by a fraction of a percent, so a
 * position whose margin is below ROUTE_MARGIN may legitimately pick another expert than the
 * reference -- a jump in the output of the size of that expert's share, and through the KV
 * cache in every later position -- as the shared data's README says of its MoE files. The
 * checks that round anything compare positions before the first such close call. */
#define ROUTE_MARGIN 0.03
static double route_margin[512];
static int route_pos;

static double gelu_tanh(double x) { return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))); }

/* The FFN of one position on the normed state xn into o. Dense: down(act(gate xn) * up xn),
 * act = tanh-GELU for gemma, else SiLU; phi3's gate and up are the two halves of ffn_up's
 * rows. Experts: softmax over the router's logits, the experts_used largest, weights
 * renormalised to sum 1, sum of weight x down_e(silu(gate_e xn) * up_e xn). */
static void reference_ffn(const gguf_file *f, const shape *s, int l, const double *xn, double *o) {
    const int D = s->dim, F = s->ffn;
    double *g = malloc(2 * (size_t)(F > ffn_exp_of(s) ? F : ffn_exp_of(s)) * sizeof *g);
    assert_non_null(g);
    if (!s->experts) {
        double *u = g + F;
        if (is_arch(s, "phi3")) {
            const float *gu = layer_tensor(f, l, "ffn_up.weight");
            matvec(gu, F, D, xn, g);
            matvec(gu + (size_t)F * D, F, D, xn, u);
        } else {
            matvec(layer_tensor(f, l, "ffn_gate.weight"), F, D, xn, g);
            matvec(layer_tensor(f, l, "ffn_up.weight"), F, D, xn, u);
        }
        for (int i = 0; i < F; i++) g[i] = (is_gemma(s) ? gelu_tanh(g[i]) : g[i] / (1 + exp(-g[i]))) * u[i];
        matvec(layer_tensor(f, l, "ffn_down.weight"), D, F, g, o);
        free(g);
        return;
    }
    const int E = s->experts, K = s->experts_used, Fe = ffn_exp_of(s);
    double logit[256], p[256], tot = 0, mx = -INFINITY;
    matvec(layer_tensor(f, l, "ffn_gate_inp.weight"), E, D, xn, logit);
    for (int e = 0; e < E; e++) mx = fmax(mx, logit[e]);
    double sum = 0;
    for (int e = 0; e < E; e++) sum += (p[e] = exp(logit[e] - mx));
    int chosen[64];
    for (int k = 0; k < K; k++) {
        int best = -1;
        for (int e = 0; e < E; e++) {
            bool used = false;
            for (int j = 0; j < k; j++) used = used || chosen[j] == e;
            if (!used && (best < 0 || p[e] > p[best])) best = e;
        }
        chosen[k] = best;
        tot += p[best] / sum;
    }
    {
        double next = -INFINITY, big = 0;
        for (int e = 0; e < E; e++) {
            bool used = false;
            for (int j = 0; j < K; j++) used = used || chosen[j] == e;
            if (!used) next = fmax(next, logit[e]);
            big = fmax(big, fabs(logit[e]));
        }
        const double m = K < E ? (logit[chosen[K - 1]] - next) / big : 1.0;
        if (m < route_margin[route_pos]) route_margin[route_pos] = m;
    }
    double *u = g + Fe, *oe = malloc(D * sizeof *oe);
    for (int i = 0; i < D; i++) o[i] = 0;
    for (int k = 0; k < K; k++) {
        const int e = chosen[k];
        matvec(layer_tensor(f, l, "ffn_gate_exps.weight") + (size_t)e * Fe * D, Fe, D, xn, g);
        matvec(layer_tensor(f, l, "ffn_up_exps.weight") + (size_t)e * Fe * D, Fe, D, xn, u);
        for (int i = 0; i < Fe; i++) g[i] = g[i] / (1 + exp(-g[i])) * u[i];
        matvec(layer_tensor(f, l, "ffn_down_exps.weight") + (size_t)e * D * Fe, D, Fe, g, oe);
        for (int i = 0; i < D; i++) o[i] += p[e] / sum / tot * oe[i];
    }
    free(oe);
    free(g);
}

/* Logits of every position of ids[0..n), token by token; out: n x vocab. Gemma: embeddings
 * times sqrt(dim); the attention and FFN outputs RMS-normed (post norms) before they join
 * the residual; local layers see the last `window` positions; gemma2 soft-caps the scores
 * (cap tanh(s / cap), default cap 50) and the logits (default 30). */
static void reference_forward(const gguf_file *f, const shape *s, const int32_t *ids, int n, double *out) {
    const int D = s->dim, hd = head_dim_of(s), H = s->heads, KV = s->kv_heads, V = s->vocab;
    const double eps = 1e-6;
    const bool gemma2 = is_arch(s, "gemma2"), phi3 = is_arch(s, "phi3");
    const double acap = gemma2 ? (s->attn_cap > 0 ? s->attn_cap : 50.0) : 0;
    const double fcap = gemma2 ? (s->final_cap > 0 ? s->final_cap : 30.0) : 0;
    const float *factors = gguf_find_tensor(f, "rope_freqs.weight") ? tensor(f, "rope_freqs.weight") : NULL;
    double *kc = calloc((size_t)s->layers * n * KV * hd, sizeof *kc), *vc = calloc((size_t)s->layers * n * KV * hd, sizeof *vc);
    double *x = malloc(D * sizeof *x), *xn = malloc(D * sizeof *xn), *q = malloc((size_t)(H + 2 * KV) * hd * sizeof *q);
    double *att = malloc((size_t)H * hd * sizeof *att), *o = malloc(D * sizeof *o), *sc = malloc(n * sizeof *sc);
    assert_true(kc && vc && x && xn && q && att && o && sc);
    const float *embd = tensor(f, "token_embd.weight");
    const float *outw = gguf_find_tensor(f, "output.weight") ? tensor(f, "output.weight") : embd;
    assert_true(n <= 512);
    for (int p = 0; p < n; p++) {
        route_pos = p;
        route_margin[p] = 1.0;
        for (int i = 0; i < D; i++) x[i] = embd[(size_t)ids[p] * D + i] * (is_gemma(s) ? sqrt((double)D) : 1.0);
        for (int l = 0; l < s->layers; l++) {
            const bool local = local_layer(s, l);
            double *kp = kc + ((size_t)l * n + p) * KV * hd, *vp = vc + ((size_t)l * n + p) * KV * hd;
            rms_norm(x, layer_tensor(f, l, "attn_norm.weight"), D, eps, xn);
            if (phi3) {
                /* rows 0..H*hd-1 of attn_qkv are Q, then K, then V */
                matvec(layer_tensor(f, l, "attn_qkv.weight"), (H + 2 * KV) * hd, D, xn, q);
                memcpy(kp, q + H * hd, (size_t)KV * hd * sizeof *kp);
                memcpy(vp, q + (H + KV) * hd, (size_t)KV * hd * sizeof *vp);
            } else {
                matvec(layer_tensor(f, l, "attn_q.weight"), H * hd, D, xn, q);
                matvec(layer_tensor(f, l, "attn_k.weight"), KV * hd, D, xn, kp);
                matvec(layer_tensor(f, l, "attn_v.weight"), KV * hd, D, xn, vp);
            }
            const float *bq = layer_tensor(f, l, "attn_q.bias"), *bk = layer_tensor(f, l, "attn_k.bias"),
                        *bv = layer_tensor(f, l, "attn_v.bias");
            for (int i = 0; bq && i < H * hd; i++) q[i] += bq[i];
            for (int i = 0; bk && i < KV * hd; i++) kp[i] += bk[i];
            for (int i = 0; bv && i < KV * hd; i++) vp[i] += bv[i];
            const float *qn = layer_tensor(f, l, "attn_q_norm.weight"), *kn = layer_tensor(f, l, "attn_k_norm.weight");
            for (int h = 0; h < H; h++) {
                if (qn) rms_norm(q + h * hd, qn, hd, eps, q + h * hd);
                rope(q + h * hd, p, s, factors, local);
            }
            for (int h = 0; h < KV; h++) {
                if (kn) rms_norm(kp + h * hd, kn, hd, eps, kp + h * hd);
                rope(kp + h * hd, p, s, factors, local);
            }
            const int t0 = local && p - window_of(s) + 1 > 0 ? p - window_of(s) + 1 : 0;
            for (int h = 0; h < H; h++) {
                const int kvh = h / (H / KV);
                double mx = -INFINITY, sum = 0;
                for (int t = t0; t <= p; t++) {
                    const double *k = kc + ((size_t)l * n + t) * KV * hd + kvh * hd;
                    double d = 0;
                    for (int i = 0; i < hd; i++) d += q[h * hd + i] * k[i];
                    sc[t] = d / sqrt(hd);
                    if (acap > 0) sc[t] = acap * tanh(sc[t] / acap);
                    if (sc[t] > mx) mx = sc[t];
                }
                for (int t = t0; t <= p; t++) sum += (sc[t] = exp(sc[t] - mx));
                for (int i = 0; i < hd; i++) {
                    double a = 0;
                    for (int t = t0; t <= p; t++) a += sc[t] * vc[((size_t)l * n + t) * KV * hd + kvh * hd + i];
                    att[h * hd + i] = a / sum;
                }
            }
            matvec(layer_tensor(f, l, "attn_output.weight"), D, H * hd, att, o);
            const float *pa = layer_tensor(f, l, "post_attention_norm.weight");
            if (pa) rms_norm(o, pa, D, eps, o);
            for (int i = 0; i < D; i++) x[i] += o[i];
            rms_norm(x, layer_tensor(f, l, "ffn_norm.weight"), D, eps, xn);
            reference_ffn(f, s, l, xn, o);
            const float *pf = layer_tensor(f, l, "post_ffw_norm.weight");
            if (pf) rms_norm(o, pf, D, eps, o);
            for (int i = 0; i < D; i++) x[i] += o[i];
        }
        rms_norm(x, tensor(f, "output_norm.weight"), D, eps, xn);
        double *row = out + (size_t)p * V;
        matvec(outw, V, D, xn, row);
        for (int v = 0; fcap > 0 && v < V; v++) row[v] = fcap * tanh(row[v] / fcap);
    }
    free(kc), free(vc), free(x), free(xn), free(q), free(att), free(o), free(sc);
}

/* Positions of the last reference run before its first routing close call (all of them for
 * a dense model). */
static int decisive_positions(const shape *s, int n) {
    if (!s->experts) return n;
    int p = 0;
    while (p < n && route_margin[p] >= ROUTE_MARGIN) p++;
    return p;
}

/* ---- the engine against it ---------------------------------------------------------------- */

/* One shape's random model in memory, n random token ids, and room for n rows of logits. */
typedef struct {
    void *mem;
    gguf_file *f;
    int32_t *ids;
    int n, V;
    double *want;
    float *got;
} shape_case;

static void case_open(shape_case *k, const shape *s, uint64_t seed, int n) {
    rng = seed;
    size_t size = 0;
    k->mem = build_model(s, &size);
    k->f = NULL;
    assert_int_equal(gguf_open_memory(k->mem, size, GGUF_OPEN_DEFAULT, &k->f), STRATA_OK);
    k->n = n;
    k->V = s->vocab;
    k->ids = malloc((size_t)n * sizeof *k->ids);
    k->want = malloc((size_t)n * k->V * sizeof *k->want);
    k->got = malloc((size_t)n * k->V * sizeof *k->got);
    assert_true(k->ids && k->want && k->got);
    for (int i = 0; i < n; i++) k->ids[i] = (int32_t)((urand() + 1) / 2 * k->V) % k->V;
}

static void case_close(shape_case *k) {
    gguf_close(k->f);
    free(k->mem);
    free(k->ids);
    free(k->want);
    free(k->got);
}

/* Logits of every position from our engine: the prompt in batches of `batch` tokens, then
 * the rest one token at a time (the decode path), out: n x vocab. */
static void engine_forward(const gguf_file *f, strata_type kv_type, const int32_t *ids, int n, int prompt, int batch,
                           float *out) {
    model_desc d;
    assert_int_equal(model_desc_init(f, &d), STRATA_OK);
    model_params p = model_default_params();
    p.n_ctx = N_CTX;
    p.n_batch = batch;
    p.n_logits = batch;
    p.kv_type = kv_type;
    p.n_threads = 2;
    strata_device dev;
    strata_device_init_cpu(&dev);
    model_context *ctx = NULL;
    if (model_context_init(&d, &p, &dev, &ctx) != STRATA_OK) fail_msg("%s", strata_last_error());
    const int V = d.hp.n_vocab;
    for (int pos = 0; pos < n;) {
        const int k = pos < prompt ? (prompt - pos < batch ? prompt - pos : batch) : 1;
        assert_int_equal(model_decode(ctx, ids + pos, k, pos), STRATA_OK);
        assert_int_equal(model_logits_count(ctx), k);
        for (int i = 0; i < k; i++) memcpy(out + (size_t)(pos + i) * V, model_logits(ctx, i), V * sizeof *out);
        pos += k;
    }
    model_context_free(ctx);
    model_desc_free(&d);
}

/* Largest |engine - reference| over every logit, relative to (base + rel * max|reference row|). */
static double worst_ratio(const float *got, const double *want, int n, int V, double base, double rel, int *where) {
    double worst = 0;
    for (int p = 0; p < n; p++) {
        double mx = 0, d = 0;
        for (int v = 0; v < V; v++) {
            const double w = want[(size_t)p * V + v], e = fabs(got[(size_t)p * V + v] - w);
            if (fabs(w) > mx) mx = fabs(w);
            if (!(e <= d)) d = e; /* NaN propagates */
        }
        const double r = d / (base + rel * mx);
        if (!(r <= worst)) {
            worst = r;
            *where = p;
        }
    }
    return worst;
}

/* F32 weights with an F32 KV cache: the engine differs from the reference only by float
 * rounding, as in test_logits' F32-engine check (same bound: 2e-4 + 2e-5 x max|logit| of the
 * row). With the default F16 cache, K and V are rounded to 11 significant bits (relative
 * 2^-12 each), which moves logits of this size by a few thousandths: bound 0.02 + 2e-3 x
 * max|logit|. A head bound to the wrong KV head, a wrong RoPE pair or angle, a missing bias
 * or norm moves them by units. A Q8_0 cache rounds K and V to 8-bit blocks (a step of up to
 * 1/127 of a block's largest value): measured 0.2-0.7 % of the row's largest logit; bound 3 %. */
#define Q8_CACHE_BOUND 0.03
static void test_against_reference(void **state) {
    (void)state;
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
        const shape *s = &shapes[c];
        shape_case k;
        case_open(&k, s, 0x9e3779b97f4a7c15ull + c, LONG_PROMPT + DECODED);
        gguf_file *f = k.f;
        const int n = k.n, V = k.V;
        const int32_t *ids = k.ids;
        double *want = k.want;
        float *got = k.got;
        reference_forward(f, s, ids, n, want);
        double spread = 0;
        for (size_t i = 0; i < (size_t)n * V; i++) spread = fabs(want[i]) > spread ? fabs(want[i]) : spread;

        int at = -1;
        engine_forward(f, STRATA_TYPE_F32, ids, n, LONG_PROMPT, LONG_BATCH, got);
        const double r32 = worst_ratio(got, want, n, V, 2e-4, 2e-5, &at);
        print_message("  %s\n    max |logit| %.2f; F32 cache: worst %.3f of the bound (position %d)", s->what, spread,
                      r32, at);
        if (!(r32 <= 1)) fail_msg("%s: F32 cache: position %d is %.2f times the bound", s->what, at, r32);
        engine_forward(f, STRATA_TYPE_F16, ids, n, LONG_PROMPT, LONG_BATCH, got);
        const double r16 = worst_ratio(got, want, n, V, 0.02, 2e-3, &at);
        print_message("; F16 cache: %.3f (position %d)", r16, at);
        if (!(r16 <= 1)) fail_msg("%s: F16 cache: position %d is %.2f times the bound", s->what, at, r16);
        if (head_dim_of(s) % 32 == 0) {
            engine_forward(f, STRATA_TYPE_Q8_0, ids, n, LONG_PROMPT, LONG_BATCH, got);
            const int m8 = decisive_positions(s, n);
            const double r8 = worst_ratio(got, want, m8, V, 0.0, Q8_CACHE_BOUND, &at);
            print_message("; Q8_0 cache: %.3f (position %d; %d of %d positions before a routing close call)\n", r8, at,
                          m8, n);
            if (s->experts && m8 < 4) fail_msg("%s: a close routing call at position %d already", s->what, m8);
            if (!(r8 <= 1)) fail_msg("%s: Q8_0 cache: position %d is %.2f times the bound", s->what, at, r8);
        } else {
            /* Q8_0 blocks of 32 cannot hold a head row of another length (test_model checks
             * the refusal) */
            print_message("; no Q8_0 cache for heads of %d\n", head_dim_of(s));
        }
        /* The logits must spread over units, or the bounds above would say nothing. */
        assert_true(spread > 1);
        case_close(&k);
    }
}

/* Decoding past 256 positions splits each KV head's positions into chunks whose softmax terms
 * are combined afterwards (forward.c, ATT_KCHUNK): a prompt of 250 tokens in batches of 64,
 * then 40 tokens one at a time, through one and two chunks, for the shapes with 1, 2 and 2 KV
 * heads of 64 and 128 and the one with 40 query heads per KV head, and the gemma and phi3
 * shapes (sliding windows of 16 far behind the first position, soft-capped scores in split
 * steps); against the reference, with the bounds of test_against_reference. */
static void test_long_decode(void **state) {
    (void)state;
    enum { PROMPT = 250, STEPS = 40 };
    static const size_t which[] = {0, 1, 2, 4, 5, 6, 7, 8};
    for (size_t w = 0; w < sizeof which / sizeof which[0]; w++) {
        const size_t c = which[w];
        const shape *s = &shapes[c];
        shape_case k;
        case_open(&k, s, 0x51ed270b27ull + c, PROMPT + STEPS);
        gguf_file *f = k.f;
        const int n = k.n, V = k.V;
        const int32_t *ids = k.ids;
        double *want = k.want;
        float *got = k.got;
        reference_forward(f, s, ids, n, want);
        int at = -1;
        engine_forward(f, STRATA_TYPE_F32, ids, n, PROMPT, 64, got);
        const double r32 = worst_ratio(got + (size_t)PROMPT * V, want + (size_t)PROMPT * V, STEPS, V, 2e-4, 2e-5, &at);
        engine_forward(f, STRATA_TYPE_F16, ids, n, PROMPT, 64, got);
        int at16 = -1;
        const double r16 = worst_ratio(got + (size_t)PROMPT * V, want + (size_t)PROMPT * V, STEPS, V, 0.02, 2e-3, &at16);
        int at8 = -1;
        double r8 = 0; /* a Q8_0 cache needs heads of whole blocks of 32 */
        if (head_dim_of(s) % 32 == 0) {
            engine_forward(f, STRATA_TYPE_Q8_0, ids, n, PROMPT, 64, got);
            r8 = worst_ratio(got + (size_t)PROMPT * V, want + (size_t)PROMPT * V, STEPS, V, 0.0, Q8_CACHE_BOUND, &at8);
        }
        print_message("  %s\n    decode steps %d-%d: F32 cache %.3f of the bound (step %d), F16 %.3f, Q8_0 %.3f\n", s->what,
                      PROMPT, n - 1, r32, PROMPT + at, r16, r8);
        if (!(r32 <= 1 && r16 <= 1 && r8 <= 1)) fail_msg("%s: beyond a bound", s->what);
        case_close(&k);
    }
}

/* A copy of f with every matrix quantized to `type` where its rows are whole blocks of it, and
 * to Q8_0 where they are not (as quantizers fall back); norms and biases stay F32. */
static void *quantized_copy(const gguf_file *f, strata_type type, size_t *size) {
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    for (int64_t i = 0; i < gguf_kv_count(f); i++) assert_int_equal(gguf_writer_copy_kv(w, f, i), STRATA_OK);
    const int64_t nt = gguf_tensor_count(f);
    void **bufs = calloc((size_t)nt, sizeof *bufs);
    for (int64_t i = 0; i < nt; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        strata_type tt = t->n_dims < 2 ? STRATA_TYPE_F32 : strata_type_row_ok(type, t->ne[0]) ? type : STRATA_TYPE_Q8_0;
        const int64_t rows = gguf_tensor_elements(t) / t->ne[0];
        const size_t rb = strata_type_row_bytes(tt, t->ne[0]);
        bufs[i] = malloc(rb * rows);
        for (int64_t r = 0; r < rows; r++)
            if (tt == STRATA_TYPE_F32) memcpy((uint8_t *)bufs[i] + r * rb, (const float *)t->data + r * t->ne[0], rb);
            else strata_quantize_row(tt, (const float *)t->data + r * t->ne[0], (uint8_t *)bufs[i] + r * rb, t->ne[0]);
        assert_int_equal(gguf_writer_add_tensor(w, t->name, tt, t->n_dims, t->ne, bufs[i]), STRATA_OK);
    }
    void *mem = NULL;
    assert_int_equal(gguf_writer_write_memory(w, &mem, size), STRATA_OK);
    for (int64_t i = 0; i < nt; i++) free(bufs[i]);
    free(bufs);
    gguf_writer_free(w);
    return mem;
}

/* Every weight type on the same shapes: the engine on a quantized copy against the reference
 * on that copy's dequantized weights, so both multiply the same weights. What remains is the
 * rounding of activations to 8-bit blocks before each product, which the formats intend
 * (Q8_0-style blocks of 32 or Q8_K-style of 256; F16/BF16 rounding for those weights): on these
 * shapes it moves the logits by 0.4-2 % RMS and by at most 3.4 % of a row's largest logit, for
 * every type. The bounds (4 % RMS, 8 % of the row's largest logit) leave twice that; a row,
 * block or scale read wrong, a tile's tail rows dropped or the repacked layout misread moves
 * the logits it touches by their own size. These shapes give every kernel rows that are no
 * multiple of its tile (vocabularies of 1001, 515, 300 and 257; 448 and 320 rows) and the
 * repacked Q4_0/Q4_K layout a plain tail. Rows that are not whole blocks of a type are
 * quantized to Q8_0, as quantizers fall back. */
#define QUANT_RMS_BOUND 0.04
#define QUANT_MAX_BOUND 0.08

static void test_quantized(void **state) {
    (void)state;
    static const strata_type types[] = {STRATA_TYPE_F16, STRATA_TYPE_BF16, STRATA_TYPE_Q8_0, STRATA_TYPE_Q4_0,
                                        STRATA_TYPE_Q4_1, STRATA_TYPE_Q5_0, STRATA_TYPE_Q5_1, STRATA_TYPE_Q2_K,
                                        STRATA_TYPE_Q3_K, STRATA_TYPE_Q4_K, STRATA_TYPE_Q5_K, STRATA_TYPE_Q6_K,
                                        STRATA_TYPE_IQ4_NL, STRATA_TYPE_IQ4_XS};
    int failures = 0;
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
        const shape *s = &shapes[c];
        shape_case kc;
        case_open(&kc, s, 0x9e3779b97f4a7c15ull + c, SHORT_PROMPT + DECODED);
        gguf_file *f = kc.f;
        const int n = kc.n, V = kc.V;
        const int32_t *ids = kc.ids;
        double *want = kc.want;
        float *got = kc.got;
        print_message("  %s\n", s->what);
        for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
            size_t qsize = 0, dsize = 0;
            void *qmem = quantized_copy(f, types[k], &qsize), *dmem = NULL;
            gguf_file *qf = NULL, *df = NULL;
            assert_int_equal(gguf_open_memory(qmem, qsize, GGUF_OPEN_DEFAULT, &qf), STRATA_OK);
            assert_int_equal(ref_dequantized_copy(qf, &dmem, &dsize), STRATA_OK);
            assert_int_equal(gguf_open_memory(dmem, dsize, GGUF_OPEN_DEFAULT, &df), STRATA_OK);
            reference_forward(df, s, ids, n, want);
            engine_forward(qf, STRATA_TYPE_F32, ids, n, SHORT_PROMPT, SHORT_BATCH, got);
            int at = -1;
            const int m = decisive_positions(s, n); /* a mixture of experts: before a close routing call */
            if (m < n) print_message("    (first routing close call at position %d)\n", m);
            if (s->experts && m < 4) {
                print_error("%s, %s: a close routing call at position %d already\n", s->what, strata_type_name(types[k]), m);
                failures++;
            }
            const double worst = worst_ratio(got, want, m, V, 0.0, 1.0, &at);
            double se = 0, sw = 0;
            for (size_t i = 0; i < (size_t)m * V; i++) {
                se += (got[i] - want[i]) * (got[i] - want[i]);
                sw += want[i] * want[i];
            }
            const double rms = sqrt(se / sw);
            print_message("    %-7s RMS %.4f, worst %.4f of the row's largest logit (position %d)\n",
                          strata_type_name(types[k]), rms, worst, at);
            if (!(rms <= QUANT_RMS_BOUND && worst <= QUANT_MAX_BOUND)) {
                print_error("%s, %s: beyond the bounds (%.2f RMS, %.2f max)\n", s->what, strata_type_name(types[k]),
                            QUANT_RMS_BOUND, QUANT_MAX_BOUND);
                failures++;
            }
            gguf_close(df);
            gguf_close(qf);
            free(dmem);
            free(qmem);
        }
        case_close(&kc);
    }
    assert_int_equal(failures, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_reference),
        cmocka_unit_test(test_quantized),
        cmocka_unit_test(test_long_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
