/* Placement: the chain of devices, its cost, the options, and the explanation. See plan.h.
 *
 * The exact search. Let n be the number of offloadable layers and m the number of GPU-like
 * devices. For every GPU k and start s, fitq[k][s] is the furthest end e such that [s, e)
 * fits k's budget (segment bytes grow with the range, so it is found with two pointers).
 * best[S][p] is the least cost of placing [p, n) on exactly the GPUs of the set S, each
 * holding one non-empty contiguous range, in any order:
 *     best[{}][n] = 0,   best[S][p] = min over k in S, p < e <= fitq[k][p] of
 *                                      cost_k(p, e) + best[S - k][e]
 * (with e == n allowed only for main_gpu when it is set). A plan is then a CPU prefix [0, p)
 * that fits the CPU plus a set S with best[S][p] finite; plan.h gives the rule choosing
 * among them. O(2^m m n^2) steps: 80k for 3 GPUs and 81 layers. */
#include "planner/plan.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INF_COST INT64_MAX

plan_options plan_default_options(void) {
    plan_options o;
    memset(&o, 0, sizeof o);
    o.num_gpu = -1;
    o.main_gpu = -1;
    o.mode = PLAN_FEWEST;
    return o;
}

uint64_t plan_default_reserve(backend_device_kind kind) {
    return kind == BACKEND_DEVICE_CPU ? PLAN_DEFAULT_CPU_RESERVE : PLAN_DEFAULT_GPU_RESERVE;
}

void plan_format_bytes(uint64_t b, char *buf, size_t cap) {
    const double KiB = 1024.0, MiB = KiB * 1024, GiB = MiB * 1024;
    if (b >= (uint64_t)GiB) snprintf(buf, cap, "%.2f GiB", (double)b / GiB);
    else if (b >= (uint64_t)MiB) snprintf(buf, cap, "%.0f MiB", (double)b / MiB);
    else if (b >= (uint64_t)KiB) snprintf(buf, cap, "%.0f KiB", (double)b / KiB);
    else snprintf(buf, cap, "%" PRIu64 " B", b);
}

strata_status plan_devices_from_inventory(const backend_inventory *inv, const uint64_t *reserve,
                                          plan_device *out, int32_t *map, int32_t *count) {
    int32_t n = 0;
    for (int i = 0; i < inv->count; i++) {
        backend_device *d = inv->devices[i];
        if (!backend_device_plannable(d)) continue;
        uint64_t f = 0;
        strata_status st = backend_device_free_bytes(d, &f);
        if (st != STRATA_OK) return st;
        out[n].label = backend_device_label(d);
        out[n].kind = backend_device_kind_of(d);
        out[n].free_bytes = f;
        out[n].reserve_bytes = reserve && reserve[i] != UINT64_MAX ? reserve[i] : plan_default_reserve(backend_device_kind_of(d));
        out[n].gbps = backend_device_speed_gbps(d);
        if (map) map[n] = i;
        n++;
    }
    *count = n;
    return STRATA_OK;
}

/* ---- Working state ---------------------------------------------------------------- */

typedef struct {
    const plan_profile *prof;
    const plan_device *devs;
    const plan_options *opt;
    int32_t nd, n, m, cpu;
    int32_t gpu[PLAN_MAX_DEVICES]; /* GPU number -> device index */
    uint64_t budget[PLAN_MAX_DEVICES];
    uint64_t *gw, *cw;              /* prefix sums of weights, n + 1 */
    uint64_t *hs;                   /* suffix sums of host parts (experts on the CPU), n + 1 */
    int64_t *cp;                    /* per device: prefix sums of layer times, nd x (n + 1) */
    int32_t *fitq;                  /* per GPU number: m x (n + 1) */
    bool *cpu_fit;                  /* n + 1 */
    int64_t *best;                  /* 2^m x (n + 1) */
    int8_t *ch_k;                   /* choice: GPU number */
    int32_t *ch_e;                  /* choice: end */
    bool exact;
    int32_t order[PLAN_MAX_DEVICES]; /* heuristic chain order when not exact */
} plan_ctx;

static uint64_t sub_sat(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

static int64_t layer_time_ps(uint64_t bytes, double gbps) {
    /* GB/s is bytes per nanosecond: bytes / gbps ns = bytes * 1000 / gbps ps. */
    return (int64_t)llround((double)bytes * 1000.0 / gbps);
}

static int64_t cost(const plan_ctx *c, int32_t dev, int32_t s, int32_t e) {
    const int64_t *row = c->cp + (size_t)dev * (size_t)(c->n + 1);
    return row[e] - row[s];
}

static uint64_t need_gpu_parts(const plan_ctx *c, int32_t dev, int32_t s, int32_t e, uint64_t *w, uint64_t *kv,
                               uint64_t *comp) {
    *w = *kv = *comp = 0;
    if (e <= s) return 0;
    *w = c->gw[e] - c->gw[s];
    c->prof->segment_bytes(c->prof->ctx, c->devs[dev].kind, s, e, kv, comp);
    return *w + *kv + *comp;
}

static uint64_t need_gpu(const plan_ctx *c, int32_t dev, int32_t s, int32_t e) {
    uint64_t w, kv, comp;
    return need_gpu_parts(c, dev, s, e, &w, &kv, &comp);
}

static uint64_t need_cpu_parts(const plan_ctx *c, int32_t p, uint64_t *w, uint64_t *kv, uint64_t *comp) {
    /* the GPUs' layers [p, n) leave their host parts (experts) mapped on the CPU */
    *w = c->prof->host_bytes + c->cw[p] + c->hs[p] + (c->hs[p] ? c->prof->host_part_scratch : 0);
    c->prof->segment_bytes(c->prof->ctx, c->devs[c->cpu].kind, 0, p, kv, comp);
    return *w + *kv + *comp;
}

static void ctx_free(plan_ctx *c) {
    free(c->gw);
    free(c->cw);
    free(c->hs);
    free(c->cp);
    free(c->fitq);
    free(c->cpu_fit);
    free(c->best);
    free(c->ch_k);
    free(c->ch_e);
}

static strata_status ctx_init(plan_ctx *c, const plan_profile *prof, const plan_device *devs, int32_t nd,
                              const plan_options *opt) {
    memset(c, 0, sizeof *c);
    c->prof = prof;
    c->devs = devs;
    c->opt = opt;
    c->nd = nd;
    c->n = prof->n_layers;
    c->cpu = -1;
    int32_t n = c->n;
    if (n < 1) return strata_fail(STRATA_ERR_INVALID, "plan: a model needs at least one layer");
    if (nd < 1 || nd > PLAN_MAX_DEVICES)
        return strata_fail(STRATA_ERR_INVALID, "plan: %d devices (1 to %d)", nd, PLAN_MAX_DEVICES);
    for (int32_t i = 0; i < nd; i++) {
        if (!(devs[i].gbps > 0)) return strata_fail(STRATA_ERR_INVALID, "plan: device %s has no speed", devs[i].label);
        c->budget[i] = sub_sat(devs[i].free_bytes, devs[i].reserve_bytes);
        if (devs[i].kind == BACKEND_DEVICE_CPU) {
            if (c->cpu >= 0) return strata_fail(STRATA_ERR_INVALID, "plan: two cpu devices");
            c->cpu = i;
        } else {
            c->gpu[c->m++] = i;
        }
    }
    if (c->cpu < 0) return strata_fail(STRATA_ERR_INVALID, "plan: no cpu device");
    if (opt->main_gpu >= c->m)
        return strata_fail(STRATA_ERR_INVALID, "plan: main_gpu %d but there %s %d GPU device%s", opt->main_gpu,
                           c->m == 1 ? "is" : "are", c->m, c->m == 1 ? "" : "s");
    if (opt->n_split < 0 || opt->n_split > c->m)
        return strata_fail(STRATA_ERR_INVALID, "plan: tensor_split has %d entries for %d GPU devices", opt->n_split,
                           c->m);
    for (int32_t i = 0; i < opt->n_split; i++)
        if (!(opt->tensor_split[i] >= 0) || !isfinite(opt->tensor_split[i]))
            return strata_fail(STRATA_ERR_INVALID, "plan: tensor_split entry %d is not a proportion >= 0", i + 1);

    size_t n1 = (size_t)n + 1;
    c->gw = calloc(n1, sizeof *c->gw);
    c->cw = calloc(n1, sizeof *c->cw);
    c->cp = calloc((size_t)nd * n1, sizeof *c->cp);
    c->fitq = calloc((size_t)(c->m ? c->m : 1) * n1, sizeof *c->fitq);
    c->cpu_fit = calloc(n1, sizeof *c->cpu_fit);
    c->hs = calloc(n1, sizeof *c->hs);
    if (!c->gw || !c->cw || !c->cp || !c->fitq || !c->cpu_fit || !c->hs)
        return strata_fail(STRATA_ERR_NOMEM, "plan: out of memory");
    for (int32_t l = n - 1; l >= 0; l--) c->hs[l] = c->hs[l + 1] + (prof->host_part_bytes ? prof->host_part_bytes[l] : 0);
    for (int32_t l = 0; l < n; l++) {
        c->gw[l + 1] = c->gw[l] + prof->gpu_weight_bytes[l];
        c->cw[l + 1] = c->cw[l] + prof->cpu_weight_bytes[l];
    }
    for (int32_t d = 0; d < nd; d++) {
        int64_t *row = c->cp + (size_t)d * n1;
        for (int32_t l = 0; l < n; l++) {
            /* a layer on a GPU whose experts stay on the CPU: those at the CPU's speed */
            const uint64_t hr = devs[d].kind != BACKEND_DEVICE_CPU && prof->host_part_read_bytes
                                    ? prof->host_part_read_bytes[l]
                                    : 0;
            row[l + 1] = row[l] + layer_time_ps(prof->read_bytes[l] - hr, devs[d].gbps) +
                         (hr ? layer_time_ps(hr, devs[c->cpu].gbps) : 0);
        }
    }
    for (int32_t p = 0; p <= n; p++) {
        uint64_t w, kv, comp;
        c->cpu_fit[p] = need_cpu_parts(c, p, &w, &kv, &comp) <= c->budget[c->cpu];
    }
    /* fitq by two pointers: the furthest end only moves forward as the start does. */
    for (int32_t k = 0; k < c->m; k++) {
        int32_t *fq = c->fitq + (size_t)k * n1;
        uint64_t b = c->budget[c->gpu[k]];
        int32_t e = 0;
        for (int32_t s = 0; s < n; s++) {
            if (e < s) e = s;
            while (e < n && need_gpu(c, c->gpu[k], s, e + 1) <= b) e++;
            fq[s] = e;
        }
        fq[n] = n;
    }
    return STRATA_OK;
}

/* ---- Exact search over subsets ---------------------------------------------------- */

static strata_status search_exact(plan_ctx *c) {
    int32_t n = c->n, m = c->m;
    size_t n1 = (size_t)n + 1, ns = (size_t)1 << m;
    c->best = malloc(ns * n1 * sizeof *c->best);
    c->ch_k = malloc(ns * n1 * sizeof *c->ch_k);
    c->ch_e = malloc(ns * n1 * sizeof *c->ch_e);
    if (!c->best || !c->ch_k || !c->ch_e) return strata_fail(STRATA_ERR_NOMEM, "plan: out of memory");
    for (size_t i = 0; i < ns * n1; i++) {
        c->best[i] = INF_COST;
        c->ch_k[i] = -1;
        c->ch_e[i] = -1;
    }
    c->best[n] = 0; /* S = {}, p = n */
    /* Subsets in increasing order: S - k < S numerically, so it is done before S. */
    for (size_t S = 1; S < ns; S++) {
        int64_t *bs = c->best + S * n1;
        for (int32_t p = n - 1; p >= 0; p--) {
            int64_t bestv = INF_COST;
            int8_t bk = -1;
            int32_t be = -1;
            for (int32_t k = 0; k < m; k++) {
                if (!(S & ((size_t)1 << k))) continue;
                const int64_t *rest = c->best + (S & ~((size_t)1 << k)) * n1;
                int32_t fq = c->fitq[(size_t)k * n1 + (size_t)p];
                int32_t dev = c->gpu[k];
                for (int32_t e = p + 1; e <= fq; e++) {
                    if (rest[e] == INF_COST) continue;
                    if (e == n && c->opt->main_gpu >= 0 && k != c->opt->main_gpu) continue;
                    int64_t v = cost(c, dev, p, e) + rest[e];
                    if (v < bestv) {
                        bestv = v;
                        bk = (int8_t)k;
                        be = e;
                    }
                }
            }
            bs[p] = bestv;
            c->ch_k[S * n1 + (size_t)p] = bk;
            c->ch_e[S * n1 + (size_t)p] = be;
        }
    }
    return STRATA_OK;
}

/* ---- Heuristic for many GPUs: one fixed chain order, exact cut points --------------- */

/* Orders the GPUs slowest first so that the fastest holds the last layers and the output
 * (main_gpu, if set, last); best[j][p] is then the least cost of [p, n) on order[j..m-1],
 * each possibly empty. Stored in c->best as m + 1 rows. */
static strata_status search_fixed_order(plan_ctx *c) {
    int32_t n = c->n, m = c->m;
    size_t n1 = (size_t)n + 1;
    /* insertion sort by speed, slowest first; ties keep inventory order */
    for (int32_t i = 0; i < m; i++) {
        int32_t k = i, j = i;
        double g = c->devs[c->gpu[k]].gbps;
        while (j > 0 && c->devs[c->gpu[c->order[j - 1]]].gbps > g) {
            c->order[j] = c->order[j - 1];
            j--;
        }
        c->order[j] = k;
    }
    if (c->opt->main_gpu >= 0) {
        int32_t at = 0;
        for (int32_t i = 0; i < m; i++)
            if (c->order[i] == c->opt->main_gpu) at = i;
        memmove(&c->order[at], &c->order[at + 1], (size_t)(m - 1 - at) * sizeof c->order[0]);
        c->order[m - 1] = c->opt->main_gpu;
    }
    c->best = malloc((size_t)(m + 1) * n1 * sizeof *c->best);
    c->ch_e = malloc((size_t)(m + 1) * n1 * sizeof *c->ch_e);
    if (!c->best || !c->ch_e) return strata_fail(STRATA_ERR_NOMEM, "plan: out of memory");
    for (size_t i = 0; i < (size_t)(m + 1) * n1; i++) c->best[i] = INF_COST;
    c->best[(size_t)m * n1 + (size_t)n] = 0;
    for (int32_t j = m - 1; j >= 0; j--) {
        int32_t k = c->order[j], dev = c->gpu[k];
        int64_t *row = c->best + (size_t)j * n1;
        const int64_t *next = c->best + (size_t)(j + 1) * n1;
        int32_t *chr = c->ch_e + (size_t)j * n1;
        for (int32_t p = n; p >= 0; p--) {
            row[p] = next[p];
            chr[p] = p; /* empty */
            if (p == n) continue;
            int32_t fq = c->fitq[(size_t)k * n1 + (size_t)p];
            for (int32_t e = p + 1; e <= fq; e++) {
                if (next[e] == INF_COST) continue;
                if (e == n && c->opt->main_gpu >= 0 && k != c->opt->main_gpu) continue;
                int64_t v = cost(c, dev, p, e) + next[e];
                if (v < row[p]) {
                    row[p] = v;
                    chr[p] = e;
                }
            }
        }
    }
    return STRATA_OK;
}

/* A candidate plan: CPU prefix [0, p), GPUs of set S (exact) or the fixed order. */
typedef struct {
    int32_t p;
    uint32_t S;
    int32_t n_gpus;
    int64_t cost;
    bool ok;
} candidate;

static int popcount32(uint32_t x) {
    int c = 0;
    for (; x; x &= x - 1) c++;
    return c;
}

/* Fills the GPU ranges of a candidate into per-GPU [start, end). */
static void chain_ranges(const plan_ctx *c, const candidate *cd, int32_t *start, int32_t *end, int32_t *order,
                         int32_t *n_order) {
    size_t n1 = (size_t)c->n + 1;
    for (int32_t k = 0; k < c->m; k++) start[k] = end[k] = 0;
    *n_order = 0;
    int32_t p = cd->p;
    if (c->exact) {
        size_t S = cd->S;
        while (p < c->n && S) {
            int32_t k = c->ch_k[S * n1 + (size_t)p], e = c->ch_e[S * n1 + (size_t)p];
            start[k] = p;
            end[k] = e;
            order[(*n_order)++] = k;
            S &= ~((size_t)1 << k);
            p = e;
        }
    } else {
        for (int32_t j = 0; j < c->m && p < c->n; j++) {
            int32_t e = c->ch_e[(size_t)j * n1 + (size_t)p];
            if (e > p) {
                int32_t k = c->order[j];
                start[k] = p;
                end[k] = e;
                order[(*n_order)++] = k;
            }
            p = e;
        }
    }
}

/* Best candidate with CPU prefix p, by (cost, gpus) or (gpus, cost). */
static candidate best_at(const plan_ctx *c, int32_t p, bool fewest_first) {
    candidate b = {.p = p, .ok = false};
    if (!c->cpu_fit[p]) return b;
    size_t n1 = (size_t)c->n + 1;
    int64_t cpu_cost = cost(c, c->cpu, 0, p);
    if (!c->exact) {
        int64_t v = c->best[(size_t)p];
        if (v == INF_COST) return b;
        b.ok = true;
        b.cost = cpu_cost + v;
        int32_t st[PLAN_MAX_DEVICES], en[PLAN_MAX_DEVICES], ord[PLAN_MAX_DEVICES], no;
        chain_ranges(c, &b, st, en, ord, &no);
        b.n_gpus = no;
        return b;
    }
    size_t ns = (size_t)1 << c->m;
    for (size_t S = 0; S < ns; S++) {
        int64_t v = c->best[S * n1 + (size_t)p];
        if (v == INF_COST) continue;
        candidate t = {.p = p, .S = (uint32_t)S, .n_gpus = popcount32((uint32_t)S), .cost = cpu_cost + v, .ok = true};
        bool better;
        if (!b.ok) better = true;
        else if (fewest_first) better = t.n_gpus < b.n_gpus || (t.n_gpus == b.n_gpus && t.cost < b.cost);
        else better = t.cost < b.cost || (t.cost == b.cost && t.n_gpus < b.n_gpus);
        if (better) b = t;
    }
    return b;
}

/* The smallest CPU prefix any plan can have (so the most layers offloadable), or -1. */
static int32_t min_feasible_prefix(const plan_ctx *c) {
    for (int32_t p = 0; p <= c->n; p++)
        if (best_at(c, p, false).ok) return p;
    return -1;
}

/* ---- Proportional deal (spread, tensor_split) ------------------------------------- */

/* Deals [p, n) to the GPUs with a positive share, in inventory order (main_gpu last),
 * cutting where the cumulative weight bytes cross the cumulative share. */
static candidate deal(const plan_ctx *c, int32_t p, const double *share, int32_t *start, int32_t *end,
                      int32_t *order, int32_t *n_order) {
    candidate r = {.p = p, .ok = false};
    int32_t ks[PLAN_MAX_DEVICES], nk = 0;
    for (int32_t k = 0; k < c->m; k++)
        if (share[k] > 0 && k != c->opt->main_gpu) ks[nk++] = k;
    if (c->opt->main_gpu >= 0 && share[c->opt->main_gpu] > 0) ks[nk++] = c->opt->main_gpu;
    for (int32_t k = 0; k < c->m; k++) start[k] = end[k] = 0;
    *n_order = 0;
    if (!c->cpu_fit[p]) return r;
    if (p < c->n && nk == 0) return r;
    double total_share = 0;
    for (int32_t i = 0; i < nk; i++) total_share += share[ks[i]];
    uint64_t W = c->gw[c->n] - c->gw[p];
    int32_t s = p;
    double acc = 0;
    int64_t cst = cost(c, c->cpu, 0, p);
    for (int32_t i = 0; i < nk && s < c->n; i++) {
        int32_t k = ks[i];
        acc += share[k];
        int32_t e;
        if (i == nk - 1) {
            e = c->n;
        } else {
            double target = (double)c->gw[p] + (double)W * acc / total_share;
            e = s;
            /* the cut nearest to the target */
            while (e < c->n && (double)c->gw[e + 1] <= target) e++;
            if (e < c->n && target - (double)c->gw[e] > (double)c->gw[e + 1] - target) e++;
        }
        if (e <= s) continue;
        if (e > c->fitq[(size_t)k * (size_t)(c->n + 1) + (size_t)s]) return r;
        start[k] = s;
        end[k] = e;
        order[(*n_order)++] = k;
        cst += cost(c, c->gpu[k], s, e);
        s = e;
    }
    r.ok = s == c->n;
    r.cost = cst;
    r.n_gpus = *n_order;
    return r;
}

/* ---- Results and explanation ------------------------------------------------------ */

static void fill_result(const plan_ctx *c, int32_t p, const int32_t *start, const int32_t *end,
                        const int32_t *order, int32_t n_order, plan_result *out) {
    memset(out->dev, 0, sizeof out->dev);
    out->n_devices = c->nd;
    out->layers_total = c->n;
    out->layers_offloaded = c->n - p;
    out->gpus_used = n_order;
    out->cost_ps = 0;
    for (int32_t i = 0; i < c->nd; i++) {
        plan_device_use *u = &out->dev[i];
        u->device = i;
        u->free_bytes = c->devs[i].free_bytes;
        u->reserve_bytes = c->devs[i].reserve_bytes;
        u->budget_bytes = c->budget[i];
    }
    plan_device_use *cu = &out->dev[c->cpu];
    cu->layer_start = 0;
    cu->layer_end = p;
    need_cpu_parts(c, p, &cu->weights_bytes, &cu->kv_bytes, &cu->compute_bytes);
    cu->arena_bytes = cu->kv_bytes + cu->compute_bytes;
    if (c->prof->cpu_arena_weight_bytes)
        for (int32_t l = 0; l < p; l++) cu->arena_bytes += c->prof->cpu_arena_weight_bytes[l];
    cu->time_ps = cost(c, c->cpu, 0, p);
    out->n_chain = 0;
    out->chain[out->n_chain++] = c->cpu;
    for (int32_t j = 0; j < n_order; j++) {
        int32_t k = order[j], dev = c->gpu[k];
        plan_device_use *u = &out->dev[dev];
        u->layer_start = start[k];
        u->layer_end = end[k];
        need_gpu_parts(c, dev, start[k], end[k], &u->weights_bytes, &u->kv_bytes, &u->compute_bytes);
        u->arena_bytes = u->weights_bytes + u->kv_bytes + u->compute_bytes;
        u->time_ps = cost(c, dev, start[k], end[k]);
        out->chain[out->n_chain++] = dev;
    }
    for (int32_t i = 0; i < c->nd; i++) {
        plan_device_use *u = &out->dev[i];
        if (u->layer_end <= u->layer_start && i != c->cpu) {
            u->layer_start = u->layer_end = 0;
        }
        u->total_bytes = u->weights_bytes + u->kv_bytes + u->compute_bytes;
        u->headroom_bytes = sub_sat(u->budget_bytes, u->total_bytes);
        out->cost_ps += u->time_ps;
    }
    out->host_bytes = cu->total_bytes;
    out->tokens_per_second = out->cost_ps > 0 ? 1e12 / (double)out->cost_ps : 0;
    out->exact = c->exact;
}

static void layer_name(const plan_ctx *c, int32_t l, char *buf, size_t cap) {
    if (l == c->n - 1) snprintf(buf, cap, "the output layer (%d)", l);
    else snprintf(buf, cap, "layer %d", l);
}

/* The sentence naming what binds: why the last CPU layer is not on a GPU, or the tightest
 * GPU when everything is offloaded. */
static void explain(const plan_ctx *c, const plan_result *r, const char *prefix, char *buf, size_t cap) {
    char a[32], b[32], d[32], ln[48];
    int32_t p = r->layers_total - r->layers_offloaded;
    if (c->m == 0) {
        snprintf(buf, cap, "%sno GPU devices: all %d layers run on the CPU", prefix, c->n);
        return;
    }
    if (p == 0) {
        int32_t tight = -1;
        for (int32_t k = 0; k < c->m; k++) {
            const plan_device_use *u = &r->dev[c->gpu[k]];
            if (u->layer_end > u->layer_start && (tight < 0 || u->headroom_bytes < r->dev[tight].headroom_bytes))
                tight = c->gpu[k];
        }
        plan_format_bytes(r->dev[tight].headroom_bytes, a, sizeof a);
        plan_format_bytes(r->dev[tight].reserve_bytes, b, sizeof b);
        snprintf(buf, cap, "%sall %d layers fit on %d GPU%s%s; the tightest, %s, has %s left after its %s reserve",
                 prefix, c->n, r->gpus_used, r->gpus_used == 1 ? "" : "s",
                 c->opt->mode == PLAN_FEWEST && c->opt->n_split == 0 && r->gpus_used < c->m ? " (the fewest that hold the model)"
                                                                                             : "",
                 c->devs[tight].label, a, b);
        return;
    }
    /* Layer p-1 stays on the CPU. Which GPU came closest to taking it? */
    /* A GPU holding [s, e) can take layer L only together with L+1 .. s-1, since ranges stay
     * contiguous: what it needs is the whole extension [L, s), compute buffers included (a
     * device that only produced logits would start running blocks). */
    int32_t L = p - 1, bestk = -1, best_upto = L;
    uint64_t best_left = 0, best_need = 0;
    for (int32_t k = 0; k < c->m; k++) {
        int32_t dev = c->gpu[k];
        const plan_device_use *u = &r->dev[dev];
        uint64_t need;
        int32_t upto = L;
        if (u->layer_end > u->layer_start) {
            need = need_gpu(c, dev, L, u->layer_end) - need_gpu(c, dev, u->layer_start, u->layer_end);
            upto = u->layer_start - 1;
        } else {
            need = need_gpu(c, dev, L, L + 1);
        }
        uint64_t left = u->headroom_bytes;
        /* Prefer a device that could take L alone (adjacent or empty): that is the constraint
         * a user acts on; a device further up the chain is named only when none exists. */
        bool alone = upto == L, best_alone = best_upto == L;
        bool better = bestk < 0 || (alone && !best_alone) ||
                      (alone == best_alone && (left > best_left || (left == best_left && need < best_need)));
        if (better) {
            bestk = k;
            best_left = left;
            best_need = need;
            best_upto = upto;
        }
    }
    int32_t dev = c->gpu[bestk];
    if (best_upto > L) snprintf(ln, sizeof ln, "layers %d-%d", L, best_upto);
    else layer_name(c, L, ln, sizeof ln);
    plan_format_bytes(best_need, a, sizeof a);
    plan_format_bytes(best_left, b, sizeof b);
    plan_format_bytes(c->devs[dev].reserve_bytes, d, sizeof d);
    if (c->opt->num_gpu >= 0) {
        snprintf(buf, cap, "%s%d of %d layers on GPUs as num_gpu asks; %s (%s) stays on the CPU; %s has %s left after its %s reserve",
                 prefix, r->layers_offloaded, c->n, ln, a, c->devs[dev].label, b, d);
    } else if (best_need > best_left) {
        snprintf(buf, cap, "%s%s %s %s; %s has %s left after its %s reserve", prefix, ln,
                 best_upto > L ? "need" : "needs", a, c->devs[dev].label, b, d);
    } else {
        snprintf(buf, cap,
                 "%s%s (%s) would fit on %s (%s left after its %s reserve) but the cost model predicts it runs "
                 "faster on the CPU",
                 prefix, ln, a, c->devs[dev].label, b, d);
    }
}

/* ---- Entry point ------------------------------------------------------------------ */

static strata_status no_fit(const plan_ctx *c) {
    /* The GPUs hold at most [q, n); the CPU must hold the rest. */
    int32_t q = c->n;
    if (c->exact) {
        size_t n1 = (size_t)c->n + 1, ns = (size_t)1 << c->m;
        for (int32_t p = 0; p <= c->n && q == c->n; p++)
            for (size_t S = 0; S < ns; S++)
                if (c->best[S * n1 + (size_t)p] != INF_COST) {
                    q = p;
                    break;
                }
    } else {
        for (int32_t p = 0; p <= c->n; p++)
            if (c->best[(size_t)p] != INF_COST) {
                q = p;
                break;
            }
    }
    uint64_t w, kv, comp;
    uint64_t need = need_cpu_parts(c, q, &w, &kv, &comp);
    char a[32], b[32], d[32], e[32];
    plan_format_bytes(need - c->budget[c->cpu], a, sizeof a);
    plan_format_bytes(need, b, sizeof b);
    plan_format_bytes(c->budget[c->cpu], d, sizeof d);
    plan_format_bytes(c->devs[c->cpu].reserve_bytes, e, sizeof e);
    if (c->m == 0 || q == c->n)
        return strata_fail(STRATA_ERR_NO_FIT,
                           "the model does not fit: %s short; the CPU needs %s for %s layers and has %s after its %s "
                           "reserve%s",
                           a, b, q == c->n ? "all" : "its", d, e,
                           c->m ? ", and no GPU can hold even the output layer" : "");
    return strata_fail(STRATA_ERR_NO_FIT,
                       "the model does not fit: %s short; with layers %d-%d on GPUs (the most they hold), the CPU "
                       "needs %s for layers 0-%d and has %s after its %s reserve",
                       a, q, c->n - 1, b, q - 1, d, e);
}

strata_status plan_compute(const plan_profile *prof, const plan_device *devs, int32_t n_devs,
                           const plan_options *opt, plan_result *out) {
    memset(out, 0, sizeof *out);
    plan_ctx c;
    strata_status st = ctx_init(&c, prof, devs, n_devs, opt);
    if (st != STRATA_OK) {
        ctx_free(&c);
        return st;
    }
    int32_t n = c.n;
    int32_t want_p = -1; /* fixed CPU prefix when num_gpu is given */
    char prefix[96] = "";
    if (opt->num_gpu >= 0) {
        int32_t N = opt->num_gpu > n ? n : opt->num_gpu;
        if (opt->num_gpu > n)
            snprintf(prefix, sizeof prefix, "num_gpu %d is more than the %d layers: all offloaded; ", opt->num_gpu, n);
        want_p = n - N;
    }
    bool proportional = opt->mode == PLAN_SPREAD || opt->n_split > 0;
    int32_t start[PLAN_MAX_DEVICES], end[PLAN_MAX_DEVICES], order[PLAN_MAX_DEVICES], n_order = 0;

    if (proportional) {
        double share[PLAN_MAX_DEVICES];
        for (int32_t k = 0; k < c.m; k++)
            share[k] = opt->n_split > 0 ? (k < opt->n_split ? opt->tensor_split[k] : 0) : (double)c.budget[c.gpu[k]];
        c.exact = false;
        candidate got = {.ok = false};
        if (want_p >= 0) {
            got = deal(&c, want_p, share, start, end, order, &n_order);
            if (!got.ok) {
                int32_t q = -1;
                for (int32_t p = 0; p <= n && q < 0; p++)
                    if (deal(&c, p, share, start, end, order, &n_order).ok) q = p;
                ctx_free(&c);
                if (q < 0) return strata_fail(STRATA_ERR_NO_FIT, "num_gpu %d: the model does not fit with this split at all", opt->num_gpu);
                return strata_fail(STRATA_ERR_NO_FIT,
                                   "num_gpu %d does not fit with this split: at most %d layers fit on the GPUs "
                                   "(num_gpu %d)",
                                   opt->num_gpu, n - q, n - q);
            }
        } else {
            for (int32_t p = 0; p <= n && !got.ok; p++) got = deal(&c, p, share, start, end, order, &n_order);
            if (!got.ok) {
                ctx_free(&c);
                return strata_fail(STRATA_ERR_NO_FIT, "the model does not fit on these devices with this split");
            }
        }
        fill_result(&c, got.p, start, end, order, n_order, out);
        out->exact = false;
        char pre[160];
        snprintf(pre, sizeof pre, "%slayers dealt to the GPUs in proportion to %s; ", prefix,
                 opt->n_split > 0 ? "tensor_split" : "their budgets (spread)");
        explain(&c, out, pre, out->explanation, sizeof out->explanation);
        ctx_free(&c);
        return STRATA_OK;
    }

    c.exact = c.m <= PLAN_EXACT_MAX_GPUS;
    st = c.exact ? search_exact(&c) : search_fixed_order(&c);
    if (st != STRATA_OK) {
        ctx_free(&c);
        return st;
    }
    candidate got = {.ok = false};
    if (want_p >= 0) {
        got = best_at(&c, want_p, want_p == 0 && opt->mode == PLAN_FEWEST);
        if (!got.ok) {
            int32_t q = min_feasible_prefix(&c);
            if (q < 0) {
                st = no_fit(&c);
                ctx_free(&c);
                return st;
            }
            /* Say why the next layer does not fit, from the best plan that does. */
            candidate alt = best_at(&c, q, false);
            chain_ranges(&c, &alt, start, end, order, &n_order);
            plan_result tmp;
            fill_result(&c, q, start, end, order, n_order, &tmp);
            plan_options o2 = *opt;
            o2.num_gpu = -1;
            c.opt = &o2;
            char why[512];
            explain(&c, &tmp, "", why, sizeof why);
            ctx_free(&c);
            return strata_fail(STRATA_ERR_NO_FIT, "num_gpu %d does not fit; the largest that does is num_gpu %d (%s)",
                               opt->num_gpu, n - q, why);
        }
    } else {
        if (opt->mode == PLAN_FEWEST) got = best_at(&c, 0, true);
        if (!got.ok) {
            for (int32_t p = 0; p <= n; p++) {
                candidate t = best_at(&c, p, false);
                if (!t.ok) continue;
                if (!got.ok || t.cost < got.cost || (t.cost == got.cost && t.n_gpus < got.n_gpus)) got = t;
            }
        }
        if (!got.ok) {
            st = no_fit(&c);
            ctx_free(&c);
            return st;
        }
    }
    chain_ranges(&c, &got, start, end, order, &n_order);
    fill_result(&c, got.p, start, end, order, n_order, out);
    explain(&c, out, prefix, out->explanation, sizeof out->explanation);
    ctx_free(&c);
    return STRATA_OK;
}
