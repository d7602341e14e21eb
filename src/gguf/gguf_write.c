/* GGUF writer: version-3 files laid out as the format prescribes (header, key/values,
 * tensor infos, padding to the alignment, tensor data each padded to the alignment).
 * Key/values are serialized as they are added; tensors are recorded and their offsets
 * assigned in order when the file is written, so the data itself is streamed, never
 * gathered into one buffer. */
#include "gguf/gguf.h"
#include "gguf/gguf_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char *name;
    strata_type type;
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    uint64_t bytes;
    const void *data;
} pending_tensor;

struct gguf_writer {
    uint8_t *kv;       /* serialized key/values */
    size_t kv_len, kv_cap;
    uint64_t n_kv;
    pending_tensor *tensors;
    int64_t n_tensors, tensors_cap;
    uint64_t alignment;
    bool failed; /* an allocation failed: writing is refused */
};

gguf_writer *gguf_writer_new(void) {
    gguf_writer *w = calloc(1, sizeof *w);
    if (w) w->alignment = GGUF_DEFAULT_ALIGNMENT;
    return w;
}

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    for (int64_t i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    free(w->tensors);
    free(w->kv);
    free(w);
}

static bool kv_put(gguf_writer *w, const void *p, size_t n) {
    /* An empty array may come with p == NULL, and memcpy(dst, NULL, 0) is undefined. */
    if (n == 0) return true;
    if (w->kv_len + n > w->kv_cap) {
        size_t cap = w->kv_cap ? w->kv_cap : 1024;
        while (cap < w->kv_len + n) cap *= 2;
        uint8_t *grown = realloc(w->kv, cap);
        if (!grown) {
            w->failed = true;
            return false;
        }
        w->kv = grown;
        w->kv_cap = cap;
    }
    memcpy(w->kv + w->kv_len, p, n);
    w->kv_len += n;
    return true;
}

static bool kv_put_u32(gguf_writer *w, uint32_t v) { return kv_put(w, &v, 4); }
static bool kv_put_u64(gguf_writer *w, uint64_t v) { return kv_put(w, &v, 8); }
static bool kv_put_str(gguf_writer *w, const char *s, size_t len) {
    return kv_put_u64(w, len) && kv_put(w, s, len);
}

/* Writes key + type, the start of every entry; the value follows. */
static bool begin_kv(gguf_writer *w, const char *key, gguf_value_type type) {
    w->n_kv++;
    return kv_put_str(w, key, strlen(key)) && kv_put_u32(w, type);
}

static strata_status done(gguf_writer *w, bool ok) {
    if (ok) return STRATA_OK;
    w->failed = true;
    return strata_fail(STRATA_ERR_NOMEM, "out of memory building GGUF metadata");
}

static strata_status add_scalar(gguf_writer *w, const char *key, gguf_value_type t, const void *v) {
    return done(w, begin_kv(w, key, t) && kv_put(w, v, gguf_scalar_size(t)));
}

strata_status gguf_writer_add_u8(gguf_writer *w, const char *k, uint8_t v) { return add_scalar(w, k, GGUF_TYPE_UINT8, &v); }
strata_status gguf_writer_add_i8(gguf_writer *w, const char *k, int8_t v) { return add_scalar(w, k, GGUF_TYPE_INT8, &v); }
strata_status gguf_writer_add_u16(gguf_writer *w, const char *k, uint16_t v) { return add_scalar(w, k, GGUF_TYPE_UINT16, &v); }
strata_status gguf_writer_add_i16(gguf_writer *w, const char *k, int16_t v) { return add_scalar(w, k, GGUF_TYPE_INT16, &v); }
strata_status gguf_writer_add_i32(gguf_writer *w, const char *k, int32_t v) { return add_scalar(w, k, GGUF_TYPE_INT32, &v); }
strata_status gguf_writer_add_u64(gguf_writer *w, const char *k, uint64_t v) { return add_scalar(w, k, GGUF_TYPE_UINT64, &v); }
strata_status gguf_writer_add_i64(gguf_writer *w, const char *k, int64_t v) { return add_scalar(w, k, GGUF_TYPE_INT64, &v); }
strata_status gguf_writer_add_f32(gguf_writer *w, const char *k, float v) { return add_scalar(w, k, GGUF_TYPE_FLOAT32, &v); }
strata_status gguf_writer_add_f64(gguf_writer *w, const char *k, double v) { return add_scalar(w, k, GGUF_TYPE_FLOAT64, &v); }

strata_status gguf_writer_add_u32(gguf_writer *w, const char *key, uint32_t v) {
    /* The alignment key decides the layout; an invalid value is still written (tests build
     * broken files this way) but the layout keeps the default. */
    if (strcmp(key, "general.alignment") == 0 && v != 0 && (v & (v - 1)) == 0) w->alignment = v;
    return add_scalar(w, key, GGUF_TYPE_UINT32, &v);
}

strata_status gguf_writer_add_bool(gguf_writer *w, const char *key, bool v) {
    uint8_t b = v ? 1 : 0;
    return add_scalar(w, key, GGUF_TYPE_BOOL, &b);
}

strata_status gguf_writer_add_strn(gguf_writer *w, const char *key, const char *v, size_t len) {
    return done(w, begin_kv(w, key, GGUF_TYPE_STRING) && kv_put_str(w, v, len));
}

strata_status gguf_writer_add_str(gguf_writer *w, const char *key, const char *v) {
    return gguf_writer_add_strn(w, key, v, strlen(v));
}

strata_status gguf_writer_add_array(gguf_writer *w, const char *key, gguf_value_type elem_type,
                                    const void *data, uint64_t count) {
    uint64_t esize = gguf_scalar_size(elem_type);
    if (esize == 0)
        return strata_fail(STRATA_ERR_INVALID, "array '%s': element type %s is not numeric", key,
                           gguf_value_type_name(elem_type));
    return done(w, begin_kv(w, key, GGUF_TYPE_ARRAY) && kv_put_u32(w, elem_type) &&
                       kv_put_u64(w, count) && kv_put(w, data, count * esize));
}

strata_status gguf_writer_add_str_array(gguf_writer *w, const char *key, const char *const *strs,
                                        uint64_t count) {
    bool ok = begin_kv(w, key, GGUF_TYPE_ARRAY) && kv_put_u32(w, GGUF_TYPE_STRING) &&
              kv_put_u64(w, count);
    for (uint64_t j = 0; ok && j < count; j++) ok = kv_put_str(w, strs[j], strlen(strs[j]));
    return done(w, ok);
}

strata_status gguf_writer_copy_kv(gguf_writer *w, const gguf_file *src, int64_t i) {
    const char *key = gguf_kv_key(src, i);
    const gguf_value *v = gguf_kv_value(src, i);
    switch (v->type) {
    case GGUF_TYPE_UINT8: return gguf_writer_add_u8(w, key, (uint8_t)v->u64);
    case GGUF_TYPE_INT8: return gguf_writer_add_i8(w, key, (int8_t)v->i64);
    case GGUF_TYPE_UINT16: return gguf_writer_add_u16(w, key, (uint16_t)v->u64);
    case GGUF_TYPE_INT16: return gguf_writer_add_i16(w, key, (int16_t)v->i64);
    case GGUF_TYPE_UINT32: return gguf_writer_add_u32(w, key, (uint32_t)v->u64);
    case GGUF_TYPE_INT32: return gguf_writer_add_i32(w, key, (int32_t)v->i64);
    case GGUF_TYPE_UINT64: return gguf_writer_add_u64(w, key, v->u64);
    case GGUF_TYPE_INT64: return gguf_writer_add_i64(w, key, v->i64);
    case GGUF_TYPE_FLOAT32: return gguf_writer_add_f32(w, key, (float)v->f64);
    case GGUF_TYPE_FLOAT64: return gguf_writer_add_f64(w, key, v->f64);
    case GGUF_TYPE_BOOL: return gguf_writer_add_bool(w, key, v->b);
    case GGUF_TYPE_STRING: return gguf_writer_add_strn(w, key, v->str.ptr, v->str.len);
    case GGUF_TYPE_ARRAY: {
        bool ok = begin_kv(w, key, GGUF_TYPE_ARRAY) && kv_put_u32(w, v->arr.elem_type) &&
                  kv_put_u64(w, v->arr.count);
        if (v->arr.elem_type == GGUF_TYPE_STRING) {
            for (uint64_t j = 0; ok && j < v->arr.count; j++)
                ok = kv_put_str(w, v->arr.strs[j].ptr, v->arr.strs[j].len);
        } else {
            ok = ok && kv_put(w, v->arr.raw, v->arr.count * gguf_scalar_size(v->arr.elem_type));
        }
        return done(w, ok);
    }
    default: return strata_fail(STRATA_ERR_INVALID, "key '%s' has an unknown type", key);
    }
}

strata_status gguf_writer_add_tensor(gguf_writer *w, const char *name, strata_type type,
                                     uint32_t n_dims, const int64_t *ne, const void *data) {
    const strata_type_info *info = strata_type_info_get(type);
    if (!info) return strata_fail(STRATA_ERR_INVALID, "tensor '%s': unknown type %d", name, (int)type);
    if (n_dims == 0 || n_dims > GGUF_MAX_DIMS)
        return strata_fail(STRATA_ERR_INVALID, "tensor '%s': %u dimensions", name, n_dims);
    pending_tensor t = {.type = type, .n_dims = n_dims, .data = data};
    int64_t n = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) t.ne[d] = d < n_dims ? ne[d] : 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (t.ne[d] <= 0 || n > INT64_MAX / t.ne[d])
            return strata_fail(STRATA_ERR_INVALID, "tensor '%s': bad dimension %lld", name,
                               (long long)t.ne[d]);
        n *= t.ne[d];
    }
    if (!strata_type_row_ok(type, t.ne[0]))
        return strata_fail(STRATA_ERR_INVALID, "tensor '%s': row of %lld is not whole %s blocks",
                           name, (long long)t.ne[0], info->name);
    t.bytes = (uint64_t)(n / info->block_elems) * info->block_bytes;
    if (w->n_tensors == w->tensors_cap) {
        int64_t cap = w->tensors_cap ? w->tensors_cap * 2 : 64;
        pending_tensor *grown = realloc(w->tensors, (size_t)cap * sizeof *grown);
        if (!grown) return done(w, false);
        w->tensors = grown;
        w->tensors_cap = cap;
    }
    t.name = strdup(name);
    if (!t.name) return done(w, false);
    w->tensors[w->n_tensors++] = t;
    return STRATA_OK;
}

/* ---- emitting --------------------------------------------------------------------- */

typedef struct {
    FILE *fp;         /* file sink, or */
    uint8_t *buf;     /* memory sink */
    size_t len, cap;
    bool ok;
} sink;

static void emit(sink *s, const void *p, size_t n) {
    if (!s->ok || n == 0) return;
    if (s->fp) {
        s->ok = fwrite(p, 1, n, s->fp) == n;
        return;
    }
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + n) cap *= 2;
        uint8_t *grown = realloc(s->buf, cap);
        if (!grown) {
            s->ok = false;
            return;
        }
        s->buf = grown;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
}

static void emit_zeros(sink *s, uint64_t n) {
    static const uint8_t zeros[4096];
    while (n > 0) {
        size_t chunk = n < sizeof zeros ? (size_t)n : sizeof zeros;
        emit(s, zeros, chunk);
        n -= chunk;
    }
}

static uint64_t pad_to(uint64_t x, uint64_t align) { return (align - x % align) % align; }

static void emit_all(gguf_writer *w, sink *s) {
    uint32_t magic = GGUF_MAGIC, version = 3;
    uint64_t n_tensors = (uint64_t)w->n_tensors;
    emit(s, &magic, 4);
    emit(s, &version, 4);
    emit(s, &n_tensors, 8);
    emit(s, &w->n_kv, 8);
    emit(s, w->kv, w->kv_len);
    uint64_t pos = 24 + w->kv_len, offset = 0;
    for (int64_t i = 0; i < w->n_tensors; i++) {
        const pending_tensor *t = &w->tensors[i];
        uint64_t len = strlen(t->name);
        uint32_t type = (uint32_t)t->type;
        emit(s, &len, 8);
        emit(s, t->name, len);
        emit(s, &t->n_dims, 4);
        for (uint32_t d = 0; d < t->n_dims; d++) emit(s, &t->ne[d], 8);
        emit(s, &type, 4);
        emit(s, &offset, 8);
        pos += 8 + len + 4 + 8 * (uint64_t)t->n_dims + 4 + 8;
        offset += t->bytes + pad_to(t->bytes, w->alignment);
    }
    /* llama.cpp pads the header only when a data section follows (vocab-only files end
     * right after the last key); doing the same keeps rewrites byte-identical. */
    if (w->n_tensors > 0) emit_zeros(s, pad_to(pos, w->alignment));
    for (int64_t i = 0; i < w->n_tensors; i++) {
        const pending_tensor *t = &w->tensors[i];
        if (t->data) emit(s, t->data, t->bytes);
        else emit_zeros(s, t->bytes);
        emit_zeros(s, pad_to(t->bytes, w->alignment));
    }
}

strata_status gguf_writer_write_memory(gguf_writer *w, void **out, size_t *out_size) {
    if (w->failed) return strata_fail(STRATA_ERR_NOMEM, "GGUF writer ran out of memory earlier");
    sink s = {.ok = true};
    emit_all(w, &s);
    if (!s.ok) {
        free(s.buf);
        return strata_fail(STRATA_ERR_NOMEM, "out of memory writing GGUF to memory");
    }
    *out = s.buf;
    *out_size = s.len;
    return STRATA_OK;
}

strata_status gguf_writer_write_file(gguf_writer *w, const char *path) {
    if (w->failed) return strata_fail(STRATA_ERR_NOMEM, "GGUF writer ran out of memory earlier");
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (!tmp) return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    snprintf(tmp, n, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        strata_status st = strata_fail(STRATA_ERR_IO, "cannot create '%s': %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    /* mkstemp creates 0600; a model file is meant to be readable like any other output. */
    (void)fchmod(fd, 0644);
    FILE *fp = fdopen(fd, "wb");
    if (!fp) {
        close(fd);
        unlink(tmp);
        free(tmp);
        return strata_fail(STRATA_ERR_IO, "cannot open '%s' for writing", path);
    }
    sink s = {.fp = fp, .ok = true};
    emit_all(w, &s);
    bool ok = s.ok && fflush(fp) == 0 && fsync(fileno(fp)) == 0;
    int saved = errno;
    ok = (fclose(fp) == 0) && ok;
    if (ok && rename(tmp, path) != 0) {
        saved = errno;
        ok = false;
    }
    if (!ok) {
        unlink(tmp);
        free(tmp);
        return strata_fail(STRATA_ERR_IO, "cannot write '%s': %s", path, strerror(saved));
    }
    free(tmp);
    return STRATA_OK;
}
