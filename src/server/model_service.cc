#include "server/model_service.h"

#include <string>

#include "server/api_error.h"

namespace radix::server {
namespace {

using service::ServiceError;

service::TruncationRequest truncation(std::optional<bool> truncate, TruncationDirection d) {
  return {truncate, d == TruncationDirection::kLeft ? service::TruncationDirection::kLeft
                                                    : service::TruncationDirection::kRight};
}

// Runs a core call; its ServiceError becomes the matching ApiError.
template <typename Fn>
auto mapped(Fn fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const ServiceError& e) {
    throw to_api_error(e);
  }
}

service::CallContext call_context(const CallContext& ctx) { return {ctx.client_gone}; }

service::EmbedRequest core_request(const EmbedRequest& r) {
  service::EmbedRequest req;
  req.inputs.reserve(r.inputs.size());
  for (const Input& in : r.inputs) {
    req.inputs.push_back(in.is_ids ? service::Input::of_ids(in.ids)
                                   : service::Input::of_text(in.text));
  }
  req.prompt_name = r.prompt_name;
  req.truncation = truncation(r.truncate, r.truncation_direction);
  req.dimensions = r.dimensions;
  req.normalize = r.normalize;
  return req;
}

}  // namespace

ApiError to_api_error(const ServiceError& e) {
  switch (e.kind()) {
    case ServiceError::Kind::kValidation:
      return ApiError(ErrorType::kValidation, e.what());
    case ServiceError::Kind::kTooLong:
      return ApiError(ErrorType::kValidation,
                      "each input must have less than " + std::to_string(e.max_tokens) +
                          " tokens. Given: " + std::to_string(e.tokens) +
                          " (ask for \"truncate\": true or start the server with --auto-truncate)");
    case ServiceError::Kind::kTokenizer:
      return ApiError(ErrorType::kTokenizer, e.what());
    case ServiceError::Kind::kEmpty:
      return ApiError(ErrorType::kEmpty, e.what());
    case ServiceError::Kind::kShuttingDown:
      return ApiError(ErrorType::kUnhealthy, e.what());
    case ServiceError::Kind::kCancelled:
      return ApiError(ErrorType::kUnhealthy, 499, "the client closed the connection");
    case ServiceError::Kind::kWrongHead:
    case ServiceError::Kind::kBackend:
      break;
  }
  return ApiError(ErrorType::kBackend, e.what());
}

ModelService::ModelService(service::Service& core, ModelCard card)
    : core_(core), card_(std::move(card)) {}

EmbedResult ModelService::embed(const EmbedRequest& r, const CallContext& ctx) {
  const service::EmbedRequest req = core_request(r);
  service::EmbedResult res = mapped([&] { return core_.embed(req, call_context(ctx)); });
  EmbedResult out;
  out.prompt_tokens = res.prompt_tokens;
  out.embeddings.reserve(res.embeddings.size());
  for (auto& e : res.embeddings) out.embeddings.push_back(std::move(e.values));
  return out;
}

EmbedAllResult ModelService::embed_all(const EmbedRequest& r, const CallContext& ctx) {
  const service::EmbedRequest req = core_request(r);
  service::TokenStatesResult res = mapped([&] { return core_.embed_all(req, call_context(ctx)); });
  return {std::move(res.token_states), res.prompt_tokens};
}

ScoreResult ModelService::rerank(const RerankRequest& r, const CallContext& ctx) {
  service::RerankRequest req;
  req.query = r.query;
  req.documents = r.texts;
  req.instruction = r.instruction;
  req.truncation = truncation(r.truncate, r.truncation_direction);
  const service::RerankResult res = mapped([&] { return core_.rerank(req, call_context(ctx)); });
  ScoreResult out;
  out.prompt_tokens = res.prompt_tokens;
  for (const service::RerankScore& s : res.scores) {
    out.scores.push_back(s.score);
    out.raw_scores.push_back(s.logit);
  }
  return out;
}

PredictResult ModelService::predict(const PredictRequest& r, const CallContext& ctx) {
  service::ClassifyRequest req;
  req.inputs.reserve(r.inputs.size());
  for (const auto& [a, b] : r.inputs) req.inputs.push_back({a, b});
  req.truncation = truncation(r.truncate, r.truncation_direction);
  service::ClassifyResult res = mapped([&] { return core_.classify(req, call_context(ctx)); });
  PredictResult out;
  out.labels = std::move(res.labels);
  for (auto& s : res.scores) {
    out.probabilities.push_back(std::move(s.probabilities));
    out.logits.push_back(std::move(s.logits));
  }
  return out;
}

std::vector<std::vector<TokenView>> ModelService::tokenize(const TokenizeRequest& r) {
  service::TokenizeRequest req{r.inputs, r.add_special_tokens, r.prompt_name};
  auto tokens = mapped([&] { return core_.tokenize(req); });
  std::vector<std::vector<TokenView>> out(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    out[i].reserve(tokens[i].size());
    for (auto& t : tokens[i])
      out[i].push_back({t.id, std::move(t.text), t.special, t.start, t.stop});
  }
  return out;
}

std::vector<std::string> ModelService::decode(const DecodeRequest& r) {
  return mapped([&] { return core_.decode({r.ids, r.skip_special_tokens}); });
}

}  // namespace radix::server
