/* Writer -> reader round trips: every value type, arrays of every element type (and of
 * strings, and empty), and tensors of several types under several alignments. Layout is
 * checked against sizes computed here from the format description, not from the writer. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "proc.h"
#include "testdata.h"

/* ---- helpers ------------------------------------------------------------------------ */

static gguf_file *reopen(gguf_writer *w, void **buf) {
    size_t size = 0;
    assert_int_equal(gguf_writer_write_memory(w, buf, &size), STRATA_OK);
    gguf_file *f = NULL;
    strata_status st = gguf_open_memory(*buf, size, GGUF_OPEN_DEFAULT, &f);
    if (st != STRATA_OK) fail_msg("reader rejected the writer's output: %s", strata_last_error());
    assert_int_equal(gguf_file_size(f), size);
    return f;
}

static const gguf_value *value_of(const gguf_file *f, const char *key, gguf_value_type type) {
    const gguf_value *v = gguf_get(f, key);
    if (!v) fail_msg("key '%s' missing after round trip", key);
    assert_int_equal(v->type, type);
    return v;
}

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

/* ---- scalars ------------------------------------------------------------------------ */

static void test_scalars(void **state) {
    (void)state;
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    assert_int_equal(gguf_writer_add_u8(w, "s.u8", 0xAB), STRATA_OK);
    assert_int_equal(gguf_writer_add_i8(w, "s.i8", INT8_MIN), STRATA_OK);
    assert_int_equal(gguf_writer_add_u16(w, "s.u16", UINT16_MAX), STRATA_OK);
    assert_int_equal(gguf_writer_add_i16(w, "s.i16", INT16_MIN), STRATA_OK);
    assert_int_equal(gguf_writer_add_u32(w, "s.u32", 0xDEADBEEFu), STRATA_OK);
    assert_int_equal(gguf_writer_add_i32(w, "s.i32", INT32_MIN), STRATA_OK);
    assert_int_equal(gguf_writer_add_u64(w, "s.u64", UINT64_MAX), STRATA_OK);
    assert_int_equal(gguf_writer_add_i64(w, "s.i64", INT64_MIN), STRATA_OK);
    assert_int_equal(gguf_writer_add_f32(w, "s.f32", -1.0e-3f), STRATA_OK);
    assert_int_equal(gguf_writer_add_f64(w, "s.f64", 1.0e300), STRATA_OK);
    assert_int_equal(gguf_writer_add_f64(w, "s.negzero", -0.0), STRATA_OK);
    assert_int_equal(gguf_writer_add_bool(w, "s.true", true), STRATA_OK);
    assert_int_equal(gguf_writer_add_bool(w, "s.false", false), STRATA_OK);
    assert_int_equal(gguf_writer_add_str(w, "s.str", "hello"), STRATA_OK);
    assert_int_equal(gguf_writer_add_str(w, "s.empty", ""), STRATA_OK);
    assert_int_equal(gguf_writer_add_str(w, "s.utf8", "h\xc3\xa9llo \xe2\x9c\x93"), STRATA_OK);
    assert_int_equal(gguf_writer_add_strn(w, "s.nul", "a\0b", 3), STRATA_OK);

    void *buf = NULL;
    gguf_file *f = reopen(w, &buf);
    assert_int_equal(gguf_version(f), 3);
    assert_int_equal(gguf_kv_count(f), 17);
    assert_int_equal(gguf_tensor_count(f), 0);
    /* File order is kept. */
    assert_string_equal(gguf_kv_key(f, 0), "s.u8");
    assert_string_equal(gguf_kv_key(f, 16), "s.nul");
    assert_int_equal(gguf_find_key(f, "s.u64"), 6);
    assert_int_equal(gguf_find_key(f, "s.missing"), -1);
    assert_null(gguf_get(f, "s.missing"));

    assert_int_equal(value_of(f, "s.u8", GGUF_TYPE_UINT8)->u64, 0xAB);
    assert_int_equal(value_of(f, "s.i8", GGUF_TYPE_INT8)->i64, INT8_MIN);
    assert_int_equal(value_of(f, "s.u16", GGUF_TYPE_UINT16)->u64, UINT16_MAX);
    assert_int_equal(value_of(f, "s.i16", GGUF_TYPE_INT16)->i64, INT16_MIN);
    assert_int_equal(value_of(f, "s.u32", GGUF_TYPE_UINT32)->u64, 0xDEADBEEFu);
    assert_int_equal(value_of(f, "s.i32", GGUF_TYPE_INT32)->i64, INT32_MIN);
    assert_true(value_of(f, "s.u64", GGUF_TYPE_UINT64)->u64 == UINT64_MAX);
    assert_true(value_of(f, "s.i64", GGUF_TYPE_INT64)->i64 == INT64_MIN);
    assert_true(value_of(f, "s.f32", GGUF_TYPE_FLOAT32)->f64 == (double)-1.0e-3f);
    assert_true(value_of(f, "s.f64", GGUF_TYPE_FLOAT64)->f64 == 1.0e300);
    double nz = value_of(f, "s.negzero", GGUF_TYPE_FLOAT64)->f64;
    assert_true(nz == 0.0 && signbit(nz));
    assert_true(value_of(f, "s.true", GGUF_TYPE_BOOL)->b);
    assert_false(value_of(f, "s.false", GGUF_TYPE_BOOL)->b);
    assert_true(gguf_str_eq(value_of(f, "s.str", GGUF_TYPE_STRING)->str, "hello"));
    assert_int_equal(value_of(f, "s.empty", GGUF_TYPE_STRING)->str.len, 0);
    assert_true(gguf_str_eq(value_of(f, "s.utf8", GGUF_TYPE_STRING)->str, "h\xc3\xa9llo \xe2\x9c\x93"));
    gguf_str nul = value_of(f, "s.nul", GGUF_TYPE_STRING)->str;
    assert_int_equal(nul.len, 3);
    assert_memory_equal(nul.ptr, "a\0b", 3);

    /* Typed getters convert integers when the value fits, and refuse otherwise. */
    uint64_t u64 = 0;
    int64_t i64 = 0;
    uint32_t u32 = 0;
    float f32 = 0;
    bool b = false;
    gguf_str s;
    assert_true(gguf_get_u64(f, "s.u8", &u64) && u64 == 0xAB);
    assert_true(gguf_get_u32(f, "s.u16", &u32) && u32 == UINT16_MAX);
    assert_false(gguf_get_u32(f, "s.u64", &u32)); /* too large */
    assert_false(gguf_get_u64(f, "s.i8", &u64));  /* negative */
    assert_true(gguf_get_i64(f, "s.i8", &i64) && i64 == INT8_MIN);
    assert_true(gguf_get_i64(f, "s.u32", &i64) && i64 == 0xDEADBEEFll);
    assert_false(gguf_get_i64(f, "s.u64", &i64)); /* above INT64_MAX */
    assert_true(gguf_get_f32(f, "s.f32", &f32) && f32 == -1.0e-3f);
    assert_true(gguf_get_f32(f, "s.u16", &f32) && f32 == 65535.0f);
    assert_true(gguf_get_bool(f, "s.true", &b) && b);
    assert_false(gguf_get_bool(f, "s.u8", &b));
    assert_true(gguf_get_str(f, "s.str", &s) && gguf_str_eq(s, "hello"));
    assert_false(gguf_get_str(f, "s.u8", &s));
    assert_false(gguf_get_u64(f, "s.str", &u64));
    assert_false(gguf_get_u64(f, "s.missing", &u64));
    assert_null(gguf_get_array(f, "s.u8"));

    gguf_close(f);
    free(buf);
    gguf_writer_free(w);
}

/* ---- arrays ------------------------------------------------------------------------- */

static const uint8_t a_u8[] = {0, 1, 127, 128, 255};
static const int8_t a_i8[] = {INT8_MIN, -1, 0, 1, INT8_MAX};
static const uint16_t a_u16[] = {0, 1, 0x1234, 0x8000, UINT16_MAX};
static const int16_t a_i16[] = {INT16_MIN, -1, 0, 1, INT16_MAX};
static const uint32_t a_u32[] = {0, 1, 0x12345678u, 0x80000000u, UINT32_MAX};
static const int32_t a_i32[] = {INT32_MIN, -1, 0, 1, INT32_MAX};
static const uint64_t a_u64[] = {0, 1, 0x123456789abcdefull, 1ull << 62, 1ull << 53};
static const int64_t a_i64[] = {INT64_MIN, -1, 0, 1, INT64_MAX};
static const float a_f32[] = {-2.5f, 0.0f, 1.0e-30f, 3.0e38f, 0.1f};
static const double a_f64[] = {-2.5, 0.0, 1.0e-300, 1.0e300, 0.1};
static const uint8_t a_bool[] = {1, 0, 0, 1, 1};

typedef struct {
    const char *key;
    gguf_value_type type;
    const void *data;
    size_t elem_size;
} array_case;

static const array_case array_cases[] = {
    {"a.u8", GGUF_TYPE_UINT8, a_u8, 1},       {"a.i8", GGUF_TYPE_INT8, a_i8, 1},
    {"a.u16", GGUF_TYPE_UINT16, a_u16, 2},    {"a.i16", GGUF_TYPE_INT16, a_i16, 2},
    {"a.u32", GGUF_TYPE_UINT32, a_u32, 4},    {"a.i32", GGUF_TYPE_INT32, a_i32, 4},
    {"a.u64", GGUF_TYPE_UINT64, a_u64, 8},    {"a.i64", GGUF_TYPE_INT64, a_i64, 8},
    {"a.f32", GGUF_TYPE_FLOAT32, a_f32, 4},   {"a.f64", GGUF_TYPE_FLOAT64, a_f64, 8},
    {"a.bool", GGUF_TYPE_BOOL, a_bool, 1},
};
#define N_ARRAY_CASES (sizeof array_cases / sizeof array_cases[0])

/* The value of element j as the test data defines it (independent of the reader). */
static int64_t expected_i64(const array_case *c, size_t j) {
    switch (c->type) {
    case GGUF_TYPE_UINT8: return a_u8[j];
    case GGUF_TYPE_INT8: return a_i8[j];
    case GGUF_TYPE_UINT16: return a_u16[j];
    case GGUF_TYPE_INT16: return a_i16[j];
    case GGUF_TYPE_UINT32: return a_u32[j];
    case GGUF_TYPE_INT32: return a_i32[j];
    case GGUF_TYPE_UINT64: return (int64_t)a_u64[j];
    case GGUF_TYPE_INT64: return a_i64[j];
    case GGUF_TYPE_BOOL: return a_bool[j];
    default: return 0;
    }
}

static const char *const strs[] = {"", "a", "h\xc3\xa9llo", "two words", "<|end|>"};

static void test_arrays(void **state) {
    (void)state;
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    for (size_t i = 0; i < N_ARRAY_CASES; i++) {
        const array_case *c = &array_cases[i];
        assert_int_equal(gguf_writer_add_array(w, c->key, c->type, c->data, 5), STRATA_OK);
    }
    assert_int_equal(gguf_writer_add_str_array(w, "a.str", strs, 5), STRATA_OK);
    static const uint32_t one = 7;
    assert_int_equal(gguf_writer_add_array(w, "a.empty_u32", GGUF_TYPE_UINT32, &one, 0), STRATA_OK);
    assert_int_equal(gguf_writer_add_array(w, "a.empty_f64", GGUF_TYPE_FLOAT64, NULL, 0), STRATA_OK);
    assert_int_equal(gguf_writer_add_str_array(w, "a.empty_str", strs, 0), STRATA_OK);
    uint32_t big[1000];
    for (uint32_t j = 0; j < 1000; j++) big[j] = j * 2654435761u;
    assert_int_equal(gguf_writer_add_array(w, "a.big", GGUF_TYPE_UINT32, big, 1000), STRATA_OK);
    /* A string array is not a numeric array: the writer refuses it through add_array. */
    assert_int_not_equal(gguf_writer_add_array(w, "a.bad", GGUF_TYPE_STRING, strs, 1), STRATA_OK);

    void *buf = NULL;
    gguf_file *f = reopen(w, &buf);
    assert_int_equal(gguf_kv_count(f), N_ARRAY_CASES + 5);
    for (size_t i = 0; i < N_ARRAY_CASES; i++) {
        const array_case *c = &array_cases[i];
        const gguf_value *v = gguf_get_array(f, c->key);
        if (!v) fail_msg("array '%s' missing", c->key);
        assert_int_equal(v->arr.elem_type, c->type);
        assert_int_equal(v->arr.count, 5);
        assert_non_null(v->arr.raw);
        assert_memory_equal(v->arr.raw, c->data, 5 * c->elem_size);
        for (uint64_t j = 0; j < 5; j++) {
            if (c->type == GGUF_TYPE_FLOAT32) {
                assert_true(gguf_array_f64(v, j) == (double)a_f32[j]);
            } else if (c->type == GGUF_TYPE_FLOAT64) {
                assert_true(gguf_array_f64(v, j) == a_f64[j]);
            } else {
                assert_true(gguf_array_i64(v, j) == expected_i64(c, j));
                if (c->type != GGUF_TYPE_UINT64 && c->type != GGUF_TYPE_INT64) {
                    assert_true(gguf_array_f64(v, j) == (double)expected_i64(c, j));
                }
            }
        }
    }
    const gguf_value *sv = gguf_get_array(f, "a.str");
    assert_non_null(sv);
    assert_int_equal(sv->arr.elem_type, GGUF_TYPE_STRING);
    assert_int_equal(sv->arr.count, 5);
    for (uint64_t j = 0; j < 5; j++) assert_true(gguf_str_eq(gguf_array_str(sv, j), strs[j]));

    const gguf_value *e = gguf_get_array(f, "a.empty_u32");
    assert_non_null(e);
    assert_int_equal(e->arr.elem_type, GGUF_TYPE_UINT32);
    assert_int_equal(e->arr.count, 0);
    e = gguf_get_array(f, "a.empty_f64");
    assert_non_null(e);
    assert_int_equal(e->arr.elem_type, GGUF_TYPE_FLOAT64);
    assert_int_equal(e->arr.count, 0);
    e = gguf_get_array(f, "a.empty_str");
    assert_non_null(e);
    assert_int_equal(e->arr.elem_type, GGUF_TYPE_STRING);
    assert_int_equal(e->arr.count, 0);

    const gguf_value *bv = gguf_get_array(f, "a.big");
    assert_non_null(bv);
    assert_int_equal(bv->arr.count, 1000);
    for (uint64_t j = 0; j < 1000; j++) assert_true(gguf_array_i64(bv, j) == (int64_t)big[j]);
    assert_null(gguf_get(f, "a.bad"));

    /* Copying every key into a new writer reproduces the same bytes. */
    gguf_writer *w2 = gguf_writer_new();
    assert_non_null(w2);
    for (int64_t i = 0; i < gguf_kv_count(f); i++) assert_int_equal(gguf_writer_copy_kv(w2, f, i), STRATA_OK);
    void *buf2 = NULL;
    size_t size2 = 0;
    assert_int_equal(gguf_writer_write_memory(w2, &buf2, &size2), STRATA_OK);
    assert_int_equal(size2, gguf_file_size(f));
    assert_memory_equal(buf2, buf, size2);
    free(buf2);
    gguf_writer_free(w2);

    gguf_close(f);
    free(buf);
    gguf_writer_free(w);
}

/* Each accessor is defined on every array: numbers of a string array are 0, the string of a
 * numeric array is "", and floats that no int64 holds saturate (NaN gives 0) instead of the
 * undefined behaviour of a plain cast. */
static void test_array_cross_access(void **state) {
    (void)state;
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    const float fl[4] = {NAN, 1.0e30f, -1.0e30f, -7.9f};
    const double db[2] = {INFINITY, 1.0e300};
    assert_int_equal(gguf_writer_add_array(w, "x.f32", GGUF_TYPE_FLOAT32, fl, 4), STRATA_OK);
    assert_int_equal(gguf_writer_add_array(w, "x.f64", GGUF_TYPE_FLOAT64, db, 2), STRATA_OK);
    assert_int_equal(gguf_writer_add_str_array(w, "x.str", strs, 2), STRATA_OK);
    void *buf = NULL;
    gguf_file *f = reopen(w, &buf);
    const gguf_value *v = gguf_get_array(f, "x.f32");
    assert_true(gguf_array_i64(v, 0) == 0);
    assert_true(gguf_array_i64(v, 1) == INT64_MAX);
    assert_true(gguf_array_i64(v, 2) == INT64_MIN);
    assert_true(gguf_array_i64(v, 3) == -7); /* truncation toward zero, as a C cast */
    assert_true(isnan(gguf_array_f64(v, 0)));
    assert_int_equal(gguf_array_str(v, 0).len, 0);
    v = gguf_get_array(f, "x.f64");
    assert_true(gguf_array_i64(v, 0) == INT64_MAX);
    assert_true(gguf_array_i64(v, 1) == INT64_MAX);
    v = gguf_get_array(f, "x.str");
    assert_true(gguf_array_i64(v, 1) == 0);
    assert_true(gguf_array_f64(v, 1) == 0);
    assert_true(gguf_str_eq(gguf_array_str(v, 1), "a"));
    gguf_close(f);
    free(buf);
    gguf_writer_free(w);
}

/* Scalars copied through gguf_writer_copy_kv keep type and value, byte for byte. */
static void test_copy_scalars(void **state) {
    (void)state;
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    gguf_writer_add_u8(w, "c.u8", 200);
    gguf_writer_add_i8(w, "c.i8", -100);
    gguf_writer_add_u16(w, "c.u16", 60000);
    gguf_writer_add_i16(w, "c.i16", -30000);
    gguf_writer_add_u32(w, "c.u32", 4000000000u);
    gguf_writer_add_i32(w, "c.i32", -2000000000);
    gguf_writer_add_u64(w, "c.u64", 1ull << 63);
    gguf_writer_add_i64(w, "c.i64", -(1ll << 62));
    gguf_writer_add_f32(w, "c.f32", 1.0e-40f); /* a subnormal */
    gguf_writer_add_f64(w, "c.f64", -3.25);
    gguf_writer_add_bool(w, "c.bool", true);
    gguf_writer_add_strn(w, "c.str", "x\0y", 3);
    void *buf = NULL;
    gguf_file *f = reopen(w, &buf);
    gguf_writer *w2 = gguf_writer_new();
    assert_non_null(w2);
    for (int64_t i = 0; i < gguf_kv_count(f); i++) assert_int_equal(gguf_writer_copy_kv(w2, f, i), STRATA_OK);
    void *buf2 = NULL;
    size_t size2 = 0;
    assert_int_equal(gguf_writer_write_memory(w2, &buf2, &size2), STRATA_OK);
    assert_int_equal(size2, gguf_file_size(f));
    assert_memory_equal(buf2, buf, size2);
    free(buf2);
    gguf_writer_free(w2);
    gguf_close(f);
    free(buf);
    gguf_writer_free(w);
}

/* ---- tensors ------------------------------------------------------------------------ */

typedef struct {
    const char *name;
    strata_type type;
    uint32_t n_dims;
    int64_t ne[4];
    uint64_t bytes; /* from the format's block sizes, worked out by hand */
    bool zeros;     /* added with data NULL: the writer fills zeros */
} tensor_case;

static const tensor_case tensor_cases[] = {
    {"a.f32", STRATA_TYPE_F32, 2, {3, 5}, 3 * 5 * 4, false},
    {"b.f16", STRATA_TYPE_F16, 1, {7}, 7 * 2, false},
    {"c.q4_0", STRATA_TYPE_Q4_0, 2, {64, 3}, 2 * 18 * 3, false},        /* 32 per 18-byte block */
    {"d.q8_0", STRATA_TYPE_Q8_0, 3, {32, 2, 2}, 1 * 34 * 4, false},     /* 32 per 34-byte block */
    {"e.q4_k", STRATA_TYPE_Q4_K, 2, {256, 2}, 144 * 2, false},          /* 256 per 144 bytes */
    {"f.i32", STRATA_TYPE_I32, 4, {2, 2, 2, 2}, 16 * 4, false},
    {"g.bf16", STRATA_TYPE_BF16, 1, {1}, 2, false},
    {"h.q6_k", STRATA_TYPE_Q6_K, 1, {512}, 2 * 210, false},             /* 256 per 210 bytes */
    {"i.zeros", STRATA_TYPE_F32, 1, {5}, 20, true},
};
#define N_TENSOR_CASES (sizeof tensor_cases / sizeof tensor_cases[0])

/* Builds the tensor file for one alignment (0 = leave the default) and checks it. */
static void check_tensor_layout(uint32_t alignment, bool via_file) {
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    /* Header size worked out from the format: 24 bytes of header, then per key
     * 8 + len + 4 + value, per tensor 8 + len + 4 + 8 * n_dims + 4 + 8. */
    uint64_t header = 24;
    assert_int_equal(gguf_writer_add_str(w, "general.architecture", "test"), STRATA_OK);
    header += 8 + strlen("general.architecture") + 4 + 8 + 4;
    if (alignment) {
        assert_int_equal(gguf_writer_add_u32(w, "general.alignment", alignment), STRATA_OK);
        header += 8 + strlen("general.alignment") + 4 + 4;
    }
    uint64_t align = alignment ? alignment : 32;

    uint8_t *data[N_TENSOR_CASES];
    unsigned seed = 12345u + alignment;
    for (size_t i = 0; i < N_TENSOR_CASES; i++) {
        const tensor_case *c = &tensor_cases[i];
        data[i] = malloc(c->bytes);
        assert_non_null(data[i]);
        for (uint64_t k = 0; k < c->bytes; k++) {
            seed = seed * 1103515245u + 12345u;
            data[i][k] = (uint8_t)(seed >> 16);
        }
        assert_int_equal(gguf_writer_add_tensor(w, c->name, c->type, c->n_dims, c->ne,
                                                c->zeros ? NULL : data[i]),
                         STRATA_OK);
        header += 8 + strlen(c->name) + 4 + 8ull * c->n_dims + 4 + 8;
    }

    void *buf = NULL;
    size_t size = 0;
    gguf_file *f = NULL;
    char *dir = NULL, *path = NULL;
    if (via_file) {
        dir = tmpdir_make();
        assert_non_null(dir);
        path = tmpdir_path(dir, "t.gguf");
        assert_int_equal(gguf_writer_write_file(w, path), STRATA_OK);
        if (gguf_open(path, GGUF_OPEN_DEFAULT, &f) != STRATA_OK) fail_msg("%s", strata_last_error());
        size = gguf_file_size(f);
        buf = testdata_read_file(path, NULL);
        assert_non_null(buf);
    } else {
        f = reopen(w, &buf);
        size = gguf_file_size(f);
    }

    assert_int_equal(gguf_alignment(f), align);
    assert_int_equal(gguf_data_offset(f), align_up(header, align));
    assert_int_equal(gguf_data_offset(f) % align, 0);
    /* Padding between the header and the data is zeros. */
    for (uint64_t k = header; k < gguf_data_offset(f); k++) assert_int_equal(((uint8_t *)buf)[k], 0);
    assert_int_equal(gguf_tensor_count(f), N_TENSOR_CASES);

    uint64_t expect_offset = 0;
    for (size_t i = 0; i < N_TENSOR_CASES; i++) {
        const tensor_case *c = &tensor_cases[i];
        const gguf_tensor *t = gguf_tensor_at(f, (int64_t)i);
        assert_string_equal(t->name, c->name);
        assert_ptr_equal(gguf_find_tensor(f, c->name), t);
        assert_int_equal(t->type, c->type);
        assert_int_equal(t->n_dims, c->n_dims);
        int64_t elems = 1;
        for (uint32_t d = 0; d < 4; d++) {
            int64_t want = d < c->n_dims ? c->ne[d] : 1;
            assert_int_equal(t->ne[d], want);
            elems *= want;
        }
        assert_int_equal(gguf_tensor_elements(t), elems);
        assert_int_equal(t->bytes, c->bytes);
        assert_int_equal(t->offset, expect_offset);
        assert_int_equal(t->offset % align, 0);
        assert_non_null(t->data);
        assert_ptr_equal(t->data, (const uint8_t *)gguf_tensor_at(f, 0)->data - gguf_tensor_at(f, 0)->offset + t->offset);
        if (c->zeros) {
            for (uint64_t k = 0; k < c->bytes; k++) assert_int_equal(((const uint8_t *)t->data)[k], 0);
        } else {
            assert_memory_equal(t->data, data[i], c->bytes);
        }
        /* The bytes in the file itself, at data_offset + offset. */
        const uint8_t *in_file = (const uint8_t *)buf + gguf_data_offset(f) + t->offset;
        if (!c->zeros) assert_memory_equal(in_file, data[i], c->bytes);
        for (uint64_t k = c->bytes; k < align_up(c->bytes, align); k++) assert_int_equal(in_file[k], 0);
        expect_offset += align_up(c->bytes, align);
    }
    /* Every tensor, the last included, is padded to the alignment. */
    assert_int_equal(size, gguf_data_offset(f) + expect_offset);
    assert_null(gguf_find_tensor(f, "missing"));

    gguf_close(f);
    free(buf);
    if (dir) {
        free(path);
        tmpdir_remove(dir);
    }
    for (size_t i = 0; i < N_TENSOR_CASES; i++) free(data[i]);
    gguf_writer_free(w);
}

static void test_tensors_default_alignment(void **state) {
    (void)state;
    check_tensor_layout(0, false);
    check_tensor_layout(0, true);
}

static void test_tensors_other_alignments(void **state) {
    (void)state;
    static const uint32_t aligns[] = {1, 8, 64, 4096};
    for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
        check_tensor_layout(aligns[i], false);
        check_tensor_layout(aligns[i], true);
    }
}

/* A header-only open accepts a copy cut right after the header, with no tensor data. */
static void test_header_only(void **state) {
    (void)state;
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    const int64_t ne[2] = {64, 4};
    assert_int_equal(gguf_writer_add_tensor(w, "w", STRATA_TYPE_F32, 2, ne, NULL), STRATA_OK);
    assert_int_equal(gguf_writer_add_tensor(w, "v", STRATA_TYPE_Q8_0, 2, ne, NULL), STRATA_OK);
    void *buf = NULL;
    size_t size = 0;
    assert_int_equal(gguf_writer_write_memory(w, &buf, &size), STRATA_OK);
    gguf_file *f = NULL;
    assert_int_equal(gguf_open_memory(buf, size, GGUF_OPEN_DEFAULT, &f), STRATA_OK);
    uint64_t header_end = gguf_data_offset(f);
    gguf_close(f);
    assert_true(header_end < size);

    /* The full reader refuses the cut copy; the header-only reader takes it. */
    assert_int_not_equal(gguf_open_memory(buf, header_end, GGUF_OPEN_DEFAULT, &f), STRATA_OK);
    assert_int_equal(gguf_open_memory(buf, header_end, GGUF_OPEN_HEADER_ONLY, &f), STRATA_OK);
    assert_int_equal(gguf_tensor_count(f), 2);
    assert_null(gguf_tensor_at(f, 0)->data);
    assert_null(gguf_tensor_at(f, 1)->data);
    assert_int_equal(gguf_tensor_at(f, 1)->bytes, 2 * 34 * 4);
    gguf_close(f);
    free(buf);
    gguf_writer_free(w);
}

/* A file with no tensors and no keys is valid: just the 24-byte header. */
static void test_empty_file(void **state) {
    (void)state;
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    void *buf = NULL;
    size_t size = 0;
    assert_int_equal(gguf_writer_write_memory(w, &buf, &size), STRATA_OK);
    assert_int_equal(size, 24);
    gguf_file *f = NULL;
    assert_int_equal(gguf_open_memory(buf, size, GGUF_OPEN_DEFAULT, &f), STRATA_OK);
    assert_int_equal(gguf_kv_count(f), 0);
    assert_int_equal(gguf_tensor_count(f), 0);
    assert_int_equal(gguf_alignment(f), 32);
    gguf_close(f);
    free(buf);
    gguf_writer_free(w);
}

/* The writer refuses tensors it could not describe. */
static void test_writer_rejects_bad_tensors(void **state) {
    (void)state;
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    const int64_t ne_bad_row[1] = {48};
    const int64_t ne_zero[2] = {32, 0};
    const int64_t ne_ok[1] = {32};
    assert_int_not_equal(gguf_writer_add_tensor(w, "r", STRATA_TYPE_Q4_0, 1, ne_bad_row, NULL), STRATA_OK);
    assert_int_not_equal(gguf_writer_add_tensor(w, "z", STRATA_TYPE_F32, 2, ne_zero, NULL), STRATA_OK);
    assert_int_not_equal(gguf_writer_add_tensor(w, "d", STRATA_TYPE_F32, 0, ne_ok, NULL), STRATA_OK);
    assert_int_not_equal(gguf_writer_add_tensor(w, "d", STRATA_TYPE_F32, 5, ne_ok, NULL), STRATA_OK);
    assert_int_not_equal(gguf_writer_add_tensor(w, "t", (strata_type)4, 1, ne_ok, NULL), STRATA_OK);
    void *buf = NULL;
    size_t size = 0;
    assert_int_equal(gguf_writer_write_memory(w, &buf, &size), STRATA_OK);
    gguf_file *f = NULL;
    assert_int_equal(gguf_open_memory(buf, size, GGUF_OPEN_DEFAULT, &f), STRATA_OK);
    assert_int_equal(gguf_tensor_count(f), 0);
    gguf_close(f);
    free(buf);
    gguf_writer_free(w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_arrays),
        cmocka_unit_test(test_array_cross_access),
        cmocka_unit_test(test_copy_scalars),
        cmocka_unit_test(test_tensors_default_alignment),
        cmocka_unit_test(test_tensors_other_alignments),
        cmocka_unit_test(test_header_only),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_writer_rejects_bad_tensors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
