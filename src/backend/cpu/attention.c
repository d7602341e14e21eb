/* The cpu kind's KV store and attention over the cache (backend/ops.h: kv_store,
 * attention, attention_work_bytes).
 *
 * Scores of a block of query rows are one cpu_matmul with the cached key rows as the
 * "weights" (F32, F16 or Q8_0 rows, exactly like a weight matrix); the weighted sums of
 * value rows read an F32 or F16 cache where it is and a quantized cache through an F32 copy.
 *
 * Work is split over the thread pool so that models with few KV heads still use every
 * thread, and the split depends on the shapes only, never on the thread count, so results
 * do not either:
 *   - a batch: one pool item per (KV head, lane); a KV head's blocks of ATT_QCHUNK query
 *     rows are dealt to its lanes in turn, with at least ATT_MIN_ITEMS items in all;
 *   - a decode step over more than ATT_KCHUNK positions: one item per (KV head, chunk of
 *     ATT_KCHUNK positions), whose softmax terms and weighted sums are combined afterwards
 *     (otherwise a model with fewer KV heads than threads, Qwen2.5 with 2, leaves threads
 *     idle while the longest part of a long conversation's step runs). */
#include <math.h>
#include <string.h>

#include "backend/cpu/attention.h"
#include "backend/cpu/matmul.h"
#include "backend/cpu/threadpool.h"
#include "backend/cpu/vec.h"
#include "tensor/quant.h"

/* Query rows per attention block: bounds the score scratch to ATT_QCHUNK x n_ctx floats per
 * KV head whatever the batch is, while keeping cpu_matmul calls wide enough to be efficient. */
#define ATT_QCHUNK 32
#define ATT_KCHUNK 256
#define ATT_MIN_ITEMS 8

static size_t round64(size_t b) { return (b + 63) & ~(size_t)63; }

static int32_t att_kchunks(int32_t n_keys) { return (n_keys + ATT_KCHUNK - 1) / ATT_KCHUNK; }

static int32_t att_lanes(const backend_attn_shape *s) { return (ATT_MIN_ITEMS + s->n_head_kv - 1) / s->n_head_kv; }

static size_t head_row_bytes(const backend_attn_shape *s) { return strata_type_row_bytes(s->kv_type, s->head_dim); }

/* Whether attention reads the cache's value rows through an F32 copy (att_v): a quantized
 * cache's; F16 and F32 rows are read where they are. */
static bool values_widened(strata_type kv_type) { return kv_type != STRATA_TYPE_F16 && kv_type != STRATA_TYPE_F32; }

/* Per KV head: the bytes of its cpu_matmul work area (of a block of ATT_QCHUNK query rows,
 * or, in a split decode step, of att_kchunks(n_ctx) areas of one chunk's rows each), and of
 * its scores (ATT_QCHUNK rows of n_ctx, or a block per chunk). */
static size_t att_chunk_work_bytes(const backend_attn_shape *s) {
    const int32_t group = s->n_head / s->n_head_kv;
    return round64(cpu_matmul_work_bytes(s->kv_type, s->head_dim, group < ATT_QCHUNK ? group : ATT_QCHUNK));
}

static size_t att_head_work_bytes(const backend_attn_shape *s) {
    const size_t block = round64(cpu_matmul_work_bytes(s->kv_type, s->head_dim, ATT_QCHUNK));
    const size_t chunks = s->n_ctx > ATT_KCHUNK ? (size_t)att_kchunks(s->n_ctx) * att_chunk_work_bytes(s) : 0;
    return block > chunks ? block : chunks;
}

static size_t att_head_score_floats(int32_t n_ctx) {
    return (size_t)ATT_QCHUNK * (n_ctx > ATT_KCHUNK ? (size_t)att_kchunks(n_ctx) * ATT_KCHUNK : (size_t)n_ctx);
}

/* The work area, in the order it is carved. */
typedef struct {
    size_t v, q, s, work, po, pm, pl, ring;
} att_sizes;

static att_sizes att_layout(const backend_attn_shape *s) {
    const size_t f = sizeof(float);
    att_sizes z = {0};
    const size_t slots = (size_t)s->n_head_kv * att_lanes(s); /* (KV head, lane) */
    if (values_widened(s->kv_type)) z.v = round64((size_t)s->n_head_kv * s->n_ctx * s->head_dim * f);
    /* a ring whose visible positions wrap around its end: K and V rows gathered in position
     * order, so that the products see the rows a full cache would, in the same order */
    if (s->ring) z.ring = 2 * round64((size_t)s->n_head_kv * s->n_ctx * head_row_bytes(s));
    z.q = round64(slots * ATT_QCHUNK * s->head_dim * f);
    z.s = round64(slots * att_head_score_floats(s->n_ctx) * f);
    z.work = round64(slots * att_head_work_bytes(s));
    if (s->n_ctx > ATT_KCHUNK) {
        /* a split decode step's parts, per query head and chunk: weighted sums, maxima, sums */
        const size_t parts = (size_t)s->n_head * att_kchunks(s->n_ctx);
        z.po = round64(parts * s->head_dim * f);
        z.pm = round64(parts * f);
        z.pl = round64(parts * sizeof(double));
    }
    return z;
}

size_t cpu_attention_work_bytes(const backend_attn_shape *s, int32_t n_batch) {
    (void)n_batch; /* blocks of ATT_QCHUNK rows whatever the batch */
    att_sizes z = att_layout(s);
    return z.v + z.q + z.s + z.work + z.po + z.pm + z.pl + z.ring;
}

/* One call's view of the cache and its carved work area. */
typedef struct {
    const backend_attn_shape *s;
    const uint8_t *k_cache, *v_cache;
    const float *q;
    float *out;
    int32_t n, pos;
    int32_t pos_base; /* the position at row 0 of k_cache/v_cache (0 but for a ring) */
    size_t head_row;
    float *att_v, *att_q, *att_s, *att_po, *att_pm;
    double *att_pl;
    uint8_t *att_work;
    size_t att_work_stride; /* bytes per (KV head, lane) slot */
    uint8_t *ring_k, *ring_v; /* gathered rows of a wrapped ring */
} att_job;

static void att_job_init(att_job *j, const backend_attn_shape *s, const void *k_cache, const void *v_cache,
                         const float *q, int32_t n, int32_t pos, float *out, void *work) {
    att_sizes z = att_layout(s);
    uint8_t *w = work;
    memset(j, 0, sizeof *j);
    j->s = s;
    j->k_cache = k_cache;
    j->v_cache = v_cache;
    j->q = q;
    j->out = out;
    j->n = n;
    j->pos = pos;
    j->head_row = head_row_bytes(s);
    j->att_v = z.v ? (float *)w : NULL;
    w += z.v;
    j->att_q = (float *)w;
    w += z.q;
    j->att_s = (float *)w;
    w += z.s;
    j->att_work = w;
    w += z.work;
    j->att_po = z.po ? (float *)w : NULL;
    w += z.po;
    j->att_pm = z.pm ? (float *)w : NULL;
    w += z.pm;
    j->att_pl = z.pl ? (double *)w : NULL;
    w += z.pl;
    j->ring_k = z.ring ? w : NULL;
    j->ring_v = z.ring ? w + z.ring / 2 : NULL;
    j->att_work_stride = att_head_work_bytes(s);
}

/* Row `t` of KV head h's keys (or values) in the layer's cache. */
static const uint8_t *cache_row(const att_job *j, bool values, int32_t h, int32_t t) {
    return (values ? j->v_cache : j->k_cache) + ((size_t)h * j->s->n_ctx + (t - j->pos_base)) * j->head_row;
}

/* The value rows from row k0 of KV head h (vals: that row in the cache) as the weighted sums
 * read them: an F32 cache's where they are; NULL for an F16 cache, whose halves
 * cpu_vec_weighted_rows_f16 reads where they are (F16C widening them as it loads: TinyLlama
 * Q4_0, pp512 at a depth of 1400, 136 -> 140 tokens/s against widening every row into a
 * buffer first); a quantized cache's rows in the head's att_v rows, where dequantize_values
 * puts them. */
static const float *value_rows(const att_job *j, int32_t h, const uint8_t *vals, int32_t k0) {
    if (!values_widened(j->s->kv_type)) return j->s->kv_type == STRATA_TYPE_F32 ? (const float *)vals : NULL;
    return j->att_v + ((size_t)h * j->s->n_ctx + (k0 - j->pos_base)) * j->s->head_dim;
}

/* Dequantizes n value rows of a quantized cache from vals into their value_rows. */
static void dequantize_values(const att_job *j, int32_t h, const uint8_t *vals, int32_t k0, int32_t n) {
    float *buf = (float *)value_rows(j, h, vals, k0);
    const int32_t hd = j->s->head_dim;
    for (int32_t t = 0; t < n; t++)
        strata_dequantize_row(j->s->kv_type, vals + (size_t)t * j->head_row, buf + (size_t)t * hd, hd);
}

/* cpu_vec_weighted_rows over the value rows vf, or, where vf is NULL, over the halves at vals. */
static void weighted_values(const float *vf, const uint8_t *vals, const float *w, int64_t w_stride, int64_t nw,
                            int64_t n, int64_t hd, float *out, int64_t out_stride) {
    if (vf) cpu_vec_weighted_rows(w, w_stride, nw, vf, n, hd, out, out_stride);
    else cpu_vec_weighted_rows_f16(w, w_stride, nw, (const uint16_t *)vals, n, hd, out, out_stride);
}

/* The scale the softmax applies to a row of raw scores q.k: the shape's own, unless the
 * scores are soft-capped, which happens here (s -> cap * tanh(s * scale / cap)) and leaves
 * a scale of 1 for the softmax. */
static float att_prepare_scores(const backend_attn_shape *s, float *sc, int32_t len) {
    const float scale = s->scale > 0 ? s->scale : 1.0f / sqrtf((float)s->head_dim);
    if (!(s->softcap > 0)) return scale;
    const float cap = s->softcap;
    for (int32_t t = 0; t < len; t++) sc[t] = cap * tanhf(sc[t] * scale / cap);
    return 1.0f;
}

/* The first position the query at position p sees. */
static int32_t att_first_key(const backend_attn_shape *s, int32_t p) {
    return s->window > 0 && p - s->window + 1 > 0 ? p - s->window + 1 : 0;
}

/* Causal attention of the batch's queries over positions [0, pos + n) for KV head h and the
 * query heads that share it (grouped-query attention), this lane's blocks of query rows. */
static void attend_kv_head(const att_job *j, int32_t h, int32_t lane) {
    const backend_attn_shape *s = j->s;
    const int32_t hd = s->head_dim, n = j->n, pos = j->pos;
    const int32_t group = s->n_head / s->n_head_kv;
    /* rows from the first position held (pb: 0, or a ring's first visible position) */
    const int32_t pb = j->pos_base;
    const uint8_t *keys = cache_row(j, false, h, pb), *vals = cache_row(j, true, h, pb);
    const int32_t lanes = att_lanes(s), slot = h * lanes + lane;
    float *qg = j->att_q + (size_t)slot * ATT_QCHUNK * hd;
    float *sc = j->att_s + (size_t)slot * att_head_score_floats(s->n_ctx);
    void *work = j->att_work + (size_t)slot * j->att_work_stride;

    /* a quantized cache's rows were dequantized into att_v by widen_values */
    const float *vf = value_rows(j, h, vals, pb);

    /* Rows of the query block: (token i, head qh) pairs, token-major; this lane's blocks. */
    const int32_t total = n * group;
    for (int32_t r0 = lane * ATT_QCHUNK; r0 < total; r0 += lanes * ATT_QCHUNK) {
        int32_t nr = total - r0 < ATT_QCHUNK ? total - r0 : ATT_QCHUNK;
        /* Keys needed by this block: from the first token's first visible position up to
         * the last token's position; row r's scores for position k0 + t are at sc[r][t]. */
        int32_t last_tok = (r0 + nr - 1) / group;
        int32_t k0 = att_first_key(s, pos + r0 / group);
        int32_t n_keys = pos + last_tok + 1 - k0;
        for (int32_t r = 0; r < nr; r++) {
            int32_t i = (r0 + r) / group, qh = h * group + (r0 + r) % group;
            memcpy(qg + (size_t)r * hd, j->q + ((size_t)i * s->n_head + qh) * hd, (size_t)hd * sizeof(float));
        }
        cpu_matmul(s->kv_type, keys + (size_t)(k0 - pb) * j->head_row, n_keys, hd, qg, nr, sc, work, 1);
        for (int32_t r = 0; r < nr; r++) {
            /* causal: token i sees positions first .. pos + i (first > 0 in a sliding window) */
            const int32_t p = pos + (r0 + r) / group, first = att_first_key(s, p);
            float *row = sc + (size_t)r * n_keys;
            for (int32_t t = 0; t < first - k0; t++) row[t] = 0.0f;
            float *vis = row + (first - k0);
            const float scale = att_prepare_scores(s, vis, p + 1 - first);
            cpu_vec_softmax(vis, p + 1 - first, scale);
        }
        /* The block's rows of one token (consecutive query heads of this KV head) share
         * their keys and values: their weighted sums of value rows go together. */
        for (int32_t r = 0; r < nr;) {
            const int32_t i = (r0 + r) / group, ql = (r0 + r) % group, qh = h * group + ql;
            const int32_t m = group - ql < nr - r ? group - ql : nr - r; /* this token's rows here */
            const int32_t first = att_first_key(s, pos + i);
            weighted_values(vf ? vf + (size_t)(first - pb) * hd : NULL, vals + (size_t)(first - pb) * j->head_row,
                            sc + (size_t)r * n_keys + (first - k0), n_keys, m, pos + i + 1 - first, hd,
                            j->out + ((size_t)i * s->n_head + qh) * hd, hd);
            r += m;
        }
    }
}

/* Item h * lanes + lane. */
static void att_item(void *p, int64_t item, int tid) {
    (void)tid;
    const att_job *j = p;
    const int32_t lanes = att_lanes(j->s);
    attend_kv_head(j, (int32_t)(item / lanes), (int32_t)(item % lanes));
}

/* A quantized cache's value rows [0, pos + n) of KV head h, dequantized into its att_v rows
 * once for all the head's lanes. */
static void widen_values(void *p, int64_t h, int tid) {
    (void)tid;
    const att_job *j = p;
    const int32_t first = att_first_key(j->s, j->pos) > j->pos_base ? att_first_key(j->s, j->pos) : j->pos_base;
    dequantize_values(j, (int32_t)h, cache_row(j, true, (int32_t)h, first), first, j->pos + j->n - first);
}

/* One chunk of one KV head's positions in a split decode step (n = 1, the query at pos):
 * for each query head of the group, the chunk's softmax terms e^(s_t - m) (their maximum m
 * and total l) and the sum of value rows weighted by them, into the head's parts. Item
 * h * chunks + c. */
static void attend_chunk(void *p, int64_t item, int tid) {
    (void)tid;
    const att_job *j = p;
    const backend_attn_shape *s = j->s;
    const int32_t first = att_first_key(s, j->pos), n_kv = j->pos + 1 - first;
    const int32_t used = att_kchunks(n_kv), slots = att_kchunks(s->n_ctx);
    const int32_t h = (int32_t)(item / used), c = (int32_t)(item % used);
    const int32_t hd = s->head_dim, group = s->n_head / s->n_head_kv;
    const int32_t k0 = first + c * ATT_KCHUNK, kc = n_kv - c * ATT_KCHUNK < ATT_KCHUNK ? n_kv - c * ATT_KCHUNK : ATT_KCHUNK;
    const uint8_t *keys = cache_row(j, false, h, k0), *vals = cache_row(j, true, h, k0);
    const size_t slot = (size_t)h * att_lanes(s); /* the head's first lane's scratch */
    float *sc = j->att_s + slot * att_head_score_floats(s->n_ctx) + (size_t)c * ATT_QCHUNK * ATT_KCHUNK;
    void *work = j->att_work + slot * j->att_work_stride + (size_t)c * att_chunk_work_bytes(s);
    const float *vf = value_rows(j, h, vals, k0);
    if (values_widened(s->kv_type)) dequantize_values(j, h, vals, k0, kc);
    for (int32_t r0 = 0; r0 < group; r0 += ATT_QCHUNK) {
        const int32_t nr = group - r0 < ATT_QCHUNK ? group - r0 : ATT_QCHUNK;
        const int32_t qh = h * group + r0; /* the query rows of one token are contiguous */
        cpu_matmul(s->kv_type, keys, kc, hd, j->q + (size_t)qh * hd, nr, sc, work, 1);
        for (int32_t r = 0; r < nr; r++) {
            const size_t part = (size_t)(qh + r) * slots + c;
            const float scale = att_prepare_scores(s, sc + (size_t)r * kc, kc);
            j->att_pl[part] = cpu_vec_softmax_terms(sc + (size_t)r * kc, kc, scale, &j->att_pm[part]);
        }
        weighted_values(vf, vals, sc, kc, nr, kc, hd, j->att_po + ((size_t)qh * slots + c) * hd, (int64_t)slots * hd);
    }
}

/* Query head qh's output from its chunks' parts: with M the largest maximum, the sum of the
 * chunks' weighted sums scaled by e^(m_c - M) / sum of l_c e^(m_c - M). */
static void combine_chunks(void *p, int64_t qh, int tid) {
    (void)tid;
    const att_job *j = p;
    const int32_t used = att_kchunks(j->pos + 1 - att_first_key(j->s, j->pos)), slots = att_kchunks(j->s->n_ctx);
    const int32_t hd = j->s->head_dim;
    float *m = j->att_pm + (size_t)qh * slots; /* overwritten with the chunks' weights */
    const double *l = j->att_pl + (size_t)qh * slots;
    float mx = m[0];
    for (int32_t c = 1; c < used; c++) mx = m[c] > mx ? m[c] : mx;
    double total = 0;
    for (int32_t c = 0; c < used; c++) {
        m[c] = expf(m[c] - mx);
        total += l[c] * m[c];
    }
    const float inv = (float)(1.0 / total);
    for (int32_t c = 0; c < used; c++) m[c] *= inv;
    cpu_vec_weighted_rows(m, used, 1, j->att_po + (size_t)qh * slots * hd, used, hd, j->out + (size_t)qh * hd, hd);
}

/* A ring's visible positions [lo, hi) where the products read them: in place where they do
 * not wrap around the ring's end (pos_base: the position at row 0 of that turn), else
 * gathered, in position order, into the work area's ring rows (pos_base = lo). */
static void ring_view(att_job *j) {
    const backend_attn_shape *s = j->s;
    const int32_t R = s->n_ctx, lo = att_first_key(s, j->pos), hi = j->pos + j->n;
    if (lo / R == (hi - 1) / R) {
        j->pos_base = lo / R * R;
        return;
    }
    const size_t row = j->head_row;
    const int32_t a = lo % R, len_a = R - a, len_b = hi - lo - len_a; /* [a, R) then [0, len_b) */
    for (int v = 0; v < 2; v++) {
        const uint8_t *src = v ? j->v_cache : j->k_cache;
        uint8_t *dst = v ? j->ring_v : j->ring_k;
        for (int32_t h = 0; h < s->n_head_kv; h++) {
            const uint8_t *hs = src + (size_t)h * R * row;
            uint8_t *hd = dst + (size_t)h * R * row;
            memcpy(hd, hs + (size_t)a * row, (size_t)len_a * row);
            memcpy(hd + (size_t)len_a * row, hs, (size_t)len_b * row);
        }
    }
    j->k_cache = j->ring_k;
    j->v_cache = j->ring_v;
    j->pos_base = lo;
}

void cpu_attention(const backend_attn_shape *s, const void *k_cache, const void *v_cache, const float *q, int32_t n,
                   int32_t pos, float *out, void *work, int nt) {
    att_job j;
    att_job_init(&j, s, k_cache, v_cache, q, n, pos, out, work);
    if (s->ring) ring_view(&j);
    const int32_t n_kv = pos + 1 - att_first_key(s, pos); /* a decode step's visible positions */
    if (n == 1 && n_kv > ATT_KCHUNK) {
        cpu_parallel_for(nt, (int64_t)s->n_head_kv * att_kchunks(n_kv), attend_chunk, &j);
        /* a few thousand multiply-adds: on this thread unless there are many */
        const int64_t combine = (int64_t)s->n_head * att_kchunks(n_kv) * s->head_dim;
        cpu_parallel_for(combine > (1 << 16) ? nt : 1, s->n_head, combine_chunks, &j);
    } else {
        /* Short attention (a decode step early in the context) is cheaper than waking the
         * threads for it. */
        const int64_t att_work = (int64_t)n * (pos + n) * s->n_head * s->head_dim;
        const int threads = att_work > (1 << 14) ? nt : 1;
        if (values_widened(s->kv_type)) cpu_parallel_for(threads, s->n_head_kv, widen_values, &j);
        cpu_parallel_for(threads, (int64_t)s->n_head_kv * att_lanes(s), att_item, &j);
    }
}

void cpu_kv_store(const backend_attn_shape *s, void *k_cache, void *v_cache, const float *k, const float *v,
                  int32_t n, int32_t pos) {
    const size_t head_row = head_row_bytes(s);
    uint8_t *kb = k_cache, *vb = v_cache;
    for (int32_t h = 0; h < s->n_head_kv; h++) {
        for (int32_t i = 0; i < n; i++) {
            const int32_t r = s->ring ? (pos + i) % s->n_ctx : pos + i;
            size_t row = ((size_t)h * s->n_ctx + r) * head_row;
            const float *ks = k + ((size_t)i * s->n_head_kv + h) * s->head_dim;
            const float *vs = v + ((size_t)i * s->n_head_kv + h) * s->head_dim;
            switch (s->kv_type) {
            case STRATA_TYPE_F32:
                memcpy(kb + row, ks, head_row);
                memcpy(vb + row, vs, head_row);
                break;
            case STRATA_TYPE_F16:
                cpu_vec_f32_to_f16(ks, (uint16_t *)(kb + row), s->head_dim);
                cpu_vec_f32_to_f16(vs, (uint16_t *)(vb + row), s->head_dim);
                break;
            default:
                strata_quantize_row(s->kv_type, ks, kb + row, s->head_dim);
                strata_quantize_row(s->kv_type, vs, vb + row, s->head_dim);
                break;
            }
        }
    }
}
