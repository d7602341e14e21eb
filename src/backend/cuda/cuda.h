/* Private to backend/cuda: what a CUDA device holds besides its arenas. Made when the device
 * is opened, before its free memory is read, so that what they cost is not counted as
 * free: the primary context, every kernel module (loaded eagerly), the stream every op of
 * the device is queued on, and the cuBLAS handle (its workspace lives in the arena, in the
 * matmul scratch, set before each product). */
#ifndef STRATA_BACKEND_CUDA_CUDA_H
#define STRATA_BACKEND_CUDA_CUDA_H

#ifdef STRATA_HAVE_CUDA
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "backend/device_impl.h"

typedef struct {
    int ordinal;
    cudaStream_t stream;
    cublasHandle_t blas;
    int error;        /* the first failed launch or call of an op (a cudaError_t or cuBLAS status) */
    char what[96];    /* which op it was */
} cuda_state;

/* The device's state (dev->impl). */
static inline cuda_state *cuda_state_of(const backend_device *dev) { return (cuda_state *)dev->impl; }

/* Records the first error of an op (ops return nothing): copy_out and synchronize report it. */
void cuda_note_error(backend_device *dev, int error, const char *what);
/* The recorded error as a status (and clears it), or STRATA_OK. */
strata_status cuda_take_error(backend_device *dev);

/* cuBLAS workspace each product may use, carved from the matmul scratch. */
#define CUDA_CUBLAS_WORKSPACE ((size_t)4 << 20)
/* Rows of a quantized matrix dequantized at a time for a batch product. */
#define CUDA_TILE_ROWS 1024
#endif

#endif
