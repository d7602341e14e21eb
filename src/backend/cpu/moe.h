/* The cpu kind's mixture-of-experts ops (backend/ops.h: moe_route, matmul_id, moe_combine,
 * matmul_id_work_bytes). Results depend on the shapes and the routing only, never on the
 * thread count. */
#ifndef STRATA_BACKEND_CPU_MOE_H
#define STRATA_BACKEND_CPU_MOE_H

#include "backend/ops.h"

size_t cpu_matmul_id_work_bytes(strata_type wtype, int64_t rows, int64_t cols, int32_t n_rows);
void cpu_moe_route(const float *logits, int32_t n, int32_t n_expert, int32_t n_used, bool norm, int32_t *ids,
                   float *weights);
void cpu_matmul_id(const backend_matrix *w, int32_t n_expert, const float *x, bool x_per_slot, const int32_t *ids,
                   int32_t n, int32_t n_used, float *y, void *work, int n_threads);
void cpu_moe_combine(const float *y, const float *weights, int32_t n, int32_t n_used, int64_t dim, float *out);

#endif
