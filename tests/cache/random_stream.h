// Random request streams for the prefix cache's exactness tests (CPU: prefix_cache_forward_test.cc
// here; GPU: tests/backend/cuda/prefix_cache_forward_test.cc).
#pragma once

#include <random>
#include <vector>

#include "core/ragged_batch.h"

namespace radix::cache_testing {

// A stream of small batches: a few shared prefixes (longer than the minimum), own suffixes,
// exact repeats, extensions and prefixes of earlier sequences, and unrelated short sequences.
// min_prefix..max_prefix: the shared prefixes' lengths.
inline std::vector<RaggedBatch> random_stream(uint32_t seed, int batches, int vocab,
                                              int min_prefix = 10, int max_prefix = 24) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> tok(1, vocab - 1), pick(0, 5), nseq(1, 3);
  std::vector<std::vector<int32_t>> prefixes;
  for (int p = 0; p < 3; ++p) {
    std::vector<int32_t> s(std::uniform_int_distribution<int>(min_prefix, max_prefix)(rng));
    for (int32_t& t : s) t = tok(rng);
    prefixes.push_back(s);
  }
  std::vector<std::vector<int32_t>> seen;
  std::vector<RaggedBatch> stream;
  for (int b = 0; b < batches; ++b) {
    RaggedBatch batch;
    for (int n = nseq(rng); n > 0; --n) {
      std::vector<int32_t> s;
      const int kind = pick(rng);
      if (kind <= 2) {
        s = prefixes[std::uniform_int_distribution<size_t>(0, prefixes.size() - 1)(rng)];
        for (int i = std::uniform_int_distribution<int>(1, 6)(rng); i > 0; --i) {
          s.push_back(tok(rng));
        }
      } else if (kind == 3 && !seen.empty()) {  // an exact repeat
        s = seen[std::uniform_int_distribution<size_t>(0, seen.size() - 1)(rng)];
      } else if (kind == 4 && !seen.empty()) {  // a prefix or an extension of an earlier one
        s = seen[std::uniform_int_distribution<size_t>(0, seen.size() - 1)(rng)];
        if (pick(rng) < 3) {
          s.resize(std::uniform_int_distribution<size_t>(1, s.size())(rng));
        } else {
          s.push_back(tok(rng));
        }
      } else {
        for (int i = std::uniform_int_distribution<int>(1, 5)(rng); i > 0; --i) {
          s.push_back(tok(rng));
        }
      }
      seen.push_back(s);
      batch.add_sequence(s);
    }
    stream.push_back(batch);
  }
  return stream;
}

}  // namespace radix::cache_testing
