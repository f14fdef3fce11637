// Hopper warpgroup-MMA (wgmma, sm_90a) building blocks of the warp-specialised attention kernel
// (attention_wgmma_ws.cuh): each consumer warpgroup (4 warps, 64 query rows) issues S = Q K^T with
// both operands in shared memory and O += P V with P straight from the score registers and V read
// transposed from shared memory. Q, K and V tiles use the 128-byte swizzle: a tile of R rows is
// D / 64 column blocks (head dims 0-63, 64-127, ...) of R rows x 128 bytes. (The one-warpgroup
// and two-warpgroup kernels that once lived here were retired: docs/attention.md.)
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/attention_ptx.cuh"
#include "backend/cuda/attention_softmax.cuh"
#include "backend/cuda/attention_wgmma_ptx.cuh"

namespace radix::cuda::attention_detail {

// Element offset of 16-byte chunk `chunk` (0..15) of row `row` in a 128B-swizzled tile of kRows.
template <int kRows>
struct Sw128Layout {
  __device__ int operator()(int row, int chunk) const {
    return (chunk >> 3) * kRows * 64 + row * 64 + (((chunk & 7) ^ (row & 7)) << 3);
  }
};

template <int kTileN>
__device__ __forceinline__ void wgmma_ss(float (&d)[kTileN / 8][4], uint64_t a, uint64_t b,
                                         int scale_d) {
  if constexpr (kTileN == 64) {
    ptx::wgmma_m64n64k16_ss(d, a, b, scale_d);
  } else {
    static_assert(kTileN == 128, "key tiles of 64 or 128 rows");
    ptx::wgmma_m64n128k16_ss(d, a, b, scale_d);
  }
}

// ptx::fence_operand on every register of a fragment (fp32 accumulators or bf16x2 A operands).
template <class T, int kN>
__device__ __forceinline__ void fence_fragment(T (&d)[kN][4]) {
#pragma unroll
  for (int i = 0; i < kN; ++i) {
#pragma unroll
    for (int e = 0; e < 4; ++e) ptx::fence_operand(d[i][e]);
  }
}

inline constexpr uint32_t kSw128AtomBytes = 1024;  // 8 rows of 128 bytes

// Issues S = Q K^T for one warpgroup (kD / 16 k16 steps over the head dimension; not waited
// for): its 64 rows of Q at q_addr and the kTileN rows of K at k_addr, both K-major
// 128B-swizzled tiles whose 64-column blocks lie q_block_bytes and kTileN * 128 bytes apart.
template <int kTileN, int kD>
__device__ __forceinline__ void wgmma_scores(ScoreTile<kTileN>& s, uint32_t q_addr,
                                             uint32_t q_block_bytes, uint32_t k_addr) {
#pragma unroll
  for (int ks = 0; ks < kD / 16; ++ks) {
    // k16 step ks is 32 bytes into the rows of column block ks / 4.
    const uint64_t a = ptx::wgmma_desc_sw128(q_addr + (ks >> 2) * q_block_bytes + (ks & 3) * 32, 16,
                                             kSw128AtomBytes);
    const uint64_t b = ptx::wgmma_desc_sw128(k_addr + (ks >> 2) * kTileN * 128 + (ks & 3) * 32, 16,
                                             kSw128AtomBytes);
    wgmma_ss<kTileN>(s, a, b, ks > 0 ? 1 : 0);
  }
}

// The probabilities of a score tile as the A fragments of the k16 steps of P V, fenced so that
// the asynchronous wgmma reading them keeps their registers.
template <int kTileN>
__device__ __forceinline__ void pack_probabilities(const ScoreTile<kTileN>& s,
                                                   uint32_t (&pa)[kTileN / 16][4]) {
#pragma unroll
  for (int ks = 0; ks < kTileN / 16; ++ks) probabilities_fragment<kTileN>(s, ks, pa[ks]);
  fence_fragment(pa);
}

// Issues O += P V for one warpgroup (not waited for): P from registers, the kTileN rows of V at
// v_addr as the MN-major B operand, 16 key rows per step (two 8-row groups, sbo apart), the
// 64-wide column blocks lbo = kTileN * 128 bytes apart. Head dimension 8 * kOut: 64 is one n64
// product per step, 128 one n128, 256 two n128 (the second on column blocks 2 and 3).
template <int kTileN, int kOut>
__device__ __forceinline__ void wgmma_pv(float (&o)[kOut][4], const uint32_t (&pa)[kTileN / 16][4],
                                         uint32_t v_addr) {
  constexpr uint32_t kBlockBytes = kTileN * 128;
#pragma unroll
  for (int ks = 0; ks < kTileN / 16; ++ks) {
    const uint32_t step = v_addr + ks * 2 * kSw128AtomBytes;
    if constexpr (kOut == 8) {
      ptx::wgmma_m64n64k16_rs_mn(o, pa[ks],
                                 ptx::wgmma_desc_sw128(step, kBlockBytes, kSw128AtomBytes));
    } else {
      static_assert(kOut % 16 == 0, "head dimensions 64, 128, 256");
#pragma unroll
      for (int half = 0; half < kOut / 16; ++half) {
        ptx::wgmma_m64n128k16_rs_mn(
            *reinterpret_cast<float(*)[16][4]>(&o[16 * half]), pa[ks],
            ptx::wgmma_desc_sw128(step + half * 2 * kBlockBytes, kBlockBytes, kSw128AtomBytes));
      }
    }
  }
}

}  // namespace radix::cuda::attention_detail
