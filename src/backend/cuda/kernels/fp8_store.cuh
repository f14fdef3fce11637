// Device-only helpers for kernels that write their output as e4m3 rows with per-row scales (the
// fused norm and gated activation of the fp8 path): the same rounding as quantize_e4m3_rows, so a
// row quantised in the producing kernel equals the row quantised by the separate pass.
#pragma once

#include <cuda_fp8.h>

#include <cstdint>

#include "backend/cuda/kernels/fp8.cuh"

namespace radix::cuda::detail {

// Max over the block; every thread gets the result. `scratch` holds >= 32 floats; blocks are a
// multiple of 32 threads. fmaxf ignores NaN, as the separate quantisation pass does.
__device__ __forceinline__ float block_max(float v, float* scratch) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int num_warps = blockDim.x >> 5;
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  }
  __syncthreads();  // scratch may still be read by a previous reduction
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < num_warps ? scratch[lane] : 0.0f;
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  }
  return v;
}

// 448 / amax (0 for a zero row), correctly rounded whatever the compiler flags.
__device__ __forceinline__ float e4m3_inverse_scale(float amax) {
  return amax > 0.0f ? __fdiv_rn(kE4M3Max, amax) : 0.0f;
}
__device__ __forceinline__ float e4m3_scale(float amax) { return __fdiv_rn(amax, kE4M3Max); }

__device__ __forceinline__ uint8_t to_e4m3(float v, float inv) {
  return __nv_cvt_float_to_fp8(__fmul_rn(v, inv), __NV_SATFINITE, __NV_E4M3);
}

// Four values times inv as e4m3 bytes, v[0] in the lowest: two paired conversions, which round
// as to_e4m3 does (on sm_89+ to_e4m3 is the same instruction with a zero partner).
__device__ __forceinline__ uint32_t to_e4m3x4(const float* v, float inv) {
  const uint32_t lo = __nv_cvt_float2_to_fp8x2(
      make_float2(__fmul_rn(v[0], inv), __fmul_rn(v[1], inv)), __NV_SATFINITE, __NV_E4M3);
  const uint32_t hi = __nv_cvt_float2_to_fp8x2(
      make_float2(__fmul_rn(v[2], inv), __fmul_rn(v[3], inv)), __NV_SATFINITE, __NV_E4M3);
  return lo | (hi << 16);
}

// kVec values times inv as e4m3 at p: one 8-byte store for kVec == 8 (p 8-byte aligned), one
// 4-byte store for kVec == 4 (p 4-byte aligned), bytewise otherwise.
template <int kVec>
__device__ __forceinline__ void store_e4m3(uint8_t* p, const float (&v)[kVec], float inv) {
  if constexpr (kVec == 8) {
    *reinterpret_cast<uint2*>(p) = make_uint2(to_e4m3x4(v, inv), to_e4m3x4(v + 4, inv));
  } else if constexpr (kVec == 4) {
    *reinterpret_cast<uint32_t*>(p) = to_e4m3x4(v, inv);
  } else {
#pragma unroll
    for (int i = 0; i < kVec; ++i) p[i] = to_e4m3(v[i], inv);
  }
}

// Max over each aligned group of kWidth lanes of a warp (kWidth a power of two <= 32); every lane
// of the group gets it. fmaxf ignores NaN, as block_max does.
template <int kWidth = 32>
__device__ __forceinline__ float group_max(float v) {
#pragma unroll
  for (int offset = kWidth / 2; offset > 0; offset >>= 1) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  }
  return v;
}

template <int kVec>
__device__ __forceinline__ float abs_max(const float (&v)[kVec], float m) {
#pragma unroll
  for (int i = 0; i < kVec; ++i) m = fmaxf(m, fabsf(v[i]));
  return m;
}

inline bool aligned8(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 7u) == 0; }

}  // namespace radix::cuda::detail
