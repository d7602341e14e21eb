/* cpu_matmul: activation quantization, tiling and threading around the kernel table.
 *
 * Work split: all threads first quantize a share of the activation rows into the caller's
 * work buffer, then (after a barrier) each thread takes a contiguous range of weight rows
 * and computes them for every token. Within a thread, tokens are taken in chunks small
 * enough for their quantized rows to stay in L2 while the thread's weight rows stream
 * through once per chunk; inside a chunk each weight-row tile is applied to every token
 * tile, so one weight tile (a few KiB) is reused from L1 across the whole chunk. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/matmul.h"
#include "core/status.h"

static cpu_kernel kernel_tables[3][STRATA_TYPE_COUNT];
static cpu_isa detected_isa = CPU_ISA_SCALAR;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

/* The OS saves the register state named by `mask` in XCR0 (checked via XGETBV). */
static int os_saves(unsigned mask) {
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    (void)edx;
    return (eax & mask) == mask;
}
#endif

/* CPUID leaf 1 and leaf 7 feature bits, plus the OS's XSAVE support for YMM (and, for
 * AVX-512, opmask and ZMM) state. */
static cpu_isa detect(void) {
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return CPU_ISA_SCALAR;
    const int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!(osxsave && avx && fma && f16c && os_saves(0x6))) return CPU_ISA_SCALAR;
    if (__get_cpuid_max(0, NULL) < 7) return CPU_ISA_SCALAR;
    __cpuid_count(7, 0, a, b, c, d);
    const int avx2 = (b >> 5) & 1, bmi2 = (b >> 8) & 1;
    const int avx512 = ((b >> 16) & 1) && ((b >> 17) & 1) && ((b >> 30) & 1) && ((b >> 31) & 1) && /* F DQ BW VL */
                       ((c >> 11) & 1) && os_saves(0xe6);                                      /* VNNI, ZMM state */
    if (!(avx2 && bmi2)) return CPU_ISA_SCALAR;
    return avx512 ? CPU_ISA_AVX512 : CPU_ISA_AVX2;
#else
    return CPU_ISA_SCALAR;
#endif
}

static void init_tables(void) {
    detected_isa = detect();
    /* STRATA_CPU_ISA=scalar|avx2 caps the choice (benchmarks, debugging). */
    const char *cap = getenv("STRATA_CPU_ISA");
    if (cap && strcmp(cap, "scalar") == 0) detected_isa = CPU_ISA_SCALAR;
    if (cap && strcmp(cap, "avx2") == 0 && detected_isa > CPU_ISA_AVX2) detected_isa = CPU_ISA_AVX2;

    cpu_kernels_scalar(kernel_tables[CPU_ISA_SCALAR]);
#if defined(__x86_64__)
    /* Each ISA's table starts from the one below it, so a type without a kernel of its
     * own uses the best lower one. */
    memcpy(kernel_tables[CPU_ISA_AVX2], kernel_tables[CPU_ISA_SCALAR], sizeof kernel_tables[0]);
    cpu_kernels_avx2(kernel_tables[CPU_ISA_AVX2]);
    memcpy(kernel_tables[CPU_ISA_AVX512], kernel_tables[CPU_ISA_AVX2], sizeof kernel_tables[0]);
    cpu_kernels_avx512(kernel_tables[CPU_ISA_AVX512]);
#else
    memcpy(kernel_tables[CPU_ISA_AVX2], kernel_tables[CPU_ISA_SCALAR], sizeof kernel_tables[0]);
    memcpy(kernel_tables[CPU_ISA_AVX512], kernel_tables[CPU_ISA_SCALAR], sizeof kernel_tables[0]);
#endif
}

cpu_isa cpu_isa_detect(void) {
    pthread_once(&init_once, init_tables);
    return detected_isa;
}

const char *cpu_isa_name(cpu_isa isa) {
    switch (isa) {
    case CPU_ISA_SCALAR: return "scalar";
    case CPU_ISA_AVX2: return "avx2";
    case CPU_ISA_AVX512: return "avx512";
    }
    return "?";
}

static const cpu_kernel *kernel_for(cpu_isa isa, strata_type wtype) {
    pthread_once(&init_once, init_tables);
    if ((unsigned)wtype >= STRATA_TYPE_COUNT) return NULL;
    if (isa > detected_isa) isa = detected_isa;
    const cpu_kernel *k = &kernel_tables[isa][wtype];
    return k->tile ? k : NULL;
}

int cpu_matmul_supports(strata_type wtype) { return kernel_for(CPU_ISA_SCALAR, wtype) != NULL; }

size_t cpu_matmul_work_bytes(strata_type wtype, int64_t cols, int64_t n_tokens) {
    const cpu_kernel *k = kernel_for(CPU_ISA_SCALAR, wtype);
    if (!k || !strata_type_row_ok(wtype, cols)) return 0;
    /* Every ISA uses the same activation format for a type (only the kernels differ).
     * F32 activations are read in place: no work buffer. */
    if (k->act == CPU_ACT_F32) return 0;
    return cpu_act_row_bytes(k->act, cols) * (size_t)n_tokens;
}

void cpu_matmul(strata_type wtype, const void *w, int64_t rows, int64_t cols, const float *x, int64_t n_tokens,
                float *y, void *work, int n_threads) {
    cpu_matmul_isa(cpu_isa_detect(), wtype, w, rows, cols, x, n_tokens, y, work, n_threads);
}

/* Tokens per chunk: enough to amortize a pass over the weights, few enough that their
 * quantized activations (plus a weight tile) stay in a 1 MiB L2. */
static int64_t token_chunk(size_t act_row_bytes) {
    int64_t c = (int64_t)((512u * 1024u) / (act_row_bytes ? act_row_bytes : 1));
    if (c < 4) c = 4;
    if (c > 64) c = 64;
    return c;
}

void cpu_matmul_isa(cpu_isa isa, strata_type wtype, const void *w, int64_t rows, int64_t cols, const float *x,
                    int64_t n_tokens, float *y, void *work, int n_threads) {
    const cpu_kernel *k = kernel_for(isa, wtype);
    STRATA_ASSERT(k != NULL);
    STRATA_ASSERT(strata_type_row_ok(wtype, cols));
    STRATA_ASSERT(rows >= 0 && n_tokens >= 0);
    if (rows == 0 || n_tokens == 0) return;
    if (isa > detected_isa) isa = detected_isa;

    const size_t wstride = strata_type_row_bytes(wtype, cols);
    const size_t xstride = cpu_act_row_bytes(k->act, cols);
    const uint8_t *xq = (const uint8_t *)x;
    if (k->act != CPU_ACT_F32) STRATA_ASSERT(work != NULL);
    uint8_t *wq = work;
    const int quantize = k->act != CPU_ACT_F32;
    void (*quant)(cpu_act, const float *, void *, int64_t) = cpu_quantize_act_scalar;
#if defined(__x86_64__)
    if (isa == CPU_ISA_AVX2) quant = cpu_quantize_act_avx2;
    if (isa == CPU_ISA_AVX512) quant = cpu_quantize_act_avx512;
#endif
    if (quantize) xq = wq;

    int nth = n_threads > 0 ? n_threads : 1;
    /* Not more threads than there are row tiles; small products run on one thread. */
    const int64_t row_tiles = (rows + k->mr - 1) / k->mr;
    if (nth > row_tiles) nth = (int)row_tiles;
    if ((double)rows * (double)cols * (double)n_tokens < 32768.0) nth = 1;
    const int64_t tchunk = token_chunk(xstride);

#pragma omp parallel num_threads(nth) if (nth > 1)
    {
        const int tid = omp_get_thread_num(), nt_all = omp_get_num_threads();
        if (quantize) {
            for (int64_t t = tid; t < n_tokens; t += nt_all) quant(k->act, x + t * cols, wq + t * xstride, cols);
        }
#pragma omp barrier
        /* Contiguous row range per thread, in whole tiles. */
        const int64_t tiles_per = row_tiles / nt_all, extra = row_tiles % nt_all;
        const int64_t t0 = tid * tiles_per + (tid < extra ? tid : extra);
        const int64_t t1 = t0 + tiles_per + (tid < extra ? 1 : 0);
        const int64_t r0 = t0 * k->mr, r1 = t1 * k->mr < rows ? t1 * k->mr : rows;
        for (int64_t c0 = 0; c0 < n_tokens; c0 += tchunk) {
            const int64_t c1 = c0 + tchunk < n_tokens ? c0 + tchunk : n_tokens;
            for (int64_t r = r0; r < r1; r += k->mr) {
                const int nr = (int)(r1 - r < k->mr ? r1 - r : k->mr);
                const uint8_t *wr = (const uint8_t *)w + (size_t)r * wstride;
                for (int64_t t = c0; t < c1; t += k->nt_max) {
                    const int ntk = (int)(c1 - t < k->nt_max ? c1 - t : k->nt_max);
                    k->tile(cols, wr, wstride, nr, xq + (size_t)t * xstride, xstride, ntk, y + t * rows + r,
                            (size_t)rows);
                }
            }
        }
    }
}
