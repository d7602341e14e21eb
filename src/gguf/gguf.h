/* GGUF reader and writer.
 *
 * Reader: gguf_open() maps a file read-only (or gguf_open_memory() borrows a buffer) and
 * validates the whole header before returning: every count, string, value type, tensor
 * shape, type, offset and the layout of the data section. After a successful open, every
 * accessor below is safe: pointers point inside the mapping, arrays are in bounds.
 * Keys and tensors are found by name through a hash table, not a linear scan.
 *
 * Ownership: a gguf_file owns its mapping, its key/tensor tables and the NUL-terminated
 * copies of key and tensor names. Everything returned by an accessor lives until
 * gguf_close(). gguf_str values point into the mapping and are NOT NUL-terminated.
 * Numeric array payloads are little-endian and may be unaligned: read them through the
 * gguf_array_* accessors. */
#ifndef STRATA_GGUF_GGUF_H
#define STRATA_GGUF_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "tensor/type.h"

#define GGUF_MAGIC 0x46554747u /* "GGUF" little-endian */
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4

typedef enum {
    GGUF_TYPE_UINT8 = 0,
    GGUF_TYPE_INT8 = 1,
    GGUF_TYPE_UINT16 = 2,
    GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4,
    GGUF_TYPE_INT32 = 5,
    GGUF_TYPE_FLOAT32 = 6,
    GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8,
    GGUF_TYPE_ARRAY = 9,
    GGUF_TYPE_UINT64 = 10,
    GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
    GGUF_TYPE_COUNT = 13
} gguf_value_type;

typedef struct {
    const char *ptr; /* not NUL-terminated */
    uint64_t len;
} gguf_str;

typedef struct {
    gguf_value_type type;
    union {
        uint64_t u64; /* UINT8/16/32/64 */
        int64_t i64;  /* INT8/16/32/64 */
        double f64;   /* FLOAT32/64 */
        bool b;       /* BOOL */
        gguf_str str; /* STRING */
        struct {
            gguf_value_type elem_type; /* never ARRAY (nested arrays are rejected) */
            uint64_t count;
            const uint8_t *raw;   /* payload in the file (numeric/bool element types) */
            const gguf_str *strs; /* count strings, for elem_type == STRING */
        } arr;
    };
} gguf_value;

typedef struct {
    const char *name; /* NUL-terminated copy */
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS]; /* ne[0] is the row length; unused dims are 1 */
    strata_type type;
    uint64_t offset;     /* from the start of the data section */
    uint64_t bytes;      /* size of the data */
    const void *data;    /* in the mapping; NULL when opened header-only */
} gguf_tensor;

typedef struct gguf_file gguf_file;

typedef enum {
    GGUF_OPEN_DEFAULT = 0,
    /* Tensor data may lie beyond the end of the file (a header-only or truncated copy, used
     * for what-if planning): offsets are still checked for alignment and overlap, and
     * gguf_tensor.data is NULL for every tensor. */
    GGUF_OPEN_HEADER_ONLY = 1,
} gguf_open_flags;

strata_status gguf_open(const char *path, gguf_open_flags flags, gguf_file **out);
/* Borrows data[0..size): the caller keeps it alive and unchanged until gguf_close(). */
strata_status gguf_open_memory(const void *data, size_t size, gguf_open_flags flags, gguf_file **out);
void gguf_close(gguf_file *f);
/* Says that this process no longer needs the tensor bytes [data, data + bytes) of f (they
 * were copied elsewhere, e.g. repacked into an arena): the whole pages among them leave the
 * resident set, and are read again from the file if touched later, unchanged. Nothing
 * happens for a file opened from memory, or for bytes outside the file's mapping. */
void gguf_release_data(const gguf_file *f, const void *data, uint64_t bytes);

uint32_t gguf_version(const gguf_file *f);
uint64_t gguf_alignment(const gguf_file *f);
uint64_t gguf_data_offset(const gguf_file *f); /* file offset of the data section */
uint64_t gguf_file_size(const gguf_file *f);

/* Key/value metadata, in file order. */
int64_t gguf_kv_count(const gguf_file *f);
const char *gguf_kv_key(const gguf_file *f, int64_t i);
const gguf_value *gguf_kv_value(const gguf_file *f, int64_t i);
int64_t gguf_find_key(const gguf_file *f, const char *key); /* -1 if absent */
const gguf_value *gguf_get(const gguf_file *f, const char *key); /* NULL if absent */

/* Typed getters by key. Each returns false (and leaves *out alone) when the key is absent
 * or its value cannot be represented: integers of any width convert when in range, floats
 * accept FLOAT32/FLOAT64 and integers. */
bool gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out);
bool gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out);
bool gguf_get_i64(const gguf_file *f, const char *key, int64_t *out);
bool gguf_get_f32(const gguf_file *f, const char *key, float *out);
bool gguf_get_bool(const gguf_file *f, const char *key, bool *out);
bool gguf_get_str(const gguf_file *f, const char *key, gguf_str *out);
/* The key's value if it is an array (of any element type), else NULL. */
const gguf_value *gguf_get_array(const gguf_file *f, const char *key);

/* Element j of an array value (j < count). Numeric conversion as for the getters;
 * gguf_array_f64 of a non-numeric array returns 0. */
int64_t gguf_array_i64(const gguf_value *arr, uint64_t j);
double gguf_array_f64(const gguf_value *arr, uint64_t j);
gguf_str gguf_array_str(const gguf_value *arr, uint64_t j);

/* Tensors, in file order. */
int64_t gguf_tensor_count(const gguf_file *f);
const gguf_tensor *gguf_tensor_at(const gguf_file *f, int64_t i);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name); /* NULL if absent */
int64_t gguf_tensor_elements(const gguf_tensor *t);

const char *gguf_value_type_name(gguf_value_type t);
/* Compares a gguf_str with a C string. */
bool gguf_str_eq(gguf_str s, const char *cstr);

/* ---- Writer ------------------------------------------------------------------------
 * Builds a version-3 file in memory order: header, key/values, tensor infos, padding to
 * the alignment, then each tensor's data padded to the alignment. The alignment is
 * GGUF_DEFAULT_ALIGNMENT unless a "general.alignment" UINT32 key is added.
 * Keys, strings and array payloads are copied when added; tensor data is borrowed and must
 * stay valid until the file is written. The writer does not reject duplicate names (tests
 * use it to build invalid files); the reader does. */
typedef struct gguf_writer gguf_writer;

gguf_writer *gguf_writer_new(void); /* NULL on allocation failure */
void gguf_writer_free(gguf_writer *w);

strata_status gguf_writer_add_u8(gguf_writer *w, const char *key, uint8_t v);
strata_status gguf_writer_add_i8(gguf_writer *w, const char *key, int8_t v);
strata_status gguf_writer_add_u16(gguf_writer *w, const char *key, uint16_t v);
strata_status gguf_writer_add_i16(gguf_writer *w, const char *key, int16_t v);
strata_status gguf_writer_add_u32(gguf_writer *w, const char *key, uint32_t v);
strata_status gguf_writer_add_i32(gguf_writer *w, const char *key, int32_t v);
strata_status gguf_writer_add_u64(gguf_writer *w, const char *key, uint64_t v);
strata_status gguf_writer_add_i64(gguf_writer *w, const char *key, int64_t v);
strata_status gguf_writer_add_f32(gguf_writer *w, const char *key, float v);
strata_status gguf_writer_add_f64(gguf_writer *w, const char *key, double v);
strata_status gguf_writer_add_bool(gguf_writer *w, const char *key, bool v);
strata_status gguf_writer_add_str(gguf_writer *w, const char *key, const char *v);
strata_status gguf_writer_add_strn(gguf_writer *w, const char *key, const char *v, size_t len);
/* A numeric or bool array: `data` holds count elements of elem_type in host (LE) order. */
strata_status gguf_writer_add_array(gguf_writer *w, const char *key, gguf_value_type elem_type,
                                    const void *data, uint64_t count);
strata_status gguf_writer_add_str_array(gguf_writer *w, const char *key, const char *const *strs,
                                        uint64_t count);
/* Copies key `key` (any type) from an open file. */
strata_status gguf_writer_copy_kv(gguf_writer *w, const gguf_file *src, int64_t i);

/* Adds a tensor; ne has n_dims entries. `data` (bytes as computed from type and shape) is
 * borrowed until write; it may be NULL to write zeros. */
strata_status gguf_writer_add_tensor(gguf_writer *w, const char *name, strata_type type,
                                     uint32_t n_dims, const int64_t *ne, const void *data);

/* Writes atomically: a temporary file in the same folder, fsync, then rename over path. */
strata_status gguf_writer_write_file(gguf_writer *w, const char *path);
/* Writes to a malloc'd buffer the caller frees. */
strata_status gguf_writer_write_memory(gguf_writer *w, void **out, size_t *out_size);

#endif
