/* Planning time (issue 5: under 10 ms each) for the 70B scenario and stories260K.
 *
 *   plan_bench [STORIES260K.gguf] [REPEATS]
 *
 * The 70B model is a sparse what-if file written to $TMPDIR; stories260K defaults to
 * ../shared/testdata/models/stories260K-f32.gguf (env STRATA_TESTDATA). Each repeat times
 *   full:  gguf_open (header only) + plan_model_init (profile via the engine's sizing
 *          functions) + plan_compute, i.e. all that `strata plan` does but printing;
 *   place: plan_compute alone (the placement search).
 * Prints the median and the worst of each, in milliseconds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "planner/plan.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int bench(const char *label, const char *path, const char *spec, uint64_t host_bytes, int32_t num_ctx,
                 int repeats) {
    backend_inventory *inv;
    if (backend_inventory_from_spec(spec, &inv) != STRATA_OK) {
        fprintf(stderr, "%s\n", strata_last_error());
        return 1;
    }
    plan_device devs[PLAN_MAX_DEVICES];
    int32_t nd;
    if (plan_devices_from_inventory(inv, NULL, devs, NULL, &nd) != STRATA_OK) {
        fprintf(stderr, "%s\n", strata_last_error());
        return 1;
    }
    devs[nd - 1].free_bytes = host_bytes;
    double *full = malloc(sizeof(double) * (size_t)repeats), *place = malloc(sizeof(double) * (size_t)repeats);
    plan_result r;
    for (int i = 0; i < repeats; i++) {
        double t0 = now_ms();
        gguf_file *f;
        plan_model *m;
        if (gguf_open(path, GGUF_OPEN_HEADER_ONLY, &f) != STRATA_OK) {
            fprintf(stderr, "%s\n", strata_last_error());
            return 1;
        }
        plan_model_options mo = plan_default_model_options();
        mo.num_ctx = num_ctx;
        if (plan_model_init(f, &mo, &m) != STRATA_OK) {
            fprintf(stderr, "%s\n", strata_last_error());
            return 1;
        }
        plan_options po = plan_default_options();
        double t1 = now_ms();
        if (plan_compute(plan_model_profile(m), devs, nd, &po, &r) != STRATA_OK) {
            fprintf(stderr, "%s\n", strata_last_error());
            return 1;
        }
        double t2 = now_ms();
        plan_model_free(m);
        gguf_close(f);
        full[i] = now_ms() - t0;
        place[i] = t2 - t1;
    }
    qsort(full, (size_t)repeats, sizeof *full, cmp_double);
    qsort(place, (size_t)repeats, sizeof *place, cmp_double);
    printf("%-12s %3d/%-3d layers offloaded  full: median %7.3f ms, worst %7.3f ms   placement: median %7.3f ms, "
           "worst %7.3f ms  (%d runs)\n",
           label, r.layers_offloaded, r.layers_total, full[repeats / 2], full[repeats - 1], place[repeats / 2],
           place[repeats - 1], repeats);
    free(full);
    free(place);
    backend_inventory_free(inv);
    return 0;
}

int main(int argc, char **argv) {
    int repeats = argc > 2 ? atoi(argv[2]) : 200;
    if (repeats < 1) repeats = 1;
    char stories[1024];
    if (argc > 1) {
        snprintf(stories, sizeof stories, "%s", argv[1]);
    } else {
        const char *td = getenv("STRATA_TESTDATA");
        snprintf(stories, sizeof stories, "%s/models/stories260K-f32.gguf", td ? td : "../shared/testdata");
    }
    const char *tmp = getenv("TMPDIR");
    char path70[1024];
    snprintf(path70, sizeof path70, "%s/strata-plan-bench-70b-%d.gguf", tmp ? tmp : "/tmp", (int)getpid());
    plan_llama_shape s = {.n_layer = 80, .n_embd = 8192, .n_head = 64, .n_head_kv = 8, .n_ff = 28672,
                          .n_vocab = 128256, .n_ctx_train = 131072, .q4_k_m = true};
    if (plan_whatif_write_llama(path70, &s, true, NULL) != STRATA_OK) {
        fprintf(stderr, "%s\n", strata_last_error());
        return 1;
    }
    int rc = bench("llama-70B", path70, "sim:12GiB:360:RTX3060,sim:12GiB:288:A2000,sim:6GiB:288:A2000,cpu::50",
                   64ull << 30, 4096, repeats);
    unlink(path70);
    if (rc == 0 && access(stories, R_OK) == 0)
        rc = bench("stories260K", stories, "sim:12GiB:360:RTX3060,cpu::50", 64ull << 30, 0, repeats);
    else if (rc == 0)
        printf("stories260K: %s not found, skipped\n", stories);
    return rc;
}
