// A deliberately simple attention kernel (one warp per query row and head, keys one at a time):
// the correctness reference for the fast kernels in ../attention.cu and a debugging fallback
// (RADIX_CUDA_REFERENCE_ATTENTION=1). Quadratic in the rows of the batch; never the product path.
#pragma once

#include "backend/cuda/kernels/bf16.cuh"

namespace radix::cuda {

// q:   [rows, Hq*D] bf16 at q + r*q_row_stride + h*D (likewise k, v with Hkv heads, out with Hq)
// subtree_end: [rows] int32 device. Key row k is visible to query row q iff
//              k <= q < subtree_end[k]. For a flat varlen causal batch pass the end of k's own
//              sequence (see causal_subtree_end below); for the fold plan pass plan.subtree_end.
// GQA: query head h reads kv head h / (Hq / Hkv). Softmax in fp32 with `scale` applied to the
// logits. head_dim D: any even size up to 256. A row that sees no key (impossible for
// valid input, since a row sees itself) gets zeros. The options of the families beyond Qwen3:
struct ReferenceAttentionOptions {
  float softcap = 0.f;  // > 0: logit = softcap * tanh(logit / softcap) (Gemma 2)
  // > 0: key k visible only if positions[q] - positions[k] < window as well
  int window = 0;
  const int32_t* positions = nullptr;  // [rows] int32 device, required with a window
  // A flat varlen batch attending both ways: subtree_end[t] is the end of t's sequence (as
  // causal_subtree_end writes it) and every row sees every row of its sequence. No window.
  bool bidirectional = false;
};
cudaError_t reference_attention(const bf16* q, const bf16* k, const bf16* v, bf16* out,
                                int64_t q_row_stride, int64_t kv_row_stride, int64_t out_row_stride,
                                const int32_t* subtree_end, int rows, int num_q_heads,
                                int num_kv_heads, int head_dim, float scale, cudaStream_t stream,
                                const ReferenceAttentionOptions& options = {});

// cu_seqlens: [num_seqs + 1] int32 device; subtree_end: [cu_seqlens[num_seqs]] int32 device.
// subtree_end[t] = end of the sequence holding flat token t, which makes the interval mask the
// varlen causal mask.
cudaError_t causal_subtree_end(const int32_t* cu_seqlens, int num_seqs, int32_t* subtree_end,
                               int total_rows, cudaStream_t stream);

}  // namespace radix::cuda
