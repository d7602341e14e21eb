/* The GGUF tensor type table: every type id that appears in GGUF files, with its name,
 * elements per block and bytes per block (facts of the format, as ggml defines them).
 * The ids are the on-disk values and never change; gaps are ids ggml has retired. */
#ifndef STRATA_TENSOR_TYPE_H
#define STRATA_TENSOR_TYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    STRATA_TYPE_F32 = 0,
    STRATA_TYPE_F16 = 1,
    STRATA_TYPE_Q4_0 = 2,
    STRATA_TYPE_Q4_1 = 3,
    /* 4, 5: Q4_2, Q4_3, removed from the format */
    STRATA_TYPE_Q5_0 = 6,
    STRATA_TYPE_Q5_1 = 7,
    STRATA_TYPE_Q8_0 = 8,
    STRATA_TYPE_Q8_1 = 9,
    STRATA_TYPE_Q2_K = 10,
    STRATA_TYPE_Q3_K = 11,
    STRATA_TYPE_Q4_K = 12,
    STRATA_TYPE_Q5_K = 13,
    STRATA_TYPE_Q6_K = 14,
    STRATA_TYPE_Q8_K = 15,
    STRATA_TYPE_IQ2_XXS = 16,
    STRATA_TYPE_IQ2_XS = 17,
    STRATA_TYPE_IQ3_XXS = 18,
    STRATA_TYPE_IQ1_S = 19,
    STRATA_TYPE_IQ4_NL = 20,
    STRATA_TYPE_IQ3_S = 21,
    STRATA_TYPE_IQ2_S = 22,
    STRATA_TYPE_IQ4_XS = 23,
    STRATA_TYPE_I8 = 24,
    STRATA_TYPE_I16 = 25,
    STRATA_TYPE_I32 = 26,
    STRATA_TYPE_I64 = 27,
    STRATA_TYPE_F64 = 28,
    STRATA_TYPE_IQ1_M = 29,
    STRATA_TYPE_BF16 = 30,
    /* 31-33: Q4_0_4_4, Q4_0_4_8, Q4_0_8_8, removed (repacking is done at load time now) */
    STRATA_TYPE_TQ1_0 = 34,
    STRATA_TYPE_TQ2_0 = 35,
    /* 36-38: IQ4_NL_4_4, IQ4_NL_4_8, IQ4_NL_8_8, removed */
    STRATA_TYPE_MXFP4 = 39,
    STRATA_TYPE_COUNT = 40
} strata_type;

typedef struct {
    const char *name;       /* as llama.cpp prints it: "Q4_K", "F16", ... */
    uint32_t block_elems;   /* elements per block (1 for plain scalars) */
    uint32_t block_bytes;   /* bytes per block */
    bool quantized;         /* block-quantized (block_elems > 1) */
} strata_type_info;

/* The table entry for an on-disk type id, or NULL if the id is unknown or retired. */
const strata_type_info *strata_type_info_get(uint32_t type_id);

/* Name of a type id ("?" if unknown). */
const char *strata_type_name(uint32_t type_id);

/* Looks a type up by name, case-insensitively ("q4_k" -> STRATA_TYPE_Q4_K).
 * Returns false if no type has that name. */
bool strata_type_from_name(const char *name, strata_type *out);

/* Bytes taken by `n_elems` elements of one row. The caller must have checked that
 * n_elems is a multiple of the block size (strata_type_row_ok); returns 0 otherwise. */
size_t strata_type_row_bytes(strata_type type, int64_t n_elems);

/* True if a row of n_elems elements is whole blocks of this type. */
bool strata_type_row_ok(strata_type type, int64_t n_elems);

#endif
