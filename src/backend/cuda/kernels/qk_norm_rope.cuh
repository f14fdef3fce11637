// Qwen3's per-head RMSNorm on q and k followed by rotary embedding, in place in the fused QKV
// buffer the projection GEMM wrote.
#pragma once

#include "backend/cuda/kernels/bf16.cuh"

namespace radix::cuda {

// qkv:       [rows, row_stride] bf16; columns [0, Hq*D) are q heads, then Hkv*D of k heads, then
//            v (left untouched); updated in place
// positions: [rows] int32 device, the rotary position of each row (its depth in the trie)
// q_weight, k_weight: [D] bf16, the q_norm / k_norm weights shared by all heads
// Per q or k head: x = rmsnorm(x) * weight, then the rotate-half RoPE with
// inv_freq[i] = theta^(-2i/D) pairing element i with i + D/2. fp32 inside, one bf16 rounding.
// head_dim D must be 64, 128 or 256; rows may be 0.
cudaError_t qk_norm_rope(bf16* qkv, int64_t row_stride, const int32_t* positions,
                         const bf16* q_weight, const bf16* k_weight, int64_t rows, int num_q_heads,
                         int num_kv_heads, int head_dim, float rope_theta, float eps,
                         cudaStream_t stream);

}  // namespace radix::cuda
