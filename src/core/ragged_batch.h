// The contract between scheduler and backend: a flat ragged batch of token sequences.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace radix {

struct RaggedBatch {
  std::vector<int32_t> ids;            // all sequences back to back
  std::vector<int32_t> positions;      // one per token, usually 0..len-1 within each sequence
  std::vector<int32_t> cu_seqlens{0};  // num_sequences + 1 offsets, starting at 0
  // Per sequence, or empty for none: the runner returns that sequence's per-token final hidden
  // states ([len, hidden], flat) instead of its pooled output (TEI's /embed_all).
  std::vector<uint8_t> token_states;

  int32_t num_sequences() const { return static_cast<int32_t>(cu_seqlens.size()) - 1; }
  int64_t num_tokens() const { return static_cast<int64_t>(ids.size()); }

  // Appends one sequence with positions 0..len-1.
  void add_sequence(std::span<const int32_t> tokens) {
    for (size_t i = 0; i < tokens.size(); ++i) {
      ids.push_back(tokens[i]);
      positions.push_back(static_cast<int32_t>(i));
    }
    cu_seqlens.push_back(static_cast<int32_t>(ids.size()));
  }
};

}  // namespace radix
