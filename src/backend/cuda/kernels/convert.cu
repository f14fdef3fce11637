#include <algorithm>

#include "backend/cuda/kernels/convert.cuh"
#include "backend/cuda/kernels/launch.cuh"

namespace radix::cuda {
namespace {

__global__ void bf16_to_f32_kernel(const bf16* __restrict__ src, float* __restrict__ dst,
                                   int64_t n) {
  begin_kernel();
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    dst[i] = __bfloat162float(src[i]);
  }
}

}  // namespace

cudaError_t bf16_to_f32(const bf16* src, float* dst, int64_t n, cudaStream_t stream) {
  if (n < 0) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  constexpr int kThreads = 256;
  const int64_t blocks = std::min<int64_t>((n + kThreads - 1) / kThreads, 4096);
  launch_kernel(bf16_to_f32_kernel, static_cast<unsigned>(blocks), kThreads, 0, stream, src, dst,
                n);
  return cudaGetLastError();
}

}  // namespace radix::cuda
