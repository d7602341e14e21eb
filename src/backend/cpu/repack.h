/* Weights repacked at load time for the CPU kernels (owned by backend/cpu).
 *
 * Q4_K "x8": rows in groups of 8. Group g occupies the same bytes as its 8 rows do in Q4_K
 * (8 * row_bytes, at the same offset), super-block after super-block; super-block i of the
 * group is 1152 bytes (8 x 144, the same as the rows' blocks):
 *     [   0,   16)  d of rows 0-7 (fp16)
 *     [  16,   32)  dmin of rows 0-7 (fp16)
 *     [  32,  128)  the rows' 12 packed scale bytes as three vectors of 32-bit lanes:
 *                   lane r of vector v = row r's scale bytes 4v .. 4v+3
 *     [ 128, 1152)  quants: 32 bytes at 128 + 256 j + 32 m (j < 4, m < 8) hold in lane r
 *                   row r's qs[32 j + 4 m .. 32 j + 4 m + 3]: low nibbles are elements
 *                   4m .. 4m+3 of sub-block 2j, high nibbles those of sub-block 2j+1.
 * The bytes are Q4_K's own, only moved: one vpmaddubsw of a masked vector against four
 * broadcast activation bytes then serves all eight rows, and the scales of all eight rows
 * decode in one set of vector operations (kernels_x86.inc). The single-token tile of the
 * plain layout spends about half its operations on shuffles and per-row scale decoding;
 * this one does not, so generation stays memory-bound on two cores (docs/performance.md).
 * Rows past the last whole group keep the Q4_K layout.
 *
 * Q4_0 "x8", the same idea for 32-element blocks: block b of a group is 144 bytes (8 x 18):
 *     [  0,  16)  d of rows 0-7 (fp16)
 *     [ 16, 144)  4 x 32 bytes V[m]: lane r holds row r's qs[4m .. 4m+3]: low nibbles are
 *                 elements 4m .. 4m+3, high nibbles elements 16+4m .. 16+4m+3.
 *
 * Every kernel table (scalar, AVX2, AVX-512) has a tile for each layout (cpu_kernel.tile_x8,
 * tested against the plain layout in test_matmul). The CPU copies the matrices that have one
 * (cpu_repack_applies) into its arena at load time (the op table's matrix_relayout and
 * matrix_upload, called by model/context.c), and the planner counts
 * them there (planner/profile.c). */
#ifndef STRATA_BACKEND_CPU_REPACK_H
#define STRATA_BACKEND_CPU_REPACK_H

#include <stdbool.h>
#include <stdint.h>

#include "tensor/blocks.h"
#include "tensor/type.h"

/* Bytes of one group's super-block in the Q4_K x8 layout, and the offsets of its parts. */
enum {
    REPACK_Q4K_GROUP_BLOCK = 8 * (int)sizeof(block_q4_K),
    REPACK_Q4K_DMIN = 16,
    REPACK_Q4K_SCALES = 32,
    REPACK_Q4K_QS = 128,
};

enum { REPACK_Q40_GROUP_BLOCK = 8 * (int)sizeof(block_q4_0), REPACK_Q40_QS = 16 };

/* Whether a matrix of this type and shape (rows x cols) has a repacked layout. */
bool cpu_repack_applies(strata_type type, int64_t rows, int64_t cols);

/* Writes the repacked form of `rows` rows of `cols` elements at src into dst (the same size,
 * not overlapping), on up to n_threads threads of the pool. Only where cpu_repack_applies. */
void cpu_repack(strata_type type, const void *src, void *dst, int64_t rows, int64_t cols, int n_threads);

/* Row r's (r < 8) block back in the GGUF layout of `type` (a block_q4_K or block_q4_0 at out),
 * from its group's block in the x8 layout (the scalar tiles' reading of the layout, and the
 * tests' inverse). */
void cpu_repack_row_block(strata_type type, const uint8_t *group_block, int r, void *out);

#endif
