/* `strata plan MODEL [--devices SPEC] [options] [--json]`: where every layer would go, what
 * each device's arena would hold, the predicted decode speed and the binding constraint.
 * Reads the GGUF header only, so header-only and sparse what-if files plan like real ones;
 * nothing is allocated on any device. */
#include <cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/env.h"
#include "backend/device.h"
#include "cli/cli.h"
#include "cli/run_options.h"
#include "cli/util.h"
#include "planner/plan.h"

static void usage(void) {
    printf("Usage: strata plan MODEL.gguf [--devices SPEC] [options] [--json]\n\n"
           "Plans where every layer of MODEL goes and prints, per device, its layer range and the bytes\n"
           "of weights, KV cache and compute buffers its arena would hold, the headroom left, the\n"
           "layers offloaded (the output layer counts as one), the predicted decode speed, and the\n"
           "constraint that binds. Only the header is read: a header-only or sparse file works.\n\n"
           "  --devices SPEC       KIND[:MEMORY[:GBPS[:NAME]]],... (env STRATA_DEVICES), e.g.\n"
           "                       sim:12GiB:360:RTX3060,sim:12GiB:288:A2000; the cpu is always there\n"
           "  --reserve R          kept free per GPU: SIZE, or NAME=SIZE,... (default 256MiB for GPUs,\n"
           "                       0 for the cpu; env STRATA_GPU_RESERVE)\n"
           "  --num_gpu N          exactly N layers on GPUs (-1 = as many as pay off; default)\n"
           "  --main_gpu K         the GPU (0-based, among GPUs) holding the output layer\n"
           "  --tensor_split A,B   deal layers to the GPUs in these proportions\n"
           "  --spread             use every GPU (in proportion to its budget)\n"
           "  --fewest             the fewest GPUs that hold the model (default)\n"
           "  --num_ctx N          context per sequence (default 4096, capped by the model's)\n"
           "  --num_batch N        tokens per batch (default 512)\n"
           "  --num_parallel N     sequences served at once (default 1)\n"
           "  --kv_type T          f16 (default), q8_0 or f32\n"
           "  --num_cpu_moe N      keep the experts of blocks 0..N-1 on the CPU while the rest of\n"
           "                       those blocks runs on a GPU (default: the planner chooses N when\n"
           "                       it predicts faster decoding than moving whole layers)\n"
           "  --json               print JSON\n"
           "Options may be spelt --num-gpu or --num_gpu. In JSON, layer ranges are [layer_start,\n"
           "layer_end); the last layer is the output layer.\n");
}

static bool parse_i32(const char *s, int32_t lo, int32_t *out) {
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > INT32_MAX) return false;
    *out = (int32_t)v;
    return true;
}

static void range_text(const plan_device_use *u, char *buf, size_t cap) {
    if (u->layer_end <= u->layer_start) snprintf(buf, cap, "-");
    else if (u->layer_end - u->layer_start == 1) snprintf(buf, cap, "%d", u->layer_start);
    else snprintf(buf, cap, "%d-%d", u->layer_start, u->layer_end - 1);
}

static int print_json(const char *model, const plan_model *pm, const plan_device *devs, const plan_result *r,
                      const backend_inventory *inv) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "model", model);
    cJSON_AddStringToObject(root, "architecture", plan_model_arch(pm));
    cJSON_AddNumberToObject(root, "num_ctx", plan_model_n_ctx(pm));
    cJSON_AddNumberToObject(root, "num_batch", plan_model_n_batch(pm));
    cJSON *arr = cJSON_AddArrayToObject(root, "devices");
    for (int32_t i = 0; i < r->n_devices; i++) {
        const plan_device_use *u = &r->dev[i];
        cJSON *o = plan_device_use_json(arr, devs[i].label, devs[i].kind, u);
        cli_json_add_u64(o, "free_bytes", u->free_bytes);
        cli_json_add_u64(o, "reserve_bytes", u->reserve_bytes);
        cli_json_add_u64(o, "total_bytes", u->total_bytes);
        cli_json_add_u64(o, "arena_bytes", u->arena_bytes);
        cli_json_add_u64(o, "headroom_bytes", u->headroom_bytes);
        cJSON_AddNumberToObject(o, "gbps", devs[i].gbps);
    }
    cJSON *un = cJSON_AddArrayToObject(root, "unplanned_devices");
    for (int i = 0; i < inv->count; i++)
        if (!backend_device_plannable(inv->devices[i])) cJSON_AddItemToArray(un, cJSON_CreateString(backend_device_label(inv->devices[i])));
    cli_json_add_u64(root, "host_bytes", r->host_bytes);
    const plan_swa_cache sw = plan_model_swa_cache(pm);
    cJSON_AddNumberToObject(root, "sliding_window_layers", sw.local_layers);
    cli_json_add_u64(root, "kv_bytes", sw.kv_bytes);
    cli_json_add_u64(root, "kv_full_cache_bytes", sw.kv_full_bytes);
    cJSON_AddNumberToObject(root, "layers_offloaded", r->layers_offloaded);
    cJSON_AddNumberToObject(root, "layers_total", r->layers_total);
    cJSON_AddNumberToObject(root, "predicted_tokens_per_second", r->tokens_per_second);
    cJSON_AddStringToObject(root, "explanation", r->explanation);
    return cli_json_print(root);
}

static void print_table(const char *model, const plan_model *pm, const plan_model_options *mo,
                        const plan_device *devs, const plan_result *r, const backend_inventory *inv) {
    printf("model: %s (%s, %d blocks + output layer = %d layers), num_ctx %d x %d, num_batch %d, kv %s\n\n", model,
           plan_model_arch(pm), plan_model_n_layer(pm), r->layers_total, plan_model_n_ctx(pm), mo->num_parallel,
           plan_model_n_batch(pm), strata_type_name(mo->kv_type));
    printf("%-14s %-4s %11s %9s %7s %11s %10s %10s %11s %10s\n", "DEVICE", "KIND", "FREE", "RESERVE", "LAYERS",
           "WEIGHTS", "KV", "COMPUTE", "TOTAL", "HEADROOM");
    for (int32_t j = 0; j < r->n_devices; j++) {
        const plan_device_use *u = &r->dev[j];
        char f[32], rs[32], lr[32], w[32], kv[32], c[32], t[32], h[32];
        cli_format_bytes(u->free_bytes, f, sizeof f);
        cli_format_bytes(u->reserve_bytes, rs, sizeof rs);
        range_text(u, lr, sizeof lr);
        cli_format_bytes(u->weights_bytes, w, sizeof w);
        cli_format_bytes(u->kv_bytes, kv, sizeof kv);
        cli_format_bytes(u->compute_bytes, c, sizeof c);
        cli_format_bytes(u->total_bytes, t, sizeof t);
        cli_format_bytes(u->headroom_bytes, h, sizeof h);
        printf("%-14s %-4s %11s %9s %7s %11s %10s %10s %11s %10s\n", devs[j].label,
               backend_device_kind_name(devs[j].kind), f, rs, lr, w, kv, c, t, h);
    }
    for (int i = 0; i < inv->count; i++)
        if (!backend_device_plannable(inv->devices[i]))
            printf("%-14s %-4s not planned: this build cannot run layers on it\n", backend_device_label(inv->devices[i]),
                   backend_device_kind_name(backend_device_kind_of(inv->devices[i])));
    char hb[32];
    cli_format_bytes(r->host_bytes, hb, sizeof hb);
    /* the CPU's arena beyond its KV and compute: the matrices its kernels keep repacked */
    uint64_t repacked = 0;
    for (int32_t j = 0; j < r->n_devices; j++)
        if (devs[j].kind == BACKEND_DEVICE_CPU)
            repacked += r->dev[j].arena_bytes - r->dev[j].kv_bytes - r->dev[j].compute_bytes;
    printf("\nlayer %d is the output layer; the CPU's weights stay mapped from the file", r->layers_total - 1);
    if (repacked) {
        char rb[32];
        cli_format_bytes(repacked, rb, sizeof rb);
        printf(", except %s of Q4_0 and Q4_K matrices, repacked into its arena for its kernels", rb);
    }
    printf("\n");
    printf("host memory:        %s\n", hb);
    const plan_swa_cache sw = plan_model_swa_cache(pm);
    if (sw.local_layers > 0) {
        char kb[32], fb[32], sb[32];
        cli_format_bytes(sw.kv_bytes, kb, sizeof kb);
        cli_format_bytes(sw.kv_full_bytes, fb, sizeof fb);
        cli_format_bytes(sw.kv_full_bytes - sw.kv_bytes, sb, sizeof sb);
        printf("sliding window:     %d of %d blocks keep a ring of %d + %d positions: KV %s instead of %s (saves %s)\n",
               sw.local_layers, plan_model_n_layer(pm), sw.window, plan_model_n_batch(pm), kb, fb, sb);
    }
    printf("layers offloaded:   %d/%d\n", r->layers_offloaded, r->layers_total);
    printf("predicted decode:   %.2f tokens/s\n", r->tokens_per_second);
    printf("%s\n", r->explanation);
}

int cmd_plan(int argc, char **argv) {
    const char *spec = getenv("STRATA_DEVICES"), *reserve_text = NULL, *model = NULL;
    bool json = false;
    plan_options po = plan_default_options();
    plan_model_options mo = plan_default_model_options();
    run_options ro;
    run_options_init(&ro);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            usage();
            return 0;
        }
        if (a[0] != '-' || a[1] == 0) {
            if (model) return cli_error("plan: more than one model ('%s' and '%s')", model, a);
            model = a;
            continue;
        }
        if (cli_opt_is(a, "json")) {
            json = true;
            continue;
        }
        if (cli_opt_is(a, "spread")) {
            po.mode = PLAN_SPREAD;
            continue;
        }
        if (cli_opt_is(a, "fewest")) {
            po.mode = PLAN_FEWEST;
            continue;
        }
        bool takes = cli_opt_is(a, "devices") || cli_opt_is(a, "reserve") || cli_opt_is(a, "num_gpu") ||
                     cli_opt_is(a, "main_gpu") || cli_opt_is(a, "tensor_split") || cli_opt_is(a, "num_parallel");
        if (takes) {
            if (i + 1 >= argc) return cli_error("option %s needs a value", a);
            const char *v = argv[++i];
            if (cli_opt_is(a, "devices")) spec = v;
            else if (cli_opt_is(a, "reserve")) reserve_text = v;
            else if (cli_opt_is(a, "num_gpu")) {
                if (!parse_i32(v, -1, &po.num_gpu)) return cli_error("option %s: '%s' is not -1 or a layer count", a, v);
            } else if (cli_opt_is(a, "main_gpu")) {
                if (!parse_i32(v, -1, &po.main_gpu)) return cli_error("option %s: '%s' is not a GPU index", a, v);
            } else if (cli_opt_is(a, "num_parallel")) {
                if (!parse_i32(v, 1, &mo.num_parallel)) return cli_error("option %s: '%s' is not a count >= 1", a, v);
            } else { /* tensor_split */
                po.n_split = 0;
                const char *p = v;
                while (*p) {
                    char *end = NULL;
                    errno = 0;
                    double x = strtod(p, &end);
                    if (errno || end == p || !(x >= 0) || (*end && *end != ',') || po.n_split >= PLAN_MAX_DEVICES)
                        return cli_error("option %s: '%s' is not a list of proportions (e.g. 3,1)", a, v);
                    po.tensor_split[po.n_split++] = x;
                    p = *end ? end + 1 : end;
                }
                if (po.n_split == 0) return cli_error("option %s: empty list", a);
            }
            continue;
        }
        int used = run_options_parse(&ro, argc - i, argv + i);
        if (used < 0) return 1;
        if (used == 0) return cli_error("plan: unknown option '%s' (see 'strata plan --help')", a);
        i += used - 1;
    }
    if (!model) return cli_error("plan: which model? (strata plan MODEL.gguf)");
    mo.num_ctx = ro.model.n_ctx;
    mo.num_batch = ro.model.n_batch;
    mo.kv_type = ro.model.kv_type;
    mo.num_cpu_moe = ro.num_cpu_moe;
    if (mo.num_cpu_moe < -1) return cli_error("option --num_cpu_moe: %d is not -1 or a block count", mo.num_cpu_moe);

    gguf_file *f = NULL;
    if (gguf_open(model, GGUF_OPEN_HEADER_ONLY, &f) != STRATA_OK) return cli_error("%s", strata_last_error());
    plan_model *pm = NULL;
    backend_inventory *inv = NULL;
    int rc = 0;
    if (backend_inventory_from_spec(spec, &inv) != STRATA_OK) {
        rc = cli_error("%s", strata_last_error());
        goto done;
    }
    uint64_t reserve[BACKEND_MAX_DEVICES];
    plan_device devs[PLAN_MAX_DEVICES];
    int32_t nd = 0;
    if (plan_reserve_parse(inv, strata_getenv("STRATA_GPU_RESERVE"), reserve_text, reserve) != STRATA_OK ||
        plan_devices_from_inventory(inv, reserve, devs, NULL, &nd) != STRATA_OK) {
        rc = cli_error("%s", strata_last_error());
        goto done;
    }
    plan_result r;
    if (plan_compute_moe(f, &mo, devs, nd, &po, &pm, &r) != STRATA_OK) {
        rc = cli_error("%s", strata_last_error());
        goto done;
    }
    if (json) rc = print_json(model, pm, devs, &r, inv);
    else print_table(model, pm, &mo, devs, &r, inv);
done:
    backend_inventory_free(inv);
    plan_model_free(pm);
    gguf_close(f);
    return rc;
}
