#include "service/service.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <future>
#include <stdexcept>

#include "engine/engine.h"
#include "model/model.h"
#include "model/prompts.h"
#include "model/rerank_template.h"
#include "tokenizer/thread_pool.h"
#include "tokenizer/tokenizer.h"

namespace radix::service {
namespace {

using namespace std::chrono_literals;
using std::to_string;
using Kind = ServiceError::Kind;

Truncation truncation_of(bool truncate, size_t max_length, TruncationDirection direction) {
  if (!truncate) return {};
  return {max_length,
          direction == TruncationDirection::kLeft ? TruncationSide::kLeft : TruncationSide::kRight};
}

[[noreturn]] void too_long(size_t index, size_t given, int32_t max) {
  ServiceError e(Kind::kTooLong, "input " + to_string(index) + " has " + to_string(given) +
                                     " tokens, more than the maximum input length of " +
                                     to_string(max));
  e.input_index = index;
  e.tokens = static_cast<int64_t>(given);
  e.max_tokens = max;
  throw e;
}

void l2_normalize(std::vector<float>& v) {
  double sum = 0;
  for (float x : v) sum += static_cast<double>(x) * x;
  const double norm = std::max(std::sqrt(sum), 1e-12);
  for (float& x : v) x = static_cast<float>(x / norm);
}

std::vector<float> softmax_or_sigmoid(const std::vector<float>& logits) {
  std::vector<float> p(logits.size());
  if (logits.size() == 1) {
    p[0] = 1.0f / (1.0f + std::exp(-logits[0]));
    return p;
  }
  const float m = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (size_t k = 0; k < logits.size(); ++k) sum += p[k] = std::exp(logits[k] - m);
  for (float& x : p) x = static_cast<float>(x / sum);
  return p;
}

// A model that overflowed gives NaN/Inf; JSON cannot carry them and a caller cannot use them.
void check_finite(const std::vector<float>& values, const char* what, size_t input) {
  for (float v : values) {
    if (!std::isfinite(v)) {
      throw ServiceError(Kind::kBackend, std::string("the model produced a non-finite value (NaN "
                                                     "or Inf) in the ") +
                                             what + " of input " + to_string(input));
    }
  }
}

}  // namespace

struct Service::Impl {
  Impl(const ModelInfo& model, const Tokenizer& tok, engine::Engine& eng, ServiceOptions opts)
      : info(model), tokenizer(tok), engine(eng), options(std::move(opts)) {}

  ModelInfo info;
  Tokenizer tokenizer;
  engine::Engine& engine;
  ServiceOptions options;
  std::unique_ptr<ThreadPool> pool;
  ModelSummary summary;
  std::string default_prompt;  // resolved: the text put before inputs that name no prompt
  std::optional<RerankTemplate> rerank_template;
  std::vector<std::vector<int32_t>> rerank_fixed_ids;  // per segment; its ids if fixed
  size_t rerank_fixed_tokens = 0;

  size_t max_input() const { return static_cast<size_t>(options.max_input_length); }
  bool truncates(const TruncationRequest& t) const {
    return t.truncate.value_or(options.auto_truncate);
  }

  void require_head(HeadKind head) const {
    if (info.head == head) return;
    static const char* const kWhat[] = {"an embedding", "a re-ranker", "a classifier"};
    throw ServiceError(Kind::kWrongHead,
                       std::string("model is not ") + kWhat[static_cast<int>(head)] + " model");
  }

  std::string prompt_text(const std::string& name) const {
    auto it = info.prompts.find(name);
    if (it != info.prompts.end()) return it->second;
    std::string names;
    for (const auto& [k, v] : info.prompts) names += (names.empty() ? "" : ", ") + k;
    throw ServiceError(Kind::kValidation,
                       "prompt_name `" + name + "` is not a prompt of this model (" +
                           (names.empty() ? "it has none" : "it has: " + names) + ")");
  }

  std::string prompt_for(const std::optional<std::string>& name) const {
    return name ? prompt_text(*name) : default_prompt;
  }

  std::vector<int32_t> encode(size_t index, std::string_view text, bool add_special,
                              const TruncationRequest& t) const {
    std::vector<int32_t> ids;
    try {
      ids =
          tokenizer.encode(text, add_special, truncation_of(truncates(t), max_input(), t.direction))
              .ids;
    } catch (const TokenizerError& e) {
      throw ServiceError(Kind::kTokenizer, e.what());
    }
    if (ids.size() > max_input()) too_long(index, ids.size(), options.max_input_length);
    if (ids.empty()) {
      throw ServiceError(Kind::kEmpty, "input " + to_string(index) + " became no tokens at all");
    }
    return ids;
  }

  std::vector<int32_t> checked_ids(size_t index, const std::vector<int32_t>& ids,
                                   const TruncationRequest& t) const {
    if (ids.empty()) throw ServiceError(Kind::kEmpty, "input " + to_string(index) + " is empty");
    for (int32_t id : ids) {
      if (id < 0 || id >= info.vocab_size()) {
        throw ServiceError(Kind::kValidation, "token id " + to_string(id) +
                                                  " is outside the vocabulary (size " +
                                                  to_string(info.vocab_size()) + ")");
      }
    }
    if (ids.size() <= max_input()) return ids;
    if (!truncates(t)) too_long(index, ids.size(), options.max_input_length);
    const auto keep = static_cast<ptrdiff_t>(max_input());
    if (t.direction == TruncationDirection::kLeft) {
      return std::vector<int32_t>(ids.end() - keep, ids.end());
    }
    return std::vector<int32_t>(ids.begin(), ids.begin() + keep);
  }

  // The template's segments are tokenized one by one (its fixed ones once, at construction) and
  // the ids concatenated. Only the segments that hold the request's text are truncated, so the
  // fixed prefix and suffix always stay: right, the document's segment from its end first, then
  // the others from the last backwards; left, from the first of them forwards. (Qwen3's single
  // body segment is cut as one text, at its end or its start.)
  std::vector<int32_t> rerank_ids(size_t index, const std::string& instruction,
                                  const std::string& query, const std::string& document,
                                  const TruncationRequest& t) const {
    const RerankTemplate& tpl = *rerank_template;
    const size_t n = tpl.segments().size();
    std::vector<std::vector<int32_t>> variable(n);
    size_t variable_tokens = 0;
    for (size_t k = 0; k < n; ++k) {
      if (tpl.fixed(k)) continue;
      try {
        variable[k] = tokenizer.encode(tpl.fill(k, instruction, query, document), false).ids;
      } catch (const TokenizerError& e) {
        throw ServiceError(Kind::kTokenizer, e.what());
      }
      variable_tokens += variable[k].size();
    }
    const size_t budget = max_input() - rerank_fixed_tokens;
    if (variable_tokens > budget) {
      if (!truncates(t))
        too_long(index, variable_tokens + rerank_fixed_tokens, options.max_input_length);
      size_t excess = variable_tokens - budget;
      const bool left = t.direction == TruncationDirection::kLeft;
      std::vector<size_t> order;
      if (!left) order.push_back(tpl.document_segment());
      for (size_t step = 0; step < n; ++step) {
        const size_t k = left ? step : n - 1 - step;
        if (left || k != tpl.document_segment()) order.push_back(k);
      }
      for (size_t k : order) {
        if (excess == 0) break;
        std::vector<int32_t>& ids = variable[k];
        const size_t cut = std::min(excess, ids.size());
        if (left) {
          ids.erase(ids.begin(), ids.begin() + static_cast<ptrdiff_t>(cut));
        } else {
          ids.resize(ids.size() - cut);
        }
        excess -= cut;
      }
    }
    std::vector<int32_t> ids;
    ids.reserve(rerank_fixed_tokens + std::min(variable_tokens, budget));
    for (size_t k = 0; k < n; ++k) {
      const std::vector<int32_t>& part = tpl.fixed(k) ? rerank_fixed_ids[k] : variable[k];
      ids.insert(ids.end(), part.begin(), part.end());
    }
    return ids;
  }

  // Runs `work(i)` for i in [0, n) on the tokenization pool, in chunks, and waits.
  template <typename T, typename Fn>
  std::vector<T> on_pool(size_t n, Fn work) const {
    const auto start = std::chrono::steady_clock::now();
    // Chunks let one large request use every tokenization worker.
    const size_t workers = pool->size();
    const size_t chunk = std::max<size_t>(1, (n + workers - 1) / workers);
    std::vector<std::future<std::vector<T>>> parts;
    for (size_t begin = 0; begin < n; begin += chunk) {
      const size_t end = std::min(n, begin + chunk);
      parts.push_back(pool->submit([&work, begin, end] {
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
    if (options.on_tokenization) {
      options.on_tokenization(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    return all;
  }

  engine::RequestOutputs run(std::vector<std::vector<int32_t>> sequences, const CallContext& ctx,
                             bool token_states = false) {
    auto cancelled = std::make_shared<std::atomic<bool>>(false);
    std::future<engine::RequestOutputs> result;
    try {
      result = engine.submit(std::move(sequences), cancelled, token_states);
      while (result.wait_for(20ms) != std::future_status::ready) {
        if (ctx.cancelled && ctx.cancelled()) {
          cancelled->store(true);  // its queued sequences are dropped before they are batched
          throw ServiceError(Kind::kCancelled, "the caller went away");
        }
      }
      return result.get();
    } catch (const engine::EngineError& e) {
      switch (e.kind()) {
        case engine::EngineError::Kind::kShuttingDown:
          throw ServiceError(Kind::kShuttingDown, e.what());
        case engine::EngineError::Kind::kCancelled:
          throw ServiceError(Kind::kCancelled, e.what());
        case engine::EngineError::Kind::kBackend:
          break;
      }
      throw ServiceError(Kind::kBackend, e.what());
    }
  }

  std::vector<std::vector<int32_t>> embed_sequences(const EmbedRequest& r) const {
    require_head(HeadKind::kEmbedding);
    if (r.dimensions && (*r.dimensions < 1 || *r.dimensions > info.hidden_size())) {
      throw ServiceError(Kind::kValidation, "`dimensions` must be in [1, " +
                                                to_string(info.hidden_size()) + "], got " +
                                                to_string(*r.dimensions));
    }
    if (r.prompt_name && r.instruction) {
      throw ServiceError(Kind::kValidation, "give a prompt name or an instruction, not both");
    }
    const std::string prompt = r.instruction ? std::string() : prompt_for(r.prompt_name);
    return on_pool<std::vector<int32_t>>(r.inputs.size(), [&](size_t i) {
      const Input& in = r.inputs[i];
      if (in.is_ids) return checked_ids(i, in.ids, r.truncation);
      if (r.instruction) {
        return encode(i, format_embedding_query(*r.instruction, in.text), true, r.truncation);
      }
      return encode(i, prompt + in.text, true, r.truncation);
    });
  }

  std::vector<std::vector<int32_t>> rerank_sequences(const RerankRequest& r) const {
    require_head(HeadKind::kReranker);
    if (!rerank_template) {
      throw ServiceError(Kind::kWrongHead,
                         "this reranker has no prompt template: radix knows Qwen3-Reranker's "
                         "only; put a radix_rerank_template.json in the model folder or start "
                         "with --rerank-template (docs/models.md)");
    }
    if (r.instruction && !rerank_template->takes_instruction()) {
      throw ServiceError(Kind::kValidation, "this reranker's prompt template (" +
                                                rerank_template->origin() +
                                                ") takes no instruction");
    }
    const std::string instruction = r.instruction.value_or(summary.default_rerank_instruction);
    return on_pool<std::vector<int32_t>>(r.documents.size(), [&](size_t i) {
      return rerank_ids(i, instruction, r.query, r.documents[i], r.truncation);
    });
  }

  std::vector<std::vector<int32_t>> classify_sequences(const ClassifyRequest& r) const {
    require_head(HeadKind::kClassifier);
    return on_pool<std::vector<int32_t>>(r.inputs.size(), [&](size_t i) {
      const ClassifyInput& in = r.inputs[i];
      if (!in.pair) return encode(i, in.text, true, r.truncation);
      std::vector<int32_t> ids;
      try {
        ids = tokenizer
                  .encode_pair(
                      in.text, *in.pair, true,
                      truncation_of(truncates(r.truncation), max_input(), r.truncation.direction))
                  .ids;
      } catch (const TokenizerError& e) {
        throw ServiceError(Kind::kTokenizer, e.what());
      }
      if (ids.size() > max_input()) too_long(i, ids.size(), options.max_input_length);
      return ids;
    });
  }
};

Service::Service(const ModelInfo& info, const Tokenizer& tokenizer, engine::Engine& engine,
                 ServiceOptions options)
    : impl_(std::make_unique<Impl>(info, tokenizer, engine, std::move(options))) {
  Impl& s = *impl_;
  ServiceOptions& o = s.options;
  if (o.max_input_length == 0) o.max_input_length = info.max_positions();
  if (o.max_input_length < 0 || o.max_input_length > info.max_positions()) {
    throw std::invalid_argument("max input length " + to_string(o.max_input_length) +
                                " is outside [1, " + to_string(info.max_positions()) +
                                "] (the model's positions)");
  }
  if (o.tokenization_workers == 0) {
    throw std::invalid_argument("tokenization workers must be at least 1");
  }
  if (o.default_prompt_name && o.default_prompt) {
    throw std::invalid_argument("give a default prompt name or a default prompt, not both");
  }
  if (o.rerank_template) {
    s.rerank_template = o.rerank_template;
  } else if (info.rerank_template) {
    s.rerank_template = info.rerank_template;
  } else if (info.config.family == "qwen3") {
    s.rerank_template = qwen3_rerank_template();
  }
  if (s.rerank_template && o.default_rerank_instruction.empty()) {
    o.default_rerank_instruction = s.rerank_template->default_instruction();
  }
  if (info.head == HeadKind::kReranker && s.rerank_template &&
      !s.rerank_template->takes_instruction() && !o.default_rerank_instruction.empty()) {
    throw std::invalid_argument("a default rerank instruction was given but the rerank template (" +
                                s.rerank_template->origin() + ") has no {instruction}");
  }
  ModelSummary& m = s.summary;
  m.default_prompt_name = o.default_prompt_name.value_or(info.default_prompt_name);
  if (o.default_prompt) {
    s.default_prompt = *o.default_prompt;
    m.default_prompt_name.clear();
  } else if (!m.default_prompt_name.empty()) {
    try {
      s.default_prompt = s.prompt_text(m.default_prompt_name);
    } catch (const ServiceError& e) {
      throw std::invalid_argument(std::string("default ") + e.what());
    }
  }
  if (info.head == HeadKind::kReranker && s.rerank_template) {
    const RerankTemplate& tpl = *s.rerank_template;
    s.rerank_fixed_ids.resize(tpl.segments().size());
    for (size_t k = 0; k < tpl.segments().size(); ++k) {
      if (!tpl.fixed(k)) continue;
      s.rerank_fixed_ids[k] = s.tokenizer.encode(tpl.fill(k, {}, {}, {}), false).ids;
      s.rerank_fixed_tokens += s.rerank_fixed_ids[k].size();
    }
    if (s.rerank_fixed_tokens >= static_cast<size_t>(o.max_input_length)) {
      throw std::invalid_argument(
          "the reranker template alone (" + to_string(s.rerank_fixed_tokens) +
          " tokens) does not fit the maximum input length of " + to_string(o.max_input_length));
    }
  }
  m.spec = info.spec;
  m.head = head_kind_name(info.head);
  m.pooling = info.pooling;
  m.hidden_size = info.hidden_size();
  m.vocab_size = info.vocab_size();
  m.tokenizer_vocab_size = s.tokenizer.vocab_size();
  m.max_input_length = o.max_input_length;
  if (info.head == HeadKind::kReranker) {
    m.labels = {"score"};
  } else {
    for (int32_t k = 0; k < info.config.num_labels; ++k)
      m.labels.push_back("LABEL_" + to_string(k));
  }
  for (const auto& [name, text] : info.prompts) m.prompt_names.push_back(name);
  m.default_rerank_instruction = o.default_rerank_instruction;
  if (info.head == HeadKind::kReranker) {
    m.reranker_tokens = info.reranker_tokens;
    if (s.rerank_template) m.rerank_template = s.rerank_template->origin();
  }
  s.pool = std::make_unique<ThreadPool>(o.tokenization_workers);
}

Service::~Service() = default;

const ModelSummary& Service::summary() const { return impl_->summary; }
bool Service::accepting() const { return impl_->engine.accepting(); }

std::vector<std::vector<int32_t>> Service::embed_sequences(const EmbedRequest& r) const {
  return impl_->embed_sequences(r);
}
std::vector<std::vector<int32_t>> Service::rerank_sequences(const RerankRequest& r) const {
  return impl_->rerank_sequences(r);
}
std::vector<std::vector<int32_t>> Service::classify_sequences(const ClassifyRequest& r) const {
  return impl_->classify_sequences(r);
}

namespace {
// Never hand out NaN or Inf as a result (JSON would carry them as null, with a 200).
void require_finite(const engine::RequestOutputs& outputs) {
  for (size_t i = 0; i < outputs.size(); ++i) {
    for (float x : outputs[i]) {
      if (!std::isfinite(x)) {
        throw ServiceError(Kind::kBackend,
                           "the model produced a non-finite value (NaN or Inf) "
                           "for input " +
                               to_string(i));
      }
    }
  }
}

int64_t count_tokens(const std::vector<std::vector<int32_t>>& sequences) {
  int64_t n = 0;
  for (const auto& s : sequences) n += static_cast<int64_t>(s.size());
  return n;
}
}  // namespace

EmbedResult Service::embed(const EmbedRequest& r, const CallContext& ctx) {
  auto sequences = impl_->embed_sequences(r);
  EmbedResult out;
  out.prompt_tokens = count_tokens(sequences);
  engine::RequestOutputs outputs = impl_->run(std::move(sequences), ctx);
  require_finite(outputs);
  out.embeddings.reserve(outputs.size());
  for (auto& values : outputs) {
    check_finite(values, "embedding", out.embeddings.size());
    // The runner returns the pooled state whole: requests in one batch differ in these two.
    if (r.dimensions) values.resize(static_cast<size_t>(*r.dimensions));
    if (r.normalize) l2_normalize(values);
    out.embeddings.push_back({std::move(values)});
  }
  return out;
}

TokenStatesResult Service::embed_all(const EmbedRequest& r, const CallContext& ctx) {
  auto sequences = impl_->embed_sequences(r);
  TokenStatesResult out;
  out.prompt_tokens = count_tokens(sequences);
  std::vector<size_t> lengths;
  lengths.reserve(sequences.size());
  for (const auto& s : sequences) lengths.push_back(s.size());
  const engine::RequestOutputs flat = impl_->run(std::move(sequences), ctx, /*token_states=*/true);
  const auto hidden = static_cast<size_t>(impl_->info.hidden_size());
  out.token_states.reserve(flat.size());
  for (size_t i = 0; i < flat.size(); ++i) {
    if (flat[i].size() != lengths[i] * hidden) {
      throw ServiceError(Kind::kBackend,
                         "the model returned no per-token states for input " + to_string(i));
    }
    check_finite(flat[i], "hidden states", i);
    auto& tokens = out.token_states.emplace_back(lengths[i]);
    for (size_t t = 0; t < lengths[i]; ++t) {
      tokens[t].assign(flat[i].begin() + static_cast<ptrdiff_t>(t * hidden),
                       flat[i].begin() + static_cast<ptrdiff_t>((t + 1) * hidden));
    }
  }
  return out;
}

RerankResult Service::rerank(const RerankRequest& r, const CallContext& ctx) {
  return rerank_ids(impl_->rerank_sequences(r), ctx);
}

RerankResult Service::rerank_ids(std::vector<std::vector<int32_t>> sequences,
                                 const CallContext& ctx) {
  impl_->require_head(HeadKind::kReranker);
  for (size_t i = 0; i < sequences.size(); ++i) {
    impl_->checked_ids(i, sequences[i], TruncationRequest{false});
  }
  RerankResult out;
  out.prompt_tokens = count_tokens(sequences);
  const engine::RequestOutputs outputs = impl_->run(std::move(sequences), ctx);
  require_finite(outputs);
  out.scores.reserve(outputs.size());
  for (const auto& o : outputs) {
    check_finite(o, "score", out.scores.size());
    out.scores.push_back({o.at(0), o.at(1)});
  }
  return out;
}

ClassifyResult Service::classify(const ClassifyRequest& r, const CallContext& ctx) {
  auto sequences = impl_->classify_sequences(r);
  ClassifyResult out;
  out.prompt_tokens = count_tokens(sequences);
  engine::RequestOutputs outputs = impl_->run(std::move(sequences), ctx);
  require_finite(outputs);
  out.labels = impl_->summary.labels;
  for (auto& logits : outputs) {
    check_finite(logits, "logits", out.scores.size());
    std::vector<float> p = softmax_or_sigmoid(logits);
    out.scores.push_back({std::move(p), std::move(logits)});
  }
  if (!out.scores.empty() && out.labels.size() != out.scores[0].logits.size()) {
    out.labels.clear();
    for (size_t k = 0; k < out.scores[0].logits.size(); ++k) {
      out.labels.push_back("LABEL_" + to_string(k));
    }
  }
  return out;
}

std::vector<std::vector<Token>> Service::tokenize(const TokenizeRequest& r) const {
  const Impl& s = *impl_;
  const std::string prompt = s.prompt_for(r.prompt_name);
  return s.on_pool<std::vector<Token>>(r.inputs.size(), [&](size_t i) {
    const std::string text = prompt + r.inputs[i];
    Encoding e;
    try {
      e = s.tokenizer.encode(text, r.add_special_tokens);
    } catch (const TokenizerError& err) {
      throw ServiceError(Kind::kTokenizer, err.what());
    }
    // The same length limit as the model calls: it also bounds the answer (tens of bytes a token).
    if (e.ids.size() > s.max_input()) too_long(i, e.ids.size(), s.options.max_input_length);
    std::vector<Token> tokens;
    tokens.reserve(e.ids.size());
    for (size_t k = 0; k < e.ids.size(); ++k) {
      Token t;
      t.id = e.ids[k];
      const auto [start, stop] = e.offsets[k];
      const int32_t one[] = {t.id};
      // Special: added by the post-processor (no span), or a special token decoding skips.
      t.special = (start == 0 && stop == 0) || (s.tokenizer.decode(one, true).empty() &&
                                                !s.tokenizer.decode(one, false).empty());
      if (t.special) {
        t.text = s.tokenizer.id_to_token(t.id).value_or("");
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

std::vector<std::string> Service::decode(const DecodeRequest& r) const {
  std::vector<std::string> out;
  out.reserve(r.ids.size());
  for (const auto& ids : r.ids) {
    try {
      out.push_back(impl_->tokenizer.decode(ids, r.skip_special_tokens));
    } catch (const TokenizerError& e) {
      throw ServiceError(Kind::kValidation, e.what());
    }
  }
  return out;
}

}  // namespace radix::service
