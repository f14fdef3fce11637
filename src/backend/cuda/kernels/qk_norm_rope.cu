#include "backend/cuda/kernels/device_math.cuh"
#include "backend/cuda/kernels/launch.cuh"
#include "backend/cuda/kernels/qk_norm_rope.cuh"

namespace radix::cuda {
namespace {

// One block per row, its warps taking the row's heads in turn. Lane l holds kPer contiguous
// elements of each half of a head, at l*kPer and D/2 + l*kPer, so the rotate-half partner of every
// element is in the same thread and the norm needs one warp reduction. The rotation angles depend
// only on the row, so the block computes their sines and cosines once (detail::row_rotation) and
// every warp reuses them for each of its heads.
template <int kHeadDim>
__global__ void qk_norm_rope_kernel(bf16* __restrict__ qkv, int64_t row_stride,
                                    const int32_t* __restrict__ positions,
                                    const bf16* __restrict__ q_weight,
                                    const bf16* __restrict__ k_weight, int num_q_heads,
                                    int num_heads, float theta, float eps) {
  begin_kernel();
  constexpr int kHalf = kHeadDim / 2;
  constexpr int kPer = kHalf / 32;
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int num_warps = blockDim.x >> 5;
  const int64_t row = blockIdx.x;

  const float pos = static_cast<float>(positions[row]);
  // The float32 angle computed the way the Hugging Face reference does: pos * (1/theta^(2j/D)).
  __shared__ float s_cos[kHalf], s_sin[kHalf];
  detail::row_rotation(
      pos, kHalf,
      [theta](int j) { return 1.0f / powf(theta, static_cast<float>(2 * j) / kHeadDim); }, s_cos,
      s_sin);
  float cos_j[kPer], sin_j[kPer], wq_lo[kPer], wq_hi[kPer], wk_lo[kPer], wk_hi[kPer];
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int j = lane * kPer + i;
    cos_j[i] = s_cos[j];
    sin_j[i] = s_sin[j];
    wq_lo[i] = __bfloat162float(q_weight[j]);
    wq_hi[i] = __bfloat162float(q_weight[kHalf + j]);
    wk_lo[i] = __bfloat162float(k_weight[j]);
    wk_hi[i] = __bfloat162float(k_weight[kHalf + j]);
  }

  for (int head = warp; head < num_heads; head += num_warps) {
    bf16* x = qkv + row * row_stride + static_cast<int64_t>(head) * kHeadDim;
    const bool is_q = head < num_q_heads;
    float lo[kPer], hi[kPer];
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
      lo[i] = __bfloat162float(x[lane * kPer + i]);
      hi[i] = __bfloat162float(x[kHalf + lane * kPer + i]);
    }
    float sumsq = 0.0f;
#pragma unroll
    for (int i = 0; i < kPer; ++i) sumsq += lo[i] * lo[i] + hi[i] * hi[i];
    const float inv_rms = rsqrtf(detail::warp_sum(sumsq) / kHeadDim + eps);
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
      const int j = lane * kPer + i;
      const float a = lo[i] * inv_rms * (is_q ? wq_lo[i] : wk_lo[i]);
      const float b = hi[i] * inv_rms * (is_q ? wq_hi[i] : wk_hi[i]);
      x[j] = __float2bfloat16(a * cos_j[i] - b * sin_j[i]);
      x[kHalf + j] = __float2bfloat16(b * cos_j[i] + a * sin_j[i]);
    }
  }
}

template <int kHeadDim>
cudaError_t launch(bf16* qkv, int64_t row_stride, const int32_t* positions, const bf16* qw,
                   const bf16* kw, int64_t rows, int num_q_heads, int num_kv_heads,
                   float rope_theta, float eps, cudaStream_t stream) {
  const int num_heads = num_q_heads + num_kv_heads;
  if (rows > INT32_MAX) return cudaErrorInvalidValue;
  const int warps = num_heads < 8 ? num_heads : 8;
  launch_kernel(qk_norm_rope_kernel<kHeadDim>, static_cast<unsigned>(rows), warps * 32, 0, stream,
                qkv, row_stride, positions, qw, kw, num_q_heads, num_heads, rope_theta, eps);
  return cudaGetLastError();
}

}  // namespace

cudaError_t qk_norm_rope(bf16* qkv, int64_t row_stride, const int32_t* positions,
                         const bf16* q_weight, const bf16* k_weight, int64_t rows, int num_q_heads,
                         int num_kv_heads, int head_dim, float rope_theta, float eps,
                         cudaStream_t stream) {
  if (rows < 0 || num_q_heads < 0 || num_kv_heads < 0 || rope_theta <= 0.0f) {
    return cudaErrorInvalidValue;
  }
  if (row_stride < static_cast<int64_t>(num_q_heads + num_kv_heads) * head_dim) {
    return cudaErrorInvalidValue;
  }
  if (rows == 0 || num_q_heads + num_kv_heads == 0) return cudaSuccess;
  switch (head_dim) {
    case 64:
      return launch<64>(qkv, row_stride, positions, q_weight, k_weight, rows, num_q_heads,
                        num_kv_heads, rope_theta, eps, stream);
    case 128:
      return launch<128>(qkv, row_stride, positions, q_weight, k_weight, rows, num_q_heads,
                         num_kv_heads, rope_theta, eps, stream);
    case 256:
      return launch<256>(qkv, row_stride, positions, q_weight, k_weight, rows, num_q_heads,
                         num_kv_heads, rope_theta, eps, stream);
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace radix::cuda
