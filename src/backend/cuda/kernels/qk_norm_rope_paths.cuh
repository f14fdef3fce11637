// The two kernels behind qk_norm_rope(), each callable alone: the GPU tests run both on every
// shape and fp8_kernels_bench times one against the other. The backend calls qk_norm_rope() only.
#pragma once

#include <algorithm>
#include <cmath>

#include "backend/cuda/kernels/bf16.cuh"

namespace radix::cuda::detail {

// The 16-byte path alone, with qk_norm_rope()'s arguments and checks. cudaErrorNotSupported,
// nothing launched, where it cannot take the call: qkv, q_weight or k_weight not 16-byte aligned,
// row_stride not a multiple of 8, or more than 65,535 q + k heads. rows_per_block: rows a block
// takes, 1 or 2, or 0 for what qk_norm_rope() uses (cudaErrorInvalidValue otherwise).
cudaError_t qk_norm_rope_vectorized(bf16* qkv, int64_t row_stride, const int32_t* positions,
                                    const bf16* q_weight, const bf16* k_weight, int64_t rows,
                                    int num_q_heads, int num_kv_heads, int head_dim,
                                    float rope_theta, float eps, cudaStream_t stream,
                                    int rows_per_block = 0);

// The scalar kernel alone (any row stride and alignment), with qk_norm_rope()'s arguments and
// checks. The same formula; the sum of squares is added in another order, so an output may differ
// from the 16-byte path's by one bf16 rounding step (qk_norm_rope_paths_agree).
cudaError_t qk_norm_rope_fallback(bf16* qkv, int64_t row_stride, const int32_t* positions,
                                  const bf16* q_weight, const bf16* k_weight, int64_t rows,
                                  int num_q_heads, int num_kv_heads, int head_dim, float rope_theta,
                                  float eps, cudaStream_t stream);

// Whether one element's outputs from the two paths agree as they should (host code, for the tests
// and the benchmark). The paths differ only in the order the sum of squares is added in (and in
// which multiply-adds the compiler fuses), so their fp32 results differ by a few fp32 steps of the
// terms of a*cos -/+ b*sin: after rounding, by at most one bf16 step of the larger output, or by
// more steps of an output near zero (a*cos close to b*sin), but then by less than 2^-14 (the terms
// are O(1) to O(10) after the norm, their fp32 steps 2^-20 or less; 2^-14 is a 64th of the bf16
// step below 1, so an error of bf16's resolution still fails).
inline bool qk_norm_rope_paths_agree(float a, float b) {
  const float diff = std::fabs(a - b);
  int exponent = 0;
  std::frexp(std::max(std::fabs(a), std::fabs(b)), &exponent);
  const float bf16_step = std::ldexp(1.0f, exponent - 8);  // |x| in [2^(e-1), 2^e): step 2^(e-8)
  return diff <= std::max(bf16_step, 1.0f / 16384.0f);
}

}  // namespace radix::cuda::detail
