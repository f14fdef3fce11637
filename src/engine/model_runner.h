// The BatchRunner over a radix::Model: one per device, owned by that device's engine worker.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cache/device_prefix_cache.h"
#include "core/fold_plan.h"
#include "engine/batch_runner.h"
#include "model/model.h"

namespace radix::engine {

// Outputs per sequence, by head:
//   embedding:  the pooled hidden state, neither truncated nor normalised (requests in one batch
//               may ask for different dimensions and normalisation; the server applies them);
//   reranker:   {score, logit(yes) - logit(no)};
//   classifier: the logits.
// The runner's prefix cache (docs/prefix_cache.md). budget_bytes 0: off.
struct PrefixCacheConfig {
  int64_t budget_bytes = 0;
  int32_t min_prefix_tokens = cache::kDefaultMinPrefixTokens;
  // A batch reads its hits only when they skip at least this fraction of its unique rows.
  double min_hit_fraction = cache::kDefaultMinHitFraction;
  bool results = true;          // the result cache for exact repeats
  int32_t pad_to_multiple = 1;  // the engine's padding, for the plans of the uncached rows
  // Batches of at most this many sequences store them whole, larger ones only what they share.
  int32_t store_whole_max_sequences = cache::kDefaultStoreWholeMaxSequences;
  // Larger ones store a shared row only on its second sighting (false: on the first).
  bool shared_rows_seen_twice = true;
};

class ModelRunner : public BatchRunner {
 public:
  // `mode` is used when the engine's fold plan decided to fold; otherwise the batch runs `off`
  // (the --radix-threshold decision). The forward runs the engine's plan as built: for `mode`
  // off, give the engine a threshold of 0 (see fold_options_for), since off cannot run a folded
  // plan.
  // With a cache budget, the runner keeps this device's prefix cache, when the model can use one
  // (causal, last-token pooling) and the backend implements its ops; prefix_cache() says.
  ModelRunner(std::unique_ptr<Model> model, AttentionMode mode, std::string device,
              PrefixCacheConfig cache = {});

  std::vector<SequenceOutput> run(const RaggedBatch& batch, const FoldPlan& plan) override;
  std::string device() const override { return device_; }
  int32_t cached_prefix_length(const std::vector<int32_t>& sequence) const override;
  RunnerCacheStats cache_stats() const override;
  RunnerRecordings recordings() const override;
  RunTimings last_timings() const override { return timings_; }

  Model& model() { return *model_; }
  // nullptr when the runner has no cache.
  const cache::DevicePrefixCache* prefix_cache() const { return cache_.get(); }

 private:
  // `enqueue_seconds`: the forward's host time until its device work was queued.
  std::vector<SequenceOutput> run_plain(const RaggedBatch& batch, const FoldPlan& plan,
                                        AttentionMode mode, PrefixHook* hook,
                                        double& enqueue_seconds);

  std::unique_ptr<Model> model_;
  std::unique_ptr<cache::DevicePrefixCache> cache_;
  int32_t pad_to_multiple_ = 1;
  RunTimings timings_;  // of the last run()
  AttentionMode mode_;
  std::string device_;
};

// The engine's fold options for an attention mode: `off` never folds, whatever the threshold.
FoldOptions fold_options_for(AttentionMode mode, double threshold, int32_t pad_to_multiple);

}  // namespace radix::engine
