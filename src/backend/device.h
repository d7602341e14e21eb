/* Devices: what the planner places layers on and what the loader allocates from.
 *
 * A device is a function table (backend_device_ops) behind one struct: a kind, a name,
 * total and free memory, a speed (memory bandwidth in GB/s, the figure the planner's cost
 * model divides by), one arena (alloc/free), and copies in and out of that arena.
 *
 * Kinds:
 *   cpu   host memory. free = MemAvailable from /proc/meminfo, or, when the spec gives
 *         MEMORY, that figure (less the arena held): the host memory to plan with, so that
 *         `strata plan` can answer for a host one does not have; an arena larger than it
 *         fails like a sim allocation. Speed: the spec's GBPS if given, else measured once, lazily, the first
 *         time it is asked for (a multi-threaded read of a 64 MiB buffer, best of 3 passes,
 *         about 10-40 ms); if that measurement cannot run, BACKEND_CPU_DEFAULT_GBPS.
 *   sim   a simulated GPU: host memory behind a hard capacity (the spec's MEMORY, required).
 *         An arena larger than what is free fails with STRATA_ERR_NOMEM the way cudaMalloc
 *         fails with cudaErrorMemoryAllocation, and allocates nothing. Speed is the spec's
 *         GBPS (default BACKEND_SIM_DEFAULT_GBPS). backend_sim_fail_alloc() (or the env
 *         STRATA_SIM_FAIL_ALLOC=N, the Nth sim arena allocation of the process) injects a
 *         failure. Its arena is host memory of its own mapping that only the sim's ops touch
 *         (they run the CPU kernels); in strict mode any other access faults (see
 *         backend_sim_set_strict).
 *   cuda  an NVIDIA GPU (built when CMake finds the CUDA toolkit, STRATA_HAVE_CUDA): name,
 *         total, and free read with cudaMemGetInfo after the context, the kernel modules, the
 *         stream and the cuBLAS handle exist; speed from a device-to-device copy probe (else
 *         2 x memory clock x bus width); its ops are backend/cuda (ops_cuda.c, kernels.cu).
 *         Without a GPU or driver at run time none is found; that is not an error, and
 *         backend_cuda_unavailable_reason() says why.
 *
 * Device spec (flag --devices, env STRATA_DEVICES): comma-separated entries
 *   cpu[:MEMORY[:GBPS[:NAME]]]
 *   sim:MEMORY[:GBPS[:NAME]]
 *   cuda[:ORDINAL[:MEMORY[:GBPS[:NAME]]]]    (MEMORY caps the real GPU's free memory)
 *   (cpu MEMORY is the host memory to plan with; see the cpu kind above)
 * MEMORY is a size with a unit: B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB
 * (powers of 1024), case-insensitive, decimals allowed ("1.5GiB"); an empty field means
 * "not given" ("cpu::40"). A spec lists exactly the devices to use; the cpu device is
 * always present (added last when the spec has no cpu entry), as the fallback. Without a
 * spec the inventory is the discovered CUDA devices plus the cpu.
 *
 * Arenas: a loaded model holds exactly one arena per device it uses, of exactly the planned
 * size (DESIGN §2). A device may hold several arenas at once -- one per model loaded on it,
 * as when a server keeps two models resident -- up to BACKEND_MAX_ARENAS; arena_bytes is
 * what they hold together, and free memory (sim, cpu with a configured MEMORY, caps) is
 * reduced by it. Bases are aligned to BACKEND_ARENA_ALIGN.
 *
 * Ownership: an inventory owns its devices; a device owns its arena until
 * backend_device_arena_free() or the inventory is freed. A device is opaque outside
 * backend/ (its struct and the kinds' function table are in backend/device_impl.h). */
#ifndef STRATA_BACKEND_DEVICE_H
#define STRATA_BACKEND_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define BACKEND_ARENA_ALIGN 64
#define BACKEND_CPU_DEFAULT_GBPS 20.0
#define BACKEND_SIM_DEFAULT_GBPS 100.0
#define BACKEND_MAX_DEVICES 32
#define BACKEND_NAME_MAX 64
#define BACKEND_MAX_ARENAS 16

typedef enum {
    BACKEND_DEVICE_CPU = 0,
    BACKEND_DEVICE_SIM = 1,
    BACKEND_DEVICE_CUDA = 2,
} backend_device_kind;

typedef struct backend_device backend_device;

/* Read-only facts of a device (the struct is private to backend/: device_impl.h). */
const char *backend_device_label(const backend_device *dev); /* unique in its inventory: name, or "name #k" */
const char *backend_device_name(const backend_device *dev);  /* configured or reported name */
backend_device_kind backend_device_kind_of(const backend_device *dev);
int backend_device_ordinal(const backend_device *dev);       /* cuda: device ordinal; sim: k-th sim; cpu: 0 */
bool backend_device_plannable(const backend_device *dev);    /* offered to the planner (it can run layers) */
bool backend_device_speed_configured(const backend_device *dev); /* GBPS came from the spec */
size_t backend_device_held_bytes(const backend_device *dev); /* bytes its arenas hold together */
int backend_device_arena_count(const backend_device *dev);   /* arenas held */
/* A GPU's measured host -> device copy speed in GB/s (pinned memory, at open); 0 where not
 * measured (cpu, sim). Device -> device speed is backend_device_speed_gbps. */
double backend_device_host_link_gbps(const backend_device *dev);

const char *backend_device_kind_name(backend_device_kind kind);

/* Free bytes now: min(device free, cap - arena held) where a cap is set. For sim: capacity
 * minus the arena held. */
strata_status backend_device_free_bytes(backend_device *dev, uint64_t *out);
/* Free bytes the device itself reports now, without the spec's cap: what is physically free
 * (for measuring what a load really took). */
strata_status backend_device_physical_free(backend_device *dev, uint64_t *out);
/* Total bytes, capped by the spec's MEMORY where set. */
uint64_t backend_device_total_bytes(const backend_device *dev);
/* Speed in GB/s: configured, else measured once (cpu) or derived (cuda). Always > 0. */
double backend_device_speed_gbps(backend_device *dev);

/* Allocates an arena of exactly `bytes` bytes (> 0; base aligned to BACKEND_ARENA_ALIGN).
 * STRATA_ERR_INVALID if the device already holds BACKEND_MAX_ARENAS arenas,
 * STRATA_ERR_NOMEM (nothing allocated) when the memory is not there. The arena stays owned
 * by the device until backend_device_arena_release/free. */
strata_status backend_device_arena_alloc(backend_device *dev, size_t bytes, void **out);
/* Frees one arena of this device (NULL: nothing); asserts it is one. */
void backend_device_arena_release(backend_device *dev, void *arena);
/* Frees every arena held; the device may allocate again afterwards. */
void backend_device_arena_free(backend_device *dev);
/* Copies into / out of the arena; [dst or src, +bytes) must lie inside it. */
strata_status backend_device_copy_in(backend_device *dev, void *dst, const void *src, size_t bytes);
strata_status backend_device_copy_out(backend_device *dev, void *dst, const void *src, size_t bytes);

/* ---- Kinds ------------------------------------------------------------------------ */

/* A cpu device. memory 0 = MemAvailable, else the host memory to plan with; gbps 0 =
 * measure lazily. NULL on allocation failure. */
backend_device *backend_cpu_device_new(const char *name, uint64_t memory, double gbps);
/* Threads the cpu kind uses by default: the physical cores among this process's CPU
 * affinity, capped by its cgroup CPU quota (backend/cpu/cpu_count.h). At least 1. */
int backend_cpu_default_threads(void);
/* A sim device of `capacity` bytes (> 0) and gbps (0 = BACKEND_SIM_DEFAULT_GBPS). */
backend_device *backend_sim_device_new(const char *name, uint64_t capacity, double gbps);
/* Failure injection: the nth arena allocation on this sim device from now on (1 = the
 * next) fails with STRATA_ERR_NOMEM as if the memory were not there; 0 disarms. */
void backend_sim_fail_alloc(backend_device *dev, int nth);
/* Strict mode: the sim's arenas are inaccessible (PROT_NONE) except while one of its own ops
 * or copies runs, so that any other host access faults. Default: env STRATA_SIM_STRICT=1
 * when the device is made; every test that splits a model turns it on. */
void backend_sim_set_strict(backend_device *dev, bool strict);
bool backend_sim_strict(const backend_device *dev);
/* Arena allocations attempted on sim devices in this process (for STRATA_SIM_FAIL_ALLOC). */
uint64_t backend_sim_alloc_attempts(void);

/* True when this build can discover CUDA devices. */
bool backend_cuda_available(void);
/* Why no CUDA device can be used (no driver, a driver too old for this build's toolkit, no
 * GPU, a build without CUDA), or NULL when there is at least one. */
const char *backend_cuda_unavailable_reason(void);
/* Number of CUDA devices found (0 without a GPU, a driver, or CUDA support in this build;
 * never an error). */
int backend_cuda_count(void);
/* A device for CUDA ordinal `ordinal` (context created, memory read). mem_cap 0 = no cap;
 * gbps 0 = derive. STRATA_ERR_NOT_FOUND if there is no such device. */
strata_status backend_cuda_device_new(int ordinal, const char *name, uint64_t mem_cap, double gbps,
                                      backend_device **out);

/* Frees a device and its arena. */
void backend_device_free(backend_device *dev);

/* ---- Sizes and specs ---------------------------------------------------------------- */

/* Parses a size with a unit ("12GiB", "1.5 GB", "512MiB", "0"); units as in the header
 * comment; a bare number other than 0 is refused (a unit is required). */
strata_status backend_parse_size(const char *text, uint64_t *out);

typedef struct {
    backend_device_kind kind;
    int ordinal;        /* cuda: -1 = every device */
    uint64_t memory;    /* 0 = not given */
    double gbps;        /* 0 = not given */
    char name[BACKEND_NAME_MAX]; /* "" = not given */
} backend_spec_entry;

/* Parses a device spec into at most `cap` entries. Errors (STRATA_ERR_INVALID) name the
 * entry, the field and its column: "device spec entry 2 'sim:12XB', field 2 (MEMORY) at
 * column 18: unknown unit 'XB' ...". */
strata_status backend_spec_parse(const char *spec, backend_spec_entry *entries, int cap, int *count);

/* ---- Inventory ---------------------------------------------------------------------- */

typedef struct {
    backend_device *devices[BACKEND_MAX_DEVICES]; /* spec order; the cpu device last */
    int count;
} backend_inventory;

/* Builds the inventory from `spec` (NULL or "" = discovery: CUDA devices + cpu). Labels
 * are made unique ("A2000 #1", "A2000 #2" when two devices share a name). */
strata_status backend_inventory_from_spec(const char *spec, backend_inventory **out);
/* From env STRATA_DEVICES if set, else discovery. */
strata_status backend_inventory_default(backend_inventory **out);
void backend_inventory_free(backend_inventory *inv);
/* The cpu device (always present). */
backend_device *backend_inventory_cpu(const backend_inventory *inv);

#endif
