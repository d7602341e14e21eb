/* The repacked weight layouts (see repack.h). */
#include "backend/cpu/repack.h"

#include <stddef.h>
#include <string.h>

#include "backend/cpu/threadpool.h"
#include "core/status.h"

_Static_assert(REPACK_Q4K_QS + 8 * QK_K / 2 == REPACK_Q4K_GROUP_BLOCK, "q4_K x8: parts fill the group block");
_Static_assert(REPACK_Q40_QS + 8 * QK4_0 / 2 == REPACK_Q40_GROUP_BLOCK, "q4_0 x8: parts fill the group block");

bool cpu_repack_applies(strata_type type, int64_t rows, int64_t cols) {
    if (rows < 8 || cols <= 0) return false;
    return (type == STRATA_TYPE_Q4_K && cols % QK_K == 0) || (type == STRATA_TYPE_Q4_0 && cols % QK4_0 == 0);
}

/* Each layout is written down once, as the moves of bytes between one row's block and its
 * group's block (row r of 8): repacking makes them one way (to_group), reading a row's block
 * back the other. Inlined with a constant direction, every move is a single load and store
 * (a table of spans copied in a loop made loading a third slower). */
#define INLINE static inline __attribute__((always_inline))

INLINE void move(bool to_group, uint8_t *dst, const uint8_t *src, size_t row_at, size_t group_at, size_t n) {
    memcpy(dst + (to_group ? group_at : row_at), src + (to_group ? row_at : group_at), n);
}

INLINE void q4_k_moves(bool to_group, uint8_t *dst, const uint8_t *src, int r) {
    move(to_group, dst, src, offsetof(block_q4_K, d), 2 * (size_t)r, 2);
    move(to_group, dst, src, offsetof(block_q4_K, dmin), REPACK_Q4K_DMIN + 2 * (size_t)r, 2);
    for (int v = 0; v < 3; v++)
        move(to_group, dst, src, offsetof(block_q4_K, scales) + 4 * v, REPACK_Q4K_SCALES + 32 * v + 4 * (size_t)r, 4);
    for (int j = 0; j < 4; j++)
        for (int m = 0; m < 8; m++)
            move(to_group, dst, src, offsetof(block_q4_K, qs) + 32 * j + 4 * m,
                 REPACK_Q4K_QS + 256 * j + 32 * m + 4 * (size_t)r, 4);
}

INLINE void q4_0_moves(bool to_group, uint8_t *dst, const uint8_t *src, int r) {
    move(to_group, dst, src, offsetof(block_q4_0, d), 2 * (size_t)r, 2);
    for (int m = 0; m < 4; m++)
        move(to_group, dst, src, offsetof(block_q4_0, qs) + 4 * m, REPACK_Q40_QS + 32 * m + 4 * (size_t)r, 4);
}

void cpu_repack_row_block(strata_type type, const uint8_t *group_block, int r, void *out) {
    STRATA_ASSERT(type == STRATA_TYPE_Q4_K || type == STRATA_TYPE_Q4_0);
    if (type == STRATA_TYPE_Q4_K) q4_k_moves(false, out, group_block, r);
    else q4_0_moves(false, out, group_block, r);
}

typedef struct {
    strata_type type;
    const uint8_t *src;
    uint8_t *dst;
    int64_t nblocks, groups; /* blocks per row */
    size_t row_bytes, block_bytes;
} repack_job;

enum { REPACK_GROUPS_PER_ITEM = 32 };

static void repack_groups(void *ctx, int64_t item, int tid) {
    (void)tid;
    const repack_job *j = ctx;
    const int64_t g0 = item * REPACK_GROUPS_PER_ITEM;
    const int64_t g1 = g0 + REPACK_GROUPS_PER_ITEM < j->groups ? g0 + REPACK_GROUPS_PER_ITEM : j->groups;
    for (int64_t g = g0; g < g1; g++)
        for (int64_t i = 0; i < j->nblocks; i++) {
            uint8_t *group_block = j->dst + (size_t)g * 8 * j->row_bytes + (size_t)i * 8 * j->block_bytes;
            for (int r = 0; r < 8; r++) {
                const uint8_t *row_block = j->src + (size_t)(8 * g + r) * j->row_bytes + (size_t)i * j->block_bytes;
                if (j->type == STRATA_TYPE_Q4_K) q4_k_moves(true, group_block, row_block, r);
                else q4_0_moves(true, group_block, row_block, r);
            }
        }
}

void cpu_repack(strata_type type, const void *src, void *dst, int64_t rows, int64_t cols, int n_threads) {
    STRATA_ASSERT(cpu_repack_applies(type, rows, cols));
    repack_job j = {.type = type, .src = src, .dst = dst, .groups = rows / 8};
    j.nblocks = cols / (type == STRATA_TYPE_Q4_K ? QK_K : QK4_0);
    j.row_bytes = strata_type_row_bytes(type, cols);
    j.block_bytes = j.row_bytes / (size_t)j.nblocks;
    cpu_parallel_for(n_threads, (j.groups + REPACK_GROUPS_PER_ITEM - 1) / REPACK_GROUPS_PER_ITEM, repack_groups, &j);
    /* the rows past the last whole group, as they are */
    const size_t grouped = (size_t)j.groups * 8 * j.row_bytes;
    memcpy(j.dst + grouped, j.src + grouped, (size_t)(rows - j.groups * 8) * j.row_bytes);
}
