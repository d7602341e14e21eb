/* The repacked weight layouts (see repack.h). */
#include "backend/cpu/repack.h"

#include <string.h>

#include "backend/cpu/threadpool.h"
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

typedef struct {
    const uint8_t *src;
    uint8_t *dst;
    int64_t nsb, groups;
    size_t row_bytes;
} repack_job;

enum { REPACK_GROUPS_PER_ITEM = 32 };

static void repack_groups(void *ctx, int64_t item, int tid) {
    (void)tid;
    const repack_job *j = ctx;
    const int64_t g0 = item * REPACK_GROUPS_PER_ITEM;
    const int64_t g1 = g0 + REPACK_GROUPS_PER_ITEM < j->groups ? g0 + REPACK_GROUPS_PER_ITEM : j->groups;
    for (int64_t g = g0; g < g1; g++)
        for (int64_t i = 0; i < j->nsb; i++) {
            const block_q4_K *blocks[8];
            for (int r = 0; r < 8; r++) blocks[r] = (const block_q4_K *)(j->src + (size_t)(8 * g + r) * j->row_bytes) + i;
            q4_k_group_block(blocks, j->dst + (size_t)g * 8 * j->row_bytes + (size_t)i * REPACK_Q4K_GROUP_BLOCK);
        }
}

void cpu_repack(strata_type type, const void *src, void *dst, int64_t rows, int64_t cols, int n_threads) {
    STRATA_ASSERT(cpu_repack_applies(type, rows, cols));
    repack_job j = {.src = src, .dst = dst, .nsb = cols / QK_K, .groups = rows / 8};
    j.row_bytes = (size_t)j.nsb * sizeof(block_q4_K);
    cpu_parallel_for(n_threads, (j.groups + REPACK_GROUPS_PER_ITEM - 1) / REPACK_GROUPS_PER_ITEM, repack_groups, &j);
    /* the rows past the last whole group, as they are */
    const size_t grouped = (size_t)j.groups * 8 * j.row_bytes;
    memcpy(j.dst + grouped, j.src + grouped, (size_t)(rows - j.groups * 8) * j.row_bytes);
}
