// radix's library core: turns user requests (texts or ids, prompts or instructions, truncation,
// dimensions, normalisation, a reranker's query and documents) into token sequences, runs them
// on the engine (which batches them with other callers' work and folds shared prefixes), and
// shapes the outputs into typed results. The HTTP server, the CLI and the Python package all call
// this one class, so they give the same numbers for the same input.
//
// Thread-safe: any number of threads may call it at once; their work lands in shared batches.
// No HTTP, JSON or status codes here: errors are ServiceError with a kind (types.h).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/rerank_template.h"
#include "service/types.h"

namespace radix {
struct ModelInfo;
class Tokenizer;
namespace engine {
class Engine;
}
}  // namespace radix

namespace radix::service {

struct ServiceOptions {
  bool auto_truncate = false;    // truncate over-long inputs unless a request says otherwise
  int32_t max_input_length = 0;  // tokens per input (0: the model's max positions)
  // The prompt for requests that name none (TEI's --default-prompt-name / --default-prompt; at
  // most one of the two). Neither: the model's own default_prompt_name, if it has one.
  std::optional<std::string> default_prompt_name;
  std::optional<std::string> default_prompt;
  std::string default_rerank_instruction;  // empty: the rerank template's
  // The reranker's prompt template (--rerank-template); unset: the model folder's
  // radix_rerank_template.json, else Qwen3-Reranker's for a Qwen3 model, else none (the service
  // loads, and every rerank call is a kWrongHead error saying how to give one).
  std::optional<RerankTemplate> rerank_template;
  size_t tokenization_workers = 1;                      // threads that tokenize requests (>= 1)
  std::function<void(double seconds)> on_tokenization;  // metrics hook: one call per request
};

class Service {
 public:
  // `engine` must outlive the service; its runners must run `info`'s model. Throws
  // std::invalid_argument for options that cannot work (an unknown default prompt name, a
  // reranker template longer than max_input_length, ...).
  Service(const ModelInfo& info, const Tokenizer& tokenizer, engine::Engine& engine,
          ServiceOptions options);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  const ModelSummary& summary() const;
  bool accepting() const;  // false once the engine is shutting down

  // Every result is checked finite: a NaN or Inf from the model is a kBackend error naming the
  // input, never a number handed on.
  EmbedResult embed(const EmbedRequest& request, const CallContext& ctx = {});
  // Embedding models only: the same sequences as embed(), each token's final hidden state.
  TokenStatesResult embed_all(const EmbedRequest& request, const CallContext& ctx = {});
  RerankResult rerank(const RerankRequest& request, const CallContext& ctx = {});
  ClassifyResult classify(const ClassifyRequest& request, const CallContext& ctx = {});
  // Runs sequences that rerank_sequences made (the corpus pipeline tokenizes and orders them
  // itself); checks the ids against the vocabulary only.
  RerankResult rerank_ids(std::vector<std::vector<int32_t>> sequences, const CallContext& ctx = {});
  std::vector<std::vector<Token>> tokenize(const TokenizeRequest& request) const;
  std::vector<std::string> decode(const DecodeRequest& request) const;

  // The token sequences a request becomes, without running them (tests, the CLI's --ids).
  std::vector<std::vector<int32_t>> embed_sequences(const EmbedRequest& request) const;
  std::vector<std::vector<int32_t>> rerank_sequences(const RerankRequest& request) const;
  std::vector<std::vector<int32_t>> classify_sequences(const ClassifyRequest& request) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace radix::service
