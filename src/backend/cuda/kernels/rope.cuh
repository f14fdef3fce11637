// Rotary position embedding on the q and k heads of the fused QKV buffer, apart from any norm
// (Llama, Mistral, Qwen2, Gemma; Qwen3's fused q/k-norm + RoPE is qk_norm_rope.cuh).
#pragma once

#include "backend/cuda/kernels/bf16.cuh"

namespace radix::cuda {

// qkv:       [rows, row_stride] bf16; columns [0, Hq*D) are q heads, then Hkv*D of k heads, then
//            v (left untouched); updated in place
// positions: [rows] int32 device, the rotary position of each row (its depth in the trie)
// inv_freq:  [D/2] fp32 device, the per-pair inverse frequencies as the host computed them
//            (theta^(-2i/D) with any rope scaling applied)
// Rotate-half RoPE per q or k head: element i pairs with i + D/2 at angle pos * inv_freq[i]
// (fp32, as Hugging Face computes it), fp32 inside, one bf16 rounding. head_dim D: any even size
// up to 256 (the families' 64, 128 and 256, and the tiny test models' 16 and 32); rows may be 0.
cudaError_t rope(bf16* qkv, int64_t row_stride, const int32_t* positions, const float* inv_freq,
                 int64_t rows, int num_q_heads, int num_kv_heads, int head_dim,
                 cudaStream_t stream);

}  // namespace radix::cuda
