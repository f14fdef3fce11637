// Device-only helpers shared by the kernels: reductions and 16-byte vector access.
#pragma once

#include <cstdint>

#include "backend/cuda/kernels/bf16.cuh"

namespace radix::cuda::detail {

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// The sines and cosines of one row's rotation angles pos * inv_freq(j), j < half, into shared
// memory, for the RoPE kernels whose block is one row: computed once a block, not once for each of
// its warps (sincosf of angles in the thousands and powf dominated those kernels' time when every
// warp computed them). Ends with a barrier, so every thread may read them.
template <typename InvFreq>
__device__ __forceinline__ void row_rotation(float pos, int half, InvFreq inv_freq, float* s_cos,
                                             float* s_sin) {
  for (int j = threadIdx.x; j < half; j += blockDim.x) {
    sincosf(pos * inv_freq(j), &s_sin[j], &s_cos[j]);
  }
  __syncthreads();
}

// Sum over the block; every thread gets the result. `scratch` holds >= 32 floats. Blocks are a
// multiple of 32 threads.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int num_warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < num_warps ? scratch[lane] : 0.0f;
  return warp_sum(v);
}

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// Eight bf16 in one 16-byte load or store.
struct alignas(16) Bf16x8 {
  __nv_bfloat162 h[4];
};

__device__ __forceinline__ void unpack(const Bf16x8& v, float (&f)[8]) {
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 t = __bfloat1622float2(v.h[i]);
    f[2 * i] = t.x;
    f[2 * i + 1] = t.y;
  }
}

__device__ __forceinline__ Bf16x8 pack(const float (&f)[8]) {
  Bf16x8 v;
#pragma unroll
  for (int i = 0; i < 4; ++i) v.h[i] = __floats2bfloat162_rn(f[2 * i], f[2 * i + 1]);
  return v;
}

// A Bf16x8 dereferenced in global memory is copied member by member: four 4-byte accesses, not
// one 16-byte one. These go through uint4, which is one access. p: 16-byte aligned.
__device__ __forceinline__ Bf16x8 load_bf16x8(const bf16* p) {
  const uint4 raw = *reinterpret_cast<const uint4*>(p);
  return reinterpret_cast<const Bf16x8&>(raw);
}

__device__ __forceinline__ void store_bf16x8(bf16* p, const Bf16x8& v) {
  *reinterpret_cast<uint4*>(p) = reinterpret_cast<const uint4&>(v);
}

// kVec consecutive elements of fp32 or bf16 as floats: one 16-byte access per 16 bytes when
// kVec == 8 (the pointer must then be 16-byte aligned), plain scalar access when kVec == 1.
template <int kVec>
__device__ __forceinline__ void load(const float* p, float (&v)[kVec]) {
  if constexpr (kVec == 8) {
    const float4 a = reinterpret_cast<const float4*>(p)[0];
    const float4 b = reinterpret_cast<const float4*>(p)[1];
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w;
    v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
  } else {
#pragma unroll
    for (int i = 0; i < kVec; ++i) v[i] = p[i];
  }
}

template <int kVec>
__device__ __forceinline__ void load(const bf16* p, float (&v)[kVec]) {
  if constexpr (kVec == 8) {
    unpack(load_bf16x8(p), v);
  } else {
#pragma unroll
    for (int i = 0; i < kVec; ++i) v[i] = __bfloat162float(p[i]);
  }
}

template <int kVec>
__device__ __forceinline__ void store(float* p, const float (&v)[kVec]) {
  if constexpr (kVec == 8) {
    reinterpret_cast<float4*>(p)[0] = make_float4(v[0], v[1], v[2], v[3]);
    reinterpret_cast<float4*>(p)[1] = make_float4(v[4], v[5], v[6], v[7]);
  } else {
#pragma unroll
    for (int i = 0; i < kVec; ++i) p[i] = v[i];
  }
}

template <int kVec>
__device__ __forceinline__ void store(bf16* p, const float (&v)[kVec]) {
  if constexpr (kVec == 8) {
    store_bf16x8(p, pack(v));
  } else {
#pragma unroll
    for (int i = 0; i < kVec; ++i) p[i] = __float2bfloat16(v[i]);
  }
}

}  // namespace radix::cuda::detail
