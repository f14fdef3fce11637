#include "engine/batch_planner.h"

#include <limits>

namespace radix::engine {

std::vector<BatchSlice> plan_batch(std::span<const std::vector<int32_t>> queue,
                                   const BatchLimits& limits) {
  const int64_t max_tokens =
      limits.max_batch_tokens > 0 ? limits.max_batch_tokens : std::numeric_limits<int64_t>::max();
  const int64_t max_seqs = limits.max_batch_requests > 0 ? limits.max_batch_requests
                                                         : std::numeric_limits<int64_t>::max();
  std::vector<BatchSlice> slices;
  int64_t tokens = 0;
  int64_t seqs = 0;
  for (size_t r = 0; r < queue.size(); ++r) {
    const std::vector<int32_t>& lengths = queue[r];
    if (lengths.empty()) continue;
    int64_t request_tokens = 0;
    for (int32_t len : lengths) request_tokens += len;
    const auto request_seqs = static_cast<int64_t>(lengths.size());

    if (tokens + request_tokens <= max_tokens && seqs + request_seqs <= max_seqs) {
      slices.push_back({r, 0, static_cast<int32_t>(lengths.size())});
      tokens += request_tokens;
      seqs += request_seqs;
      continue;
    }
    const bool fits_empty_batch = request_tokens <= max_tokens && request_seqs <= max_seqs;
    if (fits_empty_batch && !slices.empty()) break;  // keep it whole: it leads the next batch

    // Too large for any batch (or alone in this one): take as many leading sequences as fit.
    // The first sequence of an empty batch is always taken so that a lone over-long sequence
    // cannot stall the queue.
    int32_t end = 0;
    while (end < static_cast<int32_t>(lengths.size())) {
      const int32_t len = lengths[end];
      const bool empty = slices.empty() && end == 0;
      if (!empty && (tokens + len > max_tokens || seqs + 1 > max_seqs)) break;
      tokens += len;
      seqs += 1;
      ++end;
    }
    if (end > 0) slices.push_back({r, 0, end});
    break;
  }
  return slices;
}

}  // namespace radix::engine
