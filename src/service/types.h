// The request and result types of radix's library core (service.h): what a front end (the HTTP
// server, the CLI, Python) asks for and gets back. Plain structs over the standard library, so
// bindings can mirror them one to one.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace radix::service {

enum class TruncationDirection : uint8_t { kRight, kLeft };

// One input: a text to tokenize, or token ids as they are.
struct Input {
  std::string text;
  std::vector<int32_t> ids;
  bool is_ids = false;

  static Input of_text(std::string text) { return {std::move(text), {}, false}; }
  static Input of_ids(std::vector<int32_t> ids) { return {{}, std::move(ids), true}; }
};

// Truncation of every input of a request; unset `truncate` means the service's auto_truncate.
struct TruncationRequest {
  std::optional<bool> truncate;
  TruncationDirection direction = TruncationDirection::kRight;
};

struct EmbedRequest {
  std::vector<Input> inputs;
  // At most one of the two: a prompt of the model's (config_sentence_transformers.json) by name,
  // or an instruction in Qwen3-Embedding's query format ("Instruct: {i}\nQuery:{text}"). Neither:
  // the service's default prompt. Prompts apply to texts only, never to ids.
  std::optional<std::string> prompt_name;
  std::optional<std::string> instruction;
  TruncationRequest truncation;
  std::optional<int32_t> dimensions;  // Matryoshka: keep the first N, then normalise
  bool normalize = true;
};

struct Embedding {
  std::vector<float> values;
};

struct EmbedResult {
  std::vector<Embedding> embeddings;  // per input, in order
  int64_t prompt_tokens = 0;          // tokens run, special and prompt tokens included
};

// Per input, per token: the model's final (normed) hidden state, neither pooled nor normalised
// (TEI's /embed_all). An EmbedRequest's `dimensions` and `normalize` do not apply.
struct TokenStatesResult {
  std::vector<std::vector<std::vector<float>>> token_states;  // [input][token][hidden]
  int64_t prompt_tokens = 0;
};

struct RerankRequest {
  std::string query;
  std::vector<std::string> documents;
  std::optional<std::string> instruction;  // unset: the service's default instruction
  TruncationRequest truncation;            // cuts the body; the template's ends stay whole
};

struct RerankScore {
  float score = 0;  // relevance in [0, 1]: sigmoid(logit)
  float logit = 0;  // logit("yes") - logit("no") (TEI's raw score)
};

struct RerankResult {
  std::vector<RerankScore> scores;  // per document, in input order
  int64_t prompt_tokens = 0;
};

struct ClassifyInput {
  std::string text;
  std::optional<std::string> pair;  // a second text, encoded as a pair
};

struct ClassifyRequest {
  std::vector<ClassifyInput> inputs;
  TruncationRequest truncation;
};

struct ClassifierScores {
  std::vector<float> probabilities;  // softmax over the labels (sigmoid for one label)
  std::vector<float> logits;
};

struct ClassifyResult {
  std::vector<ClassifierScores> scores;  // per input
  std::vector<std::string> labels;       // names of the columns, in logit order
  int64_t prompt_tokens = 0;
};

struct TokenizeRequest {
  std::vector<std::string> inputs;
  bool add_special_tokens = true;
  std::optional<std::string> prompt_name;  // unset: the service's default prompt
};

struct Token {
  int32_t id = 0;
  std::string text;
  bool special = false;
  std::optional<size_t> start, stop;  // byte offsets into the (prompted) input; unset if special
};

struct DecodeRequest {
  std::vector<std::vector<int32_t>> ids;
  bool skip_special_tokens = true;
};

// Per call: lets a long wait notice that the caller went away (its queued work is dropped).
struct CallContext {
  std::function<bool()> cancelled;
};

// What the service knows of its model, for /info, `radix` output and Python.
struct ModelSummary {
  std::string spec;  // as loaded: a folder, "demo", "random:..."
  std::string head;  // "embedding" | "reranker" | "classifier"
  std::string pooling;
  int32_t hidden_size = 0;
  int32_t vocab_size = 0;
  int32_t tokenizer_vocab_size = 0;  // ids decode() knows (the model's rows may be padded past it)
  int32_t max_input_length = 0;      // tokens per input, template and special tokens included
  std::vector<std::string> labels;   // classifier/reranker output names
  std::vector<std::string> prompt_names;   // sorted
  std::string default_prompt_name;         // empty when none
  std::string default_rerank_instruction;  // empty when the template takes no instruction
  std::vector<int32_t> reranker_tokens;    // the reranker's answer token ids (1 or 2)
  std::string rerank_template;             // where the template came from; empty: none
};

// Every error the service reports; `kind` says whose fault it is, the message says what.
class ServiceError : public std::runtime_error {
 public:
  enum class Kind : uint8_t {
    kValidation,    // the request asks for something the model cannot give (a bad prompt name...)
    kTooLong,       // an input is over the maximum input length and truncation was not asked for
    kTokenizer,     // the tokenizer rejected a text (invalid UTF-8...)
    kEmpty,         // an input became no tokens
    kWrongHead,     // the model's head cannot serve this call (embed on a reranker...)
    kShuttingDown,  // the engine stopped accepting work
    kCancelled,     // the caller went away before the work ran
    kBackend,       // the model failed (or produced NaN/Inf)
  };
  ServiceError(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  Kind kind() const { return kind_; }

  // kTooLong: which input, its tokens and the limit (front ends word their own hint).
  size_t input_index = 0;
  int64_t tokens = 0;
  int32_t max_tokens = 0;

 private:
  Kind kind_;
};

}  // namespace radix::service
