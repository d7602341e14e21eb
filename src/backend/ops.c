/* Finding a kind's op table, and copies between devices. See ops.h. */
#include "backend/device_impl.h"
#include "backend/ops.h"

const backend_ops *backend_device_compute(const backend_device *dev) { return dev->ops->compute; }

const backend_ops *backend_kind_ops(backend_device_kind kind) {
    switch (kind) {
    case BACKEND_DEVICE_CPU: return &backend_cpu_ops;
    case BACKEND_DEVICE_SIM: return &backend_sim_ops;
    case BACKEND_DEVICE_CUDA:
#ifdef STRATA_HAVE_CUDA
        return &backend_cuda_ops;
#else
        return NULL;
#endif
    }
    return NULL;
}

strata_status backend_copy_between(backend_device *dst_dev, void *dst, backend_device *src_dev, const void *src,
                                   size_t bytes, void *staging) {
    const backend_ops *so = backend_device_compute(src_dev), *dso = backend_device_compute(dst_dev);
    if (!so || !dso)
        return strata_fail(STRATA_ERR_UNSUPPORTED, "copy from %s to %s: a device that cannot compute", src_dev->label,
                           dst_dev->label);
    if (so->host_memory) return backend_device_copy_in(dst_dev, dst, src, bytes);
    if (dso->host_memory) return backend_device_copy_out(src_dev, dst, src, bytes);
    if (so == dso && so->copy_peer) return so->copy_peer(dst_dev, dst, src_dev, src, bytes);
    so->synchronize(src_dev);
    strata_status st = backend_device_copy_out(src_dev, staging, src, bytes);
    if (st == STRATA_OK) st = backend_device_copy_in(dst_dev, dst, staging, bytes);
    return st;
}
