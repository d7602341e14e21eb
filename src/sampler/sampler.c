/* Sampling chain; see sampler.h. */
#include "sampler/sampler.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int32_t id;
    float logit;
    float p;
    float score; /* typical_p: distance of the surprise from the entropy */
} cand;

struct strata_sampler {
    strata_sampler_params p;
    int32_t n_vocab;
    int32_t window;   /* effective repeat_last_n */
    cand *c;          /* n_vocab candidates */
    cand *tmp;        /* n_vocab scratch: the heap of best_k_into, typical_p's ordering */
    int32_t *ring;    /* last `window` accepted tokens */
    int32_t ring_len, ring_pos;
    int32_t *counts;  /* occurrences of each id in the ring */
    uint8_t *seen;    /* scratch flags while penalising */
    uint64_t rng[4];
};

strata_sampler_params strata_sampler_default_params(void) {
    strata_sampler_params p;
    p.temperature = 0.8f;
    p.top_k = 40;
    p.top_p = 0.9f;
    p.min_p = 0.0f;
    p.typical_p = 1.0f;
    p.repeat_penalty = 1.1f;
    p.repeat_last_n = 64;
    p.presence_penalty = 0.0f;
    p.frequency_penalty = 0.0f;
    p.seed = -1;
    return p;
}

/* xoshiro256** seeded through splitmix64: small, fast, and the same sequence everywhere. */
static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(uint64_t s[4]) {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

static double rng_uniform(uint64_t s[4]) { return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0); }

static void seed_rng(strata_sampler *s) {
    uint64_t x;
    if (s->p.seed >= 0) {
        x = (uint64_t)s->p.seed;
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        x = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
    }
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
}

strata_status strata_sampler_init(const strata_sampler_params *p, int32_t n_vocab, int32_t history_cap,
                                  strata_sampler **out) {
    *out = NULL;
    if (n_vocab <= 0) return strata_fail(STRATA_ERR_INVALID, "sampler: vocabulary size %d", n_vocab);
    if (!(p->temperature >= 0)) return strata_fail(STRATA_ERR_INVALID, "sampler: temperature must be >= 0");
    if (!(p->top_p >= 0)) return strata_fail(STRATA_ERR_INVALID, "sampler: top_p must be >= 0");
    if (!(p->min_p >= 0 && p->min_p <= 1)) return strata_fail(STRATA_ERR_INVALID, "sampler: min_p must be in [0, 1]");
    if (!(p->typical_p >= 0)) return strata_fail(STRATA_ERR_INVALID, "sampler: typical_p must be >= 0");
    if (!(p->repeat_penalty > 0)) return strata_fail(STRATA_ERR_INVALID, "sampler: repeat_penalty must be > 0");
    if (p->repeat_last_n < -1) return strata_fail(STRATA_ERR_INVALID, "sampler: repeat_last_n must be >= -1");
    if (!isfinite(p->presence_penalty) || !isfinite(p->frequency_penalty))
        return strata_fail(STRATA_ERR_INVALID, "sampler: penalties must be finite");
    strata_sampler *s = calloc(1, sizeof *s);
    if (!s) return strata_fail(STRATA_ERR_NOMEM, "sampler: out of memory");
    s->p = *p;
    s->n_vocab = n_vocab;
    s->window = p->repeat_last_n == -1 ? (history_cap > 0 ? history_cap : 0) : p->repeat_last_n;
    s->c = malloc((size_t)n_vocab * sizeof *s->c);
    s->tmp = malloc((size_t)n_vocab * sizeof *s->tmp);
    s->counts = calloc((size_t)n_vocab, sizeof *s->counts);
    s->seen = calloc((size_t)n_vocab, 1);
    s->ring = malloc((size_t)(s->window > 0 ? s->window : 1) * sizeof *s->ring);
    if (!s->c || !s->tmp || !s->counts || !s->seen || !s->ring) {
        strata_sampler_free(s);
        return strata_fail(STRATA_ERR_NOMEM, "sampler: out of memory");
    }
    seed_rng(s);
    *out = s;
    return STRATA_OK;
}

void strata_sampler_free(strata_sampler *s) {
    if (!s) return;
    free(s->c);
    free(s->tmp);
    free(s->counts);
    free(s->seen);
    free(s->ring);
    free(s);
}

void strata_sampler_reset(strata_sampler *s) {
    memset(s->counts, 0, (size_t)s->n_vocab * sizeof *s->counts);
    s->ring_len = s->ring_pos = 0;
    seed_rng(s);
}

void strata_sampler_accept(strata_sampler *s, int32_t token) {
    if (s->window <= 0 || token < 0 || token >= s->n_vocab) return;
    if (s->ring_len == s->window) {
        s->counts[s->ring[s->ring_pos]]--;
    } else {
        s->ring_len++;
    }
    s->ring[s->ring_pos] = token;
    s->counts[token]++;
    s->ring_pos = (s->ring_pos + 1) % s->window;
}

static float penalized(const strata_sampler_params *p, float l, int32_t count) {
    l = l > 0 ? l / p->repeat_penalty : l * p->repeat_penalty;
    return l - ((float)count * p->frequency_penalty + p->presence_penalty);
}

static bool has_penalties(const strata_sampler *s) {
    const strata_sampler_params *p = &s->p;
    return s->ring_len > 0 && (p->repeat_penalty != 1.0f || p->presence_penalty != 0.0f || p->frequency_penalty != 0.0f);
}

/* Calls out[t] = penalized(out[t]) once for every distinct token t of the window; `get`
 * addresses token t's logit in the caller's array. */
#define FOR_EACH_PENALIZED(s, LOGIT_OF_T)                                                   \
    do {                                                                                    \
        if (!has_penalties(s)) break;                                                       \
        for (int32_t i_ = 0; i_ < (s)->ring_len; i_++) {                                    \
            int32_t t = (s)->ring[i_];                                                      \
            if ((s)->seen[t]) continue;                                                     \
            (s)->seen[t] = 1;                                                               \
            LOGIT_OF_T = penalized(&(s)->p, LOGIT_OF_T, (s)->counts[t]);                    \
        }                                                                                   \
        for (int32_t i_ = 0; i_ < (s)->ring_len; i_++) (s)->seen[(s)->ring[i_]] = 0;        \
    } while (0)

void strata_sampler_penalize(strata_sampler *s, const float *logits, float *out) {
    memcpy(out, logits, (size_t)s->n_vocab * sizeof *out);
    FOR_EACH_PENALIZED(s, out[t]);
}

static int cmp_desc(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->logit != y->logit) return x->logit > y->logit ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Moves the k best candidates (by logit, then id) to the front, sorted; the others stay
 * behind them in some order. */
static void top_k_sorted(cand *c, int32_t n, int32_t k) {
    if (k < n) {
        /* quickselect on the comparator, then sort the head */
        int32_t lo = 0, hi = n - 1;
        while (lo < hi) {
            cand pivot = c[lo + (hi - lo) / 2];
            int32_t i = lo, j = hi;
            while (i <= j) {
                while (cmp_desc(&c[i], &pivot) < 0) i++;
                while (cmp_desc(&c[j], &pivot) > 0) j--;
                if (i <= j) {
                    cand t = c[i];
                    c[i] = c[j];
                    c[j] = t;
                    i++;
                    j--;
                }
            }
            if (k - 1 <= j) hi = j;
            else if (k - 1 >= i) lo = i;
            else break;
        }
    }
    qsort(c, (size_t)(k < n ? k : n), sizeof *c, cmp_desc);
}

/* a comes after b in the sampling order (lower logit; on a tie, higher id). */
static inline bool worse(const cand *a, const cand *b) {
    return a->logit < b->logit || (a->logit == b->logit && a->id > b->id);
}

static void sift_down(cand *h, int32_t k, int32_t i) {
    for (;;) {
        int32_t w = i;
        const int32_t l = 2 * i + 1, r = l + 1;
        if (l < k && worse(&h[l], &h[w])) w = l;
        if (r < k && worse(&h[r], &h[w])) w = r;
        if (w == i) return;
        const cand t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

/* The k best of c[0..n) (1 <= k <= n), sorted, into out[0..k), leaving c as it is. Out holds
 * a heap of the best so far with the worst at its root, so most candidates cost one
 * comparison: for k = 40 of 152,000, 5 times faster than the quickselect of top_k_sorted,
 * which moves every candidate several times. */
static void best_k_into(const cand *c, int32_t n, int32_t k, cand *out) {
    memcpy(out, c, (size_t)k * sizeof *out);
    for (int32_t i = k / 2 - 1; i >= 0; i--) sift_down(out, k, i);
    for (int32_t i = k; i < n; i++)
        if (worse(&out[0], &c[i])) {
            out[0] = c[i];
            sift_down(out, k, 0);
        }
    qsort(out, (size_t)k, sizeof *out, cmp_desc);
}

/* Whether best_k_into beats top_k_sorted for the k best of n: while its heap stays small
 * against the candidates. */
static bool heap_pays(int32_t k, int32_t n) { return k <= 1024 && k < n / 4; }

/* Moves the k best candidates to the front, sorted (tmp: scratch of k). */
static void best_k_to_front(cand *c, int32_t n, int32_t k, cand *tmp) {
    if (heap_pays(k, n)) {
        best_k_into(c, n, k, tmp);
        memcpy(c, tmp, (size_t)k * sizeof *c);
    } else {
        top_k_sorted(c, n, k);
    }
}

/* The smallest prefix of c[0..n) whose probability mass reaches `mass` (n when none does):
 * the cut of top_p, and of typical_p once ordered by typicality. */
static int32_t prefix_with_mass(const cand *c, int32_t n, double mass) {
    double cum = 0;
    for (int32_t i = 0; i < n; i++) {
        cum += c[i].p;
        if (cum >= mass) return i + 1;
    }
    return n;
}

/* p = softmax(logit) over c[0..n), which is sorted descending. */
static void softmax(cand *c, int32_t n) {
    double sum = 0;
    for (int32_t i = 0; i < n; i++) {
        c[i].p = expf(c[i].logit - c[0].logit);
        sum += c[i].p;
    }
    for (int32_t i = 0; i < n; i++) c[i].p = (float)(c[i].p / sum);
}

/* min_p on c[0..n) sorted descending: p_i >= min_p * p_max <=> logit_i >= logit_max + log(min_p). */
static int32_t min_p_prefix(const cand *c, int32_t n, float min_p) {
    const float floor_logit = c[0].logit + logf(min_p);
    int32_t keep = 1;
    while (keep < n && c[keep].logit >= floor_logit) keep++;
    return keep;
}

/* top_p then min_p on c[0..n) in any order, with the same result as sorting all n first and
 * cutting the sorted list (the same prefix of the same order), but sorting only what might
 * be kept: with top_k off, a vocabulary of 150,000 took 20 ms a token to sort (qwen2-sized
 * model, 2 threads: 26 tokens/s where greedy decoding ran at 59). Both cuts are prefixes of
 * the sorted order, so the result is the shorter one: min_p's threshold needs only the
 * largest logit, and top_p's the softmax denominator over all n; then the best 256
 * candidates are selected and sorted, and 8 times more while their mass falls short. When
 * nothing cuts, only the largest candidate is moved to the front (the draw needs it there).
 * Returns the kept count; c[0..count) sorted descending. */
static int32_t nucleus_unsorted(cand *c, int32_t n, float top_p, float min_p, cand *tmp) {
    const bool cut_p = top_p < 1.0f && n > 1, cut_min = min_p > 0.0f && n > 1;
    float lmax = c[0].logit;
    for (int32_t i = 1; i < n; i++) lmax = c[i].logit > lmax ? c[i].logit : lmax;
    double sum = 0;
    if (cut_p)
        for (int32_t i = 0; i < n; i++) sum += expf(c[i].logit - lmax);
    int32_t m = n;
    if (cut_min) { /* the candidates at or above the threshold, in front, in any order */
        const float floor_logit = lmax + logf(min_p);
        m = 0;
        for (int32_t i = 0; i < n; i++)
            if (c[i].logit >= floor_logit) {
                const cand t = c[m];
                c[m++] = c[i];
                c[i] = t;
            }
    }
    if (!cut_p) {
        if (cut_min) {
            qsort(c, (size_t)m, sizeof *c, cmp_desc);
        } else { /* the draw only needs the best in front */
            int32_t best = 0;
            for (int32_t i = 1; i < m; i++)
                if (worse(&c[best], &c[i])) best = i;
            const cand t = c[0];
            c[0] = c[best];
            c[best] = t;
        }
        return m;
    }
    for (int32_t k = 256;; k *= 8) {
        if (k > m) k = m;
        /* best_k_into leaves c as it is and top_k_sorted keeps it a permutation of the
         * candidates, so a later, larger round can start over from c */
        cand *best = c;
        if (heap_pays(k, m)) best_k_into(c, m, k, best = tmp);
        else top_k_sorted(c, m, k);
        double cum = 0;
        for (int32_t i = 0; i < k; i++) {
            best[i].p = (float)(expf(best[i].logit - lmax) / sum);
            cum += best[i].p;
            if (cum >= top_p) {
                if (best != c) memcpy(c, best, (size_t)(i + 1) * sizeof *c);
                return i + 1;
            }
        }
        if (k == m) {
            if (best != c) memcpy(c, best, (size_t)m * sizeof *c);
            return m;
        }
    }
}

static int cmp_typical(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* The penalties and the filters: leaves the kept candidates in s->c[0..return), the best
 * first (sorted, except when no filter cuts: see nucleus_unsorted). */
static int32_t filter(strata_sampler *s, const float *logits) {
    const strata_sampler_params *p = &s->p;
    const int32_t V = s->n_vocab;
    cand *c = s->c;
    for (int32_t i = 0; i < V; i++) {
        c[i].id = i;
        c[i].logit = logits[i];
    }
    FOR_EACH_PENALIZED(s, c[t].logit); /* ids equal indices here */
    int32_t n = V;
    bool sorted = false;
    if (p->top_k > 0 && p->top_k < n) {
        best_k_to_front(c, n, p->top_k, s->tmp);
        n = p->top_k;
        sorted = true;
    }
    if (p->typical_p < 1.0f && n > 1) {
        /* Locally typical sampling: keep the tokens whose surprise -log p is closest to the
         * entropy H, smallest set whose mass reaches typical_p. */
        if (!sorted) qsort(c, (size_t)n, sizeof *c, cmp_desc);
        sorted = true;
        softmax(c, n);
        double H = 0;
        for (int32_t i = 0; i < n; i++)
            if (c[i].p > 0) H -= c[i].p * log(c[i].p);
        cand *t = s->tmp;
        for (int32_t i = 0; i < n; i++) {
            t[i] = c[i];
            t[i].score = c[i].p > 0 ? (float)fabs(-log(c[i].p) - H) : INFINITY;
        }
        qsort(t, (size_t)n, sizeof *t, cmp_typical);
        int32_t keep = prefix_with_mass(t, n, p->typical_p);
        memcpy(c, t, (size_t)keep * sizeof *c);
        n = keep;
        qsort(c, (size_t)n, sizeof *c, cmp_desc);
    }
    if (!sorted) {
        n = nucleus_unsorted(c, n, p->top_p, p->min_p, s->tmp);
    } else {
        if (p->top_p < 1.0f && n > 1) {
            softmax(c, n);
            n = prefix_with_mass(c, n, p->top_p);
        }
        if (p->min_p > 0.0f && n > 1) n = min_p_prefix(c, n, p->min_p);
    }
    return n;
}

/* Greedy: the model's own argmax, penalties not applied (as Ollama's engine does it, so that
 * temperature 0 reproduces plain greedy decoding). */
static int32_t argmax(const float *logits, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}

int32_t strata_sampler_kept(strata_sampler *s, const float *logits, int32_t *ids) {
    if (s->p.temperature <= 0) {
        ids[0] = argmax(logits, s->n_vocab);
        return 1;
    }
    const int32_t n = filter(s, logits);
    for (int32_t i = 0; i < n; i++) ids[i] = s->c[i].id;
    return n;
}

int32_t strata_sampler_sample(strata_sampler *s, const float *logits) {
    const strata_sampler_params *p = &s->p;
    if (p->temperature <= 0) return argmax(logits, s->n_vocab);
    const int32_t n = filter(s, logits);
    cand *c = s->c;
    for (int32_t i = 0; i < n; i++) c[i].logit /= p->temperature;
    softmax(c, n);
    double u = rng_uniform(s->rng), cum = 0;
    for (int32_t i = 0; i < n; i++) {
        cum += c[i].p;
        if (u < cum) return c[i].id;
    }
    return c[n - 1].id;
}
