// CUDA kernels of the cuda kind (see kernels.h). Written for correctness first: weights are
// decoded element by element from GGUF's block layouts as tensor/dequant.c defines them,
// and every reduction is in float. The decode products read each weight byte once per
// token (one warp per row, lanes over consecutive elements), which is what bounds them.
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "backend/cuda/kernels.h"

namespace {

// strata_type values (tensor/type.h): GGUF's type ids.
enum {
    T_F32 = 0, T_F16 = 1, T_Q4_0 = 2, T_Q4_1 = 3, T_Q5_0 = 6, T_Q5_1 = 7, T_Q8_0 = 8,
    T_Q2_K = 10, T_Q3_K = 11, T_Q4_K = 12, T_Q5_K = 13, T_Q6_K = 14, T_IQ4_NL = 20, T_IQ4_XS = 23,
    T_BF16 = 30,
};

__constant__ int8_t kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// Token ids for embed_rows, copied in per call (no allocation during the forward pass).
#define EMBED_MAX 1024
__constant__ int32_t embed_tokens[EMBED_MAX];

__device__ __forceinline__ float h2f(const uint8_t *p) {
    return __half2float(__ushort_as_half((unsigned short)(p[0] | (p[1] << 8))));
}
__device__ __forceinline__ uint32_t u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

__device__ __forceinline__ void scale_min_k4(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

// Element j of a row of type T, as tensor/dequant.c computes it.
template <int T> __device__ __forceinline__ float elem(const uint8_t *row, int64_t j);

template <> __device__ __forceinline__ float elem<T_F32>(const uint8_t *row, int64_t j) {
    return reinterpret_cast<const float *>(row)[j];
}
template <> __device__ __forceinline__ float elem<T_F16>(const uint8_t *row, int64_t j) {
    return __half2float(reinterpret_cast<const __half *>(row)[j]);
}
template <> __device__ __forceinline__ float elem<T_BF16>(const uint8_t *row, int64_t j) {
    return __uint_as_float((uint32_t)reinterpret_cast<const uint16_t *>(row)[j] << 16);
}
template <> __device__ __forceinline__ float elem<T_Q4_0>(const uint8_t *row, int64_t j) {
    const uint8_t *b = row + (j / 32) * 18;
    const int l = (int)(j % 32);
    const int q = l < 16 ? (b[2 + l] & 0x0f) : (b[2 + l - 16] >> 4);
    return (float)(q - 8) * h2f(b);
}
template <> __device__ __forceinline__ float elem<T_Q4_1>(const uint8_t *row, int64_t j) {
    const uint8_t *b = row + (j / 32) * 20;
    const int l = (int)(j % 32);
    const int q = l < 16 ? (b[4 + l] & 0x0f) : (b[4 + l - 16] >> 4);
    return (float)q * h2f(b) + h2f(b + 2);
}
template <> __device__ __forceinline__ float elem<T_Q5_0>(const uint8_t *row, int64_t j) {
    const uint8_t *b = row + (j / 32) * 22;
    const int l = (int)(j % 32);
    const uint32_t qh = u32(b + 2);
    const int lo = l < 16 ? (b[6 + l] & 0x0f) : (b[6 + l - 16] >> 4);
    const int q = lo | (int)(((qh >> l) & 1) << 4);
    return (float)(q - 16) * h2f(b);
}
template <> __device__ __forceinline__ float elem<T_Q5_1>(const uint8_t *row, int64_t j) {
    const uint8_t *b = row + (j / 32) * 24;
    const int l = (int)(j % 32);
    const uint32_t qh = u32(b + 4);
    const int lo = l < 16 ? (b[8 + l] & 0x0f) : (b[8 + l - 16] >> 4);
    const int q = lo | (int)(((qh >> l) & 1) << 4);
    return (float)q * h2f(b) + h2f(b + 2);
}
template <> __device__ __forceinline__ float elem<T_Q8_0>(const uint8_t *row, int64_t j) {
    const uint8_t *b = row + (j / 32) * 34;
    return (float)(int8_t)b[2 + j % 32] * h2f(b);
}
template <> __device__ __forceinline__ float elem<T_Q2_K>(const uint8_t *row, int64_t j) {
    const uint8_t *b = row + (j / 256) * 84; // scales[16], qs[64], d, dmin
    const int l = (int)(j % 256), g = l / 16, ll = l % 16;
    const int sc = b[g];
    const float dl = h2f(b + 80) * (float)(sc & 0x0f), ml = h2f(b + 82) * (float)(sc >> 4);
    const int q = b[16 + 32 * (g / 8) + 16 * (g % 2) + ll];
    const int shift = 2 * ((g % 8) / 2);
    return dl * (float)((q >> shift) & 3) - ml;
}
template <> __device__ __forceinline__ float elem<T_Q3_K>(const uint8_t *row, int64_t j) {
    const uint8_t *b = row + (j / 256) * 110; // hmask[32], qs[64], scales[12], d
    const int l = (int)(j % 256), g = l / 16, ll = l % 16;
    const uint8_t *s = b + 96;
    const int lo = g < 8 ? (s[g] & 0x0f) : (s[g - 8] >> 4);
    const int hi = (s[8 + g % 4] >> (2 * (g / 4))) & 3;
    const int sc = (lo | (hi << 4)) - 32;
    const int half = g / 8, k = (g % 8) / 2, off = 16 * (g % 2);
    const int q = b[32 + 32 * half + off + ll];
    const int hm = b[off + ll];
    const int v = ((q >> (2 * k)) & 3) - ((hm & (1 << (4 * half + k))) ? 0 : 4);
    return h2f(b + 108) * (float)sc * (float)v;
}
template <> __device__ __forceinline__ float elem<T_Q4_K>(const uint8_t *row, int64_t j) {
    const uint8_t *b = row + (j / 256) * 144; // d, dmin, scales[12], qs[128]
    const int l = (int)(j % 256), j4 = l / 64, w = l % 64;
    int sc, m;
    scale_min_k4(2 * j4 + (w >= 32), b + 4, &sc, &m);
    const uint8_t q = b[16 + 32 * j4 + (w % 32)];
    const int v = w < 32 ? (q & 0x0f) : (q >> 4);
    return h2f(b) * (float)sc * (float)v - h2f(b + 2) * (float)m;
}
template <> __device__ __forceinline__ float elem<T_Q5_K>(const uint8_t *row, int64_t j) {
    const uint8_t *b = row + (j / 256) * 176; // d, dmin, scales[12], qh[32], qs[128]
    const int l = (int)(j % 256), j4 = l / 64, w = l % 64, ll = w % 32;
    int sc, m;
    scale_min_k4(2 * j4 + (w >= 32), b + 4, &sc, &m);
    const uint8_t ql = b[48 + 32 * j4 + ll], qh = b[16 + ll];
    const int v = w < 32 ? (ql & 0x0f) + ((qh & (1 << (2 * j4))) ? 16 : 0)
                         : (ql >> 4) + ((qh & (2 << (2 * j4))) ? 16 : 0);
    return h2f(b) * (float)sc * (float)v - h2f(b + 2) * (float)m;
}
template <> __device__ __forceinline__ float elem<T_Q6_K>(const uint8_t *row, int64_t j) {
    const uint8_t *b = row + (j / 256) * 210; // ql[128], qh[64], scales[16], d
    const int l = (int)(j % 256), h = l / 128, r = l % 128, quarter = r / 32, ll = r % 32, s = ll / 16;
    const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
    const int8_t *sc = reinterpret_cast<const int8_t *>(b + 192) + 8 * h;
    int q;
    switch (quarter) {
    case 0: q = (ql[ll] & 0x0f) | (((qh[ll] >> 0) & 3) << 4); break;
    case 1: q = (ql[ll + 32] & 0x0f) | (((qh[ll] >> 2) & 3) << 4); break;
    case 2: q = (ql[ll] >> 4) | (((qh[ll] >> 4) & 3) << 4); break;
    default: q = (ql[ll + 32] >> 4) | (((qh[ll] >> 6) & 3) << 4); break;
    }
    return h2f(b + 208) * (float)sc[s + 2 * quarter] * (float)(q - 32);
}
template <> __device__ __forceinline__ float elem<T_IQ4_NL>(const uint8_t *row, int64_t j) {
    const uint8_t *b = row + (j / 32) * 18;
    const int l = (int)(j % 32);
    const int q = l < 16 ? (b[2 + l] & 0x0f) : (b[2 + l - 16] >> 4);
    return h2f(b) * (float)kvalues_iq4nl[q];
}
template <> __device__ __forceinline__ float elem<T_IQ4_XS>(const uint8_t *row, int64_t j) {
    const uint8_t *b = row + (j / 256) * 136; // d, scales_h, scales_l[4], qs[128]
    const int l = (int)(j % 256), g = l / 32, ll = l % 32;
    const int sh = b[2] | (b[3] << 8);
    const int ls = ((b[4 + g / 2] >> (4 * (g % 2))) & 0x0f) | (((sh >> (2 * g)) & 3) << 4);
    const uint8_t q = b[8 + 16 * g + (ll % 16)];
    return h2f(b) * (float)(ls - 32) * (float)kvalues_iq4nl[ll < 16 ? (q & 0x0f) : (q >> 4)];
}

// Bytes of one row of `cols` elements.
__host__ __device__ inline size_t row_bytes(int type, int64_t cols) {
    switch (type) {
    case T_F32: return (size_t)cols * 4;
    case T_F16:
    case T_BF16: return (size_t)cols * 2;
    case T_Q4_0:
    case T_IQ4_NL: return (size_t)(cols / 32) * 18;
    case T_Q4_1: return (size_t)(cols / 32) * 20;
    case T_Q5_0: return (size_t)(cols / 32) * 22;
    case T_Q5_1: return (size_t)(cols / 32) * 24;
    case T_Q8_0: return (size_t)(cols / 32) * 34;
    case T_Q2_K: return (size_t)(cols / 256) * 84;
    case T_Q3_K: return (size_t)(cols / 256) * 110;
    case T_Q4_K: return (size_t)(cols / 256) * 144;
    case T_Q5_K: return (size_t)(cols / 256) * 176;
    case T_Q6_K: return (size_t)(cols / 256) * 210;
    case T_IQ4_XS: return (size_t)(cols / 256) * 136;
    }
    return 0;
}

struct Sum {
    __device__ static float op(float a, float b) { return a + b; }
    __device__ static float none() { return 0.0f; }
};
struct Max {
    __device__ static float op(float a, float b) { return fmaxf(a, b); }
    __device__ static float none() { return -INFINITY; }
};

template <class R> __device__ __forceinline__ float warp_reduce(float v) {
    for (int o = 16; o > 0; o >>= 1) v = R::op(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
__device__ __forceinline__ float warp_sum(float v) { return warp_reduce<Sum>(v); }
__device__ __forceinline__ float warp_max(float v) { return warp_reduce<Max>(v); }

// Over a block of up to 1024 threads; every thread gets the result.
template <class R> __device__ float block_reduce(float v) {
    __shared__ float part[32];
    v = warp_reduce<R>(v);
    const int lane = threadIdx.x % 32, wid = threadIdx.x / 32;
    __syncthreads();
    if (lane == 0) part[wid] = v;
    __syncthreads();
    const int nw = (blockDim.x + 31) / 32;
    v = lane < nw ? part[lane] : R::none();
    return warp_reduce<R>(v);
}
__device__ float block_sum(float v) { return block_reduce<Sum>(v); }
__device__ float block_max(float v) { return block_reduce<Max>(v); }

// ---- products ----------------------------------------------------------------------------

// One warp per row (8 rows per block of 256 threads), all n tokens at once.
template <int T>
__global__ void matvec_kernel(const uint8_t *w, int64_t rows, int64_t cols, size_t rb, const float *x, int n,
                              const float *bias, float *y) {
    const int64_t r = (int64_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (r >= rows) return;
    const uint8_t *row = w + (size_t)r * rb;
    float acc[SCUDA_MATVEC_MAX_N] = {0};
    for (int64_t c = lane; c < cols; c += 32) {
        const float wv = elem<T>(row, c);
        for (int i = 0; i < n; i++) acc[i] += wv * x[(size_t)i * cols + c];
    }
    for (int i = 0; i < n; i++) {
        const float s = warp_sum(acc[i]);
        if (lane == 0) y[(size_t)i * rows + r] = s + (bias ? bias[r] : 0.0f);
    }
}

template <int T, typename O>
__global__ void dequant_kernel(const uint8_t *w, int64_t r0, int64_t nr, int64_t cols, size_t rb, O *out) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= nr * cols) return;
    const int64_t r = i / cols, c = i % cols;
    const float v = elem<T>(w + (size_t)(r0 + r) * rb, c);
    if constexpr (sizeof(O) == 2) out[i] = __float2half(v);
    else out[i] = v;
}

template <int T>
__global__ void embed_kernel(const uint8_t *table, int64_t dim, size_t rb, int n, float *out) {
    const int i = blockIdx.y;
    for (int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; c < dim; c += (int64_t)gridDim.x * blockDim.x)
        out[(size_t)i * dim + c] = elem<T>(table + (size_t)embed_tokens[i] * rb, c);
}

// Calls F<T>() for the runtime type id; -1 for a type no kernel decodes.
template <template <int> class F, typename... A> int dispatch(int type, A... a) {
    switch (type) {
    case T_F32: return F<T_F32>::run(a...);
    case T_F16: return F<T_F16>::run(a...);
    case T_BF16: return F<T_BF16>::run(a...);
    case T_Q4_0: return F<T_Q4_0>::run(a...);
    case T_Q4_1: return F<T_Q4_1>::run(a...);
    case T_Q5_0: return F<T_Q5_0>::run(a...);
    case T_Q5_1: return F<T_Q5_1>::run(a...);
    case T_Q8_0: return F<T_Q8_0>::run(a...);
    case T_Q2_K: return F<T_Q2_K>::run(a...);
    case T_Q3_K: return F<T_Q3_K>::run(a...);
    case T_Q4_K: return F<T_Q4_K>::run(a...);
    case T_Q5_K: return F<T_Q5_K>::run(a...);
    case T_Q6_K: return F<T_Q6_K>::run(a...);
    case T_IQ4_NL: return F<T_IQ4_NL>::run(a...);
    case T_IQ4_XS: return F<T_IQ4_XS>::run(a...);
    }
    return -1;
}

int launched(void) { return (int)cudaGetLastError(); }

template <int T> struct MatvecRun {
    static int run(const void *w, int64_t rows, int64_t cols, const float *x, int n, const float *bias, float *y,
                   cudaStream_t s) {
        const int per_block = 8;
        matvec_kernel<T><<<(unsigned)((rows + per_block - 1) / per_block), 32 * per_block, 0, s>>>(
            static_cast<const uint8_t *>(w), rows, cols, row_bytes(T, cols), x, n, bias, y);
        return launched();
    }
};

template <int T> struct DequantRun {
    static int run(const void *w, int64_t r0, int64_t nr, int64_t cols, void *out, int wide, cudaStream_t s) {
        const int64_t total = nr * cols;
        const unsigned blocks = (unsigned)((total + 255) / 256);
        if (wide)
            dequant_kernel<T, float><<<blocks, 256, 0, s>>>(static_cast<const uint8_t *>(w), r0, nr, cols,
                                                             row_bytes(T, cols), static_cast<float *>(out));
        else
            dequant_kernel<T, __half><<<blocks, 256, 0, s>>>(static_cast<const uint8_t *>(w), r0, nr, cols,
                                                              row_bytes(T, cols), static_cast<__half *>(out));
        return launched();
    }
};

template <int T> struct EmbedRun {
    static int run(const void *table, int64_t dim, int n, float *out, cudaStream_t s) {
        dim3 grid((unsigned)((dim + 255) / 256), (unsigned)n);
        embed_kernel<T><<<grid, 256, 0, s>>>(static_cast<const uint8_t *>(table), dim, row_bytes(T, dim), n, out);
        return launched();
    }
};

template <int T> struct Supported {
    static int run() { return 1; }
};

// ---- elementwise and norms -----------------------------------------------------------------

__global__ void f32_to_f16_kernel(const float *x, int64_t count, __half *out) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < count) out[i] = __float2half(x[i]);
}

__global__ void add_bias_kernel(float *y, const float *bias, int64_t n, int64_t rows) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n * rows) y[i] += bias[i % rows];
}

__global__ void add_rms_norm_kernel(float *x, const float *add, float *out, const float *w, int64_t dim, float eps) {
    float *xr = x + (size_t)blockIdx.x * dim;
    float ss = 0.0f;
    for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) {
        float v = xr[j];
        if (add) {
            v += add[(size_t)blockIdx.x * dim + j];
            xr[j] = v;
        }
        ss += v * v;
    }
    if (!out) return;
    ss = block_sum(ss);
    const float r = rsqrtf(ss / (float)dim + eps);
    for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) out[(size_t)blockIdx.x * dim + j] = xr[j] * r * w[j];
}

__global__ void silu_mul_kernel(float *g, const float *u, int64_t count) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < count) {
        const float v = g[i];
        g[i] = v / (1.0f + expf(-v)) * u[i];
    }
}

__global__ void rope_table_kernel(float *table, int n, int pos, int rope_dim, float base, float scale,
                                  const float *factors) {
    const int half = rope_dim / 2;
    const int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= n * half) return;
    const int i = idx / half, j = idx % half;
    double theta = (double)(pos + i) * scale * pow((double)base, -2.0 * j / rope_dim);
    if (factors) theta /= factors[j];
    table[(size_t)i * rope_dim + 2 * j] = (float)cos(theta);
    table[(size_t)i * rope_dim + 2 * j + 1] = (float)sin(theta);
}

__global__ void rope_apply_kernel(float *x, int n, int n_heads, int head_dim, int rope_dim, int neox,
                                  const float *table) {
    const int half = rope_dim / 2;
    const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (int64_t)n * n_heads * half) return;
    const int j = (int)(idx % half);
    const int64_t th = idx / half; // token * n_heads + head
    const int i = (int)(th / n_heads);
    float *v = x + (size_t)th * head_dim;
    const int a = neox ? j : 2 * j, b = neox ? j + half : 2 * j + 1;
    const float c = table[(size_t)i * rope_dim + 2 * j], s = table[(size_t)i * rope_dim + 2 * j + 1];
    const float x0 = v[a], x1 = v[b];
    v[a] = x0 * c - x1 * s;
    v[b] = x0 * s + x1 * c;
}

// ---- KV cache and attention ----------------------------------------------------------------

// One block per (token, KV head); a warp per 32 elements for Q8_0 blocks.
__global__ void kv_store_kernel(int kv_type, uint8_t *kc, uint8_t *vc, const float *k, const float *v, int pos,
                                int n_head_kv, int head_dim, int n_ctx, int ring) {
    const int i = blockIdx.x / n_head_kv, h = blockIdx.x % n_head_kv;
    const size_t rb = row_bytes(kv_type, head_dim);
    const int slot = ring ? (pos + i) % n_ctx : pos + i; // a ring keeps position p at row p mod n_ctx
    const size_t src = ((size_t)i * n_head_kv + h) * head_dim, dst = ((size_t)h * n_ctx + slot) * rb;
    for (int which = 0; which < 2; which++) {
        const float *in = (which ? v : k) + src;
        uint8_t *row = (which ? vc : kc) + dst;
        if (kv_type == T_F32) {
            for (int d = threadIdx.x; d < head_dim; d += blockDim.x) reinterpret_cast<float *>(row)[d] = in[d];
        } else if (kv_type == T_F16) {
            for (int d = threadIdx.x; d < head_dim; d += blockDim.x)
                reinterpret_cast<__half *>(row)[d] = __float2half_rn(in[d]);
        } else { // Q8_0: as tensor/quantize.c, d = amax / 127, q = round(x / d)
            const int lane = threadIdx.x % 32;
            for (int b0 = (threadIdx.x / 32) * 32; b0 < head_dim; b0 += blockDim.x) {
                const float xv = in[b0 + lane];
                const float amax = warp_max(fabsf(xv));
                const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
                uint8_t *blk = row + (b0 / 32) * 34;
                blk[2 + lane] = (uint8_t)(int8_t)roundf(xv * id);
                if (lane == 0) {
                    const unsigned short hd = __half_as_ushort(__float2half_rn(d));
                    blk[0] = (uint8_t)(hd & 0xff);
                    blk[1] = (uint8_t)(hd >> 8);
                }
            }
        }
    }
}

__device__ __forceinline__ float kv_elem(int kv_type, const uint8_t *row, int d) {
    switch (kv_type) {
    case T_F32: return elem<T_F32>(row, d);
    case T_F16: return elem<T_F16>(row, d);
    default: return elem<T_Q8_0>(row, d);
    }
}

#define ATT_THREADS 128
#define ATT_MAX_DIM 512

// Block (token i, query head qh) x chunk c: online softmax over positions [lo + c*chunk,
// min(end, lo + (c+1)*chunk)) of the keys token i sees (lo: the first its window keeps).
// Scores are q.k * scale, capped to softcap * tanh(s / softcap) when softcap > 0. With one
// chunk the output is final; otherwise the block writes its maximum, total and unnormalised
// sum into the parts. A ring cache holds position p at row p mod n_ctx.
__global__ void attention_kernel(int kv_type, const uint8_t *kc, const uint8_t *vc, const float *q, int pos,
                                 int n_head, int n_head_kv, int head_dim, int n_ctx, int chunk, float *out,
                                 float *parts, float scale, float softcap, int window, int ring) {
    __shared__ float qs[ATT_MAX_DIM];
    __shared__ float sc[ATT_THREADS];
    const int tq = blockIdx.x, i = tq / n_head, qh = tq % n_head, c = blockIdx.y, chunks = gridDim.y;
    const int h = qh / (n_head / n_head_kv);
    const int n_keys = pos + i + 1, lo = window > 0 ? max(0, n_keys - window) : 0;
    const int k0 = lo + c * chunk, k1 = min(n_keys, k0 + chunk);
    const size_t rb = row_bytes(kv_type, head_dim);
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) qs[d] = q[((size_t)i * n_head + qh) * head_dim + d];
    __syncthreads();
    float m = -INFINITY, l = 0.0f;
    float acc[ATT_MAX_DIM / ATT_THREADS] = {0};
    for (int t0 = k0; t0 < k1; t0 += ATT_THREADS) {
        const int t = t0 + threadIdx.x;
        float s = -INFINITY;
        if (t < k1) {
            const uint8_t *krow = kc + ((size_t)h * n_ctx + (ring ? t % n_ctx : t)) * rb;
            float dot = 0.0f;
            for (int d = 0; d < head_dim; d++) dot += qs[d] * kv_elem(kv_type, krow, d);
            s = dot * scale;
            if (softcap > 0.0f) s = softcap * tanhf(s / softcap);
        }
        const float mx = block_max(s);
        const float m_new = fmaxf(m, mx);
        const float p = t < k1 ? expf(s - m_new) : 0.0f;
        __syncthreads();
        sc[threadIdx.x] = p;
        const float tot = block_sum(p);
        const float corr = expf(m - m_new);
        l = l * corr + tot;
        m = m_new;
        const int nt = min(ATT_THREADS, k1 - t0);
        for (int e = 0; e * ATT_THREADS + (int)threadIdx.x < head_dim; e++) {
            const int d = e * ATT_THREADS + threadIdx.x;
            float a = acc[e] * corr;
            for (int u = 0; u < nt; u++) {
                const int t = t0 + u;
                a += sc[u] * kv_elem(kv_type, vc + ((size_t)h * n_ctx + (ring ? t % n_ctx : t)) * rb, d);
            }
            acc[e] = a;
        }
        __syncthreads();
    }
    if (chunks == 1) {
        for (int e = 0; e * ATT_THREADS + (int)threadIdx.x < head_dim; e++)
            out[((size_t)i * n_head + qh) * head_dim + e * ATT_THREADS + threadIdx.x] = acc[e] / l;
        return;
    }
    // parts: per (query head, chunk) the maximum, the total, then head_dim sums (n == 1)
    float *pt = parts + ((size_t)qh * chunks + c) * (head_dim + 2);
    if (threadIdx.x == 0) {
        pt[0] = k0 < k1 ? m : -INFINITY;
        pt[1] = k0 < k1 ? l : 0.0f;
    }
    for (int e = 0; e * ATT_THREADS + (int)threadIdx.x < head_dim; e++) pt[2 + e * ATT_THREADS + threadIdx.x] = acc[e];
}

// Query head qh's output from its chunks' parts: weights e^(m_c - M) / sum_c l_c e^(m_c - M).
__global__ void attention_combine_kernel(const float *parts, int chunks, int head_dim, float *out) {
    const int qh = blockIdx.x;
    const float *p = parts + (size_t)qh * chunks * (head_dim + 2);
    float mx = -INFINITY;
    for (int c = 0; c < chunks; c++) mx = fmaxf(mx, p[(size_t)c * (head_dim + 2)]);
    float total = 0.0f;
    for (int c = 0; c < chunks; c++) {
        const float *pc = p + (size_t)c * (head_dim + 2);
        if (pc[1] > 0.0f) total += pc[1] * expf(pc[0] - mx);
    }
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
        float s = 0.0f;
        for (int c = 0; c < chunks; c++) {
            const float *pc = p + (size_t)c * (head_dim + 2);
            if (pc[1] > 0.0f) s += pc[2 + d] * expf(pc[0] - mx);
        }
        out[(size_t)qh * head_dim + d] = s / total;
    }
}

unsigned blocks_for(int64_t count, int per) { return (unsigned)((count + per - 1) / per); }

} // namespace

extern "C" {

int scuda_type_supported(int type) { return dispatch<Supported>(type) == 1; }

int scuda_matvec(int type, const void *w, int64_t rows, int64_t cols, const float *x, int n, const float *bias,
                 float *y, void *stream) {
    if (n < 1 || n > SCUDA_MATVEC_MAX_N) return (int)cudaErrorInvalidValue;
    return dispatch<MatvecRun>(type, w, rows, cols, x, n, bias, y, static_cast<cudaStream_t>(stream));
}

int scuda_dequant_rows(int type, const void *w, int64_t r0, int64_t nr, int64_t cols, void *out, int wide,
                       void *stream) {
    return dispatch<DequantRun>(type, w, r0, nr, cols, out, wide, static_cast<cudaStream_t>(stream));
}

int scuda_f32_to_f16(const float *x, int64_t count, void *out, void *stream) {
    f32_to_f16_kernel<<<blocks_for(count, 256), 256, 0, static_cast<cudaStream_t>(stream)>>>(x, count,
                                                                                             static_cast<__half *>(out));
    return launched();
}

int scuda_add_bias(float *y, const float *bias, int64_t n, int64_t rows, void *stream) {
    add_bias_kernel<<<blocks_for(n * rows, 256), 256, 0, static_cast<cudaStream_t>(stream)>>>(y, bias, n, rows);
    return launched();
}

int scuda_add_rms_norm(float *x, const float *add, float *out, const float *w, int n, int64_t dim, float eps,
                       void *stream) {
    add_rms_norm_kernel<<<(unsigned)n, 256, 0, static_cast<cudaStream_t>(stream)>>>(x, add, out, w, dim, eps);
    return launched();
}

int scuda_head_rms_norm(float *x, int64_t n_rows, int head_dim, const float *w, float eps, void *stream) {
    add_rms_norm_kernel<<<(unsigned)n_rows, 128, 0, static_cast<cudaStream_t>(stream)>>>(x, nullptr, x, w, head_dim,
                                                                                         eps);
    return launched();
}

int scuda_rope_table(float *table, int n, int pos, int rope_dim, float freq_base, float freq_scale,
                     const float *factors, void *stream) {
    rope_table_kernel<<<blocks_for((int64_t)n * (rope_dim / 2), 128), 128, 0, static_cast<cudaStream_t>(stream)>>>(
        table, n, pos, rope_dim, freq_base, freq_scale, factors);
    return launched();
}

int scuda_rope_apply(float *x, int n, int n_heads, int head_dim, int rope_dim, int neox, const float *table,
                     void *stream) {
    const int64_t count = (int64_t)n * n_heads * (rope_dim / 2);
    rope_apply_kernel<<<blocks_for(count, 256), 256, 0, static_cast<cudaStream_t>(stream)>>>(
        x, n, n_heads, head_dim, rope_dim, neox, table);
    return launched();
}

int scuda_kv_store(int kv_type, void *k_cache, void *v_cache, const float *k, const float *v, int n, int pos,
                   int n_head_kv, int head_dim, int n_ctx, int ring, void *stream) {
    if (kv_type != T_F32 && kv_type != T_F16 && !(kv_type == T_Q8_0 && head_dim % 32 == 0))
        return (int)cudaErrorInvalidValue;
    kv_store_kernel<<<(unsigned)(n * n_head_kv), 128, 0, static_cast<cudaStream_t>(stream)>>>(
        kv_type, static_cast<uint8_t *>(k_cache), static_cast<uint8_t *>(v_cache), k, v, pos, n_head_kv, head_dim,
        n_ctx, ring);
    return launched();
}

size_t scuda_attention_work_bytes(int n_head, int head_dim, int n_ctx) {
    const size_t chunks = (size_t)(n_ctx + SCUDA_ATT_CHUNK - 1) / SCUDA_ATT_CHUNK;
    return chunks > 1 ? (size_t)n_head * chunks * (size_t)(head_dim + 2) * sizeof(float) : 0;
}

int scuda_attention(int kv_type, const void *k_cache, const void *v_cache, const float *q, int n, int pos,
                    int n_head, int n_head_kv, int head_dim, int n_ctx, float scale, float softcap, int window,
                    int ring, float *out, void *work, void *stream) {
    if (head_dim > ATT_MAX_DIM) return (int)cudaErrorInvalidValue;
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    if (!(scale > 0.0f)) scale = 1.0f / sqrtf((float)head_dim);
    /* the keys a single token sees: its window's, or all before it */
    const int n_keys = pos + n, seen = n == 1 && window > 0 && window < n_keys ? window : n_keys;
    const int chunks = n == 1 && seen > SCUDA_ATT_CHUNK ? (seen + SCUDA_ATT_CHUNK - 1) / SCUDA_ATT_CHUNK : 1;
    const int chunk = chunks == 1 ? n_keys : SCUDA_ATT_CHUNK;
    dim3 grid((unsigned)(n * n_head), (unsigned)chunks);
    attention_kernel<<<grid, ATT_THREADS, 0, s>>>(kv_type, static_cast<const uint8_t *>(k_cache),
                                                  static_cast<const uint8_t *>(v_cache), q, pos, n_head, n_head_kv,
                                                  head_dim, n_ctx, chunk, out, static_cast<float *>(work), scale,
                                                  softcap, window, ring);
    int e = launched();
    if (e || chunks == 1) return e;
    attention_combine_kernel<<<(unsigned)n_head, 128, 0, s>>>(static_cast<const float *>(work), chunks, head_dim,
                                                              out);
    return launched();
}

int scuda_silu_mul(float *g, const float *u, int64_t count, void *stream) {
    silu_mul_kernel<<<blocks_for(count, 256), 256, 0, static_cast<cudaStream_t>(stream)>>>(g, u, count);
    return launched();
}

int scuda_embed_rows(int type, const void *table, int64_t dim, const int32_t *tokens, int n, float *out,
                     void *stream) {
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    for (int i0 = 0; i0 < n; i0 += EMBED_MAX) {
        const int m = n - i0 < EMBED_MAX ? n - i0 : EMBED_MAX;
        // the symbol is read by the kernel queued right after, on the same stream
        cudaError_t e = cudaMemcpyToSymbolAsync(embed_tokens, tokens + i0, (size_t)m * sizeof(int32_t), 0,
                                                cudaMemcpyHostToDevice, s);
        if (e != cudaSuccess) return (int)e;
        int r = dispatch<EmbedRun>(type, table, dim, m, out + (size_t)i0 * dim, s);
        if (r) return r;
        // the host's token ids may change once we return; the copy above must be done
        e = cudaStreamSynchronize(s);
        if (e != cudaSuccess) return (int)e;
    }
    return 0;
}

} // extern "C"

// ---- gemma's elementwise ops, mixtures of experts (issue 17's ops) -------------------------

namespace {

__global__ void gelu_mul_kernel(float *g, const float *u, int64_t count) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < count) {
        const float x = g[i];
        g[i] = 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x))) * u[i];
    }
}

__global__ void scale_kernel(float *x, int64_t count, float s) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < count) x[i] *= s;
}

__global__ void softcap_kernel(float *x, int64_t count, float cap) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < count) x[i] = cap * tanhf(x[i] / cap);
}

// One thread per token: softmax over its experts, the n_used largest (lower id first among
// equals) in decreasing order, renormalised when asked, as backend/cpu/moe.c defines it.
__global__ void moe_route_kernel(const float *logits, int n, int n_expert, int n_used, int norm, int32_t *ids,
                                 float *weights) {
    const int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n) return;
    const float *l = logits + (size_t)t * n_expert;
    int32_t *id = ids + (size_t)t * n_used;
    float *w = weights + (size_t)t * n_used;
    float mx = l[0];
    for (int e = 1; e < n_expert; e++) mx = fmaxf(mx, l[e]);
    double sum = 0;
    for (int e = 0; e < n_expert; e++) sum += exp((double)l[e] - mx);
    double tot = 0;
    for (int s = 0; s < n_used; s++) {
        int best = -1;
        for (int e = 0; e < n_expert; e++) {
            bool taken = false;
            for (int q = 0; q < s; q++) taken = taken || id[q] == e;
            if (!taken && (best < 0 || l[e] > l[best])) best = e;
        }
        id[s] = best;
        w[s] = (float)(exp((double)l[best] - mx) / sum);
        tot += w[s];
    }
    if (norm)
        for (int s = 0; s < n_used; s++) w[s] = (float)(w[s] / tot);
}

// Routed rows: block (row group, routed row (t, s)); one warp per weight row of the expert
// ids[(t, s)], decoded as it is read.
template <int T>
__global__ void matmul_id_kernel(const uint8_t *w, int64_t rows, int64_t cols, size_t rb, const float *x,
                                 int x_per_slot, const int32_t *ids, int n_used, float *y) {
    const int64_t r = (int64_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    const int ts = blockIdx.y, lane = threadIdx.x % 32;
    if (r >= rows) return;
    const int e = ids[ts];
    const uint8_t *row = w + ((size_t)e * rows + r) * rb;
    const float *xr = x + (size_t)(x_per_slot ? ts : ts / n_used) * cols;
    float acc = 0.0f;
    for (int64_t c = lane; c < cols; c += 32) acc += elem<T>(row, c) * xr[c];
    acc = warp_sum(acc);
    if (lane == 0) y[(size_t)ts * rows + r] = acc;
}

template <int T> struct MatmulIdRun {
    static int run(const void *w, int64_t rows, int64_t cols, const float *x, int x_per_slot, const int32_t *ids,
                   int n, int n_used, float *y, cudaStream_t s) {
        dim3 grid((unsigned)((rows + 7) / 8), (unsigned)(n * n_used));
        matmul_id_kernel<T><<<grid, 256, 0, s>>>(static_cast<const uint8_t *>(w), rows, cols, row_bytes(T, cols), x,
                                                 x_per_slot, ids, n_used, y);
        return launched();
    }
};

__global__ void moe_combine_kernel(const float *y, const float *weights, int n, int n_used, int64_t dim, float *out) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (int64_t)n * dim) return;
    const int64_t t = i / dim, d = i % dim;
    float acc = 0.0f;
    for (int s = 0; s < n_used; s++) acc += weights[t * n_used + s] * y[((size_t)t * n_used + s) * dim + d];
    out[i] = acc;
}

} // namespace

extern "C" {

int scuda_gelu_mul(float *g, const float *u, int64_t count, void *stream) {
    gelu_mul_kernel<<<blocks_for(count, 256), 256, 0, static_cast<cudaStream_t>(stream)>>>(g, u, count);
    return launched();
}

int scuda_scale(float *x, int64_t count, float s, void *stream) {
    scale_kernel<<<blocks_for(count, 256), 256, 0, static_cast<cudaStream_t>(stream)>>>(x, count, s);
    return launched();
}

int scuda_softcap(float *x, int64_t count, float cap, void *stream) {
    softcap_kernel<<<blocks_for(count, 256), 256, 0, static_cast<cudaStream_t>(stream)>>>(x, count, cap);
    return launched();
}

int scuda_moe_route(const float *logits, int n, int n_expert, int n_used, int norm, int32_t *ids, float *weights,
                    void *stream) {
    moe_route_kernel<<<blocks_for(n, 64), 64, 0, static_cast<cudaStream_t>(stream)>>>(logits, n, n_expert, n_used,
                                                                                       norm, ids, weights);
    return launched();
}

int scuda_matmul_id(int type, const void *w, int64_t rows, int64_t cols, const float *x, int x_per_slot,
                    const int32_t *ids, int n, int n_used, float *y, void *stream) {
    return dispatch<MatmulIdRun>(type, w, rows, cols, x, x_per_slot, ids, n, n_used, y,
                                 static_cast<cudaStream_t>(stream));
}

int scuda_moe_combine(const float *y, const float *weights, int n, int n_used, int64_t dim, float *out, void *stream) {
    moe_combine_kernel<<<blocks_for((int64_t)n * dim, 256), 256, 0, static_cast<cudaStream_t>(stream)>>>(
        y, weights, n, n_used, dim, out);
    return launched();
}

} // extern "C"
