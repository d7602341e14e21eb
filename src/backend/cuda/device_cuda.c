/* CUDA devices: discovery, memory, the arena, copies, and the op table (ops_cuda.c).
 *
 * Compiled for real only when CMake found the CUDA toolkit (STRATA_HAVE_CUDA: nvcc builds
 * kernels.cu, linking CUDA::cudart and CUDA::cublas); otherwise the stubs at the end report
 * no devices, and why. Without a GPU or a driver at run time cudaGetDeviceCount fails
 * (cudaErrorNoDevice, cudaErrorInsufficientDriver, ...): that means "no CUDA devices",
 * never an error, and backend_cuda_unavailable_reason() says which.
 *
 * Opening a device creates, before its free memory is read (so that none of it is counted
 * as free): the primary context, every kernel module (CUDA_MODULE_LOADING=EAGER unless the
 * environment says otherwise: since CUDA 12.2 modules load lazily, on a kernel's first
 * launch, which would take memory after the plan was made), the stream its ops are queued
 * on and its cuBLAS handle (cuda.h). The arena is one cudaMalloc of exactly the planned
 * bytes. Speed: a device-to-device copy probe at open (read + write bytes over time, best of
 * 3), or 2 x memory clock x bus width where that fails. See backend/device.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/device_impl.h"

#ifdef STRATA_HAVE_CUDA
#include <dlfcn.h>

#include "backend/cuda/cuda.h"
#include "backend/ops.h"

static char unavailable[160];

bool backend_cuda_available(void) { return true; }

int backend_cuda_count(void) {
    /* before the first call that initialises the runtime */
    setenv("CUDA_MODULE_LOADING", "EAGER", 0);
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        /* the runtime says "insufficient driver" when there is no driver at all, too */
        void *drv = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
        if (drv) dlclose(drv);
        const char *why = !drv ? "no NVIDIA driver is installed (libcuda.so.1 not found)"
                          : e == cudaErrorInsufficientDriver ? "the NVIDIA driver is older than this build's CUDA toolkit"
                          : e == cudaErrorNoDevice         ? "no NVIDIA GPU is visible"
                          : e == cudaErrorInitializationError || e == cudaErrorSystemDriverMismatch
                              ? "the NVIDIA driver could not be initialised"
                              : NULL;
        snprintf(unavailable, sizeof unavailable, "%s (%s)", why ? why : "CUDA is not usable here",
                 cudaGetErrorString(e));
        (void)cudaGetLastError(); /* clear the sticky-free error so later calls start clean */
        return 0;
    }
    if (n == 0) snprintf(unavailable, sizeof unavailable, "no NVIDIA GPU is visible");
    return n > 0 ? n : 0;
}

const char *backend_cuda_unavailable_reason(void) {
    if (backend_cuda_count() > 0) return NULL;
    return unavailable[0] ? unavailable : "no NVIDIA GPU is visible";
}

static strata_status cuda_error(backend_device *dev, cudaError_t e, const char *what) {
    (void)cudaGetLastError();
    return strata_fail(e == cudaErrorMemoryAllocation ? STRATA_ERR_NOMEM : STRATA_ERR_IO, "device %s: %s: %s",
                       dev->label, what, cudaGetErrorString(e));
}

static strata_status cuda_query_free(backend_device *dev, uint64_t *free_bytes) {
    cudaError_t e = cudaSetDevice(dev->ordinal);
    if (e != cudaSuccess) return cuda_error(dev, e, "cudaSetDevice");
    size_t f = 0, t = 0;
    e = cudaMemGetInfo(&f, &t);
    if (e != cudaSuccess) return cuda_error(dev, e, "cudaMemGetInfo");
    *free_bytes = f;
    return STRATA_OK;
}

/* Peak bandwidth: memory clock (kHz) x 2 (double data rate) x bus width (bits) / 8. */
static double cuda_peak_gbps(backend_device *dev) {
    int khz = 0, bits = 0;
    if (cudaDeviceGetAttribute(&khz, cudaDevAttrMemoryClockRate, dev->ordinal) != cudaSuccess ||
        cudaDeviceGetAttribute(&bits, cudaDevAttrGlobalMemoryBusWidth, dev->ordinal) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return 2.0 * (double)khz * 1e3 * ((double)bits / 8.0) / 1e9;
}

/* The best of 3 timed copies of `bytes` on stream s (after a warm-up), as GB/s of `moved`
 * bytes per copy; 0 when timing fails. */
static double timed_copies_gbps(cudaStream_t s, void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind,
                                double moved) {
    cudaEvent_t e0 = NULL, e1 = NULL;
    double best = 0;
    if (cudaEventCreate(&e0) == cudaSuccess && cudaEventCreate(&e1) == cudaSuccess) {
        cudaMemcpyAsync(dst, src, bytes, kind, s); /* warm-up */
        for (int r = 0; r < 3; r++) {
            float ms = 0;
            cudaEventRecord(e0, s);
            cudaMemcpyAsync(dst, src, bytes, kind, s);
            cudaEventRecord(e1, s);
            if (cudaEventSynchronize(e1) == cudaSuccess && cudaEventElapsedTime(&ms, e0, e1) == cudaSuccess && ms > 0) {
                double g = moved / (ms * 1e-3) / 1e9;
                if (g > best) best = g;
            }
        }
    }
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    return best;
}

/* A device-to-device copy of 256 MiB (or an eighth of what is free): bytes read plus bytes
 * written over the time, what a decode step's reading of the weights is bound by. 0 when
 * the probe cannot run. */
static double cuda_copy_probe_gbps(backend_device *dev) {
    size_t f = 0, t = 0;
    if (cudaSetDevice(dev->ordinal) != cudaSuccess || cudaMemGetInfo(&f, &t) != cudaSuccess) return 0;
    size_t bytes = (size_t)256 << 20;
    if (bytes > f / 8) bytes = f / 8 & ~(size_t)255;
    if (bytes < ((size_t)16 << 20)) return 0;
    void *a = NULL, *b = NULL;
    double best = 0;
    if (cudaMalloc(&a, bytes) == cudaSuccess && cudaMalloc(&b, bytes) == cudaSuccess)
        best = timed_copies_gbps(cuda_state_of(dev)->stream, b, a, bytes, cudaMemcpyDeviceToDevice, 2.0 * (double)bytes);
    cudaFree(a);
    cudaFree(b);
    (void)cudaGetLastError();
    return best;
}

/* Host -> device: 64 MiB from pinned memory (what staging a hand-off through the host runs
 * at). 0 when the probe cannot run. */
static double cuda_host_link_gbps(backend_device *dev) {
    const size_t bytes = (size_t)64 << 20;
    void *h = NULL, *d = NULL;
    double best = 0;
    if (cudaSetDevice(dev->ordinal) == cudaSuccess && cudaMallocHost(&h, bytes) == cudaSuccess &&
        cudaMalloc(&d, bytes) == cudaSuccess) {
        memset(h, 1, bytes);
        best = timed_copies_gbps(cuda_state_of(dev)->stream, d, h, bytes, cudaMemcpyHostToDevice, (double)bytes);
    }
    cudaFree(d);
    cudaFreeHost(h);
    (void)cudaGetLastError();
    return best;
}

static double cuda_measure_gbps(backend_device *dev) {
    double g = cuda_copy_probe_gbps(dev);
    return g > 0 ? g : cuda_peak_gbps(dev);
}

static strata_status cuda_alloc(backend_device *dev, size_t bytes, void **out) {
    cudaError_t e = cudaSetDevice(dev->ordinal);
    if (e != cudaSuccess) return cuda_error(dev, e, "cudaSetDevice");
    void *p = NULL;
    e = cudaMalloc(&p, bytes); /* 256-byte aligned, more than BACKEND_ARENA_ALIGN */
    if (e != cudaSuccess) return cuda_error(dev, e, "cudaMalloc");
    *out = p;
    return STRATA_OK;
}

static void cuda_release(backend_device *dev, void *ptr, size_t bytes) {
    (void)bytes;
    if (cudaSetDevice(dev->ordinal) == cudaSuccess) cudaFree(ptr);
    (void)cudaGetLastError();
}

/* Copies are queued after the device's ops, on its stream, and waited for: the host buffer
 * may be reused as soon as they return. */
static strata_status cuda_copy_in(backend_device *dev, void *dst, const void *src, size_t bytes) {
    cuda_state *cs = cuda_state_of(dev);
    cudaError_t e = cudaSetDevice(cs->ordinal);
    if (e == cudaSuccess) e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, cs->stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(cs->stream);
    return e == cudaSuccess ? STRATA_OK : cuda_error(dev, e, "copy to the device");
}

static strata_status cuda_copy_out(backend_device *dev, void *dst, const void *src, size_t bytes) {
    cuda_state *cs = cuda_state_of(dev);
    cudaError_t e = cudaSetDevice(cs->ordinal);
    if (e == cudaSuccess) e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, cs->stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(cs->stream);
    strata_status st = cuda_take_error(dev); /* an op queued before failed: its results are not there */
    if (st != STRATA_OK) return st;
    return e == cudaSuccess ? STRATA_OK : cuda_error(dev, e, "copy from the device");
}

static void cuda_destroy(backend_device *dev) {
    cuda_state *cs = cuda_state_of(dev);
    if (!cs) return;
    if (cudaSetDevice(cs->ordinal) == cudaSuccess) {
        if (cs->blas) cublasDestroy(cs->blas);
        if (cs->stream) cudaStreamDestroy(cs->stream);
    }
    (void)cudaGetLastError();
    free(cs);
    dev->impl = NULL;
}

static const backend_device_ops cuda_ops = {
    .query_free = cuda_query_free,
    .measure_gbps = cuda_measure_gbps,
    .alloc = cuda_alloc,
    .release = cuda_release,
    .copy_in = cuda_copy_in,
    .copy_out = cuda_copy_out,
    .destroy = cuda_destroy,
    .compute = &backend_cuda_ops,
};

strata_status backend_cuda_device_new(int ordinal, const char *name, uint64_t mem_cap, double gbps,
                                      backend_device **out) {
    *out = NULL;
    int n = backend_cuda_count();
    if (ordinal < 0 || ordinal >= n)
        return strata_fail(STRATA_ERR_NOT_FOUND, "no CUDA device %d (%d found)", ordinal, n);
    backend_device *d = calloc(1, sizeof *d);
    if (!d) return strata_fail(STRATA_ERR_NOMEM, "devices: out of host memory");
    d->ops = &cuda_ops;
    d->kind = BACKEND_DEVICE_CUDA;
    d->ordinal = ordinal;
    struct cudaDeviceProp prop;
    memset(&prop, 0, sizeof prop);
    cudaError_t e = cudaGetDeviceProperties(&prop, ordinal);
    if (e == cudaSuccess) e = cudaSetDevice(ordinal);
    /* Free memory is read after the primary context, the kernel modules (loaded eagerly
     * with it), the stream and the cuBLAS handle exist: they cost memory that would
     * otherwise be counted as free (DESIGN §2.3). cudaFree(NULL) creates the context. */
    if (e == cudaSuccess) e = cudaFree(NULL);
    cuda_state *cs = e == cudaSuccess ? calloc(1, sizeof *cs) : NULL;
    if (cs) {
        cs->ordinal = ordinal;
        d->impl = cs;
        e = cudaStreamCreateWithFlags(&cs->stream, cudaStreamNonBlocking);
    }
    cublasStatus_t bs = CUBLAS_STATUS_SUCCESS;
    if (cs && e == cudaSuccess) bs = cublasCreate(&cs->blas);
    if (cs && e == cudaSuccess && bs == CUBLAS_STATUS_SUCCESS) bs = cublasSetStream(cs->blas, cs->stream);
    if (e != cudaSuccess || !cs || bs != CUBLAS_STATUS_SUCCESS) {
        (void)cudaGetLastError();
        cuda_destroy(d);
        free(d);
        if (bs != CUBLAS_STATUS_SUCCESS)
            return strata_fail(STRATA_ERR_IO, "CUDA device %d: cuBLAS could not be initialised (status %d)", ordinal,
                               (int)bs);
        return strata_fail(e == cudaSuccess ? STRATA_ERR_NOMEM : STRATA_ERR_IO, "CUDA device %d: %s", ordinal,
                           e == cudaSuccess ? "out of host memory" : cudaGetErrorString(e));
    }
    prop.name[sizeof prop.name - 1] = 0;
    snprintf(d->name, sizeof d->name, "%.*s", BACKEND_NAME_MAX - 1, name ? name : prop.name);
    snprintf(d->label, sizeof d->label, "%s", d->name);
    d->total_bytes = prop.totalGlobalMem;
    d->cap_bytes = mem_cap;
    d->gbps = gbps > 0 ? gbps : cuda_measure_gbps(d);
    d->host_link_gbps = cuda_host_link_gbps(d);
    d->gbps_configured = gbps > 0;
    d->plannable = true;
    *out = d;
    return STRATA_OK;
}

#else /* !STRATA_HAVE_CUDA */

bool backend_cuda_available(void) { return false; }

int backend_cuda_count(void) { return 0; }

const char *backend_cuda_unavailable_reason(void) {
    return "this build has no CUDA support (the CUDA toolkit was not found when it was built)";
}

strata_status backend_cuda_device_new(int ordinal, const char *name, uint64_t mem_cap, double gbps,
                                      backend_device **out) {
    (void)name;
    (void)mem_cap;
    (void)gbps;
    *out = NULL;
    return strata_fail(STRATA_ERR_NOT_FOUND, "no CUDA device %d: this build has no CUDA support", ordinal);
}

#endif
