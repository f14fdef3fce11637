// The seam between the engine and a model: run one ragged batch, return one output per sequence.
#pragma once

#include <string>
#include <vector>

#include "core/fold_plan.h"
#include "core/ragged_batch.h"

namespace radix::engine {

// One sequence's result: a pooled embedding, a reranker's scores or a classifier's logits; the
// meaning is the model's, the engine only moves it.
using SequenceOutput = std::vector<float>;

class BatchRunner {
 public:
  virtual ~BatchRunner() = default;

  // Runs `batch` (with the fold plan the engine built for it) and returns exactly
  // batch.num_sequences() outputs, in batch order. Throws on failure; the engine fails the
  // requests in that batch and keeps serving.
  virtual std::vector<SequenceOutput> run(const RaggedBatch& batch, const FoldPlan& plan) = 0;

  // Where it runs, for logs and /info ("cpu", "cuda:0").
  virtual std::string device() const = 0;
};

}  // namespace radix::engine
