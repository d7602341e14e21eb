/* Loading a model per plan: one arena per device, of exactly the planned bytes. See the
 * "Loading per plan" section of generate.h. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "planner/plan.h"
#include "runtime/generate.h"

strata_load_params strata_load_default_params(void) {
    strata_load_params lp;
    memset(&lp, 0, sizeof lp);
    lp.model = model_default_params();
    lp.num_parallel = 1;
    lp.plan = plan_default_options();
    lp.reserve = NULL;
    return lp;
}

static int32_t min_i32(int32_t a, int32_t b) { return a < b ? a : b; }

strata_status strata_engine_load_planned(const char *path, const strata_load_params *lp, backend_inventory *inv,
                                         strata_engine **out) {
    *out = NULL;
    int64_t t0 = strata_now_ns();
    if (lp->model.n_logits > 1)
        return strata_fail(STRATA_ERR_INVALID, "load: a planned context keeps the last token's logits only (n_logits 1)");
    if (lp->num_parallel < 0) return strata_fail(STRATA_ERR_INVALID, "load: num_parallel must be at least 1");
    strata_engine *e = calloc(1, sizeof *e);
    if (!e) return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    e->planned = true;
    plan_model *pm = NULL;
    strata_status st = gguf_open(path, GGUF_OPEN_DEFAULT, &e->file);

    /* 1. The plan, from the header, before anything is allocated on any device. */
    plan_model_options mo = plan_default_model_options();
    mo.num_ctx = lp->model.n_ctx;
    mo.num_batch = lp->model.n_batch;
    mo.num_parallel = lp->num_parallel > 0 ? lp->num_parallel : 1;
    mo.kv_type = lp->model.kv_type;
    mo.embeddings = lp->model.embeddings;
    if (st == STRATA_OK) st = plan_model_init(e->file, &mo, &pm);
    plan_device pdevs[PLAN_MAX_DEVICES];
    int32_t nd = 0;
    if (st == STRATA_OK) st = plan_devices_from_inventory(inv, lp->reserve, pdevs, e->plan_inv, &nd);
    if (st == STRATA_OK) st = plan_compute(plan_model_profile(pm), pdevs, nd, &lp->plan, &e->plan);
    for (int32_t i = 0; st == STRATA_OK && i < nd; i++) e->plan_dev[i] = inv->devices[e->plan_inv[i]];

    /* 2. The model, its vocabulary, and the context placed as planned. */
    if (st == STRATA_OK) st = model_desc_init(e->file, &e->desc);
    if (st == STRATA_OK && !lp->skip_vocab) st = strata_vocab_load(e->file, &e->vocab);
    if (st == STRATA_OK) {
        const int32_t nl = e->desc.hp.n_layer;
        model_params p = *plan_model_params(pm); /* exactly what the plan was sized with */
        p.n_threads = lp->model.n_threads;
        model_placement place[PLAN_MAX_DEVICES];
        e->n_devs = e->plan.n_chain;
        for (int32_t j = 0; j < e->plan.n_chain; j++) {
            int32_t idx = e->plan.chain[j];
            const plan_device_use *u = &e->plan.dev[idx];
            strata_device_init_backend(&e->devs[j], inv->devices[e->plan_inv[idx]]);
            e->dev_plan[j] = idx;
            place[j] = (model_placement){&e->devs[j], min_i32(u->layer_start, nl), min_i32(u->layer_end, nl),
                                         u->layer_end == nl + 1};
        }
        st = model_context_init_placed(&e->desc, &p, place, e->n_devs, &e->ctx);
    }
    /* 3. Planned == allocated, checked on every load: a difference is a bug, not a crash. */
    for (int32_t j = 0; st == STRATA_OK && j < e->n_devs; j++) {
        const plan_device_use *u = &e->plan.dev[e->dev_plan[j]];
        if ((uint64_t)e->devs[j].arena.size != u->arena_bytes || e->devs[j].arena.used != e->devs[j].arena.size)
            st = strata_fail(STRATA_ERR_INVALID,
                             "load: device %s: planned %" PRIu64 " bytes but allocated %zu (used %zu)",
                             e->devs[j].name, u->arena_bytes, e->devs[j].arena.size, e->devs[j].arena.used);
    }
    plan_model_free(pm);
    if (st != STRATA_OK) {
        strata_engine_free(e);
        return st;
    }
    e->load_ns = strata_now_ns() - t0;
    *out = e;
    return STRATA_OK;
}

int32_t strata_engine_report(const strata_engine *e, strata_engine_device_report *out, int32_t cap) {
    if (!e->planned) return 0;
    const model_desc *d = &e->desc;
    const int32_t nl = d->hp.n_layer;
    int32_t n = e->plan.n_devices < cap ? e->plan.n_devices : cap;
    for (int32_t i = 0; i < n; i++) {
        const plan_device_use *u = &e->plan.dev[i];
        strata_engine_device_report *r = &out[i];
        memset(r, 0, sizeof *r);
        r->free_bytes = u->free_bytes;
        r->reserve_bytes = u->reserve_bytes;
        r->headroom_bytes = u->budget_bytes;
        r->name = e->plan_dev[i]->label;
        r->kind = e->plan_dev[i]->kind;
        for (int32_t j = 0; j < e->n_devs; j++) {
            if (e->dev_plan[j] != i) continue;
            const strata_device *sd = &e->devs[j];
            model_segment_usage su;
            model_context_segment_usage(e->ctx, j, &su);
            /* offloadable range: the blocks, and the output layer as index n_layer */
            r->layer_start = su.layer_start;
            r->layer_end = su.has_output ? nl + 1 : su.layer_end;
            if (su.layer_end <= su.layer_start && !su.has_output) r->layer_start = r->layer_end = su.layer_start;
            if (sd->copy_weights) {
                r->weights_bytes = su.weights_bytes;
            } else {
                /* mapped: its blocks, the output layer, the token embedding (and rope factors) */
                uint64_t w = d->tok_embd->bytes + (d->rope_freqs ? d->rope_freqs->bytes : 0);
                for (int32_t il = su.layer_start; il < su.layer_end; il++) w += model_layer_weight_bytes(d, il);
                if (su.has_output) w += model_output_weight_bytes(d);
                r->weights_bytes = w;
            }
            r->kv_bytes = su.kv_bytes;
            r->compute_bytes = su.compute_bytes;
            r->total_bytes = r->weights_bytes + r->kv_bytes + r->compute_bytes;
            r->arena_bytes = su.arena_bytes;
            uint64_t budget = u->budget_bytes;
            r->headroom_bytes = budget > r->total_bytes ? budget - r->total_bytes : 0;
        }
    }
    return n;
}

void strata_engine_print_report(const strata_engine *e, FILE *fp) {
    strata_engine_device_report rep[PLAN_MAX_DEVICES];
    int32_t n = strata_engine_report(e, rep, PLAN_MAX_DEVICES);
    for (int32_t i = 0; i < n; i++) {
        const strata_engine_device_report *r = &rep[i];
        fprintf(fp,
                "strata: device %s kind %s layers [%d, %d) weights %" PRIu64 " kv %" PRIu64 " compute %" PRIu64
                " total %" PRIu64 " arena %" PRIu64 " free %" PRIu64 " reserve %" PRIu64 " headroom %" PRIu64 "\n",
                r->name, backend_device_kind_name(r->kind), r->layer_start, r->layer_end, r->weights_bytes,
                r->kv_bytes, r->compute_bytes, r->total_bytes, r->arena_bytes, r->free_bytes, r->reserve_bytes,
                r->headroom_bytes);
    }
    fprintf(fp, "strata: layers offloaded %d/%d; %s\n", e->plan.layers_offloaded, e->plan.layers_total,
            e->plan.explanation);
}
