// The runtime builder: from options, one model per device, the engine over them (its fold plan
// options, batch limits) and the library core (service.h) on top. `radix serve`, the CLI's model
// commands and the Python package all assemble radix through it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/batch_runner.h"
#include "service/service.h"

namespace radix::service {

// What one engine batch did (metrics hooks).
struct BatchReport {
  int32_t sequences = 0;
  int32_t requests = 0;
  int64_t tokens = 0;
  int64_t unique_tokens = 0;
  int64_t rows = 0;  // rows the position-wise ops ran on: unique tokens if folded, else tokens
  bool folded = false;
  bool failed = false;
  double run_seconds = 0;
  // run_seconds in phases: the fold plan, then the runner's (engine/batch_runner.h).
  double plan_seconds = 0;
  engine::RunTimings timings;
  double max_queue_seconds = 0;
  size_t worker = 0;
  int32_t cached_prefix_tokens = 0;  // several workers: the taker's cached prefix of the batch
};

struct RuntimeOptions {
  std::string model;      // a Hugging Face folder, "demo", or "random:..." (see Model::load)
  std::string tokenizer;  // "", "demo", a tokenizer.json or a folder (see load_tokenizer)
  std::vector<std::string> devices{"cpu"};  // one model and one engine worker per device
  int threads = 0;                          // CPU threads per model (0: all)
  bool cuda_graphs = true;  // false: no recorded forwards (BackendOptions::cuda_graphs)
  std::string head;         // "": the folder's; embedding | reranker | classifier
  // "": the device's; else what it runs (float32, bfloat16, float16), or fp8 (CUDA: e4m3
  // projections with per-channel scales, the rest bfloat16; docs/numerics.md)
  std::string dtype;
  std::string pooling;  // "": the folder's (1_Pooling); lasttoken (or last_token) | mean
  std::vector<int32_t> reranker_tokens;  // empty: the model's; else 1 or 2 answer token ids
  // The reranker's prompt template: a JSON file, or inline JSON starting with '{'
  // (model/rerank_template.h); "": the folder's radix_rerank_template.json, else Qwen3's for a
  // Qwen3 model, else none. Overrides service.rerank_template when given.
  std::string rerank_template;
  std::string attention_mode = "tree";  // off | scatter | tree
  double radix_threshold = 0.95;        // fold a batch only when unique/total is below it, [0, 1]
  int32_t pad_to_multiple = 1;          // pad the fold plan's rows to a multiple of this
  // The prefix cache's budget per device in MiB (docs/prefix_cache.md): -1 = the device's default
  // (on a GPU a quarter of the memory free after the model's load, at most
  // kDefaultGpuPrefixCacheMib; 0 = off on the CPU), 0 = off.
  int64_t prefix_cache_mib = -1;
  int64_t max_batch_tokens = 16384;  // tokens per engine batch (> 0)
  int32_t max_batch_requests = 0;    // sequences per batch (0: no limit)
  bool preallocate = true;           // size activations for max_batch_tokens at load
  uint64_t seed = 0;                 // random:* weights
  // max_input_length 0 here means min(model positions, max_batch_tokens).
  ServiceOptions service;
  std::function<void(const BatchReport&)> on_batch;  // after every batch, from a worker thread
};

inline constexpr int64_t kDefaultGpuPrefixCacheMib = 4096;
// The shortest cached prefix used on the CPU (docs/prefix_cache.md, "Minimum prefix length": a
// hit's bookkeeping measured at about 1.5 tokens' compute there). GPUs keep
// cache::kDefaultMinPrefixTokens until measured on one.
inline constexpr int32_t kCpuMinPrefixTokens = 4;
// On a GPU a batch reads the prefix cache only when its hits skip at least half of its unique
// rows. Measured on the H200 (bench/RESULTS.md, 2026-11-30 call C): stream requests (97 % of their
// rows cached) gain 1.4x (0.6B) to 7x (8B), while dl19 at concurrency 32, whose batches read the
// shared template and queries under the CPU's 1/32 rule, lost 22 %: the split plan and the second
// key range cost more on the GPU's big batches than the few rows they skip.
inline constexpr double kGpuMinHitFraction = 0.5;

// What was built, for logs and /info.
struct RuntimeInfo {
  std::string dtype;  // "float32", "bfloat16", "fp8"
  std::vector<std::string> devices;
  std::string backend;  // the first model's backend name
  int32_t num_layers = 0;
  std::string attention_mode;
  double radix_threshold = 0;
  int64_t prefix_cache_mib = 0;  // per device, as resolved (0: off)
  bool prefix_cache = false;     // whether the workers hold one (the model and backend allow it)
  int64_t max_batch_tokens = 0;
  int32_t max_batch_requests = 0;
  double load_seconds = 0;
};

class Runtime {
 public:
  // Throws std::invalid_argument for options out of range and std::runtime_error for a model or
  // tokenizer that cannot be loaded, each with a message naming the option or file.
  static std::unique_ptr<Runtime> build(RuntimeOptions options);
  ~Runtime();  // stops the engine (queued work finishes first)
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  Service& service();
  const RuntimeInfo& info() const;

  size_t queued_requests() const;
  int64_t queued_sequences() const;
  size_t num_workers() const;
  // Per worker, its prefix cache's numbers (enabled false where it has none).
  std::vector<engine::RunnerCacheStats> cache_stats() const;
  std::vector<engine::RunnerRecordings> recordings() const;  // per worker
  bool records_forwards() const;  // whether any worker replays recorded CUDA graphs
  // Per worker: busy, the batch it runs, batches taken (per-worker metrics).
  std::vector<engine::WorkerLoad> worker_loads() const;
  void shutdown();  // stops accepting, lets the workers drain the queue; idempotent

 private:
  struct Impl;
  explicit Runtime(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Checks of options that front ends also want before loading anything (CLI flags): each throws
// std::invalid_argument with a message naming the option.
void check_radix_threshold(double threshold);
void check_max_batch_tokens(int64_t tokens);

}  // namespace radix::service
