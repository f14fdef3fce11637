// The attention kernel on Hopper warpgroup MMAs (wgmma, sm_90a).
//
// Same tiling, masks, pipeline and softmax as attention_fa2.cuh, but each warpgroup (4 warps, 64
// query rows) issues S = Q K^T with both operands in shared memory and O += P V with P straight
// from the score registers and V read transposed from shared memory, so no ldmatrix traffic and
// the larger, asynchronous wgmma shapes. Q, K and V tiles use the 128-byte swizzle: a tile of R
// rows is D / 64 column blocks (head dims 0-63, 64-127, ...) of R rows x 128 bytes.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/attention_fa2.cuh"
#include "backend/cuda/attention_masks.cuh"
#include "backend/cuda/attention_output.cuh"
#include "backend/cuda/attention_params.cuh"
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

template <int kWarpgroups, int kTileN, int kD>
constexpr int wgmma_shared_bytes() {
  // Q tile, two stages of K and of V, and slack to align the start to the 1024-byte atoms.
  return (kWarpgroups * 64 + 4 * kTileN) * kD * static_cast<int>(sizeof(__nv_bfloat16)) + 1024;
}

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

// kQInRegisters: S = Q K^T takes Q as register fragments (loaded once) instead of reading it from
// shared memory at every key tile; with 64-key tiles that halves the shared-memory traffic of
// Q K^T, which otherwise bounds it.
template <int kWarpgroups, int kTileN, int kMinBlocks, bool kQInRegisters, int kD, class Mask>
__global__ void __launch_bounds__(kWarpgroups * 128, kMinBlocks)
    attention_wgmma_kernel(AttentionParams p, Mask mask) {
  using bf16 = __nv_bfloat16;
  constexpr int kHeadDim = kD;
  constexpr int kOutTiles = kD / 8;
  constexpr int kBlockM = kWarpgroups * 64;
  constexpr int kThreads = kWarpgroups * 128;
  constexpr int kNTiles = kTileN / 8;
  constexpr int kDSteps = kHeadDim / 16;  // k16 steps of Q K^T
  constexpr int kNSteps = kTileN / 16;    // k16 steps of P V
  constexpr uint32_t kQBlockBytes = kBlockM * 128;
  constexpr uint32_t kKvBlockBytes = kTileN * 128;
  constexpr uint32_t kKvStageBytes = (kD / 64) * kKvBlockBytes;

  const int head = static_cast<int>(blockIdx.x);
  const int q_tile = static_cast<int>(gridDim.y - 1 - blockIdx.y);  // longest tiles first
  if (!mask.begin(q_tile, static_cast<int>(blockIdx.z), kBlockM)) return;
  const int row_base = mask.row_base;
  const int num_rows = mask.num_rows;
  const int q0 = mask.q0;

  extern __shared__ __align__(1024) unsigned char wgmma_shared_raw[];
  auto* s_q = reinterpret_cast<bf16*>((reinterpret_cast<uintptr_t>(wgmma_shared_raw) + 1023) &
                                      ~static_cast<uintptr_t>(1023));
  bf16* s_k = s_q + kBlockM * kHeadDim;
  bf16* s_v = s_k + 2 * kTileN * kHeadDim;
  const uint32_t q_addr = ptx::shared_address(s_q);
  const uint32_t k_addr = ptx::shared_address(s_k);
  const uint32_t v_addr = ptx::shared_address(s_v);

  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int warpgroup = warp / 4;
  const Sw128Layout<kBlockM> q_layout;
  const TileLoader<kThreads, kBlockM, kTileN, kD, Sw128Layout<kBlockM>, Sw128Layout<kTileN>> loader(
      p, head, row_base, num_rows);
  int tile = loader.start(mask, s_q, s_k, s_v, q0);

  // Only used with kQInRegisters: the warp's 16 rows of Q as m16n8k16 A fragments.
  uint32_t q_frag[kQInRegisters ? kDSteps : 1][4];
  if constexpr (kQInRegisters) {
    ptx::cp_async_wait<1>();  // the Q tile
    __syncthreads();
    load_q_fragments(q_frag, s_q, q_layout, warp * 16, lane);
  }

  float o[kOutTiles][4];
  float row_max[2];
  float row_sum[2];
  start_output(o, row_max, row_sum);
  const int qa = q0 + warp * 16 + (lane >> 2);  // this thread's two query rows
  const int qb = qa + 8;
  // This warpgroup's 64 rows of Q: 8 atoms into each column block.
  const uint32_t q_wg_addr = q_addr + warpgroup * 64 * 128;

  for (int stage = 0; tile >= 0; stage ^= 1) {
    const int next = mask.next();
    if (next >= 0) {
      loader.load_kv(s_k + (stage ^ 1) * kTileN * kHeadDim, s_v + (stage ^ 1) * kTileN * kHeadDim,
                     (next >> 1) * kTileN);
    }
    ptx::cp_async_commit();
    ptx::cp_async_wait<1>();  // this tile's K and V (and, the first time, Q)
    ptx::fence_proxy_async_shared();
    __syncthreads();

    const uint32_t k_stage = k_addr + stage * kKvStageBytes;
    const uint32_t v_stage = v_addr + stage * kKvStageBytes;

    float s[kNTiles][4];
#pragma unroll
    for (int n = 0; n < kNTiles; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
    fence_fragment(s);
    ptx::wgmma_fence();
    if constexpr (kQInRegisters) {
      static_assert(kTileN == 64, "register Q is built for 64-key tiles");
#pragma unroll
      for (int ks = 0; ks < kDSteps; ++ks) {
        const uint64_t b = ptx::wgmma_desc_sw128(
            k_stage + (ks >> 2) * kKvBlockBytes + (ks & 3) * 32, 16, kSw128AtomBytes);
        ptx::wgmma_m64n64k16_rs(s, q_frag[ks], b, ks > 0 ? 1 : 0);
      }
    } else {
      wgmma_scores<kTileN, kD>(s, q_wg_addr, kQBlockBytes, k_stage);
    }
    ptx::wgmma_commit();
    ptx::wgmma_wait<0>();
    fence_fragment(s);

    if (Mask::kHasOptions && p.softcap) apply_softcap<kTileN>(s, p);
    if ((tile & 1) == 0) mask.apply(s, (tile >> 1) * kTileN, qa, qb, lane);
    online_softmax<kTileN>(s, o, row_max, row_sum, p.scale_log2);

    uint32_t pa[kNSteps][4];
    pack_probabilities<kTileN>(s, pa);
    fence_fragment(o);
    ptx::wgmma_fence();
    wgmma_pv<kTileN>(o, pa, v_stage);
    ptx::wgmma_commit();
    ptx::wgmma_wait<0>();
    fence_fragment(o);
    fence_fragment(pa);
    __syncthreads();  // every warpgroup is done with this stage before it is refilled
    tile = next;
  }
  ptx::cp_async_wait<0>();

  // The warp's 16 rows of the Q tile stage its output: only its warpgroup's wgmmas read them,
  // and those have completed.
  store_output_rows(o, row_sum, s_q, q_layout, warp * 16, lane, p, head, row_base + q0,
                    num_rows - q0);
}

}  // namespace radix::cuda::attention_detail
