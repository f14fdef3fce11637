// Batch formation: which pending sequences go into the next ragged batch.
//
// Pure function over the queue's remaining sequence lengths, so the packing rules are tested
// without threads: requests are taken in arrival order; a request whose remaining sequences fit
// goes in whole; one that would fit an empty batch but not the space left waits for the next
// batch (its inputs stay together); one too large for any batch is split, filling what is left.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace radix::engine {

struct BatchLimits {
  int64_t max_batch_tokens = 16384;  // flat tokens per batch (a lone longer sequence still runs)
  int32_t max_batch_requests = 0;    // sequences per batch; 0 means no limit
};

// Sequences [begin, end) of the remaining sequences of queue entry `request`.
struct BatchSlice {
  size_t request = 0;
  int32_t begin = 0;
  int32_t end = 0;
};

// queue[i] lists the token lengths of request i's sequences not yet dispatched, in order.
// Returns the slices of the next batch; empty only if every entry of the queue is empty.
std::vector<BatchSlice> plan_batch(std::span<const std::vector<int32_t>> queue,
                                   const BatchLimits& limits);

}  // namespace radix::engine
