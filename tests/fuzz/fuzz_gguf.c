/* libFuzzer target for the GGUF reader: any input must be either rejected with a message or
 * accepted as a file whose every accessor stays in bounds. For accepted inputs it also checks
 * what the header promises (lookups find each entry, data lies inside the input) and that
 * the writer can copy the file into one the reader accepts again. Crashes, sanitizer reports
 * and abort() on a broken promise are the findings. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"

static volatile uint64_t sink; /* keeps the walk from being optimized away */

static bool is_int_type(gguf_value_type t) {
    switch (t) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16:
    case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_UINT64: case GGUF_TYPE_INT64:
    case GGUF_TYPE_BOOL:
        return true;
    default:
        return false;
    }
}

static void walk_value(const gguf_file *f, const char *key, const gguf_value *v) {
    uint64_t u;
    int64_t i;
    float x;
    bool b;
    gguf_str s;
    /* Every getter on every key: each must either convert or refuse, never misbehave. */
    sink += gguf_get_u64(f, key, &u) ? u : 1;
    sink += gguf_get_i64(f, key, &i) ? (uint64_t)i : 2;
    sink += gguf_get_f32(f, key, &x) ? (uint64_t)(x == x) : 3;
    sink += gguf_get_bool(f, key, &b) ? b : 4;
    sink += gguf_get_str(f, key, &s) ? s.len + (s.len ? (uint8_t)s.ptr[s.len - 1] : 0) : 5;
    sink += strlen(gguf_value_type_name(v->type));
    if (v->type != GGUF_TYPE_ARRAY) return;
    if (gguf_get_array(f, key) != v) abort();
    for (uint64_t j = 0; j < v->arr.count; j++) {
        /* Every accessor on every element, whatever the element type: each is defined for
         * any array (a string of a numeric array is "", a number of a string array 0). */
        gguf_str e = gguf_array_str(v, j);
        sink += e.len + (e.len ? (uint8_t)e.ptr[0] + (uint8_t)e.ptr[e.len - 1] : 0);
        sink += (uint64_t)gguf_array_i64(v, j);
        double d = gguf_array_f64(v, j);
        sink += d == d;
        if (v->arr.elem_type == GGUF_TYPE_STRING) {
            if (e.len != v->arr.strs[j].len) abort();
        } else {
            if (e.len != 0) abort();
            if (is_int_type(v->arr.elem_type)) sink += v->arr.raw[j];
        }
    }
}

static void walk(const gguf_file *f) {
    sink += gguf_version(f) + gguf_alignment(f) + gguf_data_offset(f) + gguf_file_size(f);
    for (int64_t i = 0; i < gguf_kv_count(f); i++) {
        const char *key = gguf_kv_key(f, i);
        if (gguf_find_key(f, key) != i) abort(); /* names are unique, lookups exact */
        walk_value(f, key, gguf_kv_value(f, i));
    }
    for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        if (gguf_find_tensor(f, t->name) != t) abort();
        if (t->offset % gguf_alignment(f) != 0) abort();
        sink += (uint64_t)gguf_tensor_elements(t) + t->bytes + strlen(strata_type_name(t->type));
        if (t->data && t->bytes) {
            const uint8_t *d = t->data;
            sink += d[0] + d[t->bytes - 1]; /* ASan reports these if outside the input */
        }
    }
    sink += gguf_find_key(f, "general.architecture") >= 0;
    sink += gguf_find_tensor(f, "token_embd.weight") != NULL;
}

/* Copies an accepted file through the writer; the result must be accepted too. */
static void rewrite(const gguf_file *f) {
    gguf_writer *w = gguf_writer_new();
    if (!w) return;
    bool ok = true;
    for (int64_t i = 0; ok && i < gguf_kv_count(f); i++) ok = gguf_writer_copy_kv(w, f, i) == STRATA_OK;
    for (int64_t i = 0; ok && i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        ok = gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data) == STRATA_OK;
    }
    void *buf = NULL;
    size_t size = 0;
    if (!ok || gguf_writer_write_memory(w, &buf, &size) != STRATA_OK) abort();
    gguf_file *g = NULL;
    if (gguf_open_memory(buf, size, GGUF_OPEN_DEFAULT, &g) != STRATA_OK) abort();
    if (gguf_kv_count(g) != gguf_kv_count(f) || gguf_tensor_count(g) != gguf_tensor_count(f)) abort();
    for (int64_t i = 0; i < gguf_tensor_count(g); i++) {
        const gguf_tensor *a = gguf_tensor_at(f, i), *b = gguf_tensor_at(g, i);
        if (a->bytes != b->bytes || memcmp(a->data, b->data, a->bytes) != 0) abort();
    }
    gguf_close(g);
    free(buf);
    gguf_writer_free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gguf_file *f = NULL;
    strata_fail(STRATA_OK, "%s", ""); /* so that a silent rejection is seen as one */
    if (gguf_open_memory(data, size, GGUF_OPEN_DEFAULT, &f) == STRATA_OK) {
        walk(f);
        rewrite(f);
        gguf_close(f);
    } else if (strata_last_error()[0] == '\0') {
        abort(); /* a rejection must say why */
    }
    if (gguf_open_memory(data, size, GGUF_OPEN_HEADER_ONLY, &f) == STRATA_OK) {
        walk(f);
        gguf_close(f);
    }
    return 0;
}
