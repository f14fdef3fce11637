// The InferenceService over radix's library core (service/service.h): converts the HTTP request
// structs into the core's requests and its typed results back, and maps the core's errors to
// ApiError (status codes and TEI's wording). Tokens, prompts, templates and truncation are the
// core's business; nothing here touches a tokenizer or the engine.
#pragma once

#include <vector>

#include "server/api_error.h"
#include "server/inference_service.h"
#include "service/service.h"

namespace radix::server {

class ModelService : public InferenceService {
 public:
  // `core` must outlive this adapter. `card` is reported as is (the caller fills device, limits,
  // warm-up time).
  ModelService(service::Service& core, ModelCard card);

  const ModelCard& card() const override { return card_; }
  ModelCard& mutable_card() { return card_; }
  bool healthy() const override { return core_.accepting(); }

  EmbedResult embed(const EmbedRequest& request, const CallContext& ctx) override;
  EmbedAllResult embed_all(const EmbedRequest& request, const CallContext& ctx) override;
  ScoreResult rerank(const RerankRequest& request, const CallContext& ctx) override;
  PredictResult predict(const PredictRequest& request, const CallContext& ctx) override;
  std::vector<std::vector<TokenView>> tokenize(const TokenizeRequest& request) override;
  std::vector<std::string> decode(const DecodeRequest& request) override;

 private:
  service::Service& core_;
  ModelCard card_;
};

// The core's error as the HTTP layer reports it (TEI's messages for over-long inputs, 499 for a
// client that went away, 424 for a route the model cannot serve).
ApiError to_api_error(const service::ServiceError& e);

}  // namespace radix::server
