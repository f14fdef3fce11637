#include "server/server_metrics.h"

#include <set>
#include <string>
#include <utility>

namespace radix::server {
namespace {

const std::vector<double> kLatencyBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                             0.25,  0.5,    1,     2.5,  5,     10,   30};
// A batch's phases run from tens of microseconds (the fold plan of a small batch) to seconds.
const std::vector<double> kPhaseBuckets = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                           0.005,   0.01,   0.025,   0.05,   0.1,   0.25,
                                           0.5,     1,      2.5,     10};

}  // namespace

std::vector<std::string> worker_labels(const std::vector<std::string>& devices) {
  std::vector<std::string> out;
  std::set<std::string> seen, repeated;
  for (const std::string& d : devices) {
    if (!seen.insert(d).second) repeated.insert(d);
  }
  for (size_t i = 0; i < devices.size(); ++i) {
    out.push_back(repeated.count(devices[i]) ? devices[i] + "#" + std::to_string(i) : devices[i]);
  }
  return out;
}

ServerMetrics::ServerMetrics(std::function<double()> queue_depth,
                             std::function<double()> queued_requests)
    : requests(registry.counter("radix_requests_total", "HTTP requests by route and status",
                                {"route", "status"})),
      request_seconds(registry.histogram("radix_request_duration_seconds",
                                         "HTTP request latency by route", kLatencyBuckets,
                                         {"route"})),
      tokenization_seconds(registry.histogram("radix_tokenization_duration_seconds",
                                              "Time to tokenize one request", kLatencyBuckets)),
      batches(registry.counter("radix_batches_total", "Batches run by the engine")),
      batch_failures(
          registry.counter("radix_batch_failures_total", "Batches whose forward failed")),
      tokens(registry.counter("radix_tokens_total", "Tokens in all batches")),
      unique_tokens(registry.counter("radix_unique_tokens_total",
                                     "Unique tokens (fold-plan trie nodes) in all batches")),
      batch_tokens(registry.histogram("radix_batch_tokens", "Tokens per batch",
                                      MetricsRegistry::powers_of_two(65536))),
      batch_unique_tokens(registry.histogram("radix_batch_unique_tokens",
                                             "Unique tokens (trie nodes) per batch",
                                             MetricsRegistry::powers_of_two(65536))),
      batch_sequences(registry.histogram("radix_batch_sequences", "Sequences per batch",
                                         MetricsRegistry::powers_of_two(4096))),
      batch_requests(registry.histogram("radix_batch_requests", "Client requests per batch",
                                        MetricsRegistry::powers_of_two(4096))),
      batch_compression(registry.histogram(
          "radix_batch_compression_ratio", "Unique tokens / tokens per batch (lower folds more)",
          {0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0})),
      batch_seconds(registry.histogram("radix_batch_duration_seconds",
                                       "Time to fold and run one batch", kLatencyBuckets)),
      queue_seconds(registry.histogram("radix_queue_duration_seconds",
                                       "Longest queue wait of a request in each batch",
                                       kLatencyBuckets)),
      batch_phase_seconds(registry.histogram(
          "radix_batch_phase_duration_seconds",
          "A batch's time by phase: plan (fold plan), prepare (prefix cache before the forward), "
          "enqueue (the forward queueing device work), wait (for the device), finish (after)",
          kPhaseBuckets, {"phase"})) {
  registry.gauge("radix_queue_depth", "Sequences waiting in the engine queue",
                 std::move(queue_depth));
  registry.gauge("radix_queue_requests", "Requests with sequences waiting in the engine queue",
                 std::move(queued_requests));
  registry.gauge("radix_inflight_requests", "Requests holding a concurrency permit",
                 [this] { return static_cast<double>(inflight.load()); });
  registry.gauge("radix_compression_ratio", "Unique tokens / tokens over all batches so far",
                 [this] {
                   const double t = tokens.value({});
                   return t > 0 ? unique_tokens.value({}) / t : 1.0;
                 });
}

void ServerMetrics::register_workers(std::function<std::vector<WorkerObservation>()> read) {
  read_workers_ = std::move(read);
  using Field = int64_t WorkerObservation::*;
  auto sum = [this](const char* name, const char* help, Field f) {
    registry.gauge(name, help, [this, f] {
      double total = 0;
      for (const WorkerObservation& w : read_workers_()) total += static_cast<double>(w.*f);
      return total;
    });
  };
  sum("radix_prefix_cache_bytes", "Bytes held by the prefix caches (K/V and results)",
      &WorkerObservation::cache_bytes);
  sum("radix_prefix_cache_budget_bytes", "The prefix caches' budgets",
      &WorkerObservation::cache_budget_bytes);
  sum("radix_prefix_cache_nodes", "Trie nodes (tokens) held by the prefix caches",
      &WorkerObservation::cache_nodes);
  sum("radix_prefix_cache_lookup_tokens", "Tokens looked up in the prefix caches so far",
      &WorkerObservation::lookup_tokens);
  sum("radix_prefix_cache_hit_tokens",
      "Tokens not computed so far: cached prefixes and result-cache hits",
      &WorkerObservation::hit_tokens);
  sum("radix_prefix_cache_result_hits", "Sequences answered from the result cache so far",
      &WorkerObservation::result_hits);
  sum("radix_prefix_cache_evicted_nodes", "Nodes evicted from the prefix caches so far",
      &WorkerObservation::evicted_nodes);

  // Per worker. Counters are totals the engine and the caches keep; read here at scrape time.
  auto per_worker = [this](const char* name, const char* help, const char* type, auto value) {
    registry.scraped_family(name, help, type, {"worker"}, [this, value] {
      MetricsRegistry::Series series;
      for (const WorkerObservation& w : read_workers_()) {
        series.push_back({{w.name}, static_cast<double>(value(w))});
      }
      return series;
    });
  };
  auto field = [](Field f) { return [f](const WorkerObservation& w) { return w.*f; }; };
  per_worker("radix_worker_busy", "1 while the worker runs a batch", "gauge",
             [](const WorkerObservation& w) { return w.busy ? 1 : 0; });
  per_worker("radix_worker_running_sequences",
             "Sequences in the batch the worker runs (the queue is shared: radix_queue_depth)",
             "gauge", field(&WorkerObservation::running_sequences));
  per_worker("radix_worker_batches_total", "Batches the worker took", "counter",
             field(&WorkerObservation::batches));
  per_worker("radix_worker_prefix_routed_batches_total",
             "Batches the worker took with a prefix of their first sequence in its cache",
             "counter", field(&WorkerObservation::prefix_routed_batches));
  per_worker("radix_worker_prefix_cache_bytes", "Bytes held by the worker's prefix cache", "gauge",
             field(&WorkerObservation::cache_bytes));
  per_worker("radix_worker_prefix_cache_nodes", "Trie nodes (tokens) in the worker's prefix cache",
             "gauge", field(&WorkerObservation::cache_nodes));
  per_worker("radix_worker_prefix_cache_lookup_tokens",
             "Tokens looked up in the worker's prefix cache", "counter",
             field(&WorkerObservation::lookup_tokens));
  per_worker("radix_worker_prefix_cache_hit_tokens",
             "Tokens the worker's prefix cache saved (cached prefixes and result hits)", "counter",
             field(&WorkerObservation::hit_tokens));
  per_worker("radix_worker_prefix_cache_evicted_nodes",
             "Nodes evicted from the worker's prefix cache", "counter",
             field(&WorkerObservation::evicted_nodes));
  per_worker("radix_worker_recorded_forwards_total",
             "Forwards the worker recorded (CUDA graphs of small batches' buckets)", "counter",
             field(&WorkerObservation::recorded_forwards));
  per_worker("radix_worker_replayed_forwards_total",
             "Forwards the worker replayed from a recording", "counter",
             field(&WorkerObservation::replayed_forwards));
}

void ServerMetrics::observe_request(const std::string& route, int status, double seconds) {
  requests.add({route, std::to_string(status)});
  request_seconds.observe({route}, seconds);
}

void ServerMetrics::observe_batch(const BatchObservation& b) {
  batches.add({});
  if (b.failed) batch_failures.add({});
  tokens.add({}, static_cast<double>(b.tokens));
  unique_tokens.add({}, static_cast<double>(b.unique_tokens));
  batch_tokens.observe({}, static_cast<double>(b.tokens));
  batch_unique_tokens.observe({}, static_cast<double>(b.unique_tokens));
  batch_sequences.observe({}, b.sequences);
  batch_requests.observe({}, b.requests);
  if (b.tokens > 0) {
    batch_compression.observe({},
                              static_cast<double>(b.unique_tokens) / static_cast<double>(b.tokens));
  }
  batch_seconds.observe({}, b.run_seconds);
  queue_seconds.observe({}, b.max_queue_seconds);
  const std::pair<const char*, double> phases[] = {{"plan", b.plan_seconds},
                                                   {"prepare", b.prepare_seconds},
                                                   {"enqueue", b.enqueue_seconds},
                                                   {"wait", b.wait_seconds},
                                                   {"finish", b.finish_seconds}};
  for (const auto& [phase, seconds] : phases) batch_phase_seconds.observe({phase}, seconds);
}

}  // namespace radix::server
