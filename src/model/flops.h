// The FLOP count behind "effective TFLOP/s" in docs/benchmarks.md, shared by every backend's bench:
// 2 * params * rows for the projections and MLP, plus 4 * head_dim per visible query-key pair per
// query head per layer for attention. Visible pairs are all causal pairs of each sequence for
// off/scatter, and (row, ancestor-or-self) pairs of the trie for tree.
#pragma once

#include <cstdint>

#include "core/fold_plan.h"
#include "core/ragged_batch.h"
#include "model/decoder_config.h"
#include "model/model.h"

namespace radix {

struct ForwardFlops {
  int64_t rows = 0;             // rows the projections and MLP run on
  int64_t attention_pairs = 0;  // visible (query, key) pairs per head per full-attention layer
  double matmul = 0;            // 2 * layer_matmul_params * layers * rows
  // 4 * head_dim * pairs * q_heads, summed over layers; a layer with a sliding window counts
  // only the pairs within it (a query at position p sees min(p + 1, window) keys)
  double attention = 0;
  // The forward (without hidden states) runs the last layer's o_proj and MLP on one row per
  // sequence only; docs/benchmarks.md's count includes them for every row. Negative when identical
  // sequences share rows (one row per sequence is then more than the trie's rows).
  double last_layer_skipped = 0;
  double total() const { return matmul + attention; }
  double executed() const { return total() - last_layer_skipped; }
};

// (row, ancestor-or-self) pairs of the plan's trie rows: what tree attention computes per head and
// layer (padding rows excluded; each sees only itself).
int64_t tree_attention_pairs(const FoldPlan& plan);

// `plan` must be the fold plan of `batch` (built with threshold 1, i.e. folded) for scatter and
// tree; off counts the flat tokens and their causal pairs.
ForwardFlops count_forward_flops(const DecoderConfig& config, const RaggedBatch& batch,
                                 const FoldPlan& plan, AttentionMode mode);

}  // namespace radix
