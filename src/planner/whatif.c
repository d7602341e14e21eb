/* What-if files: GGUF headers of models whose weights one does not have, for planning a
 * 70B model on hardware one does not own (issue 5, item 6).
 *
 * Why not gguf_writer alone: it streams every tensor's data (zeros when none is given),
 * 40 GB for a 70B model. Here the writer encodes the key/values (a file with no tensors
 * ends right after them), and this file appends the tensor infos -- name, dims, type,
 * offset, each offset the previous one plus its size padded to the alignment, as GGUF
 * lays data out -- then pads the header. The result is either left as is (open it with
 * GGUF_OPEN_HEADER_ONLY) or extended with ftruncate to the size the header describes: a
 * sparse file that opens and maps like the real one while taking a few KiB of disk. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "planner/plan.h"

#define WHATIF_ALIGN 32

typedef struct {
    uint8_t *buf;
    size_t len, cap;
    bool ok;
} growbuf;

static void put(growbuf *g, const void *p, size_t n) {
    if (!g->ok) return;
    if (g->len + n > g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 65536;
        while (cap < g->len + n) cap *= 2;
        uint8_t *nb = realloc(g->buf, cap);
        if (!nb) {
            g->ok = false;
            return;
        }
        g->buf = nb;
        g->cap = cap;
    }
    memcpy(g->buf + g->len, p, n);
    g->len += n;
}

static uint64_t pad_to(uint64_t x) { return (WHATIF_ALIGN - x % WHATIF_ALIGN) % WHATIF_ALIGN; }

/* llama.cpp's Q4_K_M recipe gives attn_v and ffn_down more bits (Q6_K) on the first and
 * last eighth of the layers and on every third layer in between. */
static bool more_bits(int32_t i, int32_t n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

typedef struct {
    growbuf *infos;
    uint64_t offset;
    int64_t count;
} tensor_list;

static void add_tensor3(tensor_list *tl, const char *name, strata_type type, int64_t ne0, int64_t ne1, int64_t ne2) {
    uint64_t len = strlen(name);
    uint32_t n_dims = ne2 > 1 ? 3 : ne1 > 1 ? 2 : 1, t = (uint32_t)type;
    put(tl->infos, &len, 8);
    put(tl->infos, name, len);
    put(tl->infos, &n_dims, 4);
    put(tl->infos, &ne0, 8);
    if (n_dims >= 2) put(tl->infos, &ne1, 8);
    if (n_dims == 3) put(tl->infos, &ne2, 8);
    put(tl->infos, &t, 4);
    put(tl->infos, &tl->offset, 8);
    uint64_t bytes = (uint64_t)strata_type_row_bytes(type, ne0) * (uint64_t)ne1 * (uint64_t)ne2;
    tl->offset += bytes + pad_to(bytes);
    tl->count++;
}

static void add_tensor(tensor_list *tl, const char *name, strata_type type, int64_t ne0, int64_t ne1) {
    add_tensor3(tl, name, type, ne0, ne1, 1);
}

/* The key/values in kvbuf (a writer's output with no tensors) and the tensor infos, as a
 * header-only or sparse file at path. */
static strata_status write_whatif(const char *path, void *kvbuf, size_t kvlen, tensor_list *tl, growbuf *infos,
                                  bool sparse, uint64_t *file_bytes) {
    if (!infos->ok) {
        free(kvbuf);
        free(infos->buf);
        return strata_fail(STRATA_ERR_NOMEM, "what-if: out of memory");
    }
    memcpy((uint8_t *)kvbuf + 8, &tl->count, 8);
    uint64_t header = (uint64_t)kvlen + infos->len;
    uint64_t data_offset = header + pad_to(header);
    uint64_t total = data_offset + tl->offset;
    FILE *fp = fopen(path, "wb");
    bool ok = fp != NULL;
    static const uint8_t zeros[WHATIF_ALIGN];
    if (ok) ok = fwrite(kvbuf, 1, kvlen, fp) == kvlen && fwrite(infos->buf, 1, infos->len, fp) == infos->len &&
                 fwrite(zeros, 1, (size_t)pad_to(header), fp) == (size_t)pad_to(header);
    int err = errno;
    if (fp && fclose(fp) != 0 && ok) {
        ok = false;
        err = errno;
    }
    if (ok && sparse && truncate(path, (off_t)total) != 0) {
        ok = false;
        err = errno;
    }
    free(kvbuf);
    free(infos->buf);
    if (!ok) return strata_fail(STRATA_ERR_IO, "what-if: cannot write '%s': %s", path, strerror(err));
    if (file_bytes) *file_bytes = total;
    return STRATA_OK;
}

strata_status plan_whatif_write_qwen3moe(const char *path, const plan_moe_shape *s, bool sparse, uint64_t *file_bytes) {
    if (s->n_layer < 1 || s->n_embd < 1 || s->n_head < 1 || s->n_head_kv < 1 || s->head_dim < 2 ||
        s->n_expert < 2 || s->n_expert_used < 1 || s->n_expert_used > s->n_expert || s->n_ff_exp < 1 ||
        s->n_vocab < 1 || s->n_head % s->n_head_kv != 0)
        return strata_fail(STRATA_ERR_INVALID, "what-if: inconsistent qwen3moe shape");
    const int64_t qd = (int64_t)s->n_head * s->head_dim, kvd = (int64_t)s->n_head_kv * s->head_dim;
    gguf_writer *w = gguf_writer_new();
    if (!w) return strata_fail(STRATA_ERR_NOMEM, "what-if: out of memory");
    strata_status st = STRATA_OK;
#define ADD(call) \
    if (st == STRATA_OK) st = (call)
    ADD(gguf_writer_add_str(w, "general.architecture", "qwen3moe"));
    ADD(gguf_writer_add_str(w, "general.name", "what-if qwen3moe"));
    ADD(gguf_writer_add_u32(w, "qwen3moe.block_count", (uint32_t)s->n_layer));
    ADD(gguf_writer_add_u32(w, "qwen3moe.context_length", 40960));
    ADD(gguf_writer_add_u32(w, "qwen3moe.embedding_length", (uint32_t)s->n_embd));
    ADD(gguf_writer_add_u32(w, "qwen3moe.feed_forward_length", (uint32_t)(s->n_ff_exp * 8)));
    ADD(gguf_writer_add_u32(w, "qwen3moe.attention.head_count", (uint32_t)s->n_head));
    ADD(gguf_writer_add_u32(w, "qwen3moe.attention.head_count_kv", (uint32_t)s->n_head_kv));
    ADD(gguf_writer_add_u32(w, "qwen3moe.attention.key_length", (uint32_t)s->head_dim));
    ADD(gguf_writer_add_u32(w, "qwen3moe.attention.value_length", (uint32_t)s->head_dim));
    ADD(gguf_writer_add_f32(w, "qwen3moe.rope.freq_base", 1000000.0f));
    ADD(gguf_writer_add_f32(w, "qwen3moe.attention.layer_norm_rms_epsilon", 1e-6f));
    ADD(gguf_writer_add_u32(w, "qwen3moe.expert_count", (uint32_t)s->n_expert));
    ADD(gguf_writer_add_u32(w, "qwen3moe.expert_used_count", (uint32_t)s->n_expert_used));
    ADD(gguf_writer_add_u32(w, "qwen3moe.expert_feed_forward_length", (uint32_t)s->n_ff_exp));
#undef ADD
    void *kvbuf = NULL;
    size_t kvlen = 0;
    if (st == STRATA_OK) st = gguf_writer_write_memory(w, &kvbuf, &kvlen);
    gguf_writer_free(w);
    if (st != STRATA_OK) return st;
    growbuf infos = {.ok = true};
    tensor_list tl = {.infos = &infos};
    const strata_type t = s->type;
    add_tensor(&tl, "token_embd.weight", t, s->n_embd, s->n_vocab);
    for (int32_t i = 0; i < s->n_layer; i++) {
        char name[96];
#define T(suffix, type, a, b, c)                               \
    snprintf(name, sizeof name, "blk.%d." suffix, (int)i);     \
    add_tensor3(&tl, name, type, a, b, c)
        T("attn_norm.weight", STRATA_TYPE_F32, s->n_embd, 1, 1);
        T("attn_q.weight", t, s->n_embd, qd, 1);
        T("attn_k.weight", t, s->n_embd, kvd, 1);
        T("attn_v.weight", t, s->n_embd, kvd, 1);
        T("attn_output.weight", t, qd, s->n_embd, 1);
        T("attn_q_norm.weight", STRATA_TYPE_F32, s->head_dim, 1, 1);
        T("attn_k_norm.weight", STRATA_TYPE_F32, s->head_dim, 1, 1);
        T("ffn_norm.weight", STRATA_TYPE_F32, s->n_embd, 1, 1);
        T("ffn_gate_inp.weight", STRATA_TYPE_F32, s->n_embd, s->n_expert, 1);
        T("ffn_gate_exps.weight", t, s->n_embd, s->n_ff_exp, s->n_expert);
        T("ffn_up_exps.weight", t, s->n_embd, s->n_ff_exp, s->n_expert);
        T("ffn_down_exps.weight", t, s->n_ff_exp, s->n_embd, s->n_expert);
#undef T
    }
    add_tensor(&tl, "output_norm.weight", STRATA_TYPE_F32, s->n_embd, 1);
    add_tensor(&tl, "output.weight", t, s->n_embd, s->n_vocab);
    return write_whatif(path, kvbuf, kvlen, &tl, &infos, sparse, file_bytes);
}

strata_status plan_whatif_write_llama(const char *path, const plan_llama_shape *s, bool sparse,
                                      uint64_t *file_bytes) {
    if (s->n_layer < 1 || s->n_embd < 1 || s->n_head < 1 || s->n_head_kv < 1 || s->n_ff < 1 || s->n_vocab < 1 ||
        s->n_embd % s->n_head != 0 || s->n_head % s->n_head_kv != 0)
        return strata_fail(STRATA_ERR_INVALID, "what-if: inconsistent llama shape");
    int32_t head_dim = s->n_embd / s->n_head, kv_dim = head_dim * s->n_head_kv;
    strata_type base = s->q4_k_m ? STRATA_TYPE_Q4_K : s->type;
    strata_type hi = s->q4_k_m ? STRATA_TYPE_Q6_K : s->type;
    if (!strata_type_row_ok(base, s->n_embd) || !strata_type_row_ok(hi, s->n_ff) || !strata_type_row_ok(hi, s->n_embd))
        return strata_fail(STRATA_ERR_INVALID, "what-if: rows of %d/%d elements are not whole %s blocks", s->n_embd,
                           s->n_ff, strata_type_name(base));

    gguf_writer *w = gguf_writer_new();
    if (!w) return strata_fail(STRATA_ERR_NOMEM, "what-if: out of memory");
    strata_status st = STRATA_OK;
#define ADD(call) \
    if (st == STRATA_OK) st = (call)
    ADD(gguf_writer_add_str(w, "general.architecture", "llama"));
    ADD(gguf_writer_add_str(w, "general.name", "what-if llama"));
    ADD(gguf_writer_add_u32(w, "general.file_type", s->q4_k_m ? 15u : 0u));
    ADD(gguf_writer_add_u32(w, "llama.block_count", (uint32_t)s->n_layer));
    ADD(gguf_writer_add_u32(w, "llama.context_length", (uint32_t)(s->n_ctx_train > 0 ? s->n_ctx_train : 4096)));
    ADD(gguf_writer_add_u32(w, "llama.embedding_length", (uint32_t)s->n_embd));
    ADD(gguf_writer_add_u32(w, "llama.feed_forward_length", (uint32_t)s->n_ff));
    ADD(gguf_writer_add_u32(w, "llama.attention.head_count", (uint32_t)s->n_head));
    ADD(gguf_writer_add_u32(w, "llama.attention.head_count_kv", (uint32_t)s->n_head_kv));
    ADD(gguf_writer_add_u32(w, "llama.rope.dimension_count", (uint32_t)head_dim));
    ADD(gguf_writer_add_f32(w, "llama.rope.freq_base", 500000.0f));
    ADD(gguf_writer_add_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f));
    ADD(gguf_writer_add_u32(w, "llama.vocab_size", (uint32_t)s->n_vocab));
#undef ADD
    void *kvbuf = NULL;
    size_t kvlen = 0;
    if (st == STRATA_OK) st = gguf_writer_write_memory(w, &kvbuf, &kvlen);
    gguf_writer_free(w);
    if (st != STRATA_OK) return st;

    growbuf infos = {.ok = true};
    tensor_list tl = {.infos = &infos};
    add_tensor(&tl, "token_embd.weight", base, s->n_embd, s->n_vocab);
    for (int32_t i = 0; i < s->n_layer; i++) {
        char name[96];
        bool mb = s->q4_k_m && more_bits(i, s->n_layer);
#define T(suffix, type, a, b)                                  \
    snprintf(name, sizeof name, "blk.%d." suffix, (int)i);     \
    add_tensor(&tl, name, type, a, b)
        T("attn_norm.weight", STRATA_TYPE_F32, s->n_embd, 1);
        T("attn_q.weight", base, s->n_embd, s->n_embd);
        T("attn_k.weight", base, s->n_embd, kv_dim);
        T("attn_v.weight", mb ? hi : base, s->n_embd, kv_dim);
        T("attn_output.weight", base, s->n_embd, s->n_embd);
        T("ffn_norm.weight", STRATA_TYPE_F32, s->n_embd, 1);
        T("ffn_gate.weight", base, s->n_embd, s->n_ff);
        T("ffn_up.weight", base, s->n_embd, s->n_ff);
        T("ffn_down.weight", mb ? hi : base, s->n_ff, s->n_embd);
#undef T
    }
    add_tensor(&tl, "output_norm.weight", STRATA_TYPE_F32, s->n_embd, 1);
    add_tensor(&tl, "output.weight", hi, s->n_embd, s->n_vocab);
    if (!infos.ok) {
        free(kvbuf);
        free(infos.buf);
        return strata_fail(STRATA_ERR_NOMEM, "what-if: out of memory");
    }
    /* The writer wrote 0 tensors; the count is the 8 bytes after magic and version. */
    memcpy((uint8_t *)kvbuf + 8, &tl.count, 8);
    uint64_t header = (uint64_t)kvlen + infos.len;
    uint64_t data_offset = header + pad_to(header);
    uint64_t total = data_offset + tl.offset;

    FILE *fp = fopen(path, "wb");
    bool ok = fp != NULL;
    static const uint8_t zeros[WHATIF_ALIGN];
    if (ok) ok = fwrite(kvbuf, 1, kvlen, fp) == kvlen && fwrite(infos.buf, 1, infos.len, fp) == infos.len &&
                 fwrite(zeros, 1, (size_t)pad_to(header), fp) == (size_t)pad_to(header);
    int err = errno;
    if (fp && fclose(fp) != 0 && ok) {
        ok = false;
        err = errno;
    }
    if (ok && sparse && truncate(path, (off_t)total) != 0) {
        ok = false;
        err = errno;
    }
    free(kvbuf);
    free(infos.buf);
    if (!ok) return strata_fail(STRATA_ERR_IO, "what-if: cannot write '%s': %s", path, strerror(err));
    if (file_bytes) *file_bytes = total;
    return STRATA_OK;
}
