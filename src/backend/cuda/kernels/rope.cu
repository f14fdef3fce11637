#include <climits>

#include "backend/cuda/kernels/device_math.cuh"
#include "backend/cuda/kernels/launch.cuh"
#include "backend/cuda/kernels/rope.cuh"

namespace radix::cuda {
namespace {

// One block per row, its warps taking the row's heads in turn. Lane l holds elements
// l, l + 32, ... (kPer of them, those below D/2) of each half of a head, so every element's
// rotate-half partner is in the same thread, any even head_dim up to 256 works and the lanes'
// accesses are contiguous. The angles depend only on the row: the block computes their sines and
// cosines once (detail::row_rotation) and every warp reuses them for each of its heads.
template <int kPer>
__global__ void rope_kernel(bf16* __restrict__ qkv, int64_t row_stride,
                            const int32_t* __restrict__ positions,
                            const float* __restrict__ inv_freq, int num_heads, int head_dim) {
  begin_kernel();
  const int half = head_dim / 2;
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int num_warps = blockDim.x >> 5;
  const int64_t row = blockIdx.x;

  const float pos = static_cast<float>(positions[row]);
  __shared__ float s_cos[32 * kPer], s_sin[32 * kPer];
  detail::row_rotation(
      pos, half, [inv_freq](int j) { return inv_freq[j]; }, s_cos, s_sin);
  float cos_j[kPer], sin_j[kPer];
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int j = lane + 32 * i;
    if (j < half) cos_j[i] = s_cos[j], sin_j[i] = s_sin[j];
  }

  for (int head = warp; head < num_heads; head += num_warps) {
    bf16* x = qkv + row * row_stride + static_cast<int64_t>(head) * head_dim;
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
      const int j = lane + 32 * i;
      if (j >= half) break;
      const float a = __bfloat162float(x[j]);
      const float b = __bfloat162float(x[half + j]);
      x[j] = __float2bfloat16(a * cos_j[i] - b * sin_j[i]);
      x[half + j] = __float2bfloat16(b * cos_j[i] + a * sin_j[i]);
    }
  }
}

template <int kPer>
cudaError_t launch(bf16* qkv, int64_t row_stride, const int32_t* positions, const float* inv_freq,
                   int64_t rows, int num_heads, int head_dim, cudaStream_t stream) {
  const int warps = num_heads < 8 ? num_heads : 8;
  launch_kernel(rope_kernel<kPer>, static_cast<unsigned>(rows), warps * 32, 0, stream, qkv,
                row_stride, positions, inv_freq, num_heads, head_dim);
  return cudaGetLastError();
}

}  // namespace

cudaError_t rope(bf16* qkv, int64_t row_stride, const int32_t* positions, const float* inv_freq,
                 int64_t rows, int num_q_heads, int num_kv_heads, int head_dim,
                 cudaStream_t stream) {
  if (rows < 0 || rows > INT32_MAX || num_q_heads < 0 || num_kv_heads < 0) {
    return cudaErrorInvalidValue;
  }
  if (row_stride < static_cast<int64_t>(num_q_heads + num_kv_heads) * head_dim) {
    return cudaErrorInvalidValue;
  }
  const int num_heads = num_q_heads + num_kv_heads;
  if (rows == 0 || num_heads == 0) return cudaSuccess;
  if (qkv == nullptr || positions == nullptr || inv_freq == nullptr) return cudaErrorInvalidValue;
  if (head_dim <= 0 || head_dim % 2 != 0 || head_dim > 256) return cudaErrorInvalidValue;
  const int half = head_dim / 2;
  if (half <= 32)
    return launch<1>(qkv, row_stride, positions, inv_freq, rows, num_heads, head_dim, stream);
  if (half <= 64)
    return launch<2>(qkv, row_stride, positions, inv_freq, rows, num_heads, head_dim, stream);
  return launch<4>(qkv, row_stride, positions, inv_freq, rows, num_heads, head_dim, stream);
}

}  // namespace radix::cuda
