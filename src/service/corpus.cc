#include "service/corpus.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <numeric>
#include <utility>

#include "tokenizer/thread_pool.h"

namespace radix::service {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Sequences = std::vector<std::vector<int32_t>>;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// The service's error for one item, worded for a corpus (the item is named by the caller).
std::string describe(const ServiceError& e) {
  switch (e.kind()) {
    case ServiceError::Kind::kTooLong:
      return std::to_string(e.tokens) + " tokens, more than the maximum input length of " +
             std::to_string(e.max_tokens) + " (truncate to cut it)";
    case ServiceError::Kind::kEmpty:
      return "the text became no tokens at all";
    default:
      return e.what();
  }
}

// Tokenizes a chunk: items that share a request shape (an instruction, a query) are tokenized
// together on the service's pool; an error is traced to the first item that fails on its own.
class ChunkTokenizer {
 public:
  ChunkTokenizer(Service& core, const CorpusSource& source, const CorpusOptions& options)
      : core_(core), source_(source), options_(options) {}

  Sequences operator()(const std::vector<CorpusItem>& items) const {
    std::map<std::pair<std::optional<std::string>, std::string>, std::vector<size_t>> groups;
    for (size_t i = 0; i < items.size(); ++i) {
      const CorpusItem& it = items[i];
      std::optional<std::string> instruction =
          it.instruction ? it.instruction : options_.instruction;
      groups[{std::move(instruction), options_.task == CorpusTask::kRerank ? it.query : ""}]
          .push_back(i);
    }
    Sequences out(items.size());
    for (const auto& [key, members] : groups) {
      Sequences seqs;
      try {
        seqs = run(key.first, key.second, items, members);
      } catch (const ServiceError& e) {
        for (size_t i : members) {  // which item? (rare: the run is about to stop)
          try {
            run(key.first, key.second, items, {i});
          } catch (const ServiceError& one) {
            throw CorpusError(source_.where(items[i].line) + ": " + describe(one));
          }
        }
        throw;
      }
      for (size_t k = 0; k < members.size(); ++k) out[members[k]] = std::move(seqs[k]);
    }
    return out;
  }

 private:
  Sequences run(const std::optional<std::string>& instruction, const std::string& query,
                const std::vector<CorpusItem>& items, const std::vector<size_t>& members) const {
    if (options_.task == CorpusTask::kRerank) {
      RerankRequest r;
      r.query = query;
      for (size_t i : members) r.documents.push_back(items[i].text);
      r.instruction = instruction;
      r.truncation = options_.truncation;
      return core_.rerank_sequences(r);
    }
    EmbedRequest r;
    for (size_t i : members) r.inputs.push_back(Input::of_text(items[i].text));
    if (instruction) {
      r.instruction = instruction;
    } else {
      r.prompt_name = options_.prompt_name;
    }
    r.truncation = options_.truncation;
    r.dimensions = options_.dimensions;
    return core_.embed_sequences(r);
  }

  Service& core_;
  const CorpusSource& source_;
  const CorpusOptions& options_;
};

// A chunk on its way through the engine: its items' results fill `rows` (each batch its own
// positions) while later chunks are read.
struct Chunk {
  std::vector<std::vector<float>> rows;
  std::vector<std::future<void>> batches;
  bool failed = false;  // a batch threw: `rows` has holes and must not be written

  // Waits for every batch (they write into `rows`), then rethrows the first failure.
  void wait(const std::function<void()>& tick) {
    std::exception_ptr error;
    for (auto& b : batches) {
      while (b.wait_for(200ms) != std::future_status::ready) tick();
      try {
        b.get();
      } catch (...) {
        if (!error) error = std::current_exception();
      }
      tick();
    }
    batches.clear();
    if (error) {
      failed = true;
      std::rethrow_exception(error);
    }
  }
};

}  // namespace

CorpusStats run_corpus(Service& core, CorpusSource& source, CorpusSink& sink,
                       const CorpusOptions& options) {
  if (options.batch_tokens < 1) throw std::invalid_argument("batch tokens must be at least 1");
  if (options.chunk_items < 1) throw std::invalid_argument("chunk items must be at least 1");
  if (options.inflight < 1) throw std::invalid_argument("inflight batches must be at least 1");
  const bool rerank = options.task == CorpusTask::kRerank;
  const std::string& head = core.summary().head;
  if (head != (rerank ? "reranker" : "embedding")) {
    throw CorpusError(std::string("the model is ") + (head == "embedding" ? "an " : "a ") + head +
                      " model; " +
                      (rerank ? "rerank needs a reranker" : "embed needs an embedding model"));
  }

  const auto start = Clock::now();
  CorpusStats stats;
  std::atomic<int64_t> done_items{0}, done_tokens{0};
  auto last_report = Clock::now() - 1s;
  auto report = [&](bool done) {
    if (!options.on_progress) return;
    if (!done && Clock::now() - last_report < 200ms) return;
    last_report = Clock::now();
    CorpusProgress p;
    p.items = done_items.load();
    p.tokens = done_tokens.load();
    p.resumed = options.resumed;
    p.estimated_total = source.estimated_total();
    p.seconds = seconds_since(start);
    p.done = done;
    options.on_progress(p);
  };
  const std::function<void()> tick = [&] { report(false); };

  const ChunkTokenizer tokenize(core, source, options);
  // Threads that hold the queued batches' calls: `inflight` of them keep that many batches
  // waiting on the engine, so it starts the next batch the moment one finishes.
  ThreadPool runners(options.inflight);

  // Queues a tokenized chunk's batches on the engine.
  auto submit = [&](std::vector<CorpusItem> items, Sequences seqs) {
    auto chunk = std::make_unique<Chunk>();
    chunk->rows.resize(items.size());
    std::vector<size_t> order(seqs.size());
    std::iota(order.begin(), order.end(), size_t{0});
    if (options.order_by_prefix) {
      std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return seqs[a] < seqs[b]; });
    }
    Chunk* c = chunk.get();
    size_t begin = 0;
    while (begin < order.size()) {
      int64_t tokens = static_cast<int64_t>(seqs[order[begin]].size());
      size_t end = begin + 1;
      while (end < order.size() &&
             tokens + static_cast<int64_t>(seqs[order[end]].size()) <= options.batch_tokens) {
        tokens += static_cast<int64_t>(seqs[order[end]].size());
        ++end;
      }
      std::vector<size_t> members(order.begin() + static_cast<ptrdiff_t>(begin),
                                  order.begin() + static_cast<ptrdiff_t>(end));
      Sequences batch;
      batch.reserve(members.size());
      for (size_t i : members) batch.push_back(std::move(seqs[i]));
      c->batches.push_back(
          runners.submit([&core, &options, &done_items, &done_tokens, c, tokens,
                          members = std::move(members), batch = std::move(batch)]() mutable {
            if (options.task == CorpusTask::kRerank) {
              const RerankResult r = core.rerank_ids(std::move(batch));
              for (size_t k = 0; k < members.size(); ++k) {
                c->rows[members[k]] = {r.scores[k].score, r.scores[k].logit};
              }
            } else {
              EmbedRequest request;
              for (auto& ids : batch) request.inputs.push_back(Input::of_ids(std::move(ids)));
              request.normalize = options.normalize;
              request.dimensions = options.dimensions;
              EmbedResult r = core.embed(request);
              for (size_t k = 0; k < members.size(); ++k) {
                c->rows[members[k]] = std::move(r.embeddings[k].values);
              }
            }
            done_items.fetch_add(static_cast<int64_t>(members.size()));
            done_tokens.fetch_add(tokens);
          }));
      ++stats.batches;
      stats.tokens += tokens;
      begin = end;
    }
    return chunk;
  };

  // The chunk on the engine, and the one being read and tokenized meanwhile. Every chunk is
  // waited for before this function returns: the queued calls write into it.
  std::unique_ptr<Chunk> running, next;
  auto drain = [&] {
    for (Chunk* c : {running.get(), next.get()}) {
      if (!c) continue;
      try {
        c->wait([] {});
      } catch (...) {
      }
    }
  };
  try {
    for (;;) {
      std::vector<CorpusItem> items;
      const bool more = source.read(items, options.chunk_items) && !items.empty();
      if (more) {
        Sequences seqs = tokenize(items);
        next = submit(std::move(items), std::move(seqs));
      }
      if (running) {
        // Out of `running` first: a chunk that failed to run or to be written is never written
        // again by the error path below.
        const std::unique_ptr<Chunk> done = std::move(running);
        done->wait(tick);
        sink.write(done->rows);
        stats.items += static_cast<int64_t>(done->rows.size());
        ++stats.chunks;
        sink.commit(options.resumed + stats.items);
      }
      running = std::move(next);
      if (!more) break;
    }
  } catch (...) {
    // Keep what finished: the chunk on the engine is written if it succeeds (its items come
    // before the one that failed to read or tokenize).
    std::exception_ptr error = std::current_exception();
    if (running && !running->failed) {
      try {
        running->wait([] {});
        sink.write(running->rows);
        stats.items += static_cast<int64_t>(running->rows.size());
        sink.commit(options.resumed + stats.items);
        running.reset();
      } catch (...) {
      }
    }
    drain();
    std::rethrow_exception(error);
  }
  sink.finish(options.resumed + stats.items);
  stats.seconds = seconds_since(start);
  report(true);
  return stats;
}

std::string format_corpus_progress(const CorpusProgress& p, double compression, bool bar) {
  const double secs = std::max(p.seconds, 1e-9);
  const double rate = static_cast<double>(p.items) / secs;
  const int64_t done = p.resumed + p.items;
  const int64_t total = p.done ? done : std::max(p.estimated_total, done);
  char buf[256];
  std::string line;
  if (total > 0) {
    const double frac = static_cast<double>(done) / static_cast<double>(total);
    if (bar) {
      const int width = 24, filled = static_cast<int>(frac * width);
      line += "[" + std::string(static_cast<size_t>(filled), '#') +
              std::string(static_cast<size_t>(width - filled), '.') + "] ";
    }
    std::snprintf(buf, sizeof buf, "%5.1f%% ", 100.0 * frac);
    line += buf;
  }
  std::snprintf(buf, sizeof buf, "%lld%s items, %.1f items/s, %.0f tokens/s",
                static_cast<long long>(done),
                total > 0 ? ("/" + std::to_string(total)).c_str() : "", rate,
                static_cast<double>(p.tokens) / secs);
  line += buf;
  if (compression > 0) {
    std::snprintf(buf, sizeof buf, ", compression %.2fx", compression);
    line += buf;
  }
  if (p.done) {
    std::snprintf(buf, sizeof buf, ", %.1f s", p.seconds);
    line += buf;
  } else if (total > 0 && rate > 0) {
    const auto eta = static_cast<long long>(static_cast<double>(total - done) / rate);
    std::snprintf(buf, sizeof buf, ", ETA %lld:%02lld:%02lld", eta / 3600, eta / 60 % 60, eta % 60);
    line += buf;
  }
  return line;
}

// -- the file source ------------------------------------------------------------------------------

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool blank(const std::string& line) { return line.find_first_not_of(" \t\r") == std::string::npos; }

class FileSource : public CorpusSource {
 public:
  FileSource(std::string path, CorpusTask task, int64_t skip)
      : path_(std::move(path)), task_(task), in_(path_, std::ios::binary) {
    if (ends_with(path_, ".jsonl") || ends_with(path_, ".json")) {
      jsonl_ = true;
    } else if (!ends_with(path_, ".txt")) {
      throw CorpusError(path_ + ": unknown corpus format (give a .jsonl or a .txt file)");
    }
    if (!jsonl_ && task_ == CorpusTask::kRerank) {
      throw CorpusError(path_ + ": rerank reads query/document pairs from a .jsonl file " +
                        "({\"query\": ..., \"document\": ...} per line)");
    }
    if (!in_) throw CorpusError(path_ + ": cannot open the corpus");
    std::error_code ec;
    size_ = std::filesystem::file_size(path_, ec);
    std::string line;
    while (items_ < skip && next_line(line)) {
      if (!(jsonl_ && blank(line))) ++items_;
    }
    if (items_ < skip) {
      throw CorpusError(path_ + " holds " + std::to_string(items_) + " items, fewer than the " +
                        std::to_string(skip) + " an earlier run finished: is it another file?");
    }
  }

  bool read(std::vector<CorpusItem>& out, size_t max) override {
    const size_t before = out.size();
    std::string line;
    while (out.size() - before < max && next_line(line)) {
      if (jsonl_ && blank(line)) continue;
      out.push_back(parse(line));
      ++items_;
    }
    return out.size() > before;
  }

  int64_t estimated_total() const override {
    if (bytes_ == 0 || size_ == 0) return 0;
    if (bytes_ >= size_) return items_;
    return static_cast<int64_t>(static_cast<double>(items_) * static_cast<double>(size_) /
                                static_cast<double>(bytes_));
  }

  std::string where(size_t line) const override { return path_ + " line " + std::to_string(line); }

 private:
  bool next_line(std::string& line) {
    if (!std::getline(in_, line)) return false;
    ++line_;
    bytes_ += line.size() + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return true;
  }

  [[noreturn]] void fail(const std::string& why) const {
    throw CorpusError(where(line_) + ": " + why);
  }

  std::string string_field(const nlohmann::json& j, const char* key, bool required) const {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) {
      if (required) fail(std::string("missing \"") + key + "\"");
      return {};
    }
    if (!it->is_string()) fail(std::string("\"") + key + "\" must be a string");
    return it->get<std::string>();
  }

  CorpusItem parse(const std::string& line) const {
    CorpusItem item;
    item.line = line_;
    if (!jsonl_) {
      if (line.empty()) fail("empty line (a .txt corpus holds one text per line)");
      item.text = line;
      return item;
    }
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) fail("not valid JSON");
    if (j.is_string() && task_ == CorpusTask::kEmbed) {
      item.text = j.get<std::string>();
      return item;
    }
    if (!j.is_object()) {
      fail(task_ == CorpusTask::kEmbed
               ? "expected a JSON object {\"text\": ...} or a string"
               : "expected a JSON object {\"query\": ..., \"document\": ...}");
    }
    if (task_ == CorpusTask::kRerank) {
      item.query = string_field(j, "query", true);
      item.text = j.contains("document") ? string_field(j, "document", true)
                                         : string_field(j, "text", false);
      if (!j.contains("document") && !j.contains("text")) fail("missing \"document\"");
    } else {
      item.text = string_field(j, "text", true);
    }
    if (j.contains("instruction") && !j["instruction"].is_null()) {
      item.instruction = string_field(j, "instruction", true);
    }
    return item;
  }

  std::string path_;
  CorpusTask task_;
  std::ifstream in_;
  bool jsonl_ = false;
  size_t line_ = 0;
  int64_t items_ = 0;
  uint64_t bytes_ = 0, size_ = 0;
};

// -- the results file -------------------------------------------------------------------------

constexpr size_t kNpyHeader = 128;  // fixed, so the shape can be rewritten in place

std::string npy_header(int64_t items, int64_t cols, bool matrix) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(items) +
                     (matrix ? ", " + std::to_string(cols) + ")" : ",)") + ", }";
  std::string h = "\x93NUMPY";
  h += '\x01';
  h += '\x00';
  const size_t len = kNpyHeader - 10;
  h += static_cast<char>(len & 0xff);
  h += static_cast<char>(len >> 8);
  dict.resize(len - 1, ' ');
  h += dict + '\n';
  return h;
}

class FileOutput : public CorpusOutput {
 public:
  FileOutput(std::string path, CorpusTask task, std::string fingerprint, bool restart)
      : path_(std::move(path)), task_(task), fingerprint_(std::move(fingerprint)) {
    if (ends_with(path_, ".npy")) {
      npy_ = true;
    } else if (!ends_with(path_, ".jsonl")) {
      throw CorpusError(path_ + ": unknown output format (give a .npy or a .jsonl file)");
    }
    if (task_ == CorpusTask::kRerank) cols_ = 1;
    const std::string state = state_path(path_);
    std::ifstream s(state);
    if (s && !restart) {
      const nlohmann::json j = nlohmann::json::parse(s, nullptr, false);
      if (j.is_discarded() || !j.contains("fingerprint")) {
        throw CorpusError(state + " is not a radix progress file; remove it or restart the run");
      }
      if (j["fingerprint"] != fingerprint_) {
        throw CorpusError(state + " is the state of another run (" +
                          j["fingerprint"].get<std::string>() + "); restart to overwrite " + path_ +
                          ", or give another output");
      }
      resumed_ = j.value("items", int64_t{0});
      cols_ = j.value("cols", int64_t{cols_});
      const auto bytes = j.value("bytes", uint64_t{0});
      std::error_code ec;
      if (std::filesystem::file_size(path_, ec) < bytes || ec) {
        throw CorpusError(path_ + " is shorter than " + state +
                          " says: it was changed since; restart the run");
      }
      std::filesystem::resize_file(path_, bytes);
      f_ = std::fopen(path_.c_str(), "r+b");
      if (f_) std::fseek(f_, 0, SEEK_END);
    } else {
      s.close();
      std::filesystem::remove(state);
      f_ = std::fopen(path_.c_str(), "wb");
      if (f_ && npy_) std::fwrite(npy_header(0, cols_, false).data(), 1, kNpyHeader, f_);
    }
    if (!f_) throw CorpusError(path_ + ": cannot open the output for writing");
    items_ = resumed_;
  }

  ~FileOutput() override {
    if (f_) std::fclose(f_);
  }

  int64_t resumed() const override { return resumed_; }

  void write(const std::vector<std::vector<float>>& rows) override {
    for (const auto& row : rows) {
      if (task_ == CorpusTask::kEmbed) {
        if (cols_ == 0) cols_ = static_cast<int64_t>(row.size());
        if (static_cast<int64_t>(row.size()) != cols_) {
          throw CorpusError(path_ + ": a row of " + std::to_string(row.size()) +
                            " values after rows of " + std::to_string(cols_));
        }
      }
      if (npy_) {
        const size_t n = task_ == CorpusTask::kRerank ? 1 : row.size();
        put(row.data(), n * sizeof(float));
      } else {
        std::string line = "{\"index\": " + std::to_string(items_);
        char buf[32];
        if (task_ == CorpusTask::kRerank) {
          std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(row.at(0)));
          line += std::string(", \"score\": ") + buf;
          std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(row.at(1)));
          line += std::string(", \"logit\": ") + buf + "}\n";
        } else {
          line += ", \"embedding\": [";
          for (size_t k = 0; k < row.size(); ++k) {
            std::snprintf(buf, sizeof buf, "%s%.9g", k ? ", " : "", static_cast<double>(row[k]));
            line += buf;
          }
          line += "]}\n";
        }
        put(line.data(), line.size());
      }
      ++items_;
    }
  }

  void commit(int64_t items) override {
    if (npy_) {  // the file is a valid .npy of the rows so far
      std::fseek(f_, 0, SEEK_SET);
      put(npy_header(items, cols_, task_ == CorpusTask::kEmbed).data(), kNpyHeader);
      std::fseek(f_, 0, SEEK_END);
    }
    if (std::fflush(f_) != 0) throw CorpusError(path_ + ": write failed");
    const long bytes = std::ftell(f_);
    nlohmann::json j = {
        {"fingerprint", fingerprint_}, {"items", items}, {"bytes", bytes}, {"cols", cols_}};
    const std::string state = state_path(path_), tmp = state + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << j.dump() << "\n";
      if (!out) throw CorpusError(tmp + ": cannot write the progress file");
    }
    std::filesystem::rename(tmp, state);
  }

  void finish(int64_t items) override {
    commit(items);
    std::fclose(f_);
    f_ = nullptr;
    std::filesystem::remove(state_path(path_));
  }

 private:
  void put(const void* data, size_t n) {
    if (std::fwrite(data, 1, n, f_) != n) throw CorpusError(path_ + ": write failed");
  }

  std::string path_;
  CorpusTask task_;
  std::string fingerprint_;
  bool npy_ = false;
  std::FILE* f_ = nullptr;
  int64_t cols_ = 0;
  int64_t resumed_ = 0;
  int64_t items_ = 0;
};

}  // namespace

std::unique_ptr<CorpusSource> open_corpus_file(const std::string& path, CorpusTask task,
                                               int64_t skip) {
  return std::make_unique<FileSource>(path, task, skip);
}

std::unique_ptr<CorpusOutput> CorpusOutput::open(const std::string& path, CorpusTask task,
                                                 const std::string& fingerprint, bool restart) {
  return std::make_unique<FileOutput>(path, task, fingerprint, restart);
}

}  // namespace radix::service
