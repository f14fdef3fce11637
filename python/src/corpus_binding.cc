#include "corpus_binding.h"

#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "service/corpus.h"

namespace nb = nanobind;

namespace radix::python {
namespace {

using service::CorpusError;
using service::CorpusItem;
using service::CorpusTask;

// Items from a Python iterable, pulled a chunk at a time with the GIL held (run_corpus itself
// runs without it). embed: a str, or a dict {"text", "instruction"?}; rerank: a dict {"query",
// "document" (or "text"), "instruction"?} or a (query, document) pair.
class IterableSource : public service::CorpusSource {
 public:
  IterableSource(nb::handle items, CorpusTask task, int64_t skip) : task_(task) {
    nb::gil_scoped_acquire gil;
    if (nb::hasattr(items, "__len__")) total_ = static_cast<int64_t>(nb::len(items));
    iterator_ = nb::steal(PyObject_GetIter(items.ptr()));
    if (!iterator_.is_valid()) {
      PyErr_Clear();
      throw CorpusError("the corpus must be an iterable of items");
    }
    for (; index_ < static_cast<size_t>(skip); ++index_) {
      if (!next()) {
        throw CorpusError("the corpus holds " + std::to_string(index_) + " items, fewer than the " +
                          std::to_string(skip) + " an earlier run finished: is it another one?");
      }
    }
  }

  ~IterableSource() override {
    nb::gil_scoped_acquire gil;
    iterator_.reset();
  }

  bool read(std::vector<CorpusItem>& out, size_t max) override {
    nb::gil_scoped_acquire gil;
    const size_t before = out.size();
    while (out.size() - before < max) {
      nb::object item = next();
      if (!item.is_valid()) break;
      out.push_back(convert(item));
      ++index_;
    }
    return out.size() > before;
  }

  int64_t estimated_total() const override { return total_; }

 private:
  nb::object next() {
    PyObject* item = PyIter_Next(iterator_.ptr());
    if (item) return nb::steal(item);
    if (PyErr_Occurred()) {
      nb::python_error e;
      throw CorpusError(where(index_) + ": iterating the corpus raised " + e.what());
    }
    return {};
  }

  std::string text_field(const nb::dict& d, const char* key, bool required) const {
    if (!d.contains(key) || d[key].is_none()) {
      if (required) throw CorpusError(where(index_) + ": missing \"" + key + "\"");
      return {};
    }
    nb::object v = d[key];
    if (!nb::isinstance<nb::str>(v)) {
      throw CorpusError(where(index_) + ": \"" + key + "\" must be a string, got " +
                        nb::cast<std::string>(nb::type_name(v.type())));
    }
    return nb::cast<std::string>(v);
  }

  CorpusItem convert(const nb::object& item) const {
    CorpusItem it;
    it.line = index_;
    if (task_ == CorpusTask::kEmbed && nb::isinstance<nb::str>(item)) {
      it.text = nb::cast<std::string>(item);
      return it;
    }
    if (task_ == CorpusTask::kRerank &&
        (nb::isinstance<nb::tuple>(item) || nb::isinstance<nb::list>(item)) && nb::len(item) == 2 &&
        nb::isinstance<nb::str>(item[0]) && nb::isinstance<nb::str>(item[1])) {
      it.query = nb::cast<std::string>(item[0]);
      it.text = nb::cast<std::string>(item[1]);
      return it;
    }
    if (!nb::isinstance<nb::dict>(item)) {
      throw CorpusError(
          where(index_) + ": expected " +
          (task_ == CorpusTask::kEmbed
               ? "a str or a dict {\"text\": ...}"
               : "a (query, document) pair or a dict {\"query\": ..., \"document\": ...}") +
          ", got " + nb::cast<std::string>(nb::type_name(item.type())));
    }
    nb::dict d = nb::borrow<nb::dict>(item);
    if (task_ == CorpusTask::kRerank) {
      it.query = text_field(d, "query", true);
      it.text = text_field(d, d.contains("document") ? "document" : "text", true);
    } else {
      it.text = text_field(d, "text", true);
    }
    if (d.contains("instruction") && !d["instruction"].is_none()) {
      it.instruction = text_field(d, "instruction", true);
    }
    return it;
  }

  CorpusTask task_;
  nb::object iterator_;
  size_t index_ = 0;
  int64_t total_ = 0;
};

template <typename T>
std::optional<T> optional_of(const nb::dict& d, const char* key) {
  if (!d.contains(key) || d[key].is_none()) return std::nullopt;
  return nb::cast<T>(d[key]);
}

nb::ndarray<nb::numpy, float> owned(std::vector<float>* data, std::initializer_list<size_t> shape) {
  nb::capsule owner(data, [](void* p) noexcept { delete static_cast<std::vector<float>*>(p); });
  return nb::ndarray<nb::numpy, float>(data->data(), shape, owner);
}

}  // namespace

nb::object run_corpus(service::Service& core, nb::object items, const nb::dict& options,
                      std::function<std::pair<int64_t, int64_t>()> totals) {
  service::CorpusOptions o;
  const std::string task = nb::cast<std::string>(options["task"]);
  o.task = task == "rerank" ? CorpusTask::kRerank : CorpusTask::kEmbed;
  o.batch_tokens = nb::cast<int64_t>(options["batch_tokens"]);
  o.chunk_items = nb::cast<size_t>(options["chunk_items"]);
  o.order_by_prefix = nb::cast<bool>(options["order_by_prefix"]);
  o.prompt_name = optional_of<std::string>(options, "prompt_name");
  o.instruction = optional_of<std::string>(options, "instruction");
  o.normalize = nb::cast<bool>(options["normalize"]);
  o.dimensions = optional_of<int32_t>(options, "dimensions");
  o.truncation.truncate = optional_of<bool>(options, "truncate");
  if (nb::cast<std::string>(options["truncation_direction"]) == "left") {
    o.truncation.direction = service::TruncationDirection::kLeft;
  }
  const std::optional<std::string> output = optional_of<std::string>(options, "output");
  nb::object progress = options["progress"];

  std::unique_ptr<service::CorpusOutput> file;
  service::CorpusRows rows;
  if (output) {
    file =
        service::CorpusOutput::open(*output, o.task, nb::cast<std::string>(options["fingerprint"]),
                                    nb::cast<bool>(options["restart"]));
    o.resumed = file->resumed();
  }
  IterableSource source(items, o.task, o.resumed);

  const auto [tokens0, rows0] = totals();
  const bool print = nb::isinstance<nb::bool_>(progress) && nb::cast<bool>(progress);
  const bool call = !print && !progress.is_none() && !nb::isinstance<nb::bool_>(progress);
  const bool tty = print && isatty(fileno(stderr)) != 0;
  double last_line = -1e9;
  if (print || call) {
    o.on_progress = [&, tokens0 = tokens0, rows0 = rows0](const service::CorpusProgress& p) {
      const auto [t, r] = totals();
      const double compression = r > rows0 ? static_cast<double>(t - tokens0) / (r - rows0) : 0;
      if (print) {
        const std::string line = service::format_corpus_progress(p, compression, tty);
        if (tty) {
          std::fprintf(stderr, "\r%s\x1b[K%s", line.c_str(), p.done ? "\n" : "");
        } else if (p.done || p.seconds - last_line >= 10) {
          last_line = p.seconds;
          std::fprintf(stderr, "radix: %s\n", line.c_str());
        }
        std::fflush(stderr);
        return;
      }
      nb::gil_scoped_acquire gil;
      nb::dict d;
      d["items"] = p.items;
      d["tokens"] = p.tokens;
      d["resumed"] = p.resumed;
      d["estimated_total"] = p.estimated_total;
      d["seconds"] = p.seconds;
      d["compression"] = compression;
      d["done"] = p.done;
      try {
        progress(d);
      } catch (nb::python_error& e) {  // kept here, where the GIL is held
        throw CorpusError(std::string("the progress callback raised ") + e.what());
      }
    };
  }
  service::CorpusStats stats;
  {
    nb::gil_scoped_release release;
    stats = service::run_corpus(
        core, source,
        file ? static_cast<service::CorpusSink&>(*file) : static_cast<service::CorpusSink&>(rows),
        o);
  }
  if (file) {
    const auto [t, r] = totals();
    nb::dict d;
    d["output"] = *output;
    d["items"] = stats.items;
    d["resumed"] = o.resumed;
    d["tokens"] = stats.tokens;
    d["batches"] = stats.batches;
    d["seconds"] = stats.seconds;
    d["compression"] = r > rows0 ? static_cast<double>(t - tokens0) / (r - rows0) : 0.0;
    return d;
  }
  const size_t n = rows.rows.size();
  if (o.task == CorpusTask::kRerank) {
    auto* scores = new std::vector<float>(n);
    auto* logits = new std::vector<float>(n);
    for (size_t i = 0; i < n; ++i) {
      (*scores)[i] = rows.rows[i].at(0);
      (*logits)[i] = rows.rows[i].at(1);
    }
    return nb::make_tuple(owned(scores, {n}), owned(logits, {n}));
  }
  const size_t cols = n > 0
                          ? rows.rows[0].size()
                          : static_cast<size_t>(o.dimensions.value_or(core.summary().hidden_size));
  auto* data = new std::vector<float>(n * cols);
  for (size_t i = 0; i < n; ++i)
    std::copy(rows.rows[i].begin(), rows.rows[i].end(), data->begin() + i * cols);
  return nb::cast(owned(data, {n, cols}));
}

void bind_corpus(nb::module_&) {
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const CorpusError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });
}

}  // namespace radix::python
