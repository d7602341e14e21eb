/* The cpu kind's KV store and attention over the cache (see attention.c and the contract of
 * kv_store / attention in backend/ops.h). work: cpu_attention_work_bytes(s, n) bytes; the
 * result depends on the shapes only, not on n_threads. */
#ifndef STRATA_BACKEND_CPU_ATTENTION_H
#define STRATA_BACKEND_CPU_ATTENTION_H

#include "backend/ops.h"

size_t cpu_attention_work_bytes(const backend_attn_shape *s, int32_t n_batch);
void cpu_attention(const backend_attn_shape *s, const void *k_cache, const void *v_cache, const float *q, int32_t n,
                   int32_t pos, float *out, void *work, int n_threads);
void cpu_kv_store(const backend_attn_shape *s, void *k_cache, void *v_cache, const float *k, const float *v,
                  int32_t n, int32_t pos);

#endif
