#include "model/flops.h"

#include <algorithm>
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

namespace {

// Keys a query at 0-based position p sees: p + 1, or at most `window` (0: no window).
int64_t visible_keys(int64_t p, int32_t window) {
  return window > 0 ? std::min<int64_t>(p + 1, window) : p + 1;
}

}  // namespace

ForwardFlops count_forward_flops(const DecoderConfig& c, const RaggedBatch& batch,
                                 const FoldPlan& plan, AttentionMode mode) {
  ForwardFlops f;
  int64_t window_pairs = 0;  // the same, on the layers with a sliding window
  if (mode == AttentionMode::kOff || mode == AttentionMode::kScatter) {
    for (int32_t s = 0; s < batch.num_sequences(); ++s) {
      const int64_t len = batch.cu_seqlens[s + 1] - batch.cu_seqlens[s];
      f.attention_pairs += len * (len + 1) / 2;
      for (int64_t p = 0; c.sliding_window > 0 && p < len; ++p) {
        window_pairs += visible_keys(p, c.sliding_window);
      }
    }
  } else {
    f.attention_pairs = tree_attention_pairs(plan);
    for (int64_t r = 0; c.sliding_window > 0 && r < plan.num_unique; ++r) {
      window_pairs += visible_keys(plan.positions[r], c.sliding_window);
    }
  }
  f.rows = mode == AttentionMode::kOff ? batch.num_tokens() : plan.num_unique;
  const double layers = c.num_hidden_layers;
  f.matmul =
      2.0 * static_cast<double>(c.layer_matmul_params()) * layers * static_cast<double>(f.rows);
  int64_t sliding_layers = 0;
  for (int32_t l = 0; l < c.num_hidden_layers; ++l) sliding_layers += c.layer_is_sliding(l);
  const double pairs = static_cast<double>(f.attention_pairs) * (layers - sliding_layers) +
                       static_cast<double>(window_pairs) * sliding_layers;
  f.attention = 4.0 * c.head_dim * pairs * c.num_attention_heads;
  const int64_t post_attention_params =
      static_cast<int64_t>(c.q_dim()) * c.hidden_size +
      3 * static_cast<int64_t>(c.hidden_size) * c.intermediate_size;
  f.last_layer_skipped = 2.0 * static_cast<double>(post_attention_params) *
                         static_cast<double>(f.rows - batch.num_sequences());
  return f;
}

}  // namespace radix
