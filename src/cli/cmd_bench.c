/* `strata bench FILE.gguf [-p 512] [-n 128] [-d 0] [-t THREADS] [-r REPS] [-b BATCH] [--kv_type T] [--json]`:
 * prompt processing (ppP: P tokens from an empty context, in num_batch chunks) and generation
 * (tgN: N tokens decoded one at a time from an empty context) in tokens/s, mean ± sample
 * standard deviation over REPS runs after one warm-up, as llama-bench reports them. With
 * -d D both start after D tokens already in the cache ("pp512 @ d2048", as llama-bench names
 * it): the attention then reads D more positions per token. The D tokens are decoded once,
 * untimed; each run overwrites only the positions after them.
 * Tokens are random ids; nothing is sampled (the forward pass is what is measured).
 * Needs only the model's tensors, not its tokenizer. */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/host.h"
#include "cli/cli.h"
#include "cli/run_options.h"
#include "cli/util.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "runtime/generate.h"

static const char usage[] =
    "Usage: strata bench FILE.gguf [-p 512] [-n 128] [-d 0] [-t THREADS] [-r 5] [-b 512] [--kv_type f16] [--json]\n"
    "\n"
    "  -p N         prompt tokens of the pp test (0 skips it; default 512)\n"
    "  -n N         generated tokens of the tg test (0 skips it; default 128)\n"
    "  -d N         tokens already in the context when each test starts (default 0)\n"
    "  -t N         threads (default: physical cores this process may use)\n"
    "  -r N         repetitions, after one warm-up run (default 5)\n"
    "  -b N         num_batch for the pp test (default 512)\n"
    "  --kv_type T  KV cache type: f16 (default), f32, q8_0\n"
    "  --devices SPEC, --num_gpu N, --main_gpu K, --tensor_split A,B, --spread, --reserve R\n"
    "               placement, as for `strata run` (the model is loaded per plan)\n"
    "  --json       print {\"model\", \"threads\", \"results\": [{\"test\", \"tokens_per_second\", \"stddev\"}]}\n";

typedef struct {
    char name[32];
    double mean, sd;
} bench_result;

static uint64_t rng = 0x2545f4914f6cdd1dull;
static int32_t rand_token(int32_t n_vocab) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (int32_t)(rng % (uint64_t)n_vocab);
}

/* p tokens from position `at` in chunks of nb (num_batch); false on error. */
static bool decode_chunks(strata_engine *ctx, int32_t nb, const int32_t *toks, int32_t p, int32_t at) {
    for (int32_t i = 0; i < p; i += nb) {
        const int32_t m = p - i < nb ? p - i : nb;
        if (strata_engine_decode(ctx, toks + i, m, at + i) != STRATA_OK) return false;
    }
    return true;
}

/* One run from position `at`: returns tokens/s, or a negative value on error. */
static double run_pp(strata_engine *ctx, int32_t nb, const int32_t *toks, int32_t p, int32_t at) {
    const int64_t t0 = strata_now_ns();
    if (!decode_chunks(ctx, nb, toks, p, at)) return -1;
    return p / ((strata_now_ns() - t0) / 1e9);
}

static double run_tg(strata_engine *ctx, const int32_t *toks, int32_t n, int32_t at) {
    const int64_t t0 = strata_now_ns();
    for (int32_t i = 0; i < n; i++)
        if (strata_engine_decode(ctx, toks + i, 1, at + i) != STRATA_OK) return -1;
    return n / ((strata_now_ns() - t0) / 1e9);
}

static int parse_int(const char *flag, const char *v, int min, int *out) {
    char *end;
    long x = strtol(v, &end, 10);
    if (end == v || *end || x < min || x > 1 << 24) return cli_error("option %s: invalid value '%s'", flag, v);
    *out = (int)x;
    return 0;
}

int cmd_bench(int argc, char **argv) {
    const char *file = NULL;
    int p = 512, n = 128, depth = 0, threads = 0, reps = 5, batch = 512;
    bool json = false;
    strata_type kv = STRATA_TYPE_F16;
    run_options ro;
    run_options_init(&ro);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            fputs(usage, stdout);
            return 0;
        }
        if (strcmp(a, "--json") == 0) {
            json = true;
            continue;
        }
        int *target = NULL, min = 0;
        if (strcmp(a, "-p") == 0 || cli_opt_is(a, "n_prompt")) target = &p;
        else if (strcmp(a, "-n") == 0 || cli_opt_is(a, "n_gen")) target = &n;
        else if (strcmp(a, "-d") == 0 || cli_opt_is(a, "n_depth")) target = &depth;
        else if (strcmp(a, "-t") == 0 || cli_opt_is(a, "num_thread")) target = &threads, min = 1;
        else if (strcmp(a, "-r") == 0 || cli_opt_is(a, "repetitions")) target = &reps, min = 1;
        else if (strcmp(a, "-b") == 0 || cli_opt_is(a, "num_batch")) target = &batch, min = 1;
        if (target || cli_opt_is(a, "kv_type")) {
            if (i + 1 >= argc) return cli_error("option %s needs a value", a);
            const char *v = argv[++i];
            if (target) {
                if (parse_int(a, v, min, target)) return 1;
            } else if (!strata_type_from_name(v, &kv) ||
                       (kv != STRATA_TYPE_F16 && kv != STRATA_TYPE_F32 && kv != STRATA_TYPE_Q8_0)) {
                return cli_error("option --kv_type: '%s' is not one of f16, f32, q8_0", v);
            }
            continue;
        }
        if (cli_opt_is(a, "devices") || cli_opt_is(a, "reserve") || cli_opt_is(a, "num_gpu") ||
            cli_opt_is(a, "main_gpu") || cli_opt_is(a, "tensor_split") || cli_opt_is(a, "spread") ||
            cli_opt_is(a, "fewest") || cli_opt_is(a, "verbose")) {
            int used = run_options_parse(&ro, argc - i, argv + i);
            if (used < 0) return 1;
            i += used - 1;
            continue;
        }
        if (a[0] == '-') return cli_error("unknown option '%s' (see 'strata bench --help')", a);
        if (file) return cli_error("unexpected argument '%s'", a);
        file = a;
    }
    if (!file) {
        fputs(usage, stderr);
        return cli_error("missing model file");
    }

    const int longest = p > n ? p : n;
    ro.model.n_ctx = depth + longest + 1;
    ro.model.n_batch = batch;
    ro.model.n_threads = threads;
    ro.model.kv_type = kv;
    backend_inventory *inv = NULL;
    strata_engine *e = NULL;
    if (run_options_load(&ro, file, false, &inv, &e) != STRATA_OK) return cli_error("%s: %s", file, strata_last_error());
    strata_engine *ctx = e;
    strata_engine_info info;
    strata_engine_get_info(e, &info);
    const strata_engine_info *rp = &info;
    int rc = 0;
    int32_t *toks = NULL;
    if (rp->n_ctx < depth + longest) {
        rc = cli_error("%s: the model's context (%d tokens) is shorter than the test (%d)", file, rp->n_ctx,
                       depth + longest);
        goto done;
    }
    toks = malloc((size_t)(depth > longest ? depth : longest) * sizeof *toks + sizeof *toks);
    if (!toks) {
        rc = cli_error("out of memory");
        goto done;
    }
    for (int i = 0; i < (depth > longest ? depth : longest); i++) toks[i] = rand_token(info.n_vocab);
    if (depth > 0 && !decode_chunks(ctx, info.n_batch, toks, depth, 0)) {
        rc = cli_error("%s", strata_last_error());
        goto done;
    }

    bench_result res[2];
    int n_res = 0;
    for (int test = 0; test < 2; test++) {
        int count = test == 0 ? p : n;
        if (count == 0) continue;
        double *v = malloc((size_t)reps * sizeof *v);
        if (!v) {
            rc = cli_error("out of memory");
            goto done;
        }
        double sum = 0;
        for (int r = -1; r < reps; r++) {
            double tps = test == 0 ? run_pp(ctx, info.n_batch, toks, count, depth) : run_tg(ctx, toks, count, depth);
            if (tps < 0) {
                free(v);
                rc = cli_error("%s", strata_last_error());
                goto done;
            }
            if (r >= 0) {
                v[r] = tps;
                sum += tps;
            }
        }
        bench_result *br = &res[n_res++];
        if (depth > 0) snprintf(br->name, sizeof br->name, "%s%d @ d%d", test == 0 ? "pp" : "tg", count, depth);
        else snprintf(br->name, sizeof br->name, "%s%d", test == 0 ? "pp" : "tg", count);
        br->mean = sum / reps;
        double ss = 0;
        for (int r = 0; r < reps; r++) ss += (v[r] - br->mean) * (v[r] - br->mean);
        br->sd = reps > 1 ? sqrt(ss / (reps - 1)) : 0;
        free(v);
    }

    if (json) {
        cJSON *o = cJSON_CreateObject(), *arr = cJSON_CreateArray();
        cJSON_AddStringToObject(o, "model", file);
        cJSON_AddNumberToObject(o, "threads", rp->n_threads);
        cJSON_AddItemToObject(o, "results", arr);
        for (int i = 0; i < n_res; i++) {
            cJSON *r = cJSON_CreateObject();
            cJSON_AddStringToObject(r, "test", res[i].name);
            cJSON_AddNumberToObject(r, "tokens_per_second", res[i].mean);
            cJSON_AddNumberToObject(r, "stddev", res[i].sd);
            cJSON_AddItemToArray(arr, r);
        }
        rc = cli_json_print(o);
    } else {
        char size[32];
        cli_format_bytes(info.tensor_bytes, size, sizeof size);
        printf("| model | size | arch | threads | kv | test | t/s |\n");
        printf("| --- | ---: | --- | ---: | --- | ---: | ---: |\n");
        const char *base = strrchr(file, '/');
        base = base ? base + 1 : file;
        for (int i = 0; i < n_res; i++)
            printf("| %s | %s | %s | %d | %s | %s | %.2f ± %.2f |\n", base, size, info.arch, rp->n_threads,
                   strata_type_name(rp->kv_type), res[i].name, res[i].mean, res[i].sd);
    }

    /* Generation reads every weight once per token (the token embedding: one row, unless it
     * doubles as the output layer), and the cache of every position before it: with -d, that
     * part grows. Where the whole model runs on the CPU, the rate is put against the read
     * bandwidth the same number of threads measures (backend/host.h, 512 MiB, best
     * of 5), on stderr so the table and the JSON stay as llama-bench prints them. */
    const bool cpu_only = info.cpu_only;
    for (int i = 0; i < n_res; i++) {
        if (strncmp(res[i].name, "tg", 2) != 0) continue;
        const uint64_t weights = info.decode_weight_bytes;
        /* token k (0-based) of the test attends to depth + k + 1 positions */
        const double kv = (double)info.kv_bytes_per_position * (depth + (n + 1) / 2.0);
        const double per_token = (double)weights + kv, gbs = res[i].mean * per_token / 1e9;
        fprintf(stderr, "%s: %.3f GB of weights and %.3f GB of KV cache read per token, %.1f GB/s", res[i].name,
                weights / 1e9, kv / 1e9, gbs);
        const double bw = cpu_only ? backend_host_read_gbps((size_t)512 << 20, rp->n_threads, 5) : 0;
        if (bw > 0) fprintf(stderr, ": %.0f%% of the %.1f GB/s read bandwidth of %d threads", 100 * gbs / bw, bw, rp->n_threads);
        fputc('\n', stderr);
    }

done:
    free(toks);
    strata_engine_free(e);
    backend_inventory_free(inv);
    return rc;
}
