// The fold plan: a ragged batch folded into a prefix trie (RadixMLP, arXiv 2601.15013).
//
// Two flat tokens share a compact row iff their sequences agree on every (token, position) pair
// from the start up to and including them. Rows are in DFS pre-order, so parent < child and the
// subtree of row k is the contiguous range [k, subtree_end[k]). Tree attention relies on this:
// row k is visible to query row q iff k <= q < subtree_end[k].
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace radix {

struct FoldOptions {
  // Pad the number of compact rows up to a multiple of this (>= 1). Padding rows hold id 0,
  // position 0, parent -1, subtree_end row+1 and gather -1; no flat token scatters to them.
  int32_t pad_to_multiple = 1;
  // Use the compact layout only if unique/total < threshold. 1.0 (or more) always folds, 0 never
  // does. When not folded, the plan is the identity layout: one row per flat token, in flat order.
  double threshold = 1.0;
};

struct FoldPlan {
  // Per compact row (size num_rows, padding included).
  std::vector<int32_t> ids;
  std::vector<int32_t> positions;
  std::vector<int32_t> parent;       // -1 for a root
  std::vector<int32_t> subtree_end;  // one past the last row of this row's subtree
  std::vector<int32_t> gather;       // compact row -> first flat occurrence (-1 for padding)
  // Per flat token: its compact row.
  std::vector<int32_t> scatter;
  // Per sequence, in input order: the compact row of its last token.
  std::vector<int32_t> last_rows;

  int64_t num_tokens = 0;  // flat tokens in the batch
  int64_t num_unique = 0;  // unique trie nodes (independent of whether the plan folded)
  int32_t num_rows = 0;    // compact rows actually laid out, padding included
  bool folded = false;     // false: identity layout (threshold said no)

  double compression_ratio() const {
    return num_tokens == 0 ? 1.0
                           : static_cast<double>(num_unique) / static_cast<double>(num_tokens);
  }
  int32_t num_sequences() const { return static_cast<int32_t>(last_rows.size()); }
};

// Builds the plan for a ragged batch: ids and positions have one entry per flat token, cu_seqlens
// has num_sequences + 1 entries starting at 0. Throws std::invalid_argument on malformed input.
FoldPlan build_fold_plan(std::span<const int32_t> ids, std::span<const int32_t> positions,
                         std::span<const int32_t> cu_seqlens, const FoldOptions& options = {});

// Same, reusing the output buffers of `plan` (for callers that fold batch after batch).
void build_fold_plan(std::span<const int32_t> ids, std::span<const int32_t> positions,
                     std::span<const int32_t> cu_seqlens, const FoldOptions& options,
                     FoldPlan& plan);

// Folds a batch whose sequences come in consecutive groups that must never share a row (the
// prefix cache: equal suffixes after different cached prefixes have different histories).
// group_starts: [num_groups + 1] sequence indices from 0 to num_sequences, non-decreasing. Each
// group folds on its own and the groups' rows follow one another, so the plan stays in DFS
// pre-order (each group a forest of its own); num_unique counts rows per group. The threshold
// applies to the whole batch; when it says no, the plan is the identity layout (which shares
// nothing anyway). One group gives build_fold_plan's plan.
FoldPlan build_grouped_fold_plan(std::span<const int32_t> ids, std::span<const int32_t> positions,
                                 std::span<const int32_t> cu_seqlens,
                                 std::span<const int32_t> group_starts,
                                 const FoldOptions& options = {});

}  // namespace radix
