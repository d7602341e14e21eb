/* The repacked weight layouts (see repack.h). */
#include "backend/cpu/repack.h"

#include <string.h>

#include "core/status.h"

_Static_assert(REPACK_Q4K_QS + 8 * QK_K / 2 == REPACK_Q4K_GROUP_BLOCK, "q4_K x8: parts fill the group block");

bool cpu_repack_applies(strata_type type, int64_t rows, int64_t cols) {
    return type == STRATA_TYPE_Q4_K && rows >= 8 && cols > 0 && cols % QK_K == 0;
}

static void q4_k_group_block(const block_q4_K *const rows[8], uint8_t *o) {
    for (int r = 0; r < 8; r++) {
        const block_q4_K *k = rows[r];
        memcpy(o + 2 * r, &k->d, 2);
        memcpy(o + REPACK_Q4K_DMIN + 2 * r, &k->dmin, 2);
        for (int v = 0; v < 3; v++) memcpy(o + REPACK_Q4K_SCALES + 32 * v + 4 * r, k->scales + 4 * v, 4);
        for (int j = 0; j < 4; j++)
            for (int m = 0; m < 8; m++) memcpy(o + REPACK_Q4K_QS + 256 * j + 32 * m + 4 * r, k->qs + 32 * j + 4 * m, 4);
    }
}

void cpu_repack_q4_k_row_block(const uint8_t *o, int r, block_q4_K *k) {
    memcpy(&k->d, o + 2 * r, 2);
    memcpy(&k->dmin, o + REPACK_Q4K_DMIN + 2 * r, 2);
    for (int v = 0; v < 3; v++) memcpy(k->scales + 4 * v, o + REPACK_Q4K_SCALES + 32 * v + 4 * r, 4);
    for (int j = 0; j < 4; j++)
        for (int m = 0; m < 8; m++) memcpy(k->qs + 32 * j + 4 * m, o + REPACK_Q4K_QS + 256 * j + 32 * m + 4 * r, 4);
}

void cpu_repack(strata_type type, const void *src, void *dst, int64_t rows, int64_t cols) {
    STRATA_ASSERT(cpu_repack_applies(type, rows, cols));
    const int64_t nsb = cols / QK_K;
    const size_t ws = (size_t)nsb * sizeof(block_q4_K);
    const int64_t groups = rows / 8;
    for (int64_t g = 0; g < groups; g++)
        for (int64_t i = 0; i < nsb; i++) {
            const block_q4_K *blocks[8];
            for (int r = 0; r < 8; r++)
                blocks[r] = (const block_q4_K *)((const uint8_t *)src + (size_t)(8 * g + r) * ws) + i;
            q4_k_group_block(blocks, (uint8_t *)dst + (size_t)g * 8 * ws + (size_t)i * REPACK_Q4K_GROUP_BLOCK);
        }
    /* the rows past the last whole group, as they are */
    memcpy((uint8_t *)dst + (size_t)groups * 8 * ws, (const uint8_t *)src + (size_t)groups * 8 * ws,
           (size_t)(rows - groups * 8) * ws);
}
