/* The planner: where every layer of a model goes, and how many bytes each device's arena
 * must hold (DESIGN §2, §6).
 *
 * Owns: the model profile (planner/profile.c: bytes per layer from the GGUF header alone,
 * through the engine's own sizing functions), the placement (planner/plan.c: a pure
 * function of a profile, an inventory and options), the explanation sentence, and the
 * what-if files (planner/whatif.c: header-only or sparse GGUFs of a model one does not have).
 *
 * Layers. A model of n_layer blocks has n_layer + 1 *offloadable* layers: blocks
 * 0..n_layer-1, and index n_layer, the *output layer* (output norm + output matrix), counted
 * as one layer as Ollama counts it. The token embedding is not offloadable: it stays on the
 * CPU, where the lookup happens. Ranges are half-open [layer_start, layer_end) over
 * offloadable indices; a range ending at n_layer + 1 holds the output layer.
 *
 * Chain. The CPU takes a prefix [0, p) (possibly empty), then each GPU used takes one
 * contiguous range, the GPUs following one another up to the end, so the last GPU holds the
 * last blocks and the output layer. Only the hidden state crosses a device boundary.
 *
 * Budget. A device's budget is free - reserve. free is read after our own context exists
 * (cuda) or is MemAvailable (cpu) or the simulated capacity left (sim). The default reserve
 * is PLAN_DEFAULT_GPU_RESERVE for GPU-like devices (sim, cuda) and 0 for the cpu, whose
 * MemAvailable already leaves the kernel what it needs.
 *
 * Why 256 MiB for GPUs: free is measured after the CUDA context is created, so the reserve
 * need not cover the context itself (the 300-500 MiB that Ollama's fixed 457 MiB
 * "minimum" stood for). What it covers is what appears after planning: cuBLAS workspaces
 * (4 MiB per handle, 32 MiB on Hopper), lazily loaded kernel modules (tens of MiB), and a
 * desktop or another process growing meanwhile. 256 MiB is 2 % of a 12 GiB card -- about
 * half a 70B Q4 layer -- against llama.cpp's 1 GiB and Ollama's 457 MiB + one spare layer.
 * --reserve / STRATA_GPU_RESERVE change it.
 *
 * Cost model (single-stream decoding is memory bound): the time of a layer on device d is
 * the bytes it reads per token -- its weights plus its KV cache at a full context -- divided
 * by d's bandwidth; a token costs the sum over layers. Times are integer picoseconds per
 * layer so that sums are exact and any search order gives the same totals.
 *
 * Placement (auto, default "fewest"): among all chains that fit every budget --
 *   1. if the whole model fits on GPUs, the fewest GPUs that hold it, then the least cost;
 *   2. otherwise the least cost, then the fewest GPUs, then the most layers offloaded.
 * The search is exact (a dynamic programme over subsets of GPUs and cut points) for up to
 * PLAN_EXACT_MAX_GPUS GPU-like devices; beyond that the GPUs are chained fastest-first.
 * "spread" (or an explicit tensor_split) deals the offloaded layers to the GPUs in proportion
 * to the split (default: their budgets) by weight bytes, in inventory order, main_gpu last.
 * num_gpu = N puts exactly the last N offloadable layers on GPUs, or is refused (before
 * anything is allocated) with the largest N that fits. main_gpu = k makes GPU k the one that
 * holds the output layer (and, if it alone can hold the model, the only one). */
#ifndef STRATA_PLANNER_PLAN_H
#define STRATA_PLANNER_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/device.h"
#include "core/status.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "tensor/type.h"

#define PLAN_DEFAULT_GPU_RESERVE (256ull << 20)
#define PLAN_DEFAULT_CPU_RESERVE 0ull
#define PLAN_EXACT_MAX_GPUS 8
#define PLAN_MAX_DEVICES BACKEND_MAX_DEVICES

/* ---- Abstract profile ----------------------------------------------------------------
 * What placement needs to know of a model. profile.c builds one from a GGUF header; tests
 * build random ones. */
typedef struct {
    int32_t n_layers;                 /* offloadable layers: n_layer blocks + 1 output layer */
    const uint64_t *gpu_weight_bytes; /* [n_layers] arena bytes of the weights on a GPU-like device */
    const uint64_t *cpu_weight_bytes; /* [n_layers] bytes of the weights on the CPU (mapped or repacked) */
    /* [n_layers] the part of cpu_weight_bytes a CPU keeps in its arena: the matrices it
     * repacks for its kernels (backend/cpu/repack.h); NULL: none */
    const uint64_t *cpu_arena_weight_bytes;
    const uint64_t *read_bytes;       /* [n_layers] bytes read per decoded token (cost model) */
    uint64_t host_bytes;              /* never offloaded, mapped on the CPU: token embedding */
    /* KV and compute arena bytes of a device of `kind` (each kind sizes its ops' scratch
     * itself) running [start, end) (end == n_layers: with the
     * output layer, producing logits). Called with start == end for the CPU when it runs no
     * layer (it still embeds the tokens). Must grow with the range: [s, e) inside [s', e')
     * means no more bytes. */
    void (*segment_bytes)(const void *ctx, backend_device_kind kind, int32_t start, int32_t end, uint64_t *kv,
                          uint64_t *compute);
    const void *ctx;
    /* Experts kept on the CPU (num_cpu_moe): [n_layers] bytes of a layer that stay mapped on
     * the CPU when the layer is on a GPU (gpu_weight_bytes does not count them), and their
     * bytes read per decoded token, at the CPU's speed; host_part_scratch: the CPU's host
     * memory for running them, once any such layer is on a GPU. NULL: none. */
    const uint64_t *host_part_bytes, *host_part_read_bytes;
    uint64_t host_part_scratch;
} plan_profile;

/* One device as the planner sees it. */
typedef struct {
    const char *label;       /* borrowed; unique in the inventory */
    backend_device_kind kind;
    uint64_t free_bytes;
    uint64_t reserve_bytes;
    double gbps;             /* > 0 */
} plan_device;

typedef enum { PLAN_FEWEST = 0, PLAN_SPREAD = 1 } plan_mode;

typedef struct {
    int32_t num_gpu;   /* -1 = auto; N = exactly N offloadable layers on GPUs (N > n_layers: all) */
    int32_t main_gpu;  /* -1 = any; k = the k-th GPU-like device (inventory order) holds the output */
    plan_mode mode;
    int32_t n_split;   /* 0 = none; else proportions for the first n_split GPUs (zero = unused) */
    double tensor_split[PLAN_MAX_DEVICES];
} plan_options;

plan_options plan_default_options(void);

typedef struct {
    int32_t device;              /* index in the plan_device array */
    int32_t layer_start, layer_end; /* [start, end) offloadable layers; equal when unused */
    uint64_t weights_bytes;      /* GPU: in the arena; CPU: its layers (mapped or repacked) + host_bytes */
    uint64_t kv_bytes, compute_bytes;
    uint64_t arena_bytes;        /* what the loader allocates: GPU weights + KV + compute; CPU repacked weights + KV + compute */
    uint64_t total_bytes;        /* weights + KV + compute */
    uint64_t free_bytes, reserve_bytes, budget_bytes, headroom_bytes; /* headroom = budget - total */
    int64_t time_ps;             /* cost of its layers per token, picoseconds */
} plan_device_use;

typedef struct {
    int32_t n_devices;
    plan_device_use dev[PLAN_MAX_DEVICES]; /* same order as the plan_device array */
    int32_t chain[PLAN_MAX_DEVICES];       /* device indices in layer order (cpu first), used ones only */
    int32_t n_chain;
    int32_t layers_offloaded, layers_total;
    int32_t gpus_used;
    uint64_t host_bytes;                   /* everything on the CPU: mapped weights + arena */
    int64_t cost_ps;                       /* per decoded token */
    double tokens_per_second;              /* predicted decode speed: 1e12 / cost_ps */
    bool exact;                            /* the search was exhaustive */
    char explanation[512];
} plan_result;

/* Places the profile on the devices. Exactly one device must be the cpu. Returns
 * STRATA_ERR_NO_FIT when nothing fits (the message gives the shortfall) or when num_gpu
 * cannot be honoured (the message gives the largest value that fits); STRATA_ERR_INVALID
 * for bad options. Never allocates device memory. */
strata_status plan_compute(const plan_profile *prof, const plan_device *devs, int32_t n_devs,
                           const plan_options *opt, plan_result *out);

/* Builds the plan_device array from an inventory: plannable devices only (CUDA devices are
 * not offered yet), free bytes read now, reserve from `reserve` (index = inventory index;
 * UINT64_MAX = the default for its kind), speed from the device. `map[i]` gets the inventory
 * index of plan device i. Returns the count. */
strata_status plan_devices_from_inventory(const backend_inventory *inv, const uint64_t *reserve,
                                          plan_device *out, int32_t *map, int32_t *count);

/* The default reserve for a device kind. */
uint64_t plan_default_reserve(backend_device_kind kind);

/* Reserves per inventory device (reserve[i] for inv->devices[i]; UINT64_MAX = the kind's
 * default). `env_gpu` (STRATA_GPU_RESERVE; may be NULL) is a size for every GPU-like device;
 * `text` (--reserve; may be NULL) is comma-separated entries, each either a SIZE (every
 * GPU-like device) or TARGET=SIZE where TARGET is a device label or name ("A2000 #2",
 * "RTX3060", "cpu") or a kind (sim, cuda, cpu). Later entries win. Errors name the entry. */
strata_status plan_reserve_parse(const backend_inventory *inv, const char *env_gpu, const char *text,
                                 uint64_t *reserve);

/* Formats bytes for explanations: "498 MiB", "1.25 GiB", "512 B". */
void plan_format_bytes(uint64_t bytes, char *buf, size_t cap);

struct cJSON;

/* Appends to the JSON array `arr` an object describing device `u` of a plan, with the keys
 * every report of a plan shares (`strata plan --json`, /api/ps): name, kind, layer_start,
 * layer_end, layers and the exact weights_bytes, kv_bytes and compute_bytes. Returns the
 * object, owned by `arr`, for the caller to add its own keys; NULL on ENOMEM (adding to
 * NULL is a no-op in cJSON). */
struct cJSON *plan_device_use_json(struct cJSON *arr, const char *name, backend_device_kind kind,
                                   const plan_device_use *u);

/* ---- Profile from a GGUF header (profile.c) -------------------------------------------- */

typedef struct {
    int32_t num_ctx;      /* 0 = the engine's default (4096, capped by the trained context) */
    int32_t num_batch;    /* 0 = the engine's default (512) */
    int32_t num_parallel; /* sequences served at once; the KV cache holds num_ctx x num_parallel */
    strata_type kv_type;  /* F16 (default), F32, Q8_0 */
    bool embeddings;      /* the context keeps every token's output-norm state (/api/embed) */
    int32_t num_cpu_moe;  /* experts of blocks [0, N) stay on the CPU where their block is on a
                             GPU (llama.cpp's --n-cpu-moe); 0: none. plan_compute_moe: -1 =
                             choose N */
} plan_model_options;

plan_model_options plan_default_model_options(void);

typedef struct plan_model plan_model;

/* Reads the model's header (no tensor data is touched: a header-only or sparse file works)
 * and sizes every layer with the engine's functions (model/model.h). Borrows `f` until
 * plan_model_free. */
strata_status plan_model_init(const gguf_file *f, const plan_model_options *mo, plan_model **out);
void plan_model_free(plan_model *m);
/* The abstract profile, valid until plan_model_free. */
const plan_profile *plan_model_profile(const plan_model *m);
/* Hyper-parameters and resolved options, for printing. */
int32_t plan_model_n_layer(const plan_model *m);
int32_t plan_model_n_ctx(const plan_model *m);     /* per sequence, after the engine's caps */
int32_t plan_model_n_batch(const plan_model *m);
const char *plan_model_arch(const plan_model *m);
/* The sliding-window cache (model_kv_rows): how many layers keep a ring of window + batch
 * positions, their window, and the KV bytes of all layers with the rings and as a full cache
 * would be (equal when no layer has a ring). */
typedef struct {
    int32_t local_layers, window;
    uint64_t kv_bytes, kv_full_bytes;
} plan_swa_cache;
plan_swa_cache plan_model_swa_cache(const plan_model *m);

/* Plans `f` with mo->num_cpu_moe, or, where it is -1 and the model has experts, with the N in
 * 0..n_layer that gives the best predicted decode speed (the smallest N among equals; 0,
 * whole layers only, unless keeping experts on the CPU is faster) -- the choice llama.cpp
 * users make by hand with --n-cpu-moe. *pm_out (free with plan_model_free) is the model the
 * plan was made with: its params carry n_cpu_moe for the loader. The explanation says what
 * was chosen and why. */
strata_status plan_compute_moe(const gguf_file *f, const plan_model_options *mo, const plan_device *devs,
                               int32_t n_devs, const plan_options *opt, plan_model **pm_out, plan_result *out);
int32_t plan_model_n_cpu_moe(const plan_model *m);
/* The engine options the sizes were computed for (n_ctx = per-sequence ctx x num_parallel,
 * resolved; n_logits = 1; n_threads = 1, which sizes nothing): the loader creates its
 * context with exactly these (its own n_threads aside), so planned == allocated. */
const model_params *plan_model_params(const plan_model *m);


/* ---- What-if files (whatif.c) --------------------------------------------------------- */

/* A llama-shaped model: enough to write a header the engine binds. Types follow llama.cpp's
 * Q4_K_M recipe when ftype_q4_k_m is true (Q4_K, with Q6_K for attn_v/ffn_down on the layers
 * llama.cpp gives more bits, and for the output), else every matrix is `type`. */
typedef struct {
    int32_t n_layer, n_embd, n_head, n_head_kv, n_ff, n_vocab, n_ctx_train;
    bool q4_k_m;
    strata_type type;
} plan_llama_shape;

/* Writes a GGUF of that shape whose tensor data is absent: with `sparse`, the file is then
 * extended with ftruncate to its full size (a sparse file, opened normally); without, it
 * ends after the header (open it with GGUF_OPEN_HEADER_ONLY). `*file_bytes` (may be NULL)
 * gets the full size the file describes. */
strata_status plan_whatif_write_llama(const char *path, const plan_llama_shape *shape, bool sparse,
                                      uint64_t *file_bytes);

/* A qwen3moe-shaped model (Qwen3-30B-A3B: 48 layers, dim 2048, 32 heads of 128 on 4 KV
 * heads, 128 experts of which 8 are used, expert FFN 768, vocabulary 151936), every matrix of
 * `type` (norms and router F32); written as plan_whatif_write_llama writes. */
typedef struct {
    int32_t n_layer, n_embd, n_head, n_head_kv, head_dim, n_expert, n_expert_used, n_ff_exp, n_vocab;
    strata_type type;
} plan_moe_shape;
strata_status plan_whatif_write_qwen3moe(const char *path, const plan_moe_shape *shape, bool sparse,
                                         uint64_t *file_bytes);

#endif
