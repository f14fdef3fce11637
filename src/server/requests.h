// Typed requests of every route, parsed from JSON bodies by pure functions.
//
// Parsing checks shape and types only (what the body says); limits that depend on the model or
// the tokenizer (lengths, vocabulary, dimensions) are checked by the service. Every failure is an
// ApiError: 400 for a body that is not JSON or for empty input, 422 for everything else.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace radix::server {

enum class TruncationDirection { kRight, kLeft };

// One input: text to tokenize, or token ids given by the client.
struct Input {
  std::string text;
  std::vector<int32_t> ids;
  bool is_ids = false;
};

// Limits the parser enforces (the rest belong to the service).
struct RequestLimits {
  size_t max_client_batch_size = 32;
};

// POST /embed
struct EmbedRequest {
  std::vector<Input> inputs;
  std::optional<bool> truncate;  // unset: the server's --auto-truncate
  TruncationDirection truncation_direction = TruncationDirection::kRight;
  std::optional<std::string> prompt_name;
  bool normalize = true;
  std::optional<int32_t> dimensions;
};

// POST /v1/embeddings
enum class EncodingFormat { kFloat, kBase64 };
struct OpenAIEmbeddingsRequest {
  std::vector<Input> inputs;
  EncodingFormat encoding_format = EncodingFormat::kFloat;
  std::optional<int32_t> dimensions;
  std::string model;
  std::optional<bool> truncate;  // radix's extension, as in /embed
  TruncationDirection truncation_direction = TruncationDirection::kRight;
};

// POST /rerank
struct RerankRequest {
  std::string query;
  std::vector<std::string> texts;
  std::optional<bool> truncate;
  TruncationDirection truncation_direction = TruncationDirection::kRight;
  bool raw_scores = false;
  bool return_text = false;
  std::optional<std::string> instruction;  // unset: the model card's
};

// POST /v1/rerank (Cohere/Jina style)
struct OpenAIRerankRequest {
  std::string query;
  std::vector<std::string> documents;
  std::optional<int32_t> top_n;
  bool return_documents = false;
  std::optional<std::string> instruction;
  std::string model;
  std::optional<bool> truncate;  // radix's extension, as in /rerank
  TruncationDirection truncation_direction = TruncationDirection::kRight;
};

// POST /similarity (TEI): cosine similarity of a source sentence to each of some sentences.
struct SimilarityRequest {
  std::string source_sentence;
  std::vector<std::string> sentences;
  std::optional<bool> truncate;
  TruncationDirection truncation_direction = TruncationDirection::kRight;
  std::optional<std::string> prompt_name;
};

// POST /predict: a text or a pair of texts, or a batch of them.
struct PredictRequest {
  std::vector<std::pair<std::string, std::optional<std::string>>> inputs;
  bool batched = false;  // the response nests one level deeper for a batch
  std::optional<bool> truncate;
  TruncationDirection truncation_direction = TruncationDirection::kRight;
  bool raw_scores = false;
};

// POST /tokenize
struct TokenizeRequest {
  std::vector<std::string> inputs;
  bool add_special_tokens = true;
  std::optional<std::string> prompt_name;
};

// POST /decode
struct DecodeRequest {
  std::vector<std::vector<int32_t>> ids;
  bool skip_special_tokens = true;
};

EmbedRequest parse_embed_request(std::string_view body, const RequestLimits& limits);
OpenAIEmbeddingsRequest parse_openai_embeddings_request(std::string_view body,
                                                        const RequestLimits& limits);
RerankRequest parse_rerank_request(std::string_view body, const RequestLimits& limits);
OpenAIRerankRequest parse_openai_rerank_request(std::string_view body, const RequestLimits& limits);
// {"inputs": {"source_sentence": "...", "sentences": [...]}, ...}; the source counts towards
// --max-client-batch-size with the sentences.
SimilarityRequest parse_similarity_request(std::string_view body, const RequestLimits& limits);
PredictRequest parse_predict_request(std::string_view body, const RequestLimits& limits);
TokenizeRequest parse_tokenize_request(std::string_view body, const RequestLimits& limits);
DecodeRequest parse_decode_request(std::string_view body, const RequestLimits& limits);

}  // namespace radix::server
