// The last step of every attention kernel: one warp's 16 x D fp32 output fragment (o[d][e] as
// in attention_softmax.cuh) divided by its softmax sums, rounded to bf16 and written to global
// memory in whole 16-byte chunks.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/attention_masks.cuh"
#include "backend/cuda/attention_params.cuh"
#include "backend/cuda/attention_ptx.cuh"
#include "backend/cuda/attention_softmax.cuh"

namespace radix::cuda::attention_detail {

// Stages the warp's rows in rows [warp_row, warp_row + 16) of a shared tile (element offset of
// 16-byte chunk c of row r: layout(r, c)); those rows must belong to this warp alone and be free.
// Then writes tile rows 0 <= r < valid_rows to output row first_row + r of head `head`, a
// quarter-warp per row (D = 8 * kOut; a row is kOut 16-byte chunks).
template <int kOut, class Layout>
__device__ __forceinline__ void store_output_rows(const float (&o)[kOut][4], float (&row_sum)[2],
                                                  __nv_bfloat16* stage, const Layout& layout,
                                                  int warp_row, int lane, const AttentionParams& p,
                                                  int head, int first_row, int valid_rows) {
  constexpr int kChunksPerRow = kOut;
  __nv_bfloat16* out = p.out + static_cast<int64_t>(head) * (8 * kOut) +
                       static_cast<int64_t>(first_row) * p.out_row_stride;
  __syncwarp();  // a previous call's reads of the staging rows are done
  float inv[2];
  finish_row_sums(row_sum, inv);
  const int ra = warp_row + (lane >> 2);
#pragma unroll
  for (int d = 0; d < kOut; ++d) {
    *reinterpret_cast<uint32_t*>(stage + layout(ra, d) + (lane & 3) * 2) =
        ptx::pack_bf16x2(o[d][0] * inv[0], o[d][1] * inv[0]);
    *reinterpret_cast<uint32_t*>(stage + layout(ra + 8, d) + (lane & 3) * 2) =
        ptx::pack_bf16x2(o[d][2] * inv[1], o[d][3] * inv[1]);
  }
  __syncwarp();
#pragma unroll
  for (int i = 0; i < 16 * kChunksPerRow / 32; ++i) {
    const int c = i * 32 + lane;
    const int r = warp_row + c / kChunksPerRow;
    const int chunk = c % kChunksPerRow;
    if (r < valid_rows) {
      const uint4 value = *reinterpret_cast<const uint4*>(stage + layout(r, chunk));
      *reinterpret_cast<uint4*>(out + static_cast<int64_t>(r) * p.out_row_stride + chunk * 8) =
          value;
    }
  }
}

}  // namespace radix::cuda::attention_detail
