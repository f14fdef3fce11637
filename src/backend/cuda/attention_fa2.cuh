// The FlashAttention-2-style kernel on mma.sync (sm_80 and later).
//
// One block computes one query tile of one head: each warp owns 16 query rows whose Q fragments
// stay in registers; key/value tiles of kTileN rows stream through double-buffered shared memory
// with cp.async; S = Q K^T and O += P V run on bf16 tensor cores (mma.sync m16n8k16) with fp32
// accumulators; the softmax is the online one (attention_softmax.cuh). The mask policy
// (attention_masks.cuh) decides which key tiles are visited and which need masking.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/attention_masks.cuh"
#include "backend/cuda/attention_output.cuh"
#include "backend/cuda/attention_params.cuh"
#include "backend/cuda/attention_ptx.cuh"
#include "backend/cuda/attention_softmax.cuh"
#include "backend/cuda/kernels/launch.cuh"

namespace radix::cuda::attention_detail {

inline constexpr int kFa2TileN = 64;

// Element offset of 16-byte chunk `chunk` of tile row `row` (rows of kD elements). Rows are
// 128-512 bytes, so without the XOR the 8 rows read by one ldmatrix phase would hit the same banks.
template <int kD>
__device__ __forceinline__ int fa2_swizzle(int row, int chunk) {
  return row * kD + ((chunk ^ (row & 7)) << 3);
}

// Issues the copy of tile rows [r0, r0 + kRows) of one head into shared memory at
// layout(row, chunk); rows at or past num_rows are zero-filled (zeros keep masked products
// finite: 0 * garbage could be NaN).
template <int kRows, int kThreads, int kD, class Layout>
__device__ __forceinline__ void load_tile(__nv_bfloat16* smem, Layout layout,
                                          const __nv_bfloat16* head_base, int64_t row_stride,
                                          int row_base, int r0, int num_rows) {
  constexpr int kChunksPerRow = kD / 8;
  constexpr int kChunks = kRows * kChunksPerRow;
  static_assert(kChunks % kThreads == 0, "tile chunks must split evenly over the threads");
#pragma unroll
  for (int i = 0; i < kChunks / kThreads; ++i) {
    const int c = static_cast<int>(threadIdx.x) + i * kThreads;
    const int r = c / kChunksPerRow;
    const int chunk = c % kChunksPerRow;
    const bool valid = r0 + r < num_rows;
    const int64_t row = valid ? static_cast<int64_t>(row_base + r0 + r) : 0;
    ptx::cp_async_16(ptx::shared_address(smem + layout(r, chunk)),
                     head_base + row * row_stride + chunk * 8, valid);
  }
}

template <int kD>
struct Fa2Layout {
  __device__ int operator()(int row, int chunk) const { return fa2_swizzle<kD>(row, chunk); }
};

// The cp.async copies of one block (one head, rows from row_base, rows at or past num_rows
// zero-filled): the Q tile of kBlockM rows and K/V tiles of kTileN rows, each in its layout, of
// head dimension kD.
template <int kThreads, int kBlockM, int kTileN, int kD, class QLayout, class KvLayout>
struct TileLoader {
  const __nv_bfloat16* q_head;
  const __nv_bfloat16* k_head;
  const __nv_bfloat16* v_head;
  int64_t q_row_stride;
  int64_t kv_row_stride;
  int row_base;
  int num_rows;

  __device__ TileLoader(const AttentionParams& p, int head, int row_base_, int num_rows_)
      : q_head(p.q + static_cast<int64_t>(head) * kD),
        k_head(p.k + static_cast<int64_t>(head / p.group) * kD),
        v_head(p.v + static_cast<int64_t>(head / p.group) * kD),
        q_row_stride(p.q_row_stride),
        kv_row_stride(p.kv_row_stride),
        row_base(row_base_),
        num_rows(num_rows_) {}

  __device__ void load_kv(__nv_bfloat16* s_k, __nv_bfloat16* s_v, int kv0) const {
    load_tile<kTileN, kThreads, kD>(s_k, KvLayout{}, k_head, kv_row_stride, row_base, kv0,
                                    num_rows);
    load_tile<kTileN, kThreads, kD>(s_v, KvLayout{}, v_head, kv_row_stride, row_base, kv0,
                                    num_rows);
  }

  // Issues the Q tile at q0 (first commit group) and the K/V of the mask's first key tile into
  // stage 0 (second group); returns that tile as mask.next() gave it.
  template <class Mask>
  __device__ int start(Mask& mask, __nv_bfloat16* s_q, __nv_bfloat16* s_k, __nv_bfloat16* s_v,
                       int q0) const {
    load_tile<kBlockM, kThreads, kD>(s_q, QLayout{}, q_head, q_row_stride, row_base, q0, num_rows);
    ptx::cp_async_commit();
    const int tile = mask.next();
    if (tile >= 0) load_kv(s_k, s_v, (tile >> 1) * kTileN);
    ptx::cp_async_commit();
    return tile;
  }
};

// A warp's 16 rows of the Q tile, from row warp_row on, as the m16n8k16 A fragments of the
// kDSteps k16 steps over the head dimension.
template <int kDSteps, class Layout>
__device__ __forceinline__ void load_q_fragments(uint32_t (&q_frag)[kDSteps][4],
                                                 const __nv_bfloat16* s_q, Layout layout,
                                                 int warp_row, int lane) {
  // Matrices in the order (rows 0-7, k lo), (rows 8-15, k lo), (rows 0-7, k hi), (rows 8-15, k hi).
  const int a_row = (lane & 7) + (((lane >> 3) & 1) << 3);
  const int a_chunk = lane >> 4;
#pragma unroll
  for (int ks = 0; ks < kDSteps; ++ks) {
    ptx::ldmatrix_x4(q_frag[ks],
                     ptx::shared_address(s_q + layout(warp_row + a_row, 2 * ks + a_chunk)));
  }
}

template <int kWarps, int kD>
constexpr int fa2_shared_bytes() {
  // Q tile, then two stages of K and two of V.
  return (kWarps * 16 + 4 * kFa2TileN) * kD * static_cast<int>(sizeof(__nv_bfloat16));
}

template <int kWarps, int kMinBlocks, int kD, class Mask>
__global__ void __launch_bounds__(kWarps * 32, kMinBlocks)
    attention_fa2_kernel(AttentionParams p, Mask mask) {
  begin_kernel();
  constexpr int kHeadDim = kD;
  constexpr int kOutTiles = kD / 8;
  using bf16 = __nv_bfloat16;
  constexpr int kTileN = kFa2TileN;
  constexpr int kBlockM = kWarps * 16;
  constexpr int kThreads = kWarps * 32;
  constexpr int kNTiles = kTileN / 8;     // n8 tiles of scores per warp
  constexpr int kDSteps = kHeadDim / 16;  // k16 steps of Q K^T
  constexpr int kNSteps = kTileN / 16;    // k16 steps of P V

  const int head = static_cast<int>(blockIdx.x);
  const int q_tile = static_cast<int>(gridDim.y - 1 - blockIdx.y);  // longest tiles first
  if (!mask.begin(q_tile, static_cast<int>(blockIdx.z), kBlockM)) return;
  const int row_base = mask.row_base;
  const int num_rows = mask.num_rows;
  const int q0 = mask.q0;

  extern __shared__ __align__(128) unsigned char shared_raw[];
  bf16* s_q = reinterpret_cast<bf16*>(shared_raw);
  bf16* s_k = s_q + kBlockM * kHeadDim;
  bf16* s_v = s_k + 2 * kTileN * kHeadDim;

  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const Fa2Layout<kD> layout;
  const TileLoader<kThreads, kBlockM, kTileN, kD, Fa2Layout<kD>, Fa2Layout<kD>> loader(
      p, head, row_base, num_rows);
  int tile = loader.start(mask, s_q, s_k, s_v, q0);
  ptx::cp_async_wait<1>();  // the Q tile
  __syncthreads();

  // Per-lane row/chunk of the ldmatrix addresses: A operands and transposed V take matrices in
  // the order (rows 0-7, k lo), (rows 8-15, k lo), (rows 0-7, k hi), (rows 8-15, k hi); K, read
  // as the transposed B operand, in the order (n 0-7, k lo), (n 0-7, k hi), (n 8-15, ...).
  const int a_row = (lane & 7) + (((lane >> 3) & 1) << 3);
  const int a_chunk = lane >> 4;
  const int b_row = (lane & 7) + ((lane >> 4) << 3);
  const int b_chunk = (lane >> 3) & 1;

  uint32_t q_frag[kDSteps][4];
  load_q_fragments(q_frag, s_q, layout, warp * 16, lane);

  float o[kOutTiles][4];
  float row_max[2];
  float row_sum[2];
  start_output(o, row_max, row_sum);
  const int qa = q0 + warp * 16 + (lane >> 2);  // this thread's two query rows
  const int qb = qa + 8;

  for (int stage = 0; tile >= 0; stage ^= 1) {
    const int next = mask.next();
    if (next >= 0) {
      loader.load_kv(s_k + (stage ^ 1) * kTileN * kHeadDim, s_v + (stage ^ 1) * kTileN * kHeadDim,
                     (next >> 1) * kTileN);
    }
    ptx::cp_async_commit();
    ptx::cp_async_wait<1>();  // this tile's K and V
    __syncthreads();

    const bf16* k_tile = s_k + stage * kTileN * kHeadDim;
    const bf16* v_tile = s_v + stage * kTileN * kHeadDim;

    float s[kNTiles][4];
#pragma unroll
    for (int n = 0; n < kNTiles; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
    for (int ks = 0; ks < kDSteps; ++ks) {
#pragma unroll
      for (int np = 0; np < kNTiles / 2; ++np) {
        uint32_t b[4];
        ptx::ldmatrix_x4(
            b, ptx::shared_address(k_tile + fa2_swizzle<kD>(np * 16 + b_row, 2 * ks + b_chunk)));
        ptx::mma_bf16_16816(s[2 * np], q_frag[ks], b[0], b[1]);
        ptx::mma_bf16_16816(s[2 * np + 1], q_frag[ks], b[2], b[3]);
      }
    }

    if (Mask::kHasOptions && p.softcap) apply_softcap<kTileN>(s, p);
    if ((tile & 1) == 0) mask.apply(s, (tile >> 1) * kTileN, qa, qb, lane);
    online_softmax<kTileN>(s, o, row_max, row_sum, p.scale_log2);

#pragma unroll
    for (int ks = 0; ks < kNSteps; ++ks) {
      uint32_t pa[4];
      probabilities_fragment<kTileN>(s, ks, pa);
#pragma unroll
      for (int dp = 0; dp < kOutTiles / 2; ++dp) {
        uint32_t b[4];
        ptx::ldmatrix_x4_trans(
            b, ptx::shared_address(v_tile + fa2_swizzle<kD>(ks * 16 + a_row, 2 * dp + a_chunk)));
        ptx::mma_bf16_16816(o[2 * dp], pa, b[0], b[1]);
        ptx::mma_bf16_16816(o[2 * dp + 1], pa, b[2], b[3]);
      }
    }
    __syncthreads();  // every warp is done with this stage before it is refilled
    tile = next;
  }
  ptx::cp_async_wait<0>();

  // The warp's own rows of the Q tile (no other warp reads them) stage its output.
  store_output_rows(o, row_sum, s_q, layout, warp * 16, lane, p, head, row_base + q0,
                    num_rows - q0);
}

}  // namespace radix::cuda::attention_detail
