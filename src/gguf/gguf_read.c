/* GGUF reader: maps or borrows the bytes, validates the entire header up front, and
 * builds hash indexes of keys and tensors. Every error names the byte offset and the key
 * or tensor concerned. Nothing here reads past `size`: each read goes through a cursor
 * that checks the remaining length first, with arithmetic that cannot overflow. */
#include "gguf/gguf.h"
#include "gguf/gguf_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct gguf_file {
    const uint8_t *base;
    uint64_t size;
    void *mapping; /* non-NULL when we own an mmap of `size` bytes */
    uint32_t version;
    uint64_t alignment;
    uint64_t data_offset;

    int64_t n_kv;
    char **keys;
    gguf_value *values;

    int64_t n_tensors;
    gguf_tensor *tensors;

    /* open-addressing tables of indexes (-1 = empty); capacities are powers of two */
    int64_t *kv_index;
    uint64_t kv_cap;
    int64_t *tensor_index;
    uint64_t tensor_cap;
};

/* ---- cursor ----------------------------------------------------------------------- */

typedef struct {
    const uint8_t *p;
    uint64_t size;
    uint64_t pos;
} cursor;

static uint64_t remaining(const cursor *c) { return c->size - c->pos; }

static bool read_bytes(cursor *c, void *dst, uint64_t n) {
    if (n > remaining(c)) return false;
    memcpy(dst, c->p + c->pos, n);
    c->pos += n;
    return true;
}

static bool read_u32(cursor *c, uint32_t *v) { return read_bytes(c, v, 4); }
static bool read_u64(cursor *c, uint64_t *v) { return read_bytes(c, v, 8); }

static strata_status truncated(const cursor *c, const char *what, const char *name) {
    return strata_fail(STRATA_ERR_FORMAT, "file truncated at offset %llu: reading %s%s%s%s",
                       (unsigned long long)c->pos, what, name ? " of '" : "", name ? name : "",
                       name ? "'" : "");
}

/* Reads a length-prefixed string without copying. */
static strata_status read_str(cursor *c, gguf_str *s, const char *what, const char *owner) {
    uint64_t start = c->pos, len;
    if (!read_u64(c, &len)) return truncated(c, what, owner);
    if (len > remaining(c))
        return strata_fail(STRATA_ERR_FORMAT,
                           "%s%s%s%s at offset %llu has length %llu, longer than the %llu bytes "
                           "left in the file",
                           what, owner ? " of '" : "", owner ? owner : "", owner ? "'" : "",
                           (unsigned long long)start, (unsigned long long)len,
                           (unsigned long long)remaining(c));
    s->ptr = (const char *)c->p + c->pos;
    s->len = len;
    c->pos += len;
    return STRATA_OK;
}

/* A NUL-terminated copy of a name; names with embedded NUL bytes are rejected since
 * lookups by C string could never find them. */
static strata_status dup_name(gguf_str s, uint64_t offset, const char *what, char **out) {
    if (memchr(s.ptr, 0, s.len))
        return strata_fail(STRATA_ERR_FORMAT, "%s at offset %llu contains a NUL byte", what,
                           (unsigned long long)offset);
    char *copy = malloc(s.len + 1);
    if (!copy) return strata_fail(STRATA_ERR_NOMEM, "out of memory reading %s", what);
    memcpy(copy, s.ptr, s.len);
    copy[s.len] = 0;
    *out = copy;
    return STRATA_OK;
}

/* ---- hash index --------------------------------------------------------------------- */

static uint64_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static uint64_t table_capacity(int64_t n) {
    uint64_t cap = 16;
    while (cap < (uint64_t)n * 2) cap <<= 1;
    return cap;
}

/* Inserts index i whose name is names(i); returns the index of an existing equal name,
 * or -1 if inserted. */
typedef const char *(*name_of_fn)(const gguf_file *f, int64_t i);

static int64_t table_insert(const gguf_file *f, int64_t *table, uint64_t cap, int64_t i,
                            name_of_fn name_of) {
    const char *name = name_of(f, i);
    for (uint64_t h = hash_name(name) & (cap - 1);; h = (h + 1) & (cap - 1)) {
        if (table[h] < 0) {
            table[h] = i;
            return -1;
        }
        if (strcmp(name_of(f, table[h]), name) == 0) return table[h];
    }
}

static int64_t table_find(const gguf_file *f, const int64_t *table, uint64_t cap,
                          const char *name, name_of_fn name_of) {
    if (!table) return -1;
    for (uint64_t h = hash_name(name) & (cap - 1);; h = (h + 1) & (cap - 1)) {
        if (table[h] < 0) return -1;
        if (strcmp(name_of(f, table[h]), name) == 0) return table[h];
    }
}

static const char *kv_name(const gguf_file *f, int64_t i) { return f->keys[i]; }
static const char *tensor_name(const gguf_file *f, int64_t i) { return f->tensors[i].name; }

static int64_t *new_table(uint64_t cap) {
    int64_t *t = malloc(cap * sizeof *t);
    if (t) memset(t, 0xff, cap * sizeof *t); /* all -1 */
    return t;
}

/* ---- key/values --------------------------------------------------------------------- */

/* Smallest encodings, used to reject counts the file cannot hold before allocating. */
#define MIN_KV_BYTES 13     /* key length (8) + type (4) + one byte of value */
#define MIN_TENSOR_BYTES 32 /* name length (8) + n_dims (4) + one dim (8) + type (4) + offset (8) */

static strata_status read_scalar(cursor *c, gguf_value_type t, gguf_value *v, const char *key) {
    uint8_t buf[8] = {0};
    uint64_t n = gguf_scalar_size(t);
    if (!read_bytes(c, buf, n)) return truncated(c, "the value", key);
    v->type = t;
    switch (t) {
    case GGUF_TYPE_UINT8: v->u64 = buf[0]; break;
    case GGUF_TYPE_INT8: v->i64 = (int8_t)buf[0]; break;
    case GGUF_TYPE_BOOL: v->b = buf[0] != 0; break;
    case GGUF_TYPE_UINT16: { uint16_t x; memcpy(&x, buf, 2); v->u64 = x; break; }
    case GGUF_TYPE_INT16: { int16_t x; memcpy(&x, buf, 2); v->i64 = x; break; }
    case GGUF_TYPE_UINT32: { uint32_t x; memcpy(&x, buf, 4); v->u64 = x; break; }
    case GGUF_TYPE_INT32: { int32_t x; memcpy(&x, buf, 4); v->i64 = x; break; }
    case GGUF_TYPE_FLOAT32: { float x; memcpy(&x, buf, 4); v->f64 = x; break; }
    case GGUF_TYPE_UINT64: memcpy(&v->u64, buf, 8); break;
    case GGUF_TYPE_INT64: memcpy(&v->i64, buf, 8); break;
    case GGUF_TYPE_FLOAT64: memcpy(&v->f64, buf, 8); break;
    default: break;
    }
    return STRATA_OK;
}

static strata_status read_value(cursor *c, uint32_t type, gguf_value *v, const char *key,
                                uint64_t type_offset) {
    if (type >= GGUF_TYPE_COUNT)
        return strata_fail(STRATA_ERR_FORMAT, "unknown value type %u for key '%s' at offset %llu",
                           type, key, (unsigned long long)type_offset);
    if (type == GGUF_TYPE_STRING) {
        v->type = GGUF_TYPE_STRING;
        return read_str(c, &v->str, "string value", key);
    }
    if (type != GGUF_TYPE_ARRAY) return read_scalar(c, (gguf_value_type)type, v, key);

    uint64_t elem_offset = c->pos;
    uint32_t elem_type;
    uint64_t count;
    if (!read_u32(c, &elem_type)) return truncated(c, "the array element type", key);
    if (!read_u64(c, &count)) return truncated(c, "the array length", key);
    if (elem_type >= GGUF_TYPE_COUNT)
        return strata_fail(STRATA_ERR_FORMAT,
                           "unknown value type %u for the elements of array '%s' at offset %llu",
                           elem_type, key, (unsigned long long)elem_offset);
    if (elem_type == GGUF_TYPE_ARRAY)
        return strata_fail(STRATA_ERR_UNSUPPORTED,
                           "array '%s' at offset %llu holds arrays; nested arrays are not supported",
                           key, (unsigned long long)elem_offset);
    v->type = GGUF_TYPE_ARRAY;
    v->arr.elem_type = (gguf_value_type)elem_type;
    v->arr.count = count;
    v->arr.raw = NULL;
    v->arr.strs = NULL;
    if (elem_type == GGUF_TYPE_STRING) {
        if (count > remaining(c) / 8)
            return strata_fail(STRATA_ERR_FORMAT,
                               "array '%s' at offset %llu claims %llu strings, more than the %llu "
                               "bytes left in the file can hold",
                               key, (unsigned long long)elem_offset, (unsigned long long)count,
                               (unsigned long long)remaining(c));
        gguf_str *strs = malloc((count ? count : 1) * sizeof *strs);
        if (!strs) return strata_fail(STRATA_ERR_NOMEM, "out of memory reading array '%s'", key);
        v->arr.strs = strs; /* owned by the value from here, freed by gguf_close */
        for (uint64_t j = 0; j < count; j++) {
            strata_status st = read_str(c, &strs[j], "array string", key);
            if (st != STRATA_OK) return st;
        }
        return STRATA_OK;
    }
    uint64_t esize = gguf_scalar_size((gguf_value_type)elem_type);
    if (count > remaining(c) / esize)
        return strata_fail(STRATA_ERR_FORMAT,
                           "array '%s' at offset %llu claims %llu elements of %llu bytes, more "
                           "than the %llu bytes left in the file",
                           key, (unsigned long long)elem_offset, (unsigned long long)count,
                           (unsigned long long)esize, (unsigned long long)remaining(c));
    v->arr.raw = c->p + c->pos;
    c->pos += count * esize;
    return STRATA_OK;
}

static strata_status read_kvs(gguf_file *f, cursor *c) {
    f->keys = calloc(f->n_kv ? (size_t)f->n_kv : 1, sizeof *f->keys);
    f->values = calloc(f->n_kv ? (size_t)f->n_kv : 1, sizeof *f->values);
    f->kv_cap = table_capacity(f->n_kv);
    f->kv_index = new_table(f->kv_cap);
    if (!f->keys || !f->values || !f->kv_index)
        return strata_fail(STRATA_ERR_NOMEM, "out of memory for %lld keys", (long long)f->n_kv);

    for (int64_t i = 0; i < f->n_kv; i++) {
        uint64_t key_offset = c->pos;
        gguf_str key;
        strata_status st = read_str(c, &key, "key", NULL);
        if (st != STRATA_OK) return st;
        if ((st = dup_name(key, key_offset, "key", &f->keys[i])) != STRATA_OK) return st;
        uint64_t type_offset = c->pos;
        uint32_t type;
        if (!read_u32(c, &type)) return truncated(c, "the value type", f->keys[i]);
        st = read_value(c, type, &f->values[i], f->keys[i], type_offset);
        if (st != STRATA_OK) return st;
        if (table_insert(f, f->kv_index, f->kv_cap, i, kv_name) >= 0)
            return strata_fail(STRATA_ERR_FORMAT, "duplicate key '%s' at offset %llu", f->keys[i],
                               (unsigned long long)key_offset);
    }
    return STRATA_OK;
}

static strata_status read_alignment(gguf_file *f) {
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    int64_t i = gguf_find_key(f, "general.alignment");
    if (i < 0) return STRATA_OK;
    const gguf_value *v = &f->values[i];
    if (v->type != GGUF_TYPE_UINT32)
        return strata_fail(STRATA_ERR_FORMAT, "key 'general.alignment' has type %s, expected uint32",
                           gguf_value_type_name(v->type));
    if (v->u64 == 0 || (v->u64 & (v->u64 - 1)) != 0)
        return strata_fail(STRATA_ERR_FORMAT,
                           "key 'general.alignment' is %llu, which is not a power of two",
                           (unsigned long long)v->u64);
    f->alignment = v->u64;
    return STRATA_OK;
}

/* ---- tensors ------------------------------------------------------------------------ */

static strata_status read_tensor_info(gguf_file *f, cursor *c, gguf_tensor *t) {
    uint64_t info_offset = c->pos;
    gguf_str name;
    strata_status st = read_str(c, &name, "tensor name", NULL);
    if (st != STRATA_OK) return st;
    char *copy = NULL; /* set by dup_name on success; NULL quiets a gcc -O2 false positive */
    if ((st = dup_name(name, info_offset, "tensor name", &copy)) != STRATA_OK) return st;
    t->name = copy;

    if (!read_u32(c, &t->n_dims)) return truncated(c, "the dimension count", t->name);
    if (t->n_dims == 0 || t->n_dims > GGUF_MAX_DIMS)
        return strata_fail(STRATA_ERR_FORMAT,
                           "tensor '%s' at offset %llu has %u dimensions (1 to %d supported)",
                           t->name, (unsigned long long)info_offset, t->n_dims, GGUF_MAX_DIMS);
    int64_t n_elems = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        uint64_t dim_offset = c->pos, ne;
        if (!read_u64(c, &ne)) return truncated(c, "a dimension", t->name);
        if (ne == 0)
            return strata_fail(STRATA_ERR_FORMAT, "tensor '%s' has dimension %u of zero at offset %llu",
                               t->name, d, (unsigned long long)dim_offset);
        if (ne > (uint64_t)INT64_MAX || (uint64_t)n_elems > (uint64_t)INT64_MAX / ne)
            return strata_fail(STRATA_ERR_FORMAT,
                               "tensor '%s': element count overflows at dimension %u (offset %llu)",
                               t->name, d, (unsigned long long)dim_offset);
        t->ne[d] = (int64_t)ne;
        n_elems *= (int64_t)ne;
    }
    uint64_t type_offset = c->pos;
    uint32_t type;
    if (!read_u32(c, &type)) return truncated(c, "the type", t->name);
    const strata_type_info *info = strata_type_info_get(type);
    if (!info)
        return strata_fail(STRATA_ERR_FORMAT, "tensor '%s' has unknown type id %u at offset %llu",
                           t->name, type, (unsigned long long)type_offset);
    t->type = (strata_type)type;
    if (t->ne[0] % info->block_elems != 0)
        return strata_fail(STRATA_ERR_FORMAT,
                           "tensor '%s': row of %lld elements is not a multiple of the %s block "
                           "size %u (offset %llu)",
                           t->name, (long long)t->ne[0], info->name, info->block_elems,
                           (unsigned long long)info_offset);
    uint64_t blocks = (uint64_t)n_elems / info->block_elems;
    if (blocks > UINT64_MAX / info->block_bytes)
        return strata_fail(STRATA_ERR_FORMAT, "tensor '%s': byte size overflows", t->name);
    t->bytes = blocks * info->block_bytes;
    uint64_t offset_pos = c->pos;
    if (!read_u64(c, &t->offset)) return truncated(c, "the data offset", t->name);
    if (t->offset % f->alignment != 0)
        return strata_fail(STRATA_ERR_FORMAT,
                           "tensor '%s': data offset %llu (at offset %llu) is not a multiple of "
                           "the alignment %llu",
                           t->name, (unsigned long long)t->offset, (unsigned long long)offset_pos,
                           (unsigned long long)f->alignment);
    return STRATA_OK;
}

static int cmp_by_offset(const void *a, const void *b) {
    const gguf_tensor *x = *(const gguf_tensor *const *)a, *y = *(const gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Data must lie inside the file (unless header-only) and no two tensors may overlap.
 * The caller guarantees data_offset <= size when the data is required. */
static strata_status check_layout(gguf_file *f, gguf_open_flags flags) {
    bool have_data = !(flags & GGUF_OPEN_HEADER_ONLY);
    for (int64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        if (t->offset > UINT64_MAX - t->bytes)
            return strata_fail(STRATA_ERR_FORMAT, "tensor '%s': data offset %llu overflows", t->name,
                               (unsigned long long)t->offset);
        t->data = NULL;
        if (!have_data) continue;
        uint64_t data_bytes = f->size - f->data_offset;
        if (t->offset > data_bytes || t->bytes > data_bytes - t->offset)
            return strata_fail(STRATA_ERR_FORMAT,
                               "tensor '%s': data [%llu, +%llu) at file offset %llu runs past the "
                               "end of the file (%llu bytes)",
                               t->name, (unsigned long long)t->offset, (unsigned long long)t->bytes,
                               (unsigned long long)(f->data_offset + t->offset),
                               (unsigned long long)f->size);
        t->data = f->base + f->data_offset + t->offset;
    }
    if (f->n_tensors < 2) return STRATA_OK;
    gguf_tensor **order = malloc((size_t)f->n_tensors * sizeof *order);
    if (!order) return strata_fail(STRATA_ERR_NOMEM, "out of memory checking tensor layout");
    for (int64_t i = 0; i < f->n_tensors; i++) order[i] = &f->tensors[i];
    qsort(order, (size_t)f->n_tensors, sizeof *order, cmp_by_offset);
    strata_status st = STRATA_OK;
    for (int64_t i = 1; i < f->n_tensors; i++) {
        const gguf_tensor *a = order[i - 1], *b = order[i];
        if (a->offset + a->bytes > b->offset) {
            st = strata_fail(STRATA_ERR_FORMAT,
                             "tensor '%s' (data [%llu, %llu)) overlaps tensor '%s' (data at %llu)",
                             b->name, (unsigned long long)b->offset,
                             (unsigned long long)(b->offset + b->bytes), a->name,
                             (unsigned long long)a->offset);
            break;
        }
    }
    free(order);
    return st;
}

static strata_status read_tensors(gguf_file *f, cursor *c, gguf_open_flags flags) {
    f->tensors = calloc(f->n_tensors ? (size_t)f->n_tensors : 1, sizeof *f->tensors);
    f->tensor_cap = table_capacity(f->n_tensors);
    f->tensor_index = new_table(f->tensor_cap);
    if (!f->tensors || !f->tensor_index)
        return strata_fail(STRATA_ERR_NOMEM, "out of memory for %lld tensors", (long long)f->n_tensors);
    for (int64_t i = 0; i < f->n_tensors; i++) {
        uint64_t info_offset = c->pos;
        strata_status st = read_tensor_info(f, c, &f->tensors[i]);
        if (st != STRATA_OK) {
            f->n_tensors = i + 1; /* so that gguf_close frees the partial name */
            return st;
        }
        if (table_insert(f, f->tensor_index, f->tensor_cap, i, tensor_name) >= 0) {
            f->n_tensors = i + 1;
            return strata_fail(STRATA_ERR_FORMAT, "duplicate tensor name '%s' at offset %llu",
                               f->tensors[i].name, (unsigned long long)info_offset);
        }
    }
    uint64_t pad = (f->alignment - c->pos % f->alignment) % f->alignment;
    f->data_offset = c->pos + pad;
    if (f->data_offset > f->size && f->n_tensors > 0 && !(flags & GGUF_OPEN_HEADER_ONLY))
        return strata_fail(STRATA_ERR_FORMAT,
                           "file truncated: the data section would start at offset %llu, past "
                           "the end of the file (%llu bytes)",
                           (unsigned long long)f->data_offset, (unsigned long long)f->size);
    return check_layout(f, flags);
}

/* ---- open / close ------------------------------------------------------------------- */

static strata_status parse(gguf_file *f, gguf_open_flags flags) {
    cursor c = {f->base, f->size, 0};
    uint32_t magic;
    if (!read_u32(&c, &magic) || magic != GGUF_MAGIC) {
        uint8_t b[4] = {0};
        memcpy(b, f->base, f->size < 4 ? f->size : 4);
        return strata_fail(STRATA_ERR_FORMAT,
                           "bad magic at offset 0: expected 'GGUF', found %02x %02x %02x %02x%s",
                           b[0], b[1], b[2], b[3], f->size < 4 ? " (file shorter than 4 bytes)" : "");
    }
    if (!read_u32(&c, &f->version)) return truncated(&c, "the version", NULL);
    if (f->version != 2 && f->version != 3) {
        const char *hint = (f->version & 0xffff) == 0 ? " (a big-endian file?)" : "";
        return strata_fail(STRATA_ERR_UNSUPPORTED,
                           "unsupported GGUF version %u at offset 4 (2 and 3 are supported)%s",
                           f->version, hint);
    }
    uint64_t n_tensors, n_kv;
    if (!read_u64(&c, &n_tensors)) return truncated(&c, "the tensor count", NULL);
    if (!read_u64(&c, &n_kv)) return truncated(&c, "the key/value count", NULL);
    if (n_tensors > remaining(&c) / MIN_TENSOR_BYTES)
        return strata_fail(STRATA_ERR_FORMAT,
                           "tensor count %llu at offset 8 exceeds what the %llu-byte file can hold",
                           (unsigned long long)n_tensors, (unsigned long long)f->size);
    if (n_kv > remaining(&c) / MIN_KV_BYTES)
        return strata_fail(STRATA_ERR_FORMAT,
                           "key/value count %llu at offset 16 exceeds what the %llu-byte file can "
                           "hold",
                           (unsigned long long)n_kv, (unsigned long long)f->size);
    f->n_kv = (int64_t)n_kv;
    f->n_tensors = (int64_t)n_tensors;
    strata_status st = read_kvs(f, &c);
    if (st != STRATA_OK) return st;
    if ((st = read_alignment(f)) != STRATA_OK) return st;
    return read_tensors(f, &c, flags);
}

static strata_status open_common(gguf_file *f, gguf_open_flags flags, gguf_file **out) {
    strata_status st = parse(f, flags);
    if (st != STRATA_OK) {
        gguf_close(f);
        return st;
    }
    *out = f;
    return STRATA_OK;
}

strata_status gguf_open_memory(const void *data, size_t size, gguf_open_flags flags, gguf_file **out) {
    *out = NULL;
    gguf_file *f = calloc(1, sizeof *f);
    if (!f) return strata_fail(STRATA_ERR_NOMEM, "out of memory opening GGUF buffer");
    static const uint8_t empty[1];
    f->base = data ? data : empty;
    f->size = data ? size : 0;
    return open_common(f, flags, out);
}

strata_status gguf_open(const char *path, gguf_open_flags flags, gguf_file **out) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return strata_fail(STRATA_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return strata_fail(STRATA_ERR_IO, "cannot stat '%s': %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return strata_fail(STRATA_ERR_IO, "'%s' is not a regular file", path);
    }
    gguf_file *f = calloc(1, sizeof *f);
    if (!f) {
        close(fd);
        return strata_fail(STRATA_ERR_NOMEM, "out of memory opening '%s'", path);
    }
    static const uint8_t empty[1];
    f->base = empty;
    if (st.st_size > 0) {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            free(f);
            return strata_fail(STRATA_ERR_IO, "cannot map '%s': %s", path, strerror(e));
        }
        f->mapping = m;
        f->base = m;
        f->size = (uint64_t)st.st_size;
    }
    close(fd);
    strata_status s = open_common(f, flags, out);
    if (s != STRATA_OK) {
        /* prefix the path so a CLI user knows which file */
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", strata_last_error());
        strata_fail(s, "%s: %s", path, msg);
    }
    return s;
}

void gguf_release_data(const gguf_file *f, const void *data, uint64_t bytes) {
    if (!f || !f->mapping || !data) return;
    const uintptr_t base = (uintptr_t)f->mapping, start = (uintptr_t)data;
    if (start < base || bytes > f->size || start - base > f->size - bytes) return;
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t lo = (start + page - 1) & ~(page - 1), hi = (start + bytes) & ~(page - 1);
    /* a private read-only file mapping: dropping its pages loses nothing */
    if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

void gguf_close(gguf_file *f) {
    if (!f) return;
    if (f->keys)
        for (int64_t i = 0; i < f->n_kv; i++) free(f->keys[i]);
    if (f->values)
        for (int64_t i = 0; i < f->n_kv; i++)
            if (f->values[i].type == GGUF_TYPE_ARRAY) free((void *)f->values[i].arr.strs);
    if (f->tensors)
        for (int64_t i = 0; i < f->n_tensors; i++) free((void *)f->tensors[i].name);
    free(f->keys);
    free(f->values);
    free(f->tensors);
    free(f->kv_index);
    free(f->tensor_index);
    if (f->mapping) munmap(f->mapping, f->size);
    free(f);
}

/* ---- accessors ---------------------------------------------------------------------- */

uint32_t gguf_version(const gguf_file *f) { return f->version; }
uint64_t gguf_alignment(const gguf_file *f) { return f->alignment; }
uint64_t gguf_data_offset(const gguf_file *f) { return f->data_offset; }
uint64_t gguf_file_size(const gguf_file *f) { return f->size; }
int64_t gguf_kv_count(const gguf_file *f) { return f->n_kv; }
const char *gguf_kv_key(const gguf_file *f, int64_t i) { return f->keys[i]; }
const gguf_value *gguf_kv_value(const gguf_file *f, int64_t i) { return &f->values[i]; }

int64_t gguf_find_key(const gguf_file *f, const char *key) {
    return table_find(f, f->kv_index, f->kv_cap, key, kv_name);
}

const gguf_value *gguf_get(const gguf_file *f, const char *key) {
    int64_t i = gguf_find_key(f, key);
    return i < 0 ? NULL : &f->values[i];
}

static bool is_unsigned(gguf_value_type t) {
    return t == GGUF_TYPE_UINT8 || t == GGUF_TYPE_UINT16 || t == GGUF_TYPE_UINT32 ||
           t == GGUF_TYPE_UINT64;
}
static bool is_signed(gguf_value_type t) {
    return t == GGUF_TYPE_INT8 || t == GGUF_TYPE_INT16 || t == GGUF_TYPE_INT32 ||
           t == GGUF_TYPE_INT64;
}

bool gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out) {
    const gguf_value *v = gguf_get(f, key);
    if (!v) return false;
    if (is_unsigned(v->type)) { *out = v->u64; return true; }
    if (is_signed(v->type) && v->i64 >= 0) { *out = (uint64_t)v->i64; return true; }
    return false;
}

bool gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out) {
    uint64_t v;
    if (!gguf_get_u64(f, key, &v) || v > UINT32_MAX) return false;
    *out = (uint32_t)v;
    return true;
}

bool gguf_get_i64(const gguf_file *f, const char *key, int64_t *out) {
    const gguf_value *v = gguf_get(f, key);
    if (!v) return false;
    if (is_signed(v->type)) { *out = v->i64; return true; }
    if (is_unsigned(v->type) && v->u64 <= (uint64_t)INT64_MAX) { *out = (int64_t)v->u64; return true; }
    return false;
}

bool gguf_get_f32(const gguf_file *f, const char *key, float *out) {
    const gguf_value *v = gguf_get(f, key);
    if (!v) return false;
    if (v->type == GGUF_TYPE_FLOAT32 || v->type == GGUF_TYPE_FLOAT64) *out = (float)v->f64;
    else if (is_unsigned(v->type)) *out = (float)v->u64;
    else if (is_signed(v->type)) *out = (float)v->i64;
    else return false;
    return true;
}

bool gguf_get_bool(const gguf_file *f, const char *key, bool *out) {
    const gguf_value *v = gguf_get(f, key);
    if (!v || v->type != GGUF_TYPE_BOOL) return false;
    *out = v->b;
    return true;
}

bool gguf_get_str(const gguf_file *f, const char *key, gguf_str *out) {
    const gguf_value *v = gguf_get(f, key);
    if (!v || v->type != GGUF_TYPE_STRING) return false;
    *out = v->str;
    return true;
}

const gguf_value *gguf_get_array(const gguf_file *f, const char *key) {
    const gguf_value *v = gguf_get(f, key);
    return v && v->type == GGUF_TYPE_ARRAY ? v : NULL;
}

/* float -> int64 for values from a file: casting NaN or an out-of-range float is undefined
 * behaviour, so those saturate (NaN gives 0). */
static int64_t float_to_i64(double x) {
    if (x != x) return 0;
    if (x >= 9223372036854775808.0) return INT64_MAX;
    if (x < -9223372036854775808.0) return INT64_MIN;
    return (int64_t)x;
}

int64_t gguf_array_i64(const gguf_value *arr, uint64_t j) {
    STRATA_ASSERT(arr->type == GGUF_TYPE_ARRAY && j < arr->arr.count);
    if (arr->arr.elem_type == GGUF_TYPE_STRING) return 0; /* raw is NULL for strings */
    const uint8_t *p = arr->arr.raw + j * gguf_scalar_size(arr->arr.elem_type);
    switch (arr->arr.elem_type) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_BOOL: return p[0];
    case GGUF_TYPE_INT8: return (int8_t)p[0];
    case GGUF_TYPE_UINT16: { uint16_t x; memcpy(&x, p, 2); return x; }
    case GGUF_TYPE_INT16: { int16_t x; memcpy(&x, p, 2); return x; }
    case GGUF_TYPE_UINT32: { uint32_t x; memcpy(&x, p, 4); return x; }
    case GGUF_TYPE_INT32: { int32_t x; memcpy(&x, p, 4); return x; }
    case GGUF_TYPE_UINT64: { uint64_t x; memcpy(&x, p, 8); return (int64_t)x; }
    case GGUF_TYPE_INT64: { int64_t x; memcpy(&x, p, 8); return x; }
    case GGUF_TYPE_FLOAT32: { float x; memcpy(&x, p, 4); return float_to_i64(x); }
    case GGUF_TYPE_FLOAT64: { double x; memcpy(&x, p, 8); return float_to_i64(x); }
    default: return 0;
    }
}

double gguf_array_f64(const gguf_value *arr, uint64_t j) {
    STRATA_ASSERT(arr->type == GGUF_TYPE_ARRAY && j < arr->arr.count);
    if (arr->arr.elem_type == GGUF_TYPE_STRING) return 0; /* raw is NULL for strings */
    const uint8_t *p = arr->arr.raw + j * gguf_scalar_size(arr->arr.elem_type);
    switch (arr->arr.elem_type) {
    case GGUF_TYPE_FLOAT32: { float x; memcpy(&x, p, 4); return x; }
    case GGUF_TYPE_FLOAT64: { double x; memcpy(&x, p, 8); return x; }
    case GGUF_TYPE_UINT64: { uint64_t x; memcpy(&x, p, 8); return (double)x; }
    case GGUF_TYPE_STRING: return 0;
    default: return (double)gguf_array_i64(arr, j);
    }
}

gguf_str gguf_array_str(const gguf_value *arr, uint64_t j) {
    STRATA_ASSERT(arr->type == GGUF_TYPE_ARRAY && j < arr->arr.count);
    if (arr->arr.elem_type != GGUF_TYPE_STRING) return (gguf_str){"", 0};
    return arr->arr.strs[j];
}

int64_t gguf_tensor_count(const gguf_file *f) { return f->n_tensors; }
const gguf_tensor *gguf_tensor_at(const gguf_file *f, int64_t i) { return &f->tensors[i]; }

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    int64_t i = table_find(f, f->tensor_index, f->tensor_cap, name, tensor_name);
    return i < 0 ? NULL : &f->tensors[i];
}

int64_t gguf_tensor_elements(const gguf_tensor *t) {
    return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
}

const char *gguf_value_type_name(gguf_value_type t) {
    static const char *names[GGUF_TYPE_COUNT] = {"uint8", "int8", "uint16", "int16", "uint32",
                                                 "int32", "float32", "bool", "string", "array",
                                                 "uint64", "int64", "float64"};
    return (unsigned)t < GGUF_TYPE_COUNT ? names[t] : "unknown";
}

bool gguf_str_eq(gguf_str s, const char *cstr) {
    size_t n = strlen(cstr);
    return s.len == n && memcmp(s.ptr, cstr, n) == 0;
}
