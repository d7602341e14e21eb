/* Loading a model per plan: one arena per device, of exactly the planned bytes. See the
 * "Loading per plan" section of generate.h. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "planner/plan.h"
#include "runtime/engine_internal.h"

strata_load_params strata_load_default_params(void) {
    strata_load_params lp;
    memset(&lp, 0, sizeof lp);
    lp.model = model_default_params();
    lp.num_parallel = 1;
    lp.plan = plan_default_options();
    lp.reserve = NULL;
    lp.num_cpu_moe = -1;
    return lp;
}

static int32_t min_i32(int32_t a, int32_t b) { return a < b ? a : b; }

strata_status strata_load_plan_make(const char *path, const strata_load_params *lp, backend_inventory *inv,
                                    const int64_t *free_delta, strata_load_plan *out) {
    memset(out, 0, sizeof *out);
    if (lp->model.n_logits > 1)
        return strata_fail(STRATA_ERR_INVALID, "load: a planned context keeps the last token's logits only (n_logits 1)");
    if (lp->num_parallel < 0) return strata_fail(STRATA_ERR_INVALID, "load: num_parallel must be at least 1");
    gguf_file *f = NULL;
    plan_model *pm = NULL;
    strata_status st = gguf_open(path, GGUF_OPEN_HEADER_ONLY, &f);
    plan_model_options mo = plan_default_model_options();
    mo.num_ctx = lp->model.n_ctx;
    mo.num_batch = lp->model.n_batch;
    mo.num_parallel = lp->num_parallel > 0 ? lp->num_parallel : 1;
    mo.kv_type = lp->model.kv_type;
    mo.embeddings = lp->model.embeddings;
    mo.num_cpu_moe = lp->num_cpu_moe;
    plan_device pdevs[PLAN_MAX_DEVICES];
    int32_t nd = 0;
    if (st == STRATA_OK) st = plan_devices_from_inventory(inv, lp->reserve, pdevs, out->inv_index, &nd);
    for (int32_t i = 0; st == STRATA_OK && free_delta && i < nd; i++) {
        int64_t dl = free_delta[out->inv_index[i]];
        uint64_t fb = pdevs[i].free_bytes;
        pdevs[i].free_bytes = dl >= 0 ? fb + (uint64_t)dl : (fb > (uint64_t)-dl ? fb - (uint64_t)-dl : 0);
    }
    if (st == STRATA_OK) st = plan_compute_moe(f, &mo, pdevs, nd, &lp->plan, &pm, &out->plan);
    if (st == STRATA_OK) {
        out->params = *plan_model_params(pm);
        out->params.n_threads = lp->model.n_threads;
        out->n_ctx_seq = plan_model_n_ctx(pm);
        for (int32_t i = 0; i < nd; i++) {
            snprintf(out->labels[i], sizeof out->labels[i], "%s", pdevs[i].label);
            out->kinds[i] = pdevs[i].kind;
        }
    }
    plan_model_free(pm);
    gguf_close(f);
    return st;
}

strata_status strata_engine_load_with_plan(const char *path, const strata_load_params *lp, backend_inventory *inv,
                                           const strata_load_plan *lplan, strata_engine **out) {
    *out = NULL;
    int64_t t0 = strata_now_ns();
    strata_engine *e = calloc(1, sizeof *e);
    if (!e) return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    e->planned = true;
    e->plan = lplan->plan;
    memcpy(e->plan_inv, lplan->inv_index, sizeof e->plan_inv);
    strata_status st = STRATA_OK;
    for (int32_t i = 0; i < e->plan.n_devices; i++) {
        if (e->plan_inv[i] < 0 || e->plan_inv[i] >= inv->count ||
            strcmp(backend_device_label(inv->devices[e->plan_inv[i]]), lplan->labels[i]) != 0) {
            st = strata_fail(STRATA_ERR_INVALID, "load: the plan names device %s, not in this inventory", lplan->labels[i]);
            break;
        }
        e->plan_dev[i] = inv->devices[e->plan_inv[i]];
    }

    /* What devices with memory of their own have free before the load, to measure after it. */
    uint64_t before[PLAN_MAX_DEVICES] = {0};
    for (int32_t i = 0; st == STRATA_OK && i < e->plan.n_devices; i++)
        if (backend_device_kind_of(e->plan_dev[i]) != BACKEND_DEVICE_CPU && e->plan.dev[i].arena_bytes > 0 &&
            backend_device_physical_free(e->plan_dev[i], &before[i]) != STRATA_OK)
            before[i] = 0;

    /* The model, its vocabulary, and the context placed as planned. */
    if (st == STRATA_OK) st = gguf_open(path, GGUF_OPEN_DEFAULT, &e->file);
    if (st == STRATA_OK) st = model_desc_init(e->file, &e->desc);
    if (st == STRATA_OK && !lp->skip_vocab) st = strata_vocab_load(e->file, &e->vocab);
    if (st == STRATA_OK) {
        const int32_t nl = e->desc.hp.n_layer;
        model_params p = lplan->params; /* exactly what the plan was sized with */
        model_placement place[PLAN_MAX_DEVICES];
        e->n_devs = e->plan.n_chain;
        for (int32_t j = 0; j < e->plan.n_chain; j++) {
            int32_t idx = e->plan.chain[j];
            const plan_device_use *u = &e->plan.dev[idx];
            strata_device_init_backend(&e->devs[j], e->plan_dev[idx]);
            e->dev_plan[j] = idx;
            place[j] = (model_placement){&e->devs[j], min_i32(u->layer_start, nl), min_i32(u->layer_end, nl),
                                         u->layer_end == nl + 1};
        }
        st = model_context_init_placed(&e->desc, &p, place, e->n_devs, &e->ctx);
    }
    /* Planned == allocated, checked on every load: a difference is a bug, not a crash. */
    for (int32_t j = 0; st == STRATA_OK && j < e->n_devs; j++) {
        const plan_device_use *u = &e->plan.dev[e->dev_plan[j]];
        if ((uint64_t)e->devs[j].arena.size != u->arena_bytes || e->devs[j].arena.used != e->devs[j].arena.size)
            st = strata_fail(STRATA_ERR_INVALID,
                             "load: device %s: planned %" PRIu64 " bytes but allocated %zu (used %zu)",
                             e->devs[j].name, u->arena_bytes, e->devs[j].arena.size, e->devs[j].arena.used);
    }
    for (int32_t i = 0; st == STRATA_OK && i < e->plan.n_devices; i++) {
        uint64_t after = 0;
        if (before[i] && backend_device_physical_free(e->plan_dev[i], &after) == STRATA_OK)
            e->measured[i] = before[i] > after ? before[i] - after : 0;
    }
    if (st != STRATA_OK) {
        strata_engine_free(e);
        return st;
    }
    e->load_ns = strata_now_ns() - t0;
    *out = e;
    return STRATA_OK;
}

strata_status strata_engine_load_planned(const char *path, const strata_load_params *lp, backend_inventory *inv,
                                         strata_engine **out) {
    *out = NULL;
    int64_t t0 = strata_now_ns();
    strata_load_plan *plan = malloc(sizeof *plan);
    if (!plan) return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    strata_status st = strata_load_plan_make(path, lp, inv, NULL, plan);
    if (st == STRATA_OK) st = strata_engine_load_with_plan(path, lp, inv, plan, out);
    free(plan);
    if (st == STRATA_OK) (*out)->load_ns = strata_now_ns() - t0;
    return st;
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
        r->name = backend_device_label(e->plan_dev[i]);
        r->kind = backend_device_kind_of(e->plan_dev[i]);
        for (int32_t j = 0; j < e->n_devs; j++) {
            if (e->dev_plan[j] != i) continue;
            const strata_device *sd = &e->devs[j];
            model_segment_usage su;
            model_context_segment_usage(e->ctx, j, &su);
            /* offloadable range: the blocks, and the output layer as index n_layer */
            r->layer_start = su.layer_start;
            r->layer_end = su.has_output ? nl + 1 : su.layer_end;
            if (su.layer_end <= su.layer_start && !su.has_output) r->layer_start = r->layer_end = su.layer_start;
            if (!strata_device_ops(sd)->host_memory) { /* the weights are in its arena */
                r->weights_bytes = su.weights_bytes;
            } else {
                /* mapped: its blocks, the output layer, the token embedding (and rope factors) */
                uint64_t w = d->tok_embd->bytes + (d->rope_freqs ? d->rope_freqs->bytes : 0);
                for (int32_t il = su.layer_start; il < su.layer_end; il++) w += model_layer_weight_bytes(d, il);
                if (su.has_output) w += model_output_weight_bytes(d);
                /* the experts other devices' blocks leave on the host (num_cpu_moe), and the
                 * host memory their products use, as the plan counts them */
                const model_params *mp = model_context_params(e->ctx);
                bool host_moe = false;
                for (int32_t k = 0; k < e->n_devs; k++) {
                    model_segment_usage so;
                    model_context_segment_usage(e->ctx, k, &so);
                    const backend_ops *ops = strata_device_ops(&e->devs[k]);
                    for (int32_t il = so.layer_start; il < so.layer_end; il++)
                        if (ops && model_layer_host_experts(d, mp, ops, il)) {
                            w += model_layer_expert_bytes(d, il);
                            host_moe = true;
                        }
                }
                if (host_moe) w += model_host_moe_bytes(d, mp);
                r->weights_bytes = w;
            }
            r->kv_bytes = su.kv_bytes;
            r->compute_bytes = su.compute_bytes;
            r->total_bytes = r->weights_bytes + r->kv_bytes + r->compute_bytes;
            r->arena_bytes = su.arena_bytes;
            r->measured_bytes = e->measured[i];
            r->unaccounted_bytes = e->measured[i] > su.arena_bytes ? e->measured[i] - su.arena_bytes : 0;
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
                " total %" PRIu64 " arena %" PRIu64 " free %" PRIu64 " reserve %" PRIu64 " headroom %" PRIu64,
                r->name, backend_device_kind_name(r->kind), r->layer_start, r->layer_end, r->weights_bytes,
                r->kv_bytes, r->compute_bytes, r->total_bytes, r->arena_bytes, r->free_bytes, r->reserve_bytes,
                r->headroom_bytes);
        if (r->kind != BACKEND_DEVICE_CPU && r->arena_bytes)
            fprintf(fp, " measured %" PRIu64 " unaccounted %" PRIu64, r->measured_bytes, r->unaccounted_bytes);
        fputc('\n', fp);
    }
    fprintf(fp, "strata: layers offloaded %d/%d; %s\n", e->plan.layers_offloaded, e->plan.layers_total,
            e->plan.explanation);
}

/* ---- Reading an engine (generate.h) --------------------------------------------------- */

void strata_engine_get_info(const strata_engine *e, strata_engine_info *out) {
    memset(out, 0, sizeof *out);
    const model_desc *d = &e->desc;
    const model_params *p = model_context_params(e->ctx);
    out->arch = d->hp.arch->name;
    out->n_vocab = d->hp.n_vocab;
    out->n_embd = d->hp.n_embd;
    out->n_layer = d->hp.n_layer;
    out->n_ctx = p->n_ctx;
    out->n_batch = p->n_batch;
    out->n_threads = p->n_threads;
    out->kv_type = p->kv_type;
    out->n_devices = e->planned ? e->n_devs : 1;
    out->cpu_only = true;
    for (int32_t j = 0; e->planned && j < e->n_devs; j++)
        if (e->devs[j].backend && backend_device_kind_of(e->devs[j].backend) != BACKEND_DEVICE_CPU) out->cpu_only = false;
    for (int64_t i = 0; i < gguf_tensor_count(e->file); i++) out->tensor_bytes += gguf_tensor_at(e->file, i)->bytes;
    /* Generation reads every weight once per token; of the token embedding one row, unless it
     * doubles as the output layer. */
    out->decode_weight_bytes = out->tensor_bytes;
    if (d->output != d->tok_embd)
        out->decode_weight_bytes -= d->tok_embd->bytes - strata_type_row_bytes(d->tok_embd->type, d->tok_embd->ne[0]);
    out->kv_bytes_per_position = (uint64_t)model_kv_bytes_per_token(&d->hp, p->kv_type) * (uint64_t)d->hp.n_layer;
    out->file_bytes = gguf_file_size(e->file);
    out->load_ns = e->load_ns;
}

const strata_vocab *strata_engine_vocab(const strata_engine *e) { return e->vocab; }
int32_t strata_engine_n_vocab(const strata_engine *e) { return e->desc.hp.n_vocab; }
uint64_t strata_engine_file_bytes(const strata_engine *e) { return gguf_file_size(e->file); }
int32_t strata_engine_n_embd(const strata_engine *e) { return e->desc.hp.n_embd; }

strata_status strata_engine_decode(strata_engine *e, const int32_t *tokens, int32_t n, int32_t pos) {
    return model_decode(e->ctx, tokens, n, pos);
}

const float *strata_engine_logits(const strata_engine *e, int32_t i) { return model_logits(e->ctx, i); }
int32_t strata_engine_logits_count(const strata_engine *e) { return model_logits_count(e->ctx); }
const float *strata_engine_hidden(const strata_engine *e, int32_t i) { return model_hidden(e->ctx, i); }

const plan_result *strata_engine_plan(const strata_engine *e) { return e->planned ? &e->plan : NULL; }

const char *strata_engine_device_label(const strata_engine *e, int32_t i) {
    STRATA_ASSERT(e->planned && i >= 0 && i < e->plan.n_devices);
    return backend_device_label(e->plan_dev[i]);
}

backend_device_kind strata_engine_device_kind(const strata_engine *e, int32_t i) {
    STRATA_ASSERT(e->planned && i >= 0 && i < e->plan.n_devices);
    return backend_device_kind_of(e->plan_dev[i]);
}

uint64_t strata_engine_device_arena(const strata_engine *e, int32_t i) {
    for (int32_t j = 0; e->planned && j < e->n_devs; j++)
        if (e->dev_plan[j] == i) return e->devs[j].arena.size;
    return 0;
}

uint64_t strata_engine_device_measured(const strata_engine *e, int32_t i) {
    return e->planned && i >= 0 && i < e->plan.n_devices ? e->measured[i] : 0;
}
