// The BatchRunner over a radix::Model: one per device, owned by that device's engine worker.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/fold_plan.h"
#include "engine/batch_runner.h"
#include "model/model.h"

namespace radix::engine {

// Outputs per sequence, by head:
//   embedding:  the pooled hidden state, neither truncated nor normalised (requests in one batch
//               may ask for different dimensions and normalisation; the server applies them);
//   reranker:   {score, logit(yes) - logit(no)};
//   classifier: the logits.
class ModelRunner : public BatchRunner {
 public:
  // `mode` is used when the engine's fold plan decided to fold; otherwise the batch runs `off`
  // (the --radix-threshold decision). The forward runs the engine's plan as built: for `mode`
  // off, give the engine a threshold of 0 (see fold_options_for), since off cannot run a folded
  // plan.
  ModelRunner(std::unique_ptr<Model> model, AttentionMode mode, std::string device);

  std::vector<SequenceOutput> run(const RaggedBatch& batch, const FoldPlan& plan) override;
  std::string device() const override { return device_; }

  Model& model() { return *model_; }

 private:
  std::unique_ptr<Model> model_;
  AttentionMode mode_;
  std::string device_;
};

// The engine's fold options for an attention mode: `off` never folds, whatever the threshold.
FoldOptions fold_options_for(AttentionMode mode, double threshold, int32_t pad_to_multiple);

}  // namespace radix::engine
