// Kernel parameters shared by the attention kernels.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

namespace radix::cuda::attention_detail {

struct AttentionParams {
  const __nv_bfloat16* q;
  const __nv_bfloat16* k;
  const __nv_bfloat16* v;
  __nv_bfloat16* out;
  int64_t q_row_stride;
  int64_t kv_row_stride;
  int64_t out_row_stride;
  int group;  // query heads per kv head
  // The softmax takes 2^(s * scale_log2 - max) of the scores s the softcap step leaves: without
  // a soft-cap s = q.k and scale_log2 = scale * log2(e); with one (cap c), s = tanh(scale q.k / c)
  // and scale_log2 = c * log2(e), so that the logit is c * tanh(scale q.k / c) as in Gemma 2.
  float scale_log2;
  bool softcap;
  float softcap_exp2;  // 2 * log2(e) * scale / c: tanh(x) = 1 - 2 / (2^(x * 2 log2 e) + 1)
};

}  // namespace radix::cuda::attention_detail
