/* The repacked weight layouts (see repack.h). */
#include "backend/cpu/repack.h"

#include <string.h>

#include "backend/cpu/threadpool.h"
#include "core/status.h"

_Static_assert(REPACK_Q4K_QS + 8 * QK_K / 2 == REPACK_Q4K_GROUP_BLOCK, "q4_K x8: parts fill the group block");
_Static_assert(REPACK_Q40_QS + 8 * QK4_0 / 2 == REPACK_Q40_GROUP_BLOCK, "q4_0 x8: parts fill the group block");

bool cpu_repack_applies(strata_type type, int64_t rows, int64_t cols) {
    if (rows < 8 || cols <= 0) return false;
    return (type == STRATA_TYPE_Q4_K && cols % QK_K == 0) || (type == STRATA_TYPE_Q4_0 && cols % QK4_0 == 0);
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

static void q4_0_group_block(const block_q4_0 *const rows[8], uint8_t *o) {
    for (int r = 0; r < 8; r++) {
        memcpy(o + 2 * r, &rows[r]->d, 2);
        for (int m = 0; m < 4; m++) memcpy(o + REPACK_Q40_QS + 32 * m + 4 * r, rows[r]->qs + 4 * m, 4);
    }
}

void cpu_repack_q4_0_row_block(const uint8_t *o, int r, block_q4_0 *k) {
    memcpy(&k->d, o + 2 * r, 2);
    for (int m = 0; m < 4; m++) memcpy(k->qs + 4 * m, o + REPACK_Q40_QS + 32 * m + 4 * r, 4);
}

typedef struct {
    strata_type type;
    const uint8_t *src;
    uint8_t *dst;
    int64_t nblocks, groups; /* blocks per row */
    size_t row_bytes;
} repack_job;

enum { REPACK_GROUPS_PER_ITEM = 32 };

static void repack_groups(void *ctx, int64_t item, int tid) {
    (void)tid;
    const repack_job *j = ctx;
    const int64_t g0 = item * REPACK_GROUPS_PER_ITEM;
    const int64_t g1 = g0 + REPACK_GROUPS_PER_ITEM < j->groups ? g0 + REPACK_GROUPS_PER_ITEM : j->groups;
    for (int64_t g = g0; g < g1; g++) {
        const uint8_t *rows[8];
        for (int r = 0; r < 8; r++) rows[r] = j->src + (size_t)(8 * g + r) * j->row_bytes;
        uint8_t *out = j->dst + (size_t)g * 8 * j->row_bytes;
        for (int64_t i = 0; i < j->nblocks; i++) {
            if (j->type == STRATA_TYPE_Q4_K) {
                const block_q4_K *blocks[8];
                for (int r = 0; r < 8; r++) blocks[r] = (const block_q4_K *)rows[r] + i;
                q4_k_group_block(blocks, out + (size_t)i * REPACK_Q4K_GROUP_BLOCK);
            } else {
                const block_q4_0 *blocks[8];
                for (int r = 0; r < 8; r++) blocks[r] = (const block_q4_0 *)rows[r] + i;
                q4_0_group_block(blocks, out + (size_t)i * REPACK_Q40_GROUP_BLOCK);
            }
        }
    }
}

void cpu_repack(strata_type type, const void *src, void *dst, int64_t rows, int64_t cols, int n_threads) {
    STRATA_ASSERT(cpu_repack_applies(type, rows, cols));
    repack_job j = {.type = type, .src = src, .dst = dst, .groups = rows / 8};
    j.nblocks = cols / (type == STRATA_TYPE_Q4_K ? QK_K : QK4_0);
    j.row_bytes = strata_type_row_bytes(type, cols);
    cpu_parallel_for(n_threads, (j.groups + REPACK_GROUPS_PER_ITEM - 1) / REPACK_GROUPS_PER_ITEM, repack_groups, &j);
    /* the rows past the last whole group, as they are */
    const size_t grouped = (size_t)j.groups * 8 * j.row_bytes;
    memcpy(j.dst + grouped, j.src + grouped, (size_t)(rows - j.groups * 8) * j.row_bytes);
}
