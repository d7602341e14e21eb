/* Model loading and the forward pass beyond the reference logits: refusals with messages,
 * sizing (planned == allocated, header-only), KV cache types, batching, context bounds,
 * tied embeddings, RoPE scaling, and the stories260K-Q4_0 reference ids. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref.h"

/* ---- editing a GGUF copy in memory ---------------------------------------------------- */

typedef struct {
    const char *drop_key;      /* a key left out */
    const char *drop_tensor;   /* a tensor left out */
    const char *reshape;       /* a tensor written with ne[1] - 1 rows */
    const char *arch;          /* replaces general.architecture */
    const char *copy_to;       /* tensor whose data is replaced by ... */
    const char *copy_from;     /* ... this tensor's (same type and shape) */
    float rope_freqs;          /* > 0: adds rope_freqs.weight filled with this */
    float linear_scale;        /* > 0: adds llama.rope.scaling.{type=linear,factor} */
} edit;

static void *edited_copy(const gguf_file *src, const edit *e, size_t *size) {
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    for (int64_t i = 0; i < gguf_kv_count(src); i++) {
        const char *k = gguf_kv_key(src, i);
        if (e->drop_key && strcmp(k, e->drop_key) == 0) continue;
        if (e->arch && strcmp(k, "general.architecture") == 0) {
            assert_int_equal(gguf_writer_add_str(w, k, e->arch), STRATA_OK);
            continue;
        }
        if (e->arch && strncmp(k, "llama.", 6) == 0) {
            /* the hyper-parameter keys follow the architecture's name */
            char nk[128];
            snprintf(nk, sizeof nk, "%s.%s", e->arch, k + 6);
            const gguf_value *v = gguf_kv_value(src, i);
            if (v->type == GGUF_TYPE_FLOAT32) assert_int_equal(gguf_writer_add_f32(w, nk, (float)v->f64), STRATA_OK);
            else if (v->type == GGUF_TYPE_UINT32) assert_int_equal(gguf_writer_add_u32(w, nk, (uint32_t)v->u64), STRATA_OK);
            else fail_msg("unexpected key type for %s", k);
            continue;
        }
        assert_int_equal(gguf_writer_copy_kv(w, src, i), STRATA_OK);
    }
    if (e->linear_scale > 0) {
        assert_int_equal(gguf_writer_add_str(w, "llama.rope.scaling.type", "linear"), STRATA_OK);
        assert_int_equal(gguf_writer_add_f32(w, "llama.rope.scaling.factor", e->linear_scale), STRATA_OK);
    }
    static float ff[512];
    if (e->rope_freqs > 0) {
        uint32_t rd = 0;
        assert_true(gguf_get_u32(src, "llama.rope.dimension_count", &rd));
        for (uint32_t i = 0; i < rd / 2; i++) ff[i] = e->rope_freqs;
        int64_t ne[1] = {rd / 2};
        assert_int_equal(gguf_writer_add_tensor(w, "rope_freqs.weight", STRATA_TYPE_F32, 1, ne, ff), STRATA_OK);
    }
    for (int64_t i = 0; i < gguf_tensor_count(src); i++) {
        const gguf_tensor *t = gguf_tensor_at(src, i);
        if (e->drop_tensor && strcmp(t->name, e->drop_tensor) == 0) continue;
        int64_t ne[4];
        memcpy(ne, t->ne, sizeof ne);
        if (e->reshape && strcmp(t->name, e->reshape) == 0) ne[1]--;
        const void *data = t->data;
        if (e->copy_to && strcmp(t->name, e->copy_to) == 0) data = gguf_find_tensor(src, e->copy_from)->data;
        assert_int_equal(gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, ne, data), STRATA_OK);
    }
    void *mem = NULL;
    assert_int_equal(gguf_writer_write_memory(w, &mem, size), STRATA_OK);
    gguf_writer_free(w);
    return mem;
}

static gguf_file *open_model_file(const char *name) {
    char rel[128];
    snprintf(rel, sizeof rel, "models/%s.gguf", name);
    char *path = testdata_path(rel);
    gguf_file *f = NULL;
    assert_int_equal(gguf_open(path, GGUF_OPEN_DEFAULT, &f), STRATA_OK);
    free(path);
    return f;
}

/* model_desc_init on an edited copy of micro-llama-F32: its status and message. */
static strata_status desc_of_edit(const edit *e, char *msg, size_t cap) {
    gguf_file *src = open_model_file("micro-llama-F32");
    size_t size;
    void *mem = edited_copy(src, e, &size);
    gguf_file *f = NULL;
    assert_int_equal(gguf_open_memory(mem, size, GGUF_OPEN_DEFAULT, &f), STRATA_OK);
    model_desc d;
    strata_status st = model_desc_init(f, &d);
    snprintf(msg, cap, "%s", strata_last_error());
    if (st == STRATA_OK) model_desc_free(&d);
    gguf_close(f);
    free(mem);
    gguf_close(src);
    return st;
}

static void test_refusals(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    char msg[1024];
    edit e = {0};
    e.drop_tensor = "blk.2.ffn_up.weight";
    assert_int_equal(desc_of_edit(&e, msg, sizeof msg), STRATA_ERR_FORMAT);
    assert_non_null(strstr(msg, "blk.2.ffn_up.weight"));
    assert_non_null(strstr(msg, "[256, 768]")); /* the expected shape */

    memset(&e, 0, sizeof e);
    e.reshape = "blk.1.attn_k.weight";
    assert_int_equal(desc_of_edit(&e, msg, sizeof msg), STRATA_ERR_FORMAT);
    assert_non_null(strstr(msg, "blk.1.attn_k.weight"));
    assert_non_null(strstr(msg, "[256, 127]"));
    assert_non_null(strstr(msg, "expected [256, 128]"));

    memset(&e, 0, sizeof e);
    e.arch = "gpt2";
    assert_int_equal(desc_of_edit(&e, msg, sizeof msg), STRATA_ERR_UNSUPPORTED);
    assert_non_null(strstr(msg, "gpt2"));

    /* llama with qwen2's required biases missing is fine; qwen2 without them is refused */
    memset(&e, 0, sizeof e);
    e.arch = "qwen2";
    assert_int_equal(desc_of_edit(&e, msg, sizeof msg), STRATA_ERR_FORMAT);
    assert_non_null(strstr(msg, "blk.0.attn_q.bias"));
    memset(&e, 0, sizeof e);
    e.arch = "qwen3";
    assert_int_equal(desc_of_edit(&e, msg, sizeof msg), STRATA_ERR_FORMAT);
    assert_non_null(strstr(msg, "attn_q_norm.weight"));

    memset(&e, 0, sizeof e);
    e.drop_key = "llama.embedding_length";
    assert_int_equal(desc_of_edit(&e, msg, sizeof msg), STRATA_ERR_FORMAT);
    assert_non_null(strstr(msg, "llama.embedding_length"));

    /* q8_0 KV needs head_dim % 32 == 0: stories260K has 8 */
    gguf_file *f = open_model_file("stories260K-f32");
    model_desc d;
    assert_int_equal(model_desc_init(f, &d), STRATA_OK);
    model_params p = model_default_params();
    p.kv_type = STRATA_TYPE_Q8_0;
    assert_int_equal(model_params_resolve(&d.hp, &p), STRATA_ERR_UNSUPPORTED);
    assert_non_null(strstr(strata_last_error(), "q8_0"));
    model_desc_free(&d);
    gguf_close(f);
}

/* Sizes from the header alone equal what the context allocates, to the byte. */
static void test_sizing(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    const char *names[] = {"stories260K-Q4_0", "micro-qwen3-Q4_K_M", "llama-2-tiny-random"};
    for (int i = 0; i < 3; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "models/%s.gguf", names[i]);
        char *path = testdata_path(rel);
        gguf_file *hf = NULL, *f = NULL;
        assert_int_equal(gguf_open(path, GGUF_OPEN_HEADER_ONLY, &hf), STRATA_OK);
        assert_int_equal(gguf_open(path, GGUF_OPEN_DEFAULT, &f), STRATA_OK);
        free(path);
        model_desc hd, d;
        assert_int_equal(model_desc_init(hf, &hd), STRATA_OK);
        assert_int_equal(model_desc_init(f, &d), STRATA_OK);
        strata_type kvs[] = {STRATA_TYPE_F16, STRATA_TYPE_F32, STRATA_TYPE_Q8_0};
        for (int k = 0; k < 3; k++) {
            for (int nb = 1; nb <= 512; nb *= 8) {
                model_params p = model_default_params();
                p.kv_type = kvs[k];
                p.n_batch = nb;
                p.n_threads = 1;
                if (model_params_resolve(&hd.hp, &p) != STRATA_OK) continue; /* q8_0 on head_dim 8 */
                size_t planned = model_segment_bytes(&hd, &p, &backend_cpu_ops, 0, hd.hp.n_layer, true);
                assert_int_equal(planned, model_kv_bytes(&hd.hp, &p, 0, hd.hp.n_layer) +
                                              model_compute_bytes(&hd, &p, &backend_cpu_ops, 0, hd.hp.n_layer, true));
                /* KV per token times tokens held and layers, rounded once */
                size_t rows = 0;
                for (int32_t il = 0; il < hd.hp.n_layer; il++) rows += (size_t)model_kv_rows(&hd.hp, &p, il);
                assert_int_equal(model_kv_bytes(&hd.hp, &p, 0, hd.hp.n_layer),
                                 strata_arena_round(model_kv_bytes_per_token(&hd.hp, p.kv_type) * rows));
                strata_device dev;
                strata_device_init_cpu(&dev);
                model_context *ctx = NULL;
                assert_int_equal(model_context_init(&d, &p, &dev, &ctx), STRATA_OK);
                /* the CPU's arena also holds the matrices it repacks: counted here from the
                 * file, the Q4_0 and Q4_K matrices of the layers and the output (token_embd when
                 * tied) */
                const size_t arena = model_device_arena_bytes(&hd, &p, &backend_cpu_ops, 0, hd.hp.n_layer, true);
                size_t repacked = 0;
                const bool tied = gguf_find_tensor(f, "output.weight") == NULL;
                for (int64_t ti = 0; ti < gguf_tensor_count(f); ti++) {
                    const gguf_tensor *gt = gguf_tensor_at(f, ti);
                    const bool matrix = strncmp(gt->name, "blk.", 4) == 0 || strcmp(gt->name, "output.weight") == 0 ||
                                        (tied && strcmp(gt->name, "token_embd.weight") == 0);
                    if (matrix && (gt->type == STRATA_TYPE_Q4_0 || gt->type == STRATA_TYPE_Q4_K) && gt->ne[1] >= 8)
                        repacked += strata_arena_round((size_t)gt->bytes);
                }
                if (strstr(names[i], "Q4")) assert_true(repacked > 0);
                assert_int_equal(arena, planned + repacked);
                assert_int_equal(dev.arena.size, arena);
                assert_int_equal(dev.arena.used, arena);
                model_context_free(ctx);
            }
        }
        /* layer weights as stored sum, with the non-repeating tensors, to the file's data */
        size_t total = d.tok_embd->bytes + model_output_weight_bytes(&d), all = 0;
        for (int il = 0; il < d.hp.n_layer; il++) total += model_layer_weight_bytes(&d, il);
        for (int64_t t = 0; t < gguf_tensor_count(f); t++) all += gguf_tensor_at(f, t)->bytes;
        assert_int_equal(total, all);
        model_desc_free(&hd);
        model_desc_free(&d);
        gguf_close(hf);
        gguf_close(f);
    }
}

static void decode_all(ref_model *m, const int32_t *ids, int n, float *out) {
    assert_int_equal(model_decode(m->ctx, ids, n, 0), STRATA_OK);
    memcpy(out, model_logits(m->ctx, model_logits_count(m->ctx) - 1), (size_t)m->desc.hp.n_vocab * sizeof(float));
}

/* Batched prompt == token-by-token; F16 and Q8_0 caches stay close to F32. */
static void test_batching_and_kv_types(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    ref_ids prompt = ref_read_ids("reference/micro-llama-Q8_0.prompt_ids.txt");
    assert_non_null(prompt.ids);
    const int V = 512;
    float *ref = malloc(V * sizeof(float)), *got = malloc(V * sizeof(float));
    ref_model m;
    assert_int_equal(ref_model_open(&m, "micro-llama-Q8_0", 0, STRATA_TYPE_F32, 128), STRATA_OK);
    decode_all(&m, prompt.ids, prompt.n, ref);
    /* one token at a time: the same products, the same rounding */
    for (int i = 0; i < prompt.n; i++) assert_int_equal(model_decode(m.ctx, &prompt.ids[i], 1, i), STRATA_OK);
    assert_true(max_abs_diff(model_logits(m.ctx, 0), ref, V) <= 1e-5f);
    /* and in batches of 3 */
    for (int i = 0; i < prompt.n; i += 3) {
        int n = prompt.n - i < 3 ? prompt.n - i : 3;
        assert_int_equal(model_decode(m.ctx, &prompt.ids[i], n, i), STRATA_OK);
    }
    assert_true(max_abs_diff(model_logits(m.ctx, model_logits_count(m.ctx) - 1), ref, V) <= 1e-5f);
    ref_model_close(&m);

    /* KV cache precision, on the F32 model (no activation rounding that could flip and
     * hide or exaggerate it). F16 keeps 11 significant bits (relative error 2^-11 per
     * element); Q8_0 rounds each element to 1/127 of its block's largest, and the scores'
     * queries are Q8_0-rounded too (as in llama.cpp's q8_0 cache): relative errors of ~0.5%
     * per element, compounding over 4 layers of a random model. With logits of |max| ~ 10,
     * we allow 0.2% (F16) and 3% (Q8_0) of that, and the argmax must be kept. */
    assert_int_equal(ref_model_open(&m, "micro-llama-F32", 0, STRATA_TYPE_F32, 128), STRATA_OK);
    decode_all(&m, prompt.ids, prompt.n, ref);
    ref_model_close(&m);
    strata_type kvs[] = {STRATA_TYPE_F16, STRATA_TYPE_Q8_0};
    float bounds[] = {0.02f, 0.3f};
    for (int k = 0; k < 2; k++) {
        assert_int_equal(ref_model_open(&m, "micro-llama-F32", 0, kvs[k], 128), STRATA_OK);
        decode_all(&m, prompt.ids, prompt.n, got);
        float d = max_abs_diff(got, ref, V);
        print_message("  kv %s: max |logit diff| vs F32 cache %.4f\n", strata_type_name(kvs[k]), d);
        assert_true(d <= bounds[k]);
        assert_int_equal(ref_argmax(got, V), ref_argmax(ref, V));
        ref_model_close(&m);
    }
    free(ref);
    free(got);
    free(prompt.ids);
}

static void test_context_bounds(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    ref_model m;
    assert_int_equal(ref_model_open(&m, "stories260K-f32", 0, STRATA_TYPE_F16, 0), STRATA_OK);
    const model_params *p = model_context_params(m.ctx);
    assert_int_equal(p->n_ctx, 128); /* default 4096, capped by the trained 128 */
    int32_t tok = 1;
    assert_int_equal(model_decode(m.ctx, &tok, 1, 127), STRATA_OK);
    assert_int_equal(model_decode(m.ctx, &tok, 1, 128), STRATA_ERR_INVALID); /* past the cache */
    assert_non_null(strstr(strata_last_error(), "context"));
    int32_t toks[65] = {0};
    assert_int_equal(model_decode(m.ctx, toks, 65, 0), STRATA_ERR_INVALID); /* more than n_batch = 64 */
    tok = 512;
    assert_int_equal(model_decode(m.ctx, &tok, 1, 0), STRATA_ERR_INVALID); /* id out of the vocabulary */
    ref_model_close(&m);
}

/* Opens an edited copy of `name` into a ref_model (F32 KV cache). */
static void open_edit(ref_model *m, const char *name, const edit *e) {
    memset(m, 0, sizeof *m);
    gguf_file *src = open_model_file(name);
    size_t size;
    m->mem = edited_copy(src, e, &size);
    gguf_close(src);
    assert_int_equal(gguf_open_memory(m->mem, size, GGUF_OPEN_DEFAULT, &m->f), STRATA_OK);
    assert_int_equal(model_desc_init(m->f, &m->desc), STRATA_OK);
    model_params p = model_default_params();
    p.kv_type = STRATA_TYPE_F32;
    p.n_threads = 2;
    strata_device_init_cpu(&m->dev);
    assert_int_equal(model_context_init(&m->desc, &p, &m->dev, &m->ctx), STRATA_OK);
}

static void test_tied_embeddings_and_rope_scaling(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    ref_ids prompt = ref_read_ids("reference/micro-llama-F32.prompt_ids.txt");
    const int V = 512;
    float *a = malloc(V * sizeof(float)), *b = malloc(V * sizeof(float));

    /* Tied: with token_embd holding output's values, dropping output.weight must not change
     * anything (the output projection then reads token_embd). */
    ref_model m;
    edit e = {0};
    e.copy_to = "token_embd.weight";
    e.copy_from = "output.weight";
    open_edit(&m, "micro-llama-F32", &e);
    assert_true(m.desc.output != m.desc.tok_embd);
    decode_all(&m, prompt.ids, prompt.n, a);
    ref_model_close(&m);
    e.drop_tensor = "output.weight";
    open_edit(&m, "micro-llama-F32", &e);
    assert_true(m.desc.output == m.desc.tok_embd);
    decode_all(&m, prompt.ids, prompt.n, b);
    ref_model_close(&m);
    assert_true(max_abs_diff(a, b, V) == 0.0f);

    /* Llama 3.1-style frequency factors of 2 divide every angle by 2, which is what linear
     * scaling by a factor 2 does: two routes to the same rotation. And they change the
     * logits (the positions matter). */
    memset(&e, 0, sizeof e);
    e.rope_freqs = 2.0f;
    open_edit(&m, "micro-llama-F32", &e);
    assert_non_null(m.desc.rope_freqs);
    decode_all(&m, prompt.ids, prompt.n, a);
    ref_model_close(&m);
    memset(&e, 0, sizeof e);
    e.linear_scale = 2.0f;
    open_edit(&m, "micro-llama-F32", &e);
    assert_float_equal(m.desc.hp.rope_freq_scale, 0.5f, 0);
    decode_all(&m, prompt.ids, prompt.n, b);
    ref_model_close(&m);
    assert_true(max_abs_diff(a, b, V) <= 1e-5f);
    memset(&e, 0, sizeof e);
    open_edit(&m, "micro-llama-F32", &e);
    decode_all(&m, prompt.ids, prompt.n, b);
    ref_model_close(&m);
    assert_true(max_abs_diff(a, b, V) > 1e-3f);
    free(a);
    free(b);
    free(prompt.ids);
}

/* stories260K-Q4_0 natively (Q8_0-rounded activations, as the reference), default F16 KV
 * cache: the 32 reference greedy ids exactly. Its smallest greedy margin is 0.248, far above
 * the F16-cache and rounding-order differences, so no divergence is expected or allowed. */
static void test_q4_0_reference_ids(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    ref_ids prompt = ref_read_ids("reference/stories260K-Q4_0.prompt_ids.txt");
    ref_ids greedy = ref_read_ids("reference/stories260K-Q4_0.greedy_ids.txt");
    assert_int_equal(greedy.n, 32);
    ref_model m;
    assert_int_equal(ref_model_open(&m, "stories260K-Q4_0", 0, STRATA_TYPE_F16, 0), STRATA_OK);
    assert_int_equal(model_decode(m.ctx, prompt.ids, prompt.n, 0), STRATA_OK);
    int32_t tok = ref_argmax(model_logits(m.ctx, prompt.n - 1), 512);
    for (int k = 0; k < 32; k++) {
        assert_int_equal(tok, greedy.ids[k]);
        assert_int_equal(model_decode(m.ctx, &tok, 1, prompt.n + k), STRATA_OK);
        tok = ref_argmax(model_logits(m.ctx, 0), 512);
    }
    ref_model_close(&m);
    free(prompt.ids);
    free(greedy.ids);
}

/* Layer ranges on several devices give the single-device logits exactly (same kernels, the
 * hidden state copied across), each arena exactly its planned share; bad placements are
 * refused before anything is reserved. */
static void test_placement(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    ref_ids prompt = ref_read_ids("reference/micro-qwen2-Q8_0.prompt_ids.txt");
    gguf_file *f = open_model_file("micro-qwen2-Q8_0");
    model_desc d;
    assert_int_equal(model_desc_init(f, &d), STRATA_OK);
    model_params p = model_default_params();
    p.n_threads = 2;
    p.n_logits = 64;
    p.n_batch = 64;
    strata_device one;
    strata_device_init_cpu(&one);
    model_context *ref = NULL;
    assert_int_equal(model_context_init(&d, &p, &one, &ref), STRATA_OK);
    assert_int_equal(model_decode(ref, prompt.ids, prompt.n, 0), STRATA_OK);

    const int32_t splits[][4] = {{0, 1, 3, 4}, {0, 4, 4, 4}, {0, 0, 2, 4}};
    for (int sidx = 0; sidx < 3; sidx++) {
        strata_device devs[3];
        model_placement pl[3];
        for (int k = 0; k < 3; k++) {
            strata_device_init_cpu(&devs[k]);
            snprintf(devs[k].name, sizeof devs[k].name, "cpu%d", k);
            pl[k] = (model_placement){&devs[k], splits[sidx][k], splits[sidx][k + 1], k == 2};
        }
        model_context *ctx = NULL;
        assert_int_equal(model_context_init_placed(&d, &p, pl, 3, &ctx), STRATA_OK);
        const model_params *rp = model_context_params(ctx);
        for (int k = 0; k < 3; k++) {
            size_t planned = model_segment_bytes(&d, rp, &backend_cpu_ops, pl[k].layer_start, pl[k].layer_end, pl[k].has_output);
            assert_int_equal(devs[k].arena.size, planned);
            assert_int_equal(devs[k].arena.used, planned);
        }
        assert_int_equal(model_decode(ctx, prompt.ids, prompt.n, 0), STRATA_OK);
        for (int i = 0; i < prompt.n; i++) assert_true(max_abs_diff(model_logits(ctx, i), model_logits(ref, i), 512) == 0.0f);
        int32_t tok = 5;
        assert_int_equal(model_decode(ctx, &tok, 1, prompt.n), STRATA_OK);
        assert_int_equal(model_decode(ref, &tok, 1, prompt.n), STRATA_OK);
        assert_true(max_abs_diff(model_logits(ctx, 0), model_logits(ref, 0), 512) == 0.0f);
        assert_int_equal(model_decode(ref, prompt.ids, prompt.n, 0), STRATA_OK);
        model_context_free(ctx);
        for (int k = 0; k < 3; k++) assert_null(devs[k].arena.base);
    }
    /* a gap, an output not on the last device, a device used twice */
    strata_device a, b;
    strata_device_init_cpu(&a);
    strata_device_init_cpu(&b);
    model_context *ctx = NULL;
    model_placement gap[2] = {{&a, 0, 1, false}, {&b, 2, 4, true}};
    assert_int_equal(model_context_init_placed(&d, &p, gap, 2, &ctx), STRATA_ERR_INVALID);
    model_placement out_first[2] = {{&a, 0, 1, true}, {&b, 1, 4, false}};
    assert_int_equal(model_context_init_placed(&d, &p, out_first, 2, &ctx), STRATA_ERR_INVALID);
    model_placement twice[2] = {{&a, 0, 1, false}, {&a, 1, 4, true}};
    assert_int_equal(model_context_init_placed(&d, &p, twice, 2, &ctx), STRATA_ERR_INVALID);
    assert_null(ctx);
    assert_null(a.arena.base);

    /* arenas from backend devices: a sim too small for the second share is refused like
     * cudaMalloc, and the first device's arena is given back; weights are copied into the
     * sim's arena, so its arena is the share plus the weights, and the logits do not change */
    backend_device *ha = backend_cpu_device_new("host", 0, 10);
    backend_device *sb = backend_sim_device_new("gpu", 1000, 100);
    assert_non_null(ha);
    assert_non_null(sb);
    strata_device_init_backend(&a, ha);
    strata_device_init_backend(&b, sb);
    assert_true(strata_device_ops(&a)->host_memory);  /* the cpu reads the mapped weights */
    assert_false(strata_device_ops(&b)->host_memory); /* the sim copies them into its arena */
    model_placement two[2] = {{&a, 0, 2, false}, {&b, 2, 4, true}};
    assert_int_equal(model_context_init_placed(&d, &p, two, 2, &ctx), STRATA_ERR_NOMEM);
    assert_non_null(strstr(strata_last_error(), "out of memory"));
    assert_null(a.arena.base);
    assert_true(backend_device_held_bytes(ha) == 0 && backend_device_held_bytes(sb) == 0);
    backend_device_free(sb);
    model_params pr = p;
    assert_int_equal(model_params_resolve(&d.hp, &pr), STRATA_OK);
    size_t need = model_device_arena_bytes(&d, &pr, &backend_sim_ops, 2, 4, true);
    sb = backend_sim_device_new("gpu", need, 100);
    backend_sim_set_strict(sb, true); /* nothing but the sim's ops may touch its arena */
    strata_device_init_backend(&b, sb);
    /* an injected failure of the sim's arena: also clean */
    backend_sim_fail_alloc(sb, 1);
    assert_int_equal(model_context_init_placed(&d, &p, two, 2, &ctx), STRATA_ERR_NOMEM);
    assert_true(backend_device_held_bytes(ha) == 0 && backend_device_held_bytes(sb) == 0);
    assert_int_equal(model_context_init_placed(&d, &p, two, 2, &ctx), STRATA_OK);
    const model_params *rp2 = model_context_params(ctx);
    assert_true(backend_device_held_bytes(sb) == model_device_arena_bytes(&d, rp2, &backend_sim_ops, 2, 4, true));
    assert_true(backend_device_held_bytes(sb) == model_segment_bytes(&d, rp2, &backend_sim_ops, 2, 4, true) + model_weight_arena_bytes(&d, 2, 4, true));
    assert_true(backend_device_held_bytes(ha) == model_segment_bytes(&d, rp2, &backend_cpu_ops, 0, 2, false));
    model_segment_usage u;
    model_context_segment_usage(ctx, 1, &u);
    assert_true(u.weights_bytes == model_weight_arena_bytes(&d, 2, 4, true));
    assert_true(u.weights_bytes + u.kv_bytes + u.compute_bytes == u.arena_bytes);
    assert_int_equal(model_decode(ctx, prompt.ids, prompt.n, 0), STRATA_OK);
    assert_int_equal(model_decode(ref, prompt.ids, prompt.n, 0), STRATA_OK);
    for (int i = 0; i < prompt.n; i++) assert_true(max_abs_diff(model_logits(ctx, i), model_logits(ref, i), 512) == 0.0f);
    model_context_free(ctx);
    assert_true(backend_device_held_bytes(ha) == 0 && backend_device_held_bytes(sb) == 0);
    backend_device_free(ha);
    backend_device_free(sb);
    model_context_free(ref);
    model_desc_free(&d);
    gguf_close(f);
    free(prompt.ids);
}

/* ---- the newer architectures' keys: defaults and refusals by name ---------------------- */

/* arch/NAME.gguf with one key left out and one u32 or f32 key added (NULL: none), its
 * hyper-parameters read into *d (the status returned; d freed by the caller on success). */
static strata_status arch_variant(const char *name, const char *drop, const char *add_u32, uint32_t u,
                                  const char *add_f32, float fv, model_desc *d, void **mem) {
    char rel[128];
    snprintf(rel, sizeof rel, "arch/%s.gguf", name);
    char *path = testdata_path(rel);
    gguf_file *src = NULL;
    assert_int_equal(gguf_open(path, GGUF_OPEN_DEFAULT, &src), STRATA_OK);
    free(path);
    gguf_writer *w = gguf_writer_new();
    for (int64_t i = 0; i < gguf_kv_count(src); i++)
        if (!drop || strcmp(gguf_kv_key(src, i), drop) != 0) assert_int_equal(gguf_writer_copy_kv(w, src, i), STRATA_OK);
    if (add_u32) assert_int_equal(gguf_writer_add_u32(w, add_u32, u), STRATA_OK);
    if (add_f32) assert_int_equal(gguf_writer_add_f32(w, add_f32, fv), STRATA_OK);
    for (int64_t i = 0; i < gguf_tensor_count(src); i++) {
        const gguf_tensor *t = gguf_tensor_at(src, i);
        assert_int_equal(gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data), STRATA_OK);
    }
    size_t size = 0;
    assert_int_equal(gguf_writer_write_memory(w, mem, &size), STRATA_OK);
    gguf_writer_free(w);
    gguf_close(src);
    gguf_file *f = NULL;
    assert_int_equal(gguf_open_memory(*mem, size, GGUF_OPEN_DEFAULT, &f), STRATA_OK);
    strata_status st = model_desc_init(f, d);
    /* the desc keeps tensor pointers into f: the tests only read hyper-parameters */
    if (st == STRATA_OK) model_desc_free(d);
    gguf_close(f);
    return st;
}

static void expect_refusal(const char *name, const char *drop, const char *add_u32, uint32_t u, const char *add_f32,
                           float fv, const char *named) {
    model_desc d;
    void *mem = NULL;
    strata_status st = arch_variant(name, drop, add_u32, u, add_f32, fv, &d, &mem);
    free(mem);
    if (st == STRATA_OK) fail_msg("%s: accepted, expected a refusal naming %s", name, named);
    if (!strstr(strata_last_error(), named)) fail_msg("%s: '%s' does not name %s", name, strata_last_error(), named);
}

static void test_family_keys(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    if (!testdata_has("arch/micro-gemma2-F32.gguf")) {
        if (testdata_in_ci()) fail_msg("arch/ missing under CI=true");
        skip();
    }
    model_desc d;
    void *mem = NULL;
    /* gemma2 without its keys: llama.cpp's defaults (caps 50 and 30, window 4096 on even layers) */
    assert_int_equal(arch_variant("micro-gemma2-F32", "gemma2.attn_logit_softcapping", NULL, 0, NULL, 0, &d, &mem),
                     STRATA_OK);
    assert_true(d.hp.attn_softcap == 50.0f && d.hp.final_softcap == 20.0f);
    free(mem);
    assert_int_equal(arch_variant("micro-gemma2-F32", "gemma2.final_logit_softcapping", NULL, 0, NULL, 0, &d, &mem),
                     STRATA_OK);
    assert_true(d.hp.attn_softcap == 10.0f && d.hp.final_softcap == 30.0f);
    free(mem);
    assert_int_equal(arch_variant("micro-gemma2-F32", "gemma2.attention.sliding_window", NULL, 0, NULL, 0, &d, &mem),
                     STRATA_OK);
    assert_int_equal(d.hp.n_swa, 4096);
    assert_true(model_layer_swa(&d.hp, 0) && !model_layer_swa(&d.hp, 1) && model_layer_swa(&d.hp, 2));
    assert_true(d.hp.embd_scale == 16.0f && d.hp.rope_freq_base == 10000.0f);
    free(mem);
    /* gemma3: the README's pattern (layers 0-4 local, 5 global), local RoPE of its own; a
     * pattern key changes it; no window key is refused by name */
    assert_int_equal(arch_variant("micro-gemma3-F32", NULL, "gemma3.attention.sliding_window_pattern", 2, NULL, 0, &d,
                                  &mem),
                     STRATA_OK);
    assert_true(model_layer_swa(&d.hp, 0) && !model_layer_swa(&d.hp, 1) && model_layer_swa(&d.hp, 4));
    assert_true(d.hp.rope_freq_base == 1e6f && d.hp.rope_freq_scale == 0.125f && d.hp.rope_freq_base_swa == 10000.0f &&
                d.hp.rope_freq_scale_swa == 1.0f && model_swa_rope_differs(&d.hp));
    free(mem);
    expect_refusal("micro-gemma3-F32", "gemma3.attention.sliding_window", NULL, 0, NULL, 0,
                   "gemma3.attention.sliding_window");
    /* experts: shared experts, other gating functions, scaled weights are refused by name */
    expect_refusal("micro-qwen3moe-F32", NULL, "qwen3moe.expert_shared_count", 2, NULL, 0, "expert_shared_count");
    expect_refusal("micro-qwen3moe-F32", NULL, "qwen3moe.expert_gating_func", 2, NULL, 0, "expert_gating_func");
    expect_refusal("micro-mixtral-F32", NULL, NULL, 0, "llama.expert_weights_scale", 2.5f, "expert_weights_scale");
    expect_refusal("micro-qwen3moe-F32", "qwen3moe.expert_used_count", NULL, 0, NULL, 0, "expert_used_count");
    /* phi3: LongRoPE is refused by name */
    expect_refusal("micro-phi3-F32", NULL, NULL, 0, "phi3.rope.scaling.attn_factor", 1.19f, "attn_factor");
    /* no architecture at all: the key is named */
    expect_refusal("micro-mixtral-F32", "general.architecture", NULL, 0, NULL, 0, "general.architecture");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_sizing),
        cmocka_unit_test(test_batching_and_kv_types),
        cmocka_unit_test(test_context_bounds),
        cmocka_unit_test(test_tied_embeddings_and_rope_scaling),
        cmocka_unit_test(test_q4_0_reference_ids),
        cmocka_unit_test(test_placement),
        cmocka_unit_test(test_family_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
