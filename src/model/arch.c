/* The architecture table, hyper-parameters from GGUF metadata, and tensor binding.
 *
 * An architecture is a row of arch_table; what differs between llama, qwen2 and qwen3 is
 * which optional tensors exist and the RoPE pair order. Tensor names and shapes are one
 * table (layer_slots) shared by all of them. Key names and defaults follow the GGUF
 * conventions ("{arch}.embedding_length", ...). */
#include "model/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "tensor/quant.h"

static const model_arch arch_table[] = {
    /* name    rope              qkv_bias          qk_norm           rope_freqs        base */
    {"llama", MODEL_ROPE_NORMAL, MODEL_T_OPTIONAL, MODEL_T_ABSENT, MODEL_T_OPTIONAL, 10000.0f},
    {"qwen2", MODEL_ROPE_NEOX, MODEL_T_REQUIRED, MODEL_T_ABSENT, MODEL_T_ABSENT, 10000.0f},
    {"qwen3", MODEL_ROPE_NEOX, MODEL_T_OPTIONAL, MODEL_T_REQUIRED, MODEL_T_ABSENT, 10000.0f},
};

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
                           "model: unsupported architecture '%s' (supported: llama, qwen2, qwen3)", arch);

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
    return STRATA_OK;
}

/* ---- tensor binding --------------------------------------------------------------- */

typedef enum { D_NONE, D_EMBD, D_QDIM, D_KVDIM, D_FF, D_HEAD, D_VOCAB, D_ROPE_HALF } dim_kind;
typedef enum { NEED_ALWAYS, NEED_QKV_BIAS, NEED_QK_NORM } need_kind;

typedef struct {
    const char *suffix;
    size_t offset; /* in model_layer */
    dim_kind d0, d1; /* ne[0], ne[1]; D_NONE = 1-D */
    need_kind need;
} slot;

static const slot layer_slots[] = {
    {"attn_norm.weight", offsetof(model_layer, attn_norm), D_EMBD, D_NONE, NEED_ALWAYS},
    {"attn_q.weight", offsetof(model_layer, wq), D_EMBD, D_QDIM, NEED_ALWAYS},
    {"attn_k.weight", offsetof(model_layer, wk), D_EMBD, D_KVDIM, NEED_ALWAYS},
    {"attn_v.weight", offsetof(model_layer, wv), D_EMBD, D_KVDIM, NEED_ALWAYS},
    {"attn_output.weight", offsetof(model_layer, wo), D_QDIM, D_EMBD, NEED_ALWAYS},
    {"attn_q.bias", offsetof(model_layer, bq), D_QDIM, D_NONE, NEED_QKV_BIAS},
    {"attn_k.bias", offsetof(model_layer, bk), D_KVDIM, D_NONE, NEED_QKV_BIAS},
    {"attn_v.bias", offsetof(model_layer, bv), D_KVDIM, D_NONE, NEED_QKV_BIAS},
    {"attn_q_norm.weight", offsetof(model_layer, q_norm), D_HEAD, D_NONE, NEED_QK_NORM},
    {"attn_k_norm.weight", offsetof(model_layer, k_norm), D_HEAD, D_NONE, NEED_QK_NORM},
    {"ffn_norm.weight", offsetof(model_layer, ffn_norm), D_EMBD, D_NONE, NEED_ALWAYS},
    {"ffn_gate.weight", offsetof(model_layer, w_gate), D_EMBD, D_FF, NEED_ALWAYS},
    {"ffn_up.weight", offsetof(model_layer, w_up), D_EMBD, D_FF, NEED_ALWAYS},
    {"ffn_down.weight", offsetof(model_layer, w_down), D_FF, D_EMBD, NEED_ALWAYS},
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
    }
    return -1;
}

static model_tensor_need resolve_need(const model_arch *a, need_kind n) {
    switch (n) {
    case NEED_ALWAYS: return MODEL_T_REQUIRED;
    case NEED_QKV_BIAS: return a->qkv_bias;
    case NEED_QK_NORM: return a->qk_norm;
    }
    return MODEL_T_ABSENT;
}

/* Finds and checks one tensor. A 2-D tensor is a weight matrix (rows of ne[0] elements
 * that cpu_matmul multiplies, or the embedding table that is dequantized row by row); a
 * 1-D tensor is a norm weight or bias, read as F32. */
static strata_status bind(const gguf_file *f, const model_hparams *hp, const char *name, dim_kind d0,
                          dim_kind d1, model_tensor_need need, bool is_embedding, const gguf_tensor **out) {
    *out = NULL;
    int64_t e0 = dim_value(hp, d0), e1 = dim_value(hp, d1);
    const gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t) {
        if (need != MODEL_T_REQUIRED) return STRATA_OK;
        if (d1 == D_NONE)
            return strata_fail(STRATA_ERR_FORMAT, "model: missing tensor %s (expected shape [%lld])", name,
                               (long long)e0);
        return strata_fail(STRATA_ERR_FORMAT, "model: missing tensor %s (expected shape [%lld, %lld])", name,
                           (long long)e0, (long long)e1);
    }
    if (need == MODEL_T_ABSENT) return STRATA_OK; /* not used by this architecture */
    bool ok = t->ne[0] == e0 && t->ne[1] == e1 && t->ne[2] == 1 && t->ne[3] == 1;
    if (!ok) {
        if (d1 == D_NONE)
            return strata_fail(STRATA_ERR_FORMAT, "model: tensor %s has shape [%lld, %lld], expected [%lld]", name,
                               (long long)t->ne[0], (long long)t->ne[1], (long long)e0);
        return strata_fail(STRATA_ERR_FORMAT, "model: tensor %s has shape [%lld, %lld], expected [%lld, %lld]",
                           name, (long long)t->ne[0], (long long)t->ne[1], (long long)e0, (long long)e1);
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

    st = bind(f, hp, "token_embd.weight", D_EMBD, D_VOCAB, MODEL_T_REQUIRED, true, &out->tok_embd);
    if (st == STRATA_OK) st = bind(f, hp, "output_norm.weight", D_EMBD, D_NONE, MODEL_T_REQUIRED, false, &out->output_norm);
    if (st == STRATA_OK) st = bind(f, hp, "output.weight", D_EMBD, D_VOCAB, MODEL_T_OPTIONAL, false, &out->output);
    if (st == STRATA_OK)
        st = bind(f, hp, "rope_freqs.weight", D_ROPE_HALF, D_NONE, hp->arch->rope_freqs, false, &out->rope_freqs);
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
            st = bind(f, hp, name, sl->d0, sl->d1, resolve_need(hp->arch, sl->need), false, dst);
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
