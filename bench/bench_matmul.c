/* Kernel benchmark: cpu_matmul throughput per weight type.
 *
 *   bench_matmul [-r ROWS] [-c COLS] [-p PROMPT_TOKENS] [-t THREADS,...] [-T TYPE,...] [--isa scalar|avx2|avx512]
 *                [--repack]
 *
 * Generation (1 token): weight bytes streamed per second, over enough copies of the matrix
 * (>= 256 MiB in all) that they come from memory, not cache; printed next to a plain
 * streaming read of the same buffer size (the bound). Prompt (-p tokens, default 512): the
 * product's multiply-adds per second (best call of those run in the time given) (GOP/s = 2 * rows * cols * tokens / s) and the
 * equivalent tokens/s of a 1.1e9-weight model. Default shape 5632 x 2048 (TinyLlama's
 * ffn_up/ffn_gate). --repack: the types with a load-time layout (backend/cpu/repack.h) are
 * measured in it, as the CPU runs them after loading a model. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cpu/bandwidth.h"
#include "backend/cpu/matmul.h"
#include "backend/cpu/repack.h"
#include "tensor/quant.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rng = 88172645463325252ull;
static float frand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

int main(int argc, char **argv) {
    int64_t rows = 5632, cols = 2048, ptok = 512;
    int threads[8] = {1, 2}, nthreads = 2;
    const char *types_arg = "Q4_0,Q8_0,Q4_K,Q5_K,Q6_K,F16,F32";
    cpu_isa isa = cpu_isa_detect();
    bool repack = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-r") && i + 1 < argc) rows = atoll(argv[++i]);
        else if (!strcmp(argv[i], "-c") && i + 1 < argc) cols = atoll(argv[++i]);
        else if (!strcmp(argv[i], "-p") && i + 1 < argc) ptok = atoll(argv[++i]);
        else if (!strcmp(argv[i], "-T") && i + 1 < argc) types_arg = argv[++i];
        else if (!strcmp(argv[i], "--repack")) repack = true;
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) {
            nthreads = 0;
            for (char *s = argv[++i]; *s && nthreads < 8;) {
                threads[nthreads++] = (int)strtol(s, &s, 10);
                if (*s == ',') s++;
            }
        } else if (!strcmp(argv[i], "--isa") && i + 1 < argc) {
            const char *n = argv[++i];
            isa = !strcmp(n, "scalar") ? CPU_ISA_SCALAR : !strcmp(n, "avx2") ? CPU_ISA_AVX2 : CPU_ISA_AVX512;
        } else {
            fprintf(stderr, "usage: %s [-r ROWS] [-c COLS] [-p TOKENS] [-t T1,T2] [-T TYPE,...] [--isa NAME] [--repack]\n", argv[0]);
            return 2;
        }
    }
    printf("cpu_matmul benchmark: %lld x %lld, isa %s (detected %s)\n", (long long)rows, (long long)cols,
           cpu_isa_name(isa), cpu_isa_name(cpu_isa_detect()));

    float *wf = malloc(sizeof(float) * rows * cols);
    for (int64_t i = 0; i < rows * cols; i++) wf[i] = 0.02f * frand();
    float *x = malloc(sizeof(float) * ptok * cols);
    for (int64_t i = 0; i < ptok * cols; i++) x[i] = frand();
    float *y = malloc(sizeof(float) * ptok * rows);

    double bw[8];
    for (int ti = 0; ti < nthreads; ti++) {
        bw[ti] = cpu_read_bandwidth_gbps((size_t)256 << 20, threads[ti], 3);
        printf("read bandwidth, %d thread(s): %.1f GB/s\n", threads[ti], bw[ti]);
    }

    printf("%-6s %8s %4s %10s %7s %9s %10s %12s\n", "type", "MiB", "thr", "tg GB/s", "of bw", "tg ms", "pp GOP/s",
           "pp tok/s@1.1B");
    char *types = strdup(types_arg);
    for (char *name = strtok(types, ","); name; name = strtok(NULL, ",")) {
        strata_type t;
        if (!strata_type_from_name(name, &t) || !cpu_matmul_supports(t) || !strata_type_can_quantize(t)) {
            printf("%-6s unsupported\n", name);
            continue;
        }
        const size_t rb = strata_type_row_bytes(t, cols), mbytes = rb * rows;
        int copies = (int)((256u << 20) / mbytes) + 1;
        uint8_t *w = malloc(mbytes * copies);
        /* quantize 64 distinct rows, then tile them (quantizing 11M values per K-type is slow) */
        for (int64_t r = 0; r < 64 && r < rows; r++) strata_quantize_row(t, wf + r * cols, w + r * rb, cols);
        for (int64_t r = 64; r < rows; r++) memcpy(w + r * rb, w + (r % 64) * rb, rb);
        const bool packed = repack && cpu_repack_applies(t, rows, cols);
        if (packed) {
            uint8_t *tmp = malloc(mbytes);
            cpu_repack(t, w, tmp, rows, cols, 2);
            memcpy(w, tmp, mbytes);
            free(tmp);
        }
        for (int c = 1; c < copies; c++) memcpy(w + c * mbytes, w, mbytes);
        void (*const product)(cpu_isa, strata_type, const void *, int64_t, int64_t, const float *, int64_t, float *,
                              void *, int) = packed ? cpu_matmul_repacked : cpu_matmul_isa;
        void *work = malloc(cpu_matmul_work_bytes(t, cols, ptok) + 64);
        for (int ti = 0; ti < nthreads; ti++) {
            const int th = threads[ti];
            /* generation: one token, cycling through the copies; the best per-call time
             * (the machine may be shared: the minimum is the least disturbed run) */
            product(isa, t, w, rows, cols, x, 1, y, work, th);
            int iters = 0;
            double tg_s = 1e9, start = now();
            do {
                double t0 = now();
                product(isa, t, w + (size_t)(iters % copies) * mbytes, rows, cols, x, 1, y, work, th);
                double dt = now() - t0;
                if (dt < tg_s) tg_s = dt;
                iters++;
            } while (now() - start < 1.0 || iters < copies);
            /* prompt: ptok tokens at once */
            double pp_s = 1e9;
            start = now();
            do {
                double t0 = now();
                product(isa, t, w, rows, cols, x, ptok, y, work, th);
                double dt = now() - t0;
                if (dt < pp_s) pp_s = dt;
            } while (now() - start < 1.5);
            const double gops = 2.0 * rows * cols * ptok / pp_s / 1e9;
            printf("%-6s%c%8.1f %4d %10.1f %6.0f%% %9.3f %10.1f %12.1f\n", name, packed ? '*' : ' ', mbytes / 1048576.0, th,
                   mbytes / tg_s / 1e9, 100.0 * mbytes / tg_s / 1e9 / bw[ti], tg_s * 1e3, gops, gops * 1e9 / (2.0 * 1.1e9));
            fflush(stdout);
        }
        free(work);
        free(w);
    }
    free(types);
    free(wf);
    free(x);
    free(y);
    return 0;
}
