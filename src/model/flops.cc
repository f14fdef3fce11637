#include "model/flops.h"

#include <vector>

namespace radix {

int64_t tree_attention_pairs(const FoldPlan& plan) {
  // Each trie row sees itself and its ancestors: depth + 1 keys (parent < row in pre-order).
  std::vector<int64_t> depth(plan.num_unique);
  int64_t pairs = 0;
  for (int64_t r = 0; r < plan.num_unique; ++r) {
    depth[r] = plan.parent[r] < 0 ? 1 : depth[plan.parent[r]] + 1;
    pairs += depth[r];
  }
  return pairs;
}

ForwardFlops count_forward_flops(const DecoderConfig& c, const RaggedBatch& batch,
                                 const FoldPlan& plan, AttentionMode mode) {
  ForwardFlops f;
  if (mode == AttentionMode::kOff || mode == AttentionMode::kScatter) {
    for (int32_t s = 0; s < batch.num_sequences(); ++s) {
      const int64_t len = batch.cu_seqlens[s + 1] - batch.cu_seqlens[s];
      f.attention_pairs += len * (len + 1) / 2;
    }
  } else {
    f.attention_pairs = tree_attention_pairs(plan);
  }
  f.rows = mode == AttentionMode::kOff ? batch.num_tokens() : plan.num_unique;
  const double layers = c.num_hidden_layers;
  f.matmul =
      2.0 * static_cast<double>(c.layer_matmul_params()) * layers * static_cast<double>(f.rows);
  f.attention =
      4.0 * c.head_dim * static_cast<double>(f.attention_pairs) * c.num_attention_heads * layers;
  const int64_t post_attention_params =
      static_cast<int64_t>(c.q_dim()) * c.hidden_size +
      3 * static_cast<int64_t>(c.hidden_size) * c.intermediate_size;
  f.last_layer_skipped = 2.0 * static_cast<double>(post_attention_params) *
                         static_cast<double>(f.rows - batch.num_sequences());
  return f;
}

}  // namespace radix
