#include "engine/engine.h"

#include <algorithm>
#include <utility>

namespace radix::engine {

using Clock = std::chrono::steady_clock;

struct Engine::Job {
  std::vector<std::vector<int32_t>> sequences;
  CancelFlag cancelled;
  bool token_states = false;
  Clock::time_point enqueued;
  int32_t next = 0;  // first sequence not yet handed to a worker (guarded by Engine::mu_)
  RequestOutputs outputs;
  std::atomic<int32_t> pending{0};  // sequences handed out or queued whose outputs are missing
  std::atomic<bool> finished{false};
  std::promise<RequestOutputs> promise;

  bool is_cancelled() const { return cancelled && cancelled->load(std::memory_order_relaxed); }
};

Engine::Engine(std::vector<std::unique_ptr<BatchRunner>> runners, EngineOptions options,
               BatchObserver on_batch)
    : runners_(std::move(runners)), options_(options), on_batch_(std::move(on_batch)) {
  if (runners_.empty()) throw std::invalid_argument("engine: at least one runner is needed");
  for (const auto& r : runners_) {
    if (!r) throw std::invalid_argument("engine: null runner");
  }
  busy_.assign(runners_.size(), false);
  loads_.assign(runners_.size(), WorkerLoad{});
  workers_.reserve(runners_.size());
  for (size_t w = 0; w < runners_.size(); ++w) workers_.emplace_back([this, w] { worker_loop(w); });
}

Engine::~Engine() { shutdown(); }

std::future<RequestOutputs> Engine::submit(std::vector<std::vector<int32_t>> sequences,
                                           CancelFlag cancelled, bool token_states) {
  for (const auto& s : sequences) {
    if (s.empty()) throw std::invalid_argument("engine: empty sequence");
  }
  auto job = std::make_shared<Job>();
  std::future<RequestOutputs> future = job->promise.get_future();
  if (sequences.empty()) {
    job->promise.set_value({});
    return future;
  }
  const auto n = static_cast<int32_t>(sequences.size());
  job->sequences = std::move(sequences);
  job->cancelled = std::move(cancelled);
  job->token_states = token_states;
  job->outputs.resize(n);
  job->pending.store(n);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_.load()) {
      throw EngineError(EngineError::Kind::kShuttingDown, "the server is shutting down");
    }
    job->enqueued = Clock::now();
    queue_.push_back(job);
    queued_sequences_ += n;
  }
  // Several workers: the request's preferred worker (routing) must get the chance to take it.
  if (runners_.size() > 1) {
    cv_.notify_all();
  } else {
    cv_.notify_one();
  }
  return future;
}

void Engine::shutdown() {
  std::call_once(shutdown_once_, [this] {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_.store(true);
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  });
}

size_t Engine::queued_requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

int64_t Engine::queued_sequences() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queued_sequences_;
}

std::vector<WorkerLoad> Engine::worker_loads() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<WorkerLoad> out = loads_;
  for (size_t w = 0; w < out.size(); ++w) out[w].busy = busy_[w];
  return out;
}

void Engine::finish(Job& job, const std::exception_ptr& error) {
  if (job.finished.exchange(true)) return;
  if (error) {
    job.promise.set_exception(error);
  } else {
    job.promise.set_value(std::move(job.outputs));
  }
}

size_t Engine::preferred_worker_locked() const {
  const Job& job = *queue_.front();
  const std::vector<int32_t>& next = job.sequences[job.next];
  size_t best = 0;
  int32_t best_length = -1;
  for (size_t w = 0; w < runners_.size(); ++w) {
    const int32_t length = runners_[w]->cached_prefix_length(next);
    // Ties: an idle worker, then the one that took fewer batches, so that prefixes cached
    // nowhere yet (a new prompt family) spread over the workers' caches instead of all filling
    // worker 0's.
    const bool better =
        length > best_length ||
        (length == best_length &&
         (busy_[best] != busy_[w] ? !busy_[w] : loads_[w].batches < loads_[best].batches));
    if (better) {
      best = w;
      best_length = length;
    }
  }
  return best;
}

bool Engine::may_take_locked(size_t worker) const {
  if (queue_.empty()) return false;
  if (runners_.size() == 1 || stopping_.load()) return true;
  // The preferred worker takes its request; when it is busy, any idle worker does (no worker
  // idles while there is work it could do).
  const size_t best = preferred_worker_locked();
  return best == worker || busy_[best];
}

std::vector<Engine::Part> Engine::take_batch_locked(size_t worker, int32_t& cached_prefix_tokens) {
  // A client that went away has its not-yet-batched work dropped here, and so does the rest of a
  // split request whose earlier part already failed.
  for (auto it = queue_.begin(); it != queue_.end();) {
    Job& job = **it;
    if (job.is_cancelled() || job.finished.load()) {
      queued_sequences_ -= static_cast<int64_t>(job.sequences.size()) - job.next;
      finish(job, std::make_exception_ptr(
                      EngineError(EngineError::Kind::kCancelled, "the client disconnected")));
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }

  cached_prefix_tokens = 0;
  if (runners_.size() > 1 && !queue_.empty()) {
    const Job& head = *queue_.front();
    cached_prefix_tokens = runners_[worker]->cached_prefix_length(head.sequences[head.next]);
  }

  // Remaining lengths of the queue's head: the planner never looks past the first request that
  // pushes the total over the token budget, so neither do we.
  std::vector<std::vector<int32_t>> lengths;
  int64_t tokens = 0;
  const int64_t budget = options_.limits.max_batch_tokens;
  for (const auto& job : queue_) {
    std::vector<int32_t>& l = lengths.emplace_back();
    for (size_t s = job->next; s < job->sequences.size(); ++s) {
      l.push_back(static_cast<int32_t>(job->sequences[s].size()));
      tokens += l.back();
    }
    if (budget > 0 && tokens > budget) break;
  }
  const std::vector<BatchSlice> slices = plan_batch(lengths, options_.limits);

  std::vector<Part> parts;
  parts.reserve(slices.size());
  for (const BatchSlice& s : slices) {
    const std::shared_ptr<Job>& job = queue_[s.request];
    parts.push_back({job, job->next + s.begin, job->next + s.end});
    job->next += s.end - s.begin;
    queued_sequences_ -= s.end - s.begin;
  }
  while (!queue_.empty() &&
         queue_.front()->next == static_cast<int32_t>(queue_.front()->sequences.size())) {
    queue_.pop_front();
  }
  return parts;
}

void Engine::worker_loop(size_t worker) {
  BatchRunner& runner = *runners_[worker];
  RaggedBatch batch;
  FoldPlan plan;
  for (;;) {
    std::vector<Part> parts;
    int32_t cached_prefix_tokens = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return may_take_locked(worker) || stopping_.load(); });
      parts = take_batch_locked(worker, cached_prefix_tokens);
      if (parts.empty()) {
        if (stopping_.load() && queue_.empty()) return;
        continue;
      }
      busy_[worker] = true;
      WorkerLoad& load = loads_[worker];
      ++load.batches;
      if (cached_prefix_tokens > 0) ++load.prefix_routed_batches;
      for (const Part& p : parts) load.running_sequences += p.end - p.begin;
      // More work left: let another worker start on it while this one runs.
      if (!queue_.empty()) {
        if (runners_.size() > 1) {
          cv_.notify_all();
        } else {
          cv_.notify_one();
        }
      }
    }

    const Clock::time_point start = Clock::now();
    BatchStats stats;
    stats.worker = worker;
    stats.cached_prefix_tokens = cached_prefix_tokens;
    batch.ids.clear();
    batch.positions.clear();
    batch.cu_seqlens.assign(1, 0);
    batch.token_states.clear();
    for (const Part& p : parts) {
      for (int32_t s = p.begin; s < p.end; ++s) {
        batch.add_sequence(p.job->sequences[s]);
        batch.token_states.push_back(p.job->token_states ? 1 : 0);
      }
      stats.max_queue_seconds = std::max(
          stats.max_queue_seconds, std::chrono::duration<double>(start - p.job->enqueued).count());
    }
    stats.sequences = batch.num_sequences();
    stats.requests = static_cast<int32_t>(parts.size());
    stats.tokens = batch.num_tokens();

    std::exception_ptr error;
    std::vector<SequenceOutput> outputs;
    try {
      build_fold_plan(batch.ids, batch.positions, batch.cu_seqlens, options_.fold, plan);
      stats.plan_seconds = std::chrono::duration<double>(Clock::now() - start).count();
      stats.unique_tokens = plan.num_unique;
      stats.folded = plan.folded;
      outputs = runner.run(batch, plan);
      stats.timings = runner.last_timings();
      if (outputs.size() != static_cast<size_t>(batch.num_sequences())) {
        throw std::runtime_error("runner returned " + std::to_string(outputs.size()) +
                                 " outputs for " + std::to_string(batch.num_sequences()) +
                                 " sequences");
      }
    } catch (const std::exception& e) {
      error = std::make_exception_ptr(
          EngineError(EngineError::Kind::kBackend, std::string("inference failed: ") + e.what()));
    } catch (...) {
      error = std::make_exception_ptr(
          EngineError(EngineError::Kind::kBackend, "inference failed: unknown error"));
    }
    // Idle again before anyone is answered: a client's next request, sent on the answer, must
    // find this worker free to take it (routing), not busy with the fan-out.
    {
      std::lock_guard<std::mutex> lock(mu_);
      busy_[worker] = false;
      loads_[worker].running_sequences = 0;
    }
    stats.failed = error != nullptr;
    stats.run_seconds = std::chrono::duration<double>(Clock::now() - start).count();

    // Report before answering, so that a client that got its answer finds its batch in /metrics.
    if (on_batch_) on_batch_(stats);
    size_t row = 0;
    for (Part& p : parts) {
      Job& job = *p.job;
      const int32_t n = p.end - p.begin;
      if (error) {
        finish(job, error);
        continue;
      }
      for (int32_t s = p.begin; s < p.end; ++s) job.outputs[s] = std::move(outputs[row++]);
      if (job.pending.fetch_sub(n, std::memory_order_acq_rel) == n) finish(job, nullptr);
    }
    parts.clear();
  }
}

}  // namespace radix::engine
