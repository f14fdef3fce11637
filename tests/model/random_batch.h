// Random batches for the model invariance tests: sequences over a small token range, so that
// they share prefixes, with duplicates and truncated duplicates mixed in; and the same batch in a
// shuffled order.
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "core/ragged_batch.h"

namespace radix::testing {

// num_seqs sequences of 1..max_len tokens in [first_token, last_token]; about one in four is a copy
// of an earlier one, half of those cut short.
inline RaggedBatch random_batch(std::mt19937& rng, int num_seqs, int max_len, int first_token,
                                int last_token) {
  std::uniform_int_distribution<int> len(1, max_len), tok(first_token, last_token), pick(0, 3);
  RaggedBatch batch;
  std::vector<std::vector<int32_t>> seqs;
  for (int s = 0; s < num_seqs; ++s) {
    std::vector<int32_t> seq;
    if (!seqs.empty() && pick(rng) == 0) {
      seq = seqs[std::uniform_int_distribution<size_t>(0, seqs.size() - 1)(rng)];  // duplicate
      if (pick(rng) < 2) seq.resize(std::uniform_int_distribution<size_t>(1, seq.size())(rng));
    } else {
      const int l = len(rng);
      for (int i = 0; i < l; ++i) seq.push_back(tok(rng));
    }
    seqs.push_back(seq);
    batch.add_sequence(seq);
  }
  return batch;
}

// The batch's sequences in a random order; order[j] is the original index of sequence j.
inline RaggedBatch shuffled_batch(const RaggedBatch& batch, std::mt19937& rng,
                                  std::vector<int>& order) {
  order.resize(batch.num_sequences());
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  RaggedBatch shuffled;
  for (const int s : order) {
    shuffled.add_sequence(std::vector<int32_t>(batch.ids.begin() + batch.cu_seqlens[s],
                                               batch.ids.begin() + batch.cu_seqlens[s + 1]));
  }
  return shuffled;
}

}  // namespace radix::testing
