// Offline corpora: embed or rerank a stream of items far larger than one request, on the library
// core (service.h). The CLI's `radix embed/rerank --input` and Python's Engine.embed_corpus run
// this one pipeline:
//   read a chunk of items (lazily) -> tokenize it on the service's worker pool -> order it by
//   token path, so items that share a prefix (an instruction, a query, a template) land in one
//   batch and fold together -> cut batches by the token budget -> queue them on the engine ->
//   write the chunk's results in input order -> mark the chunk done (the resume point).
// While a chunk's batches run on the engine, the next chunk is read and tokenized, so the host
// work hides behind the device.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "service/service.h"

namespace radix::service {

enum class CorpusTask : uint8_t { kEmbed, kRerank };

// One item. embed: `text`, and an optional Qwen3-Embedding instruction for it alone; rerank: a
// `query` and a document (`text`), and an optional Instruct line.
struct CorpusItem {
  std::string text;
  std::string query;
  std::optional<std::string> instruction;
  size_t line = 0;  // where the item came from (a file's 1-based line, an iterable's index)
};

// Where items come from. Read on the calling thread of run_corpus, a chunk at a time.
class CorpusSource {
 public:
  virtual ~CorpusSource() = default;
  // Appends up to `max` items to `out`; returns false once no item was left to append.
  // Throws CorpusError naming the line of an item that cannot be read.
  virtual bool read(std::vector<CorpusItem>& out, size_t max) = 0;
  // Items in the whole corpus, resumed ones included, if known or estimated (0: unknown); for
  // the progress line's ETA.
  virtual int64_t estimated_total() const { return 0; }
  // How errors name an item: "corpus.jsonl line 7", "item 6".
  virtual std::string where(size_t line) const { return "item " + std::to_string(line); }
};

// Where results go, in input order. embed: one row of `dim` floats per item; rerank: two floats
// per item, {score, logit}.
class CorpusSink {
 public:
  virtual ~CorpusSink() = default;
  virtual void write(const std::vector<std::vector<float>>& rows) = 0;
  // Every row written so far is whole (`items` of them): a resume may start after them.
  virtual void commit(int64_t items) { (void)items; }
  virtual void finish(int64_t items) { commit(items); }
};

// Keeps the rows in memory (Python's embed_corpus without an output file, tests).
class CorpusRows : public CorpusSink {
 public:
  void write(const std::vector<std::vector<float>>& rows) override {
    this->rows.insert(this->rows.end(), rows.begin(), rows.end());
  }
  std::vector<std::vector<float>> rows;
};

// A corpus that cannot be read or run: the message names the file and line (or item).
class CorpusError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CorpusProgress {
  int64_t items = 0;            // items whose results are in (this run; resumed ones not counted)
  int64_t tokens = 0;           // their tokens (what the model was given, before folding)
  int64_t resumed = 0;          // items skipped because an earlier run finished them
  int64_t estimated_total = 0;  // the source's estimate, resumed items included (0: unknown)
  double seconds = 0;           // since the run started
  bool done = false;            // the last call of a run
};

struct CorpusOptions {
  CorpusTask task = CorpusTask::kEmbed;
  int64_t batch_tokens =
      16384;                   // tokens per batch queued on the engine (an item over it runs alone)
  size_t chunk_items = 16384;  // items ordered together; results are committed per chunk
  bool order_by_prefix = true;  // false: batches follow the input order (for comparisons)
  size_t inflight = 3;          // batches waiting on the engine at once (>= 1)
  // embed: as EmbedRequest (an item's own instruction wins over `instruction`).
  std::optional<std::string> prompt_name;
  std::optional<std::string> instruction;
  bool normalize = true;
  std::optional<int32_t> dimensions;
  TruncationRequest truncation;
  int64_t resumed = 0;  // items an earlier run finished (the source skips them; for progress)
  std::function<void(const CorpusProgress&)> on_progress;  // calling thread, about every 0.2 s
};

struct CorpusStats {
  int64_t items = 0;
  int64_t tokens = 0;
  int64_t batches = 0;
  int64_t chunks = 0;
  double seconds = 0;
};

// Runs every item of `source` through `core` and writes the results to `sink` in input order.
// Throws CorpusError for an item that cannot be tokenized (naming it, via source.where), and the
// service's errors for the model's failures; results committed before the error stay committed.
CorpusStats run_corpus(Service& core, CorpusSource& source, CorpusSink& sink,
                       const CorpusOptions& options);

// One progress line: items, items/s, tokens/s, compression (tokens / rows the model ran, when
// `compression` > 0), percent and ETA when the total is known; `bar` adds a bar for a terminal.
std::string format_corpus_progress(const CorpusProgress& p, double compression, bool bar);

// A .jsonl or .txt corpus, read lazily. .txt: one text per line (embed only). .jsonl: one JSON
// object per line, {"text": ..., "instruction"?: ...} for embed and {"query": ..., "document"
// (or "text"): ..., "instruction"?: ...} for rerank (a bare JSON string is a text); blank lines
// are skipped. The first `skip` items are passed over unread (a resumed run).
std::unique_ptr<CorpusSource> open_corpus_file(const std::string& path, CorpusTask task,
                                               int64_t skip = 0);

// A results file, .npy or .jsonl, with its resume state in `<path>.progress` (a small JSON file
// written after every committed chunk and removed when the run finishes).
//   .npy: embed [items, dim] float32; rerank [items] float32 scores.
//   .jsonl: {"index": i, "embedding": [...]} or {"index": i, "score": s, "logit": l} per line.
// `fingerprint` names the run (input, model, options); a state file with another fingerprint is
// an error unless `restart`. resumed() says how many items the file already holds.
class CorpusOutput : public CorpusSink {
 public:
  static std::unique_ptr<CorpusOutput> open(const std::string& path, CorpusTask task,
                                            const std::string& fingerprint, bool restart);
  virtual int64_t resumed() const = 0;
  static std::string state_path(const std::string& path) { return path + ".progress"; }
};

}  // namespace radix::service
