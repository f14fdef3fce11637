#include "backend/cuda/kernels/fill.cuh"
#include "backend/cuda/kernels/launch.cuh"
#include "backend/random_fill.h"

namespace radix::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65536;

unsigned blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < kMaxBlocks ? b : kMaxBlocks);
}

template <typename T>
__device__ __forceinline__ T from_float(float v) {
  if constexpr (sizeof(T) == 2) {
    return __float2bfloat16(v);
  } else {
    return v;
  }
}

template <typename T>
__global__ void random_normal_kernel(T* __restrict__ dst, int64_t rows, int64_t cols,
                                     int64_t stride, uint64_t seed, float std,
                                     uint64_t first_index) {
  begin_kernel();
  const int64_t n = rows * cols;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / cols, c = i - r * cols;
    dst[r * stride + c] = from_float<T>(std * random_normal(seed, first_index + i));
  }
}

template <typename T>
__global__ void constant_kernel(T* __restrict__ dst, int64_t rows, int64_t cols, int64_t stride,
                                T value) {
  begin_kernel();
  const int64_t n = rows * cols;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / cols, c = i - r * cols;
    dst[r * stride + c] = value;
  }
}

}  // namespace

template <typename T>
cudaError_t fill_random_normal(T* dst, int64_t rows, int64_t cols, int64_t stride, uint64_t seed,
                               float std, uint64_t first_index, cudaStream_t stream) {
  if (rows < 0 || cols < 0 || stride < cols) return cudaErrorInvalidValue;
  if (rows * cols == 0) return cudaSuccess;
  launch_kernel(random_normal_kernel<T>, blocks_for(rows * cols), kThreads, 0, stream, dst, rows,
                cols, stride, seed, std, first_index);
  return cudaGetLastError();
}

template <typename T>
cudaError_t fill_constant(T* dst, int64_t rows, int64_t cols, int64_t stride, T value,
                          cudaStream_t stream) {
  if (rows < 0 || cols < 0 || stride < cols) return cudaErrorInvalidValue;
  if (rows * cols == 0) return cudaSuccess;
  launch_kernel(constant_kernel<T>, blocks_for(rows * cols), kThreads, 0, stream, dst, rows, cols,
                stride, value);
  return cudaGetLastError();
}

template cudaError_t fill_random_normal<float>(float*, int64_t, int64_t, int64_t, uint64_t, float,
                                               uint64_t, cudaStream_t);
template cudaError_t fill_random_normal<bf16>(bf16*, int64_t, int64_t, int64_t, uint64_t, float,
                                              uint64_t, cudaStream_t);
template cudaError_t fill_constant<float>(float*, int64_t, int64_t, int64_t, float, cudaStream_t);
template cudaError_t fill_constant<bf16>(bf16*, int64_t, int64_t, int64_t, bf16, cudaStream_t);
template cudaError_t fill_constant<int32_t>(int32_t*, int64_t, int64_t, int64_t, int32_t,
                                            cudaStream_t);

}  // namespace radix::cuda
