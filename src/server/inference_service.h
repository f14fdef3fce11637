// What the HTTP routes need from the model side: the model card, and typed calls that tokenize,
// validate against the model, queue work on the engine and wait for it. The HTTP layer owns
// status codes, JSON and limits; a service implementation owns tokens and tensors. Tests plug in
// a fake.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "server/requests.h"

namespace radix::server {

struct ModelCard {
  std::string model_id;
  std::string dtype;   // "float32", "bfloat16"
  std::string device;  // "cpu", "cuda:0"
  std::string head;    // "embedding" | "reranker" | "classifier"
  std::string pooling;
  std::vector<std::string> labels;        // classifier labels, in logit order
  std::vector<std::string> prompt_names;  // from config_sentence_transformers.json
  std::string default_rerank_instruction;
  std::vector<int32_t> reranker_tokens;  // reranker: the answer token ids whose logits score
  std::string rerank_template;           // reranker: where its prompt template came from; "": none
  int32_t max_input_length = 0;
  int32_t hidden_size = 0;
  int32_t vocab_size = 0;
  int32_t tokenizer_vocab_size = 0;  // /decode's ids; 0: as vocab_size
  std::string attention_mode;
  double radix_threshold = 1.0;
  int64_t prefix_cache_mib = 0;  // per device; 0: no prefix cache (docs/prefix_cache.md)
  // Small batches may replay recorded CUDA graphs (a CUDA device, no --enforce-eager).
  bool cuda_graphs = false;
  bool auto_truncate = false;
  size_t tokenization_workers = 1;
  int64_t max_batch_tokens = 0;
  int32_t max_batch_requests = 0;
  double warmup_seconds = 0;
};

// Per call: lets a long wait notice that the client went away (its queued work is dropped).
struct CallContext {
  std::function<bool()> client_gone;
};

struct EmbedResult {
  std::vector<std::vector<float>> embeddings;  // per input, after dimensions and normalize
  int64_t prompt_tokens = 0;
};

// Per input, per token: the final-normed hidden state (TEI's /embed_all), not pooled or normalised.
struct EmbedAllResult {
  std::vector<std::vector<std::vector<float>>> token_states;
  int64_t prompt_tokens = 0;
};

struct ScoreResult {
  std::vector<float> scores;      // per text in input order: relevance in [0, 1]
  std::vector<float> raw_scores;  // the same as logits: logit(yes) - logit(no)
  int64_t prompt_tokens = 0;
};

struct PredictResult {
  std::vector<std::vector<float>> probabilities;  // per input, per label
  std::vector<std::vector<float>> logits;
  std::vector<std::string> labels;
};

struct TokenView {
  int32_t id = 0;
  std::string text;
  bool special = false;
  std::optional<size_t> start, stop;  // byte offsets into the input; unset for special tokens
};

class InferenceService {
 public:
  virtual ~InferenceService() = default;
  virtual const ModelCard& card() const = 0;
  virtual bool healthy() const = 0;

  // Each throws ApiError for bad input (422/400), a route the model cannot serve (424), shutdown
  // (503); the caller maps anything else to 424.
  virtual EmbedResult embed(const EmbedRequest& request, const CallContext& ctx) = 0;
  // Embedding models only (`normalize` and `dimensions` do not apply).
  virtual EmbedAllResult embed_all(const EmbedRequest& request, const CallContext& ctx) = 0;
  virtual ScoreResult rerank(const RerankRequest& request, const CallContext& ctx) = 0;
  virtual PredictResult predict(const PredictRequest& request, const CallContext& ctx) = 0;
  virtual std::vector<std::vector<TokenView>> tokenize(const TokenizeRequest& request) = 0;
  virtual std::vector<std::string> decode(const DecodeRequest& request) = 0;
};

}  // namespace radix::server
