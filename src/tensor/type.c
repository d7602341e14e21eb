/* Type table; block sizes checked against ggml's ggml.c type_traits and the GGUF spec. */
#include "tensor/type.h"

#include <strings.h>

#define QK_K 256

static const strata_type_info type_table[STRATA_TYPE_COUNT] = {
    [STRATA_TYPE_F32] = {"F32", 1, 4, false},
    [STRATA_TYPE_F16] = {"F16", 1, 2, false},
    [STRATA_TYPE_Q4_0] = {"Q4_0", 32, 2 + 16, true},
    [STRATA_TYPE_Q4_1] = {"Q4_1", 32, 2 + 2 + 16, true},
    [STRATA_TYPE_Q5_0] = {"Q5_0", 32, 2 + 4 + 16, true},
    [STRATA_TYPE_Q5_1] = {"Q5_1", 32, 2 + 2 + 4 + 16, true},
    [STRATA_TYPE_Q8_0] = {"Q8_0", 32, 2 + 32, true},
    [STRATA_TYPE_Q8_1] = {"Q8_1", 32, 2 + 2 + 32, true},
    [STRATA_TYPE_Q2_K] = {"Q2_K", QK_K, QK_K / 16 + QK_K / 4 + 2 + 2, true},
    [STRATA_TYPE_Q3_K] = {"Q3_K", QK_K, QK_K / 8 + QK_K / 4 + 12 + 2, true},
    [STRATA_TYPE_Q4_K] = {"Q4_K", QK_K, 2 + 2 + 12 + QK_K / 2, true},
    [STRATA_TYPE_Q5_K] = {"Q5_K", QK_K, 2 + 2 + 12 + QK_K / 8 + QK_K / 2, true},
    [STRATA_TYPE_Q6_K] = {"Q6_K", QK_K, QK_K / 2 + QK_K / 4 + QK_K / 16 + 2, true},
    [STRATA_TYPE_Q8_K] = {"Q8_K", QK_K, 4 + QK_K + QK_K / 16 * 2, true},
    [STRATA_TYPE_IQ2_XXS] = {"IQ2_XXS", QK_K, 2 + QK_K / 8 * 2, true},
    [STRATA_TYPE_IQ2_XS] = {"IQ2_XS", QK_K, 2 + QK_K / 8 * 2 + QK_K / 32, true},
    [STRATA_TYPE_IQ3_XXS] = {"IQ3_XXS", QK_K, 2 + 3 * QK_K / 8, true},
    [STRATA_TYPE_IQ1_S] = {"IQ1_S", QK_K, 2 + QK_K / 8 + QK_K / 16, true},
    [STRATA_TYPE_IQ4_NL] = {"IQ4_NL", 32, 2 + 16, true},
    [STRATA_TYPE_IQ3_S] = {"IQ3_S", QK_K, 2 + QK_K / 4 + QK_K / 32 + QK_K / 8 + QK_K / 64, true},
    [STRATA_TYPE_IQ2_S] = {"IQ2_S", QK_K, 2 + QK_K / 4 + QK_K / 32 + QK_K / 32, true},
    [STRATA_TYPE_IQ4_XS] = {"IQ4_XS", QK_K, 2 + 2 + QK_K / 64 + QK_K / 2, true},
    [STRATA_TYPE_I8] = {"I8", 1, 1, false},
    [STRATA_TYPE_I16] = {"I16", 1, 2, false},
    [STRATA_TYPE_I32] = {"I32", 1, 4, false},
    [STRATA_TYPE_I64] = {"I64", 1, 8, false},
    [STRATA_TYPE_F64] = {"F64", 1, 8, false},
    [STRATA_TYPE_IQ1_M] = {"IQ1_M", QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32, true},
    [STRATA_TYPE_BF16] = {"BF16", 1, 2, false},
    [STRATA_TYPE_TQ1_0] = {"TQ1_0", QK_K, (QK_K - 4 * QK_K / 64) / 5 + QK_K / 64 + 2, true},
    [STRATA_TYPE_TQ2_0] = {"TQ2_0", QK_K, QK_K / 4 + 2, true},
    [STRATA_TYPE_MXFP4] = {"MXFP4", 32, 1 + 16, true},
};

const strata_type_info *strata_type_info_get(uint32_t type_id) {
    if (type_id >= STRATA_TYPE_COUNT || type_table[type_id].name == NULL) return NULL;
    return &type_table[type_id];
}

const char *strata_type_name(uint32_t type_id) {
    const strata_type_info *info = strata_type_info_get(type_id);
    return info ? info->name : "?";
}

bool strata_type_from_name(const char *name, strata_type *out) {
    for (uint32_t id = 0; id < STRATA_TYPE_COUNT; id++) {
        if (type_table[id].name && strcasecmp(type_table[id].name, name) == 0) {
            *out = (strata_type)id;
            return true;
        }
    }
    return false;
}

bool strata_type_row_ok(strata_type type, int64_t n_elems) {
    const strata_type_info *info = strata_type_info_get(type);
    return info && n_elems >= 0 && n_elems % info->block_elems == 0;
}

size_t strata_type_row_bytes(strata_type type, int64_t n_elems) {
    if (!strata_type_row_ok(type, n_elems)) return 0;
    const strata_type_info *info = strata_type_info_get(type);
    return (size_t)(n_elems / info->block_elems) * info->block_bytes;
}
