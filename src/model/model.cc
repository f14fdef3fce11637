#include "model/model.h"

#include <cstdio>
#include <filesystem>
#include <sstream>
#include <stdexcept>

#include "model/demo_model.h"
#include "model/model_folder.h"
#include "model/model_impl.h"
#include "model/random_weights.h"

namespace radix {
namespace {

using std::to_string;

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, sep)) parts.push_back(part);
  return parts;
}

// A Qwen3 of a custom shape:
// "hidden=512,layers=6,heads=4,kv_heads=2,head_dim=128,intermediate=1536,vocab=16384"
DecoderConfig parse_custom_shape(const std::string& text) {
  DecoderConfig c = decoder_preset("qwen3-0.6b");  // the real vocabulary, so workload ids fit
  c.hidden_size = c.num_hidden_layers = c.num_attention_heads = c.num_key_value_heads = 0;
  c.intermediate_size = 0;
  for (const std::string& kv : split(text, ',')) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos)
      throw std::invalid_argument("random model: expected key=value, got '" + kv + "'");
    const std::string key = kv.substr(0, eq);
    int value = 0;
    try {
      size_t used = 0;
      value = std::stoi(kv.substr(eq + 1), &used);
      if (used != kv.size() - eq - 1) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      throw std::invalid_argument("random model: '" + kv + "' needs an integer value");
    }
    if (key == "hidden")
      c.hidden_size = value;
    else if (key == "layers")
      c.num_hidden_layers = value;
    else if (key == "heads")
      c.num_attention_heads = value;
    else if (key == "kv_heads")
      c.num_key_value_heads = value;
    else if (key == "head_dim")
      c.head_dim = value;
    else if (key == "intermediate")
      c.intermediate_size = value;
    else if (key == "vocab")
      c.vocab_size = value;
    else
      throw std::invalid_argument("random model: unknown key '" + key + "'");
  }
  if (c.num_key_value_heads == 0) c.num_key_value_heads = c.num_attention_heads;
  validate_decoder_config(c);
  return c;
}

std::string parse_pooling(const std::string& name) {
  if (name == "lasttoken" || name == "last_token" || name == "last") return "lasttoken";
  if (name == "mean") return "mean";
  throw std::invalid_argument("unknown pooling '" + name + "' (expected lasttoken or mean)");
}

}  // namespace

AttentionMode parse_attention_mode(std::string_view name) {
  if (name == "off") return AttentionMode::kOff;
  if (name == "scatter") return AttentionMode::kScatter;
  if (name == "tree") return AttentionMode::kTree;
  throw std::invalid_argument("unknown attention mode '" + std::string(name) +
                              "' (expected off, scatter or tree)");
}

const char* attention_mode_name(AttentionMode mode) {
  switch (mode) {
    case AttentionMode::kOff:
      return "off";
    case AttentionMode::kScatter:
      return "scatter";
    case AttentionMode::kTree:
      return "tree";
  }
  return "?";
}

const char* forward_queue_name(ForwardQueue queued) {
  switch (queued) {
    case ForwardQueue::kOps:
      return "ops";
    case ForwardQueue::kRecorded:
      return "recorded";
    case ForwardQueue::kReplayed:
      return "replayed";
  }
  return "?";
}

HeadKind parse_head_kind(std::string_view name) {
  if (name == "embedding") return HeadKind::kEmbedding;
  if (name == "reranker") return HeadKind::kReranker;
  if (name == "classifier") return HeadKind::kClassifier;
  throw std::invalid_argument("unknown head '" + std::string(name) +
                              "' (expected embedding, reranker or classifier)");
}

const char* head_kind_name(HeadKind head) {
  switch (head) {
    case HeadKind::kEmbedding:
      return "embedding";
    case HeadKind::kReranker:
      return "reranker";
    case HeadKind::kClassifier:
      return "classifier";
  }
  return "?";
}

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

const ModelInfo& Model::info() const { return impl_->info; }
Backend& Model::backend() { return *impl_->backend; }
RecordingCounters Model::recording_counters() const { return impl_->recorded.counters(); }

ForwardResult Model::forward(const RaggedBatch& batch, const ForwardOptions& options) {
  return impl_->forward(batch, options);
}

ForwardResult Model::forward(const RaggedBatch& batch, const FoldPlan& plan,
                             const ForwardOptions& options) {
  return impl_->forward(batch, plan, options);
}

std::unique_ptr<Model> Model::create(ModelInfo info, const WeightSource& weights,
                                     const LoadOptions& options) {
  validate_decoder_config(info.config);
  const Family& family = family_named(info.config.family);
  if (options.head) info.head = *options.head;
  if (!options.pooling.empty()) info.pooling = parse_pooling(options.pooling);
  info.pooling = parse_pooling(info.pooling);
  const DecoderConfig& c = info.config;
  if (!options.reranker_tokens.empty()) {
    if (options.reranker_tokens.size() > 2) {
      throw std::invalid_argument("the reranker reads one or two tokens, got " +
                                  to_string(options.reranker_tokens.size()));
    }
    info.reranker_tokens = options.reranker_tokens;
  } else if (info.reranker_tokens.empty() && c.family == "qwen3" &&
             std::max(kRerankYesId, kRerankNoId) < c.vocab_size) {
    info.reranker_tokens = {kRerankYesId, kRerankNoId};  // Qwen3-Reranker's yes/no
  }
  auto impl = std::make_unique<Impl>();
  impl->backend = options.make_backend ? options.make_backend(options.backend)
                                       : create_backend(options.backend);
  if (options.backend.fp8 && !impl->backend->supports_fp8()) {
    throw std::invalid_argument("--dtype fp8: the " + impl->backend->name() +
                                " backend has no fp8 (fp8 runs on --device cuda)");
  }
  impl->family = &family;
  // Load every head the weights can serve, so a forward may ask for another head.
  WeightNeeds needs;
  bool rows_fit = !info.reranker_tokens.empty();
  for (const int32_t id : info.reranker_tokens) rows_fit = rows_fit && id >= 0 && id < c.vocab_size;
  const bool has_lm_rows =
      rows_fit && (c.tie_word_embeddings || weights.contains("lm_head.weight"));
  if (has_lm_rows || info.head == HeadKind::kReranker) needs.head_rows = info.reranker_tokens;
  if (info.head == HeadKind::kReranker && needs.head_rows.empty()) {
    throw std::runtime_error("the reranker head needs its tokens: " + c.family +
                             " models have no default (--reranker-tokens yes,no or one token)");
  }
  needs.classifier =
      (c.num_labels > 0 && weights.contains("score.weight")) || info.head == HeadKind::kClassifier;
  needs.fp8_projections = options.backend.fp8;
  impl->weights = load_decoder_weights(c, weights, *impl->backend, needs);
  if (!c.causal) {
    std::fprintf(stderr,
                 "radix: %s (%s) is bidirectional: attention sees the whole sequence and prefix "
                 "dedup is off (every mode runs unfolded)\n",
                 info.spec.c_str(), c.family.c_str());
  }
  impl->info = std::move(info);
  if (options.max_batch_tokens > 0) {
    const int64_t n = options.max_batch_tokens;
    impl->arena.reserve(*impl->backend, impl->info.config, n, n, 1,
                        std::max<int64_t>(2, impl->info.config.num_labels));
  }
  return std::unique_ptr<Model>(new Model(std::move(impl)));
}

std::unique_ptr<Model> Model::load(const std::string& spec, const LoadOptions& options) {
  if (spec == "demo") {
    return create(demo_model_info(), RandomWeights(demo_model_info().config, kDemoSeed), options);
  }
  if (spec.rfind("random:", 0) == 0) {
    std::string shape = spec.substr(7);
    LoadOptions opts = options;
    for (const char* head : {":embedding", ":reranker", ":classifier"}) {
      const std::string suffix(head);
      if (shape.size() > suffix.size() &&
          shape.compare(shape.size() - suffix.size(), suffix.size(), suffix) == 0) {
        opts.head = parse_head_kind(suffix.substr(1));
        shape.resize(shape.size() - suffix.size());
      }
    }
    ModelInfo info;
    info.spec = spec;
    info.config =
        shape.find('=') != std::string::npos ? parse_custom_shape(shape) : decoder_preset(shape);
    if (opts.head == HeadKind::kClassifier) {
      info.config.num_labels = 2;
      info.config.architectures = {info.config.family + "ForSequenceClassification"};
    }
    info.head = opts.head.value_or(HeadKind::kEmbedding);
    info.prompts["query"] =
        "Instruct: Given a web search query, retrieve relevant passages that answer the query\n"
        "Query:";
    const RandomWeights weights(info.config, options.seed);
    return create(std::move(info), weights, opts);
  }
  if (!std::filesystem::is_directory(spec)) {
    throw std::runtime_error("model '" + spec +
                             "' is neither a folder nor demo nor random:<shape> (e.g. "
                             "random:qwen3-0.6b, random:mistral-7b)");
  }
  ModelInfo info = read_model_folder(spec, !options.reranker_tokens.empty());
  SafetensorsWeights weights(spec, info.config);
  return create(std::move(info), weights, options);
}

}  // namespace radix
