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

// A runner's prefix cache (docs/prefix_cache.md), for metrics and /info; enabled false: none.
struct RunnerCacheStats {
  bool enabled = false;
  int64_t budget_bytes = 0;
  int64_t bytes = 0;
  int64_t nodes = 0;
  int64_t evicted_nodes = 0;
  int64_t lookup_tokens = 0;
  int64_t hit_tokens = 0;
  int64_t result_hits = 0;
};

// A runner's recorded forwards (CUDA graphs), for metrics.
struct RunnerRecordings {
  bool enabled = false;  // its backend records (a CUDA device without --enforce-eager)
  int64_t recorded = 0;
  int64_t replayed = 0;
};

// One worker's state, for per-worker metrics (any thread). The queue is shared: a request waits
// in it until some worker takes it, so a worker's own depth is the batch it runs.
struct WorkerLoad {
  bool busy = false;
  int64_t running_sequences = 0;  // in the batch it runs now
  int64_t batches = 0;            // batches it took so far
  // Of those, the batches taken with a prefix of their first sequence in this worker's cache.
  int64_t prefix_routed_batches = 0;
};

// Where a runner's batch spent its time on the host (seconds), for the server's per-phase batch
// metrics: its own work before the forward (the prefix cache's lookups, plan and uploads), the
// forward's enqueueing of device work, its wait for the device's results, and its own work after
// (the cache's bookkeeping). A runner that does not measure leaves them 0.
struct RunTimings {
  double prepare_seconds = 0;
  double enqueue_seconds = 0;
  double wait_seconds = 0;
  double finish_seconds = 0;
};

class BatchRunner {
 public:
  virtual ~BatchRunner() = default;

  // Runs `batch` (with the fold plan the engine built for it) and returns exactly
  // batch.num_sequences() outputs, in batch order. Throws on failure; the engine fails the
  // requests in that batch and keeps serving.
  virtual std::vector<SequenceOutput> run(const RaggedBatch& batch, const FoldPlan& plan) = 0;

  // Where it runs, for logs and /info ("cpu", "cuda:0").
  virtual std::string device() const = 0;

  // Routing: how many leading tokens of `sequence` (positions 0..) this runner has cached. Called
  // from any engine thread while the runner may be running a batch; must be thread-safe.
  virtual int32_t cached_prefix_length(const std::vector<int32_t>& /*sequence*/) const { return 0; }
  virtual RunnerCacheStats cache_stats() const { return {}; }
  // Forwards it recorded and replayed (docs/cuda.md "Recorded forwards"); any thread.
  virtual RunnerRecordings recordings() const { return {}; }
  // The phases of the last run() (the engine's worker thread, right after it returns).
  virtual RunTimings last_timings() const { return {}; }
};

}  // namespace radix::engine
