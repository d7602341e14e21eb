/* Writes a random-weight llama-architecture GGUF of a given shape and type, for benchmarks.
 *
 *   make_model OUT.gguf TYPE [--preset tinyllama] [--dim N] [--layers N] [--heads N]
 *              [--kv-heads N] [--ffn N] [--vocab N] [--ctx N] [--seed N]
 *
 * TYPE is a tensor type (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K..Q6_K, IQ4_NL,
 * IQ4_XS) applied to every matrix, or a llama.cpp mix: Q4_K_M / Q5_K_M (Q4_K / Q5_K with Q6_K
 * for attn_v and ffn_down on the layers llama.cpp gives more bits: the first and last eighth
 * and every third layer between). For block types of 6 bits or fewer, output.weight is Q6_K,
 * as llama.cpp writes it. Norms are F32 ones. The default shape is TinyLlama-1.1B (dim 2048,
 * 22 layers, 32 heads, 4 KV heads, ffn 5632, vocab 32000, context 2048).
 *
 * The tokenizer is a synthetic SentencePiece vocabulary (<unk>, <s>, </s>, the 256 byte
 * tokens, then made-up pieces) so that `strata run` works on the file too.
 *
 * Weights: uniform in [-0.05, 0.05]; see fill() for how every tensor gets distinct bytes.
 * The maker holds the whole model in memory while writing (2.2 GB for TinyLlama F16). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "tensor/quant.h"
#include "tensor/type.h"

typedef struct {
    int dim, layers, heads, kv_heads, ffn, vocab, ctx;
    unsigned long long seed;
} shape;

static unsigned long long rng_state;
static float frand(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

/* Pools of quantized random rows by (type, cols). Every tensor gets its own bytes: rows
 * drawn at random from a pool of 1024 (block types: rows are not page-sized, so pages are
 * distinct combinations) or, for F32/F16/BF16 (rows that can be exactly a page), fresh
 * values. No two layers share pages: a host that merges identical pages (KSM) would
 * otherwise serve repeated layers from cache and inflate generation speed. */
enum { POOL = 1024 };
typedef struct {
    strata_type type;
    int64_t cols;
    uint8_t *rows;
} pool;
static pool pools[32];
static int n_pools;

static const pool *get_pool(strata_type type, int64_t cols, size_t rb) {
    for (int i = 0; i < n_pools; i++)
        if (pools[i].type == type && pools[i].cols == cols) return &pools[i];
    float *row = malloc((size_t)cols * sizeof *row);
    uint8_t *rows = malloc(rb * POOL);
    if (!row || !rows || n_pools == 32) {
        fprintf(stderr, "make_model: out of memory\n");
        exit(1);
    }
    for (int r = 0; r < POOL; r++) {
        for (int64_t c = 0; c < cols; c++) row[c] = 0.05f * frand();
        strata_quantize_row(type, row, rows + rb * r, cols);
    }
    free(row);
    pools[n_pools] = (pool){type, cols, rows};
    return &pools[n_pools++];
}

static void *blobs[4096];
static int n_blobs;

static void *fill(strata_type type, int64_t cols, int64_t rows) {
    size_t rb = strata_type_row_bytes(type, cols);
    if (rb == 0) {
        fprintf(stderr, "make_model: rows of %lld are not whole %s blocks\n", (long long)cols, strata_type_name(type));
        exit(1);
    }
    uint8_t *data = malloc(rb * (size_t)rows);
    if (!data || n_blobs == 4096) {
        fprintf(stderr, "make_model: out of memory\n");
        exit(1);
    }
    blobs[n_blobs++] = data;
    if (!strata_type_info_get(type)->quantized) {
        float *row = malloc((size_t)cols * sizeof *row);
        for (int64_t r = 0; r < rows; r++) {
            for (int64_t c = 0; c < cols; c++) row[c] = 0.05f * frand();
            strata_quantize_row(type, row, data + rb * (size_t)r, cols);
        }
        free(row);
        return data;
    }
    const pool *p = get_pool(type, cols, rb);
    for (int64_t r = 0; r < rows; r++) {
        int k = (int)((frand() * 0.5f + 0.5f) * (POOL - 1));
        memcpy(data + rb * (size_t)r, p->rows + rb * (size_t)k, rb);
    }
    return data;
}

static int use_more_bits(int il, int n) { return il < n / 8 || il >= 7 * n / 8 || (il - n / 8) % 3 == 2; }

#define CHECK(x)                                                                        \
    do {                                                                                \
        if ((x) != STRATA_OK) {                                                         \
            fprintf(stderr, "make_model: %s\n", strata_last_error());                  \
            return 1;                                                                   \
        }                                                                               \
    } while (0)

static int add_matrix(gguf_writer *w, const char *name, strata_type type, int64_t cols, int64_t rows) {
    int64_t ne[2] = {cols, rows};
    CHECK(gguf_writer_add_tensor(w, name, type, 2, ne, fill(type, cols, rows)));
    return 0;
}

static int add_norm(gguf_writer *w, const char *name, int64_t n) {
    static float *ones;
    static int64_t n_ones;
    if (n > n_ones) {
        free(ones);
        ones = malloc((size_t)n * sizeof *ones);
        for (int64_t i = 0; i < n; i++) ones[i] = 1.0f;
        n_ones = n;
    }
    int64_t ne[1] = {n};
    CHECK(gguf_writer_add_tensor(w, name, STRATA_TYPE_F32, 1, ne, ones));
    return 0;
}

/* Synthetic SPM vocabulary. */
static int add_vocab(gguf_writer *w, int n_vocab) {
    char **toks = malloc((size_t)n_vocab * sizeof *toks);
    float *scores = malloc((size_t)n_vocab * sizeof *scores);
    int32_t *types = malloc((size_t)n_vocab * sizeof *types);
    for (int i = 0; i < n_vocab; i++) {
        char buf[64];
        if (i == 0) snprintf(buf, sizeof buf, "<unk>");
        else if (i == 1) snprintf(buf, sizeof buf, "<s>");
        else if (i == 2) snprintf(buf, sizeof buf, "</s>");
        else if (i < 3 + 256) snprintf(buf, sizeof buf, "<0x%02X>", i - 3);
        else {
            /* "\xe2\x96\x81" is the SPM word-start mark; pieces spell i in base 26 */
            int k = i - 259, n = 0;
            char word[16];
            do {
                word[n++] = (char)('a' + k % 26);
                k /= 26;
            } while (k && n < 15);
            word[n] = 0;
            snprintf(buf, sizeof buf, "%s%s", (i % 2) ? "\xe2\x96\x81" : "", word);
        }
        toks[i] = strdup(buf);
        scores[i] = i < 259 ? 0.0f : -(float)i;
        types[i] = i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1;
    }
    CHECK(gguf_writer_add_str(w, "tokenizer.ggml.model", "llama"));
    CHECK(gguf_writer_add_str_array(w, "tokenizer.ggml.tokens", (const char *const *)toks, (uint64_t)n_vocab));
    CHECK(gguf_writer_add_array(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, (uint64_t)n_vocab));
    CHECK(gguf_writer_add_array(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, (uint64_t)n_vocab));
    CHECK(gguf_writer_add_u32(w, "tokenizer.ggml.unknown_token_id", 0));
    CHECK(gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 1));
    CHECK(gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 2));
    CHECK(gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", true));
    for (int i = 0; i < n_vocab; i++) free(toks[i]);
    free(toks);
    free(scores);
    free(types);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: make_model OUT.gguf TYPE [--preset tinyllama] [--dim N] [--layers N] [--heads N]\n"
                        "                  [--kv-heads N] [--ffn N] [--vocab N] [--ctx N] [--seed N]\n");
        return 2;
    }
    const char *out = argv[1], *tname = argv[2];
    shape s = {2048, 22, 32, 4, 5632, 32000, 2048, 1};
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--preset") == 0 && i + 1 < argc) {
            if (strcmp(argv[++i], "tinyllama") != 0) {
                fprintf(stderr, "make_model: unknown preset %s\n", argv[i]);
                return 2;
            }
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "make_model: %s needs a value\n", a);
            return 2;
        }
        long v = strtol(argv[++i], NULL, 10);
        if (strcmp(a, "--dim") == 0) s.dim = (int)v;
        else if (strcmp(a, "--layers") == 0) s.layers = (int)v;
        else if (strcmp(a, "--heads") == 0) s.heads = (int)v;
        else if (strcmp(a, "--kv-heads") == 0) s.kv_heads = (int)v;
        else if (strcmp(a, "--ffn") == 0) s.ffn = (int)v;
        else if (strcmp(a, "--vocab") == 0) s.vocab = (int)v;
        else if (strcmp(a, "--ctx") == 0) s.ctx = (int)v;
        else if (strcmp(a, "--seed") == 0) s.seed = (unsigned long long)v;
        else {
            fprintf(stderr, "make_model: unknown option %s\n", a);
            return 2;
        }
    }
    if (s.dim <= 0 || s.heads <= 0 || s.dim % s.heads || s.kv_heads <= 0 || s.heads % s.kv_heads || s.layers <= 0 ||
        s.ffn <= 0 || s.vocab < 300 || s.ctx <= 0) {
        fprintf(stderr, "make_model: invalid shape\n");
        return 2;
    }
    rng_state = 0x9e3779b97f4a7c15ull ^ (s.seed * 0xbf58476d1ce4e5b9ull);
    if (!rng_state) rng_state = 1;

    /* The type of each matrix role. */
    strata_type base, more;
    bool mix = false;
    if (strcmp(tname, "Q4_K_M") == 0 || strcmp(tname, "q4_k_m") == 0) {
        base = STRATA_TYPE_Q4_K;
        more = STRATA_TYPE_Q6_K;
        mix = true;
    } else if (strcmp(tname, "Q5_K_M") == 0 || strcmp(tname, "q5_k_m") == 0) {
        base = STRATA_TYPE_Q5_K;
        more = STRATA_TYPE_Q6_K;
        mix = true;
    } else if (strata_type_from_name(tname, &base) && strata_type_can_quantize(base)) {
        more = base;
    } else {
        fprintf(stderr, "make_model: cannot write type %s\n", tname);
        return 2;
    }
    const strata_type_info *bi = strata_type_info_get(base);
    strata_type out_type = base;
    if (bi->quantized && base != STRATA_TYPE_Q8_0) out_type = STRATA_TYPE_Q6_K;
    const int hd = s.dim / s.heads;

    gguf_writer *w = gguf_writer_new();
    if (!w) return 1;
    CHECK(gguf_writer_add_str(w, "general.architecture", "llama"));
    char name[128];
    snprintf(name, sizeof name, "random-llama-%dx%d-%s", s.layers, s.dim, tname);
    CHECK(gguf_writer_add_str(w, "general.name", name));
    CHECK(gguf_writer_add_u32(w, "llama.context_length", (uint32_t)s.ctx));
    CHECK(gguf_writer_add_u32(w, "llama.embedding_length", (uint32_t)s.dim));
    CHECK(gguf_writer_add_u32(w, "llama.block_count", (uint32_t)s.layers));
    CHECK(gguf_writer_add_u32(w, "llama.feed_forward_length", (uint32_t)s.ffn));
    CHECK(gguf_writer_add_u32(w, "llama.attention.head_count", (uint32_t)s.heads));
    CHECK(gguf_writer_add_u32(w, "llama.attention.head_count_kv", (uint32_t)s.kv_heads));
    CHECK(gguf_writer_add_u32(w, "llama.rope.dimension_count", (uint32_t)hd));
    CHECK(gguf_writer_add_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f));
    CHECK(gguf_writer_add_f32(w, "llama.rope.freq_base", 10000.0f));
    if (add_vocab(w, s.vocab)) return 1;

    if (add_matrix(w, "token_embd.weight", base, s.dim, s.vocab)) return 1;
    if (add_norm(w, "output_norm.weight", s.dim)) return 1;
    if (add_matrix(w, "output.weight", out_type, s.dim, s.vocab)) return 1;
    for (int il = 0; il < s.layers; il++) {
        strata_type vt = mix && use_more_bits(il, s.layers) ? more : base;
        char t[96];
#define NAME(suffix) (snprintf(t, sizeof t, "blk.%d." suffix, il), t)
        if (add_norm(w, NAME("attn_norm.weight"), s.dim)) return 1;
        if (add_matrix(w, NAME("attn_q.weight"), base, s.dim, s.dim)) return 1;
        if (add_matrix(w, NAME("attn_k.weight"), base, s.dim, (int64_t)s.kv_heads * hd)) return 1;
        if (add_matrix(w, NAME("attn_v.weight"), vt, s.dim, (int64_t)s.kv_heads * hd)) return 1;
        if (add_matrix(w, NAME("attn_output.weight"), base, s.dim, s.dim)) return 1;
        if (add_norm(w, NAME("ffn_norm.weight"), s.dim)) return 1;
        if (add_matrix(w, NAME("ffn_gate.weight"), base, s.dim, s.ffn)) return 1;
        if (add_matrix(w, NAME("ffn_up.weight"), base, s.dim, s.ffn)) return 1;
        if (add_matrix(w, NAME("ffn_down.weight"), vt, s.ffn, s.dim)) return 1;
#undef NAME
    }
    CHECK(gguf_writer_write_file(w, out));
    gguf_writer_free(w);
    for (int i = 0; i < n_blobs; i++) free(blobs[i]);
    for (int i = 0; i < n_pools; i++) free(pools[i].rows);
    fprintf(stderr, "make_model: wrote %s (%s)\n", out, name);
    return 0;
}
