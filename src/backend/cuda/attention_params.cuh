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
  int group;         // query heads per kv head
  float scale_log2;  // softmax scale times log2(e)
};

}  // namespace radix::cuda::attention_detail
