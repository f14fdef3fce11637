#include "engine/model_runner.h"

#include <algorithm>
#include <stdexcept>

#include "core/fold_plan.h"

namespace radix::engine {

ModelRunner::ModelRunner(std::unique_ptr<Model> model, AttentionMode mode, std::string device)
    : model_(std::move(model)), mode_(mode), device_(std::move(device)) {
  if (!model_) throw std::invalid_argument("model runner: null model");
}

std::vector<SequenceOutput> ModelRunner::run(const RaggedBatch& batch, const FoldPlan& plan) {
  ForwardOptions options;
  options.mode = plan.folded ? mode_ : AttentionMode::kOff;
  options.normalize = false;
  options.dimensions = 0;
  const bool any_token_states = std::find(batch.token_states.begin(), batch.token_states.end(),
                                          1) != batch.token_states.end();
  options.return_hidden_states = any_token_states;
  // The plan the engine built (with its padding and threshold) is the one the forward runs.
  const ForwardResult r = model_->forward(batch, plan, options);
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

FoldOptions fold_options_for(AttentionMode mode, double threshold, int32_t pad_to_multiple) {
  FoldOptions fold;
  fold.threshold = mode == AttentionMode::kOff ? 0.0 : threshold;
  fold.pad_to_multiple = pad_to_multiple;
  return fold;
}

}  // namespace radix::engine
