#include "server/model_service.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "model/prompts.h"
#include "server/api_error.h"

namespace radix::server {
namespace {

using namespace std::chrono_literals;

Truncation truncation(bool truncate, size_t max_length, TruncationDirection direction) {
  if (!truncate) return {};
  return {max_length,
          direction == TruncationDirection::kLeft ? TruncationSide::kLeft : TruncationSide::kRight};
}

[[noreturn]] void too_long(size_t given, int32_t max) {
  throw ApiError(ErrorType::kValidation,
                 "each input must have less than " + std::to_string(max) +
                     " tokens. Given: " + std::to_string(given) +
                     " (ask for \"truncate\": true or start the server with --auto-truncate)");
}

void l2_normalize(std::vector<float>& v) {
  double sum = 0;
  for (float x : v) sum += static_cast<double>(x) * x;
  const double norm = std::max(std::sqrt(sum), 1e-12);
  for (float& x : v) x = static_cast<float>(x / norm);
}

}  // namespace

ModelService::ModelService(const ModelInfo& info, Tokenizer tokenizer, engine::Engine& engine,
                           engine::WorkerPool& tokenizers, ServerMetrics* metrics, ModelCard card,
                           ServiceOptions options)
    : info_(info),
      tokenizer_(std::move(tokenizer)),
      engine_(engine),
      pool_(tokenizers),
      metrics_(metrics),
      card_(std::move(card)),
      options_(options) {
  if (options_.max_input_length <= 0) {
    throw std::invalid_argument("model service: max_input_length must be positive");
  }
  if (info_.head == HeadKind::kReranker) {
    rerank_prefix_ids_ = tokenizer_.encode(kRerankPrefix, false).ids;
    rerank_suffix_ids_ = tokenizer_.encode(kRerankSuffix, false).ids;
    const size_t fixed = rerank_prefix_ids_.size() + rerank_suffix_ids_.size();
    if (fixed >= static_cast<size_t>(options_.max_input_length)) {
      throw std::invalid_argument("the reranker template alone (" + std::to_string(fixed) +
                                  " tokens) does not fit the maximum input length");
    }
  }
}

template <typename T, typename Fn>
std::vector<T> ModelService::on_pool(size_t n, Fn work) {
  const auto start = std::chrono::steady_clock::now();
  // Chunks let one large request use every tokenization worker.
  const size_t chunk = std::max<size_t>(1, (n + pool_.size() - 1) / pool_.size());
  std::vector<std::future<std::vector<T>>> parts;
  for (size_t begin = 0; begin < n; begin += chunk) {
    const size_t end = std::min(n, begin + chunk);
    parts.push_back(pool_.submit([&work, begin, end] {
      std::vector<T> out;
      out.reserve(end - begin);
      for (size_t i = begin; i < end; ++i) out.push_back(work(i));
      return out;
    }));
  }
  std::vector<T> all;
  all.reserve(n);
  std::exception_ptr error;
  for (auto& p : parts) {  // wait for every part (they reference `work`) before rethrowing
    try {
      for (T& t : p.get()) all.push_back(std::move(t));
    } catch (...) {
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
  if (metrics_) {
    metrics_->observe_tokenization(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return all;
}

std::vector<int32_t> ModelService::encode_checked(const std::string& text, bool add_special,
                                                  bool truncate,
                                                  TruncationDirection direction) const {
  const auto max = static_cast<size_t>(options_.max_input_length);
  std::vector<int32_t> ids;
  try {
    ids = tokenizer_.encode(text, add_special, truncation(truncate, max, direction)).ids;
  } catch (const TokenizerError& e) {
    throw ApiError(ErrorType::kTokenizer, e.what());
  }
  if (ids.size() > max) too_long(ids.size(), options_.max_input_length);
  if (ids.empty()) throw ApiError(ErrorType::kEmpty, "an input became no tokens at all");
  return ids;
}

std::vector<int32_t> ModelService::checked_ids(const std::vector<int32_t>& ids, bool truncate,
                                               TruncationDirection direction) const {
  for (int32_t id : ids) {
    if (id < 0 || id >= info_.vocab_size()) {
      throw ApiError(ErrorType::kValidation, "token id " + std::to_string(id) +
                                                 " is outside the vocabulary (size " +
                                                 std::to_string(info_.vocab_size()) + ")");
    }
  }
  const auto max = static_cast<size_t>(options_.max_input_length);
  if (ids.size() <= max) return ids;
  if (!truncate) too_long(ids.size(), options_.max_input_length);
  if (direction == TruncationDirection::kLeft) {
    return std::vector<int32_t>(ids.end() - static_cast<ptrdiff_t>(max), ids.end());
  }
  return std::vector<int32_t>(ids.begin(), ids.begin() + static_cast<ptrdiff_t>(max));
}

const std::string& ModelService::prompt_for(const std::optional<std::string>& name) const {
  static const std::string kNone;
  const std::string& key = name ? *name : info_.default_prompt_name;
  if (key.empty()) return kNone;
  auto it = info_.prompts.find(key);
  if (it == info_.prompts.end()) {
    std::string names;
    for (const auto& [k, v] : info_.prompts) names += (names.empty() ? "" : ", ") + k;
    throw ApiError(ErrorType::kValidation,
                   "prompt_name `" + key + "` is not a prompt of this model (" +
                       (names.empty() ? "it has none" : "it has: " + names) + ")");
  }
  return it->second;
}

engine::RequestOutputs ModelService::run(std::vector<std::vector<int32_t>> sequences,
                                         const CallContext& ctx, bool token_states) {
  auto cancelled = std::make_shared<std::atomic<bool>>(false);
  std::future<engine::RequestOutputs> result;
  try {
    result = engine_.submit(std::move(sequences), cancelled, token_states);
    while (result.wait_for(20ms) != std::future_status::ready) {
      if (ctx.client_gone && ctx.client_gone()) {
        cancelled->store(true);  // its queued sequences are dropped before they are batched
        throw ApiError(ErrorType::kUnhealthy, 499, "the client closed the connection");
      }
    }
    return result.get();
  } catch (const engine::EngineError& e) {
    switch (e.kind()) {
      case engine::EngineError::Kind::kShuttingDown:
        throw ApiError(ErrorType::kUnhealthy, e.what());
      case engine::EngineError::Kind::kCancelled:
        throw ApiError(ErrorType::kUnhealthy, 499, e.what());
      case engine::EngineError::Kind::kBackend:
        break;
    }
    throw ApiError(ErrorType::kBackend, e.what());
  }
}

EmbedResult ModelService::embed(const EmbedRequest& r, const CallContext& ctx) {
  if (info_.head != HeadKind::kEmbedding) {
    throw ApiError(ErrorType::kBackend, "model is not an embedding model");
  }
  if (r.dimensions && *r.dimensions > info_.hidden_size()) {
    throw ApiError(ErrorType::kValidation, "`dimensions` must be at most " +
                                               std::to_string(info_.hidden_size()) + ", got " +
                                               std::to_string(*r.dimensions));
  }
  const bool truncate = r.truncate.value_or(options_.auto_truncate);
  const std::string& prompt = prompt_for(r.prompt_name);
  auto sequences = on_pool<std::vector<int32_t>>(r.inputs.size(), [&](size_t i) {
    const Input& in = r.inputs[i];
    if (in.is_ids) return checked_ids(in.ids, truncate, r.truncation_direction);
    return encode_checked(prompt + in.text, true, truncate, r.truncation_direction);
  });
  EmbedResult out;
  for (const auto& s : sequences) out.prompt_tokens += static_cast<int64_t>(s.size());
  out.embeddings = run(std::move(sequences), ctx);
  for (auto& e : out.embeddings) {
    if (r.dimensions) e.resize(static_cast<size_t>(*r.dimensions));
    if (r.normalize) l2_normalize(e);
  }
  return out;
}

EmbedAllResult ModelService::embed_all(const EmbedRequest& r, const CallContext& ctx) {
  if (info_.head != HeadKind::kEmbedding) {
    throw ApiError(ErrorType::kBackend, "model is not an embedding model");
  }
  const bool truncate = r.truncate.value_or(options_.auto_truncate);
  const std::string& prompt = prompt_for(r.prompt_name);
  auto sequences = on_pool<std::vector<int32_t>>(r.inputs.size(), [&](size_t i) {
    const Input& in = r.inputs[i];
    if (in.is_ids) return checked_ids(in.ids, truncate, r.truncation_direction);
    return encode_checked(prompt + in.text, true, truncate, r.truncation_direction);
  });
  EmbedAllResult out;
  std::vector<size_t> lengths;
  for (const auto& s : sequences) {
    out.prompt_tokens += static_cast<int64_t>(s.size());
    lengths.push_back(s.size());
  }
  const engine::RequestOutputs flat = run(std::move(sequences), ctx, /*token_states=*/true);
  const auto hidden = static_cast<size_t>(info_.hidden_size());
  for (size_t i = 0; i < flat.size(); ++i) {
    if (flat[i].size() != lengths[i] * hidden) {
      throw ApiError(ErrorType::kBackend, "the model returned no per-token states");
    }
    auto& tokens = out.token_states.emplace_back(lengths[i]);
    for (size_t t = 0; t < lengths[i]; ++t) {
      tokens[t].assign(flat[i].begin() + static_cast<ptrdiff_t>(t * hidden),
                       flat[i].begin() + static_cast<ptrdiff_t>((t + 1) * hidden));
    }
  }
  return out;
}

std::vector<int32_t> ModelService::rerank_ids(const std::string& instruction,
                                              const std::string& query, const std::string& text,
                                              bool truncate, TruncationDirection direction) const {
  // Qwen3-Reranker's recipe: the template's fixed prefix and suffix are tokenized on their own and
  // only the body (instruction, query, document) is truncated to what they leave.
  const std::string full = format_rerank_prompt(instruction, query, text);
  const std::string body =
      full.substr(kRerankPrefix.size(), full.size() - kRerankPrefix.size() - kRerankSuffix.size());
  const size_t fixed = rerank_prefix_ids_.size() + rerank_suffix_ids_.size();
  const size_t budget = static_cast<size_t>(options_.max_input_length) - fixed;
  std::vector<int32_t> body_ids;
  try {
    body_ids = tokenizer_.encode(body, false, truncation(truncate, budget, direction)).ids;
  } catch (const TokenizerError& e) {
    throw ApiError(ErrorType::kTokenizer, e.what());
  }
  if (body_ids.size() > budget) too_long(body_ids.size() + fixed, options_.max_input_length);
  std::vector<int32_t> ids;
  ids.reserve(fixed + body_ids.size());
  ids.insert(ids.end(), rerank_prefix_ids_.begin(), rerank_prefix_ids_.end());
  ids.insert(ids.end(), body_ids.begin(), body_ids.end());
  ids.insert(ids.end(), rerank_suffix_ids_.begin(), rerank_suffix_ids_.end());
  return ids;
}

ScoreResult ModelService::rerank(const RerankRequest& r, const CallContext& ctx) {
  if (info_.head != HeadKind::kReranker) {
    throw ApiError(ErrorType::kBackend, "model is not a re-ranker model");
  }
  const bool truncate = r.truncate.value_or(options_.auto_truncate);
  const std::string instruction = r.instruction.value_or(card_.default_rerank_instruction);
  auto sequences = on_pool<std::vector<int32_t>>(r.texts.size(), [&](size_t i) {
    return rerank_ids(instruction, r.query, r.texts[i], truncate, r.truncation_direction);
  });
  ScoreResult out;
  for (const auto& s : sequences) out.prompt_tokens += static_cast<int64_t>(s.size());
  const engine::RequestOutputs outputs = run(std::move(sequences), ctx);
  for (const auto& o : outputs) {
    out.scores.push_back(o.at(0));
    out.raw_scores.push_back(o.at(1));
  }
  return out;
}

PredictResult ModelService::predict(const PredictRequest& r, const CallContext& ctx) {
  if (info_.head != HeadKind::kClassifier) {
    throw ApiError(ErrorType::kBackend, "model is not a classifier model");
  }
  const bool truncate = r.truncate.value_or(options_.auto_truncate);
  const auto max = static_cast<size_t>(options_.max_input_length);
  auto sequences = on_pool<std::vector<int32_t>>(r.inputs.size(), [&](size_t i) {
    const auto& [a, b] = r.inputs[i];
    if (!b) return encode_checked(a, true, truncate, r.truncation_direction);
    std::vector<int32_t> ids;
    try {
      ids = tokenizer_.encode_pair(a, *b, true, truncation(truncate, max, r.truncation_direction))
                .ids;
    } catch (const TokenizerError& e) {
      throw ApiError(ErrorType::kTokenizer, e.what());
    }
    if (ids.size() > max) too_long(ids.size(), options_.max_input_length);
    return ids;
  });
  PredictResult out;
  out.labels = card_.labels;
  out.logits = run(std::move(sequences), ctx);
  for (const auto& logits : out.logits) {
    std::vector<float> p(logits.size());
    if (logits.size() == 1) {
      p[0] = 1.0f / (1.0f + std::exp(-logits[0]));
    } else {
      const float m = *std::max_element(logits.begin(), logits.end());
      double sum = 0;
      for (size_t k = 0; k < logits.size(); ++k) sum += p[k] = std::exp(logits[k] - m);
      for (float& x : p) x = static_cast<float>(x / sum);
    }
    out.probabilities.push_back(std::move(p));
  }
  if (!out.logits.empty() && out.labels.size() != out.logits[0].size()) {
    out.labels.clear();
    for (size_t k = 0; k < out.logits[0].size(); ++k)
      out.labels.push_back("LABEL_" + std::to_string(k));
  }
  return out;
}

std::vector<std::vector<TokenView>> ModelService::tokenize(const TokenizeRequest& r) {
  const std::string& prompt = prompt_for(r.prompt_name);
  return on_pool<std::vector<TokenView>>(r.inputs.size(), [&](size_t i) {
    const std::string text = prompt + r.inputs[i];
    Encoding e;
    try {
      e = tokenizer_.encode(text, r.add_special_tokens);
    } catch (const TokenizerError& err) {
      throw ApiError(ErrorType::kTokenizer, err.what());
    }
    // The same length limit as the model routes: it bounds the answer (tens of bytes a token).
    if (e.ids.size() > static_cast<size_t>(options_.max_input_length)) {
      throw ApiError(ErrorType::kValidation, "`inputs` must have less than " +
                                                 std::to_string(options_.max_input_length) +
                                                 " tokens. Given: " + std::to_string(e.ids.size()));
    }
    std::vector<TokenView> tokens;
    tokens.reserve(e.ids.size());
    for (size_t k = 0; k < e.ids.size(); ++k) {
      TokenView t;
      t.id = e.ids[k];
      const auto [start, stop] = e.offsets[k];
      const int32_t one[] = {t.id};
      // Special: added by the post-processor (no span), or a special token decoding skips.
      t.special = (start == 0 && stop == 0) ||
                  (tokenizer_.decode(one, true).empty() && !tokenizer_.decode(one, false).empty());
      if (t.special) {
        t.text = tokenizer_.id_to_token(t.id).value_or("");
      } else {
        t.text = text.substr(start, stop - start);
        t.start = start;
        t.stop = stop;
      }
      tokens.push_back(std::move(t));
    }
    return tokens;
  });
}

std::vector<std::string> ModelService::decode(const DecodeRequest& r) {
  std::vector<std::string> out;
  for (const auto& ids : r.ids) {
    try {
      out.push_back(tokenizer_.decode(ids, r.skip_special_tokens));
    } catch (const TokenizerError& e) {
      throw ApiError(ErrorType::kValidation, e.what());
    }
  }
  return out;
}

}  // namespace radix::server
