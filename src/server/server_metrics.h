// The metrics radix serves on /metrics, registered once per server.
#pragma once

#include <atomic>
#include <functional>

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
};

class ServerMetrics {
 public:
  // queue_depth/queued_requests are read at scrape time (sequences / requests waiting).
  ServerMetrics(std::function<double()> queue_depth, std::function<double()> queued_requests);

  void observe_request(const std::string& route, int status, double seconds);
  void observe_batch(const BatchObservation& batch);
  void observe_tokenization(double seconds) { tokenization_seconds.observe({}, seconds); }

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
};

}  // namespace radix::server
