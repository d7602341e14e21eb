/* CUDA devices, discovery only: name, memory read after the context exists, bandwidth.
 *
 * Compiled for real only when CMake found the CUDA toolkit (STRATA_HAVE_CUDA, linking
 * CUDA::cudart); otherwise the stubs at the end report no devices. Without a GPU or a
 * driver at run time cudaGetDeviceCount fails (cudaErrorNoDevice,
 * cudaErrorInsufficientDriver, ...): that means "no CUDA devices", never an error.
 *
 * The devices are listed but not offered to the planner (plannable = false) until CUDA
 * kernels exist. Their arena is real device memory (cudaMalloc), so the loader can be
 * tested against a real GPU when one is there. See backend/device.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/device_impl.h"

#ifdef STRATA_HAVE_CUDA
#include <cuda_runtime_api.h>

bool backend_cuda_available(void) { return true; }

int backend_cuda_count(void) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); /* clear the sticky-free error so later calls start clean */
        return 0;
    }
    return n > 0 ? n : 0;
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
static double cuda_measure_gbps(backend_device *dev) {
    int khz = 0, bits = 0;
    if (cudaDeviceGetAttribute(&khz, cudaDevAttrMemoryClockRate, dev->ordinal) != cudaSuccess ||
        cudaDeviceGetAttribute(&bits, cudaDevAttrGlobalMemoryBusWidth, dev->ordinal) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return 2.0 * (double)khz * 1e3 * ((double)bits / 8.0) / 1e9;
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

static strata_status cuda_copy_in(backend_device *dev, void *dst, const void *src, size_t bytes) {
    cudaError_t e = cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice);
    return e == cudaSuccess ? STRATA_OK : cuda_error(dev, e, "cudaMemcpy to the device");
}

static strata_status cuda_copy_out(backend_device *dev, void *dst, const void *src, size_t bytes) {
    cudaError_t e = cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost);
    return e == cudaSuccess ? STRATA_OK : cuda_error(dev, e, "cudaMemcpy from the device");
}

static const backend_device_ops cuda_ops = {
    .query_free = cuda_query_free,
    .measure_gbps = cuda_measure_gbps,
    .alloc = cuda_alloc,
    .release = cuda_release,
    .copy_in = cuda_copy_in,
    .copy_out = cuda_copy_out,
    .destroy = NULL,
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
    /* Free memory is read after the primary context exists: creating it costs memory that
     * would otherwise be counted as free (DESIGN §2.3). cudaFree(NULL) creates it. */
    if (e == cudaSuccess) e = cudaFree(NULL);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        free(d);
        return strata_fail(STRATA_ERR_IO, "CUDA device %d: %s", ordinal, cudaGetErrorString(e));
    }
    prop.name[sizeof prop.name - 1] = 0;
    snprintf(d->name, sizeof d->name, "%.*s", BACKEND_NAME_MAX - 1, name ? name : prop.name);
    snprintf(d->label, sizeof d->label, "%s", d->name);
    d->total_bytes = prop.totalGlobalMem;
    d->cap_bytes = mem_cap;
    d->gbps = gbps > 0 ? gbps : 0;
    d->gbps_configured = gbps > 0;
    d->plannable = false; /* discovery only until CUDA kernels exist */
    *out = d;
    return STRATA_OK;
}

#else /* !STRATA_HAVE_CUDA */

bool backend_cuda_available(void) { return false; }

int backend_cuda_count(void) { return 0; }

strata_status backend_cuda_device_new(int ordinal, const char *name, uint64_t mem_cap, double gbps,
                                      backend_device **out) {
    (void)name;
    (void)mem_cap;
    (void)gbps;
    *out = NULL;
    return strata_fail(STRATA_ERR_NOT_FOUND, "no CUDA device %d: this build has no CUDA support", ordinal);
}

#endif
