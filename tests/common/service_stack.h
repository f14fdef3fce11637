// The library core over the demo model for the service and server tests: an engine with one CPU
// runner, a Service on it, and the same weights loaded again to run directly (the reference).
#pragma once

#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "engine/engine.h"
#include "engine/model_runner.h"
#include "model/model.h"
#include "service/service.h"
#include "service/tokenizer_loader.h"

namespace radix::service {

struct Stack {
  // info_override: the card the Service sees (default: the model's own); tokenizer: default demo.
  explicit Stack(HeadKind head, ServiceOptions options = {}, ModelInfo info_override = {},
                 const Tokenizer* tokenizer = nullptr) {
    LoadOptions load;
    load.head = head;
    load.backend.threads = 2;
    auto model = Model::load("demo", load);
    info = info_override.spec.empty() ? model->info() : info_override;
    std::vector<std::unique_ptr<engine::BatchRunner>> runners;
    runners.push_back(
        std::make_unique<engine::ModelRunner>(std::move(model), AttentionMode::kTree, "cpu"));
    engine::EngineOptions engine_options;
    engine_options.limits.max_batch_tokens = 1 << 16;
    engine = std::make_unique<engine::Engine>(std::move(runners), engine_options);
    if (options.max_input_length == 0) options.max_input_length = 256;
    options.tokenization_workers = 2;
    service = std::make_unique<Service>(info, tokenizer ? *tokenizer : load_tokenizer("demo"),
                                        *engine, options);
    reference = Model::load("demo", load);
  }
  ModelInfo info;
  std::unique_ptr<engine::Engine> engine;
  std::unique_ptr<Service> service;
  std::unique_ptr<Model> reference;  // the same weights, run directly
};

// The kind of ServiceError fn throws, or nullopt when it throws none.
template <typename Fn>
std::optional<ServiceError::Kind> kind_of(Fn fn) {
  try {
    fn();
  } catch (const ServiceError& e) {
    return e.kind();
  }
  return std::nullopt;
}

}  // namespace radix::service
