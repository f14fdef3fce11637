// The model API: load a decoder model of a supported family (Qwen3, Mistral, Qwen2, Llama, Gemma,
// Gemma2: docs/models.md) from a Hugging Face folder, the built-in `demo`, or random weights of a
// real shape, onto a backend, and run the forward on a ragged batch.
//
// Thread-compatible: one Model is used by one thread at a time (a worker owns its Model); distinct
// Models may run concurrently. The forward folds the batch (src/core/fold_plan.h), runs every
// layer on the compact rows in the requested attention mode, and applies the head to the last
// token of each sequence (or, for mean pooling, to all of them). Bidirectional models (is_causal
// false) are never folded: every mode runs as `off` with bidirectional attention.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backend/backend.h"
#include "core/ragged_batch.h"
#include "model/decoder_config.h"
#include "model/rerank_template.h"
#include "model/weight_source.h"

namespace radix {

struct FoldPlan;   // core/fold_plan.h
class PrefixHook;  // model/prefix_hook.h

// How attention treats the folded batch; all three give the same results.
enum class AttentionMode : uint8_t {
  kOff,      // no dedup: one row per token, varlen causal attention
  kScatter,  // position-wise ops on trie rows; q/k/v scattered to tokens for varlen attention
  kTree,     // everything on trie rows; attention with the interval mask (the default)
};
AttentionMode parse_attention_mode(std::string_view name);  // "off" | "scatter" | "tree"
const char* attention_mode_name(AttentionMode mode);

enum class HeadKind : uint8_t {
  kEmbedding,   // last-token pooling, optional L2 normalisation and Matryoshka truncation
  kReranker,    // sigmoid(logit(yes) - logit(no)), or sigmoid(logit(token)), from LM-head rows
  kClassifier,  // score.weight logits (sequence-classification conversions)
};
HeadKind parse_head_kind(std::string_view name);  // "embedding" | "reranker" | "classifier"
const char* head_kind_name(HeadKind head);

// Token ids of the reranker's answer words in the Qwen3 vocabulary (Qwen3-Reranker's default).
inline constexpr int32_t kRerankYesId = 9693;
inline constexpr int32_t kRerankNoId = 2152;

// What the model folder says beyond the weights.
struct ModelInfo {
  std::string spec;  // as loaded: a folder path, "demo" or "random:qwen3-0.6b"
  DecoderConfig config;
  HeadKind head = HeadKind::kEmbedding;  // default head
  std::string pooling = "lasttoken";     // "lasttoken" or "mean": 1_Pooling/config.json
  // The reranker's LM-head rows: (yes, no) -> sigmoid(yes - no), or one token -> sigmoid(logit).
  // Qwen3 models default to Qwen3-Reranker's pair; other families have none unless given
  // (LoadOptions::reranker_tokens).
  std::vector<int32_t> reranker_tokens;
  // The reranker's prompt template from the folder's radix_rerank_template.json (unset: none;
  // the service then uses Qwen3-Reranker's for a Qwen3 model, or a --rerank-template).
  std::optional<RerankTemplate> rerank_template;
  // config_sentence_transformers.json: prompt name -> prefix (e.g. "query" -> "Instruct: ...").
  std::map<std::string, std::string> prompts;
  std::string default_prompt_name;  // empty when none
  // The tokenizer: a tokenizer.json path in the folder, or inline JSON (the demo model).
  std::string tokenizer_path;
  std::string tokenizer_json;

  int32_t max_positions() const { return config.max_position_embeddings; }
  int32_t vocab_size() const { return config.vocab_size; }
  int32_t hidden_size() const { return config.hidden_size; }
  // Prefix dedup (folding) is exact for causal attention only; bidirectional models run unfolded.
  bool dedup() const { return config.causal; }
};

struct LoadOptions {
  BackendOptions backend;                // device and threads
  std::optional<HeadKind> head;          // override the folder's default head
  uint64_t seed = 0;                     // random weights: the seed of every tensor's stream
  int64_t max_batch_tokens = 0;          // pre-size the activation arena (0: grow on demand)
  std::string pooling;                   // override the folder's pooling: "lasttoken" or "mean"
  std::vector<int32_t> reranker_tokens;  // override the reranker's token ids (1 or 2)
  // Tests: makes the backend in place of create_backend(backend), e.g. one wrapped to observe or
  // record its ops. Empty: create_backend.
  std::function<std::unique_ptr<Backend>(const BackendOptions&)> make_backend;
};

struct ForwardOptions {
  AttentionMode mode = AttentionMode::kTree;
  std::optional<HeadKind> head;  // default: ModelInfo::head
  bool normalize = true;         // embeddings: L2-normalise (after truncation)
  int32_t dimensions = 0;        // embeddings: keep the first N dimensions (0: all)
  // Tests and debugging: also return the final-normed hidden state of every token.
  bool return_hidden_states = false;
  // The prefix cache's attention (src/cache): the batch continues cached prefixes. Last-token
  // heads only (no mean pooling, no hidden states: the cached rows are not in the batch).
  PrefixHook* prefix = nullptr;
  // A tree batch of up to RecordedForwards::max_rows rows, with a last-token head and no prefix
  // hook, on a backend that records (CUDA): pad it to its bucket of rows and replay that bucket's
  // recorded forward (docs/cuda.md "Recorded forwards"). Results are those of the padded batch
  // run op by op, bit for bit. false: always op by op.
  bool record = true;
};

struct RecordingCounters {
  int64_t recorded = 0;  // forwards recorded (each then replayed once)
  int64_t replayed = 0;  // forwards replayed from an earlier recording
  int64_t held = 0;      // recordings held now
};

// How a forward's device work was queued.
enum class ForwardQueue : uint8_t {
  kOps,       // op by op
  kRecorded,  // recorded (its bucket's first recording) and replayed
  kReplayed,  // its bucket's recording replayed
};
const char* forward_queue_name(ForwardQueue queued);  // "ops", "recorded", "replayed"

struct ForwardResult {
  HeadKind head = HeadKind::kEmbedding;
  int32_t num_sequences = 0;
  // [num_sequences, dim], in input order: embeddings (dim = hidden or `dimensions`), reranker
  // scores (dim = 1), or classifier logits (dim = num_labels).
  int32_t dim = 0;
  std::vector<float> values;
  // reranker: [num_sequences, 2] as (yes, no); with one token, (logit, 0), so that
  // sigmoid(yes - no) is the score either way. Gemma2's final soft-cap is applied.
  std::vector<float> yes_no_logits;
  std::vector<float> hidden_states;  // if asked: [num_tokens, hidden] in flat order
  int64_t num_tokens = 0;            // flat tokens in the batch
  // Rows of the batch's plan (compact or flat); a recorded forward computes on padding past them.
  int64_t num_rows = 0;
  ForwardQueue queued = ForwardQueue::kOps;
  // Host seconds from the call until the layers' device work was all queued (the rest of the
  // call is the head and the wait for the device's results): the server's batch phases.
  double enqueue_seconds = 0;
};

class Model {
 public:
  // `spec` is a Hugging Face folder, "demo", or "random:<shape>" (qwen3-0.6b|4b|8b, mistral-7b,
  // qwen2-7b, llama3-8b, gemma2-9b; add ":reranker" for a reranker head, e.g.
  // "random:qwen3-0.6b:reranker"). Throws std::runtime_error with a clear
  // message for a missing, corrupt or unsupported model.
  static std::unique_ptr<Model> load(const std::string& spec, const LoadOptions& options = {});
  // Builds a model from explicit parts (tests, formula weights). Checks every tensor's shape.
  static std::unique_ptr<Model> create(ModelInfo info, const WeightSource& weights,
                                       const LoadOptions& options = {});
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelInfo& info() const;
  Backend& backend();
  // Forwards queued as recordings since load (docs/cuda.md "Recorded forwards"); any thread.
  RecordingCounters recording_counters() const;

  // Runs the batch. Throws std::invalid_argument for a malformed batch, a token id outside the
  // vocabulary or a position beyond max_positions, and for a head the weights cannot serve.
  ForwardResult forward(const RaggedBatch& batch, const ForwardOptions& options = {});
  // Runs the batch on a fold plan already built for it (the engine builds one per batch, with its
  // padding and threshold): `plan` must come from build_fold_plan over this batch's ids,
  // positions and cu_seqlens (checked). kOff needs an unfolded plan; kScatter and kTree take
  // either (an unfolded plan is the identity layout, one row per token).
  // (No default for `options`: forward(batch, {}) stays the call above.)
  ForwardResult forward(const RaggedBatch& batch, const FoldPlan& plan,
                        const ForwardOptions& options);

 private:
  struct Impl;
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace radix
