/* Helpers shared by the model tests (header-only: every tests/model/test_*.c is its own
 * executable). They read the reference files of ../shared/testdata/reference (written by an
 * independent implementation, see its README) and run our forward pass. */
#ifndef STRATA_TESTS_MODEL_REF_H
#define STRATA_TESTS_MODEL_REF_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "model/model.h"
#include "tensor/quant.h"
#include "testdata.h"

typedef struct {
    int32_t *ids;
    int n;
} ref_ids;

/* Space-separated ids; NULL data if the file is absent. */
static inline ref_ids ref_read_ids(const char *rel) {
    ref_ids r = {0};
    char *path = testdata_path(rel);
    char *txt = path ? testdata_read_file(path, NULL) : NULL;
    free(path);
    if (!txt) return r;
    r.ids = malloc(4096 * sizeof(int32_t));
    char *p = txt, *end;
    for (long v = strtol(p, &end, 10); end != p && r.n < 4096; v = strtol(p, &end, 10)) {
        r.ids[r.n++] = (int32_t)v;
        p = end;
    }
    free(txt);
    return r;
}

typedef struct {
    uint32_t n_tokens, n_vocab;
    float *data; /* owned by blob */
    void *blob;
} ref_logits;

/* "uint32 n_tokens, uint32 n_vocab, float32[n_tokens][n_vocab]" little-endian. */
static inline ref_logits ref_read_logits(const char *rel) {
    ref_logits r = {0};
    char *path = testdata_path(rel);
    size_t size = 0;
    uint8_t *b = path ? testdata_read_file(path, &size) : NULL;
    free(path);
    if (!b || size < 8) {
        free(b);
        return r;
    }
    memcpy(&r.n_tokens, b, 4);
    memcpy(&r.n_vocab, b + 4, 4);
    if (size != 8 + (size_t)r.n_tokens * r.n_vocab * 4) {
        free(b);
        memset(&r, 0, sizeof r);
        return r;
    }
    r.blob = b;
    r.data = (float *)(b + 8);
    return r;
}

static inline const float *ref_row(const ref_logits *l, uint32_t i) { return l->data + (size_t)i * l->n_vocab; }

static inline int ref_argmax(const float *v, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i; /* lowest id on ties, like the reference */
    return best;
}

/* top-1 minus top-2 of a logits row: how decisive the reference's greedy choice was. */
static inline float ref_margin(const float *v, int n) {
    float a = -INFINITY, b = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (v[i] > a) {
            b = a;
            a = v[i];
        } else if (v[i] > b) {
            b = v[i];
        }
    }
    return a - b;
}

static inline float max_abs_diff(const float *a, const float *b, int n) {
    float m = 0;
    for (int i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (!(d <= m)) m = d; /* NaN propagates as a failure */
    }
    return m;
}

/* A loaded model: either the file mapped, or an in-memory copy with every tensor
 * dequantized to F32 (the dqf32 references were made from exactly such a copy). */
typedef struct {
    gguf_file *f;
    void *mem; /* owned bytes of the F32 copy */
    model_desc desc;
    strata_device dev;
    model_context *ctx;
} ref_model;

static inline strata_status ref_dequantized_copy(const gguf_file *src, void **out, size_t *out_size) {
    gguf_writer *w = gguf_writer_new();
    if (!w) return STRATA_ERR_NOMEM;
    strata_status st = STRATA_OK;
    for (int64_t i = 0; i < gguf_kv_count(src) && st == STRATA_OK; i++) {
        if (strcmp(gguf_kv_key(src, i), "general.file_type") == 0) continue;
        st = gguf_writer_copy_kv(w, src, i);
    }
    int64_t nt = gguf_tensor_count(src);
    float **bufs = calloc((size_t)nt, sizeof *bufs);
    for (int64_t i = 0; i < nt && st == STRATA_OK; i++) {
        const gguf_tensor *t = gguf_tensor_at(src, i);
        int64_t ne = gguf_tensor_elements(t), rows = ne / t->ne[0];
        bufs[i] = malloc((size_t)ne * sizeof(float));
        size_t rb = strata_type_row_bytes(t->type, t->ne[0]);
        for (int64_t r = 0; r < rows; r++)
            strata_dequantize_row(t->type, (const uint8_t *)t->data + r * rb, bufs[i] + r * t->ne[0], t->ne[0]);
        st = gguf_writer_add_tensor(w, t->name, STRATA_TYPE_F32, t->n_dims, t->ne, bufs[i]);
    }
    if (st == STRATA_OK) st = gguf_writer_write_memory(w, out, out_size);
    for (int64_t i = 0; i < nt; i++) free(bufs[i]);
    free(bufs);
    gguf_writer_free(w);
    return st;
}

static inline void ref_model_close(ref_model *m) {
    model_context_free(m->ctx);
    model_desc_free(&m->desc);
    gguf_close(m->f);
    free(m->mem);
    memset(m, 0, sizeof *m);
}

/* Opens DIR/<name>.gguf (dir: "models", or "arch" for the newer architectures' files;
 * dequantized to F32 when dq), with n_logits = n_batch = 64 so a whole prompt's logits come
 * back from one call. */
static inline strata_status ref_model_open_in(ref_model *m, const char *dir, const char *name, int dq,
                                              strata_type kv_type, int n_ctx) {
    memset(m, 0, sizeof *m);
    char rel[256];
    snprintf(rel, sizeof rel, "%s/%s.gguf", dir, name);
    char *path = testdata_path(rel);
    strata_status st = gguf_open(path, GGUF_OPEN_DEFAULT, &m->f);
    free(path);
    if (st != STRATA_OK) return st;
    if (dq) {
        size_t size = 0;
        st = ref_dequantized_copy(m->f, &m->mem, &size);
        gguf_close(m->f);
        m->f = NULL;
        if (st == STRATA_OK) st = gguf_open_memory(m->mem, size, GGUF_OPEN_DEFAULT, &m->f);
        if (st != STRATA_OK) {
            free(m->mem);
            m->mem = NULL;
            return st;
        }
    }
    st = model_desc_init(m->f, &m->desc);
    if (st != STRATA_OK) {
        ref_model_close(m);
        return st;
    }
    model_params p = model_default_params();
    p.n_ctx = n_ctx;
    p.n_batch = 64;
    p.n_logits = 64;
    p.kv_type = kv_type;
    p.n_threads = 2;
    strata_device_init_cpu(&m->dev);
    st = model_context_init(&m->desc, &p, &m->dev, &m->ctx);
    if (st != STRATA_OK) ref_model_close(m);
    return st;
}

static inline strata_status ref_model_open(ref_model *m, const char *name, int dq, strata_type kv_type, int n_ctx) {
    return ref_model_open_in(m, "models", name, dq, kv_type, n_ctx);
}

#endif
