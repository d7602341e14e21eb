/* The architecture table, hyper-parameters from GGUF metadata, and tensor binding.
 *
 * An architecture is a row of arch_table; what differs between llama, qwen2 and qwen3 is
 * which optional tensors exist and the RoPE pair order. Tensor names and shapes are one
 * table (layer_slots) shared by all of them. Key names and defaults follow the GGUF
 * conventions ("{arch}.embedding_length", ...). */
#include "model/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "tensor/quant.h"

#define REQ MODEL_T_REQUIRED
#define OPT MODEL_T_OPTIONAL
#define NO MODEL_T_ABSENT
static const model_arch arch_table[] = {
    {.name = "llama", .rope = MODEL_ROPE_NORMAL, .qkv_bias = OPT, .qk_norm = NO, .rope_freqs = OPT,
     .default_rope_base = 10000.0f, .act = MODEL_FFN_SILU, .post_norms = NO, .experts = OPT},
    {.name = "qwen2", .rope = MODEL_ROPE_NEOX, .qkv_bias = REQ, .qk_norm = NO, .rope_freqs = NO,
     .default_rope_base = 10000.0f, .act = MODEL_FFN_SILU, .post_norms = NO, .experts = NO},
    {.name = "qwen3", .rope = MODEL_ROPE_NEOX, .qkv_bias = OPT, .qk_norm = REQ, .rope_freqs = NO,
     .default_rope_base = 10000.0f, .act = MODEL_FFN_SILU, .post_norms = NO, .experts = NO},
    {.name = "qwen3moe", .rope = MODEL_ROPE_NEOX, .qkv_bias = OPT, .qk_norm = REQ, .rope_freqs = NO,
     .default_rope_base = 10000.0f, .act = MODEL_FFN_SILU, .post_norms = NO, .experts = REQ},
    {.name = "gemma2", .rope = MODEL_ROPE_NEOX, .qkv_bias = NO, .qk_norm = NO, .rope_freqs = NO,
     .default_rope_base = 10000.0f, .act = MODEL_FFN_GELU_TANH, .post_norms = REQ, .embd_scale = true,
     .experts = NO, .swa_pattern = 2, .softcap = true},
    {.name = "gemma3", .rope = MODEL_ROPE_NEOX, .qkv_bias = NO, .qk_norm = REQ, .rope_freqs = NO,
     .default_rope_base = 10000.0f, .act = MODEL_FFN_GELU_TANH, .post_norms = REQ, .embd_scale = true,
     .experts = NO, .swa_pattern = 6, .swa_rope = true},
    {.name = "phi3", .rope = MODEL_ROPE_NEOX, .qkv_bias = NO, .qk_norm = NO, .rope_freqs = NO,
     .default_rope_base = 10000.0f, .act = MODEL_FFN_SILU, .post_norms = NO, .fused = true, .experts = NO},
};
#undef REQ
#undef OPT
#undef NO

#define SUPPORTED_ARCHS "llama (with or without experts), qwen2, qwen3, qwen3moe, gemma2, gemma3, phi3"

bool model_layer_swa(const model_hparams *hp, int32_t il) {
    return hp->n_swa > 0 && hp->swa_pattern > 0 && il % hp->swa_pattern < hp->swa_pattern - 1;
}

bool model_swa_rope_differs(const model_hparams *hp) {
    return hp->n_swa > 0 &&
           (hp->rope_freq_base_swa != hp->rope_freq_base || hp->rope_freq_scale_swa != hp->rope_freq_scale);
}

const model_arch *model_arch_find(const char *name) {
    for (size_t i = 0; i < sizeof arch_table / sizeof arch_table[0]; i++)
        if (strcmp(arch_table[i].name, name) == 0) return &arch_table[i];
    return NULL;
}

/* ---- hyper-parameters ------------------------------------------------------------- */

static bool get_i32(const gguf_file *f, const char *arch, const char *suffix, int32_t *out) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    uint32_t v;
    if (!gguf_get_u32(f, key, &v) || v > INT32_MAX) return false;
    *out = (int32_t)v;
    return true;
}

static bool get_f32(const gguf_file *f, const char *arch, const char *suffix, float *out) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return gguf_get_f32(f, key, out);
}

/* A key this engine does not implement, refused by name when present. */
static strata_status refuse_key(const gguf_file *f, const char *arch, const char *suffix, const char *why) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (gguf_find_key(f, key) >= 0)
        return strata_fail(STRATA_ERR_UNSUPPORTED, "model: key %s is not supported (%s)", key, why);
    return STRATA_OK;
}

/* What the newer families add, with llama.cpp's defaults where a key is absent:
 *  - gemma2: attention and final logits soft-capped (attn_logit_softcapping, default 50;
 *    final_logit_softcapping, default 30), sliding window (attention.sliding_window,
 *    default 4096) on even layers; scores scaled by 1/sqrt(head_dim), except the 27B (46
 *    layers), which uses 1/sqrt(n_embd / n_head);
 *  - gemma3: a window (attention.sliding_window, required) on layers il % N < N - 1 with N =
 *    attention.sliding_window_pattern (default 6); local layers use RoPE base 10000 without
 *    scaling, global ones rope.freq_base and the file's scaling; the same 27B (62 layers)
 *    score scale rule;
 *  - both: embeddings multiplied by sqrt(n_embd); norm weights are stored as the multiplier
 *    itself (the converter has already added gemma's 1);
 *  - phi3: attention.sliding_window is read but not applied, as llama.cpp does today (its
 *    window of 2047 is disabled there); LongRoPE factors are refused;
 *  - experts: expert_count, expert_used_count (required when there are experts),
 *    expert_feed_forward_length (default feed_forward_length); the top-k weights are
 *    renormalised (Mixtral and Qwen3-MoE both do; expert_weights_norm may say otherwise);
 *    shared experts and gating functions other than softmax are refused. */
static strata_status read_family_hparams(const gguf_file *f, const char *arch, model_hparams *hp) {
    const model_arch *a = hp->arch;
    hp->attn_scale = 1.0f / sqrtf((float)hp->head_dim);
    hp->rope_freq_base_swa = hp->rope_freq_base;
    hp->rope_freq_scale_swa = hp->rope_freq_scale;
    if (a->embd_scale) hp->embd_scale = sqrtf((float)hp->n_embd);
    if (a->softcap) {
        hp->attn_softcap = 50.0f;
        hp->final_softcap = 30.0f;
        get_f32(f, arch, "attn_logit_softcapping", &hp->attn_softcap);
        get_f32(f, arch, "final_logit_softcapping", &hp->final_softcap);
        if (hp->attn_softcap < 0 || hp->final_softcap < 0)
            return strata_fail(STRATA_ERR_FORMAT, "model: negative soft-capping value");
    }
    if (a->swa_pattern > 0) {
        hp->swa_pattern = a->swa_pattern;
        char key[128];
        snprintf(key, sizeof key, "%s.attention.sliding_window_pattern", arch);
        if (gguf_find_key(f, key) >= 0) {
            uint32_t v;
            if (!gguf_get_u32(f, key, &v) || v < 1 || v > 1024)
                return strata_fail(STRATA_ERR_UNSUPPORTED,
                                   "model: key %s is not supported in this form (a number of layers is)", key);
            hp->swa_pattern = (int32_t)v;
        }
        bool has_window = get_i32(f, arch, "attention.sliding_window", &hp->n_swa);
        if (!has_window) {
            if (strcmp(a->name, "gemma2") != 0)
                return strata_fail(STRATA_ERR_FORMAT, "model: missing key %s.attention.sliding_window", arch);
            hp->n_swa = 4096;
        }
        if (hp->n_swa <= 0) return strata_fail(STRATA_ERR_FORMAT, "model: invalid %s.attention.sliding_window", arch);
        const int32_t big = strcmp(a->name, "gemma2") == 0 ? 46 : 62; /* the 27B models */
        if (hp->n_layer == big) hp->attn_scale = 1.0f / sqrtf((float)(hp->n_embd / hp->n_head));
    }
    if (a->swa_rope) {
        hp->rope_freq_base_swa = 10000.0f;
        hp->rope_freq_scale_swa = 1.0f;
    }
    if (a->fused) {
        strata_status st = refuse_key(f, arch, "rope.scaling.attn_factor", "LongRoPE");
        if (st != STRATA_OK) return st;
        if (gguf_find_tensor(f, "rope_factors_long.weight") || gguf_find_tensor(f, "rope_factors_short.weight"))
            return strata_fail(STRATA_ERR_UNSUPPORTED,
                               "model: tensor rope_factors_long.weight (LongRoPE, 128k-context phi3) is not supported");
    }
    if (a->experts != MODEL_T_ABSENT) {
        get_i32(f, arch, "expert_count", &hp->n_expert);
        if (hp->n_expert < 0) return strata_fail(STRATA_ERR_FORMAT, "model: invalid %s.expert_count", arch);
        if (a->experts == MODEL_T_REQUIRED && hp->n_expert <= 1)
            return strata_fail(STRATA_ERR_FORMAT, "model: missing or invalid key %s.expert_count", arch);
    }
    if (hp->n_expert > 0) {
        if (!get_i32(f, arch, "expert_used_count", &hp->n_expert_used) || hp->n_expert_used < 1 ||
            hp->n_expert_used > hp->n_expert)
            return strata_fail(STRATA_ERR_FORMAT, "model: missing or invalid key %s.expert_used_count", arch);
        hp->n_ff_exp = hp->n_ff;
        get_i32(f, arch, "expert_feed_forward_length", &hp->n_ff_exp);
        if (hp->n_ff_exp <= 0)
            return strata_fail(STRATA_ERR_FORMAT, "model: invalid %s.expert_feed_forward_length", arch);
        int32_t shared = 0;
        if (get_i32(f, arch, "expert_shared_count", &shared) && shared > 0)
            return strata_fail(STRATA_ERR_UNSUPPORTED, "model: key %s.expert_shared_count = %d is not supported",
                               arch, shared);
        uint32_t gating = 0;
        char key[128];
        snprintf(key, sizeof key, "%s.expert_gating_func", arch);
        if (gguf_get_u32(f, key, &gating) && gating != 1 /* softmax */)
            return strata_fail(STRATA_ERR_UNSUPPORTED, "model: key %s = %u is not supported (softmax gating only)",
                               key, gating);
        hp->expert_norm = true;
        snprintf(key, sizeof key, "%s.expert_weights_norm", arch);
        bool norm;
        if (gguf_get_bool(f, key, &norm)) hp->expert_norm = norm;
        strata_status st = refuse_key(f, arch, "expert_weights_scale", "scaled expert weights");
        if (st != STRATA_OK) return st;
        if (gguf_find_tensor(f, "blk.0.ffn_gate.0.weight"))
            return strata_fail(STRATA_ERR_UNSUPPORTED,
                               "model: tensor blk.0.ffn_gate.0.weight: experts stored one tensor each (an older "
                               "Mixtral conversion) are not supported; convert again to get ffn_gate_exps");
    }
    return STRATA_OK;
}

static strata_status read_hparams(const gguf_file *f, model_hparams *hp) {
    memset(hp, 0, sizeof *hp);
    gguf_str s;
    if (!gguf_get_str(f, "general.architecture", &s))
        return strata_fail(STRATA_ERR_FORMAT, "model: no general.architecture key");
    char arch[64];
    if (s.len >= sizeof arch) return strata_fail(STRATA_ERR_UNSUPPORTED, "model: architecture name too long");
    memcpy(arch, s.ptr, s.len);
    arch[s.len] = 0;
    hp->arch = model_arch_find(arch);
    if (!hp->arch)
        return strata_fail(STRATA_ERR_UNSUPPORTED,
                           "model: unsupported architecture '%s' (supported: " SUPPORTED_ARCHS ")", arch);

    static const char *const required[] = {"embedding_length", "block_count", "feed_forward_length",
                                           "attention.head_count"};
    int32_t *req_out[] = {&hp->n_embd, &hp->n_layer, &hp->n_ff, &hp->n_head};
    for (int i = 0; i < 4; i++) {
        if (!get_i32(f, arch, required[i], req_out[i]) || *req_out[i] <= 0)
            return strata_fail(STRATA_ERR_FORMAT, "model: missing or invalid key %s.%s", arch, required[i]);
    }
    hp->n_head_kv = hp->n_head;
    get_i32(f, arch, "attention.head_count_kv", &hp->n_head_kv);
    hp->n_ctx_train = 2048;
    get_i32(f, arch, "context_length", &hp->n_ctx_train);
    if (hp->n_head_kv <= 0 || hp->n_head % hp->n_head_kv != 0)
        return strata_fail(STRATA_ERR_FORMAT, "model: head_count %d is not a multiple of head_count_kv %d",
                           hp->n_head, hp->n_head_kv);
    hp->head_dim = hp->n_embd / hp->n_head;
    get_i32(f, arch, "attention.key_length", &hp->head_dim);
    int32_t vlen = hp->head_dim;
    get_i32(f, arch, "attention.value_length", &vlen);
    if (hp->head_dim <= 0 || hp->head_dim % 2 != 0)
        return strata_fail(STRATA_ERR_FORMAT, "model: invalid head dimension %d", hp->head_dim);
    if (vlen != hp->head_dim)
        return strata_fail(STRATA_ERR_UNSUPPORTED, "model: value_length %d differs from key_length %d", vlen,
                           hp->head_dim);
    hp->rope_dim = hp->head_dim;
    get_i32(f, arch, "rope.dimension_count", &hp->rope_dim);
    if (hp->rope_dim <= 0 || hp->rope_dim > hp->head_dim || hp->rope_dim % 2 != 0)
        return strata_fail(STRATA_ERR_FORMAT, "model: invalid rope.dimension_count %d", hp->rope_dim);
    if (hp->n_ctx_train <= 0) return strata_fail(STRATA_ERR_FORMAT, "model: invalid context_length");

    hp->rope_freq_base = hp->arch->default_rope_base;
    get_f32(f, arch, "rope.freq_base", &hp->rope_freq_base);
    hp->rms_eps = 1e-5f;
    get_f32(f, arch, "attention.layer_norm_rms_epsilon", &hp->rms_eps);
    hp->rope_freq_scale = 1.0f;
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    gguf_str st;
    bool has_type = gguf_get_str(f, key, &st);
    float factor = 0;
    if (has_type && !gguf_str_eq(st, "none") && !gguf_str_eq(st, "linear") && !gguf_str_eq(st, "llama3"))
        return strata_fail(STRATA_ERR_UNSUPPORTED, "model: rope scaling type '%.*s' is not supported",
                           (int)st.len, st.ptr);
    if ((!has_type || gguf_str_eq(st, "linear")) &&
        (get_f32(f, arch, "rope.scaling.factor", &factor) || get_f32(f, arch, "rope.scale_linear", &factor)) &&
        factor > 0)
        hp->rope_freq_scale = 1.0f / factor;
    if (!(hp->rope_freq_base > 0) || !(hp->rms_eps > 0))
        return strata_fail(STRATA_ERR_FORMAT, "model: invalid rope.freq_base or rms epsilon");
    return read_family_hparams(f, arch, hp);
}

/* ---- tensor binding --------------------------------------------------------------- */

typedef enum {
    D_NONE, D_EMBD, D_QDIM, D_KVDIM, D_FF, D_HEAD, D_VOCAB, D_ROPE_HALF, D_QKV, D_FF2, D_FF_EXP, D_EXPERTS
} dim_kind;
typedef enum {
    NEED_ALWAYS, NEED_QKV_BIAS, NEED_QK_NORM, NEED_SPLIT_QKV, NEED_FUSED, NEED_DENSE_GATE, NEED_DENSE_UP,
    NEED_DENSE, NEED_POST_NORM, NEED_EXPERTS
} need_kind;

typedef struct {
    const char *suffix;
    size_t offset; /* in model_layer */
    dim_kind d0, d1, d2; /* ne[0], ne[1], ne[2]; D_NONE = absent dimension */
    need_kind need;
} slot;

/* Every tensor a layer may have. A name may appear twice with different needs (ffn_up is
 * [gate; up] in phi3): at most one of them applies to an architecture. */
static const slot layer_slots[] = {
    {"attn_norm.weight", offsetof(model_layer, attn_norm), D_EMBD, D_NONE, D_NONE, NEED_ALWAYS},
    {"attn_q.weight", offsetof(model_layer, wq), D_EMBD, D_QDIM, D_NONE, NEED_SPLIT_QKV},
    {"attn_k.weight", offsetof(model_layer, wk), D_EMBD, D_KVDIM, D_NONE, NEED_SPLIT_QKV},
    {"attn_v.weight", offsetof(model_layer, wv), D_EMBD, D_KVDIM, D_NONE, NEED_SPLIT_QKV},
    {"attn_qkv.weight", offsetof(model_layer, wqkv), D_EMBD, D_QKV, D_NONE, NEED_FUSED},
    {"attn_output.weight", offsetof(model_layer, wo), D_QDIM, D_EMBD, D_NONE, NEED_ALWAYS},
    {"attn_q.bias", offsetof(model_layer, bq), D_QDIM, D_NONE, D_NONE, NEED_QKV_BIAS},
    {"attn_k.bias", offsetof(model_layer, bk), D_KVDIM, D_NONE, D_NONE, NEED_QKV_BIAS},
    {"attn_v.bias", offsetof(model_layer, bv), D_KVDIM, D_NONE, D_NONE, NEED_QKV_BIAS},
    {"attn_q_norm.weight", offsetof(model_layer, q_norm), D_HEAD, D_NONE, D_NONE, NEED_QK_NORM},
    {"attn_k_norm.weight", offsetof(model_layer, k_norm), D_HEAD, D_NONE, D_NONE, NEED_QK_NORM},
    {"post_attention_norm.weight", offsetof(model_layer, attn_post_norm), D_EMBD, D_NONE, D_NONE, NEED_POST_NORM},
    {"ffn_norm.weight", offsetof(model_layer, ffn_norm), D_EMBD, D_NONE, D_NONE, NEED_ALWAYS},
    {"ffn_gate.weight", offsetof(model_layer, w_gate), D_EMBD, D_FF, D_NONE, NEED_DENSE_GATE},
    {"ffn_up.weight", offsetof(model_layer, w_up), D_EMBD, D_FF, D_NONE, NEED_DENSE_UP},
    {"ffn_up.weight", offsetof(model_layer, w_gate_up), D_EMBD, D_FF2, D_NONE, NEED_FUSED},
    {"ffn_down.weight", offsetof(model_layer, w_down), D_FF, D_EMBD, D_NONE, NEED_DENSE},
    {"ffn_gate_inp.weight", offsetof(model_layer, ffn_gate_inp), D_EMBD, D_EXPERTS, D_NONE, NEED_EXPERTS},
    {"ffn_gate_exps.weight", offsetof(model_layer, gate_exps), D_EMBD, D_FF_EXP, D_EXPERTS, NEED_EXPERTS},
    {"ffn_up_exps.weight", offsetof(model_layer, up_exps), D_EMBD, D_FF_EXP, D_EXPERTS, NEED_EXPERTS},
    {"ffn_down_exps.weight", offsetof(model_layer, down_exps), D_FF_EXP, D_EMBD, D_EXPERTS, NEED_EXPERTS},
    {"post_ffw_norm.weight", offsetof(model_layer, ffn_post_norm), D_EMBD, D_NONE, D_NONE, NEED_POST_NORM},
};

static int64_t dim_value(const model_hparams *hp, dim_kind d) {
    switch (d) {
    case D_NONE: return 1;
    case D_EMBD: return hp->n_embd;
    case D_QDIM: return (int64_t)hp->n_head * hp->head_dim;
    case D_KVDIM: return (int64_t)hp->n_head_kv * hp->head_dim;
    case D_FF: return hp->n_ff;
    case D_HEAD: return hp->head_dim;
    case D_VOCAB: return hp->n_vocab;
    case D_ROPE_HALF: return hp->rope_dim / 2;
    case D_QKV: return (int64_t)(hp->n_head + 2 * hp->n_head_kv) * hp->head_dim;
    case D_FF2: return 2 * (int64_t)hp->n_ff;
    case D_FF_EXP: return hp->n_ff_exp;
    case D_EXPERTS: return hp->n_expert;
    }
    return -1;
}

static model_tensor_need resolve_need(const model_hparams *hp, need_kind n) {
    const model_arch *a = hp->arch;
    const bool moe = hp->n_expert > 0;
    switch (n) {
    case NEED_ALWAYS: return MODEL_T_REQUIRED;
    case NEED_QKV_BIAS: return a->qkv_bias;
    case NEED_QK_NORM: return a->qk_norm;
    case NEED_SPLIT_QKV: return a->fused ? MODEL_T_ABSENT : MODEL_T_REQUIRED;
    case NEED_FUSED: return a->fused ? MODEL_T_REQUIRED : MODEL_T_ABSENT;
    case NEED_DENSE_GATE: return a->fused || moe ? MODEL_T_ABSENT : MODEL_T_REQUIRED;
    case NEED_DENSE_UP: return a->fused || moe ? MODEL_T_ABSENT : MODEL_T_REQUIRED;
    case NEED_DENSE: return moe ? MODEL_T_ABSENT : MODEL_T_REQUIRED;
    case NEED_POST_NORM: return a->post_norms;
    case NEED_EXPERTS: return moe ? MODEL_T_REQUIRED : MODEL_T_ABSENT;
    }
    return MODEL_T_ABSENT;
}

static int shape_text(char *buf, size_t n, const int64_t *e, int dims) {
    if (dims == 1) return snprintf(buf, n, "[%lld]", (long long)e[0]);
    if (dims == 2) return snprintf(buf, n, "[%lld, %lld]", (long long)e[0], (long long)e[1]);
    return snprintf(buf, n, "[%lld, %lld, %lld]", (long long)e[0], (long long)e[1], (long long)e[2]);
}

/* Finds and checks one tensor. A 2-D tensor is a weight matrix (rows of ne[0] elements
 * that cpu_matmul multiplies, or the embedding table that is dequantized row by row); a
 * 3-D one a stack of expert matrices; a 1-D tensor is a norm weight or bias, read as F32. */
static strata_status bind(const gguf_file *f, const model_hparams *hp, const char *name, dim_kind d0,
                          dim_kind d1, dim_kind d2, model_tensor_need need, bool is_embedding,
                          const gguf_tensor **out) {
    *out = NULL;
    const int64_t e[3] = {dim_value(hp, d0), dim_value(hp, d1), dim_value(hp, d2)};
    const int dims = d2 != D_NONE ? 3 : d1 != D_NONE ? 2 : 1;
    char want[96];
    shape_text(want, sizeof want, e, dims);
    const gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t) {
        if (need != MODEL_T_REQUIRED) return STRATA_OK;
        return strata_fail(STRATA_ERR_FORMAT, "model: missing tensor %s (expected shape %s)", name, want);
    }
    if (need == MODEL_T_ABSENT) return STRATA_OK; /* not used by this architecture */
    bool ok = t->ne[0] == e[0] && t->ne[1] == e[1] && t->ne[2] == e[2] && t->ne[3] == 1;
    if (!ok) {
        const int64_t got[3] = {t->ne[0], t->ne[1], t->ne[2]};
        char have[96];
        shape_text(have, sizeof have, got, t->ne[2] != 1 ? 3 : 2);
        return strata_fail(STRATA_ERR_FORMAT, "model: tensor %s has shape %s, expected %s", name, have, want);
    }
    if (d1 == D_NONE) {
        if (t->type != STRATA_TYPE_F32)
            return strata_fail(STRATA_ERR_UNSUPPORTED, "model: tensor %s is %s; 1-D tensors must be F32", name,
                               strata_type_name(t->type));
    } else if (is_embedding) {
        if (!strata_type_can_dequantize(t->type))
            return strata_fail(STRATA_ERR_UNSUPPORTED, "model: tensor %s has type %s, which cannot be dequantized",
                               name, strata_type_name(t->type));
    }
    if (d1 != D_NONE && !is_embedding && !backend_cpu_ops.matmul_supports(t->type))
        return strata_fail(STRATA_ERR_UNSUPPORTED, "model: tensor %s has type %s, which the CPU kernels do not support",
                           name, strata_type_name(t->type));
    *out = t;
    return STRATA_OK;
}

strata_status model_desc_init(const gguf_file *f, model_desc *out) {
    memset(out, 0, sizeof *out);
    out->file = f;
    model_hparams *hp = &out->hp;
    strata_status st = read_hparams(f, hp);
    if (st != STRATA_OK) return st;

    const gguf_tensor *te = gguf_find_tensor(f, "token_embd.weight");
    if (!te)
        return strata_fail(STRATA_ERR_FORMAT, "model: missing tensor token_embd.weight (expected shape [%d, n_vocab])",
                           hp->n_embd);
    if (te->ne[1] <= 0 || te->ne[1] > INT32_MAX)
        return strata_fail(STRATA_ERR_FORMAT, "model: token_embd.weight has an invalid vocabulary size");
    hp->n_vocab = (int32_t)te->ne[1];

    st = bind(f, hp, "token_embd.weight", D_EMBD, D_VOCAB, D_NONE, MODEL_T_REQUIRED, true, &out->tok_embd);
    if (st == STRATA_OK) st = bind(f, hp, "output_norm.weight", D_EMBD, D_NONE, D_NONE, MODEL_T_REQUIRED, false, &out->output_norm);
    if (st == STRATA_OK) st = bind(f, hp, "output.weight", D_EMBD, D_VOCAB, D_NONE, MODEL_T_OPTIONAL, false, &out->output);
    if (st == STRATA_OK)
        st = bind(f, hp, "rope_freqs.weight", D_ROPE_HALF, D_NONE, D_NONE, hp->arch->rope_freqs, false, &out->rope_freqs);
    if (st != STRATA_OK) return st;
    if (!out->output) {
        /* Tied embeddings: the output projection is the embedding table. */
        if (!backend_cpu_ops.matmul_supports(out->tok_embd->type))
            return strata_fail(STRATA_ERR_UNSUPPORTED,
                               "model: tied output uses token_embd.weight of type %s, which the CPU kernels do not support",
                               strata_type_name(out->tok_embd->type));
        out->output = out->tok_embd;
    }

    out->layers = calloc((size_t)hp->n_layer, sizeof *out->layers);
    if (!out->layers) return strata_fail(STRATA_ERR_NOMEM, "model: out of memory");
    for (int32_t il = 0; il < hp->n_layer; il++) {
        for (size_t s = 0; s < sizeof layer_slots / sizeof layer_slots[0]; s++) {
            const slot *sl = &layer_slots[s];
            char name[96];
            snprintf(name, sizeof name, "blk.%d.%s", (int)il, sl->suffix);
            const gguf_tensor **dst = (const gguf_tensor **)((char *)&out->layers[il] + sl->offset);
            model_tensor_need need = resolve_need(hp, sl->need);
            st = bind(f, hp, name, sl->d0, sl->d1, sl->d2, need, false, dst);
            if (st != STRATA_OK) {
                model_desc_free(out);
                return st;
            }
        }
    }
    return STRATA_OK;
}

void model_desc_free(model_desc *d) {
    free(d->layers);
    d->layers = NULL;
}
