// The online softmax step shared by the attention kernels, on the per-thread fragments of one
// warp's 16 query rows: the scores of one key tile (ScoreTile) and the 16 x D output
// accumulator o[d][e] (row (lane / 4) + 8 * (e / 2), column d * 8 + (lane % 4) * 2 + e % 2), with
// kOut = D / 8 tiles.
// Each row's values are spread over the four lanes of a quad, so row reductions are two shuffles.
#pragma once

#include <cmath>

#include "backend/cuda/attention_masks.cuh"
#include "backend/cuda/attention_params.cuh"
#include "backend/cuda/attention_ptx.cuh"

namespace radix::cuda::attention_detail {

// The state of one warp's rows before the first key tile: no output, running max -inf, sum 0.
template <int kOut>
__device__ __forceinline__ void start_output(float (&o)[kOut][4], float (&row_max)[2],
                                             float (&row_sum)[2]) {
#pragma unroll
  for (int d = 0; d < kOut; ++d) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.f;
  row_max[0] = row_max[1] = -INFINITY;
  row_sum[0] = row_sum[1] = 0.f;
}

// The logit soft-cap (Gemma 2) on raw scores, before the mask (tanh(-inf) would be finite):
// s = tanh(scale * s / cap) as 1 - 2 / (e^(2x) + 1), whose absolute error stays near fp32
// rounding (tanh.approx's 2^-11 relative error, times a cap of 50, would move logits by 0.02).
// ex2 saturates to 0 or inf and rcp(inf) = 0, so the result stays in [-1, 1] for finite s.
// The softmax then scales by cap * log2(e) (AttentionParams::scale_log2).
template <int kTileN>
__device__ __forceinline__ void apply_softcap(ScoreTile<kTileN>& s, float softcap_exp2) {
#pragma unroll
  for (int n = 0; n < kTileN / 8; ++n) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const float ex = ptx::exp2_approx(s[n][e] * softcap_exp2);
      s[n][e] = fmaf(-2.f, ptx::rcp_approx(ex + 1.f), 1.f);
    }
  }
}
template <int kTileN>
__device__ __forceinline__ void apply_softcap(ScoreTile<kTileN>& s, const AttentionParams& p) {
  apply_softcap<kTileN>(s, p.softcap_exp2);
}

// Turns the raw scores s into unnormalised probabilities 2^(s * scale_log2 - max), updates the
// running max and sums, and returns in alpha = 2^(old max - new max) the factor the output
// accumulator must be scaled by (rescale_output). Kept apart so that a kernel can run this while
// the previous tile's P V product still accumulates into o. row_max is in scaled base-2 units;
// row_sum is this thread's share of the denominator (summed over the quad at the end).
template <int kTileN>
__device__ __forceinline__ void softmax_scores(ScoreTile<kTileN>& s, float (&row_max)[2],
                                               float (&row_sum)[2], float scale_log2,
                                               float (&alpha)[2]) {
  float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
  for (int n = 0; n < kTileN / 8; ++n) {
    tile_max[0] = fmaxf(tile_max[0], fmaxf(s[n][0], s[n][1]));
    tile_max[1] = fmaxf(tile_max[1], fmaxf(s[n][2], s[n][3]));
  }
  float base[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 1));
    tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 2));
    const float new_max = fmaxf(row_max[r], tile_max[r] * scale_log2);
    // A row with nothing visible yet keeps max -inf; subtracting 0 then keeps every term 0.
    base[r] = new_max == -INFINITY ? 0.f : new_max;
    alpha[r] = ptx::exp2_approx(row_max[r] - base[r]);
    row_max[r] = new_max;
    row_sum[r] *= alpha[r];
  }
#pragma unroll
  for (int n = 0; n < kTileN / 8; ++n) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      s[n][e] = ptx::exp2_approx(fmaf(s[n][e], scale_log2, -base[e >> 1]));
    }
    row_sum[0] += s[n][0] + s[n][1];
    row_sum[1] += s[n][2] + s[n][3];
  }
}

template <int kOut>
__device__ __forceinline__ void rescale_output(float (&o)[kOut][4], const float (&alpha)[2]) {
#pragma unroll
  for (int d = 0; d < kOut; ++d) {
    o[d][0] *= alpha[0];
    o[d][1] *= alpha[0];
    o[d][2] *= alpha[1];
    o[d][3] *= alpha[1];
  }
}

// softmax_scores and rescale_output in one step.
template <int kTileN, int kOut>
__device__ __forceinline__ void online_softmax(ScoreTile<kTileN>& s, float (&o)[kOut][4],
                                               float (&row_max)[2], float (&row_sum)[2],
                                               float scale_log2) {
  float alpha[2];
  softmax_scores<kTileN>(s, row_max, row_sum, scale_log2, alpha);
  rescale_output(o, alpha);
}

// The probabilities of k16 step ks as the A fragment of a 16x16 product: the accumulators of two
// adjacent n8 tiles are exactly that fragment, so P never leaves registers.
template <int kTileN>
__device__ __forceinline__ void probabilities_fragment(const ScoreTile<kTileN>& s, int ks,
                                                       uint32_t (&a)[4]) {
  a[0] = ptx::pack_bf16x2(s[2 * ks][0], s[2 * ks][1]);
  a[1] = ptx::pack_bf16x2(s[2 * ks][2], s[2 * ks][3]);
  a[2] = ptx::pack_bf16x2(s[2 * ks + 1][0], s[2 * ks + 1][1]);
  a[3] = ptx::pack_bf16x2(s[2 * ks + 1][2], s[2 * ks + 1][3]);
}

// 1 / (sum over the quad), or 0 for a row that saw nothing.
__device__ __forceinline__ void finish_row_sums(float (&row_sum)[2], float (&inv)[2]) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    row_sum[r] += __shfl_xor_sync(0xffffffffu, row_sum[r], 1);
    row_sum[r] += __shfl_xor_sync(0xffffffffu, row_sum[r], 2);
    inv[r] = row_sum[r] > 0.f ? 1.f / row_sum[r] : 0.f;
  }
}

}  // namespace radix::cuda::attention_detail
