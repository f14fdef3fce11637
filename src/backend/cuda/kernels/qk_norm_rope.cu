#include "backend/cuda/kernels/device_math.cuh"
#include "backend/cuda/kernels/qk_norm_rope.cuh"

namespace radix::cuda {
namespace {

// One block per row, its warps taking the row's heads in turn. Lane l holds kPer contiguous
// elements of each half of a head, at l*kPer and D/2 + l*kPer, so the rotate-half partner of every
// element is in the same thread and the norm needs one warp reduction. A warp first loads all of
// its heads (up to kHeadsInFlight), then the block computes the row's sines and cosines once
// (detail::row_rotation) while those loads are in flight: the kernel moves a few bytes per
// instruction, so what bounds it is how many loads each SM keeps waiting on, not arithmetic.
constexpr int kHeadsInFlight = 4;

// kPer contiguous bf16 as floats: one 4- or 8-byte access where kVec says the row allows it.
template <int kPer, bool kVec>
__device__ __forceinline__ void load_run(const bf16* p, float (&v)[kPer]) {
  if constexpr (kVec && kPer == 2) {
    const float2 f = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(p));
    v[0] = f.x, v[1] = f.y;
  } else if constexpr (kVec && kPer == 4) {
    const uint2 raw = *reinterpret_cast<const uint2*>(p);
    const float2 a = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&raw.x));
    const float2 b = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&raw.y));
    v[0] = a.x, v[1] = a.y, v[2] = b.x, v[3] = b.y;
  } else {
#pragma unroll
    for (int i = 0; i < kPer; ++i) v[i] = __bfloat162float(p[i]);
  }
}

template <int kPer, bool kVec>
__device__ __forceinline__ void store_run(bf16* p, const float (&v)[kPer]) {
  if constexpr (kVec && kPer == 2) {
    *reinterpret_cast<__nv_bfloat162*>(p) = __floats2bfloat162_rn(v[0], v[1]);
  } else if constexpr (kVec && kPer == 4) {
    uint2 raw;
    *reinterpret_cast<__nv_bfloat162*>(&raw.x) = __floats2bfloat162_rn(v[0], v[1]);
    *reinterpret_cast<__nv_bfloat162*>(&raw.y) = __floats2bfloat162_rn(v[2], v[3]);
    *reinterpret_cast<uint2*>(p) = raw;
  } else {
#pragma unroll
    for (int i = 0; i < kPer; ++i) p[i] = __float2bfloat16(v[i]);
  }
}

template <int kHeadDim, bool kVec>
__global__ void qk_norm_rope_kernel(bf16* __restrict__ qkv, int64_t row_stride,
                                    const int32_t* __restrict__ positions,
                                    const bf16* __restrict__ q_weight,
                                    const bf16* __restrict__ k_weight, int num_q_heads,
                                    int num_heads, float theta, float eps) {
  constexpr int kHalf = kHeadDim / 2;
  constexpr int kPer = kHalf / 32;
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int num_warps = blockDim.x >> 5;
  const int64_t row = blockIdx.x;
  bf16* const row_ptr = qkv + row * row_stride;
  __shared__ float s_cos[kHalf], s_sin[kHalf];
  float cos_j[kPer], sin_j[kPer];

  for (int first = warp; first < num_heads; first += num_warps * kHeadsInFlight) {
    float lo[kHeadsInFlight][kPer], hi[kHeadsInFlight][kPer];
#pragma unroll
    for (int b = 0; b < kHeadsInFlight; ++b) {
      const int head = first + b * num_warps;
      if (head >= num_heads) break;
      const bf16* x = row_ptr + static_cast<int64_t>(head) * kHeadDim + lane * kPer;
      load_run<kPer, kVec>(x, lo[b]);
      load_run<kPer, kVec>(x + kHalf, hi[b]);
    }
    if (first == warp) {
      // The float32 angle computed the way the Hugging Face reference does:
      // pos * (1/theta^(2j/D)). Every warp takes this branch on its first pass (warp <
      // num_heads: the launch gives no more warps than heads), so the barrier inside is uniform.
      const float pos = static_cast<float>(positions[row]);
      detail::row_rotation(
          pos, kHalf,
          [theta](int j) { return 1.0f / powf(theta, static_cast<float>(2 * j) / kHeadDim); },
          s_cos, s_sin);
#pragma unroll
      for (int i = 0; i < kPer; ++i) {
        cos_j[i] = s_cos[lane * kPer + i];
        sin_j[i] = s_sin[lane * kPer + i];
      }
    }
#pragma unroll
    for (int b = 0; b < kHeadsInFlight; ++b) {
      const int head = first + b * num_warps;
      if (head >= num_heads) break;
      const bf16* w = head < num_q_heads ? q_weight : k_weight;
      float w_lo[kPer], w_hi[kPer];
      load_run<kPer, kVec>(w + lane * kPer, w_lo);
      load_run<kPer, kVec>(w + kHalf + lane * kPer, w_hi);
      float sumsq = 0.0f;
#pragma unroll
      for (int i = 0; i < kPer; ++i) sumsq += lo[b][i] * lo[b][i] + hi[b][i] * hi[b][i];
      const float inv_rms = rsqrtf(detail::warp_sum(sumsq) / kHeadDim + eps);
      float out_lo[kPer], out_hi[kPer];
#pragma unroll
      for (int i = 0; i < kPer; ++i) {
        const float a = lo[b][i] * inv_rms * w_lo[i];
        const float c = hi[b][i] * inv_rms * w_hi[i];
        out_lo[i] = a * cos_j[i] - c * sin_j[i];
        out_hi[i] = c * cos_j[i] + a * sin_j[i];
      }
      bf16* x = row_ptr + static_cast<int64_t>(head) * kHeadDim + lane * kPer;
      store_run<kPer, kVec>(x, out_lo);
      store_run<kPer, kVec>(x + kHalf, out_hi);
    }
  }
}

template <int kHeadDim>
cudaError_t launch(bf16* qkv, int64_t row_stride, const int32_t* positions, const bf16* qw,
                   const bf16* kw, int64_t rows, int num_q_heads, int num_kv_heads,
                   float rope_theta, float eps, cudaStream_t stream) {
  const int num_heads = num_q_heads + num_kv_heads;
  if (rows > INT32_MAX) return cudaErrorInvalidValue;
  // No more warps than heads: the kernel's barrier relies on every warp having a first head.
  const int warps = num_heads < 8 ? num_heads : 8;
  constexpr int kPer = kHeadDim / 64;
  const int run_bytes = kPer * static_cast<int>(sizeof(bf16));
  const auto aligned = [run_bytes](const void* p) {
    return reinterpret_cast<uintptr_t>(p) % run_bytes == 0;
  };
  // Vector accesses when every run of kPer elements (rows, heads, the weights) is aligned to them.
  const bool vec = kPer > 1 && row_stride % kPer == 0 && aligned(qkv) && aligned(qw) && aligned(kw);
  const dim3 grid(static_cast<unsigned>(rows)), block(warps * 32);
  if (vec) {
    qk_norm_rope_kernel<kHeadDim, true><<<grid, block, 0, stream>>>(
        qkv, row_stride, positions, qw, kw, num_q_heads, num_heads, rope_theta, eps);
  } else {
    qk_norm_rope_kernel<kHeadDim, false><<<grid, block, 0, stream>>>(
        qkv, row_stride, positions, qw, kw, num_q_heads, num_heads, rope_theta, eps);
  }
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
