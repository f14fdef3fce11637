// The metrics radix serves on /metrics, registered once per server.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "server/metrics.h"

namespace radix::server {

// Mirrors engine::BatchStats without depending on the engine library.
struct BatchObservation {
  int32_t sequences = 0;
  int32_t requests = 0;
  int64_t tokens = 0;
  int64_t unique_tokens = 0;
  bool failed = false;
  double run_seconds = 0;
  double max_queue_seconds = 0;
  // run_seconds in phases (service::BatchReport); all 0 when the runner does not measure.
  double plan_seconds = 0;
  double prepare_seconds = 0;
  double enqueue_seconds = 0;
  double wait_seconds = 0;
  double finish_seconds = 0;
};

// One engine worker (device) at scrape time, mirroring engine::WorkerLoad and RunnerCacheStats.
struct WorkerObservation {
  std::string name;  // the `worker` label: its device, "#i" added where devices repeat
  bool busy = false;
  int64_t running_sequences = 0;
  int64_t batches = 0;
  int64_t prefix_routed_batches = 0;
  bool cache = false;  // holds a prefix cache
  int64_t cache_budget_bytes = 0;
  int64_t cache_bytes = 0;
  int64_t cache_nodes = 0;
  int64_t lookup_tokens = 0;
  int64_t hit_tokens = 0;
  int64_t result_hits = 0;
  int64_t evicted_nodes = 0;
  int64_t recorded_forwards = 0;  // forwards recorded as CUDA graphs
  int64_t replayed_forwards = 0;  // forwards replayed from one
};

// The `worker` labels of a device list: the device itself ("cuda:0"), or "cpu#0", "cpu#1" where
// the same device is listed more than once.
std::vector<std::string> worker_labels(const std::vector<std::string>& devices);

class ServerMetrics {
 public:
  // queue_depth/queued_requests are read at scrape time (sequences / requests waiting).
  ServerMetrics(std::function<double()> queue_depth, std::function<double()> queued_requests);

  void observe_request(const std::string& route, int status, double seconds);
  void observe_batch(const BatchObservation& batch);
  void observe_tokenization(double seconds) { tokenization_seconds.observe({}, seconds); }

  // The workers' metrics (read at scrape time): the prefix caches summed over workers
  // (radix_prefix_cache_*) and per worker (radix_worker_*{worker="..."}). Call once.
  void register_workers(std::function<std::vector<WorkerObservation>()> read);
  // The workers now (/info); empty before register_workers.
  std::vector<WorkerObservation> workers() const {
    if (!read_workers_) return {};
    return read_workers_();
  }

  std::string render() const { return registry.render(); }

  MetricsRegistry registry;
  std::atomic<int64_t> inflight{0};
  Counter& requests;
  Histogram& request_seconds;
  Histogram& tokenization_seconds;
  Counter& batches;
  Counter& batch_failures;
  Counter& tokens;
  Counter& unique_tokens;
  Histogram& batch_tokens;
  Histogram& batch_unique_tokens;
  Histogram& batch_sequences;
  Histogram& batch_requests;
  Histogram& batch_compression;
  Histogram& batch_seconds;
  Histogram& queue_seconds;
  Histogram& batch_phase_seconds;

 private:
  std::function<std::vector<WorkerObservation>()> read_workers_;
};

}  // namespace radix::server
