#include "backend/cuda/kernels/device_math.cuh"
#include "backend/cuda/kernels/rmsnorm.cuh"

namespace radix::cuda {
namespace {

// One block per row. kVec = 8 moves 16 bytes of bf16 (32 of fp32) per access; kVec = 1 serves
// odd hidden sizes and misaligned buffers. The row is read twice (sum of squares, then scale);
// the second read hits L1/L2, rows being at most a few tens of KB.
template <typename TX, typename TO, int kVec>
__global__ void add_rmsnorm_kernel(TX* __restrict__ x_base, int64_t x_stride,
                                   const bf16* __restrict__ delta, int64_t delta_stride,
                                   const bf16* __restrict__ weight, TO* __restrict__ out,
                                   int64_t out_stride, int hidden, float eps) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  TX* x = x_base + row * x_stride;
  const bf16* d = delta ? delta + row * delta_stride : nullptr;
  const int chunks = hidden / kVec;

  float sumsq = 0.0f;
  for (int c = threadIdx.x; c < chunks; c += blockDim.x) {
    float v[kVec];
    detail::load<kVec>(x + c * kVec, v);
    if (d) {
      float dv[kVec];
      detail::load<kVec>(d + c * kVec, dv);
#pragma unroll
      for (int i = 0; i < kVec; ++i) v[i] += dv[i];
      detail::store<kVec>(x + c * kVec, v);
      if constexpr (sizeof(TX) == 2) detail::load<kVec>(x + c * kVec, v);  // the stored value
    }
#pragma unroll
    for (int i = 0; i < kVec; ++i) sumsq += v[i] * v[i];
  }
  const float inv_rms = rsqrtf(detail::block_sum(sumsq, scratch) / hidden + eps);

  TO* y = out + row * out_stride;
  for (int c = threadIdx.x; c < chunks; c += blockDim.x) {
    float v[kVec], w[kVec];
    detail::load<kVec>(x + c * kVec, v);
    detail::load<kVec>(weight + c * kVec, w);
#pragma unroll
    for (int i = 0; i < kVec; ++i) v[i] = v[i] * inv_rms * w[i];
    detail::store<kVec>(y + c * kVec, v);
  }
}

// The same with the row held in registers between the two phases (kChunks chunks of 8 per
// thread): one read of x instead of two. Used whenever hidden / 8 <= 4 * 256.
template <typename TX, typename TO, int kChunks>
__global__ void add_rmsnorm_cached_kernel(TX* __restrict__ x_base, int64_t x_stride,
                                          const bf16* __restrict__ delta, int64_t delta_stride,
                                          const bf16* __restrict__ weight, TO* __restrict__ out,
                                          int64_t out_stride, int hidden, float eps) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  TX* x = x_base + row * x_stride;
  const bf16* d = delta ? delta + row * delta_stride : nullptr;
  const int chunks = hidden / 8;

  float v[kChunks][8];
  float sumsq = 0.0f;
#pragma unroll
  for (int i = 0; i < kChunks; ++i) {
    const int c = threadIdx.x + i * blockDim.x;
    if (c < chunks) {
      detail::load<8>(x + c * 8, v[i]);
      if (d) {
        float dv[8];
        detail::load<8>(d + c * 8, dv);
#pragma unroll
        for (int j = 0; j < 8; ++j) v[i][j] += dv[j];
        detail::store<8>(x + c * 8, v[i]);
        if constexpr (sizeof(TX) == 2) detail::load<8>(x + c * 8, v[i]);  // the stored value
      }
#pragma unroll
      for (int j = 0; j < 8; ++j) sumsq += v[i][j] * v[i][j];
    }
  }
  const float inv_rms = rsqrtf(detail::block_sum(sumsq, scratch) / hidden + eps);

  TO* y = out + row * out_stride;
#pragma unroll
  for (int i = 0; i < kChunks; ++i) {
    const int c = threadIdx.x + i * blockDim.x;
    if (c < chunks) {
      float w[8];
      detail::load<8>(weight + c * 8, w);
#pragma unroll
      for (int j = 0; j < 8; ++j) v[i][j] = v[i][j] * inv_rms * w[j];
      detail::store<8>(y + c * 8, v[i]);
    }
  }
}

int threads_for(int chunks) {
  const int t = (chunks + 31) / 32 * 32;
  return t < 32 ? 32 : (t > 256 ? 256 : t);
}

}  // namespace

template <typename TX, typename TO>
cudaError_t add_rmsnorm(TX* x, int64_t x_stride, const bf16* delta, int64_t delta_stride,
                        const bf16* weight, TO* out, int64_t out_stride, int64_t rows, int hidden,
                        float eps, cudaStream_t stream) {
  if (rows < 0 || hidden <= 0 || rows > INT32_MAX || x_stride < hidden || out_stride < hidden ||
      (delta && delta_stride < hidden)) {
    return cudaErrorInvalidValue;
  }
  if (rows == 0) return cudaSuccess;
  const bool vec = hidden % 8 == 0 && x_stride % 8 == 0 && out_stride % 8 == 0 &&
                   detail::aligned16(x) && detail::aligned16(weight) && detail::aligned16(out) &&
                   (!delta || (delta_stride % 8 == 0 && detail::aligned16(delta)));
  const unsigned grid = static_cast<unsigned>(rows);
  const int threads = threads_for(hidden / 8);
  const int per_thread = (hidden / 8 + threads - 1) / threads;
  if (vec && per_thread <= 4) {
    // At most 32 floats of the row per thread in registers: one read of x.
    switch (per_thread) {
      case 1:
        add_rmsnorm_cached_kernel<TX, TO, 1><<<grid, threads, 0, stream>>>(
            x, x_stride, delta, delta_stride, weight, out, out_stride, hidden, eps);
        break;
      case 2:
        add_rmsnorm_cached_kernel<TX, TO, 2><<<grid, threads, 0, stream>>>(
            x, x_stride, delta, delta_stride, weight, out, out_stride, hidden, eps);
        break;
      case 3:
        add_rmsnorm_cached_kernel<TX, TO, 3><<<grid, threads, 0, stream>>>(
            x, x_stride, delta, delta_stride, weight, out, out_stride, hidden, eps);
        break;
      default:
        add_rmsnorm_cached_kernel<TX, TO, 4><<<grid, threads, 0, stream>>>(
            x, x_stride, delta, delta_stride, weight, out, out_stride, hidden, eps);
        break;
    }
  } else if (vec) {
    add_rmsnorm_kernel<TX, TO, 8><<<grid, threads, 0, stream>>>(
        x, x_stride, delta, delta_stride, weight, out, out_stride, hidden, eps);
  } else {
    add_rmsnorm_kernel<TX, TO, 1><<<grid, threads_for(hidden), 0, stream>>>(
        x, x_stride, delta, delta_stride, weight, out, out_stride, hidden, eps);
  }
  return cudaGetLastError();
}

template cudaError_t add_rmsnorm<float, bf16>(float*, int64_t, const bf16*, int64_t, const bf16*,
                                              bf16*, int64_t, int64_t, int, float, cudaStream_t);
template cudaError_t add_rmsnorm<float, float>(float*, int64_t, const bf16*, int64_t, const bf16*,
                                               float*, int64_t, int64_t, int, float, cudaStream_t);
template cudaError_t add_rmsnorm<bf16, bf16>(bf16*, int64_t, const bf16*, int64_t, const bf16*,
                                             bf16*, int64_t, int64_t, int, float, cudaStream_t);
template cudaError_t add_rmsnorm<bf16, float>(bf16*, int64_t, const bf16*, int64_t, const bf16*,
                                              float*, int64_t, int64_t, int, float, cudaStream_t);

}  // namespace radix::cuda
