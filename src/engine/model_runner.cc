#include "engine/model_runner.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "core/fold_plan.h"

namespace radix::engine {

ModelRunner::ModelRunner(std::unique_ptr<Model> model, AttentionMode mode, std::string device,
                         PrefixCacheConfig cache)
    : model_(std::move(model)), mode_(mode), device_(std::move(device)) {
  if (!model_) throw std::invalid_argument("model runner: null model");
  const ModelInfo& info = model_->info();
  // Cached rows are absent from later batches: only a causal model with a last-token head can
  // skip them (mean pooling reads every row).
  const bool usable =
      info.config.causal && info.pooling != "mean" && model_->backend().supports_prefix_cache();
  if (cache.budget_bytes > 0 && usable) {
    cache::DevicePrefixCacheOptions o;
    o.budget_bytes = cache.budget_bytes;
    o.min_prefix_tokens = cache.min_prefix_tokens;
    o.min_hit_fraction = cache.min_hit_fraction;
    o.results = cache.results;
    o.store_whole_max_sequences = cache.store_whole_max_sequences;
    o.shared_rows_seen_twice = cache.shared_rows_seen_twice;
    cache_ = std::make_unique<cache::DevicePrefixCache>(
        model_->backend(), info.config.num_hidden_layers, info.config.num_key_value_heads,
        info.config.head_dim, o);
  }
  pad_to_multiple_ = std::max(1, cache.pad_to_multiple);
}

namespace {

bool wants_token_states(const RaggedBatch& batch) {
  return std::find(batch.token_states.begin(), batch.token_states.end(), 1) !=
         batch.token_states.end();
}

}  // namespace

std::vector<SequenceOutput> ModelRunner::run(const RaggedBatch& batch, const FoldPlan& plan) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  Clock::time_point forward_end = start;
  timings_ = {};
  const AttentionMode mode = plan.folded ? mode_ : AttentionMode::kOff;
  // The forward, timed: what the runner does before it is `prepare`, after it `finish`.
  auto timed = [&](const RaggedBatch& b, const FoldPlan& p, PrefixHook* hook) {
    const Clock::time_point forward_start = Clock::now();
    timings_.prepare_seconds = std::chrono::duration<double>(forward_start - start).count();
    double enqueue = 0;
    std::vector<SequenceOutput> out = run_plain(b, p, mode, hook, enqueue);
    forward_end = Clock::now();
    const double forward = std::chrono::duration<double>(forward_end - forward_start).count();
    timings_.enqueue_seconds = enqueue;
    timings_.wait_seconds = forward - enqueue;
    return out;
  };
  std::vector<SequenceOutput> out;
  if (!cache_ || wants_token_states(batch)) {
    // Per-token states need every row of the batch, cached or not: such a batch runs whole.
    out = timed(batch, plan, nullptr);
  } else {
    // The engine's plan decided whether to fold; the uncached rest of the batch follows it.
    FoldOptions fold;
    fold.threshold = plan.folded ? 1.0 : 0.0;
    fold.pad_to_multiple = pad_to_multiple_;
    out = cache_->run(batch, fold, timed, &plan);
  }
  timings_.finish_seconds = std::chrono::duration<double>(Clock::now() - forward_end).count();
  return out;
}

std::vector<SequenceOutput> ModelRunner::run_plain(const RaggedBatch& batch, const FoldPlan& plan,
                                                   AttentionMode mode, PrefixHook* hook,
                                                   double& enqueue_seconds) {
  ForwardOptions options;
  options.mode = mode;
  options.normalize = false;
  options.dimensions = 0;
  options.prefix = hook;
  const bool any_token_states = wants_token_states(batch);
  options.return_hidden_states = any_token_states;
  // The plan the engine built (with its padding and threshold) is the one the forward runs.
  const ForwardResult r = model_->forward(batch, plan, options);
  enqueue_seconds = r.enqueue_seconds;
  if (r.num_sequences != batch.num_sequences()) {
    throw std::runtime_error("model returned " + std::to_string(r.num_sequences) + " results for " +
                             std::to_string(batch.num_sequences()) + " sequences");
  }
  std::vector<SequenceOutput> out(r.num_sequences);
  const auto hidden = static_cast<ptrdiff_t>(model_->info().hidden_size());
  for (int32_t s = 0; s < r.num_sequences; ++s) {
    if (any_token_states && batch.token_states[s]) {
      out[s].assign(r.hidden_states.begin() + batch.cu_seqlens[s] * hidden,
                    r.hidden_states.begin() + batch.cu_seqlens[s + 1] * hidden);
    } else if (r.head == HeadKind::kReranker) {
      const float yes = r.yes_no_logits[2 * static_cast<size_t>(s)];
      const float no = r.yes_no_logits[2 * static_cast<size_t>(s) + 1];
      out[s] = {r.values[s], yes - no};
    } else {
      out[s].assign(r.values.begin() + static_cast<ptrdiff_t>(s) * r.dim,
                    r.values.begin() + static_cast<ptrdiff_t>(s + 1) * r.dim);
    }
  }
  return out;
}

int32_t ModelRunner::cached_prefix_length(const std::vector<int32_t>& sequence) const {
  if (!cache_) return 0;
  std::vector<int32_t> positions(sequence.size());
  for (size_t i = 0; i < positions.size(); ++i) positions[i] = static_cast<int32_t>(i);
  return cache_->cached_prefix_length(sequence, positions);
}

RunnerCacheStats ModelRunner::cache_stats() const {
  RunnerCacheStats r;
  if (!cache_) return r;
  const cache::PrefixCacheSnapshot s = cache_->snapshot();
  r.enabled = true;
  r.budget_bytes = s.budget_bytes;
  r.bytes = s.bytes;
  r.nodes = s.nodes;
  r.evicted_nodes = s.evicted_nodes;
  r.lookup_tokens = s.lookup_tokens;
  r.hit_tokens = s.hit_tokens;
  r.result_hits = s.result_hits;
  return r;
}

RunnerRecordings ModelRunner::recordings() const {
  const RecordingCounters c = model_->recording_counters();
  return RunnerRecordings{model_->backend().supports_recording(), c.recorded, c.replayed};
}

FoldOptions fold_options_for(AttentionMode mode, double threshold, int32_t pad_to_multiple) {
  FoldOptions fold;
  fold.threshold = mode == AttentionMode::kOff ? 0.0 : threshold;
  fold.pad_to_multiple = pad_to_multiple;
  return fold;
}

}  // namespace radix::engine
