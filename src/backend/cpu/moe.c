/* Mixture of experts on the cpu kind (backend/cpu/moe.h).
 *
 * Routing: per token, the softmax of its router logits in double precision, the n_used
 * largest probabilities by a selection that keeps the lower expert id first among equals,
 * optionally renormalised to sum to 1 (Mixtral and Qwen3-MoE do; the softmax over all
 * experts then the renormalisation is the same as a softmax over the chosen logits).
 *
 * Routed products: the (token, slot) rows routed to each expert are gathered into one
 * contiguous block, multiplied by that expert's matrix with cpu_matmul (one product per
 * expert that has rows, so a prompt's tokens share each expert's weights as a batch), and
 * scattered back. Experts without rows are never read: a decode step reads n_used experts'
 * weights, not all of them. The work area holds the gathered inputs and outputs, the row
 * lists and cpu_matmul's own work. */
#include "backend/cpu/moe.h"

#include <math.h>
#include <string.h>

#include "backend/cpu/matmul.h"

static size_t round64(size_t b) { return (b + 63) & ~(size_t)63; }

size_t cpu_matmul_id_work_bytes(strata_type wtype, int64_t rows, int64_t cols, int32_t n_rows) {
    const size_t f = sizeof(float), nr = (size_t)(n_rows > 0 ? n_rows : 0);
    return round64(nr * (size_t)cols * f) + round64(nr * (size_t)rows * f) + round64(nr * sizeof(int32_t)) +
           round64(cpu_matmul_work_bytes(wtype, cols, n_rows));
}

void cpu_moe_route(const float *logits, int32_t n, int32_t n_expert, int32_t n_used, bool norm, int32_t *ids,
                   float *weights) {
    for (int32_t t = 0; t < n; t++) {
        const float *l = logits + (size_t)t * n_expert;
        int32_t *id = ids + (size_t)t * n_used;
        float *w = weights + (size_t)t * n_used;
        float mx = l[0];
        for (int32_t e = 1; e < n_expert; e++) mx = l[e] > mx ? l[e] : mx;
        double sum = 0;
        for (int32_t e = 0; e < n_expert; e++) sum += exp((double)l[e] - mx);
        /* selection: the largest logit not yet taken, lower id first among equals */
        for (int32_t s = 0; s < n_used; s++) {
            int32_t best = -1;
            for (int32_t e = 0; e < n_expert; e++) {
                bool taken = false;
                for (int32_t q = 0; q < s; q++) taken = taken || id[q] == e;
                if (!taken && (best < 0 || l[e] > l[best])) best = e;
            }
            id[s] = best;
            w[s] = (float)(exp((double)l[best] - mx) / sum);
        }
        if (norm) {
            double tot = 0;
            for (int32_t s = 0; s < n_used; s++) tot += w[s];
            for (int32_t s = 0; s < n_used; s++) w[s] = (float)(w[s] / tot);
        }
    }
}

void cpu_matmul_id(const backend_matrix *w, int32_t n_expert, const float *x, bool x_per_slot, const int32_t *ids,
                   int32_t n, int32_t n_used, float *y, void *work, int n_threads) {
    const int64_t rows = w->rows, cols = w->cols;
    const int32_t total = n * n_used;
    const size_t f = sizeof(float);
    uint8_t *p = work;
    float *xg = (float *)p;
    p += round64((size_t)total * cols * f);
    float *yg = (float *)p;
    p += round64((size_t)total * rows * f);
    int32_t *list = (int32_t *)p;
    p += round64((size_t)total * sizeof(int32_t));
    void *mwork = p;
    const size_t expert_bytes = strata_type_row_bytes(w->type, cols) * (size_t)rows;
    for (int32_t e = 0; e < n_expert; e++) {
        int32_t m = 0;
        for (int32_t r = 0; r < total; r++)
            if (ids[r] == e) list[m++] = r;
        if (m == 0) continue;
        for (int32_t i = 0; i < m; i++) {
            const float *src = x + (size_t)(x_per_slot ? list[i] : list[i] / n_used) * cols;
            memcpy(xg + (size_t)i * cols, src, (size_t)cols * f);
        }
        cpu_matmul(w->type, (const uint8_t *)w->data + (size_t)e * expert_bytes, rows, cols, xg, m, yg, mwork,
                   n_threads);
        for (int32_t i = 0; i < m; i++) memcpy(y + (size_t)list[i] * rows, yg + (size_t)i * rows, (size_t)rows * f);
    }
}

void cpu_moe_combine(const float *y, const float *weights, int32_t n, int32_t n_used, int64_t dim, float *out) {
    for (int32_t t = 0; t < n; t++) {
        float *o = out + (size_t)t * dim;
        for (int64_t d = 0; d < dim; d++) o[d] = 0.0f;
        for (int32_t s = 0; s < n_used; s++) {
            const float ws = weights[(size_t)t * n_used + s];
            const float *r = y + ((size_t)t * n_used + s) * dim;
            for (int64_t d = 0; d < dim; d++) o[d] += ws * r[d];
        }
    }
}
