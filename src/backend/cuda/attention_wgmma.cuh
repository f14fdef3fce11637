// The attention kernel on Hopper warpgroup MMAs (wgmma, sm_90a).
//
// Same tiling, masks, pipeline and softmax as attention_fa2.cuh, but each warpgroup (4 warps, 64
// query rows) issues S = Q K^T with both operands in shared memory and O += P V with P straight
// from the score registers and V read transposed from shared memory, so no ldmatrix traffic and
// the larger, asynchronous wgmma shapes. Q, K and V tiles use the 128-byte swizzle: a tile of R
// rows is two column blocks (head dims 0-63 and 64-127) of R rows x 128 bytes.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/attention_fa2.cuh"
#include "backend/cuda/attention_masks.cuh"
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

template <int kWarpgroups, int kTileN>
constexpr int wgmma_shared_bytes() {
  // Q tile, two stages of K and of V, and slack to align the start to the 1024-byte atoms.
  return (kWarpgroups * 64 + 4 * kTileN) * kHeadDim * static_cast<int>(sizeof(__nv_bfloat16)) +
         1024;
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

template <int kN>
__device__ __forceinline__ void fence_fragment(float (&d)[kN][4]) {
#pragma unroll
  for (int i = 0; i < kN; ++i) {
#pragma unroll
    for (int e = 0; e < 4; ++e) ptx::fence_operand(d[i][e]);
  }
}

// kQInRegisters: S = Q K^T takes Q as register fragments (loaded once) instead of reading it from
// shared memory at every key tile; with 64-key tiles that halves the shared-memory traffic of
// Q K^T, which otherwise bounds it.
template <int kWarpgroups, int kTileN, int kMinBlocks, bool kQInRegisters, class Mask>
__global__ void __launch_bounds__(kWarpgroups * 128, kMinBlocks)
    attention_wgmma_kernel(AttentionParams p, Mask mask) {
  using bf16 = __nv_bfloat16;
  constexpr int kBlockM = kWarpgroups * 64;
  constexpr int kThreads = kWarpgroups * 128;
  constexpr int kNTiles = kTileN / 8;
  constexpr int kDSteps = kHeadDim / 16;  // k16 steps of Q K^T
  constexpr int kNSteps = kTileN / 16;    // k16 steps of P V
  constexpr uint32_t kAtomRows = 1024;    // bytes between 8-row groups
  constexpr uint32_t kQBlockBytes = kBlockM * 128;
  constexpr uint32_t kKvBlockBytes = kTileN * 128;
  constexpr uint32_t kKvStageBytes = 2 * kKvBlockBytes;

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
  const bf16* q_head = p.q + static_cast<int64_t>(head) * kHeadDim;
  const bf16* k_head = p.k + static_cast<int64_t>(head / p.group) * kHeadDim;
  const bf16* v_head = p.v + static_cast<int64_t>(head / p.group) * kHeadDim;
  const Sw128Layout<kBlockM> q_layout;
  const Sw128Layout<kTileN> kv_layout;

  load_tile<kBlockM, kThreads>(s_q, q_layout, q_head, p.q_row_stride, row_base, q0, num_rows);
  ptx::cp_async_commit();
  int tile = mask.next();
  if (tile >= 0) {
    const int kv0 = (tile >> 1) * kTileN;
    load_tile<kTileN, kThreads>(s_k, kv_layout, k_head, p.kv_row_stride, row_base, kv0, num_rows);
    load_tile<kTileN, kThreads>(s_v, kv_layout, v_head, p.kv_row_stride, row_base, kv0, num_rows);
  }
  ptx::cp_async_commit();

  // Only used with kQInRegisters: the warp's 16 rows of Q as m16n8k16 A fragments.
  uint32_t q_frag[kQInRegisters ? kDSteps : 1][4];
  if constexpr (kQInRegisters) {
    ptx::cp_async_wait<1>();  // the Q tile
    __syncthreads();
    const int a_row = (lane & 7) + (((lane >> 3) & 1) << 3);
    const int a_chunk = lane >> 4;
#pragma unroll
    for (int ks = 0; ks < kDSteps; ++ks) {
      ptx::ldmatrix_x4(q_frag[ks],
                       ptx::shared_address(s_q + q_layout(warp * 16 + a_row, 2 * ks + a_chunk)));
    }
  }

  float o[kOutTiles][4];
#pragma unroll
  for (int d = 0; d < kOutTiles; ++d) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.f;
  float row_max[2] = {-INFINITY, -INFINITY};
  float row_sum[2] = {0.f, 0.f};
  const int qa = q0 + warp * 16 + (lane >> 2);  // this thread's two query rows
  const int qb = qa + 8;
  // This warpgroup's 64 rows of Q: 8 atoms into each column block.
  const uint32_t q_wg_addr = q_addr + warpgroup * 64 * 128;

  for (int stage = 0; tile >= 0; stage ^= 1) {
    const int next = mask.next();
    if (next >= 0) {
      const int kv0 = (next >> 1) * kTileN;
      load_tile<kTileN, kThreads>(s_k + (stage ^ 1) * kTileN * kHeadDim, kv_layout, k_head,
                                  p.kv_row_stride, row_base, kv0, num_rows);
      load_tile<kTileN, kThreads>(s_v + (stage ^ 1) * kTileN * kHeadDim, kv_layout, v_head,
                                  p.kv_row_stride, row_base, kv0, num_rows);
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
#pragma unroll
    for (int ks = 0; ks < kDSteps; ++ks) {
      // k16 step ks is 32 bytes into the rows of column block ks / 4.
      const uint32_t k_off = (ks >> 2) * kKvBlockBytes + (ks & 3) * 32;
      const uint64_t b = ptx::wgmma_desc_sw128(k_stage + k_off, 16, kAtomRows);
      if constexpr (kQInRegisters) {
        static_assert(kTileN == 64, "register Q is built for 64-key tiles");
        ptx::wgmma_m64n64k16_rs(s, q_frag[ks], b, ks > 0 ? 1 : 0);
      } else {
        const uint64_t a = ptx::wgmma_desc_sw128(
            q_wg_addr + (ks >> 2) * kQBlockBytes + (ks & 3) * 32, 16, kAtomRows);
        wgmma_ss<kTileN>(s, a, b, ks > 0 ? 1 : 0);
      }
    }
    ptx::wgmma_commit();
    ptx::wgmma_wait<0>();
    fence_fragment(s);

    if ((tile & 1) == 0) mask.apply(s, (tile >> 1) * kTileN, qa, qb, lane);
    online_softmax<kTileN>(s, o, row_max, row_sum, p.scale_log2);

    uint32_t pa[kNSteps][4];
#pragma unroll
    for (int ks = 0; ks < kNSteps; ++ks) {
      probabilities_fragment<kTileN>(s, ks, pa[ks]);
#pragma unroll
      for (int i = 0; i < 4; ++i) ptx::fence_operand(pa[ks][i]);
    }
    fence_fragment(o);
    ptx::wgmma_fence();
#pragma unroll
    for (int ks = 0; ks < kNSteps; ++ks) {
      // V is the MN-major B operand: 16 key rows per step (two 8-row groups, sbo apart), the
      // two 64-wide column blocks lbo apart.
      const uint64_t b =
          ptx::wgmma_desc_sw128(v_stage + ks * 2 * kAtomRows, kKvBlockBytes, kAtomRows);
      ptx::wgmma_m64n128k16_rs_mn(o, pa[ks], b);
    }
    ptx::wgmma_commit();
    ptx::wgmma_wait<0>();
    fence_fragment(o);
#pragma unroll
    for (int ks = 0; ks < kNSteps; ++ks) {
#pragma unroll
      for (int i = 0; i < 4; ++i) ptx::fence_operand(pa[ks][i]);
    }
    __syncthreads();  // every warpgroup is done with this stage before it is refilled
    tile = next;
  }
  ptx::cp_async_wait<0>();

  // Normalise and stage the warp's 16 rows in its own rows of the Q tile (only its warpgroup's
  // wgmmas read them, and those have completed), then write 16-byte chunks.
  float inv[2];
  finish_row_sums(row_sum, inv);
  const int ra = warp * 16 + (lane >> 2);
#pragma unroll
  for (int d = 0; d < kOutTiles; ++d) {
    *reinterpret_cast<uint32_t*>(s_q + q_layout(ra, d) + (lane & 3) * 2) =
        ptx::pack_bf16x2(o[d][0] * inv[0], o[d][1] * inv[0]);
    *reinterpret_cast<uint32_t*>(s_q + q_layout(ra + 8, d) + (lane & 3) * 2) =
        ptx::pack_bf16x2(o[d][2] * inv[1], o[d][3] * inv[1]);
  }
  __syncwarp();
  bf16* out_head = p.out + static_cast<int64_t>(head) * kHeadDim;
#pragma unroll
  for (int i = 0; i < 16 * kChunksPerRow / 32; ++i) {
    const int c = i * 32 + lane;
    const int r = warp * 16 + c / kChunksPerRow;
    const int chunk = c % kChunksPerRow;
    if (q0 + r < num_rows) {
      const uint4 value = *reinterpret_cast<const uint4*>(s_q + q_layout(r, chunk));
      *reinterpret_cast<uint4*>(
          out_head + static_cast<int64_t>(row_base + q0 + r) * p.out_row_stride + chunk * 8) =
          value;
    }
  }
}

}  // namespace radix::cuda::attention_detail
