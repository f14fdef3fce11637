#include "engine_binding.h"

#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "corpus_binding.h"
#include "service/runtime.h"
#include "service/service.h"

namespace nb = nanobind;

namespace radix::python {
namespace {

using FloatArray = nb::ndarray<nb::numpy, float>;

// A [rows, cols] float32 numpy array owning a copy of per-row vectors (all cols long).
FloatArray to_matrix(const std::vector<const std::vector<float>*>& rows, size_t cols) {
  auto* data = new std::vector<float>(rows.size() * cols);
  for (size_t r = 0; r < rows.size(); ++r) {
    std::copy(rows[r]->begin(), rows[r]->end(), data->begin() + r * cols);
  }
  nb::capsule owner(data, [](void* p) noexcept { delete static_cast<std::vector<float>*>(p); });
  return FloatArray(data->data(), {rows.size(), cols}, owner);
}

FloatArray to_vector(std::vector<float>&& values) {
  auto* data = new std::vector<float>(std::move(values));
  nb::capsule owner(data, [](void* p) noexcept { delete static_cast<std::vector<float>*>(p); });
  return FloatArray(data->data(), {data->size()}, owner);
}

service::TruncationRequest truncation(std::optional<bool> truncate, const std::string& direction) {
  service::TruncationRequest t;
  t.truncate = truncate;
  if (direction == "right") {
    t.direction = service::TruncationDirection::kRight;
  } else if (direction == "left") {
    t.direction = service::TruncationDirection::kLeft;
  } else {
    throw std::invalid_argument("truncation_direction must be 'right' or 'left', got '" +
                                direction + "'");
  }
  return t;
}

// Running totals of the engine's batches, kept by its batch hook (worker threads, no GIL).
struct BatchTotals {
  std::mutex mu;
  int64_t batches = 0, requests = 0, sequences = 0, tokens = 0, unique_tokens = 0, rows = 0;
  int64_t folded_batches = 0;
  double run_seconds = 0;
};

// One runtime (models, engine, service) per Python Engine object. Every call releases the GIL:
// the service is thread-safe and batches concurrent callers' work together, as the server does.
class Engine {
 public:
  explicit Engine(service::RuntimeOptions options) : totals_(std::make_shared<BatchTotals>()) {
    options.on_batch = [totals = totals_](const service::BatchReport& r) {
      std::lock_guard<std::mutex> lock(totals->mu);
      totals->batches += 1;
      totals->requests += r.requests;
      totals->sequences += r.sequences;
      totals->tokens += r.tokens;
      totals->unique_tokens += r.unique_tokens;
      totals->rows += r.rows;
      totals->folded_batches += r.folded ? 1 : 0;
      totals->run_seconds += r.run_seconds;
    };
    nb::gil_scoped_release release;
    runtime_ = service::Runtime::build(std::move(options));
  }

  nb::dict stats() const {
    std::lock_guard<std::mutex> lock(totals_->mu);
    nb::dict d;
    d["batches"] = totals_->batches;
    d["folded_batches"] = totals_->folded_batches;
    d["requests"] = totals_->requests;
    d["sequences"] = totals_->sequences;
    d["tokens"] = totals_->tokens;
    d["unique_tokens"] = totals_->unique_tokens;
    d["rows"] = totals_->rows;
    d["run_seconds"] = totals_->run_seconds;
    return d;
  }

  nb::dict summary() const {
    const service::ModelSummary& s = runtime_->service().summary();
    const service::RuntimeInfo& i = runtime_->info();
    nb::dict d;
    d["model"] = s.spec;
    d["head"] = s.head;
    d["pooling"] = s.pooling;
    d["hidden_size"] = s.hidden_size;
    d["vocab_size"] = s.vocab_size;
    d["max_input_length"] = s.max_input_length;
    d["labels"] = s.labels;
    d["prompt_names"] = s.prompt_names;
    d["default_prompt_name"] = s.default_prompt_name;
    d["default_rerank_instruction"] = s.default_rerank_instruction;
    d["reranker_tokens"] = s.reranker_tokens;
    d["rerank_template"] = s.rerank_template;
    d["dtype"] = i.dtype;
    d["devices"] = i.devices;
    d["backend"] = i.backend;
    d["num_layers"] = i.num_layers;
    d["attention_mode"] = i.attention_mode;
    d["radix_threshold"] = i.radix_threshold;
    d["max_batch_tokens"] = i.max_batch_tokens;
    d["cuda_graphs"] = runtime_->records_forwards();
    return d;
  }

  nb::tuple embed(std::vector<std::string> texts, std::vector<std::vector<int32_t>> ids,
                  std::optional<std::string> prompt_name, std::optional<std::string> instruction,
                  bool normalize, std::optional<int32_t> dimensions, std::optional<bool> truncate,
                  const std::string& direction) {
    service::EmbedRequest request;
    for (auto& t : texts) request.inputs.push_back(service::Input::of_text(std::move(t)));
    for (auto& i : ids) request.inputs.push_back(service::Input::of_ids(std::move(i)));
    request.prompt_name = std::move(prompt_name);
    request.instruction = std::move(instruction);
    request.normalize = normalize;
    request.dimensions = dimensions;
    request.truncation = truncation(truncate, direction);
    service::EmbedResult result;
    {
      nb::gil_scoped_release release;
      result = runtime_->service().embed(request);
    }
    std::vector<const std::vector<float>*> rows;
    for (const auto& e : result.embeddings) rows.push_back(&e.values);
    const size_t cols = rows.empty() ? 0 : rows.front()->size();
    return nb::make_tuple(to_matrix(rows, cols), result.prompt_tokens);
  }

  nb::tuple rerank(std::string query, std::vector<std::string> documents,
                   std::optional<std::string> instruction, std::optional<bool> truncate,
                   const std::string& direction) {
    service::RerankRequest request;
    request.query = std::move(query);
    request.documents = std::move(documents);
    request.instruction = std::move(instruction);
    request.truncation = truncation(truncate, direction);
    service::RerankResult result;
    {
      nb::gil_scoped_release release;
      result = runtime_->service().rerank(request);
    }
    std::vector<float> scores, logits;
    for (const auto& s : result.scores) {
      scores.push_back(s.score);
      logits.push_back(s.logit);
    }
    return nb::make_tuple(to_vector(std::move(scores)), to_vector(std::move(logits)),
                          result.prompt_tokens);
  }

  nb::tuple classify(std::vector<std::string> texts, std::vector<std::optional<std::string>> pairs,
                     std::optional<bool> truncate, const std::string& direction) {
    if (!pairs.empty() && pairs.size() != texts.size()) {
      throw std::invalid_argument("classify: " + std::to_string(pairs.size()) + " pairs for " +
                                  std::to_string(texts.size()) + " texts");
    }
    service::ClassifyRequest request;
    for (size_t i = 0; i < texts.size(); ++i) {
      request.inputs.push_back({std::move(texts[i]), pairs.empty() ? std::nullopt : pairs[i]});
    }
    request.truncation = truncation(truncate, direction);
    service::ClassifyResult result;
    {
      nb::gil_scoped_release release;
      result = runtime_->service().classify(request);
    }
    std::vector<const std::vector<float>*> probs, logits;
    for (const auto& s : result.scores) {
      probs.push_back(&s.probabilities);
      logits.push_back(&s.logits);
    }
    const size_t cols = result.labels.size();
    return nb::make_tuple(to_matrix(probs, cols), to_matrix(logits, cols), result.labels,
                          result.prompt_tokens);
  }

  std::vector<std::vector<int32_t>> tokenize(std::vector<std::string> texts,
                                             bool add_special_tokens,
                                             std::optional<std::string> prompt_name) const {
    service::TokenizeRequest request;
    request.inputs = std::move(texts);
    request.add_special_tokens = add_special_tokens;
    request.prompt_name = std::move(prompt_name);
    std::vector<std::vector<service::Token>> tokens;
    {
      nb::gil_scoped_release release;
      tokens = runtime_->service().tokenize(request);
    }
    std::vector<std::vector<int32_t>> ids(tokens.size());
    for (size_t i = 0; i < tokens.size(); ++i) {
      for (const auto& t : tokens[i]) ids[i].push_back(t.id);
    }
    return ids;
  }

  // Engine.embed_corpus / rerank_corpus (corpus_binding.cc).
  nb::object corpus(nb::object items, const nb::dict& options) {
    return run_corpus(runtime_->service(), std::move(items), options, [totals = totals_] {
      std::lock_guard<std::mutex> lock(totals->mu);
      return std::make_pair(totals->tokens, totals->rows);
    });
  }

  void shutdown() {
    nb::gil_scoped_release release;
    runtime_->shutdown();
  }

 private:
  std::shared_ptr<BatchTotals> totals_;
  std::unique_ptr<service::Runtime> runtime_;
};

// The service's error kinds as Python exceptions: the caller's fault is a ValueError, the
// engine's (stopped, failed) a RuntimeError; the message is the service's, unchanged.
void translate_service_error(const std::exception_ptr& p, void*) {
  try {
    std::rethrow_exception(p);
  } catch (const service::ServiceError& e) {
    using Kind = service::ServiceError::Kind;
    switch (e.kind()) {
      case Kind::kShuttingDown:
      case Kind::kCancelled:
      case Kind::kBackend:
        PyErr_SetString(PyExc_RuntimeError, e.what());
        return;
      default:
        PyErr_SetString(PyExc_ValueError, e.what());
        return;
    }
  }
}

}  // namespace

void bind_engine(nb::module_& m) {
  nb::register_exception_translator(translate_service_error);
  nb::class_<Engine>(m, "Engine")
      .def(
          "__init__",
          [](Engine* self, std::string model, std::string tokenizer,
             std::vector<std::string> devices, int threads, std::string head,
             std::string attention_mode, double radix_threshold, int32_t pad_to_multiple,
             int64_t max_batch_tokens, int32_t max_batch_requests, bool auto_truncate,
             int32_t max_input_length, std::optional<std::string> default_prompt_name,
             uint64_t seed, bool preallocate, std::string rerank_template, std::string dtype,
             bool enforce_eager) {
            service::RuntimeOptions o;
            o.model = std::move(model);
            o.tokenizer = std::move(tokenizer);
            o.devices = std::move(devices);
            o.threads = threads;
            o.head = std::move(head);
            o.attention_mode = std::move(attention_mode);
            o.radix_threshold = radix_threshold;
            o.pad_to_multiple = pad_to_multiple;
            o.max_batch_tokens = max_batch_tokens;
            o.max_batch_requests = max_batch_requests;
            o.preallocate = preallocate;
            o.seed = seed;
            o.service.auto_truncate = auto_truncate;
            o.service.max_input_length = max_input_length;
            o.service.default_prompt_name = std::move(default_prompt_name);
            o.rerank_template = std::move(rerank_template);
            o.dtype = std::move(dtype);
            o.cuda_graphs = !enforce_eager;
            new (self) Engine(std::move(o));
          },
          nb::arg("model"), nb::arg("tokenizer"), nb::arg("devices"), nb::arg("threads"),
          nb::arg("head"), nb::arg("attention_mode"), nb::arg("radix_threshold"),
          nb::arg("pad_to_multiple"), nb::arg("max_batch_tokens"), nb::arg("max_batch_requests"),
          nb::arg("auto_truncate"), nb::arg("max_input_length"),
          nb::arg("default_prompt_name").none(), nb::arg("seed"), nb::arg("preallocate"),
          nb::arg("rerank_template") = "", nb::arg("dtype") = "", nb::arg("enforce_eager") = false)
      .def("summary", &Engine::summary)
      .def("stats", &Engine::stats)
      .def("embed", &Engine::embed, nb::arg("texts"), nb::arg("ids"), nb::arg("prompt_name").none(),
           nb::arg("instruction").none(), nb::arg("normalize"), nb::arg("dimensions").none(),
           nb::arg("truncate").none(), nb::arg("direction"))
      .def("rerank", &Engine::rerank, nb::arg("query"), nb::arg("documents"),
           nb::arg("instruction").none(), nb::arg("truncate").none(), nb::arg("direction"))
      .def("classify", &Engine::classify, nb::arg("texts"), nb::arg("pairs"),
           nb::arg("truncate").none(), nb::arg("direction"))
      .def("tokenize", &Engine::tokenize, nb::arg("texts"), nb::arg("add_special_tokens"),
           nb::arg("prompt_name").none())
      .def("corpus", &Engine::corpus, nb::arg("items"), nb::arg("options"))
      .def("shutdown", &Engine::shutdown);
  bind_corpus(m);
}

}  // namespace radix::python
