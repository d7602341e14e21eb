/* Broken files, one per validation rule of the reader: each is made by our writer, then
 * corrupted at a field located here from the format description, and must be rejected with
 * its own message naming the byte offset (where the rule concerns one field) and the key or
 * tensor. Then every truncation of a small valid file must fail cleanly. Run under ASan and
 * UBSan by `make asan`, so "cleanly" includes no out-of-bounds read. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf/gguf.h"
#include "testdata.h"

/* ---- the base file ------------------------------------------------------------------ */

enum {
    BASE_DUP_KEY = 1 << 0,     /* "test.u32" twice */
    BASE_DUP_TENSOR = 1 << 1,  /* "t.first" twice */
    BASE_ALIGN_48 = 1 << 2,    /* general.alignment = 48, not a power of two */
    BASE_ALIGN_U64 = 1 << 3,   /* general.alignment stored as uint64 */
};

static const float first_data[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static uint8_t q4_data[36];
static const float last_data[8] = {-1, -2, -3, -4, -5, -6, -7, -8};

/* Keys: general.architecture, test.u32, test.str, test.arr (uint32 x3), test.strs ("ab","cd").
 * Tensors: t.first F32 [8,2] (64 bytes at 0), t.q4 Q4_0 [64] (2 blocks of 18 = 36 bytes at 64,
 * padded to 64), t.last F32 [8] (32 bytes at 128). The data ends on an alignment boundary, so no strict
 * prefix of the file is a valid file. */
static uint8_t *make_base(unsigned flags, size_t *size) {
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    assert_int_equal(gguf_writer_add_str(w, "general.architecture", "test"), STRATA_OK);
    if (flags & BASE_ALIGN_48) assert_int_equal(gguf_writer_add_u32(w, "general.alignment", 48), STRATA_OK);
    if (flags & BASE_ALIGN_U64) assert_int_equal(gguf_writer_add_u64(w, "general.alignment", 32), STRATA_OK);
    assert_int_equal(gguf_writer_add_u32(w, "test.u32", 7), STRATA_OK);
    assert_int_equal(gguf_writer_add_str(w, "test.str", "hello"), STRATA_OK);
    static const uint32_t arr[3] = {1, 2, 3};
    assert_int_equal(gguf_writer_add_array(w, "test.arr", GGUF_TYPE_UINT32, arr, 3), STRATA_OK);
    static const char *const strs[2] = {"ab", "cd"};
    assert_int_equal(gguf_writer_add_str_array(w, "test.strs", strs, 2), STRATA_OK);
    if (flags & BASE_DUP_KEY) assert_int_equal(gguf_writer_add_u32(w, "test.u32", 8), STRATA_OK);

    const int64_t ne_first[2] = {8, 2}, ne_q4[1] = {64}, ne_last[1] = {8};
    assert_int_equal(gguf_writer_add_tensor(w, "t.first", STRATA_TYPE_F32, 2, ne_first, first_data), STRATA_OK);
    assert_int_equal(gguf_writer_add_tensor(w, "t.q4", STRATA_TYPE_Q4_0, 1, ne_q4, q4_data), STRATA_OK);
    if (flags & BASE_DUP_TENSOR) {
        assert_int_equal(gguf_writer_add_tensor(w, "t.first", STRATA_TYPE_F32, 2, ne_first, first_data), STRATA_OK);
    }
    assert_int_equal(gguf_writer_add_tensor(w, "t.last", STRATA_TYPE_F32, 1, ne_last, last_data), STRATA_OK);
    void *buf = NULL;
    assert_int_equal(gguf_writer_write_memory(w, &buf, size), STRATA_OK);
    gguf_writer_free(w);
    return buf;
}

/* ---- locating fields ---------------------------------------------------------------- */

/* Offset of the n-th (0-based) length-prefixed string `name` (its 8-byte length field). The
 * length prefix makes "test.str" not match inside "test.strs". */
static size_t find_name_nth(const uint8_t *buf, size_t size, const char *name, int nth) {
    uint64_t len = strlen(name);
    uint8_t pat[64];
    assert_true(len + 8 <= sizeof pat);
    memcpy(pat, &len, 8);
    memcpy(pat + 8, name, len);
    for (size_t i = 0; i + 8 + len <= size; i++) {
        if (memcmp(buf + i, pat, 8 + len) == 0 && nth-- == 0) return i;
    }
    fail_msg("name '%s' not found in the base file", name);
    return 0;
}
static size_t find_name(const uint8_t *buf, size_t size, const char *name) {
    return find_name_nth(buf, size, name, 0);
}

/* Key/value fields: [len 8][key][type 4][value...] */
static size_t kv_type_at(const uint8_t *b, size_t n, const char *key) { return find_name(b, n, key) + 8 + strlen(key); }
static size_t kv_value_at(const uint8_t *b, size_t n, const char *key) { return kv_type_at(b, n, key) + 4; }

/* Tensor info fields: [len 8][name][n_dims 4][ne 8 x n_dims][type 4][offset 8] */
static size_t ti_ndims_at(const uint8_t *b, size_t n, const char *name) { return find_name(b, n, name) + 8 + strlen(name); }
static uint32_t ti_ndims(const uint8_t *b, size_t n, const char *name) {
    uint32_t d;
    memcpy(&d, b + ti_ndims_at(b, n, name), 4);
    return d;
}
static size_t ti_ne_at(const uint8_t *b, size_t n, const char *name, uint32_t d) { return ti_ndims_at(b, n, name) + 4 + 8 * d; }
static size_t ti_type_at(const uint8_t *b, size_t n, const char *name) { return ti_ne_at(b, n, name, ti_ndims(b, n, name)); }
static size_t ti_offset_at(const uint8_t *b, size_t n, const char *name) { return ti_type_at(b, n, name) + 4; }

static void put_u32(uint8_t *b, size_t at, uint32_t v) { memcpy(b + at, &v, 4); }
static void put_u64(uint8_t *b, size_t at, uint64_t v) { memcpy(b + at, &v, 8); }

/* ---- the cases ---------------------------------------------------------------------- */

#define NO_OFFSET ((uint64_t)-1)

typedef struct {
    const char *name;
    unsigned base_flags;
    /* Corrupts buf in place (may shorten *size); returns the byte offset the message must
     * name, or NO_OFFSET where the rule is not about one field. */
    uint64_t (*corrupt)(uint8_t *buf, size_t *size);
    const char *rule;     /* the validation rule; cases of one rule may share words */
    const char *fragment; /* what the message must contain; no other rule's message has it */
    const char *subject;  /* key or tensor the message must name; NULL if none */
} broken_case;

static uint64_t c_none(uint8_t *b, size_t *n) { (void)b; (void)n; return NO_OFFSET; }

static uint64_t c_bad_magic(uint8_t *b, size_t *n) { (void)n; b[0] = 'X'; return 0; }
static uint64_t c_version_1(uint8_t *b, size_t *n) { (void)n; put_u32(b, 4, 1); return 4; }
static uint64_t c_version_4(uint8_t *b, size_t *n) { (void)n; put_u32(b, 4, 4); return 4; }
static uint64_t c_version_big_endian(uint8_t *b, size_t *n) { (void)n; put_u32(b, 4, 3u << 24); return 4; }
static uint64_t c_tensor_count_overflow(uint8_t *b, size_t *n) { (void)n; put_u64(b, 8, UINT64_MAX); return 8; }
static uint64_t c_tensor_count_exceeds(uint8_t *b, size_t *n) { (void)n; put_u64(b, 8, 1000); return 8; }
static uint64_t c_kv_count_overflow(uint8_t *b, size_t *n) { (void)n; put_u64(b, 16, 1ull << 63); return 16; }
static uint64_t c_kv_count_exceeds(uint8_t *b, size_t *n) { (void)n; put_u64(b, 16, 100); return 16; }

static uint64_t c_key_too_long(uint8_t *b, size_t *n) {
    size_t at = find_name(b, *n, "test.u32");
    put_u64(b, at, 1ull << 40);
    return at;
}
static uint64_t c_string_too_long(uint8_t *b, size_t *n) {
    size_t at = kv_value_at(b, *n, "test.str");
    put_u64(b, at, 1000000);
    return at;
}
static uint64_t c_array_string_too_long(uint8_t *b, size_t *n) {
    /* value: [elem type 4][count 8]["ab" 8+2]["cd" 8+2]: corrupt the second string's length */
    size_t at = kv_value_at(b, *n, "test.strs") + 4 + 8 + 10;
    put_u64(b, at, UINT64_MAX);
    return at;
}
static uint64_t c_array_count_exceeds(uint8_t *b, size_t *n) {
    size_t at = kv_value_at(b, *n, "test.arr");
    put_u64(b, at + 4, 1ull << 61);
    return at;
}
static uint64_t c_string_array_count_exceeds(uint8_t *b, size_t *n) {
    size_t at = kv_value_at(b, *n, "test.strs");
    put_u64(b, at + 4, 1ull << 40);
    return at;
}
static uint64_t c_unknown_value_type(uint8_t *b, size_t *n) {
    size_t at = kv_type_at(b, *n, "test.u32");
    put_u32(b, at, 13);
    return at;
}
static uint64_t c_unknown_elem_type(uint8_t *b, size_t *n) {
    size_t at = kv_value_at(b, *n, "test.arr");
    put_u32(b, at, 99);
    return at;
}
static uint64_t c_nested_array(uint8_t *b, size_t *n) {
    size_t at = kv_value_at(b, *n, "test.arr");
    put_u32(b, at, GGUF_TYPE_ARRAY);
    return at;
}
static uint64_t c_nul_in_key(uint8_t *b, size_t *n) {
    size_t at = find_name(b, *n, "test.u32");
    b[at + 8 + 4] = '\0'; /* "test\0u32" */
    return at;
}
static uint64_t c_nul_in_tensor_name(uint8_t *b, size_t *n) {
    size_t at = find_name(b, *n, "t.q4");
    b[at + 8 + 1] = '\0';
    return at;
}
static uint64_t c_retired_tensor_type(uint8_t *b, size_t *n) {
    size_t at = ti_type_at(b, *n, "t.q4");
    put_u32(b, at, 5); /* Q4_3, removed from the format */
    return at;
}
static uint64_t c_unknown_tensor_type(uint8_t *b, size_t *n) {
    size_t at = ti_type_at(b, *n, "t.q4");
    put_u32(b, at, 1000);
    return at;
}
static uint64_t c_zero_dims(uint8_t *b, size_t *n) {
    put_u32(b, ti_ndims_at(b, *n, "t.first"), 0);
    return find_name(b, *n, "t.first");
}
static uint64_t c_five_dims(uint8_t *b, size_t *n) {
    put_u32(b, ti_ndims_at(b, *n, "t.first"), 5);
    return find_name(b, *n, "t.first");
}
static uint64_t c_zero_dimension(uint8_t *b, size_t *n) {
    size_t at = ti_ne_at(b, *n, "t.first", 1);
    put_u64(b, at, 0);
    return at;
}
static uint64_t c_elements_overflow(uint8_t *b, size_t *n) {
    put_u64(b, ti_ne_at(b, *n, "t.first", 0), 1ull << 40);
    size_t at = ti_ne_at(b, *n, "t.first", 1);
    put_u64(b, at, 1ull << 40);
    return at;
}
static uint64_t c_dimension_above_int64(uint8_t *b, size_t *n) {
    size_t at = ti_ne_at(b, *n, "t.first", 0);
    put_u64(b, at, UINT64_MAX);
    return at;
}
static uint64_t c_bytes_overflow(uint8_t *b, size_t *n) {
    /* 2^62 F32 elements fit in int64, but 2^64 bytes do not fit in uint64 */
    put_u64(b, ti_ne_at(b, *n, "t.first", 0), 1ull << 62);
    put_u64(b, ti_ne_at(b, *n, "t.first", 1), 1);
    return NO_OFFSET;
}
static uint64_t c_row_not_whole_blocks(uint8_t *b, size_t *n) {
    put_u64(b, ti_ne_at(b, *n, "t.q4", 0), 48); /* Q4_0 blocks hold 32 */
    return find_name(b, *n, "t.q4");
}
static uint64_t c_misaligned(uint8_t *b, size_t *n) {
    size_t at = ti_offset_at(b, *n, "t.q4");
    put_u64(b, at, 64 + 4);
    return at;
}
static uint64_t c_overlap(uint8_t *b, size_t *n) {
    put_u64(b, ti_offset_at(b, *n, "t.q4"), 32); /* inside t.first's [0, 64) */
    return NO_OFFSET;
}
static uint64_t c_out_of_file(uint8_t *b, size_t *n) {
    put_u64(b, ti_offset_at(b, *n, "t.last"), 1ull << 20);
    /* the message names where the data would be in the file */
    uint64_t data_offset = (ti_offset_at(b, *n, "t.last") + 8 + 31) / 32 * 32;
    return data_offset + (1ull << 20);
}
static uint64_t c_data_cut_short(uint8_t *b, size_t *n) {
    (void)b;
    uint64_t data_offset = (ti_offset_at(b, *n, "t.last") + 8 + 31) / 32 * 32;
    *n -= 4; /* t.last's last 4 bytes are gone */
    return data_offset + 128;
}
static uint64_t c_offset_overflow(uint8_t *b, size_t *n) {
    put_u64(b, ti_offset_at(b, *n, "t.last"), UINT64_MAX - 31); /* aligned, but + 32 bytes wraps */
    return NO_OFFSET;
}
static uint64_t c_data_section_past_end(uint8_t *b, size_t *n) {
    (void)b;
    size_t header_end = ti_offset_at(b, *n, "t.last") + 8;
    assert_true(header_end % 32 != 0); /* else there is no padding to cut into */
    *n = header_end;
    return NO_OFFSET;
}
static uint64_t c_dup_key(uint8_t *b, size_t *n) { return find_name_nth(b, *n, "test.u32", 1); }
static uint64_t c_dup_tensor(uint8_t *b, size_t *n) { return find_name_nth(b, *n, "t.first", 1); }

static const broken_case cases[] = {
    {"bad magic", 0, c_bad_magic, "magic", "bad magic", NULL},
    {"version 1", 0, c_version_1, "version", "unsupported GGUF version 1", NULL},
    {"version 4", 0, c_version_4, "version", "unsupported GGUF version 4", NULL},
    {"big-endian version", 0, c_version_big_endian, "version", "big-endian", NULL},
    {"tensor count overflows", 0, c_tensor_count_overflow, "count", "tensor count 18446744073709551615", NULL},
    {"tensor count exceeds file", 0, c_tensor_count_exceeds, "count", "tensor count 1000", NULL},
    {"kv count overflows", 0, c_kv_count_overflow, "count", "key/value count 9223372036854775808", NULL},
    {"kv count exceeds file", 0, c_kv_count_exceeds, "count", "key/value count 100", NULL},
    {"array count exceeds file", 0, c_array_count_exceeds, "count", "elements of 4 bytes", "test.arr"},
    {"string array count exceeds file", 0, c_string_array_count_exceeds, "count", "strings, more than", "test.strs"},
    {"key longer than file", 0, c_key_too_long, "string length", "longer than the", NULL},
    {"string longer than file", 0, c_string_too_long, "string length", "string value", "test.str"},
    {"array string longer than file", 0, c_array_string_too_long, "string length", "array string", "test.strs"},
    {"unknown value type", 0, c_unknown_value_type, "value type", "unknown value type 13", "test.u32"},
    {"unknown array element type", 0, c_unknown_elem_type, "value type", "unknown value type 99 for the elements", "test.arr"},
    {"nested array", 0, c_nested_array, "nested", "nested arrays", "test.arr"},
    {"NUL in key", 0, c_nul_in_key, "NUL", "contains a NUL byte", NULL},
    {"NUL in tensor name", 0, c_nul_in_tensor_name, "NUL", "contains a NUL byte", NULL},
    {"alignment not a power of two", BASE_ALIGN_48, c_none, "alignment", "not a power of two", "general.alignment"},
    {"alignment of the wrong type", BASE_ALIGN_U64, c_none, "alignment", "expected uint32", "general.alignment"},
    {"retired tensor type", 0, c_retired_tensor_type, "tensor type", "unknown type id 5", "t.q4"},
    {"unknown tensor type", 0, c_unknown_tensor_type, "tensor type", "unknown type id 1000", "t.q4"},
    {"zero dimensions", 0, c_zero_dims, "dims", "has 0 dimensions", "t.first"},
    {"five dimensions", 0, c_five_dims, "dims", "has 5 dimensions", "t.first"},
    {"dimension of zero", 0, c_zero_dimension, "zero", "dimension 1 of zero", "t.first"},
    {"element count overflows", 0, c_elements_overflow, "elements", "element count overflows", "t.first"},
    {"dimension above INT64_MAX", 0, c_dimension_above_int64, "elements", "element count overflows", "t.first"},
    {"byte size overflows", 0, c_bytes_overflow, "bytes", "byte size overflows", "t.first"},
    {"row not whole blocks", 0, c_row_not_whole_blocks, "row", "block size", "t.q4"},
    {"misaligned data", 0, c_misaligned, "misaligned", "the alignment", "t.q4"},
    {"overlapping data", 0, c_overlap, "overlap", "overlaps tensor", "t.q4"},
    {"data out of the file", 0, c_out_of_file, "out of file", "past the end of the file", "t.last"},
    {"data cut short", 0, c_data_cut_short, "out of file", "past the end of the file", "t.last"},
    {"data offset overflows", 0, c_offset_overflow, "out of file", "offset 18446744073709551584 overflows", "t.last"},
    {"data section past the end", 0, c_data_section_past_end, "out of file", "data section would start", NULL},
    {"duplicate key", BASE_DUP_KEY, c_dup_key, "duplicate key", "duplicate key", "test.u32"},
    {"duplicate tensor name", BASE_DUP_TENSOR, c_dup_tensor, "duplicate tensor", "duplicate tensor name", "t.first"},
};
#define N_CASES (sizeof cases / sizeof cases[0])

/* True if msg names "offset N" with N not followed by another digit. */
static bool names_offset(const char *msg, uint64_t offset) {
    char want[40];
    snprintf(want, sizeof want, "offset %" PRIu64, offset);
    for (const char *p = strstr(msg, want); p; p = strstr(p + 1, want)) {
        char next = p[strlen(want)];
        if (next < '0' || next > '9') return true;
    }
    return false;
}

static void test_base_file_is_valid(void **state) {
    (void)state;
    size_t size;
    uint8_t *buf = make_base(0, &size);
    gguf_file *f = NULL;
    if (gguf_open_memory(buf, size, GGUF_OPEN_DEFAULT, &f) != STRATA_OK) fail_msg("%s", strata_last_error());
    assert_int_equal(gguf_tensor_count(f), 3);
    assert_int_equal(gguf_find_tensor(f, "t.q4")->bytes, 36);
    assert_int_equal(gguf_find_tensor(f, "t.last")->offset, 128);
    assert_int_equal(size, gguf_data_offset(f) + 160);
    gguf_close(f);
    free(buf);
}

static void test_each_rule_has_its_message(void **state) {
    (void)state;
    for (size_t i = 0; i < N_CASES; i++) {
        const broken_case *c = &cases[i];
        size_t size;
        uint8_t *buf = make_base(c->base_flags, &size);
        uint64_t offset = c->corrupt(buf, &size);
        gguf_file *f = NULL;
        strata_status st = gguf_open_memory(buf, size, GGUF_OPEN_DEFAULT, &f);
        const char *msg = strata_last_error();
        if (st == STRATA_OK) fail_msg("case '%s': accepted", c->name);
        assert_null(f);
        if (!strstr(msg, c->fragment)) fail_msg("case '%s': message \"%s\" lacks \"%s\"", c->name, msg, c->fragment);
        if (strchr(msg, '\n')) fail_msg("case '%s': message is more than one line", c->name);
        if (offset != NO_OFFSET && !names_offset(msg, offset)) {
            fail_msg("case '%s': message \"%s\" does not name offset %" PRIu64, c->name, msg, offset);
        }
        if (c->subject) {
            char quoted[80];
            snprintf(quoted, sizeof quoted, "'%s'", c->subject);
            if (!strstr(msg, quoted)) fail_msg("case '%s': message \"%s\" does not name %s", c->name, msg, quoted);
        }
        free(buf);
    }
}

/* Different rules must not share a message: a case's fragment matches no message of a case
 * under another rule. */
static void test_messages_are_distinct(void **state) {
    (void)state;
    char *msgs[N_CASES];
    for (size_t i = 0; i < N_CASES; i++) {
        size_t size;
        uint8_t *buf = make_base(cases[i].base_flags, &size);
        cases[i].corrupt(buf, &size);
        gguf_file *f = NULL;
        assert_int_not_equal(gguf_open_memory(buf, size, GGUF_OPEN_DEFAULT, &f), STRATA_OK);
        msgs[i] = strdup(strata_last_error());
        free(buf);
    }
    for (size_t i = 0; i < N_CASES; i++) {
        for (size_t j = 0; j < N_CASES; j++) {
            if (strcmp(cases[i].rule, cases[j].rule) == 0) continue;
            if (strstr(msgs[j], cases[i].fragment)) {
                fail_msg("fragment \"%s\" of case '%s' also matches case '%s': \"%s\"", cases[i].fragment,
                         cases[i].name, cases[j].name, msgs[j]);
            }
        }
    }
    for (size_t i = 0; i < N_CASES; i++) free(msgs[i]);
}

/* Every strict prefix of a valid file is rejected: the base file's data ends exactly on the
 * alignment, so there is no trailing padding whose loss would be harmless. Each prefix is
 * copied into its own allocation so that ASan sees any read past its end. */
static void test_every_truncation_fails(void **state) {
    (void)state;
    size_t size;
    uint8_t *buf = make_base(0, &size);
    for (size_t n = 0; n < size; n++) {
        uint8_t *prefix = malloc(n ? n : 1);
        assert_non_null(prefix);
        memcpy(prefix, buf, n);
        gguf_file *f = NULL;
        strata_status st = gguf_open_memory(prefix, n, GGUF_OPEN_DEFAULT, &f);
        if (st == STRATA_OK) fail_msg("prefix of %zu of %zu bytes accepted", n, size);
        const char *msg = strata_last_error();
        if (msg[0] == '\0' || strchr(msg, '\n')) fail_msg("prefix of %zu bytes: bad message \"%s\"", n, msg);
        free(prefix);
    }
    free(buf);
}

/* Header-only opens still apply every header rule: layout faults are not excused. */
static void test_header_only_still_checks_layout(void **state) {
    (void)state;
    uint64_t (*const faults[])(uint8_t *, size_t *) = {c_misaligned, c_overlap, c_offset_overflow, c_dup_tensor};
    const unsigned flags[] = {0, 0, 0, BASE_DUP_TENSOR};
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) {
        size_t size;
        uint8_t *buf = make_base(flags[i], &size);
        faults[i](buf, &size);
        gguf_file *f = NULL;
        assert_int_not_equal(gguf_open_memory(buf, size, GGUF_OPEN_HEADER_ONLY, &f), STRATA_OK);
        free(buf);
    }
}

/* The same rules through gguf_open on a real file: the message then starts with the path. */
static void test_open_names_path(void **state) {
    (void)state;
    size_t size;
    uint8_t *buf = make_base(0, &size);
    c_bad_magic(buf, &size);
    char path[] = "/tmp/strata-broken-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *fp = fdopen(fd, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, size, fp), size);
    assert_int_equal(fclose(fp), 0);
    gguf_file *f = NULL;
    assert_int_not_equal(gguf_open(path, GGUF_OPEN_DEFAULT, &f), STRATA_OK);
    assert_non_null(strstr(strata_last_error(), path));
    assert_non_null(strstr(strata_last_error(), "bad magic"));
    assert_int_not_equal(gguf_open("/nonexistent/strata.gguf", GGUF_OPEN_DEFAULT, &f), STRATA_OK);
    assert_non_null(strstr(strata_last_error(), "/nonexistent/strata.gguf"));
    /* An empty file is a file without a magic. */
    fp = fopen(path, "wb");
    assert_non_null(fp);
    fclose(fp);
    assert_int_not_equal(gguf_open(path, GGUF_OPEN_DEFAULT, &f), STRATA_OK);
    assert_non_null(strstr(strata_last_error(), "bad magic"));
    unlink(path);
    free(buf);
}

int main(void) {
    for (size_t i = 0; i < sizeof q4_data; i++) q4_data[i] = (uint8_t)(i * 7 + 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base_file_is_valid),
        cmocka_unit_test(test_each_rule_has_its_message),
        cmocka_unit_test(test_messages_are_distinct),
        cmocka_unit_test(test_every_truncation_fails),
        cmocka_unit_test(test_header_only_still_checks_layout),
        cmocka_unit_test(test_open_names_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
