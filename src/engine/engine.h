// The engine: a queue of tokenized requests, a batcher, one worker thread per device (runner),
// and results fanned back to each request's future.
//
// Requests from many clients land in the same batch, so their shared prefixes (a reranker's
// system prompt, a query shared by many documents) fold together in the batch's fold plan.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/fold_plan.h"
#include "engine/batch_planner.h"
#include "engine/batch_runner.h"

namespace radix::engine {

struct EngineOptions {
  BatchLimits limits;
  FoldOptions fold;  // threshold: fold only when unique/total is below it
};

// What one batch did; handed to the observer after every batch (metrics).
struct BatchStats {
  int32_t sequences = 0;
  int32_t requests = 0;  // distinct client requests with at least one sequence in the batch
  int64_t tokens = 0;
  int64_t unique_tokens = 0;
  bool folded = false;
  bool failed = false;
  double run_seconds = 0;        // plan + runner
  double plan_seconds = 0;       // the fold plan
  RunTimings timings;            // the runner's phases (batch_runner.h)
  double max_queue_seconds = 0;  // longest wait, in the queue, of a request in the batch
  size_t worker = 0;
  // Several workers: how many leading tokens of the batch's first sequence this worker's cache
  // held when it took the batch (> 0: routed to its cached prefix). Always 0 with one worker.
  int32_t cached_prefix_tokens = 0;
};

class EngineError : public std::runtime_error {
 public:
  enum class Kind { kShuttingDown, kCancelled, kBackend };
  EngineError(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

using RequestOutputs = std::vector<SequenceOutput>;
using CancelFlag = std::shared_ptr<const std::atomic<bool>>;

class Engine {
 public:
  using BatchObserver = std::function<void(const BatchStats&)>;

  // Starts one worker per runner. Throws std::invalid_argument when `runners` is empty.
  Engine(std::vector<std::unique_ptr<BatchRunner>> runners, EngineOptions options,
         BatchObserver on_batch = {});
  ~Engine();  // shutdown()

  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Queues one request. The future yields one output per sequence, in order, or throws
  // EngineError (kShuttingDown at once if shutdown began, kCancelled when `cancelled` became true
  // before all of the request was batched, kBackend when the runner failed). Every sequence must
  // be non-empty (std::invalid_argument otherwise).
  // With `token_states`, each output is the sequence's per-token hidden states ([len, hidden]).
  std::future<RequestOutputs> submit(std::vector<std::vector<int32_t>> sequences,
                                     CancelFlag cancelled = nullptr, bool token_states = false);

  // Stops accepting, lets the workers drain the queue, joins them. Idempotent.
  void shutdown();

  bool accepting() const { return !stopping_.load(); }
  size_t queued_requests() const;
  int64_t queued_sequences() const;
  size_t num_workers() const { return runners_.size(); }
  std::vector<WorkerLoad> worker_loads() const;
  const std::vector<std::unique_ptr<BatchRunner>>& runners() const { return runners_; }
  const EngineOptions& options() const { return options_; }

 private:
  struct Job;
  struct Part {
    std::shared_ptr<Job> job;
    int32_t begin = 0;
    int32_t end = 0;
  };

  void worker_loop(size_t worker);
  // With mu_ held: removes cancelled jobs, plans the next batch and advances the queue.
  // `cached_prefix_tokens` (several workers): the taking worker's cached prefix of the batch's
  // first sequence.
  std::vector<Part> take_batch_locked(size_t worker, int32_t& cached_prefix_tokens);
  // Routing (several workers): the worker whose prefix cache holds the longest prefix of the
  // queue head's next sequence; ties to an idle worker, then the one that took fewer batches,
  // then the lowest index.
  size_t preferred_worker_locked() const;
  // Whether `worker` takes the queue's head now: it is the preferred one, or that one is busy.
  bool may_take_locked(size_t worker) const;
  static void finish(Job& job, const std::exception_ptr& error);

  std::vector<std::unique_ptr<BatchRunner>> runners_;
  EngineOptions options_;
  BatchObserver on_batch_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::vector<bool> busy_;         // per worker: running a batch
  std::vector<WorkerLoad> loads_;  // per worker (guarded by mu_)
  int64_t queued_sequences_ = 0;
  std::atomic<bool> stopping_{false};
  std::vector<std::thread> workers_;
  std::once_flag shutdown_once_;
};

}  // namespace radix::engine
