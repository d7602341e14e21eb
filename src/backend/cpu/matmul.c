/* cpu_matmul: activation quantization, tiling and threading around the kernel table.
 *
 * Work split (threads from backend/cpu/threadpool.c, not OpenMP): the activation rows are
 * quantized first into the caller's work buffer (by the caller alone for a few tokens, in
 * groups of tokens across the threads for a batch); then the product is cut into items of
 * (token chunk, row chunk) that the threads claim one at a time. The weights stream through
 * once per token chunk, so chunks are as long as the tiles take (see token_chunk); row
 * chunks are whole tiles, several per thread, so that a thread the OS deschedules on a busy
 * machine holds up little. Each output element is computed by one tile call whose shape
 * does not depend on the thread count, so results are the same for any number of threads. */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/matmul.h"
#include "backend/cpu/threadpool.h"
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
     * own uses the best lower one. Even filling a table runs code compiled for its ISA (the
     * compiler may use its instructions for the stores): only where the CPU has it. */
    memcpy(kernel_tables[CPU_ISA_AVX2], kernel_tables[CPU_ISA_SCALAR], sizeof kernel_tables[0]);
    if (detected_isa >= CPU_ISA_AVX2) cpu_kernels_avx2(kernel_tables[CPU_ISA_AVX2]);
    memcpy(kernel_tables[CPU_ISA_AVX512], kernel_tables[CPU_ISA_AVX2], sizeof kernel_tables[0]);
    if (detected_isa >= CPU_ISA_AVX512) cpu_kernels_avx512(kernel_tables[CPU_ISA_AVX512]);
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

/* Tokens per chunk: the weights stream from memory, and the batch tiles pack each weight
 * segment, once per chunk, so as many as the tiles take (128), unless their activations pass
 * 4 MiB. 128 rather than 64 halves the packing, which costs as much as about 3 tokens' products
 * (Q4_K): pp128 and pp512 +2-4 % for Q4_0, Q4_K_M and F16 (256 gained another 0-1.5 %, not
 * worth twice the accumulators on the stack). The batch tiles read a chunk's activations
 * once per group of 8-16 weight rows, a few bytes per hundred multiply-adds, which the
 * last-level cache serves; L2 need not hold them (a 512 KiB budget halved the chunk of
 * F16's 5632-column down projection and cost 13%). */
static int64_t token_chunk(size_t act_row_bytes) {
    int64_t c = (int64_t)((4096u * 1024u) / (act_row_bytes ? act_row_bytes : 1));
    if (c < 4) c = 4;
    if (c > 128) c = 128;
    return c;
}

typedef struct {
    const cpu_kernel *k;
    void (*quant)(cpu_act, const float *, void *, int64_t);
    const uint8_t *w;
    const float *x;
    const uint8_t *xq;
    uint8_t *wq;
    float *y;
    int64_t rows, cols, n_tokens;
    bool repacked; /* weights in the x8 layout of repack.h: whole groups go to k->tile_x8 */
    size_t wstride, xstride;
    int64_t tchunk, rchunk, n_rchunks; /* tokens per token chunk, rows per row chunk */
    int64_t qchunk;                    /* tokens per quantization item */
    int ranged;                        /* run as a ranged job (see mm_plan) */
} mm_job;

static void mm_quant_item(void *ctx, int64_t i, int tid) {
    (void)tid;
    const mm_job *j = ctx;
    const int64_t t0 = i * j->qchunk, t1 = t0 + j->qchunk < j->n_tokens ? t0 + j->qchunk : j->n_tokens;
    for (int64_t t = t0; t < t1; t++) j->quant(j->k->act, j->x + t * j->cols, j->wq + t * j->xstride, j->cols);
}

/* Item i: row chunk i % n_rchunks of token chunk i / n_rchunks (token chunks in order, so the
 * threads share one chunk's activations at a time). Within it each weight-row tile is
 * applied to every token tile of the chunk, so one weight tile (a few KiB) is reused from
 * L1 across the chunk. */
static void mm_item(void *ctx, int64_t i, int tid) {
    (void)tid;
    const mm_job *j = ctx;
    const cpu_kernel *k = j->k;
    const int64_t c0 = (i / j->n_rchunks) * j->tchunk, c1 = c0 + j->tchunk < j->n_tokens ? c0 + j->tchunk : j->n_tokens;
    const int64_t r0 = (i % j->n_rchunks) * j->rchunk, r1 = r0 + j->rchunk < j->rows ? r0 + j->rchunk : j->rows;
    for (int64_t r = r0; r < r1; r += k->mr) {
        const int nr = (int)(r1 - r < k->mr ? r1 - r : k->mr);
        const uint8_t *wr = j->w + (size_t)r * j->wstride;
        /* Repacked: mr is a multiple of 8, so r starts a group; the rows past the last whole
         * group (at most 7, at the end) kept the plain layout. */
        const int64_t grouped_end = j->repacked ? j->rows / 8 * 8 : 0;
        const int n8 = r + nr <= grouped_end ? nr : r < grouped_end ? (int)(grouped_end - r) : 0;
        for (int64_t t = c0; t < c1; t += k->nt_max) {
            const int ntk = (int)(c1 - t < k->nt_max ? c1 - t : k->nt_max);
            const uint8_t *xt = j->xq + (size_t)t * j->xstride;
            float *yt = j->y + t * j->rows + r;
            if (n8) k->tile_x8(j->cols, wr, j->wstride, n8, xt, j->xstride, ntk, yt, (size_t)j->rows);
            if (nr > n8)
                k->tile(j->cols, wr + (size_t)n8 * j->wstride, j->wstride, nr - n8, xt, j->xstride, ntk, yt + n8,
                        (size_t)j->rows);
        }
    }
}

/* The thread count for a product: not more threads than there are row tiles; small products
 * run on one thread. */
static int mm_threads(const cpu_kernel *k, int64_t rows, int64_t cols, int64_t n_tokens, int n_threads) {
    int nth = n_threads > 0 ? n_threads : 1;
    const int64_t row_tiles = (rows + k->mr - 1) / k->mr;
    if (nth > row_tiles) nth = (int)row_tiles;
    if ((double)rows * (double)cols * (double)n_tokens < 32768.0) nth = 1;
    return nth;
}

/* Fills j's weights, output and chunking for nth threads (activations: the caller's). Returns
 * the number of items.
 *
 * A job of one token chunk (a decode step, or a prompt of up to a chunk) streams each weight
 * once: it runs as a ranged job (cpu_parallel_ranges), in items of about 32 per thread but no
 * less than 8 KiB of weights. Each thread then streams one contiguous run of rows and claims
 * its items without contention. Taking 8 larger items per thread from the shared counter
 * instead (the plan below) made Q4_0 and Q4_K_M generation about 3 % slower (tg64, 2 threads,
 * means of runs in ABBA order), and more, smaller items from it slower still.
 *
 * Other jobs take row chunks from the shared counter in order, so that the threads work on
 * one token chunk at a time and share its activations: whole tiles, about 8 per thread (so a
 * thread the OS deschedules delays little), but no smaller than 32 KiB of weights per token
 * chunk. */
static int64_t mm_plan(mm_job *j, strata_type wtype, const void *w, int64_t rows, float *y, int nth) {
    const cpu_kernel *k = j->k;
    j->w = w;
    j->y = y;
    j->rows = rows;
    j->wstride = strata_type_row_bytes(wtype, j->cols);
    j->tchunk = token_chunk(j->xstride);
    j->ranged = j->n_tokens <= j->tchunk;
    const int64_t per_thread = j->ranged ? 32 : 8;
    const size_t min_bytes = j->ranged ? 8u << 10 : 32u << 10;
    const int64_t row_tiles = (rows + k->mr - 1) / k->mr;
    int64_t tiles_per = (row_tiles + per_thread * nth - 1) / (per_thread * nth);
    const int64_t min_tiles = (int64_t)(min_bytes / (j->wstride * (size_t)k->mr)) + 1;
    if (tiles_per < min_tiles) tiles_per = min_tiles;
    if (nth == 1) tiles_per = row_tiles;
    j->rchunk = tiles_per * k->mr;
    j->n_rchunks = (rows + j->rchunk - 1) / j->rchunk;
    return j->n_rchunks * ((j->n_tokens + j->tchunk - 1) / j->tchunk);
}

/* Quantizes the activations into j->wq (a few rows here, cheaper than a round trip through
 * the pool; a batch split across the threads in groups of tokens). */
static void mm_quantize(mm_job *j, cpu_isa isa, int nth) {
    const cpu_kernel *k = j->k;
    j->xq = (const uint8_t *)j->x;
    if (k->act == CPU_ACT_F32) return;
    STRATA_ASSERT(j->wq != NULL);
    j->quant = cpu_quantize_act_scalar;
#if defined(__x86_64__)
    if (isa == CPU_ISA_AVX2) j->quant = cpu_quantize_act_avx2;
    if (isa == CPU_ISA_AVX512) j->quant = cpu_quantize_act_avx512;
#else
    (void)isa;
#endif
    j->xq = j->wq;
    j->qchunk = 4;
    const int64_t nq = (j->n_tokens + j->qchunk - 1) / j->qchunk;
    if (nth > 1 && nq > 1) cpu_parallel_for(nth, nq, mm_quant_item, j);
    else
        for (int64_t t = 0; t < j->n_tokens; t++) j->quant(k->act, j->x + t * j->cols, j->wq + t * j->xstride, j->cols);
}

static void mm_run(cpu_isa isa, strata_type wtype, bool repacked, const void *w, int64_t rows, int64_t cols,
                   const float *x, int64_t n_tokens, float *y, void *work, int n_threads) {
    const cpu_kernel *k = kernel_for(isa, wtype);
    STRATA_ASSERT(k != NULL);
    STRATA_ASSERT(strata_type_row_ok(wtype, cols));
    STRATA_ASSERT(rows >= 0 && n_tokens >= 0);
    STRATA_ASSERT(!repacked || (k->tile_x8 && k->mr % 8 == 0));
    if (rows == 0 || n_tokens == 0) return;
    if (isa > detected_isa) isa = detected_isa;

    mm_job j = {.k = k, .x = x, .wq = work, .cols = cols, .n_tokens = n_tokens, .repacked = repacked};
    j.xstride = cpu_act_row_bytes(k->act, cols);
    const int nth = mm_threads(k, rows, cols, n_tokens, n_threads);
    mm_quantize(&j, isa, nth);
    const int64_t n_items = mm_plan(&j, wtype, w, rows, y, nth);
    (j.ranged ? cpu_parallel_ranges : cpu_parallel_for)(nth, n_items, mm_item, &j);
}

void cpu_matmul_isa(cpu_isa isa, strata_type wtype, const void *w, int64_t rows, int64_t cols, const float *x,
                    int64_t n_tokens, float *y, void *work, int n_threads) {
    mm_run(isa, wtype, false, w, rows, cols, x, n_tokens, y, work, n_threads);
}

void cpu_matmul_repacked(cpu_isa isa, strata_type wtype, const void *w, int64_t rows, int64_t cols, const float *x,
                         int64_t n_tokens, float *y, void *work, int n_threads) {
    mm_run(isa, wtype, true, w, rows, cols, x, n_tokens, y, work, n_threads);
}

/* Several products as one pool job: item i belongs to the part p with first[p] <= i <
 * first[p + 1]. */
typedef struct {
    mm_job jobs[CPU_MATMUL_MAX_PARTS];
    int64_t first[CPU_MATMUL_MAX_PARTS + 1];
    int n;
} mm_group;

static void mm_group_item(void *ctx, int64_t i, int tid) {
    mm_group *g = ctx;
    int p = 0;
    while (i >= g->first[p + 1]) p++;
    mm_item(&g->jobs[p], i - g->first[p], tid);
}

void cpu_matmul_parts(const cpu_matmul_part *parts, int n_parts, int64_t cols, const float *x, int64_t n_tokens,
                      void *work, int n_threads) {
    STRATA_ASSERT(n_parts >= 0 && n_parts <= CPU_MATMUL_MAX_PARTS);
    if (n_parts == 0 || n_tokens == 0) return;
    const cpu_isa isa = cpu_isa_detect();
    mm_group g = {.n = n_parts};
    int nth = 1, shared = 1;
    for (int p = 0; p < n_parts; p++) {
        const cpu_kernel *k = kernel_for(isa, parts[p].wtype);
        STRATA_ASSERT(k != NULL);
        STRATA_ASSERT(strata_type_row_ok(parts[p].wtype, cols) && parts[p].rows > 0);
        STRATA_ASSERT(!parts[p].repacked || (k->tile_x8 && k->mr % 8 == 0));
        if (k->act != kernel_for(isa, parts[0].wtype)->act) shared = 0;
        const int t = mm_threads(k, parts[p].rows, cols, n_tokens, n_threads);
        if (t > nth) nth = t;
        g.jobs[p] = (mm_job){.k = k, .x = x, .wq = work, .cols = cols, .n_tokens = n_tokens, .repacked = parts[p].repacked};
        g.jobs[p].xstride = cpu_act_row_bytes(k->act, cols);
    }
    if (!shared) { /* different activation formats: one product after another */
        for (int p = 0; p < n_parts; p++)
            mm_run(isa, parts[p].wtype, parts[p].repacked, parts[p].w, parts[p].rows, cols, x, n_tokens, parts[p].y,
                   work, n_threads);
        return;
    }
    mm_quantize(&g.jobs[0], isa, nth);
    for (int p = 0; p < n_parts; p++) {
        g.jobs[p].xq = g.jobs[0].xq;
        g.first[p + 1] = g.first[p] + mm_plan(&g.jobs[p], parts[p].wtype, parts[p].w, parts[p].rows, parts[p].y, nth);
    }
    (g.jobs[0].ranged ? cpu_parallel_ranges : cpu_parallel_for)(nth, g.first[n_parts], mm_group_item, &g);
}
