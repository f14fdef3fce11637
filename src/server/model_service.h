// The InferenceService over the real model: tokenizes on the worker pool (prompts, the
// Qwen3-Reranker template, truncation), checks inputs against the model, queues the sequences on
// the engine, waits (dropping the work if the client hangs up) and shapes the outputs.
#pragma once

#include <future>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/worker_pool.h"
#include "model/model.h"
#include "server/inference_service.h"
#include "server/server_metrics.h"
#include "tokenizer/tokenizer.h"

namespace radix::server {

struct ServiceOptions {
  bool auto_truncate = false;
  int32_t max_input_length = 0;  // tokens per sequence (special and template tokens included)
};

class ModelService : public InferenceService {
 public:
  // `card` is reported as is (the caller fills device, limits, warm-up time).
  ModelService(const ModelInfo& info, Tokenizer tokenizer, engine::Engine& engine,
               engine::WorkerPool& tokenizers, ServerMetrics* metrics, ModelCard card,
               ServiceOptions options);

  const ModelCard& card() const override { return card_; }
  ModelCard& mutable_card() { return card_; }
  bool healthy() const override { return engine_.accepting(); }

  EmbedResult embed(const EmbedRequest& request, const CallContext& ctx) override;
  EmbedAllResult embed_all(const EmbedRequest& request, const CallContext& ctx) override;
  ScoreResult rerank(const RerankRequest& request, const CallContext& ctx) override;
  PredictResult predict(const PredictRequest& request, const CallContext& ctx) override;
  std::vector<std::vector<TokenView>> tokenize(const TokenizeRequest& request) override;
  std::vector<std::string> decode(const DecodeRequest& request) override;

  // The token ids a rerank request's i-th text becomes (prefix + body + suffix), for tests.
  std::vector<int32_t> rerank_ids(const std::string& instruction, const std::string& query,
                                  const std::string& text, bool truncate,
                                  TruncationDirection direction) const;

 private:
  // Runs `work(i)` for i in [0, n) on the tokenization pool, in chunks, and waits.
  template <typename T, typename Fn>
  std::vector<T> on_pool(size_t n, Fn work);
  std::vector<int32_t> encode_checked(const std::string& text, bool add_special, bool truncate,
                                      TruncationDirection direction) const;
  std::vector<int32_t> checked_ids(const std::vector<int32_t>& ids, bool truncate,
                                   TruncationDirection direction) const;
  const std::string& prompt_for(const std::optional<std::string>& name) const;
  engine::RequestOutputs run(std::vector<std::vector<int32_t>> sequences, const CallContext& ctx,
                             bool token_states = false);

  ModelInfo info_;
  Tokenizer tokenizer_;
  engine::Engine& engine_;
  engine::WorkerPool& pool_;
  ServerMetrics* metrics_;
  ModelCard card_;
  ServiceOptions options_;
  std::vector<int32_t> rerank_prefix_ids_, rerank_suffix_ids_;
};

}  // namespace radix::server
